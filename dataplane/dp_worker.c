#include "dp_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cn_log.h"
#include "cn_time.h"
#include "dp_frame.h"
#include "dp_media.h"
#include "dp_ring.h"
#include "dp_sock.h"
#include "dp_tls.h"

#define UDP_BATCH 32
#define UDP_RX_SIZE 65536
#define UDP_TX_SLOT 4096
#define STREAM_READ_SIZE 65536
#define RING_SLOTS 4096
#define EPOLL_EVENTS 128
#define SWEEP_INTERVAL_MS 250

/* epoll_event.data.u64 = tag << 32 | value */
enum ev_tag { EV_UDP = 1, EV_TCP_LISTEN, EV_TLS_LISTEN, EV_WAKE, EV_CONN, EV_MEDIA };

enum conn_state { CONN_FREE = 0, CONN_HANDSHAKE, CONN_OPEN, CONN_CLOSING };

/* A TCP or TLS connection. Owner: the worker that accepted it. */
struct dp_conn {
    int fd;
    uint32_t id;              /* generation << 20 | slot index */
    uint8_t state;            /* enum conn_state */
    uint8_t tls;
    uint8_t epollout;         /* EPOLLOUT armed */
    uint8_t close_after_flush;
    uint8_t outbound;         /* we connected (dp_connect) */
    uint8_t connecting;       /* outbound TCP connect() still in progress */
    uint8_t was_up;           /* outbound: reached CONN_OPEN once */
    uint64_t target_hash;     /* outbound: hash of (transport, address, tls_name) */
    SSL *ssl;
    char *rbuf;               /* partial message, NULL while none is pending */
    size_t rlen, rcap;
    dp_frame_state_t fst;
    char *wbuf;               /* bytes the socket could not take yet */
    size_t wlen, woff, wcap;
    uint64_t since;           /* accept time (handshake list) or last activity (LRU) */
    struct dp_conn *prev, *next; /* in exactly one of: handshake list, LRU list */
    cn_peer_t peer;
};

struct conn_list {
    struct dp_conn *head, *tail;
};

/* A message between workers. */
struct ring_slot {
    uint32_t kind; /* RING_POST, RING_SEND */
    void *ptr;
};
enum { RING_POST = 1, RING_SEND = 2 };

struct ring_send {
    cn_peer_t peer;
    size_t len;
    char data[];
};

struct udp_tx {
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage addr[UDP_BATCH];
    char buf[UDP_BATCH][UDP_TX_SLOT];
    unsigned n;
};

struct __attribute__((aligned(64))) dp_worker {
    struct dp_engine *eng;
    unsigned id;
    int cpu;
    pthread_t thread;
    int epfd;
    int wakefd;
    int udp_fd, tcp_fd, tls_fd;
    void *ctx;                 /* the handler's per-worker context */
    uint64_t now;              /* cached per loop iteration */
    uint64_t next_sweep;

    struct dp_conn *conns;     /* max_connections slots */
    uint32_t *free_slots;      /* stack of free slot indices */
    uint32_t n_free;
    struct conn_list hs_list;  /* handshaking, by accept time */
    struct conn_list lru;      /* open, by last activity */
    uint32_t out_ids[256];     /* outbound connections, for reuse by target */
    unsigned n_out;
    unsigned deferred_close;   /* connections marked CLOSING in this pass */

    /* UDP batches */
    struct mmsghdr rx_msgs[UDP_BATCH];
    struct iovec rx_iov[UDP_BATCH];
    struct sockaddr_storage rx_addr[UDP_BATCH];
    char *rx_buf;              /* UDP_BATCH * UDP_RX_SIZE */
    struct udp_tx *tx;
    char *scratch;             /* STREAM_READ_SIZE */

    struct dp_media *media;    /* media ports, legs and conferences (dp_media*.c) */

    struct dp_stats stats;
};

struct dp_engine {
    const struct dp_conf *conf;
    dp_handler_t h;
    SSL_CTX *tls_ctx;
    SSL_CTX *tls_client_ctx;
    unsigned n;
    struct dp_worker *w;       /* n workers */
    struct dp_ring **rings;    /* rings[from * n + to] */
    struct dp_ring **to_ctl;   /* to_ctl[w]: worker w -> control thread */
    struct dp_ring **from_ctl; /* from_ctl[w]: control thread -> worker w */
    int ctl_wakefd;
    atomic_int stopping;
    int started;
};

/* ---- counters: single writer, so a relaxed load + store is enough ---- */
static inline void stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}
static inline void stat_sub(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v,
                          memory_order_relaxed);
}

/* ---- connection lists ---- */
static void list_push(struct conn_list *l, struct dp_conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
}

static void list_del(struct conn_list *l, struct dp_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
}

static struct conn_list *conn_list_of(struct dp_worker *w, struct dp_conn *c)
{
    return c->state == CONN_HANDSHAKE ? &w->hs_list : &w->lru;
}

static void conn_touch(struct dp_worker *w, struct dp_conn *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->since = w->now;
    if (w->lru.tail != c) {
        list_del(&w->lru, c);
        list_push(&w->lru, c);
    }
}

static struct dp_conn *conn_by_id(struct dp_worker *w, uint32_t id)
{
    uint32_t idx = id & 0xfffff;
    if (idx >= w->eng->conf->max_connections)
        return NULL;
    struct dp_conn *c = &w->conns[idx];
    return (c->state != CONN_FREE && c->id == id) ? c : NULL;
}

static void conn_notify(struct dp_worker *w, struct dp_conn *c, dp_conn_event_t ev,
                        const char *reason)
{
    const dp_handler_t *h = &w->eng->h;
    if (c->outbound && h->conn_event) {
        cn_peer_t peer = c->peer;
        h->conn_event(w->ctx, &peer, ev, reason, w->now);
    }
}

