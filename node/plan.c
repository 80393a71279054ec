/* `confnode plan` / `confnode csr`: DNS records and the cluster certificate from the
 * configuration, a check of an existing certificate, and a CSR (OpenSSL 3). */
#include "plan.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PLAN_TTL = 300 };

static void lower_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static int add_san(struct cn_plan *p, const char *name)
{
    char low[256];
    lower_copy(low, sizeof low, name);
    for (size_t i = 0; i < p->n_san; i++)
        if (strcmp(p->san[i], low) == 0)
            return 0;
    snprintf(p->san[p->n_san++], sizeof p->san[0], "%s", low);
    return 0;
}

static bool is_v6(const char *addr)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET6, addr, buf) == 1;
}

static bool is_unspecified(const char *addr)
{
    return strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0;
}

int cn_plan_build(const struct cn_config *cfg, struct cn_plan *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    const struct cluster_conf *cl = &cfg->cluster;
    lower_copy(p->srv_domain, sizeof p->srv_domain,
               cl->srv_domain[0] ? cl->srv_domain : cfg->ctl.domain);
    if (cl->srv_target[0]) {
        lower_copy(p->srv_target, sizeof p->srv_target, cl->srv_target);
    } else {
        char t[sizeof p->srv_target + 8];
        snprintf(t, sizeof t, "sip.%s", p->srv_domain);
        if (strlen(t) >= sizeof p->srv_target) {
            snprintf(err, errlen, "cluster.srv_domain: too long to prefix with \"sip.\"");
            return -1;
        }
        lower_copy(p->srv_target, sizeof p->srv_target, t);
    }
    p->port = cfg->dp.tls_port ? cfg->dp.tls_port : 5061;
    size_t n = cl->n_nodes ? cl->n_nodes : 1;
    p->nodes = calloc(n, sizeof *p->nodes);
    p->san = calloc(n + 1, sizeof *p->san);
    if (!p->nodes || !p->san) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (cl->n_nodes == 0) {
        if (!cl->sip_fqdn[0]) {
            snprintf(err, errlen,
                     "%s: no cluster.nodes and no cluster.sip_fqdn: nothing to plan "
                     "(list the nodes: name, fqdn, address)",
                     cfg->path[0] ? cfg->path : "config");
            return -1;
        }
        if (is_unspecified(cfg->dp.listen)) {
            snprintf(err, errlen,
                     "%s: sip.listen is %s: list the nodes with their public "
                     "addresses in cluster.nodes",
                     cfg->path[0] ? cfg->path : "config", cfg->dp.listen);
            return -1;
        }
        struct cn_plan_node *e = &p->nodes[0];
        snprintf(e->name, sizeof e->name, "%s", cfg->node.name);
        lower_copy(e->fqdn, sizeof e->fqdn, cl->sip_fqdn);
        snprintf(e->address, sizeof e->address, "%s", cfg->dp.listen);
        e->signaling = true;
    } else {
        for (size_t i = 0; i < cl->n_nodes; i++) {
            struct cn_plan_node *e = &p->nodes[i];
            snprintf(e->name, sizeof e->name, "%s", cl->nodes[i].name);
            lower_copy(e->fqdn, sizeof e->fqdn, cl->nodes[i].fqdn);
            snprintf(e->address, sizeof e->address, "%s", cl->nodes[i].address);
            e->signaling = cl->nodes[i].signaling != 0;
        }
    }
    p->n_nodes = n;
    add_san(p, p->srv_target);
    for (size_t i = 0; i < n; i++) {
        p->nodes[i].v6 = is_v6(p->nodes[i].address);
        add_san(p, p->nodes[i].fqdn);
    }
    return 0;
}

void cn_plan_free(struct cn_plan *p)
{
    if (!p)
        return;
    free(p->nodes);
    free(p->san);
    p->nodes = NULL;
    p->san = NULL;
    p->n_nodes = p->n_san = 0;
}

