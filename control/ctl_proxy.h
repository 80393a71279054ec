/* The stateful proxy (RFC 3261 §16, no forking) and its client transactions
 * (§17.1), per worker. Internal to control/: the cluster (a call proxied to the node
 * that owns its conference) and federation (a request routed to a federated domain)
 * both forward through ctl_proxy_forward().
 *
 * DESIGN
 * A proxied request has a server transaction upstream (ctl_txn.c, marked proxied)
 * and a proxy context here holding the request, the ordered targets and the
 * failures seen so far. The targets are tried one after the other (RFC 3263
 * fail-over): a target whose connection cannot be opened, whose TLS handshake or
 * certificate check fails, that does not answer in time (Timer B/F) or that answers
 * 503 is given up and the next one is tried. Any other final response ends the
 * search and is relayed upstream. When every target failed, upstream gets a final
 * response that says why: 504 Server Time-out with an ms-diagnostics header and a
 * Warning for connection, TLS and timeout failures, 480 (carrying the peer's own
 * ms-diagnostics) when targets answered 503, 503 with Retry-After when this worker
 * ran out of transactions.
 *
 * Responses come back on the connection we opened (or, over UDP, to our listener on
 * any worker): our Via branch ("z9hG4bKcn" + 2 hex digits naming the worker, as for
 * ctl_uac.c, then "p" + 16 hex) names the worker that owns the client transaction,
 * so a response that lands elsewhere is handed over by ring (ctl_worker.c). Our
 * Via is removed and the response relayed: 100 absorbed, other 1xx relayed, 2xx
 * relayed (for INVITE every 2xx, retransmissions included, for 64*T1 after the
 * first, even after the server transaction moved on), non-2xx finals relayed and
 * acknowledged downstream hop by hop. ms-diagnostics headers from peers are relayed
 * untouched and reported to the caller's hook.
 *
 * CANCEL: a CANCEL matching a proxied INVITE still pending gets 200 at once; the
 * CANCEL downstream (same branch as our INVITE) goes out when the current target
 * has sent a provisional response (RFC 3261 §9.1), at once if it already has. The
 * downstream 487 is relayed. Once cancelled no further target is tried: a target
 * that fails after the CANCEL ends the INVITE with 487.
 *
 * Loose routing (§16.4, §16.12): every Route value at the top that names this node
 * (host and port of our listeners) is removed. ctl_proxy_request() sends a request
 * with such a Route to the next Route value or, when none is left, to the
 * Request-URI, unless that is this node (then the user agent takes it). Targets
 * there must be IP literals, or carry an IP literal maddr (RFC 3261 §19.1.1); a
 * host name would need DNS on the control thread, not available to this path yet:
 * the request is answered 503 with Warning "name resolution for in-dialog targets
 * not yet available". An ACK for a 2xx travels the same way, statelessly.
 * Strict routers (a Route without ;lr) are treated as loose ones.
 *
 * Record-Route (opts.record_route) uses this node's host, the listener port of the
 * downstream transport and ;transport=...;lr. When the upstream transport differs
 * (UDP or TCP in, TLS out) a second value for the upstream side is added below it
 * (RFC 5658), so requests in the dialog come back to the listener that suits each
 * side; both are removed again as Route values naming this node.
 *
 * Connection failures arrive later (ctl_on_conn_event): every client transaction
 * waiting on that connection fails over at once instead of waiting for Timer B/F.
 * Failures are never handled inside a send or connect hook: they run from a timer
 * due at once, so no hook re-enters the proxy.
 *
 * Limits: the proxy contexts and client transactions of a worker are bounded by
 * conf->max_transactions each; beyond that a request is answered 503 with
 * Retry-After. Nothing here takes a lock: everything belongs to one worker. */
#ifndef CTL_PROXY_H
#define CTL_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctl_internal.h"

#define CTL_PROXY_MAX_TARGETS 8
#define CTL_PROXY_TIMER_C_MS 180000u /* INVITE without a final response (§16.6 step 11) */

/* ms-diagnostics code for a peer that could not be reached (connection refused,
 * no answer to connect or to the request), as Microsoft edges send it. */
#define CTL_DIAG_CONNECT_FAILED 1046
#define CTL_DIAG_CONNECT_REASON "Failed to connect to a federated peer server"

struct ctl_ctxn;
struct ctl_pxy;