static void conn_free_why(struct dp_worker *w, struct dp_conn *c, _Atomic uint64_t *reason,
                          const char *why);
static void tls_handshake(struct dp_worker *w, struct dp_conn *c);
static void conn_flush(struct dp_worker *w, struct dp_conn *c);

static void conn_free(struct dp_worker *w, struct dp_conn *c, _Atomic uint64_t *reason)
{
    conn_free_why(w, c, reason, NULL);
}

static void conn_free_why(struct dp_worker *w, struct dp_conn *c, _Atomic uint64_t *reason,
                          const char *why)
{
    if (c->state == CONN_FREE)
        return;
    if (c->outbound) {
        for (unsigned i = 0; i < w->n_out; i++)
            if (w->out_ids[i] == c->id) {
                w->out_ids[i] = w->out_ids[--w->n_out];
                break;
            }
        conn_notify(w, c, c->was_up ? DP_CONN_CLOSED : DP_CONN_FAILED,
                    why ? why : c->was_up ? "connection closed" : "connection failed");
    }
    list_del(conn_list_of(w, c), c);
    epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        if (c->state == CONN_OPEN || c->state == CONN_CLOSING)
            SSL_shutdown(c->ssl); /* best effort close_notify; never waits */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    c->rbuf = c->wbuf = NULL;
    c->rlen = c->rcap = c->wlen = c->woff = c->wcap = 0;
    c->state = CONN_FREE;
    w->free_slots[w->n_free++] = c->id & 0xfffff;
    stat_sub(&w->stats.connections, 1);
    if (reason)
        stat_add(reason, 1);
}

/* Marks a connection for closing once its queued bytes are written. */
static void conn_close_soon(struct dp_worker *w, struct dp_conn *c, _Atomic uint64_t *reason)
{
    if (c->wlen > c->woff && c->state == CONN_OPEN) {
        /* read nothing more; write what is queued, then close */
        c->close_after_flush = 1;
        c->state = CONN_CLOSING;
        struct epoll_event ev = {.events = EPOLLOUT,
                                 .data.u64 = (uint64_t)EV_CONN << 32 | (c->id & 0xfffff)};
        epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->epollout = 1;
        if (reason)
            stat_add(reason, 1);
        return;
    }
    conn_free(w, c, reason);
}

static void set_epollout(struct dp_worker *w, struct dp_conn *c, int on)
{
    if (c->epollout == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.u64 = (uint64_t)EV_CONN << 32 | (c->id & 0xfffff)};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epollout = (uint8_t)on;
}

/* Writes as much as the socket takes. Returns bytes written, 0 when it would
 * block, -1 when the connection failed. */
static ssize_t conn_write_raw(struct dp_conn *c, const char *buf, size_t len)
{
    if (c->ssl) {
        ERR_clear_error();
        int n = SSL_write(c->ssl, buf, (int)len);
        if (n > 0)
            return n;
        int e = SSL_get_error(c->ssl, n);
        return (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? 0 : -1;
    }
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
}

static int wbuf_append(struct dp_conn *c, const char *buf, size_t len, size_t limit)
{
    if (c->woff > 0 && c->woff == c->wlen)
        c->woff = c->wlen = 0;
    if (c->wlen + len > c->wcap) {
        if (c->woff > 0) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + len > limit)
            return -1; /* the peer does not read: give up on it */
        size_t cap = c->wcap ? c->wcap : 4096;
        while (cap < c->wlen + len)
            cap *= 2;
        char *nb = realloc(c->wbuf, cap);
        if (!nb)
            return -1;
        c->wbuf = nb;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, buf, len);
    c->wlen += len;
    return 0;
}

static void conn_flush(struct dp_worker *w, struct dp_conn *c)
{
    while (c->wlen > c->woff) {
        ssize_t n = conn_write_raw(c, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            conn_free(w, c, &w->stats.conns_closed_error);
            return;
        }
        if (n == 0) {
            set_epollout(w, c, 1);
            return;
        }
        stat_add(&w->stats.tx_bytes, (uint64_t)n);
        c->woff += (size_t)n;
    }
    c->woff = c->wlen = 0;
    if (c->wcap > 65536) { /* don't keep a big buffer on an idle connection */
        free(c->wbuf);
        c->wbuf = NULL;
        c->wcap = 0;
    }
    if (c->close_after_flush) {
        conn_free(w, c, NULL);
        return;
    }
    set_epollout(w, c, 0);
}

static int conn_send(struct dp_worker *w, struct dp_conn *c, const char *buf, size_t len)
{
    size_t limit = 4u * w->eng->conf->max_message_size + 65536;
    if (c->state == CONN_HANDSHAKE && c->outbound) { /* written once it is up */
        if (wbuf_append(c, buf, len, limit) != 0) {
            conn_free_why(w, c, &w->stats.conns_closed_error, "send queue full");
            return -1;
        }
        return 0;
    }
    if (c->state != CONN_OPEN)
        return -1;
    if (c->wlen > c->woff) { /* keep order behind what is queued */
        if (wbuf_append(c, buf, len, limit) != 0) {
            conn_free(w, c, &w->stats.conns_closed_error);
            return -1;
        }
        return 0;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = conn_write_raw(c, buf + off, len - off);
        if (n < 0) {
            conn_free(w, c, &w->stats.conns_closed_error);
            return -1;
        }
        if (n == 0)
            break;
        off += (size_t)n;
        stat_add(&w->stats.tx_bytes, (uint64_t)n);
    }
    if (off < len) {
        if (wbuf_append(c, buf + off, len - off, limit) != 0) {
            conn_free(w, c, &w->stats.conns_closed_error);
            return -1;
        }
        set_epollout(w, c, 1);
    }
    return 0;
}

