// conn_frames.c — libFuzzer harness for a whole connection (Sources/CFanout/conn.c):
// the HTTP upgrade as it arrives in pieces, then the RFC 6455 frame reader
// (fragmentation, control frames, close handshake, masks, UTF-8 in text,
// size limits), the output queue and the slow-consumer cap.
//
// It drives the real code in-process on one thread: a server is created once
// (its loops exist, no thread is started), and each input gets a connection
// on one end of a socketpair. The harness plays both the client (writes the
// input into the other end, in chunks) and the loop (cfi_conn_on_readable,
// then the host's commands, then cfi_loop_flush; EPOLLOUT from the loop's own
// epoll set; cfi_loop_free_dead at the end of the "turn").
//
// Input layout:
//   byte 0  flags: bits 0-1 the request prepended to the input (0 none: the
//           input is the raw byte stream; 1 upgrade to /ws; 2 upgrade to
//           /echo; 3 /ws with subprotocol, Authorization and Origin);
//           bits 2-3 how it ends: 0 the harness destroys it (as a stopping
//           loop does); 1 the client shuts its write side (the server reads
//           EOF); 2 time passes (idle ping, idle close 1001, then whatever
//           deadline is pending: handshake or close timeout); 3 the client
//           vanishes mid-turn (closes its socket after the server's read,
//           before its flush: the write fails, the next read sees the reset);
//           bit 4 small socket buffers (partial writes, EPOLLOUT);
//           bit 5 the client reads nothing until the end (slow consumer);
//           bits 6-7 largest chunk: 16, 256, 4096 or 65536 bytes
//   byte 1  chunking seed: 0 writes everything at once, else it seeds the
//           sizes of the writes (so heads and frames split across reads)
//   rest    the bytes the client sends (after the chosen request)
//
// The host side (callbacks) checks what cfanout.h promises it: on_open once,
// then messages, then on_close exactly once iff on_open was called; text
// messages are valid UTF-8 and within the size limit. A message's first
// byte may ask the "host" to act, as ClientConnections would, through the same
// internal calls the loop's commands make, after the read, as the loop
// does: 'R' reply with the message, 'B' a 12 KiB reply (fills the output
// cap), 'C' close the connection, 'S'/'U' subscribe/unsubscribe to the rest
// of the message as an endpoint name.
//
// Everything the server writes is read back and checked at the end: one
// HTTP response head; after a 101, only complete unmasked server frames
// (FIN, no RSV, known opcodes, control payloads <= 125, valid close codes,
// UTF-8 text) and nothing after a close frame; after an error status, no
// more bytes than its Content-Length.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"
#include "fuzz_check.h"

#include <errno.h>
#include <fcntl.h>
#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>


// Small limits so short inputs reach them (1009, 431, the output cap).
enum {
    MAX_MESSAGE = 4096,
    ECHO_MAX_MESSAGE = 8192,
    MAX_OUTPUT = 16384,
    MAX_HEADER = 1024,
    IDLE_TIMEOUT_MS = 10000,
};

static cf_server *server;
static cf_loop *loop;

// ------------------------------------------------- the connection under test --

static cf_conn *conn;      // NULL once destroyed (it is then only on the dead list)
static cf_conn_id conn_id;
static int opens, closes;  // callback counts for this input

// Host commands queued by on_message, run after the read like the loop's
// run_commands (a real host reaches the loop only through its queue).
enum { CMD_REPLY, CMD_CLOSE_CONN, CMD_SUB, CMD_UNSUB };
typedef struct {
    int kind;
    cf_frame *frame;   // CMD_REPLY: one reference
    uint16_t code;     // CMD_CLOSE_CONN
    char text[128];    // CMD_CLOSE_CONN reason, CMD_SUB/UNSUB endpoint
    size_t length;
} host_cmd;
static host_cmd cmds[32];
static int cmd_count;

// ----------------------------------------------------------------- output --

