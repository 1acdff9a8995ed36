/*
 * server.c — the cf_server object: configuration, the loops, start/stop,
 * static routes (their responses are built here, served by
 * http_responses.c), stats, and the thread-safe entry points that route a
 * command to the loop owning a connection (or to every loop, for publish).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The one definition of the fan-out's defaults: the host's configuration
 * reads them from here (GatewayConfiguration), docs/configuration.md states them. */
void cf_server_config_init(cf_server_config *c) {
    memset(c, 0, sizeof(*c));
    c->host = "127.0.0.1";
    c->port = 8080;
    c->loop_count = 0;
    c->stream_path = "/ws";
    c->echo_path = NULL;
    c->max_message_bytes = 64 * 1024;
    c->echo_max_message_bytes = 16 * 1024 * 1024 + 1024;
    c->max_output_bytes = 4 * 1024 * 1024;
    c->max_header_bytes = 8 * 1024;
    c->handshake_timeout_ms = 10000;
    c->close_timeout_ms = 2000;
    c->idle_timeout_ms = 120000;
    c->max_connections = 100000;
    c->max_connections_per_address = 10000;
    c->use_io_uring = 1;
    c->max_write_delay_ms = 200;
    c->min_write_delay_ms = 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

cf_server *cf_server_create(const cf_server_config *config, char *errstr, size_t errstr_size) {
    if (!config->host || !config->stream_path || config->stream_path[0] != '/') {
        snprintf(errstr, errstr_size, "stream path must start with '/'");
        return NULL;
    }
    if (config->echo_path && (config->echo_path[0] != '/' || strcmp(config->echo_path, config->stream_path) == 0)) {
        snprintf(errstr, errstr_size, "echo path must start with '/' and differ from the stream path");
        return NULL;
    }
    /* Only what the C core's own buffers need; the ranges users may choose
     * are checked, with the key's name, by the host (GatewayConfiguration). */
    if (config->max_output_bytes < 1024 || config->max_message_bytes < 125 || config->max_header_bytes < 256 ||
        config->max_message_bytes > (1u << 30) || config->echo_max_message_bytes > (1u << 30)) {
        snprintf(errstr, errstr_size, "buffer limits out of range (messages 125 B..1 GiB, output >= 1 KiB, headers >= 256 B)");
        return NULL;
    }
    cf_server *s = calloc(1, sizeof(cf_server));
    if (!s) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->config = *config;
    s->host = strdup(config->host);
    s->stream_path = strdup(config->stream_path);
    s->echo_path = dup_or_null(config->echo_path);
    s->config.host = s->host;
    s->config.stream_path = s->stream_path;
    s->config.echo_path = s->echo_path;
    s->allowed_origins = config->allowed_origins && *config->allowed_origins ? strdup(config->allowed_origins) : NULL;
    s->config.allowed_origins = s->allowed_origins;
    pthread_mutex_init(&s->running_lock, NULL);
    pthread_cond_init(&s->running_changed, NULL);
    s->limits = cfi_limits_create();
    if (!s->limits) {
        snprintf(errstr, errstr_size, "out of memory");
        cf_server_destroy(s);
        return NULL;
    }
    if ((config->tls_certificate_file != NULL) != (config->tls_key_file != NULL)) {
        snprintf(errstr, errstr_size, "TLS needs both a certificate chain and a private key");
        cf_server_destroy(s);
        return NULL;
    }
    if (config->tls_certificate_file) {
        s->tls = cfi_tls_create(config->tls_certificate_file, config->tls_key_file, errstr, errstr_size);
        if (!s->tls) {
            cf_server_destroy(s);
            return NULL;
        }
    }
    s->config.tls_certificate_file = s->config.tls_key_file = NULL; /* the caller's strings; tls.c keeps copies */
    s->loop_count = config->loop_count > 0 ? config->loop_count : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (s->loop_count < 1) s->loop_count = 1;
    if (s->loop_count > 255) s->loop_count = 255; /* the loop index is 8 bits of a cf_conn_id */
    s->loops = calloc((size_t)s->loop_count, sizeof(cf_loop));
    if (!s->loops) {
        snprintf(errstr, errstr_size, "out of memory");
        cf_server_destroy(s);
        return NULL;
    }
    for (int i = 0; i < s->loop_count; i++) {
        if (cfi_loop_init(&s->loops[i], s, i, errstr, errstr_size) != 0) {
            s->loop_count = i + 1;
            cf_server_destroy(s);
            return NULL;
        }
    }
    return s;
}

int cf_server_add_static(cf_server *s, const char *path, const char *content_type, const uint8_t *body,
                         size_t length, char *errstr, size_t errstr_size) {
    if (s->started || !path || path[0] != '/') {
        snprintf(errstr, errstr_size, "static routes need a path starting with '/', added before start");
        return -1;
    }
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nAccess-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
                     content_type, length);
    if (n <= 0 || (size_t)n >= sizeof(head)) {
        snprintf(errstr, errstr_size, "content type too long");
        return -1;
    }
    cf_frame *response = cfi_frame_create_raw((size_t)n + length);
    static_route *routes = realloc(s->statics, (s->static_count + 1) * sizeof(static_route));
    if (!response || !routes) {
        cf_frame_release(response);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    memcpy(response->bytes, head, (size_t)n);
    if (length) memcpy(response->bytes + n, body, length);
    s->statics = routes;
    s->statics[s->static_count].path = strdup(path);
    s->statics[s->static_count].response = response;
    s->static_count++;
    return 0;
}

int cf_server_set_ticker(cf_server *s, uint32_t interval_us, cf_tick_fn tick, void *context) {
    if (s->started || interval_us == 0) return -1;
    s->tick = tick;
    s->tick_context = context;
    s->tick_interval_ns = (uint64_t)interval_us * 1000u;
    return 0;
}

int cf_server_start(cf_server *s, const cf_callbacks *callbacks, char *errstr, size_t errstr_size) {
    if (s->started) return 0;
    if (callbacks) s->callbacks = *callbacks;
    for (int i = 0; i < s->loop_count; i++)
        if (cfi_loop_listen(&s->loops[i], errstr, errstr_size) != 0) return -1;
    s->started = true;
    for (int i = 0; i < s->loop_count; i++) {
        int rc = pthread_create(&s->loops[i].thread, NULL, cfi_loop_run, &s->loops[i]);
        if (rc != 0) {
            snprintf(errstr, errstr_size, "cannot start event loop thread: %s", strerror(rc));
            cf_server_stop(s);
            return -1;
        }
        s->loops[i].thread_started = true;
        char name[16];
        snprintf(name, sizeof(name), "cf-loop-%d", i & 0xff);
        pthread_setname_np(s->loops[i].thread, name);
    }
    /* Wait for every loop to run (its ring opened or given up), so what the
     * host reads right after start — e.g. cf_server_io_uring_loops — is final. */
    pthread_mutex_lock(&s->running_lock);
    while (s->loops_running < s->loop_count) pthread_cond_wait(&s->running_changed, &s->running_lock);
    pthread_mutex_unlock(&s->running_lock);
    return 0;
}

void cfi_server_loop_running(cf_server *s) {
    pthread_mutex_lock(&s->running_lock);
    s->loops_running++;
    pthread_cond_broadcast(&s->running_changed);
    pthread_mutex_unlock(&s->running_lock);
}

void cf_server_set_ready(cf_server *s, int ready) { __atomic_store_n(&s->ready, ready ? 1 : 0, __ATOMIC_RELEASE); }

void cf_server_drain(cf_server *s, cf_frame *notice) {
    /* The flag first, then one command per loop: an upgrade a loop completes
     * before it runs the command is open when the command runs (it gets the
     * notice); one it completes after sees the flag (it gets 503). */
    __atomic_store_n(&s->draining, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < s->loop_count; i++) {
        loop_cmd cmd = {.type = CMD_DRAIN, .frame = cf_frame_retain(notice)};
        cfi_loop_submit(&s->loops[i], &cmd);
    }
    cf_frame_release(notice);
}

int cf_server_reload_tls(cf_server *s, char *errstr, size_t errstr_size) {
    if (!s->tls) {
        snprintf(errstr, errstr_size, "this listener has no TLS");
        return -1;
    }
    return cfi_tls_reload(s->tls, errstr, errstr_size);
}

int cf_server_is_draining(const cf_server *s) { return __atomic_load_n(&s->draining, __ATOMIC_ACQUIRE); }

uint16_t cf_server_port(const cf_server *s) { return s->bound_port; }
int cf_server_loop_count(const cf_server *s) { return s->loop_count; }

int cf_server_io_uring_loops(const cf_server *s) {
    int n = 0;
    for (int i = 0; i < s->loop_count; i++) n += __atomic_load_n(&s->loops[i].ring_active, __ATOMIC_ACQUIRE);
    return n;
}

void cf_server_stop(cf_server *s) {
    if (!s->started || s->stopped) return;
    s->stopped = true;
    loop_cmd stop = {.type = CMD_STOP};
    for (int i = 0; i < s->loop_count; i++)
        if (s->loops[i].thread_started) cfi_loop_submit(&s->loops[i], &stop);
    for (int i = 0; i < s->loop_count; i++)
        if (s->loops[i].thread_started) pthread_join(s->loops[i].thread, NULL);
}

void cf_server_destroy(cf_server *s) {
    if (!s) return;
    cf_server_stop(s);
    for (int i = 0; s->loops && i < s->loop_count; i++) cfi_loop_destroy(&s->loops[i]);
    free(s->loops);
    for (size_t i = 0; i < s->static_count; i++) {
        free(s->statics[i].path);
        cf_frame_release(s->statics[i].response);
    }
    free(s->statics);
    free(s->host);
    free(s->stream_path);
    free(s->echo_path);
    free(s->allowed_origins);
    cfi_limits_destroy(s->limits);
    cfi_tls_destroy(s->tls);
    pthread_mutex_destroy(&s->running_lock);
    pthread_cond_destroy(&s->running_changed);
    free(s);
}

void cf_server_get_stats(const cf_server *s, cf_stats *out) {
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < s->loop_count; i++) {
        const loop_stats *l = &s->loops[i].stats;
#define SUM(f) out->f += __atomic_load_n(&l->f, __ATOMIC_RELAXED)
        SUM(connections_accepted); SUM(connections_open); SUM(handshakes_rejected);
        SUM(protocol_errors); SUM(slow_consumer_closes); SUM(messages_published);
        SUM(messages_delivered); SUM(bytes_written); SUM(write_calls); SUM(connections_limited);
        SUM(origins_refused); SUM(idle_closes); SUM(delayed_write_periods); SUM(handshake_timeouts);
        SUM(epoll_errors); SUM(draining_refusals); SUM(tls_handshake_failures);
#undef SUM
    }
}