/* ---- UDP ---- */
static void udp_flush(struct dp_worker *w)
{
    struct udp_tx *t = w->tx;
    unsigned sent = 0;
    while (sent < t->n) {
        int n = sendmmsg(w->udp_fd, t->msgs + sent, t->n - sent, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* EAGAIN (socket buffer full) or an error: a datagram is lost, as UDP may */
            stat_add(&w->stats.send_failures, t->n - sent);
            break;
        }
        for (int i = 0; i < n; i++)
            stat_add(&w->stats.tx_bytes, t->msgs[sent + (unsigned)i].msg_len);
        sent += (unsigned)n;
    }
    t->n = 0;
}

static int udp_send(struct dp_worker *w, const cn_peer_t *to, const char *buf, size_t len)
{
    if (w->udp_fd < 0)
        return -1;
    if (len > UDP_TX_SLOT) {
        ssize_t n = sendto(w->udp_fd, buf, len, 0, (const struct sockaddr *)&to->addr,
                           to->addrlen);
        if (n < 0) {
            stat_add(&w->stats.send_failures, 1);
            return -1;
        }
        stat_add(&w->stats.tx_bytes, (uint64_t)n);
        return 0;
    }
    struct udp_tx *t = w->tx;
    if (t->n == UDP_BATCH)
        udp_flush(w);
    unsigned i = t->n++;
    memcpy(t->buf[i], buf, len);
    memcpy(&t->addr[i], &to->addr, to->addrlen);
    t->iov[i].iov_base = t->buf[i];
    t->iov[i].iov_len = len;
    memset(&t->msgs[i].msg_hdr, 0, sizeof t->msgs[i].msg_hdr);
    t->msgs[i].msg_hdr.msg_name = &t->addr[i];
    t->msgs[i].msg_hdr.msg_namelen = to->addrlen;
    t->msgs[i].msg_hdr.msg_iov = &t->iov[i];
    t->msgs[i].msg_hdr.msg_iovlen = 1;
    return 0;
}

static void udp_readable(struct dp_worker *w)
{
    const dp_handler_t *h = &w->eng->h;
    for (int round = 0; round < 8; round++) { /* bounded: let other sockets in */
        for (unsigned i = 0; i < UDP_BATCH; i++) {
            w->rx_iov[i].iov_base = w->rx_buf + (size_t)i * UDP_RX_SIZE;
            w->rx_iov[i].iov_len = UDP_RX_SIZE;
            memset(&w->rx_msgs[i].msg_hdr, 0, sizeof w->rx_msgs[i].msg_hdr);
            w->rx_msgs[i].msg_hdr.msg_name = &w->rx_addr[i];
            w->rx_msgs[i].msg_hdr.msg_namelen = sizeof w->rx_addr[i];
            w->rx_msgs[i].msg_hdr.msg_iov = &w->rx_iov[i];
            w->rx_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(w->udp_fd, w->rx_msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            cn_peer_t peer = {.transport = CN_TRANSPORT_UDP,
                              .worker = (uint16_t)w->id,
                              .conn_id = 0,
                              .addrlen = w->rx_msgs[i].msg_hdr.msg_namelen};
            memcpy(&peer.addr, &w->rx_addr[i], peer.addrlen);
            size_t len = w->rx_msgs[i].msg_len;
            stat_add(&w->stats.rx_bytes, len);
            if (w->rx_msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                continue; /* larger than any SIP datagram we take */
            const char *p = w->rx_buf + (size_t)i * UDP_RX_SIZE;
            /* keep-alive CRLFs over UDP carry no message */
            if (len <= 4 && strspn(p, "\r\n") >= len)
                continue;
            stat_add(&w->stats.rx_messages, 1);
            h->message(w->ctx, p, len, &peer, w->now);
        }
        udp_flush(w);
        if (n < UDP_BATCH)
            break;
    }
}

/* ---- streams ---- */

/* Frames and delivers what `buf` holds for c. Returns bytes consumed; sets *dead
 * when the connection was closed. */
static size_t stream_deliver(struct dp_worker *w, struct dp_conn *c, const char *buf,
                             size_t avail, int *dead)
{
    const dp_handler_t *h = &w->eng->h;
    size_t max = w->eng->conf->max_message_size;
    size_t off = 0;
    uint32_t id = c->id;
    *dead = 0;
    while (off < avail) {
        size_t len = 0;
        dp_frame_result_t r = dp_frame_next(buf + off, avail - off, max, &c->fst, &len);
        if (r == DP_FRAME_PARTIAL)
            break;
        memset(&c->fst, 0, sizeof c->fst);
        switch (r) {
        case DP_FRAME_MESSAGE: {
            cn_peer_t peer = c->peer;
            stat_add(&w->stats.rx_messages, 1);
            h->message(w->ctx, buf + off, len, &peer, w->now);
            break;
        }
        case DP_FRAME_PING:
            stat_add(&w->stats.keepalive_pings, 1);
            conn_send(w, c, "\r\n", 2);
            break;
        case DP_FRAME_PONG:
            break;
        case DP_FRAME_TOO_BIG:
            cn_log(CN_LOG_WARN, "conn_close", "reason=oversize peer=%s transport=%s max=%zu",
                   dp_sock_ntop(&c->peer.addr, (char[64]){0}, 64),
                   cn_transport_name(c->peer.transport), max);
            conn_free(w, c, &w->stats.conns_closed_oversize);
            *dead = 1;
            return off;
        default: { /* no usable Content-Length: answer, then close */
            cn_peer_t peer = c->peer;
            const char *why = r == DP_FRAME_NO_LENGTH ? "Missing Content-Length header"
                                                      : "Bad Content-Length header";
            h->bad_frame(w->ctx, buf + off, len, &peer, why, w->now);
            if (conn_by_id(w, id) == c)
                conn_close_soon(w, c, &w->stats.conns_closed_error);
            *dead = 1;
            return off;
        }
        }
        off += len;
        /* the handler may have closed the connection (dp_close) */
        if (conn_by_id(w, id) != c || c->state != CONN_OPEN) {
            *dead = 1;
            return off;
        }
    }
    return off;
}

/* Takes newly read bytes: parsed straight from `data` when nothing is pending,
 * else appended to the connection's buffer. Returns -1 when the connection died. */
static int stream_input(struct dp_worker *w, struct dp_conn *c, const char *data, size_t n)
{
    int dead = 0;
    if (c->rlen == 0) {
        size_t used = stream_deliver(w, c, data, n, &dead);
        if (dead)
            return -1;
        data += used;
        n -= used;
        if (n == 0)
            return 0;
    }
    size_t need = c->rlen + n;
    if (need > c->rcap) {
        size_t cap = c->rcap ? c->rcap : 4096;
        while (cap < need)
            cap *= 2;
        char *nb = realloc(c->rbuf, cap);
        if (!nb) {
            conn_free(w, c, &w->stats.conns_closed_error);
            return -1;
        }
        c->rbuf = nb;
        c->rcap = cap;
    }
    memcpy(c->rbuf + c->rlen, data, n);
    c->rlen += n;
    size_t used = stream_deliver(w, c, c->rbuf, c->rlen, &dead);
    if (dead)
        return -1;
    if (used == c->rlen) {
        free(c->rbuf); /* an idle connection keeps no read buffer */
        c->rbuf = NULL;
        c->rlen = c->rcap = 0;
    } else if (used > 0) {
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
    }
    return 0;
}

/* The connection is usable: move it to the LRU list, tell the upper layer, write
 * what was queued while it was coming up. */
static void conn_up(struct dp_worker *w, struct dp_conn *c)
{
    list_del(&w->hs_list, c);
    c->state = CONN_OPEN;
    c->since = w->now;
    list_push(&w->lru, c);
    if (!c->outbound)
        return;
    c->was_up = 1;
    uint32_t id = c->id;
    conn_notify(w, c, DP_CONN_UP, NULL);
    if (conn_by_id(w, id) == c)
        conn_flush(w, c);
}

/* Outbound TCP connect() finished (EPOLLOUT): TLS starts, or the connection is up. */
static void connect_done(struct dp_worker *w, struct dp_conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        char addr[64], reason[200];
        snprintf(reason, sizeof reason, "connect %s: %s",
                 dp_sock_ntop(&c->peer.addr, addr, sizeof addr), strerror(err));
        conn_free_why(w, c, &w->stats.conns_closed_error, reason);
        return;
    }
    c->connecting = 0;
    if (c->ssl) {
        tls_handshake(w, c);
        return;
    }
    set_epollout(w, c, 0);
    conn_up(w, c);
}

static void tls_handshake(struct dp_worker *w, struct dp_conn *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        conn_up(w, c);
        stat_add(&w->stats.tls_handshakes, 1);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ) {
        set_epollout(w, c, 0);
        return;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        set_epollout(w, c, 1);
        return;
    }
    char why[256], addr[64], reason[400];
    long vr = SSL_get_verify_result(c->ssl);
    dp_tls_last_error(why, sizeof why);
    if (vr != X509_V_OK)
        snprintf(reason, sizeof reason, "TLS %s: %s: %s", dp_sock_ntop(&c->peer.addr, addr, sizeof addr),
                 why, X509_verify_cert_error_string(vr));
    else
        snprintf(reason, sizeof reason, "TLS %s: %s", dp_sock_ntop(&c->peer.addr, addr, sizeof addr),
                 why);
    cn_log(CN_LOG_INFO, "tls_handshake_failed", "direction=%s reason=\"%s\"",
           c->outbound ? "outgoing" : "incoming", reason);
    stat_add(&w->stats.tls_handshake_failures, 1);
    conn_free_why(w, c, NULL, reason);
}

