/* Federation certificate policy and the outbound TLS client helper (see fed_cert.h). */
#include "fed_cert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cn_time.h"
#include "fed_diag.h"

/* ---- certificate checks ------------------------------------------------------------ */

const char *fed_cert_status_str(fed_cert_status_t st)
{
    switch (st) {
    case FED_CERT_OK:
        return "ok";
    case FED_CERT_NO_CERT:
        return "no certificate";
    case FED_CERT_EXPIRED:
        return "expired";
    case FED_CERT_NOT_YET_VALID:
        return "not yet valid";
    case FED_CERT_UNTRUSTED:
        return "untrusted";
    case FED_CERT_NAME_MISMATCH:
        return "name mismatch";
    }
    return "unknown";
}

/* Copies n bytes of an ASN.1 string for display: non-printable bytes become '?'. */
static void copy_printable(char *dst, size_t size, const unsigned char *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < size; i++)
        dst[k++] = (src[i] >= 0x20 && src[i] < 0x7F) ? (char)src[i] : '?';
    dst[k] = '\0';
}

/* True for a DNS name entry (bytes, no NUL inside) equal to fqdn. */
static bool dns_entry_equal(const unsigned char *d, size_t n, const char *fqdn, size_t len)
{
    if (n == 0 || memchr(d, '\0', n) != NULL)
        return false;
    return fed_name_equal((const char *)d, n, fqdn, len);
}

/* True for "*.<rest>" where <rest> is the parent of fqdn. */
static bool wildcard_covers(const unsigned char *d, size_t n, const char *fqdn, size_t len)
{
    const char *parent;
    if (n < 3 || d[0] != '*' || d[1] != '.' || memchr(d, '\0', n) != NULL)
        return false;
    size_t plen = fed_name_parent(fqdn, len, &parent);
    return plen > 0 && fed_name_equal((const char *)d + 2, n - 2, parent, plen);
}

/* The last Common Name of the subject as UTF-8 into buf; false when there is none. */
static bool subject_cn(X509 *cert, unsigned char **utf8, int *n)
{
    X509_NAME *subj = X509_get_subject_name(cert);
    int idx = -1, last = -1;
    while ((idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) >= 0)
        last = idx;
    if (last < 0)
        return false;
    X509_NAME_ENTRY *e = X509_NAME_get_entry(subj, last);
    *n = ASN1_STRING_to_UTF8(utf8, X509_NAME_ENTRY_get_data(e));
    return *n >= 0;
}

struct name_scan {
    fed_cert_match_t match;
    bool has_san_dns;
    bool wildcard;
};

/* Walks the SAN dNSNames (and the CN without them); optionally records them. */
static void scan_names(X509 *cert, const char *fqdn, size_t len, struct name_scan *ns,
                       struct fed_cert_result *out)
{
    memset(ns, 0, sizeof *ns);
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
        size_t n = (size_t)ASN1_STRING_length(g->d.dNSName);
        ns->has_san_dns = true;
        if (fqdn != NULL && ns->match == FED_CERT_MATCH_NONE && dns_entry_equal(d, n, fqdn, len))
            ns->match = FED_CERT_MATCH_SAN;
        if (fqdn != NULL && wildcard_covers(d, n, fqdn, len))
            ns->wildcard = true;
        if (out != NULL) {
            if (out->n_names < FED_CERT_MAX_NAMES)
                copy_printable(out->names[out->n_names++], FED_NAME_BUF, d, n);
            else
                out->names_truncated = true;
        }
    }
    GENERAL_NAMES_free(gens);

    unsigned char *cn = NULL;
    int cnlen = 0;
    if (subject_cn(cert, &cn, &cnlen)) {
        if (out != NULL)
            copy_printable(out->subject_cn, sizeof out->subject_cn, cn, (size_t)cnlen);
        if (!ns->has_san_dns) {
            if (fqdn != NULL && dns_entry_equal(cn, (size_t)cnlen, fqdn, len))
                ns->match = FED_CERT_MATCH_CN;
            if (fqdn != NULL && wildcard_covers(cn, (size_t)cnlen, fqdn, len))
                ns->wildcard = true;
            if (out != NULL && out->n_names < FED_CERT_MAX_NAMES)
                copy_printable(out->names[out->n_names++], FED_NAME_BUF, cn, (size_t)cnlen);
        }
        OPENSSL_free(cn);
    }
}

