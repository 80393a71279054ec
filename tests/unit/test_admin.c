/* Admin HTTP API: the /status and /metrics renderers, and a real server on loopback
 * driven by an epoll loop in a thread, queried with a minimal HTTP/1.1 client. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin.h"

/* ---- the snapshot fields as the API names them ------------------------------------ */

struct field {
    const char *key;    /* JSON key */
    const char *metric; /* Prometheus metric name */
    const char *type;   /* "gauge" or "counter" */
    size_t off;
};

/* clang-format off */
#define F(k, m, t) {#k, m, t, offsetof(struct cn_worker_snapshot, k)}
/* clang-format on */

static const struct field fields[] = {
    F(connections, "confnode_connections", "gauge"),
    F(transactions, "confnode_transactions", "gauge"),
    F(dialogs, "confnode_dialogs", "gauge"),
    F(calls, "confnode_calls_active", "gauge"),
    F(rx_messages, "confnode_rx_messages_total", "counter"),
    F(tx_messages, "confnode_tx_messages_total", "counter"),
    F(rx_bytes, "confnode_rx_bytes_total", "counter"),
    F(tx_bytes, "confnode_tx_bytes_total", "counter"),
    F(bad_messages, "confnode_bad_messages_total", "counter"),
    F(conns_accepted, "confnode_conns_accepted_total", "counter"),
    F(conns_closed_oversize, "confnode_conns_closed_oversize_total", "counter"),
    F(conns_closed_idle, "confnode_conns_closed_idle_total", "counter"),
    F(conns_closed_error, "confnode_conns_closed_error_total", "counter"),
    F(tls_handshakes, "confnode_tls_handshakes_total", "counter"),
    F(tls_handshake_failures, "confnode_tls_handshake_failures_total", "counter"),
    F(keepalive_pings, "confnode_keepalive_pings_total", "counter"),
    F(retransmissions_absorbed, "confnode_retransmissions_absorbed_total", "counter"),
    F(retransmissions_sent, "confnode_retransmissions_sent_total", "counter"),
    F(calls_total, "confnode_calls_total", "counter"),
    F(ring_drops, "confnode_ring_drops_total", "counter"),
    F(media_legs, "confnode_media_legs", "gauge"),
    F(media_conferences, "confnode_media_conferences", "gauge"),
    F(media_rtp_in, "confnode_media_rtp_in_total", "counter"),
    F(media_rtp_out, "confnode_media_rtp_out_total", "counter"),
    F(media_rtcp_in, "confnode_media_rtcp_in_total", "counter"),
    F(media_rtcp_out, "confnode_media_rtcp_out_total", "counter"),
    F(media_bytes_in, "confnode_media_bytes_in_total", "counter"),
    F(media_bytes_out, "confnode_media_bytes_out_total", "counter"),
    F(media_srtp_auth_failures, "confnode_media_srtp_auth_failures_total", "counter"),
    F(media_srtp_replays, "confnode_media_srtp_replays_total", "counter"),
    F(media_srtp_other_failures, "confnode_media_srtp_other_failures_total", "counter"),
    F(media_drop_malformed, "confnode_media_dropped_malformed_total", "counter"),
    F(media_drop_unexpected, "confnode_media_dropped_unexpected_total", "counter"),
    F(media_drop_jitter, "confnode_media_dropped_jitter_total", "counter"),
    F(media_drop_oversize, "confnode_media_dropped_oversize_total", "counter"),
    F(media_drop_send, "confnode_media_dropped_send_total", "counter"),
    F(media_dtmf_packets, "confnode_media_dtmf_packets_total", "counter"),
    F(media_mixer_ticks, "confnode_media_mixer_ticks_total", "counter"),
    F(media_mixer_overruns, "confnode_media_mixer_overruns_total", "counter"),
    F(media_speaker_switches, "confnode_media_speaker_switches_total", "counter"),
    F(media_keyframe_requests, "confnode_media_keyframe_requests_total", "counter"),
    F(media_video_forwarded, "confnode_media_video_forwarded_total", "counter"),
    F(media_feedback_forwarded, "confnode_media_feedback_forwarded_total", "counter"),
    F(media_rtcp_byes, "confnode_media_rtcp_byes_total", "counter"),
    F(media_timeouts, "confnode_media_timeouts_total", "counter"),
    F(media_latches, "confnode_media_latches_total", "counter"),
    F(media_conf_reuses, "confnode_media_conference_reuses_total", "counter"),
    F(media_port_binds, "confnode_media_socket_binds_total", "counter"),
    F(media_port_reuses, "confnode_media_socket_reuses_total", "counter"),
    F(media_port_idle_drops, "confnode_media_idle_socket_drops_total", "counter"),
};