static void conn_readable(struct dp_worker *w, struct dp_conn *c)
{
    uint32_t id = c->id;
    if (c->state == CONN_HANDSHAKE) {
        tls_handshake(w, c);
        if (conn_by_id(w, id) != c || c->state != CONN_OPEN)
            return;
    }
    conn_touch(w, c);
    for (int round = 0; round < 16; round++) { /* bounded per event */
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int r = SSL_read(c->ssl, w->scratch, STREAM_READ_SIZE);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_epollout(w, c, 1);
                    return;
                }
                conn_free(w, c, e == SSL_ERROR_ZERO_RETURN ? NULL : &w->stats.conns_closed_error);
                return;
            }
            n = r;
        } else {
            n = recv(c->fd, w->scratch, STREAM_READ_SIZE, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                    return;
                conn_free(w, c, &w->stats.conns_closed_error);
                return;
            }
            if (n == 0) {
                conn_free(w, c, NULL);
                return;
            }
        }
        stat_add(&w->stats.rx_bytes, (uint64_t)n);
        if (stream_input(w, c, w->scratch, (size_t)n) != 0)
            return;
        if (conn_by_id(w, id) != c || c->state != CONN_OPEN)
            return;
    }
}

static void conn_event(struct dp_worker *w, uint32_t idx, uint32_t events)
{
    struct dp_conn *c = &w->conns[idx];
    if (c->state == CONN_FREE)
        return;
    uint32_t id = c->id;
    if (c->connecting) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connect_done(w, c);
        return;
    }
    if (events & EPOLLOUT) {
        if (c->state == CONN_HANDSHAKE)
            tls_handshake(w, c);
        else
            conn_flush(w, c);
        if (conn_by_id(w, id) != c)
            return;
    }
    if (c->state == CONN_CLOSING) {
        if (events & (EPOLLHUP | EPOLLERR))
            conn_free(w, c, NULL);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        conn_readable(w, c);
}

