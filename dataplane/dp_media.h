/* Media sessions of one worker: the legs (a participant's audio and video streams)
 * and the conferences they belong to, on the worker's own sockets and epoll loop.
 *
 * DESIGN
 * Everything here belongs to one worker thread (DESIGN.md "Share-nothing per core"):
 * the UDP socket of every media port the worker opened (port partition,
 * common/cn_ports.h), the SRTP contexts, each conference's mixer and video switcher,
 * and the counters. A conference lives on one worker: every leg of a room is opened
 * on the room's worker, so mixing and fan-out never cross threads.
 *
 * Per datagram (from the worker's epoll): recvmmsg batches per socket, rtcp-mux
 * demultiplexing, SRTP/SRTCP unprotect (failures counted and dropped), audio into the
 * conference's jitter buffers, video forwarded to the receivers that see its sender
 * (SSRC, sequence and timestamp rewritten, SRTP-protected per receiver), RTCP
 * feedback (PLI, FIR, NACK) forwarded to the sender a receiver currently sees.
 * Per 20 ms (a timerfd armed at the earliest due conference): mixer tick, one encoded
 * frame per listener, keyframe requests after a speaker switch; SR/RR every 5 s per
 * stream; media timeouts reported to the owner through dp_media_set_events().
 * Outgoing datagrams are queued and written with sendmmsg, one call per socket per
 * flush; a run of equal-sized datagrams to one address goes as one UDP GSO message.
 * Nothing on the per-packet or per-tick path allocates or takes a lock; memory is
 * taken when a leg or a conference is opened. A closed conference keeps its memory
 * (mixer included) on a bounded spare list of the worker, and the next conference
 * opened there takes it, reset, instead of allocating and zeroing a new one. Likewise
 * a closed leg's sockets stay bound, idle, for a later leg on the same port once the
 * port has rested (dp_media_set_port_pool).
 *
 * The module knows nothing of SIP or SDP text: the upper layer says what was
 * negotiated (ports, remote addresses, codecs, directions, the peer's a=crypto
 * values) and gets back our a=crypto values for its answer. */
#ifndef DP_MEDIA_H
#define DP_MEDIA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DP_MEDIA_MAX_CRYPTO 8   /* a=crypto lines considered per stream */
#define DP_MEDIA_CRYPTO_MAX 200 /* longest a=crypto value, NUL included */
#define DP_MEDIA_MAX_LEGS 4096  /* legs per worker */
#define DP_MEDIA_MAX_CONFS 1024 /* conferences per worker */

/* Results of dp_media_leg_open / dp_media_leg_update. */
enum {
    DP_MEDIA_OK = 0,
    DP_MEDIA_REFUSED = -1,     /* the offer cannot be met (no usable a=crypto): 488 */
    DP_MEDIA_BUSY = -2,        /* no leg slot, conference full, out of memory: 503 */
    DP_MEDIA_PORT_IN_USE = -3, /* the local port could not be bound: try another */
    DP_MEDIA_PARAM = -4,       /* invalid parameters (caller bug) */
};

typedef enum dp_media_codec {
    DP_CODEC_PCMU = 0,
    DP_CODEC_PCMA,
    DP_CODEC_OPUS,
    DP_CODEC_H264,
    DP_CODEC_VP8,
} dp_media_codec_t;

/* One negotiated stream (an m= line we accepted). */
struct dp_media_stream_params {
    bool enabled;
    uint16_t local_port;            /* even; RTCP on local_port + 1 unless rtcp_mux */
    struct sockaddr_storage remote; /* where its RTP goes; remote_len 0 = not known yet */
    struct sockaddr_storage remote_rtcp;
    socklen_t remote_len;
    bool rtcp_mux;
    bool send, recv; /* our direction: we send to it / we receive from it */
    dp_media_codec_t codec;
    uint8_t pt;                              /* payload type of codec */
    int te_pt;                               /* telephone-event payload type, -1 none */
    int opus_bitrate;                        /* bits/s we encode Opus at, 0 = default */
    bool secure;                             /* RTP/SAVP: SRTP with keys from crypto[] */
    const char *crypto[DP_MEDIA_MAX_CRYPTO]; /* the peer's a=crypto values, in order */
    size_t crypto_len[DP_MEDIA_MAX_CRYPTO];
    unsigned n_crypto;
    char crypto_answer[DP_MEDIA_CRYPTO_MAX]; /* out: our a=crypto value ("" when plain) */
};

struct dp_media_leg_params {
    uint64_t conf_key;         /* the conference (a room); legs with the same key are mixed */
    unsigned speakers;         /* loudest N mixed, 1..8; 0 = 3 (taken when the conference opens) */
    uint32_t timeout_ms;       /* no RTP for this long while we expect some: EV_TIMEOUT; 0 = off */
    const char *local_address; /* IP literal the media sockets bind */
    void *owner;               /* handed back with events */
    struct dp_media_stream_params audio, video;
};

typedef enum dp_media_event {
    DP_MEDIA_EV_TIMEOUT = 1, /* no RTP for timeout_ms (or 2 s after an RTCP BYE) */
} dp_media_event_t;

/* Per-worker counters: written by the worker only (relaxed stores), read by the
 * control thread at any time (relaxed loads). */
