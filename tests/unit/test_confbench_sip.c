/* confbench SIP text: the response scanner, request builder and SDP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/confbench/cb_sip.c"

static const char ok_invite[] =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/TLS 127.0.0.1:40000;branch=z9hG4bKabc;rport=40000;received=127.0.0.1, "
    "SIP/2.0/TLS 10.0.0.1;branch=z9hG4bKother\r\n"
    "From: <sip:confbench@confbench.invalid>;tag=f1\r\n"
    "To: \"Meet\" <sip:meet@example.test;tag=uri-param>;tag=t9\r\n"
    "Call-ID: cb0.1.2.abc\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:meet@127.0.0.1:5061;transport=tls>;expires=60\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 14\r\n"
    "\r\n"
    "v=0\r\nm=audio 1";

static void scanner_reads_every_field_a_uac_needs(void **state)
{
    (void)state;
    cb_sip_msg_t m;
    assert_int_equal(cb_sip_parse(ok_invite, strlen(ok_invite), &m), CB_SIP_OK);
    assert_false(m.is_request);
    assert_int_equal(m.status, 200);
    assert_true(cb_str_eq(m.call_id, "cb0.1.2.abc", false));
    assert_int_equal(m.cseq, 1);
    assert_true(cb_str_eq(m.cseq_method, "INVITE", false));
    assert_true(cb_str_eq(m.to_tag, "t9", false)); /* not the URI parameter */
    assert_true(cb_str_eq(m.from_tag, "f1", false));
    assert_true(cb_str_eq(m.branch, "z9hG4bKabc", false)); /* top Via only */
    assert_true(cb_str_eq(m.contact_uri, "sip:meet@127.0.0.1:5061;transport=tls", false));
    assert_true(cb_str_eq(m.content_type, "application/sdp", true));
    assert_int_equal(m.content_length, 14);
    assert_int_equal(m.body.len, 14);
    assert_memory_equal(m.body.s, "v=0\r\nm=audio 1", 14);
}

static void scanner_accepts_compact_names_any_case_and_folded_lines(void **state)
{
    (void)state;
    static const char msg[] = "SIP/2.0 180 Ringing\r\n"
                              "v: SIP/2.0/UDP h;BRANCH = z9hG4bKx1\r\n"
                              "f: <sip:a@b>;tag=1\r\n"
                              "t: <sip:c@d>\r\n"
                              "  ;tag=folded\r\n"
                              "i: cb3.4.5.x\r\n"
                              "cseq: 7 BYE\r\n"
                              "m: sip:e@f\r\n"
                              "l: 0\r\n\r\n";
    cb_sip_msg_t m;
    assert_int_equal(cb_sip_parse(msg, strlen(msg), &m), CB_SIP_OK);
    assert_int_equal(m.status, 180);
    assert_true(cb_str_eq(m.branch, "z9hG4bKx1", false));
    assert_true(cb_str_eq(m.to_tag, "folded", false));
    assert_true(cb_str_eq(m.call_id, "cb3.4.5.x", false));
    assert_int_equal(m.cseq, 7);
    assert_true(cb_str_eq(m.cseq_method, "BYE", false));
    assert_true(cb_str_eq(m.contact_uri, "sip:e@f", false));
    assert_int_equal(m.body.len, 0);
}

static void scanner_reads_requests_from_the_far_end(void **state)
{
    (void)state;
    static const char msg[] = "OPTIONS sip:confbench@127.0.0.1:5060 SIP/2.0\r\n"
                              "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKk\r\n"
                              "From: <sip:n@x>;tag=a\r\nTo: <sip:confbench@y>\r\n"
                              "Call-ID: k1\r\nCSeq: 3 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    cb_sip_msg_t m;
    assert_int_equal(cb_sip_parse(msg, strlen(msg), &m), CB_SIP_OK);
    assert_true(m.is_request);
    assert_true(cb_str_eq(m.method, "OPTIONS", false));
    assert_true(cb_str_eq(m.ruri, "sip:confbench@127.0.0.1:5060", false));
    char out[1024];
    ssize_t n = cb_sip_build_response(out, sizeof(out), &m, 200, "OK", "tt");
    assert_true(n > 0);
    cb_sip_msg_t r;
    assert_int_equal(cb_sip_parse(out, (size_t)n, &r), CB_SIP_OK);
    assert_int_equal(r.status, 200);
    assert_true(cb_str_eq(r.call_id, "k1", false));
    assert_true(cb_str_eq(r.branch, "z9hG4bKk", false));
    assert_true(cb_str_eq(r.to_tag, "tt", false));
    assert_int_equal(r.cseq, 3);
}

