/* Configuration loading: one libconfig file -> struct cn_config.
 *
 * DESIGN. The schema is data. Each section is a table of keys (name, setter, where
 * the value goes, range); the setters convert and check one value and write it only
 * when it is valid. Loading is three passes over one libconfig tree:
 *   1. scan the raw text for integer literals that libconfig 1.5 silently wraps to
 *      32 bits (udp_port = 4294972356 would otherwise load as 5060);
 *   2. walk every setting and match it against the tables: unknown keys and wrong
 *      types are errors, never ignored;
 *   3. rules no single key can check (TLS material when TLS listens, media port
 *      pairs, timer order, port clashes).
 * Problems are collected (not just the first), sorted by position, and the first
 * CF_MAX_REPORTED are written as "FILE:LINE: field: problem" lines.
 *
 * @include directives are resolved in the config file's directory. Pass 1 only
 * reads the main file: an included file gets libconfig's own integer handling. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cn_log.h"
#include "fed_history.h"

enum {
    CF_MAX_REPORTED = 10, /* problems written to err */
    CF_MAX_KEPT = 64,     /* problems kept for sorting; later ones are only counted */
    CF_TEXT_MAX = 320,    /* "field: problem" */
    CF_FIELD_MAX = 160,   /* "sip.udp_port", "vmrs[12].alias" */
    CF_QUOTE_MAX = 48,    /* user text echoed in a message */
    CF_MAX_WORKERS = 128,
    CF_MAX_FILE_SIZE = 1 << 20, /* a config file is small; refuse anything larger */
};

/* ---- problems ---------------------------------------------------------------- */

struct cf_problem {
    const char *file; /* the libconfig tree's file name or ctx->path; valid until out: */
    unsigned line;    /* 0 = the file as a whole */
    unsigned seq;     /* order found: keeps the sort stable */
    bool in_dir;      /* file is an @include name, relative to ctx->dir */
    bool included;    /* not the main file: sorts after it */
    char text[CF_TEXT_MAX];
};

struct cf_ctx {
    struct cn_config *cfg;
    const config_t *lc;          /* NULL until the file parsed */
    const char *path;            /* the config file as given */
    const char *dir;             /* its directory, NULL when path has no '/' */
    struct cf_problem *problems; /* CF_MAX_KEPT entries */
    unsigned n_kept;
    unsigned n_total;
};

__attribute__((format(printf, 5, 0))) static void cf_vreport(struct cf_ctx *c, const char *file,
                                                             unsigned line, const char *field,
                                                             const char *fmt, va_list ap)
{
    c->n_total++;
    if (c->n_kept >= CF_MAX_KEPT)
        return;
    struct cf_problem *p = &c->problems[c->n_kept];
    p->file = file ? file : c->path;
    p->included = strcmp(p->file, c->path) != 0;
    p->in_dir = p->included && c->dir && p->file[0] != '/';
    p->line = line;
    p->seq = c->n_kept++;
    int n = field ? snprintf(p->text, sizeof p->text, "%s: ", field) : 0;
    if (n < 0 || (size_t)n >= sizeof p->text)
        return;
    vsnprintf(p->text + n, sizeof p->text - (size_t)n, fmt, ap);
}

/* A problem at a position in a file (line 0: the file as a whole). */
__attribute__((format(printf, 5, 6))) static void cf_report(struct cf_ctx *c, const char *file,
                                                            unsigned line, const char *field,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf_vreport(c, file, line, field, fmt, ap);
    va_end(ap);
}

/* A problem with setting s (NULL: no setting to point at, the file as a whole). */
__attribute__((format(printf, 4, 5))) static void
cf_error(struct cf_ctx *c, const config_setting_t *s, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf_vreport(c, s ? config_setting_source_file(s) : NULL, s ? config_setting_source_line(s) : 0,
               field, fmt, ap);
    va_end(ap);
}

static int cf_problem_cmp(const void *a, const void *b)
{
    const struct cf_problem *x = a, *y = b;
    if (x->included != y->included)
        return x->included ? 1 : -1;
    int r = strcmp(x->file, y->file);
    if (r != 0)
        return r;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

__attribute__((format(printf, 4, 5))) static void cf_append(char *buf, size_t cap, size_t *len,
                                                            const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
}

/* Writes the first CF_MAX_REPORTED problems into err: the main file's first, each
 * file's in line order. */
static void cf_format(struct cf_ctx *c, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    size_t len = 0;
    err[0] = '\0';
    qsort(c->problems, c->n_kept, sizeof *c->problems, cf_problem_cmp);
    unsigned shown = c->n_kept < CF_MAX_REPORTED ? c->n_kept : CF_MAX_REPORTED;
    for (unsigned i = 0; i < shown; i++) {
        const struct cf_problem *p = &c->problems[i];
        cf_append(err, errlen, &len, "%s%s%s%s", i ? "\n" : "", p->in_dir ? c->dir : "",
                  p->in_dir ? "/" : "", p->file);
        if (p->line)
            cf_append(err, errlen, &len, ":%u", p->line);
        cf_append(err, errlen, &len, ": %s", p->text);
    }
    if (c->n_total > shown)
        cf_append(err, errlen, &len, "\n%s: %u more problems not shown", c->path,
                  c->n_total - shown);
}

/* Copies user text into out for a message: at most CF_QUOTE_MAX characters, control
 * characters as '?', so one problem stays on one line. */
static const char *cf_quote(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 4 < outlen && i < CF_QUOTE_MAX; i++)
        out[i] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
    if (s[i] && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

static const char *cf_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

/* ---- schema ------------------------------------------------------------------ */

struct cf_key;
/* Converts and checks setting s; writes dst only when the value is valid. */
typedef void cf_setter(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                       void *dst, const char *field);

struct cf_choice {
    const char *name;
    int value;
};

struct cf_key {
    const char *name; /* first member: cf_closest() reads tables through it */
    cf_setter *set;
    size_t offset;                   /* of the field in the table's base struct */
    size_t size;                     /* of the field: string capacity or integer width */
    long long min, max;              /* integers: range; strings: min = smallest length */
    uint32_t scale;                  /* integers: stored value = value * scale (seconds -> ms) */
    const struct cf_choice *choices; /* enums: NULL-terminated */
};

struct cf_section;
typedef void cf_section_parser(struct cf_ctx *c, const struct cf_section *sec,
                               const config_setting_t *s);

struct cf_section {
    const char *name; /* first member, as in struct cf_key */
    const struct cf_key *keys;
    size_t n_keys;
    cf_section_parser *parse;
};

/* Marks an integer setting whose literal libconfig wrapped (already reported). */
static char cf_wrapped_mark;

static bool cf_is_wrapped(const config_setting_t *s)
{
    return config_setting_get_hook(s) == &cf_wrapped_mark;
}

static void cf_store_uint(void *dst, size_t size, unsigned long long v)
{
    switch (size) {
    case sizeof(uint16_t): {
        uint16_t x = (uint16_t)v;
        memcpy(dst, &x, sizeof x);
        break;
    }
    case sizeof(uint32_t): {
        uint32_t x = (uint32_t)v;
        memcpy(dst, &x, sizeof x);
        break;
    }
    case sizeof(uint64_t): {
        uint64_t x = (uint64_t)v;
        memcpy(dst, &x, sizeof x);
        break;
    }
    default:
        break;
    }
}

static void cf_store_int(void *dst, int v)
{
    memcpy(dst, &v, sizeof v);
}

static void cf_store_string(void *dst, size_t size, const char *v)
{
    snprintf(dst, size, "%s", v);
}

/* Returns the string value of s when it is a string of k->min..k->size-1 characters
 * without control characters; else reports and returns NULL. */
static const char *cf_get_string(struct cf_ctx *c, const struct cf_key *k,
                                 const config_setting_t *s, const char *field)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cf_error(c, s, field, "expected a string, got %s", cf_type_name(s));
        return NULL;
    }
    const char *v = config_setting_get_string(s);
    size_t len = strlen(v);
    if (len < (size_t)k->min) {
        cf_error(c, s, field, "must not be empty");
        return NULL;
    }
    if (len >= k->size) {
        cf_error(c, s, field, "longer than %zu characters", k->size - 1);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (iscntrl((unsigned char)v[i])) {
            cf_error(c, s, field, "contains a control character");
            return NULL;
        }
    }
    return v;
}