void cn_plan_print(const struct cn_plan *p, FILE *out)
{
    size_t signaling = 0;
    for (size_t i = 0; i < p->n_nodes; i++)
        signaling += p->nodes[i].signaling;
    fprintf(out, "; confnode plan: %s, %zu node%s (%zu in the %s round robin)\n;\n", p->srv_domain,
            p->n_nodes, p->n_nodes == 1 ? "" : "s", signaling, p->srv_target);
    fprintf(out, "; DNS records (zone-file lines)\n");
    fprintf(out, "_sipfederationtls._tcp.%s. %d IN SRV 1 100 %u %s.\n", p->srv_domain, PLAN_TTL,
            p->port, p->srv_target);
    for (size_t i = 0; i < p->n_nodes; i++)
        if (p->nodes[i].signaling)
            fprintf(out, "%s. %d IN %s %s\n", p->srv_target, PLAN_TTL,
                    p->nodes[i].v6 ? "AAAA" : "A", p->nodes[i].address);
    for (size_t i = 0; i < p->n_nodes; i++)
        if (strcmp(p->nodes[i].fqdn, p->srv_target) != 0)
            fprintf(out, "%s. %d IN %s %s\n", p->nodes[i].fqdn, PLAN_TTL,
                    p->nodes[i].v6 ? "AAAA" : "A", p->nodes[i].address);
    fprintf(out, ";\n; Certificate (one for every node; `confnode csr` writes the request)\n");
    fprintf(out, ";   subject: CN=%s\n;   subjectAltName:", p->srv_target);
    for (size_t i = 0; i < p->n_san; i++)
        fprintf(out, "%s DNS:%s", i ? "," : "", p->san[i]);
    fprintf(out, "\n;   extendedKeyUsage: serverAuth, clientAuth (mutual TLS with federated "
                 "edges)\n");
    fprintf(out, ";   no wildcards; a new node needs a new certificate with one more SAN\n");
}

/* ---- checking a certificate ---------------------------------------------------------- */

static void ssl_reason(char *err, size_t errlen, const char *what, const char *path)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    snprintf(err, errlen, "%s '%s'%s%s", what, path, buf[0] ? ": " : "", buf);
}

static X509 *read_cert(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "certificate '%s': %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (!x)
        ssl_reason(err, errlen, "no PEM certificate in", path);
    return x;
}

/* Copies a DNS GENERAL_NAME into out (lower case); false when it is not one. */
static bool dns_name(const GENERAL_NAME *g, char *out, size_t cap)
{
    if (g->type != GEN_DNS)
        return false;
    const ASN1_STRING *s = g->d.dNSName;
    int len = ASN1_STRING_length(s);
    const unsigned char *d = ASN1_STRING_get0_data(s);
    if (len < 0 || (size_t)len >= cap || memchr(d, '\0', (size_t)len))
        return false;
    for (int i = 0; i < len; i++)
        out[i] = (char)tolower(d[i]);
    out[len] = '\0';
    return true;
}

