/* Asynchronous DNS for federation on c-ares (see fed_dns.h for the design). */
#include "fed_dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "cn_time.h"

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

static struct answer_obj *obj_of(const struct fed_dns_answer *ans)
{
    return (struct answer_obj *)((char *)(uintptr_t)ans - offsetof(struct answer_obj, pub));
}

void fed_dns_answer_ref(const struct fed_dns_answer *ans)
{
    if (ans == NULL)
        return;
    struct answer_obj *o = obj_of(ans);
    if (!o->is_static)
        o->refs++;
}

void fed_dns_answer_unref(const struct fed_dns_answer *ans)
{
    if (ans == NULL)
        return;
    struct answer_obj *o = obj_of(ans);
    if (!o->is_static && --o->refs == 0)
        free(o);
}

static struct answer_obj *answer_new(const char *name, fed_dns_type_t type, size_t n,
                                     size_t recsize)
{
    struct answer_obj *o = calloc(1, sizeof *o + n * recsize);
    if (o == NULL)
        return NULL;
    o->refs = 1;
    snprintf(o->pub.name, sizeof o->pub.name, "%s", name);
    o->pub.type = type;
    o->pub.n = 0;
    if (n > 0) {
        void *recs = o + 1;
        if (type == FED_DNS_T_SRV)
            o->pub.srv = recs;
        else if (type == FED_DNS_T_NAPTR)
            o->pub.naptr = recs;
        else
            o->pub.addr = recs;
    }
    return o;
}

/* ---- the resolver ------------------------------------------------------------------- */

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

static uint64_t now_ms(fed_dns_t *dns)
{
    return dns->clock ? dns->clock(dns->clock_arg) : cn_now_ms();
}

static uint32_t default_rand(void *arg)
{
    fed_dns_t *dns = arg;
    /* xorshift64* */
    uint64_t x = dns->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    dns->rng = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static uint32_t dns_rand(fed_dns_t *dns)
{
    return dns->rand ? dns->rand(dns->rand_arg) : default_rand(dns);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    fed_dns_t *dns = data;
    if (dns->sock_cb != NULL)
        dns->sock_cb(dns->sock_arg, (int)fd, readable != 0, writable != 0);
}

fed_dns_t *fed_dns_new(const struct fed_dns_conf *conf, char *err, size_t errsz)
{
    static const struct fed_dns_conf defaults;
    fed_dns_t *dns = NULL;
    int rc;

    if (conf == NULL)
        conf = &defaults;
    dns = calloc(1, sizeof *dns);
    if (dns == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    dns->ttl_max = conf->ttl_max ? conf->ttl_max : DEF_TTL_MAX;
    dns->neg_ttl_default = conf->neg_ttl_default ? conf->neg_ttl_default : DEF_NEG_TTL;
    dns->neg_ttl_max = conf->neg_ttl_max ? conf->neg_ttl_max : DEF_NEG_TTL_MAX;
    dns->sock_cb = conf->sock_cb;
    dns->sock_arg = conf->sock_arg;
    dns->clock = conf->clock;
    dns->clock_arg = conf->clock_arg;
    dns->rand = conf->rand;
    dns->rand_arg = conf->rand_arg;
    if (getrandom(&dns->rng, sizeof dns->rng, GRND_NONBLOCK) != (ssize_t)sizeof dns->rng)
        dns->rng = cn_now_ms() ^ ((uint64_t)(uintptr_t)dns << 16);
    dns->rng |= 1;
    dns->next_id = 1;
    dns->cache_max = conf->cache_max ? conf->cache_max : DEF_CACHE_MAX;
    dns->nbuckets = 16;
    while (dns->nbuckets < dns->cache_max && dns->nbuckets < (1u << 20))
        dns->nbuckets <<= 1;
    dns->buckets = calloc(dns->nbuckets, sizeof *dns->buckets);
    dns->down_max = conf->down_max ? conf->down_max : DEF_DOWN_MAX;
    dns->down = calloc(dns->down_max, sizeof *dns->down);
    if (dns->buckets == NULL || dns->down == NULL) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }

    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
        goto fail;
    }
    struct ares_options opts;
    memset(&opts, 0, sizeof opts);
    opts.timeout = conf->timeout_ms > 0 ? conf->timeout_ms : DEF_TIMEOUT_MS;
    opts.tries = conf->tries > 0 ? conf->tries : DEF_TRIES;
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = dns;
    opts.flags = ARES_FLAG_NOSEARCH;
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_FLAGS;
    rc = ares_init_options(&dns->ch, &opts, mask);
    if (rc != ARES_SUCCESS) {
        ares_library_cleanup();
        snprintf(err, errsz, "c-ares: %s", ares_strerror(rc));
        goto fail;
    }
    dns->channel_ok = true;
    if (conf->server != NULL && conf->server[0] != '\0') {
        rc = ares_set_servers_ports_csv(dns->ch, conf->server);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errsz, "DNS server \"%s\": %s", conf->server, ares_strerror(rc));
            goto fail;
        }
    }
    return dns;
