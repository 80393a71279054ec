/* Internal to control/: the per-worker context and the objects it owns.
 * Owner of everything here: one worker thread. */
#ifndef CTL_INTERNAL_H
#define CTL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ctl_timer.h"
#include "ctl_worker.h"
#include "media_ports.h"
#include "sip_msg.h"

#define TXN_KEY_MAX 256
#define TAG_LEN 20 /* "cn" + 2 hex worker + 16 hex */

struct vmr {
    char user[128];
    char domain[128];
    unsigned worker; /* the worker that hosts this room's conference */
    const struct ctl_vmr_conf *conf;
};

struct ctl_shared {
    const struct ctl_conf *conf;
    struct ctl_listen listen;
    unsigned n_workers;
    struct vmr *vmrs; /* sorted by user */
    size_t n_vmrs;
    struct fed_wire *fed; /* federation routing (fed_wire.c), NULL when off */
};

enum txn_state {
    TXN_PROCEEDING = 1, /* INVITE: provisional sent, final pending (ringing) */
    TXN_ACCEPTED,       /* INVITE: 2xx sent (RFC 6026); absorbs retransmissions */
    TXN_COMPLETED,      /* final (non-2xx for INVITE) sent; absorbs retransmissions */
    TXN_CONFIRMED,      /* INVITE: ACK to non-2xx received */
};

struct ctl_dialog;
struct fed_wire;
struct ctl_pxy;
struct ctl_px;

/* A server transaction (RFC 3261 §17.2). */
struct ctl_txn {
    struct ctl_txn *hnext;
    uint64_t hash;
    uint16_t key_len;
    uint8_t state;
    uint8_t is_invite;
    uint8_t proxied;         /* forwarded by the proxy (ctl_proxy.c), never answered here */
    uint8_t acked;           /* INVITE: the ACK of its 2xx came (ctl_txn_acked) */
    struct ctl_pxy *pxy;     /* its proxy context until the final response went up */
    char key[TXN_KEY_MAX];
    cn_peer_t peer;
    char *resp;              /* last response sent, for retransmissions */
    size_t resp_len;
    uint32_t retx_ms;        /* current retransmission interval */
    struct ctl_timer t_retx; /* G (non-2xx) or 2xx retransmission, unreliable only */
    struct ctl_timer t_end;  /* H, I, J, L, or the answer delay */
    sip_msg_t *pending;      /* INVITE waiting for its answer (owned) */
    struct x509_st *cert;    /* the TLS peer's verified certificate, referenced */
    struct ctl_dialog *dlg;
};

enum dlg_state { DLG_EARLY = 1, DLG_CONFIRMED };

struct ctl_dialog {
    struct ctl_dialog *hnext;
    uint64_t hash;
    char tag[TAG_LEN + 1];    /* our To-tag */
    uint8_t state;
    char *call_id;
    size_t call_id_len;
    uint32_t remote_cseq;
    int media_port;           /* -1 when none */
    const struct vmr *room;
    struct ctl_txn *invite;   /* the INVITE transaction whose 2xx awaits its ACK */
    struct ctl_timer t_ack;   /* no ACK within 64*T1 ends the dialog */
    /* media and our own requests in the dialog (ctl_uas.c, ctl_uac.c) */
    uint32_t media_leg;       /* 0 = none */
    uint16_t video_port;      /* 0 = none */
    uint8_t offered;          /* our offer went in the 2xx: the answer comes in the ACK */
    char *uac;                /* remote target, remote From, our To: for a BYE we send */
    uint32_t local_cseq;
    cn_peer_t peer;           /* where the INVITE came from; our BYE goes there */
};

