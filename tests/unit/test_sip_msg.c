/* The SIP message wrapper: parsing of realistic messages (sipp's uac scenario, a
 * Lync-style MESSAGE), every accessor, each class of error with its reason, the
 * response builder byte for byte, and parsing from several threads at once. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip_msg.h"

#ifndef CONFNODE_VERSION
#define CONFNODE_VERSION "0.0.0"
#endif

/* ---- messages ---------------------------------------------------------------------- */

static const char SIPP_SDP[] = "v=0\r\n"
                               "o=user1 53655765 2353687637 IN IP4 127.0.1.1\r\n"
                               "s=-\r\n"
                               "c=IN IP4 127.0.1.1\r\n"
                               "t=0 0\r\n"
                               "m=audio 6000 RTP/AVP 0\r\n"
                               "a=rtpmap:0 PCMU/8000\r\n";

/* sipp -sn uac: the INVITE as its default scenario writes it (Content-Length is
 * filled in by fill()) */
static const char SIPP_INVITE_HEAD[] = "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
                                       "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-0\r\n"
                                       "From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n"
                                       "To: service <sip:service@127.0.0.1:5060>\r\n"
                                       "Call-ID: 1-4242@127.0.1.1\r\n"
                                       "CSeq: 1 INVITE\r\n"
                                       "Contact: sip:sipp@127.0.1.1:5061\r\n"
                                       "Max-Forwards: 70\r\n"
                                       "Subject: Performance Test\r\n"
                                       "Content-Type: application/sdp\r\n";

static const char SIPP_ACK[] = "ACK sip:service@127.0.0.1:5060 SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-5\r\n"
                               "From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n"
                               "To: service <sip:service@127.0.0.1:5060>;tag=as1\r\n"
                               "Call-ID: 1-4242@127.0.1.1\r\n"
                               "CSeq: 1 ACK\r\n"
                               "Contact: sip:sipp@127.0.1.1:5061\r\n"
                               "Max-Forwards: 70\r\n"
                               "Subject: Performance Test\r\n"
                               "Content-Length: 0\r\n"
                               "\r\n";

static const char SIPP_BYE[] = "BYE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-7\r\n"
                               "From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n"
                               "To: service <sip:service@127.0.0.1:5060>;tag=as1\r\n"
                               "Call-ID: 1-4242@127.0.1.1\r\n"
                               "CSeq: 2 BYE\r\n"
                               "Contact: sip:sipp@127.0.1.1:5061\r\n"
                               "Max-Forwards: 70\r\n"
                               "Subject: Performance Test\r\n"
                               "Content-Length: 0\r\n"
                               "\r\n";

static const char OPTIONS[] = "OPTIONS sip:meet@example.test SIP/2.0\r\n"
                              "Via: SIP/2.0/TCP 192.0.2.7:40000;branch=z9hG4bKopt1;rport\r\n"
                              "Max-Forwards: 70\r\n"
                              "From: <sip:probe@client.example.test>;tag=o1\r\n"
                              "To: <sip:meet@example.test>\r\n"
                              "Call-ID: opt-1@192.0.2.7\r\n"
                              "CSeq: 7 OPTIONS\r\n"
                              "Accept: application/sdp\r\n"
                              "Content-Length: 0\r\n"
                              "\r\n";

static const char CANCEL[] = "CANCEL sip:service@127.0.0.1:5060 SIP/2.0\r\n"
                             "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-0\r\n"
                             "From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n"
                             "To: service <sip:service@127.0.0.1:5060>\r\n"
                             "Call-ID: 1-4242@127.0.1.1\r\n"
                             "CSeq: 1 CANCEL\r\n"
                             "Max-Forwards: 70\r\n"
                             "Content-Length: 0\r\n"
                             "\r\n";

static const char RESPONSE_180[] =
    "SIP/2.0 180 Ringing\r\n"
    "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-0;received=127.0.1.1\r\n"
    "From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n"
    "To: service <sip:service@127.0.0.1:5060>;tag=as1\r\n"
    "Call-ID: 1-4242@127.0.1.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:127.0.0.1:5060;transport=UDP>\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

/* A federated Lync / Skype for Business edge: ms- Via parameters, ms- headers,
 * TLS-DSK Authentication-Info, ms- option tags and a non-SDP body. */
static const char LYNC_MESSAGE_HEAD[] =
    "MESSAGE sip:meet@example.test;transport=tls SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 198.51.100.20:5061;branch=z9hG4bK9A3F1C2B.1;branched=FALSE;"
    "ms-internal-info=\"cyQ8x1Yx\";ms-received-port=5061;ms-received-cid=2A00\r\n"
    "Via: SIP/2.0/TLS 10.1.1.5:58843;received=203.0.113.9;ms-received-port=58843;"
    "ms-received-cid=1F00\r\n"
    "Authentication-Info: TLS-DSK qop=\"auth\", opaque=\"5BD7A6B3\", srand=\"9F27DE1A\", "
    "snum=\"44\", rspauth=\"0a1b2c3d4e5f\", targetname=\"edge01.partner.test\", "
    "realm=\"SIP Communications Service\", version=4\r\n"
    "Max-Forwards: 69\r\n"
    "From: \"Alice Example\" <sip:alice@partner.test>;tag=8b1f0c7e45;epid=3f8a2c91d0\r\n"
    "To: <sip:meet@example.test>\r\n"
    "Call-ID: 5e7bd3a2f0c14b6e9d2a@10.1.1.5\r\n"
    "CSeq: 1 MESSAGE\r\n"
    "User-Agent: UCCAPI/16.0.4849.1000 OC/16.0.4849.1000 (Skype for Business)\r\n"
    "Supported: ms-dialog-route-set-update, ms-early-media\r\n"
    "ms-keep-alive: UAS; tcp=no; hop-hop=yes; end-end=no; timeout=300\r\n"
    "ms-diagnostics: 1018;reason=\"Successfully routed\";source=\"edge01.partner.test\"\r\n"
    "ms-text-format: text/plain; charset=UTF-8; ms-body=SGVsbG8=\r\n"
    "Content-Type: text/plain; charset=UTF-8\r\n";

