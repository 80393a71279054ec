/* dp_media in-process: the worker's media sessions on real loopback sockets, driven
 * by the test's own epoll loop, with test peers (test_dp_media_peer.h) as the
 * participants. Audio mixing by tone, video switching with sequence continuity and
 * keyframe requests, NACK mapping, SRTP failures counted, timeouts, hold; conferences
 * and sockets of closed legs reused. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "dp_media.h"
#include "md_srtp.h"
#include "test_dp_media_peer.h"

#define TAG 7

struct fx {
    int epfd;
    struct dp_media *m;
    struct peer p[3];
    uint32_t leg[3];
    int events;
    void *last_owner;
    uint64_t conf_key; /* of the legs open_leg opens; 0 = 42 */
    unsigned speakers; /* their conference's loudest N (0 = default) */
    uint16_t port;     /* the audio port open_leg asks for (0 = a free one) */
};

static void on_event(void *ctx, void *owner, dp_media_event_t ev, uint64_t now)
{
    struct fx *f = ctx;
    (void)now;
    if (ev == DP_MEDIA_EV_TIMEOUT) {
        f->events++;
        f->last_owner = owner;
    }
}

static int setup(void **state)
{
    assert_int_equal(md_srtp_global_init(), MD_OK);
    struct fx *f = calloc(1, sizeof *f);
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    f->m = dp_media_create(0, f->epfd, TAG);
    assert_non_null(f->m);
    dp_media_set_events(f->m, on_event, f);
    for (int i = 0; i < 3; i++)
        f->p[i].fd = f->p[i].vfd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    dp_media_free(f->m);
    close(f->epfd);
    for (int i = 0; i < 3; i++)
        peer_free(&f->p[i]);
    free(f);
    return 0;
}

/* Runs the media loop for ms milliseconds. */
static void pump(struct fx *f, int ms)
{
    uint64_t end = peer_now_us() + (uint64_t)ms * 1000u;
    for (;;) {
        uint64_t now = peer_now_us();
        if (now >= end)
            break;
        struct epoll_event ev[32];
        int n = epoll_wait(f->epfd, ev, 32, (int)((end - now + 999) / 1000));
        for (int i = 0; i < n; i++) {
            assert_int_equal(ev[i].data.u64 >> 32, TAG);
            dp_media_event(f->m, (uint32_t)ev[i].data.u64, ev[i].events);
        }
    }
}

/* A free even port pair on loopback (bound briefly to check). */
static uint16_t free_pair(void)
{
    for (int tries = 0; tries < 200; tries++) {
        uint16_t port = (uint16_t)(20000 + 2 * (rand() % 4000));
        int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in x = peer_addr(port), y = peer_addr((uint16_t)(port + 1));
        bool ok = bind(a, (struct sockaddr *)&x, sizeof x) == 0 &&
                  bind(b, (struct sockaddr *)&y, sizeof y) == 0;
        close(a);
        close(b);
        if (ok)
            return port;
    }
    fail_msg("no free port pair");
    return 0;
}

static char crypto_buf[3][2][DP_MEDIA_CRYPTO_MAX];

