/* RTP/RTCP parsing, rewriting and building. See md_rtp.h for the contracts.
 *
 * Every read goes through need(): a length is compared against what is left before
 * the bytes are touched, so no path reads past len. */
#include "md_rtp.h"

#include <string.h>

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

const char *md_status_str(int status)
{
    switch (status) {
    case MD_OK:
        return "ok";
    case MD_ERR_TRUNCATED:
        return "truncated";
    case MD_ERR_VERSION:
        return "bad version";
    case MD_ERR_MALFORMED:
        return "malformed";
    case MD_ERR_NOSPACE:
        return "no space";
    case MD_ERR_PARAM:
        return "bad parameter";
    case MD_ERR_UNSUPPORTED:
        return "unsupported";
    case MD_ERR_AUTH:
        return "authentication failed";
    case MD_ERR_REPLAY:
        return "replayed";
    case MD_ERR_CRYPTO:
        return "crypto error";
    case MD_ERR_CODEC:
        return "codec error";
    case MD_ERR_NOMEM:
        return "out of memory";
    case MD_ERR_FULL:
        return "table full";
    default:
        return "unknown";
    }
}

/* ---- RTP ---------------------------------------------------------------------- */

md_status_t md_rtp_parse(const uint8_t *buf, size_t len, struct md_rtp *out)
{
    if (len < MD_RTP_HDR_MIN)
        return MD_ERR_TRUNCATED;
    if ((buf[0] >> 6) != 2)
        return MD_ERR_VERSION;
    out->padding = (buf[0] & 0x20) != 0;
    out->extension = (buf[0] & 0x10) != 0;
    out->cc = buf[0] & 0x0f;
    out->marker = (buf[1] & 0x80) != 0;
    out->pt = buf[1] & 0x7f;
    out->seq = rd16(buf + 2);
    out->ts = rd32(buf + 4);
    out->ssrc = rd32(buf + 8);

    size_t off = MD_RTP_HDR_MIN;
    size_t csrc_bytes = (size_t)out->cc * 4;
    if (len - off < csrc_bytes)
        return MD_ERR_TRUNCATED;
    out->csrc = buf + off;
    off += csrc_bytes;

    out->ext_profile = 0;
    out->ext = NULL;
    out->ext_len = 0;
    if (out->extension) {
        if (len - off < 4)
            return MD_ERR_TRUNCATED;
        out->ext_profile = rd16(buf + off);
        size_t ext_bytes = (size_t)rd16(buf + off + 2) * 4;
        off += 4;
        if (len - off < ext_bytes)
            return MD_ERR_TRUNCATED;
        out->ext = buf + off;
        out->ext_len = ext_bytes;
        off += ext_bytes;
    }
    out->header_len = off;

    size_t pad = 0;
    if (out->padding) {
        /* The last octet counts itself; it must lie after the header. */
        if (len == off)
            return MD_ERR_MALFORMED;
        pad = buf[len - 1];
        if (pad == 0 || pad > len - off)
            return MD_ERR_MALFORMED;
    }
    out->pad_len = (uint8_t)pad;
    out->payload = buf + off;
    out->payload_len = len - off - pad;
    return MD_OK;
}

uint32_t md_rtp_csrc(const struct md_rtp *r, unsigned i)
{
    return i < r->cc ? rd32(r->csrc + 4 * (size_t)i) : 0;
}

int md_rtp_out_header(struct md_rtp_out *s, uint8_t *buf, size_t cap, bool marker, uint32_t ts_step,
                      size_t payload_len)
{
    if (cap < MD_RTP_HDR_MIN)
        return MD_ERR_NOSPACE;
    buf[0] = 0x80;
    buf[1] = (uint8_t)((marker ? 0x80 : 0) | (s->pt & 0x7f));
    wr16(buf + 2, s->seq);
    wr32(buf + 4, s->ts);
    wr32(buf + 8, s->ssrc);
    s->seq++;
    s->ts += ts_step;
    s->packets++;
    s->octets += (uint32_t)payload_len;
    return MD_RTP_HDR_MIN;
}

