/*
 * loop.c — one epoll event loop per thread: its listener and accepts, its
 * connections' readiness, the command queue other threads post to, the
 * timers and idle sweep, write pacing, and the flushing of its connections'
 * output (sendmsg, or batched io_uring sends).
 *
 * Each turn (cfi_loop_run): wait for events, read what arrived (which may
 * queue output), run the source's tick and the commands other threads
 * posted, then flush every connection with pending output ("cork, then
 * flush before sleeping"). A connection is written with a gathered sendmsg
 * (IOV_MAX frames a call), or its send goes with those of up to RING_BATCH
 * connections in one io_uring submission (flush_batch); one with more
 * queued than one send takes is written again in the same flush. Write
 * pacing may hold the whole flush for a few milliseconds while the loop is
 * saturated. Deadlines and the idle sweep run every TIMER_TICK_MS. EPOLLOUT
 * is armed only while a socket's kernel buffer is full.
 *
 * cfi_loop_submit is the only function another thread may call: it appends
 * to the command queue under a mutex and writes the eventfd only when the
 * loop has not been woken yet, so a burst of commands costs one wake-up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <liburing.h>

#define TAG_EVENTFD ((void *)1)
#define TAG_LISTENER ((void *)2)
#define TAG_WATCH ((void *)3)
#define MAX_EVENTS 512
#define TIMER_TICK_MS 100
#define IDLE_SWEEP_MS 1000
#define ACCEPTS_PER_TURN 256
#define STOP_GRACE_MS 1000
#define RING_BATCH 1024          /* connections per io_uring submission */
#define RING_IOV_PER_CONN 16     /* frames per connection per submission */
#define PACING_PERIOD_NS 500000000ull /* how often a loop re-decides its write delay */

/* The loop running on this thread, if any: a command submitted by its own
 * thread (a reply from a callback, a ticker's publish) needs no wake-up, as
 * the loop runs its commands later in the same turn. */
static __thread cf_loop *current_loop;

int cfi_loop_init(cf_loop *loop, cf_server *server, int index, char *errstr, size_t errstr_size) {
    memset(loop, 0, sizeof(*loop));
    loop->server = server;
    loop->index = index;
    loop->listen_fd = -1;
    loop->watch_fd = -1;
    pthread_mutex_init(&loop->queue_lock, NULL);
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct rlimit rl;
    /* One slot per descriptor the process may open, capped: a huge soft
     * limit must not cost gigabytes (descriptors past the cap are refused). */
    size_t max_fds = 1 << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < max_fds) max_fds = rl.rlim_cur;
    loop->conns_capacity = max_fds;
    loop->conns = calloc(max_fds, sizeof(cf_conn *));
    loop->read_capacity = 256 * 1024;
    loop->read_buffer = malloc(loop->read_capacity);
    if (server->tls && !(loop->tls_buffer = malloc(TLS_RECORD_BYTES))) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    loop->iov = malloc(sizeof(struct iovec) * IOV_MAX);
    cfi_endpoints_init(&loop->endpoints);
    if (loop->epoll_fd < 0 || loop->event_fd < 0 || !loop->conns || !loop->read_buffer ||
        !loop->iov || !loop->endpoints.buckets) {
        snprintf(errstr, errstr_size, "event loop %d: cannot allocate resources: %s", index,
                 strerror(errno));
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = TAG_EVENTFD};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->event_fd, &ev) != 0) {
        snprintf(errstr, errstr_size, "event loop %d: cannot watch its eventfd: %s", index, strerror(errno));
        return -1;
    }
    return 0;
}

