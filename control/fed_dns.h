/* Asynchronous DNS for federation, on c-ares, for the control thread.
 *
 * DESIGN
 * One fed_dns_t belongs to one thread (the control loop); nothing here locks. The
 * resolver never blocks: the loop watches the sockets c-ares opens (announced
 * through fed_dns_conf.sock_cb, or listed by fed_dns_fds()), calls
 * fed_dns_process() when one is ready or when fed_dns_timeout_ms() has passed, and
 * completions arrive as callbacks from inside fed_dns_process(). fed_dns_run() is a
 * small blocking loop around the same calls for the CLI (doctor) and tests.
 * Callbacks may start and cancel queries and locates, but must not call
 * fed_dns_process(), fed_dns_run(), the *_sync functions or fed_dns_free() on the
 * resolver that called them. Create resolvers from one thread at a time (c-ares
 * 1.18 initialises the library without a lock).
 *
 * Answers are immutable, reference-counted objects shared with the cache. The cache
 * is keyed by (name, type), keeps positive answers for their TTL (the smallest TTL
 * of the answer records) and negative answers (NXDOMAIN, NODATA) for the SOA minimum
 * of the authority section (RFC 2308), both capped; errors (timeouts, SERVFAIL) are
 * never cached. It is bounded: when full, expired entries go first, then the
 * entries closest to expiry. Identical queries in flight are coalesced.
 *
 * Failures of destinations are kept apart from DNS data: fed_dns_mark_down() marks
 * one (host, port, transport) down for a bounded time. It never touches the cache
 * and never affects another target, another port, another transport or another
 * domain that shares records: one unreachable SRV target must not fail every other
 * request to the domain (the failure mode of Kamailio issue #4911, where the failure
 * was recorded on the shared cached record).
 *
 * fed_dns_locate() runs the whole resolution for a destination domain and returns
 * the addresses to try in order:
 *   - federation: SRV _sipfederationtls._tcp.D, strict naming of the targets (a
 *     target must be D or directly in D), optional fall-back hosts (sip.D ...),
 *     then A/AAAA of each target;
 *   - RFC 3263: NAPTR D (SIPS+D2T, SIP+D2T, SIP+D2U with the "s" flag; TLS first),
 *     else SRV _sips._tcp.D, _sip._tcp.D, _sip._udp.D, else A/AAAA of D itself;
 *     then A/AAAA of each target.
 * SRV targets are ordered by RFC 2782 (priority, then weighted random) or by the
 * Microsoft rule (lowest priority, highest weight, the others ignored). */
#ifndef FED_DNS_H
#define FED_DNS_H

#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fed_names.h"

typedef struct fed_dns fed_dns_t;

typedef enum {
    FED_DNS_T_A = 1,
    FED_DNS_T_AAAA = 28,
    FED_DNS_T_SRV = 33,
    FED_DNS_T_NAPTR = 35,
} fed_dns_type_t;

typedef enum {
    FED_DNS_OK = 0,
    FED_DNS_NXDOMAIN = 1,         /* the name does not exist (a cached negative answer) */
    FED_DNS_NODATA = 2,           /* the name has no record of this type (cached too) */
    FED_DNS_ERR_TIMEOUT = -1,     /* no server answered in time */
    FED_DNS_ERR_SERVFAIL = -2,    /* the server failed or refused the query */
    FED_DNS_ERR_CONNREFUSED = -3, /* no server could be reached, or all refused */
    FED_DNS_ERR_FORMAT = -4,      /* a malformed answer */
    FED_DNS_ERR_BADNAME = -5,     /* the name is not a valid DNS name */
    FED_DNS_ERR_NOMEM = -6,
    FED_DNS_ERR_CANCELLED = -7, /* the resolver was freed while the query was pending */
    FED_DNS_ERR_ARG = -8,
    FED_DNS_ERR_OTHER = -9,
} fed_dns_status_t;

typedef enum {
    FED_TP_UDP = 0,
    FED_TP_TCP = 1,
    FED_TP_TLS = 2,
} fed_transport_t;

struct fed_dns_srv {
    uint16_t priority;
    uint16_t weight;
    uint16_t port;
    char target[FED_NAME_BUF]; /* lowercase, no trailing dot; "" for "." (no service) */
};

struct fed_dns_naptr {
    uint16_t order;
    uint16_t preference;
    char flags[16];
    char service[48];
    char regexp[128];               /* possibly truncated; not used for SIP */
    char replacement[FED_NAME_BUF]; /* lowercase, no trailing dot; "" for "." */
};

