/* DPDK fast path, pure parts: classification, steering by the port partition, the
 * source hash, UDP/IP headers and checksums, the neighbour cache, the EAL command
 * line. None of it needs EAL. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cn_ports.h"
#include "dpk_eal_args.h"
#include "dpk_neigh.h"
#include "dpk_pkt.h"

static const uint8_t our_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t peer_mac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

static struct dpk_steer steer(unsigned workers)
{
    struct dpk_steer s = {.has_ip4 = true,
                          .has_ip6 = true,
                          .sip_port = 5060,
                          .media_min = 40000,
                          .media_max = 49999,
                          .workers = workers};
    memcpy(s.mac, our_mac, 6);
    inet_pton(AF_INET, "198.18.77.1", s.ip4);
    inet_pton(AF_INET6, "2001:db8::1", s.ip6);
    return s;
}

/* A UDP frame from the peer to us, built with dpk_udp_headers. */
static size_t udp_frame(uint8_t *f, uint8_t family, const char *src, uint16_t sport, uint16_t dport,
                        size_t payload_len)
{
    struct dpk_udp_addrs a = {.family = family, .src_port = sport, .dst_port = dport};
    memcpy(a.src_mac, peer_mac, 6);
    memcpy(a.dst_mac, our_mac, 6);
    if (family == 4) {
        inet_pton(AF_INET, src, a.src_ip);
        inet_pton(AF_INET, "198.18.77.1", a.dst_ip);
    } else {
        inet_pton(AF_INET6, src, a.src_ip);
        inet_pton(AF_INET6, "2001:db8::1", a.dst_ip);
    }
    size_t head = family == 4 ? DPK_UDP4_HEADROOM : DPK_UDP6_HEADROOM;
    for (size_t i = 0; i < payload_len; i++)
        f[head + i] = (uint8_t)(i * 7 + 1);
    int n = dpk_udp_headers(f, &a, payload_len, true);
    assert_true(n > 0);
    return (size_t)n;
}

static void media_udp_goes_to_the_port_partition_owner(void **state)
{
    (void)state;
    uint8_t f[256];
    for (unsigned workers = 1; workers <= 5; workers++) {
        struct dpk_steer s = steer(workers);
        for (unsigned port = 40000; port <= 40040; port++) {
            size_t n = udp_frame(f, 4, "198.18.77.2", 30000, (uint16_t)port, 40);
            struct dpk_pkt_info in;
            unsigned w = 99;
            assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_MEDIA);
            assert_int_equal(w, cn_port_owner((uint16_t)port, 40000, workers));
            assert_int_equal(in.dst_port, port);
            assert_int_equal(in.payload_len, 40);
            assert_int_equal(f[in.payload_off], 1);
        }
    }
}

static void rtp_and_rtcp_of_one_pair_reach_the_same_worker(void **state)
{
    (void)state;
    uint8_t f[256];
    struct dpk_steer s = steer(3);
    for (unsigned port = 40000; port < 40100; port += 2) {
        struct dpk_pkt_info in;
        unsigned w_rtp, w_rtcp;
        size_t n = udp_frame(f, 4, "198.18.77.2", 30000, (uint16_t)port, 20);
        assert_int_equal(dpk_classify(&s, f, n, &in, &w_rtp), DPK_CLASS_MEDIA);
        n = udp_frame(f, 4, "198.18.77.2", 30001, (uint16_t)(port + 1), 20);
        assert_int_equal(dpk_classify(&s, f, n, &in, &w_rtcp), DPK_CLASS_MEDIA);
        assert_int_equal(w_rtp, w_rtcp);
    }
}

