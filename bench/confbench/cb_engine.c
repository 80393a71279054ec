/* confbench load engine (see cb_engine.h; connections and TLS in cb_conn.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "cb_engine_int.h"

/* ------------------------------------------------------------------------ helpers */

static uint64_t rnd(cb_worker_t *w)
{
    /* xorshift64* */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

void cb_sa_host(const struct sockaddr_storage *ss, char *host, size_t cap, unsigned *port)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        snprintf(host, cap, "[%s]", ip);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, (socklen_t)cap);
        *port = ntohs(s4->sin_port);
    }
}

/* Records a message for a failure reason once per run, and prints it unless
 * `print` is false (the caller printed a more specific line). */
static void note_ex(cb_engine_t *e, cb_fail_t r, bool print, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void note_ex(cb_engine_t *e, cb_fail_t r, bool print, const char *fmt, va_list ap)
{
    if (atomic_exchange(&e->msg_claimed[r], true))
        return;
    vsnprintf(e->msg[r], sizeof(e->msg[r]), fmt, ap);
    atomic_store_explicit(&e->msg_ready[r], true, memory_order_release);
    if (print && e->o.verbose >= 0)
        fprintf(stderr, "confbench: %s\n", e->msg[r]);
}

void cb_note(cb_engine_t *e, cb_fail_t r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note_ex(e, r, true, fmt, ap);
    va_end(ap);
}

void cb_note_quiet(cb_engine_t *e, cb_fail_t r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    note_ex(e, r, false, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ timers */

static bool tless(const cb_timer_t *a, const cb_timer_t *b)
{
    return a->when < b->when;
}

void cb_timer_push(cb_worker_t *w, uint64_t when, uint8_t kind, uint32_t idx, uint32_t seq)
{
    if (w->nheap == w->heap_cap) {
        size_t cap = w->heap_cap ? w->heap_cap * 2 : 1024;
        cb_timer_t *h = realloc(w->heap, cap * sizeof(*h));
        if (!h) {
            /* Without a timer the call could hang: fail loudly instead. */
            fprintf(stderr, "confbench: out of memory for timers\n");
            abort();
        }
        w->heap = h;
        w->heap_cap = cap;
    }
    size_t i = w->nheap++;
    cb_timer_t t = {when, idx, seq, kind};
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tless(&t, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = t;
}

static cb_timer_t timer_pop(cb_worker_t *w)
{
    cb_timer_t top = w->heap[0];
    cb_timer_t last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const cb_timer_t *best = &last;
        if (l < n && tless(&w->heap[l], best)) {
            m = l;
            best = &w->heap[l];
        }
        if (r < n && tless(&w->heap[r], best))
            m = r;
        if (m == i)
            break;
        w->heap[i] = w->heap[m];
        i = m;
    }
    if (n)
        w->heap[i] = last;
    return top;
}

static void call_arm(cb_worker_t *w, cb_call_t *c, uint64_t when)
{
    c->tseq++;
    cb_timer_push(w, when, TK_CALL, (uint32_t)(c - w->calls), c->tseq);
}

/* ------------------------------------------------------------------------ forward */

static void call_end(cb_worker_t *w, cb_call_t *c, bool ok);

/* ------------------------------------------------------------------------ media */

static void media_stop(cb_worker_t *w, cb_call_t *c)
{
    if (c->media_pos >= 0) {
        unsigned last = w->media[--w->nmedia];
        w->media[c->media_pos] = last;
        w->calls[last].media_pos = c->media_pos;
        c->media_pos = -1;
    }
}

static void media_close(cb_worker_t *w, cb_call_t *c)
{
    media_stop(w, c);
    if (c->media_started) {
        if (c->m_recv == 0)
            CB_ADD(w->c.media_calls_silent, 1);
        c->media_started = false;
    }
    if (c->media_fd >= 0) {
        close(c->media_fd);
        c->media_fd = -1;
    }
}

/* Opens the call's RTP socket on its source address; sets c->media_port. */
static int media_open(cb_worker_t *w, cb_call_t *c, const char *host)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    char h[64];
    snprintf(h, sizeof(h), "%s", host[0] == '[' ? host + 1 : host);
    char *rb = strchr(h, ']');
    if (rb)
        *rb = 0;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        len = sizeof(*s6);
    } else {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        close(fd);
        return -1;
    }
    unsigned port;
    char tmp[64];
    cb_sa_host(&ss, tmp, sizeof(tmp), &port);
    uint32_t idx = (uint32_t)(c - w->calls);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = cb_ev_data(EV_MEDIA, idx, c->gen)};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    c->media_fd = fd;
    c->media_port = port;
    return 0;
}

static void media_start(cb_worker_t *w, cb_call_t *c, const cb_str_t body)
{
    cb_sdp_answer_t a;
    if (c->media_fd < 0 || cb_sdp_parse(body.s, body.len, &a) || a.port == 0)
        return;
    memset(&c->media_dst, 0, sizeof(c->media_dst));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&c->media_dst;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->media_dst;
    if (inet_pton(AF_INET, a.addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)a.port);
        c->media_dst_len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, a.addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)a.port);
        c->media_dst_len = sizeof(*s6);
    } else {
        return;
    }
    c->rtp_pt = a.pt == 8 ? 8 : 0;
    c->rtp_seq = (uint16_t)rnd(w);
    c->rtp_ts = (uint32_t)rnd(w);
    c->rtp_ssrc = (uint32_t)rnd(w);
    c->media_started = true;
    c->media_pos = (int)w->nmedia;
    w->media[w->nmedia++] = (unsigned)(c - w->calls);
    CB_ADD(w->c.media_calls, 1);
}