#define N_FIELDS (sizeof fields / sizeof fields[0])

static uint64_t get_field(const struct cn_worker_snapshot *w, const struct field *f)
{
    uint64_t v;
    memcpy(&v, (const char *)w + f->off, sizeof v);
    return v;
}

static void set_field(struct cn_worker_snapshot *w, const struct field *f, uint64_t v)
{
    memcpy((char *)w + f->off, &v, sizeof v);
}

#define TEST_NODE "node\"1\\west" /* a quote and a backslash: label values need escapes */
#define TEST_VERSION "0.1.0-test"

/* n workers, every number distinct (worker, field and class all change it). */
static void fill_snapshot(struct cn_snapshot *s, unsigned n)
{
    memset(s, 0, sizeof *s);
    s->version = TEST_VERSION;
    s->node_name = TEST_NODE;
    s->uptime_s = 1234.5;
    s->n_workers = n;
    for (unsigned i = 0; i < n; i++) {
        struct cn_worker_snapshot *w = &s->workers[i];
        w->id = 10 + i; /* differs from the index: labels must carry the id */
        w->cpu = i == 1 ? -1 : (int)(2 * i + 3);
        for (size_t f = 0; f < N_FIELDS; f++)
            set_field(w, &fields[f], (uint64_t)(i + 1) * 1000003u + f * 7919u + 17u);
        for (int c = 1; c <= 6; c++)
            w->responses[c] = (uint64_t)(i + 1) * 100000u + (uint64_t)c * 131u;
    }
}

static void snapshot_cb(void *arg, struct cn_snapshot *out)
{
    atomic_int *calls = arg;
    /* the server hands a zeroed snapshot: check before filling */
    int zeroed = out->n_workers == 0 && out->version == NULL && out->workers[5].rx_bytes == 0;
    fill_snapshot(out, 3);
    atomic_fetch_add(calls, zeroed ? 1 : 1000);
}

/* ---- exposition format line checker ----------------------------------------------- */

struct family {
    char name[128];
    char type[16];
    int help, typed, samples;
};

struct expo {
    struct family fam[64];
    int n;
    int current; /* family whose samples may follow, -1 none */
};

static int is_name_char(char c, int first, int colon)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':'))
        return 1;
    return !first && c >= '0' && c <= '9';
}

/* Reads a metric (colon = 1) or label name at *p; 0 when there is none. */
static size_t read_name(const char **p, char *out, size_t outlen, int colon)
{
    size_t n = 0;
    while (is_name_char((*p)[n], n == 0, colon))
        n++;
    if (n == 0 || n >= outlen)
        return 0;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n;
    return n;
}

static struct family *find_family(struct expo *e, const char *name, int create)
{
    for (int i = 0; i < e->n; i++)
        if (strcmp(e->fam[i].name, name) == 0)
            return &e->fam[i];
    if (!create || e->n == 64)
        return NULL;
    struct family *f = &e->fam[e->n++];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

/* Checks {name="value",...}: escapes limited to \\ \" \n, no raw newline. */
static const char *check_labels(const char *p, char *why, size_t whylen)
{
    char lname[128];
    if (*p != '{')
        return p;
    p++;
    while (*p != '}') {
        if (read_name(&p, lname, sizeof lname, 0) == 0 || strncmp(p, "=\"", 2) != 0) {
            snprintf(why, whylen, "bad label name or missing =\"");
            return NULL;
        }
        for (p += 2; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n') {
                snprintf(why, whylen, "unterminated label value");
                return NULL;
            }
            if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
                snprintf(why, whylen, "bad escape in label value");
                return NULL;
            }
            if (*p == '\\')
                p++;
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}') {
            snprintf(why, whylen, "expected , or } after label");
            return NULL;
        }
    }
    return p + 1;
}

