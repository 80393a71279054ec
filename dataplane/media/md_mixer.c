/* Conference mixer. See md_mixer.h for the tick pipeline. */
#include "md_mixer.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_US (MD_FRAME_MS * 1000u)

/* A participant slot. The state before `jb` is zero whenever the slot is unused (it
 * is cleared when the participant leaves); the buffers from `jb` on are initialised
 * by md_mixer_add (jb) or written before they are read (pcm, own_out), so a slot
 * that held a participant is as good as a fresh one without zeroing its 3 kB. */
struct party {
    bool used;
    bool has_frame; /* a decoded or concealed frame this tick */
    bool mixed;     /* among the selected speakers this tick */
    md_codec_id_t codec;
    struct md_dec *dec;
    struct md_enc *enc; /* its own encoder, for the mix minus itself */
    uint32_t energy;    /* mean square of this tick's frame */
    uint32_t level;     /* smoothed energy */
    const uint8_t *out; /* this tick's payload for it as a listener */
    int out_len;
    struct md_jbuf jb; /* from here on: buffers, see above */
    int16_t pcm[MD_FRAME_SAMPLES];
    uint8_t own_out[MD_OPUS_MAX_PACKET];
};

struct md_mixer {
    struct md_mixer_cfg cfg;
    struct md_mixer_stats st;
    uint64_t next_due;
    int dominant;
    int pending; /* candidate for dominant speaker */
    unsigned pending_ticks;
    unsigned n_sel;
    int sel[MD_MIX_MAX_SPEAKERS];
    unsigned n_codec[MD_CODEC_COUNT];          /* participants per codec */
    struct md_enc *shared_enc[MD_CODEC_COUNT]; /* full mix, one per codec */
    int shared_len[MD_CODEC_COUNT];            /* -1: not encoded this tick */
    /* from here on: buffers written every tick before they are read, and the slots */
    uint8_t shared_out[MD_CODEC_COUNT][MD_OPUS_MAX_PACKET];
    int32_t sum[MD_FRAME_SAMPLES];
    int16_t mix[MD_FRAME_SAMPLES];
    struct party p[MD_MIX_MAX_PARTIES];
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* cfg with its defaults filled in; MD_ERR_PARAM when out of range. */
static md_status_t cfg_resolve(const struct md_mixer_cfg *cfg, struct md_mixer_cfg *out)
{
    struct md_mixer_cfg c = {0};
    if (cfg != NULL)
        c = *cfg;
    if (c.n_speakers == 0)
        c.n_speakers = 3;
    if (c.switch_ticks == 0)
        c.switch_ticks = 300 / MD_FRAME_MS;
    if (c.margin_pct == 0)
        c.margin_pct = 100;
    if (c.budget_us == 0)
        c.budget_us = 5000;
    if (c.silence_level == 0)
        c.silence_level = 1000;
    if (c.jb_depth == 0)
        c.jb_depth = MD_JB_DEFAULT_DEPTH;
    if (c.n_speakers > MD_MIX_MAX_SPEAKERS || c.jb_depth >= MD_JB_SLOTS || c.margin_pct > 10000)
        return MD_ERR_PARAM;
    *out = c;
    return MD_OK;
}

md_status_t md_mixer_create(struct md_mixer **out, const struct md_mixer_cfg *cfg)
{
    struct md_mixer_cfg c;
    *out = NULL;
    if (cfg_resolve(cfg, &c) != MD_OK)
        return MD_ERR_PARAM;
    struct md_mixer *mx = calloc(1, sizeof *mx);
    if (mx == NULL)
        return MD_ERR_NOMEM;
    mx->cfg = c;
    mx->dominant = -1;
    mx->pending = -1;
    *out = mx;
    return MD_OK;
}

/* Frees the participant's codecs (and the shared encoder of its codec with its last
 * user) and zeroes the slot's state; its buffers are left as they are. */
static void party_clear(struct md_mixer *mx, struct party *p)
{
    md_dec_free(p->dec);
    md_enc_free(p->enc);
    if (p->used) {
        mx->n_codec[p->codec]--;
        if (mx->n_codec[p->codec] == 0) {
            md_enc_free(mx->shared_enc[p->codec]);
            mx->shared_enc[p->codec] = NULL;
        }
    }
    memset(p, 0, offsetof(struct party, jb));
}

/* Removes every participant and frees the shared encoders. */
static void clear_parties(struct md_mixer *mx)
{
    for (unsigned i = 0; i < MD_MIX_MAX_PARTIES; i++)
        if (mx->p[i].used)
            party_clear(mx, &mx->p[i]);
    for (unsigned c = 0; c < MD_CODEC_COUNT; c++) {
        md_enc_free(mx->shared_enc[c]);
        mx->shared_enc[c] = NULL;
    }
}

md_status_t md_mixer_reset(struct md_mixer *mx, const struct md_mixer_cfg *cfg)
{
    struct md_mixer_cfg c;
    if (cfg_resolve(cfg, &c) != MD_OK)
        return MD_ERR_PARAM;
    clear_parties(mx);
    /* the state before the buffers: statistics, schedule, selection, codec counts */
    memset(mx, 0, offsetof(struct md_mixer, shared_out));
    mx->cfg = c;
    mx->dominant = -1;
    mx->pending = -1;
    return MD_OK;
}

void md_mixer_free(struct md_mixer *mx)
{
    if (mx == NULL)
        return;
    clear_parties(mx);
    free(mx);
}

int md_mixer_add(struct md_mixer *mx, md_codec_id_t codec, int opus_bitrate)
{
    if ((unsigned)codec >= MD_CODEC_COUNT)
        return MD_ERR_PARAM;
    int id = -1;
    for (int i = 0; i < MD_MIX_MAX_PARTIES; i++) {
        if (!mx->p[i].used) {
            id = i;
            break;
        }
    }
    if (id < 0)
        return MD_ERR_FULL;
    struct party *p = &mx->p[id];
    md_status_t st = md_dec_create(&p->dec, codec);
    if (st == MD_OK)
        st = md_enc_create(&p->enc, codec, opus_bitrate);
    if (st == MD_OK && mx->shared_enc[codec] == NULL)
        st = md_enc_create(&mx->shared_enc[codec], codec, opus_bitrate);
    if (st != MD_OK) {
        party_clear(mx, p); /* not yet used: the codec count is untouched */
        return st;
    }
    p->used = true;
    p->codec = codec;
    md_jbuf_init(&p->jb, mx->cfg.jb_depth);
    mx->n_codec[codec]++;
    return id;
}

void md_mixer_remove(struct md_mixer *mx, int id)
{
    if (id < 0 || id >= MD_MIX_MAX_PARTIES || !mx->p[id].used)
        return;
    party_clear(mx, &mx->p[id]);
    if (mx->dominant == id)
        mx->dominant = -1;
    if (mx->pending == id) {
        mx->pending = -1;
        mx->pending_ticks = 0;
    }
}

md_jb_push_t md_mixer_push(struct md_mixer *mx, int id, uint16_t seq, uint32_t ts,
                           const uint8_t *payload, size_t len)
{
    if (id < 0 || id >= MD_MIX_MAX_PARTIES || !mx->p[id].used)
        return MD_JB_LATE;
    return md_jbuf_push(&mx->p[id].jb, seq, ts, payload, len);
}

static uint32_t mean_square(const int16_t *x)
{
    uint64_t acc = 0;
    for (unsigned i = 0; i < MD_FRAME_SAMPLES; i++)
        acc += (uint64_t)((int32_t)x[i] * x[i]);
    return (uint32_t)(acc / MD_FRAME_SAMPLES);
}

static void decode_all(struct md_mixer *mx)
{
    for (unsigned i = 0; i < MD_MIX_MAX_PARTIES; i++) {
        struct party *p = &mx->p[i];
        if (!p->used)
            continue;
        const uint8_t *payload = NULL;
        size_t len = 0;
        uint32_t ts;
        md_jb_pop_t r = md_jbuf_pop(&p->jb, &payload, &len, &ts);
        p->has_frame = r != MD_JB_EMPTY;
        if (r == MD_JB_EMPTY) {
            p->energy = 0;
        } else {
            if (r == MD_JB_LOST) {
                payload = NULL;
                mx->st.concealed++;
            }
            if (md_dec_frame(p->dec, payload, len, p->pcm) < 0)
                mx->st.decode_errors++;
            p->energy = mean_square(p->pcm);
        }
        /* level += (energy - level) / 4, in 64 bits to keep the sign */
        int64_t lv = (int64_t)p->level + ((int64_t)p->energy - (int64_t)p->level) / 4;
        p->level = (uint32_t)lv;
    }
}

static void select_speakers(struct md_mixer *mx)
{
    mx->n_sel = 0;
    for (int i = 0; i < MD_MIX_MAX_PARTIES; i++) {
        struct party *p = &mx->p[i];
        p->mixed = false;
        if (!p->used || !p->has_frame || p->level < mx->cfg.silence_level)
            continue;
        /* insertion into the sorted (loudest first) selection */
        unsigned pos = mx->n_sel;
        while (pos > 0 && mx->p[mx->sel[pos - 1]].level < p->level)
            pos--;
        if (pos >= mx->cfg.n_speakers)
            continue;
        unsigned last = mx->n_sel < mx->cfg.n_speakers ? mx->n_sel : mx->cfg.n_speakers - 1;
        for (unsigned k = last; k > pos; k--)
            mx->sel[k] = mx->sel[k - 1];
        mx->sel[pos] = i;
        if (mx->n_sel < mx->cfg.n_speakers)
            mx->n_sel++;
    }
    for (unsigned k = 0; k < mx->n_sel; k++)
        mx->p[mx->sel[k]].mixed = true;
}

static inline int16_t sat16(int32_t v)
{
    return v > INT16_MAX ? INT16_MAX : v < INT16_MIN ? INT16_MIN : (int16_t)v;
}

static void mix_and_encode(struct md_mixer *mx)
{
    memset(mx->sum, 0, sizeof mx->sum);
    for (unsigned k = 0; k < mx->n_sel; k++) {
        const int16_t *x = mx->p[mx->sel[k]].pcm;
        for (unsigned i = 0; i < MD_FRAME_SAMPLES; i++)
            mx->sum[i] += x[i];
    }
    mx->st.frames_mixed += mx->n_sel;
    for (unsigned c = 0; c < MD_CODEC_COUNT; c++)
        mx->shared_len[c] = -1;

    for (unsigned id = 0; id < MD_MIX_MAX_PARTIES; id++) {
        struct party *p = &mx->p[id];
        if (!p->used)
            continue;
        if (p->mixed) {
            for (unsigned i = 0; i < MD_FRAME_SAMPLES; i++)
                mx->mix[i] = sat16(mx->sum[i] - p->pcm[i]);
            p->out_len = md_enc_frame(p->enc, mx->mix, p->own_out, sizeof p->own_out);
            p->out = p->own_out;
            mx->st.encodes++;
        } else {
            unsigned c = p->codec;
            if (mx->shared_len[c] < 0) {
                for (unsigned i = 0; i < MD_FRAME_SAMPLES; i++)
                    mx->mix[i] = sat16(mx->sum[i]);
                mx->shared_len[c] = md_enc_frame(mx->shared_enc[c], mx->mix, mx->shared_out[c],
                                                 sizeof mx->shared_out[c]);
                mx->st.encodes++;
            } else {
                mx->st.encode_shared++;
            }
            p->out_len = mx->shared_len[c];
            p->out = mx->shared_out[c];
        }
        if (p->out_len < 0) {
            mx->st.encode_errors++;
            p->out_len = 0;
        }
    }
}

/* Returns 1 when the dominant speaker changes. */
static int track_dominant(struct md_mixer *mx)
{
    int cand = mx->n_sel > 0 ? mx->sel[0] : -1;
    if (cand < 0 || cand == mx->dominant) {
        mx->pending = -1;
        mx->pending_ticks = 0;
        return 0;
    }
    if (mx->dominant < 0) {
        mx->dominant = cand;
        mx->pending = -1;
        mx->pending_ticks = 0;
        mx->st.speaker_switches++;
        return 1;
    }
    uint64_t cur = mx->p[mx->dominant].level;
    if ((uint64_t)mx->p[cand].level * 100 <= cur * (100 + mx->cfg.margin_pct)) {
        mx->pending = -1;
        mx->pending_ticks = 0;
        return 0;
    }
    if (cand != mx->pending) {
        mx->pending = cand;
        mx->pending_ticks = 0;
    }
    if (++mx->pending_ticks < mx->cfg.switch_ticks)
        return 0;
    mx->dominant = cand;
    mx->pending = -1;
    mx->pending_ticks = 0;
    mx->st.speaker_switches++;
    return 1;
}

int md_mixer_tick(struct md_mixer *mx, uint64_t now_us)
{
    uint64_t t0 = mono_us();
    if (mx->next_due != 0 && now_us > mx->next_due + TICK_US / 2)
        mx->st.overrun_late++;
    if (mx->next_due == 0 || now_us >= mx->next_due + TICK_US)
        mx->next_due = now_us + TICK_US; /* first tick, or a whole tick behind: re-base */
    else
        mx->next_due += TICK_US;
    mx->st.ticks++;

    decode_all(mx);
    select_speakers(mx);
    mix_and_encode(mx);
    int changed = track_dominant(mx);

    if (mono_us() - t0 > mx->cfg.budget_us)
        mx->st.overrun_slow++;
    return changed;
}

uint64_t md_mixer_next_due(const struct md_mixer *mx)
{
    return mx->next_due;
}

int md_mixer_output(const struct md_mixer *mx, int id, const uint8_t **payload)
{
    if (id < 0 || id >= MD_MIX_MAX_PARTIES || !mx->p[id].used || mx->p[id].out == NULL)
        return 0;
    *payload = mx->p[id].out;
    return mx->p[id].out_len;
}

int md_mixer_dominant(const struct md_mixer *mx)
{
    return mx->dominant;
}

bool md_mixer_is_mixed(const struct md_mixer *mx, int id)
{
    return id >= 0 && id < MD_MIX_MAX_PARTIES && mx->p[id].used && mx->p[id].mixed;
}

uint32_t md_mixer_level(const struct md_mixer *mx, int id)
{
    return id >= 0 && id < MD_MIX_MAX_PARTIES && mx->p[id].used ? mx->p[id].level : 0;
}

const struct md_mixer_stats *md_mixer_stats(const struct md_mixer *mx)
{
    return &mx->st;
}

const struct md_jb_stats *md_mixer_jb_stats(const struct md_mixer *mx, int id)
{
    if (id < 0 || id >= MD_MIX_MAX_PARTIES || !mx->p[id].used)
        return NULL;
    return &mx->p[id].jb.st;
}
