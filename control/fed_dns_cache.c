/* Federation DNS cache (answers by name and type, bounded, TTL-limited) and the
 * down-marking of destinations (host, port, transport) that failed. */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fed_dns_int.h"

/* ---- cache ------------------------------------------------------------------------ */

static uint32_t key_hash(const char *name, fed_dns_type_t type)
{
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return (h ^ (uint32_t)type) * 16777619u;
}

static void cache_remove_at(fed_dns_t *dns, struct cache_entry **pp)
{
    struct cache_entry *e = *pp;
    *pp = e->next;
    fed_dns_answer_unref(&e->ans->pub);
    free(e);
    dns->cache_count--;
}

/* The live entry for (name, type); removes it when expired. */
struct cache_entry *fdns_cache_find(fed_dns_t *dns, const char *name, fed_dns_type_t type)
{
    uint32_t h = key_hash(name, type);
    struct cache_entry **pp = &dns->buckets[h & (dns->nbuckets - 1)];
    while (*pp != NULL) {
        struct cache_entry *e = *pp;
        if (e->hash == h && e->ans->pub.type == type && strcmp(e->ans->pub.name, name) == 0) {
            if (e->ans->pub.expires_ms <= fdns_now_ms(dns)) {
                cache_remove_at(dns, pp);
                return NULL;
            }
            return e;
        }
        pp = &e->next;
    }
    return NULL;
}

/* Drops expired entries; when none expired, the one closest to expiry. */
static void cache_make_room(fed_dns_t *dns)
{
    uint64_t now = fdns_now_ms(dns);
    struct cache_entry **victim = NULL;
    bool dropped = false;
    for (size_t b = 0; b < dns->nbuckets; b++) {
        struct cache_entry **pp = &dns->buckets[b];
        while (*pp != NULL) {
            if ((*pp)->ans->pub.expires_ms <= now) {
                cache_remove_at(dns, pp);
                dropped = true;
                continue;
            }
            if (!dropped &&
                (victim == NULL || (*pp)->ans->pub.expires_ms < (*victim)->ans->pub.expires_ms))
                victim = pp;
            pp = &(*pp)->next;
        }
    }
    if (!dropped && victim != NULL)
        cache_remove_at(dns, victim);
}

void fdns_cache_put(fed_dns_t *dns, struct answer_obj *o)
{
    if (dns->cache_max == 0 || o->is_static)
        return;
    uint32_t h = key_hash(o->pub.name, o->pub.type);
    struct cache_entry **pp = &dns->buckets[h & (dns->nbuckets - 1)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->hash == h && (*pp)->ans->pub.type == o->pub.type &&
            strcmp((*pp)->ans->pub.name, o->pub.name) == 0) {
            cache_remove_at(dns, pp);
            break;
        }
    }
    if (dns->cache_count >= dns->cache_max)
        cache_make_room(dns);
    struct cache_entry *e = malloc(sizeof *e);
    if (e == NULL)
        return;
    e->hash = h;
    e->ans = o;
    o->refs++;
    size_t b = h & (dns->nbuckets - 1);
    e->next = dns->buckets[b];
    dns->buckets[b] = e;
    dns->cache_count++;
}

const struct fed_dns_answer *fed_dns_cache_get(fed_dns_t *dns, const char *name,
                                               fed_dns_type_t type)
{
    char key[FED_NAME_BUF];
    if (dns == NULL || fed_name_normalize(name, FED_NAME_NUL, NAME_FLAGS, key, sizeof key) < 0)
        return NULL;
    struct cache_entry *e = fdns_cache_find(dns, key, type);
    if (e == NULL)
        return NULL;
    fed_dns_answer_ref(&e->ans->pub);
    return &e->ans->pub;
}

size_t fed_dns_cache_count(const fed_dns_t *dns)
{
    return dns ? dns->cache_count : 0;
}

void fed_dns_cache_flush(fed_dns_t *dns)
{
    if (dns == NULL || dns->buckets == NULL)
        return;
    for (size_t b = 0; b < dns->nbuckets; b++) {
        while (dns->buckets[b] != NULL)
            cache_remove_at(dns, &dns->buckets[b]);
    }
}

/* ---- down marking -------------------------------------------------------------------- */

static struct down_entry *down_find(fed_dns_t *dns, const char *host, uint16_t port,
                                    fed_transport_t tp)
{
    uint64_t now = fdns_now_ms(dns);
    for (size_t i = 0; i < dns->down_max; i++) {
        struct down_entry *d = &dns->down[i];
        if (d->host[0] == '\0')
            continue;
        if (d->until_ms <= now) {
            d->host[0] = '\0';
            continue;
        }
        if (d->port == port && d->tp == tp && strcmp(d->host, host) == 0)
            return d;
    }
    return NULL;
}

static bool down_key(const char *host, char *key)
{
    if (host == NULL)
        return false;
    if (fed_name_is_ip_literal(host, FED_NAME_NUL)) {
        size_t n = strlen(host);
        if (host[0] == '[' && n >= 2) {
            host++;
            n -= 2;
        }
        if (n >= FED_NAME_BUF)
            return false;
        for (size_t i = 0; i < n; i++)
            key[i] = (host[i] >= 'A' && host[i] <= 'Z') ? (char)(host[i] + 32) : host[i];
        key[n] = '\0';
        return true;
    }
    return fed_name_normalize(host, FED_NAME_NUL, NAME_FLAGS, key, FED_NAME_BUF) >= 0;
}

void fed_dns_mark_down(fed_dns_t *dns, const char *host, uint16_t port, fed_transport_t tp,
                       uint32_t seconds)
{
    char key[FED_NAME_BUF];
    if (dns == NULL || !down_key(host, key))
        return;
    if (seconds == 0) {
        fed_dns_mark_up(dns, host, port, tp);
        return;
    }
    if (seconds > FED_DNS_DOWN_MAX_S)
        seconds = FED_DNS_DOWN_MAX_S;
    uint64_t until = fdns_now_ms(dns) + (uint64_t)seconds * 1000u;
    struct down_entry *d = down_find(dns, key, port, tp);
    if (d == NULL) {
        for (size_t i = 0; i < dns->down_max; i++) {
            if (dns->down[i].host[0] == '\0') {
                d = &dns->down[i];
                break;
            }
            if (d == NULL || dns->down[i].until_ms < d->until_ms)
                d = &dns->down[i];
        }
    }
    memcpy(d->host, key, sizeof d->host);
    d->port = port;
    d->tp = tp;
    d->until_ms = until;
}

void fed_dns_mark_up(fed_dns_t *dns, const char *host, uint16_t port, fed_transport_t tp)
{
    char key[FED_NAME_BUF];
    if (dns == NULL || !down_key(host, key))
        return;
    struct down_entry *d = down_find(dns, key, port, tp);
    if (d != NULL)
        d->host[0] = '\0';
}

bool fed_dns_is_down(fed_dns_t *dns, const char *host, uint16_t port, fed_transport_t tp)
{
    char key[FED_NAME_BUF];
    if (dns == NULL || !down_key(host, key))
        return false;
    return down_find(dns, key, port, tp) != NULL;
}
