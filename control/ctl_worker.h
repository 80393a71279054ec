/* Control, per worker: SIP transactions, dialogs and the node's own user agent
 * (the VMRs), driven by the dataplane's worker loop.
 *
 * DESIGN
 * Every object here (transactions, dialogs, timers, media port share) belongs to
 * exactly one worker and is touched only by its thread. A request inside a dialog
 * that reached another worker is handed to the dialog's owner: the owner's id is
 * part of the To-tag we generated, so no shared table is consulted. Responses go
 * back through ctl_io.send with the peer the request came from; the dataplane
 * writes them on the connection's own worker. */
#ifndef CTL_WORKER_H
#define CTL_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cn_peer.h"
#include "ctl_conf.h"

struct ctl_shared;
struct ctl_worker;
struct sdp_plan;

/* What a media session is opened for, besides the negotiated plan. */
struct ctl_media_req {
    uint64_t conf_key;         /* the room: its calls share one conference */
    unsigned speakers;         /* loudest N mixed */
    uint32_t timeout_ms;       /* no RTP this long: ctl_on_media_event(); 0 = never */
    const char *local_address; /* media.address */
    void *owner;               /* handed back to ctl_on_media_event() */
};

/* Results of the media hooks. */
enum {
    CTL_MEDIA_OK = 0,
    CTL_MEDIA_REFUSED = -2,     /* the offer cannot be met (keys): 488 */
    CTL_MEDIA_BUSY = -3,        /* no session slot, conference full: 503 + Retry-After */
    CTL_MEDIA_PORT_IN_USE = -4, /* the port could not be bound: try another one */
};

enum { CTL_MEDIA_EV_TIMEOUT = 1 };

/* Where an outbound request goes (mirrors the dataplane's struct dp_target). */
struct ctl_target {
    cn_transport_t transport;
    socklen_t addrlen;
    struct sockaddr_storage addr;
    const char *tls_name; /* SNI and the name the peer certificate must carry */
};

typedef enum {
    CTL_CONN_UP = 1,
    CTL_CONN_FAILED = 2,
    CTL_CONN_CLOSED = 3,
} ctl_conn_event_t;

/* How control reaches the dataplane (function pointers: control does not link it). */
typedef struct ctl_io {
    int (*send)(void *io, const cn_peer_t *to, const char *buf, size_t len);
    /* Hands a malloc'd msg to worker `to` (ctl_on_post there); -1 when its ring is
     * full, and the caller still owns msg. */
    int (*post)(void *io, unsigned to, void *msg);
    /* Closes a stream connection after what is queued (a peer we cannot talk to). */
    void (*close)(void *io, const cn_peer_t *peer);
    /* Finds or opens this worker's connection to `to` (a struct ctl_target). 0 with
     * *out set (it may still be coming up: what is sent is queued), or -1 with err.
     * Its fate is reported through ctl_on_conn_event(). */
    int (*connect)(void *io, const struct ctl_target *to, cn_peer_t *out, char *err,
                   size_t errlen);
    /* Hands msg (a struct ctl_msg) to the control thread; -1 when the ring is full
     * and the caller still owns msg. */
    int (*to_control)(void *io, void *msg);
    /* The verified certificate of a TLS peer (borrowed), NULL when none. */
    struct x509_st *(*peer_cert)(void *io, const cn_peer_t *peer);
    /* Media sessions on this worker (NULL: calls are answered without media). They
     * run synchronously in the worker's thread, which hosts the room's conference.
     * open/update take the plan of sdp_negotiate() and write our a=crypto answers
     * into it; they return CTL_MEDIA_* with a reason in why. */
    int (*media_open)(void *io, const struct ctl_media_req *req, struct sdp_plan *plan,
                      uint32_t *leg, char *why, size_t whylen);
    int (*media_update)(void *io, uint32_t leg, const struct ctl_media_req *req,
                        struct sdp_plan *plan, char *why, size_t whylen);
    void (*media_close)(void *io, uint32_t leg);
    void *io;
} ctl_io_t;

/* Where our SIP listeners are, for Contact headers. */
struct ctl_listen {
    char host[64];
    uint16_t udp_port, tcp_port, tls_port;
    /* This node's SIP TLS FQDN (cluster.sip_fqdn), "" when none. With one, our
     * Contact names it and carries the address as maddr, so a peer or a cluster
     * node that sends requests in the dialog over TLS checks the certificate
     * against the name it carries, not against an IP address. */
    char fqdn[256];
};

/* Per-worker counters: written by the worker (relaxed), read by the admin API. */
struct __attribute__((aligned(64))) ctl_stats {
    _Atomic uint64_t transactions, dialogs, calls;      /* gauges */
    _Atomic uint64_t calls_total, bad_messages, retransmissions_absorbed,
        retransmissions_sent, responses[7], no_ack_timeouts, overload_rejects,
        forwarded;
};

/* Read-only after creation; shared by all workers. `conf` must outlive it. */
struct ctl_shared *ctl_shared_create(const struct ctl_conf *conf, const struct ctl_listen *ls,
                                     unsigned n_workers, char *err, size_t errlen);
void ctl_shared_free(struct ctl_shared *sh);

/* Created in the worker's own thread. `stats` is owned by the caller and outlives
 * the worker. Returns NULL when out of memory. */
struct ctl_worker *ctl_worker_create(const struct ctl_shared *sh, unsigned id,
                                     const ctl_io_t *io, struct ctl_stats *stats);
/* Ends every dialog and transaction (no messages sent). Accepts NULL. */
void ctl_worker_free(struct ctl_worker *cw);

void ctl_on_message(struct ctl_worker *cw, const char *buf, size_t len, const cn_peer_t *from,
                    uint64_t now);
/* A stream unit without a usable Content-Length: answers 400 when it can. */
void ctl_on_bad_frame(struct ctl_worker *cw, const char *buf, size_t len,
                      const cn_peer_t *from, const char *why, uint64_t now);
void ctl_on_post(struct ctl_worker *cw, void *msg, uint64_t now);
/* Frees a posted message that will never be delivered (shutdown): ctl_msg_free()
 * in ctl_msg.h. */
/* An outbound connection came up, failed (reason says why) or closed. */
void ctl_on_conn_event(struct ctl_worker *cw, const cn_peer_t *peer, ctl_conn_event_t ev,
                       const char *reason, uint64_t now);
/* The media of a dialog's leg reported an event (CTL_MEDIA_EV_TIMEOUT: no RTP for
 * media.media_timeout): the dialog is ended with a BYE. `owner` is the one given in
 * struct ctl_media_req. */
void ctl_on_media_event(struct ctl_worker *cw, void *owner, int event, uint64_t now);
/* Runs due timers; returns ms to the next one or -1. */
int64_t ctl_tick(struct ctl_worker *cw, uint64_t now);

/* The worker that owns the dialog with this To-tag, or -1 when the tag is not one
 * of ours. */
int ctl_tag_owner(const char *tag, size_t len);

#endif
