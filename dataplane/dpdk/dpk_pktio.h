/* Datagram I/O under the media workers: the one place where the sockets backend
 * and the DPDK backend differ for media (docs/dpdk.md, "Packet I/O interface").
 *
 * DESIGN
 * dp_media does its per-packet work (SRTP, mixing, switching, RTCP) on datagrams
 * and does not care where they come from. What it needs from below is small and is
 * exactly what it already does with sockets:
 *   open(port) / close(port)     start / stop receiving on a local UDP port;
 *   tx_slot() / tx_commit()      a payload buffer, then "send these len bytes from
 *                                local port P to address A" (queued);
 *   tx_flush()                   send what is queued (a burst);
 * and, upwards, one call per received datagram on the worker's own thread:
 *   dp_media_input(m, value, buf, len, from, fromlen, now_ms)
 * where `value` is what open() was given for the port (dp_media's leg*4+kind).
 *
 * Sockets backend: open = socket+bind+epoll, tx = sendmmsg, input from recvmmsg
 * (what dp_media_io.c does, inline). DPDK backend (dpk_engine.c): open marks the
 * port in the worker's own port table (the port must be in the worker's partition),
 * tx_slot hands out the payload area of an mbuf, tx_commit writes Ethernet/IP/UDP
 * headers in front and queues the mbuf for rte_eth_tx_burst, input points into the
 * received mbuf (zero copy). Buffers handed to dp_media_input may be changed in
 * place (SRTP unprotect) and are valid only during the call.
 *
 * Nothing here blocks or allocates from the heap; every call runs on the worker that
 * owns the dp_media. */
#ifndef DPK_PKTIO_H
#define DPK_PKTIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct dp_media;

struct dpk_pktio {
    void *io;
    /* Starts delivering datagrams to local UDP `port` (on `addr`, an IP literal)
     * through dp_media_input() with `value`. `tos` is the DSCP byte for what is sent
     * from it. Returns 0, or -EADDRINUSE (port taken), -EXDEV (port outside this
     * worker's partition), -EINVAL. */
    int (*open)(void *io, const char *addr, uint16_t port, uint32_t value, uint8_t tos);
    /* Stops delivering for `port`; datagrams still queued for sending are sent. */
    void (*close)(void *io, uint16_t port);
    /* A buffer for the next datagram's payload, *cap bytes long; NULL when no buffer
     * is free (the caller counts a drop). The buffer is committed by tx_commit() or
     * reused by the next tx_slot(). */
    uint8_t *(*tx_slot)(void *io, size_t *cap);
    /* Queues the last tx_slot() buffer: `len` bytes of UDP payload from local `port`
     * to `to`. Returns 0, or -1 when it was dropped (counted by the backend). */
    int (*tx_commit)(void *io, uint16_t port, const struct sockaddr_storage *to, socklen_t tolen,
                     size_t len);
    /* Sends everything queued. */
    void (*tx_flush)(void *io);
};

/* What dp_media provides for a packet I/O backend. Declared weak: the DPDK backend
 * uses them when dp_media*.c define them, and otherwise sends media through the
 * kernel (exception path) to dp_media's own sockets, so a node works either way.
 *
 * dp_media_set_pktio: from now on open/close/send through `io` instead of sockets.
 * Called on the worker's thread before any leg opens. Returns 0 or -1. */
int dp_media_set_pktio(struct dp_media *m, const struct dpk_pktio *io) __attribute__((weak));
/* One received datagram for the port opened with `value`. */
void dp_media_input(struct dp_media *m, uint32_t value, uint8_t *buf, size_t len,
                    const struct sockaddr_storage *from, socklen_t fromlen, uint64_t now_ms)
    __attribute__((weak));

#endif