int cfi_loop_listen(cf_loop *loop, char *errstr, size_t errstr_size) {
    cf_server *s = loop->server;
    char port[8];
    snprintf(port, sizeof(port), "%u", s->bound_port ? s->bound_port : s->config.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(s->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "listen.host '%s' is not a numeric IP address: %s", s->host,
                 gai_strerror(rc));
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
        snprintf(errstr, errstr_size, "cannot listen on %s:%s: %s", s->host, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    if (!s->bound_port) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        getsockname(fd, (struct sockaddr *)&ss, &len);
        s->bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                       : ((struct sockaddr_in *)&ss)->sin_port);
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = TAG_LISTENER};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        snprintf(errstr, errstr_size, "cannot watch the listening socket on %s:%s: %s", s->host, port,
                 strerror(errno));
        close(fd);
        return -1;
    }
    loop->listen_fd = fd;
    return 0;
}

/* Gives up commands that will never run: their frame references and texts. */
static void release_commands(const loop_cmd *cmds, size_t count) {
    for (size_t i = 0; i < count; i++) {
        cf_frame_release(cmds[i].frame);
        free(cmds[i].text);
    }
}

void cfi_loop_destroy(cf_loop *loop) {
    pthread_mutex_lock(&loop->queue_lock);
    release_commands(loop->queue, loop->queue_length);
    loop->queue_length = 0;
    pthread_mutex_unlock(&loop->queue_lock);
    free(loop->queue);
    free(loop->work);
    if (loop->listen_fd >= 0) close(loop->listen_fd);
    if (loop->event_fd >= 0) close(loop->event_fd);
    if (loop->epoll_fd >= 0) close(loop->epoll_fd);
    cfi_endpoints_free(&loop->endpoints);
    free(loop->conns);
    free(loop->read_buffer);
    free(loop->tls_buffer);
    free(loop->iov);
    pthread_mutex_destroy(&loop->queue_lock);
}

void cfi_loop_submit_many(cf_loop *loop, const loop_cmd *cmds, size_t count) {
    bool wake = false;
    pthread_mutex_lock(&loop->queue_lock);
    if (loop->stopped) {
        pthread_mutex_unlock(&loop->queue_lock);
        release_commands(cmds, count);
        return;
    }
    if (loop->queue_length + count > loop->queue_capacity) {
        size_t cap = loop->queue_capacity ? loop->queue_capacity : 256;
        while (cap < loop->queue_length + count) cap *= 2;
        loop_cmd *q = realloc(loop->queue, cap * sizeof(loop_cmd));
        if (!q) {
            /* Out of memory: drop the commands rather than crash the gateway. */
            pthread_mutex_unlock(&loop->queue_lock);
            release_commands(cmds, count);
            return;
        }
        loop->queue = q;
        loop->queue_capacity = cap;
    }
    memcpy(loop->queue + loop->queue_length, cmds, count * sizeof(loop_cmd));
    loop->queue_length += count;
    __atomic_store_n(&loop->queue_depth, loop->queue_length, __ATOMIC_RELAXED);
    if (!loop->wake_pending && current_loop != loop) {
        loop->wake_pending = true;
        wake = true;
    }
    pthread_mutex_unlock(&loop->queue_lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(loop->event_fd, &one, sizeof(one));
        (void)n;
    }
}

void cfi_loop_submit(cf_loop *loop, const loop_cmd *cmd) { cfi_loop_submit_many(loop, cmd, 1); }

static cf_conn *conn_by_id(cf_loop *loop, cf_conn_id id) {
    int fd = (int)(id & 0xFFFFFFFFu);
    if (fd < 0 || (size_t)fd >= loop->conns_capacity) return NULL;
    cf_conn *c = loop->conns[fd];
    return (c && c->id == id && c->state != CONN_DEAD) ? c : NULL;
}

static void publish(cf_loop *loop, cf_frame *frame) {
    STAT_ADD(loop, messages_published, 1);
    endpoint *ep = cfi_endpoints_find(&loop->endpoints, frame->endpoint, frame->endpoint_length,
                                  frame->endpoint_hash);
    if (!ep) return;
    /* cfi_conn_enqueue never unsubscribes or destroys (a slow consumer is only
     * marked closing, a failed one torn down at its flush), so the
     * subscriber array is stable during this walk. */
    uint32_t delivered = 0;
    for (uint32_t i = 0; i < ep->count; i++) {
        cf_conn *c = ep->subs[i]->conn;
        if (c->state != CONN_OPEN) continue;
        delivered += cfi_conn_enqueue(c, frame);
    }
    STAT_ADD(loop, messages_delivered, delivered);
    if (delivered && loop->latency_pending_count < LATENCY_SAMPLES)
        loop->latency_pending[loop->latency_pending_count++] = frame->created_ns;
}

