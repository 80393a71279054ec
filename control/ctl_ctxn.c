/* Client transactions (RFC 3261 §17.1, with RFC 6026's Accepted state), for the
 * requests the proxy sends on. See ctl_proxy.h.
 *
 *   INVITE      Calling --1xx--> Proceeding --2xx--> Accepted (Timer M = 64*T1)
 *                  |                 |
 *                  +------300-699----+--> Completed: ACK sent here, resent for every
 *                                          retransmitted final; Timer D (32 s on UDP,
 *                                          0 on TCP/TLS)
 *               Timer A (UDP: T1, doubling) resends the INVITE while Calling;
 *               Timer B (64*T1) gives up while Calling.
 *   non-INVITE  Trying --1xx--> Proceeding --final--> Completed (Timer K = T4 on
 *               UDP, 0 on TCP/TLS); Timer E (UDP: T1 doubling up to T2, T2 once
 *               Proceeding) resends; Timer F (64*T1) gives up.
 *
 * A transaction is found by its branch and by whether it is a CANCEL (a CANCEL
 * shares the branch of its INVITE). Transport failures (a send that fails, a
 * connection reported failed or closed) end a transaction that has no final
 * response yet, from a timer due at once: never inside a hook of ctl_io. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "ctl_proxy.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define TIMER_D_MS 32000u

enum cx_state {
    CX_CALLING = 1, /* INVITE: Calling; non-INVITE: Trying */
    CX_PROCEEDING,
    CX_ACCEPTED,  /* INVITE: 2xx received */
    CX_COMPLETED, /* final (non-2xx for INVITE) received */
};

struct ctl_ctxn {
    struct ctl_ctxn *hnext;       /* hash chain */
    struct ctl_ctxn *next, *prev; /* every transaction of the worker */
    uint64_t hash;
    char branch[CTL_BRANCH_LEN + 36];
    uint8_t state;
    uint8_t invite;
    uint8_t is_cancel;
    uint8_t got_response;
    uint8_t cancelled; /* a CANCEL was sent for it */
    uint8_t failing;   /* a failure waits on t_fail */
    uint8_t fail_why;  /* ctl_ctxn_end_t */
    char reason[256];
    cn_peer_t peer;
    char *req; /* the request as sent */
    size_t len;
    char *ack; /* INVITE: our ACK for its non-2xx final */
    size_t ack_len;
    uint32_t retx_ms;
    struct ctl_timer t_retx; /* A or E */
    struct ctl_timer t_fail; /* B or F; a failure due at once */
    struct ctl_timer t_end;  /* D, K or M */
    const struct ctl_ctxn_user *user;
    void *arg;
};

char *ctl_addr_str(const struct sockaddr_storage *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)a;
        inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, ntohs(s->sin_port));
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%u", ip, ntohs(s->sin6_port));
    } else {
        snprintf(buf, size, "?");
    }
    return buf;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void ctl_ctxn_branch(struct ctl_worker *cw, char *out)
{
    snprintf(out, CTL_BRANCH_LEN + 1, "z9hG4bKcn%02xp%016llx", cw->id & 0xff,
             (unsigned long long)mix64(++cw->px->branch_seq ^ cw->tag_key));
}

static uint64_t cx_hash(const char *branch, size_t len, bool cancel)
{
    return ctl_hash(branch, len, cancel ? 0x43414e43454cull : 0);
}

int ctl_ctxn_init(struct ctl_worker *cw)
{
    uint32_t size = 1024;
    while (size < cw->conf->max_transactions / 4 && size < (1u << 22))
        size <<= 1;
    cw->px->ctab = calloc(size, sizeof *cw->px->ctab);
    if (!cw->px->ctab)
        return -1;
    cw->px->cmask = size - 1;
    return 0;
}

static void cx_unlink(struct ctl_worker *cw, struct ctl_ctxn *c)
{
    struct ctl_px *px = cw->px;
    struct ctl_ctxn **pp = &px->ctab[c->hash & px->cmask];
    while (*pp && *pp != c)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = c->hnext;
    if (c->prev)
        c->prev->next = c->next;
    else
        px->call = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = c->hnext = NULL;
    ctl_timer_cancel(&cw->timers, &c->t_retx);
    ctl_timer_cancel(&cw->timers, &c->t_fail);
    ctl_timer_cancel(&cw->timers, &c->t_end);
    px->n_ctxn--;
}

static void cx_free(struct ctl_ctxn *c)
{
    free(c->req);
    free(c->ack);
    free(c);
}

