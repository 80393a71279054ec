/* Frames on the DPDK path (see dpk_pkt.h). */
#include "dpk_pkt.h"

#include <string.h>

#include "cn_ports.h"

#define ETHERTYPE_IP4 0x0800
#define ETHERTYPE_IP6 0x86dd
#define PROTO_UDP 17

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* Sums the 16-bit words in the machine's byte order, 8 bytes per step, and swaps the
 * folded result into network order at the end: the one's complement sum does not
 * depend on byte order (RFC 1071 2.B). */
uint32_t dpk_csum_add(uint32_t sum, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t s = 0, s1 = 0, s2 = 0, s3 = 0;
    while (len >= 32) { /* four independent sums: no carry chain between them */
        uint64_t v[4];
        memcpy(v, p, 32);
        s += (v[0] & 0xffffffffu) + (v[0] >> 32);
        s1 += (v[1] & 0xffffffffu) + (v[1] >> 32);
        s2 += (v[2] & 0xffffffffu) + (v[2] >> 32);
        s3 += (v[3] & 0xffffffffu) + (v[3] >> 32);
        p += 32;
        len -= 32;
    }
    s += s1 + s2 + s3;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        s += (v & 0xffffffffu) + (v >> 32);
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        s += v;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t v;
        memcpy(&v, p, 2);
        s += v;
        p += 2;
        len -= 2;
    }
    if (len) { /* the last byte is the high half of a network-order word */
        uint8_t last[2] = {p[0], 0};
        uint16_t v;
        memcpy(&v, last, 2);
        s += v;
    }
    while (s >> 16)
        s = (s & 0xffffu) + (s >> 16);
    uint16_t w = (uint16_t)s;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    w = (uint16_t)(w << 8 | w >> 8);
#endif
    uint64_t t = (uint64_t)sum + w;
    while (t >> 32)
        t = (t & 0xffffffffu) + (t >> 32);
    return (uint32_t)t;
}

uint16_t dpk_csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

unsigned dpk_flow_worker(uint8_t family, const uint8_t *addr, uint16_t port, unsigned workers)
{
    if (workers <= 1)
        return 0;
    uint32_t h = 2166136261u;
    size_t n = family == 6 ? 16 : 4;
    for (size_t i = 0; i < n; i++)
        h = (h ^ addr[i]) * 16777619u;
    h = (h ^ (uint8_t)(port >> 8)) * 16777619u;
    h = (h ^ (uint8_t)port) * 16777619u;
    h ^= h >> 15; /* FNV's low bits are weak: mix before the range reduction */
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return (unsigned)(((uint64_t)h * workers) >> 32);
}

/* UDP to us: which class, and for which worker. */
static dpk_class_t udp_class(const struct dpk_steer *s, const struct dpk_pkt_info *in,
                             unsigned *worker)
{
    if (s->sip_port && in->dst_port == s->sip_port) {
        *worker = dpk_flow_worker(in->family, in->src_ip, in->src_port, s->workers);
        return DPK_CLASS_SIP;
    }
    if (in->dst_port >= s->media_min && in->dst_port <= s->media_max && s->workers) {
        *worker = cn_port_owner(in->dst_port, s->media_min, s->workers);
        return DPK_CLASS_MEDIA;
    }
    return DPK_CLASS_KERNEL;
}

