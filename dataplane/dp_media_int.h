/* Inside dp_media: the state of one worker's media sessions, shared by the files
 * that implement dp_media.h. Not for use outside dataplane/dp_media*.c.
 *
 *   dp_media.c       lifecycle, legs (open, update, close), SDES keys, the timer,
 *                    housekeeping (RTCP reports, timeouts), epoll event dispatch
 *   dp_media_io.c    ports and datagrams: sockets (and the pool of idle ones) or the
 *                    packet I/O backend, recvmmsg batches, the sendmmsg/GSO transmit
 *                    queue
 *   dp_media_rtp.c   per datagram: RTP/RTCP demultiplexing, SRTP, latching, reception
 *                    statistics, RTCP reports and feedback
 *   dp_media_conf.c  conferences: mixer and video switcher, the per-tick mix out,
 *                    video fan-out
 *
 * Everything here is owned by the worker thread of its struct dp_media. */
#ifndef DP_MEDIA_INT_H
#define DP_MEDIA_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "dp_media.h"
#include "dpk_pktio.h"
#include "md_codec.h"
#include "md_mixer.h"
#include "md_rtp.h"
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
#define CONF_SPARE 32 /* closed conferences kept, with their mixers, for the next ones */
#define MAX_EVENTS 64 /* timeouts reported per housekeeping pass */
#define FEEDBACK_MAX_NACK 16
#define TICK_US (MD_FRAME_MS * 1000u)
#define SOCK_RCVBUF (256 * 1024)

_Static_assert(MD_MIX_MAX_PARTIES == MD_VSW_MAX, "one slot space for mixer and switcher");

/* A port opened through the packet I/O interface (dpk_pktio.h) rather than a socket. */
#define FD_PKTIO (-2)

/* Media sockets (dp_media_io.c): epoll value SOCK_VALUE | entry in dp_media.sk. */
#define SOCK_VALUE 0x80000000u
#define SOCK_NONE 0xffffffffu
/* default: idle sockets kept per worker (at most 1/32 of the descriptor limit); with a
 * 2 s rest, enough for 512 new legs per second */
#define SOCK_IDLE_MAX 1024
#define SOCK_REST_MS 2000u /* default: how long an idle socket's port rests before reuse */

struct msock {
    int fd; /* -1: a free entry (then `next` links the free entries) */
    uint16_t port;
    uint8_t tos;
    uint8_t family;
    uint8_t addr[16]; /* the address bound (4 bytes for AF_INET) */
    bool idle;        /* no leg: in the idle FIFO */
    uint32_t user;    /* leg index * 4 + kind (K_*) while a leg has it */
    uint32_t prev, next;
    uint64_t idle_ms; /* idle since */
};

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
    int fd[2];     /* RTP, RTCP (-1 with rtcp-mux; FD_PKTIO when open through m->io) */
    int32_t sk[2]; /* their entries in dp_media.sk (sockets only) */
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

/* Datagrams queued for sendmmsg: entry i is buf[i] (len[i] bytes) from socket fd[i] to
 * addr[i]. At a flush they are sent grouped by socket (queue order kept within a
 * socket), and a run of equal-sized datagrams to one address goes as one UDP GSO
 * message (UDP_SEGMENT): one trip through the stack for the run. */
