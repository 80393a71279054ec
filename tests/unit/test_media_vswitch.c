/* Video switcher: per-receiver SSRC, continuous sequence numbers and timestamps
 * across speaker switches, keyframe gating and keyframe requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_rtp.h"
#include "md_vswitch.h"

/* Source s numbers its packets from its own random-looking base. */
struct src {
    uint32_t ssrc;
    uint16_t seq;
    uint32_t ts;
};

/* VP8 payload: S=1 PID=0, then the VP8 header's P bit (0 = key frame). */
static size_t make_video(uint8_t *buf, struct src *s, bool key, bool marker)
{
    struct md_rtp_out o = {.ssrc = s->ssrc, .seq = s->seq, .ts = s->ts, .pt = 96};
    md_rtp_out_header(&o, buf, 12, marker, 0, 3);
    buf[12] = 0x10;
    buf[13] = key ? 0x00 : 0x01;
    buf[14] = 0x9d;
    s->seq++;
    if (marker)
        s->ts += 3000;
    return 15;
}

struct out {
    int rc;
    struct md_rtp r;
};

static struct out fwd(struct md_vswitch *vs, int rx, int sid, struct src *s, bool key, bool marker,
                      uint64_t now)
{
    uint8_t pkt[64];
    size_t len = make_video(pkt, s, key, marker);
    struct md_rtp in;
    assert_int_equal(md_rtp_parse(pkt, len, &in), MD_OK);
    bool kf = md_video_is_keyframe(MD_VIDEO_VP8, in.payload, in.payload_len);
    assert_int_equal(kf, key);
    struct out o;
    o.rc = md_vswitch_forward(vs, rx, sid, &in, pkt, kf, now);
    if (o.rc == MD_OK)
        assert_int_equal(md_rtp_parse(pkt, len, &o.r), MD_OK);
    return o;
}

static void switched_stream_keeps_ssrc_seq_and_ts_continuous(void **state)
{
    (void)state;
    struct md_vswitch vs;
    md_vswitch_init(&vs, 500);
    /* participants 0 and 1 speak in turn; 2 watches */
    for (int i = 0; i < 3; i++)
        assert_int_equal(md_vswitch_add(&vs, i, 0xa0000000u + (uint32_t)i), MD_OK);
    struct src s0 = {.ssrc = 111, .seq = 65500, .ts = 4294900000u};
    struct src s1 = {.ssrc = 222, .seq = 1234, .ts = 777};
    uint64_t now = 10000;

    md_vswitch_set_speaker(&vs, 0, now);
    /* no keyframe yet: nothing for receiver 2 */
    assert_int_equal(fwd(&vs, 2, 0, &s0, false, true, now).rc, 1);
    struct out o = fwd(&vs, 2, 0, &s0, true, false, now);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.ssrc, 0xa0000002u);
    uint16_t last_seq = o.r.seq;
    uint32_t last_ts = o.r.ts;
    /* 100 packets across the source's sequence wrap: +1 each, marker kept */
    for (int i = 0; i < 100; i++) {
        bool marker = i % 3 == 2;
        now += marker ? 33 : 0;
        o = fwd(&vs, 2, 0, &s0, false, marker, now);
        assert_int_equal(o.rc, MD_OK);
        assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
        assert_int_equal(o.r.marker, marker);
        assert_true(o.r.ts - last_ts == 0 || o.r.ts - last_ts == 3000);
        last_seq = o.r.seq;
        last_ts = o.r.ts;
    }

    /* switch to 1: until its keyframe, receiver 2 still sees 0 */
    now += 40;
    md_vswitch_set_speaker(&vs, 1, now);
    assert_int_equal(fwd(&vs, 2, 1, &s1, false, false, now).rc, 1);
    o = fwd(&vs, 2, 0, &s0, false, true, now);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
    last_seq = o.r.seq;
    last_ts = o.r.ts;
    now += 100;
    o = fwd(&vs, 2, 1, &s1, true, false, now);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.ssrc, 0xa0000002u);
    assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
    assert_int_equal(o.r.ts - last_ts, 100 * 90); /* the time that passed, at 90 kHz */
    last_seq = o.r.seq;
    last_ts = o.r.ts;
    /* 0 is no longer forwarded to 2; 1 continues */
    assert_int_equal(fwd(&vs, 2, 0, &s0, false, false, now).rc, 1);
    o = fwd(&vs, 2, 1, &s1, false, true, now);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
    assert_int_equal(o.r.ts, last_ts);

    /* a switch right after the last packet still advances the timestamp by a frame */
    last_seq = o.r.seq;
    last_ts = o.r.ts;
    md_vswitch_set_speaker(&vs, 0, now);
    o = fwd(&vs, 2, 0, &s0, true, false, now);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
    assert_int_equal(o.r.ts - last_ts, MD_VSW_MIN_TS_STEP);
    assert_int_equal(vs.rx[2].switches, 3);
}

