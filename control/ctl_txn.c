/* Server transactions (RFC 3261 §17.2, with RFC 6026's Accepted state).
 *
 * Matching (§17.2.3): the top Via's branch (when it has the z9hG4bK cookie), the
 * sent-by and the method, with ACK matching its INVITE. Older peers without the
 * cookie are matched by Call-ID, CSeq number, From-tag and sent-by.
 *
 * Over UDP a final response is kept and resent for every retransmitted request
 * and on timers G (non-2xx INVITE) and the 2xx schedule (T1 doubling to T2) until
 * the ACK comes; over TCP/TLS only timers H and L run. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_internal.h"

#include <openssl/x509.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

uint64_t ctl_hash(const char *s, size_t len, uint64_t seed)
{
    /* FNV-1a, 64 bit */
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int put(char *key, size_t cap, size_t *off, const char *s, size_t len)
{
    if (*off + len + 1 > cap)
        return -1;
    memcpy(key + *off, s, len);
    *off += len;
    key[(*off)++] = '|';
    return 0;
}

int ctl_txn_key(const sip_msg_t *m, char *key, size_t cap, bool for_ack)
{
    size_t off = 0;
    sip_str_t br = sip_msg_via_branch(m);
    sip_str_t host = sip_msg_via_host(m);
    sip_str_t port = sip_msg_via_port(m);
    sip_method_t meth = sip_msg_method(m);
    if (for_ack || meth == SIP_METHOD_ACK)
        meth = SIP_METHOD_INVITE;
    sip_str_t mname = sip_msg_method_name(m);
    char num[16];

    if (br.s && br.len > 7 && strncmp(br.s, "z9hG4bK", 7) == 0) {
        if (put(key, cap, &off, br.s, br.len) != 0)
            return -1;
    } else {
        sip_str_t cid = sip_msg_call_id(m), ftag = sip_msg_from_tag(m);
        int n = snprintf(num, sizeof num, "%u", sip_msg_cseq(m));
        if (put(key, cap, &off, "2543", 4) != 0 || put(key, cap, &off, cid.s, cid.len) != 0 ||
            put(key, cap, &off, num, (size_t)n) != 0 ||
            put(key, cap, &off, ftag.s ? ftag.s : "", ftag.len) != 0)
            return -1;
    }
    if (put(key, cap, &off, host.s ? host.s : "", host.len) != 0 ||
        put(key, cap, &off, port.s ? port.s : "", port.len) != 0)
        return -1;
    if (meth == SIP_METHOD_INVITE) {
        if (put(key, cap, &off, "INVITE", 6) != 0)
            return -1;
    } else if (put(key, cap, &off, mname.s ? mname.s : "", mname.len) != 0) {
        return -1;
    }
    return (int)off;
}

struct ctl_txn *ctl_txn_find(struct ctl_worker *cw, const char *key, size_t len)
{
    uint64_t h = ctl_hash(key, len, 0);
    for (struct ctl_txn *t = cw->txn_tab[h & cw->txn_mask]; t; t = t->hnext)
        if (t->hash == h && t->key_len == len && memcmp(t->key, key, len) == 0)
            return t;
    return NULL;
}

struct ctl_txn *ctl_txn_new(struct ctl_worker *cw, const char *key, size_t len,
                            const cn_peer_t *peer, bool invite)
{
    if (len > TXN_KEY_MAX || cw->n_txn >= cw->conf->max_transactions)
        return NULL;
    struct ctl_txn *t = cw->txn_free;
    if (t)
        cw->txn_free = t->hnext;
    else if (!(t = malloc(sizeof *t)))
        return NULL;
    memset(t, 0, offsetof(struct ctl_txn, key));
    memcpy(t->key, key, len);
    t->key_len = (uint16_t)len;
    t->hash = ctl_hash(key, len, 0);
    t->state = TXN_PROCEEDING;
    t->is_invite = invite;
    t->peer = *peer;
    t->resp = NULL;
    t->resp_len = 0;
    t->pending = NULL;
    t->dlg = NULL;
    t->cert = NULL;
    if (cw->cur_cert && X509_up_ref(cw->cur_cert) == 1)
        t->cert = cw->cur_cert;
    memset(&t->t_retx, 0, sizeof t->t_retx);
    memset(&t->t_end, 0, sizeof t->t_end);
    uint32_t b = (uint32_t)(t->hash & cw->txn_mask);
    t->hnext = cw->txn_tab[b];
    cw->txn_tab[b] = t;
    cw->n_txn++;
    cstat_add(&cw->stats->transactions, 1);
    return t;
}

void ctl_txn_destroy(struct ctl_worker *cw, struct ctl_txn *t)
{
    struct ctl_txn **pp = &cw->txn_tab[t->hash & cw->txn_mask];
    while (*pp && *pp != t)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = t->hnext;
    ctl_timer_cancel(&cw->timers, &t->t_retx);
    ctl_timer_cancel(&cw->timers, &t->t_end);
    if (t->dlg && t->dlg->invite == t)
        t->dlg->invite = NULL;
    sip_msg_free(t->pending);
    t->pending = NULL;
    X509_free(t->cert);
    t->cert = NULL;
    free(t->resp);
    t->resp = NULL;
    cw->n_txn--;
    cstat_add(&cw->stats->transactions, -1);
    t->hnext = cw->txn_free;
    cw->txn_free = t;
}

