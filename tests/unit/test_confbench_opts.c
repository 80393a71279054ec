/* confbench command line: options, targets, validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/confbench/cb_opts.c"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int parse(int argc, char *const argv[], cb_opts_t *o, char *err, size_t errlen)
{
    memset(err, 0, errlen);
    return cb_opts_parse(argc, argv, o, err, errlen);
}

static void defaults_describe_a_ten_second_udp_call_load_to_meet(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *argv[] = {"confbench", "127.0.0.1:5060"};
    assert_int_equal(parse(ARGC(argv), argv, &o, err, sizeof(err)), 0);
    assert_int_equal(o.scenario, CB_SCEN_CALL);
    assert_int_equal(o.transport, CB_TP_UDP);
    assert_string_equal(o.target.host, "127.0.0.1");
    assert_int_equal(o.target.port, 5060);
    assert_true(o.rate == 10.0);
    assert_int_equal(o.duration, 10);
    assert_string_equal(o.user, "meet");
    assert_int_equal(o.t1_ms, 500);
    assert_int_equal(o.timeout_ms, 64 * 500);
    assert_int_equal(cb_expected_code(&o), 200);
    assert_true(o.drain_s > o.timeout_ms / 1000);
}

static void long_short_and_equals_forms_set_the_same_options(void **state)
{
    (void)state;
    cb_opts_t a, b;
    char err[256];
    char *argv_a[] = {"confbench", "-t",    "tcp", "-r", "250.5", "-d",  "7",
                      "-j",        "2",     "-c",  "8",  "-m",    "300", "sip.example.test:5061",
                      "--hold",    "1500ms"};
    char *argv_b[] = {"confbench",       "--transport=tcp", "--rate",  "250.5",
                      "--duration=7s",   "--threads=2",     "--conns", "8",
                      "--max-calls=300", "--hold=1500ms",   "--",      "sip.example.test:5061"};
    assert_int_equal(parse(ARGC(argv_a), argv_a, &a, err, sizeof(err)), 0);
    assert_int_equal(parse(ARGC(argv_b), argv_b, &b, err, sizeof(err)), 0);
    assert_int_equal(a.transport, CB_TP_TCP);
    assert_int_equal(b.transport, CB_TP_TCP);
    assert_true(a.rate == 250.5 && b.rate == 250.5);
    assert_int_equal(a.duration, 7);
    assert_int_equal(b.duration, 7);
    assert_int_equal(a.threads, 2);
    assert_int_equal(b.conns, 8);
    assert_int_equal(a.max_calls, 300);
    assert_int_equal(a.hold_ms, 1500);
    assert_int_equal(b.hold_ms, 1500);
    assert_string_equal(a.target.host, b.target.host);
    assert_int_equal(a.target.port, 5061);
}

static void parsing_leaves_argv_untouched(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char a0[] = "confbench", a1[] = "--rate=5", a2[] = "example.test", a3[] = "-v";
    char *argv[] = {a0, a1, a2, a3};
    char *copy[] = {a0, a1, a2, a3};
    assert_int_equal(parse(ARGC(argv), argv, &o, err, sizeof(err)), 0);
    assert_memory_equal(argv, copy, sizeof(argv));
    assert_string_equal(a1, "--rate=5");
    assert_string_equal(a2, "example.test");
    assert_int_equal(o.verbose, 1);
}

static void unknown_options_and_missing_values_are_named_in_the_error(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *unknown[] = {"confbench", "--frobnicate", "x", "h:1"};
    assert_int_equal(parse(ARGC(unknown), unknown, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--frobnicate"));
    char *missing[] = {"confbench", "h:1", "--rate"};
    assert_int_equal(parse(ARGC(missing), missing, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--rate"));
    char *badrate[] = {"confbench", "h:1", "--rate", "fast"};
    assert_int_equal(parse(ARGC(badrate), badrate, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "fast"));
    char *notarget[] = {"confbench", "-r", "5"};
    assert_int_equal(parse(ARGC(notarget), notarget, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "target"));
    char *twotargets[] = {"confbench", "a:1", "b:2"};
    assert_int_equal(parse(ARGC(twotargets), twotargets, &o, err, sizeof(err)), -1);
    char *flagvalue[] = {"confbench", "a:1", "--media=yes"};
    assert_int_equal(parse(ARGC(flagvalue), flagvalue, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--media"));
}

static void targets_are_host_port_bracketed_ipv6_or_a_sip_domain(void **state)
{
    (void)state;
    cb_target_spec_t t;
    assert_int_equal(cb_target_parse("127.0.0.1:5061", &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_int_equal(t.port, 5061);
    assert_int_equal(cb_target_parse("[::1]:5060", &t), 0);
    assert_string_equal(t.host, "::1");
    assert_int_equal(t.port, 5060);
    assert_int_equal(cb_target_parse("example.com", &t), 0);
    assert_string_equal(t.host, "example.com");
    assert_int_equal(t.port, 0);
    assert_int_equal(cb_target_parse("sip:vc.example.com", &t), 0);
    assert_string_equal(t.host, "vc.example.com");
    static const char *const bad[] = {"",     ":5060", "h:0",   "h:65536", "h:12x",  "::1",
                                      "[::1", "[]:5",  "a b:5", "h:5:6",   "[::1]x", "u@h:5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cb_target_parse(bad[i], &t), -1);
}

static void handshake_scenario_implies_tls_with_a_connection_per_request(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *argv[] = {"confbench", "-s", "handshake", "h:5061", "--ca", "/x/ca.crt"};
    assert_int_equal(parse(ARGC(argv), argv, &o, err, sizeof(err)), 0);
    assert_int_equal(o.transport, CB_TP_TLS);
    assert_true(o.conn_per_call);
    assert_string_equal(o.ca, "/x/ca.crt");
    char *udp[] = {"confbench", "-s", "handshake", "-t", "udp", "h:5061"};
    assert_int_equal(parse(ARGC(udp), udp, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "tls"));
}

static void tls_options_without_tls_and_inconsistent_pairs_are_refused(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *ca_udp[] = {"confbench", "h:1", "--ca", "ca.crt"};
    assert_int_equal(parse(ARGC(ca_udp), ca_udp, &o, err, sizeof(err)), -1);
    char *cert_only[] = {"confbench", "-t", "tls", "h:1", "--cert", "c.crt"};
    assert_int_equal(parse(ARGC(cert_only), cert_only, &o, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--key"));
    char *media_opts[] = {"confbench", "-s", "options", "--media", "h:1"};
    assert_int_equal(parse(ARGC(media_opts), media_opts, &o, err, sizeof(err)), -1);
    char *cpc_udp[] = {"confbench", "--conn-per-call", "h:1"};
    assert_int_equal(parse(ARGC(cpc_udp), cpc_udp, &o, err, sizeof(err)), -1);
    char *ok[] = {"confbench", "-t", "TLS", "h:1", "--cert", "c", "--key", "k", "--sni", "s.x"};
    assert_int_equal(parse(ARGC(ok), ok, &o, err, sizeof(err)), 0);
    assert_string_equal(o.sni, "s.x");
}

static void ramp_takes_start_step_max_and_refuses_max_below_start(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *argv[] = {"confbench",   "h:1", "--ramp",      "100,50,400",
                    "--step-time", "3",   "--max-steps", "4"};
    assert_int_equal(parse(ARGC(argv), argv, &o, err, sizeof(err)), 0);
    assert_true(o.ramp.on);
    assert_true(o.ramp.start == 100 && o.ramp.step == 50 && o.ramp.max == 400);
    assert_int_equal(o.ramp.step_seconds, 3);
    assert_int_equal(o.ramp.max_steps, 4);
    static const char *const bad[] = {"100,50", "100,50,40", "a,b,c", "1,2,3,4", "100,0,200"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *b[] = {"confbench", "h:1", "--ramp", (char *)bad[i]};
        assert_int_equal(parse(ARGC(b), b, &o, err, sizeof(err)), -1);
    }
    char *with_count[] = {"confbench", "h:1", "--ramp", "1,1,2", "-n", "5"};
    assert_int_equal(parse(ARGC(with_count), with_count, &o, err, sizeof(err)), -1);
}

static void bind_lists_hold_addresses_only(void **state)
{
    (void)state;
    cb_opts_t o;
    cb_opts_defaults(&o);
    assert_int_equal(cb_binds_parse("127.0.0.2,127.0.0.3,::1", &o), 0);
    assert_int_equal(o.nbinds, 3);
    assert_string_equal(o.binds[1], "127.0.0.3");
    assert_string_equal(o.binds[2], "::1");
    assert_int_equal(cb_binds_parse("127.0.0.2,", &o), -1);
    assert_int_equal(cb_binds_parse(",127.0.0.2", &o), -1);
    assert_int_equal(cb_binds_parse("localhost", &o), -1);
    assert_int_equal(cb_binds_parse("", &o), -1);
}

static void srv_prefix_follows_the_transport_unless_overridden(void **state)
{
    (void)state;
    cb_opts_t o;
    cb_opts_defaults(&o);
    o.transport = CB_TP_UDP;
    assert_string_equal(cb_srv_prefix(&o), "_sip._udp");
    o.transport = CB_TP_TCP;
    assert_string_equal(cb_srv_prefix(&o), "_sip._tcp");
    o.transport = CB_TP_TLS;
    assert_string_equal(cb_srv_prefix(&o), "_sipfederationtls._tcp");
    strcpy(o.srv, "_sips._tcp");
    assert_string_equal(cb_srv_prefix(&o), "_sips._tcp");
}

static void expect_timeout_and_t1_accept_units_and_bounds(void **state)
{
    (void)state;
    cb_opts_t o;
    char err[256];
    char *argv[] = {"confbench", "h:1", "-s",   "message", "--expect", "501",
                    "--timeout", "2s",  "--t1", "100ms",   "--drain",  "3"};
    assert_int_equal(parse(ARGC(argv), argv, &o, err, sizeof(err)), 0);
    assert_int_equal(o.scenario, CB_SCEN_MESSAGE);
    assert_int_equal(cb_expected_code(&o), 501);
    assert_int_equal(o.timeout_ms, 2000);
    assert_int_equal(o.t1_ms, 100);
    assert_int_equal(o.drain_s, 3);
    char *short_timeout[] = {"confbench", "h:1", "--timeout", "100ms", "--t1", "1s"};
    assert_int_equal(parse(ARGC(short_timeout), short_timeout, &o, err, sizeof(err)), -1);
    char *bad_expect[] = {"confbench", "h:1", "--expect", "180"};
    assert_int_equal(parse(ARGC(bad_expect), bad_expect, &o, err, sizeof(err)), -1);
    char *bad_unit[] = {"confbench", "h:1", "--hold", "5h"};
    assert_int_equal(parse(ARGC(bad_unit), bad_unit, &o, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_describe_a_ten_second_udp_call_load_to_meet),
        cmocka_unit_test(long_short_and_equals_forms_set_the_same_options),
        cmocka_unit_test(parsing_leaves_argv_untouched),
        cmocka_unit_test(unknown_options_and_missing_values_are_named_in_the_error),
        cmocka_unit_test(targets_are_host_port_bracketed_ipv6_or_a_sip_domain),
        cmocka_unit_test(handshake_scenario_implies_tls_with_a_connection_per_request),
        cmocka_unit_test(tls_options_without_tls_and_inconsistent_pairs_are_refused),
        cmocka_unit_test(ramp_takes_start_step_max_and_refuses_max_below_start),
        cmocka_unit_test(bind_lists_hold_addresses_only),
        cmocka_unit_test(srv_prefix_follows_the_transport_unless_overridden),
        cmocka_unit_test(expect_timeout_and_t1_accept_units_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