static void a_source_that_restarts_its_stream_stays_continuous(void **state)
{
    (void)state;
    struct md_vswitch vs;
    md_vswitch_init(&vs, 0);
    md_vswitch_add(&vs, 0, 10);
    md_vswitch_add(&vs, 1, 11);
    struct src s0 = {.ssrc = 1, .seq = 30000, .ts = 5000};
    md_vswitch_set_speaker(&vs, 0, 0);
    struct out o = fwd(&vs, 1, 0, &s0, true, true, 0);
    assert_int_equal(o.rc, MD_OK);
    for (int i = 0; i < 5; i++)
        o = fwd(&vs, 1, 0, &s0, false, true, 33 * (uint64_t)i);
    uint16_t last_seq = o.r.seq;
    uint32_t last_ts = o.r.ts;
    /* the same SSRC renumbered far behind, then a new SSRC far ahead */
    s0.seq = 100;
    o = fwd(&vs, 1, 0, &s0, false, true, 200);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
    assert_true(o.r.ts - last_ts >= MD_VSW_MIN_TS_STEP && o.r.ts - last_ts < 90000);
    last_seq = o.r.seq;
    s0.ssrc = 2;
    s0.seq = 101; /* in sequence, but another stream */
    s0.ts = 123456789;
    o = fwd(&vs, 1, 0, &s0, false, true, 233);
    assert_int_equal(o.rc, MD_OK);
    assert_int_equal(o.r.ssrc, 11);
    assert_int_equal(o.r.seq, (uint16_t)(last_seq + 1));
    /* packets just before the restart point are still refused */
    s0.seq = 99;
    assert_int_equal(fwd(&vs, 1, 0, &s0, false, false, 240).rc, 1);
}

static void the_speaker_sees_the_previous_speaker(void **state)
{
    (void)state;
    struct md_vswitch vs;
    md_vswitch_init(&vs, 0);
    md_vswitch_add(&vs, 0, 10);
    md_vswitch_add(&vs, 1, 11);
    struct src s0 = {.ssrc = 1}, s1 = {.ssrc = 2};
    md_vswitch_set_speaker(&vs, 0, 0);
    assert_false(md_vswitch_wants(&vs, 0, 0)); /* never its own video */
    assert_true(md_vswitch_wants(&vs, 1, 0));
    assert_false(md_vswitch_wants(&vs, 0, 1)); /* no previous speaker yet */
    md_vswitch_set_speaker(&vs, 1, 0);
    assert_true(md_vswitch_wants(&vs, 0, 1));
    assert_true(md_vswitch_wants(&vs, 1, 0)); /* the previous speaker */
    assert_int_equal(fwd(&vs, 1, 0, &s0, true, true, 0).rc, MD_OK);
    assert_int_equal(fwd(&vs, 0, 1, &s1, true, true, 0).rc, MD_OK);
    assert_int_equal(fwd(&vs, 1, 1, &s1, true, true, 0).rc, 1);
}

static void a_switch_asks_for_a_pli_then_firs_until_a_keyframe(void **state)
{
    (void)state;
    struct md_vswitch vs;
    md_vswitch_init(&vs, 500);
    md_vswitch_add(&vs, 0, 10);
    md_vswitch_add(&vs, 1, 11);
    md_vswitch_add(&vs, 2, 12);
    struct md_kf_req req[4];
    md_vswitch_set_speaker(&vs, 1, 1000);
    size_t n = md_vswitch_poll_requests(&vs, 1000, req, 4);
    assert_int_equal(n, 1);
    assert_int_equal(req[0].src, 1);
    assert_int_equal(req[0].type, MD_KF_PLI);
    assert_int_equal(md_vswitch_poll_requests(&vs, 1400, req, 4), 0);
    n = md_vswitch_poll_requests(&vs, 1500, req, 4);
    assert_int_equal(n, 1);
    assert_int_equal(req[0].type, MD_KF_FIR);
    assert_int_equal(req[0].fir_seq, 1);
    n = md_vswitch_poll_requests(&vs, 2000, req, 4);
    assert_int_equal(n, 1);
    assert_int_equal(req[0].fir_seq, 2);
    /* the keyframe arrives for both receivers: no more requests */
    struct src s1 = {.ssrc = 5};
    uint8_t pkt[64];
    size_t len = make_video(pkt, &s1, true, false);
    struct md_rtp in;
    assert_int_equal(md_rtp_parse(pkt, len, &in), MD_OK);
    uint8_t copy[64];
    memcpy(copy, pkt, len);
    assert_int_equal(md_vswitch_forward(&vs, 0, 1, &in, copy, true, 2100), MD_OK);
    memcpy(copy, pkt, len);
    assert_int_equal(md_vswitch_forward(&vs, 2, 1, &in, copy, true, 2100), MD_OK);
    assert_int_equal(md_vswitch_poll_requests(&vs, 5000, req, 4), 0);
}

