/* Federation routing configuration: defaults and freeing, checks of single values
 * (host:port, patterns and their replacements, list names), and
 * fed_route_conf_check(), which holds every cross-key rule once, for both the config
 * loader (which maps each problem to FILE:LINE) and fed_router_new(). The router and
 * its decisions are in fed_route.c. */
#include "fed_route.h"

#include <ctype.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fed_route_int.h"

/* ---- configuration defaults ------------------------------------------------------ */

void fed_route_conf_defaults(struct fed_route_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->dns.security = FED_SEC_TLS_REQUIRED;
    conf->dns.client_certificates = FED_ROUTE_AUTO;
    conf->dns.strict_naming = 1;
    conf->dns.fallback_hosts = 0;
    conf->dns.srv_mode = FED_SRV_RFC2782;
    conf->privacy = FED_PRIVACY_ALLOW_LIST;
}

void fed_rule_conf_defaults(struct fed_rule_conf *rule)
{
    memset(rule, 0, sizeof *rule);
    rule->priority = 100;
    rule->enabled = 1;
    snprintf(rule->source, sizeof rule->source, "%s", FED_ZONE_ANY);
    rule->type = FED_REQ_ALL;
    rule->mode = FED_MODE_PATTERN;
    rule->pattern_type = FED_PATTERN_EXACT;
    rule->behaviour = FED_BEHAVIOUR_LEAVE;
    rule->on_match = FED_ON_MATCH_STOP;
}

void fed_neighbour_conf_defaults(struct fed_neighbour_conf *zone)
{
    memset(zone, 0, sizeof *zone);
    zone->transport = FED_ROUTE_AUTO;
    zone->security = FED_SEC_TLS_REQUIRED;
    zone->client_certificates = FED_ROUTE_AUTO;
    zone->srv_mode = FED_SRV_RFC2782;
}

void fed_static_route_conf_defaults(struct fed_static_route_conf *route)
{
    memset(route, 0, sizeof *route);
    route->transport = FED_ROUTE_AUTO;
    route->security = FED_SEC_TLS_REQUIRED;
    route->client_certificates = FED_ROUTE_AUTO;
}

void fed_route_conf_free(struct fed_route_conf *conf)
{
    if (!conf)
        return;
    free(conf->neighbours);
    conf->neighbours = NULL;
    conf->n_neighbours = 0;
    free(conf->static_routes);
    conf->static_routes = NULL;
    conf->n_static_routes = 0;
    free(conf->rules);
    conf->rules = NULL;
    conf->n_rules = 0;
    free(conf->allow);
    conf->allow = NULL;
    conf->n_allow = 0;
    free(conf->deny);
    conf->deny = NULL;
    conf->n_deny = 0;
}

/* ---- single values ----------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) int fr_fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static bool is_token(const char *s)
{
    if (!s[0])
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
            return false;
    return true;
}

bool fr_name_ok(const char *name, unsigned flags)
{
    return fed_name_check(name, FED_NAME_NUL, flags) == FED_NAME_OK;
}

int fed_hostport_parse(const char *text, struct fed_hostport *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof *out);
    if (!text || !text[0])
        return fr_fail(err, errsz, "empty address");
    const char *host = text, *port = NULL;
    const char *colon = strchr(text, ':');
    bool v6 = false;
    size_t hl;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || (close[1] && close[1] != ':'))
            return fr_fail(err, errsz, "an IPv6 address with a port is written [address]:port");
        host = text + 1;
        hl = (size_t)(close - host);
        port = close[1] ? close + 2 : NULL;
        v6 = true;
    } else if (colon && strchr(colon + 1, ':')) {
        hl = strlen(text); /* a bare IPv6 address, no port */
        v6 = true;
    } else {
        hl = colon ? (size_t)(colon - text) : strlen(text);
        port = colon ? colon + 1 : NULL;
    }
    if (hl == 0 || hl >= sizeof out->host)
        return fr_fail(err, errsz, "host missing or too long");
    memcpy(out->host, host, hl);
    out->host[hl] = '\0';
    out->is_ip = fed_name_is_ip_literal(out->host, hl);
    if (v6 && (!out->is_ip || !strchr(out->host, ':')))
        return fr_fail(err, errsz, "not an IPv6 address");
    fed_name_status_t st = fed_name_check(out->host, hl, FED_NAME_ALLOW_SINGLE_LABEL);
    if (!out->is_ip && st != FED_NAME_OK)
        return fr_fail(err, errsz, "not a host name or IP address: %s", fed_name_status_str(st));
    for (char *p = out->host; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (port) {
        unsigned long v = 0;
        size_t i = 0;
        for (; port[i] && isdigit((unsigned char)port[i]) && i < 6; i++)
            v = v * 10 + (unsigned long)(port[i] - '0');
        if (i == 0 || port[i] || v < 1 || v > 65535)
            return fr_fail(err, errsz, "port must be 1..65535");
        out->port = (uint16_t)v;
    }
    return 0;
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return a && b > SIZE_MAX / a ? SIZE_MAX : a * b;
}

