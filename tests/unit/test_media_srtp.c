/* SDES a=crypto lines and SRTP/SRTCP contexts on libsrtp2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "md_rtp.h"
#include "md_sdes.h"
#include "md_srtp.h"

static int setup(void **state)
{
    (void)state;
    return md_srtp_global_init() == MD_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    md_srtp_global_shutdown();
    return 0;
}

static md_status_t parse_str(const char *s, struct md_crypto *c)
{
    return md_sdes_parse(s, strlen(s), c);
}

/* ---- SDES ---------------------------------------------------------------------- */

static void sdes_parse_reads_tag_suite_key_lifetime_and_mki(void **state)
{
    (void)state;
    struct md_crypto c;
    /* the RFC 4568 section 4 example */
    const char *line = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                       "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4\r\n";
    assert_int_equal(parse_str(line, &c), MD_OK);
    assert_int_equal(c.tag, 1);
    assert_int_equal(c.suite, MD_SUITE_AES_CM_128_HMAC_SHA1_80);
    assert_int_equal(c.key_len, 30);
    /* "PS1u" = 001111 010010 110101 101110 */
    assert_memory_equal(c.key, "\x3d\x2d\x6e", 3);
    assert_true(c.lifetime == (1u << 20));
    assert_int_equal(c.mki, 1);
    assert_int_equal(c.mki_len, 4);
    assert_int_equal(c.wsh, 0);
}

static void sdes_format_then_parse_round_trips_every_suite(void **state)
{
    (void)state;
    for (unsigned s = 0; s < MD_SUITE_COUNT; s++) {
        struct md_crypto a = {.tag = 7 + s, .suite = (md_srtp_suite_t)s};
        assert_int_equal(md_crypto_keygen(&a), MD_OK);
        a.lifetime = s == 1 ? 1000000 : (s == 2 ? (uint64_t)1 << 31 : 0);
        a.mki = s;
        a.mki_len = (uint8_t)(s % 3);
        a.wsh = s == 3 ? 256 : 0;
        char line[MD_SDES_MAX_LINE];
        int n = md_sdes_format(line, sizeof line, &a);
        assert_true(n > 0);
        assert_int_equal((size_t)n, strlen(line));
        struct md_crypto b;
        assert_int_equal(md_sdes_parse(line, (size_t)n, &b), MD_OK);
        assert_int_equal(b.tag, a.tag);
        assert_int_equal(b.suite, a.suite);
        assert_int_equal(b.key_len, md_suite_key_len(a.suite) + md_suite_salt_len(a.suite));
        assert_memory_equal(b.key, a.key, a.key_len);
        assert_true(b.lifetime == a.lifetime);
        assert_int_equal(b.mki_len, a.mki_len);
        if (a.mki_len > 0)
            assert_int_equal(b.mki, a.mki);
        assert_int_equal(b.wsh, a.wsh);
        /* and again through the a= prefix */
        char full[MD_SDES_MAX_LINE + 16];
        snprintf(full, sizeof full, "a=crypto:%s\r\n", line);
        assert_int_equal(parse_str(full, &b), MD_OK);
        assert_memory_equal(b.key, a.key, a.key_len);
    }
}

static void sdes_keygen_gives_different_keys(void **state)
{
    (void)state;
    struct md_crypto a = {.suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80}, b = a;
    assert_int_equal(md_crypto_keygen(&a), MD_OK);
    assert_int_equal(md_crypto_keygen(&b), MD_OK);
    assert_int_equal(a.key_len, 30);
    assert_memory_not_equal(a.key, b.key, 30);
}

static void sdes_parse_rejects_malformed_and_unsupported_lines(void **state)
{
    (void)state;
    static const struct {
        const char *line;
        md_status_t want;
    } cases[] = {
        {"", MD_ERR_MALFORMED},
        {"a=crypto:", MD_ERR_MALFORMED},
        {"1", MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80", MD_ERR_MALFORMED},
        {"x AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
         MD_ERR_MALFORMED},
        {"1234567890 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
         MD_ERR_MALFORMED},
        {"1 AES_CM_256_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
         MD_ERR_UNSUPPORTED},
        {"1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
         MD_ERR_UNSUPPORTED},
        {"1 AES_CM_128_HMAC_SHA1_80 uri:http://x", MD_ERR_UNSUPPORTED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:", MD_ERR_MALFORMED},
        /* one byte short, bad character, bad padding */
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVA",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV!R",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR=",
         MD_ERR_MALFORMED},
        /* the GCM-128 key needs 28 bytes, not 30 */
        {"1 AEAD_AES_128_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR", MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^64",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|0",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:4|2^20",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|256:1",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:0",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:5",
         MD_ERR_UNSUPPORTED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1:",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR;"
         "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
         MD_ERR_UNSUPPORTED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR "
         "UNENCRYPTED_SRTP",
         MD_ERR_UNSUPPORTED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR WSH=10",
         MD_ERR_MALFORMED},
        {"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR WSH=",
         MD_ERR_UNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct md_crypto c;
        md_status_t got = parse_str(cases[i].line, &c);
        if (got != cases[i].want)
            fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].line, got, cases[i].want);
    }
    /* every strict prefix of a valid line is rejected or parses to a shorter line */
    const char *ok = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    struct md_crypto c;
    for (size_t n = 0; n < strlen(ok); n++)
        assert_int_not_equal(md_sdes_parse(ok, n, &c), MD_OK);
    assert_int_equal(parse_str(ok, &c), MD_OK);
}

