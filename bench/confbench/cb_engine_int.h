/* confbench engine internals: the types the engine and its connection code share.
 * Not a public interface: only cb_engine.c and cb_conn.c include it. */
#ifndef CB_ENGINE_INT_H
#define CB_ENGINE_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "cb_engine.h"
#include "cb_sip.h"
#include "dp_frame.h"

#define CB_REQ_MAX 2048
#define CB_MAX_MSG 65536
#define CB_UDP_BATCH 32
#define CB_UDP_BUF 8192
#define CB_RTP_PAYLOAD 160
#define CB_RTP_INTERVAL_US 20000

enum ev_type { EV_UDP = 1, EV_CONN = 2, EV_MEDIA = 3, EV_SINK = 4, EV_WAKE = 5 };

enum call_state {
    CS_FREE = 0,
    CS_INVITE, /* INVITE sent, no final response yet */
    CS_HOLD,   /* ACK sent, waiting for the hold time */
    CS_BYE,    /* BYE sent */
    CS_REQ,    /* OPTIONS / MESSAGE sent */
};

enum conn_state { CN_CLOSED = 0, CN_CONNECTING, CN_HANDSHAKE, CN_UP };

enum timer_kind { TK_CALL = 0, TK_CONN = 1 };

typedef struct cb_timer {
    uint64_t when;
    uint32_t idx;
    uint32_t seq;
    uint8_t kind;
} cb_timer_t;

typedef struct cb_conn {
    uint32_t gen;
    uint32_t tseq;
    enum conn_state state;
    int fd;
    SSL *ssl;
    unsigned target;
    unsigned bind;
    bool out_armed; /* EPOLLOUT registered */
    char local_host[64];
    unsigned local_port;
    uint64_t t_start;
    char *in;
    size_t in_len, in_cap;
    dp_frame_state_t fst;
    char *out;
    size_t out_len, out_cap;
    unsigned ncalls;
} cb_conn_t;

typedef struct cb_call {
    uint32_t gen;
    uint32_t tseq;
    enum call_state state;
    int conn;        /* stream transports: connection index, else -1 */
    unsigned udp;    /* UDP: socket index */
    unsigned target; /* UDP: target address index */
    uint32_t cseq;
    bool provisional; /* a 1xx arrived for the current transaction */
    bool invite_txn;  /* the current transaction is the INVITE */
    uint64_t t_sent;  /* current transaction's first transmission */
    uint64_t deadline;
    uint64_t rtx_at;
    unsigned rtx_ms;
    char call_id[64];
    char from_tag[20];
    char inv_branch[48];
    char branch[48];
    char to_tag[96];
    char remote[160]; /* remote target (Contact of the 2xx) */
    /* media */
    int media_fd;
    int media_pos; /* index in the worker's media list, -1 when not sending */
    struct sockaddr_storage media_dst;
    socklen_t media_dst_len;
    uint16_t rtp_seq;
    uint32_t rtp_ts, rtp_ssrc;
    uint8_t rtp_pt;
    uint64_t m_sent, m_recv;
    bool media_started;
    unsigned media_port;
    size_t req_len;
    char req[CB_REQ_MAX]; /* last request, for retransmission */
} cb_call_t;

typedef struct cb_udp {
    int fd;
    char host[64];
    unsigned port;
} cb_udp_t;

struct cb_engine;

