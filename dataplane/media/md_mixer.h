/* Audio mixer of one conference, at 8 kHz in 20 ms ticks (md_codec.h).
 *
 * Per packet: md_mixer_push() queues the payload in the sender's jitter buffer.
 * Per tick (every 20 ms, md_mixer_next_due()): md_mixer_tick()
 *   1. pops one frame per participant and decodes it (or conceals a loss);
 *   2. measures each frame's energy and smooths it into a level (EMA, 1/4 per tick);
 *   3. selects the N loudest participants above the silence floor (default 3);
 *   4. sums them (32-bit) into the full mix; each selected speaker gets the full mix
 *      minus its own frame, everybody else the full mix, saturated to 16 bits;
 *   5. encodes: once per selected speaker (its own mix), and once per codec for all
 *      the other listeners, who share the identical full mix;
 *   6. tracks the dominant speaker with hysteresis: a new one must be the loudest and
 *      exceed the current one by margin_pct for switch_ticks ticks in a row.
 * Then md_mixer_output() gives each listener its payload for this tick.
 *
 * Ownership: a mixer and everything in it belongs to the worker that hosts the
 * conference. Memory is allocated in create/add only; push and tick never allocate.
 * A mixer can be reset (md_mixer_reset) and used for another conference. */
#ifndef MD_MIXER_H
#define MD_MIXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_codec.h"
#include "md_jbuf.h"
#include "md_status.h"

#define MD_MIX_MAX_PARTIES 32
#define MD_MIX_MAX_SPEAKERS 8

struct md_mixer_cfg {
    unsigned n_speakers;    /* loudest N mixed, 1..MD_MIX_MAX_SPEAKERS (default 3) */
    unsigned switch_ticks;  /* dominant-speaker hysteresis (default 15 = 300 ms) */
    unsigned margin_pct;    /* a new dominant speaker exceeds the current level by this
                               many percent (default 100: twice the energy, +3 dB) */
    uint32_t budget_us;     /* a tick that runs longer counts as an overrun (default 5000) */
    uint32_t silence_level; /* mean-square level under which nobody is a speaker
                               (default 1000, about -60 dBFS) */
    unsigned jb_depth;      /* jitter buffer depth in frames (default MD_JB_DEFAULT_DEPTH) */
};

struct md_mixer_stats {
    uint64_t ticks;
    uint64_t frames_mixed; /* speaker frames summed into a mix */
    uint64_t overrun_slow; /* ticks that took longer than budget_us */
    uint64_t overrun_late; /* ticks started more than half a frame after their due time */
    uint64_t encodes;
    uint64_t encode_shared; /* listener outputs served by a shared (per codec) encoding */
    uint64_t decode_errors;
    uint64_t encode_errors;
    uint64_t concealed; /* lost frames concealed */
    uint64_t speaker_switches;
};

struct md_mixer;

/* cfg may be NULL (defaults); zero fields take their defaults.
 * Returns MD_OK, MD_ERR_PARAM or MD_ERR_NOMEM. */
md_status_t md_mixer_create(struct md_mixer **out, const struct md_mixer_cfg *cfg);
/* Accepts NULL. */
void md_mixer_free(struct md_mixer *mx);
/* Returns a mixer to the state md_mixer_create(cfg) gives, for the next conference:
 * every participant is removed, the statistics, schedule (next_due 0), dominant
 * speaker and shared encoders start afresh. The participant slots' buffers are not
 * zeroed (a slot's buffers are always written before they are read). Returns MD_OK,
 * or MD_ERR_PARAM (cfg out of range: the mixer is unchanged). */
md_status_t md_mixer_reset(struct md_mixer *mx, const struct md_mixer_cfg *cfg);

/* Adds a participant that sends and receives `codec` (Opus at opus_bitrate bit/s, 0 for
 * the default). Returns its id (>= 0), MD_ERR_FULL, MD_ERR_PARAM, MD_ERR_NOMEM or
 * MD_ERR_CODEC. */
int md_mixer_add(struct md_mixer *mx, md_codec_id_t codec, int opus_bitrate);
/* Removes a participant (an unknown id is ignored). */
void md_mixer_remove(struct md_mixer *mx, int id);

/* Per packet: queues the payload of an RTP packet from participant id. An unknown id
 * gives MD_JB_LATE (dropped). */
md_jb_push_t md_mixer_push(struct md_mixer *mx, int id, uint16_t seq, uint32_t ts,
                           const uint8_t *payload, size_t len);

/* Per tick, at now_us (monotonic microseconds). Returns 1 when the dominant speaker
 * changed during this tick, 0 otherwise. */
int md_mixer_tick(struct md_mixer *mx, uint64_t now_us);

/* When the next tick is due (0 before the first tick). */
uint64_t md_mixer_next_due(const struct md_mixer *mx);

/* The payload for listener id produced by the last tick: its length, with *payload
 * pointing into the mixer (valid until the next tick); 0 if there is none. */
int md_mixer_output(const struct md_mixer *mx, int id, const uint8_t **payload);

/* The dominant speaker (-1 if none yet). */
int md_mixer_dominant(const struct md_mixer *mx);
/* Whether id was among the mixed speakers in the last tick. */
bool md_mixer_is_mixed(const struct md_mixer *mx, int id);
/* The smoothed level of id (mean square of 16-bit samples). */
uint32_t md_mixer_level(const struct md_mixer *mx, int id);

const struct md_mixer_stats *md_mixer_stats(const struct md_mixer *mx);
const struct md_jb_stats *md_mixer_jb_stats(const struct md_mixer *mx, int id);

#endif