/* `head` (each line CRLF) + Content-Length + blank line + body */
static size_t fill(char *out, size_t cap, const char *head, const char *body)
{
    int n = snprintf(out, cap, "%sContent-Length: %zu\r\n\r\n%s", head, strlen(body), body);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static bool str_is(sip_str_t v, const char *want)
{
    return v.s && v.len == strlen(want) && memcmp(v.s, want, v.len) == 0;
}

#define assert_str(v, want)                                                                        \
    do {                                                                                           \
        sip_str_t v_ = (v);                                                                        \
        if (!str_is(v_, want))                                                                     \
            fail_msg("%s is \"%.*s\", expected \"%s\"", #v, v_.s ? (int)v_.len : 6,                \
                     v_.s ? v_.s : "(null)", want);                                                \
    } while (0)

static sip_msg_t *parse_ok(const char *buf, size_t len)
{
    sip_msg_t *m = NULL;
    char why[200] = "unset";
    sip_msg_status_t st = sip_msg_parse(buf, len, &m, why, sizeof why);
    if (st != SIP_MSG_OK)
        fail_msg("parse failed (%d): %s", st, why);
    assert_non_null(m);
    assert_string_equal(why, "");
    return m;
}

/* Parses `buf`, expects status `st` and the reason `want_why`; returns the message
 * (may be NULL) for further checks. */
static sip_msg_t *parse_bad(const char *buf, size_t len, sip_msg_status_t st, const char *want_why)
{
    sip_msg_t *m = (sip_msg_t *)0x1; /* must be overwritten */
    char why[200] = "";
    sip_msg_status_t got = sip_msg_parse(buf, len, &m, why, sizeof why);
    if (got != st || strcmp(why, want_why) != 0)
        fail_msg("got %d \"%s\", expected %d \"%s\"", got, why, st, want_why);
    assert_true(m != (sip_msg_t *)0x1);
    return m;
}

/* Removes the first line that starts with `prefix` from a copy of `src`. */
static size_t without_line(char *out, size_t cap, const char *src, const char *prefix)
{
    const char *at = strstr(src, prefix);
    assert_non_null(at);
    const char *end = strstr(at, "\r\n");
    assert_non_null(end);
    end += 2;
    size_t a = (size_t)(at - src), b = strlen(end);
    assert_true(a + b < cap);
    memcpy(out, src, a);
    memcpy(out + a, end, b + 1);
    return a + b;
}

/* Replaces the first occurrence of `what` in a copy of `src` by `with`. */
static size_t replaced(char *out, size_t cap, const char *src, const char *what, const char *with)
{
    const char *at = strstr(src, what);
    assert_non_null(at);
    size_t a = (size_t)(at - src), w = strlen(with), rest = strlen(at + strlen(what));
    assert_true(a + w + rest < cap);
    memcpy(out, src, a);
    memcpy(out + a, with, w);
    memcpy(out + a + w, at + strlen(what), rest + 1);
    return a + w + rest;
}

/* ---- valid messages ---------------------------------------------------------------- */

static void sipp_invite_parses_and_every_accessor_reads_it(void **state)
{
    (void)state;
    char buf[2048];
    size_t n = fill(buf, sizeof buf, SIPP_INVITE_HEAD, SIPP_SDP);
    sip_msg_t *m = parse_ok(buf, n);
    assert_true(sip_msg_is_request(m));
    assert_true(sip_msg_can_respond(m));
    assert_int_equal(sip_msg_method(m), SIP_METHOD_INVITE);
    assert_str(sip_msg_method_name(m), "INVITE");
    assert_str(sip_msg_ruri_user(m), "service");
    assert_str(sip_msg_ruri_host(m), "127.0.0.1");
    assert_int_equal(sip_msg_status(m), 0);
    assert_str(sip_msg_call_id(m), "1-4242@127.0.1.1");
    assert_str(sip_msg_from_tag(m), "4242SIPpTag001");
    assert_null(sip_msg_to_tag(m).s);
    assert_str(sip_msg_from_user(m), "sipp");
    assert_str(sip_msg_from_host(m), "127.0.1.1");
    assert_str(sip_msg_via_branch(m), "z9hG4bK-4242-1-0");
    assert_str(sip_msg_via_host(m), "127.0.1.1");
    assert_str(sip_msg_via_port(m), "5061");
    assert_int_equal(sip_msg_cseq(m), 1);
    assert_int_equal(sip_msg_cseq_method(m), SIP_METHOD_INVITE);
    assert_int_equal(sip_msg_max_forwards(m), 70);
    assert_str(sip_msg_content_type(m), "application/sdp");
    sip_str_t body = sip_msg_body(m);
    assert_int_equal(body.len, strlen(SIPP_SDP));
    assert_memory_equal(body.s, SIPP_SDP, body.len);
    assert_str(sip_msg_header(m, "Contact"), "sip:sipp@127.0.1.1:5061");
    assert_str(sip_msg_header(m, "Subject"), "Performance Test");
    /* views point into the message, not into the caller's buffer */
    assert_true(body.s < buf || body.s >= buf + n);
    sip_msg_free(m);
}

static void parsing_leaves_the_callers_buffer_untouched(void **state)
{
    (void)state;
    char buf[2048], copy[2048];
    size_t n = fill(buf, sizeof buf, LYNC_MESSAGE_HEAD, "hello");
    memcpy(copy, buf, n);
    sip_msg_t *m = parse_ok(buf, n);
    assert_memory_equal(buf, copy, n);
    sip_msg_free(m);
}

static void each_sipp_request_reports_its_method_and_cseq(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        sip_method_t method;
        const char *name;
        uint32_t cseq;
        const char *to_tag;
    } cases[] = {
        {SIPP_ACK, SIP_METHOD_ACK, "ACK", 1, "as1"},
        {SIPP_BYE, SIP_METHOD_BYE, "BYE", 2, "as1"},
        {OPTIONS, SIP_METHOD_OPTIONS, "OPTIONS", 7, NULL},
        {CANCEL, SIP_METHOD_CANCEL, "CANCEL", 1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sip_msg_t *m = parse_ok(cases[i].text, strlen(cases[i].text));
        assert_int_equal(sip_msg_method(m), cases[i].method);
        assert_int_equal(sip_msg_cseq_method(m), cases[i].method);
        assert_str(sip_msg_method_name(m), cases[i].name);
        assert_int_equal(sip_msg_cseq(m), cases[i].cseq);
        if (cases[i].to_tag)
            assert_str(sip_msg_to_tag(m), cases[i].to_tag);
        else
            assert_null(sip_msg_to_tag(m).s);
        /* no body: absent, not empty */
        assert_null(sip_msg_body(m).s);
        assert_int_equal(sip_msg_body(m).len, 0);
        /* ACK is never answered */
        assert_int_equal(sip_msg_can_respond(m), cases[i].method != SIP_METHOD_ACK);
        sip_msg_free(m);
    }
}

static void options_over_tcp_reports_via_without_port_as_given(void **state)
{
    (void)state;
    sip_msg_t *m = parse_ok(OPTIONS, strlen(OPTIONS));
    assert_str(sip_msg_via_host(m), "192.0.2.7");
    assert_str(sip_msg_via_port(m), "40000");
    assert_str(sip_msg_via_branch(m), "z9hG4bKopt1");
    assert_str(sip_msg_ruri_user(m), "meet");
    assert_str(sip_msg_ruri_host(m), "example.test");
    assert_str(sip_msg_header(m, "Accept"), "application/sdp");
    assert_null(sip_msg_content_type(m).s);
    sip_msg_free(m);

    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, "192.0.2.7:40000", "client.example.test");
    m = parse_ok(buf, n);
    assert_str(sip_msg_via_host(m), "client.example.test");
    assert_null(sip_msg_via_port(m).s);
    sip_msg_free(m);
}

