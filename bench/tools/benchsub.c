/*
 * benchsub — the subscriber side of Streamgate's benchmarks.
 *
 * Opens N WebSocket connections from one process (a process holds at most
 * ~19,900 sockets here, so the driver starts several), spread over source
 * addresses 127.0.0.x, subscribes each to one random endpoint, and records
 * the latency of every message received in a measurement window, plus counts
 * of received / missing / reordered messages. It speaks each system's own
 * protocol so every system is measured with the same client:
 *
 *   streamgate  JSON subscribe, binary delivery frames (docs/protocol.md)
 *   raw         subscribe by URL path; every message is a payload (uWS, nchan, baresend)
 *   nats        NATS over WebSocket: CONNECT, SUB, MSG
 *   mqtt        MQTT 3.1.1 over WebSocket: CONNECT, SUBSCRIBE, PUBLISH (QoS 0)
 *
 * Every payload starts with the send time (8 bytes, big-endian ns since the
 * Unix epoch, CLOCK_REALTIME) and the endpoint's sequence number (8 bytes).
 *
 * Prints "READY <subscribed> <connect-seconds>" when every connection is
 * subscribed (or the connect timeout passed), waits --warmup seconds,
 * measures for --duration seconds, then writes a JSON result to --out.
 * Single-threaded epoll: its own CPU time is reported too. --tls speaks
 * wss:// (OpenSSL, no certificate check: the server is on loopback), so the
 * same client measures what TLS costs a server.
 */
#define _GNU_SOURCE
#include "histogram.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum protocol { P_STREAMGATE, P_RAW, P_NATS, P_MQTT };
enum state { S_CONNECTING, S_TLS, S_HANDSHAKE, S_SUBSCRIBING, S_SUBSCRIBED, S_CLOSED };

typedef struct conn {
    int fd;
    SSL *ssl;                  /* --tls */
    uint8_t state;
    int endpoint;
    int64_t last_seq;          /* -1: nothing received yet */
    uint8_t *buf;              /* WebSocket input */
    size_t len, cap;
    uint8_t *stream;           /* NATS / MQTT byte stream across frames */
    size_t slen, scap;
    uint8_t *out;              /* pending output (handshake, subscribe, pongs) */
    size_t olen, ocap;
} conn;

static struct {
    enum protocol protocol;
    const char *host;
    int port;
    const char *path_format;     /* URL path, may contain %d (the endpoint number) */
    const char *target_format;   /* endpoint / subject / topic, may contain %d */
    int connections, endpoints, first_endpoint;
    char **sources;
    int source_count;
    double duration, warmup, connect_timeout;
    int connect_concurrency;
    unsigned seed;
    const char *out;
    bool wait_go;                /* start the window on a "GO" line on stdin */
    bool tls;                    /* wss:// */
} opt = {
    .protocol = P_STREAMGATE, .host = "127.0.0.1", .port = 8080, .path_format = "/ws",
    .target_format = "/bench/k%d", .connections = 1000, .endpoints = 1000, .first_endpoint = 1,
    .duration = 10, .warmup = 2, .connect_timeout = 60, .connect_concurrency = 256, .seed = 1,
};

static histogram hist;
static SSL_CTX *tls_context;
static uint64_t received, missing, reordered, closed_count, error_count, outside_window;
static bool measuring;
static int epfd;

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static void grow(uint8_t **b, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    *b = realloc(*b, c);
    if (!*b) { perror("realloc"); exit(1); }
    *cap = c;
}

static void out_append(conn *c, const void *data, size_t n) {
    grow(&c->out, &c->ocap, c->olen + n);
    memcpy(c->out + c->olen, data, n);
    c->olen += n;
}

/* Appends one masked client frame (mask 0: legal, and XOR is a no-op). */
static void send_frame(conn *c, uint8_t opcode, const void *payload, size_t n) {
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = 0x80 | opcode;
    if (n < 126) h[hl++] = 0x80 | (uint8_t)n;
    else if (n < 65536) { h[hl++] = 0x80 | 126; h[hl++] = (uint8_t)(n >> 8); h[hl++] = (uint8_t)n; }
    else { h[hl++] = 0x80 | 127; for (int i = 7; i >= 0; i--) h[hl++] = (uint8_t)(n >> (8 * i)); }
    memset(h + hl, 0, 4);
    hl += 4;
    out_append(c, h, hl);
    out_append(c, payload, n);
}

/* send/recv, or their TLS forms: -1 with errno EAGAIN when the socket
 * (or TLS) must wait, -1 with another errno on failure, 0 at the end. */
