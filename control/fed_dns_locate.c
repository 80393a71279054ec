/* Federation DNS: SRV ordering and selection (RFC 2782 or Microsoft order), and
 * locating a federated domain: NAPTR, then SRV, then A/AAAA of the targets, with the
 * fallbacks, strict naming and down-marking that fed_dns.h describes. */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn_time.h"
#include "fed_dns_int.h"

/* ---- SRV selection ------------------------------------------------------------------- */

/* Orders the records recs[idx[0..nidx-1]]; writes record indexes to order. */
static size_t srv_order_idx(const struct fed_dns_srv *recs, const size_t *idx, size_t nidx,
                            fed_srv_mode_t mode, fed_rand_fn rnd, void *rnd_arg, size_t *order,
                            size_t max)
{
    size_t cand[MAX_SRV_RECS];
    size_t nc = 0;
    for (size_t i = 0; i < nidx && nc < MAX_SRV_RECS; i++) {
        if (recs[idx[i]].target[0] != '\0')
            cand[nc++] = idx[i];
    }
    if (nc == 0 || max == 0)
        return 0;
    /* stable sort by priority, zero weights first within a priority (RFC 2782) */
    for (size_t i = 1; i < nc; i++) {
        size_t v = cand[i], j = i;
        while (j > 0) {
            const struct fed_dns_srv *a = &recs[cand[j - 1]], *b = &recs[v];
            bool after = a->priority > b->priority ||
                         (a->priority == b->priority && a->weight != 0 && b->weight == 0);
            if (!after)
                break;
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = v;
    }

    if (mode == FED_SRV_MICROSOFT) {
        uint16_t prio = recs[cand[0]].priority;
        uint16_t best = 0;
        size_t ties[MAX_SRV_RECS], nt = 0;
        for (size_t i = 0; i < nc && recs[cand[i]].priority == prio; i++) {
            uint16_t w = recs[cand[i]].weight;
            if (nt == 0 || w > best) {
                best = w;
                nt = 0;
            }
            if (w == best)
                ties[nt++] = cand[i];
        }
        order[0] = ties[nt > 1 && rnd ? rnd(rnd_arg) % nt : 0];
        return 1;
    }

    size_t out = 0;
    size_t g = 0;
    while (g < nc && out < max) {
        size_t end = g;
        while (end < nc && recs[cand[end]].priority == recs[cand[g]].priority)
            end++;
        /* weighted random selection without replacement within [g, end) */
        while (g < end && out < max) {
            uint64_t sum = 0;
            for (size_t i = g; i < end; i++)
                sum += recs[cand[i]].weight;
            uint64_t r = rnd ? (uint64_t)rnd(rnd_arg) % (sum + 1) : 0;
            size_t pick = g;
            uint64_t run = 0;
            for (size_t i = g; i < end; i++) {
                run += recs[cand[i]].weight;
                if (run >= r) {
                    pick = i;
                    break;
                }
            }
            order[out++] = cand[pick];
            /* remove pick, keeping the rest in order */
            for (size_t i = pick; i > g; i--)
                cand[i] = cand[i - 1];
            g++;
        }
        g = end;
    }
    return out;
}

size_t fed_srv_order(const struct fed_dns_srv *recs, size_t n, fed_srv_mode_t mode, fed_rand_fn rnd,
                     void *rnd_arg, size_t *order, size_t max)
{
    size_t idx[MAX_SRV_RECS];
    if (recs == NULL || order == NULL)
        return 0;
    if (n > MAX_SRV_RECS)
        n = MAX_SRV_RECS;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    return srv_order_idx(recs, idx, n, mode, rnd, rnd_arg, order, max);
}

static uint32_t resolver_rand(void *arg)
{
    return fdns_rand(arg);
}

size_t fed_dns_srv_select(fed_dns_t *dns, const struct fed_dns_answer *srv, fed_transport_t tp,
                          fed_srv_mode_t mode, size_t *order, size_t max)
{
    size_t idx[MAX_SRV_RECS], n = 0;
    if (dns == NULL || srv == NULL || srv->type != FED_DNS_T_SRV || srv->srv == NULL)
        return 0;
    for (size_t i = 0; i < srv->n && n < MAX_SRV_RECS; i++) {
        const struct fed_dns_srv *r = &srv->srv[i];
        if (!fed_dns_is_down(dns, r->target, r->port, tp))
            idx[n++] = i;
    }
    return srv_order_idx(srv->srv, idx, n, mode, resolver_rand, dns, order, max);
}

/* ---- locate ------------------------------------------------------------------------- */

const char *fed_locate_status_str(fed_locate_status_t st)
{
    switch (st) {
    case FED_LOC_OK:
        return "ok";
    case FED_LOC_NO_SRV:
        return "no SRV record";
    case FED_LOC_STRICT_REFUSED:
        return "every SRV target is outside the domain (strict naming)";
    case FED_LOC_NO_ADDRESS:
        return "no address for the targets";
    case FED_LOC_ALL_DOWN:
        return "every destination is marked down";
    case FED_LOC_DNS_ERROR:
        return "DNS lookup failed";
    case FED_LOC_BAD_DOMAIN:
        return "invalid domain";
    case FED_LOC_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

void fdns_locate_free(struct locate *l)
{
    for (size_t t = 0; t < l->n_targets; t++) {
        fed_dns_answer_unref(l->targets[t].ans[0]);
        fed_dns_answer_unref(l->targets[t].ans[1]);
    }
    free(l);
}

static void locate_unlink(struct locate *l)
{
    for (struct locate **pp = &l->dns->locates; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            return;
        }
    }
}

void fdns_locate_finish(struct locate *l, fed_locate_status_t st)
{
    l->loc.status = st;
    locate_unlink(l);
    l->cb(l->arg, &l->loc);
    fdns_locate_free(l);
}

static void note_dns_error(struct locate *l, fed_dns_status_t st)
{
    if (st < 0 && st != FED_DNS_ERR_CANCELLED && l->loc.dns_status == FED_DNS_OK)
        l->loc.dns_status = st;
}

static void add_target(struct locate *l, const char *host, uint16_t port, fed_transport_t tp,
                       uint16_t prio, uint16_t weight, bool fallback)
{
    if (l->n_targets >= LOC_MAX_TARGETS)
        return;
    struct loc_target *t = &l->targets[l->n_targets++];
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "%s", host);
    t->port = port;
    t->tp = tp;
    t->priority = prio;
    t->weight = weight;
    t->fallback = fallback;
}

static void addr_assemble(struct locate *l)
{
    bool any_addr = false, any_error = false;
    for (size_t t = 0; t < l->n_targets; t++) {
        const struct loc_target *tg = &l->targets[t];
        for (int f = 0; f < 2; f++) {
            const struct fed_dns_answer *a = tg->ans[f];
            if (a == NULL)
                continue;
            if (a->status == FED_DNS_ERR_CANCELLED) {
                fdns_locate_finish(l, FED_LOC_CANCELLED);
                return;
            }
            if (a->status < 0)
                any_error = true;
            note_dns_error(l, a->status);
            for (size_t i = 0; i < a->n; i++) {
                any_addr = true;
                if (fed_dns_is_down(l->dns, a->addr[i].text, tg->port, tg->tp)) {
                    l->loc.n_down_skipped++;
                    continue;
                }
                if (l->loc.n_dests >= FED_LOCATE_MAX_DESTS)
                    continue;
                struct fed_dest *d = &l->loc.dests[l->loc.n_dests++];
                memcpy(d->host, tg->host, sizeof d->host);
                d->addr = a->addr[i];
                d->port = tg->port;
                d->transport = tg->tp;
                d->priority = tg->priority;
                d->weight = tg->weight;
                d->fallback = tg->fallback;
            }
        }
    }
    if (l->loc.n_dests > 0)
        fdns_locate_finish(l, FED_LOC_OK);
    else if (any_addr)
        fdns_locate_finish(l, FED_LOC_ALL_DOWN);
    else if (l->loc.used_fallback && l->loc.n_refused > 0)
        fdns_locate_finish(l, FED_LOC_STRICT_REFUSED);
    else if (l->loc.used_fallback && l->loc.n_srv == 0)
        fdns_locate_finish(l, any_error ? FED_LOC_DNS_ERROR : FED_LOC_NO_SRV);
    else
        fdns_locate_finish(l, any_error ? FED_LOC_DNS_ERROR : FED_LOC_NO_ADDRESS);
}

static void addr_sub_done(struct locate *l)
{
    if (--l->pending == 0)
        addr_assemble(l);
}

static void on_loc_addr(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct loc_sub *s = arg;
    struct locate *l = s->l;
    (void)cached;
    s->id = 0;
    fed_dns_answer_ref(ans);
    l->targets[s->target].ans[s->family] = ans;
    addr_sub_done(l);
}

/* Looks up every target's A and AAAA records. */
static void addr_stage(struct locate *l)
{
    size_t kept = 0;
    for (size_t t = 0; t < l->n_targets; t++) {
        struct loc_target *tg = &l->targets[t];
        if (fed_dns_is_down(l->dns, tg->host, tg->port, tg->tp)) {
            l->loc.n_down_skipped++;
            continue;
        }
        if (kept != t)
            l->targets[kept] = *tg;
        kept++;
    }
    if (kept == 0 && l->n_targets > 0) {
        l->n_targets = 0;
        fdns_locate_finish(l, FED_LOC_ALL_DOWN);
        return;
    }
    l->n_targets = kept;
    l->pending = 1; /* held while issuing: a cached answer must not finish early */
    for (size_t t = 0; t < l->n_targets; t++) {
        for (int f = 0; f < 2; f++) {
            struct loc_sub *s = &l->subs[2 * t + (size_t)f];
            s->l = l;
            s->target = t;
            s->family = f;
            s->id = 0;
            l->pending++;
            uint64_t id = fed_dns_query(l->dns, l->targets[t].host,
                                        f == 0 ? FED_DNS_T_A : FED_DNS_T_AAAA, on_loc_addr, s);
            if (id != 0)
                s->id = id;
        }
    }
    addr_sub_done(l);
}

static void fallback_or_finish(struct locate *l, fed_locate_status_t st)
{
    char hosts[3][FED_NAME_BUF];
    size_t n = l->opts.fallback ? fed_name_fallback_hosts(l->loc.domain, FED_NAME_NUL,
                                                          l->opts.fallback, hosts, 3)
                                : 0;
    if (n == 0) {
        fdns_locate_finish(l, st);
        return;
    }
    l->loc.used_fallback = true;
    l->n_targets = 0;
    for (size_t i = 0; i < n; i++)
        add_target(l, hosts[i], 5061, FED_TP_TLS, 0, 0, true);
    addr_stage(l);
}

static void srv_stage(struct locate *l);

static void no_srv(struct locate *l)
{
    if (l->opts.kind == FED_LOCATE_FEDERATION) {
        fallback_or_finish(l, l->loc.dns_status < 0 ? FED_LOC_DNS_ERROR : FED_LOC_NO_SRV);
        return;
    }
    /* RFC 3263 §4.2: no SRV, so the domain's own addresses (TLS preferred) */
    l->n_targets = 0;
    add_target(l, l->loc.domain, 5061, FED_TP_TLS, 0, 0, false);
    addr_stage(l);
}

static void on_loc_srv(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct locate *l = arg;
    (void)cached;
    l->single_id = 0;
    if (ans->status == FED_DNS_ERR_CANCELLED) {
        fdns_locate_finish(l, FED_LOC_CANCELLED);
        return;
    }
    note_dns_error(l, ans->status);
    fed_transport_t tp = l->cands[l->cand_i].tp;
    size_t usable = 0;
    for (size_t i = 0; ans->status == FED_DNS_OK && i < ans->n; i++)
        usable += ans->srv[i].target[0] != '\0';
    if (ans->status == FED_DNS_OK && ans->n > 0 && usable == 0) {
        /* a lone "." target: the service is decidedly not available (RFC 2782) */
        snprintf(l->loc.srv_name, sizeof l->loc.srv_name, "%s", ans->name);
        fdns_locate_finish(l, FED_LOC_NO_SRV);
        return;
    }
    if (usable == 0) {
        if (++l->cand_i < l->n_cands)
            srv_stage(l);
        else
            no_srv(l);
        return;
    }

    snprintf(l->loc.srv_name, sizeof l->loc.srv_name, "%s", ans->name);
    uint64_t now = fdns_now_ms(l->dns);
    uint64_t left = ans->expires_ms > now ? (ans->expires_ms - now) / 1000u : 0;
    l->loc.srv_ttl = left < ans->ttl ? (uint32_t)left : ans->ttl;
    l->loc.n_srv = 0;
    for (size_t i = 0; i < ans->n && l->loc.n_srv < FED_LOCATE_MAX_SRV; i++)
        l->loc.srv[l->loc.n_srv++] = ans->srv[i];

    size_t idx[MAX_SRV_RECS], n = 0, allowed = 0;
    bool strict = l->opts.kind == FED_LOCATE_FEDERATION && l->opts.strict_naming;
    for (size_t i = 0; i < ans->n && i < MAX_SRV_RECS; i++) {
        const struct fed_dns_srv *r = &ans->srv[i];
        if (r->target[0] == '\0')
            continue;
        fed_strict_t why = fed_name_strict(l->loc.domain, FED_NAME_NUL, r->target, FED_NAME_NUL);
        if (strict && !fed_strict_ok(why)) {
            if (l->loc.n_refused < FED_LOCATE_MAX_REFUSED) {
                size_t k = l->loc.n_refused++;
                memcpy(l->loc.refused[k].target, r->target, sizeof l->loc.refused[k].target);
                l->loc.refused[k].port = r->port;
                l->loc.refused[k].why = why;
            }
            continue;
        }
        allowed++;
        if (fed_dns_is_down(l->dns, r->target, r->port, tp)) {
            l->loc.n_down_skipped++;
            continue;
        }
        idx[n++] = i;
    }
    if (allowed == 0) {
        fallback_or_finish(l, FED_LOC_STRICT_REFUSED);
        return;
    }
    size_t order[MAX_SRV_RECS];
    size_t no = srv_order_idx(ans->srv, idx, n, l->opts.srv_mode, resolver_rand, l->dns, order,
                              FED_LOCATE_MAX_SRV);
    if (no == 0) {
        fdns_locate_finish(l, FED_LOC_ALL_DOWN);
        return;
    }
    l->n_targets = 0;
    for (size_t i = 0; i < no; i++) {
        const struct fed_dns_srv *r = &ans->srv[order[i]];
        add_target(l, r->target, r->port, tp, r->priority, r->weight, false);
    }
    addr_stage(l);
}

static void srv_stage(struct locate *l)
{
    uint64_t id = fed_dns_query(l->dns, l->cands[l->cand_i].name, FED_DNS_T_SRV, on_loc_srv, l);
    /* id 0: the callback has run and `l` may be gone; otherwise it is still waiting */
    if (id != 0)
        l->single_id = id;
}

static void add_cand(struct locate *l, const char *prefix, const char *name, fed_transport_t tp)
{
    if (l->n_cands >= LOC_MAX_CANDS)
        return;
    int n = snprintf(l->cands[l->n_cands].name, FED_NAME_BUF, "%s%s", prefix, name);
    if (n < 0 || n >= FED_NAME_BUF)
        return;
    l->cands[l->n_cands++].tp = tp;
}

static void default_cands(struct locate *l)
{
    l->n_cands = 0;
    l->cand_i = 0;
    add_cand(l, "_sips._tcp.", l->loc.domain, FED_TP_TLS);
    if (!l->opts.tls_only) {
        add_cand(l, "_sip._tcp.", l->loc.domain, FED_TP_TCP);
        add_cand(l, "_sip._udp.", l->loc.domain, FED_TP_UDP);
    }
}

static bool naptr_transport(const struct fed_dns_naptr *r, fed_transport_t *tp)
{
    if (strcasecmp(r->flags, "s") != 0 || r->replacement[0] == '\0')
        return false;
    if (strcasecmp(r->service, "SIPS+D2T") == 0)
        *tp = FED_TP_TLS;
    else if (strcasecmp(r->service, "SIP+D2T") == 0)
        *tp = FED_TP_TCP;
    else if (strcasecmp(r->service, "SIP+D2U") == 0)
        *tp = FED_TP_UDP;
    else
        return false;
    return true;
}

static void on_loc_naptr(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct locate *l = arg;
    (void)cached;
    l->single_id = 0;
    if (ans->status == FED_DNS_ERR_CANCELLED) {
        fdns_locate_finish(l, FED_LOC_CANCELLED);
        return;
    }
    note_dns_error(l, ans->status);
    size_t pick[MAX_SRV_RECS];
    fed_transport_t tps[MAX_SRV_RECS];
    size_t n = 0;
    for (size_t i = 0; ans->status == FED_DNS_OK && i < ans->n && n < MAX_SRV_RECS; i++) {
        fed_transport_t tp;
        if (!naptr_transport(&ans->naptr[i], &tp) || (l->opts.tls_only && tp != FED_TP_TLS))
            continue;
        /* insertion by (TLS first, order, preference), stable */
        size_t j = n;
        while (j > 0) {
            const struct fed_dns_naptr *a = &ans->naptr[pick[j - 1]];
            const struct fed_dns_naptr *b = &ans->naptr[i];
            bool a_tls = tps[j - 1] == FED_TP_TLS, b_tls = tp == FED_TP_TLS;
            bool after =
                (!a_tls && b_tls) ||
                (a_tls == b_tls &&
                 (a->order > b->order || (a->order == b->order && a->preference > b->preference)));
            if (!after)
                break;
            pick[j] = pick[j - 1];
            tps[j] = tps[j - 1];
            j--;
        }
        pick[j] = i;
        tps[j] = tp;
        n++;
    }
    if (n == 0) {
        default_cands(l);
    } else {
        l->n_cands = 0;
        l->cand_i = 0;
        for (size_t i = 0; i < n; i++)
            add_cand(l, "", ans->naptr[pick[i]].replacement, tps[i]);
    }
    srv_stage(l);
}

static bool locate_alive(fed_dns_t *dns, uint64_t id)
{
    for (struct locate *x = dns->locates; x != NULL; x = x->next) {
        if (x->id == id)
            return true;
    }
    return false;
}

static void locate_start(struct locate *l)
{
    const char *d = l->loc.domain;
    if (fed_name_is_ip_literal(d, FED_NAME_NUL)) {
        struct fed_dest *dest = &l->loc.dests[0];
        const char *a = d;
        char buf[INET6_ADDRSTRLEN + 2];
        size_t len = strlen(d);
        if (d[0] == '[' && len >= 2 && len - 2 < sizeof buf) {
            memcpy(buf, d + 1, len - 2);
            buf[len - 2] = '\0';
            a = buf;
        }
        snprintf(dest->host, sizeof dest->host, "%s", a);
        if (inet_pton(AF_INET, a, &dest->addr.u.v4) == 1)
            dest->addr.family = AF_INET;
        else if (inet_pton(AF_INET6, a, &dest->addr.u.v6) == 1)
            dest->addr.family = AF_INET6;
        inet_ntop(dest->addr.family, &dest->addr.u, dest->addr.text, sizeof dest->addr.text);
        dest->port = l->opts.port ? l->opts.port : 5061;
        dest->transport = FED_TP_TLS;
        if (fed_dns_is_down(l->dns, dest->addr.text, dest->port, dest->transport)) {
            l->loc.n_down_skipped++;
            fdns_locate_finish(l, FED_LOC_ALL_DOWN);
            return;
        }
        l->loc.n_dests = 1;
        fdns_locate_finish(l, FED_LOC_OK);
        return;
    }
    unsigned flags = l->opts.kind == FED_LOCATE_RFC3263 ? FED_NAME_ALLOW_SINGLE_LABEL : 0;
    char canon[FED_NAME_BUF];
    if (fed_name_normalize(d, FED_NAME_NUL, flags, canon, sizeof canon) < 0) {
        fdns_locate_finish(l, FED_LOC_BAD_DOMAIN);
        return;
    }
    memcpy(l->loc.domain, canon, sizeof canon);
    if (l->opts.port != 0) {
        add_target(l, l->loc.domain, l->opts.port, FED_TP_TLS, 0, 0, false);
        addr_stage(l);
        return;
    }
    if (l->opts.kind == FED_LOCATE_FEDERATION) {
        l->n_cands = 0;
        l->cand_i = 0;
        add_cand(l, "_sipfederationtls._tcp.", l->loc.domain, FED_TP_TLS);
        if (l->n_cands == 0) {
            fdns_locate_finish(l, FED_LOC_BAD_DOMAIN);
            return;
        }
        srv_stage(l);
        return;
    }
    uint64_t id = fed_dns_query(l->dns, l->loc.domain, FED_DNS_T_NAPTR, on_loc_naptr, l);
    if (id != 0)
        l->single_id = id;
}

uint64_t fed_dns_locate(fed_dns_t *dns, const char *domain, const struct fed_locate_opts *opts,
                        fed_locate_cb cb, void *arg)
{
    if (dns == NULL || cb == NULL)
        return 0;
    struct locate *l = calloc(1, sizeof *l);
    if (l == NULL) {
        struct fed_location *loc = calloc(1, sizeof *loc);
        if (loc != NULL) {
            loc->status = FED_LOC_DNS_ERROR;
            loc->dns_status = FED_DNS_ERR_NOMEM;
            cb(arg, loc);
            free(loc);
        }
        return 0;
    }
    static const struct fed_locate_opts defaults = {.strict_naming = true};
    l->dns = dns;
    l->id = dns->next_id++;
    l->opts = opts ? *opts : defaults;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->loc.domain, sizeof l->loc.domain, "%s", domain ? domain : "");
    l->next = dns->locates;
    dns->locates = l;
    uint64_t id = l->id;
    if (dns->freeing) {
        fdns_locate_finish(l, FED_LOC_CANCELLED);
        return 0;
    }
    locate_start(l);
    return locate_alive(dns, id) ? id : 0;
}

struct sync_locate {
    bool done;
    struct fed_location *out;
};

static void on_sync_locate(void *arg, const struct fed_location *loc)
{
    struct sync_locate *sl = arg;
    memcpy(sl->out, loc, sizeof *loc);
    sl->done = true;
}

fed_dns_status_t fed_dns_locate_sync(fed_dns_t *dns, const char *domain,
                                     const struct fed_locate_opts *opts, int timeout_ms,
                                     struct fed_location *out)
{
    struct sync_locate sl = {false, out};
    memset(out, 0, sizeof *out);
    if (dns == NULL)
        return FED_DNS_ERR_ARG;
    uint64_t id = fed_dns_locate(dns, domain, opts, on_sync_locate, &sl);
    uint64_t deadline = cn_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    while (!sl.done) {
        uint64_t now = cn_now_ms();
        if (now >= deadline) {
            fed_dns_cancel(dns, id);
            snprintf(out->domain, sizeof out->domain, "%s", domain ? domain : "");
            out->status = FED_LOC_DNS_ERROR;
            out->dns_status = FED_DNS_ERR_TIMEOUT;
            return FED_DNS_ERR_TIMEOUT;
        }
        fdns_run_once(dns, (int)(deadline - now));
    }
    return FED_DNS_OK;
}
