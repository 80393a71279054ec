/* confbench statistics (see cb_stats.h). */
#include "cb_stats.h"

#include <math.h>
#include <string.h>

static const char *const fail_names[CB_FAIL_REASONS] = {
    [CB_FAIL_TIMEOUT] = "timeout",
    [CB_FAIL_REFUSED] = "connect_refused",
    [CB_FAIL_CONNECT_TIMEOUT] = "connect_timeout",
    [CB_FAIL_CONNECT] = "connect_error",
    [CB_FAIL_TLS] = "tls_failure",
    [CB_FAIL_CLOSED] = "connection_closed",
    [CB_FAIL_UNEXPECTED] = "unexpected_response",
    [CB_FAIL_PROTOCOL] = "protocol_error",
    [CB_FAIL_LOCAL] = "local_error",
};

const char *cb_fail_name(cb_fail_t r)
{
    return (unsigned)r < CB_FAIL_REASONS ? fail_names[r] : "unknown";
}

const char *cb_lat_name(cb_lat_t k)
{
    switch (k) {
    case CB_LAT_INVITE:
        return "invite_to_200";
    case CB_LAT_NONINVITE:
        return "non_invite";
    case CB_LAT_HANDSHAKE:
        return "tls_handshake";
    default:
        return "unknown";
    }
}

unsigned cb_hist_index(uint64_t v)
{
    if (v < CB_HIST_SUB)
        return (unsigned)v;
    unsigned k = 63u - (unsigned)__builtin_clzll(v); /* v in [2^k, 2^(k+1)) */
    if (k >= CB_HIST_MAX_EXP)
        return CB_HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (k - CB_HIST_SUB_BITS)) & (CB_HIST_SUB - 1);
    return CB_HIST_SUB + (k - CB_HIST_SUB_BITS) * CB_HIST_SUB + sub;
}

uint64_t cb_hist_lower(unsigned i)
{
    if (i < CB_HIST_SUB)
        return i;
    unsigned k = (i - CB_HIST_SUB) / CB_HIST_SUB + CB_HIST_SUB_BITS;
    uint64_t sub = (i - CB_HIST_SUB) % CB_HIST_SUB;
    return (CB_HIST_SUB + sub) << (k - CB_HIST_SUB_BITS);
}

uint64_t cb_hist_upper(unsigned i)
{
    if (i < CB_HIST_SUB)
        return i;
    if (i >= CB_HIST_BUCKETS - 1)
        return UINT64_MAX;
    return cb_hist_lower(i + 1) - 1;
}

void cb_hist_record(cb_hist_t *h, uint64_t v)
{
    uint64_t n = CB_GET(h->n);
    if (n == 0 || v < CB_GET(h->min))
        CB_SET(h->min, v);
    if (v > CB_GET(h->max))
        CB_SET(h->max, v);
    CB_ADD(h->counts[cb_hist_index(v)], 1);
    CB_ADD(h->sum, v);
    CB_SET(h->n, n + 1);
}

void cb_hist_reset(cb_hist_t *h)
{
    CB_SET(h->n, 0);
    CB_SET(h->sum, 0);
    CB_SET(h->max, 0);
    CB_SET(h->min, 0);
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++)
        CB_SET(h->counts[i], 0);
}

void cb_hist_add(cb_hist_t *dst, const cb_hist_t *src)
{
    uint64_t sn = CB_GET(src->n), dn = CB_GET(dst->n);
    if (sn == 0)
        return;
    if (dn == 0 || CB_GET(src->min) < CB_GET(dst->min))
        CB_SET(dst->min, CB_GET(src->min));
    if (CB_GET(src->max) > CB_GET(dst->max))
        CB_SET(dst->max, CB_GET(src->max));
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        uint64_t c = CB_GET(src->counts[i]);
        if (c)
            CB_ADD(dst->counts[i], c);
    }
    CB_ADD(dst->sum, CB_GET(src->sum));
    CB_SET(dst->n, dn + sn);
}

