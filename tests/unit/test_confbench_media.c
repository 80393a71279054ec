/* confbench --conference: tone and codec lists, the Goertzel ratio, the verdict and
 * the conference options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/confbench/cb_media_audio.c"
#include "../../bench/confbench/cb_opts.c"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))
#define SECOND MD_MIX_RATE

static int16_t pcm[2 * SECOND];

/* pcm[0..n) = the sum of the given tones, each at amplitude amp. */
static void mix(size_t n, const double *hz, unsigned k, double amp)
{
    for (size_t i = 0; i < n; i++) {
        double v = 0;
        for (unsigned t = 0; t < k; t++)
            v += amp * sin(2.0 * M_PI * hz[t] * (double)i / MD_MIX_RATE);
        pcm[i] = (int16_t)v;
    }
}

static void goertzel_ratio_is_about_one_for_a_pure_tone_at_its_frequency(void **state)
{
    (void)state;
    const double hz[] = {400, 700, 1100, 3100};
    for (unsigned t = 0; t < 4; t++) {
        cb_tone_fill(pcm, SECOND, hz[t], CB_TONE_AMPLITUDE, 0);
        double r = cb_goertzel_ratio(pcm, SECOND, hz[t]);
        assert_true(r > 0.95 && r < 1.05);
    }
}

static void goertzel_ratio_shares_the_energy_between_equal_tones(void **state)
{
    (void)state;
    const double hz[] = {400, 700, 1100};
    mix(SECOND, hz, 2, 6000);
    for (unsigned t = 0; t < 2; t++) {
        double r = cb_goertzel_ratio(pcm, SECOND, hz[t]);
        assert_true(r > 0.45 && r < 0.55);
    }
    assert_true(cb_goertzel_ratio(pcm, SECOND, hz[2]) < CB_OWN_MAX);
    mix(SECOND, hz, 3, 4000);
    for (unsigned t = 0; t < 3; t++) {
        double r = cb_goertzel_ratio(pcm, SECOND, hz[t]);
        assert_true(r > 0.28 && r < 0.39);
    }
}

static void goertzel_ratio_is_near_zero_for_a_frequency_not_present(void **state)
{
    (void)state;
    cb_tone_fill(pcm, SECOND, 700, CB_TONE_AMPLITUDE, 0);
    assert_true(cb_goertzel_ratio(pcm, SECOND, 400) < 0.001);
    assert_true(cb_goertzel_ratio(pcm, SECOND, 1100) < 0.001);
    /* 25 Hz apart, the minimum --tones allows, still tells them apart over 1 s */
    assert_true(cb_goertzel_ratio(pcm, SECOND, 725) < CB_OWN_MAX);
}

static void goertzel_ratio_is_zero_for_silence_and_for_an_empty_block(void **state)
{
    (void)state;
    memset(pcm, 0, sizeof(pcm));
    assert_true(cb_goertzel_ratio(pcm, SECOND, 400) == 0.0);
    assert_true(cb_goertzel_ratio(pcm, 0, 400) == 0.0);
}

static void goertzel_ratio_does_not_depend_on_the_level(void **state)
{
    (void)state;
    const double hz[] = {400, 1100};
    mix(SECOND, hz, 2, 500);
    double quiet = cb_goertzel_ratio(pcm, SECOND, 400);
    mix(SECOND, hz, 2, 12000);
    double loud = cb_goertzel_ratio(pcm, SECOND, 400);
    assert_true(fabs(quiet - loud) < 0.02);
}

/* A tone through the codec and back keeps its ratio above the hearing threshold, and
 * an absent one stays below the own-tone threshold. */
