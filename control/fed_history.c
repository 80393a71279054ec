/* Search history rings (see fed_history.h for the concurrency protocol).
 *
 * A slot is a sequence counter plus the record as an array of 64-bit atomic words.
 * Writers build the new record in a local copy and store it word by word between
 * the two sequence updates; readers load it word by word between two sequence
 * reads. Nothing else is shared: each ring's head (the last id it wrote) is stored
 * with release after the record, so a reader that sees an id also sees its slot
 * written at least once. */
#include "fed_history.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(struct fed_history_record) % sizeof(uint64_t) == 0,
               "a record is a whole number of words");

#define HIST_WORDS (sizeof(struct fed_history_record) / sizeof(uint64_t))
#define HIST_READ_TRIES 64 /* copies of one slot before a reader gives up on it */

struct hist_slot {
    _Atomic uint64_t seq; /* odd while the writer is in the middle of a store */
    _Atomic uint64_t words[HIST_WORDS];
};

struct fed_history_ring {
    _Atomic uint64_t head; /* id of the newest record; 0: none yet */
    uint32_t worker;
    size_t cap;
    struct hist_slot *slots;
};

struct fed_history {
    size_t capacity;
    unsigned n_rings;
    struct fed_history_ring *rings;
};

/* ---- life cycle --------------------------------------------------------------------- */

struct fed_history *fed_history_new(size_t capacity, unsigned workers)
{
    if (capacity == 0)
        capacity = FED_HISTORY_DEFAULT_CAPACITY;
    if (capacity > FED_HISTORY_MAX_CAPACITY)
        capacity = FED_HISTORY_MAX_CAPACITY;
    if (workers == 0)
        workers = 1;
    struct fed_history *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->capacity = capacity;
    h->rings = calloc(workers, sizeof *h->rings);
    if (!h->rings)
        goto fail;
    size_t per_ring = (capacity + workers - 1) / workers;
    for (unsigned w = 0; w < workers; w++) {
        struct fed_history_ring *ring = &h->rings[w];
        ring->worker = w;
        ring->cap = per_ring;
        atomic_init(&ring->head, 0);
        ring->slots = calloc(per_ring, sizeof *ring->slots);
        if (!ring->slots)
            goto fail;
        h->n_rings++;
    }
    return h;
fail:
    fed_history_free(h);
    return NULL;
}

void fed_history_free(struct fed_history *h)
{
    if (!h)
        return;
    for (unsigned w = 0; h->rings && w < h->n_rings; w++)
        free(h->rings[w].slots);
    free(h->rings);
    free(h);
}

size_t fed_history_capacity(const struct fed_history *h)
{
    return h ? h->capacity : 0;
}

unsigned fed_history_workers(const struct fed_history *h)
{
    return h ? h->n_rings : 0;
}

struct fed_history_ring *fed_history_ring(struct fed_history *h, unsigned w)
{
    return h && w < h->n_rings ? &h->rings[w] : NULL;
}

/* ---- the sequence lock ----------------------------------------------------------------- */

static struct hist_slot *slot_of(const struct fed_history_ring *ring, uint64_t id)
{
    return &ring->slots[(id - 1) % ring->cap];
}

/* Writer side: store rec into the slot. */
static void slot_store(struct hist_slot *slot, const struct fed_history_record *rec)
{
    uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_relaxed);
    atomic_store_explicit(&slot->seq, seq + 1, memory_order_relaxed);
    const unsigned char *src = (const unsigned char *)rec;
    for (size_t i = 0; i < HIST_WORDS; i++) {
        uint64_t w;
        memcpy(&w, src + i * sizeof w, sizeof w);
        /* release: a reader that sees this word also sees the odd sequence above */
        atomic_store_explicit(&slot->words[i], w, memory_order_release);
    }
    atomic_store_explicit(&slot->seq, seq + 2, memory_order_release);
}

