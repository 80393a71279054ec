/* Admin HTTP API: libmicrohttpd in external epoll mode, driven by the control loop.
 *
 * DESIGN
 * - No thread of its own. MHD is started with MHD_USE_EPOLL and no polling thread;
 *   its epoll fd is handed to the control loop (cn_admin_fd), which calls
 *   cn_admin_run() when the fd is readable or cn_admin_timeout_ms() has passed.
 * - Each /status or /metrics request takes a fresh cn_snapshot (heap: it holds
 *   CN_MAX_WORKERS workers) from the snapshot callback, renders it and frees it.
 *   Nothing is cached, so two requests never show each other's numbers.
 * - Both renderers walk the same table of worker fields (worker_fields), so a
 *   counter added to struct cn_worker_snapshot needs one line here to appear in
 *   /status, its totals and /metrics.
 * - MHD's own messages never reach stderr directly: while starting they are kept to
 *   explain a failure, afterwards they go through cn_log. */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "fed_history.h"

#define ADMIN_CONN_TIMEOUT_S 10u /* idle admin connections are closed after this */
#define ADMIN_CONN_LIMIT 64u     /* concurrent admin connections */

struct cn_admin {
    struct MHD_Daemon *mhd;
    cn_snapshot_fn fn;
    void *arg;
    cn_drain_fn drain_fn; /* POST /drain; NULL: 503 */
    void *drain_arg;
    const struct fed_history *history; /* GET /history; NULL: an empty history */
    int epoll_fd;  /* MHD's, closed by MHD_stop_daemon() */
    uint16_t port; /* bound port */
    char addr[80]; /* "127.0.0.1:8088" / "[::1]:8088", for messages */
    int starting;  /* 1 while MHD_start_daemon() runs: messages go to start_msg */
    char start_msg[256];
};

enum field_kind { FIELD_GAUGE, FIELD_COUNTER };

struct worker_field {
    const char *key;    /* JSON key in /status, and the struct field name */
    const char *metric; /* Prometheus name after "confnode_" (counters end in _total) */
    enum field_kind kind;
    size_t off; /* offset of the uint64_t in struct cn_worker_snapshot */
    const char *help;
};

