/* confbench: the route set a 2xx gives the dialog (cb_sip_route_set), which the
 * conference check follows through a cluster node that proxies to the owner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/confbench/cb_sip.c"

#define HEAD                                                                                       \
    "SIP/2.0 200 OK\r\n"                                                                           \
    "Via: SIP/2.0/UDP 10.0.0.200:5100;branch=z9hG4bK-cf-1;rport=5100\r\n"                          \
    "From: <sip:confbench@confbench.invalid>;tag=cf0\r\n"                                          \
    "To: <sip:room1@cluster.test>;tag=n3\r\n"                                                      \
    "Call-ID: cbconf.0.1.2@10.0.0.200\r\n"                                                         \
    "CSeq: 1 INVITE\r\n"                                                                           \
    "Contact: <sip:room1@10.0.0.13:5061;transport=tls>\r\n"

static int route_set(const char *msg, char *out, size_t cap)
{
    return cb_sip_route_set(msg, strlen(msg), out, cap);
}

static void a_2xx_without_record_route_gives_an_empty_route_set(void **state)
{
    (void)state;
    char out[256] = "junk";
    const char msg[] = HEAD "Content-Length: 0\r\n\r\n";
    assert_int_equal(route_set(msg, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void the_entries_of_one_header_come_out_reversed(void **state)
{
    (void)state;
    char out[256];
    const char msg[] = HEAD "Record-Route: <sip:10.0.0.12:5061;transport=tls;lr>, "
                            "<sip:10.0.0.12:5060;transport=udp;lr>\r\n"
                            "Content-Length: 0\r\n\r\n";
    assert_int_equal(route_set(msg, out, sizeof out), 2);
    assert_string_equal(out, "<sip:10.0.0.12:5060;transport=udp;lr>, "
                             "<sip:10.0.0.12:5061;transport=tls;lr>");
}

static void entries_on_several_header_lines_are_reversed_as_one_list(void **state)
{
    (void)state;
    char out[256];
    const char msg[] = "SIP/2.0 200 OK\r\n"
                       "Record-Route: <sip:p1;lr>\r\n"
                       "Call-ID: x\r\n"
                       "Record-Route: <sip:p2;lr>, <sip:p3;lr>\r\n"
                       "\r\n";
    assert_int_equal(route_set(msg, out, sizeof out), 3);
    assert_string_equal(out, "<sip:p3;lr>, <sip:p2;lr>, <sip:p1;lr>");
}

static void commas_inside_quotes_or_angle_brackets_do_not_split_entries(void **state)
{
    (void)state;
    char out[256];
    const char msg[] = HEAD "Record-Route: \"Edge, north\" <sip:e.example;lr>;x=1, "
                            "<sip:f.example;lr;maddr=a,b>\r\n\r\n";
    assert_int_equal(route_set(msg, out, sizeof out), 2);
    assert_string_equal(out,
                        "<sip:f.example;lr;maddr=a,b>, \"Edge, north\" <sip:e.example;lr>;x=1");
}

static void header_names_match_in_any_case_and_folded_lines_continue_the_value(void **state)
{
    (void)state;
    char out[256];
    const char msg[] = HEAD "record-route: <sip:a;lr>,\r\n  <sip:b;lr>\r\n"
                            "RECORD-ROUTE:<sip:c;lr>\r\n\r\n";
    assert_int_equal(route_set(msg, out, sizeof out), 3);
    assert_string_equal(out, "<sip:c;lr>, <sip:b;lr>, <sip:a;lr>");
    assert_null(strpbrk(out, "\r\n"));
}

static void similar_headers_and_the_body_are_not_part_of_the_route_set(void **state)
{
    (void)state;
    char out[256];
    const char msg[] = HEAD "Route: <sip:r;lr>\r\n"
                            "Record-Route-Extra: <sip:x;lr>\r\n"
                            "Content-Length: 26\r\n\r\n"
                            "Record-Route: <sip:y;lr>\r\n";
    assert_int_equal(route_set(msg, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void too_many_entries_or_too_small_a_buffer_is_an_error(void **state)
{
    (void)state;
    char msg[2048], out[1024], small[20] = "junk";
    int n = snprintf(msg, sizeof msg, "SIP/2.0 200 OK\r\nRecord-Route: ");
    for (int i = 0; i <= CB_ROUTE_MAX; i++)
        n += snprintf(msg + n, sizeof msg - (size_t)n, "%s<sip:p%d;lr>", i ? ", " : "", i);
    snprintf(msg + n, sizeof msg - (size_t)n, "\r\n\r\n");
    assert_int_equal(route_set(msg, out, sizeof out), -1);

    const char two[] =
        HEAD "Record-Route: <sip:10.0.0.12:5061;lr>, <sip:10.0.0.12:5060;lr>\r\n\r\n";
    assert_int_equal(route_set(two, small, sizeof small), -1);
    assert_string_equal(small, "");
    assert_int_equal(route_set(two, out, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_2xx_without_record_route_gives_an_empty_route_set),
        cmocka_unit_test(the_entries_of_one_header_come_out_reversed),
        cmocka_unit_test(entries_on_several_header_lines_are_reversed_as_one_list),
        cmocka_unit_test(commas_inside_quotes_or_angle_brackets_do_not_split_entries),
        cmocka_unit_test(header_names_match_in_any_case_and_folded_lines_continue_the_value),
        cmocka_unit_test(similar_headers_and_the_body_are_not_part_of_the_route_set),
        cmocka_unit_test(too_many_entries_or_too_small_a_buffer_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
