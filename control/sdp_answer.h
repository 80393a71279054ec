/* SDP offer/answer for the node's own endpoints (sofia-sip's SDP parser).
 *
 * Two entry points:
 *
 * sdp_negotiate() is what the node's user agent uses. It parses the caller's offer,
 * chooses the streams we take under a policy (struct sdp_options: SRTP required /
 * optional / off, Opus, video, AVPF, rtcp-mux), hands the plan to a callback that
 * opens the media session (ports, SRTP keys: our a=crypto values come back in the
 * plan), then prints the answer. In detail:
 * - Audio: the first live audio m-line whose profile the policy allows (RTP/AVP,
 *   RTP/SAVP, and with `avpf` RTP/AVPF and RTP/SAVPF) and that offers a codec we have:
 *   PCMU/0, PCMA/8 at 8000 Hz, or (with `opus`) opus/48000, the first of them in the
 *   offer's order. Under "optional" a later secure line is preferred to an earlier
 *   plain one (the duplicated m-line form of best-effort SRTP). A secure line needs
 *   at least one a=crypto (SDES); DTLS-SRTP is not supported. telephone-event is
 *   answered when offered at the chosen codec's clock rate (a=fmtp 0-15).
 * - Video (with `video`): the first live video m-line with the same security as the
 *   chosen audio line and H264/90000 or VP8/90000; passed through, never transcoded.
 *   Its a=fmtp is echoed, and its a=rtcp-fb nack / nack pli / ccm fir lines when
 *   offered for that payload type (or "*").
 * - a=rtcp-mux is answered when offered (and `rtcp_mux`); a=rtcp gives the peer's
 *   RTCP port otherwise (default: RTP port + 1).
 * - The direction is mirrored: sendonly -> recvonly, recvonly -> sendonly, inactive
 *   -> inactive, otherwise sendrecv (c=0.0.0.0 counts as the offerer receiving
 *   nothing, RFC 3264 §8.4): hold and resume arrive this way in re-INVITEs.
 * - Every other m-line, and a chosen one the callback leaves without a port, is
 *   answered with port 0 (rejected), repeating the offer's media, proto and formats.
 * - The answer is v=, o=, s=, c=, t=0 0 and the m= sections, CRLF line ends; its o=
 *   and c= use IP4 or IP6 after the form of `address`.
 * - Offers over 64 KiB or with a NUL byte are refused.
 *
 * sdp_answer_build() is the fixed, audio-only form: plain RTP/AVP, PCMU or PCMA,
 * telephone-event, no SRTP (RTP/SAVP lines are rejected and an offer whose only audio
 * is secure fails with "Secure RTP (RTP/SAVP) not offered in a form we accept"). */
#ifndef SDP_ANSWER_H
#define SDP_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sdp_answer_params {
    const char *address;     /* our media IP address (IPv4 or IPv6 literal) */
    uint16_t audio_port;     /* our RTP port (even); RTCP is port + 1 */
    uint64_t session_id;     /* o= session id and version */
    const char *username;    /* o= username, e.g. "confnode" */
};

/* Returns the answer's length written to out[0..outlen) and NUL-terminated (so
 * outlen must leave room for the NUL), or
 * -1 with a reason in `why` ("No common audio codec (offered: 18 97)", "SDP parse
 * error: ...", "No audio stream in offer") that becomes the Warning of a 488; the
 * reason holds no quote, backslash or control character. Thread-safe. */
ssize_t sdp_answer_build(const char *offer, size_t offer_len,
                         const struct sdp_answer_params *p, char *out, size_t outlen,
                         char *why, size_t whylen);

/* ---- negotiation with a policy -------------------------------------------------- */

enum sdp_srtp_policy { SDP_SRTP_OFF = 1, SDP_SRTP_OPTIONAL = 2, SDP_SRTP_REQUIRED = 3 };

enum sdp_codec { SDP_CODEC_PCMU = 0, SDP_CODEC_PCMA, SDP_CODEC_OPUS, SDP_CODEC_H264, SDP_CODEC_VP8 };

enum { SDP_FB_NACK = 1, SDP_FB_PLI = 2, SDP_FB_FIR = 4 };

#define SDP_MAX_CRYPTO 8
#define SDP_CRYPTO_MAX 200
#define SDP_FMTP_MAX 256

/* SDP_REFUSED: the offer cannot be met (the reason is in `why`); a callback returns
 * its own negative codes (below -1), which sdp_negotiate passes on. */
#define SDP_REFUSED (-1)

struct sdp_stream {
    bool accepted;          /* chosen (audio: always when the callback runs) */
    int index;              /* its m= line in the offer, from 0 */
    enum sdp_codec codec;
    unsigned pt;            /* payload type of codec in the offer */
    int te_pt;              /* telephone-event payload type, -1 none */
    bool secure;            /* RTP/SAVP(F): SRTP with SDES keys */
    bool avpf;              /* RTP/AVPF or RTP/SAVPF */
    bool rtcp_mux;          /* a=rtcp-mux offered (and allowed) */
    bool send, recv;        /* our direction: we send / we receive */
    char remote_addr[64];   /* the offer's c= address; "" when unspecified or a name */
    uint16_t remote_port, remote_rtcp_port;
    unsigned rtcp_fb;       /* SDP_FB_* offered for pt */
    char fmtp[SDP_FMTP_MAX]; /* video: the offer's a=fmtp for pt, echoed */
    /* the offer's a=crypto values (without "a=crypto:"), views valid during the
     * callback only */
    const char *crypto[SDP_MAX_CRYPTO];
    size_t crypto_len[SDP_MAX_CRYPTO];
    unsigned n_crypto;
    /* set by the callback */
    uint16_t local_port;    /* our RTP port; 0 rejects the stream (video only) */
    char crypto_answer[SDP_CRYPTO_MAX]; /* our a=crypto value for a secure stream */
};

struct sdp_plan {
    struct sdp_stream audio, video; /* video.accepted false when none is taken */
};

struct sdp_options {
    int srtp;      /* enum sdp_srtp_policy; 0 = optional */
    bool opus;     /* accept opus/48000 */
    bool video;    /* accept H.264 / VP8 video for passthrough */
    bool avpf;     /* accept the AVPF profiles */
    bool rtcp_mux; /* answer a=rtcp-mux when offered */
};

/* Opens the media for a plan: sets audio.local_port (and video.local_port, 0 to
 * reject the video after all) and the crypto answers. Returns 0, or a negative code
 * (< -1) with a reason in why. */
typedef int (*sdp_accept_fn)(void *arg, struct sdp_plan *plan, char *why, size_t whylen);

/* Parses `offer`, chooses streams under `opt`, calls accept(arg, plan) once, and
 * writes our answer to out[0..outlen) (NUL-terminated). p->audio_port is not used.
 * Returns the answer's length, SDP_REFUSED with a reason in why (parse error, no
 * stream we can take, a policy the offer does not meet), or the callback's negative
 * code. `plan` may be NULL; otherwise it holds the plan afterwards (its crypto
 * views are then stale). The reason holds no quote, backslash or control
 * character. Thread-safe. */
ssize_t sdp_negotiate(const char *offer, size_t offer_len, const struct sdp_answer_params *p,
                      const struct sdp_options *opt, sdp_accept_fn accept, void *arg,
                      struct sdp_plan *plan, char *out, size_t outlen, char *why,
                      size_t whylen);

#endif
