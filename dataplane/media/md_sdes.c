/* SDP a=crypto parsing and formatting. See md_sdes.h for the contract.
 *
 * The parser is a cursor over s[0..len): every step checks `p < end` before reading. */
#include "md_sdes.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

static const struct suite_info {
    const char *name;
    uint8_t key_len;
    uint8_t salt_len;
} suites[MD_SUITE_COUNT] = {
    [MD_SUITE_AES_CM_128_HMAC_SHA1_80] = {"AES_CM_128_HMAC_SHA1_80", 16, 14},
    [MD_SUITE_AES_CM_128_HMAC_SHA1_32] = {"AES_CM_128_HMAC_SHA1_32", 16, 14},
    [MD_SUITE_AEAD_AES_128_GCM] = {"AEAD_AES_128_GCM", 16, 12},
    [MD_SUITE_AEAD_AES_256_GCM] = {"AEAD_AES_256_GCM", 32, 12},
};

static bool suite_ok(md_srtp_suite_t s)
{
    return (unsigned)s < MD_SUITE_COUNT;
}

const char *md_suite_name(md_srtp_suite_t suite)
{
    return suite_ok(suite) ? suites[suite].name : NULL;
}

unsigned md_suite_key_len(md_srtp_suite_t suite)
{
    return suite_ok(suite) ? suites[suite].key_len : 0;
}

unsigned md_suite_salt_len(md_srtp_suite_t suite)
{
    return suite_ok(suite) ? suites[suite].salt_len : 0;
}

md_status_t md_suite_from_name(const char *name, size_t len, md_srtp_suite_t *suite)
{
    for (unsigned i = 0; i < MD_SUITE_COUNT; i++) {
        if (strlen(suites[i].name) == len && memcmp(suites[i].name, name, len) == 0) {
            *suite = (md_srtp_suite_t)i;
            return MD_OK;
        }
    }
    return MD_ERR_UNSUPPORTED;
}

/* ---- base64 (RFC 4648, standard alphabet) -------------------------------------- */

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes s[0..len) into out (capacity cap). '=' padding is optional but, when
 * present, must complete the last quantum. Returns the decoded length or -1. */
static int b64_decode(const char *s, size_t len, uint8_t *out, size_t cap)
{
    size_t pad = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0))
        return -1;
    size_t n = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_val(s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap)
                return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* the leftover bits of a partial quantum must be zero (canonical encoding) */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (int)n;
}

static size_t b64_encode(const uint8_t *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    return o;
}

/* ---- parser -------------------------------------------------------------------- */

