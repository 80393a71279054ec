/* Per datagram of a worker's media sessions: RTP/RTCP demultiplexing, SRTP
 * unprotect, latching, reception statistics (RFC 3550), RTCP reports and the
 * feedback (PLI, FIR, NACK) passed between a video receiver and its source. */
#include "dp_media_int.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static uint64_t ntp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t sec = (uint64_t)ts.tv_sec + 2208988800ull;
    uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000u;
    return sec << 32 | frac;
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
    dpm_tx_commit(m, s, true, &s->rem_rtcp, s->rem_len, len);
    st_add(&m->st.rtcp_out, 1);
}

/* SR (when we sent something) or RR, with a report block on what it sends us, and
 * an SDES CNAME. */
void dpm_rtcp_report(struct dp_media *m, struct leg *l, struct stream *s, uint64_t now_ms)
{
    if (!s->on || !s->rem_len)
        return;
    uint8_t *o = dpm_tx_slot(m);
    if (!o)
        return;
    size_t cap = dpm_tx_room(m);
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
void dpm_keyframe_request(struct dp_media *m, struct leg *src, md_kf_req_type_t type)
{
    struct stream *s = &src->v;
    if (!s->on || !s->rem_len || !s->rx.have)
        return;
    uint8_t *o = dpm_tx_slot(m);
    if (!o)
        return;
    size_t cap = dpm_tx_room(m);
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

bool dpm_srtp_failed(struct dp_media *m, md_status_t st)
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

static void rtp_in(struct dp_media *m, struct leg *l, struct stream *s, uint8_t *buf, size_t len,
                   const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms)
{
    if (!s->recv) {
        st_add(&m->st.drop_unexpected, 1);
        return;
    }
    if (s->secure && dpm_srtp_failed(m, md_srtp_unprotect(s->in, buf, &len)))
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
    dpm_forward_video(m, l, &h, buf, len, now_ms);
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
    uint8_t *o = dpm_tx_slot(m);
    if (!o)
        return;
    size_t cap = dpm_tx_room(m);
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
    if (s->secure && dpm_srtp_failed(m, md_srtp_unprotect_rtcp(s->in, buf, &len)))
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
                    dpm_keyframe_request(m, src,
                                         p.count == MD_RTCP_FMT_PLI ? MD_KF_PLI : MD_KF_FIR);
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
void dpm_datagram_in(struct dp_media *m, struct leg *l, int kind, uint8_t *buf, size_t len,
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
