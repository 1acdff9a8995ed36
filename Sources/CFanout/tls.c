/*
 * tls.c — wss://: TLS on the clients' listener through OpenSSL.
 *
 * A TLS listener wraps each accepted socket in an SSL object in accept
 * state; the first reads drive the handshake, then conn.c reads and writes
 * through cfi_tls_read and cfi_tls_write instead of recv and sendmsg. The
 * fan-out still frames each message once and queues the same bytes to every
 * subscriber; only the last step differs: a connection's queued frames are
 * copied into one buffer of at most one TLS record (16 KiB) and encrypted
 * with one SSL_write, so a flush stays one record and one syscall per
 * connection for the small messages of a fan-out. The encryption itself is
 * per connection: that is the cost of TLS (scripts/bench measures it).
 *
 * The context (certificate chain, key, protocol settings) is shared by every
 * loop and replaced whole by cfi_tls_reload (SIGHUP): connections keep the
 * context they were accepted with (an SSL holds a reference to its
 * SSL_CTX), new ones get the new one. Settings: TLS 1.2 and 1.3 only, AEAD
 * ciphers with forward secrecy for TLS 1.2 (OpenSSL's TLS 1.3 defaults),
 * no renegotiation, no compression, ALPN http/1.1, buffers released while
 * a connection is idle (an idle TLS connection then costs no 34 KiB of
 * OpenSSL buffers).
 */
#include "internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cf_tls {
    pthread_mutex_t lock; /* guards ctx: taken per accept and by a reload */
    SSL_CTX *ctx;
    char *certificate_file;
    char *key_file;
};

/* Mozilla's "intermediate" TLS 1.2 list: ECDHE key exchange and AEAD only. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static void describe_error(char *errstr, size_t size, const char *what, const char *file) {
    unsigned long code = ERR_peek_last_error();
    char reason[256] = "unknown error";
    if (code) ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(errstr, size, "%s %s: %s", what, file, reason);
}

/* ALPN: WebSocket runs over HTTP/1.1; a client that offers ALPN without
 * it gets no_application_protocol (RFC 7301), one without ALPN is served. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
    (void)ssl;
    (void)arg;
    static const unsigned char http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, http11, sizeof(http11), in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *build_context(const char *certificate_file, const char *key_file, char *errstr, size_t size) {
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        describe_error(errstr, size, "cannot create a TLS context", "");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_cipher_list(ctx, tls12_ciphers);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, certificate_file) != 1) {
        describe_error(errstr, size, "cannot load the certificate chain", certificate_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(errstr, size, "the private key %s does not match the certificate of %s", key_file, certificate_file);
        } else {
            describe_error(errstr, size, "cannot load the private key", key_file);
        }
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        describe_error(errstr, size, "the private key does not match the certificate of", certificate_file);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

cf_tls *cfi_tls_create(const char *certificate_file, const char *key_file, char *errstr, size_t size) {
    SSL_CTX *ctx = build_context(certificate_file, key_file, errstr, size);
    if (!ctx) return NULL;
    cf_tls *tls = calloc(1, sizeof(cf_tls));
    if (tls) {
        tls->certificate_file = strdup(certificate_file);
        tls->key_file = strdup(key_file);
    }
    if (!tls || !tls->certificate_file || !tls->key_file) {
        if (tls) {
            free(tls->certificate_file);
            free(tls->key_file);
            free(tls);
        }
        SSL_CTX_free(ctx);
        snprintf(errstr, size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&tls->lock, NULL);
    tls->ctx = ctx;
    return tls;
}

int cf_tls_check(const char *certificate_file, const char *key_file, char *errstr, size_t errstr_size) {
    SSL_CTX *ctx = build_context(certificate_file, key_file, errstr, errstr_size);
    SSL_CTX_free(ctx);
    return ctx ? 0 : -1;
}

int cfi_tls_reload(cf_tls *tls, char *errstr, size_t size) {
    SSL_CTX *fresh = build_context(tls->certificate_file, tls->key_file, errstr, size);
    if (!fresh) return -1;
    pthread_mutex_lock(&tls->lock);
    SSL_CTX *old = tls->ctx;
    tls->ctx = fresh;
    pthread_mutex_unlock(&tls->lock);
    SSL_CTX_free(old); /* live connections hold their own references */
    return 0;
}

void cfi_tls_destroy(cf_tls *tls) {
    if (!tls) return;
    SSL_CTX_free(tls->ctx);
    pthread_mutex_destroy(&tls->lock);
    free(tls->certificate_file);
    free(tls->key_file);
    free(tls);
}

SSL *cfi_tls_accept(cf_tls *tls, int fd) {
    pthread_mutex_lock(&tls->lock);
    SSL *ssl = SSL_new(tls->ctx);
    pthread_mutex_unlock(&tls->lock);
    if (!ssl) return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

/* Maps an SSL_read/SSL_write failure: -EAGAIN when the socket must become
 * readable (or, with *wants_write, writable) first, -EPIPE when the peer
 * closed, -EIO for a TLS or socket error (a plain-HTTP request to a TLS
 * port, a bad handshake). */
static ssize_t failure(SSL *ssl, int rc, bool *wants_write) {
    int error = SSL_get_error(ssl, rc);
    ERR_clear_error();
    switch (error) {
    case SSL_ERROR_WANT_READ: return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        if (wants_write) *wants_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: return -EPIPE;
    default: return -EIO;
    }
}

ssize_t cfi_tls_read(cf_conn *c, void *buffer, size_t length) {
    ERR_clear_error();
    int rc = SSL_read(c->ssl, buffer, length > INT32_MAX ? INT32_MAX : (int)length);
    if (rc > 0) return rc;
    c->tls_read_wants_write = false;
    ssize_t result = failure(c->ssl, rc, &c->tls_read_wants_write);
    if (result == -EIO && !SSL_is_init_finished(c->ssl)) STAT_ADD(c->loop, tls_handshake_failures, 1);
    return result == -EPIPE ? 0 : result;
}

bool cfi_tls_pending(const cf_conn *c) { return SSL_pending(c->ssl) > 0; }

ssize_t cfi_tls_write(cf_conn *c, const void *buffer, size_t length) {
    ERR_clear_error();
    int rc = SSL_write(c->ssl, buffer, (int)length);
    if (rc > 0) return rc;
    ssize_t result = failure(c->ssl, rc, NULL);
    return result == -EPIPE ? -EIO : result;
}

void cfi_tls_close_notify(cf_conn *c) {
    ERR_clear_error();
    if (SSL_is_init_finished(c->ssl)) (void)SSL_shutdown(c->ssl); /* best effort: the socket closes next */
    ERR_clear_error();
}

void cfi_tls_free(cf_conn *c) {
    SSL_free(c->ssl);
    c->ssl = NULL;
}
