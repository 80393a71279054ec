/* In-process cluster store: the standalone node's view of "the cluster" (itself).
 * Small tables with linear search: a standalone node has one node and as many
 * conferences as rooms in use. Owner: the control thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_store.h"

struct conf_owner {
    char conf[256];
    char node[64];
};

struct cl_local {
    struct cl_store base;
    struct cl_node_info *nodes;
    size_t n_nodes, cap_nodes;
    struct conf_owner *confs;
    size_t n_confs, cap_confs;
};

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, nc * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static struct cl_node_info *find_node(struct cl_local *l, const char *name)
{
    for (size_t i = 0; i < l->n_nodes; i++)
        if (strcmp(l->nodes[i].name, name) == 0)
            return &l->nodes[i];
    return NULL;
}

static cl_status_t local_heartbeat(struct cl_store *s, const struct cl_node_info *n)
{
    struct cl_local *l = (struct cl_local *)s;
    struct cl_node_info *e = find_node(l, n->name);
    if (!e) {
        if (grow((void **)&l->nodes, &l->cap_nodes, l->n_nodes, sizeof *l->nodes) != 0)
            return CL_ERR_NOMEM;
        e = &l->nodes[l->n_nodes++];
    }
    *e = *n;
    return CL_OK;
}

static cl_status_t local_claim(struct cl_store *s, const char *conf, const char *node,
                               uint64_t now, char owner[64])
{
    struct cl_local *l = (struct cl_local *)s;
    for (size_t i = 0; i < l->n_confs; i++) {
        if (strcmp(l->confs[i].conf, conf) != 0)
            continue;
        struct cl_node_info *o = find_node(l, l->confs[i].node);
        if (o && o->lease_until > now) { /* a live owner keeps it */
            snprintf(owner, 64, "%s", l->confs[i].node);
            return CL_OK;
        }
        snprintf(l->confs[i].node, sizeof l->confs[i].node, "%s", node);
        snprintf(owner, 64, "%s", node);
        return CL_OK;
    }
    if (grow((void **)&l->confs, &l->cap_confs, l->n_confs, sizeof *l->confs) != 0)
        return CL_ERR_NOMEM;
    struct conf_owner *c = &l->confs[l->n_confs++];
    snprintf(c->conf, sizeof c->conf, "%s", conf);
    snprintf(c->node, sizeof c->node, "%s", node);
    snprintf(owner, 64, "%s", node);
    return CL_OK;
}

static cl_status_t local_release(struct cl_store *s, const char *conf, const char *node)
{
    struct cl_local *l = (struct cl_local *)s;
    for (size_t i = 0; i < l->n_confs; i++)
        if (strcmp(l->confs[i].conf, conf) == 0 && strcmp(l->confs[i].node, node) == 0) {
            l->confs[i] = l->confs[--l->n_confs];
            return CL_OK;
        }
    return CL_ERR_NOT_FOUND;
}

static void local_free(struct cl_store *s)
{
    struct cl_local *l = (struct cl_local *)s;
    free(l->nodes);
    free(l->confs);
    free(l);
}

static const struct cl_store_ops local_ops = {
    .heartbeat = local_heartbeat,
    .claim = local_claim,
    .release = local_release,
    .free = local_free,
};

struct cl_store *cl_local_create(void)
{
    struct cl_local *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->base.ops = &local_ops;
    return &l->base;
}
