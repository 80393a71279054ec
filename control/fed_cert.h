/* Federation certificate policy and an outbound TLS client helper.
 *
 * The policy federated Microsoft edges apply, and confnode with them:
 *   - the peer chain must reach a trusted CA;
 *   - the expected FQDN (the SRV target) must be one of the certificate's SAN
 *     dNSName entries, compared exactly and case-insensitively; the Common Name is
 *     used only when the certificate has no SAN dNSName entry at all; wildcards are
 *     never accepted (a wildcard that would have matched is reported, to explain the
 *     refusal);
 *   - the certificate must be within its validity period;
 *   - federation is mutual TLS, so serverAuth and clientAuth usages are reported.
 *
 * fed_cert_check() inspects a certificate and a chain verification result that the
 * caller already has (from SSL_get_verify_result() or fed_cert_verify()); it does
 * no I/O. The TLS helpers below connect and handshake with a timeout (blocking the
 * calling thread, for the CLI and tools); their SSL_CTX builder and the policy
 * checks are meant to be shared with the non-blocking outbound path. Sockets are
 * written with write(2): the process must ignore or block SIGPIPE (confnode does). */
#ifndef FED_CERT_H
#define FED_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "fed_names.h"

#define FED_CERT_MAX_NAMES 32

/* verify_result for fed_cert_check() when the chain was not verified. */
#define FED_CERT_VERIFY_NOT_DONE (-1L)

typedef enum {
    FED_CERT_OK = 0,
    FED_CERT_NO_CERT,       /* no certificate */
    FED_CERT_EXPIRED,       /* notAfter is in the past */
    FED_CERT_NOT_YET_VALID, /* notBefore is in the future */
    FED_CERT_UNTRUSTED,     /* chain verification failed (verify_result says why) */
    FED_CERT_NAME_MISMATCH, /* the expected FQDN is not in the certificate */
} fed_cert_status_t;

typedef enum {
    FED_CERT_MATCH_NONE = 0,
    FED_CERT_MATCH_SAN, /* a SAN dNSName equals the FQDN */
    FED_CERT_MATCH_CN,  /* no SAN dNSName at all, and the CN equals the FQDN */
} fed_cert_match_t;

struct fed_cert_result {
    /* the first problem, checked in the order of fed_cert_status_t */
    fed_cert_status_t status;
    /* "" when OK; otherwise a sentence for an ms-diagnostics ErrorType, e.g.
     * FED_DIAG_ERRTYPE_NO_FQDN for a name mismatch */
    char reason[160];

    /* names */
    fed_cert_match_t match;
    bool has_san_dns;          /* at least one SAN dNSName entry */
    bool wildcard_would_match; /* a wildcard entry covers the FQDN (refused) */
    size_t n_names;            /* SAN dNSNames in certificate order, or the CN without SAN */
    bool names_truncated;      /* more than FED_CERT_MAX_NAMES */
    char names[FED_CERT_MAX_NAMES][FED_NAME_BUF]; /* non-printable bytes shown as '?' */
    char subject_cn[FED_NAME_BUF];
    char subject[256]; /* RFC 2253 one-line form, possibly truncated */
    char issuer[256];

    /* validity period, judged at `now` */
    time_t not_before;
    time_t not_after;
    long days_left; /* whole days until notAfter, rounded down; negative when expired */
    bool expired;
    bool not_yet_valid;

    /* chain, as given by the caller */
    long verify_result; /* X509_V_OK, X509_V_ERR_..., or FED_CERT_VERIFY_NOT_DONE */
    char verify_text[128];

    /* extended key usage */
    bool eku_present; /* false: no EKU extension, any usage is allowed */
    bool eku_server_auth;
    bool eku_client_auth;
};

/* Checks `cert` for `fqdn` (a trailing dot is ignored) at time `now` (0: the current
 * time), given the chain verification result the caller obtained. Fills *out
 * completely (every field, whatever the status) and returns out->status.
 * cert NULL gives FED_CERT_NO_CERT. */
fed_cert_status_t fed_cert_check(X509 *cert, long verify_result, const char *fqdn, time_t now,
                                 struct fed_cert_result *out);

/* Name check alone (no copies): the FED_CERT_MATCH_* rule above. */
fed_cert_match_t fed_cert_match_name(X509 *cert, const char *fqdn, size_t len);

/* "ok", "no certificate", "expired", "not yet valid", "untrusted", "name mismatch". */
const char *fed_cert_status_str(fed_cert_status_t st);

/* A store of trusted CAs: `ca_file` (PEM bundle) and/or `ca_dir` (hashed directory);
 * both NULL means the system's default locations. Returns NULL with a message in
 * err[errsz] on failure. Free with X509_STORE_free(). */
X509_STORE *fed_cert_store_new(const char *ca_file, const char *ca_dir, char *err, size_t errsz);

