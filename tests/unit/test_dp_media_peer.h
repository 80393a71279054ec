/* A media test peer for the dp_media tests: a UDP socket that sends 20 ms audio
 * frames of a tone (PCMU, PCMA or Opus, optionally SRTP-protected), synthetic VP8
 * video, RTCP, and records what it receives (decoded audio, video headers, RTCP
 * feedback). Goertzel measures how much of a frequency the received audio holds.
 * Built on the media library (md_*), the same code the node links. */
#ifndef TEST_DP_MEDIA_PEER_H
#define TEST_DP_MEDIA_PEER_H

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "md_codec.h"
#include "md_rtp.h"
#include "md_sdes.h"
#include "md_srtp.h"

#define PEER_PCM_MAX (8000 * 10) /* 10 s of received audio */
#define PEER_VIDEO_MAX 4096

struct peer_video_rx {
    uint32_t ssrc;
    uint16_t seq;
    uint8_t src; /* the sender id written into the payload */
    uint16_t src_seq;
    bool keyframe;
    uint16_t len; /* payload bytes */
};

struct peer {
    int fd;  /* audio (rtcp-mux) */
    int vfd; /* video (rtcp-mux), -1 none */
    uint16_t port, vport;
    struct sockaddr_in to, vto; /* the node's audio / video ports */
    bool secure;
    struct md_crypto key_tx; /* ours: the offer's a=crypto */
    struct md_srtp *tx, *rx, *vtx, *vrx;
    md_codec_id_t codec;
    uint8_t pt;
    struct md_enc *enc;
    struct md_dec *dec;
    struct md_rtp_out out, vout;
    double freq, amp;
    uint64_t sample;
    int16_t *pcm; /* received, decoded */
    size_t n_pcm;
    uint64_t rx_audio, rx_bad;
    /* video */
    uint8_t id;
    bool want_keyframe;
    struct peer_video_rx *vrx_log;
    size_t n_vrx;
    unsigned plis, firs, nacks;
    uint16_t last_nack_pid;
    uint32_t last_fb_media_ssrc;
};

static inline uint64_t peer_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A UDP socket on 127.0.0.1, any free port. */
static inline int peer_socket(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    int rcv = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    return fd;
}

static inline struct sockaddr_in peer_addr(uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
    return a;
}

/* codec: what it sends and decodes; secure: SRTP with a fresh AES_CM_128_HMAC_SHA1_80
 * key (peer_crypto_line gives the offer's a=crypto value). */
static inline int peer_init(struct peer *p, uint8_t id, md_codec_id_t codec, uint8_t pt,
                            double freq, bool secure, bool video)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->vfd = -1;
    if ((p->fd = peer_socket(&p->port)) < 0)
        return -1;
    if (video && (p->vfd = peer_socket(&p->vport)) < 0)
        return -1;
    p->codec = codec;
    p->pt = pt;
    p->freq = freq;
    p->amp = 8000.0;
    p->secure = secure;
    if (md_enc_create(&p->enc, codec, 0) != MD_OK || md_dec_create(&p->dec, codec) != MD_OK)
        return -1;
    p->pcm = calloc(PEER_PCM_MAX, sizeof *p->pcm);
    p->vrx_log = calloc(PEER_VIDEO_MAX, sizeof *p->vrx_log);
    p->out.ssrc = 0x10000000u + id;
    p->out.seq = (uint16_t)(1000u * id);
    p->out.pt = pt;
    p->vout.ssrc = 0x20000000u + id;
    p->vout.seq = (uint16_t)(30000u + 1000u * id);
    p->vout.pt = 96;
    p->want_keyframe = true;
    if (secure) {
        p->key_tx.tag = 1;
        p->key_tx.suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80;
        if (md_crypto_keygen(&p->key_tx) != MD_OK ||
            md_srtp_create(&p->tx, &p->key_tx, MD_SRTP_OUTBOUND) != MD_OK ||
            md_srtp_create(&p->vtx, &p->key_tx, MD_SRTP_OUTBOUND) != MD_OK)
            return -1;
    }
    return p->pcm && p->vrx_log ? 0 : -1;
}

