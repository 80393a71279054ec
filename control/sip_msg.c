/* The SIP message wrapper over sofia-sip (see sip_msg.h).
 *
 * DESIGN
 * Each message is parsed by sofia-sip's msg/sip parser into its own msg_t, which
 * owns one su_home holding the copy of the text, every parsed header and our
 * struct sip_msg. Nothing is global: the parser class (sip_default_mclass()) is
 * only read, so any number of threads may parse at once.
 *
 * The message is parsed with MSG_DO_EXTRACT_COPY: sofia-sip then parses each
 * header from a private copy and leaves its copy of the message text untouched,
 * with every header pointing at its own raw line (h_data, h_len). The raw lines
 * give sip_msg_header() its values and let responses repeat the request's Via,
 * From, To, Call-ID and CSeq values exactly as they were received.
 *
 * Two worst cases of this sofia-sip version are bounded before it sees the text:
 * it re-checks the whole header chain on every header it adds (quadratic in the
 * number of header lines), and it parses comma-separated values (Via, Contact,
 * Route, ...) by recursion, one stack frame per item. A message with more than
 * SIP_MSG_MAX_LINES header lines, or a line with more than SIP_MSG_MAX_COMMAS
 * commas, is refused unparsed.
 */
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* sofia-sip names its method enum sip_method_t and defines SIP_METHOD_<NAME>
 * macros; both clash with sip_msg.h. Its enum is renamed for this file and the
 * macros are dropped before sip_msg.h is included. */
#define sip_method_t sofia_sip_method_t
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_alloc.h>
#undef sip_method_t
#undef SIP_METHOD_INVITE
#undef SIP_METHOD_ACK
#undef SIP_METHOD_CANCEL
#undef SIP_METHOD_BYE
#undef SIP_METHOD_OPTIONS
#undef SIP_METHOD_REGISTER
#undef SIP_METHOD_INFO
#undef SIP_METHOD_PRACK
#undef SIP_METHOD_UPDATE
#undef SIP_METHOD_MESSAGE
#undef SIP_METHOD_SUBSCRIBE
#undef SIP_METHOD_NOTIFY
#undef SIP_METHOD_REFER
#undef SIP_METHOD_PUBLISH

#include "sip_msg.h"

#ifndef CONFNODE_VERSION
#define CONFNODE_VERSION "0.0.0"
#endif

/* Our method numbers are sofia-sip's, so a parsed method converts by value. */
_Static_assert(SIP_METHOD_INVITE == (int)sip_method_invite, "method numbering");
_Static_assert(SIP_METHOD_ACK == (int)sip_method_ack, "method numbering");
_Static_assert(SIP_METHOD_CANCEL == (int)sip_method_cancel, "method numbering");
_Static_assert(SIP_METHOD_BYE == (int)sip_method_bye, "method numbering");
_Static_assert(SIP_METHOD_OPTIONS == (int)sip_method_options, "method numbering");
_Static_assert(SIP_METHOD_REGISTER == (int)sip_method_register, "method numbering");
_Static_assert(SIP_METHOD_INFO == (int)sip_method_info, "method numbering");
_Static_assert(SIP_METHOD_PRACK == (int)sip_method_prack, "method numbering");
_Static_assert(SIP_METHOD_UPDATE == (int)sip_method_update, "method numbering");
_Static_assert(SIP_METHOD_MESSAGE == (int)sip_method_message, "method numbering");
_Static_assert(SIP_METHOD_SUBSCRIBE == (int)sip_method_subscribe, "method numbering");
_Static_assert(SIP_METHOD_NOTIFY == (int)sip_method_notify, "method numbering");
_Static_assert(SIP_METHOD_REFER == (int)sip_method_refer, "method numbering");
_Static_assert(SIP_METHOD_PUBLISH == (int)sip_method_publish, "method numbering");

enum {
    SIP_MSG_MAX_LINES = 256,     /* header lines (folded continuations count) */
    SIP_MSG_MAX_COMMAS = 128,    /* commas on one header line */
    SIP_MSG_MAX_SIZE = 16 << 20, /* sofia-sip sizes are int */
};

/* The headers every request and response carries (RFC 3261 §8.1.1), in the order
 * a missing one is reported. */
enum {
    H_VIA = 1u << 0,
    H_FROM = 1u << 1,
    H_TO = 1u << 2,
    H_CALL_ID = 1u << 3,
    H_CSEQ = 1u << 4,
};

struct sip_msg {
    msg_t *msg; /* owns this struct and everything the views point into */
    sip_t *sip;
    bool can_respond;
    uint16_t src_port;
    char src_ip[INET6_ADDRSTRLEN]; /* "" when unknown (sip_msg_set_source) */
};

static const sip_str_t NO_STR = {NULL, 0};

