/* What control is told at start: the domain, the VMRs, the media port range.
 * Filled by node/config.c; read-only once workers start. */
#ifndef CTL_CONF_H
#define CTL_CONF_H

#include <stddef.h>
#include <stdint.h>

struct ctl_vmr_conf {
    char alias[256];   /* "meet@example.test": user@domain a caller dials */
    char name[128];    /* display name of the room */
    uint32_t answer_delay_ms; /* answer INVITEs after this long (ringing); 0 = at once */
};

struct ctl_conf {
    char domain[256];         /* our SIP domain, e.g. "example.test" */
    char node_name[64];       /* used in Warning headers and logs */
    int clustered;            /* rooms are placed through the cluster store */
    char media_address[64];   /* IP address put in SDP c= lines */
    uint16_t media_port_min;  /* first media port (even) */
    uint16_t media_port_max;  /* last media port */
    uint32_t t1_ms;           /* RFC 3261 T1, default 500 */
    uint32_t t2_ms;           /* RFC 3261 T2, default 4000 */
    uint32_t t4_ms;           /* RFC 3261 T4, default 5000 */
    uint32_t max_transactions;/* per worker; beyond it new requests get 503 */
    uint32_t max_dialogs;     /* per worker */
    struct ctl_vmr_conf *vmrs;/* owned by the config; n_vmrs entries */
    size_t n_vmrs;
};

#endif
