/*
 * internal.h — private types and functions shared by the CFanout sources.
 * Not part of the public API (that is include/cfanout.h alone).
 *
 * Ownership: a cf_loop owns its connections, its endpoint table and its
 * command queue; everything but the queue is touched only by the loop thread.
 *
 * Lifetimes (the rules every free in this directory follows; the why is in
 * docs/memory-safety.md):
 *
 * - A connection is reachable from its loop's conns[] table, the endpoint
 *   subscriptions, the timer list, the write list and its epoll
 *   registration, and, within one loop turn only, from local variables:
 *   the epoll event array of the turn and the io_uring batch being written.
 * - cfi_conn_destroy takes it out of every one of those structures at once
 *   (it deletes the epoll registration before closing the fd) and puts it on
 *   the dead list. A destroyed connection is on no other list, so no later
 *   turn can reach it; pointers held during the current turn see CONN_DEAD
 *   and skip it. cfi_loop_free_dead frees the dead list only at the end of a
 *   turn, when no such local pointer is left.
 * - Frames are refcounted. Each holder owns one reference: a command
 *   (PUBLISH, SEND) until it has run, each output queue entry until its bytes
 *   are written or the queue is released, the host's cache, a static route.
 *   An io_uring send points into frames its connection's queue owns; the
 *   loop waits for every submitted send to complete before it returns to
 *   anything that could change that queue.
 * - Other threads reach a loop only through its command queue, naming
 *   connections by cf_conn_id (loop, generation, fd), never by pointer.
 *
 * Naming: every function or variable declared here with external linkage
 * is prefixed cfi_ ("cfanout internal"), so it cannot clash with a symbol
 * of whatever links CFanout, and a reader sees at once that it is not the
 * public cf_ API. Types, enum constants, macros and the static inline list
 * helpers keep plain names: they have no linkage, so they cannot clash at
 * link time, and a prefix would only lengthen every declaration. Static
 * functions inside a .c file keep plain names too.
 */
#ifndef CFANOUT_INTERNAL_H
#define CFANOUT_INTERNAL_H

#include "cfanout.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <sys/uio.h>

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* ------------------------------------------------------------- frames -- */

struct cf_frame {
    uint32_t refs;            /* atomic: frames are shared across loops */
    uint32_t endpoint_hash;
    uint16_t endpoint_length;
    size_t length;            /* encoded bytes */
    char *endpoint;           /* points into this allocation, NUL-terminated */
    uint8_t *bytes;           /* points into this allocation */
    uint64_t created_ns;      /* monotonic: the delivery-latency histogram's start */
};

/* A frame (or raw HTTP bytes) owned by one connection's output queue. */
cf_frame *cfi_frame_create_raw(size_t length);
cf_frame *cfi_frame_create_control(uint8_t opcode, const uint8_t *payload, size_t length);
cf_frame *cfi_frame_create_close(uint16_t code, const char *reason);
uint32_t cfi_endpoint_hash(const char *name, size_t length);

/* ------------------------------------------------------------ commands -- */

enum cmd_type { CMD_PUBLISH, CMD_SUBSCRIBE, CMD_UNSUBSCRIBE, CMD_SEND, CMD_CLOSE, CMD_STOP, CMD_WATCH, CMD_UNWATCH, CMD_DRAIN };

typedef struct loop_cmd {
    uint8_t type;
    uint16_t code;
    cf_conn_id conn;
    cf_frame *frame;   /* PUBLISH, SEND, DRAIN: one reference owned by the command */
    char *text;        /* SUBSCRIBE/UNSUBSCRIBE endpoint, CLOSE reason (malloc'd) */
    int fd;            /* WATCH */
    cf_ready_fn ready; /* WATCH */
    void *context;     /* WATCH */
    size_t text_length;
} loop_cmd;

/* ---------------------------------------------------------- endpoints -- */