/* Takes a free slot for fd and registers it with epoll. NULL when the worker is full
 * (the caller closes fd). */
static struct dp_conn *conn_alloc(struct dp_worker *w, int fd, cn_transport_t tr,
                                  const struct sockaddr_storage *ss, socklen_t sl)
{
    if (w->n_free == 0) {
        stat_add(&w->stats.conns_refused_full, 1);
        return NULL;
    }
    uint32_t idx = w->free_slots[--w->n_free];
    struct dp_conn *c = &w->conns[idx];
    uint32_t gen = ((c->id >> 20) + 1) & 0xfff;
    memset(c, 0, sizeof *c);
    c->id = gen << 20 | idx;
    c->fd = fd;
    c->tls = tr == CN_TRANSPORT_TLS;
    c->since = w->now;
    c->peer.transport = tr;
    c->peer.worker = (uint16_t)w->id;
    c->peer.conn_id = c->id;
    c->peer.addrlen = sl;
    memcpy(&c->peer.addr, ss, sl);
    c->state = tr == CN_TRANSPORT_TLS ? CONN_HANDSHAKE : CONN_OPEN;
    list_push(c->state == CONN_HANDSHAKE ? &w->hs_list : &w->lru, c);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)EV_CONN << 32 | idx};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
    stat_add(&w->stats.connections, 1);
    return c;
}

static void accept_ready(struct dp_worker *w, int lfd, int tls)
{
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct dp_conn *c = conn_alloc(w, fd, tls ? CN_TRANSPORT_TLS : CN_TRANSPORT_TCP, &ss, sl);
        if (!c) {
            close(fd);
            continue;
        }
        stat_add(&w->stats.conns_accepted, 1);
        if (tls) {
            c->ssl = SSL_new(w->eng->tls_ctx);
            if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
                stat_add(&w->stats.tls_handshake_failures, 1);
                conn_free(w, c, NULL);
                continue;
            }
            SSL_set_accept_state(c->ssl);
        }
    }
}

static uint64_t target_hash(const struct dp_target *t)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)t->transport;
    const unsigned char *p = (const unsigned char *)&t->addr;
    for (socklen_t i = 0; i < t->addrlen; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    for (const char *n = t->tls_name; n && *n; n++)
        h = (h ^ (unsigned char)(*n | 0x20)) * 1099511628211ull;
    return h;
}

int dp_connect(struct dp_worker *w, const struct dp_target *t, cn_peer_t *out, char *err,
               size_t errlen)
{
    char addr[64];
    memset(out, 0, sizeof *out);
    out->transport = t->transport;
    out->worker = (uint16_t)w->id;
    out->addrlen = t->addrlen;
    memcpy(&out->addr, &t->addr, t->addrlen);
    if (t->transport == CN_TRANSPORT_UDP) {
        if (w->udp_fd < 0) {
            snprintf(err, errlen, "no UDP listener to send from (sip.udp_port = 0)");
            return -1;
        }
        return 0;
    }
    uint64_t h = target_hash(t);
    for (unsigned i = 0; i < w->n_out; i++) {
        struct dp_conn *c = conn_by_id(w, w->out_ids[i]);
        if (c && c->target_hash == h && c->peer.transport == t->transport &&
            c->state != CONN_CLOSING) {
            *out = c->peer;
            return 0;
        }
    }
    if (t->transport == CN_TRANSPORT_TLS && !w->eng->tls_client_ctx) {
        snprintf(err, errlen, "no TLS client context (tls.certificate/tls.key not set)");
        return -1;
    }
    if (w->n_out >= sizeof w->out_ids / sizeof w->out_ids[0]) {
        snprintf(err, errlen, "too many outbound connections on worker %u", w->id);
        return -1;
    }
    int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) != 0 &&
        errno != EINPROGRESS) {
        snprintf(err, errlen, "connect %s: %s", dp_sock_ntop(&t->addr, addr, sizeof addr),
                 strerror(errno));
        close(fd);
        return -1;
    }
    struct dp_conn *c = conn_alloc(w, fd, t->transport, &t->addr, t->addrlen);
    if (!c) {
        snprintf(err, errlen, "worker %u has no free connection slot", w->id);
        close(fd);
        return -1;
    }
    /* an outbound connection is "handshaking" until it is up, TCP included */
    if (c->state == CONN_OPEN) {
        list_del(&w->lru, c);
        c->state = CONN_HANDSHAKE;
        list_push(&w->hs_list, c);
    }
    c->outbound = 1;
    c->connecting = 1;
    c->target_hash = h;
    w->out_ids[w->n_out++] = c->id;
    set_epollout(w, c, 1);
    if (t->transport == CN_TRANSPORT_TLS) {
        c->ssl = SSL_new(w->eng->tls_client_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1 ||
            (t->tls_name && (SSL_set_tlsext_host_name(c->ssl, t->tls_name) != 1 ||
                             SSL_set1_host(c->ssl, t->tls_name) != 1))) {
            snprintf(err, errlen, "TLS setup for %s failed", t->tls_name ? t->tls_name : "peer");
            c->outbound = 0; /* nothing to report: the caller hears it now */
            for (unsigned i = 0; i < w->n_out; i++)
                if (w->out_ids[i] == c->id)
                    w->out_ids[i] = w->out_ids[--w->n_out];
            conn_free(w, c, NULL);
            return -1;
        }
        SSL_set_connect_state(c->ssl);
    }
    *out = c->peer;
    return 0;
}

struct x509_st *dp_peer_certificate(struct dp_worker *w, const cn_peer_t *peer)
{
    if (peer->transport != CN_TRANSPORT_TLS || peer->worker != w->id)
        return NULL;
    struct dp_conn *c = conn_by_id(w, peer->conn_id);
    if (!c || !c->ssl || c->state != CONN_OPEN || SSL_get_verify_result(c->ssl) != X509_V_OK)
        return NULL;
    return SSL_get0_peer_certificate(c->ssl);
}

