/* One worker's share of the media port range (see common/cn_ports.h).
 * Owner: that worker; no locks. Allocation and release are O(1) (a stack). */
#ifndef MEDIA_PORTS_H
#define MEDIA_PORTS_H

#include <stdint.h>

struct media_ports {
    uint16_t base;      /* first port of the whole range (even) */
    uint16_t *stack;    /* free RTP ports of this worker */
    uint32_t n, cap;
};

/* Collects the pairs in [min, max] that worker w of n owns. Returns 0, or -1 on
 * bad arguments / no memory. A worker may own no pair (then alloc fails). */
int media_ports_init(struct media_ports *mp, uint16_t min, uint16_t max, unsigned w,
                     unsigned n);
void media_ports_fini(struct media_ports *mp);
/* Returns an even RTP port (RTCP is port + 1), or -1 when the share is exhausted. */
int media_ports_alloc(struct media_ports *mp);
void media_ports_release(struct media_ports *mp, uint16_t port);

#endif
