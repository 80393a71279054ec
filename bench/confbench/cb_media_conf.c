/* confbench --conference: SIP/UDP calls to one room, tones out, mix in, Goertzel. */
#include "cb_media_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cb_media_audio.h"
#include "cb_sip.h"
#include "md_codec.h"
#include "md_rtp.h"
#include "md_sdes.h"
#include "md_srtp.h"

#define CONF_PCM_MAX (MD_MIX_RATE * 120) /* at most 2 minutes of received audio each */
#define OPUS_PT 111

struct part {
    unsigned idx;
    md_codec_id_t codec;
    double tone;
    int sip, rtp;
    uint16_t sip_port, rtp_port;
    struct sockaddr_in to; /* where its SIP goes: target i mod K */
    char to_text[80];
    struct sockaddr_in media_to; /* the answer's c= and m=audio port */
    char media_text[80];         /* "" until answered */
    char call_id[96], from_tag[32], to_tag[96];
    char contact[512]; /* the 2xx's Contact: Request-URI of ACK and BYE */
    char route[1024];  /* the dialog's route set, as a Route header value */
    int nroutes;       /* its entries (0: the node called answered itself) */
    unsigned cseq;
    int status; /* final answer to the INVITE, 0 none */
    bool ended; /* BYE sent and answered, or BYE received */
    struct md_crypto key_tx;
    struct md_srtp *tx, *rx;
    struct md_enc *enc;
    struct md_dec *dec;
    struct md_rtp_out out;
    uint64_t sample;
    int16_t *pcm;
    size_t n_pcm;
    uint64_t sent, received, rejected;
    double ratio[CB_CONF_MAX];
    bool pass;
};