/* Closes connections whose handshake or idle time ran out. Both lists are ordered
 * by `since`, so each sweep stops at the first live entry. */
static void sweep(struct dp_worker *w)
{
    const struct dp_conf *conf = w->eng->conf;
    while (w->hs_list.head && w->now - w->hs_list.head->since >= conf->tls.handshake_timeout_ms) {
        struct dp_conn *c = w->hs_list.head;
        char addr[64], reason[200];
        snprintf(reason, sizeof reason, "%s %s: no answer within %u ms",
                 c->connecting ? "connect" : "TLS handshake",
                 dp_sock_ntop(&c->peer.addr, addr, sizeof addr), conf->tls.handshake_timeout_ms);
        if (!c->connecting)
            stat_add(&w->stats.tls_handshake_failures, 1);
        conn_free_why(w, c, &w->stats.conns_closed_idle, reason);
    }
    while (w->lru.head && w->now - w->lru.head->since >= conf->tcp_idle_timeout_ms)
        conn_free(w, w->lru.head, &w->stats.conns_closed_idle);
}

/* ---- rings ---- */
static void wake(struct dp_worker *target)
{
    uint64_t one = 1;
    ssize_t r = write(target->wakefd, &one, sizeof one);
    (void)r;
}

static int ring_put(struct dp_worker *w, unsigned to, uint32_t kind, void *ptr)
{
    struct dp_engine *e = w->eng;
    struct ring_slot s = {.kind = kind, .ptr = ptr};
    if (dp_ring_enqueue(e->rings[w->id * e->n + to], &s) != 0) {
        stat_add(&w->stats.ring_drops, 1);
        return -1;
    }
    wake(&e->w[to]);
    return 0;
}

static void rings_drain(struct dp_worker *w)
{
    struct dp_engine *e = w->eng;
    uint64_t v;
    ssize_t r = read(w->wakefd, &v, sizeof v);
    (void)r;
    void *msg;
    for (int i = 0; i < RING_SLOTS && dp_ring_dequeue(e->from_ctl[w->id], &msg) == 0; i++)
        e->h.post(w->ctx, msg, w->now);
    for (unsigned from = 0; from < e->n; from++) {
        struct dp_ring *ring = e->rings[from * e->n + w->id];
        struct ring_slot s;
        for (int i = 0; i < RING_SLOTS && dp_ring_dequeue(ring, &s) == 0; i++) {
            if (s.kind == RING_POST) {
                e->h.post(w->ctx, s.ptr, w->now);
            } else {
                struct ring_send *m = s.ptr;
                dp_send(w, &m->peer, m->data, m->len);
                free(m);
            }
        }
    }
}

/* ---- public sending API ---- */
int dp_send(struct dp_worker *w, const cn_peer_t *to, const char *buf, size_t len)
{
    if (to->transport == CN_TRANSPORT_UDP) {
        stat_add(&w->stats.tx_messages, 1);
        return udp_send(w, to, buf, len);
    }
    if (to->worker != w->id) {
        if (to->worker >= w->eng->n)
            return -1;
        struct ring_send *m = malloc(sizeof *m + len);
        if (!m)
            return -1;
        m->peer = *to;
        m->len = len;
        memcpy(m->data, buf, len);
        if (ring_put(w, to->worker, RING_SEND, m) != 0) {
            free(m);
            return -1;
        }
        return 0;
    }
    struct dp_conn *c = conn_by_id(w, to->conn_id);
    if (!c) {
        stat_add(&w->stats.send_failures, 1);
        return -1;
    }
    stat_add(&w->stats.tx_messages, 1);
    return conn_send(w, c, buf, len);
}

int dp_post(struct dp_worker *w, unsigned to, void *msg)
{
    if (to >= w->eng->n)
        return -1;
    return ring_put(w, to, RING_POST, msg);
}

void dp_close(struct dp_worker *w, const cn_peer_t *peer)
{
    if (peer->transport == CN_TRANSPORT_UDP || peer->worker != w->id)
        return;
    struct dp_conn *c = conn_by_id(w, peer->conn_id);
    if (c)
        conn_close_soon(w, c, NULL);
}

int dp_to_control(struct dp_worker *w, void *msg)
{
    struct dp_engine *e = w->eng;
    if (dp_ring_enqueue(e->to_ctl[w->id], &msg) != 0) {
        stat_add(&w->stats.ring_drops, 1);
        return -1;
    }
    uint64_t one = 1;
    ssize_t r = write(e->ctl_wakefd, &one, sizeof one);
    (void)r;
    return 0;
}

int dp_engine_control_fd(const struct dp_engine *e) { return e->ctl_wakefd; }

size_t dp_engine_control_drain(struct dp_engine *e,
                               void (*fn)(void *arg, unsigned worker, void *msg), void *arg)
{
    uint64_t v;
    ssize_t r = read(e->ctl_wakefd, &v, sizeof v);
    (void)r;
    size_t n = 0;
    for (unsigned w = 0; w < e->n; w++) {
        void *msg;
        while (dp_ring_dequeue(e->to_ctl[w], &msg) == 0) {
            fn(arg, w, msg);
            n++;
        }
    }
    return n;
}

int dp_engine_post(struct dp_engine *e, unsigned worker, void *msg)
{
    if (worker >= e->n || dp_ring_enqueue(e->from_ctl[worker], &msg) != 0)
        return -1;
    wake(&e->w[worker]);
    return 0;
}

unsigned dp_worker_id(const struct dp_worker *w) { return w->id; }
struct dp_media *dp_worker_media(struct dp_worker *w) { return w->media; }
unsigned dp_worker_count(const struct dp_worker *w) { return w->eng->n; }

