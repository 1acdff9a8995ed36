/*
 * baresend — the bare-send ceiling: the least work a WebSocket fan-out can
 * do on this machine. A single-threaded epoll server that accepts the same
 * clients as Streamgate (upgrade, then a JSON subscribe), and for every
 * message of the same schedule (K endpoints x rate, spread evenly) does one
 * send() of one pre-built frame — in Streamgate's delivery format, same
 * size — per subscriber, and nothing else: no queues, no partial-write
 * handling (a short write is counted and the rest dropped), no slow-consumer
 * policy. scripts/bench reports Streamgate as a ratio of it.
 *
 *   baresend --port P --endpoints K --rate-per-key R --payload-bytes 512
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct client { int fd; bool upgraded; size_t len; char buf[2048]; } client;
typedef struct subscribers { int *fds; int count, cap; } subscribers;

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put_be(uint8_t *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) { p[i] = (uint8_t)v; v >>= 8; }
}

static void send_text(int fd, const char *text) {
    uint8_t frame[256];
    size_t n = strlen(text);
    frame[0] = 0x81;
    frame[1] = (uint8_t)n;
    memcpy(frame + 2, text, n);
    ssize_t w = send(fd, frame, n + 2, MSG_NOSIGNAL);
    (void)w;
}

static bool handshake(client *c) {
    char *end = strstr(c->buf, "\r\n\r\n");
    if (!end) return false;
    char *key = strcasestr(c->buf, "Sec-WebSocket-Key:");
    if (!key) return false;
    key += 18;
    while (*key == ' ') key++;
    char input[128];
    int kl = (int)strcspn(key, "\r\n");
    snprintf(input, sizeof(input), "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", kl, key);
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1((uint8_t *)input, strlen(input), digest);
    char accept[64];
    EVP_EncodeBlock((uint8_t *)accept, digest, SHA_DIGEST_LENGTH);
    char response[256];
    int n = snprintf(response, sizeof(response),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    ssize_t w = send(c->fd, response, (size_t)n, MSG_NOSIGNAL);
    (void)w;
    send_text(c->fd, "{\"type\":\"welcome\",\"protocol\":\"streamgate.v1\"}");
    size_t head = (size_t)(end + 4 - c->buf);
    memmove(c->buf, c->buf + head, c->len - head);
    c->len -= head;
    c->upgraded = true;
    return true;
}

/* Finds "/<prefix><number>" in the client's first (masked) text frame. */
static int parse_subscribe(client *c, int endpoints) {
    if (c->len < 6) return 0;
    uint8_t *p = (uint8_t *)c->buf;
    size_t n = p[1] & 0x7F;
    if (n >= 126 || c->len < 6 + n) return 0;
    for (size_t i = 0; i < n; i++) p[6 + i] ^= p[2 + (i & 3)];
    char text[160];
    snprintf(text, sizeof(text), "%.*s", (int)n, (char *)p + 6);
    char *ep = strstr(text, "\"endpoint\":\"");
    if (!ep) return -1;
    ep += 12;
    char *digits = ep + strcspn(ep, "0123456789");
    int k = atoi(digits);
    c->len = 0;
    return (k >= 1 && k <= endpoints) ? k : -1;
}

