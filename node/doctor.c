/* `confnode doctor DOMAIN` (see doctor.h). Built on control/fed_*: the same naming,
 * DNS, certificate and diagnostic code the node uses for federated traffic. */
#include "doctor.h"

#include <errno.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fed_cert.h"
#include "fed_diag.h"
#include "fed_dns.h"
#include "fed_names.h"

#define DOC_DEFAULT_TIMEOUT_MS 5000
#define DOC_MAX_TARGETS 8 /* SRV records examined */
#define DOC_MAX_ADDRS 8   /* addresses examined per target */
#define FED_PORT 5061

const char *cn_doc_status_str(cn_doc_status_t st)
{
    switch (st) {
    case CN_DOC_PASS:
        return "PASS";
    case CN_DOC_INFO:
        return "INFO";
    case CN_DOC_WARN:
        return "WARN";
    case CN_DOC_FAIL:
        return "FAIL";
    }
    return "?";
}

/* Appends a check; text longer than a field is cut (checks are for people). */
static struct cn_doc_check *add(struct cn_doc_report *r, const char *id, cn_doc_status_t st,
                                const char *target)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 32;
        struct cn_doc_check *c = realloc(r->checks, cap * sizeof *c);
        if (c == NULL)
            return NULL;
        r->checks = c;
        r->cap = cap;
    }
    struct cn_doc_check *c = &r->checks[r->n++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->target, sizeof c->target, "%s", target ? target : "");
    c->status = st;
    r->count[st]++;
    return c;
}

__attribute__((format(printf, 3, 4))) static void setf(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    if (n >= (int)size && size > 4)
        memcpy(dst + size - 4, "...", 4);
}

#define FOUND(c, ...)                                                                              \
    do {                                                                                           \
        if ((c) != NULL)                                                                           \
            setf((c)->found, sizeof(c)->found, __VA_ARGS__);                                       \
    } while (0)
#define FIX(c, ...)                                                                                \
    do {                                                                                           \
        if ((c) != NULL)                                                                           \
            setf((c)->fix, sizeof(c)->fix, __VA_ARGS__);                                           \
    } while (0)

static void date_str(time_t t, char *buf, size_t size)
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, size, "?");
}

/* "a, b, c" from the certificate's names */
static void names_list(const struct fed_cert_result *cr, char *buf, size_t size)
{
    size_t k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cr->n_names && k + 1 < size; i++) {
        int n = snprintf(buf + k, size - k, "%s%s", i ? ", " : "", cr->names[i]);
        if (n < 0)
            break;
        k += (size_t)n;
    }
    if (cr->names_truncated && k + 6 < size)
        snprintf(buf + k, size - k, ", ...");
    if (buf[0] == '\0')
        snprintf(buf, size, "none");
}

struct doc_ctx {
    const struct cn_doc_opts *o;
    struct cn_doc_report *r;
    fed_dns_t *dns;
    SSL_CTX *tls;
    X509_STORE *store;
};