static int check_value(const char *v)
{
    if (strcmp(v, "NaN") == 0 || strcmp(v, "+Inf") == 0 || strcmp(v, "-Inf") == 0)
        return 0;
    char *end;
    errno = 0;
    strtod(v, &end);
    if (end == v || errno != 0)
        return -1;
    if (*end == ' ') { /* optional timestamp: an integer */
        const char *t = end + 1;
        strtoll(t, &end, 10);
        if (end == t)
            return -1;
    }
    return *end == '\0' ? 0 : -1;
}

static int check_comment(struct expo *e, const char *line, char *why, size_t whylen)
{
    char name[128];
    const char *p;
    int help = strncmp(line, "# HELP ", 7) == 0;
    if (!help && strncmp(line, "# TYPE ", 7) != 0) {
        snprintf(why, whylen, "comment is neither HELP nor TYPE");
        return -1;
    }
    p = line + 7;
    if (read_name(&p, name, sizeof name, 1) == 0 || *p != ' ' || p[1] == '\0') {
        snprintf(why, whylen, "bad metric name or missing text");
        return -1;
    }
    struct family *f = find_family(e, name, 1);
    if (f == NULL || f->samples > 0 || (help ? f->help : f->typed)) {
        snprintf(why, whylen, "HELP/TYPE repeated or after samples");
        return -1;
    }
    e->current = (int)(f - e->fam);
    if (help) {
        f->help = 1;
        return 0;
    }
    const char *types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(p + 1, types[i]) == 0) {
            snprintf(f->type, sizeof f->type, "%s", types[i]);
            f->typed = 1;
            return 0;
        }
    snprintf(why, whylen, "unknown type");
    return -1;
}

static int check_sample(struct expo *e, const char *line, char *why, size_t whylen)
{
    char name[128];
    const char *p = line;
    if (read_name(&p, name, sizeof name, 1) == 0) {
        snprintf(why, whylen, "bad metric name");
        return -1;
    }
    struct family *f = find_family(e, name, 0);
    if (f == NULL || !f->help || !f->typed || e->current != (int)(f - e->fam)) {
        snprintf(why, whylen, "sample without HELP and TYPE just before its group");
        return -1;
    }
    if (strcmp(f->type, "counter") == 0 && strstr(name, "_total") != name + strlen(name) - 6) {
        snprintf(why, whylen, "counter name does not end in _total");
        return -1;
    }
    p = check_labels(p, why, whylen);
    if (p == NULL)
        return -1;
    if (*p != ' ' || check_value(p + 1) != 0) {
        snprintf(why, whylen, "bad value");
        return -1;
    }
    f->samples++;
    return 0;
}

/* Returns 0 when every line of text is a HELP, TYPE or sample line in the
 * Prometheus text format 0.0.4, each sample's family has HELP and TYPE before its
 * group, and the text ends with a newline; else -1 with the line and the reason. */
static int check_exposition(const char *text, struct expo *e, char *why, size_t whylen)
{
    char line[1024];
    memset(e, 0, sizeof *e);
    e->current = -1;
    if (*text == '\0' || text[strlen(text) - 1] != '\n') {
        snprintf(why, whylen, "empty or no final newline");
        return -1;
    }
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        if (len == 0 || len >= sizeof line) {
            snprintf(why, whylen, "empty or overlong line");
            return -1;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        char reason[128];
        int rc = line[0] == '#' ? check_comment(e, line, reason, sizeof reason)
                                : check_sample(e, line, reason, sizeof reason);
        if (rc != 0) {
            snprintf(why, whylen, "%s: %s", reason, line);
            return -1;
        }
        p = nl + 1;
    }
    for (int i = 0; i < e->n; i++)
        if (!e->fam[i].help || !e->fam[i].typed) {
            snprintf(why, whylen, "%s lacks HELP or TYPE", e->fam[i].name);
            return -1;
        }
    return 0;
}

static void assert_exposition(const char *text, struct expo *e)
{
    char why[1200];
    if (check_exposition(text, e, why, sizeof why) != 0)
        fail_msg("exposition: %s", why);
}

/* ---- renderer tests --------------------------------------------------------------- */

static json_object *parse_json(const char *text)
{
    enum json_tokener_error jerr;
    json_object *o = json_tokener_parse_verbose(text, &jerr);
    if (o == NULL)
        fail_msg("JSON does not parse (%s): %s", json_tokener_error_desc(jerr), text);
    return o;
}

