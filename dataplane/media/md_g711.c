/* G.711 tables. The encoders follow the segment/mantissa rule of the recommendation;
 * each decoded value is the middle of its decision interval, so a round trip errs by
 * at most half a step plus the truncation to 14 (13) bits. */
#include "md_g711.h"

#include <pthread.h>

static uint8_t ulaw_enc[1 << 14]; /* index: (pcm >> 2) + 8192 */
static uint8_t alaw_enc[1 << 13]; /* index: (pcm >> 3) + 4096 */
static int16_t ulaw_dec[256];
static int16_t alaw_dec[256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

/* 14-bit signed input */
static uint8_t ulaw_encode14(int v)
{
    uint8_t mask = 0xff;
    if (v < 0) {
        v = -v;
        mask = 0x7f;
    }
    if (v > 8158)
        v = 8158;
    v += 33; /* bias: segment boundaries become powers of two */
    unsigned seg = 0;
    for (int t = v >> 6; t != 0; t >>= 1)
        seg++;
    uint8_t code = (uint8_t)((seg << 4) | ((unsigned)(v >> (seg + 1)) & 0x0f));
    return code ^ mask;
}

static int16_t ulaw_decode(uint8_t code)
{
    code = (uint8_t)~code;
    int t = (((code & 0x0f) << 3) + 0x84) << ((code & 0x70) >> 4);
    return (int16_t)((code & 0x80) ? 0x84 - t : t - 0x84);
}

/* 13-bit signed input */
static uint8_t alaw_encode13(int v)
{
    uint8_t mask = 0xd5;
    if (v < 0) {
        v = -v - 1;
        mask = 0x55;
    }
    if (v > 4095)
        v = 4095;
    unsigned seg = 0;
    for (int t = v >> 5; t != 0; t >>= 1)
        seg++;
    unsigned mant = seg == 0 ? (unsigned)(v >> 1) & 0x0f : (unsigned)(v >> seg) & 0x0f;
    return (uint8_t)((seg << 4) | mant) ^ mask;
}

static int16_t alaw_decode(uint8_t code)
{
    code ^= 0x55;
    int t = (code & 0x0f) << 4;
    unsigned seg = (code & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else
        t = (t + 0x108) << (seg - 1);
    return (int16_t)((code & 0x80) ? t : -t);
}

static void build_tables(void)
{
    for (int i = 0; i < (1 << 14); i++)
        ulaw_enc[i] = ulaw_encode14(i - 8192);
    for (int i = 0; i < (1 << 13); i++)
        alaw_enc[i] = alaw_encode13(i - 4096);
    for (int i = 0; i < 256; i++) {
        ulaw_dec[i] = ulaw_decode((uint8_t)i);
        alaw_dec[i] = alaw_decode((uint8_t)i);
    }
}

void md_g711_init(void)
{
    pthread_once(&tables_once, build_tables);
}

void md_ulaw_encode(const int16_t *pcm, uint8_t *out, size_t n)
{
    md_g711_init();
    for (size_t i = 0; i < n; i++)
        out[i] = ulaw_enc[(pcm[i] >> 2) + 8192];
}

void md_ulaw_decode(const uint8_t *in, int16_t *pcm, size_t n)
{
    md_g711_init();
    for (size_t i = 0; i < n; i++)
        pcm[i] = ulaw_dec[in[i]];
}

void md_alaw_encode(const int16_t *pcm, uint8_t *out, size_t n)
{
    md_g711_init();
    for (size_t i = 0; i < n; i++)
        out[i] = alaw_enc[(pcm[i] >> 3) + 4096];
}

void md_alaw_decode(const uint8_t *in, int16_t *pcm, size_t n)
{
    md_g711_init();
    for (size_t i = 0; i < n; i++)
        pcm[i] = alaw_dec[in[i]];
}

uint8_t md_ulaw_from_linear(int16_t pcm)
{
    md_g711_init();
    return ulaw_enc[(pcm >> 2) + 8192];
}

int16_t md_ulaw_to_linear(uint8_t code)
{
    md_g711_init();
    return ulaw_dec[code];
}

uint8_t md_alaw_from_linear(int16_t pcm)
{
    md_g711_init();
    return alaw_enc[(pcm >> 3) + 4096];
}

int16_t md_alaw_to_linear(uint8_t code)
{
    md_g711_init();
    return alaw_dec[code];
}