/* ---- the loop ---- */
static void *worker_main(void *arg)
{
    struct dp_worker *w = arg;
    struct dp_engine *e = w->eng;
    struct epoll_event evs[EPOLL_EVENTS];

    if (w->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(w->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
            w->cpu = -1;
    }
    char name[16];
    snprintf(name, sizeof name, "cn-worker-%u", w->id);
    pthread_setname_np(pthread_self(), name);

    w->now = cn_now_ms();
    w->ctx = e->h.start ? e->h.start(w, e->h.arg) : NULL;
    w->next_sweep = w->now + SWEEP_INTERVAL_MS;

    while (!atomic_load_explicit(&e->stopping, memory_order_relaxed)) {
        int64_t next = e->h.tick ? e->h.tick(w->ctx, w->now) : -1;
        int64_t to_sweep = (int64_t)(w->next_sweep - w->now);
        int timeout = (int)(next >= 0 && next < to_sweep ? next : to_sweep);
        if (timeout < 0)
            timeout = 0;
        udp_flush(w);
        int n = epoll_wait(w->epfd, evs, EPOLL_EVENTS, timeout);
        w->now = cn_now_ms();
        for (int i = 0; i < n; i++) {
            uint32_t tag = (uint32_t)(evs[i].data.u64 >> 32);
            uint32_t val = (uint32_t)evs[i].data.u64;
            switch (tag) {
            case EV_UDP:
                udp_readable(w);
                break;
            case EV_TCP_LISTEN:
                accept_ready(w, w->tcp_fd, 0);
                break;
            case EV_TLS_LISTEN:
                accept_ready(w, w->tls_fd, 1);
                break;
            case EV_WAKE:
                rings_drain(w);
                break;
            case EV_CONN:
                conn_event(w, val, evs[i].events);
                break;
            case EV_MEDIA:
                dp_media_event(w->media, val, evs[i].events);
                break;
            }
        }
        if (w->now >= w->next_sweep) {
            sweep(w);
            w->next_sweep = w->now + SWEEP_INTERVAL_MS;
        }
    }

    /* graceful stop: no new work; answer what is queued, then close */
    if (w->udp_fd >= 0)
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->udp_fd, NULL);
    rings_drain(w);
    udp_flush(w);
    if (e->h.stop)
        e->h.stop(w->ctx);
    w->ctx = NULL;
    for (uint32_t i = 0; i < e->conf->max_connections; i++)
        if (w->conns[i].state != CONN_FREE) {
            conn_flush(w, &w->conns[i]);
            conn_free(w, &w->conns[i], NULL);
        }
    return NULL;
}

/* ---- engine ---- */
static int worker_init(struct dp_engine *e, struct dp_worker *w, unsigned id, char *err,
                       size_t errlen)
{
    const struct dp_conf *c = e->conf;
    w->eng = e;
    w->id = id;
    w->udp_fd = w->tcp_fd = w->tls_fd = w->epfd = w->wakefd = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    w->cpu = c->pin_workers && ncpu > 0 ? (int)(id % (unsigned)ncpu) : -1;

    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->conns = calloc(c->max_connections, sizeof *w->conns);
    w->free_slots = calloc(c->max_connections, sizeof *w->free_slots);
    w->rx_buf = malloc((size_t)UDP_BATCH * UDP_RX_SIZE);
    w->tx = calloc(1, sizeof *w->tx);
    w->scratch = malloc(STREAM_READ_SIZE);
    if (w->epfd < 0 || w->wakefd < 0 || !w->conns || !w->free_slots || !w->rx_buf || !w->tx ||
        !w->scratch) {
        snprintf(err, errlen, "worker %u: out of memory or descriptors: %s", id,
                 strerror(errno));
        return -1;
    }
    for (uint32_t i = 0; i < c->max_connections; i++)
        w->free_slots[i] = c->max_connections - 1 - i;
    w->n_free = c->max_connections;

    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)EV_WAKE << 32};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev);
    if (!(w->media = dp_media_create(id, w->epfd, EV_MEDIA))) {
        snprintf(err, errlen, "worker %u: media: out of memory or descriptors", id);
        return -1;
    }
    if (c->udp_port) {
        if ((w->udp_fd = dp_sock_listen(SOCK_DGRAM, c->listen, c->udp_port, err, errlen)) < 0)
            return -1;
        ev.data.u64 = (uint64_t)EV_UDP << 32;
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->udp_fd, &ev);
    }
    if (c->tcp_port) {
        if ((w->tcp_fd = dp_sock_listen(SOCK_STREAM, c->listen, c->tcp_port, err, errlen)) < 0)
            return -1;
        ev.data.u64 = (uint64_t)EV_TCP_LISTEN << 32;
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tcp_fd, &ev);
    }
    if (c->tls_port) {
        if ((w->tls_fd = dp_sock_listen(SOCK_STREAM, c->listen, c->tls_port, err, errlen)) < 0)
            return -1;
        ev.data.u64 = (uint64_t)EV_TLS_LISTEN << 32;
        epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->tls_fd, &ev);
    }
    return 0;
}

