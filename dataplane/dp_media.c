/* Media sessions of one worker (see dp_media.h for the design). */
#include "dp_media.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "cn_log.h"
#include "dpk_pktio.h"
#include "md_codec.h"
#include "md_mixer.h"
#include "md_rtp.h"
#include "md_sdes.h"
#include "md_srtp.h"
#include "md_vswitch.h"

#define RX_BATCH 32
#define RX_ROUNDS 8 /* recvmmsg batches per readable event: let other sockets in */
#define TX_BATCH 64
#define PKT_CAP 2048 /* a packet buffer; datagrams up to PKT_CAP - MD_SRTP_MAX_TRAILER */
#define RX_MAX (PKT_CAP - MD_SRTP_MAX_TRAILER)
#define TIMER_VALUE 0xffffffffu
#define RTCP_INTERVAL_MS 5000
#define HOUSEKEEP_MS 100
#define BYE_GRACE_MS 2000 /* after an RTCP BYE, silence this long ends the leg */
#define CONF_LEGS MD_MIX_MAX_PARTIES
#define MAX_EVENTS 64 /* timeouts reported per housekeeping pass */
#define FEEDBACK_MAX_NACK 16
#define TICK_US (MD_FRAME_MS * 1000u)
#define SOCK_RCVBUF (256 * 1024)

_Static_assert(MD_MIX_MAX_PARTIES == MD_VSW_MAX, "one slot space for mixer and switcher");

/* A port opened through the packet I/O interface (dpk_pktio.h) rather than a socket. */
#define FD_PKTIO (-2)

/* Socket kinds of a leg: epoll value = leg index * 4 + kind. */
enum { K_ARTP = 0, K_ARTCP = 1, K_VRTP = 2, K_VRTCP = 3 };

/* Reception statistics of the stream a participant sends (RFC 3550 A.1, A.8). */
struct rx_stats {
    bool have, have_transit;
    uint32_t ssrc;
    uint16_t max_seq;
    uint32_t cycles, base_seq;
    uint32_t received, expected_prior, received_prior;
    int32_t transit;
    uint32_t jitter; /* scaled by 16 */
    uint32_t lsr;    /* middle 32 bits of the last SR's NTP time, 0 none */
    uint64_t lsr_ms;
};

struct stream {
    bool on, audio, send, recv, mux, secure;
    dp_media_codec_t codec;
    uint8_t pt;
    int te_pt;
    int opus_bitrate;
    uint16_t port;
    int fd[2]; /* RTP, RTCP (-1 with rtcp-mux; FD_PKTIO when open through m->io) */
    struct sockaddr_storage rem, rem_rtcp;
    socklen_t rem_len;
    struct md_srtp *in, *out;
    char offer_line[DP_MEDIA_CRYPTO_MAX];  /* the peer's a=crypto value in use */
    char answer_line[DP_MEDIA_CRYPTO_MAX]; /* ours */
    struct md_rtp_out aout;                /* audio: the mix we send it */
    uint32_t vout_ssrc;                    /* video: the switched stream we send it */
    uint32_t vout_packets, vout_octets;
    struct rx_stats rx;
    uint64_t next_rtcp_ms;
    uint8_t fir_seq;
    uint64_t in_pkts, out_pkts;
};

struct conf;

struct leg {
    uint32_t id; /* generation << 16 | index */
    void *owner;
    struct conf *conf;
    int slot;   /* in the conference, = video switcher id */
    int mix_id; /* in the mixer */
    uint32_t timeout_ms;
    uint64_t last_rx_ms;
    uint64_t bye_ms; /* RTCP BYE seen at, 0 none */
    bool reported;
    struct stream a, v;
};

struct conf {
    uint64_t key;
    unsigned list_pos; /* in dp_media.conf_list */
    struct md_mixer *mx;
    struct md_vswitch vs;
    struct leg *slot[CONF_LEGS];
    int mix_to_slot[MD_MIX_MAX_PARTIES];
    unsigned n;
    uint64_t slow_seen;
};

struct txq {
    unsigned n;
    int fd[TX_BATCH];
    struct mmsghdr msgs[TX_BATCH];
    struct iovec iov[TX_BATCH];
    struct sockaddr_storage addr[TX_BATCH];
    uint8_t buf[TX_BATCH][PKT_CAP];
};

struct rxq {
    struct mmsghdr msgs[RX_BATCH];
    struct iovec iov[RX_BATCH];
    struct sockaddr_storage addr[RX_BATCH];
    uint8_t buf[RX_BATCH][PKT_CAP];
};

struct dp_media {
    unsigned worker;
    int epfd;
    uint32_t tag;
    int tfd;
    uint64_t armed_us; /* timerfd deadline, 0 = disarmed */
    uint64_t grid_us;  /* the next 20 ms tick of every conference here, 0 = none yet */
    uint64_t next_housekeep_ms;
    dp_media_event_fn ev_fn;
    void *ev_ctx;
    struct leg *legs[DP_MEDIA_MAX_LEGS];
    uint16_t gen[DP_MEDIA_MAX_LEGS];
    unsigned n_legs;
    struct conf *conf_list[DP_MEDIA_MAX_CONFS];
    unsigned n_confs;
    char cname[32];
    struct dp_media_stats st;
    const struct dpk_pktio *io; /* NULL: sockets (recvmmsg/sendmmsg) */
    size_t tx_cap;              /* bytes in the last tx_slot() buffer */
    struct rxq rx;
    struct txq tx;
};

/* ---- small helpers ---- */
static inline void st_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void st_sub(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - v,
                          memory_order_relaxed);
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t ntp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t sec = (uint64_t)ts.tv_sec + 2208988800ull;
    uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000u;
    return sec << 32 | frac;
}

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static uint32_t rand32(void)
{
    uint32_t v;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (uint32_t)mono_us() * 2654435761u;
    return v;
}

static md_codec_id_t md_codec_of(dp_media_codec_t c)
{
    return c == DP_CODEC_PCMA ? MD_CODEC_PCMA : c == DP_CODEC_OPUS ? MD_CODEC_OPUS : MD_CODEC_PCMU;
}

static uint32_t clock_of(const struct stream *s)
{
    return !s->audio ? 90000u : s->codec == DP_CODEC_OPUS ? 48000u : 8000u;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

static struct leg *leg_get(const struct dp_media *m, uint32_t id)
{
    uint32_t idx = id & 0xffff;
    if (id == 0 || idx >= DP_MEDIA_MAX_LEGS)
        return NULL;
    struct leg *l = m->legs[idx];
    return l && l->id == id ? l : NULL;
}

/* ---- transmit queue: sendmmsg per run of datagrams leaving the same socket, or the
 * packet I/O interface's own queue ---- */
static void tx_flush(struct dp_media *m)
{
    if (m->io) {
        m->io->tx_flush(m->io->io);
        return;
    }
    struct txq *t = &m->tx;
    unsigned i = 0;
    while (i < t->n) {
        unsigned j = i + 1;
        while (j < t->n && t->fd[j] == t->fd[i])
            j++;
        unsigned k = i;
        while (k < j) {
            int n = sendmmsg(t->fd[i], t->msgs + k, j - k, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                /* EAGAIN (buffer full) or a dead peer: UDP may lose it; count it */
                st_add(&m->st.drop_send, j - k);
                break;
            }
            for (int q = 0; q < n; q++)
                st_add(&m->st.bytes_out, t->msgs[k + (unsigned)q].msg_len);
            k += (unsigned)n;
        }
        i = j;
    }
    t->n = 0;
}

/* A buffer for the next datagram, m->tx_cap bytes long (at most PKT_CAP); commit it with
 * tx_commit. NULL (counted as drop_send) when the packet I/O has no buffer free. */
static uint8_t *tx_slot(struct dp_media *m)
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
        tx_flush(m);
    m->tx_cap = PKT_CAP;
    return m->tx.buf[m->tx.n];
}