static ssize_t io_send(conn *c, const void *data, size_t n) {
    if (!c->ssl) return send(c->fd, data, n, MSG_NOSIGNAL);
    ERR_clear_error();
    int w = SSL_write(c->ssl, data, (int)n);
    if (w > 0) return w;
    int e = SSL_get_error(c->ssl, w);
    errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EPIPE;
    return -1;
}

static ssize_t io_recv(conn *c, void *data, size_t n) {
    if (!c->ssl) return recv(c->fd, data, n, 0);
    ERR_clear_error();
    int r = SSL_read(c->ssl, data, (int)n);
    if (r > 0) return r;
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_ZERO_RETURN) return 0;
    errno = (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) ? EAGAIN : EPIPE;
    return -1;
}

static void flush_out(conn *c) {
    while (c->olen > 0) {
        ssize_t w = io_send(c, c->out, c->olen);
        if (w < 0) {
            if (errno == EAGAIN) break;
            c->state = S_CLOSED;
            return;
        }
        memmove(c->out, c->out + w, c->olen - (size_t)w);
        c->olen -= (size_t)w;
    }
    struct epoll_event ev = {.events = EPOLLIN | (c->olen ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void format_target(char *out, size_t size, const char *format, int endpoint) {
    snprintf(out, size, format, endpoint);
}

/* A payload arrived: latency, loss and order from its first 16 bytes. */
static void on_payload(conn *c, const uint8_t *p, size_t n, uint64_t now) {
    if (n < 16) { error_count++; return; }
    uint64_t sent = be64(p);
    int64_t seq = (int64_t)be64(p + 8);
    if (c->last_seq >= 0) {
        if (seq > c->last_seq + 1 && measuring) missing += (uint64_t)(seq - c->last_seq - 1);
        if (seq <= c->last_seq && measuring) reordered++;
    }
    if (seq > c->last_seq) c->last_seq = seq;
    if (!measuring) { outside_window++; return; }
    received++;
    hist_record(&hist, now > sent ? now - sent : 0);
}

static int pending_count, subscribed_count;  /* connections still connecting; subscribed */

static void subscribed(conn *c) {
    if (c->state != S_SUBSCRIBING) return;
    c->state = S_SUBSCRIBED;
    pending_count--;
    subscribed_count++;
}

/* NATS: a text protocol of lines and sized payloads, split anywhere. */
static void nats_parse(conn *c, uint64_t now) {
    size_t off = 0;
    for (;;) {
        uint8_t *line = c->stream + off;
        size_t left = c->slen - off;
        uint8_t *crlf = memmem(line, left, "\r\n", 2);
        if (!crlf) break;
        size_t ll = (size_t)(crlf - line);
        if (ll >= 4 && memcmp(line, "MSG ", 4) == 0) {
            /* MSG <subject> <sid> [reply-to] <#bytes> */
            size_t i = ll;
            while (i > 0 && line[i - 1] != ' ') i--;
            size_t size = strtoul((const char *)line + i, NULL, 10);
            if (left < ll + 2 + size + 2) break;
            on_payload(c, crlf + 2, size, now);
            off += ll + 2 + size + 2;
            continue;
        }
        if (ll == 4 && memcmp(line, "PING", 4) == 0) send_frame(c, 0x2, "PONG\r\n", 6);
        else if (ll == 4 && memcmp(line, "PONG", 4) == 0) subscribed(c);
        else if (ll >= 4 && memcmp(line, "-ERR", 4) == 0) error_count++;
        off += ll + 2;
    }
    memmove(c->stream, c->stream + off, c->slen - off);
    c->slen -= off;
}

/* MQTT 3.1.1: packets with a varint remaining length, split anywhere. */
static void mqtt_parse(conn *c, uint64_t now) {
    size_t off = 0;
    for (;;) {
        uint8_t *p = c->stream + off;
        size_t left = c->slen - off;
        if (left < 2) break;
        size_t len = 0, i = 1;
        int mult = 1;
        bool complete = false;
        while (i < left && i <= 4) {
            len += (size_t)(p[i] & 0x7F) * (size_t)mult;
            mult *= 128;
            if (!(p[i++] & 0x80)) { complete = true; break; }
        }
        if (!complete || left < i + len) break;
        uint8_t type = p[0] >> 4;
        if (type == 3) { /* PUBLISH, QoS 0 */
            size_t tl = ((size_t)p[i] << 8) | p[i + 1];
            size_t header = 2 + tl + (((p[0] >> 1) & 3) ? 2 : 0);
            on_payload(c, p + i + header, len - header, now);
        } else if (type == 9) {
            subscribed(c); /* SUBACK */
        }
        off += i + len;
    }
    memmove(c->stream, c->stream + off, c->slen - off);
    c->slen -= off;
}

static void on_message(conn *c, uint8_t opcode, uint8_t *p, size_t n, uint64_t now) {
    switch (opt.protocol) {
    case P_STREAMGATE:
        if (opcode == 0x1) {
            if (memmem(p, n, "\"subscribed\"", 12)) subscribed(c);
            else if (memmem(p, n, "\"error\"", 7)) { error_count++; fprintf(stderr, "error frame: %.*s\n", (int)n, p); }
            return;
        }
        if (n < 22 || p[0] != 1) { error_count++; return; }
        {
            size_t e = ((size_t)p[2] << 8) | p[3], ep = ((size_t)p[4] << 8) | p[5];
            if (n < 22 + e + ep) { error_count++; return; }
            on_payload(c, p + 22 + e + ep, n - 22 - e - ep, now);
        }
        return;
    case P_RAW:
        on_payload(c, p, n, now);
        return;
    case P_NATS:
    case P_MQTT:
        grow(&c->stream, &c->scap, c->slen + n);
        memcpy(c->stream + c->slen, p, n);
        c->slen += n;
        if (opt.protocol == P_NATS) nats_parse(c, now);
        else mqtt_parse(c, now);
        return;
    }
}

static void send_subscribe(conn *c) {
    char target[512], msg[1024];
    format_target(target, sizeof(target), opt.target_format, c->endpoint);
    int n;
    switch (opt.protocol) {
    case P_STREAMGATE:
        n = snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"endpoint\":\"%s\"}", target);
        send_frame(c, 0x1, msg, (size_t)n);
        c->state = S_SUBSCRIBING;
        break;
    case P_RAW:
        c->state = S_SUBSCRIBING; /* the URL path subscribed it */
        subscribed(c);
        break;
    case P_NATS:
        n = snprintf(msg, sizeof(msg),
                     "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nSUB %s 1\r\nPING\r\n", target);
        send_frame(c, 0x2, msg, (size_t)n);
        c->state = S_SUBSCRIBING;
        break;
    case P_MQTT: {
        uint8_t pkt[600];
        char id[32];
        int idl = snprintf(id, sizeof(id), "b%d-%d", getpid(), c->fd);
        size_t k = 0;
        pkt[k++] = 0x10;
        pkt[k++] = (uint8_t)(10 + 2 + idl);
        memcpy(pkt + k, "\x00\x04MQTT\x04\x02\x00\x3c", 10);
        k += 10;
        pkt[k++] = 0;
        pkt[k++] = (uint8_t)idl;
        memcpy(pkt + k, id, (size_t)idl);
        k += (size_t)idl;
        size_t tl = strlen(target);
        pkt[k++] = 0x82;
        pkt[k++] = (uint8_t)(2 + 2 + tl + 1);
        pkt[k++] = 0;
        pkt[k++] = 1;
        pkt[k++] = (uint8_t)(tl >> 8);
        pkt[k++] = (uint8_t)tl;
        memcpy(pkt + k, target, tl);
        k += tl;
        pkt[k++] = 0;
        send_frame(c, 0x2, pkt, k);
        c->state = S_SUBSCRIBING;
        break;
    }
    }
}

static void close_conn(conn *c) {
    if (c->state == S_CLOSED) return;
    if (c->state == S_SUBSCRIBED) subscribed_count--;
    else pending_count--;
    c->state = S_CLOSED;
    closed_count++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) SSL_free(c->ssl);
    c->ssl = NULL;
    close(c->fd);
}

static void on_readable(conn *c) {
    for (int round = 0; round < 4; round++) {
        grow(&c->buf, &c->cap, c->len + 65536);
        ssize_t r = io_recv(c, c->buf + c->len, c->cap - c->len);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) { close_conn(c); return; }
        if (r < 0) break;
        c->len += (size_t)r;
        uint64_t now = realtime_ns();
        size_t off = 0;
        if (c->state == S_HANDSHAKE) {
            uint8_t *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end) continue;
            if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0) {
                fprintf(stderr, "handshake refused: %.*s\n", (int)(c->len < 200 ? c->len : 200), c->buf);
                error_count++;
                close_conn(c);
                return;
            }
            off = (size_t)(end + 4 - c->buf);
            send_subscribe(c);
        }
        for (;;) {
            uint8_t *p = c->buf + off;
            size_t left = c->len - off;
            if (left < 2) break;
            uint64_t n = p[1] & 0x7F;
            size_t hl = 2;
            if (n == 126) { if (left < 4) break; n = ((uint64_t)p[2] << 8) | p[3]; hl = 4; }
            else if (n == 127) { if (left < 10) break; n = be64(p + 2); hl = 10; }
            if (left < hl + n) break;
            uint8_t opcode = p[0] & 0x0F;
            if (opcode == 0x9) send_frame(c, 0xA, p + hl, (size_t)n);
            else if (opcode == 0x8) { close_conn(c); return; }
            else if (opcode != 0xA) on_message(c, opcode, p + hl, (size_t)n, now);
            off += hl + (size_t)n;
        }
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
        if (c->cap > 262144 && c->len < 1024) { free(c->buf); c->buf = NULL; c->cap = 0; grow(&c->buf, &c->cap, c->len + 1); }
        if ((size_t)r < 65536 && !(c->ssl && SSL_pending(c->ssl) > 0)) break;
    }
    if (c->olen) flush_out(c);
}