/* Ends c: unlinked first (so the user may start another one), then the user is
 * told, then c is freed. */
static void cx_end(struct ctl_worker *cw, struct ctl_ctxn *c, ctl_ctxn_end_t why,
                   const char *reason)
{
    cx_unlink(cw, c);
    const struct ctl_ctxn_user *u = c->user;
    if (u && u->end)
        u->end(cw, c, c->arg, why, reason);
    cx_free(c);
}

void ctl_ctxn_fini(struct ctl_worker *cw)
{
    if (!cw->px)
        return;
    while (cw->px->call) {
        struct ctl_ctxn *c = cw->px->call;
        cx_unlink(cw, c);
        cx_free(c);
    }
    free(cw->px->ctab);
    cw->px->ctab = NULL;
}

unsigned ctl_ctxn_count(const struct ctl_worker *cw)
{
    return cw->px ? cw->px->n_ctxn : 0;
}

/* ---- timers ---- */

static void on_end(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_ctxn *c = container_of(tm, struct ctl_ctxn, t_end);
    (void)now;
    cx_end(ctx, c, CTL_CTXN_DONE, NULL);
}

static void on_fail(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_ctxn *c = container_of(tm, struct ctl_ctxn, t_fail);
    (void)now;
    if (c->failing) {
        cx_end(cw, c, (ctl_ctxn_end_t)c->fail_why, c->reason);
        return;
    }
    char addr[64], why[256];
    snprintf(why, sizeof why, "no %s from %s (%s) within %llu ms",
             c->cancelled ? "final response to the CANCEL" : "response",
             ctl_addr_str(&c->peer.addr, addr, sizeof addr), cn_transport_name(c->peer.transport),
             64ull * cw->conf->t1_ms);
    cx_end(cw, c, CTL_CTXN_TIMEOUT, why);
}

static void on_retx(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_ctxn *c = container_of(tm, struct ctl_ctxn, t_retx);
    if (c->state != CX_CALLING && c->state != CX_PROCEEDING)
        return;
    if (c->invite && c->state != CX_CALLING)
        return; /* Timer A stops at the first provisional */
    cw->io.send(cw->io.io, &c->peer, c->req, c->len);
    cstat_add(&cw->stats->retransmissions_sent, 1);
    if (c->invite)
        c->retx_ms *= 2; /* Timer A: no cap; Timer B ends it */
    else if (c->state == CX_PROCEEDING)
        c->retx_ms = cw->conf->t2_ms;
    else
        c->retx_ms = c->retx_ms * 2 > cw->conf->t2_ms ? cw->conf->t2_ms : c->retx_ms * 2;
    ctl_timer_arm(&cw->timers, &c->t_retx, now + c->retx_ms, on_retx);
}

/* A failure of c before its final response, handled from a timer due now. */
static void fail_soon(struct ctl_worker *cw, struct ctl_ctxn *c, ctl_ctxn_end_t why,
                      const char *reason)
{
    if (c->failing || (c->state != CX_CALLING && c->state != CX_PROCEEDING))
        return;
    c->failing = 1;
    c->fail_why = (uint8_t)why;
    snprintf(c->reason, sizeof c->reason, "%s", reason && *reason ? reason : "transport error");
    ctl_timer_cancel(&cw->timers, &c->t_retx);
    ctl_timer_arm(&cw->timers, &c->t_fail, cw->now, on_fail);
}

static void send_failed(struct ctl_worker *cw, struct ctl_ctxn *c)
{
    char addr[64], why[128];
    snprintf(why, sizeof why, "send to %s (%s) failed",
             ctl_addr_str(&c->peer.addr, addr, sizeof addr), cn_transport_name(c->peer.transport));
    fail_soon(cw, c, CTL_CTXN_TRANSPORT, why);
}

/* ---- starting ---- */

static struct ctl_ctxn *cx_new(struct ctl_worker *cw, const cn_peer_t *peer, char *req, size_t len,
                               const char *branch, sip_method_t method)
{
    struct ctl_px *px = cw->px;
    size_t blen = strlen(branch);
    struct ctl_ctxn *c = NULL;
    if (px->n_ctxn >= cw->conf->max_transactions || blen >= sizeof c->branch ||
        !(c = calloc(1, sizeof *c))) {
        free(req);
        return NULL;
    }
    memcpy(c->branch, branch, blen + 1);
    c->invite = method == SIP_METHOD_INVITE;
    c->is_cancel = method == SIP_METHOD_CANCEL;
    c->hash = cx_hash(branch, blen, c->is_cancel);
    c->state = CX_CALLING;
    c->peer = *peer;
    c->req = req;
    c->len = len;
    uint32_t b = (uint32_t)(c->hash & px->cmask);
    c->hnext = px->ctab[b];
    px->ctab[b] = c;
    c->next = px->call;
    if (px->call)
        px->call->prev = c;
    px->call = c;
    px->n_ctxn++;
    return c;
}

