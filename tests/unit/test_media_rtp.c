/* RTP/RTCP parsing, rewriting, building and rtcp-mux demultiplexing.
 *
 * Inputs are placed at the very end of a page followed by a PROT_NONE page, so a
 * read past len faults instead of passing silently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "md_rtp.h"

static uint8_t *guard_base;
static size_t page;

static int setup(void **state)
{
    (void)state;
    page = (size_t)sysconf(_SC_PAGESIZE);
    guard_base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard_base == MAP_FAILED)
        return -1;
    return mprotect(guard_base + page, page, PROT_NONE);
}

static int teardown(void **state)
{
    (void)state;
    munmap(guard_base, 2 * page);
    return 0;
}

/* A read-only copy of buf[0..len) that ends exactly at the guard page. */
static const uint8_t *guarded(const uint8_t *buf, size_t len)
{
    uint8_t *p = guard_base + page - len;
    mprotect(guard_base, page, PROT_READ | PROT_WRITE);
    memcpy(p, buf, len);
    mprotect(guard_base, page, PROT_READ);
    return p;
}

/* V=2 P=1 X=1 CC=2, M=1 PT=111, seq 0x1234, ts 0xdeadbeef, SSRC 0x01020304,
 * CSRCs 0xa1a2a3a4 0xb1b2b3b4, extension profile 0xbede with one word,
 * payload "hello", 3 bytes of padding. */
static const uint8_t full_pkt[] = {
    0xb2, 0xef, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04,
    0xa1, 0xa2, 0xa3, 0xa4, 0xb1, 0xb2, 0xb3, 0xb4, 0xbe, 0xde, 0x00, 0x01,
    0x10, 0xaa, 0x00, 0x00, 'h',  'e',  'l',  'l',  'o',  0x00, 0x00, 0x03,
};

static void rtp_parse_reads_every_header_field(void **state)
{
    (void)state;
    struct md_rtp r;
    const uint8_t *p = guarded(full_pkt, sizeof full_pkt);
    assert_int_equal(md_rtp_parse(p, sizeof full_pkt, &r), MD_OK);
    assert_true(r.padding);
    assert_true(r.extension);
    assert_true(r.marker);
    assert_int_equal(r.cc, 2);
    assert_int_equal(r.pt, 111);
    assert_int_equal(r.seq, 0x1234);
    assert_int_equal(r.ts, 0xdeadbeef);
    assert_int_equal(r.ssrc, 0x01020304);
    assert_int_equal(md_rtp_csrc(&r, 0), 0xa1a2a3a4);
    assert_int_equal(md_rtp_csrc(&r, 1), 0xb1b2b3b4);
    assert_int_equal(r.ext_profile, 0xbede);
    assert_int_equal(r.ext_len, 4);
    assert_ptr_equal(r.ext, p + 24);
    assert_int_equal(r.header_len, 28);
    assert_int_equal(r.pad_len, 3);
    assert_int_equal(r.payload_len, 5);
    assert_memory_equal(r.payload, "hello", 5);
}

static void rtp_parse_rejects_every_truncation_without_reading_past_the_end(void **state)
{
    (void)state;
    struct md_rtp r;
    for (size_t len = 0; len < sizeof full_pkt; len++) {
        const uint8_t *p = guarded(full_pkt, len);
        int rc = md_rtp_parse(p, len, &r);
        /* a prefix either lacks header bytes or has a padding count that is not its
           own (the last byte of a prefix is some payload byte) */
        assert_true(rc == MD_ERR_TRUNCATED || rc == MD_ERR_MALFORMED);
        if (len < 28)
            assert_int_equal(rc, MD_ERR_TRUNCATED);
    }
}

static void rtp_parse_rejects_bad_version_and_bad_padding(void **state)
{
    (void)state;
    struct md_rtp r;
    uint8_t pkt[16] = {0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 2, 3, 4};
    assert_int_equal(md_rtp_parse(guarded(pkt, 16), 16, &r), MD_OK);
    assert_int_equal(r.payload_len, 4);
    pkt[0] = 0x40;
    assert_int_equal(md_rtp_parse(guarded(pkt, 16), 16, &r), MD_ERR_VERSION);
    pkt[0] = 0xa0; /* padding with a count of 4: the whole payload is padding */
    assert_int_equal(md_rtp_parse(guarded(pkt, 16), 16, &r), MD_OK);
    assert_int_equal(r.payload_len, 0);
    pkt[15] = 5; /* more padding than bytes after the header */
    assert_int_equal(md_rtp_parse(guarded(pkt, 16), 16, &r), MD_ERR_MALFORMED);
    pkt[15] = 0;
    assert_int_equal(md_rtp_parse(guarded(pkt, 16), 16, &r), MD_ERR_MALFORMED);
    assert_int_equal(md_rtp_parse(guarded(pkt, 12), 12, &r), MD_ERR_MALFORMED);
}