static void begin_stop(cf_loop *loop) {
    if (loop->stopping) return;
    loop->stopping = true;
    loop->stop_deadline_ms = cfi_now_ms() + STOP_GRACE_MS;
    if (loop->listen_fd >= 0) {
        (void)epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, loop->listen_fd, NULL); /* closed next anyway */
        close(loop->listen_fd);
        loop->listen_fd = -1;
    }
    for (size_t fd = 0; fd < loop->conns_capacity; fd++) {
        cf_conn *c = loop->conns[fd];
        if (!c || c->state == CONN_DEAD) continue;
        if (c->state == CONN_OPEN) cfi_conn_close(c, CF_CLOSE_GOING_AWAY, "server shutting down");
        else if (c->state == CONN_HTTP) cfi_conn_destroy(c, 1006);
    }
}

/* Queues frame to every open stream connection of the loop (each queue
 * takes its own reference): the drain's notice. */
static void send_to_every_stream(cf_loop *loop, cf_frame *frame) {
    for (size_t fd = 0; fd < loop->conns_capacity; fd++) {
        cf_conn *c = loop->conns[fd];
        if (c && c->kind == KIND_STREAM && c->state == CONN_OPEN) cfi_conn_enqueue(c, frame);
    }
}

static void run_commands(cf_loop *loop) {
    /* Swap the shared queue with the loop's spare buffer, then work unlocked. */
    pthread_mutex_lock(&loop->queue_lock);
    loop_cmd *cmds = loop->queue;
    size_t n = loop->queue_length, cmds_capacity = loop->queue_capacity;
    loop->queue = loop->work;
    loop->queue_capacity = loop->work_capacity;
    loop->queue_length = 0;
    __atomic_store_n(&loop->queue_depth, 0, __ATOMIC_RELAXED);
    loop->wake_pending = false;
    pthread_mutex_unlock(&loop->queue_lock);
    __atomic_store_n(&loop->commands_run, loop->commands_run + n, __ATOMIC_RELAXED);
    loop->work = cmds;
    loop->work_capacity = cmds_capacity;

    for (size_t i = 0; i < n; i++) {
        loop_cmd *cmd = &cmds[i];
        cf_conn *c;
        switch (cmd->type) {
        case CMD_PUBLISH:
            publish(loop, cmd->frame);
            break;
        case CMD_SUBSCRIBE:
            if ((c = conn_by_id(loop, cmd->conn)) && c->state == CONN_OPEN)
                cfi_endpoints_subscribe(&loop->endpoints, c, cmd->text, cmd->text_length);
            break;
        case CMD_UNSUBSCRIBE:
            if ((c = conn_by_id(loop, cmd->conn)))
                cfi_endpoints_unsubscribe(&loop->endpoints, c, cmd->text, cmd->text_length);
            break;
        case CMD_SEND:
            if ((c = conn_by_id(loop, cmd->conn)) && c->state == CONN_OPEN) cfi_conn_enqueue(c, cmd->frame);
            break;
        case CMD_CLOSE:
            if ((c = conn_by_id(loop, cmd->conn)) && c->state == CONN_OPEN)
                cfi_conn_close(c, cmd->code, cmd->text);
            break;
        case CMD_STOP:
            begin_stop(loop);
            break;
        case CMD_WATCH:
            /* The old fd is the source's to close; a failed DEL leaves an item for it. */
            if (loop->watch_fd >= 0) (void)epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, loop->watch_fd, NULL);
            loop->watch_fd = cmd->fd;
            loop->watch_ready = cmd->ready;
            loop->watch_context = cmd->context;
            {
                /* Fails only when the kernel is out of memory or epoll watches
                 * (fs.epoll.max_user_watches): counted, and the host sees it. */
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = TAG_WATCH};
                if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, cmd->fd, &ev) != 0) STAT_ADD(loop, epoll_errors, 1);
            }
            {
                /* Anything the source queued before its fd was watched: make
                 * the eventfd readable so the next epoll turn drains it. */
                uint64_t one = 1;
                ssize_t w = write(cmd->fd, &one, sizeof(one));
                (void)w;
            }
            break;
        case CMD_DRAIN:
            send_to_every_stream(loop, cmd->frame);
            break;
        case CMD_UNWATCH:
            /* The fd is the source's to close; a failed DEL (its ADD failed,
             * already counted) leaves nothing to undo. */
            if (loop->watch_fd >= 0) (void)epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, loop->watch_fd, NULL);
            loop->watch_fd = -1;
            loop->watch_ready = NULL;
            break;
        }
        cf_frame_release(cmd->frame);
        free(cmd->text);
    }
}