static int start_connect(conn *c, int index) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (opt.source_count) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, opt.sources[index % opt.source_count], &src.sin_addr);
        /* Let connect() pick the port per destination, not per bind: ports in
         * TIME_WAIT towards another server stay usable. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) { close(fd); return -1; }
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &dst.sin_addr);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0 && errno != EINPROGRESS) { close(fd); return -1; }
    c->fd = fd;
    c->state = S_CONNECTING;
    pending_count++;
    c->last_seq = -1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void send_upgrade(conn *c);

/* Drives a TLS handshake; the upgrade request goes out once it is done. */
static void tls_step(conn *c) {
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        send_upgrade(c);
        return;
    }
    int e = SSL_get_error(c->ssl, rc);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        fprintf(stderr, "TLS handshake failed: %s\n", ERR_reason_error_string(ERR_peek_last_error()));
        error_count++;
        close_conn(c);
        return;
    }
    struct epoll_event ev = {.events = e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void on_connected(conn *c) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { error_count++; close_conn(c); return; }
    if (opt.tls) {
        c->ssl = SSL_new(tls_context);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) { error_count++; close_conn(c); return; }
        SSL_set_connect_state(c->ssl);
        c->state = S_TLS;
        tls_step(c);
        return;
    }
    send_upgrade(c);
}

