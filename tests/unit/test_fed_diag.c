/* ms-diagnostics: the codes table, the builder byte for byte, the parser on headers
 * as Microsoft edges send them, build/parse round trips and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "fed_diag.h"

static void codes_table_has_the_field_reasons(void **state)
{
    (void)state;
    assert_string_equal(fed_diag_reason(1009), "No match for domain in DNS SRV results");
    assert_string_equal(fed_diag_reason(1010),
                        "Certificate trust with another server could not be established");
    assert_string_equal(fed_diag_reason(1027),
                        "Cannot route this type of SIP request to or from federated partners");
    assert_string_equal(fed_diag_reason(1034),
                        "Previous hop federated peer did not report diagnostic information");
    assert_string_equal(fed_diag_reason(1047),
                        "Failed to complete TLS negotiation with a federated peer server");
    assert_string_equal(fed_diag_reason(1008), "Unable to resolve DNS SRV record");
    assert_null(fed_diag_reason(4242));
}

static void builder_writes_the_1009_header_as_edges_do(void **state)
{
    (void)state;
    char buf[512];
    const struct fed_diag_param p[] = {
        {"domain", "cms.example.com"},
        {"fqdn1", "sip.sub.cms.example.com:5061"},
        {"source", "sip.example.com"},
    };
    int n = fed_diag_build(buf, sizeof buf, 1009, NULL, p, 3);
    const char *want = "1009;reason=\"No match for domain in DNS SRV results\";"
                       "domain=\"cms.example.com\";fqdn1=\"sip.sub.cms.example.com:5061\";"
                       "source=\"sip.example.com\"";
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void builder_escapes_quotes_and_backslashes_and_blanks_control_characters(void **state)
{
    (void)state;
    char buf[256];
    const struct fed_diag_param p[] = {{"ErrorType", "a \"quoted\" \\ path\r\nInjected: yes"}};
    int n = fed_diag_build(buf, sizeof buf, 1010, NULL, p, 1);
    assert_true(n > 0);
    assert_non_null(strstr(buf, ";ErrorType=\"a \\\"quoted\\\" \\\\ path  Injected: yes\""));
    assert_null(strchr(buf, '\r'));
    assert_null(strchr(buf, '\n'));
}

static void builder_keeps_valid_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    char buf[128];
    const struct fed_diag_param p[] = {{"x", "caf\xc3\xa9 \xff\xc3"}};
    assert_true(fed_diag_build(buf, sizeof buf, 1034, "", p, 1) > 0);
    assert_string_equal(buf, "1034;reason=\"\";x=\"caf\xc3\xa9 ??\"");
}

static void builder_refuses_bad_arguments_and_small_buffers(void **state)
{
    (void)state;
    char buf[64];
    const struct fed_diag_param bad[] = {{"bad name", "v"}};
    const struct fed_diag_param nul[] = {{"n", NULL}};
    assert_int_equal(fed_diag_build(buf, sizeof buf, 0, NULL, NULL, 0), FED_DIAG_ERR_ARG);
    assert_int_equal(fed_diag_build(buf, sizeof buf, 1009, NULL, bad, 1), FED_DIAG_ERR_ARG);
    assert_int_equal(fed_diag_build(buf, sizeof buf, 1009, NULL, nul, 1), FED_DIAG_ERR_ARG);
    /* exactly fitting and one byte short */
    int n = fed_diag_build(buf, sizeof buf, 1027, "r", NULL, 0);
    assert_int_equal(n, (int)strlen("1027;reason=\"r\""));
    char small[16];
    assert_int_equal(fed_diag_build(small, (size_t)n + 1, 1027, "r", NULL, 0), n);
    assert_int_equal(fed_diag_build(small, (size_t)n, 1027, "r", NULL, 0), FED_DIAG_ERR_SPACE);
    assert_string_equal(small, "");
}

static void builder_omits_the_reason_for_an_unknown_code_without_one(void **state)
{
    (void)state;
    char buf[64];
    assert_int_equal(fed_diag_build(buf, sizeof buf, 52001, NULL, NULL, 0), 5);
    assert_string_equal(buf, "52001");
}

static fed_diag_str_t param(const struct fed_diag_parsed *p, const char *name, char *buf,
                            size_t size)
{
    fed_diag_str_t v = fed_diag_param(p, name);
    if (v.s == NULL)
        fail_msg("parameter %s missing", name);
    fed_diag_unescape(v, buf, size);
    return v;
}

static void parser_reads_a_1047_header_from_the_field(void **state)
{
    (void)state;
    const char *h = "1047;reason=\"Failed to complete TLS negotiation with a federated peer "
                    "server\";WinsockFailureCode=\"10054(WSAECONNRESET)\";"
                    "WinsockFailureDescription=\"The peer forced closure of the connection\"";
    struct fed_diag_parsed p;
    char v[128];
    assert_int_equal(fed_diag_parse(h, strlen(h), &p), FED_DIAG_OK);
    assert_int_equal(p.code, 1047);
    assert_int_equal(p.n_params, 3);
    fed_diag_unescape(p.reason, v, sizeof v);
    assert_string_equal(v, "Failed to complete TLS negotiation with a federated peer server");
    param(&p, "winsockfailurecode", v, sizeof v);
    assert_string_equal(v, "10054(WSAECONNRESET)");
}

static void parser_accepts_spaces_bare_values_flags_and_a_trailing_semicolon(void **state)
{
    (void)state;
    const char *h = "  1034 ; reason = \"Previous hop\" ;source=sip.example.com:5061; flag ;";
    struct fed_diag_parsed p;
    char v[64];
    assert_int_equal(fed_diag_parse(h, strlen(h), &p), FED_DIAG_OK);
    assert_int_equal(p.code, 1034);
    assert_int_equal(p.n_params, 3);
    param(&p, "source", v, sizeof v);
    assert_string_equal(v, "sip.example.com:5061");
    assert_false(p.params[1].quoted);
    assert_memory_equal(p.params[2].name.s, "flag", 4);
    assert_null(p.params[2].value.s);
}

