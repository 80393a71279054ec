/* sdp_negotiate(): what the node's media session is opened from and what the answer
 * says, under each SRTP policy, with Opus, video passthrough, rtcp-mux and hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sdp_answer.h"

struct seen {
    int calls;
    struct sdp_plan plan;
    char crypto0[SDP_CRYPTO_MAX];
    int rc;
};

static int accept_cb(void *arg, struct sdp_plan *plan, char *why, size_t whylen)
{
    struct seen *s = arg;
    s->calls++;
    s->plan = *plan;
    if (plan->audio.n_crypto)
        snprintf(s->crypto0, sizeof s->crypto0, "%.*s", (int)plan->audio.crypto_len[0],
                 plan->audio.crypto[0]);
    if (s->rc) {
        snprintf(why, whylen, "no keys for you");
        return s->rc;
    }
    plan->audio.local_port = 40000;
    plan->video.local_port = plan->video.accepted ? 40002 : 0;
    snprintf(plan->audio.crypto_answer, sizeof plan->audio.crypto_answer,
             "1 AES_CM_128_HMAC_SHA1_80 inline:OURKEYOURKEYOURKEYOURKEYOURKEYOURKEYOURKE");
    snprintf(plan->video.crypto_answer, sizeof plan->video.crypto_answer,
             "2 AES_CM_128_HMAC_SHA1_80 inline:VIDKEYVIDKEYVIDKEYVIDKEYVIDKEYVIDKEYVIDKE");
    return 0;
}

static const struct sdp_answer_params P = {
    .address = "192.0.2.10", .session_id = 7, .username = "confnode"};

static ssize_t negotiate(const char *offer, int policy, struct seen *s, char *out, size_t cap,
                         char *why)
{
    struct sdp_options opt = {
        .srtp = policy, .opus = true, .video = true, .avpf = true, .rtcp_mux = true};
    return sdp_negotiate(offer, strlen(offer), &P, &opt, accept_cb, s, NULL, out, cap, why, 200);
}

#define HEAD "v=0\r\no=a 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
#define CRYPTO                                                                                     \
    "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj\r\n"

static void a_secure_offer_hands_its_keys_over_and_answers_ours(void **state)
{
    (void)state;
    static const char offer[] = HEAD "m=audio 5004 RTP/SAVP 0 101\r\na=rtpmap:101 "
                                     "telephone-event/8000\r\n" CRYPTO "a=rtcp-mux\r\n";
    struct seen s = {0};
    char out[4096], why[200];
    assert_true(negotiate(offer, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_int_equal(s.calls, 1);
    assert_true(s.plan.audio.secure);
    assert_true(s.plan.audio.rtcp_mux);
    assert_int_equal(s.plan.audio.codec, SDP_CODEC_PCMU);
    assert_int_equal(s.plan.audio.te_pt, 101);
    assert_string_equal(s.plan.audio.remote_addr, "198.51.100.7");
    assert_int_equal(s.plan.audio.remote_port, 5004);
    assert_string_equal(
        s.crypto0, "1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj");
    assert_non_null(strstr(out, "m=audio 40000 RTP/SAVP 0 101\r\n"));
    assert_non_null(strstr(out, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:OURKEY"));
    assert_non_null(strstr(out, "a=rtcp-mux\r\n"));
    assert_non_null(strstr(out, "c=IN IP4 192.0.2.10\r\n"));
}

static void srtp_required_refuses_plain_and_srtp_off_refuses_secure(void **state)
{
    (void)state;
    static const char plain[] = HEAD "m=audio 5004 RTP/AVP 0\r\n";
    static const char secure[] = HEAD "m=audio 5004 RTP/SAVP 0\r\n" CRYPTO;
    struct seen s = {0};
    char out[4096], why[200];
    assert_int_equal(negotiate(plain, SDP_SRTP_REQUIRED, &s, out, sizeof out, why), SDP_REFUSED);
    assert_string_equal(why, "SRTP required: offer RTP/SAVP with a=crypto");
    assert_int_equal(negotiate(secure, SDP_SRTP_OFF, &s, out, sizeof out, why), SDP_REFUSED);
    assert_non_null(strstr(why, "Secure RTP"));
    assert_int_equal(s.calls, 0);
    assert_true(negotiate(plain, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_false(s.plan.audio.secure);
    assert_null(strstr(out, "a=crypto"));
}

static void optional_prefers_the_secure_line_of_a_best_effort_offer(void **state)
{
    (void)state;
    static const char offer[] = HEAD "m=audio 5004 RTP/AVP 0\r\nm=audio 5006 RTP/SAVP 0\r\n" CRYPTO;
    struct seen s = {0};
    char out[4096], why[200];
    assert_true(negotiate(offer, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_true(s.plan.audio.secure);
    assert_int_equal(s.plan.audio.index, 1);
    assert_non_null(strstr(out, "m=audio 0 RTP/AVP 0\r\nm=audio 40000 RTP/SAVP 0\r\n"));
}

static void a_savp_line_without_keys_says_dtls_is_not_supported(void **state)
{
    (void)state;
    static const char offer[] = HEAD "m=audio 5004 RTP/SAVP 0\r\n";
    struct seen s = {0};
    char out[4096], why[200];
    assert_int_equal(negotiate(offer, SDP_SRTP_REQUIRED, &s, out, sizeof out, why), SDP_REFUSED);
    assert_non_null(strstr(why, "DTLS-SRTP"));
}

static void opus_is_taken_in_the_offers_order_and_answered_narrowband(void **state)
{
    (void)state;
    static const char offer[] =
        HEAD "m=audio 5004 RTP/AVP 111 0 101\r\na=rtpmap:111 opus/48000/2\r\n"
             "a=rtpmap:101 telephone-event/48000\r\n";
    struct seen s = {0};
    char out[4096], why[200];
    assert_true(negotiate(offer, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_int_equal(s.plan.audio.codec, SDP_CODEC_OPUS);
    assert_int_equal(s.plan.audio.pt, 111);
    assert_int_equal(s.plan.audio.te_pt, 101);
    assert_non_null(strstr(out, "a=rtpmap:111 opus/48000/2\r\n"));
    assert_non_null(strstr(out, "a=fmtp:111 maxplaybackrate=8000"));
    assert_non_null(strstr(out, "a=rtpmap:101 telephone-event/48000\r\n"));
}

static void video_is_passed_through_with_its_fmtp_and_feedback(void **state)
{
    (void)state;
    static const char offer[] =
        HEAD "m=audio 5004 RTP/AVP 0\r\n"
             "m=video 5006 RTP/AVPF 97 98\r\na=rtpmap:97 H264/90000\r\n"
             "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\na=rtpmap:98 VP8/90000\r\n"
             "a=rtcp-fb:* nack\r\na=rtcp-fb:97 nack pli\r\na=rtcp-fb:97 ccm fir\r\n"
             "a=rtcp-fb:98 goog-remb\r\na=sendonly\r\n";
    struct seen s = {0};
    char out[4096], why[200];
    assert_true(negotiate(offer, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_true(s.plan.video.accepted);
    assert_int_equal(s.plan.video.codec, SDP_CODEC_H264);
    assert_int_equal(s.plan.video.rtcp_fb, SDP_FB_NACK | SDP_FB_PLI | SDP_FB_FIR);
    assert_true(s.plan.video.recv);
    assert_false(s.plan.video.send);
    assert_non_null(strstr(out, "m=video 40002 RTP/AVPF 97\r\na=rtpmap:97 H264/90000\r\n"
                                "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\n"
                                "a=rtcp-fb:97 nack\r\na=rtcp-fb:97 nack pli\r\n"
                                "a=rtcp-fb:97 ccm fir\r\na=recvonly\r\n"));
}

static void hold_by_address_or_attribute_turns_our_direction(void **state)
{
    (void)state;
    static const char inactive[] = HEAD "m=audio 5004 RTP/AVP 0\r\na=inactive\r\n";
    static const char zero[] = "v=0\r\no=a 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 0.0.0.0\r\n"
                               "t=0 0\r\nm=audio 5004 RTP/AVP 0\r\n";
    struct seen s = {0};
    char out[4096], why[200];
    assert_true(negotiate(inactive, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_false(s.plan.audio.send);
    assert_false(s.plan.audio.recv);
    assert_non_null(strstr(out, "a=inactive\r\n"));
    assert_true(negotiate(zero, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why) > 0);
    assert_false(s.plan.audio.send);
    assert_true(s.plan.audio.recv);
    assert_string_equal(s.plan.audio.remote_addr, "");
    assert_non_null(strstr(out, "a=recvonly\r\n"));
}

static void the_callbacks_refusal_is_passed_on_with_its_reason(void **state)
{
    (void)state;
    static const char offer[] = HEAD "m=audio 5004 RTP/SAVP 0\r\n" CRYPTO;
    struct seen s = {.rc = -3};
    char out[4096], why[200];
    assert_int_equal(negotiate(offer, SDP_SRTP_OPTIONAL, &s, out, sizeof out, why), -3);
    assert_string_equal(why, "no keys for you");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_secure_offer_hands_its_keys_over_and_answers_ours),
        cmocka_unit_test(srtp_required_refuses_plain_and_srtp_off_refuses_secure),
        cmocka_unit_test(optional_prefers_the_secure_line_of_a_best_effort_offer),
        cmocka_unit_test(a_savp_line_without_keys_says_dtls_is_not_supported),
        cmocka_unit_test(opus_is_taken_in_the_offers_order_and_answered_narrowband),
        cmocka_unit_test(video_is_passed_through_with_its_fmtp_and_feedback),
        cmocka_unit_test(hold_by_address_or_attribute_turns_our_direction),
        cmocka_unit_test(the_callbacks_refusal_is_passed_on_with_its_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