static void check_certificate(struct doc_ctx *d, const char *where, const char *target,
                              const struct fed_tls_session *s)
{
    struct cn_doc_report *r = d->r;
    struct cn_doc_check *c;
    struct fed_cert_result cr;
    char names[512], date[40];

    long chain = fed_cert_verify(d->store, s->peer_cert, s->peer_chain, 0, FED_CERT_ANY_TIME);
    fed_cert_check(s->peer_cert, chain, target, 0, &cr);

    if (chain == X509_V_OK) {
        c = add(r, "chain", CN_DOC_PASS, where);
        FOUND(c, "issued by %s; chains to a trusted CA (%s)", cr.issuer, r->ca);
    } else {
        c = add(r, "chain", CN_DOC_FAIL, where);
        FOUND(c, "not trusted: %s (issuer: %s; trusted CAs: %s)",
              X509_verify_cert_error_string(chain), cr.issuer, r->ca);
        FIX(c, "use a certificate from a CA the federated peers trust (a public CA for "
               "Microsoft cloud peers) and send its intermediate certificates");
    }

    names_list(&cr, names, sizeof names);
    if (cr.match == FED_CERT_MATCH_SAN) {
        c = add(r, "san", CN_DOC_PASS, where);
        FOUND(c, "%s is in the certificate's SAN (%s)", target, names);
    } else if (cr.match == FED_CERT_MATCH_CN) {
        c = add(r, "san", CN_DOC_PASS, where);
        FOUND(c, "%s is the certificate's CN; the certificate has no SAN DNS entry", target);
    } else {
        c = add(r, "san", CN_DOC_FAIL, where);
        if (cr.wildcard_would_match)
            FOUND(c,
                  "%s is covered only by a wildcard (%s); federated edges do not accept "
                  "wildcards",
                  target, names);
        else if (cr.has_san_dns)
            FOUND(c, "%s is not in the certificate's SAN (%s)", target, names);
        else
            FOUND(c, "%s is not the certificate's CN (%s) and there is no SAN", target, names);
        FIX(c, "add %s to the certificate's SAN", target);
    }

    if (cr.expired) {
        long ago = (long)((time(NULL) - cr.not_after) / 86400);
        date_str(cr.not_after, date, sizeof date);
        c = add(r, "expiry", CN_DOC_FAIL, where);
        if (ago > 0)
            FOUND(c, "expired on %s (%ld day%s ago)", date, ago, ago == 1 ? "" : "s");
        else
            FOUND(c, "expired on %s (less than a day ago)", date);
        FIX(c, "renew the certificate and install it on every node");
    } else if (cr.not_yet_valid) {
        date_str(cr.not_before, date, sizeof date);
        c = add(r, "expiry", CN_DOC_FAIL, where);
        FOUND(c, "not valid before %s", date);
        FIX(c, "check the node's clock and the certificate's validity period");
    } else if (cr.days_left < CN_DOC_EXPIRY_WARN_DAYS) {
        date_str(cr.not_after, date, sizeof date);
        c = add(r, "expiry", CN_DOC_WARN, where);
        FOUND(c, "expires on %s, in %ld days", date, cr.days_left);
        FIX(c, "renew the certificate before it expires");
    } else {
        date_str(cr.not_after, date, sizeof date);
        c = add(r, "expiry", CN_DOC_PASS, where);
        FOUND(c, "valid until %s (%ld days)", date, cr.days_left);
    }

    if (!cr.eku_present) {
        c = add(r, "eku", CN_DOC_PASS, where);
        FOUND(c, "no extended key usage extension: every usage is allowed");
    } else if (cr.eku_server_auth && cr.eku_client_auth) {
        c = add(r, "eku", CN_DOC_PASS, where);
        FOUND(c, "serverAuth and clientAuth");
    } else {
        c = add(r, "eku", CN_DOC_FAIL, where);
        FOUND(c, "%s only; federation is mutual TLS and needs serverAuth and clientAuth",
              cr.eku_server_auth   ? "serverAuth"
              : cr.eku_client_auth ? "clientAuth"
                                   : "neither");
        FIX(c, "issue the certificate with both serverAuth and clientAuth extended key usage");
    }
}