static inline int peer_crypto_line(const struct peer *p, char *out, size_t cap)
{
    return md_sdes_format(out, cap, &p->key_tx);
}

/* The node's answer: its a=crypto value keys what we receive. */
static inline int peer_answer_key(struct peer *p, const char *line)
{
    struct md_crypto c;
    if (md_sdes_parse(line, strlen(line), &c) != MD_OK)
        return -1;
    int rc = md_srtp_create(&p->rx, &c, MD_SRTP_INBOUND) == MD_OK &&
                     md_srtp_create(&p->vrx, &c, MD_SRTP_INBOUND) == MD_OK
                 ? 0
                 : -1;
    return rc;
}

static inline void peer_free(struct peer *p)
{
    if (p->fd >= 0)
        close(p->fd);
    if (p->vfd >= 0)
        close(p->vfd);
    md_srtp_free(p->tx);
    md_srtp_free(p->rx);
    md_srtp_free(p->vtx);
    md_srtp_free(p->vrx);
    md_enc_free(p->enc);
    md_dec_free(p->dec);
    free(p->pcm);
    free(p->vrx_log);
    memset(p, 0, sizeof *p);
    p->fd = p->vfd = -1;
}

/* Builds the next audio packet (a 20 ms frame of the tone) into buf; returns its
 * length. tamper flips a byte of the payload after protection. */
static inline size_t peer_audio_packet(struct peer *p, uint8_t *buf, size_t cap, bool tamper)
{
    int16_t pcm[MD_FRAME_SAMPLES];
    for (int i = 0; i < MD_FRAME_SAMPLES; i++, p->sample++)
        pcm[i] = (int16_t)(p->amp * sin(2.0 * M_PI * p->freq * (double)p->sample / MD_MIX_RATE));
    uint8_t payload[MD_OPUS_MAX_PACKET];
    int n = md_enc_frame(p->enc, pcm, payload, sizeof payload);
    if (n <= 0)
        return 0;
    int h = md_rtp_out_header(&p->out, buf, cap, false, md_codec_ts_step(p->codec), (size_t)n);
    memcpy(buf + h, payload, (size_t)n);
    size_t len = (size_t)h + (size_t)n;
    if (p->secure && md_srtp_protect(p->tx, buf, &len, cap) != MD_OK)
        return 0;
    if (tamper)
        buf[14] ^= 0x40;
    return len;
}

static inline void peer_send_audio(struct peer *p, bool tamper)
{
    uint8_t buf[1500];
    size_t len = peer_audio_packet(p, buf, sizeof buf, tamper);
    if (len)
        sendto(p->fd, buf, len, 0, (struct sockaddr *)&p->to, sizeof p->to);
}

/* A synthetic VP8 packet of `payload` bytes: descriptor (S, partition 0), a key or
 * inter frame byte, then our id and our own sequence number so the receiver can tell
 * the source. */
static inline void peer_send_video_len(struct peer *p, size_t payload)
{
    if (p->vfd < 0 || payload < 5 || payload > 1200)
        return;
    uint8_t buf[1500];
    bool key = p->want_keyframe;
    p->want_keyframe = false;
    uint16_t seq = p->vout.seq;
    int h = md_rtp_out_header(&p->vout, buf, sizeof buf, true, 3000, payload);
    uint8_t *pl = buf + h;
    memset(pl, 0xab, payload);
    pl[0] = 0x10;
    pl[1] = key ? 0x00 : 0x01;
    pl[2] = p->id;
    pl[3] = (uint8_t)(seq >> 8);
    pl[4] = (uint8_t)seq;
    size_t len = (size_t)h + payload;
    if (p->secure && md_srtp_protect(p->vtx, buf, &len, sizeof buf) != MD_OK)
        return;
    sendto(p->vfd, buf, len, 0, (struct sockaddr *)&p->vto, sizeof p->vto);
}

static inline void peer_send_video(struct peer *p)
{
    peer_send_video_len(p, 40);
}

