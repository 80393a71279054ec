/* dp_frame_next(): SIP stream framing and RFC 5626 keep-alives.
 *
 * Every input is placed at the very end of a readable mapping that is followed by a
 * PROT_NONE page, so reading one byte past buf[avail-1] crashes the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dp_frame.h"

#define MAX_SIZE 65536
#define GUARD_AREA (4u << 20) /* readable bytes before the guard page */

/* ---- guard page ---- */

/* [PROT_NONE page][GUARD_AREA readable bytes][PROT_NONE page] */
static unsigned char *guard_map;
static unsigned char *guard_area;
static size_t guard_map_len;

static int guard_setup(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    guard_map_len = page + GUARD_AREA + page;
    void *m = mmap(NULL, guard_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    guard_map = m;
    guard_area = guard_map + page;
    if (mprotect(guard_map, page, PROT_NONE) != 0)
        return -1;
    return mprotect(guard_area + GUARD_AREA, page, PROT_NONE);
}

static int guard_teardown(void **state)
{
    (void)state;
    munmap(guard_map, guard_map_len);
    return 0;
}

/* Copies data[0..len) so that its last byte is the last readable byte. */
static const char *at_page_end(const void *data, size_t len)
{
    assert_true(len <= GUARD_AREA);
    unsigned char *p = guard_area + GUARD_AREA - len;
    memcpy(p, data, len);
    return (const char *)p;
}

/* Copies data[0..len) so that the byte before it is unreadable. */
static const char *at_page_start(const void *data, size_t len)
{
    assert_true(len <= GUARD_AREA);
    memcpy(guard_area, data, len);
    return (const char *)guard_area;
}

static dp_frame_result_t frame(const void *data, size_t len, size_t max, size_t *out)
{
    dp_frame_state_t st = {0};
    return dp_frame_next(at_page_end(data, len), len, max, &st, out);
}

/* ---- streams of expected units ---- */

struct unit {
    dp_frame_result_t res;
    size_t len;  /* *len the unit is reported with */
    size_t need; /* bytes from its start needed before it is reported */
};

struct stream {
    char bytes[16384];
    size_t len;
    struct unit u[8];
    size_t n;
};

static void put(struct stream *s, const char *text, size_t len)
{
    assert_true(s->len + len <= sizeof s->bytes);
    memcpy(s->bytes + s->len, text, len);
    s->len += len;
}

static void add_unit(struct stream *s, dp_frame_result_t res, size_t len, size_t need)
{
    assert_true(s->n < sizeof s->u / sizeof s->u[0]);
    s->u[s->n++] = (struct unit){res, len, need};
}

/* Appends `before` + decimal strlen(body) + `after` + body as one MESSAGE. */
static void add_message(struct stream *s, const char *before, const char *after, const char *body)
{
    char num[32];
    size_t start = s->len;
    snprintf(num, sizeof num, "%zu", strlen(body));
    put(s, before, strlen(before));
    put(s, num, strlen(num));
    put(s, after, strlen(after));
    put(s, body, strlen(body));
    add_unit(s, DP_FRAME_MESSAGE, s->len - start, s->len - start);
}

/* Appends a message whose Content-Length the text spells out itself. */
static void add_literal(struct stream *s, const char *text, dp_frame_result_t res)
{
    size_t start = s->len;
    put(s, text, strlen(text));
    size_t hdr = (size_t)(strstr(s->bytes + start, "\r\n\r\n") - (s->bytes + start)) + 4;
    size_t len = res == DP_FRAME_MESSAGE ? s->len - start : hdr;
    add_unit(s, res, len, len);
}

static void add_ping(struct stream *s)
{
    put(s, "\r\n\r\n", 4);
    add_unit(s, DP_FRAME_PING, 4, 4);
}

/* A pong is only known to be one once the byte after it is seen (two when that
 * byte is '\r'); call after the following unit was added. */
static void add_pong_before_next(struct stream *s, size_t at)
{
    size_t need = s->bytes[at + 2] == '\r' ? 4 : 3;
    assert_true(at + need <= s->len);
    memmove(&s->u[1], &s->u[0], s->n * sizeof s->u[0]);
    s->n++;
    s->u[0] = (struct unit){DP_FRAME_PONG, 2, need};
}

/* Walks the units of the prefix s->bytes[0..k) with a fresh state per call and
 * checks each is reported exactly when complete, and PARTIAL before. */
static void check_prefix(const struct stream *s, size_t k, size_t max)
{
    const char *p = at_page_end(s->bytes, k);
    size_t off = 0;
    for (size_t i = 0;; i++) {
        dp_frame_state_t st = {0};
        size_t len = SIZE_MAX;
        dp_frame_result_t r = dp_frame_next(p + off, k - off, max, &st, &len);
        if (i < s->n && k - off >= s->u[i].need) {
            assert_int_equal(r, s->u[i].res);
            assert_int_equal(len, s->u[i].len);
            assert_true(len <= k - off);
            if (r < 0)
                return;
            off += len;
        } else {
            assert_int_equal(r, DP_FRAME_PARTIAL);
            assert_int_equal(len, SIZE_MAX); /* left alone */
            return;
        }
    }
}

static void check_every_prefix(const struct stream *s)
{
    for (size_t k = 0; k <= s->len; k++)
        check_prefix(s, k, MAX_SIZE);
}

/* Same, but one state per unit is kept across growing prefixes, as a connection
 * does while bytes arrive. */
static void check_resumed_prefixes(const struct stream *s, size_t step)
{
    dp_frame_state_t st = {0};
    size_t off = 0, i = 0;
    for (size_t k = 0;; k += step) {
        if (k > s->len)
            k = s->len;
        const char *p = at_page_end(s->bytes, k);
        for (;;) {
            size_t len = SIZE_MAX;
            dp_frame_result_t r = dp_frame_next(p + off, k - off, MAX_SIZE, &st, &len);
            if (i < s->n && k - off >= s->u[i].need) {
                assert_int_equal(r, s->u[i].res);
                assert_int_equal(len, s->u[i].len);
                st = (dp_frame_state_t){0};
                if (r < 0)
                    return;
                off += len;
                i++;
            } else {
                assert_int_equal(r, DP_FRAME_PARTIAL);
                assert_int_equal(len, SIZE_MAX);
                break;
            }
        }
        if (k == s->len)
            break;
    }
    assert_int_equal(i, s->n);
}

/* A connection buffer filled one byte per read and compacted after each unit. */
static void check_byte_by_byte(const struct stream *s)
{
    static char conn[sizeof((struct stream *)0)->bytes];
    dp_frame_state_t st = {0};
    size_t have = 0, i = 0, since = 0;
    for (size_t k = 0; k < s->len; k++) {
        conn[have++] = s->bytes[k];
        since++;
        for (;;) {
            size_t len = SIZE_MAX;
            dp_frame_result_t r = dp_frame_next(conn, have, MAX_SIZE, &st, &len);
            if (r == DP_FRAME_PARTIAL)
                break;
            assert_true(i < s->n);
            assert_int_equal(r, s->u[i].res);
            assert_int_equal(len, s->u[i].len);
            /* reported on the very byte that completed it */
            assert_int_equal(since, s->u[i].need);
            st = (dp_frame_state_t){0};
            if (r < 0)
                return;
            memmove(conn, conn + len, have - len);
            have -= len;
            since = have;
            i++;
        }
    }
    assert_int_equal(i, s->n);
}

static void check_all_ways(const struct stream *s)
{
    check_every_prefix(s);
    check_resumed_prefixes(s, 1);
    check_resumed_prefixes(s, 7);
    check_resumed_prefixes(s, 100);
    check_byte_by_byte(s);
}

/* ---- sample messages ---- */

static const char sdp[] = "v=0\r\n"
                          "o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n"
                          "s=-\r\n"
                          "c=IN IP4 192.0.2.10\r\n"
                          "t=0 0\r\n"
                          "m=audio 49170 RTP/SAVP 0 8 101\r\n"
                          "a=crypto:1 AES_CM_128_HMAC_SHA1_80 "
                          "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
                          "a=rtpmap:101 telephone-event/8000\r\n"
                          "a=sendrecv\r\n";

static const char invite_head[] =
    "INVITE sip:meet.alice@conf.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 192.0.2.10:5061;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:meet.alice@conf.example.com>\r\n"
    "From: \"Bob\" <sip:bob@example.org>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.example.org\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.10:5061;transport=tls>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, INFO\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: Example Phone 1.0\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: ";

static const char options_head[] = "OPTIONS sip:conf.example.com SIP/2.0\r\n"
                                   "Via: SIP/2.0/TLS 192.0.2.20:5061;branch=z9hG4bKhjhs8ass877\r\n"
                                   "Max-Forwards: 70\r\n"
                                   "To: <sip:conf.example.com>\r\n"
                                   "From: <sip:probe@example.net>;tag=1928301774\r\n"
                                   "Call-ID: a84b4c76e66710\r\n"
                                   "CSeq: 63104 OPTIONS\r\n"
                                   "Accept: application/sdp\r\n";

static void add_invite(struct stream *s)
{
    add_message(s, invite_head, "\r\n\r\n", sdp);
}

static void add_options(struct stream *s)
{
    char before[1024];
    snprintf(before, sizeof before, "%sContent-Length: ", options_head);
    add_message(s, before, "\r\n\r\n", "");
}

/* ---- tests: whole messages ---- */

static void frame_finds_an_invite_with_an_sdp_body_at_every_prefix(void **state)
{
    (void)state;
    struct stream s = {0};
    add_invite(&s);
    assert_true(s.u[0].len > strlen(sdp));
    check_all_ways(&s);
}

static void frame_finds_an_options_without_body_at_every_prefix(void **state)
{
    (void)state;
    struct stream s = {0};
    add_options(&s);
    assert_memory_equal(s.bytes + s.len - 4, "\r\n\r\n", 4);
    check_all_ways(&s);
}

static void frame_reads_the_compact_length_header(void **state)
{
    (void)state;
    struct stream s = {0};
    add_message(&s,
                "MESSAGE sip:bob@example.org SIP/2.0\r\n"
                "v: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n"
                "i: 12345@example.org\r\n"
                "c: text/plain\r\n"
                "l: ",
                "\r\n\r\n", "Hello, Bob. This body is counted by the compact l header.");
    check_all_ways(&s);

    struct stream t = {0};
    add_message(&t, "MESSAGE sip:bob@example.org SIP/2.0\r\nL\t :\t", "\t \r\nx: y\r\n\r\n",
                "upper-case L with tabs");
    check_all_ways(&t);
}

static void frame_joins_folded_header_lines_to_the_previous_header(void **state)
{
    (void)state;
    /* the length itself sits on a continuation line */
    struct stream s = {0};
    add_message(&s,
                "NOTIFY sip:bob@example.org SIP/2.0\r\n"
                "Subject: a subject that goes on\r\n"
                "  over a continuation line\r\n"
                "Content-Length:\r\n"
                "\t ",
                "\r\n"
                "Event: dialog\r\n\r\n",
                "<xml/>");
    check_all_ways(&s);

    /* a continuation line that looks like a length header belongs to Subject */
    struct stream t = {0};
    add_message(&t,
                "NOTIFY sip:bob@example.org SIP/2.0\r\n"
                "Subject: looks like\r\n"
                " l: 999\r\n"
                "Content-Length: ",
                "\r\n\r\n", "abc");
    check_all_ways(&t);

    /* digits split by a fold are two numbers, not one */
    struct stream u = {0};
    add_literal(&u,
                "NOTIFY sip:bob@example.org SIP/2.0\r\n"
                "Content-Length: 1\r\n"
                " 2\r\n\r\n"
                "123456789012",
                DP_FRAME_BAD_LENGTH);
    check_all_ways(&u);
}

static void frame_matches_header_names_in_any_case_with_spaces_around_the_colon(void **state)
{
    (void)state;
    struct stream s = {0};
    add_message(&s,
                "bye sip:bob@example.org SIP/2.0\r\n"
                "call-id: x@y\r\n"
                "content-length   :\t  ",
                "  \t\r\n\r\n", "lowercase body");
    check_all_ways(&s);

    struct stream t = {0};
    add_message(&t, "BYE sip:bob@example.org SIP/2.0\r\nCONTENT-LENGTH:", "\r\n\r\n", "upper");
    check_all_ways(&t);
}

static void frame_ignores_headers_that_only_start_like_content_length(void **state)
{
    (void)state;
    struct stream s = {0};
    add_message(&s,
                "INFO sip:bob@example.org SIP/2.0\r\n"
                "Content-Lengthy: 77\r\n"
                "Lines: 88\r\n"
                "Content-Type: text/plain\r\n"
                "X-Content-Length: 99\r\n"
                "Content-Length: ",
                "\r\n\r\n", "body with a fake end\r\n\r\nContent-Length: 5000\r\n\r\n");
    check_all_ways(&s);
}

static void frame_accepts_a_zero_content_length(void **state)
{
    (void)state;
    struct stream s = {0};
    add_literal(&s,
                "ACK sip:bob@example.org SIP/2.0\r\n"
                "Content-Length: 0\r\n\r\n",
                DP_FRAME_MESSAGE);
    check_all_ways(&s);
    size_t len;
    assert_int_equal(frame(s.bytes, s.len, MAX_SIZE, &len), DP_FRAME_MESSAGE);
    assert_int_equal(len, strstr(s.bytes, "\r\n\r\n") - s.bytes + 4);
}

static void frame_accepts_a_repeated_content_length_with_the_same_value(void **state)
{
    (void)state;
    struct stream s = {0};
    add_message(&s, "INFO sip:bob@example.org SIP/2.0\r\nContent-Length: 0004\r\nl: ", "\r\n\r\n",
                "four");
    check_all_ways(&s);
}

static void frame_separates_two_messages_sent_back_to_back(void **state)
{
    (void)state;
    struct stream s = {0};
    add_invite(&s);
    add_options(&s);
    assert_int_equal(s.n, 2);
    check_all_ways(&s);
}

static void frame_separates_a_message_from_the_ping_after_it(void **state)
{
    (void)state;
    struct stream s = {0};
    add_invite(&s);
    add_ping(&s);
    add_options(&s);
    check_all_ways(&s);
}

/* ---- tests: keep-alives ---- */

static void frame_reports_a_double_crlf_as_a_ping(void **state)
{
    (void)state;
    struct stream s = {0};
    add_ping(&s);
    check_all_ways(&s);

    struct stream t = {0};
    add_ping(&t);
    add_ping(&t);
    add_ping(&t);
    check_all_ways(&t);
}

static void frame_reports_a_crlf_before_a_message_as_a_pong(void **state)
{
    (void)state;
    struct stream s = {0};
    put(&s, "\r\n", 2);
    add_options(&s);
    add_pong_before_next(&s, 0);
    check_all_ways(&s);

    /* "\r\n" then a stray '\r' that does not start a ping */
    size_t len;
    assert_int_equal(frame("\r\n\rX", 4, MAX_SIZE, &len), DP_FRAME_PONG);
    assert_int_equal(len, 2);
}

static void frame_waits_on_a_lone_crlf_that_may_be_half_a_ping(void **state)
{
    (void)state;
    size_t len = SIZE_MAX;
    assert_int_equal(frame("\r\n", 2, MAX_SIZE, &len), DP_FRAME_PARTIAL);
    assert_int_equal(frame("\r\n\r", 3, MAX_SIZE, &len), DP_FRAME_PARTIAL);
    assert_int_equal(frame("\r", 1, MAX_SIZE, &len), DP_FRAME_PARTIAL);
    assert_int_equal(len, SIZE_MAX);
}

static void frame_answers_a_ping_that_arrives_in_two_halves(void **state)
{
    (void)state;
    char conn[4] = "\r\n";
    dp_frame_state_t st = {0};
    size_t len = 0;
    assert_int_equal(dp_frame_next(at_page_end(conn, 2), 2, MAX_SIZE, &st, &len), DP_FRAME_PARTIAL);
    memcpy(conn + 2, "\r\n", 2);
    assert_int_equal(dp_frame_next(at_page_end(conn, 4), 4, MAX_SIZE, &st, &len), DP_FRAME_PING);
    assert_int_equal(len, 4);
}

/* ---- tests: errors ---- */

static void frame_reports_no_length_when_content_length_is_missing(void **state)
{
    (void)state;
    struct stream s = {0};
    char text[1024];
    snprintf(text, sizeof text, "%s\r\nv=0\r\n", options_head);
    add_literal(&s, text, DP_FRAME_NO_LENGTH);
    assert_int_equal(s.u[0].len, strlen(options_head) + 2);
    check_all_ways(&s);
}

static void check_bad_length(const char *value)
{
    struct stream s = {0};
    char text[512];
    snprintf(text, sizeof text,
             "INFO sip:bob@example.org SIP/2.0\r\n"
             "Content-Length: %s\r\n"
             "Call-ID: 1@x\r\n\r\n"
             "body",
             value);
    add_literal(&s, text, DP_FRAME_BAD_LENGTH);
    check_all_ways(&s);
}

static void frame_rejects_a_content_length_that_is_not_a_number(void **state)
{
    (void)state;
    check_bad_length("abc");
    check_bad_length("-1");
    check_bad_length("+4");
    check_bad_length("4x");
    check_bad_length("4, 4");
    check_bad_length("");
    check_bad_length("  ");
    check_bad_length("4\r");
}

static void frame_rejects_a_content_length_that_overflows(void **state)
{
    (void)state;
    check_bad_length("99999999999999999999");
    check_bad_length("18446744073709551616");
    check_bad_length("000000000000000000000000000000099999999999999999999");
}

static void frame_rejects_two_different_content_lengths(void **state)
{
    (void)state;
    struct stream s = {0};
    add_literal(&s,
                "INFO sip:bob@example.org SIP/2.0\r\n"
                "Content-Length: 4\r\n"
                "Via: SIP/2.0/TLS h\r\n"
                "l: 5\r\n\r\n"
                "12345",
                DP_FRAME_BAD_LENGTH);
    check_all_ways(&s);
}

static void frame_accepts_a_message_of_exactly_max_size(void **state)
{
    (void)state;
    struct stream s = {0};
    add_invite(&s);
    size_t len = 0;
    assert_int_equal(frame(s.bytes, s.len, s.len, &len), DP_FRAME_MESSAGE);
    assert_int_equal(len, s.len);
}

static void frame_reports_too_big_as_soon_as_the_headers_end(void **state)
{
    (void)state;
    struct stream s = {0};
    add_invite(&s);
    size_t hdr = (size_t)(strstr(s.bytes, "\r\n\r\n") - s.bytes) + 4;
    size_t max = s.len - 1;
    dp_frame_state_t st = {0};
    for (size_t k = 0; k <= s.len; k++) {
        size_t len = SIZE_MAX;
        dp_frame_result_t r = dp_frame_next(at_page_end(s.bytes, k), k, max, &st, &len);
        if (k < hdr) {
            assert_int_equal(r, DP_FRAME_PARTIAL);
        } else {
            /* the length line says the body does not fit: no need to wait for it */
            assert_int_equal(r, DP_FRAME_TOO_BIG);
            assert_int_equal(len, hdr);
            st = (dp_frame_state_t){0};
        }
    }
}

static void frame_reports_too_big_for_a_content_length_beyond_max(void **state)
{
    (void)state;
    const char *text = "INFO sip:bob@example.org SIP/2.0\r\n"
                       "Content-Length: 18446744073709551615\r\n\r\n";
    size_t len = 0;
    assert_int_equal(frame(text, strlen(text), MAX_SIZE, &len), DP_FRAME_TOO_BIG);
    assert_int_equal(len, strlen(text));

    char text2[256];
    snprintf(text2, sizeof text2, "INFO sip:b SIP/2.0\r\nl: %d\r\n\r\n", MAX_SIZE);
    assert_int_equal(frame(text2, strlen(text2), MAX_SIZE, &len), DP_FRAME_TOO_BIG);
    assert_int_equal(len, strlen(text2));
    assert_int_equal(frame(text2, strlen(text2), MAX_SIZE + strlen(text2), &len), DP_FRAME_PARTIAL);
}

/* 1 MB of header lines that never end. */
static char *endless_headers(size_t size)
{
    char *big = malloc(size);
    assert_non_null(big);
    static const char start[] = "INVITE sip:x@example.com SIP/2.0\r\n";
    memcpy(big, start, sizeof start - 1);
    for (size_t i = sizeof start - 1; i < size; i++)
        big[i] = (i % 64 == 62) ? '\r' : (i % 64 == 63) ? '\n' : 'a';
    return big;
}

/* The shortest length b[0..k) (headers not yet ended) can grow into while ending
 * its headers: the terminator may reuse a partial "\r\n\r" already at the end. */
static size_t earliest_end(const char *b, size_t k)
{
    static const char end[] = "\r\n\r\n";
    for (size_t keep = 3; keep > 0; keep--) {
        if (k >= keep && memcmp(b + k - keep, end, keep) == 0)
            return k + 4 - keep;
    }
    return k + 4;
}

/* The first prefix length of b whose headers can no longer end within max. */
static size_t first_unfinishable(const char *b, size_t max)
{
    size_t k = 0;
    while (earliest_end(b, k) <= max)
        k++;
    return k;
}

static void frame_reports_too_big_once_the_headers_cannot_end_within_max(void **state)
{
    (void)state;
    struct stream s = {0};
    add_options(&s);
    size_t h = s.len; /* Content-Length: 0: the message ends with its headers */
    for (size_t max = h - 6; max <= h + 1; max++) {
        dp_frame_state_t st = {0};
        for (size_t k = 0; k <= h; k++) {
            size_t len = SIZE_MAX;
            dp_frame_result_t r = dp_frame_next(at_page_end(s.bytes, k), k, max, &st, &len);
            if (k == h && h <= max) {
                assert_int_equal(r, DP_FRAME_MESSAGE);
                assert_int_equal(len, h);
            } else if (k < h && earliest_end(s.bytes, k) <= max) {
                assert_int_equal(r, DP_FRAME_PARTIAL);
            } else {
                assert_int_equal(r, DP_FRAME_TOO_BIG);
                assert_int_equal(len, 0);
                break;
            }
        }
    }
}

static void frame_reports_too_big_for_a_megabyte_of_headers(void **state)
{
    (void)state;
    const size_t size = 1u << 20;
    char *big = endless_headers(size);
    size_t len = SIZE_MAX;
    assert_int_equal(frame(big, size, MAX_SIZE, &len), DP_FRAME_TOO_BIG);
    assert_int_equal(len, 0);

    /* growing: PARTIAL while the headers could still end within max, TOO_BIG once
     * they cannot, at the latest when max bytes are there */
    dp_frame_state_t st = {0};
    size_t first_too_big = 0;
    for (size_t k = 0; k <= MAX_SIZE + 10 && first_too_big == 0; k++) {
        dp_frame_result_t r = dp_frame_next(at_page_end(big, k), k, MAX_SIZE, &st, &len);
        if (r == DP_FRAME_TOO_BIG)
            first_too_big = k;
        else
            assert_int_equal(r, DP_FRAME_PARTIAL);
    }
    assert_int_equal(first_too_big, first_unfinishable(big, MAX_SIZE));
    free(big);
}

/* CPU seconds since t0; the trickle tests fail (rather than hang) past a bound that
 * linear work stays far below and quadratic rescanning far above. */
static double cpu_since(clock_t t0)
{
    return (double)(clock() - t0) / CLOCKS_PER_SEC;
}

static void frame_does_not_rescan_headers_while_bytes_trickle_in(void **state)
{
    (void)state;
    /* 1 MB one byte per call: rescanning would be ~5 * 10^11 byte reads */
    const size_t size = 1u << 20;
    char *big = endless_headers(size);
    dp_frame_state_t st = {0};
    size_t len;
    clock_t t0 = clock();
    for (size_t k = 1; k <= size; k++) {
        assert_int_equal(dp_frame_next(big, k, 4 * size, &st, &len), DP_FRAME_PARTIAL);
        if (k % 4096 == 0)
            assert_true(cpu_since(t0) < 10.0);
    }
    free(big);
}

static void frame_does_not_rescan_headers_while_the_body_trickles_in(void **state)
{
    (void)state;
    /* ~1 MB of headers whose last line announces a ~1 MB body */
    const size_t total = 2u << 20, hdr = (1u << 20) - 128;
    char *big = endless_headers(total);
    char line[64];
    snprintf(line, sizeof line, "\r\nl: %zu\r\n\r\n", total - hdr);
    size_t n = strlen(line);
    memcpy(big + hdr - n, line, n);

    dp_frame_state_t st = {0};
    size_t len = 0;
    clock_t t0 = clock();
    dp_frame_result_t r = DP_FRAME_PARTIAL;
    for (size_t k = hdr; k <= total && r == DP_FRAME_PARTIAL; k++) {
        r = dp_frame_next(big, k, 2 * total, &st, &len);
        if (k % 4096 == 0)
            assert_true(cpu_since(t0) < 10.0);
    }
    assert_int_equal(r, DP_FRAME_MESSAGE);
    assert_int_equal(len, total);
    free(big);
}

static void frame_never_reads_before_the_buffer(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "\n",     "\n\r\n\r\n", "\r\n",           "\r\n\r\n",
        "\r\n\n", "\r\r\n\r\n", "\nl: 0\r\n\r\n", "X\r\n\nl: 1\r\n\r\nb",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = strlen(inputs[i]);
        for (size_t k = 0; k <= n; k++) {
            dp_frame_state_t st = {0};
            size_t len = SIZE_MAX;
            dp_frame_result_t r = dp_frame_next(at_page_start(inputs[i], k), k, 64, &st, &len);
            assert_true(r == DP_FRAME_PARTIAL || len <= k);
        }
    }
    struct stream s = {0};
    add_invite(&s);
    add_ping(&s);
    for (size_t k = 0; k <= s.len; k++) {
        dp_frame_state_t st = {0};
        size_t len = SIZE_MAX;
        dp_frame_result_t r = dp_frame_next(at_page_start(s.bytes, k), k, MAX_SIZE, &st, &len);
        assert_int_equal(r, k < s.u[0].len ? DP_FRAME_PARTIAL : DP_FRAME_MESSAGE);
    }
}

