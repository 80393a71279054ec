/* Search history: per-worker rings (wraparound, updates of overwritten records),
 * the reader's merge by time, what a decision leaves in a record, text clean-up,
 * the JSON document, concurrent writers with a reader, and `confnode history`
 * against a small HTTP server on loopback. */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fed_history.h"
#include "admin_client.h"
#include "history.h"

/* ---- helpers ----------------------------------------------------------------------- */

static uint64_t add(struct fed_history_ring *ring, uint64_t time_ms, const char *call_id)
{
    struct fed_history_start s = {
        .time_ms = time_ms,
        .call_id = FED_HIST_CSTR(call_id),
        .method = FED_HIST_CSTR("INVITE"),
        .from = FED_HIST_CSTR("sip:alice@partner.example"),
        .to = FED_HIST_CSTR("sip:meet@example.com"),
        .source_zone = FED_HIST_CSTR("dns"),
        .source_addr = FED_HIST_CSTR("192.0.2.1:5061"),
    };
    uint64_t id = fed_history_begin(ring, &s);
    assert_true(id > 0);
    return id;
}

/* A decision as fed_route_decide() leaves it: tried rules and one local target. */
static void fake_result(struct fed_route_result *res, fed_route_status_t st, size_t n_tried)
{
    static const char *const names[] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9",
                                        "ra", "rb", "rc", "rd", "re", "rf", "rg", "rh", "ri", "rj",
                                        "rk", "rl", "rm", "rn", "ro", "rp", "rq", "rr", "rs", "rt"};
    memset(res, 0, sizeof *res);
    res->status = st;
    snprintf(res->alias, sizeof res->alias, "meet@example.com");
    for (size_t i = 0; i < n_tried && i < sizeof names / sizeof names[0]; i++) {
        res->tried[i].rule = names[i];
        res->tried[i].index = (unsigned)i;
        res->tried[i].outcome = i % 3 == 0 ? FED_RULE_SKIPPED_SOURCE : FED_RULE_NOT_MATCHED;
    }
    res->n_tried = n_tried;
    if (st == FED_ROUTE_OK) {
        res->n_targets = 1;
        res->targets[0].zone = "local";
        res->tried[n_tried - 1].outcome = FED_RULE_MATCHED;
    } else {
        res->sip_status = 403;
        res->diag_code = 1027;
        res->diag_reason = "Cannot route this type of SIP request to or from federated partners";
        snprintf(res->detail, sizeof res->detail, "privacy mode allow-list refuses x");
    }
}

/* ---- rings ------------------------------------------------------------------------------ */

static void ring_keeps_the_newest_records_and_wraps_around(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(4, 1);
    assert_non_null(h);
    struct fed_history_ring *ring = fed_history_ring(h, 0);
    for (int i = 1; i <= 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "call-%d", i);
        assert_int_equal(add(ring, 1000 + (uint64_t)i, id), (uint64_t)i);
    }
    struct fed_history_record *recs;
    size_t n = fed_history_snapshot(h, 0, &recs);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        char want[16];
        snprintf(want, sizeof want, "call-%zu", 10 - i);
        assert_string_equal(recs[i].call_id, want);
        assert_int_equal(recs[i].id, 10 - i);
        assert_int_equal(recs[i].route_status, FED_HIST_UNDECIDED);
        assert_int_equal(recs[i].status, 0);
    }
    free(recs);

    /* an overwritten record cannot be updated; a live one can */
    assert_false(fed_history_set_zone(ring, 3, "dns"));
    assert_false(fed_history_add_dns(ring, 6, "x"));
    assert_false(fed_history_set_zone(ring, 11, "dns")); /* not written yet */
    assert_true(fed_history_set_zone(ring, 7, "dns"));
    n = fed_history_snapshot(h, 1, &recs);
    assert_int_equal(n, 1);
    assert_int_equal(recs[0].id, 10);
    assert_string_equal(recs[0].zone, "");
    free(recs);
    n = fed_history_snapshot(h, 0, &recs);
    assert_string_equal(recs[3].zone, "dns");
    free(recs);
    fed_history_free(h);
}