static void check_address(struct doc_ctx *d, const char *target, const struct fed_dns_addr *a,
                          uint16_t port)
{
    struct cn_doc_report *r = d->r;
    struct cn_doc_check *c;
    char where[INET6_ADDRSTRLEN + 10];
    bool v6 = a->family == AF_INET6;
    snprintf(where, sizeof where, "%s%s%s:%u", v6 ? "[" : "", a->text, v6 ? "]" : "", port);

    struct fed_tls_session s;
    fed_tls_status_t st = fed_tls_probe(d->tls, a->text, port, target, d->o->timeout_ms, &s);
    if (st == FED_TLS_ERR_CONNECT || st == FED_TLS_ERR_TIMEOUT || st == FED_TLS_ERR_ARG) {
        bool in_connect = st != FED_TLS_ERR_TIMEOUT || s.ssl == NULL;
        if (in_connect) {
            c = add(r, "tcp", CN_DOC_FAIL, where);
            if (st == FED_TLS_ERR_TIMEOUT)
                FOUND(c,
                      "TCP connect to %s: no answer within %d ms (packets dropped: a "
                      "firewall, or nothing at this address)",
                      where, d->o->timeout_ms);
            else
                FOUND(c, "TCP connect to %s failed: %s", where,
                      s.sys_errno ? strerror(s.sys_errno) : s.error);
            if (port != FED_PORT)
                FIX(c,
                    "port %u is not the federation port 5061: fix the SRV record, or open "
                    "and listen on %u",
                    port, port);
            else
                FIX(c,
                    "open TCP %u from the internet to %s and check that the node listens "
                    "there",
                    port, a->text);
            fed_tls_session_close(&s);
            return;
        }
    }
    c = add(r, "tcp", CN_DOC_PASS, where);
    FOUND(c, "connected to %s in %llu ms", where, (unsigned long long)s.connect_ms);
    if (st != FED_TLS_OK) {
        c = add(r, "tls", CN_DOC_FAIL, where);
        FOUND(c, "%s (SNI %s)", s.error, target);
        FIX(c, "check the node's TLS listener: certificate and key loaded, TLS 1.2 or newer");
        fed_tls_session_close(&s);
        return;
    }
    c = add(r, "tls", CN_DOC_PASS, where);
    FOUND(c, "%s %s with SNI %s in %llu ms", s.version, s.cipher, target,
          (unsigned long long)s.handshake_ms);
    if (s.peer_cert == NULL) {
        c = add(r, "san", CN_DOC_FAIL, where);
        FOUND(c, "the server presented no certificate");
        FIX(c, "configure a certificate for %s on the node", target);
    } else {
        check_certificate(d, where, target, &s);
    }
    fed_tls_session_close(&s);
}

static void check_target(struct doc_ctx *d, const struct fed_dns_srv *rec)
{
    struct cn_doc_report *r = d->r;
    struct cn_doc_check *c;
    char tp[300];
    snprintf(tp, sizeof tp, "%s:%u", rec->target, rec->port);

    if (rec->port == FED_PORT) {
        c = add(r, "srv_port", CN_DOC_PASS, tp);
        FOUND(c, "port %u", rec->port);
    } else if (rec->port == 5601) {
        c = add(r, "srv_port", CN_DOC_FAIL, tp);
        FOUND(c, "port 5601 in SRV; federation uses 5061. A wrong port looks like a firewall "
                 "problem: the TCP connect fails and the caller sees a timeout");
        FIX(c, "change the SRV record's port to 5061");
    } else {
        c = add(r, "srv_port", CN_DOC_WARN, tp);
        FOUND(c, "port %u in SRV; federation uses 5061 and some edges expect it", rec->port);
        FIX(c, "use port 5061 unless every federated peer honours the SRV port");
    }

    fed_strict_t sn = fed_name_strict(r->domain, FED_NAME_NUL, rec->target, FED_NAME_NUL);
    if (fed_strict_ok(sn)) {
        c = add(r, "strict_naming", CN_DOC_PASS, rec->target);
        FOUND(c, "%s is %s %s", rec->target,
              sn == FED_STRICT_SELF ? "the domain" : "a host directly in",
              sn == FED_STRICT_SELF ? "itself" : r->domain);
    } else {
        char diag[600];
        const struct fed_diag_param p[] = {{"domain", r->domain}, {"fqdn1", tp}};
        if (fed_diag_build(diag, sizeof diag, FED_DIAG_DNS_SRV_NO_MATCH, NULL, p, 2) < 0)
            diag[0] = '\0';
        c = add(r, "strict_naming", CN_DOC_FAIL, rec->target);
        FOUND(c,
              "%s is %s %s; Microsoft edges refuse it even though it resolves (504, "
              "ms-diagnostics: %s)",
              rec->target, fed_strict_str(sn), r->domain, diag);
        FIX(c, "point the SRV at a host directly in %s (e.g. sip.%s)", r->domain, r->domain);
    }

    const struct fed_dns_answer *ans[2] = {NULL, NULL};
    fed_dns_status_t st4 =
        fed_dns_query_sync(d->dns, rec->target, FED_DNS_T_A, d->o->timeout_ms, &ans[0]);
    fed_dns_status_t st6 =
        fed_dns_query_sync(d->dns, rec->target, FED_DNS_T_AAAA, d->o->timeout_ms, &ans[1]);
    char list[600] = "";
    size_t k = 0, n = 0;
    for (int f = 0; f < 2; f++) {
        for (size_t i = 0; ans[f] != NULL && ans[f]->status == FED_DNS_OK && i < ans[f]->n; i++) {
            int w =
                snprintf(list + k, sizeof list - k, "%s%s", n ? ", " : "", ans[f]->addr[i].text);
            if (w > 0 && (size_t)w < sizeof list - k)
                k += (size_t)w;
            n++;
        }
    }
    if (n == 0) {
        c = add(r, "address", CN_DOC_FAIL, rec->target);
        FOUND(c, "%s has no A or AAAA record (A: %s; AAAA: %s)", rec->target,
              fed_dns_status_str(st4), fed_dns_status_str(st6));
        FIX(c, "add an A (and/or AAAA) record for %s holding every signaling node", rec->target);
    } else {
        c = add(r, "address", CN_DOC_PASS, rec->target);
        FOUND(c, "%s: %s", rec->target, list);
        size_t done = 0;
        for (int f = 0; f < 2; f++) {
            for (size_t i = 0; ans[f] != NULL && ans[f]->status == FED_DNS_OK && i < ans[f]->n;
                 i++) {
                if (done++ >= DOC_MAX_ADDRS)
                    break;
                check_address(d, rec->target, &ans[f]->addr[i], rec->port);
            }
        }
    }
    fed_dns_answer_unref(ans[0]);
    fed_dns_answer_unref(ans[1]);
}

