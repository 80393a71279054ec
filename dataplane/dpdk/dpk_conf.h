/* Configuration of the DPDK backend (`dataplane = "dpdk"` and the `dpdk` section;
 * docs/dpdk.md, docs/configuration.md). Filled by node/config.c, read-only once the
 * engine starts. Needs no DPDK header: every build knows the keys, and a build
 * without DPDK says so when the backend is asked for. */
#ifndef DPK_CONF_H
#define DPK_CONF_H

#include <stdint.h>

typedef enum {
    DP_BACKEND_SOCKETS = 0, /* kernel sockets, epoll (default) */
    DP_BACKEND_DPDK = 1,    /* EAL + ethdev fast path, kernel exception path */
} dp_backend_t;

typedef enum {
    DPK_HUGE_AUTO = 0, /* hugepages when enough are free, else --no-huge */
    DPK_HUGE_ON = 1,   /* hugepages or a start-up error */
    DPK_HUGE_OFF = 2,  /* --no-huge --no-shconf (tests, CI, small nodes) */
} dpk_huge_t;

typedef enum {
    DPK_EXC_AUTO = 0,        /* virtio-user where /dev/vhost-net exists, else TAP */
    DPK_EXC_TAP = 1,         /* net_tap */
    DPK_EXC_VIRTIO_USER = 2, /* virtio_user on vhost-net */
} dpk_exception_t;

typedef enum {
    DPK_POLL_ADAPTIVE = 0, /* poll while packets come; sleep up to 1 ms when idle */
    DPK_POLL_BUSY = 1,     /* never sleep: lowest latency, one core per worker */
} dpk_poll_t;

struct dpk_conf {
    char device[256];          /* the data port: PCI address ("0000:03:00.0") or a vdev
                                * ("net_af_packet0,iface=eth1,qpairs=2") */
    char lcores[64];           /* EAL -l for EAL's own lcore(s); workers register as lcores */
    uint32_t memory_mb;        /* EAL -m */
    int hugepages;             /* dpk_huge_t */
    char file_prefix[64];      /* EAL --file-prefix; "" = "confnode-<node.name>" */
    int exception;             /* dpk_exception_t */
    char kernel_iface[16];     /* name of the kernel side of the exception path */
    uint32_t prefix_len;       /* sip.listen/prefix_len goes on the kernel interface */
    char gateway[64];          /* default route via this address; "" = none */
    uint32_t mbufs;            /* mbufs in the pool (all ports and workers) */
    uint32_t rx_desc, tx_desc; /* descriptors per queue */
    uint32_t burst;            /* packets per rx/tx burst */
    int poll;                  /* dpk_poll_t */
    char eal_args[512];        /* more EAL arguments, space-separated, appended last */
};

#endif