/* Opens a leg for peer i: audio (and video) with rtcp-mux towards its sockets. */
static void open_leg(struct fx *f, int i, dp_media_codec_t codec, uint8_t pt, bool video,
                     uint32_t timeout_ms)
{
    struct peer *p = &f->p[i];
    struct dp_media_leg_params lp = {.conf_key = f->conf_key ? f->conf_key : 42,
                                     .speakers = f->speakers,
                                     .timeout_ms = timeout_ms,
                                     .local_address = "127.0.0.1",
                                     .owner = p};
    struct dp_media_stream_params *a = &lp.audio, *v = &lp.video;
    a->enabled = true;
    a->local_port = f->port ? f->port : free_pair();
    struct sockaddr_in r = peer_addr(p->port);
    memcpy(&a->remote, &r, sizeof r);
    memcpy(&a->remote_rtcp, &r, sizeof r);
    a->remote_len = sizeof r;
    a->rtcp_mux = true;
    a->send = a->recv = true;
    a->codec = codec;
    a->pt = pt;
    a->te_pt = 101;
    if (p->secure) {
        a->secure = true;
        int n = peer_crypto_line(p, crypto_buf[i][0], sizeof crypto_buf[i][0]);
        assert_true(n > 0);
        a->crypto[0] = crypto_buf[i][0];
        a->crypto_len[0] = (size_t)n;
        a->n_crypto = 1;
    }
    if (video) {
        v->enabled = true;
        v->local_port = free_pair();
        r = peer_addr(p->vport);
        memcpy(&v->remote, &r, sizeof r);
        memcpy(&v->remote_rtcp, &r, sizeof r);
        v->remote_len = sizeof r;
        v->rtcp_mux = true;
        v->send = v->recv = true;
        v->codec = DP_CODEC_VP8;
        v->pt = 96;
        v->te_pt = -1;
        if (p->secure) {
            v->secure = true;
            v->crypto[0] = crypto_buf[i][0];
            v->crypto_len[0] = strlen(crypto_buf[i][0]);
            v->n_crypto = 1;
        }
    }
    char why[200];
    assert_int_equal(dp_media_leg_open(f->m, &lp, &f->leg[i], why, sizeof why), DP_MEDIA_OK);
    assert_int_not_equal(f->leg[i], 0);
    p->to = peer_addr(a->local_port);
    if (video)
        p->vto = peer_addr(v->local_port);
    if (p->secure) {
        assert_true(strlen(a->crypto_answer) > 0);
        assert_int_equal(peer_answer_key(p, a->crypto_answer), 0);
    }
}

static double tone_share(const struct peer *p, double freq)
{
    size_t skip = 8000; /* the first second: jitter buffers filling, levels settling */
    if (p->n_pcm <= skip)
        return 0.0;
    return goertzel(p->pcm + skip, p->n_pcm - skip, freq) / (double)(p->n_pcm - skip);
}

static void talk(struct fx *f, int n, int ticks, bool video)
{
    for (int t = 0; t < ticks; t++) {
        for (int i = 0; i < n; i++) {
            peer_send_audio(&f->p[i], false);
            if (video)
                peer_send_video(&f->p[i]);
        }
        pump(f, 20);
        for (int i = 0; i < n; i++)
            peer_drain(&f->p[i]);
    }
}

static void each_participant_hears_the_others_and_not_itself(void **state)
{
    struct fx *f = *state;
    const double freq[3] = {400, 700, 1100};
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, freq[0], false, false), 0);
    assert_int_equal(peer_init(&f->p[1], 1, MD_CODEC_PCMA, 8, freq[1], false, false), 0);
    assert_int_equal(peer_init(&f->p[2], 2, MD_CODEC_OPUS, 111, freq[2], false, false), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 0);
    open_leg(f, 1, DP_CODEC_PCMA, 8, false, 0);
    open_leg(f, 2, DP_CODEC_OPUS, 111, false, 0);
    talk(f, 3, 150, false);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            double s = tone_share(&f->p[i], freq[j]);
            if (i == j)
                assert_true(s < 0.02);
            else
                assert_true(s > 0.08);
        }
    }
    const struct dp_media_stats *st = dp_media_stats(f->m);
    assert_int_equal(atomic_load(&st->legs), 3);
    assert_int_equal(atomic_load(&st->conferences), 1);
    assert_true(atomic_load(&st->mixer_ticks) >= 100);
    assert_int_equal(atomic_load(&st->srtp_auth_failures), 0);
}