static void media_tick(cb_worker_t *w)
{
    unsigned char pkt[12 + CB_RTP_PAYLOAD];
    uint64_t sent = 0;
    for (unsigned i = 0; i < w->nmedia; i++) {
        cb_call_t *c = &w->calls[w->media[i]];
        pkt[0] = 0x80;
        pkt[1] = c->rtp_pt;
        pkt[2] = (uint8_t)(c->rtp_seq >> 8);
        pkt[3] = (uint8_t)c->rtp_seq;
        uint32_t ts = c->rtp_ts, ssrc = c->rtp_ssrc;
        pkt[4] = (uint8_t)(ts >> 24);
        pkt[5] = (uint8_t)(ts >> 16);
        pkt[6] = (uint8_t)(ts >> 8);
        pkt[7] = (uint8_t)ts;
        pkt[8] = (uint8_t)(ssrc >> 24);
        pkt[9] = (uint8_t)(ssrc >> 16);
        pkt[10] = (uint8_t)(ssrc >> 8);
        pkt[11] = (uint8_t)ssrc;
        memset(pkt + 12, c->rtp_pt == 8 ? 0xD5 : 0xFF, CB_RTP_PAYLOAD);
        if (sendto(c->media_fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&c->media_dst,
                   c->media_dst_len) == (ssize_t)sizeof(pkt)) {
            c->m_sent++;
            sent++;
        }
        c->rtp_seq++;
        c->rtp_ts += CB_RTP_PAYLOAD;
    }
    if (sent)
        CB_ADD(w->c.media_sent, sent);
}

static void media_read(cb_worker_t *w, int fd, cb_call_t *c)
{
    char buf[2048];
    uint64_t got = 0;
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0)
            break;
        if (n >= 12 && (buf[0] & 0xC0) == 0x80)
            got++;
    }
    if (c)
        c->m_recv += got;
    if (got)
        CB_ADD(*(c ? &w->c.media_received : &w->c.media_unsolicited), got);
}

/* ------------------------------------------------------------------------ calls */

static void call_id_make(cb_worker_t *w, cb_call_t *c)
{
    snprintf(c->call_id, sizeof(c->call_id), "cb%u.%u.%u.%016llx", w->id, (unsigned)(c - w->calls),
             c->gen, (unsigned long long)rnd(w));
    snprintf(c->from_tag, sizeof(c->from_tag), "%016llx", (unsigned long long)rnd(w));
}

static void branch_make(cb_worker_t *w, char *out, size_t cap)
{
    snprintf(out, cap, "z9hG4bK%016llx%08x", (unsigned long long)rnd(w),
             (unsigned)(rnd(w) & 0xffffffffu));
}

/* Finds the call a Call-ID names; NULL when it is not one of this thread's live calls. */
static cb_call_t *call_find(cb_worker_t *w, cb_str_t id)
{
    if (!id.s || id.len < 8 || id.len >= 64 || id.s[0] != 'c' || id.s[1] != 'b')
        return NULL;
    unsigned v[3];
    const char *p = id.s + 2, *end = id.s + id.len;
    for (int k = 0; k < 3; k++) {
        uint64_t n = 0;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9' && n <= UINT32_MAX)
            n = n * 10 + (uint64_t)(*p++ - '0');
        if (p == d || p >= end || *p != '.' || n > UINT32_MAX)
            return NULL;
        v[k] = (unsigned)n;
        p++;
    }
    if (v[0] != w->id || v[1] >= w->ncalls)
        return NULL;
    cb_call_t *c = &w->calls[v[1]];
    if (c->state == CS_FREE || c->gen != v[2] || !cb_str_eq(id, c->call_id, false))
        return NULL;
    return c;
}

static const char *via_host(cb_worker_t *w, cb_call_t *c, unsigned *port)
{
    if (c->conn >= 0) {
        cb_conn_t *cn = &w->conns[c->conn];
        *port = cn->local_port;
        return cn->local_host;
    }
    *port = w->udp[c->udp].port;
    return w->udp[c->udp].host;
}

/* Sends c->req. Returns 0, or -1 when the call was failed. */
static int call_transmit(cb_worker_t *w, cb_call_t *c, const char *buf, size_t len)
{
    CB_ADD(w->c.requests_sent, 1);
    if (c->conn >= 0) {
        cb_conn_t *cn = &w->conns[c->conn];
        uint32_t gen = c->gen;
        int rc = cb_conn_send(w, cn, buf, len);
        if (rc || c->gen != gen || c->state == CS_FREE)
            return -1;
        return 0;
    }
    const cb_addr_t *t = &w->e->targets[c->target];
    ssize_t n = sendto(w->udp[c->udp].fd, buf, len, 0, (const struct sockaddr *)&t->sa, t->len);
    if (n < 0 && errno != EAGAIN && errno != ENOBUFS && errno != ECONNREFUSED && errno != EINTR) {
        cb_note(w->e, CB_FAIL_CONNECT, "sendto %s failed: %s", t->text, strerror(errno));
        cb_call_fail(w, c, CB_FAIL_CONNECT);
        return -1;
    }
    return 0;
}

/* Builds and sends a new client transaction's request (not ACK). */
static int call_request(cb_worker_t *w, cb_call_t *c, const char *method, bool invite,
                        const char *ruri, const char *ctype, const char *body, size_t blen)
{
    cb_engine_t *e = w->e;
    unsigned vport;
    const char *vhost = via_host(w, c, &vport);
    char contact[200];
    snprintf(contact, sizeof(contact), "sip:%s@%s:%u%s", e->o.from_user, vhost, vport,
             c->conn >= 0 ? (e->ssl ? ";transport=tls" : ";transport=tcp") : "");
    branch_make(w, c->branch, sizeof(c->branch));
    if (invite)
        memcpy(c->inv_branch, c->branch, sizeof(c->branch));
    cb_req_t r = {
        .method = method,
        .ruri = ruri,
        .transport = cb_transport_via(e->o.transport),
        .via_host = vhost,
        .via_port = vport,
        .branch = c->branch,
        .from_uri = e->from_uri,
        .from_tag = c->from_tag,
        .to_uri = e->to_uri,
        .to_tag = c->to_tag[0] ? c->to_tag : NULL,
        .call_id = c->call_id,
        .cseq = c->cseq,
        .contact = contact,
        .content_type = ctype,
        .body = body,
        .body_len = blen,
    };
    ssize_t n = cb_sip_build_request(c->req, sizeof(c->req), &r);
    if (n < 0) {
        cb_note(e, CB_FAIL_LOCAL, "request does not fit in %d bytes", CB_REQ_MAX);
        cb_call_fail(w, c, CB_FAIL_LOCAL);
        return -1;
    }
    c->req_len = (size_t)n;
    c->invite_txn = invite;
    c->provisional = false;
    c->t_sent = cb_now_us();
    c->deadline = c->t_sent + (uint64_t)e->o.timeout_ms * 1000u;
    if (c->conn < 0) {
        c->rtx_ms = e->o.t1_ms;
        c->rtx_at = c->t_sent + (uint64_t)c->rtx_ms * 1000u;
        call_arm(w, c, c->rtx_at < c->deadline ? c->rtx_at : c->deadline);
    } else {
        call_arm(w, c, c->deadline);
    }
    return call_transmit(w, c, c->req, c->req_len);
}

