/*
 * conn.c — one connection's life on its loop thread: the HTTP upgrade, the
 * RFC 6455 frame reader, the output queue, and the close handshake. What a
 * request that is not an upgrade gets (a static route, /readyz, an HTTP
 * error) is decided and formatted in http_responses.c; it comes back here
 * to be queued (cfi_conn_respond_and_drain).
 *
 * Input is read into the loop's shared buffer and parsed in place; only the
 * tail of an incomplete request head or frame is copied into the connection,
 * so an idle connection holds no buffers. Output is a ring of refcounted
 * frames; the same frame may sit in thousands of rings at once.
 *
 * States: HTTP -> OPEN -> (CLOSING) -> DRAINING -> DEAD. A connection that
 * must end flushes what it owes (an HTTP error or a close frame), shuts down
 * its write side, and reads until the peer closes or the close timeout hits,
 * so the peer always sees our last bytes instead of a reset.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READS_PER_TURN 8
#define IDLE_BUFFER_KEEP 4096

/* ---------------------------------------------------------- lifecycle -- */

void cfi_conn_set_deadline(cf_conn *c, uint64_t deadline_ms) {
    cf_loop *loop = c->loop;
    bool listed = c->deadline_ms != 0;
    c->deadline_ms = deadline_ms;
    if (deadline_ms && !listed) conn_list_push(&loop->timer_list, c, TIMER_LINK);
    else if (!deadline_ms && listed) conn_list_remove(&loop->timer_list, c, TIMER_LINK);
}

cf_conn *cfi_conn_create(cf_loop *loop, int fd) {
    cf_conn *c = calloc(1, sizeof(cf_conn));
    if (!c) return NULL;
    if (loop->server->tls && !(c->ssl = cfi_tls_accept(loop->server->tls, fd))) {
        free(c);
        return NULL;
    }
    c->fd = fd;
    c->loop = loop;
    c->state = CONN_HTTP;
    c->kind = KIND_STREAM;
    uint32_t generation = ++loop->next_generation & 0xFFFFFFu;
    c->id = ((uint64_t)loop->index << 56) | ((uint64_t)generation << 32) | (uint32_t)fd;
    loop->conns[fd] = c;
    loop->conn_count++;
    __atomic_store_n(&loop->stats.connections_open, loop->conn_count, __ATOMIC_RELAXED);
    cfi_conn_set_deadline(c, cfi_now_ms() + loop->server->config.handshake_timeout_ms);
    return c;
}

static void mark_write(cf_conn *c) { cfi_loop_mark_write(c); }

static void release_output(cf_conn *c, bool keep_partial_head) {
    out_queue *q = &c->out;
    uint32_t keep = (keep_partial_head && q->count > 0 && q->head_offset > 0) ? 1 : 0;
    for (uint32_t i = keep; i < q->count; i++) {
        cf_frame *f = q->frames[(q->head + i) & (q->capacity - 1)];
        q->bytes -= f->length - (i == 0 ? q->head_offset : 0);
        cf_frame_release(f);
    }
    q->count = keep;
    if (!keep) {
        q->head = 0;
        q->head_offset = 0;
        q->bytes = 0;
    }
}

/* Our last bytes are queued: flush them, shut down the write side, then read
 * until the peer closes (or the close timeout), so it sees them, not a reset. */
static void drain_after_flush(cf_conn *c) {
    c->state = CONN_DRAINING;
    c->shutdown_after_flush = true;
    cfi_conn_set_deadline(c, cfi_now_ms() + c->loop->server->config.close_timeout_ms);
}

/* Ends the connection now and leaves every structure that can reach it
 * (see the lifetime rules in internal.h): subscriptions, output, timers, the
 * write list, epoll, the fd table. Only the dead list keeps it, until the
 * end of the loop turn. */
