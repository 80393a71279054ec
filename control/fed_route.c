/* Federation routing decisions (see fed_route.h for the model).
 *
 * DESIGN
 * - fed_router_new() copies the configuration into a flat, immutable router: rules
 *   in try order (priority, then configuration order; disabled rules dropped) with
 *   their zones resolved to indexes, privacy lists and static-route domains
 *   normalised (lowercase, no trailing dot) and sorted for bsearch(), and every
 *   regex compiled n_workers times, once per worker, as "^(" pattern ")$" so that a
 *   rule always matches the whole alias. Rules that never replace are compiled with
 *   REG_NOSUB (no sub-match tracking).
 * - fed_route_decide() works in the caller's result: the alias is rewritten in
 *   place in out->alias, targets copy the alias they must receive, and everything
 *   else points into the router.
 * - The configuration and its checks (fed_route_conf_check(), which holds every
 *   cross-key rule once, for both the config loader and fed_router_new()) are in
 *   fed_route_conf.c. */
#include "fed_route.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fed_diag.h"
#include "fed_route_int.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- names of things ------------------------------------------------------------ */

const char *fed_route_status_str(fed_route_status_t st)
{
    switch (st) {
    case FED_ROUTE_OK:
        return "ok";
    case FED_ROUTE_IN_DIALOG:
        return "in-dialog";
    case FED_ROUTE_NO_ROUTE:
        return "no-route";
    case FED_ROUTE_REFUSED:
        return "refused";
    case FED_ROUTE_BAD_REQUEST:
        return "bad-request";
    case FED_ROUTE_ERR_ARG:
        break;
    }
    return "error";
}

const char *fed_rule_outcome_str(fed_rule_outcome_t o)
{
    static const char *const names[] = {
        [FED_RULE_NOT_MATCHED] = "not_matched",   [FED_RULE_SKIPPED_SOURCE] = "skipped_source",
        [FED_RULE_SKIPPED_TYPE] = "skipped_type", [FED_RULE_MATCHED] = "matched",
        [FED_RULE_REWRITTEN] = "rewritten",       [FED_RULE_NOT_LOCAL] = "not_local",
        [FED_RULE_REFUSED] = "refused",           [FED_RULE_BAD_DOMAIN] = "bad_domain",
        [FED_RULE_TOO_LONG] = "too_long",         [FED_RULE_DUPLICATE] = "duplicate",
        [FED_RULE_TARGETS_FULL] = "targets_full",
    };
    return (unsigned)o < COUNT(names) ? names[o] : "unknown";
}

const char *fed_zone_kind_str(fed_zone_kind_t k)
{
    static const char *const names[] = {"local", "neighbour", "dns", "static"};
    return (unsigned)k < COUNT(names) ? names[k] : "unknown";
}

const char *fed_security_str(fed_security_t s)
{
    static const char *const names[] = {"tls-required", "tls-optional", "no-tls"};
    return (unsigned)s < COUNT(names) ? names[s] : "unknown";
}

const char *fed_req_type_str(fed_req_type_t t)
{
    static const char *const names[] = {"auto", "calls", "imp", "other", "all"};
    return (unsigned)t < COUNT(names) ? names[t] : "unknown";
}

const char *fed_privacy_str(fed_privacy_t p)
{
    static const char *const names[] = {"allow-list", "deny-list", "off"};
    return (unsigned)p < COUNT(names) ? names[p] : "unknown";
}

fed_req_type_t fed_req_type_of_method(const char *method, size_t len)
{
    static const struct {
        const char *name;
        fed_req_type_t type;
    } methods[] = {
        {"INVITE", FED_REQ_CALLS}, {"ACK", FED_REQ_CALLS},   {"CANCEL", FED_REQ_CALLS},
        {"BYE", FED_REQ_CALLS},    {"PRACK", FED_REQ_CALLS}, {"UPDATE", FED_REQ_CALLS},
        {"REFER", FED_REQ_CALLS},  {"MESSAGE", FED_REQ_IMP}, {"SUBSCRIBE", FED_REQ_IMP},
        {"NOTIFY", FED_REQ_IMP},   {"INFO", FED_REQ_IMP},    {"OPTIONS", FED_REQ_IMP},
        {"PUBLISH", FED_REQ_IMP},
    };
    if (!method)
        return FED_REQ_OTHER;
    if (len == FED_NAME_NUL)
        len = strlen(method);
    /* SIP method names are case-sensitive (RFC 3261 7.1) */
    for (size_t i = 0; i < COUNT(methods); i++)
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, method, len) == 0)
            return methods[i].type;
    return FED_REQ_OTHER;
}

