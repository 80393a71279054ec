/* Fuzz target for the search-rule matcher and replace engine of fed_route.
 *
 * Input: one flag byte, then newline-separated fields
 *   pattern \n replace \n Request-URI \n From domain
 * flag bits 0-1: pattern type (exact, prefix, regex, any-alias); bit 2: replace;
 * bit 3: on_match continue; bits 4-5: target (local, dns, neighbour, none); bit 6:
 * privacy off (else an allow list holding the From domain); bit 7: a second,
 * any-alias rule to the DNS zone after the first.
 *
 * The pattern and replace go through the configuration checks; whenever they pass,
 * the router must build, and every decision on the Request-URI (given as a view of
 * exactly its length, so ASan catches a read past it) must be well-formed: a known
 * status, bounded NUL-terminated aliases whose domain is the part after the last
 * '@', no CR/LF anywhere in what goes on the wire, a 1027 header on a refusal. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed_route.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next field of data[*pos..size-1] up to '\n' (not included) as a C string in
 * out[cap]; false when it does not fit or holds a NUL. */
static bool field(const uint8_t *data, size_t size, size_t *pos, char *out, size_t cap)
{
    size_t start = *pos, end = start;
    while (end < size && data[end] != '\n')
        end++;
    *pos = end < size ? end + 1 : end;
    size_t n = end - start;
    if (n >= cap || memchr(data + start, '\0', n))
        return false;
    memcpy(out, data + start, n);
    out[n] = '\0';
    return true;
}

static bool no_crlf(const char *s)
{
    return !strchr(s, '\r') && !strchr(s, '\n');
}

static void check_result(const struct fed_route_result *res, const struct fed_route_conf *conf)
{
    CHECK(res->status >= FED_ROUTE_ERR_ARG && res->status <= FED_ROUTE_BAD_REQUEST);
    CHECK(memchr(res->alias, '\0', sizeof res->alias) != NULL);
    CHECK(memchr(res->detail, '\0', sizeof res->detail) != NULL);
    CHECK(res->n_tried <= conf->n_rules);
    CHECK(res->n_targets <= FED_ROUTE_MAX_TARGETS);
    CHECK(no_crlf(res->diag));
    switch (res->status) {
    case FED_ROUTE_OK:
        CHECK(res->n_targets >= 1 && res->sip_status == 0);
        break;
    case FED_ROUTE_REFUSED:
        CHECK(res->sip_status == 403 && res->diag_code == 1027);
        CHECK(strncmp(res->diag, "1027;reason=", 12) == 0);
        CHECK(res->n_targets == 0);
        break;
    case FED_ROUTE_NO_ROUTE:
        CHECK(res->sip_status == 404 && res->n_targets == 0);
        break;
    case FED_ROUTE_BAD_REQUEST:
        CHECK(res->sip_status == 400 || res->sip_status == 414 || res->sip_status == 416);
        CHECK(res->alias[0] == '\0');
        break;
    default:
        CHECK(res->n_targets == 0);
        break;
    }
    for (size_t i = 0; i < res->n_targets; i++) {
        const struct fed_route_target *t = &res->targets[i];
        CHECK(memchr(t->alias, '\0', sizeof t->alias) != NULL);
        CHECK(strlen(t->alias) <= FED_ALIAS_MAX && t->alias[0]);
        CHECK(no_crlf(t->alias));
        const char *at = strrchr(t->alias, '@');
        CHECK(strcmp(t->domain, at ? at + 1 : t->alias) == 0);
        CHECK(t->zone != NULL && t->rule != NULL);
        CHECK((t->addrs != NULL) ==
              (t->kind == FED_ZONE_KIND_NEIGHBOUR || t->kind == FED_ZONE_KIND_STATIC));
        for (size_t j = 0; j < i; j++)
            CHECK(res->targets[j].zone != t->zone || strcmp(res->targets[j].alias, t->alias));
    }
    for (size_t i = 0; i < res->n_tried; i++)
        CHECK(res->tried[i].index < conf->n_rules);
}