static uint64_t json_u64(json_object *obj, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
        fail_msg("no integer \"%s\"", key);
    return json_object_get_uint64(v);
}

static json_object *json_get(json_object *obj, const char *key, json_type type)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, type))
        fail_msg("no \"%s\" of type %s", key, json_type_to_name(type));
    return v;
}

static void test_field_table_covers_every_counter_of_the_worker_snapshot(void **state)
{
    (void)state;
    size_t span = offsetof(struct cn_worker_snapshot, responses) -
                  offsetof(struct cn_worker_snapshot, connections);
    assert_int_equal(span / sizeof(uint64_t), N_FIELDS);
}

static void test_status_parses_back_and_totals_equal_the_sums_of_three_workers(void **state)
{
    (void)state;
    struct cn_snapshot *s = malloc(sizeof *s);
    assert_non_null(s);
    fill_snapshot(s, 3);
    char *text = cn_admin_render_status(s);
    assert_non_null(text);
    json_object *root = parse_json(text);

    assert_string_equal(json_object_get_string(json_get(root, "version", json_type_string)),
                        TEST_VERSION);
    assert_string_equal(json_object_get_string(json_get(root, "node", json_type_string)),
                        TEST_NODE);
    assert_true(json_object_get_double(json_get(root, "uptime_s", json_type_double)) ==
                s->uptime_s);
    json_object *workers = json_get(root, "workers", json_type_array);
    assert_int_equal(json_object_array_length(workers), 3);
    json_object *totals = json_get(root, "totals", json_type_object);

    for (unsigned i = 0; i < 3; i++) {
        json_object *w = json_object_array_get_idx(workers, i);
        assert_int_equal(json_u64(w, "id"), s->workers[i].id);
        assert_int_equal(json_object_get_int(json_get(w, "cpu", json_type_int)), s->workers[i].cpu);
        /* every field, the responses object, id and cpu: nothing more */
        assert_int_equal(json_object_object_length(w), N_FIELDS + 3);
        for (size_t f = 0; f < N_FIELDS; f++)
            assert_int_equal(json_u64(w, fields[f].key), get_field(&s->workers[i], &fields[f]));
        json_object *r = json_get(w, "responses", json_type_object);
        for (int c = 1; c <= 6; c++) {
            char key[8];
            snprintf(key, sizeof key, "%dxx", c);
            assert_int_equal(json_u64(r, key), s->workers[i].responses[c]);
        }
    }
    for (size_t f = 0; f < N_FIELDS; f++) {
        uint64_t sum = 0;
        for (unsigned i = 0; i < 3; i++)
            sum += get_field(&s->workers[i], &fields[f]);
        assert_int_equal(json_u64(totals, fields[f].key), sum);
    }
    json_object *tr = json_get(totals, "responses", json_type_object);
    for (int c = 1; c <= 6; c++) {
        char key[8];
        snprintf(key, sizeof key, "%dxx", c);
        uint64_t sum =
            s->workers[0].responses[c] + s->workers[1].responses[c] + s->workers[2].responses[c];
        assert_int_equal(json_u64(tr, key), sum);
    }
    json_object_put(root);
    free(text);
    free(s);
}

static void test_metrics_lines_are_well_formed_with_help_and_type_for_every_metric(void **state)
{
    (void)state;
    struct cn_snapshot *s = malloc(sizeof *s);
    assert_non_null(s);
    fill_snapshot(s, 3);
    char *text = cn_admin_render_metrics(s);
    assert_non_null(text);
    struct expo e;
    assert_exposition(text, &e);

    for (size_t f = 0; f < N_FIELDS; f++) {
        struct family *fam = find_family(&e, fields[f].metric, 0);
        if (fam == NULL)
            fail_msg("no metric %s", fields[f].metric);
        assert_string_equal(fam->type, fields[f].type);
        assert_int_equal(fam->samples, 3);
    }
    struct family *resp = find_family(&e, "confnode_sip_responses_total", 0);
    assert_non_null(resp);
    assert_string_equal(resp->type, "counter");
    assert_int_equal(resp->samples, 3 * 6);
    assert_non_null(find_family(&e, "confnode_uptime_seconds", 0));
    assert_non_null(find_family(&e, "confnode_info", 0));
    free(text);
    free(s);
}