char *fed_conf_where_str(const struct fed_conf_where *w, char *buf, size_t size)
{
    if (!buf || !size)
        return buf;
    size_t len = 0;
    int n = snprintf(buf, size, "%s", w->path ? w->path : "");
    if (n > 0)
        len = (size_t)n < size ? (size_t)n : size - 1;
    if (w->index >= 0 && len + 1 < size) {
        n = snprintf(buf + len, size - len, "[%ld]", w->index);
        if (n > 0)
            len += (size_t)n < size - len ? (size_t)n : size - len - 1;
    }
    if (w->key && len + 1 < size) {
        n = snprintf(buf + len, size - len, ".%s", w->key);
        if (n > 0)
            len += (size_t)n < size - len ? (size_t)n : size - len - 1;
    }
    if (w->key_index >= 0 && len < size)
        snprintf(buf + len, size - len, "[%ld]", w->key_index);
    return buf;
}

/* ---- the router --------------------------------------------------------------------- */

/* Sources and targets of a rule: >= 0 is a neighbour's index. */
enum { NO_ZONE = -100, SRC_ANY = -3, SRC_LOCAL = -2, SRC_DNS = -1 };
enum { TGT_NONE = -3, TGT_LOCAL = -2, TGT_DNS = -1 };

struct zone_sec {
    fed_transport_t transport;
    fed_security_t security;
    bool client_certificates;
};

struct rt_neighbour {
    char name[FED_ZONE_NAME_BUF];
    struct fed_hostport peers[FED_ROUTE_MAX_ADDRS];
    size_t n_peers;
    struct zone_sec sec;
    fed_srv_mode_t srv_mode;
};

struct rt_static {
    char domain[FED_NAME_BUF]; /* normalised: the sort key */
    struct fed_hostport addrs[FED_ROUTE_MAX_ADDRS];
    size_t n_addrs;
    struct zone_sec sec;
};

struct rt_rule {
    char name[FED_RULE_NAME_BUF];
    unsigned index; /* in the configuration */
    uint32_t priority;
    int source; /* SRC_* or a neighbour */
    fed_req_type_t type;
    fed_rule_mode_t mode;
    fed_pattern_t ptype;
    char pattern[FED_PATTERN_BUF];
    size_t pattern_len;
    fed_behaviour_t behaviour;
    char replace[FED_PATTERN_BUF];
    fed_on_match_t on_match;
    int target;  /* TGT_* or a neighbour */
    regex_t *re; /* regex: n_workers compiled copies */
    unsigned n_re;
};

struct name_set {
    char (*v)[FED_NAME_BUF]; /* normalised, sorted, unique */
    size_t n;
};

struct fed_router {
    unsigned n_workers;
    struct zone_sec dns_sec;
    fed_srv_mode_t dns_srv_mode;
    bool dns_strict;
    bool dns_fallback;
    struct rt_neighbour *zones;
    size_t n_zones;
    struct rt_static *statics; /* sorted by domain */
    size_t n_statics;
    struct rt_rule *rules; /* in try order */
    size_t n_rules;
    fed_privacy_t privacy;
    struct name_set allow, deny, local;
    char diag_source[FED_NAME_BUF];
};

static const char zone_local[] = FED_ZONE_LOCAL;
static const char zone_dns[] = FED_ZONE_DNS;

static struct zone_sec make_sec(int transport, int security, int certs)
{
    struct zone_sec s = {.security = (fed_security_t)security};
    bool tls = security != FED_SEC_NO_TLS;
    s.transport =
        transport == FED_ROUTE_AUTO ? (tls ? FED_TP_TLS : FED_TP_TCP) : (fed_transport_t)transport;
    s.client_certificates = certs == FED_ROUTE_AUTO ? tls : certs != 0;
    return s;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Fills set from n names given by get(i); names that do not normalise fail. */
static int name_set_build(struct name_set *set, const char *what, size_t n,
                          const char *(*get)(const void *, size_t), const void *src, char *err,
                          size_t errsz)
{
    set->v = calloc(n ? n : 1, sizeof *set->v);
    set->n = 0;
    if (!set->v)
        return fr_fail(err, errsz, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = get(src, i);
        if (fed_name_normalize(name, FED_NAME_NUL, FED_NAME_ALLOW_SINGLE_LABEL, set->v[set->n],
                               sizeof set->v[0]) < 0)
            return fr_fail(err, errsz, "%s: \"%.64s\" is not a domain name", what, name);
        set->n++;
    }
    qsort(set->v, set->n, sizeof *set->v, name_cmp);
    size_t out = 0;
    for (size_t i = 0; i < set->n; i++)
        if (out == 0 || strcmp(set->v[out - 1], set->v[i]) != 0)
            memmove(set->v[out++], set->v[i], sizeof set->v[0]);
    set->n = out;
    return 0;
}

static bool name_set_has(const struct name_set *set, const char *name)
{
    return set->n && bsearch(name, set->v, set->n, sizeof *set->v, name_cmp) != NULL;
}

static const char *get_list(const void *src, size_t i)
{
    return ((const char(*)[FED_NAME_BUF])src)[i];
}

static const char *get_cstr(const void *src, size_t i)
{
    return ((const char *const *)src)[i];
}

static int static_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rt_static *)a)->domain, ((const struct rt_static *)b)->domain);
}

