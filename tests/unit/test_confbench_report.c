/* confbench results: JSON report, ramp verdicts, exit codes, plot files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../bench/confbench/cb_opts.c"
#include "../../bench/confbench/cb_report.c"
#include "../../bench/confbench/cb_stats.c"

struct fixture {
    cb_opts_t o;
    cb_counters_t *total;
    cb_addr_t addr;
    cb_sample_t samples[2];
    cb_run_t run;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->total = calloc(1, sizeof(*f->total));
    assert_non_null(f->total);
    char err[128];
    char *argv[] = {"confbench", "-t", "tls", "example.test", "-r", "50", "--ca", "ca.crt"};
    assert_int_equal(cb_opts_parse(8, argv, &f->o, err, sizeof(err)), 0);
    snprintf(f->addr.text, sizeof(f->addr.text), "127.0.0.1:5061");
    CB_ADD(f->total->started, 120);
    CB_ADD(f->total->succeeded, 115);
    CB_ADD(f->total->failed, 5);
    CB_ADD(f->total->by_reason[CB_FAIL_UNEXPECTED], 3);
    CB_ADD(f->total->by_code[503], 3);
    CB_ADD(f->total->by_reason[CB_FAIL_TLS], 2);
    CB_ADD(f->total->tls_verify[19], 2); /* self-signed certificate in certificate chain */
    for (uint64_t v = 1000; v < 1100; v++)
        cb_hist_record(&f->total->lat[CB_LAT_INVITE], v);
    f->samples[0] =
        (cb_sample_t){.t = 1, .target_rate = 50, .started = 50, .succeeded = 48, .failed = 2};
    f->samples[1] =
        (cb_sample_t){.t = 2, .target_rate = 50, .started = 70, .succeeded = 67, .failed = 3};
    f->run = (cb_run_t){.o = &f->o,
                        .targets = &f->addr,
                        .ntargets = 1,
                        .elapsed = 2.5,
                        .total = f->total,
                        .samples = f->samples,
                        .nsamples = 2,
                        .messages = {[CB_FAIL_TLS] = "TLS handshake with 127.0.0.1:5061 failed"}};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    free(f->total);
    free(f);
    return 0;
}

static json_object *get(json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        json_object *next;
        if (!json_object_object_get_ex(o, k, &next))
            fail_msg("no %s in the report (at %s)", path, k);
        o = next;
    }
    return o;
}

static void json_report_carries_totals_failures_by_code_reason_and_tls_cause(void **state)
{
    struct fixture *f = *state;
    f->run.exit_code = cb_run_exit_code(&f->run);
    json_object *j = cb_report_json(&f->run);
    assert_non_null(j);
    assert_int_equal(json_object_get_uint64(get(j, "totals.started")), 120);
    assert_int_equal(json_object_get_uint64(get(j, "totals.succeeded")), 115);
    assert_int_equal(json_object_get_uint64(get(j, "totals.failed")), 5);
    assert_int_equal(json_object_get_uint64(get(j, "failures.by_code.503")), 3);
    assert_int_equal(json_object_get_uint64(get(j, "failures.by_reason.unexpected_response")), 3);
    assert_int_equal(json_object_get_uint64(get(j, "failures.by_reason.tls_failure")), 2);
    assert_int_equal(
        json_object_get_uint64(get(j, "failures.tls.self-signed certificate in certificate chain")),
        2);
    assert_string_equal(json_object_get_string(get(j, "failures.first_message.tls_failure")),
                        "TLS handshake with 127.0.0.1:5061 failed");
    assert_string_equal(json_object_get_string(get(j, "config.transport")), "tls");
    assert_string_equal(json_object_get_string(get(j, "config.srv")), "_sipfederationtls._tcp");
    assert_int_equal(json_object_get_uint64(get(j, "latency.invite_to_200.count")), 100);
    double p50 = json_object_get_double(get(j, "latency.invite_to_200.p50"));
    assert_true(p50 >= 1.049 && p50 <= 1.09); /* ms */
    json_object *hist = get(j, "latency.invite_to_200.histogram");
    uint64_t sum = 0;
    for (size_t i = 0; i < json_object_array_length(hist); i++)
        sum += json_object_get_uint64(
            json_object_array_get_idx(json_object_array_get_idx(hist, i), 1));
    assert_int_equal(sum, 100);
    assert_int_equal(json_object_array_length(get(j, "series")), 2);
    assert_int_equal(json_object_get_int(get(j, "exit_code")), 1);
    json_object_put(j);
}

