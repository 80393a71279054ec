/* Local cluster tables: nodes with leases, conferences with owner and count.
 * The standalone store is these tables; the Redis store keeps them as its local
 * view and answers from them while degraded. Owner: the control thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_int.h"

enum { CL_BUCKETS_MIN = 64 };

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

int cl_table_init(struct cl_table *t, const struct cl_node_info *self)
{
    memset(t, 0, sizeof *t);
    t->buckets = calloc(CL_BUCKETS_MIN, sizeof *t->buckets);
    if (!t->buckets)
        return -1;
    t->n_buckets = CL_BUCKETS_MIN;
    struct cl_node_ent *e = cl_table_node_put(t, self, 0);
    if (!e) {
        cl_table_free(t);
        return -1;
    }
    e->self = true;
    return 0;
}

void cl_table_free(struct cl_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct cl_conf_ent *e = t->buckets[i];
        while (e) {
            struct cl_conf_ent *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t->nodes);
    memset(t, 0, sizeof *t);
}

/* ---- nodes ---------------------------------------------------------------------- */

struct cl_node_ent *cl_table_node(struct cl_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_nodes; i++)
        if (strcmp(t->nodes[i].info.name, name) == 0)
            return &t->nodes[i];
    return NULL;
}

struct cl_node_ent *cl_table_self(struct cl_table *t)
{
    return t->n_nodes ? &t->nodes[0] : NULL;
}

struct cl_node_ent *cl_table_node_put(struct cl_table *t, const struct cl_node_info *n,
                                      uint64_t lease_until)
{
    struct cl_node_ent *e = cl_table_node(t, n->name);
    if (!e) {
        if (t->n_nodes == t->cap_nodes) {
            size_t cap = t->cap_nodes ? t->cap_nodes * 2 : 8;
            struct cl_node_ent *p = realloc(t->nodes, cap * sizeof *p);
            if (!p)
                return NULL;
            t->nodes = p;
            t->cap_nodes = cap;
        }
        e = &t->nodes[t->n_nodes++];
        memset(e, 0, sizeof *e);
    }
    e->info = *n;
    e->info.lease_ms = 0;
    e->lease_until = lease_until;
    return e;
}

bool cl_table_node_live(const struct cl_node_ent *e, uint64_t now)
{
    return e && (e->self || e->lease_until > now);
}

/* ---- conferences ------------------------------------------------------------------ */

struct cl_conf_ent *cl_table_conf(struct cl_table *t, const char *conf)
{
    struct cl_conf_ent *e = t->buckets[hash_str(conf) % t->n_buckets];
    for (; e; e = e->next)
        if (strcmp(e->conf, conf) == 0)
            return e;
    return NULL;
}

/* Doubles the bucket array when the table is fuller than 2 per bucket; keeps the
 * old one when out of memory (chains just get longer). */
static void grow_buckets(struct cl_table *t)
{
    if (t->n_confs < t->n_buckets * 2)
        return;
    size_t nb = t->n_buckets * 2;
    struct cl_conf_ent **b = calloc(nb, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct cl_conf_ent *e = t->buckets[i];
        while (e) {
            struct cl_conf_ent *next = e->next;
            size_t k = hash_str(e->conf) % nb;
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = nb;
}

struct cl_conf_ent *cl_table_conf_put(struct cl_table *t, const char *conf)
{
    struct cl_conf_ent *e = cl_table_conf(t, conf);
    if (e)
        return e;
    size_t len = strlen(conf);
    e = calloc(1, sizeof *e + len + 1);
    if (!e)
        return NULL;
    memcpy(e->conf, conf, len + 1);
    size_t k = hash_str(conf) % t->n_buckets;
    e->next = t->buckets[k];
    t->buckets[k] = e;
    t->n_confs++;
    grow_buckets(t);
    return e;
}

void cl_table_conf_del(struct cl_table *t, const char *conf)
{
    struct cl_conf_ent **pp = &t->buckets[hash_str(conf) % t->n_buckets];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->conf, conf) == 0) {
            struct cl_conf_ent *e = *pp;
            *pp = e->next;
            free(e);
            t->n_confs--;
            return;
        }
    }
}

void cl_table_conf_each(struct cl_table *t, void (*fn)(void *arg, struct cl_conf_ent *e), void *arg)
{
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct cl_conf_ent *e = t->buckets[i];
        while (e) {
            struct cl_conf_ent *next = e->next;
            fn(arg, e);
            e = next;
        }
    }
}

/* ---- operations ---------------------------------------------------------------------- */

void cl_table_fill_owner(struct cl_table *t, const char *owner, uint64_t now, struct cl_claim *out)
{
    (void)now;
    snprintf(out->owner, sizeof out->owner, "%s", owner);
    const struct cl_node_ent *self = cl_table_self(t);
    out->mine = self && strcmp(self->info.name, owner) == 0;
    const struct cl_node_ent *n = cl_table_node(t, owner);
    snprintf(out->owner_fqdn, sizeof out->owner_fqdn, "%s", n ? n->info.sip_fqdn : "");
    snprintf(out->owner_addresses, sizeof out->owner_addresses, "%s", n ? n->info.addresses : "");
}

/* The node a new conference goes to: least loaded, live, not draining; in
 * `location` when one such node is there ("" = anywhere); ties by name. */