static void a_response_reports_its_status_and_no_request_fields(void **state)
{
    (void)state;
    sip_msg_t *m = parse_ok(RESPONSE_180, strlen(RESPONSE_180));
    assert_false(sip_msg_is_request(m));
    assert_false(sip_msg_can_respond(m));
    assert_int_equal(sip_msg_status(m), 180);
    assert_int_equal(sip_msg_method(m), SIP_METHOD_UNKNOWN);
    assert_null(sip_msg_method_name(m).s);
    assert_null(sip_msg_ruri_user(m).s);
    assert_int_equal(sip_msg_cseq_method(m), SIP_METHOD_INVITE);
    assert_str(sip_msg_to_tag(m), "as1");
    assert_int_equal(sip_msg_max_forwards(m), -1);
    char out[1024];
    assert_int_equal(
        sip_msg_build_response(m, 200, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out), -1);
    sip_msg_free(m);
}

static void lync_message_with_ms_headers_parses_and_exposes_them(void **state)
{
    (void)state;
    char buf[4096];
    size_t n = fill(buf, sizeof buf, LYNC_MESSAGE_HEAD, "Hello from Lync");
    sip_msg_t *m = parse_ok(buf, n);
    assert_int_equal(sip_msg_method(m), SIP_METHOD_MESSAGE);
    assert_str(sip_msg_via_host(m), "198.51.100.20");
    assert_str(sip_msg_via_branch(m), "z9hG4bK9A3F1C2B.1");
    assert_str(sip_msg_from_user(m), "alice");
    assert_str(sip_msg_from_host(m), "partner.test");
    assert_str(sip_msg_from_tag(m), "8b1f0c7e45");
    assert_int_equal(sip_msg_max_forwards(m), 69);
    assert_str(sip_msg_content_type(m), "text/plain");
    assert_str(sip_msg_body(m), "Hello from Lync");
    assert_str(sip_msg_header(m, "ms-diagnostics"),
               "1018;reason=\"Successfully routed\";source=\"edge01.partner.test\"");
    assert_str(sip_msg_header(m, "ms-keep-alive"),
               "UAS; tcp=no; hop-hop=yes; end-end=no; timeout=300");
    assert_str(sip_msg_header(m, "Supported"), "ms-dialog-route-set-update, ms-early-media");
    sip_str_t ai = sip_msg_header(m, "Authentication-Info");
    assert_non_null(ai.s);
    assert_true(ai.len > 8 && memcmp(ai.s, "TLS-DSK ", 8) == 0);
    assert_true(ai.s[ai.len - 1] == '4'); /* ends with version=4, without the CRLF */
    assert_true(sip_msg_can_respond(m));
    sip_msg_free(m);
}

static void header_lookup_takes_full_and_compact_names_in_any_case(void **state)
{
    (void)state;
    const char *text = "OPTIONS sip:meet@example.test SIP/2.0\r\n"
                       "v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKc1\r\n"
                       "f: <sip:a@example.test>;tag=f1\r\n"
                       "t: <sip:meet@example.test>\r\n"
                       "i: compact-1\r\n"
                       "CSeq: 3 OPTIONS\r\n"
                       "k: timer\r\n"
                       "X-Custom:   spaced value  \r\n"
                       "l: 0\r\n"
                       "\r\n";
    sip_msg_t *m = parse_ok(text, strlen(text));
    assert_str(sip_msg_call_id(m), "compact-1");
    assert_str(sip_msg_header(m, "Call-ID"), "compact-1");
    assert_str(sip_msg_header(m, "call-id"), "compact-1");
    assert_str(sip_msg_header(m, "i"), "compact-1");
    assert_str(sip_msg_header(m, "Supported"), "timer");
    assert_str(sip_msg_header(m, "K"), "timer");
    assert_str(sip_msg_header(m, "x-custom"), "spaced value");
    assert_null(sip_msg_header(m, "Contact").s);
    assert_null(sip_msg_header(m, "X-Absent").s);
    assert_null(sip_msg_header(m, "").s);
    assert_null(sip_msg_header(m, "Call-ID:").s); /* not a header name */
    assert_null(sip_msg_header(m, NULL).s);
    sip_msg_free(m);
}

static void an_unknown_method_parses_with_its_name(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, "OPTIONS sip", "FROBNICATE sip");
    char buf2[1024];
    n = replaced(buf2, sizeof buf2, buf, "7 OPTIONS", "7 FROBNICATE");
    sip_msg_t *m = parse_ok(buf2, n);
    assert_int_equal(sip_msg_method(m), SIP_METHOD_UNKNOWN);
    assert_str(sip_msg_method_name(m), "FROBNICATE");
    assert_int_equal(sip_msg_cseq_method(m), SIP_METHOD_UNKNOWN);
    assert_true(sip_msg_can_respond(m));
    sip_msg_free(m);
}

static void a_binary_body_with_nul_bytes_is_returned_whole(void **state)
{
    (void)state;
    char buf[2048];
    int h = snprintf(buf, sizeof buf, "%sContent-Length: 6\r\n\r\n", LYNC_MESSAGE_HEAD);
    memcpy(buf + h, "a\0b\0\0c", 6);
    sip_msg_t *m = parse_ok(buf, (size_t)h + 6);
    sip_str_t b = sip_msg_body(m);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.s, "a\0b\0\0c", 6);
    sip_msg_free(m);
}

static void accessors_and_free_accept_null(void **state)
{
    (void)state;
    sip_msg_free(NULL);
    assert_false(sip_msg_is_request(NULL));
    assert_false(sip_msg_can_respond(NULL));
    assert_int_equal(sip_msg_method(NULL), SIP_METHOD_UNKNOWN);
    assert_null(sip_msg_call_id(NULL).s);
    assert_null(sip_msg_header(NULL, "Via").s);
    assert_int_equal(sip_msg_cseq(NULL), 0);
    assert_int_equal(sip_msg_max_forwards(NULL), -1);
    assert_int_equal(sip_msg_status(NULL), 0);
    assert_int_equal(sip_msg_parse(OPTIONS, strlen(OPTIONS), NULL, NULL, 0), SIP_MSG_ERR_SYNTAX);
}

/* ---- errors ------------------------------------------------------------------------ */

