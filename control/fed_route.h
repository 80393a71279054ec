/* Federation routing decisions: zones, search rules, privacy and security modes.
 *
 * DESIGN
 * The operator's vocabulary (Expressway / Pexip terms) becomes one immutable object:
 * fed_router_new() checks and compiles a struct fed_route_conf once at boot (rules
 * sorted by priority, regular expressions compiled, privacy lists normalised and
 * sorted), and every worker then calls fed_route_decide() on the same router without
 * locks: the router is never written after fed_router_new() returns. Each regular
 * expression is compiled once per worker (fed_router_env.n_workers) because glibc's
 * regexec() takes a lock inside the compiled pattern; a worker passes its index in
 * the request and never shares a pattern with another worker.
 *
 * fed_route_decide() is pure and never allocates: the caller provides the result
 * with fixed arrays, and the strings it points at (zone and rule names, addresses)
 * belong to the router. It does no I/O: DNS, TLS and certificate checks are the
 * proxy's work, on the ordered list of targets the decision gives.
 *
 * Zones
 *   local       our VMR domains (fed_router_env.local_domains); implicit.
 *   neighbour   a fixed peer: a list of host[:port] addresses, transport, security
 *               mode, client certificates, SRV selection mode.
 *   dns         the one DNS zone: resolve the destination domain
 *               (_sipfederationtls._tcp first, then _sips._tcp); security mode,
 *               strict naming, fall-back to sip.<domain>, SRV selection mode.
 *   static      static routes, consulted by the DNS zone: a domain with static
 *               routes is sent to their addresses (equal priority) and never looked
 *               up in DNS, even when none of them answers (no_dns_fallback).
 *
 * Search rules are tried in priority order (lower first; ties keep config order),
 * each filtered by source zone and request type, then matched against the alias
 * (user@domain of the Request-URI): any alias, or a pattern (exact, prefix, or a
 * POSIX extended regular expression matching the whole alias; case is ignored).
 * A matching rule may replace the alias (\1..\9 back-references for a regex); the
 * replaced alias is what its target zone receives and what later rules see. A
 * match adds a target; "stop" ends the search there, "continue" goes on to the
 * next rule. The proxy tries the targets in order.
 *
 * Privacy mode (off / allow list / deny list, exact domain names) applies to the
 * federated side: the From domain of a request arriving from the DNS zone, and the
 * destination domain of a DNS-zone target. Static-route domains are allowed
 * implicitly; neighbour zones are trusted by configuration. The default is an allow
 * list with no entries: a new node federates with nobody. A refusal is answered
 * 403 with ms-diagnostics 1027 ("Cannot route this type of SIP request to or from
 * federated partners").
 *
 * In-dialog requests are not routed by rules: they follow their route set. */
#ifndef FED_ROUTE_H
#define FED_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fed_dns.h"
#include "fed_names.h"

/* ---- sizes ------------------------------------------------------------------------ */

#define FED_ZONE_NAME_BUF 48 /* zone names: 1..47 characters */
#define FED_RULE_NAME_BUF 48 /* rule names: 1..47 characters */
#define FED_PATTERN_BUF 256  /* patterns and replace strings: up to 255 characters */
#define FED_ALIAS_MAX 255    /* user@domain, without the NUL */
#define FED_ALIAS_BUF (FED_ALIAS_MAX + 1)
#define FED_ROUTE_MAX_ADDRS 8 /* peers of a neighbour zone, addresses of a static route */
#define FED_ROUTE_MAX_NEIGHBOURS 64
#define FED_ROUTE_MAX_STATIC 1024
#define FED_ROUTE_MAX_RULES 128 /* also the size of fed_route_result.tried */
#define FED_ROUTE_MAX_LIST 4096 /* entries of the allow list, and of the deny list */
#define FED_ROUTE_MAX_TARGETS 8
#define FED_ROUTE_DIAG_BUF 512

/* Reserved zone names: never a neighbour's name. */
#define FED_ZONE_LOCAL "local"
#define FED_ZONE_DNS "dns"
#define FED_ZONE_ANY "any" /* search rule source: every zone */

/* ---- vocabulary ----------------------------------------------------------------------- */

typedef enum {
    FED_SEC_TLS_REQUIRED = 0, /* TLS only (the default, recommended) */
    FED_SEC_TLS_OPTIONAL = 1, /* TLS first, TCP when TLS cannot be used */
    FED_SEC_NO_TLS = 2,       /* TCP or UDP, never TLS */
} fed_security_t;