static void sdes_format_refuses_a_small_buffer(void **state)
{
    (void)state;
    struct md_crypto a = {.tag = 1, .suite = MD_SUITE_AEAD_AES_256_GCM};
    assert_int_equal(md_crypto_keygen(&a), MD_OK);
    char buf[MD_SDES_MAX_LINE];
    int n = md_sdes_format(buf, sizeof buf, &a);
    assert_true(n > 0);
    assert_int_equal(md_sdes_format(buf, (size_t)n, &a), MD_ERR_NOSPACE);
    a.key_len = 30;
    assert_int_equal(md_sdes_format(buf, sizeof buf, &a), MD_ERR_PARAM);
}

/* ---- SRTP ---------------------------------------------------------------------- */

struct pair {
    struct md_srtp *tx;
    struct md_srtp *rx;
};

static void make_pair(struct pair *p, md_srtp_suite_t suite, uint8_t mki_len)
{
    struct md_crypto c = {.tag = 1, .suite = suite, .mki = 3, .mki_len = mki_len};
    assert_int_equal(md_crypto_keygen(&c), MD_OK);
    assert_int_equal(md_srtp_create(&p->tx, &c, MD_SRTP_OUTBOUND), MD_OK);
    assert_int_equal(md_srtp_create(&p->rx, &c, MD_SRTP_INBOUND), MD_OK);
}

static void free_pair(struct pair *p)
{
    md_srtp_free(p->tx);
    md_srtp_free(p->rx);
}

static size_t make_rtp(uint8_t *buf, uint16_t seq, size_t payload)
{
    struct md_rtp_out s = {.ssrc = 0x12345678, .seq = seq, .ts = seq * 160u, .pt = 0};
    int n = md_rtp_out_header(&s, buf, 12, false, 160, payload);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < payload; i++)
        buf[12 + i] = (uint8_t)(i * 7 + seq);
    return 12 + payload;
}

static void srtp_protect_then_unprotect_restores_the_packet_for_every_suite(void **state)
{
    (void)state;
    unsigned tested = 0;
    for (unsigned s = 0; s < MD_SUITE_COUNT; s++) {
        if (!md_srtp_suite_supported((md_srtp_suite_t)s)) {
            /* the AES-CM suites work with every libsrtp2 backend */
            assert_true(s >= MD_SUITE_AEAD_AES_128_GCM);
            continue;
        }
        for (uint8_t mki_len = 0; mki_len <= 2; mki_len += 2) {
            struct pair p;
            make_pair(&p, (md_srtp_suite_t)s, mki_len);
            for (uint16_t seq = 65530; seq != 10; seq++) { /* across the wrap */
                uint8_t orig[200], buf[200 + MD_SRTP_MAX_TRAILER];
                size_t len = make_rtp(orig, seq, 160);
                memcpy(buf, orig, len);
                assert_int_equal(md_srtp_protect(p.tx, buf, &len, sizeof buf), MD_OK);
                assert_true(len > 172);
                assert_memory_not_equal(buf + 12, orig + 12, 160); /* encrypted */
                assert_int_equal(md_srtp_unprotect(p.rx, buf, &len), MD_OK);
                assert_int_equal(len, 172);
                assert_memory_equal(buf, orig, len);
            }
            free_pair(&p);
            tested++;
        }
    }
    assert_true(tested >= 4);
}

static void srtp_tampered_packet_fails_authentication(void **state)
{
    (void)state;
    struct pair p;
    make_pair(&p, MD_SUITE_AES_CM_128_HMAC_SHA1_80, 0);
    uint8_t buf[200 + MD_SRTP_MAX_TRAILER];
    size_t len = make_rtp(buf, 1, 160);
    assert_int_equal(md_srtp_protect(p.tx, buf, &len, sizeof buf), MD_OK);
    size_t good_len = len;
    uint8_t good[sizeof buf];
    memcpy(good, buf, len);
    /* flip a payload bit, a header bit, a tag bit: each fails; the original passes */
    size_t spots[] = {20, 3, good_len - 1};
    for (size_t i = 0; i < 3; i++) {
        memcpy(buf, good, good_len);
        buf[spots[i]] ^= 0x01;
        len = good_len;
        assert_int_equal(md_srtp_unprotect(p.rx, buf, &len), MD_ERR_AUTH);
    }
    memcpy(buf, good, good_len);
    len = good_len;
    assert_int_equal(md_srtp_unprotect(p.rx, buf, &len), MD_OK);
    free_pair(&p);
}

