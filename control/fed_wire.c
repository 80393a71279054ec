/* Federation routing in the node: see fed_wire.h. */
#include "fed_wire.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn_log.h"
#include "ctl_internal.h"
#include "ctl_msg.h"
#include "ctl_proxy.h"
#include "fed_cert.h"
#include "fed_diag.h"

struct fed_wire {
    struct fed_wire_conf conf;
    char diag_source[FED_NAME_BUF];
    char trusted[FED_WIRE_MAX_TRUSTED][64];
    size_t n_trusted;
    char names[FED_WIRE_MAX_TRUSTED][FED_NAME_BUF];
    size_t n_names;
};

/* An inbound check's result for one From domain, kept on the worker. */
struct inbound_entry {
    char domain[FED_NAME_BUF];
    uint64_t expires;
    int status; /* 0: the SRV targets below; else the refusal to answer */
    int diag_code;
    char diag[FED_ROUTE_DIAG_BUF];
    char detail[160];
    size_t n_hosts;
    char hosts[CTL_LOC_MAX_DESTS][FED_NAME_BUF];
};

struct fed_wire_worker {
    struct fed_route_result res; /* too large for the stack of every request */
    struct inbound_entry cache[FED_WIRE_INBOUND_CACHE_MAX];
    size_t n_cache;
};

int fed_wire_attach(struct ctl_shared *sh, const struct fed_wire_conf *conf)
{
    struct fed_wire *fw = calloc(1, sizeof *fw);
    if (!fw)
        return -1;
    fw->conf = *conf;
    if (conf->diag_source) {
        snprintf(fw->diag_source, sizeof fw->diag_source, "%s", conf->diag_source);
        fw->conf.diag_source = fw->diag_source;
    }
    fw->conf.trusted_addrs = NULL;
    fw->conf.n_trusted = 0;
    for (size_t i = 0; i < conf->n_trusted && fw->n_trusted < FED_WIRE_MAX_TRUSTED; i++)
        if (conf->trusted_addrs[i] && conf->trusted_addrs[i][0])
            snprintf(fw->trusted[fw->n_trusted++], sizeof fw->trusted[0], "%s",
                     conf->trusted_addrs[i]);
    fw->conf.trusted_names = NULL;
    fw->conf.n_trusted_names = 0;
    for (size_t i = 0; i < conf->n_trusted_names && fw->n_names < FED_WIRE_MAX_TRUSTED; i++)
        if (conf->trusted_names[i] && conf->trusted_names[i][0])
            snprintf(fw->names[fw->n_names++], sizeof fw->names[0], "%s",
                     conf->trusted_names[i]);
    if (!fw->conf.inbound_cache_s)
        fw->conf.inbound_cache_s = FED_WIRE_INBOUND_CACHE_S;
    free(sh->fed);
    sh->fed = fw;
    return 0;
}

void fed_wire_detach(struct ctl_shared *sh)
{
    if (!sh)
        return;
    free(sh->fed);
    sh->fed = NULL;
}

void fed_wire_worker_free(struct ctl_worker *cw)
{
    if (!cw)
        return;
    free(cw->fw);
    cw->fw = NULL;
}

static struct fed_wire_worker *worker_state(struct ctl_worker *cw)
{
    if (!cw->fw)
        cw->fw = calloc(1, sizeof *cw->fw);
    return cw->fw;
}

/* ---- what is ours --------------------------------------------------------------- */

static bool str_is(sip_str_t a, const char *b)
{
    size_t n = strlen(b);
    if (a.len > 0 && a.s[a.len - 1] == '.')
        a.len--;
    return a.s && a.len == n && n > 0 && strncasecmp(a.s, b, n) == 0;
}

bool fed_wire_host_is_ours(const struct ctl_shared *sh, sip_str_t host)
{
    if (!host.s || host.len == 0 || fed_name_is_ip_literal(host.s, host.len) ||
        host.s[0] == '[')
        return true;
    if (str_is(host, sh->conf->domain) || str_is(host, sh->listen.host))
        return true;
    for (size_t i = 0; i < sh->n_vmrs; i++)
        if (str_is(host, sh->vmrs[i].domain))
            return true;
    return false;
}

/* ---- answers -------------------------------------------------------------------- */

static void make_tag(struct ctl_worker *cw, char out[TAG_LEN + 1])
{
    uint64_t x = ++cw->tag_seq ^ cw->tag_key ^ 0x6665645f77697265ull;
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    snprintf(out, TAG_LEN + 1, "cn%02x%016llx", cw->id & 0xff, (unsigned long long)x);
}

/* Answers t with status, an ms-diagnostics header (diag may be "" or NULL) and a
 * Warning saying why. */
