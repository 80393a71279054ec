/* The media port partition (DESIGN.md "Share-nothing per core").
 *
 * Worker w of n owns the media port pairs (RTP even, RTCP odd) for which
 * ((port - base) / 2) % n == w. Any packet's owner is this pure function of its
 * destination port, so the sockets backend, the DPDK path and NIC RSS rules all
 * steer the same way without a shared table. */
#ifndef CN_PORTS_H
#define CN_PORTS_H

#include <stdint.h>

static inline unsigned cn_port_owner(uint16_t port, uint16_t base, unsigned n_workers)
{
    return ((unsigned)(port - base) / 2u) % n_workers;
}

#endif