static __attribute__((format(printf, 3, 4))) void set_why(char *why, size_t whylen, const char *fmt,
                                                          ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static bool is_lws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static sip_str_t str_of(const char *s)
{
    return s ? (sip_str_t){s, strlen(s)} : NO_STR;
}

/* Scans the header section (up to the first empty line) for the shapes sofia-sip
 * handles badly; see DESIGN. Line ends are CRLF, LF or a lone CR, as sofia-sip
 * reads them. Returns NULL when the text is within bounds, else the reason. */
static const char *check_shape(const char *b, size_t len)
{
    size_t i = 0;
    while (i < len && is_lws(b[i])) /* sofia-sip skips these before the start line */
        i++;
    unsigned lines = 0, commas = 0;
    bool empty = true;
    while (i < len) {
        char c = b[i++];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && i < len && b[i] == '\n')
                i++;
            if (empty)
                break;
            if (++lines > SIP_MSG_MAX_LINES)
                return "Too many header lines";
            commas = 0;
            empty = true;
        } else {
            empty = false;
            if (c == ',' && ++commas > SIP_MSG_MAX_COMMAS)
                return "Too many comma-separated values in a header";
        }
    }
    return NULL;
}

/* msg_make() without its failure modes: it asserts (aborts) when the buffer
 * cannot be allocated. Returns NULL only when out of memory; parse problems are
 * left in the sip_t's flags and error list. */
static msg_t *parse_text(const char *buf, size_t len)
{
    msg_t *msg = msg_create(sip_default_mclass(), MSG_DO_EXTRACT_COPY);
    if (!msg)
        return NULL;
    /* text, the private copy of each header and the header structs: one block */
    su_home_preload(msg_home(msg), 1, (isize_t)(2 * len + 4096));
    msg_iovec_t iov[1];
    if (msg_recv_iovec(msg, iov, 1, (usize_t)len, 1) != 1 || iov[0].mv_len != len) {
        msg_destroy(msg);
        return NULL;
    }
    memcpy(iov[0].mv_base, buf, len);
    msg_recv_commit(msg, (usize_t)len, 1);
    msg_extract(msg);
    return msg;
}

/* The name sofia-sip gives an entry of the error list: the header that failed to
 * parse, or, for a surplus single header, its own class. NULL for a line that is
 * no header at all. */
static const char *error_name(const msg_header_t *h, bool *duplicate)
{
    *duplicate = h->sh_class != sip_error_class;
    return *duplicate ? h->sh_class->hc_name : h->sh_error->er_name;
}

static unsigned mandatory_bit(const char *name)
{
    if (!name)
        return 0;
    if (strcmp(name, sip_via_class->hc_name) == 0)
        return H_VIA;
    if (strcmp(name, sip_from_class->hc_name) == 0)
        return H_FROM;
    if (strcmp(name, sip_to_class->hc_name) == 0)
        return H_TO;
    if (strcmp(name, sip_call_id_class->hc_name) == 0)
        return H_CALL_ID;
    if (strcmp(name, sip_cseq_class->hc_name) == 0)
        return H_CSEQ;
    return 0;
}

/* Walks sofia-sip's list of headers that failed to parse (or came twice where
 * one is allowed). Like sofia-sip's own transaction layer, headers a user agent
 * does not depend on (Date, User-Agent, Route, ...) may be broken; those it does
 * depend on, and lines that are no header at all, make the message malformed.
 * Returns the mandatory headers that failed; the first problem goes to `why`. */
static unsigned check_errors(const msg_t *msg, const sip_t *sip, bool *bad, char *why,
                             size_t whylen)
{
    const msg_mclass_t *mc = msg_mclass(msg);
    unsigned mask =
        (unsigned)~(sip_mask_proxy | sip_mask_registrar | sip_mask_pref | sip_mask_privacy |
                    (sip->sip_request ? sip_mask_response : sip_mask_request));
    unsigned failed = 0;
    for (const msg_header_t *h = (const msg_header_t *)sip->sip_error; h; h = h->sh_next) {
        bool dup;
        const char *name = error_name(h, &dup);
        unsigned bit = mandatory_bit(name);
        if (name && !bit) {
            const msg_href_t *hr = msg_find_hclass(mc, name, NULL);
            bool essential =
                hr && ((hr->hr_flags & mask) || hr->hr_class == sip_max_forwards_class);
            if (!essential)
                continue;
        }
        if (!dup)
            failed |= bit;
        if (*bad)
            continue;
        *bad = true;
        if (!name)
            set_why(why, whylen, "Malformed header line");
        else if (dup)
            set_why(why, whylen, "Multiple %s headers", name);
        else
            set_why(why, whylen, "Bad %s header", name);
    }
    return failed;
}

static const char *first_missing(const sip_t *sip)
{
    if (!sip->sip_via)
        return "Via";
    if (!sip->sip_from)
        return "From";
    if (!sip->sip_to)
        return "To";
    if (!sip->sip_call_id)
        return "Call-ID";
    if (!sip->sip_cseq)
        return "CSeq";
    return NULL;
}

static bool has_raw(const void *h)
{
    const msg_common_t *c = h;
    return c && c->h_data && c->h_len > 0;
}

/* No whitespace or control character, as in the "word" of RFC 3261 §25.1. */
static bool is_word(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
            return false;
    return true;
}

static bool start_line_is_status(const char *buf, size_t len)
{
    size_t i = 0;
    while (i < len && is_lws(buf[i]))
        i++;
    return len - i >= 4 && strncasecmp(buf + i, "SIP/", 4) == 0;
}