typedef struct cf_conn cf_conn;
typedef struct cf_tls cf_tls;
typedef struct ssl_st SSL; /* OpenSSL's, repeated here so only tls.c includes its headers */
typedef struct endpoint endpoint;
typedef struct address_count address_count;
typedef struct cf_limits cf_limits;

/* One (connection, endpoint) pair, indexed from both sides for O(1) removal. */
typedef struct subscription {
    endpoint *ep;
    cf_conn *conn;
    uint32_t ep_index;
    uint32_t conn_index;
} subscription;

struct endpoint {
    endpoint *next;        /* hash chain */
    uint32_t hash;
    uint32_t length;
    subscription **subs;
    uint32_t count, capacity;
    char name[];
};

typedef struct endpoint_table {
    endpoint **buckets;
    size_t bucket_count;   /* power of two */
    size_t count;
} endpoint_table;

void cfi_endpoints_init(endpoint_table *t);
void cfi_endpoints_free(endpoint_table *t);
endpoint *cfi_endpoints_find(const endpoint_table *t, const char *name, size_t length, uint32_t hash);
/* Returns 1 if added, 0 if already subscribed, -1 on allocation failure. */
int cfi_endpoints_subscribe(endpoint_table *t, cf_conn *conn, const char *name, size_t length);
int cfi_endpoints_unsubscribe(endpoint_table *t, cf_conn *conn, const char *name, size_t length);
void cfi_endpoints_unsubscribe_all(endpoint_table *t, cf_conn *conn);

/* ------------------------------------------------------- connections -- */

enum conn_state {
    CONN_HTTP,        /* reading the request head */
    CONN_OPEN,        /* WebSocket open */
    CONN_CLOSING,     /* we sent a close frame and wait for the peer's */
    CONN_DRAINING,    /* write side shut down; discarding input until EOF */
    CONN_DEAD,        /* closed; freed at the end of the loop turn */
};

enum conn_kind { KIND_STREAM, KIND_ECHO };

typedef struct out_queue {
    cf_frame **frames;     /* ring buffer */
    uint32_t head, count, capacity;
    size_t head_offset;    /* bytes of frames[head] already written */
    size_t bytes;          /* unwritten bytes queued */
} out_queue;

typedef struct cf_loop cf_loop;

/* A connection's place in one of its loop's doubly linked lists (timers,
 * pending writes), so leaving it is O(1) and cfi_conn_destroy can leave
 * all. */
typedef struct conn_link {
    cf_conn *prev, *next;
} conn_link;

struct cf_conn {
    int fd;
    uint8_t state;
    uint8_t kind;
    bool opened;            /* the host saw on_open: it must see on_close */
    bool shutdown_after_flush;
    bool epollout_armed;
    bool write_failed;      /* a write failed where the connection could not be torn down */
    bool in_message;        /* a fragmented data message is in progress */
    uint8_t message_opcode;
    uint16_t close_code;    /* reported to on_close */
    cf_conn_id id;
    cf_loop *loop;
    conn_link write_link;   /* on loop->write_list while it has output to flush */
    conn_link timer_link;   /* on loop->timer_list while deadline_ms != 0 */
    cf_conn *next_dead;     /* dead list, freed at the end of the turn */
    uint64_t deadline_ms;   /* 0 = none */
    uint32_t utf8_state;
    uint64_t text_checked;  /* payload bytes of an incomplete text frame already validated */
    /* Input: bytes of an incomplete request head or frame. */
    uint8_t *in;
    size_t in_length, in_capacity;
    /* Reassembly of a fragmented message. */
    uint8_t *message;
    size_t message_length, message_capacity;
    out_queue out;
    subscription **subs;
    uint32_t sub_count, sub_capacity;
    bool admitted;              /* counted by the connection limits (limits.c) */
    bool pinged;                /* an idle ping is out, unanswered */
    uint64_t heard_ms;          /* when the peer last sent anything */
    address_count *address;     /* its source address's counter, NULL if none */
    SSL *ssl;                   /* on a TLS listener (tls.c), else NULL */
    bool tls_read_wants_write;  /* a TLS read needs the socket writable first */
    size_t tls_retry_length;    /* a TLS write to repeat with these bytes, 0 if none */
};