fed_cert_match_t fed_cert_match_name(X509 *cert, const char *fqdn, size_t len)
{
    struct name_scan ns;
    if (cert == NULL || fqdn == NULL)
        return FED_CERT_MATCH_NONE;
    len = len == FED_NAME_NUL ? strlen(fqdn) : len;
    if (len == 0)
        return FED_CERT_MATCH_NONE;
    scan_names(cert, fqdn, len, &ns, NULL);
    return ns.match;
}

static bool asn1_to_time(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    *out = timegm(&tm);
    return true;
}

static void name_oneline(X509_NAME *name, char *buf, size_t size)
{
    buf[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        char *data;
        long n = BIO_get_mem_data(b, &data);
        copy_printable(buf, size, (const unsigned char *)data, n > 0 ? (size_t)n : 0);
    }
    BIO_free(b);
}

fed_cert_status_t fed_cert_check(X509 *cert, long verify_result, const char *fqdn, time_t now,
                                 struct fed_cert_result *out)
{
    memset(out, 0, sizeof *out);
    out->verify_result = verify_result;
    if (verify_result == FED_CERT_VERIFY_NOT_DONE)
        snprintf(out->verify_text, sizeof out->verify_text, "not verified");
    else
        snprintf(out->verify_text, sizeof out->verify_text, "%s",
                 X509_verify_cert_error_string(verify_result));
    if (cert == NULL) {
        out->status = FED_CERT_NO_CERT;
        snprintf(out->reason, sizeof out->reason, "The peer did not present a certificate");
        return out->status;
    }
    if (now == 0)
        now = time(NULL);

    size_t len = fqdn != NULL ? strlen(fqdn) : 0;
    struct name_scan ns;
    scan_names(cert, len > 0 ? fqdn : NULL, len, &ns, out);
    out->match = ns.match;
    out->has_san_dns = ns.has_san_dns;
    out->wildcard_would_match = ns.wildcard;
    name_oneline(X509_get_subject_name(cert), out->subject, sizeof out->subject);
    name_oneline(X509_get_issuer_name(cert), out->issuer, sizeof out->issuer);

    bool have_nb = asn1_to_time(X509_get0_notBefore(cert), &out->not_before);
    bool have_na = asn1_to_time(X509_get0_notAfter(cert), &out->not_after);
    out->not_yet_valid = !have_nb || now < out->not_before;
    out->expired = !have_na || now > out->not_after;
    if (have_na) {
        long long d = (long long)out->not_after - (long long)now;
        out->days_left = (long)(d >= 0 ? d / 86400 : -((-d + 86399) / 86400));
    }

    uint32_t xflags = X509_get_extension_flags(cert);
    out->eku_present = (xflags & EXFLAG_XKUSAGE) != 0;
    uint32_t xku = X509_get_extended_key_usage(cert);
    out->eku_server_auth = (xku & XKU_SSL_SERVER) != 0;
    out->eku_client_auth = (xku & XKU_SSL_CLIENT) != 0;

    if (out->expired) {
        out->status = FED_CERT_EXPIRED;
        snprintf(out->reason, sizeof out->reason, "The peer certificate has expired");
    } else if (out->not_yet_valid) {
        out->status = FED_CERT_NOT_YET_VALID;
        snprintf(out->reason, sizeof out->reason, "The peer certificate is not yet valid");
    } else if (verify_result != X509_V_OK && verify_result != FED_CERT_VERIFY_NOT_DONE) {
        out->status = FED_CERT_UNTRUSTED;
        snprintf(out->reason, sizeof out->reason,
                 "The peer certificate chain is not trusted: %.100s", out->verify_text);
    } else if (len == 0 || ns.match == FED_CERT_MATCH_NONE) {
        out->status = FED_CERT_NAME_MISMATCH;
        snprintf(out->reason, sizeof out->reason, "%s", FED_DIAG_ERRTYPE_NO_FQDN);
    } else {
        out->status = FED_CERT_OK;
    }
    return out->status;
}

X509_STORE *fed_cert_store_new(const char *ca_file, const char *ca_dir, char *err, size_t errsz)
{
    X509_STORE *store = X509_STORE_new();
    if (store == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    int ok = (ca_file == NULL && ca_dir == NULL)
                 ? X509_STORE_set_default_paths(store)
                 : X509_STORE_load_locations(store, ca_file, ca_dir);
    if (ok != 1) {
        unsigned long e = ERR_peek_last_error();
        snprintf(err, errsz, "cannot load trusted CAs from %s: %s",
                 ca_file  ? ca_file
                 : ca_dir ? ca_dir
                          : "the system store",
                 e ? ERR_reason_error_string(e) : "unknown error");
        ERR_clear_error();
        X509_STORE_free(store);
        return NULL;
    }
    return store;
}

long fed_cert_verify(X509_STORE *store, X509 *cert, STACK_OF(X509) * untrusted, int purpose,
                     time_t at)
{
    long rc = X509_V_ERR_UNSPECIFIED;
    X509_STORE_CTX *ctx = NULL;

    if (store == NULL || cert == NULL)
        return rc;
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1)
        goto out;
    if (purpose != 0 && X509_STORE_CTX_set_purpose(ctx, purpose) != 1)
        goto out;
    if (at == FED_CERT_ANY_TIME)
        X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_NO_CHECK_TIME);
    else if (at != 0)
        X509_STORE_CTX_set_time(ctx, 0, at);
    if (X509_verify_cert(ctx) == 1)
        rc = X509_V_OK;
    else
        rc = X509_STORE_CTX_get_error(ctx);
