/* Federation naming rules: syntax, comparison, strict DNS naming, fall-back hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fed_names.h"

static void check(const char *name, fed_name_status_t want)
{
    fed_name_status_t got = fed_name_check(name, FED_NAME_NUL, 0);
    if (got != want)
        fail_msg("fed_name_check(\"%s\") = %d (%s), expected %d (%s)", name, got,
                 fed_name_status_str(got), want, fed_name_status_str(want));
}

static void syntax_accepts_ordinary_host_and_domain_names(void **state)
{
    (void)state;
    check("example.com", FED_NAME_OK);
    check("sip.example.com", FED_NAME_OK);
    check("SIP.Example.COM.", FED_NAME_OK);
    check("node-1.vc.example.co.uk", FED_NAME_OK);
    check("xn--bcher-kva.example", FED_NAME_OK);
    check("3com.com", FED_NAME_OK);
}

static void syntax_names_each_kind_of_problem(void **state)
{
    (void)state;
    char long_label[80], long_name[300];
    memset(long_label, 'a', 64);
    snprintf(long_label + 64, sizeof long_label - 64, ".com");
    size_t n = 0;
    while (n < 260) {
        memcpy(long_name + n, "abcdefghi.", 10);
        n += 10;
    }
    snprintf(long_name + n, sizeof long_name - n, "com");

    check("", FED_NAME_EMPTY);
    check(".", FED_NAME_EMPTY);
    check(long_name, FED_NAME_TOO_LONG);
    check(".example.com", FED_NAME_EMPTY_LABEL);
    check("sip..example.com", FED_NAME_EMPTY_LABEL);
    check("example.com..", FED_NAME_EMPTY_LABEL);
    check(long_label, FED_NAME_LABEL_TOO_LONG);
    check("*.example.com", FED_NAME_BAD_CHAR);
    check("sip_1.example.com", FED_NAME_BAD_CHAR);
    check("sip example.com", FED_NAME_BAD_CHAR);
    check("caf\xc3\xa9.example", FED_NAME_BAD_CHAR);
    check("-sip.example.com", FED_NAME_HYPHEN_EDGE);
    check("sip-.example.com", FED_NAME_HYPHEN_EDGE);
    check("localhost", FED_NAME_SINGLE_LABEL);
    check("192.0.2.1", FED_NAME_NUMERIC_TLD);
}

static void syntax_flags_allow_single_labels_and_srv_owner_names(void **state)
{
    (void)state;
    assert_int_equal(fed_name_check("localhost", FED_NAME_NUL, FED_NAME_ALLOW_SINGLE_LABEL),
                     FED_NAME_OK);
    assert_int_equal(fed_name_check("_sipfederationtls._tcp.example.com", FED_NAME_NUL,
                                    FED_NAME_ALLOW_UNDERSCORE),
                     FED_NAME_OK);
    assert_int_equal(fed_name_check("_sipfederationtls._tcp.example.com", FED_NAME_NUL, 0),
                     FED_NAME_BAD_CHAR);
}

static void syntax_reads_only_the_given_length(void **state)
{
    (void)state;
    const char buf[] = "example.com;transport=tls";
    assert_int_equal(fed_name_check(buf, 11, 0), FED_NAME_OK);
    assert_int_equal(fed_name_check(buf, sizeof buf - 1, 0), FED_NAME_BAD_CHAR);
}

static void equality_ignores_case_and_one_trailing_dot(void **state)
{
    (void)state;
    assert_true(fed_name_equal("sip.example.com", FED_NAME_NUL, "SIP.EXAMPLE.COM.", FED_NAME_NUL));
    assert_true(fed_name_equal("sip.example.com.", FED_NAME_NUL, "sip.example.com", FED_NAME_NUL));
    assert_false(fed_name_equal("sip.example.com", FED_NAME_NUL, "sip.example.co", FED_NAME_NUL));
    assert_false(
        fed_name_equal("sip.example.com..", FED_NAME_NUL, "sip.example.com", FED_NAME_NUL));
    assert_false(fed_name_equal("sip1.example.com", FED_NAME_NUL, "sip.example.com", FED_NAME_NUL));
    assert_true(fed_name_equal("sip.example.comXYZ", 15, "sip.example.com", FED_NAME_NUL));
}

static void normalize_lowercases_and_strips_the_dot(void **state)
{
    (void)state;
    char out[FED_NAME_BUF];
    assert_int_equal(fed_name_normalize("SIP.Example.COM.", FED_NAME_NUL, 0, out, sizeof out), 15);
    assert_string_equal(out, "sip.example.com");
    assert_int_equal(fed_name_normalize("bad..name", FED_NAME_NUL, 0, out, sizeof out), -1);
    assert_string_equal(out, "");
    char small[8];
    assert_int_equal(fed_name_normalize("example.com", FED_NAME_NUL, 0, small, sizeof small), -1);
    assert_string_equal(small, "");
}

static void parent_is_everything_after_the_first_label(void **state)
{
    (void)state;
    const char *p;
    size_t n = fed_name_parent("sip.example.com.", FED_NAME_NUL, &p);
    assert_int_equal(n, 11);
    assert_memory_equal(p, "example.com", 11);
    assert_int_equal(fed_name_parent("localhost", FED_NAME_NUL, &p), 0);
    assert_null(p);
    assert_int_equal(fed_name_parent("x.", FED_NAME_NUL, &p), 0);
}

static void strict(const char *domain, const char *target, fed_strict_t want)
{
    fed_strict_t got = fed_name_strict(domain, FED_NAME_NUL, target, FED_NAME_NUL);
    if (got != want)
        fail_msg("fed_name_strict(\"%s\", \"%s\") = %s, expected %s", domain, target,
                 fed_strict_str(got), fed_strict_str(want));
}

static void strict_naming_allows_the_domain_and_hosts_directly_in_it(void **state)
{
    (void)state;
    strict("example.com", "sip.example.com", FED_STRICT_CHILD);
    strict("example.com", "SIP.EXAMPLE.COM.", FED_STRICT_CHILD);
    strict("Example.Com.", "sip.example.com", FED_STRICT_CHILD);
    strict("example.com", "example.com", FED_STRICT_SELF);
    strict("vc.example.com", "sip.vc.example.com", FED_STRICT_CHILD);
    assert_true(fed_strict_ok(FED_STRICT_SELF));
    assert_true(fed_strict_ok(FED_STRICT_CHILD));
}

static void strict_naming_refuses_subdomains_other_domains_and_lookalikes(void **state)
{
    (void)state;
    strict("example.com", "sip.sub.example.com", FED_STRICT_SUBDOMAIN);
    strict("cms.example.com", "sip.sub.cms.example.com", FED_STRICT_SUBDOMAIN);
    strict("example.com", "sip.other.com", FED_STRICT_OTHER);
    strict("example.com", "sipexample.com", FED_STRICT_OTHER);
    strict("example.com", "sip.example.com.evil.net", FED_STRICT_OTHER);
    strict("sub.example.com", "sip.example.com", FED_STRICT_OTHER);
    strict("example.com", "sip..example.com", FED_STRICT_INVALID);
    strict("localhost", "sip.localhost", FED_STRICT_INVALID);
    assert_false(fed_strict_ok(FED_STRICT_SUBDOMAIN));
    assert_false(fed_strict_ok(FED_STRICT_OTHER));
    assert_false(fed_strict_ok(FED_STRICT_INVALID));
}

static void fallback_hosts_come_in_lync_order(void **state)
{
    (void)state;
    char out[4][FED_NAME_BUF];
    assert_int_equal(
        fed_name_fallback_hosts("Example.COM.", FED_NAME_NUL, FED_FALLBACK_SIP, out, 4), 1);
    assert_string_equal(out[0], "sip.example.com");
    size_t n = fed_name_fallback_hosts("example.com", FED_NAME_NUL,
                                       FED_FALLBACK_SIP | FED_FALLBACK_INTERNAL_EXTERNAL, out, 4);
    assert_int_equal(n, 3);
    assert_string_equal(out[1], "sipinternal.example.com");
    assert_string_equal(out[2], "sipexternal.example.com");
    assert_int_equal(fed_name_fallback_hosts("example.com", FED_NAME_NUL,
                                             FED_FALLBACK_SIP | FED_FALLBACK_INTERNAL_EXTERNAL, out,
                                             2),
                     2);
    assert_int_equal(fed_name_fallback_hosts("bad..com", FED_NAME_NUL, FED_FALLBACK_SIP, out, 4),
                     0);
}

static void fallback_host_that_would_be_too_long_gives_none(void **state)
{
    (void)state;
    /* five 49-letter labels and "com": 253 characters, the longest valid name */
    char name[FED_NAME_BUF] = "";
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(name);
        memset(name + n, 'a' + i, 49);
        name[n + 49] = '.';
        name[n + 50] = '\0';
    }
    strcat(name, "com");
    assert_int_equal(strlen(name), FED_NAME_MAX);
    assert_int_equal(fed_name_check(name, FED_NAME_NUL, 0), FED_NAME_OK);
    char out[3][FED_NAME_BUF];
    assert_int_equal(fed_name_fallback_hosts(name, FED_NAME_NUL, FED_FALLBACK_SIP, out, 3), 0);
}

