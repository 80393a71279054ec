/* Fuzz target for sip_msg_parse() and sip_msg_build_response() (with a source address,
 * so the top Via's received/rport amendment is fuzzed too).
 *
 * The input is one message as the framer or a datagram would deliver it, in a
 * buffer of exactly its size so ASan catches any read past the end. Checked:
 *   - the status, `why` and *out agree (a reason on every error, none on success;
 *     a message handed back on error only when it can be answered);
 *   - every view the accessors return can be read in full;
 *   - for an answerable request, a 400 is built: it fits in the request's size plus
 *     a margin, starts with the status line, ends with the empty line, holds no NUL
 *     and no line break other than CRLF, and fails cleanly in a buffer one byte
 *     short;
 *   - for a request that parsed cleanly, the 400 parses back as a response with
 *     the same Call-ID, CSeq, top Via and From tag, and the To tag it was given. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip_msg.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static volatile unsigned sink;

static void touch(sip_str_t v)
{
    CHECK(v.s != NULL || v.len == 0);
    for (size_t i = 0; i < v.len; i++)
        sink += (unsigned char)v.s[i];
}

static bool same(sip_str_t a, sip_str_t b)
{
    return a.len == b.len && (a.len == 0 || (a.s && b.s && memcmp(a.s, b.s, a.len) == 0));
}

static void touch_all(const sip_msg_t *m)
{
    touch(sip_msg_method_name(m));
    touch(sip_msg_ruri_user(m));
    touch(sip_msg_ruri_host(m));
    touch(sip_msg_call_id(m));
    touch(sip_msg_from_tag(m));
    touch(sip_msg_to_tag(m));
    touch(sip_msg_from_user(m));
    touch(sip_msg_from_host(m));
    touch(sip_msg_via_branch(m));
    touch(sip_msg_via_host(m));
    touch(sip_msg_via_port(m));
    touch(sip_msg_content_type(m));
    touch(sip_msg_body(m));
    static const char *names[] = {"Via",      "v",    "From",    "To",        "Call-ID",
                                  "i",        "CSeq", "Contact", "Supported", "ms-diagnostics",
                                  "X-Unknown"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        touch(sip_msg_header(m, names[i]));
    sink += sip_msg_cseq(m) + (unsigned)sip_msg_max_forwards(m) + (unsigned)sip_msg_status(m) +
            (unsigned)sip_msg_method(m) + (unsigned)sip_msg_cseq_method(m);
}

static void check_framing(const char *out, size_t n)
{
    static const char head[] = "SIP/2.0 400 Bad Request\r\n";
    static const char tail[] = "\r\nContent-Length: 0\r\n\r\n";
    CHECK(n > sizeof head + sizeof tail);
    CHECK(memcmp(out, head, sizeof head - 1) == 0);
    CHECK(memcmp(out + n - (sizeof tail - 1), tail, sizeof tail - 1) == 0);
    CHECK(memchr(out, '\0', n) == NULL);
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\r')
            CHECK(i + 1 < n && out[i + 1] == '\n');
        if (out[i] == '\n')
            CHECK(i > 0 && out[i - 1] == '\r');
    }
    /* the only empty line is the last one */
    const char *blank = memmem(out, n, "\r\n\r\n", 4);
    CHECK(blank && (size_t)(blank - out) == n - 4);
}

static void check_round_trip(const sip_msg_t *req, const char *out, size_t n)
{
    sip_msg_t *resp = NULL;
    char why[160];
    sip_msg_status_t st = sip_msg_parse(out, n, &resp, why, sizeof why);
    if (st == SIP_MSG_ERR_SYNTAX && strcmp(why, "Too many header lines") == 0)
        return; /* the response has a few lines more than the request */
    if (st != SIP_MSG_OK)
        fprintf(stderr, "response does not parse: %s\n%.*s\n", why, (int)n, out);
    CHECK(st == SIP_MSG_OK);
    CHECK(!sip_msg_is_request(resp));
    CHECK(sip_msg_status(resp) == 400);
    CHECK(same(sip_msg_call_id(resp), sip_msg_call_id(req)));
    CHECK(sip_msg_cseq(resp) == sip_msg_cseq(req));
    CHECK(sip_msg_cseq_method(resp) == sip_msg_cseq_method(req));
    CHECK(same(sip_msg_via_branch(resp), sip_msg_via_branch(req)));
    CHECK(same(sip_msg_via_host(resp), sip_msg_via_host(req)));
    CHECK(same(sip_msg_via_port(resp), sip_msg_via_port(req)));
    CHECK(same(sip_msg_from_tag(resp), sip_msg_from_tag(req)));
    sip_str_t want_tag = sip_msg_to_tag(req);
    if (!want_tag.s)
        want_tag = (sip_str_t){"fz1", 3};
    CHECK(same(sip_msg_to_tag(resp), want_tag));
    sip_msg_free(resp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);

    sip_msg_t *m = (sip_msg_t *)buf; /* must be overwritten */
    char why[128];
    memset(why, 'x', sizeof why);
    sip_msg_status_t st = sip_msg_parse(buf, size, &m, why, sizeof why);
    CHECK(st == SIP_MSG_OK || st == SIP_MSG_ERR_SYNTAX || st == SIP_MSG_ERR_MISSING ||
          st == SIP_MSG_ERR_INVALID || st == SIP_MSG_ERR_NOMEM);
    CHECK(memchr(why, '\0', sizeof why) != NULL);
    CHECK(m != (sip_msg_t *)buf);
    if (st == SIP_MSG_OK)
        CHECK(m != NULL && why[0] == '\0');
    else
        CHECK(why[0] != '\0' && (m == NULL || sip_msg_can_respond(m)));

    if (m) {
        touch_all(m);
        /* responses amend the top Via with received/rport from the source */
        sip_msg_set_source(m, (size & 1) ? "2001:db8::77" : "203.0.113.9", 61000);
        CHECK(!sip_msg_can_respond(m) ||
              (sip_msg_is_request(m) && sip_msg_method(m) != SIP_METHOD_ACK));
        size_t cap = size + 4096;
        char *out = malloc(cap);
        CHECK(out != NULL);
        ssize_t n = sip_msg_build_response(m, 400, NULL, "fz1", "Warning: 399 fuzz \"x\"\r\n", NULL,
                                           NULL, 0, out, cap);
        if (!sip_msg_can_respond(m)) {
            CHECK(n == -1);
        } else {
            CHECK(n > 0 && (size_t)n <= cap);
            check_framing(out, (size_t)n);
            char *tight = malloc((size_t)n);
            CHECK(tight != NULL);
            CHECK(sip_msg_build_response(m, 400, NULL, "fz1", "Warning: 399 fuzz \"x\"\r\n", NULL,
                                         NULL, 0, tight, (size_t)n - 1) == -1);
            CHECK(sip_msg_build_response(m, 400, NULL, "fz1", "Warning: 399 fuzz \"x\"\r\n", NULL,
                                         NULL, 0, tight, (size_t)n) == n);
            CHECK(memcmp(tight, out, (size_t)n) == 0);
            free(tight);
            if (st == SIP_MSG_OK)
                check_round_trip(m, out, (size_t)n);
        }
        free(out);
    }
    sip_msg_free(m);
    free(buf);
    return 0;
}
