/* G.711 and Opus at the 8 kHz mixer rate. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "md_codec.h"
#include "md_g711.h"

/* Relative power of frequency f in x[0..n) (Goertzel), as a fraction of the
 * signal's total power: close to 1 for a pure tone at f. */
static double tone_share(const int16_t *x, size_t n, double f)
{
    double w = 2.0 * M_PI * f / MD_MIX_RATE, c = 2.0 * cos(w), s1 = 0, s2 = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        double s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
        total += (double)x[i] * x[i];
    }
    double p = s1 * s1 + s2 * s2 - c * s1 * s2;
    return total > 0 ? 2.0 * p / ((double)n * total) : 0.0;
}

static void tone(int16_t *x, size_t n, size_t start, double f, double amp)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (int16_t)lrint(amp * sin(2.0 * M_PI * f * (double)(start + i) / MD_MIX_RATE));
}

static void g711_round_trip_error_is_within_half_a_step(void **state)
{
    (void)state;
    for (int v = -32768; v <= 32767; v++) {
        int16_t x = (int16_t)v;
        int mag = abs(v);
        /* mu-law: step 2^(seg+3) in 16-bit units, so the error is at most half a step
           (1/32 of the value, 8 in the first segment) plus the 14-bit truncation */
        int eu = abs(md_ulaw_to_linear(md_ulaw_from_linear(x)) - v);
        int ea = abs(md_alaw_to_linear(md_alaw_from_linear(x)) - v);
        if (mag < 32000) {
            assert_true(eu <= mag / 32 + 8 + 4);
            assert_true(ea <= mag / 32 + 8 + 8);
        } else {
            /* clipping at the top of the range */
            assert_true(eu <= 1200);
            assert_true(ea <= 1200);
        }
    }
    /* decoding every code and encoding it again gives the same code (zero excepted,
       which has a positive and a negative form) */
    for (int c = 0; c < 256; c++) {
        int16_t u = md_ulaw_to_linear((uint8_t)c), a = md_alaw_to_linear((uint8_t)c);
        if (u != 0)
            assert_int_equal(md_ulaw_from_linear(u), c);
        assert_int_equal(md_alaw_from_linear(a), c);
    }
}

static void g711_frame_codecs_keep_a_tone(void **state)
{
    (void)state;
    for (md_codec_id_t id = MD_CODEC_PCMU; id <= MD_CODEC_PCMA; id++) {
        struct md_enc *e;
        struct md_dec *d;
        assert_int_equal(md_enc_create(&e, id, 0), MD_OK);
        assert_int_equal(md_dec_create(&d, id), MD_OK);
        int16_t in[MD_FRAME_SAMPLES], out[MD_FRAME_SAMPLES];
        uint8_t pay[MD_FRAME_SAMPLES];
        tone(in, MD_FRAME_SAMPLES, 0, 1000, 8000);
        assert_int_equal(md_enc_frame(e, in, pay, sizeof pay), MD_FRAME_SAMPLES);
        assert_int_equal(md_dec_frame(d, pay, sizeof pay, out), MD_FRAME_SAMPLES);
        assert_true(tone_share(out, MD_FRAME_SAMPLES, 1000) > 0.95);
        assert_int_equal(md_enc_frame(e, in, pay, 100), MD_ERR_NOSPACE);
        /* a short payload is zero-filled, a lost one is silence */
        assert_int_equal(md_dec_frame(d, pay, 80, out), MD_FRAME_SAMPLES);
        assert_int_equal(out[100], 0);
        assert_int_equal(md_dec_frame(d, NULL, 0, out), MD_FRAME_SAMPLES);
        assert_int_equal(out[0], 0);
        md_enc_free(e);
        md_dec_free(d);
    }
    assert_int_equal(md_codec_ts_step(MD_CODEC_PCMU), 160);
    assert_int_equal(md_codec_ts_step(MD_CODEC_OPUS), 960);
}

static void opus_round_trip_keeps_the_tone_frequency(void **state)
{
    (void)state;
    static const double freqs[] = {400, 700, 1100, 2500};
    for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++) {
        struct md_enc *e;
        struct md_dec *d;
        assert_int_equal(md_enc_create(&e, MD_CODEC_OPUS, 24000), MD_OK);
        assert_int_equal(md_dec_create(&d, MD_CODEC_OPUS), MD_OK);
        int16_t in[MD_FRAME_SAMPLES], out[MD_FRAME_SAMPLES];
        uint8_t pay[MD_OPUS_MAX_PACKET];
        double share = 0, other = 0;
        for (int f = 0; f < 25; f++) {
            tone(in, MD_FRAME_SAMPLES, (size_t)f * MD_FRAME_SAMPLES, freqs[k], 10000);
            int n = md_enc_frame(e, in, pay, sizeof pay);
            assert_true(n > 0 && n < MD_OPUS_MAX_PACKET);
            assert_int_equal(md_dec_frame(d, pay, (size_t)n, out), MD_FRAME_SAMPLES);
            if (f >= 5) { /* past the codec's start-up */
                share += tone_share(out, MD_FRAME_SAMPLES, freqs[k]) / 20;
                other += tone_share(out, MD_FRAME_SAMPLES, freqs[k] * 1.5) / 20;
            }
        }
        assert_true(share > 0.8);
        assert_true(other < 0.05);
        /* concealment produces a frame too */
        assert_int_equal(md_dec_frame(d, NULL, 0, out), MD_FRAME_SAMPLES);
        md_enc_free(e);
        md_dec_free(d);
    }
}

static void opus_decoder_reports_garbage_as_an_error(void **state)
{
    (void)state;
    struct md_dec *d;
    assert_int_equal(md_dec_create(&d, MD_CODEC_OPUS), MD_OK);
    /* TOC code 3 with a frame count of 0 is invalid */
    uint8_t bad[2] = {0x03, 0x00};
    int16_t out[MD_FRAME_SAMPLES];
    assert_int_equal(md_dec_frame(d, bad, sizeof bad, out), MD_ERR_CODEC);
    assert_int_equal(out[0], 0);
    md_dec_free(d);
    md_dec_free(NULL);
    md_enc_free(NULL);
    struct md_dec *x;
    assert_int_equal(md_dec_create(&x, MD_CODEC_COUNT), MD_ERR_PARAM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(g711_round_trip_error_is_within_half_a_step),
        cmocka_unit_test(g711_frame_codecs_keep_a_tone),
        cmocka_unit_test(opus_round_trip_keeps_the_tone_frequency),
        cmocka_unit_test(opus_decoder_reports_garbage_as_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
