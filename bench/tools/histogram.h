/*
 * histogram.h — a log-linear latency histogram (HdrHistogram's layout with
 * 1024 sub-buckets per power of two: ~0.1 % resolution) for nanosecond
 * values up to ~18 minutes. Histograms from several processes merge by
 * adding counts index by index; the bench driver reads them as [index, count]
 * pairs and recovers values with hist_value().
 */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB 1024
#define HIST_MAX_EXP 40
#define HIST_SIZE (2 * HIST_SUB + (HIST_MAX_EXP - 10) * HIST_SUB)

typedef struct histogram {
    uint64_t counts[HIST_SIZE];
    uint64_t total, max;
    double sum;
} histogram;

static inline int hist_index(uint64_t v) {
    if (v < 2 * HIST_SUB) return (int)v;
    int k = 63 - __builtin_clzll(v); /* v in [2^k, 2^(k+1)) with k >= 11 */
    if (k > HIST_MAX_EXP) return HIST_SIZE - 1;
    int shift = k - 10;
    return 2 * HIST_SUB + (k - 11) * HIST_SUB + (int)((v >> shift) - HIST_SUB);
}

/* The lowest value of a bucket. */
static inline uint64_t hist_value(int index) {
    if (index < 2 * HIST_SUB) return (uint64_t)index;
    int k = (index - 2 * HIST_SUB) / HIST_SUB + 11;
    uint64_t sub = (uint64_t)((index - 2 * HIST_SUB) % HIST_SUB) + HIST_SUB;
    return sub << (k - 10);
}

static inline void hist_record(histogram *h, uint64_t v) {
    h->counts[hist_index(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v > h->max) h->max = v;
}

/* Writes "[[index,count],...]" for non-empty buckets. */
static inline void hist_write_json(const histogram *h, FILE *out) {
    fputc('[', out);
    int first = 1;
    for (int i = 0; i < HIST_SIZE; i++) {
        if (!h->counts[i]) continue;
        fprintf(out, "%s[%d,%llu]", first ? "" : ",", i, (unsigned long long)h->counts[i]);
        first = 0;
    }
    fputc(']', out);
}

#endif
