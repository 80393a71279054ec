/* Inside the cluster store: the local tables, operations and the store itself.
 * Private to cluster/: nothing outside includes this header. */
#ifndef CL_INT_H
#define CL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cl_store.h"

/* ---- local tables (cl_table.c) ------------------------------------------------
 * Nodes: a small array (a cluster has a handful). Conferences: a chained hash by
 * id. In standalone mode they are the cluster; in redis mode they mirror what this
 * node learnt (its own conferences with their counts, remote owners it saw, the
 * leases it saw) and answer while degraded. */

struct cl_node_ent {
    struct cl_node_info info; /* info.lease_ms unused here */
    uint64_t lease_until;     /* store clock; ignored for the self entry */
    bool self;                /* this node: always alive */
};

struct cl_conf_ent {
    struct cl_conf_ent *next; /* hash chain */
    char owner[CL_NAME_MAX];
    int64_t count;
    bool released; /* released while degraded: replayed to Redis, then dropped */
    char conf[];   /* NUL-terminated id */
};

struct cl_table {
    struct cl_node_ent *nodes;
    size_t n_nodes, cap_nodes;
    struct cl_conf_ent **buckets;
    size_t n_buckets, n_confs;
};

int cl_table_init(struct cl_table *t, const struct cl_node_info *self);
void cl_table_free(struct cl_table *t);

struct cl_node_ent *cl_table_node(struct cl_table *t, const char *name);
struct cl_node_ent *cl_table_self(struct cl_table *t);
/* Inserts or updates a node; NULL when out of memory. */
struct cl_node_ent *cl_table_node_put(struct cl_table *t, const struct cl_node_info *n,
                                      uint64_t lease_until);
bool cl_table_node_live(const struct cl_node_ent *e, uint64_t now);

struct cl_conf_ent *cl_table_conf(struct cl_table *t, const char *conf);
/* Finds or adds (owner "", count 0); NULL when out of memory. */
struct cl_conf_ent *cl_table_conf_put(struct cl_table *t, const char *conf);
void cl_table_conf_del(struct cl_table *t, const char *conf);
/* Calls fn for every entry; fn may delete the entry it is given. */
void cl_table_conf_each(struct cl_table *t, void (*fn)(void *arg, struct cl_conf_ent *e),
                        void *arg);

/* The operations answered from the tables. prefer_self (degraded mode): a
 * conference without a live known owner goes to this node, never elsewhere. */
cl_status_t cl_table_claim(struct cl_table *t, const char *conf, const char *location,
                           bool prefer_self, uint64_t now, struct cl_claim *out);
cl_status_t cl_table_lookup(struct cl_table *t, const char *conf, uint64_t now,
                            struct cl_claim *out);
/* Own conferences only (the count lives with the owner). */
cl_status_t cl_table_count(struct cl_table *t, const char *conf, int64_t delta, int64_t *out);
/* keep_tombstone: mark released instead of deleting (degraded mode). */
cl_status_t cl_table_release(struct cl_table *t, const char *conf, bool keep_tombstone);
/* Live nodes sorted by name into a malloc'd array (*out NULL when n is 0). */
cl_status_t cl_table_nodes(struct cl_table *t, uint64_t now, struct cl_node_info **out, size_t *n);
/* Fills the owner fields of out from the node table. */
void cl_table_fill_owner(struct cl_table *t, const char *owner, uint64_t now, struct cl_claim *out);
/* Drops remote conferences whose owner is no longer alive and dead remote nodes. */
void cl_table_prune(struct cl_table *t, uint64_t now);
size_t cl_table_own_confs(struct cl_table *t);

/* ---- operations ---------------------------------------------------------------- */

enum cl_op_kind {
    CL_OP_CLAIM,
    CL_OP_LOOKUP,
    CL_OP_COUNT,
    CL_OP_RELEASE,
    CL_OP_HEARTBEAT,
    CL_OP_NODES,
    CL_OP_LEAVE,
    CL_OP_LOST, /* cl_store_conf.on_lost(conf, node.name) */
    /* internal: never reach a user callback */
    CL_OP_SELF_HEARTBEAT,
    CL_OP_REASSERT,
    CL_OP_REPLAY_RELEASE,
    CL_OP_ROLE,
    CL_OP_SENTINEL_QUERY,
};

struct cl_op {
    struct cl_op *next;
    struct cl_store *s;
    enum cl_op_kind kind;
    cl_status_t st;
    char conf[CL_CONF_MAX];
    char location[CL_NAME_MAX];
    int64_t delta;
    uint32_t ttl_ms;
    struct cl_node_info node;
    union {
        cl_claim_cb *claim;
        cl_count_cb *count;
        cl_done_cb *done;
        cl_nodes_cb *nodes;
    } cb;
    void *arg;
    /* results */
    struct cl_claim claim;
    int64_t count;
    struct cl_node_info *nodes;
    size_t n_nodes;
};

struct cl_redis;

struct cl_store {
    struct cl_store_conf conf;
    uint64_t (*clock)(void);
    int epfd; /* what cl_store_fd() returns */
    int evfd; /* eventfd in epfd: completions are queued */
    struct cl_table t;
    struct cl_op *done_head, *done_tail;
    uint64_t next_heartbeat;
    struct cl_redis *redis; /* NULL in standalone mode */
    bool degraded;
    bool left; /* cl_store_leave(): no self heartbeat until draining ends */
    uint64_t degraded_since;
    int64_t degraded_since_unix;
    bool freeing;
};

/* Queues op's callback for the next cl_store_run(). */
void cl_complete(struct cl_store *s, struct cl_op *op);
/* Answers op from the local tables and queues its callback. */
void cl_answer_local(struct cl_store *s, struct cl_op *op);
/* Frees op (and its node list). Accepts NULL. */
void cl_op_free(struct cl_op *op);
void cl_set_degraded(struct cl_store *s, bool on, const char *reason);

/* ---- the Redis backend (cl_redis.c) --------------------------------------------- */

struct cl_redis *cl_redis_create(struct cl_store *s, char *err, size_t errlen);
void cl_redis_free(struct cl_redis *r);
/* Takes op (sends it, or holds it until the link is up); false when the link is
 * down and op must be answered locally. */
bool cl_redis_submit(struct cl_redis *r, struct cl_op *op);
/* A socket event on a connection registered in s->epfd with data.ptr = conn. */
void cl_redis_event(void *conn, uint32_t events);
/* Timers: connect and command timeouts, reconnects, the Sentinel subscription. */
void cl_redis_timers(struct cl_redis *r, uint64_t now);
/* The next time cl_redis_timers() has something to do (UINT64_MAX: nothing). */
uint64_t cl_redis_next(const struct cl_redis *r);
/* Frees connections that closed during this run (after every event is handled). */
void cl_redis_reap(struct cl_redis *r);
/* Sends this node's heartbeat when the link is up and none is outstanding. */
void cl_redis_self_heartbeat(struct cl_redis *r);
void cl_redis_status(const struct cl_redis *r, struct cl_store_status *st);

/* Parses "1.2.3.4:6379" or "[::1]:6379" into host (IP literal) and port. */
int cl_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
