/* Per-lcore neighbour cache (see dpk_neigh.h). */
#include "dpk_neigh.h"

#include <string.h>

static uint32_t slot_of(uint8_t family, const uint8_t *ip)
{
    uint32_t h = 2166136261u;
    size_t n = family == 6 ? 16 : 4;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ip[i]) * 16777619u;
    h ^= h >> 13;
    return h & (DPK_NEIGH_SLOTS - 1);
}

static bool same(const struct dpk_neigh_entry *e, uint8_t family, const uint8_t *ip)
{
    return e->family == family && memcmp(e->ip, ip, family == 6 ? 16 : 4) == 0;
}

void dpk_neigh_init(struct dpk_neigh *t, uint32_t ttl_ms)
{
    memset(t, 0, sizeof *t);
    t->ttl_ms = ttl_ms;
}

void dpk_neigh_learn(struct dpk_neigh *t, uint8_t family, const uint8_t *ip, const uint8_t mac[6],
                     uint64_t now_ms)
{
    if (family != 4 && family != 6)
        return;
    uint32_t base = slot_of(family, ip);
    struct dpk_neigh_entry *victim = NULL;
    for (uint32_t i = 0; i < DPK_NEIGH_PROBE; i++) {
        struct dpk_neigh_entry *e = &t->e[(base + i) & (DPK_NEIGH_SLOTS - 1)];
        if (same(e, family, ip)) {
            victim = e;
            break;
        }
        if (!victim || (victim->family && (!e->family || e->seen_ms < victim->seen_ms)))
            victim = e;
    }
    victim->family = family;
    memset(victim->ip, 0, sizeof victim->ip);
    memcpy(victim->ip, ip, family == 6 ? 16 : 4);
    memcpy(victim->mac, mac, 6);
    victim->seen_ms = now_ms;
}

bool dpk_neigh_lookup(const struct dpk_neigh *t, uint8_t family, const uint8_t *ip, uint64_t now_ms,
                      uint8_t mac[6])
{
    if (family != 4 && family != 6)
        return false;
    uint32_t base = slot_of(family, ip);
    for (uint32_t i = 0; i < DPK_NEIGH_PROBE; i++) {
        const struct dpk_neigh_entry *e = &t->e[(base + i) & (DPK_NEIGH_SLOTS - 1)];
        if (!same(e, family, ip))
            continue;
        if (now_ms - e->seen_ms > t->ttl_ms)
            return false;
        memcpy(mac, e->mac, 6);
        return true;
    }
    return false;
}