/* Writer side: its own slot needs no sequence check (nobody else writes it). */
static void slot_load_own(const struct hist_slot *slot, struct fed_history_record *rec)
{
    unsigned char *dst = (unsigned char *)rec;
    for (size_t i = 0; i < HIST_WORDS; i++) {
        uint64_t w = atomic_load_explicit(&slot->words[i], memory_order_relaxed);
        memcpy(dst + i * sizeof w, &w, sizeof w);
    }
}

/* Reader side: a consistent copy, or false after HIST_READ_TRIES attempts. */
static bool slot_read(const struct hist_slot *slot, struct fed_history_record *rec)
{
    unsigned char *dst = (unsigned char *)rec;
    for (int tries = 0; tries < HIST_READ_TRIES; tries++) {
        uint64_t before = atomic_load_explicit(&slot->seq, memory_order_acquire);
        if (before & 1)
            continue;
        for (size_t i = 0; i < HIST_WORDS; i++) {
            uint64_t w = atomic_load_explicit(&slot->words[i], memory_order_acquire);
            memcpy(dst + i * sizeof w, &w, sizeof w);
        }
        /* after the acquire loads above, so it cannot be read before them */
        uint64_t after = atomic_load_explicit(&slot->seq, memory_order_relaxed);
        if (before == after)
            return true;
    }
    return false;
}

/* ---- text ----------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n-1] (2..4), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || len > n || (s[0] >= 0xE0 && len == 2))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return len;
}

/* Copies a view into dst[size]: printable ASCII and valid UTF-8 kept, anything else
 * as '?', cut at a character boundary. */
static void copy_text(char *dst, size_t size, fed_hist_str_t v)
{
    size_t n = !v.s ? 0 : v.len == FED_NAME_NUL ? strlen(v.s) : v.len;
    const unsigned char *s = (const unsigned char *)v.s;
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < size;) {
        if (s[i] >= 0x20 && s[i] < 0x7F) {
            dst[o++] = (char)s[i++];
            continue;
        }
        size_t len = s[i] >= 0x80 ? utf8_seq(s + i, n - i) : 0;
        if (len == 0) {
            dst[o++] = '?';
            i++;
            continue;
        }
        if (o + len + 1 > size)
            break;
        memcpy(dst + o, s + i, len);
        o += len;
        i += len;
    }
    if (size)
        dst[o] = '\0';
}

#define COPY(dst, v) copy_text((dst), sizeof(dst), (v))

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- writing ----------------------------------------------------------------------------- */

uint64_t fed_history_begin(struct fed_history_ring *ring, const struct fed_history_start *s)
{
    if (!ring || !s)
        return 0;
    static const struct fed_history_record empty = {.route_status = FED_HIST_UNDECIDED};
    struct fed_history_record rec = empty;
    uint64_t id = atomic_load_explicit(&ring->head, memory_order_relaxed) + 1;
    rec.id = id;
    rec.worker = ring->worker;
    rec.time_ms = s->time_ms ? s->time_ms : wall_ms();
    COPY(rec.call_id, s->call_id);
    COPY(rec.method, s->method);
    COPY(rec.from, s->from);
    COPY(rec.to, s->to);
    COPY(rec.source_zone, s->source_zone);
    COPY(rec.source_addr, s->source_addr);
    slot_store(slot_of(ring, id), &rec);
    atomic_store_explicit(&ring->head, id, memory_order_release);
    return id;
}

/* Loads record id of the caller's own ring into *rec; false when it is gone. */
static bool own_record(const struct fed_history_ring *ring, uint64_t id,
                       struct fed_history_record *rec)
{
    if (!ring || id == 0 || id > atomic_load_explicit(&ring->head, memory_order_relaxed))
        return false;
    slot_load_own(slot_of(ring, id), rec);
    return rec->id == id;
}

/* Which of the n tried rules to keep when more than FED_HIST_MAX_RULES were tried:
 * drop rules skipped by source or type first, then rules that did not match, each
 * from the oldest, then the oldest of the rest. */