/* Room for a datagram before SRTP protection in the last tx_slot() buffer. */
static size_t tx_room(const struct dp_media *m)
{
    return m->tx_cap - MD_SRTP_MAX_TRAILER;
}

/* Queues the last tx_slot() buffer, sent from stream s's RTP port (or its RTCP port). */
static void tx_commit(struct dp_media *m, const struct stream *s, bool rtcp,
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
    int fd = rtcp && !s->mux ? s->fd[1] : s->fd[0];
    struct txq *t = &m->tx;
    unsigned i = t->n++;
    t->fd[i] = fd;
    memcpy(&t->addr[i], to, tolen);
    t->iov[i].iov_base = t->buf[i];
    t->iov[i].iov_len = len;
    memset(&t->msgs[i].msg_hdr, 0, sizeof t->msgs[i].msg_hdr);
    t->msgs[i].msg_hdr.msg_name = &t->addr[i];
    t->msgs[i].msg_hdr.msg_namelen = tolen;
    t->msgs[i].msg_hdr.msg_iov = &t->iov[i];
    t->msgs[i].msg_hdr.msg_iovlen = 1;
}

/* ---- timer ---- */
static void timer_arm(struct dp_media *m, uint64_t at_us)
{
    if (at_us == m->armed_us)
        return;
    struct itimerspec its = {0};
    if (at_us) {
        its.it_value.tv_sec = (time_t)(at_us / 1000000u);
        its.it_value.tv_nsec = (long)(at_us % 1000000u) * 1000;
    }
    timerfd_settime(m->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    m->armed_us = at_us;
}

/* The next tick (all conferences share one 20 ms grid per worker: one wake-up per
 * tick however many they are) or the next housekeeping pass, whichever is first. */
static void timer_rearm(struct dp_media *m, uint64_t now_us)
{
    if (m->n_legs == 0) {
        timer_arm(m, 0);
        return;
    }
    uint64_t at = m->next_housekeep_ms * 1000u;
    if (m->n_confs && (m->grid_us == 0 || m->grid_us < at))
        at = m->grid_us ? m->grid_us : now_us;
    if (at <= now_us)
        at = now_us + 1; /* an absolute time in the past fires at once */
    timer_arm(m, at);
}

/* ---- reception statistics and RTCP reports ---- */
static void rx_update(struct rx_stats *r, const struct md_rtp *h, uint64_t now_ms, uint32_t clock)
{
    uint32_t arrival = (uint32_t)(now_ms * (clock / 1000u));
    int32_t transit = (int32_t)(arrival - h->ts);
    if (!r->have || r->ssrc != h->ssrc) {
        memset(r, 0, sizeof *r);
        r->have = true;
        r->ssrc = h->ssrc;
        r->base_seq = h->seq;
        r->max_seq = h->seq;
        r->received = 1;
        r->transit = transit;
        r->have_transit = true;
        return;
    }
    if (md_seq_diff(h->seq, r->max_seq) > 0) {
        if (h->seq < r->max_seq)
            r->cycles += 65536u;
        r->max_seq = h->seq;
    }
    r->received++;
    int32_t d = transit - r->transit;
    if (d < 0)
        d = -d;
    r->jitter += (uint32_t)d - ((r->jitter + 8u) >> 4);
    r->transit = transit;
}

static void rx_block(struct rx_stats *r, uint64_t now_ms, struct md_rtcp_rblock *b)
{
    uint32_t ext_max = r->cycles + r->max_seq;
    uint32_t expected = ext_max - r->base_seq + 1u;
    int64_t lost = (int64_t)expected - (int64_t)r->received;
    if (lost > 0x7fffff)
        lost = 0x7fffff;
    if (lost < -0x800000)
        lost = -0x800000;
    uint32_t exp_int = expected - r->expected_prior;
    uint32_t rec_int = r->received - r->received_prior;
    r->expected_prior = expected;
    r->received_prior = r->received;
    int64_t lost_int = (int64_t)exp_int - (int64_t)rec_int;
    uint8_t fraction = exp_int == 0 || lost_int <= 0 ? 0 : (uint8_t)((lost_int << 8) / exp_int);
    *b = (struct md_rtcp_rblock){.ssrc = r->ssrc,
                                 .fraction_lost = fraction,
                                 .cum_lost = (int32_t)lost,
                                 .ext_high_seq = ext_max,
                                 .jitter = r->jitter >> 4,
                                 .lsr = r->lsr,
                                 .dlsr = r->lsr ? (uint32_t)((now_ms - r->lsr_ms) * 65536u / 1000u)
                                                : 0};
}

/* Protects (when secure) and queues a compound RTCP packet built in `o`. */
static void rtcp_send(struct dp_media *m, struct stream *s, uint8_t *o, size_t len)
{
    if (s->secure && md_srtp_protect_rtcp(s->out, o, &len, m->tx_cap) != MD_OK) {
        st_add(&m->st.srtp_other_failures, 1);
        return;
    }
    tx_commit(m, s, true, &s->rem_rtcp, s->rem_len, len);
    st_add(&m->st.rtcp_out, 1);
}

/* SR (when we sent something) or RR, with a report block on what it sends us, and
 * an SDES CNAME. */
static void rtcp_report(struct dp_media *m, struct leg *l, struct stream *s, uint64_t now_ms)
{
    if (!s->on || !s->rem_len)
        return;
    uint8_t *o = tx_slot(m);
    if (!o)
        return;
    size_t cap = tx_room(m);
    struct md_rtcp_rblock rb;
    unsigned n_rb = 0;
    if (s->rx.have) {
        rx_block(&s->rx, now_ms, &rb);
        n_rb = 1;
    }
    uint32_t ssrc = s->audio ? s->aout.ssrc : s->vout_ssrc;
    uint32_t packets = s->audio ? s->aout.packets : s->vout_packets;
    uint32_t octets = s->audio ? s->aout.octets : s->vout_octets;
    int n;
    if (packets) {
        uint32_t rtp_ts = s->audio ? s->aout.ts : l->conf->vs.rx[l->slot].last_ts;
        n = md_rtcp_build_sr(o, cap, ssrc, ntp_now(), rtp_ts, packets, octets, &rb, n_rb);
    } else {
        n = md_rtcp_build_rr(o, cap, ssrc, &rb, n_rb);
    }
    if (n < 0)
        return;
    int k = md_rtcp_build_sdes_cname(o + n, cap - (size_t)n, ssrc, m->cname, strlen(m->cname));
    if (k < 0)
        return;
    rtcp_send(m, s, o, (size_t)n + (size_t)k);
}

/* PLI or FIR to the sender of the video a leg sends us (its last SSRC). */
static void keyframe_request(struct dp_media *m, struct leg *src, md_kf_req_type_t type)
{
    struct stream *s = &src->v;
    if (!s->on || !s->rem_len || !s->rx.have)
        return;
    uint8_t *o = tx_slot(m);
    if (!o)
        return;
    size_t cap = tx_room(m);
    int n = md_rtcp_build_rr(o, cap, s->vout_ssrc, NULL, 0);
    if (n < 0)
        return;
    int k = type == MD_KF_PLI
                ? md_rtcp_build_pli(o + n, cap - (size_t)n, s->vout_ssrc, s->rx.ssrc)
                : md_rtcp_build_fir(o + n, cap - (size_t)n, s->vout_ssrc, s->rx.ssrc, ++s->fir_seq);
    if (k < 0)
        return;
    rtcp_send(m, s, o, (size_t)n + (size_t)k);
    st_add(&m->st.keyframe_requests, 1);
}

/* ---- sockets ---- */
static int open_socket(struct dp_media *m, const char *addr, uint16_t port, uint32_t value,
                       bool audio, int *out, char *why, size_t whylen)
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
        set_why(why, whylen, "Bad media address %s", addr);
        return DP_MEDIA_PARAM;
    }
    int tos = audio ? 0xb8 : 0x88; /* DSCP EF for audio, AF41 for video */
    if (m->io) {
        int r = m->io->open(m->io->io, addr, port, value, (uint8_t)tos);
        if (r == 0) {
            *out = FD_PKTIO;
            return DP_MEDIA_OK;
        }
        set_why(why, whylen, "Media port %u: %s", port,
                r == -EXDEV ? "not in this worker's port partition" : strerror(-r));
        return r == -EADDRINUSE ? DP_MEDIA_PORT_IN_USE
               : r == -EXDEV    ? DP_MEDIA_PARAM
                                : DP_MEDIA_BUSY;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        set_why(why, whylen, "No socket for media port %u: %s", port, strerror(errno));
        return DP_MEDIA_BUSY;
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) != 0) {
        int e = errno;
        close(fd);
        set_why(why, whylen, "Media port %u: %s", port, strerror(e));
        return e == EADDRINUSE ? DP_MEDIA_PORT_IN_USE : DP_MEDIA_BUSY;
    }
    int rcv = SOCK_RCVBUF;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (ss.ss_family == AF_INET)
        setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof tos);
    else
        setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof tos);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)m->tag << 32 | value};
    if (epoll_ctl(m->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        set_why(why, whylen, "epoll: %s", strerror(errno));
        return DP_MEDIA_BUSY;
    }
    *out = fd;
    return DP_MEDIA_OK;
}

