/* Federation naming rules (see fed_names.h). */
#include "fed_names.h"

#include <arpa/inet.h>
#include <string.h>

static size_t name_len(const char *name, size_t len)
{
    if (name == NULL)
        return 0;
    return len == FED_NAME_NUL ? strlen(name) : len;
}

/* Length without one trailing dot. */
static size_t strip_dot(const char *name, size_t len)
{
    if (len > 0 && name[len - 1] == '.')
        len--;
    return len;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

fed_name_status_t fed_name_check(const char *name, size_t len, unsigned flags)
{
    len = strip_dot(name, name_len(name, len));
    if (len == 0)
        return FED_NAME_EMPTY;
    if (len > FED_NAME_MAX)
        return FED_NAME_TOO_LONG;

    size_t labels = 0;
    size_t start = 0;
    bool last_numeric = false;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && name[i] != '.')
            continue;
        size_t llen = i - start;
        if (llen == 0)
            return FED_NAME_EMPTY_LABEL;
        if (llen > FED_LABEL_MAX)
            return FED_NAME_LABEL_TOO_LONG;
        last_numeric = true;
        for (size_t k = start; k < i; k++) {
            char c = name[k];
            if (c == '_' && (flags & FED_NAME_ALLOW_UNDERSCORE)) {
                last_numeric = false;
                continue;
            }
            if (c != '-' && !is_alnum(c))
                return FED_NAME_BAD_CHAR;
            if (!(c >= '0' && c <= '9'))
                last_numeric = false;
        }
        if (name[start] == '-' || name[i - 1] == '-')
            return FED_NAME_HYPHEN_EDGE;
        labels++;
        start = i + 1;
    }
    if (labels < 2 && !(flags & FED_NAME_ALLOW_SINGLE_LABEL))
        return FED_NAME_SINGLE_LABEL;
    if (last_numeric)
        return FED_NAME_NUMERIC_TLD;
    return FED_NAME_OK;
}

const char *fed_name_status_str(fed_name_status_t st)
{
    switch (st) {
    case FED_NAME_OK:
        return "valid";
    case FED_NAME_EMPTY:
        return "the name is empty";
    case FED_NAME_TOO_LONG:
        return "the name is longer than 253 characters";
    case FED_NAME_EMPTY_LABEL:
        return "a label is empty (leading dot or two dots in a row)";
    case FED_NAME_LABEL_TOO_LONG:
        return "a label is longer than 63 characters";
    case FED_NAME_BAD_CHAR:
        return "only letters, digits, hyphens and dots are allowed";
    case FED_NAME_HYPHEN_EDGE:
        return "a label starts or ends with a hyphen";
    case FED_NAME_SINGLE_LABEL:
        return "a domain needs at least two labels";
    case FED_NAME_NUMERIC_TLD:
        return "the last label is all digits";
    }
    return "unknown name status";
}

bool fed_name_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    alen = strip_dot(a, name_len(a, alen));
    blen = strip_dot(b, name_len(b, blen));
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (lower(a[i]) != lower(b[i]))
            return false;
    }
    return true;
}

int fed_name_normalize(const char *name, size_t len, unsigned flags, char *out, size_t size)
{
    if (out == NULL || size == 0)
        return -1;
    out[0] = '\0';
    len = name_len(name, len);
    if (fed_name_check(name, len, flags) != FED_NAME_OK)
        return -1;
    len = strip_dot(name, len);
    if (len + 1 > size)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = lower(name[i]);
    out[len] = '\0';
    return (int)len;
}

size_t fed_name_parent(const char *name, size_t len, const char **parent)
{
    *parent = NULL;
    len = strip_dot(name, name_len(name, len));
    const char *dot = len > 0 ? memchr(name, '.', len) : NULL;
    if (dot == NULL || (size_t)(dot - name) + 1 >= len)
        return 0;
    *parent = dot + 1;
    return len - (size_t)(dot - name) - 1;
}

fed_strict_t fed_name_strict(const char *domain, size_t dlen, const char *target, size_t tlen)
{
    dlen = name_len(domain, dlen);
    tlen = name_len(target, tlen);
    if (fed_name_check(domain, dlen, 0) != FED_NAME_OK ||
        fed_name_check(target, tlen, FED_NAME_ALLOW_SINGLE_LABEL) != FED_NAME_OK)
        return FED_STRICT_INVALID;
    dlen = strip_dot(domain, dlen);
    tlen = strip_dot(target, tlen);
    if (fed_name_equal(domain, dlen, target, tlen))
        return FED_STRICT_SELF;
    /* in the domain: the target ends with "." + domain */
    if (tlen <= dlen + 1 || target[tlen - dlen - 1] != '.' ||
        !fed_name_equal(target + (tlen - dlen), dlen, domain, dlen))
        return FED_STRICT_OTHER;
    /* directly in it: the part before ".domain" is a single label */
    if (memchr(target, '.', tlen - dlen - 1) != NULL)
        return FED_STRICT_SUBDOMAIN;
    return FED_STRICT_CHILD;
}

const char *fed_strict_str(fed_strict_t s)
{
    switch (s) {
    case FED_STRICT_SELF:
        return "the domain itself";
    case FED_STRICT_CHILD:
        return "a host directly in the domain";
    case FED_STRICT_SUBDOMAIN:
        return "a subdomain of the domain";
    case FED_STRICT_OTHER:
        return "outside the domain";
    case FED_STRICT_INVALID:
        return "not a valid name";
    }
    return "unknown";
}

static bool put_host(const char *prefix, const char *domain, size_t dlen, char *out)
{
    size_t plen = strlen(prefix);
    if (plen + 1 + dlen > FED_NAME_MAX)
        return false;
    memcpy(out, prefix, plen);
    out[plen] = '.';
    for (size_t i = 0; i < dlen; i++)
        out[plen + 1 + i] = lower(domain[i]);
    out[plen + 1 + dlen] = '\0';
    return true;
}

size_t fed_name_fallback_hosts(const char *domain, size_t len, unsigned flags,
                               char out[][FED_NAME_BUF], size_t max)
{
    static const char *const internal_external[] = {"sipinternal", "sipexternal"};
    const char *prefixes[3];
    size_t np = 0;

    len = name_len(domain, len);
    if (fed_name_check(domain, len, 0) != FED_NAME_OK)
        return 0;
    len = strip_dot(domain, len);
    if (flags & FED_FALLBACK_SIP)
        prefixes[np++] = "sip";
    if (flags & FED_FALLBACK_INTERNAL_EXTERNAL) {
        prefixes[np++] = internal_external[0];
        prefixes[np++] = internal_external[1];
    }
    size_t n = 0;
    for (size_t i = 0; i < np && n < max; i++) {
        if (!put_host(prefixes[i], domain, len, out[n]))
            return 0;
        n++;
    }
    return n;
}

bool fed_name_is_ip_literal(const char *name, size_t len)
{
    char buf[64];
    unsigned char addr[16];

    len = name_len(name, len);
    if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
        name++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf)
        return false;
    memcpy(buf, name, len);
    buf[len] = '\0';
    return inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1;
}
