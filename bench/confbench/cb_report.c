/* confbench results (see cb_report.h). */
#include "cb_report.h"

#include <errno.h>
#include <openssl/x509.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const double quantiles[3] = {0.50, 0.90, 0.99};

void cb_sample_from(cb_sample_t *s, const cb_counters_t *cur, const cb_counters_t *prev, double t,
                    double target_rate)
{
    memset(s, 0, sizeof(*s));
    cb_counters_t *d = calloc(1, sizeof(*d));
    s->t = t;
    s->target_rate = target_rate;
    if (!d)
        return;
    cb_counters_diff(d, cur, prev);
    s->started = CB_GET(d->started);
    s->succeeded = CB_GET(d->succeeded);
    s->failed = CB_GET(d->failed);
    s->active = CB_GET(cur->active);
    s->retrans = CB_GET(d->retransmissions);
    for (unsigned k = 0; k < CB_LAT_KINDS; k++) {
        s->lat_n[k] = CB_GET(d->lat[k].n);
        for (unsigned q = 0; q < 3; q++)
            s->lat[k][q] = cb_hist_quantile(&d->lat[k], quantiles[q]);
    }
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++)
        s->by_reason[i] = CB_GET(d->by_reason[i]);
    free(d);
}

bool cb_step_passes(const cb_step_t *s)
{
    return s->failed == 0 && s->started > 0 && s->achieved >= 0.9 * s->rate;
}

int cb_run_exit_code(const cb_run_t *r)
{
    if (r->o->ramp.on)
        return r->ramp_best > 0 ? 0 : 1;
    return CB_GET(r->total->failed) == 0 && !r->interrupted ? 0 : 1;
}

static const char *verify_text(unsigned code)
{
    return code == 0 ? "handshake failed (no certificate error)"
                     : X509_verify_cert_error_string((long)code);
}

/* ------------------------------------------------------------------------ JSON */

#define J_ADD(obj, key, val) json_object_object_add(obj, key, val)

static json_object *j_u64(uint64_t v)
{
    return json_object_new_uint64(v);
}

static json_object *j_ms(uint64_t us)
{
    return json_object_new_double((double)us / 1000.0);
}

static json_object *latency_json(const cb_hist_t *h)
{
    json_object *o = json_object_new_object();
    uint64_t n = CB_GET(h->n);
    J_ADD(o, "count", j_u64(n));
    J_ADD(o, "unit", json_object_new_string("ms"));
    if (n) {
        J_ADD(o, "min", j_ms(CB_GET(h->min)));
        J_ADD(o, "mean", json_object_new_double(cb_hist_mean(h) / 1000.0));
        J_ADD(o, "p50", j_ms(cb_hist_quantile(h, 0.50)));
        J_ADD(o, "p90", j_ms(cb_hist_quantile(h, 0.90)));
        J_ADD(o, "p99", j_ms(cb_hist_quantile(h, 0.99)));
        J_ADD(o, "p999", j_ms(cb_hist_quantile(h, 0.999)));
        J_ADD(o, "max", j_ms(CB_GET(h->max)));
    }
    /* Non-empty buckets: [upper bound in ms, count]. */
    json_object *hist = json_object_new_array();
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        uint64_t c = CB_GET(h->counts[i]);
        if (!c)
            continue;
        json_object *b = json_object_new_array();
        json_object_array_add(b, j_ms(cb_hist_upper(i)));
        json_object_array_add(b, j_u64(c));
        json_object_array_add(hist, b);
    }
    J_ADD(o, "histogram", hist);
    return o;
}

