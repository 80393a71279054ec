/* confbench SIP text (see cb_sip.h). */
#include "cb_sip.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

bool cb_str_eq(cb_str_t v, const char *s, bool nocase)
{
    size_t n = strlen(s);
    if (!v.s || v.len != n)
        return false;
    return nocase ? strncasecmp(v.s, s, n) == 0 : memcmp(v.s, s, n) == 0;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static cb_str_t trim(const char *s, const char *e)
{
    while (s < e && is_ws(*s))
        s++;
    while (e > s && is_ws(e[-1]))
        e--;
    return (cb_str_t){s, (size_t)(e - s)};
}

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++) {
        p = memchr(p, '\r', (size_t)(end - p));
        if (!p || p + 1 >= end)
            return NULL;
        if (p[1] == '\n')
            return p;
    }
    return NULL;
}

/* Value of parameter `name` in a header value, looking only after the URI's closing
 * '>' when there is one, and only up to the first ',' after it (the first item). */
static cb_str_t param(cb_str_t v, const char *name)
{
    cb_str_t none = {NULL, 0};
    if (!v.s)
        return none;
    const char *p = v.s, *end = v.s + v.len;
    const char *lt = memchr(p, '<', v.len);
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        if (!gt)
            return none;
        p = gt + 1;
    }
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma)
        end = comma;
    size_t nl = strlen(name);
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi)
            break;
        p = semi + 1;
        while (p < end && is_ws(*p))
            p++;
        if ((size_t)(end - p) > nl && strncasecmp(p, name, nl) == 0) {
            const char *q = p + nl;
            while (q < end && is_ws(*q))
                q++;
            if (q < end && *q == '=') {
                q++;
                while (q < end && is_ws(*q))
                    q++;
                const char *ve = q;
                while (ve < end && *ve != ';' && !is_ws(*ve))
                    ve++;
                return (cb_str_t){q, (size_t)(ve - q)};
            }
        }
    }
    return none;
}

static cb_str_t first_uri(cb_str_t v)
{
    cb_str_t none = {NULL, 0};
    if (!v.s)
        return none;
    const char *end = v.s + v.len;
    const char *lt = memchr(v.s, '<', v.len);
    if (lt) {
        const char *gt = memchr(lt, '>', (size_t)(end - lt));
        return gt ? (cb_str_t){lt + 1, (size_t)(gt - lt - 1)} : none;
    }
    const char *e = v.s;
    while (e < end && *e != ';' && *e != ',' && !is_ws(*e))
        e++;
    return (cb_str_t){v.s, (size_t)(e - v.s)};
}

static bool name_is(const char *n, size_t nl, const char *full, char compact)
{
    if (nl == 1 && compact && (n[0] | 0x20) == compact)
        return true;
    return nl == strlen(full) && strncasecmp(n, full, nl) == 0;
}

static int parse_start(const char *p, const char *eol, cb_sip_msg_t *m)
{
    size_t n = (size_t)(eol - p);
    if (n >= 11 && memcmp(p, "SIP/2.0 ", 8) == 0) {
        if (p[8] < '1' || p[8] > '6' || p[9] < '0' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
            (n > 11 && p[11] != ' '))
            return -1;
        m->status = (p[8] - '0') * 100 + (p[9] - '0') * 10 + (p[10] - '0');
        return 0;
    }
    /* METHOD SP Request-URI SP SIP/2.0 */
    const char *sp1 = memchr(p, ' ', n);
    if (!sp1 || sp1 == p)
        return -1;
    const char *sp2 = memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1));
    if (!sp2 || sp2 == sp1 + 1 || (size_t)(eol - sp2 - 1) != 7 || memcmp(sp2 + 1, "SIP/2.0", 7))
        return -1;
    m->is_request = true;
    m->method = (cb_str_t){p, (size_t)(sp1 - p)};
    m->ruri = (cb_str_t){sp1 + 1, (size_t)(sp2 - sp1 - 1)};
    return 0;
}

static int parse_cseq(cb_str_t v, cb_sip_msg_t *m)
{
    const char *p = v.s, *end = v.s + v.len;
    uint64_t n = 0;
    const char *d = p;
    while (p < end && *p >= '0' && *p <= '9') {
        n = n * 10 + (uint64_t)(*p - '0');
        if (n > UINT32_MAX)
            return -1;
        p++;
    }
    if (p == d)
        return -1;
    m->cseq = (uint32_t)n;
    m->cseq_method = trim(p, end);
    return m->cseq_method.len ? 0 : -1;
}

