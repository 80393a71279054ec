/* Federation certificate policy and the TLS client helper. Certificates are made in
 * the test with the OpenSSL API (EC P-256 keys, two CAs); the TLS tests run a
 * server in a thread on 127.0.0.1. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "fed_cert.h"
#include "fed_diag.h"

/* ---- making certificates ------------------------------------------------------------- */

struct spec {
    const char *cn;
    const char *san; /* "DNS:a,DNS:b" or NULL */
    long not_before; /* seconds from now */
    long not_after;
    const char *eku; /* "serverAuth,clientAuth" or NULL */
    bool ca;
    X509 *issuer; /* NULL: self-signed */
    EVP_PKEY *issuer_key;
};

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

static X509 *make_cert(EVP_PKEY *key, const struct spec *s)
{
    static long serial = 1;
    X509 *c = X509_new();
    assert_non_null(c);
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), serial++);
    X509_gmtime_adj(X509_getm_notBefore(c), s->not_before);
    X509_gmtime_adj(X509_getm_notAfter(c), s->not_after);
    X509_set_pubkey(c, key);
    X509_NAME *name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"confnode test", -1,
                               -1, 0);
    if (s->cn != NULL)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)s->cn, -1, -1,
                                   0);
    X509 *issuer = s->issuer ? s->issuer : c;
    X509_set_issuer_name(c, X509_get_subject_name(issuer));
    if (s->ca) {
        add_ext(c, issuer, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(c, issuer, NID_basic_constraints, "CA:FALSE");
    }
    if (s->san != NULL)
        add_ext(c, issuer, NID_subject_alt_name, s->san);
    if (s->eku != NULL)
        add_ext(c, issuer, NID_ext_key_usage, s->eku);
    assert_true(X509_sign(c, s->issuer_key ? s->issuer_key : key, EVP_sha256()) > 0);
    return c;
}

struct pki {
    EVP_PKEY *ca_key, *other_key, *leaf_key;
    X509 *ca, *other_ca;
    X509_STORE *store; /* trusts ca only */
    char dir[64];
    char ca_file[128];
};

static struct pki P;

static X509 *leaf(const struct spec *s)
{
    struct spec t = *s;
    if (t.not_after == 0)
        t.not_after = 365L * 86400;
    if (t.issuer == NULL) {
        t.issuer = P.ca;
        t.issuer_key = P.ca_key;
    }
    return make_cert(P.leaf_key, &t);
}

static void write_pem_cert(const char *path, X509 *c)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_X509(f, c);
    fclose(f);
}

static void write_pem_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
}

static int pki_setup(void **state)
{
    (void)state;
    P.ca_key = new_key();
    P.other_key = new_key();
    P.leaf_key = new_key();
    struct spec ca = {.cn = "confnode test CA",
                      .not_before = -365L * 86400,
                      .not_after = 3650L * 86400,
                      .ca = true};
    P.ca = make_cert(P.ca_key, &ca);
    struct spec other = ca;
    other.cn = "some other CA";
    P.other_ca = make_cert(P.other_key, &other);
    snprintf(P.dir, sizeof P.dir, "/tmp/test_fed_cert.XXXXXX");
    assert_non_null(mkdtemp(P.dir));
    snprintf(P.ca_file, sizeof P.ca_file, "%s/ca.pem", P.dir);
    write_pem_cert(P.ca_file, P.ca);
    char err[256];
    P.store = fed_cert_store_new(P.ca_file, NULL, err, sizeof err);
    assert_non_null(P.store);
    return 0;
}