struct dp_media_stats {
    _Atomic uint64_t legs, conferences; /* gauges */
    _Atomic uint64_t rtp_in, rtp_out, rtcp_in, rtcp_out, bytes_in, bytes_out;
    _Atomic uint64_t srtp_auth_failures, srtp_replays, srtp_other_failures;
    _Atomic uint64_t drop_malformed;  /* not RTP/RTCP, or did not parse */
    _Atomic uint64_t drop_unexpected; /* unknown payload type, direction, STUN/DTLS */
    _Atomic uint64_t drop_jitter;     /* late, duplicate or oversized for the jitter buffer */
    _Atomic uint64_t drop_oversize;   /* datagram larger than a packet buffer */
    _Atomic uint64_t drop_send;       /* sendmmsg did not take it */
    _Atomic uint64_t dtmf_packets;    /* telephone-event packets (not mixed) */
    _Atomic uint64_t mixer_ticks, mixer_overruns;
    _Atomic uint64_t mixer_late; /* of the overruns: ticks started > 10 ms late (the
                                    thread was not scheduled in time) */
    _Atomic uint64_t speaker_switches, keyframe_requests, video_forwarded, feedback_forwarded;
    _Atomic uint64_t rtcp_byes, media_timeouts, latches;
    _Atomic uint64_t conf_reuses; /* conferences opened on a closed one's mixer (no allocation) */
    _Atomic uint64_t port_binds;  /* media sockets created and bound */
    _Atomic uint64_t port_reuses; /* legs' ports served by an idle socket instead */
    _Atomic uint64_t port_idle_drops; /* datagrams that reached an idle socket (dropped) */
};

/* What a leg looks like now (tests, diagnostics). */
struct dp_media_leg_info {
    int mixer_id, video_slot;
    uint32_t audio_out_ssrc, video_out_ssrc;
    uint32_t audio_in_ssrc, video_in_ssrc;
    uint64_t audio_in, video_in, audio_out, video_out; /* packets */
    int dominant_slot; /* the conference's active speaker (video slot), -1 none */
};

struct dp_media;

typedef void (*dp_media_event_fn)(void *ctx, void *owner, dp_media_event_t ev, uint64_t now_ms);

/* Creates the media state of worker `worker`, registering its sockets (and its
 * timerfd) in epfd with data.u64 = (uint64_t)ev_tag << 32 | value; every such
 * event goes to dp_media_event(). Returns NULL when out of memory or descriptors. */
struct dp_media *dp_media_create(unsigned worker, int epfd, uint32_t ev_tag);
/* Closes every leg (no events) and frees everything. Accepts NULL. */
void dp_media_free(struct dp_media *m);

/* Who hears about timeouts. fn may close the leg (and others) from the callback. */
void dp_media_set_events(struct dp_media *m, dp_media_event_fn fn, void *ctx);

/* Opens a leg: binds its ports, sets up SRTP from the first a=crypto value of each
 * secure stream that parses and whose suite this libsrtp2 supports (our answer keys
 * are fresh, same suite and tag, written to crypto_answer), joins the conference
 * (opened on first use). Returns DP_MEDIA_OK with *leg (never 0), or DP_MEDIA_REFUSED /
 * BUSY / PORT_IN_USE / PARAM with a reason in why (fit for a SIP Warning). Nothing is
 * left behind on failure. */
int dp_media_leg_open(struct dp_media *m, struct dp_media_leg_params *p, uint32_t *leg, char *why,
                      size_t whylen);

/* Applies a re-negotiation (re-INVITE) to an open leg without dropping it: new
 * directions (hold), remote addresses, codec, keys (an a=crypto value equal to the
 * one in use keeps the SRTP state and our answer), video added or removed. The
 * conference and the audio port stay. On failure the leg is unchanged. */
int dp_media_leg_update(struct dp_media *m, uint32_t leg, struct dp_media_leg_params *p, char *why,
                        size_t whylen);

/* Closes the leg's sockets and leaves its conference (closed with its last leg).
 * An unknown or stale id is ignored. */
void dp_media_leg_close(struct dp_media *m, uint32_t leg);

/* The media socket pool (sockets backend). A closed leg's sockets stay bound and
 * registered, idle, up to max_idle per worker (the oldest is closed to make room; 0:
 * closed at once, as without a pool). A leg opened on the port of an idle socket gets
 * that socket, emptied of what reached it meanwhile, if its leg closed at least
 * rest_ms ago; otherwise the idle socket is closed and a new one bound, so datagrams
 * late for the previous call are not taken for the new one's. Idle sockets give way
 * (oldest first) when the process is out of descriptors. Defaults: 1024 sockets, or a
 * 32nd of the descriptor limit (RLIMIT_NOFILE) when that is less; 2000 ms. To reuse
 * sockets at R new legs per second, max_idle must be at least R x rest_ms / 1000. */
void dp_media_set_port_pool(struct dp_media *m, unsigned max_idle, uint32_t rest_ms);

/* For a port allocator: the even port of the socket idle longest, if its rest is over
 * (0 when none). A leg opened on it now reuses that socket (no socket, bind or epoll
 * set-up). The port is only a suggestion: the allocator decides whether it is free. */
uint16_t dp_media_rested_port(const struct dp_media *m);

/* An epoll event whose tag was ev_tag: `value` and `events` as registered/reported. */
void dp_media_event(struct dp_media *m, uint32_t value, uint32_t events);

const struct dp_media_stats *dp_media_stats(const struct dp_media *m);

/* Returns 0 with *out filled, or -1 for an unknown leg. */
int dp_media_leg_info(const struct dp_media *m, uint32_t leg, struct dp_media_leg_info *out);

#endif
