/* Where a SIP message came from, and so where its answer goes.
 *
 * The dataplane fills one in for every message it hands up; control keeps a copy in
 * its transaction and gives it back to send the response. A connection is named by
 * (worker, conn_id): the worker that accepted it owns it for its whole life, and
 * only that worker writes to it (another worker's answer travels there by ring). */
#ifndef CN_PEER_H
#define CN_PEER_H

#include <stdint.h>
#include <sys/socket.h>

typedef enum {
    CN_TRANSPORT_UDP = 0,
    CN_TRANSPORT_TCP = 1,
    CN_TRANSPORT_TLS = 2,
} cn_transport_t;

static inline const char *cn_transport_name(cn_transport_t t)
{
    return t == CN_TRANSPORT_UDP ? "UDP" : t == CN_TRANSPORT_TCP ? "TCP" : "TLS";
}

/* Stream transports deliver in order and need no retransmission timers. */
static inline int cn_transport_reliable(cn_transport_t t) { return t != CN_TRANSPORT_UDP; }

typedef struct cn_peer {
    cn_transport_t transport;
    uint16_t worker;     /* worker that owns the socket / connection */
    uint32_t conn_id;    /* connection id within that worker; 0 for UDP */
    socklen_t addrlen;
    struct sockaddr_storage addr;  /* remote address */
} cn_peer_t;

#endif
