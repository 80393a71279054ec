/* The ms-diagnostics header: codes, builder and parser (see fed_diag.h). */
#include "fed_diag.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

static const struct {
    int code;
    const char *reason;
} diag_codes[] = {
    {FED_DIAG_DNS_SRV_UNRESOLVED, "Unable to resolve DNS SRV record"},
    {FED_DIAG_DNS_SRV_NO_MATCH, "No match for domain in DNS SRV results"},
    {FED_DIAG_CERT_TRUST, "Certificate trust with another server could not be established"},
    {FED_DIAG_CANNOT_ROUTE, "Cannot route this type of SIP request to or from federated partners"},
    {FED_DIAG_PREV_HOP_SILENT, "Previous hop federated peer did not report diagnostic information"},
    {FED_DIAG_TLS_NEGOTIATION, "Failed to complete TLS negotiation with a federated peer server"},
};

const char *fed_diag_reason(int code)
{
    for (size_t i = 0; i < sizeof diag_codes / sizeof diag_codes[0]; i++) {
        if (diag_codes[i].code == code)
            return diag_codes[i].reason;
    }
    return NULL;
}

/* RFC 3261 token characters */
static bool is_token_char(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-.!%*_+`'~", c) != NULL;
}

static bool is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s; s++) {
        if (!is_token_char((unsigned char)*s))
            return false;
    }
    return true;
}

/* Length of the valid UTF-8 sequence starting at s (s[0] >= 0x80), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s)
{
    size_t n;
    uint32_t cp;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

struct out {
    char *buf;
    size_t size;
    size_t len;
    bool full;
};

static void out_bytes(struct out *o, const char *s, size_t n)
{
    if (o->full || o->len + n >= o->size) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s)
{
    out_bytes(o, s, strlen(s));
}

static void out_quoted(struct out *o, const char *v)
{
    const unsigned char *p = (const unsigned char *)v;
    out_bytes(o, "\"", 1);
    while (*p) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            out_bytes(o, esc, 2);
            p++;
        } else if (*p < 0x20 || *p == 0x7F) {
            out_bytes(o, " ", 1);
            p++;
        } else if (*p < 0x80) {
            out_bytes(o, (const char *)p, 1);
            p++;
        } else {
            size_t n = utf8_seq_len(p);
            if (n == 0) {
                out_bytes(o, "?", 1);
                p++;
            } else {
                out_bytes(o, (const char *)p, n);
                p += n;
            }
        }
    }
    out_bytes(o, "\"", 1);
}

int fed_diag_build(char *buf, size_t size, int code, const char *reason,
                   const struct fed_diag_param *params, size_t n_params)
{
    if (buf == NULL || size == 0)
        return FED_DIAG_ERR_ARG;
    buf[0] = '\0';
    if (code < 1 || code > 999999999 || (n_params > 0 && params == NULL))
        return FED_DIAG_ERR_ARG;
    for (size_t i = 0; i < n_params; i++) {
        if (!is_token(params[i].name) || params[i].value == NULL)
            return FED_DIAG_ERR_ARG;
    }
    if (reason == NULL)
        reason = fed_diag_reason(code);

    struct out o = {buf, size, 0, false};
    char num[16];
    int n = 0;
    for (int c = code; c > 0; c /= 10)
        num[n++] = (char)('0' + c % 10);
    for (int i = n - 1; i >= 0; i--)
        out_bytes(&o, &num[i], 1);
    if (reason != NULL) {
        out_str(&o, ";reason=");
        out_quoted(&o, reason);
    }
    for (size_t i = 0; i < n_params; i++) {
        out_str(&o, ";");
        out_str(&o, params[i].name);
        out_str(&o, "=");
        out_quoted(&o, params[i].value);
    }
    if (o.full) {
        buf[0] = '\0';
        return FED_DIAG_ERR_SPACE;
    }
    buf[o.len] = '\0';
    return (int)o.len;
}

/* ---- parser ------------------------------------------------------------------------ */

struct scan {
    const unsigned char *s;
    size_t len;
    size_t i;
};

static void skip_ws(struct scan *sc)
{
    while (sc->i < sc->len && (sc->s[sc->i] == ' ' || sc->s[sc->i] == '\t'))
        sc->i++;
}

static bool at(const struct scan *sc, char c)
{
    return sc->i < sc->len && sc->s[sc->i] == (unsigned char)c;
}

static bool is_bare_char(unsigned char c)
{
    return c > 0x20 && c < 0x7F && c != ';' && c != ',' && c != '"' && c != '\\';
}

/* Scans a quoted-string starting at the opening quote; the view excludes quotes. */
static bool scan_quoted(struct scan *sc, fed_diag_str_t *v)
{
    sc->i++; /* opening quote */
    size_t start = sc->i;
    while (sc->i < sc->len) {
        unsigned char c = sc->s[sc->i];
        if (c == '"') {
            v->s = (const char *)sc->s + start;
            v->len = sc->i - start;
            sc->i++;
            return true;
        }
        if (c == '\\') {
            if (sc->i + 1 >= sc->len)
                return false;
            unsigned char e = sc->s[sc->i + 1];
            if (e == '\r' || e == '\n')
                return false;
            sc->i += 2;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            return false;
        sc->i++;
    }
    return false; /* unterminated */
}

fed_diag_status_t fed_diag_parse(const char *s, size_t len, struct fed_diag_parsed *out)
{
    if (out == NULL)
        return FED_DIAG_ERR_ARG;
    memset(out, 0, sizeof *out);
    if (s == NULL)
        return FED_DIAG_ERR_SYNTAX;

    struct scan sc = {(const unsigned char *)s, len, 0};
    bool too_many = false;

    skip_ws(&sc);
    size_t digits = 0;
    long code = 0;
    while (sc.i < sc.len && sc.s[sc.i] >= '0' && sc.s[sc.i] <= '9') {
        if (++digits > 9)
            return FED_DIAG_ERR_SYNTAX;
        code = code * 10 + (sc.s[sc.i] - '0');
        sc.i++;
    }
    if (digits == 0)
        return FED_DIAG_ERR_SYNTAX;
    out->code = (int)code;

    for (;;) {
        skip_ws(&sc);
        if (sc.i == sc.len)
            break;
        if (!at(&sc, ';'))
            return FED_DIAG_ERR_SYNTAX;
        sc.i++;
        skip_ws(&sc);
        if (sc.i == sc.len)
            break; /* a trailing ';' */

        fed_diag_str_t name = {(const char *)sc.s + sc.i, 0};
        while (sc.i < sc.len && is_token_char(sc.s[sc.i]))
            sc.i++;
        name.len = (size_t)((const char *)sc.s + sc.i - name.s);
        if (name.len == 0)
            return FED_DIAG_ERR_SYNTAX;

        fed_diag_str_t value = {NULL, 0};
        bool quoted = false;
        skip_ws(&sc);
        if (at(&sc, '=')) {
            sc.i++;
            skip_ws(&sc);
            if (at(&sc, '"')) {
                if (!scan_quoted(&sc, &value))
                    return FED_DIAG_ERR_SYNTAX;
                quoted = true;
            } else {
                value.s = (const char *)sc.s + sc.i;
                while (sc.i < sc.len && is_bare_char(sc.s[sc.i]))
                    sc.i++;
                value.len = (size_t)((const char *)sc.s + sc.i - value.s);
                if (value.len == 0)
                    return FED_DIAG_ERR_SYNTAX;
            }
        }

        if (out->n_params == FED_DIAG_MAX_PARAMS) {
            too_many = true;
            continue;
        }
        size_t k = out->n_params++;
        out->params[k].name = name;
        out->params[k].value = value;
        out->params[k].quoted = quoted;
        if (out->reason.s == NULL && value.s != NULL && name.len == 6 &&
            strncasecmp(name.s, "reason", 6) == 0)
            out->reason = value;
    }
    return too_many ? FED_DIAG_ERR_TOO_MANY : FED_DIAG_OK;
}

fed_diag_str_t fed_diag_param(const struct fed_diag_parsed *p, const char *name)
{
    fed_diag_str_t none = {NULL, 0};
    if (p == NULL || name == NULL)
        return none;
    size_t nlen = strlen(name);
    for (size_t i = 0; i < p->n_params && i < FED_DIAG_MAX_PARAMS; i++) {
        if (p->params[i].name.len == nlen && strncasecmp(p->params[i].name.s, name, nlen) == 0)
            return p->params[i].value;
    }
    return none;
}

int fed_diag_unescape(fed_diag_str_t v, char *buf, size_t size)
{
    if (buf == NULL || size == 0)
        return FED_DIAG_ERR_ARG;
    size_t n = 0;
    for (size_t i = 0; v.s != NULL && i < v.len; i++) {
        char c = v.s[i];
        if (c == '\\' && i + 1 < v.len)
            c = v.s[++i];
        if (n + 1 >= size) {
            buf[n] = '\0';
            return FED_DIAG_ERR_SPACE;
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    return (int)n;
}