static void capacity_is_shared_between_worker_rings(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(10, 4);
    assert_non_null(h);
    assert_int_equal(fed_history_capacity(h), 10);
    assert_int_equal(fed_history_workers(h), 4);
    assert_null(fed_history_ring(h, 4));
    /* ceil(10 / 4) = 3 per ring */
    struct fed_history_ring *ring = fed_history_ring(h, 2);
    for (int i = 0; i < 5; i++)
        add(ring, 100 + (uint64_t)i, "c");
    struct fed_history_record *recs;
    assert_int_equal(fed_history_snapshot(h, 0, &recs), 3);
    assert_int_equal(recs[0].worker, 2);
    free(recs);
    fed_history_free(h);

    h = fed_history_new(0, 0);
    assert_int_equal(fed_history_capacity(h), FED_HISTORY_DEFAULT_CAPACITY);
    assert_int_equal(fed_history_workers(h), 1);
    assert_int_equal(fed_history_snapshot(h, 0, &recs), 0);
    assert_null(recs);
    fed_history_free(h);
}

static void snapshot_merges_rings_by_time_newest_first(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(30, 3);
    static const struct {
        unsigned worker;
        uint64_t time;
        const char *id;
    } in[] = {
        {0, 100, "a"}, {1, 105, "b"}, {2, 101, "c"}, {0, 110, "d"},
        {2, 110, "e"}, {1, 111, "f"}, {1, 120, "g"}, {0, 121, "h"},
    };
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        add(fed_history_ring(h, in[i].worker), in[i].time, in[i].id);
    struct fed_history_record *recs;
    size_t n = fed_history_snapshot(h, 0, &recs);
    assert_int_equal(n, 8);
    /* equal times: the lower worker first */
    static const char *const order = "hgfdebca";
    for (size_t i = 0; i < n; i++) {
        if (recs[i].call_id[0] != order[i])
            fail_msg("position %zu: %s, expected %c", i, recs[i].call_id, order[i]);
        if (i)
            assert_true(recs[i].time_ms <= recs[i - 1].time_ms);
    }
    free(recs);
    n = fed_history_snapshot(h, 3, &recs);
    assert_int_equal(n, 3);
    assert_string_equal(recs[2].call_id, "f");
    free(recs);
    fed_history_free(h);
}

/* ---- what a record holds ------------------------------------------------------------------ */

static void decision_dns_certificates_and_outcome_are_recorded(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(8, 1);
    struct fed_history_ring *ring = fed_history_ring(h, 0);
    uint64_t id = add(ring, 0, "abc@host");
    struct fed_route_result *res = calloc(1, sizeof *res);
    assert_non_null(res);
    fake_result(res, FED_ROUTE_OK, 3);
    assert_true(fed_history_set_decision(ring, id, res));
    for (int i = 0; i < FED_HIST_MAX_DNS + 2; i++) {
        char line[64];
        snprintf(line, sizeof line, "_sipfederationtls._tcp.partner.example SRV %d", i);
        assert_true(fed_history_add_dns(ring, id, line));
    }
    assert_true(fed_history_add_cert(ring, id, "sip.partner.example: ok (SAN)"));
    assert_true(fed_history_set_zone(ring, id, "vcs"));
    assert_true(fed_history_set_outcome(ring, id, 504, 1009,
                                        "No match for domain in DNS SRV results", NULL));

    struct fed_history_record *recs;
    assert_int_equal(fed_history_snapshot(h, 0, &recs), 1);
    const struct fed_history_record *r = &recs[0];
    uint64_t now_s = (uint64_t)time(NULL);
    assert_true(r->time_ms / 1000 + 5 >= now_s && r->time_ms / 1000 <= now_s + 5);
    assert_string_equal(r->alias, "meet@example.com");
    assert_int_equal(r->route_status, FED_ROUTE_OK);
    assert_int_equal(r->n_rules, 3);
    assert_int_equal(r->n_rules_total, 3);
    assert_string_equal(r->rules[2].name, "r2");
    assert_int_equal(r->rules[2].outcome, FED_RULE_MATCHED);
    assert_int_equal(r->rules[0].outcome, FED_RULE_SKIPPED_SOURCE);
    assert_string_equal(r->zone, "vcs");
    assert_int_equal(r->n_dns, FED_HIST_MAX_DNS);
    assert_true(r->dns_truncated);
    assert_string_equal(r->dns[7], "_sipfederationtls._tcp.partner.example SRV 7");
    assert_int_equal(r->n_certs, 1);
    assert_false(r->certs_truncated);
    assert_int_equal(r->status, 504);
    assert_int_equal(r->diag_code, 1009);
    assert_string_equal(r->diag_reason, "No match for domain in DNS SRV results");
    free(recs);

    /* a refusal answers at once: its status and diagnostics go in with the decision */
    id = add(ring, 0, "def@host");
    fake_result(res, FED_ROUTE_REFUSED, 1);
    assert_true(fed_history_set_decision(ring, id, res));
    assert_int_equal(fed_history_snapshot(h, 1, &recs), 1);
    assert_int_equal(recs[0].status, 403);
    assert_int_equal(recs[0].diag_code, 1027);
    assert_string_equal(recs[0].zone, "");
    assert_string_equal(recs[0].detail, "privacy mode allow-list refuses x");
    free(recs);
    free(res);
    fed_history_free(h);
}