// Everything the server wrote, as the client received it.
static uint8_t out[1 << 20];
static size_t out_length;
static bool out_overflow;

static void drain(int fd) {
    uint8_t buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) return;
        if (out_length + (size_t)n > sizeof(out)) {
            out_overflow = true; // too much to keep: only what fits is checked
            n = (ssize_t)(sizeof(out) - out_length);
        }
        memcpy(out + out_length, buf, (size_t)n);
        out_length += (size_t)n;
    }
}

static bool utf8_ok(const uint8_t *p, size_t n) { return cf_utf8_validate(CF_UTF8_ACCEPT, p, n) == CF_UTF8_ACCEPT; }

// Checks the server's byte stream (see the top of the file). A stream cut
// short is fine: a destroyed connection drops what it had not written.
static void check_output(void) {
    const uint8_t *p = out, *end = out + (out_overflow ? 0 : out_length);
    if (p == end) return;
    const uint8_t *head_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    if (!head_end) return; // cut inside the head
    head_end += 4;
    CHECK(end - p >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0);
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (status != 101) {
        const uint8_t *cl = memmem(p, (size_t)(head_end - p), "Content-Length: ", 16);
        CHECK(cl != NULL);
        size_t length = strtoul((const char *)cl + 16, NULL, 10);
        CHECK((size_t)(end - head_end) <= length);
        return;
    }
    bool closed = false;
    p = head_end;
    while (p < end) {
        size_t avail = (size_t)(end - p);
        if (avail < 2) return;
        uint8_t fin = p[0] >> 7, rsv = (p[0] >> 4) & 7, opcode = p[0] & 15, masked = p[1] >> 7;
        uint64_t len = p[1] & 127;
        size_t hl = 2;
        if (len == 126) {
            if (avail < 4) return;
            len = ((uint64_t)p[2] << 8) | p[3];
            CHECK(len >= 126); // minimal length encoding
            hl = 4;
        } else if (len == 127) {
            if (avail < 10) return;
            len = 0;
            for (int i = 0; i < 8; i++) len = (len << 8) | p[2 + i];
            CHECK(len > 0xFFFF);
            hl = 10;
        }
        if (avail - hl < len) return; // cut inside the frame
        const uint8_t *payload = p + hl;
        CHECK(!closed); // nothing after our close frame
        CHECK(fin && !rsv && !masked); // server frames are whole, unmasked, no extensions
        CHECK(opcode == 1 || opcode == 2 || opcode == 8 || opcode == 9 || opcode == 10);
        if (opcode >= 8) CHECK(len <= 125);
        if (opcode == 1) CHECK(utf8_ok(payload, len));
        if (opcode == 8) {
            closed = true;
            CHECK(len != 1);
            if (len >= 2) {
                CHECK(cf_ws_close_code_is_valid((uint16_t)((payload[0] << 8) | payload[1])));
                CHECK(utf8_ok(payload + 2, len - 2));
            }
        }
        p += hl + len;
    }
}

// -------------------------------------------------------------- callbacks --

static void on_open(void *context, cf_conn_id id, const cf_open_info *info) {
    (void)context;
    CHECK(conn && id == conn_id);
    CHECK(opens == 0 && closes == 0);
    opens++;
    // Every field is a NUL-terminated string (strlen walks it under ASan).
    CHECK(info->path[0] == '/');
    (void)strlen(info->query);
    (void)strlen(info->authorization);
    (void)strlen(info->origin);
    (void)strlen(info->api_key);
    (void)strlen(info->remote_addr);
}

static void push_cmd(host_cmd cmd) {
    if (cmd_count < (int)(sizeof(cmds) / sizeof(cmds[0]))) cmds[cmd_count++] = cmd;
    else cf_frame_release(cmd.frame);
}