static void worker_fini(struct dp_worker *w)
{
    dp_media_free(w->media); /* before its epoll fd closes */
    w->media = NULL;
    int fds[] = {w->udp_fd, w->tcp_fd, w->tls_fd, w->epfd, w->wakefd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(w->conns);
    free(w->free_slots);
    free(w->rx_buf);
    free(w->tx);
    free(w->scratch);
}

static int probe_ports(const struct dp_conf *c, char *err, size_t errlen)
{
    char why[256];
    struct {
        int type;
        uint16_t port;
        const char *field;
    } probes[] = {{SOCK_DGRAM, c->udp_port, "sip.udp_port"},
                  {SOCK_STREAM, c->tcp_port, "sip.tcp_port"},
                  {SOCK_STREAM, c->tls_port, "sip.tls_port"}};
    for (size_t i = 0; i < 3; i++) {
        if (!probes[i].port)
            continue;
        if (dp_sock_probe(probes[i].type, c->listen, probes[i].port, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", probes[i].field, why);
            return -1;
        }
    }
    return 0;
}

struct dp_engine *dp_engine_create(const struct dp_conf *conf, const dp_handler_t *h,
                                   char *err, size_t errlen)
{
    if (conf->workers == 0 || conf->workers > 1024 || conf->max_connections == 0 ||
        conf->max_connections > 0xfffff) {
        snprintf(err, errlen, "dataplane: workers 1..1024 and max_connections 1..%u required",
                 0xfffff);
        return NULL;
    }
    struct dp_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->ctl_wakefd = -1;
    e->conf = conf;
    e->h = *h;
    e->n = conf->workers;
    if (conf->tls_port && !(e->tls_ctx = dp_tls_server_ctx(&conf->tls, err, errlen)))
        goto fail;
    if (conf->tls.certificate[0] && conf->tls.key[0] &&
        !(e->tls_client_ctx = dp_tls_client_ctx(&conf->tls, err, errlen)))
        goto fail;
    if (probe_ports(conf, err, errlen) != 0)
        goto fail;
    e->w = aligned_alloc(64, sizeof *e->w * e->n);
    e->rings = calloc((size_t)e->n * e->n, sizeof *e->rings);
    e->to_ctl = calloc(e->n, sizeof *e->to_ctl);
    e->from_ctl = calloc(e->n, sizeof *e->from_ctl);
    e->ctl_wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!e->w || !e->rings || !e->to_ctl || !e->from_ctl || e->ctl_wakefd < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memset(e->w, 0, sizeof *e->w * e->n);
    for (unsigned i = 0; i < e->n; i++)
        e->w[i].udp_fd = e->w[i].tcp_fd = e->w[i].tls_fd = e->w[i].epfd = e->w[i].wakefd = -1;
    for (size_t i = 0; i < (size_t)e->n * e->n; i++)
        if (!(e->rings[i] = dp_ring_create(RING_SLOTS, sizeof(struct ring_slot)))) {
            snprintf(err, errlen, "out of memory for worker rings");
            goto fail;
        }
    for (unsigned i = 0; i < e->n; i++)
        if (!(e->to_ctl[i] = dp_ring_create(RING_SLOTS, sizeof(void *))) ||
            !(e->from_ctl[i] = dp_ring_create(RING_SLOTS, sizeof(void *)))) {
            snprintf(err, errlen, "out of memory for control rings");
            goto fail;
        }
    for (unsigned i = 0; i < e->n; i++)
        if (worker_init(e, &e->w[i], i, err, errlen) != 0)
            goto fail;
    return e;
fail:
    dp_engine_free(e);
    return NULL;
}

int dp_engine_start(struct dp_engine *e, char *err, size_t errlen)
{
    for (unsigned i = 0; i < e->n; i++) {
        int r = pthread_create(&e->w[i].thread, NULL, worker_main, &e->w[i]);
        if (r != 0) {
            snprintf(err, errlen, "worker %u: pthread_create: %s", i, strerror(r));
            dp_engine_stop(e);
            for (unsigned j = 0; j < i; j++)
                pthread_join(e->w[j].thread, NULL);
            return -1;
        }
        e->started = (int)i + 1;
    }
    return 0;
}

void dp_engine_stop(struct dp_engine *e)
{
    atomic_store(&e->stopping, 1);
    for (unsigned i = 0; i < e->n; i++)
        if (e->w && e->w[i].wakefd >= 0)
            wake(&e->w[i]);
}

void dp_engine_free(struct dp_engine *e)
{
    if (!e)
        return;
    if (e->started) {
        dp_engine_stop(e);
        for (int i = 0; i < e->started; i++)
            pthread_join(e->w[i].thread, NULL);
    }
    if (e->rings) {
        /* messages still in flight belong to nobody now */
        for (size_t i = 0; i < (size_t)e->n * e->n; i++) {
            struct ring_slot s;
            while (e->rings[i] && dp_ring_dequeue(e->rings[i], &s) == 0) {
                if (s.kind == RING_POST && e->h.post_free)
                    e->h.post_free(s.ptr);
                else
                    free(s.ptr);
            }
            dp_ring_free(e->rings[i]);
        }
        free(e->rings);
    }
    struct dp_ring **ctl_rings[2] = {e->to_ctl, e->from_ctl};
    for (int k = 0; k < 2; k++) {
        if (!ctl_rings[k])
            continue;
        for (unsigned i = 0; i < e->n; i++) {
            void *msg;
            while (ctl_rings[k][i] && dp_ring_dequeue(ctl_rings[k][i], &msg) == 0)
                if (e->h.post_free)
                    e->h.post_free(msg);
            dp_ring_free(ctl_rings[k][i]);
        }
        free(ctl_rings[k]);
    }
    if (e->ctl_wakefd >= 0)
        close(e->ctl_wakefd);
    if (e->w) {
        for (unsigned i = 0; i < e->n; i++)
            worker_fini(&e->w[i]);
        free(e->w);
    }
    SSL_CTX_free(e->tls_ctx);
    SSL_CTX_free(e->tls_client_ctx);
    free(e);
}

unsigned dp_engine_workers(const struct dp_engine *e) { return e->n; }

const struct dp_stats *dp_engine_stats(const struct dp_engine *e, unsigned worker)
{
    return worker < e->n ? &e->w[worker].stats : NULL;
}

struct dp_media *dp_engine_media(const struct dp_engine *e, unsigned worker)
{
    return worker < e->n ? e->w[worker].media : NULL;
}

int dp_engine_worker_cpu(const struct dp_engine *e, unsigned worker)
{
    return worker < e->n ? e->w[worker].cpu : -1;
}
