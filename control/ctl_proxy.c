/* The stateful proxy: forwarding, fail-over, response relay, CANCEL and loose
 * routing. See ctl_proxy.h for the design. */
#include "ctl_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn_log.h"
#include "fed_diag.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define NO_DNS_YET "name resolution for in-dialog targets not yet available"

struct px_target {
    struct ctl_target t;
    char tls_name[256];
    char *ruri; /* the Request-URI for this target (owned), NULL: as received */
};

/* How a target failed, from the least to the most telling. */
enum px_rank {
    RANK_NONE = 0,
    RANK_OTHER,   /* send failed, connection closed, no connection slot */
    RANK_TIMEOUT, /* no SIP response in time */
    RANK_CONNECT, /* TCP connect refused, unreachable or unanswered */
    RANK_TLS,     /* TLS handshake failed */
    RANK_CERT,    /* the peer's certificate did not verify */
    RANK_NAME,    /* the peer's certificate does not carry the name we asked for */
};

/* A proxied request. Owner: the worker; lives until the final response is upstream
 * and, for an INVITE answered 2xx, until its client transaction ends (Timer M). */
struct ctl_pxy {
    struct ctl_pxy *next, *prev;
    struct ctl_txn *st; /* upstream server transaction, until our final goes up */
    cn_peer_t up;       /* where responses go */
    sip_msg_t *req;     /* the request as received (owned) */
    sip_method_t method;
    struct ctl_ctxn *cx; /* the current client transaction */
    struct px_target tg[CTL_PROXY_MAX_TARGETS];
    size_t n, cur;
    bool record_route;
    bool final_sent, cancelled, cancel_sent, overload;
    int max_forwards;
    size_t pop_routes; /* Route values at the top naming us */
    char diag_source[128];
    ctl_proxy_report_fn report;
    void *report_arg;
    /* what went wrong so far */
    int best_rank;
    char best_reason[256];
    char best_diag[640];
    bool saw_503;
    char peer_reason[400];
    char peer_diag[640];  /* a 503's ms-diagnostics, passed on */
    struct ctl_timer t_c; /* Timer C (INVITE) */
};

static const struct ctl_ctxn_user px_user;
static bool px_advance(struct ctl_worker *cw, struct ctl_pxy *p);

/* ---- names and addresses ---- */

static bool is_wildcard(const char *h)
{
    return !h[0] || strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0;
}

/* The address we put in Via and Record-Route: the listen address, or the media
 * address when we listen on every address. */
static const char *self_host(const struct ctl_worker *cw)
{
    const char *h = cw->sh->listen.host;
    return is_wildcard(h) ? cw->conf->media_address : h;
}

static unsigned port_for(const struct ctl_worker *cw, cn_transport_t tr)
{
    const struct ctl_listen *l = &cw->sh->listen;
    return tr == CN_TRANSPORT_TLS   ? l->tls_port
           : tr == CN_TRANSPORT_TCP ? l->tcp_port
                                    : l->udp_port;
}

static const char *tr_param(cn_transport_t tr)
{
    return tr == CN_TRANSPORT_TLS ? "tls" : tr == CN_TRANSPORT_TCP ? "tcp" : "udp";
}

/* "host:port" of ours for a transport, IPv6 in brackets. */
static void self_hostport(const struct ctl_worker *cw, cn_transport_t tr, char *out, size_t cap)
{
    const char *h = self_host(cw);
    bool v6 = strchr(h, ':') != NULL;
    snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "", port_for(cw, tr));
}

static bool str_ieq(sip_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.s && a.len == n && strncasecmp(a.s, b, n) == 0;
}

/* The host without IPv6 brackets. */
static sip_str_t bare_host(sip_str_t h)
{
    if (h.s && h.len >= 2 && h.s[0] == '[' && h.s[h.len - 1] == ']')
        return (sip_str_t){h.s + 1, h.len - 2};
    return h;
}

static int uri_port(const sip_uri_t *u)
{
    if (u->port.s && u->port.len > 0) {
        unsigned v = 0;
        for (size_t i = 0; i < u->port.len; i++) {
            if (u->port.s[i] < '0' || u->port.s[i] > '9' || v > 65535)
                return -1;
            v = v * 10 + (unsigned)(u->port.s[i] - '0');
        }
        return v > 0 && v <= 65535 ? (int)v : -1;
    }
    return u->sips || str_ieq(u->transport, "tls") ? 5061 : 5060;
}

bool ctl_proxy_names_us(const struct ctl_worker *cw, const sip_uri_t *u)
{
    sip_str_t h = bare_host(u->host);
    const struct ctl_listen *l = &cw->sh->listen;
    if (!str_ieq(h, self_host(cw)) && !str_ieq(h, l->host))
        return false;
    int port = uri_port(u);
    return port > 0 &&
           ((l->udp_port && port == l->udp_port) || (l->tcp_port && port == l->tcp_port) ||
            (l->tls_port && port == l->tls_port));
}