/* Per-worker state of the proxy and its client transactions (cw->px). */
struct ctl_px {
    struct ctl_ctxn **ctab; /* client transactions, chained hash by branch */
    uint32_t cmask;
    unsigned n_ctxn;
    struct ctl_ctxn *call; /* every client transaction, for connection events */
    uint64_t branch_seq;
    struct ctl_pxy *pxys; /* proxy contexts */
    unsigned n_pxy;
};

/* ---- the proxy ------------------------------------------------------------------ */

typedef enum {
    CTL_PROXY_EV_TRY = 1,  /* a target is being tried */
    CTL_PROXY_EV_FAILED,   /* that target failed: reason, diag (ours, or the peer's) */
    CTL_PROXY_EV_RESPONSE, /* a response from that target, relayed upstream */
    CTL_PROXY_EV_DONE,     /* the final response upstream is decided: the last event */
} ctl_proxy_ev_t;

/* What the hook is told. Strings are valid during the call only. */
struct ctl_proxy_event {
    ctl_proxy_ev_t kind;
    size_t target;                  /* index into the targets given; n for DONE */
    const struct ctl_target *where; /* that target (NULL for DONE) */
    int status;         /* response status (a failure by transport or timeout: 0; DONE: the
                           final status sent upstream) */
    const char *reason; /* FAILED / DONE: why, in a sentence ("connect 127.0.0.1:5061:
                           Connection refused"); else NULL */
    const char *diag;   /* the ms-diagnostics value: the one we built for a failure, or
                           the one a peer sent (passed upstream untouched); NULL: none */
};

/* Called for every event of one forwarded request, the last being CTL_PROXY_EV_DONE
 * (after which `arg` is never used again). Runs in the worker's thread. It must not
 * call back into the proxy. */
typedef void (*ctl_proxy_report_fn)(void *arg, const struct ctl_proxy_event *ev);

struct ctl_proxy_opts {
    /* The Request-URI for every target (the alias after a search rule's replace,
     * "sip:alias@domain"); NULL keeps the received one. */
    const char *ruri;
    /* Per target, overriding ruri (n entries; a NULL entry uses ruri); may be NULL. */
    const char *const *target_ruris;
    /* Add Record-Route: for requests that create a dialog (INVITE, SUBSCRIBE). */
    bool record_route;
    /* source="..." in the ms-diagnostics we build; NULL: conf->node_name. */
    const char *diag_source;
    ctl_proxy_report_fn report; /* NULL: none */
    void *report_arg;
};

typedef enum {
    CTL_PROXY_FORWARDED = 0,      /* sent to the first target that could be tried */
    CTL_PROXY_ANSWERED = 1,       /* answered here (483, 503, 504, ...; see the event) */
    CTL_PROXY_RETRANSMISSION = 2, /* a request already being proxied: absorbed */
    CTL_PROXY_STATELESS = 3,      /* an ACK, sent on without a transaction */
} ctl_proxy_status_t;

/* Forwards request m (taken: the proxy frees it) received from `from` to targets
 * [0..n), in order, until one gives a final response other than 503. `st` is the
 * request's server transaction when the caller already has one (it becomes
 * proxied; its peer is where responses go; what it answered so far, a 100 Trying
 * say, is the caller's business), else NULL and one is made here (a retransmission
 * of a request already proxied is absorbed) and an INVITE is answered 100 Trying
 * upstream at once. Max-Forwards 0 is answered 483; when absent, 70 is
 * sent. Route values at the top naming this node are removed. An ACK is forwarded
 * statelessly to the first target. `targets` and `opts` are copied; `from` may be
 * NULL only when st is given. */
ctl_proxy_status_t ctl_proxy_forward(struct ctl_worker *cw, struct ctl_txn *st, sip_msg_t *m,
                                     const cn_peer_t *from, const struct ctl_target *targets,
                                     size_t n, const struct ctl_proxy_opts *opts);

/* A request for the proxy rather than the user agent: a retransmission, CANCEL or
 * ACK of a proxied request, or a request whose top Route names this node and whose
 * destination is elsewhere. Returns true when taken (m is then the proxy's), false
 * when m is not for the proxy (untouched). */
bool ctl_proxy_request(struct ctl_worker *cw, sip_msg_t *m, const cn_peer_t *from, uint64_t now);

/* A response: true when it answers one of our client transactions (m is then taken
 * and freed), false when it does not (m untouched). */
bool ctl_proxy_response(struct ctl_worker *cw, sip_msg_t *m, uint64_t now);

/* An outbound connection failed or closed: every client transaction waiting on it
 * fails over. */
