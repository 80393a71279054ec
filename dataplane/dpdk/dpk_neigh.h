/* Per-lcore neighbour cache: the MAC to put on a datagram we send to an IP peer.
 *
 * DESIGN
 * The fast path learns, from every datagram a peer sends us, the source MAC it came
 * with: the peer's own on the local link, the router's for a peer beyond it. Sending
 * back to that MAC is right in both cases, needs no ARP of our own (the kernel keeps
 * doing ARP and ND on the exception interface) and no table shared between lcores:
 * each lcore has its own cache and learns from what it receives. Media and SIP peers
 * send first (symmetric RTP latches on what arrives), so a miss is rare; the caller
 * hands a missed datagram to the kernel, which resolves the neighbour itself.
 *
 * Fixed size, no allocation after creation, open addressing with a short probe;
 * a full neighbourhood evicts its oldest entry. Entries older than `ttl_ms` are
 * misses (the peer may have moved). Only the owning lcore uses a cache. */
#ifndef DPK_NEIGH_H
#define DPK_NEIGH_H

#include <stdbool.h>
#include <stdint.h>

#define DPK_NEIGH_SLOTS 4096 /* power of two */
#define DPK_NEIGH_PROBE 8

struct dpk_neigh_entry {
    uint8_t family; /* 0 = free, 4, 6 */
    uint8_t mac[6];
    uint8_t ip[16];
    uint64_t seen_ms;
};

struct dpk_neigh {
    uint32_t ttl_ms;
    struct dpk_neigh_entry e[DPK_NEIGH_SLOTS];
};

/* Empties the cache; entries expire ttl_ms after they were last learned. */
void dpk_neigh_init(struct dpk_neigh *t, uint32_t ttl_ms);

/* Records that `ip` (4 or 16 bytes by family) was last seen behind `mac`. */
void dpk_neigh_learn(struct dpk_neigh *t, uint8_t family, const uint8_t *ip, const uint8_t mac[6],
                     uint64_t now_ms);

/* Copies the MAC for ip into mac and returns true, or returns false on a miss
 * (unknown or expired). */
bool dpk_neigh_lookup(const struct dpk_neigh *t, uint8_t family, const uint8_t *ip, uint64_t now_ms,
                      uint8_t mac[6]);

#endif