static int pki_teardown(void **state)
{
    (void)state;
    char cmd[160];
    X509_STORE_free(P.store);
    X509_free(P.ca);
    X509_free(P.other_ca);
    EVP_PKEY_free(P.ca_key);
    EVP_PKEY_free(P.other_key);
    EVP_PKEY_free(P.leaf_key);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", P.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- names ------------------------------------------------------------------------ */

static void a_san_entry_equal_to_the_fqdn_passes(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com",
                     .san = "DNS:node1.example.com,DNS:SIP.Example.COM,IP:192.0.2.1"};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com.", 0, &r), FED_CERT_OK);
    assert_int_equal(r.match, FED_CERT_MATCH_SAN);
    assert_true(r.has_san_dns);
    assert_int_equal(r.n_names, 2);
    assert_string_equal(r.names[0], "node1.example.com");
    assert_string_equal(r.names[1], "SIP.Example.COM");
    assert_string_equal(r.subject_cn, "sip.example.com");
    assert_string_equal(r.reason, "");
    assert_int_equal(fed_cert_match_name(c, "node1.example.com", FED_NAME_NUL), FED_CERT_MATCH_SAN);
    X509_free(c);
}

static void a_san_list_without_the_fqdn_is_a_name_mismatch(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com", .san = "DNS:node1.example.com,DNS:node2.example.com"};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r),
                     FED_CERT_NAME_MISMATCH);
    assert_int_equal(r.match, FED_CERT_MATCH_NONE);
    assert_string_equal(r.reason, FED_DIAG_ERRTYPE_NO_FQDN);
    assert_string_equal(r.reason, "The peer certificate does not contain a matching FQDN");
    assert_int_equal(r.n_names, 2);
    assert_string_equal(r.names[1], "node2.example.com");
    X509_free(c);
}

static void a_cn_only_certificate_matches_on_its_cn(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com"};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "SIP.EXAMPLE.COM", 0, &r), FED_CERT_OK);
    assert_int_equal(r.match, FED_CERT_MATCH_CN);
    assert_false(r.has_san_dns);
    assert_int_equal(r.n_names, 1);
    assert_string_equal(r.names[0], "sip.example.com");
    assert_int_equal(fed_cert_check(c, X509_V_OK, "other.example.com", 0, &r),
                     FED_CERT_NAME_MISMATCH);
    X509_free(c);
}

static void the_cn_is_ignored_when_the_san_has_dns_entries(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com", .san = "DNS:node1.example.com"};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r),
                     FED_CERT_NAME_MISMATCH);
    assert_int_equal(fed_cert_match_name(c, "sip.example.com", FED_NAME_NUL), FED_CERT_MATCH_NONE);
    X509_free(c);
    /* a SAN with only an IP address counts as no SAN DNS entry: the CN is used */
    struct spec ip = {.cn = "sip.example.com", .san = "IP:192.0.2.1"};
    c = leaf(&ip);
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r), FED_CERT_OK);
    assert_int_equal(r.match, FED_CERT_MATCH_CN);
    X509_free(c);
}

static void wildcards_are_refused_but_reported(void **state)
{
    (void)state;
    struct spec s = {.cn = "*.example.com", .san = "DNS:*.example.com"};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r),
                     FED_CERT_NAME_MISMATCH);
    assert_true(r.wildcard_would_match);
    assert_false(fed_cert_check(c, X509_V_OK, "a.b.example.com", 0, &r) == FED_CERT_OK);
    assert_false(r.wildcard_would_match);
    X509_free(c);
    struct spec cn = {.cn = "*.example.com"};
    c = leaf(&cn);
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r),
                     FED_CERT_NAME_MISMATCH);
    assert_true(r.wildcard_would_match);
    X509_free(c);
}

static void a_san_with_an_embedded_nul_never_matches(void **state)
{
    (void)state;
    struct spec s = {.cn = "x"};
    X509 *c = leaf(&s);
    /* replace the SAN by hand: "sip.example.com\0.evil.net" */
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    static const char evil[] = "sip.example.com\0.evil.net";
    ASN1_STRING_set(ia5, evil, (int)sizeof evil - 1);
    GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(gens, g);
    X509_add1_ext_i2d(c, NID_subject_alt_name, gens, 0, X509V3_ADD_REPLACE);
    GENERAL_NAMES_free(gens);
    X509_sign(c, P.ca_key, EVP_sha256());
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r),
                     FED_CERT_NAME_MISMATCH);
    assert_true(r.has_san_dns);
    assert_string_equal(r.names[0], "sip.example.com?.evil.net");
    X509_free(c);
}

