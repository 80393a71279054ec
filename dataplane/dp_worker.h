/* Workers: one thread per core, each with its own epoll loop, its own
 * SO_REUSEPORT UDP, TCP and TLS listeners, and the connections it accepted.
 *
 * DESIGN
 * A worker owns everything it touches: its sockets, its connections (TCP and TLS,
 * for their whole life), its counters, and the upper layer's per-worker context
 * (transactions, dialogs). Nothing on this path takes a lock. Workers talk to each
 * other only through bounded single-producer/single-consumer rings (one per ordered
 * pair of workers) plus an eventfd to wake the receiver; a full ring is a counted
 * drop, never a wait.
 *
 * The dataplane knows nothing of SIP beyond framing: it hands every whole message
 * to the upper layer through dp_handler_t, and the upper layer answers through
 * dp_send(), naming the peer it was given. An answer for a connection owned by
 * another worker travels to that worker by ring and is written there. */
#ifndef DP_WORKER_H
#define DP_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cn_peer.h"
#include "dp_conf.h"

struct dp_worker;
struct dp_engine;
struct dp_media;

typedef enum {
    DP_CONN_UP = 1,     /* an outbound connection is connected (and TLS verified) */
    DP_CONN_FAILED = 2, /* an outbound connection could not be set up: reason says why */
    DP_CONN_CLOSED = 3, /* an outbound connection that was up is gone */
} dp_conn_event_t;

/* The upper layer. Every callback runs in the worker's own thread. */
typedef struct dp_handler {
    /* At worker start; returns the per-worker context passed to the others. */
    void *(*start)(struct dp_worker *w, void *arg);
    /* One whole SIP message (a datagram or a framed stream unit). buf is valid only
     * during the call. */
    void (*message)(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                    uint64_t now_ms);
    /* A stream unit that cannot be framed (no or bad Content-Length): the handler may
     * answer (400) with dp_send(); the connection is closed after the answer is
     * written. `why` says what was wrong. */
    void (*bad_frame)(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                      const char *why, uint64_t now_ms);
    /* Fires due timers; returns ms until the next one, or -1 when none. */
    int64_t (*tick)(void *ctx, uint64_t now_ms);
    /* A message another worker sent with dp_post(); the handler owns it. */
    void (*post)(void *ctx, void *msg, uint64_t now_ms);
    /* Frees a posted message that will not be delivered (shutdown). May be called
     * from any thread once the workers have stopped. */
    void (*post_free)(void *msg);
    /* Outbound connection state changes (dp_connect). May be NULL. `reason` is a
     * human-readable cause for DP_CONN_FAILED ("connect 127.0.0.1:5061: Connection
     * refused", "TLS: certificate verify failed: hostname mismatch"). */
    void (*conn_event)(void *ctx, const cn_peer_t *peer, dp_conn_event_t ev, const char *reason,
                       uint64_t now_ms);
    /* At worker exit, after the last message. */
    void (*stop)(void *ctx);
    void *arg;
} dp_handler_t;

/* Per-worker counters. Written by the owning worker only (relaxed stores), read by
 * the control thread at any time (relaxed loads). One cache line apart from the
 * next worker's. */
struct dp_stats {
    _Atomic uint64_t rx_messages, tx_messages, rx_bytes, tx_bytes;
    _Atomic uint64_t connections;  /* gauge: open TCP + TLS connections */
    _Atomic uint64_t conns_accepted, conns_closed_oversize, conns_closed_idle,
        conns_closed_error, conns_refused_full;
    _Atomic uint64_t tls_handshakes, tls_handshake_failures;
    _Atomic uint64_t keepalive_pings;
    _Atomic uint64_t ring_drops, send_failures;
};

/* Creates the engine: the TLS context, a probe that the ports are free, every
 * worker's listeners, the rings. Nothing runs yet. Returns NULL with a reason
 * naming the config field in err. `conf` must outlive the engine. */
struct dp_engine *dp_engine_create(const struct dp_conf *conf, const dp_handler_t *h,
                                   char *err, size_t errlen);
