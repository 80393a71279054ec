/* /metrics lines of the DPDK backend (dpk_engine_metrics, see dpk_engine.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "dpk_engine.h"

struct out {
    char *buf;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->len + 1 >= o->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = (size_t)n >= o->cap - o->len ? o->cap - 1 : o->len + (size_t)n;
}

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#define W(field, help)                                                                             \
    {                                                                                              \
#field, help, offsetof(struct dpk_stats, field)                                            \
    }
static const struct {
    const char *name, *help;
    size_t off;
} worker_fields[] = {
    W(rx_data, "Frames this worker polled from the DPDK data port."),
    W(tx_data, "Frames this worker sent on the DPDK data port."),
    W(rx_exception, "Frames the kernel sent out through the exception port, polled here."),
    W(tx_exception, "Frames this worker handed to the kernel through the exception port."),
    W(steered_out, "Frames handed to their owner worker's ring."),
    W(steered_in, "Frames taken from this worker's ring."),
    W(sip_udp, "SIP datagrams handed up from the fast path."),
    W(media_fast, "Media datagrams handed to the media worker from the fast path."),
    W(media_tx, "Media datagrams sent on the data port."),
    W(media_kernel, "Media datagrams sent through the kernel (next hop not known yet)."),
    W(neigh_miss, "Datagrams whose next-hop MAC was not known."),
    W(drop_class, "Frames dropped: malformed, looped back, or for another MAC."),
    W(drop_ring, "Frames dropped: a steering or relay ring was full."),
    W(drop_tx, "Frames a port did not take."),
};

size_t dpk_engine_metrics(const struct dpk_engine *e, char *buf, size_t cap)
{
    struct out o = {.buf = buf, .cap = cap};
    if (!buf || cap == 0)
        return 0;
    buf[0] = 0;
    if (!e)
        return 0;
    static const char *const port_names[2] = {"data", "exception"};
    struct dpk_port_stats ps[2];
    int have[2] = {dpk_engine_port_stats(e, 0, &ps[0]) == 0,
                   dpk_engine_port_stats(e, 1, &ps[1]) == 0};
    put(&o, "# HELP confnode_dpdk_port_packets_total Packets counted by the DPDK port "
            "(data: the wire; exception: the kernel interface).\n"
            "# TYPE confnode_dpdk_port_packets_total counter\n");
    for (int p = 0; p < 2; p++)
        if (have[p])
            put(&o,
                "confnode_dpdk_port_packets_total{port=\"%s\",direction=\"rx\"} %" PRIu64 "\n"
                "confnode_dpdk_port_packets_total{port=\"%s\",direction=\"tx\"} %" PRIu64 "\n",
                port_names[p], ps[p].ipackets, port_names[p], ps[p].opackets);
    put(&o, "# HELP confnode_dpdk_port_bytes_total Bytes counted by the DPDK port.\n"
            "# TYPE confnode_dpdk_port_bytes_total counter\n");
    for (int p = 0; p < 2; p++)
        if (have[p])
            put(&o,
                "confnode_dpdk_port_bytes_total{port=\"%s\",direction=\"rx\"} %" PRIu64 "\n"
                "confnode_dpdk_port_bytes_total{port=\"%s\",direction=\"tx\"} %" PRIu64 "\n",
                port_names[p], ps[p].ibytes, port_names[p], ps[p].obytes);
    put(&o, "# HELP confnode_dpdk_port_dropped_total Packets the DPDK port lost "
            "(missed: RX ring full; errors; nombuf: no mbuf free).\n"
            "# TYPE confnode_dpdk_port_dropped_total counter\n");
    for (int p = 0; p < 2; p++)
        if (have[p])
            put(&o,
                "confnode_dpdk_port_dropped_total{port=\"%s\",reason=\"missed\"} %" PRIu64 "\n"
                "confnode_dpdk_port_dropped_total{port=\"%s\",reason=\"rx_errors\"} %" PRIu64 "\n"
                "confnode_dpdk_port_dropped_total{port=\"%s\",reason=\"tx_errors\"} %" PRIu64 "\n"
                "confnode_dpdk_port_dropped_total{port=\"%s\",reason=\"nombuf\"} %" PRIu64 "\n",
                port_names[p], ps[p].imissed, port_names[p], ps[p].ierrors, port_names[p],
                ps[p].oerrors, port_names[p], ps[p].rx_nombuf);
    for (size_t f = 0; f < sizeof worker_fields / sizeof worker_fields[0]; f++) {
        put(&o, "# HELP confnode_dpdk_%s_total %s\n# TYPE confnode_dpdk_%s_total counter\n",
            worker_fields[f].name, worker_fields[f].help, worker_fields[f].name);
        const struct dpk_stats *s;
        for (unsigned w = 0; (s = dpk_engine_stats(e, w)) != NULL; w++)
            put(&o, "confnode_dpdk_%s_total{worker=\"%u\"} %" PRIu64 "\n", worker_fields[f].name, w,
                ld((const _Atomic uint64_t *)(const void *)((const char *)s +
                                                            worker_fields[f].off)));
    }
    return o.len;
}
