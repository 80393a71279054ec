/* confbench --conference: tone lists, tone synthesis, Goertzel and the verdict. */
#include "cb_media_audio.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Next comma-separated item of s from *pos: its start and length. Returns false at
 * the end. */
static bool next_item(const char *s, size_t *pos, const char **item, size_t *len)
{
    if (s[*pos] == 0)
        return false;
    *item = s + *pos;
    *len = strcspn(*item, ",");
    *pos += *len + (s[*pos + *len] == ',' ? 1 : 0);
    return true;
}

int cb_tones_parse(const char *s, double *hz, unsigned max, unsigned *n)
{
    size_t pos = 0, len;
    const char *item;
    *n = 0;
    if (!s || !*s || s[strlen(s) - 1] == ',')
        return -1;
    while (next_item(s, &pos, &item, &len)) {
        char buf[16];
        if (len == 0 || len >= sizeof(buf) || *n >= max)
            return -1;
        memcpy(buf, item, len);
        buf[len] = 0;
        char *end;
        double v = strtod(buf, &end);
        if (*end || !isdigit((unsigned char)buf[0]) || v < 50 || v > 3800)
            return -1;
        for (unsigned i = 0; i < *n; i++)
            if (fabs(hz[i] - v) < 25)
                return -1;
        hz[(*n)++] = v;
    }
    return *n ? 0 : -1;
}

int cb_codecs_parse(const char *s, md_codec_id_t *ids, unsigned max, unsigned *n)
{
    size_t pos = 0, len;
    const char *item;
    *n = 0;
    if (!s || !*s || s[strlen(s) - 1] == ',')
        return -1;
    while (next_item(s, &pos, &item, &len)) {
        if (*n >= max)
            return -1;
        if (len == 4 && !strncasecmp(item, "pcmu", 4))
            ids[*n] = MD_CODEC_PCMU;
        else if (len == 4 && !strncasecmp(item, "pcma", 4))
            ids[*n] = MD_CODEC_PCMA;
        else if (len == 4 && !strncasecmp(item, "opus", 4))
            ids[*n] = MD_CODEC_OPUS;
        else
            return -1;
        (*n)++;
    }
    return *n ? 0 : -1;
}

double cb_default_tone(unsigned i)
{
    static const double base[] = {400, 700, 1100, 1500, 1900, 2300, 2700, 3100};
    const unsigned nb = sizeof(base) / sizeof(base[0]);
    return i < nb ? base[i] : base[i % nb] + 150.0 * (double)(i / nb);
}

void cb_tone_fill(int16_t *pcm, size_t n, double hz, double amplitude, uint64_t start)
{
    for (size_t i = 0; i < n; i++)
        pcm[i] = (int16_t)(amplitude * sin(2.0 * M_PI * hz * (double)(start + i) / MD_MIX_RATE));
}

double cb_goertzel_ratio(const int16_t *pcm, size_t n, double hz)
{
    double k = 2.0 * cos(2.0 * M_PI * hz / MD_MIX_RATE), s1 = 0, s2 = 0, energy = 0;
    for (size_t i = 0; i < n; i++) {
        double x = pcm[i];
        double s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
    }
    double power = s1 * s1 + s2 * s2 - k * s1 * s2;
    /* a pure tone of amplitude A: power ~ (A n / 2)^2, energy ~ A^2 n / 2 */
    return energy > 0 && n > 0 ? 2.0 * power / (energy * (double)n) : 0.0;
}

bool cb_hears_others_not_self(const double *ratio, unsigned n, unsigned self, double hear_min,
                              double own_max)
{
    if (self >= n)
        return false;
    for (unsigned j = 0; j < n; j++) {
        if (j == self ? ratio[j] > own_max : ratio[j] < hear_min)
            return false;
    }
    return true;
}