/* Closes the socket or the packet I/O port of a stream (port + which). */
static void close_fd(struct dp_media *m, int *fd, uint16_t port)
{
    if (*fd == FD_PKTIO) {
        if (m->io)
            m->io->close(m->io->io, port);
        *fd = -1;
    } else if (*fd >= 0) {
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
        *fd = -1;
    }
}

static int stream_sockets(struct dp_media *m, struct stream *s, uint32_t idx, int kind,
                          const char *addr, char *why, size_t whylen)
{
    int rc =
        open_socket(m, addr, s->port, idx * 4u + (uint32_t)kind, s->audio, &s->fd[0], why, whylen);
    if (rc != DP_MEDIA_OK)
        return rc;
    if (!s->mux) {
        rc = open_socket(m, addr, (uint16_t)(s->port + 1), idx * 4u + (uint32_t)kind + 1, s->audio,
                         &s->fd[1], why, whylen);
        if (rc != DP_MEDIA_OK) {
            close_fd(m, &s->fd[0], s->port);
            return rc;
        }
    }
    return DP_MEDIA_OK;
}

static void stream_close(struct dp_media *m, struct stream *s)
{
    close_fd(m, &s->fd[0], s->port);
    close_fd(m, &s->fd[1], (uint16_t)(s->port + 1));
    md_srtp_free(s->in);
    md_srtp_free(s->out);
    s->in = s->out = NULL;
    explicit_bzero(s->offer_line, sizeof s->offer_line);
    explicit_bzero(s->answer_line, sizeof s->answer_line);
    s->on = false;
}

/* ---- SDES keys ---- */