static void pick_rules(const struct fed_route_tried *tried, size_t n, bool *keep)
{
    size_t kept = n;
    for (size_t i = 0; i < n; i++)
        keep[i] = true;
    for (int pass = 0; pass < 3 && kept > FED_HIST_MAX_RULES; pass++) {
        for (size_t i = 0; i < n && kept > FED_HIST_MAX_RULES; i++) {
            fed_rule_outcome_t o = tried[i].outcome;
            bool drop = pass == 0   ? o == FED_RULE_SKIPPED_SOURCE || o == FED_RULE_SKIPPED_TYPE
                        : pass == 1 ? o == FED_RULE_NOT_MATCHED
                                    : true;
            if (keep[i] && drop) {
                keep[i] = false;
                kept--;
            }
        }
    }
}

bool fed_history_set_decision(struct fed_history_ring *ring, uint64_t id,
                              const struct fed_route_result *res)
{
    struct fed_history_record rec;
    if (!res || !own_record(ring, id, &rec))
        return false;
    rec.route_status = res->status;
    COPY(rec.alias, FED_HIST_CSTR(res->alias));
    size_t n = res->n_tried < FED_ROUTE_MAX_RULES ? res->n_tried : FED_ROUTE_MAX_RULES;
    bool keep[FED_ROUTE_MAX_RULES];
    pick_rules(res->tried, n, keep);
    rec.n_rules_total = (uint16_t)n;
    rec.n_rules = 0;
    memset(rec.rules, 0, sizeof rec.rules);
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        struct fed_history_rule *hr = &rec.rules[rec.n_rules++];
        COPY(hr->name, FED_HIST_CSTR(res->tried[i].rule));
        hr->outcome = (uint8_t)res->tried[i].outcome;
    }
    rec.zone[0] = '\0';
    if (res->status == FED_ROUTE_OK && res->n_targets)
        COPY(rec.zone, FED_HIST_CSTR(res->targets[0].zone));
    if (res->status != FED_ROUTE_OK && res->status != FED_ROUTE_IN_DIALOG) {
        rec.status = res->sip_status;
        rec.diag_code = res->diag_code;
        COPY(rec.diag_reason, FED_HIST_CSTR(res->diag_reason));
    }
    COPY(rec.detail, FED_HIST_CSTR(res->detail));
    slot_store(slot_of(ring, id), &rec);
    return true;
}

bool fed_history_set_zone(struct fed_history_ring *ring, uint64_t id, const char *zone)
{
    struct fed_history_record rec;
    if (!own_record(ring, id, &rec))
        return false;
    COPY(rec.zone, FED_HIST_CSTR(zone));
    slot_store(slot_of(ring, id), &rec);
    return true;
}

static bool add_line(struct fed_history_ring *ring, uint64_t id, const char *text, bool dns)
{
    struct fed_history_record rec;
    if (!text || !own_record(ring, id, &rec))
        return false;
    uint8_t *n = dns ? &rec.n_dns : &rec.n_certs;
    size_t max = dns ? FED_HIST_MAX_DNS : FED_HIST_MAX_CERTS;
    if (*n < max) {
        char *line = dns ? rec.dns[*n] : rec.certs[*n];
        copy_text(line, FED_HIST_TEXT, FED_HIST_CSTR(text));
        (*n)++;
    } else if (dns) {
        rec.dns_truncated = true;
    } else {
        rec.certs_truncated = true;
    }
    slot_store(slot_of(ring, id), &rec);
    return true;
}

bool fed_history_add_dns(struct fed_history_ring *ring, uint64_t id, const char *text)
{
    return add_line(ring, id, text, true);
}

bool fed_history_add_cert(struct fed_history_ring *ring, uint64_t id, const char *text)
{
    return add_line(ring, id, text, false);
}

