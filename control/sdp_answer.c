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
#include <stdlib.h>
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

/* put() without the formatting: the answer's lines are built from these. */
static void put_s(struct out *o, const char *str)
{
    size_t n = strlen(str);
    if (!o->ok || (size_t)(o->end - o->p) <= n) {
        o->ok = false;
        return;
    }
    memcpy(o->p, str, n + 1);
    o->p += n;
}

static void put_u(struct out *o, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d - 1;
    d[i] = 0;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put_s(o, d + i);
}

static bool is_secure_rtp(const sdp_media_t *m)
{
    return m->m_proto == sdp_proto_srtp || (m->m_proto_name && strstr(m->m_proto_name, "SAVP"));
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

/* ---- the offer's streams ---- */

enum profile { PROF_OTHER = 0, PROF_AVP, PROF_AVPF, PROF_SAVP, PROF_SAVPF };

static enum profile profile_of(const sdp_media_t *m)
{
    static const struct {
        const char *name;
        enum profile prof;
    } names[] = {{"RTP/AVP", PROF_AVP},
                 {"RTP/AVPF", PROF_AVPF},
                 {"RTP/SAVP", PROF_SAVP},
                 {"RTP/SAVPF", PROF_SAVPF}};
    if (!m->m_proto_name)
        return PROF_OTHER;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(m->m_proto_name, names[i].name) == 0)
            return names[i].prof;
    return PROF_OTHER;
}

static bool is_live(const sdp_media_t *m, sdp_media_e type)
{
    return m->m_type == type && m->m_port != 0 && !m->m_rejected;
}

static bool attr_is(const sdp_attribute_t *a, const char *name)
{
    return a->a_name && strcasecmp(a->a_name, name) == 0;
}

static bool has_attr(const sdp_media_t *m, const char *name)
{
    for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next)
        if (attr_is(a, name))
            return true;
    return false;
}

/* One offered payload format. sofia-sip fills m_rtpmaps for RTP/AVP and RTP/SAVP
 * only; for the AVPF profiles the formats stay in m_format and a=rtpmap / a=fmtp in
 * the attributes, so they are read from there. */
struct fmt {
    unsigned pt;
    const char *enc; /* not NUL-terminated */
    size_t enc_len;
    unsigned long rate;
    const char *fmtp; /* NULL when none */
};

#define MAX_FMTS 32

static const char *attr_for_pt(const sdp_media_t *m, const char *name, unsigned pt)
{
    for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next) {
        if (!attr_is(a, name) || !a->a_value)
            continue;
        char *end;
        unsigned long n = strtoul(a->a_value, &end, 10);
        if (end != a->a_value && n == pt && *end == ' ') {
            while (*end == ' ')
                end++;
            return end;
        }
    }
    return NULL;
}

static size_t formats_of(const sdp_media_t *m, struct fmt *out)
{
    size_t n = 0;
    if (m->m_rtpmaps) {
        for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm && n < MAX_FMTS; rm = rm->rm_next)
            if (rm->rm_encoding)
                out[n++] = (struct fmt){rm->rm_pt, rm->rm_encoding, strlen(rm->rm_encoding),
                                        rm->rm_rate, rm->rm_fmtp};
        return n;
    }
    for (const sdp_list_t *l = m->m_format; l && n < MAX_FMTS; l = l->l_next) {
        char *end;
        if (!l->l_text || !*l->l_text)
            continue;
        unsigned long pt = strtoul(l->l_text, &end, 10);
        if (*end || pt > 127)
            continue;
        struct fmt f = {.pt = (unsigned)pt};
        const char *map = attr_for_pt(m, "rtpmap", (unsigned)pt);
        if (map) {
            const char *slash = strchr(map, '/');
            if (!slash)
                continue;
            f.enc = map;
            f.enc_len = (size_t)(slash - map);
            f.rate = strtoul(slash + 1, NULL, 10);
        } else if (pt == PT_PCMU || pt == PT_PCMA) {
            f.enc = pt == PT_PCMU ? "PCMU" : "PCMA";
            f.enc_len = 4;
            f.rate = 8000;
        } else {
            continue;
        }
        f.fmtp = attr_for_pt(m, "fmtp", (unsigned)pt);
        out[n++] = f;
    }
    return n;
}

