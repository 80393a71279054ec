/* Per-worker control: entry points called from the dataplane's worker loop. */
#include "ctl_worker.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "cn_log.h"
#include "ctl_internal.h"
#include "ctl_proxy.h"
#include "ctl_uac.h"
#include "ctl_msg.h"
#include "fed_wire.h"

/* ---- the VMR directory (shared, read-only after boot) ---- */
static int vmr_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct vmr *)a)->user, ((const struct vmr *)b)->user);
}

struct ctl_shared *ctl_shared_create(const struct ctl_conf *conf, const struct ctl_listen *ls,
                                     unsigned n_workers, char *err, size_t errlen)
{
    struct ctl_shared *sh = calloc(1, sizeof *sh);
    if (!sh || (conf->n_vmrs && !(sh->vmrs = calloc(conf->n_vmrs, sizeof *sh->vmrs)))) {
        snprintf(err, errlen, "out of memory");
        free(sh);
        return NULL;
    }
    sh->conf = conf;
    sh->listen = *ls;
    sh->n_workers = n_workers;
    for (size_t i = 0; i < conf->n_vmrs; i++) {
        const char *alias = conf->vmrs[i].alias;
        const char *at = strchr(alias, '@');
        size_t ulen = at ? (size_t)(at - alias) : strlen(alias);
        if (ulen == 0 || ulen >= sizeof sh->vmrs[i].user) {
            snprintf(err, errlen, "vmrs[%zu].alias \"%s\": bad user part", i, alias);
            ctl_shared_free(sh);
            return NULL;
        }
        memcpy(sh->vmrs[i].user, alias, ulen);
        snprintf(sh->vmrs[i].domain, sizeof sh->vmrs[i].domain, "%s", at ? at + 1 : "");
        sh->vmrs[i].conf = &conf->vmrs[i];
        /* one conference, one worker: its media and its calls' signalling live
         * there; a pure function of the alias, so every worker agrees unasked */
        sh->vmrs[i].worker = (unsigned)(ctl_hash(alias, strlen(alias), 0) % n_workers);
    }
    sh->n_vmrs = conf->n_vmrs;
    qsort(sh->vmrs, sh->n_vmrs, sizeof *sh->vmrs, vmr_cmp);
    return sh;
}

void ctl_shared_free(struct ctl_shared *sh)
{
    if (!sh)
        return;
    fed_wire_detach(sh);
    free(sh->vmrs);
    free(sh);
}

static bool host_is_literal(sip_str_t h)
{
    if (h.len == 0 || h.s[0] == '[')
        return true;
    for (size_t i = 0; i < h.len; i++)
        if ((h.s[i] < '0' || h.s[i] > '9') && h.s[i] != '.')
            return false;
    return true;
}

static bool host_eq(sip_str_t h, const char *name)
{
    size_t n = strlen(name);
    return h.len == n && strncasecmp(h.s, name, n) == 0;
}

/* A VMR answers to user@its-domain, user@our-domain, and user@<an IP literal>
 * (a caller dialling the node's address directly). */
const struct vmr *ctl_vmr_find(const struct ctl_shared *sh, sip_str_t user, sip_str_t host)
{
    if (!user.s || user.len == 0 || user.len >= sizeof sh->vmrs[0].user)
        return NULL;
    struct vmr key;
    memcpy(key.user, user.s, user.len);
    key.user[user.len] = 0;
    const struct vmr *v = bsearch(&key, sh->vmrs, sh->n_vmrs, sizeof *sh->vmrs, vmr_cmp);
    if (!v)
        return NULL;
    if (!host.s || host_is_literal(host) || host_eq(host, v->domain) ||
        host_eq(host, sh->conf->domain))
        return v;
    return NULL;
}

/* ---- worker lifecycle ---- */
static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1024;
    while (p < n && p < (1u << 22))
        p <<= 1;
    return p;
}

struct ctl_worker *ctl_worker_create(const struct ctl_shared *sh, unsigned id,
                                     const ctl_io_t *io, struct ctl_stats *stats)
{
    struct ctl_worker *cw = calloc(1, sizeof *cw);
    if (!cw)
        return NULL;
    cw->sh = sh;
    cw->conf = sh->conf;
    cw->id = id;
    cw->io = *io;
    cw->stats = stats;
    uint32_t tsz = pow2_at_least(sh->conf->max_transactions / 4);
    uint32_t dsz = pow2_at_least(sh->conf->max_dialogs / 4);
    cw->txn_tab = calloc(tsz, sizeof *cw->txn_tab);
    cw->dlg_tab = calloc(dsz, sizeof *cw->dlg_tab);
    cw->txn_mask = tsz - 1;
    cw->dlg_mask = dsz - 1;
    if (getrandom(&cw->tag_key, sizeof cw->tag_key, 0) != sizeof cw->tag_key)
        cw->tag_key = (uint64_t)(uintptr_t)cw ^ 0x5bd1e9955bd1e995ull;
    if (!cw->txn_tab || !cw->dlg_tab || ctl_timers_init(&cw->timers, 1024) != 0 ||
        media_ports_init(&cw->ports, sh->conf->media_port_min, sh->conf->media_port_max, id,
                         sh->n_workers) != 0 ||
        ctl_proxy_init(cw) != 0) {
        ctl_worker_free(cw);
        return NULL;
    }
    return cw;
}

