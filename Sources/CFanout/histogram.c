/*
 * histogram.c — the fixed-bucket duration histograms the loops keep about
 * themselves (how long a turn works, how long a frame waits from its
 * creation to the flush that writes it). Each loop writes its own with
 * relaxed atomic stores and never locks; a scrape on another thread reads
 * them (cf_server_get_loop_stats) and may see a bucket and the sum a few
 * observations apart, which a monitoring system does not mind.
 *
 * The bounds are fixed so that loops and scrapes agree without sharing
 * anything, and chosen for a gateway whose budget is a few milliseconds:
 * fine below 1 ms, coarse above 100 ms.
 */
#include "internal.h"

static const uint64_t bounds_ns[CF_HISTOGRAM_BUCKETS - 1] = {
    50000,    100000,   250000,    500000,    1000000,   2500000,    5000000,
    10000000, 25000000, 50000000,  100000000, 250000000, 1000000000,
};

uint64_t cf_histogram_bound_ns(int bucket) {
    return bucket >= 0 && bucket < CF_HISTOGRAM_BUCKETS - 1 ? bounds_ns[bucket] : UINT64_MAX;
}

void cfi_histogram_observe(cf_histogram *h, uint64_t ns) {
    int bucket = 0;
    while (bucket < CF_HISTOGRAM_BUCKETS - 1 && ns > bounds_ns[bucket]) bucket++;
    __atomic_store_n(&h->counts[bucket], h->counts[bucket] + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&h->sum_ns, h->sum_ns + ns, __ATOMIC_RELAXED);
}

void cfi_histogram_read(const cf_histogram *h, cf_histogram *out) {
    for (int i = 0; i < CF_HISTOGRAM_BUCKETS; i++) out->counts[i] = __atomic_load_n(&h->counts[i], __ATOMIC_RELAXED);
    out->sum_ns = __atomic_load_n(&h->sum_ns, __ATOMIC_RELAXED);
}