/* ---- validity ------------------------------------------------------------------------ */

static void an_expired_certificate_is_reported_with_negative_days(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com",
                     .san = "DNS:sip.example.com",
                     .not_before = -100L * 86400,
                     .not_after = -3L * 86400 - 60};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r), FED_CERT_EXPIRED);
    assert_true(r.expired);
    assert_int_equal(r.days_left, -4);
    assert_string_equal(r.reason, "The peer certificate has expired");
    assert_int_equal(r.match, FED_CERT_MATCH_SAN);
    /* judged at a time inside the period, it passes */
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", time(NULL) - 50L * 86400, &r),
                     FED_CERT_OK);
    assert_int_equal(r.days_left, 46);
    X509_free(c);
}

static void a_certificate_not_yet_valid_is_reported(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com",
                     .san = "DNS:sip.example.com",
                     .not_before = 2L * 86400,
                     .not_after = 90L * 86400};
    X509 *c = leaf(&s);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r),
                     FED_CERT_NOT_YET_VALID);
    assert_true(r.not_yet_valid);
    assert_false(r.expired);
    assert_true(r.not_before > time(NULL));
    X509_free(c);
}

/* ---- chain --------------------------------------------------------------------------- */

static void a_chain_to_an_untrusted_ca_fails_verification(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com",
                     .san = "DNS:sip.example.com",
                     .issuer = P.other_ca,
                     .issuer_key = P.other_key};
    X509 *c = leaf(&s);
    long v = fed_cert_verify(P.store, c, NULL, X509_PURPOSE_SSL_SERVER, 0);
    assert_int_equal(v, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    /* even with the other CA offered as an intermediate: it is self-signed, not trusted */
    STACK_OF(X509) *chain = sk_X509_new_null();
    sk_X509_push(chain, P.other_ca);
    v = fed_cert_verify(P.store, c, chain, X509_PURPOSE_SSL_SERVER, 0);
    assert_int_not_equal(v, X509_V_OK);
    sk_X509_free(chain);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(c, v, "sip.example.com", 0, &r), FED_CERT_UNTRUSTED);
    assert_non_null(strstr(r.reason, "not trusted"));
    assert_string_equal(r.verify_text, X509_verify_cert_error_string(v));
    X509_free(c);

    struct spec good = {.cn = "sip.example.com", .san = "DNS:sip.example.com"};
    c = leaf(&good);
    assert_int_equal(fed_cert_verify(P.store, c, NULL, X509_PURPOSE_SSL_SERVER, 0), X509_V_OK);
    assert_int_equal(fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r), FED_CERT_OK);
    assert_non_null(strstr(r.issuer, "confnode test CA"));
    X509_free(c);
}

static void chain_verification_can_leave_time_to_the_expiry_check(void **state)
{
    (void)state;
    struct spec s = {.cn = "sip.example.com", .not_before = -10L * 86400, .not_after = -86400};
    X509 *c = leaf(&s);
    assert_int_equal(fed_cert_verify(P.store, c, NULL, 0, 0), X509_V_ERR_CERT_HAS_EXPIRED);
    assert_int_equal(fed_cert_verify(P.store, c, NULL, 0, FED_CERT_ANY_TIME), X509_V_OK);
    assert_int_equal(fed_cert_verify(P.store, c, NULL, 0, time(NULL) - 5L * 86400), X509_V_OK);
    assert_int_equal(fed_cert_verify(NULL, c, NULL, 0, 0), X509_V_ERR_UNSPECIFIED);
    X509_free(c);
}