void cfi_conn_destroy(cf_conn *c, uint16_t code) {
    if (c->state == CONN_DEAD) return;
    cf_loop *loop = c->loop;
    c->state = CONN_DEAD;
    cfi_endpoints_unsubscribe_all(&loop->endpoints, c);
    release_output(c, false);
    free(c->out.frames);
    c->out.frames = NULL;
    free(c->in);
    c->in = NULL;
    free(c->message);
    c->message = NULL;
    if (c->ssl) cfi_tls_free(c);
    cfi_conn_set_deadline(c, 0);
    conn_list_remove(&loop->write_list, c, WRITE_LINK);
    cfi_limits_release(loop->server, c);
    /* Deleted before the close: an epoll item lives as long as the file, which
     * the kernel may hold beyond the fd, and must never name a freed connection.
     * It fails only for an fd never added (accept's ADD failed): nothing to undo. */
    (void)epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    loop->conns[c->fd] = NULL;
    loop->conn_count--;
    __atomic_store_n(&loop->stats.connections_open, loop->conn_count, __ATOMIC_RELAXED);
    c->next_dead = loop->dead_list;
    loop->dead_list = c;
    if (c->opened) {
        cf_callbacks *cb = &loop->server->callbacks;
        if (cb->on_close) cb->on_close(cb->context, c->id, code);
    }
}

void cfi_conn_free(cf_conn *c) { free(c); }


/* ------------------------------------------------------------- output -- */

static void enqueue_owned(cf_conn *c, cf_frame *f);

static size_t output_limit(const cf_conn *c) {
    const cf_server_config *cfg = &c->loop->server->config;
    return c->kind == KIND_ECHO ? cfg->echo_max_message_bytes * 2 + cfg->max_output_bytes
                                : cfg->max_output_bytes;
}

/* Sends close, moves to DRAINING: write side shut after the flush. A
 * connection that already sent its close (CLOSING) sends nothing more
 * (RFC 6455 5.5.1): it only stops waiting for the peer's. */
static void close_and_drain(cf_conn *c, uint16_t code, const char *reason) {
    if (c->state == CONN_OPEN) {
        cf_frame *f = cfi_frame_create_close(code, reason);
        if (f) enqueue_owned(c, f);
        c->close_code = code;
    }
    drain_after_flush(c);
    mark_write(c);
}

/* Fails the WebSocket connection (RFC 6455 7.1.7) on a protocol error. */
static void conn_fail(cf_conn *c, uint16_t code, const char *reason) {
    STAT_ADD(c->loop, protocol_errors, 1);
    close_and_drain(c, code, reason);
}

static void slow_consumer(cf_conn *c) {
    STAT_ADD(c->loop, slow_consumer_closes, 1);
    /* Nothing queued can reach the client in time: drop it (but finish a
     * partly written frame, or the stream would be corrupt), then close. */
    release_output(c, true);
    cf_frame *f = cfi_frame_create_close(CF_CLOSE_POLICY_VIOLATION, "slow consumer: output queue over limit");
    if (f) enqueue_owned(c, f);
    c->close_code = CF_CLOSE_POLICY_VIOLATION;
    c->state = CONN_CLOSING;
    cfi_conn_set_deadline(c, cfi_now_ms() + c->loop->server->config.close_timeout_ms);
}

static bool queue_push(out_queue *q, cf_frame *f) {
    if (q->count == q->capacity) {
        uint32_t cap = q->capacity ? q->capacity * 2 : 4;
        cf_frame **a = malloc(cap * sizeof(cf_frame *));
        if (!a) return false;
        for (uint32_t i = 0; i < q->count; i++) a[i] = q->frames[(q->head + i) & (q->capacity - 1)];
        free(q->frames);
        q->frames = a;
        q->capacity = cap;
        q->head = 0;
    }
    q->frames[(q->head + q->count) & (q->capacity - 1)] = f;
    q->count++;
    q->bytes += f->length;
    return true;
}

/* Queues a frame the connection already owns a reference to. Control frames
 * and handshake bytes bypass the slow-consumer cap. */
/* Out of memory for a connection's output: it cannot be served any more.
 * It is torn down by its next flush, never here, because callers (a fan-out
 * walk among them) still hold it. */
