/* SDP offer/answer for the node's own endpoints (see sdp_answer.h).
 *
 * The offer is parsed by sofia-sip's SDP parser into a home of its own on the
 * stack, so calls share nothing and may run on any thread. The answer is printed
 * here line by line rather than by sofia-sip's printer: it is small, fixed in
 * shape, and every byte of it is ours except the rejected m-lines' media, proto
 * and format tokens, which the parser has already checked to be tokens. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include "sdp_answer.h"

enum {
    SDP_OFFER_MAX = 65536, /* far above any real offer; bounds the parser's work */
    PT_PCMU = 0,
    PT_PCMA = 8,
    PTIME_MS = 20,
};

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

/* The parser's message quotes the offer; `why` ends up in a Warning header, so
 * only printable ASCII other than quote and backslash is kept. */
static void set_parse_why(char *why, size_t whylen, const char *err)
{
    char clean[160];
    size_t j = 0;
    for (const char *s = err ? err : "unknown error"; *s && j < sizeof clean - 1; s++) {
        unsigned char c = (unsigned char)*s;
        clean[j++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '\'' : (char)c;
    }
    clean[j] = '\0';
    set_why(why, whylen, "SDP parse error: %s", clean);
}

/* A bounded printer that remembers whether anything failed to fit. */
struct out {
    char *p, *end;
    bool ok;
};

static __attribute__((format(printf, 2, 3))) void put(struct out *o, const char *fmt, ...)
{
    if (!o->ok)
        return;
    size_t room = (size_t)(o->end - o->p);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        o->ok = false;
        return;
    }
    o->p += n;
}

static bool is_rtp_avp(const sdp_media_t *m)
{
    return m->m_proto == sdp_proto_rtp && m->m_proto_name &&
           strcasecmp(m->m_proto_name, "RTP/AVP") == 0;
}

static bool is_secure_rtp(const sdp_media_t *m)
{
    return m->m_proto == sdp_proto_srtp || (m->m_proto_name && strstr(m->m_proto_name, "SAVP"));
}

static bool is_live_audio(const sdp_media_t *m)
{
    return m->m_type == sdp_media_audio && m->m_port != 0 && !m->m_rejected;
}

static bool rtpmap_is(const sdp_rtpmap_t *rm, const char *encoding, unsigned long rate)
{
    return rm->rm_encoding && strcasecmp(rm->rm_encoding, encoding) == 0 && rm->rm_rate == rate;
}

/* The first of the offered formats we can send and receive, in the offer's order
 * of preference: PCMU or PCMA on their static payload types (with or without an
 * rtpmap; one that maps them to anything else does not count). -1 if none. */
static int pick_codec(const sdp_media_t *m)
{
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
        if (rm->rm_pt == PT_PCMU && rtpmap_is(rm, "PCMU", 8000))
            return PT_PCMU;
        if (rm->rm_pt == PT_PCMA && rtpmap_is(rm, "PCMA", 8000))
            return PT_PCMA;
    }
    return -1;
}

/* The offer's telephone-event payload type at 8 kHz (our codecs' clock), or -1. */
static int pick_telephone_event(const sdp_media_t *m)
{
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next)
        if (rtpmap_is(rm, "telephone-event", 8000))
            return (int)rm->rm_pt;
    return -1;
}

static bool is_unspecified_address(const sdp_connection_t *c)
{
    return c && c->c_address &&
           (strcmp(c->c_address, "0.0.0.0") == 0 || strcmp(c->c_address, "::") == 0);
}

/* Our direction: we send what the offerer receives and receive what it sends
 * (RFC 3264 §6.1). A connection address of 0.0.0.0 is the old way to say the
 * offerer receives nothing (RFC 3264 §8.4). */
