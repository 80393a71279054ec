/* Messages that cross threads inside control: between workers (a request handed to
 * the worker that owns its dialog or room) and between a worker and the control
 * thread (cluster placement). Every message starts with struct ctl_msg; the
 * receiver owns it and frees it with ctl_msg_free(). */
#ifndef CTL_MSG_H
#define CTL_MSG_H

#include <stdint.h>

#include "cn_peer.h"

enum ctl_msg_kind {
    CTL_MSG_FORWARD = 1, /* worker -> worker: struct ctl_forward */
    CTL_MSG_CLAIM,       /* worker -> control: where does this room's conference live? */
    CTL_MSG_CLAIM_DONE,  /* control -> worker: the answer (same struct) */
    CTL_MSG_COUNT,       /* worker -> control: participants joined (+1) or left (-1) */
};

struct ctl_msg {
    uint32_t kind;
};

struct sip_msg;

struct ctl_forward {
    struct ctl_msg hdr;
    cn_peer_t from;
    struct sip_msg *m;
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

/* Frees any control message (a forwarded request's parsed message included). */
void ctl_msg_free(void *msg);

#endif