static json_object *config_json(const cb_run_t *r)
{
    const cb_opts_t *o = r->o;
    json_object *c = json_object_new_object();
    char target[300];
    if (o->target.port)
        snprintf(target, sizeof(target), "%s%s%s:%u", strchr(o->target.host, ':') ? "[" : "",
                 o->target.host, strchr(o->target.host, ':') ? "]" : "", o->target.port);
    else
        snprintf(target, sizeof(target), "%s", o->target.host);
    J_ADD(c, "target", json_object_new_string(target));
    if (!o->target.port)
        J_ADD(c, "srv", json_object_new_string(cb_srv_prefix(o)));
    json_object *addrs = json_object_new_array();
    for (unsigned i = 0; i < r->ntargets; i++)
        json_object_array_add(addrs, json_object_new_string(r->targets[i].text));
    J_ADD(c, "addresses", addrs);
    J_ADD(c, "scenario", json_object_new_string(cb_scenario_name(o->scenario)));
    J_ADD(c, "transport", json_object_new_string(cb_transport_name(o->transport)));
    J_ADD(c, "rate", json_object_new_double(o->rate));
    J_ADD(c, "duration_s", json_object_new_int64(o->duration));
    J_ADD(c, "count", j_u64(o->count));
    J_ADD(c, "max_calls", json_object_new_int64(o->max_calls));
    J_ADD(c, "hold_ms", json_object_new_int64(o->hold_ms));
    J_ADD(c, "threads", json_object_new_int64(o->threads));
    J_ADD(c, "conns_per_thread", json_object_new_int64(o->conns));
    J_ADD(c, "conn_per_call", json_object_new_boolean(o->conn_per_call));
    json_object *binds = json_object_new_array();
    for (unsigned i = 0; i < o->nbinds; i++)
        json_object_array_add(binds, json_object_new_string(o->binds[i]));
    J_ADD(c, "bind", binds);
    J_ADD(c, "dns", o->dns[0] ? json_object_new_string(o->dns) : NULL);
    J_ADD(c, "user", json_object_new_string(o->user));
    J_ADD(c, "expect", json_object_new_int(cb_expected_code(o)));
    J_ADD(c, "media", json_object_new_boolean(o->media));
    J_ADD(c, "srtp", json_object_new_boolean(o->srtp));
    J_ADD(c, "timeout_ms", json_object_new_int64(o->timeout_ms));
    J_ADD(c, "t1_ms", json_object_new_int64(o->t1_ms));
    if (o->transport == CB_TP_TLS) {
        J_ADD(c, "tls_verify", json_object_new_boolean(!o->no_verify));
        J_ADD(c, "ca", o->ca[0] ? json_object_new_string(o->ca) : NULL);
        J_ADD(c, "tls_name", o->tls_name[0] ? json_object_new_string(o->tls_name) : NULL);
        J_ADD(c, "client_cert", o->cert[0] ? json_object_new_string(o->cert) : NULL);
    }
    if (o->ramp.on) {
        json_object *ramp = json_object_new_object();
        J_ADD(ramp, "start", json_object_new_double(o->ramp.start));
        J_ADD(ramp, "step", json_object_new_double(o->ramp.step));
        J_ADD(ramp, "max", json_object_new_double(o->ramp.max));
        J_ADD(ramp, "step_s", json_object_new_int64(o->ramp.step_seconds));
        J_ADD(ramp, "max_steps", json_object_new_int64(o->ramp.max_steps));
        J_ADD(c, "ramp", ramp);
    }
    return c;
}

static json_object *failures_json(const cb_run_t *r)
{
    const cb_counters_t *t = r->total;
    json_object *f = json_object_new_object();
    J_ADD(f, "total", j_u64(CB_GET(t->failed)));
    json_object *reason = json_object_new_object();
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++)
        J_ADD(reason, cb_fail_name((cb_fail_t)i), j_u64(CB_GET(t->by_reason[i])));
    J_ADD(f, "by_reason", reason);
    json_object *code = json_object_new_object();
    for (unsigned i = 100; i < CB_CODES; i++) {
        uint64_t n = CB_GET(t->by_code[i]);
        if (!n)
            continue;
        char k[8];
        snprintf(k, sizeof(k), "%u", i);
        J_ADD(code, k, j_u64(n));
    }
    J_ADD(f, "by_code", code);
    json_object *tls = json_object_new_object();
    for (unsigned i = 0; i < CB_VERIFY_CODES; i++) {
        uint64_t n = CB_GET(t->tls_verify[i]);
        if (n)
            J_ADD(tls, verify_text(i), j_u64(n));
    }
    J_ADD(f, "tls", tls);
    json_object *msgs = json_object_new_object();
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++)
        if (r->messages[i] && r->messages[i][0])
            J_ADD(msgs, cb_fail_name((cb_fail_t)i), json_object_new_string(r->messages[i]));
    J_ADD(f, "first_message", msgs);
    return f;
}