static void test_metrics_report_every_value_of_every_worker_under_its_id(void **state)
{
    (void)state;
    struct cn_snapshot *s = malloc(sizeof *s);
    assert_non_null(s);
    fill_snapshot(s, 3);
    char *text = cn_admin_render_metrics(s);
    assert_non_null(text);
    char want[256];

    for (unsigned i = 0; i < 3; i++) {
        const struct cn_worker_snapshot *w = &s->workers[i];
        for (size_t f = 0; f < N_FIELDS; f++) {
            snprintf(want, sizeof want, "\n%s{worker=\"%u\"} %" PRIu64 "\n", fields[f].metric,
                     w->id, get_field(w, &fields[f]));
            if (strstr(text, want) == NULL)
                fail_msg("missing line %s", want + 1);
        }
        for (int c = 1; c <= 6; c++) {
            snprintf(want, sizeof want,
                     "\nconfnode_sip_responses_total{worker=\"%u\",class=\"%dxx\"} %" PRIu64 "\n",
                     w->id, c, w->responses[c]);
            if (strstr(text, want) == NULL)
                fail_msg("missing line %s", want + 1);
        }
        snprintf(want, sizeof want, "\nconfnode_worker_cpu{worker=\"%u\"} %d\n", w->id, w->cpu);
        assert_non_null(strstr(text, want));
    }
    assert_non_null(strstr(text, "\nconfnode_uptime_seconds 1234.5"));
    assert_non_null(strstr(text, "\nconfnode_info{version=\"" TEST_VERSION
                                 "\",node=\"node\\\"1\\\\west\"} 1\n"));
    free(text);
    free(s);
}

static void test_renderers_accept_an_empty_and_an_oversized_snapshot(void **state)
{
    (void)state;
    struct cn_snapshot *s = calloc(1, sizeof *s);
    assert_non_null(s);
    char *status = cn_admin_render_status(s);
    char *metrics = cn_admin_render_metrics(s);
    assert_non_null(status);
    assert_non_null(metrics);
    json_object *root = parse_json(status);
    assert_int_equal(json_object_array_length(json_get(root, "workers", json_type_array)), 0);
    assert_int_equal(json_u64(json_get(root, "totals", json_type_object), "rx_messages"), 0);
    json_object *node = root;
    assert_true(json_object_object_get_ex(root, "node", &node));
    assert_null(node); /* json-c's null */
    json_object_put(root);
    struct expo e;
    assert_exposition(metrics, &e);
    free(status);
    free(metrics);

    s->n_workers = CN_MAX_WORKERS + 1000; /* clamped, never read past the array */
    status = cn_admin_render_status(s);
    assert_non_null(status);
    root = parse_json(status);
    assert_int_equal(json_object_array_length(json_get(root, "workers", json_type_array)),
                     CN_MAX_WORKERS);
    json_object_put(root);
    free(status);
    free(s);
}

static void test_line_checker_rejects_malformed_exposition(void **state)
{
    (void)state;
    struct expo e;
    char why[1200];
    const char *good = "# HELP a_total A.\n# TYPE a_total counter\na_total{w=\"1\"} 3\n";
    const char *bad[] = {
        "a_total 3\n",                                                     /* no HELP/TYPE */
        "# HELP a_total A.\n# TYPE a_total counter\na_total 3",            /* no final \n */
        "# HELP a A.\n# TYPE a counter\na 3\n",                            /* counter sans _total */
        "# HELP a A.\n# TYPE a gauge\na{w=\"1} 3\n",                       /* open label value */
        "# HELP a A.\n# TYPE a gauge\na{w=\"\\x\"} 3\n",                   /* bad escape */
        "# HELP a A.\n# TYPE a gauge\na{w=\"1\"}\n",                       /* no value */
        "# HELP a A.\n# TYPE a gauge\na{w=\"1\"} three\n",                 /* not a number */
        "# HELP a A.\n# TYPE a gauge\n# HELP b B.\n# TYPE b gauge\na 1\n", /* split group */
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",                           /* bad name */
        "# HELP a A.\n# TYPE a sometimes\na 1\n",                          /* bad type */
    };
    assert_int_equal(check_exposition(good, &e, why, sizeof why), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check_exposition(bad[i], &e, why, sizeof why) == 0)
            fail_msg("accepted bad exposition #%zu: %s", i, bad[i]);
}