/* The end of the bracket expression that starts at p ('['): its ']', or the NUL. */
static const char *bracket_end(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p && *p != ']') {
        if (*p == '[' && p[1] && strchr(":=.", p[1])) {
            char kind = p[1];
            p += 2;
            while (*p && !(*p == kind && p[1] == ']'))
                p++;
            p = *p ? p + 2 : p;
        } else {
            p++;
        }
    }
    return p;
}

/* A {m}, {m,} or {m,n} interval at p: its largest count and *end after the '}';
 * 0 when p is not an interval. */
static size_t interval(const char *p, const char **end)
{
    /* each bound on its own: leading zeros count for nothing ("{00000,010002}" is
     * {0,10002}, which glibc copies ten thousand times); a bound past 999999 is
     * kept at that, which no pattern's cost survives */
    size_t m = 0, n = 0;
    bool comma = false;
    for (p++; *p && *p != '}'; p++) {
        if (*p == '\\') /* glibc reads "{0\,9}" as "{0,9}" */
            continue;
        if (*p == ',' && !comma) {
            comma = true;
        } else if (isdigit((unsigned char)*p)) {
            size_t *v = comma ? &n : &m;
            *v = *v * 10 + (size_t)(*p - '0');
            if (*v > 999999)
                *v = 999999;
        } else {
            return 0;
        }
    }
    if (*p != '}')
        return 0;
    *end = p + 1;
    return n > m ? n : m;
}

enum { ERE_COST_MAX = 4096, ERE_ADJACENT = -1, ERE_TOO_DEEP = -2 };

/* An estimate of the nodes glibc's regcomp() builds for the ERE at p, up to an
 * unmatched ')' or the end (*end): a repeated atom is copied ('+' once, {m,n}
 * max(m,n) times), so nesting multiplies. *why gets ERE_ADJACENT for two
 * repetition operators in a row (undefined in POSIX; "a++++" grows exponentially in
 * glibc) or ERE_TOO_DEEP. */
static size_t ere_cost(const char *p, const char **end, unsigned depth, int *why)
{
    size_t total = 0, atom = 0;
    bool after_repeat = false;
    if (depth > 32) {
        *why = ERE_TOO_DEEP;
        return SIZE_MAX;
    }
    while (*p && *p != ')') {
        const char *next = p + 1;
        size_t count = *p == '{' ? interval(p, &next) : 0;
        if (*p == '*' || *p == '+' || *p == '?' || count) {
            if (after_repeat) {
                *why = ERE_ADJACENT;
                return SIZE_MAX;
            }
            size_t factor = *p == '+' ? 2 : count ? count + 1 : 1;
            atom = sat_add(sat_mul(atom, factor), 1);
            after_repeat = true;
            p = next;
            continue;
        }
        total = sat_add(total, atom);
        after_repeat = false;
        atom = 1;
        if (*p == '(') {
            const char *close;
            atom = sat_add(ere_cost(p + 1, &close, depth + 1, why), 1);
            if (*why)
                return SIZE_MAX;
            p = *close ? close + 1 : close;
        } else if (*p == '[') {
            p = bracket_end(p);
            p = *p ? p + 1 : p;
        } else if (*p == '\\') {
            p += p[1] ? 2 : 1;
        } else {
            p++;
        }
    }
    *end = p;
    return sat_add(total, atom);
}