static void cf_set_text(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                        void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (v)
        cf_store_string(dst, k->size, v);
}

static void cf_set_ip(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                      void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1) {
        char q[64];
        cf_error(c, s, field, "not an IPv4 or IPv6 address (got \"%s\")", cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* Dot-separated labels of letters, digits, '-' (and '_' when allow_underscore). */
static bool cf_is_dns_name(const char *v, size_t len, bool allow_underscore)
{
    if (len == 0 || v[0] == '.' || v[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '.' && v[i + 1] == '.')
            return false;
        if (!isalnum(ch) && ch != '-' && ch != '.' && !(allow_underscore && ch == '_'))
            return false;
    }
    return true;
}

static void cf_set_domain(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                          void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (!cf_is_dns_name(v, strlen(v), false)) {
        char q[64];
        cf_error(c, s, field, "not a domain name: letters, digits, '-' and '.' (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

static void cf_set_token(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                         void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (!cf_is_dns_name(v, strlen(v), true)) {
        char q[64];
        cf_error(c, s, field, "must be letters, digits, '-', '_' and '.' (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* A VMR alias: user@domain, one '@', no spaces, a domain name after the '@'. */
static void cf_set_alias(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                         void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    const char *at = strchr(v, '@');
    bool ok =
        at && at != v && !strchr(at + 1, '@') && cf_is_dns_name(at + 1, strlen(at + 1), false);
    for (const char *p = v; ok && p < at; p++)
        ok = !isspace((unsigned char)*p) && !strchr("<>\"", *p);
    if (!ok) {
        char q[64];
        cf_error(c, s, field, "must be user@domain with no spaces (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* A file name; a relative one is joined to the config file's directory (also when
 * written in an @include file, as @include names are). "" stays "" (not set). */
static void cf_set_path(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                        void *dst, const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (v[0] == '\0' || v[0] == '/' || !c->dir) {
        cf_store_string(dst, k->size, v);
        return;
    }
    char joined[PATH_MAX];
    int n = snprintf(joined, sizeof joined, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", v);
    if (n < 0 || (size_t)n >= k->size || (size_t)n >= sizeof joined) {
        cf_error(c, s, field, "longer than %zu characters once joined to the config directory",
                 k->size - 1);
        return;
    }
    cf_store_string(dst, k->size, joined);
}

/* Returns true with *out = the value when s is an integer in k->min..k->max. */
static bool cf_get_int(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                       const char *field, long long *out)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        cf_error(c, s, field, "expected an integer, got %s", cf_type_name(s));
        return false;
    }
    if (cf_is_wrapped(s))
        return false;
    long long v = config_setting_get_int64(s);
    if (v < k->min || v > k->max) {
        cf_error(c, s, field, "must be %lld..%lld (got %lld)", k->min, k->max, v);
        return false;
    }
    *out = v;
    return true;
}

static void cf_set_uint(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                        void *dst, const char *field)
{
    long long v;
    if (cf_get_int(c, k, s, field, &v))
        cf_store_uint(dst, k->size, (unsigned long long)v * (k->scale ? k->scale : 1));
}

static void cf_set_bool(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                        void *dst, const char *field)
{
    (void)k;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        cf_error(c, s, field, "expected a boolean (true or false), got %s", cf_type_name(s));
        return;
    }
    cf_store_int(dst, config_setting_get_bool(s) ? 1 : 0);
}

static void cf_choice_list(const struct cf_key *k, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (const struct cf_choice *ch = k->choices; ch->name; ch++)
        cf_append(out, outlen, &len, "%s\"%s\"", ch == k->choices ? "" : ", ", ch->name);
}

static void cf_set_enum(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                        void *dst, const char *field)
{
    char list[128];
    cf_choice_list(k, list, sizeof list);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cf_error(c, s, field, "expected a string (one of %s), got %s", list, cf_type_name(s));
        return;
    }
    const char *v = config_setting_get_string(s);
    for (const struct cf_choice *ch = k->choices; ch->name; ch++) {
        if (strcmp(v, ch->name) == 0) {
            cf_store_int(dst, ch->value);
            return;
        }
    }
    char q[64];
    cf_error(c, s, field, "must be one of %s (got \"%s\")", list, cf_quote(q, sizeof q, v));
}

/* node.workers: "auto" (stored as 0) or an integer in k->min..k->max. */
static void cf_set_workers(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                           void *dst, const char *field)
{
    int t = config_setting_type(s);
    char q[64];
    if (t == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        if (strcmp(v, "auto") == 0)
            cf_store_uint(dst, k->size, 0);
        else
            cf_error(c, s, field, "must be \"auto\" or an integer %lld..%lld (got \"%s\")", k->min,
                     k->max, cf_quote(q, sizeof q, v));
        return;
    }
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        long long v = config_setting_get_int64(s);
        if (cf_is_wrapped(s))
            return;
        if (v >= k->min && v <= k->max)
            cf_store_uint(dst, k->size, (unsigned long long)v);
        else
            cf_error(c, s, field, "must be \"auto\" or an integer %lld..%lld (got %lld)", k->min,
                     k->max, v);
        return;
    }
    cf_error(c, s, field, "expected \"auto\" or an integer, got %s", cf_type_name(s));
}

#define CF_AT(type, m) .offset = offsetof(type, m), .size = sizeof(((type *)0)->m)
#define CF_CFG(m) CF_AT(struct cn_config, m)
#define CF_UINT(n, m, lo, hi)                                                                      \
    {                                                                                              \
        .name = n, .set = cf_set_uint, CF_CFG(m), .min = lo, .max = hi, .scale = 1                 \
    }
/* A value written in seconds and stored in milliseconds. */
#define CF_SECONDS(n, m, lo, hi)                                                                   \
    {                                                                                              \
        .name = n, .set = cf_set_uint, CF_CFG(m), .min = lo, .max = hi, .scale = 1000              \
    }
#define CF_STRING(n, setter, m, minlen)                                                            \
    {                                                                                              \
        .name = n, .set = setter, CF_CFG(m), .min = minlen                                         \
    }
#define CF_ENUM(n, m, list)                                                                        \
    {                                                                                              \
        .name = n, .set = cf_set_enum, CF_CFG(m), .choices = list                                  \
    }
#define CF_COUNT(a) (sizeof(a) / sizeof((a)[0]))

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

static void cf_parse_members(struct cf_ctx *c, const struct cf_key *keys, size_t n_keys,
                             const config_setting_t *g, void *base, const char *prefix,
                             const char *section, bool cross_hints);
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

static const struct cf_choice log_levels[] = {
    {"debug", CN_LOG_DEBUG},
    {"info", CN_LOG_INFO},
    {"warn", CN_LOG_WARN},
    {"error", CN_LOG_ERROR},
    {NULL, 0},
};

static const struct cf_choice tls_versions[] = {{"1.2", 12}, {"1.3", 13}, {NULL, 0}};

static const struct cf_choice verify_modes[] = {
    {"none", DP_TLS_VERIFY_NONE},
    {"request", DP_TLS_VERIFY_REQUEST},
    {"require", DP_TLS_VERIFY_REQUIRE},
    {NULL, 0},
};

static const struct cf_key node_keys[] = {
    CF_STRING("name", cf_set_token, node.name, 1),
    {.name = "workers",
     .set = cf_set_workers,
     CF_CFG(node.workers),
     .min = 1,
     .max = CF_MAX_WORKERS},
    CF_ENUM("log_level", node.log_level, log_levels),
    {.name = "pin_workers", .set = cf_set_bool, CF_CFG(dp.pin_workers)},
};

static const struct cf_key sip_keys[] = {
    CF_STRING("listen", cf_set_ip, dp.listen, 1),
    CF_STRING("domain", cf_set_domain, ctl.domain, 1),
    CF_UINT("udp_port", dp.udp_port, 0, 65535),
    CF_UINT("tcp_port", dp.tcp_port, 0, 65535),
    CF_UINT("tls_port", dp.tls_port, 0, 65535),
    CF_UINT("max_message_size", dp.max_message_size, 1024, 16777216),
    CF_SECONDS("idle_timeout", dp.tcp_idle_timeout_ms, 1, 86400),
    CF_UINT("max_connections", dp.max_connections, 1, 1000000),
    {.name = "accept_preloaded_routes", .set = cf_set_bool, CF_CFG(ctl.accept_preloaded_routes)},
};

static const struct cf_key tls_keys[] = {
    CF_STRING("certificate", cf_set_path, dp.tls.certificate, 0),
    CF_STRING("key", cf_set_path, dp.tls.key, 0),
    CF_STRING("ca", cf_set_path, dp.tls.ca, 0),
    CF_STRING("ciphers", cf_set_text, dp.tls.ciphers, 1),
    CF_STRING("ciphersuites", cf_set_text, dp.tls.ciphersuites, 1),
    CF_ENUM("min_version", dp.tls.min_version, tls_versions),
    CF_ENUM("verify_client", dp.tls.verify_client, verify_modes),
    CF_SECONDS("handshake_timeout", dp.tls.handshake_timeout_ms, 1, 300),
    CF_UINT("session_cache_size", dp.tls.session_cache_size, 0, 10000000),
};

static const struct cf_choice srtp_policies[] = {
    {"required", CTL_SRTP_REQUIRED},
    {"optional", CTL_SRTP_OPTIONAL},
    {"off", CTL_SRTP_OFF},
    {NULL, 0},
};

static const struct cf_key media_keys[] = {
    CF_STRING("address", cf_set_ip, ctl.media_address, 1),
    CF_UINT("port_min", ctl.media_port_min, 1024, 65535),
    CF_UINT("port_max", ctl.media_port_max, 1024, 65535),
    CF_ENUM("srtp", ctl.srtp, srtp_policies),
    CF_SECONDS("media_timeout", ctl.media_timeout_ms, 0, 3600),
    CF_UINT("mix_speakers", ctl.mix_speakers, 1, 8),
};

static const struct cf_key timer_keys[] = {
    CF_UINT("t1", ctl.t1_ms, 1, 60000),
    CF_UINT("t2", ctl.t2_ms, 1, 600000),
    CF_UINT("t4", ctl.t4_ms, 1, 600000),
};

static const struct cf_key limit_keys[] = {
    CF_UINT("max_transactions", ctl.max_transactions, 1, 16777216),
    CF_UINT("max_dialogs", ctl.max_dialogs, 1, 16777216),
};

static const struct cf_key admin_keys[] = {
    CF_STRING("listen", cf_set_ip, admin.listen, 1),
    CF_UINT("port", admin.port, 0, 65535),
};

static const struct cf_choice backends[] = {
    {"sockets", DP_BACKEND_SOCKETS},
    {"dpdk", DP_BACKEND_DPDK},
    {NULL, 0},
};

static const struct cf_choice dpdk_huge_modes[] = {
    {"auto", DPK_HUGE_AUTO},
    {"on", DPK_HUGE_ON},
    {"off", DPK_HUGE_OFF},
    {NULL, 0},
};

static const struct cf_choice dpdk_exceptions[] = {
    {"auto", DPK_EXC_AUTO},
    {"tap", DPK_EXC_TAP},
    {"virtio-user", DPK_EXC_VIRTIO_USER},
    {NULL, 0},
};

static const struct cf_choice dpdk_polls[] = {
    {"adaptive", DPK_POLL_ADAPTIVE},
    {"busy", DPK_POLL_BUSY},
    {NULL, 0},
};

/* The `dpdk` section: read when dataplane = "dpdk" (docs/dpdk.md). */
static const struct cf_key dpdk_keys[] = {
    CF_STRING("device", cf_set_text, dp.dpdk.device, 1),
    CF_STRING("lcores", cf_set_text, dp.dpdk.lcores, 1),
    CF_UINT("memory_mb", dp.dpdk.memory_mb, 64, 1048576),
    CF_ENUM("hugepages", dp.dpdk.hugepages, dpdk_huge_modes),
    CF_STRING("file_prefix", cf_set_token, dp.dpdk.file_prefix, 1),
    CF_ENUM("exception", dp.dpdk.exception, dpdk_exceptions),
    CF_STRING("kernel_iface", cf_set_token, dp.dpdk.kernel_iface, 1),
    CF_UINT("prefix_len", dp.dpdk.prefix_len, 1, 32),
    CF_STRING("gateway", cf_set_ip, dp.dpdk.gateway, 1),
    CF_UINT("mbufs", dp.dpdk.mbufs, 1023, 4194303),
    CF_UINT("rx_desc", dp.dpdk.rx_desc, 64, 16384),
    CF_UINT("tx_desc", dp.dpdk.tx_desc, 64, 16384),
    CF_UINT("burst", dp.dpdk.burst, 1, 64),
    CF_ENUM("poll", dp.dpdk.poll, dpdk_polls),
    CF_STRING("eal_args", cf_set_text, dp.dpdk.eal_args, 0),
};

/* dataplane = "sockets" | "dpdk": a top-level value, not a group. */
static const struct cf_key dataplane_key = CF_ENUM("dataplane", dp.backend, backends);

static const struct cf_choice cluster_modes[] = {
    {"standalone", CN_CLUSTER_STANDALONE},
    {"redis", CN_CLUSTER_REDIS},
    {NULL, 0},
};

static const struct cf_key cluster_keys[] = {
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

/* Keys of one vmrs entry; offsets into struct ctl_vmr_conf. */
static const struct cf_key vmr_keys[] = {
    {.name = "alias", .set = cf_set_alias, CF_AT(struct ctl_vmr_conf, alias), .min = 1},
    {.name = "name", .set = cf_set_text, CF_AT(struct ctl_vmr_conf, name), .min = 0},
    {.name = "answer_delay",
     .set = cf_set_uint,
     CF_AT(struct ctl_vmr_conf, answer_delay_ms),
     .min = 0,
     .max = 60000,
     .scale = 1},
    {.name = "srtp", .set = cf_set_enum, CF_AT(struct ctl_vmr_conf, srtp), .choices = srtp_policies},
    {.name = "mix_speakers",
     .set = cf_set_uint,
     CF_AT(struct ctl_vmr_conf, mix_speakers),
     .min = 1,
     .max = 8,
     .scale = 1},
};

/* ---- federation: zones, search_rules, federation ------------------------------------ */

static const struct cf_choice security_modes[] = {
    {"tls-required", FED_SEC_TLS_REQUIRED},
    {"tls-optional", FED_SEC_TLS_OPTIONAL},
    {"no-tls", FED_SEC_NO_TLS},
    {NULL, 0},
};

static const struct cf_choice fed_transports[] = {
    {"udp", FED_TP_UDP},
    {"tcp", FED_TP_TCP},
    {"tls", FED_TP_TLS},
    {NULL, 0},
};

static const struct cf_choice srv_modes[] = {
    {"rfc2782", FED_SRV_RFC2782},
    {"microsoft", FED_SRV_MICROSOFT},
    {NULL, 0},
};

static const struct cf_choice privacy_modes[] = {
    {"allow-list", FED_PRIVACY_ALLOW_LIST},
    {"deny-list", FED_PRIVACY_DENY_LIST},
    {"off", FED_PRIVACY_OFF},
    {NULL, 0},
};

static const struct cf_choice request_types[] = {
    {"calls", FED_REQ_CALLS},
    {"imp", FED_REQ_IMP},
    {"all", FED_REQ_ALL},
    {NULL, 0},
};

static const struct cf_choice rule_modes[] = {
    {"any-alias", FED_MODE_ANY_ALIAS},
    {"pattern", FED_MODE_PATTERN},
    {NULL, 0},
};

static const struct cf_choice pattern_types[] = {
    {"exact", FED_PATTERN_EXACT},
    {"prefix", FED_PATTERN_PREFIX},
    {"regex", FED_PATTERN_REGEX},
    {NULL, 0},
};

static const struct cf_choice behaviours[] = {
    {"leave", FED_BEHAVIOUR_LEAVE},
    {"replace", FED_BEHAVIOUR_REPLACE},
    {NULL, 0},
};

static const struct cf_choice on_match_modes[] = {
    {"stop", FED_ON_MATCH_STOP},
    {"continue", FED_ON_MATCH_CONTINUE},
    {NULL, 0},
};

/* An array or list of at most `max` strings; returns its length, or -1 (reported). */
static int cf_string_array(struct cf_ctx *c, const config_setting_t *s, const char *field, int max,
                           const char *example)
{
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        cf_error(c, s, field, "expected an array [ %s, ... ], got %s", example, cf_type_name(s));
        return -1;
    }
    int n = config_setting_length(s);
    if (n > max) {
        cf_error(c, s, field, "at most %d entries (got %d)", max, n);
        return -1;
    }
    return n;
}

/* An array of "host[:port]" strings into arr[FED_ROUTE_MAX_ADDRS] and *n. */
static void cf_get_addresses(struct cf_ctx *c, const config_setting_t *s, const char *field,
                             struct fed_hostport *arr, size_t *n)
{
    int count = cf_string_array(c, s, field, FED_ROUTE_MAX_ADDRS, "\"host:port\"");
    *n = 0;
    const struct cf_key one = {.name = "address", .size = FED_NAME_BUF + 8, .min = 1};
    for (int i = 0; i < count; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char sub[CF_FIELD_MAX], why[160], q[64];
        snprintf(sub, sizeof sub, "%s[%d]", field, i);
        const char *v = cf_get_string(c, &one, e, sub);
        if (!v)
            continue;
        if (fed_hostport_parse(v, &arr[*n], why, sizeof why) != 0) {
            cf_error(c, e, sub, "%s (got \"%s\")", why, cf_quote(q, sizeof q, v));
            continue;
        }
        (*n)++;
    }
}

static void cf_set_peers(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                         void *dst, const char *field)
{
    (void)k;
    struct fed_neighbour_conf *z = dst;
    cf_get_addresses(c, s, field, z->peers, &z->n_peers);
}

static void cf_set_route_addresses(struct cf_ctx *c, const struct cf_key *k,
                                   const config_setting_t *s, void *dst, const char *field)
{
    (void)k;
    struct fed_static_route_conf *r = dst;
    cf_get_addresses(c, s, field, r->addrs, &r->n_addrs);
}

/* federation.allow / federation.deny: arrays of names, kept as written (the exact-name
 * rules are checked with the other federation rules in pass 3). */
static void cf_set_domain_list(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                               void *dst, const char *field)
{
    struct fed_route_conf *rc = dst;
    bool allow = strcmp(k->name, "allow") == 0;
    char(**list)[FED_NAME_BUF] = allow ? &rc->allow : &rc->deny;
    size_t *n = allow ? &rc->n_allow : &rc->n_deny;
    int count = cf_string_array(c, s, field, FED_ROUTE_MAX_LIST, "\"example.com\"");
    if (count <= 0)
        return;
    free(*list);
    *n = 0;
    *list = calloc((size_t)count, sizeof **list);
    if (!*list) {
        cf_error(c, s, field, "out of memory for %d entries", count);
        return;
    }
    *n = (size_t)count; /* one slot per element, so problems keep their index */
    const struct cf_key one = {.name = k->name, .size = FED_NAME_BUF, .min = 1};
    for (int i = 0; i < count; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char sub[CF_FIELD_MAX];
        snprintf(sub, sizeof sub, "%s[%d]", field, i);
        const char *v = cf_get_string(c, &one, e, sub);
        if (v)
            cf_store_string((*list)[i], sizeof(*list)[i], v);
    }
}

/* A list of groups, each parsed with `keys` into a new array element of `size`
 * bytes first set by init(). Elements keep their list index. Returns the array, or
 * NULL when the list is empty or wrong (reported); *n gets its length. */
static void *cf_parse_entries(struct cf_ctx *c, const config_setting_t *s, const char *field,
                              const struct cf_key *keys, size_t n_keys, size_t size,
                              void (*init)(void *), const char *const *required, int max, size_t *n)
{
    *n = 0;
    if (!config_setting_is_list(s)) {
        cf_error(c, s, field, "expected a list ( { ... }, ... ), got %s", cf_type_name(s));
        return NULL;
    }
    int count = config_setting_length(s);
    if (count <= 0)
        return NULL;
    if (count > max) {
        cf_error(c, s, field, "at most %d entries (got %d)", max, count);
        return NULL;
    }
    char *arr = calloc((size_t)count, size);
    if (!arr) {
        cf_error(c, s, field, "out of memory for %d entries", count);
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        void *elem = arr + (size_t)i * size;
        char sub[CF_FIELD_MAX];
        snprintf(sub, sizeof sub, "%s[%d]", field, i);
        init(elem);
        if (!config_setting_is_group(e)) {
            cf_error(c, e, sub, "expected a group { ... }, got %s", cf_type_name(e));
            continue;
        }
        cf_parse_members(c, keys, n_keys, e, elem, sub, NULL, false);
        for (const char *const *r = required; *r; r++) {
            if (config_setting_get_member(e, *r))
                continue;
            char f[CF_FIELD_MAX + 16];
            snprintf(f, sizeof f, "%s.%s", sub, *r);
            cf_error(c, e, f, "required");
        }
    }
    *n = (size_t)count;
    return arr;
}

static void cf_init_neighbour(void *p)
{
    fed_neighbour_conf_defaults(p);
}

static void cf_init_static_route(void *p)
{
    fed_static_route_conf_defaults(p);
}

static void cf_init_rule(void *p)
{
    fed_rule_conf_defaults(p);
}

#define CF_FED(type, m) CF_AT(type, m)

static const struct cf_key dns_zone_keys[] = {
    {.name = "security",
     .set = cf_set_enum,
     CF_FED(struct fed_dns_zone_conf, security),
     .choices = security_modes},
    {.name = "client_certificates",
     .set = cf_set_bool,
     CF_FED(struct fed_dns_zone_conf, client_certificates)},
    {.name = "strict_naming", .set = cf_set_bool, CF_FED(struct fed_dns_zone_conf, strict_naming)},
    {.name = "fallback_hosts",
     .set = cf_set_bool,
     CF_FED(struct fed_dns_zone_conf, fallback_hosts)},
    {.name = "srv_mode",
     .set = cf_set_enum,
     CF_FED(struct fed_dns_zone_conf, srv_mode),
     .choices = srv_modes},
};

static const struct cf_key neighbour_keys[] = {
    {.name = "name", .set = cf_set_token, CF_FED(struct fed_neighbour_conf, name), .min = 1},
    {.name = "peers", .set = cf_set_peers, .offset = 0},
    {.name = "transport",
     .set = cf_set_enum,
     CF_FED(struct fed_neighbour_conf, transport),
     .choices = fed_transports},
    {.name = "security",
     .set = cf_set_enum,
     CF_FED(struct fed_neighbour_conf, security),
     .choices = security_modes},
    {.name = "client_certificates",
     .set = cf_set_bool,
     CF_FED(struct fed_neighbour_conf, client_certificates)},
    {.name = "srv_mode",
     .set = cf_set_enum,
     CF_FED(struct fed_neighbour_conf, srv_mode),
     .choices = srv_modes},
};

static const struct cf_key static_route_keys[] = {
    {.name = "domain",
     .set = cf_set_domain,
     CF_FED(struct fed_static_route_conf, domain),
     .min = 1},
    {.name = "addresses", .set = cf_set_route_addresses, .offset = 0},
    {.name = "transport",
     .set = cf_set_enum,
     CF_FED(struct fed_static_route_conf, transport),
     .choices = fed_transports},
    {.name = "security",
     .set = cf_set_enum,
     CF_FED(struct fed_static_route_conf, security),
     .choices = security_modes},
    {.name = "client_certificates",
     .set = cf_set_bool,
     CF_FED(struct fed_static_route_conf, client_certificates)},
};

static const struct cf_key rule_keys[] = {
    {.name = "name", .set = cf_set_text, CF_FED(struct fed_rule_conf, name), .min = 1},
    {.name = "priority",
     .set = cf_set_uint,
     CF_FED(struct fed_rule_conf, priority),
     .min = 1,
     .max = 65534,
     .scale = 1},
    {.name = "enabled", .set = cf_set_bool, CF_FED(struct fed_rule_conf, enabled)},
    {.name = "source", .set = cf_set_token, CF_FED(struct fed_rule_conf, source), .min = 1},
    {.name = "type",
     .set = cf_set_enum,
     CF_FED(struct fed_rule_conf, type),
     .choices = request_types},
    {.name = "mode", .set = cf_set_enum, CF_FED(struct fed_rule_conf, mode), .choices = rule_modes},
    {.name = "pattern_type",
     .set = cf_set_enum,
     CF_FED(struct fed_rule_conf, pattern_type),
     .choices = pattern_types},
    {.name = "pattern", .set = cf_set_text, CF_FED(struct fed_rule_conf, pattern), .min = 1},
    {.name = "behaviour",
     .set = cf_set_enum,
     CF_FED(struct fed_rule_conf, behaviour),
     .choices = behaviours},
    {.name = "replace", .set = cf_set_text, CF_FED(struct fed_rule_conf, replace), .min = 0},
    {.name = "on_match",
     .set = cf_set_enum,
     CF_FED(struct fed_rule_conf, on_match),
     .choices = on_match_modes},
    {.name = "target", .set = cf_set_token, CF_FED(struct fed_rule_conf, target), .min = 1},
};

/* zones.dns: a group; dst is the fed_dns_zone_conf. */
static void cf_set_dns_zone(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                            void *dst, const char *field)
{
    (void)k;
    if (!config_setting_is_group(s)) {
        cf_error(c, s, field, "expected a group { security = \"...\"; ... }, got %s",
                 cf_type_name(s));
        return;
    }
    cf_parse_members(c, dns_zone_keys, CF_COUNT(dns_zone_keys), s, dst, field, NULL, false);
}

/* zones.neighbours: dst is the fed_route_conf. */
static void cf_set_neighbours(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                              void *dst, const char *field)
{
    (void)k;
    struct fed_route_conf *rc = dst;
    static const char *const required[] = {"name", "peers", NULL};
    free(rc->neighbours);
    rc->neighbours = cf_parse_entries(c, s, field, neighbour_keys, CF_COUNT(neighbour_keys),
                                      sizeof *rc->neighbours, cf_init_neighbour, required,
                                      FED_ROUTE_MAX_NEIGHBOURS, &rc->n_neighbours);
}

/* zones.static_routes: dst is the fed_route_conf. */
static void cf_set_static_routes(struct cf_ctx *c, const struct cf_key *k,
                                 const config_setting_t *s, void *dst, const char *field)
{
    (void)k;
    struct fed_route_conf *rc = dst;
    static const char *const required[] = {"domain", "addresses", NULL};
    free(rc->static_routes);
    rc->static_routes = cf_parse_entries(
        c, s, field, static_route_keys, CF_COUNT(static_route_keys), sizeof *rc->static_routes,
        cf_init_static_route, required, FED_ROUTE_MAX_STATIC, &rc->n_static_routes);
}

static const struct cf_key zone_keys[] = {
    {.name = "dns", .set = cf_set_dns_zone, CF_CFG(fed.route.dns)},
    {.name = "neighbours", .set = cf_set_neighbours, CF_CFG(fed.route)},
    {.name = "static_routes", .set = cf_set_static_routes, CF_CFG(fed.route)},
};

static const struct cf_key federation_keys[] = {
    CF_ENUM("privacy", fed.route.privacy, privacy_modes),
    {.name = "allow", .set = cf_set_domain_list, CF_CFG(fed.route)},
    {.name = "deny", .set = cf_set_domain_list, CF_CFG(fed.route)},
    CF_UINT("history_size", fed.history_size, 1, FED_HISTORY_MAX_CAPACITY),
    CF_STRING("dns_server", cf_set_text, fed.dns_server, 1),
    {.name = "inbound_check", .set = cf_set_bool, CF_CFG(fed.inbound_check)},
};

/* search_rules: a list of groups (struct fed_rule_conf). */
static void cf_parse_rules(struct cf_ctx *c, const struct cf_section *sec,
                           const config_setting_t *s)
{
    struct fed_route_conf *rc = &c->cfg->fed.route;
    static const char *const required[] = {"name", NULL};
    free(rc->rules);
    rc->rules = cf_parse_entries(c, s, sec->name, sec->keys, sec->n_keys, sizeof *rc->rules,
                                 cf_init_rule, required, FED_ROUTE_MAX_RULES, &rc->n_rules);
}

static cf_section_parser cf_parse_group, cf_parse_vmrs, cf_parse_dataplane;

static const struct cf_section cf_sections[] = {
    {"node", node_keys, CF_COUNT(node_keys), cf_parse_group},
    {"sip", sip_keys, CF_COUNT(sip_keys), cf_parse_group},
    {"tls", tls_keys, CF_COUNT(tls_keys), cf_parse_group},
    {"media", media_keys, CF_COUNT(media_keys), cf_parse_group},
    {"timers", timer_keys, CF_COUNT(timer_keys), cf_parse_group},
    {"limits", limit_keys, CF_COUNT(limit_keys), cf_parse_group},
    {"admin", admin_keys, CF_COUNT(admin_keys), cf_parse_group},
    {"vmrs", vmr_keys, CF_COUNT(vmr_keys), cf_parse_vmrs},
    {"cluster", cluster_keys, CF_COUNT(cluster_keys), cf_parse_group},
    {"zones", zone_keys, CF_COUNT(zone_keys), cf_parse_group},
    {"search_rules", rule_keys, CF_COUNT(rule_keys), cf_parse_rules},
    {"federation", federation_keys, CF_COUNT(federation_keys), cf_parse_group},
    {"dataplane", &dataplane_key, 1, cf_parse_dataplane},
    {"dpdk", dpdk_keys, CF_COUNT(dpdk_keys), cf_parse_group},
};

/* ---- unknown keys -------------------------------------------------------------- */

/* Edit distance between a and b, or a large number when either is long. */
static unsigned cf_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXLEN || lb >= MAXLEN)
        return UINT_MAX;
    unsigned row[MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The name in table (n entries of `stride` bytes, each starting with a const char *
 * name) closest to `name` within two edits, or NULL. */
static const char *cf_closest(const char *name, const void *table, size_t stride, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < n; i++) {
        const char *cand = *(const char *const *)(const void *)((const char *)table + i * stride);
        unsigned d = cf_distance(name, cand);
        if (d < best_d && d < strlen(cand)) {
            best = cand;
            best_d = d;
        }
    }
    return best;
}

/* Reports s as an unknown key of the given table, with a hint when one fits: a
 * near miss in the same place, or (cross_hints) another section's key of that name. */
static void cf_unknown(struct cf_ctx *c, const config_setting_t *s, const char *field,
                       const void *table, size_t stride, size_t n, const char *section,
                       bool cross_hints)
{
    const char *name = config_setting_name(s);
    const char *near = name ? cf_closest(name, table, stride, n) : NULL;
    if (near) {
        cf_error(c, s, field, "unknown key; did you mean '%s'?", near);
        return;
    }
    for (size_t i = 0; i < CF_COUNT(cf_sections) && name && cross_hints; i++) {
        const struct cf_section *sec = &cf_sections[i];
        if (section && strcmp(section, sec->name) == 0)
            continue;
        for (size_t j = 0; j < sec->n_keys; j++) {
            if (strcmp(name, sec->keys[j].name) == 0) {
                cf_error(c, s, field, "unknown key; did you mean '%s.%s'?", sec->name, name);
                return;
            }
        }
    }
    cf_error(c, s, field, "unknown key");
}

/* ---- pass 2: the tree against the tables ---------------------------------------- */

/* Applies every member of group g to base through keys; prefix names the group. */
static void cf_parse_members(struct cf_ctx *c, const struct cf_key *keys, size_t n_keys,
                             const config_setting_t *g, void *base, const char *prefix,
                             const char *section, bool cross_hints)
{
    int count = config_setting_length(g);
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        char field[CF_FIELD_MAX];
        snprintf(field, sizeof field, "%s.%s", prefix, name ? name : "?");
        const struct cf_key *k = NULL;
        for (size_t j = 0; j < n_keys && name; j++)
            if (strcmp(name, keys[j].name) == 0)
                k = &keys[j];
        if (k)
            k->set(c, k, s, (char *)base + k->offset, field);
        else
            cf_unknown(c, s, field, keys, sizeof *keys, n_keys, section, cross_hints);
    }
}

static void cf_parse_group(struct cf_ctx *c, const struct cf_section *sec,
                           const config_setting_t *s)
{
    if (!config_setting_is_group(s)) {
        cf_error(c, s, sec->name, "expected a group { ... }, got %s", cf_type_name(s));
        return;
    }
    cf_parse_members(c, sec->keys, sec->n_keys, s, c->cfg, sec->name, sec->name, true);
}

static void cf_parse_dataplane(struct cf_ctx *c, const struct cf_section *sec,
                               const config_setting_t *s)
{
    sec->keys[0].set(c, &sec->keys[0], s, (char *)c->cfg + sec->keys[0].offset, sec->name);
}

struct cf_alias_ref {
    const char *alias;
    size_t index;
};

/* Orders aliases so that equal ones are adjacent: the user part compares exactly,
 * the domain without regard to case (as SIP compares URIs). Both are valid aliases. */
static int cf_alias_cmp(const void *a, const void *b)
{
    const struct cf_alias_ref *x = a, *y = b;
    const char *xa = strchr(x->alias, '@'), *ya = strchr(y->alias, '@');
    size_t xl = (size_t)(xa - x->alias), yl = (size_t)(ya - y->alias);
    int r = memcmp(x->alias, y->alias, xl < yl ? xl : yl);
    if (r == 0 && xl != yl)
        r = xl < yl ? -1 : 1;
    if (r == 0)
        r = strcasecmp(xa + 1, ya + 1);
    if (r == 0)
        r = x->index < y->index ? -1 : x->index > y->index;
    return r;
}

static void cf_check_duplicate_aliases(struct cf_ctx *c, const config_setting_t *list)
{
    const struct ctl_conf *ctl = &c->cfg->ctl;
    struct cf_alias_ref *refs = calloc(ctl->n_vmrs ? ctl->n_vmrs : 1, sizeof *refs);
    if (!refs) {
        cf_error(c, list, "vmrs", "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < ctl->n_vmrs; i++)
        if (ctl->vmrs[i].alias[0])
            refs[n++] = (struct cf_alias_ref){ctl->vmrs[i].alias, i};
    qsort(refs, n, sizeof *refs, cf_alias_cmp);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        struct cf_alias_ref a = refs[first], b = refs[i];
        a.index = b.index = 0;
        if (cf_alias_cmp(&a, &b) != 0) {
            first = i;
            continue;
        }
        const config_setting_t *orig = config_setting_get_member(
            config_setting_get_elem(list, (unsigned)refs[first].index), "alias");
        const config_setting_t *dup = config_setting_get_member(
            config_setting_get_elem(list, (unsigned)refs[i].index), "alias");
        char field[CF_FIELD_MAX];
        snprintf(field, sizeof field, "vmrs[%zu].alias", refs[i].index);
        cf_error(c, dup, field, "duplicate of vmrs[%zu] (line %u)", refs[first].index,
                 orig ? config_setting_source_line(orig) : 0);
    }
    free(refs);
}

static void cf_parse_vmrs(struct cf_ctx *c, const struct cf_section *sec, const config_setting_t *s)
{
    if (!config_setting_is_list(s)) {
        cf_error(c, s, sec->name, "expected a list ( { alias = \"...\"; }, ... ), got %s",
                 cf_type_name(s));
        return;
    }
    int n = config_setting_length(s);
    if (n <= 0)
        return;
    struct ctl_conf *ctl = &c->cfg->ctl;
    ctl->vmrs = calloc((size_t)n, sizeof *ctl->vmrs);
    if (!ctl->vmrs) {
        cf_error(c, s, sec->name, "out of memory for %d entries", n);
        return;
    }
    ctl->n_vmrs = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char field[CF_FIELD_MAX];
        snprintf(field, sizeof field, "vmrs[%d]", i);
        if (!config_setting_is_group(e)) {
            cf_error(c, e, field, "expected a group { alias = \"...\"; }, got %s", cf_type_name(e));
            continue;
        }
        cf_parse_members(c, sec->keys, sec->n_keys, e, &ctl->vmrs[i], field, sec->name, false);
        if (!config_setting_get_member(e, "alias")) {
            snprintf(field, sizeof field, "vmrs[%d].alias", i);
            cf_error(c, e, field, "required (user@domain a caller dials)");
        }
    }
    cf_check_duplicate_aliases(c, s);
}

static void cf_parse_root(struct cf_ctx *c, const config_setting_t *root)
{
    int count = config_setting_length(root);
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct cf_section *sec = NULL;
        for (size_t j = 0; j < CF_COUNT(cf_sections) && name; j++)
            if (strcmp(name, cf_sections[j].name) == 0)
                sec = &cf_sections[j];
        if (sec)
            sec->parse(c, sec, s);
        else
            cf_unknown(c, s, name ? name : "?", cf_sections, sizeof *cf_sections,
                       CF_COUNT(cf_sections), NULL, true);
    }
}

/* ---- pass 3: rules across keys -------------------------------------------------- */

/* The first of the given paths that is set in the file (NULL-terminated list), to
 * point a problem at; NULL when none is. */
static const config_setting_t *cf_where(const struct cf_ctx *c, const char *const *paths)
{
    for (; *paths; paths++) {
        const config_setting_t *s = config_lookup(c->lc, *paths);
        if (s)
            return s;
    }
    return NULL;
}

#define CF_WHERE(c, ...) cf_where(c, (const char *const[]){__VA_ARGS__, NULL})

/* True when `path` is absent or is the empty string: a missing value, as opposed to
 * a wrong one that has been reported already. */
static bool cf_unset(const struct cf_ctx *c, const char *path)
{
    const config_setting_t *s = config_lookup(c->lc, path);
    return !s || (config_setting_type(s) == CONFIG_TYPE_STRING &&
                  config_setting_get_string(s)[0] == '\0');
}

static void cf_validate_tls(struct cf_ctx *c)
{
    const struct dp_conf *dp = &c->cfg->dp;
    if (dp->tls_port == 0)
        return;
    static const char *const need[][2] = {{"tls.certificate", "certificate"}, {"tls.key", "key"}};
    for (size_t i = 0; i < CF_COUNT(need); i++) {
        const char *value = i == 0 ? dp->tls.certificate : dp->tls.key;
        if (value[0] || !cf_unset(c, need[i][0]))
            continue;
        cf_error(c, CF_WHERE(c, need[i][0], "tls", "sip.tls_port", "sip"), need[i][0],
                 "required when sip.tls_port is not 0 (TLS listener on port %u; set "
                 "sip.tls_port = 0 to run without TLS)",
                 dp->tls_port);
    }
    if (dp->tcp_port == dp->tls_port)
        cf_error(c, CF_WHERE(c, "sip.tls_port", "sip.tcp_port"), "sip.tls_port",
                 "same port as sip.tcp_port (%u)", dp->tcp_port);
}

static void cf_validate_media(struct cf_ctx *c)
{
    const struct ctl_conf *ctl = &c->cfg->ctl;
    const struct dp_conf *dp = &c->cfg->dp;
    unsigned lo = ctl->media_port_min, hi = ctl->media_port_max;
    if (lo % 2 != 0)
        cf_error(c, CF_WHERE(c, "media.port_min", "media"), "media.port_min",
                 "must be even: RTP uses even ports, RTCP the next odd one (got %u)", lo);
    if (hi <= lo + 1) {
        cf_error(c, CF_WHERE(c, "media.port_max", "media.port_min", "media"), "media.port_max",
                 "must be greater than media.port_min + 1 (got %u, port_min %u)", hi, lo);
        return;
    }
    if (dp->udp_port >= lo && dp->udp_port <= hi && strcmp(ctl->media_address, dp->listen) == 0)
        cf_error(c, CF_WHERE(c, "media.port_min", "media.port_max", "sip.udp_port"),
                 "media.port_min", "range %u..%u includes sip.udp_port %u on the same address", lo,
                 hi, dp->udp_port);
}

static void cf_validate_misc(struct cf_ctx *c)
{
    const struct cn_config *cfg = c->cfg;
    if (cfg->ctl.t2_ms < cfg->ctl.t1_ms)
        cf_error(c, CF_WHERE(c, "timers.t2", "timers.t1", "timers"), "timers.t2",
                 "must not be less than timers.t1 (%u < %u ms)", cfg->ctl.t2_ms, cfg->ctl.t1_ms);
    unsigned port = cfg->admin.port;
    if (port != 0 && strcmp(cfg->admin.listen, cfg->dp.listen) == 0) {
        const char *clash = port == cfg->dp.tcp_port   ? "sip.tcp_port"
                            : port == cfg->dp.tls_port ? "sip.tls_port"
                                                       : NULL;
        if (clash)
            cf_error(c, CF_WHERE(c, "admin.port", clash), "admin.port",
                     "same address and port as %s (%u)", clash, port);
    }
}

static void cf_validate_dpdk(struct cf_ctx *c)
{
    const struct dp_conf *dp = &c->cfg->dp;
    if (dp->backend != DP_BACKEND_DPDK)
        return;
    if (!dp->dpdk.device[0] && cf_unset(c, "dpdk.device"))
        cf_error(c, CF_WHERE(c, "dpdk", "dataplane"), "dpdk.device",
                 "required when dataplane = \"dpdk\" (a PCI address such as \"0000:03:00.0\", "
                 "or a vdev such as \"net_af_packet0,iface=eth1\")");
    unsigned char a4[4];
    if (inet_pton(AF_INET, dp->listen, a4) != 1 || a4[0] == 127)
        cf_error(c, CF_WHERE(c, "sip.listen", "dataplane"), "sip.listen",
                 "with dataplane = \"dpdk\" must be the node's IPv4 address on the wire, which "
                 "goes on dpdk.kernel_iface (got %s)", dp->listen);
}

/* True when host is domain itself or one label directly under it (case-insensitive):
 * the strict naming federated edges apply to SRV targets. */
static bool cf_directly_in(const char *host, const char *domain)
{
    if (strcasecmp(host, domain) == 0)
        return true;
    const char *dot = strchr(host, '.');
    return dot && dot != host && strcasecmp(dot + 1, domain) == 0;
}

static void cf_validate_cluster(struct cf_ctx *c)
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

/* The setting a federation problem points at: the deepest of path, entry, key and
 * array element that the file has. */
static const config_setting_t *cf_fed_setting(const struct cf_ctx *c,
                                              const struct fed_conf_where *w)
{
    const config_setting_t *s = config_lookup(c->lc, w->path);
    if (!s)
        return NULL;
    if (w->index >= 0) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)w->index);
        if (!e || !config_setting_is_group(e))
            return e ? e : s;
        s = e;
    }
    if (w->key) {
        const config_setting_t *m = config_setting_get_member(s, w->key);
        if (!m)
            return s;
        s = m;
        if (w->key_index >= 0 && config_setting_get_elem(m, (unsigned)w->key_index))
            s = config_setting_get_elem(m, (unsigned)w->key_index);
    }
    return s;
}