static void extended_key_usages_are_reported_and_checked_by_purpose(void **state)
{
    (void)state;
    struct fed_cert_result r;
    struct spec both = {.cn = "sip.example.com", .eku = "serverAuth,clientAuth"};
    X509 *c = leaf(&both);
    fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r);
    assert_true(r.eku_present && r.eku_server_auth && r.eku_client_auth);
    X509_free(c);

    struct spec client = {.cn = "sip.example.com", .eku = "clientAuth"};
    c = leaf(&client);
    fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r);
    assert_true(r.eku_present && !r.eku_server_auth && r.eku_client_auth);
    assert_int_equal(fed_cert_verify(P.store, c, NULL, X509_PURPOSE_SSL_SERVER, 0),
                     X509_V_ERR_INVALID_PURPOSE);
    assert_int_equal(fed_cert_verify(P.store, c, NULL, X509_PURPOSE_SSL_CLIENT, 0), X509_V_OK);
    X509_free(c);

    struct spec none = {.cn = "sip.example.com"};
    c = leaf(&none);
    fed_cert_check(c, X509_V_OK, "sip.example.com", 0, &r);
    assert_false(r.eku_present);
    assert_true(r.eku_server_auth && r.eku_client_auth);
    X509_free(c);
}

static void no_certificate_is_its_own_status(void **state)
{
    (void)state;
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(NULL, FED_CERT_VERIFY_NOT_DONE, "sip.example.com", 0, &r),
                     FED_CERT_NO_CERT);
    assert_string_equal(fed_cert_status_str(r.status), "no certificate");
    assert_int_equal(fed_cert_match_name(NULL, "x.example.com", FED_NAME_NUL), FED_CERT_MATCH_NONE);
}

static void a_missing_ca_file_is_reported(void **state)
{
    (void)state;
    char err[256];
    assert_null(fed_cert_store_new("/nonexistent/ca.pem", NULL, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/ca.pem"));
    struct fed_tls_client_conf half = {.ca_file = P.ca_file, .cert_file = "x.pem"};
    assert_null(fed_tls_client_ctx_new(&half, err, sizeof err));
    assert_non_null(strstr(err, "both"));
}

/* ---- TLS client ---------------------------------------------------------------------- */

struct tls_server {
    int lfd;
    uint16_t port;
    pthread_t th;
    SSL_CTX *ctx;
    char sni[256];
    char client_cn[256];
    int accepted;
};

static int on_servername(SSL *ssl, int *al, void *arg)
{
    struct tls_server *s = arg;
    (void)al;
    const char *n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    snprintf(s->sni, sizeof s->sni, "%s", n ? n : "");
    return SSL_TLSEXT_ERR_OK;
}

static int accept_any(int ok, X509_STORE_CTX *ctx)
{
    (void)ok;
    (void)ctx;
    return 1;
}

static void *tls_serve(void *arg)
{
    struct tls_server *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        s->accepted = 1;
        X509 *pc = SSL_get1_peer_certificate(ssl);
        if (pc != NULL) {
            X509_NAME_get_text_by_NID(X509_get_subject_name(pc), NID_commonName, s->client_cn,
                                      sizeof s->client_cn);
            X509_free(pc);
        }
        char buf[64];
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) > 0)
            SSL_read(ssl, buf, sizeof buf); /* the client's close_notify */
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static int listen_loopback(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t alen = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &alen);
    *port = ntohs(a.sin_port);
    return fd;
}

static void tls_server_start(struct tls_server *s, X509 *cert, bool want_client_cert)
{
    memset(s, 0, sizeof *s);
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate(s->ctx, cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(s->ctx, P.leaf_key), 1);
    SSL_CTX_add_extra_chain_cert(s->ctx, X509_dup(P.ca));
    SSL_CTX_set_tlsext_servername_callback(s->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(s->ctx, s);
    if (want_client_cert)
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, accept_any);
    s->lfd = listen_loopback(&s->port);
    assert_int_equal(pthread_create(&s->th, NULL, tls_serve, s), 0);
}

static void tls_server_stop(struct tls_server *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
    SSL_CTX_free(s->ctx);
}

