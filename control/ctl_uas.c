/* The node's own user agent: what a VMR answers.
 *
 *   OPTIONS            200 with Allow / Accept / Supported
 *   INVITE to a VMR    100, (180 while ringing,) 200 with an SDP answer; media port
 *                      from this worker's share of the port partition
 *   ACK                confirms the call (2xx) or ends the transaction (non-2xx)
 *   BYE                200, media port released
 *   CANCEL             200, and 487 to the INVITE when it is still ringing
 *   re-INVITE          200 with a new answer on the same port
 *   unknown alias      404;  unsupported method 501;  Require we lack 420
 *   body not SDP       415;  SDP we cannot meet 488 with a Warning saying why
 *   no transaction / dialog / port left: 503 with Retry-After, never a wait
 *
 * Media: the SDP answer comes from sdp_negotiate() under the room's policy (SRTP
 * required / optional / off, Opus, video passthrough); in the middle of it the media
 * session is opened (INVITE) or changed (re-INVITE: hold, keys, codec) through
 * ctl_io.media_open / media_update, synchronously: this worker hosts the room's
 * conference (ctl_worker.c, owner_of), so the session is created on the
 * conference's worker with no further hop. It closes when the dialog ends. A
 * media timeout ends the dialog with a BYE of ours (ctl_uac.c). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "ctl_internal.h"
#include "ctl_msg.h"
#include "ctl_proxy.h"
#include "ctl_uac.h"
#include "fed_wire.h"
#include "sdp_answer.h"

#define ALLOW_HDR "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO\r\n"

static bool str_eq(sip_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.s && a.len == n && strncasecmp(a.s, b, n) == 0;
}

/* A To-tag for a response outside a dialog: same shape as dialog tags, so it
 * still names this worker when the ACK for a non-2xx answer comes back. */
static void make_tag(struct ctl_worker *cw, char out[TAG_LEN + 1])
{
    uint64_t x = ++cw->tag_seq ^ cw->tag_key;
    x = (x ^ (x >> 31)) * 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    snprintf(out, TAG_LEN + 1, "cn%02x%016llx", cw->id & 0xff, (unsigned long long)x);
}

/* "Warning: 399 <node> "<why>"" with quotes and control bytes taken out. */
static int warning_hdr(const struct ctl_worker *cw, const char *why, char *out, size_t cap)
{
    char clean[200];
    size_t j = 0;
    for (size_t i = 0; why && why[i] && j < sizeof clean - 1; i++) {
        unsigned char ch = (unsigned char)why[i];
        clean[j++] = (ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x7f) ? ' ' : (char)ch;
    }
    clean[j] = 0;
    const char *agent = cw->conf->node_name[0] ? cw->conf->node_name : "confnode";
    /* the reason is cut to what fits, so the header always ends in CRLF */
    size_t fixed = strlen("Warning: 399  \"\"\r\n") + strlen(agent) + 1;
    if (cap < fixed + 1) {
        if (cap)
            out[0] = 0;
        return -1;
    }
    int room = (int)(cap - fixed < sizeof clean ? cap - fixed : sizeof clean);
    return snprintf(out, cap, "Warning: 399 %s \"%.*s\"\r\n", agent, room, clean);
}

static ssize_t build(struct ctl_worker *cw, const sip_msg_t *req, int status, const char *tag,
                     const char *extra, const char *body_type, const char *body, size_t blen)
{
    sip_str_t have = sip_msg_to_tag(req);
    char gen[TAG_LEN + 1];
    if (!have.s && !tag && status > 100) {
        make_tag(cw, gen);
        tag = gen;
    }
    ssize_t n = sip_msg_build_response(req, status, sip_msg_phrase(status), have.s ? NULL : tag,
                                       extra, body_type, body, blen, cw->out, sizeof cw->out);
    if (n < 0)
        cn_log(CN_LOG_WARN, "response_too_large", "worker=%u status=%d", cw->id, status);
    return n;
}