static void output_failed(cf_conn *c) {
    c->write_failed = true;
    mark_write(c);
}

static void enqueue_owned(cf_conn *c, cf_frame *f) {
    if (!queue_push(&c->out, f)) {
        cf_frame_release(f);
        output_failed(c);
        return;
    }
    mark_write(c);
}

/* Arms or disarms EPOLLOUT. False (counted) when the kernel refuses: the
 * connection's readiness can no longer be followed, so the caller ends it. */
static bool set_epollout(cf_conn *c, bool on) {
    if (c->epollout_armed == on) return true;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(c->loop->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
        STAT_ADD(c->loop, epoll_errors, 1);
        return false;
    }
    c->epollout_armed = on;
    return true;
}

/* Advances the queue past n written bytes, releasing finished frames. */
static void queue_consume(out_queue *q, size_t n) {
    q->bytes -= n;
    while (n > 0) {
        cf_frame *f = q->frames[q->head];
        size_t left = f->length - q->head_offset;
        if (n < left) {
            q->head_offset += n;
            return;
        }
        n -= left;
        cf_frame_release(f);
        q->head = (q->head + 1) & (q->capacity - 1);
        q->count--;
        q->head_offset = 0;
    }
}

size_t cfi_conn_gather(cf_conn *c, struct iovec *iov, int max, size_t *total) {
    out_queue *q = &c->out;
    size_t n = 0;
    *total = 0;
    for (uint32_t i = 0; i < q->count && n < (size_t)max; i++) {
        cf_frame *f = q->frames[(q->head + i) & (q->capacity - 1)];
        size_t off = i == 0 ? q->head_offset : 0;
        iov[n].iov_base = f->bytes + off;
        iov[n].iov_len = f->length - off;
        *total += f->length - off;
        n++;
    }
    return n;
}

int cfi_conn_wrote(cf_conn *c, ssize_t result, size_t attempted) {
    cf_loop *loop = c->loop;
    STAT_ADD(loop, write_calls, 1);
    if (result < 0) {
        if (result == -EAGAIN || result == -EWOULDBLOCK || result == -EINTR)
            return set_epollout(c, true) ? 1 : -1;
        return -1;
    }
    STAT_ADD(loop, bytes_written, (uint64_t)result);
    queue_consume(&c->out, (size_t)result);
    if ((size_t)result < attempted) /* the socket buffer is full */
        return set_epollout(c, true) ? 1 : -1;
    return c->out.count > 0 ? 2 : 0;
}

/* Writes as much of the queue as the socket takes now, in one sendmsg per
 * IOV_MAX frames. Returns 0 when the queue is empty, 1 when bytes remain
 * (EPOLLOUT is then armed), -1 on a write error. Never tears the connection
 * down, so it is safe in the middle of a fan-out. */
static int tls_write_queue(cf_conn *c);

static int write_queue(cf_conn *c) {
    if (c->ssl) return tls_write_queue(c);
    int rc = 2;
    while (rc == 2) {
        size_t total;
        size_t iovcnt = cfi_conn_gather(c, c->loop->iov, IOV_MAX, &total);
        if (iovcnt == 0) return 0;
        struct msghdr msg = {.msg_iov = c->loop->iov, .msg_iovlen = iovcnt};
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        rc = cfi_conn_wrote(c, n < 0 ? -errno : n, total);
    }
    return rc;
}

/* The TLS form of write_queue: the queued frames' bytes, up to one record,
 * copied into the loop's buffer and written with one SSL_write. A write
 * OpenSSL could not finish is repeated with the same bytes (the queue's
 * head does not move until it is written, and new frames only append). */