/* Parses a decimal number of 1..max_digits digits at [*p, end) not above max. */
static bool parse_dec(const char **p, const char *end, unsigned max_digits, uint64_t max,
                      uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0;
    unsigned digits = 0;
    while (q < end && *q >= '0' && *q <= '9') {
        if (++digits > max_digits)
            return false;
        v = v * 10 + (uint64_t)(*q - '0');
        q++;
    }
    if (digits == 0 || v > max)
        return false;
    *p = q;
    *out = v;
    return true;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static const char *token_end(const char *p, const char *end)
{
    while (p < end && !is_ws(*p))
        p++;
    return p;
}

/* lifetime: decimal or "2^N"; MKI: "value:length" */
static md_status_t parse_key_extras(const char *p, const char *end, struct md_crypto *c)
{
    bool have_lifetime = false, have_mki = false;
    while (p < end) {
        if (*p != '|')
            return MD_ERR_MALFORMED;
        p++;
        const char *field_end = memchr(p, '|', (size_t)(end - p));
        if (field_end == NULL)
            field_end = end;
        const char *colon = memchr(p, ':', (size_t)(field_end - p));
        if (colon != NULL) {
            uint64_t v, l;
            if (have_mki || !parse_dec(&p, colon, 10, UINT32_MAX, &v) || p != colon)
                return MD_ERR_MALFORMED;
            p = colon + 1;
            if (!parse_dec(&p, field_end, 3, 128, &l) || p != field_end || l == 0)
                return MD_ERR_MALFORMED;
            if (l > 4)
                return MD_ERR_UNSUPPORTED;
            if (l < 4 && v >> (8 * l) != 0)
                return MD_ERR_MALFORMED; /* the value does not fit its length */
            c->mki = (uint32_t)v;
            c->mki_len = (uint8_t)l;
            have_mki = true;
        } else {
            uint64_t v;
            if (have_lifetime || have_mki)
                return MD_ERR_MALFORMED; /* lifetime comes before the MKI */
            if (field_end - p > 2 && p[0] == '2' && p[1] == '^') {
                p += 2;
                if (!parse_dec(&p, field_end, 2, 63, &v) || p != field_end)
                    return MD_ERR_MALFORMED;
                c->lifetime = (uint64_t)1 << v;
            } else {
                if (!parse_dec(&p, field_end, 19, UINT64_MAX / 10, &v) || p != field_end || v == 0)
                    return MD_ERR_MALFORMED;
                c->lifetime = v;
            }
            have_lifetime = true;
        }
        p = field_end;
    }
    return MD_OK;
}

md_status_t md_sdes_parse(const char *s, size_t len, struct md_crypto *out)
{
    const char *p = s, *end = s + len;
    struct md_crypto c;
    memset(&c, 0, sizeof c);

    while (end > p && (is_ws(end[-1]) || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    static const char pfx1[] = "a=crypto:", pfx2[] = "crypto:";
    if ((size_t)(end - p) >= sizeof pfx1 - 1 && memcmp(p, pfx1, sizeof pfx1 - 1) == 0)
        p += sizeof pfx1 - 1;
    else if ((size_t)(end - p) >= sizeof pfx2 - 1 && memcmp(p, pfx2, sizeof pfx2 - 1) == 0)
        p += sizeof pfx2 - 1;

    /* tag: 1*9DIGIT */
    uint64_t tag;
    if (!parse_dec(&p, end, 9, 999999999, &tag) || p >= end || !is_ws(*p))
        return MD_ERR_MALFORMED;
    c.tag = (uint32_t)tag;

    /* crypto-suite */
    p = skip_ws(p, end);
    const char *suite_end = token_end(p, end);
    if (suite_end == p || suite_end >= end)
        return MD_ERR_MALFORMED;
    md_status_t st = md_suite_from_name(p, (size_t)(suite_end - p), &c.suite);
    if (st != MD_OK)
        return st;
    c.key_len = (uint8_t)(md_suite_key_len(c.suite) + md_suite_salt_len(c.suite));

    /* key-params: "inline:" key-info */
    p = skip_ws(suite_end, end);
    const char *kp_end = token_end(p, end);
    if (memchr(p, ';', (size_t)(kp_end - p)) != NULL)
        return MD_ERR_UNSUPPORTED;
    static const char method[] = "inline:";
    if ((size_t)(kp_end - p) < sizeof method - 1)
        return MD_ERR_MALFORMED;
    if (memcmp(p, method, sizeof method - 1) != 0)
        return MD_ERR_UNSUPPORTED;
    p += sizeof method - 1;
    const char *b64_end = memchr(p, '|', (size_t)(kp_end - p));
    if (b64_end == NULL)
        b64_end = kp_end;
    uint8_t key[MD_SRTP_MAX_MASTER_LEN + 3];
    int klen = b64_decode(p, (size_t)(b64_end - p), key, sizeof key);
    if (klen != c.key_len)
        return MD_ERR_MALFORMED;
    memcpy(c.key, key, (size_t)klen);
    st = parse_key_extras(b64_end, kp_end, &c);
    if (st != MD_OK)
        return st;

    /* session-params */
    p = skip_ws(kp_end, end);
    while (p < end) {
        const char *tok_end = token_end(p, end);
        static const char wsh[] = "WSH=";
        if ((size_t)(tok_end - p) > sizeof wsh - 1 && memcmp(p, wsh, sizeof wsh - 1) == 0) {
            uint64_t v;
            p += sizeof wsh - 1;
            if (!parse_dec(&p, tok_end, 10, UINT32_MAX, &v) || p != tok_end || v < 64)
                return MD_ERR_MALFORMED;
            c.wsh = (uint32_t)v;
        } else {
            return MD_ERR_UNSUPPORTED;
        }
        p = skip_ws(tok_end, end);
    }
    *out = c;
    return MD_OK;
}

/* ---- formatter ----------------------------------------------------------------- */

int md_sdes_format(char *buf, size_t cap, const struct md_crypto *c)
{
    if (!suite_ok(c->suite) || c->key_len != suites[c->suite].key_len + suites[c->suite].salt_len ||
        c->mki_len > 4 || c->tag > 999999999)
        return MD_ERR_PARAM;
    char b64[((MD_SRTP_MAX_MASTER_LEN + 2) / 3) * 4 + 1];
    size_t n = b64_encode(c->key, c->key_len, b64);
    b64[n] = '\0';

    char extras[64] = "";
    size_t e = 0;
    if (c->lifetime != 0) {
        uint64_t lt = c->lifetime;
        if ((lt & (lt - 1)) == 0)
            e += (size_t)snprintf(extras + e, sizeof extras - e, "|2^%d", __builtin_ctzll(lt));
        else
            e += (size_t)snprintf(extras + e, sizeof extras - e, "|%llu", (unsigned long long)lt);
    }
    if (c->mki_len > 0)
        e += (size_t)snprintf(extras + e, sizeof extras - e, "|%u:%u", (unsigned)c->mki,
                              (unsigned)c->mki_len);
    char wsh[24] = "";
    if (c->wsh != 0)
        snprintf(wsh, sizeof wsh, " WSH=%u", (unsigned)c->wsh);
    int w = snprintf(buf, cap, "%u %s inline:%s%s%s", (unsigned)c->tag, suites[c->suite].name, b64,
                     extras, wsh);
    if (w < 0 || (size_t)w >= cap)
        return MD_ERR_NOSPACE;
    return w;
}

md_status_t md_crypto_keygen(struct md_crypto *c)
{
    if (!suite_ok(c->suite))
        return MD_ERR_PARAM;
    c->key_len = (uint8_t)(suites[c->suite].key_len + suites[c->suite].salt_len);
    if (RAND_bytes(c->key, c->key_len) != 1)
        return MD_ERR_CRYPTO;
    return MD_OK;
}