static int rule_cmp(const void *a, const void *b)
{
    const struct rt_rule *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority < y->priority ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* A neighbour or static address with its default port filled in (IP literals and
 * static routes never use SRV). */
static void fill_port(struct fed_hostport *a, const struct zone_sec *sec, bool is_static)
{
    a->is_ip = fed_name_is_ip_literal(a->host, FED_NAME_NUL);
    if (a->port == 0 && (a->is_ip || is_static))
        a->port = sec->transport == FED_TP_TLS ? 5061 : 5060;
}

static int build_zones(struct fed_router *r, const struct fed_route_conf *conf, char *err,
                       size_t errsz)
{
    r->zones = calloc(conf->n_neighbours ? conf->n_neighbours : 1, sizeof *r->zones);
    r->statics = calloc(conf->n_static_routes ? conf->n_static_routes : 1, sizeof *r->statics);
    if (!r->zones || !r->statics)
        return fr_fail(err, errsz, "out of memory");
    for (size_t i = 0; i < conf->n_neighbours; i++) {
        const struct fed_neighbour_conf *c = &conf->neighbours[i];
        struct rt_neighbour *z = &r->zones[r->n_zones++];
        snprintf(z->name, sizeof z->name, "%s", c->name);
        z->sec = make_sec(c->transport, c->security, c->client_certificates);
        z->srv_mode = (fed_srv_mode_t)c->srv_mode;
        z->n_peers = c->n_peers;
        memcpy(z->peers, c->peers, sizeof z->peers);
        for (size_t k = 0; k < z->n_peers; k++)
            fill_port(&z->peers[k], &z->sec, false);
    }
    for (size_t i = 0; i < conf->n_static_routes; i++) {
        const struct fed_static_route_conf *c = &conf->static_routes[i];
        struct rt_static *s = &r->statics[r->n_statics++];
        if (fed_name_normalize(c->domain, FED_NAME_NUL, 0, s->domain, sizeof s->domain) < 0)
            return fr_fail(err, errsz, "zones.static_routes[%zu].domain: not a domain name", i);
        s->sec = make_sec(c->transport, c->security, c->client_certificates);
        s->n_addrs = c->n_addrs;
        memcpy(s->addrs, c->addrs, sizeof s->addrs);
        for (size_t k = 0; k < s->n_addrs; k++)
            fill_port(&s->addrs[k], &s->sec, true);
    }
    qsort(r->statics, r->n_statics, sizeof *r->statics, static_cmp);
    return 0;
}

/* The index of the neighbour called `name`, or NO_ZONE. */
static int zone_index(const struct fed_router *r, const char *name)
{
    for (size_t i = 0; i < r->n_zones; i++)
        if (strcasecmp(r->zones[i].name, name) == 0)
            return (int)i;
    return NO_ZONE;
}

static int build_rule(struct fed_router *r, const struct fed_rule_conf *c, unsigned index,
                      char *err, size_t errsz)
{
    struct rt_rule *x = &r->rules[r->n_rules];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%s", c->name);
    x->index = index;
    x->priority = c->priority;
    x->source = strcasecmp(c->source, FED_ZONE_ANY) == 0     ? SRC_ANY
                : strcasecmp(c->source, FED_ZONE_LOCAL) == 0 ? SRC_LOCAL
                : strcasecmp(c->source, FED_ZONE_DNS) == 0   ? SRC_DNS
                                                             : zone_index(r, c->source);
    x->target = !c->target[0]                                ? TGT_NONE
                : strcasecmp(c->target, FED_ZONE_LOCAL) == 0 ? TGT_LOCAL
                : strcasecmp(c->target, FED_ZONE_DNS) == 0   ? TGT_DNS
                                                             : zone_index(r, c->target);
    x->type = (fed_req_type_t)c->type;
    x->mode = (fed_rule_mode_t)c->mode;
    x->ptype = (fed_pattern_t)c->pattern_type;
    snprintf(x->pattern, sizeof x->pattern, "%s", c->pattern);
    x->pattern_len = strlen(x->pattern);
    x->behaviour = (fed_behaviour_t)c->behaviour;
    snprintf(x->replace, sizeof x->replace, "%s", c->replace);
    x->on_match = (fed_on_match_t)c->on_match;
    r->n_rules++; /* from here on fed_router_free() releases what it holds */
    if (x->source == NO_ZONE || x->target == NO_ZONE)
        return fr_fail(err, errsz, "search_rules[%u]: unknown zone", index);
    if (x->mode != FED_MODE_PATTERN || x->ptype != FED_PATTERN_REGEX)
        return 0;
    x->re = calloc(r->n_workers, sizeof *x->re);
    if (!x->re)
        return fr_fail(err, errsz, "out of memory");
    int flags = x->behaviour == FED_BEHAVIOUR_REPLACE ? 0 : REG_NOSUB;
    for (; x->n_re < r->n_workers; x->n_re++) {
        if (fr_compile_anchored(&x->re[x->n_re], x->pattern, flags) != 0)
            return fr_fail(err, errsz, "search_rules[%u].pattern: does not compile", index);
    }
    return 0;
}

struct first_problem {
    char *err;
    size_t errsz;
    bool seen;
};

static void keep_first(void *arg, const struct fed_conf_where *w, const char *text)
{
    struct first_problem *fp = arg;
    if (fp->seen)
        return;
    fp->seen = true;
    char where[160];
    if (fp->err && fp->errsz)
        snprintf(fp->err, fp->errsz, "%s: %s", fed_conf_where_str(w, where, sizeof where), text);
}

struct fed_router *fed_router_new(const struct fed_route_conf *conf,
                                  const struct fed_router_env *env, char *err, size_t errsz)
{
    struct fed_router *r = NULL;
    struct first_problem fp = {.err = err, .errsz = errsz};
    if (err && errsz)
        err[0] = '\0';
    if (!conf) {
        fr_fail(err, errsz, "no configuration");
        goto fail;
    }
    if (fed_route_conf_check(conf, keep_first, &fp) != 0)
        goto fail;
    r = calloc(1, sizeof *r);
    if (!r) {
        fr_fail(err, errsz, "out of memory");
        goto fail;
    }
    r->n_workers = env && env->n_workers ? env->n_workers : 1;
    r->dns_sec = make_sec(FED_ROUTE_AUTO, conf->dns.security, conf->dns.client_certificates);
    r->dns_srv_mode = (fed_srv_mode_t)conf->dns.srv_mode;
    r->dns_strict = conf->dns.strict_naming != 0;
    r->dns_fallback = conf->dns.fallback_hosts != 0;
    r->privacy = (fed_privacy_t)conf->privacy;
    if (env && env->diag_source)
        snprintf(r->diag_source, sizeof r->diag_source, "%s", env->diag_source);
    if (build_zones(r, conf, err, errsz) != 0)
        goto fail;
    if (name_set_build(&r->allow, "federation.allow", conf->n_allow, get_list, conf->allow, err,
                       errsz) != 0 ||
        name_set_build(&r->deny, "federation.deny", conf->n_deny, get_list, conf->deny, err,
                       errsz) != 0 ||
        name_set_build(&r->local, "local domains", env ? env->n_local_domains : 0, get_cstr,
                       env ? (const void *)env->local_domains : NULL, err, errsz) != 0)
        goto fail;
    r->rules = calloc(conf->n_rules ? conf->n_rules : 1, sizeof *r->rules);
    if (!r->rules) {
        fr_fail(err, errsz, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < conf->n_rules; i++)
        if (conf->rules[i].enabled && build_rule(r, &conf->rules[i], (unsigned)i, err, errsz) != 0)
            goto fail;
    qsort(r->rules, r->n_rules, sizeof *r->rules, rule_cmp);
    return r;
fail:
    fed_router_free(r);
    return NULL;
}

void fed_router_free(struct fed_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->rules && i < r->n_rules; i++) {
        for (unsigned k = 0; k < r->rules[i].n_re; k++)
            regfree(&r->rules[i].re[k]);
        free(r->rules[i].re);
    }
    free(r->rules);
    free(r->zones);
    free(r->statics);
    free(r->allow.v);
    free(r->deny.v);
    free(r->local.v);
    free(r);
}

const char *fed_router_zone_for_address(const struct fed_router *r, const char *ip)
{
    if (!r || !ip)
        return NULL;
    for (size_t i = 0; i < r->n_zones; i++)
        for (size_t k = 0; k < r->zones[i].n_peers; k++)
            if (r->zones[i].peers[k].is_ip && strcasecmp(r->zones[i].peers[k].host, ip) == 0)
                return r->zones[i].name;
    return NULL;
}

/* ---- a decision ------------------------------------------------------------------------ */

static size_t view_len(const char *s, size_t len)
{
    return !s ? 0 : len == FED_NAME_NUL ? strlen(s) : len;
}

static void set_status(struct fed_route_result *out, fed_route_status_t st, int sip,
                       const char *reason)
{
    out->status = st;
    out->sip_status = sip;
    out->sip_reason = reason;
}

__attribute__((format(printf, 2, 3))) static void set_detail(struct fed_route_result *out,
                                                             const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->detail, sizeof out->detail, fmt, ap);
    va_end(ap);
}