static void build_then_parse_gives_back_every_value(void **state)
{
    (void)state;
    const struct fed_diag_param in[] = {
        {"ErrorType", FED_DIAG_ERRTYPE_NO_FQDN},
        {"tls-target", "sip.example.com"},
        {"PeerServer", "weird \"name\" with \\ and ; and ,"},
    };
    char buf[512], v[128];
    int n = fed_diag_build(buf, sizeof buf, 1010, NULL, in, 3);
    assert_true(n > 0);
    struct fed_diag_parsed p;
    assert_int_equal(fed_diag_parse(buf, (size_t)n, &p), FED_DIAG_OK);
    assert_int_equal(p.code, 1010);
    assert_int_equal(p.n_params, 4);
    fed_diag_unescape(p.reason, v, sizeof v);
    assert_string_equal(v, fed_diag_reason(1010));
    for (size_t i = 0; i < 3; i++) {
        param(&p, in[i].name, v, sizeof v);
        assert_string_equal(v, in[i].value);
    }
}

static void parser_refuses_malformed_values(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "reason=\"x\"",
        "10x9",
        "1009 extra",
        "1009;reason=\"unterminated",
        "1009;reason=\"ends in backslash\\",
        "1009;=\"no name\"",
        "1009;reason=",
        "1009;reason=\"x\"junk",
        "1009;;",
        "1234567890",
        "1009;reason=\"line\nbreak\"",
        "1009;a b=\"c\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct fed_diag_parsed p;
        if (fed_diag_parse(bad[i], strlen(bad[i]), &p) != FED_DIAG_ERR_SYNTAX)
            fail_msg("accepted malformed \"%s\"", bad[i]);
    }
    struct fed_diag_parsed p;
    assert_int_equal(fed_diag_parse(NULL, 4, &p), FED_DIAG_ERR_SYNTAX);
    assert_int_equal(fed_diag_parse("1009", 4, NULL), FED_DIAG_ERR_ARG);
}

static void parser_keeps_the_first_params_when_there_are_too_many(void **state)
{
    (void)state;
    char h[1024] = "1009";
    for (int i = 0; i < FED_DIAG_MAX_PARAMS + 4; i++) {
        size_t n = strlen(h);
        snprintf(h + n, sizeof h - n, ";p%d=\"%d\"", i, i);
    }
    struct fed_diag_parsed p;
    assert_int_equal(fed_diag_parse(h, strlen(h), &p), FED_DIAG_ERR_TOO_MANY);
    assert_int_equal(p.n_params, FED_DIAG_MAX_PARAMS);
    char v[8];
    param(&p, "p15", v, sizeof v);
    assert_string_equal(v, "15");
    assert_null(fed_diag_param(&p, "p16").s);
    /* a syntax error after the limit is still an error */
    size_t n = strlen(h);
    snprintf(h + n, sizeof h - n, ";\"oops");
    assert_int_equal(fed_diag_parse(h, strlen(h), &p), FED_DIAG_ERR_SYNTAX);
}

/* Every prefix of a valid header, placed at the very end of a readable page followed
 * by an inaccessible one: any read past the given length faults. */
static void parser_never_reads_past_the_given_length(void **state)
{
    (void)state;
    const char *h = "1010;reason=\"Certificate trust\";ErrorType=\"x \\\" y\";bare=v;flag";
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *mem = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    assert_int_equal(mprotect(mem + pg, pg, PROT_NONE), 0);
    size_t len = strlen(h);
    int ok = 0;
    for (size_t k = 0; k <= len; k++) {
        char *p = mem + pg - k;
        memcpy(p, h, k);
        struct fed_diag_parsed out;
        if (fed_diag_parse(p, k, &out) == FED_DIAG_OK)
            ok++;
    }
    munmap(mem, 2 * pg);
    /* complete prefixes: "1", "10", "101", "1010", "...;bare=v", "...;f" ... "...;flag" */
    assert_true(ok >= 8);
}

static void unescape_reports_truncation(void **state)
{
    (void)state;
    fed_diag_str_t v = {"ab\\\"cd", 6};
    char buf[8];
    assert_int_equal(fed_diag_unescape(v, buf, sizeof buf), 5);
    assert_string_equal(buf, "ab\"cd");
    char small[3];
    assert_int_equal(fed_diag_unescape(v, small, sizeof small), FED_DIAG_ERR_SPACE);
    assert_string_equal(small, "ab");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(codes_table_has_the_field_reasons),
        cmocka_unit_test(builder_writes_the_1009_header_as_edges_do),
        cmocka_unit_test(builder_escapes_quotes_and_backslashes_and_blanks_control_characters),
        cmocka_unit_test(builder_keeps_valid_utf8_and_replaces_invalid_bytes),
        cmocka_unit_test(builder_refuses_bad_arguments_and_small_buffers),
        cmocka_unit_test(builder_omits_the_reason_for_an_unknown_code_without_one),
        cmocka_unit_test(parser_reads_a_1047_header_from_the_field),
        cmocka_unit_test(parser_accepts_spaces_bare_values_flags_and_a_trailing_semicolon),
        cmocka_unit_test(build_then_parse_gives_back_every_value),
        cmocka_unit_test(parser_refuses_malformed_values),
        cmocka_unit_test(parser_keeps_the_first_params_when_there_are_too_many),
        cmocka_unit_test(parser_never_reads_past_the_given_length),
        cmocka_unit_test(unescape_reports_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