/* The offered suite names, for a refusal. */
static void offered_suites(const struct dp_media_stream_params *sp, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (unsigned i = 0; i < sp->n_crypto && n + 2 < cap; i++) {
        const char *s = sp->crypto[i];
        size_t len = sp->crypto_len[i], a = 0;
        if (len > 9 && strncmp(s, "a=crypto:", 9) == 0)
            a = 9;
        while (a < len && s[a] != ' ') /* tag */
            a++;
        while (a < len && s[a] == ' ')
            a++;
        size_t b = a;
        while (b < len && s[b] != ' ' && (unsigned char)s[b] > 0x20 && s[b] != '"' && s[b] != '\\')
            b++;
        int k = snprintf(out + n, cap - n, "%s%.*s", n ? " " : "", (int)(b - a), s + a);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

/* New SRTP contexts for a secure stream: the first offered a=crypto value that parses
 * and whose suite we have; our answer has the same tag and suite and fresh keys.
 * *same is set (and nothing created) when `cur` already uses one of the offered
 * values. */
static int crypto_prepare(const struct dp_media_stream_params *sp, const struct stream *cur,
                          struct md_srtp **in, struct md_srtp **out, char *offer_line,
                          char *answer_line, bool *same, char *why, size_t whylen)
{
    *in = *out = NULL;
    *same = false;
    if (!sp->secure)
        return DP_MEDIA_OK;
    for (unsigned i = 0; i < sp->n_crypto && i < DP_MEDIA_MAX_CRYPTO; i++) {
        const char *line = sp->crypto[i];
        size_t len = sp->crypto_len[i];
        if (!line || len == 0 || len >= DP_MEDIA_CRYPTO_MAX)
            continue;
        if (cur && cur->secure && cur->in && strlen(cur->offer_line) == len &&
            memcmp(cur->offer_line, line, len) == 0) {
            *same = true;
            return DP_MEDIA_OK;
        }
    }
    for (unsigned i = 0; i < sp->n_crypto && i < DP_MEDIA_MAX_CRYPTO; i++) {
        const char *line = sp->crypto[i];
        size_t len = sp->crypto_len[i];
        if (!line || len == 0 || len >= DP_MEDIA_CRYPTO_MAX)
            continue;
        struct md_crypto theirs, ours;
        if (md_sdes_parse(line, len, &theirs) != MD_OK || !md_srtp_suite_supported(theirs.suite))
            continue;
        memset(&ours, 0, sizeof ours);
        ours.tag = theirs.tag;
        ours.suite = theirs.suite;
        bool ok = md_srtp_create(in, &theirs, MD_SRTP_INBOUND) == MD_OK &&
                  md_crypto_keygen(&ours) == MD_OK &&
                  md_srtp_create(out, &ours, MD_SRTP_OUTBOUND) == MD_OK &&
                  md_sdes_format(answer_line, DP_MEDIA_CRYPTO_MAX, &ours) > 0;
        explicit_bzero(&theirs, sizeof theirs);
        explicit_bzero(&ours, sizeof ours);
        if (ok) {
            memcpy(offer_line, line, len);
            offer_line[len] = 0;
            return DP_MEDIA_OK;
        }
        md_srtp_free(*in);
        md_srtp_free(*out);
        *in = *out = NULL;
    }
    char list[120];
    offered_suites(sp, list, sizeof list);
    set_why(why, whylen, "No a=crypto line with a suite we support (offered: %s)",
            list[0] ? list : "none");
    return DP_MEDIA_REFUSED;
}

/* ---- conferences ---- */
static struct conf *conf_find(struct dp_media *m, uint64_t key)
{
    for (unsigned i = 0; i < m->n_confs; i++)
        if (m->conf_list[i]->key == key)
            return m->conf_list[i];
    return NULL;
}

static struct conf *conf_open(struct dp_media *m, uint64_t key, unsigned speakers, char *why,
                              size_t whylen)
{
    if (m->n_confs >= DP_MEDIA_MAX_CONFS) {
        set_why(why, whylen, "Too many conferences on worker %u", m->worker);
        return NULL;
    }
    struct conf *c = calloc(1, sizeof *c);
    struct md_mixer_cfg cfg = {.n_speakers = speakers};
    if (!c || md_mixer_create(&c->mx, &cfg) != MD_OK) {
        free(c);
        set_why(why, whylen, "Out of memory for a conference");
        return NULL;
    }
    c->key = key;
    md_vswitch_init(&c->vs, 0);
    for (int i = 0; i < MD_MIX_MAX_PARTIES; i++)
        c->mix_to_slot[i] = -1;
    c->list_pos = m->n_confs;
    m->conf_list[m->n_confs++] = c;
    st_add(&m->st.conferences, 1);
    return c;
}

static void conf_close(struct dp_media *m, struct conf *c)
{
    struct conf *last = m->conf_list[--m->n_confs];
    m->conf_list[c->list_pos] = last;
    last->list_pos = c->list_pos;
    md_mixer_free(c->mx);
    free(c);
    st_sub(&m->st.conferences, 1);
}

/* Takes the leg out of its conference (and the conference away with its last leg). */
static void conf_leave(struct dp_media *m, struct leg *l)
{
    struct conf *c = l->conf;
    if (!c)
        return;
    if (l->mix_id >= 0) {
        md_mixer_remove(c->mx, l->mix_id);
        c->mix_to_slot[l->mix_id] = -1;
    }
    if (l->slot >= 0) {
        md_vswitch_remove(&c->vs, l->slot);
        c->slot[l->slot] = NULL;
        c->n--;
    }
    l->conf = NULL;
    l->slot = l->mix_id = -1;
    if (c->n == 0)
        conf_close(m, c);
}

/* ---- legs ---- */
static void leg_free(struct dp_media *m, struct leg *l)
{
    conf_leave(m, l);
    stream_close(m, &l->a);
    stream_close(m, &l->v);
    uint32_t idx = l->id & 0xffff;
    if (m->legs[idx] == l) {
        m->legs[idx] = NULL;
        m->gen[idx]++;
        m->n_legs--;
        st_sub(&m->st.legs, 1);
    }
    explicit_bzero(l, sizeof *l);
    free(l);
}

static bool codec_ok(const struct dp_media_stream_params *sp, bool audio)
{
    if (audio)
        return sp->codec == DP_CODEC_PCMU || sp->codec == DP_CODEC_PCMA ||
               sp->codec == DP_CODEC_OPUS;
    return sp->codec == DP_CODEC_H264 || sp->codec == DP_CODEC_VP8;
}

static bool port_ok(const struct dp_media_stream_params *sp)
{
    return sp->local_port != 0 && (sp->local_port & 1) == 0 && sp->local_port != 0xfffe;
}

/* Copies the negotiated, non-key part of sp into s. */
static void stream_take(struct stream *s, const struct dp_media_stream_params *sp, bool audio)
{
    s->on = true;
    s->audio = audio;
    s->send = sp->send;
    s->recv = sp->recv;
    s->secure = sp->secure;
    s->codec = sp->codec;
    s->pt = sp->pt;
    s->te_pt = audio ? sp->te_pt : -1;
    s->opus_bitrate = sp->opus_bitrate;
    if (sp->remote_len > 0 && sp->remote_len <= sizeof s->rem) {
        s->rem = sp->remote;
        s->rem_rtcp = sp->rtcp_mux ? sp->remote : sp->remote_rtcp;
        s->rem_len = sp->remote_len;
    } else {
        s->rem_len = 0;
    }
    s->aout.pt = sp->pt;
}

static void stream_init_fresh(struct stream *s, const struct dp_media_stream_params *sp, bool audio,
                              uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->fd[0] = s->fd[1] = -1;
    s->port = sp->local_port;
    s->mux = sp->rtcp_mux;
    stream_take(s, sp, audio);
    s->aout.ssrc = rand32();
    s->aout.seq = (uint16_t)rand32();
    s->aout.ts = rand32();
    s->vout_ssrc = rand32();
    s->next_rtcp_ms = now_ms + 1000 + rand32() % RTCP_INTERVAL_MS;
}

int dp_media_leg_open(struct dp_media *m, struct dp_media_leg_params *p, uint32_t *leg, char *why,
                      size_t whylen)
{
    if (why && whylen)
        why[0] = 0;
    *leg = 0;
    if (!p || !p->local_address || !p->audio.enabled || !codec_ok(&p->audio, true) ||
        !port_ok(&p->audio) ||
        (p->video.enabled && (!codec_ok(&p->video, false) || !port_ok(&p->video)))) {
        set_why(why, whylen, "Bad media parameters");
        return DP_MEDIA_PARAM;
    }
    p->audio.crypto_answer[0] = 0;
    p->video.crypto_answer[0] = 0;
    uint32_t idx = DP_MEDIA_MAX_LEGS;
    for (uint32_t i = 0; i < DP_MEDIA_MAX_LEGS; i++)
        if (!m->legs[(m->n_legs + i) % DP_MEDIA_MAX_LEGS]) {
            idx = (m->n_legs + i) % DP_MEDIA_MAX_LEGS;
            break;
        }
    if (idx == DP_MEDIA_MAX_LEGS) {
        set_why(why, whylen, "No media session free on worker %u", m->worker);
        return DP_MEDIA_BUSY;
    }
    struct leg *l = calloc(1, sizeof *l);
    if (!l) {
        set_why(why, whylen, "Out of memory for a media session");
        return DP_MEDIA_BUSY;
    }
    uint64_t now_ms = mono_us() / 1000u;
    if (m->gen[idx] == 0)
        m->gen[idx] = 1;
    l->id = (uint32_t)m->gen[idx] << 16 | idx;
    l->owner = p->owner;
    l->slot = l->mix_id = -1;
    l->timeout_ms = p->timeout_ms;
    l->last_rx_ms = now_ms;
    stream_init_fresh(&l->a, &p->audio, true, now_ms);
    l->v.fd[0] = l->v.fd[1] = -1;
    m->legs[idx] = l;
    m->n_legs++;
    st_add(&m->st.legs, 1);

    bool same;
    int rc = crypto_prepare(&p->audio, NULL, &l->a.in, &l->a.out, l->a.offer_line, l->a.answer_line,
                            &same, why, whylen);
    if (rc != DP_MEDIA_OK)
        goto fail;
    if (p->video.enabled) {
        stream_init_fresh(&l->v, &p->video, false, now_ms);
        rc = crypto_prepare(&p->video, NULL, &l->v.in, &l->v.out, l->v.offer_line, l->v.answer_line,
                            &same, why, whylen);
        if (rc != DP_MEDIA_OK)
            goto fail;
    }
    struct conf *c = conf_find(m, p->conf_key);
    if (c && c->n >= CONF_LEGS) {
        set_why(why, whylen, "Conference full (%d participants)", CONF_LEGS);
        rc = DP_MEDIA_BUSY;
        goto fail;
    }
    rc = stream_sockets(m, &l->a, idx, K_ARTP, p->local_address, why, whylen);
    if (rc == DP_MEDIA_OK && l->v.on)
        rc = stream_sockets(m, &l->v, idx, K_VRTP, p->local_address, why, whylen);
    if (rc != DP_MEDIA_OK)
        goto fail;
    if (!c && !(c = conf_open(m, p->conf_key, p->speakers, why, whylen))) {
        rc = DP_MEDIA_BUSY;
        goto fail;
    }
    int slot = 0;
    while (slot < CONF_LEGS && c->slot[slot])
        slot++;
    c->slot[slot] = l;
    c->n++;
    l->conf = c;
    l->slot = slot;
    int mid = md_mixer_add(c->mx, md_codec_of(l->a.codec), l->a.opus_bitrate);
    if (mid < 0) {
        set_why(why, whylen, "Mixer: %s", md_status_str(mid));
        rc = DP_MEDIA_BUSY;
        goto fail;
    }
    l->mix_id = mid;
    c->mix_to_slot[mid] = slot;
    if (l->v.on)
        md_vswitch_add(&c->vs, slot, l->v.vout_ssrc);
    memcpy(p->audio.crypto_answer, l->a.answer_line, DP_MEDIA_CRYPTO_MAX);
    memcpy(p->video.crypto_answer, l->v.answer_line, DP_MEDIA_CRYPTO_MAX);
    *leg = l->id;
    timer_rearm(m, mono_us());
    return DP_MEDIA_OK;
fail:
    leg_free(m, l);
    timer_rearm(m, mono_us());
    return rc;
}

int dp_media_leg_update(struct dp_media *m, uint32_t id, struct dp_media_leg_params *p, char *why,
                        size_t whylen)
{
    if (why && whylen)
        why[0] = 0;
    struct leg *l = leg_get(m, id);
    if (!l || !l->conf) {
        set_why(why, whylen, "No such media session");
        return DP_MEDIA_PARAM;
    }
    if (!p || !p->audio.enabled || !codec_ok(&p->audio, true) || p->audio.local_port != l->a.port ||
        p->audio.rtcp_mux != l->a.mux ||
        (p->video.enabled &&
         (!codec_ok(&p->video, false) || !port_ok(&p->video) ||
          (l->v.on && (p->video.local_port != l->v.port || p->video.rtcp_mux != l->v.mux))))) {
        set_why(why, whylen, "Bad media parameters");
        return DP_MEDIA_PARAM;
    }
    struct conf *c = l->conf;
    uint64_t now_ms = mono_us() / 1000u;
    struct md_srtp *ain = NULL, *aout = NULL, *vin = NULL, *vout = NULL;
    char aoffer[DP_MEDIA_CRYPTO_MAX], aans[DP_MEDIA_CRYPTO_MAX];
    char voffer[DP_MEDIA_CRYPTO_MAX], vans[DP_MEDIA_CRYPTO_MAX];
    bool asame = false, vsame = false;
    struct stream nv;
    bool new_video = p->video.enabled && !l->v.on;
    int new_mix = -1;
    int rc = crypto_prepare(&p->audio, &l->a, &ain, &aout, aoffer, aans, &asame, why, whylen);
    if (rc == DP_MEDIA_OK && p->video.enabled)
        rc = crypto_prepare(&p->video, l->v.on ? &l->v : NULL, &vin, &vout, voffer, vans, &vsame,
                            why, whylen);
    if (rc != DP_MEDIA_OK)
        goto fail;
    if (new_video) {
        stream_init_fresh(&nv, &p->video, false, now_ms);
        rc = stream_sockets(m, &nv, l->id & 0xffff, K_VRTP, p->local_address, why, whylen);
        if (rc != DP_MEDIA_OK)
            goto fail;
    }
    if (p->audio.codec != l->a.codec || p->audio.opus_bitrate != l->a.opus_bitrate) {
        new_mix = md_mixer_add(c->mx, md_codec_of(p->audio.codec), p->audio.opus_bitrate);
        if (new_mix < 0) {
            set_why(why, whylen, "Mixer: %s", md_status_str(new_mix));
            rc = DP_MEDIA_BUSY;
            if (new_video)
                stream_close(m, &nv);
            goto fail;
        }
    }
    /* commit: nothing below fails */
    if (new_mix >= 0) {
        md_mixer_remove(c->mx, l->mix_id);
        c->mix_to_slot[l->mix_id] = -1;
        l->mix_id = new_mix;
        c->mix_to_slot[new_mix] = l->slot;
    }
    bool was_secure = l->a.secure;
    stream_take(&l->a, &p->audio, true);
    if (!asame || !p->audio.secure || !was_secure) {
        md_srtp_free(l->a.in);
        md_srtp_free(l->a.out);
        l->a.in = ain;
        l->a.out = aout;
        ain = aout = NULL;
        if (l->a.in) {
            memcpy(l->a.offer_line, aoffer, sizeof aoffer);
            memcpy(l->a.answer_line, aans, sizeof aans);
        } else {
            l->a.offer_line[0] = l->a.answer_line[0] = 0;
        }
    }
    if (!p->video.enabled && l->v.on) {
        md_vswitch_remove(&c->vs, l->slot);
        stream_close(m, &l->v);
    } else if (new_video) {
        l->v = nv;
        l->v.in = vin;
        l->v.out = vout;
        vin = vout = NULL;
        if (l->v.in) {
            memcpy(l->v.offer_line, voffer, sizeof voffer);
            memcpy(l->v.answer_line, vans, sizeof vans);
        }
        md_vswitch_add(&c->vs, l->slot, l->v.vout_ssrc);
    } else if (p->video.enabled) {
        bool vwas = l->v.secure;
        stream_take(&l->v, &p->video, false);
        if (!vsame || !p->video.secure || !vwas) {
            md_srtp_free(l->v.in);
            md_srtp_free(l->v.out);
            l->v.in = vin;
            l->v.out = vout;
            vin = vout = NULL;
            if (l->v.in) {
                memcpy(l->v.offer_line, voffer, sizeof voffer);
                memcpy(l->v.answer_line, vans, sizeof vans);
            } else {
                l->v.offer_line[0] = l->v.answer_line[0] = 0;
            }
        }
    }
    l->last_rx_ms = now_ms; /* a new direction starts the timeout afresh */
    l->reported = false;
    l->timeout_ms = p->timeout_ms;
    memcpy(p->audio.crypto_answer, l->a.answer_line, DP_MEDIA_CRYPTO_MAX);
    p->video.crypto_answer[0] = 0;
    if (l->v.on)
        memcpy(p->video.crypto_answer, l->v.answer_line, DP_MEDIA_CRYPTO_MAX);
    rc = DP_MEDIA_OK;
fail:
    md_srtp_free(ain);
    md_srtp_free(aout);
    md_srtp_free(vin);
    md_srtp_free(vout);
    explicit_bzero(aans, sizeof aans);
    explicit_bzero(vans, sizeof vans);
    return rc;
}

void dp_media_leg_close(struct dp_media *m, uint32_t id)
{
    struct leg *l = leg_get(m, id);
    if (!l)
        return;
    leg_free(m, l);
    timer_rearm(m, mono_us());
}

/* ---- receive path ---- */
static void latch(struct dp_media *m, struct stream *s, const struct sockaddr_storage *from,
                  socklen_t fromlen, bool rtcp)
{
    if (fromlen > sizeof s->rem)
        return;
    if (rtcp && !s->mux) {
        if (!same_addr(&s->rem_rtcp, from)) {
            memcpy(&s->rem_rtcp, from, fromlen);
            st_add(&m->st.latches, 1);
        }
        return;
    }
    if (s->rem_len == fromlen && same_addr(&s->rem, from))
        return;
    memcpy(&s->rem, from, fromlen);
    if (s->mux)
        memcpy(&s->rem_rtcp, from, fromlen);
    else if (s->rem_len == 0) { /* RTCP on the next port until it says otherwise */
        memcpy(&s->rem_rtcp, from, fromlen);
        struct sockaddr_in *r4 = (struct sockaddr_in *)&s->rem_rtcp;
        struct sockaddr_in6 *r6 = (struct sockaddr_in6 *)&s->rem_rtcp;
        if (from->ss_family == AF_INET)
            r4->sin_port = htons((uint16_t)(ntohs(r4->sin_port) + 1));
        else
            r6->sin6_port = htons((uint16_t)(ntohs(r6->sin6_port) + 1));
    }
    s->rem_len = fromlen;
    st_add(&m->st.latches, 1);
}

static bool srtp_failed(struct dp_media *m, md_status_t st)
{
    if (st == MD_OK)
        return false;
    if (st == MD_ERR_AUTH)
        st_add(&m->st.srtp_auth_failures, 1);
    else if (st == MD_ERR_REPLAY)
        st_add(&m->st.srtp_replays, 1);
    else
        st_add(&m->st.srtp_other_failures, 1);
    return true;
}

static void forward_video(struct dp_media *m, struct leg *l, const struct md_rtp *h,
                          const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct conf *c = l->conf;
    bool kf = md_video_is_keyframe(l->v.codec == DP_CODEC_H264 ? MD_VIDEO_H264 : MD_VIDEO_VP8,
                                   h->payload, h->payload_len);
    for (int r = 0; r < CONF_LEGS; r++) {
        struct leg *rl = c->slot[r];
        if (!rl || rl == l || !rl->v.on || !rl->v.send || !rl->v.rem_len ||
            rl->v.codec != l->v.codec || !md_vswitch_wants(&c->vs, r, l->slot))
            continue;
        uint8_t *o = tx_slot(m);
        if (!o)
            return;
        if (len > tx_room(m)) {
            st_add(&m->st.drop_send, 1);
            continue;
        }
        memcpy(o, pkt, len);
        if (md_vswitch_forward(&c->vs, r, l->slot, h, o, kf, now_ms) != MD_OK)
            continue;
        if (rl->v.pt != l->v.pt)
            md_rtp_set_pt(o, rl->v.pt);
        size_t olen = len;
        if (rl->v.secure && srtp_failed(m, md_srtp_protect(rl->v.out, o, &olen, m->tx_cap)))
            continue;
        rl->v.vout_packets++;
        rl->v.vout_octets += (uint32_t)h->payload_len;
        rl->v.out_pkts++;
        tx_commit(m, &rl->v, false, &rl->v.rem, rl->v.rem_len, olen);
        st_add(&m->st.video_forwarded, 1);
        st_add(&m->st.rtp_out, 1);
    }
}

static void rtp_in(struct dp_media *m, struct leg *l, struct stream *s, uint8_t *buf, size_t len,
                   const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms)
{
    if (!s->recv) {
        st_add(&m->st.drop_unexpected, 1);
        return;
    }
    if (s->secure && srtp_failed(m, md_srtp_unprotect(s->in, buf, &len)))
        return;
    struct md_rtp h;
    if (md_rtp_parse(buf, len, &h) != MD_OK) {
        st_add(&m->st.drop_malformed, 1);
        return;
    }
    latch(m, s, from, fromlen, false);
    l->last_rx_ms = now_ms;
    if (s->audio && (int)h.pt == s->te_pt) {
        st_add(&m->st.dtmf_packets, 1);
        return;
    }
    if (h.pt != s->pt) {
        st_add(&m->st.drop_unexpected, 1);
        return;
    }
    rx_update(&s->rx, &h, now_ms, clock_of(s));
    s->in_pkts++;
    if (s->audio) {
        md_jb_push_t r =
            md_mixer_push(l->conf->mx, l->mix_id, h.seq, h.ts, h.payload, h.payload_len);
        if (r != MD_JB_QUEUED && r != MD_JB_RESYNC)
            st_add(&m->st.drop_jitter, 1);
        return;
    }
    forward_video(m, l, &h, buf, len, now_ms);
}

/* The leg whose video receiver `l` currently sees, or NULL. */
static struct leg *video_source_of(struct leg *l)
{
    struct conf *c = l->conf;
    int cur = c->vs.rx[l->slot].cur;
    if (cur < 0)
        cur = c->vs.rx[l->slot].want;
    return cur >= 0 && cur < CONF_LEGS ? c->slot[cur] : NULL;
}

/* NACKs from receiver l, in its numbering, go to its source in the source's. */
static void forward_nack(struct dp_media *m, struct leg *l, const struct md_rtcp *p)
{
    struct leg *src = video_source_of(l);
    if (!src || !src->v.on || !src->v.rem_len || !src->v.rx.have)
        return;
    uint16_t off = l->conf->vs.rx[l->slot].seq_off;
    uint8_t *o = tx_slot(m);
    if (!o)
        return;
    size_t cap = tx_room(m);
    int n = md_rtcp_build_rr(o, cap, src->v.vout_ssrc, NULL, 0);
    if (n < 0)
        return;
    size_t cnt = md_rtcp_nack_count(p);
    for (size_t i = 0; i < cnt && i < FEEDBACK_MAX_NACK; i++) {
        uint16_t pid, blp;
        md_rtcp_nack_get(p, i, &pid, &blp);
        int k = md_rtcp_build_nack(o + n, cap - (size_t)n, src->v.vout_ssrc, src->v.rx.ssrc,
                                   (uint16_t)(pid - off), blp);
        if (k < 0)
            break;
        n += k;
    }
    rtcp_send(m, &src->v, o, (size_t)n);
    st_add(&m->st.feedback_forwarded, 1);
}

static void rtcp_in(struct dp_media *m, struct leg *l, struct stream *s, uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from, socklen_t fromlen, bool on_rtcp_port,
                    uint64_t now_ms)
{
    st_add(&m->st.rtcp_in, 1);
    if (s->secure && srtp_failed(m, md_srtp_unprotect_rtcp(s->in, buf, &len)))
        return;
    latch(m, s, from, fromlen, on_rtcp_port);
    size_t off = 0;
    struct md_rtcp p;
    int r;
    while ((r = md_rtcp_next(buf, len, &off, &p)) == 1) {
        switch (p.type) {
        case MD_RTCP_SR:
            if (s->rx.have && p.ssrc == s->rx.ssrc) {
                s->rx.lsr = (uint32_t)(p.ntp >> 16);
                s->rx.lsr_ms = now_ms;
            }
            break;
        case MD_RTCP_BYE:
            st_add(&m->st.rtcp_byes, 1);
            if (!l->bye_ms)
                l->bye_ms = now_ms;
            s->rx.have = false;
            break;
        case MD_RTCP_PSFB:
            if (!s->audio && (p.count == MD_RTCP_FMT_PLI || p.count == MD_RTCP_FMT_FIR)) {
                struct leg *src = video_source_of(l);
                if (src) {
                    keyframe_request(m, src, p.count == MD_RTCP_FMT_PLI ? MD_KF_PLI : MD_KF_FIR);
                    st_add(&m->st.feedback_forwarded, 1);
                }
            }
            break;
        case MD_RTCP_RTPFB:
            if (!s->audio && p.count == MD_RTCP_FMT_NACK)
                forward_nack(m, l, &p);
            break;
        default:
            break;
        }
    }
    if (r < 0)
        st_add(&m->st.drop_malformed, 1);
}

/* One datagram received on a port of leg l (kind K_*). */
static void datagram_in(struct dp_media *m, struct leg *l, int kind, uint8_t *buf, size_t len,
                        const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms)
{
    struct stream *s = kind < K_VRTP ? &l->a : &l->v;
    bool rtcp_port = kind & 1;
    switch (md_demux(buf, len)) {
    case MD_PKT_RTP:
        st_add(&m->st.rtp_in, 1);
        if (rtcp_port)
            st_add(&m->st.drop_unexpected, 1);
        else
            rtp_in(m, l, s, buf, len, from, fromlen, now_ms);
        break;
    case MD_PKT_RTCP:
        rtcp_in(m, l, s, buf, len, from, fromlen, rtcp_port, now_ms);
        break;
    case MD_PKT_STUN:
    case MD_PKT_DTLS:
        st_add(&m->st.drop_unexpected, 1);
        break;
    default:
        st_add(&m->st.drop_malformed, 1);
        break;
    }
}

static void sock_readable(struct dp_media *m, struct leg *l, int kind)
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
            datagram_in(m, l, kind, buf, len, &q->addr[i], q->msgs[i].msg_hdr.msg_namelen, now_ms);
        }
        tx_flush(m);
        if (n < RX_BATCH)
            break;
    }
}

