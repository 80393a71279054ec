/* confbench --conference: the audio side that needs no network.
 *
 * Lists from the command line (tones in Hz, codecs per participant), the tone each
 * participant sends, and the Goertzel measurement of what it hears: the relative
 * energy of a frequency in a block of 8 kHz samples (1.0 for a pure tone at that
 * frequency, about 1/k for each of k equal tones, near 0 when absent), and the
 * verdict (every other participant's tone at or above CB_HEAR_MIN, its own at or
 * below CB_OWN_MAX).
 */
#ifndef CB_MEDIA_AUDIO_H
#define CB_MEDIA_AUDIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "md_codec.h"

#define CB_CONF_MAX 16   /* participants at most */
#define CB_HEAR_MIN 0.05 /* another participant's tone must reach this */
#define CB_OWN_MAX 0.01  /* our own tone must stay below this */
#define CB_TONE_AMPLITUDE 8000.0

/* Parses "400,700,1100" into hz[0..*n) (at most max, each 50..3800 Hz, distinct,
 * at least 25 Hz apart). Does not touch s. Returns 0 or -1. */
int cb_tones_parse(const char *s, double *hz, unsigned max, unsigned *n);

/* Parses "pcmu,pcma,opus" (case-insensitive) into ids[0..*n) (at most max).
 * Does not touch s. Returns 0 or -1. */
int cb_codecs_parse(const char *s, md_codec_id_t *ids, unsigned max, unsigned *n);

/* The i-th default tone when --tones is not given: 400, 700, 1100, 1500, ... */
double cb_default_tone(unsigned i);

/* Fills pcm[0..n) with the tone, starting at sample index `start`. */
void cb_tone_fill(int16_t *pcm, size_t n, double hz, double amplitude, uint64_t start);

/* Relative energy of hz in pcm[0..n) at MD_MIX_RATE: Goertzel power at hz over the
 * block's total energy, scaled so that a pure tone gives 1.0. 0 for silence. */
double cb_goertzel_ratio(const int16_t *pcm, size_t n, double hz);

/* The verdict for participant `self`: ratio[j] is the relative energy of
 * participant j's tone in what self heard (n participants). True when every other
 * tone is >= hear_min and its own is <= own_max. */
bool cb_hears_others_not_self(const double *ratio, unsigned n, unsigned self, double hear_min,
                              double own_max);

#endif
