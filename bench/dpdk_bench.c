/* Packets per second on one core, DPDK fast path against its references:
 *
 *   (a) dpdk-testpmd, io forwarding on net_null (the I/O limit of this machine);
 *       (a2) the same on a net_ring loop, for reference: it moves pointers only;
 *   (b) our loop, rx_burst -> tx_burst on net_null (same vdev, no work), (b2) on net_ring;
 *   (c) plain RTP forwarding on the DPDK path: rx_burst, dpk_classify (port
 *       partition), leg lookup, RTP rewrite (SSRC, sequence), Ethernet/IPv4/UDP
 *       headers with checksums (dpk_udp_headers), tx_burst; (c0) without the IPv4
 *       UDP checksum (what TX checksum offload on a NIC leaves); (c1) with 1024
 *       frames in flight instead of 128 (packet data no longer in the cache);
 *   (d) SRTP relaying on the DPDK path: as (c) with md_srtp_unprotect of the
 *       incoming leg and md_srtp_protect for the outgoing one (the media library's
 *       libsrtp2 path, AES_CM_128_HMAC_SHA1_80, 160-byte payload);
 *   (e) the raw libsrtp2 loop: unprotect + rewrite + protect on one buffer, no I/O;
 *   (f) the sockets backend on the workload of (c): recvmmsg / rewrite / sendmmsg
 *       batches of 32 on a loopback UDP socket (kernel included, one thread).
 *
 * (c) and (d) run on a net_ring port whose TX ring is its RX ring, primed with 1024
 * RTP frames (128 in flight; 1024 for (c1)): every frame sent comes back as the next input, so the
 * generator costs nothing and the kernel is out of the measurement. No hugepages (--no-huge); EAL
 * runs on one lcore, CPU `cpu` (default 1); testpmd forwards on the same CPU.
 *
 *   dpdk_bench [seconds per figure] [cpu] [only]   (default 2 s, best of the 1 s slices)
 *
 * `only` = c or d runs that figure alone (for a profiler: perf record -- dpdk_bench 5 1 c).
 *
 * Prints one line per figure and the ratios against the goals: (c)/(a) >= 0.5,
 * (d)/(e) >= 0.8, (c)/(f) >= 3. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "dpk_pkt.h"
#include "md_sdes.h"
#include "md_srtp.h"

#define BURST 32
#define PRIME 1024 /* frames in flight, at most */
#define WARM 128   /* frames in flight for the cache-warm figures */
#define PAYLOAD 160
#define RTP_HDR 12
#define PORT_MIN 40000
#define N_LEGS 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const uint8_t our_mac[6] = {0x02, 0, 0, 0, 0, 0x01};
static const uint8_t peer_mac[6] = {0x02, 0, 0, 0, 0, 0x02};

struct leg {
    uint32_t ssrc;
    uint16_t seq;
    struct md_srtp *in, *out;
};

struct relay {
    struct dpk_steer steer;
    struct leg legs[N_LEGS];
    struct dpk_udp_addrs addrs;
    bool srtp;
    bool udp_csum; /* IPv4: fill in the UDP checksum (always, on the product path) */
    uint64_t dropped;
};

static void rtp_rewrite(uint8_t *rtp, struct leg *l)
{
    uint16_t seq = l->seq++;
    rtp[2] = (uint8_t)(seq >> 8);
    rtp[3] = (uint8_t)seq;
    rtp[8] = (uint8_t)(l->ssrc >> 24);
    rtp[9] = (uint8_t)(l->ssrc >> 16);
    rtp[10] = (uint8_t)(l->ssrc >> 8);
    rtp[11] = (uint8_t)l->ssrc;
}

/* One datagram through the fast path; false when it was dropped. */
static bool relay_one(struct relay *r, uint8_t *frame, size_t len, size_t cap, uint16_t *out_len)
{
    struct dpk_pkt_info in;
    unsigned w;
    if (dpk_classify(&r->steer, frame, len, &in, &w) != DPK_CLASS_MEDIA)
        return false;
    struct leg *l = &r->legs[((in.dst_port - PORT_MIN) / 2) % N_LEGS];
    uint8_t *p = frame + in.payload_off;
    size_t plen = in.payload_len;
    if (r->srtp && md_srtp_unprotect(l->in, p, &plen) != MD_OK)
        return false;
    if (plen < RTP_HDR)
        return false;
    rtp_rewrite(p, l);
    if (r->srtp && md_srtp_protect(l->out, p, &plen, cap - in.payload_off) != MD_OK)
        return false;
    struct dpk_udp_addrs a = r->addrs; /* back to us: the ring feeds it in again */
    a.dst_port = in.dst_port;
    a.src_port = in.src_port;
    int n = dpk_udp_headers(frame, &a, plen, r->udp_csum);
    if (n < 0)
        return false;
    *out_len = (uint16_t)n;
    return true;
}

