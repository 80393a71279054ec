/* `confnode plan` / `confnode csr`: the DNS records and SAN list from a cluster
 * config, a certificate made here with openssl checked against them (missing,
 * extra and wildcard SANs, key usage), and CSRs read back with `openssl req`. */
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

#include "plan.h"

static char tmpdir[] = "/tmp/test_cl_plan.XXXXXX";

static const char cluster_conf[] =
    "sip: { tls_port = 5061; listen = \"192.0.2.10\"; domain = \"example.com\"; };\n"
    "tls: { certificate = \"cert.pem\"; key = \"key.pem\"; };\n"
    "node: { name = \"node1\"; };\n"
    "cluster:\n"
    "{\n"
    "  sip_fqdn = \"node1.example.com\";\n"
    "  srv_domain = \"example.com\";\n"
    "  srv_target = \"sip.example.com\";\n"
    "  nodes = (\n"
    "    { name = \"node1\"; fqdn = \"node1.example.com\"; address = \"192.0.2.10\"; },\n"
    "    { name = \"node2\"; fqdn = \"Node2.example.com\"; address = \"2001:db8::11\"; },\n"
    "    { name = \"media1\"; fqdn = \"media1.example.com\"; address = \"192.0.2.12\";\n"
    "      signaling = false; }\n"
    "  );\n"
    "};\n";