/* Starts one thread per worker. Returns 0 or -1 with err. */
int dp_engine_start(struct dp_engine *e, char *err, size_t errlen);
/* Asks every worker to stop (async-signal-safe: an atomic store and eventfd writes). */
void dp_engine_stop(struct dp_engine *e);
/* Waits for the workers to exit, then frees everything. Accepts NULL. */
void dp_engine_free(struct dp_engine *e);

unsigned dp_engine_workers(const struct dp_engine *e);
const struct dp_stats *dp_engine_stats(const struct dp_engine *e, unsigned worker);
int dp_engine_worker_cpu(const struct dp_engine *e, unsigned worker);

unsigned dp_worker_id(const struct dp_worker *w);
/* The worker's media sessions (dp_media.h); only its own thread may use them. */
struct dp_media *dp_worker_media(struct dp_worker *w);
/* Worker `worker`'s media state, for the control thread to read its counters
 * (dp_media_stats()) and nothing else; NULL when out of range. */
struct dp_media *dp_engine_media(const struct dp_engine *e, unsigned worker);
unsigned dp_worker_count(const struct dp_worker *w);

/* Sends buf to `to`: a datagram from this worker's UDP socket, or bytes on the
 * connection (written here when this worker owns it, else handed to its owner by
 * ring). Never blocks; what the socket cannot take yet is queued on the
 * connection. Returns 0, or -1 when the connection is gone or the ring is full
 * (counted). */
int dp_send(struct dp_worker *w, const cn_peer_t *to, const char *buf, size_t len);

/* Hands `msg` to worker `to`'s handler->post. Returns 0, or -1 when that ring is
 * full: the caller still owns msg. */
int dp_post(struct dp_worker *w, unsigned to, void *msg);

/* Where an outbound request goes. */
struct dp_target {
    cn_transport_t transport;
    socklen_t addrlen;
    struct sockaddr_storage addr;
    /* TLS: the SNI sent and the name the peer certificate must carry (SAN DNS entry;
     * the CN only when the certificate has no SAN; no wildcards). NULL: the chain is
     * verified but no name is checked. */
    const char *tls_name;
};

/* Finds this worker's connection to `t`, or starts one (non-blocking). UDP needs no
 * connection: the peer names this worker's UDP socket. Bytes sent while the
 * connection is still connecting or handshaking are written once it is up; if it
 * never comes up, handler->conn_event reports DP_CONN_FAILED with the reason.
 * Returns 0 with *out set, or -1 with a reason in err. */
int dp_connect(struct dp_worker *w, const struct dp_target *t, cn_peer_t *out, char *err,
               size_t errlen);

/* The verified certificate the peer of a TLS connection presented (NULL when none,
 * or not TLS, or not owned by this worker). Borrowed: valid until the connection
 * closes; the caller must not free it. */
struct x509_st *dp_peer_certificate(struct dp_worker *w, const cn_peer_t *peer);

/* ---- the control thread ----
 * Each worker has a ring to the control thread and one from it (single producer,
 * single consumer each), so work that waits on the outside world (cluster store,
 * DNS) is asked for and answered without a lock. Messages are opaque pointers
 * owned by whoever dequeues them; undelivered ones go to handler->post_free. */

/* Worker -> control thread. 0, or -1 when the ring is full (counted; the caller
 * still owns msg). */
int dp_to_control(struct dp_worker *w, void *msg);
/* Readable when workers have posted to the control thread. */
int dp_engine_control_fd(const struct dp_engine *e);
/* Control thread: hands every pending message to fn(arg, worker, msg). Returns the
 * number handled. */
size_t dp_engine_control_drain(struct dp_engine *e,
                               void (*fn)(void *arg, unsigned worker, void *msg), void *arg);
/* Control thread -> worker (delivered through handler->post). 0, or -1 when the
 * ring is full and the caller still owns msg. Only the control thread may call it. */
int dp_engine_post(struct dp_engine *e, unsigned worker, void *msg);

/* Closes the connection named by `peer` once what is queued for it is written
 * (no-op for UDP). Only for connections this worker owns. */
void dp_close(struct dp_worker *w, const cn_peer_t *peer);

#endif