int cn_plan_check_cert(const struct cn_plan *p, const char *path, FILE *out, char *err,
                       size_t errlen)
{
    X509 *x = read_cert(path, err, errlen);
    if (!x)
        return -1;
    unsigned missing = 0;
    bool *found = calloc(p->n_san ? p->n_san : 1, sizeof *found);
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    fprintf(out, ";\n; Certificate %s\n", path);
    if (!found) {
        snprintf(err, errlen, "out of memory");
        GENERAL_NAMES_free(gens);
        X509_free(x);
        return -1;
    }
    if (!gens)
        fprintf(out, ";   no subjectAltName: peers would check the CN alone, which cannot "
                     "name a whole cluster\n");
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        char name[256];
        if (!dns_name(sk_GENERAL_NAME_value(gens, i), name, sizeof name))
            continue;
        bool planned = false;
        for (size_t j = 0; j < p->n_san; j++) {
            if (strcmp(p->san[j], name) == 0) {
                found[j] = planned = true;
            }
        }
        if (name[0] == '*')
            fprintf(out, ";   wildcard SAN: DNS:%s (federated edges do not accept wildcards)\n",
                    name);
        else if (!planned)
            fprintf(out, ";   extra SAN: DNS:%s (not in the plan)\n", name);
    }
    for (size_t j = 0; j < p->n_san; j++) {
        if (!found[j]) {
            fprintf(out, ";   missing SAN: DNS:%s\n", p->san[j]);
            missing++;
        }
    }
    char cn[256] = "";
    const X509_NAME *subj = X509_get_subject_name(x);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx >= 0) {
        const ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
        int len = ASN1_STRING_length(d);
        if (len > 0 && (size_t)len < sizeof cn) {
            memcpy(cn, ASN1_STRING_get0_data(d), (size_t)len);
            cn[len] = '\0';
        }
    }
    if (strcasecmp(cn, p->srv_target) != 0)
        fprintf(out,
                ";   subject CN is \"%s\"; the plan says %s (the SAN entries are what "
                "peers check)\n",
                cn, p->srv_target);
    if (X509_get_extension_flags(x) & EXFLAG_XKUSAGE) {
        uint32_t xku = X509_get_extended_key_usage(x);
        if (!(xku & XKU_SSL_SERVER)) {
            fprintf(out, ";   missing extendedKeyUsage: serverAuth\n");
            missing++;
        }
        if (!(xku & XKU_SSL_CLIENT)) {
            fprintf(out, ";   missing extendedKeyUsage: clientAuth (needed for mutual TLS)\n");
            missing++;
        }
    }
    if (missing)
        fprintf(out, ";   result: %u missing\n", missing);
    else
        fprintf(out, ";   result: complete\n");
    free(found);
    GENERAL_NAMES_free(gens);
    X509_free(x);
    return missing ? 1 : 0;
}

/* ---- the request --------------------------------------------------------------------------- */

static EVP_PKEY *load_or_create_key(const char *path, cn_key_type_t kt, bool *created, char *err,
                                    size_t errlen)
{
    *created = false;
    FILE *f = fopen(path, "r");
    if (f) {
        EVP_PKEY *k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!k)
            ssl_reason(err, errlen, "no PEM private key in", path);
        return k;
    }
    if (errno != ENOENT) {
        snprintf(err, errlen, "key '%s': %s", path, strerror(errno));
        return NULL;
    }
    EVP_PKEY *k = kt == CN_KEY_RSA_2048 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                        : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (!k) {
        ssl_reason(err, errlen, "cannot generate the key for", path);
        return NULL;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *w = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!w) {
        snprintf(err, errlen, "key '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        EVP_PKEY_free(k);
        return NULL;
    }
    int ok = PEM_write_PrivateKey(w, k, NULL, NULL, 0, NULL, NULL);
    if (fclose(w) != 0 || !ok) {
        ssl_reason(err, errlen, "cannot write the key to", path);
        unlink(path);
        EVP_PKEY_free(k);
        return NULL;
    }
    *created = true;
    return k;
}

static X509_EXTENSION *san_extension(const struct cn_plan *p)
{
    X509_EXTENSION *ext = NULL;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    for (size_t i = 0; gens && i < p->n_san; i++) {
        GENERAL_NAME *g = GENERAL_NAME_new();
        ASN1_IA5STRING *s = ASN1_IA5STRING_new();
        if (!g || !s || !ASN1_STRING_set(s, p->san[i], (int)strlen(p->san[i]))) {
            GENERAL_NAME_free(g);
            ASN1_IA5STRING_free(s);
            goto out;
        }
        GENERAL_NAME_set0_value(g, GEN_DNS, s);
        if (!sk_GENERAL_NAME_push(gens, g)) {
            GENERAL_NAME_free(g);
            goto out;
        }
    }
    if (gens)
        ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
out:
    GENERAL_NAMES_free(gens);
    return ext;
}

static X509_EXTENSION *eku_extension(void)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    X509_EXTENSION *ext = NULL;
    if (eku && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) &&
        sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)))
        ext = X509V3_EXT_i2d(NID_ext_key_usage, 0, eku);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ext;
}