static void on_end(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_txn *t = container_of(tm, struct ctl_txn, t_end);
    (void)now;
    if (t->state == TXN_PROCEEDING && t->pending) { /* the ringing time is over */
        ctl_uas_answer_pending(cw, t, now);
        return;
    }
    ctl_txn_destroy(cw, t);
}

void ctl_txn_retransmit(struct ctl_worker *cw, struct ctl_txn *t)
{
    if (!t->resp)
        return;
    cw->io.send(cw->io.io, &t->peer, t->resp, t->resp_len);
    cstat_add(&cw->stats->retransmissions_sent, 1);
}

static void on_retx(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_txn *t = container_of(tm, struct ctl_txn, t_retx);
    if (t->state == TXN_ACCEPTED && (t->acked || !t->dlg))
        return; /* the ACK came, or the dialog ended */
    if (t->state != TXN_ACCEPTED && t->state != TXN_COMPLETED)
        return;
    ctl_txn_retransmit(cw, t);
    t->retx_ms = t->retx_ms * 2 > cw->conf->t2_ms ? cw->conf->t2_ms : t->retx_ms * 2;
    ctl_timer_arm(&cw->timers, &t->t_retx, now + t->retx_ms, on_retx);
}

static int keep(struct ctl_txn *t, const char *buf, size_t len)
{
    char *copy = t->resp_len >= len && t->resp ? t->resp : realloc(t->resp, len);
    if (!copy)
        return -1;
    memcpy(copy, buf, len);
    t->resp = copy;
    t->resp_len = len;
    return 0;
}

void ctl_txn_respond(struct ctl_worker *cw, struct ctl_txn *t, int status, const char *buf,
                     size_t len, uint64_t now)
{
    const struct ctl_conf *c = cw->conf;
    bool reliable = cn_transport_reliable(t->peer.transport);
    cw->io.send(cw->io.io, &t->peer, buf, len);
    if (status >= 100 && status < 700)
        cstat_add(&cw->stats->responses[status / 100], 1);

    if (status < 200) {
        if (t->is_invite && !reliable)
            keep(t, buf, len); /* resent if the INVITE is retransmitted */
        return;
    }
    if (t->is_invite && status < 300) {
        t->state = TXN_ACCEPTED;
        if (!reliable && keep(t, buf, len) == 0) {
            t->retx_ms = c->t1_ms;
            ctl_timer_arm(&cw->timers, &t->t_retx, now + c->t1_ms, on_retx);
        }
        ctl_timer_arm(&cw->timers, &t->t_end, now + 64ull * c->t1_ms, on_end); /* Timer L */
        return;
    }
    t->state = TXN_COMPLETED;
    if (t->is_invite) {
        if (!reliable && keep(t, buf, len) == 0) {
            t->retx_ms = c->t1_ms;
            ctl_timer_arm(&cw->timers, &t->t_retx, now + c->t1_ms, on_retx); /* Timer G */
        }
        ctl_timer_arm(&cw->timers, &t->t_end, now + 64ull * c->t1_ms, on_end); /* Timer H */
        return;
    }
    if (reliable) { /* Timer J = 0 */
        ctl_txn_destroy(cw, t);
        return;
    }
    keep(t, buf, len);
    ctl_timer_arm(&cw->timers, &t->t_end, now + 64ull * c->t1_ms, on_end); /* Timer J */
}

void ctl_txn_ack(struct ctl_worker *cw, struct ctl_txn *t, uint64_t now)
{
    if (!t->is_invite || t->state != TXN_COMPLETED)
        return;
    t->state = TXN_CONFIRMED;
    ctl_timer_cancel(&cw->timers, &t->t_retx);
    if (cn_transport_reliable(t->peer.transport)) {
        ctl_txn_destroy(cw, t);
        return;
    }
    ctl_timer_arm(&cw->timers, &t->t_end, now + cw->conf->t4_ms, on_end); /* Timer I */
}

void ctl_txn_arm_answer(struct ctl_worker *cw, struct ctl_txn *t, uint64_t when)
{
    ctl_timer_arm(&cw->timers, &t->t_end, when, on_end);
}

void ctl_txn_acked(struct ctl_worker *cw, struct ctl_txn *t, uint64_t now)
{
    if (!t->is_invite || t->state != TXN_ACCEPTED || t->acked)
        return;
    t->acked = 1;
    ctl_timer_cancel(&cw->timers, &t->t_retx);
    /* The ACK proves the 2xx arrived, so the caller stopped retransmitting the
     * INVITE long ago: a stream needs the transaction no more, a datagram path
     * keeps it for T4 to absorb a straggler. Holding every call's transaction for
     * the full Timer L (32 s) would cost memory and table space at high call rates
     * for no benefit. */
    if (cn_transport_reliable(t->peer.transport)) {
        ctl_txn_destroy(cw, t);
        return;
    }
    ctl_timer_arm(&cw->timers, &t->t_end, now + cw->conf->t4_ms, on_end);
}