static void on_message(void *context, cf_conn_id id, int is_text, const uint8_t *data, size_t length) {
    (void)context;
    CHECK(conn && id == conn_id);
    CHECK(opens == 1 && closes == 0); // never a message after on_close
    CHECK(length <= MAX_MESSAGE);
    if (is_text) CHECK(utf8_ok(data, length));
    // Touch every byte: the bytes are valid during the call (ASan checks).
    uint8_t sum = 0;
    for (size_t i = 0; i < length; i++) sum ^= data[i];
    (void)sum;
    if (length == 0) return;

    host_cmd cmd = {0};
    size_t rest = length - 1 < sizeof(cmd.text) - 1 ? length - 1 : sizeof(cmd.text) - 1;
    switch (data[0]) {
    case 'R': case 'B': {
        // A reply: the message itself, or 12 KiB (twice fills the 16 KiB cap).
        size_t n = data[0] == 'R' ? length : 12 * 1024;
        uint8_t *payload;
        cmd.kind = CMD_REPLY;
        cmd.frame = cf_frame_create(is_text, n, NULL, 0, &payload);
        if (!cmd.frame) return;
        if (data[0] == 'R') memcpy(payload, data, n);
        else memset(payload, 'b', n);
        push_cmd(cmd);
        break;
    }
    case 'C':
        // The host closes with one of the codes it uses, and (for text) a
        // reason from the message: UTF-8 the close frame must keep whole.
        cmd.kind = CMD_CLOSE_CONN;
        cmd.code = length > 1 && (data[1] & 1) ? CF_CLOSE_POLICY_VIOLATION : CF_CLOSE_NORMAL;
        if (is_text) {
            rest = length - 1 < sizeof(cmd.text) - 1 ? length - 1 : sizeof(cmd.text) - 1;
            // Keep whole UTF-8 characters when the copy is cut.
            while (rest > 0 && rest < length - 1 && (data[1 + rest] & 0xC0) == 0x80) rest--;
            memcpy(cmd.text, data + 1, rest);
        }
        push_cmd(cmd);
        break;
    case 'S': case 'U':
        cmd.kind = data[0] == 'S' ? CMD_SUB : CMD_UNSUB;
        memcpy(cmd.text, data + 1, rest);
        cmd.length = rest;
        push_cmd(cmd);
        break;
    default:
        break;
    }
}

static void on_close(void *context, cf_conn_id id, uint16_t code) {
    (void)context;
    (void)code;
    CHECK(id == conn_id);
    CHECK(opens == 1 && closes == 0); // exactly once, and only after on_open
    closes++;
}

// The loop's run_commands for the commands the host queued: each checks the
// connection is still there and open, as conn_by_id + the state test do.
static void run_host_commands(void) {
    for (int i = 0; i < cmd_count; i++) {
        host_cmd *cmd = &cmds[i];
        bool open = conn && conn->state == CONN_OPEN;
        switch (cmd->kind) {
        case CMD_REPLY:
            if (open) cfi_conn_enqueue(conn, cmd->frame);
            break;
        case CMD_CLOSE_CONN:
            if (open) cfi_conn_close(conn, cmd->code, cmd->text);
            break;
        case CMD_SUB:
            if (open) cfi_endpoints_subscribe(&loop->endpoints, conn, cmd->text, cmd->length);
            break;
        case CMD_UNSUB:
            if (conn) cfi_endpoints_unsubscribe(&loop->endpoints, conn, cmd->text, cmd->length);
            break;
        }
        cf_frame_release(cmd->frame);
    }
    cmd_count = 0;
}

// ------------------------------------------------------------------- setup --