void ctl_worker_free(struct ctl_worker *cw)
{
    if (!cw)
        return;
    ctl_proxy_fini(cw); /* before the server transactions its contexts point at */
    if (cw->dlg_tab) {
        for (uint32_t b = 0; b <= cw->dlg_mask; b++)
            while (cw->dlg_tab[b])
                ctl_dialog_end(cw, cw->dlg_tab[b]);
        free(cw->dlg_tab);
    }
    if (cw->txn_tab) {
        for (uint32_t b = 0; b <= cw->txn_mask; b++)
            while (cw->txn_tab[b])
                ctl_txn_destroy(cw, cw->txn_tab[b]);
        free(cw->txn_tab);
    }
    while (cw->txn_free) {
        struct ctl_txn *t = cw->txn_free;
        cw->txn_free = t->hnext;
        free(t);
    }
    ctl_uac_free_all(cw);
    fed_wire_worker_free(cw);
    ctl_timers_fini(&cw->timers);
    media_ports_fini(&cw->ports);
    free(cw);
}

/* ---- entry points ---- */

/* A request handed over to the worker that owns its dialog or conference: the
 * parsed message itself moves (its owner changes with it, struct ctl_forward in
 * ctl_msg.h), so it is not parsed twice. */
/* Takes m on success. */
static bool forward(struct ctl_worker *cw, unsigned owner, sip_msg_t *m, const cn_peer_t *from)
{
    struct ctl_forward *f = malloc(sizeof *f);
    if (!f)
        return false;
    f->hdr.kind = CTL_MSG_FORWARD;
    f->from = *from;
    f->m = m;
    f->cert = NULL;
    struct x509_st *c = ctl_peer_cert(cw, NULL, from);
    if (c && X509_up_ref(c) == 1)
        f->cert = c;
    if (cw->io.post(cw->io.io, owner, f) != 0) {
        X509_free(f->cert);
        free(f);
        return false;
    }
    cstat_add(&cw->stats->forwarded, 1);
    return true;
}

/* The worker that must handle m: the one named in our To-tag, or, for a new call
 * (and its CANCEL) to a room, the room's worker. -1 = this one. */
static int owner_of(const struct ctl_worker *cw, const sip_msg_t *m)
{
    sip_str_t tag = sip_msg_to_tag(m);
    int owner = -1;
    if (tag.s) {
        owner = ctl_tag_owner(tag.s, tag.len);
    } else {
        sip_method_t meth = sip_msg_method(m);
        if (meth == SIP_METHOD_INVITE || meth == SIP_METHOD_CANCEL) {
            const struct vmr *v =
                ctl_vmr_find(cw->sh, sip_msg_ruri_user(m), sip_msg_ruri_host(m));
            if (v)
                owner = (int)v->worker;
        }
    }
    if (owner < 0 || (unsigned)owner == cw->id || (unsigned)owner >= cw->sh->n_workers)
        return -1;
    return owner;
}

static void bad_request(struct ctl_worker *cw, sip_msg_t *m, const cn_peer_t *from,
                        const char *why)
{
    cstat_add(&cw->stats->bad_messages, 1);
    if (m && sip_msg_is_request(m) && sip_msg_can_respond(m) &&
        sip_msg_method(m) != SIP_METHOD_ACK) {
        char extra[300];
        const char *agent = cw->conf->node_name[0] ? cw->conf->node_name : "confnode";
        char clean[200];
        size_t j = 0;
        for (size_t i = 0; why[i] && j < sizeof clean - 1; i++)
            clean[j++] = (why[i] == '"' || (unsigned char)why[i] < 0x20) ? ' ' : why[i];
        clean[j] = 0;
        snprintf(extra, sizeof extra, "Warning: 399 %s \"%s\"\r\n", agent, clean);
        ctl_send_stateless(cw, m, from, 400, extra);
        return;
    }
    /* nothing to answer to: a stream peer that sends what we cannot parse is cut off */
    if (cn_transport_reliable(from->transport) && !(m && !sip_msg_is_request(m)))
        cw->io.close(cw->io.io, from);
}