/* Sends the request and arms A/E and B/F. */
static void cx_send_first(struct ctl_worker *cw, struct ctl_ctxn *c)
{
    const struct ctl_conf *conf = cw->conf;
    ctl_timer_arm(&cw->timers, &c->t_fail, cw->now + 64ull * conf->t1_ms, on_fail);
    if (!cn_transport_reliable(c->peer.transport)) {
        c->retx_ms = conf->t1_ms;
        ctl_timer_arm(&cw->timers, &c->t_retx, cw->now + c->retx_ms, on_retx);
    }
    if (cw->io.send(cw->io.io, &c->peer, c->req, c->len) != 0)
        send_failed(cw, c);
}

struct ctl_ctxn *ctl_ctxn_start(struct ctl_worker *cw, const cn_peer_t *peer, char *req, size_t len,
                                const char *branch, sip_method_t method,
                                const struct ctl_ctxn_user *user, void *arg)
{
    if (!req)
        return NULL;
    struct ctl_ctxn *c = cx_new(cw, peer, req, len, branch, method);
    if (!c)
        return NULL;
    c->user = user;
    c->arg = arg;
    cx_send_first(cw, c);
    return c;
}

void ctl_ctxn_detach(struct ctl_ctxn *c)
{
    if (c) {
        c->user = NULL;
        c->arg = NULL;
    }
}

bool ctl_ctxn_provisional(const struct ctl_ctxn *c)
{
    return c && c->got_response;
}

const cn_peer_t *ctl_ctxn_peer(const struct ctl_ctxn *c)
{
    return &c->peer;
}

int ctl_ctxn_cancel(struct ctl_worker *cw, struct ctl_ctxn *c)
{
    if (!c || !c->invite || c->cancelled || (c->state != CX_CALLING && c->state != CX_PROCEEDING))
        return -1;
    sip_msg_t *sent = NULL;
    if (sip_msg_parse(c->req, c->len, &sent, NULL, 0) != SIP_MSG_OK) {
        sip_msg_free(sent);
        return -1;
    }
    size_t cap = c->len + 64;
    char *buf = malloc(cap);
    ssize_t n = buf ? sip_msg_build_cancel(sent, buf, cap) : -1;
    sip_msg_free(sent);
    if (n < 0) {
        free(buf);
        return -1;
    }
    struct ctl_ctxn *cc = cx_new(cw, &c->peer, buf, (size_t)n, c->branch, SIP_METHOD_CANCEL);
    if (!cc)
        return -1;
    c->cancelled = 1;
    cx_send_first(cw, cc);
    /* no final response within 64*T1 of the CANCEL: the INVITE is given up (§9.1) */
    if (!c->failing)
        ctl_timer_arm(&cw->timers, &c->t_fail, cw->now + 64ull * cw->conf->t1_ms, on_fail);
    return 0;
}

/* ---- responses ---- */

static struct ctl_ctxn *cx_find(struct ctl_worker *cw, sip_str_t branch, bool cancel)
{
    if (!branch.s || !cw->px)
        return NULL;
    uint64_t h = cx_hash(branch.s, branch.len, cancel);
    for (struct ctl_ctxn *c = cw->px->ctab[h & cw->px->cmask]; c; c = c->hnext)
        if (c->hash == h && c->is_cancel == cancel && strlen(c->branch) == branch.len &&
            memcmp(c->branch, branch.s, branch.len) == 0)
            return c;
    return NULL;
}

static void pass_up(struct ctl_worker *cw, struct ctl_ctxn *c, const sip_msg_t *m)
{
    if (c->user && c->user->response)
        c->user->response(cw, c, c->arg, m);
}

static void send_ack(struct ctl_worker *cw, struct ctl_ctxn *c, const sip_msg_t *resp)
{
    if (!c->ack) {
        sip_msg_t *sent = NULL;
        if (sip_msg_parse(c->req, c->len, &sent, NULL, 0) == SIP_MSG_OK) {
            size_t cap = c->len + sip_msg_wire_len(resp) + 64;
            char *buf = malloc(cap);
            ssize_t n = buf ? sip_msg_build_ack(sent, resp, buf, cap) : -1;
            if (n > 0) {
                c->ack = buf;
                c->ack_len = (size_t)n;
            } else {
                free(buf);
            }
        }
        sip_msg_free(sent);
    }
    if (c->ack)
        cw->io.send(cw->io.io, &c->peer, c->ack, c->ack_len);
    else
        cn_log(CN_LOG_WARN, "proxy_ack_not_built", "worker=%u branch=%s", cw->id, c->branch);
}

