#include "media_ports.h"

#include <stdlib.h>

#include "cn_ports.h"

#define NO_SLOT (-1)

int media_ports_init(struct media_ports *mp, uint16_t min, uint16_t max, unsigned w, unsigned n)
{
    mp->ring = NULL;
    mp->slot = NULL;
    mp->n = mp->cap = mp->head = 0;
    if (n == 0 || w >= n || (min & 1) || max <= min)
        return -1;
    mp->base = min;
    uint32_t pairs = ((uint32_t)max - min + 1) / 2;
    mp->cap = pairs / n + 1;
    mp->ring = malloc(mp->cap * sizeof *mp->ring);
    mp->slot = malloc(65536 * sizeof *mp->slot);
    if (!mp->ring || !mp->slot) {
        media_ports_fini(mp);
        return -1;
    }
    for (uint32_t i = 0; i < 65536; i++)
        mp->slot[i] = NO_SLOT;
    /* lowest port first */
    for (uint32_t i = 0; i < pairs; i++) {
        uint16_t port = (uint16_t)(min + 2 * i);
        if (cn_port_owner(port, min, n) == w) {
            mp->slot[port] = (int32_t)mp->n;
            mp->ring[mp->n++] = port;
        }
    }
    return 0;
}

void media_ports_fini(struct media_ports *mp)
{
    free(mp->ring);
    free(mp->slot);
    mp->ring = NULL;
    mp->slot = NULL;
    mp->n = mp->cap = mp->head = 0;
}

int media_ports_alloc(struct media_ports *mp)
{
    if (!mp->n)
        return -1;
    uint16_t p = mp->ring[mp->head];
    mp->slot[p] = NO_SLOT;
    mp->head = (mp->head + 1) % mp->cap;
    mp->n--;
    return p;
}

int media_ports_take(struct media_ports *mp, uint16_t port)
{
    if (!mp->slot || mp->slot[port] == NO_SLOT)
        return -1;
    /* the oldest free port moves into the taken one's place */
    int32_t i = mp->slot[port];
    uint16_t oldest = mp->ring[mp->head];
    mp->ring[i] = oldest;
    mp->slot[oldest] = i;
    mp->slot[port] = NO_SLOT;
    mp->head = (mp->head + 1) % mp->cap;
    mp->n--;
    return 0;
}

void media_ports_release(struct media_ports *mp, uint16_t port)
{
    if (mp->n >= mp->cap || mp->slot[port] != NO_SLOT)
        return; /* full (cannot happen for our own ports) or already free */
    uint32_t t = (mp->head + mp->n) % mp->cap;
    mp->slot[port] = (int32_t)t;
    mp->ring[t] = port;
    mp->n++;
}