/* ACK: for a 2xx a new transaction (new branch, remote target, To-tag); for a
 * non-2xx part of the INVITE transaction (its branch and Request-URI). */
static void call_ack(cb_worker_t *w, cb_call_t *c, bool success)
{
    cb_engine_t *e = w->e;
    unsigned vport;
    const char *vhost = via_host(w, c, &vport);
    char branch[48], buf[1024];
    if (success)
        branch_make(w, branch, sizeof(branch));
    else
        memcpy(branch, c->inv_branch, sizeof(branch));
    cb_req_t r = {
        .method = "ACK",
        .ruri = success && c->remote[0] ? c->remote : e->ruri,
        .transport = cb_transport_via(e->o.transport),
        .via_host = vhost,
        .via_port = vport,
        .branch = branch,
        .from_uri = e->from_uri,
        .from_tag = c->from_tag,
        .to_uri = e->to_uri,
        .to_tag = c->to_tag[0] ? c->to_tag : NULL,
        .call_id = c->call_id,
        .cseq = 1,
    };
    ssize_t n = cb_sip_build_request(buf, sizeof(buf), &r);
    if (n > 0)
        call_transmit(w, c, buf, (size_t)n);
}

static void call_free(cb_worker_t *w, cb_call_t *c)
{
    media_close(w, c);
    if (c->conn >= 0) {
        cb_conn_t *cn = &w->conns[c->conn];
        if (cn->ncalls)
            cn->ncalls--;
        if (w->e->o.conn_per_call) {
            cb_conn_close(w, cn);
            w->free_conns[w->nfree_conns++] = (unsigned)c->conn;
        }
        c->conn = -1;
    }
    c->state = CS_FREE;
    c->tseq++;
    w->free_calls[w->nfree++] = (unsigned)(c - w->calls);
    uint64_t a = CB_GET(w->c.active);
    CB_SET(w->c.active, a ? a - 1 : 0);
}

static void call_end(cb_worker_t *w, cb_call_t *c, bool ok)
{
    CB_ADD(*(ok ? &w->c.succeeded : &w->c.failed), 1);
    call_free(w, c);
}

void cb_call_fail(cb_worker_t *w, cb_call_t *c, cb_fail_t r)
{
    if (c->state == CS_FREE)
        return;
    CB_ADD(w->c.by_reason[r], 1);
    call_end(w, c, false);
}

static void call_unexpected(cb_worker_t *w, cb_call_t *c, int status, const char *what)
{
    cb_engine_t *e = w->e;
    if (status >= 100 && status < CB_CODES) {
        CB_ADD(w->c.by_code[status], 1);
        if (!atomic_exchange(&e->code_seen[status], true) && e->o.verbose >= 0)
            fprintf(stderr, "confbench: unexpected %d to %s from %s (counted as a failure)\n",
                    status, what,
                    e->targets[c->conn >= 0 ? w->conns[c->conn].target : c->target].text);
    }
    char m[128];
    snprintf(m, sizeof(m), "unexpected %d to %s", status, what);
    cb_note_quiet(e, CB_FAIL_UNEXPECTED, "%s", m);
    cb_call_fail(w, c, CB_FAIL_UNEXPECTED);
}

static void call_send_bye(cb_worker_t *w, cb_call_t *c)
{
    media_stop(w, c);
    c->state = CS_BYE;
    c->cseq++;
    call_request(w, c, "BYE", false, c->remote[0] ? c->remote : w->e->ruri, NULL, NULL, 0);
}

static void call_timer(cb_worker_t *w, cb_call_t *c, uint64_t now)
{
    cb_engine_t *e = w->e;
    if (c->state == CS_HOLD) {
        call_send_bye(w, c);
        return;
    }
    if (now >= c->deadline) {
        char what[32];
        snprintf(what, sizeof(what), "%s",
                 c->state == CS_INVITE ? "INVITE"
                 : c->state == CS_BYE  ? "BYE"
                                       : "request");
        const cb_addr_t *t =
            c->conn >= 0 ? &e->targets[w->conns[c->conn].target] : &e->targets[c->target];
        cb_note(e, CB_FAIL_TIMEOUT, "no final response to %s from %s within %u ms", what, t->text,
                e->o.timeout_ms);
        cb_call_fail(w, c, CB_FAIL_TIMEOUT);
        return;
    }
    if (c->conn < 0 && now >= c->rtx_at && !(c->invite_txn && c->provisional)) {
        CB_ADD(w->c.retransmissions, 1);
        if (call_transmit(w, c, c->req, c->req_len))
            return;
        if (c->invite_txn)
            c->rtx_ms *= 2;
        else
            c->rtx_ms = c->provisional ? e->o.t2_ms
                                       : (c->rtx_ms * 2 < e->o.t2_ms ? c->rtx_ms * 2 : e->o.t2_ms);
        c->rtx_at = now + (uint64_t)c->rtx_ms * 1000u;
    }
    uint64_t next = c->deadline;
    if (c->conn < 0 && !(c->invite_txn && c->provisional) && c->rtx_at < next)
        next = c->rtx_at;
    call_arm(w, c, next);
}

