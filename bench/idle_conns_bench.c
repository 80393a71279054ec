/* idle_conns_bench: opens many TLS connections to one server and holds them idle, so
 * that bench/idle_conns.sh can read the server's memory with them open.
 *
 *   idle_conns_bench HOST:PORT COUNT [options]
 *     --ca FILE        verify the server chain against FILE (default: no verification)
 *     --name NAME      SNI and the host name to verify (default sip.example.test)
 *     --sources SPEC   source addresses "127.0.0.2-127.0.0.254" (a range of the last
 *                      octet) or "A,B,C"; connections cycle over them (default
 *                      127.0.0.2-127.0.0.254, so 10,000 connections need ~40 ports each)
 *     --inflight N     handshakes in progress at most (default 64)
 *     --timeout SECS   give up on the whole set after SECS (default 120)
 *     --hold SECS      after the set is up, hold it this long, then close (default:
 *                      until a line arrives on standard input, EOF, or SIGTERM/SIGINT)
 *
 * Each connection: non-blocking TCP connect from the next source address, full TLS
 * handshake (TLS 1.2+; no session resumption), then nothing: no SIP, no keep-alive.
 * Closing sends a TLS close_notify (without waiting for the server's) and closes.
 * Session tickets the server sends after a TLS 1.3 handshake are read and dropped as
 * they arrive. When every connection is established or has failed it prints one line
 *   ready established=N failed=F seconds=S
 * on standard output (flushed), holds, then closes everything, prints
 *   closed established=N lost=L
 * (L: connections the server closed while they were held) and exits 0 when every
 * connection was established and none was lost, 1 otherwise, 2 on a usage error.
 * RLIMIT_NOFILE is raised to COUNT + 64 (the hard limit too, when allowed). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define MAX_SOURCES 1024
#define MAX_COUNT 1000000

enum cstate { C_FREE = 0, C_CONNECTING, C_HANDSHAKE, C_IDLE, C_DEAD };

struct conn {
    int fd;
    SSL *ssl;
    enum cstate st;
};

struct opts {
    struct sockaddr_in dst;
    unsigned count;
    const char *ca;
    const char *name;
    struct in_addr src[MAX_SOURCES];
    unsigned nsrc;
    unsigned inflight;
    unsigned timeout_s;
    int hold_s; /* -1: until stdin line / EOF / signal */
};

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(void)
{
    fprintf(stderr, "usage: idle_conns_bench HOST:PORT COUNT [--ca FILE] [--name NAME] "
                    "[--sources SPEC] [--inflight N] [--timeout SECS] [--hold SECS]\n");
    return 2;
}

/* Parses "A.B.C.X-Y" (a range of the last octet) or "A,B,C" into o->src. Returns 0 or
 * -1 on a malformed spec. Does not modify spec. */
static int parse_sources(struct opts *o, const char *spec)
{
    char buf[4096];
    if (strlen(spec) >= sizeof buf)
        return -1;
    strcpy(buf, spec);
    o->nsrc = 0;
    char *dash = strchr(buf, '-');
    if (dash != NULL && strchr(buf, ',') == NULL) {
        *dash = '\0';
        struct in_addr first;
        char *end;
        long last = strtol(dash + 1, &end, 10);
        if (inet_pton(AF_INET, buf, &first) != 1 || *end != '\0' || last < 0 || last > 255)
            return -1;
        uint32_t a = ntohl(first.s_addr);
        for (long x = (long)(a & 0xff); x <= last && o->nsrc < MAX_SOURCES; x++) {
            o->src[o->nsrc].s_addr = htonl((a & 0xffffff00u) | (uint32_t)x);
            o->nsrc++;
        }
        return o->nsrc > 0 ? 0 : -1;
    }
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        if (o->nsrc == MAX_SOURCES || inet_pton(AF_INET, t, &o->src[o->nsrc]) != 1)
            return -1;
        o->nsrc++;
    }
    return o->nsrc > 0 ? 0 : -1;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof *o);
    o->name = "sip.example.test";
    o->inflight = 64;
    o->timeout_s = 120;
    o->hold_s = -1;
    if (argc < 3)
        return -1;
    char host[256];
    const char *colon = strrchr(argv[1], ':');
    unsigned port;
    if (colon == NULL || (size_t)(colon - argv[1]) >= sizeof host ||
        parse_uint(colon + 1, 1, 65535, &port) != 0)
        return -1;
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    o->dst.sin_family = AF_INET;
    o->dst.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &o->dst.sin_addr) != 1)
        return -1;
    if (parse_uint(argv[2], 1, MAX_COUNT, &o->count) != 0)
        return -1;
    if (parse_sources(o, "127.0.0.2-254") != 0)
        return -1;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned u;
        if (v == NULL)
            return -1;
        if (strcmp(a, "--ca") == 0) {
            o->ca = v;
        } else if (strcmp(a, "--name") == 0) {
            o->name = v;
        } else if (strcmp(a, "--sources") == 0) {
            if (parse_sources(o, v) != 0)
                return -1;
        } else if (strcmp(a, "--inflight") == 0) {
            if (parse_uint(v, 1, 100000, &o->inflight) != 0)
                return -1;
        } else if (strcmp(a, "--timeout") == 0) {
            if (parse_uint(v, 1, 86400, &o->timeout_s) != 0)
                return -1;
        } else if (strcmp(a, "--hold") == 0) {
            if (parse_uint(v, 0, 86400, &u) != 0)
                return -1;
            o->hold_s = (int)u;
        } else {
            return -1;
        }
        i++;
    }
    return 0;
}