// Over-reads of the loop's 256 KiB read buffer would read stale bytes that
// ASan cannot see. conn.c's recv() is wrapped at link time
// (-Wl,--wrap=recv): the bytes past what each read returned are poisoned,
// so code that reads beyond the data it received is reported.
ssize_t __real_recv(int fd, void *buf, size_t len, int flags);
ssize_t __wrap_recv(int fd, void *buf, size_t len, int flags) {
    bool shared = loop && buf == loop->read_buffer;
    if (shared) ASAN_UNPOISON_MEMORY_REGION(buf, len);
    ssize_t n = __real_recv(fd, buf, len, flags);
    if (shared) {
        size_t used = n > 0 ? (size_t)n : 0;
        ASAN_POISON_MEMORY_REGION((uint8_t *)buf + used, len - used);
    }
    return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    cf_server_config config;
    cf_server_config_init(&config);
    config.loop_count = 1;
    config.port = 0;
    config.use_io_uring = 0; // sendmsg: the loop's ring is only created by its thread
    config.echo_path = "/echo";
    config.max_message_bytes = MAX_MESSAGE;
    config.echo_max_message_bytes = ECHO_MAX_MESSAGE;
    config.max_output_bytes = MAX_OUTPUT;
    config.max_header_bytes = MAX_HEADER;
    config.idle_timeout_ms = IDLE_TIMEOUT_MS;
    config.allowed_origins = "https://ok.example\nhttp://localhost:8080";
    static const cf_callbacks callbacks = {.on_open = on_open, .on_message = on_message, .on_close = on_close};
    char err[256];
    server = cf_server_create(&config, err, sizeof(err));
    if (!server) {
        fprintf(stderr, "cf_server_create: %s\n", err);
        abort();
    }
    static const char page[] = "<html>console</html>";
    if (cf_server_add_static(server, "/console", "text/html", (const uint8_t *)page, sizeof(page) - 1, err,
                             sizeof(err)) != 0)
        abort();
    cf_server_set_ready(server, 1);
    server->callbacks = callbacks; /* what cf_server_start would set; the harness drives the loop itself */
    loop = &server->loops[0];
    return 0;
}

static const char *const prefixes[4] = {
    "",
    "GET /ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "GET /echo HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    "GET /ws?access_token=t HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: streamgate.v1\r\nAuthorization: Bearer abc\r\nOrigin: https://ok.example\r\n"
    "X-API-Key: k\r\n\r\n",
};

// xorshift32: chunk sizes and drain decisions from the input's seed byte.
static uint32_t next_random(uint32_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

// One loop turn for our connection after the client did something: read,
// run the host's commands, write, then (unless the client is not reading)
// take what arrived and deliver EPOLLOUT if the socket drained.
static void turn(int client, bool client_reads) {
    if (conn) cfi_conn_on_readable(conn);
    if (conn && conn->state == CONN_DEAD) conn = NULL;
    run_host_commands();
    cfi_loop_flush(loop);
    if (conn && conn->state == CONN_DEAD) conn = NULL;
    for (int round = 0; client_reads && round < 64; round++) {
        drain(client);
        // The loop's epoll set says whether the socket became writable.
        struct epoll_event ev[8];
        int n = epoll_wait(loop->epoll_fd, ev, 8, 0);
        bool writable = false;
        for (int i = 0; i < n; i++)
            if (conn && ev[i].data.ptr == conn && (ev[i].events & EPOLLOUT)) writable = true;
        if (!writable) break;
        cfi_conn_on_writable(conn);
        cfi_loop_flush(loop);
        if (conn && conn->state == CONN_DEAD) conn = NULL;
    }
    cfi_loop_free_dead(loop);
}

// The client closes its socket in the middle of a loop turn: after the
// server read and the host queued more (a delivery, as a fan-out would),
// before the flush. The write fails (EPIPE) and tears the connection down;
// if it survives, the next turn's epoll reports the hang-up to the reader.
static void client_vanishes(int *client) {
    close(*client);
    *client = -1;
    if (conn && conn->state == CONN_OPEN) {
        uint8_t *payload;
        cf_frame *f = cf_frame_create(0, 4, "/late", 5, &payload);
        if (f) {
            memcpy(payload, "late", 4);
            cfi_conn_enqueue(conn, f);
            cf_frame_release(f);
        }
    }
    cfi_loop_flush(loop);
    if (conn && conn->state == CONN_DEAD) conn = NULL;
    struct epoll_event ev[8];
    int n = epoll_wait(loop->epoll_fd, ev, 8, 0);
    for (int i = 0; i < n && conn; i++) {
        if (ev[i].data.ptr != conn) continue;
        if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) cfi_conn_on_readable(conn);
        if (conn->state != CONN_DEAD && (ev[i].events & EPOLLOUT)) cfi_conn_on_writable(conn);
        if (conn->state == CONN_DEAD) conn = NULL;
    }
    run_host_commands();
    cfi_loop_flush(loop);
    if (conn && conn->state == CONN_DEAD) conn = NULL;
    cfi_loop_free_dead(loop);
}