static void call_start(cb_worker_t *w)
{
    cb_engine_t *e = w->e;
    const cb_opts_t *o = &e->o;
    unsigned idx = w->free_calls[--w->nfree];
    cb_call_t *c = &w->calls[idx];
    c->gen++;
    c->state = o->scenario == CB_SCEN_CALL ? CS_INVITE : CS_REQ;
    c->cseq = 1;
    c->to_tag[0] = 0;
    c->remote[0] = 0;
    c->m_sent = c->m_recv = 0;
    c->media_started = false;
    c->media_pos = -1;
    c->media_fd = -1;
    c->conn = -1;
    call_id_make(w, c);
    CB_ADD(w->c.started, 1);
    CB_ADD(w->c.active, 1);
    unsigned rr = w->rr++;
    const char *src_host;
    if (o->transport == CB_TP_UDP) {
        c->udp = rr % w->nudp;
        c->target = (w->id + rr) % e->ntargets;
        src_host = w->udp[c->udp].host;
    } else if (o->conn_per_call) {
        unsigned ci = w->free_conns[--w->nfree_conns];
        cb_conn_t *cn = &w->conns[ci];
        cn->target = (w->id + rr) % e->ntargets;
        cn->bind = e->nbinds ? rr % e->nbinds : 0;
        c->conn = (int)ci;
        cn->ncalls = 1;
        if (cb_conn_open(w, cn))
            return; /* the call was failed */
        src_host = cn->local_host;
    } else {
        c->conn = (int)(rr % w->nconns);
        cb_conn_t *cn = &w->conns[c->conn];
        cn->ncalls++;
        if (cn->state == CN_CLOSED && cb_conn_open(w, cn))
            return;
        src_host = cn->local_host;
    }
    switch (o->scenario) {
    case CB_SCEN_CALL: {
        char sdp[1024], key[64] = "";
        unsigned mport = w->sink_port;
        const char *maddr = w->sink_host;
        if (o->media) {
            if (media_open(w, c, src_host) == 0) {
                mport = c->media_port;
                maddr = src_host;
            } else {
                cb_note(e, CB_FAIL_LOCAL, "cannot open an RTP socket on %s: %s", src_host,
                        strerror(errno));
                cb_call_fail(w, c, CB_FAIL_LOCAL);
                return;
            }
        }
        if (o->srtp) {
            unsigned char k[30];
            for (unsigned i = 0; i < sizeof(k); i++)
                k[i] = (unsigned char)rnd(w);
            cb_base64(k, sizeof(k), key, sizeof(key));
        }
        char addr[64];
        snprintf(addr, sizeof(addr), "%s", maddr[0] == '[' ? maddr + 1 : maddr);
        char *rb = strchr(addr, ']');
        if (rb)
            *rb = 0;
        ssize_t sl = cb_sdp_offer(sdp, sizeof(sdp), addr, mport, rnd(w) >> 1, o->srtp, key);
        if (sl < 0) {
            cb_call_fail(w, c, CB_FAIL_LOCAL);
            return;
        }
        call_request(w, c, "INVITE", true, e->ruri, "application/sdp", sdp, (size_t)sl);
        break;
    }
    case CB_SCEN_MESSAGE:
        call_request(w, c, "MESSAGE", false, e->ruri, "text/plain", o->message_body,
                     strlen(o->message_body));
        break;
    case CB_SCEN_OPTIONS:
    case CB_SCEN_HANDSHAKE:
        call_request(w, c, "OPTIONS", false, e->ruri, NULL, NULL, 0);
        break;
    }
}

/* A response for call c. */
static void call_response(cb_worker_t *w, cb_call_t *c, const cb_sip_msg_t *m)
{
    cb_engine_t *e = w->e;
    int st = m->status;
    bool is_invite = cb_str_eq(m->cseq_method, "INVITE", false);
    if (is_invite) {
        if (!cb_str_eq(m->branch, c->inv_branch, false)) {
            CB_ADD(w->c.stray_responses, 1);
            return;
        }
        if (c->state != CS_INVITE) {
            /* A retransmitted 2xx: the ACK got lost, send it again. */
            if (st >= 200 && st < 300)
                call_ack(w, c, true);
            return;
        }
        if (st < 200) {
            if (!c->provisional) {
                c->provisional = true;
                if (c->conn < 0)
                    call_arm(w, c, c->deadline); /* Timer A stops */
            }
            return;
        }
        uint64_t lat = cb_now_us() - c->t_sent;
        if (m->to_tag.s && m->to_tag.len < sizeof(c->to_tag)) {
            memcpy(c->to_tag, m->to_tag.s, m->to_tag.len);
            c->to_tag[m->to_tag.len] = 0;
        }
        if (st >= 300) {
            call_ack(w, c, false);
            if (st == cb_expected_code(&e->o)) {
                call_end(w, c, true);
                return;
            }
            call_unexpected(w, c, st, "INVITE");
            return;
        }
        if (st != cb_expected_code(&e->o)) {
            call_ack(w, c, true);
            c->cseq++;
            call_unexpected(w, c, st, "INVITE");
            return;
        }
        cb_hist_record(&w->c.lat[CB_LAT_INVITE], lat);
        if (m->contact_uri.s && m->contact_uri.len < sizeof(c->remote)) {
            memcpy(c->remote, m->contact_uri.s, m->contact_uri.len);
            c->remote[m->contact_uri.len] = 0;
        }
        call_ack(w, c, true);
        if (c->state == CS_FREE)
            return;
        if (e->o.media)
            media_start(w, c, m->body);
        c->state = CS_HOLD;
        if (e->o.hold_ms)
            call_arm(w, c, cb_now_us() + (uint64_t)e->o.hold_ms * 1000u);
        else
            call_send_bye(w, c);
        return;
    }
    /* non-INVITE */
    if (!cb_str_eq(m->branch, c->branch, false) || (c->state != CS_BYE && c->state != CS_REQ)) {
        CB_ADD(w->c.stray_responses, 1);
        return;
    }
    if (st < 200) {
        c->provisional = true;
        return;
    }
    cb_hist_record(&w->c.lat[CB_LAT_NONINVITE], cb_now_us() - c->t_sent);
    int want = c->state == CS_BYE ? 200 : cb_expected_code(&e->o);
    bool ok = c->state == CS_BYE ? (st >= 200 && st < 300) : st == want;
    if (ok) {
        call_end(w, c, true);
        return;
    }
    char what[32];
    snprintf(what, sizeof(what), "%.*s", (int)(m->cseq_method.len < 20 ? m->cseq_method.len : 20),
             m->cseq_method.s);
    call_unexpected(w, c, st, what);
}