/* clang-format off */
#define WF(field, metric, kind, help) \
    {#field, metric, kind, offsetof(struct cn_worker_snapshot, field), help}
/* clang-format on */

/* "calls" is exported as confnode_calls_active: a gauge named confnode_calls would
 * collide with the counter confnode_calls_total in OpenMetrics parsers. */
static const struct worker_field worker_fields[] = {
    WF(connections, "connections", FIELD_GAUGE, "Open TCP and TLS connections."),
    WF(transactions, "transactions", FIELD_GAUGE, "Live SIP server transactions."),
    WF(dialogs, "dialogs", FIELD_GAUGE, "Live SIP dialogs."),
    WF(calls, "calls_active", FIELD_GAUGE, "Confirmed calls (dialogs created by INVITE)."),
    WF(rx_messages, "rx_messages_total", FIELD_COUNTER, "SIP messages received."),
    WF(tx_messages, "tx_messages_total", FIELD_COUNTER, "SIP messages sent."),
    WF(rx_bytes, "rx_bytes_total", FIELD_COUNTER, "Bytes of SIP received."),
    WF(tx_bytes, "tx_bytes_total", FIELD_COUNTER, "Bytes of SIP sent."),
    WF(bad_messages, "bad_messages_total", FIELD_COUNTER,
       "SIP messages answered 400 or dropped as unparseable."),
    WF(conns_accepted, "conns_accepted_total", FIELD_COUNTER, "Connections accepted."),
    WF(conns_closed_oversize, "conns_closed_oversize_total", FIELD_COUNTER,
       "Connections closed for a message over the size limit."),
    WF(conns_closed_idle, "conns_closed_idle_total", FIELD_COUNTER,
       "Connections closed after the idle timeout."),
    WF(conns_closed_error, "conns_closed_error_total", FIELD_COUNTER,
       "Connections closed on a transport or protocol error."),
    WF(tls_handshakes, "tls_handshakes_total", FIELD_COUNTER, "TLS handshakes completed."),
    WF(tls_handshake_failures, "tls_handshake_failures_total", FIELD_COUNTER,
       "TLS handshakes that failed."),
    WF(keepalive_pings, "keepalive_pings_total", FIELD_COUNTER,
       "Keep-alive pings (CRLF) received."),
    WF(retransmissions_absorbed, "retransmissions_absorbed_total", FIELD_COUNTER,
       "Retransmitted requests absorbed by an existing transaction."),
    WF(retransmissions_sent, "retransmissions_sent_total", FIELD_COUNTER,
       "Retransmissions sent by transaction timers."),
    WF(calls_total, "calls_total", FIELD_COUNTER, "Calls confirmed since start."),
    WF(ring_drops, "ring_drops_total", FIELD_COUNTER,
       "Messages dropped because a cross-worker ring was full."),
    WF(media_legs, "media_legs", FIELD_GAUGE, "Open media sessions (call legs with media)."),
    WF(media_conferences, "media_conferences", FIELD_GAUGE, "Conferences mixed on the worker."),
    WF(media_rtp_in, "media_rtp_in_total", FIELD_COUNTER, "RTP packets received."),
    WF(media_rtp_out, "media_rtp_out_total", FIELD_COUNTER, "RTP packets sent."),
    WF(media_rtcp_in, "media_rtcp_in_total", FIELD_COUNTER, "RTCP packets received."),
    WF(media_rtcp_out, "media_rtcp_out_total", FIELD_COUNTER, "RTCP packets sent."),
    WF(media_bytes_in, "media_bytes_in_total", FIELD_COUNTER, "Bytes of media received."),
    WF(media_bytes_out, "media_bytes_out_total", FIELD_COUNTER, "Bytes of media sent."),
    WF(media_srtp_auth_failures, "media_srtp_auth_failures_total", FIELD_COUNTER,
       "SRTP/SRTCP packets dropped: authentication tag did not verify."),
    WF(media_srtp_replays, "media_srtp_replays_total", FIELD_COUNTER,
       "SRTP/SRTCP packets dropped by replay protection."),
    WF(media_srtp_other_failures, "media_srtp_other_failures_total", FIELD_COUNTER,
       "SRTP/SRTCP packets that failed for another reason."),
    WF(media_drop_malformed, "media_dropped_malformed_total", FIELD_COUNTER,
       "Media datagrams dropped: not RTP/RTCP or did not parse."),
    WF(media_drop_unexpected, "media_dropped_unexpected_total", FIELD_COUNTER,
       "Media datagrams dropped: unknown payload type, against the direction, STUN/DTLS."),
    WF(media_drop_jitter, "media_dropped_jitter_total", FIELD_COUNTER,
       "Audio packets dropped by the jitter buffer (late, duplicate, too big)."),
    WF(media_drop_oversize, "media_dropped_oversize_total", FIELD_COUNTER,
       "Media datagrams dropped: larger than a packet buffer."),
    WF(media_drop_send, "media_dropped_send_total", FIELD_COUNTER,
       "Media datagrams the socket did not take."),
    WF(media_dtmf_packets, "media_dtmf_packets_total", FIELD_COUNTER,
       "telephone-event packets received (not mixed)."),
    WF(media_mixer_ticks, "media_mixer_ticks_total", FIELD_COUNTER, "Mixer ticks (20 ms)."),
    WF(media_mixer_overruns, "media_mixer_overruns_total", FIELD_COUNTER,
       "Mixer ticks that ran over their budget or started late."),
    WF(media_speaker_switches, "media_speaker_switches_total", FIELD_COUNTER,
       "Active speaker changes."),
    WF(media_keyframe_requests, "media_keyframe_requests_total", FIELD_COUNTER,
       "PLI/FIR sent to video senders."),
    WF(media_video_forwarded, "media_video_forwarded_total", FIELD_COUNTER,
       "Video packets forwarded to receivers."),
    WF(media_feedback_forwarded, "media_feedback_forwarded_total", FIELD_COUNTER,
       "PLI/FIR/NACK from receivers forwarded to the sender they see."),
    WF(media_rtcp_byes, "media_rtcp_byes_total", FIELD_COUNTER, "RTCP BYE packets received."),
    WF(media_timeouts, "media_timeouts_total", FIELD_COUNTER,
       "Calls ended because their media went silent."),
    WF(media_latches, "media_latches_total", FIELD_COUNTER,
       "Remote media addresses learnt from received packets (symmetric RTP)."),
    WF(media_conf_reuses, "media_conference_reuses_total", FIELD_COUNTER,
       "Conferences opened on a closed conference's mixer (no allocation)."),
    WF(media_port_binds, "media_socket_binds_total", FIELD_COUNTER,
       "Media sockets created and bound."),
    WF(media_port_reuses, "media_socket_reuses_total", FIELD_COUNTER,
       "Media ports served by an idle, rested socket instead of a new one."),
    WF(media_port_idle_drops, "media_idle_socket_drops_total", FIELD_COUNTER,
       "Datagrams that reached a media socket between calls (dropped)."),
};

#define N_FIELDS (sizeof worker_fields / sizeof worker_fields[0])
#define N_CLASSES 6 /* response classes 1xx..6xx: responses[1..6] */

static uint64_t field_value(const struct cn_worker_snapshot *w, const struct worker_field *f)
{
    uint64_t v;
    memcpy(&v, (const char *)w + f->off, sizeof v);
    return v;
}

static unsigned worker_count(const struct cn_snapshot *s)
{
    return s->n_workers < CN_MAX_WORKERS ? s->n_workers : CN_MAX_WORKERS;
}

/* Neither JSON nor the exposition format has a spelling for NaN or infinities. */
static double clean_uptime(double u)
{
    return isfinite(u) && u > 0 ? u : 0.0;
}

/* ---- /status ---------------------------------------------------------------------- */

/* Adds key: value to obj, consuming value. Returns 0, or -1 (value freed) on failure. */
static int json_put(json_object *obj, const char *key, json_object *value)
{
    if (value == NULL)
        return -1;
    if (json_object_object_add(obj, key, value) != 0) {
        json_object_put(value);
        return -1;
    }
    return 0;
}

/* Adds "<field>": n for every worker field, then "responses": {"1xx": n, ...}.
 * Returns 0 or -1 (obj partly filled; the caller drops it). */
static int json_add_counters(json_object *obj, const uint64_t values[N_FIELDS],
                             const uint64_t resp[7])
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (json_put(obj, worker_fields[i].key, json_object_new_uint64(values[i])) != 0)
            return -1;
    json_object *r = json_object_new_object();
    if (json_put(obj, "responses", r) != 0)
        return -1;
    for (int c = 1; c <= N_CLASSES; c++) {
        char key[8];
        snprintf(key, sizeof key, "%dxx", c);
        if (json_put(r, key, json_object_new_uint64(resp[c])) != 0)
            return -1;
    }
    return 0;
}