static struct cl_node_ent *pick_node(struct cl_table *t, const char *location, uint64_t now)
{
    struct cl_node_ent *best = NULL, *any = NULL;
    for (size_t i = 0; i < t->n_nodes; i++) {
        struct cl_node_ent *e = &t->nodes[i];
        if (!cl_table_node_live(e, now) || e->info.draining)
            continue;
        if (!any || e->info.load < any->info.load ||
            (e->info.load == any->info.load && strcmp(e->info.name, any->info.name) < 0))
            any = e;
        if (location[0] && strcmp(e->info.location, location) != 0)
            continue;
        if (!best || e->info.load < best->info.load ||
            (e->info.load == best->info.load && strcmp(e->info.name, best->info.name) < 0))
            best = e;
    }
    return best ? best : any;
}

cl_status_t cl_table_claim(struct cl_table *t, const char *conf, const char *location,
                           bool prefer_self, uint64_t now, struct cl_claim *out)
{
    memset(out, 0, sizeof *out);
    out->local = true;
    struct cl_conf_ent *c = cl_table_conf(t, conf);
    if (c && !c->released && cl_table_node_live(cl_table_node(t, c->owner), now)) {
        out->count = c->count;
        cl_table_fill_owner(t, c->owner, now, out);
        return CL_OK;
    }
    struct cl_node_ent *self = cl_table_self(t);
    struct cl_node_ent *n =
        prefer_self ? (self->info.draining ? NULL : self) : pick_node(t, location, now);
    if (!n)
        return CL_ERR_NO_NODE;
    if (!c && !(c = cl_table_conf_put(t, conf)))
        return CL_ERR_NOMEM;
    snprintf(c->owner, sizeof c->owner, "%s", n->info.name);
    c->count = 0;
    c->released = false;
    if (n->info.load < UINT32_MAX)
        n->info.load++;
    out->placed = true;
    cl_table_fill_owner(t, n->info.name, now, out);
    return CL_OK;
}

cl_status_t cl_table_lookup(struct cl_table *t, const char *conf, uint64_t now,
                            struct cl_claim *out)
{
    memset(out, 0, sizeof *out);
    out->local = true;
    struct cl_conf_ent *c = cl_table_conf(t, conf);
    if (!c || c->released || !cl_table_node_live(cl_table_node(t, c->owner), now))
        return CL_ERR_NOT_FOUND;
    out->count = c->count;
    cl_table_fill_owner(t, c->owner, now, out);
    return CL_OK;
}

static bool owned_by_self(struct cl_table *t, const struct cl_conf_ent *c)
{
    return c && !c->released && strcmp(c->owner, cl_table_self(t)->info.name) == 0;
}

cl_status_t cl_table_count(struct cl_table *t, const char *conf, int64_t delta, int64_t *out)
{
    struct cl_conf_ent *c = cl_table_conf(t, conf);
    if (!owned_by_self(t, c))
        return CL_ERR_NOT_FOUND;
    c->count += delta;
    if (c->count < 0)
        c->count = 0;
    *out = c->count;
    return CL_OK;
}

cl_status_t cl_table_release(struct cl_table *t, const char *conf, bool keep_tombstone)
{
    struct cl_conf_ent *c = cl_table_conf(t, conf);
    if (!c || c->released)
        return CL_ERR_NOT_FOUND;
    if (!owned_by_self(t, c))
        return CL_ERR_NOT_OWNER;
    if (keep_tombstone) {
        c->released = true;
        c->count = 0;
    } else {
        cl_table_conf_del(t, conf);
    }
    return CL_OK;
}

static int node_cmp(const void *a, const void *b)
{
    const struct cl_node_info *x = a, *y = b;
    return strcmp(x->name, y->name);
}

cl_status_t cl_table_nodes(struct cl_table *t, uint64_t now, struct cl_node_info **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct cl_node_info *v = calloc(t->n_nodes ? t->n_nodes : 1, sizeof *v);
    if (!v)
        return CL_ERR_NOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->n_nodes; i++) {
        const struct cl_node_ent *e = &t->nodes[i];
        if (!cl_table_node_live(e, now))
            continue;
        v[k] = e->info;
        v[k].lease_ms = e->self ? 0 : e->lease_until - now;
        k++;
    }
    if (k == 0) {
        free(v);
        return CL_OK;
    }
    qsort(v, k, sizeof *v, node_cmp);
    *out = v;
    *n = k;
    return CL_OK;
}

struct prune_ctx {
    struct cl_table *t;
    uint64_t now;
};

static void prune_conf(void *arg, struct cl_conf_ent *e)
{
    struct prune_ctx *p = arg;
    if (e->released || owned_by_self(p->t, e))
        return;
    if (!cl_table_node_live(cl_table_node(p->t, e->owner), p->now))
        cl_table_conf_del(p->t, e->conf);
}

void cl_table_prune(struct cl_table *t, uint64_t now)
{
    struct prune_ctx p = {t, now};
    cl_table_conf_each(t, prune_conf, &p);
    /* dead nodes: no conference refers to them any more (pruned just above) */
    size_t k = 0;
    for (size_t i = 0; i < t->n_nodes; i++)
        if (cl_table_node_live(&t->nodes[i], now))
            t->nodes[k++] = t->nodes[i];
    t->n_nodes = k;
}

struct count_ctx {
    struct cl_table *t;
    size_t n;
};

static void count_own(void *arg, struct cl_conf_ent *e)
{
    struct count_ctx *c = arg;
    c->n += owned_by_self(c->t, e);
}

size_t cl_table_own_confs(struct cl_table *t)
{
    struct count_ctx c = {t, 0};
    cl_table_conf_each(t, count_own, &c);
    return c.n;
}