static void send_upgrade(conn *c) {
    char path[512], req[1024];
    format_target(path, sizeof(path), opt.path_format, c->endpoint);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
                     path, opt.host, opt.port,
                     opt.protocol == P_MQTT ? "Sec-WebSocket-Protocol: mqtt\r\n" : "");
    c->state = S_HANDSHAKE;
    out_append(c, req, (size_t)n);
    flush_out(c);
}

static void split_sources(char *list) {
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        opt.sources = realloc(opt.sources, sizeof(char *) * (size_t)(opt.source_count + 1));
        opt.sources[opt.source_count++] = tok;
    }
}

static void usage(void) {
    fprintf(stderr,
            "usage: benchsub [--protocol streamgate|raw|nats|mqtt] [--host H] [--port P] [--path FMT]\n"
            "                [--target FMT] [--connections N] [--endpoints K] [--first-endpoint I]\n"
            "                [--sources 127.0.0.2,...] [--warmup S] [--duration S] [--connect-timeout S]\n"
            "                [--seed N] [--wait-go] [--tls] --out FILE\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct option longopts[] = {
        {"protocol", 1, 0, 'P'}, {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"path", 1, 0, 'a'},
        {"target", 1, 0, 't'}, {"connections", 1, 0, 'n'}, {"endpoints", 1, 0, 'k'},
        {"first-endpoint", 1, 0, 'f'}, {"sources", 1, 0, 's'}, {"warmup", 1, 0, 'w'},
        {"duration", 1, 0, 'd'}, {"connect-timeout", 1, 0, 'c'}, {"seed", 1, 0, 'S'}, {"out", 1, 0, 'o'},
        {"wait-go", 0, 0, 'g'}, {"tls", 0, 0, 'T'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'P':
            if (!strcmp(optarg, "streamgate")) opt.protocol = P_STREAMGATE;
            else if (!strcmp(optarg, "raw")) opt.protocol = P_RAW;
            else if (!strcmp(optarg, "nats")) opt.protocol = P_NATS;
            else if (!strcmp(optarg, "mqtt")) opt.protocol = P_MQTT;
            else usage();
            break;
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'a': opt.path_format = optarg; break;
        case 't': opt.target_format = optarg; break;
        case 'n': opt.connections = atoi(optarg); break;
        case 'k': opt.endpoints = atoi(optarg); break;
        case 'f': opt.first_endpoint = atoi(optarg); break;
        case 's': split_sources(optarg); break;
        case 'w': opt.warmup = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'c': opt.connect_timeout = atof(optarg); break;
        case 'S': opt.seed = (unsigned)atoi(optarg); break;
        case 'o': opt.out = optarg; break;
        case 'g': opt.wait_go = true; break;
        case 'T': opt.tls = true; break;
        default: usage();
        }
    }
    if (!opt.out || opt.connections < 1 || opt.endpoints < 1) usage();

    if (opt.tls) {
        tls_context = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(tls_context, SSL_VERIFY_NONE, NULL); /* loopback benchmark: no certificate check */
        SSL_CTX_set_mode(tls_context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    epfd = epoll_create1(0);
    conn *conns = calloc((size_t)opt.connections, sizeof(conn));
    srand(opt.seed);
    for (int i = 0; i < opt.connections; i++) {
        conns[i].endpoint = opt.first_endpoint + rand() % opt.endpoints;
        conns[i].state = S_CLOSED;
        conns[i].fd = -1;
    }

    double t0 = mono_s(), ready_at = 0, window_start = 0, window_end = 0;
    int next = 0, ready_subscribed = 0;
    struct rusage ru0 = {0}, ru1 = {0};
    struct epoll_event events[1024];
    for (;;) {
        double now = mono_s();
        /* Keep a bounded number of connects and handshakes in flight. */
        while (next < opt.connections && pending_count < opt.connect_concurrency && !ready_at) {
            if (start_connect(&conns[next], next) != 0) error_count++;
            next++;
        }
        if (!ready_at) {
            if ((next == opt.connections && pending_count == 0) || now - t0 > opt.connect_timeout) {
                ready_at = now;
                ready_subscribed = subscribed_count;
                printf("READY %d %.3f\n", subscribed_count, now - t0);
                fflush(stdout);
                if (opt.wait_go) {
                    /* The driver starts every process's window at once. */
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
                    window_start = window_end = 1e18;
                } else {
                    window_start = ready_at + opt.warmup;
                    window_end = window_start + opt.duration;
                }
            }
        } else if (!measuring && now >= window_start && now < window_end) {
            measuring = true;
            getrusage(RUSAGE_SELF, &ru0);
        } else if (measuring && now >= window_end) {
            measuring = false;
            getrusage(RUSAGE_SELF, &ru1);
            break;
        }
        int timeout = ready_at ? 10 : 5;
        int n = epoll_wait(epfd, events, 1024, timeout);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (!c) { /* stdin: "GO" */
                char line[64];
                ssize_t r = read(0, line, sizeof(line));
                if (r <= 0 || memmem(line, (size_t)r, "GO", 2)) {
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                    window_start = mono_s() + opt.warmup;
                    window_end = window_start + opt.duration;
                }
                continue;
            }
            if (c->state == S_CLOSED) continue;
            if (c->state == S_CONNECTING) {
                if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
                continue;
            }
            if (c->state == S_TLS) {
                tls_step(c);
                continue;
            }
            if (events[i].events & EPOLLOUT) flush_out(c);
            if (c->state != S_CLOSED && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
        }
    }

    int still_open = 0;
    for (int i = 0; i < opt.connections; i++) still_open += conns[i].state == S_SUBSCRIBED;
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) + (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) + (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    FILE *out = fopen(opt.out, "w");
    if (!out) { perror(opt.out); return 1; }
    fprintf(out,
            "{\"connections\": %d, \"subscribed\": %d, \"open_at_end\": %d, \"connect_seconds\": %.3f, "
            "\"window_seconds\": %.3f, \"received\": %llu, \"missing\": %llu, \"reordered\": %llu, "
            "\"closed\": %llu, \"errors\": %llu, \"cpu_seconds\": %.3f, \"latency_sum_ns\": %.0f, "
            "\"latency_max_ns\": %llu, \"histogram\": ",
            opt.connections, ready_subscribed, still_open, ready_at - t0, opt.duration,
            (unsigned long long)received, (unsigned long long)missing, (unsigned long long)reordered,
            (unsigned long long)closed_count, (unsigned long long)error_count, cpu, hist.sum,
            (unsigned long long)hist.max);
    hist_write_json(&hist, out);
    fprintf(out, "}\n");
    fclose(out);
    return 0;
}
