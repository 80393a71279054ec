/* Conferences of a worker's media sessions: the mixer and the video switcher of a
 * room, the mix sent to each listener every tick, video fanned out to receivers. */
#include "dp_media_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- conferences ---- */
struct conf *dpm_conf_find(struct dp_media *m, uint64_t key)
{
    for (unsigned i = 0; i < m->n_confs; i++)
        if (m->conf_list[i]->key == key)
            return m->conf_list[i];
    return NULL;
}

/* Puts a conference in its just-opened state for key, with a mixer set for `speakers`
 * (c->mx kept). Returns MD_OK or the mixer's MD_ERR_PARAM. */
static md_status_t conf_init(struct conf *c, uint64_t key, unsigned speakers)
{
    struct md_mixer_cfg cfg = {.n_speakers = speakers};
    md_status_t st = c->mx ? md_mixer_reset(c->mx, &cfg) : md_mixer_create(&c->mx, &cfg);
    if (st != MD_OK)
        return st;
    struct md_mixer *mx = c->mx;
    memset(c, 0, sizeof *c);
    c->mx = mx;
    c->key = key;
    md_vswitch_init(&c->vs, 0);
    for (int i = 0; i < MD_MIX_MAX_PARTIES; i++)
        c->mix_to_slot[i] = -1;
    return MD_OK;
}

struct conf *dpm_conf_open(struct dp_media *m, uint64_t key, unsigned speakers, char *why,
                           size_t whylen)
{
    if (m->n_confs >= DP_MEDIA_MAX_CONFS) {
        dpm_set_why(why, whylen, "Too many conferences on worker %u", m->worker);
        return NULL;
    }
    struct conf *c;
    if (m->n_conf_spare) { /* the most recently closed: its memory is the warmest */
        c = m->conf_spare[m->n_conf_spare - 1];
        if (conf_init(c, key, speakers) != MD_OK) {
            dpm_set_why(why, whylen, "Out of memory for a conference");
            return NULL;
        }
        m->n_conf_spare--;
        st_add(&m->st.conf_reuses, 1);
    } else {
        c = calloc(1, sizeof *c);
        if (!c || conf_init(c, key, speakers) != MD_OK) {
            free(c);
            dpm_set_why(why, whylen, "Out of memory for a conference");
            return NULL;
        }
    }
    c->list_pos = m->n_confs;
    m->conf_list[m->n_confs++] = c;
    st_add(&m->st.conferences, 1);
    return c;
}

/* A conference without legs: kept with its mixer for the next one while there are
 * fewer than CONF_SPARE spare, freed otherwise. */
static void conf_close(struct dp_media *m, struct conf *c)
{
    struct conf *last = m->conf_list[--m->n_confs];
    m->conf_list[c->list_pos] = last;
    last->list_pos = c->list_pos;
    st_sub(&m->st.conferences, 1);
    if (m->n_conf_spare < CONF_SPARE) {
        m->conf_spare[m->n_conf_spare++] = c;
        return;
    }
    md_mixer_free(c->mx);
    free(c);
}

void dpm_conf_spares_free(struct dp_media *m)
{
    while (m->n_conf_spare) {
        struct conf *c = m->conf_spare[--m->n_conf_spare];
        md_mixer_free(c->mx);
        free(c);
    }
}

/* Takes the leg out of its conference (and the conference away with its last leg). */
void dpm_conf_leave(struct dp_media *m, struct leg *l)
{
    struct conf *c = l->conf;
    if (!c)
        return;
    if (l->mix_id >= 0) {
        md_mixer_remove(c->mx, l->mix_id);
        c->mix_to_slot[l->mix_id] = -1;
    }
    if (l->slot >= 0) {
        md_vswitch_remove(&c->vs, l->slot);
        c->slot[l->slot] = NULL;
        c->n--;
    }
    l->conf = NULL;
    l->slot = l->mix_id = -1;
    if (c->n == 0)
        conf_close(m, c);
}