static void sip_udp_goes_to_a_worker_by_source_hash(void **state)
{
    (void)state;
    uint8_t f[256];
    struct dpk_steer s = steer(4);
    unsigned seen[4] = {0};
    for (unsigned i = 0; i < 400; i++) {
        char src[32];
        snprintf(src, sizeof src, "198.18.%u.%u", 70 + i / 200, 2 + i % 200);
        uint16_t sport = (uint16_t)(5060 + i % 7);
        size_t n = udp_frame(f, 4, src, sport, 5060, 100);
        struct dpk_pkt_info in;
        unsigned w = 99, again = 98;
        assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_SIP);
        assert_true(w < 4);
        /* the same source always lands on the same worker */
        assert_int_equal(dpk_classify(&s, f, n, &in, &again), DPK_CLASS_SIP);
        assert_int_equal(w, again);
        assert_int_equal(w, dpk_flow_worker(4, in.src_ip, sport, 4));
        seen[w]++;
    }
    for (unsigned w = 0; w < 4; w++) /* spread: no worker gets almost nothing */
        assert_true(seen[w] > 40);
}

static void ipv6_udp_is_steered_like_ipv4(void **state)
{
    (void)state;
    uint8_t f[256];
    struct dpk_steer s = steer(3);
    struct dpk_pkt_info in;
    unsigned w = 99;
    size_t n = udp_frame(f, 6, "2001:db8::2", 30000, 40006, 50);
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_MEDIA);
    assert_int_equal(w, cn_port_owner(40006, 40000, 3));
    assert_int_equal(in.family, 6);
    assert_true(dpk_udp_csum_ok(f, n, &in));
    n = udp_frame(f, 6, "2001:db8::2", 5070, 5060, 50);
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_SIP);
}

static void everything_else_goes_to_the_kernel(void **state)
{
    (void)state;
    uint8_t f[256];
    struct dpk_steer s = steer(2);
    struct dpk_pkt_info in;
    unsigned w;
    /* UDP to a port that is neither SIP nor media (a DNS answer to the resolver) */
    size_t n = udp_frame(f, 4, "198.18.77.53", 53, 33333, 60);
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_KERNEL);
    /* TCP (TLS SIP): same frame with protocol 6 */
    n = udp_frame(f, 4, "198.18.77.2", 40000, 5061, 60);
    f[DPK_ETH_LEN + 9] = 6;
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_KERNEL);
    /* ICMP */
    f[DPK_ETH_LEN + 9] = 1;
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_KERNEL);
    /* a fragment of a media datagram: the kernel reassembles */
    n = udp_frame(f, 4, "198.18.77.2", 30000, 40000, 60);
    f[DPK_ETH_LEN + 6] |= 0x20; /* MF */
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_KERNEL);
    /* ARP, broadcast */
    uint8_t arp[42] = {0};
    memset(arp, 0xff, 6);
    memcpy(arp + 6, peer_mac, 6);
    arp[12] = 0x08;
    arp[13] = 0x06;
    assert_int_equal(dpk_classify(&s, arp, sizeof arp, &in, &w), DPK_CLASS_KERNEL);
    /* IPv6 neighbour solicitation: ICMPv6 to a multicast group */
    n = udp_frame(f, 6, "2001:db8::2", 1, 1, 24);
    f[0] = 0x33;
    f[1] = 0x33;
    f[DPK_ETH_LEN + 6] = 58;
    inet_pton(AF_INET6, "ff02::1:ff00:1", f + DPK_ETH_LEN + 24);
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_KERNEL);
    /* UDP to another address of the subnet (our MAC): the kernel decides */
    n = udp_frame(f, 4, "198.18.77.2", 30000, 40000, 10);
    inet_pton(AF_INET, "198.18.77.9", f + DPK_ETH_LEN + 16);
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_KERNEL);
}

static void own_frames_and_foreign_unicast_are_dropped(void **state)
{
    (void)state;
    uint8_t f[256];
    struct dpk_steer s = steer(2);
    struct dpk_pkt_info in;
    unsigned w;
    size_t n = udp_frame(f, 4, "198.18.77.2", 30000, 40000, 10);
    memcpy(f + 6, our_mac, 6); /* looped back */
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_DROP);
    n = udp_frame(f, 4, "198.18.77.2", 30000, 40000, 10);
    f[5] = 0x77; /* another station's unicast MAC */
    assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_DROP);
}