struct conf {
    const cb_opts_t *o;
    char local_ip[64];
    unsigned n;
    struct part p[CB_CONF_MAX];
    char buf[16384];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int udp_socket(const char *ip, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (fd < 0)
        return -1;
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 || bind(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    int rcv = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    return fd;
}

/* The value of header `name` in msg (up to the line end) into out; NULL if absent. */
static const char *sip_hdr(const char *msg, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = strcasestr(msg, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ')
        p++;
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\r\n"), p);
    return out;
}

static void sip_send_to(struct conf *c, struct part *p, const char *msg,
                        const struct sockaddr_in *to)
{
    if (sendto(p->sip, msg, strlen(msg), 0, (const struct sockaddr *)to, sizeof *to) < 0 &&
        c->o->verbose > 0)
        fprintf(stderr, "confbench: participant %u: SIP: %s\n", p->idx, strerror(errno));
}

/* Requests go to the node p called, in and out of the dialog: when that node
 * Record-Routed, it is the first hop of the route set too. */
static void sip_send(struct conf *c, struct part *p, const char *msg)
{
    sip_send_to(c, p, msg, &p->to);
}

/* Answers a request from the node (BYE ends the call) with 200, to where it came
 * from. */
static void answer_request(struct conf *c, struct part *p, const char *msg,
                           const struct sockaddr_in *src)
{
    char via[512], from[256], to[256], cid[128], cseq[64], out[2048];
    if (!sip_hdr(msg, "Via", via, sizeof via) || !sip_hdr(msg, "From", from, sizeof from) ||
        !sip_hdr(msg, "To", to, sizeof to) || !sip_hdr(msg, "Call-ID", cid, sizeof cid) ||
        !sip_hdr(msg, "CSeq", cseq, sizeof cseq))
        return;
    snprintf(out, sizeof out,
             "SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n"
             "Content-Length: 0\r\n\r\n",
             via, from, to, cid, cseq);
    sip_send_to(c, p, out, src);
    if (!strncmp(msg, "BYE ", 4)) {
        p->ended = true;
        fprintf(stderr, "confbench: participant %u: the node ended the call\n", p->idx);
    }
}

/* Reads SIP messages of p; answers requests; returns the status of a response to
 * `method` (0 if none arrived). The response stays in c->buf. */
static int sip_poll(struct conf *c, struct part *p, const char *method)
{
    for (;;) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(p->sip, c->buf, sizeof c->buf - 1, 0, (struct sockaddr *)&from, &fl);
        if (n <= 0)
            return 0;
        c->buf[n] = 0;
        if (strncmp(c->buf, "SIP/2.0 ", 8) != 0) {
            if (fl == sizeof from && from.sin_family == AF_INET)
                answer_request(c, p, c->buf, &from);
            continue;
        }
        char cseq[64];
        if (method && sip_hdr(c->buf, "CSeq", cseq, sizeof cseq) && strstr(cseq, method))
            return atoi(c->buf + 8);
    }
}

/* Sends msg and waits for a final response to method, resending it every T1
 * doubling up to T2 (UDP), for at most the transaction timeout. Returns the final
 * status or 0 on timeout. */
static int transact(struct conf *c, struct part *p, const char *msg, const char *method)
{
    const cb_opts_t *o = c->o;
    uint64_t start = now_ms(), next = start + o->t1_ms;
    unsigned interval = o->t1_ms;
    bool provisional = false;
    sip_send(c, p, msg);
    while (now_ms() - start < o->timeout_ms) {
        struct pollfd pf = {.fd = p->sip, .events = POLLIN};
        poll(&pf, 1, 10);
        int st = sip_poll(c, p, method);
        if (st >= 200)
            return st;
        if (st >= 100)
            provisional = true;
        if (!provisional && now_ms() >= next) {
            sip_send(c, p, msg);
            interval = interval * 2 < o->t2_ms ? interval * 2 : o->t2_ms;
            next = now_ms() + interval;
        }
    }
    return 0;
}

static const char *codec_rtpmap(md_codec_id_t id)
{
    return id == MD_CODEC_OPUS ? "opus/48000/2" : id == MD_CODEC_PCMA ? "PCMA/8000" : "PCMU/8000";
}

static const char *codec_label(md_codec_id_t id)
{
    return id == MD_CODEC_OPUS ? "opus" : id == MD_CODEC_PCMA ? "pcma" : "pcmu";
}

/* Takes the 200's SDP: media address and port, payload type, the node's key. */
static int take_answer(struct conf *c, struct part *p)
{
    const char *body = strstr(c->buf, "\r\n\r\n");
    const char *m = body ? strstr(body, "\nm=audio ") : NULL;
    if (!m) {
        fprintf(stderr, "confbench: participant %u: no m=audio in the answer\n", p->idx);
        return -1;
    }
    unsigned port = 0, pt = 0;
    char proto[32] = "";
    if (sscanf(m + 9, "%u %31s %u", &port, proto, &pt) != 3 || port == 0 || port > 65535) {
        fprintf(stderr, "confbench: participant %u: unusable m=audio line\n", p->idx);
        return -1;
    }
    p->media_to = p->to;
    p->media_to.sin_port = htons((uint16_t)port);
    const char *cl = strstr(body, "\nc=IN IP4 ");
    if (cl) {
        char ip[64];
        snprintf(ip, sizeof ip, "%.*s", (int)strcspn(cl + 10, "\r\n /"), cl + 10);
        if (inet_pton(AF_INET, ip, &p->media_to.sin_addr) != 1)
            p->media_to.sin_addr = p->to.sin_addr;
    }
    cb_addr_format((const struct sockaddr *)&p->media_to, p->media_text, sizeof p->media_text);
    p->out.pt = (uint8_t)pt;
    bool secure = strcmp(proto, "RTP/SAVP") == 0;
    if (c->o->srtp != secure) {
        fprintf(stderr, "confbench: participant %u: answer is %s, offer was %s\n", p->idx, proto,
                c->o->srtp ? "RTP/SAVP" : "RTP/AVP");
        return -1;
    }
    if (!secure)
        return 0;
    const char *cr = strstr(body, "\na=crypto:");
    struct md_crypto key;
    if (!cr || md_sdes_parse(cr + 10, strcspn(cr + 10, "\r\n"), &key) != MD_OK ||
        md_srtp_create(&p->rx, &key, MD_SRTP_INBOUND) != MD_OK) {
        fprintf(stderr, "confbench: participant %u: no usable a=crypto in the answer\n", p->idx);
        return -1;
    }
    return 0;
}

/* The room's URI: the Request-URI of the INVITE (and the To of every request). */
static void request_line(struct conf *c, const struct part *p, char *out, size_t cap)
{
    const cb_opts_t *o = c->o;
    snprintf(out, cap, "sip:%s@%s", o->user, o->domain[0] ? o->domain : p->to_text);
}

/* Remembers what the dialog's in-dialog requests need from its 2xx (RFC 3261
 * §12.1.2): the Contact as remote target, the Record-Route entries reversed as the
 * route set. Without a Contact the room's URI stays the target. Returns 0, or -1
 * when the route set is too long to follow. */
static int take_dialog(struct conf *c, struct part *p, const char *ruri)
{
    cb_sip_msg_t m;
    size_t len = strlen(c->buf);
    snprintf(p->contact, sizeof p->contact, "%s", ruri);
    if (cb_sip_parse(c->buf, len, &m) == CB_SIP_OK && m.contact_uri.s &&
        m.contact_uri.len < sizeof p->contact)
        snprintf(p->contact, sizeof p->contact, "%.*s", (int)m.contact_uri.len, m.contact_uri.s);
    p->nroutes = cb_sip_route_set(c->buf, len, p->route, sizeof p->route);
    if (p->nroutes < 0) {
        fprintf(stderr, "confbench: participant %u: Record-Route set too long to follow\n", p->idx);
        p->nroutes = 0;
        p->route[0] = 0;
        return -1;
    }
    return 0;
}

/* "Route: ...\r\n" for the dialog's in-dialog requests, "" without a route set. */
static void route_header(const struct part *p, char *out, size_t cap)
{
    if (p->nroutes > 0)
        snprintf(out, cap, "Route: %s\r\n", p->route);
    else if (cap)
        out[0] = 0;
}

static int invite(struct conf *c, struct part *p)
{
    const cb_opts_t *o = c->o;
    char crypto[MD_SDES_MAX_LINE + 16] = "", sdp[1024], msg[4096], ruri[400], route[1100];
    if (o->srtp) {
        char line[MD_SDES_MAX_LINE];
        if (md_sdes_format(line, sizeof line, &p->key_tx) <= 0)
            return -1;
        snprintf(crypto, sizeof crypto, "a=crypto:%s\r\n", line);
    }
    unsigned pt = p->codec == MD_CODEC_OPUS ? OPUS_PT : (unsigned)md_codec_static_pt(p->codec);
    int sl = snprintf(sdp, sizeof sdp,
                      "v=0\r\no=confbench %u 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
                      "m=audio %u %s %u\r\na=rtpmap:%u %s\r\n%sa=rtcp-mux\r\na=sendrecv\r\n",
                      p->idx + 1, c->local_ip, c->local_ip, p->rtp_port,
                      o->srtp ? "RTP/SAVP" : "RTP/AVP", pt, pt, codec_rtpmap(p->codec), crypto);
    request_line(c, p, ruri, sizeof ruri);
    p->cseq = 1;
    snprintf(msg, sizeof msg,
             "INVITE %s SIP/2.0\r\n"
             "Via: SIP/2.0/UDP %s:%u;branch=z9hG4bK-cf-%s-1;rport\r\n"
             "Max-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n"
             "Call-ID: %s\r\nCSeq: 1 INVITE\r\nContact: <sip:%s@%s:%u>\r\n"
             "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
             ruri, c->local_ip, p->sip_port, p->from_tag, o->from_user,
             o->from_domain[0] ? o->from_domain : "confbench.invalid", p->from_tag, ruri,
             p->call_id, o->from_user, c->local_ip, p->sip_port, sl, sdp);
    p->status = transact(c, p, msg, " INVITE");
    if (p->status == 0) {
        fprintf(stderr, "confbench: participant %u: no final response to INVITE from %s\n", p->idx,
                p->to_text);
        return -1;
    }
    char to[512];
    if (sip_hdr(c->buf, "To", to, sizeof to) && strstr(to, "tag="))
        snprintf(p->to_tag, sizeof p->to_tag, "%.*s", (int)strcspn(strstr(to, "tag=") + 4, ";> "),
                 strstr(to, "tag=") + 4);
    int ok = -1;
    if (p->status == 200)
        ok = take_dialog(c, p, ruri) || take_answer(c, p) ? -1 : 0;
    /* The ACK of a 2xx is a request of the dialog (remote target, route set, a branch
     * of its own); the ACK of a failure belongs to the INVITE's transaction (its
     * Request-URI and branch), so that every proxy on the way absorbs it. */
    bool dialog = p->status >= 200 && p->status < 300;
    if (dialog)
        route_header(p, route, sizeof route);
    else
        route[0] = 0;
    snprintf(msg, sizeof msg,
             "ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%u;branch=z9hG4bK-cf-%s-%s\r\n"
             "%sMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>;tag=%s\r\n"
             "Call-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
             dialog ? p->contact : ruri, c->local_ip, p->sip_port, p->from_tag,
             dialog ? "ack" : "1", route, o->from_user,
             o->from_domain[0] ? o->from_domain : "confbench.invalid", p->from_tag, ruri, p->to_tag,
             p->call_id);
    sip_send(c, p, msg);
    if (p->status != 200)
        fprintf(stderr, "confbench: participant %u: INVITE answered %d\n", p->idx, p->status);
    return ok;
}

static void bye(struct conf *c, struct part *p)
{
    const cb_opts_t *o = c->o;
    char msg[4096], ruri[400], route[1100];
    if (p->status != 200 || p->ended)
        return;
    request_line(c, p, ruri, sizeof ruri);
    route_header(p, route, sizeof route);
    snprintf(msg, sizeof msg,
             "BYE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%u;branch=z9hG4bK-cf-%s-2;rport\r\n"
             "%sMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>;tag=%s\r\n"
             "Call-ID: %s\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
             p->contact, c->local_ip, p->sip_port, p->from_tag, route, o->from_user,
             o->from_domain[0] ? o->from_domain : "confbench.invalid", p->from_tag, ruri, p->to_tag,
             p->call_id);
    int st = transact(c, p, msg, " BYE");
    if (st < 200 || st >= 300)
        fprintf(stderr, "confbench: participant %u: BYE answered %d\n", p->idx, st);
    p->ended = true;
}

/* One 20 ms frame of p's tone, protected when SRTP; tamper flips a payload byte
 * after protection. */
static void send_frame(struct conf *c, struct part *p, bool tamper)
{
    int16_t pcm[MD_FRAME_SAMPLES];
    uint8_t payload[MD_OPUS_MAX_PACKET], pkt[1500];
    cb_tone_fill(pcm, MD_FRAME_SAMPLES, p->tone, CB_TONE_AMPLITUDE, p->sample);
    p->sample += MD_FRAME_SAMPLES;
    int n = md_enc_frame(p->enc, pcm, payload, sizeof payload);
    if (n <= 0)
        return;
    int h =
        md_rtp_out_header(&p->out, pkt, sizeof pkt, false, md_codec_ts_step(p->codec), (size_t)n);
    if (h < 0)
        return;
    memcpy(pkt + h, payload, (size_t)n);
    size_t len = (size_t)h + (size_t)n;
    if (c->o->srtp && md_srtp_protect(p->tx, pkt, &len, sizeof pkt) != MD_OK)
        return;
    if (tamper)
        pkt[len - 1] ^= 0x40; /* the authentication tag */
    if (sendto(p->rtp, pkt, len, 0, (struct sockaddr *)&p->media_to, sizeof p->media_to) > 0)
        p->sent++;
}

static void drain_media(struct conf *c, struct part *p)
{
    uint8_t pkt[2048];
    for (;;) {
        ssize_t n = recv(p->rtp, pkt, sizeof pkt, 0);
        if (n <= 0)
            return;
        size_t len = (size_t)n;
        if (md_demux(pkt, len) != MD_PKT_RTP)
            continue;
        struct md_rtp h;
        if ((c->o->srtp && md_srtp_unprotect(p->rx, pkt, &len) != MD_OK) ||
            md_rtp_parse(pkt, len, &h) != MD_OK) {
            p->rejected++;
            continue;
        }
        p->received++;
        int16_t pcm[MD_FRAME_SAMPLES];
        if (md_dec_frame(p->dec, h.payload, h.payload_len, pcm) == MD_FRAME_SAMPLES &&
            p->n_pcm + MD_FRAME_SAMPLES <= CONF_PCM_MAX) {
            memcpy(p->pcm + p->n_pcm, pcm, sizeof pcm);
            p->n_pcm += MD_FRAME_SAMPLES;
        }
    }
}

/* Participant i calls the i-th IPv4 address of targets, round-robin. */
static int setup(struct conf *c, const cb_addr_t *targets, unsigned ntargets, char *err,
                 size_t errlen)
{
    const cb_opts_t *o = c->o;
    double tones[CB_CONF_MAX];
    md_codec_id_t codecs[CB_CONF_MAX];
    unsigned nt = 0, nc = 0;
    c->n = o->conference;
    if (c->n < 2 || c->n > CB_CONF_MAX)
        return snprintf(err, errlen, "--conference: 2 to %d participants", CB_CONF_MAX), -1;
    if (o->tones[0] && (cb_tones_parse(o->tones, tones, CB_CONF_MAX, &nt) || nt < c->n))
        return snprintf(err, errlen,
                        "--tones: expected %u distinct frequencies (50 to 3800 Hz, 25 Hz "
                        "apart), got \"%s\"",
                        c->n, o->tones),
               -1;
    if (o->codecs[0] &&
        (cb_codecs_parse(o->codecs, codecs, CB_CONF_MAX, &nc) || (nc != 1 && nc != c->n)))
        return snprintf(err, errlen,
                        "--codecs: expected one codec or %u (pcmu, pcma, opus), got \"%s\"", c->n,
                        o->codecs),
               -1;
    const cb_addr_t *v4[CB_CONF_MAX];
    unsigned nv4 = 0;
    for (unsigned i = 0; i < ntargets && nv4 < c->n; i++)
        if (targets[i].sa.ss_family == AF_INET)
            v4[nv4++] = &targets[i];
    if (nv4 == 0)
        return snprintf(err, errlen, "--conference needs an IPv4 target"), -1;
    if (o->srtp && md_srtp_global_init() != MD_OK)
        return snprintf(err, errlen, "SRTP library initialisation failed"), -1;
    for (unsigned i = 0; i < c->n; i++) {
        struct part *p = &c->p[i];
        p->idx = i;
        p->sip = p->rtp = -1;
        p->tone = nt ? tones[i] : cb_default_tone(i);
        p->codec = nc == 0 ? MD_CODEC_PCMU : codecs[nc == 1 ? 0 : i];
        memcpy(&p->to, &v4[i % nv4]->sa, sizeof p->to);
        snprintf(p->to_text, sizeof p->to_text, "%s", v4[i % nv4]->text);
        p->sip = udp_socket(c->local_ip, &p->sip_port);
        p->rtp = udp_socket(c->local_ip, &p->rtp_port);
        if (p->sip < 0 || p->rtp < 0)
            return snprintf(err, errlen, "cannot bind UDP sockets on %s", c->local_ip), -1;
        snprintf(p->call_id, sizeof p->call_id, "cbconf.%u.%d.%lx@%s", i, (int)getpid(),
                 (unsigned long)time(NULL), c->local_ip);
        snprintf(p->from_tag, sizeof p->from_tag, "cf%u-%d", i, (int)getpid());
        p->out.ssrc = 0x43460000u + i;
        p->out.seq = (uint16_t)(1000u * i);
        p->pcm = calloc(CONF_PCM_MAX, sizeof *p->pcm);
        if (!p->pcm || md_enc_create(&p->enc, p->codec, 0) != MD_OK ||
            md_dec_create(&p->dec, p->codec) != MD_OK)
            return snprintf(err, errlen, "codec %s: cannot create", codec_label(p->codec)), -1;
        if (o->srtp) {
            p->key_tx.tag = 1;
            p->key_tx.suite = MD_SUITE_AES_CM_128_HMAC_SHA1_80;
            if (md_crypto_keygen(&p->key_tx) != MD_OK ||
                md_srtp_create(&p->tx, &p->key_tx, MD_SRTP_OUTBOUND) != MD_OK)
                return snprintf(err, errlen, "SRTP key setup failed"), -1;
        }
    }
    return 0;
}

static void teardown(struct conf *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        struct part *p = &c->p[i];
        if (p->sip >= 0)
            close(p->sip);
        if (p->rtp >= 0)
            close(p->rtp);
        md_srtp_free(p->tx);
        md_srtp_free(p->rx);
        md_enc_free(p->enc);
        md_dec_free(p->dec);
        free(p->pcm);
    }
}

static void print_table(const struct conf *c, unsigned tampered)
{
    printf("participant codec tone(Hz)  sent  recv  bad ");
    for (unsigned j = 0; j < c->n; j++)
        printf(" %6.0fHz", c->p[j].tone);
    printf("  verdict\n");
    for (unsigned i = 0; i < c->n; i++) {
        const struct part *p = &c->p[i];
        printf("%11u %-5s %8.0f %5llu %5llu %4llu ", i, codec_label(p->codec), p->tone,
               (unsigned long long)p->sent, (unsigned long long)p->received,
               (unsigned long long)p->rejected);
        for (unsigned j = 0; j < c->n; j++)
            printf(" %8.3f", p->ratio[j]);
        printf("  %s\n", p->pass ? "ok" : "FAIL");
    }
    printf("thresholds: others >= %.3f, own <= %.3f; tampered SRTP packets sent: %u\n", CB_HEAR_MIN,
           CB_OWN_MAX, tampered);
    for (unsigned i = 0; i < c->n; i++) {
        const struct part *p = &c->p[i];
        printf("participant %u: called %s, media %s", i, p->to_text,
               p->media_text[0] ? p->media_text : "-");
        if (p->nroutes > 0)
            printf(", routed through %s", p->route);
        printf("\n");
    }
}

static int write_json(const struct conf *c, unsigned tampered, int rc, char *err, size_t errlen)
{
    json_object *root = json_object_new_object(), *arr = json_object_new_array();
    json_object_object_add(root, "mode", json_object_new_string("conference"));
    json_object_object_add(root, "target", json_object_new_string(c->p[0].to_text));
    json_object_object_add(root, "srtp", json_object_new_boolean(c->o->srtp));
    json_object_object_add(root, "hold_ms", json_object_new_int64(c->o->hold_ms));
    json_object *th = json_object_new_object();
    json_object_object_add(th, "hear_min", json_object_new_double(CB_HEAR_MIN));
    json_object_object_add(th, "own_max", json_object_new_double(CB_OWN_MAX));
    json_object_object_add(root, "thresholds", th);
    for (unsigned i = 0; i < c->n; i++) {
        const struct part *p = &c->p[i];
        json_object *e = json_object_new_object(), *r = json_object_new_array();
        json_object_object_add(e, "index", json_object_new_int((int)i));
        json_object_object_add(e, "codec", json_object_new_string(codec_label(p->codec)));
        json_object_object_add(e, "tone_hz", json_object_new_double(p->tone));
        json_object_object_add(e, "sip_status", json_object_new_int(p->status));
        json_object_object_add(e, "target", json_object_new_string(p->to_text));
        json_object_object_add(e, "media_address",
                               p->media_text[0] ? json_object_new_string(p->media_text) : NULL);
        json_object_object_add(e, "record_routes", json_object_new_int(p->nroutes));
        json_object_object_add(e, "rtp_sent", json_object_new_int64((int64_t)p->sent));
        json_object_object_add(e, "rtp_received", json_object_new_int64((int64_t)p->received));
        json_object_object_add(e, "rtp_rejected", json_object_new_int64((int64_t)p->rejected));
        json_object_object_add(e, "samples", json_object_new_int64((int64_t)p->n_pcm));
        for (unsigned j = 0; j < c->n; j++)
            json_object_array_add(r, json_object_new_double(p->ratio[j]));
        json_object_object_add(e, "ratios", r);
        json_object_object_add(e, "pass", json_object_new_boolean(p->pass));
        json_object_array_add(arr, e);
    }
    json_object_object_add(root, "participants", arr);
    json_object_object_add(root, "tampered_sent", json_object_new_int((int)tampered));
    json_object_object_add(root, "exit_code", json_object_new_int(rc));
    int ret = json_object_to_file_ext(c->o->json, root, JSON_C_TO_STRING_PRETTY) ? -1 : 0;
    if (ret)
        snprintf(err, errlen, "cannot write %.400s: %s", c->o->json, strerror(errno));
    json_object_put(root);
    return ret;
}

int cb_conf_run(const cb_opts_t *o, const cb_addr_t *targets, unsigned ntargets)
{
    static struct conf conf;
    struct conf *c = &conf;
    char err[512] = "";
    int rc = 2;
    unsigned tampered = 0;
    memset(c, 0, sizeof *c);
    c->o = o;
    for (unsigned i = 0; i < CB_CONF_MAX; i++)
        c->p[i].sip = c->p[i].rtp = -1;
    snprintf(c->local_ip, sizeof c->local_ip, "%s", o->nbinds ? o->binds[0] : "127.0.0.1");
    if (setup(c, targets, ntargets, err, sizeof err)) {
        fprintf(stderr, "confbench: %s\n", err);
        goto out;
    }
    rc = 1;
    bool all_up = true;
    for (unsigned i = 0; i < c->n; i++)
        if (invite(c, &c->p[i]))
            all_up = false;
    if (all_up) {
        unsigned hold = o->hold_ms ? o->hold_ms : 3000, frames = hold / MD_FRAME_MS;
        uint64_t next = now_ms();
        for (unsigned t = 0; t < frames; t++) {
            for (unsigned i = 0; i < c->n; i++) {
                bool tamper = o->tamper && i == 0 && t == frames / 2;
                send_frame(c, &c->p[i], tamper);
                tampered += tamper;
            }
            next += MD_FRAME_MS;
            while (now_ms() < next) {
                for (unsigned i = 0; i < c->n; i++) {
                    drain_media(c, &c->p[i]);
                    sip_poll(c, &c->p[i], NULL);
                }
                usleep(1000);
            }
        }
        uint64_t tail = now_ms() + 200; /* the last mixed frames */
        while (now_ms() < tail) {
            for (unsigned i = 0; i < c->n; i++)
                drain_media(c, &c->p[i]);
            usleep(2000);
        }
    }
    for (unsigned i = 0; i < c->n; i++)
        bye(c, &c->p[i]);
    bool pass = all_up;
    for (unsigned i = 0; i < c->n; i++) {
        struct part *p = &c->p[i];
        /* the first half second (or third) holds the joins: skip it */
        size_t skip = p->n_pcm / 3 < MD_MIX_RATE / 2 ? p->n_pcm / 3 : MD_MIX_RATE / 2;
        for (unsigned j = 0; j < c->n; j++)
            p->ratio[j] = cb_goertzel_ratio(p->pcm + skip, p->n_pcm - skip, c->p[j].tone);
        p->pass = all_up && p->n_pcm > skip &&
                  cb_hears_others_not_self(p->ratio, c->n, i, CB_HEAR_MIN, CB_OWN_MAX);
        pass = pass && p->pass;
    }
    rc = pass ? 0 : 1;
    if (o->verbose >= 0)
        print_table(c, tampered);
    if (o->json[0] && write_json(c, tampered, rc, err, sizeof err)) {
        fprintf(stderr, "confbench: %s\n", err);
        rc = 2;
    }
out:
    teardown(c);
    return rc;
}