static void frame_reports_too_big_exactly_when_crlf_noise_cannot_end_within_max(void **state)
{
    (void)state;
    const size_t max = 512, size = 2 * max;
    static const char alphabet[] = "\r\n\r\na:l ";
    char *noise = malloc(size);
    assert_non_null(noise);
    uint64_t x = 0x2545f4914f6cdd1du;

    for (int round = 0; round < 200; round++) {
        /* random CR/LF-heavy bytes without "\r\n\r\n": the headers never end */
        noise[0] = 'a';
        for (size_t i = 1; i < size; i++) {
            noise[i] = alphabet[(x = x * 6364136223846793005u + 1442695040888963407u) >> 61];
            if (i >= 3 && memcmp(noise + i - 3, "\r\n\r\n", 4) == 0)
                noise[i] = 'a';
        }
        dp_frame_state_t st = {0};
        for (size_t k = 0; k <= size; k++) {
            size_t len = SIZE_MAX;
            dp_frame_result_t r = dp_frame_next(at_page_end(noise, k), k, max, &st, &len);
            if (earliest_end(noise, k) <= max) {
                assert_int_equal(r, DP_FRAME_PARTIAL);
            } else {
                /* and again on every longer prefix, from a fresh state */
                assert_int_equal(r, DP_FRAME_TOO_BIG);
                assert_int_equal(len, 0);
                st = (dp_frame_state_t){0};
            }
        }
    }
    free(noise);
}

