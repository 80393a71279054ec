/* SDP answers: codec choice in the offer's order, telephone-event, rejected
 * m-lines, mirrored directions, IPv4/IPv6, and the reasons given for a 488.
 * Every answer produced is checked to be valid SDP with CRLF line ends by
 * sofia-sip's parser in strict mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include "sdp_answer.h"

static const struct sdp_answer_params OURS = {
    .address = "192.0.2.10", .audio_port = 40000, .session_id = 4242, .username = "confnode"};

/* The fixed part of every answer for OURS: v=, o=, s=, c=, t= */
#define OUR_HEAD                                                                                   \
    "v=0\r\no=confnode 4242 4242 IN IP4 192.0.2.10\r\ns=confnode\r\nc=IN IP4 192.0.2.10\r\n"       \
    "t=0 0\r\n"

/* sipp's default uac offer */
static const char SIPP_OFFER[] = "v=0\r\n"
                                 "o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n"
                                 "s=-\r\n"
                                 "c=IN IP4 127.0.1.1\r\n"
                                 "t=0 0\r\n"
                                 "m=audio 6000 RTP/AVP 0\r\n"
                                 "a=rtpmap:0 PCMU/8000\r\n";

#define OFFER_HEAD "v=0\r\no=- 7 7 IN IP4 198.51.100.4\r\ns=-\r\nc=IN IP4 198.51.100.4\r\nt=0 0\r\n"

/* Every line ends in CRLF, there is no bare CR or LF, and sofia-sip's strict
 * parser accepts the whole answer. */
static void assert_valid_sdp(const char *sdp, size_t len)
{
    assert_true(len >= 2 && sdp[len - 2] == '\r' && sdp[len - 1] == '\n');
    for (size_t i = 0; i < len; i++) {
        if (sdp[i] == '\r')
            assert_true(i + 1 < len && sdp[i + 1] == '\n');
        if (sdp[i] == '\n')
            assert_true(i > 0 && sdp[i - 1] == '\r');
    }
    su_home_t home[1];
    su_home_init(home);
    sdp_parser_t *p = sdp_parse(home, sdp, (issize_t)len, sdp_f_strict);
    if (!sdp_session(p))
        fail_msg("answer is not valid SDP: %s\n%.*s", sdp_parsing_error(p), (int)len, sdp);
    sdp_parser_free(p);
    su_home_deinit(home);
}

/* Builds the answer with OURS (or `params`) and checks it against `want`. */
static void expect_answer(const char *offer, const struct sdp_answer_params *params,
                          const char *want)
{
    char out[4096], why[200] = "unset";
    ssize_t n = sdp_answer_build(offer, strlen(offer), params ? params : &OURS, out, sizeof out,
                                 why, sizeof why);
    if (n < 0)
        fail_msg("no answer: %s", why);
    assert_string_equal(why, "");
    assert_valid_sdp(out, (size_t)n);
    if ((size_t)n != strlen(want) || memcmp(out, want, (size_t)n) != 0)
        fail_msg("answer\n%.*s\nexpected\n%s", (int)n, out, want);
    assert_int_equal(out[n], '\0');
}

static void expect_refusal(const char *offer, size_t len, const char *want_why)
{
    char out[4096], why[200] = "";
    memset(out, 'x', sizeof out);
    assert_int_equal(sdp_answer_build(offer, len, &OURS, out, sizeof out, why, sizeof why), -1);
    assert_string_equal(why, want_why);
}

/* ---- codecs ------------------------------------------------------------------------ */

