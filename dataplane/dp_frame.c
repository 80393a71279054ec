/* SIP stream framing: finds where the next message (or keep-alive) on a TCP/TLS
 * byte stream ends. See dp_frame.h for the contract.
 *
 * DESIGN
 *
 * Keep-alives (RFC 5626 §3.5.1). A ping is "\r\n\r\n", a pong a single "\r\n". The
 * two can only be told apart by the bytes that follow a leading "\r\n":
 *   "\r\n" + "\r\n"           -> PING (4)
 *   "\r\n" + any byte but '\r' -> PONG (2)
 *   "\r\n" + '\r' + not '\n'   -> PONG (2); the stray '\r' then starts the next unit
 *   "\r\n" or "\r\n\r" alone  -> PARTIAL
 * A lone "\r\n" with nothing after it is PARTIAL, not PONG: reporting a pong there
 * would consume the first half of a ping that arrived split across two reads, and
 * that ping would never be answered. The price is that a pong which really is alone
 * stays in the buffer until the next bytes arrive; it needs no answer, so nothing
 * waits on it. Callers that time out unfinished messages should not count a buffer
 * holding only "\r\n" as one.
 *
 * Messages. Everything else is a message: a start line, header lines, an empty line,
 * then Content-Length bytes of body. Lines end with CRLF; a bare CR or LF is an
 * ordinary byte (and makes a Content-Length value invalid). The end of the headers
 * is the first "\r\n\r\n".
 *
 * Scanning. On the first call for a message (state zero) one pass over the buffer
 * walks the lines with memchr('\n'), looks at header names only at line starts, and
 * stops at the empty line. When the headers are not complete yet, st->scanned
 * records how far the buffer is known not to hold their end; later calls only look
 * for "\r\n\r\n" in the new bytes and parse the header lines once, when the end
 * shows up. When the headers are complete but the body is not, st->scanned holds
 * the total message length with the top bit set (DP_FRAME_KNOWN), so waiting for
 * the body costs O(1) per call. Either way a message trickled in byte by byte costs
 * O(size) in total, not O(size^2).
 *
 * Size limit. TOO_BIG is reported as soon as no continuation of the bytes seen so
 * far can be a message of at most max_size bytes: when the headers cannot end
 * within max_size, and when they end with a Content-Length that carries the total
 * past max_size. For TOO_BIG *len is the header length when the headers were
 * complete (so a caller may parse them to answer 513 before closing) and 0 when they
 * were not. max_size is clamped to SIZE_MAX / 2, which no buffer reaches.
 *
 * *len is written only for results other than PARTIAL.
 *
 * State. The function zeroes *st itself whenever it returns something other than
 * PARTIAL, so a caller that forgets to is still correct; zeroing it again is
 * harmless. */
#include "dp_frame.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Top bit of st->scanned: the low bits are the total length of a message whose
 * headers were parsed and whose body is still arriving. */
#define DP_FRAME_KNOWN (~(SIZE_MAX >> 1))
#define DP_FRAME_SIZE_CAP (SIZE_MAX >> 1)

/* What the header lines said about Content-Length. */
struct hdr_scan {
    size_t hdr_len; /* bytes up to and including the empty line */
    size_t length;  /* Content-Length value, valid when `seen` */
    bool seen;      /* at least one Content-Length header */
    bool bad;       /* a value was invalid, or two values differed */
};