static void cf_fed_report(void *arg, const struct fed_conf_where *w, const char *problem)
{
    struct cf_ctx *c = arg;
    char field[CF_FIELD_MAX];
    fed_conf_where_str(w, field, sizeof field);
    cf_error(c, cf_fed_setting(c, w), field, "%s", problem);
}

/* Zones, search rules and privacy lists as a whole (fed_route_conf_check), unless a
 * key of theirs was already refused: a refused value stays at its default, and the
 * rules across keys would then report it a second time. */
static void cf_validate_federation(struct cf_ctx *c)
{
    static const char *const prefixes[] = {"zones", "search_rules", "federation"};
    if (c->n_total > c->n_kept)
        return;
    for (unsigned i = 0; i < c->n_kept; i++)
        for (size_t j = 0; j < CF_COUNT(prefixes); j++)
            if (strncmp(c->problems[i].text, prefixes[j], strlen(prefixes[j])) == 0)
                return;
    fed_route_conf_check(&c->cfg->fed.route, cf_fed_report, c);
}

/* ---- pass 1: integer literals libconfig 1.5 would wrap -------------------------- */

/* Finds the first not yet marked 32-bit integer setting from `file` at `line` under
 * s, in file order, and writes its dotted name into field. */
static config_setting_t *cf_int_at(config_setting_t *s, const char *file, unsigned line,
                                   char *field, size_t fieldlen)
{
    if (config_setting_type(s) == CONFIG_TYPE_INT && !cf_is_wrapped(s) &&
        config_setting_source_line(s) == line && config_setting_source_file(s) &&
        strcmp(config_setting_source_file(s), file) == 0) {
        snprintf(field, fieldlen, "%s", config_setting_name(s) ? config_setting_name(s) : "");
        return s;
    }
    if (!config_setting_is_aggregate(s))
        return NULL;
    int count = config_setting_length(s);
    for (int i = 0; i < count; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char sub[CF_FIELD_MAX];
        config_setting_t *hit = cf_int_at(e, file, line, sub, sizeof sub);
        if (!hit)
            continue;
        const char *name = config_setting_name(s);
        size_t len = 0;
        field[0] = '\0';
        if (!name)
            cf_append(field, fieldlen, &len, "%s", sub);
        else if (config_setting_name(e))
            cf_append(field, fieldlen, &len, "%s.%s", name, sub);
        else
            cf_append(field, fieldlen, &len, "%s[%d]%s%s", name, i, sub[0] ? "." : "", sub);
        return hit;
    }
    return NULL;
}