static void the_probe_reports_version_cipher_chain_and_sends_sni(void **state)
{
    (void)state;
    struct spec sp = {
        .cn = "sip.example.com", .san = "DNS:sip.example.com", .eku = "serverAuth,clientAuth"};
    X509 *cert = leaf(&sp);
    struct tls_server srv;
    tls_server_start(&srv, cert, false);

    char err[256];
    struct fed_tls_client_conf cc = {.ca_file = P.ca_file};
    SSL_CTX *ctx = fed_tls_client_ctx_new(&cc, err, sizeof err);
    assert_non_null(ctx);
    struct fed_tls_session s;
    fed_tls_status_t st = fed_tls_probe(ctx, "127.0.0.1", srv.port, "SIP.example.com.", 5000, &s);
    if (st != FED_TLS_OK)
        fail_msg("probe: %s", s.error);
    assert_string_equal(s.version, "TLSv1.3");
    assert_true(s.cipher[0] != '\0');
    assert_int_equal(s.verify_result, X509_V_OK);
    assert_non_null(s.peer_cert);
    assert_non_null(s.peer_chain);
    assert_true(sk_X509_num(s.peer_chain) >= 2);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(s.peer_cert, s.verify_result, "sip.example.com", 0, &r),
                     FED_CERT_OK);
    fed_tls_session_close(&s);
    fed_tls_session_close(&s); /* twice is harmless */
    tls_server_stop(&srv);
    assert_string_equal(srv.sni, "sip.example.com");
    assert_int_equal(srv.accepted, 1);
    SSL_CTX_free(ctx);
    X509_free(cert);
}

static void an_untrusted_server_still_completes_the_handshake_with_its_verify_result(void **state)
{
    (void)state;
    struct spec sp = {.cn = "sip.example.com",
                      .san = "DNS:sip.example.com",
                      .issuer = P.other_ca,
                      .issuer_key = P.other_key};
    X509 *cert = leaf(&sp);
    struct tls_server srv;
    tls_server_start(&srv, cert, false);
    char err[256];
    struct fed_tls_client_conf cc = {.ca_file = P.ca_file};
    SSL_CTX *ctx = fed_tls_client_ctx_new(&cc, err, sizeof err);
    struct fed_tls_session s;
    assert_int_equal(fed_tls_probe(ctx, "127.0.0.1", srv.port, "sip.example.com", 5000, &s),
                     FED_TLS_OK);
    assert_int_not_equal(s.verify_result, X509_V_OK);
    struct fed_cert_result r;
    assert_int_equal(fed_cert_check(s.peer_cert, s.verify_result, "sip.example.com", 0, &r),
                     FED_CERT_UNTRUSTED);
    fed_tls_session_close(&s);
    tls_server_stop(&srv);
    SSL_CTX_free(ctx);
    X509_free(cert);
}

static void the_client_certificate_is_presented_when_configured(void **state)
{
    (void)state;
    struct spec sp = {.cn = "sip.example.com", .san = "DNS:sip.example.com"};
    X509 *cert = leaf(&sp);
    struct spec cl = {
        .cn = "client.example.org", .san = "DNS:client.example.org", .eku = "clientAuth"};
    X509 *ccert = leaf(&cl);
    char cpath[160], kpath[160], err[256];
    snprintf(cpath, sizeof cpath, "%s/client.pem", P.dir);
    snprintf(kpath, sizeof kpath, "%s/client.key", P.dir);
    write_pem_cert(cpath, ccert);
    write_pem_key(kpath, P.leaf_key);

    struct tls_server srv;
    tls_server_start(&srv, cert, true);
    struct fed_tls_client_conf cc = {
        .ca_file = P.ca_file, .cert_file = cpath, .key_file = kpath, .min_version = 13};
    SSL_CTX *ctx = fed_tls_client_ctx_new(&cc, err, sizeof err);
    if (ctx == NULL)
        fail_msg("client ctx: %s", err);
    struct fed_tls_session s;
    assert_int_equal(fed_tls_probe(ctx, "127.0.0.1", srv.port, "sip.example.com", 5000, &s),
                     FED_TLS_OK);
    fed_tls_session_close(&s);
    tls_server_stop(&srv);
    assert_string_equal(srv.client_cn, "client.example.org");
    SSL_CTX_free(ctx);
    X509_free(cert);
    X509_free(ccert);
}