static void sipp_default_offer_gets_pcmu(void **state)
{
    (void)state;
    expect_answer(SIPP_OFFER, NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
}

static void a_pcma_only_offer_without_rtpmap_gets_pcma(void **state)
{
    (void)state;
    expect_answer(OFFER_HEAD "m=audio 6000 RTP/AVP 8\r\n", NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
}

static void telephone_event_is_answered_with_the_offers_payload_type(void **state)
{
    (void)state;
    expect_answer(OFFER_HEAD "m=audio 6000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                             "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
                  NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
    /* PCMA too, and only the 8 kHz telephone-event of two */
    expect_answer(OFFER_HEAD "m=audio 6000 RTP/AVP 96 8 97\r\n"
                             "a=rtpmap:96 telephone-event/16000\r\n"
                             "a=rtpmap:97 telephone-event/8000\r\n",
                  NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 8 97\r\na=rtpmap:8 PCMA/8000\r\n"
                           "a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-15\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
}

static void the_offers_order_of_preference_picks_the_codec(void **state)
{
    (void)state;
    expect_answer(OFFER_HEAD "m=audio 6000 RTP/AVP 18 8 0\r\n", NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
    expect_answer(OFFER_HEAD "m=audio 6000 RTP/AVP 0 8\r\n", NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
}

static void no_common_codec_lists_the_offered_payload_types(void **state)
{
    (void)state;
    const char *g729 = OFFER_HEAD "m=audio 6000 RTP/AVP 18 97\r\na=rtpmap:18 G729/8000\r\n"
                                  "a=rtpmap:97 iLBC/8000\r\n";
    expect_refusal(g729, strlen(g729), "No common audio codec (offered: 18 97)");
    /* a static payload type mapped to another codec is not that codec */
    const char *remapped = OFFER_HEAD "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 G729/8000\r\n";
    expect_refusal(remapped, strlen(remapped), "No common audio codec (offered: 0)");
    const char *wideband = OFFER_HEAD "m=audio 6000 RTP/AVP 8\r\na=rtpmap:8 PCMA/16000\r\n";
    expect_refusal(wideband, strlen(wideband), "No common audio codec (offered: 8)");
}

/* ---- m-lines ----------------------------------------------------------------------- */

static void video_is_rejected_with_port_zero_in_its_place(void **state)
{
    (void)state;
    expect_answer(OFFER_HEAD "m=video 6002 RTP/AVP 96 97\r\na=rtpmap:96 H264/90000\r\n"
                             "a=rtpmap:97 VP8/90000\r\n"
                             "m=audio 6000 RTP/AVP 0 8\r\n"
                             "m=application 6004 TCP/BFCP *\r\n",
                  NULL,
                  OUR_HEAD "m=video 0 RTP/AVP 96 97\r\n"
                           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n"
                           "m=application 0 TCP/BFCP *\r\n");
}

static void only_the_first_usable_audio_line_is_taken(void **state)
{
    (void)state;
    /* a disabled line, a line without our codecs, the one we take, one more */
    expect_answer(OFFER_HEAD "m=audio 0 RTP/AVP 0\r\n"
                             "m=audio 6000 RTP/AVP 9\r\n"
                             "m=audio 6002 RTP/AVP 8\r\n"
                             "m=audio 6004 RTP/AVP 0\r\n",
                  NULL,
                  OUR_HEAD "m=audio 0 RTP/AVP 0\r\n"
                           "m=audio 0 RTP/AVP 9\r\n"
                           "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n"
                           "m=audio 0 RTP/AVP 0\r\n");
}

static void secure_rtp_is_rejected(void **state)
{
    (void)state;
    const char *savp = OFFER_HEAD "m=audio 6000 RTP/SAVP 0\r\n"
                                  "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                                  "inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32\r\n";
    expect_refusal(savp, strlen(savp), "Secure RTP (RTP/SAVP) not offered in a form we accept");
    const char *savpf = OFFER_HEAD "m=audio 6000 UDP/TLS/RTP/SAVPF 0\r\n";
    expect_refusal(savpf, strlen(savpf), "Secure RTP (RTP/SAVP) not offered in a form we accept");
    /* offered next to plain RTP, the plain one is taken */
    expect_answer(OFFER_HEAD "m=audio 6000 RTP/SAVP 0\r\nm=audio 6002 RTP/AVP 0\r\n", NULL,
                  OUR_HEAD "m=audio 0 RTP/SAVP 0\r\n"
                           "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
}

static void offers_without_plain_audio_say_so(void **state)
{
    (void)state;
    const char *video = OFFER_HEAD "m=video 6002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    expect_refusal(video, strlen(video), "No audio stream in offer");
    const char *none = OFFER_HEAD;
    expect_refusal(none, strlen(none), "No audio stream in offer");
    const char *avpf = OFFER_HEAD "m=audio 6000 RTP/AVPF 0\r\n";
    expect_refusal(avpf, strlen(avpf), "No RTP/AVP audio stream in offer");
}

/* ---- directions -------------------------------------------------------------------- */

static void the_direction_is_mirrored(void **state)
{
    (void)state;
    static const struct {
        const char *session_attr, *media_attr, *conn, *want;
    } cases[] = {
        {"", "", "198.51.100.4", "sendrecv"},
        {"", "a=sendrecv\r\n", "198.51.100.4", "sendrecv"},
        {"", "a=sendonly\r\n", "198.51.100.4", "recvonly"},
        {"", "a=recvonly\r\n", "198.51.100.4", "sendonly"},
        {"", "a=inactive\r\n", "198.51.100.4", "inactive"},
        {"a=sendonly\r\n", "", "198.51.100.4", "recvonly"},
        {"a=sendonly\r\n", "a=sendrecv\r\n", "198.51.100.4", "sendrecv"},
        /* RFC 2543 hold: the offerer receives nothing */
        {"", "", "0.0.0.0", "recvonly"},
        {"", "a=recvonly\r\n", "0.0.0.0", "inactive"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char offer[512], want[512];
        snprintf(offer, sizeof offer,
                 "v=0\r\no=- 7 7 IN IP4 198.51.100.4\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n%s"
                 "m=audio 6000 RTP/AVP 0\r\n%s",
                 cases[i].conn, cases[i].session_attr, cases[i].media_attr);
        snprintf(want, sizeof want,
                 OUR_HEAD "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                          "a=ptime:20\r\na=%s\r\n",
                 cases[i].want);
        expect_answer(offer, NULL, want);
    }
}

/* ---- addresses --------------------------------------------------------------------- */

static void an_ipv6_media_address_gives_ip6_lines(void **state)
{
    (void)state;
    struct sdp_answer_params v6 = OURS;
    v6.address = "2001:db8::10";
    v6.audio_port = 50002;
    v6.session_id = UINT64_MAX;
    expect_answer(SIPP_OFFER, &v6,
                  "v=0\r\no=confnode 18446744073709551615 18446744073709551615 IN IP6 "
                  "2001:db8::10\r\ns=confnode\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\n"
                  "m=audio 50002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                  "a=ptime:20\r\na=sendrecv\r\n");
    /* an IPv6 offer answered from IPv4 */
    expect_answer("v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\n"
                  "t=0 0\r\nm=audio 6000 RTP/AVP 8\r\n",
                  NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n");
}

static void bad_parameters_are_refused(void **state)
{
    (void)state;
    char out[1024], why[200];
    struct sdp_answer_params p = OURS;
    p.address = "not an address";
    assert_int_equal(
        sdp_answer_build(SIPP_OFFER, strlen(SIPP_OFFER), &p, out, sizeof out, why, sizeof why), -1);
    assert_string_equal(why, "Bad local media address or port");
    p = OURS;
    p.audio_port = 0;
    assert_int_equal(
        sdp_answer_build(SIPP_OFFER, strlen(SIPP_OFFER), &p, out, sizeof out, why, sizeof why), -1);
    p = OURS;
    p.username = "two words";
    assert_int_equal(
        sdp_answer_build(SIPP_OFFER, strlen(SIPP_OFFER), &p, out, sizeof out, why, sizeof why), -1);
    assert_string_equal(why, "Bad o= username");
    assert_int_equal(
        sdp_answer_build(SIPP_OFFER, strlen(SIPP_OFFER), NULL, out, sizeof out, why, sizeof why),
        -1);
    /* no username: "-" */
    p = OURS;
    p.username = NULL;
    ssize_t n = sdp_answer_build(SIPP_OFFER, strlen(SIPP_OFFER), &p, out, sizeof out, NULL, 0);
    assert_true(n > 0);
    assert_non_null(strstr(out, "\r\no=- 4242 4242 IN IP4 192.0.2.10\r\n"));
}

/* ---- bad offers -------------------------------------------------------------------- */

static void garbage_is_a_parse_error_without_quotes(void **state)
{
    (void)state;
    expect_refusal("hello", 5, "SDP parse error: bad SDP message");
    expect_refusal("", 0, "SDP parse error: empty offer");
    expect_refusal(NULL, 10, "SDP parse error: empty offer");
    const char *badline = "v=0\r\nq=\"quoted\"\r\n";
    expect_refusal(badline, strlen(badline), "SDP parse error: unknown field 'q='quoted''");
    const char *noc = "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n";
    expect_refusal(noc, strlen(noc),
                   "SDP parse error: No c= on either session level or all mediums");
    char nul[sizeof SIPP_OFFER];
    memcpy(nul, SIPP_OFFER, sizeof nul);
    nul[10] = '\0';
    expect_refusal(nul, sizeof nul - 1, "SDP parse error: NUL byte in offer");

    uint64_t x = 0x2545f4914f6cdd1dull;
    char buf[800], out[2048], why[200];
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + (size_t)(x % sizeof buf);
        /* half the rounds start as SDP and go wrong later */
        size_t start = round % 2 ? 0 : strlen(OFFER_HEAD);
        if (start > n)
            start = n;
        memcpy(buf, OFFER_HEAD, start);
        for (size_t i = start; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (char)x;
        }
        why[0] = '\0';
        ssize_t r = sdp_answer_build(buf, n, &OURS, out, sizeof out, why, sizeof why);
        if (r < 0) {
            assert_true(why[0] != '\0');
            for (const char *c = why; *c; c++)
                assert_true(*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\');
        } else {
            assert_valid_sdp(out, (size_t)r);
        }
    }
}

static void malformed_m_lines_are_refused_before_parsing(void **state)
{
    (void)state;
    /* sofia-sip would allocate without end on the first two and the tabs */
    static const char *lines[] = {
        "m=application 6004 TCP/BFCP \"\r\n",
        "m=audio 60/00 RTP/AVP 0 //x\r\n",
        "m=audio 6000 /RTP/AVP 0\r\n",
        "m=audio 6000 RTP//AVP 0\r\n",
        "m=audio 6tcp 0\r\n",
        "m=audio 6000 RTP/AVP 0 \x01\r\n",
        "m=audio 6000 RTP/A\t\t\r\n",
        "m=audio 6000\tRTP/AVP 0\r\n",
        "  m=audio 6000 RTP/AVP 0\r\nm=video 1 RTP/AVP @\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char offer[512];
        int n = snprintf(offer, sizeof offer, OFFER_HEAD "%s", lines[i]);
        expect_refusal(offer, (size_t)n, "SDP parse error: malformed m= line");
    }
    /* a port count and any number of '/' inside the proto are fine */
    expect_answer(OFFER_HEAD "m=audio 6000/2 RTP/AVP 0\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n", NULL,
                  OUR_HEAD "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
                           "a=ptime:20\r\na=sendrecv\r\n"
                           "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n");
}

static void an_answer_that_does_not_fit_returns_minus_one(void **state)
{
    (void)state;
    const char *offer = OFFER_HEAD "m=video 6002 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 8 101\r\n"
                                   "a=rtpmap:101 telephone-event/8000\r\n";
    char full[2048], out[2048], why[200];
    ssize_t need = sdp_answer_build(offer, strlen(offer), &OURS, full, sizeof full, NULL, 0);
    assert_true(need > 0);
    for (size_t cap = 0; cap <= (size_t)need; cap++) {
        assert_int_equal(sdp_answer_build(offer, strlen(offer), &OURS, out, cap, why, sizeof why),
                         -1);
        assert_string_equal(why, "SDP answer does not fit");
    }
    assert_int_equal(sdp_answer_build(offer, strlen(offer), &OURS, out, (size_t)need + 1, NULL, 0),
                     need);
    assert_memory_equal(out, full, (size_t)need + 1);
}

static void an_oversized_offer_is_refused(void **state)
{
    (void)state;
    size_t n = 65537;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    expect_refusal(big, n, "SDP offer too large");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sipp_default_offer_gets_pcmu),
        cmocka_unit_test(a_pcma_only_offer_without_rtpmap_gets_pcma),
        cmocka_unit_test(telephone_event_is_answered_with_the_offers_payload_type),
        cmocka_unit_test(the_offers_order_of_preference_picks_the_codec),
        cmocka_unit_test(no_common_codec_lists_the_offered_payload_types),
        cmocka_unit_test(video_is_rejected_with_port_zero_in_its_place),
        cmocka_unit_test(only_the_first_usable_audio_line_is_taken),
        cmocka_unit_test(secure_rtp_is_rejected),
        cmocka_unit_test(offers_without_plain_audio_say_so),
        cmocka_unit_test(the_direction_is_mirrored),
        cmocka_unit_test(an_ipv6_media_address_gives_ip6_lines),
        cmocka_unit_test(bad_parameters_are_refused),
        cmocka_unit_test(garbage_is_a_parse_error_without_quotes),
        cmocka_unit_test(malformed_m_lines_are_refused_before_parsing),
        cmocka_unit_test(an_answer_that_does_not_fit_returns_minus_one),
        cmocka_unit_test(an_oversized_offer_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