static void cf_flag_wrapped(struct cf_ctx *c, unsigned line, const char *tok, size_t len)
{
    char field[CF_FIELD_MAX];
    config_setting_t *s = cf_int_at(config_root_setting(c->lc), c->path, line, field, sizeof field);
    if (!s)
        return;
    config_setting_set_hook(s, &cf_wrapped_mark);
    cf_error(c, s, field, "integer %.*s does not fit in 32 bits", (int)(len > 24 ? 24 : len), tok);
}

static bool cf_in(const char *set, char ch)
{
    return ch != '\0' && strchr(set, ch);
}

/* Scans one number token at text[i] (digit, or sign then digit); returns the index
 * after it. Follows libconfig's scanner: [-+]?[0-9]+, 0x[0-9a-f]+, an L or LL suffix
 * for 64 bits, and '.', 'e' for floats. */
static size_t cf_scan_number(struct cf_ctx *c, const char *text, size_t len, size_t i,
                             unsigned line)
{
    size_t start = i;
    bool neg = false, big = false;
    unsigned long long v = 0;
    if (text[i] == '-' || text[i] == '+')
        neg = text[i++] == '-';
    if (text[i] == '0' && i + 1 < len && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
        for (i += 2; i < len && isxdigit((unsigned char)text[i]); i++) {
            if (v > 0xffffffffull)
                big = true;
            else
                v = v * 16 + (unsigned)(isdigit((unsigned char)text[i])
                                            ? text[i] - '0'
                                            : (tolower((unsigned char)text[i]) - 'a' + 10));
        }
        big = big || v > 0xffffffffull;
    } else {
        for (; i < len && isdigit((unsigned char)text[i]); i++) {
            if (v > 2147483648ull)
                big = true;
            else
                v = v * 10 + (unsigned)(text[i] - '0');
        }
        if (i < len && (text[i] == '.' || text[i] == 'e' || text[i] == 'E')) {
            while (i < len && (isdigit((unsigned char)text[i]) || cf_in(".eE+-", text[i])))
                i++;
            return i;
        }
        big = big || v > 2147483648ull || (v == 2147483648ull && !neg);
    }
    if (i < len && text[i] == 'L') {
        i += (i + 1 < len && text[i + 1] == 'L') ? 2 : 1;
        return i;
    }
    if (big)
        cf_flag_wrapped(c, line, text + start, i - start);
    return i;
}

