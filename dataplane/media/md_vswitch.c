/* Active-speaker video switching. See md_vswitch.h. */
#include "md_vswitch.h"

#include <string.h>

/* How far behind the newest packet an older one of the same source is still
 * forwarded (reordering), and never before the keyframe that started it. */
#define REORDER_WINDOW 512
/* A jump forward larger than this is a restarted stream, not loss. */
#define MAX_JUMP 3000

static bool valid(int id)
{
    return id >= 0 && id < MD_VSW_MAX;
}

void md_vswitch_init(struct md_vswitch *vs, uint32_t fir_timeout_ms)
{
    memset(vs, 0, sizeof *vs);
    vs->fir_timeout_ms = fir_timeout_ms ? fir_timeout_ms : 500;
    vs->speaker = -1;
    vs->previous = -1;
}

/* The source receiver r should see: the speaker, or the previous one while r speaks. */
static int target_of(const struct md_vswitch *vs, int r)
{
    int t = vs->speaker != r ? vs->speaker : vs->previous;
    if (t == r || !valid(t) || !vs->src[t].used)
        return -1;
    return t;
}

static void retarget(struct md_vswitch *vs, int r)
{
    struct md_vsw_rx *rx = &vs->rx[r];
    int t = target_of(vs, r);
    if (t < 0 || t == rx->cur) {
        rx->want = -1;
        return;
    }
    if (rx->want != t) {
        rx->want = t;
        vs->src[t].kf_wanted = true;
        vs->src[t].pli_due = true;
    }
}

md_status_t md_vswitch_add(struct md_vswitch *vs, int id, uint32_t out_ssrc)
{
    if (!valid(id) || vs->rx[id].used)
        return MD_ERR_PARAM;
    memset(&vs->rx[id], 0, sizeof vs->rx[id]);
    memset(&vs->src[id], 0, sizeof vs->src[id]);
    vs->rx[id].used = true;
    vs->rx[id].out_ssrc = out_ssrc;
    vs->rx[id].cur = -1;
    vs->rx[id].want = -1;
    vs->src[id].used = true;
    retarget(vs, id);
    return MD_OK;
}

void md_vswitch_remove(struct md_vswitch *vs, int id)
{
    if (!valid(id) || !vs->rx[id].used)
        return;
    vs->rx[id].used = false;
    vs->src[id].used = false;
    if (vs->speaker == id)
        vs->speaker = -1;
    if (vs->previous == id)
        vs->previous = -1;
    for (int r = 0; r < MD_VSW_MAX; r++) {
        if (!vs->rx[r].used)
            continue;
        if (vs->rx[r].cur == id)
            vs->rx[r].cur = -1;
        if (vs->rx[r].want == id)
            vs->rx[r].want = -1;
        retarget(vs, r);
    }
}

void md_vswitch_set_speaker(struct md_vswitch *vs, int id, uint64_t now_ms)
{
    (void)now_ms;
    if (id == vs->speaker || !valid(id) || !vs->src[id].used)
        return;
    vs->previous = vs->speaker;
    vs->speaker = id;
    for (int r = 0; r < MD_VSW_MAX; r++) {
        if (vs->rx[r].used)
            retarget(vs, r);
    }
}

bool md_vswitch_wants(const struct md_vswitch *vs, int rx, int src)
{
    if (!valid(rx) || !valid(src) || !vs->rx[rx].used)
        return false;
    return vs->rx[rx].cur == src || vs->rx[rx].want == src;
}

/* Chooses the offsets so that this packet follows the last one the receiver got:
 * sequence + 1, timestamp + the time elapsed at 90 kHz (at least one frame). */
static void anchor(struct md_vsw_rx *rx, const struct md_rtp *hdr, uint64_t now_ms)
{
    if (rx->started) {
        uint64_t elapsed = now_ms > rx->last_ms ? now_ms - rx->last_ms : 0;
        uint32_t step = elapsed * MD_VSW_CLOCK_KHZ > MD_VSW_MIN_TS_STEP
                            ? (uint32_t)(elapsed * MD_VSW_CLOCK_KHZ)
                            : MD_VSW_MIN_TS_STEP;
        rx->seq_off = (uint16_t)(rx->last_seq + 1u - hdr->seq);
        rx->ts_off = rx->last_ts + step - hdr->ts;
        /* makes the anchoring packet the newest sent */
        rx->last_seq = (uint16_t)(hdr->seq + rx->seq_off - 1u);
    } else {
        rx->seq_off = 0;
        rx->ts_off = 0;
        rx->last_seq = (uint16_t)(hdr->seq - 1u);
    }
    rx->first_in_seq = hdr->seq;
    rx->src_ssrc = hdr->ssrc;
}

