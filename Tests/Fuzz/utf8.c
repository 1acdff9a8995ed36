// utf8.c — differential libFuzzer harness for the incremental UTF-8 validator
// (cf_utf8_validate, Sources/CFanout/utf8.c).
//
// The reference below is written from RFC 3629 directly (decode each
// sequence to its code point, then reject overlongs, surrogates and values
// above U+10FFFF), not from the state machine it checks. For the input as a
// whole and for every prefix at a split point, both must agree on one of
// three verdicts:
//   valid       every sequence complete            (state CF_UTF8_ACCEPT)
//   invalid     some byte can never be valid UTF-8 (state CF_UTF8_REJECT)
//   incomplete  valid so far, a sequence unfinished (any other state)
// The input is also fed in pieces split at points the fuzzer chooses: the
// state carried across the pieces must equal the state of the same prefix
// validated in one call (incremental == whole), REJECT must stay REJECT
// whatever follows, and an empty piece must not change the state.
//
// Input layout: byte 0 = number of split points (mod 16), then that many
// bytes, each a split point as a fraction (x/256) of the payload length;
// the rest is the payload.
#include "cfanout.h"
#include "fuzz_check.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum verdict { VALID, INVALID, INCOMPLETE };

// RFC 3629 section 4: a sequence of n bytes encodes a code point of at least
// min[n] (shorter encodings are overlong) and at most max[n].
static const uint32_t min_code[5] = {0, 0, 0x80, 0x800, 0x10000};
static const uint32_t max_code[5] = {0, 0x7F, 0x7FF, 0xFFFF, 0x10FFFF};

static bool is_surrogate(uint32_t cp) { return cp >= 0xD800 && cp <= 0xDFFF; }

// Can some code point in [lo, hi] encoded in n bytes be valid? (For a
// truncated sequence: its possible completions span such an interval.)
static bool range_has_valid(uint32_t lo, uint32_t hi, int n) {
    if (lo < min_code[n]) lo = min_code[n];
    if (hi > max_code[n]) hi = max_code[n];
    if (lo > hi) return false;
    // Everything in [lo, hi] a surrogate?
    return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static enum verdict reference(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        int len;
        uint32_t cp;
        if (b < 0x80) { i++; continue; }
        else if ((b & 0xE0) == 0xC0) { len = 2; cp = b & 0x1F; }
        else if ((b & 0xF0) == 0xE0) { len = 3; cp = b & 0x0F; }
        else if ((b & 0xF8) == 0xF0) { len = 4; cp = b & 0x07; }
        else return INVALID; // a continuation byte without a lead, or F8..FF
        int have = 1;
        while (have < len && i + (size_t)have < n) {
            uint8_t c = s[i + (size_t)have];
            if ((c & 0xC0) != 0x80) return INVALID;
            cp = (cp << 6) | (c & 0x3F);
            have++;
        }
        if (have < len) {
            // Truncated by the end of the input: the missing continuation
            // bytes (6 bits each) can add anything from 0 to all ones.
            int missing = len - have;
            uint32_t lo = cp << (6 * missing), hi = lo | ((1u << (6 * missing)) - 1);
            // Each prefix of the sequence must already be viable, which
            // checking the whole interval of completions covers.
            return range_has_valid(lo, hi, len) ? INCOMPLETE : INVALID;
        }
        if (cp < min_code[len] || cp > max_code[len] || is_surrogate(cp)) return INVALID;
        i += (size_t)len;
    }
    return VALID;
}

static enum verdict verdict_of(uint32_t state) {
    return state == CF_UTF8_ACCEPT ? VALID : state == CF_UTF8_REJECT ? INVALID : INCOMPLETE;
}

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t splits = data[0] % 16;
    if (size < 1 + splits) return 0;
    const uint8_t *fractions = data + 1;
    // The payload in its own exact-size allocation, so ASan sees a read
    // past its end (libFuzzer's buffer would hide one behind the header).
    size_t n = size - 1 - splits;
    uint8_t *payload = malloc(n ? n : 1);
    memcpy(payload, data + 1 + splits, n);

    // The whole input in one call.
    uint32_t whole = cf_utf8_validate(CF_UTF8_ACCEPT, payload, n);
    enum verdict expected = reference(payload, n);
    if (verdict_of(whole) != expected) {
        fprintf(stderr, "whole input: validator says %u, reference says %d\n", whole, expected);
        abort();
    }

    // The same bytes in pieces, cut at the chosen points (sorted).
    size_t cuts[17];
    for (size_t i = 0; i < splits; i++) cuts[i] = n * fractions[i] / 256;
    qsort(cuts, splits, sizeof(size_t), compare_size);
    cuts[splits] = n;
    uint32_t state = CF_UTF8_ACCEPT;
    size_t at = 0;
    for (size_t i = 0; i <= splits; i++) {
        size_t end = cuts[i];
        uint32_t before = state;
        state = cf_utf8_validate(state, payload + at, end - at);
        if (before == CF_UTF8_REJECT) CHECK(state == CF_UTF8_REJECT); // REJECT is final
        CHECK(cf_utf8_validate(state, payload + end, 0) == state);     // no bytes, no change
        // The state after this prefix is the state of the prefix in one call,
        // and its verdict is the reference's.
        CHECK(state == cf_utf8_validate(CF_UTF8_ACCEPT, payload, end));
        CHECK(verdict_of(state) == reference(payload, end));
        at = end;
    }
    CHECK(state == whole);

    // Once rejected, nothing that follows un-rejects it.
    if (whole == CF_UTF8_REJECT) CHECK(cf_utf8_validate(CF_UTF8_REJECT, (const uint8_t *)"a", 1) == CF_UTF8_REJECT);
    free(payload);
    return 0;
}
