/* A point-in-time copy of the node's counters, for the admin API.
 * Filled by the control thread from each worker's own counters (relaxed atomic
 * loads; workers never wait for it). */
#ifndef CN_SNAPSHOT_H
#define CN_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>

#define CN_MAX_WORKERS 128

struct cn_worker_snapshot {
    unsigned id;
    int cpu;                       /* CPU it is pinned to, -1 when not pinned */
    /* gauges */
    uint64_t connections;          /* open TCP + TLS connections */
    uint64_t transactions;         /* live server transactions */
    uint64_t dialogs;              /* live dialogs */
    uint64_t calls;                /* confirmed calls (dialogs from INVITE) */
    /* counters */
    uint64_t rx_messages, tx_messages, rx_bytes, tx_bytes;
    uint64_t bad_messages;         /* answered 400 or dropped as unparseable */
    uint64_t conns_accepted;
    uint64_t conns_closed_oversize, conns_closed_idle, conns_closed_error;
    uint64_t tls_handshakes, tls_handshake_failures;
    uint64_t keepalive_pings;
    uint64_t retransmissions_absorbed, retransmissions_sent;
    uint64_t calls_total;
    uint64_t ring_drops;
    /* media (dataplane/dp_media.h): gauges, then counters */
    uint64_t media_legs, media_conferences;
    uint64_t media_rtp_in, media_rtp_out, media_rtcp_in, media_rtcp_out;
    uint64_t media_bytes_in, media_bytes_out;
    uint64_t media_srtp_auth_failures, media_srtp_replays, media_srtp_other_failures;
    uint64_t media_drop_malformed, media_drop_unexpected, media_drop_jitter;
    uint64_t media_drop_oversize, media_drop_send;
    uint64_t media_dtmf_packets, media_mixer_ticks, media_mixer_overruns;
    uint64_t media_speaker_switches, media_keyframe_requests, media_video_forwarded;
    uint64_t media_feedback_forwarded, media_rtcp_byes, media_timeouts, media_latches;
    uint64_t media_conf_reuses, media_port_binds, media_port_reuses, media_port_idle_drops;
    uint64_t responses[7];         /* by class: [1]=1xx ... [6]=6xx; [0] unused */
};

/* The cluster store (cl_store_status) and this node's drain state. */
struct cn_cluster_snapshot {
    const char *mode;       /* "standalone" / "redis"; NULL: not reported */
    bool connected;         /* redis: a verified primary is in use */
    bool degraded;          /* redis: answering from local state */
    int64_t degraded_since; /* unix seconds, 0 when not degraded */
    char primary[80];       /* current or last primary "IP:port", "" before the first */
    uint64_t failovers;     /* primary address changes seen */
    uint64_t reconnects;    /* successful connections after the first */
    uint64_t conferences;   /* conferences this node owns */
    bool draining;          /* takes no new conferences */
    bool left;              /* drained and idle: out of the cluster registry */
};

struct cn_snapshot {
    const char *version;
    const char *node_name;
    double uptime_s;
    unsigned n_workers;
    struct cn_worker_snapshot workers[CN_MAX_WORKERS];
    struct cn_cluster_snapshot cluster;
    const char *extra_metrics;     /* more Prometheus lines (the DPDK backend's), or NULL */
};

/* Fills `out` (provided by the admin server on each request). */
typedef void (*cn_snapshot_fn)(void *arg, struct cn_snapshot *out);

#endif
