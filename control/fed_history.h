/* Search history: what happened to each routed request, for the operator.
 *
 * DESIGN
 * One ring per worker. A worker writes only its own ring (begin a record, then add
 * to it as the request progresses: the decision, the zone being tried, DNS answers,
 * certificate checks, the outcome), with no lock and no allocation. Any other thread
 * (the admin API on the control thread) reads every ring at any time and merges the
 * newest records by time.
 *
 * Readers tolerate concurrent writers with a sequence lock per record: the writer
 * makes the record's sequence odd, stores the record, and makes it even again; a
 * reader copies the record between two reads of the sequence and keeps the copy
 * only when both reads are the same even number, else it retries (a few times,
 * then skips that record). Every shared word is a C11 atomic (data words stored with
 * release and loaded with acquire ordering), so the protocol is race-free for the
 * C memory model and for ThreadSanitizer, with no fences. A record also carries its
 * id: a reader that finds a newer id in a slot knows the record it wanted was
 * overwritten, and so does a writer updating a record after its ring wrapped (the
 * update is dropped and reported).
 *
 * Capacity is for the whole node and is shared out evenly between the rings
 * (ceil(capacity / workers) each): a busy worker's oldest records go first. Records
 * are fixed-size; strings are truncated at a UTF-8 character boundary, and control
 * characters and bytes that are not UTF-8 are stored as '?', so the JSON is always
 * valid. */
#ifndef FED_HISTORY_H
#define FED_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fed_route.h"

#define FED_HISTORY_DEFAULT_CAPACITY 1000
#define FED_HISTORY_MAX_CAPACITY 1000000

#define FED_HIST_MAX_RULES 16
#define FED_HIST_MAX_DNS 8
#define FED_HIST_MAX_CERTS 4
#define FED_HIST_TEXT 160

/* A string view; len FED_NAME_NUL: a C string. s NULL: empty. */
typedef struct fed_hist_str {
    const char *s;
    size_t len;
} fed_hist_str_t;

#define FED_HIST_CSTR(c) ((fed_hist_str_t){(c), FED_NAME_NUL})

struct fed_history_rule {
    char name[FED_RULE_NAME_BUF];
    uint8_t outcome; /* fed_rule_outcome_t */
};

/* route_status before fed_history_set_decision(). */
#define FED_HIST_UNDECIDED (-100)

/* One routed request, as readers get it. */
struct fed_history_record {
    uint64_t id;      /* per ring, from 1 */
    uint32_t worker;  /* the ring's worker */
    uint64_t time_ms; /* wall clock, milliseconds since 1970 (UTC) */
    char call_id[128];
    char method[16];
    char from[FED_HIST_TEXT]; /* the From URI */
    char to[FED_HIST_TEXT];   /* the Request-URI as received */
    char source_zone[FED_ZONE_NAME_BUF];
    char source_addr[64];      /* "192.0.2.1:5061", "[2001:db8::1]:5061" */
    int32_t route_status;      /* fed_route_status_t, or FED_HIST_UNDECIDED */
    char alias[FED_ALIAS_BUF]; /* after the rules' replaces */
    uint16_t n_rules_total;    /* rules tried */
    uint8_t n_rules;           /* kept here: the last ones and every match first */
    struct fed_history_rule rules[FED_HIST_MAX_RULES];
    char zone[FED_ZONE_NAME_BUF]; /* the zone chosen, or being tried */
    uint8_t n_dns;
    bool dns_truncated;
    char dns[FED_HIST_MAX_DNS][FED_HIST_TEXT];
    uint8_t n_certs;
    bool certs_truncated;
    char certs[FED_HIST_MAX_CERTS][FED_HIST_TEXT];
    int32_t status;    /* the SIP status answered; 0 while pending */
    int32_t diag_code; /* ms-diagnostics code, 0 when none */
    char diag_reason[FED_HIST_TEXT];
    char detail[FED_HIST_TEXT]; /* why, in a sentence */
};

