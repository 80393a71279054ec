/* What control is told at start: the domain, the VMRs, the media port range.
 * Filled by node/config.c; read-only once workers start. */
#ifndef CTL_CONF_H
#define CTL_CONF_H

#include <stddef.h>
#include <stdint.h>

/* SRTP policy for calls to a room (values as enum sdp_srtp_policy). */
enum ctl_srtp_policy {
    CTL_SRTP_DEFAULT = 0,  /* a room without its own: media.srtp */
    CTL_SRTP_OFF = 1,      /* plain RTP only; RTP/SAVP lines are rejected */
    CTL_SRTP_OPTIONAL = 2, /* either; a secure line is preferred when both are offered */
    CTL_SRTP_REQUIRED = 3, /* RTP/SAVP with a=crypto only; a plain offer gets 488 */
};

struct ctl_vmr_conf {
    char alias[256];   /* "meet@example.test": user@domain a caller dials */
    char name[128];    /* display name of the room */
    uint32_t answer_delay_ms; /* answer INVITEs after this long (ringing); 0 = at once */
    int srtp;                 /* enum ctl_srtp_policy; CTL_SRTP_DEFAULT = media.srtp */
    unsigned mix_speakers;    /* loudest N mixed; 0 = media.mix_speakers */
};

struct ctl_conf {
    char domain[256];         /* our SIP domain, e.g. "example.test" */
    char node_name[64];       /* used in Warning headers and logs */
    int clustered;            /* rooms are placed through the cluster store */
    int accept_preloaded_routes; /* follow a new request's Route set from any peer */
    char media_address[64];   /* IP address put in SDP c= lines */
    uint16_t media_port_min;  /* first media port (even) */
    uint16_t media_port_max;  /* last media port */
    int srtp;                 /* enum ctl_srtp_policy, never DEFAULT; default optional */
    uint32_t media_timeout_ms;/* no RTP this long ends the call with a BYE; 0 = never */
    unsigned mix_speakers;    /* loudest N speakers mixed, 1..8; default 3 */
    uint32_t t1_ms;           /* RFC 3261 T1, default 500 */
    uint32_t t2_ms;           /* RFC 3261 T2, default 4000 */
    uint32_t t4_ms;           /* RFC 3261 T4, default 5000 */
    uint32_t max_transactions;/* per worker; beyond it new requests get 503 */
    uint32_t max_dialogs;     /* per worker */
    struct ctl_vmr_conf *vmrs;/* owned by the config; n_vmrs entries */
    size_t n_vmrs;
};

#endif