void cb_hist_diff(cb_hist_t *dst, const cb_hist_t *a, const cb_hist_t *b)
{
    uint64_t n = 0, lo = 0, hi = 0;
    bool any = false;
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        uint64_t ca = CB_GET(a->counts[i]), cbv = CB_GET(b->counts[i]);
        uint64_t d = ca >= cbv ? ca - cbv : 0;
        CB_SET(dst->counts[i], d);
        if (d) {
            if (!any)
                lo = cb_hist_lower(i);
            hi = cb_hist_upper(i);
            any = true;
            n += d;
        }
    }
    uint64_t amax = CB_GET(a->max), amin = CB_GET(a->min);
    CB_SET(dst->n, n);
    CB_SET(dst->sum, CB_GET(a->sum) - CB_GET(b->sum));
    /* The exact extremes of the interval are unknown; the bucket bounds, tightened
     * by the cumulative extremes, bound them. */
    CB_SET(dst->max, any ? (hi < amax ? hi : amax) : 0);
    CB_SET(dst->min, any ? (lo > amin ? lo : amin) : 0);
}

uint64_t cb_hist_quantile(const cb_hist_t *h, double q)
{
    uint64_t n = CB_GET(h->n);
    if (n == 0)
        return 0;
    if (q <= 0)
        return CB_GET(h->min);
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)n);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        seen += CB_GET(h->counts[i]);
        if (seen >= rank) {
            uint64_t v = cb_hist_upper(i), max = CB_GET(h->max), min = CB_GET(h->min);
            if (v > max)
                v = max;
            if (v < min)
                v = min;
            return v;
        }
    }
    return CB_GET(h->max);
}

double cb_hist_mean(const cb_hist_t *h)
{
    uint64_t n = CB_GET(h->n);
    return n ? (double)CB_GET(h->sum) / (double)n : 0.0;
}

void cb_counters_reset(cb_counters_t *c)
{
    memset(c, 0, sizeof(*c));
}

#define CB_EACH_SCALAR(X)                                                                          \
    X(started)                                                                                     \
    X(succeeded) X(failed) X(requests_sent) X(responses_received) X(retransmissions)               \
        X(stray_responses) X(requests_received) X(connects) X(handshakes) X(rate_deferred)         \
            X(launches_late) X(media_calls) X(media_sent) X(media_received) X(media_calls_silent)  \
                X(media_unsolicited)

void cb_counters_add(cb_counters_t *total, const cb_counters_t *c)
{
#define ADD_ONE(f) CB_ADD(total->f, CB_GET(c->f));
    CB_EACH_SCALAR(ADD_ONE)
#undef ADD_ONE
    CB_ADD(total->active, CB_GET(c->active));
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++)
        CB_ADD(total->by_reason[i], CB_GET(c->by_reason[i]));
    for (unsigned i = 0; i < CB_CODES; i++)
        CB_ADD(total->by_code[i], CB_GET(c->by_code[i]));
    for (unsigned i = 0; i < CB_VERIFY_CODES; i++)
        CB_ADD(total->tls_verify[i], CB_GET(c->tls_verify[i]));
    for (unsigned k = 0; k < CB_LAT_KINDS; k++)
        cb_hist_add(&total->lat[k], &c->lat[k]);
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a >= b ? a - b : 0;
}

void cb_counters_diff(cb_counters_t *dst, const cb_counters_t *a, const cb_counters_t *b)
{
#define DIFF_ONE(f) CB_SET(dst->f, sub_sat(CB_GET(a->f), CB_GET(b->f)));
    CB_EACH_SCALAR(DIFF_ONE)
#undef DIFF_ONE
    CB_SET(dst->active, CB_GET(a->active));
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++)
        CB_SET(dst->by_reason[i], sub_sat(CB_GET(a->by_reason[i]), CB_GET(b->by_reason[i])));
    for (unsigned i = 0; i < CB_CODES; i++)
        CB_SET(dst->by_code[i], sub_sat(CB_GET(a->by_code[i]), CB_GET(b->by_code[i])));
    for (unsigned i = 0; i < CB_VERIFY_CODES; i++)
        CB_SET(dst->tls_verify[i], sub_sat(CB_GET(a->tls_verify[i]), CB_GET(b->tls_verify[i])));
    for (unsigned k = 0; k < CB_LAT_KINDS; k++)
        cb_hist_diff(&dst->lat[k], &a->lat[k], &b->lat[k]);
}