static void empty_or_blank_input_is_rejected(void **state)
{
    (void)state;
    assert_null(parse_bad("", 0, SIP_MSG_ERR_SYNTAX, "Empty message"));
    assert_null(parse_bad("\r\n\r\n  \t", 7, SIP_MSG_ERR_SYNTAX, "Empty message"));
    assert_null(parse_bad(NULL, 10, SIP_MSG_ERR_SYNTAX, "Empty message"));
}

static void every_truncation_of_the_start_line_is_a_malformed_start_line(void **state)
{
    (void)state;
    const char *line = strstr(OPTIONS, "\r\n");
    size_t full = (size_t)(line - OPTIONS);
    size_t version = (size_t)(strstr(OPTIONS, "SIP/2.0") - OPTIONS);
    for (size_t k = 1; k < full; k++) {
        char buf[128];
        memcpy(buf, OPTIONS, k);
        memcpy(buf + k, "\r\n\r\n", 4);
        sip_msg_t *m = NULL;
        char why[200] = "";
        sip_msg_status_t st = sip_msg_parse(buf, k + 4, &m, why, sizeof why);
        assert_null(m); /* nothing to answer without a Via */
        /* a cut before "SIP/<digit>" breaks the line; after, the version is wrong */
        if (k < version + 5) {
            assert_int_equal(st, SIP_MSG_ERR_SYNTAX);
            if (strcmp(why, "Malformed request line") != 0)
                fail_msg("prefix %zu: \"%s\"", k, why);
        } else {
            assert_int_equal(st, SIP_MSG_ERR_INVALID);
            assert_string_equal(why, "Unsupported SIP version");
        }
    }
    const char *status = RESPONSE_180;
    full = (size_t)(strstr(status, " 180") - status) + 2;
    char buf[64];
    memcpy(buf, status, full);
    memcpy(buf + full, "\r\n\r\n", 4);
    assert_null(parse_bad(buf, full + 4, SIP_MSG_ERR_SYNTAX, "Malformed status line"));
    char resp[1024];
    size_t n = replaced(resp, sizeof resp, RESPONSE_180, "180 Ringing", "1800 Ringing");
    assert_null(parse_bad(resp, n, SIP_MSG_ERR_SYNTAX, "Malformed status line"));
}

static void each_missing_mandatory_header_is_named(void **state)
{
    (void)state;
    static const struct {
        const char *prefix, *why;
        bool answerable;
    } cases[] = {
        {"Via:", "Missing Via header", false},  {"From:", "Missing From header", true},
        {"To:", "Missing To header", true},     {"Call-ID:", "Missing Call-ID header", true},
        {"CSeq:", "Missing CSeq header", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[1024], out[1024];
        size_t n = without_line(buf, sizeof buf, OPTIONS, cases[i].prefix);
        sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_MISSING, cases[i].why);
        assert_int_equal(m != NULL, cases[i].answerable);
        assert_int_equal(sip_msg_can_respond(m), cases[i].answerable);
        if (m) {
            /* the 400 carries what the request had, and nothing in place of the rest */
            ssize_t r =
                sip_msg_build_response(m, 400, NULL, "t1", NULL, NULL, NULL, 0, out, sizeof out);
            assert_true(r > 0);
            out[r] = '\0';
            assert_null(strstr(out, cases[i].prefix));
            assert_non_null(strstr(out, "\r\nVia: SIP/2.0/TCP 192.0.2.7:40000;"));
        }
        sip_msg_free(m);
    }
    /* Max-Forwards is optional */
    char buf[1024];
    size_t n = without_line(buf, sizeof buf, OPTIONS, "Max-Forwards:");
    sip_msg_t *m = parse_ok(buf, n);
    assert_int_equal(sip_msg_max_forwards(m), -1);
    sip_msg_free(m);
}

static void a_bad_cseq_is_a_syntax_error_that_is_still_answered(void **state)
{
    (void)state;
    static const char *bad[] = {"CSeq: abc OPTIONS", "CSeq: 7", "CSeq: OPTIONS 7",
                                "CSeq: 99999999999 OPTIONS"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[1024], out[1024];
        size_t n = replaced(buf, sizeof buf, OPTIONS, "CSeq: 7 OPTIONS", bad[i]);
        sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_SYNTAX, "Bad CSeq header");
        assert_true(sip_msg_can_respond(m));
        ssize_t r =
            sip_msg_build_response(m, 400, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out);
        assert_true(r > 0);
        out[r] = '\0';
        assert_null(strstr(out, "CSeq:"));
        sip_msg_free(m);
    }
    /* parsed, but not below 2**31 (RFC 3261 §8.1.1.5) */
    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, "CSeq: 7 OPTIONS", "CSeq: 2147483648 OPTIONS");
    sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_INVALID, "Bad CSeq header");
    assert_true(sip_msg_can_respond(m));
    sip_msg_free(m);
}

static void a_cseq_method_that_differs_from_the_request_is_invalid(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, "7 OPTIONS", "7 INVITE");
    sip_msg_t *m =
        parse_bad(buf, n, SIP_MSG_ERR_INVALID, "CSeq method does not match request method");
    assert_true(sip_msg_can_respond(m));
    assert_int_equal(sip_msg_method(m), SIP_METHOD_OPTIONS);
    assert_int_equal(sip_msg_cseq_method(m), SIP_METHOD_INVITE);
    sip_msg_free(m);
    /* unknown methods are compared by name, case-sensitively */
    char buf2[1024];
    n = replaced(buf, sizeof buf, OPTIONS, "OPTIONS sip", "FOO sip");
    n = replaced(buf2, sizeof buf2, buf, "7 OPTIONS", "7 foo");
    m = parse_bad(buf2, n, SIP_MSG_ERR_INVALID, "CSeq method does not match request method");
    sip_msg_free(m);
}

static void a_content_length_larger_than_the_body_is_invalid(void **state)
{
    (void)state;
    char buf[2048];
    int n = snprintf(buf, sizeof buf, "%sContent-Length: %zu\r\n\r\n%s", SIPP_INVITE_HEAD,
                     strlen(SIPP_SDP) + 1, SIPP_SDP);
    sip_msg_t *m =
        parse_bad(buf, (size_t)n, SIP_MSG_ERR_INVALID, "Content-Length larger than body");
    assert_true(sip_msg_can_respond(m));
    sip_msg_free(m);
    /* a shorter one just ends the body there (RFC 3261 §18.3) */
    n = snprintf(buf, sizeof buf, "%sContent-Length: 4\r\n\r\n%s", SIPP_INVITE_HEAD, SIPP_SDP);
    m = parse_ok(buf, (size_t)n);
    assert_str(sip_msg_body(m), "v=0\r");
    sip_msg_free(m);
}