sip_msg_status_t sip_msg_parse(const char *buf, size_t len, sip_msg_t **out, char *why,
                               size_t whylen)
{
    sip_msg_status_t st = SIP_MSG_OK;
    msg_t *msg = NULL;
    sip_msg_t *m = NULL;

    if (why && whylen)
        why[0] = '\0';
    if (!out)
        return SIP_MSG_ERR_SYNTAX;
    *out = NULL;

    size_t lead = 0;
    while (buf && lead < len && is_lws(buf[lead]))
        lead++;
    if (!buf || lead == len) {
        set_why(why, whylen, "Empty message");
        return SIP_MSG_ERR_SYNTAX;
    }
    if (len > SIP_MSG_MAX_SIZE) {
        set_why(why, whylen, "Message too large");
        return SIP_MSG_ERR_SYNTAX;
    }
    const char *shape = check_shape(buf, len);
    if (shape) {
        set_why(why, whylen, "%s", shape);
        return SIP_MSG_ERR_SYNTAX;
    }

    msg = parse_text(buf, len);
    if (!msg) {
        set_why(why, whylen, "Out of memory");
        return SIP_MSG_ERR_NOMEM;
    }
    sip_t *sip = sip_object(msg);
    if (!sip || (!sip->sip_request && !sip->sip_status)) {
        set_why(why, whylen,
                start_line_is_status(buf, len) ? "Malformed status line"
                                               : "Malformed request line");
        st = SIP_MSG_ERR_SYNTAX;
        goto out;
    }
    if (sip->sip_status && (sip->sip_status->st_status < 100 || sip->sip_status->st_status > 699)) {
        set_why(why, whylen, "Malformed status line"); /* sofia-sip takes any number */
        st = SIP_MSG_ERR_SYNTAX;
        goto out;
    }
    m = su_zalloc(msg_home(msg), sizeof *m);
    if (!m) {
        set_why(why, whylen, "Out of memory");
        st = SIP_MSG_ERR_NOMEM;
        goto out;
    }
    m->msg = msg;
    m->sip = sip;

    /* The first problem found is the one reported; can_respond is worked out
     * independently of it. */
    const char *version =
        sip->sip_request ? sip->sip_request->rq_version : sip->sip_status->st_version;
    if (version != sip_version_2_0) { /* sofia-sip interns "SIP/2.0" */
        set_why(why, whylen, "Unsupported SIP version");
        st = SIP_MSG_ERR_INVALID;
    }
    if (st == SIP_MSG_OK && !msg_is_complete(msg)) {
        /* sofia-sip stops at a NUL in the header section and waits for more */
        bool nul = memchr(buf, '\0', len) != NULL;
        set_why(why, whylen, nul ? "NUL byte in message headers" : "Truncated message");
        st = SIP_MSG_ERR_SYNTAX;
    }
    if (st == SIP_MSG_OK && !sip->sip_separator) {
        /* a cut-off message usually ends in a broken header: report the cut */
        set_why(why, whylen, "Truncated message (no empty line after the headers)");
        st = SIP_MSG_ERR_SYNTAX;
    }
    if (st == SIP_MSG_OK && (sip->sip_flags & MSG_FLG_TRUNC)) {
        set_why(why, whylen, "Content-Length larger than body");
        st = SIP_MSG_ERR_INVALID;
    }
    bool bad = st != SIP_MSG_OK;
    unsigned failed = check_errors(msg, sip, &bad, why, whylen);
    if (st == SIP_MSG_OK && bad)
        st = SIP_MSG_ERR_SYNTAX;
    /* Call-ID is compared byte for byte (RFC 3261 §20.8) and copied into responses
     * unfolded, so it may hold no whitespace; sofia-sip takes the value whole. */
    if (st == SIP_MSG_OK && sip->sip_call_id && !is_word(sip->sip_call_id->i_id)) {
        set_why(why, whylen, "Bad Call-ID header");
        st = SIP_MSG_ERR_SYNTAX;
    }
    const char *missing = first_missing(sip);
    if (st == SIP_MSG_OK && missing) {
        set_why(why, whylen, "Missing %s header", missing);
        st = SIP_MSG_ERR_MISSING;
    }
    if (st == SIP_MSG_OK && sip->sip_cseq->cs_seq >= (1u << 31)) {
        set_why(why, whylen, "Bad CSeq header"); /* RFC 3261 §8.1.1.5: below 2**31 */
        st = SIP_MSG_ERR_INVALID;
    }
    if (st == SIP_MSG_OK && sip->sip_request) {
        const sip_request_t *rq = sip->sip_request;
        const sip_cseq_t *cs = sip->sip_cseq;
        if (rq->rq_method != cs->cs_method ||
            (rq->rq_method == sip_method_unknown &&
             strcmp(rq->rq_method_name, cs->cs_method_name) != 0)) {
            set_why(why, whylen, "CSeq method does not match request method");
            st = SIP_MSG_ERR_INVALID;
        }
    }

    /* A response goes back along the Via list, so that must be whole; the other
     * mandatory headers are copied when present (RFC 4475 §3.3.1: a request
     * without them still deserves a 400). */
    m->can_respond = sip->sip_request && sip->sip_request->rq_method != sip_method_ack &&
                     !(failed & H_VIA) && has_raw(sip->sip_via);
    if (st == SIP_MSG_OK || m->can_respond) {
        *out = m;
        msg = NULL;
    }
out:
    msg_destroy(msg); /* accepts NULL */
    return st;
}

