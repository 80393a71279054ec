/* Configuration sections zones, search_rules and federation: their key tables, the
 * setters for neighbours, static routes, address and name lists, and pass 3 for them
 * as a whole through fed_route_conf_check(). */
#include <arpa/inet.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn_log.h"
#include "config_int.h"
#include "fed_history.h"

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

const struct cf_key cf_rule_keys[] = {
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
_Static_assert(CF_COUNT(cf_rule_keys) == CF_N_RULE_KEYS, "CF_N_RULE_KEYS");

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

const struct cf_key cf_zone_keys[] = {
    {.name = "dns", .set = cf_set_dns_zone, CF_CFG(fed.route.dns)},
    {.name = "neighbours", .set = cf_set_neighbours, CF_CFG(fed.route)},
    {.name = "static_routes", .set = cf_set_static_routes, CF_CFG(fed.route)},
};
_Static_assert(CF_COUNT(cf_zone_keys) == CF_N_ZONE_KEYS, "CF_N_ZONE_KEYS");

const struct cf_key cf_federation_keys[] = {
    CF_ENUM("privacy", fed.route.privacy, privacy_modes),
    {.name = "allow", .set = cf_set_domain_list, CF_CFG(fed.route)},
    {.name = "deny", .set = cf_set_domain_list, CF_CFG(fed.route)},
    CF_UINT("history_size", fed.history_size, 1, FED_HISTORY_MAX_CAPACITY),
    CF_STRING("dns_server", cf_set_text, fed.dns_server, 1),
    {.name = "inbound_check", .set = cf_set_bool, CF_CFG(fed.inbound_check)},
};
_Static_assert(CF_COUNT(cf_federation_keys) == CF_N_FEDERATION_KEYS, "CF_N_FEDERATION_KEYS");

/* search_rules: a list of groups (struct fed_rule_conf). */
void cf_parse_rules(struct cf_ctx *c, const struct cf_section *sec, const config_setting_t *s)
{
    struct fed_route_conf *rc = &c->cfg->fed.route;
    static const char *const required[] = {"name", NULL};
    free(rc->rules);
    rc->rules = cf_parse_entries(c, s, sec->name, sec->keys, sec->n_keys, sizeof *rc->rules,
                                 cf_init_rule, required, FED_ROUTE_MAX_RULES, &rc->n_rules);
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
void cf_validate_federation(struct cf_ctx *c)
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
