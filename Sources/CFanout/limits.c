/*
 * limits.c — connection limits shared by all loops: how many WebSocket
 * connections are open in total and per source address, and which Origins
 * may upgrade. Checked once per handshake (not on the data path), under one
 * mutex; an admitted connection keeps a pointer to its address's counter
 * and gives it back when it goes.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define ADDRESS_BUCKETS 4096

struct address_count {
    address_count *next;
    uint32_t count;
    uint8_t family_length;      /* bytes of addr used: 4 or 16 */
    uint8_t addr[16];
};

struct cf_limits {
    pthread_mutex_t lock;
    uint64_t open;              /* admitted and not yet released */
    address_count *buckets[ADDRESS_BUCKETS];
};

cf_limits *cfi_limits_create(void) {
    cf_limits *l = calloc(1, sizeof(cf_limits));
    if (l) pthread_mutex_init(&l->lock, NULL);
    return l;
}

void cfi_limits_destroy(cf_limits *l) {
    if (!l) return;
    for (size_t i = 0; i < ADDRESS_BUCKETS; i++) {
        address_count *a = l->buckets[i];
        while (a) {
            address_count *next = a->next;
            free(a);
            a = next;
        }
    }
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* The peer's address bytes (IPv4-mapped IPv6 counts as IPv4). */
static int peer_ip(int fd, uint8_t out[16]) {
    struct sockaddr_storage ss = {0};
    socklen_t len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) {
        memcpy(out, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        return 4;
    }
    if (ss.ss_family == AF_INET6) {
        const uint8_t *a = ((struct sockaddr_in6 *)&ss)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) {
            memcpy(out, a + 12, 4);
            return 4;
        }
        memcpy(out, a, 16);
        return 16;
    }
    return 0;
}

static uint32_t ip_hash(const uint8_t *ip, int n) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < n; i++) h = (h ^ ip[i]) * 16777619u;
    return h;
}

limit_verdict cfi_limits_admit(cf_server *s, cf_conn *c) {
    cf_limits *l = s->limits;
    uint32_t max_total = s->config.max_connections, max_per = s->config.max_connections_per_address;
    uint8_t ip[16];
    int n = peer_ip(c->fd, ip);
    pthread_mutex_lock(&l->lock);
    if (max_total && l->open >= max_total) {
        pthread_mutex_unlock(&l->lock);
        return LIMIT_TOTAL;
    }
    address_count *entry = NULL;
    if (n) {
        address_count **bucket = &l->buckets[ip_hash(ip, n) % ADDRESS_BUCKETS];
        for (entry = *bucket; entry; entry = entry->next)
            if (entry->family_length == n && memcmp(entry->addr, ip, (size_t)n) == 0) break;
        if (entry && max_per && entry->count >= max_per) {
            pthread_mutex_unlock(&l->lock);
            return LIMIT_ADDRESS;
        }
        if (!entry && (entry = calloc(1, sizeof(address_count)))) {
            entry->family_length = (uint8_t)n;
            memcpy(entry->addr, ip, (size_t)n);
            entry->next = *bucket;
            *bucket = entry;
        }
        if (entry) entry->count++;
    }
    l->open++;
    pthread_mutex_unlock(&l->lock);
    c->address = entry;
    c->admitted = true;
    return LIMIT_OK;
}

void cfi_limits_release(cf_server *s, cf_conn *c) {
    if (!c->admitted) return;
    cf_limits *l = s->limits;
    pthread_mutex_lock(&l->lock);
    l->open--;
    address_count *entry = c->address;
    if (entry && --entry->count == 0) {
        address_count **link = &l->buckets[ip_hash(entry->addr, entry->family_length) % ADDRESS_BUCKETS];
        while (*link != entry) link = &(*link)->next;
        *link = entry->next;
        free(entry);
    }
    pthread_mutex_unlock(&l->lock);
    c->admitted = false;
    c->address = NULL;
}

bool cfi_limits_origin_allowed(const cf_server *s, const char *origin) {
    const char *list = s->allowed_origins;
    if (!list || !*list || !origin || !*origin) return true; /* no list, or not a browser */
    size_t n = strlen(origin);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, origin, n) == 0) return true;
        if (!end) break;
        p = end + 1;
    }
    return false;
}
