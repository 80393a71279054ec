/* The standalone (in-process) cluster store: placement, leases, drain, counts,
 * release, and the event-source contract (callbacks only from cl_store_run()).
 * Time is a fake clock the tests move by hand. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cl_store.h"

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
    return fake_now;
}

struct result {
    int calls;
    cl_status_t st;
    struct cl_claim claim;
    int64_t count;
    size_t n_nodes;
    char names[8][CL_NAME_MAX];
};

static void on_claim(void *arg, cl_status_t st, const struct cl_claim *c)
{
    struct result *r = arg;
    r->calls++;
    r->st = st;
    if (c)
        r->claim = *c;
    else
        memset(&r->claim, 0, sizeof r->claim);
}

static void on_count(void *arg, cl_status_t st, int64_t count)
{
    struct result *r = arg;
    r->calls++;
    r->st = st;
    r->count = count;
}

static void on_done(void *arg, cl_status_t st)
{
    struct result *r = arg;
    r->calls++;
    r->st = st;
}

static void on_nodes(void *arg, cl_status_t st, const struct cl_node_info *n, size_t count)
{
    struct result *r = arg;
    r->calls++;
    r->st = st;
    r->n_nodes = count;
    for (size_t i = 0; i < count && i < 8; i++)
        snprintf(r->names[i], sizeof r->names[i], "%s", n[i].name);
}

static struct cl_store *make_store(const char *name, const char *location, uint32_t load)
{
    struct cl_store_conf conf;
    cl_store_conf_defaults(&conf);
    snprintf(conf.self.name, sizeof conf.self.name, "%s", name);
    snprintf(conf.self.location, sizeof conf.self.location, "%s", location);
    snprintf(conf.self.sip_fqdn, sizeof conf.self.sip_fqdn, "%s.example.com", name);
    conf.self.load = load;
    conf.clock = fake_clock;
    char err[256];
    struct cl_store *s = cl_store_create(&conf, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    return s;
}

static void add_node(struct cl_store *s, const char *name, const char *location, uint32_t load,
                     uint32_t ttl)
{
    struct cl_node_info n = {.load = load};
    snprintf(n.name, sizeof n.name, "%s", name);
    snprintf(n.location, sizeof n.location, "%s", location);
    snprintf(n.sip_fqdn, sizeof n.sip_fqdn, "%s.example.com", name);
    snprintf(n.addresses, sizeof n.addresses, "192.0.2.%u", (unsigned)(load + 10));
    struct result r = {0};
    assert_int_equal(cl_store_heartbeat(s, &n, ttl, on_done, &r), CL_OK);
    cl_store_run(s);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.st, CL_OK);
}

/* Claims and runs the store once; returns the result. */
static struct result claim(struct cl_store *s, const char *conf, const char *location)
{
    struct result r = {0};
    assert_int_equal(cl_store_claim(s, conf, location, on_claim, &r), CL_OK);
    cl_store_run(s);
    assert_int_equal(r.calls, 1);
    return r;
}

static struct result count(struct cl_store *s, const char *conf, int delta)
{
    struct result r = {0};
    assert_int_equal(cl_store_count(s, conf, delta, on_count, &r), CL_OK);
    cl_store_run(s);
    assert_int_equal(r.calls, 1);
    return r;
}

static struct result release(struct cl_store *s, const char *conf)
{
    struct result r = {0};
    assert_int_equal(cl_store_release(s, conf, on_done, &r), CL_OK);
    cl_store_run(s);
    assert_int_equal(r.calls, 1);
    return r;
}

/* ---- placement --------------------------------------------------------------------- */

static void claim_places_on_the_least_loaded_live_node_of_the_location(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "east", 5);
    add_node(s, "b", "east", 1, 10000);
    add_node(s, "c", "west", 0, 10000);

    struct result r = claim(s, "room1@example.com", "east");
    assert_int_equal(r.st, CL_OK);
    assert_string_equal(r.claim.owner, "b");
    assert_true(r.claim.placed);
    assert_false(r.claim.mine);
    assert_true(r.claim.local);
    assert_string_equal(r.claim.owner_fqdn, "b.example.com");
    assert_string_equal(r.claim.owner_addresses, "192.0.2.11");

    r = claim(s, "room2@example.com", "west");
    assert_string_equal(r.claim.owner, "c");
    /* nobody lives in "north": the least loaded anywhere (c: 1, b: 2, a: 5) */
    r = claim(s, "room3@example.com", "north");
    assert_string_equal(r.claim.owner, "c");
    /* NULL: this node's own location; b (load 2) beats a (5) there */
    r = claim(s, "room4@example.com", NULL);
    assert_string_equal(r.claim.owner, "b");
    cl_store_free(s);
}

static void equal_loads_go_to_the_smaller_node_name(void **state)
{
    (void)state;
    struct cl_store *s = make_store("m", "", 3);
    add_node(s, "z", "", 3, 10000);
    add_node(s, "k", "", 3, 10000);
    assert_string_equal(claim(s, "x", "").claim.owner, "k");
    cl_store_free(s);
}