static void many_rules_keep_the_matches_and_drop_skipped_ones_first(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(8, 1);
    struct fed_history_ring *ring = fed_history_ring(h, 0);
    uint64_t id = add(ring, 0, "x");
    struct fed_route_result *res = calloc(1, sizeof *res);
    fake_result(res, FED_ROUTE_OK, 30);
    res->tried[4].outcome = FED_RULE_MATCHED;
    assert_true(fed_history_set_decision(ring, id, res));
    struct fed_history_record *recs;
    assert_int_equal(fed_history_snapshot(h, 0, &recs), 1);
    const struct fed_history_record *r = &recs[0];
    assert_int_equal(r->n_rules_total, 30);
    assert_int_equal(r->n_rules, FED_HIST_MAX_RULES);
    size_t matched = 0, skipped = 0;
    for (size_t i = 0; i < r->n_rules; i++) {
        matched += r->rules[i].outcome == FED_RULE_MATCHED;
        skipped += r->rules[i].outcome == FED_RULE_SKIPPED_SOURCE;
        if (i)
            assert_true(strcmp(r->rules[i - 1].name, r->rules[i].name) < 0); /* order kept */
    }
    assert_int_equal(matched, 2);
    assert_int_equal(skipped, 0); /* 10 skipped rules went first: 30 - 10 = 20, then 4 more */
    assert_string_equal(r->rules[FED_HIST_MAX_RULES - 1].name, "rt");
    free(recs);
    free(res);
    fed_history_free(h);
}

static void text_is_cleaned_and_cut_at_a_character_boundary(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(4, 1);
    struct fed_history_ring *ring = fed_history_ring(h, 0);
    char long_utf8[400] = "";
    for (int i = 0; i < 100; i++)
        strcat(long_utf8, "\xc3\xa9"); /* é */
    struct fed_history_start s = {
        .call_id = FED_HIST_CSTR("a\r\nb\x01\x7f"),
        .method = {"INVITEXYZ", 6},
        .from = FED_HIST_CSTR("caf\xc3\xa9 \xff\xfe \xed\xa0\x80 \xe2\x82"),
        .to = FED_HIST_CSTR(long_utf8),
    };
    fed_history_begin(ring, &s);
    struct fed_history_record *recs;
    assert_int_equal(fed_history_snapshot(h, 0, &recs), 1);
    assert_string_equal(recs[0].call_id, "a??b??");
    assert_string_equal(recs[0].method, "INVITE");
    assert_string_equal(recs[0].from, "caf\xc3\xa9 ?? ??? ??");
    /* 159 bytes of room: 79 whole characters, never half of one */
    assert_int_equal(strlen(recs[0].to), 158);
    assert_int_equal((unsigned char)recs[0].to[157], 0xa9);
    assert_string_equal(recs[0].source_zone, "");
    free(recs);
    fed_history_free(h);
}