static json_object *series_json(const cb_run_t *r)
{
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < r->nsamples; i++) {
        const cb_sample_t *s = &r->samples[i];
        json_object *o = json_object_new_object();
        J_ADD(o, "t", json_object_new_double(s->t));
        J_ADD(o, "target_rate", json_object_new_double(s->target_rate));
        J_ADD(o, "started", j_u64(s->started));
        J_ADD(o, "succeeded", j_u64(s->succeeded));
        J_ADD(o, "failed", j_u64(s->failed));
        J_ADD(o, "active", j_u64(s->active));
        J_ADD(o, "retransmissions", j_u64(s->retrans));
        for (unsigned k = 0; k < CB_LAT_KINDS; k++) {
            if (!s->lat_n[k])
                continue;
            json_object *l = json_object_new_object();
            J_ADD(l, "count", j_u64(s->lat_n[k]));
            J_ADD(l, "p50", j_ms(s->lat[k][0]));
            J_ADD(l, "p90", j_ms(s->lat[k][1]));
            J_ADD(l, "p99", j_ms(s->lat[k][2]));
            J_ADD(o, cb_lat_name((cb_lat_t)k), l);
        }
        if (s->failed) {
            json_object *fr = json_object_new_object();
            for (unsigned k = 0; k < CB_FAIL_REASONS; k++)
                if (s->by_reason[k])
                    J_ADD(fr, cb_fail_name((cb_fail_t)k), j_u64(s->by_reason[k]));
            J_ADD(o, "failures", fr);
        }
        json_object_array_add(a, o);
    }
    return a;
}

json_object *cb_report_json(const cb_run_t *r)
{
    const cb_counters_t *t = r->total;
    json_object *root = json_object_new_object();
    if (!root)
        return NULL;
    J_ADD(root, "tool", json_object_new_string("confbench"));
    J_ADD(root, "config", config_json(r));
    json_object *tot = json_object_new_object();
    J_ADD(tot, "elapsed_s", json_object_new_double(r->elapsed));
    J_ADD(tot, "started", j_u64(CB_GET(t->started)));
    J_ADD(tot, "succeeded", j_u64(CB_GET(t->succeeded)));
    J_ADD(tot, "failed", j_u64(CB_GET(t->failed)));
    J_ADD(tot, "unfinished", j_u64(CB_GET(t->active)));
    J_ADD(tot, "requests_sent", j_u64(CB_GET(t->requests_sent)));
    J_ADD(tot, "responses_received", j_u64(CB_GET(t->responses_received)));
    J_ADD(tot, "retransmissions", j_u64(CB_GET(t->retransmissions)));
    J_ADD(tot, "stray_responses", j_u64(CB_GET(t->stray_responses)));
    J_ADD(tot, "requests_received", j_u64(CB_GET(t->requests_received)));
    J_ADD(tot, "connects", j_u64(CB_GET(t->connects)));
    J_ADD(tot, "tls_handshakes", j_u64(CB_GET(t->handshakes)));
    J_ADD(tot, "launches_dropped_max_calls", j_u64(CB_GET(t->rate_deferred)));
    J_ADD(tot, "launches_dropped_late", j_u64(CB_GET(t->launches_late)));
    double el = r->elapsed > 0 ? r->elapsed : 1;
    J_ADD(tot, "succeeded_per_s", json_object_new_double((double)CB_GET(t->succeeded) / el));
    J_ADD(tot, "interrupted", json_object_new_boolean(r->interrupted));
    J_ADD(root, "totals", tot);
    json_object *lat = json_object_new_object();
    for (unsigned k = 0; k < CB_LAT_KINDS; k++)
        J_ADD(lat, cb_lat_name((cb_lat_t)k), latency_json(&t->lat[k]));
    J_ADD(root, "latency", lat);
    J_ADD(root, "failures", failures_json(r));
    if (r->o->media) {
        json_object *m = json_object_new_object();
        J_ADD(m, "calls_with_media", j_u64(CB_GET(t->media_calls)));
        J_ADD(m, "packets_sent", j_u64(CB_GET(t->media_sent)));
        J_ADD(m, "packets_received", j_u64(CB_GET(t->media_received)));
        J_ADD(m, "calls_that_received_nothing", j_u64(CB_GET(t->media_calls_silent)));
        J_ADD(root, "media", m);
    }
    J_ADD(root, "unsolicited_media_packets", j_u64(CB_GET(t->media_unsolicited)));
    if (r->o->ramp.on) {
        json_object *ramp = json_object_new_object();
        json_object *steps = json_object_new_array();
        for (size_t i = 0; i < r->nsteps; i++) {
            const cb_step_t *s = &r->steps[i];
            json_object *so = json_object_new_object();
            J_ADD(so, "rate", json_object_new_double(s->rate));
            J_ADD(so, "achieved", json_object_new_double(s->achieved));
            J_ADD(so, "started", j_u64(s->started));
            J_ADD(so, "succeeded", j_u64(s->succeeded));
            J_ADD(so, "failed", j_u64(s->failed));
            J_ADD(so, "pass", json_object_new_boolean(s->pass));
            json_object_array_add(steps, so);
        }
        J_ADD(ramp, "steps", steps);
        J_ADD(ramp, "max_rate_without_failures", json_object_new_double(r->ramp_best));
        J_ADD(root, "ramp", ramp);
    }
    J_ADD(root, "series", series_json(r));
    J_ADD(root, "exit_code", json_object_new_int(r->exit_code));
    return root;
}