/* A request from the far end: answered (200 for BYE/OPTIONS/NOTIFY, 501 otherwise),
 * never acted upon. */
static void answer_request(cb_worker_t *w, const cb_sip_msg_t *m, int conn, unsigned udp,
                           const struct sockaddr_storage *from, socklen_t fromlen)
{
    CB_ADD(w->c.requests_received, 1);
    if (cb_str_eq(m->method, "ACK", false))
        return;
    bool ok = cb_str_eq(m->method, "BYE", false) || cb_str_eq(m->method, "OPTIONS", false) ||
              cb_str_eq(m->method, "NOTIFY", false);
    char buf[2048];
    ssize_t n = cb_sip_build_response(buf, sizeof(buf), m, ok ? 200 : 501,
                                      ok ? "OK" : "Not Implemented", "confbench");
    if (n <= 0)
        return;
    if (conn >= 0) {
        cb_conn_send(w, &w->conns[conn], buf, (size_t)n);
    } else if (from) {
        sendto(w->udp[udp].fd, buf, (size_t)n, 0, (const struct sockaddr *)from, fromlen);
    }
}

void cb_handle_message(cb_worker_t *w, const char *buf, size_t len, int conn, unsigned udp,
                       const struct sockaddr_storage *from, socklen_t fromlen)
{
    cb_sip_msg_t m;
    if (cb_sip_parse(buf, len, &m) != CB_SIP_OK) {
        CB_ADD(w->c.stray_responses, 1);
        cb_note(w->e, CB_FAIL_PROTOCOL, "unparseable message received (%zu bytes): %.40s", len,
                buf);
        return;
    }
    if (m.is_request) {
        answer_request(w, &m, conn, udp, from, fromlen);
        return;
    }
    CB_ADD(w->c.responses_received, 1);
    cb_call_t *c = call_find(w, m.call_id);
    if (!c) {
        CB_ADD(w->c.stray_responses, 1);
        return;
    }
    call_response(w, c, &m);
}

/* ------------------------------------------------------------------------ UDP */

static void udp_read(cb_worker_t *w, unsigned ui)
{
    struct mmsghdr msgs[CB_UDP_BATCH];
    struct iovec iov[CB_UDP_BATCH];
    struct sockaddr_storage from[CB_UDP_BATCH];
    for (int round = 0; round < 8; round++) {
        for (unsigned i = 0; i < CB_UDP_BATCH; i++) {
            iov[i].iov_base = w->udp_bufs + (size_t)i * CB_UDP_BUF;
            iov[i].iov_len = CB_UDP_BUF;
            memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
        }
        int n = recvmmsg(w->udp[ui].fd, msgs, CB_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int i = 0; i < n; i++) {
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                CB_ADD(w->c.stray_responses, 1);
                continue;
            }
            cb_handle_message(w, iov[i].iov_base, msgs[i].msg_len, -1, ui, &from[i],
                              msgs[i].msg_hdr.msg_namelen);
        }
        if (n < CB_UDP_BATCH)
            return;
    }
}

/* ICMP errors for sent requests (IP_RECVERR): the queued copy of the request names
 * the call. */
static void udp_errors(cb_worker_t *w, unsigned ui)
{
    for (int i = 0; i < 64; i++) {
        char data[CB_UDP_BUF], ctrl[512];
        struct sockaddr_storage dst;
        struct iovec iov = {data, sizeof(data)};
        struct msghdr mh = {.msg_name = &dst,
                            .msg_namelen = sizeof(dst),
                            .msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = ctrl,
                            .msg_controllen = sizeof(ctrl)};
        ssize_t n = recvmsg(w->udp[ui].fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);
        if (n < 0)
            return;
        int ee_errno = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if ((cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_RECVERR) ||
                (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_RECVERR)) {
                struct sock_extended_err ee;
                memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
                ee_errno = (int)ee.ee_errno;
            }
        }
        char where[80];
        cb_addr_format((struct sockaddr *)&dst, where, sizeof(where));
        /* The quoted request may be cut short (576-byte ICMP quote). */
        cb_call_t *c = call_find(w, cb_sip_find_header(data, (size_t)n, "Call-ID", 'i'));
        if (!c)
            continue;
        cb_fail_t r = ee_errno == ECONNREFUSED ? CB_FAIL_REFUSED : CB_FAIL_CONNECT;
        cb_note(w->e, r, "UDP to %s: %s (ICMP)", where,
                ee_errno ? strerror(ee_errno) : "unreachable");
        cb_call_fail(w, c, r);
    }
}

/* ------------------------------------------------------------------------ loop */