int cn_plan_write_csr(const struct cn_plan *p, const char *key_path, cn_key_type_t kt,
                      const char *csr_path, bool *created, char *err, size_t errlen)
{
    int rc = -1;
    bool made = false;
    X509_REQ *req = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    FILE *f = NULL;
    EVP_PKEY *key = load_or_create_key(key_path, kt, &made, err, errlen);
    if (created)
        *created = made;
    if (!key)
        goto out;
    bool rsa = EVP_PKEY_is_a(key, "RSA");
    req = X509_REQ_new();
    exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = san_extension(p), *eku = eku_extension();
    X509_EXTENSION *ku = X509V3_EXT_conf_nid(NULL, NULL, NID_key_usage,
                                             rsa ? "critical,digitalSignature,keyEncipherment"
                                                 : "critical,digitalSignature");
    bool pushed = exts && san && eku && ku;
    X509_EXTENSION *all[] = {san, eku, ku};
    for (size_t i = 0; i < 3; i++) {
        if (pushed && sk_X509_EXTENSION_push(exts, all[i]))
            continue;
        pushed = false;
        X509_EXTENSION_free(all[i]);
    }
    X509_NAME *name = req ? X509_REQ_get_subject_name(req) : NULL;
    if (!req || !pushed || !X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)p->srv_target,
                                    -1, -1, 0) ||
        !X509_REQ_add_extensions(req, exts) || !X509_REQ_set_pubkey(req, key) ||
        !X509_REQ_sign(req, key, EVP_sha256())) {
        ssl_reason(err, errlen, "cannot build the request for", csr_path);
        goto out;
    }
    f = fopen(csr_path, "w");
    if (!f) {
        snprintf(err, errlen, "request '%s': %s", csr_path, strerror(errno));
        goto out;
    }
    if (!PEM_write_X509_REQ(f, req)) {
        ssl_reason(err, errlen, "cannot write the request to", csr_path);
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        snprintf(err, errlen, "request '%s': %s", csr_path, strerror(errno));
        goto out;
    }
    f = NULL;
    rc = 0;
out:
    if (f)
        fclose(f);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

/* ---- the subcommands --------------------------------------------------------------------------
 */

struct plan_args {
    const char *config, *cert, *key, *out, *key_type;
};

/* Parses "-c F", "--config F", "--config=F" and the other "--name value" /
 * "--name=value" options; returns -1 (with a message on stderr) on anything else. */
static int parse_args(int argc, char **argv, struct plan_args *a, bool csr)
{
    struct {
        const char *name;
        const char **dst;
        bool for_csr;
    } opts[] = {
        {"--config", &a->config, true},     {"--cert", &a->cert, false},
        {"--key", &a->key, true},           {"--out", &a->out, true},
        {"--key-type", &a->key_type, true},
    };
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-c") == 0)
            arg = "--config";
        bool matched = false;
        for (size_t j = 0; j < sizeof opts / sizeof opts[0] && !matched; j++) {
            size_t len = strlen(opts[j].name);
            if (strncmp(arg, opts[j].name, len) != 0 || (arg[len] != '\0' && arg[len] != '='))
                continue;
            if (csr != opts[j].for_csr && j != 0)
                break;
            if (arg[len] == '=') {
                *opts[j].dst = arg + len + 1;
            } else if (i + 1 < argc) {
                *opts[j].dst = argv[++i];
            } else {
                fprintf(stderr, "confnode %s: %s needs a value\n", argv[1], opts[j].name);
                return -1;
            }
            matched = true;
        }
        if (!matched) {
            fprintf(stderr, "confnode %s: unknown option '%s'\n", argv[1], argv[i]);
            return -1;
        }
    }
    if (!a->config) {
        fprintf(stderr, "confnode %s: -c FILE is required\n", argv[1]);
        return -1;
    }
    return 0;
}

