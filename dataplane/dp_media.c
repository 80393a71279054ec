/* Media sessions of one worker (see dp_media.h for the design): lifecycle, legs,
 * SDES keys, the timer and housekeeping. The other parts are listed in dp_media_int.h. */
#include "dp_media_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cn_log.h"
#include "md_sdes.h"

void dpm_set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static uint32_t rand32(void)
{
    uint32_t v;
    if (getrandom(&v, sizeof v, 0) != sizeof v)
        v = (uint32_t)mono_us() * 2654435761u;
    return v;
}

md_codec_id_t dpm_codec_of(dp_media_codec_t c)
{
    return c == DP_CODEC_PCMA ? MD_CODEC_PCMA : c == DP_CODEC_OPUS ? MD_CODEC_OPUS : MD_CODEC_PCMU;
}

static struct leg *leg_get(const struct dp_media *m, uint32_t id)
{
    uint32_t idx = id & 0xffff;
    if (id == 0 || idx >= DP_MEDIA_MAX_LEGS)
        return NULL;
    struct leg *l = m->legs[idx];
    return l && l->id == id ? l : NULL;
}

/* ---- timer ---- */
static void timer_arm(struct dp_media *m, uint64_t at_us)
{
    if (at_us == m->armed_us)
        return;
    struct itimerspec its = {0};
    if (at_us) {
        its.it_value.tv_sec = (time_t)(at_us / 1000000u);
        its.it_value.tv_nsec = (long)(at_us % 1000000u) * 1000;
    }
    timerfd_settime(m->tfd, TFD_TIMER_ABSTIME, &its, NULL);
    m->armed_us = at_us;
}

/* The next tick (all conferences share one 20 ms grid per worker: one wake-up per
 * tick however many they are) or the next housekeeping pass, whichever is first. */
static void timer_rearm(struct dp_media *m, uint64_t now_us)
{
    if (m->n_legs == 0) {
        timer_arm(m, 0);
        return;
    }
    uint64_t at = m->next_housekeep_ms * 1000u;
    if (m->n_confs && (m->grid_us == 0 || m->grid_us < at))
        at = m->grid_us ? m->grid_us : now_us;
    if (at <= now_us)
        at = now_us + 1; /* an absolute time in the past fires at once */
    timer_arm(m, at);
}

/* ---- SDES keys ---- */