static void launch(cb_worker_t *w, uint64_t now)
{
    cb_engine_t *e = w->e;
    unsigned ep = atomic_load_explicit(&e->rate_epoch, memory_order_acquire);
    if (ep != w->epoch) {
        w->epoch = ep;
        w->rate = (double)atomic_load(&e->rate_milli) / 1000.0 / e->threads;
        w->pace_t0 = now;
        w->launched = 0;
        atomic_store_explicit(&w->applied_epoch, ep, memory_order_release);
    }
    if (w->rate <= 0 || atomic_load_explicit(&w->count_done, memory_order_relaxed))
        return;
    uint64_t due = (uint64_t)((double)(now - w->pace_t0) * w->rate / 1e6) + 1;
    if (due <= w->launched)
        return;
    uint64_t backlog = due - w->launched;
    /* A thread that fell behind (descheduled, busy) catches up, but by one second
     * of calls at most; the rest are dropped and counted, never hidden. */
    uint64_t cap = (uint64_t)w->rate + 1;
    if (backlog > cap) {
        CB_ADD(w->c.launches_late, backlog - cap);
        w->launched += backlog - cap;
        backlog = cap;
    }
    while (backlog--) {
        if (w->nfree == 0 || (e->o.conn_per_call && w->nfree_conns == 0)) {
            CB_ADD(w->c.rate_deferred, 1);
            w->launched++;
            continue;
        }
        w->launched++;
        w->total_launched++;
        call_start(w);
        if (w->quota && w->total_launched >= w->quota) {
            atomic_store(&w->count_done, true);
            break;
        }
    }
}

static uint64_t next_launch(const cb_worker_t *w)
{
    if (w->rate <= 0 || atomic_load_explicit(&w->count_done, memory_order_relaxed))
        return UINT64_MAX;
    return w->pace_t0 + (uint64_t)((double)w->launched * 1e6 / w->rate);
}

static void run_timers(cb_worker_t *w, uint64_t now)
{
    while (w->nheap && w->heap[0].when <= now) {
        cb_timer_t t = timer_pop(w);
        if (t.kind == TK_CALL) {
            cb_call_t *c = &w->calls[t.idx];
            if (c->state != CS_FREE && c->tseq == t.seq)
                call_timer(w, c, now);
        } else {
            cb_conn_t *cn = &w->conns[t.idx];
            if (cn->tseq == t.seq && (cn->state == CN_CONNECTING || cn->state == CN_HANDSHAKE)) {
                bool tls = cn->state == CN_HANDSHAKE;
                cb_note(w->e, tls ? CB_FAIL_TLS : CB_FAIL_CONNECT_TIMEOUT,
                        "%s %s did not complete within %u ms",
                        tls ? "TLS handshake with" : "connect to", w->e->targets[cn->target].text,
                        w->e->o.timeout_ms);
                cb_conn_fail(w, cn, tls ? CB_FAIL_TLS : CB_FAIL_CONNECT_TIMEOUT);
            }
        }
    }
}