static bool fmt_is(const struct fmt *f, const char *encoding, unsigned long rate)
{
    return f->enc_len == strlen(encoding) && strncasecmp(f->enc, encoding, f->enc_len) == 0 &&
           f->rate == rate;
}

/* The first offered codec we take, in the offer's order: PCMU/0, PCMA/8 (static
 * payload types, with or without an rtpmap) and, when allowed, opus/48000. */
static bool pick_audio(const sdp_media_t *m, const struct sdp_options *opt, enum sdp_codec *codec,
                       struct fmt *chosen)
{
    struct fmt f[MAX_FMTS];
    size_t n = formats_of(m, f);
    for (size_t i = 0; i < n; i++) {
        if ((f[i].pt == PT_PCMU && fmt_is(&f[i], "PCMU", 8000)) ||
            (f[i].pt == PT_PCMA && fmt_is(&f[i], "PCMA", 8000)) ||
            (opt->opus && f[i].pt >= 96 && fmt_is(&f[i], "opus", 48000))) {
            *codec = f[i].pt == PT_PCMU   ? SDP_CODEC_PCMU
                     : f[i].pt == PT_PCMA ? SDP_CODEC_PCMA
                                          : SDP_CODEC_OPUS;
            *chosen = f[i];
            return true;
        }
    }
    return false;
}

static bool pick_video(const sdp_media_t *m, enum sdp_codec *codec, struct fmt *chosen)
{
    struct fmt f[MAX_FMTS];
    size_t n = formats_of(m, f);
    for (size_t i = 0; i < n; i++) {
        if (f[i].pt >= 96 && (fmt_is(&f[i], "H264", 90000) || fmt_is(&f[i], "VP8", 90000))) {
            *codec = fmt_is(&f[i], "H264", 90000) ? SDP_CODEC_H264 : SDP_CODEC_VP8;
            *chosen = f[i];
            return true;
        }
    }
    return false;
}

static int pick_te(const sdp_media_t *m, unsigned long rate)
{
    struct fmt f[MAX_FMTS];
    size_t n = formats_of(m, f);
    for (size_t i = 0; i < n; i++)
        if (fmt_is(&f[i], "telephone-event", rate))
            return (int)f[i].pt;
    return -1;
}

/* "a=rtcp-fb:<pt|*> nack [pli] | ccm fir" offered for pt. */
static unsigned rtcp_fb_of(const sdp_media_t *m, unsigned pt)
{
    unsigned fb = 0;
    for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next) {
        if (!attr_is(a, "rtcp-fb") || !a->a_value)
            continue;
        const char *v = a->a_value;
        char *end;
        if (*v == '*') {
            end = (char *)v + 1;
        } else {
            unsigned long n = strtoul(v, &end, 10);
            if (end == v || n != pt)
                continue;
        }
        while (*end == ' ')
            end++;
        if (strcasecmp(end, "nack") == 0)
            fb |= SDP_FB_NACK;
        else if (strcasecmp(end, "nack pli") == 0)
            fb |= SDP_FB_PLI;
        else if (strcasecmp(end, "ccm fir") == 0)
            fb |= SDP_FB_FIR;
    }
    return fb;
}

static bool printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

