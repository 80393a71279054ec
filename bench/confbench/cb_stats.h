/* confbench statistics: latency histograms and per-thread counters.
 *
 * DESIGN
 * Every worker thread owns one cb_counters_t and writes it alone; the reporting
 * thread only reads. Fields are C11 atomics updated with a relaxed load and store
 * (CB_ADD), which is a plain load and store on x86: no locked instruction on the
 * hot path, and a reader never sees a torn value. The reporter takes snapshots
 * (cb_counters_snapshot adds one thread's counters into a private total) and
 * subtracts consecutive snapshots for the per-second series.
 *
 * Latencies are kept in a log-linear histogram of microseconds: values below 32
 * have their own bucket, above that every power of two is split into 32 buckets,
 * so a bucket is at most 1/32 (about 3%) of its value wide. Percentiles report the
 * upper bound of the bucket that holds the requested rank, clamped to the observed
 * maximum, so they never understate a latency.
 */
#ifndef CB_STATS_H
#define CB_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CB_ADD(field, n)                                                                           \
    atomic_store_explicit(&(field),                                                                \
                          atomic_load_explicit(&(field), memory_order_relaxed) + (uint64_t)(n),    \
                          memory_order_relaxed)
#define CB_SET(field, v) atomic_store_explicit(&(field), (uint64_t)(v), memory_order_relaxed)
#define CB_GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

#define CB_HIST_SUB_BITS 5
#define CB_HIST_SUB (1u << CB_HIST_SUB_BITS)
#define CB_HIST_MAX_EXP 41 /* values up to 2^41 us (25 days) */
#define CB_HIST_BUCKETS (CB_HIST_SUB + (CB_HIST_MAX_EXP - CB_HIST_SUB_BITS) * CB_HIST_SUB)

typedef struct cb_hist {
    _Atomic uint64_t n;
    _Atomic uint64_t sum;
    _Atomic uint64_t max;
    _Atomic uint64_t min; /* meaningful when n > 0 */
    _Atomic uint64_t counts[CB_HIST_BUCKETS];
} cb_hist_t;

/* Why a call or request failed. */
typedef enum {
    CB_FAIL_TIMEOUT = 0,     /* no final response within --timeout */
    CB_FAIL_REFUSED,         /* TCP connect refused, or ICMP port unreachable (UDP) */
    CB_FAIL_CONNECT_TIMEOUT, /* TCP connect did not complete within --timeout */
    CB_FAIL_CONNECT,         /* any other connect error (no route, ...) */
    CB_FAIL_TLS,             /* TLS handshake failed (certificate or protocol) */
    CB_FAIL_CLOSED,          /* connection closed or reset with the call pending */
    CB_FAIL_UNEXPECTED,      /* a final response other than the expected code */
    CB_FAIL_PROTOCOL,        /* unparseable or unframeable response */
    CB_FAIL_LOCAL,           /* local resource error (socket, bind, memory) */
    CB_FAIL_REASONS
} cb_fail_t;

/* Name used in JSON and on the terminal ("timeout", "connect_refused", ...). */
const char *cb_fail_name(cb_fail_t r);

#define CB_CODES 700        /* response codes 100..699 */
#define CB_VERIFY_CODES 128 /* X509_V_ERR_* values counted individually */

typedef enum {
    CB_LAT_INVITE = 0, /* INVITE sent -> 200 received */
    CB_LAT_NONINVITE,  /* non-INVITE request (OPTIONS, MESSAGE, BYE) -> final response */
    CB_LAT_HANDSHAKE,  /* TCP connect started -> TLS handshake done */
    CB_LAT_KINDS
} cb_lat_t;

const char *cb_lat_name(cb_lat_t k);

typedef struct cb_counters {
    _Atomic uint64_t started;   /* calls (or requests) begun */
    _Atomic uint64_t succeeded; /* ended with every expected response */
    _Atomic uint64_t failed;    /* ended with a failure (one reason each) */
    _Atomic uint64_t active;    /* gauge: calls in progress */
    _Atomic uint64_t requests_sent;
    _Atomic uint64_t responses_received;
    _Atomic uint64_t retransmissions;
    _Atomic uint64_t stray_responses;   /* matched no live transaction */
    _Atomic uint64_t requests_received; /* requests from the far end */
    _Atomic uint64_t connects;
    _Atomic uint64_t handshakes;
    _Atomic uint64_t rate_deferred; /* launches dropped: --max-calls reached */
    _Atomic uint64_t launches_late; /* launches dropped: the thread fell > 1 s behind */
    _Atomic uint64_t media_calls;
    _Atomic uint64_t media_sent;
    _Atomic uint64_t media_received;
    _Atomic uint64_t media_calls_silent; /* media calls that received nothing */
    _Atomic uint64_t media_unsolicited;  /* packets on the shared sink port */
    _Atomic uint64_t by_reason[CB_FAIL_REASONS];
    _Atomic uint64_t by_code[CB_CODES];           /* unexpected final responses */
    _Atomic uint64_t tls_verify[CB_VERIFY_CODES]; /* TLS failures by verify result */
    cb_hist_t lat[CB_LAT_KINDS];
} cb_counters_t;

/* Bucket index of a value (microseconds). */
unsigned cb_hist_index(uint64_t v);
/* Smallest and largest value that fall into bucket i. */
uint64_t cb_hist_lower(unsigned i);
uint64_t cb_hist_upper(unsigned i);

/* Records one value. Single writer per histogram. */
void cb_hist_record(cb_hist_t *h, uint64_t v);
void cb_hist_reset(cb_hist_t *h);
/* dst += src (dst private to the caller). */
void cb_hist_add(cb_hist_t *dst, const cb_hist_t *src);
/* dst = a - b, where b is an earlier snapshot of the same histogram. min and max
 * of the difference are bounded by the buckets that changed. */
void cb_hist_diff(cb_hist_t *dst, const cb_hist_t *a, const cb_hist_t *b);

/* The value at quantile q (0 < q <= 1): the upper bound of the bucket holding the
 * ceil(q * n)-th smallest value, clamped to the maximum. 0 when empty. */
uint64_t cb_hist_quantile(const cb_hist_t *h, double q);
double cb_hist_mean(const cb_hist_t *h);

void cb_counters_reset(cb_counters_t *c);
/* total += c */
void cb_counters_add(cb_counters_t *total, const cb_counters_t *c);
/* dst = a - b (b an earlier snapshot); gauges (active) are taken from a. */
void cb_counters_diff(cb_counters_t *dst, const cb_counters_t *a, const cb_counters_t *b);

#endif