void ctl_proxy_conn_event(struct ctl_worker *cw, const cn_peer_t *peer, ctl_conn_event_t ev,
                          const char *reason, uint64_t now);

/* Whether a URI names this node: its host is our listen host and its port (5060, or
 * 5061 for sips: and transport=tls, when absent) one of our listener ports. */
bool ctl_proxy_names_us(const struct ctl_worker *cw, const sip_uri_t *u);

/* The worker named by one of our branches, -1 when the branch is not ours. */
int ctl_proxy_branch_owner(sip_str_t branch);

/* Per-worker state: made by ctl_worker_create, freed by ctl_worker_free (before the
 * server transactions: nothing is sent). */
int ctl_proxy_init(struct ctl_worker *cw);
void ctl_proxy_fini(struct ctl_worker *cw);

/* Proxy contexts alive (for tests and counters). */
unsigned ctl_proxy_count(const struct ctl_worker *cw);

/* ---- client transactions (ctl_ctxn.c) ------------------------------------------- */

typedef enum {
    CTL_CTXN_DONE = 0,      /* ended after its final response (timers D, K, M) */
    CTL_CTXN_TIMEOUT = 1,   /* no final response: Timer B or F */
    CTL_CTXN_TRANSPORT = 2, /* the request could not be delivered; reason says why */
} ctl_ctxn_end_t;

/* What a client transaction tells its user. Neither runs inside ctl_ctxn_start() or
 * a hook of ctl_io. */
struct ctl_ctxn_user {
    /* A response to pass up: every provisional, the first final, and for INVITE
     * every 2xx. resp is valid during the call only. */
    void (*response)(struct ctl_worker *cw, struct ctl_ctxn *c, void *arg, const sip_msg_t *resp);
    /* The transaction ends (freed when this returns). Not called once detached. */
    void (*end)(struct ctl_worker *cw, struct ctl_ctxn *c, void *arg, ctl_ctxn_end_t why,
                const char *reason);
};

/* Writes a new branch naming this worker ("z9hG4bKcn" + 2 hex + "p" + 16 hex) into
 * out (at least CTL_BRANCH_LEN + 1 bytes). */
#define CTL_BRANCH_LEN 28
void ctl_ctxn_branch(struct ctl_worker *cw, char *out);

/* Starts a client transaction: `req` (malloc'd, len bytes, taken in every case) is a
 * whole request of `method` whose top Via carries `branch`; it is sent to `peer` and,
 * over UDP, retransmitted on timers A (INVITE) or E; timers B/F end it. Returns NULL when this
 * worker has no transaction left (req freed). A send that fails is reported through user->end,
 * later. */
struct ctl_ctxn *ctl_ctxn_start(struct ctl_worker *cw, const cn_peer_t *peer, char *req, size_t len,
                                const char *branch, sip_method_t method,
                                const struct ctl_ctxn_user *user, void *arg);

/* The user leaves: the transaction finishes on its own (absorbing and
 * acknowledging retransmitted finals), telling nobody. Accepts NULL. */
void ctl_ctxn_detach(struct ctl_ctxn *c);

/* Sends a CANCEL for an INVITE transaction still without a final response (as a
 * client transaction of its own, whose responses are absorbed). Returns 0, or -1
 * when not possible (not an INVITE, final already received, no transaction left). */
int ctl_ctxn_cancel(struct ctl_worker *cw, struct ctl_ctxn *c);

/* Whether a provisional (or any) response has been received. */
bool ctl_ctxn_provisional(const struct ctl_ctxn *c);
/* The peer the request was sent to. */
const cn_peer_t *ctl_ctxn_peer(const struct ctl_ctxn *c);

/* "127.0.0.1:5061" or "[::1]:5061" into buf; returns buf. */
char *ctl_addr_str(const struct sockaddr_storage *a, char *buf, size_t size);

/* A response for one of our client transactions (matched by branch and CSeq
 * method): true when it matched (m not freed: the caller frees it). */
bool ctl_ctxn_on_response(struct ctl_worker *cw, const sip_msg_t *m);
/* A connection failed or closed: transactions waiting on it fail (later). */
void ctl_ctxn_on_conn_event(struct ctl_worker *cw, const cn_peer_t *peer, ctl_conn_event_t ev,
                            const char *reason);

int ctl_ctxn_init(struct ctl_worker *cw);
/* Frees every client transaction, telling nobody. */
void ctl_ctxn_fini(struct ctl_worker *cw);
unsigned ctl_ctxn_count(const struct ctl_worker *cw);

#endif