static void reply(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *req, int status,
                  const char *tag, const char *extra)
{
    ssize_t n = build(cw, req, status, tag, extra, NULL, NULL, 0);
    if (n > 0)
        ctl_txn_respond(cw, t, status, cw->out, (size_t)n, cw->now);
    else if (status >= 200)
        ctl_txn_destroy(cw, t);
}

static void reply_warning(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *req,
                          int status, const char *tag, const char *why, const char *more)
{
    char extra[512];
    int n = warning_hdr(cw, why, extra, sizeof extra);
    if (more && n > 0 && (size_t)n < sizeof extra)
        snprintf(extra + n, sizeof extra - (size_t)n, "%s", more);
    reply(cw, t, req, status, tag, extra);
}

void ctl_send_stateless(struct ctl_worker *cw, const sip_msg_t *req, const cn_peer_t *to,
                        int status, const char *extra)
{
    ssize_t n = build(cw, req, status, NULL, extra, NULL, NULL, 0);
    if (n <= 0)
        return;
    cw->io.send(cw->io.io, to, cw->out, (size_t)n);
    cstat_add(&cw->stats->responses[status / 100], 1);
}

static int contact_hdr(const struct ctl_worker *cw, const struct vmr *room,
                       cn_transport_t tr, char *out, size_t cap)
{
    const struct ctl_listen *l = &cw->sh->listen;
    bool v6 = strchr(l->host, ':') != NULL;
    unsigned port = tr == CN_TRANSPORT_TLS ? l->tls_port
                    : tr == CN_TRANSPORT_TCP ? l->tcp_port
                                             : l->udp_port;
    const char *tname = tr == CN_TRANSPORT_TLS ? "tls" : tr == CN_TRANSPORT_TCP ? "tcp" : "udp";
    if (l->fqdn[0])
        return snprintf(out, cap,
                        "Contact: <sip:%s@%s:%u;transport=%s;maddr=%s>\r\n%sSupported: \r\n",
                        room ? room->user : "confnode", l->fqdn, port, tname, l->host,
                        ALLOW_HDR);
    return snprintf(out, cap, "Contact: <sip:%s@%s%s%s:%u;transport=%s>\r\n%sSupported: \r\n",
                    room ? room->user : "confnode", v6 ? "[" : "", l->host, v6 ? "]" : "", port,
                    tname, ALLOW_HDR);
}

/* Our offer, for an INVITE that came without one (the answer arrives in the ACK). */
static int sdp_offer(const struct ctl_worker *cw, const struct ctl_dialog *d, char *out,
                     size_t cap)
{
    const char *addr = cw->conf->media_address;
    const char *ipv = strchr(addr, ':') ? "IP6" : "IP4";
    unsigned long long sid = (unsigned long long)(cw->now ^ (uint64_t)d->media_port);
    return snprintf(out, cap,
                    "v=0\r\no=confnode %llu %llu IN %s %s\r\ns=confnode\r\nc=IN %s %s\r\n"
                    "t=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
                    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
                    "a=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
                    sid, sid, ipv, addr, ipv, addr, d->media_port);
}

/* ---- media ---- */

static int room_srtp(const struct ctl_worker *cw, const struct vmr *room)
{
    int s = room && room->conf->srtp ? room->conf->srtp : cw->conf->srtp;
    return s ? s : CTL_SRTP_OPTIONAL;
}

static unsigned room_speakers(const struct ctl_worker *cw, const struct vmr *room)
{
    unsigned n = room && room->conf->mix_speakers ? room->conf->mix_speakers
                                                  : cw->conf->mix_speakers;
    return n ? n : 3;
}

struct media_ctx {
    struct ctl_worker *cw;
    struct ctl_dialog *d;
    int status; /* SIP status when the callback fails */
};

/* A port the kernel would not bind is left out of the pool (something else on the
 * host holds it): the call moves to another port. */
static int replace_port(struct ctl_worker *cw, int *port)
{
    cn_log(CN_LOG_WARN, "media_port_taken",
           "worker=%u port=%d reason=\"in use by another process; left out of the pool\"",
           cw->id, *port);
    *port = media_ports_alloc(&cw->ports);
    return *port;
}