struct fed_dns_addr {
    int family; /* AF_INET or AF_INET6 */
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } u;
    char text[INET6_ADDRSTRLEN]; /* "192.0.2.1", "2001:db8::1" */
};

/* An answer: immutable, shared with the cache. Valid during the callback that
 * delivers it; keep it longer with fed_dns_answer_ref(). */
struct fed_dns_answer {
    char name[FED_NAME_BUF]; /* as queried, lowercase, no trailing dot */
    fed_dns_type_t type;
    fed_dns_status_t status;
    uint32_t ttl;                      /* seconds it is (or would be) cached for */
    uint64_t expires_ms;               /* on the resolver's clock */
    size_t n;                          /* records of `type`; 0 unless status is FED_DNS_OK */
    const struct fed_dns_srv *srv;     /* SRV: n records in answer order, else NULL */
    const struct fed_dns_naptr *naptr; /* NAPTR: n records in answer order, else NULL */
    const struct fed_dns_addr *addr;   /* A / AAAA: n addresses, else NULL */
};

/* `cached` is true when the answer came from the cache. */
typedef void (*fed_dns_cb)(void *arg, const struct fed_dns_answer *ans, bool cached);

/* The loop watches fd for reading and/or writing; both false: stop watching it. */
typedef void (*fed_dns_sock_cb)(void *arg, int fd, bool readable, bool writable);

/* A clock in milliseconds, and a uniform 32-bit random source (for SRV weights). */
typedef uint64_t (*fed_dns_clock_fn)(void *arg);
typedef uint32_t (*fed_rand_fn)(void *arg);

struct fed_dns_conf {
    const char *server;       /* "127.0.0.1:5353", "[::1]:53", "192.0.2.53" (port 53), a
                                 comma-separated list; NULL: the system's resolv.conf */
    int timeout_ms;           /* per try; 0: 2000 */
    int tries;                /* 0: 2 */
    size_t cache_max;         /* entries; 0: 1024 */
    uint32_t ttl_max;         /* cap on positive TTLs (s); 0: 86400 */
    uint32_t neg_ttl_default; /* negative answers without SOA (s); 0: 30 */
    uint32_t neg_ttl_max;     /* cap on negative TTLs (s); 0: 300 */
    size_t down_max;          /* down-marked destinations kept; 0: 256 */
    fed_dns_sock_cb sock_cb;  /* optional, see fed_dns_fds() otherwise */
    void *sock_arg;
    fed_dns_clock_fn clock; /* optional; default: cn_now_ms() */
    void *clock_arg;
    fed_rand_fn rand; /* optional; default: an internal generator seeded by getrandom */
    void *rand_arg;
};

/* Creates a resolver; conf may be NULL (all defaults). Returns NULL with a message
 * in err[errsz] when c-ares cannot be set up or the server list is invalid. */
fed_dns_t *fed_dns_new(const struct fed_dns_conf *conf, char *err, size_t errsz);

/* Frees the resolver. Queries and locates still pending complete first with
 * FED_DNS_ERR_CANCELLED / FED_LOC_CANCELLED (their callbacks run inside this call
 * and must not use the resolver). Accepts NULL. */
void fed_dns_free(fed_dns_t *dns);

/* Starts a query for (name, type). A trailing dot is ignored; case does not matter.
 * The callback is called exactly once unless cancelled: from the cache before this
 * function returns (return value 0), with an immediate error before it returns
 * (0; e.g. FED_DNS_ERR_BADNAME), or later from fed_dns_process() (the return value
 * is then an id > 0 for fed_dns_cancel()). */
uint64_t fed_dns_query(fed_dns_t *dns, const char *name, fed_dns_type_t type, fed_dns_cb cb,
                       void *arg);

/* Cancels a pending query or locate: its callback will not be called. Unknown or
 * finished ids are ignored. The network query itself may still complete and fill
 * the cache. */
void fed_dns_cancel(fed_dns_t *dns, uint64_t id);

void fed_dns_answer_ref(const struct fed_dns_answer *ans);
void fed_dns_answer_unref(const struct fed_dns_answer *ans); /* accepts NULL */

/* The cached, unexpired answer for (name, type) as a new reference, or NULL. */
const struct fed_dns_answer *fed_dns_cache_get(fed_dns_t *dns, const char *name,
                                               fed_dns_type_t type);
size_t fed_dns_cache_count(const fed_dns_t *dns);
void fed_dns_cache_flush(fed_dns_t *dns);