static void a_tampered_srtp_packet_is_dropped_and_counted_and_a_replay_too(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, true, false), 0);
    assert_int_equal(peer_init(&f->p[1], 1, MD_CODEC_PCMU, 0, 700, true, false), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 0);
    open_leg(f, 1, DP_CODEC_PCMU, 0, false, 0);
    talk(f, 2, 100, false);
    const struct dp_media_stats *st = dp_media_stats(f->m);
    uint64_t in = atomic_load(&st->rtp_in);
    assert_true(in >= 190);
    assert_int_equal(atomic_load(&st->srtp_auth_failures), 0);
    assert_true(f->p[0].rx_audio > 50 && f->p[0].rx_bad == 0);
    assert_true(tone_share(&f->p[0], 700) > 0.2);

    peer_send_audio(&f->p[0], true); /* one byte flipped after protection */
    uint8_t buf[1500];
    size_t len = peer_audio_packet(&f->p[1], buf, sizeof buf, false);
    sendto(f->p[1].fd, buf, len, 0, (struct sockaddr *)&f->p[1].to, sizeof f->p[1].to);
    sendto(f->p[1].fd, buf, len, 0, (struct sockaddr *)&f->p[1].to, sizeof f->p[1].to);
    pump(f, 60);
    assert_int_equal(atomic_load(&st->srtp_auth_failures), 1);
    assert_int_equal(atomic_load(&st->srtp_replays), 1);
}

static void the_loudest_speakers_video_reaches_the_others_continuously_across_a_switch(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, 500 + 300 * i, false, true), 0);
    for (int i = 0; i < 3; i++)
        open_leg(f, i, DP_CODEC_PCMU, 0, true, 0);
    /* A speaks, B and C are silent */
    f->p[1].amp = f->p[2].amp = 0;
    talk(f, 3, 60, true);
    struct dp_media_leg_info info;
    assert_int_equal(dp_media_leg_info(f->m, f->leg[0], &info), 0);
    assert_int_equal(info.dominant_slot, info.video_slot);
    assert_true(f->p[0].plis >= 1); /* asked for a keyframe when it became the speaker */
    unsigned plis_b = f->p[1].plis;
    /* B speaks louder, A goes quiet */
    f->p[0].amp = 0;
    f->p[1].amp = 12000;
    talk(f, 3, 80, true);
    assert_true(f->p[1].plis > plis_b); /* the new speaker was asked for a keyframe */
    assert_int_equal(dp_media_leg_info(f->m, f->leg[1], &info), 0);
    assert_int_equal(info.dominant_slot, info.video_slot);

    /* C saw A then B, as one stream: one SSRC, every sequence number once, in order */
    struct peer *c = &f->p[2];
    assert_true(c->n_vrx > 60);
    assert_int_equal(dp_media_leg_info(f->m, f->leg[2], &info), 0);
    bool saw_a = false, saw_b = false, switched = false;
    for (size_t i = 0; i < c->n_vrx; i++) {
        assert_int_equal(c->vrx_log[i].ssrc, info.video_out_ssrc);
        if (i > 0)
            assert_int_equal((uint16_t)(c->vrx_log[i].seq - c->vrx_log[i - 1].seq), 1);
        if (c->vrx_log[i].src == 0) {
            assert_false(saw_b); /* never back to A once B started */
            saw_a = true;
        }
        if (c->vrx_log[i].src == 1) {
            if (!saw_b)
                assert_true(c->vrx_log[i].keyframe); /* the switch waits for a keyframe */
            saw_b = switched = true;
        }
        assert_int_not_equal(c->vrx_log[i].src, 2); /* never its own */
    }
    assert_true(saw_a && switched);
    /* A (the previous speaker) now sees B; B sees A, the previous one */
    assert_true(f->p[0].n_vrx > 0 && f->p[0].vrx_log[f->p[0].n_vrx - 1].src == 1);
    assert_true(f->p[1].n_vrx > 0 && f->p[1].vrx_log[f->p[1].n_vrx - 1].src == 0);

    /* a NACK from C, in C's numbering, reaches B in B's own numbering */
    const struct peer_video_rx *last = &c->vrx_log[c->n_vrx - 1];
    uint8_t fb[64];
    int n = md_rtcp_build_rr(fb, sizeof fb, 0xc0c0c0c0u, NULL, 0);
    n += md_rtcp_build_nack(fb + n, sizeof fb - (size_t)n, 0xc0c0c0c0u, info.video_out_ssrc,
                            last->seq, 0);
    peer_send_rtcp(c, true, fb, (size_t)n);
    pump(f, 40);
    peer_drain(&f->p[1]);
    assert_int_equal(f->p[1].nacks, 1);
    assert_int_equal(f->p[1].last_nack_pid, last->src_seq);
    assert_int_equal(f->p[1].last_fb_media_ssrc, f->p[1].vout.ssrc);

    /* a PLI from C goes to B too */
    unsigned before = f->p[1].plis;
    n = md_rtcp_build_rr(fb, sizeof fb, 0xc0c0c0c0u, NULL, 0);
    n += md_rtcp_build_pli(fb + n, sizeof fb - (size_t)n, 0xc0c0c0c0u, info.video_out_ssrc);
    peer_send_rtcp(c, true, fb, (size_t)n);
    pump(f, 40);
    peer_drain(&f->p[1]);
    assert_int_equal(f->p[1].plis, before + 1);
    const struct dp_media_stats *st = dp_media_stats(f->m);
    assert_true(atomic_load(&st->video_forwarded) > 100);
    assert_true(atomic_load(&st->speaker_switches) >= 2);
    assert_true(atomic_load(&st->feedback_forwarded) >= 2);
}

