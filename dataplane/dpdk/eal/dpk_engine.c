/* The DPDK backend (see dpk_engine.h). Built only when pkg-config finds libdpdk. */
#include "dpk_engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "cn_log.h"
#include "cn_ports.h"
#include "dp_media.h"
#include "dpk_eal_args.h"
#include "dpk_neigh.h"
#include "dpk_pkt.h"
#include "dpk_pktio.h"

#define MAX_BURST 64
#define STEER_RING 4096
#define RELAY_RING 4096
#define IDLE_POLLS 256 /* empty polls before the adaptive loop sleeps */
#define NEIGH_TTL_MS 60000
#define MBUF_CACHE 256

/* One port and its queues. Queue q belongs to worker q; worker w >= nq transmits
 * through relay ring relay[w % ntxq], drained by that queue's worker. */
struct dpk_port {
    uint16_t id;
    bool up;
    unsigned nrxq, ntxq;
    struct rte_ring **relay; /* [ntxq], NULL when every worker has its own queue */
};

struct txbuf {
    unsigned n;
    struct rte_mbuf *m[MAX_BURST];
};

/* A worker's DPDK state. Owner: that worker's thread. */
struct __attribute__((aligned(64))) dpk_lcore {
    struct dpk_engine *e;
    unsigned id;
    void *inner; /* the upper layer's per-worker context */
    struct dp_worker *w;
    struct dp_media *media;
    bool media_fast;        /* dp_media sends and receives through dpk_pktio */
    bool registered;        /* rte_thread_register() succeeded */
    struct dpk_steer steer; /* a private copy */
    struct dpk_neigh *neigh;
    uint32_t *ports; /* media port - media_min -> value + 1; 0 = not open */
    uint8_t *port_tos;
    struct rte_mbuf *slot; /* tx_slot() handed out, not committed yet */
    struct txbuf tx_data, tx_exc;
    int raw4; /* raw UDP socket for neighbour misses */
    unsigned idle;
    uint64_t now;
    struct dpk_pktio pktio;
    struct dpk_stats st;
};

struct dpk_engine {
    const struct dp_conf *conf;
    dp_handler_t inner;
    unsigned n;
    uint16_t media_min, media_max;
    struct dpk_steer steer;
    struct rte_mempool *pool;
    struct dpk_port data, exc;
    struct rte_ring **steer_ring; /* [n]: to worker w, multi-producer, single consumer */
    struct dpk_lcore *lc;         /* [n] */
    unsigned burst;
    bool eal_up;
    char exc_name[32];
};

/* ---- counters ---- */
static inline void st_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* ---- transmit ---- */
static void port_flush(struct dpk_lcore *l, struct dpk_port *p, struct txbuf *b, bool data)
{
    if (b->n == 0)
        return;
    unsigned sent;
    if (l->id < p->ntxq) {
        sent = rte_eth_tx_burst(p->id, (uint16_t)l->id, b->m, (uint16_t)b->n);
        st_add(data ? &l->st.tx_data : &l->st.tx_exception, sent);
        if (sent < b->n)
            st_add(&l->st.drop_tx, b->n - sent);
    } else {
        sent = rte_ring_mp_enqueue_burst(p->relay[l->id % p->ntxq], (void **)b->m, b->n, NULL);
        if (sent < b->n)
            st_add(&l->st.drop_ring, b->n - sent);
    }
    for (unsigned i = sent; i < b->n; i++)
        rte_pktmbuf_free(b->m[i]);
    b->n = 0;
}

static void to_data(struct dpk_lcore *l, struct rte_mbuf *m)
{
    if (l->tx_data.n == MAX_BURST)
        port_flush(l, &l->e->data, &l->tx_data, true);
    l->tx_data.m[l->tx_data.n++] = m;
}

static void to_kernel(struct dpk_lcore *l, struct rte_mbuf *m)
{
    if (l->tx_exc.n == MAX_BURST)
        port_flush(l, &l->e->exc, &l->tx_exc, false);
    l->tx_exc.m[l->tx_exc.n++] = m;
}

/* Relayed frames of workers without a queue of their own on p. */
static unsigned relay_drain(struct dpk_lcore *l, struct dpk_port *p, bool data)
{
    if (!p->relay || l->id >= p->ntxq)
        return 0;
    struct rte_mbuf *m[MAX_BURST];
    unsigned n = rte_ring_sc_dequeue_burst(p->relay[l->id], (void **)m, MAX_BURST, NULL);
    if (n == 0)
        return 0;
    unsigned sent = rte_eth_tx_burst(p->id, (uint16_t)l->id, m, (uint16_t)n);
    st_add(data ? &l->st.tx_data : &l->st.tx_exception, sent);
    if (sent < n)
        st_add(&l->st.drop_tx, n - sent);
    for (unsigned i = sent; i < n; i++)
        rte_pktmbuf_free(m[i]);
    return n;
}