struct txq {
    unsigned n;
    int fd[TX_BATCH];
    uint16_t len[TX_BATCH];
    socklen_t addrlen[TX_BATCH];
    struct sockaddr_storage addr[TX_BATCH];
    uint8_t order[TX_BATCH];       /* at a flush: entries grouped by socket */
    struct iovec iov[TX_BATCH];    /* at a flush: in that order */
    struct mmsghdr msgs[TX_BATCH]; /* at a flush: one per datagram or GSO run */
    unsigned msg_first[TX_BATCH];  /* its first iov */
    union {
        char buf[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } ctl[TX_BATCH]; /* UDP_SEGMENT of a GSO message */
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
    struct conf *conf_spare[CONF_SPARE]; /* closed, mixer kept: reused by dpm_conf_open */
    unsigned n_conf_spare;
    char cname[32];
    struct dp_media_stats st;
    struct msock *sk; /* every media socket of the worker, in use or idle */
    uint32_t sk_cap, sk_free;
    uint32_t idle_head, idle_tail, n_idle; /* idle sockets, oldest first */
    uint32_t *idle_port; /* by port number: its idle socket, SOCK_NONE (65536, lazily) */
    uint32_t idle_max, rest_ms;
    bool no_gso;                /* the kernel refused UDP_SEGMENT once: plain datagrams */
    const struct dpk_pktio *io; /* NULL: sockets (recvmmsg/sendmmsg) */
    size_t tx_cap;              /* bytes in the last tx_slot() buffer */
    struct rxq rx;
    struct txq tx;
};

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

static inline uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* dp_media.c */
void dpm_set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
md_codec_id_t dpm_codec_of(dp_media_codec_t c);

/* dp_media_io.c: the transmit queue. dpm_tx_slot gives a buffer for the next datagram,
 * m->tx_cap bytes long (at most PKT_CAP), or NULL (counted as drop_send) when the
 * packet I/O has no buffer free; dpm_tx_commit queues it, sent from stream s's RTP
 * port (or its RTCP port); dpm_tx_flush sends what is queued. */
void dpm_tx_flush(struct dp_media *m);
uint8_t *dpm_tx_slot(struct dp_media *m);
void dpm_tx_commit(struct dp_media *m, const struct stream *s, bool rtcp,
                   const struct sockaddr_storage *to, socklen_t tolen, size_t len);

/* Room for a datagram before SRTP protection in the last dpm_tx_slot() buffer. */
static inline size_t dpm_tx_room(const struct dp_media *m)
{
    return m->tx_cap - MD_SRTP_MAX_TRAILER;
}

/* dp_media_io.c: the ports of a stream (leg index idx, first socket kind `kind`) */
int dpm_stream_sockets(struct dp_media *m, struct stream *s, uint32_t idx, int kind,
                       const char *addr, char *why, size_t whylen);
/* Closes the stream's ports and frees its SRTP contexts; keep: its sockets may stay
 * idle for a later leg (a leg that closes; not one that failed to open). */
void dpm_stream_close(struct dp_media *m, struct stream *s, bool keep);
/* An epoll event on socket entry i. */
void dpm_sock_event(struct dp_media *m, uint32_t i);
/* Closes the idle sockets and frees the socket table (no socket may be in use). */
void dpm_sockets_free(struct dp_media *m);
/* Reads what is waiting on the socket of leg l's port `kind`. */
void dpm_sock_readable(struct dp_media *m, struct leg *l, int kind);

/* dp_media_rtp.c */
/* One datagram received on a port of leg l (kind K_*). */
void dpm_datagram_in(struct dp_media *m, struct leg *l, int kind, uint8_t *buf, size_t len,
                     const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms);
/* Counts a failed SRTP operation; true when st is not MD_OK. */
bool dpm_srtp_failed(struct dp_media *m, md_status_t st);
/* SR (when we sent something) or RR, with a report block and an SDES CNAME. */
void dpm_rtcp_report(struct dp_media *m, struct leg *l, struct stream *s, uint64_t now_ms);
/* PLI or FIR to the sender of the video a leg sends us. */
void dpm_keyframe_request(struct dp_media *m, struct leg *src, md_kf_req_type_t type);

/* dp_media_conf.c */
struct conf *dpm_conf_find(struct dp_media *m, uint64_t key);
/* A new conference, on a spare one when there is one (NULL with a reason in why when
 * the worker has no room). */
struct conf *dpm_conf_open(struct dp_media *m, uint64_t key, unsigned speakers, char *why,
                           size_t whylen);
/* Frees the spare conferences (at shutdown). */
void dpm_conf_spares_free(struct dp_media *m);
/* Takes the leg out of its conference (and the conference away with its last leg). */
void dpm_conf_leave(struct dp_media *m, struct leg *l);
/* Forwards video packet pkt from leg l to the receivers that see it. */
void dpm_forward_video(struct dp_media *m, struct leg *l, const struct md_rtp *h,
                       const uint8_t *pkt, size_t len, uint64_t now_ms);
/* One tick of conference c at grid time tick_us; late: reached over half a tick late. */
void dpm_conf_tick(struct dp_media *m, struct conf *c, uint64_t tick_us, bool late);

#endif
