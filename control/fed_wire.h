/* Federation routing in the node: the router, the search history and the resolver
 * wired to the workers and the control thread.
 *
 * DESIGN
 * Which requests are routed. An out-of-dialog request (no To tag; not ACK, CANCEL
 * or BYE) whose Request-URI host is not ours goes through fed_route_decide() on the
 * worker that received it. "Ours" is sip.domain, the domain of any VMR alias, an IP
 * literal, or the listen host. A request for a room, for an IP literal or without a
 * user stays with the node's user agent. A user of our domain that is not a room
 * goes through the rules too, but only their neighbour-zone and static-route
 * targets are kept (the call control that holds the domain's users; a DNS target
 * would lead back here): with none left, the user agent answers it (404 for an
 * INVITE). The router is compiled once at boot and shared read-only by every
 * worker (fed_wire_attach()).
 *
 * Refusals (privacy: 403 + ms-diagnostics 1027; no route: 404; a bad Request-URI:
 * 400/414/416) are answered at once with the decided status, the ms-diagnostics
 * header when there is one and a Warning, and recorded in the worker's search
 * history ring.
 *
 * Targets needing DNS. A DNS-zone target, and a static route or neighbour whose
 * address is a host name, is located by the control thread: the worker keeps the
 * request in its server transaction (t->pending; an INVITE has been answered 100
 * Trying) and posts a CTL_MSG_LOCATE to the control thread. fed_wire_central_locate()
 * runs fed_route_locate_plan() with the control thread's resolver and answers with
 * CTL_MSG_LOCATED: the ordered destinations, the DNS lines for the history, or the
 * failure (504 + ms-diagnostics 1008 when there is no SRV record, 1009 with the
 * refused target when strict naming refused every SRV target). The worker then
 * forwards with ctl_proxy_forward(): tls_name is the SRV target FQDN (the name the
 * peer certificate must carry), only transports the zone's security mode allows,
 * and a report hook that completes the history record (zones tried, connection and
 * certificate failures, final status and ms-diagnostics code). Targets whose
 * addresses are all IP literals need no round trip. A static route's addresses are
 * never followed by DNS (no_dns_fallback).
 *
 * Inbound check (flow 1). A request arriving over TLS whose From (or
 * P-Asserted-Identity) domain D is not ours is checked before anything else when
 * fed_wire_conf.inbound_check is set: _sipfederationtls._tcp.D is located (the
 * same LOCATE round trip, strict naming on) and the peer certificate
 * (ctl_io.peer_cert) must carry the SRV target. Results are cached per domain on the
 * worker for the SRV answer's remaining DNS TTL, at most fed_wire_conf.inbound_cache_s
 * (a refusal at most 30 s). Refusals: 504
 * with ms-diagnostics 1009 (no usable SRV target) or 1010 (ErrorType, tls-target,
 * PeerServer), recorded in the history.
 *
 * Threads: fed_wire_request() and fed_wire_located() run in the worker that owns
 * the transaction; fed_wire_central_locate() in the control thread. */
#ifndef FED_WIRE_H
#define FED_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fed_dns.h"
#include "fed_history.h"
#include "fed_route.h"
#include "sip_msg.h"

struct ctl_shared;
struct ctl_worker;
struct ctl_txn;
struct ctl_msg_locate;

#define FED_WIRE_INBOUND_CACHE_S 300
#define FED_WIRE_INBOUND_CACHE_MAX 64
#define FED_WIRE_MAX_TRUSTED 64

struct fed_wire_conf {
    const struct fed_router *router; /* NULL: no federation routing */
    struct fed_history *history;     /* NULL: nothing recorded */
    bool inbound_check;              /* check federated TLS peers (flow 1) */
    uint32_t inbound_cache_s;        /* cap on the DNS TTL; 0: FED_WIRE_INBOUND_CACHE_S */
    const char *diag_source;         /* source="..." in our ms-diagnostics; NULL: none */
    /* IP literals of peers exempt from the inbound check (the cluster's own nodes,
     * which relay a caller's From); copied, at most FED_WIRE_MAX_TRUSTED. */
    const char *const *trusted_addrs;
    size_t n_trusted;
    /* Certificate names of our own nodes (sip.<domain>, the SRV target, node FQDNs):
     * a TLS peer whose certificate carries one is one of ours and is not checked.
     * Copied, at most FED_WIRE_MAX_TRUSTED. */
    const char *const *trusted_names;
    size_t n_trusted_names;
};

/* Attaches federation to the shared worker state; before any worker starts. The
 * router and history must outlive sh. conf is copied (diag_source too). Returns 0,
 * or -1 when out of memory. */
int fed_wire_attach(struct ctl_shared *sh, const struct fed_wire_conf *conf);

/* Frees what fed_wire_attach() made; after the workers stopped. Accepts NULL. */
void fed_wire_detach(struct ctl_shared *sh);

/* Frees the worker's federation state (ctl_worker_free). Accepts NULL. */
void fed_wire_worker_free(struct ctl_worker *cw);

/* An out-of-dialog request with its new server transaction t, before the user
 * agent: returns true when federation took it (answered, parked or forwarded; m is
 * then owned here), false when it is for the user agent (m untouched). */
bool fed_wire_request(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m);

/* The control thread's answer to a LOCATE (a is not freed here). */
void fed_wire_located(struct ctl_worker *cw, const struct ctl_msg_locate *a);

/* Control thread: locates the question in q (CTL_MSG_LOCATE) with dns and calls
 * done(arg, q) once with the answer filled in and hdr.kind CTL_MSG_LOCATED (before
 * returning when everything was cached). dns NULL: answers "no resolver". */
void fed_wire_central_locate(fed_dns_t *dns, struct ctl_msg_locate *q,
                             void (*done)(void *arg, struct ctl_msg_locate *q), void *arg);

/* Whether host (a Request-URI host) is one of our domains. */
bool fed_wire_host_is_ours(const struct ctl_shared *sh, sip_str_t host);

#endif