/* ---- packet I/O for dp_media (dpk_pktio.h) ---- */
static int pio_open(void *io, const char *addr, uint16_t port, uint32_t value, uint8_t tos)
{
    struct dpk_lcore *l = io;
    (void)addr;
    struct dpk_engine *e = l->e;
    if (port < e->media_min || port > e->media_max)
        return -EINVAL;
    if (cn_port_owner(port, e->media_min, e->n) != l->id)
        return -EXDEV;
    uint32_t *slot = &l->ports[port - e->media_min];
    if (*slot)
        return -EADDRINUSE;
    *slot = value + 1;
    l->port_tos[port - e->media_min] = tos;
    return 0;
}

static void pio_close(void *io, uint16_t port)
{
    struct dpk_lcore *l = io;
    if (port >= l->e->media_min && port <= l->e->media_max)
        l->ports[port - l->e->media_min] = 0;
}

static uint8_t *pio_tx_slot(void *io, size_t *cap)
{
    struct dpk_lcore *l = io;
    if (!l->slot) {
        l->slot = rte_pktmbuf_alloc(l->e->pool);
        if (!l->slot)
            return NULL;
        l->slot->data_off += DPK_UDP6_HEADROOM;
    }
    *cap = (size_t)(l->slot->buf_len - l->slot->data_off);
    return rte_pktmbuf_mtod(l->slot, uint8_t *);
}

/* A datagram whose next hop we do not know yet goes through the kernel, which
 * resolves it (ARP) and sends it out through the exception port. */
static int send_via_kernel(struct dpk_lcore *l, uint8_t *payload, size_t len,
                           const struct dpk_udp_addrs *a)
{
    st_add(&l->st.neigh_miss, 1);
    if (a->family != 4 || l->raw4 < 0)
        return -1;
    uint8_t *udp = payload - DPK_UDP_LEN;
    size_t ulen = len + DPK_UDP_LEN;
    udp[0] = (uint8_t)(a->src_port >> 8);
    udp[1] = (uint8_t)a->src_port;
    udp[2] = (uint8_t)(a->dst_port >> 8);
    udp[3] = (uint8_t)a->dst_port;
    udp[4] = (uint8_t)(ulen >> 8);
    udp[5] = (uint8_t)ulen;
    udp[6] = udp[7] = 0;
    uint8_t pseudo[12] = {0};
    memcpy(pseudo, a->src_ip, 4);
    memcpy(pseudo + 4, a->dst_ip, 4);
    pseudo[9] = 17;
    pseudo[10] = (uint8_t)(ulen >> 8);
    pseudo[11] = (uint8_t)ulen;
    uint16_t c = dpk_csum_fold(dpk_csum_add(dpk_csum_add(0, pseudo, 12), udp, ulen));
    c = c ? c : 0xffff;
    udp[6] = (uint8_t)(c >> 8);
    udp[7] = (uint8_t)c;
    struct sockaddr_in to = {.sin_family = AF_INET};
    memcpy(&to.sin_addr, a->dst_ip, 4);
    ssize_t r = sendto(l->raw4, udp, ulen, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
    if (r < 0)
        return -1;
    st_add(&l->st.media_kernel, 1);
    return 0;
}

static int pio_tx_commit(void *io, uint16_t port, const struct sockaddr_storage *to,
                         socklen_t tolen, size_t len)
{
    struct dpk_lcore *l = io;
    struct rte_mbuf *m = l->slot;
    l->slot = NULL;
    if (!m)
        return -1;
    struct dpk_udp_addrs a = {.src_port = port};
    memcpy(a.src_mac, l->steer.mac, 6);
    if (to->ss_family == AF_INET && tolen >= sizeof(struct sockaddr_in) && l->steer.has_ip4) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)to;
        a.family = 4;
        memcpy(a.src_ip, l->steer.ip4, 4);
        memcpy(a.dst_ip, &s4->sin_addr, 4);
        a.dst_port = ntohs(s4->sin_port);
    } else if (to->ss_family == AF_INET6 && tolen >= sizeof(struct sockaddr_in6) &&
               l->steer.has_ip6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)to;
        a.family = 6;
        memcpy(a.src_ip, l->steer.ip6, 16);
        memcpy(a.dst_ip, &s6->sin6_addr, 16);
        a.dst_port = ntohs(s6->sin6_port);
    } else {
        rte_pktmbuf_free(m);
        st_add(&l->st.drop_tx, 1);
        return -1;
    }
    if (port >= l->e->media_min && port <= l->e->media_max)
        a.tos = l->port_tos[port - l->e->media_min];
    uint8_t *payload = rte_pktmbuf_mtod(m, uint8_t *);
    if (!dpk_neigh_lookup(l->neigh, a.family, a.dst_ip, l->now, a.dst_mac)) {
        int r = send_via_kernel(l, payload, len, &a);
        rte_pktmbuf_free(m);
        if (r != 0)
            st_add(&l->st.drop_tx, 1);
        return r;
    }
    size_t hdr = a.family == 4 ? DPK_UDP4_HEADROOM : DPK_UDP6_HEADROOM;
    m->data_len = (uint16_t)len;
    m->pkt_len = (uint32_t)len;
    uint8_t *frame = (uint8_t *)rte_pktmbuf_prepend(m, (uint16_t)hdr);
    if (!frame || dpk_udp_headers(frame, &a, len, true) < 0) {
        rte_pktmbuf_free(m);
        st_add(&l->st.drop_tx, 1);
        return -1;
    }
    st_add(&l->st.media_tx, 1);
    to_data(l, m);
    return 0;
}