static dpk_class_t classify_ip4(const struct dpk_steer *s, const uint8_t *ip, size_t avail,
                                struct dpk_pkt_info *in, unsigned *worker)
{
    in->family = 4;
    if (avail < DPK_IP4_LEN || (ip[0] >> 4) != 4)
        return DPK_CLASS_DROP;
    size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
    size_t tot = rd16(ip + 2);
    if (ihl < DPK_IP4_LEN || tot < ihl || tot > avail)
        return DPK_CLASS_DROP;
    in->proto = ip[9];
    memcpy(in->src_ip, ip + 12, 4);
    memcpy(in->dst_ip, ip + 16, 4);
    if (!s->has_ip4 || memcmp(ip + 16, s->ip4, 4) != 0)
        return DPK_CLASS_KERNEL; /* broadcast, multicast, another address: kernel decides */
    if ((rd16(ip + 6) & 0x3fff) != 0)
        return DPK_CLASS_KERNEL; /* a fragment: the kernel reassembles */
    if (in->proto != PROTO_UDP)
        return DPK_CLASS_KERNEL;
    if (tot < ihl + DPK_UDP_LEN)
        return DPK_CLASS_DROP;
    const uint8_t *udp = ip + ihl;
    size_t ulen = rd16(udp + 4);
    if (ulen < DPK_UDP_LEN || ulen > tot - ihl)
        return DPK_CLASS_DROP;
    in->src_port = rd16(udp);
    in->dst_port = rd16(udp + 2);
    in->payload_off = (uint16_t)(in->l3_off + ihl + DPK_UDP_LEN);
    in->payload_len = (uint16_t)(ulen - DPK_UDP_LEN);
    return udp_class(s, in, worker);
}

static dpk_class_t classify_ip6(const struct dpk_steer *s, const uint8_t *ip, size_t avail,
                                struct dpk_pkt_info *in, unsigned *worker)
{
    in->family = 6;
    if (avail < DPK_IP6_LEN || (ip[0] >> 4) != 6)
        return DPK_CLASS_DROP;
    size_t plen = rd16(ip + 4);
    if (plen > avail - DPK_IP6_LEN)
        return DPK_CLASS_DROP;
    in->proto = ip[6];
    memcpy(in->src_ip, ip + 8, 16);
    memcpy(in->dst_ip, ip + 24, 16);
    /* ICMPv6 (ND), extension headers, multicast, other addresses: the kernel's */
    if (!s->has_ip6 || memcmp(ip + 24, s->ip6, 16) != 0 || in->proto != PROTO_UDP)
        return DPK_CLASS_KERNEL;
    if (plen < DPK_UDP_LEN)
        return DPK_CLASS_DROP;
    const uint8_t *udp = ip + DPK_IP6_LEN;
    size_t ulen = rd16(udp + 4);
    if (ulen < DPK_UDP_LEN || ulen > plen)
        return DPK_CLASS_DROP;
    in->src_port = rd16(udp);
    in->dst_port = rd16(udp + 2);
    in->payload_off = (uint16_t)(in->l3_off + DPK_IP6_LEN + DPK_UDP_LEN);
    in->payload_len = (uint16_t)(ulen - DPK_UDP_LEN);
    return udp_class(s, in, worker);
}

dpk_class_t dpk_classify(const struct dpk_steer *s, const uint8_t *frame, size_t len,
                         struct dpk_pkt_info *info, unsigned *worker)
{
    memset(info, 0, sizeof *info);
    *worker = 0;
    if (len < DPK_ETH_LEN || len > 0xffff)
        return DPK_CLASS_DROP;
    memcpy(info->src_mac, frame + 6, 6);
    if (memcmp(frame + 6, s->mac, 6) == 0)
        return DPK_CLASS_DROP; /* our own frame, looped back by the port */
    bool group = frame[0] & 1; /* broadcast or multicast */
    if (!group && memcmp(frame, s->mac, 6) != 0)
        return DPK_CLASS_DROP; /* unicast for another station (promiscuous port) */
    uint16_t type = rd16(frame + 12);
    info->l3_off = DPK_ETH_LEN;
    if (type == ETHERTYPE_IP4)
        return classify_ip4(s, frame + DPK_ETH_LEN, len - DPK_ETH_LEN, info, worker);
    if (type == ETHERTYPE_IP6)
        return classify_ip6(s, frame + DPK_ETH_LEN, len - DPK_ETH_LEN, info, worker);
    return DPK_CLASS_KERNEL; /* ARP, VLAN-tagged, LLDP, ... */
}