static void relay_init(struct relay *r, bool srtp, const struct md_crypto *key)
{
    memset(r, 0, sizeof *r);
    r->srtp = srtp;
    r->udp_csum = true;
    r->steer = (struct dpk_steer){.has_ip4 = true,
                                  .sip_port = 5060,
                                  .media_min = PORT_MIN,
                                  .media_max = PORT_MIN + 999,
                                  .workers = 1};
    memcpy(r->steer.mac, our_mac, 6);
    inet_pton(AF_INET, "198.18.77.1", r->steer.ip4);
    r->addrs = (struct dpk_udp_addrs){.family = 4};
    memcpy(r->addrs.src_mac, peer_mac, 6);
    memcpy(r->addrs.dst_mac, our_mac, 6);
    inet_pton(AF_INET, "198.18.77.2", r->addrs.src_ip);
    inet_pton(AF_INET, "198.18.77.1", r->addrs.dst_ip);
    for (int i = 0; i < N_LEGS; i++) {
        r->legs[i].ssrc = 0x1000u + (uint32_t)i;
        r->legs[i].seq = PRIME; /* the primed packets used 0..PRIME-1 */
        if (srtp && (md_srtp_create(&r->legs[i].in, key, MD_SRTP_INBOUND) != MD_OK ||
                     md_srtp_create(&r->legs[i].out, key, MD_SRTP_OUTBOUND) != MD_OK)) {
            fprintf(stderr, "md_srtp_create failed\n");
            exit(1);
        }
    }
}

/* A primed frame for packet i: RTP to leg i % N_LEGS, protected with `prot` when set. */
static size_t make_frame(uint8_t *f, unsigned i, struct md_srtp **prot)
{
    uint8_t *rtp = f + DPK_UDP4_HEADROOM;
    unsigned leg = i % N_LEGS;
    memset(rtp, 0, RTP_HDR + PAYLOAD);
    rtp[0] = 0x80;
    rtp[1] = 0;
    uint16_t seq = (uint16_t)(i / N_LEGS);
    rtp[2] = (uint8_t)(seq >> 8);
    rtp[3] = (uint8_t)seq;
    uint32_t ssrc = 0x1000u + leg;
    rtp[8] = (uint8_t)(ssrc >> 24);
    rtp[11] = (uint8_t)ssrc;
    for (int k = 0; k < PAYLOAD; k++)
        rtp[RTP_HDR + k] = (uint8_t)(k * 3 + i);
    size_t plen = RTP_HDR + PAYLOAD;
    if (prot)
        md_srtp_protect(prot[leg], rtp, &plen, 2048 - DPK_UDP4_HEADROOM);
    struct dpk_udp_addrs a = {
        .family = 4, .src_port = 30000, .dst_port = (uint16_t)(PORT_MIN + 2 * leg)};
    memcpy(a.src_mac, peer_mac, 6);
    memcpy(a.dst_mac, our_mac, 6);
    inet_pton(AF_INET, "198.18.77.2", a.src_ip);
    inet_pton(AF_INET, "198.18.77.1", a.dst_ip);
    return (size_t)dpk_udp_headers(f, &a, plen, true);
}

/* ---- the DPDK figures ---- */
static struct rte_mempool *pool;

static uint16_t port_up(uint16_t port)
{
    struct rte_eth_conf pc;
    memset(&pc, 0, sizeof pc);
    if (rte_eth_dev_configure(port, 1, 1, &pc) != 0 ||
        rte_eth_rx_queue_setup(port, 0, 1024, (unsigned)rte_socket_id(), NULL, pool) != 0 ||
        rte_eth_tx_queue_setup(port, 0, 1024, (unsigned)rte_socket_id(), NULL) != 0 ||
        rte_eth_dev_start(port) != 0) {
        fprintf(stderr, "port %u did not start\n", port);
        exit(1);
    }
    return port;
}

