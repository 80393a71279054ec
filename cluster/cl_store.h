/* Cluster state behind one interface, driven by the control thread's event loop.
 *
 * What the cluster shares: which nodes are alive (a lease each, renewed by a
 * heartbeat), their location, SIP TLS FQDN, addresses, load and drain flag, and
 * which node owns each conference (with its participant count). Two backends:
 *
 *   standalone  in-process tables (the default): the cluster is this node;
 *   redis       one Redis primary, given directly or found through Sentinel.
 *
 * Asynchronous and non-blocking. Every operation returns at once; its callback runs
 * later, exactly once, from cl_store_run(), never from inside the call that started
 * it. The store is an event source like the admin server:
 *
 *     epoll_ctl(ep, EPOLL_CTL_ADD, cl_store_fd(s), &(struct epoll_event){.events = EPOLLIN});
 *     for (;;) {
 *         epoll_wait(ep, evs, n, min(other timeouts, cl_store_timeout_ms(s)));
 *         cl_store_run(s);   // sockets, timers (heartbeat, reconnect), callbacks
 *     }
 *
 * Degraded mode (redis backend). When Redis cannot be reached (start-up, a lost
 * connection, a READONLY primary, a command that times out) the store keeps
 * answering from its local state: a claim places the conference on this node (or
 * returns a remote owner it saw recently whose lease has not run out), counts are
 * kept locally, releases are remembered. cl_store_status() reports `degraded` and
 * since when; the transition is logged once each way (events cluster_degraded and
 * cluster_restored). The connection is retried with exponential backoff. On
 * reconnection the store re-asserts this node's lease, then every conference it
 * owns locally, then replays the releases, and only then sends new operations.
 *
 * Conflicts on re-assertion are resolved the same way whatever the order in which
 * nodes come back: a conference stays with (or moves to) the claimant hosting more
 * participants; on a tie, the node whose name sorts first (strcmp) wins. A live
 * owner in Redis is a claimant like the others; a dead one (lease expired) is not.
 * The loser learns it through cl_store_conf.on_lost (its participants stay where
 * they are; new joiners go to the winner).
 *
 * Placement. A claim returns the conference's owner when that owner's lease is
 * alive; otherwise it places the conference on the least-loaded live node that is
 * not draining, preferring nodes of the requested location (any location when none
 * there is live), ties broken by the smaller node name. Placing a conference adds 1
 * to the chosen node's load until its next heartbeat reports the real value. A node
 * whose lease expired loses its conferences on the next claim of each.
 *
 * Owner: the control thread. Nothing here is thread-safe; workers never call it. */
#ifndef CL_STORE_H
#define CL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CL_NAME_MAX = 64,   /* node name, location, Redis master name (with the NUL) */
    CL_FQDN_MAX = 256,  /* SIP TLS FQDN */
    CL_ADDRS_MAX = 128, /* addresses: comma-separated IP literals */
    CL_CONF_MAX = 256,  /* conference id, e.g. the VMR alias */
    CL_HOSTPORT_MAX = 80,
    CL_MAX_SENTINELS = 8,
};

typedef enum {
    CL_OK = 0,
    CL_ERR_NOMEM = -1,
    CL_ERR_UNAVAILABLE = -2, /* backend unreachable and no local answer possible */
    CL_ERR_NOT_FOUND = -3,   /* no such conference (or its owner's lease expired) */
    CL_ERR_NO_NODE = -4,     /* no live node that is not draining can take it */
    CL_ERR_INVAL = -5,       /* bad argument: empty or too long name, bad config */
    CL_ERR_NOT_OWNER = -6,   /* release of a conference another node owns */
} cl_status_t;

/* A short text for a status ("not found"); never NULL. */
const char *cl_status_str(cl_status_t st);

typedef enum {
    CL_MODE_STANDALONE = 0,
    CL_MODE_REDIS = 1,
} cl_mode_t;

struct cl_node_info {
    char name[CL_NAME_MAX];
    char location[CL_NAME_MAX];
    char sip_fqdn[CL_FQDN_MAX];
    char addresses[CL_ADDRS_MAX];
    uint32_t load;     /* active calls (plus conferences placed since the heartbeat) */
    bool draining;     /* takes no new conferences */
    uint64_t lease_ms; /* when read: lease time left */
};

/* The answer to a claim or a lookup. */
struct cl_claim {
    char owner[CL_NAME_MAX];
    char owner_fqdn[CL_FQDN_MAX];       /* "" when not known */
    char owner_addresses[CL_ADDRS_MAX]; /* "" when not known */
    bool mine;                          /* owner is this node */
    bool placed;                        /* this claim placed it (new, or moved off a dead owner) */
    bool local;                         /* answered from local state (standalone or degraded) */
    int64_t count;
};

struct cl_store_conf {
    cl_mode_t mode;
    /* This node: name (required), location, sip_fqdn, addresses, load, draining.
     * lease_ms is ignored. */
    struct cl_node_info self;
    uint32_t lease_ttl_ms; /* default 15000 */
    uint32_t heartbeat_ms; /* default 5000; must be < lease_ttl_ms */
    /* redis: either `redis` ("127.0.0.1:6379", "[::1]:6379") or sentinels +
     * master_name. IP literals only: resolving a name would block. */
    char redis[CL_HOSTPORT_MAX];
    char sentinels[CL_MAX_SENTINELS][CL_HOSTPORT_MAX];
    size_t n_sentinels;
    char master_name[CL_NAME_MAX]; /* default "mymaster" */
    char key_prefix[32];           /* default "confnode:" */
    uint32_t connect_timeout_ms;   /* default 1000 */
    uint32_t command_timeout_ms;   /* default 2000: no reply by then = link lost */
    uint32_t retry_min_ms;         /* default 100: first reconnect delay, doubled... */
    uint32_t retry_max_ms;         /* default 2000: ...up to this */
    /* Called (from cl_store_run) when re-assertion gives a conference this node
     * hosted to another node. May be NULL. */
    void (*on_lost)(void *arg, const char *conf, const char *winner);
    void *on_lost_arg;
    /* Monotonic milliseconds; NULL = cn_now_ms. Tests pass a fake clock. */
    uint64_t (*clock)(void);
};