/* True when the extended regex p holds a back-reference (\1..\9) outside bracket
 * expressions. */
static bool ere_has_backref(const char *p)
{
    for (size_t i = 0; p[i]; i++) {
        if (p[i] == '\\') {
            if (p[i + 1] >= '1' && p[i + 1] <= '9')
                return true;
            if (p[i + 1])
                i++;
            continue;
        }
        if (p[i] != '[')
            continue;
        const char *close = bracket_end(p + i);
        if (!*close)
            return false;
        i = (size_t)(close - p);
    }
    return false;
}

/* Compiles "^(" pattern ")$" into *re. Returns 0 or a regcomp() error. */
int fr_compile_anchored(regex_t *re, const char *pattern, int flags)
{
    char wrapped[FED_PATTERN_BUF + 8];
    int n = snprintf(wrapped, sizeof wrapped, "^(%s)$", pattern);
    if (n < 0 || (size_t)n >= sizeof wrapped)
        return REG_ESIZE;
    return regcomp(re, wrapped, REG_EXTENDED | REG_ICASE | flags);
}

int fed_route_check_pattern(fed_pattern_t type, const char *pattern, size_t *groups, char *err,
                            size_t errsz)
{
    if (groups)
        *groups = 0;
    if (!pattern || !pattern[0])
        return fr_fail(err, errsz, "must not be empty");
    if (strlen(pattern) >= FED_PATTERN_BUF)
        return fr_fail(err, errsz, "longer than %d characters", FED_PATTERN_BUF - 1);
    for (const char *p = pattern; *p; p++)
        if (iscntrl((unsigned char)*p))
            return fr_fail(err, errsz, "contains a control character");
    if (type == FED_PATTERN_EXACT || type == FED_PATTERN_PREFIX)
        return 0;
    if (type != FED_PATTERN_REGEX)
        return fr_fail(err, errsz, "unknown pattern type");
    /* before regcomp(), which is what would blow up */
    int why = 0;
    size_t cost = 0;
    for (const char *p = pattern;;) {
        const char *end;
        cost = sat_add(cost, ere_cost(p, &end, 0, &why));
        if (why || !*end)
            break;
        p = end + 1; /* an unmatched ')' (a literal for glibc): go on after it */
    }
    if (why == ERE_ADJACENT)
        return fr_fail(err, errsz,
                       "two repetition operators in a row (\"a++\", \"a*?\") are "
                       "undefined in POSIX extended regular expressions");
    if (why == ERE_TOO_DEEP || cost > ERE_COST_MAX)
        return fr_fail(err, errsz,
                       "too complex: nested or counted repetitions would expand it "
                       "beyond %d nodes",
                       ERE_COST_MAX);
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_ICASE);
    if (rc != 0) {
        char text[128];
        regerror(rc, &re, text, sizeof text);
        return fr_fail(err, errsz, "not a POSIX extended regular expression: %s", text);
    }
    size_t nsub = re.re_nsub;
    regfree(&re);
    if (ere_has_backref(pattern))
        return fr_fail(err, errsz,
                       "back-references (\\1..\\9) are not allowed in a pattern "
                       "(matching time would depend on the caller's alias)");
    rc = fr_compile_anchored(&re, pattern, 0);
    if (rc != 0)
        return fr_fail(err, errsz, "cannot be anchored to match the whole alias");
    regfree(&re);
    if (groups)
        *groups = nsub;
    return 0;
}