static int parse_length(cb_str_t v, long *out)
{
    long n = 0;
    if (!v.len)
        return -1;
    for (size_t i = 0; i < v.len; i++) {
        if (v.s[i] < '0' || v.s[i] > '9')
            return -1;
        n = n * 10 + (v.s[i] - '0');
        if (n > 100000000)
            return -1;
    }
    *out = n;
    return 0;
}

cb_sip_status_t cb_sip_parse(const char *buf, size_t len, cb_sip_msg_t *m)
{
    memset(m, 0, sizeof(*m));
    m->content_length = -1;
    const char *p = buf, *end = buf + len;
    /* Leading CRLFs (keep-alives) before a message are allowed. */
    while (p + 1 < end && p[0] == '\r' && p[1] == '\n')
        p += 2;
    const char *eol = find_crlf(p, end);
    if (!eol)
        return CB_SIP_ERR_START;
    if (parse_start(p, eol, m))
        return CB_SIP_ERR_START;
    p = eol + 2;
    bool have_cseq = false, have_via = false;
    for (;;) {
        eol = find_crlf(p, end);
        if (!eol)
            return CB_SIP_ERR_HEADERS;
        if (eol == p) {
            p += 2;
            break;
        }
        /* Extend over continuation lines. */
        const char *lend = eol;
        while (lend + 2 < end && (lend[2] == ' ' || lend[2] == '\t')) {
            const char *next = find_crlf(lend + 2, end);
            if (!next)
                return CB_SIP_ERR_HEADERS;
            lend = next;
        }
        const char *colon = memchr(p, ':', (size_t)(lend - p));
        if (!colon)
            return CB_SIP_ERR_HEADERS;
        cb_str_t name = trim(p, colon);
        cb_str_t val = trim(colon + 1, lend);
        if (name_is(name.s, name.len, "Call-ID", 'i')) {
            m->call_id = val;
        } else if (name_is(name.s, name.len, "CSeq", 0)) {
            if (parse_cseq(val, m))
                return CB_SIP_ERR_MISSING;
            m->cseq_raw = val;
            have_cseq = true;
        } else if (name_is(name.s, name.len, "Via", 'v')) {
            if (!have_via) {
                const char *comma = memchr(val.s, ',', val.len);
                m->via = comma ? trim(val.s, comma) : val;
                m->branch = param(m->via, "branch");
                have_via = true;
            }
        } else if (name_is(name.s, name.len, "To", 't')) {
            m->to = val;
            m->to_tag = param(val, "tag");
        } else if (name_is(name.s, name.len, "From", 'f')) {
            m->from = val;
            m->from_tag = param(val, "tag");
        } else if (name_is(name.s, name.len, "Contact", 'm')) {
            if (!m->contact_uri.s)
                m->contact_uri = first_uri(val);
        } else if (name_is(name.s, name.len, "Content-Type", 'c')) {
            m->content_type = val;
        } else if (name_is(name.s, name.len, "Content-Length", 'l')) {
            if (parse_length(val, &m->content_length))
                return CB_SIP_ERR_LENGTH;
        }
        p = lend + 2;
    }
    if (!m->call_id.s || !m->call_id.len || !have_cseq || !have_via)
        return CB_SIP_ERR_MISSING;
    size_t rest = (size_t)(end - p);
    if (m->content_length >= 0) {
        if ((size_t)m->content_length > rest)
            return CB_SIP_ERR_LENGTH;
        rest = (size_t)m->content_length;
    }
    m->body = (cb_str_t){rest ? p : NULL, rest};
    return CB_SIP_OK;
}

cb_str_t cb_sip_find_header(const char *buf, size_t len, const char *name, char compact)
{
    const char *p = buf, *end = buf + len;
    const char *eol = find_crlf(p, end); /* skip the start line */
    while (eol) {
        p = eol + 2;
        eol = find_crlf(p, end);
        if (!eol || eol == p)
            break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon)
            continue;
        cb_str_t n = trim(p, colon);
        if (name_is(n.s, n.len, name, compact))
            return trim(colon + 1, eol);
    }
    return (cb_str_t){NULL, 0};
}

/* Splits a header value at the commas between entries (not inside <> or quotes) and
 * appends the trimmed entries to ent[*n..max). Returns 0, or -1 when they do not fit. */