/* ---------------------------------------------------------------- loop -- */

struct io_uring;

typedef struct loop_stats {
    uint64_t connections_accepted, connections_open, handshakes_rejected, protocol_errors;
    uint64_t slow_consumer_closes, messages_published, messages_delivered, bytes_written;
    uint64_t write_calls, connections_limited, origins_refused, idle_closes;
    uint64_t delayed_write_periods, handshake_timeouts, epoll_errors, draining_refusals;
    uint64_t tls_handshake_failures;
} loop_stats;

/* histogram.c: single writer (the loop), relaxed stores; readers copy. */
void cfi_histogram_observe(cf_histogram *h, uint64_t ns);
void cfi_histogram_read(const cf_histogram *h, cf_histogram *out);

/* Frames published with subscribers since the last flush whose latency is
 * timed at that flush (more wait untimed: the histogram samples). */
#define LATENCY_SAMPLES 256

/* Single-writer counters read by other threads: relaxed atomic store, no lock. */
#define STAT_ADD(loop, field, n) \
    __atomic_store_n(&(loop)->stats.field, (loop)->stats.field + (n), __ATOMIC_RELAXED)

struct cf_loop {
    cf_server *server;
    int index;
    pthread_t thread;
    bool thread_started;
    int epoll_fd, event_fd, listen_fd;

    /* The only state shared with other threads: the command queue. */
    pthread_mutex_t queue_lock;
    loop_cmd *queue;
    size_t queue_length, queue_capacity;
    bool wake_pending;

    loop_cmd *work;          /* the queue swapped out for processing */
    size_t work_capacity;
    uint8_t *read_buffer;
    size_t read_capacity;
    struct iovec *iov;
    cf_conn **conns;         /* by fd */
    size_t conns_capacity;
    size_t conn_count;
    uint32_t next_generation;
    cf_conn *write_list;     /* connections with output to flush (write_link) */
    cf_conn *timer_list;     /* connections with a deadline (timer_link) */
    cf_conn *dead_list;      /* destroyed this turn, chained through next_dead */
    endpoint_table endpoints;
    /* Batched writes (io_uring): one submission per RING_BATCH connections
     * on the write list (loop.c). NULL when disabled or unavailable; then
     * each connection is written with sendmsg. */
    struct io_uring *ring;
    struct msghdr *ring_msgs;
    struct iovec *ring_iov;
    cf_conn **ring_conns;
    size_t *ring_totals;
    volatile int ring_active;
    /* Write pacing (write_pacing.c): a saturated loop writes each
     * connection at most every write_delay_ms, so frames share segments. */
    uint32_t write_delay_ms;      /* the adaptive part; see loop_write_delay */
    uint64_t next_flush_ms;       /* when held writes are due */
    uint64_t pacing_start_ns;     /* the current pacing period began (monotonic) */
    uint64_t pacing_cpu_ns;       /* the loop thread's CPU time then */
    int watch_fd;            /* a source's readiness fd (loop 0), -1 if none */
    cf_ready_fn watch_ready;
    void *watch_context;
    bool stopping;
    bool stopped;            /* under queue_lock: the thread has left its loop; commands are dropped */
    bool accept_paused;      /* out of descriptors: listener off until the next tick */
    uint64_t stop_deadline_ms;
    loop_stats stats;
    uint64_t queue_depth;    /* atomic, written under queue_lock: commands waiting */
    uint64_t commands_run;   /* single writer */
    cf_histogram turn_duration;
    cf_histogram delivery_latency;
    uint8_t *tls_buffer;     /* one TLS record of plaintext (TLS listeners only) */
    uint64_t latency_pending[LATENCY_SAMPLES]; /* created_ns of frames awaiting their flush */
    uint32_t latency_pending_count;
};