static const char *answer_direction(const sdp_session_t *sess, const sdp_media_t *m)
{
    unsigned mode = m->m_mode;
    const sdp_connection_t *c = m->m_connections ? m->m_connections : sess->sdp_connection;
    if (is_unspecified_address(c))
        mode &= ~(unsigned)sdp_recvonly;
    bool we_send = mode & sdp_recvonly, we_receive = mode & sdp_sendonly;
    return we_send && we_receive ? "sendrecv"
           : we_send             ? "sendonly"
           : we_receive          ? "recvonly"
                                 : "inactive";
}

static void put_formats(struct out *o, const sdp_media_t *m)
{
    bool any = false;
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
        put(o, " %u", (unsigned)rm->rm_pt);
        any = true;
    }
    for (const sdp_list_t *l = m->m_format; l; l = l->l_next) {
        if (l->l_text && *l->l_text) {
            put(o, " %s", l->l_text);
            any = true;
        }
    }
    if (!any) /* an m= line needs a format even when rejected */
        put(o, " 0");
}

/* "offered: 18 97" for the 488's Warning */
static void set_no_codec_why(char *why, size_t whylen, const sdp_media_t *m)
{
    char list[96] = "";
    size_t n = 0;
    for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm && n < sizeof list - 8; rm = rm->rm_next) {
        int k = snprintf(list + n, sizeof list - n, "%s%u", n ? " " : "", (unsigned)rm->rm_pt);
        if (k < 0)
            break;
        n += (size_t)k;
    }
    set_why(why, whylen, "No common audio codec (offered: %s)", list);
}

static bool is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("-!#$%&'*+.^_`{|}~", c));
}

/* "word *("/" word)": words of token characters (or digits) joined by single
 * slashes, at most max_slashes of them. */
static bool is_slashed(const char *s, size_t n, bool digits, unsigned max_slashes)
{
    unsigned slashes = 0;
    size_t word = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') {
            if (word == 0 || ++slashes > max_slashes)
                return false;
            word = 0;
        } else if (digits ? (c >= '0' && c <= '9') : is_token_char(c)) {
            word++;
        } else {
            return false;
        }
    }
    return word > 0;
}

/* One m= line's content, "<media> <port>[/<count>] <proto> <fmt> ..." (RFC 4566
 * §5.14): fields apart by spaces, the proto tokens joined by '/', the rest tokens. */
static bool m_line_ok(const char *s, size_t n)
{
    unsigned field = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && s[i] == ' ')
            i++;
        if (i == n)
            break;
        size_t start = i;
        while (i < n && s[i] != ' ')
            i++;
        bool ok = field == 1   ? is_slashed(s + start, i - start, true, 1)
                  : field == 2 ? is_slashed(s + start, i - start, false, 8)
                               : is_slashed(s + start, i - start, false, 0);
        if (!ok)
            return false;
        field++;
    }
    return true;
}

/* This sofia-sip version loops, allocating until memory runs out, on an m= line
 * whose format list holds a word that starts with a character outside tokens, or
 * that has only tabs after the proto. So every m= line is checked first (the
 * parser splits lines at CR or LF and skips leading blanks). */
static bool m_lines_ok(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == '\r' || s[i] == '\n' || s[i] == ' ' || s[i] == '\t'))
            i++;
        size_t start = i;
        while (i < len && s[i] != '\r' && s[i] != '\n')
            i++;
        if (i - start >= 2 && s[start] == 'm' && s[start + 1] == '=' &&
            !m_line_ok(s + start + 2, i - start - 2))
            return false;
    }
    return true;
}

static bool valid_username(const char *u)
{
    if (!u || !*u)
        return false;
    for (; *u; u++)
        if ((unsigned char)*u <= 0x20 || (unsigned char)*u >= 0x7f)
            return false;
    return true;
}