bool fed_history_set_outcome(struct fed_history_ring *ring, uint64_t id, int status, int diag_code,
                             const char *diag_reason, const char *detail)
{
    struct fed_history_record rec;
    if (!own_record(ring, id, &rec))
        return false;
    rec.status = status;
    rec.diag_code = diag_code;
    COPY(rec.diag_reason, FED_HIST_CSTR(diag_reason));
    if (detail)
        COPY(rec.detail, FED_HIST_CSTR(detail));
    slot_store(slot_of(ring, id), &rec);
    return true;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* One ring walked from its newest record down. */
struct cursor {
    const struct fed_history_ring *ring;
    uint64_t next;   /* next id to read; below `lowest`: done */
    uint64_t lowest; /* the oldest id the ring can still hold when the walk began */
    bool have;
    struct fed_history_record cur;
};

/* Moves c to its next readable record (skipping overwritten and busy ones). */
static void cursor_advance(struct cursor *c)
{
    c->have = false;
    while (c->next >= c->lowest && c->next > 0) {
        uint64_t id = c->next--;
        if (slot_read(slot_of(c->ring, id), &c->cur) && c->cur.id == id) {
            c->have = true;
            return;
        }
    }
}

/* True when a is newer than b: later time, then lower worker. */
static bool newer(const struct fed_history_record *a, const struct fed_history_record *b)
{
    if (a->time_ms != b->time_ms)
        return a->time_ms > b->time_ms;
    return a->worker < b->worker;
}

size_t fed_history_snapshot(const struct fed_history *h, size_t last,
                            struct fed_history_record **out)
{
    size_t n = 0;
    struct cursor *cur = NULL;
    struct fed_history_record *recs = NULL;
    if (out)
        *out = NULL;
    if (!h || !out)
        goto out;
    cur = calloc(h->n_rings, sizeof *cur);
    if (!cur)
        goto out;
    size_t total = 0;
    for (unsigned w = 0; w < h->n_rings; w++) {
        const struct fed_history_ring *ring = &h->rings[w];
        uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
        cur[w].ring = ring;
        cur[w].next = head;
        cur[w].lowest = head > ring->cap ? head - ring->cap + 1 : 1;
        total += head >= cur[w].lowest ? (size_t)(head - cur[w].lowest + 1) : 0;
        cursor_advance(&cur[w]);
    }
    size_t want = last && last < total ? last : total;
    if (want == 0)
        goto out;
    recs = malloc(want * sizeof *recs);
    if (!recs)
        goto out;
    while (n < want) {
        struct cursor *best = NULL;
        for (unsigned w = 0; w < h->n_rings; w++)
            if (cur[w].have && (!best || newer(&cur[w].cur, &best->cur)))
                best = &cur[w];
        if (!best)
            break;
        recs[n++] = best->cur;
        cursor_advance(best);
    }
out:
    free(cur);
    if (n == 0) {
        free(recs);
        recs = NULL;
    }
    if (out)
        *out = recs;
    return n;
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* Adds key: value to obj, consuming value; false (value freed) on failure. */
static bool put(json_object *obj, const char *key, json_object *value)
{
    if (!value)
        return false;
    if (json_object_object_add(obj, key, value) != 0) {
        json_object_put(value);
        return false;
    }
    return true;
}

static bool push(json_object *arr, json_object *value)
{
    if (!value)
        return false;
    if (json_object_array_add(arr, value) != 0) {
        json_object_put(value);
        return false;
    }
    return true;
}

static json_object *time_text(uint64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40];
    if (!gmtime_r(&secs, &tm))
        return json_object_new_string("");
    size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof buf - n, ".%03uZ", (unsigned)(ms % 1000));
    return json_object_new_string(buf);
}

static json_object *string_array(const char (*lines)[FED_HIST_TEXT], size_t n)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (!push(arr, json_object_new_string(lines[i]))) {
            json_object_put(arr);
            return NULL;
        }
    }
    return arr;
}

static json_object *rules_json(const struct fed_history_record *r)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; arr && i < r->n_rules && i < FED_HIST_MAX_RULES; i++) {
        json_object *o = json_object_new_object();
        bool ok = o && put(o, "name", json_object_new_string(r->rules[i].name)) &&
                  put(o, "result",
                      json_object_new_string(
                          fed_rule_outcome_str((fed_rule_outcome_t)r->rules[i].outcome)));
        if (!ok || !push(arr, o)) {
            if (!ok)
                json_object_put(o);
            json_object_put(arr);
            return NULL;
        }
    }
    return arr;
}