static void null_arguments_are_tolerated(void **state)
{
    (void)state;
    struct fed_history_record *recs = (void *)1;
    fed_history_free(NULL);
    assert_int_equal(fed_history_begin(NULL, &(struct fed_history_start){0}), 0);
    assert_false(fed_history_set_zone(NULL, 1, "x"));
    assert_false(fed_history_set_decision(NULL, 1, NULL));
    assert_int_equal(fed_history_snapshot(NULL, 0, &recs), 0);
    assert_null(recs);
    assert_null(fed_history_render_json(NULL, 0));
    assert_null(fed_history_ring(NULL, 0));
    assert_int_equal(fed_history_capacity(NULL), 0);
    struct fed_history *h = fed_history_new(4, 1);
    assert_int_equal(fed_history_begin(fed_history_ring(h, 0), NULL), 0);
    assert_false(fed_history_add_cert(fed_history_ring(h, 0), 0, "x"));
    fed_history_free(h);
}

/* ---- JSON ------------------------------------------------------------------------------- */

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no key '%s'", key);
    return v;
}

static void json_document_parses_and_carries_every_field(void **state)
{
    (void)state;
    struct fed_history *h = fed_history_new(16, 2);
    uint64_t a = add(fed_history_ring(h, 0), 1000000000123ull, "first\"call");
    uint64_t b = add(fed_history_ring(h, 1), 1000000001000ull, "second");
    struct fed_route_result *res = calloc(1, sizeof *res);
    fake_result(res, FED_ROUTE_REFUSED, 2);
    fed_history_set_decision(fed_history_ring(h, 0), a, res);
    fake_result(res, FED_ROUTE_OK, 1);
    fed_history_set_decision(fed_history_ring(h, 1), b, res);
    fed_history_add_dns(fed_history_ring(h, 1), b, "sip.partner.example A 192.0.2.7");
    free(res);

    char *text = fed_history_render_json(h, 0);
    assert_non_null(text);
    json_object *doc = json_tokener_parse(text);
    if (!doc)
        fail_msg("not JSON: %s", text);
    assert_int_equal(json_object_get_int(get(doc, "capacity")), 16);
    assert_int_equal(json_object_get_int(get(doc, "workers")), 2);
    assert_int_equal(json_object_get_int(get(doc, "count")), 2);
    json_object *entries = get(doc, "entries");
    assert_int_equal(json_object_array_length(entries), 2);

    json_object *e = json_object_array_get_idx(entries, 0); /* newest: "second" */
    assert_string_equal(json_object_get_string(get(e, "call_id")), "second");
    assert_string_equal(json_object_get_string(get(e, "time")), "2001-09-09T01:46:41.000Z");
    assert_int_equal(json_object_get_int(get(e, "worker")), 1);
    assert_string_equal(json_object_get_string(get(e, "decision")), "ok");
    assert_string_equal(json_object_get_string(get(e, "zone")), "local");
    assert_true(json_object_get_type(get(e, "diagnostics")) == json_type_null);
    json_object *rules = get(e, "rules");
    assert_int_equal(json_object_array_length(rules), 1);
    assert_string_equal(json_object_get_string(get(json_object_array_get_idx(rules, 0), "result")),
                        "matched");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(get(e, "dns"), 0)),
                        "sip.partner.example A 192.0.2.7");
    assert_string_equal(json_object_get_string(get(get(e, "source"), "address")), "192.0.2.1:5061");

    e = json_object_array_get_idx(entries, 1);
    assert_string_equal(json_object_get_string(get(e, "call_id")), "first\"call");
    assert_string_equal(json_object_get_string(get(e, "time")), "2001-09-09T01:46:40.123Z");
    assert_int_equal(json_object_get_int64(get(e, "time_ms")), 1000000000123ll);
    assert_string_equal(json_object_get_string(get(e, "decision")), "refused");
    assert_int_equal(json_object_get_int(get(e, "status")), 403);
    assert_int_equal(json_object_get_int(get(get(e, "diagnostics"), "code")), 1027);
    assert_int_equal(json_object_get_int(get(e, "rules_tried")), 2);
    json_object_put(doc);
    free(text);

    text = fed_history_render_json(h, 1);
    doc = json_tokener_parse(text);
    assert_int_equal(json_object_get_int(get(doc, "count")), 1);
    json_object_put(doc);
    free(text);

    text = fed_history_records_json(NULL, 0, 5, 1);
    assert_string_equal(text, "{\"capacity\":5,\"workers\":1,\"count\":0,\"entries\":[]}");
    free(text);
    fed_history_free(h);
}