static bool queue_is_empty(cf_loop *loop) {
    pthread_mutex_lock(&loop->queue_lock);
    bool empty = loop->queue_length == 0;
    pthread_mutex_unlock(&loop->queue_lock);
    return empty;
}

static void accept_connections(cf_loop *loop) {
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
        int fd = accept4(loop->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: a level-triggered listener would spin,
                 * so stop listening until the next timer tick. */
                if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, loop->listen_fd, NULL) != 0)
                    STAT_ADD(loop, epoll_errors, 1);
                loop->accept_paused = true;
            }
            return;
        }
        if ((size_t)fd >= loop->conns_capacity) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        cf_conn *c = cfi_conn_create(loop, fd);
        if (!c) {
            close(fd);
            continue;
        }
        STAT_ADD(loop, connections_accepted, 1);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) { /* never to be heard */
            STAT_ADD(loop, epoll_errors, 1);
            cfi_conn_destroy(c, 1006);
        }
    }
}

static void run_timers(cf_loop *loop, uint64_t now) {
    if (loop->accept_paused && !loop->stopping && loop->listen_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = TAG_LISTENER};
        if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->listen_fd, &ev) == 0) loop->accept_paused = false;
        else STAT_ADD(loop, epoll_errors, 1); /* paused still: tried again next tick */
    }
    cf_conn *c = loop->timer_list;
    while (c) {
        cf_conn *next = c->timer_link.next; /* a timeout destroys c alone */
        if (c->deadline_ms && now >= c->deadline_ms) cfi_conn_on_timeout(c);
        c = next;
    }
}

/* ------------------------------------------------------ batched writes -- */

/* Creates the loop's ring on its own thread (the only thread that submits). */
static void ring_open(cf_loop *loop) {
    if (!loop->server->config.use_io_uring) return;
    struct io_uring *ring = calloc(1, sizeof(struct io_uring));
    loop->ring_msgs = calloc(RING_BATCH, sizeof(struct msghdr));
    loop->ring_iov = calloc(RING_BATCH * RING_IOV_PER_CONN, sizeof(struct iovec));
    loop->ring_conns = calloc(RING_BATCH, sizeof(cf_conn *));
    loop->ring_totals = calloc(RING_BATCH, sizeof(size_t));
    if (!ring || !loop->ring_msgs || !loop->ring_iov || !loop->ring_conns || !loop->ring_totals ||
        io_uring_queue_init(RING_BATCH, ring, 0) != 0) {
        free(ring);
        return; /* no io_uring here (old kernel, seccomp): sendmsg it is */
    }
    loop->ring = ring;
    __atomic_store_n(&loop->ring_active, 1, __ATOMIC_RELEASE);
}

