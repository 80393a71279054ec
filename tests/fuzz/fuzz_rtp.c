/* Fuzz target for the RTP and RTCP parsers (md_rtp_parse, md_rtcp_next and the RTCP
 * readers), the rtcp-mux demultiplexer and the keyframe detectors.
 *
 * The input is one datagram, in a buffer of exactly its size (so ASan catches any
 * read past the end). Every successful parse is checked for consistency: views lie
 * inside the input, lengths add up, the RTCP walk advances and ends at the end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_rtp.h"
#include "md_vswitch.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(const uint8_t *buf, size_t len, const uint8_t *p, size_t n)
{
    return n == 0 || (p >= buf && p <= buf + len && n <= (size_t)(buf + len - p));
}

static void check_rtp(const uint8_t *buf, size_t len)
{
    struct md_rtp r;
    if (md_rtp_parse(buf, len, &r) != MD_OK)
        return;
    CHECK(r.header_len + r.payload_len + r.pad_len == len);
    CHECK(r.header_len == 12 + 4u * r.cc + (r.extension ? 4 + r.ext_len : 0));
    CHECK(inside(buf, len, r.payload, r.payload_len));
    CHECK(inside(buf, len, r.ext, r.ext_len));
    uint32_t x = 0;
    for (unsigned i = 0; i < r.cc; i++)
        x ^= md_rtp_csrc(&r, i);
    (void)x;
    /* rewriting a copy and parsing again keeps everything but the rewritten fields */
    uint8_t *copy = malloc(len);
    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    md_rtp_set_ssrc(copy, r.ssrc ^ 0x5a5a5a5a);
    md_rtp_set_seq(copy, (uint16_t)(r.seq + 1));
    md_rtp_set_ts(copy, r.ts + 3000);
    struct md_rtp r2;
    CHECK(md_rtp_parse(copy, len, &r2) == MD_OK);
    CHECK(r2.ssrc == (r.ssrc ^ 0x5a5a5a5a) && r2.seq == (uint16_t)(r.seq + 1));
    CHECK(r2.payload_len == r.payload_len && r2.header_len == r.header_len);
    free(copy);
    md_video_is_keyframe(MD_VIDEO_VP8, r.payload, r.payload_len);
    md_video_is_keyframe(MD_VIDEO_H264, r.payload, r.payload_len);
}

static void check_rtcp(const uint8_t *buf, size_t len)
{
    size_t off = 0, prev = 0;
    struct md_rtcp p;
    int rc;
    while ((rc = md_rtcp_next(buf, len, &off, &p)) == 1) {
        CHECK(off > prev && off <= len);
        CHECK(p.raw == buf + prev && p.raw_len == off - prev);
        CHECK(inside(buf, len, p.body, p.body_len));
        prev = off;
        if (p.type == MD_RTCP_SR || p.type == MD_RTCP_RR) {
            for (unsigned i = 0; i < p.count; i++) {
                struct md_rtcp_rblock rb;
                md_rtcp_rblock_get(&p, i, &rb);
                CHECK(inside(buf, len, p.blocks + 24 * i, 24));
            }
        } else if (p.type == MD_RTCP_SDES) {
            uint32_t ssrc;
            const uint8_t *c;
            size_t cl;
            if (md_rtcp_sdes_cname(&p, &ssrc, &c, &cl) == MD_OK)
                CHECK(inside(p.body, p.body_len, c, cl));
        } else if (p.type == MD_RTCP_BYE) {
            for (unsigned i = 0; i < p.count; i++)
                md_rtcp_bye_ssrc(&p, i);
            const uint8_t *reason;
            size_t rl;
            if (md_rtcp_bye_reason(&p, &reason, &rl) == MD_OK)
                CHECK(inside(p.body, p.body_len, reason, rl));
        } else if (p.type == MD_RTCP_RTPFB || p.type == MD_RTCP_PSFB) {
            CHECK(inside(buf, len, p.fci, p.fci_len));
            uint16_t pid, blp;
            uint32_t ssrc;
            uint8_t seq;
            if (p.type == MD_RTCP_RTPFB && p.count == MD_RTCP_FMT_NACK)
                for (size_t i = 0; i < md_rtcp_nack_count(&p); i++)
                    md_rtcp_nack_get(&p, i, &pid, &blp);
            if (p.type == MD_RTCP_PSFB && p.count == MD_RTCP_FMT_FIR)
                for (size_t i = 0; i < md_rtcp_fir_count(&p); i++)
                    md_rtcp_fir_get(&p, i, &ssrc, &seq);
        }
    }
    CHECK(rc <= 0);
    if (rc == 0)
        CHECK(off == len);
    int v = md_rtcp_validate(buf, len);
    CHECK(v != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    md_pkt_kind_t kind = md_demux(buf, size);
    CHECK(kind >= MD_PKT_UNKNOWN && kind <= MD_PKT_DTLS);
    check_rtp(buf, size);
    check_rtcp(buf, size);
    CHECK(memcmp(buf, data, size) == 0); /* the parsers never write their input */
    free(buf);
    return 0;
}