md_pkt_kind_t md_demux(const uint8_t *buf, size_t len)
{
    if (len == 0)
        return MD_PKT_UNKNOWN;
    uint8_t b0 = buf[0];
    if (b0 <= 3)
        return MD_PKT_STUN;
    if (b0 >= 20 && b0 <= 63)
        return MD_PKT_DTLS;
    if ((b0 >> 6) != 2 || len < 2)
        return MD_PKT_UNKNOWN;
    uint8_t pt = buf[1];
    if (pt >= 192 && pt <= 223)
        return len >= 8 ? MD_PKT_RTCP : MD_PKT_UNKNOWN;
    return len >= MD_RTP_HDR_MIN ? MD_PKT_RTP : MD_PKT_UNKNOWN;
}

/* ---- RTCP ---------------------------------------------------------------------- */

int md_rtcp_next(const uint8_t *buf, size_t len, size_t *off, struct md_rtcp *out)
{
    if (*off >= len)
        return 0;
    const uint8_t *p = buf + *off;
    size_t left = len - *off;
    if (left < MD_RTCP_HDR_LEN)
        return MD_ERR_TRUNCATED;
    if ((p[0] >> 6) != 2)
        return MD_ERR_VERSION;
    size_t plen = ((size_t)rd16(p + 2) + 1) * 4;
    if (plen > left)
        return MD_ERR_TRUNCATED;

    memset(out, 0, sizeof *out);
    out->padding = (p[0] & 0x20) != 0;
    out->count = p[0] & 0x1f;
    out->type = p[1];
    out->raw = p;
    out->raw_len = plen;
    size_t body_len = plen - MD_RTCP_HDR_LEN;
    if (out->padding) {
        uint8_t pad = p[plen - 1];
        if (pad == 0 || pad > body_len)
            return MD_ERR_MALFORMED;
        body_len -= pad;
    }
    out->body = p + MD_RTCP_HDR_LEN;
    out->body_len = body_len;
    const uint8_t *b = out->body;

    switch (out->type) {
    case MD_RTCP_SR:
        if (body_len < 24 || (body_len - 24) / 24 < out->count)
            return MD_ERR_MALFORMED;
        out->ssrc = rd32(b);
        out->ntp = ((uint64_t)rd32(b + 4) << 32) | rd32(b + 8);
        out->rtp_ts = rd32(b + 12);
        out->packets = rd32(b + 16);
        out->octets = rd32(b + 20);
        out->blocks = b + 24;
        break;
    case MD_RTCP_RR:
        if (body_len < 4 || (body_len - 4) / 24 < out->count)
            return MD_ERR_MALFORMED;
        out->ssrc = rd32(b);
        out->blocks = b + 4;
        break;
    case MD_RTCP_SDES:
        if (out->count > 0) {
            if (body_len < 4)
                return MD_ERR_MALFORMED;
            out->ssrc = rd32(b);
        }
        break;
    case MD_RTCP_BYE:
        if (body_len / 4 < out->count)
            return MD_ERR_MALFORMED;
        if (out->count > 0)
            out->ssrc = rd32(b);
        break;
    case MD_RTCP_APP:
        if (body_len < 8)
            return MD_ERR_MALFORMED;
        out->ssrc = rd32(b);
        break;
    case MD_RTCP_RTPFB:
    case MD_RTCP_PSFB:
        if (body_len < 8)
            return MD_ERR_MALFORMED;
        out->ssrc = rd32(b);
        out->media_ssrc = rd32(b + 4);
        out->fci = b + 8;
        out->fci_len = body_len - 8;
        if (out->type == MD_RTCP_RTPFB && out->count == MD_RTCP_FMT_NACK && out->fci_len % 4 != 0)
            return MD_ERR_MALFORMED;
        if (out->type == MD_RTCP_PSFB && out->count == MD_RTCP_FMT_FIR && out->fci_len % 8 != 0)
            return MD_ERR_MALFORMED;
        break;
    default:
        break;
    }
    *off += plen;
    return 1;
}

int md_rtcp_validate(const uint8_t *buf, size_t len)
{
    size_t off = 0;
    int n = 0, rc;
    struct md_rtcp p;
    while ((rc = md_rtcp_next(buf, len, &off, &p)) == 1) {
        if (n == 0 && p.type != MD_RTCP_SR && p.type != MD_RTCP_RR)
            return MD_ERR_MALFORMED;
        n++;
    }
    if (rc < 0)
        return rc;
    return n > 0 ? n : MD_ERR_TRUNCATED;
}