/* sip.DOMAIN: Lync phones fall back to it; federation itself uses the SRV record. */
static void check_fallback(struct doc_ctx *d, bool srv_ok)
{
    struct cn_doc_report *r = d->r;
    char host[1][FED_NAME_BUF];
    if (fed_name_fallback_hosts(r->domain, FED_NAME_NUL, FED_FALLBACK_SIP, host, 1) != 1)
        return;
    const struct fed_dns_answer *a = NULL, *aaaa = NULL;
    fed_dns_query_sync(d->dns, host[0], FED_DNS_T_A, d->o->timeout_ms, &a);
    fed_dns_query_sync(d->dns, host[0], FED_DNS_T_AAAA, d->o->timeout_ms, &aaaa);
    size_t n = (a && a->status == FED_DNS_OK ? a->n : 0) +
               (aaaa && aaaa->status == FED_DNS_OK ? aaaa->n : 0);
    struct cn_doc_check *c = add(r, "fallback_host", CN_DOC_INFO, host[0]);
    if (n > 0) {
        const char *first =
            a && a->status == FED_DNS_OK && a->n ? a->addr[0].text : aaaa->addr[0].text;
        FOUND(c,
              "%s resolves (%s%s); Lync phones fall back to it when the SRV target fails "
              "the strict check",
              host[0], first, n > 1 ? ", ..." : "");
    } else {
        FOUND(c, "%s does not resolve (%s); Lync phones that fall back to it find nothing", host[0],
              fed_dns_status_str(a ? a->status : FED_DNS_ERR_OTHER));
        if (!srv_ok)
            FIX(c, "publish the SRV record; an A record for %s helps Lync phones", host[0]);
    }
    fed_dns_answer_unref(a);
    fed_dns_answer_unref(aaaa);
}

