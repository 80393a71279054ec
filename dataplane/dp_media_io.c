/* Ports and datagrams of a worker's media sessions: UDP sockets on the worker's
 * epoll (or the packet I/O backend, dpk_pktio.h), recvmmsg batches in, a sendmmsg
 * queue out. */
#include "dp_media_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- transmit queue: sendmmsg per socket, runs of equal-sized datagrams to one
 * address as one UDP GSO message; or the packet I/O interface's own queue ---- */
#define GSO_MAX_BYTES 60000 /* a GSO message stays under the 64 kB of one IP datagram */
#define GSO_MAX_SEGS 64     /* UDP_MAX_SEGMENTS of older kernels */

static bool addr_eq(const struct txq *t, unsigned a, unsigned b)
{
    return t->addrlen[a] == t->addrlen[b] && memcmp(&t->addr[a], &t->addr[b], t->addrlen[a]) == 0;
}

/* Builds the messages for the entries order[p..end) (one socket): returns how many. */
static unsigned tx_build(struct dp_media *m, unsigned p, unsigned end, unsigned first_msg)
{
    struct txq *t = &m->tx;
    unsigned nm = first_msg;
    while (p < end) {
        unsigned e = t->order[p], q = p + 1;
        size_t seg = t->len[e], total = seg;
        if (!m->no_gso) {
            while (q < end && q - p < GSO_MAX_SEGS &&
                   total + t->len[t->order[q]] <= GSO_MAX_BYTES && t->len[t->order[q]] <= seg &&
                   addr_eq(t, e, t->order[q])) {
                total += t->len[t->order[q]];
                if (t->len[t->order[q++]] < seg)
                    break; /* only the last segment may be shorter */
            }
        }
        struct msghdr *h = &t->msgs[nm].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_name = &t->addr[e];
        h->msg_namelen = t->addrlen[e];
        h->msg_iov = &t->iov[p];
        h->msg_iovlen = q - p;
        if (q - p > 1) {
            h->msg_control = t->ctl[nm].buf;
            h->msg_controllen = sizeof t->ctl[nm].buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(h);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t gso = (uint16_t)seg;
            memcpy(CMSG_DATA(c), &gso, sizeof gso);
        }
        t->msg_first[nm++] = p;
        p = q;
    }
    return nm;
}

void dpm_tx_flush(struct dp_media *m)
{
    if (m->io) {
        m->io->tx_flush(m->io->io);
        return;
    }
    struct txq *t = &m->tx;
    /* group by socket, keeping queue order within one: a stable pass per socket */
    uint64_t taken = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < t->n; i++) {
        if (taken >> i & 1)
            continue;
        for (unsigned j = i; j < t->n; j++) {
            if (!(taken >> j & 1) && t->fd[j] == t->fd[i]) {
                taken |= 1ull << j;
                t->order[k] = (uint8_t)j;
                t->iov[k].iov_base = t->buf[j];
                t->iov[k].iov_len = t->len[j];
                k++;
            }
        }
    }
    unsigned p = 0;
    while (p < t->n) {
        int fd = t->fd[t->order[p]];
        unsigned end = p + 1;
        while (end < t->n && t->fd[t->order[end]] == fd)
            end++;
        unsigned nm = tx_build(m, p, end, 0), mi = 0;
        while (mi < nm) {
            int n = sendmmsg(fd, t->msgs + mi, nm - mi, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                unsigned first = t->msg_first[mi];
                if (!m->no_gso && t->msgs[mi].msg_hdr.msg_iovlen > 1 &&
                    (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP ||
                     errno == ENOPROTOOPT)) {
                    /* no UDP GSO here (old kernel, device without checksum offload):
                     * plain datagrams from now on, starting with these */
                    m->no_gso = true;
                    nm = tx_build(m, first, end, 0);
                    mi = 0;
                    continue;
                }
                /* EAGAIN (buffer full) or a dead peer: UDP may lose it; count it */
                st_add(&m->st.drop_send, end - first);
                break;
            }
            for (int q = 0; q < n; q++)
                st_add(&m->st.bytes_out, t->msgs[mi + (unsigned)q].msg_len);
            mi += (unsigned)n;
        }
        p = end;
    }
    t->n = 0;
}