void dpm_forward_video(struct dp_media *m, struct leg *l, const struct md_rtp *h,
                       const uint8_t *pkt, size_t len, uint64_t now_ms)
{
    struct conf *c = l->conf;
    bool kf = md_video_is_keyframe(l->v.codec == DP_CODEC_H264 ? MD_VIDEO_H264 : MD_VIDEO_VP8,
                                   h->payload, h->payload_len);
    for (int r = 0; r < CONF_LEGS; r++) {
        struct leg *rl = c->slot[r];
        if (!rl || rl == l || !rl->v.on || !rl->v.send || !rl->v.rem_len ||
            rl->v.codec != l->v.codec || !md_vswitch_wants(&c->vs, r, l->slot))
            continue;
        uint8_t *o = dpm_tx_slot(m);
        if (!o)
            return;
        if (len > dpm_tx_room(m)) {
            st_add(&m->st.drop_send, 1);
            continue;
        }
        memcpy(o, pkt, len);
        if (md_vswitch_forward(&c->vs, r, l->slot, h, o, kf, now_ms) != MD_OK)
            continue;
        if (rl->v.pt != l->v.pt)
            md_rtp_set_pt(o, rl->v.pt);
        size_t olen = len;
        if (rl->v.secure && dpm_srtp_failed(m, md_srtp_protect(rl->v.out, o, &olen, m->tx_cap)))
            continue;
        rl->v.vout_packets++;
        rl->v.vout_octets += (uint32_t)h->payload_len;
        rl->v.out_pkts++;
        dpm_tx_commit(m, &rl->v, false, &rl->v.rem, rl->v.rem_len, olen);
        st_add(&m->st.video_forwarded, 1);
        st_add(&m->st.rtp_out, 1);
    }
}

/* ---- per tick ---- */
/* One tick of conference c at the grid time tick_us (the mixer's clock stays on the
 * grid, so every conference of the worker ticks together); late says the worker
 * reached it more than half a tick after that time. */
void dpm_conf_tick(struct dp_media *m, struct conf *c, uint64_t tick_us, bool late)
{
    uint64_t now_ms = tick_us / 1000u;
    int changed = md_mixer_tick(c->mx, tick_us);
    st_add(&m->st.mixer_ticks, 1);
    for (int i = 0; i < CONF_LEGS; i++) {
        struct leg *l = c->slot[i];
        if (!l)
            continue;
        struct stream *s = &l->a;
        const uint8_t *pl;
        int n = md_mixer_output(c->mx, l->mix_id, &pl);
        if (n <= 0 || !s->send || !s->rem_len)
            continue;
        uint8_t *o = dpm_tx_slot(m);
        if (!o)
            break;
        if ((size_t)n >= dpm_tx_room(m))
            continue;
        int h = md_rtp_out_header(&s->aout, o, dpm_tx_room(m) - (size_t)n, false,
                                  md_codec_ts_step(dpm_codec_of(s->codec)), (size_t)n);
        if (h < 0)
            continue;
        memcpy(o + h, pl, (size_t)n);
        size_t len = (size_t)h + (size_t)n;
        if (s->secure && dpm_srtp_failed(m, md_srtp_protect(s->out, o, &len, m->tx_cap)))
            continue;
        s->out_pkts++;
        dpm_tx_commit(m, s, false, &s->rem, s->rem_len, len);
        st_add(&m->st.rtp_out, 1);
    }
    if (changed) {
        int dom = md_mixer_dominant(c->mx);
        if (dom >= 0 && c->mix_to_slot[dom] >= 0) {
            md_vswitch_set_speaker(&c->vs, c->mix_to_slot[dom], now_ms);
            st_add(&m->st.speaker_switches, 1);
        }
    }
    struct md_kf_req req[8];
    size_t nreq = md_vswitch_poll_requests(&c->vs, now_ms, req, 8);
    for (size_t i = 0; i < nreq; i++)
        if (req[i].src >= 0 && req[i].src < CONF_LEGS && c->slot[req[i].src])
            dpm_keyframe_request(m, c->slot[req[i].src], req[i].type);
    const struct md_mixer_stats *ms = md_mixer_stats(c->mx);
    if (ms->overrun_slow > c->slow_seen) { /* the tick itself took over its budget */
        st_add(&m->st.mixer_overruns, ms->overrun_slow - c->slow_seen);
        c->slow_seen = ms->overrun_slow;
    }
    if (late) {
        st_add(&m->st.mixer_overruns, 1);
        st_add(&m->st.mixer_late, 1);
    }
}

/* Timeouts and RTCP reports. Timeouts are reported after the walk, each re-checked,
 * since the owner closes legs from its callback. */