static int tls_write_queue(cf_conn *c) {
    cf_loop *loop = c->loop;
    int rc = 2;
    while (rc == 2) {
        size_t total;
        size_t iovcnt = cfi_conn_gather(c, loop->iov, IOV_MAX, &total);
        if (iovcnt == 0) return 0;
        size_t want = c->tls_retry_length ? c->tls_retry_length : (total < TLS_RECORD_BYTES ? total : TLS_RECORD_BYTES);
        size_t copied = 0;
        for (size_t i = 0; i < iovcnt && copied < want; i++) {
            size_t part = loop->iov[i].iov_len < want - copied ? loop->iov[i].iov_len : want - copied;
            memcpy(loop->tls_buffer + copied, loop->iov[i].iov_base, part);
            copied += part;
        }
        ssize_t n = cfi_tls_write(c, loop->tls_buffer, copied);
        c->tls_retry_length = n == -EAGAIN ? copied : 0;
        rc = cfi_conn_wrote(c, n, copied);
    }
    return rc;
}

void cfi_conn_flush_finish(cf_conn *c, int rc) {
    if (rc < 0) {
        cfi_conn_destroy(c, 1006);
        return;
    }
    if (rc == 2) {
        mark_write(c); /* more queued than one write takes: again this turn */
        return;
    }
    if (rc > 0) return;
    if (!set_epollout(c, false)) {
        cfi_conn_destroy(c, 1006);
        return;
    }
    out_queue *q = &c->out;
    if (q->capacity > 16) {
        free(q->frames);
        q->frames = NULL;
        q->capacity = 0;
        q->head = 0;
    }
    if (c->shutdown_after_flush) {
        c->shutdown_after_flush = false;
        if (c->ssl) cfi_tls_close_notify(c);
        shutdown(c->fd, SHUT_WR);
    }
}

void cfi_conn_flush(cf_conn *c) { cfi_conn_flush_finish(c, c->write_failed ? -1 : write_queue(c)); }

/* May `length` more bytes be queued under the output cap? An empty queue
 * always takes a frame (one message larger than the cap is still
 * deliverable). Near the cap the socket is written first, so a burst is
 * judged by what the client has not read, not by what one loop turn queued. */
static bool has_room(cf_conn *c, size_t length) {
    size_t limit = output_limit(c);
    if (c->out.bytes == 0 || c->out.bytes + length <= limit) return true;
    if (!c->write_failed && write_queue(c) < 0) c->write_failed = true;
    return !c->write_failed && (c->out.bytes == 0 || c->out.bytes + length <= limit);
}

/* Queues a shared frame (taking a reference), or cuts a slow consumer. */
bool cfi_conn_enqueue(cf_conn *c, cf_frame *frame) {
    if (!has_room(c, frame->length)) {
        if (!c->write_failed) slow_consumer(c);
        mark_write(c);
        return false;
    }
    enqueue_owned(c, cf_frame_retain(frame));
    return !c->write_failed;
}

void cfi_conn_on_writable(cf_conn *c) {
    if (c->tls_read_wants_write) {
        /* A TLS read (the handshake's reply) waited for room to write. */
        c->tls_read_wants_write = false;
        cfi_conn_on_readable(c);
        if (c->state == CONN_DEAD) return;
    }
    mark_write(c);
}

void cfi_conn_close(cf_conn *c, uint16_t code, const char *reason) {
    if (c->state != CONN_OPEN) return;
    cf_frame *f = cfi_frame_create_close(code, reason);
    if (f) enqueue_owned(c, f);
    c->close_code = code;
    c->state = CONN_CLOSING;
    cfi_conn_set_deadline(c, cfi_now_ms() + c->loop->server->config.close_timeout_ms);
}

void cfi_conn_on_timeout(cf_conn *c) {
    if (c->state == CONN_HTTP) STAT_ADD(c->loop, handshake_timeouts, 1);
    cfi_conn_destroy(c, c->close_code ? c->close_code : 1006);
}

/* ----------------------------------------------------------- handshake -- */

/* Queues raw bytes (an HTTP response head) as a frame of their own. */
static void enqueue_text(cf_conn *c, const char *text, size_t length) {
    cf_frame *f = cfi_frame_create_raw(length);
    if (!f) {
        output_failed(c);
        return;
    }
    memcpy(f->bytes, text, length);
    enqueue_owned(c, f);
}