static void ip_literals_are_recognised(void **state)
{
    (void)state;
    assert_true(fed_name_is_ip_literal("192.0.2.1", FED_NAME_NUL));
    assert_true(fed_name_is_ip_literal("2001:db8::1", FED_NAME_NUL));
    assert_true(fed_name_is_ip_literal("[2001:db8::1]", FED_NAME_NUL));
    assert_false(fed_name_is_ip_literal("sip.example.com", FED_NAME_NUL));
    assert_false(fed_name_is_ip_literal("192.0.2.1.example", FED_NAME_NUL));
    assert_false(fed_name_is_ip_literal("", FED_NAME_NUL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(syntax_accepts_ordinary_host_and_domain_names),
        cmocka_unit_test(syntax_names_each_kind_of_problem),
        cmocka_unit_test(syntax_flags_allow_single_labels_and_srv_owner_names),
        cmocka_unit_test(syntax_reads_only_the_given_length),
        cmocka_unit_test(equality_ignores_case_and_one_trailing_dot),
        cmocka_unit_test(normalize_lowercases_and_strips_the_dot),
        cmocka_unit_test(parent_is_everything_after_the_first_label),
        cmocka_unit_test(strict_naming_allows_the_domain_and_hosts_directly_in_it),
        cmocka_unit_test(strict_naming_refuses_subdomains_other_domains_and_lookalikes),
        cmocka_unit_test(fallback_hosts_come_in_lync_order),
        cmocka_unit_test(fallback_host_that_would_be_too_long_gives_none),
        cmocka_unit_test(ip_literals_are_recognised),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