static void cf_scan_ints(struct cf_ctx *c, const char *text, size_t len)
{
    unsigned line = 1;
    size_t i = 0;
    while (i < len) {
        char ch = text[i];
        char next = i + 1 < len ? text[i + 1] : '\0';
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == '#' || (ch == '/' && next == '/')) {
            while (i < len && text[i] != '\n')
                i++;
        } else if (ch == '/' && next == '*') {
            for (i += 2; i < len && !(text[i] == '*' && i + 1 < len && text[i + 1] == '/'); i++)
                line += text[i] == '\n';
            i = i + 2 < len ? i + 2 : len;
        } else if (ch == '"') {
            for (i++; i < len && text[i] != '"'; i++) {
                if (text[i] == '\\' && i + 1 < len)
                    i++;
                line += text[i] == '\n';
            }
            i++;
        } else if (isalpha((unsigned char)ch) || ch == '*' || ch == '@') {
            for (i++; i < len && (isalnum((unsigned char)text[i]) || cf_in("-_*", text[i])); i++)
                ;
        } else if (ch == '.') {
            while (i < len && (isdigit((unsigned char)text[i]) || cf_in(".eE+-", text[i])))
                i++;
        } else if (isdigit((unsigned char)ch) ||
                   ((ch == '-' || ch == '+') && isdigit((unsigned char)next))) {
            i = cf_scan_number(c, text, len, i, line);
        } else {
            i++;
        }
    }
}

