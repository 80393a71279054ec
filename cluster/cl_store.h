/* Cluster state behind one interface.
 *
 * What the cluster shares: which nodes are alive (a lease each) and which node
 * owns each conference. Two implementations: in-process (cl_local.c, standalone,
 * the default) and Redis (later). Called from the control thread only, never from
 * a worker: implementations may block on their backend there, workers never wait. */
#ifndef CL_STORE_H
#define CL_STORE_H

#include <stddef.h>
#include <stdint.h>

struct cl_node_info {
    char name[64];
    char sip_fqdn[256];
    char address[64];
    uint32_t load;        /* active calls */
    uint64_t lease_until; /* ms, monotonic on the node that wrote it */
};

typedef enum {
    CL_OK = 0,
    CL_ERR_NOMEM = -1,
    CL_ERR_UNAVAILABLE = -2, /* backend unreachable: degraded mode */
    CL_ERR_NOT_FOUND = -3,
} cl_status_t;

struct cl_store;

struct cl_store_ops {
    /* Registers or refreshes a node's lease until `lease_until`. */
    cl_status_t (*heartbeat)(struct cl_store *s, const struct cl_node_info *n);
    /* Atomically claims conference `conf` for `node` unless a live node owns it;
     * the owner's name is written to owner[0..64). */
    cl_status_t (*claim)(struct cl_store *s, const char *conf, const char *node,
                         uint64_t now, char owner[64]);
    /* Forgets the conference when its last participant left. */
    cl_status_t (*release)(struct cl_store *s, const char *conf, const char *node);
    void (*free)(struct cl_store *s);
};

struct cl_store {
    const struct cl_store_ops *ops;
};

/* The in-process store. Returns NULL when out of memory. */
struct cl_store *cl_local_create(void);

static inline void cl_store_free(struct cl_store *s)
{
    if (s)
        s->ops->free(s);
}

#endif