int cb_report_write_json(const cb_run_t *r, const char *path, char *err, size_t errlen)
{
    json_object *root = cb_report_json(r);
    if (!root) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0;
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
        goto out;
    }
    fputs(json_object_to_json_string_ext(root,
                                         JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
          f);
    fputc('\n', f);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        rc = -1;
    }
out:
    json_object_put(root);
    return rc;
}

/* ------------------------------------------------------------------------ plots */

static FILE *open_in(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return f;
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char buf[1024];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n && n < sizeof(buf) - strlen(prog) - 2) {
            snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog);
            if (access(buf, X_OK) == 0)
                return true;
        }
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

static int write_cdf(FILE *f, const cb_hist_t *h)
{
    uint64_t n = CB_GET(h->n), seen = 0;
    fprintf(f, "# latency_ms cumulative_fraction\n");
    if (!n)
        return fprintf(f, "0 0\n") < 0 ? -1 : 0;
    for (unsigned i = 0; i < CB_HIST_BUCKETS; i++) {
        uint64_t c = CB_GET(h->counts[i]);
        if (!c)
            continue;
        seen += c;
        uint64_t v = cb_hist_upper(i);
        if (v > CB_GET(h->max))
            v = CB_GET(h->max);
        fprintf(f, "%.3f %.6f\n", (double)v / 1000.0, (double)seen / (double)n);
    }
    return ferror(f) ? -1 : 0;
}

static const char plot_script[] =
    "# confbench plots; run: gnuplot plots.gp (in this directory)\n"
    "set terminal pngcairo size 1000,500 noenhanced\n"
    "set grid\n"
    "set key outside right\n"
    "set xlabel 'time (s)'\n"
    "set output 'rate.png'\n"
    "set title 'confbench: rate'\n"
    "set ylabel 'per second'\n"
    "set y2label 'active calls'\n"
    "set y2tics\n"
    "plot 'series.dat' using 1:2 with lines title 'target', \\\n"
    "     '' using 1:3 with lines title 'started', \\\n"
    "     '' using 1:4 with lines title 'succeeded', \\\n"
    "     '' using 1:6 with lines title 'active' axes x1y2\n"
    "unset y2label\n"
    "unset y2tics\n"
    "set output 'failures.png'\n"
    "set title 'confbench: failures per second'\n"
    "set ylabel 'failures'\n"
    "set yrange [0:1<*]\n"
    "plot 'series.dat' using 1:5 with impulses lw 3 title 'failed', \\\n"
    "     '' using 1:7 with lines title 'retransmissions'\n"
    "set output 'latency.png'\n"
    "set title 'confbench: latency per second'\n"
    "set ylabel 'ms'\n"
    "set yrange [0:*]\n"
    "plot 'series.dat' using 1:8 with lines title 'INVITE->200 p50', \\\n"
    "     '' using 1:9 with lines title 'INVITE->200 p90', \\\n"
    "     '' using 1:10 with lines title 'INVITE->200 p99', \\\n"
    "     '' using 1:11 with lines title 'non-INVITE p50', \\\n"
    "     '' using 1:13 with lines title 'non-INVITE p99'\n"
    "set output 'latency_cdf.png'\n"
    "set title 'confbench: latency CDF'\n"
    "set xlabel 'latency (ms)'\n"
    "set ylabel 'fraction of responses'\n"
    "set logscale x\n"
    "set yrange [0:1]\n"
    "plot 'cdf_invite.dat' using 1:2 with steps title 'INVITE->200', \\\n"
    "     'cdf_non_invite.dat' using 1:2 with steps title 'non-INVITE', \\\n"
    "     'cdf_handshake.dat' using 1:2 with steps title 'TLS handshake'\n";