/* The UDP pseudo-header sum (RFC 768, RFC 8200 8.1). */
static uint32_t pseudo_sum(uint8_t family, const uint8_t *src, const uint8_t *dst, size_t ulen)
{
    size_t alen = family == 6 ? 16 : 4;
    uint32_t sum = dpk_csum_add(0, src, alen);
    sum = dpk_csum_add(sum, dst, alen);
    uint8_t tail[8] = {0};
    if (family == 6) {
        tail[0] = (uint8_t)(ulen >> 24);
        tail[1] = (uint8_t)(ulen >> 16);
        tail[2] = (uint8_t)(ulen >> 8);
        tail[3] = (uint8_t)ulen;
        tail[7] = PROTO_UDP;
        return dpk_csum_add(sum, tail, 8);
    }
    tail[1] = PROTO_UDP;
    wr16(tail + 2, (uint16_t)ulen);
    return dpk_csum_add(sum, tail, 4);
}

int dpk_udp_headers(uint8_t *frame, const struct dpk_udp_addrs *a, size_t payload_len,
                    bool udp_csum)
{
    if (a->family != 4 && a->family != 6)
        return -1;
    size_t iplen = a->family == 4 ? DPK_IP4_LEN : DPK_IP6_LEN;
    size_t ulen = DPK_UDP_LEN + payload_len;
    if (ulen + (a->family == 4 ? iplen : 0) > 0xffff)
        return -1;
    memcpy(frame, a->dst_mac, 6);
    memcpy(frame + 6, a->src_mac, 6);
    wr16(frame + 12, a->family == 4 ? ETHERTYPE_IP4 : ETHERTYPE_IP6);
    uint8_t *ip = frame + DPK_ETH_LEN;
    if (a->family == 4) {
        ip[0] = 0x45;
        ip[1] = a->tos;
        wr16(ip + 2, (uint16_t)(iplen + ulen));
        wr16(ip + 4, 0);      /* identification: DF is set, never fragmented */
        wr16(ip + 6, 0x4000); /* DF */
        ip[8] = 64;
        ip[9] = PROTO_UDP;
        wr16(ip + 10, 0);
        memcpy(ip + 12, a->src_ip, 4);
        memcpy(ip + 16, a->dst_ip, 4);
        wr16(ip + 10, dpk_csum_fold(dpk_csum_add(0, ip, DPK_IP4_LEN)));
    } else {
        ip[0] = (uint8_t)(0x60 | a->tos >> 4);
        ip[1] = (uint8_t)(a->tos << 4);
        ip[2] = ip[3] = 0;
        wr16(ip + 4, (uint16_t)ulen);
        ip[6] = PROTO_UDP;
        ip[7] = 64;
        memcpy(ip + 8, a->src_ip, 16);
        memcpy(ip + 24, a->dst_ip, 16);
    }
    uint8_t *udp = ip + iplen;
    wr16(udp, a->src_port);
    wr16(udp + 2, a->dst_port);
    wr16(udp + 4, (uint16_t)ulen);
    wr16(udp + 6, 0);
    if (udp_csum || a->family == 6) {
        uint32_t sum = pseudo_sum(a->family, a->src_ip, a->dst_ip, ulen);
        uint16_t c = dpk_csum_fold(dpk_csum_add(sum, udp, ulen));
        wr16(udp + 6, c ? c : 0xffff); /* 0 means "no checksum" on the wire */
    }
    return (int)(DPK_ETH_LEN + iplen + ulen);
}

bool dpk_udp_csum_ok(const uint8_t *frame, size_t len, const struct dpk_pkt_info *info)
{
    if (info->proto != PROTO_UDP || info->payload_off < DPK_UDP_LEN ||
        (size_t)info->payload_off + info->payload_len > len)
        return false;
    const uint8_t *ip = frame + info->l3_off;
    const uint8_t *udp = frame + info->payload_off - DPK_UDP_LEN;
    size_t ulen = (size_t)info->payload_len + DPK_UDP_LEN;
    if (info->family == 4) {
        size_t ihl = (size_t)(ip[0] & 0x0f) * 4;
        if (dpk_csum_fold(dpk_csum_add(0, ip, ihl)) != 0)
            return false;
        if (rd16(udp + 6) == 0)
            return true; /* IPv4 allows no UDP checksum */
    }
    uint32_t sum = pseudo_sum(info->family, info->src_ip, info->dst_ip, ulen);
    return dpk_csum_fold(dpk_csum_add(sum, udp, ulen)) == 0;
}