/* ---- a real server on loopback ---------------------------------------------------- */

struct server {
    struct cn_admin *admin;
    atomic_int stop;
    atomic_int snapshots;
    pthread_t thread;
};

/* The control loop as the node runs it: epoll on the admin fd, bounded by the
 * admin timeout (and by 50 ms here so that stop is seen). */
static void *serve(void *arg)
{
    struct server *sv = arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cn_admin_fd(sv->admin), &ev) != 0)
        return (void *)1;
    while (!atomic_load(&sv->stop)) {
        struct epoll_event evs[4];
        int t = cn_admin_timeout_ms(sv->admin);
        if (t < 0 || t > 50)
            t = 50;
        epoll_wait(ep, evs, 4, t);
        cn_admin_run(sv->admin);
    }
    close(ep);
    return NULL;
}

static struct server *server_start(const char *listen)
{
    struct server *sv = calloc(1, sizeof *sv);
    assert_non_null(sv);
    struct admin_conf conf = {.port = 0};
    snprintf(conf.listen, sizeof conf.listen, "%s", listen);
    char err[256];
    sv->admin = cn_admin_start(&conf, snapshot_cb, &sv->snapshots, err, sizeof err);
    if (sv->admin == NULL) {
        free(sv);
        return NULL;
    }
    assert_true(cn_admin_port(sv->admin) > 0);
    assert_true(cn_admin_fd(sv->admin) >= 0);
    assert_int_equal(pthread_create(&sv->thread, NULL, serve, sv), 0);
    return sv;
}

static void server_stop(struct server *sv)
{
    void *rc;
    atomic_store(&sv->stop, 1);
    assert_int_equal(pthread_join(sv->thread, &rc), 0);
    assert_null(rc);
    cn_admin_stop(sv->admin);
    free(sv);
}

struct http_reply {
    int status;
    char *raw;        /* whole reply, NUL-terminated */
    const char *body; /* into raw */
    size_t body_len;
};

/* Sends request to ip:port and reads the reply until the server closes. */
static void http_exchange(const char *ip, int port, const char *request, struct http_reply *r)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } sa = {0};
    socklen_t salen;
    if (inet_pton(AF_INET, ip, &sa.in4.sin_addr) == 1) {
        sa.in4.sin_family = AF_INET;
        sa.in4.sin_port = htons((uint16_t)port);
        salen = sizeof sa.in4;
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &sa.in6.sin6_addr), 1);
        sa.in6.sin6_family = AF_INET6;
        sa.in6.sin6_port = htons((uint16_t)port);
        salen = sizeof sa.in6;
    }
    int fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 5};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    assert_int_equal(connect(fd, &sa.sa, salen), 0);
    size_t len = strlen(request);
    assert_int_equal(send(fd, request, len, MSG_NOSIGNAL), (ssize_t)len);

    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (cap - used < 1024) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t n = recv(fd, buf + used, cap - used - 1, 0);
        if (n < 0)
            fail_msg("recv: %s", strerror(errno));
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    buf[used] = '\0';
    r->raw = buf;
    if (sscanf(buf, "HTTP/1.1 %d ", &r->status) != 1)
        fail_msg("no status line: %s", buf);
    char *end = strstr(buf, "\r\n\r\n");
    assert_non_null(end);
    r->body = end + 4;
    r->body_len = used - (size_t)(r->body - buf);
}

/* Value of header name in r, copied into out; -1 when absent. */
static int http_header(const struct http_reply *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    for (const char *p = strstr(r->raw, "\r\n"); p != NULL && p + 2 < r->body;
         p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (strncasecmp(h, name, nlen) == 0 && h[nlen] == ':') {
            h += nlen + 1;
            while (*h == ' ')
                h++;
            size_t vlen = strcspn(h, "\r");
            snprintf(out, outlen, "%.*s", (int)vlen, h);
            return 0;
        }
    }
    return -1;
}

static void http_get(const char *ip, int port, const char *method, const char *path,
                     struct http_reply *r)
{
    char req[256];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method,
             path, ip);
    http_exchange(ip, port, req, r);
}