int fed_route_check_replace(fed_pattern_t type, const char *replace, size_t groups, char *err,
                            size_t errsz)
{
    if (!replace)
        return 0;
    if (strlen(replace) >= FED_PATTERN_BUF)
        return fr_fail(err, errsz, "longer than %d characters", FED_PATTERN_BUF - 1);
    for (size_t i = 0; replace[i]; i++) {
        if (iscntrl((unsigned char)replace[i]))
            return fr_fail(err, errsz, "contains a control character");
        if (replace[i] != '\\')
            continue;
        char c = replace[++i];
        if (c == '\\')
            continue;
        if (c >= '0' && c <= '9') {
            if (type != FED_PATTERN_REGEX)
                return fr_fail(err, errsz, "\\%c: back-references need pattern_type \"regex\"", c);
            if ((size_t)(c - '0') > groups)
                return fr_fail(err, errsz, "\\%c: the pattern has %zu group%s", c, groups,
                               groups == 1 ? "" : "s");
            continue;
        }
        if (!c)
            return fr_fail(err, errsz, "ends with a lone backslash (write \\\\ for one)");
        return fr_fail(err, errsz, "\\%c is not \\0..\\9 or \\\\", c);
    }
    return 0;
}

int fed_route_check_list_name(const char *name, char *err, size_t errsz)
{
    if (!name || !name[0])
        return fr_fail(err, errsz, "must not be empty");
    if (strpbrk(name, "*?[](){}^$|+\\"))
        return fr_fail(
            err, errsz,
            "exact domain names only: no wildcards or regular expressions (got \"%.64s\")", name);
    fed_name_status_t st = fed_name_check(name, FED_NAME_NUL, 0);
    if (st != FED_NAME_OK)
        return fr_fail(err, errsz, "not a domain name: %s (got \"%.64s\")", fed_name_status_str(st),
                       name);
    return 0;
}

/* ---- checking a configuration -------------------------------------------------------- */

struct checker {
    fed_conf_report_fn report;
    void *arg;
    size_t n;
    const struct fed_route_conf *conf;
};