/* xorshift: reproducible garbage */
static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void frame_survives_binary_garbage_and_ends_with_too_big(void **state)
{
    (void)state;
    const size_t max = 4096, size = 3 * max;
    unsigned char *junk = malloc(size);
    assert_non_null(junk);
    uint64_t x = 0x9e3779b97f4a7c15u;

    for (int round = 0; round < 8; round++) {
        for (size_t i = 0; i < size; i++) {
            junk[i] = (unsigned char)rng_next(&x);
            if (junk[i] == '\n') /* no line ends: this can never frame */
                junk[i] = 0;
        }
        if (round == 0)
            memset(junk, 0, size);
        if (round == 1)
            memset(junk, '\r', size);

        dp_frame_state_t st = {0};
        size_t len;
        for (size_t k = 0; k <= size; k += 1 + k / 64) {
            dp_frame_result_t r = dp_frame_next(at_page_end(junk, k), k, max, &st, &len);
            if (k >= max) {
                assert_int_equal(r, DP_FRAME_TOO_BIG);
                st = (dp_frame_state_t){0};
            } else if (r != DP_FRAME_PARTIAL) {
                /* early TOO_BIG only within 3 bytes of max */
                assert_int_equal(r, DP_FRAME_TOO_BIG);
                assert_true(k > max - 4);
                st = (dp_frame_state_t){0};
            }
        }
    }

    /* unrestricted garbage: whatever comes out stays inside the buffer */
    for (int round = 0; round < 64; round++) {
        for (size_t i = 0; i < size; i++) {
            uint64_t v = rng_next(&x);
            junk[i] = (v & 3) == 0 ? "\r\n:l "[v % 5] : (unsigned char)(v >> 8);
        }
        size_t off = 0;
        while (off < size) {
            dp_frame_state_t st = {0};
            size_t len = SIZE_MAX;
            dp_frame_result_t r =
                dp_frame_next(at_page_end(junk + off, size - off), size - off, max, &st, &len);
            if (r == DP_FRAME_PARTIAL || r < 0)
                break;
            assert_true(len > 0 && len <= size - off);
            off += len;
        }
    }
    free(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_finds_an_invite_with_an_sdp_body_at_every_prefix),
        cmocka_unit_test(frame_finds_an_options_without_body_at_every_prefix),
        cmocka_unit_test(frame_reads_the_compact_length_header),
        cmocka_unit_test(frame_joins_folded_header_lines_to_the_previous_header),
        cmocka_unit_test(frame_matches_header_names_in_any_case_with_spaces_around_the_colon),
        cmocka_unit_test(frame_ignores_headers_that_only_start_like_content_length),
        cmocka_unit_test(frame_accepts_a_zero_content_length),
        cmocka_unit_test(frame_accepts_a_repeated_content_length_with_the_same_value),
        cmocka_unit_test(frame_separates_two_messages_sent_back_to_back),
        cmocka_unit_test(frame_separates_a_message_from_the_ping_after_it),
        cmocka_unit_test(frame_reports_a_double_crlf_as_a_ping),
        cmocka_unit_test(frame_reports_a_crlf_before_a_message_as_a_pong),
        cmocka_unit_test(frame_waits_on_a_lone_crlf_that_may_be_half_a_ping),
        cmocka_unit_test(frame_answers_a_ping_that_arrives_in_two_halves),
        cmocka_unit_test(frame_reports_no_length_when_content_length_is_missing),
        cmocka_unit_test(frame_rejects_a_content_length_that_is_not_a_number),
        cmocka_unit_test(frame_rejects_a_content_length_that_overflows),
        cmocka_unit_test(frame_rejects_two_different_content_lengths),
        cmocka_unit_test(frame_accepts_a_message_of_exactly_max_size),
        cmocka_unit_test(frame_reports_too_big_as_soon_as_the_headers_end),
        cmocka_unit_test(frame_reports_too_big_for_a_content_length_beyond_max),
        cmocka_unit_test(frame_reports_too_big_once_the_headers_cannot_end_within_max),
        cmocka_unit_test(frame_reports_too_big_for_a_megabyte_of_headers),
        cmocka_unit_test(frame_does_not_rescan_headers_while_bytes_trickle_in),
        cmocka_unit_test(frame_does_not_rescan_headers_while_the_body_trickles_in),
        cmocka_unit_test(frame_reports_too_big_exactly_when_crlf_noise_cannot_end_within_max),
        cmocka_unit_test(frame_never_reads_before_the_buffer),
        cmocka_unit_test(frame_survives_binary_garbage_and_ends_with_too_big),
    };
    return cmocka_run_group_tests(tests, guard_setup, guard_teardown);
}