static inline void peer_send_rtcp(struct peer *p, bool video, const uint8_t *pkt, size_t len)
{
    uint8_t buf[1500];
    memcpy(buf, pkt, len);
    if (p->secure && md_srtp_protect_rtcp(video ? p->vtx : p->tx, buf, &len, sizeof buf) != MD_OK)
        return;
    sendto(video ? p->vfd : p->fd, buf, len, 0, (struct sockaddr *)(video ? &p->vto : &p->to),
           sizeof p->to);
}

static inline void peer_on_rtcp(struct peer *p, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    struct md_rtcp r;
    while (md_rtcp_next(buf, len, &off, &r) == 1) {
        if (r.type == MD_RTCP_PSFB && r.count == MD_RTCP_FMT_PLI) {
            p->plis++;
            p->want_keyframe = true;
            p->last_fb_media_ssrc = r.media_ssrc;
        } else if (r.type == MD_RTCP_PSFB && r.count == MD_RTCP_FMT_FIR) {
            p->firs++;
            p->want_keyframe = true;
        } else if (r.type == MD_RTCP_RTPFB && r.count == MD_RTCP_FMT_NACK &&
                   md_rtcp_nack_count(&r) > 0) {
            uint16_t pid, blp;
            md_rtcp_nack_get(&r, 0, &pid, &blp);
            p->nacks++;
            p->last_nack_pid = pid;
            p->last_fb_media_ssrc = r.media_ssrc;
        }
    }
}

/* Reads everything waiting on both sockets. */
static inline void peer_drain(struct peer *p)
{
    uint8_t buf[2048];
    for (int k = 0; k < 2; k++) {
        int fd = k == 0 ? p->fd : p->vfd;
        if (fd < 0)
            continue;
        for (;;) {
            ssize_t n = recv(fd, buf, sizeof buf - 64, 0);
            if (n <= 0)
                break;
            size_t len = (size_t)n;
            if (md_demux(buf, len) == MD_PKT_RTCP) {
                if (p->secure &&
                    md_srtp_unprotect_rtcp(k == 0 ? p->rx : p->vrx, buf, &len) != MD_OK) {
                    p->rx_bad++;
                    continue;
                }
                peer_on_rtcp(p, buf, len);
                continue;
            }
            if (p->secure && md_srtp_unprotect(k == 0 ? p->rx : p->vrx, buf, &len) != MD_OK) {
                p->rx_bad++;
                continue;
            }
            struct md_rtp h;
            if (md_rtp_parse(buf, len, &h) != MD_OK) {
                p->rx_bad++;
                continue;
            }
            if (k == 0) {
                int16_t pcm[MD_FRAME_SAMPLES];
                if (md_dec_frame(p->dec, h.payload, h.payload_len, pcm) == MD_FRAME_SAMPLES &&
                    p->n_pcm + MD_FRAME_SAMPLES <= PEER_PCM_MAX) {
                    memcpy(p->pcm + p->n_pcm, pcm, sizeof pcm);
                    p->n_pcm += MD_FRAME_SAMPLES;
                }
                p->rx_audio++;
            } else if (p->n_vrx < PEER_VIDEO_MAX && h.payload_len >= 5) {
                struct peer_video_rx *v = &p->vrx_log[p->n_vrx++];
                v->ssrc = h.ssrc;
                v->seq = h.seq;
                v->src = h.payload[2];
                v->src_seq = (uint16_t)(h.payload[3] << 8 | h.payload[4]);
                v->keyframe = (h.payload[1] & 1) == 0;
                v->len = (uint16_t)h.payload_len;
            }
        }
    }
}

/* Relative power of `freq` in pcm[0..n) (Goertzel), normalised by the signal's
 * energy: about 0.5 * n for a pure tone, near 0 when absent. */
static inline double goertzel(const int16_t *pcm, size_t n, double freq)
{
    double k = 2.0 * cos(2.0 * M_PI * freq / MD_MIX_RATE), s1 = 0, s2 = 0, energy = 0;
    for (size_t i = 0; i < n; i++) {
        double x = pcm[i];
        double s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
        energy += x * x;
    }
    double power = s1 * s1 + s2 * s2 - k * s1 * s2;
    return energy > 0 ? power / energy : 0.0;
}

#endif