static void live_owner_keeps_its_conference_and_a_dead_ones_moves(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 10);
    add_node(s, "b", "", 0, 1000);
    struct result r = claim(s, "meet@example.test", "");
    assert_string_equal(r.claim.owner, "b");
    assert_true(r.claim.placed);

    fake_now += 500;
    r = claim(s, "meet@example.test", "");
    assert_string_equal(r.claim.owner, "b");
    assert_false(r.claim.placed);

    fake_now += 600; /* b's lease ran out: the next claim places it again */
    r = claim(s, "meet@example.test", "");
    assert_string_equal(r.claim.owner, "a");
    assert_true(r.claim.placed);
    assert_true(r.claim.mine);
    assert_int_equal(r.claim.count, 0);
    cl_store_free(s);
}

static void lookup_finds_live_owners_only_and_never_places(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 10);
    add_node(s, "b", "", 0, 1000);
    struct result r = {0};
    assert_int_equal(cl_store_lookup(s, "room", on_claim, &r), CL_OK);
    cl_store_run(s);
    assert_int_equal(r.st, CL_ERR_NOT_FOUND);

    claim(s, "room", "");
    memset(&r, 0, sizeof r);
    cl_store_lookup(s, "room", on_claim, &r);
    cl_store_run(s);
    assert_int_equal(r.st, CL_OK);
    assert_string_equal(r.claim.owner, "b");

    fake_now += 2000;
    memset(&r, 0, sizeof r);
    cl_store_lookup(s, "room", on_claim, &r);
    cl_store_run(s);
    assert_int_equal(r.st, CL_ERR_NOT_FOUND);
    cl_store_free(s);
}

static void draining_node_takes_no_new_conferences_but_keeps_its_own(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 0);
    assert_true(claim(s, "old", "").claim.mine);
    cl_store_set_draining(s, true);
    struct result r = claim(s, "new", "");
    assert_int_equal(r.st, CL_ERR_NO_NODE);
    assert_true(claim(s, "old", "").claim.mine);

    add_node(s, "b", "", 50, 10000);
    r = claim(s, "new", "");
    assert_int_equal(r.st, CL_OK);
    assert_string_equal(r.claim.owner, "b");

    cl_store_set_draining(s, false);
    assert_true(claim(s, "newer", "").claim.mine);
    cl_store_free(s);
}

static void placement_counts_towards_the_nodes_load(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 0);
    add_node(s, "b", "", 0, 100000);
    /* a and b start equal: placements alternate as each one adds load */
    assert_string_equal(claim(s, "c1", "").claim.owner, "a");
    assert_string_equal(claim(s, "c2", "").claim.owner, "b");
    assert_string_equal(claim(s, "c3", "").claim.owner, "a");
    assert_string_equal(claim(s, "c4", "").claim.owner, "b");
    /* a heartbeat reports the real load */
    cl_store_set_load(s, 10);
    assert_string_equal(claim(s, "c5", "").claim.owner, "b");
    cl_store_free(s);
}

/* ---- counts and release -------------------------------------------------------------- */

static void count_adds_and_never_goes_below_zero(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 0);
    assert_int_equal(count(s, "room", 1).st, CL_ERR_NOT_FOUND);
    claim(s, "room", "");
    assert_int_equal(count(s, "room", 1).count, 1);
    assert_int_equal(count(s, "room", 2).count, 3);
    assert_int_equal(count(s, "room", -1).count, 2);
    assert_int_equal(count(s, "room", -5).count, 0);
    struct result r = claim(s, "room", "");
    assert_int_equal(r.claim.count, 0);
    assert_int_equal(count(s, "room", 4).count, 4);
    assert_int_equal(claim(s, "room", "").claim.count, 4);
    cl_store_free(s);
}

static void release_forgets_only_this_nodes_conferences(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 100);
    add_node(s, "b", "", 0, 100000);
    assert_string_equal(claim(s, "theirs", "").claim.owner, "b");
    cl_store_set_load(s, 0);
    add_node(s, "b", "", 100, 100000);
    assert_true(claim(s, "ours", "").claim.mine);

    assert_int_equal(release(s, "theirs").st, CL_ERR_NOT_OWNER);
    assert_int_equal(release(s, "nobodys").st, CL_ERR_NOT_FOUND);
    assert_int_equal(release(s, "ours").st, CL_OK);
    assert_int_equal(release(s, "ours").st, CL_ERR_NOT_FOUND);
    struct cl_store_status st;
    cl_store_status(s, &st);
    assert_int_equal(st.conferences_local, 0);
    cl_store_free(s);
    cl_store_free(NULL);
}

/* ---- nodes ----------------------------------------------------------------------------- */

