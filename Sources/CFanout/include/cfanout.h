/*
 * cfanout.h — the one public header of Streamgate's C hot path.
 *
 * CFanout owns everything between the network and the Swift host: N epoll
 * event loops on their own threads (SO_REUSEPORT listeners), the HTTP/1.1
 * upgrade handshake, the RFC 6455 frame codec, and zero-copy fan-out: a
 * message is framed once into a refcounted cf_frame and the same bytes are
 * queued to every subscriber, flushed at the end of the loop turn with
 * gathered writes (sendmsg per socket, or many sockets' sends in one
 * io_uring submission).
 *
 * Threading: every cf_server_* function marked THREAD-SAFE may be called from
 * any thread; they post a command to the owning loop (queue + eventfd
 * wake-up, see cfi_loop_submit in loop.c). Callbacks run on loop threads.
 *
 * Errors: functions that can fail on bad configuration return NULL or -1 and
 * write a human-readable message to errstr (librdkafka's convention).
 */
#ifndef CFANOUT_H
#define CFANOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__has_attribute) && __has_attribute(swift_attr)
/* Callbacks run on C loop threads: Swift must treat them as @Sendable. */
#define CF_SENDABLE __attribute__((swift_attr("@Sendable")))
#else
#define CF_SENDABLE
#endif

/* ---------------------------------------------------------------- types -- */

typedef struct cf_server cf_server;
typedef struct cf_frame cf_frame;

/* Identifies one connection for its whole life: loop index, generation, fd. */
typedef uint64_t cf_conn_id;

/* RFC 6455 close codes the server sends. */
enum {
    CF_CLOSE_NORMAL = 1000,
    CF_CLOSE_GOING_AWAY = 1001,
    CF_CLOSE_PROTOCOL_ERROR = 1002,
    CF_CLOSE_UNSUPPORTED_DATA = 1003,
    CF_CLOSE_INVALID_PAYLOAD = 1007,
    CF_CLOSE_POLICY_VIOLATION = 1008,
    CF_CLOSE_MESSAGE_TOO_BIG = 1009,
    CF_CLOSE_INTERNAL_ERROR = 1011,
    CF_CLOSE_TRY_AGAIN_LATER = 1013,
};

typedef struct cf_server_config {
    const char *host;              /* listen address, e.g. "127.0.0.1" or "::" */
    uint16_t port;                 /* 0 = pick a free port (see cf_server_port) */
    int loop_count;                /* event loops (threads); <= 0 means one per core */
    const char *stream_path;       /* upgrade path of the streaming protocol, e.g. "/ws" */
    const char *echo_path;         /* upgrade path of the echo endpoint, NULL = disabled */
    size_t max_message_bytes;      /* largest client message on stream_path (else 1009) */
    size_t echo_max_message_bytes; /* largest message on echo_path (Autobahn needs 16 MiB) */
    size_t max_output_bytes;       /* per-connection queued output cap (slow consumers) */
    size_t max_header_bytes;       /* cap on the HTTP request head (else 431) */
    uint32_t handshake_timeout_ms; /* time allowed from accept to a complete request */
    uint32_t close_timeout_ms;     /* time allowed for the peer to finish a close */
    uint32_t idle_timeout_ms;      /* an open connection that sends nothing for this long is pinged
                                    * at half of it and closed (1001) at the end; 0 = never */
    uint32_t max_connections;      /* open WebSocket connections in total; beyond: HTTP 503 (0 = no limit) */
    uint32_t max_connections_per_address; /* per source IP address; beyond: HTTP 429 (0 = no limit) */
    const char *allowed_origins;   /* newline-separated Origins allowed to upgrade (HTTP 403 for
                                    * others; requests without Origin pass); NULL or "" = any */
    int use_io_uring;              /* batch each loop turn's writes into one io_uring
                                    * submission (falls back to sendmsg if unavailable) */
    uint32_t max_write_delay_ms;   /* a saturated loop writes each connection at most this often
                                    * (adaptive, see cf_write_delay_next); 0 = write every turn */
    uint32_t min_write_delay_ms;   /* always hold writes at least this long (fixed coalescing,
                                    * trades latency for CPU); 0 = none */
    const char *tls_certificate_file; /* PEM certificate chain: the listener serves wss:// (TLS 1.2+,
                                       * ALPN http/1.1); NULL = plain ws:// */
    const char *tls_key_file;         /* PEM private key of the certificate */
} cf_server_config;

/* One header field of a request head: slices of the head (not NUL-terminated),
 * valid as long as the head is. */