/* `domain` when it is a host name or IP literal, else a placeholder: what a peer
 * sent is echoed in headers and logs only when it is a plausible name. */
static const char *shown_domain(const char *domain)
{
    if (domain && domain[0] &&
        (fr_name_ok(domain, FED_NAME_ALLOW_SINGLE_LABEL) ||
         fed_name_is_ip_literal(domain, FED_NAME_NUL)))
        return domain;
    return NULL;
}

/* A 403 with ms-diagnostics 1027 naming `domain` (when it is a valid name). */
static void refuse(const struct fed_router *r, struct fed_route_result *out, const char *domain)
{
    set_status(out, FED_ROUTE_REFUSED, 403, "Forbidden");
    out->diag_code = FED_DIAG_CANNOT_ROUTE;
    out->diag_reason = fed_diag_reason(FED_DIAG_CANNOT_ROUTE);
    struct fed_diag_param params[2];
    size_t n = 0;
    if (shown_domain(domain))
        params[n++] = (struct fed_diag_param){"domain", domain};
    if (r->diag_source[0])
        params[n++] = (struct fed_diag_param){"source", r->diag_source};
    if (fed_diag_build(out->diag, sizeof out->diag, FED_DIAG_CANNOT_ROUTE, NULL, params, n) < 0 &&
        fed_diag_build(out->diag, sizeof out->diag, FED_DIAG_CANNOT_ROUTE, NULL, NULL, 0) < 0)
        out->diag[0] = '\0';
}