static char pattern[FED_PATTERN_BUF], replace[FED_PATTERN_BUF], from[300];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flags = data[0];
    size_t pos = 1;
    if (!field(data, size, &pos, pattern, 65) || !field(data, size, &pos, replace, 65))
        return 0;
    size_t ruri_start = pos, ruri_end = pos;
    while (ruri_end < size && data[ruri_end] != '\n')
        ruri_end++;
    pos = ruri_end < size ? ruri_end + 1 : ruri_end;
    if (!field(data, size, &pos, from, sizeof from))
        from[0] = '\0';

    struct fed_route_conf conf;
    struct fed_rule_conf rules[2];
    struct fed_neighbour_conf nb;
    char allow[1][FED_NAME_BUF];
    fed_route_conf_defaults(&conf);
    fed_neighbour_conf_defaults(&nb);
    snprintf(nb.name, sizeof nb.name, "nb");
    CHECK(fed_hostport_parse("192.0.2.1:5061", &nb.peers[0], NULL, 0) == 0);
    nb.n_peers = 1;
    conf.neighbours = &nb;
    conf.n_neighbours = 1;

    unsigned ptype = flags & 3;
    struct fed_rule_conf *r = &rules[0];
    fed_rule_conf_defaults(r);
    snprintf(r->name, sizeof r->name, "fuzzed");
    static const char *const targets[] = {"local", "dns", "nb", ""};
    snprintf(r->target, sizeof r->target, "%s", targets[(flags >> 4) & 3]);
    r->on_match = flags & 8 ? FED_ON_MATCH_CONTINUE : FED_ON_MATCH_STOP;
    size_t groups = 0;
    char why[256];
    if (ptype == 3) {
        r->mode = FED_MODE_ANY_ALIAS;
    } else {
        r->pattern_type = (int)ptype;
        int pc = fed_route_check_pattern((fed_pattern_t)ptype, pattern, &groups, why, sizeof why);
        CHECK(memchr(why, '\0', sizeof why) != NULL);
        if (pc != 0)
            return 0;
        CHECK(ptype == FED_PATTERN_REGEX || groups == 0);
        snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
        if (flags & 4) {
            if (fed_route_check_replace((fed_pattern_t)ptype, replace, groups, why, sizeof why))
                return 0;
            r->behaviour = FED_BEHAVIOUR_REPLACE;
            snprintf(r->replace, sizeof r->replace, "%s", replace);
        }
    }
    conf.rules = rules;
    conf.n_rules = 1;
    if (flags & 128) {
        fed_rule_conf_defaults(&rules[1]);
        snprintf(rules[1].name, sizeof rules[1].name, "second");
        rules[1].mode = FED_MODE_ANY_ALIAS;
        rules[1].priority = 200;
        snprintf(rules[1].target, sizeof rules[1].target, "dns");
        conf.n_rules = 2;
    }
    if (flags & 64) {
        conf.privacy = FED_PRIVACY_OFF;
    } else if (fed_route_check_list_name(from, why, sizeof why) == 0) {
        snprintf(allow[0], sizeof allow[0], "%.255s", from);
        conf.allow = allow;
        conf.n_allow = 1;
    }

    size_t problems = fed_route_conf_check(&conf, NULL, NULL);
    static const char *const locals[] = {"example.com"};
    struct fed_router_env env = {.local_domains = locals, .n_local_domains = 1, .n_workers = 1};
    char err[512];
    struct fed_router *router = fed_router_new(&conf, &env, err, sizeof err);
    CHECK((router != NULL) == (problems == 0));
    if (!router)
        return 0;

    size_t ruri_len = ruri_end - ruri_start;
    char *ruri = malloc(ruri_len ? ruri_len : 1);
    struct fed_route_result *res = malloc(sizeof *res);
    if (ruri && res) {
        memcpy(ruri, data + ruri_start, ruri_len);
        static const char *const sources[] = {"local", "dns", "nb"};
        static const char *const methods[] = {"INVITE", "MESSAGE", "REGISTER"};
        for (size_t s = 0; s < 3; s++) {
            struct fed_route_request req = {
                .method = methods[s],
                .method_len = FED_NAME_NUL,
                .source_zone = sources[s],
                .ruri = ruri,
                .ruri_len = ruri_len,
                .from_domain = from,
                .from_domain_len = FED_NAME_NUL,
                .arrival = s == 1 ? FED_ARRIVAL_MTLS : FED_ARRIVAL_UNKNOWN,
            };
            CHECK(fed_route_decide(router, &req, res) == res->status);
            check_result(res, &conf);
            struct fed_locate_opts steps[2];
            for (size_t i = 0; i < res->n_targets; i++)
                CHECK(fed_route_locate_plan(&res->targets[i], 0, steps, 2) <= 2);
        }
        struct fed_hostport hp;
        char text[300];
        if (ruri_len < sizeof text && !memchr(ruri, '\0', ruri_len)) {
            memcpy(text, ruri, ruri_len);
            text[ruri_len] = '\0';
            if (fed_hostport_parse(text, &hp, why, sizeof why) == 0)
                CHECK(hp.host[0] && memchr(hp.host, '\0', sizeof hp.host));
        }
    }
    free(res);
    free(ruri);
    fed_router_free(router);
    return 0;
}