/* Best packets/s over 1 s slices for `seconds`. mode 0: io only; else relay r. */
static double run_port(uint16_t port, double seconds, struct relay *r)
{
    struct rte_mbuf *m[BURST];
    double best = 0;
    for (double end = now_s() + seconds; now_s() < end;) {
        uint64_t n = 0;
        double t0 = now_s(), t1;
        do {
            for (int k = 0; k < 64; k++) {
                uint16_t got = rte_eth_rx_burst(port, 0, m, BURST);
                uint16_t keep = got;
                if (r) {
                    keep = 0;
                    for (uint16_t i = 0; i < got; i++) {
                        uint16_t len;
                        uint8_t *f = rte_pktmbuf_mtod(m[i], uint8_t *);
                        if (relay_one(r, f, rte_pktmbuf_data_len(m[i]),
                                      m[i]->buf_len - m[i]->data_off, &len)) {
                            m[i]->data_len = len;
                            m[i]->pkt_len = len;
                            m[keep++] = m[i];
                        } else {
                            r->dropped++;
                            rte_pktmbuf_free(m[i]);
                        }
                    }
                }
                uint16_t sent = rte_eth_tx_burst(port, 0, m, keep);
                for (uint16_t i = sent; i < keep; i++)
                    rte_pktmbuf_free(m[i]);
                n += sent;
            }
            t1 = now_s();
        } while (t1 - t0 < 1.0);
        double pps = (double)n / (t1 - t0);
        if (pps > best)
            best = pps;
    }
    return best;
}

static uint16_t ring_port(const char *name, struct md_srtp **prot, unsigned count)
{
    struct rte_ring *ring =
        rte_ring_create(name, 4096, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!ring) {
        fprintf(stderr, "ring: %s\n", rte_strerror(rte_errno));
        exit(1);
    }
    int port = rte_eth_from_rings(name, &ring, 1, &ring, 1, (unsigned)rte_socket_id());
    if (port < 0) {
        fprintf(stderr, "net_ring: %s\n", rte_strerror(rte_errno));
        exit(1);
    }
    port_up((uint16_t)port);
    for (unsigned i = 0; i < count; i++) {
        struct rte_mbuf *mb = rte_pktmbuf_alloc(pool);
        uint8_t *f = rte_pktmbuf_mtod(mb, uint8_t *);
        size_t len = make_frame(f, i, prot);
        mb->data_len = (uint16_t)len;
        mb->pkt_len = (uint32_t)len;
        if (rte_ring_enqueue(ring, mb) != 0)
            rte_pktmbuf_free(mb);
    }
    return (uint16_t)port;
}

/* (e): the raw libsrtp2 loop on one buffer. */
static double raw_srtp(double seconds, const struct md_crypto *key)
{
    struct md_srtp *pin, *pout, *in, *out;
    md_srtp_create(&pout, key, MD_SRTP_OUTBOUND);
    md_srtp_create(&pin, key, MD_SRTP_INBOUND);
    md_srtp_create(&in, key, MD_SRTP_INBOUND);
    md_srtp_create(&out, key, MD_SRTP_OUTBOUND);
    (void)pin;
    uint8_t buf[2048];
    struct leg l = {.ssrc = 0x1000, .seq = 1};
    memset(buf, 0, sizeof buf);
    buf[0] = 0x80;
    buf[11] = 0;
    size_t len = RTP_HDR + PAYLOAD;
    buf[8] = 0;
    buf[10] = 0x10; /* ssrc 0x1000 */
    md_srtp_protect(pout, buf, &len, sizeof buf);
    double best = 0;
    for (double end = now_s() + seconds; now_s() < end;) {
        uint64_t n = 0;
        double t0 = now_s(), t1;
        do {
            for (int k = 0; k < 256; k++) {
                if (md_srtp_unprotect(in, buf, &len) != MD_OK) {
                    fprintf(stderr, "raw loop: unprotect failed\n");
                    exit(1);
                }
                rtp_rewrite(buf, &l);
                md_srtp_protect(out, buf, &len, sizeof buf);
                n++;
            }
            t1 = now_s();
        } while (t1 - t0 < 1.0);
        double pps = (double)n / (t1 - t0);
        if (pps > best)
            best = pps;
    }
    md_srtp_free(pout);
    md_srtp_free(pin);
    md_srtp_free(in);
    md_srtp_free(out);
    return best;
}

