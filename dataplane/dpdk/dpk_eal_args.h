/* The EAL command line built from the configuration. Pure: the facts about the
 * machine (free hugepages, /dev/vhost-net) are arguments, so every rule is tested
 * without EAL.
 *
 *   - memory: hugepages (`--in-memory -m N`) when dpdk.hugepages is "on", or "auto"
 *     and at least N MB are free; otherwise `--no-huge --no-shconf -m N` (EAL refuses
 *     --in-memory together with --no-huge);
 *   - the data port: `-a PCI` for a PCI address, else `--vdev SPEC --no-pci`;
 *   - the exception port: `--vdev virtio_user_exc,path=/dev/vhost-net,...` or
 *     `--vdev net_tap_exc,iface=NAME` (DPK_EXC_PORT_NAME);
 *   - `-l`, `--file-prefix` (distinct per node, so nodes can share a machine), then
 *     dpdk.eal_args word by word. */
#ifndef DPK_EAL_ARGS_H
#define DPK_EAL_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "dpk_conf.h"

#define DPK_EAL_MAX_ARGS 48
#define DPK_EXC_TAP_NAME "net_tap_exc"
#define DPK_EXC_VIRTIO_NAME "virtio_user_exc"

struct dpk_eal_args {
    int argc;
    char *argv[DPK_EAL_MAX_ARGS + 1]; /* NULL-terminated; point into buf */
    char buf[2048];
    bool no_huge;         /* --no-huge was chosen */
    int exception;        /* DPK_EXC_TAP or DPK_EXC_VIRTIO_USER: what was chosen */
    const char *exc_name; /* the exception port's device name */
    bool pci;             /* the data port is a PCI device */
    char data_name[128];  /* the data port's device name (vdev name or PCI address) */
};

/* True when s looks like a PCI address: [DDDD:]BB:DD.F in hex. */
bool dpk_is_pci_address(const char *s);

/* Builds the EAL arguments for `c`. prog is argv[0]; default_prefix is used when
 * c->file_prefix is empty; huge_free_mb is what the machine has free in hugepages;
 * vhost_net tells whether /dev/vhost-net exists. Returns 0, or -1 with a reason that
 * names the config field in err (no device; hugepages "on" without enough free;
 * virtio-user asked for without /dev/vhost-net; too many or too long arguments). */
int dpk_eal_args_build(const struct dpk_conf *c, const char *prog, const char *default_prefix,
                       long huge_free_mb, bool vhost_net, struct dpk_eal_args *out, char *err,
                       size_t errlen);

#endif