static void removing_the_forwarded_source_stops_its_stream(void **state)
{
    (void)state;
    struct md_vswitch vs;
    md_vswitch_init(&vs, 0);
    md_vswitch_add(&vs, 0, 10);
    md_vswitch_add(&vs, 1, 11);
    struct src s0 = {.ssrc = 1};
    md_vswitch_set_speaker(&vs, 0, 0);
    assert_int_equal(fwd(&vs, 1, 0, &s0, true, true, 0).rc, MD_OK);
    md_vswitch_remove(&vs, 0);
    assert_false(md_vswitch_wants(&vs, 1, 0));
    assert_int_equal(vs.speaker, -1);
    assert_int_equal(md_vswitch_add(&vs, 1, 99), MD_ERR_PARAM);
    assert_int_equal(md_vswitch_add(&vs, MD_VSW_MAX, 99), MD_ERR_PARAM);
}

static void keyframes_are_recognised_in_vp8_and_h264(void **state)
{
    (void)state;
    /* VP8 with X, I (15-bit picture id), L, T/K extension bytes */
    const uint8_t vp8_ext_key[] = {0x90, 0xf0, 0x81, 0x02, 0x03, 0x04, 0x00, 0x9d};
    const uint8_t vp8_ext_delta[] = {0x90, 0xf0, 0x81, 0x02, 0x03, 0x04, 0x01, 0x9d};
    const uint8_t vp8_not_start[] = {0x00, 0x00};
    const uint8_t vp8_part1[] = {0x11, 0x00};
    assert_true(md_video_is_keyframe(MD_VIDEO_VP8, vp8_ext_key, sizeof vp8_ext_key));
    assert_false(md_video_is_keyframe(MD_VIDEO_VP8, vp8_ext_delta, sizeof vp8_ext_delta));
    assert_false(md_video_is_keyframe(MD_VIDEO_VP8, vp8_not_start, 2));
    assert_false(md_video_is_keyframe(MD_VIDEO_VP8, vp8_part1, 2));
    for (size_t n = 0; n < 7; n++) /* truncated descriptors */
        assert_false(md_video_is_keyframe(MD_VIDEO_VP8, vp8_ext_key, n));

    const uint8_t idr[] = {0x65, 0x88};
    const uint8_t slice[] = {0x41, 0x9a};
    const uint8_t sps[] = {0x67, 0x42};
    const uint8_t stap[] = {0x18, 0x00, 0x02, 0x09, 0xf0, 0x00, 0x02, 0x67, 0x42};
    const uint8_t stap_bad[] = {0x18, 0x00, 0x09, 0x67};
    const uint8_t fu_start_idr[] = {0x7c, 0x85, 0x00};
    const uint8_t fu_mid_idr[] = {0x7c, 0x05, 0x00};
    assert_true(md_video_is_keyframe(MD_VIDEO_H264, idr, 2));
    assert_false(md_video_is_keyframe(MD_VIDEO_H264, slice, 2));
    assert_true(md_video_is_keyframe(MD_VIDEO_H264, sps, 2));
    assert_true(md_video_is_keyframe(MD_VIDEO_H264, stap, sizeof stap));
    assert_false(md_video_is_keyframe(MD_VIDEO_H264, stap, 6));
    assert_false(md_video_is_keyframe(MD_VIDEO_H264, stap_bad, sizeof stap_bad));
    assert_true(md_video_is_keyframe(MD_VIDEO_H264, fu_start_idr, 3));
    assert_false(md_video_is_keyframe(MD_VIDEO_H264, fu_mid_idr, 3));
    assert_false(md_video_is_keyframe(MD_VIDEO_H264, fu_start_idr, 1));
    assert_false(md_video_is_keyframe(MD_VIDEO_H264, idr, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(switched_stream_keeps_ssrc_seq_and_ts_continuous),
        cmocka_unit_test(a_source_that_restarts_its_stream_stays_continuous),
        cmocka_unit_test(the_speaker_sees_the_previous_speaker),
        cmocka_unit_test(a_switch_asks_for_a_pli_then_firs_until_a_keyframe),
        cmocka_unit_test(removing_the_forwarded_source_stops_its_stream),
        cmocka_unit_test(keyframes_are_recognised_in_vp8_and_h264),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