typedef struct cb_worker {
    cb_counters_t c; /* first: written by this thread only */
    struct cb_engine *e;
    unsigned id;
    pthread_t thread;
    bool started;
    int ep;
    int wake_fd; /* eventfd: the main thread changed the rate or wants us to quit */
    uint64_t rng;
    cb_udp_t udp[CB_MAX_BINDS];
    unsigned nudp;
    int sink_fd;
    unsigned sink_port;
    char sink_host[64];
    cb_call_t *calls;
    unsigned ncalls;
    unsigned *free_calls;
    unsigned nfree;
    cb_conn_t *conns;
    unsigned nconns;
    unsigned *free_conns; /* --conn-per-call */
    unsigned nfree_conns;
    unsigned rr; /* round-robin position */
    cb_timer_t *heap;
    size_t nheap, heap_cap;
    unsigned *media; /* calls sending media */
    unsigned nmedia;
    uint64_t next_media;
    /* pacing */
    unsigned epoch;
    double rate; /* this thread's share, per second */
    uint64_t pace_t0;
    uint64_t launched; /* since pace_t0 */
    uint64_t quota;    /* --count share, 0 = unlimited */
    uint64_t total_launched;
    _Atomic bool count_done;
    _Atomic unsigned applied_epoch; /* the last rate change this thread acted on */
    unsigned char rtp_payload[CB_RTP_PAYLOAD];
    char *udp_bufs;
} cb_worker_t;

struct cb_engine {
    cb_opts_t o;
    cb_addr_t *targets;
    unsigned ntargets;
    struct sockaddr_storage binds[CB_MAX_BINDS];
    socklen_t bind_len[CB_MAX_BINDS];
    unsigned nbinds;
    SSL_CTX *ssl;
    char ruri[400];
    char to_uri[400];
    char from_uri[400];
    unsigned threads;
    cb_worker_t **w;
    _Atomic uint64_t rate_milli;
    _Atomic unsigned rate_epoch;
    _Atomic bool quit;
    bool running;
    _Atomic bool msg_claimed[CB_FAIL_REASONS];
    _Atomic bool msg_ready[CB_FAIL_REASONS];
    char msg[CB_FAIL_REASONS][400];
    _Atomic bool code_seen[CB_CODES];
    _Atomic bool verify_seen[CB_VERIFY_CODES];
};

static inline uint64_t cb_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* epoll data: type, 24 bits of generation, 32 bits of index. */
static inline uint64_t cb_ev_data(enum ev_type t, uint32_t idx, uint32_t gen)
{
    return ((uint64_t)t << 56) | ((uint64_t)(gen & 0xffffffu) << 32) | idx;
}

/* cb_engine.c */
void cb_sa_host(const struct sockaddr_storage *ss, char *host, size_t cap, unsigned *port);
/* Records the first message for a failure reason and prints it (cb_note) or not. */
void cb_note(cb_engine_t *e, cb_fail_t r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cb_note_quiet(cb_engine_t *e, cb_fail_t r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cb_timer_push(cb_worker_t *w, uint64_t when, uint8_t kind, uint32_t idx, uint32_t seq);
/* Fails a live call (no-op for a free slot). */
void cb_call_fail(cb_worker_t *w, cb_call_t *c, cb_fail_t r);
/* One whole message from connection `conn` (>= 0) or UDP socket `udp` (from). */
void cb_handle_message(cb_worker_t *w, const char *buf, size_t len, int conn, unsigned udp,
                       const struct sockaddr_storage *from, socklen_t fromlen);

/* cb_conn.c: TCP and TLS connections of a worker */
/* Opens the connection (non-blocking connect). Returns 0, or -1 after failing it. */
int cb_conn_open(cb_worker_t *w, cb_conn_t *cn);
/* Closes without touching its calls (their owner does). */
void cb_conn_close(cb_worker_t *w, cb_conn_t *cn);
/* Fails every call that uses the connection, then closes it. */
void cb_conn_fail(cb_worker_t *w, cb_conn_t *cn, cb_fail_t r);
/* epoll events for the connection. */
void cb_conn_event(cb_worker_t *w, cb_conn_t *cn, uint32_t events);
/* Queues bytes (opening the connection when closed) and writes what it can.
 * Returns 0, or -1 after the connection failed. */
int cb_conn_send(cb_worker_t *w, cb_conn_t *cn, const char *buf, size_t len);
/* The TLS client context for the options (CA, verification, client certificate). */
int cb_tls_setup(cb_engine_t *e, char *err, size_t errlen);

#endif
