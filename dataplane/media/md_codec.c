/* Codec wrappers: G.711 through md_g711, Opus through libopus at 8 kHz. */
#include "md_codec.h"

#include <stdlib.h>
#include <string.h>

#include <opus.h>

#include "md_g711.h"

struct md_dec {
    md_codec_id_t id;
    OpusDecoder *opus;
};

struct md_enc {
    md_codec_id_t id;
    OpusEncoder *opus;
};

uint32_t md_codec_ts_step(md_codec_id_t id)
{
    return id == MD_CODEC_OPUS ? 48000 / 1000 * MD_FRAME_MS : MD_FRAME_SAMPLES;
}

int md_codec_static_pt(md_codec_id_t id)
{
    return id == MD_CODEC_PCMU ? 0 : id == MD_CODEC_PCMA ? 8 : -1;
}

const char *md_codec_name(md_codec_id_t id)
{
    switch (id) {
    case MD_CODEC_PCMU:
        return "PCMU";
    case MD_CODEC_PCMA:
        return "PCMA";
    case MD_CODEC_OPUS:
        return "opus";
    default:
        return "?";
    }
}

md_status_t md_dec_create(struct md_dec **out, md_codec_id_t id)
{
    *out = NULL;
    if ((unsigned)id >= MD_CODEC_COUNT)
        return MD_ERR_PARAM;
    struct md_dec *d = calloc(1, sizeof *d);
    if (d == NULL)
        return MD_ERR_NOMEM;
    d->id = id;
    if (id == MD_CODEC_OPUS) {
        int err;
        d->opus = opus_decoder_create(MD_MIX_RATE, 1, &err);
        if (d->opus == NULL) {
            free(d);
            return err == OPUS_ALLOC_FAIL ? MD_ERR_NOMEM : MD_ERR_CODEC;
        }
    } else {
        md_g711_init();
    }
    *out = d;
    return MD_OK;
}

void md_dec_free(struct md_dec *d)
{
    if (d == NULL)
        return;
    if (d->opus != NULL)
        opus_decoder_destroy(d->opus);
    free(d);
}

md_status_t md_enc_create(struct md_enc **out, md_codec_id_t id, int bitrate)
{
    *out = NULL;
    if ((unsigned)id >= MD_CODEC_COUNT)
        return MD_ERR_PARAM;
    struct md_enc *e = calloc(1, sizeof *e);
    if (e == NULL)
        return MD_ERR_NOMEM;
    e->id = id;
    if (id == MD_CODEC_OPUS) {
        int err;
        e->opus = opus_encoder_create(MD_MIX_RATE, 1, OPUS_APPLICATION_VOIP, &err);
        if (e->opus == NULL) {
            free(e);
            return err == OPUS_ALLOC_FAIL ? MD_ERR_NOMEM : MD_ERR_CODEC;
        }
        /* a narrowband stream; complexity 5 halves the encoder cost of the default 10
           for a barely audible loss on speech */
        if (opus_encoder_ctl(e->opus, OPUS_SET_BITRATE(bitrate > 0 ? bitrate : 16000)) != OPUS_OK ||
            opus_encoder_ctl(e->opus, OPUS_SET_COMPLEXITY(5)) != OPUS_OK ||
            opus_encoder_ctl(e->opus, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)) != OPUS_OK) {
            opus_encoder_destroy(e->opus);
            free(e);
            return MD_ERR_CODEC;
        }
    } else {
        md_g711_init();
    }
    *out = e;
    return MD_OK;
}

void md_enc_free(struct md_enc *e)
{
    if (e == NULL)
        return;
    if (e->opus != NULL)
        opus_encoder_destroy(e->opus);
    free(e);
}

int md_dec_frame(struct md_dec *d, const uint8_t *payload, size_t len, int16_t *pcm)
{
    switch (d->id) {
    case MD_CODEC_PCMU:
    case MD_CODEC_PCMA: {
        size_t n = payload == NULL ? 0 : (len < MD_FRAME_SAMPLES ? len : MD_FRAME_SAMPLES);
        if (d->id == MD_CODEC_PCMU)
            md_ulaw_decode(payload, pcm, n);
        else
            md_alaw_decode(payload, pcm, n);
        memset(pcm + n, 0, (MD_FRAME_SAMPLES - n) * sizeof *pcm);
        return MD_FRAME_SAMPLES;
    }
    case MD_CODEC_OPUS: {
        if (len > INT32_MAX)
            len = 0;
        int n = opus_decode(d->opus, payload, payload == NULL ? 0 : (opus_int32)len, pcm,
                            MD_FRAME_SAMPLES, 0);
        if (n == MD_FRAME_SAMPLES)
            return n;
        /* a packet of another duration (10, 40, 60 ms) cannot fill one tick exactly */
        memset(pcm, 0, MD_FRAME_SAMPLES * sizeof *pcm);
        return MD_ERR_CODEC;
    }
    default:
        memset(pcm, 0, MD_FRAME_SAMPLES * sizeof *pcm);
        return MD_ERR_CODEC;
    }
}

int md_enc_frame(struct md_enc *e, const int16_t *pcm, uint8_t *out, size_t cap)
{
    switch (e->id) {
    case MD_CODEC_PCMU:
    case MD_CODEC_PCMA:
        if (cap < MD_FRAME_SAMPLES)
            return MD_ERR_NOSPACE;
        if (e->id == MD_CODEC_PCMU)
            md_ulaw_encode(pcm, out, MD_FRAME_SAMPLES);
        else
            md_alaw_encode(pcm, out, MD_FRAME_SAMPLES);
        return MD_FRAME_SAMPLES;
    case MD_CODEC_OPUS: {
        opus_int32 c = cap > MD_OPUS_MAX_PACKET ? MD_OPUS_MAX_PACKET : (opus_int32)cap;
        int n = opus_encode(e->opus, pcm, MD_FRAME_SAMPLES, out, c);
        if (n == OPUS_BUFFER_TOO_SMALL)
            return MD_ERR_NOSPACE;
        return n > 0 ? n : MD_ERR_CODEC;
    }
    default:
        return MD_ERR_CODEC;
    }
}
