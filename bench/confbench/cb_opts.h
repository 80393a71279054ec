/* confbench command line: options, defaults and validation.
 *
 * cb_opts_parse() only reads argv and fills a cb_opts_t; it opens no file and
 * resolves no name, so it can be tested on its own. Errors are reported as text in
 * a caller buffer (the program prints it and exits 2).
 */
#ifndef CB_OPTS_H
#define CB_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    CB_SCEN_CALL = 0,  /* INVITE, ACK, hold, BYE */
    CB_SCEN_OPTIONS,   /* one OPTIONS request */
    CB_SCEN_MESSAGE,   /* one MESSAGE request */
    CB_SCEN_HANDSHAKE, /* new TLS connection, OPTIONS, close */
} cb_scenario_t;

typedef enum {
    CB_TP_UDP = 0,
    CB_TP_TCP,
    CB_TP_TLS,
} cb_transport_t;

#define CB_MAX_BINDS 64

typedef struct cb_target_spec {
    char host[256]; /* name, IPv4 or IPv6 (without brackets) */
    uint16_t port;  /* 0: host is a SIP domain, resolved through SRV */
} cb_target_spec_t;

typedef struct cb_ramp {
    bool on;
    double start, step, max; /* calls per second */
    unsigned step_seconds;
    unsigned max_steps; /* bound on the number of steps */
} cb_ramp_t;

typedef struct cb_opts {
    cb_scenario_t scenario;
    cb_transport_t transport;
    cb_target_spec_t target;
    double rate;        /* per second, all threads together */
    unsigned duration;  /* seconds of load (not counting the drain) */
    uint64_t count;     /* 0: unlimited; else stop after this many calls */
    unsigned max_calls; /* concurrency bound */
    unsigned hold_ms;   /* time between ACK and BYE */
    unsigned threads;
    unsigned conns;     /* TCP/TLS connections per thread */
    bool conn_per_call; /* new connection for every call/request */
    unsigned nbinds;
    char binds[CB_MAX_BINDS][64]; /* local source addresses */
    char dns[128];                /* "HOST:PORT" or "" for the system resolver */
    char srv[128];                /* SRV prefix override ("_sips._tcp") or "" */
    char user[64];                /* Request-URI user (the VMR) */
    char domain[256];             /* Request-URI host; "" = the target */
    char from_user[64];
    char from_domain[256]; /* "" = "confbench.invalid" */
    char ca[512], cert[512], key[512];
    char tls_name[256]; /* expected certificate name; "" = from the target */
    char sni[256];      /* "" = tls_name */
    bool no_verify;
    bool media;
    bool srtp;
    unsigned conference; /* --conference N: participants of the check; 0 = off */
    char tones[128];     /* --tones Hz list; "" = 400,700,1100,... */
    char codecs[128];    /* --codec/--codecs list; "" = pcmu */
    bool tamper;         /* --tamper: one SRTP packet of participant 0 with a bad tag */
    int expect;          /* expected final code; 0 = 200 */
    unsigned timeout_ms; /* transaction timeout (Timer B/F), default 64*T1 */
    unsigned t1_ms;
    unsigned t2_ms;
    unsigned drain_s; /* max seconds to wait for calls after the load ends */
    cb_ramp_t ramp;
    char json[512];
    char plot[512];
    char message_body[256];
    int verbose; /* -v: more, -q: less */
    bool help, version;
} cb_opts_t;

/* Fills *o with the defaults. */
void cb_opts_defaults(cb_opts_t *o);

/* Parses argv[1..argc) into *o (defaults first). Returns 0, or -1 with a one-line
 * reason in err. Does not touch argv. */
int cb_opts_parse(int argc, char *const argv[], cb_opts_t *o, char *err, size_t errlen);

/* Parses "host:port", "[v6]:port" or a bare SIP domain into *t. Returns 0 or -1. */
int cb_target_parse(const char *s, cb_target_spec_t *t);

/* Parses a comma-separated list of addresses into o->binds. Returns 0 or -1. */
int cb_binds_parse(const char *s, cb_opts_t *o);

const char *cb_scenario_name(cb_scenario_t s);
const char *cb_transport_name(cb_transport_t t);
/* Via transport token: "UDP", "TCP", "TLS". */
const char *cb_transport_via(cb_transport_t t);

/* The SRV name prefix for a transport: "_sip._udp", "_sip._tcp",
 * "_sipfederationtls._tcp" (unless o->srv overrides it). */
const char *cb_srv_prefix(const cb_opts_t *o);

/* The final code that counts as success for the scenario. */
int cb_expected_code(const cb_opts_t *o);

void cb_opts_usage(FILE *f);

#endif