static void a_broken_content_length_is_a_bad_header(void **state)
{
    (void)state;
    static const char *bad[] = {"Content-Length: abc", "Content-Length: -5",
                                "Content-Length: 99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[1024];
        size_t n = replaced(buf, sizeof buf, OPTIONS, "Content-Length: 0", bad[i]);
        sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_SYNTAX, "Bad Content-Length header");
        assert_true(sip_msg_can_respond(m));
        sip_msg_free(m);
    }
}

static void an_unsupported_sip_version_is_invalid_but_answerable(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, " SIP/2.0\r\n", " SIP/3.0\r\n");
    sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_INVALID, "Unsupported SIP version");
    assert_true(sip_msg_can_respond(m));
    sip_msg_free(m);
    /* the version is case-insensitive */
    n = replaced(buf, sizeof buf, OPTIONS, " SIP/2.0\r\n", " sip/2.0\r\n");
    sip_msg_free(parse_ok(buf, n));
}

static void malformed_header_lines_are_syntax_errors(void **state)
{
    (void)state;
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"This line has no colon\r\n", "Malformed header line"},
        {"Contact: <sip:broken@\r\n", "Bad Contact header"},
        {"Max-Forwards: many\r\n", "Bad Max-Forwards header"},
        {"Content-Type: not a type\r\n", "Bad Content-Type header"},
        {"Call-ID: second@x\r\n", "Multiple Call-ID headers"},
        {"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK2\r\nCall-ID: second@x\r\n",
         "Multiple Call-ID headers"},
        {"To: <sip:other@example.test>\r\n", "Multiple To headers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char with[256], buf[1024];
        snprintf(with, sizeof with, "%sContent-Length: 0", cases[i].line);
        size_t n = replaced(buf, sizeof buf, OPTIONS, "Content-Length: 0", with);
        sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_SYNTAX, cases[i].why);
        assert_true(sip_msg_can_respond(m));
        /* the first of a duplicated header is the one used */
        assert_str(sip_msg_call_id(m), "opt-1@192.0.2.7");
        sip_msg_free(m);
    }
    /* a broken header nothing here depends on is tolerated */
    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, "Content-Length: 0",
                        "Date: not a date\r\nContent-Length: 0");
    sip_msg_free(parse_ok(buf, n));
}

static void a_call_id_with_whitespace_is_bad(void **state)
{
    (void)state;
    static const char *bad[] = {"Call-ID: opt-1@192.0.2.7\r\n\tmore", "Call-ID: two words",
                                "Call-ID: ctl\x01char"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[1024];
        size_t n = replaced(buf, sizeof buf, OPTIONS, "Call-ID: opt-1@192.0.2.7", bad[i]);
        sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_SYNTAX, "Bad Call-ID header");
        assert_true(sip_msg_can_respond(m));
        sip_msg_free(m);
    }
}

static void a_broken_via_makes_the_request_unanswerable(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = replaced(buf, sizeof buf, OPTIONS, "Max-Forwards: 70",
                        "Via: this is not a via\r\nMax-Forwards: 70");
    assert_null(parse_bad(buf, n, SIP_MSG_ERR_SYNTAX, "Bad Via header"));
}

static void a_nul_byte_in_the_headers_is_reported(void **state)
{
    (void)state;
    char buf[1024];
    size_t n =
        replaced(buf, sizeof buf, OPTIONS, "Accept: application/sdp", "Subject: before@after");
    *strchr(strstr(buf, "Subject:"), '@') = '\0';
    sip_msg_t *m = parse_bad(buf, n, SIP_MSG_ERR_SYNTAX, "NUL byte in message headers");
    /* everything before the NUL was read, so the 400 can go out */
    assert_true(sip_msg_can_respond(m));
    assert_str(sip_msg_call_id(m), "opt-1@192.0.2.7");
    sip_msg_free(m);
    /* in the start line it is just a malformed line */
    memcpy(buf, OPTIONS, sizeof OPTIONS);
    buf[3] = '\0';
    assert_null(parse_bad(buf, sizeof OPTIONS - 1, SIP_MSG_ERR_SYNTAX, "Malformed request line"));
}

static void a_message_cut_before_the_empty_line_is_truncated(void **state)
{
    (void)state;
    size_t n = (size_t)(strstr(OPTIONS, "To:") - OPTIONS) + 10;
    sip_msg_t *m = parse_bad(OPTIONS, n, SIP_MSG_ERR_SYNTAX,
                             "Truncated message (no empty line after the headers)");
    assert_true(sip_msg_can_respond(m));
    sip_msg_free(m);
    m = parse_bad(OPTIONS, sizeof OPTIONS - 3, SIP_MSG_ERR_SYNTAX,
                  "Truncated message (no empty line after the headers)");
    sip_msg_free(m);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void binary_garbage_never_parses(void **state)
{
    (void)state;
    char buf[1500];
    for (int round = 0; round < 2000; round++) {
        size_t n = 1 + rng() % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)rng();
        sip_msg_t *m = NULL;
        char why[200] = "";
        sip_msg_status_t st = sip_msg_parse(buf, n, &m, why, sizeof why);
        assert_int_not_equal(st, SIP_MSG_OK);
        assert_true(why[0] != '\0');
        assert_null(m);
    }
    /* garbage after a valid start line */
    memcpy(buf, "OPTIONS sip:a@b SIP/2.0\r\n", 25);
    for (int round = 0; round < 2000; round++) {
        size_t n = 25 + rng() % (sizeof buf - 25);
        for (size_t i = 25; i < n; i++)
            buf[i] = (char)rng();
        sip_msg_t *m = NULL;
        assert_int_not_equal(sip_msg_parse(buf, n, &m, NULL, 0), SIP_MSG_OK);
        sip_msg_free(m);
    }
}

static void a_one_megabyte_header_line_parses_and_comes_back_whole(void **state)
{
    (void)state;
    size_t pad = 1u << 20;
    char *buf = malloc(pad + 1024);
    assert_non_null(buf);
    const char *cut = strstr(OPTIONS, "Content-Length:");
    size_t head = (size_t)(cut - OPTIONS);
    memcpy(buf, OPTIONS, head);
    size_t n = head;
    memcpy(buf + n, "X-Padding: ", 11);
    n += 11;
    for (size_t i = 0; i < pad; i++)
        buf[n + i] = (char)('a' + i % 26);
    n += pad;
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    size_t tail = strlen(cut);
    memcpy(buf + n, cut, tail);
    n += tail;
    sip_msg_t *m = parse_ok(buf, n);
    sip_str_t v = sip_msg_header(m, "X-Padding");
    assert_int_equal(v.len, pad);
    assert_memory_equal(v.s, buf + head + 11, pad);
    sip_msg_free(m);
    free(buf);
}

