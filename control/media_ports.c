#include "media_ports.h"

#include <stdlib.h>

#include "cn_ports.h"

int media_ports_init(struct media_ports *mp, uint16_t min, uint16_t max, unsigned w, unsigned n)
{
    mp->stack = NULL;
    mp->n = mp->cap = 0;
    if (n == 0 || w >= n || (min & 1) || max <= min)
        return -1;
    mp->base = min;
    uint32_t pairs = ((uint32_t)max - min + 1) / 2;
    mp->cap = pairs / n + 1;
    mp->stack = malloc(mp->cap * sizeof *mp->stack);
    if (!mp->stack)
        return -1;
    /* push highest first so the lowest port is handed out first */
    for (uint32_t i = pairs; i-- > 0;) {
        uint16_t port = (uint16_t)(min + 2 * i);
        if (cn_port_owner(port, min, n) == w)
            mp->stack[mp->n++] = port;
    }
    return 0;
}

void media_ports_fini(struct media_ports *mp)
{
    free(mp->stack);
    mp->stack = NULL;
    mp->n = mp->cap = 0;
}

int media_ports_alloc(struct media_ports *mp)
{
    return mp->n ? mp->stack[--mp->n] : -1;
}

void media_ports_release(struct media_ports *mp, uint16_t port)
{
    if (mp->n < mp->cap)
        mp->stack[mp->n++] = port;
}