static void rtp_rewriters_change_only_their_field(void **state)
{
    (void)state;
    uint8_t pkt[sizeof full_pkt];
    memcpy(pkt, full_pkt, sizeof pkt);
    md_rtp_set_ssrc(pkt, 0xcafef00d);
    md_rtp_set_seq(pkt, 0xfffe);
    md_rtp_set_ts(pkt, 90000);
    md_rtp_set_marker(pkt, false);
    md_rtp_set_pt(pkt, 96);
    struct md_rtp r;
    assert_int_equal(md_rtp_parse(pkt, sizeof pkt, &r), MD_OK);
    assert_int_equal(r.ssrc, 0xcafef00d);
    assert_int_equal(r.seq, 0xfffe);
    assert_int_equal(r.ts, 90000);
    assert_false(r.marker);
    assert_int_equal(r.pt, 96);
    assert_int_equal(r.cc, 2);
    assert_memory_equal(pkt + 12, full_pkt + 12, sizeof pkt - 12);
}

static void rtp_out_header_numbers_packets_consecutively(void **state)
{
    (void)state;
    struct md_rtp_out s = {.ssrc = 77, .seq = 65535, .ts = 4294967200u, .pt = 0};
    uint8_t buf[12];
    struct md_rtp r;
    assert_int_equal(md_rtp_out_header(&s, buf, sizeof buf, true, 160, 160), 12);
    assert_int_equal(md_rtp_parse(buf, 12, &r), MD_OK);
    assert_int_equal(r.seq, 65535);
    assert_true(r.marker);
    assert_int_equal(md_rtp_out_header(&s, buf, sizeof buf, false, 160, 160), 12);
    assert_int_equal(md_rtp_parse(buf, 12, &r), MD_OK);
    assert_int_equal(r.seq, 0);
    assert_int_equal(r.ts, (uint32_t)(4294967200u + 160));
    assert_int_equal(r.ssrc, 77);
    assert_int_equal(s.packets, 2);
    assert_int_equal(s.octets, 320);
    assert_int_equal(md_rtp_out_header(&s, buf, 11, false, 160, 160), MD_ERR_NOSPACE);
    assert_int_equal(s.seq, 1);
}

static void demux_separates_rtp_rtcp_stun_and_dtls(void **state)
{
    (void)state;
    uint8_t rtp[12] = {0x80, 0x00};
    uint8_t rtp_pt_127_marker[12] = {0x80, 0xff};
    uint8_t rtcp[8] = {0x80, 200};
    uint8_t psfb[8] = {0x81, 206};
    uint8_t stun[20] = {0x00, 0x01};
    uint8_t dtls[13] = {22, 0xfe};
    assert_int_equal(md_demux(rtp, sizeof rtp), MD_PKT_RTP);
    assert_int_equal(md_demux(rtp_pt_127_marker, sizeof rtp), MD_PKT_RTP);
    assert_int_equal(md_demux(rtcp, sizeof rtcp), MD_PKT_RTCP);
    assert_int_equal(md_demux(psfb, sizeof psfb), MD_PKT_RTCP);
    assert_int_equal(md_demux(stun, sizeof stun), MD_PKT_STUN);
    assert_int_equal(md_demux(dtls, sizeof dtls), MD_PKT_DTLS);
    assert_int_equal(md_demux(rtp, 11), MD_PKT_UNKNOWN);
    assert_int_equal(md_demux(rtp, 0), MD_PKT_UNKNOWN);
    for (unsigned pt = 192; pt <= 223; pt++) {
        uint8_t b[8] = {0x80, (uint8_t)pt};
        assert_int_equal(md_demux(guarded(b, 8), 8), MD_PKT_RTCP);
        assert_int_equal(md_demux(guarded(b, 1), 1), MD_PKT_UNKNOWN);
    }
}

/* SR with two report blocks + SDES CNAME + BYE with a reason */
static size_t build_compound(uint8_t *buf, size_t cap)
{
    struct md_rtcp_rblock rb[2] = {
        {.ssrc = 0x11111111,
         .fraction_lost = 25,
         .cum_lost = -3,
         .ext_high_seq = 70000,
         .jitter = 12,
         .lsr = 0xabcd0000,
         .dlsr = 65536},
        {.ssrc = 0x22222222, .fraction_lost = 0, .cum_lost = 8388607, .ext_high_seq = 5},
    };
    size_t n = 0;
    int w =
        md_rtcp_build_sr(buf, cap, 0xfeedface, 0x0123456789abcdefull, 160000, 1000, 160000, rb, 2);
    assert_int_equal(w, 28 + 48);
    n += (size_t)w;
    w = md_rtcp_build_sdes_cname(buf + n, cap - n, 0xfeedface, "alice@example.com", 17);
    assert_true(w > 0 && w % 4 == 0);
    n += (size_t)w;
    w = md_rtcp_build_bye(buf + n, cap - n, 0xfeedface);
    assert_int_equal(w, 8);
    n += (size_t)w;
    return n;
}