static int load_plan(const char *path, struct cn_config *cfg, struct cn_plan *p)
{
    static char err[8192];
    if (cn_config_load(path, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    if (cn_plan_build(cfg, p, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

int cn_plan_main(int argc, char **argv)
{
    struct plan_args a;
    if (parse_args(argc, argv, &a, false) != 0)
        return 2;
    struct cn_config cfg;
    struct cn_plan p;
    int rc = 1;
    memset(&p, 0, sizeof p);
    if (load_plan(a.config, &cfg, &p) != 0)
        goto out;
    cn_plan_print(&p, stdout);
    const char *cert = a.cert ? a.cert : cfg.dp.tls.certificate;
    rc = 0;
    if (cert[0]) {
        char err[1024];
        int r = cn_plan_check_cert(&p, cert, stdout, err, sizeof err);
        if (r < 0)
            fprintf(stderr, "confnode plan: %s\n", err);
        rc = r == 0 ? 0 : 1;
    }
out:
    fflush(stdout);
    cn_plan_free(&p);
    cn_config_free(&cfg);
    return rc;
}

int cn_csr_main(int argc, char **argv)
{
    struct plan_args a;
    if (parse_args(argc, argv, &a, true) != 0)
        return 2;
    cn_key_type_t kt = CN_KEY_EC_P256;
    if (a.key_type && strcmp(a.key_type, "rsa") == 0) {
        kt = CN_KEY_RSA_2048;
    } else if (a.key_type && strcmp(a.key_type, "ec") != 0) {
        fprintf(stderr, "confnode csr: --key-type must be \"ec\" (P-256) or \"rsa\" (2048)\n");
        return 2;
    }
    if (!a.key || !a.out) {
        fprintf(stderr, "confnode csr: --key KEY and --out CSR are required\n");
        return 2;
    }
    struct cn_config cfg;
    struct cn_plan p;
    int rc = 1;
    memset(&p, 0, sizeof p);
    if (load_plan(a.config, &cfg, &p) == 0) {
        char err[1024];
        bool created = false;
        if (cn_plan_write_csr(&p, a.key, kt, a.out, &created, err, sizeof err) != 0) {
            fprintf(stderr, "confnode csr: %s\n", err);
        } else {
            printf("%s: certificate request for CN=%s with %zu SAN entries", a.out, p.srv_target,
                   p.n_san);
            if (created)
                printf("; new %s key in %s", kt == CN_KEY_RSA_2048 ? "RSA 2048" : "EC P-256",
                       a.key);
            printf("\n");
            rc = 0;
        }
    }
    cn_plan_free(&p);
    cn_config_free(&cfg);
    return rc;
}

void cn_plan_store_conf(const struct cn_config *cfg, struct cl_store_conf *out)
{
    const struct cluster_conf *cl = &cfg->cluster;
    cl_store_conf_defaults(out);
    out->mode = cl->mode == CN_CLUSTER_REDIS ? CL_MODE_REDIS : CL_MODE_STANDALONE;
    snprintf(out->self.name, sizeof out->self.name, "%s", cfg->node.name);
    snprintf(out->self.location, sizeof out->self.location, "%s", cl->location);
    snprintf(out->self.sip_fqdn, sizeof out->self.sip_fqdn, "%s", cl->sip_fqdn);
    snprintf(out->self.addresses, sizeof out->self.addresses, "%s", cfg->dp.listen);
    for (size_t i = 0; i < cl->n_nodes; i++)
        if (strcmp(cl->nodes[i].name, cfg->node.name) == 0)
            snprintf(out->self.addresses, sizeof out->self.addresses, "%s", cl->nodes[i].address);
    out->lease_ttl_ms = cl->lease_ttl_ms;
    out->heartbeat_ms = cl->heartbeat_ms;
    snprintf(out->redis, sizeof out->redis, "%s", cl->redis);
    size_t n = cl->n_sentinels < CL_MAX_SENTINELS ? cl->n_sentinels : CL_MAX_SENTINELS;
    for (size_t i = 0; i < n; i++)
        snprintf(out->sentinels[i], sizeof out->sentinels[i], "%s", cl->sentinels[i]);
    out->n_sentinels = n;
    snprintf(out->master_name, sizeof out->master_name, "%s", cl->master_name);
}