typedef enum {
    FED_PRIVACY_ALLOW_LIST = 0, /* only listed domains (the default; empty: nobody) */
    FED_PRIVACY_DENY_LIST = 1,  /* every domain but the listed ones */
    FED_PRIVACY_OFF = 2,        /* every domain */
} fed_privacy_t;

typedef enum {
    FED_REQ_AUTO = 0,  /* in a request: derive from the method (fed_req_type_of_method) */
    FED_REQ_CALLS = 1, /* INVITE and its dialog: ACK, CANCEL, BYE, PRACK, UPDATE, REFER */
    FED_REQ_IMP = 2,   /* Microsoft IM and Presence: MESSAGE, SUBSCRIBE, NOTIFY, INFO,
                          OPTIONS, PUBLISH */
    FED_REQ_OTHER = 3, /* anything else (REGISTER, unknown methods): only "all" rules */
    FED_REQ_ALL = 4,   /* in a rule: every request type */
} fed_req_type_t;

typedef enum {
    FED_MODE_ANY_ALIAS = 0,
    FED_MODE_PATTERN = 1,
} fed_rule_mode_t;

typedef enum {
    FED_PATTERN_EXACT = 0,  /* the whole alias, ignoring case */
    FED_PATTERN_PREFIX = 1, /* the alias starts with the pattern, ignoring case */
    FED_PATTERN_REGEX = 2,  /* POSIX extended regex matching the whole alias, ignoring case */
} fed_pattern_t;

typedef enum {
    FED_BEHAVIOUR_LEAVE = 0,
    FED_BEHAVIOUR_REPLACE = 1,
} fed_behaviour_t;

typedef enum {
    FED_ON_MATCH_STOP = 0,
    FED_ON_MATCH_CONTINUE = 1,
} fed_on_match_t;

typedef enum {
    FED_ZONE_KIND_LOCAL = 0,
    FED_ZONE_KIND_NEIGHBOUR = 1,
    FED_ZONE_KIND_DNS = 2,
    FED_ZONE_KIND_STATIC = 3, /* a static route, reached through the DNS zone */
} fed_zone_kind_t;

/* How the request reached us; decides the inbound security check. */
typedef enum {
    FED_ARRIVAL_UNKNOWN = 0, /* not checked (requests from the local zone) */
    FED_ARRIVAL_UDP = 1,
    FED_ARRIVAL_TCP = 2,
    FED_ARRIVAL_TLS = 3,  /* TLS, no verified client certificate */
    FED_ARRIVAL_MTLS = 4, /* TLS with a client certificate verified against tls.ca */
} fed_arrival_t;

/* ---- configuration (filled by node/config.c, or by hand) -------------------------- */

/* A transport or client-certificate setting derived from the security mode. */
#define FED_ROUTE_AUTO (-1)

/* host[:port]. host is a name or an IP literal (IPv6 without brackets). port 0: a
 * neighbour's host name is located by SRV (RFC 3263); otherwise 0 never appears
 * once checked (static routes and IP literals get 5061 for TLS, 5060 otherwise). */
struct fed_hostport {
    char host[FED_NAME_BUF];
    uint16_t port;
    bool is_ip;
};

struct fed_dns_zone_conf {
    int security;            /* fed_security_t; default FED_SEC_TLS_REQUIRED */
    int client_certificates; /* verify the peer's certificate; FED_ROUTE_AUTO: true with TLS */
    int strict_naming;       /* SRV target must be the domain or directly in it; default 1 */
    int fallback_hosts;      /* try sip.<domain> when no SRV target is usable; default 0 */
    int srv_mode;            /* fed_srv_mode_t; default FED_SRV_RFC2782 */
};

struct fed_neighbour_conf {
    char name[FED_ZONE_NAME_BUF];
    struct fed_hostport peers[FED_ROUTE_MAX_ADDRS];
    size_t n_peers;
    int transport;           /* fed_transport_t, or FED_ROUTE_AUTO: TLS unless no-tls (TCP) */
    int security;            /* fed_security_t */
    int client_certificates; /* 0, 1, or FED_ROUTE_AUTO */
    int srv_mode;            /* fed_srv_mode_t, for peers given without a port */
};

struct fed_static_route_conf {
    char domain[FED_NAME_BUF];
    struct fed_hostport addrs[FED_ROUTE_MAX_ADDRS];
    size_t n_addrs;
    int transport;           /* fed_transport_t or FED_ROUTE_AUTO */
    int security;            /* fed_security_t */
    int client_certificates; /* 0, 1, or FED_ROUTE_AUTO */
};