void cfi_conn_respond_and_drain(cf_conn *c, const char *bytes, size_t length) {
    enqueue_text(c, bytes, length);
    drain_after_flush(c);
}

void cfi_conn_respond_shared_and_drain(cf_conn *c, cf_frame *response) {
    enqueue_owned(c, cf_frame_retain(response));
    drain_after_flush(c);
}

static void peer_address(int fd, char *out, size_t size) {
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, size, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static void handshake(cf_conn *c, const char *head, size_t length) {
    cf_server *s = c->loop->server;
    cf_http_request req;
    cf_http_parse_request(head, length, &req);
    if (req.status != 0) {
        cfi_http_answer_non_upgrade(c, &req); /* a static route, /readyz or an error */
        return;
    }
    if (strcmp(req.path, s->stream_path) == 0) {
        c->kind = KIND_STREAM;
    } else if (s->echo_path && strcmp(req.path, s->echo_path) == 0) {
        c->kind = KIND_ECHO;
    } else {
        cfi_http_refuse_request(c, 404, "no WebSocket endpoint at this path");
        return;
    }
    if (__atomic_load_n(&s->draining, __ATOMIC_ACQUIRE)) {
        STAT_ADD(c->loop, draining_refusals, 1);
        cfi_http_respond_error(c, 503, "the gateway is draining: connect to another node");
        return;
    }
    if (!cfi_limits_origin_allowed(s, req.origin)) {
        STAT_ADD(c->loop, origins_refused, 1);
        cfi_http_respond_error(c, 403, "this Origin may not connect (limits.allowed_origins)");
        return;
    }
    switch (cfi_limits_admit(s, c)) {
    case LIMIT_TOTAL:
        STAT_ADD(c->loop, connections_limited, 1);
        cfi_http_respond_error(c, 503,
                               "the gateway holds its maximum number of connections (limits.max_connections)");
        return;
    case LIMIT_ADDRESS:
        STAT_ADD(c->loop, connections_limited, 1);
        cfi_http_respond_error(c, 429,
                               "too many connections from this address (limits.max_connections_per_address)");
        return;
    case LIMIT_OK:
        break;
    }
    char accept[29];
    cf_ws_accept_key(req.key, strlen(req.key), accept);
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
                     accept,
                     (c->kind == KIND_STREAM && req.offers_streamgate_v1)
                         ? "Sec-WebSocket-Protocol: streamgate.v1\r\n" : "");
    enqueue_text(c, buf, (size_t)n);
    c->state = CONN_OPEN;
    c->heard_ms = cfi_now_ms();
    cfi_conn_set_deadline(c, 0);
    if (c->kind == KIND_STREAM && s->callbacks.on_open) {
        char remote[64];
        peer_address(c->fd, remote, sizeof(remote));
        cf_open_info info = {.path = req.path, .query = req.query, .authorization = req.authorization,
                             .origin = req.origin, .api_key = req.api_key, .remote_addr = remote,
                             .headers = req.headers, .header_count = req.header_count};
        c->opened = true;
        s->callbacks.on_open(s->callbacks.context, c->id, &info);
    }
}

/* -------------------------------------------------------------- frames -- */

static bool append(uint8_t **buf, size_t *length, size_t *capacity, const uint8_t *data, size_t n) {
    if (*length + n > *capacity) {
        size_t cap = *capacity ? *capacity : 1024;
        while (cap < *length + n) cap *= 2;
        uint8_t *b = realloc(*buf, cap);
        if (!b) return false;
        *buf = b;
        *capacity = cap;
    }
    if (n) memcpy(*buf + *length, data, n);
    *length += n;
    return true;
}