static void a_refused_connect_names_the_address_and_port(void **state)
{
    (void)state;
    uint16_t port;
    int fd = listen_loopback(&port);
    close(fd); /* nothing listens there now */
    char err[256];
    struct fed_tls_client_conf cc = {.ca_file = P.ca_file};
    SSL_CTX *ctx = fed_tls_client_ctx_new(&cc, err, sizeof err);
    struct fed_tls_session s;
    assert_int_equal(fed_tls_probe(ctx, "127.0.0.1", port, "sip.example.com", 2000, &s),
                     FED_TLS_ERR_CONNECT);
    assert_int_equal(s.sys_errno, ECONNREFUSED);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u", port);
    assert_non_null(strstr(s.error, want));
    fed_tls_session_close(&s);
    int cfd;
    assert_int_equal(fed_tcp_connect("not-an-address", 5061, 1000, &cfd, NULL), FED_TLS_ERR_ARG);
    assert_int_equal(cfd, -1);
    SSL_CTX_free(ctx);
}

static void a_silent_listener_makes_the_handshake_time_out(void **state)
{
    (void)state;
    uint16_t port;
    int lfd = listen_loopback(&port); /* the kernel accepts; nobody speaks TLS */
    char err[256];
    struct fed_tls_client_conf cc = {.ca_file = P.ca_file};
    SSL_CTX *ctx = fed_tls_client_ctx_new(&cc, err, sizeof err);
    struct fed_tls_session s;
    assert_int_equal(fed_tls_probe(ctx, "127.0.0.1", port, "sip.example.com", 300, &s),
                     FED_TLS_ERR_TIMEOUT);
    assert_true(s.handshake_ms >= 250);
    assert_non_null(strstr(s.error, "300 ms"));
    fed_tls_session_close(&s);
    close(lfd);
    SSL_CTX_free(ctx);
}

int main(void)
{
    /* a TLS 1.3 server writes session tickets after the client may have gone */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_san_entry_equal_to_the_fqdn_passes),
        cmocka_unit_test(a_san_list_without_the_fqdn_is_a_name_mismatch),
        cmocka_unit_test(a_cn_only_certificate_matches_on_its_cn),
        cmocka_unit_test(the_cn_is_ignored_when_the_san_has_dns_entries),
        cmocka_unit_test(wildcards_are_refused_but_reported),
        cmocka_unit_test(a_san_with_an_embedded_nul_never_matches),
        cmocka_unit_test(an_expired_certificate_is_reported_with_negative_days),
        cmocka_unit_test(a_certificate_not_yet_valid_is_reported),
        cmocka_unit_test(a_chain_to_an_untrusted_ca_fails_verification),
        cmocka_unit_test(chain_verification_can_leave_time_to_the_expiry_check),
        cmocka_unit_test(extended_key_usages_are_reported_and_checked_by_purpose),
        cmocka_unit_test(no_certificate_is_its_own_status),
        cmocka_unit_test(a_missing_ca_file_is_reported),
        cmocka_unit_test(the_probe_reports_version_cipher_chain_and_sends_sni),
        cmocka_unit_test(an_untrusted_server_still_completes_the_handshake_with_its_verify_result),
        cmocka_unit_test(the_client_certificate_is_presented_when_configured),
        cmocka_unit_test(a_refused_connect_names_the_address_and_port),
        cmocka_unit_test(a_silent_listener_makes_the_handshake_time_out),
    };
    return cmocka_run_group_tests(tests, pki_setup, pki_teardown);
}