static void silence_for_the_timeout_is_reported_once_with_the_owner(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 300);
    talk(f, 1, 10, false); /* 200 ms of audio: no timeout */
    assert_int_equal(f->events, 0);
    pump(f, 700);
    assert_int_equal(f->events, 1);
    assert_ptr_equal(f->last_owner, &f->p[0]);
    pump(f, 400);
    assert_int_equal(f->events, 1);
    assert_int_equal(atomic_load(&dp_media_stats(f->m)->media_timeouts), 1);
}

static void an_rtcp_bye_ends_the_leg_soon_after_its_media_stops(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 60000);
    talk(f, 1, 5, false);
    uint8_t b[64];
    int n = md_rtcp_build_rr(b, sizeof b, f->p[0].out.ssrc, NULL, 0);
    n += md_rtcp_build_bye(b + n, sizeof b - (size_t)n, f->p[0].out.ssrc);
    peer_send_rtcp(&f->p[0], false, b, (size_t)n);
    pump(f, 1500);
    assert_int_equal(f->events, 0);
    pump(f, 900);
    assert_int_equal(f->events, 1);
    assert_int_equal(atomic_load(&dp_media_stats(f->m)->rtcp_byes), 1);
}

static void hold_stops_our_audio_and_resume_brings_it_back(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    assert_int_equal(peer_init(&f->p[1], 1, MD_CODEC_PCMU, 0, 700, false, false), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 0);
    open_leg(f, 1, DP_CODEC_PCMU, 0, false, 0);
    talk(f, 2, 20, false);
    assert_true(f->p[0].rx_audio > 10);
    /* re-INVITE with a=sendonly from peer 0: we only receive */
    struct dp_media_leg_params lp = {.conf_key = 42, .local_address = "127.0.0.1"};
    lp.audio.enabled = true;
    lp.audio.local_port = (uint16_t)ntohs(f->p[0].to.sin_port);
    struct sockaddr_in r = peer_addr(f->p[0].port);
    memcpy(&lp.audio.remote, &r, sizeof r);
    lp.audio.remote_len = sizeof r;
    lp.audio.rtcp_mux = true;
    lp.audio.recv = true;
    lp.audio.codec = DP_CODEC_PCMU;
    lp.audio.te_pt = -1;
    char why[200];
    assert_int_equal(dp_media_leg_update(f->m, f->leg[0], &lp, why, sizeof why), DP_MEDIA_OK);
    pump(f, 60);
    peer_drain(&f->p[0]);
    uint64_t held = f->p[0].rx_audio;
    talk(f, 2, 20, false);
    assert_int_equal(f->p[0].rx_audio, held);
    assert_true(f->p[1].rx_audio > 30); /* the others still hear it */
    lp.audio.send = true;
    assert_int_equal(dp_media_leg_update(f->m, f->leg[0], &lp, why, sizeof why), DP_MEDIA_OK);
    talk(f, 2, 20, false);
    assert_true(f->p[0].rx_audio > held + 10);
}

