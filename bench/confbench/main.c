/* confbench: SIP load generator for confnode (and any RFC 3261 peer).
 *
 * The main thread parses options, resolves the target, starts the engine's worker
 * threads, then only watches: once a second it snapshots the workers' counters,
 * keeps the per-second series, prints a progress line when stdout is a terminal,
 * drives the ramp, and finally writes the JSON report and plots.
 *
 * Exit status: 0 no failure, 1 some calls or requests failed, 2 usage or setup
 * error (bad option, DNS failure, unreadable certificate, unusable source address).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cb_dns.h"
#include "cb_engine.h"
#include "cb_media_conf.h"
#include "cb_opts.h"
#include "cb_report.h"

#ifndef CONFNODE_VERSION
#define CONFNODE_VERSION "0.0.0"
#endif

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL); /* a signal cuts it short: fine */
}

/* State of the watching loop. */
struct watch {
    const cb_opts_t *o;
    cb_engine_t *e;
    bool tty;
    double t0;          /* load start */
    double next_sample; /* absolute time of the next sample */
    double last_sample;
    double rate; /* target rate in force */
    cb_counters_t *prev;
    cb_sample_t *samples;
    size_t nsamples, cap;
    bool oom;
};

static cb_counters_t *snapshot(const cb_engine_t *e)
{
    cb_counters_t *c = calloc(1, sizeof(*c));
    if (c)
        cb_engine_snapshot(e, c);
    return c;
}

static uint64_t active_now(const cb_engine_t *e)
{
    cb_counters_t *c = snapshot(e);
    uint64_t a = c ? CB_GET(c->active) : 0;
    free(c);
    return a;
}

static void take_sample(struct watch *w, double now)
{
    cb_counters_t *cur = snapshot(w->e);
    if (!cur) {
        w->oom = true;
        return;
    }
    if (w->nsamples == w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 128;
        cb_sample_t *s = realloc(w->samples, nc * sizeof(*s));
        if (!s) {
            free(cur);
            w->oom = true;
            return;
        }
        w->samples = s;
        w->cap = nc;
    }
    cb_sample_t *s = &w->samples[w->nsamples++];
    cb_sample_from(s, cur, w->prev, now - w->t0, w->rate);
    if (w->tty) {
        char line[1024];
        cb_progress_line(line, sizeof(line), s, cur);
        printf("%s\n", line);
        fflush(stdout);
    }
    free(w->prev);
    w->prev = cur;
    w->last_sample = now;
}

/* Waits until `until` (absolute), sampling on every whole second. Returns early
 * when stop(arg) says so or a signal arrived. */
static void watch_until(struct watch *w, double until, bool (*stop)(struct watch *))
{
    for (;;) {
        double now = mono_s();
        if (now >= w->next_sample) {
            take_sample(w, now);
            w->next_sample += 1.0;
            if (w->next_sample < now)
                w->next_sample = now + 1.0;
        }
        if (now >= until || g_stop || (stop && stop(w)))
            return;
        double next = w->next_sample < until ? w->next_sample : until;
        double slice = next - now;
        sleep_s(slice > 0.05 ? 0.05 : slice);
    }
}

static bool stop_when_count_reached(struct watch *w)
{
    return cb_engine_count_reached(w->e);
}

static bool stop_when_idle(struct watch *w)
{
    return cb_engine_rate_applied(w->e) && active_now(w->e) == 0;
}

/* Runs one ramp step; fills *st. Returns false when the ramp must stop. */
static bool ramp_step(struct watch *w, double rate, cb_step_t *st)
{
    const cb_opts_t *o = w->o;
    memset(st, 0, sizeof(*st));
    st->rate = rate;
    cb_counters_t *before = snapshot(w->e);
    if (!before)
        return false;
    w->rate = rate;
    cb_engine_set_rate(w->e, rate);
    watch_until(w, mono_s() + o->ramp.step_seconds, NULL);
    w->rate = 0;
    cb_engine_set_rate(w->e, 0);
    watch_until(w, mono_s() + o->drain_s, stop_when_idle);
    cb_counters_t *after = snapshot(w->e);
    if (!after) {
        free(before);
        return false;
    }
    st->started = CB_GET(after->started) - CB_GET(before->started);
    st->succeeded = CB_GET(after->succeeded) - CB_GET(before->succeeded);
    st->failed = CB_GET(after->failed) - CB_GET(before->failed);
    st->achieved = (double)st->succeeded / o->ramp.step_seconds;
    st->pass = cb_step_passes(st) && CB_GET(after->active) == 0;
    free(before);
    free(after);
    return st->pass && !g_stop;
}

