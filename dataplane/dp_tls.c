#include "dp_tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

const char *dp_tls_last_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    unsigned long next;
    if (e == 0) {
        snprintf(buf, len, "%s", errno ? strerror(errno) : "unknown TLS error");
        return buf;
    }
    /* the first error is the root cause; drain the rest */
    while ((next = ERR_get_error()) != 0)
        ;
    const char *reason = ERR_reason_error_string(e);
    if (ERR_GET_LIB(e) == ERR_LIB_SYS)
        reason = strerror(ERR_GET_REASON(e));
    snprintf(buf, len, "%s", reason ? reason : "unknown TLS error");
    return buf;
}

static int file_readable(const char *field, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s %s: %s", field, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

SSL_CTX *dp_tls_server_ctx(const struct dp_tls_conf *c, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = NULL;

    if (!c->certificate[0] || !c->key[0]) {
        snprintf(err, errlen, "tls.certificate and tls.key are required for the TLS listener");
        return NULL;
    }
    if (file_readable("tls.certificate", c->certificate, err, errlen) != 0 ||
        file_readable("tls.key", c->key, err, errlen) != 0 ||
        (c->ca[0] && file_readable("tls.ca", c->ca, err, errlen) != 0))
        return NULL;

    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS context: %s", dp_tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, c->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    /* renegotiation is a DoS lever and SIP has no use for it */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    /* idle connections give their read/write buffers back: ~30 kB less per idle peer */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (c->ciphers[0] && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) {
        snprintf(err, errlen, "tls.ciphers \"%s\": %s", c->ciphers,
                 dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (c->ciphersuites[0] && SSL_CTX_set_ciphersuites(ctx, c->ciphersuites) != 1) {
        snprintf(err, errlen, "tls.ciphersuites \"%s\": %s", c->ciphersuites,
                 dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c->certificate) != 1) {
        snprintf(err, errlen, "tls.certificate %s: %s", c->certificate,
                 dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "tls.key %s: %s", c->key, dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls.key %s does not match tls.certificate %s", c->key,
                 c->certificate);
        goto fail;
    }
    if (c->ca[0]) {
        if (SSL_CTX_load_verify_locations(ctx, c->ca, NULL) != 1) {
            snprintf(err, errlen, "tls.ca %s: %s", c->ca, dp_tls_last_error(why, sizeof why));
            goto fail;
        }
        /* tell clients which CAs we accept their certificates from */
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    if (c->verify_client == DP_TLS_VERIFY_REQUIRE && !c->ca[0]) {
        snprintf(err, errlen, "tls.verify_client \"require\" needs tls.ca");
        goto fail;
    }
    switch (c->verify_client) {
    case DP_TLS_VERIFY_NONE:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        break;
    case DP_TLS_VERIFY_REQUEST:
        /* ask; a client without a certificate may still connect, a client with a
         * certificate that does not verify is refused */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        break;
    case DP_TLS_VERIFY_REQUIRE:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    }
    SSL_CTX_set_verify_depth(ctx, 6);

    /* resumption: TLS 1.3 and 1.2 tickets (keys shared by all workers through the
     * one context) plus a server-side cache for 1.2 clients without tickets */
    static const unsigned char sid_ctx[] = "confnode-sip";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (c->session_cache_size > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, c->session_cache_size);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    SSL_CTX_set_timeout(ctx, 3600);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *dp_tls_client_ctx(const struct dp_tls_conf *c, char *err, size_t errlen)
{
    char why[256];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS client context: %s", dp_tls_last_error(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, c->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if ((c->ciphers[0] && SSL_CTX_set_cipher_list(ctx, c->ciphers) != 1) ||
        (c->ciphersuites[0] && SSL_CTX_set_ciphersuites(ctx, c->ciphersuites) != 1)) {
        snprintf(err, errlen, "tls.ciphers: %s", dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (c->certificate[0] && c->key[0] &&
        (SSL_CTX_use_certificate_chain_file(ctx, c->certificate) != 1 ||
         SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1)) {
        snprintf(err, errlen, "tls.certificate/tls.key: %s", dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (c->ca[0] && SSL_CTX_load_verify_locations(ctx, c->ca, NULL) != 1) {
        snprintf(err, errlen, "tls.ca %s: %s", c->ca, dp_tls_last_error(why, sizeof why));
        goto fail;
    }
    if (!c->ca[0])
        SSL_CTX_set_default_verify_paths(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    X509_VERIFY_PARAM *vp = SSL_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_WILDCARDS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