static json_object *json_worker(const struct cn_worker_snapshot *w)
{
    uint64_t values[N_FIELDS];
    for (size_t i = 0; i < N_FIELDS; i++)
        values[i] = field_value(w, &worker_fields[i]);
    json_object *o = json_object_new_object();
    if (o == NULL || json_put(o, "id", json_object_new_uint64(w->id)) != 0 ||
        json_put(o, "cpu", json_object_new_int(w->cpu)) != 0 ||
        json_add_counters(o, values, w->responses) != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static json_object *json_totals(const uint64_t values[N_FIELDS], const uint64_t resp[7])
{
    json_object *o = json_object_new_object();
    if (o == NULL || json_add_counters(o, values, resp) != 0) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* Adds key: s, or key: null when s is NULL (json-c's null is a NULL object). */
static int json_put_string(json_object *obj, const char *key, const char *s)
{
    if (s == NULL)
        return json_object_object_add(obj, key, NULL) != 0 ? -1 : 0;
    return json_put(obj, key, json_object_new_string(s));
}

/* "cluster": {"mode": ..., "connected": b, "degraded": b, "degraded_since": unix s,
 * "primary": "IP:port", "failovers": n, "reconnects": n, "conferences": n,
 * "draining": b, "left": b}. Returns 0 or -1 (obj partly filled). */
static int json_add_cluster(json_object *root, const struct cn_cluster_snapshot *c)
{
    json_object *o = json_object_new_object();
    if (json_put(root, "cluster", o) != 0)
        return -1;
    if (json_put_string(o, "mode", c->mode) != 0 ||
        json_put(o, "connected", json_object_new_boolean(c->connected)) != 0 ||
        json_put(o, "degraded", json_object_new_boolean(c->degraded)) != 0 ||
        json_put(o, "degraded_since", json_object_new_int64(c->degraded_since)) != 0)
        return -1;
    char primary[sizeof c->primary + 1];
    snprintf(primary, sizeof primary, "%.*s", (int)sizeof c->primary, c->primary);
    if (json_put_string(o, "primary", primary) != 0 ||
        json_put(o, "failovers", json_object_new_uint64(c->failovers)) != 0 ||
        json_put(o, "reconnects", json_object_new_uint64(c->reconnects)) != 0 ||
        json_put(o, "conferences", json_object_new_uint64(c->conferences)) != 0 ||
        json_put(o, "draining", json_object_new_boolean(c->draining)) != 0 ||
        json_put(o, "left", json_object_new_boolean(c->left)) != 0)
        return -1;
    return 0;
}

char *cn_admin_render_status(const struct cn_snapshot *s)
{
    if (s == NULL)
        return NULL;
    unsigned n = worker_count(s);
    uint64_t totals[N_FIELDS] = {0};
    uint64_t resp[7] = {0};
    json_object *root = json_object_new_object();
    json_object *workers = json_object_new_array();
    char *out = NULL;

    if (root == NULL || workers == NULL)
        goto out;
    for (unsigned i = 0; i < n; i++) {
        const struct cn_worker_snapshot *w = &s->workers[i];
        json_object *jw = json_worker(w);
        if (jw == NULL || json_object_array_add(workers, jw) != 0) {
            json_object_put(jw);
            goto out;
        }
        for (size_t f = 0; f < N_FIELDS; f++)
            totals[f] += field_value(w, &worker_fields[f]);
        for (int c = 1; c <= N_CLASSES; c++)
            resp[c] += w->responses[c];
    }
    if (json_put_string(root, "version", s->version) != 0 ||
        json_put_string(root, "node", s->node_name) != 0 ||
        json_put(root, "uptime_s", json_object_new_double(clean_uptime(s->uptime_s))) != 0)
        goto out;
    int bad = json_put(root, "workers", workers) != 0;
    workers = NULL; /* consumed */
    if (bad || json_put(root, "totals", json_totals(totals, resp)) != 0)
        goto out;
    if (s->cluster.mode != NULL && json_add_cluster(root, &s->cluster) != 0)
        goto out;
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    if (text != NULL)
        out = strdup(text);
out:
    json_object_put(workers);
    json_object_put(root);
    return out;
}

/* ---- /metrics --------------------------------------------------------------------- */

static void prom_header(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP confnode_%s %s\n# TYPE confnode_%s %s\n", name, help, name, type);
}

/* Writes s as a label value: backslash, double quote and newline escaped. */
static void prom_label_value(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void prom_node(FILE *f, const struct cn_snapshot *s, unsigned n)
{
    prom_header(f, "info", "gauge", "Constant 1, labelled with the version and node name.");
    fputs("confnode_info{version=\"", f);
    prom_label_value(f, s->version);
    fputs("\",node=\"", f);
    prom_label_value(f, s->node_name);
    fputs("\"} 1\n", f);
    prom_header(f, "uptime_seconds", "gauge", "Seconds since the node started.");
    fprintf(f, "confnode_uptime_seconds %.3f\n", clean_uptime(s->uptime_s));
    prom_header(f, "workers", "gauge", "Number of workers.");
    fprintf(f, "confnode_workers %u\n", n);
    prom_header(f, "worker_cpu", "gauge", "CPU the worker is pinned to, -1 when not pinned.");
    for (unsigned i = 0; i < n; i++)
        fprintf(f, "confnode_worker_cpu{worker=\"%u\"} %d\n", s->workers[i].id, s->workers[i].cpu);
}

static void prom_workers(FILE *f, const struct cn_snapshot *s, unsigned n)
{
    for (size_t m = 0; m < N_FIELDS; m++) {
        const struct worker_field *wf = &worker_fields[m];
        prom_header(f, wf->metric, wf->kind == FIELD_GAUGE ? "gauge" : "counter", wf->help);
        for (unsigned i = 0; i < n; i++)
            fprintf(f, "confnode_%s{worker=\"%u\"} %" PRIu64 "\n", wf->metric, s->workers[i].id,
                    field_value(&s->workers[i], wf));
    }
    prom_header(f, "sip_responses_total", "counter", "SIP responses, by status class.");
    for (unsigned i = 0; i < n; i++)
        for (int c = 1; c <= N_CLASSES; c++)
            fprintf(f, "confnode_sip_responses_total{worker=\"%u\",class=\"%dxx\"} %" PRIu64 "\n",
                    s->workers[i].id, c, s->workers[i].responses[c]);
}

static void prom_cluster(FILE *f, const struct cn_cluster_snapshot *c)
{
    if (c->mode == NULL)
        return;
    prom_header(f, "cluster_connected", "gauge",
                "1 when the cluster store uses a verified Redis primary.");
    fprintf(f, "confnode_cluster_connected %d\n", c->connected ? 1 : 0);
    prom_header(f, "cluster_degraded", "gauge",
                "1 while Redis cannot be reached and placement is answered locally.");
    fprintf(f, "confnode_cluster_degraded %d\n", c->degraded ? 1 : 0);
    prom_header(f, "cluster_draining", "gauge", "1 while the node takes no new conferences.");
    fprintf(f, "confnode_cluster_draining %d\n", c->draining ? 1 : 0);
    prom_header(f, "cluster_failovers_total", "counter", "Redis primary address changes seen.");
    fprintf(f, "confnode_cluster_failovers_total %" PRIu64 "\n", c->failovers);
    prom_header(f, "cluster_conferences", "gauge", "Conferences this node owns.");
    fprintf(f, "confnode_cluster_conferences %" PRIu64 "\n", c->conferences);
}

char *cn_admin_render_metrics(const struct cn_snapshot *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = s != NULL ? open_memstream(&buf, &len) : NULL;
    if (f == NULL)
        return NULL;
    unsigned n = worker_count(s);
    prom_node(f, s, n);
    prom_workers(f, s, n);
    prom_cluster(f, &s->cluster);
    if (s->extra_metrics)
        fputs(s->extra_metrics, f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- HTTP ------------------------------------------------------------------------- */

static const char not_found[] = "{\"error\":\"not found\"}";
static const char not_allowed[] = "{\"error\":\"method not allowed\"}";
static const char no_memory[] = "{\"error\":\"out of memory\"}";

#define CT_JSON "application/json"
#define CT_PROM "text/plain; version=0.0.4; charset=utf-8"

/* Queues body as the answer. With MHD_RESPMEM_MUST_FREE, body is freed in every case. */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
                             const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    if (r == NULL) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free((void *)body);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_YES;
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype) != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") != MHD_YES)
        ok = MHD_NO;
    if (ok == MHD_YES && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        ok = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET);
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result reply_const(struct MHD_Connection *conn, unsigned status, const char *body)
{
    return reply(conn, status, CT_JSON, body, strlen(body), MHD_RESPMEM_PERSISTENT);
}

/* Takes a snapshot and answers with render(snapshot) as ctype. */
static enum MHD_Result reply_rendered(struct cn_admin *a, struct MHD_Connection *conn,
                                      char *(*render)(const struct cn_snapshot *),
                                      const char *ctype)
{
    struct cn_snapshot *snap = calloc(1, sizeof *snap);
    if (snap == NULL)
        return reply_const(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, no_memory);
    if (a->fn != NULL)
        a->fn(a->arg, snap);
    char *body = render(snap);
    free(snap);
    if (body == NULL)
        return reply_const(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, no_memory);
    return reply(conn, MHD_HTTP_OK, ctype, body, strlen(body), MHD_RESPMEM_MUST_FREE);
}

/* POST /drain: asks the node to drain; anything else on /drain is 405 (Allow: POST). */
static enum MHD_Result reply_drain(struct cn_admin *a, struct MHD_Connection *conn,
                                   const char *method)
{
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(not_allowed), (void *)not_allowed, MHD_RESPMEM_PERSISTENT);
        if (r == NULL)
            return MHD_NO;
        enum MHD_Result ok = MHD_YES;
        if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CT_JSON) != MHD_YES ||
            MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_POST) != MHD_YES)
            ok = MHD_NO;
        if (ok == MHD_YES)
            ok = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        return ok;
    }
    if (a->drain_fn == NULL)
        return reply_const(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
                           "{\"error\":\"drain not available\"}");
    struct cn_drain_result res = {0};
    a->drain_fn(a->drain_arg, &res);
    char *body = NULL;
    if (asprintf(&body, "{\"draining\":true,\"already\":%s,\"calls\":%" PRIu64 ",\"left\":%s}",
                 res.already ? "true" : "false", res.calls, res.left ? "true" : "false") < 0)
        return reply_const(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, no_memory);
    return reply(conn, MHD_HTTP_OK, CT_JSON, body, strlen(body), MHD_RESPMEM_MUST_FREE);
}

/* GET /history[?last=N]: the search history of every worker, newest first. */
static enum MHD_Result reply_history(struct cn_admin *a, struct MHD_Connection *conn)
{
    const char *last_s = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "last");
    size_t last = 0;
    if (last_s != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(last_s, &end, 10);
        if (errno != 0 || end == last_s || *end != '\0' || last_s[0] == '-')
            return reply_const(conn, MHD_HTTP_BAD_REQUEST,
                               "{\"error\":\"last: expected a non-negative integer\"}");
        last = v > SIZE_MAX ? SIZE_MAX : (size_t)v;
    }
    char *body = a->history != NULL ? fed_history_render_json(a->history, last)
                                    : fed_history_records_json(NULL, 0, 0, 0);
    if (body == NULL)
        return reply_const(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, no_memory);
    return reply(conn, MHD_HTTP_OK, CT_JSON, body, strlen(body), MHD_RESPMEM_MUST_FREE);
}