typedef struct cf_http_header {
    const char *name;          /* as sent (compare case-insensitively) */
    size_t name_length;
    const char *value;         /* surrounding spaces and tabs trimmed */
    size_t value_length;
} cf_http_header;

/* The most header fields a request may have (more: 431). */
#define CF_MAX_HEADERS 64

/* What the host learns about a connection when its handshake completes. */
typedef struct cf_open_info {
    const char *path;          /* request target without the query, NUL-terminated */
    const char *query;         /* query string without '?', "" when absent */
    const char *authorization; /* Authorization header value, "" when absent */
    const char *origin;        /* Origin header value, "" when absent */
    const char *api_key;       /* X-API-Key header value, "" when absent */
    const char *remote_addr;   /* peer address, e.g. "127.0.0.1:53012" */
    const cf_http_header *headers; /* every header field, in request order, valid during on_open */
    size_t header_count;
} cf_open_info;

/* Callbacks into the host. All run on the loop thread owning the connection. */
typedef struct cf_callbacks {
    void *context;
    /* A stream-protocol connection completed its handshake. */
    void (*on_open)(void *context, cf_conn_id conn, const cf_open_info *info) CF_SENDABLE;
    /* A complete client message (text already validated as UTF-8). The bytes
     * are valid only during the call. */
    void (*on_message)(void *context, cf_conn_id conn, int is_text, const uint8_t *data,
                       size_t length) CF_SENDABLE;
    /* The connection is gone; code is the close code sent or received (1006 if none). */
    void (*on_close)(void *context, cf_conn_id conn, uint16_t code) CF_SENDABLE;
} cf_callbacks;

/* Counters, summed over all loops. Monotonic except connections_open. */
typedef struct cf_stats {
    uint64_t connections_accepted;
    uint64_t connections_open;
    uint64_t handshakes_rejected;   /* requests answered 400/404/405/426/431 */
    uint64_t handshake_timeouts;    /* request heads not completed within handshake_timeout_ms (dropped) */
    uint64_t epoll_errors;          /* epoll_ctl calls the kernel refused (a connection's ends it) */
    uint64_t protocol_errors;       /* connections failed with 1002/1007/1009 */
    uint64_t slow_consumer_closes;  /* connections closed for exceeding max_output_bytes */
    uint64_t messages_published;    /* frames handed to cf_server_publish (per loop) */
    uint64_t messages_delivered;    /* frames queued to subscribers */
    uint64_t bytes_written;
    uint64_t write_calls;           /* gathered writes (sendmsg calls and io_uring sends) */
    uint64_t connections_limited;   /* upgrades refused by max_connections(_per_address) */
    uint64_t origins_refused;       /* upgrades refused for their Origin */
    uint64_t idle_closes;           /* connections closed by idle_timeout_ms */
    uint64_t delayed_write_periods; /* pacing periods (0.5 s) a loop wrote with a delay (overload) */
    uint64_t draining_refusals;     /* upgrades refused (503) because the node is draining */
    uint64_t tls_handshake_failures; /* TLS connections that failed before their handshake ended */
} cf_stats;

/* A duration histogram with fixed bounds (cf_histogram_bound_ns): counts[i]
 * observations in (bound(i-1), bound(i)] (not cumulative); the last bucket
 * is unbounded. */
#define CF_HISTOGRAM_BUCKETS 14
typedef struct cf_histogram {
    uint64_t counts[CF_HISTOGRAM_BUCKETS];
    uint64_t sum_ns;
} cf_histogram;

/* The upper bound of bucket i in ns (UINT64_MAX for the last). */
uint64_t cf_histogram_bound_ns(int bucket);

/* What one loop says about itself (cf_server_get_loop_stats). */
typedef struct cf_loop_stats {
    uint64_t command_queue_depth;  /* commands posted to the loop and not yet taken */
    uint64_t commands_run;         /* monotonic */
    cf_histogram turn_duration;    /* the work of each turn: from epoll's wake-up to the turn's end */
    cf_histogram delivery_latency; /* a published frame with subscribers on the loop: from its
                                    * creation (the host framed the record) to the end of the
                                    * flush that wrote it to their sockets, once per frame and loop
                                    * (at most 256 frames per flush are timed) */
} cf_loop_stats;

/* --------------------------------------------------------------- server -- */

/* Fills config with the defaults documented in docs/configuration.md. */
void cf_server_config_init(cf_server_config *config);