/* sdp_negotiate's callback: ports, then the media session (opened or changed). */
static int on_plan(void *arg, struct sdp_plan *plan, char *why, size_t whylen)
{
    struct media_ctx *mc = arg;
    struct ctl_worker *cw = mc->cw;
    struct ctl_dialog *d = mc->d;
    plan->audio.local_port = (uint16_t)d->media_port;
    if (plan->video.accepted && !d->video_port) {
        int vp = media_ports_alloc(&cw->ports);
        d->video_port = vp > 0 ? (uint16_t)vp : 0; /* none left: video rejected */
    }
    plan->video.local_port = plan->video.accepted ? d->video_port : 0;
    if (!cw->io.media_open)
        return 0; /* no media layer (control tested alone): answer only */
    const char *alias = d->room ? d->room->conf->alias : "";
    struct ctl_media_req req = {.conf_key = ctl_hash(alias, strlen(alias), 0x6d656469),
                                .speakers = room_speakers(cw, d->room),
                                .timeout_ms = cw->conf->media_timeout_ms,
                                .local_address = cw->conf->media_address,
                                .owner = d};
    int rc = CTL_MEDIA_BUSY;
    for (int attempt = 0; attempt < 4; attempt++) {
        rc = d->media_leg
                 ? cw->io.media_update(cw->io.io, d->media_leg, &req, plan, why, whylen)
                 : cw->io.media_open(cw->io.io, &req, plan, &d->media_leg, why, whylen);
        if (rc == CTL_MEDIA_OK)
            return 0;
        if (rc != CTL_MEDIA_PORT_IN_USE || d->media_leg)
            break;
        int vp = d->video_port;
        if (replace_port(cw, &d->media_port) < 0 ||
            (plan->video.local_port && replace_port(cw, &vp) < 0)) {
            snprintf(why, whylen, "No media port free on worker %u", cw->id);
            if (plan->video.local_port)
                d->video_port = vp > 0 ? (uint16_t)vp : 0;
            rc = CTL_MEDIA_BUSY;
            break;
        }
        if (plan->video.local_port)
            d->video_port = (uint16_t)vp;
        plan->audio.local_port = (uint16_t)d->media_port;
        plan->video.local_port = plan->video.accepted ? d->video_port : 0;
    }
    /* the offer's keys cannot be met: 488; anything else is a lack of resources */
    mc->status = rc == CTL_MEDIA_REFUSED ? 488 : 503;
    return -2;
}