static void pio_tx_flush(void *io)
{
    struct dpk_lcore *l = io;
    port_flush(l, &l->e->data, &l->tx_data, true);
}

/* ---- receive ---- */
static void peer_of(const struct dpk_pkt_info *in, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (in->family == 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(in->src_port);
        memcpy(&s4->sin_addr, in->src_ip, 4);
        *len = sizeof *s4;
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(in->src_port);
        memcpy(&s6->sin6_addr, in->src_ip, 16);
        *len = sizeof *s6;
    }
}

/* A datagram this worker owns. Consumes m. */
static void deliver(struct dpk_lcore *l, struct rte_mbuf *m, dpk_class_t cls,
                    const struct dpk_pkt_info *in)
{
    uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);
    dpk_neigh_learn(l->neigh, in->family, in->src_ip, in->src_mac, l->now);
    struct sockaddr_storage from;
    socklen_t fromlen;
    if (cls == DPK_CLASS_SIP) {
        cn_peer_t peer = {.transport = CN_TRANSPORT_UDP, .worker = (uint16_t)l->id};
        peer_of(in, &peer.addr, &peer.addrlen);
        st_add(&l->st.sip_udp, 1);
        const char *p = (const char *)frame + in->payload_off;
        size_t n = in->payload_len;
        /* keep-alive CRLFs carry no message, as on the sockets backend */
        if (n > 4 || strspn(p, "\r\n") < n)
            l->e->inner.message(l->inner, p, n, &peer, l->now);
        rte_pktmbuf_free(m);
        return;
    }
    uint32_t value = l->media_fast ? l->ports[in->dst_port - l->e->media_min] : 0;
    if (!value) { /* not a media port this worker has open: the kernel's (DNS, ...) */
        to_kernel(l, m);
        return;
    }
    peer_of(in, &from, &fromlen);
    st_add(&l->st.media_fast, 1);
    dp_media_input(l->media, value - 1, frame + in->payload_off, in->payload_len, &from, fromlen,
                   l->now);
    rte_pktmbuf_free(m);
}

static void rx_data(struct dpk_lcore *l, struct rte_mbuf **pk, unsigned n)
{
    struct dpk_engine *e = l->e;
    st_add(&l->st.rx_data, n);
    for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = pk[i];
        struct dpk_pkt_info in;
        unsigned w;
        if (m->nb_segs != 1) { /* chained (jumbo) frames: the kernel's */
            to_kernel(l, m);
            continue;
        }
        dpk_class_t cls = dpk_classify(&l->steer, rte_pktmbuf_mtod(m, const uint8_t *),
                                       rte_pktmbuf_data_len(m), &in, &w);
        switch (cls) {
        case DPK_CLASS_DROP:
            st_add(&l->st.drop_class, 1);
            rte_pktmbuf_free(m);
            break;
        case DPK_CLASS_KERNEL:
            to_kernel(l, m);
            break;
        default:
            if (w == l->id) {
                deliver(l, m, cls, &in);
            } else if (rte_ring_mp_enqueue(e->steer_ring[w], m) == 0) {
                st_add(&l->st.steered_out, 1);
            } else {
                st_add(&l->st.drop_ring, 1);
                rte_pktmbuf_free(m);
            }
            break;
        }
    }
}

/* Frames another worker steered here: classified again (cheap, and no per-mbuf
 * metadata to agree on). */
static void rx_steered(struct dpk_lcore *l, struct rte_mbuf **pk, unsigned n)
{
    st_add(&l->st.steered_in, n);
    for (unsigned i = 0; i < n; i++) {
        struct dpk_pkt_info in;
        unsigned w;
        dpk_class_t cls = dpk_classify(&l->steer, rte_pktmbuf_mtod(pk[i], const uint8_t *),
                                       rte_pktmbuf_data_len(pk[i]), &in, &w);
        if (cls == DPK_CLASS_MEDIA || cls == DPK_CLASS_SIP)
            deliver(l, pk[i], cls, &in);
        else
            to_kernel(l, pk[i]);
    }
}