fail:
    fed_dns_free(dns);
    return NULL;
}

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
static struct cache_entry *cache_find(fed_dns_t *dns, const char *name, fed_dns_type_t type)
{
    uint32_t h = key_hash(name, type);
    struct cache_entry **pp = &dns->buckets[h & (dns->nbuckets - 1)];
    while (*pp != NULL) {
        struct cache_entry *e = *pp;
        if (e->hash == h && e->ans->pub.type == type && strcmp(e->ans->pub.name, name) == 0) {
            if (e->ans->pub.expires_ms <= now_ms(dns)) {
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
    uint64_t now = now_ms(dns);
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

static void cache_put(fed_dns_t *dns, struct answer_obj *o)
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
    struct cache_entry *e = cache_find(dns, key, type);
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

/* ---- DNS message walking ------------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Skips a (possibly compressed) name at *pos; -1 when malformed. */
static int skip_name(const uint8_t *msg, size_t len, size_t *pos)
{
    size_t p = *pos;
    for (unsigned labels = 0; labels < 128; labels++) {
        if (p >= len)
            return -1;
        uint8_t l = msg[p];
        if ((l & 0xC0) == 0xC0) {
            if (p + 2 > len)
                return -1;
            *pos = p + 2;
            return 0;
        }
        if ((l & 0xC0) != 0)
            return -1;
        if (l == 0) {
            *pos = p + 1;
            return 0;
        }
        p += 1u + l;
    }
    return -1;
}

int fed_dns_msg_ttl(const uint8_t *msg, size_t len, struct fed_dns_msg_ttl *out)
{
    memset(out, 0, sizeof *out);
    if (msg == NULL || len < 12)
        return -1;
    out->rcode = msg[3] & 0x0F;
    unsigned qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8);
    size_t pos = 12;
    for (unsigned i = 0; i < qd; i++) {
        if (skip_name(msg, len, &pos) != 0 || pos + 4 > len)
            return -1;
        pos += 4;
    }
    for (unsigned i = 0; i < an + ns; i++) {
        if (skip_name(msg, len, &pos) != 0 || pos + 10 > len)
            return -1;
        uint16_t type = rd16(msg + pos);
        uint32_t ttl = rd32(msg + pos + 4);
        uint16_t rdlen = rd16(msg + pos + 8);
        pos += 10;
        if (pos + rdlen > len)
            return -1;
        if (ttl > 0x7FFFFFFFu) /* RFC 2181 §8: treat as zero */
            ttl = 0;
        if (i < an) {
            if (!out->have_answer || ttl < out->answer_ttl)
                out->answer_ttl = ttl;
            out->have_answer = true;
        } else if (type == 6 /* SOA */ && rdlen >= 22 && !out->have_soa) {
            uint32_t minimum = rd32(msg + pos + rdlen - 4);
            if (minimum > 0x7FFFFFFFu)
                minimum = 0;
            out->neg_ttl = ttl < minimum ? ttl : minimum;
            out->have_soa = true;
        }
        pos += rdlen;
    }
    return 0;
}

/* ---- building answers ------------------------------------------------------------------ */

static fed_dns_status_t map_ares(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return FED_DNS_OK;
    case ARES_ENODATA:
        return FED_DNS_NODATA;
    case ARES_ENOTFOUND:
        return FED_DNS_NXDOMAIN;
    case ARES_ETIMEOUT:
        return FED_DNS_ERR_TIMEOUT;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ENOTIMP:
        return FED_DNS_ERR_SERVFAIL;
    case ARES_ECONNREFUSED:
        return FED_DNS_ERR_CONNREFUSED;
    case ARES_EFORMERR:
    case ARES_EBADRESP:
        return FED_DNS_ERR_FORMAT;
    case ARES_EBADNAME:
        return FED_DNS_ERR_BADNAME;
    case ARES_ENOMEM:
        return FED_DNS_ERR_NOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return FED_DNS_ERR_CANCELLED;
    default:
        return FED_DNS_ERR_OTHER;
    }
}

static void copy_name(char *dst, const char *src)
{
    /* canonical form; a name that does not normalise is kept lowercased as is */
    if (src == NULL || fed_name_normalize(src, FED_NAME_NUL, NAME_FLAGS, dst, FED_NAME_BUF) < 0) {
        size_t k = 0;
        for (; src != NULL && src[k] && k + 1 < FED_NAME_BUF; k++)
            dst[k] = (src[k] >= 'A' && src[k] <= 'Z') ? (char)(src[k] + 32) : src[k];
        if (k > 0 && dst[k - 1] == '.')
            k--;
        dst[k] = '\0';
    }
}

static int parse_srv(struct answer_obj **po, const char *name, const unsigned char *abuf, int alen)
{
    struct ares_srv_reply *list = NULL;
    int rc = ares_parse_srv_reply(abuf, alen, &list);
    if (rc != ARES_SUCCESS)
        return rc;
    size_t n = 0;
    for (struct ares_srv_reply *r = list; r != NULL && n < MAX_SRV_RECS; r = r->next)
        n++;
    struct answer_obj *o = answer_new(name, FED_DNS_T_SRV, n, sizeof(struct fed_dns_srv));
    if (o == NULL) {
        ares_free_data(list);
        return ARES_ENOMEM;
    }
    struct fed_dns_srv *recs = (struct fed_dns_srv *)(uintptr_t)o->pub.srv;
    size_t i = 0;
    for (struct ares_srv_reply *r = list; r != NULL && i < n; r = r->next, i++) {
        recs[i].priority = r->priority;
        recs[i].weight = r->weight;
        recs[i].port = r->port;
        copy_name(recs[i].target, r->host);
    }
    o->pub.n = n;
    ares_free_data(list);
    *po = o;
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

static int parse_naptr(struct answer_obj **po, const char *name, const unsigned char *abuf,
                       int alen)
{
    struct ares_naptr_reply *list = NULL;
    int rc = ares_parse_naptr_reply(abuf, alen, &list);
    if (rc != ARES_SUCCESS)
        return rc;
    size_t n = 0;
    for (struct ares_naptr_reply *r = list; r != NULL && n < MAX_SRV_RECS; r = r->next)
        n++;
    struct answer_obj *o = answer_new(name, FED_DNS_T_NAPTR, n, sizeof(struct fed_dns_naptr));
    if (o == NULL) {
        ares_free_data(list);
        return ARES_ENOMEM;
    }
    struct fed_dns_naptr *recs = (struct fed_dns_naptr *)(uintptr_t)o->pub.naptr;
    size_t i = 0;
    for (struct ares_naptr_reply *r = list; r != NULL && i < n; r = r->next, i++) {
        recs[i].order = r->order;
        recs[i].preference = r->preference;
        snprintf(recs[i].flags, sizeof recs[i].flags, "%s", (const char *)r->flags);
        snprintf(recs[i].service, sizeof recs[i].service, "%s", (const char *)r->service);
        snprintf(recs[i].regexp, sizeof recs[i].regexp, "%s", (const char *)r->regexp);
        copy_name(recs[i].replacement, r->replacement);
    }
    o->pub.n = n;
    ares_free_data(list);
    *po = o;
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

static int parse_addr(struct answer_obj **po, const char *name, fed_dns_type_t type,
                      const unsigned char *abuf, int alen)
{
    struct hostent *host = NULL;
    int rc, n = MAX_ADDRS;
    struct ares_addrttl *t4 = NULL;
    struct ares_addr6ttl *t6 = NULL;

    if (type == FED_DNS_T_A) {
        t4 = calloc(MAX_ADDRS, sizeof *t4);
        if (t4 == NULL)
            return ARES_ENOMEM;
        rc = ares_parse_a_reply(abuf, alen, &host, t4, &n);
    } else {
        t6 = calloc(MAX_ADDRS, sizeof *t6);
        if (t6 == NULL)
            return ARES_ENOMEM;
        rc = ares_parse_aaaa_reply(abuf, alen, &host, t6, &n);
    }
    if (host != NULL)
        ares_free_hostent(host);
    if (rc != ARES_SUCCESS)
        goto out;
    if (n <= 0) {
        rc = ARES_ENODATA;
        goto out;
    }
    struct answer_obj *o = answer_new(name, type, (size_t)n, sizeof(struct fed_dns_addr));
    if (o == NULL) {
        rc = ARES_ENOMEM;
        goto out;
    }
    struct fed_dns_addr *recs = (struct fed_dns_addr *)(uintptr_t)o->pub.addr;
    for (int i = 0; i < n; i++) {
        if (t4 != NULL) {
            recs[i].family = AF_INET;
            recs[i].u.v4 = t4[i].ipaddr;
            inet_ntop(AF_INET, &recs[i].u.v4, recs[i].text, sizeof recs[i].text);
        } else {
            recs[i].family = AF_INET6;
            memcpy(&recs[i].u.v6, &t6[i].ip6addr, sizeof recs[i].u.v6);
            inet_ntop(AF_INET6, &recs[i].u.v6, recs[i].text, sizeof recs[i].text);
        }
    }
    o->pub.n = (size_t)n;
    *po = o;
out:
    free(t4);
    free(t6);
    return rc;
}

static struct answer_obj nomem_answer = {
    .refs = 1,
    .is_static = true,
    .pub = {.status = FED_DNS_ERR_NOMEM},
};

/* An error or negative answer without records. */
static struct answer_obj *answer_status(const char *name, fed_dns_type_t type, fed_dns_status_t st)
{
    struct answer_obj *o = answer_new(name, type, 0, 0);
    if (o == NULL)
        return &nomem_answer;
    o->pub.status = st;
    return o;
}

static struct answer_obj *answer_from_dns(fed_dns_t *dns, const char *name, fed_dns_type_t type,
                                          int status, const unsigned char *abuf, int alen)
{
    struct answer_obj *o = NULL;
    struct fed_dns_msg_ttl mt;
    bool have_ttl = abuf != NULL && alen > 0 && fed_dns_msg_ttl(abuf, (size_t)alen, &mt) == 0;

    if (status == ARES_SUCCESS) {
        if (type == FED_DNS_T_SRV)
            status = parse_srv(&o, name, abuf, alen);
        else if (type == FED_DNS_T_NAPTR)
            status = parse_naptr(&o, name, abuf, alen);
        else
            status = parse_addr(&o, name, type, abuf, alen);
        if (status != ARES_SUCCESS && o != NULL) {
            fed_dns_answer_unref(&o->pub);
            o = NULL;
        }
    }
    fed_dns_status_t st = map_ares(status);
    if (o == NULL)
        o = answer_status(name, type, st);
    if (o->is_static)
        return o;
    o->pub.status = st;
    uint32_t ttl = 0;
    if (st == FED_DNS_OK) {
        ttl = have_ttl && mt.have_answer ? mt.answer_ttl : 0;
        if (ttl > dns->ttl_max)
            ttl = dns->ttl_max;
    } else if (st == FED_DNS_NXDOMAIN || st == FED_DNS_NODATA) {
        ttl = have_ttl && mt.have_soa ? mt.neg_ttl : dns->neg_ttl_default;
        if (ttl > dns->neg_ttl_max)
            ttl = dns->neg_ttl_max;
    }
    o->pub.ttl = ttl;
    o->pub.expires_ms = now_ms(dns) + (uint64_t)ttl * 1000u;
    return o;
}

/* ---- queries ----------------------------------------------------------------------- */

static void deliver(fed_dns_t *dns, struct waiter *list, struct answer_obj *o, bool cached)
{
    struct delivery d = {dns->deliveries, list};
    dns->deliveries = &d;
    while (d.list != NULL) {
        struct waiter *w = d.list;
        d.list = w->next;
        if (w->cb != NULL)
            w->cb(w->arg, &o->pub, cached);
        free(w);
    }
    dns->deliveries = d.prev;
}

static void on_ares(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct pending *p = arg;
    fed_dns_t *dns = p->dns;
    (void)timeouts;

    for (struct pending **pp = &dns->pending; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            dns->n_pending--;
            break;
        }
    }
    struct answer_obj *o = answer_from_dns(dns, p->name, p->type, status, abuf, alen);
    fed_dns_status_t st = o->pub.status;
    if ((st == FED_DNS_OK && o->pub.ttl > 0) || st == FED_DNS_NXDOMAIN || st == FED_DNS_NODATA)
        cache_put(dns, o);
    deliver(dns, p->waiters, o, false);
    fed_dns_answer_unref(&o->pub);
    free(p);
}

static void deliver_now(fed_dns_t *dns, const char *name, fed_dns_type_t type, fed_dns_status_t st,
                        fed_dns_cb cb, void *arg)
{
    struct answer_obj *o = answer_status(name ? name : "", type, st);
    if (!o->is_static)
        o->pub.expires_ms = now_ms(dns);
    cb(arg, &o->pub, false);
    fed_dns_answer_unref(&o->pub);
}

static bool id_pending(const fed_dns_t *dns, uint64_t id)
{
    for (const struct pending *p = dns->pending; p != NULL; p = p->next) {
        for (const struct waiter *w = p->waiters; w != NULL; w = w->next) {
            if (w->id == id)
                return true;
        }
    }
    return false;
}

uint64_t fed_dns_query(fed_dns_t *dns, const char *name, fed_dns_type_t type, fed_dns_cb cb,
                       void *arg)
{
    char key[FED_NAME_BUF];

    if (cb == NULL)
        return 0;
    if (dns == NULL || !dns->channel_ok ||
        (type != FED_DNS_T_A && type != FED_DNS_T_AAAA && type != FED_DNS_T_SRV &&
         type != FED_DNS_T_NAPTR)) {
        if (dns != NULL)
            deliver_now(dns, name, type, FED_DNS_ERR_ARG, cb, arg);
        return 0;
    }
    if (dns->freeing) {
        deliver_now(dns, name, type, FED_DNS_ERR_CANCELLED, cb, arg);
        return 0;
    }
    if (name == NULL || fed_name_normalize(name, FED_NAME_NUL, NAME_FLAGS, key, sizeof key) < 0) {
        deliver_now(dns, "", type, FED_DNS_ERR_BADNAME, cb, arg);
        return 0;
    }
    struct cache_entry *e = cache_find(dns, key, type);
    if (e != NULL) {
        struct answer_obj *o = e->ans;
        o->refs++; /* the callback may flush the cache */
        cb(arg, &o->pub, true);
        fed_dns_answer_unref(&o->pub);
        return 0;
    }

    struct waiter *w = calloc(1, sizeof *w);
    if (w == NULL) {
        cb(arg, &nomem_answer.pub, false);
        return 0;
    }
    w->id = dns->next_id++;
    w->cb = cb;
    w->arg = arg;
    uint64_t id = w->id;

    for (struct pending *p = dns->pending; p != NULL; p = p->next) {
        if (p->type == type && strcmp(p->name, key) == 0) {
            w->next = p->waiters;
            p->waiters = w;
            return id;
        }
    }
    struct pending *p = calloc(1, sizeof *p);
    if (p == NULL) {
        free(w);
        cb(arg, &nomem_answer.pub, false);
        return 0;
    }
    p->dns = dns;
    p->type = type;
    p->waiters = w;
    memcpy(p->name, key, sizeof key);
    p->next = dns->pending;
    dns->pending = p;
    dns->n_pending++;
    ares_query(dns->ch, key, 1 /* class IN */, (int)type, on_ares, p);
    /* c-ares may have answered already (immediate failure) */
    return id_pending(dns, id) ? id : 0;
}

/* ---- event loop -------------------------------------------------------------------- */

int fed_dns_timeout_ms(fed_dns_t *dns, int max_ms)
{
    struct timeval maxtv, tv, *t;
    if (dns == NULL || !dns->channel_ok)
        return max_ms;
    if (max_ms >= 0) {
        maxtv.tv_sec = max_ms / 1000;
        maxtv.tv_usec = (max_ms % 1000) * 1000;
        t = ares_timeout(dns->ch, &maxtv, &tv);
    } else {
        t = ares_timeout(dns->ch, NULL, &tv);
    }
    if (t == NULL)
        return -1;
    long ms = t->tv_sec * 1000L + (t->tv_usec + 999) / 1000;
    return ms > 0x7FFFFFFF ? 0x7FFFFFFF : (int)ms;
}

void fed_dns_process(fed_dns_t *dns, int read_fd, int write_fd)
{
    if (dns == NULL || !dns->channel_ok)
        return;
    ares_process_fd(dns->ch, read_fd < 0 ? ARES_SOCKET_BAD : (ares_socket_t)read_fd,
                    write_fd < 0 ? ARES_SOCKET_BAD : (ares_socket_t)write_fd);
}

size_t fed_dns_fds(fed_dns_t *dns, struct pollfd *fds, size_t max)
{
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    if (dns == NULL || !dns->channel_ok)
        return 0;
    int bits = ares_getsock(dns->ch, socks, ARES_GETSOCK_MAXNUM);
    size_t n = 0;
    for (int i = 0; i < ARES_GETSOCK_MAXNUM && n < max; i++) {
        /* bit i: readable, bit i + ARES_GETSOCK_MAXNUM: writable (c-ares' own macros
         * shift a signed 1 into the sign bit) */
        short ev = 0;
        if (((unsigned)bits >> i) & 1u)
            ev |= POLLIN;
        if (((unsigned)bits >> (i + ARES_GETSOCK_MAXNUM)) & 1u)
            ev |= POLLOUT;
        if (ev == 0)
            continue;
        fds[n].fd = (int)socks[i];
        fds[n].events = ev;
        fds[n].revents = 0;
        n++;
    }
    return n;
}

size_t fed_dns_pending(const fed_dns_t *dns)
{
    return dns ? dns->n_pending : 0;
}

/* One poll round of at most max_ms. */
static void run_once(fed_dns_t *dns, int max_ms)
{
    struct pollfd fds[ARES_GETSOCK_MAXNUM];
    size_t n = fed_dns_fds(dns, fds, ARES_GETSOCK_MAXNUM);
    int wait = fed_dns_timeout_ms(dns, max_ms);
    if (wait < 0 || wait > max_ms)
        wait = max_ms;
    int r = poll(fds, (nfds_t)n, wait);
    if (r <= 0) {
        fed_dns_process(dns, FED_DNS_NO_FD, FED_DNS_NO_FD);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (fds[i].revents == 0)
            continue;
        int rfd = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : FED_DNS_NO_FD;
        int wfd = (fds[i].revents & (POLLOUT | POLLERR | POLLHUP)) ? fds[i].fd : FED_DNS_NO_FD;
        fed_dns_process(dns, rfd, wfd);
    }
}

fed_dns_status_t fed_dns_run(fed_dns_t *dns, int timeout_ms)
{
    if (dns == NULL)
        return FED_DNS_ERR_ARG;
    uint64_t deadline = cn_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    while (dns->n_pending > 0) {
        uint64_t now = cn_now_ms();
        if (now >= deadline)
            return FED_DNS_ERR_TIMEOUT;
        run_once(dns, (int)(deadline - now));
    }
    return FED_DNS_OK;
}

struct sync_query {
    bool done;
    const struct fed_dns_answer *ans;
};

static void on_sync_query(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct sync_query *sq = arg;
    (void)cached;
    fed_dns_answer_ref(ans);
    sq->ans = ans;
    sq->done = true;
}

fed_dns_status_t fed_dns_query_sync(fed_dns_t *dns, const char *name, fed_dns_type_t type,
                                    int timeout_ms, const struct fed_dns_answer **out)
{
    struct sync_query sq = {false, NULL};
    *out = NULL;
    if (dns == NULL)
        return FED_DNS_ERR_ARG;
    uint64_t id = fed_dns_query(dns, name, type, on_sync_query, &sq);
    uint64_t deadline = cn_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    while (!sq.done) {
        uint64_t now = cn_now_ms();
        if (now >= deadline) {
            fed_dns_cancel(dns, id);
            return FED_DNS_ERR_TIMEOUT;
        }
        run_once(dns, (int)(deadline - now));
    }
    *out = sq.ans;
    return sq.ans->status;
}

/* ---- names for statuses -------------------------------------------------------------- */

const char *fed_dns_status_str(fed_dns_status_t st)
{
    switch (st) {
    case FED_DNS_OK:
        return "ok";
    case FED_DNS_NXDOMAIN:
        return "NXDOMAIN, no such name";
    case FED_DNS_NODATA:
        return "no record of this type";
    case FED_DNS_ERR_TIMEOUT:
        return "timeout (no answer from the DNS server)";
    case FED_DNS_ERR_SERVFAIL:
        return "server failure or refusal";
    case FED_DNS_ERR_CONNREFUSED:
        return "DNS server unreachable or refusing";
    case FED_DNS_ERR_FORMAT:
        return "malformed DNS answer";
    case FED_DNS_ERR_BADNAME:
        return "invalid name";
    case FED_DNS_ERR_NOMEM:
        return "out of memory";
    case FED_DNS_ERR_CANCELLED:
        return "cancelled";
    case FED_DNS_ERR_ARG:
        return "invalid argument";
    case FED_DNS_ERR_OTHER:
        return "DNS error";
    }
    return "unknown";
}

const char *fed_dns_type_str(fed_dns_type_t type)
{
    switch (type) {
    case FED_DNS_T_A:
        return "A";
    case FED_DNS_T_AAAA:
        return "AAAA";
    case FED_DNS_T_SRV:
        return "SRV";
    case FED_DNS_T_NAPTR:
        return "NAPTR";
    }
    return "?";
}

const char *fed_transport_str(fed_transport_t tp)
{
    switch (tp) {
    case FED_TP_UDP:
        return "udp";
    case FED_TP_TCP:
        return "tcp";
    case FED_TP_TLS:
        return "tls";
    }
    return "?";
}

/* ---- down marking -------------------------------------------------------------------- */

static struct down_entry *down_find(fed_dns_t *dns, const char *host, uint16_t port,
                                    fed_transport_t tp)
{
    uint64_t now = now_ms(dns);
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
    uint64_t until = now_ms(dns) + (uint64_t)seconds * 1000u;
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

/* ---- SRV selection ------------------------------------------------------------------- */

/* Orders the records recs[idx[0..nidx-1]]; writes record indexes to order. */
static size_t srv_order_idx(const struct fed_dns_srv *recs, const size_t *idx, size_t nidx,
                            fed_srv_mode_t mode, fed_rand_fn rnd, void *rnd_arg, size_t *order,
                            size_t max)
{
    size_t cand[MAX_SRV_RECS];
    size_t nc = 0;
    for (size_t i = 0; i < nidx && nc < MAX_SRV_RECS; i++) {
        if (recs[idx[i]].target[0] != '\0')
            cand[nc++] = idx[i];
    }
    if (nc == 0 || max == 0)
        return 0;
    /* stable sort by priority, zero weights first within a priority (RFC 2782) */
    for (size_t i = 1; i < nc; i++) {
        size_t v = cand[i], j = i;
        while (j > 0) {
            const struct fed_dns_srv *a = &recs[cand[j - 1]], *b = &recs[v];
            bool after = a->priority > b->priority ||
                         (a->priority == b->priority && a->weight != 0 && b->weight == 0);
            if (!after)
                break;
            cand[j] = cand[j - 1];
            j--;
        }
        cand[j] = v;
    }

    if (mode == FED_SRV_MICROSOFT) {
        uint16_t prio = recs[cand[0]].priority;
        uint16_t best = 0;
        size_t ties[MAX_SRV_RECS], nt = 0;
        for (size_t i = 0; i < nc && recs[cand[i]].priority == prio; i++) {
            uint16_t w = recs[cand[i]].weight;
            if (nt == 0 || w > best) {
                best = w;
                nt = 0;
            }
            if (w == best)
                ties[nt++] = cand[i];
        }
        order[0] = ties[nt > 1 && rnd ? rnd(rnd_arg) % nt : 0];
        return 1;
    }

    size_t out = 0;
    size_t g = 0;
    while (g < nc && out < max) {
        size_t end = g;
        while (end < nc && recs[cand[end]].priority == recs[cand[g]].priority)
            end++;
        /* weighted random selection without replacement within [g, end) */
        while (g < end && out < max) {
            uint64_t sum = 0;
            for (size_t i = g; i < end; i++)
                sum += recs[cand[i]].weight;
            uint64_t r = rnd ? (uint64_t)rnd(rnd_arg) % (sum + 1) : 0;
            size_t pick = g;
            uint64_t run = 0;
            for (size_t i = g; i < end; i++) {
                run += recs[cand[i]].weight;
                if (run >= r) {
                    pick = i;
                    break;
                }
            }
            order[out++] = cand[pick];
            /* remove pick, keeping the rest in order */
            for (size_t i = pick; i > g; i--)
                cand[i] = cand[i - 1];
            g++;
        }
        g = end;
    }
    return out;
}

size_t fed_srv_order(const struct fed_dns_srv *recs, size_t n, fed_srv_mode_t mode, fed_rand_fn rnd,
                     void *rnd_arg, size_t *order, size_t max)
{
    size_t idx[MAX_SRV_RECS];
    if (recs == NULL || order == NULL)
        return 0;
    if (n > MAX_SRV_RECS)
        n = MAX_SRV_RECS;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    return srv_order_idx(recs, idx, n, mode, rnd, rnd_arg, order, max);
}

static uint32_t resolver_rand(void *arg)
{
    return dns_rand(arg);
}

size_t fed_dns_srv_select(fed_dns_t *dns, const struct fed_dns_answer *srv, fed_transport_t tp,
                          fed_srv_mode_t mode, size_t *order, size_t max)
{
    size_t idx[MAX_SRV_RECS], n = 0;
    if (dns == NULL || srv == NULL || srv->type != FED_DNS_T_SRV || srv->srv == NULL)
        return 0;
    for (size_t i = 0; i < srv->n && n < MAX_SRV_RECS; i++) {
        const struct fed_dns_srv *r = &srv->srv[i];
        if (!fed_dns_is_down(dns, r->target, r->port, tp))
            idx[n++] = i;
    }
    return srv_order_idx(srv->srv, idx, n, mode, resolver_rand, dns, order, max);
}

/* ---- locate ------------------------------------------------------------------------- */

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

const char *fed_locate_status_str(fed_locate_status_t st)
{
    switch (st) {
    case FED_LOC_OK:
        return "ok";
    case FED_LOC_NO_SRV:
        return "no SRV record";
    case FED_LOC_STRICT_REFUSED:
        return "every SRV target is outside the domain (strict naming)";
    case FED_LOC_NO_ADDRESS:
        return "no address for the targets";
    case FED_LOC_ALL_DOWN:
        return "every destination is marked down";
    case FED_LOC_DNS_ERROR:
        return "DNS lookup failed";
    case FED_LOC_BAD_DOMAIN:
        return "invalid domain";
    case FED_LOC_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

static void locate_free(struct locate *l)
{
    for (size_t t = 0; t < l->n_targets; t++) {
        fed_dns_answer_unref(l->targets[t].ans[0]);
        fed_dns_answer_unref(l->targets[t].ans[1]);
    }
    free(l);
}

static void locate_unlink(struct locate *l)
{
    for (struct locate **pp = &l->dns->locates; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            return;
        }
    }
}

static void locate_finish(struct locate *l, fed_locate_status_t st)
{
    l->loc.status = st;
    locate_unlink(l);
    l->cb(l->arg, &l->loc);
    locate_free(l);
}

static void note_dns_error(struct locate *l, fed_dns_status_t st)
{
    if (st < 0 && st != FED_DNS_ERR_CANCELLED && l->loc.dns_status == FED_DNS_OK)
        l->loc.dns_status = st;
}

static void add_target(struct locate *l, const char *host, uint16_t port, fed_transport_t tp,
                       uint16_t prio, uint16_t weight, bool fallback)
{
    if (l->n_targets >= LOC_MAX_TARGETS)
        return;
    struct loc_target *t = &l->targets[l->n_targets++];
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "%s", host);
    t->port = port;
    t->tp = tp;
    t->priority = prio;
    t->weight = weight;
    t->fallback = fallback;
}

static void addr_assemble(struct locate *l)
{
    bool any_addr = false, any_error = false;
    for (size_t t = 0; t < l->n_targets; t++) {
        const struct loc_target *tg = &l->targets[t];
        for (int f = 0; f < 2; f++) {
            const struct fed_dns_answer *a = tg->ans[f];
            if (a == NULL)
                continue;
            if (a->status == FED_DNS_ERR_CANCELLED) {
                locate_finish(l, FED_LOC_CANCELLED);
                return;
            }
            if (a->status < 0)
                any_error = true;
            note_dns_error(l, a->status);
            for (size_t i = 0; i < a->n; i++) {
                any_addr = true;
                if (fed_dns_is_down(l->dns, a->addr[i].text, tg->port, tg->tp)) {
                    l->loc.n_down_skipped++;
                    continue;
                }
                if (l->loc.n_dests >= FED_LOCATE_MAX_DESTS)
                    continue;
                struct fed_dest *d = &l->loc.dests[l->loc.n_dests++];
                memcpy(d->host, tg->host, sizeof d->host);
                d->addr = a->addr[i];
                d->port = tg->port;
                d->transport = tg->tp;
                d->priority = tg->priority;
                d->weight = tg->weight;
                d->fallback = tg->fallback;
            }
        }
    }
    if (l->loc.n_dests > 0)
        locate_finish(l, FED_LOC_OK);
    else if (any_addr)
        locate_finish(l, FED_LOC_ALL_DOWN);
    else if (l->loc.used_fallback && l->loc.n_refused > 0)
        locate_finish(l, FED_LOC_STRICT_REFUSED);
    else if (l->loc.used_fallback && l->loc.n_srv == 0)
        locate_finish(l, any_error ? FED_LOC_DNS_ERROR : FED_LOC_NO_SRV);
    else
        locate_finish(l, any_error ? FED_LOC_DNS_ERROR : FED_LOC_NO_ADDRESS);
}

static void addr_sub_done(struct locate *l)
{
    if (--l->pending == 0)
        addr_assemble(l);
}

static void on_loc_addr(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct loc_sub *s = arg;
    struct locate *l = s->l;
    (void)cached;
    s->id = 0;
    fed_dns_answer_ref(ans);
    l->targets[s->target].ans[s->family] = ans;
    addr_sub_done(l);
}

/* Looks up every target's A and AAAA records. */
static void addr_stage(struct locate *l)
{
    size_t kept = 0;
    for (size_t t = 0; t < l->n_targets; t++) {
        struct loc_target *tg = &l->targets[t];
        if (fed_dns_is_down(l->dns, tg->host, tg->port, tg->tp)) {
            l->loc.n_down_skipped++;
            continue;
        }
        if (kept != t)
            l->targets[kept] = *tg;
        kept++;
    }
    if (kept == 0 && l->n_targets > 0) {
        l->n_targets = 0;
        locate_finish(l, FED_LOC_ALL_DOWN);
        return;
    }
    l->n_targets = kept;
    l->pending = 1; /* held while issuing: a cached answer must not finish early */
    for (size_t t = 0; t < l->n_targets; t++) {
        for (int f = 0; f < 2; f++) {
            struct loc_sub *s = &l->subs[2 * t + (size_t)f];
            s->l = l;
            s->target = t;
            s->family = f;
            s->id = 0;
            l->pending++;
            uint64_t id = fed_dns_query(l->dns, l->targets[t].host,
                                        f == 0 ? FED_DNS_T_A : FED_DNS_T_AAAA, on_loc_addr, s);
            if (id != 0)
                s->id = id;
        }
    }
    addr_sub_done(l);
}

static void fallback_or_finish(struct locate *l, fed_locate_status_t st)
{
    char hosts[3][FED_NAME_BUF];
    size_t n = l->opts.fallback ? fed_name_fallback_hosts(l->loc.domain, FED_NAME_NUL,
                                                          l->opts.fallback, hosts, 3)
                                : 0;
    if (n == 0) {
        locate_finish(l, st);
        return;
    }
    l->loc.used_fallback = true;
    l->n_targets = 0;
    for (size_t i = 0; i < n; i++)
        add_target(l, hosts[i], 5061, FED_TP_TLS, 0, 0, true);
    addr_stage(l);
}

static void srv_stage(struct locate *l);

static void no_srv(struct locate *l)
{
    if (l->opts.kind == FED_LOCATE_FEDERATION) {
        fallback_or_finish(l, l->loc.dns_status < 0 ? FED_LOC_DNS_ERROR : FED_LOC_NO_SRV);
        return;
    }
    /* RFC 3263 §4.2: no SRV, so the domain's own addresses (TLS preferred) */
    l->n_targets = 0;
    add_target(l, l->loc.domain, 5061, FED_TP_TLS, 0, 0, false);
    addr_stage(l);
}

static void on_loc_srv(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct locate *l = arg;
    (void)cached;
    l->single_id = 0;
    if (ans->status == FED_DNS_ERR_CANCELLED) {
        locate_finish(l, FED_LOC_CANCELLED);
        return;
    }
    note_dns_error(l, ans->status);
    fed_transport_t tp = l->cands[l->cand_i].tp;
    size_t usable = 0;
    for (size_t i = 0; ans->status == FED_DNS_OK && i < ans->n; i++)
        usable += ans->srv[i].target[0] != '\0';
    if (ans->status == FED_DNS_OK && ans->n > 0 && usable == 0) {
        /* a lone "." target: the service is decidedly not available (RFC 2782) */
        snprintf(l->loc.srv_name, sizeof l->loc.srv_name, "%s", ans->name);
        locate_finish(l, FED_LOC_NO_SRV);
        return;
    }
    if (usable == 0) {
        if (++l->cand_i < l->n_cands)
            srv_stage(l);
        else
            no_srv(l);
        return;
    }

    snprintf(l->loc.srv_name, sizeof l->loc.srv_name, "%s", ans->name);
    l->loc.n_srv = 0;
    for (size_t i = 0; i < ans->n && l->loc.n_srv < FED_LOCATE_MAX_SRV; i++)
        l->loc.srv[l->loc.n_srv++] = ans->srv[i];

    size_t idx[MAX_SRV_RECS], n = 0, allowed = 0;
    bool strict = l->opts.kind == FED_LOCATE_FEDERATION && l->opts.strict_naming;
    for (size_t i = 0; i < ans->n && i < MAX_SRV_RECS; i++) {
        const struct fed_dns_srv *r = &ans->srv[i];
        if (r->target[0] == '\0')
            continue;
        fed_strict_t why = fed_name_strict(l->loc.domain, FED_NAME_NUL, r->target, FED_NAME_NUL);
        if (strict && !fed_strict_ok(why)) {
            if (l->loc.n_refused < FED_LOCATE_MAX_REFUSED) {
                size_t k = l->loc.n_refused++;
                memcpy(l->loc.refused[k].target, r->target, sizeof l->loc.refused[k].target);
                l->loc.refused[k].port = r->port;
                l->loc.refused[k].why = why;
            }
            continue;
        }
        allowed++;
        if (fed_dns_is_down(l->dns, r->target, r->port, tp)) {
            l->loc.n_down_skipped++;
            continue;
        }
        idx[n++] = i;
    }
    if (allowed == 0) {
        fallback_or_finish(l, FED_LOC_STRICT_REFUSED);
        return;
    }
    size_t order[MAX_SRV_RECS];
    size_t no = srv_order_idx(ans->srv, idx, n, l->opts.srv_mode, resolver_rand, l->dns, order,
                              FED_LOCATE_MAX_SRV);
    if (no == 0) {
        locate_finish(l, FED_LOC_ALL_DOWN);
        return;
    }
    l->n_targets = 0;
    for (size_t i = 0; i < no; i++) {
        const struct fed_dns_srv *r = &ans->srv[order[i]];
        add_target(l, r->target, r->port, tp, r->priority, r->weight, false);
    }
    addr_stage(l);
}

static void srv_stage(struct locate *l)
{
    uint64_t id = fed_dns_query(l->dns, l->cands[l->cand_i].name, FED_DNS_T_SRV, on_loc_srv, l);
    /* id 0: the callback has run and `l` may be gone; otherwise it is still waiting */
    if (id != 0)
        l->single_id = id;
}

static void add_cand(struct locate *l, const char *prefix, const char *name, fed_transport_t tp)
{
    if (l->n_cands >= LOC_MAX_CANDS)
        return;
    int n = snprintf(l->cands[l->n_cands].name, FED_NAME_BUF, "%s%s", prefix, name);
    if (n < 0 || n >= FED_NAME_BUF)
        return;
    l->cands[l->n_cands++].tp = tp;
}

static void default_cands(struct locate *l)
{
    l->n_cands = 0;
    l->cand_i = 0;
    add_cand(l, "_sips._tcp.", l->loc.domain, FED_TP_TLS);
    if (!l->opts.tls_only) {
        add_cand(l, "_sip._tcp.", l->loc.domain, FED_TP_TCP);
        add_cand(l, "_sip._udp.", l->loc.domain, FED_TP_UDP);
    }
}

static bool naptr_transport(const struct fed_dns_naptr *r, fed_transport_t *tp)
{
    if (strcasecmp(r->flags, "s") != 0 || r->replacement[0] == '\0')
        return false;
    if (strcasecmp(r->service, "SIPS+D2T") == 0)
        *tp = FED_TP_TLS;
    else if (strcasecmp(r->service, "SIP+D2T") == 0)
        *tp = FED_TP_TCP;
    else if (strcasecmp(r->service, "SIP+D2U") == 0)
        *tp = FED_TP_UDP;
    else
        return false;
    return true;
}

static void on_loc_naptr(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct locate *l = arg;
    (void)cached;
    l->single_id = 0;
    if (ans->status == FED_DNS_ERR_CANCELLED) {
        locate_finish(l, FED_LOC_CANCELLED);
        return;
    }
    note_dns_error(l, ans->status);
    size_t pick[MAX_SRV_RECS];
    fed_transport_t tps[MAX_SRV_RECS];
    size_t n = 0;
    for (size_t i = 0; ans->status == FED_DNS_OK && i < ans->n && n < MAX_SRV_RECS; i++) {
        fed_transport_t tp;
        if (!naptr_transport(&ans->naptr[i], &tp) || (l->opts.tls_only && tp != FED_TP_TLS))
            continue;
        /* insertion by (TLS first, order, preference), stable */
        size_t j = n;
        while (j > 0) {
            const struct fed_dns_naptr *a = &ans->naptr[pick[j - 1]];
            const struct fed_dns_naptr *b = &ans->naptr[i];
            bool a_tls = tps[j - 1] == FED_TP_TLS, b_tls = tp == FED_TP_TLS;
            bool after =
                (!a_tls && b_tls) ||
                (a_tls == b_tls &&
                 (a->order > b->order || (a->order == b->order && a->preference > b->preference)));
            if (!after)
                break;
            pick[j] = pick[j - 1];
            tps[j] = tps[j - 1];
            j--;
        }
        pick[j] = i;
        tps[j] = tp;
        n++;
    }
    if (n == 0) {
        default_cands(l);
    } else {
        l->n_cands = 0;
        l->cand_i = 0;
        for (size_t i = 0; i < n; i++)
            add_cand(l, "", ans->naptr[pick[i]].replacement, tps[i]);
    }
    srv_stage(l);
}

static bool locate_alive(fed_dns_t *dns, uint64_t id)
{
    for (struct locate *x = dns->locates; x != NULL; x = x->next) {
        if (x->id == id)
            return true;
    }
    return false;
}

static void locate_start(struct locate *l)
{
    const char *d = l->loc.domain;
    if (fed_name_is_ip_literal(d, FED_NAME_NUL)) {
        struct fed_dest *dest = &l->loc.dests[0];
        const char *a = d;
        char buf[INET6_ADDRSTRLEN + 2];
        size_t len = strlen(d);
        if (d[0] == '[' && len >= 2 && len - 2 < sizeof buf) {
            memcpy(buf, d + 1, len - 2);
            buf[len - 2] = '\0';
            a = buf;
        }
        snprintf(dest->host, sizeof dest->host, "%s", a);
        if (inet_pton(AF_INET, a, &dest->addr.u.v4) == 1)
            dest->addr.family = AF_INET;
        else if (inet_pton(AF_INET6, a, &dest->addr.u.v6) == 1)
            dest->addr.family = AF_INET6;
        inet_ntop(dest->addr.family, &dest->addr.u, dest->addr.text, sizeof dest->addr.text);
        dest->port = l->opts.port ? l->opts.port : 5061;
        dest->transport = FED_TP_TLS;
        if (fed_dns_is_down(l->dns, dest->addr.text, dest->port, dest->transport)) {
            l->loc.n_down_skipped++;
            locate_finish(l, FED_LOC_ALL_DOWN);
            return;
        }
        l->loc.n_dests = 1;
        locate_finish(l, FED_LOC_OK);
        return;
    }
    unsigned flags = l->opts.kind == FED_LOCATE_RFC3263 ? FED_NAME_ALLOW_SINGLE_LABEL : 0;
    char canon[FED_NAME_BUF];
    if (fed_name_normalize(d, FED_NAME_NUL, flags, canon, sizeof canon) < 0) {
        locate_finish(l, FED_LOC_BAD_DOMAIN);
        return;
    }
    memcpy(l->loc.domain, canon, sizeof canon);
    if (l->opts.port != 0) {
        add_target(l, l->loc.domain, l->opts.port, FED_TP_TLS, 0, 0, false);
        addr_stage(l);
        return;
    }
    if (l->opts.kind == FED_LOCATE_FEDERATION) {
        l->n_cands = 0;
        l->cand_i = 0;
        add_cand(l, "_sipfederationtls._tcp.", l->loc.domain, FED_TP_TLS);
        if (l->n_cands == 0) {
            locate_finish(l, FED_LOC_BAD_DOMAIN);
            return;
        }
        srv_stage(l);
        return;
    }
    uint64_t id = fed_dns_query(l->dns, l->loc.domain, FED_DNS_T_NAPTR, on_loc_naptr, l);
    if (id != 0)
        l->single_id = id;
}

uint64_t fed_dns_locate(fed_dns_t *dns, const char *domain, const struct fed_locate_opts *opts,
                        fed_locate_cb cb, void *arg)
{
    if (dns == NULL || cb == NULL)
        return 0;
    struct locate *l = calloc(1, sizeof *l);
    if (l == NULL) {
        struct fed_location *loc = calloc(1, sizeof *loc);
        if (loc != NULL) {
            loc->status = FED_LOC_DNS_ERROR;
            loc->dns_status = FED_DNS_ERR_NOMEM;
            cb(arg, loc);
            free(loc);
        }
        return 0;
    }
    static const struct fed_locate_opts defaults = {.strict_naming = true};
    l->dns = dns;
    l->id = dns->next_id++;
    l->opts = opts ? *opts : defaults;
    l->cb = cb;
    l->arg = arg;
    snprintf(l->loc.domain, sizeof l->loc.domain, "%s", domain ? domain : "");
    l->next = dns->locates;
    dns->locates = l;
    uint64_t id = l->id;
    if (dns->freeing) {
        locate_finish(l, FED_LOC_CANCELLED);
        return 0;
    }
    locate_start(l);
    return locate_alive(dns, id) ? id : 0;
}

struct sync_locate {
    bool done;
    struct fed_location *out;
};

static void on_sync_locate(void *arg, const struct fed_location *loc)
{
    struct sync_locate *sl = arg;
    memcpy(sl->out, loc, sizeof *loc);
    sl->done = true;
}

fed_dns_status_t fed_dns_locate_sync(fed_dns_t *dns, const char *domain,
                                     const struct fed_locate_opts *opts, int timeout_ms,
                                     struct fed_location *out)
{
    struct sync_locate sl = {false, out};
    memset(out, 0, sizeof *out);
    if (dns == NULL)
        return FED_DNS_ERR_ARG;
    uint64_t id = fed_dns_locate(dns, domain, opts, on_sync_locate, &sl);
    uint64_t deadline = cn_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    while (!sl.done) {
        uint64_t now = cn_now_ms();
        if (now >= deadline) {
            fed_dns_cancel(dns, id);
            snprintf(out->domain, sizeof out->domain, "%s", domain ? domain : "");
            out->status = FED_LOC_DNS_ERROR;
            out->dns_status = FED_DNS_ERR_TIMEOUT;
            return FED_DNS_ERR_TIMEOUT;
        }
        run_once(dns, (int)(deadline - now));
    }
    return FED_DNS_OK;
}

/* ---- cancel and free --------------------------------------------------------------- */

static bool cancel_waiter(fed_dns_t *dns, uint64_t id)
{
    for (struct pending *p = dns->pending; p != NULL; p = p->next) {
        for (struct waiter **pw = &p->waiters; *pw != NULL; pw = &(*pw)->next) {
            if ((*pw)->id == id) {
                struct waiter *w = *pw;
                *pw = w->next;
                free(w);
                return true;
            }
        }
    }
    for (struct delivery *d = dns->deliveries; d != NULL; d = d->prev) {
        for (struct waiter *w = d->list; w != NULL; w = w->next) {
            if (w->id == id) {
                w->cb = NULL;
                return true;
            }
        }
    }
    return false;
}

void fed_dns_cancel(fed_dns_t *dns, uint64_t id)
{
    if (dns == NULL || id == 0)
        return;
    for (struct locate **pp = &dns->locates; *pp != NULL; pp = &(*pp)->next) {
        struct locate *l = *pp;
        if (l->id != id)
            continue;
        *pp = l->next;
        if (l->single_id != 0)
            cancel_waiter(dns, l->single_id);
        for (size_t i = 0; i < 2 * l->n_targets; i++) {
            if (l->subs[i].id != 0)
                cancel_waiter(dns, l->subs[i].id);
        }
        locate_free(l);
        return;
    }
    cancel_waiter(dns, id);
}

void fed_dns_free(fed_dns_t *dns)
{
    if (dns == NULL)
        return;
    dns->freeing = true;
    if (dns->channel_ok) {
        /* pending queries complete with ARES_EDESTRUCTION: callbacks see CANCELLED */
        ares_destroy(dns->ch);
        ares_library_cleanup();
        dns->channel_ok = false;
    }
    /* locates whose queries were all cached cannot be pending; any left are finished */
    while (dns->locates != NULL)
        locate_finish(dns->locates, FED_LOC_CANCELLED);
    fed_dns_cache_flush(dns);
    free(dns->buckets);
    free(dns->down);
    free(dns);
}