static int run_gnuplot(const char *dir, char *err, size_t errlen)
{
    char *argv[] = {"gnuplot", "plots.gp", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(err, errlen, "cannot run gnuplot: %s", strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "waitpid: %s", strerror(errno));
            return -1;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "gnuplot failed on %s/plots.gp", dir);
        return -1;
    }
    return 0;
}

int cb_plot_write(const cb_run_t *r, const char *dir, bool *rendered, char *err, size_t errlen)
{
    *rendered = false;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    FILE *f = open_in(dir, "series.dat", err, errlen);
    if (!f)
        return -1;
    fprintf(f, "# t target started succeeded failed active retrans inv_p50 inv_p90 inv_p99 "
               "ni_p50 ni_p90 ni_p99 (latencies in ms)\n");
    for (size_t i = 0; i < r->nsamples; i++) {
        const cb_sample_t *s = &r->samples[i];
        fprintf(f, "%.1f %.2f %llu %llu %llu %llu %llu", s->t, s->target_rate,
                (unsigned long long)s->started, (unsigned long long)s->succeeded,
                (unsigned long long)s->failed, (unsigned long long)s->active,
                (unsigned long long)s->retrans);
        for (unsigned k = 0; k < 2; k++)
            for (unsigned q = 0; q < 3; q++) {
                if (s->lat_n[k])
                    fprintf(f, " %.3f", (double)s->lat[k][q] / 1000.0);
                else
                    fprintf(f, " NaN");
            }
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s/series.dat", dir);
        return -1;
    }
    static const char *const cdf_names[CB_LAT_KINDS] = {"cdf_invite.dat", "cdf_non_invite.dat",
                                                        "cdf_handshake.dat"};
    for (unsigned k = 0; k < CB_LAT_KINDS; k++) {
        f = open_in(dir, cdf_names[k], err, errlen);
        if (!f)
            return -1;
        int rc = write_cdf(f, &r->total->lat[k]);
        if (fclose(f) != 0 || rc) {
            snprintf(err, errlen, "cannot write %s/%s", dir, cdf_names[k]);
            return -1;
        }
    }
    f = open_in(dir, "plots.gp", err, errlen);
    if (!f)
        return -1;
    fputs(plot_script, f);
    if (fclose(f) != 0) {
        snprintf(err, errlen, "cannot write %s/plots.gp", dir);
        return -1;
    }
    if (!in_path("gnuplot"))
        return 0;
    if (run_gnuplot(dir, err, errlen))
        return -1;
    *rendered = true;
    return 0;
}

/* ------------------------------------------------------------------------ terminal */

static void fmt_lat(char *b, size_t cap, const uint64_t q[3], uint64_t n)
{
    if (!n)
        snprintf(b, cap, "-");
    else
        snprintf(b, cap, "%.1f/%.1f/%.1f", (double)q[0] / 1000.0, (double)q[1] / 1000.0,
                 (double)q[2] / 1000.0);
}

void cb_progress_line(char *buf, size_t cap, const cb_sample_t *s, const cb_counters_t *total)
{
    char inv[64], ni[64];
    fmt_lat(inv, sizeof(inv), s->lat[CB_LAT_INVITE], s->lat_n[CB_LAT_INVITE]);
    fmt_lat(ni, sizeof(ni), s->lat[CB_LAT_NONINVITE], s->lat_n[CB_LAT_NONINVITE]);
    int n = snprintf(buf, cap,
                     "[%5.0fs] target %.0f/s started %llu ok %llu fail %llu active %llu | "
                     "total ok %llu fail %llu | INVITE->200 ms p50/90/99 %s | non-INVITE %s",
                     s->t, s->target_rate, (unsigned long long)s->started,
                     (unsigned long long)s->succeeded, (unsigned long long)s->failed,
                     (unsigned long long)s->active, (unsigned long long)CB_GET(total->succeeded),
                     (unsigned long long)CB_GET(total->failed), inv, ni);
    if (n < 0 || (size_t)n >= cap)
        return;
    size_t len = (size_t)n;
    if (s->retrans && len < cap)
        len +=
            (size_t)snprintf(buf + len, cap - len, " | retr %llu", (unsigned long long)s->retrans);
    /* Failures so far, by reason and code. */
    bool any = false;
    for (unsigned i = 0; i < CB_FAIL_REASONS && len < cap; i++) {
        uint64_t v = CB_GET(total->by_reason[i]);
        if (!v || i == CB_FAIL_UNEXPECTED)
            continue;
        len += (size_t)snprintf(buf + len, cap - len, "%s%s:%llu", any ? " " : " | ",
                                cb_fail_name((cb_fail_t)i), (unsigned long long)v);
        any = true;
    }
    for (unsigned i = 100; i < CB_CODES && len < cap; i++) {
        uint64_t v = CB_GET(total->by_code[i]);
        if (!v)
            continue;
        len += (size_t)snprintf(buf + len, cap - len, "%s%u:%llu", any ? " " : " | ", i,
                                (unsigned long long)v);
        any = true;
    }
}