void cn_admin_set_history(struct cn_admin *a, const struct fed_history *h)
{
    if (a != NULL)
        a->history = h;
}

/* MHD access handler. Every answer is queued on the first call, before any request
 * body is read: no route takes a body. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct cn_admin *a = cls;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)req_cls;

    if (strcmp(url, "/drain") == 0)
        return reply_drain(a, conn, method);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return reply_const(conn, MHD_HTTP_METHOD_NOT_ALLOWED, not_allowed);
    if (strcmp(url, "/status") == 0)
        return reply_rendered(a, conn, cn_admin_render_status, CT_JSON);
    if (strcmp(url, "/metrics") == 0)
        return reply_rendered(a, conn, cn_admin_render_metrics, CT_PROM);
    if (strcmp(url, "/history") == 0)
        return reply_history(a, conn);
    return reply_const(conn, MHD_HTTP_NOT_FOUND, not_found);
}

/* MHD's messages: kept while starting (they explain a failure), logged afterwards.
 * Quotes and line breaks are replaced so the log line stays one key=value line. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct cn_admin *a = cls;
    char msg[256];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    size_t len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (msg[i] == '"' || msg[i] == '\n' || msg[i] == '\r')
            msg[i] = msg[i] == '"' ? '\'' : ' ';
    if (a->starting)
        snprintf(a->start_msg, sizeof a->start_msg, "%s", msg);
    else
        cn_log(CN_LOG_INFO, "admin_http", "addr=%s msg=\"%s\"", a->addr, msg);
}

union sockaddr_any {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
};

/* Parses an IPv4 or IPv6 literal into sa (port set too). Returns 4, 6, or -1. */
static int parse_listen(const char *ip, uint16_t port, union sockaddr_any *sa)
{
    memset(sa, 0, sizeof *sa);
    if (inet_pton(AF_INET, ip, &sa->in4.sin_addr) == 1) {
        sa->in4.sin_family = AF_INET;
        sa->in4.sin_port = htons(port);
        return 4;
    }
    if (inet_pton(AF_INET6, ip, &sa->in6.sin6_addr) == 1) {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(port);
        return 6;
    }
    return -1;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void format_addr(char *buf, size_t len, const char *ip, unsigned port)
{
    snprintf(buf, len, strchr(ip, ':') != NULL ? "[%s]:%u" : "%s:%u", ip, port);
}

struct cn_admin *cn_admin_start(const struct admin_conf *conf, cn_snapshot_fn fn, void *arg,
                                char *err, size_t errlen)
{
    struct cn_admin *a = NULL;
    union sockaddr_any sa;
    char ip[sizeof conf->listen + 1];
    char where[sizeof a->addr];
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

    set_err(err, errlen, "%s", "");
    if (conf == NULL) {
        set_err(err, errlen, "admin: no configuration");
        return NULL;
    }
    /* listen may fill the whole array without a terminator */
    snprintf(ip, sizeof ip, "%.*s", (int)sizeof conf->listen, conf->listen);
    format_addr(where, sizeof where, ip, conf->port);
    int family = parse_listen(ip, conf->port, &sa);
    if (family < 0) {
        set_err(err, errlen, "admin %s: not an IPv4 or IPv6 address", where);
        goto fail;
    }
    if (family == 6)
        flags |= MHD_USE_IPv6;
    a = calloc(1, sizeof *a);
    if (a == NULL) {
        set_err(err, errlen, "admin %s: out of memory", where);
        goto fail;
    }
    a->fn = fn;
    a->arg = arg;
    snprintf(a->addr, sizeof a->addr, "%s", where);
    a->starting = 1;
    errno = 0;
    /* the logger goes first so that no start-up message reaches stderr */
    a->mhd = MHD_start_daemon(flags, conf->port, NULL, NULL, on_request, a,
                              MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a, MHD_OPTION_SOCK_ADDR,
                              &sa.sa, MHD_OPTION_CONNECTION_TIMEOUT, ADMIN_CONN_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_LIMIT, ADMIN_CONN_LIMIT, MHD_OPTION_END);
    int e = errno;
    a->starting = 0;
    if (a->mhd == NULL) {
        /* MHD leaves the failing call's errno (bind, listen, epoll_create) in place;
         * its own message is the fallback */
        set_err(err, errlen, "admin %s: %s", where,
                e != 0            ? strerror(e)
                : a->start_msg[0] ? a->start_msg
                                  : "cannot start");
        goto fail;
    }
    info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    a->epoll_fd = info != NULL ? info->epoll_fd : -1;
    info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info != NULL ? info->port : 0;
    if (a->epoll_fd < 0 || a->port == 0) {
        set_err(err, errlen, "admin %s: no epoll fd or bound port", where);
        goto fail;
    }
    format_addr(a->addr, sizeof a->addr, ip, a->port);
    cn_log(CN_LOG_INFO, "admin_listen", "addr=%s", a->addr);
    return a;
fail:
    cn_admin_stop(a);
    return NULL;
}

void cn_admin_on_drain(struct cn_admin *a, cn_drain_fn fn, void *arg)
{
    if (a == NULL)
        return;
    a->drain_fn = fn;
    a->drain_arg = arg;
}

int cn_admin_fd(const struct cn_admin *a)
{
    return a != NULL ? a->epoll_fd : -1;
}

int cn_admin_port(const struct cn_admin *a)
{
    return a != NULL ? (int)a->port : -1;
}

int cn_admin_timeout_ms(struct cn_admin *a)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (a == NULL || MHD_get_timeout(a->mhd, &ms) != MHD_YES)
        return -1;
    return ms < INT_MAX ? (int)ms : INT_MAX;
}

void cn_admin_run(struct cn_admin *a)
{
    if (a != NULL && MHD_run(a->mhd) != MHD_YES)
        cn_log(CN_LOG_WARN, "admin_run", "addr=%s error=\"MHD_run failed\"", a->addr);
}

void cn_admin_stop(struct cn_admin *a)
{
    if (a == NULL)
        return;
    if (a->mhd != NULL)
        MHD_stop_daemon(a->mhd);
    free(a);
}