static void *worker_main(void *arg)
{
    cb_worker_t *w = arg;
    cb_engine_t *e = w->e;
    struct epoll_event evs[256];
    w->next_media = cb_now_us() + CB_RTP_INTERVAL_US;
    while (!atomic_load_explicit(&e->quit, memory_order_relaxed)) {
        uint64_t now = cb_now_us();
        run_timers(w, now);
        if (now >= w->next_media) {
            media_tick(w);
            w->next_media += CB_RTP_INTERVAL_US;
            if (w->next_media < now)
                w->next_media = now + CB_RTP_INTERVAL_US;
        }
        launch(w, now);
        uint64_t next = w->next_media;
        if (w->nheap && w->heap[0].when < next)
            next = w->heap[0].when;
        uint64_t nl = next_launch(w);
        if (nl < next)
            next = nl;
        now = cb_now_us();
        /* Sleep at least 200 us: launches are batched rather than spun for. */
        uint64_t wait = next > now ? next - now : 0;
        if (wait < 200)
            wait = 200;
        if (wait > 1000000)
            wait = 1000000; /* rate changes and quit come through wake_fd */
        struct timespec ts = {(time_t)(wait / 1000000u), (long)(wait % 1000000u) * 1000};
        int n = epoll_pwait2(w->ep, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS)
            n = epoll_wait(w->ep, evs, 256, (int)((wait + 999) / 1000));
        for (int i = 0; i < n; i++) {
            uint64_t d = evs[i].data.u64;
            enum ev_type type = (enum ev_type)(d >> 56);
            uint32_t gen = (uint32_t)(d >> 32) & 0xffffffu, idx = (uint32_t)d;
            switch (type) {
            case EV_UDP:
                if (evs[i].events & EPOLLERR)
                    udp_errors(w, idx);
                if (evs[i].events & EPOLLIN)
                    udp_read(w, idx);
                break;
            case EV_CONN: {
                cb_conn_t *cn = &w->conns[idx];
                if ((cn->gen & 0xffffffu) == gen && cn->fd >= 0)
                    cb_conn_event(w, cn, evs[i].events);
                break;
            }
            case EV_MEDIA: {
                cb_call_t *c = &w->calls[idx];
                if ((c->gen & 0xffffffu) == gen && c->state != CS_FREE && c->media_fd >= 0)
                    media_read(w, c->media_fd, c);
                break;
            }
            case EV_SINK:
                media_read(w, w->sink_fd, NULL);
                break;
            case EV_WAKE: {
                uint64_t v;
                if (read(w->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    break;
                break;
            }
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ setup */

static int bind_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        *len = sizeof(*s4);
        return 0;
    }
    if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        *len = sizeof(*s6);
        return 0;
    }
    return -1;
}

/* The source address the kernel picks for a destination. */
static int route_source(const cb_addr_t *t, struct sockaddr_storage *ss, socklen_t *len)
{
    int fd = socket(t->sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    *len = sizeof(*ss);
    int rc = connect(fd, (const struct sockaddr *)&t->sa, t->len) == 0 &&
                     getsockname(fd, (struct sockaddr *)ss, len) == 0
                 ? 0
                 : -1;
    close(fd);
    if (rc == 0) {
        if (ss->ss_family == AF_INET)
            ((struct sockaddr_in *)ss)->sin_port = 0;
        else
            ((struct sockaddr_in6 *)ss)->sin6_port = 0;
    }
    return rc;
}

static int udp_open(const struct sockaddr_storage *b, socklen_t blen, cb_udp_t *u, bool recverr,
                    char *err, size_t errlen)
{
    struct sockaddr_storage ss = *b;
    socklen_t len = blen;
    char h[64];
    unsigned p;
    cb_sa_host(b, h, sizeof(h), &p);
    u->fd = socket(b->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (u->fd < 0) {
        snprintf(err, errlen, "socket(): %s", strerror(errno));
        return -1;
    }
    int sz = 4 << 20, one = 1;
    setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    setsockopt(u->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (recverr) {
        if (b->ss_family == AF_INET)
            setsockopt(u->fd, IPPROTO_IP, IP_RECVERR, &one, sizeof(one));
        else
            setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof(one));
    }
    if (bind(u->fd, (struct sockaddr *)&ss, len) != 0 ||
        getsockname(u->fd, (struct sockaddr *)&ss, &len) != 0) {
        snprintf(err, errlen, "cannot bind a UDP socket to %s: %s", h, strerror(errno));
        close(u->fd);
        u->fd = -1;
        return -1;
    }
    cb_sa_host(&ss, u->host, sizeof(u->host), &u->port);
    return 0;
}

static int worker_init(cb_engine_t *e, cb_worker_t *w, unsigned id, char *err, size_t errlen)
{
    const cb_opts_t *o = &e->o;
    w->e = e;
    w->id = id;
    w->sink_fd = -1;
    w->wake_fd = -1;
    for (unsigned i = 0; i < CB_MAX_BINDS; i++)
        w->udp[i].fd = -1;
    if (getrandom(&w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) || w->rng == 0)
        w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)id << 32) ^ cb_now_us();
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->ep < 0 || w->wake_fd < 0) {
        snprintf(err, errlen, "epoll_create1/eventfd: %s", strerror(errno));
        return -1;
    }
    struct epoll_event wev = {.events = EPOLLIN, .data.u64 = cb_ev_data(EV_WAKE, 0, 0)};
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->wake_fd, &wev)) {
        snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    /* Calls: this thread's share of --max-calls. */
    w->ncalls = o->max_calls / e->threads + (id < o->max_calls % e->threads ? 1 : 0);
    w->calls = calloc(w->ncalls, sizeof(*w->calls));
    w->free_calls = calloc(w->ncalls, sizeof(*w->free_calls));
    w->media = calloc(w->ncalls, sizeof(*w->media));
    w->udp_bufs = malloc((size_t)CB_UDP_BATCH * CB_UDP_BUF);
    if (!w->calls || !w->free_calls || !w->media || !w->udp_bufs) {
        snprintf(err, errlen, "out of memory for %u calls", w->ncalls);
        return -1;
    }
    for (unsigned i = 0; i < w->ncalls; i++) {
        w->calls[i].conn = -1;
        w->calls[i].media_fd = -1;
        w->calls[i].media_pos = -1;
        w->free_calls[w->nfree++] = w->ncalls - 1 - i;
    }
    if (o->count)
        w->quota = o->count / e->threads + (id < o->count % e->threads ? 1 : 0);
    if (o->count && w->quota == 0)
        atomic_store(&w->count_done, true);
    /* Source addresses: --bind, or what the kernel would pick for the first target. */
    struct sockaddr_storage src[CB_MAX_BINDS];
    socklen_t srclen[CB_MAX_BINDS];
    unsigned nsrc = e->nbinds;
    for (unsigned i = 0; i < e->nbinds; i++) {
        src[i] = e->binds[i];
        srclen[i] = e->bind_len[i];
    }
    if (nsrc == 0) {
        if (route_source(&e->targets[0], &src[0], &srclen[0])) {
            snprintf(err, errlen, "no route to %s: %s", e->targets[0].text, strerror(errno));
            return -1;
        }
        nsrc = 1;
    }
    if (o->transport == CB_TP_UDP) {
        for (unsigned i = 0; i < nsrc; i++) {
            if (udp_open(&src[i], srclen[i], &w->udp[i], true, err, errlen))
                return -1;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = cb_ev_data(EV_UDP, i, 0)};
            if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->udp[i].fd, &ev)) {
                snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
                return -1;
            }
            w->nudp++;
        }
    } else {
        unsigned n = o->conn_per_call ? w->ncalls : o->conns;
        if (!o->conn_per_call && n < (e->ntargets + e->threads - 1) / e->threads)
            n = (e->ntargets + e->threads - 1) / e->threads; /* every target gets load */
        w->nconns = n;
        w->conns = calloc(n, sizeof(*w->conns));
        w->free_conns = calloc(n, sizeof(*w->free_conns));
        if (!w->conns || !w->free_conns) {
            snprintf(err, errlen, "out of memory for %u connections", n);
            return -1;
        }
        for (unsigned i = 0; i < n; i++) {
            cb_conn_t *cn = &w->conns[i];
            cn->fd = -1;
            unsigned k = id * n + i;
            cn->target = k % e->ntargets;
            cn->bind = e->nbinds ? k % e->nbinds : 0;
            w->free_conns[w->nfree_conns++] = n - 1 - i;
        }
    }
    /* The shared RTP sink: advertised in SDP offers when --media is off. */
    cb_udp_t sink;
    if (udp_open(&src[0], srclen[0], &sink, false, err, errlen))
        return -1;
    w->sink_fd = sink.fd;
    w->sink_port = sink.port;
    snprintf(w->sink_host, sizeof(w->sink_host), "%s", sink.host);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = cb_ev_data(EV_SINK, 0, 0)};
    epoll_ctl(w->ep, EPOLL_CTL_ADD, w->sink_fd, &ev);
    return 0;
}

