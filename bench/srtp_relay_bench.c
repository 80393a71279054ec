/* srtp_relay_bench: the load side of bench/media_relay.sh, and the raw libsrtp2 loop
 * the relay is compared with.
 *
 *   srtp_relay_bench raw [--seconds S] [--payload N] [--out-suite NAME]
 *       The work an SRTP-to-SRTP relay does per packet, on one core, in memory: unprotect
 *       with the sender's key (AES_CM_128_HMAC_SHA1_80), protect with the receiver's key
 *       (--out-suite, default AES_CM_128_HMAC_SHA1_80), libsrtp2 through md_srtp,
 *       12-byte RTP header + N-byte payload (default 160).
 *       The packets are protected beforehand, untimed, in batches of 8192. Prints
 *         raw pairs=P cpu_s=C wall_s=W pairs_per_cpu_s=X
 *
 *   srtp_relay_bench gen --to IP:PORT --from-port P --key CRYPTO
 *                        --recv-port Q --recv-key CRYPTO --rates R1,R2,... --seconds S
 *                        [options]
 *       For each rate in turn (one stream, one SRTP context per side for the whole run,
 *       as in a real call): sends SRTP packets (protected with --key, an a=crypto value
 *       such as "1 AES_CM_128_HMAC_SHA1_80 inline:...") from 127.0.0.1:P to IP:PORT at
 *       R packets/s for S seconds, with sendmmsg; receives what the relay forwards on
 *       127.0.0.1:Q with recvmmsg and unprotects it with --recv-key (the relay's key
 *       towards that receiver), counting what authenticates. Options:
 *         --pt N              payload type of the stream (default 96); the payload starts
 *                             with a VP8 descriptor and a keyframe header, so a video
 *                             switch forwards it
 *         --audio-to IP:PORT --audio-from-port P --audio-key CRYPTO
 *                             also 50 packets/s of loud PCMU (PT 0) SRTP from P, so a
 *                             conference makes this sender the active speaker
 *         --warmup S          before the measured S seconds: audio plus 50 video
 *                             packets/s for S seconds (default 0)
 *         --sink-port P       bind 127.0.0.1:P and discard what arrives (repeatable)
 *         --relay-pid PID     read PID's CPU time (/proc/PID/stat) at the start and the
 *                             end of the measured window
 *         --payload N         payload bytes (default 160)
 *         --max-loss PCT      stop after the first step that lost more than PCT % or
 *                             could not send 90% of its packets (default 100: never)
 *       A backlog (the generator was not scheduled) is caught up by at most 5 ms worth
 *       of packets; the rest is skipped, not sent in one burst. After the window it
 *       keeps receiving for 0.5 s, then prints one line per step
 *         gen rate=R sent=N received=M auth_fail=A replay=R other_fail=O elapsed_s=E
 *             relay_cpu_s=C gen_cpu_s=G payload=P skipped=K
 *       (one line). Exit 0 when it ran (losses are for the caller to judge), 1 on a
 *       setup failure, 2 on a usage error. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_rtp.h"
#include "md_sdes.h"
#include "md_srtp.h"

#define MAX_PAYLOAD 1400
#define BUFSZ (12 + MAX_PAYLOAD + MD_SRTP_MAX_TRAILER + 16)
#define BATCH 64
#define RAW_BATCH 8192
#define MAX_SINKS 8

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* utime + stime of pid in seconds from /proc/pid/stat, or -1. */
static double proc_cpu_s(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void make_rtp(uint8_t *p, uint8_t pt, uint32_t i, uint32_t ssrc, size_t payload,
                     uint32_t ts_step)
{
    p[0] = 0x80;
    p[1] = pt;
    md_rtp_set_seq(p, (uint16_t)(i + 1000));
    md_rtp_set_ts(p, i * ts_step);
    md_rtp_set_ssrc(p, ssrc);
    memset(p + 12, (int)(0x5a ^ (i & 0xff)), payload);
}

static int make_ctx(struct md_srtp **out, const char *crypto, md_srtp_dir_t dir)
{
    struct md_crypto c;
    if (md_sdes_parse(crypto, strlen(crypto), &c) != MD_OK) {
        fprintf(stderr, "srtp_relay_bench: cannot parse a=crypto value '%s'\n", crypto);
        return -1;
    }
    if (md_srtp_create(out, &c, dir) != MD_OK) {
        fprintf(stderr, "srtp_relay_bench: cannot create an SRTP context for '%s'\n", crypto);
        return -1;
    }
    return 0;
}

static int run_raw(double seconds, size_t payload, md_srtp_suite_t out_suite)
{
    struct md_crypto ka = {.tag = 1, .suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80};
    struct md_crypto kb = {.tag = 1, .suite = out_suite};
    struct md_srtp *a_out = NULL, *a_in = NULL, *b_out = NULL;
    uint8_t(*pk)[BUFSZ] = calloc(RAW_BATCH, BUFSZ);
    size_t *len = calloc(RAW_BATCH, sizeof *len);
    int rc = 1;
    if (pk == NULL || len == NULL || md_crypto_keygen(&ka) != MD_OK ||
        md_crypto_keygen(&kb) != MD_OK || md_srtp_create(&a_out, &ka, MD_SRTP_OUTBOUND) != MD_OK ||
        md_srtp_create(&a_in, &ka, MD_SRTP_INBOUND) != MD_OK ||
        md_srtp_create(&b_out, &kb, MD_SRTP_OUTBOUND) != MD_OK) {
        fprintf(stderr, "srtp_relay_bench: raw set-up failed\n");
        goto out;
    }
    uint64_t pairs = 0;
    uint32_t seq = 0;
    double cpu = 0, wall = 0;
    while (cpu < seconds) {
        for (unsigned k = 0; k < RAW_BATCH; k++) {
            make_rtp(pk[k], 96, seq++, 0x1234abcd, payload, 3000);
            len[k] = 12 + payload;
            if (md_srtp_protect(a_out, pk[k], &len[k], BUFSZ) != MD_OK)
                goto out;
        }
        double c0 = cpu_s(CLOCK_THREAD_CPUTIME_ID), w0 = mono_s();
        for (unsigned k = 0; k < RAW_BATCH; k++) {
            if (md_srtp_unprotect(a_in, pk[k], &len[k]) != MD_OK ||
                md_srtp_protect(b_out, pk[k], &len[k], BUFSZ) != MD_OK) {
                fprintf(stderr, "srtp_relay_bench: raw loop failed at packet %u\n", seq);
                goto out;
            }
        }
        cpu += cpu_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        wall += mono_s() - w0;
        pairs += RAW_BATCH;
    }
    printf("raw pairs=%llu cpu_s=%.3f wall_s=%.3f pairs_per_cpu_s=%.0f payload=%zu in=%s out=%s\n",
           (unsigned long long)pairs, cpu, wall, (double)pairs / cpu, payload,
           md_suite_name(ka.suite), md_suite_name(kb.suite));
    rc = 0;
out:
    md_srtp_free(a_out);
    md_srtp_free(a_in);
    md_srtp_free(b_out);
    free(pk);
    free(len);
    return rc;
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *c = strrchr(s, ':');
    if (c == NULL || (size_t)(c - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(c - s));
    host[c - s] = '\0';
    char *end;
    long port = strtol(c + 1, &end, 10);
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    if (*end != '\0' || port < 1 || port > 65535 || inet_pton(AF_INET, host, &out->sin_addr) != 1)
        return -1;
    return 0;
}

static int udp_bound(unsigned port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* 4 MB buffers so that the receiving side never drops a burst; the FORCE variants
       pass net.core.rmem_max when allowed */
    int sz = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "srtp_relay_bench: bind 127.0.0.1:%u: %s\n", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

struct gen {
    struct sockaddr_in to, audio_to;
    unsigned from_port, recv_port, audio_from_port;
    const char *key, *recv_key, *audio_key;
    unsigned rates[16], nrates, pt;
    double max_loss;
    double seconds, warmup;
    size_t payload;
    long relay_pid;
    unsigned sinks[MAX_SINKS], nsinks;
    bool audio;
};

struct counts {
    uint64_t received, auth_fail, replay, other_fail;
};

static void drain(int fd, struct md_srtp *in, struct counts *c)
{
    static uint8_t bufs[BATCH][BUFSZ];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (int round = 0; round < 64; round++) {
        for (unsigned k = 0; k < BATCH; k++) {
            iov[k].iov_base = bufs[k];
            iov[k].iov_len = BUFSZ;
            memset(&msgs[k], 0, sizeof msgs[k]);
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        for (int k = 0; k < n; k++) {
            size_t len = msgs[k].msg_len;
            md_status_t st = md_srtp_unprotect(in, bufs[k], &len);
            if (st == MD_OK)
                c->received++;
            else if (st == MD_ERR_AUTH)
                c->auth_fail++;
            else if (st == MD_ERR_REPLAY)
                c->replay++;
            else
                c->other_fail++;
        }
    }
}

/* Protects and sends n packets of the stream from fd to `to`; returns packets sent. */
static unsigned send_batch(int fd, const struct sockaddr_in *to, struct md_srtp *out, uint8_t pt,
                           uint32_t *seq, uint32_t ssrc, size_t payload, uint32_t ts_step,
                           bool vp8, unsigned n)
{
    static uint8_t bufs[BATCH][BUFSZ];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    if (n > BATCH)
        n = BATCH;
    for (unsigned k = 0; k < n; k++) {
        make_rtp(bufs[k], pt, *seq, ssrc, payload, ts_step);
        if (vp8) {
            bufs[k][12] = 0x10; /* VP8 descriptor: S=1, PID 0 */
            bufs[k][13] = 0x00; /* frame header: P=0, a keyframe */
        } else {
            /* PCMU full-scale square wave: loud enough to be the active speaker */
            for (size_t b = 0; b < payload; b++)
                bufs[k][12 + b] = (b / 4) % 2 ? 0x00 : 0x80;
        }
        size_t len = 12 + payload;
        (*seq)++;
        if (md_srtp_protect(out, bufs[k], &len, BUFSZ) != MD_OK)
            return k;
        iov[k].iov_base = bufs[k];
        iov[k].iov_len = len;
        memset(&msgs[k], 0, sizeof msgs[k]);
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        msgs[k].msg_hdr.msg_name = (void *)to;
        msgs[k].msg_hdr.msg_namelen = sizeof *to;
    }
    int s = sendmmsg(fd, msgs, n, 0);
    return s > 0 ? (unsigned)s : 0;
}

static int run_gen(const struct gen *g)
{
    int rc = 1, vfd = -1, rfd = -1, afd = -1, sfd[MAX_SINKS];
    struct md_srtp *v_out = NULL, *r_in = NULL, *a_out = NULL;
    for (unsigned i = 0; i < MAX_SINKS; i++)
        sfd[i] = -1;
    if (make_ctx(&v_out, g->key, MD_SRTP_OUTBOUND) != 0 ||
        make_ctx(&r_in, g->recv_key, MD_SRTP_INBOUND) != 0 ||
        (g->audio && make_ctx(&a_out, g->audio_key, MD_SRTP_OUTBOUND) != 0))
        goto out;
    vfd = udp_bound(g->from_port);
    rfd = udp_bound(g->recv_port);
    if (vfd < 0 || rfd < 0)
        goto out;
    if (g->audio && (afd = udp_bound(g->audio_from_port)) < 0)
        goto out;
    for (unsigned i = 0; i < g->nsinks; i++)
        if ((sfd[i] = udp_bound(g->sinks[i])) < 0)
            goto out;

    /* a fresh SSRC and starting sequence per run: a relay that keeps its SRTP state
       across runs would otherwise drop a new run's packets as replays */
    struct timespec seed;
    clock_gettime(CLOCK_REALTIME, &seed);
    srandom((unsigned)(seed.tv_nsec ^ (seed.tv_sec << 10) ^ getpid()));
    uint32_t vssrc = (uint32_t)random(), assrc = (uint32_t)random() ^ 0x5a5a5a5au;
    uint32_t vseq = (uint32_t)random() & 0x7fff, aseq = (uint32_t)random() & 0x7fff;
    uint64_t asent = 0;
    double t0 = mono_s();
    /* warm-up: audio + 50 video packets/s, not counted */
    while (mono_s() - t0 < g->warmup) {
        double el = mono_s() - t0;
        while (asent < (uint64_t)(el * 50) + 1) {
            if (g->audio)
                send_batch(afd, &g->audio_to, a_out, 0, &aseq, assrc, 160, 160, false, 1);
            send_batch(vfd, &g->to, v_out, (uint8_t)g->pt, &vseq, vssrc, g->payload, 3000,
                       true, 1);
            asent++;
        }
        struct pollfd pf = {.fd = rfd, .events = POLLIN};
        poll(&pf, 1, 5);
        struct counts ignore = {0};
        drain(rfd, r_in, &ignore);
        for (unsigned i = 0; i < g->nsinks; i++) {
            char b[64];
            while (recv(sfd[i], b, sizeof b, MSG_DONTWAIT) > 0) {
            }
        }
    }
    uint64_t audio_base = asent;
    double audio_t0 = mono_s();
    for (unsigned step = 0; step < g->nrates; step++) {
        unsigned rate = g->rates[step];
        struct counts c = {0};
        uint64_t sent = 0;
        double relay0 = g->relay_pid > 0 ? proc_cpu_s(g->relay_pid) : -1;
        double gen0 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
        double w0 = mono_s();
        uint64_t target_total = (uint64_t)((double)rate * g->seconds);
        /* A generator that was not scheduled for a while does not send its backlog in
           one burst (which only measures the receivers' socket buffers): at most 5 ms
           worth of packets are caught up, the rest are skipped and reported. */
        uint64_t skipped = 0, burst_cap = rate / 200 + BATCH;
        /* the window, then 0.5 s more of receiving (audio keeps going throughout) */
        double tail_end = 0;
        for (;;) {
            double now = mono_s(), el = now - w0;
            bool sending = el < g->seconds + 2.0 && (el < g->seconds || sent + skipped < target_total);
            if (!sending && tail_end == 0)
                tail_end = now + 0.5;
            if (!sending && now >= tail_end)
                break;
            uint64_t due = sending ? (uint64_t)(el * rate) : sent + skipped;
            if (due > target_total)
                due = target_total;
            if (due > sent + skipped + burst_cap)
                skipped = due - sent - burst_cap;
            while (sent + skipped < due) {
                uint64_t left = due - sent - skipped;
                unsigned want = left > BATCH ? BATCH : (unsigned)left;
                unsigned n = send_batch(vfd, &g->to, v_out, (uint8_t)g->pt, &vseq, vssrc,
                                        g->payload, 3000, true, want);
                sent += n;
                if (n < want) {
                    /* send buffer full (loopback backlog): wait for room, briefly */
                    struct pollfd po = {.fd = vfd, .events = POLLOUT};
                    poll(&po, 1, 1);
                    break;
                }
                drain(rfd, r_in, &c);
            }
            if (g->audio) {
                while (asent - audio_base < (uint64_t)((now - audio_t0) * 50) + 1) {
                    send_batch(afd, &g->audio_to, a_out, 0, &aseq, assrc, 160, 160, false, 1);
                    asent++;
                }
            }
            drain(rfd, r_in, &c);
            for (unsigned i = 0; i < g->nsinks; i++) {
                char buf[64];
                for (int k = 0; k < 256 && recv(sfd[i], buf, sizeof buf, MSG_DONTWAIT) > 0; k++) {
                }
            }
            struct pollfd pf = {.fd = rfd, .events = POLLIN};
            poll(&pf, 1, sending && sent + skipped < due ? 0 : 1);
        }
        double elapsed = tail_end - 0.5 - w0;
        double relay1 = g->relay_pid > 0 ? proc_cpu_s(g->relay_pid) : -1;
        double gen1 = cpu_s(CLOCK_PROCESS_CPUTIME_ID);
        printf("gen rate=%u sent=%llu received=%llu auth_fail=%llu replay=%llu other_fail=%llu "
               "elapsed_s=%.3f relay_cpu_s=%.3f gen_cpu_s=%.3f payload=%zu skipped=%llu\n",
               rate, (unsigned long long)sent, (unsigned long long)c.received,
               (unsigned long long)c.auth_fail, (unsigned long long)c.replay,
               (unsigned long long)c.other_fail, elapsed,
               relay0 >= 0 && relay1 >= 0 ? relay1 - relay0 : -1.0, gen1 - gen0, g->payload,
               (unsigned long long)skipped);
        fflush(stdout);
        double loss = sent > 0 ? 100.0 * (double)(sent - (c.received < sent ? c.received : sent)) /
                                     (double)sent
                               : 100.0;
        if (loss > g->max_loss || (double)sent < 0.9 * (double)target_total)
            break; /* the ramp ends at its first failing step */
    }
    rc = 0;
out:
    md_srtp_free(v_out);
    md_srtp_free(r_in);
    md_srtp_free(a_out);
    if (vfd >= 0)
        close(vfd);
    if (rfd >= 0)
        close(rfd);
    if (afd >= 0)
        close(afd);
    for (unsigned i = 0; i < MAX_SINKS; i++)
        if (sfd[i] >= 0)
            close(sfd[i]);
    return rc;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: srtp_relay_bench raw [--seconds S] [--payload N] [--out-suite NAME]\n"
            "       srtp_relay_bench gen --to IP:PORT --from-port P --key CRYPTO --recv-port Q\n"
            "                            --recv-key CRYPTO --rates R1,R2,... --seconds S [--pt N]\n"
            "                            [--audio-to IP:PORT --audio-from-port P --audio-key "
            "CRYPTO]\n"
            "                            [--warmup S] [--sink-port P]... [--relay-pid PID]\n"
            "                            [--payload N] [--max-loss PCT]\n");
    return 2;
}

static int parse_num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "R1,R2,..." (packets/s, 1..10000000, at most 16) into g->rates. Returns 0 or -1. */
static int parse_rates(const char *s, struct gen *g)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -1;
    strcpy(buf, s);
    g->nrates = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        double v;
        if (g->nrates == 16 || parse_num(t, 1, 10000000, &v) != 0)
            return -1;
        g->rates[g->nrates++] = (unsigned)v;
    }
    return g->nrates > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    bool raw = strcmp(argv[1], "raw") == 0;
    if (!raw && strcmp(argv[1], "gen") != 0)
        return usage();
    struct gen g = {.pt = 96, .payload = 160, .seconds = 3, .max_loss = 100};
    md_srtp_suite_t out_suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80;
    double v;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL)
            return usage();
        i++;
        if (strcmp(a, "--seconds") == 0 && parse_num(val, 0.1, 3600, &v) == 0) {
            g.seconds = v;
        } else if (strcmp(a, "--payload") == 0 && parse_num(val, 2, MAX_PAYLOAD, &v) == 0) {
            g.payload = (size_t)v;
        } else if (strcmp(a, "--warmup") == 0 && parse_num(val, 0, 60, &v) == 0) {
            g.warmup = v;
        } else if (strcmp(a, "--rate") == 0 || strcmp(a, "--rates") == 0) {
            if (parse_rates(val, &g) != 0)
                return usage();
        } else if (strcmp(a, "--max-loss") == 0 && parse_num(val, 0, 100, &v) == 0) {
            g.max_loss = v;
        } else if (strcmp(a, "--pt") == 0 && parse_num(val, 0, 127, &v) == 0) {
            g.pt = (unsigned)v;
        } else if (strcmp(a, "--from-port") == 0 && parse_num(val, 1, 65535, &v) == 0) {
            g.from_port = (unsigned)v;
        } else if (strcmp(a, "--recv-port") == 0 && parse_num(val, 1, 65535, &v) == 0) {
            g.recv_port = (unsigned)v;
        } else if (strcmp(a, "--audio-from-port") == 0 && parse_num(val, 1, 65535, &v) == 0) {
            g.audio_from_port = (unsigned)v;
        } else if (strcmp(a, "--sink-port") == 0 && parse_num(val, 1, 65535, &v) == 0 &&
                   g.nsinks < MAX_SINKS) {
            g.sinks[g.nsinks++] = (unsigned)v;
        } else if (strcmp(a, "--relay-pid") == 0 && parse_num(val, 1, 1e9, &v) == 0) {
            g.relay_pid = (long)v;
        } else if (strcmp(a, "--to") == 0 && parse_addr(val, &g.to) == 0) {
        } else if (strcmp(a, "--audio-to") == 0 && parse_addr(val, &g.audio_to) == 0) {
            g.audio = true;
        } else if (strcmp(a, "--out-suite") == 0 &&
                   md_suite_from_name(val, strlen(val), &out_suite) == MD_OK) {
        } else if (strcmp(a, "--key") == 0) {
            g.key = val;
        } else if (strcmp(a, "--recv-key") == 0) {
            g.recv_key = val;
        } else if (strcmp(a, "--audio-key") == 0) {
            g.audio_key = val;
        } else {
            return usage();
        }
    }
    if (md_srtp_global_init() != MD_OK) {
        fprintf(stderr, "srtp_relay_bench: libsrtp2 init failed\n");
        return 1;
    }
    if (raw)
        return run_raw(g.seconds, g.payload, out_suite);
    if (g.to.sin_port == 0 || g.from_port == 0 || g.recv_port == 0 || g.key == NULL ||
        g.recv_key == NULL || g.nrates == 0 ||
        (g.audio && (g.audio_from_port == 0 || g.audio_key == NULL)))
        return usage();
    return run_gen(&g);
}