static int usage_error(const char *msg)
{
    fprintf(stderr, "confbench: %s\n(confbench --help lists the options)\n", msg);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = 2;
    char err[512];
    cb_opts_t *o = calloc(1, sizeof(*o));
    cb_addr_t *targets = NULL;
    unsigned ntargets = 0;
    cb_engine_t *e = NULL;
    cb_counters_t *total = NULL;
    cb_step_t steps[1000];
    size_t nsteps = 0;
    double best = 0;
    struct watch w;
    memset(&w, 0, sizeof(w));
    if (!o) {
        fprintf(stderr, "confbench: out of memory\n");
        return 2;
    }
    if (cb_opts_parse(argc, argv, o, err, sizeof(err))) {
        rc = usage_error(err);
        goto out;
    }
    if (o->help) {
        cb_opts_usage(stdout);
        rc = 0;
        goto out;
    }
    if (o->version) {
        printf("confbench %s\n", CONFNODE_VERSION);
        rc = 0;
        goto out;
    }
    if (o->srtp && o->media) {
        rc = usage_error("--srtp offers SRTP in SDP only; media with --srtp is not "
                         "implemented (use --media without --srtp)");
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (cb_resolve(o, 5000, &targets, &ntargets, err, sizeof(err))) {
        fprintf(stderr, "confbench: %s\n", err);
        goto out;
    }
    if (o->conference) {
        rc = cb_conf_run(o, targets, ntargets);
        goto out;
    }
    if (o->verbose > 0) {
        for (unsigned i = 0; i < ntargets; i++)
            fprintf(stderr, "confbench: target %s%s%s\n", targets[i].text,
                    targets[i].host[0] ? " " : "", targets[i].host);
    }
    /* A fixed-rate run makes exactly rate x duration calls unless --count says
     * otherwise, so totals can be checked. */
    if (!o->ramp.on && !o->count)
        o->count =
            (uint64_t)(o->rate * o->duration + 0.5) ? (uint64_t)(o->rate * o->duration + 0.5) : 1;
    e = cb_engine_new(o, targets, ntargets, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "confbench: %s\n", err);
        goto out;
    }
    w.o = o;
    w.e = e;
    w.tty = isatty(STDOUT_FILENO) && o->verbose >= 0;
    w.prev = calloc(1, sizeof(*w.prev));
    if (!w.prev || cb_engine_start(e, err, sizeof(err))) {
        fprintf(stderr, "confbench: %s\n", w.prev ? err : "out of memory");
        goto out;
    }
    w.t0 = mono_s();
    w.next_sample = w.t0 + 1.0;
    w.last_sample = w.t0;
    if (o->ramp.on) {
        for (unsigned i = 0; i < o->ramp.max_steps && !g_stop; i++) {
            double rate = o->ramp.start + o->ramp.step * i;
            if (rate > o->ramp.max + 1e-9)
                break;
            bool go_on = ramp_step(&w, rate, &steps[nsteps]);
            if (steps[nsteps].pass)
                best = rate;
            nsteps++;
            if (w.tty)
                printf("step %zu: %.1f/s target, %.1f/s achieved, %llu failed: %s\n", nsteps, rate,
                       steps[nsteps - 1].achieved, (unsigned long long)steps[nsteps - 1].failed,
                       steps[nsteps - 1].pass ? "pass" : "FAIL");
            if (!go_on)
                break;
        }
    } else {
        w.rate = o->rate;
        cb_engine_set_rate(e, o->rate);
        /* A count-bounded run gets a second of grace beyond --duration, so thread
         * start-up jitter does not cut off its last calls. */
        watch_until(&w, w.t0 + o->duration + (o->count ? 1.0 : 0.0),
                    o->count ? stop_when_count_reached : NULL);
        w.rate = 0;
        cb_engine_set_rate(e, 0);
        if (!g_stop)
            watch_until(&w, mono_s() + o->drain_s, stop_when_idle);
    }
    double end = mono_s();
    if (end - w.last_sample > 0.2)
        take_sample(&w, end);
    cb_engine_stop(e);
    total = snapshot(e);
    if (!total) {
        fprintf(stderr, "confbench: out of memory\n");
        goto out;
    }
    cb_run_t run = {
        .o = o,
        .targets = targets,
        .ntargets = ntargets,
        .elapsed = end - w.t0,
        .total = total,
        .samples = w.samples,
        .nsamples = w.nsamples,
        .steps = steps,
        .nsteps = nsteps,
        .ramp_best = best,
        .interrupted = g_stop != 0,
    };
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++)
        run.messages[i] = cb_engine_message(e, (cb_fail_t)i);
    run.exit_code = cb_run_exit_code(&run);
    rc = run.exit_code;
    if (o->json[0] && cb_report_write_json(&run, o->json, err, sizeof(err))) {
        fprintf(stderr, "confbench: %s\n", err);
        rc = 2;
    }
    if (o->plot[0]) {
        bool rendered;
        if (cb_plot_write(&run, o->plot, &rendered, err, sizeof(err))) {
            fprintf(stderr, "confbench: plots: %s\n", err);
            rc = 2;
        } else if (rendered) {
            if (o->verbose >= 0)
                fprintf(stderr, "confbench: plots: %s/{rate,failures,latency,latency_cdf}.png\n",
                        o->plot);
        } else {
            fprintf(stderr,
                    "confbench: gnuplot is not installed (Debian package gnuplot-nox): "
                    "wrote %s/plots.gp and the .dat files; run gnuplot plots.gp there\n",
                    o->plot);
        }
    }
    if (w.tty || o->verbose > 0 || (o->verbose >= 0 && rc != 0))
        cb_report_summary(w.tty ? stdout : stderr, &run);
    if (w.oom)
        fprintf(stderr, "confbench: the per-second series is incomplete (out of memory)\n");
out:
    cb_engine_free(e);
    free(total);
    free(w.prev);
    free(w.samples);
    free(targets);
    free(o);
    return rc;
}