static void answer(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *req, int status,
                   const char *diag, const char *why)
{
    char extra[1024], clean[200];
    size_t j = 0;
    for (size_t i = 0; why && why[i] && j < sizeof clean - 1; i++) {
        unsigned char ch = (unsigned char)why[i];
        clean[j++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) ? ' ' : (char)ch;
    }
    clean[j] = 0;
    const char *agent = cw->conf->node_name[0] ? cw->conf->node_name : "confnode";
    int k = snprintf(extra, sizeof extra, "Warning: 399 %s \"%s\"\r\n", agent, clean);
    if (diag && diag[0] && k > 0 && (size_t)k < sizeof extra)
        snprintf(extra + k, sizeof extra - (size_t)k, "%s: %s\r\n", FED_DIAG_HEADER, diag);
    char tag[TAG_LEN + 1];
    make_tag(cw, tag);
    ssize_t n = sip_msg_build_response(req, status, sip_msg_phrase(status),
                                       sip_msg_to_tag(req).s ? NULL : tag, extra, NULL, NULL, 0,
                                       cw->out, sizeof cw->out);
    if (n > 0)
        ctl_txn_respond(cw, t, status, cw->out, (size_t)n, cw->now);
    else
        ctl_txn_destroy(cw, t);
}

static void trying(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *m)
{
    if (sip_msg_method(m) != SIP_METHOD_INVITE)
        return;
    ssize_t n = sip_msg_build_response(m, 100, sip_msg_phrase(100), NULL, NULL, NULL, NULL, 0,
                                       cw->out, sizeof cw->out);
    if (n > 0)
        ctl_txn_respond(cw, t, 100, cw->out, (size_t)n, cw->now);
}

/* ---- search history ------------------------------------------------------------- */

static struct fed_history_ring *ring_of(struct ctl_worker *cw)
{
    const struct fed_wire *fw = cw->sh->fed;
    return fw && fw->conf.history ? fed_history_ring(fw->conf.history, cw->id) : NULL;
}

static uint64_t hist_begin(struct ctl_worker *cw, const sip_msg_t *m, const cn_peer_t *from,
                           const char *zone)
{
    struct fed_history_ring *ring = ring_of(cw);
    if (!ring)
        return 0;
    char addr[80];
    ctl_addr_str(&from->addr, addr, sizeof addr);
    sip_str_t cid = sip_msg_call_id(m), meth = sip_msg_method_name(m);
    sip_str_t fr = sip_msg_header(m, "From"), to = sip_msg_ruri_text(m);
    struct fed_history_start s = {
        .call_id = {cid.s, cid.len},
        .method = {meth.s, meth.len},
        .from = {fr.s, fr.len},
        .to = {to.s, to.len},
        .source_zone = FED_HIST_CSTR(zone),
        .source_addr = FED_HIST_CSTR(addr),
    };
    return fed_history_begin(ring, &s);
}

static void hist_outcome(struct ctl_worker *cw, uint64_t id, int status, int code,
                         const char *detail)
{
    struct fed_history_ring *ring = ring_of(cw);
    if (ring && id)
        fed_history_set_outcome(ring, id, status, code, code ? fed_diag_reason(code) : NULL,
                                detail);
}

/* ---- forwarding ------------------------------------------------------------------ */

struct report_ctx {
    struct ctl_worker *cw;
    uint64_t hist_id;
    char zones[CTL_PROXY_MAX_TARGETS][FED_ZONE_NAME_BUF];
};

static int diag_code_of(const char *diag)
{
    struct fed_diag_parsed p;
    if (!diag || fed_diag_parse(diag, strlen(diag), &p) == FED_DIAG_ERR_SYNTAX)
        return 0;
    return p.code;
}

static void on_report(void *arg, const struct ctl_proxy_event *ev)
{
    struct report_ctx *rc = arg;
    struct fed_history_ring *ring = ring_of(rc->cw);
    char line[FED_HIST_TEXT];
    switch (ev->kind) {
    case CTL_PROXY_EV_TRY:
        if (ring && ev->target < CTL_PROXY_MAX_TARGETS)
            fed_history_set_zone(ring, rc->hist_id, rc->zones[ev->target]);
        break;
    case CTL_PROXY_EV_FAILED: {
        int code = diag_code_of(ev->diag);
        const char *tn = ev->where && ev->where->tls_name ? ev->where->tls_name : "target";
        if (code)
            snprintf(line, sizeof line, "%s: %s (ms-diagnostics %d)", tn,
                     ev->reason ? ev->reason : "failed", code);
        else
            snprintf(line, sizeof line, "%s: %s", tn, ev->reason ? ev->reason : "failed");
        if (ring)
            fed_history_add_cert(ring, rc->hist_id, line);
        break;
    }
    case CTL_PROXY_EV_RESPONSE:
        break;
    case CTL_PROXY_EV_DONE: {
        int code = diag_code_of(ev->diag);
        hist_outcome(rc->cw, rc->hist_id, ev->status, code, ev->reason);
        free(rc);
        break;
    }
    }
}

static socklen_t make_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        return sizeof *a4;
    }
    if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        return sizeof *a6;
    }
    return 0;
}