/* The 200 (or the failure) for an INVITE whose dialog exists. */
static void answer_invite(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *req,
                          struct ctl_dialog *d)
{
    char sdp[4096], why[200], extra[1024];
    if (d->media_port < 0) {
        d->media_port = media_ports_alloc(&cw->ports);
        if (d->media_port < 0) {
            snprintf(why, sizeof why, "No media port free on worker %u", cw->id);
            cstat_add(&cw->stats->overload_rejects, 1);
            reply_warning(cw, t, req, 503, d->tag, why, "Retry-After: 5\r\n");
            ctl_dialog_end(cw, d);
            return;
        }
    }
    sip_str_t body = sip_msg_body(req);
    ssize_t blen;
    if (body.len > 0) {
        struct sdp_answer_params p = {.address = cw->conf->media_address,
                                      .audio_port = (uint16_t)d->media_port,
                                      .session_id = cw->now ^ ((uint64_t)d->media_port << 32),
                                      .username = "confnode"};
        struct sdp_options opt = {.srtp = room_srtp(cw, d->room),
                                  .opus = true,
                                  .video = true,
                                  .avpf = true,
                                  .rtcp_mux = true};
        struct media_ctx mc = {.cw = cw, .d = d, .status = 488};
        blen = sdp_negotiate(body.s, body.len, &p, &opt, on_plan, &mc, NULL, sdp, sizeof sdp, why,
                             sizeof why);
        if (blen < 0) {
            int status = blen == SDP_REFUSED ? 488 : mc.status;
            if (status == 503) {
                cstat_add(&cw->stats->overload_rejects, 1);
                reply_warning(cw, t, req, 503, d->tag, why, "Retry-After: 5\r\n");
            } else {
                reply_warning(cw, t, req, status, d->tag, why, NULL);
            }
            if (d->state == DLG_EARLY)
                ctl_dialog_end(cw, d);
            return;
        }
    } else if (room_srtp(cw, d->room) == CTL_SRTP_REQUIRED) {
        /* our offer would have to carry keys for an answer we cannot see yet */
        reply_warning(cw, t, req, 488, d->tag,
                      "This room requires SRTP: send an SDP offer with a=crypto in the INVITE",
                      NULL);
        if (d->state == DLG_EARLY)
            ctl_dialog_end(cw, d);
        return;
    } else {
        blen = sdp_offer(cw, d, sdp, sizeof sdp);
        d->offered = 1;
    }
    contact_hdr(cw, d->room, t->peer.transport, extra, sizeof extra);
    ssize_t n = build(cw, req, 200, d->tag, extra, "application/sdp", sdp, (size_t)blen);
    if (n < 0) {
        reply(cw, t, req, 500, d->tag, NULL);
        if (d->state == DLG_EARLY)
            ctl_dialog_end(cw, d);
        return;
    }
    if (d->invite && d->invite != t)
        d->invite->dlg = NULL;
    d->invite = t;
    t->dlg = d;
    ctl_txn_respond(cw, t, 200, cw->out, (size_t)n, cw->now);
}

void ctl_on_media_event(struct ctl_worker *cw, void *owner, int event, uint64_t now)
{
    struct ctl_dialog *d = owner; /* alive: its leg closes when it ends */
    cw->now = now;
    if (event != CTL_MEDIA_EV_TIMEOUT || !d)
        return;
    cn_log(CN_LOG_INFO, "call_end", "worker=%u reason=\"media timeout\" call_id=\"%.*s\"", cw->id,
           (int)d->call_id_len, d->call_id);
    if (d->state == DLG_CONFIRMED)
        ctl_uac_bye(cw, d, "media timeout");
    ctl_dialog_end(cw, d);
}

void ctl_uas_answer_pending(struct ctl_worker *cw, struct ctl_txn *t, uint64_t now)
{
    sip_msg_t *req = t->pending;
    t->pending = NULL;
    cw->now = now;
    if (t->dlg)
        answer_invite(cw, t, req, t->dlg);
    else
        reply(cw, t, req, 500, NULL, NULL);
    sip_msg_free(req);
}

static bool start_call(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m,
                       const struct vmr *room);

/* Asks the control thread (cluster store) which node hosts the room's conference.
 * Returns false when the question could not be asked (the call then stays here:
 * a node that cannot reach its own control thread serves locally). */
static bool ask_placement(struct ctl_worker *cw, struct ctl_txn *t, const struct vmr *room)
{
    if (!cw->io.to_control)
        return false;
    struct ctl_msg_claim *q = calloc(1, sizeof *q);
    if (!q)
        return false;
    q->hdr.kind = CTL_MSG_CLAIM;
    snprintf(q->conf, sizeof q->conf, "%s", room->conf->alias);
    memcpy(q->txn_key, t->key, t->key_len);
    q->txn_key_len = t->key_len;
    if (cw->io.to_control(cw->io.io, q) != 0) {
        free(q);
        return false;
    }
    return true;
}

