/*
 * http_request.c — parses the HTTP/1.1 request head that opens every
 * connection and decides whether it is a valid RFC 6455 upgrade (4.2.1).
 * Bad requests get the status the RFC asks for: 400 for malformed heads or
 * keys, 405 for non-GET, 426 for a missing upgrade or a wrong version, 431
 * for more than CF_MAX_HEADERS fields or an oversized field it keeps (and
 * 414 for a target over its limit). Every field is also kept as a slice of
 * the head, for the host's authorizers. The answer itself is
 * http_responses.c's.
 */
#include "cfanout.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void fail(cf_http_request *out, int status, const char *why) {
    if (out->status == 0) {
        out->status = status;
        out->error = why;
    }
}

/* Copies [s, s+n) into dst (NUL-terminated); returns 0 if it did not fit. */
static int copy_field(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

/* True when the comma-separated header value lists token (case-insensitive). */
static int list_has_token(const char *v, size_t n, const char *token) {
    size_t tl = strlen(token);
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        size_t start = i;
        while (i < n && v[i] != ',') i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;
        if (end - start == tl && strncasecmp(v + start, token, tl) == 0) return 1;
    }
    return 0;
}

static int is_tchar(char c) {
    return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

void cf_http_parse_request(const char *head, size_t length, cf_http_request *out) {
    memset(out, 0, sizeof(*out));
    const char *p = head, *end = head + length;

    /* Request line: METHOD SP request-target SP HTTP-version CRLF */
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol || eol == p || eol[-1] != '\r') { fail(out, 400, "malformed request line"); return; }
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1) { fail(out, 400, "malformed request line"); return; }
    for (const char *c = p; c < sp1; c++)
        if (!is_tchar(*c)) { fail(out, 400, "malformed method"); return; }
    if (!copy_field(out->method, sizeof(out->method), p, (size_t)(sp1 - p))) {
        fail(out, 405, "method not allowed");
        return;
    }
    const char *target = sp1 + 1;
    size_t target_len = (size_t)(sp2 - target);
    if (target[0] != '/') { fail(out, 400, "request target must be an absolute path"); return; }
    for (size_t i = 0; i < target_len; i++)
        if ((unsigned char)target[i] <= 0x20 || (unsigned char)target[i] >= 0x7F) {
            fail(out, 400, "invalid character in request target");
            return;
        }
    const char *q = memchr(target, '?', target_len);
    size_t path_len = q ? (size_t)(q - target) : target_len;
    if (!copy_field(out->path, sizeof(out->path), target, path_len) ||
        (q && !copy_field(out->query, sizeof(out->query), q + 1, target_len - path_len - 1))) {
        fail(out, 414, "request target too long");
        return;
    }
    size_t version_len = (size_t)(eol - 1 - (sp2 + 1));
    if (version_len != 8 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)sp2[8])) {
        fail(out, 400, "unsupported HTTP version");
        return;
    }
    int http11 = sp2[8] >= '1';

    int has_host = 0, upgrade_ws = 0, connection_upgrade = 0, version13 = 0, has_version = 0;
    int has_key = 0;
    p = eol + 1;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol || eol[-1] != '\r') { fail(out, 400, "malformed header line"); return; }
        if (eol - 1 == p) break; /* the blank line ending the head */
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) { fail(out, 400, "malformed header line"); return; }
        for (const char *c = p; c < colon; c++)
            if (!is_tchar(*c)) { fail(out, 400, "malformed header name"); return; }
        size_t name_len = (size_t)(colon - p);
        const char *v = colon + 1;
        const char *v_end = eol - 1;
        while (v < v_end && (*v == ' ' || *v == '\t')) v++;
        while (v_end > v && (v_end[-1] == ' ' || v_end[-1] == '\t')) v_end--;
        size_t vn = (size_t)(v_end - v);
        /* RFC 9110 5.5: CR, LF and NUL in a field value are invalid and
         * dangerous (the value reaches the host's authorizers): reject. */
        if (memchr(v, '\r', vn) || memchr(v, '\0', vn)) {
            fail(out, 400, "invalid character in a header value");
            return;
        }
        if (out->header_count == CF_MAX_HEADERS) {
            fail(out, 431, "too many header fields");
            return;
        }
        out->headers[out->header_count++] = (cf_http_header){.name = p, .name_length = name_len, .value = v,
                                                             .value_length = vn};
#define NAME_IS(s) (name_len == sizeof(s) - 1 && strncasecmp(p, s, name_len) == 0)
        if (NAME_IS("Host")) {
            has_host = 1;
        } else if (NAME_IS("Upgrade")) {
            upgrade_ws |= list_has_token(v, vn, "websocket");
        } else if (NAME_IS("Connection")) {
            connection_upgrade |= list_has_token(v, vn, "upgrade");
        } else if (NAME_IS("Sec-WebSocket-Version")) {
            has_version = 1;
            version13 = (vn == 2 && v[0] == '1' && v[1] == '3');
        } else if (NAME_IS("Sec-WebSocket-Key")) {
            has_key = copy_field(out->key, sizeof(out->key), v, vn);
        } else if (NAME_IS("Sec-WebSocket-Protocol")) {
            out->offers_streamgate_v1 |= list_has_token(v, vn, "streamgate.v1");
        } else if (NAME_IS("Authorization")) {
            if (!copy_field(out->authorization, sizeof(out->authorization), v, vn)) {
                fail(out, 431, "Authorization header too large");
                return;
            }
        } else if (NAME_IS("Origin")) {
            if (!copy_field(out->origin, sizeof(out->origin), v, vn)) {
                fail(out, 431, "Origin header too large");
                return;
            }
        } else if (NAME_IS("X-API-Key")) {
            if (!copy_field(out->api_key, sizeof(out->api_key), v, vn)) {
                fail(out, 431, "X-API-Key header too large");
                return;
            }
        }
#undef NAME_IS
        p = eol + 1;
    }

    out->is_upgrade = upgrade_ws && connection_upgrade;
    if (strcmp(out->method, "GET") != 0) { fail(out, 405, "only GET is allowed"); return; }
    if (!out->is_upgrade) { fail(out, 426, "this endpoint requires a WebSocket upgrade"); return; }
    if (!http11) { fail(out, 400, "WebSocket upgrades need HTTP/1.1"); return; }
    if (!has_host) { fail(out, 400, "missing Host header"); return; }
    if (!has_version || !version13) { fail(out, 426, "unsupported Sec-WebSocket-Version (13 is required)"); return; }
    char accept[29];
    if (!has_key || cf_ws_accept_key(out->key, strlen(out->key), accept) != 0) {
        fail(out, 400, "missing or malformed Sec-WebSocket-Key");
        return;
    }
}