static cn_transport_t cn_tp(fed_transport_t tp)
{
    return tp == FED_TP_TLS ? CN_TRANSPORT_TLS : tp == FED_TP_TCP ? CN_TRANSPORT_TCP
                                                                  : CN_TRANSPORT_UDP;
}

/* Forwards m (taken) within t to dests[0..n) of the given route targets. */
static void forward(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m, uint64_t hist_id,
                    const struct fed_route_target *targets, const struct ctl_loc_dest *dests,
                    size_t n)
{
    struct ctl_target to[CTL_PROXY_MAX_TARGETS];
    char ruris[CTL_PROXY_MAX_TARGETS][FED_ALIAS_BUF + 8];
    const char *rp[CTL_PROXY_MAX_TARGETS];
    struct report_ctx *rc = calloc(1, sizeof *rc);
    size_t k = 0;
    for (size_t i = 0; i < n && k < CTL_PROXY_MAX_TARGETS; i++) {
        const struct fed_route_target *rt = &targets[dests[i].target];
        memset(&to[k], 0, sizeof to[k]);
        to[k].addrlen = make_addr(&to[k].addr, dests[i].addr, dests[i].port);
        if (!to[k].addrlen)
            continue;
        to[k].transport = cn_tp((fed_transport_t)dests[i].transport);
        to[k].tls_name = dests[i].host[0] && to[k].transport == CN_TRANSPORT_TLS
                             ? dests[i].host
                             : NULL;
        snprintf(ruris[k], sizeof ruris[k], "sip:%s", rt->alias);
        rp[k] = ruris[k];
        if (rc)
            snprintf(rc->zones[k], sizeof rc->zones[k], "%s", rt->zone);
        k++;
    }
    if (rc) {
        rc->cw = cw;
        rc->hist_id = hist_id;
    }
    const struct fed_wire *fw = cw->sh->fed;
    sip_method_t meth = sip_msg_method(m);
    struct ctl_proxy_opts opts = {
        .target_ruris = rp,
        .record_route = meth == SIP_METHOD_INVITE || meth == SIP_METHOD_SUBSCRIBE,
        .diag_source = fw->conf.diag_source,
        .report = rc ? on_report : NULL,
        .report_arg = rc,
    };
    ctl_proxy_forward(cw, t, m, &t->peer, to, k, &opts);
}

/* The route targets' IP-literal addresses, when no target needs DNS. Returns the
 * number of destinations, or -1 when some target needs the control thread. */
static long literal_dests(const struct fed_route_result *res, struct ctl_loc_dest *out)
{
    size_t n = 0;
    for (size_t i = 0; i < res->n_targets; i++) {
        const struct fed_route_target *t = &res->targets[i];
        if (t->kind == FED_ZONE_KIND_LOCAL)
            continue;
        if (t->kind == FED_ZONE_KIND_DNS)
            return -1;
        for (size_t a = 0; a < t->n_addrs; a++) {
            struct fed_locate_opts steps[4];
            if (fed_route_locate_plan(t, a, steps, 4) > 0)
                return -1;
            if (!t->addrs[a].is_ip || n == CTL_LOC_MAX_DESTS ||
                !fed_route_transport_allowed(t, t->transport))
                continue;
            struct ctl_loc_dest *d = &out[n++];
            memset(d, 0, sizeof *d);
            snprintf(d->addr, sizeof d->addr, "%.45s", t->addrs[a].host);
            d->port = t->addrs[a].port ? t->addrs[a].port
                                        : (t->transport == FED_TP_TLS ? 5061 : 5060);
            d->transport = (uint8_t)t->transport;
            d->target = (uint8_t)i;
        }
    }
    return (long)n;
}

/* Parks m in t and asks the control thread. Returns false when it could not. */
static bool post_locate(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m,
                        struct ctl_msg_locate *q)
{
    q->hdr.kind = CTL_MSG_LOCATE;
    memcpy(q->txn_key, t->key, t->key_len);
    q->txn_key_len = t->key_len;
    if (!cw->io.to_control || cw->io.to_control(cw->io.io, q) != 0)
        return false;
    trying(cw, t, m);
    t->pending = m;
    return true;
}

/* The search rules' decision for m, in the worker's result; NULL when out of memory. */
static struct fed_route_result *decide(struct ctl_worker *cw, const sip_msg_t *m,
                                       const char *source_zone, fed_arrival_t arrival)
{
    const struct fed_wire *fw = cw->sh->fed;
    struct fed_wire_worker *ws = worker_state(cw);
    if (!ws)
        return NULL;
    struct fed_route_result *res = &ws->res;
    sip_str_t meth = sip_msg_method_name(m), ruri = sip_msg_ruri_text(m);
    sip_str_t fd = sip_msg_from_host(m);
    struct fed_route_request req = {
        .method = meth.s,
        .method_len = meth.len,
        .type = FED_REQ_AUTO,
        .source_zone = source_zone,
        .ruri = ruri.s,
        .ruri_len = ruri.len,
        .from_domain = fd.s,
        .from_domain_len = fd.len,
        .in_dialog = false,
        .arrival = arrival,
        .worker = cw->id,
    };
    fed_route_decide(fw->conf.router, &req, res);
    return res;
}