enum { END_DESTROY, END_EOF, END_TIME, END_VANISH };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    uint8_t flags = data[0];
    uint32_t seed = data[1];
    data += 2;
    size -= 2;
    const char *prefix = prefixes[flags & 3];
    int ending = (flags >> 2) & 3;
    bool small_buffers = flags & 16;
    bool client_reads = !(flags & 32);
    static const size_t max_chunks[4] = {16, 256, 4096, 65536};
    size_t max_chunk = max_chunks[flags >> 6];

    // The stream the client sends: the chosen request, then the input.
    size_t prefix_length = strlen(prefix);
    size_t total = prefix_length + size;
    uint8_t *stream = malloc(total + 1);
    memcpy(stream, prefix, prefix_length);
    if (size) memcpy(stream + prefix_length, data, size);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) abort();
    if (small_buffers) {
        int small = 4096;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
        setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    }
    out_length = 0;
    out_overflow = false;
    opens = closes = 0;
    cmd_count = 0;
    conn = cfi_conn_create(loop, sv[0]);
    CHECK(conn);
    conn_id = conn->id;
    // As accept_connections does: the loop's epoll set watches it.
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = conn};
    epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, sv[0], &ev);

    size_t sent = 0;
    while (sent < total && conn) {
        size_t chunk = seed ? 1 + next_random(&seed) % max_chunk : total;
        if (chunk > total - sent) chunk = total - sent;
        ssize_t n = send(sv[1], stream + sent, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN) break; // the server shut its side
        if (n > 0) sent += (size_t)n;
        turn(sv[1], client_reads);
    }
    free(stream);

    if (conn && ending == END_TIME) {
        // Half the idle timeout (a ping), all of it (close 1001), then
        // whatever deadline is pending (handshake or close timeout).
        cfi_conn_check_idle(conn, conn->heard_ms + IDLE_TIMEOUT_MS / 2);
        turn(sv[1], client_reads);
        if (conn) cfi_conn_check_idle(conn, conn->heard_ms + IDLE_TIMEOUT_MS);
        turn(sv[1], client_reads);
        if (conn && conn->deadline_ms) cfi_conn_on_timeout(conn);
        if (conn && conn->state == CONN_DEAD) conn = NULL;
        turn(sv[1], client_reads);
    }
    if (conn && ending == END_VANISH) client_vanishes(&sv[1]);
    if (conn && ending == END_EOF) {
        // The client reads what is left and closes its side: the server
        // sees EOF on its next read.
        turn(sv[1], true);
        shutdown(sv[1], SHUT_WR);
        turn(sv[1], true);
    }
    if (conn) cfi_conn_destroy(conn, 1006);
    conn = NULL;
    run_host_commands(); // releases what the host queued for a connection now gone
    cfi_loop_flush(loop);
    cfi_loop_free_dead(loop);
    if (sv[1] >= 0) {
        drain(sv[1]);
        close(sv[1]);
    }

    CHECK(opens == closes); // on_close exactly once iff on_open
    CHECK(loop->conn_count == 0);
    check_output();
    return 0;
}