static void srtp_replayed_packet_is_refused(void **state)
{
    (void)state;
    struct pair p;
    make_pair(&p, MD_SUITE_AES_CM_128_HMAC_SHA1_32, 0);
    uint8_t buf[200 + MD_SRTP_MAX_TRAILER], copy[sizeof buf];
    size_t len = make_rtp(buf, 100, 160);
    assert_int_equal(md_srtp_protect(p.tx, buf, &len, sizeof buf), MD_OK);
    size_t plen = len;
    memcpy(copy, buf, len);
    assert_int_equal(md_srtp_unprotect(p.rx, buf, &len), MD_OK);
    len = plen;
    assert_int_equal(md_srtp_unprotect(p.rx, copy, &len), MD_ERR_REPLAY);
    /* protecting the same index twice is refused too (keystream reuse) */
    len = make_rtp(buf, 100, 160);
    assert_int_equal(md_srtp_protect(p.tx, buf, &len, sizeof buf), MD_ERR_REPLAY);
    free_pair(&p);
}

static void srtp_refuses_a_buffer_without_room_for_the_tag(void **state)
{
    (void)state;
    struct pair p;
    make_pair(&p, MD_SUITE_AES_CM_128_HMAC_SHA1_80, 0);
    uint8_t buf[200];
    size_t len = make_rtp(buf, 1, 160);
    assert_int_equal(md_srtp_protect(p.tx, buf, &len, len + 4), MD_ERR_NOSPACE);
    assert_int_equal(len, 172);
    len = 11;
    assert_int_equal(md_srtp_protect(p.tx, buf, &len, sizeof buf), MD_ERR_TRUNCATED);
    free_pair(&p);
}

static void srtcp_round_trip_tamper_and_replay(void **state)
{
    (void)state;
    struct pair p;
    make_pair(&p, MD_SUITE_AES_CM_128_HMAC_SHA1_32, 0);
    uint8_t orig[64], buf[64 + MD_SRTP_MAX_TRAILER], copy[sizeof buf];
    int n = md_rtcp_build_rr(orig, sizeof orig, 0x12345678, NULL, 0);
    assert_true(n > 0);
    n += md_rtcp_build_pli(orig + n, sizeof orig - (size_t)n, 0x12345678, 0x9abcdef0);
    size_t len = (size_t)n;
    memcpy(buf, orig, len);
    assert_int_equal(md_srtp_protect_rtcp(p.tx, buf, &len, sizeof buf), MD_OK);
    /* RTCP keeps the 80-bit tag with the _32 suite: index (4) + tag (10) */
    assert_int_equal(len, (size_t)n + 14);
    size_t plen = len;
    memcpy(copy, buf, len);
    copy[10] ^= 0x80;
    assert_int_equal(md_srtp_unprotect_rtcp(p.rx, copy, &len), MD_ERR_AUTH);
    len = plen;
    memcpy(copy, buf, len);
    assert_int_equal(md_srtp_unprotect_rtcp(p.rx, buf, &len), MD_OK);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(buf, orig, len);
    len = plen;
    assert_int_equal(md_srtp_unprotect_rtcp(p.rx, copy, &len), MD_ERR_REPLAY);
    free_pair(&p);
}

static void srtp_wrong_key_fails_authentication(void **state)
{
    (void)state;
    struct md_crypto a = {.suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80}, b = a;
    assert_int_equal(md_crypto_keygen(&a), MD_OK);
    assert_int_equal(md_crypto_keygen(&b), MD_OK);
    struct md_srtp *tx, *rx;
    assert_int_equal(md_srtp_create(&tx, &a, MD_SRTP_OUTBOUND), MD_OK);
    assert_int_equal(md_srtp_create(&rx, &b, MD_SRTP_INBOUND), MD_OK);
    uint8_t buf[200 + MD_SRTP_MAX_TRAILER];
    size_t len = make_rtp(buf, 5, 160);
    assert_int_equal(md_srtp_protect(tx, buf, &len, sizeof buf), MD_OK);
    assert_int_equal(md_srtp_unprotect(rx, buf, &len), MD_ERR_AUTH);
    md_srtp_free(tx);
    md_srtp_free(rx);
    md_srtp_free(NULL);
    a.key_len = 29;
    assert_int_equal(md_srtp_create(&tx, &a, MD_SRTP_OUTBOUND), MD_ERR_PARAM);
    assert_null(tx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sdes_parse_reads_tag_suite_key_lifetime_and_mki),
        cmocka_unit_test(sdes_format_then_parse_round_trips_every_suite),
        cmocka_unit_test(sdes_keygen_gives_different_keys),
        cmocka_unit_test(sdes_parse_rejects_malformed_and_unsupported_lines),
        cmocka_unit_test(sdes_format_refuses_a_small_buffer),
        cmocka_unit_test(srtp_protect_then_unprotect_restores_the_packet_for_every_suite),
        cmocka_unit_test(srtp_tampered_packet_fails_authentication),
        cmocka_unit_test(srtp_replayed_packet_is_refused),
        cmocka_unit_test(srtp_refuses_a_buffer_without_room_for_the_tag),
        cmocka_unit_test(srtcp_round_trip_tamper_and_replay),
        cmocka_unit_test(srtp_wrong_key_fails_authentication),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