void md_rtcp_rblock_get(const struct md_rtcp *p, unsigned i, struct md_rtcp_rblock *rb)
{
    const uint8_t *b = p->blocks + 24 * (size_t)i;
    rb->ssrc = rd32(b);
    rb->fraction_lost = b[4];
    uint32_t cl = ((uint32_t)b[5] << 16) | ((uint32_t)b[6] << 8) | b[7];
    rb->cum_lost = (cl & 0x800000) ? (int32_t)cl - 0x1000000 : (int32_t)cl;
    rb->ext_high_seq = rd32(b + 8);
    rb->jitter = rd32(b + 12);
    rb->lsr = rd32(b + 16);
    rb->dlsr = rd32(b + 20);
}

void md_rtcp_nack_get(const struct md_rtcp *p, size_t i, uint16_t *pid, uint16_t *blp)
{
    *pid = rd16(p->fci + 4 * i);
    *blp = rd16(p->fci + 4 * i + 2);
}

void md_rtcp_fir_get(const struct md_rtcp *p, size_t i, uint32_t *ssrc, uint8_t *seq_nr)
{
    *ssrc = rd32(p->fci + 8 * i);
    *seq_nr = p->fci[8 * i + 4];
}

md_status_t md_rtcp_sdes_cname(const struct md_rtcp *p, uint32_t *ssrc, const uint8_t **cname,
                               size_t *cname_len)
{
    const uint8_t *b = p->body;
    size_t left = p->body_len, off = 0;
    for (unsigned c = 0; c < p->count; c++) {
        /* chunk: SSRC, items (type, len, text), terminated by a zero type and padded
         * to a 32-bit boundary */
        if (left - off < 4)
            return MD_ERR_MALFORMED;
        uint32_t chunk_ssrc = rd32(b + off);
        off += 4;
        for (;;) {
            if (off >= left)
                return MD_ERR_MALFORMED;
            uint8_t type = b[off];
            if (type == 0) {
                off = (off + 4) & ~(size_t)3; /* the null octet(s) up to the boundary */
                if (off > left)
                    return MD_ERR_MALFORMED;
                break;
            }
            if (left - off < 2 || left - off - 2 < b[off + 1])
                return MD_ERR_MALFORMED;
            size_t ilen = b[off + 1];
            if (type == MD_RTCP_SDES_CNAME) {
                *ssrc = chunk_ssrc;
                *cname = b + off + 2;
                *cname_len = ilen;
                return MD_OK;
            }
            off += 2 + ilen;
        }
    }
    return MD_ERR_UNSUPPORTED;
}

uint32_t md_rtcp_bye_ssrc(const struct md_rtcp *p, unsigned i)
{
    return i < p->count ? rd32(p->body + 4 * (size_t)i) : 0;
}

md_status_t md_rtcp_bye_reason(const struct md_rtcp *p, const uint8_t **reason, size_t *len)
{
    size_t off = 4 * (size_t)p->count;
    *reason = NULL;
    *len = 0;
    if (off >= p->body_len)
        return MD_OK;
    size_t rlen = p->body[off];
    if (rlen > p->body_len - off - 1)
        return MD_ERR_MALFORMED;
    *reason = p->body + off + 1;
    *len = rlen;
    return MD_OK;
}

/* ---- builders ------------------------------------------------------------------ */

static void rtcp_header(uint8_t *buf, uint8_t count, uint8_t type, size_t total)
{
    buf[0] = (uint8_t)(0x80 | (count & 0x1f));
    buf[1] = type;
    wr16(buf + 2, (uint16_t)(total / 4 - 1));
}

static void write_rblocks(uint8_t *b, const struct md_rtcp_rblock *rb, unsigned n)
{
    for (unsigned i = 0; i < n; i++, b += 24) {
        wr32(b, rb[i].ssrc);
        b[4] = rb[i].fraction_lost;
        uint32_t cl = (uint32_t)rb[i].cum_lost & 0xffffff;
        b[5] = (uint8_t)(cl >> 16);
        b[6] = (uint8_t)(cl >> 8);
        b[7] = (uint8_t)cl;
        wr32(b + 8, rb[i].ext_high_seq);
        wr32(b + 12, rb[i].jitter);
        wr32(b + 16, rb[i].lsr);
        wr32(b + 20, rb[i].dlsr);
    }
}

