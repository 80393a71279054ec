/* Configuration section cluster: its key table (with the cluster.nodes entries), the
 * setters for Redis addresses, sentinels and nodes, and the rules across its keys
 * (pass 3). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn_log.h"
#include "config_int.h"

/* "IPv4:port" or "[IPv6]:port", port 1..65535: IP literals only, so that the
 * cluster store never waits for a name lookup. */
static bool cf_is_hostport(const char *v)
{
    char host[64];
    const char *colon;
    size_t hl;
    bool v6 = v[0] == '[';
    if (v6) {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':')
            return false;
        hl = (size_t)(close - v - 1);
        colon = close + 1;
    } else {
        colon = strchr(v, ':');
        if (!colon || strchr(colon + 1, ':'))
            return false;
        hl = (size_t)(colon - v);
    }
    if (hl == 0 || hl >= sizeof host)
        return false;
    memcpy(host, v + v6, hl);
    host[hl] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(v6 ? AF_INET6 : AF_INET, host, addr) != 1)
        return false;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    return errno == 0 && end != colon + 1 && *end == '\0' && isdigit((unsigned char)colon[1]) &&
           port >= 1 && port <= 65535;
}

static void cf_set_hostport(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                            void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (!cf_is_hostport(v)) {
        char q[64];
        cf_error(c, s, field, "must be IP:port or [IPv6]:port (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* cluster.sentinels: an array or list of "IP:port" strings; dst is the cluster_conf. */
static void cf_set_sentinels(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                             void *dst, const char *field)
{
    (void)k;
    struct cluster_conf *cl = dst;
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cf_error(c, s, field, "expected an array [ \"IP:port\", ... ], got %s", cf_type_name(s));
        return;
    }
    int n = config_setting_length(s);
    if (n > CN_CLUSTER_MAX_SENTINELS) {
        cf_error(c, s, field, "at most %d sentinels (got %d)", CN_CLUSTER_MAX_SENTINELS, n);
        return;
    }
    const struct cf_key one = {.name = "sentinels", .size = sizeof cl->sentinels[0], .min = 1};
    size_t kept = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char sub[CF_FIELD_MAX];
        snprintf(sub, sizeof sub, "%s[%d]", field, i);
        const char *slot = cl->sentinels[kept];
        cf_set_hostport(c, &one, e, cl->sentinels[kept], sub);
        if (slot[0]) /* valid: keep it */
            kept++;
    }
    cl->n_sentinels = kept;
}

/* Keys of one cluster.nodes entry; offsets into struct cluster_node_conf. */
static const struct cf_key cluster_node_keys[] = {
    {.name = "name", .set = cf_set_token, CF_AT(struct cluster_node_conf, name), .min = 1},
    {.name = "fqdn", .set = cf_set_domain, CF_AT(struct cluster_node_conf, fqdn), .min = 1},
    {.name = "address", .set = cf_set_ip, CF_AT(struct cluster_node_conf, address), .min = 1},
    {.name = "signaling", .set = cf_set_bool, CF_AT(struct cluster_node_conf, signaling)},
};

/* cluster.nodes: a list of groups { name; fqdn; address; signaling; }; dst is the
 * cluster_conf. name, fqdn and address are required. */
static void cf_set_cluster_nodes(struct cf_ctx *c, const struct cf_key *k,
                                 const config_setting_t *s, void *dst, const char *field)
{
    (void)k;
    struct cluster_conf *cl = dst;
    if (!config_setting_is_list(s)) {
        cf_error(c, s, field,
                 "expected a list ( { name = \"...\"; fqdn = \"...\"; "
                 "address = \"...\"; }, ... ), got %s",
                 cf_type_name(s));
        return;
    }
    int n = config_setting_length(s);
    if (n <= 0)
        return;
    if (n > CN_CLUSTER_MAX_NODES) {
        cf_error(c, s, field, "at most %d nodes (got %d)", CN_CLUSTER_MAX_NODES, n);
        return;
    }
    free(cl->nodes);
    cl->nodes = calloc((size_t)n, sizeof *cl->nodes);
    cl->n_nodes = 0;
    if (!cl->nodes) {
        cf_error(c, s, field, "out of memory for %d entries", n);
        return;
    }
    cl->n_nodes = (size_t)n;
    static const char *const required[] = {"name", "fqdn", "address"};
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char sub[CF_FIELD_MAX];
        snprintf(sub, sizeof sub, "%s[%d]", field, i);
        cl->nodes[i].signaling = 1;
        if (!config_setting_is_group(e)) {
            cf_error(c, e, sub, "expected a group { name = \"...\"; ... }, got %s",
                     cf_type_name(e));
            continue;
        }
        cf_parse_members(c, cluster_node_keys, CF_COUNT(cluster_node_keys), e, &cl->nodes[i], sub,
                         "nodes", false);
        for (size_t j = 0; j < sizeof required / sizeof required[0]; j++) {
            if (config_setting_get_member(e, required[j]))
                continue;
            char f[CF_FIELD_MAX + 16];
            snprintf(f, sizeof f, "%s.%s", sub, required[j]);
            cf_error(c, e, f, "required");
        }
    }
}