/* Lowercase copy of s[0..len-1] without one trailing dot into out[FED_NAME_BUF]; false
 * when empty or too long. */
static bool copy_domain(char *out, const char *s, size_t len)
{
    if (len && s[len - 1] == '.')
        len--;
    if (len == 0 || len > FED_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    out[len] = '\0';
    return true;
}

/* Splits the Request-URI into out->alias ("user@host", or "host") and out->domain.
 * Returns 0, or the SIP status to answer (400, 414, 416). */
static int parse_ruri(const char *s, size_t len, struct fed_route_result *out)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] == 0x7f)
            return 400;
    if (len >= 4 && strncasecmp(s, "sip:", 4) == 0) {
        s += 4;
        len -= 4;
    } else if (len >= 5 && strncasecmp(s, "sips:", 5) == 0) {
        s += 5;
        len -= 5;
    } else if (len && s[0] != '[') {
        /* another scheme (tel:, im:, pres:...), as opposed to host:port */
        const char *colon = memchr(s, ':', len);
        size_t tl = colon ? (size_t)(colon - s) : 0;
        bool scheme = tl > 0 && isalpha((unsigned char)s[0]) && colon + 1 < s + len &&
                      !isdigit((unsigned char)colon[1]);
        for (size_t i = 0; scheme && i < tl; i++)
            scheme = isalnum((unsigned char)s[i]) || strchr("+-.", s[i]);
        if (scheme)
            return 416;
    }
    const char *at = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '@')
            at = s + i;
    const char *host = at ? at + 1 : s;
    size_t hl = (size_t)(s + len - host);
    for (size_t i = 0; i < hl; i++) {
        if (host[i] == ';' || host[i] == '?') {
            hl = i;
            break;
        }
    }
    if (hl && host[0] == '[') {
        const char *close = memchr(host, ']', hl);
        if (!close)
            return 400;
        hl = (size_t)(close - host) + 1;
    } else {
        const char *colon = memchr(host, ':', hl);
        if (colon)
            hl = (size_t)(colon - host);
    }
    size_t ul = 0;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        ul = colon ? (size_t)(colon - s) : (size_t)(at - s);
        if (ul == 0)
            return 400;
    }
    if (!copy_domain(out->domain, host, hl))
        return hl > FED_NAME_MAX ? 414 : 400;
    size_t dl = strlen(out->domain);
    if (ul + (at ? 1 : 0) + dl > FED_ALIAS_MAX)
        return 414;
    memcpy(out->alias, s, ul);
    if (at)
        out->alias[ul++] = '@';
    memcpy(out->alias + ul, out->domain, dl + 1);
    return 0;
}

/* The domain of an alias: after its last '@', or the whole alias. */
static const char *alias_domain(const char *alias)
{
    const char *at = strrchr(alias, '@');
    return at ? at + 1 : alias;
}

static const struct rt_static *find_static(const struct fed_router *r, const char *domain)
{
    if (!r->n_statics)
        return NULL;
    struct rt_static key;
    snprintf(key.domain, sizeof key.domain, "%s", domain);
    return bsearch(&key, r->statics, r->n_statics, sizeof *r->statics, static_cmp);
}

/* The privacy mode's verdict on a normalised domain ("" or invalid: refused unless
 * the mode is off). */