/* What the kernel sends goes out on the data port. Its ARP-resolved destination
 * MACs are learned on the way, so our own first datagram to a peer the kernel has
 * already talked to (SIP answers) needs no detour. */
static void rx_kernel(struct dpk_lcore *l, struct rte_mbuf **pk, unsigned n)
{
    st_add(&l->st.rx_exception, n);
    for (unsigned i = 0; i < n; i++) {
        const uint8_t *f = rte_pktmbuf_mtod(pk[i], const uint8_t *);
        if (rte_pktmbuf_data_len(pk[i]) >= DPK_ETH_LEN + DPK_IP4_LEN && !(f[0] & 1) &&
            f[12] == 0x08 && f[13] == 0x00)
            dpk_neigh_learn(l->neigh, 4, f + DPK_ETH_LEN + 16, f, l->now);
        to_data(l, pk[i]);
    }
}

static unsigned poll_once(struct dpk_lcore *l)
{
    struct dpk_engine *e = l->e;
    struct rte_mbuf *pk[MAX_BURST];
    unsigned work = 0, n;
    if (l->id < e->data.nrxq &&
        (n = rte_eth_rx_burst(e->data.id, (uint16_t)l->id, pk, (uint16_t)e->burst)) > 0) {
        rx_data(l, pk, n);
        work += n;
    }
    if ((n = rte_ring_sc_dequeue_burst(e->steer_ring[l->id], (void **)pk, e->burst, NULL)) > 0) {
        rx_steered(l, pk, n);
        work += n;
    }
    if (l->id < e->exc.nrxq &&
        (n = rte_eth_rx_burst(e->exc.id, (uint16_t)l->id, pk, (uint16_t)e->burst)) > 0) {
        rx_kernel(l, pk, n);
        work += n;
    }
    work += relay_drain(l, &e->data, true);
    work += relay_drain(l, &e->exc, false);
    port_flush(l, &e->data, &l->tx_data, true);
    port_flush(l, &e->exc, &l->tx_exc, false);
    return work;
}

/* ---- the wrapped handler: runs in the worker threads ---- */
static void *w_start(struct dp_worker *w, void *arg)
{
    struct dpk_engine *e = arg;
    struct dpk_lcore *l = &e->lc[dp_worker_id(w)];
    l->w = w;
    l->now = 0;
    l->registered = rte_thread_register() == 0;
    if (!l->registered)
        cn_log(CN_LOG_WARN, "dpdk_lcore",
               "worker=%u reason=\"rte_thread_register: %s\" "
               "effect=\"no mbuf cache for this worker\"",
               l->id, rte_strerror(rte_errno));
    l->inner = e->inner.start ? e->inner.start(w, e->inner.arg) : NULL;
    l->media = dp_worker_media(w);
    if (dp_media_set_pktio && dp_media_input && l->media &&
        dp_media_set_pktio(l->media, &l->pktio) == 0)
        l->media_fast = true;
    cn_log(CN_LOG_INFO, "dpdk_worker", "worker=%u lcore=%d rx_queue=%s media=%s", l->id,
           (int)rte_lcore_id(), l->id < e->data.nrxq ? "own" : "steered",
           l->media_fast ? "fast-path" : "kernel");
    return l;
}

static void w_message(void *ctx, const char *buf, size_t len, const cn_peer_t *from, uint64_t now)
{
    struct dpk_lcore *l = ctx;
    l->e->inner.message(l->inner, buf, len, from, now);
}

static void w_bad_frame(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                        const char *why, uint64_t now)
{
    struct dpk_lcore *l = ctx;
    if (l->e->inner.bad_frame)
        l->e->inner.bad_frame(l->inner, buf, len, from, why, now);
}

static int64_t w_tick(void *ctx, uint64_t now)
{
    struct dpk_lcore *l = ctx;
    l->now = now;
    unsigned work = poll_once(l);
    int64_t next = l->e->inner.tick ? l->e->inner.tick(l->inner, now) : -1;
    if (work || l->e->conf->dpdk.poll == DPK_POLL_BUSY) {
        l->idle = 0;
        return 0;
    }
    if (++l->idle < IDLE_POLLS)
        return 0;
    return next >= 0 && next < 1 ? next : 1; /* idle: the epoll wait sleeps up to 1 ms */
}

static void w_post(void *ctx, void *msg, uint64_t now)
{
    struct dpk_lcore *l = ctx;
    l->e->inner.post(l->inner, msg, now);
}