static void assert_header(const struct http_reply *r, const char *name, const char *want)
{
    char v[256];
    if (http_header(r, name, v, sizeof v) != 0)
        fail_msg("no %s header in: %s", name, r->raw);
    assert_string_equal(v, want);
}

static void assert_content_length(const struct http_reply *r)
{
    char v[32];
    assert_int_equal(http_header(r, "Content-Length", v, sizeof v), 0);
    assert_int_equal(strtoull(v, NULL, 10), r->body_len);
}

static void test_server_answers_status_with_a_fresh_snapshot(void **state)
{
    (void)state;
    struct server *sv = server_start("127.0.0.1");
    assert_non_null(sv);
    struct http_reply r;
    http_get("127.0.0.1", cn_admin_port(sv->admin), "GET", "/status", &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    assert_content_length(&r);
    json_object *root = parse_json(r.body);
    json_object *totals = json_get(root, "totals", json_type_object);
    struct cn_snapshot *s = malloc(sizeof *s);
    assert_non_null(s);
    fill_snapshot(s, 3);
    uint64_t sum = 0;
    for (unsigned i = 0; i < 3; i++)
        sum += s->workers[i].rx_messages;
    assert_int_equal(json_u64(totals, "rx_messages"), sum);
    assert_int_equal(json_object_array_length(json_get(root, "workers", json_type_array)), 3);
    json_object_put(root);
    free(r.raw);
    free(s);
    /* exactly one snapshot, and it was zeroed when handed over */
    assert_int_equal(atomic_load(&sv->snapshots), 1);
    server_stop(sv);
}

static void test_server_answers_metrics_in_exposition_format(void **state)
{
    (void)state;
    struct server *sv = server_start("127.0.0.1");
    assert_non_null(sv);
    struct http_reply r;
    http_get("127.0.0.1", cn_admin_port(sv->admin), "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    char ct[128];
    assert_int_equal(http_header(&r, "Content-Type", ct, sizeof ct), 0);
    assert_int_equal(strncmp(ct, "text/plain; version=0.0.4", 25), 0);
    assert_content_length(&r);
    struct expo e;
    assert_exposition(r.body, &e);
    struct family *f = find_family(&e, "confnode_rx_messages_total", 0);
    assert_non_null(f);
    assert_int_equal(f->samples, 3);
    free(r.raw);
    assert_int_equal(atomic_load(&sv->snapshots), 1);
    server_stop(sv);
}

static void test_server_answers_404_for_unknown_paths_and_405_for_other_methods(void **state)
{
    (void)state;
    struct server *sv = server_start("127.0.0.1");
    assert_non_null(sv);
    int port = cn_admin_port(sv->admin);
    struct http_reply r;

    http_get("127.0.0.1", port, "GET", "/nope", &r);
    assert_int_equal(r.status, 404);
    assert_header(&r, "Content-Type", "application/json");
    json_object *root = parse_json(r.body);
    assert_string_equal(json_object_get_string(json_get(root, "error", json_type_string)),
                        "not found");
    json_object_put(root);
    free(r.raw);

    http_get("127.0.0.1", port, "GET", "/status/", &r);
    assert_int_equal(r.status, 404);
    free(r.raw);

    http_get("127.0.0.1", port, "DELETE", "/metrics", &r);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET");
    free(r.raw);

    http_exchange("127.0.0.1", port,
                  "POST /status HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                  "Content-Length: 5\r\nConnection: close\r\n\r\nhello",
                  &r);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET");
    root = parse_json(r.body);
    assert_non_null(json_get(root, "error", json_type_string));
    json_object_put(root);
    free(r.raw);

    /* errors never take a snapshot */
    assert_int_equal(atomic_load(&sv->snapshots), 0);
    server_stop(sv);
}

/* One thread, no server loop: an idle client connection must show up as a timer
 * (MHD closes idle connections only from cn_admin_run()). */
static void test_an_idle_connection_gives_a_bounded_timeout(void **state)
{
    (void)state;
    struct admin_conf conf = {.listen = "127.0.0.1", .port = 0};
    char err[256];
    struct cn_admin *a = cn_admin_start(&conf, NULL, NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(cn_admin_timeout_ms(a), -1); /* nothing pending yet */

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)cn_admin_port(a)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, cn_admin_fd(a), &ev), 0);
    int t = -1;
    for (int i = 0; i < 50 && t < 0; i++) { /* until the connection is accepted */
        epoll_wait(ep, &ev, 1, 20);
        cn_admin_run(a);
        t = cn_admin_timeout_ms(a);
    }
    assert_in_range(t, 1, 10000);
    close(ep);
    close(fd);
    cn_admin_stop(a);
}