/* ---- concurrency --------------------------------------------------------------------------- */

struct writer {
    struct fed_history_ring *ring;
    unsigned worker;
    int records;
};

static atomic_int writers_running;

/* Every field of record `id` written by worker w derives from (w, id), so a reader can
 * tell a whole record from a torn one. */
static void expected_call_id(char *buf, size_t size, unsigned w, uint64_t id)
{
    snprintf(buf, size, "w%u-%llu", w, (unsigned long long)id);
}

static void *writer_main(void *p)
{
    struct writer *wr = p;
    struct fed_route_result *res = calloc(1, sizeof *res);
    for (int i = 0; i < wr->records && res; i++) {
        char cid[32], line[64];
        uint64_t next = (uint64_t)i + 1;
        expected_call_id(cid, sizeof cid, wr->worker, next);
        struct fed_history_start s = {
            .call_id = FED_HIST_CSTR(cid), .from = FED_HIST_CSTR(cid), .to = FED_HIST_CSTR(cid)};
        uint64_t id = fed_history_begin(wr->ring, &s);
        if (id != next)
            break;
        fake_result(res, FED_ROUTE_OK, 1 + (size_t)(id % 5));
        snprintf(res->alias, sizeof res->alias, "%s", cid);
        fed_history_set_decision(wr->ring, id, res);
        for (uint64_t k = 0; k < id % 4; k++) {
            snprintf(line, sizeof line, "%s-dns%llu", cid, (unsigned long long)k);
            fed_history_add_dns(wr->ring, id, line);
        }
        fed_history_set_outcome(wr->ring, id, 200 + (int)(id % 100), 0, NULL, cid);
    }
    free(res);
    atomic_fetch_sub(&writers_running, 1);
    return NULL;
}

/* Checks one record read while writers run; returns a description of what is wrong. */
static const char *torn(const struct fed_history_record *r)
{
    char cid[32], line[64];
    expected_call_id(cid, sizeof cid, r->worker, r->id);
    if (strcmp(r->call_id, cid) != 0 || strcmp(r->from, cid) != 0 || strcmp(r->to, cid) != 0)
        return "call-id, from and to disagree";
    if (r->route_status == FED_HIST_UNDECIDED)
        return r->n_rules || r->n_dns || r->status ? "undecided with later fields" : NULL;
    if (strcmp(r->alias, cid) != 0 || r->n_rules != 1 + r->id % 5)
        return "decision does not belong to the record";
    if (r->n_dns > r->id % 4)
        return "too many DNS lines";
    for (size_t k = 0; k < r->n_dns; k++) {
        snprintf(line, sizeof line, "%s-dns%zu", cid, k);
        if (strcmp(r->dns[k], line) != 0)
            return "DNS line from another record";
    }
    if (r->status && (r->status != 200 + (int)(r->id % 100) || strcmp(r->detail, cid) != 0))
        return "outcome from another record";
    return NULL;
}

static void concurrent_writers_and_a_reader_see_only_whole_records(void **state)
{
    (void)state;
    enum { WRITERS = 2, RECORDS = 20000 };
    struct fed_history *h = fed_history_new(64, WRITERS); /* wraps ~600 times */
    pthread_t th[WRITERS];
    struct writer wr[WRITERS];
    atomic_store(&writers_running, WRITERS);
    for (unsigned i = 0; i < WRITERS; i++) {
        wr[i] = (struct writer){fed_history_ring(h, i), i, RECORDS};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &wr[i]), 0);
    }
    size_t snapshots = 0, seen = 0;
    const char *problem = NULL;
    do {
        struct fed_history_record *recs;
        size_t n = fed_history_snapshot(h, 0, &recs);
        for (size_t i = 0; i < n && !problem; i++)
            problem = torn(&recs[i]);
        seen += n;
        snapshots++;
        free(recs);
    } while (atomic_load(&writers_running) > 0 && !problem);
    for (unsigned i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    if (problem)
        fail_msg("torn record: %s", problem);
    assert_true(snapshots > 0);

    /* at rest: every ring holds its newest 32 records, whole */
    struct fed_history_record *recs;
    size_t n = fed_history_snapshot(h, 0, &recs);
    assert_int_equal(n, 64);
    for (size_t i = 0; i < n; i++) {
        assert_null(torn(&recs[i]));
        assert_true(recs[i].id > RECORDS - 32);
        assert_int_not_equal(recs[i].status, 0);
    }
    free(recs);
    print_message("  %zu snapshots, %zu records read while writing\n", snapshots, seen);
    fed_history_free(h);
}