struct fed_history;      /* every ring */
struct fed_history_ring; /* one worker's */

/* `capacity` records in all (0: FED_HISTORY_DEFAULT_CAPACITY; at most
 * FED_HISTORY_MAX_CAPACITY) over `workers` rings (0: 1). NULL when out of memory. */
struct fed_history *fed_history_new(size_t capacity, unsigned workers);

/* Accepts NULL. No writer or reader may be running. */
void fed_history_free(struct fed_history *h);

size_t fed_history_capacity(const struct fed_history *h);
unsigned fed_history_workers(const struct fed_history *h);

/* Worker w's ring, or NULL when w is out of range. */
struct fed_history_ring *fed_history_ring(struct fed_history *h, unsigned w);

/* ---- writing: only the ring's own worker, never two threads on one ring ----------- */

struct fed_history_start {
    uint64_t time_ms; /* wall clock ms since 1970; 0: now */
    fed_hist_str_t call_id, method, from, to, source_zone, source_addr;
};

/* Starts a record (overwriting the ring's oldest when full). Returns its id (> 0)
 * for the calls below, or 0 when ring or s is NULL. */
uint64_t fed_history_begin(struct fed_history_ring *ring, const struct fed_history_start *s);

/* Each call below updates record `id` and returns true, or returns false when the
 * record is gone (overwritten since) or an argument is NULL. */

/* The routing decision: alias, rules tried, the first target's zone; for a decision
 * that answers at once (not FED_ROUTE_OK / IN_DIALOG) also the status, ms-diagnostics
 * and detail. */
bool fed_history_set_decision(struct fed_history_ring *ring, uint64_t id,
                              const struct fed_route_result *res);
/* The zone now being tried (after the first target failed). */
bool fed_history_set_zone(struct fed_history_ring *ring, uint64_t id, const char *zone);
/* A DNS answer or step, e.g. "_sipfederationtls._tcp.example.com SRV 1 100 5061
 * sip.example.com". Beyond FED_HIST_MAX_DNS lines only dns_truncated is set. */
bool fed_history_add_dns(struct fed_history_ring *ring, uint64_t id, const char *text);
/* A certificate check, e.g. "sip.example.com: ok (SAN)". */
bool fed_history_add_cert(struct fed_history_ring *ring, uint64_t id, const char *text);
/* The final answer: SIP status, ms-diagnostics code and reason (0 / NULL: none), and a
 * sentence (NULL: keep the one there). */
bool fed_history_set_outcome(struct fed_history_ring *ring, uint64_t id, int status, int diag_code,
                             const char *diag_reason, const char *detail);

/* ---- reading: any thread, any time ------------------------------------------------- */

/* Copies the newest `last` records of all rings (0: all), newest first (by time_ms,
 * then by worker, each ring's own order kept), into a malloc'd array *out (free()
 * it) and returns their number. Records that stay busy under their writer through
 * every retry are skipped. Returns 0 with *out NULL when there are none or memory
 * runs out. */
size_t fed_history_snapshot(const struct fed_history *h, size_t last,
                            struct fed_history_record **out);

/* JSON for GET /history:
 *   {"capacity":1000,"workers":4,"count":N,"entries":[ {...}, ... ]}
 * each entry {"time":"2026-11-22T00:30:01.123Z","time_ms":...,"worker":..,"id":..,
 *   "call_id","method","from","to","source":{"zone","address"},"decision",
 *   "alias","rules":[{"name","result"}],"rules_tried","zone","dns":[...],
 *   "dns_truncated","certificates":[...],"certificates_truncated","status",
 *   "diagnostics":{"code","reason"} or null,"detail"}.
 * newest first. malloc'd string (free()), or NULL when out of memory or h is NULL. */
char *fed_history_render_json(const struct fed_history *h, size_t last);

/* The same document for records already copied (capacity and workers as given). */
char *fed_history_records_json(const struct fed_history_record *recs, size_t n, size_t capacity,
                               unsigned workers);

#endif
