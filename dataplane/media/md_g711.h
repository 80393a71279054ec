/* G.711 (ITU-T G.711) mu-law and A-law, table-driven.
 *
 * Encoding truncates 16-bit linear PCM to the 14-bit (mu-law) or 13-bit (A-law) input
 * of the recommendation and looks the code up in a table; decoding is a 256-entry
 * table. The tables are built once (md_g711_init, also run on first use through
 * pthread_once), then only read: safe on every worker. */
#ifndef MD_G711_H
#define MD_G711_H

#include <stddef.h>
#include <stdint.h>

void md_g711_init(void);

void md_ulaw_encode(const int16_t *pcm, uint8_t *out, size_t n);
void md_ulaw_decode(const uint8_t *in, int16_t *pcm, size_t n);
void md_alaw_encode(const int16_t *pcm, uint8_t *out, size_t n);
void md_alaw_decode(const uint8_t *in, int16_t *pcm, size_t n);

/* Single-sample forms (they build the tables on first use too). */
uint8_t md_ulaw_from_linear(int16_t pcm);
int16_t md_ulaw_to_linear(uint8_t code);
uint8_t md_alaw_from_linear(int16_t pcm);
int16_t md_alaw_to_linear(uint8_t code);

#endif