static void list_nodes_returns_live_nodes_sorted_by_name(void **state)
{
    (void)state;
    struct cl_store *s = make_store("m", "", 0);
    add_node(s, "z", "", 0, 1000);
    add_node(s, "b", "", 0, 5000);
    struct result r = {0};
    assert_int_equal(cl_store_list_nodes(s, on_nodes, &r), CL_OK);
    cl_store_run(s);
    assert_int_equal(r.n_nodes, 3);
    assert_string_equal(r.names[0], "b");
    assert_string_equal(r.names[1], "m");
    assert_string_equal(r.names[2], "z");

    fake_now += 2000;
    memset(&r, 0, sizeof r);
    cl_store_list_nodes(s, on_nodes, &r);
    cl_store_run(s);
    assert_int_equal(r.n_nodes, 2);
    assert_string_equal(r.names[0], "b");
    assert_string_equal(r.names[1], "m");
    cl_store_free(s);
}

/* ---- the event source ------------------------------------------------------------------- */

static void callbacks_run_from_cl_store_run_only_and_the_fd_says_so(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 0);
    cl_store_run(s);
    struct pollfd p = {.fd = cl_store_fd(s), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_true(cl_store_timeout_ms(s) > 0);

    struct result r = {0};
    assert_int_equal(cl_store_claim(s, "room", "", on_claim, &r), CL_OK);
    assert_int_equal(r.calls, 0);
    assert_int_equal(poll(&p, 1, 0), 1);
    assert_int_equal(cl_store_timeout_ms(s), 0);
    cl_store_run(s);
    assert_int_equal(r.calls, 1);
    assert_int_equal(poll(&p, 1, 0), 0);
    cl_store_run(s);
    assert_int_equal(r.calls, 1);
    cl_store_free(s);
}

static void bad_arguments_are_refused_without_a_callback(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 0);
    struct result r = {0};
    char longname[CL_CONF_MAX + 1];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(cl_store_claim(s, "", "", on_claim, &r), CL_ERR_INVAL);
    assert_int_equal(cl_store_claim(s, NULL, "", on_claim, &r), CL_ERR_INVAL);
    assert_int_equal(cl_store_claim(s, longname, "", on_claim, &r), CL_ERR_INVAL);
    assert_int_equal(cl_store_claim(NULL, "room", "", on_claim, &r), CL_ERR_INVAL);
    struct cl_node_info self = {.name = "a"};
    assert_int_equal(cl_store_heartbeat(s, &self, 1000, on_done, &r), CL_ERR_INVAL);
    cl_store_run(s);
    assert_int_equal(r.calls, 0);
    cl_store_free(s);
}

static void create_refuses_an_unusable_configuration(void **state)
{
    (void)state;
    struct cl_store_conf conf;
    char err[256];
    cl_store_conf_defaults(&conf);
    assert_null(cl_store_create(&conf, err, sizeof err));
    assert_non_null(strstr(err, "name"));

    snprintf(conf.self.name, sizeof conf.self.name, "a");
    conf.heartbeat_ms = conf.lease_ttl_ms;
    assert_null(cl_store_create(&conf, err, sizeof err));
    assert_non_null(strstr(err, "heartbeat"));

    cl_store_conf_defaults(&conf);
    snprintf(conf.self.name, sizeof conf.self.name, "a");
    conf.mode = CL_MODE_REDIS;
    assert_null(cl_store_create(&conf, err, sizeof err));
    snprintf(conf.redis, sizeof conf.redis, "redis.example.com:6379");
    assert_null(cl_store_create(&conf, err, sizeof err));
    assert_non_null(strstr(err, "not IP:port"));
    assert_null(cl_store_create(NULL, err, sizeof err));
}

static void standalone_status_is_never_degraded(void **state)
{
    (void)state;
    struct cl_store *s = make_store("a", "", 0);
    claim(s, "one", "");
    claim(s, "two", "");
    struct cl_store_status st;
    cl_store_status(s, &st);
    assert_int_equal(st.mode, CL_MODE_STANDALONE);
    assert_false(st.degraded);
    assert_int_equal(st.degraded_since_ms, 0);
    assert_int_equal(st.conferences_local, 2);
    cl_store_status(NULL, &st);
    assert_int_equal(st.conferences_local, 0);
    assert_string_equal(cl_status_str(CL_ERR_NO_NODE), "no live node can take it");
    cl_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(claim_places_on_the_least_loaded_live_node_of_the_location),
        cmocka_unit_test(equal_loads_go_to_the_smaller_node_name),
        cmocka_unit_test(live_owner_keeps_its_conference_and_a_dead_ones_moves),
        cmocka_unit_test(lookup_finds_live_owners_only_and_never_places),
        cmocka_unit_test(draining_node_takes_no_new_conferences_but_keeps_its_own),
        cmocka_unit_test(placement_counts_towards_the_nodes_load),
        cmocka_unit_test(count_adds_and_never_goes_below_zero),
        cmocka_unit_test(release_forgets_only_this_nodes_conferences),
        cmocka_unit_test(list_nodes_returns_live_nodes_sorted_by_name),
        cmocka_unit_test(callbacks_run_from_cl_store_run_only_and_the_fd_says_so),
        cmocka_unit_test(bad_arguments_are_refused_without_a_callback),
        cmocka_unit_test(create_refuses_an_unusable_configuration),
        cmocka_unit_test(standalone_status_is_never_degraded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