static const char *tmp_path(const char *name)
{
    static char paths[8][PATH_MAX];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Runs a shell command; returns its output (static, NUL-terminated). */
static const char *run(const char *command)
{
    static char out[65536];
    FILE *p = popen(command, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    pclose(p);
    return out;
}

/* A self-signed certificate in tmpdir/name with the given SAN and EKU values. */
static const char *make_cert(const char *name, const char *san, const char *eku)
{
    const char *cert = tmp_path(name);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout '%s/%s.key' -out '%s' -days 2 -subj /CN=sip.example.com "
             "-addext 'subjectAltName=%s' -addext 'extendedKeyUsage=%s' 2>&1 && echo made",
             tmpdir, name, cert, san, eku);
    const char *out = run(cmd);
    if (!strstr(out, "made"))
        fail_msg("openssl req failed: %s", out);
    return cert;
}

static void load(struct cn_config *cfg, struct cn_plan *p)
{
    const char *path = tmp_path("cluster.conf");
    write_file(path, cluster_conf);
    char err[2048];
    if (cn_config_load(path, cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    if (cn_plan_build(cfg, p, err, sizeof err) != 0)
        fail_msg("%s", err);
}

/* cn_plan_check_cert's report and result. */
static int check(const struct cn_plan *p, const char *cert, char *report, size_t len)
{
    FILE *f = fmemopen(report, len, "w");
    assert_non_null(f);
    char err[512];
    int rc = cn_plan_check_cert(p, cert, f, err, sizeof err);
    fclose(f);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char c[PATH_MAX + 16];
    snprintf(c, sizeof c, "rm -rf '%s'", tmpdir);
    return system(c) == 0 ? 0 : -1;
}

/* ---- the plan ------------------------------------------------------------------- */

static void plan_lists_the_srv_the_round_robin_and_each_nodes_own_record(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    load(&cfg, &p);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cn_plan_print(&p, f);
    fclose(f);
    static const char *const lines[] = {
        "\n_sipfederationtls._tcp.example.com. 300 IN SRV 1 100 5061 sip.example.com.\n",
        "\nsip.example.com. 300 IN A 192.0.2.10\n",
        "\nsip.example.com. 300 IN AAAA 2001:db8::11\n",
        "\nnode1.example.com. 300 IN A 192.0.2.10\n",
        "\nnode2.example.com. 300 IN AAAA 2001:db8::11\n",
        "\nmedia1.example.com. 300 IN A 192.0.2.12\n",
        ";   subject: CN=sip.example.com\n",
        ";   subjectAltName: DNS:sip.example.com, DNS:node1.example.com, DNS:node2.example.com, "
        "DNS:media1.example.com\n",
        "extendedKeyUsage: serverAuth, clientAuth",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        if (!strstr(text, lines[i]))
            fail_msg("'%s' missing from:\n%s", lines[i], text);
    /* the media-only node is not in the round robin */
    assert_null(strstr(text, "sip.example.com. 300 IN A 192.0.2.12"));
    /* every line is a record or a comment */
    for (const char *l = text; *l;) {
        const char *nl = strchr(l, '\n');
        assert_non_null(nl);
        if (*l != ';' && !memmem(l, (size_t)(nl - l), " 300 IN ", 8))
            fail_msg("neither a record nor a comment: %.*s", (int)(nl - l), l);
        l = nl + 1;
    }
    assert_int_equal(p.n_san, 4);
    assert_string_equal(p.san[2], "node2.example.com");
    free(text);
    cn_plan_free(&p);
    cn_config_free(&cfg);
}

static void plan_without_nodes_is_this_node_alone_and_needs_its_fqdn(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    char err[1024];
    const char *path = tmp_path("alone.conf");
    write_file(path,
               "sip: { tls_port = 0; listen = \"192.0.2.7\"; domain = \"vc.example.org\"; };\n"
               "cluster: { sip_fqdn = \"node.vc.example.org\"; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cn_plan_build(&cfg, &p, err, sizeof err), 0);
    assert_string_equal(p.srv_domain, "vc.example.org");
    assert_string_equal(p.srv_target, "sip.vc.example.org");
    assert_int_equal(p.port, 5061);
    assert_int_equal(p.n_nodes, 1);
    assert_string_equal(p.nodes[0].address, "192.0.2.7");
    assert_int_equal(p.n_san, 2);
    assert_string_equal(p.san[1], "node.vc.example.org");
    cn_plan_free(&p);
    cn_config_free(&cfg);

    write_file(path, "sip: { tls_port = 0; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    assert_int_equal(cn_plan_build(&cfg, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "no cluster.nodes and no cluster.sip_fqdn"));
    cn_plan_free(&p);
    cn_plan_free(NULL);
    cn_config_free(&cfg);
}

/* ---- checking a certificate --------------------------------------------------------- */

static void certificate_lacking_node_names_is_reported_and_fails(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    load(&cfg, &p);
    const char *cert = make_cert("partial.pem", "DNS:sip.example.com,DNS:node1.example.com",
                                 "serverAuth,clientAuth");
    char report[4096];
    assert_int_equal(check(&p, cert, report, sizeof report), 1);
    assert_non_null(strstr(report, "missing SAN: DNS:node2.example.com\n"));
    assert_non_null(strstr(report, "missing SAN: DNS:media1.example.com\n"));
    assert_null(strstr(report, "missing SAN: DNS:node1.example.com"));
    assert_null(strstr(report, "missing SAN: DNS:sip.example.com"));
    assert_non_null(strstr(report, "result: 2 missing"));
    cn_plan_free(&p);
    cn_config_free(&cfg);
}

static void complete_certificate_passes_and_extras_are_only_noted(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    load(&cfg, &p);
    const char *cert = make_cert("full.pem",
                                 "DNS:sip.example.com,DNS:NODE1.example.com,DNS:node2.example.com,"
                                 "DNS:media1.example.com,DNS:old.example.com,DNS:*.example.com",
                                 "serverAuth,clientAuth");
    char report[4096];
    assert_int_equal(check(&p, cert, report, sizeof report), 0);
    assert_null(strstr(report, "missing"));
    assert_non_null(strstr(report, "extra SAN: DNS:old.example.com"));
    assert_non_null(strstr(report, "wildcard SAN: DNS:*.example.com"));
    assert_non_null(strstr(report, "result: complete"));
    cn_plan_free(&p);
    cn_config_free(&cfg);
}

static void certificate_without_client_auth_fails_for_mutual_tls(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    load(&cfg, &p);
    const char *cert = make_cert("server-only.pem",
                                 "DNS:sip.example.com,DNS:node1.example.com,DNS:node2.example.com,"
                                 "DNS:media1.example.com",
                                 "serverAuth");
    char report[4096];
    assert_int_equal(check(&p, cert, report, sizeof report), 1);
    assert_non_null(strstr(report, "missing extendedKeyUsage: clientAuth"));
    assert_null(strstr(report, "missing SAN"));
    char err[512];
    write_file(tmp_path("not-a-cert.pem"), "hello\n");
    assert_int_equal(cn_plan_check_cert(&p, tmp_path("not-a-cert.pem"), stdout, err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "no PEM certificate"));
    cn_plan_free(&p);
    cn_config_free(&cfg);
}

/* ---- the request ---------------------------------------------------------------------- */

static void csr_carries_the_cn_every_san_and_both_key_usages(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    load(&cfg, &p);
    const char *key = tmp_path("csr-ec.key"), *csr = tmp_path("csr-ec.csr");
    bool created = false;
    char err[512], cmd[PATH_MAX * 2];
    assert_int_equal(cn_plan_write_csr(&p, key, CN_KEY_EC_P256, csr, &created, err, sizeof err), 0);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    snprintf(cmd, sizeof cmd, "openssl req -in '%s' -noout -text -verify 2>&1", csr);
    const char *out = run(cmd);
    static const char *const want[] = {
        "verify OK",
        "Subject: CN = sip.example.com",
        "DNS:sip.example.com, DNS:node1.example.com, DNS:node2.example.com, DNS:media1.example.com",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "Digital Signature",
        "NIST CURVE: P-256",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("'%s' missing from:\n%s", want[i], out);
    assert_null(strstr(out, "*."));

    /* the key exists now: it is reused, not replaced */
    assert_int_equal(cn_plan_write_csr(&p, key, CN_KEY_RSA_2048, csr, &created, err, sizeof err),
                     0);
    assert_false(created);
    char a[1024], b[1024];
    snprintf(cmd, sizeof cmd, "openssl req -in '%s' -noout -pubkey", csr);
    snprintf(a, sizeof a, "%.1023s", run(cmd));
    snprintf(cmd, sizeof cmd, "openssl pkey -in '%s' -pubout", key);
    snprintf(b, sizeof b, "%.1023s", run(cmd));
    assert_true(strlen(a) > 50);
    assert_string_equal(a, b);
    cn_plan_free(&p);
    cn_config_free(&cfg);
}

static void commands_exit_with_what_the_plan_found(void **state)
{
    (void)state;
    const char *conf = tmp_path("cmd.conf");
    write_file(conf, cluster_conf);
    const char *full = make_cert("cmd-full.pem",
                                 "DNS:sip.example.com,DNS:node1.example.com,DNS:node2.example.com,"
                                 "DNS:media1.example.com",
                                 "serverAuth,clientAuth");
    const char *partial =
        make_cert("cmd-partial.pem", "DNS:sip.example.com", "serverAuth,clientAuth");
    const char *key = tmp_path("cmd-rsa.key"), *csr = tmp_path("cmd-rsa.csr");

    fflush(stdout);
    int saved = dup(1);
    FILE *quiet = fopen("/dev/null", "w");
    assert_non_null(quiet);
    dup2(fileno(quiet), 1);
    char *plan_full[] = {"confnode", "plan", "-c", (char *)conf, "--cert", (char *)full};
    char *plan_partial[] = {"confnode",   "plan",   "--config",
                            (char *)conf, "--cert", (char *)partial};
    char *plan_default[] = {"confnode", "plan", "-c", (char *)conf}; /* tls.certificate absent */
    char *plan_bad[] = {"confnode", "plan", "-c", (char *)conf, "--key", "x"};
    char *plan_nocfg[] = {"confnode", "plan"};
    char *csr_rsa[] = {"confnode",  "csr",   "-c",        (char *)conf,    "--key",
                       (char *)key, "--out", (char *)csr, "--key-type=rsa"};
    char *csr_nokey[] = {"confnode", "csr", "-c", (char *)conf, "--out", (char *)csr};
    int rc_full = cn_plan_main(6, plan_full);
    int rc_partial = cn_plan_main(6, plan_partial);
    int rc_default = cn_plan_main(4, plan_default);
    int rc_bad = cn_plan_main(6, plan_bad);
    int rc_nocfg = cn_plan_main(2, plan_nocfg);
    int rc_csr = cn_csr_main(9, csr_rsa);
    int rc_nokey = cn_csr_main(6, csr_nokey);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    fclose(quiet);
    assert_int_equal(rc_full, 0);
    assert_int_equal(rc_partial, 1);
    assert_int_equal(rc_default, 1);
    assert_int_equal(rc_bad, 2);
    assert_int_equal(rc_nocfg, 2);
    assert_int_equal(rc_csr, 0);
    assert_int_equal(rc_nokey, 2);
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "openssl req -in '%s' -noout -text 2>&1", csr);
    const char *out = run(cmd);
    assert_non_null(strstr(out, "Public-Key: (2048 bit)"));
    assert_non_null(strstr(out, "Key Encipherment"));
}

static void store_conf_follows_the_cluster_section(void **state)
{
    (void)state;
    struct cn_config cfg;
    struct cn_plan p;
    load(&cfg, &p);
    struct cl_store_conf sc;
    cn_plan_store_conf(&cfg, &sc);
    assert_int_equal(sc.mode, CL_MODE_STANDALONE);
    assert_string_equal(sc.self.name, "node1");
    assert_string_equal(sc.self.sip_fqdn, "node1.example.com");
    assert_string_equal(sc.self.addresses, "192.0.2.10");
    assert_int_equal(sc.lease_ttl_ms, 15000);
    assert_int_equal(sc.heartbeat_ms, 5000);
    char err[256];
    struct cl_store *s = cl_store_create(&sc, err, sizeof err);
    assert_non_null(s);
    cl_store_free(s);
    cn_plan_free(&p);
    cn_config_free(&cfg);

    const char *path = tmp_path("sentinels.conf");
    write_file(path, "sip: { tls_port = 0; };\nnode: { name = \"n7\"; };\n"
                     "cluster: { mode = \"redis\"; location = \"dc2\"; master_name = \"cn\";\n"
                     "  sentinels = [ \"127.0.0.1:26379\", \"127.0.0.2:26379\" ]; };\n");
    assert_int_equal(cn_config_load(path, &cfg, err, sizeof err), 0);
    cn_plan_store_conf(&cfg, &sc);
    assert_int_equal(sc.mode, CL_MODE_REDIS);
    assert_string_equal(sc.self.location, "dc2");
    assert_int_equal(sc.n_sentinels, 2);
    assert_string_equal(sc.sentinels[1], "127.0.0.2:26379");
    assert_string_equal(sc.master_name, "cn");
    cn_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plan_lists_the_srv_the_round_robin_and_each_nodes_own_record),
        cmocka_unit_test(plan_without_nodes_is_this_node_alone_and_needs_its_fqdn),
        cmocka_unit_test(certificate_lacking_node_names_is_reported_and_fails),
        cmocka_unit_test(complete_certificate_passes_and_extras_are_only_noted),
        cmocka_unit_test(certificate_without_client_auth_fails_for_mutual_tls),
        cmocka_unit_test(csr_carries_the_cn_every_san_and_both_key_usages),
        cmocka_unit_test(commands_exit_with_what_the_plan_found),
        cmocka_unit_test(store_conf_follows_the_cluster_section),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