static void test_server_listens_on_an_ipv6_literal(void **state)
{
    (void)state;
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int have_v6 = probe >= 0 && bind(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (probe >= 0)
        close(probe);
    if (!have_v6)
        skip(); /* no ::1 in this network namespace */
    struct server *sv = server_start("::1");
    assert_non_null(sv);
    struct http_reply r;
    http_get("::1", cn_admin_port(sv->admin), "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    free(r.raw);
    server_stop(sv);
}

static void test_starting_twice_on_one_port_fails_naming_the_address(void **state)
{
    (void)state;
    struct admin_conf conf = {.listen = "127.0.0.1", .port = 0};
    char err[256] = "";
    struct cn_admin *a = cn_admin_start(&conf, NULL, NULL, err, sizeof err);
    assert_non_null(a);
    conf.port = (uint16_t)cn_admin_port(a);

    struct cn_admin *b = cn_admin_start(&conf, NULL, NULL, err, sizeof err);
    assert_null(b);
    char want[256];
    snprintf(want, sizeof want, "admin 127.0.0.1:%u: %s", conf.port, strerror(EADDRINUSE));
    assert_string_equal(err, want);
    cn_admin_stop(a);
}

static void test_start_rejects_what_is_not_an_ip_literal(void **state)
{
    (void)state;
    const char *bad[] = {"localhost", "127.0.0.256", "", "::1::2", "1.2.3.4 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct admin_conf conf = {.port = 8088};
        snprintf(conf.listen, sizeof conf.listen, "%s", bad[i]);
        char err[256] = "";
        assert_null(cn_admin_start(&conf, NULL, NULL, err, sizeof err));
        char want[128];
        snprintf(want, sizeof want,
                 strchr(bad[i], ':') ? "admin [%s]:8088: " : "admin %s:8088: ", bad[i]);
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("\"%s\" gave \"%s\"", bad[i], err);
    }
    /* an address this host does not have: the bind error, not a crash */
    struct admin_conf conf = {.listen = "192.0.2.1", .port = 8088};
    char err[256] = "";
    assert_null(cn_admin_start(&conf, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "admin 192.0.2.1:8088: "));
    assert_null(cn_admin_start(NULL, NULL, NULL, err, sizeof err));
    assert_true(err[0] != '\0');
}

static void test_every_call_accepts_null(void **state)
{
    (void)state;
    cn_admin_stop(NULL);
    cn_admin_run(NULL);
    assert_int_equal(cn_admin_fd(NULL), -1);
    assert_int_equal(cn_admin_port(NULL), -1);
    assert_int_equal(cn_admin_timeout_ms(NULL), -1);
    assert_null(cn_admin_render_status(NULL));
    assert_null(cn_admin_render_metrics(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_field_table_covers_every_counter_of_the_worker_snapshot),
        cmocka_unit_test(test_status_parses_back_and_totals_equal_the_sums_of_three_workers),
        cmocka_unit_test(test_metrics_lines_are_well_formed_with_help_and_type_for_every_metric),
        cmocka_unit_test(test_metrics_report_every_value_of_every_worker_under_its_id),
        cmocka_unit_test(test_renderers_accept_an_empty_and_an_oversized_snapshot),
        cmocka_unit_test(test_line_checker_rejects_malformed_exposition),
        cmocka_unit_test(test_server_answers_status_with_a_fresh_snapshot),
        cmocka_unit_test(test_server_answers_metrics_in_exposition_format),
        cmocka_unit_test(test_server_answers_404_for_unknown_paths_and_405_for_other_methods),
        cmocka_unit_test(test_an_idle_connection_gives_a_bounded_timeout),
        cmocka_unit_test(test_server_listens_on_an_ipv6_literal),
        cmocka_unit_test(test_starting_twice_on_one_port_fails_naming_the_address),
        cmocka_unit_test(test_start_rejects_what_is_not_an_ip_literal),
        cmocka_unit_test(test_every_call_accepts_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