static void w_conn_event(void *ctx, const cn_peer_t *peer, dp_conn_event_t ev, const char *reason,
                         uint64_t now)
{
    struct dpk_lcore *l = ctx;
    if (l->e->inner.conn_event)
        l->e->inner.conn_event(l->inner, peer, ev, reason, now);
}

static void w_stop(void *ctx)
{
    struct dpk_lcore *l = ctx;
    if (l->e->inner.stop)
        l->e->inner.stop(l->inner);
    l->inner = NULL;
    if (l->slot) {
        rte_pktmbuf_free(l->slot);
        l->slot = NULL;
    }
    port_flush(l, &l->e->data, &l->tx_data, true);
    port_flush(l, &l->e->exc, &l->tx_exc, false);
    if (l->registered)
        rte_thread_unregister();
}

/* ---- start-up ---- */
static long huge_free_mb(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return 0;
    char line[128];
    long free_pages = 0, size_kb = 0;
    while (fgets(line, sizeof line, f)) {
        sscanf(line, "HugePages_Free: %ld", &free_pages);
        sscanf(line, "Hugepagesize: %ld kB", &size_kb);
    }
    fclose(f);
    return free_pages * size_kb / 1024;
}

/* The interface named by iface= in a vdev spec, or "" */
static void vdev_iface(const char *spec, char *out, size_t cap)
{
    out[0] = 0;
    const char *p = strstr(spec, "iface=");
    if (p)
        snprintf(out, cap, "%.*s", (int)strcspn(p + 6, ","), p + 6);
}

static int eal_start(struct dpk_engine *e, const struct dpk_eal_args *a, char *err, size_t errlen)
{
    char *argv[DPK_EAL_MAX_ARGS + 1];
    memcpy(argv, a->argv, sizeof argv);
    /* EAL pins the calling thread to its main lcore: keep the control thread's CPUs,
     * which the workers inherit before pinning themselves */
    cpu_set_t saved;
    int have_saved = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
    int rc = rte_eal_init(a->argc, argv);
    if (have_saved)
        pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
    if (rc < 0) {
        int en = rte_errno;
        const char *why = en == ENOMEM     ? "not enough memory (dpdk.memory_mb, dpdk.hugepages)"
                          : en == EACCES   ? "permission denied (DPDK needs root or CAP_SYS_ADMIN, "
                                             "CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK)"
                          : en == EALREADY ? "EAL already started in this process"
                          : en == EBUSY    ? "device in use: another DPDK process holds it or "
                                             "the same dpdk.file_prefix"
                                           : "see the EAL lines above (dpdk.eal_args, dpdk.lcores)";
        snprintf(err, errlen, "dpdk: EAL did not start: %s: %s", rte_strerror(en), why);
        return -1;
    }
    e->eal_up = true;
    return 0;
}

static int find_port(const char *name, uint16_t *id)
{
    return rte_eth_dev_get_port_by_name(name, id);
}

static int port_setup(struct dpk_engine *e, struct dpk_port *p, const char *field, char *err,
                      size_t errlen)
{
    struct rte_eth_dev_info info;
    int rc = rte_eth_dev_info_get(p->id, &info);
    if (rc != 0) {
        snprintf(err, errlen, "%s: no device: port %u: %s", field, p->id, rte_strerror(-rc));
        return -1;
    }
    p->nrxq = e->n < info.max_rx_queues ? e->n : info.max_rx_queues;
    p->ntxq = e->n < info.max_tx_queues ? e->n : info.max_tx_queues;
    if (p->nrxq == 0 || p->ntxq == 0) {
        snprintf(err, errlen, "%s: missing capability: device %s has no RX or TX queue", field,
                 info.driver_name);
        return -1;
    }
    struct rte_eth_conf pc;
    memset(&pc, 0, sizeof pc);
    if (p->nrxq > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_UDP)) {
        pc.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        pc.rx_adv_conf.rss_conf.rss_hf =
            info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP);
    }
    rc = rte_eth_dev_configure(p->id, (uint16_t)p->nrxq, (uint16_t)p->ntxq, &pc);
    if (rc != 0) {
        snprintf(err, errlen, "%s: missing capability: %s refused %u RX / %u TX queues: %s", field,
                 info.driver_name, p->nrxq, p->ntxq, rte_strerror(-rc));
        return -1;
    }
    uint16_t rxd = (uint16_t)e->conf->dpdk.rx_desc, txd = (uint16_t)e->conf->dpdk.tx_desc;
    rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &rxd, &txd);
    int sock = rte_eth_dev_socket_id(p->id);
    for (unsigned q = 0; q < p->nrxq; q++)
        if ((rc = rte_eth_rx_queue_setup(p->id, (uint16_t)q, rxd, (unsigned)sock, NULL, e->pool)) !=
            0) {
            snprintf(err, errlen,
                     "%s: RX queue %u: %s (not enough memory? dpdk.mbufs, "
                     "dpdk.rx_desc)",
                     field, q, rte_strerror(-rc));
            return -1;
        }
    for (unsigned q = 0; q < p->ntxq; q++)
        if ((rc = rte_eth_tx_queue_setup(p->id, (uint16_t)q, txd, (unsigned)sock, NULL)) != 0) {
            snprintf(err, errlen, "%s: TX queue %u: %s", field, q, rte_strerror(-rc));
            return -1;
        }
    if (p->ntxq < e->n) {
        p->relay = calloc(p->ntxq, sizeof *p->relay);
        if (!p->relay) {
            snprintf(err, errlen, "%s: out of memory", field);
            return -1;
        }
        for (unsigned q = 0; q < p->ntxq; q++) {
            char name[RTE_RING_NAMESIZE];
            snprintf(name, sizeof name, "cn_relay_%u_%u", p->id, q);
            p->relay[q] = rte_ring_create(name, RELAY_RING, sock, RING_F_SC_DEQ);
            if (!p->relay[q]) {
                snprintf(err, errlen, "%s: relay ring: %s (not enough memory: dpdk.memory_mb)",
                         field, rte_strerror(rte_errno));
                return -1;
            }
        }
    }
    return 0;
}