static void too_many_header_lines_or_list_items_are_refused_unparsed(void **state)
{
    (void)state;
    size_t cap = 64 * 1024;
    char *buf = malloc(cap);
    assert_non_null(buf);
    /* 256 lines in all (start line included) pass, 257 do not */
    int base = -1; /* lines of OPTIONS, without the empty one */
    for (const char *p = OPTIONS; (p = strstr(p, "\r\n")) != NULL; p += 2)
        base++;
    for (int extra = 256 - base; extra <= 257 - base; extra++) {
        const char *cut = strstr(OPTIONS, "Content-Length:");
        size_t n = (size_t)(cut - OPTIONS);
        memcpy(buf, OPTIONS, n);
        for (int i = 0; i < extra; i++)
            n += (size_t)snprintf(buf + n, cap - n, "X-Line-%d: %d\r\n", i, i);
        n += (size_t)snprintf(buf + n, cap - n, "%s", cut);
        sip_msg_t *m = NULL;
        char why[200] = "";
        sip_msg_status_t st = sip_msg_parse(buf, n, &m, why, sizeof why);
        if (extra == 256 - base) {
            assert_int_equal(st, SIP_MSG_OK);
        } else {
            assert_int_equal(st, SIP_MSG_ERR_SYNTAX);
            assert_string_equal(why, "Too many header lines");
            assert_null(m);
        }
        sip_msg_free(m);
    }
    /* 128 commas on a line pass, 129 do not */
    for (int commas = 128; commas <= 129; commas++) {
        const char *cut = strstr(OPTIONS, "Content-Length:");
        size_t n = (size_t)(cut - OPTIONS);
        memcpy(buf, OPTIONS, n);
        n += (size_t)snprintf(buf + n, cap - n, "Via: SIP/2.0/UDP h0");
        for (int i = 1; i <= commas; i++)
            n += (size_t)snprintf(buf + n, cap - n, ",SIP/2.0/UDP h%d", i);
        n += (size_t)snprintf(buf + n, cap - n, "\r\n%s", cut);
        sip_msg_t *m = NULL;
        char why[200] = "";
        sip_msg_status_t st = sip_msg_parse(buf, n, &m, why, sizeof why);
        if (commas == 128) {
            assert_int_equal(st, SIP_MSG_OK);
        } else {
            assert_int_equal(st, SIP_MSG_ERR_SYNTAX);
            assert_string_equal(why, "Too many comma-separated values in a header");
        }
        sip_msg_free(m);
    }
    free(buf);
}

/* ---- responses --------------------------------------------------------------------- */

static const char TWO_VIAS[] = "INVITE sip:meet@example.test SIP/2.0\r\n"
                               "Via: SIP/2.0/TLS 198.51.100.20:5061;branch=z9hG4bKtop\r\n"
                               "Max-Forwards: 69\r\n"
                               "v: SIP/2.0/TLS 10.1.1.5:58843;branch=z9hG4bKmid,\r\n"
                               "   SIP/2.0/TCP 10.1.1.9;branch=z9hG4bKlow\r\n"
                               "f: \"Alice\" <sip:alice@partner.test>;tag=a1\r\n"
                               "t:   <sip:meet@example.test>  \r\n"
                               "Call-ID: two-vias@10.1.1.5\r\n"
                               "CSeq:\t5 INVITE\r\n"
                               "Content-Length: 0\r\n"
                               "\r\n";

static void response_copies_the_via_list_in_order_and_adds_the_to_tag(void **state)
{
    (void)state;
    sip_msg_t *m = parse_ok(TWO_VIAS, strlen(TWO_VIAS));
    char out[2048];
    const char *extra = "Contact: <sip:meet@192.0.2.1:5061;transport=tls>\r\n";
    ssize_t n =
        sip_msg_build_response(m, 180, "Ringing", "k7", extra, NULL, NULL, 0, out, sizeof out);
    const char *want = "SIP/2.0 180 Ringing\r\n"
                       "Via: SIP/2.0/TLS 198.51.100.20:5061;branch=z9hG4bKtop\r\n"
                       "Via: SIP/2.0/TLS 10.1.1.5:58843;branch=z9hG4bKmid,   SIP/2.0/TCP "
                       "10.1.1.9;branch=z9hG4bKlow\r\n"
                       "From: \"Alice\" <sip:alice@partner.test>;tag=a1\r\n"
                       "To: <sip:meet@example.test>;tag=k7\r\n"
                       "Call-ID: two-vias@10.1.1.5\r\n"
                       "CSeq: 5 INVITE\r\n"
                       "Contact: <sip:meet@192.0.2.1:5061;transport=tls>\r\n"
                       "Server: confnode/" CONFNODE_VERSION "\r\n"
                       "Content-Length: 0\r\n"
                       "\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, (size_t)n);
    sip_msg_free(m);
}

/* The top Via line of the response built for `req` after it came from ip:port. */
static void top_via_after(const char *req, const char *ip, uint16_t port, char *via, size_t cap)
{
    sip_msg_t *m = parse_ok(req, strlen(req));
    sip_msg_set_source(m, ip, port);
    char out[2048];
    ssize_t n = sip_msg_build_response(m, 200, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out);
    assert_true(n > 0);
    out[n] = 0;
    const char *v = strstr(out, "\r\nVia: ");
    assert_non_null(v);
    v += 2;
    size_t len = (size_t)(strstr(v, "\r\n") - v);
    assert_true(len < cap);
    memcpy(via, v, len);
    via[len] = 0;
    /* the amended response parses back, with the same Via count */
    sip_msg_t *r = parse_ok(out, (size_t)n);
    sip_msg_free(r);
    sip_msg_free(m);
}

