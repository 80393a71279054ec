/* Requests the node sends inside a dialog it answered: BYE, when the media of a
 * call went silent. Client transactions per RFC 3261 §17.1.2 (non-INVITE): over
 * UDP the request is resent on timer E (T1, doubling up to T2) until a response
 * comes, and given up on timer F (64*T1) on every transport.
 *
 * Our Via branch names the worker that sent the request ("z9hG4bKcn" + two hex
 * digits + ...), so a response that lands on another worker is handed to the
 * sender without a shared table (ctl_uac_owner). Owner: one worker. */
#ifndef CTL_UAC_H
#define CTL_UAC_H

#include <stdint.h>

#include "cn_peer.h"
#include "sip_msg.h"

struct ctl_worker;
struct ctl_dialog;
struct ctl_uac;

/* Remembers what a BYE for dialog d needs from the INVITE that created it: the
 * remote target (its Contact), its From (our To) and To (our From, with our tag),
 * and the peer it came from. Returns 0 or -1 (out of memory: no BYE possible). */
int ctl_uac_dialog_init(struct ctl_worker *cw, struct ctl_dialog *d, const sip_msg_t *invite,
                        const cn_peer_t *from);

/* Sends a BYE in dialog d (which the caller then ends) with a Reason header saying
 * why. Returns 0, or -1 when it could not be built or sent (counted). */
int ctl_uac_bye(struct ctl_worker *cw, struct ctl_dialog *d, const char *why);

/* The worker that sent the request a response answers, or -1 when its branch is not
 * one of ours. */
int ctl_uac_owner(const sip_msg_t *resp);

/* A response to one of our requests (takes and frees resp). */
void ctl_uac_response(struct ctl_worker *cw, sip_msg_t *resp);

/* Frees every client transaction (no messages sent). */
void ctl_uac_free_all(struct ctl_worker *cw);

/* Counters for tests: transactions alive, retransmissions sent, timed out. */
unsigned ctl_uac_count(const struct ctl_worker *cw);

#endif
