/* The DPDK backend: EAL, the data port, the kernel exception port, and a packet loop
 * run by every worker (docs/dpdk.md).
 *
 * DESIGN
 * The node runs the same workers as with sockets (dp_worker.c: its connections,
 * TLS, rings, timers, dp_media); this engine only changes where packets come from
 * and go to. dpk_engine_create() starts EAL from the configuration, brings up the
 * data port (one RX and TX queue per worker where the device has them) and the
 * exception port (TAP, or virtio-user where /dev/vhost-net exists) whose kernel
 * interface carries the node's address, so the kernel, and the existing socket
 * code on top of it, terminates TCP and TLS, answers ARP, ICMP and ND. It then
 * wraps the upper layer's dp_handler_t: each worker thread registers as an lcore
 * at start and, from its tick, polls its queues:
 *
 *   data port RX -> dpk_classify(): media -> owner worker (port partition),
 *                   SIP/UDP -> worker by source hash, the rest -> kernel;
 *                   another worker's packets cross over its MP/SC rte_ring;
 *   exception RX (what the kernel sends) -> data port TX.
 *
 * SIP over UDP is handed to the upper layer's message callback on the worker the
 * hash chose; answers leave through the worker's kernel UDP socket (exception path).
 * Media goes to the worker's dp_media through dpk_pktio.h when dp_media provides it,
 * else through the kernel to dp_media's sockets. Each worker's counters are its own
 * (relaxed atomics), read by the control thread. */
#ifndef DPK_ENGINE_H
#define DPK_ENGINE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "dp_conf.h"
#include "dp_worker.h"

struct dpk_engine;

/* Per-worker counters: written by that worker, read by anyone (relaxed). */
struct dpk_stats {
    _Atomic uint64_t rx_data;      /* frames polled from the data port */
    _Atomic uint64_t tx_data;      /* frames the data port took */
    _Atomic uint64_t rx_exception; /* frames the kernel sent (exception port RX) */
    _Atomic uint64_t tx_exception; /* frames handed to the kernel (exception port TX) */
    _Atomic uint64_t steered_out;  /* handed to another worker's ring */
    _Atomic uint64_t steered_in;   /* taken from this worker's ring */
    _Atomic uint64_t sip_udp;      /* SIP datagrams handed up */
    _Atomic uint64_t media_fast;   /* media datagrams handed to dp_media directly */
    _Atomic uint64_t media_tx;     /* media datagrams sent on the data port */
    _Atomic uint64_t media_kernel; /* media datagrams sent through the kernel */
    _Atomic uint64_t neigh_miss;   /* datagrams sent through the kernel: MAC unknown */
    _Atomic uint64_t drop_class;   /* malformed, looped back, not for our MAC */
    _Atomic uint64_t drop_ring;    /* a steering or relay ring was full */
    _Atomic uint64_t drop_tx;      /* a port did not take a frame */
};

/* Per-port counters (rte_eth_stats), read by the control thread. */
struct dpk_port_stats {
    uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};

/* Starts EAL and both ports and configures the kernel interface; wraps *h (the
 * upper layer's handler) in place so that dp_engine_create(conf, h, ...) runs the
 * workers on this engine. media_min/media_max: the media port range (partition base
 * media_min). Returns NULL with a reason that names the cause and the config field in
 * err: no device, device in use, not enough memory, missing capability, or a build
 * without DPDK. EAL can start once per process. */
struct dpk_engine *dpk_engine_create(const struct dp_conf *conf, const char *media_address,
                                     uint16_t media_min, uint16_t media_max, dp_handler_t *h,
                                     char *err, size_t errlen);

/* Stops the ports and EAL. Call after dp_engine_free() (no worker polls any more).
 * Accepts NULL. */
void dpk_engine_free(struct dpk_engine *e);

/* The worker's counters; NULL when out of range. */
const struct dpk_stats *dpk_engine_stats(const struct dpk_engine *e, unsigned worker);
/* Port counters: which = 0 the data port, 1 the exception port. Returns 0 or -1. */
int dpk_engine_port_stats(const struct dpk_engine *e, int which, struct dpk_port_stats *out);

/* Prometheus lines (confnode_dpdk_*) for /metrics into buf; returns the length
 * written (truncated to fit, always NUL-terminated). Control thread. */
size_t dpk_engine_metrics(const struct dpk_engine *e, char *buf, size_t cap);

/* Whether this build has the DPDK backend. */
int dpk_available(void);

#endif