static void an_offer_without_a_usable_key_is_refused_and_leaves_nothing(void **state)
{
    struct fx *f = *state;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    struct dp_media_leg_params lp = {.conf_key = 1, .local_address = "127.0.0.1"};
    lp.audio.enabled = true;
    lp.audio.local_port = free_pair();
    lp.audio.codec = DP_CODEC_PCMU;
    lp.audio.secure = true;
    static const char bad[] = "1 AES_256_CM_HMAC_SHA1_80 inline:"
                              "d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
    lp.audio.crypto[0] = bad;
    lp.audio.crypto_len[0] = strlen(bad);
    lp.audio.n_crypto = 1;
    uint32_t leg = 0;
    char why[200];
    assert_int_equal(dp_media_leg_open(f->m, &lp, &leg, why, sizeof why), DP_MEDIA_REFUSED);
    assert_non_null(strstr(why, "AES_256_CM_HMAC_SHA1_80"));
    assert_int_equal(leg, 0);
    assert_int_equal(atomic_load(&dp_media_stats(f->m)->legs), 0);
    assert_int_equal(atomic_load(&dp_media_stats(f->m)->conferences), 0);
    /* the port is free again */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = peer_addr(lp.audio.local_port);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    close(s);
}

static void a_taken_port_is_reported_as_such(void **state)
{
    struct fx *f = *state;
    uint16_t port = free_pair();
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = peer_addr(port);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    struct dp_media_leg_params lp = {.conf_key = 1, .local_address = "127.0.0.1"};
    lp.audio.enabled = true;
    lp.audio.local_port = port;
    lp.audio.codec = DP_CODEC_PCMU;
    uint32_t leg = 0;
    char why[200];
    assert_int_equal(dp_media_leg_open(f->m, &lp, &leg, why, sizeof why), DP_MEDIA_PORT_IN_USE);
    close(s);
}

static void a_conference_opened_after_another_closed_carries_nothing_over(void **state)
{
    struct fx *f = *state;
    const struct dp_media_stats *st = dp_media_stats(f->m);
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, 500 + 300 * i, false, true), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, true, 0);
    open_leg(f, 1, DP_CODEC_PCMU, 0, true, 0);
    f->p[1].amp = 0;
    talk(f, 2, 60, true);
    struct dp_media_leg_info info;
    assert_int_equal(dp_media_leg_info(f->m, f->leg[1], &info), 0);
    assert_true(info.dominant_slot >= 0); /* the first room has a speaker and video */
    uint64_t switches = atomic_load(&st->speaker_switches);
    assert_true(switches >= 1);
    /* its last packets are still in the mixer's jitter buffers when it closes */
    peer_send_audio(&f->p[0], false);
    peer_send_audio(&f->p[0], false);
    pump(f, 5);
    dp_media_leg_close(f->m, f->leg[0]);
    dp_media_leg_close(f->m, f->leg[1]);
    assert_int_equal(atomic_load(&st->conferences), 0);
    assert_int_equal(atomic_load(&st->conf_reuses), 0);
    peer_free(&f->p[0]);
    peer_free(&f->p[1]);

    /* another room: it opens on the closed one's memory, and starts empty */
    f->conf_key = 43;
    f->speakers = 1;
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 1100, false, true), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, true, 0);
    assert_int_equal(atomic_load(&st->conf_reuses), 1);
    assert_int_equal(atomic_load(&st->conferences), 1);
    assert_int_equal(dp_media_leg_info(f->m, f->leg[0], &info), 0);
    assert_int_equal(info.mixer_id, 0);
    assert_int_equal(info.video_slot, 0);
    assert_int_equal(info.dominant_slot, -1);
    assert_int_equal(info.audio_in + info.audio_out + info.video_in + info.video_out, 0);
    /* alone in it, it hears silence: nothing of the first room's speaker */
    f->p[0].amp = 0;
    talk(f, 1, 60, false);
    assert_true(f->p[0].rx_audio > 40);
    assert_true(tone_share(&f->p[0], 500) < 0.001);
    for (size_t i = 0; i < f->p[0].n_pcm; i++)
        assert_int_equal(f->p[0].pcm[i], 0);
    assert_int_equal(f->p[0].n_vrx, 0);
    assert_int_equal(atomic_load(&st->speaker_switches), switches);
    /* two more join; it speaks loudest and becomes the room's speaker from scratch
     * (no hysteresis against the first room's), and only it is mixed: this room
     * mixes the loudest one, the first mixed three */
    assert_int_equal(peer_init(&f->p[1], 1, MD_CODEC_PCMU, 0, 1400, false, true), 0);
    assert_int_equal(peer_init(&f->p[2], 2, MD_CODEC_PCMU, 0, 1700, false, true), 0);
    open_leg(f, 1, DP_CODEC_PCMU, 0, true, 0);
    open_leg(f, 2, DP_CODEC_PCMU, 0, true, 0);
    assert_int_equal(atomic_load(&st->conferences), 1);
    f->p[0].amp = 8000;
    f->p[1].amp = 4000;
    f->p[2].amp = 0;
    talk(f, 3, 100, true);
    assert_int_equal(dp_media_leg_info(f->m, f->leg[0], &info), 0);
    assert_int_equal(info.dominant_slot, info.video_slot);
    assert_int_equal(atomic_load(&st->speaker_switches), switches + 1);
    assert_true(tone_share(&f->p[2], 1100) > 0.2);
    assert_true(tone_share(&f->p[2], 1400) < 0.02);
    assert_true(tone_share(&f->p[1], 1100) > 0.2);
    assert_true(tone_share(&f->p[1], 1400) < 0.02);
}