static void ring_close(cf_loop *loop) {
    if (loop->ring) {
        io_uring_queue_exit(loop->ring);
        free(loop->ring);
        loop->ring = NULL;
    }
    free(loop->ring_msgs);
    free(loop->ring_iov);
    free(loop->ring_conns);
    free(loop->ring_totals);
    loop->ring_msgs = NULL;
    loop->ring_iov = NULL;
    loop->ring_conns = NULL;
    loop->ring_totals = NULL;
    __atomic_store_n(&loop->ring_active, 0, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------ write list -- */

void cfi_loop_mark_write(cf_conn *c) {
    cf_loop *loop = c->loop;
    if (c->state == CONN_DEAD || conn_list_contains(&loop->write_list, c, WRITE_LINK)) return;
    conn_list_push(&loop->write_list, c, WRITE_LINK);
}

static cf_conn *write_list_pop(cf_loop *loop) {
    cf_conn *c = loop->write_list;
    if (c) conn_list_remove(&loop->write_list, c, WRITE_LINK);
    return c;
}

/* Applies the completions of a submitted batch until `expected` are in. The
 * sends complete during the submission (MSG_DONTWAIT), so this rarely waits;
 * it must not return early, because a send still in flight reads bytes its
 * connection's queue owns. Returns how many were applied. */
static unsigned apply_completions(cf_loop *loop, unsigned expected) {
    unsigned applied = 0;
    while (applied < expected) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(loop->ring, &cqe);
        if (rc == -EINTR) continue;
        if (rc < 0) break;
        uint64_t i = io_uring_cqe_get_data64(cqe);
        int32_t result = cqe->res;
        io_uring_cqe_seen(loop->ring, cqe);
        cf_conn *c = loop->ring_conns[i];
        loop->ring_conns[i] = NULL;
        cfi_conn_flush_finish(c, cfi_conn_wrote(c, result, loop->ring_totals[i]));
        applied++;
    }
    return applied;
}

/* Writes up to RING_BATCH connections of the write list with one io_uring
 * submission instead of one sendmsg syscall each: the sends are
 * non-blocking, so they complete during the submission and their results
 * are applied exactly as sendmsg's would be. Connections a result puts back
 * on the list (more queued than one send takes) go in a later batch. */
static void flush_batch(cf_loop *loop) {
    unsigned count = 0;
    cf_conn *c;
    while (count < RING_BATCH && (c = write_list_pop(loop))) {
        if (c->write_failed || c->out.count == 0 || c->ssl) {
            cfi_conn_flush(c); /* nothing to send, or TLS (encrypted per connection, SSL_write) */
            continue;
        }
        struct iovec *iov = loop->ring_iov + (size_t)count * RING_IOV_PER_CONN;
        size_t n = cfi_conn_gather(c, iov, RING_IOV_PER_CONN, &loop->ring_totals[count]);
        struct io_uring_sqe *sqe = io_uring_get_sqe(loop->ring);
        if (n == 1) {
            /* The fan-out case: one frame. SEND skips SENDMSG's msghdr import. */
            io_uring_prep_send(sqe, c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } else {
            loop->ring_msgs[count] = (struct msghdr){.msg_iov = iov, .msg_iovlen = n};
            io_uring_prep_sendmsg(sqe, c->fd, &loop->ring_msgs[count], MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        io_uring_sqe_set_data64(sqe, count);
        loop->ring_conns[count++] = c;
    }
    if (count == 0) return;
    /* The kernel submits in order and stops at a failure: the first
     * `submitted` sends are in, the rest are still in the submission queue. */
    int rc = io_uring_submit_and_wait(loop->ring, count);
    unsigned submitted = rc > 0 ? (unsigned)rc : 0;
    unsigned applied = apply_completions(loop, submitted);
    if (applied == count) return;
    /* The ring failed us. Closing it discards the unsubmitted sends, which
     * then go out as plain writes. A submitted send whose completion never
     * came may or may not have reached the socket: its connection cannot go
     * on without risking lost or repeated bytes, so it ends. */
    cf_conn **batch = loop->ring_conns;
    loop->ring_conns = NULL; /* kept from ring_close's frees until this batch is settled */
    ring_close(loop);
    for (unsigned i = 0; i < count; i++) {
        if (!(c = batch[i])) continue;
        if (i < submitted) cfi_conn_destroy(c, 1006);
        else cfi_conn_flush(c);
    }
    free(batch);
}

void cfi_loop_flush(cf_loop *loop) {
    /* Flushing can list connections again (a close after a slow-consumer
     * cut, more frames than one send takes), so it runs until the list
     * stays empty. Pops from the list itself, never a detached copy, so a
     * connection destroyed meanwhile is simply no longer on it. */
    while (loop->write_list) {
        if (loop->ring) flush_batch(loop);
        else cfi_conn_flush(write_list_pop(loop));
    }
}

/* ---------------------------------------------------------- write pacing -- */

/* The delay in force: the adaptive one, never below the configured floor,
 * and none while stopping (close frames must go out now). */
static uint32_t loop_write_delay(const cf_loop *loop) {
    if (loop->stopping) return 0;
    uint32_t floor = loop->server->config.min_write_delay_ms;
    return loop->write_delay_ms > floor ? loop->write_delay_ms : floor;
}

/* Writes what is queued, unless a write delay is in force and not yet over:
 * then the frames wait, and later ones join them in the same write. */
/* The frames published since the last flush were written by it (or queued
 * behind a slow reader's earlier bytes, which is the reader's latency). */
static void time_flushed_frames(cf_loop *loop) {
    if (!loop->latency_pending_count) return;
    uint64_t now = cfi_now_ns();
    for (uint32_t i = 0; i < loop->latency_pending_count; i++) {
        uint64_t created = loop->latency_pending[i];
        cfi_histogram_observe(&loop->delivery_latency, now > created ? now - created : 0);
    }
    loop->latency_pending_count = 0;
}

static void flush_when_due(cf_loop *loop, uint64_t now) {
    uint32_t delay = loop_write_delay(loop);
    if (delay && now < loop->next_flush_ms) return;
    cfi_loop_flush(loop);
    time_flushed_frames(loop);
    loop->next_flush_ms = now + delay;
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* At the end of each pacing period: how much CPU did the loop use, so how
 * long should it hold its writes next (write_pacing.c)? */
static void update_pacing(cf_loop *loop, uint64_t now) {
    uint64_t period = now - loop->pacing_start_ns;
    if (period < PACING_PERIOD_NS) return;
    uint64_t cpu = thread_cpu_ns();
    loop->write_delay_ms = cf_write_delay_next(loop->write_delay_ms, cpu - loop->pacing_cpu_ns, period,
                                               loop->server->config.max_write_delay_ms);
    if (loop_write_delay(loop)) STAT_ADD(loop, delayed_write_periods, 1);
    loop->pacing_start_ns = now;
    loop->pacing_cpu_ns = cpu;
}

void cfi_loop_free_dead(cf_loop *loop) {
    cf_conn *c = loop->dead_list;
    loop->dead_list = NULL;
    while (c) {
        cf_conn *next = c->next_dead;
        cfi_conn_free(c);
        c = next;
    }
}

/* ------------------------------------------------------------- the turn -- */

/* What cfi_loop_run carries from one turn to the next: when the timer sweep,
 * the idle sweep and the source's tick are next due. Kept on the loop
 * thread's stack, like the event array. */
typedef struct loop_schedule {
    uint64_t next_tick;         /* ms: timers, a paused listener, the idle sweep */
    uint64_t next_idle_sweep;   /* ms */
    uint64_t next_source_tick;  /* ns, when ticking */
    bool idle_checks;           /* an idle timeout is configured */
    bool ticking;               /* loop 0 of a server with a ticker */
} loop_schedule;

/* How long epoll may sleep (ns, -1 = until an event): until the next timer
 * sweep when anything is timed, the source's next tick, or the moment held
 * writes are due, whichever comes first. Reads the clock only for the
 * deadlines in force. */
static inline int64_t wait_timeout_ns(const cf_loop *loop, const loop_schedule *sched) {
    int64_t wait_ns = -1;
    if (loop->timer_list || loop->stopping || loop->accept_paused || (sched->idle_checks && loop->conn_count > 0)) {
        uint64_t now = cfi_now_ms();
        wait_ns = sched->next_tick > now ? (int64_t)(sched->next_tick - now) * 1000000 : 0;
    }
    if (sched->ticking) {
        uint64_t now = cfi_now_ns();
        int64_t until = sched->next_source_tick > now ? (int64_t)(sched->next_source_tick - now) : 0;
        if (wait_ns < 0 || until < wait_ns) wait_ns = until;
    }
    if (loop->write_list && loop_write_delay(loop)) {
        /* Held writes: wake when they are due. */
        uint64_t now = cfi_now_ms();
        int64_t until = loop->next_flush_ms > now ? (int64_t)(loop->next_flush_ms - now) * 1000000 : 0;
        if (wait_ns < 0 || until < wait_ns) wait_ns = until;
    }
    return wait_ns;
}

/* Sleeps in epoll for at most wait_ns and returns its events. The two clock
 * reads around the sleep also drive write pacing: a loop that slept a whole
 * pacing period is not overloaded, whatever came before, and each period's
 * end re-decides the write delay (update_pacing). */
static inline int wait_for_events(cf_loop *loop, struct epoll_event *events, int64_t wait_ns) {
    uint64_t wait_started = cfi_now_ns();
    int n;
    if (wait_ns < 0) {
        n = epoll_wait(loop->epoll_fd, events, MAX_EVENTS, -1);
    } else {
        struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        n = epoll_pwait2(loop->epoll_fd, events, MAX_EVENTS, &ts, NULL);
    }
    uint64_t woke = cfi_now_ns();
    if (woke - wait_started >= PACING_PERIOD_NS) loop->write_delay_ms = 0;
    update_pacing(loop, woke);
    return n;
}

/* Dispatches one turn's events: the wake-up eventfd (only drained: the
 * commands run after the events anyway), the listener, the source's fd, and
 * connections. A connection destroyed earlier in the same turn is still in
 * the array: it is CONN_DEAD, skipped, and freed only at the turn's end. */
static inline void handle_events(cf_loop *loop, const struct epoll_event *events, int n) {
    for (int i = 0; i < n; i++) {
        void *tag = events[i].data.ptr;
        if (tag == TAG_EVENTFD) {
            uint64_t v;
            ssize_t r = read(loop->event_fd, &v, sizeof(v));
            (void)r;
        } else if (tag == TAG_LISTENER) {
            if (!loop->stopping) accept_connections(loop);
        } else if (tag == TAG_WATCH) {
            if (loop->watch_fd >= 0) {
                uint8_t drain[64];
                while (read(loop->watch_fd, drain, sizeof(drain)) > 0) {}
                loop->watch_ready(loop->watch_context);
            }
        } else {
            cf_conn *c = tag;
            if (c->state == CONN_DEAD) continue;
            if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) cfi_conn_on_readable(c);
            if (c->state != CONN_DEAD && (events[i].events & EPOLLOUT)) cfi_conn_on_writable(c);
        }
    }
}

/* Runs the source's tick (loop 0 of a server with a ticker) when it is due,
 * before the commands, so what it publishes goes out in this turn's flush.
 * Ticks missed by more than an interval are skipped, not made up. */
static inline void run_source_tick(cf_loop *loop, loop_schedule *sched) {
    if (!sched->ticking || loop->stopping) return;
    cf_server *server = loop->server;
    uint64_t now = cfi_now_ns();
    if (now >= sched->next_source_tick) {
        server->tick(server->tick_context);
        sched->next_source_tick += server->tick_interval_ns;
        if (sched->next_source_tick <= now) /* fell behind */
            sched->next_source_tick = now + server->tick_interval_ns;
    }
}

/* Runs the commands other threads posted, then those that running them
 * posted to this loop (a callback's reply): a loop's own submissions do not
 * wake it, so they run now, a bounded number of rounds. */
static inline void run_all_commands(cf_loop *loop) {
    run_commands(loop);
    for (int again = 0; again < 4 && !queue_is_empty(loop); again++) run_commands(loop);
}

/* Every TIMER_TICK_MS: deadlines (and a paused listener), once a second the
 * idle sweep, then a flush of what they queued (close frames, pings). */
static inline void run_timer_tick(cf_loop *loop, loop_schedule *sched, uint64_t now) {
    run_timers(loop, now);
    if (sched->idle_checks && now >= sched->next_idle_sweep) {
        /* A walk over the loop's connections once a second: cheap
         * next to the traffic of that many connections. */
        for (size_t fd = 0; fd < loop->conns_capacity; fd++)
            if (loop->conns[fd]) cfi_conn_check_idle(loop->conns[fd], now);
        sched->next_idle_sweep = now + IDLE_SWEEP_MS;
    }
    flush_when_due(loop, now);
    sched->next_tick = now + TIMER_TICK_MS;
}

/* After the last turn: ends the connections left (the stop grace is over),
 * frees them, closes the ring, and from now on drops this loop's commands,
 * queued or still to come (host threads may still reply to gone
 * connections). */
static void finish_loop(cf_loop *loop) {
    for (size_t fd = 0; fd < loop->conns_capacity; fd++) {
        cf_conn *c = loop->conns[fd];
        if (c && c->state != CONN_DEAD) cfi_conn_destroy(c, 1006);
    }
    cfi_loop_free_dead(loop);
    ring_close(loop);
    pthread_mutex_lock(&loop->queue_lock);
    loop->stopped = true;
    loop_cmd *left = loop->queue;
    size_t left_count = loop->queue_length;
    loop->queue = NULL;
    loop->queue_length = loop->queue_capacity = 0;
    pthread_mutex_unlock(&loop->queue_lock);
    release_commands(left, left_count);
    free(left);
}

/* The loop thread. Each turn, in this order: sleep until something is due,
 * handle the events, run the source's tick, run the commands, flush (unless
 * writes are held), on the timer tick run deadlines and the idle sweep and
 * flush again, and free the connections destroyed during the turn. It ends
 * once stopping and every connection is gone or the stop grace is over. */
void *cfi_loop_run(void *arg) {
    cf_loop *loop = arg;
    current_loop = loop;
    ring_open(loop);
    cfi_server_loop_running(loop->server);
    struct epoll_event events[MAX_EVENTS];
    loop_schedule sched;
    sched.next_tick = cfi_now_ms() + TIMER_TICK_MS;
    sched.next_idle_sweep = cfi_now_ms() + IDLE_SWEEP_MS;
    sched.idle_checks = loop->server->config.idle_timeout_ms > 0;
    sched.ticking = loop->index == 0 && loop->server->tick;
    sched.next_source_tick = cfi_now_ns() + (sched.ticking ? loop->server->tick_interval_ns : 0);
    loop->pacing_start_ns = cfi_now_ns();
    loop->pacing_cpu_ns = thread_cpu_ns();
    for (;;) {
        int n = wait_for_events(loop, events, wait_timeout_ns(loop, &sched));
        uint64_t turn_started = cfi_now_ns();
        handle_events(loop, events, n);
        run_source_tick(loop, &sched);
        run_all_commands(loop);
        uint64_t now = cfi_now_ms();
        flush_when_due(loop, now);
        if (now >= sched.next_tick) run_timer_tick(loop, &sched, now);
        cfi_loop_free_dead(loop);
        cfi_histogram_observe(&loop->turn_duration, cfi_now_ns() - turn_started);
        if (loop->stopping && (loop->conn_count == 0 || now >= loop->stop_deadline_ms)) break;
    }
    finish_loop(loop);
    return NULL;
}