int md_vswitch_forward(struct md_vswitch *vs, int r, int s, const struct md_rtp *hdr, uint8_t *pkt,
                       bool keyframe, uint64_t now_ms)
{
    if (!valid(r) || !valid(s) || !vs->rx[r].used || !vs->src[s].used)
        return MD_ERR_PARAM;
    struct md_vsw_rx *rx = &vs->rx[r];

    if (s == rx->want && keyframe) {
        /* the switch */
        anchor(rx, hdr, now_ms);
        rx->cur = s;
        rx->want = -1;
        rx->switches++;
        vs->src[s].keyframes++;
    }
    if (s != rx->cur)
        return 1;

    /* highest input sequence so far is last_seq - seq_off */
    uint16_t hi_in = (uint16_t)(rx->last_seq - rx->seq_off);
    int d = md_seq_diff(hdr->seq, hi_in);
    if (hdr->ssrc != rx->src_ssrc || d > MAX_JUMP || d < -REORDER_WINDOW) {
        /* the source restarted its stream (new SSRC or numbering): keep ours going */
        anchor(rx, hdr, now_ms);
    } else if (d < 0) {
        /* a reordered older packet, but none from before the switch */
        if (-d > md_seq_diff(hi_in, rx->first_in_seq))
            return 1;
    }

    uint16_t out_seq = (uint16_t)(hdr->seq + rx->seq_off);
    uint32_t out_ts = hdr->ts + rx->ts_off;
    md_rtp_set_ssrc(pkt, rx->out_ssrc);
    md_rtp_set_seq(pkt, out_seq);
    md_rtp_set_ts(pkt, out_ts);
    /* the first packet after a switch is newer than the last sent by construction */
    if (!rx->started || md_seq_diff(out_seq, rx->last_seq) > 0) {
        rx->last_seq = out_seq;
        rx->last_ts = out_ts;
    }
    rx->started = true;
    rx->last_ms = now_ms;
    rx->forwarded++;
    return MD_OK;
}

size_t md_vswitch_poll_requests(struct md_vswitch *vs, uint64_t now_ms, struct md_kf_req *out,
                                size_t cap)
{
    size_t n = 0;
    for (int s = 0; s < MD_VSW_MAX && n < cap; s++) {
        struct md_vsw_src *src = &vs->src[s];
        if (!src->used || !src->kf_wanted)
            continue;
        bool waiting = false;
        for (int r = 0; r < MD_VSW_MAX && !waiting; r++)
            waiting = vs->rx[r].used && vs->rx[r].want == s;
        if (!waiting) {
            src->kf_wanted = false;
            src->pli_due = false;
            continue;
        }
        if (src->pli_due) {
            src->pli_due = false;
            src->last_req_ms = now_ms;
            out[n++] = (struct md_kf_req){.src = s, .type = MD_KF_PLI, .fir_seq = 0};
        } else if (now_ms - src->last_req_ms >= vs->fir_timeout_ms) {
            src->last_req_ms = now_ms;
            src->fir_seq++;
            out[n++] = (struct md_kf_req){.src = s, .type = MD_KF_FIR, .fir_seq = src->fir_seq};
        }
    }
    return n;
}

static bool h264_nal_is_key(uint8_t nal)
{
    uint8_t t = nal & 0x1f;
    return t == 5 || t == 7;
}

bool md_video_is_keyframe(md_video_codec_t codec, const uint8_t *p, size_t len)
{
    if (len == 0)
        return false;
    if (codec == MD_VIDEO_VP8) {
        size_t off = 1;
        bool start = (p[0] & 0x10) != 0;
        unsigned pid = p[0] & 0x07;
        if (p[0] & 0x80) { /* X: extension byte */
            if (len < 2)
                return false;
            uint8_t x = p[1];
            off = 2;
            if (x & 0x80) { /* I: picture id, 7 or 15 bits */
                if (len <= off)
                    return false;
                off += (p[off] & 0x80) ? 2 : 1;
            }
            if (x & 0x40) /* L: TL0PICIDX */
                off++;
            if (x & 0x30) /* T or K: TID/KEYIDX byte */
                off++;
        }
        if (!start || pid != 0 || len <= off)
            return false;
        return (p[off] & 0x01) == 0; /* P bit clear: key frame */
    }
    if (codec == MD_VIDEO_H264) {
        uint8_t type = p[0] & 0x1f;
        if (type >= 1 && type <= 23)
            return h264_nal_is_key(p[0]);
        if (type == 24) { /* STAP-A: (16-bit size, NAL unit)* */
            size_t off = 1;
            while (len - off >= 3) {
                size_t sz = ((size_t)p[off] << 8) | p[off + 1];
                if (sz == 0 || sz > len - off - 2)
                    return false;
                if (h264_nal_is_key(p[off + 2]))
                    return true;
                off += 2 + sz;
            }
            return false;
        }
        if (type == 28) /* FU-A: start bit and the fragmented NAL type */
            return len >= 2 && (p[1] & 0x80) && h264_nal_is_key(p[1]);
        return false;
    }
    return false;
}
