/* Frames on the DPDK path: Ethernet / IPv4 / IPv6 / UDP parsing, classification,
 * steering and header building, on plain byte buffers (no EAL, no mbufs), so that
 * every rule here is unit-tested without a NIC.
 *
 * DESIGN
 * Every frame a data port receives is classified once, by the lcore that polled it:
 *   - UDP to one of our media ports  -> the worker that owns the port pair
 *     (cn_port_owner(), the same pure function the sockets backend binds by);
 *   - UDP to our SIP port            -> a worker chosen by a hash of the source
 *     address and port (a peer's retransmissions reach the same worker);
 *   - everything else for us (ARP, ICMP, IPv6 ND, TCP, so TLS SIP, IP fragments,
 *     UDP to other ports such as DNS answers to the kernel's resolver)
 *                                    -> the kernel, through the exception path;
 *   - our own frames looped back by the port, and unicast frames for another MAC
 *                                    -> dropped (counted by the caller).
 * The steering inputs (struct dpk_steer) are a read-only copy per lcore: no table is
 * shared on the packet path.
 *
 * Contract of the parsers: they never read past `len`, never write the frame and
 * never allocate; results are offsets into the frame and copied addresses. */
#ifndef DPK_PKT_H
#define DPK_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DPK_ETH_LEN 14
#define DPK_IP4_LEN 20
#define DPK_IP6_LEN 40
#define DPK_UDP_LEN 8
/* Bytes in front of a UDP payload that dpk_udp_headers() writes. */
#define DPK_UDP4_HEADROOM (DPK_ETH_LEN + DPK_IP4_LEN + DPK_UDP_LEN)
#define DPK_UDP6_HEADROOM (DPK_ETH_LEN + DPK_IP6_LEN + DPK_UDP_LEN)

typedef enum {
    DPK_CLASS_DROP = 0,   /* malformed, looped back, or not for our MAC */
    DPK_CLASS_MEDIA = 1,  /* UDP to a media port of ours: *worker = port partition */
    DPK_CLASS_SIP = 2,    /* UDP to our SIP port: *worker = hash of the source */
    DPK_CLASS_KERNEL = 3, /* everything else: the exception path */
} dpk_class_t;

/* What classification needs. Read-only once the lcores run; each lcore has a copy. */
struct dpk_steer {
    uint8_t mac[6]; /* the data port's MAC (also the kernel interface's) */
    bool has_ip4, has_ip6;
    uint8_t ip4[4];     /* our IPv4 address, network order */
    uint8_t ip6[16];    /* our IPv6 address */
    uint16_t sip_port;  /* UDP SIP port, host order; 0 = no SIP over UDP */
    uint16_t media_min; /* media port range, host order, inclusive; base of the */
    uint16_t media_max; /* port partition (media.port_min) */
    unsigned workers;   /* 1.. */
};

/* Where the fields of a parsed UDP frame are. Addresses are copied, network order. */
struct dpk_pkt_info {
    uint8_t family;       /* 4 or 6; 0 when not IP */
    uint8_t proto;        /* IP protocol (17 = UDP) */
    uint16_t l3_off;      /* IP header */
    uint16_t payload_off; /* UDP payload (valid for UDP only) */
    uint16_t payload_len;
    uint16_t src_port, dst_port; /* host order (UDP only) */
    uint8_t src_mac[6];
    uint8_t src_ip[16], dst_ip[16]; /* IPv4 in the first 4 bytes */
};

/* Classifies one frame of `len` bytes for steering. Fills *info as far as parsed
 * (always its family, and for MEDIA/SIP every field), and *worker for MEDIA and SIP
 * (0..s->workers-1). Returns the class; never fails otherwise. */
dpk_class_t dpk_classify(const struct dpk_steer *s, const uint8_t *frame, size_t len,
                         struct dpk_pkt_info *info, unsigned *worker);

/* The worker a SIP datagram from (family, address, port) goes to: a hash of the
 * source, 0..workers-1. Pure. `addr` holds 4 (IPv4) or 16 (IPv6) bytes. */
unsigned dpk_flow_worker(uint8_t family, const uint8_t *addr, uint16_t port, unsigned workers);

/* Internet checksum (RFC 1071) helpers: the 32-bit running sum over `len` bytes
 * added to `sum`, and its folded one's complement. */
uint32_t dpk_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t dpk_csum_fold(uint32_t sum);

/* Addresses and ports of a UDP datagram we send. */
struct dpk_udp_addrs {
    uint8_t family; /* 4 or 6 */
    uint8_t src_mac[6], dst_mac[6];
    uint8_t src_ip[16], dst_ip[16]; /* network order; IPv4 in the first 4 bytes */
    uint16_t src_port, dst_port;    /* host order */
    uint8_t tos;                    /* IPv4 TOS / IPv6 traffic class (DSCP << 2) */
};

/* Writes the Ethernet, IP and UDP headers in front of a payload: `frame` has room
 * for DPK_UDP4_HEADROOM (IPv4) or DPK_UDP6_HEADROOM (IPv6) bytes followed by the
 * payload_len bytes of payload already in place. The IPv4 header checksum is always
 * filled in; the UDP checksum when `udp_csum` (IPv6 always, as RFC 8200 requires).
 * Returns the frame length, or -1 when family is not 4 or 6, or the datagram would
 * exceed 65535 bytes. */
int dpk_udp_headers(uint8_t *frame, const struct dpk_udp_addrs *a, size_t payload_len,
                    bool udp_csum);

/* Checks the IPv4 header checksum and, when present, the UDP checksum of a parsed
 * UDP frame. Returns true when every checksum present is right. */
bool dpk_udp_csum_ok(const uint8_t *frame, size_t len, const struct dpk_pkt_info *info);

#endif
