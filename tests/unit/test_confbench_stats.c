/* confbench statistics: histogram buckets, percentiles, snapshot arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../bench/confbench/cb_stats.c"

static cb_hist_t *new_hist(void)
{
    cb_hist_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    return h;
}

static void every_value_falls_between_its_bucket_bounds(void **state)
{
    (void)state;
    uint64_t v = 0;
    for (int i = 0; i < 20000; i++) {
        unsigned b = cb_hist_index(v);
        assert_true(b < CB_HIST_BUCKETS);
        assert_true(cb_hist_lower(b) <= v);
        assert_true(v <= cb_hist_upper(b));
        v = v < 100 ? v + 1 : v + v / 7 + (uint64_t)i;
        if (v > (1ull << 40))
            v = (uint64_t)i;
    }
    /* Buckets tile the line: each upper bound is the next lower bound minus one. */
    for (unsigned b = 0; b + 2 < CB_HIST_BUCKETS; b++)
        assert_true(cb_hist_upper(b) + 1 == cb_hist_lower(b + 1));
    /* A bucket is at most 1/32 of its values wide. */
    for (unsigned b = CB_HIST_SUB; b + 1 < CB_HIST_BUCKETS; b++)
        assert_true((cb_hist_upper(b) - cb_hist_lower(b) + 1) * 32 <= cb_hist_lower(b));
    assert_int_equal(cb_hist_index(UINT64_MAX), CB_HIST_BUCKETS - 1);
}

static void quantiles_of_uniform_values_are_within_bucket_precision(void **state)
{
    (void)state;
    cb_hist_t *h = new_hist();
    for (uint64_t v = 1; v <= 10000; v++)
        cb_hist_record(h, v);
    assert_int_equal(CB_GET(h->n), 10000);
    assert_int_equal(CB_GET(h->min), 1);
    assert_int_equal(CB_GET(h->max), 10000);
    static const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double exact = qs[i] * 10000;
        double got = (double)cb_hist_quantile(h, qs[i]);
        assert_true(got >= exact);          /* never understated */
        assert_true(got <= exact * 1.0315); /* within one bucket */
    }
    assert_int_equal(cb_hist_quantile(h, 1.0), 10000);
    assert_true(cb_hist_mean(h) > 5000.4 && cb_hist_mean(h) < 5000.6);
    free(h);
}

static void quantiles_of_an_empty_or_single_valued_histogram_are_exact(void **state)
{
    (void)state;
    cb_hist_t *h = new_hist();
    assert_int_equal(cb_hist_quantile(h, 0.5), 0);
    assert_true(cb_hist_mean(h) == 0.0);
    cb_hist_record(h, 123457);
    assert_int_equal(cb_hist_quantile(h, 0.01), 123457);
    assert_int_equal(cb_hist_quantile(h, 0.99), 123457);
    cb_hist_reset(h);
    assert_int_equal(CB_GET(h->n), 0);
    assert_int_equal(cb_hist_quantile(h, 0.5), 0);
    free(h);
}

static void a_skewed_distribution_puts_p99_in_the_tail(void **state)
{
    (void)state;
    cb_hist_t *h = new_hist();
    for (int i = 0; i < 980; i++)
        cb_hist_record(h, 1000);
    for (int i = 0; i < 20; i++)
        cb_hist_record(h, 500000);
    assert_true(cb_hist_quantile(h, 0.5) >= 1000 && cb_hist_quantile(h, 0.5) < 1040);
    assert_true(cb_hist_quantile(h, 0.98) < 1040);
    assert_int_equal(cb_hist_quantile(h, 0.99), 500000);
    free(h);
}

