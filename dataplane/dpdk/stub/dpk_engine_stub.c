/* The DPDK backend in a build without DPDK: every entry point says so. Built instead
 * of eal/dpk_engine.c when pkg-config does not find libdpdk (or CONFNODE_DPDK=OFF). */
#include <stdio.h>

#include "dpk_engine.h"

struct dpk_engine *dpk_engine_create(const struct dp_conf *conf, const char *media_address,
                                     uint16_t media_min, uint16_t media_max, dp_handler_t *h,
                                     char *err, size_t errlen)
{
    (void)conf;
    (void)media_address;
    (void)media_min;
    (void)media_max;
    (void)h;
    snprintf(err, errlen,
             "dataplane: missing capability: 'dpdk' asked for, but this build has no DPDK "
             "(install libdpdk-dev and rebuild with -DCONFNODE_DPDK=ON, or set dataplane = "
             "'sockets')");
    return NULL;
}

void dpk_engine_free(struct dpk_engine *e)
{
    (void)e;
}

const struct dpk_stats *dpk_engine_stats(const struct dpk_engine *e, unsigned worker)
{
    (void)e;
    (void)worker;
    return NULL;
}

int dpk_engine_port_stats(const struct dpk_engine *e, int which, struct dpk_port_stats *out)
{
    (void)e;
    (void)which;
    (void)out;
    return -1;
}

int dpk_available(void)
{
    return 0;
}