int md_rtcp_build_sr(uint8_t *buf, size_t cap, uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts,
                     uint32_t packets, uint32_t octets, const struct md_rtcp_rblock *rb,
                     unsigned n_rb)
{
    if (n_rb > 31 || (n_rb > 0 && rb == NULL))
        return MD_ERR_PARAM;
    size_t total = 28 + 24 * (size_t)n_rb;
    if (cap < total)
        return MD_ERR_NOSPACE;
    rtcp_header(buf, (uint8_t)n_rb, MD_RTCP_SR, total);
    wr32(buf + 4, ssrc);
    wr32(buf + 8, (uint32_t)(ntp >> 32));
    wr32(buf + 12, (uint32_t)ntp);
    wr32(buf + 16, rtp_ts);
    wr32(buf + 20, packets);
    wr32(buf + 24, octets);
    write_rblocks(buf + 28, rb, n_rb);
    return (int)total;
}

int md_rtcp_build_rr(uint8_t *buf, size_t cap, uint32_t ssrc, const struct md_rtcp_rblock *rb,
                     unsigned n_rb)
{
    if (n_rb > 31 || (n_rb > 0 && rb == NULL))
        return MD_ERR_PARAM;
    size_t total = 8 + 24 * (size_t)n_rb;
    if (cap < total)
        return MD_ERR_NOSPACE;
    rtcp_header(buf, (uint8_t)n_rb, MD_RTCP_RR, total);
    wr32(buf + 4, ssrc);
    write_rblocks(buf + 8, rb, n_rb);
    return (int)total;
}

int md_rtcp_build_sdes_cname(uint8_t *buf, size_t cap, uint32_t ssrc, const char *cname,
                             size_t cname_len)
{
    if (cname_len == 0 || cname_len > 255)
        return MD_ERR_PARAM;
    /* header, SSRC, type, length, text, at least one null octet, pad to 4 */
    size_t total = (4 + 4 + 2 + cname_len + 1 + 3) & ~(size_t)3;
    if (cap < total)
        return MD_ERR_NOSPACE;
    memset(buf, 0, total);
    rtcp_header(buf, 1, MD_RTCP_SDES, total);
    wr32(buf + 4, ssrc);
    buf[8] = MD_RTCP_SDES_CNAME;
    buf[9] = (uint8_t)cname_len;
    memcpy(buf + 10, cname, cname_len);
    return (int)total;
}

static int build_fb(uint8_t *buf, size_t cap, uint8_t type, uint8_t fmt, uint32_t sender,
                    uint32_t media, size_t fci_len)
{
    size_t total = 12 + fci_len;
    if (cap < total)
        return MD_ERR_NOSPACE;
    rtcp_header(buf, fmt, type, total);
    wr32(buf + 4, sender);
    wr32(buf + 8, media);
    return (int)total;
}

int md_rtcp_build_pli(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc)
{
    return build_fb(buf, cap, MD_RTCP_PSFB, MD_RTCP_FMT_PLI, sender_ssrc, media_ssrc, 0);
}

int md_rtcp_build_fir(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                      uint8_t seq_nr)
{
    /* RFC 5104 section 4.3.1: the media source field is 0, the target is in the FCI */
    int n = build_fb(buf, cap, MD_RTCP_PSFB, MD_RTCP_FMT_FIR, sender_ssrc, 0, 8);
    if (n < 0)
        return n;
    wr32(buf + 12, media_ssrc);
    buf[16] = seq_nr;
    buf[17] = buf[18] = buf[19] = 0;
    return n;
}

int md_rtcp_build_nack(uint8_t *buf, size_t cap, uint32_t sender_ssrc, uint32_t media_ssrc,
                       uint16_t pid, uint16_t blp)
{
    int n = build_fb(buf, cap, MD_RTCP_RTPFB, MD_RTCP_FMT_NACK, sender_ssrc, media_ssrc, 4);
    if (n < 0)
        return n;
    wr16(buf + 12, pid);
    wr16(buf + 14, blp);
    return n;
}

int md_rtcp_build_bye(uint8_t *buf, size_t cap, uint32_t ssrc)
{
    if (cap < 8)
        return MD_ERR_NOSPACE;
    rtcp_header(buf, 1, MD_RTCP_BYE, 8);
    wr32(buf + 4, ssrc);
    return 8;
}