struct fed_rule_conf {
    char name[FED_RULE_NAME_BUF];
    uint32_t priority;              /* 1..65534; lower is tried first */
    int enabled;                    /* default 1 */
    char source[FED_ZONE_NAME_BUF]; /* "any" (default), "local", "dns", a neighbour */
    int type;                       /* fed_req_type_t: CALLS, IMP or ALL (default) */
    int mode;                       /* fed_rule_mode_t; default FED_MODE_PATTERN */
    int pattern_type;               /* fed_pattern_t */
    char pattern[FED_PATTERN_BUF];
    int behaviour; /* fed_behaviour_t */
    char replace[FED_PATTERN_BUF];
    int on_match;                   /* fed_on_match_t; default FED_ON_MATCH_STOP */
    char target[FED_ZONE_NAME_BUF]; /* "local", "dns", a neighbour; "" only with continue
                                       (a rule that rewrites and routes nowhere) */
};

struct fed_route_conf {
    struct fed_dns_zone_conf dns;
    struct fed_neighbour_conf *neighbours; /* malloc'd; fed_route_conf_free() */
    size_t n_neighbours;
    struct fed_static_route_conf *static_routes; /* malloc'd */
    size_t n_static_routes;
    struct fed_rule_conf *rules; /* malloc'd, config order */
    size_t n_rules;
    int privacy;                 /* fed_privacy_t; default FED_PRIVACY_ALLOW_LIST */
    char (*allow)[FED_NAME_BUF]; /* malloc'd */
    size_t n_allow;
    char (*deny)[FED_NAME_BUF]; /* malloc'd */
    size_t n_deny;
};

/* The defaults (no zones but the DNS zone, no rules, allow list with no entries).
 * Allocates nothing. */
void fed_route_conf_defaults(struct fed_route_conf *conf);

/* The defaults of one entry (priority 100, enabled, source any, type all, ...). */
void fed_rule_conf_defaults(struct fed_rule_conf *rule);
void fed_neighbour_conf_defaults(struct fed_neighbour_conf *zone);
void fed_static_route_conf_defaults(struct fed_static_route_conf *route);

/* Frees the lists and leaves them empty; the rest is kept. Accepts NULL. */
void fed_route_conf_free(struct fed_route_conf *conf);

/* ---- checking a configuration ---------------------------------------------------------- */

/* Where a problem is: `path` is "zones.dns", "zones.neighbours", "zones.static_routes",
 * "search_rules" or "federation"; `index` the entry of a list (-1: none); `key` a key
 * in it (NULL: the entry as a whole); `key_index` an element of an array key (-1). */
struct fed_conf_where {
    const char *path;
    long index;
    const char *key;
    long key_index;
};

typedef void (*fed_conf_report_fn)(void *arg, const struct fed_conf_where *where,
                                   const char *problem);

/* Checks every rule no single key can check: names and addresses, security mode
 * against transport, duplicate zone and rule names, source and target zones that
 * exist, patterns that compile, replace strings whose back-references exist, allow
 * and deny lists of exact names (no wildcards or regular expressions) with no name
 * in both, no static-route domain in the deny list. Calls report() once per problem,
 * in configuration order; returns the number of problems. Pure apart from report(). */
size_t fed_route_conf_check(const struct fed_route_conf *conf, fed_conf_report_fn report,
                            void *arg);

/* Writes "search_rules[2].pattern" for a location into buf[size]; returns buf. */
char *fed_conf_where_str(const struct fed_conf_where *w, char *buf, size_t size);

/* Compiles a pattern of the given type the way the router will: a regex must be a
 * valid POSIX extended regular expression without back-references (\1 inside the
 * pattern: matching time would then depend on the caller's alias), without two
 * repetition operators in a row ("a++": undefined in POSIX) and whose repetitions
 * would not expand it beyond 4096 nodes (checked before regcomp(), which copies a
 * repeated operand and so grows exponentially with nesting). *groups gets the
 * number of parenthesised groups (0 for exact and prefix). Returns 0, or -1 with the
 * reason in err[errsz] (regerror()'s text for a regex that does not compile). */
int fed_route_check_pattern(fed_pattern_t type, const char *pattern, size_t *groups, char *err,
                            size_t errsz);

/* Checks a replace string: "\\" is a backslash; \0 is the whole alias and \1..\9 a
 * group, for a regex only, and at most `groups`; any other backslash sequence is an
 * error. Returns 0, or -1 with the reason in err[errsz]. */
int fed_route_check_replace(fed_pattern_t type, const char *replace, size_t groups, char *err,
                            size_t errsz);

/* Checks one allow/deny entry: an exact domain name (no '*', no regular expression
 * characters). Returns 0, or -1 with the reason in err[errsz]. */