/* ---- confnode history ------------------------------------------------------------------- */

struct http_stub {
    int fd;
    uint16_t port;
    pthread_t th;
    const char *response;
    int conns;
    char request[256]; /* the first request line received */
};

static void *stub_main(void *p)
{
    struct http_stub *s = p;
    for (int c = 0; c < s->conns; c++) {
        /* a client that never comes must not hang the test */
        struct pollfd lp = {.fd = s->fd, .events = POLLIN};
        if (poll(&lp, 1, 5000) <= 0)
            break;
        int fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            break;
        char buf[2048];
        size_t used = 0;
        while (used + 1 < sizeof buf) {
            struct pollfd pf = {.fd = fd, .events = POLLIN};
            if (poll(&pf, 1, 2000) <= 0)
                break;
            ssize_t r = recv(fd, buf + used, sizeof buf - used - 1, 0);
            if (r <= 0)
                break;
            used += (size_t)r;
            buf[used] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        buf[used] = '\0';
        char *eol = strstr(buf, "\r\n");
        if (eol)
            *eol = '\0';
        snprintf(s->request, sizeof s->request, "%.255s", buf);
        for (size_t sent = 0, len = strlen(s->response); sent < len;) {
            ssize_t w = send(fd, s->response + sent, len - sent, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            sent += (size_t)w;
        }
        close(fd);
    }
    return NULL;
}

static void stub_start(struct http_stub *s, const char *response, int conns)
{
    memset(s, 0, sizeof *s);
    s->response = response;
    s->conns = conns;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, stub_main, s), 0);
}

static void stub_stop(struct http_stub *s)
{
    pthread_join(s->th, NULL);
    close(s->fd);
}

/* An HTTP/1.0 answer with a body (static storage, one at a time). */
static const char *answer(int status, const char *body)
{
    static char buf[1 << 16];
    snprintf(buf, sizeof buf,
             "HTTP/1.0 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
             status, strlen(body), body);
    return buf;
}

struct run_out {
    int rc;
    char out[1 << 15];
    char err[4096];
};

static void run(struct run_out *r, int argc, const char **argv)
{
    char *ob = NULL, *eb = NULL;
    size_t ol = 0, el = 0;
    FILE *out = open_memstream(&ob, &ol), *err = open_memstream(&eb, &el);
    assert_non_null(out);
    assert_non_null(err);
    r->rc = cn_history_run(argc, (char **)argv, out, err);
    fclose(out);
    fclose(err);
    snprintf(r->out, sizeof r->out, "%s", ob);
    snprintf(r->err, sizeof r->err, "%s", eb);
    free(ob);
    free(eb);
}

/* A history with a refused MESSAGE and a routed INVITE, as JSON. */
static char *sample_json(void)
{
    struct fed_history *h = fed_history_new(16, 2);
    struct fed_route_result *res = calloc(1, sizeof *res);
    uint64_t a = add(fed_history_ring(h, 0), 1000000000123ull, "refused-call");
    fake_result(res, FED_ROUTE_REFUSED, 2);
    fed_history_set_decision(fed_history_ring(h, 0), a, res);
    uint64_t b = add(fed_history_ring(h, 1), 1000000005000ull, "routed-call");
    fake_result(res, FED_ROUTE_OK, 2);
    fed_history_set_decision(fed_history_ring(h, 1), b, res);
    fed_history_add_dns(fed_history_ring(h, 1), b, "_sipfederationtls._tcp.p.example SRV x");
    fed_history_add_cert(fed_history_ring(h, 1), b, "sip.p.example: ok (SAN)");
    fed_history_set_outcome(fed_history_ring(h, 1), b, 200, 0, NULL, NULL);
    char *text = fed_history_render_json(h, 0);
    free(res);
    fed_history_free(h);
    return text;
}

