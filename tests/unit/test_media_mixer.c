/* Conference mixer: N-1 mixes, loudest-N selection, shared encodings, dominant
 * speaker hysteresis, tick accounting, reset for another conference. Participants send sine tones;
 * listeners' outputs are decoded and analysed with the Goertzel algorithm. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_codec.h"
#include "md_mixer.h"

#define MAXP 8

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

struct sim {
    struct md_mixer *mx;
    unsigned n;
    int id[MAXP];
    md_codec_id_t codec[MAXP];
    double freq[MAXP];
    double amp[MAXP];
    struct md_enc *enc[MAXP]; /* what each participant sends */
    struct md_dec *dec[MAXP]; /* how each participant hears its output */
    uint16_t seq;
    uint64_t now_us;
    size_t sample;
    int16_t heard[MAXP][MD_FRAME_SAMPLES]; /* last decoded output per listener */
};

static void sim_init(struct sim *s, const struct md_mixer_cfg *cfg, unsigned n, const double *freq,
                     const double *amp, const md_codec_id_t *codec)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(md_mixer_create(&s->mx, cfg), MD_OK);
    s->n = n;
    s->now_us = 1000000;
    for (unsigned i = 0; i < n; i++) {
        s->codec[i] = codec ? codec[i] : MD_CODEC_PCMU;
        s->freq[i] = freq[i];
        s->amp[i] = amp[i];
        s->id[i] = md_mixer_add(s->mx, s->codec[i], 32000);
        assert_true(s->id[i] >= 0);
        assert_int_equal(md_enc_create(&s->enc[i], s->codec[i], 32000), MD_OK);
        assert_int_equal(md_dec_create(&s->dec[i], s->codec[i]), MD_OK);
    }
}

static void sim_free(struct sim *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        md_enc_free(s->enc[i]);
        md_dec_free(s->dec[i]);
    }
    md_mixer_free(s->mx);
}

/* Every participant sends one frame, the mixer ticks, every listener decodes.
 * Returns what md_mixer_tick returned. */
static int sim_tick(struct sim *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        int16_t pcm[MD_FRAME_SAMPLES];
        for (unsigned k = 0; k < MD_FRAME_SAMPLES; k++)
            pcm[k] = (int16_t)lrint(
                s->amp[i] * sin(2.0 * M_PI * s->freq[i] * (double)(s->sample + k) / MD_MIX_RATE));
        uint8_t pay[MD_OPUS_MAX_PACKET];
        int len = md_enc_frame(s->enc[i], pcm, pay, sizeof pay);
        assert_true(len > 0);
        assert_int_equal(md_mixer_push(s->mx, s->id[i], s->seq, s->seq * 160u, pay, (size_t)len),
                         MD_JB_QUEUED);
    }
    s->seq++;
    s->sample += MD_FRAME_SAMPLES;
    int changed = md_mixer_tick(s->mx, s->now_us);
    s->now_us += 20000;
    for (unsigned i = 0; i < s->n; i++) {
        const uint8_t *out;
        int len = md_mixer_output(s->mx, s->id[i], &out);
        assert_true(len > 0);
        assert_int_equal(md_dec_frame(s->dec[i], out, (size_t)len, s->heard[i]), MD_FRAME_SAMPLES);
    }
    return changed;
}

static void each_listener_hears_the_others_and_not_itself(void **state)
{
    (void)state;
    const double f[3] = {400, 700, 1100}, a[3] = {6000, 6000, 6000};
    const md_codec_id_t c[3] = {MD_CODEC_PCMU, MD_CODEC_PCMA, MD_CODEC_OPUS};
    struct sim s;
    sim_init(&s, NULL, 3, f, a, c);
    double share[3][3] = {{0}};
    for (int t = 0; t < 40; t++) {
        sim_tick(&s);
        if (t < 15)
            continue; /* jitter buffer fill and codec start-up */
        for (unsigned l = 0; l < 3; l++)
            for (unsigned k = 0; k < 3; k++)
                share[l][k] += tone_share(s.heard[l], MD_FRAME_SAMPLES, f[k]) / 25;
    }
    for (unsigned l = 0; l < 3; l++) {
        assert_true(md_mixer_is_mixed(s.mx, s.id[l]));
        for (unsigned k = 0; k < 3; k++) {
            if (k == l)
                assert_true(share[l][k] < 0.02);
            else
                assert_true(share[l][k] > 0.3);
        }
    }
    const struct md_mixer_stats *st = md_mixer_stats(s.mx);
    assert_int_equal(st->ticks, 40);
    /* three speakers: three N-1 encodings per tick, none shared */
    assert_int_equal(st->encode_shared, 0);
    assert_true(st->frames_mixed >= 3 * 30);
    assert_int_equal(st->decode_errors, 0);
    sim_free(&s);
}