static void rtcp_compound_of_sr_sdes_bye_parses_back(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = build_compound(buf, sizeof buf);
    const uint8_t *p = guarded(buf, len);
    assert_int_equal(md_rtcp_validate(p, len), 3);

    size_t off = 0;
    struct md_rtcp pkt;
    assert_int_equal(md_rtcp_next(p, len, &off, &pkt), 1);
    assert_int_equal(pkt.type, MD_RTCP_SR);
    assert_int_equal(pkt.count, 2);
    assert_int_equal(pkt.ssrc, 0xfeedface);
    assert_true(pkt.ntp == 0x0123456789abcdefull);
    assert_int_equal(pkt.rtp_ts, 160000);
    assert_int_equal(pkt.packets, 1000);
    assert_int_equal(pkt.octets, 160000);
    struct md_rtcp_rblock rb;
    md_rtcp_rblock_get(&pkt, 0, &rb);
    assert_int_equal(rb.ssrc, 0x11111111);
    assert_int_equal(rb.fraction_lost, 25);
    assert_int_equal(rb.cum_lost, -3);
    assert_int_equal(rb.ext_high_seq, 70000);
    assert_int_equal(rb.lsr, 0xabcd0000);
    assert_int_equal(rb.dlsr, 65536);
    md_rtcp_rblock_get(&pkt, 1, &rb);
    assert_int_equal(rb.cum_lost, 8388607);

    assert_int_equal(md_rtcp_next(p, len, &off, &pkt), 1);
    assert_int_equal(pkt.type, MD_RTCP_SDES);
    uint32_t ssrc;
    const uint8_t *cname;
    size_t cname_len;
    assert_int_equal(md_rtcp_sdes_cname(&pkt, &ssrc, &cname, &cname_len), MD_OK);
    assert_int_equal(ssrc, 0xfeedface);
    assert_int_equal(cname_len, 17);
    assert_memory_equal(cname, "alice@example.com", 17);

    assert_int_equal(md_rtcp_next(p, len, &off, &pkt), 1);
    assert_int_equal(pkt.type, MD_RTCP_BYE);
    assert_int_equal(md_rtcp_bye_ssrc(&pkt, 0), 0xfeedface);
    const uint8_t *reason;
    size_t rlen;
    assert_int_equal(md_rtcp_bye_reason(&pkt, &reason, &rlen), MD_OK);
    assert_null(reason);
    assert_int_equal(md_rtcp_next(p, len, &off, &pkt), 0);
    assert_int_equal(off, len);
}

static void rtcp_every_truncation_of_a_compound_fails_without_overread(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len = build_compound(buf, sizeof buf);
    for (size_t cut = 1; cut < len; cut++) {
        const uint8_t *p = guarded(buf, cut);
        size_t off = 0;
        struct md_rtcp pkt;
        int rc;
        unsigned n = 0;
        while ((rc = md_rtcp_next(p, cut, &off, &pkt)) == 1)
            n++;
        /* a cut at a packet boundary ends cleanly after fewer packets */
        if (rc == 0)
            assert_true(n < 3 && off == cut);
        else
            assert_int_equal(rc, MD_ERR_TRUNCATED);
        assert_true(md_rtcp_validate(p, cut) < 0 || n < 3);
    }
}

