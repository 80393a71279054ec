/* The EAL command line (see dpk_eal_args.h). */
#include "dpk_eal_args.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool dpk_is_pci_address(const char *s)
{
    /* [DDDD:]BB:DD.F */
    size_t n = strlen(s);
    const char *p = s;
    if (n == 12) {
        for (int i = 0; i < 4; i++)
            if (!isxdigit((unsigned char)p[i]))
                return false;
        if (p[4] != ':')
            return false;
        p += 5;
    } else if (n != 7) {
        return false;
    }
    return isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1]) && p[2] == ':' &&
           isxdigit((unsigned char)p[3]) && isxdigit((unsigned char)p[4]) && p[5] == '.' &&
           p[6] >= '0' && p[6] <= '7';
}

struct builder {
    struct dpk_eal_args *out;
    size_t used;
    bool overflow;
};

/* Appends one argument (formatted). */
__attribute__((format(printf, 2, 3))) static void arg(struct builder *b, const char *fmt, ...)
{
    struct dpk_eal_args *o = b->out;
    if (b->overflow || o->argc >= DPK_EAL_MAX_ARGS) {
        b->overflow = true;
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + b->used, sizeof o->buf - b->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof o->buf - b->used) {
        b->overflow = true;
        return;
    }
    o->argv[o->argc++] = o->buf + b->used;
    o->argv[o->argc] = NULL;
    b->used += (size_t)n + 1;
}

int dpk_eal_args_build(const struct dpk_conf *c, const char *prog, const char *default_prefix,
                       long huge_free_mb, bool vhost_net, struct dpk_eal_args *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct builder b = {.out = out};
    if (!c->device[0]) {
        snprintf(err, errlen,
                 "dpdk.device: no device given (a PCI address such as 0000:03:00.0, or a "
                 "vdev such as net_af_packet0,iface=eth1)");
        return -1;
    }
    if (c->hugepages == DPK_HUGE_ON && huge_free_mb < (long)c->memory_mb) {
        snprintf(err, errlen,
                 "dpdk.hugepages: not enough memory: 'on' needs dpdk.memory_mb = %u MB of free "
                 "hugepages, the machine has %ld MB (reserve more, lower dpdk.memory_mb, or set "
                 "dpdk.hugepages = 'auto' or 'off')",
                 c->memory_mb, huge_free_mb < 0 ? 0 : huge_free_mb);
        return -1;
    }
    if (c->exception == DPK_EXC_VIRTIO_USER && !vhost_net) {
        snprintf(err, errlen,
                 "dpdk.exception: missing capability: 'virtio-user' needs /dev/vhost-net, "
                 "which this kernel does not have (set 'tap' or 'auto')");
        return -1;
    }
    out->no_huge = c->hugepages == DPK_HUGE_OFF ||
                   (c->hugepages == DPK_HUGE_AUTO && huge_free_mb < (long)c->memory_mb);
    out->exception =
        c->exception == DPK_EXC_VIRTIO_USER || (c->exception == DPK_EXC_AUTO && vhost_net)
            ? DPK_EXC_VIRTIO_USER
            : DPK_EXC_TAP;
    out->exc_name = out->exception == DPK_EXC_TAP ? DPK_EXC_TAP_NAME : DPK_EXC_VIRTIO_NAME;
    out->pci = dpk_is_pci_address(c->device);
    size_t nl = strcspn(c->device, ",");
    snprintf(out->data_name, sizeof out->data_name, "%.*s", (int)nl, c->device);
    if (strcmp(out->data_name, out->exc_name) == 0) {
        snprintf(err, errlen, "dpdk.device: the name %s is taken by the exception port",
                 out->exc_name);
        return -1;
    }

    arg(&b, "%s", prog && prog[0] ? prog : "confnode");
    arg(&b, "-l");
    arg(&b, "%s", c->lcores[0] ? c->lcores : "0");
    arg(&b, "--file-prefix");
    arg(&b, "%s", c->file_prefix[0] ? c->file_prefix : default_prefix);
    arg(&b, "-m");
    arg(&b, "%u", c->memory_mb);
    if (out->no_huge) {
        arg(&b, "--no-huge");
        arg(&b, "--no-shconf");
    } else {
        arg(&b, "--in-memory");
    }
    if (out->pci) {
        arg(&b, "-a");
        arg(&b, "%s", c->device);
    } else {
        arg(&b, "--no-pci");
        arg(&b, "--vdev");
        arg(&b, "%s", c->device);
    }
    arg(&b, "--vdev");
    if (out->exception == DPK_EXC_TAP)
        arg(&b, "%s,iface=%s", DPK_EXC_TAP_NAME, c->kernel_iface);
    else
        arg(&b, "%s,path=/dev/vhost-net,queue_size=1024,iface=%s", DPK_EXC_VIRTIO_NAME,
            c->kernel_iface);
    /* dpdk.eal_args, split on blanks */
    const char *p = c->eal_args;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t w = strcspn(p, " \t");
        if (w)
            arg(&b, "%.*s", (int)w, p);
        p += w;
    }
    if (b.overflow) {
        snprintf(err, errlen, "dpdk.eal_args: too many or too long arguments (at most %d)",
                 DPK_EAL_MAX_ARGS);
        return -1;
    }
    return 0;
}