static int split_entries(cb_str_t v, cb_str_t *ent, unsigned *n, unsigned max)
{
    const char *p = v.s, *end = v.s + v.len, *start = p;
    bool in_angle = false, in_quote = false;
    for (; p <= end; p++) {
        if (p < end && *p == '"' && !in_angle)
            in_quote = !in_quote;
        else if (p < end && *p == '<' && !in_quote)
            in_angle = true;
        else if (p < end && *p == '>' && !in_quote)
            in_angle = false;
        if (p < end && (*p != ',' || in_angle || in_quote))
            continue;
        cb_str_t e = trim(start, p);
        if (e.len) {
            if (*n >= max)
                return -1;
            ent[(*n)++] = e;
        }
        start = p + 1;
    }
    return 0;
}

int cb_sip_route_set(const char *buf, size_t len, char *out, size_t cap)
{
    cb_str_t ent[CB_ROUTE_MAX];
    unsigned n = 0;
    if (!out || cap == 0)
        return -1;
    out[0] = 0;
    const char *p = buf, *end = buf + len;
    const char *eol = find_crlf(p, end); /* skip the start line */
    while (eol) {
        p = eol + 2;
        eol = find_crlf(p, end);
        if (!eol || eol == p)
            break;
        while (eol + 2 < end && (eol[2] == ' ' || eol[2] == '\t')) { /* folded */
            const char *next = find_crlf(eol + 2, end);
            if (!next)
                break;
            eol = next;
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon)
            continue;
        cb_str_t name = trim(p, colon);
        if (name_is(name.s, name.len, "Record-Route", 0) &&
            split_entries(trim(colon + 1, eol), ent, &n, CB_ROUTE_MAX))
            return -1;
    }
    size_t o = 0;
    for (unsigned i = n; i-- > 0;) {
        if (o + ent[i].len + 3 > cap) {
            out[0] = 0;
            return -1;
        }
        if (i != n - 1) {
            out[o++] = ',';
            out[o++] = ' ';
        }
        for (size_t k = 0; k < ent[i].len; k++) {
            char ch = ent[i].s[k];
            if (ch == '\r' || ch == '\n')
                continue;
            out[o++] = ch == '\t' ? ' ' : ch;
        }
        out[o] = 0;
    }
    return (int)n;
}