/* Routes m by the decision res (NULL: out of memory). */
static void route(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m,
                  const char *source_zone, struct fed_route_result *res)
{
    if (!res) {
        answer(cw, t, m, 503, NULL, "Out of memory");
        sip_msg_free(m);
        return;
    }
    uint64_t hid = hist_begin(cw, m, &t->peer, res->source_zone ? res->source_zone : source_zone);
    struct fed_history_ring *ring = ring_of(cw);
    if (ring && hid)
        fed_history_set_decision(ring, hid, res);
    cn_log(CN_LOG_INFO, "fed_route", "worker=%u status=%s alias=\"%s\" targets=%zu detail=\"%s\"",
           cw->id, fed_route_status_str(res->status), res->alias, res->n_targets, res->detail);
    if (res->status != FED_ROUTE_OK) {
        int st = res->sip_status ? res->sip_status : 500;
        answer(cw, t, m, st, res->diag, res->detail);
        if (res->status == FED_ROUTE_ERR_ARG)
            hist_outcome(cw, hid, st, 0, res->detail);
        sip_msg_free(m);
        return;
    }
    struct ctl_loc_dest dests[CTL_LOC_MAX_DESTS];
    long nd = literal_dests(res, dests);
    if (nd > 0) {
        trying(cw, t, m);
        forward(cw, t, m, hid, res->targets, dests, (size_t)nd);
        return;
    }
    if (nd == 0) {
        answer(cw, t, m, 404, NULL, "No usable address for the route's targets");
        hist_outcome(cw, hid, 404, 0, "no usable address for the route's targets");
        sip_msg_free(m);
        return;
    }
    struct ctl_msg_locate *q = calloc(1, sizeof *q);
    if (q) {
        q->hist_id = hid;
        q->n_targets = res->n_targets;
        memcpy(q->targets, res->targets, res->n_targets * sizeof res->targets[0]);
    }
    if (!q || !post_locate(cw, t, m, q)) {
        free(q);
        answer(cw, t, m, 503, NULL, "Name resolution is not available now");
        hist_outcome(cw, hid, 503, 0, "the control thread could not be asked");
        sip_msg_free(m);
    }
}

/* ---- inbound check ---------------------------------------------------------------- */

static struct inbound_entry *cache_find(struct ctl_worker *cw, const char *domain)
{
    struct fed_wire_worker *ws = cw->fw;
    if (!ws)
        return NULL;
    for (size_t i = 0; i < ws->n_cache; i++)
        if (strcasecmp(ws->cache[i].domain, domain) == 0)
            return ws->cache[i].expires > cw->now ? &ws->cache[i] : NULL;
    return NULL;
}

static struct inbound_entry *cache_slot(struct ctl_worker *cw, const char *domain)
{
    struct fed_wire_worker *ws = worker_state(cw);
    if (!ws)
        return NULL;
    size_t oldest = 0;
    for (size_t i = 0; i < ws->n_cache; i++) {
        if (strcasecmp(ws->cache[i].domain, domain) == 0)
            return &ws->cache[i];
        if (ws->cache[i].expires < ws->cache[oldest].expires)
            oldest = i;
    }
    if (ws->n_cache < FED_WIRE_INBOUND_CACHE_MAX)
        return &ws->cache[ws->n_cache++];
    return &ws->cache[oldest];
}

/* Judges the peer of t against a cached SRV result. Returns 0 when it passes, else
 * answers and records the refusal (m is then freed). */