/* Tells the message where it came from, for the received/rport of its top Via. */
static void set_source(sip_msg_t *m, const cn_peer_t *from)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr_storage *a = &from->addr;
    const void *bin = NULL;
    if (a->ss_family == AF_INET)
        bin = &((const struct sockaddr_in *)a)->sin_addr;
    else if (a->ss_family == AF_INET6)
        bin = &((const struct sockaddr_in6 *)a)->sin6_addr;
    if (!m || !bin || !inet_ntop(a->ss_family, bin, ip, sizeof ip))
        return;
    uint16_t port = a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
                                            : ((const struct sockaddr_in6 *)a)->sin6_port;
    sip_msg_set_source(m, ip, ntohs(port));
}

void ctl_on_message(struct ctl_worker *cw, const char *buf, size_t len, const cn_peer_t *from,
                    uint64_t now)
{
    cw->now = now;
    sip_msg_t *m = NULL;
    char why[200] = "";
    sip_msg_status_t st = sip_msg_parse(buf, len, &m, why, sizeof why);
    set_source(m, from);
    if (st != SIP_MSG_OK) {
        bad_request(cw, m, from, why[0] ? why : "Malformed message");
        sip_msg_free(m);
        return;
    }
    if (!sip_msg_is_request(m)) { /* a response to our own request (ctl_uac.c) */
        int sender = ctl_uac_owner(m);
        if (sender >= 0 && (unsigned)sender != cw->id && (unsigned)sender < cw->sh->n_workers) {
            if (!forward(cw, (unsigned)sender, m, from))
                sip_msg_free(m);
            return;
        }
        if (!ctl_proxy_response(cw, m, now))
            ctl_uac_response(cw, m);
        return;
    }
    if (ctl_proxy_request(cw, m, from, now)) /* Route naming us, CANCEL of a proxied INVITE */
        return;
    int owner = owner_of(cw, m);
    if (owner >= 0) {
        if (forward(cw, (unsigned)owner, m, from))
            return;
        if (sip_msg_method(m) != SIP_METHOD_ACK) {
            cstat_add(&cw->stats->overload_rejects, 1);
            ctl_send_stateless(cw, m, from, 503, "Retry-After: 1\r\n");
        }
        sip_msg_free(m);
        return;
    }
    ctl_uas_request(cw, m, from, now);
}

void ctl_on_post(struct ctl_worker *cw, void *msg, uint64_t now)
{
    struct ctl_msg *h = msg;
    cw->now = now;
    switch (h->kind) {
    case CTL_MSG_FORWARD: {
        struct ctl_forward *f = msg;
        cw->cur_cert = f->cert; /* transactions made now take their own reference */
        if (sip_msg_is_request(f->m)) {
            if (!ctl_proxy_request(cw, f->m, &f->from, now))
                ctl_uas_request(cw, f->m, &f->from, now);
        } else if (!ctl_proxy_response(cw, f->m, now)) {
            ctl_uac_response(cw, f->m);
        }
        cw->cur_cert = NULL;
        X509_free(f->cert);
        free(f);
        return;
    }
    case CTL_MSG_CLAIM_DONE:
        ctl_uas_placed(cw, msg);
        free(msg);
        return;
    case CTL_MSG_LOCATED:
        fed_wire_located(cw, msg);
        free(msg);
        return;
    default:
        ctl_msg_free(msg);
    }
}

void ctl_on_bad_frame(struct ctl_worker *cw, const char *buf, size_t len,
                      const cn_peer_t *from, const char *why, uint64_t now)
{
    cw->now = now;
    sip_msg_t *m = NULL;
    sip_msg_parse(buf, len, &m, NULL, 0);
    set_source(m, from);
    bad_request(cw, m, from, why);
    sip_msg_free(m);
}

struct x509_st *ctl_peer_cert(struct ctl_worker *cw, const struct ctl_txn *t,
                              const cn_peer_t *peer)
{
    if (t && t->cert)
        return t->cert;
    if (cw->cur_cert)
        return cw->cur_cert;
    if (!peer || peer->transport != CN_TRANSPORT_TLS || !cw->io.peer_cert)
        return NULL;
    return cw->io.peer_cert(cw->io.io, peer);
}

void ctl_on_conn_event(struct ctl_worker *cw, const cn_peer_t *peer, ctl_conn_event_t ev,
                       const char *reason, uint64_t now)
{
    cw->now = now;
    if (ev == CTL_CONN_FAILED)
        cn_log(CN_LOG_INFO, "conn_failed", "worker=%u reason=\"%s\"", cw->id,
               reason ? reason : "");
    ctl_proxy_conn_event(cw, peer, ev, reason, now);
}

int64_t ctl_tick(struct ctl_worker *cw, uint64_t now)
{
    cw->now = now;
    return ctl_timers_run(&cw->timers, cw, now);
}