static void truncated_and_lying_headers_are_dropped_within_bounds(void **state)
{
    (void)state;
    uint8_t f[256];
    struct dpk_steer s = steer(2);
    size_t n = udp_frame(f, 4, "198.18.77.2", 30000, 40000, 30);
    long page = sysconf(_SC_PAGESIZE);
    uint8_t *map =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    assert_int_equal(mprotect(map + page, (size_t)page, PROT_NONE), 0);
    /* every prefix, placed against a PROT_NONE page: never read past len */
    for (size_t len = 0; len < n; len++) {
        uint8_t *p = map + page - len;
        memcpy(p, f, len);
        struct dpk_pkt_info in;
        unsigned w;
        dpk_class_t c = dpk_classify(&s, p, len, &in, &w);
        assert_true(c == DPK_CLASS_DROP || c == DPK_CLASS_KERNEL);
    }
    munmap(map, (size_t)page * 2);
    struct dpk_pkt_info in;
    unsigned w;
    uint8_t g[256];
    memcpy(g, f, n);
    g[DPK_ETH_LEN + DPK_IP4_LEN + 4] = 0xff; /* UDP length beyond the IP datagram */
    assert_int_equal(dpk_classify(&s, g, n, &in, &w), DPK_CLASS_DROP);
    memcpy(g, f, n);
    g[DPK_ETH_LEN] = 0x44; /* IHL 4 */
    assert_int_equal(dpk_classify(&s, g, n, &in, &w), DPK_CLASS_DROP);
    memcpy(g, f, n);
    g[DPK_ETH_LEN + 2] = 0x7f; /* IP total length beyond the frame */
    assert_int_equal(dpk_classify(&s, g, n, &in, &w), DPK_CLASS_DROP);
}

static void built_headers_carry_valid_checksums(void **state)
{
    (void)state;
    uint8_t f[2048];
    struct dpk_steer s = steer(2);
    for (size_t len = 0; len < 1400; len += 97) {
        for (int fam = 4; fam <= 6; fam += 2) {
            size_t n = udp_frame(f, (uint8_t)fam, fam == 4 ? "198.18.77.2" : "2001:db8::2",
                                 (uint16_t)(1000 + len), 40002, len);
            struct dpk_pkt_info in;
            unsigned w;
            assert_int_equal(dpk_classify(&s, f, n, &in, &w), DPK_CLASS_MEDIA);
            assert_int_equal(in.payload_len, len);
            assert_true(dpk_udp_csum_ok(f, n, &in));
            f[in.payload_off + len / 2] ^= 0x40; /* one flipped bit is caught */
            if (len)
                assert_false(dpk_udp_csum_ok(f, n, &in));
        }
    }
}

static void checksum_matches_rfc1071_example(void **state)
{
    (void)state;
    /* RFC 1071 section 3: the sum of 00 01 f2 03 f4 f5 f6 f7 is ddf2 */
    static const uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
    uint32_t sum = dpk_csum_add(0, data, sizeof data);
    assert_int_equal(dpk_csum_fold(sum), (uint16_t)~0xddf2);
    /* split at an even offset: the same sum */
    uint32_t split = dpk_csum_add(dpk_csum_add(0, data, 4), data + 4, 4);
    assert_int_equal(dpk_csum_fold(split), dpk_csum_fold(sum));
}

/* The textbook definition: big-endian 16-bit words, a last odd byte padded. */
static uint16_t reference_csum(const uint8_t *p, size_t len)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static void checksum_agrees_with_the_definition_at_every_length_and_alignment(void **state)
{
    (void)state;
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7 + (i >> 3));
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= sizeof buf; len++)
            assert_int_equal(dpk_csum_fold(dpk_csum_add(0, buf + off, len)),
                             reference_csum(buf + off, len));
    memset(buf, 0xff, sizeof buf); /* carries in every word */
    assert_int_equal(dpk_csum_fold(dpk_csum_add(0, buf, 299)), reference_csum(buf, 299));
}

