// http_request.c — libFuzzer harness for the HTTP/1.1 upgrade parser
// (cf_http_parse_request, Sources/CFanout/http_request.c).
//
// Beyond "no crash, no sanitizer report" it checks what cfanout.h promises
// about the parsed request, so a parser that returns garbage quietly fails too:
//   - every string field is NUL-terminated inside its array;
//   - status 0 means a usable upgrade: GET, is_upgrade, no error text, a path
//     starting with '/', a key cf_ws_accept_key accepts;
//   - any other status comes with an error text and is one of the statuses the
//     parser documents (400, 405, 414, 426, 431);
//   - path and query hold only the visible ASCII the parser let through, and
//     the path stops at the first '?'.
// The parsed key (whatever the status) is also fed to cf_ws_accept_key, whose
// output must be 28 base64 characters plus NUL when it returns 0.
#include "cfanout.h"
#include "fuzz_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


// Length of a string field, or abort if it is not terminated inside its array.
#define FIELD_LEN(field) field_len((field), sizeof(field), #field)
static size_t field_len(const char *s, size_t cap, const char *name) {
    const char *nul = memchr(s, '\0', cap);
    if (!nul) {
        fprintf(stderr, "invariant failed: %s is not NUL-terminated within its %zu bytes\n", name, cap);
        abort();
    }
    return (size_t)(nul - s);
}

static int is_base64_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

// Checks one call of cf_ws_accept_key: on success the output is 27 base64
// characters, '=' and NUL (SHA-1 is 20 bytes: 28 characters with one pad).
static void check_accept(const char *key, size_t length) {
    char out[29];
    memset(out, 'z', sizeof(out));
    if (cf_ws_accept_key(key, length, out) != 0) return;
    CHECK(length == 24);
    for (int i = 0; i < 27; i++) CHECK(is_base64_char(out[i]));
    CHECK(out[27] == '=');
    CHECK(out[28] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // The parser gets exactly the fuzzer's bytes (libFuzzer's buffer is a
    // heap allocation of exactly `size` bytes, so ASan sees any over-read).
    cf_http_request req;
    // Poison the output with a non-zero pattern: fields the parser forgets
    // to terminate show up as unterminated, not as lucky zeros.
    memset(&req, 0x5A, sizeof(req));
    cf_http_parse_request((const char *)data, size, &req);

    size_t method_len = FIELD_LEN(req.method);
    size_t path_len = FIELD_LEN(req.path);
    size_t query_len = FIELD_LEN(req.query);
    size_t key_len = FIELD_LEN(req.key);
    FIELD_LEN(req.authorization);
    FIELD_LEN(req.origin);
    FIELD_LEN(req.api_key);
    (void)method_len;

    CHECK(req.is_upgrade == 0 || req.is_upgrade == 1);

    // Every header field kept is a slice of the input: names are tokens,
    // values hold no CR or LF and have no surrounding spaces or tabs.
    CHECK(req.header_count <= CF_MAX_HEADERS);
    const char *input = (const char *)data;
    for (size_t i = 0; i < req.header_count; i++) {
        const cf_http_header *h = &req.headers[i];
        CHECK(h->name >= input && h->name + h->name_length <= input + size && h->name_length > 0);
        CHECK(h->value >= input && h->value + h->value_length <= input + size);
        for (size_t k = 0; k < h->name_length; k++) CHECK(h->name[k] != ':' && h->name[k] > 0x20);
        for (size_t k = 0; k < h->value_length; k++) CHECK(h->value[k] != '\r' && h->value[k] != '\n');
        if (h->value_length > 0) {
            CHECK(h->value[0] != ' ' && h->value[0] != '\t');
            CHECK(h->value[h->value_length - 1] != ' ' && h->value[h->value_length - 1] != '\t');
        }
    }
    CHECK(req.offers_streamgate_v1 == 0 || req.offers_streamgate_v1 == 1);

    // Path and query, when set, are slices of the request target: visible
    // ASCII only, and the path never contains the '?' that starts the query.
    for (size_t i = 0; i < path_len; i++) {
        unsigned char ch = (unsigned char)req.path[i];
        CHECK(ch > 0x20 && ch < 0x7F && ch != '?');
    }
    for (size_t i = 0; i < query_len; i++) {
        unsigned char ch = (unsigned char)req.query[i];
        CHECK(ch > 0x20 && ch < 0x7F);
    }
    if (path_len > 0) CHECK(req.path[0] == '/');
    if (query_len > 0) CHECK(path_len > 0);

    if (req.status == 0) {
        CHECK(req.error == NULL);
        CHECK(req.is_upgrade == 1);
        CHECK(strcmp(req.method, "GET") == 0);
        CHECK(path_len > 0);
        CHECK(key_len == 24);
        char accept[29];
        CHECK(cf_ws_accept_key(req.key, key_len, accept) == 0);
    } else {
        CHECK(req.error != NULL && req.error[0] != '\0');
        CHECK(req.status == 400 || req.status == 405 || req.status == 414 || req.status == 426 ||
              req.status == 431);
    }

    // The key as parsed (it may be malformed) and the raw input, as keys.
    check_accept(req.key, key_len);
    check_accept((const char *)data, size);
    return 0;
}
