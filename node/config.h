/* Configuration: one libconfig file (https://hyperrealm.github.io/libconfig/).
 *
 *   node:  { name = "node1"; workers = "auto"; log_level = "info"; };
 *   sip:   { listen = "127.0.0.1"; udp_port = 5060; tcp_port = 5060; tls_port = 5061;
 *            domain = "example.test"; max_message_size = 65536; idle_timeout = 600; ... };
 *   tls:   { certificate = "..."; key = "..."; ca = "..."; verify_client = "request"; ... };
 *   media: { address = "127.0.0.1"; port_min = 40000; port_max = 49999; };
 *   admin: { listen = "127.0.0.1"; port = 8088; };
 *   vmrs = ( { alias = "meet@example.test"; name = "Demo room"; } );
 *   cluster: { mode = "redis"; sentinels = [ "192.0.2.21:26379" ]; srv_domain = "...";
 *              nodes = ( { name = "node1"; fqdn = "..."; address = "..."; } ); ... };
 *   zones: { dns: { security = "tls-required"; ... };
 *            neighbours = ( { name = "vcs"; peers = [ "192.0.2.5:5061" ]; ... } );
 *            static_routes = ( { domain = "partner.example"; addresses = [ ... ]; } ); };
 *   search_rules = ( { name = "rooms"; priority = 10; pattern_type = "regex";
 *                      pattern = "meet\\..*@example\\.com"; target = "local"; } );
 *   federation: { privacy = "allow-list"; allow = [ "partner.example" ]; history_size = 1000; };
 *
 * Every key is known: an unknown key, a wrong type or an out-of-range value is an
 * error naming file, line and field ("standalone.conf:12: sip.udp_port: must be
 * 0..65535"). Relative paths are taken relative to the config file's directory.
 * See docs/configuration.md for every key, its type and its default. */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ctl_conf.h"
#include "dp_conf.h"
#include "fed_route.h"

struct node_conf {
    char name[64];           /* node name, default: the host name */
    unsigned workers;        /* 0 = auto: one per online CPU */
    int log_level;           /* cn_log_level_t */
};

struct admin_conf {
    char listen[64];         /* default "127.0.0.1" */
    uint16_t port;           /* default 8088; 0 = admin HTTP off */
};

enum cn_cluster_mode {
    CN_CLUSTER_STANDALONE = 0, /* no shared state: the cluster is this node */
    CN_CLUSTER_REDIS = 1,      /* shared state in Redis (direct or through Sentinel) */
};

enum { CN_CLUSTER_MAX_SENTINELS = 8, CN_CLUSTER_MAX_NODES = 64 };

/* One node of the cluster as DNS and the certificate must know it. */
struct cluster_node_conf {
    char name[64];           /* node.name of that node */
    char fqdn[256];          /* its own DNS name (A/AAAA record, SAN entry) */
    char address[64];        /* its public IPv4 or IPv6 address */
    int signaling;           /* in the SRV target's round robin; default 1 */
};

struct cluster_conf {
    int mode;                /* enum cn_cluster_mode; default standalone */
    char location[64];       /* placement prefers nodes of the caller's location */
    char sip_fqdn[256];      /* this node's SIP TLS FQDN */
    char srv_domain[256];    /* "example.com": _sipfederationtls._tcp.<srv_domain> */
    char srv_target[256];    /* "sip.example.com": the round-robin name the SRV names */
    char redis[80];          /* "IP:port" or "[IPv6]:port" (plain Redis) */
    char sentinels[CN_CLUSTER_MAX_SENTINELS][80]; /* same form, Sentinel mode */
    size_t n_sentinels;
    char master_name[64];    /* Sentinel master name; default "mymaster" */
    uint32_t lease_ttl_ms;   /* written in seconds; default 15 s */
    uint32_t heartbeat_ms;   /* written in seconds; default 5 s, < lease_ttl */
    struct cluster_node_conf *nodes; /* the whole cluster, for `confnode plan` */
    size_t n_nodes;
};

/* Federation routing (zones, search_rules, federation sections) and the search
 * history; compiled by fed_router_new() at start. */
struct federation_conf {
    struct fed_route_conf route; /* lists owned by the config */
    uint32_t history_size;       /* search history records; default 1000 */
    char dns_server[160];        /* "127.0.0.1:5353" (c-ares list form); "": resolv.conf */
    int inbound_check;           /* check federated TLS peers' SRV target and certificate;
                                    default 1 */
};

struct cn_config {
    char path[4096];         /* the file it was loaded from */
    struct node_conf node;
    struct dp_conf dp;
    struct ctl_conf ctl;
    struct admin_conf admin;
    struct cluster_conf cluster;
    struct federation_conf fed;
};

/* Fills every field with its default (what an empty file gives). */
void cn_config_defaults(struct cn_config *cfg);

/* Loads and validates `path` into cfg (defaults first, then the file).
 * Returns 0, or -1 with one or more lines "FILE:LINE: field: problem" in err
 * (the first problems found, newline-separated). cfg must be cn_config_free()d in
 * both cases. cfg is overwritten, not freed: free a previously loaded cfg first. */
int cn_config_load(const char *path, struct cn_config *cfg, char *err, size_t errlen);

/* The worker count to run: node.workers, or when it is 0 ("auto") the number of
 * online CPUs; always 1..128. cn_config_defaults() and cn_config_load() store it
 * in cfg->dp.workers, so callers normally read that field. */
int cn_config_resolve_workers(const struct cn_config *cfg);

/* Checks that every TLS file named in cfg (tls.certificate, tls.key, tls.ca; empty
 * names are skipped) is a readable regular file. cn_config_load() does not touch
 * them; `confnode check-config` calls this as well. Returns 0, or -1 with one line
 * "CONFIG: field: 'PATH': problem" per bad file in err. */
int cn_config_check_files(const struct cn_config *cfg, char *err, size_t errlen);

/* Frees what cn_config_load() allocated (the VMR, cluster node, zone, rule and
 * privacy lists). Accepts a zeroed cfg. */
void cn_config_free(struct cn_config *cfg);

#endif