static void diff_of_two_snapshots_counts_only_the_interval(void **state)
{
    (void)state;
    cb_hist_t *a = new_hist(), *b = new_hist(), *d = new_hist();
    for (int i = 0; i < 100; i++)
        cb_hist_record(a, 50);
    memcpy(b, a, sizeof(*a)); /* earlier snapshot */
    for (int i = 0; i < 10; i++)
        cb_hist_record(a, 20000);
    cb_hist_diff(d, a, b);
    assert_int_equal(CB_GET(d->n), 10);
    assert_int_equal(CB_GET(d->sum), 200000);
    assert_true(cb_hist_quantile(d, 0.5) >= 20000 && cb_hist_quantile(d, 0.5) <= 20000 * 1.04);
    assert_true(CB_GET(d->min) >= cb_hist_lower(cb_hist_index(20000)));
    free(a);
    free(b);
    free(d);
}

static void counters_add_up_threads_and_diff_keeps_the_active_gauge(void **state)
{
    (void)state;
    cb_counters_t *t1 = calloc(1, sizeof(*t1)), *t2 = calloc(1, sizeof(*t2));
    cb_counters_t *sum = calloc(1, sizeof(*sum)), *old = calloc(1, sizeof(*old));
    cb_counters_t *d = calloc(1, sizeof(*d));
    assert_true(t1 && t2 && sum && old && d);
    CB_ADD(t1->started, 10);
    CB_ADD(t1->failed, 2);
    CB_ADD(t1->by_code[503], 2);
    CB_SET(t1->active, 3);
    CB_ADD(t2->started, 5);
    CB_ADD(t2->by_reason[CB_FAIL_TIMEOUT], 1);
    CB_SET(t2->active, 4);
    cb_hist_record(&t1->lat[CB_LAT_INVITE], 700);
    cb_hist_record(&t2->lat[CB_LAT_INVITE], 900);
    cb_counters_add(sum, t1);
    cb_counters_add(sum, t2);
    assert_int_equal(CB_GET(sum->started), 15);
    assert_int_equal(CB_GET(sum->active), 7);
    assert_int_equal(CB_GET(sum->by_code[503]), 2);
    assert_int_equal(CB_GET(sum->by_reason[CB_FAIL_TIMEOUT]), 1);
    assert_int_equal(CB_GET(sum->lat[CB_LAT_INVITE].n), 2);
    assert_int_equal(CB_GET(sum->lat[CB_LAT_INVITE].min), 700);
    assert_int_equal(CB_GET(sum->lat[CB_LAT_INVITE].max), 900);
    cb_counters_add(old, sum);
    CB_ADD(sum->started, 4);
    CB_SET(sum->active, 1);
    cb_counters_diff(d, sum, old);
    assert_int_equal(CB_GET(d->started), 4);
    assert_int_equal(CB_GET(d->active), 1);
    assert_int_equal(CB_GET(d->by_code[503]), 0);
    assert_int_equal(CB_GET(d->lat[CB_LAT_INVITE].n), 0);
    free(t1);
    free(t2);
    free(sum);
    free(old);
    free(d);
}

static void failure_and_latency_names_are_distinct_tokens(void **state)
{
    (void)state;
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++) {
        const char *n = cb_fail_name((cb_fail_t)i);
        assert_non_null(n);
        assert_null(strchr(n, ' '));
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(n, cb_fail_name((cb_fail_t)j));
    }
    assert_string_equal(cb_fail_name(CB_FAIL_REASONS), "unknown");
    assert_string_equal(cb_lat_name(CB_LAT_INVITE), "invite_to_200");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_value_falls_between_its_bucket_bounds),
        cmocka_unit_test(quantiles_of_uniform_values_are_within_bucket_precision),
        cmocka_unit_test(quantiles_of_an_empty_or_single_valued_histogram_are_exact),
        cmocka_unit_test(a_skewed_distribution_puts_p99_in_the_tail),
        cmocka_unit_test(diff_of_two_snapshots_counts_only_the_interval),
        cmocka_unit_test(counters_add_up_threads_and_diff_keeps_the_active_gauge),
        cmocka_unit_test(failure_and_latency_names_are_distinct_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
