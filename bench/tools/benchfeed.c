/*
 * benchfeed — the direct publisher for peers in the throughput scenario: the
 * same schedule (K channels x rate, spread evenly in time) and the same
 * payload layout (8 bytes send time, 8 bytes sequence, filler) as
 * Streamgate's generator, published over one TCP connection in each peer's
 * own protocol:
 *
 *   nats   PUB <prefix><i> <n>\r\n<payload>\r\n        (answers PING with PONG)
 *   mqtt   MQTT 3.1.1 CONNECT, then PUBLISH QoS 0 to <prefix><i>
 *   http   pipelined POST <prefix><i> (nchan's publisher location); replies discarded
 *
 *   benchfeed --mode nats|mqtt|http --port P --channels K --rate-per-channel R
 *             --payload-bytes B --prefix bench.k
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static char *out;
static size_t out_len, out_cap;

static void append(const void *data, size_t n) {
    if (out_len + n > out_cap) {
        out_cap = (out_len + n) * 2;
        out = realloc(out, out_cap);
    }
    memcpy(out + out_len, data, n);
    out_len += n;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_be64(unsigned char *p, unsigned long long v) {
    for (int i = 7; i >= 0; i--) { p[i] = (unsigned char)v; v >>= 8; }
}

static void mqtt_varint(size_t n) {
    do {
        unsigned char b = n % 128;
        n /= 128;
        if (n) b |= 0x80;
        append(&b, 1);
    } while (n);
}

int main(int argc, char **argv) {
    const char *mode = "nats", *prefix = "bench.k";
    int port = 4222, channels = 1000, payload_bytes = 512;
    double rate = 1;
    static struct option longopts[] = {{"mode", 1, 0, 'm'}, {"port", 1, 0, 'p'}, {"channels", 1, 0, 'k'},
                                       {"rate-per-channel", 1, 0, 'r'}, {"payload-bytes", 1, 0, 'b'},
                                       {"prefix", 1, 0, 'x'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'm') mode = optarg;
        else if (ch == 'p') port = atoi(optarg);
        else if (ch == 'k') channels = atoi(optarg);
        else if (ch == 'r') rate = atof(optarg);
        else if (ch == 'b') payload_bytes = atoi(optarg);
        else if (ch == 'x') prefix = optarg;
        else return 2;
    }
    if (payload_bytes < 16) return 2;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) { perror("connect"); return 1; }
    if (!strcmp(mode, "nats")) {
        const char *hello = "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n";
        append(hello, strlen(hello));
    } else if (!strcmp(mode, "mqtt")) {
        static const unsigned char connect_packet[] = {0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60,
                                                       0, 4, 'f', 'e', 'e', 'd'};
        append(connect_packet, sizeof(connect_packet));
    }
    int flags = 1;
    (void)flags;

    unsigned char *payload = malloc((size_t)payload_bytes);
    memset(payload, '*', (size_t)payload_bytes);
    unsigned long long *seq = calloc((size_t)channels + 1, sizeof(unsigned long long));
    unsigned long long sent = 0;
    double total = rate * channels, start = mono_s();
    char in[65536];
    while (!stopping) {
        unsigned long long due = (unsigned long long)((mono_s() - start) * total);
        while (sent < due) {
            int k = (int)(sent % (unsigned long long)channels) + 1;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            put_be64(payload, (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
            put_be64(payload + 8, ++seq[k]);
            char head[256];
            int n;
            if (!strcmp(mode, "nats")) {
                n = snprintf(head, sizeof(head), "PUB %s%d %d\r\n", prefix, k, payload_bytes);
                append(head, (size_t)n);
                append(payload, (size_t)payload_bytes);
                append("\r\n", 2);
            } else if (!strcmp(mode, "mqtt")) {
                n = snprintf(head, sizeof(head), "%s%d", prefix, k);
                unsigned char h = 0x30;
                append(&h, 1);
                mqtt_varint(2 + (size_t)n + (size_t)payload_bytes);
                unsigned char tl[2] = {(unsigned char)(n >> 8), (unsigned char)n};
                append(tl, 2);
                append(head, (size_t)n);
                append(payload, (size_t)payload_bytes);
            } else {
                n = snprintf(head, sizeof(head), "POST %s%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n",
                             prefix, k, payload_bytes);
                append(head, (size_t)n);
                append(payload, (size_t)payload_bytes);
            }
            sent++;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (out_len ? POLLOUT : 0)};
        poll(&p, 1, 1);
        if (p.revents & POLLIN) {
            ssize_t r = recv(fd, in, sizeof(in), MSG_DONTWAIT);
            if (r == 0) { fprintf(stderr, "benchfeed: server closed the connection\n"); return 1; }
            if (r > 0 && !strcmp(mode, "nats") && memmem(in, (size_t)r, "PING\r\n", 6)) append("PONG\r\n", 6);
        }
        if (out_len && (p.revents & POLLOUT)) {
            ssize_t w = send(fd, out, out_len, MSG_DONTWAIT);
            if (w > 0) {
                memmove(out, out + w, out_len - (size_t)w);
                out_len -= (size_t)w;
            }
        }
    }
    printf("benchfeed: published %llu messages\n", sent);
    return 0;
}
