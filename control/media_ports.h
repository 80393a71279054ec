/* One worker's share of the media port range (see common/cn_ports.h).
 * Owner: that worker; no locks. Allocation, release and take are O(1).
 *
 * Free ports are handed out oldest released first (a ring), so a port rests as long
 * as possible before another call gets it: late packets of the last call meet no
 * new one, and the media layer can reuse the port's still-bound socket once it has
 * rested (dp_media_rested_port() names such a port; media_ports_take() claims it). */
#ifndef MEDIA_PORTS_H
#define MEDIA_PORTS_H

#include <stdint.h>

struct media_ports {
    uint16_t base;   /* first port of the whole range (even) */
    uint16_t *ring;  /* free RTP ports of this worker, oldest at head */
    uint32_t n, cap; /* free ports, ring size */
    uint32_t head;
    int32_t *slot;   /* by port number: its index in ring, -1 when not free */
};

/* Collects the pairs in [min, max] that worker w of n owns. Returns 0, or -1 on
 * bad arguments / no memory. A worker may own no pair (then alloc fails). */
int media_ports_init(struct media_ports *mp, uint16_t min, uint16_t max, unsigned w,
                     unsigned n);
void media_ports_fini(struct media_ports *mp);
/* Returns an even RTP port (RTCP is port + 1), the one free the longest, or -1 when
 * the share is exhausted. */
int media_ports_alloc(struct media_ports *mp);
/* Gives a port back; a port that is already free is ignored. */
void media_ports_release(struct media_ports *mp, uint16_t port);
/* Claims a particular free port: 0, or -1 when it is not free (or not ours). */
int media_ports_take(struct media_ports *mp, uint16_t port);

#endif