static void the_top_via_gets_received_and_rport_from_the_source_address(void **state)
{
    (void)state;
    char via[512];
    /* sent-by differs from the source: received added; the other Vias untouched */
    top_via_after(TWO_VIAS, "203.0.113.7", 40000, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/TLS 198.51.100.20:5061;branch=z9hG4bKtop"
                             ";received=203.0.113.7");
    /* the same address and no rport: nothing added */
    top_via_after(TWO_VIAS, "198.51.100.20", 5061, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/TLS 198.51.100.20:5061;branch=z9hG4bKtop");

    /* an empty rport is filled, and received is then added even for the same host */
    static const char RPORT[] = "OPTIONS sip:example.test SIP/2.0\r\n"
                                "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKr1\r\n"
                                "From: <sip:a@partner.test>;tag=1\r\n"
                                "To: <sip:example.test>\r\n"
                                "Call-ID: rport-1\r\n"
                                "CSeq: 1 OPTIONS\r\n"
                                "Content-Length: 0\r\n\r\n";
    top_via_after(RPORT, "198.51.100.9", 61000, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKr1"
                             ";received=198.51.100.9;rport=61000");
    top_via_after(RPORT, "10.0.0.5", 5060, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKr1"
                             ";received=10.0.0.5;rport=5060");

    /* the first value of a comma-separated line is amended, the second kept */
    static const char LIST[] = "OPTIONS sip:example.test SIP/2.0\r\n"
                               "Via: SIP/2.0/UDP [2001:db8::5];branch=z9hG4bKa, "
                               "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb\r\n"
                               "From: <sip:a@partner.test>;tag=1\r\n"
                               "To: <sip:example.test>\r\n"
                               "Call-ID: list-1\r\n"
                               "CSeq: 1 OPTIONS\r\n"
                               "Content-Length: 0\r\n\r\n";
    top_via_after(LIST, "2001:db8::5", 5060, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/UDP [2001:db8::5];branch=z9hG4bKa, "
                             "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb");
    top_via_after(LIST, "2001:db8::7", 5060, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/UDP [2001:db8::5];branch=z9hG4bKa"
                             ";received=2001:db8::7, SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb");

    /* a Via that already has received (a proxy set it) is left as it is */
    static const char HAS[] = "OPTIONS sip:example.test SIP/2.0\r\n"
                              "Via: SIP/2.0/UDP a.partner.test;received=192.0.2.1;rport=5;"
                              "branch=z9hG4bKc\r\n"
                              "From: <sip:a@partner.test>;tag=1\r\n"
                              "To: <sip:example.test>\r\n"
                              "Call-ID: has-1\r\n"
                              "CSeq: 1 OPTIONS\r\n"
                              "Content-Length: 0\r\n\r\n";
    top_via_after(HAS, "198.51.100.1", 5060, via, sizeof via);
    assert_string_equal(via, "Via: SIP/2.0/UDP a.partner.test;received=192.0.2.1;rport=5;"
                             "branch=z9hG4bKc");
    /* no source recorded: nothing changes */
    sip_msg_t *m = parse_ok(RPORT, strlen(RPORT));
    sip_msg_set_source(m, "", 1);
    sip_msg_set_source(NULL, "192.0.2.1", 1);
    char out[1024];
    ssize_t n = sip_msg_build_response(m, 200, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out);
    assert_true(n > 0);
    const char *kept = "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKr1\r\n";
    assert_non_null(memmem(out, (size_t)n, kept, strlen(kept)));
    sip_msg_free(m);
}

static void response_keeps_an_existing_to_tag_and_carries_the_body(void **state)
{
    (void)state;
    sip_msg_t *m = parse_ok(SIPP_BYE, strlen(SIPP_BYE));
    char out[2048];
    const char *body = "v=0\r\n";
    ssize_t n = sip_msg_build_response(m, 200, NULL, "ignored", NULL, "application/sdp", body,
                                       strlen(body), out, sizeof out);
    const char *want = "SIP/2.0 200 OK\r\n"
                       "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-4242-1-7\r\n"
                       "From: sipp <sip:sipp@127.0.1.1:5061>;tag=4242SIPpTag001\r\n"
                       "To: service <sip:service@127.0.0.1:5060>;tag=as1\r\n"
                       "Call-ID: 1-4242@127.0.1.1\r\n"
                       "CSeq: 2 BYE\r\n"
                       "Server: confnode/" CONFNODE_VERSION "\r\n"
                       "Content-Type: application/sdp\r\n"
                       "Content-Length: 5\r\n"
                       "\r\n"
                       "v=0\r\n";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, (size_t)n);
    sip_msg_free(m);
}

static void a_built_response_parses_back_with_the_same_identifiers(void **state)
{
    (void)state;
    char buf[4096], out[4096];
    size_t len = fill(buf, sizeof buf, LYNC_MESSAGE_HEAD, "x");
    sip_msg_t *req = parse_ok(buf, len);
    ssize_t n = sip_msg_build_response(req, 488, NULL, "zz9", "Warning: 399 node1 \"No\"\r\n", NULL,
                                       NULL, 0, out, sizeof out);
    assert_true(n > 0);
    sip_msg_t *resp = parse_ok(out, (size_t)n);
    assert_int_equal(sip_msg_status(resp), 488);
    assert_int_equal(sip_msg_cseq(resp), sip_msg_cseq(req));
    assert_int_equal(sip_msg_cseq_method(resp), SIP_METHOD_MESSAGE);
    assert_str(sip_msg_to_tag(resp), "zz9");
    sip_str_t a = sip_msg_call_id(req), b = sip_msg_call_id(resp);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.s, b.s, a.len);
    a = sip_msg_header(req, "Via");
    b = sip_msg_header(resp, "Via");
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.s, b.s, a.len);
    assert_str(sip_msg_header(resp, "Server"), "confnode/" CONFNODE_VERSION);
    assert_str(sip_msg_header(resp, "Warning"), "399 node1 \"No\"");
    sip_msg_free(resp);
    sip_msg_free(req);
}

static void a_response_that_does_not_fit_returns_minus_one(void **state)
{
    (void)state;
    sip_msg_t *m = parse_ok(OPTIONS, strlen(OPTIONS));
    char out[1024];
    const char *body = "0123456789";
    ssize_t need =
        sip_msg_build_response(m, 200, NULL, "t", NULL, "text/plain", body, 10, out, sizeof out);
    assert_true(need > 0);
    char exact[1024];
    for (size_t cap = 0; cap < (size_t)need; cap++)
        assert_int_equal(
            sip_msg_build_response(m, 200, NULL, "t", NULL, "text/plain", body, 10, exact, cap),
            -1);
    assert_int_equal(sip_msg_build_response(m, 200, NULL, "t", NULL, "text/plain", body, 10, exact,
                                            (size_t)need),
                     need);
    assert_memory_equal(exact, out, (size_t)need);
    sip_msg_free(m);
}

static void bad_response_arguments_are_refused(void **state)
{
    (void)state;
    sip_msg_t *m = parse_ok(OPTIONS, strlen(OPTIONS));
    char out[1024];
    assert_int_equal(
        sip_msg_build_response(NULL, 200, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out), -1);
    assert_int_equal(
        sip_msg_build_response(m, 99, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out), -1);
    assert_int_equal(
        sip_msg_build_response(m, 700, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out), -1);
    assert_int_equal(
        sip_msg_build_response(m, 200, "OK\r\nX: y", NULL, NULL, NULL, NULL, 0, out, sizeof out),
        -1);
    assert_int_equal(
        sip_msg_build_response(m, 200, NULL, "bad tag", NULL, NULL, NULL, 0, out, sizeof out), -1);
    assert_int_equal(
        sip_msg_build_response(m, 200, NULL, NULL, NULL, NULL, NULL, 5, out, sizeof out), -1);
    assert_true(sip_msg_build_response(m, 200, NULL, NULL, NULL, NULL, NULL, 0, out, sizeof out) >
                0);
    sip_msg_free(m);
}