static void deliver(cf_conn *c, uint8_t opcode, const uint8_t *data, size_t length) {
    if (c->kind == KIND_ECHO) {
        uint8_t *payload;
        cf_frame *f = cf_frame_create(opcode == CF_WS_OP_TEXT, length, NULL, 0, &payload);
        if (!f) {
            conn_fail(c, CF_CLOSE_INTERNAL_ERROR, "out of memory");
            return;
        }
        if (length) memcpy(payload, data, length);
        cfi_conn_enqueue(c, f);
        cf_frame_release(f);
        return;
    }
    cf_callbacks *cb = &c->loop->server->callbacks;
    if (cb->on_message) cb->on_message(cb->context, c->id, opcode == CF_WS_OP_TEXT, data, length);
}

static void handle_close_frame(cf_conn *c, const uint8_t *p, size_t n) {
    uint16_t code = 1005; /* no status received */
    if (n == 1) return conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload");
    if (n >= 2) {
        code = (uint16_t)((p[0] << 8) | p[1]);
        if (!cf_ws_close_code_is_valid(code)) return conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "invalid close code");
        if (cf_utf8_validate(CF_UTF8_ACCEPT, p + 2, n - 2) != CF_UTF8_ACCEPT)
            return conn_fail(c, CF_CLOSE_INVALID_PAYLOAD, "close reason is not valid UTF-8");
    }
    if (c->state == CONN_OPEN) {
        /* Echo the peer's code (RFC 6455 5.5.1), then close our side. */
        cf_frame *f = n >= 2 ? cfi_frame_create_close(code, NULL) : cfi_frame_create_control(CF_WS_OP_CLOSE, NULL, 0);
        if (f) enqueue_owned(c, f);
    }
    if (c->state == CONN_DEAD) return;
    c->close_code = code;
    drain_after_flush(c);
    mark_write(c);
}

