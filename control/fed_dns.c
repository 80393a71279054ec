/* Asynchronous DNS for federation on c-ares (see fed_dns.h for the design). This file
 * owns the resolver: its creation, c-ares queries and the waiters on them, the event
 * loop, synchronous queries, status names, cancel and free. Answers, the cache and
 * down-marking, and locate are in fed_dns_answer.c, fed_dns_cache.c and
 * fed_dns_locate.c (fed_dns_int.h). */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "cn_time.h"
#include "fed_dns_int.h"

/* ---- the resolver ------------------------------------------------------------------- */

uint64_t fdns_now_ms(fed_dns_t *dns)
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

uint32_t fdns_rand(fed_dns_t *dns)
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
    struct answer_obj *o = fdns_answer_from_dns(dns, p->name, p->type, status, abuf, alen);
    fed_dns_status_t st = o->pub.status;
    if ((st == FED_DNS_OK && o->pub.ttl > 0) || st == FED_DNS_NXDOMAIN || st == FED_DNS_NODATA)
        fdns_cache_put(dns, o);
    deliver(dns, p->waiters, o, false);
    fed_dns_answer_unref(&o->pub);
    free(p);
}

static void deliver_now(fed_dns_t *dns, const char *name, fed_dns_type_t type, fed_dns_status_t st,
                        fed_dns_cb cb, void *arg)
{
    struct answer_obj *o = fdns_answer_status(name ? name : "", type, st);
    if (!o->is_static)
        o->pub.expires_ms = fdns_now_ms(dns);
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
    struct cache_entry *e = fdns_cache_find(dns, key, type);
    if (e != NULL) {
        struct answer_obj *o = e->ans;
        o->refs++; /* the callback may flush the cache */
        cb(arg, &o->pub, true);
        fed_dns_answer_unref(&o->pub);
        return 0;
    }

    struct waiter *w = calloc(1, sizeof *w);
    if (w == NULL) {
        cb(arg, &fdns_nomem_answer.pub, false);
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
        cb(arg, &fdns_nomem_answer.pub, false);
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
void fdns_run_once(fed_dns_t *dns, int max_ms)
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
        fdns_run_once(dns, (int)(deadline - now));
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
        fdns_run_once(dns, (int)(deadline - now));
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
        fdns_locate_free(l);
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
        fdns_locate_finish(dns->locates, FED_LOC_CANCELLED);
    fed_dns_cache_flush(dns);
    free(dns->buckets);
    free(dns->down);
    free(dns);
}