static void check_domain(struct doc_ctx *d)
{
    struct cn_doc_report *r = d->r;
    struct cn_doc_check *c;
    char srv_name[FED_NAME_BUF + 32];
    snprintf(srv_name, sizeof srv_name, "_sipfederationtls._tcp.%s", r->domain);

    const struct fed_dns_answer *ans = NULL;
    fed_dns_status_t st =
        fed_dns_query_sync(d->dns, srv_name, FED_DNS_T_SRV, d->o->timeout_ms, &ans);
    size_t usable = 0;
    for (size_t i = 0; st == FED_DNS_OK && ans != NULL && i < ans->n; i++)
        usable += ans->srv[i].target[0] != '\0';

    if (st == FED_DNS_OK && usable > 0) {
        char list[700] = "";
        size_t k = 0;
        for (size_t i = 0; i < ans->n; i++) {
            const struct fed_dns_srv *s = &ans->srv[i];
            int w = snprintf(list + k, sizeof list - k, "%s%u %u %u %s.", i ? ", " : "",
                             s->priority, s->weight, s->port, s->target);
            if (w > 0 && (size_t)w < sizeof list - k)
                k += (size_t)w;
        }
        c = add(r, "srv", CN_DOC_PASS, srv_name);
        FOUND(c, "%s SRV %s (TTL %u)", srv_name, list, ans->ttl);
    } else {
        c = add(r, "srv", CN_DOC_FAIL, srv_name);
        if (st == FED_DNS_OK)
            FOUND(c, "%s SRV has only the \".\" target: the service is declared unavailable",
                  srv_name);
        else if (st == FED_DNS_NXDOMAIN || st == FED_DNS_NODATA)
            FOUND(c,
                  "no SRV record %s (%s): federated edges cannot find the domain "
                  "(ms-diagnostics 1008)",
                  srv_name, fed_dns_status_str(st));
        else
            FOUND(c, "SRV lookup of %s failed: %s", srv_name, fed_dns_status_str(st));
        if (st < 0)
            FIX(c, "check the DNS server (%s)", r->dns);
        else
            FIX(c, "publish \"%s. 300 IN SRV 1 100 5061 sip.%s.\"", srv_name, r->domain);
    }

    check_fallback(d, usable > 0);
    if (usable == 0) {
        fed_dns_answer_unref(ans);
        return;
    }

    size_t order[DOC_MAX_TARGETS];
    size_t no =
        fed_srv_order(ans->srv, ans->n, FED_SRV_RFC2782, NULL, NULL, order, DOC_MAX_TARGETS);
    if (usable > 1) {
        size_t ms;
        fed_srv_order(ans->srv, ans->n, FED_SRV_MICROSOFT, NULL, NULL, &ms, 1);
        c = add(r, "srv_selection", CN_DOC_INFO, srv_name);
        FOUND(c,
              "%zu records; Microsoft edges use only the lowest priority's highest weight "
              "(%u %u %u %s) and ignore the others",
              usable, ans->srv[ms].priority, ans->srv[ms].weight, ans->srv[ms].port,
              ans->srv[ms].target);
        FIX(c, "publish one SRV record whose target is a round-robin A/AAAA name holding "
               "every signaling node");
    }
    for (size_t i = 0; i < no; i++)
        check_target(d, &ans->srv[order[i]]);
    fed_dns_answer_unref(ans);
}

int cn_doctor_run(const struct cn_doc_opts *o, struct cn_doc_report *r, char *err, size_t errsz)
{
    int rc = -1;
    struct doc_ctx d = {o, r, NULL, NULL, NULL};
    memset(r, 0, sizeof *r);

    if (o->domain == NULL ||
        fed_name_normalize(o->domain, FED_NAME_NUL, 0, r->domain, sizeof r->domain) < 0) {
        snprintf(err, errsz, "\"%s\" is not a domain name: %s", o->domain ? o->domain : "",
                 fed_name_status_str(fed_name_check(o->domain, FED_NAME_NUL, 0)));
        return -1;
    }
    snprintf(r->dns, sizeof r->dns, "%s", o->dns_server ? o->dns_server : "system resolver");
    snprintf(r->ca, sizeof r->ca, "%s", o->ca_file ? o->ca_file : "system store");

    int timeout = o->timeout_ms > 0 ? o->timeout_ms : DOC_DEFAULT_TIMEOUT_MS;
    struct fed_dns_conf dc = {
        .server = o->dns_server,
        .timeout_ms = timeout < 2000 ? timeout : 2000,
        .tries = 2,
    };
    d.dns = fed_dns_new(&dc, err, errsz);
    if (d.dns == NULL)
        goto out;
    d.store = fed_cert_store_new(o->ca_file, NULL, err, errsz);
    if (d.store == NULL)
        goto out;
    struct fed_tls_client_conf tc = {
        .ca_file = o->ca_file,
        .cert_file = o->cert_file,
        .key_file = o->key_file,
    };
    d.tls = fed_tls_client_ctx_new(&tc, err, errsz);
    if (d.tls == NULL)
        goto out;
    struct cn_doc_opts eff = *o;
    eff.timeout_ms = timeout;
    d.o = &eff;
    check_domain(&d);
    rc = 0;
out:
    SSL_CTX_free(d.tls);
    X509_STORE_free(d.store);
    fed_dns_free(d.dns);
    return rc;
}