/* The offered suite names, for a refusal. */
static void offered_suites(const struct dp_media_stream_params *sp, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (unsigned i = 0; i < sp->n_crypto && n + 2 < cap; i++) {
        const char *s = sp->crypto[i];
        size_t len = sp->crypto_len[i], a = 0;
        if (len > 9 && strncmp(s, "a=crypto:", 9) == 0)
            a = 9;
        while (a < len && s[a] != ' ') /* tag */
            a++;
        while (a < len && s[a] == ' ')
            a++;
        size_t b = a;
        while (b < len && s[b] != ' ' && (unsigned char)s[b] > 0x20 && s[b] != '"' && s[b] != '\\')
            b++;
        int k = snprintf(out + n, cap - n, "%s%.*s", n ? " " : "", (int)(b - a), s + a);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

/* New SRTP contexts for a secure stream: the first offered a=crypto value that parses
 * and whose suite we have; our answer has the same tag and suite and fresh keys.
 * *same is set (and nothing created) when `cur` already uses one of the offered
 * values. */
static int crypto_prepare(const struct dp_media_stream_params *sp, const struct stream *cur,
                          struct md_srtp **in, struct md_srtp **out, char *offer_line,
                          char *answer_line, bool *same, char *why, size_t whylen)
{
    *in = *out = NULL;
    *same = false;
    if (!sp->secure)
        return DP_MEDIA_OK;
    for (unsigned i = 0; i < sp->n_crypto && i < DP_MEDIA_MAX_CRYPTO; i++) {
        const char *line = sp->crypto[i];
        size_t len = sp->crypto_len[i];
        if (!line || len == 0 || len >= DP_MEDIA_CRYPTO_MAX)
            continue;
        if (cur && cur->secure && cur->in && strlen(cur->offer_line) == len &&
            memcmp(cur->offer_line, line, len) == 0) {
            *same = true;
            return DP_MEDIA_OK;
        }
    }
    for (unsigned i = 0; i < sp->n_crypto && i < DP_MEDIA_MAX_CRYPTO; i++) {
        const char *line = sp->crypto[i];
        size_t len = sp->crypto_len[i];
        if (!line || len == 0 || len >= DP_MEDIA_CRYPTO_MAX)
            continue;
        struct md_crypto theirs, ours;
        if (md_sdes_parse(line, len, &theirs) != MD_OK || !md_srtp_suite_supported(theirs.suite))
            continue;
        memset(&ours, 0, sizeof ours);
        ours.tag = theirs.tag;
        ours.suite = theirs.suite;
        bool ok = md_srtp_create(in, &theirs, MD_SRTP_INBOUND) == MD_OK &&
                  md_crypto_keygen(&ours) == MD_OK &&
                  md_srtp_create(out, &ours, MD_SRTP_OUTBOUND) == MD_OK &&
                  md_sdes_format(answer_line, DP_MEDIA_CRYPTO_MAX, &ours) > 0;
        explicit_bzero(&theirs, sizeof theirs);
        explicit_bzero(&ours, sizeof ours);
        if (ok) {
            memcpy(offer_line, line, len);
            offer_line[len] = 0;
            return DP_MEDIA_OK;
        }
        md_srtp_free(*in);
        md_srtp_free(*out);
        *in = *out = NULL;
    }
    char list[120];
    offered_suites(sp, list, sizeof list);
    dpm_set_why(why, whylen, "No a=crypto line with a suite we support (offered: %s)",
                list[0] ? list : "none");
    return DP_MEDIA_REFUSED;
}

/* ---- legs ---- */
/* keep: its sockets may serve a later leg (see dpm_stream_close). */
static void leg_free(struct dp_media *m, struct leg *l, bool keep)
{
    dpm_conf_leave(m, l);
    dpm_stream_close(m, &l->a, keep);
    dpm_stream_close(m, &l->v, keep);
    uint32_t idx = l->id & 0xffff;
    if (m->legs[idx] == l) {
        m->legs[idx] = NULL;
        m->gen[idx]++;
        m->n_legs--;
        st_sub(&m->st.legs, 1);
    }
    explicit_bzero(l, sizeof *l);
    free(l);
}

static bool codec_ok(const struct dp_media_stream_params *sp, bool audio)
{
    if (audio)
        return sp->codec == DP_CODEC_PCMU || sp->codec == DP_CODEC_PCMA ||
               sp->codec == DP_CODEC_OPUS;
    return sp->codec == DP_CODEC_H264 || sp->codec == DP_CODEC_VP8;
}

static bool port_ok(const struct dp_media_stream_params *sp)
{
    return sp->local_port != 0 && (sp->local_port & 1) == 0 && sp->local_port != 0xfffe;
}

/* Copies the negotiated, non-key part of sp into s. */
static void stream_take(struct stream *s, const struct dp_media_stream_params *sp, bool audio)
{
    s->on = true;
    s->audio = audio;
    s->send = sp->send;
    s->recv = sp->recv;
    s->secure = sp->secure;
    s->codec = sp->codec;
    s->pt = sp->pt;
    s->te_pt = audio ? sp->te_pt : -1;
    s->opus_bitrate = sp->opus_bitrate;
    if (sp->remote_len > 0 && sp->remote_len <= sizeof s->rem) {
        s->rem = sp->remote;
        s->rem_rtcp = sp->rtcp_mux ? sp->remote : sp->remote_rtcp;
        s->rem_len = sp->remote_len;
    } else {
        s->rem_len = 0;
    }
    s->aout.pt = sp->pt;
}

static void stream_init_fresh(struct stream *s, const struct dp_media_stream_params *sp, bool audio,
                              uint64_t now_ms)
{
    memset(s, 0, sizeof *s);
    s->fd[0] = s->fd[1] = -1;
    s->sk[0] = s->sk[1] = -1;
    s->port = sp->local_port;
    s->mux = sp->rtcp_mux;
    stream_take(s, sp, audio);
    s->aout.ssrc = rand32();
    s->aout.seq = (uint16_t)rand32();
    s->aout.ts = rand32();
    s->vout_ssrc = rand32();
    s->next_rtcp_ms = now_ms + 1000 + rand32() % RTCP_INTERVAL_MS;
}

int dp_media_leg_open(struct dp_media *m, struct dp_media_leg_params *p, uint32_t *leg, char *why,
                      size_t whylen)
{
    if (why && whylen)
        why[0] = 0;
    *leg = 0;
    if (!p || !p->local_address || !p->audio.enabled || !codec_ok(&p->audio, true) ||
        !port_ok(&p->audio) ||
        (p->video.enabled && (!codec_ok(&p->video, false) || !port_ok(&p->video)))) {
        dpm_set_why(why, whylen, "Bad media parameters");
        return DP_MEDIA_PARAM;
    }
    p->audio.crypto_answer[0] = 0;
    p->video.crypto_answer[0] = 0;
    uint32_t idx = DP_MEDIA_MAX_LEGS;
    for (uint32_t i = 0; i < DP_MEDIA_MAX_LEGS; i++)
        if (!m->legs[(m->n_legs + i) % DP_MEDIA_MAX_LEGS]) {
            idx = (m->n_legs + i) % DP_MEDIA_MAX_LEGS;
            break;
        }
    if (idx == DP_MEDIA_MAX_LEGS) {
        dpm_set_why(why, whylen, "No media session free on worker %u", m->worker);
        return DP_MEDIA_BUSY;
    }
    struct leg *l = calloc(1, sizeof *l);
    if (!l) {
        dpm_set_why(why, whylen, "Out of memory for a media session");
        return DP_MEDIA_BUSY;
    }
    uint64_t now_ms = mono_us() / 1000u;
    if (m->gen[idx] == 0)
        m->gen[idx] = 1;
    l->id = (uint32_t)m->gen[idx] << 16 | idx;
    l->owner = p->owner;
    l->slot = l->mix_id = -1;
    l->timeout_ms = p->timeout_ms;
    l->last_rx_ms = now_ms;
    stream_init_fresh(&l->a, &p->audio, true, now_ms);
    l->v.fd[0] = l->v.fd[1] = -1;
    l->v.sk[0] = l->v.sk[1] = -1;
    m->legs[idx] = l;
    m->n_legs++;
    st_add(&m->st.legs, 1);

    bool same;
    int rc = crypto_prepare(&p->audio, NULL, &l->a.in, &l->a.out, l->a.offer_line, l->a.answer_line,
                            &same, why, whylen);
    if (rc != DP_MEDIA_OK)
        goto fail;
    if (p->video.enabled) {
        stream_init_fresh(&l->v, &p->video, false, now_ms);
        rc = crypto_prepare(&p->video, NULL, &l->v.in, &l->v.out, l->v.offer_line, l->v.answer_line,
                            &same, why, whylen);
        if (rc != DP_MEDIA_OK)
            goto fail;
    }
    struct conf *c = dpm_conf_find(m, p->conf_key);
    if (c && c->n >= CONF_LEGS) {
        dpm_set_why(why, whylen, "Conference full (%d participants)", CONF_LEGS);
        rc = DP_MEDIA_BUSY;
        goto fail;
    }
    rc = dpm_stream_sockets(m, &l->a, idx, K_ARTP, p->local_address, why, whylen);
    if (rc == DP_MEDIA_OK && l->v.on)
        rc = dpm_stream_sockets(m, &l->v, idx, K_VRTP, p->local_address, why, whylen);
    if (rc != DP_MEDIA_OK)
        goto fail;
    if (!c && !(c = dpm_conf_open(m, p->conf_key, p->speakers, why, whylen))) {
        rc = DP_MEDIA_BUSY;
        goto fail;
    }
    int slot = 0;
    while (slot < CONF_LEGS && c->slot[slot])
        slot++;
    c->slot[slot] = l;
    c->n++;
    l->conf = c;
    l->slot = slot;
    int mid = md_mixer_add(c->mx, dpm_codec_of(l->a.codec), l->a.opus_bitrate);
    if (mid < 0) {
        dpm_set_why(why, whylen, "Mixer: %s", md_status_str(mid));
        rc = DP_MEDIA_BUSY;
        goto fail;
    }
    l->mix_id = mid;
    c->mix_to_slot[mid] = slot;
    if (l->v.on)
        md_vswitch_add(&c->vs, slot, l->v.vout_ssrc);
    memcpy(p->audio.crypto_answer, l->a.answer_line, DP_MEDIA_CRYPTO_MAX);
    memcpy(p->video.crypto_answer, l->v.answer_line, DP_MEDIA_CRYPTO_MAX);
    *leg = l->id;
    timer_rearm(m, mono_us());
    return DP_MEDIA_OK;
fail:
    leg_free(m, l, false);
    timer_rearm(m, mono_us());
    return rc;
}

int dp_media_leg_update(struct dp_media *m, uint32_t id, struct dp_media_leg_params *p, char *why,
                        size_t whylen)
{
    if (why && whylen)
        why[0] = 0;
    struct leg *l = leg_get(m, id);
    if (!l || !l->conf) {
        dpm_set_why(why, whylen, "No such media session");
        return DP_MEDIA_PARAM;
    }
    if (!p || !p->audio.enabled || !codec_ok(&p->audio, true) || p->audio.local_port != l->a.port ||
        p->audio.rtcp_mux != l->a.mux ||
        (p->video.enabled &&
         (!codec_ok(&p->video, false) || !port_ok(&p->video) ||
          (l->v.on && (p->video.local_port != l->v.port || p->video.rtcp_mux != l->v.mux))))) {
        dpm_set_why(why, whylen, "Bad media parameters");
        return DP_MEDIA_PARAM;
    }
    struct conf *c = l->conf;
    uint64_t now_ms = mono_us() / 1000u;
    struct md_srtp *ain = NULL, *aout = NULL, *vin = NULL, *vout = NULL;
    char aoffer[DP_MEDIA_CRYPTO_MAX], aans[DP_MEDIA_CRYPTO_MAX];
    char voffer[DP_MEDIA_CRYPTO_MAX], vans[DP_MEDIA_CRYPTO_MAX];
    bool asame = false, vsame = false;
    struct stream nv;
    bool new_video = p->video.enabled && !l->v.on;
    int new_mix = -1;
    int rc = crypto_prepare(&p->audio, &l->a, &ain, &aout, aoffer, aans, &asame, why, whylen);
    if (rc == DP_MEDIA_OK && p->video.enabled)
        rc = crypto_prepare(&p->video, l->v.on ? &l->v : NULL, &vin, &vout, voffer, vans, &vsame,
                            why, whylen);
    if (rc != DP_MEDIA_OK)
        goto fail;
    if (new_video) {
        stream_init_fresh(&nv, &p->video, false, now_ms);
        rc = dpm_stream_sockets(m, &nv, l->id & 0xffff, K_VRTP, p->local_address, why, whylen);
        if (rc != DP_MEDIA_OK)
            goto fail;
    }
    if (p->audio.codec != l->a.codec || p->audio.opus_bitrate != l->a.opus_bitrate) {
        new_mix = md_mixer_add(c->mx, dpm_codec_of(p->audio.codec), p->audio.opus_bitrate);
        if (new_mix < 0) {
            dpm_set_why(why, whylen, "Mixer: %s", md_status_str(new_mix));
            rc = DP_MEDIA_BUSY;
            if (new_video)
                dpm_stream_close(m, &nv, false);
            goto fail;
        }
    }
    /* commit: nothing below fails */
    if (new_mix >= 0) {
        md_mixer_remove(c->mx, l->mix_id);
        c->mix_to_slot[l->mix_id] = -1;
        l->mix_id = new_mix;
        c->mix_to_slot[new_mix] = l->slot;
    }
    bool was_secure = l->a.secure;
    stream_take(&l->a, &p->audio, true);
    if (!asame || !p->audio.secure || !was_secure) {
        md_srtp_free(l->a.in);
        md_srtp_free(l->a.out);
        l->a.in = ain;
        l->a.out = aout;
        ain = aout = NULL;
        if (l->a.in) {
            memcpy(l->a.offer_line, aoffer, sizeof aoffer);
            memcpy(l->a.answer_line, aans, sizeof aans);
        } else {
            l->a.offer_line[0] = l->a.answer_line[0] = 0;
        }
    }
    if (!p->video.enabled && l->v.on) {
        md_vswitch_remove(&c->vs, l->slot);
        dpm_stream_close(m, &l->v, true);
    } else if (new_video) {
        l->v = nv;
        l->v.in = vin;
        l->v.out = vout;
        vin = vout = NULL;
        if (l->v.in) {
            memcpy(l->v.offer_line, voffer, sizeof voffer);
            memcpy(l->v.answer_line, vans, sizeof vans);
        }
        md_vswitch_add(&c->vs, l->slot, l->v.vout_ssrc);
    } else if (p->video.enabled) {
        bool vwas = l->v.secure;
        stream_take(&l->v, &p->video, false);
        if (!vsame || !p->video.secure || !vwas) {
            md_srtp_free(l->v.in);
            md_srtp_free(l->v.out);
            l->v.in = vin;
            l->v.out = vout;
            vin = vout = NULL;
            if (l->v.in) {
                memcpy(l->v.offer_line, voffer, sizeof voffer);
                memcpy(l->v.answer_line, vans, sizeof vans);
            } else {
                l->v.offer_line[0] = l->v.answer_line[0] = 0;
            }
        }
    }
    l->last_rx_ms = now_ms; /* a new direction starts the timeout afresh */
    l->reported = false;
    l->timeout_ms = p->timeout_ms;
    memcpy(p->audio.crypto_answer, l->a.answer_line, DP_MEDIA_CRYPTO_MAX);
    p->video.crypto_answer[0] = 0;
    if (l->v.on)
        memcpy(p->video.crypto_answer, l->v.answer_line, DP_MEDIA_CRYPTO_MAX);
    rc = DP_MEDIA_OK;
fail:
    md_srtp_free(ain);
    md_srtp_free(aout);
    md_srtp_free(vin);
    md_srtp_free(vout);
    explicit_bzero(aans, sizeof aans);
    explicit_bzero(vans, sizeof vans);
    return rc;
}

void dp_media_leg_close(struct dp_media *m, uint32_t id)
{
    struct leg *l = leg_get(m, id);
    if (!l)
        return;
    leg_free(m, l, true);
    timer_rearm(m, mono_us());
}

static void housekeep(struct dp_media *m, uint64_t now_ms)
{
    uint32_t due[MAX_EVENTS];
    unsigned n_due = 0;
    for (uint32_t i = 0; i < DP_MEDIA_MAX_LEGS; i++) {
        struct leg *l = m->legs[i];
        if (!l || !l->conf)
            continue;
        struct stream *ss[2] = {&l->a, &l->v};
        for (int k = 0; k < 2; k++)
            if (ss[k]->on && now_ms >= ss[k]->next_rtcp_ms) {
                dpm_rtcp_report(m, l, ss[k], now_ms);
                ss[k]->next_rtcp_ms = now_ms + RTCP_INTERVAL_MS;
            }
        if (l->reported || n_due == MAX_EVENTS)
            continue;
        bool expect = (l->a.on && l->a.recv) || (l->v.on && l->v.recv);
        uint64_t silent = now_ms > l->last_rx_ms ? now_ms - l->last_rx_ms : 0;
        bool bye_gone =
            l->bye_ms && l->last_rx_ms <= l->bye_ms && now_ms - l->bye_ms >= BYE_GRACE_MS;
        if ((expect && l->timeout_ms && silent >= l->timeout_ms) || bye_gone) {
            l->reported = true;
            due[n_due++] = l->id;
        }
    }
    dpm_tx_flush(m);
    for (unsigned i = 0; i < n_due; i++) {
        struct leg *l = leg_get(m, due[i]);
        if (!l)
            continue;
        st_add(&m->st.media_timeouts, 1);
        cn_log(CN_LOG_INFO, "media_timeout", "worker=%u leg=%u port=%u silent_ms=%llu rtcp_bye=%d",
               m->worker, l->id, l->a.port, (unsigned long long)(now_ms - l->last_rx_ms),
               l->bye_ms != 0);
        if (m->ev_fn)
            m->ev_fn(m->ev_ctx, l->owner, DP_MEDIA_EV_TIMEOUT, now_ms);
    }
}

static void on_timer(struct dp_media *m)
{
    uint64_t v;
    ssize_t r = read(m->tfd, &v, sizeof v);
    (void)r;
    m->armed_us = 0;
    uint64_t now_us = mono_us();
    if (m->n_confs && (m->grid_us == 0 || now_us + 500 >= m->grid_us)) {
        uint64_t tick = m->grid_us ? m->grid_us : now_us;
        if (now_us >= tick + TICK_US) { /* whole ticks behind: they are lost, and counted */
            uint64_t missed = (now_us - tick) / TICK_US * m->n_confs;
            st_add(&m->st.mixer_overruns, missed);
            st_add(&m->st.mixer_late, missed);
            tick = now_us;
        }
        bool late = now_us > tick + TICK_US / 2;
        for (unsigned i = 0; i < m->n_confs; i++)
            dpm_conf_tick(m, m->conf_list[i], tick, late);
        m->grid_us = tick + TICK_US;
    } else if (!m->n_confs) {
        m->grid_us = 0;
    }
    dpm_tx_flush(m);
    uint64_t now_ms = now_us / 1000u;
    if (now_ms >= m->next_housekeep_ms) {
        m->next_housekeep_ms = now_ms + HOUSEKEEP_MS;
        housekeep(m, now_ms);
    }
    timer_rearm(m, mono_us());
}

void dp_media_event(struct dp_media *m, uint32_t value, uint32_t events)
{
    (void)events;
    if (value == TIMER_VALUE) {
        on_timer(m);
        return;
    }
    if (value & SOCK_VALUE)
        dpm_sock_event(m, value & ~SOCK_VALUE);
}

/* ---- lifecycle ---- */
struct dp_media *dp_media_create(unsigned worker, int epfd, uint32_t ev_tag)
{
    struct dp_media *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->worker = worker;
    m->epfd = epfd;
    m->tag = ev_tag;
    snprintf(m->cname, sizeof m->cname, "confnode-w%u", worker);
    m->sk_free = m->idle_head = m->idle_tail = SOCK_NONE;
    m->idle_max = SOCK_IDLE_MAX;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 32 < m->idle_max)
        m->idle_max = (uint32_t)(rl.rlim_cur / 32);
    m->rest_ms = SOCK_REST_MS;
    m->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)ev_tag << 32 | TIMER_VALUE};
    if (m->tfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, m->tfd, &ev) != 0) {
        if (m->tfd >= 0)
            close(m->tfd);
        free(m);
        return NULL;
    }
    for (unsigned i = 0; i < RX_BATCH; i++) {
        m->rx.iov[i].iov_base = m->rx.buf[i];
        m->rx.iov[i].iov_len = RX_MAX;
        m->rx.msgs[i].msg_hdr.msg_name = &m->rx.addr[i];
        m->rx.msgs[i].msg_hdr.msg_iov = &m->rx.iov[i];
        m->rx.msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return m;
}