static void only_the_three_loudest_of_five_are_mixed(void **state)
{
    (void)state;
    const double f[5] = {300, 500, 900, 1300, 1700};
    const double a[5] = {1500, 2500, 5000, 7000, 9000};
    struct sim s;
    sim_init(&s, NULL, 5, f, a, NULL);
    for (int t = 0; t < 20; t++)
        sim_tick(&s);
    const struct md_mixer_stats before = *md_mixer_stats(s.mx);
    double share[5][5] = {{0}};
    for (int t = 0; t < 10; t++) {
        sim_tick(&s);
        for (unsigned l = 0; l < 5; l++)
            for (unsigned k = 0; k < 5; k++)
                share[l][k] += tone_share(s.heard[l], MD_FRAME_SAMPLES, f[k]) / 10;
    }
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(md_mixer_is_mixed(s.mx, s.id[i]), i >= 2);
    /* the quiet two hear the three loudest and nobody else */
    for (unsigned l = 0; l < 2; l++) {
        assert_true(share[l][0] < 0.01 && share[l][1] < 0.01);
        assert_true(share[l][2] > 0.05 && share[l][3] > 0.1 && share[l][4] > 0.2);
    }
    /* the loudest hears the two others mixed, not itself */
    assert_true(share[4][4] < 0.01 && share[4][3] > 0.2 && share[4][2] > 0.1);
    assert_true(share[4][0] < 0.01 && share[4][1] < 0.01);
    /* the two listeners who are not speakers share one encoding per tick */
    const struct md_mixer_stats *st = md_mixer_stats(s.mx);
    assert_int_equal(st->encode_shared - before.encode_shared, 10);
    assert_int_equal(st->encodes - before.encodes, 4 * 10);
    assert_int_equal(st->frames_mixed - before.frames_mixed, 3 * 10);
    assert_int_equal(md_mixer_dominant(s.mx), s.id[4]);
    sim_free(&s);
}

static void dominant_speaker_changes_only_after_the_hysteresis(void **state)
{
    (void)state;
    struct md_mixer_cfg cfg = {.switch_ticks = 15, .margin_pct = 100};
    const double f[2] = {500, 900};
    double a[2] = {6000, 0};
    struct sim s;
    sim_init(&s, &cfg, 2, f, a, NULL);
    int first_change = -1;
    for (int t = 0; t < 30; t++) {
        if (sim_tick(&s) && first_change < 0)
            first_change = t;
    }
    assert_true(first_change >= 0);
    assert_int_equal(md_mixer_dominant(s.mx), s.id[0]);

    /* a 100 ms burst of a louder voice does not take the floor */
    s.amp[1] = 24000;
    for (int t = 0; t < 5; t++)
        assert_int_equal(sim_tick(&s), 0);
    s.amp[1] = 0;
    for (int t = 0; t < 30; t++)
        assert_int_equal(sim_tick(&s), 0);
    assert_int_equal(md_mixer_dominant(s.mx), s.id[0]);

    /* a sustained one does, but not before switch_ticks ticks */
    s.amp[1] = 24000;
    int changed_at = -1;
    for (int t = 0; t < 40 && changed_at < 0; t++) {
        if (sim_tick(&s))
            changed_at = t;
    }
    assert_true(changed_at >= 15);
    assert_true(changed_at < 30);
    assert_int_equal(md_mixer_dominant(s.mx), s.id[1]);
    assert_int_equal(md_mixer_stats(s.mx)->speaker_switches, 2);

    /* a voice only a little louder than the dominant one never takes over */
    s.amp[0] = 30000;
    for (int t = 0; t < 60; t++)
        sim_tick(&s);
    assert_int_equal(md_mixer_dominant(s.mx), s.id[1]);
    sim_free(&s);
}