static void worker_free(cb_worker_t *w)
{
    if (!w)
        return;
    for (unsigned i = 0; w->calls && i < w->ncalls; i++)
        if (w->calls[i].media_fd >= 0)
            close(w->calls[i].media_fd);
    for (unsigned i = 0; w->conns && i < w->nconns; i++) {
        cb_conn_t *cn = &w->conns[i];
        if (cn->ssl)
            SSL_free(cn->ssl);
        if (cn->fd >= 0)
            close(cn->fd);
        free(cn->in);
        free(cn->out);
    }
    for (unsigned i = 0; i < CB_MAX_BINDS; i++)
        if (w->udp[i].fd >= 0)
            close(w->udp[i].fd);
    if (w->sink_fd >= 0)
        close(w->sink_fd);
    if (w->ep >= 0)
        close(w->ep);
    if (w->wake_fd >= 0)
        close(w->wake_fd);
    free(w->calls);
    free(w->free_calls);
    free(w->media);
    free(w->conns);
    free(w->free_conns);
    free(w->heap);
    free(w->udp_bufs);
    free(w);
}

cb_engine_t *cb_engine_new(const cb_opts_t *o, const cb_addr_t *targets, unsigned ntargets,
                           char *err, size_t errlen)
{
    cb_engine_t *e = calloc(1, sizeof(*e));
    if (!e || ntargets == 0) {
        snprintf(err, errlen, ntargets ? "out of memory" : "no target address");
        free(e);
        return NULL;
    }
    e->o = *o;
    e->threads = o->threads;
    e->targets = malloc(ntargets * sizeof(*targets));
    if (!e->targets) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(e->targets, targets, ntargets * sizeof(*targets));
    e->ntargets = ntargets;
    for (unsigned i = 0; i < o->nbinds; i++) {
        if (bind_parse(o->binds[i], &e->binds[i], &e->bind_len[i])) {
            snprintf(err, errlen, "--bind: bad address %s", o->binds[i]);
            goto fail;
        }
    }
    e->nbinds = o->nbinds;
    const char *domain = o->domain[0] ? o->domain : o->target.host;
    bool v6 = strchr(domain, ':') != NULL;
    snprintf(e->ruri, sizeof(e->ruri), "sip:%s@%s%s%s", o->user, v6 ? "[" : "", domain,
             v6 ? "]" : "");
    snprintf(e->to_uri, sizeof(e->to_uri), "%s", e->ruri);
    snprintf(e->from_uri, sizeof(e->from_uri), "sip:%s@%s", o->from_user,
             o->from_domain[0] ? o->from_domain : "confbench.invalid");
    if (o->transport == CB_TP_TLS && cb_tls_setup(e, err, errlen))
        goto fail;
    e->w = calloc(e->threads, sizeof(*e->w));
    if (!e->w) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < e->threads; i++) {
        /* Each worker on its own cache lines. */
        e->w[i] = aligned_alloc(64, (sizeof(cb_worker_t) + 63) / 64 * 64);
        if (!e->w[i]) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        memset(e->w[i], 0, sizeof(cb_worker_t));
        e->w[i]->ep = -1;
        if (worker_init(e, e->w[i], i, err, errlen))
            goto fail;
    }
    return e;
fail:
    cb_engine_free(e);
    return NULL;
}

int cb_engine_start(cb_engine_t *e, char *err, size_t errlen)
{
    for (unsigned i = 0; i < e->threads; i++) {
        int rc = pthread_create(&e->w[i]->thread, NULL, worker_main, e->w[i]);
        if (rc) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            cb_engine_stop(e);
            return -1;
        }
        e->w[i]->started = true;
        char name[16];
        snprintf(name, sizeof(name), "confbench-%u", i % 1000);
        pthread_setname_np(e->w[i]->thread, name);
    }
    e->running = true;
    return 0;
}

static void wake_all(cb_engine_t *e)
{
    uint64_t one = 1;
    for (unsigned i = 0; i < e->threads; i++)
        if (e->w[i] && e->w[i]->wake_fd >= 0 &&
            write(e->w[i]->wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            continue; /* the counter is already non-zero: the thread wakes anyway */
}

void cb_engine_set_rate(cb_engine_t *e, double rate)
{
    atomic_store(&e->rate_milli, (uint64_t)(rate * 1000.0 + 0.5));
    atomic_fetch_add_explicit(&e->rate_epoch, 1, memory_order_release);
    wake_all(e);
}

bool cb_engine_rate_applied(const cb_engine_t *e)
{
    unsigned ep = atomic_load(&e->rate_epoch);
    for (unsigned i = 0; i < e->threads; i++)
        if (atomic_load_explicit(&e->w[i]->applied_epoch, memory_order_acquire) != ep)
            return false;
    return true;
}

bool cb_engine_count_reached(const cb_engine_t *e)
{
    if (!e->o.count)
        return false;
    for (unsigned i = 0; i < e->threads; i++)
        if (!atomic_load(&e->w[i]->count_done))
            return false;
    return true;
}

void cb_engine_snapshot(const cb_engine_t *e, cb_counters_t *total)
{
    for (unsigned i = 0; i < e->threads; i++)
        cb_counters_add(total, &e->w[i]->c);
}

void cb_engine_stop(cb_engine_t *e)
{
    if (!e || !e->w)
        return;
    atomic_store(&e->quit, true);
    wake_all(e);
    for (unsigned i = 0; i < e->threads; i++) {
        if (e->w[i] && e->w[i]->started) {
            pthread_join(e->w[i]->thread, NULL);
            e->w[i]->started = false;
        }
    }
    e->running = false;
}

const char *cb_engine_message(const cb_engine_t *e, cb_fail_t reason)
{
    if (!e || (unsigned)reason >= CB_FAIL_REASONS ||
        !atomic_load_explicit(&e->msg_ready[reason], memory_order_acquire))
        return "";
    return e->msg[reason];
}

void cb_engine_free(cb_engine_t *e)
{
    if (!e)
        return;
    cb_engine_stop(e);
    for (unsigned i = 0; e->w && i < e->threads; i++)
        worker_free(e->w[i]);
    free(e->w);
    SSL_CTX_free(e->ssl);
    free(e->targets);
    free(e);
}