static void rtcp_feedback_builders_parse_back(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct md_rtcp pkt;
    size_t off;

    int n = md_rtcp_build_pli(buf, sizeof buf, 1, 2);
    assert_int_equal(n, 12);
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(buf, 12), 12, &off, &pkt), 1);
    assert_int_equal(pkt.type, MD_RTCP_PSFB);
    assert_int_equal(pkt.count, MD_RTCP_FMT_PLI);
    assert_int_equal(pkt.ssrc, 1);
    assert_int_equal(pkt.media_ssrc, 2);
    assert_int_equal(pkt.fci_len, 0);

    n = md_rtcp_build_fir(buf, sizeof buf, 1, 0x55667788, 9);
    assert_int_equal(n, 20);
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(buf, 20), 20, &off, &pkt), 1);
    assert_int_equal(pkt.count, MD_RTCP_FMT_FIR);
    assert_int_equal(md_rtcp_fir_count(&pkt), 1);
    uint32_t target;
    uint8_t seq;
    md_rtcp_fir_get(&pkt, 0, &target, &seq);
    assert_int_equal(target, 0x55667788);
    assert_int_equal(seq, 9);

    n = md_rtcp_build_nack(buf, sizeof buf, 1, 2, 1000, 0x8001);
    assert_int_equal(n, 16);
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(buf, 16), 16, &off, &pkt), 1);
    assert_int_equal(pkt.type, MD_RTCP_RTPFB);
    assert_int_equal(md_rtcp_nack_count(&pkt), 1);
    uint16_t pid, blp;
    md_rtcp_nack_get(&pkt, 0, &pid, &blp);
    assert_int_equal(pid, 1000);
    assert_int_equal(blp, 0x8001);

    n = md_rtcp_build_rr(buf, sizeof buf, 42, NULL, 0);
    assert_int_equal(n, 8);
    assert_int_equal(md_rtcp_validate(guarded(buf, 8), 8), 1);
    assert_int_equal(md_rtcp_build_pli(buf, 11, 1, 2), MD_ERR_NOSPACE);
    assert_int_equal(md_rtcp_build_sr(buf, sizeof buf, 1, 0, 0, 0, 0, NULL, 1), MD_ERR_PARAM);
}

static void rtcp_rejects_counts_that_do_not_fit_the_length(void **state)
{
    (void)state;
    struct md_rtcp pkt;
    size_t off = 0;
    /* RR claiming one report block but only carrying the sender SSRC */
    uint8_t rr[8] = {0x81, 201, 0, 1, 0, 0, 0, 42};
    assert_int_equal(md_rtcp_next(guarded(rr, 8), 8, &off, &pkt), MD_ERR_MALFORMED);
    /* BYE claiming 3 SSRCs in one word */
    uint8_t bye[8] = {0x83, 203, 0, 1, 0, 0, 0, 42};
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(bye, 8), 8, &off, &pkt), MD_ERR_MALFORMED);
    /* length field beyond the datagram */
    uint8_t big[8] = {0x80, 201, 0, 5, 0, 0, 0, 42};
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(big, 8), 8, &off, &pkt), MD_ERR_TRUNCATED);
    /* a compound starting with a BYE is not valid */
    uint8_t bye1[8] = {0x81, 203, 0, 1, 0, 0, 0, 42};
    assert_int_equal(md_rtcp_validate(guarded(bye1, 8), 8), MD_ERR_MALFORMED);
    /* SDES chunk whose item runs past the packet */
    uint8_t sdes[12] = {0x81, 202, 0, 2, 0, 0, 0, 1, 1, 9, 'a', 'b'};
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(sdes, 12), 12, &off, &pkt), 1);
    uint32_t ssrc;
    const uint8_t *c;
    size_t cl;
    assert_int_equal(md_rtcp_sdes_cname(&pkt, &ssrc, &c, &cl), MD_ERR_MALFORMED);
    /* BYE reason length beyond the packet */
    uint8_t byer[12] = {0x81, 203, 0, 2, 0, 0, 0, 42, 9, 'x', 'y', 'z'};
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(byer, 12), 12, &off, &pkt), 1);
    const uint8_t *reason;
    size_t rlen;
    assert_int_equal(md_rtcp_bye_reason(&pkt, &reason, &rlen), MD_ERR_MALFORMED);
    byer[8] = 3;
    off = 0;
    assert_int_equal(md_rtcp_next(guarded(byer, 12), 12, &off, &pkt), 1);
    assert_int_equal(md_rtcp_bye_reason(&pkt, &reason, &rlen), MD_OK);
    assert_int_equal(rlen, 3);
    assert_memory_equal(reason, "xyz", 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rtp_parse_reads_every_header_field),
        cmocka_unit_test(rtp_parse_rejects_every_truncation_without_reading_past_the_end),
        cmocka_unit_test(rtp_parse_rejects_bad_version_and_bad_padding),
        cmocka_unit_test(rtp_rewriters_change_only_their_field),
        cmocka_unit_test(rtp_out_header_numbers_packets_consecutively),
        cmocka_unit_test(demux_separates_rtp_rtcp_stun_and_dtls),
        cmocka_unit_test(rtcp_compound_of_sr_sdes_bye_parses_back),
        cmocka_unit_test(rtcp_every_truncation_of_a_compound_fails_without_overread),
        cmocka_unit_test(rtcp_feedback_builders_parse_back),
        cmocka_unit_test(rtcp_rejects_counts_that_do_not_fit_the_length),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
