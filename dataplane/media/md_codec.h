/* Audio codecs at the mixer rate: 20 ms frames of 160 samples at 8 kHz, mono.
 *
 * The mixer runs at 8 kHz (docs/media.md says why): G.711 needs no resampling, and
 * libopus encodes and decodes at 8000 Hz natively (the decoder renders any Opus
 * stream at 8 kHz; the encoder produces a narrowband Opus stream). The RTP clock of
 * Opus stays 48 kHz (RFC 7587), hence md_codec_ts_step().
 *
 * A decoder or an encoder is per stream and per direction (Opus keeps state); G.711
 * ones hold no state and cost no allocation. Owner: the worker of the leg. */
#ifndef MD_CODEC_H
#define MD_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "md_status.h"

#define MD_MIX_RATE 8000
#define MD_FRAME_MS 20
#define MD_FRAME_SAMPLES (MD_MIX_RATE * MD_FRAME_MS / 1000) /* 160 */
#define MD_OPUS_MAX_PACKET 400 /* bytes we ever produce for one 20 ms frame */

typedef enum md_codec_id {
    MD_CODEC_PCMU = 0,
    MD_CODEC_PCMA,
    MD_CODEC_OPUS,
    MD_CODEC_COUNT
} md_codec_id_t;

struct md_dec;
struct md_enc;

/* RTP timestamp increment per 20 ms frame (160 for G.711, 960 for Opus). */
uint32_t md_codec_ts_step(md_codec_id_t id);
/* Static RTP payload type for G.711 (0, 8); -1 for Opus (dynamic, from SDP). */
int md_codec_static_pt(md_codec_id_t id);
const char *md_codec_name(md_codec_id_t id);

/* Create / free (free accepts NULL). Return MD_OK, MD_ERR_PARAM, MD_ERR_NOMEM or
 * MD_ERR_CODEC. bitrate is for Opus only (bits/s, 0 = 16000). */
md_status_t md_dec_create(struct md_dec **out, md_codec_id_t id);
void md_dec_free(struct md_dec *d);
md_status_t md_enc_create(struct md_enc **out, md_codec_id_t id, int bitrate);
void md_enc_free(struct md_enc *e);

/* Decodes one received payload into pcm[MD_FRAME_SAMPLES]. payload == NULL asks for
 * concealment of a lost frame (Opus PLC; G.711 repeats nothing and returns silence).
 * A G.711 payload shorter than a frame is zero-filled, a longer one truncated.
 * Returns MD_FRAME_SAMPLES or MD_ERR_CODEC (the pcm is then silence). */
int md_dec_frame(struct md_dec *d, const uint8_t *payload, size_t len, int16_t *pcm);

/* Encodes pcm[MD_FRAME_SAMPLES] into out (cap bytes). Returns the payload length or
 * MD_ERR_NOSPACE / MD_ERR_CODEC. */
int md_enc_frame(struct md_enc *e, const int16_t *pcm, uint8_t *out, size_t cap);

#endif