typedef struct static_route {
    char *path;
    cf_frame *response;      /* the whole HTTP response, shared */
} static_route;

struct cf_server {
    cf_server_config config;
    char *host, *stream_path, *echo_path;   /* owned copies */
    cf_callbacks callbacks;
    cf_loop *loops;
    int loop_count;
    uint16_t bound_port;
    static_route *statics;
    size_t static_count;
    bool started, stopped;
    cf_tick_fn tick;          /* run on loop 0 every tick_interval_ns (optional) */
    void *tick_context;
    uint64_t tick_interval_ns;
    int ready;               /* atomic: what GET /readyz answers */
    int draining;            /* atomic: set once by cf_server_drain; upgrades get 503 */
    cf_tls *tls;             /* wss:// (tls.c); NULL for plain ws:// */
    cf_limits *limits;       /* connection counts (limits.c) */
    char *allowed_origins;   /* owned copy, newline-separated; NULL = any */
    pthread_mutex_t running_lock; /* guards loops_running; cf_server_start waits on it */
    pthread_cond_t running_changed;
    int loops_running;
};

/* tls.c — wss:// through OpenSSL. The context is shared by the loops and
 * replaced whole by a reload; reads and writes return bytes, 0 (read: the
 * peer closed), -EAGAIN or -EIO. */
#define TLS_RECORD_BYTES 16384
cf_tls *cfi_tls_create(const char *certificate_file, const char *key_file, char *errstr, size_t size);
int cfi_tls_reload(cf_tls *tls, char *errstr, size_t size);
void cfi_tls_destroy(cf_tls *tls);
SSL *cfi_tls_accept(cf_tls *tls, int fd);
ssize_t cfi_tls_read(cf_conn *c, void *buffer, size_t length);
bool cfi_tls_pending(const cf_conn *c);
ssize_t cfi_tls_write(cf_conn *c, const void *buffer, size_t length);
void cfi_tls_close_notify(cf_conn *c);
void cfi_tls_free(cf_conn *c);

/* Called by each loop thread once it runs (cf_server_start waits for all). */
void cfi_server_loop_running(cf_server *s);

/* limits.c — connection limits, checked at each upgrade. */
typedef enum { LIMIT_OK, LIMIT_TOTAL, LIMIT_ADDRESS } limit_verdict;
cf_limits *cfi_limits_create(void);
void cfi_limits_destroy(cf_limits *l);
/* Counts the connection in, or says which limit it would pass. */
limit_verdict cfi_limits_admit(cf_server *s, cf_conn *c);
void cfi_limits_release(cf_server *s, cf_conn *c);
bool cfi_limits_origin_allowed(const cf_server *s, const char *origin);

int cfi_loop_init(cf_loop *loop, cf_server *server, int index, char *errstr, size_t errstr_size);
int cfi_loop_listen(cf_loop *loop, char *errstr, size_t errstr_size);
void cfi_loop_destroy(cf_loop *loop);
void *cfi_loop_run(void *arg);
/* The single thread-safe entry point into a loop: queue + eventfd wake-up. */
void cfi_loop_submit(cf_loop *loop, const loop_cmd *cmd);
void cfi_loop_submit_many(cf_loop *loop, const loop_cmd *cmds, size_t count);
/* Puts a live connection on the write list (no-op if listed or dead). */
void cfi_loop_mark_write(cf_conn *c);
/* Writes every connection on the write list now, held writes included. */
void cfi_loop_flush(cf_loop *loop);
/* Frees the connections destroyed so far; only between loop turns. */
void cfi_loop_free_dead(cf_loop *loop);

/* The loop's intrusive connection lists (write_list, timer_list): `offset`
 * names the member's link for that list, WRITE_LINK or TIMER_LINK. A
 * connection is on a list iff it has a predecessor or is the head. */
