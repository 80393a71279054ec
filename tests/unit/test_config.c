/* Configuration loading: defaults, a full file, every error class with its exact
 * "FILE:LINE: field:" prefix, relative TLS paths, several errors at once, the
 * example configs under deploy/examples, and the TLS file check.
 *
 * Fixtures live in tests/data/configs/. Expected line numbers are not written here:
 * each test finds the line of a marker text in the fixture, so editing a fixture's
 * layout does not break the test. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cn_log.h"
#include "config.h"
#include "fed_route.h"

#define CONFIGS CN_TEST_DATA "/configs/"

static char tmpdir[] = "/tmp/test_config.XXXXXX";
static int tmp_count;

/* ---- helpers --------------------------------------------------------------- */

/* Line number (1-based) of the first line of `path` containing `needle`. */
static unsigned line_of(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    unsigned n = 0, found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        n++;
        if (strstr(line, needle))
            found = n;
    }
    fclose(f);
    if (!found)
        fail_msg("'%s' not found in %s", needle, path);
    return found;
}

static unsigned count_lines(const char *s)
{
    unsigned n = s[0] ? 1 : 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Writes `text` to a new file in tmpdir and returns its path (static storage). */
static const char *write_temp(const char *text)
{
    static char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/t%d.conf", tmpdir, ++tmp_count);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

/* Loads fixture `name` and asserts exactly one problem, starting with
 * "PATH:LINE: field: " where LINE holds `marker`, and containing `problem`. */
static void assert_single_error(const char *name, const char *marker, const char *field,
                                const char *problem)
{
    char path[PATH_MAX], expect[PATH_MAX + 128], err[4096];
    struct cn_config cfg;
    snprintf(path, sizeof path, "%s%s", CONFIGS, name);
    snprintf(expect, sizeof expect, "%s:%u: %s: ", path, line_of(path, marker), field);

    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    if (strncmp(err, expect, strlen(expect)) != 0)
        fail_msg("expected prefix '%s', got '%s'", expect, err);
    assert_null(strchr(err, '\n'));
    if (!strstr(err, problem))
        fail_msg("expected '%s' in '%s'", problem, err);
    cn_config_free(&cfg);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- defaults and valid files ------------------------------------------------- */

static void defaults_are_the_documented_values(void **state)
{
    (void)state;
    struct cn_config cfg;
    cn_config_defaults(&cfg);
    char host[64] = "";
    if (gethostname(host, sizeof host) == 0 && host[0])
        assert_string_equal(cfg.node.name, host);
    assert_int_equal(cfg.node.workers, 0);
    assert_int_equal(cfg.node.log_level, CN_LOG_INFO);
    assert_string_equal(cfg.dp.listen, "127.0.0.1");
    assert_int_equal(cfg.dp.udp_port, 5060);
    assert_int_equal(cfg.dp.tcp_port, 5060);
    assert_int_equal(cfg.dp.tls_port, 5061);
    assert_int_equal(cfg.dp.max_message_size, 65536);
    assert_int_equal(cfg.dp.tcp_idle_timeout_ms, 600000);
    assert_int_equal(cfg.dp.max_connections, 10000);
    assert_int_equal(cfg.dp.pin_workers, 1);
    assert_int_equal(cfg.dp.workers, cn_config_resolve_workers(&cfg));
    assert_string_equal(cfg.dp.tls.certificate, "");
    assert_string_equal(cfg.dp.tls.key, "");
    assert_string_equal(cfg.dp.tls.ca, "");
    assert_string_equal(cfg.dp.tls.ciphers,
                        "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS");
    assert_string_equal(
        cfg.dp.tls.ciphersuites,
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    assert_int_equal(cfg.dp.tls.min_version, 12);
    assert_int_equal(cfg.dp.tls.verify_client, DP_TLS_VERIFY_REQUEST);
    assert_int_equal(cfg.dp.tls.handshake_timeout_ms, 10000);
    assert_int_equal(cfg.dp.tls.session_cache_size, 20000);
    assert_string_equal(cfg.ctl.domain, "example.test");
    assert_string_equal(cfg.ctl.media_address, "127.0.0.1");
    assert_int_equal(cfg.ctl.media_port_min, 40000);
    assert_int_equal(cfg.ctl.media_port_max, 49999);
    assert_int_equal(cfg.ctl.t1_ms, 500);
    assert_int_equal(cfg.ctl.t2_ms, 4000);
    assert_int_equal(cfg.ctl.t4_ms, 5000);
    assert_int_equal(cfg.ctl.max_transactions, 262144);
    assert_int_equal(cfg.ctl.max_dialogs, 65536);
    assert_null(cfg.ctl.vmrs);
    assert_int_equal(cfg.ctl.n_vmrs, 0);
    assert_string_equal(cfg.admin.listen, "127.0.0.1");
    assert_int_equal(cfg.admin.port, 8088);
    assert_int_equal(cfg.cluster.mode, CN_CLUSTER_STANDALONE);
    assert_string_equal(cfg.cluster.location, "");
    assert_string_equal(cfg.cluster.sip_fqdn, "");
    assert_string_equal(cfg.cluster.srv_domain, "");
    assert_string_equal(cfg.cluster.srv_target, "");
    assert_string_equal(cfg.cluster.redis, "");
    assert_int_equal(cfg.cluster.n_sentinels, 0);
    assert_string_equal(cfg.cluster.master_name, "mymaster");
    assert_int_equal(cfg.cluster.lease_ttl_ms, 15000);
    assert_int_equal(cfg.cluster.heartbeat_ms, 5000);
    assert_null(cfg.cluster.nodes);
    assert_int_equal(cfg.cluster.n_nodes, 0);
}

static void file_that_only_disables_tls_loads_the_defaults(void **state)
{
    (void)state;
    const char *path = write_temp("# nothing but TLS off\nsip: { tls_port = 0; };\n");
    struct cn_config loaded, expect;
    char err[1024];
    assert_int_equal(cn_config_load(path, &loaded, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_string_equal(loaded.path, path);
    cn_config_defaults(&expect);
    expect.dp.tls_port = 0;
    snprintf(expect.path, sizeof expect.path, "%s", path);
    assert_memory_equal(&loaded, &expect, sizeof loaded);
    cn_config_free(&loaded);
}

static void full_file_sets_every_key(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[1024];
    assert_int_equal(cn_config_load(CONFIGS "full.conf", &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.node.name, "node-7");
    assert_int_equal(cfg.node.workers, 4);
    assert_int_equal(cfg.dp.workers, 4);
    assert_int_equal(cfg.node.log_level, CN_LOG_DEBUG);
    assert_int_equal(cfg.dp.pin_workers, 0);
    assert_string_equal(cfg.dp.listen, "::1");
    assert_string_equal(cfg.ctl.domain, "conf.example.org");
    assert_int_equal(cfg.dp.udp_port, 15060);
    assert_int_equal(cfg.dp.tcp_port, 15070);
    assert_int_equal(cfg.dp.tls_port, 15071);
    assert_int_equal(cfg.dp.max_message_size, 131072);
    assert_int_equal(cfg.dp.tcp_idle_timeout_ms, 120000);
    assert_int_equal(cfg.dp.max_connections, 2000);
    assert_string_equal(cfg.dp.tls.certificate, "/etc/confnode/node.crt");
    assert_string_equal(cfg.dp.tls.key, "/etc/confnode/node.key");
    assert_string_equal(cfg.dp.tls.ca, "/etc/confnode/ca.crt");
    assert_string_equal(cfg.dp.tls.ciphers, "ECDHE+AESGCM");
    assert_string_equal(cfg.dp.tls.ciphersuites, "TLS_AES_256_GCM_SHA384");
    assert_int_equal(cfg.dp.tls.min_version, 13);
    assert_int_equal(cfg.dp.tls.verify_client, DP_TLS_VERIFY_REQUIRE);
    assert_int_equal(cfg.dp.tls.handshake_timeout_ms, 5000);
    assert_int_equal(cfg.dp.tls.session_cache_size, 0);
    assert_string_equal(cfg.ctl.media_address, "192.0.2.10");
    assert_int_equal(cfg.ctl.media_port_min, 20000);
    assert_int_equal(cfg.ctl.media_port_max, 20999);
    assert_int_equal(cfg.ctl.t1_ms, 250);
    assert_int_equal(cfg.ctl.t2_ms, 2000);
    assert_int_equal(cfg.ctl.t4_ms, 2500);
    assert_int_equal(cfg.ctl.max_transactions, 1000);
    assert_int_equal(cfg.ctl.max_dialogs, 500);
    assert_string_equal(cfg.admin.listen, "127.0.0.2");
    assert_int_equal(cfg.admin.port, 9090);
    assert_int_equal(cfg.ctl.n_vmrs, 2);
    assert_string_equal(cfg.ctl.vmrs[0].alias, "meet@conf.example.org");
    assert_string_equal(cfg.ctl.vmrs[0].name, "Main room");
    assert_string_equal(cfg.ctl.vmrs[1].alias, "board@conf.example.org");
    assert_string_equal(cfg.ctl.vmrs[1].name, "");
    cn_config_free(&cfg);
    assert_null(cfg.ctl.vmrs);
    assert_int_equal(cfg.ctl.n_vmrs, 0);
}

static void media_address_follows_sip_listen_unless_set(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[1024];
    const char *path = write_temp("sip: { listen = \"127.0.0.5\"; tls_port = 0; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.ctl.media_address, "127.0.0.5");
    cn_config_free(&cfg);

    path = write_temp("sip: { listen = \"127.0.0.5\"; tls_port = 0; };\n"
                      "media: { address = \"127.0.0.9\"; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.ctl.media_address, "127.0.0.9");
    cn_config_free(&cfg);
}

static void workers_auto_resolves_to_the_online_cpus_capped_at_128(void **state)
{
    (void)state;
    struct cn_config cfg;
    cn_config_defaults(&cfg);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    long expect = ncpu < 1 ? 1 : ncpu > 128 ? 128 : ncpu;
    assert_int_equal(cfg.node.workers, 0);
    assert_int_equal(cn_config_resolve_workers(&cfg), expect);
    cfg.node.workers = 7;
    assert_int_equal(cn_config_resolve_workers(&cfg), 7);
    cfg.node.workers = 1000;
    assert_int_equal(cn_config_resolve_workers(&cfg), 128);

    char err[1024];
    const char *path = write_temp("node: { workers = \"auto\"; };\nsip: { tls_port = 0; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.node.workers, 0);
    assert_int_equal(cfg.dp.workers, expect);
    cn_config_free(&cfg);
}

static void relative_tls_paths_are_joined_to_the_config_directory(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[1024];
    assert_int_equal(cn_config_load(CONFIGS "relative_paths.conf", &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.dp.tls.certificate, CONFIGS "certs/node.crt");
    assert_string_equal(cfg.dp.tls.key, CONFIGS "../configs/certs/node.key");
    assert_string_equal(cfg.dp.tls.ca, "/etc/ssl/ca.crt");
    cn_config_free(&cfg);

    char expect[PATH_MAX];
    const char *path =
        write_temp("tls: { certificate = \"a.crt\"; key = \"sub/a.key\"; ca = \"\"; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    snprintf(expect, sizeof expect, "%s/a.crt", tmpdir);
    assert_string_equal(cfg.dp.tls.certificate, expect);
    snprintf(expect, sizeof expect, "%s/sub/a.key", tmpdir);
    assert_string_equal(cfg.dp.tls.key, expect);
    assert_string_equal(cfg.dp.tls.ca, "");
    cn_config_free(&cfg);
}

static void deploy_examples_load_without_error(void **state)
{
    (void)state;
    static const char *const files[] = {
        CN_SOURCE_DIR "/deploy/examples/standalone.conf",
        CN_SOURCE_DIR "/deploy/examples/production-node1.conf",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct cn_config cfg;
        char err[4096];
        if (cn_config_load(files[i], &cfg, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_true(cfg.ctl.n_vmrs >= 1);
        assert_int_not_equal(cfg.dp.tls_port, 0);
        assert_int_not_equal(cfg.dp.tls.certificate[0], '\0');
        assert_int_not_equal(cfg.dp.tls.key[0], '\0');
        cn_config_free(&cfg);
    }

    struct cn_config cfg;
    char err[4096];
    assert_int_equal(cn_config_load(files[0], &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.dp.listen, "127.0.0.1");
    assert_int_equal(cfg.dp.udp_port, 5060);
    assert_int_equal(cfg.dp.tcp_port, 5060);
    assert_int_equal(cfg.dp.tls_port, 5061);
    assert_string_equal(cfg.ctl.domain, "example.test");
    assert_int_equal(cfg.node.workers, 0);
    assert_string_equal(cfg.admin.listen, "127.0.0.1");
    assert_int_equal(cfg.admin.port, 8088);
    assert_int_equal(cfg.ctl.n_vmrs, 1);
    assert_string_equal(cfg.ctl.vmrs[0].alias, "meet@example.test");
    assert_string_equal(cfg.ctl.vmrs[0].name, "Demo room");
    assert_int_equal(cfg.dp.tls.verify_client, DP_TLS_VERIFY_REQUEST);
    assert_string_equal(cfg.dp.tls.certificate,
                        CN_SOURCE_DIR "/deploy/examples/../../build/demo/node.crt");
    assert_string_equal(cfg.dp.tls.key, CN_SOURCE_DIR "/deploy/examples/../../build/demo/node.key");
    assert_string_equal(cfg.dp.tls.ca, CN_SOURCE_DIR "/deploy/examples/../../build/demo/ca.crt");
    cn_config_free(&cfg);

    assert_int_equal(cfg.cluster.mode, CN_CLUSTER_STANDALONE);
    assert_int_equal(cfg.cluster.n_nodes, 0);
    cn_config_free(&cfg);

    assert_int_equal(cn_config_load(files[1], &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.dp.tls.verify_client, DP_TLS_VERIFY_REQUIRE);
    assert_int_equal(cfg.cluster.mode, CN_CLUSTER_REDIS);
    assert_true(cfg.cluster.n_sentinels >= 1);
    assert_true(cfg.cluster.n_nodes >= 2);
    assert_string_equal(cfg.cluster.nodes[0].name, cfg.node.name);
    assert_string_equal(cfg.cluster.sip_fqdn, cfg.cluster.nodes[0].fqdn);
    cn_config_free(&cfg);
}

/* ---- one error class each -------------------------------------------------------- */

static void missing_file_reports_cannot_open(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[1024];
    assert_int_equal(cn_config_load(CONFIGS "does-not-exist.conf", &cfg, err, sizeof err), -1);
    assert_string_equal(err, CONFIGS "does-not-exist.conf: cannot open: No such file or directory");
    cn_config_free(&cfg);
}

static void syntax_error_names_file_and_line(void **state)
{
    (void)state;
    char path[] = CONFIGS "syntax_error.conf", expect[PATH_MAX + 64], err[1024];
    struct cn_config cfg;
    snprintf(expect, sizeof expect, "%s:%u: syntax error", path, line_of(path, "tcp_port = ;"));
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    assert_string_equal(err, expect);
    cn_config_free(&cfg);
}

static void unknown_top_level_key_is_an_error_with_a_hint(void **state)
{
    (void)state;
    assert_single_error("unknown_top.conf", "sipp:", "sipp", "unknown key; did you mean 'sip'?");
}

static void unknown_key_in_a_section_is_an_error_with_a_hint(void **state)
{
    (void)state;
    assert_single_error("unknown_section_key.conf", "udpport", "sip.udpport",
                        "unknown key; did you mean 'udp_port'?");
}

static void unknown_key_in_a_vmr_entry_is_an_error(void **state)
{
    (void)state;
    assert_single_error("unknown_vmr_key.conf", "titel", "vmrs[0].titel", "unknown key");
}

static void section_key_at_top_level_points_to_its_section(void **state)
{
    (void)state;
    assert_single_error("misplaced_key.conf", "workers", "workers", "did you mean 'node.workers'?");
}

static void wrong_type_names_expected_and_actual_type(void **state)
{
    (void)state;
    assert_single_error("wrong_type.conf", "udp_port", "sip.udp_port",
                        "expected an integer, got a string");
}

static void out_of_range_port_is_an_error(void **state)
{
    (void)state;
    assert_single_error("port_out_of_range.conf", "tcp_port", "sip.tcp_port",
                        "must be 0..65535 (got 70000)");
}

static void integer_wider_than_32_bits_is_an_error_not_wrapped(void **state)
{
    (void)state;
    assert_single_error("int_overflow.conf", "udp_port =", "sip.udp_port",
                        "integer 4294972356 does not fit in 32 bits");
}

static void odd_media_port_min_is_an_error(void **state)
{
    (void)state;
    assert_single_error("media_odd_port.conf", "port_min", "media.port_min", "must be even");
}

static void media_range_without_a_port_pair_to_spare_is_an_error(void **state)
{
    (void)state;
    assert_single_error("media_short_range.conf", "port_max", "media.port_max",
                        "must be greater than media.port_min + 1");
}

static void bad_ip_address_is_an_error(void **state)
{
    (void)state;
    assert_single_error("bad_ip.conf", "listen", "sip.listen",
                        "not an IPv4 or IPv6 address (got \"127.0.0.256\")");
}

static void bad_enum_value_lists_the_choices(void **state)
{
    (void)state;
    assert_single_error(
        "bad_enum.conf", "log_level", "node.log_level",
        "must be one of \"debug\", \"info\", \"warn\", \"error\" (got \"verbose\")");
}

static void workers_many_is_an_error(void **state)
{
    (void)state;
    assert_single_error("workers_many.conf", "workers", "node.workers",
                        "must be \"auto\" or an integer 1..128 (got \"many\")");
}

static void duplicate_vmr_alias_is_an_error_naming_the_first(void **state)
{
    (void)state;
    char expect[64];
    snprintf(expect, sizeof expect, "duplicate of vmrs[0] (line %u)",
             line_of(CONFIGS "vmr_duplicate.conf", "\"First\""));
    assert_single_error("vmr_duplicate.conf", "EXAMPLE", "vmrs[2].alias", expect);
}

static void vmr_alias_without_at_is_an_error(void **state)
{
    (void)state;
    assert_single_error("vmr_alias_without_at.conf", "meet.example.test", "vmrs[1].alias",
                        "must be user@domain with no spaces");
}

static void vmr_without_alias_is_an_error(void **state)
{
    (void)state;
    assert_single_error("vmr_alias_missing.conf", "Nameless", "vmrs[0].alias", "required");
}

static void tls_port_without_certificate_names_tls_certificate(void **state)
{
    (void)state;
    char path[] = CONFIGS "tls_without_certificate.conf", expect[PATH_MAX + 64], err[2048];
    struct cn_config cfg;
    unsigned line = line_of(path, "tls:");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    snprintf(expect, sizeof expect, "%s:%u: tls.certificate: required when sip.tls_port", path,
             line);
    assert_memory_equal(err, expect, strlen(expect));
    snprintf(expect, sizeof expect, "\n%s:%u: tls.key: required when sip.tls_port", path, line);
    assert_non_null(strstr(err, expect));
    assert_int_equal(count_lines(err), 2);
    cn_config_free(&cfg);
}

static void problem_in_an_included_file_names_that_file(void **state)
{
    (void)state;
    char expect[PATH_MAX + 64], err[1024];
    struct cn_config cfg;
    snprintf(expect, sizeof expect, "%s:%u: limits.max_dialogs: must be 1..16777216 (got 0)",
             CONFIGS "include/limits.conf", line_of(CONFIGS "include/limits.conf", "max_dialogs"));
    assert_int_equal(cn_config_load(CONFIGS "include_main.conf", &cfg, err, sizeof err), -1);
    assert_string_equal(err, expect);
    cn_config_free(&cfg);
}

static void cross_field_clashes_are_errors(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[2048];
    const char *path = write_temp("sip:\n"
                                  "{\n"
                                  "  tcp_port = 5070;\n"
                                  "  tls_port = 5070;\n"
                                  "};\n"
                                  "tls: { certificate = \"c\"; key = \"k\"; };\n"
                                  "timers: { t1 = 5000; t2 = 4000; };\n"
                                  "admin: { port = 5070; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    char expect[PATH_MAX + 64];
    snprintf(expect, sizeof expect, "%s:4: sip.tls_port: same port as sip.tcp_port (5070)", path);
    assert_non_null(strstr(err, expect));
    snprintf(expect, sizeof expect, "%s:7: timers.t2: must not be less than timers.t1", path);
    assert_non_null(strstr(err, expect));
    snprintf(expect, sizeof expect, "%s:8: admin.port: same address and port as sip.tcp_port",
             path);
    assert_non_null(strstr(err, expect));
    assert_int_equal(count_lines(err), 3);
    cn_config_free(&cfg);
}

static void string_longer_than_its_field_is_an_error(void **state)
{
    (void)state;
    struct cn_config cfg;
    char text[256], err[1024], expect[PATH_MAX + 64];
    snprintf(text, sizeof text, "sip: { tls_port = 0; };\nnode: { name = \"%080d\"; };\n", 0);
    const char *path = write_temp(text);
    snprintf(expect, sizeof expect, "%s:2: node.name: longer than 63 characters", path);
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    assert_string_equal(err, expect);
    cn_config_free(&cfg);
}

/* ---- several errors ------------------------------------------------------------ */

static void several_errors_are_reported_together_in_line_order(void **state)
{
    (void)state;
    char path[] = CONFIGS "many_errors.conf", err[4096];
    struct cn_config cfg;
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    assert_true(count_lines(err) >= 6);
    static const char *const fields[] = {"node.workers", "node.log_level", "sip.listen",
                                         "sip.udpport",  "media.port_min", "vmrs[0].alias"};
    static const char *const markers[] = {"workers", "log_level", "listen",
                                          "udpport", "port_min",  "no spaces"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char expect[PATH_MAX + 64];
        snprintf(expect, sizeof expect, "%s:%u: %s: ", path, line_of(path, markers[i]), fields[i]);
        if (!strstr(err, expect))
            fail_msg("'%s' missing from:\n%s", expect, err);
    }
    unsigned last = 0;
    for (const char *l = err; l; l = strchr(l, '\n')) {
        l += *l == '\n';
        assert_memory_equal(l, path, strlen(path));
        unsigned line = (unsigned)strtoul(l + strlen(path) + 1, NULL, 10);
        assert_true(line >= last);
        last = line;
    }
    cn_config_free(&cfg);
    assert_null(cfg.ctl.vmrs);
}

static void errors_are_capped_at_ten_with_a_count_of_the_rest(void **state)
{
    (void)state;
    char text[1024] = "sip: { tls_port = 0; };\n";
    for (int i = 0; i < 15; i++) {
        char line[64];
        snprintf(line, sizeof line, "bogus%d = %d;\n", i, i);
        strcat(text, line);
    }
    const char *path = write_temp(text);
    struct cn_config cfg;
    char err[8192], expect[PATH_MAX + 64];
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    assert_int_equal(count_lines(err), 11);
    snprintf(expect, sizeof expect, "\n%s: 5 more problems not shown", path);
    assert_string_equal(err + strlen(err) - strlen(expect), expect);
    snprintf(expect, sizeof expect, "%s:2: bogus0: unknown key", path);
    assert_memory_equal(err, expect, strlen(expect));
    cn_config_free(&cfg);
}

static void small_error_buffer_is_truncated_not_overrun(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[24];
    memset(err, 'x', sizeof err);
    assert_int_equal(cn_config_load(CONFIGS "many_errors.conf", &cfg, err, 20), -1);
    assert_int_equal(strlen(err), 19);
    assert_memory_equal(err, CONFIGS, 19);
    assert_int_equal(err[20], 'x');
    cn_config_free(&cfg);
    assert_int_equal(cn_config_load(CONFIGS "many_errors.conf", &cfg, NULL, 0), -1);
    cn_config_free(&cfg);
}

static void failed_load_keeps_no_vmr_list(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[1024];
    assert_int_equal(cn_config_load(CONFIGS "vmr_duplicate.conf", &cfg, err, sizeof err), -1);
    assert_null(cfg.ctl.vmrs);
    assert_int_equal(cfg.ctl.n_vmrs, 0);
}

static void free_accepts_null_and_a_zeroed_config(void **state)
{
    (void)state;
    struct cn_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cn_config_free(NULL);
    cn_config_free(&cfg);
    cn_config_free(&cfg);
    assert_null(cfg.ctl.vmrs);
}

/* ---- TLS file check ------------------------------------------------------------ */

static void check_files_names_each_unreadable_tls_file(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[2048], cert[PATH_MAX], expect[2 * PATH_MAX];
    cn_config_defaults(&cfg);
    snprintf(cfg.path, sizeof cfg.path, "node.conf");
    assert_int_equal(cn_config_check_files(&cfg, err, sizeof err), 0);
    assert_string_equal(err, "");

    snprintf(cert, sizeof cert, "%s/check.crt", tmpdir);
    FILE *f = fopen(cert, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(cfg.dp.tls.certificate, sizeof cfg.dp.tls.certificate, "%s", cert);
    snprintf(cfg.dp.tls.key, sizeof cfg.dp.tls.key, "%s/missing.key", tmpdir);
    snprintf(cfg.dp.tls.ca, sizeof cfg.dp.tls.ca, "%s", tmpdir);
    assert_int_equal(cn_config_check_files(&cfg, err, sizeof err), -1);
    snprintf(expect, sizeof expect,
             "node.conf: tls.key: '%s/missing.key': No such file or directory\n"
             "node.conf: tls.ca: '%s': not a regular file",
             tmpdir, tmpdir);
    assert_string_equal(err, expect);

    snprintf(cfg.dp.tls.key, sizeof cfg.dp.tls.key, "%s", cert);
    cfg.dp.tls.ca[0] = '\0';
    assert_int_equal(cn_config_check_files(&cfg, err, sizeof err), 0);
}

/* ---- cluster ------------------------------------------------------------------- */

static void cluster_section_sets_every_key(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[2048];
    const char *path = write_temp(
        "sip: { tls_port = 0; };\n"
        "cluster:\n"
        "{\n"
        "  mode = \"redis\";\n"
        "  location = \"dmz-a\";\n"
        "  sip_fqdn = \"node2.vc.example.com\";\n"
        "  srv_domain = \"vc.example.com\";\n"
        "  srv_target = \"sip.vc.example.com\";\n"
        "  sentinels = [ \"192.0.2.21:26379\", \"[2001:db8::22]:26380\" ];\n"
        "  master_name = \"confnode\";\n"
        "  lease_ttl = 9;\n"
        "  heartbeat = 3;\n"
        "  nodes = (\n"
        "    { name = \"node1\"; fqdn = \"node1.vc.example.com\"; address = \"192.0.2.10\"; },\n"
        "    { name = \"node2\"; fqdn = \"node2.vc.example.com\"; address = \"2001:db8::11\"; },\n"
        "    { name = \"media1\"; fqdn = \"media1.vc.example.com\"; address = \"192.0.2.12\";\n"
        "      signaling = false; }\n"
        "  );\n"
        "};\n");
    if (cn_config_load(path, &cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    const struct cluster_conf *cl = &cfg.cluster;
    assert_int_equal(cl->mode, CN_CLUSTER_REDIS);
    assert_string_equal(cl->location, "dmz-a");
    assert_string_equal(cl->sip_fqdn, "node2.vc.example.com");
    assert_string_equal(cl->srv_domain, "vc.example.com");
    assert_string_equal(cl->srv_target, "sip.vc.example.com");
    assert_string_equal(cl->redis, "");
    assert_int_equal(cl->n_sentinels, 2);
    assert_string_equal(cl->sentinels[0], "192.0.2.21:26379");
    assert_string_equal(cl->sentinels[1], "[2001:db8::22]:26380");
    assert_string_equal(cl->master_name, "confnode");
    assert_int_equal(cl->lease_ttl_ms, 9000);
    assert_int_equal(cl->heartbeat_ms, 3000);
    assert_int_equal(cl->n_nodes, 3);
    assert_string_equal(cl->nodes[1].name, "node2");
    assert_string_equal(cl->nodes[1].fqdn, "node2.vc.example.com");
    assert_string_equal(cl->nodes[1].address, "2001:db8::11");
    assert_int_equal(cl->nodes[0].signaling, 1);
    assert_int_equal(cl->nodes[2].signaling, 0);
    cn_config_free(&cfg);
    assert_null(cfg.cluster.nodes);
    assert_int_equal(cfg.cluster.n_nodes, 0);

    path = write_temp("sip: { tls_port = 0; };\n"
                      "cluster: { mode = \"redis\"; redis = \"127.0.0.1:6379\"; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.cluster.redis, "127.0.0.1:6379");
    cn_config_free(&cfg);
}

/* Loads text (TLS off) and asserts exactly one problem "PATH:LINE: field: ..."
 * containing `problem`, LINE being the line holding `marker`. */
static void assert_cluster_error(const char *text, const char *marker, const char *field,
                                 const char *problem)
{
    char full[4096], err[2048], expect[PATH_MAX + 128];
    snprintf(full, sizeof full, "sip: { tls_port = 0; };\n%s", text);
    const char *path = write_temp(full);
    struct cn_config cfg;
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), -1);
    snprintf(expect, sizeof expect, "%s:%u: %s: ", path, line_of(path, marker), field);
    if (strncmp(err, expect, strlen(expect)) != 0)
        fail_msg("expected prefix '%s', got '%s'", expect, err);
    if (!strstr(err, problem))
        fail_msg("expected '%s' in '%s'", problem, err);
    assert_null(strchr(err, '\n'));
    cn_config_free(&cfg);
}

static void cluster_redis_mode_needs_a_server_or_sentinels_not_both(void **state)
{
    (void)state;
    assert_cluster_error("cluster:\n{\n  mode = \"redis\";\n};\n", "mode", "cluster.redis",
                         "required when cluster.mode is \"redis\"");
    assert_cluster_error("cluster:\n{\n  redis = \"127.0.0.1:6379\";\n"
                         "  sentinels = [ \"127.0.0.1:26379\" ];\n};\n",
                         "sentinels", "cluster.sentinels", "not both");
}

static void cluster_addresses_must_be_ip_and_port(void **state)
{
    (void)state;
    assert_cluster_error("cluster: {\n  redis = \"redis.example.com:6379\";\n};\n",
                         "redis =", "cluster.redis", "must be IP:port or [IPv6]:port");
    assert_cluster_error("cluster: {\n  redis = \"127.0.0.1:0\";\n};\n", "redis =", "cluster.redis",
                         "must be IP:port");
    assert_cluster_error("cluster: {\n  redis = \"::1:6379\";\n};\n", "redis =", "cluster.redis",
                         "must be IP:port");
    assert_cluster_error("cluster: {\n  sentinels = [ \"127.0.0.1:26379\",\n"
                         "    \"127.0.0.1\" ];\n};\n",
                         "\"127.0.0.1\" ]", "cluster.sentinels[1]", "(got \"127.0.0.1\")");
    assert_cluster_error("cluster: {\n  mode = \"cluster\";\n};\n", "mode", "cluster.mode",
                         "must be one of \"standalone\", \"redis\"");
}

static void cluster_heartbeat_must_be_shorter_than_the_lease(void **state)
{
    (void)state;
    assert_cluster_error("cluster: {\n  lease_ttl = 5;\n  heartbeat = 5;\n};\n", "heartbeat",
                         "cluster.heartbeat", "must be less than cluster.lease_ttl (5 s >= 5 s)");
    assert_cluster_error("cluster: {\n  lease_ttl = 1;\n};\n", "lease_ttl", "cluster.lease_ttl",
                         "must be 2..3600 (got 1)");
}

static void cluster_srv_target_must_be_directly_in_the_srv_domain(void **state)
{
    (void)state;
    static const char *const bad[] = {"sip.sub.example.com", "sip.other.com", "example.com.evil"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "cluster: {\n  srv_domain = \"example.com\";\n  srv_target = \"%s\";\n};\n",
                 bad[i]);
        assert_cluster_error(text, "srv_target", "cluster.srv_target", "strict DNS naming");
    }
    struct cn_config cfg;
    char err[1024];
    const char *path = write_temp("sip: { tls_port = 0; };\ncluster: { srv_domain = "
                                  "\"example.com\"; srv_target = \"SIP.Example.com\"; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    cn_config_free(&cfg);
}

static void cluster_nodes_need_unique_names_and_fqdns_and_every_field(void **state)
{
    (void)state;
    assert_cluster_error(
        "cluster: { nodes = (\n"
        "  { name = \"n1\"; fqdn = \"n1.example.com\"; address = \"192.0.2.1\"; },\n"
        "  { name = \"n1\"; fqdn = \"n2.example.com\"; address = \"192.0.2.2\"; }\n); };\n",
        "n2.example.com", "cluster.nodes[1].name", "duplicate of cluster.nodes[0]");
    assert_cluster_error(
        "cluster: { nodes = (\n"
        "  { name = \"n1\"; fqdn = \"n1.example.com\"; address = \"192.0.2.1\"; },\n"
        "  { name = \"n2\"; fqdn = \"N1.example.com\"; address = \"192.0.2.2\"; }\n); };\n",
        "N1.example.com", "cluster.nodes[1].fqdn", "duplicate of cluster.nodes[0]");
    assert_cluster_error("cluster: { nodes = (\n"
                         "  { name = \"n1\"; fqdn = \"n1.example.com\"; }\n); };\n",
                         "n1.example.com", "cluster.nodes[0].address", "required");
    assert_cluster_error("cluster: { nodes = (\n"
                         "  { name = \"n1\"; fqdn = \"*.example.com\"; address = \"192.0.2.1\"; }\n"
                         "); };\n",
                         "example.com", "cluster.nodes[0].fqdn", "not a domain name");
    assert_cluster_error("cluster: { nodes = (\n"
                         "  { name = \"n1\"; fqdn = \"n1.example.com\"; address = \"192.0.2.1\";\n"
                         "    signalling = false; }\n); };\n",
                         "signalling", "cluster.nodes[0].signalling", "did you mean 'signaling'?");
}

static void cluster_sip_fqdn_must_be_one_of_the_nodes(void **state)
{
    (void)state;
    assert_cluster_error(
        "cluster: {\n  sip_fqdn = \"node9.example.com\";\n  nodes = (\n"
        "  { name = \"n1\"; fqdn = \"n1.example.com\"; address = \"192.0.2.1\"; }\n); };\n",
        "sip_fqdn", "cluster.sip_fqdn", "is not the fqdn of any cluster.nodes entry");
}

/* ---- federation: zones, search_rules, federation ------------------------------- */

static struct fed_router *router_of(const struct cn_config *cfg)
{
    const char *domains[] = {cfg->ctl.domain};
    struct fed_router_env env = {.local_domains = domains, .n_local_domains = 1};
    char err[512];
    struct fed_router *r = fed_router_new(&cfg->fed.route, &env, err, sizeof err);
    if (!r)
        fail_msg("fed_router_new: %s", err);
    return r;
}

static fed_route_status_t route(const struct fed_router *r, const char *method, const char *source,
                                const char *ruri, const char *from, struct fed_route_result *res)
{
    struct fed_route_request req = {.method = method,
                                    .method_len = FED_NAME_NUL,
                                    .source_zone = source,
                                    .ruri = ruri,
                                    .ruri_len = FED_NAME_NUL,
                                    .from_domain = from,
                                    .from_domain_len = FED_NAME_NUL,
                                    .arrival = FED_ARRIVAL_TLS};
    return fed_route_decide(r, &req, res);
}

static void federation_defaults_federate_with_nobody(void **state)
{
    (void)state;
    struct cn_config cfg;
    cn_config_defaults(&cfg);
    const struct fed_route_conf *rc = &cfg.fed.route;
    assert_int_equal(rc->privacy, FED_PRIVACY_ALLOW_LIST);
    assert_int_equal(rc->n_allow, 0);
    assert_int_equal(rc->n_deny, 0);
    assert_int_equal(rc->n_rules, 0);
    assert_int_equal(rc->n_neighbours, 0);
    assert_int_equal(rc->n_static_routes, 0);
    assert_int_equal(rc->dns.security, FED_SEC_TLS_REQUIRED);
    assert_int_equal(rc->dns.client_certificates, FED_ROUTE_AUTO);
    assert_int_equal(rc->dns.strict_naming, 1);
    assert_int_equal(rc->dns.fallback_hosts, 0);
    assert_int_equal(rc->dns.srv_mode, FED_SRV_RFC2782);
    assert_int_equal(cfg.fed.history_size, 1000);

    /* a federated request is refused with 1027, even to a room of ours */
    struct fed_router *r = router_of(&cfg);
    struct fed_route_result *res = calloc(1, sizeof *res);
    assert_non_null(res);
    assert_int_equal(route(r, "INVITE", "dns", "sip:meet@example.test", "partner.example", res),
                     FED_ROUTE_REFUSED);
    assert_int_equal(res->diag_code, 1027);
    /* TLS without a verified client certificate is refused first */
    assert_non_null(strstr(res->detail, "client certificate"));
    free(res);
    fed_router_free(r);
    cn_config_free(&cfg);
}

static void federation_sections_set_every_key(void **state)
{
    (void)state;
    struct cn_config cfg;
    char err[2048];
    if (cn_config_load(CONFIGS "federation.conf", &cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    const struct fed_route_conf *rc = &cfg.fed.route;
    assert_int_equal(rc->dns.security, FED_SEC_TLS_OPTIONAL);
    assert_int_equal(rc->dns.client_certificates, 0);
    assert_int_equal(rc->dns.strict_naming, 0);
    assert_int_equal(rc->dns.fallback_hosts, 1);
    assert_int_equal(rc->dns.srv_mode, FED_SRV_MICROSOFT);

    assert_int_equal(rc->n_neighbours, 2);
    const struct fed_neighbour_conf *n = &rc->neighbours[0];
    assert_string_equal(n->name, "vcs");
    assert_int_equal(n->n_peers, 3);
    assert_string_equal(n->peers[1].host, "2001:db8::5");
    assert_int_equal(n->peers[1].port, 5061);
    assert_string_equal(n->peers[2].host, "vcs2.example.com");
    assert_int_equal(n->peers[2].port, 0);
    assert_int_equal(n->transport, FED_TP_TLS);
    assert_int_equal(n->security, FED_SEC_TLS_REQUIRED);
    assert_int_equal(n->client_certificates, 1);
    assert_int_equal(n->srv_mode, FED_SRV_RFC2782);
    n = &rc->neighbours[1];
    assert_int_equal(n->transport, FED_TP_UDP);
    assert_int_equal(n->security, FED_SEC_NO_TLS);
    assert_int_equal(n->client_certificates, FED_ROUTE_AUTO);

    assert_int_equal(rc->n_static_routes, 2);
    assert_string_equal(rc->static_routes[0].domain, "static.example");
    assert_int_equal(rc->static_routes[0].n_addrs, 2);
    assert_int_equal(rc->static_routes[1].transport, FED_TP_TCP);
    assert_int_equal(rc->static_routes[1].client_certificates, 0);

    assert_int_equal(rc->n_rules, 4);
    const struct fed_rule_conf *ru = &rc->rules[0];
    assert_string_equal(ru->name, "rooms");
    assert_int_equal(ru->priority, 10);
    assert_string_equal(ru->source, "any");
    assert_int_equal(ru->type, FED_REQ_ALL);
    assert_int_equal(ru->mode, FED_MODE_PATTERN);
    assert_int_equal(ru->pattern_type, FED_PATTERN_REGEX);
    assert_string_equal(ru->pattern, "(meet|vmr)\\.([a-z0-9.]+)@example\\.com");
    assert_int_equal(ru->behaviour, FED_BEHAVIOUR_REPLACE);
    assert_string_equal(ru->replace, "meet.\\2@example.com");
    assert_int_equal(ru->on_match, FED_ON_MATCH_STOP);
    assert_string_equal(ru->target, "local");
    assert_int_equal(ru->enabled, 1);
    assert_string_equal(rc->rules[1].name, "im to gateway");
    assert_int_equal(rc->rules[1].type, FED_REQ_IMP);
    assert_int_equal(rc->rules[1].mode, FED_MODE_ANY_ALIAS);
    assert_int_equal(rc->rules[1].on_match, FED_ON_MATCH_CONTINUE);
    assert_int_equal(rc->rules[2].pattern_type, FED_PATTERN_PREFIX);
    assert_string_equal(rc->rules[2].replace, "");
    assert_int_equal(rc->rules[3].enabled, 0);

    assert_int_equal(rc->privacy, FED_PRIVACY_DENY_LIST);
    assert_int_equal(rc->n_allow, 1);
    assert_int_equal(rc->n_deny, 2);
    assert_string_equal(rc->deny[1], "Spam.Example");
    assert_int_equal(cfg.fed.history_size, 5000);

    /* the loaded configuration compiles and routes */
    struct fed_router *r = router_of(&cfg);
    struct fed_route_result *res = calloc(1, sizeof *res);
    assert_non_null(res);
    assert_int_equal(route(r, "INVITE", "dns", "sip:VMR.alice@example.com", "partner.example", res),
                     FED_ROUTE_OK);
    assert_string_equal(res->targets[0].alias, "meet.alice@example.com");
    assert_int_equal(res->targets[0].kind, FED_ZONE_KIND_LOCAL);
    assert_int_equal(route(r, "INVITE", "local", "sip:+4420@partner.example", NULL, res),
                     FED_ROUTE_OK);
    assert_string_equal(res->targets[0].alias, "20@partner.example");
    assert_int_equal(res->targets[0].kind, FED_ZONE_KIND_DNS);
    assert_true(res->targets[0].fallback_hosts);
    assert_int_equal(route(r, "INVITE", "local", "sip:+4420@static.example", NULL, res),
                     FED_ROUTE_OK);
    assert_int_equal(res->targets[0].kind, FED_ZONE_KIND_STATIC);
    assert_true(res->targets[0].no_dns_fallback);
    assert_int_equal(route(r, "INVITE", "local", "sip:+4420@spam.example", NULL, res),
                     FED_ROUTE_REFUSED);
    assert_int_equal(route(r, "MESSAGE", "local", "sip:bob@spam.example", NULL, res), FED_ROUTE_OK);
    assert_string_equal(res->targets[0].zone, "legacy-gw");
    assert_int_equal(res->targets[0].transport, FED_TP_UDP);
    free(res);
    fed_router_free(r);
    cn_config_free(&cfg);
    assert_null(cfg.fed.route.rules);
    assert_null(cfg.fed.route.neighbours);
    assert_null(cfg.fed.route.allow);
}

static void federation_errors_name_file_line_and_field(void **state)
{
    (void)state;
    assert_single_error("fed_bad_regex.conf", "meet(.*@example", "search_rules[1].pattern",
                        "not a POSIX extended regular expression");
    assert_single_error("fed_wildcard_allow.conf", "*.partner", "federation.allow[1]",
                        "exact domain names only: no wildcards or regular expressions");
    assert_single_error("fed_both_lists.conf", "\"partner.example\"", "federation.deny[0]",
                        "also in federation.allow[1]: a domain cannot be in both lists");
    assert_single_error("fed_unknown_target.conf", "vsc", "search_rules[0].target",
                        "unknown zone \"vsc\"");
    assert_single_error("fed_duplicate_zone.conf", "VCS", "zones.neighbours[1].name",
                        "duplicate of zones.neighbours[0]");
}

static void federation_key_errors_name_their_field(void **state)
{
    (void)state;
    assert_cluster_error("zones: { neighbours = (\n  { name = \"gw\"; }\n); };\n", "\"gw\"",
                         "zones.neighbours[0].peers", "required");
    assert_cluster_error("zones: { neighbours = ( { name = \"gw\"; peers = [\n"
                         "  \"192.0.2.1:5061\",\n  \"gw.example:99999\" ]; } ); };\n",
                         "99999", "zones.neighbours[0].peers[1]", "port must be 1..65535");
    assert_cluster_error("zones: { neighbours = ( { name = \"gw\"; peers = [ \"192.0.2.1\" ];\n"
                         "  transport = \"tcp\"; } ); };\n",
                         "transport", "zones.neighbours[0].transport", "must be \"tls\"");
    assert_cluster_error("zones: { dns: {\n  security = \"tls\"; }; };\n", "security",
                         "zones.dns.security",
                         "must be one of \"tls-required\", \"tls-optional\", \"no-tls\"");
    assert_cluster_error("zones: { dns: { security = \"no-tls\";\n"
                         "  client_certificates = true; }; };\n",
                         "client_certificates", "zones.dns.client_certificates", "needs TLS");
    assert_cluster_error("zones: { static_routes = ( { domain = \"s.example\";\n"
                         "  addresses = [ \"192.0.2.7\" ]; } ); };\n"
                         "federation: { privacy = \"deny-list\"; deny = [\n  \"s.example\" ]; };\n",
                         "  \"s.example\"", "federation.deny[0]", "has a static route");
    assert_cluster_error("search_rules = ( { name = \"r\"; pattern_type = \"regex\";\n"
                         "  pattern = \"(a)@x\"; behaviour = \"replace\";\n"
                         "  replace = \"\\\\3@x\"; target = \"local\"; } );\n",
                         "replace =", "search_rules[0].replace", "the pattern has 1 group");
    assert_cluster_error("search_rules = ( { name = \"r\"; pattern_type = \"regex\";\n"
                         "  pattern = \"(a*)*\\\\1\"; target = \"local\"; } );\n",
                         "pattern =", "search_rules[0].pattern", "back-references");
    assert_cluster_error("search_rules = ( { name = \"r\"; target = \"local\";\n"
                         "  behavior = \"leave\"; } );\n",
                         "behavior", "search_rules[0].behavior",
                         "unknown key; did you mean 'behaviour'?");
    assert_cluster_error("search_rules = ( { name = \"r\"; mode = \"any-alias\";\n"
                         "  priority = 0; target = \"local\"; } );\n",
                         "priority", "search_rules[0].priority", "must be 1..65534 (got 0)");
    assert_cluster_error("search_rules = ( {\n  pattern = \"x\"; target = \"local\"; } );\n",
                         "search_rules = (", "search_rules[0].name", "required");
    assert_cluster_error("search_rules: {\n  name = \"r\"; };\n", "search_rules", "search_rules",
                         "expected a list");
    assert_cluster_error("federation: {\n  privacy = \"whitelist\"; };\n", "privacy",
                         "federation.privacy",
                         "must be one of \"allow-list\", \"deny-list\", \"off\"");
    assert_cluster_error("federation: {\n  history_size = 0; };\n", "history_size",
                         "federation.history_size", "must be 1..1000000 (got 0)");
    assert_cluster_error("federation: {\n  allow = \"a.example\"; };\n", "allow",
                         "federation.allow", "expected an array");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_documented_values),
        cmocka_unit_test(file_that_only_disables_tls_loads_the_defaults),
        cmocka_unit_test(full_file_sets_every_key),
        cmocka_unit_test(media_address_follows_sip_listen_unless_set),
        cmocka_unit_test(workers_auto_resolves_to_the_online_cpus_capped_at_128),
        cmocka_unit_test(relative_tls_paths_are_joined_to_the_config_directory),
        cmocka_unit_test(deploy_examples_load_without_error),
        cmocka_unit_test(missing_file_reports_cannot_open),
        cmocka_unit_test(syntax_error_names_file_and_line),
        cmocka_unit_test(unknown_top_level_key_is_an_error_with_a_hint),
        cmocka_unit_test(unknown_key_in_a_section_is_an_error_with_a_hint),
        cmocka_unit_test(unknown_key_in_a_vmr_entry_is_an_error),
        cmocka_unit_test(section_key_at_top_level_points_to_its_section),
        cmocka_unit_test(wrong_type_names_expected_and_actual_type),
        cmocka_unit_test(out_of_range_port_is_an_error),
        cmocka_unit_test(integer_wider_than_32_bits_is_an_error_not_wrapped),
        cmocka_unit_test(odd_media_port_min_is_an_error),
        cmocka_unit_test(media_range_without_a_port_pair_to_spare_is_an_error),
        cmocka_unit_test(bad_ip_address_is_an_error),
        cmocka_unit_test(bad_enum_value_lists_the_choices),
        cmocka_unit_test(workers_many_is_an_error),
        cmocka_unit_test(duplicate_vmr_alias_is_an_error_naming_the_first),
        cmocka_unit_test(vmr_alias_without_at_is_an_error),
        cmocka_unit_test(vmr_without_alias_is_an_error),
        cmocka_unit_test(tls_port_without_certificate_names_tls_certificate),
        cmocka_unit_test(problem_in_an_included_file_names_that_file),
        cmocka_unit_test(cross_field_clashes_are_errors),
        cmocka_unit_test(string_longer_than_its_field_is_an_error),
        cmocka_unit_test(several_errors_are_reported_together_in_line_order),
        cmocka_unit_test(errors_are_capped_at_ten_with_a_count_of_the_rest),
        cmocka_unit_test(small_error_buffer_is_truncated_not_overrun),
        cmocka_unit_test(failed_load_keeps_no_vmr_list),
        cmocka_unit_test(free_accepts_null_and_a_zeroed_config),
        cmocka_unit_test(check_files_names_each_unreadable_tls_file),
        cmocka_unit_test(cluster_section_sets_every_key),
        cmocka_unit_test(cluster_redis_mode_needs_a_server_or_sentinels_not_both),
        cmocka_unit_test(cluster_addresses_must_be_ip_and_port),
        cmocka_unit_test(cluster_heartbeat_must_be_shorter_than_the_lease),
        cmocka_unit_test(cluster_srv_target_must_be_directly_in_the_srv_domain),
        cmocka_unit_test(cluster_nodes_need_unique_names_and_fqdns_and_every_field),
        cmocka_unit_test(cluster_sip_fqdn_must_be_one_of_the_nodes),
        cmocka_unit_test(federation_defaults_federate_with_nobody),
        cmocka_unit_test(federation_sections_set_every_key),
        cmocka_unit_test(federation_errors_name_file_line_and_field),
        cmocka_unit_test(federation_key_errors_name_their_field),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