ssize_t sdp_answer_build(const char *offer, size_t offer_len, const struct sdp_answer_params *p,
                         char *out, size_t outlen, char *why, size_t whylen)
{
    ssize_t ret = -1;
    su_home_t home[1];
    sdp_parser_t *parser = NULL;
    unsigned char addr[16];

    if (why && whylen)
        why[0] = '\0';
    su_home_init(home);

    if (!p || !p->address || !out) {
        set_why(why, whylen, "Bad answer parameters");
        goto out;
    }
    const char *ip = inet_pton(AF_INET, p->address, addr) == 1    ? "IP4"
                     : inet_pton(AF_INET6, p->address, addr) == 1 ? "IP6"
                                                                  : NULL;
    if (!ip || p->audio_port == 0) {
        set_why(why, whylen, "Bad local media address or port");
        goto out;
    }
    const char *user = p->username ? p->username : "-";
    if (!valid_username(user)) {
        set_why(why, whylen, "Bad o= username");
        goto out;
    }
    if (!offer || offer_len == 0) {
        set_why(why, whylen, "SDP parse error: empty offer");
        goto out;
    }
    if (offer_len > SDP_OFFER_MAX) {
        set_why(why, whylen, "SDP offer too large");
        goto out;
    }
    if (memchr(offer, '\0', offer_len)) { /* the parser would stop there silently */
        set_why(why, whylen, "SDP parse error: NUL byte in offer");
        goto out;
    }

    if (!m_lines_ok(offer, offer_len)) {
        set_why(why, whylen, "SDP parse error: malformed m= line");
        goto out;
    }

    parser = sdp_parse(home, offer, (issize_t)offer_len, 0);
    const sdp_session_t *sess = sdp_session(parser);
    if (!sess) {
        set_parse_why(why, whylen, sdp_parsing_error(parser));
        goto out;
    }

    /* The stream we take: the first live RTP/AVP audio line with a codec we have. */
    const sdp_media_t *chosen = NULL, *first_avp = NULL;
    bool secure = false, other_audio = false;
    int codec = -1;
    for (const sdp_media_t *m = sess->sdp_media; m && !chosen; m = m->m_next) {
        if (!is_live_audio(m))
            continue;
        if (is_rtp_avp(m)) {
            if (!first_avp)
                first_avp = m;
            codec = pick_codec(m);
            if (codec >= 0)
                chosen = m;
        } else if (is_secure_rtp(m)) {
            secure = true;
        } else {
            other_audio = true;
        }
    }
    if (!chosen) {
        if (first_avp)
            set_no_codec_why(why, whylen, first_avp);
        else if (secure)
            set_why(why, whylen, "Secure RTP (RTP/SAVP) not offered in a form we accept");
        else if (other_audio)
            set_why(why, whylen, "No RTP/AVP audio stream in offer");
        else
            set_why(why, whylen, "No audio stream in offer");
        goto out;
    }

    struct out o = {out, out + outlen, true};
    put(&o, "v=0\r\no=%s %llu %llu IN %s %s\r\ns=confnode\r\nc=IN %s %s\r\nt=0 0\r\n", user,
        (unsigned long long)p->session_id, (unsigned long long)p->session_id, ip, p->address, ip,
        p->address);
    /* every offered m= line is answered, in order (RFC 3264 §6) */
    for (const sdp_media_t *m = sess->sdp_media; m; m = m->m_next) {
        if (m != chosen) {
            put(&o, "m=%s 0 %s", m->m_type_name ? m->m_type_name : "audio",
                m->m_proto_name ? m->m_proto_name : "RTP/AVP");
            put_formats(&o, m);
            put(&o, "\r\n");
            continue;
        }
        int te = pick_telephone_event(m);
        put(&o, "m=audio %u RTP/AVP %d", (unsigned)p->audio_port, codec);
        if (te >= 0)
            put(&o, " %d", te);
        put(&o, "\r\na=rtpmap:%d %s/8000\r\n", codec, codec == PT_PCMU ? "PCMU" : "PCMA");
        if (te >= 0)
            put(&o, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-15\r\n", te, te);
        put(&o, "a=ptime:%d\r\na=%s\r\n", PTIME_MS, answer_direction(sess, m));
    }
    if (!o.ok) {
        set_why(why, whylen, "SDP answer does not fit");
        goto out;
    }
    ret = o.p - out;
out:
    sdp_parser_free(parser); /* accepts NULL */
    su_home_deinit(home);
    return ret;
}