static json_object *record_json(const struct fed_history_record *r)
{
    json_object *o = json_object_new_object();
    json_object *src = json_object_new_object();
    json_object *diag = NULL;
    if (!o || !src)
        goto fail;
    if (!put(src, "zone", json_object_new_string(r->source_zone)) ||
        !put(src, "address", json_object_new_string(r->source_addr)))
        goto fail;
    if (r->diag_code) {
        diag = json_object_new_object();
        if (!diag || !put(diag, "code", json_object_new_int(r->diag_code)) ||
            !put(diag, "reason", json_object_new_string(r->diag_reason)))
            goto fail;
    }
    const char *decision = r->route_status == FED_HIST_UNDECIDED
                               ? "pending"
                               : fed_route_status_str((fed_route_status_t)r->route_status);
    bool ok = put(o, "source", src);
    src = NULL; /* consumed, even on failure */
    ok = ok && put(o, "time", time_text(r->time_ms)) &&
         put(o, "time_ms", json_object_new_int64((int64_t)r->time_ms)) &&
         put(o, "worker", json_object_new_int64(r->worker)) &&
         put(o, "id", json_object_new_int64((int64_t)r->id)) &&
         put(o, "call_id", json_object_new_string(r->call_id)) &&
         put(o, "method", json_object_new_string(r->method)) &&
         put(o, "from", json_object_new_string(r->from)) &&
         put(o, "to", json_object_new_string(r->to)) &&
         put(o, "decision", json_object_new_string(decision)) &&
         put(o, "alias", json_object_new_string(r->alias)) && put(o, "rules", rules_json(r)) &&
         put(o, "rules_tried", json_object_new_int(r->n_rules_total)) &&
         put(o, "zone", json_object_new_string(r->zone)) &&
         put(o, "dns",
             string_array(r->dns, r->n_dns < FED_HIST_MAX_DNS ? r->n_dns : FED_HIST_MAX_DNS)) &&
         put(o, "dns_truncated", json_object_new_boolean(r->dns_truncated)) &&
         put(o, "certificates",
             string_array(r->certs,
                          r->n_certs < FED_HIST_MAX_CERTS ? r->n_certs : FED_HIST_MAX_CERTS)) &&
         put(o, "certificates_truncated", json_object_new_boolean(r->certs_truncated)) &&
         put(o, "status", json_object_new_int(r->status));
    if (!ok)
        goto fail;
    if (diag) {
        ok = put(o, "diagnostics", diag);
        diag = NULL;
    } else {
        ok = json_object_object_add(o, "diagnostics", NULL) == 0;
    }
    if (!ok || !put(o, "detail", json_object_new_string(r->detail)))
        goto fail;
    return o;
fail:
    json_object_put(diag);
    json_object_put(src);
    json_object_put(o);
    return NULL;
}

char *fed_history_records_json(const struct fed_history_record *recs, size_t n, size_t capacity,
                               unsigned workers)
{
    char *text = NULL;
    json_object *doc = json_object_new_object();
    json_object *arr = json_object_new_array();
    if (!doc || !arr || (n && !recs))
        goto out;
    if (!put(doc, "capacity", json_object_new_int64((int64_t)capacity)) ||
        !put(doc, "workers", json_object_new_int64(workers)) ||
        !put(doc, "count", json_object_new_int64((int64_t)n)))
        goto out;
    for (size_t i = 0; i < n; i++)
        if (!push(arr, record_json(&recs[i])))
            goto out;
    if (!put(doc, "entries", arr)) {
        arr = NULL;
        goto out;
    }
    arr = NULL;
    const char *s = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN);
    text = s ? strdup(s) : NULL;
out:
    json_object_put(arr);
    json_object_put(doc);
    return text;
}

char *fed_history_render_json(const struct fed_history *h, size_t last)
{
    if (!h)
        return NULL;
    struct fed_history_record *recs = NULL;
    size_t n = fed_history_snapshot(h, last, &recs);
    char *text = fed_history_records_json(recs, n, h->capacity, h->n_rings);
    free(recs);
    return text;
}