/* Pass as `at` to fed_cert_verify() to skip validity-period checks (so a chain
 * problem is reported apart from an expiry). */
#define FED_CERT_ANY_TIME ((time_t)-1)

/* Verifies `cert` against `store` with `untrusted` intermediates (may be NULL, may
 * contain cert itself). `purpose` is X509_PURPOSE_SSL_SERVER, X509_PURPOSE_SSL_CLIENT
 * or 0 (no purpose check); `at` is the verification time (0: now; FED_CERT_ANY_TIME).
 * Returns X509_V_OK or the X509_V_ERR_* code (X509_V_ERR_UNSPECIFIED on a setup
 * failure). */
long fed_cert_verify(X509_STORE *store, X509 *cert, STACK_OF(X509) * untrusted, int purpose,
                     time_t at);

/* ---- outbound TLS client -------------------------------------------------------- */

typedef enum {
    FED_TLS_OK = 0,
    FED_TLS_ERR_ARG = -1,       /* bad address, port or argument */
    FED_TLS_ERR_CONNECT = -2,   /* TCP connect refused/unreachable (sys_errno set) */
    FED_TLS_ERR_TIMEOUT = -3,   /* connect or handshake did not finish in time */
    FED_TLS_ERR_HANDSHAKE = -4, /* TLS alert, protocol error or connection closed */
    FED_TLS_ERR_NOMEM = -5,
} fed_tls_status_t;

struct fed_tls_client_conf {
    const char *ca_file; /* trusted CAs (PEM); NULL and ca_dir NULL: system defaults */
    const char *ca_dir;
    const char *cert_file; /* optional client certificate chain (PEM) ... */
    const char *key_file;  /* ... and its key; both or neither */
    int min_version;       /* 12 (default when 0) or 13 */
};

/* A client SSL_CTX for federation: TLS 1.2+, the trust store above, the optional
 * client certificate. Peer verification runs during the handshake but never aborts
 * it (SSL_VERIFY_NONE with a store), so the caller always gets the certificate and
 * SSL_get_verify_result() and decides with fed_cert_check(). Returns NULL with a
 * message in err on failure. */
SSL_CTX *fed_tls_client_ctx_new(const struct fed_tls_client_conf *conf, char *err, size_t errsz);

/* One outbound TLS connection and what was learnt from its handshake. */
struct fed_tls_session {
    int fd;                      /* -1 when closed */
    SSL *ssl;                    /* NULL when closed */
    X509 *peer_cert;             /* owned reference, NULL when none was presented */
    STACK_OF(X509) * peer_chain; /* borrowed from ssl (leaf first), may be NULL */
    long verify_result;          /* SSL_get_verify_result() */
    char version[16];            /* "TLSv1.3" */
    char cipher[64];
    uint64_t connect_ms;   /* time the TCP connect took */
    uint64_t handshake_ms; /* time the TLS handshake took */
    int sys_errno;         /* errno of a failed connect, 0 otherwise */
    char error[256];       /* what failed, "" on success */
};

/* Connects to addr:port (an IPv4 or IPv6 literal) within timeout_ms. On success
 * *fd is a connected non-blocking socket. Returns FED_TLS_OK, FED_TLS_ERR_ARG,
 * FED_TLS_ERR_CONNECT (*sys_errno: ECONNREFUSED, EHOSTUNREACH...) or
 * FED_TLS_ERR_TIMEOUT. sys_errno may be NULL. */
fed_tls_status_t fed_tcp_connect(const char *addr, uint16_t port, int timeout_ms, int *fd,
                                 int *sys_errno);

/* Runs a TLS client handshake on the connected socket `fd` with SNI `sni` (NULL:
 * none; an IP literal is never sent as SNI) within timeout_ms. The session takes
 * ownership of fd whatever the result. Fills *s; returns FED_TLS_OK,
 * FED_TLS_ERR_HANDSHAKE, FED_TLS_ERR_TIMEOUT or FED_TLS_ERR_NOMEM. Close with
 * fed_tls_session_close() in every case. */
fed_tls_status_t fed_tls_handshake(SSL_CTX *ctx, int fd, const char *sni, int timeout_ms,
                                   struct fed_tls_session *s);

/* fed_tcp_connect() then fed_tls_handshake(), each with timeout_ms. s->error says
 * which step failed. Close with fed_tls_session_close() in every case. */
fed_tls_status_t fed_tls_probe(SSL_CTX *ctx, const char *addr, uint16_t port, const char *sni,
                               int timeout_ms, struct fed_tls_session *s);

/* Sends close_notify (without waiting), frees everything, closes the socket and
 * leaves the session closed. Accepts NULL and closed sessions. */
void fed_tls_session_close(struct fed_tls_session *s);

#endif