void cf_server_get_loop_stats(const cf_server *s, int index, cf_loop_stats *out) {
    memset(out, 0, sizeof(*out));
    if (index < 0 || index >= s->loop_count) return;
    const cf_loop *l = &s->loops[index];
    out->command_queue_depth = __atomic_load_n(&l->queue_depth, __ATOMIC_RELAXED);
    out->commands_run = __atomic_load_n(&l->commands_run, __ATOMIC_RELAXED);
    cfi_histogram_read(&l->turn_duration, &out->turn_duration);
    cfi_histogram_read(&l->delivery_latency, &out->delivery_latency);
}

/* ---------------------------------------------- thread-safe entry points -- */

static cf_loop *loop_of(cf_server *s, cf_conn_id conn) {
    int index = (int)(conn >> 56);
    return index < s->loop_count ? &s->loops[index] : NULL;
}

void cf_server_publish_batch(cf_server *s, cf_frame *const *frames, size_t count) {
    /* Each loop's command owns one reference per frame; the caller's are
     * consumed. Chunks keep the command array on the stack. */
    loop_cmd cmds[256];
    for (size_t done = 0; done < count;) {
        size_t chunk = count - done < 256 ? count - done : 256;
        for (int l = 0; l < s->loop_count; l++) {
            for (size_t i = 0; i < chunk; i++)
                cmds[i] = (loop_cmd){.type = CMD_PUBLISH, .frame = cf_frame_retain(frames[done + i])};
            cfi_loop_submit_many(&s->loops[l], cmds, chunk);
        }
        done += chunk;
    }
    for (size_t i = 0; i < count; i++) cf_frame_release(frames[i]);
}

