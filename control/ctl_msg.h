/* Messages that cross threads inside control: between workers (a request handed to
 * the worker that owns its dialog or room) and between a worker and the control
 * thread (cluster placement). Every message starts with struct ctl_msg; the
 * receiver owns it and frees it with ctl_msg_free(). */
#ifndef CTL_MSG_H
#define CTL_MSG_H

#include <stdint.h>

#include "cn_peer.h"
#include "fed_route.h"

enum ctl_msg_kind {
    CTL_MSG_FORWARD = 1, /* worker -> worker: struct ctl_forward */
    CTL_MSG_CLAIM,       /* worker -> control: where does this room's conference live? */
    CTL_MSG_CLAIM_DONE,  /* control -> worker: the answer (same struct) */
    CTL_MSG_COUNT,       /* worker -> control: participants joined (+1) or left (-1) */
    CTL_MSG_LOCATE,      /* worker -> control: resolve federation targets (fed_wire.h) */
    CTL_MSG_LOCATED,     /* control -> worker: the destinations (same struct) */
};

struct ctl_msg {
    uint32_t kind;
};

struct sip_msg;

struct ctl_forward {
    struct ctl_msg hdr;
    cn_peer_t from;
    struct sip_msg *m;
    /* The verified certificate the TLS peer presented, referenced (X509_up_ref) by
     * the receiving worker: only that worker can look at its connection, so the
     * certificate travels with the request. NULL when none. */
    struct x509_st *cert;
};

/* CLAIM / CLAIM_DONE / COUNT */
struct ctl_msg_claim {
    struct ctl_msg hdr;
    char conf[256];        /* the room alias */
    char txn_key[256];     /* the waiting INVITE transaction (found again by key) */
    uint16_t txn_key_len;
    int delta;             /* COUNT: +1 / -1 */
    /* answer */
    int status;            /* cl_status_t */
    int mine;              /* the conference is on this node */
    int local;             /* answered from local state (standalone or degraded) */
    char owner[64];
    char owner_fqdn[256];
    char owner_addresses[128];
};

/* LOCATE / LOCATED: the federation targets of a parked request (or, for an inbound
 * check, the From domain) and the destinations found for them. */
#define CTL_LOC_MAX_DESTS 8
#define CTL_LOC_MAX_LINES 8
#define CTL_LOC_LINE 160

struct ctl_loc_dest {
    char host[FED_NAME_BUF]; /* the FQDN the peer certificate must carry */
    char addr[46];           /* IP literal */
    uint16_t port;
    uint8_t transport;       /* fed_transport_t */
    uint8_t target;          /* index into targets[] */
};

struct ctl_msg_locate {
    struct ctl_msg hdr;
    char txn_key[256];     /* the parked transaction (found again by key) */
    uint16_t txn_key_len;
    uint64_t hist_id;      /* its search-history record */
    int inbound;           /* an inbound check of `domain` rather than routing */
    char domain[FED_NAME_BUF];
    size_t n_targets;
    struct fed_route_target targets[FED_ROUTE_MAX_TARGETS];
    /* answer */
    int status;            /* 0: dests found; else the SIP status to answer */
    int diag_code;         /* ms-diagnostics code of a failure, 0 when none */
    char diag[FED_ROUTE_DIAG_BUF];
    char detail[160];
    uint32_t ttl_s;        /* how long the answer may be kept (inbound checks) */
    size_t n_dests;
    struct ctl_loc_dest dests[CTL_LOC_MAX_DESTS];
    size_t n_lines;        /* DNS answers and steps, for the search history */
    char lines[CTL_LOC_MAX_LINES][CTL_LOC_LINE];
};

/* Frees any control message (a forwarded request's parsed message included). */
void ctl_msg_free(void *msg);

#endif