static void scanner_refuses_broken_messages_with_distinct_codes(void **state)
{
    (void)state;
    cb_sip_msg_t m;
    static const char no_callid[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z\r\n"
                                    "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(cb_sip_parse(no_callid, strlen(no_callid), &m), CB_SIP_ERR_MISSING);
    static const char bad_start[] = "HTTP/1.1 200 OK\r\n\r\n";
    assert_int_equal(cb_sip_parse(bad_start, strlen(bad_start), &m), CB_SIP_ERR_START);
    static const char bad_code[] = "SIP/2.0 2x0 OK\r\n\r\n";
    assert_int_equal(cb_sip_parse(bad_code, strlen(bad_code), &m), CB_SIP_ERR_START);
    static const char long_body[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z\r\n"
                                    "Call-ID: a\r\nCSeq: 1 BYE\r\nContent-Length: 10\r\n\r\nabc";
    assert_int_equal(cb_sip_parse(long_body, strlen(long_body), &m), CB_SIP_ERR_LENGTH);
    static const char bad_len[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z\r\n"
                                  "Call-ID: a\r\nCSeq: 1 BYE\r\nContent-Length: -1\r\n\r\n";
    assert_int_equal(cb_sip_parse(bad_len, strlen(bad_len), &m), CB_SIP_ERR_LENGTH);
    static const char bad_cseq[] = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z\r\n"
                                   "Call-ID: a\r\nCSeq: 99999999999 BYE\r\n\r\n";
    assert_int_equal(cb_sip_parse(bad_cseq, strlen(bad_cseq), &m), CB_SIP_ERR_MISSING);
}

/* Every prefix of a valid message is scanned from a heap copy of exactly that size,
 * so a read past the end is caught by AddressSanitizer. */
static void scanner_never_reads_past_any_prefix(void **state)
{
    (void)state;
    size_t len = strlen(ok_invite);
    int complete = 0;
    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, ok_invite, n);
        cb_sip_msg_t m;
        if (cb_sip_parse(copy, n, &m) == CB_SIP_OK)
            complete++;
        cb_str_t id = cb_sip_find_header(copy, n, "Call-ID", 'i');
        if (id.s)
            assert_true(id.s + id.len <= copy + n);
        free(copy);
    }
    assert_int_equal(complete, 1); /* only the whole message, since Content-Length says so */
}

static void built_requests_carry_every_mandatory_header_and_scan_back(void **state)
{
    (void)state;
    static const char sdp[] = "v=0\r\n";
    cb_req_t r = {
        .method = "INVITE",
        .ruri = "sip:meet@example.test",
        .transport = "TLS",
        .via_host = "127.0.0.2",
        .via_port = 40123,
        .branch = "z9hG4bK1234",
        .from_uri = "sip:confbench@confbench.invalid",
        .from_tag = "ft",
        .to_uri = "sip:meet@example.test",
        .call_id = "cb0.7.1.ff",
        .cseq = 1,
        .contact = "sip:confbench@127.0.0.2:40123;transport=tls",
        .content_type = "application/sdp",
        .body = sdp,
        .body_len = strlen(sdp),
    };
    char out[2048];
    ssize_t n = cb_sip_build_request(out, sizeof(out), &r);
    assert_true(n > 0);
    static const char *const must[] = {
        "INVITE sip:meet@example.test SIP/2.0\r\n",
        "Via: SIP/2.0/TLS 127.0.0.2:40123;branch=z9hG4bK1234;rport\r\n",
        "Max-Forwards: 70\r\n",
        "From: <sip:confbench@confbench.invalid>;tag=ft\r\n",
        "To: <sip:meet@example.test>\r\n",
        "Call-ID: cb0.7.1.ff\r\n",
        "CSeq: 1 INVITE\r\n",
        "Contact: <sip:confbench@127.0.0.2:40123;transport=tls>\r\n",
        "Content-Length: 5\r\n\r\nv=0\r\n",
    };
    for (size_t i = 0; i < sizeof(must) / sizeof(must[0]); i++)
        assert_non_null(strstr(out, must[i]));
    cb_sip_msg_t m;
    assert_int_equal(cb_sip_parse(out, (size_t)n, &m), CB_SIP_OK);
    assert_true(m.is_request);
    assert_true(cb_str_eq(m.branch, "z9hG4bK1234", false));
    assert_int_equal(m.body.len, 5);
    /* ACK in a dialog: To-tag, CSeq method of its own. */
    r.method = "ACK";
    r.to_tag = "tt";
    r.body = NULL;
    r.contact = NULL;
    n = cb_sip_build_request(out, sizeof(out), &r);
    assert_true(n > 0);
    assert_non_null(strstr(out, "To: <sip:meet@example.test>;tag=tt\r\n"));
    assert_non_null(strstr(out, "CSeq: 1 ACK\r\n"));
    assert_non_null(strstr(out, "Content-Length: 0\r\n\r\n"));
    assert_null(strstr(out, "Contact:"));
    /* Too small a buffer is reported, not truncated silently. */
    assert_int_equal(cb_sip_build_request(out, 64, &r), -1);
}

static void sdp_offer_and_answer_agree_on_address_port_and_codec(void **state)
{
    (void)state;
    char sdp[1024];
    ssize_t n = cb_sdp_offer(sdp, sizeof(sdp), "127.0.0.3", 40002, 42, false, NULL);
    assert_true(n > 0);
    assert_non_null(strstr(sdp, "m=audio 40002 RTP/AVP 0 8 101\r\n"));
    assert_non_null(strstr(sdp, "c=IN IP4 127.0.0.3\r\n"));
    cb_sdp_answer_t a;
    assert_int_equal(cb_sdp_parse(sdp, (size_t)n, &a), 0);
    assert_string_equal(a.addr, "127.0.0.3");
    assert_int_equal(a.port, 40002);
    assert_int_equal(a.pt, 0);
    assert_false(a.savp);
    n = cb_sdp_offer(sdp, sizeof(sdp), "::1", 40004, 43, true,
                     "YUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk");
    assert_true(n > 0);
    assert_non_null(strstr(sdp, "m=audio 40004 RTP/SAVP"));
    assert_non_null(strstr(sdp, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:YUJD"));
    assert_non_null(strstr(sdp, "c=IN IP6 ::1\r\n"));
    assert_int_equal(cb_sdp_offer(sdp, sizeof(sdp), "::1", 1, 1, true, NULL), -1);
}

static void sdp_answer_prefers_the_media_level_connection_line(void **state)
{
    (void)state;
    static const char ans[] = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n"
                              "c=IN IP4 10.0.0.1\r\nt=0 0\r\n"
                              "m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\n"
                              "m=audio 30002 RTP/AVP 8 0\r\nc=IN IP4 127.0.0.1/127\r\n"
                              "a=rtpmap:8 PCMA/8000\n";
    cb_sdp_answer_t a;
    assert_int_equal(cb_sdp_parse(ans, strlen(ans), &a), 0);
    assert_string_equal(a.addr, "127.0.0.1");
    assert_int_equal(a.port, 30002);
    assert_int_equal(a.pt, 8);
    static const char session_only[] = "v=0\r\nc=IN IP4 127.0.0.5\r\nm=audio 0 RTP/AVP 0\r\n";
    assert_int_equal(cb_sdp_parse(session_only, strlen(session_only), &a), 0);
    assert_string_equal(a.addr, "127.0.0.5");
    assert_int_equal(a.port, 0);
    static const char no_audio[] = "v=0\r\nc=IN IP4 127.0.0.5\r\nm=video 4 RTP/AVP 96\r\n";
    assert_int_equal(cb_sdp_parse(no_audio, strlen(no_audio), &a), -1);
    static const char no_c[] = "v=0\r\nm=audio 4000 RTP/AVP 0\r\n";
    assert_int_equal(cb_sdp_parse(no_c, strlen(no_c), &a), -1);
    assert_int_equal(cb_sdp_parse(NULL, 0, &a), -1);
}

static void call_id_is_found_in_a_request_cut_short_by_an_icmp_quote(void **state)
{
    (void)state;
    static const char cut[] = "INVITE sip:meet@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z\r\n"
                              "i: cb1.2.3.abc\r\nCSeq: 1 INVITE\r\nContent-Le";
    cb_str_t id = cb_sip_find_header(cut, strlen(cut), "Call-ID", 'i');
    assert_true(cb_str_eq(id, "cb1.2.3.abc", false));
    static const char half[] = "INVITE sip:meet@x SIP/2.0\r\nCall-ID: cb1.2";
    id = cb_sip_find_header(half, strlen(half), "Call-ID", 'i');
    assert_null(id.s); /* an incomplete line is not trusted */
}

static void base64_matches_known_vectors(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(cb_base64((const unsigned char *)"foobar", 6, out, sizeof(out)), 8);
    assert_string_equal(out, "Zm9vYmFy");
    assert_int_equal(cb_base64((const unsigned char *)"fooba", 5, out, sizeof(out)), 8);
    assert_string_equal(out, "Zm9vYmE=");
    assert_int_equal(cb_base64((const unsigned char *)"f", 1, out, sizeof(out)), 4);
    assert_string_equal(out, "Zg==");
    unsigned char key[30] = {0};
    assert_int_equal(cb_base64(key, sizeof(key), out, sizeof(out)), 40);
    assert_int_equal(cb_base64(key, sizeof(key), out, 40), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(scanner_reads_every_field_a_uac_needs),
        cmocka_unit_test(scanner_accepts_compact_names_any_case_and_folded_lines),
        cmocka_unit_test(scanner_reads_requests_from_the_far_end),
        cmocka_unit_test(scanner_refuses_broken_messages_with_distinct_codes),
        cmocka_unit_test(scanner_never_reads_past_any_prefix),
        cmocka_unit_test(built_requests_carry_every_mandatory_header_and_scan_back),
        cmocka_unit_test(sdp_offer_and_answer_agree_on_address_port_and_codec),
        cmocka_unit_test(sdp_answer_prefers_the_media_level_connection_line),
        cmocka_unit_test(call_id_is_found_in_a_request_cut_short_by_an_icmp_quote),
        cmocka_unit_test(base64_matches_known_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