/* Sends `n` audio packets of peer p from a socket of its own (another source address)
 * to port. */
static void send_stray(struct peer *p, uint16_t port, int n)
{
    uint16_t sport;
    int fd = peer_socket(&sport);
    assert_true(fd >= 0);
    struct sockaddr_in to = peer_addr(port);
    for (int i = 0; i < n; i++) {
        uint8_t buf[1500];
        size_t len = peer_audio_packet(p, buf, sizeof buf, false);
        assert_true(len > 0);
        assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&to, sizeof to), (ssize_t)len);
    }
    close(fd);
}

static bool port_bindable(uint16_t port)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = peer_addr(port);
    bool ok = bind(s, (struct sockaddr *)&a, sizeof a) == 0;
    close(s);
    return ok;
}

static void
a_closed_legs_port_is_reused_only_after_it_rested_and_without_what_queued_on_it(void **state)
{
    struct fx *f = *state;
    const struct dp_media_stats *st = dp_media_stats(f->m);
    dp_media_set_port_pool(f->m, 8, 400);
    assert_int_equal(peer_init(&f->p[0], 0, MD_CODEC_PCMU, 0, 400, false, false), 0);
    assert_int_equal(peer_init(&f->p[1], 1, MD_CODEC_PCMU, 0, 700, false, false), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 0);
    f->port = (uint16_t)ntohs(f->p[0].to.sin_port);
    talk(f, 1, 10, false);
    assert_true(f->p[0].rx_audio > 0);
    assert_int_equal(atomic_load(&st->port_binds), 1);
    dp_media_leg_close(f->m, f->leg[0]);
    assert_false(port_bindable(f->port)); /* kept, idle */
    assert_int_equal(dp_media_rested_port(f->m), 0);

    /* a datagram reaching the idle socket is read and dropped */
    uint64_t rtp_in = atomic_load(&st->rtp_in), latches = atomic_load(&st->latches);
    send_stray(&f->p[0], f->port, 1);
    pump(f, 30);
    assert_int_equal(atomic_load(&st->port_idle_drops), 1);
    assert_int_equal(atomic_load(&st->rtp_in), rtp_in);

    /* asked for again before it rested: a new socket, and the stray datagrams queued on
     * the old one go with it */
    send_stray(&f->p[0], f->port, 2);
    open_leg(f, 1, DP_CODEC_PCMU, 0, false, 0);
    assert_int_equal(atomic_load(&st->port_binds), 2);
    assert_int_equal(atomic_load(&st->port_reuses), 0);
    pump(f, 30);
    assert_int_equal(atomic_load(&st->rtp_in), rtp_in);
    assert_int_equal(atomic_load(&st->port_idle_drops), 1);
    dp_media_leg_close(f->m, f->leg[1]);

    /* once it rested: the same socket, emptied of what queued on it meanwhile */
    pump(f, 450);
    assert_int_equal(dp_media_rested_port(f->m), f->port);
    send_stray(&f->p[0], f->port, 3);
    usleep(20000);
    peer_drain(&f->p[1]);
    uint64_t heard = f->p[1].rx_audio;
    open_leg(f, 1, DP_CODEC_PCMU, 0, false, 0);
    assert_int_equal(atomic_load(&st->port_reuses), 1);
    assert_int_equal(atomic_load(&st->port_binds), 2);
    assert_int_equal(atomic_load(&st->port_idle_drops), 1 + 3);
    assert_int_equal(dp_media_rested_port(f->m), 0);
    pump(f, 30);
    struct dp_media_leg_info info;
    assert_int_equal(dp_media_leg_info(f->m, f->leg[1], &info), 0);
    assert_int_equal(info.audio_in, 0);
    assert_int_equal(atomic_load(&st->rtp_in), rtp_in);
    assert_int_equal(atomic_load(&st->latches), latches); /* nothing latched on a stray */
    /* and the new call's media flows both ways on it */
    talk(f, 2, 10, false);
    assert_int_equal(dp_media_leg_info(f->m, f->leg[1], &info), 0);
    assert_true(info.audio_in >= 8);
    assert_true(f->p[1].rx_audio >= heard + 8);
    assert_int_equal(atomic_load(&st->legs), 1);
}