static void headers_refuse_bad_family_and_oversize(void **state)
{
    (void)state;
    uint8_t f[128];
    struct dpk_udp_addrs a = {.family = 5};
    assert_int_equal(dpk_udp_headers(f, &a, 10, true), -1);
    a.family = 4;
    assert_int_equal(dpk_udp_headers(f, &a, 70000, false), -1);
}

static void neighbour_cache_learns_expires_and_evicts(void **state)
{
    (void)state;
    struct dpk_neigh *t = malloc(sizeof *t);
    assert_non_null(t);
    dpk_neigh_init(t, 1000);
    uint8_t ip[4] = {198, 18, 77, 2}, mac[6];
    assert_false(dpk_neigh_lookup(t, 4, ip, 0, mac));
    dpk_neigh_learn(t, 4, ip, peer_mac, 100);
    assert_true(dpk_neigh_lookup(t, 4, ip, 500, mac));
    assert_memory_equal(mac, peer_mac, 6);
    assert_false(dpk_neigh_lookup(t, 4, ip, 1200, mac)); /* expired */
    uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8};
    memcpy(v6 + 12, ip, 4);
    assert_false(dpk_neigh_lookup(t, 6, v6, 150, mac)); /* families apart */
    /* many more peers than slots: the latest ones are all found */
    for (unsigned i = 0; i < 3 * DPK_NEIGH_SLOTS; i++) {
        uint8_t a[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        uint8_t m[6] = {2, 0, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i, 9};
        dpk_neigh_learn(t, 4, a, m, 2000 + i);
    }
    unsigned found = 0;
    for (unsigned i = 3 * DPK_NEIGH_SLOTS - 64; i < 3 * DPK_NEIGH_SLOTS; i++) {
        uint8_t a[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
        if (dpk_neigh_lookup(t, 4, a, 2000 + 3 * DPK_NEIGH_SLOTS, mac) && mac[4] == (uint8_t)i)
            found++;
    }
    assert_int_equal(found, 64);
    free(t);
}

static struct dpk_conf eal_conf(void)
{
    struct dpk_conf c = {.memory_mb = 512, .hugepages = DPK_HUGE_AUTO, .exception = DPK_EXC_AUTO};
    snprintf(c.device, sizeof c.device, "net_af_packet0,iface=veth0");
    snprintf(c.kernel_iface, sizeof c.kernel_iface, "cn0");
    return c;
}

static int has_arg(const struct dpk_eal_args *a, const char *s)
{
    for (int i = 0; i < a->argc; i++)
        if (strcmp(a->argv[i], s) == 0)
            return i;
    return -1;
}

static void eal_args_run_without_hugepages_when_none_are_free(void **state)
{
    (void)state;
    struct dpk_conf c = eal_conf();
    struct dpk_eal_args a;
    char err[256];
    assert_int_equal(dpk_eal_args_build(&c, "x", "pfx", 0, false, &a, err, sizeof err), 0);
    assert_true(a.no_huge);
    assert_true(has_arg(&a, "--no-huge") > 0);
    assert_true(has_arg(&a, "--no-shconf") > 0);
    assert_int_equal(has_arg(&a, "--in-memory"), -1); /* EAL refuses both together */
    int m = has_arg(&a, "-m");
    assert_true(m > 0);
    assert_string_equal(a.argv[m + 1], "512");
    int p = has_arg(&a, "--file-prefix");
    assert_string_equal(a.argv[p + 1], "pfx");
    /* enough hugepages free: they are used */
    assert_int_equal(dpk_eal_args_build(&c, "x", "pfx", 1024, false, &a, err, sizeof err), 0);
    assert_false(a.no_huge);
    assert_true(has_arg(&a, "--in-memory") > 0);
    assert_int_equal(has_arg(&a, "--no-huge"), -1);
}

static void eal_args_pick_vdev_or_pci_and_the_exception_port(void **state)
{
    (void)state;
    struct dpk_conf c = eal_conf();
    struct dpk_eal_args a;
    char err[256];
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 0, false, &a, err, sizeof err), 0);
    assert_false(a.pci);
    assert_string_equal(a.data_name, "net_af_packet0");
    int v = has_arg(&a, "--vdev");
    assert_string_equal(a.argv[v + 1], c.device);
    assert_true(has_arg(&a, "--no-pci") > 0);
    assert_int_equal(a.exception, DPK_EXC_TAP); /* no /dev/vhost-net */
    assert_true(has_arg(&a, "net_tap_exc,iface=cn0") > 0);
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 0, true, &a, err, sizeof err), 0);
    assert_int_equal(a.exception, DPK_EXC_VIRTIO_USER);
    snprintf(c.device, sizeof c.device, "0000:03:00.1");
    snprintf(c.eal_args, sizeof c.eal_args, "  --log-level=lib.eal:debug   -n 4 ");
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 0, false, &a, err, sizeof err), 0);
    assert_true(a.pci);
    int d = has_arg(&a, "-a");
    assert_string_equal(a.argv[d + 1], "0000:03:00.1");
    assert_int_equal(has_arg(&a, "--no-pci"), -1);
    assert_true(has_arg(&a, "--log-level=lib.eal:debug") > 0);
    assert_string_equal(a.argv[a.argc - 1], "4");
    assert_null(a.argv[a.argc]);
    assert_true(dpk_is_pci_address("03:00.1"));
    assert_false(dpk_is_pci_address("net_null0"));
    assert_false(dpk_is_pci_address("0000:03:00.8"));
}