/* A buffer for the next datagram, m->tx_cap bytes long (at most PKT_CAP); commit it with
 * dpm_tx_commit. NULL (counted as drop_send) when the packet I/O has no buffer free. */
uint8_t *dpm_tx_slot(struct dp_media *m)
{
    if (m->io) {
        size_t cap = 0;
        uint8_t *b = m->io->tx_slot(m->io->io, &cap);
        if (!b || cap <= MD_SRTP_MAX_TRAILER + 64) {
            st_add(&m->st.drop_send, 1);
            return NULL;
        }
        m->tx_cap = cap < PKT_CAP ? cap : PKT_CAP;
        return b;
    }
    if (m->tx.n == TX_BATCH)
        dpm_tx_flush(m);
    m->tx_cap = PKT_CAP;
    return m->tx.buf[m->tx.n];
}

/* Queues the last dpm_tx_slot() buffer, sent from stream s's RTP port (or its RTCP port). */
void dpm_tx_commit(struct dp_media *m, const struct stream *s, bool rtcp,
                   const struct sockaddr_storage *to, socklen_t tolen, size_t len)
{
    if (m->io) {
        uint16_t port = (uint16_t)(s->port + (rtcp && !s->mux));
        if (m->io->tx_commit(m->io->io, port, to, tolen, len) == 0)
            st_add(&m->st.bytes_out, len);
        else
            st_add(&m->st.drop_send, 1);
        return;
    }
    struct txq *t = &m->tx;
    unsigned i = t->n++;
    t->fd[i] = rtcp && !s->mux ? s->fd[1] : s->fd[0];
    t->len[i] = (uint16_t)len;
    t->addrlen[i] = tolen;
    memcpy(&t->addr[i], to, tolen);
}

/* ---- sockets ----
 * Each media socket has an entry in m->sk; its epoll value is SOCK_VALUE | entry, and
 * the entry says which leg port (leg index * 4 + kind) it serves. When a leg closes,
 * its sockets stay bound and registered, idle, at the end of a FIFO (at most
 * m->idle_max; the oldest is closed to make room). A leg that asks for the port of an
 * idle socket gets that socket if its port has rested m->rest_ms since its leg
 * closed, emptied first; if not, the idle socket is closed and a new one bound (as
 * if there were no pool), so nothing queued for the previous call reaches the next.
 * Datagrams that reach an idle socket are read and dropped (port_idle_drops). When
 * the process runs out of descriptors, idle sockets are closed, oldest first, to make
 * room for a leg's. */

static bool bound_to(const struct msock *k, const struct sockaddr_storage *ss)
{
    if (k->family != ss->ss_family)
        return false;
    if (ss->ss_family == AF_INET)
        return memcmp(k->addr, &((const struct sockaddr_in *)ss)->sin_addr, 4) == 0;
    return memcmp(k->addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16) == 0;
}

static void idle_unlink(struct dp_media *m, uint32_t i)
{
    struct msock *k = &m->sk[i];
    if (k->prev != SOCK_NONE)
        m->sk[k->prev].next = k->next;
    else
        m->idle_head = k->next;
    if (k->next != SOCK_NONE)
        m->sk[k->next].prev = k->prev;
    else
        m->idle_tail = k->prev;
    k->prev = k->next = SOCK_NONE;
    k->idle = false;
    m->n_idle--;
    if (m->idle_port && m->idle_port[k->port] == i)
        m->idle_port[k->port] = SOCK_NONE;
}

/* Closes socket entry i (idle or not) and frees the entry. */
static void sock_destroy(struct dp_media *m, uint32_t i)
{
    struct msock *k = &m->sk[i];
    if (k->idle)
        idle_unlink(m, i);
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, k->fd, NULL);
    close(k->fd);
    k->fd = -1;
    k->next = m->sk_free;
    m->sk_free = i;
}

