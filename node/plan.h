/* `confnode plan` and `confnode csr`: what DNS and the certificate must say for a
 * cluster, from the `cluster` section of the configuration.
 *
 *   _sipfederationtls._tcp.<srv_domain>. 300 IN SRV 1 100 <tls_port> <srv_target>.
 *   <srv_target>. 300 IN A|AAAA <address>      one per signaling node (round robin)
 *   <fqdn>.       300 IN A|AAAA <address>      one per node
 *
 * One certificate for every node: CN = srv_target, SAN = srv_target and every node
 * FQDN (DNS names, no wildcards), extendedKeyUsage serverAuth + clientAuth (mutual
 * TLS with federated edges). */
#ifndef CN_PLAN_H
#define CN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cl_store.h"
#include "config.h"

struct cn_plan_node {
    char name[64];
    char fqdn[256];
    char address[64];
    bool v6;        /* AAAA rather than A */
    bool signaling; /* in the srv_target round robin */
};

struct cn_plan {
    char srv_domain[256];
    char srv_target[256];
    unsigned port; /* sip.tls_port, 5061 when TLS is off */
    struct cn_plan_node *nodes;
    size_t n_nodes;
    char (*san)[256]; /* srv_target first, then each node FQDN once (lower case) */
    size_t n_san;
};

/* Builds the plan from cfg: srv_domain defaults to sip.domain, srv_target to
 * "sip.<srv_domain>"; without cluster.nodes the plan is this node alone
 * (node.name, cluster.sip_fqdn, sip.listen). Returns 0, or -1 with a reason in err.
 * p must be cn_plan_free()d in both cases. */
int cn_plan_build(const struct cn_config *cfg, struct cn_plan *p, char *err, size_t errlen);
/* Accepts NULL and a zeroed plan. */
void cn_plan_free(struct cn_plan *p);

/* Writes the DNS records (zone-file lines) and the certificate requirements; every
 * line that is not a record starts with ';' so the output pastes into a zone file. */
void cn_plan_print(const struct cn_plan *p, FILE *out);

/* Compares the first certificate in PEM file `path` with the plan and writes what
 * it lacks and what it has in excess (';'-comment lines). Returns 0 when nothing is
 * missing (every SAN, and serverAuth + clientAuth when it restricts key usage), 1
 * when something is, -1 with a reason in err when the file holds no certificate. */
int cn_plan_check_cert(const struct cn_plan *p, const char *path, FILE *out, char *err,
                       size_t errlen);

typedef enum {
    CN_KEY_EC_P256 = 0,
    CN_KEY_RSA_2048 = 1,
} cn_key_type_t;

/* Writes a PEM certificate request for the plan to csr_path: subject CN =
 * srv_target, subjectAltName = the SAN list, extendedKeyUsage serverAuth +
 * clientAuth, keyUsage digitalSignature (+ keyEncipherment for RSA), SHA-256.
 * Uses the PEM private key in key_path, or creates it there (mode 0600, type kt)
 * when the file does not exist; *created says which. Returns 0 or -1 with err. */
int cn_plan_write_csr(const struct cn_plan *p, const char *key_path, cn_key_type_t kt,
                      const char *csr_path, bool *created, char *err, size_t errlen);

/* The subcommands: argv[1] is "plan" or "csr". Return the process exit status:
 * plan: 0 nothing missing, 1 something missing or a bad config, 2 usage;
 * csr:  0 written, 1 failure, 2 usage. */
int cn_plan_main(int argc, char **argv);
int cn_csr_main(int argc, char **argv);

/* The cluster store configuration of this node: mode, Redis or sentinels, master
 * name, lease, heartbeat, and self = node.name, cluster.location, cluster.sip_fqdn,
 * addresses = this node's cluster.nodes address when it is listed, else sip.listen. */
void cn_plan_store_conf(const struct cn_config *cfg, struct cl_store_conf *out);

#endif