void dp_media_free(struct dp_media *m)
{
    if (!m)
        return;
    /* the packet I/O backend has flushed and may be gone by now (the worker stopped):
     * the legs only forget their ports */
    m->io = NULL;
    dpm_tx_flush(m);
    for (uint32_t i = 0; i < DP_MEDIA_MAX_LEGS; i++)
        if (m->legs[i])
            leg_free(m, m->legs[i], false);
    dpm_conf_spares_free(m);
    dpm_sockets_free(m);
    epoll_ctl(m->epfd, EPOLL_CTL_DEL, m->tfd, NULL);
    close(m->tfd);
    free(m);
}

void dp_media_set_events(struct dp_media *m, dp_media_event_fn fn, void *ctx)
{
    m->ev_fn = fn;
    m->ev_ctx = ctx;
}

const struct dp_media_stats *dp_media_stats(const struct dp_media *m)
{
    return &m->st;
}

int dp_media_leg_info(const struct dp_media *m, uint32_t id, struct dp_media_leg_info *out)
{
    const struct leg *l = leg_get(m, id);
    if (!l || !l->conf)
        return -1;
    memset(out, 0, sizeof *out);
    out->mixer_id = l->mix_id;
    out->video_slot = l->v.on ? l->slot : -1;
    out->audio_out_ssrc = l->a.aout.ssrc;
    out->video_out_ssrc = l->v.on ? l->v.vout_ssrc : 0;
    out->audio_in_ssrc = l->a.rx.have ? l->a.rx.ssrc : 0;
    out->video_in_ssrc = l->v.rx.have ? l->v.rx.ssrc : 0;
    out->audio_in = l->a.in_pkts;
    out->video_in = l->v.in_pkts;
    out->audio_out = l->a.out_pkts;
    out->video_out = l->v.out_pkts;
    out->dominant_slot = l->conf->vs.speaker;
    return 0;
}