void cb_report_summary(FILE *f, const cb_run_t *r)
{
    const cb_counters_t *t = r->total;
    double el = r->elapsed > 0 ? r->elapsed : 1;
    fprintf(f,
            "confbench: %s over %s: %llu started, %llu succeeded, %llu failed, %llu "
            "unfinished in %.1f s (%.1f/s succeeded)\n",
            cb_scenario_name(r->o->scenario), cb_transport_name(r->o->transport),
            (unsigned long long)CB_GET(t->started), (unsigned long long)CB_GET(t->succeeded),
            (unsigned long long)CB_GET(t->failed), (unsigned long long)CB_GET(t->active), el,
            (double)CB_GET(t->succeeded) / el);
    for (unsigned k = 0; k < CB_LAT_KINDS; k++) {
        const cb_hist_t *h = &t->lat[k];
        if (!CB_GET(h->n))
            continue;
        fprintf(f, "  latency %-14s n=%llu p50 %.2f ms p90 %.2f ms p99 %.2f ms max %.2f ms\n",
                cb_lat_name((cb_lat_t)k), (unsigned long long)CB_GET(h->n),
                (double)cb_hist_quantile(h, 0.5) / 1000.0,
                (double)cb_hist_quantile(h, 0.9) / 1000.0,
                (double)cb_hist_quantile(h, 0.99) / 1000.0, (double)CB_GET(h->max) / 1000.0);
    }
    for (unsigned i = 0; i < CB_FAIL_REASONS; i++) {
        uint64_t v = CB_GET(t->by_reason[i]);
        if (v)
            fprintf(f, "  failures %-20s %llu%s%s\n", cb_fail_name((cb_fail_t)i),
                    (unsigned long long)v, r->messages[i] && r->messages[i][0] ? "  first: " : "",
                    r->messages[i] ? r->messages[i] : "");
    }
    for (unsigned i = 100; i < CB_CODES; i++)
        if (CB_GET(t->by_code[i]))
            fprintf(f, "  unexpected %u: %llu\n", i, (unsigned long long)CB_GET(t->by_code[i]));
    for (unsigned i = 0; i < CB_VERIFY_CODES; i++)
        if (CB_GET(t->tls_verify[i]))
            fprintf(f, "  TLS: %s: %llu\n", verify_text(i),
                    (unsigned long long)CB_GET(t->tls_verify[i]));
    if (r->o->media)
        fprintf(f,
                "  media: %llu calls, %llu packets sent, %llu received, %llu calls received "
                "nothing\n",
                (unsigned long long)CB_GET(t->media_calls),
                (unsigned long long)CB_GET(t->media_sent),
                (unsigned long long)CB_GET(t->media_received),
                (unsigned long long)CB_GET(t->media_calls_silent));
    if (CB_GET(t->rate_deferred))
        fprintf(f, "  %llu launches dropped: --max-calls calls were in progress\n",
                (unsigned long long)CB_GET(t->rate_deferred));
    if (CB_GET(t->launches_late))
        fprintf(f,
                "  %llu launches dropped: the generator fell more than 1 s behind its "
                "schedule (starved of CPU?)\n",
                (unsigned long long)CB_GET(t->launches_late));
    if (CB_GET(t->retransmissions) || CB_GET(t->stray_responses))
        fprintf(f, "  retransmissions %llu, stray responses %llu\n",
                (unsigned long long)CB_GET(t->retransmissions),
                (unsigned long long)CB_GET(t->stray_responses));
    if (r->o->ramp.on) {
        for (size_t i = 0; i < r->nsteps; i++)
            fprintf(f, "  step %2zu: %.1f/s -> %.1f/s achieved, %llu failed: %s\n", i + 1,
                    r->steps[i].rate, r->steps[i].achieved, (unsigned long long)r->steps[i].failed,
                    r->steps[i].pass ? "pass" : "FAIL");
        if (r->ramp_best > 0)
            fprintf(f, "  highest rate with no failure: %.1f/s\n", r->ramp_best);
        else
            fprintf(f, "  no step passed\n");
    }
}