void sip_msg_free(sip_msg_t *m)
{
    if (m)
        msg_destroy(m->msg);
}

bool sip_msg_is_request(const sip_msg_t *m)
{
    return m && m->sip->sip_request;
}

bool sip_msg_can_respond(const sip_msg_t *m)
{
    return m && m->can_respond;
}

static sip_method_t method_of(sofia_sip_method_t v)
{
    return v >= sip_method_invite && v <= sip_method_publish ? (sip_method_t)v : SIP_METHOD_UNKNOWN;
}

sip_method_t sip_msg_method(const sip_msg_t *m)
{
    return m && m->sip->sip_request ? method_of(m->sip->sip_request->rq_method)
                                    : SIP_METHOD_UNKNOWN;
}

sip_str_t sip_msg_method_name(const sip_msg_t *m)
{
    return m && m->sip->sip_request ? str_of(m->sip->sip_request->rq_method_name) : NO_STR;
}

sip_str_t sip_msg_ruri_user(const sip_msg_t *m)
{
    return m && m->sip->sip_request ? str_of(m->sip->sip_request->rq_url->url_user) : NO_STR;
}

sip_str_t sip_msg_ruri_host(const sip_msg_t *m)
{
    return m && m->sip->sip_request ? str_of(m->sip->sip_request->rq_url->url_host) : NO_STR;
}

int sip_msg_status(const sip_msg_t *m)
{
    return m && m->sip->sip_status ? m->sip->sip_status->st_status : 0;
}

sip_str_t sip_msg_call_id(const sip_msg_t *m)
{
    return m && m->sip->sip_call_id ? str_of(m->sip->sip_call_id->i_id) : NO_STR;
}

sip_str_t sip_msg_from_tag(const sip_msg_t *m)
{
    return m && m->sip->sip_from ? str_of(m->sip->sip_from->a_tag) : NO_STR;
}

sip_str_t sip_msg_to_tag(const sip_msg_t *m)
{
    return m && m->sip->sip_to ? str_of(m->sip->sip_to->a_tag) : NO_STR;
}

sip_str_t sip_msg_from_user(const sip_msg_t *m)
{
    return m && m->sip->sip_from ? str_of(m->sip->sip_from->a_url->url_user) : NO_STR;
}

sip_str_t sip_msg_from_host(const sip_msg_t *m)
{
    return m && m->sip->sip_from ? str_of(m->sip->sip_from->a_url->url_host) : NO_STR;
}

sip_str_t sip_msg_via_branch(const sip_msg_t *m)
{
    return m && m->sip->sip_via ? str_of(m->sip->sip_via->v_branch) : NO_STR;
}

sip_str_t sip_msg_via_host(const sip_msg_t *m)
{
    return m && m->sip->sip_via ? str_of(m->sip->sip_via->v_host) : NO_STR;
}

sip_str_t sip_msg_via_port(const sip_msg_t *m)
{
    return m && m->sip->sip_via ? str_of(m->sip->sip_via->v_port) : NO_STR;
}

uint32_t sip_msg_cseq(const sip_msg_t *m)
{
    return m && m->sip->sip_cseq ? m->sip->sip_cseq->cs_seq : 0;
}

sip_method_t sip_msg_cseq_method(const sip_msg_t *m)
{
    return m && m->sip->sip_cseq ? method_of(m->sip->sip_cseq->cs_method) : SIP_METHOD_UNKNOWN;
}

int sip_msg_max_forwards(const sip_msg_t *m)
{
    if (!m || !m->sip->sip_max_forwards)
        return -1;
    unsigned long n = m->sip->sip_max_forwards->mf_count;
    return n > INT_MAX ? INT_MAX : (int)n;
}

sip_str_t sip_msg_content_type(const sip_msg_t *m)
{
    return m && m->sip->sip_content_type ? str_of(m->sip->sip_content_type->c_type) : NO_STR;
}

sip_str_t sip_msg_body(const sip_msg_t *m)
{
    if (!m || !m->sip->sip_payload || !m->sip->sip_payload->pl_data)
        return NO_STR;
    return (sip_str_t){m->sip->sip_payload->pl_data, m->sip->sip_payload->pl_len};
}

/* The value of a header from its raw line "Name: value CRLF": what follows the
 * colon, without the whitespace around it. Folded lines keep their inner line
 * breaks. */
static sip_str_t raw_value(const msg_header_t *h)
{
    if (!h || !h->sh_data || h->sh_len == 0)
        return NO_STR;
    const char *p = h->sh_data, *e = p + h->sh_len;
    const char *colon = memchr(p, ':', h->sh_len);
    if (!colon)
        return NO_STR;
    const char *s = colon + 1;
    while (s < e && is_lws(*s))
        s++;
    while (e > s && is_lws(e[-1]))
        e--;
    return (sip_str_t){s, (size_t)(e - s)};
}