static void exit_code_is_zero_only_without_failures_or_for_a_ramp_that_passed_a_step(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(cb_run_exit_code(&f->run), 1);
    cb_counters_reset(f->total);
    CB_ADD(f->total->succeeded, 10);
    assert_int_equal(cb_run_exit_code(&f->run), 0);
    f->run.interrupted = true;
    assert_int_equal(cb_run_exit_code(&f->run), 1);
    f->run.interrupted = false;
    f->o.ramp.on = true;
    f->run.ramp_best = 0;
    assert_int_equal(cb_run_exit_code(&f->run), 1);
    f->run.ramp_best = 300;
    CB_ADD(f->total->failed, 7); /* the failing top step does not fail the ramp */
    assert_int_equal(cb_run_exit_code(&f->run), 0);
}

static void a_ramp_step_passes_with_no_failure_and_ninety_percent_of_its_rate(void **state)
{
    (void)state;
    cb_step_t s = {.rate = 100, .achieved = 95, .started = 475, .succeeded = 475};
    assert_true(cb_step_passes(&s));
    s.achieved = 89.9;
    assert_false(cb_step_passes(&s));
    s.achieved = 100;
    s.failed = 1;
    assert_false(cb_step_passes(&s));
    cb_step_t none = {.rate = 100};
    assert_false(cb_step_passes(&none));
}

static void samples_are_differences_of_snapshots_with_interval_percentiles(void **state)
{
    (void)state;
    cb_counters_t *prev = calloc(1, sizeof(*prev)), *cur = calloc(1, sizeof(*cur));
    assert_true(prev && cur);
    CB_ADD(prev->started, 10);
    cb_hist_record(&prev->lat[CB_LAT_NONINVITE], 100000);
    cb_counters_add(cur, prev);
    CB_ADD(cur->started, 30);
    CB_ADD(cur->failed, 2);
    CB_ADD(cur->by_reason[CB_FAIL_TIMEOUT], 2);
    CB_SET(cur->active, 6);
    for (int i = 0; i < 30; i++)
        cb_hist_record(&cur->lat[CB_LAT_NONINVITE], 2000);
    cb_sample_t s;
    cb_sample_from(&s, cur, prev, 3.0, 30);
    assert_int_equal(s.started, 30);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.active, 6);
    assert_int_equal(s.by_reason[CB_FAIL_TIMEOUT], 2);
    assert_int_equal(s.lat_n[CB_LAT_NONINVITE], 30);
    assert_true(s.lat[CB_LAT_NONINVITE][2] < 2100); /* the old 100 ms value is not in it */
    char line[1024];
    cb_progress_line(line, sizeof(line), &s, cur);
    assert_non_null(strstr(line, "started 30"));
    assert_non_null(strstr(line, "timeout:2"));
    free(prev);
    free(cur);
}

static void plot_files_are_written_even_without_gnuplot(void **state)
{
    struct fixture *f = *state;
    char dir[] = "/tmp/confbench-plot-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *saved = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    bool rendered = true;
    char err[256] = "";
    int rc = cb_plot_write(&f->run, dir, &rendered, err, sizeof(err));
    if (saved) {
        setenv("PATH", saved, 1);
        free(saved);
    }
    assert_int_equal(rc, 0);
    assert_false(rendered);
    static const char *const files[] = {"series.dat", "cdf_invite.dat", "cdf_non_invite.dat",
                                        "cdf_handshake.dat", "plots.gp"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        FILE *fp = fopen(p, "r");
        assert_non_null(fp);
        char first[256] = "";
        assert_non_null(fgets(first, sizeof(first), fp));
        if (i == 0) {
            char row[256];
            assert_non_null(fgets(row, sizeof(row), fp));
            assert_int_equal(strncmp(row, "1.0 50.00 50 48 2", 17), 0);
        }
        if (i == 1) { /* the CDF ends at 1 */
            char row[256], last[256] = "";
            while (fgets(row, sizeof(row), fp))
                snprintf(last, sizeof(last), "%s", row);
            assert_non_null(strstr(last, " 1.000000"));
        }
        fclose(fp);
        unlink(p);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            json_report_carries_totals_failures_by_code_reason_and_tls_cause, setup, teardown),
        cmocka_unit_test_setup_teardown(
            exit_code_is_zero_only_without_failures_or_for_a_ramp_that_passed_a_step, setup,
            teardown),
        cmocka_unit_test(a_ramp_step_passes_with_no_failure_and_ninety_percent_of_its_rate),
        cmocka_unit_test(samples_are_differences_of_snapshots_with_interval_percentiles),
        cmocka_unit_test_setup_teardown(plot_files_are_written_even_without_gnuplot, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