static void late_ticks_count_as_overruns_and_the_schedule_rebases(void **state)
{
    (void)state;
    struct md_mixer *mx;
    assert_int_equal(md_mixer_create(&mx, NULL), MD_OK);
    int id = md_mixer_add(mx, MD_CODEC_PCMU, 0);
    assert_true(id >= 0);
    md_mixer_tick(mx, 1000000);
    assert_true(md_mixer_next_due(mx) == 1020000);
    md_mixer_tick(mx, 1020500); /* on time */
    assert_true(md_mixer_next_due(mx) == 1040000);
    assert_int_equal(md_mixer_stats(mx)->overrun_late, 0);
    md_mixer_tick(mx, 1075000); /* 35 ms late: counted, and the schedule moves on */
    assert_int_equal(md_mixer_stats(mx)->overrun_late, 1);
    assert_true(md_mixer_next_due(mx) == 1095000);
    /* nobody speaks: the listener still gets a silent frame */
    const uint8_t *out;
    assert_int_equal(md_mixer_output(mx, id, &out), MD_FRAME_SAMPLES);
    assert_int_equal(out[0], 0xff); /* mu-law zero */
    assert_int_equal(md_mixer_dominant(mx), -1);
    md_mixer_remove(mx, id);
    assert_int_equal(md_mixer_output(mx, id, &out), 0);
    assert_int_equal(md_mixer_push(mx, id, 1, 1, out, 1), MD_JB_LATE);
    md_mixer_free(mx);
    md_mixer_free(NULL);
}

static void mixer_refuses_more_participants_than_it_holds(void **state)
{
    (void)state;
    struct md_mixer *mx;
    assert_int_equal(md_mixer_create(&mx, NULL), MD_OK);
    for (int i = 0; i < MD_MIX_MAX_PARTIES; i++)
        assert_int_equal(md_mixer_add(mx, MD_CODEC_PCMA, 0), i);
    assert_int_equal(md_mixer_add(mx, MD_CODEC_PCMA, 0), MD_ERR_FULL);
    md_mixer_remove(mx, 5);
    assert_int_equal(md_mixer_add(mx, MD_CODEC_OPUS, 0), 5);
    md_mixer_free(mx);
    struct md_mixer_cfg bad = {.n_speakers = MD_MIX_MAX_SPEAKERS + 1};
    assert_int_equal(md_mixer_create(&mx, &bad), MD_ERR_PARAM);
}

/* What a mixer produced for a script: every output of every tick, the dominant
 * speaker and the changes, the levels, the schedule and the statistics. */
struct transcript {
    uint8_t out[4096 * 8];
    size_t len;
    int changes, dominant[60];
    uint32_t level[4];
    uint64_t next_due;
    struct md_mixer_stats st;
    struct md_jb_stats jb[4];
};

static void note(struct transcript *t, const void *p, size_t n)
{
    assert_true(t->len + n <= sizeof t->out);
    memcpy(t->out + t->len, p, n);
    t->len += n;
}

/* Four participants (PCMU, PCMA and two Opus: shared and own encoders) send tones at
 * their own levels for 60 ticks, with a lost packet, a reordered pair and a late tick. */
