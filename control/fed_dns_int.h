/* Internal to control/fed_dns*.c: the resolver's state and the functions its files
 * share. Not a public header: users include fed_dns.h.
 *
 *   fed_dns.c         the resolver: creation, c-ares queries and their waiters, the
 *                     event loop, synchronous queries, status names, cancel and free
 *   fed_dns_answer.c  answer objects, DNS message walking (TTLs), answers built from
 *                     c-ares replies
 *   fed_dns_cache.c   the answer cache and down-marking of destinations
 *   fed_dns_locate.c  SRV ordering and selection, and locating a federated domain
 *                     (NAPTR, SRV, A/AAAA, fallbacks) */
#ifndef FED_DNS_INT_H
#define FED_DNS_INT_H

#include <ares.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fed_dns.h"

#define DEF_TIMEOUT_MS 2000
#define DEF_TRIES 2
#define DEF_CACHE_MAX 1024
#define DEF_TTL_MAX 86400u
#define DEF_NEG_TTL 30u
#define DEF_NEG_TTL_MAX 300u
#define DEF_DOWN_MAX 256
#define MAX_ADDRS 64    /* addresses kept from one A/AAAA answer */
#define MAX_SRV_RECS 64 /* SRV records considered from one answer */
#define NAME_FLAGS (FED_NAME_ALLOW_UNDERSCORE | FED_NAME_ALLOW_SINGLE_LABEL)

/* ---- answers ----------------------------------------------------------------------- */

struct answer_obj {
    unsigned refs;
    bool is_static; /* the out-of-memory answer: never counted, never freed */
    struct fed_dns_answer pub;
    /* records follow */
};

struct cache_entry {
    struct cache_entry *next;
    uint32_t hash;
    struct answer_obj *ans;
};

struct waiter {
    struct waiter *next;
    uint64_t id;
    fed_dns_cb cb;
    void *arg;
};

struct pending {
    struct pending *next;
    fed_dns_t *dns;
    fed_dns_type_t type;
    struct waiter *waiters;
    char name[FED_NAME_BUF];
};

/* Waiters being called back; fed_dns_cancel() looks here too. */
struct delivery {
    struct delivery *prev;
    struct waiter *list;
};

struct down_entry {
    char host[FED_NAME_BUF]; /* "" when free */
    uint16_t port;
    fed_transport_t tp;
    uint64_t until_ms;
};

struct locate;

struct fed_dns {
    ares_channel ch;
    bool channel_ok;
    bool freeing;
    uint32_t ttl_max;
    uint32_t neg_ttl_default;
    uint32_t neg_ttl_max;
    fed_dns_sock_cb sock_cb;
    void *sock_arg;
    fed_dns_clock_fn clock;
    void *clock_arg;
    fed_rand_fn rand;
    void *rand_arg;
    uint64_t rng;

    struct cache_entry **buckets;
    size_t nbuckets;
    size_t cache_max;
    size_t cache_count;

    struct pending *pending;
    size_t n_pending;
    struct delivery *deliveries;
    struct locate *locates;
    uint64_t next_id;

    struct down_entry *down;
    size_t down_max;
};

#define LOC_MAX_CANDS 6
#define LOC_MAX_TARGETS (FED_LOCATE_MAX_SRV + 3)

struct loc_target {
    char host[FED_NAME_BUF];
    uint16_t port;
    uint16_t priority;
    uint16_t weight;
    fed_transport_t tp;
    bool fallback;
    const struct fed_dns_answer *ans[2]; /* A, AAAA */
};

struct loc_sub {
    struct locate *l;
    uint64_t id; /* pending query, 0 when none */
    size_t target;
    int family; /* 0: A, 1: AAAA */
};

struct locate {
    struct locate *next;
    fed_dns_t *dns;
    uint64_t id;
    struct fed_locate_opts opts;
    fed_locate_cb cb;
    void *arg;
    struct {
        char name[FED_NAME_BUF];
        fed_transport_t tp;
    } cands[LOC_MAX_CANDS];
    size_t n_cands;
    size_t cand_i;
    uint64_t single_id; /* the NAPTR/SRV query in flight */
    struct loc_target targets[LOC_MAX_TARGETS];
    size_t n_targets;
    struct loc_sub subs[2 * LOC_MAX_TARGETS];
    size_t pending; /* address queries outstanding (+1 while issuing) */
    struct fed_location loc;
};


/* ---- fed_dns.c ---------------------------------------------------------------------- */

uint64_t fdns_now_ms(fed_dns_t *dns);
uint32_t fdns_rand(fed_dns_t *dns);
/* One poll round of at most max_ms. */
void fdns_run_once(fed_dns_t *dns, int max_ms);

/* ---- fed_dns_answer.c --------------------------------------------------------------- */

extern struct answer_obj fdns_nomem_answer;
struct answer_obj *fdns_answer_status(const char *name, fed_dns_type_t type,
                                      fed_dns_status_t st);
struct answer_obj *fdns_answer_from_dns(fed_dns_t *dns, const char *name, fed_dns_type_t type,
                                        int status, const unsigned char *abuf, int alen);

/* ---- fed_dns_cache.c ---------------------------------------------------------------- */

struct cache_entry *fdns_cache_find(fed_dns_t *dns, const char *name, fed_dns_type_t type);
void fdns_cache_put(fed_dns_t *dns, struct answer_obj *o);

/* ---- fed_dns_locate.c --------------------------------------------------------------- */

void fdns_locate_free(struct locate *l);
void fdns_locate_finish(struct locate *l, fed_locate_status_t st);

#endif