static void tones_survive_a_codec_round_trip(void **state)
{
    (void)state;
    for (md_codec_id_t id = MD_CODEC_PCMU; id < MD_CODEC_COUNT; id++) {
        struct md_enc *enc = NULL;
        struct md_dec *dec = NULL;
        assert_int_equal(md_enc_create(&enc, id, 0), MD_OK);
        assert_int_equal(md_dec_create(&dec, id), MD_OK);
        const double hz[] = {700, 1100};
        static int16_t in[SECOND], out[SECOND];
        for (size_t i = 0; i < SECOND; i++)
            in[i] = (int16_t)(4000 * sin(2 * M_PI * hz[0] * (double)i / MD_MIX_RATE) +
                              4000 * sin(2 * M_PI * hz[1] * (double)i / MD_MIX_RATE));
        for (size_t f = 0; f < SECOND / MD_FRAME_SAMPLES; f++) {
            uint8_t pl[MD_OPUS_MAX_PACKET];
            int n = md_enc_frame(enc, in + f * MD_FRAME_SAMPLES, pl, sizeof(pl));
            assert_true(n > 0);
            assert_int_equal(md_dec_frame(dec, pl, (size_t)n, out + f * MD_FRAME_SAMPLES),
                             MD_FRAME_SAMPLES);
        }
        size_t skip = SECOND / 4; /* the Opus decoder's start-up */
        assert_true(cb_goertzel_ratio(out + skip, SECOND - skip, 700) > CB_HEAR_MIN);
        assert_true(cb_goertzel_ratio(out + skip, SECOND - skip, 1100) > CB_HEAR_MIN);
        assert_true(cb_goertzel_ratio(out + skip, SECOND - skip, 400) < CB_OWN_MAX);
        md_enc_free(enc);
        md_dec_free(dec);
    }
}

static void verdict_passes_when_others_are_heard_and_self_is_not(void **state)
{
    (void)state;
    const double r[] = {0.0, 0.4, 0.5};
    assert_true(cb_hears_others_not_self(r, 3, 0, CB_HEAR_MIN, CB_OWN_MAX));
    const double at_bounds[] = {CB_HEAR_MIN, CB_OWN_MAX, CB_HEAR_MIN};
    assert_true(cb_hears_others_not_self(at_bounds, 3, 1, CB_HEAR_MIN, CB_OWN_MAX));
}

static void verdict_fails_when_its_own_tone_comes_back(void **state)
{
    (void)state;
    const double r[] = {0.3, 0.02, 0.3};
    assert_false(cb_hears_others_not_self(r, 3, 1, CB_HEAR_MIN, CB_OWN_MAX));
}

static void verdict_fails_when_any_other_tone_is_missing(void **state)
{
    (void)state;
    const double r[] = {0.0, 0.6, 0.04};
    assert_false(cb_hears_others_not_self(r, 3, 0, CB_HEAR_MIN, CB_OWN_MAX));
    assert_false(cb_hears_others_not_self(r, 3, 3, CB_HEAR_MIN, CB_OWN_MAX));
}

static void tones_parse_accepts_distinct_frequencies_in_order(void **state)
{
    (void)state;
    double hz[CB_CONF_MAX];
    unsigned n = 0;
    const char *s = "400,700,1100.5";
    assert_int_equal(cb_tones_parse(s, hz, CB_CONF_MAX, &n), 0);
    assert_int_equal(n, 3);
    assert_true(hz[0] == 400 && hz[1] == 700 && hz[2] == 1100.5);
    assert_string_equal(s, "400,700,1100.5");
}

static void tones_parse_rejects_bad_lists(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         ",",
                         "400,",
                         ",400",
                         "400,,700",
                         "400,410",
                         "400,400",
                         "40",
                         "3900",
                         "abc",
                         "400x",
                         "-400",
                         "400,700,1100,1500,1900,2300,2700"};
    double hz[CB_CONF_MAX];
    unsigned n;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cb_tones_parse(bad[i], hz, 6, &n), -1);
}