static void history_command_prints_records_from_the_admin_api(void **state)
{
    (void)state;
    char *json = sample_json();
    struct http_stub s;
    stub_start(&s, answer(200, json), 1);
    char admin[32];
    snprintf(admin, sizeof admin, "127.0.0.1:%u", s.port);
    const char *argv[] = {"history", "--admin", admin};
    struct run_out *r = calloc(1, sizeof *r);
    run(r, 3, argv);
    stub_stop(&s);
    if (r->rc != 0)
        fail_msg("rc %d: %s", r->rc, r->err);
    assert_string_equal(s.request, "GET /history?last=20 HTTP/1.1");
    static const char *const want[] = {
        "2001-09-09T01:46:45.000Z  INVITE  sip:alice@partner.example -> sip:meet@example.com",
        "call-id   routed-call",
        "zone dns, from 192.0.2.1:5061 (worker 1, #1)",
        "r0: skipped (source zone)",
        "r1: matched",
        "decision  ok, zone local, alias meet@example.com",
        "dns       _sipfederationtls._tcp.p.example SRV x",
        "cert      sip.p.example: ok (SAN)",
        "result    200 OK",
        "result    403 Forbidden; ms-diagnostics 1027 \"Cannot route this type",
        "detail    privacy mode allow-list refuses x",
        "2 of 2 records shown (capacity 16, newest first)",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(r->out, want[i]))
            fail_msg("'%s' not in:\n%s", want[i], r->out);
    assert_true(strstr(r->out, "routed-call") < strstr(r->out, "refused-call"));
    free(r);
    free(json);
}

static void history_command_json_is_trimmed_to_last(void **state)
{
    (void)state;
    char *json = sample_json();
    struct http_stub s;
    stub_start(&s, answer(200, json), 1);
    char admin[32];
    snprintf(admin, sizeof admin, "--admin=localhost:%u", s.port);
    const char *argv[] = {"history", admin, "--json", "--last", "1"};
    struct run_out *r = calloc(1, sizeof *r);
    run(r, 5, argv);
    stub_stop(&s);
    assert_int_equal(r->rc, 0);
    assert_string_equal(s.request, "GET /history?last=1 HTTP/1.1");
    json_object *doc = json_tokener_parse(r->out);
    assert_non_null(doc);
    assert_int_equal(json_object_array_length(get(doc, "entries")), 1);
    assert_int_equal(json_object_get_int(get(doc, "count")), 1);
    json_object_put(doc);
    free(r);
    free(json);
}

static void history_command_reads_the_admin_address_from_the_config(void **state)
{
    (void)state;
    char *json = sample_json();
    struct http_stub s;
    stub_start(&s, answer(200, json), 1);
    char path[] = "/tmp/test_fed_history.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char text[256];
    snprintf(text, sizeof text,
             "sip: { tls_port = 0; };\nadmin: { listen = \"0.0.0.0\"; port = %u; };\n", s.port);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    const char *argv[] = {"history", "-c", path, "--last=0"};
    struct run_out *r = calloc(1, sizeof *r);
    run(r, 4, argv);
    stub_stop(&s);
    if (r->rc != 0)
        fail_msg("rc %d: %s", r->rc, r->err);
    assert_string_equal(s.request, "GET /history?last=0 HTTP/1.1");
    assert_non_null(strstr(r->out, "refused-call"));

    FILE *f = fopen(path, "w");
    fputs("sip: { tls_port = 0; };\nadmin: { port = 0; };\n", f);
    fclose(f);
    run(r, 4, argv);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "the admin API is off (admin.port = 0)"));

    f = fopen(path, "w");
    fputs("admin: { port = \"x\"; };\n", f);
    fclose(f);
    run(r, 4, argv);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "admin.port: expected an integer"));
    unlink(path);
    free(r);
    free(json);
}