/* Content-Length value being read, possibly across folded lines. */
struct len_value {
    size_t value;
    bool active; /* the header being read is Content-Length */
    bool digits; /* a digit was seen */
    bool ended;  /* whitespace followed the digits: no more digits allowed */
    bool bad;
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Reads value bytes b[i..end): digits surrounded by spaces and tabs. */
static void value_feed(struct len_value *v, const char *b, size_t i, size_t end)
{
    for (; i < end && !v->bad; i++) {
        char c = b[i];
        if (is_ws(c)) {
            v->ended = v->digits;
        } else if (c >= '0' && c <= '9' && !v->ended) {
            size_t d = (size_t)(c - '0');
            if (v->value > (SIZE_MAX - d) / 10) {
                v->bad = true;
                break;
            }
            v->value = v->value * 10 + d;
            v->digits = true;
        } else {
            v->bad = true;
        }
    }
}

/* Ends the Content-Length header being read, if any, and merges it into h. */
static void value_finish(struct len_value *v, struct hdr_scan *h)
{
    if (!v->active)
        return;
    if (v->bad || !v->digits || (h->seen && h->length != v->value))
        h->bad = true;
    h->length = v->value;
    h->seen = true;
    *v = (struct len_value){0};
}

/* True when the header line b[ls..le) is named "Content-Length" or "l" (any case,
 * optional spaces or tabs before the colon); *value is set to the byte after the
 * colon. */
static bool is_length_header(const char *b, size_t ls, size_t le, size_t *value)
{
    static const char full[] = "content-length";
    const size_t full_len = sizeof full - 1;
    char c = ascii_lower(b[ls]);
    size_t i;

    if (c == 'l') {
        i = ls + 1;
    } else if (c == 'c' && le - ls > full_len) {
        for (i = 1; i < full_len; i++) {
            if (ascii_lower(b[ls + i]) != full[i])
                return false;
        }
        i = ls + full_len;
    } else {
        return false;
    }
    while (i < le && is_ws(b[i]))
        i++;
    if (i >= le || b[i] != ':')
        return false;
    *value = i + 1;
    return true;
}

/* Walks the CRLF-terminated lines of b[0..lim) from the start. Returns true when the
 * empty line that ends the headers was found, with h filled in; false when b[0..lim)
 * does not contain the end of the headers. b must not start with CRLF. */
static bool scan_headers(const char *b, size_t lim, struct hdr_scan *h)
{
    struct len_value v = {0};
    size_t ls = 0;   /* start of the current line */
    size_t from = 0; /* where to look for its LF */

    *h = (struct hdr_scan){0};
    while (from < lim) {
        const char *nl = memchr(b + from, '\n', lim - from);
        if (nl == NULL)
            return false;
        size_t j = (size_t)(nl - b);
        if (j == ls || b[j - 1] != '\r') {
            from = j + 1; /* bare LF: part of the line */
            continue;
        }
        size_t le = j - 1; /* line is b[ls..le), CRLF at le */
        if (le == ls) {
            value_finish(&v, h);
            h->hdr_len = j + 1;
            return true;
        }
        if (ls == 0) {
            /* start line */
        } else if (is_ws(b[ls])) {
            /* folded continuation of the previous header; its leading whitespace
             * ends any digits before the fold */
            if (v.active)
                value_feed(&v, b, ls, le);
        } else {
            size_t value;
            value_finish(&v, h);
            if (is_length_header(b, ls, le, &value)) {
                v.active = true;
                value_feed(&v, b, value, le);
            }
        }
        ls = j + 1;
        from = ls;
    }
    return false;
}

/* Looks for "\r\n\r\n" whose last byte lies in b[from..lim). Returns the length up
 * to and including it, or 0 when there is none. */
static size_t find_end(const char *b, size_t from, size_t lim)
{
    if (from < 3)
        from = 3;
    while (from < lim) {
        const char *nl = memchr(b + from, '\n', lim - from);
        if (nl == NULL)
            return 0;
        size_t j = (size_t)(nl - b);
        if (b[j - 1] == '\r' && b[j - 2] == '\n' && b[j - 3] == '\r')
            return j + 1;
        from = j + 1;
    }
    return 0;
}

/* The fewest bytes that must follow b[0..n) before "\r\n\r\n" can be complete. */
static size_t end_missing(const char *b, size_t n)
{
    if (n >= 3 && b[n - 3] == '\r' && b[n - 2] == '\n' && b[n - 1] == '\r')
        return 1;
    if (n >= 2 && b[n - 2] == '\r' && b[n - 1] == '\n')
        return 2;
    if (n >= 1 && b[n - 1] == '\r')
        return 3;
    return 4;
}

/* Leading CRLF: PING, PONG or PARTIAL as described at the top of this file. */
static dp_frame_result_t keepalive(const char *buf, size_t avail, size_t *len)
{
    if (avail == 2)
        return DP_FRAME_PARTIAL;
    if (buf[2] == '\r') {
        if (avail == 3)
            return DP_FRAME_PARTIAL;
        if (buf[3] == '\n') {
            *len = 4;
            return DP_FRAME_PING;
        }
    }
    *len = 2;
    return DP_FRAME_PONG;
}

dp_frame_result_t dp_frame_next(const char *buf, size_t avail, size_t max_size,
                                dp_frame_state_t *st, size_t *len)
{
    dp_frame_result_t res;
    struct hdr_scan h;
    size_t scanned = st->scanned;

    if (max_size > DP_FRAME_SIZE_CAP)
        max_size = DP_FRAME_SIZE_CAP;

    if (scanned & DP_FRAME_KNOWN) {
        size_t total = scanned & ~DP_FRAME_KNOWN;
        if (avail < total)
            return DP_FRAME_PARTIAL;
        *len = total;
        res = DP_FRAME_MESSAGE;
        goto out;
    }

    if (scanned == 0) {
        if (avail == 0 || (avail == 1 && buf[0] == '\r'))
            return DP_FRAME_PARTIAL;
        if (buf[0] == '\r' && buf[1] == '\n') {
            res = keepalive(buf, avail, len);
            if (res == DP_FRAME_PARTIAL)
                return res;
            goto out;
        }
    }

    size_t lim = avail < max_size ? avail : max_size;
    bool found;
    if (scanned == 0) {
        found = scan_headers(buf, lim, &h);
    } else {
        size_t end = find_end(buf, scanned, lim);
        found = end != 0 && scan_headers(buf, end, &h);
    }

    if (!found) {
        if (avail >= max_size || max_size - avail < end_missing(buf, avail)) {
            *len = 0;
            res = DP_FRAME_TOO_BIG;
            goto out;
        }
        st->scanned = avail;
        return DP_FRAME_PARTIAL;
    }

    if (!h.bad && h.seen && h.length <= max_size - h.hdr_len) {
        size_t total = h.hdr_len + h.length;
        if (avail < total) {
            st->scanned = DP_FRAME_KNOWN | total;
            return DP_FRAME_PARTIAL;
        }
        *len = total;
        res = DP_FRAME_MESSAGE;
    } else {
        *len = h.hdr_len;
        res = h.bad ? DP_FRAME_BAD_LENGTH : !h.seen ? DP_FRAME_NO_LENGTH : DP_FRAME_TOO_BIG;
    }

out:
    st->scanned = 0;
    return res;
}