static int inbound_judge(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m,
                         const struct inbound_entry *e)
{
    int status = e->status, code = e->diag_code;
    char diag[FED_ROUTE_DIAG_BUF], detail[260];
    snprintf(diag, sizeof diag, "%s", e->diag);
    snprintf(detail, sizeof detail, "%s", e->detail);
    char cert_line[FED_HIST_TEXT] = "";
    if (status == 0) {
        X509 *cert = ctl_peer_cert(cw, t, &t->peer);
        for (size_t i = 0; cert && i < e->n_hosts; i++) {
            fed_cert_match_t mt = fed_cert_match_name(cert, e->hosts[i], FED_NAME_NUL);
            if (mt != FED_CERT_MATCH_NONE)
                return 0;
        }
        char peer[80];
        ctl_addr_str(&t->peer.addr, peer, sizeof peer);
        const char *target = e->n_hosts ? e->hosts[0] : e->domain;
        struct fed_diag_param prm[4] = {
            {"ErrorType", cert ? FED_DIAG_ERRTYPE_NO_FQDN : "The peer sent no certificate"},
            {"tls-target", target},
            {"PeerServer", peer},
            {"source", cw->sh->fed->conf.diag_source ? cw->sh->fed->conf.diag_source : ""},
        };
        status = 504;
        code = FED_DIAG_CERT_TRUST;
        fed_diag_build(diag, sizeof diag, code, NULL, prm, cw->sh->fed->conf.diag_source ? 4 : 3);
        snprintf(detail, sizeof detail,
                 "inbound from %.60s: the peer certificate does not carry %.40s, the SRV "
                 "target of _sipfederationtls._tcp.%.30s",
                 peer, target, e->domain);
        snprintf(cert_line, sizeof cert_line, "%.120s: %s", target,
                 cert ? "not in the peer certificate" : "no peer certificate");
    }
    uint64_t hid = hist_begin(cw, m, &t->peer, FED_ZONE_DNS);
    struct fed_history_ring *ring = ring_of(cw);
    if (ring && hid && cert_line[0])
        fed_history_add_cert(ring, hid, cert_line);
    cn_log(CN_LOG_INFO, "fed_inbound_refused", "worker=%u domain=%s status=%d code=%d", cw->id,
           e->domain, status, code);
    answer(cw, t, m, status, diag, detail);
    hist_outcome(cw, hid, status, code, detail);
    sip_msg_free(m);
    return -1;
}

/* A Request-URI user@domain of one of our domains (not an IP literal) that is not a
 * room: a user of the domain, whom the search rules may send to a neighbour zone. */
static bool is_local_user(const struct ctl_shared *sh, const sip_msg_t *m)
{
    sip_str_t user = sip_msg_ruri_user(m), host = sip_msg_ruri_host(m);
    return user.s && user.len && host.s && host.len && host.s[0] != '[' &&
           !fed_name_is_ip_literal(host.s, host.len) && !ctl_vmr_find(sh, user, host);
}

/* Keeps the targets of res that can reach a local user: neighbour zones and static
 * routes (a DNS target would lead back here; the local zone holds rooms only).
 * Returns false when none is left or res is no route. */
static bool keep_user_targets(struct fed_route_result *res)
{
    if (!res || res->status != FED_ROUTE_OK)
        return false;
    size_t k = 0;
    for (size_t i = 0; i < res->n_targets; i++)
        if (res->targets[i].kind == FED_ZONE_KIND_NEIGHBOUR ||
            res->targets[i].kind == FED_ZONE_KIND_STATIC)
            res->targets[k++] = res->targets[i];
    res->n_targets = k;
    return k > 0;
}

/* The From (or P-Asserted-Identity) domain into out; false when there is none. */
static bool from_domain(const sip_msg_t *m, char *out, size_t cap)
{
    sip_str_t h = sip_msg_from_host(m);
    sip_str_t pai = sip_msg_header(m, "P-Asserted-Identity");
    if (pai.s && pai.len) { /* <sip:user@host;...> or sip:user@host */
        const char *at = memchr(pai.s, '@', pai.len);
        if (at) {
            size_t off = (size_t)(at + 1 - pai.s), k = off;
            while (k < pai.len && pai.s[k] != '>' && pai.s[k] != ';' && pai.s[k] != ':' &&
                   pai.s[k] != ' ')
                k++;
            h = (sip_str_t){pai.s + off, k - off};
        }
    }
    if (!h.s || h.len == 0 || h.len >= cap)
        return false;
    memcpy(out, h.s, h.len);
    out[h.len] = 0;
    return true;
}

/* ---- entry points ------------------------------------------------------------------ */

