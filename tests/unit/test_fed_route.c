/* Federation routing decisions: search rules (priority, stop/continue, source zone,
 * request type, exact/prefix/regex, replace with back-references), zones (local,
 * neighbour, DNS, static routes), privacy and security modes, configuration checks,
 * and the helpers the proxy uses on a decision. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fed_route.h"

/* ---- building configurations ------------------------------------------------------- */

struct fixture {
    struct fed_route_conf conf;
    struct fed_router *router;
    struct fed_route_result res;
};

static struct fixture fx;

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof fx);
    fed_route_conf_defaults(&fx.conf);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fed_router_free(fx.router);
    fed_route_conf_free(&fx.conf);
    memset(&fx, 0, sizeof fx);
    return 0;
}

static struct fed_rule_conf *add_rule(const char *name, uint32_t priority, const char *target)
{
    struct fed_route_conf *c = &fx.conf;
    struct fed_rule_conf *rules = realloc(c->rules, (c->n_rules + 1) * sizeof *rules);
    assert_non_null(rules);
    c->rules = rules;
    struct fed_rule_conf *r = &rules[c->n_rules++];
    fed_rule_conf_defaults(r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->priority = priority;
    snprintf(r->target, sizeof r->target, "%s", target);
    return r;
}

static void set_pattern(struct fed_rule_conf *r, fed_pattern_t type, const char *pattern)
{
    r->mode = FED_MODE_PATTERN;
    r->pattern_type = type;
    snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
}

static void set_replace(struct fed_rule_conf *r, const char *replace)
{
    r->behaviour = FED_BEHAVIOUR_REPLACE;
    snprintf(r->replace, sizeof r->replace, "%s", replace);
}

static struct fed_rule_conf *any_alias(struct fed_rule_conf *r)
{
    r->mode = FED_MODE_ANY_ALIAS;
    r->pattern[0] = '\0';
    return r;
}

static struct fed_neighbour_conf *add_neighbour(const char *name, const char *peer)
{
    struct fed_route_conf *c = &fx.conf;
    struct fed_neighbour_conf *z = realloc(c->neighbours, (c->n_neighbours + 1) * sizeof *z);
    assert_non_null(z);
    c->neighbours = z;
    struct fed_neighbour_conf *n = &z[c->n_neighbours++];
    fed_neighbour_conf_defaults(n);
    snprintf(n->name, sizeof n->name, "%s", name);
    assert_int_equal(fed_hostport_parse(peer, &n->peers[0], NULL, 0), 0);
    n->n_peers = 1;
    return n;
}

static struct fed_static_route_conf *add_static(const char *domain, const char *a1, const char *a2)
{
    struct fed_route_conf *c = &fx.conf;
    struct fed_static_route_conf *s =
        realloc(c->static_routes, (c->n_static_routes + 1) * sizeof *s);
    assert_non_null(s);
    c->static_routes = s;
    struct fed_static_route_conf *r = &s[c->n_static_routes++];
    fed_static_route_conf_defaults(r);
    snprintf(r->domain, sizeof r->domain, "%s", domain);
    assert_int_equal(fed_hostport_parse(a1, &r->addrs[r->n_addrs++], NULL, 0), 0);
    if (a2)
        assert_int_equal(fed_hostport_parse(a2, &r->addrs[r->n_addrs++], NULL, 0), 0);
    return r;
}

static void add_name(char (**list)[FED_NAME_BUF], size_t *n, const char *name)
{
    char(*l)[FED_NAME_BUF] = realloc(*list, (*n + 1) * sizeof *l);
    assert_non_null(l);
    *list = l;
    snprintf(l[(*n)++], FED_NAME_BUF, "%s", name);
}

static void allow(const char *name)
{
    add_name(&fx.conf.allow, &fx.conf.n_allow, name);
}

static void deny(const char *name)
{
    add_name(&fx.conf.deny, &fx.conf.n_deny, name);
}

static const char *const local_domains[] = {"example.com", "vc.example.com"};

/* Compiles fx.conf; fails the test with the router's message when it does not. */
static void compile(void)
{
    char err[512];
    struct fed_router_env env = {
        .local_domains = local_domains,
        .n_local_domains = 2,
        .diag_source = "sip.example.com",
        .n_workers = 2,
    };
    fed_router_free(fx.router);
    fx.router = fed_router_new(&fx.conf, &env, err, sizeof err);
    if (!fx.router)
        fail_msg("fed_router_new: %s", err);
}

static fed_route_status_t decide_full(const char *method, const char *source, const char *ruri,
                                      const char *from, fed_arrival_t arrival)
{
    struct fed_route_request req = {
        .method = method,
        .method_len = FED_NAME_NUL,
        .source_zone = source,
        .ruri = ruri,
        .ruri_len = FED_NAME_NUL,
        .from_domain = from,
        .from_domain_len = FED_NAME_NUL,
        .arrival = arrival,
    };
    return fed_route_decide(fx.router, &req, &fx.res);
}

static fed_route_status_t decide(const char *method, const char *source, const char *ruri)
{
    return decide_full(method, source, ruri, "example.com", FED_ARRIVAL_UNKNOWN);
}

/* The outcome recorded for rule `name`, or -1 when it was not tried. */
static int outcome_of(const char *name)
{
    for (size_t i = 0; i < fx.res.n_tried; i++)
        if (strcmp(fx.res.tried[i].rule, name) == 0)
            return (int)fx.res.tried[i].outcome;
    return -1;
}

static void assert_tried(const char *const *names, size_t n)
{
    if (fx.res.n_tried != n)
        fail_msg("%zu rules tried, expected %zu", fx.res.n_tried, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(fx.res.tried[i].rule, names[i]);
}

/* ---- search rules ---------------------------------------------------------------------- */

static void rules_are_tried_in_priority_order_and_ties_keep_config_order(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    set_pattern(add_rule("late", 50, "dns"), FED_PATTERN_EXACT, "nobody@x.org");
    set_pattern(add_rule("tie-first", 20, "dns"), FED_PATTERN_EXACT, "nobody@x.org");
    set_pattern(add_rule("early", 10, "dns"), FED_PATTERN_EXACT, "nobody@x.org");
    set_pattern(add_rule("tie-second", 20, "dns"), FED_PATTERN_EXACT, "nobody@x.org");
    any_alias(add_rule("last", 60, "dns"));
    compile();

    assert_int_equal(decide("INVITE", "local", "sip:bob@partner.example"), FED_ROUTE_OK);
    static const char *const order[] = {"early", "tie-first", "tie-second", "late", "last"};
    assert_tried(order, 5);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(fx.res.tried[i].outcome, FED_RULE_NOT_MATCHED);
    assert_int_equal(fx.res.tried[4].outcome, FED_RULE_MATCHED);
    assert_int_equal(fx.res.tried[0].index, 2); /* position in the configuration */
    assert_int_equal(fx.res.n_targets, 1);
    assert_string_equal(fx.res.targets[0].rule, "last");
}

static void stop_ends_the_search_and_continue_adds_more_targets(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    add_neighbour("vcs", "192.0.2.5:5061");
    any_alias(add_rule("to-vcs", 1, "vcs"))->on_match = FED_ON_MATCH_CONTINUE;
    any_alias(add_rule("to-dns", 2, "dns"));
    any_alias(add_rule("never", 3, "local"));
    compile();

    assert_int_equal(decide("INVITE", "local", "sip:bob@partner.example"), FED_ROUTE_OK);
    static const char *const order[] = {"to-vcs", "to-dns"};
    assert_tried(order, 2);
    assert_int_equal(outcome_of("never"), -1);
    assert_int_equal(fx.res.n_targets, 2);
    assert_string_equal(fx.res.targets[0].zone, "vcs");
    assert_int_equal(fx.res.targets[0].kind, FED_ZONE_KIND_NEIGHBOUR);
    assert_string_equal(fx.res.targets[1].zone, "dns");
    assert_int_equal(fx.res.targets[1].kind, FED_ZONE_KIND_DNS);
    assert_int_equal(fx.res.sip_status, 0);

    /* with stop on the first rule, the DNS zone is never reached */
    fx.conf.rules[0].on_match = FED_ON_MATCH_STOP;
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@partner.example"), FED_ROUTE_OK);
    assert_int_equal(fx.res.n_targets, 1);
    assert_int_equal(fx.res.n_tried, 1);
}

static void stop_applies_even_when_the_matching_rule_gives_no_target(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    set_pattern(add_rule("rooms", 1, "local"), FED_PATTERN_PREFIX, "meet.");
    any_alias(add_rule("rest", 2, "dns"));
    compile();
    /* the pattern matches, the domain is not ours: stop, and no DNS fallback */
    assert_int_equal(decide("INVITE", "dns", "sip:meet.x@partner.example"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(outcome_of("rooms"), FED_RULE_NOT_LOCAL);
    assert_int_equal(outcome_of("rest"), -1);
    assert_int_equal(fx.res.sip_status, 404);
}

static void rules_for_another_source_zone_are_skipped(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    add_neighbour("vcs", "192.0.2.5:5061");
    any_alias(add_rule("from-vcs", 1, "local"));
    snprintf(fx.conf.rules[0].source, FED_ZONE_NAME_BUF, "vcs");
    any_alias(add_rule("from-dns", 2, "local"));
    snprintf(fx.conf.rules[1].source, FED_ZONE_NAME_BUF, "dns");
    any_alias(add_rule("from-local", 3, "dns"));
    snprintf(fx.conf.rules[2].source, FED_ZONE_NAME_BUF, "local");
    compile();

    assert_int_equal(decide("INVITE", "dns", "sip:meet@example.com"), FED_ROUTE_OK);
    assert_int_equal(outcome_of("from-vcs"), FED_RULE_SKIPPED_SOURCE);
    assert_int_equal(outcome_of("from-dns"), FED_RULE_MATCHED);
    assert_string_equal(fx.res.targets[0].rule, "from-dns");
    assert_string_equal(fx.res.source_zone, "dns");

    assert_int_equal(decide("INVITE", "vcs", "sip:meet@example.com"), FED_ROUTE_OK);
    assert_string_equal(fx.res.targets[0].rule, "from-vcs");
    assert_string_equal(fx.res.source_zone, "vcs");

    assert_int_equal(decide("INVITE", "local", "sip:bob@partner.example"), FED_ROUTE_OK);
    assert_int_equal(outcome_of("from-vcs"), FED_RULE_SKIPPED_SOURCE);
    assert_int_equal(outcome_of("from-dns"), FED_RULE_SKIPPED_SOURCE);
    assert_string_equal(fx.res.targets[0].rule, "from-local");
}

static void request_types_separate_calls_from_im_and_presence(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    add_neighbour("im-gw", "192.0.2.9:5061");
    any_alias(add_rule("calls", 1, "dns"))->type = FED_REQ_CALLS;
    any_alias(add_rule("imp", 2, "im-gw"))->type = FED_REQ_IMP;
    compile();

    static const char *const calls[] = {"INVITE", "ACK",    "CANCEL", "BYE",
                                        "PRACK",  "UPDATE", "REFER"};
    static const char *const imp[] = {"MESSAGE", "SUBSCRIBE", "NOTIFY",
                                      "INFO",    "OPTIONS",   "PUBLISH"};
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        assert_int_equal(decide(calls[i], "local", "sip:bob@partner.example"), FED_ROUTE_OK);
        assert_string_equal(fx.res.targets[0].zone, "dns");
    }
    for (size_t i = 0; i < sizeof imp / sizeof imp[0]; i++) {
        assert_int_equal(decide(imp[i], "local", "sip:bob@partner.example"), FED_ROUTE_OK);
        assert_string_equal(fx.res.targets[0].zone, "im-gw");
        assert_int_equal(outcome_of("calls"), FED_RULE_SKIPPED_TYPE);
    }
    /* REGISTER and unknown methods are neither: only "all" rules take them */
    assert_int_equal(decide("REGISTER", "local", "sip:bob@partner.example"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(outcome_of("calls"), FED_RULE_SKIPPED_TYPE);
    assert_int_equal(outcome_of("imp"), FED_RULE_SKIPPED_TYPE);
    assert_int_equal(fed_req_type_of_method("invite", FED_NAME_NUL), FED_REQ_OTHER);
    assert_int_equal(fed_req_type_of_method("MESSAGEX", 7), FED_REQ_IMP);

    /* an explicit type wins over the method */
    struct fed_route_request req = {.method = "MESSAGE",
                                    .method_len = FED_NAME_NUL,
                                    .type = FED_REQ_CALLS,
                                    .source_zone = "local",
                                    .ruri = "sip:bob@partner.example",
                                    .ruri_len = FED_NAME_NUL};
    assert_int_equal(fed_route_decide(fx.router, &req, &fx.res), FED_ROUTE_OK);
    assert_string_equal(fx.res.targets[0].zone, "dns");
}

static void exact_pattern_matches_the_whole_alias_ignoring_case(void **state)
{
    (void)state;
    set_pattern(add_rule("room", 1, "local"), FED_PATTERN_EXACT, "Meet.Alice@Example.com");
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:meet.alice@EXAMPLE.COM"), FED_ROUTE_OK);
    assert_int_equal(fx.res.targets[0].kind, FED_ZONE_KIND_LOCAL);
    assert_string_equal(fx.res.targets[0].alias, "meet.alice@example.com");
    assert_int_equal(decide("INVITE", "local", "sip:meet.alice@example.com.au"),
                     FED_ROUTE_NO_ROUTE);
    assert_int_equal(outcome_of("room"), FED_RULE_NOT_MATCHED);
    assert_int_equal(decide("INVITE", "local", "sip:xmeet.alice@example.com"), FED_ROUTE_NO_ROUTE);
}

static void prefix_pattern_matches_the_start_and_replace_keeps_the_rest(void **state)
{
    (void)state;
    struct fed_rule_conf *r = add_rule("strip", 1, "local");
    set_pattern(r, FED_PATTERN_PREFIX, "vmr.");
    set_replace(r, "meet.");
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:VMR.alice@example.com"), FED_ROUTE_OK);
    assert_string_equal(fx.res.alias, "meet.alice@example.com");
    assert_string_equal(fx.res.targets[0].alias, "meet.alice@example.com");
    assert_int_equal(decide("INVITE", "local", "sip:alice.vmr@example.com"), FED_ROUTE_NO_ROUTE);

    /* an empty replacement strips the prefix */
    fx.conf.rules[0].replace[0] = '\0';
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:vmr.bob@vc.example.com"), FED_ROUTE_OK);
    assert_string_equal(fx.res.targets[0].alias, "bob@vc.example.com");
}

static void regex_must_match_the_whole_alias(void **state)
{
    (void)state;
    set_pattern(add_rule("rooms", 1, "local"), FED_PATTERN_REGEX, "meet\\.[a-z]+@example\\.com");
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:meet.bob@example.com"), FED_ROUTE_OK);
    assert_int_equal(decide("INVITE", "local", "sip:MEET.BOB@example.com"), FED_ROUTE_OK);
    assert_int_equal(decide("INVITE", "local", "sip:xmeet.bob@example.com"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(decide("INVITE", "local", "sip:meet.bob@example.com.evil"),
                     FED_ROUTE_NO_ROUTE);
    assert_int_equal(decide("INVITE", "local", "sip:meet.b0b@example.com"), FED_ROUTE_NO_ROUTE);

    /* an alternation stays inside the anchors */
    snprintf(fx.conf.rules[0].pattern, FED_PATTERN_BUF, "a@example\\.com|b@example\\.com");
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:b@example.com"), FED_ROUTE_OK);
    assert_int_equal(decide("INVITE", "local", "sip:b@example.com2"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(decide("INVITE", "local", "sip:xa@example.com"), FED_ROUTE_NO_ROUTE);
}

static void regex_replace_substitutes_back_references(void **state)
{
    (void)state;
    struct fed_rule_conf *r = add_rule("swap", 1, "local");
    set_pattern(r, FED_PATTERN_REGEX, "([a-z]+)\\.([a-z]+)@(old|legacy)\\.example\\.com");
    set_replace(r, "\\2-\\1@vc.example.com");
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:alice.smith@legacy.example.com"), FED_ROUTE_OK);
    assert_string_equal(fx.res.alias, "smith-alice@vc.example.com");
    assert_string_equal(fx.res.targets[0].domain, "vc.example.com");

    /* \0 is the whole alias, \\ a backslash, an unmatched group is empty */
    set_pattern(r, FED_PATTERN_REGEX, "(x)?([a-z]+)@([a-z.]+)");
    set_replace(r, "\\1\\2.\\3\\\\@example.com<\\0>");
    r->target[0] = '\0';
    r->on_match = FED_ON_MATCH_CONTINUE;
    compile();
    decide("INVITE", "local", "sip:bob@partner.example");
    assert_string_equal(fx.res.alias, "bob.partner.example\\@example.com<bob@partner.example>");
    assert_int_equal(outcome_of("swap"), FED_RULE_REWRITTEN);
}

static void a_replacement_is_seen_by_later_rules(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    struct fed_rule_conf *r = add_rule("normalise", 1, "");
    set_pattern(r, FED_PATTERN_REGEX, "(.*)@EXAMPLE\\.ORG");
    set_replace(r, "\\1@example.com");
    r->on_match = FED_ON_MATCH_CONTINUE;
    set_pattern(add_rule("rooms", 2, "local"), FED_PATTERN_EXACT, "meet@example.com");
    compile();
    assert_int_equal(decide("INVITE", "dns", "sip:meet@example.org"), FED_ROUTE_OK);
    assert_int_equal(outcome_of("normalise"), FED_RULE_REWRITTEN);
    assert_int_equal(outcome_of("rooms"), FED_RULE_MATCHED);
    assert_string_equal(fx.res.targets[0].alias, "meet@example.com");
}

static void no_matching_rule_gives_a_404_no_route(void **state)
{
    (void)state;
    set_pattern(add_rule("rooms", 1, "local"), FED_PATTERN_PREFIX, "meet.");
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@example.com"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(fx.res.status, FED_ROUTE_NO_ROUTE);
    assert_int_equal(fx.res.sip_status, 404);
    assert_string_equal(fx.res.sip_reason, "Not Found");
    assert_int_equal(fx.res.diag_code, 0);
    assert_string_equal(fx.res.diag, "");
    assert_int_equal(fx.res.n_targets, 0);
    assert_non_null(strstr(fx.res.detail, "bob@example.com"));

    /* no rules at all: nothing is routed */
    fed_route_conf_free(&fx.conf);
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:meet.bob@example.com"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(fx.res.n_tried, 0);
}

static void disabled_rules_are_not_tried(void **state)
{
    (void)state;
    any_alias(add_rule("off", 1, "local"))->enabled = 0;
    any_alias(add_rule("on", 2, "local"));
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:meet@example.com"), FED_ROUTE_OK);
    assert_int_equal(outcome_of("off"), -1);
    assert_string_equal(fx.res.targets[0].rule, "on");
}

static void local_target_needs_one_of_our_domains(void **state)
{
    (void)state;
    allow("partner.example");
    any_alias(add_rule("rooms", 1, "local"))->on_match = FED_ON_MATCH_CONTINUE;
    compile();
    assert_int_equal(decide_full("INVITE", "dns", "sip:meet@VC.Example.com.", "partner.example",
                                 FED_ARRIVAL_MTLS),
                     FED_ROUTE_OK);
    assert_string_equal(fx.res.targets[0].zone, "local");
    assert_string_equal(fx.res.targets[0].domain, "vc.example.com");
    assert_int_equal(decide("INVITE", "local", "sip:meet@sub.vc.example.com"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(outcome_of("rooms"), FED_RULE_NOT_LOCAL);
}

static void duplicate_targets_are_added_once_and_the_list_is_bounded(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    any_alias(add_rule("a", 1, "dns"))->on_match = FED_ON_MATCH_CONTINUE;
    any_alias(add_rule("b", 2, "dns"))->on_match = FED_ON_MATCH_CONTINUE;
    for (int i = 0; i < FED_ROUTE_MAX_TARGETS + 2; i++) {
        char name[16], user[16];
        snprintf(name, sizeof name, "r%d", i);
        snprintf(user, sizeof user, "u%d", i);
        struct fed_rule_conf *r = any_alias(add_rule(name, 10 + (uint32_t)i, "dns"));
        r->mode = FED_MODE_PATTERN;
        r->pattern_type = FED_PATTERN_REGEX;
        snprintf(r->pattern, sizeof r->pattern, "[^@]*@(.*)");
        set_replace(r, "");
        snprintf(r->replace, sizeof r->replace, "%s@\\1", user);
        r->on_match = FED_ON_MATCH_CONTINUE;
    }
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@partner.example"), FED_ROUTE_OK);
    assert_int_equal(outcome_of("a"), FED_RULE_MATCHED);
    assert_int_equal(outcome_of("b"), FED_RULE_DUPLICATE);
    assert_int_equal(fx.res.n_targets, FED_ROUTE_MAX_TARGETS);
    assert_true(fx.res.targets_truncated);
    assert_int_equal(outcome_of("r7"), FED_RULE_TARGETS_FULL);
    assert_string_equal(fx.res.targets[1].alias, "u0@partner.example");
}

static void a_replacement_longer_than_an_alias_is_refused(void **state)
{
    (void)state;
    char big[FED_PATTERN_BUF];
    memset(big, 'x', 200);
    big[200] = '\0';
    struct fed_rule_conf *r = add_rule("grow", 1, "local");
    set_pattern(r, FED_PATTERN_REGEX, "(.*)");
    char rep[FED_PATTERN_BUF];
    snprintf(rep, sizeof rep, "%.200s\\1", big);
    set_replace(r, rep);
    compile();
    char ruri[128];
    snprintf(ruri, sizeof ruri, "sip:%.50s@example.com", big);
    assert_int_equal(decide("INVITE", "local", ruri), FED_ROUTE_NO_ROUTE);
    assert_int_equal(outcome_of("grow"), FED_RULE_TOO_LONG);
    /* a shorter alias fits */
    assert_int_equal(decide("INVITE", "local", "sip:a@b.c"), FED_ROUTE_NO_ROUTE);
    assert_int_equal(outcome_of("grow"), FED_RULE_NOT_LOCAL);
}

/* ---- privacy and static routes ---------------------------------------------------------- */

static void default_privacy_refuses_every_federated_domain_with_1027(void **state)
{
    (void)state;
    any_alias(add_rule("out", 1, "dns"));
    compile();
    assert_int_equal(decide("MESSAGE", "local", "sip:bob@partner.example"), FED_ROUTE_REFUSED);
    assert_int_equal(fx.res.sip_status, 403);
    assert_int_equal(fx.res.diag_code, 1027);
    assert_string_equal(fx.res.diag_reason,
                        "Cannot route this type of SIP request to or from federated partners");
    assert_string_equal(fx.res.diag, "1027;reason=\"Cannot route this type of SIP request to or "
                                     "from federated partners\";domain=\"partner.example\";"
                                     "source=\"sip.example.com\"");
    assert_int_equal(outcome_of("out"), FED_RULE_REFUSED);

    /* inbound from the DNS zone: the From domain is refused before any rule */
    any_alias(add_rule("in", 2, "local"));
    compile();
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:meet@example.com", "partner.example", FED_ARRIVAL_MTLS),
        FED_ROUTE_REFUSED);
    assert_int_equal(fx.res.n_tried, 0);
    assert_non_null(strstr(fx.res.diag, "domain=\"partner.example\""));
}

static void allow_list_admits_only_listed_domains_ignoring_case(void **state)
{
    (void)state;
    allow("Partner.Example");
    any_alias(add_rule("out", 1, "dns"));
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@PARTNER.example"), FED_ROUTE_OK);
    assert_int_equal(fx.res.targets[0].kind, FED_ZONE_KIND_DNS);
    assert_int_equal(decide("INVITE", "local", "sip:bob@sub.partner.example"), FED_ROUTE_REFUSED);
    assert_int_equal(decide("INVITE", "local", "sip:bob@other.example"), FED_ROUTE_REFUSED);
    assert_int_equal(decide_full("INVITE", "dns", "sip:bob@partner.example", "partner.example.",
                                 FED_ARRIVAL_MTLS),
                     FED_ROUTE_OK);
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:bob@partner.example", "evil.example", FED_ARRIVAL_MTLS),
        FED_ROUTE_REFUSED);
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:bob@partner.example", NULL, FED_ARRIVAL_MTLS),
        FED_ROUTE_REFUSED);
    /* what is not a name is not echoed in the header, which still says why */
    char junk[240];
    memset(junk, '\\', sizeof junk - 1);
    junk[sizeof junk - 1] = '\0';
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:bob@partner.example", junk, FED_ARRIVAL_MTLS),
        FED_ROUTE_REFUSED);
    assert_int_equal(strncmp(fx.res.diag, "1027;reason=\"Cannot route", 25), 0);
    assert_null(strstr(fx.res.diag, "domain="));
    assert_non_null(strstr(fx.res.detail, "(not a name)"));
}

static void deny_list_refuses_only_listed_domains(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_DENY_LIST;
    deny("blocked.example");
    any_alias(add_rule("out", 1, "dns"));
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@Blocked.Example"), FED_ROUTE_REFUSED);
    assert_int_equal(fx.res.diag_code, 1027);
    assert_int_equal(decide("INVITE", "local", "sip:bob@open.example"), FED_ROUTE_OK);
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:bob@open.example", "blocked.example", FED_ARRIVAL_MTLS),
        FED_ROUTE_REFUSED);
}

static void privacy_off_admits_every_domain(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    any_alias(add_rule("out", 1, "dns"));
    compile();
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:bob@any.example", "whoever.example", FED_ARRIVAL_MTLS),
        FED_ROUTE_OK);
    assert_int_equal(decide("INVITE", "local", "sip:bob@192.0.2.77"), FED_ROUTE_OK);
    assert_string_equal(fx.res.targets[0].domain, "192.0.2.77");
}

static void a_refusal_only_answers_when_no_other_target_is_left(void **state)
{
    (void)state;
    allow("partner.example");
    add_neighbour("vcs", "192.0.2.5");
    any_alias(add_rule("dns", 1, "dns"))->on_match = FED_ON_MATCH_CONTINUE;
    any_alias(add_rule("vcs", 2, "vcs"));
    compile();
    /* neighbour zones are trusted by configuration: no privacy check there */
    assert_int_equal(decide("INVITE", "local", "sip:bob@other.example"), FED_ROUTE_OK);
    assert_int_equal(outcome_of("dns"), FED_RULE_REFUSED);
    assert_int_equal(fx.res.n_targets, 1);
    assert_string_equal(fx.res.targets[0].zone, "vcs");
    assert_true(fx.res.targets[0].no_dns_fallback);
    assert_int_equal(fx.res.targets[0].n_addrs, 1);
    assert_int_equal(fx.res.targets[0].addrs[0].port, 5061);
}

static void static_route_domains_are_implicitly_allowed_and_never_fall_back_to_dns(void **state)
{
    (void)state;
    struct fed_static_route_conf *s =
        add_static("Static.Example", "198.51.100.7:5061", "edge.static.example");
    (void)s;
    any_alias(add_rule("out", 1, "dns"));
    compile();
    /* allow list empty, yet the static route's domain is reachable */
    assert_int_equal(decide("INVITE", "local", "sip:bob@static.example"), FED_ROUTE_OK);
    const struct fed_route_target *t = &fx.res.targets[0];
    assert_int_equal(t->kind, FED_ZONE_KIND_STATIC);
    assert_string_equal(t->zone, "dns");
    assert_true(t->no_dns_fallback);
    assert_false(t->strict_naming);
    assert_false(t->fallback_hosts);
    assert_int_equal(t->n_addrs, 2);
    assert_string_equal(t->addrs[0].host, "198.51.100.7");
    assert_int_equal(t->addrs[0].port, 5061);
    assert_string_equal(t->addrs[1].host, "edge.static.example");
    assert_int_equal(t->addrs[1].port, 5061); /* static routes never use SRV */
    assert_int_equal(t->transport, FED_TP_TLS);
    struct fed_locate_opts steps[2];
    assert_int_equal(fed_route_locate_plan(t, 0, steps, 2), 0); /* an address as is */
    assert_int_equal(fed_route_locate_plan(t, 1, steps, 2), 1); /* A/AAAA only */
    assert_int_equal(steps[0].kind, FED_LOCATE_RFC3263);
    assert_int_equal(steps[0].port, 5061);

    /* inbound from that domain is allowed as well */
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:bob@static.example", "static.example", FED_ARRIVAL_MTLS),
        FED_ROUTE_OK);
    /* an ordinary domain is a DNS target without the flag */
    fx.conf.privacy = FED_PRIVACY_OFF;
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@dynamic.example"), FED_ROUTE_OK);
    assert_int_equal(fx.res.targets[0].kind, FED_ZONE_KIND_DNS);
    assert_false(fx.res.targets[0].no_dns_fallback);
    assert_null(fx.res.targets[0].addrs);
}

/* ---- security modes and inbound checks ------------------------------------------------- */

static void inbound_security_mode_requires_tls_and_client_certificates(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    struct fed_neighbour_conf *open = add_neighbour("plain", "192.0.2.8:5060");
    open->security = FED_SEC_NO_TLS;
    struct fed_neighbour_conf *opt = add_neighbour("optional", "192.0.2.9");
    opt->security = FED_SEC_TLS_OPTIONAL;
    opt->client_certificates = 0;
    any_alias(add_rule("in", 1, "local"));
    compile();

    /* the DNS zone: TLS required, client certificates required (the defaults) */
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:meet@example.com", "p.example", FED_ARRIVAL_TCP),
        FED_ROUTE_REFUSED);
    assert_non_null(strstr(fx.res.detail, "requires TLS"));
    assert_int_equal(fx.res.diag_code, 1027);
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:meet@example.com", "p.example", FED_ARRIVAL_TLS),
        FED_ROUTE_REFUSED);
    assert_non_null(strstr(fx.res.detail, "client certificate"));
    assert_int_equal(
        decide_full("INVITE", "dns", "sip:meet@example.com", "p.example", FED_ARRIVAL_MTLS),
        FED_ROUTE_OK);

    assert_int_equal(
        decide_full("INVITE", "plain", "sip:meet@example.com", "p.example", FED_ARRIVAL_UDP),
        FED_ROUTE_OK);
    assert_int_equal(
        decide_full("INVITE", "optional", "sip:meet@example.com", "p.example", FED_ARRIVAL_TCP),
        FED_ROUTE_OK);
    assert_int_equal(
        decide_full("INVITE", "optional", "sip:meet@example.com", "p.example", FED_ARRIVAL_TLS),
        FED_ROUTE_OK);
    /* local requests are not checked */
    assert_int_equal(
        decide_full("INVITE", "local", "sip:meet@example.com", NULL, FED_ARRIVAL_UNKNOWN),
        FED_ROUTE_OK);
}

static void targets_carry_their_zone_security_and_dns_settings(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    fx.conf.dns.security = FED_SEC_TLS_OPTIONAL;
    fx.conf.dns.strict_naming = 0;
    fx.conf.dns.fallback_hosts = 1;
    fx.conf.dns.srv_mode = FED_SRV_MICROSOFT;
    struct fed_neighbour_conf *n = add_neighbour("udp-gw", "gw.example.net");
    n->security = FED_SEC_NO_TLS;
    n->transport = FED_TP_UDP;
    n->srv_mode = FED_SRV_MICROSOFT;
    any_alias(add_rule("dns", 1, "dns"))->on_match = FED_ON_MATCH_CONTINUE;
    any_alias(add_rule("gw", 2, "udp-gw"));
    compile();
    assert_int_equal(decide("INVITE", "local", "sip:bob@p.example"), FED_ROUTE_OK);
    const struct fed_route_target *d = &fx.res.targets[0], *g = &fx.res.targets[1];
    assert_int_equal(d->security, FED_SEC_TLS_OPTIONAL);
    assert_true(d->client_certificates);
    assert_false(d->strict_naming);
    assert_true(d->fallback_hosts);
    assert_int_equal(d->srv_mode, FED_SRV_MICROSOFT);
    assert_int_equal(d->transport, FED_TP_TLS);
    assert_true(fed_route_transport_allowed(d, FED_TP_TLS));
    assert_true(fed_route_transport_allowed(d, FED_TP_TCP));
    assert_false(fed_route_transport_allowed(d, FED_TP_UDP));

    struct fed_locate_opts steps[3];
    assert_int_equal(fed_route_locate_plan(d, 0, steps, 3), 2);
    assert_int_equal(steps[0].kind, FED_LOCATE_FEDERATION);
    assert_false(steps[0].strict_naming);
    assert_int_equal(steps[0].fallback, FED_FALLBACK_SIP);
    assert_int_equal(steps[0].srv_mode, FED_SRV_MICROSOFT);
    assert_int_equal(steps[1].kind, FED_LOCATE_RFC3263);
    assert_false(steps[1].tls_only);

    assert_int_equal(g->transport, FED_TP_UDP);
    assert_false(g->client_certificates);
    assert_false(fed_route_transport_allowed(g, FED_TP_TLS));
    assert_true(fed_route_transport_allowed(g, FED_TP_UDP));
    assert_int_equal(g->addrs[0].port, 0); /* a host name without port: SRV */
    assert_int_equal(fed_route_locate_plan(g, 0, steps, 3), 1);
    assert_int_equal(steps[0].kind, FED_LOCATE_RFC3263);
    assert_int_equal(steps[0].port, 0);
    assert_int_equal(fed_route_locate_plan(g, 1, steps, 3), 0);

    /* TLS required: federation SRV first, then _sips._tcp only */
    fx.conf.dns.security = FED_SEC_TLS_REQUIRED;
    fx.conf.dns.strict_naming = 1;
    compile();
    decide("INVITE", "local", "sip:bob@p.example");
    assert_int_equal(fed_route_locate_plan(&fx.res.targets[0], 0, steps, 3), 2);
    assert_true(steps[0].strict_naming);
    assert_true(steps[1].tls_only);
    assert_int_equal(fed_route_locate_plan(&fx.res.targets[0], 0, steps, 1), 1);
    assert_false(fed_route_transport_allowed(&fx.res.targets[0], FED_TP_TCP));

    /* no TLS: RFC 3263 alone */
    fx.conf.dns.security = FED_SEC_NO_TLS;
    fx.conf.dns.client_certificates = FED_ROUTE_AUTO;
    compile();
    decide("INVITE", "local", "sip:bob@p.example");
    assert_int_equal(fed_route_locate_plan(&fx.res.targets[0], 0, steps, 3), 1);
    assert_int_equal(steps[0].kind, FED_LOCATE_RFC3263);
    assert_int_equal(fx.res.targets[0].transport, FED_TP_TCP);
    assert_false(fx.res.targets[0].client_certificates);
}

/* ---- requests ------------------------------------------------------------------------ */

static void in_dialog_requests_are_not_routed_by_rules(void **state)
{
    (void)state;
    any_alias(add_rule("all", 1, "local"));
    compile();
    struct fed_route_request req = {.method = "BYE",
                                    .method_len = FED_NAME_NUL,
                                    .source_zone = "dns",
                                    .ruri = "sip:meet@example.com",
                                    .ruri_len = FED_NAME_NUL,
                                    .in_dialog = true};
    assert_int_equal(fed_route_decide(fx.router, &req, &fx.res), FED_ROUTE_IN_DIALOG);
    assert_int_equal(fx.res.n_tried, 0);
    assert_int_equal(fx.res.n_targets, 0);
    assert_int_equal(fx.res.sip_status, 0);
    assert_non_null(strstr(fx.res.detail, "in-dialog: not routed by rules"));
}

static void request_uri_forms_are_parsed_into_an_alias(void **state)
{
    (void)state;
    fx.conf.privacy = FED_PRIVACY_OFF;
    any_alias(add_rule("all", 1, "dns"));
    compile();
    static const struct {
        const char *ruri, *alias;
    } ok[] = {
        {"sip:Bob@Partner.Example", "Bob@partner.example"},
        {"SIPS:bob@partner.example:5061;transport=tls", "bob@partner.example"},
        {"bob@partner.example", "bob@partner.example"},
        {"sip:bob:secret@partner.example", "bob@partner.example"},
        {"sip:+1555;phone-context=x@gw.example;user=phone", "+1555;phone-context=x@gw.example"},
        {"sip:partner.example", "partner.example"},
        {"partner.example:5061", "partner.example"},
        {"sip:bob@[2001:db8::1]:5061", "bob@[2001:db8::1]"},
        {"sip:bob@partner.example?subject=x", "bob@partner.example"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        if (decide("INVITE", "local", ok[i].ruri) != FED_ROUTE_OK)
            fail_msg("%s: %s (%s)", ok[i].ruri, fed_route_status_str(fx.res.status), fx.res.detail);
        assert_string_equal(fx.res.alias, ok[i].alias);
    }
    static const struct {
        const char *ruri;
        int status;
    } bad[] = {
        {"", 400},
        {"sip:", 400},
        {"sip:@partner.example", 400},
        {"sip:bob@", 400},
        {"sip:bob@part ner.example", 400},
        {"tel:+15551234", 416},
        {"im:bob@partner.example", 416},
        {"sip:bob@[2001:db8::1", 400},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(decide("INVITE", "local", bad[i].ruri), FED_ROUTE_BAD_REQUEST);
        assert_int_equal(fx.res.sip_status, bad[i].status);
        assert_string_equal(fx.res.alias, "");
    }
    char longer[400] = "sip:";
    memset(longer + 4, 'a', 300);
    snprintf(longer + 304, sizeof longer - 304, "@partner.example");
    assert_int_equal(decide("INVITE", "local", longer), FED_ROUTE_BAD_REQUEST);
    assert_int_equal(fx.res.sip_status, 414);

    /* views need no NUL */
    const char *buf = "sip:bob@partner.exampleGARBAGE";
    struct fed_route_request req = {.method = "INVITEX",
                                    .method_len = 6,
                                    .source_zone = "local",
                                    .ruri = buf,
                                    .ruri_len = strlen(buf) - 7};
    assert_int_equal(fed_route_decide(fx.router, &req, &fx.res), FED_ROUTE_OK);
    assert_string_equal(fx.res.alias, "bob@partner.example");
}

static void bad_arguments_and_unknown_zones_are_errors(void **state)
{
    (void)state;
    compile();
    struct fed_route_request req = {
        .source_zone = "nowhere", .ruri = "sip:a@b.example", .ruri_len = FED_NAME_NUL};
    assert_int_equal(fed_route_decide(fx.router, &req, &fx.res), FED_ROUTE_ERR_ARG);
    assert_int_equal(fx.res.sip_status, 500);
    assert_null(fx.res.source_zone);
    req.source_zone = "any"; /* a rule source, never a request's */
    assert_int_equal(fed_route_decide(fx.router, &req, &fx.res), FED_ROUTE_ERR_ARG);
    assert_int_equal(fed_route_decide(NULL, &req, &fx.res), FED_ROUTE_ERR_ARG);
    assert_int_equal(fed_route_decide(fx.router, NULL, &fx.res), FED_ROUTE_ERR_ARG);
    assert_int_equal(fed_route_decide(fx.router, &req, NULL), FED_ROUTE_ERR_ARG);
    fed_router_free(NULL);
    fed_route_conf_free(NULL);
}

static void zone_for_address_finds_a_neighbour_by_its_ip(void **state)
{
    (void)state;
    struct fed_neighbour_conf *n = add_neighbour("vcs", "192.0.2.5:5061");
    assert_int_equal(fed_hostport_parse("[2001:DB8::5]:5062", &n->peers[1], NULL, 0), 0);
    assert_int_equal(fed_hostport_parse("vcs2.example.com:5061", &n->peers[2], NULL, 0), 0);
    n->n_peers = 3;
    compile();
    assert_string_equal(fed_router_zone_for_address(fx.router, "192.0.2.5"), "vcs");
    assert_string_equal(fed_router_zone_for_address(fx.router, "2001:db8::5"), "vcs");
    assert_null(fed_router_zone_for_address(fx.router, "192.0.2.6"));
    assert_null(fed_router_zone_for_address(fx.router, "vcs2.example.com"));
    assert_null(fed_router_zone_for_address(NULL, "192.0.2.5"));
}

/* ---- configuration checks ----------------------------------------------------------- */

struct problems {
    size_t n;
    char text[16][512];
};

static void collect(void *arg, const struct fed_conf_where *w, const char *problem)
{
    struct problems *p = arg;
    char field[160];
    if (p->n < 16)
        snprintf(p->text[p->n], sizeof p->text[0], "%s: %s",
                 fed_conf_where_str(w, field, sizeof field), problem);
    p->n++;
}

/* Asserts exactly one problem, starting with "field: " and containing `text`, and that
 * the router refuses the configuration with the same message. */
static void assert_one_problem(const char *field, const char *text)
{
    struct problems p = {0};
    size_t n = fed_route_conf_check(&fx.conf, collect, &p);
    if (n != 1) {
        for (size_t i = 0; i < p.n && i < 16; i++)
            print_message("  %s\n", p.text[i]);
        fail_msg("%zu problems, expected 1 (%s)", n, field);
    }
    if (strncmp(p.text[0], field, strlen(field)) != 0 || p.text[0][strlen(field)] != ':')
        fail_msg("expected field %s in '%s'", field, p.text[0]);
    if (!strstr(p.text[0], text))
        fail_msg("expected '%s' in '%s'", text, p.text[0]);
    char err[512];
    struct fed_router *r = fed_router_new(&fx.conf, NULL, err, sizeof err);
    assert_null(r);
    assert_string_equal(err, p.text[0]);
}

static void a_regex_that_does_not_compile_names_its_rule(void **state)
{
    (void)state;
    set_pattern(add_rule("ok", 1, "local"), FED_PATTERN_REGEX, "a+");
    set_pattern(add_rule("bad", 2, "local"), FED_PATTERN_REGEX, "meet(.*@example");
    assert_one_problem("search_rules[1].pattern", "not a POSIX extended regular expression");
}

static void back_references_in_patterns_and_missing_groups_are_refused(void **state)
{
    (void)state;
    set_pattern(add_rule("backref", 1, "local"), FED_PATTERN_REGEX, "(a*)*\\1@x");
    assert_one_problem("search_rules[0].pattern", "back-references");

    /* inside a bracket expression a backslash is literal */
    snprintf(fx.conf.rules[0].pattern, FED_PATTERN_BUF, "[\\1]+@x");
    assert_int_equal(fed_route_conf_check(&fx.conf, NULL, NULL), 0);

    set_pattern(&fx.conf.rules[0], FED_PATTERN_REGEX, "(a)(b)@x");
    set_replace(&fx.conf.rules[0], "\\3@x");
    assert_one_problem("search_rules[0].replace", "\\3: the pattern has 2 groups");

    set_pattern(&fx.conf.rules[0], FED_PATTERN_PREFIX, "a");
    set_replace(&fx.conf.rules[0], "\\1");
    assert_one_problem("search_rules[0].replace", "need pattern_type \"regex\"");

    set_replace(&fx.conf.rules[0], "x\\q");
    assert_one_problem("search_rules[0].replace", "\\q is not");
}

static void regexes_that_would_explode_when_compiled_are_refused(void **state)
{
    (void)state;
    char err[256], deep[128] = "";
    static const char *const adjacent[] = {"(@)*.++++++++++++++++++++++++++(.*)", "a**", "a+?",
                                           "a{2}{3}", "x)a++"};
    for (size_t i = 0; i < sizeof adjacent / sizeof adjacent[0]; i++) {
        assert_int_equal(
            fed_route_check_pattern(FED_PATTERN_REGEX, adjacent[i], NULL, err, sizeof err), -1);
        if (!strstr(err, "two repetition operators in a row"))
            fail_msg("%s: %s", adjacent[i], err);
    }
    /* nested '+' doubles at each level: 13 levels is beyond the bound */
    for (int i = 0; i < 13; i++)
        strcat(deep, "(");
    strcat(deep, "a");
    for (int i = 0; i < 13; i++)
        strcat(deep, "+)");
    const char *const big[] = {deep, "((a{50}){50}){3}", "a{32767}", "x)((b{99}){99})", "a{00000,010002}", "a{0000\\,010002}"};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        assert_int_equal(fed_route_check_pattern(FED_PATTERN_REGEX, big[i], NULL, err, sizeof err),
                         -1);
        if (!strstr(err, "too complex"))
            fail_msg("%s: %s", big[i], err);
    }
    /* ordinary patterns stay well inside */
    static const char *const fine[] = {"(a{50}){50}", "a+b+c+d+e+f+g+h+i+j+k+l+m+n+",
                                       "[+*?{]+@x\\.com", "a\\++@x", "((meet|vmr)\\.)?[a-z]+@.*"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        if (fed_route_check_pattern(FED_PATTERN_REGEX, fine[i], NULL, err, sizeof err) != 0)
            fail_msg("%s: %s", fine[i], err);
}

static void rule_shapes_that_cannot_work_are_refused(void **state)
{
    (void)state;
    struct fed_rule_conf *r = any_alias(add_rule("r", 1, "local"));
    set_replace(r, "x");
    assert_one_problem("search_rules[0].behaviour", "needs a pattern");

    r->behaviour = FED_BEHAVIOUR_LEAVE;
    r->replace[0] = '\0';
    snprintf(r->pattern, sizeof r->pattern, "meet");
    assert_one_problem("search_rules[0].pattern", "only with mode \"pattern\"");

    r->mode = FED_MODE_PATTERN;
    r->pattern[0] = '\0';
    assert_one_problem("search_rules[0].pattern", "required");

    snprintf(r->pattern, sizeof r->pattern, "meet");
    snprintf(r->replace, sizeof r->replace, "x");
    assert_one_problem("search_rules[0].replace", "only with behaviour \"replace\"");

    r->replace[0] = '\0';
    r->target[0] = '\0';
    assert_one_problem("search_rules[0].target", "required");

    snprintf(r->target, sizeof r->target, "nowhere");
    assert_one_problem("search_rules[0].target", "unknown zone \"nowhere\"");

    snprintf(r->target, sizeof r->target, "any");
    assert_one_problem("search_rules[0].target", "unknown zone \"any\"");

    snprintf(r->target, sizeof r->target, "local");
    snprintf(r->source, sizeof r->source, "elsewhere");
    assert_one_problem("search_rules[0].source", "unknown zone \"elsewhere\"");

    snprintf(r->source, sizeof r->source, "any");
    r->priority = 0;
    assert_one_problem("search_rules[0].priority", "1..65534");

    r->priority = 5;
    any_alias(add_rule("R", 2, "local"));
    assert_one_problem("search_rules[1].name", "duplicate of search_rules[0]");
}

static void zone_names_must_be_unique_and_not_reserved(void **state)
{
    (void)state;
    add_neighbour("vcs", "192.0.2.5");
    add_neighbour("VCS", "192.0.2.6");
    assert_one_problem("zones.neighbours[1].name", "duplicate of zones.neighbours[0]");
    snprintf(fx.conf.neighbours[1].name, FED_ZONE_NAME_BUF, "dns");
    assert_one_problem("zones.neighbours[1].name", "reserved");
    snprintf(fx.conf.neighbours[1].name, FED_ZONE_NAME_BUF, "vcs-2");
    fx.conf.neighbours[1].n_peers = 0;
    assert_one_problem("zones.neighbours[1].peers", "at least one");
}

static void security_mode_and_transport_must_agree(void **state)
{
    (void)state;
    struct fed_neighbour_conf *n = add_neighbour("gw", "192.0.2.5");
    n->transport = FED_TP_TCP;
    assert_one_problem("zones.neighbours[0].transport", "must be \"tls\"");
    n->security = FED_SEC_NO_TLS;
    n->transport = FED_TP_TLS;
    assert_one_problem("zones.neighbours[0].transport", "contradicts");
    n->transport = FED_TP_UDP;
    n->client_certificates = 1;
    assert_one_problem("zones.neighbours[0].client_certificates", "needs TLS");
    n->client_certificates = FED_ROUTE_AUTO;
    fx.conf.dns.security = FED_SEC_NO_TLS;
    fx.conf.dns.client_certificates = 1;
    assert_one_problem("zones.dns.client_certificates", "needs TLS");
}

static void privacy_lists_take_exact_names_and_never_the_same_name_twice(void **state)
{
    (void)state;
    allow("*.partner.example");
    assert_one_problem("federation.allow[0]", "no wildcards or regular expressions");
    snprintf(fx.conf.allow[0], FED_NAME_BUF, "partner\\.example");
    assert_one_problem("federation.allow[0]", "no wildcards");
    snprintf(fx.conf.allow[0], FED_NAME_BUF, "partner.example");
    allow("other.example");
    deny("Partner.Example");
    assert_one_problem("federation.deny[0]", "also in federation.allow[0]");
    snprintf(fx.conf.deny[0], FED_NAME_BUF, "static.example");
    add_static("static.example", "192.0.2.7", NULL);
    assert_one_problem("federation.deny[0]", "has a static route");
    snprintf(fx.conf.deny[0], FED_NAME_BUF, "blocked.example");
    allow("OTHER.example");
    assert_one_problem("federation.allow[2]", "duplicate of federation.allow[1]");
    fx.conf.n_allow = 2;
    add_static("STATIC.example", "192.0.2.8", NULL);
    assert_one_problem("zones.static_routes[1].domain", "duplicate of zones.static_routes[0]");
}

static void check_helpers_explain_their_verdicts(void **state)
{
    (void)state;
    char err[256];
    size_t groups = 99;
    assert_int_equal(
        fed_route_check_pattern(FED_PATTERN_REGEX, "(a)(b(c))", &groups, err, sizeof err), 0);
    assert_int_equal(groups, 3);
    assert_int_equal(fed_route_check_pattern(FED_PATTERN_EXACT, "", NULL, err, sizeof err), -1);
    assert_string_equal(err, "must not be empty");
    assert_int_equal(fed_route_check_replace(FED_PATTERN_REGEX, "\\", 1, err, sizeof err), -1);
    assert_non_null(strstr(err, "lone backslash"));
    assert_int_equal(fed_route_check_list_name("example.com", err, sizeof err), 0);
    assert_int_equal(fed_route_check_list_name("exa mple.com", err, sizeof err), -1);

    struct fed_hostport hp;
    assert_int_equal(fed_hostport_parse("Edge.Example.COM:5061", &hp, err, sizeof err), 0);
    assert_string_equal(hp.host, "edge.example.com");
    assert_int_equal(hp.port, 5061);
    assert_false(hp.is_ip);
    assert_int_equal(fed_hostport_parse("2001:db8::9", &hp, err, sizeof err), 0);
    assert_true(hp.is_ip);
    assert_int_equal(hp.port, 0);
    assert_int_equal(fed_hostport_parse("[2001:db8::9]:5061", &hp, err, sizeof err), 0);
    assert_string_equal(hp.host, "2001:db8::9");
    static const char *const bad[] = {
        "",         "host:0", "host:65536", "host:",       "*.x.com:50", "[::1",
        "[x]:5061", "a b:1",  "[::1]5061",  "192.0.2.300", "h:12a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (fed_hostport_parse(bad[i], &hp, err, sizeof err) == 0)
            fail_msg("'%s' parsed", bad[i]);

    struct fed_conf_where w = {"search_rules", 3, "pattern", -1};
    char field[64];
    assert_string_equal(fed_conf_where_str(&w, field, sizeof field), "search_rules[3].pattern");
    w = (struct fed_conf_where){"federation", -1, "allow", 2};
    assert_string_equal(fed_conf_where_str(&w, field, sizeof field), "federation.allow[2]");
    assert_string_equal(fed_conf_where_str(&w, field, 8), "federat");
}

static void names_of_things_are_stable(void **state)
{
    (void)state;
    assert_string_equal(fed_route_status_str(FED_ROUTE_REFUSED), "refused");
    assert_string_equal(fed_route_status_str(FED_ROUTE_ERR_ARG), "error");
    assert_string_equal(fed_rule_outcome_str(FED_RULE_SKIPPED_SOURCE), "skipped_source");
    assert_string_equal(fed_rule_outcome_str((fed_rule_outcome_t)99), "unknown");
    assert_string_equal(fed_zone_kind_str(FED_ZONE_KIND_STATIC), "static");
    assert_string_equal(fed_security_str(FED_SEC_NO_TLS), "no-tls");
    assert_string_equal(fed_req_type_str(FED_REQ_IMP), "imp");
    assert_string_equal(fed_privacy_str(FED_PRIVACY_ALLOW_LIST), "allow-list");
}

/* ---- workers ---------------------------------------------------------------------------- */

struct worker_arg {
    const struct fed_router *router;
    unsigned worker;
    int failures;
};

static void *worker_main(void *p)
{
    struct worker_arg *a = p;
    struct fed_route_result *res = malloc(sizeof *res);
    if (!res) {
        a->failures = -1;
        return NULL;
    }
    for (int i = 0; i < 2000; i++) {
        char ruri[64];
        snprintf(ruri, sizeof ruri, "sip:u%d.%u@legacy.example.com", i, a->worker);
        struct fed_route_request req = {.method = "INVITE",
                                        .method_len = FED_NAME_NUL,
                                        .source_zone = "local",
                                        .ruri = ruri,
                                        .ruri_len = FED_NAME_NUL,
                                        .worker = a->worker};
        char want[64];
        snprintf(want, sizeof want, "%u-u%d@vc.example.com", a->worker, i);
        if (fed_route_decide(a->router, &req, res) != FED_ROUTE_OK ||
            strcmp(res->targets[0].alias, want) != 0)
            a->failures++;
    }
    free(res);
    return NULL;
}

static void workers_decide_at_once_on_one_router(void **state)
{
    (void)state;
    struct fed_rule_conf *r = add_rule("swap", 1, "local");
    set_pattern(r, FED_PATTERN_REGEX, "([a-z0-9]+)\\.([0-9]+)@legacy\\.example\\.com");
    set_replace(r, "\\2-\\1@vc.example.com");
    compile();
    enum { N = 3 }; /* one more thread than compiled copies: worker 2 uses copy 0 */
    pthread_t th[N];
    struct worker_arg args[N];
    for (unsigned i = 0; i < N; i++) {
        args[i] = (struct worker_arg){.router = fx.router, .worker = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &args[i]), 0);
    }
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(rules_are_tried_in_priority_order_and_ties_keep_config_order),
        T(stop_ends_the_search_and_continue_adds_more_targets),
        T(stop_applies_even_when_the_matching_rule_gives_no_target),
        T(rules_for_another_source_zone_are_skipped),
        T(request_types_separate_calls_from_im_and_presence),
        T(exact_pattern_matches_the_whole_alias_ignoring_case),
        T(prefix_pattern_matches_the_start_and_replace_keeps_the_rest),
        T(regex_must_match_the_whole_alias),
        T(regex_replace_substitutes_back_references),
        T(a_replacement_is_seen_by_later_rules),
        T(no_matching_rule_gives_a_404_no_route),
        T(disabled_rules_are_not_tried),
        T(local_target_needs_one_of_our_domains),
        T(duplicate_targets_are_added_once_and_the_list_is_bounded),
        T(a_replacement_longer_than_an_alias_is_refused),
        T(default_privacy_refuses_every_federated_domain_with_1027),
        T(allow_list_admits_only_listed_domains_ignoring_case),
        T(deny_list_refuses_only_listed_domains),
        T(privacy_off_admits_every_domain),
        T(a_refusal_only_answers_when_no_other_target_is_left),
        T(static_route_domains_are_implicitly_allowed_and_never_fall_back_to_dns),
        T(inbound_security_mode_requires_tls_and_client_certificates),
        T(targets_carry_their_zone_security_and_dns_settings),
        T(in_dialog_requests_are_not_routed_by_rules),
        T(request_uri_forms_are_parsed_into_an_alias),
        T(bad_arguments_and_unknown_zones_are_errors),
        T(zone_for_address_finds_a_neighbour_by_its_ip),
        T(a_regex_that_does_not_compile_names_its_rule),
        T(back_references_in_patterns_and_missing_groups_are_refused),
        T(regexes_that_would_explode_when_compiled_are_refused),
        T(rule_shapes_that_cannot_work_are_refused),
        T(zone_names_must_be_unique_and_not_reserved),
        T(security_mode_and_transport_must_agree),
        T(privacy_lists_take_exact_names_and_never_the_same_name_twice),
        T(check_helpers_explain_their_verdicts),
        T(names_of_things_are_stable),
        T(workers_decide_at_once_on_one_router),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