static void run_script(struct md_mixer *mx, struct transcript *t)
{
    const md_codec_id_t codec[4] = {MD_CODEC_PCMU, MD_CODEC_PCMA, MD_CODEC_OPUS, MD_CODEC_OPUS};
    const double freq[4] = {400, 700, 1100, 1500}, amp[4] = {9000, 3000, 6000, 100};
    struct md_enc *enc[4];
    int id[4];
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 4; i++) {
        id[i] = md_mixer_add(mx, codec[i], 24000);
        assert_int_equal(id[i], i); /* the slots are handed out as by a new mixer */
        assert_int_equal(md_enc_create(&enc[i], codec[i], 24000), MD_OK);
    }
    uint8_t pay[4][2][MD_OPUS_MAX_PACKET];
    int plen[4][2] = {{0}};
    uint64_t now = 5000000;
    for (int tick = 0; tick < 60; tick++) {
        for (int i = 0; i < 4; i++) {
            int16_t pcm[MD_FRAME_SAMPLES];
            double a = tick > 30 && i == 1 ? 12000 : amp[i]; /* 1 becomes the loudest */
            for (unsigned k = 0; k < MD_FRAME_SAMPLES; k++)
                pcm[k] =
                    (int16_t)lrint(a * sin(2.0 * M_PI * freq[i] *
                                           (double)(tick * MD_FRAME_SAMPLES + k) / MD_MIX_RATE));
            uint8_t *b = pay[i][tick & 1];
            plen[i][tick & 1] = md_enc_frame(enc[i], pcm, b, MD_OPUS_MAX_PACKET);
            assert_true(plen[i][tick & 1] > 0);
            uint16_t seq = (uint16_t)(100 * i + tick);
            if (i == 2 && tick == 20)
                continue; /* lost */
            if (i == 3 && tick == 10)
                continue; /* sent after the next one */
            md_mixer_push(mx, id[i], seq, seq * 160u, b, (size_t)plen[i][tick & 1]);
            if (i == 3 && tick == 11)
                md_mixer_push(mx, id[i], (uint16_t)(seq - 1), (seq - 1) * 160u,
                              pay[i][(tick - 1) & 1], (size_t)plen[i][(tick - 1) & 1]);
        }
        now += tick == 40 ? 35000 : 20000; /* one tick 15 ms late */
        t->changes += md_mixer_tick(mx, now);
        t->dominant[tick] = md_mixer_dominant(mx);
        for (int i = 0; i < 4; i++) {
            const uint8_t *o;
            int n = md_mixer_output(mx, id[i], &o);
            note(t, &n, sizeof n);
            if (n > 0)
                note(t, o, (size_t)n);
        }
    }
    for (int i = 0; i < 4; i++) {
        t->level[i] = md_mixer_level(mx, id[i]);
        t->jb[i] = *md_mixer_jb_stats(mx, id[i]);
        md_enc_free(enc[i]);
    }
    t->next_due = md_mixer_next_due(mx);
    t->st = *md_mixer_stats(mx);
    t->st.overrun_slow = 0; /* wall-clock time the tick took: not the mixer's output */
}

static void a_mixer_reset_after_a_conference_mixes_like_a_new_one(void **state)
{
    (void)state;
    static struct transcript first, reused, fresh;
    struct md_mixer_cfg cfg = {.n_speakers = 2, .switch_ticks = 5};
    struct md_mixer *used, *created;
    assert_int_equal(md_mixer_create(&used, NULL), MD_OK);
    run_script(used, &first);
    /* the first conference leaves state behind: a speaker, levels, statistics, one
     * participant removed and three still in */
    assert_true(first.changes > 0 && first.dominant[59] >= 0);
    assert_true(first.st.concealed > 0 && first.st.overrun_late > 0);
    md_mixer_remove(used, 1);

    struct md_mixer_cfg bad = {.n_speakers = MD_MIX_MAX_SPEAKERS + 1};
    assert_int_equal(md_mixer_reset(used, &bad), MD_ERR_PARAM);
    assert_int_equal(md_mixer_dominant(used), first.dominant[59]); /* unchanged */
    assert_int_equal(md_mixer_reset(used, &cfg), MD_OK);
    assert_int_equal(md_mixer_dominant(used), -1);
    assert_true(md_mixer_next_due(used) == 0);
    assert_int_equal(md_mixer_stats(used)->ticks, 0);
    assert_null(md_mixer_jb_stats(used, 0));
    const uint8_t *o;
    assert_int_equal(md_mixer_output(used, 0, &o), 0);

    assert_int_equal(md_mixer_create(&created, &cfg), MD_OK);
    run_script(used, &reused);
    run_script(created, &fresh);
    assert_true(fresh.len > 60 * 4 * sizeof(int) && fresh.changes > 0);
    assert_int_equal(reused.len, fresh.len);
    assert_memory_equal(reused.out, fresh.out, fresh.len);
    assert_memory_equal(reused.dominant, fresh.dominant, sizeof fresh.dominant);
    assert_int_equal(reused.changes, fresh.changes);
    assert_memory_equal(reused.level, fresh.level, sizeof fresh.level);
    assert_true(reused.next_due == fresh.next_due);
    assert_memory_equal(&reused.st, &fresh.st, sizeof fresh.st);
    assert_memory_equal(reused.jb, fresh.jb, sizeof fresh.jb);
    md_mixer_free(used);
    md_mixer_free(created);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_listener_hears_the_others_and_not_itself),
        cmocka_unit_test(only_the_three_loudest_of_five_are_mixed),
        cmocka_unit_test(dominant_speaker_changes_only_after_the_hysteresis),
        cmocka_unit_test(late_ticks_count_as_overruns_and_the_schedule_rebases),
        cmocka_unit_test(mixer_refuses_more_participants_than_it_holds),
        cmocka_unit_test(a_mixer_reset_after_a_conference_mixes_like_a_new_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