void cn_doctor_report_free(struct cn_doc_report *r)
{
    if (r == NULL)
        return;
    free(r->checks);
    r->checks = NULL;
    r->n = r->cap = 0;
}

void cn_doctor_print(FILE *f, const struct cn_doc_report *r)
{
    fprintf(f, "confnode doctor %s (DNS: %s; trusted CAs: %s)\n", r->domain, r->dns, r->ca);
    for (size_t i = 0; i < r->n; i++) {
        const struct cn_doc_check *c = &r->checks[i];
        fprintf(f, "%s  %-14s %s\n", cn_doc_status_str(c->status), c->id, c->found);
        if (c->fix[0] != '\0' && c->status != CN_DOC_PASS)
            fprintf(f, "      %-14s fix: %s\n", "", c->fix);
    }
    size_t fails = r->count[CN_DOC_FAIL], warns = r->count[CN_DOC_WARN];
    fprintf(f, "%zu passed, %zu warning%s, %zu failed: %s %s\n", r->count[CN_DOC_PASS], warns,
            warns == 1 ? "" : "s", fails, r->domain,
            fails ? "is not ready for federation" : "is ready for federation");
}

static int jput(json_object *o, const char *key, json_object *v)
{
    if (v == NULL)
        return -1;
    json_object_object_add(o, key, v);
    return 0;
}

char *cn_doctor_json(const struct cn_doc_report *r)
{
    char *out = NULL;
    json_object *root = json_object_new_object();
    json_object *checks = json_object_new_array();
    json_object *sum = json_object_new_object();
    if (root == NULL || checks == NULL || sum == NULL) {
        json_object_put(checks);
        json_object_put(sum);
        goto out;
    }
    if (jput(root, "domain", json_object_new_string(r->domain)) != 0 ||
        jput(root, "dns", json_object_new_string(r->dns)) != 0 ||
        jput(root, "ca", json_object_new_string(r->ca)) != 0 ||
        jput(root, "ok", json_object_new_boolean(r->count[CN_DOC_FAIL] == 0)) != 0) {
        json_object_put(checks);
        json_object_put(sum);
        goto out;
    }
    static const char *const keys[] = {"pass", "info", "warn", "fail"};
    for (int s = 0; s < 4; s++) {
        if (jput(sum, keys[s], json_object_new_uint64(r->count[s])) != 0) {
            json_object_put(checks);
            json_object_put(sum);
            goto out;
        }
    }
    json_object_object_add(root, "summary", sum);
    json_object_object_add(root, "checks", checks);
    for (size_t i = 0; i < r->n; i++) {
        const struct cn_doc_check *c = &r->checks[i];
        json_object *o = json_object_new_object();
        if (o == NULL || json_object_array_add(checks, o) != 0) {
            json_object_put(o);
            goto out;
        }
        if (jput(o, "check", json_object_new_string(c->id)) != 0 ||
            jput(o, "status", json_object_new_string(cn_doc_status_str(c->status))) != 0 ||
            jput(o, "target", json_object_new_string(c->target)) != 0 ||
            jput(o, "found", json_object_new_string(c->found)) != 0 ||
            jput(o, "fix", json_object_new_string(c->fix)) != 0)
            goto out;
    }
    const char *s = json_object_to_json_string_ext(
        root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
    out = s ? strdup(s) : NULL;
out:
    json_object_put(root);
    return out;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: confnode doctor DOMAIN [--dns HOST:PORT] [--ca FILE] [--json]\n"
               "                      [--timeout SECONDS] [--cert FILE --key FILE]\n"
               "\n"
               "Checks DOMAIN the way a federated edge will: the _sipfederationtls._tcp SRV\n"
               "record, its port, strict naming of the target, the fall-back host sip.DOMAIN,\n"
               "A/AAAA records, TCP and TLS to every address, the certificate chain, SAN,\n"
               "expiry and key usages. Exit status: 0 when no check fails, 1 otherwise,\n"
               "2 on usage errors.\n"
               "\n"
               "  --dns HOST:PORT     DNS server to ask (default: /etc/resolv.conf)\n"
               "  --ca FILE           trusted CA certificates, PEM (default: system store)\n"
               "  --json              print a JSON document instead of text\n"
               "  --timeout SECONDS   per DNS query, TCP connect and TLS handshake (default 5)\n"
               "  --cert/--key FILE   client certificate to present in the handshakes\n");
}