static bool is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-.!%*_+`'~", c));
}

static bool is_token(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++)
        if (!is_token_char((unsigned char)*s))
            return false;
    return true;
}

sip_str_t sip_msg_header(const sip_msg_t *m, const char *name)
{
    if (!m || !is_token(name))
        return NO_STR;
    const msg_mclass_t *mc = msg_mclass(m->msg);
    const msg_href_t *hr = msg_find_hclass(mc, name, NULL);
    if (!hr || hr == mc->mc_error)
        return NO_STR;
    if (hr == mc->mc_unknown) {
        for (const sip_unknown_t *u = m->sip->sip_unknown; u; u = u->un_next)
            if (u->un_name && strcasecmp(u->un_name, name) == 0)
                return raw_value((const msg_header_t *)u);
        return NO_STR;
    }
    if (!hr->hr_class->hc_name || !hr->hr_class->hc_name[0])
        return NO_STR;
    msg_header_t **hh = msg_hclass_offset(mc, (const msg_pub_t *)m->sip, hr->hr_class);
    return hh ? raw_value(*hh) : NO_STR;
}

/* Response printing: a bounded cursor that remembers whether anything failed to
 * fit, so the builder checks once at the end. */
struct out {
    char *p, *end;
    bool ok;
};

static void put(struct out *o, const void *s, size_t n)
{
    if (!o->ok || (size_t)(o->end - o->p) < n) {
        o->ok = false;
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}

static void put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_uint(struct out *o, unsigned long v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, d + i, sizeof d - i);
}

/* A raw header value on one line: folding (a line break followed by whitespace)
 * is unfolded by dropping the line break. */
static void put_value(struct out *o, sip_str_t v)
{
    if (!memchr(v.s, '\n', v.len) && !memchr(v.s, '\r', v.len)) {
        put(o, v.s, v.len);
        return;
    }
    for (size_t i = 0; i < v.len; i++)
        if (v.s[i] != '\r' && v.s[i] != '\n')
            put(o, v.s + i, 1);
}

static void put_line(struct out *o, const msg_header_t *h);

/* "Name: value" from a request header's raw text; nothing when it is absent. */
static void put_header(struct out *o, const char *name, const void *h)
{
    if (!has_raw(h))
        return;
    put_str(o, name);
    put(o, ": ", 2);
    put_value(o, raw_value(h));
    put(o, "\r\n", 2);
}

void sip_msg_set_source(sip_msg_t *m, const char *ip, uint16_t port)
{
    if (!m || !ip || !*ip || strlen(ip) >= sizeof m->src_ip)
        return;
    strcpy(m->src_ip, ip);
    m->src_port = port;
}

/* Where the first value of a Via line ends: its first comma outside a quoted
 * string, or the end. */
static size_t first_value_len(sip_str_t v)
{
    bool quoted = false;
    for (size_t i = 0; i < v.len; i++) {
        if (v.s[i] == '"' && (i == 0 || v.s[i - 1] != '\\'))
            quoted = !quoted;
        else if (v.s[i] == ',' && !quoted)
            return i;
    }
    return v.len;
}

/* The offset and length of an "rport" parameter without a value (";rport" with the
 * whitespace before it) in the Via value v, or false. */
static bool find_bare_rport(sip_str_t v, size_t *off, size_t *len)
{
    for (size_t i = 0; i < v.len; i++) {
        if (v.s[i] != ';')
            continue;
        size_t k = i + 1;
        while (k < v.len && is_lws(v.s[k]))
            k++;
        if (v.len - k < 5 || strncasecmp(v.s + k, "rport", 5) != 0)
            continue;
        size_t e = k + 5;
        while (e < v.len && is_lws(v.s[e]))
            e++;
        if (e == v.len || v.s[e] == ';') {
            *off = i;
            *len = (k + 5) - i;
            return true;
        }
    }
    return false;
}

/* The top Via line, its first value amended with received/rport (see
 * sip_msg_set_source()). */
static void put_top_via(struct out *o, const sip_msg_t *m, const msg_header_t *h)
{
    const sip_via_t *v = (const sip_via_t *)h;
    sip_str_t raw = raw_value(h);
    if (!m->src_ip[0] || v->v_received || !raw.s) {
        put_header(o, "Via", h);
        return;
    }
    size_t first = first_value_len(raw);
    while (first > 0 && is_lws(raw.s[first - 1]))
        first--;
    sip_str_t val = {raw.s, first};
    size_t roff = 0, rlen = 0;
    bool bare_rport = v->v_rport && !v->v_rport[0] && find_bare_rport(val, &roff, &rlen);
    const char *host = v->v_host ? v->v_host : "";
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* IPv6 reference */
        host++;
        hl -= 2;
    }
    bool same = hl == strlen(m->src_ip) && strncasecmp(host, m->src_ip, hl) == 0;
    if (same && !bare_rport) {
        put_header(o, "Via", h);
        return;
    }
    put_str(o, "Via: ");
    if (bare_rport) {
        put_value(o, (sip_str_t){val.s, roff});
        put_value(o, (sip_str_t){val.s + roff + rlen, val.len - roff - rlen});
    } else {
        put_value(o, val);
    }
    put(o, ";received=", 10);
    put_str(o, m->src_ip);
    if (bare_rport) {
        put(o, ";rport=", 7);
        put_uint(o, m->src_port);
    }
    put_value(o, (sip_str_t){raw.s + first, raw.len - first});
    put(o, "\r\n", 2);
}

ssize_t sip_msg_build_response(const sip_msg_t *req, int status, const char *phrase,
                               const char *to_tag, const char *extra_headers, const char *body_type,
                               const char *body, size_t body_len, char *out, size_t outlen)
{
    if (!sip_msg_can_respond(req) || !out || status < 100 || status > 699)
        return -1;
    if (!phrase)
        phrase = sip_msg_phrase(status);
    if (strpbrk(phrase, "\r\n") || (body_type && strpbrk(body_type, "\r\n")) ||
        (body_len > 0 && !body))
        return -1;
    const sip_t *sip = req->sip;
    bool add_tag = to_tag && sip->sip_to && !sip->sip_to->a_tag;
    if (add_tag && !is_token(to_tag))
        return -1;

    struct out o = {out, out + outlen, true};
    put(&o, "SIP/2.0 ", 8);
    put_uint(&o, (unsigned long)status);
    put(&o, " ", 1);
    put_str(&o, phrase);
    put(&o, "\r\n", 2);
    /* one header object per Via value; the 2nd and later values of a
     * comma-separated line have no raw text of their own and print with the first */
    bool top = true;
    for (const sip_via_t *v = sip->sip_via; v; v = v->v_next) {
        if (!has_raw(v))
            continue;
        if (top)
            put_top_via(&o, req, (const msg_header_t *)v);
        else
            put_header(&o, "Via", v);
        top = false;
    }
    put_header(&o, "From", sip->sip_from);
    if (has_raw(sip->sip_to)) {
        put_str(&o, "To: ");
        put_value(&o, raw_value((const msg_header_t *)sip->sip_to));
        if (add_tag) {
            put(&o, ";tag=", 5);
            put_str(&o, to_tag);
        }
        put(&o, "\r\n", 2);
    }
    put_header(&o, "Call-ID", sip->sip_call_id);
    put_header(&o, "CSeq", sip->sip_cseq);
    /* a response that may create a dialog carries the route set (RFC 3261 §12.1.1) */
    if (status > 100 && status < 300 && sip->sip_to && !sip->sip_to->a_tag) {
        for (const msg_header_t *h = *msg_chain_head(req->msg); h; h = h->sh_succ)
            if (h->sh_class == sip_record_route_class && h->sh_len > 0)
                put_line(&o, h);
    }
    if (extra_headers)
        put_str(&o, extra_headers);
    put_str(&o, "Server: confnode/" CONFNODE_VERSION "\r\n");
    if (body_type) {
        put_str(&o, "Content-Type: ");
        put_str(&o, body_type);
        put(&o, "\r\n", 2);
    }
    put_str(&o, "Content-Length: ");
    put_uint(&o, (unsigned long)body_len);
    put(&o, "\r\n\r\n", 4);
    if (body_len)
        put(&o, body, body_len);
    if (!o.ok || o.p - out > (ptrdiff_t)SSIZE_MAX)
        return -1;
    return o.p - out;
}

const char *sip_msg_phrase(int status)
{
    /* sofia-sip's table follows RFC 3261 §21 and its extensions, except for two
     * phrases it takes from HTTP */
    if (status == 500)
        return "Server Internal Error";
    if (status == 504)
        return "Server Time-out";
    const char *p = sip_status_phrase(status);
    if (p && *p)
        return p;
    switch (status / 100) { /* codes without a phrase of their own: the class */
    case 1:
        return "Provisional";
    case 2:
        return "Success";
    case 3:
        return "Redirection";
    case 4:
        return "Client Error";
    case 5:
        return "Server Error";
    case 6:
        return "Global Failure";
    default:
        return "Unknown";
    }
}

/* ---- proxying: URIs, Via values and forwarding builders ---- */

/* The value of uri-parameter `name` in sofia-sip's url_params text
 * ("transport=tls;lr;maddr=192.0.2.1"); *present tells a bare name from none. */
static sip_str_t uri_param(const char *params, const char *name, bool *present)
{
    *present = false;
    if (!params)
        return NO_STR;
    size_t nl = strlen(name);
    const char *p = params;
    while (*p) {
        const char *end = p + strcspn(p, ";");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *ne = eq ? eq : end;
        if ((size_t)(ne - p) == nl && strncasecmp(p, name, nl) == 0) {
            *present = true;
            return eq ? (sip_str_t){eq + 1, (size_t)(end - eq - 1)} : NO_STR;
        }
        p = *end ? end + 1 : end;
    }
    return NO_STR;
}

static int uri_info(const url_t *u, sip_uri_t *out)
{
    memset(out, 0, sizeof *out);
    if (!u || (u->url_type != url_sip && u->url_type != url_sips) || !u->url_host)
        return -1;
    bool present;
    out->sips = u->url_type == url_sips;
    out->user = str_of(u->url_user);
    out->host = str_of(u->url_host);
    out->port = str_of(u->url_port);
    out->transport = uri_param(u->url_params, "transport", &present);
    out->maddr = uri_param(u->url_params, "maddr", &present);
    uri_param(u->url_params, "lr", &present);
    out->lr = present;
    return 0;
}

int sip_msg_ruri(const sip_msg_t *m, sip_uri_t *out)
{
    if (!out)
        return -1;
    if (!m || !m->sip->sip_request) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return uri_info(m->sip->sip_request->rq_url, out);
}

sip_str_t sip_msg_ruri_text(const sip_msg_t *m)
{
    if (!m || !m->sip->sip_request || !has_raw(m->sip->sip_request))
        return NO_STR;
    const msg_common_t *c = m->sip->sip_request->rq_common;
    const char *s = c->h_data, *e = s + c->h_len;
    while (e > s && is_lws(e[-1]))
        e--;
    const char *sp1 = memchr(s, ' ', (size_t)(e - s));
    const char *ver = e;
    while (ver > s && ver[-1] != ' ')
        ver--;
    if (!sp1 || ver <= sp1 + 1)
        return NO_STR;
    const char *us = sp1 + 1, *ue = ver - 1;
    while (us < ue && *us == ' ')
        us++;
    while (ue > us && ue[-1] == ' ')
        ue--;
    return ue > us ? (sip_str_t){us, (size_t)(ue - us)} : NO_STR;
}

size_t sip_msg_route_count(const sip_msg_t *m)
{
    size_t n = 0;
    for (const sip_route_t *r = m ? m->sip->sip_route : NULL; r; r = r->r_next)
        n++;
    return n;
}

int sip_msg_route(const sip_msg_t *m, size_t i, sip_uri_t *out)
{
    const sip_route_t *r = m ? m->sip->sip_route : NULL;
    while (r && i--)
        r = r->r_next;
    if (!out)
        return -1;
    if (!r) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return uri_info(r->r_url, out);
}

int sip_msg_via(const sip_msg_t *m, size_t i, sip_via_info_t *out)
{
    const sip_via_t *v = m ? m->sip->sip_via : NULL;
    while (v && i--)
        v = v->v_next;
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!v)
        return -1;
    const char *proto = v->v_protocol ? v->v_protocol : "";
    const char *slash = strrchr(proto, '/');
    out->transport = str_of(slash ? slash + 1 : proto);
    out->host = str_of(v->v_host);
    out->port = str_of(v->v_port);
    out->branch = str_of(v->v_branch);
    out->received = str_of(v->v_received);
    out->rport = str_of(v->v_rport);
    out->maddr = str_of(v->v_maddr);
    return 0;
}

size_t sip_msg_wire_len(const sip_msg_t *m)
{
    size_t n = 0;
    if (!m)
        return 0;
    for (const msg_header_t *h = *msg_chain_head(m->msg); h; h = h->sh_succ)
        n += h->sh_len;
    return n;
}

static bool has_crlf(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

/* A header object's raw line, with its line end made CRLF (inner folding kept). */
static void put_line(struct out *o, const msg_header_t *h)
{
    const char *s = h->sh_data;
    size_t n = h->sh_len;
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
        n--;
    put(o, s, n);
    put(o, "\r\n", 2);
}

/* "Name: v, v..." for the `count` header objects of one line starting at `first`,
 * leaving out the first `skip` of them; nothing when none is left. */
static void put_values(struct out *o, const char *name, const msg_header_t *first, size_t count,
                       size_t skip)
{
    if (skip >= count)
        return;
    put_str(o, name);
    put(o, ": ", 2);
    const msg_header_t *h = first;
    for (size_t i = 0; i < count && h; i++, h = h->sh_succ) {
        if (i < skip)
            continue;
        if (i > skip)
            put(o, ", ", 2);
        if (!o->ok)
            return;
        size_t room = (size_t)(o->end - o->p);
        issize_t n = msg_header_field_e(o->p, (isize_t)room, h, 0);
        if (n < 0 || (size_t)n >= room) {
            o->ok = false;
            return;
        }
        o->p += n;
    }
    put(o, "\r\n", 2);
}

/* The header objects that make up the line starting at h (values after the first
 * of a comma-separated line have no raw text of their own). */
static size_t line_values(const msg_header_t *h)
{
    size_t n = 1;
    for (const msg_header_t *x = h->sh_succ; x && x->sh_class == h->sh_class && x->sh_len == 0;
         x = x->sh_succ)
        n++;
    return n;
}

ssize_t sip_msg_build_forward(const sip_msg_t *m, const struct sip_msg_fwd *f, char *out,
                              size_t outlen)
{
    if (!m || !f || !out || has_crlf(f->ruri) || has_crlf(f->via) || has_crlf(f->record_route))
        return -1;
    const sip_t *sip = m->sip;
    bool req = sip->sip_request != NULL;
    const msg_header_t *start =
        req ? (const msg_header_t *)sip->sip_request : (const msg_header_t *)sip->sip_status;
    if (!start || !has_raw(start))
        return -1;
    struct out o = {out, out + outlen, true};
    if (req && f->ruri) {
        put_str(&o, sip->sip_request->rq_method_name);
        put(&o, " ", 1);
        put_str(&o, f->ruri);
        put_str(&o, " SIP/2.0\r\n");
    } else {
        put_line(&o, start);
    }
    if (req && f->via) {
        put_str(&o, "Via: ");
        put_str(&o, f->via);
        put(&o, "\r\n", 2);
    }
    if (req && f->record_route) {
        put_str(&o, "Record-Route: ");
        put_str(&o, f->record_route);
        put(&o, "\r\n", 2);
    }
    bool new_mf = req && f->max_forwards >= 0;
    if (new_mf && !sip->sip_max_forwards) {
        put_str(&o, "Max-Forwards: ");
        put_uint(&o, (unsigned long)f->max_forwards);
        put(&o, "\r\n", 2);
    }
    size_t pop_via = !req && f->pop_via ? 1 : 0, pop_route = req ? f->pop_routes : 0;
    size_t via_i = 0, route_i = 0;
    for (const msg_header_t *h = *msg_chain_head(m->msg); h && o.ok; h = h->sh_succ) {
        const msg_hclass_t *c = h->sh_class;
        if (h == start || c == sip_separator_class || c == sip_payload_class ||
            c == sip_content_length_class || h->sh_len == 0)
            continue;
        if (c == sip_via_class || c == sip_route_class) {
            size_t n = line_values(h);
            size_t *idx = c == sip_via_class ? &via_i : &route_i;
            size_t pop = c == sip_via_class ? pop_via : pop_route;
            size_t skip = *idx >= pop ? 0 : pop - *idx > n ? n : pop - *idx;
            if (skip == 0 && req && c == sip_via_class && *idx == 0)
                put_top_via(&o, m, h); /* the hop it came from, as RFC 3261 §18.2.1 says */
            else if (skip == 0)
                put_line(&o, h);
            else
                put_values(&o, c == sip_via_class ? "Via" : "Route", h, n, skip);
            *idx += n;
            continue;
        }
        if (c == sip_max_forwards_class && new_mf) {
            put_str(&o, "Max-Forwards: ");
            put_uint(&o, (unsigned long)f->max_forwards);
            put(&o, "\r\n", 2);
            continue;
        }
        put_line(&o, h);
    }
    sip_str_t body = sip_msg_body(m);
    put_str(&o, "Content-Length: ");
    put_uint(&o, (unsigned long)body.len);
    put(&o, "\r\n\r\n", 4);
    if (body.len)
        put(&o, body.s, body.len);
    if (!o.ok || o.p - out > (ptrdiff_t)SSIZE_MAX)
        return -1;
    return o.p - out;
}

/* CANCEL and ACK (for a non-2xx response) of a request we sent: one hop, same
 * branch (RFC 3261 §9.1, §17.1.1.3). */
static ssize_t build_hop(const sip_msg_t *req, const sip_msg_t *resp, const char *method, char *out,
                         size_t outlen)
{
    if (!req || !out || !req->sip->sip_request)
        return -1;
    const sip_t *sip = req->sip;
    sip_str_t ruri = sip_msg_ruri_text(req);
    const sip_to_t *to = resp ? resp->sip->sip_to : sip->sip_to;
    if (!ruri.s || !sip->sip_via || !has_raw(sip->sip_from) || !has_raw(to) ||
        !has_raw(sip->sip_call_id) || !sip->sip_cseq)
        return -1;
    struct out o = {out, out + outlen, true};
    put_str(&o, method);
    put(&o, " ", 1);
    put(&o, ruri.s, ruri.len);
    put_str(&o, " SIP/2.0\r\n");
    put_values(&o, "Via", (const msg_header_t *)sip->sip_via, 1, 0);
    for (const msg_header_t *h = *msg_chain_head(req->msg); h; h = h->sh_succ)
        if (h->sh_class == sip_route_class && h->sh_len > 0)
            put_line(&o, h);
    put_header(&o, "From", sip->sip_from);
    put_header(&o, "To", to);
    put_header(&o, "Call-ID", sip->sip_call_id);
    put_str(&o, "CSeq: ");
    put_uint(&o, (unsigned long)sip->sip_cseq->cs_seq);
    put(&o, " ", 1);
    put_str(&o, method);
    put_str(&o, "\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    if (!o.ok || o.p - out > (ptrdiff_t)SSIZE_MAX)
        return -1;
    return o.p - out;
}

ssize_t sip_msg_build_cancel(const sip_msg_t *req, char *out, size_t outlen)
{
    return build_hop(req, NULL, "CANCEL", out, outlen);
}

ssize_t sip_msg_build_ack(const sip_msg_t *req, const sip_msg_t *resp, char *out, size_t outlen)
{
    if (!resp || sip_msg_is_request(resp))
        return -1;
    return build_hop(req, resp, "ACK", out, outlen);
}
