/*
 * utf8.c — incremental UTF-8 validation (RFC 3629) for text messages.
 *
 * A small state machine over the byte classes of RFC 3629's grammar, so a
 * message split across frames (or a frame split across reads) is validated
 * as it arrives and an invalid sequence fails the connection at once (1007).
 * States: 0 accept, 1 reject; the others name what the next byte must be.
 */
#include "cfanout.h"

enum {
    S_ACCEPT = CF_UTF8_ACCEPT,
    S_REJECT = CF_UTF8_REJECT,
    S_TAIL1,        /* one continuation byte 80..BF left */
    S_TAIL2,        /* two continuation bytes left */
    S_TAIL3,        /* three continuation bytes left */
    S_E0,           /* after E0: A0..BF then one tail (no overlongs) */
    S_ED,           /* after ED: 80..9F then one tail (no surrogates) */
    S_F0,           /* after F0: 90..BF then two tails (no overlongs) */
    S_F4,           /* after F4: 80..8F then two tails (<= U+10FFFF) */
};

static inline uint32_t step(uint32_t state, uint8_t b) {
    switch (state) {
    case S_ACCEPT:
        if (b < 0x80) return S_ACCEPT;
        if (b >= 0xC2 && b <= 0xDF) return S_TAIL1;
        if (b == 0xE0) return S_E0;
        if (b == 0xED) return S_ED;
        if (b >= 0xE1 && b <= 0xEF) return S_TAIL2;
        if (b == 0xF0) return S_F0;
        if (b >= 0xF1 && b <= 0xF3) return S_TAIL3;
        if (b == 0xF4) return S_F4;
        return S_REJECT;
    case S_TAIL1: return (b >= 0x80 && b <= 0xBF) ? S_ACCEPT : S_REJECT;
    case S_TAIL2: return (b >= 0x80 && b <= 0xBF) ? S_TAIL1 : S_REJECT;
    case S_TAIL3: return (b >= 0x80 && b <= 0xBF) ? S_TAIL2 : S_REJECT;
    case S_E0: return (b >= 0xA0 && b <= 0xBF) ? S_TAIL1 : S_REJECT;
    case S_ED: return (b >= 0x80 && b <= 0x9F) ? S_TAIL1 : S_REJECT;
    case S_F0: return (b >= 0x90 && b <= 0xBF) ? S_TAIL2 : S_REJECT;
    case S_F4: return (b >= 0x80 && b <= 0x8F) ? S_TAIL2 : S_REJECT;
    default: return S_REJECT;
    }
}

uint32_t cf_utf8_validate(uint32_t state, const uint8_t *data, size_t length) {
    size_t i = 0;
    while (i < length) {
        /* Fast path: 8 ASCII bytes at a time while no sequence is open. */
        if (state == S_ACCEPT) {
            while (i + 8 <= length) {
                uint64_t chunk;
                __builtin_memcpy(&chunk, data + i, 8);
                if (chunk & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i >= length) break;
        }
        state = step(state, data[i++]);
        if (state == S_REJECT) return S_REJECT;
    }
    return state;
}