bool fed_wire_request(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m)
{
    const struct fed_wire *fw = cw->sh->fed;
    if (!fw || !fw->conf.router || sip_msg_to_tag(m).s)
        return false;
    sip_method_t meth = sip_msg_method(m);
    if (meth == SIP_METHOD_ACK || meth == SIP_METHOD_CANCEL || meth == SIP_METHOD_BYE)
        return false;
    char ip[64] = "";
    const struct sockaddr_storage *pa = &t->peer.addr;
    if (!inet_ntop(pa->ss_family,
                   pa->ss_family == AF_INET6
                       ? (const void *)&((const struct sockaddr_in6 *)pa)->sin6_addr
                       : (const void *)&((const struct sockaddr_in *)pa)->sin_addr,
                   ip, sizeof ip))
        ip[0] = 0;
    bool trusted = false;
    for (size_t i = 0; i < fw->n_trusted && ip[0]; i++)
        trusted = trusted || strcmp(fw->trusted[i], ip) == 0;
    if (!trusted && fw->n_names && t->peer.transport == CN_TRANSPORT_TLS) {
        X509 *pc = ctl_peer_cert(cw, t, &t->peer);
        for (size_t i = 0; pc && i < fw->n_names && !trusted; i++)
            trusted = fed_cert_match_name(pc, fw->names[i], FED_NAME_NUL) != FED_CERT_MATCH_NONE;
    }
    char dom[FED_NAME_BUF];
    bool federated_from = from_domain(m, dom, sizeof dom) &&
                          !fed_wire_host_is_ours(cw->sh, (sip_str_t){dom, strlen(dom)});
    if (fw->conf.inbound_check && federated_from && !trusted && t->peer.transport == CN_TRANSPORT_TLS) {
        const struct inbound_entry *e = cache_find(cw, dom);
        if (!e) {
            struct ctl_msg_locate *q = calloc(1, sizeof *q);
            if (q) {
                q->inbound = 1;
                snprintf(q->domain, sizeof q->domain, "%s", dom);
            }
            if (q && post_locate(cw, t, m, q))
                return true;
            free(q);
            answer(cw, t, m, 503, NULL, "Name resolution is not available now");
            sip_msg_free(m);
            return true;
        }
        if (inbound_judge(cw, t, m, e) != 0)
            return true;
    }
    bool for_us = fed_wire_host_is_ours(cw->sh, sip_msg_ruri_host(m));
    if (for_us && !is_local_user(cw->sh, m))
        return false;
    const char *zone = federated_from ? FED_ZONE_DNS : FED_ZONE_LOCAL;
    if (ip[0]) {
        const char *nz = fed_router_zone_for_address(fw->conf.router, ip);
        if (nz)
            zone = nz;
    }
    fed_arrival_t arrival = t->peer.transport == CN_TRANSPORT_UDP   ? FED_ARRIVAL_UDP
                            : t->peer.transport == CN_TRANSPORT_TCP ? FED_ARRIVAL_TCP
                                                                    : FED_ARRIVAL_TLS;
    if (arrival == FED_ARRIVAL_TLS && ctl_peer_cert(cw, t, &t->peer))
        arrival = FED_ARRIVAL_MTLS;
    struct fed_route_result *res = decide(cw, m, zone, arrival);
    if (for_us && !(res && keep_user_targets(res)))
        return false;
    route(cw, t, m, zone, res);
    return true;
}

void fed_wire_located(struct ctl_worker *cw, const struct ctl_msg_locate *a)
{
    struct ctl_txn *t = ctl_txn_find(cw, a->txn_key, a->txn_key_len);
    if (!t || !t->pending || (t->is_invite && t->state != TXN_PROCEEDING)) {
        hist_outcome(cw, a->hist_id, 0, 0, "the request ended while its targets were located");
        return;
    }
    sip_msg_t *m = t->pending;
    t->pending = NULL;
    struct fed_history_ring *ring = ring_of(cw);
    if (a->inbound) {
        struct inbound_entry *e = cache_slot(cw, a->domain);
        if (!e) {
            answer(cw, t, m, 503, NULL, "Out of memory");
            sip_msg_free(m);
            return;
        }
        memset(e, 0, sizeof *e);
        snprintf(e->domain, sizeof e->domain, "%s", a->domain);
        /* kept as long as the SRV answer it rests on (capped by inbound_cache_s); a
         * refusal for at most 30 s, so a fixed DNS record is seen again soon */
        uint32_t ttl = cw->sh->fed->conf.inbound_cache_s;
        if (a->status)
            ttl = ttl < 30 ? ttl : 30;
        else if (a->ttl_s < ttl)
            ttl = a->ttl_s;
        e->expires = cw->now + (uint64_t)ttl * 1000u;
        e->status = a->status;
        e->diag_code = a->diag_code;
        snprintf(e->diag, sizeof e->diag, "%s", a->diag);
        snprintf(e->detail, sizeof e->detail, "%s", a->detail);
        for (size_t i = 0; i < a->n_dests && e->n_hosts < CTL_LOC_MAX_DESTS; i++)
            snprintf(e->hosts[e->n_hosts++], FED_NAME_BUF, "%s", a->dests[i].host);
        if (inbound_judge(cw, t, m, e) != 0)
            return;
        /* the peer passed: the request goes on as if it had just arrived, with the
         * peer certificate it came with (the connection may be another worker's) */
        cn_peer_t peer = t->peer;
        struct x509_st *cert = t->cert, *outer = cw->cur_cert;
        t->cert = NULL;
        ctl_txn_destroy(cw, t);
        cw->cur_cert = cert;
        ctl_uas_request(cw, m, &peer, cw->now);
        cw->cur_cert = outer;
        X509_free(cert);
        return;
    }
    for (size_t i = 0; ring && a->hist_id && i < a->n_lines; i++)
        fed_history_add_dns(ring, a->hist_id, a->lines[i]);
    if (a->status != 0 || a->n_dests == 0) {
        int st = a->status ? a->status : 504;
        answer(cw, t, m, st, a->diag, a->detail);
        hist_outcome(cw, a->hist_id, st, a->diag_code, a->detail);
        sip_msg_free(m);
        return;
    }
    forward(cw, t, m, a->hist_id, a->targets, a->dests, a->n_dests);
}

/* ---- the control thread ------------------------------------------------------------ */