/* ---- per tick ---- */
/* One tick of conference c at the grid time tick_us (the mixer's clock stays on the
 * grid, so every conference of the worker ticks together); late says the worker
 * reached it more than half a tick after that time. */
static void conf_tick(struct dp_media *m, struct conf *c, uint64_t tick_us, bool late)
{
    uint64_t now_ms = tick_us / 1000u;
    int changed = md_mixer_tick(c->mx, tick_us);
    st_add(&m->st.mixer_ticks, 1);
    for (int i = 0; i < CONF_LEGS; i++) {
        struct leg *l = c->slot[i];
        if (!l)
            continue;
        struct stream *s = &l->a;
        const uint8_t *pl;
        int n = md_mixer_output(c->mx, l->mix_id, &pl);
        if (n <= 0 || !s->send || !s->rem_len)
            continue;
        uint8_t *o = tx_slot(m);
        if (!o)
            break;
        if ((size_t)n >= tx_room(m))
            continue;
        int h = md_rtp_out_header(&s->aout, o, tx_room(m) - (size_t)n, false,
                                  md_codec_ts_step(md_codec_of(s->codec)), (size_t)n);
        if (h < 0)
            continue;
        memcpy(o + h, pl, (size_t)n);
        size_t len = (size_t)h + (size_t)n;
        if (s->secure && srtp_failed(m, md_srtp_protect(s->out, o, &len, m->tx_cap)))
            continue;
        s->out_pkts++;
        tx_commit(m, s, false, &s->rem, s->rem_len, len);
        st_add(&m->st.rtp_out, 1);
    }
    if (changed) {
        int dom = md_mixer_dominant(c->mx);
        if (dom >= 0 && c->mix_to_slot[dom] >= 0) {
            md_vswitch_set_speaker(&c->vs, c->mix_to_slot[dom], now_ms);
            st_add(&m->st.speaker_switches, 1);
        }
    }
    struct md_kf_req req[8];
    size_t nreq = md_vswitch_poll_requests(&c->vs, now_ms, req, 8);
    for (size_t i = 0; i < nreq; i++)
        if (req[i].src >= 0 && req[i].src < CONF_LEGS && c->slot[req[i].src])
            keyframe_request(m, c->slot[req[i].src], req[i].type);
    const struct md_mixer_stats *ms = md_mixer_stats(c->mx);
    if (ms->overrun_slow > c->slow_seen) { /* the tick itself took over its budget */
        st_add(&m->st.mixer_overruns, ms->overrun_slow - c->slow_seen);
        c->slow_seen = ms->overrun_slow;
    }
    if (late) {
        st_add(&m->st.mixer_overruns, 1);
        st_add(&m->st.mixer_late, 1);
    }
}