out:
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

/* ---- TLS client ---------------------------------------------------------------------- */

static const char *ssl_error_text(char *buf, size_t size)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, size, "unknown error");
    } else {
        const char *r = ERR_reason_error_string(e);
        if (ERR_GET_LIB(e) == ERR_LIB_SYS)
            r = strerror(ERR_GET_REASON(e));
        snprintf(buf, size, "%s", r ? r : "unknown error");
    }
    ERR_clear_error();
    return buf;
}

SSL_CTX *fed_tls_client_ctx_new(const struct fed_tls_client_conf *conf, char *err, size_t errsz)
{
    char why[200];
    SSL_CTX *ctx = NULL;
    X509_STORE *store = NULL;

    if (conf == NULL || (conf->cert_file == NULL) != (conf->key_file == NULL)) {
        snprintf(err, errsz, "a client certificate needs both a certificate and a key file");
        return NULL;
    }
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errsz, "TLS context: %s", ssl_error_text(why, sizeof why));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, conf->min_version == 13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    store = fed_cert_store_new(conf->ca_file, conf->ca_dir, err, errsz);
    if (store == NULL)
        goto fail;
    SSL_CTX_set_cert_store(ctx, store); /* the context owns the store now */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (conf->cert_file != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, conf->cert_file) != 1) {
            snprintf(err, errsz, "client certificate %s: %s", conf->cert_file,
                     ssl_error_text(why, sizeof why));
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, conf->key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errsz, "client key %s: %s", conf->key_file,
                     ssl_error_text(why, sizeof why));
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = cn_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

fed_tls_status_t fed_tcp_connect(const char *addr, uint16_t port, int timeout_ms, int *fd,
                                 int *sys_errno)
{
    struct sockaddr_storage ss;
    socklen_t slen;
    int err = 0;
    fed_tls_status_t rc = FED_TLS_ERR_ARG;
    int s = -1;

    *fd = -1;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (addr != NULL && inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        slen = sizeof *a4;
    } else if (addr != NULL && inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        slen = sizeof *a6;
    } else {
        goto out;
    }
    if (port == 0)
        goto out;

    s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        err = errno;
        rc = FED_TLS_ERR_CONNECT;
        goto out;
    }
    uint64_t deadline = cn_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    if (connect(s, (struct sockaddr *)&ss, slen) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
            rc = FED_TLS_ERR_CONNECT;
            goto out;
        }
        for (;;) {
            struct pollfd p = {.fd = s, .events = POLLOUT};
            int n = poll(&p, 1, remaining_ms(deadline));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                err = errno;
                rc = FED_TLS_ERR_CONNECT;
                goto out;
            }
            if (n == 0) {
                err = ETIMEDOUT;
                rc = FED_TLS_ERR_TIMEOUT;
                goto out;
            }
            break;
        }
        socklen_t elen = sizeof err;
        if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        if (err != 0) {
            rc = FED_TLS_ERR_CONNECT;
            goto out;
        }
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd = s;
    s = -1;
    rc = FED_TLS_OK;
out:
    if (s >= 0)
        close(s);
    if (sys_errno != NULL)
        *sys_errno = err;
    return rc;
}

static void session_init(struct fed_tls_session *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->verify_result = FED_CERT_VERIFY_NOT_DONE;
}