enum { FAIL_NONE, FAIL_DOWN, FAIL_DNS, FAIL_NO_SRV, FAIL_NO_ADDRESS, FAIL_STRICT };

struct loc_job {
    fed_dns_t *dns;
    struct ctl_msg_locate *q;
    void (*done)(void *arg, struct ctl_msg_locate *q);
    void *arg;
    size_t ti, ai, si, n_steps;
    bool planned;
    bool waiting, advancing;
    struct fed_locate_opts steps[4];
    int fail;
    char fail_domain[FED_NAME_BUF];
    char fail_target[FED_NAME_BUF + 8];
    char fail_detail[160];
};

static void add_line(struct ctl_msg_locate *q, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_line(struct ctl_msg_locate *q, const char *fmt, ...)
{
    if (q->n_lines >= CTL_LOC_MAX_LINES)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->lines[q->n_lines++], CTL_LOC_LINE, fmt, ap);
    va_end(ap);
}

static void add_dest(struct ctl_msg_locate *q, const char *host, const char *addr, uint16_t port,
                     fed_transport_t tp, size_t target)
{
    if (q->n_dests >= CTL_LOC_MAX_DESTS)
        return;
    struct ctl_loc_dest *d = &q->dests[q->n_dests++];
    snprintf(d->host, sizeof d->host, "%s", host);
    snprintf(d->addr, sizeof d->addr, "%.*s", (int)sizeof d->addr - 1, addr); /* IP literal */
    d->port = port;
    d->transport = (uint8_t)tp;
    d->target = (uint8_t)target;
}

static void finish(struct loc_job *j)
{
    struct ctl_msg_locate *q = j->q;
    q->hdr.kind = CTL_MSG_LOCATED;
    if (q->n_dests == 0 && q->status == 0) {
        struct fed_diag_param prm[2];
        size_t n = 0;
        int code;
        prm[n++] = (struct fed_diag_param){"domain", j->fail_domain};
        if (j->fail == FAIL_STRICT) {
            code = FED_DIAG_DNS_SRV_NO_MATCH;
            prm[n++] = (struct fed_diag_param){"fqdn1", j->fail_target};
        } else if (j->fail == FAIL_DOWN) {
            code = CTL_DIAG_CONNECT_FAILED;
        } else {
            code = FED_DIAG_DNS_SRV_UNRESOLVED;
        }
        q->status = 504;
        q->diag_code = code;
        fed_diag_build(q->diag, sizeof q->diag, code,
                       code == CTL_DIAG_CONNECT_FAILED ? CTL_DIAG_CONNECT_REASON : NULL, prm, n);
        snprintf(q->detail, sizeof q->detail, "%s",
                 j->fail_detail[0] ? j->fail_detail : "no destination found");
    }
    void (*done)(void *, struct ctl_msg_locate *) = j->done;
    void *arg = j->arg;
    free(j);
    done(arg, q);
}

static void note_fail(struct loc_job *j, int kind, const char *domain, const char *target,
                      uint16_t port, const char *detail)
{
    if (kind < j->fail)
        return;
    j->fail = kind;
    snprintf(j->fail_domain, sizeof j->fail_domain, "%s", domain);
    if (target)
        snprintf(j->fail_target, sizeof j->fail_target, "%s:%u", target, port);
    snprintf(j->fail_detail, sizeof j->fail_detail, "%s", detail);
}

static const struct fed_route_target *cur_target(struct loc_job *j)
{
    return j->q->inbound ? NULL : &j->q->targets[j->ti];
}