/* Timeouts and RTCP reports. Timeouts are reported after the walk, each re-checked,
 * since the owner closes legs from its callback. */
static void housekeep(struct dp_media *m, uint64_t now_ms)
{
    uint32_t due[MAX_EVENTS];
    unsigned n_due = 0;
    for (uint32_t i = 0; i < DP_MEDIA_MAX_LEGS; i++) {
        struct leg *l = m->legs[i];
        if (!l || !l->conf)
            continue;
        struct stream *ss[2] = {&l->a, &l->v};
        for (int k = 0; k < 2; k++)
            if (ss[k]->on && now_ms >= ss[k]->next_rtcp_ms) {
                rtcp_report(m, l, ss[k], now_ms);
                ss[k]->next_rtcp_ms = now_ms + RTCP_INTERVAL_MS;
            }
        if (l->reported || n_due == MAX_EVENTS)
            continue;
        bool expect = (l->a.on && l->a.recv) || (l->v.on && l->v.recv);
        uint64_t silent = now_ms > l->last_rx_ms ? now_ms - l->last_rx_ms : 0;
        bool bye_gone =
            l->bye_ms && l->last_rx_ms <= l->bye_ms && now_ms - l->bye_ms >= BYE_GRACE_MS;
        if ((expect && l->timeout_ms && silent >= l->timeout_ms) || bye_gone) {
            l->reported = true;
            due[n_due++] = l->id;
        }
    }
    tx_flush(m);
    for (unsigned i = 0; i < n_due; i++) {
        struct leg *l = leg_get(m, due[i]);
        if (!l)
            continue;
        st_add(&m->st.media_timeouts, 1);
        cn_log(CN_LOG_INFO, "media_timeout", "worker=%u leg=%u port=%u silent_ms=%llu rtcp_bye=%d",
               m->worker, l->id, l->a.port, (unsigned long long)(now_ms - l->last_rx_ms),
               l->bye_ms != 0);
        if (m->ev_fn)
            m->ev_fn(m->ev_ctx, l->owner, DP_MEDIA_EV_TIMEOUT, now_ms);
    }
}

