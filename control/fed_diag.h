/* The ms-diagnostics header of Microsoft Lync / Skype for Business edges.
 *
 * Federated Microsoft edges answer federation failures with `504 Server time-out`
 * plus a header such as
 *
 *   ms-diagnostics: 1009;reason="No match for domain in DNS SRV results";
 *                   domain="cms.example.com";fqdn1="sip.sub.cms.example.com:5061";
 *                   source="sip.example.com"
 *
 * (one line on the wire). confnode sends the same header when it refuses a
 * federated request, and reads the ones it receives so the reason is not lost.
 * The same syntax is used by `ms-diagnostics-public`.
 *
 * Value syntax, as built and as accepted:
 *   value  = SWS code *( SWS ";" SWS param ) SWS [";" SWS]
 *   code   = 1*9DIGIT
 *   param  = name SWS "=" SWS ( quoted-string / bare-value ) / name
 *   name   = token (RFC 3261)
 *   bare-value = 1*( any visible ASCII except ";" "," DQUOTE "\" )
 * A quoted-string may hold `\"` and `\\` escapes and UTF-8. */
#ifndef FED_DIAG_H
#define FED_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#define FED_DIAG_HEADER "ms-diagnostics"
#define FED_DIAG_HEADER_PUBLIC "ms-diagnostics-public"

/* Codes seen from Microsoft edges in the field (reason texts in fed_diag_reason). */
#define FED_DIAG_DNS_SRV_UNRESOLVED 1008 /* Unable to resolve DNS SRV record */
#define FED_DIAG_DNS_SRV_NO_MATCH 1009   /* No match for domain in DNS SRV results */
#define FED_DIAG_CERT_TRUST 1010         /* Certificate trust ... could not be established */
#define FED_DIAG_CANNOT_ROUTE 1027       /* Cannot route this type of SIP request ... */
#define FED_DIAG_PREV_HOP_SILENT 1034    /* Previous hop federated peer did not report ... */
#define FED_DIAG_TLS_NEGOTIATION 1047    /* Failed to complete TLS negotiation ... */

/* ErrorType text for FED_DIAG_CERT_TRUST when the name is missing. */
#define FED_DIAG_ERRTYPE_NO_FQDN "The peer certificate does not contain a matching FQDN"

typedef enum {
    FED_DIAG_OK = 0,
    FED_DIAG_ERR_SYNTAX = -1,   /* not an ms-diagnostics value */
    FED_DIAG_ERR_TOO_MANY = -2, /* parsed, but more than FED_DIAG_MAX_PARAMS params */
    FED_DIAG_ERR_SPACE = -3,    /* the output buffer is too small */
    FED_DIAG_ERR_ARG = -4,      /* bad argument (NULL, code out of range, bad name) */
} fed_diag_status_t;

/* The reason text for a known code, NULL for an unknown one. */
const char *fed_diag_reason(int code);

/* One parameter for the builder. `name` must be a token; `value` is any text and
 * is always written as a quoted-string (`"` and `\` escaped; control characters,
 * CR and LF included, become spaces; invalid UTF-8 bytes become '?'). */
struct fed_diag_param {
    const char *name;
    const char *value;
};

/* Builds the header value (without "ms-diagnostics: ") into buf[size]:
 *   <code>;reason="<reason>"[;<name>="<value>"]...
 * `reason` NULL means the table text for `code` (no reason parameter when the code
 * is unknown). `code` must be 1..999999999. Returns the length written (buf is
 * NUL-terminated), FED_DIAG_ERR_SPACE when it does not fit (buf is then ""), or
 * FED_DIAG_ERR_ARG. */
int fed_diag_build(char *buf, size_t size, int code, const char *reason,
                   const struct fed_diag_param *params, size_t n_params);

/* A view into the parsed text (never NUL-terminated). */
typedef struct fed_diag_str {
    const char *s;
    size_t len;
} fed_diag_str_t;

#define FED_DIAG_MAX_PARAMS 16

struct fed_diag_parsed {
    int code;
    fed_diag_str_t reason; /* the reason parameter's raw value (escapes kept), or {NULL,0} */
    size_t n_params;       /* every parameter, reason included, in order */
    struct {
        fed_diag_str_t name;
        fed_diag_str_t value; /* inside the quotes, escapes kept; {NULL,0} for a bare name */
        bool quoted;
    } params[FED_DIAG_MAX_PARAMS];
};

/* Parses one header value (s[0..len-1], not NUL-terminated, not modified). Views in
 * *out point into s. Returns FED_DIAG_OK, FED_DIAG_ERR_SYNTAX (out->code and the
 * params before the error may be set), or FED_DIAG_ERR_TOO_MANY (the first
 * FED_DIAG_MAX_PARAMS params are in *out, the rest was checked for syntax and
 * dropped), or FED_DIAG_ERR_ARG when out is NULL. Never reads outside
 * s[0..len-1]. */
fed_diag_status_t fed_diag_parse(const char *s, size_t len, struct fed_diag_parsed *out);

/* The value of parameter `name` (case-insensitive), or {NULL,0} when absent. */
fed_diag_str_t fed_diag_param(const struct fed_diag_parsed *p, const char *name);

/* Copies a value with its escapes resolved into buf[size] (NUL-terminated).
 * Returns the length, or FED_DIAG_ERR_SPACE when it does not fit (buf is then the
 * truncated text, still NUL-terminated). */
int fed_diag_unescape(fed_diag_str_t v, char *buf, size_t size);

#endif