static void idle_sockets_beyond_the_pools_bound_are_closed(void **state)
{
    struct fx *f = *state;
    const struct dp_media_stats *st = dp_media_stats(f->m);
    dp_media_set_port_pool(f->m, 2, 0);
    uint16_t port[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, 400, false, false), 0);
        open_leg(f, i, DP_CODEC_PCMU, 0, false, 0);
        port[i] = (uint16_t)ntohs(f->p[i].to.sin_port);
    }
    for (int i = 0; i < 3; i++)
        dp_media_leg_close(f->m, f->leg[i]);
    /* the oldest made room for the newest */
    assert_true(port_bindable(port[0]));
    assert_false(port_bindable(port[1]));
    assert_false(port_bindable(port[2]));
    assert_int_equal(dp_media_rested_port(f->m), port[1]);
    /* a smaller bound closes the oldest; 0 closes them all (no pool) */
    dp_media_set_port_pool(f->m, 1, 0);
    assert_true(port_bindable(port[1]));
    assert_false(port_bindable(port[2]));
    dp_media_set_port_pool(f->m, 0, 0);
    assert_true(port_bindable(port[2]));
    assert_int_equal(dp_media_rested_port(f->m), 0);
    f->port = port[2];
    open_leg(f, 0, DP_CODEC_PCMU, 0, false, 0);
    dp_media_leg_close(f->m, f->leg[0]);
    assert_true(port_bindable(port[2]));
    assert_int_equal(atomic_load(&st->port_binds), 4);
    assert_int_equal(atomic_load(&st->port_reuses), 0);
}