static void eal_args_name_the_config_field_when_refused(void **state)
{
    (void)state;
    struct dpk_conf c = eal_conf();
    struct dpk_eal_args a;
    char err[256];
    c.device[0] = 0;
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 0, false, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "dpdk.device"));
    c = eal_conf();
    c.hugepages = DPK_HUGE_ON;
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 100, false, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "dpdk.hugepages"));
    assert_non_null(strstr(err, "not enough memory"));
    c = eal_conf();
    c.exception = DPK_EXC_VIRTIO_USER;
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 0, false, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "dpdk.exception"));
    assert_non_null(strstr(err, "missing capability"));
    c = eal_conf();
    for (int i = 0; i < 60; i++)
        strcat(c.eal_args, "-v ");
    assert_int_equal(dpk_eal_args_build(&c, "x", "p", 0, false, &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "dpdk.eal_args"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(media_udp_goes_to_the_port_partition_owner),
        cmocka_unit_test(rtp_and_rtcp_of_one_pair_reach_the_same_worker),
        cmocka_unit_test(sip_udp_goes_to_a_worker_by_source_hash),
        cmocka_unit_test(ipv6_udp_is_steered_like_ipv4),
        cmocka_unit_test(everything_else_goes_to_the_kernel),
        cmocka_unit_test(own_frames_and_foreign_unicast_are_dropped),
        cmocka_unit_test(truncated_and_lying_headers_are_dropped_within_bounds),
        cmocka_unit_test(built_headers_carry_valid_checksums),
        cmocka_unit_test(checksum_matches_rfc1071_example),
        cmocka_unit_test(checksum_agrees_with_the_definition_at_every_length_and_alignment),
        cmocka_unit_test(headers_refuse_bad_family_and_oversize),
        cmocka_unit_test(neighbour_cache_learns_expires_and_evicts),
        cmocka_unit_test(eal_args_run_without_hugepages_when_none_are_free),
        cmocka_unit_test(eal_args_pick_vdev_or_pci_and_the_exception_port),
        cmocka_unit_test(eal_args_name_the_config_field_when_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