static int port_start(struct dpk_port *p, const char *field, char *err, size_t errlen)
{
    int rc = rte_eth_dev_start(p->id);
    if (rc != 0) {
        snprintf(err, errlen, "%s: device in use or not ready: start failed: %s", field,
                 rte_strerror(-rc));
        return -1;
    }
    p->up = true;
    return 0;
}

/* The node's address on the kernel side of the exception path. */
static int kernel_iface_setup(const struct dp_conf *c, char *err, size_t errlen)
{
    const struct dpk_conf *d = &c->dpdk;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "dpdk.kernel_iface: socket: %s", strerror(errno));
        return -1;
    }
    int rc = -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", d->kernel_iface);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, c->listen, &sin->sin_addr) != 1) {
        snprintf(err, errlen,
                 "sip.listen: missing capability: the DPDK backend takes an IPv4 "
                 "address here (got %s)",
                 c->listen);
        goto out;
    }
    if (ioctl(fd, SIOCSIFADDR, &ifr) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "dpdk.kernel_iface: %s: setting %s: %s", d->kernel_iface, c->listen,
                 strerror(errno));
        goto out;
    }
    uint32_t mask = d->prefix_len ? htonl(~0u << (32 - d->prefix_len)) : 0;
    memcpy(&sin->sin_addr, &mask, 4);
    if (ioctl(fd, SIOCSIFNETMASK, &ifr) != 0) {
        snprintf(err, errlen, "dpdk.prefix_len: %s: %s", d->kernel_iface, strerror(errno));
        goto out;
    }
    if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    if (d->gateway[0]) {
        struct rtentry rt;
        memset(&rt, 0, sizeof rt);
        struct sockaddr_in *gw = (struct sockaddr_in *)&rt.rt_gateway;
        gw->sin_family = AF_INET;
        ((struct sockaddr_in *)&rt.rt_dst)->sin_family = AF_INET;
        ((struct sockaddr_in *)&rt.rt_genmask)->sin_family = AF_INET;
        rt.rt_flags = RTF_UP | RTF_GATEWAY;
        rt.rt_dev = (char *)d->kernel_iface;
        if (inet_pton(AF_INET, d->gateway, &gw->sin_addr) != 1 ||
            (ioctl(fd, SIOCADDRT, &rt) != 0 && errno != EEXIST)) {
            snprintf(err, errlen, "dpdk.gateway: default route via %s: %s", d->gateway,
                     strerror(errno));
            goto out;
        }
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

static void engine_fini(struct dpk_engine *e)
{
    struct dpk_port *ports[2] = {&e->data, &e->exc};
    for (int i = 0; i < 2; i++) {
        struct dpk_port *p = ports[i];
        if (p->up) {
            rte_eth_dev_stop(p->id);
            p->up = false;
        }
        if (p->relay) {
            for (unsigned q = 0; q < p->ntxq; q++) {
                void *m;
                while (p->relay[q] && rte_ring_dequeue(p->relay[q], &m) == 0)
                    rte_pktmbuf_free(m);
                rte_ring_free(p->relay[q]);
            }
            free(p->relay);
            p->relay = NULL;
        }
    }
    if (e->steer_ring) {
        for (unsigned w = 0; w < e->n; w++) {
            void *m;
            while (e->steer_ring[w] && rte_ring_dequeue(e->steer_ring[w], &m) == 0)
                rte_pktmbuf_free(m);
            rte_ring_free(e->steer_ring[w]);
        }
        free(e->steer_ring);
    }
    if (e->lc) {
        for (unsigned w = 0; w < e->n; w++) {
            free(e->lc[w].neigh);
            free(e->lc[w].ports);
            free(e->lc[w].port_tos);
            if (e->lc[w].raw4 >= 0)
                close(e->lc[w].raw4);
        }
        free(e->lc);
    }
    if (e->eal_up) {
        uint16_t pid;
        RTE_ETH_FOREACH_DEV(pid)
        rte_eth_dev_close(pid);
        rte_mempool_free(e->pool);
        rte_eal_cleanup();
    }
    free(e);
}

struct dpk_engine *dpk_engine_create(const struct dp_conf *conf, const char *media_address,
                                     uint16_t media_min, uint16_t media_max, dp_handler_t *h,
                                     char *err, size_t errlen)
{
    const struct dpk_conf *d = &conf->dpdk;
    struct dpk_eal_args a;
    char prefix[96], ifname[IF_NAMESIZE + 8];
    if (strcmp(media_address, conf->listen) != 0) {
        snprintf(err, errlen,
                 "media.address: must be sip.listen (%s) with dataplane = 'dpdk': "
                 "the node has one address, on dpdk.kernel_iface",
                 conf->listen);
        return NULL;
    }
    snprintf(prefix, sizeof prefix, "confnode-%d", (int)getpid());
    struct stat sb;
    if (dpk_eal_args_build(d, "confnode", prefix, huge_free_mb(), stat("/dev/vhost-net", &sb) == 0,
                           &a, err, errlen) != 0)
        return NULL;
    /* causes EAL would report vaguely */
    vdev_iface(d->device, ifname, sizeof ifname);
    if (!a.pci && ifname[0] && if_nametoindex(ifname) == 0) {
        snprintf(err, errlen, "dpdk.device: no device: interface %s (in '%s') does not exist",
                 ifname, d->device);
        return NULL;
    }
    if (if_nametoindex(d->kernel_iface) != 0) {
        snprintf(err, errlen,
                 "dpdk.kernel_iface: device in use: a kernel interface named %s "
                 "already exists (another node, or a leftover: ip link del %s)",
                 d->kernel_iface, d->kernel_iface);
        return NULL;
    }
    if (a.exception == DPK_EXC_TAP && stat("/dev/net/tun", &sb) != 0) {
        snprintf(err, errlen,
                 "dpdk.exception: missing capability: the TAP exception path needs "
                 "/dev/net/tun");
        return NULL;
    }

    struct dpk_engine *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->conf = conf;
    e->inner = *h;
    e->n = conf->workers;
    e->media_min = media_min;
    e->media_max = media_max;
    e->burst = d->burst > MAX_BURST ? MAX_BURST : d->burst ? d->burst : 32;
    snprintf(e->exc_name, sizeof e->exc_name, "%s", a.exc_name);
    if (eal_start(e, &a, err, errlen) != 0)
        goto fail;
    cn_log(CN_LOG_INFO, "dpdk_eal", "memory=%s mb=%u exception=%s device=\"%s\"",
           a.no_huge ? "no-huge" : "hugepages", d->memory_mb,
           a.exception == DPK_EXC_TAP ? "tap" : "virtio-user", d->device);
    if (find_port(a.data_name, &e->data.id) != 0) {
        snprintf(err, errlen, "dpdk.device: no device: %s was not probed (%s)", a.data_name,
                 a.pci ? "not bound to vfio-pci/uio_pci_generic, or in use by a kernel driver"
                       : "unknown driver or bad arguments: see the EAL lines above");
        goto fail;
    }
    if (find_port(a.exc_name, &e->exc.id) != 0) {
        snprintf(err, errlen,
                 "dpdk.exception: the %s exception port could not be created "
                 "(dpdk.kernel_iface = %s)",
                 a.exception == DPK_EXC_TAP ? "TAP" : "virtio-user", d->kernel_iface);
        goto fail;
    }
    e->pool = rte_pktmbuf_pool_create("cn_mbufs", d->mbufs, MBUF_CACHE, 0,
                                      RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
    if (!e->pool) {
        snprintf(err, errlen,
                 "dpdk.mbufs: not enough memory for %u mbufs (~%u MB) in "
                 "dpdk.memory_mb = %u: %s",
                 d->mbufs, (unsigned)((uint64_t)d->mbufs * (RTE_MBUF_DEFAULT_BUF_SIZE + 192) >> 20),
                 d->memory_mb, rte_strerror(rte_errno));
        goto fail;
    }
    if (port_setup(e, &e->data, "dpdk.device", err, errlen) != 0 ||
        port_setup(e, &e->exc, "dpdk.exception", err, errlen) != 0)
        goto fail;
    /* the kernel interface speaks with the data port's MAC, so ARP answers and
     * everything the kernel sends carry the address peers reach us at */
    struct rte_ether_addr mac;
    if (rte_eth_macaddr_get(e->data.id, &mac) != 0 ||
        rte_eth_dev_default_mac_addr_set(e->exc.id, &mac) != 0) {
        snprintf(err, errlen,
                 "dpdk.exception: missing capability: cannot give %s the data "
                 "port's MAC",
                 d->kernel_iface);
        goto fail;
    }
    if (port_start(&e->data, "dpdk.device", err, errlen) != 0 ||
        port_start(&e->exc, "dpdk.exception", err, errlen) != 0)
        goto fail;
    if (kernel_iface_setup(conf, err, errlen) != 0)
        goto fail;

    memcpy(e->steer.mac, mac.addr_bytes, 6);
    e->steer.has_ip4 = inet_pton(AF_INET, conf->listen, e->steer.ip4) == 1;
    e->steer.sip_port = conf->udp_port;
    e->steer.media_min = media_min;
    e->steer.media_max = media_max;
    e->steer.workers = e->n;
    e->steer_ring = calloc(e->n, sizeof *e->steer_ring);
    e->lc = aligned_alloc(64, sizeof *e->lc * e->n);
    if (!e->steer_ring || !e->lc) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memset(e->lc, 0, sizeof *e->lc * e->n);
    for (unsigned w = 0; w < e->n; w++)
        e->lc[w].raw4 = -1;
    size_t nports = (size_t)media_max - media_min + 1;
    for (unsigned w = 0; w < e->n; w++) {
        char name[RTE_RING_NAMESIZE];
        snprintf(name, sizeof name, "cn_steer_%u", w);
        e->steer_ring[w] = rte_ring_create(name, STEER_RING, (int)rte_socket_id(), RING_F_SC_DEQ);
        struct dpk_lcore *l = &e->lc[w];
        l->e = e;
        l->id = w;
        l->steer = e->steer;
        l->neigh = malloc(sizeof *l->neigh);
        l->ports = calloc(nports, sizeof *l->ports);
        l->port_tos = calloc(nports, 1);
        l->raw4 = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
        if (!e->steer_ring[w] || !l->neigh || !l->ports || !l->port_tos) {
            snprintf(err, errlen, "not enough memory for worker %u (dpdk.memory_mb)", w);
            goto fail;
        }
        dpk_neigh_init(l->neigh, NEIGH_TTL_MS);
        l->pktio = (struct dpk_pktio){.io = l,
                                      .open = pio_open,
                                      .close = pio_close,
                                      .tx_slot = pio_tx_slot,
                                      .tx_commit = pio_tx_commit,
                                      .tx_flush = pio_tx_flush};
    }
    cn_log(CN_LOG_INFO, "dpdk_ports",
           "data=%s rxq=%u txq=%u exception=%s kernel_iface=%s rxq=%u txq=%u "
           "mac=%02x:%02x:%02x:%02x:%02x:%02x address=%s/%u",
           a.data_name, e->data.nrxq, e->data.ntxq, a.exc_name, d->kernel_iface, e->exc.nrxq,
           e->exc.ntxq, mac.addr_bytes[0], mac.addr_bytes[1], mac.addr_bytes[2], mac.addr_bytes[3],
           mac.addr_bytes[4], mac.addr_bytes[5], conf->listen, d->prefix_len);

    *h = (dp_handler_t){.start = w_start,
                        .message = w_message,
                        .bad_frame = w_bad_frame,
                        .tick = w_tick,
                        .post = w_post,
                        .post_free = e->inner.post_free,
                        .conn_event = w_conn_event,
                        .stop = w_stop,
                        .arg = e};
    return e;
fail:
    engine_fini(e);
    return NULL;
}

void dpk_engine_free(struct dpk_engine *e)
{
    if (e)
        engine_fini(e);
}

const struct dpk_stats *dpk_engine_stats(const struct dpk_engine *e, unsigned worker)
{
    return e && worker < e->n ? &e->lc[worker].st : NULL;
}

int dpk_engine_port_stats(const struct dpk_engine *e, int which, struct dpk_port_stats *out)
{
    struct rte_eth_stats s;
    if (!e || (which != 0 && which != 1) ||
        rte_eth_stats_get(which == 0 ? e->data.id : e->exc.id, &s) != 0)
        return -1;
    *out = (struct dpk_port_stats){.ipackets = s.ipackets,
                                   .opackets = s.opackets,
                                   .ibytes = s.ibytes,
                                   .obytes = s.obytes,
                                   .imissed = s.imissed,
                                   .ierrors = s.ierrors,
                                   .oerrors = s.oerrors,
                                   .rx_nombuf = s.rx_nombuf};
    return 0;
}

int dpk_available(void)
{
    return 1;
}