void ctl_uas_placed(struct ctl_worker *cw, const struct ctl_msg_claim *a)
{
    struct ctl_txn *t = ctl_txn_find(cw, a->txn_key, a->txn_key_len);
    if (!t || !t->pending || t->state != TXN_PROCEEDING)
        return; /* cancelled or timed out meanwhile */
    sip_msg_t *m = t->pending;
    t->pending = NULL;
    const struct vmr *room = ctl_vmr_find(cw->sh, sip_msg_ruri_user(m), sip_msg_ruri_host(m));
    if (a->status != 0 || !room) {
        char why[200];
        snprintf(why, sizeof why, "No node can host the conference now (%s)",
                 a->status == -4 ? "no live node that is not draining" : "cluster store error");
        reply_warning(cw, t, m, 503, NULL, why, "Retry-After: 5\r\n");
        sip_msg_free(m);
        return;
    }
    if (a->mine) {
        if (!start_call(cw, t, m, room))
            sip_msg_free(m);
        return;
    }
    /* another node hosts it: proxy the call there over mutual TLS (Record-Route
     * keeps this node on the path, so the caller's ACK and BYE come back through
     * it); the SDP answer is the owner's, so media goes straight to the owner */
    struct ctl_target to = {.transport = CN_TRANSPORT_TLS, .tls_name = a->owner_fqdn};
    char first[64];
    size_t k = strcspn(a->owner_addresses, ",");
    snprintf(first, sizeof first, "%.*s", (int)(k < sizeof first ? k : sizeof first - 1),
             a->owner_addresses);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&to.addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&to.addr;
    uint16_t port = htons(cw->sh->listen.tls_port); /* every node listens alike */
    if (inet_pton(AF_INET, first, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = port;
        to.addrlen = sizeof *a4;
    } else if (inet_pton(AF_INET6, first, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = port;
        to.addrlen = sizeof *a6;
    } else {
        char why[200];
        snprintf(why, sizeof why, "Conference owner %s has no usable address", a->owner);
        reply_warning(cw, t, m, 503, NULL, why, "Retry-After: 5\r\n");
        sip_msg_free(m);
        return;
    }
    if (!to.tls_name[0])
        to.tls_name = NULL;
    struct ctl_proxy_opts opts = {.record_route = true};
    ctl_proxy_forward(cw, t, m, &t->peer, &to, 1, &opts);
}

/* Returns true when the request was taken over (t->pending). */
static bool handle_invite(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m)
{
    sip_str_t to_tag = sip_msg_to_tag(m);
    if (to_tag.s) { /* re-INVITE */
        struct ctl_dialog *d = ctl_dialog_find(cw, to_tag, sip_msg_call_id(m));
        if (!d) {
            reply(cw, t, m, 481, NULL, NULL);
            return false;
        }
        if (sip_msg_cseq(m) <= d->remote_cseq) {
            reply_warning(cw, t, m, 500, NULL, "CSeq not higher than the last request",
                          "Retry-After: 1\r\n");
            return false;
        }
        d->remote_cseq = sip_msg_cseq(m);
        answer_invite(cw, t, m, d);
        return false;
    }
    const struct vmr *room = ctl_vmr_find(cw->sh, sip_msg_ruri_user(m), sip_msg_ruri_host(m));
    if (!room) {
        reply(cw, t, m, 404, NULL, NULL);
        return false;
    }
    sip_str_t body = sip_msg_body(m);
    if (body.len > 0 && !str_eq(sip_msg_content_type(m), "application/sdp")) {
        reply(cw, t, m, 415, NULL, "Accept: application/sdp\r\n");
        return false;
    }
    ssize_t n = build(cw, m, 100, NULL, NULL, NULL, NULL, 0);
    if (n > 0)
        ctl_txn_respond(cw, t, 100, cw->out, (size_t)n, cw->now);
    if (cw->conf->clustered && ask_placement(cw, t, room)) {
        t->pending = m; /* answered in ctl_uas_placed() */
        return true;
    }
    return start_call(cw, t, m, room);
}

/* The room's conference is on this node: the dialog starts here. Returns true when
 * m was kept (ringing). */
static bool start_call(struct ctl_worker *cw, struct ctl_txn *t, sip_msg_t *m,
                       const struct vmr *room)
{
    ssize_t n;
    struct ctl_dialog *d = ctl_dialog_new(cw, m, room);
    if (!d) {
        cstat_add(&cw->stats->overload_rejects, 1);
        reply_warning(cw, t, m, 503, NULL, "Too many calls on this worker", "Retry-After: 5\r\n");
        return false;
    }
    d->invite = t;
    t->dlg = d;
    ctl_uac_dialog_init(cw, d, m, &t->peer);
    uint32_t delay = room->conf->answer_delay_ms;
    if (delay == 0) {
        answer_invite(cw, t, m, d);
        return false;
    }
    n = build(cw, m, 180, d->tag, NULL, NULL, NULL, 0);
    if (n > 0)
        ctl_txn_respond(cw, t, 180, cw->out, (size_t)n, cw->now);
    t->pending = m;
    ctl_txn_arm_answer(cw, t, cw->now + delay);
    return true;
}

static void handle_cancel(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *m)
{
    char key[TXN_KEY_MAX];
    int klen = ctl_txn_key(m, key, sizeof key, true);
    struct ctl_txn *inv = klen > 0 ? ctl_txn_find(cw, key, (size_t)klen) : NULL;
    if (!inv || !inv->is_invite) {
        reply(cw, t, m, 481, NULL, NULL);
        return;
    }
    reply(cw, t, m, 200, NULL, NULL);
    if (inv->state != TXN_PROCEEDING || !inv->pending)
        return; /* already answered: the CANCEL changes nothing (§9.2) */
    sip_msg_t *req = inv->pending;
    inv->pending = NULL;
    struct ctl_dialog *d = inv->dlg;
    reply(cw, inv, req, 487, d ? d->tag : NULL, NULL);
    if (d)
        ctl_dialog_end(cw, d);
    sip_msg_free(req);
}

static void handle_bye(struct ctl_worker *cw, struct ctl_txn *t, const sip_msg_t *m)
{
    struct ctl_dialog *d = ctl_dialog_find(cw, sip_msg_to_tag(m), sip_msg_call_id(m));
    if (!d) {
        reply(cw, t, m, 481, NULL, NULL);
        return;
    }
    struct ctl_txn *inv = d->invite;
    if (inv && inv->state == TXN_PROCEEDING && inv->pending) { /* BYE while ringing */
        sip_msg_t *req = inv->pending;
        inv->pending = NULL;
        reply(cw, inv, req, 487, d->tag, NULL);
        sip_msg_free(req);
    }
    reply(cw, t, m, 200, NULL, NULL);
    ctl_dialog_end(cw, d);
}

/* The ACK of a 2xx that carried our offer holds the answer (RFC 3264 §4, RFC 3261
 * §13.2.1): the media opens on it. Without a usable answer the call cannot have
 * media and ends with a BYE. Returns false when the dialog was ended. */
static bool take_answer(struct ctl_worker *cw, struct ctl_dialog *d, const sip_msg_t *ack)
{
    d->offered = 0;
    sip_str_t body = sip_msg_body(ack);
    char why[200] = "", scratch[4096];
    if (body.len == 0 || !str_eq(sip_msg_content_type(ack), "application/sdp")) {
        snprintf(why, sizeof why, "no SDP answer in the ACK");
    } else {
        /* read like an offer under the terms of ours (plain RTP, G.711): the streams
         * and codecs it keeps are the ones the call uses; what it writes is unused */
        struct sdp_answer_params p = {.address = cw->conf->media_address,
                                      .audio_port = (uint16_t)d->media_port,
                                      .session_id = cw->now,
                                      .username = "confnode"};
        struct sdp_options opt = {.srtp = SDP_SRTP_OFF};
        struct media_ctx mc = {.cw = cw, .d = d, .status = 488};
        if (sdp_negotiate(body.s, body.len, &p, &opt, on_plan, &mc, NULL, scratch,
                          sizeof scratch, why, sizeof why) >= 0)
            return true;
    }
    cn_log(CN_LOG_INFO, "call_end", "worker=%u reason=\"%s\" call_id=\"%.*s\"", cw->id, why,
           (int)d->call_id_len, d->call_id);
    ctl_uac_bye(cw, d, why);
    ctl_dialog_end(cw, d);
    return false;
}

static void handle_ack(struct ctl_worker *cw, const sip_msg_t *m)
{
    struct ctl_dialog *d = ctl_dialog_find(cw, sip_msg_to_tag(m), sip_msg_call_id(m));
    if (d) {
        if (d->invite && d->invite->state == TXN_ACCEPTED && !d->invite->acked) {
            bool offered = d->offered;
            if (d->state == DLG_CONFIRMED) /* the ACK of a re-INVITE's 2xx */
                ctl_txn_acked(cw, d->invite, cw->now);
            else
                ctl_dialog_confirm(cw, d); /* ends or shortens the INVITE transaction */
            if (offered)
                take_answer(cw, d, m);
            return;
        }
        if (d->state == DLG_CONFIRMED || !d->invite)
            return; /* retransmitted ACK */
    }
    char key[TXN_KEY_MAX];
    int klen = ctl_txn_key(m, key, sizeof key, true);
    struct ctl_txn *t = klen > 0 ? ctl_txn_find(cw, key, (size_t)klen) : NULL;
    if (t)
        ctl_txn_ack(cw, t, cw->now);
}

void ctl_uas_request(struct ctl_worker *cw, sip_msg_t *m, const cn_peer_t *from, uint64_t now)
{
    cw->now = now;
    sip_method_t meth = sip_msg_method(m);
    if (meth == SIP_METHOD_ACK) {
        handle_ack(cw, m);
        sip_msg_free(m);
        return;
    }
    char key[TXN_KEY_MAX];
    int klen = ctl_txn_key(m, key, sizeof key, false);
    if (klen < 0) {
        char extra[256];
        warning_hdr(cw, "Via branch or Call-ID too long", extra, sizeof extra);
        ctl_send_stateless(cw, m, from, 400, extra);
        cstat_add(&cw->stats->bad_messages, 1);
        sip_msg_free(m);
        return;
    }
    struct ctl_txn *t = ctl_txn_find(cw, key, (size_t)klen);
    if (t) { /* a retransmission: answer again, change nothing */
        cstat_add(&cw->stats->retransmissions_absorbed, 1);
        ctl_txn_retransmit(cw, t);
        sip_msg_free(m);
        return;
    }
    t = ctl_txn_new(cw, key, (size_t)klen, from, meth == SIP_METHOD_INVITE);
    if (!t) {
        cstat_add(&cw->stats->overload_rejects, 1);
        ctl_send_stateless(cw, m, from, 503, "Retry-After: 1\r\n");
        sip_msg_free(m);
        return;
    }
    if (fed_wire_request(cw, t, m)) /* federated: routed, refused or parked */
        return;
    sip_str_t req = sip_msg_header(m, "Require");
    if (req.s && req.len > 0 && meth != SIP_METHOD_CANCEL) {
        char extra[512];
        snprintf(extra, sizeof extra, "Unsupported: %.*s\r\n",
                 (int)(req.len > 400 ? 400 : req.len), req.s);
        reply(cw, t, m, 420, NULL, extra);
        sip_msg_free(m);
        return;
    }
    bool kept = false;
    switch (meth) {
    case SIP_METHOD_OPTIONS:
        reply(cw, t, m, 200, NULL, ALLOW_HDR "Accept: application/sdp\r\nSupported: \r\n");
        break;
    case SIP_METHOD_INVITE:
        kept = handle_invite(cw, t, m);
        break;
    case SIP_METHOD_CANCEL:
        handle_cancel(cw, t, m);
        break;
    case SIP_METHOD_BYE:
        handle_bye(cw, t, m);
        break;
    case SIP_METHOD_INFO:
        if (ctl_dialog_find(cw, sip_msg_to_tag(m), sip_msg_call_id(m)))
            reply(cw, t, m, 200, NULL, NULL);
        else
            reply(cw, t, m, 481, NULL, NULL);
        break;
    default:
        reply(cw, t, m, 501, NULL, ALLOW_HDR);
        break;
    }
    if (!kept)
        sip_msg_free(m);
}