int fed_route_check_list_name(const char *name, char *err, size_t errsz);

/* Parses "host", "host:port", "IPv4:port", "[IPv6]:port" or a bare IPv6 address into
 * *out (host lowercase, port 0 when absent). Returns 0, or -1 with the reason. */
int fed_hostport_parse(const char *text, struct fed_hostport *out, char *err, size_t errsz);

/* ---- the router ------------------------------------------------------------------------ */

struct fed_router;

struct fed_router_env {
    const char *const *local_domains; /* our VMR domains (sip.domain, the VMR aliases'
                                         domains); duplicates are fine */
    size_t n_local_domains;
    const char *diag_source; /* our FQDN for ms-diagnostics source="..."; NULL: none */
    unsigned n_workers;      /* workers that call fed_route_decide(); 0: 1 */
};

/* Checks conf (fed_route_conf_check) and compiles it. Copies everything it needs:
 * conf and env may be freed afterwards. Returns NULL with "field: problem" (the
 * first problem) or "out of memory" in err[errsz]. */
struct fed_router *fed_router_new(const struct fed_route_conf *conf,
                                  const struct fed_router_env *env, char *err, size_t errsz);

/* Accepts NULL. No decision may be running. */
void fed_router_free(struct fed_router *r);

/* The neighbour zone whose peers include the IP literal `ip` ("192.0.2.5", "::1"),
 * or NULL (a peer given by host name is not matched). For the proxy choosing a
 * request's source zone; the returned name belongs to the router. */
const char *fed_router_zone_for_address(const struct fed_router *r, const char *ip);

/* ---- a decision ------------------------------------------------------------------------ */

/* Strings are (pointer, length) views and need no NUL; FED_NAME_NUL as a length means
 * a C string. A NULL pointer is an empty value. */
struct fed_route_request {
    const char *method; /* "INVITE" */
    size_t method_len;
    fed_req_type_t type;     /* FED_REQ_AUTO: from the method */
    const char *source_zone; /* C string: "local", "dns" or a neighbour's name */
    const char *ruri;        /* "sip:user@host;params", "user@host", "sips:host" */
    size_t ruri_len;
    const char *from_domain; /* the From (or P-Asserted-Identity) domain */
    size_t from_domain_len;
    bool in_dialog; /* a To tag: follows the route set, not the rules */
    fed_arrival_t arrival;
    unsigned worker; /* 0..n_workers-1; larger values use worker 0's patterns */
};

typedef enum {
    FED_ROUTE_OK = 0,          /* targets[0..n_targets-1], to try in order */
    FED_ROUTE_IN_DIALOG = 1,   /* not routed by rules: follow the route set */
    FED_ROUTE_NO_ROUTE = 2,    /* no rule gave a target: 404 */
    FED_ROUTE_REFUSED = 3,     /* privacy or security mode: 403 with ms-diagnostics 1027 */
    FED_ROUTE_BAD_REQUEST = 4, /* Request-URI unusable: 400, 414 or 416 */
    FED_ROUTE_ERR_ARG = -1,    /* NULL argument or unknown source zone: 500 */
} fed_route_status_t;

typedef enum {
    FED_RULE_NOT_MATCHED = 0, /* the pattern did not match */
    FED_RULE_SKIPPED_SOURCE,  /* the rule is for another source zone */
    FED_RULE_SKIPPED_TYPE,    /* the rule is for another request type */
    FED_RULE_MATCHED,         /* matched: a target was added */
    FED_RULE_REWRITTEN,       /* matched: a rule without target rewrote the alias */
    FED_RULE_NOT_LOCAL,       /* matched, target local, but the domain is not ours */
    FED_RULE_REFUSED,         /* matched, but the privacy mode refuses the domain */
    FED_RULE_BAD_DOMAIN,      /* matched, but the alias has no usable domain */
    FED_RULE_TOO_LONG,        /* matched, but the replaced alias would not fit */
    FED_RULE_DUPLICATE,       /* matched, but the same zone and alias are a target */
    FED_RULE_TARGETS_FULL,    /* matched, but FED_ROUTE_MAX_TARGETS targets exist */
} fed_rule_outcome_t;