int main(int argc, char **argv) {
    int port = 9100, endpoints = 1000, payload_bytes = 512;
    double rate_per_key = 1;
    const char *prefix = "/bench/k";
    static struct option longopts[] = {{"port", 1, 0, 'p'}, {"endpoints", 1, 0, 'k'},
                                       {"rate-per-key", 1, 0, 'r'}, {"payload-bytes", 1, 0, 'b'},
                                       {"prefix", 1, 0, 'x'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'p') port = atoi(optarg);
        else if (ch == 'k') endpoints = atoi(optarg);
        else if (ch == 'r') rate_per_key = atof(optarg);
        else if (ch == 'b') payload_bytes = atoi(optarg);
        else if (ch == 'x') prefix = optarg;
        else { fprintf(stderr, "usage: baresend --port P --endpoints K --rate-per-key R --payload-bytes B\n"); return 2; }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 4096)) { perror("listen"); return 1; }
    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);

    subscribers *subs = calloc((size_t)endpoints + 1, sizeof(subscribers));
    /* One pre-built frame per endpoint, in Streamgate's delivery format; only
     * the 16 bytes of send time and sequence change per message. */
    const char *epoch = "0123456789abcdef";
    uint8_t **frames = calloc((size_t)endpoints + 1, sizeof(uint8_t *));
    size_t *frame_len = calloc((size_t)endpoints + 1, sizeof(size_t));
    size_t *body_at = calloc((size_t)endpoints + 1, sizeof(size_t));
    uint64_t *seq = calloc((size_t)endpoints + 1, sizeof(uint64_t));
    for (int k = 1; k <= endpoints; k++) {
        char name[64];
        int e = snprintf(name, sizeof(name), "%s%d", prefix, k);
        size_t payload = 22 + (size_t)e + 16 + (size_t)payload_bytes;
        size_t hl = payload < 126 ? 2 : payload < 65536 ? 4 : 10;
        uint8_t *f = calloc(1, hl + payload);
        f[0] = 0x82;
        if (hl == 2) f[1] = (uint8_t)payload;
        else if (hl == 4) { f[1] = 126; put_be(f + 2, payload, 2); }
        else { f[1] = 127; put_be(f + 2, payload, 8); }
        uint8_t *p = f + hl;
        p[0] = 1;
        put_be(p + 2, (uint64_t)e, 2);
        put_be(p + 4, 16, 2);
        memcpy(p + 22, name, (size_t)e);
        memcpy(p + 22 + e, epoch, 16);
        memset(p + 22 + e + 16, 0x2A, (size_t)payload_bytes);
        frames[k] = f;
        frame_len[k] = hl + payload;
        body_at[k] = hl + 22 + (size_t)e + 16;
    }

    uint64_t sent_messages = 0, deliveries = 0, short_writes = 0;
    double total_rate = rate_per_key * endpoints, start = mono_s();
    struct epoll_event events[1024];
    printf("baresend listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    while (!stopping) {
        int n = epoll_wait(epfd, events, 1024, 1);
        for (int i = 0; i < n; i++) {
            client *c = events[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    client *nc = calloc(1, sizeof(client));
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd); /* its subscription stays: sends to a closed fd just fail */
                continue;
            }
            c->len += (size_t)r;
            c->buf[c->len] = 0;
            if (!c->upgraded && !handshake(c)) continue;
            int k = parse_subscribe(c, endpoints);
            if (k > 0) {
                subscribers *s = &subs[k];
                if (s->count == s->cap) {
                    s->cap = s->cap ? s->cap * 2 : 4;
                    s->fds = realloc(s->fds, sizeof(int) * (size_t)s->cap);
                }
                s->fds[s->count++] = c->fd;
                char reply[160];
                snprintf(reply, sizeof(reply), "{\"type\":\"subscribed\",\"endpoint\":\"%s%d\"}", prefix, k);
                send_text(c->fd, reply);
            }
        }
        uint64_t due = (uint64_t)((mono_s() - start) * total_rate);
        while (sent_messages < due) {
            int k = (int)(sent_messages % (uint64_t)endpoints) + 1;
            uint8_t *f = frames[k];
            put_be(f + body_at[k], realtime_ns(), 8);
            put_be(f + body_at[k] + 8, ++seq[k], 8);
            subscribers *s = &subs[k];
            for (int j = 0; j < s->count; j++) {
                ssize_t w = send(s->fds[j], f, frame_len[k], MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w == (ssize_t)frame_len[k]) deliveries++;
                else short_writes++;
            }
            sent_messages++;
        }
    }
    printf("baresend: %llu messages, %llu deliveries, %llu short or failed writes\n",
           (unsigned long long)sent_messages, (unsigned long long)deliveries, (unsigned long long)short_writes);
    return 0;
}