__attribute__((format(printf, 6, 7))) static void problem(struct checker *ck, const char *path,
                                                          long index, const char *key,
                                                          long key_index, const char *fmt, ...)
{
    char text[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ck->n++;
    struct fed_conf_where w = {path, index, key, key_index};
    if (ck->report)
        ck->report(ck->arg, &w, text);
}

/* Transport, security and client certificates of one zone or static route. */
static void check_security(struct checker *ck, const char *path, long index, int transport,
                           int security, int certs)
{
    if (security < FED_SEC_TLS_REQUIRED || security > FED_SEC_NO_TLS) {
        problem(ck, path, index, "security", -1, "unknown security mode %d", security);
        return;
    }
    bool tls = security != FED_SEC_NO_TLS;
    if (transport != FED_ROUTE_AUTO) {
        if (transport < FED_TP_UDP || transport > FED_TP_TLS)
            problem(ck, path, index, "transport", -1, "unknown transport %d", transport);
        else if (tls && transport != FED_TP_TLS)
            problem(ck, path, index, "transport", -1,
                    "must be \"tls\" with security \"%s\" (use security = \"no-tls\" for "
                    "plain %s)",
                    fed_security_str((fed_security_t)security),
                    fed_transport_str((fed_transport_t)transport));
        else if (!tls && transport == FED_TP_TLS)
            problem(ck, path, index, "transport", -1,
                    "\"tls\" contradicts security \"no-tls\" (use \"tcp\" or \"udp\")");
    }
    if (!tls && certs == 1)
        problem(ck, path, index, "client_certificates", -1,
                "needs TLS, but security is \"no-tls\"");
}

static void check_addresses(struct checker *ck, const char *path, long index, const char *key,
                            const struct fed_hostport *a, size_t n)
{
    if (n == 0) {
        problem(ck, path, index, key, -1, "required: at least one host[:port]");
        return;
    }
    if (n > FED_ROUTE_MAX_ADDRS) {
        problem(ck, path, index, key, -1, "at most %d addresses (got %zu)", FED_ROUTE_MAX_ADDRS, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool ok = fed_name_is_ip_literal(a[i].host, FED_NAME_NUL) ||
                  fr_name_ok(a[i].host, FED_NAME_ALLOW_SINGLE_LABEL);
        if (!ok)
            problem(ck, path, index, key, (long)i, "not a host name or IP address");
    }
}

/* The neighbour named `name` (case-insensitive), or -1. */
static long find_neighbour(const struct fed_route_conf *conf, const char *name, size_t upto)
{
    for (size_t i = 0; i < upto && i < conf->n_neighbours; i++)
        if (strcasecmp(conf->neighbours[i].name, name) == 0)
            return (long)i;
    return -1;
}

static bool reserved_zone(const char *name)
{
    return strcasecmp(name, FED_ZONE_LOCAL) == 0 || strcasecmp(name, FED_ZONE_DNS) == 0 ||
           strcasecmp(name, FED_ZONE_ANY) == 0;
}

static void check_zones(struct checker *ck)
{
    const struct fed_route_conf *conf = ck->conf;
    const struct fed_dns_zone_conf *d = &conf->dns;
    check_security(ck, "zones.dns", -1, FED_ROUTE_AUTO, d->security, d->client_certificates);
    if (d->srv_mode != FED_SRV_RFC2782 && d->srv_mode != FED_SRV_MICROSOFT)
        problem(ck, "zones.dns", -1, "srv_mode", -1, "unknown SRV mode %d", d->srv_mode);

    if (conf->n_neighbours > FED_ROUTE_MAX_NEIGHBOURS)
        problem(ck, "zones.neighbours", -1, NULL, -1, "at most %d zones (got %zu)",
                FED_ROUTE_MAX_NEIGHBOURS, conf->n_neighbours);
    for (size_t i = 0; i < conf->n_neighbours && i < FED_ROUTE_MAX_NEIGHBOURS; i++) {
        const struct fed_neighbour_conf *z = &conf->neighbours[i];
        const char *path = "zones.neighbours";
        long dup = find_neighbour(conf, z->name, i);
        if (!is_token(z->name))
            problem(ck, path, (long)i, "name", -1, "required: letters, digits, '-', '_' and '.'");
        else if (reserved_zone(z->name))
            problem(ck, path, (long)i, "name", -1,
                    "\"%s\" is reserved (\"local\", \"dns\" and \"any\" name built-in zones)",
                    z->name);
        else if (dup >= 0)
            problem(ck, path, (long)i, "name", -1, "duplicate of zones.neighbours[%ld]", dup);
        check_addresses(ck, path, (long)i, "peers", z->peers, z->n_peers);
        check_security(ck, path, (long)i, z->transport, z->security, z->client_certificates);
        if (z->srv_mode != FED_SRV_RFC2782 && z->srv_mode != FED_SRV_MICROSOFT)
            problem(ck, path, (long)i, "srv_mode", -1, "unknown SRV mode %d", z->srv_mode);
    }

    if (conf->n_static_routes > FED_ROUTE_MAX_STATIC)
        problem(ck, "zones.static_routes", -1, NULL, -1, "at most %d static routes (got %zu)",
                FED_ROUTE_MAX_STATIC, conf->n_static_routes);
    for (size_t i = 0; i < conf->n_static_routes && i < FED_ROUTE_MAX_STATIC; i++) {
        const struct fed_static_route_conf *s = &conf->static_routes[i];
        const char *path = "zones.static_routes";
        char why[160];
        if (fed_route_check_list_name(s->domain, why, sizeof why) != 0) {
            problem(ck, path, (long)i, "domain", -1, "%s", why);
        } else {
            for (size_t j = 0; j < i; j++) {
                if (fed_name_equal(s->domain, FED_NAME_NUL, conf->static_routes[j].domain,
                                   FED_NAME_NUL)) {
                    problem(ck, path, (long)i, "domain", -1,
                            "duplicate of zones.static_routes[%zu] (list every address of a "
                            "domain in one entry)",
                            j);
                    break;
                }
            }
        }
        check_addresses(ck, path, (long)i, "addresses", s->addrs, s->n_addrs);
        check_security(ck, path, (long)i, s->transport, s->security, s->client_certificates);
    }
}

/* The zone a rule's source or target names is known: "any" only as a source. */
static bool zone_known(const struct fed_route_conf *conf, const char *name, bool source)
{
    if (source && strcasecmp(name, FED_ZONE_ANY) == 0)
        return true;
    return strcasecmp(name, FED_ZONE_LOCAL) == 0 || strcasecmp(name, FED_ZONE_DNS) == 0 ||
           find_neighbour(conf, name, conf->n_neighbours) >= 0;
}

static void check_rule_pattern(struct checker *ck, long i, const struct fed_rule_conf *r)
{
    const char *path = "search_rules";
    char why[256];
    size_t groups = 0;
    if (r->mode == FED_MODE_ANY_ALIAS) {
        if (r->pattern[0])
            problem(ck, path, i, "pattern", -1, "used only with mode \"pattern\"");
        if (r->behaviour == FED_BEHAVIOUR_REPLACE)
            problem(ck, path, i, "behaviour", -1,
                    "\"replace\" needs a pattern: set mode = \"pattern\"");
        return;
    }
    if (r->mode != FED_MODE_PATTERN) {
        problem(ck, path, i, "mode", -1, "unknown mode %d", r->mode);
        return;
    }
    if (r->pattern_type < FED_PATTERN_EXACT || r->pattern_type > FED_PATTERN_REGEX) {
        problem(ck, path, i, "pattern_type", -1, "unknown pattern type %d", r->pattern_type);
        return;
    }
    if (!r->pattern[0]) {
        problem(ck, path, i, "pattern", -1, "required with mode \"pattern\"");
        return;
    }
    if (fed_route_check_pattern((fed_pattern_t)r->pattern_type, r->pattern, &groups, why,
                                sizeof why) != 0) {
        problem(ck, path, i, "pattern", -1, "%s", why);
        return;
    }
    if (r->behaviour == FED_BEHAVIOUR_LEAVE && r->replace[0])
        problem(ck, path, i, "replace", -1, "used only with behaviour \"replace\"");
    else if (r->behaviour == FED_BEHAVIOUR_REPLACE &&
             fed_route_check_replace((fed_pattern_t)r->pattern_type, r->replace, groups, why,
                                     sizeof why) != 0)
        problem(ck, path, i, "replace", -1, "%s", why);
}

static void check_rules(struct checker *ck)
{
    const struct fed_route_conf *conf = ck->conf;
    const char *path = "search_rules";
    if (conf->n_rules > FED_ROUTE_MAX_RULES)
        problem(ck, path, -1, NULL, -1, "at most %d rules (got %zu)", FED_ROUTE_MAX_RULES,
                conf->n_rules);
    for (size_t n = 0; n < conf->n_rules && n < FED_ROUTE_MAX_RULES; n++) {
        const struct fed_rule_conf *r = &conf->rules[n];
        long i = (long)n;
        if (!r->name[0]) {
            problem(ck, path, i, "name", -1, "required");
        } else {
            for (size_t j = 0; j < n; j++) {
                if (strcasecmp(conf->rules[j].name, r->name) == 0) {
                    problem(ck, path, i, "name", -1, "duplicate of search_rules[%zu]", j);
                    break;
                }
            }
        }
        if (r->priority < 1 || r->priority > 65534)
            problem(ck, path, i, "priority", -1, "must be 1..65534 (got %u)", r->priority);
        if (!zone_known(conf, r->source, true))
            problem(ck, path, i, "source", -1,
                    "unknown zone \"%s\" (\"any\", \"local\", \"dns\" or a zones.neighbours "
                    "name)",
                    r->source);
        if (r->type != FED_REQ_CALLS && r->type != FED_REQ_IMP && r->type != FED_REQ_ALL)
            problem(ck, path, i, "type", -1, "unknown request type %d", r->type);
        check_rule_pattern(ck, i, r);
        if (r->on_match != FED_ON_MATCH_STOP && r->on_match != FED_ON_MATCH_CONTINUE)
            problem(ck, path, i, "on_match", -1, "unknown value %d", r->on_match);
        if (!r->target[0]) {
            if (r->on_match != FED_ON_MATCH_CONTINUE || r->behaviour != FED_BEHAVIOUR_REPLACE)
                problem(ck, path, i, "target", -1,
                        "required (only a rule with behaviour \"replace\" and on_match "
                        "\"continue\" may leave it out)");
        } else if (!zone_known(conf, r->target, false)) {
            problem(ck, path, i, "target", -1,
                    "unknown zone \"%s\" (\"local\", \"dns\" or a zones.neighbours name)",
                    r->target);
        }
    }
}

static void check_list(struct checker *ck, const char *key, char (*list)[FED_NAME_BUF], size_t n)
{
    if (n > FED_ROUTE_MAX_LIST) {
        problem(ck, "federation", -1, key, -1, "at most %d names (got %zu)", FED_ROUTE_MAX_LIST, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char why[160];
        if (fed_route_check_list_name(list[i], why, sizeof why) != 0) {
            problem(ck, "federation", -1, key, (long)i, "%s", why);
            continue;
        }
        for (size_t j = 0; j < i; j++) {
            if (fed_name_equal(list[i], FED_NAME_NUL, list[j], FED_NAME_NUL)) {
                problem(ck, "federation", -1, key, (long)i, "duplicate of federation.%s[%zu]", key,
                        j);
                break;
            }
        }
    }
}

static void check_privacy(struct checker *ck)
{
    const struct fed_route_conf *conf = ck->conf;
    if (conf->privacy < FED_PRIVACY_ALLOW_LIST || conf->privacy > FED_PRIVACY_OFF)
        problem(ck, "federation", -1, "privacy", -1, "unknown privacy mode %d", conf->privacy);
    check_list(ck, "allow", conf->allow, conf->n_allow);
    check_list(ck, "deny", conf->deny, conf->n_deny);
    if (conf->n_allow > FED_ROUTE_MAX_LIST || conf->n_deny > FED_ROUTE_MAX_LIST)
        return;
    for (size_t i = 0; i < conf->n_deny; i++) {
        for (size_t j = 0; j < conf->n_allow; j++) {
            if (fed_name_equal(conf->deny[i], FED_NAME_NUL, conf->allow[j], FED_NAME_NUL)) {
                problem(ck, "federation", -1, "deny", (long)i,
                        "\"%s\" is also in federation.allow[%zu]: a domain cannot be in both "
                        "lists",
                        conf->deny[i], j);
                break;
            }
        }
        for (size_t j = 0; j < conf->n_static_routes && j < FED_ROUTE_MAX_STATIC; j++) {
            if (fed_name_equal(conf->deny[i], FED_NAME_NUL, conf->static_routes[j].domain,
                               FED_NAME_NUL)) {
                problem(ck, "federation", -1, "deny", (long)i,
                        "\"%s\" has a static route (zones.static_routes[%zu]), and static-route "
                        "domains are always allowed",
                        conf->deny[i], j);
                break;
            }
        }
    }
}

size_t fed_route_conf_check(const struct fed_route_conf *conf, fed_conf_report_fn report, void *arg)
{
    struct checker ck = {.report = report, .arg = arg, .conf = conf};
    if (!conf) {
        problem(&ck, "federation", -1, NULL, -1, "no configuration");
        return ck.n;
    }
    check_zones(&ck);
    check_rules(&ck);
    check_privacy(&ck);
    return ck.n;
}