struct ctl_worker {
    const struct ctl_shared *sh;
    const struct ctl_conf *conf;
    unsigned id;
    ctl_io_t io;
    struct ctl_stats *stats;
    uint64_t now;              /* ms, set on every entry from the worker loop */
    struct x509_st *cur_cert;  /* peer certificate of the request being handled when
                                  it was handed over by another worker (borrowed) */
    struct ctl_timers timers;
    struct media_ports ports;
    uint64_t tag_seq;          /* To-tag sequence, mixed with tag_key */
    uint64_t tag_key;
    /* transactions: chained hash */
    struct ctl_txn **txn_tab;
    uint32_t txn_mask, n_txn;
    struct ctl_txn *txn_free;  /* recycled, so steady state does not allocate */
    /* dialogs: chained hash keyed by our tag */
    struct ctl_dialog **dlg_tab;
    uint32_t dlg_mask, n_dlg;
    struct ctl_uac *uacs;      /* our own client transactions (ctl_uac.c) */
    uint64_t uac_seq;
    struct ctl_px *px;         /* proxy contexts and their client transactions (ctl_proxy.c) */
    struct fed_wire_worker *fw; /* federation state of this worker (fed_wire.c) */
    char out[16384];           /* response being built */
};

static inline void cstat_add(_Atomic uint64_t *c, int64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)v,
                          memory_order_relaxed);
}

uint64_t ctl_hash(const char *s, size_t len, uint64_t seed);

/* The verified certificate of the TLS peer a request came from: the transaction's
 * (when it was handed over from another worker), the request's being handled,
 * or the connection's when this worker owns it. NULL when none. Borrowed. */
struct x509_st *ctl_peer_cert(struct ctl_worker *cw, const struct ctl_txn *t,
                              const cn_peer_t *peer);

/* transactions (ctl_txn.c) */
int ctl_txn_key(const sip_msg_t *m, char *key, size_t cap, bool for_ack);
struct ctl_txn *ctl_txn_find(struct ctl_worker *cw, const char *key, size_t len);
struct ctl_txn *ctl_txn_new(struct ctl_worker *cw, const char *key, size_t len,
                            const cn_peer_t *peer, bool invite);
void ctl_txn_destroy(struct ctl_worker *cw, struct ctl_txn *t);
/* Sends a response within t and moves t on per RFC 3261 / RFC 6026; keeps a copy
 * for retransmissions where needed. */
void ctl_txn_respond(struct ctl_worker *cw, struct ctl_txn *t, int status, const char *buf,
                     size_t len, uint64_t now);
void ctl_txn_retransmit(struct ctl_worker *cw, struct ctl_txn *t);
void ctl_txn_ack(struct ctl_worker *cw, struct ctl_txn *t, uint64_t now);
/* The ACK for t's 2xx arrived: t lingers for T4 (UDP) or ends (TCP/TLS). */
void ctl_txn_acked(struct ctl_worker *cw, struct ctl_txn *t, uint64_t now);
/* Answers t->pending (ctl_uas_answer_pending) at `when`. */
void ctl_txn_arm_answer(struct ctl_worker *cw, struct ctl_txn *t, uint64_t when);

/* dialogs (ctl_dialog.c) */
struct ctl_dialog *ctl_dialog_new(struct ctl_worker *cw, const sip_msg_t *invite,
                                  const struct vmr *room);
struct ctl_dialog *ctl_dialog_find(struct ctl_worker *cw, sip_str_t tag, sip_str_t call_id);
void ctl_dialog_end(struct ctl_worker *cw, struct ctl_dialog *d);
void ctl_dialog_confirm(struct ctl_worker *cw, struct ctl_dialog *d);

/* the node's user agent (ctl_uas.c) */
void ctl_uas_request(struct ctl_worker *cw, sip_msg_t *m, const cn_peer_t *from, uint64_t now);
void ctl_uas_answer_pending(struct ctl_worker *cw, struct ctl_txn *t, uint64_t now);
struct ctl_msg_claim;
/* The control thread's answer to "where does this room's conference live?". */
void ctl_uas_placed(struct ctl_worker *cw, const struct ctl_msg_claim *answer);
/* Sends a response outside any transaction (stateless), e.g. 400 to a broken request. */
void ctl_send_stateless(struct ctl_worker *cw, const sip_msg_t *req, const cn_peer_t *to,
                        int status, const char *extra);

const struct vmr *ctl_vmr_find(const struct ctl_shared *sh, sip_str_t user, sip_str_t host);

#endif