struct fed_route_target {
    const char *zone; /* the zone's name (router-owned): "local", "dns", a neighbour */
    fed_zone_kind_t kind;
    char alias[FED_ALIAS_BUF]; /* user@domain to send there (the new Request-URI) */
    char domain[FED_NAME_BUF]; /* the alias's domain, lowercase */
    /* neighbour: its peers; static: the route's addresses (equal priority); else
     * NULL. Router-owned. */
    const struct fed_hostport *addrs;
    size_t n_addrs;
    fed_transport_t transport; /* to connect with (TLS unless security is no-tls) */
    fed_security_t security;
    bool client_certificates; /* verify the peer certificate against tls.ca */
    fed_srv_mode_t srv_mode;
    bool strict_naming;   /* dns: SRV targets must be in `domain` */
    bool fallback_hosts;  /* dns: try sip.<domain> when no SRV target is usable */
    bool no_dns_fallback; /* static, neighbour: only addrs; never locate `domain` */
    const char *rule;     /* the rule that added it (router-owned) */
};

struct fed_route_tried {
    const char *rule; /* its name (router-owned) */
    unsigned index;   /* its position in the configuration */
    fed_rule_outcome_t outcome;
};

struct fed_route_result {
    fed_route_status_t status;
    int sip_status;                /* 0 for OK and IN_DIALOG; 404, 403, 400, 414, 416, 500 */
    const char *sip_reason;        /* "Not Found", "Forbidden", ... or NULL */
    int diag_code;                 /* 1027 on a refusal, else 0 */
    const char *diag_reason;       /* its reason text, or NULL */
    char diag[FED_ROUTE_DIAG_BUF]; /* the ms-diagnostics header value, "" when none */
    char detail[160];              /* why, in a sentence, for logs and the search history */
    const char *source_zone;       /* the request's, router-owned; NULL on FED_ROUTE_ERR_ARG */
    char alias[FED_ALIAS_BUF];     /* the alias after every replace ("" if unparsable) */
    char domain[FED_NAME_BUF];     /* its domain */
    size_t n_targets;
    bool targets_truncated; /* a match found no room (FED_RULE_TARGETS_FULL) */
    struct fed_route_target targets[FED_ROUTE_MAX_TARGETS];
    size_t n_tried; /* rules looked at, in order, up to the one that stopped */
    struct fed_route_tried tried[FED_ROUTE_MAX_RULES];
};

/* Decides where an out-of-dialog request goes. Fills *out completely and returns
 * out->status. Never allocates, never blocks, never writes the router; safe to call
 * from every worker at once (each with its own `worker` index and result).
 *
 * Order: in-dialog -> FED_ROUTE_IN_DIALOG; the Request-URI is parsed (scheme sip or
 * sips or none, parameters and port dropped, host lowercased); a request from a
 * neighbour or the DNS zone must meet that zone's security mode (arrival) and, from
 * the DNS zone, the privacy mode (From domain); then the rules. The result's strings
 * stay valid while the router lives. */
fed_route_status_t fed_route_decide(const struct fed_router *r, const struct fed_route_request *req,
                                    struct fed_route_result *out);

/* The DNS resolutions to run for target t, address `addr` (ignored for the dns
 * kind), in order, written to steps[0..max-1]; returns how many (0: addrs[addr] is
 * an IP literal to use as is, or addr is out of range, or t is local).
 *   dns, tls-required: federation (_sipfederationtls._tcp, strict naming, fall-back
 *                      hosts), then RFC 3263 with TLS only (_sips._tcp);
 *   dns, tls-optional: federation, then RFC 3263 (TLS first, then TCP);
 *   dns, no-tls:       RFC 3263 (skip what fed_route_transport_allowed() refuses);
 *   a host name with a port: its A/AAAA records; without a port: RFC 3263 SRV. */
size_t fed_route_locate_plan(const struct fed_route_target *t, size_t addr,
                             struct fed_locate_opts *steps, size_t max);

/* Whether target t may be reached over transport tp (its security mode). */
bool fed_route_transport_allowed(const struct fed_route_target *t, fed_transport_t tp);

/* The request type of a method name: FED_REQ_CALLS, FED_REQ_IMP or FED_REQ_OTHER. */
fed_req_type_t fed_req_type_of_method(const char *method, size_t len);

/* Short names, never NULL: "ok", "in-dialog", "no-route", "refused", "bad-request",
 * "error"; "not_matched", "skipped_source", ...; "local", "neighbour", "dns",
 * "static"; "tls-required", ...; "calls", "imp", "other", "all"; "allow-list",
 * "deny-list", "off". */
const char *fed_route_status_str(fed_route_status_t st);
const char *fed_rule_outcome_str(fed_rule_outcome_t o);
const char *fed_zone_kind_str(fed_zone_kind_t k);
const char *fed_security_str(fed_security_t s);
const char *fed_req_type_str(fed_req_type_t t);
const char *fed_privacy_str(fed_privacy_t p);

#endif