static void invite_response(struct ctl_worker *cw, struct ctl_ctxn *c, const sip_msg_t *m,
                            int status)
{
    const struct ctl_conf *conf = cw->conf;
    bool reliable = cn_transport_reliable(c->peer.transport);
    switch (c->state) {
    case CX_CALLING:
    case CX_PROCEEDING:
        c->got_response = 1;
        ctl_timer_cancel(&cw->timers, &c->t_retx);
        if (status < 200) {
            c->state = CX_PROCEEDING;
            if (!c->cancelled && !c->failing)
                ctl_timer_cancel(&cw->timers, &c->t_fail); /* Timer B only while Calling */
            pass_up(cw, c, m);
            return;
        }
        ctl_timer_cancel(&cw->timers, &c->t_fail);
        c->failing = 0;
        if (status < 300) {
            c->state = CX_ACCEPTED;
            ctl_timer_arm(&cw->timers, &c->t_end, cw->now + 64ull * conf->t1_ms, on_end); /* M */
            pass_up(cw, c, m);
            return;
        }
        c->state = CX_COMPLETED;
        send_ack(cw, c, m);
        ctl_timer_arm(&cw->timers, &c->t_end, cw->now + (reliable ? 0 : TIMER_D_MS), on_end);
        pass_up(cw, c, m);
        return;
    case CX_ACCEPTED:
        if (status >= 200 && status < 300)
            pass_up(cw, c, m); /* a retransmitted 2xx: the proxy relays it */
        return;
    case CX_COMPLETED:
        if (status >= 300)
            send_ack(cw, c, m); /* the final again: our ACK was lost */
        return;
    default:
        return;
    }
}

static void other_response(struct ctl_worker *cw, struct ctl_ctxn *c, const sip_msg_t *m,
                           int status)
{
    if (c->state != CX_CALLING && c->state != CX_PROCEEDING)
        return; /* Completed: a retransmitted final, absorbed */
    c->got_response = 1;
    if (status < 200) {
        if (c->state == CX_CALLING && ctl_timer_armed(&c->t_retx)) {
            c->retx_ms = cw->conf->t2_ms; /* Proceeding: Timer E at T2 */
            ctl_timer_arm(&cw->timers, &c->t_retx, cw->now + c->retx_ms, on_retx);
        }
        c->state = CX_PROCEEDING;
        pass_up(cw, c, m);
        return;
    }
    c->state = CX_COMPLETED;
    c->failing = 0;
    ctl_timer_cancel(&cw->timers, &c->t_retx);
    ctl_timer_cancel(&cw->timers, &c->t_fail);
    bool reliable = cn_transport_reliable(c->peer.transport);
    ctl_timer_arm(&cw->timers, &c->t_end, cw->now + (reliable ? 0 : cw->conf->t4_ms),
                  on_end); /* Timer K */
    pass_up(cw, c, m);
}

bool ctl_ctxn_on_response(struct ctl_worker *cw, const sip_msg_t *m)
{
    sip_str_t branch = sip_msg_via_branch(m);
    struct ctl_ctxn *c = cx_find(cw, branch, sip_msg_cseq_method(m) == SIP_METHOD_CANCEL);
    if (!c)
        return false;
    int status = sip_msg_status(m);
    if (status < 100 || status > 699)
        return true;
    if (c->invite)
        invite_response(cw, c, m, status);
    else
        other_response(cw, c, m, status);
    return true;
}

void ctl_ctxn_on_conn_event(struct ctl_worker *cw, const cn_peer_t *peer, ctl_conn_event_t ev,
                            const char *reason)
{
    if (!cw->px || ev == CTL_CONN_UP || !cn_transport_reliable(peer->transport))
        return;
    for (struct ctl_ctxn *c = cw->px->call; c; c = c->next) {
        if (c->peer.transport != peer->transport || c->peer.worker != peer->worker ||
            c->peer.conn_id != peer->conn_id)
            continue;
        fail_soon(cw, c, CTL_CTXN_TRANSPORT,
                  reason && *reason       ? reason
                  : ev == CTL_CONN_CLOSED ? "connection closed"
                                          : "connection failed");
    }
}