static void handle_data_frame(cf_conn *c, const cf_ws_header *h, const uint8_t *p, size_t n) {
    if (c->state != CONN_OPEN) return; /* after our close: discard data */
    bool first = h->opcode != CF_WS_OP_CONTINUATION;
    uint8_t opcode = first ? h->opcode : c->message_opcode;
    if (opcode == CF_WS_OP_TEXT) {
        /* Bytes before text_checked were validated while the frame arrived. */
        if (first && c->text_checked == 0) c->utf8_state = CF_UTF8_ACCEPT;
        c->utf8_state = cf_utf8_validate(c->utf8_state, p + c->text_checked, n - c->text_checked);
        c->text_checked = 0;
        if (c->utf8_state == CF_UTF8_REJECT || (h->fin && c->utf8_state != CF_UTF8_ACCEPT))
            return conn_fail(c, CF_CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
    }
    if (first && h->fin) {
        deliver(c, opcode, p, n); /* the common case: no copy */
        return;
    }
    if (first) {
        c->in_message = true;
        c->message_opcode = opcode;
        c->message_length = 0;
    }
    if (!append(&c->message, &c->message_length, &c->message_capacity, p, n))
        return conn_fail(c, CF_CLOSE_INTERNAL_ERROR, "out of memory");
    if (h->fin) {
        c->in_message = false;
        deliver(c, opcode, c->message, c->message_length);
        if (c->state == CONN_DEAD) return;
        c->message_length = 0;
        if (c->message_capacity > 65536) {
            free(c->message);
            c->message = NULL;
            c->message_capacity = 0;
        }
    }
}

/* Validates the part of an incomplete text frame that has arrived, so invalid
 * UTF-8 fails the connection at once rather than when the frame completes.
 * The payload is unmasked into a scratch copy: the frame stays masked in
 * place until it is complete. */
static bool partial_text_is_valid(cf_conn *c, const cf_ws_header *h, const uint8_t *payload, size_t available) {
    if (h->opcode == CF_WS_OP_TEXT && c->text_checked == 0) c->utf8_state = CF_UTF8_ACCEPT;
    uint8_t scratch[4096];
    size_t pos = (size_t)c->text_checked;
    while (pos < available) {
        size_t n = available - pos < sizeof(scratch) ? available - pos : sizeof(scratch);
        memcpy(scratch, payload + pos, n);
        cf_ws_unmask(scratch, n, h->mask, pos);
        c->utf8_state = cf_utf8_validate(c->utf8_state, scratch, n);
        if (c->utf8_state == CF_UTF8_REJECT) return false;
        pos += n;
    }
    c->text_checked = pos;
    return true;
}

/* Parses and handles every complete frame in buf; returns bytes consumed.
 * Payloads are unmasked in place. */
static size_t process_frames(cf_conn *c, uint8_t *buf, size_t length) {
    const cf_server_config *cfg = &c->loop->server->config;
    size_t off = 0;
    while (c->state == CONN_OPEN || c->state == CONN_CLOSING) {
        cf_ws_header h;
        if (!cf_ws_parse_header(buf + off, length - off, &h)) break;
        bool control = (h.opcode & CF_WS_OP_CONTROL_BIT) != 0;
        if (h.rsv) { conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension"); return length; }
        if ((h.opcode > CF_WS_OP_BINARY && h.opcode < CF_WS_OP_CLOSE) || h.opcode > CF_WS_OP_PONG) {
            conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "reserved opcode");
            return length;
        }
        if (!h.masked) { conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "client frames must be masked"); return length; }
        if (control) {
            if (!h.fin) { conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "fragmented control frame"); return length; }
            if (h.payload_length > 125) {
                conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes");
                return length;
            }
        } else {
            if (h.opcode == CF_WS_OP_CONTINUATION && !c->in_message) {
                conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");
                return length;
            }
            if (h.opcode != CF_WS_OP_CONTINUATION && c->in_message) {
                conn_fail(c, CF_CLOSE_PROTOCOL_ERROR, "new message before the previous one ended");
                return length;
            }
            size_t limit = c->kind == KIND_ECHO ? cfg->echo_max_message_bytes : cfg->max_message_bytes;
            uint64_t so_far = h.opcode == CF_WS_OP_CONTINUATION ? c->message_length : 0;
            if (h.payload_length > limit || so_far + h.payload_length > limit) {
                conn_fail(c, CF_CLOSE_MESSAGE_TOO_BIG, "message exceeds the size limit");
                return length;
            }
        }
        size_t total = h.header_length + (size_t)h.payload_length;
        if (length - off < total) {
            bool text = h.opcode == CF_WS_OP_TEXT ||
                        (h.opcode == CF_WS_OP_CONTINUATION && c->message_opcode == CF_WS_OP_TEXT);
            size_t available = length - off > h.header_length ? length - off - h.header_length : 0;
            if (!control && text && c->state == CONN_OPEN &&
                !partial_text_is_valid(c, &h, buf + off + h.header_length, available)) {
                conn_fail(c, CF_CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8");
                return length;
            }
            break;
        }
        uint8_t *p = buf + off + h.header_length;
        size_t n = (size_t)h.payload_length;
        cf_ws_unmask(p, n, h.mask, 0);
        off += total;
        switch (h.opcode) {
        case CF_WS_OP_CLOSE: handle_close_frame(c, p, n); break;
        case CF_WS_OP_PING:
            if (c->state == CONN_OPEN) {
                cf_frame *pong = cfi_frame_create_control(CF_WS_OP_PONG, p, n);
                if (pong) enqueue_owned(c, pong);
            }
            break;
        case CF_WS_OP_PONG: break;
        default: handle_data_frame(c, &h, p, n); break;
        }
        if (c->state == CONN_DEAD) return length;
    }
    return off;
}