static void idle_sockets_give_way_when_the_process_is_out_of_descriptors(void **state)
{
    struct fx *f = *state;
    const struct dp_media_stats *st = dp_media_stats(f->m);
    dp_media_set_port_pool(f->m, 8, 0);
    uint16_t port[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, 400, false, false), 0);
        open_leg(f, i, DP_CODEC_PCMU, 0, false, 0);
        port[i] = (uint16_t)ntohs(f->p[i].to.sin_port);
    }
    dp_media_leg_close(f->m, f->leg[0]);
    dp_media_leg_close(f->m, f->leg[1]);
    assert_int_equal(peer_init(&f->p[2], 2, MD_CODEC_PCMU, 0, 400, false, false), 0);
    uint16_t fresh = free_pair();
    /* every descriptor below a lowered limit taken */
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int first = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(first >= 0);
    close(first);
    low = old;
    low.rlim_cur = (rlim_t)first + 16;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[16], n_fill = 0, fd;
    while (n_fill < 16 && (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0)
        fill[n_fill++] = fd;
    assert_int_equal(open("/dev/null", O_RDONLY | O_CLOEXEC), -1);
    /* a new leg still gets its socket: the oldest idle one makes room */
    f->port = fresh;
    open_leg(f, 2, DP_CODEC_PCMU, 0, false, 0);
    for (int i = 0; i < n_fill; i++)
        close(fill[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(atomic_load(&st->port_binds), 3);
    assert_true(port_bindable(port[0]));
    assert_false(port_bindable(port[1]));
    for (int i = 0; i < 3; i++)
        peer_send_audio(&f->p[2], false);
    pump(f, 40);
    struct dp_media_leg_info info;
    assert_int_equal(dp_media_leg_info(f->m, f->leg[2], &info), 0);
    assert_int_equal(info.audio_in, 3);
}

static void a_burst_of_video_reaches_the_receiver_as_the_same_datagrams_in_order(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            peer_init(&f->p[i], (uint8_t)i, MD_CODEC_PCMU, 0, 500 + 300 * i, false, true), 0);
    open_leg(f, 0, DP_CODEC_PCMU, 0, true, 0);
    open_leg(f, 1, DP_CODEC_PCMU, 0, true, 0);
    f->p[1].amp = 0;
    talk(f, 2, 60, true); /* peer 0 speaks: peer 1 sees its video */
    assert_true(f->p[1].n_vrx > 0 && f->p[1].vrx_log[f->p[1].n_vrx - 1].src == 0);
    /* runs of equal sizes, a shorter one ending a run, a longer one starting the next:
     * sent back to back, they reach the node's socket together */
    static const size_t sizes[] = {40, 40, 40, 40, 40,   40,   40,   40,   20, 60, 60, 60,
                                   60, 60, 30, 30, 1000, 1000, 1000, 1000, 5,  40, 40, 40};
    enum { N = sizeof sizes / sizeof sizes[0] };
    size_t before = f->p[1].n_vrx;
    uint16_t first_src_seq = f->p[0].vout.seq;
    for (int i = 0; i < N; i++)
        peer_send_video_len(&f->p[0], sizes[i]);
    pump(f, 40);
    peer_drain(&f->p[1]);
    assert_int_equal(f->p[1].n_vrx - before, N);
    assert_int_equal(f->p[1].rx_bad, 0);
    for (int i = 0; i < N; i++) {
        const struct peer_video_rx *v = &f->p[1].vrx_log[before + (size_t)i];
        assert_int_equal(v->src, 0);
        assert_int_equal(v->src_seq, (uint16_t)(first_src_seq + i));
        assert_int_equal(v->len, sizes[i]);
        if (i > 0)
            assert_int_equal((uint16_t)(v->seq - v[-1].seq), 1);
    }
    assert_int_equal(atomic_load(&dp_media_stats(f->m)->drop_send), 0);
}

int main(void)
{
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(each_participant_hears_the_others_and_not_itself, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_tampered_srtp_packet_is_dropped_and_counted_and_a_replay_too, setup, teardown),
        cmocka_unit_test_setup_teardown(
            the_loudest_speakers_video_reaches_the_others_continuously_across_a_switch, setup,
            teardown),
        cmocka_unit_test_setup_teardown(silence_for_the_timeout_is_reported_once_with_the_owner,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(an_rtcp_bye_ends_the_leg_soon_after_its_media_stops, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(hold_stops_our_audio_and_resume_brings_it_back, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(an_offer_without_a_usable_key_is_refused_and_leaves_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_taken_port_is_reported_as_such, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_conference_opened_after_another_closed_carries_nothing_over, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_closed_legs_port_is_reused_only_after_it_rested_and_without_what_queued_on_it, setup,
            teardown),
        cmocka_unit_test_setup_teardown(idle_sockets_beyond_the_pools_bound_are_closed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            idle_sockets_give_way_when_the_process_is_out_of_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_burst_of_video_reaches_the_receiver_as_the_same_datagrams_in_order, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
