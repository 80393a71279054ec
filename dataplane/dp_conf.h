/* What the dataplane is told at start: listeners, limits and TLS material.
 * Filled by node/config.c; read-only once workers start. */
#ifndef DP_CONF_H
#define DP_CONF_H

#include <limits.h>
#include <stdint.h>

#include "dpdk/dpk_conf.h"

typedef enum {
    DP_TLS_VERIFY_NONE = 0,     /* no client certificate asked for */
    DP_TLS_VERIFY_REQUEST = 1,  /* asked for, verified if sent, not required */
    DP_TLS_VERIFY_REQUIRE = 2,  /* handshake fails without a valid client certificate */
} dp_tls_verify_t;

struct dp_tls_conf {
    char certificate[PATH_MAX];  /* PEM chain: leaf first, then intermediates */
    char key[PATH_MAX];          /* PEM private key */
    char ca[PATH_MAX];           /* PEM trusted CA list for peer certificates; "" = none */
    char ciphers[512];           /* TLS 1.2 cipher list (OpenSSL syntax) */
    char ciphersuites[512];      /* TLS 1.3 suites (OpenSSL syntax) */
    int min_version;             /* 12 or 13 */
    dp_tls_verify_t verify_client;
    uint32_t handshake_timeout_ms;
    uint32_t session_cache_size; /* server-side session cache entries; 0 = tickets only */
};

struct dp_conf {
    char listen[64];             /* IP address SIP listens on, e.g. "127.0.0.1" */
    uint16_t udp_port;           /* 0 = no UDP listener */
    uint16_t tcp_port;           /* 0 = no TCP listener */
    uint16_t tls_port;           /* 0 = no TLS listener */
    uint32_t max_message_size;   /* bytes; larger stream messages close the connection */
    uint32_t tcp_idle_timeout_ms;/* close connections idle this long */
    uint32_t max_connections;    /* per worker */
    unsigned workers;            /* resolved count (node turns "auto" into a number) */
    int pin_workers;             /* pin worker w to CPU w % ncpu */
    struct dp_tls_conf tls;
    int backend;                 /* dp_backend_t: DP_BACKEND_SOCKETS (default) or _DPDK */
    struct dpk_conf dpdk;        /* the `dpdk` section, for backend DP_BACKEND_DPDK */
};

#endif
