/*
 * http_responses.c — the plain HTTP answers a connection gives instead of a
 * WebSocket upgrade: the host's static routes (e.g. the console page),
 * GET /readyz, and the canned error responses (400, 403, 404, 405, 414,
 * 426, 429, 431, 503). Each is one response on a connection that then ends:
 * conn.c queues the bytes and drains the connection after the flush; this
 * file only decides what to answer and formats it.
 *
 * Counting: cfi_http_refuse_request counts handshakes_rejected;
 * cfi_http_respond_error only answers, so a caller refusing for another
 * reason (an Origin, a connection limit) counts under that reason instead.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const char *status_text(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 414: return "URI Too Long";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

void cfi_http_respond_error(cf_conn *c, int status, const char *why) {
    char buf[1024];
    const char *extra = status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                      : status == 405 ? "Allow: GET\r\n" : "";
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s\n",
                     status, status_text(status), strlen(why) + 1, extra, why);
    cfi_conn_respond_and_drain(c, buf, (size_t)n);
}

void cfi_http_refuse_request(cf_conn *c, int status, const char *why) {
    STAT_ADD(c->loop, handshakes_rejected, 1);
    cfi_http_respond_error(c, status, why);
}

/* GET /readyz: 200 once the host says it serves traffic, 503 before and
 * while the node drains. */
static void respond_readiness(cf_conn *c, int ready, int draining) {
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                             "Cache-Control: no-store\r\nConnection: close\r\n\r\nready\n";
    static const char wait[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 10\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nnot ready\n";
    static const char leaving[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                  "Content-Length: 9\r\nCache-Control: no-store\r\nConnection: close\r\n\r\ndraining\n";
    if (draining) cfi_conn_respond_and_drain(c, leaving, sizeof(leaving) - 1);
    else if (ready) cfi_conn_respond_and_drain(c, ok, sizeof(ok) - 1);
    else cfi_conn_respond_and_drain(c, wait, sizeof(wait) - 1);
}

void cfi_http_answer_non_upgrade(cf_conn *c, const cf_http_request *req) {
    cf_server *s = c->loop->server;
    /* Only a well-formed GET that is not an upgrade (status 426) is routed by
     * path; a malformed request gets its own status whatever its path. */
    if (req->status == 426 && !req->is_upgrade) {
        for (size_t i = 0; i < s->static_count; i++) {
            if (strcmp(s->statics[i].path, req->path) == 0) {
                cfi_conn_respond_shared_and_drain(c, s->statics[i].response);
                return;
            }
        }
        if (strcmp(req->path, "/readyz") == 0) {
            respond_readiness(c, __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE),
                              __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE));
            return;
        }
        bool known = strcmp(req->path, s->stream_path) == 0 ||
                     (s->echo_path && strcmp(req->path, s->echo_path) == 0);
        if (!known) {
            cfi_http_refuse_request(c, 404, "not found");
            return;
        }
    }
    cfi_http_refuse_request(c, req->status, req->error);
}