static const uint8_t *find_head_end(const uint8_t *buf, size_t length) {
    for (size_t i = 3; i < length; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r') return buf + i + 1;
    return NULL;
}

/* Handles buf by state; returns the bytes consumed (an incomplete request
 * head or frame at the end is left for the next read). */
static size_t process(cf_conn *c, uint8_t *buf, size_t length) {
    if (c->state == CONN_HTTP) {
        const uint8_t *end = find_head_end(buf, length);
        size_t max = c->loop->server->config.max_header_bytes;
        if (!end) {
            if (length > max) {
                cfi_http_refuse_request(c, 431, "request head too large");
                return length;
            }
            return 0;
        }
        size_t head = (size_t)(end - buf);
        if (head > max) {
            cfi_http_refuse_request(c, 431, "request head too large");
            return length;
        }
        handshake(c, (const char *)buf, head);
        if (c->state != CONN_OPEN) return length;
        return head + process_frames(c, buf + head, length - head);
    }
    if (c->state == CONN_OPEN || c->state == CONN_CLOSING) return process_frames(c, buf, length);
    return length; /* DRAINING: discard */
}

static void feed(cf_conn *c, uint8_t *data, size_t n) {
    uint8_t *buf = data;
    size_t length = n;
    if (c->in_length > 0) {
        if (!append(&c->in, &c->in_length, &c->in_capacity, data, n)) {
            cfi_conn_destroy(c, 1006);
            return;
        }
        buf = c->in;
        length = c->in_length;
    }
    size_t used = process(c, buf, length);
    if (c->state == CONN_DEAD) return;
    size_t left = length - used;
    if (buf == c->in) {
        if (used > 0) memmove(c->in, c->in + used, left); /* a large frame arrives in many reads */
        c->in_length = left;
    } else if (left > 0) {
        c->in_length = 0;
        if (!append(&c->in, &c->in_length, &c->in_capacity, buf + used, left)) {
            cfi_conn_destroy(c, 1006);
            return;
        }
    }
    /* Buffers grow with the bytes that arrive (append doubles), never to a
     * size a frame header merely claims. */
    if (c->in_length == 0 && c->in_capacity > IDLE_BUFFER_KEEP) {
        free(c->in);
        c->in = NULL;
        c->in_capacity = 0;
    }
}

void cfi_conn_on_readable(cf_conn *c) {
    cf_loop *loop = c->loop;
    for (int round = 0; round < READS_PER_TURN && c->state != CONN_DEAD; round++) {
        ssize_t n;
        if (c->ssl) {
            n = cfi_tls_read(c, loop->read_buffer, loop->read_capacity);
            if (n < 0) {
                errno = (int)-n;
                n = -1;
                if (errno == EAGAIN && c->tls_read_wants_write && !set_epollout(c, true)) errno = EIO;
            }
        } else {
            n = recv(c->fd, loop->read_buffer, loop->read_capacity, 0);
        }
        if (n == 0) {
            /* The peer half-closed: it may still read what we owe it. */
            if (!c->write_failed) write_queue(c);
            cfi_conn_destroy(c, c->state == CONN_DRAINING && c->close_code ? c->close_code : 1006);
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            cfi_conn_destroy(c, c->close_code ? c->close_code : 1006);
            return;
        }
        c->heard_ms = cfi_now_ms();
        c->pinged = false;
        if (c->state != CONN_DRAINING) feed(c, loop->read_buffer, (size_t)n);
        /* A TLS read returns one record at most: go on while OpenSSL holds more. */
        if ((size_t)n < loop->read_capacity && !(c->ssl && c->state != CONN_DEAD && cfi_tls_pending(c))) return;
    }
}

void cfi_conn_check_idle(cf_conn *c, uint64_t now) {
    uint32_t idle = c->loop->server->config.idle_timeout_ms;
    if (!idle || c->state != CONN_OPEN || now < c->heard_ms) return;
    uint64_t silent = now - c->heard_ms;
    if (silent >= idle) {
        STAT_ADD(c->loop, idle_closes, 1);
        cfi_conn_close(c, CF_CLOSE_GOING_AWAY, "idle timeout");
        mark_write(c);
    } else if (silent >= idle / 2 && !c->pinged) {
        cf_frame *ping = cfi_frame_create_control(CF_WS_OP_PING, NULL, 0);
        if (ping) {
            enqueue_owned(c, ping);
            mark_write(c);
        }
        c->pinged = true;
    }
}