static void on_timer(struct dp_media *m)
{
    uint64_t v;
    ssize_t r = read(m->tfd, &v, sizeof v);
    (void)r;
    m->armed_us = 0;
    uint64_t now_us = mono_us();
    if (m->n_confs && (m->grid_us == 0 || now_us + 500 >= m->grid_us)) {
        uint64_t tick = m->grid_us ? m->grid_us : now_us;
        if (now_us >= tick + TICK_US) { /* whole ticks behind: they are lost, and counted */
            uint64_t missed = (now_us - tick) / TICK_US * m->n_confs;
            st_add(&m->st.mixer_overruns, missed);
            st_add(&m->st.mixer_late, missed);
            tick = now_us;
        }
        bool late = now_us > tick + TICK_US / 2;
        for (unsigned i = 0; i < m->n_confs; i++)
            conf_tick(m, m->conf_list[i], tick, late);
        m->grid_us = tick + TICK_US;
    } else if (!m->n_confs) {
        m->grid_us = 0;
    }
    tx_flush(m);
    uint64_t now_ms = now_us / 1000u;
    if (now_ms >= m->next_housekeep_ms) {
        m->next_housekeep_ms = now_ms + HOUSEKEEP_MS;
        housekeep(m, now_ms);
    }
    timer_rearm(m, mono_us());
}