/* (f): the sockets backend's way: recvmmsg / rewrite / sendmmsg on loopback. */
static double sockets_forward(double seconds)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof sa;
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        perror("sockets: bind");
        exit(1);
    }
    static uint8_t bufs[BURST][2048];
    struct mmsghdr msgs[BURST];
    struct iovec iov[BURST];
    struct sockaddr_in from[BURST];
    uint8_t pkt[RTP_HDR + PAYLOAD] = {0x80};
    for (int i = 0; i < 256; i++)
        sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&sa, sizeof sa);
    struct leg l = {.ssrc = 0x1000};
    double best = 0;
    for (double end = now_s() + seconds; now_s() < end;) {
        uint64_t n = 0;
        double t0 = now_s(), t1;
        do {
            for (int i = 0; i < BURST; i++) {
                iov[i] = (struct iovec){bufs[i], sizeof bufs[i]};
                msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i],
                                                  .msg_namelen = sizeof from[i],
                                                  .msg_iov = &iov[i],
                                                  .msg_iovlen = 1};
            }
            int got = recvmmsg(fd, msgs, BURST, MSG_DONTWAIT, NULL);
            if (got <= 0) {
                for (int i = 0; i < 64; i++) /* lost some: top up */
                    sendto(fd, pkt, sizeof pkt, 0, (struct sockaddr *)&sa, sizeof sa);
                t1 = now_s();
                continue;
            }
            for (int i = 0; i < got; i++) {
                rtp_rewrite(bufs[i], &l);
                iov[i].iov_len = msgs[i].msg_len;
                msgs[i].msg_hdr.msg_name = &sa; /* forward: to the "other leg" (us) */
                msgs[i].msg_hdr.msg_namelen = sizeof sa;
            }
            int sent = sendmmsg(fd, msgs, (unsigned)got, 0);
            if (sent > 0)
                n += (uint64_t)sent;
            t1 = now_s();
        } while (t1 - t0 < 1.0);
        double pps = (double)n / (t1 - t0);
        if (pps > best)
            best = pps;
    }
    close(fd);
    return best;
}