#define WRITE_LINK offsetof(cf_conn, write_link)
#define TIMER_LINK offsetof(cf_conn, timer_link)
#define CONN_LINK(c, offset) ((conn_link *)((char *)(c) + (offset)))

static inline bool conn_list_contains(cf_conn *const *head, cf_conn *c, size_t offset) {
    return CONN_LINK(c, offset)->prev != NULL || *head == c;
}

static inline void conn_list_push(cf_conn **head, cf_conn *c, size_t offset) {
    CONN_LINK(c, offset)->prev = NULL;
    CONN_LINK(c, offset)->next = *head;
    if (*head) CONN_LINK(*head, offset)->prev = c;
    *head = c;
}

static inline void conn_list_remove(cf_conn **head, cf_conn *c, size_t offset) {
    if (!conn_list_contains(head, c, offset)) return;
    conn_link *link = CONN_LINK(c, offset);
    if (link->prev) CONN_LINK(link->prev, offset)->next = link->next;
    else *head = link->next;
    if (link->next) CONN_LINK(link->next, offset)->prev = link->prev;
    link->prev = link->next = NULL;
}

/* conn.c — a connection's state machine, frame reader and output queue,
 * run on its loop thread. */
cf_conn *cfi_conn_create(cf_loop *loop, int fd);
void cfi_conn_on_readable(cf_conn *c);
void cfi_conn_on_writable(cf_conn *c);
void cfi_conn_flush(cf_conn *c);
/* The pieces of cfi_conn_flush, for batched submission (io_uring): gather the
 * queue into iov, apply one write's result (bytes or -errno; returns 0 queue
 * empty, 1 socket full, 2 more queued, -1 failed), then finish. */
size_t cfi_conn_gather(cf_conn *c, struct iovec *iov, int max, size_t *total);
int cfi_conn_wrote(cf_conn *c, ssize_t result, size_t attempted);
void cfi_conn_flush_finish(cf_conn *c, int rc);
bool cfi_conn_enqueue(cf_conn *c, cf_frame *frame);    /* takes a new reference; false if not queued */
void cfi_conn_close(cf_conn *c, uint16_t code, const char *reason); /* graceful */
void cfi_conn_destroy(cf_conn *c, uint16_t code);      /* immediate */
void cfi_conn_on_timeout(cf_conn *c);
void cfi_conn_free(cf_conn *c);
void cfi_conn_set_deadline(cf_conn *c, uint64_t deadline_ms);
/* Pings a connection idle for half the idle timeout, closes one idle for all of it. */
void cfi_conn_check_idle(cf_conn *c, uint64_t now);
/* The end of a plain HTTP exchange (http_responses.c): queues the response
 * outside the output cap (bytes copied, or a shared frame retained), then
 * drains: the write side is shut once it is flushed. */
void cfi_conn_respond_and_drain(cf_conn *c, const char *bytes, size_t length);
void cfi_conn_respond_shared_and_drain(cf_conn *c, cf_frame *response);

/* http_responses.c — the plain HTTP answers a connection gives instead of
 * an upgrade. Each ends the connection after its flush. */
/* A request that is not a usable upgrade (req->status != 0): a static
 * route, GET /readyz, or the request's error (refused, so counted). */
void cfi_http_answer_non_upgrade(cf_conn *c, const cf_http_request *req);
/* Refuses an upgrade (400/404/405/414/426/431): counts handshakes_rejected,
 * then answers with the error. */
void cfi_http_refuse_request(cf_conn *c, int status, const char *why);
/* Answers with an HTTP error. Counts nothing: the caller counts the refusal
 * under its reason (origins_refused, connections_limited). */
void cfi_http_respond_error(cf_conn *c, int status, const char *why);

/* ---------------------------------------------------------------- clock -- */

/* CLOCK_MONOTONIC, in milliseconds (deadlines) and nanoseconds (ticks, pacing). */
uint64_t cfi_now_ms(void);
uint64_t cfi_now_ns(void);

#endif