static void codecs_parse_reads_a_list_in_any_case(void **state)
{
    (void)state;
    md_codec_id_t ids[CB_CONF_MAX];
    unsigned n = 0;
    assert_int_equal(cb_codecs_parse("pcmu,PCMA,Opus", ids, CB_CONF_MAX, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], MD_CODEC_PCMU);
    assert_int_equal(ids[1], MD_CODEC_PCMA);
    assert_int_equal(ids[2], MD_CODEC_OPUS);
    const char *bad[] = {"", "g729", "pcmu,", "pcmux", "pcm", "pcmu,,opus", "pcmu,pcmu,pcmu"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cb_codecs_parse(bad[i], ids, 2, &n), -1);
}

static void default_tones_are_distinct_and_in_range_for_every_participant(void **state)
{
    (void)state;
    for (unsigned i = 0; i < CB_CONF_MAX; i++) {
        double a = cb_default_tone(i);
        assert_true(a >= 50 && a <= 3800);
        for (unsigned j = 0; j < i; j++)
            assert_true(fabs(a - cb_default_tone(j)) >= 25);
    }
}

static void conference_options_are_parsed_and_checked(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *ok[] = {"confbench", "--conference",   "3",      "--tones",  "400,700,1100",
                  "--codecs",  "pcmu,pcmu,opus", "--srtp", "--tamper", "--hold",
                  "2s",        "h:5060"};
    assert_int_equal(cb_opts_parse(ARGC(ok), ok, &o, err, sizeof(err)), 0);
    assert_int_equal(o.conference, 3);
    assert_string_equal(o.tones, "400,700,1100");
    assert_string_equal(o.codecs, "pcmu,pcmu,opus");
    assert_true(o.srtp && o.tamper);
    assert_int_equal(o.hold_ms, 2000);
    char *one[] = {"confbench", "--conference", "2", "--codec", "opus", "h:5060"};
    assert_int_equal(cb_opts_parse(ARGC(one), one, &o, err, sizeof(err)), 0);
    assert_string_equal(o.codecs, "opus");
    char *tamper_plain[] = {"confbench", "--conference", "3", "--tamper", "h:5060"};
    assert_int_equal(cb_opts_parse(ARGC(tamper_plain), tamper_plain, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--srtp"));
    char *no_conf[] = {"confbench", "--tones", "400,700", "h:5060"};
    assert_int_equal(cb_opts_parse(ARGC(no_conf), no_conf, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--conference"));
    char *tcp[] = {"confbench", "--conference", "3", "-t", "tcp", "h:5060"};
    assert_int_equal(cb_opts_parse(ARGC(tcp), tcp, &o, err, sizeof(err)), -1);
    char *one_part[] = {"confbench", "--conference", "1", "h:5060"};
    assert_int_equal(cb_opts_parse(ARGC(one_part), one_part, &o, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(goertzel_ratio_is_about_one_for_a_pure_tone_at_its_frequency),
        cmocka_unit_test(goertzel_ratio_shares_the_energy_between_equal_tones),
        cmocka_unit_test(goertzel_ratio_is_near_zero_for_a_frequency_not_present),
        cmocka_unit_test(goertzel_ratio_is_zero_for_silence_and_for_an_empty_block),
        cmocka_unit_test(goertzel_ratio_does_not_depend_on_the_level),
        cmocka_unit_test(tones_survive_a_codec_round_trip),
        cmocka_unit_test(verdict_passes_when_others_are_heard_and_self_is_not),
        cmocka_unit_test(verdict_fails_when_its_own_tone_comes_back),
        cmocka_unit_test(verdict_fails_when_any_other_tone_is_missing),
        cmocka_unit_test(tones_parse_accepts_distinct_frequencies_in_order),
        cmocka_unit_test(tones_parse_rejects_bad_lists),
        cmocka_unit_test(codecs_parse_reads_a_list_in_any_case),
        cmocka_unit_test(default_tones_are_distinct_and_in_range_for_every_participant),
        cmocka_unit_test(conference_options_are_parsed_and_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