/* Fills the offer side of a plan stream from m-line m. */
static void stream_of(const sdp_session_t *sess, const sdp_media_t *m, int index, enum profile prof,
                      const struct fmt *rm, enum sdp_codec codec, const struct sdp_options *opt,
                      struct sdp_stream *st)
{
    memset(st, 0, sizeof *st);
    st->accepted = true;
    st->index = index;
    st->codec = codec;
    st->pt = rm->pt;
    st->te_pt =
        m->m_type == sdp_media_audio ? pick_te(m, codec == SDP_CODEC_OPUS ? 48000ul : 8000ul) : -1;
    st->secure = prof == PROF_SAVP || prof == PROF_SAVPF;
    st->avpf = prof == PROF_AVPF || prof == PROF_SAVPF;
    st->rtcp_mux = opt->rtcp_mux && has_attr(m, "rtcp-mux");
    const char *dir = answer_direction(sess, m);
    st->send = strcmp(dir, "sendrecv") == 0 || strcmp(dir, "sendonly") == 0;
    st->recv = strcmp(dir, "sendrecv") == 0 || strcmp(dir, "recvonly") == 0;
    const sdp_connection_t *c = m->m_connections ? m->m_connections : sess->sdp_connection;
    unsigned char bin[16];
    if (c && c->c_address && !is_unspecified_address(c) &&
        strlen(c->c_address) < sizeof st->remote_addr &&
        (inet_pton(AF_INET, c->c_address, bin) == 1 || inet_pton(AF_INET6, c->c_address, bin) == 1))
        snprintf(st->remote_addr, sizeof st->remote_addr, "%s", c->c_address);
    st->remote_port = (uint16_t)m->m_port;
    st->remote_rtcp_port = (uint16_t)(m->m_port + 1);
    for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next) {
        if (attr_is(a, "rtcp") && a->a_value) {
            unsigned long port = strtoul(a->a_value, NULL, 10);
            if (port > 0 && port < 65536)
                st->remote_rtcp_port = (uint16_t)port;
        } else if (attr_is(a, "crypto") && a->a_value && st->n_crypto < SDP_MAX_CRYPTO) {
            st->crypto[st->n_crypto] = a->a_value;
            st->crypto_len[st->n_crypto++] = strlen(a->a_value);
        }
    }
    st->rtcp_fb = rtcp_fb_of(m, st->pt);
    if (m->m_type == sdp_media_video && rm->fmtp && printable(rm->fmtp) &&
        strlen(rm->fmtp) < sizeof st->fmtp)
        snprintf(st->fmtp, sizeof st->fmtp, "%s", rm->fmtp);
}

static const char *codec_name(enum sdp_codec c)
{
    static const char *const names[] = {"PCMU/8000", "PCMA/8000", "opus/48000/2", "H264/90000",
                                        "VP8/90000"};
    return names[c];
}

static const char *proto_name(const struct sdp_stream *st)
{
    return st->secure ? (st->avpf ? "RTP/SAVPF" : "RTP/SAVP") : (st->avpf ? "RTP/AVPF" : "RTP/AVP");
}

static const char *dir_name(const struct sdp_stream *st)
{
    return st->send && st->recv ? "sendrecv"
           : st->send           ? "sendonly"
           : st->recv           ? "recvonly"
                                : "inactive";
}

static void put_stream(struct out *o, const struct sdp_stream *st, bool audio)
{
    put_s(o, audio ? "m=audio " : "m=video ");
    put_u(o, st->local_port);
    put_s(o, " ");
    put_s(o, proto_name(st));
    put_s(o, " ");
    put_u(o, st->pt);
    if (st->te_pt >= 0) {
        put_s(o, " ");
        put_u(o, (unsigned)st->te_pt);
    }
    put_s(o, "\r\na=rtpmap:");
    put_u(o, st->pt);
    put_s(o, " ");
    put_s(o, codec_name(st->codec));
    put_s(o, "\r\n");
    if (st->codec == SDP_CODEC_OPUS) { /* we mix and encode at 8 kHz (docs/media.md) */
        put_s(o, "a=fmtp:");
        put_u(o, st->pt);
        put_s(o, " maxplaybackrate=8000;sprop-maxcapturerate=8000\r\n");
    }
    if (!audio && st->fmtp[0]) {
        put_s(o, "a=fmtp:");
        put_u(o, st->pt);
        put_s(o, " ");
        put_s(o, st->fmtp);
        put_s(o, "\r\n");
    }
    if (st->te_pt >= 0) {
        put_s(o, "a=rtpmap:");
        put_u(o, (unsigned)st->te_pt);
        put_s(o, st->codec == SDP_CODEC_OPUS ? " telephone-event/48000\r\na=fmtp:"
                                             : " telephone-event/8000\r\na=fmtp:");
        put_u(o, (unsigned)st->te_pt);
        put_s(o, " 0-15\r\n");
    }
    static const struct {
        unsigned bit;
        const char *text;
    } fb[] = {
        {SDP_FB_NACK, " nack\r\n"}, {SDP_FB_PLI, " nack pli\r\n"}, {SDP_FB_FIR, " ccm fir\r\n"}};
    for (size_t i = 0; !audio && i < sizeof fb / sizeof fb[0]; i++) {
        if (!(st->rtcp_fb & fb[i].bit))
            continue;
        put_s(o, "a=rtcp-fb:");
        put_u(o, st->pt);
        put_s(o, fb[i].text);
    }
    if (audio) {
        put_s(o, "a=ptime:");
        put_u(o, PTIME_MS);
        put_s(o, "\r\n");
    }
    if (st->rtcp_mux)
        put_s(o, "a=rtcp-mux\r\n");
    if (st->secure) {
        put_s(o, "a=crypto:");
        put_s(o, st->crypto_answer);
        put_s(o, "\r\n");
    }
    put_s(o, "a=");
    put_s(o, dir_name(st));
    put_s(o, "\r\n");
}

