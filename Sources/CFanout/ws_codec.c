/*
 * ws_codec.c — RFC 6455 framing primitives: header parse/encode, unmasking,
 * close-code rules, and the Sec-WebSocket-Accept computation.
 * Pure functions: no state, no allocation, easy to test from Swift.
 */
#include "cfanout.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <string.h>

int cf_ws_parse_header(const uint8_t *data, size_t length, cf_ws_header *out) {
    if (length < 2) return 0;
    uint8_t b0 = data[0], b1 = data[1];
    out->fin = (b0 >> 7) & 1;
    out->rsv = (b0 >> 4) & 7;
    out->opcode = b0 & 0x0F;
    out->masked = (b1 >> 7) & 1;
    uint64_t len = b1 & 0x7F;
    size_t need = 2;
    if (len == 126) {
        need += 2;
        if (length < need) return 0;
        len = ((uint64_t)data[2] << 8) | data[3];
    } else if (len == 127) {
        need += 8;
        if (length < need) return 0;
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | data[2 + i];
    }
    if (out->masked) {
        if (length < need + 4) return 0;
        memcpy(out->mask, data + need, 4);
        need += 4;
    } else {
        memset(out->mask, 0, 4);
    }
    out->payload_length = len;
    out->header_length = need;
    return 1;
}

size_t cf_ws_write_header(uint8_t *out, int fin, uint8_t opcode, uint64_t payload_length) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (payload_length < 126) {
        out[1] = (uint8_t)payload_length;
        return 2;
    }
    if (payload_length <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(payload_length >> 8);
        out[3] = (uint8_t)payload_length;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(payload_length >> (56 - 8 * i));
    return 10;
}

void cf_ws_unmask(uint8_t *data, size_t length, const uint8_t mask[4], size_t offset) {
    size_t i = 0;
    /* Byte-wise until the mask phase is 0, then 8 bytes at a time. */
    while (i < length && ((offset + i) & 3) != 0) {
        data[i] ^= mask[(offset + i) & 3];
        i++;
    }
    uint64_t wide;
    uint8_t m8[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    memcpy(&wide, m8, 8);
    for (; i + 8 <= length; i += 8) {
        uint64_t chunk;
        memcpy(&chunk, data + i, 8);
        chunk ^= wide;
        memcpy(data + i, &chunk, 8);
    }
    for (; i < length; i++) data[i] ^= mask[(offset + i) & 3];
}

int cf_ws_close_code_is_valid(uint16_t code) {
    if (code >= 3000 && code <= 4999) return 1; /* registered and private use */
    switch (code) {
    case 1000: case 1001: case 1002: case 1003:
    case 1007: case 1008: case 1009: case 1010: case 1011:
    case 1012: case 1013: case 1014:
        return 1;
    default:
        return 0; /* 1004-1006 and 1015 must never be sent; the rest are unassigned */
    }
}

int cf_ws_accept_key(const char *key, size_t key_length, char out[29]) {
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /* A valid key is the base64 encoding of 16 bytes: 24 characters ending in "==". */
    if (key_length != 24 || key[22] != '=' || key[23] != '=') return -1;
    for (size_t i = 0; i < 22; i++) {
        char c = key[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '+' || c == '/';
        if (!ok) return -1;
    }
    uint8_t buffer[24 + sizeof(guid) - 1];
    memcpy(buffer, key, 24);
    memcpy(buffer + 24, guid, sizeof(guid) - 1);
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1(buffer, sizeof(buffer), digest);
    int n = EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
    out[n] = '\0';
    return n == 28 ? 0 : -1;
}