/* ---- the file ---------------------------------------------------------------- */

/* Reads the whole file into *out (NUL-terminated); reports and returns -1 when it
 * cannot be read or is larger than CF_MAX_FILE_SIZE. */
static int cf_read_text(struct cf_ctx *c, char **out, size_t *outlen)
{
    int rc = -1;
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cf_report(c, c->path, 0, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    buf = malloc(cap);
    if (!buf) {
        cf_report(c, c->path, 0, NULL, "out of memory");
        goto out;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > CF_MAX_FILE_SIZE) {
                cf_report(c, c->path, 0, NULL, "larger than %d bytes", CF_MAX_FILE_SIZE);
                goto out;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                cf_report(c, c->path, 0, NULL, "out of memory");
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cf_report(c, c->path, 0, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- public ------------------------------------------------------------------ */

void cn_config_defaults(struct cn_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);

    struct node_conf *node = &cfg->node;
    if (gethostname(node->name, sizeof node->name) != 0 || node->name[0] == '\0')
        cf_store_string(node->name, sizeof node->name, "confnode");
    node->name[sizeof node->name - 1] = '\0';
    node->workers = 0;
    node->log_level = CN_LOG_INFO;

    struct dp_conf *dp = &cfg->dp;
    cf_store_string(dp->listen, sizeof dp->listen, "127.0.0.1");
    dp->udp_port = 5060;
    dp->tcp_port = 5060;
    dp->tls_port = 5061;
    dp->max_message_size = 65536;
    dp->tcp_idle_timeout_ms = 600 * 1000;
    dp->max_connections = 10000;
    dp->pin_workers = 1;

    dp->backend = DP_BACKEND_SOCKETS;
    struct dpk_conf *dk = &dp->dpdk;
    cf_store_string(dk->lcores, sizeof dk->lcores, "0");
    dk->memory_mb = 512;
    dk->hugepages = DPK_HUGE_AUTO;
    dk->exception = DPK_EXC_AUTO;
    cf_store_string(dk->kernel_iface, sizeof dk->kernel_iface, "cn0");
    dk->prefix_len = 24;
    dk->mbufs = 8191;
    dk->rx_desc = 1024;
    dk->tx_desc = 1024;
    dk->burst = 32;
    dk->poll = DPK_POLL_ADAPTIVE;

    struct dp_tls_conf *tls = &dp->tls;
    cf_store_string(tls->ciphers, sizeof tls->ciphers,
                    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS");
    cf_store_string(tls->ciphersuites, sizeof tls->ciphersuites,
                    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    tls->min_version = 12;
    tls->verify_client = DP_TLS_VERIFY_REQUEST;
    tls->handshake_timeout_ms = 10 * 1000;
    tls->session_cache_size = 20000;

    struct ctl_conf *ctl = &cfg->ctl;
    cf_store_string(ctl->domain, sizeof ctl->domain, "example.test");
    cf_store_string(ctl->media_address, sizeof ctl->media_address, dp->listen);
    ctl->media_port_min = 40000;
    ctl->media_port_max = 49999;
    ctl->srtp = CTL_SRTP_OPTIONAL;
    ctl->media_timeout_ms = 60 * 1000;
    ctl->mix_speakers = 3;
    ctl->t1_ms = 500;
    ctl->t2_ms = 4000;
    ctl->t4_ms = 5000;
    ctl->max_transactions = 65536;
    ctl->max_dialogs = 65536;

    cf_store_string(cfg->admin.listen, sizeof cfg->admin.listen, "127.0.0.1");
    cfg->admin.port = 8088;

    struct cluster_conf *cl = &cfg->cluster;
    cl->mode = CN_CLUSTER_STANDALONE;
    cf_store_string(cl->master_name, sizeof cl->master_name, "mymaster");
    cl->lease_ttl_ms = 15 * 1000;
    cl->heartbeat_ms = 5 * 1000;

    fed_route_conf_defaults(&cfg->fed.route);
    cfg->fed.history_size = FED_HISTORY_DEFAULT_CAPACITY;
    cfg->fed.inbound_check = 1;

    dp->workers = (unsigned)cn_config_resolve_workers(cfg);
}

int cn_config_resolve_workers(const struct cn_config *cfg)
{
    long n = cfg->node.workers;
    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > CF_MAX_WORKERS ? CF_MAX_WORKERS : (int)n;
}

int cn_config_load(const char *path, struct cn_config *cfg, char *err, size_t errlen)
{
    int rc = -1;
    config_t lc;
    bool lc_ready = false;
    char *text = NULL;
    size_t text_len = 0;
    char dir[sizeof cfg->path];
    struct cf_ctx ctx = {.cfg = cfg, .path = path ? path : "(null)"};

    if (err && errlen)
        err[0] = '\0';
    if (!cfg) {
        if (err && errlen)
            snprintf(err, errlen, "%s: no config to load into", ctx.path);
        return -1;
    }
    cn_config_defaults(cfg);
    ctx.problems = calloc(CF_MAX_KEPT, sizeof *ctx.problems);
    if (!ctx.problems) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", ctx.path);
        return -1;
    }
    if (!path || strlen(path) >= sizeof cfg->path) {
        cf_report(&ctx, NULL, 0, NULL, "file name missing or too long");
        goto out;
    }
    cf_store_string(cfg->path, sizeof cfg->path, path);
    if (cf_read_text(&ctx, &text, &text_len) != 0)
        goto out;

    config_init(&lc);
    lc_ready = true;
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        config_set_include_dir(&lc, dir);
        ctx.dir = dir;
    }
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            cf_report(&ctx, path, 0, NULL, "cannot open: %s", config_error_text(&lc));
        else
            cf_report(&ctx, config_error_file(&lc), (unsigned)config_error_line(&lc), NULL, "%s",
                      config_error_text(&lc) ? config_error_text(&lc) : "syntax error");
        goto out;
    }
    ctx.lc = &lc;

    cf_scan_ints(&ctx, text, text_len);
    cf_parse_root(&ctx, config_root_setting(&lc));
    if (!config_lookup(&lc, "media.address"))
        cf_store_string(cfg->ctl.media_address, sizeof cfg->ctl.media_address, cfg->dp.listen);
    cf_validate_tls(&ctx);
    cf_validate_media(&ctx);
    cf_validate_misc(&ctx);
    cf_validate_cluster(&ctx);
    cf_validate_federation(&ctx);
    cf_validate_dpdk(&ctx);
    cfg->dp.workers = (unsigned)cn_config_resolve_workers(cfg);
    if (ctx.n_total == 0)
        rc = 0;
out:
    if (rc != 0) {
        cf_format(&ctx, err, errlen);
        cn_config_free(cfg);
    }
    if (lc_ready)
        config_destroy(&lc);
    free(ctx.problems);
    free(text);
    return rc;
}

int cn_config_check_files(const struct cn_config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *field;
        const char *path;
    } files[] = {
        {"tls.certificate", cfg->dp.tls.certificate},
        {"tls.key", cfg->dp.tls.key},
        {"tls.ca", cfg->dp.tls.ca},
    };
    size_t len = 0;
    int rc = 0;
    if (err && errlen)
        err[0] = '\0';
    for (size_t i = 0; i < CF_COUNT(files); i++) {
        if (!files[i].path[0])
            continue;
        const char *problem = NULL;
        struct stat st;
        int fd = open(files[i].path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            problem = strerror(errno);
        else if (fstat(fd, &st) != 0)
            problem = strerror(errno);
        else if (!S_ISREG(st.st_mode))
            problem = "not a regular file";
        if (fd >= 0)
            close(fd);
        if (!problem)
            continue;
        rc = -1;
        if (err && errlen)
            cf_append(err, errlen, &len, "%s%s: %s: '%s': %s", len ? "\n" : "",
                      cfg->path[0] ? cfg->path : "config", files[i].field, files[i].path, problem);
    }
    return rc;
}

void cn_config_free(struct cn_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->ctl.vmrs);
    cfg->ctl.vmrs = NULL;
    cfg->ctl.n_vmrs = 0;
    free(cfg->cluster.nodes);
    cfg->cluster.nodes = NULL;
    cfg->cluster.n_nodes = 0;
    fed_route_conf_free(&cfg->fed.route);
}