static void on_located(void *arg, const struct fed_location *loc)
{
    struct loc_job *j = arg;
    struct ctl_msg_locate *q = j->q;
    const struct fed_route_target *t = cur_target(j);
    for (size_t i = 0; i < loc->n_srv; i++)
        add_line(q, "%s SRV %u %u %u %s", loc->srv_name, loc->srv[i].priority,
                 loc->srv[i].weight, loc->srv[i].port, loc->srv[i].target);
    for (size_t i = 0; i < loc->n_refused; i++)
        add_line(q, "%s: %s refused (%s)", loc->domain, loc->refused[i].target,
                 fed_strict_str(loc->refused[i].why));
    bool found = false;
    if (q->inbound) {
        q->ttl_s = loc->srv_ttl;
        for (size_t i = 0; i < loc->n_srv; i++)
            if (loc->srv[i].target[0] &&
                fed_strict_ok(fed_name_strict(loc->domain, FED_NAME_NUL, loc->srv[i].target,
                                              FED_NAME_NUL))) {
                add_dest(q, loc->srv[i].target, "", loc->srv[i].port, FED_TP_TLS, 0);
                found = true;
            }
    } else if (loc->status == FED_LOC_OK) {
        for (size_t i = 0; i < loc->n_dests; i++) {
            const struct fed_dest *d = &loc->dests[i];
            if (!fed_route_transport_allowed(t, d->transport))
                continue;
            add_line(q, "%s %s -> %s:%u %s", d->host, d->addr.family == AF_INET6 ? "AAAA" : "A",
                     d->addr.text, d->port, fed_transport_str(d->transport));
            add_dest(q, d->host, d->addr.text, d->port, d->transport, j->ti);
            found = true;
        }
    }
    if (!found) {
        int kind = loc->status == FED_LOC_STRICT_REFUSED ? FAIL_STRICT
                   : loc->status == FED_LOC_NO_ADDRESS   ? FAIL_NO_ADDRESS
                   : loc->status == FED_LOC_NO_SRV       ? FAIL_NO_SRV
                   : loc->status == FED_LOC_ALL_DOWN     ? FAIL_DOWN
                                                         : FAIL_DNS;
        if (q->inbound && loc->n_refused)
            kind = FAIL_STRICT;
        char detail[160];
        snprintf(detail, sizeof detail, "%.60s: %s%s%.60s", loc->domain,
                 fed_locate_status_str(loc->status), loc->n_refused ? ", refused target " : "",
                 loc->n_refused ? loc->refused[0].target : "");
        add_line(q, "%s", detail);
        note_fail(j, kind, loc->domain, loc->n_refused ? loc->refused[0].target : NULL,
                  loc->n_refused ? loc->refused[0].port : 0, detail);
        j->si++;
    } else if (t && t->kind == FED_ZONE_KIND_DNS) {
        j->ti++; /* the DNS zone's steps are alternatives: the first that gives wins */
        j->ai = 0;
        j->si = 0;
        j->planned = false;
    } else {
        j->ai++;
        j->si = 0;
        j->planned = false;
    }
    j->waiting = false;
}

static void advance(struct loc_job *j);

static void on_located_cb(void *arg, const struct fed_location *loc)
{
    struct loc_job *j = arg;
    on_located(j, loc);
    if (!j->advancing)
        advance(j);
}

static void advance(struct loc_job *j)
{
    struct ctl_msg_locate *q = j->q;
    j->advancing = true;
    for (;;) {
        if (q->inbound) {
            if (j->si > 0 || q->n_dests > 0)
                break;
            struct fed_locate_opts o = {.kind = FED_LOCATE_FEDERATION, .strict_naming = true};
            j->waiting = true;
            fed_dns_locate(j->dns, q->domain, &o, on_located_cb, j);
            if (j->waiting) {
                j->advancing = false;
                return;
            }
            continue;
        }
        if (j->ti >= q->n_targets || q->n_dests >= CTL_LOC_MAX_DESTS)
            break;
        const struct fed_route_target *t = &q->targets[j->ti];
        size_t n_addr = t->kind == FED_ZONE_KIND_DNS ? 1 : t->n_addrs;
        if (t->kind == FED_ZONE_KIND_LOCAL || j->ai >= n_addr) {
            j->ti++;
            j->ai = 0;
            j->si = 0;
            j->planned = false;
            continue;
        }
        if (!j->planned) {
            j->n_steps = fed_route_locate_plan(t, j->ai, j->steps, 4);
            j->planned = true;
            j->si = 0;
            if (j->n_steps == 0) {
                const struct fed_hostport *hp = &t->addrs[j->ai];
                if (t->kind != FED_ZONE_KIND_DNS && hp->is_ip &&
                    fed_route_transport_allowed(t, t->transport))
                    add_dest(q, "", hp->host,
                             hp->port ? hp->port : (t->transport == FED_TP_TLS ? 5061 : 5060),
                             t->transport, j->ti);
                j->ai++;
                j->planned = false;
                continue;
            }
        }
        if (j->si >= j->n_steps) {
            j->ai++;
            j->planned = false;
            continue;
        }
        const char *domain = t->kind == FED_ZONE_KIND_DNS ? t->domain : t->addrs[j->ai].host;
        j->waiting = true;
        fed_dns_locate(j->dns, domain, &j->steps[j->si], on_located_cb, j);
        if (j->waiting) {
            j->advancing = false;
            return;
        }
    }
    j->advancing = false;
    finish(j);
}

void fed_wire_central_locate(fed_dns_t *dns, struct ctl_msg_locate *q,
                             void (*done)(void *arg, struct ctl_msg_locate *q), void *arg)
{
    struct loc_job *j = calloc(1, sizeof *j);
    if (!j || !dns) {
        free(j);
        q->hdr.kind = CTL_MSG_LOCATED;
        q->status = 503;
        snprintf(q->detail, sizeof q->detail, "%s",
                 dns ? "out of memory" : "no DNS resolver on this node");
        done(arg, q);
        return;
    }
    *j = (struct loc_job){.dns = dns, .q = q, .done = done, .arg = arg};
    snprintf(j->fail_domain, sizeof j->fail_domain, "%s",
             q->inbound ? q->domain : (q->n_targets ? q->targets[0].domain : ""));
    advance(j);
}