struct out {
    char *p;
    size_t cap, len;
    bool overflow;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

static void put_raw(struct out *o, const char *s, size_t n)
{
    if (o->overflow)
        return;
    if (n >= o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = 0;
}

ssize_t cb_sip_build_request(char *out, size_t cap, const cb_req_t *r)
{
    if (!out || cap == 0)
        return -1;
    struct out o = {out, cap, 0, false};
    size_t blen = r->body ? r->body_len : 0;
    put(&o, "%s %s SIP/2.0\r\n", r->method, r->ruri);
    put(&o, "Via: SIP/2.0/%s %s:%u;branch=%s;rport\r\n", r->transport, r->via_host, r->via_port,
        r->branch);
    put(&o, "Max-Forwards: 70\r\n");
    put(&o, "From: <%s>;tag=%s\r\n", r->from_uri, r->from_tag);
    if (r->to_tag)
        put(&o, "To: <%s>;tag=%s\r\n", r->to_uri, r->to_tag);
    else
        put(&o, "To: <%s>\r\n", r->to_uri);
    put(&o, "Call-ID: %s\r\n", r->call_id);
    put(&o, "CSeq: %u %s\r\n", r->cseq, r->cseq_method ? r->cseq_method : r->method);
    if (r->contact)
        put(&o, "Contact: <%s>\r\n", r->contact);
    put(&o, "User-Agent: confbench\r\n");
    if (blen && r->content_type)
        put(&o, "Content-Type: %s\r\n", r->content_type);
    put(&o, "Content-Length: %zu\r\n\r\n", blen);
    if (blen)
        put_raw(&o, r->body, blen);
    return o.overflow ? -1 : (ssize_t)o.len;
}

ssize_t cb_sip_build_response(char *out, size_t cap, const cb_sip_msg_t *m, int status,
                              const char *phrase, const char *to_tag)
{
    if (!out || cap == 0 || !m->is_request)
        return -1;
    struct out o = {out, cap, 0, false};
    put(&o, "SIP/2.0 %d %s\r\n", status, phrase);
    put(&o, "Via: %.*s\r\n", (int)m->via.len, m->via.s);
    put(&o, "From: %.*s\r\n", (int)m->from.len, m->from.s ? m->from.s : "");
    if (m->to_tag.s || !to_tag)
        put(&o, "To: %.*s\r\n", (int)m->to.len, m->to.s ? m->to.s : "");
    else
        put(&o, "To: %.*s;tag=%s\r\n", (int)m->to.len, m->to.s ? m->to.s : "", to_tag);
    put(&o, "Call-ID: %.*s\r\n", (int)m->call_id.len, m->call_id.s);
    put(&o, "CSeq: %.*s\r\n", (int)m->cseq_raw.len, m->cseq_raw.s);
    put(&o, "User-Agent: confbench\r\nContent-Length: 0\r\n\r\n");
    return o.overflow ? -1 : (ssize_t)o.len;
}

ssize_t cb_sdp_offer(char *out, size_t cap, const char *addr, unsigned port, uint64_t session_id,
                     bool srtp, const char *key_b64)
{
    if (!out || cap == 0)
        return -1;
    struct out o = {out, cap, 0, false};
    const char *fam = strchr(addr, ':') ? "IP6" : "IP4";
    put(&o, "v=0\r\no=confbench %llu 1 IN %s %s\r\ns=confbench\r\nc=IN %s %s\r\nt=0 0\r\n",
        (unsigned long long)session_id, fam, addr, fam, addr);
    put(&o, "m=audio %u %s 0 8 101\r\n", port, srtp ? "RTP/SAVP" : "RTP/AVP");
    put(&o, "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n");
    if (srtp) {
        if (!key_b64)
            return -1;
        put(&o, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n", key_b64);
    }
    put(&o, "a=sendrecv\r\n");
    return o.overflow ? -1 : (ssize_t)o.len;
}

static bool line_starts(const char *p, const char *e, const char *pfx)
{
    size_t n = strlen(pfx);
    return (size_t)(e - p) >= n && memcmp(p, pfx, n) == 0;
}

/* Copies the address of a "c=IN IP4 addr" line into dst. */
static int conn_addr(const char *p, const char *e, char *dst, size_t cap)
{
    p += 2;
    if (!line_starts(p, e, "IN IP4 ") && !line_starts(p, e, "IN IP6 "))
        return -1;
    p += 7;
    const char *a = p;
    while (p < e && !is_ws(*p) && *p != '/')
        p++;
    size_t n = (size_t)(p - a);
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, a, n);
    dst[n] = 0;
    return 0;
}

int cb_sdp_parse(const char *body, size_t len, cb_sdp_answer_t *a)
{
    memset(a, 0, sizeof(*a));
    a->pt = -1;
    if (!body)
        return -1;
    char session_c[64] = "", media_c[64] = "";
    bool in_audio = false, done_audio = false, have_audio = false;
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        const char *next = e ? e + 1 : end;
        if (!e)
            e = end;
        if (e > p && e[-1] == '\r')
            e--;
        if (line_starts(p, e, "m=")) {
            if (in_audio)
                done_audio = true;
            in_audio = false;
            if (!have_audio && line_starts(p, e, "m=audio ")) {
                const char *q = p + 8;
                unsigned port = 0;
                const char *d = q;
                while (q < e && *q >= '0' && *q <= '9' && port <= 65535)
                    port = port * 10 + (unsigned)(*q++ - '0');
                if (q == d || port > 65535 || q >= e || *q != ' ')
                    return -1;
                while (q < e && *q == ' ')
                    q++;
                const char *prof = q;
                while (q < e && *q != ' ')
                    q++;
                a->savp = (size_t)(q - prof) >= 8 && memcmp(prof, "RTP/SAVP", 8) == 0;
                while (q < e && *q == ' ')
                    q++;
                if (q < e && *q >= '0' && *q <= '9') {
                    int pt = 0;
                    while (q < e && *q >= '0' && *q <= '9' && pt < 1000)
                        pt = pt * 10 + (*q++ - '0');
                    a->pt = pt;
                }
                a->port = port;
                have_audio = true;
                in_audio = true;
            }
        } else if (line_starts(p, e, "c=")) {
            if (in_audio && !done_audio)
                conn_addr(p, e, media_c, sizeof(media_c));
            else if (!have_audio)
                conn_addr(p, e, session_c, sizeof(session_c));
        }
        p = next;
    }
    if (!have_audio)
        return -1;
    const char *c = media_c[0] ? media_c : session_c;
    if (!c[0])
        return -1;
    snprintf(a->addr, sizeof(a->addr), "%s", c);
    return 0;
}

ssize_t cb_base64(const unsigned char *in, size_t n, char *out, size_t cap)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t need = (n + 2) / 3 * 4;
    if (cap < need + 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tbl[(v >> 18) & 63];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = 0;
    return (ssize_t)o;
}