fed_tls_status_t fed_tls_handshake(SSL_CTX *ctx, int fd, const char *sni, int timeout_ms,
                                   struct fed_tls_session *s)
{
    char why[200];
    session_init(s);
    s->fd = fd;
    if (ctx == NULL || fd < 0) {
        snprintf(s->error, sizeof s->error, "no TLS context or socket");
        return FED_TLS_ERR_ARG;
    }
    ERR_clear_error();
    s->ssl = SSL_new(ctx);
    if (s->ssl == NULL || SSL_set_fd(s->ssl, fd) != 1) {
        snprintf(s->error, sizeof s->error, "TLS setup: %s", ssl_error_text(why, sizeof why));
        return FED_TLS_ERR_NOMEM;
    }
    if (sni != NULL && *sni != '\0' && !fed_name_is_ip_literal(sni, FED_NAME_NUL)) {
        char host[FED_NAME_BUF];
        /* no trailing dot in SNI (RFC 6066 §3) */
        if (fed_name_normalize(sni, FED_NAME_NUL, FED_NAME_ALLOW_SINGLE_LABEL, host, sizeof host) <
                0 ||
            SSL_set_tlsext_host_name(s->ssl, host) != 1) {
            snprintf(s->error, sizeof s->error, "invalid server name \"%s\"", sni);
            return FED_TLS_ERR_ARG;
        }
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);

    uint64_t start = cn_now_ms();
    uint64_t deadline = start + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int r = SSL_connect(s->ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(s->ssl, r);
        short ev;
        if (e == SSL_ERROR_WANT_READ) {
            ev = POLLIN;
        } else if (e == SSL_ERROR_WANT_WRITE) {
            ev = POLLOUT;
        } else {
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
                snprintf(s->error, sizeof s->error, "TLS handshake: %s",
                         errno ? strerror(errno) : "connection closed by the peer");
            else if (e == SSL_ERROR_ZERO_RETURN)
                snprintf(s->error, sizeof s->error, "TLS handshake: connection closed by the peer");
            else
                snprintf(s->error, sizeof s->error, "TLS handshake: %s",
                         ssl_error_text(why, sizeof why));
            s->handshake_ms = cn_now_ms() - start;
            return FED_TLS_ERR_HANDSHAKE;
        }
        int left = remaining_ms(deadline);
        struct pollfd p = {.fd = fd, .events = ev};
        int n = left > 0 ? poll(&p, 1, left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(s->error, sizeof s->error, "TLS handshake: no answer within %d ms",
                     timeout_ms);
            s->handshake_ms = cn_now_ms() - start;
            return FED_TLS_ERR_TIMEOUT;
        }
    }
    s->handshake_ms = cn_now_ms() - start;
    s->peer_cert = SSL_get1_peer_certificate(s->ssl);
    s->peer_chain = SSL_get_peer_cert_chain(s->ssl);
    s->verify_result =
        s->peer_cert != NULL ? SSL_get_verify_result(s->ssl) : FED_CERT_VERIFY_NOT_DONE;
    snprintf(s->version, sizeof s->version, "%s", SSL_get_version(s->ssl));
    const char *c = SSL_get_cipher_name(s->ssl);
    snprintf(s->cipher, sizeof s->cipher, "%s", c ? c : "");
    return FED_TLS_OK;
}

fed_tls_status_t fed_tls_probe(SSL_CTX *ctx, const char *addr, uint16_t port, const char *sni,
                               int timeout_ms, struct fed_tls_session *s)
{
    int fd = -1, err = 0;
    uint64_t start = cn_now_ms();
    fed_tls_status_t rc = fed_tcp_connect(addr, port, timeout_ms, &fd, &err);
    if (rc != FED_TLS_OK) {
        session_init(s);
        s->connect_ms = cn_now_ms() - start;
        s->sys_errno = err;
        bool v6 = addr != NULL && strchr(addr, ':') != NULL;
        if (rc == FED_TLS_ERR_TIMEOUT)
            snprintf(s->error, sizeof s->error, "TCP connect to %s%s%s:%u: no answer within %d ms",
                     v6 ? "[" : "", addr, v6 ? "]" : "", port, timeout_ms);
        else if (rc == FED_TLS_ERR_CONNECT)
            snprintf(s->error, sizeof s->error, "TCP connect to %s%s%s:%u: %s", v6 ? "[" : "", addr,
                     v6 ? "]" : "", port, strerror(err));
        else
            snprintf(s->error, sizeof s->error, "invalid address %s port %u",
                     addr ? addr : "(none)", port);
        return rc;
    }
    uint64_t connect_ms = cn_now_ms() - start;
    rc = fed_tls_handshake(ctx, fd, sni, timeout_ms, s);
    s->connect_ms = connect_ms;
    return rc;
}

void fed_tls_session_close(struct fed_tls_session *s)
{
    if (s == NULL)
        return;
    if (s->ssl != NULL) {
        if (SSL_is_init_finished(s->ssl))
            SSL_shutdown(s->ssl); /* close_notify; the answer is not awaited */
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    X509_free(s->peer_cert);
    s->peer_cert = NULL;
    s->peer_chain = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    ERR_clear_error();
}