static const struct cf_choice cluster_modes[] = {
    {"standalone", CN_CLUSTER_STANDALONE},
    {"redis", CN_CLUSTER_REDIS},
    {NULL, 0},
};

const struct cf_key cf_cluster_keys[] = {
    CF_ENUM("mode", cluster.mode, cluster_modes),
    CF_STRING("location", cf_set_token, cluster.location, 1),
    CF_STRING("sip_fqdn", cf_set_domain, cluster.sip_fqdn, 1),
    CF_STRING("srv_domain", cf_set_domain, cluster.srv_domain, 1),
    CF_STRING("srv_target", cf_set_domain, cluster.srv_target, 1),
    CF_STRING("redis", cf_set_hostport, cluster.redis, 1),
    {.name = "sentinels", .set = cf_set_sentinels, CF_CFG(cluster)},
    CF_STRING("master_name", cf_set_token, cluster.master_name, 1),
    CF_SECONDS("lease_ttl", cluster.lease_ttl_ms, 2, 3600),
    CF_SECONDS("heartbeat", cluster.heartbeat_ms, 1, 1800),
    {.name = "nodes", .set = cf_set_cluster_nodes, CF_CFG(cluster)},
};
_Static_assert(CF_COUNT(cf_cluster_keys) == CF_N_CLUSTER_KEYS, "CF_N_CLUSTER_KEYS");

/* True when host is domain itself or one label directly under it (case-insensitive):
 * the strict naming federated edges apply to SRV targets. */
static bool cf_directly_in(const char *host, const char *domain)
{
    if (strcasecmp(host, domain) == 0)
        return true;
    const char *dot = strchr(host, '.');
    return dot && dot != host && strcasecmp(dot + 1, domain) == 0;
}

void cf_validate_cluster(struct cf_ctx *c)
{
    const struct cluster_conf *cl = &c->cfg->cluster;
    if (cl->mode == CN_CLUSTER_REDIS && !cl->redis[0] && cl->n_sentinels == 0 &&
        cf_unset(c, "cluster.redis") && !config_lookup(c->lc, "cluster.sentinels"))
        cf_error(c, CF_WHERE(c, "cluster.mode", "cluster"), "cluster.redis",
                 "required when cluster.mode is \"redis\" (or set cluster.sentinels and "
                 "cluster.master_name)");
    if (cl->redis[0] && cl->n_sentinels)
        cf_error(c, CF_WHERE(c, "cluster.sentinels", "cluster"), "cluster.sentinels",
                 "set either cluster.redis (one server) or cluster.sentinels, not both");
    if (cl->heartbeat_ms >= cl->lease_ttl_ms)
        cf_error(c, CF_WHERE(c, "cluster.heartbeat", "cluster.lease_ttl", "cluster"),
                 "cluster.heartbeat", "must be less than cluster.lease_ttl (%u s >= %u s)",
                 cl->heartbeat_ms / 1000, cl->lease_ttl_ms / 1000);
    if (cl->srv_target[0] && cl->srv_domain[0] && !cf_directly_in(cl->srv_target, cl->srv_domain))
        cf_error(c, CF_WHERE(c, "cluster.srv_target", "cluster"), "cluster.srv_target",
                 "must be %s or a host directly in it (strict DNS naming: federated edges "
                 "refuse an SRV target in a subdomain or another domain)",
                 cl->srv_domain);
    const config_setting_t *list = config_lookup(c->lc, "cluster.nodes");
    bool fqdn_listed = false;
    for (size_t i = 0; i < cl->n_nodes; i++) {
        const struct cluster_node_conf *n = &cl->nodes[i];
        fqdn_listed = fqdn_listed || strcasecmp(n->fqdn, cl->sip_fqdn) == 0;
        for (size_t j = 0; j < i; j++) {
            const char *what = NULL;
            if (n->name[0] && strcmp(n->name, cl->nodes[j].name) == 0)
                what = "name";
            else if (n->fqdn[0] && strcasecmp(n->fqdn, cl->nodes[j].fqdn) == 0)
                what = "fqdn";
            if (!what)
                continue;
            const config_setting_t *e = list ? config_setting_get_elem(list, (unsigned)i) : NULL;
            char field[CF_FIELD_MAX];
            snprintf(field, sizeof field, "cluster.nodes[%zu].%s", i, what);
            cf_error(c, e ? config_setting_get_member(e, what) : NULL, field,
                     "duplicate of cluster.nodes[%zu]", j);
            break;
        }
    }
    if (cl->n_nodes && cl->sip_fqdn[0] && !fqdn_listed)
        cf_error(c, CF_WHERE(c, "cluster.sip_fqdn", "cluster"), "cluster.sip_fqdn",
                 "\"%s\" is not the fqdn of any cluster.nodes entry (each node's FQDN must be "
                 "in the cluster certificate, which is planned from cluster.nodes)",
                 cl->sip_fqdn);
}