static void phrases_are_the_rfc3261_ones(void **state)
{
    (void)state;
    assert_string_equal(sip_msg_phrase(100), "Trying");
    assert_string_equal(sip_msg_phrase(180), "Ringing");
    assert_string_equal(sip_msg_phrase(200), "OK");
    assert_string_equal(sip_msg_phrase(400), "Bad Request");
    assert_string_equal(sip_msg_phrase(404), "Not Found");
    assert_string_equal(sip_msg_phrase(481), "Call/Transaction Does Not Exist");
    assert_string_equal(sip_msg_phrase(486), "Busy Here");
    assert_string_equal(sip_msg_phrase(488), "Not Acceptable Here");
    assert_string_equal(sip_msg_phrase(500), "Server Internal Error");
    assert_string_equal(sip_msg_phrase(504), "Server Time-out");
    assert_string_equal(sip_msg_phrase(503), "Service Unavailable");
    assert_string_equal(sip_msg_phrase(505), "Version Not Supported");
    assert_string_equal(sip_msg_phrase(603), "Decline");
    /* codes without a phrase of their own get their class */
    assert_string_equal(sip_msg_phrase(499), "Client Error");
    assert_string_equal(sip_msg_phrase(0), "Unknown");
}

/* ---- threads ----------------------------------------------------------------------- */

enum { THREADS = 4, PARSES = 20000 };

struct job {
    unsigned seed;
    atomic_int *errors;
};

static void *parse_many(void *arg)
{
    struct job *j = arg;
    char buf[2048], out[2048], want_cid[64];
    for (int i = 0; i < PARSES; i++) {
        unsigned k = j->seed * 1000003u + (unsigned)i;
        snprintf(want_cid, sizeof want_cid, "c%u-%d@thread", j->seed, i);
        int n = snprintf(buf, sizeof buf,
                         "OPTIONS sip:meet@example.test SIP/2.0\r\n"
                         "Via: SIP/2.0/UDP 192.0.2.%u:5060;branch=z9hG4bK%u\r\n"
                         "From: <sip:t%u@example.test>;tag=f%u\r\n"
                         "To: <sip:meet@example.test>\r\n"
                         "Call-ID: %s\r\n"
                         "CSeq: %u OPTIONS\r\n"
                         "%s"
                         "Content-Length: 0\r\n\r\n",
                         j->seed, k, j->seed, k, want_cid, k % 100000,
                         (i % 3 == 0) ? "Call-ID: dup\r\n" : "");
        sip_msg_t *m = NULL;
        char why[200];
        sip_msg_status_t st = sip_msg_parse(buf, (size_t)n, &m, why, sizeof why);
        bool ok = m != NULL && str_is(sip_msg_call_id(m), want_cid) &&
                  sip_msg_cseq(m) == k % 100000 && sip_msg_method(m) == SIP_METHOD_OPTIONS;
        if (i % 3 == 0)
            ok = ok && st == SIP_MSG_ERR_SYNTAX && strcmp(why, "Multiple Call-ID headers") == 0;
        else
            ok = ok && st == SIP_MSG_OK;
        ssize_t r =
            sip_msg_build_response(m, 200, NULL, "tt", NULL, NULL, NULL, 0, out, sizeof out);
        ok = ok && r > 0 && memmem(out, (size_t)r, want_cid, strlen(want_cid)) != NULL;
        if (!ok)
            atomic_fetch_add(j->errors, 1);
        sip_msg_free(m);
    }
    return NULL;
}

static void parsing_from_four_threads_gives_each_its_own_results(void **state)
{
    (void)state;
    atomic_int errors = 0;
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){.seed = i + 1, .errors = &errors};
        assert_int_equal(pthread_create(&t[i], NULL, parse_many, &jobs[i]), 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&errors), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sipp_invite_parses_and_every_accessor_reads_it),
        cmocka_unit_test(parsing_leaves_the_callers_buffer_untouched),
        cmocka_unit_test(each_sipp_request_reports_its_method_and_cseq),
        cmocka_unit_test(options_over_tcp_reports_via_without_port_as_given),
        cmocka_unit_test(a_response_reports_its_status_and_no_request_fields),
        cmocka_unit_test(lync_message_with_ms_headers_parses_and_exposes_them),
        cmocka_unit_test(header_lookup_takes_full_and_compact_names_in_any_case),
        cmocka_unit_test(an_unknown_method_parses_with_its_name),
        cmocka_unit_test(a_binary_body_with_nul_bytes_is_returned_whole),
        cmocka_unit_test(accessors_and_free_accept_null),
        cmocka_unit_test(empty_or_blank_input_is_rejected),
        cmocka_unit_test(every_truncation_of_the_start_line_is_a_malformed_start_line),
        cmocka_unit_test(each_missing_mandatory_header_is_named),
        cmocka_unit_test(a_bad_cseq_is_a_syntax_error_that_is_still_answered),
        cmocka_unit_test(a_cseq_method_that_differs_from_the_request_is_invalid),
        cmocka_unit_test(a_content_length_larger_than_the_body_is_invalid),
        cmocka_unit_test(a_broken_content_length_is_a_bad_header),
        cmocka_unit_test(an_unsupported_sip_version_is_invalid_but_answerable),
        cmocka_unit_test(malformed_header_lines_are_syntax_errors),
        cmocka_unit_test(a_call_id_with_whitespace_is_bad),
        cmocka_unit_test(a_broken_via_makes_the_request_unanswerable),
        cmocka_unit_test(a_nul_byte_in_the_headers_is_reported),
        cmocka_unit_test(a_message_cut_before_the_empty_line_is_truncated),
        cmocka_unit_test(binary_garbage_never_parses),
        cmocka_unit_test(a_one_megabyte_header_line_parses_and_comes_back_whole),
        cmocka_unit_test(too_many_header_lines_or_list_items_are_refused_unparsed),
        cmocka_unit_test(response_copies_the_via_list_in_order_and_adds_the_to_tag),
        cmocka_unit_test(the_top_via_gets_received_and_rport_from_the_source_address),
        cmocka_unit_test(response_keeps_an_existing_to_tag_and_carries_the_body),
        cmocka_unit_test(a_built_response_parses_back_with_the_same_identifiers),
        cmocka_unit_test(a_response_that_does_not_fit_returns_minus_one),
        cmocka_unit_test(bad_response_arguments_are_refused),
        cmocka_unit_test(phrases_are_the_rfc3261_ones),
        cmocka_unit_test(parsing_from_four_threads_gives_each_its_own_results),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