void dp_media_event(struct dp_media *m, uint32_t value, uint32_t events)
{
    (void)events;
    if (value == TIMER_VALUE) {
        on_timer(m);
        return;
    }
    uint32_t idx = value / 4u;
    if (idx >= DP_MEDIA_MAX_LEGS || !m->legs[idx])
        return; /* closed earlier in this epoll batch */
    sock_readable(m, m->legs[idx], (int)(value % 4u));
}

int dp_media_set_pktio(struct dp_media *m, const struct dpk_pktio *io)
{
    if (!m || !io || !io->open || !io->close || !io->tx_slot || !io->tx_commit || !io->tx_flush)
        return -1;
    if (m->n_legs)
        return -1; /* ports already open as sockets */
    tx_flush(m);
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
    datagram_in(m, m->legs[idx], (int)(value % 4u), buf, len, from, fromlen, now_ms);
    tx_flush(m);
}

/* ---- lifecycle ---- */
struct dp_media *dp_media_create(unsigned worker, int epfd, uint32_t ev_tag)
{
    struct dp_media *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->worker = worker;
    m->epfd = epfd;
    m->tag = ev_tag;
    snprintf(m->cname, sizeof m->cname, "confnode-w%u", worker);
    m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)ev_tag << 32 | TIMER_VALUE};
    if (m->tfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, m->tfd, &ev) != 0) {
        if (m->tfd >= 0)
            close(m->tfd);
        free(m);
        return NULL;
    }
    for (unsigned i = 0; i < RX_BATCH; i++) {
        m->rx.iov[i].iov_base = m->rx.buf[i];
        m->rx.iov[i].iov_len = RX_MAX;
        m->rx.msgs[i].msg_hdr.msg_name = &m->rx.addr[i];
        m->rx.msgs[i].msg_hdr.msg_iov = &m->rx.iov[i];
        m->rx.msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return m;
}

void dp_media_free(struct dp_media *m)
{
    if (!m)
        return;
    /* the packet I/O backend has flushed and may be gone by now (the worker stopped):
     * the legs only forget their ports */
    m->io = NULL;
    tx_flush(m);
    for (uint32_t i = 0; i < DP_MEDIA_MAX_LEGS; i++)
        if (m->legs[i])
            leg_free(m, m->legs[i]);
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->tfd, NULL);
    close(m->tfd);
    free(m);
}

void dp_media_set_events(struct dp_media *m, dp_media_event_fn fn, void *ctx)
{
    m->ev_fn = fn;
    m->ev_ctx = ctx;
}

const struct dp_media_stats *dp_media_stats(const struct dp_media *m)
{
    return &m->st;
}

int dp_media_leg_info(const struct dp_media *m, uint32_t id, struct dp_media_leg_info *out)
{
    const struct leg *l = leg_get(m, id);
    if (!l || !l->conf)
        return -1;
    memset(out, 0, sizeof *out);
    out->mixer_id = l->mix_id;
    out->video_slot = l->v.on ? l->slot : -1;
    out->audio_out_ssrc = l->a.aout.ssrc;
    out->video_out_ssrc = l->v.on ? l->v.vout_ssrc : 0;
    out->audio_in_ssrc = l->a.rx.have ? l->a.rx.ssrc : 0;
    out->video_in_ssrc = l->v.rx.have ? l->v.rx.ssrc : 0;
    out->audio_in = l->a.in_pkts;
    out->video_in = l->v.in_pkts;
    out->audio_out = l->a.out_pkts;
    out->video_out = l->v.out_pkts;
    out->dominant_slot = l->conf->vs.speaker;
    return 0;
}
