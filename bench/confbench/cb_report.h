/* confbench results: the per-second series, the JSON report, gnuplot files and the
 * terminal lines. Pure formatting: nothing here touches the network. */
#ifndef CB_REPORT_H
#define CB_REPORT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cb_dns.h"
#include "cb_opts.h"
#include "cb_stats.h"

/* One second of the run (differences of two snapshots). */
typedef struct cb_sample {
    double t;           /* seconds since the load started, at the end of the interval */
    double target_rate; /* launch rate in force */
    uint64_t started, succeeded, failed, active, retrans;
    uint64_t lat[CB_LAT_KINDS][3]; /* p50, p90, p99 in microseconds (0 = none) */
    uint64_t lat_n[CB_LAT_KINDS];
    uint64_t by_reason[CB_FAIL_REASONS];
} cb_sample_t;

/* Fills *s from the difference cur - prev over `seconds`. */
void cb_sample_from(cb_sample_t *s, const cb_counters_t *cur, const cb_counters_t *prev, double t,
                    double target_rate);

/* One ramp step. */
typedef struct cb_step {
    double rate;     /* target */
    double achieved; /* succeeded calls / step seconds */
    uint64_t started, succeeded, failed;
    bool pass;
} cb_step_t;

/* Decides whether a ramp step passed: no failure, and at least 90% of the target
 * rate achieved. */
bool cb_step_passes(const cb_step_t *s);

typedef struct cb_run {
    const cb_opts_t *o;
    const cb_addr_t *targets;
    unsigned ntargets;
    double elapsed; /* seconds from start to the end of the drain */
    const cb_counters_t *total;
    const cb_sample_t *samples;
    size_t nsamples;
    const cb_step_t *steps;
    size_t nsteps;
    double ramp_best;                      /* highest passing rate, 0 when none */
    const char *messages[CB_FAIL_REASONS]; /* first message per reason, "" or NULL */
    bool interrupted;                      /* stopped by a signal */
    int exit_code;
} cb_run_t;

/* The exit code for a finished run: 0 with no failure (ramp: when a step passed),
 * 1 otherwise. */
int cb_run_exit_code(const cb_run_t *r);

/* The whole report as a JSON object (caller puts it). NULL on allocation failure. */
json_object *cb_report_json(const cb_run_t *r);

/* Writes the report to path. Returns 0 or -1 with a reason. */
int cb_report_write_json(const cb_run_t *r, const char *path, char *err, size_t errlen);

/* Writes gnuplot data and scripts into dir (created if missing) and, when gnuplot
 * is installed, renders PNGs. *rendered says which happened. Returns 0 or -1. */
int cb_plot_write(const cb_run_t *r, const char *dir, bool *rendered, char *err, size_t errlen);

/* One progress line for the terminal (no newline). */
void cb_progress_line(char *buf, size_t cap, const cb_sample_t *s, const cb_counters_t *total);

/* The end-of-run summary, several lines. */
void cb_report_summary(FILE *f, const cb_run_t *r);

#endif
