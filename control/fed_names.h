/* Federation naming rules: domain name syntax, name comparison, strict DNS naming
 * and the fall-back host names Lync phones try.
 *
 * Every function here is pure: no allocation, no global state, inputs are read and
 * never modified. Names are given as (pointer, length) so views into a SIP message
 * can be passed without copying; a name never needs to be NUL-terminated. A length
 * of FED_NAME_NUL means "up to the first NUL" (for C strings).
 *
 * Comparison is case-insensitive (ASCII) and tolerates one trailing dot on either
 * side ("sip.example.com." equals "SIP.example.com"). Internationalised names must
 * already be in A-label (xn--) form; bytes outside ASCII are refused. */
#ifndef FED_NAMES_H
#define FED_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* Longest name in text form without the trailing dot (RFC 1035: 255 octets on the
 * wire = 253 characters), and the buffer size that holds one with its NUL. */
#define FED_NAME_MAX 253
#define FED_NAME_BUF 256
#define FED_LABEL_MAX 63

/* Pass as a length to mean strlen(name). */
#define FED_NAME_NUL ((size_t)-1)

typedef enum {
    FED_NAME_OK = 0,
    FED_NAME_EMPTY,          /* "" or "." */
    FED_NAME_TOO_LONG,       /* more than FED_NAME_MAX characters */
    FED_NAME_EMPTY_LABEL,    /* leading dot, or two dots in a row */
    FED_NAME_LABEL_TOO_LONG, /* a label longer than 63 characters */
    FED_NAME_BAD_CHAR,       /* not a letter, digit or hyphen ('*', '_', space, UTF-8...) */
    FED_NAME_HYPHEN_EDGE,    /* a label starts or ends with '-' */
    FED_NAME_SINGLE_LABEL,   /* "localhost": a domain needs at least two labels */
    FED_NAME_NUMERIC_TLD,    /* the last label is all digits (looks like an address) */
} fed_name_status_t;

/* Flags for fed_name_check(). */
#define FED_NAME_ALLOW_SINGLE_LABEL 0x1u /* accept "localhost"-style names */
#define FED_NAME_ALLOW_UNDERSCORE 0x2u   /* accept '_' (SRV owner names: _sip._tcp...) */

/* Checks the syntax of a host or domain name (RFC 1123 letters-digits-hyphen
 * labels, one optional trailing dot). Returns FED_NAME_OK or the first problem
 * found. A wildcard ("*.example.com") is FED_NAME_BAD_CHAR. */
fed_name_status_t fed_name_check(const char *name, size_t len, unsigned flags);

/* A short English description of a status ("a label is empty"); never NULL. */
const char *fed_name_status_str(fed_name_status_t st);

/* True when a and b name the same host: ASCII case-insensitive, one trailing dot
 * ignored on each side. Two empty names are equal; syntax is not checked. */
bool fed_name_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Copies `name` into out[size] in canonical form: lowercase, without the trailing
 * dot, NUL-terminated. Returns the canonical length, or -1 when the name is not
 * valid (fed_name_check with `flags`) or does not fit (out is then ""). */
int fed_name_normalize(const char *name, size_t len, unsigned flags, char *out, size_t size);

/* The parent of a name: for "sip.example.com" *parent points at "example.com" inside
 * `name` and the return value is its length (trailing dot excluded). Returns 0 and
 * sets *parent to NULL for a single-label or empty name. */
size_t fed_name_parent(const char *name, size_t len, const char **parent);

typedef enum {
    FED_STRICT_SELF = 0,      /* target is the domain itself: allowed */
    FED_STRICT_CHILD = 1,     /* target is a host directly in the domain: allowed */
    FED_STRICT_SUBDOMAIN = 2, /* target is deeper in the domain (sip.sub.example.com) */
    FED_STRICT_OTHER = 3,     /* target is outside the domain (sip.other.com) */
    FED_STRICT_INVALID = 4,   /* domain or target is not a valid name */
} fed_strict_t;

/* Strict DNS naming, as Microsoft edges apply it to the SRV target found for
 * `domain`: the target must be the domain itself or a host directly in it
 * (sip.example.com for example.com). Case-insensitive and trailing-dot tolerant.
 * "fooexample.com" is FED_STRICT_OTHER for "example.com" (labels are compared, not
 * suffixes). */
fed_strict_t fed_name_strict(const char *domain, size_t dlen, const char *target, size_t tlen);

/* True for FED_STRICT_SELF and FED_STRICT_CHILD. */
static inline bool fed_strict_ok(fed_strict_t s)
{
    return s == FED_STRICT_SELF || s == FED_STRICT_CHILD;
}

/* "the domain itself", "a host directly in the domain", "a subdomain of the
 * domain", "outside the domain", "not a valid name". Never NULL. */
const char *fed_strict_str(fed_strict_t s);

/* Flags for fed_name_fallback_hosts(). */
#define FED_FALLBACK_SIP 0x1u               /* sip.<D> */
#define FED_FALLBACK_INTERNAL_EXTERNAL 0x2u /* sipinternal.<D>, sipexternal.<D> */

/* Writes the fall-back host names for `domain` into out[0..max-1] (lowercase, no
 * trailing dot), in the order Lync clients try them: sip.<D>, then (with
 * FED_FALLBACK_INTERNAL_EXTERNAL) sipinternal.<D>, sipexternal.<D>. Returns the
 * number written; 0 when the domain is not a valid name or a host name would be too
 * long. */
size_t fed_name_fallback_hosts(const char *domain, size_t len, unsigned flags,
                               char out[][FED_NAME_BUF], size_t max);

/* True when the text is an IPv4 dotted quad or an IPv6 address (with or without
 * brackets); such "domains" are not looked up in DNS. */
bool fed_name_is_ip_literal(const char *name, size_t len);

#endif