ssize_t sdp_negotiate(const char *offer, size_t offer_len, const struct sdp_answer_params *p,
                      const struct sdp_options *opt_in, sdp_accept_fn accept, void *arg,
                      struct sdp_plan *plan_out, char *out, size_t outlen, char *why, size_t whylen)
{
    ssize_t ret = SDP_REFUSED;
    su_home_t home[1];
    sdp_parser_t *parser = NULL;
    unsigned char addr[16];
    struct sdp_options opt = opt_in ? *opt_in : (struct sdp_options){0};
    struct sdp_plan plan_local, *plan = plan_out ? plan_out : &plan_local;
    int policy = opt.srtp ? opt.srtp : SDP_SRTP_OPTIONAL;

    if (why && whylen)
        why[0] = '\0';
    memset(plan, 0, sizeof *plan);
    su_home_init(home);

    if (!p || !p->address || !out || !accept) {
        set_why(why, whylen, "Bad answer parameters");
        goto out;
    }
    const char *ip = inet_pton(AF_INET, p->address, addr) == 1    ? "IP4"
                     : inet_pton(AF_INET6, p->address, addr) == 1 ? "IP6"
                                                                  : NULL;
    if (!ip) {
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

    /* audio: the first line we can take; under "optional" a later secure one wins */
    const sdp_media_t *chosen = NULL, *first_nocodec = NULL;
    bool secure_seen = false, other_audio = false, plain_refused = false, nokey = false;
    int index = 0;
    for (const sdp_media_t *m = sess->sdp_media; m; m = m->m_next, index++) {
        if (!is_live(m, sdp_media_audio))
            continue;
        enum profile prof = profile_of(m);
        bool sec = prof == PROF_SAVP || prof == PROF_SAVPF;
        bool fb = prof == PROF_AVPF || prof == PROF_SAVPF;
        if (prof == PROF_OTHER || (fb && !opt.avpf)) {
            if (is_secure_rtp(m))
                secure_seen = true;
            else
                other_audio = true;
            continue;
        }
        if (sec && policy == SDP_SRTP_OFF) {
            secure_seen = true;
            continue;
        }
        if (!sec && policy == SDP_SRTP_REQUIRED) {
            plain_refused = true;
            continue;
        }
        if (sec && !has_attr(m, "crypto")) {
            nokey = true;
            continue;
        }
        enum sdp_codec codec;
        struct fmt rm;
        if (!pick_audio(m, &opt, &codec, &rm)) {
            if (!first_nocodec)
                first_nocodec = m;
            continue;
        }
        if (chosen && !sec)
            continue;
        chosen = m;
        stream_of(sess, m, index, prof, &rm, codec, &opt, &plan->audio);
        if (sec || policy != SDP_SRTP_OPTIONAL)
            break;
    }
    if (!chosen) {
        if (first_nocodec)
            set_no_codec_why(why, whylen, first_nocodec);
        else if (plain_refused)
            set_why(why, whylen, "SRTP required: offer RTP/SAVP with a=crypto");
        else if (nokey)
            set_why(why, whylen, "RTP/SAVP without a=crypto (DTLS-SRTP is not supported)");
        else if (secure_seen)
            set_why(why, whylen, "Secure RTP (RTP/SAVP) not offered in a form we accept");
        else if (other_audio)
            set_why(why, whylen, "No RTP/AVP audio stream in offer");
        else
            set_why(why, whylen, "No audio stream in offer");
        goto out;
    }

    /* video: the first line as secure as the audio, with a codec we pass through */
    const sdp_media_t *vchosen = NULL;
    index = 0;
    for (const sdp_media_t *m = sess->sdp_media; m && opt.video && !vchosen;
         m = m->m_next, index++) {
        if (!is_live(m, sdp_media_video))
            continue;
        enum profile prof = profile_of(m);
        bool sec = prof == PROF_SAVP || prof == PROF_SAVPF;
        bool fb = prof == PROF_AVPF || prof == PROF_SAVPF;
        if (prof == PROF_OTHER || (fb && !opt.avpf) || sec != plan->audio.secure ||
            (sec && !has_attr(m, "crypto")))
            continue;
        enum sdp_codec codec;
        struct fmt rm;
        if (!pick_video(m, &codec, &rm))
            continue;
        vchosen = m;
        stream_of(sess, m, index, prof, &rm, codec, &opt, &plan->video);
    }

    int rc = accept(arg, plan, why, whylen);
    if (rc < 0) {
        ret = rc;
        goto out;
    }
    if (plan->audio.local_port == 0) {
        set_why(why, whylen, "Bad local media address or port");
        goto out;
    }

    struct out o = {out, out + outlen, true};
    put_s(&o, "v=0\r\no=");
    put_s(&o, user);
    put_s(&o, " ");
    put_u(&o, (unsigned long long)p->session_id);
    put_s(&o, " ");
    put_u(&o, (unsigned long long)p->session_id);
    put_s(&o, " IN ");
    put_s(&o, ip);
    put_s(&o, " ");
    put_s(&o, p->address);
    put_s(&o, "\r\ns=confnode\r\nc=IN ");
    put_s(&o, ip);
    put_s(&o, " ");
    put_s(&o, p->address);
    put_s(&o, "\r\nt=0 0\r\n");
    /* every offered m= line is answered, in order (RFC 3264 §6) */
    for (const sdp_media_t *m = sess->sdp_media; m; m = m->m_next) {
        if (m == chosen) {
            put_stream(&o, &plan->audio, true);
        } else if (m == vchosen && plan->video.local_port != 0) {
            put_stream(&o, &plan->video, false);
        } else {
            put(&o, "m=%s 0 %s", m->m_type_name ? m->m_type_name : "audio",
                m->m_proto_name ? m->m_proto_name : "RTP/AVP");
            put_formats(&o, m);
            put(&o, "\r\n");
        }
    }
    if (!o.ok) {
        set_why(why, whylen, "SDP answer does not fit");
        goto out;
    }
    ret = o.p - out;
out:
    for (int i = 0; i < SDP_MAX_CRYPTO; i++) { /* views into the parse, gone now */
        plan->audio.crypto[i] = plan->video.crypto[i] = NULL;
    }
    sdp_parser_free(parser); /* accepts NULL */
    su_home_deinit(home);
    return ret;
}

static int legacy_accept(void *arg, struct sdp_plan *plan, char *why, size_t whylen)
{
    (void)why;
    (void)whylen;
    plan->audio.local_port = *(const uint16_t *)arg;
    plan->video.local_port = 0;
    return 0;
}

ssize_t sdp_answer_build(const char *offer, size_t offer_len, const struct sdp_answer_params *p,
                         char *out, size_t outlen, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!p || !p->address || !out) {
        set_why(why, whylen, "Bad answer parameters");
        return -1;
    }
    unsigned char addr[16];
    if (p->audio_port == 0 ||
        (inet_pton(AF_INET, p->address, addr) != 1 && inet_pton(AF_INET6, p->address, addr) != 1)) {
        set_why(why, whylen, "Bad local media address or port");
        return -1;
    }
    const struct sdp_options legacy = {.srtp = SDP_SRTP_OFF};
    uint16_t port = p->audio_port;
    ssize_t n = sdp_negotiate(offer, offer_len, p, &legacy, legacy_accept, &port, NULL, out, outlen,
                              why, whylen);
    return n < 0 ? -1 : n;
}