void cf_server_publish(cf_server *s, cf_frame *frame) { cf_server_publish_batch(s, &frame, 1); }

static void submit_text(cf_server *s, uint8_t type, cf_conn_id conn, uint16_t code, const char *text,
                        size_t length) {
    cf_loop *loop = loop_of(s, conn);
    if (!loop) return;
    char *copy = NULL;
    if (text) {
        copy = malloc(length + 1);
        if (!copy) return;
        memcpy(copy, text, length);
        copy[length] = '\0';
    }
    loop_cmd cmd = {.type = type, .conn = conn, .code = code, .text = copy, .text_length = length};
    cfi_loop_submit(loop, &cmd);
}

void cf_server_subscribe(cf_server *s, cf_conn_id conn, const char *endpoint, size_t length) {
    submit_text(s, CMD_SUBSCRIBE, conn, 0, endpoint, length);
}

void cf_server_unsubscribe(cf_server *s, cf_conn_id conn, const char *endpoint, size_t length) {
    submit_text(s, CMD_UNSUBSCRIBE, conn, 0, endpoint, length);
}

void cf_server_watch_fd(cf_server *s, int fd, cf_ready_fn ready, void *context) {
    loop_cmd cmd = {.type = CMD_WATCH, .fd = fd, .ready = ready, .context = context};
    cfi_loop_submit(&s->loops[0], &cmd);
}

void cf_server_unwatch_fd(cf_server *s) {
    loop_cmd cmd = {.type = CMD_UNWATCH};
    cfi_loop_submit(&s->loops[0], &cmd);
}

void cf_server_close(cf_server *s, cf_conn_id conn, uint16_t code, const char *reason) {
    submit_text(s, CMD_CLOSE, conn, code, reason ? reason : "", reason ? strlen(reason) : 0);
}

void cf_server_send(cf_server *s, cf_conn_id conn, cf_frame *frame) {
    cf_loop *loop = loop_of(s, conn);
    if (!loop) {
        cf_frame_release(frame);
        return;
    }
    loop_cmd cmd = {.type = CMD_SEND, .conn = conn, .frame = frame};
    cfi_loop_submit(loop, &cmd);
}