/* A free entry (the table grows at leg set-up, never on the packet path). */
static int sock_entry(struct dp_media *m, uint32_t *out)
{
    if (m->sk_free == SOCK_NONE) {
        uint32_t cap = m->sk_cap ? m->sk_cap * 2 : 64;
        if (cap > SOCK_VALUE || cap < m->sk_cap)
            return -1;
        struct msock *t = realloc(m->sk, cap * sizeof *t);
        if (!t)
            return -1;
        for (uint32_t i = cap; i-- > m->sk_cap;) {
            t[i] = (struct msock){.fd = -1, .prev = SOCK_NONE, .next = m->sk_free};
            m->sk_free = i;
        }
        m->sk = t;
        m->sk_cap = cap;
    }
    *out = m->sk_free;
    m->sk_free = m->sk[*out].next;
    m->sk[*out].next = SOCK_NONE;
    return 0;
}

/* Reads and drops every datagram waiting on fd; returns how many there were. */
static uint64_t sock_drain(struct dp_media *m, int fd)
{
    struct rxq *q = &m->rx;
    uint64_t total = 0;
    for (;;) {
        for (unsigned i = 0; i < RX_BATCH; i++)
            q->msgs[i].msg_hdr.msg_namelen = sizeof q->addr[i];
        int n = recvmmsg(fd, q->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        total += (uint64_t)n;
        if (n < RX_BATCH)
            break;
    }
    return total;
}

/* The idle socket bound to ss (address and port), taken out of the pool and emptied,
 * if it may serve a leg now. NULL when there is none, or when it has not rested long
 * enough (then it is closed, freeing the port for a new socket). */
static struct msock *idle_take(struct dp_media *m, const struct sockaddr_storage *ss, uint16_t port,
                               uint32_t *out)
{
    uint32_t i = m->idle_port ? m->idle_port[port] : SOCK_NONE;
    if (i == SOCK_NONE)
        return NULL;
    struct msock *k = &m->sk[i];
    if (bound_to(k, ss) && mono_us() / 1000u - k->idle_ms >= m->rest_ms) {
        idle_unlink(m, i);
        st_add(&m->st.port_idle_drops, sock_drain(m, k->fd));
        *out = i;
        return k;
    }
    sock_destroy(m, i); /* too soon, or another address: the port goes to a new socket */
    return NULL;
}

static int open_socket(struct dp_media *m, const char *addr, uint16_t port, uint32_t value,
                       bool audio, int *out, int32_t *sk, char *why, size_t whylen)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof *s6;
    } else {
        dpm_set_why(why, whylen, "Bad media address %s", addr);
        return DP_MEDIA_PARAM;
    }
    int tos = audio ? 0xb8 : 0x88; /* DSCP EF for audio, AF41 for video */
    if (m->io) {
        int r = m->io->open(m->io->io, addr, port, value, (uint8_t)tos);
        if (r == 0) {
            *out = FD_PKTIO;
            return DP_MEDIA_OK;
        }
        dpm_set_why(why, whylen, "Media port %u: %s", port,
                    r == -EXDEV ? "not in this worker's port partition" : strerror(-r));
        return r == -EADDRINUSE ? DP_MEDIA_PORT_IN_USE
               : r == -EXDEV    ? DP_MEDIA_PARAM
                                : DP_MEDIA_BUSY;
    }
    uint32_t i;
    struct msock *k = idle_take(m, &ss, port, &i);
    if (k) {
        if (k->tos != tos) {
            if (ss.ss_family == AF_INET)
                setsockopt(k->fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
            else
                setsockopt(k->fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
            k->tos = (uint8_t)tos;
        }
        k->user = value;
        st_add(&m->st.port_reuses, 1);
        *out = k->fd;
        *sk = (int32_t)i;
        return DP_MEDIA_OK;
    }
    if (sock_entry(m, &i) != 0) {
        dpm_set_why(why, whylen, "Out of memory for media port %u", port);
        return DP_MEDIA_BUSY;
    }
    int rc = DP_MEDIA_BUSY, fd;
    while ((fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 &&
           (errno == EMFILE || errno == ENFILE) && m->n_idle)
        sock_destroy(m, m->idle_head); /* out of descriptors: a call before an idle socket */
    if (fd < 0) {
        dpm_set_why(why, whylen, "No socket for media port %u: %s", port, strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        dpm_set_why(why, whylen, "Media port %u: %s", port, strerror(e));
        rc = e == EADDRINUSE ? DP_MEDIA_PORT_IN_USE : DP_MEDIA_BUSY;
        goto fail;
    }
    int rcv = SOCK_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (ss.ss_family == AF_INET)
        setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    else
        setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
    struct epoll_event ev = {.events = EPOLLIN,
                             .data.u64 = (uint64_t)m->tag << 32 | SOCK_VALUE | i};
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        dpm_set_why(why, whylen, "epoll: %s", strerror(errno));
        goto fail;
    }
    k = &m->sk[i];
    *k = (struct msock){.fd = fd,
                        .port = port,
                        .tos = (uint8_t)tos,
                        .family = (uint8_t)ss.ss_family,
                        .user = value,
                        .prev = SOCK_NONE,
                        .next = SOCK_NONE};
    if (ss.ss_family == AF_INET)
        memcpy(k->addr, &s4->sin_addr, 4);
    else
        memcpy(k->addr, &s6->sin6_addr, 16);
    st_add(&m->st.port_binds, 1);
    *out = fd;
    *sk = (int32_t)i;
    return DP_MEDIA_OK;
fail:
    if (fd >= 0)
        close(fd);
    m->sk[i].next = m->sk_free;
    m->sk_free = i;
    return rc;
}

/* Closes the socket or the packet I/O port of a stream (port + which). A socket is
 * kept idle for a later leg when `keep` (and the pool has room, or makes room by
 * closing its oldest). */
static void close_fd(struct dp_media *m, int *fd, int32_t *sk, uint16_t port, bool keep)
{
    if (*fd == FD_PKTIO) {
        if (m->io)
            m->io->close(m->io->io, port);
    } else if (*fd >= 0) {
        uint32_t i = (uint32_t)*sk;
        if (keep && m->idle_max && !m->idle_port) {
            m->idle_port = malloc(65536 * sizeof *m->idle_port);
            for (uint32_t p = 0; m->idle_port && p < 65536; p++)
                m->idle_port[p] = SOCK_NONE;
        }
        if (!keep || m->idle_max == 0 || !m->idle_port) {
            sock_destroy(m, i);
        } else {
            if (m->n_idle >= m->idle_max)
                sock_destroy(m, m->idle_head);
            struct msock *k = &m->sk[i];
            if (m->idle_port[k->port] != SOCK_NONE) /* one idle socket per port */
                sock_destroy(m, m->idle_port[k->port]);
            m->idle_port[k->port] = i;
            k->idle = true;
            k->idle_ms = mono_us() / 1000u;
            k->prev = m->idle_tail;
            k->next = SOCK_NONE;
            if (m->idle_tail != SOCK_NONE)
                m->sk[m->idle_tail].next = i;
            else
                m->idle_head = i;
            m->idle_tail = i;
            m->n_idle++;
        }
    }
    *fd = -1;
    *sk = -1;
}

void dpm_sockets_free(struct dp_media *m)
{
    for (uint32_t i = 0; i < m->sk_cap; i++)
        if (m->sk[i].fd >= 0 && m->sk[i].idle)
            sock_destroy(m, i);
    free(m->sk);
    free(m->idle_port);
    m->sk = NULL;
    m->idle_port = NULL;
    m->sk_cap = 0;
    m->sk_free = SOCK_NONE;
}

void dp_media_set_port_pool(struct dp_media *m, unsigned max_idle, uint32_t rest_ms)
{
    m->idle_max = max_idle;
    m->rest_ms = rest_ms;
    while (m->n_idle > m->idle_max)
        sock_destroy(m, m->idle_head);
}

uint16_t dp_media_rested_port(const struct dp_media *m)
{
    uint64_t now_ms = mono_us() / 1000u;
    for (uint32_t i = m->idle_head; i != SOCK_NONE; i = m->sk[i].next) {
        const struct msock *k = &m->sk[i];
        if (now_ms - k->idle_ms < m->rest_ms)
            break; /* the rest are younger still */
        if ((k->port & 1) == 0)
            return k->port;
    }
    return 0;
}

void dpm_sock_event(struct dp_media *m, uint32_t i)
{
    if (i >= m->sk_cap || m->sk[i].fd < 0)
        return; /* closed earlier in this epoll batch */
    const struct msock *k = &m->sk[i];
    if (k->idle) {
        st_add(&m->st.port_idle_drops, sock_drain(m, k->fd));
        return;
    }
    uint32_t idx = k->user / 4u;
    if (idx < DP_MEDIA_MAX_LEGS && m->legs[idx])
        dpm_sock_readable(m, m->legs[idx], (int)(k->user % 4u));
}

int dpm_stream_sockets(struct dp_media *m, struct stream *s, uint32_t idx, int kind,
                       const char *addr, char *why, size_t whylen)
{
    int rc = open_socket(m, addr, s->port, idx * 4u + (uint32_t)kind, s->audio, &s->fd[0],
                         &s->sk[0], why, whylen);
    if (rc != DP_MEDIA_OK)
        return rc;
    if (!s->mux) {
        rc = open_socket(m, addr, (uint16_t)(s->port + 1), idx * 4u + (uint32_t)kind + 1, s->audio,
                         &s->fd[1], &s->sk[1], why, whylen);
        if (rc != DP_MEDIA_OK) {
            close_fd(m, &s->fd[0], &s->sk[0], s->port, false);
            return rc;
        }
    }
    return DP_MEDIA_OK;
}

void dpm_stream_close(struct dp_media *m, struct stream *s, bool keep)
{
    close_fd(m, &s->fd[0], &s->sk[0], s->port, keep);
    close_fd(m, &s->fd[1], &s->sk[1], (uint16_t)(s->port + 1), keep);
    md_srtp_free(s->in);
    md_srtp_free(s->out);
    s->in = s->out = NULL;
    explicit_bzero(s->offer_line, sizeof s->offer_line);
    explicit_bzero(s->answer_line, sizeof s->answer_line);
    s->on = false;
}

void dpm_sock_readable(struct dp_media *m, struct leg *l, int kind)
{
    struct stream *s = kind < K_VRTP ? &l->a : &l->v;
    bool rtcp_port = kind & 1;
    int fd = s->fd[rtcp_port];
    if (fd < 0)
        return;
    struct rxq *q = &m->rx;
    for (int round = 0; round < RX_ROUNDS; round++) {
        for (unsigned i = 0; i < RX_BATCH; i++) {
            q->msgs[i].msg_hdr.msg_namelen = sizeof q->addr[i];
            q->msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(fd, q->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            break;
        uint64_t now_ms = mono_us() / 1000u;
        for (int i = 0; i < n; i++) {
            size_t len = q->msgs[i].msg_len;
            uint8_t *buf = q->buf[i];
            st_add(&m->st.bytes_in, len);
            if (q->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
                st_add(&m->st.drop_oversize, 1);
                continue;
            }
            dpm_datagram_in(m, l, kind, buf, len, &q->addr[i], q->msgs[i].msg_hdr.msg_namelen,
                            now_ms);
        }
        dpm_tx_flush(m);
        if (n < RX_BATCH)
            break;
    }
}

int dp_media_set_pktio(struct dp_media *m, const struct dpk_pktio *io)
{
    if (!m || !io || !io->open || !io->close || !io->tx_slot || !io->tx_commit || !io->tx_flush)
        return -1;
    if (m->n_legs)
        return -1; /* ports already open as sockets */
    dpm_tx_flush(m);
    dpm_sockets_free(m); /* the idle ones */
    m->io = io;
    return 0;
}

void dp_media_input(struct dp_media *m, uint32_t value, uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms)
{
    uint32_t idx = value / 4u;
    if (!m || idx >= DP_MEDIA_MAX_LEGS || !m->legs[idx])
        return; /* closed since the port was opened */
    st_add(&m->st.bytes_in, len);
    if (len > RX_MAX) { /* as a socket read into an RX_MAX buffer would truncate it */
        st_add(&m->st.drop_oversize, 1);
        return;
    }
    dpm_datagram_in(m, m->legs[idx], (int)(value % 4u), buf, len, from, fromlen, now_ms);
    dpm_tx_flush(m);
}