/* Validates the configuration and prepares the loops (nothing listens yet). */
cf_server *cf_server_create(const cf_server_config *config, char *errstr, size_t errstr_size);

/* Serves body for GET requests to path (e.g. the console page). Call before start. */
int cf_server_add_static(cf_server *server, const char *path, const char *content_type,
                         const uint8_t *body, size_t length, char *errstr, size_t errstr_size);

/* A source that can produce without blocking may run on loop 0's own thread:
 * tick(context) is called every interval_us from that loop, before it runs its
 * commands, so what the tick publishes is fanned out in the same loop turn —
 * no hand-over between threads. Call before start. */
typedef void (*cf_tick_fn)(void *context) CF_SENDABLE;
int cf_server_set_ticker(cf_server *server, uint32_t interval_us, cf_tick_fn tick, void *context);

/* A source driven by a non-blocking eventfd (e.g. the one librdkafka signals
 * its queue on): when it becomes readable, loop 0 drains it and calls
 * ready(context) on its own thread, before it runs its commands, so what the
 * source delivers is fanned out in the same loop turn. One watched fd per
 * server; ready also runs once right after the fd is added. THREAD-SAFE (may
 * be called after start). cf_server_unwatch_fd stops it; the caller must make
 * ready a no-op first, as the loop may be inside it. */
typedef void (*cf_ready_fn)(void *context) CF_SENDABLE;
void cf_server_watch_fd(cf_server *server, int fd, cf_ready_fn ready, void *context);
void cf_server_unwatch_fd(cf_server *server);

/* Binds the listeners, starts the loop threads with the host's callbacks
 * (copied; context must outlive the server) and returns once every loop runs,
 * so cf_server_io_uring_loops is final when it returns. */
int cf_server_start(cf_server *server, const cf_callbacks *callbacks, char *errstr, size_t errstr_size);

/* Sets what GET /readyz answers: 200 when ready, 503 before. THREAD-SAFE. */
void cf_server_set_ready(cf_server *server, int ready);

/* Whether a certificate chain and key make a TLS context (for checking a
 * configuration before serving): 0, or -1 and errstr says why. */
int cf_tls_check(const char *certificate_file, const char *key_file, char *errstr, size_t errstr_size);

/* Loads the TLS certificate chain and key again from their files (the
 * configured paths): new connections use them, open ones keep theirs. On
 * failure the old ones stay and errstr says why. THREAD-SAFE. */
int cf_server_reload_tls(cf_server *server, char *errstr, size_t errstr_size);

/* Starts draining the node: from now on an upgrade is answered 503 (the node
 * is draining) and GET /readyz 503 "draining", and notice (a text frame, see
 * cf_frame_create) is queued to every open stream connection, telling its
 * client to move to another node. Connections stay open and served; the host
 * waits for them to leave, then calls cf_server_stop. Consumes the caller's
 * reference. THREAD-SAFE. */
void cf_server_drain(cf_server *server, cf_frame *notice);
int cf_server_is_draining(const cf_server *server);

/* The bound port (useful when the configured port was 0). */
uint16_t cf_server_port(const cf_server *server);
/* How many loops write through io_uring (after start; the rest use sendmsg). */
int cf_server_io_uring_loops(const cf_server *server);
int cf_server_loop_count(const cf_server *server);

/* Closes every connection with 1001, stops and joins the loops. Idempotent. */
void cf_server_stop(cf_server *server);
void cf_server_destroy(cf_server *server);

void cf_server_get_stats(const cf_server *server, cf_stats *out);
/* One loop's (0 <= loop < cf_server_loop_count); read without locking. */
void cf_server_get_loop_stats(const cf_server *server, int loop, cf_loop_stats *out);

/* ------------------------------------------ THREAD-SAFE entry points -- */

/* Queues frame to every subscriber of the frame's endpoint on every loop.
 * Consumes the caller's reference. */
void cf_server_publish(cf_server *server, cf_frame *frame);

/* Publishes several frames with one lock and at most one wake-up per loop:
 * what a source hands over per batch. Consumes the caller's references. */
void cf_server_publish_batch(cf_server *server, cf_frame *const *frames, size_t count);

/* Subscribes / unsubscribes a connection to an endpoint (idempotent). */
void cf_server_subscribe(cf_server *server, cf_conn_id conn, const char *endpoint, size_t length);
void cf_server_unsubscribe(cf_server *server, cf_conn_id conn, const char *endpoint, size_t length);

/* Sends frame to one connection. Consumes the caller's reference. */
void cf_server_send(cf_server *server, cf_conn_id conn, cf_frame *frame);