/* ---- event loop ------------------------------------------------------------------ */

#define FED_DNS_NO_FD (-1)

/* Milliseconds until fed_dns_process() must run even without socket activity,
 * at most max_ms; -1 when nothing is pending and max_ms < 0. */
int fed_dns_timeout_ms(fed_dns_t *dns, int max_ms);

/* Handles activity: read_fd is readable, write_fd is writable (either may be
 * FED_DNS_NO_FD); with both FED_DNS_NO_FD it only handles timeouts. Callbacks run
 * from here. */
void fed_dns_process(fed_dns_t *dns, int read_fd, int write_fd);

/* Fills fds[0..max-1] with the sockets to watch now (events POLLIN/POLLOUT) and
 * returns their number: the poll-style alternative to sock_cb. */
size_t fed_dns_fds(fed_dns_t *dns, struct pollfd *fds, size_t max);

/* Network queries in flight. */
size_t fed_dns_pending(const fed_dns_t *dns);

/* Runs the loop (poll) until nothing is pending or timeout_ms has passed. Returns
 * FED_DNS_OK, or FED_DNS_ERR_TIMEOUT with queries still pending (cancel them or run
 * again). */
fed_dns_status_t fed_dns_run(fed_dns_t *dns, int timeout_ms);

/* Blocking query: runs the loop until the answer arrives or timeout_ms passes
 * (FED_DNS_ERR_TIMEOUT). On return *out holds a reference to the answer (release
 * it with fed_dns_answer_unref()) or NULL; the return value is its status. Other
 * pending work also progresses meanwhile. */
fed_dns_status_t fed_dns_query_sync(fed_dns_t *dns, const char *name, fed_dns_type_t type,
                                    int timeout_ms, const struct fed_dns_answer **out);

const char *fed_dns_status_str(fed_dns_status_t st); /* "NXDOMAIN", "timeout", ... */
const char *fed_dns_type_str(fed_dns_type_t type);   /* "SRV", ... */
const char *fed_transport_str(fed_transport_t tp);   /* "udp", "tcp", "tls" */

/* ---- destinations marked down ----------------------------------------------------- */

#define FED_DNS_DOWN_MAX_S 3600u

/* Marks (host, port, transport) down for `seconds` (capped at FED_DNS_DOWN_MAX_S;
 * 0 clears it). `host` is compared like a DNS name; pass the address text for an
 * address and the SRV target for a whole target. Marking again restarts the
 * period. When the table is full the entry closest to expiry is replaced. */
void fed_dns_mark_down(fed_dns_t *dns, const char *host, uint16_t port, fed_transport_t tp,
                       uint32_t seconds);
void fed_dns_mark_up(fed_dns_t *dns, const char *host, uint16_t port, fed_transport_t tp);
bool fed_dns_is_down(fed_dns_t *dns, const char *host, uint16_t port, fed_transport_t tp);

/* ---- SRV selection ---------------------------------------------------------------- */

typedef enum {
    FED_SRV_RFC2782 = 0,   /* priority ascending; weighted random within a priority */
    FED_SRV_MICROSOFT = 1, /* only the lowest priority's highest weight (ties: random) */
} fed_srv_mode_t;

/* Orders SRV records for trying: writes indexes into recs to order[0..max-1] and
 * returns how many. RFC 2782 mode lists every usable record: lowest priority first,
 * within a priority by repeated weighted random choice (zero-weight records get a
 * small chance, as RFC 2782 specifies). Microsoft mode lists one record: among the
 * lowest priority, the highest weight; a tie is broken with rnd. Records whose
 * target is "" (".") are never listed. Pure apart from calling rnd. */
size_t fed_srv_order(const struct fed_dns_srv *recs, size_t n, fed_srv_mode_t mode, fed_rand_fn rnd,
                     void *rnd_arg, size_t *order, size_t max);

/* fed_srv_order() on an SRV answer with the records whose (target, port, tp) is
 * marked down removed first, using the resolver's random source. */
size_t fed_dns_srv_select(fed_dns_t *dns, const struct fed_dns_answer *srv, fed_transport_t tp,
                          fed_srv_mode_t mode, size_t *order, size_t max);

/* ---- locating a destination domain ------------------------------------------------ */

typedef enum {
    FED_LOCATE_FEDERATION = 0, /* _sipfederationtls._tcp only */
    FED_LOCATE_RFC3263 = 1,    /* NAPTR, SRV, A/AAAA */
} fed_locate_kind_t;