static bool privacy_allows(const struct fed_router *r, const char *domain)
{
    if (r->privacy == FED_PRIVACY_OFF)
        return true;
    if (!domain[0])
        return false;
    if (find_static(r, domain))
        return true;
    if (r->privacy == FED_PRIVACY_ALLOW_LIST)
        return name_set_has(&r->allow, domain);
    return !name_set_has(&r->deny, domain);
}

/* Inbound checks for a request from a neighbour or the DNS zone. Returns true when it
 * may be routed; otherwise *out is a refusal. */
static bool inbound_allowed(const struct fed_router *r, const struct fed_route_request *req,
                            int source, const char *zone, struct fed_route_result *out)
{
    char from[FED_NAME_BUF] = "";
    size_t fl = view_len(req->from_domain, req->from_domain_len);
    bool from_ok = copy_domain(from, req->from_domain, fl);
    const struct zone_sec *sec = source == SRC_DNS ? &r->dns_sec : &r->zones[source].sec;
    fed_arrival_t a = req->arrival;
    if (a != FED_ARRIVAL_UNKNOWN) {
        bool tls = a == FED_ARRIVAL_TLS || a == FED_ARRIVAL_MTLS;
        if (sec->security == FED_SEC_TLS_REQUIRED && !tls) {
            refuse(r, out, from);
            set_detail(out, "zone %s requires TLS; the request came over %s", zone,
                       a == FED_ARRIVAL_UDP ? "UDP" : "TCP");
            return false;
        }
        if (tls && sec->client_certificates && a != FED_ARRIVAL_MTLS) {
            refuse(r, out, from);
            set_detail(out, "zone %s requires a verified client certificate", zone);
            return false;
        }
    }
    if (source == SRC_DNS && (!from_ok || !privacy_allows(r, from))) {
        refuse(r, out, from);
        set_detail(out, "privacy mode %s refuses the From domain \"%s\"",
                   fed_privacy_str(r->privacy), shown_domain(from) ? from : "(not a name)");
        return false;
    }
    return true;
}

/* Matches rule x against out->alias. On a match *m holds the sub-matches (regex with
 * replace only). */
static bool rule_matches(const struct rt_rule *x, const char *alias, size_t alen, unsigned worker,
                         regmatch_t *m, size_t nm)
{
    if (x->mode == FED_MODE_ANY_ALIAS)
        return true;
    switch (x->ptype) {
    case FED_PATTERN_EXACT:
        return alen == x->pattern_len && strncasecmp(alias, x->pattern, alen) == 0;
    case FED_PATTERN_PREFIX:
        return alen >= x->pattern_len && strncasecmp(alias, x->pattern, x->pattern_len) == 0;
    case FED_PATTERN_REGEX:
        return x->re && regexec(&x->re[worker < x->n_re ? worker : 0], alias, nm, m, 0) == 0;
    }
    return false;
}

/* Appends s[0..n-1] to buf (length *len, capacity FED_ALIAS_MAX); false when full. */
static bool put(char *buf, size_t *len, const char *s, size_t n)
{
    if (n > FED_ALIAS_MAX - *len)
        return false;
    memcpy(buf + *len, s, n);
    *len += n;
    return true;
}

/* Writes the replaced alias into buf[FED_ALIAS_BUF]. m[1] is the whole alias (the
 * anchoring group), m[k + 1] the pattern's group k. False when it does not fit. */