/* Starts the close handshake with code and a UTF-8 reason (<= 123 bytes). */
void cf_server_close(cf_server *server, cf_conn_id conn, uint16_t code, const char *reason);

/* --------------------------------------------------------------- frames -- */

/* A refcounted, fully encoded server->client WebSocket frame. Encode once,
 * queue the same bytes to every subscriber. The endpoint names the fan-out
 * target of cf_server_publish (may be empty for cf_server_send). */
cf_frame *cf_frame_create(int is_text, size_t payload_length, const char *endpoint,
                          size_t endpoint_length, uint8_t **payload_out);
cf_frame *cf_frame_retain(cf_frame *frame);
void cf_frame_release(cf_frame *frame);
const uint8_t *cf_frame_bytes(const cf_frame *frame, size_t *length_out);

/* ---------------------------------------------- codec (pure functions) -- */

/* Frame opcodes (RFC 6455 5.2). Opcodes with bit 0x8 set are control frames;
 * 0x3-0x7 and 0xB-0xF are reserved. */
enum {
    CF_WS_OP_CONTINUATION = 0x0,
    CF_WS_OP_TEXT = 0x1,
    CF_WS_OP_BINARY = 0x2,
    CF_WS_OP_CLOSE = 0x8,
    CF_WS_OP_PING = 0x9,
    CF_WS_OP_PONG = 0xA,
    CF_WS_OP_CONTROL_BIT = 0x8,
};

/* Parsed header of one client->server frame. */
typedef struct cf_ws_header {
    uint8_t fin;
    uint8_t rsv;           /* RSV1..3 as bits 2..0 */
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint64_t payload_length;
    size_t header_length;  /* bytes before the payload */
} cf_ws_header;

/* Returns 1 and fills out when data holds a complete header, 0 when more
 * bytes are needed. */
int cf_ws_parse_header(const uint8_t *data, size_t length, cf_ws_header *out);

/* Writes an unmasked server frame header for a payload; returns its length (2..10). */
size_t cf_ws_write_header(uint8_t *out, int fin, uint8_t opcode, uint64_t payload_length);

/* XORs data with the 4-byte mask, starting at mask position offset. */
void cf_ws_unmask(uint8_t *data, size_t length, const uint8_t mask[4], size_t offset);

/* 1 when a received close code is allowed on the wire (RFC 6455 7.4). */
int cf_ws_close_code_is_valid(uint16_t code);

/* Incremental UTF-8 validation. state starts at 0; returns the new state:
 * 0 = complete and valid so far, CF_UTF8_REJECT = invalid, other = inside a
 * multi-byte sequence (valid so far, incomplete). */
#define CF_UTF8_ACCEPT 0u
#define CF_UTF8_REJECT 1u
uint32_t cf_utf8_validate(uint32_t state, const uint8_t *data, size_t length);

/* The write delay of a loop for its next pacing period, from the current
 * delay and the CPU time the loop's thread used in the last one: it starts
 * at 10 ms and doubles up to max_ms while the loop is saturated (>= 80 % of
 * a core), halves (to 0 below 10 ms) once it uses at most half a core, and
 * holds in between. */
uint32_t cf_write_delay_next(uint32_t current_ms, uint64_t busy_ns, uint64_t period_ns, uint32_t max_ms);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
 * out must hold 29 bytes; returns 0, or -1 on a malformed key. */
int cf_ws_accept_key(const char *key, size_t key_length, char out[29]);

/* Outcome of parsing an HTTP/1.1 request head (tests and the handshake). */
typedef struct cf_http_request {
    int status;                 /* 0 = a valid WebSocket upgrade; else the HTTP status to send */
    const char *error;          /* why, for the response body */
    int is_upgrade;             /* the request asked for a WebSocket upgrade */
    char method[8];
    char path[256];
    char query[512];
    char key[64];               /* Sec-WebSocket-Key */
    char authorization[4096];
    char origin[256];
    char api_key[256];          /* X-API-Key */
    int offers_streamgate_v1;   /* Sec-WebSocket-Protocol lists "streamgate.v1" */
    cf_http_header headers[CF_MAX_HEADERS]; /* every field, slices of the head */
    size_t header_count;
} cf_http_request;

/* Parses a complete request head (up to and including the blank line). The
 * request's headers point into head: keep it while they are used. */
void cf_http_parse_request(const char *head, size_t length, cf_http_request *out);

#ifdef __cplusplus
}
#endif
#endif /* CFANOUT_H */