struct fed_locate_opts {
    fed_locate_kind_t kind;
    fed_srv_mode_t srv_mode;
    bool strict_naming; /* federation: refuse SRV targets not in the domain */
    unsigned fallback;  /* federation: FED_FALLBACK_* hosts tried when no SRV target is
                           usable (port 5061, TLS) */
    bool tls_only;      /* RFC 3263: only SIPS+D2T / _sips._tcp */
    uint16_t port;      /* an explicit port: no NAPTR/SRV, A/AAAA of the domain, TLS */
};

typedef enum {
    FED_LOC_OK = 0,
    FED_LOC_NO_SRV,         /* no SRV record (NXDOMAIN/NODATA) and no usable fall-back */
    FED_LOC_STRICT_REFUSED, /* every SRV target failed strict naming (ms-diagnostics 1009) */
    FED_LOC_NO_ADDRESS,     /* targets found, but none has an A/AAAA record */
    FED_LOC_ALL_DOWN,       /* every destination is marked down */
    FED_LOC_DNS_ERROR,      /* a lookup failed (dns_status says how) and nothing else worked */
    FED_LOC_BAD_DOMAIN,     /* the domain is not a valid name */
    FED_LOC_CANCELLED,      /* the resolver was freed */
} fed_locate_status_t;

const char *fed_locate_status_str(fed_locate_status_t st);

#define FED_LOCATE_MAX_DESTS 32
#define FED_LOCATE_MAX_SRV 16
#define FED_LOCATE_MAX_REFUSED 8

/* One address to try. */
struct fed_dest {
    char host[FED_NAME_BUF]; /* the FQDN the peer certificate must carry (SRV target,
                                fall-back host, or the domain) */
    struct fed_dns_addr addr;
    uint16_t port;
    fed_transport_t transport;
    uint16_t priority;
    uint16_t weight;
    bool fallback; /* from a fall-back host name, not from SRV */
};

struct fed_location {
    char domain[FED_NAME_BUF];
    fed_locate_status_t status;
    fed_dns_status_t dns_status; /* the first DNS error met, FED_DNS_OK if none */
    char srv_name[FED_NAME_BUF]; /* the SRV name whose records were used, or "" */
    uint32_t srv_ttl;            /* seconds those records may still be kept (0 when none) */
    size_t n_srv;                /* those records, as received */
    struct fed_dns_srv srv[FED_LOCATE_MAX_SRV];
    size_t n_refused; /* SRV targets refused by strict naming */
    struct {
        char target[FED_NAME_BUF];
        uint16_t port;
        fed_strict_t why;
    } refused[FED_LOCATE_MAX_REFUSED];
    bool used_fallback;
    size_t n_down_skipped; /* targets or addresses left out because marked down */
    size_t n_dests;        /* in the order to try */
    struct fed_dest dests[FED_LOCATE_MAX_DESTS];
};

/* Called once with the result (valid during the call only). */
typedef void (*fed_locate_cb)(void *arg, const struct fed_location *loc);

/* Locates `domain` (an IP literal gives one destination without DNS). The callback
 * may run before this function returns (everything cached: return value 0);
 * otherwise the return value is an id for fed_dns_cancel(). */
uint64_t fed_dns_locate(fed_dns_t *dns, const char *domain, const struct fed_locate_opts *opts,
                        fed_locate_cb cb, void *arg);

/* Blocking fed_dns_locate() for the CLI: fills *out; returns FED_DNS_OK or
 * FED_DNS_ERR_TIMEOUT (the locate is then cancelled). */
fed_dns_status_t fed_dns_locate_sync(fed_dns_t *dns, const char *domain,
                                     const struct fed_locate_opts *opts, int timeout_ms,
                                     struct fed_location *out);

/* ---- building block: TTLs of a DNS message --------------------------------------- */

struct fed_dns_msg_ttl {
    unsigned rcode;
    bool have_answer;    /* at least one answer record */
    uint32_t answer_ttl; /* the smallest answer TTL */
    bool have_soa;       /* an SOA in the authority section */
    uint32_t neg_ttl;    /* min(SOA TTL, SOA MINIMUM) (RFC 2308 §5) */
};

/* Reads the header, skips the questions and walks the answer and authority records
 * of a DNS message msg[0..len-1] (not modified) for the values above. Returns 0, or
 * -1 when the message is truncated or malformed. */
int fed_dns_msg_ttl(const uint8_t *msg, size_t len, struct fed_dns_msg_ttl *out);

#endif
