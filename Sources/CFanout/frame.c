/*
 * frame.c — refcounted, pre-encoded output buffers.
 *
 * A message is encoded once into a cf_frame (WebSocket header + payload in one
 * allocation, with its endpoint name alongside) and the same bytes are queued
 * to every subscriber on every loop; the last release frees it. Refcounts are
 * atomic because one frame is shared by all loops.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

uint32_t cfi_endpoint_hash(const char *name, size_t length) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < length; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}

static cf_frame *frame_alloc(size_t length, const char *endpoint, size_t endpoint_length) {
    if (endpoint_length > UINT16_MAX) return NULL;
    cf_frame *f = malloc(sizeof(cf_frame) + endpoint_length + 1 + length);
    if (!f) return NULL;
    f->refs = 1;
    f->length = length;
    f->endpoint = (char *)(f + 1);
    f->endpoint_length = (uint16_t)endpoint_length;
    if (endpoint_length) memcpy(f->endpoint, endpoint, endpoint_length);
    f->endpoint[endpoint_length] = '\0';
    f->endpoint_hash = cfi_endpoint_hash(endpoint, endpoint_length);
    f->bytes = (uint8_t *)f->endpoint + endpoint_length + 1;
    f->created_ns = cfi_now_ns();
    return f;
}

cf_frame *cf_frame_create(int is_text, size_t payload_length, const char *endpoint,
                          size_t endpoint_length, uint8_t **payload_out) {
    uint8_t header[10];
    size_t header_length = cf_ws_write_header(header, 1, is_text ? CF_WS_OP_TEXT : CF_WS_OP_BINARY, payload_length);
    cf_frame *f = frame_alloc(header_length + payload_length, endpoint, endpoint ? endpoint_length : 0);
    if (!f) return NULL;
    memcpy(f->bytes, header, header_length);
    if (payload_out) *payload_out = f->bytes + header_length;
    return f;
}

cf_frame *cfi_frame_create_raw(size_t length) { return frame_alloc(length, NULL, 0); }

cf_frame *cfi_frame_create_control(uint8_t opcode, const uint8_t *payload, size_t length) {
    if (length > 125) length = 125;
    cf_frame *f = frame_alloc(2 + length, NULL, 0);
    if (!f) return NULL;
    cf_ws_write_header(f->bytes, 1, opcode, length);
    if (length) memcpy(f->bytes + 2, payload, length);
    return f;
}

cf_frame *cfi_frame_create_close(uint16_t code, const char *reason) {
    uint8_t payload[125];
    size_t n = 0;
    if (code != 0) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        n = 2;
        if (reason) {
            size_t r = strlen(reason);
            if (r > 123) {
                r = 123;
                while (r > 0 && ((uint8_t)reason[r] & 0xC0) == 0x80) r--; /* keep whole UTF-8 characters */
            }
            memcpy(payload + 2, reason, r);
            n += r;
        }
    }
    return cfi_frame_create_control(CF_WS_OP_CLOSE, payload, n);
}

cf_frame *cf_frame_retain(cf_frame *frame) {
    __atomic_fetch_add(&frame->refs, 1, __ATOMIC_RELAXED);
    return frame;
}

void cf_frame_release(cf_frame *frame) {
    if (frame && __atomic_sub_fetch(&frame->refs, 1, __ATOMIC_ACQ_REL) == 0) free(frame);
}

const uint8_t *cf_frame_bytes(const cf_frame *frame, size_t *length_out) {
    if (length_out) *length_out = frame->length;
    return frame->bytes;
}