static void raise_nofile(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rl.rlim_cur = need;
    if (rl.rlim_max < need)
        rl.rlim_max = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void conn_close(struct conn *c)
{
    if (c->ssl != NULL && c->st == C_IDLE)
        SSL_shutdown(c->ssl); /* close_notify, as a polite client does (no wait) */
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

/* Starts connection i: socket, bind to its source address, non-blocking connect. */
static int conn_start(const struct opts *o, SSL_CTX *ctx, int ep, struct conn *c, unsigned i)
{
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr = o->src[i % o->nsrc]};
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src) != 0)
        goto fail;
    if (connect(c->fd, (const struct sockaddr *)&o->dst, sizeof o->dst) != 0 &&
        errno != EINPROGRESS)
        goto fail;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        goto fail;
    SSL_set_tlsext_host_name(c->ssl, o->name);
    if (o->ca != NULL)
        SSL_set1_host(c->ssl, o->name);
    SSL_set_connect_state(c->ssl);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
        goto fail;
    c->st = C_CONNECTING;
    return 0;
fail:
    conn_close(c);
    return -1;
}

/* Drives the handshake; returns 1 when done, 0 when it wants more I/O, -1 on failure. */
static int conn_step(int ep, struct conn *c, unsigned i)
{
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->st = C_IDLE;
        return 1;
    }
    int e = SSL_get_error(c->ssl, r);
    uint32_t want = e == SSL_ERROR_WANT_READ ? EPOLLIN : e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : 0;
    if (want == 0)
        return -1;
    struct epoll_event ev = {.events = want, .data.u32 = i};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->st = C_HANDSHAKE;
    return 0;
}

/* An idle connection became readable: session tickets (read and dropped) or a close. */
static bool idle_readable(struct conn *c)
{
    char buf[4096];
    for (int n = 0; n < 16; n++) {
        int r = SSL_read(c->ssl, buf, sizeof buf);
        if (r > 0)
            continue;
        int e = SSL_get_error(c->ssl, r);
        return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
    }
    return true;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0)
        return usage();
    raise_nofile(o.count + 64);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int rc = 1;
    int ep = -1;
    struct conn *cs = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto out;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (o.ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, o.ca, NULL) != 1) {
            fprintf(stderr, "idle_conns_bench: cannot load %s\n", o.ca);
            goto out;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    cs = calloc(o.count, sizeof *cs);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (cs == NULL || ep < 0)
        goto out;
    for (unsigned i = 0; i < o.count; i++)
        cs[i].fd = -1;

    double t0 = now_s();
    unsigned next = 0, inflight = 0, established = 0, failed = 0;
    char first_err[256] = "";
    struct epoll_event evs[256];
    while (established + failed < o.count && !stop_flag) {
        while (next < o.count && inflight < o.inflight) {
            if (conn_start(&o, ctx, ep, &cs[next], next) == 0) {
                inflight++;
            } else {
                if (first_err[0] == '\0')
                    snprintf(first_err, sizeof first_err, "connection %u: %s", next,
                             strerror(errno));
                cs[next].st = C_DEAD;
                failed++;
            }
            next++;
        }
        if (now_s() - t0 > o.timeout_s) {
            fprintf(stderr, "idle_conns_bench: timeout after %u s\n", o.timeout_s);
            break;
        }
        int n = epoll_wait(ep, evs, 256, 200);
        for (int k = 0; k < n; k++) {
            unsigned i = evs[k].data.u32;
            struct conn *c = &cs[i];
            if (c->st == C_IDLE) {
                if (!idle_readable(c) || (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                    conn_close(c);
                    c->st = C_DEAD;
                    established--;
                    failed++;
                }
                continue;
            }
            if (c->st != C_CONNECTING && c->st != C_HANDSHAKE)
                continue;
            int r = conn_step(ep, c, i);
            if (r == 0)
                continue;
            inflight--;
            if (r == 1) {
                established++;
            } else {
                if (first_err[0] == '\0') {
                    unsigned long e = ERR_peek_last_error();
                    snprintf(first_err, sizeof first_err, "connection %u: TLS handshake: %s", i,
                             e ? ERR_reason_error_string(e) : "connection closed");
                }
                ERR_clear_error();
                conn_close(c);
                c->st = C_DEAD;
                failed++;
            }
        }
    }
    if (first_err[0] != '\0')
        fprintf(stderr, "idle_conns_bench: first failure: %s\n", first_err);
    printf("ready established=%u failed=%u seconds=%.2f\n", established, failed + (o.count - next),
           now_s() - t0);
    fflush(stdout);

    /* hold: drop session tickets, notice closes, stop on stdin line/EOF, signal or --hold */
    unsigned lost = 0;
    double hold_end = o.hold_s >= 0 ? now_s() + o.hold_s : 0;
    struct epoll_event in_ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (o.hold_s < 0)
        epoll_ctl(ep, EPOLL_CTL_ADD, 0, &in_ev); /* fails for /dev/null: signals only */
    while (!stop_flag && (o.hold_s < 0 || now_s() < hold_end)) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int k = 0; k < n; k++) {
            unsigned i = evs[k].data.u32;
            if (i == UINT32_MAX) {
                stop_flag = 1;
                continue;
            }
            struct conn *c = &cs[i];
            if (c->st != C_IDLE)
                continue;
            if (!idle_readable(c) || (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
                conn_close(c);
                c->st = C_DEAD;
                lost++;
            }
        }
    }
    for (unsigned i = 0; i < o.count; i++)
        conn_close(&cs[i]);
    printf("closed established=%u lost=%u\n", established, lost);
    rc = established == o.count && lost == 0 ? 0 : 1;
out:
    if (ep >= 0)
        close(ep);
    free(cs);
    SSL_CTX_free(ctx);
    return rc;
}
