/*
 * endpoints.c — a loop's subscriber sets: endpoint name -> connections.
 *
 * A chained hash table keyed by the endpoint name. Each subscription is
 * indexed from both its endpoint and its connection, so subscribe,
 * unsubscribe and connection teardown are O(1) (swap-remove). An endpoint
 * with no subscribers left is freed.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void cfi_endpoints_init(endpoint_table *t) {
    t->bucket_count = 64;
    t->buckets = calloc(t->bucket_count, sizeof(endpoint *));
    t->count = 0;
}

void cfi_endpoints_free(endpoint_table *t) {
    for (size_t i = 0; i < t->bucket_count; i++) {
        endpoint *e = t->buckets[i];
        while (e) {
            endpoint *next = e->next;
            for (uint32_t j = 0; j < e->count; j++) free(e->subs[j]);
            free(e->subs);
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->count = 0;
}

endpoint *cfi_endpoints_find(const endpoint_table *t, const char *name, size_t length, uint32_t hash) {
    for (endpoint *e = t->buckets[hash & (t->bucket_count - 1)]; e; e = e->next)
        if (e->hash == hash && e->length == length && memcmp(e->name, name, length) == 0) return e;
    return NULL;
}

static void grow_buckets(endpoint_table *t) {
    size_t n = t->bucket_count * 2;
    endpoint **b = calloc(n, sizeof(endpoint *));
    if (!b) return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < t->bucket_count; i++) {
        endpoint *e = t->buckets[i];
        while (e) {
            endpoint *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->bucket_count = n;
}

static void remove_endpoint(endpoint_table *t, endpoint *ep) {
    endpoint **link = &t->buckets[ep->hash & (t->bucket_count - 1)];
    while (*link != ep) link = &(*link)->next;
    *link = ep->next;
    free(ep->subs);
    free(ep);
    t->count--;
}

static int push(void ***array, uint32_t *count, uint32_t *capacity, void *item) {
    if (*count == *capacity) {
        uint32_t cap = *capacity ? *capacity * 2 : 2;
        void **a = realloc(*array, cap * sizeof(void *));
        if (!a) return -1;
        *array = a;
        *capacity = cap;
    }
    (*array)[(*count)++] = item;
    return 0;
}

int cfi_endpoints_subscribe(endpoint_table *t, cf_conn *conn, const char *name, size_t length) {
    uint32_t hash = cfi_endpoint_hash(name, length);
    endpoint *ep = cfi_endpoints_find(t, name, length, hash);
    if (ep) {
        for (uint32_t i = 0; i < conn->sub_count; i++)
            if (conn->subs[i]->ep == ep) return 0;
    } else {
        ep = calloc(1, sizeof(endpoint) + length + 1);
        if (!ep) return -1;
        ep->hash = hash;
        ep->length = (uint32_t)length;
        memcpy(ep->name, name, length);
        if (t->count + 1 > t->bucket_count) grow_buckets(t);
        size_t b = hash & (t->bucket_count - 1);
        ep->next = t->buckets[b];
        t->buckets[b] = ep;
        t->count++;
    }
    subscription *s = malloc(sizeof(subscription));
    if (!s) goto fail;
    s->ep = ep;
    s->conn = conn;
    s->ep_index = ep->count;
    s->conn_index = conn->sub_count;
    if (push((void ***)&ep->subs, &ep->count, &ep->capacity, s) != 0) goto fail;
    if (push((void ***)&conn->subs, &conn->sub_count, &conn->sub_capacity, s) != 0) {
        ep->count--;
        goto fail;
    }
    return 1;
fail:
    free(s);
    if (ep->count == 0) remove_endpoint(t, ep);
    return -1;
}

static void remove_subscription(endpoint_table *t, subscription *s) {
    endpoint *ep = s->ep;
    cf_conn *conn = s->conn;
    subscription *last = ep->subs[--ep->count];
    ep->subs[s->ep_index] = last;
    last->ep_index = s->ep_index;
    last = conn->subs[--conn->sub_count];
    conn->subs[s->conn_index] = last;
    last->conn_index = s->conn_index;
    free(s);
    if (ep->count == 0) remove_endpoint(t, ep);
}

int cfi_endpoints_unsubscribe(endpoint_table *t, cf_conn *conn, const char *name, size_t length) {
    for (uint32_t i = 0; i < conn->sub_count; i++) {
        subscription *s = conn->subs[i];
        if (s->ep->length == length && memcmp(s->ep->name, name, length) == 0) {
            remove_subscription(t, s);
            return 1;
        }
    }
    return 0;
}

void cfi_endpoints_unsubscribe_all(endpoint_table *t, cf_conn *conn) {
    while (conn->sub_count > 0) remove_subscription(t, conn->subs[conn->sub_count - 1]);
    free(conn->subs);
    conn->subs = NULL;
    conn->sub_capacity = 0;
}