/* Our SIP domain, or the domain of one of our rooms. */
static bool our_domain(const struct ctl_worker *cw, sip_str_t host)
{
    if (str_ieq(host, cw->conf->domain))
        return true;
    for (size_t i = 0; i < cw->sh->n_vmrs; i++)
        if (str_ieq(host, cw->sh->vmrs[i].domain))
            return true;
    return false;
}

/* An IP literal (IPv4, or IPv6 with or without brackets) into a socket address. */
static bool ip_addr(sip_str_t host, unsigned port, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[64];
    sip_str_t h = bare_host(host);
    if (!h.s || h.len == 0 || h.len >= sizeof buf)
        return false;
    memcpy(buf, h.s, h.len);
    buf[h.len] = 0;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, buf, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return true;
    }
    return false;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ctl_proxy_branch_owner(sip_str_t b)
{
    static const char prefix[] = "z9hG4bKcn";
    size_t pl = sizeof prefix - 1;
    if (!b.s || b.len < pl + 2 || strncmp(b.s, prefix, pl) != 0)
        return -1;
    int hi = hexval(b.s[pl]), lo = hexval(b.s[pl + 1]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* ---- headers we write ---- */

/* "Warning: 399 <node> "<why>"\r\n" with quotes and control bytes taken out. */
static int warning_hdr(const struct ctl_worker *cw, const char *why, char *out, size_t cap)
{
    char clean[240];
    size_t j = 0;
    for (size_t i = 0; why && why[i] && j < sizeof clean - 1; i++) {
        unsigned char ch = (unsigned char)why[i];
        clean[j++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) ? ' ' : (char)ch;
    }
    clean[j] = 0;
    const char *agent = cw->conf->node_name[0] ? cw->conf->node_name : "confnode";
    return snprintf(out, cap, "Warning: 399 %s \"%s\"\r\n", agent, clean);
}

/* A To-tag for a response we make ourselves; the same shape as the user agent's, so
 * it names this worker. */
static void make_tag(struct ctl_worker *cw, char out[TAG_LEN + 1])
{
    uint64_t x = ++cw->tag_seq ^ cw->tag_key;
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    snprintf(out, TAG_LEN + 1, "cn%02x%016llx", cw->id & 0xff, (unsigned long long)x);
}

static void copy_value(sip_str_t v, char *out, size_t cap)
{
    size_t n = v.s ? (v.len < cap ? v.len : cap - 1) : 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (v.s[i] == '\r' || v.s[i] == '\n') ? ' ' : v.s[i];
    out[n] = 0;
}

/* The ms-diagnostics a peer sent (or the public variant), into out; false when none. */
static bool peer_diag(const sip_msg_t *m, char *out, size_t cap)
{
    sip_str_t d = sip_msg_header(m, FED_DIAG_HEADER);
    if (!d.s)
        d = sip_msg_header(m, FED_DIAG_HEADER_PUBLIC);
    out[0] = 0;
    if (!d.s || d.len == 0)
        return false;
    copy_value(d, out, cap);
    return true;
}

/* ---- proxy contexts ---- */

static void report(struct ctl_pxy *p, ctl_proxy_ev_t kind, size_t target, int status,
                   const char *reason, const char *diag)
{
    if (!p->report)
        return;
    struct ctl_proxy_event ev = {.kind = kind,
                                 .target = target,
                                 .where = target < p->n ? &p->tg[target].t : NULL,
                                 .status = status,
                                 .reason = reason,
                                 .diag = diag && *diag ? diag : NULL};
    p->report(p->report_arg, &ev);
    if (kind == CTL_PROXY_EV_DONE)
        p->report = NULL;
}

static void px_free(struct ctl_worker *cw, struct ctl_pxy *p)
{
    struct ctl_px *px = cw->px;
    if (p->prev)
        p->prev->next = p->next;
    else
        px->pxys = p->next;
    if (p->next)
        p->next->prev = p->prev;
    px->n_pxy--;
    if (p->st && p->st->pxy == p)
        p->st->pxy = NULL;
    ctl_ctxn_detach(p->cx);
    ctl_timer_cancel(&cw->timers, &p->t_c);
    for (size_t i = 0; i < p->n; i++)
        free(p->tg[i].ruri);
    sip_msg_free(p->req);
    free(p);
}

/* Sends a response upstream in p's server transaction; a final one ends p's hold on
 * it (the transaction may be gone when ctl_txn_respond returns). */
static void send_up(struct ctl_worker *cw, struct ctl_pxy *p, int status, const char *buf,
                    size_t len)
{
    struct ctl_txn *st = p->st;
    if (!st)
        return;
    if (status >= 200) {
        st->pxy = NULL;
        p->st = NULL;
        p->final_sent = true;
    }
    ctl_txn_respond(cw, st, status, buf, len, cw->now);
}

/* A response of our own to p's request, upstream. */
static void answer(struct ctl_worker *cw, struct ctl_pxy *p, int status, const char *extra)
{
    char tag[TAG_LEN + 1];
    make_tag(cw, tag);
    ssize_t n =
        sip_msg_build_response(p->req, status, sip_msg_phrase(status), status > 100 ? tag : NULL,
                               extra, NULL, NULL, 0, cw->out, sizeof cw->out);
    if (n < 0) {
        n = sip_msg_build_response(p->req, status, sip_msg_phrase(status),
                                   status > 100 ? tag : NULL, NULL, NULL, NULL, 0, cw->out,
                                   sizeof cw->out);
    }
    if (n > 0) {
        send_up(cw, p, status, cw->out, (size_t)n);
    } else if (status >= 200 && p->st) {
        struct ctl_txn *st = p->st;
        st->pxy = NULL;
        p->st = NULL;
        p->final_sent = true;
        ctl_txn_destroy(cw, st);
    }
}

/* A response from downstream, without our Via, upstream: in the transaction while
 * it waits for its final, statelessly after that (INVITE 2xx retransmissions). */
static void relay(struct ctl_worker *cw, struct ctl_pxy *p, const sip_msg_t *resp, int status)
{
    size_t cap = sip_msg_wire_len(resp) + 64;
    char *buf = malloc(cap);
    struct sip_msg_fwd f = {.max_forwards = -1, .pop_via = true};
    ssize_t n = buf ? sip_msg_build_forward(resp, &f, buf, cap) : -1;
    if (n < 0) {
        cn_log(CN_LOG_WARN, "proxy_relay_failed", "worker=%u status=%d", cw->id, status);
        free(buf);
        return;
    }
    if (p->st)
        send_up(cw, p, status, buf, (size_t)n);
    else if (cw->io.send(cw->io.io, &p->up, buf, (size_t)n) == 0 && status >= 100 && status < 700)
        cstat_add(&cw->stats->responses[status / 100], 1);
    free(buf);
}

/* ---- failures ---- */

static int rank_of(const char *reason, bool timeout)
{
    if (!reason)
        return RANK_OTHER;
    if (strstr(reason, "hostname mismatch") || strstr(reason, "IP address mismatch"))
        return RANK_NAME;
    if (strstr(reason, "certificate verify failed") || strstr(reason, "certificate"))
        return strncmp(reason, "TLS", 3) == 0 ? RANK_CERT : RANK_OTHER;
    if (strncmp(reason, "TLS", 3) == 0)
        return RANK_TLS;
    if (strncmp(reason, "connect", 7) == 0)
        return RANK_CONNECT;
    return timeout ? RANK_TIMEOUT : RANK_OTHER;
}

/* "name:port" (the TLS name when there is one) of target t. */
static void target_str(const struct px_target *t, char *out, size_t cap)
{
    char addr[64];
    ctl_addr_str(&t->t.addr, addr, sizeof addr);
    if (t->tls_name[0]) {
        const char *colon = strrchr(addr, ':');
        snprintf(out, cap, "%s%s", t->tls_name, colon ? colon : "");
    } else {
        snprintf(out, cap, "%s", addr);
    }
}

/* The ms-diagnostics value for a failure of rank r at target t. */
static void build_diag(const struct ctl_pxy *p, const struct px_target *t, int r,
                       const char *reason, char *out, size_t cap)
{
    char where[300], errtype[160] = "";
    target_str(t, where, sizeof where);
    const char *tls_target = t->tls_name[0] ? t->tls_name : where;
    struct fed_diag_param prm[5];
    size_t n = 0;
    int code;
    const char *text = NULL;
    switch (r) {
    case RANK_NAME:
    case RANK_CERT:
        code = FED_DIAG_CERT_TRUST;
        if (r == RANK_NAME) {
            snprintf(errtype, sizeof errtype, "%s", FED_DIAG_ERRTYPE_NO_FQDN);
        } else {
            const char *last = reason ? strrchr(reason, ':') : NULL;
            snprintf(errtype, sizeof errtype, "%s", last ? last + 1 + (last[1] == ' ') : "");
        }
        prm[n++] = (struct fed_diag_param){"ErrorType", errtype};
        prm[n++] = (struct fed_diag_param){"tls-target", tls_target};
        prm[n++] = (struct fed_diag_param){"PeerServer", where};
        break;
    case RANK_TLS:
        code = FED_DIAG_TLS_NEGOTIATION;
        prm[n++] = (struct fed_diag_param){"tls-target", tls_target};
        prm[n++] = (struct fed_diag_param){"PeerServer", where};
        break;
    default:
        code = CTL_DIAG_CONNECT_FAILED;
        text = CTL_DIAG_CONNECT_REASON;
        prm[n++] = (struct fed_diag_param){"fqdn", where};
        break;
    }
    if (reason)
        prm[n++] = (struct fed_diag_param){"detail", reason};
    prm[n++] = (struct fed_diag_param){"source", p->diag_source};
    if (fed_diag_build(out, cap, code, text, prm, n) < 0)
        fed_diag_build(out, cap, code, text, NULL, 0);
}

/* Target i failed by transport or timeout (status 0), or answered 503 (status 503,
 * with the peer's diagnostics in diag). */
static void record_failure(struct ctl_pxy *p, size_t i, int status, const char *reason,
                           bool timeout, const char *diag)
{
    char ours[640] = "";
    if (status == 503) {
        p->saw_503 = true;
        snprintf(p->peer_reason, sizeof p->peer_reason, "%s", reason);
        if (diag && *diag)
            snprintf(p->peer_diag, sizeof p->peer_diag, "%s", diag);
        report(p, CTL_PROXY_EV_FAILED, i, status, reason, diag);
        return;
    }
    int r = rank_of(reason, timeout);
    build_diag(p, &p->tg[i], r, reason, ours, sizeof ours);
    if (r > p->best_rank) {
        p->best_rank = r;
        snprintf(p->best_reason, sizeof p->best_reason, "%s", reason ? reason : "failed");
        snprintf(p->best_diag, sizeof p->best_diag, "%s", ours);
    }
    report(p, CTL_PROXY_EV_FAILED, i, 0, reason, ours);
}

/* Every target was tried: the final response upstream says why; p is freed. */
static void finish(struct ctl_worker *cw, struct ctl_pxy *p)
{
    char extra[2048];
    int status, n = 0;
    const char *why;
    const char *diag = NULL;
    if (p->cancelled) {
        status = 487;
        why = "Request cancelled";
        extra[0] = 0;
    } else if (p->overload) {
        status = 503;
        why = "Too many transactions on this worker";
        cstat_add(&cw->stats->overload_rejects, 1);
        n = warning_hdr(cw, why, extra, sizeof extra);
        snprintf(extra + n, sizeof extra - (size_t)n, "Retry-After: 1\r\n");
    } else if (p->saw_503) {
        status = 480;
        why = p->peer_reason;
        diag = p->peer_diag[0] ? p->peer_diag : NULL;
    } else {
        status = 504;
        why = p->best_reason[0] ? p->best_reason : "No target could be reached";
        diag = p->best_diag[0] ? p->best_diag : NULL;
    }
    if (status == 480 || status == 504) {
        n = warning_hdr(cw, why, extra, sizeof extra);
        if (diag && n > 0 && (size_t)n < sizeof extra)
            snprintf(extra + n, sizeof extra - (size_t)n, FED_DIAG_HEADER ": %s\r\n", diag);
    }
    cn_log(CN_LOG_INFO, "proxy_failed", "worker=%u status=%d targets=%zu reason=\"%s\"", cw->id,
           status, p->n, why);
    answer(cw, p, status, extra[0] ? extra : NULL);
    report(p, CTL_PROXY_EV_DONE, p->n, status, why, diag);
    px_free(cw, p);
}

/* ---- trying targets ---- */

static void on_timer_c(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_pxy *p = container_of(tm, struct ctl_pxy, t_c);
    (void)now;
    if (p->final_sent || !p->cx)
        return;
    cn_log(CN_LOG_INFO, "proxy_timer_c", "worker=%u reason=\"no final response within %u s\"",
           cw->id, CTL_PROXY_TIMER_C_MS / 1000);
    p->cancelled = true;
    if (ctl_ctxn_provisional(p->cx) && !p->cancel_sent && ctl_ctxn_cancel(cw, p->cx) == 0)
        p->cancel_sent = true;
}

/* Builds the request for target i and starts its client transaction. Returns 0 when
 * it runs, -1 when the target failed (recorded), -2 when this worker has no
 * transaction left. */
static int start_target(struct ctl_worker *cw, struct ctl_pxy *p, size_t i)
{
    struct px_target *t = &p->tg[i];
    cn_peer_t peer;
    char err[256] = "no outbound connections (ctl_io.connect not set)";
    if (!cw->io.connect || cw->io.connect(cw->io.io, &t->t, &peer, err, sizeof err) != 0) {
        record_failure(p, i, 0, err[0] ? err : "connect failed", false, NULL);
        return -1;
    }
    char branch[CTL_BRANCH_LEN + 1], hp[96], hp_up[96], via[200], rr[300];
    ctl_ctxn_branch(cw, branch);
    self_hostport(cw, t->t.transport, hp, sizeof hp);
    snprintf(via, sizeof via, "SIP/2.0/%s %s;branch=%s", cn_transport_name(t->t.transport), hp,
             branch);
    if (p->record_route) {
        int k = snprintf(rr, sizeof rr, "<sip:%s;transport=%s;lr>", hp, tr_param(t->t.transport));
        if (p->up.transport != t->t.transport && k > 0 && (size_t)k < sizeof rr) {
            self_hostport(cw, p->up.transport, hp_up, sizeof hp_up);
            snprintf(rr + k, sizeof rr - (size_t)k, ", <sip:%s;transport=%s;lr>", hp_up,
                     tr_param(p->up.transport));
        }
    }
    struct sip_msg_fwd f = {.ruri = t->ruri,
                            .via = via,
                            .record_route = p->record_route ? rr : NULL,
                            .pop_routes = p->pop_routes,
                            .max_forwards = p->max_forwards};
    size_t cap = sip_msg_wire_len(p->req) + (t->ruri ? strlen(t->ruri) : 0) + 1024;
    char *buf = malloc(cap);
    ssize_t n = buf ? sip_msg_build_forward(p->req, &f, buf, cap) : -1;
    if (n < 0) {
        free(buf);
        record_failure(p, i, 0, "the request could not be rebuilt for this target", false, NULL);
        return -1;
    }
    p->cx = ctl_ctxn_start(cw, &peer, buf, (size_t)n, branch, p->method, &px_user, p);
    if (!p->cx) {
        p->overload = true;
        return -2;
    }
    if (p->method == SIP_METHOD_INVITE)
        ctl_timer_arm(&cw->timers, &p->t_c, cw->now + CTL_PROXY_TIMER_C_MS, on_timer_c);
    return 0;
}

/* Tries targets from p->cur on until one runs. Returns false when p was freed
 * (every target failed at once, and the final response went up). */
static bool px_advance(struct ctl_worker *cw, struct ctl_pxy *p)
{
    while (p->cur < p->n && !p->cancelled) {
        report(p, CTL_PROXY_EV_TRY, p->cur, 0, NULL, NULL);
        int r = start_target(cw, p, p->cur);
        if (r == 0)
            return true;
        if (r == -2)
            break;
        p->cur++;
    }
    finish(cw, p);
    return false;
}

/* ---- what the client transaction tells us ---- */

static void px_response(struct ctl_worker *cw, struct ctl_ctxn *c, void *arg, const sip_msg_t *resp)
{
    struct ctl_pxy *p = arg;
    int status = sip_msg_status(resp);
    char diag[640];
    if (status < 200) {
        if (status > 100) {
            if (p->method == SIP_METHOD_INVITE && !p->cancelled)
                ctl_timer_arm(&cw->timers, &p->t_c, cw->now + CTL_PROXY_TIMER_C_MS, on_timer_c);
            relay(cw, p, resp, status);
        }
        if (p->cancelled && !p->cancel_sent && ctl_ctxn_cancel(cw, c) == 0)
            p->cancel_sent = true;
        return;
    }
    bool has_diag = peer_diag(resp, diag, sizeof diag);
    if (status == 503 && !p->cancelled && !p->final_sent) { /* RFC 3263: the next one */
        char why[400], where[300];
        target_str(&p->tg[p->cur], where, sizeof where);
        snprintf(why, sizeof why, "%s answered 503 %s", where, sip_msg_phrase(503));
        ctl_ctxn_detach(c);
        p->cx = NULL;
        ctl_timer_cancel(&cw->timers, &p->t_c);
        record_failure(p, p->cur, 503, why, false, has_diag ? diag : NULL);
        p->cur++;
        px_advance(cw, p);
        return;
    }
    bool first = !p->final_sent;
    if (first)
        report(p, CTL_PROXY_EV_RESPONSE, p->cur, status, NULL, has_diag ? diag : NULL);
    relay(cw, p, resp, status);
    if (first) {
        ctl_timer_cancel(&cw->timers, &p->t_c);
        report(p, CTL_PROXY_EV_DONE, p->n, status, NULL, has_diag ? diag : NULL);
    }
    if (p->method == SIP_METHOD_INVITE && status < 300)
        return; /* stay for the 2xx retransmissions until the transaction ends */
    ctl_ctxn_detach(c);
    p->cx = NULL;
    px_free(cw, p);
}

static void px_end(struct ctl_worker *cw, struct ctl_ctxn *c, void *arg, ctl_ctxn_end_t why,
                   const char *reason)
{
    struct ctl_pxy *p = arg;
    (void)c;
    p->cx = NULL;
    ctl_timer_cancel(&cw->timers, &p->t_c);
    if (p->final_sent) {
        px_free(cw, p);
        return;
    }
    record_failure(p, p->cur, 0, reason ? reason : "transaction ended", why == CTL_CTXN_TIMEOUT,
                   NULL);
    p->cur++;
    px_advance(cw, p);
}

static const struct ctl_ctxn_user px_user = {.response = px_response, .end = px_end};

/* ---- forwarding ---- */

/* Route values at the top of m naming this node. */
static size_t routes_naming_us(const struct ctl_worker *cw, const sip_msg_t *m)
{
    size_t k = 0, n = sip_msg_route_count(m);
    sip_uri_t u;
    while (k < n && sip_msg_route(m, k, &u) == 0 && ctl_proxy_names_us(cw, &u))
        k++;
    return k;
}

/* An ACK for a 2xx: one hop further, no transaction (§16.11). The branch is derived
 * from the request, so a retransmitted ACK carries the same one. */
static void forward_ack(struct ctl_worker *cw, sip_msg_t *m, const struct ctl_target *t,
                        const char *ruri)
{
    int mf = sip_msg_max_forwards(m);
    cn_peer_t peer;
    char err[256] = "no outbound connections", hp[96], via[200], branch[48];
    if (mf == 0 || !cw->io.connect || cw->io.connect(cw->io.io, t, &peer, err, sizeof err) != 0) {
        cn_log(CN_LOG_INFO, "proxy_ack_dropped", "worker=%u reason=\"%s\"", cw->id,
               mf == 0 ? "Max-Forwards 0" : err);
        return;
    }
    sip_str_t vb = sip_msg_via_branch(m), cid = sip_msg_call_id(m);
    uint64_t h = ctl_hash(vb.s ? vb.s : "", vb.len, sip_msg_cseq(m));
    h = ctl_hash(cid.s ? cid.s : "", cid.len, h);
    snprintf(branch, sizeof branch, "z9hG4bKcn%02xa%016llx", cw->id & 0xff, (unsigned long long)h);
    self_hostport(cw, t->transport, hp, sizeof hp);
    snprintf(via, sizeof via, "SIP/2.0/%s %s;branch=%s", cn_transport_name(t->transport), hp,
             branch);
    struct sip_msg_fwd f = {.ruri = ruri,
                            .via = via,
                            .pop_routes = routes_naming_us(cw, m),
                            .max_forwards = mf < 0 ? 70 : mf - 1};
    size_t cap = sip_msg_wire_len(m) + (ruri ? strlen(ruri) : 0) + 512;
    char *buf = malloc(cap);
    ssize_t n = buf ? sip_msg_build_forward(m, &f, buf, cap) : -1;
    if (n > 0)
        cw->io.send(cw->io.io, &peer, buf, (size_t)n);
    free(buf);
}

static void stateless_reply(struct ctl_worker *cw, const sip_msg_t *m, const cn_peer_t *to,
                            int status, const char *why, const char *more)
{
    char extra[512] = "";
    int n = why ? warning_hdr(cw, why, extra, sizeof extra) : 0;
    if (more && n >= 0 && (size_t)n < sizeof extra)
        snprintf(extra + n, sizeof extra - (size_t)n, "%s", more);
    ctl_send_stateless(cw, m, to, status, extra[0] ? extra : NULL);
}

static void txn_reply(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *m, int status,
                      const char *extra)
{
    char tag[TAG_LEN + 1];
    make_tag(cw, tag);
    ssize_t n = sip_msg_build_response(m, status, sip_msg_phrase(status), status > 100 ? tag : NULL,
                                       extra, NULL, NULL, 0, cw->out, sizeof cw->out);
    if (n > 0)
        ctl_txn_respond(cw, t, status, cw->out, (size_t)n, cw->now);
    else if (status >= 200)
        ctl_txn_destroy(cw, t);
}

ctl_proxy_status_t ctl_proxy_forward(struct ctl_worker *cw, struct ctl_txn *st, sip_msg_t *m,
                                     const cn_peer_t *from, const struct ctl_target *targets,
                                     size_t n, const struct ctl_proxy_opts *opts)
{
    static const struct ctl_proxy_opts none = {0};
    if (!opts)
        opts = &none;
    sip_method_t meth = sip_msg_method(m);
    bool made_here = !st;
    if (meth == SIP_METHOD_ACK) {
        if (n > 0)
            forward_ack(cw, m, &targets[0],
                        opts->target_ruris && opts->target_ruris[0] ? opts->target_ruris[0]
                                                                    : opts->ruri);
        sip_msg_free(m);
        return CTL_PROXY_STATELESS;
    }
    if (!st) {
        char key[TXN_KEY_MAX];
        int klen = ctl_txn_key(m, key, sizeof key, false);
        if (klen < 0 || !from) {
            if (from)
                stateless_reply(cw, m, from, 400, "Via branch or Call-ID too long", NULL);
            sip_msg_free(m);
            return CTL_PROXY_ANSWERED;
        }
        struct ctl_txn *t = ctl_txn_find(cw, key, (size_t)klen);
        if (t) {
            cstat_add(&cw->stats->retransmissions_absorbed, 1);
            ctl_txn_retransmit(cw, t);
            sip_msg_free(m);
            return CTL_PROXY_RETRANSMISSION;
        }
        st = ctl_txn_new(cw, key, (size_t)klen, from, meth == SIP_METHOD_INVITE);
        if (!st) {
            cstat_add(&cw->stats->overload_rejects, 1);
            stateless_reply(cw, m, from, 503, NULL, "Retry-After: 1\r\n");
            sip_msg_free(m);
            return CTL_PROXY_ANSWERED;
        }
    }
    st->proxied = 1;
    int mf = sip_msg_max_forwards(m);
    if (mf == 0) {
        txn_reply(cw, st, m, 483, NULL);
        sip_msg_free(m);
        return CTL_PROXY_ANSWERED;
    }
    if (n == 0 || n > CTL_PROXY_MAX_TARGETS || cw->px->n_pxy >= cw->conf->max_transactions) {
        char extra[300];
        bool full = n > 0 && n <= CTL_PROXY_MAX_TARGETS;
        int k = warning_hdr(cw,
                            full ? "Too many proxied requests on this worker"
                            : n  ? "Too many targets"
                                 : "No target to forward to",
                            extra, sizeof extra);
        if (full && k > 0 && (size_t)k < sizeof extra)
            snprintf(extra + k, sizeof extra - (size_t)k, "Retry-After: 1\r\n");
        if (full)
            cstat_add(&cw->stats->overload_rejects, 1);
        txn_reply(cw, st, m, full ? 503 : 500, extra);
        sip_msg_free(m);
        return CTL_PROXY_ANSWERED;
    }
    struct ctl_pxy *p = calloc(1, sizeof *p);
    if (!p) {
        txn_reply(cw, st, m, 503, "Retry-After: 1\r\n");
        sip_msg_free(m);
        return CTL_PROXY_ANSWERED;
    }
    p->st = st;
    p->up = st->peer;
    p->req = m;
    p->method = meth;
    p->n = n;
    p->record_route = opts->record_route;
    p->max_forwards = mf < 0 ? 70 : mf - 1;
    p->pop_routes = routes_naming_us(cw, m);
    p->report = opts->report;
    p->report_arg = opts->report_arg;
    snprintf(p->diag_source, sizeof p->diag_source, "%s",
             opts->diag_source        ? opts->diag_source
             : cw->conf->node_name[0] ? cw->conf->node_name
                                      : "confnode");
    bool oom = false;
    for (size_t i = 0; i < n; i++) {
        struct px_target *t = &p->tg[i];
        t->t = targets[i];
        snprintf(t->tls_name, sizeof t->tls_name, "%s",
                 targets[i].tls_name ? targets[i].tls_name : "");
        t->t.tls_name = t->tls_name[0] ? t->tls_name : NULL;
        const char *ruri =
            opts->target_ruris && opts->target_ruris[i] ? opts->target_ruris[i] : opts->ruri;
        if (ruri && !(t->ruri = strdup(ruri)))
            oom = true;
    }
    st->pxy = p;
    p->next = cw->px->pxys;
    if (p->next)
        p->next->prev = p;
    cw->px->pxys = p;
    cw->px->n_pxy++;
    if (oom) {
        p->overload = true;
        finish(cw, p);
        return CTL_PROXY_ANSWERED;
    }
    if (meth == SIP_METHOD_INVITE && made_here)
        answer(cw, p, 100, NULL);
    return px_advance(cw, p) ? CTL_PROXY_FORWARDED : CTL_PROXY_ANSWERED;
}

/* ---- requests that reach the proxy by themselves ---- */

/* A CANCEL for the proxied INVITE inv: 200 at once, then downstream (§16.10). */
static void handle_cancel(struct ctl_worker *cw, struct ctl_txn *inv, sip_msg_t *m,
                          const cn_peer_t *from)
{
    char key[TXN_KEY_MAX];
    int klen = ctl_txn_key(m, key, sizeof key, false);
    struct ctl_txn *ct = klen > 0 ? ctl_txn_new(cw, key, (size_t)klen, from, false) : NULL;
    if (ct) {
        ct->proxied = 1;
        ssize_t n = sip_msg_build_response(m, 200, NULL, NULL, NULL, NULL, NULL, 0, cw->out,
                                           sizeof cw->out);
        if (n > 0)
            ctl_txn_respond(cw, ct, 200, cw->out, (size_t)n, cw->now);
        else
            ctl_txn_destroy(cw, ct);
    } else {
        ctl_send_stateless(cw, m, from, 200, NULL);
    }
    struct ctl_pxy *p = inv->pxy;
    if (p && !p->final_sent && !p->cancelled) {
        p->cancelled = true;
        if (p->cx && ctl_ctxn_provisional(p->cx) && ctl_ctxn_cancel(cw, p->cx) == 0)
            p->cancel_sent = true;
    }
    sip_msg_free(m);
}

/* The next hop of a request routed by a URI (a Route value or the Request-URI):
 * an IP literal host, or an IP literal maddr with the host as the TLS name.
 * Returns 0, or -1 with the reason. */
static int target_of(const sip_uri_t *u, struct ctl_target *t, char *name, size_t namecap,
                     const char **why)
{
    memset(t, 0, sizeof *t);
    int port = uri_port(u);
    if (port <= 0) {
        *why = "bad port in the next hop's URI";
        return -1;
    }
    if (u->sips || str_ieq(u->transport, "tls"))
        t->transport = CN_TRANSPORT_TLS;
    else if (str_ieq(u->transport, "tcp"))
        t->transport = CN_TRANSPORT_TCP;
    else if (!u->transport.s || str_ieq(u->transport, "udp"))
        t->transport = CN_TRANSPORT_UDP;
    else {
        *why = "unsupported transport in the next hop's URI";
        return -1;
    }
    sip_str_t where = u->maddr.s && u->maddr.len ? u->maddr : u->host;
    if (!ip_addr(where, (unsigned)port, &t->addr, &t->addrlen)) {
        *why = NO_DNS_YET;
        return -1;
    }
    sip_str_t h = bare_host(u->host);
    if (h.len >= namecap) {
        *why = "next hop's host name too long";
        return -1;
    }
    memcpy(name, h.s, h.len);
    name[h.len] = 0;
    t->tls_name = t->transport == CN_TRANSPORT_TLS ? name : NULL;
    return 0;
}

bool ctl_proxy_request(struct ctl_worker *cw, sip_msg_t *m, const cn_peer_t *from, uint64_t now)
{
    cw->now = now;
    sip_method_t meth = sip_msg_method(m);
    char key[TXN_KEY_MAX];
    int klen;
    struct ctl_txn *t;
    if (meth == SIP_METHOD_ACK) { /* for a non-2xx we relayed: ours, hop by hop */
        klen = ctl_txn_key(m, key, sizeof key, true);
        t = klen > 0 ? ctl_txn_find(cw, key, (size_t)klen) : NULL;
        if (t && t->proxied) {
            ctl_txn_ack(cw, t, now);
            sip_msg_free(m);
            return true;
        }
    } else {
        klen = ctl_txn_key(m, key, sizeof key, false);
        t = klen > 0 ? ctl_txn_find(cw, key, (size_t)klen) : NULL;
        if (t && t->proxied) { /* a retransmission */
            cstat_add(&cw->stats->retransmissions_absorbed, 1);
            ctl_txn_retransmit(cw, t);
            sip_msg_free(m);
            return true;
        }
        if (meth == SIP_METHOD_CANCEL) {
            klen = ctl_txn_key(m, key, sizeof key, true);
            t = klen > 0 ? ctl_txn_find(cw, key, (size_t)klen) : NULL;
            if (t && t->proxied && t->is_invite) {
                handle_cancel(cw, t, m, from);
                return true;
            }
        }
    }
    /* loose routing: a Route naming us at the top */
    size_t k = routes_naming_us(cw, m);
    if (k == 0)
        return false;
    /* A new request that carries a route set beyond us was not routed by our
     * Record-Route: following it would make the node an open relay. Only a peer
     * that proved itself with a verified client certificate (a cluster node, a
     * federated edge over mutual TLS), or a node configured to trust preloaded
     * routes, may steer us that way. */
    if (!sip_msg_to_tag(m).s && k < sip_msg_route_count(m) &&
        !cw->conf->accept_preloaded_routes &&
        !ctl_peer_cert(cw, NULL, from)) {
        if (meth != SIP_METHOD_ACK)
            stateless_reply(cw, m, from, 403,
                            "preloaded Route refused: not from a verified TLS peer", NULL);
        sip_msg_free(m);
        return true;
    }
    sip_uri_t next;
    if (k < sip_msg_route_count(m)) {
        if (sip_msg_route(m, k, &next) != 0) {
            if (meth != SIP_METHOD_ACK)
                stateless_reply(cw, m, from, 416, "next Route is not a SIP URI", NULL);
            sip_msg_free(m);
            return true;
        }
    } else {
        if (sip_msg_ruri(m, &next) != 0)
            return false;
        if (ctl_proxy_names_us(cw, &next) || our_domain(cw, next.host))
            return false; /* ours: the user agent takes it */
    }
    struct ctl_target target;
    char name[256];
    const char *why = NULL;
    if (target_of(&next, &target, name, sizeof name, &why) != 0) {
        if (meth != SIP_METHOD_ACK)
            stateless_reply(cw, m, from, 503, why, NULL);
        else
            cn_log(CN_LOG_INFO, "proxy_ack_dropped", "worker=%u reason=\"%s\"", cw->id, why);
        sip_msg_free(m);
        return true;
    }
    struct ctl_proxy_opts opts = {.record_route =
                                      !sip_msg_to_tag(m).s &&
                                      (meth == SIP_METHOD_INVITE || meth == SIP_METHOD_SUBSCRIBE)};
    ctl_proxy_forward(cw, NULL, m, from, &target, 1, &opts);
    return true;
}

bool ctl_proxy_response(struct ctl_worker *cw, sip_msg_t *m, uint64_t now)
{
    cw->now = now;
    if (!ctl_ctxn_on_response(cw, m))
        return false;
    sip_msg_free(m);
    return true;
}

void ctl_proxy_conn_event(struct ctl_worker *cw, const cn_peer_t *peer, ctl_conn_event_t ev,
                          const char *reason, uint64_t now)
{
    cw->now = now;
    ctl_ctxn_on_conn_event(cw, peer, ev, reason);
}

int ctl_proxy_init(struct ctl_worker *cw)
{
    cw->px = calloc(1, sizeof *cw->px);
    if (!cw->px || ctl_ctxn_init(cw) != 0) {
        free(cw->px);
        cw->px = NULL;
        return -1;
    }
    return 0;
}

void ctl_proxy_fini(struct ctl_worker *cw)
{
    if (!cw->px)
        return;
    while (cw->px->pxys) {
        struct ctl_pxy *p = cw->px->pxys;
        report(p, CTL_PROXY_EV_DONE, p->n, 0, "worker stopped", NULL);
        px_free(cw, p);
    }
    ctl_ctxn_fini(cw);
    free(cw->px);
    cw->px = NULL;
}

unsigned ctl_proxy_count(const struct ctl_worker *cw)
{
    return cw->px ? cw->px->n_pxy : 0;
}