/* Fills conf with the defaults above (mode standalone, no name). */
void cl_store_conf_defaults(struct cl_store_conf *conf);

struct cl_store;

/* Creates a store. Redis: starts connecting at once (never waits); operations
 * issued before the first connection completes are held until it does or fails.
 * Returns NULL with a reason in err for a bad conf or when out of memory. */
struct cl_store *cl_store_create(const struct cl_store_conf *conf, char *err, size_t errlen);

/* Closes everything. Pending callbacks are dropped, not called. Accepts NULL.
 * Never call it from one of the store's callbacks. */
void cl_store_free(struct cl_store *s);

/* An epoll fd that is readable when cl_store_run() has work; -1 for NULL. */
int cl_store_fd(const struct cl_store *s);
/* The longest the caller may wait before calling cl_store_run(): milliseconds, 0 =
 * now. Never -1 (there is always a heartbeat due). */
int cl_store_timeout_ms(const struct cl_store *s);
/* Handles socket events and due timers, then runs completed callbacks. Never
 * blocks. Callbacks may start new operations. */
void cl_store_run(struct cl_store *s);

typedef void cl_claim_cb(void *arg, cl_status_t st, const struct cl_claim *c);
typedef void cl_count_cb(void *arg, cl_status_t st, int64_t count);
typedef void cl_done_cb(void *arg, cl_status_t st);
typedef void cl_nodes_cb(void *arg, cl_status_t st, const struct cl_node_info *nodes, size_t n);

/* Each operation returns CL_OK when it was started (cb, which may be NULL, will run
 * once), or CL_ERR_INVAL / CL_ERR_NOMEM when it was not (cb will not run). */

/* Claims conference `conf` (1..CL_CONF_MAX-1 bytes): returns the live owner or
 * places it (see Placement). location NULL = this node's location, "" = any.
 * Statuses: CL_OK, CL_ERR_NO_NODE. */
cl_status_t cl_store_claim(struct cl_store *s, const char *conf, const char *location,
                           cl_claim_cb *cb, void *arg);
/* The live owner of conf, or CL_ERR_NOT_FOUND. Never places. */
cl_status_t cl_store_lookup(struct cl_store *s, const char *conf, cl_claim_cb *cb, void *arg);
/* Adds delta (negative to remove) to conf's participant count, never below 0; the
 * callback gets the new count. CL_ERR_NOT_FOUND when conf is not claimed. */
cl_status_t cl_store_count(struct cl_store *s, const char *conf, int delta, cl_count_cb *cb,
                           void *arg);
/* Forgets conf (its last participant left). Only its owner may: CL_ERR_NOT_OWNER
 * when another node owns it, CL_ERR_NOT_FOUND when nobody does. */
cl_status_t cl_store_release(struct cl_store *s, const char *conf, cl_done_cb *cb, void *arg);
/* Registers or refreshes another node's lease for ttl_ms. This node's own lease is
 * kept by the store's timer; this call is for tools and tests. */
cl_status_t cl_store_heartbeat(struct cl_store *s, const struct cl_node_info *n, uint32_t ttl_ms,
                               cl_done_cb *cb, void *arg);
/* The live nodes (lease_ms = lease left), sorted by name. */
cl_status_t cl_store_list_nodes(struct cl_store *s, cl_nodes_cb *cb, void *arg);

/* This node's load (active calls), sent with the next heartbeat. */
void cl_store_set_load(struct cl_store *s, uint32_t load);
/* Drains this node (no new conferences) or ends draining; heartbeats at once.
 * Ending it also undoes cl_store_leave(): the node is back with that heartbeat. */
void cl_store_set_draining(struct cl_store *s, bool on);
/* This node leaves the cluster registry (a drained node whose last call ended):
 * redis: its lease, its entry in the node set and the conferences it still owns are
 * removed at once, so other nodes stop counting it; afterwards no heartbeat renews
 * the lease (claims from this node still work and place elsewhere). Standalone, or
 * while degraded: the heartbeat stops and the lease runs out by itself. The
 * conferences it owned are forgotten locally in every mode. Status: CL_OK. */
cl_status_t cl_store_leave(struct cl_store *s, cl_done_cb *cb, void *arg);

struct cl_store_status {
    cl_mode_t mode;
    bool connected;                /* redis: a verified primary is in use */
    bool degraded;                 /* redis: answering from local state */
    uint64_t degraded_since_ms;    /* monotonic (the store's clock), 0 when not */
    int64_t degraded_since_unix;   /* wall clock seconds, 0 when not */
    char primary[CL_HOSTPORT_MAX]; /* current or last primary, "" before the first */
    uint64_t reconnects;           /* successful connections after the first */
    uint64_t failovers;            /* primary address changes seen */
    size_t conferences_local;      /* conferences this node owns in its local state */
    bool draining;                 /* cl_store_set_draining(s, true) */
    bool left;                     /* cl_store_leave() ran; no heartbeat since */
};

/* Fills st; zeroes it for NULL. */
void cl_store_status(const struct cl_store *s, struct cl_store_status *st);

#endif