static void history_command_reports_http_errors_and_refused_connections(void **state)
{
    (void)state;
    struct http_stub s;
    stub_start(&s, answer(404, "{\"error\":\"not found\"}"), 1);
    char admin[32];
    snprintf(admin, sizeof admin, "127.0.0.1:%u", s.port);
    const char *argv[] = {"history", "--admin", admin};
    struct run_out *r = calloc(1, sizeof *r);
    run(r, 3, argv);
    stub_stop(&s);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "answered HTTP 404"));

    stub_start(&s, answer(200, "{\"not\":\"history\"}"), 1);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", s.port);
    run(r, 3, argv);
    stub_stop(&s);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "not a search history document"));

    /* a port nobody listens on: bind one, then close it */
    stub_start(&s, "", 0);
    uint16_t port = s.port;
    stub_stop(&s);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", port);
    run(r, 3, argv);
    assert_int_equal(r->rc, 1);
    assert_non_null(strstr(r->err, "Connection refused"));
    free(r);
}

static void history_command_decodes_a_chunked_answer(void **state)
{
    (void)state;
    char *json = sample_json();
    size_t len = strlen(json), half = len / 2;
    static char resp[1 << 16];
    snprintf(resp, sizeof resp,
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%.*s\r\n%zx\r\n%s\r\n"
             "0\r\n\r\n",
             half, (int)half, json, len - half, json + half);
    struct http_stub s;
    stub_start(&s, resp, 1);
    int status = 0;
    char *body = NULL, err[256];
    size_t blen = 0;
    assert_int_equal(
        cn_http_request("127.0.0.1", s.port, "GET", "/history", 2000, &status, &body, &blen, err, sizeof err),
        0);
    stub_stop(&s);
    assert_int_equal(status, 200);
    assert_int_equal(blen, len);
    assert_string_equal(body, json);
    free(body);
    free(json);
}

static void history_command_rejects_bad_arguments(void **state)
{
    (void)state;
    struct run_out *r = calloc(1, sizeof *r);
    const char *a1[] = {"history", "--bogus"};
    run(r, 2, a1);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, "unknown argument '--bogus'"));
    const char *a2[] = {"history", "--last", "ten"};
    run(r, 3, a2);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, "--last wants a number"));
    const char *a3[] = {"history", "-c", "x.conf", "--admin", "127.0.0.1:1"};
    run(r, 5, a3);
    assert_int_equal(r->rc, 2);
    const char *a4[] = {"history", "--admin", "admin.example.com:8088"};
    run(r, 3, a4);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, "wants an IP address"));
    const char *a5[] = {"history", "--admin", "127.0.0.1"};
    run(r, 3, a5);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, "wants HOST:PORT"));
    const char *a6[] = {"history", "--timeout", "0"};
    run(r, 3, a6);
    assert_int_equal(r->rc, 2);
    const char *a7[] = {"history", "--last"};
    run(r, 2, a7);
    assert_int_equal(r->rc, 2);
    assert_non_null(strstr(r->err, "--last needs a value"));
    const char *a8[] = {"history", "--help"};
    run(r, 2, a8);
    assert_int_equal(r->rc, 0);
    assert_non_null(strstr(r->out, "usage: confnode history"));

    char err[128];
    assert_int_equal(cn_history_print(stdout, "[1,2]", 0, err, sizeof err), -1);
    assert_int_equal(cn_history_print(stdout, "not json", 0, err, sizeof err), -1);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ring_keeps_the_newest_records_and_wraps_around),
        cmocka_unit_test(capacity_is_shared_between_worker_rings),
        cmocka_unit_test(snapshot_merges_rings_by_time_newest_first),
        cmocka_unit_test(decision_dns_certificates_and_outcome_are_recorded),
        cmocka_unit_test(many_rules_keep_the_matches_and_drop_skipped_ones_first),
        cmocka_unit_test(text_is_cleaned_and_cut_at_a_character_boundary),
        cmocka_unit_test(null_arguments_are_tolerated),
        cmocka_unit_test(json_document_parses_and_carries_every_field),
        cmocka_unit_test(concurrent_writers_and_a_reader_see_only_whole_records),
        cmocka_unit_test(history_command_prints_records_from_the_admin_api),
        cmocka_unit_test(history_command_json_is_trimmed_to_last),
        cmocka_unit_test(history_command_reads_the_admin_address_from_the_config),
        cmocka_unit_test(history_command_reports_http_errors_and_refused_connections),
        cmocka_unit_test(history_command_decodes_a_chunked_answer),
        cmocka_unit_test(history_command_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