/* "--name VALUE" or "--name=VALUE"; advances *i over a separate value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *bad)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "confnode doctor: %s needs a value\n", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

int cn_cmd_doctor(int argc, char **argv)
{
    struct cn_doc_opts o = {0};
    bool json = false, bad = false;
    const char *timeout = NULL;

    for (int i = 1; i < argc && !bad; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if ((v = opt_value(argc, argv, &i, "--dns", &bad)) != NULL) {
            o.dns_server = v;
        } else if ((v = opt_value(argc, argv, &i, "--ca", &bad)) != NULL) {
            o.ca_file = v;
        } else if ((v = opt_value(argc, argv, &i, "--timeout", &bad)) != NULL) {
            timeout = v;
        } else if ((v = opt_value(argc, argv, &i, "--cert", &bad)) != NULL) {
            o.cert_file = v;
        } else if ((v = opt_value(argc, argv, &i, "--key", &bad)) != NULL) {
            o.key_file = v;
        } else if (bad) {
            break;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "confnode doctor: unknown option '%s'\n", argv[i]);
            bad = true;
        } else if (o.domain != NULL) {
            fprintf(stderr, "confnode doctor: one domain at a time ('%s' and '%s')\n", o.domain,
                    argv[i]);
            bad = true;
        } else {
            o.domain = argv[i];
        }
    }
    if (!bad && o.domain == NULL) {
        fprintf(stderr, "confnode doctor: DOMAIN is required\n");
        bad = true;
    }
    if (!bad && timeout != NULL) {
        char *end;
        errno = 0;
        double s = strtod(timeout, &end);
        if (errno != 0 || end == timeout || *end != '\0' || !(s > 0.0 && s <= 600.0)) {
            fprintf(stderr, "confnode doctor: --timeout wants seconds in (0, 600], not '%s'\n",
                    timeout);
            bad = true;
        } else {
            o.timeout_ms = (int)(s * 1000.0 + 0.5);
            if (o.timeout_ms < 1)
                o.timeout_ms = 1;
        }
    }
    if (!bad && (o.cert_file == NULL) != (o.key_file == NULL)) {
        fprintf(stderr, "confnode doctor: --cert and --key go together\n");
        bad = true;
    }
    if (bad) {
        usage(stderr);
        return 2;
    }

    /* a peer that closes mid-handshake must not kill the process */
    signal(SIGPIPE, SIG_IGN);

    struct cn_doc_report r;
    char err[512];
    if (cn_doctor_run(&o, &r, err, sizeof err) != 0) {
        fprintf(stderr, "confnode doctor: %s\n", err);
        cn_doctor_report_free(&r);
        return 2;
    }
    int rc = r.count[CN_DOC_FAIL] > 0 ? 1 : 0;
    if (json) {
        char *s = cn_doctor_json(&r);
        if (s == NULL) {
            fprintf(stderr, "confnode doctor: out of memory\n");
            rc = 1;
        } else {
            printf("%s\n", s);
            free(s);
        }
    } else {
        cn_doctor_print(stdout, &r);
    }
    cn_doctor_report_free(&r);
    return rc;
}
