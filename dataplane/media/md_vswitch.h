/* Video switcher of one conference: every receiver gets the active speaker's video
 * (or, while it is the speaker itself, the previous speaker's) as one continuous RTP
 * stream of its own.
 *
 * Per receiver the outgoing stream has a constant SSRC, and sequence numbers and
 * timestamps that run on across switches: at a switch the offsets are chosen so that
 * the first forwarded packet of the new source follows the last one sent (sequence
 * + 1, timestamp + the wall-clock time elapsed at 90 kHz, at least one frame at 30
 * fps). The marker bit and the payload are left untouched. A source that restarts
 * its stream (new SSRC, or a sequence jump of more than 3000 ahead or 512 behind) is
 * re-anchored the same way.
 *
 * A switch waits for a keyframe: until the new source sends one, the receiver keeps
 * getting the old source (a receiver with no old source gets nothing). On a switch a
 * PLI is asked of the new source, then a FIR every fir_timeout_ms while no keyframe
 * came; md_vswitch_poll_requests() tells the caller which RTCP to send.
 *
 * Ids are the caller's participant ids (0..MD_VSW_MAX-1, e.g. the mixer's).
 * Ownership: one worker; no allocation (fixed arrays). */
#ifndef MD_VSWITCH_H
#define MD_VSWITCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_rtp.h"
#include "md_status.h"

#define MD_VSW_MAX 32
#define MD_VSW_CLOCK_KHZ 90
#define MD_VSW_MIN_TS_STEP 3000 /* one frame at 30 fps, 90 kHz clock */

typedef enum md_video_codec { MD_VIDEO_VP8 = 0, MD_VIDEO_H264 } md_video_codec_t;

typedef enum md_kf_req_type { MD_KF_PLI = 0, MD_KF_FIR } md_kf_req_type_t;

struct md_kf_req {
    int src; /* participant to send the request to */
    md_kf_req_type_t type;
    uint8_t fir_seq; /* FIR command sequence number for that source */
};

struct md_vsw_rx {
    bool used;
    bool started; /* something was forwarded */
    uint32_t out_ssrc;
    int cur;  /* source being forwarded, -1 none */
    int want; /* source to switch to on its next keyframe, -1 none */
    uint16_t seq_off;
    uint32_t ts_off;
    uint16_t last_seq;     /* last sequence number sent */
    uint32_t last_ts;      /* last timestamp sent */
    uint16_t first_in_seq; /* first input sequence number of the current source */
    uint32_t src_ssrc;     /* SSRC of the current source's stream */
    uint64_t last_ms;      /* when the last packet was sent */
    uint64_t forwarded;
    uint64_t switches;
};

struct md_vsw_src {
    bool used;
    bool kf_wanted; /* a receiver waits for a keyframe of this source */
    bool pli_due;
    uint64_t last_req_ms;
    uint8_t fir_seq;
    uint64_t keyframes;
};

struct md_vswitch {
    uint32_t fir_timeout_ms;
    int speaker;
    int previous;
    struct md_vsw_rx rx[MD_VSW_MAX];
    struct md_vsw_src src[MD_VSW_MAX];
};

/* fir_timeout_ms: 0 = 500. */
void md_vswitch_init(struct md_vswitch *vs, uint32_t fir_timeout_ms);

/* Adds participant id as a source and a receiver; out_ssrc is the SSRC of the video
 * stream it receives. Returns MD_OK or MD_ERR_PARAM (id out of range or in use). */
md_status_t md_vswitch_add(struct md_vswitch *vs, int id, uint32_t out_ssrc);
void md_vswitch_remove(struct md_vswitch *vs, int id);

/* The active speaker changed (from the mixer's dominant speaker). An id that was
 * not added (an audio-only participant) is ignored: the video stays on the last
 * speaker who has video. */
void md_vswitch_set_speaker(struct md_vswitch *vs, int id, uint64_t now_ms);

/* Whether a packet of src may go to receiver rx (cheap test before copying it). */
bool md_vswitch_wants(const struct md_vswitch *vs, int rx, int src);

/* Rewrites pkt (a copy for receiver rx of an RTP packet from src; len bytes, already
 * parsed as *hdr) in place: SSRC, sequence number, timestamp. keyframe says whether
 * the packet starts a keyframe (md_video_is_keyframe). Returns MD_OK when the packet
 * is to be sent, 1 when it is not for this receiver (left as is), MD_ERR_PARAM. */
int md_vswitch_forward(struct md_vswitch *vs, int rx, int src, const struct md_rtp *hdr,
                       uint8_t *pkt, bool keyframe, uint64_t now_ms);

/* Keyframe requests due at now_ms; writes at most cap of them and returns the count. */
size_t md_vswitch_poll_requests(struct md_vswitch *vs, uint64_t now_ms, struct md_kf_req *out,
                                size_t cap);

/* Whether an RTP payload starts a keyframe: VP8 (RFC 7741: start of partition 0 of
 * a key frame) or H.264 (RFC 6184: IDR or SPS NAL unit, alone, in a STAP-A, or the
 * first fragment of an FU-A). Reads only payload[0..len). */
bool md_video_is_keyframe(md_video_codec_t codec, const uint8_t *payload, size_t len);

#endif