static bool expand(const struct rt_rule *x, const char *alias, size_t alen, const regmatch_t *m,
                   size_t nm, char *buf)
{
    size_t len = 0;
    bool ok = true;
    for (const char *p = x->replace; *p && ok; p++) {
        if (*p != '\\') {
            ok = put(buf, &len, p, 1);
            continue;
        }
        p++;
        if (*p == '\\') {
            ok = put(buf, &len, p, 1);
            continue;
        }
        size_t g = (size_t)(*p - '0') + 1;
        if (g < nm && m[g].rm_so >= 0 && m[g].rm_eo >= m[g].rm_so)
            ok = put(buf, &len, alias + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
    }
    if (ok && x->ptype == FED_PATTERN_PREFIX)
        ok = put(buf, &len, alias + x->pattern_len, alen - x->pattern_len);
    buf[len] = '\0';
    return ok;
}

/* Lowercases the domain part of alias in place. */
static void lower_domain(char *alias)
{
    for (char *p = (char *)alias_domain(alias); *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* Adds a target for rule x with the current alias, or says why not. */
static fed_rule_outcome_t add_target(const struct fed_router *r, const struct rt_rule *x,
                                     struct fed_route_result *out, char *refused)
{
    const char *domain = alias_domain(out->alias);
    struct fed_route_target t = {.rule = x->name};
    if (x->target == TGT_LOCAL) {
        if (!name_set_has(&r->local, domain))
            return FED_RULE_NOT_LOCAL;
        t.zone = zone_local;
        t.kind = FED_ZONE_KIND_LOCAL;
        t.transport = FED_TP_TLS;
    } else if (x->target == TGT_DNS) {
        if (!fr_name_ok(domain, 0) && !fed_name_is_ip_literal(domain, FED_NAME_NUL))
            return FED_RULE_BAD_DOMAIN;
        const struct rt_static *s = find_static(r, domain);
        if (!s && !privacy_allows(r, domain)) {
            if (!refused[0])
                snprintf(refused, FED_NAME_BUF, "%s", domain);
            return FED_RULE_REFUSED;
        }
        t.zone = zone_dns;
        t.kind = s ? FED_ZONE_KIND_STATIC : FED_ZONE_KIND_DNS;
        t.transport = s ? s->sec.transport : r->dns_sec.transport;
        t.security = s ? s->sec.security : r->dns_sec.security;
        t.client_certificates = s ? s->sec.client_certificates : r->dns_sec.client_certificates;
        t.srv_mode = r->dns_srv_mode;
        t.strict_naming = !s && r->dns_strict;
        t.fallback_hosts = !s && r->dns_fallback;
        t.no_dns_fallback = s != NULL;
        t.addrs = s ? s->addrs : NULL;
        t.n_addrs = s ? s->n_addrs : 0;
    } else {
        const struct rt_neighbour *z = &r->zones[x->target];
        t.zone = z->name;
        t.kind = FED_ZONE_KIND_NEIGHBOUR;
        t.transport = z->sec.transport;
        t.security = z->sec.security;
        t.client_certificates = z->sec.client_certificates;
        t.srv_mode = z->srv_mode;
        t.no_dns_fallback = true;
        t.addrs = z->peers;
        t.n_addrs = z->n_peers;
    }
    snprintf(t.alias, sizeof t.alias, "%s", out->alias);
    snprintf(t.domain, sizeof t.domain, "%s", domain);
    for (size_t i = 0; i < out->n_targets; i++)
        if (out->targets[i].zone == t.zone && out->targets[i].kind == t.kind &&
            strcmp(out->targets[i].alias, t.alias) == 0)
            return FED_RULE_DUPLICATE;
    if (out->n_targets == FED_ROUTE_MAX_TARGETS) {
        out->targets_truncated = true;
        return FED_RULE_TARGETS_FULL;
    }
    out->targets[out->n_targets++] = t;
    return FED_RULE_MATCHED;
}

/* Runs one matching rule: replace, then target. */
static fed_rule_outcome_t apply_rule(const struct fed_router *r, const struct rt_rule *x,
                                     const regmatch_t *m, size_t nm, struct fed_route_result *out,
                                     char *refused)
{
    if (x->behaviour == FED_BEHAVIOUR_REPLACE) {
        char buf[FED_ALIAS_BUF];
        if (!expand(x, out->alias, strlen(out->alias), m, nm, buf))
            return FED_RULE_TOO_LONG;
        if (!buf[0])
            return FED_RULE_BAD_DOMAIN;
        memcpy(out->alias, buf, strlen(buf) + 1);
        lower_domain(out->alias);
    }
    if (x->target == TGT_NONE)
        return FED_RULE_REWRITTEN;
    return add_target(r, x, out, refused);
}

static bool source_matches(int rule_source, int source)
{
    return rule_source == SRC_ANY || rule_source == source;
}

static void run_rules(const struct fed_router *r, const struct fed_route_request *req,
                      fed_req_type_t type, int source, struct fed_route_result *out)
{
    char refused[FED_NAME_BUF] = ""; /* the first domain the privacy mode refused */
    for (size_t i = 0; i < r->n_rules; i++) {
        const struct rt_rule *x = &r->rules[i];
        struct fed_route_tried *t = &out->tried[out->n_tried++];
        t->rule = x->name;
        t->index = x->index;
        if (!source_matches(x->source, source)) {
            t->outcome = FED_RULE_SKIPPED_SOURCE;
            continue;
        }
        if (x->type != FED_REQ_ALL && x->type != type) {
            t->outcome = FED_RULE_SKIPPED_TYPE;
            continue;
        }
        regmatch_t m[11];
        size_t nm =
            x->behaviour == FED_BEHAVIOUR_REPLACE && x->ptype == FED_PATTERN_REGEX ? COUNT(m) : 0;
        if (!rule_matches(x, out->alias, strlen(out->alias), req->worker, m, nm)) {
            t->outcome = FED_RULE_NOT_MATCHED;
            continue;
        }
        t->outcome = apply_rule(r, x, m, nm, out, refused);
        if (x->on_match == FED_ON_MATCH_STOP)
            break;
    }
    snprintf(out->domain, sizeof out->domain, "%s", alias_domain(out->alias));
    if (out->n_targets) {
        set_status(out, FED_ROUTE_OK, 0, NULL);
    } else if (refused[0]) {
        refuse(r, out, refused);
        set_detail(out, "privacy mode %s refuses the domain \"%s\"", fed_privacy_str(r->privacy),
                   refused);
    } else {
        set_status(out, FED_ROUTE_NO_ROUTE, 404, "Not Found");
        set_detail(out, "no search rule gave a target for \"%s\" (%zu tried)", out->alias,
                   out->n_tried);
    }
}

fed_route_status_t fed_route_decide(const struct fed_router *r, const struct fed_route_request *req,
                                    struct fed_route_result *out)
{
    if (!out)
        return FED_ROUTE_ERR_ARG;
    out->status = FED_ROUTE_ERR_ARG;
    out->sip_status = 500;
    out->sip_reason = "Server Internal Error";
    out->diag_code = 0;
    out->diag_reason = NULL;
    out->diag[0] = out->detail[0] = out->alias[0] = out->domain[0] = '\0';
    out->source_zone = NULL;
    out->n_targets = out->n_tried = 0;
    out->targets_truncated = false;
    if (!r || !req || !req->source_zone) {
        set_detail(out, "no router, request or source zone");
        return out->status;
    }
    int source = strcasecmp(req->source_zone, FED_ZONE_LOCAL) == 0 ? SRC_LOCAL
                 : strcasecmp(req->source_zone, FED_ZONE_DNS) == 0
                     ? SRC_DNS
                     : zone_index(r, req->source_zone);
    if (source == NO_ZONE) {
        set_detail(out, "unknown source zone \"%.48s\"", req->source_zone);
        return out->status;
    }
    out->source_zone = source == SRC_LOCAL ? zone_local
                       : source == SRC_DNS ? zone_dns
                                           : r->zones[source].name;
    if (req->in_dialog) {
        set_status(out, FED_ROUTE_IN_DIALOG, 0, NULL);
        set_detail(out, "in-dialog: not routed by rules (follows the route set)");
        return out->status;
    }
    int bad = parse_ruri(req->ruri ? req->ruri : "", view_len(req->ruri, req->ruri_len), out);
    if (bad) {
        out->alias[0] = out->domain[0] = '\0';
        set_status(out, FED_ROUTE_BAD_REQUEST, bad,
                   bad == 414   ? "Request-URI Too Long"
                   : bad == 416 ? "Unsupported URI Scheme"
                                : "Bad Request");
        set_detail(out, "the Request-URI has no usable user@host");
        return out->status;
    }
    if (source >= SRC_DNS && !inbound_allowed(r, req, source, out->source_zone, out))
        return out->status;
    fed_req_type_t type =
        req->type == FED_REQ_AUTO
            ? fed_req_type_of_method(req->method, view_len(req->method, req->method_len))
            : req->type;
    run_rules(r, req, type, source, out);
    return out->status;
}

/* ---- helpers for the proxy --------------------------------------------------------- */

size_t fed_route_locate_plan(const struct fed_route_target *t, size_t addr,
                             struct fed_locate_opts *steps, size_t max)
{
    if (!t || !steps || max == 0 || t->kind == FED_ZONE_KIND_LOCAL)
        return 0;
    struct fed_locate_opts o = {.srv_mode = t->srv_mode};
    if (t->kind == FED_ZONE_KIND_DNS) {
        size_t n = 0;
        if (t->security != FED_SEC_NO_TLS) {
            o.kind = FED_LOCATE_FEDERATION;
            o.strict_naming = t->strict_naming;
            o.fallback = t->fallback_hosts ? FED_FALLBACK_SIP : 0;
            steps[n++] = o;
        }
        if (n < max) {
            o = (struct fed_locate_opts){.kind = FED_LOCATE_RFC3263, .srv_mode = t->srv_mode};
            o.tls_only = t->security == FED_SEC_TLS_REQUIRED;
            steps[n++] = o;
        }
        return n;
    }
    if (!t->addrs || addr >= t->n_addrs || t->addrs[addr].is_ip)
        return 0;
    o.kind = FED_LOCATE_RFC3263;
    o.port = t->addrs[addr].port;
    o.tls_only = o.port == 0 && t->security == FED_SEC_TLS_REQUIRED;
    steps[0] = o;
    return 1;
}

bool fed_route_transport_allowed(const struct fed_route_target *t, fed_transport_t tp)
{
    if (!t)
        return false;
    switch (t->security) {
    case FED_SEC_TLS_REQUIRED:
        return tp == FED_TP_TLS;
    case FED_SEC_TLS_OPTIONAL:
        return tp == FED_TP_TLS || tp == FED_TP_TCP;
    case FED_SEC_NO_TLS:
        return tp == FED_TP_TCP || tp == FED_TP_UDP;
    }
    return false;
}