/* (a): dpdk-testpmd io forwarding on `vdev`, its best Rx-pps. */
static double testpmd(double seconds, int cpu, const char *vdev)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "timeout -s INT %d dpdk-testpmd --no-huge --no-shconf -m 512 --file-prefix "
             "cnb-tp-%d -l %d,%d --vdev %s --no-pci -- --nb-cores=1 "
             "--forward-mode=io --total-num-mbufs=16384 --stats-period 1 --tx-first 2>&1",
             (int)seconds + 3, (int)getpid(), cpu == 0 ? 1 : 0, cpu, vdev);
    FILE *p = popen(cmd, "r");
    if (!p)
        return 0;
    char line[256];
    double best = 0;
    while (fgets(line, sizeof line, p)) {
        double v;
        if (sscanf(line, " Rx-pps: %lf", &v) == 1 && v > best)
            best = v;
    }
    pclose(p);
    return best;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    int cpu = argc > 2 ? atoi(argv[2]) : 1;
    char only = argc > 3 ? argv[3][0] : 0;
    if (secs < 1)
        secs = 1;
    if (secs > 10)
        secs = 10;
    double a = only ? 0 : testpmd(secs, cpu, "net_null0");
    double a2 = only ? 0 : testpmd(secs, cpu, "net_ring0");

    char lcore[16], prefix[64];
    snprintf(lcore, sizeof lcore, "%d", cpu);
    snprintf(prefix, sizeof prefix, "cnb-%d", (int)getpid());
    char *eal[] = {argv[0],
                   "-l",
                   lcore,
                   "--no-huge",
                   "--no-shconf",
                   "-m",
                   "512",
                   "--file-prefix",
                   prefix,
                   "--no-pci",
                   "--no-telemetry",
                   "--vdev",
                   "net_null0",
                   "--log-level=*:warning",
                   NULL};
    if (rte_eal_init((int)(sizeof eal / sizeof eal[0]) - 1, eal) < 0) {
        fprintf(stderr, "EAL: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    pool = rte_pktmbuf_pool_create("bench", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                   (int)rte_socket_id());
    if (!pool || md_srtp_global_init() != MD_OK) {
        fprintf(stderr, "mempool or libsrtp2: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    uint16_t null_port;
    rte_eth_dev_get_port_by_name("net_null0", &null_port);
    port_up(null_port);
    if (only == 'c' || only == 'd') {
        struct relay r1;
        struct md_crypto k1 = {.suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80, .tag = 1};
        md_crypto_keygen(&k1);
        relay_init(&r1, only == 'd', &k1);
        struct md_srtp *p1[N_LEGS];
        for (int i = 0; i < N_LEGS; i++)
            md_srtp_create(&p1[i], &k1, MD_SRTP_OUTBOUND);
        uint16_t port = ring_port("cnb_only", only == 'd' ? p1 : NULL, WARM);
        printf("(%c) alone: %.0f packets/s\n", only, run_port(port, secs, &r1));
        return 0;
    }
    double b = run_port(null_port, secs, NULL);

    struct relay r;
    relay_init(&r, false, NULL);
    uint16_t plain = ring_port("cnb_plain", NULL, WARM);
    double c = run_port(plain, secs, &r);
    uint64_t c_drop = r.dropped;
    struct relay rc;
    relay_init(&rc, false, NULL);
    uint16_t cold = ring_port("cnb_cold", NULL, PRIME);
    double c1 = run_port(cold, secs, &rc);
    c_drop += rc.dropped;
    struct relay r0;
    relay_init(&r0, false, NULL);
    r0.udp_csum = false;
    uint16_t plain0 = ring_port("cnb_plain0", NULL, WARM);
    double c0 = run_port(plain0, secs, &r0);
    c_drop += r0.dropped;
    uint16_t io_ring = ring_port("cnb_io", NULL, WARM);
    double b2 = run_port(io_ring, secs, NULL);

    struct md_crypto key = {.suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80, .tag = 1};
    md_crypto_keygen(&key);
    struct relay rs;
    relay_init(&rs, true, &key);
    struct md_srtp *prot[N_LEGS];
    for (int i = 0; i < N_LEGS; i++)
        md_srtp_create(&prot[i], &key, MD_SRTP_OUTBOUND);
    uint16_t sec = ring_port("cnb_srtp", prot, WARM);
    double d = run_port(sec, secs, &rs);
    uint64_t d_drop = rs.dropped;
    double e = raw_srtp(secs, &key);
    double f = sockets_forward(secs);

    printf("dpdk_bench: one core (cpu %d), %.0f s per figure, best 1 s slice, packets/s, %u frames "
           "in flight\n",
           cpu, secs, WARM);
    printf("(a) testpmd io, net_null            %12.0f\n", a);
    printf("(a2) testpmd io, net_ring (loop)    %12.0f   (moves pointers only)\n", a2);
    printf("(b) our rx->tx loop, net_null       %12.0f\n", b);
    printf("(b2) our rx->tx loop, net_ring      %12.0f   (moves pointers only)\n", b2);
    printf("(c) plain RTP forwarding, DPDK      %12.0f   (dropped %llu)\n", c,
           (unsigned long long)c_drop);
    printf("(c0) as (c), no IPv4 UDP checksum   %12.0f\n", c0);
    printf("(c1) as (c), %4u frames in flight   %12.0f   (cache-cold packet data)\n", PRIME, c1);
    printf("(d) SRTP relaying, DPDK             %12.0f   (dropped %llu)\n", d,
           (unsigned long long)d_drop);
    printf("(e) raw libsrtp2 loop (no I/O)      %12.0f\n", e);
    printf("(f) sockets backend, plain RTP      %12.0f\n", f);
    printf("goal (c)/(a) >= 0.50: %.2f %s (net_null: testpmd touches no packet data)\n",
           a > 0 ? c / a : 0, a > 0 && c / a >= 0.5 ? "met" : "NOT met");
    printf("     (c0)/(a):         %.2f (what TX checksum offload would leave)\n",
           a > 0 ? c0 / a : 0);
    printf("goal (d)/(e) >= 0.80: %.2f %s\n", e > 0 ? d / e : 0,
           e > 0 && d / e >= 0.8 ? "met" : "NOT met");
    printf("goal (c)/(f) >= 3.00: %.2f %s\n", f > 0 ? c / f : 0,
           f > 0 && c / f >= 3 ? "met" : "NOT met");
    for (int i = 0; i < N_LEGS; i++) {
        md_srtp_free(prot[i]);
        md_srtp_free(rs.legs[i].in);
        md_srtp_free(rs.legs[i].out);
    }
    uint16_t pid;
    RTE_ETH_FOREACH_DEV(pid)
    {
        rte_eth_dev_stop(pid);
        rte_eth_dev_close(pid);
    }
    rte_eal_cleanup();
    return (c_drop || d_drop) ? 1 : 0;
}
