#include "node.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "admin.h"
#include "cl_store.h"
#include "ctl_central.h"
#include "plan.h"
#include "cn_log.h"
#include "cn_time.h"
#include "ctl_msg.h"
#include "ctl_worker.h"
#include "dp_media.h"
#include "fed_dns.h"
#include "fed_history.h"
#include "fed_route.h"
#include "fed_wire.h"
#include "md_srtp.h"
#include "dp_worker.h"
#include "dpk_engine.h"
#include "sdp_answer.h"

#define CN_DPK_METRICS_MAX 65536

struct cn_node {
    const struct cn_config *cfg;
    struct dp_engine *dp;
    struct dpk_engine *dpk;      /* dataplane = "dpdk": the packet I/O under dp */
    char *dpk_metrics;           /* its /metrics lines (control thread) */
    struct ctl_shared *sh;
    struct ctl_stats *ctl_stats; /* one per worker; outlives the workers */
    struct cn_admin *admin;
    struct cl_store *store;      /* cluster state: in-process or Redis (control thread) */
    struct ctl_central *central; /* answers workers' placement questions */
    struct fed_router *router;   /* search rules, zones, privacy (read by every worker) */
    struct fed_history *history; /* the workers' search-history rings */
    fed_dns_t *dns;              /* federation LOCATE resolver (control thread) */
    int dns_ep;                  /* epoll set of the resolver's sockets */
    uint64_t started_ms;
    /* drain (SIGUSR2 or POST /drain): no new conferences; once no call is left the
     * node leaves the cluster registry (cl_store_leave) */
    bool draining, leaving, left;
};

/* ---- dataplane <-> control glue (runs in worker threads) ---- */
static int io_send(void *io, const cn_peer_t *to, const char *buf, size_t len)
{
    return dp_send(io, to, buf, len);
}
static int io_post(void *io, unsigned to, void *msg) { return dp_post(io, to, msg); }
static void io_close(void *io, const cn_peer_t *peer) { dp_close(io, peer); }

static int io_to_control(void *io, void *msg) { return dp_to_control(io, msg); }

static int io_connect(void *io, const struct ctl_target *to, cn_peer_t *out, char *err,
                      size_t errlen)
{
    struct dp_target t = {.transport = to->transport, .addrlen = to->addrlen,
                          .tls_name = to->tls_name};
    memcpy(&t.addr, &to->addr, to->addrlen);
    return dp_connect(io, &t, out, err, errlen);
}

static struct x509_st *io_peer_cert(void *io, const cn_peer_t *peer)
{
    return dp_peer_certificate(io, peer);
}

/* ---- media: control's negotiated plan -> the worker's dp_media ---- */
static socklen_t media_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        return sizeof *s4;
    }
    if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        return sizeof *s6;
    }
    return 0;
}

static dp_media_codec_t media_codec(enum sdp_codec c)
{
    switch (c) {
    case SDP_CODEC_PCMA:
        return DP_CODEC_PCMA;
    case SDP_CODEC_OPUS:
        return DP_CODEC_OPUS;
    case SDP_CODEC_H264:
        return DP_CODEC_H264;
    case SDP_CODEC_VP8:
        return DP_CODEC_VP8;
    default:
        return DP_CODEC_PCMU;
    }
}

static void media_stream(const struct sdp_stream *st, struct dp_media_stream_params *sp)
{
    memset(sp, 0, sizeof *sp);
    sp->enabled = st->accepted && st->local_port != 0;
    sp->local_port = st->local_port;
    if (st->remote_addr[0] && st->remote_port) {
        sp->remote_len = media_addr(&sp->remote, st->remote_addr, st->remote_port);
        media_addr(&sp->remote_rtcp, st->remote_addr, st->remote_rtcp_port);
    }
    sp->rtcp_mux = st->rtcp_mux;
    sp->send = st->send;
    sp->recv = st->recv;
    sp->codec = media_codec(st->codec);
    sp->pt = (uint8_t)st->pt;
    sp->te_pt = st->te_pt;
    sp->secure = st->secure;
    for (unsigned i = 0; i < st->n_crypto && i < DP_MEDIA_MAX_CRYPTO; i++) {
        sp->crypto[i] = st->crypto[i];
        sp->crypto_len[i] = st->crypto_len[i];
        sp->n_crypto = i + 1;
    }
}

static void media_params(const struct ctl_media_req *req, const struct sdp_plan *plan,
                         struct dp_media_leg_params *p)
{
    memset(p, 0, sizeof *p);
    p->conf_key = req->conf_key;
    p->speakers = req->speakers;
    p->timeout_ms = req->timeout_ms;
    p->local_address = req->local_address;
    p->owner = req->owner;
    media_stream(&plan->audio, &p->audio);
    media_stream(&plan->video, &p->video);
}

static int media_result(int rc, struct dp_media_leg_params *p, struct sdp_plan *plan)
{
    switch (rc) {
    case DP_MEDIA_OK:
        snprintf(plan->audio.crypto_answer, sizeof plan->audio.crypto_answer, "%s",
                 p->audio.crypto_answer);
        snprintf(plan->video.crypto_answer, sizeof plan->video.crypto_answer, "%s",
                 p->video.crypto_answer);
        return CTL_MEDIA_OK;
    case DP_MEDIA_REFUSED:
    case DP_MEDIA_PARAM:
        return CTL_MEDIA_REFUSED;
    case DP_MEDIA_PORT_IN_USE:
        return CTL_MEDIA_PORT_IN_USE;
    default:
        return CTL_MEDIA_BUSY;
    }
}

static int io_media_open(void *io, const struct ctl_media_req *req, struct sdp_plan *plan,
                         uint32_t *leg, char *why, size_t whylen)
{
    struct dp_media_leg_params p;
    media_params(req, plan, &p);
    int rc = dp_media_leg_open(dp_worker_media(io), &p, leg, why, whylen);
    return media_result(rc, &p, plan);
}

static int io_media_update(void *io, uint32_t leg, const struct ctl_media_req *req,
                           struct sdp_plan *plan, char *why, size_t whylen)
{
    struct dp_media_leg_params p;
    media_params(req, plan, &p);
    int rc = dp_media_leg_update(dp_worker_media(io), leg, &p, why, whylen);
    return media_result(rc, &p, plan);
}

static void io_media_close(void *io, uint32_t leg) { dp_media_leg_close(dp_worker_media(io), leg); }

static void on_media_event(void *ctx, void *owner, dp_media_event_t ev, uint64_t now)
{
    if (ctx && ev == DP_MEDIA_EV_TIMEOUT)
        ctl_on_media_event(ctx, owner, CTL_MEDIA_EV_TIMEOUT, now);
}

_Static_assert((int)CTL_CONN_UP == (int)DP_CONN_UP && (int)CTL_CONN_FAILED == (int)DP_CONN_FAILED &&
                   (int)CTL_CONN_CLOSED == (int)DP_CONN_CLOSED,
               "control and dataplane name connection events alike");

static void h_conn_event(void *ctx, const cn_peer_t *peer, dp_conn_event_t ev,
                         const char *reason, uint64_t now)
{
    if (ctx)
        ctl_on_conn_event(ctx, peer, (ctl_conn_event_t)ev, reason, now);
}

static void *h_start(struct dp_worker *w, void *arg)
{
    struct cn_node *n = arg;
    unsigned id = dp_worker_id(w);
    ctl_io_t io = {.send = io_send,
                   .post = io_post,
                   .close = io_close,
                   .connect = io_connect,
                   .peer_cert = io_peer_cert,
                   .to_control = io_to_control,
                   .media_open = io_media_open,
                   .media_update = io_media_update,
                   .media_close = io_media_close,
                   .io = w};
    struct ctl_worker *cw = ctl_worker_create(n->sh, id, &io, &n->ctl_stats[id]);
    if (!cw)
        cn_log(CN_LOG_ERROR, "worker_start_failed", "worker=%u reason=\"out of memory\"", id);
    dp_media_set_events(dp_worker_media(w), on_media_event, cw);
    return cw;
}

static void h_message(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                      uint64_t now)
{
    if (ctx)
        ctl_on_message(ctx, buf, len, from, now);
}

static void h_bad_frame(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                        const char *why, uint64_t now)
{
    if (ctx)
        ctl_on_bad_frame(ctx, buf, len, from, why, now);
}

static int64_t h_tick(void *ctx, uint64_t now) { return ctx ? ctl_tick(ctx, now) : -1; }

static void h_post(void *ctx, void *msg, uint64_t now)
{
    if (ctx)
        ctl_on_post(ctx, msg, now);
    else
        ctl_msg_free(msg);
}

static void h_stop(void *ctx) { ctl_worker_free(ctx); }

/* ---- admin snapshot (control thread) ---- */
static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void snapshot(void *arg, struct cn_snapshot *s)
{
    struct cn_node *n = arg;
    s->version = CONFNODE_VERSION;
    s->node_name = n->cfg->node.name;
    s->uptime_s = (double)(cn_now_ms() - n->started_ms) / 1000.0;
    s->n_workers = dp_engine_workers(n->dp);
    if (s->n_workers > CN_MAX_WORKERS)
        s->n_workers = CN_MAX_WORKERS;
    for (unsigned i = 0; i < s->n_workers; i++) {
        const struct dp_stats *d = dp_engine_stats(n->dp, i);
        const struct ctl_stats *c = &n->ctl_stats[i];
        struct cn_worker_snapshot *o = &s->workers[i];
        o->id = i;
        o->cpu = dp_engine_worker_cpu(n->dp, i);
        o->connections = ld(&d->connections);
        o->transactions = ld(&c->transactions);
        o->dialogs = ld(&c->dialogs);
        o->calls = ld(&c->calls);
        o->rx_messages = ld(&d->rx_messages);
        o->tx_messages = ld(&d->tx_messages);
        o->rx_bytes = ld(&d->rx_bytes);
        o->tx_bytes = ld(&d->tx_bytes);
        o->bad_messages = ld(&c->bad_messages);
        o->conns_accepted = ld(&d->conns_accepted);
        o->conns_closed_oversize = ld(&d->conns_closed_oversize);
        o->conns_closed_idle = ld(&d->conns_closed_idle);
        o->conns_closed_error = ld(&d->conns_closed_error);
        o->tls_handshakes = ld(&d->tls_handshakes);
        o->tls_handshake_failures = ld(&d->tls_handshake_failures);
        o->keepalive_pings = ld(&d->keepalive_pings);
        o->retransmissions_absorbed = ld(&c->retransmissions_absorbed);
        o->retransmissions_sent = ld(&c->retransmissions_sent);
        o->calls_total = ld(&c->calls_total);
        o->ring_drops = ld(&d->ring_drops);
        const struct dp_media *md = dp_engine_media(n->dp, i);
        if (md) {
            const struct dp_media_stats *ms = dp_media_stats(md);
            o->media_legs = ld(&ms->legs);
            o->media_conferences = ld(&ms->conferences);
            o->media_rtp_in = ld(&ms->rtp_in);
            o->media_rtp_out = ld(&ms->rtp_out);
            o->media_rtcp_in = ld(&ms->rtcp_in);
            o->media_rtcp_out = ld(&ms->rtcp_out);
            o->media_bytes_in = ld(&ms->bytes_in);
            o->media_bytes_out = ld(&ms->bytes_out);
            o->media_srtp_auth_failures = ld(&ms->srtp_auth_failures);
            o->media_srtp_replays = ld(&ms->srtp_replays);
            o->media_srtp_other_failures = ld(&ms->srtp_other_failures);
            o->media_drop_malformed = ld(&ms->drop_malformed);
            o->media_drop_unexpected = ld(&ms->drop_unexpected);
            o->media_drop_jitter = ld(&ms->drop_jitter);
            o->media_drop_oversize = ld(&ms->drop_oversize);
            o->media_drop_send = ld(&ms->drop_send);
            o->media_dtmf_packets = ld(&ms->dtmf_packets);
            o->media_mixer_ticks = ld(&ms->mixer_ticks);
            o->media_mixer_overruns = ld(&ms->mixer_overruns);
            o->media_speaker_switches = ld(&ms->speaker_switches);
            o->media_keyframe_requests = ld(&ms->keyframe_requests);
            o->media_video_forwarded = ld(&ms->video_forwarded);
            o->media_feedback_forwarded = ld(&ms->feedback_forwarded);
            o->media_rtcp_byes = ld(&ms->rtcp_byes);
            o->media_timeouts = ld(&ms->media_timeouts);
            o->media_latches = ld(&ms->latches);
            o->media_conf_reuses = ld(&ms->conf_reuses);
            o->media_port_binds = ld(&ms->port_binds);
            o->media_port_reuses = ld(&ms->port_reuses);
            o->media_port_idle_drops = ld(&ms->port_idle_drops);
        }
        for (int k = 0; k < 7; k++)
            o->responses[k] = ld(&c->responses[k]);
    }
    if (n->dpk && n->dpk_metrics) {
        dpk_engine_metrics(n->dpk, n->dpk_metrics, CN_DPK_METRICS_MAX);
        s->extra_metrics = n->dpk_metrics;
    }
    struct cl_store_status st;
    cl_store_status(n->store, &st);
    struct cn_cluster_snapshot *cs = &s->cluster;
    cs->mode = st.mode == CL_MODE_REDIS ? "redis" : "standalone";
    cs->connected = st.connected;
    cs->degraded = st.degraded;
    cs->degraded_since = st.degraded_since_unix;
    snprintf(cs->primary, sizeof cs->primary, "%s", st.primary);
    cs->failovers = st.failovers;
    cs->reconnects = st.reconnects;
    cs->conferences = st.conferences_local;
    cs->draining = n->draining;
    cs->left = n->left;
}

/* ---- drain (control thread) ---- */

/* Dialogs (early and confirmed) on every worker: the calls a drain waits for. */
static uint64_t active_calls(const struct cn_node *n)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n->cfg->dp.workers; i++)
        sum += ld(&n->ctl_stats[i].dialogs);
    return sum;
}

static void drain(struct cn_node *n, const char *by, struct cn_drain_result *out)
{
    uint64_t calls = active_calls(n);
    if (out) {
        out->already = n->draining;
        out->calls = calls;
        out->left = n->left;
    }
    if (n->draining) {
        cn_log(CN_LOG_INFO, "drain_again", "node=%s by=%s calls=%llu left=%s", n->cfg->node.name,
               by, (unsigned long long)calls, n->left ? "yes" : "no");
        return;
    }
    n->draining = true;
    cl_store_set_draining(n->store, true);
    cn_log(CN_LOG_INFO, "drain_started", "node=%s by=%s calls=%llu", n->cfg->node.name, by,
           (unsigned long long)calls);
}

static void on_admin_drain(void *arg, struct cn_drain_result *out)
{
    drain(arg, "admin", out);
}

static void on_left(void *arg, cl_status_t st)
{
    struct cn_node *n = arg;
    n->leaving = false;
    n->left = true;
    cn_log(CN_LOG_INFO, "drain_done", "node=%s action=\"left the cluster registry\" status=\"%s\"",
           n->cfg->node.name, cl_status_str(st));
}

/* Each turn of the control loop: this node's load for the next heartbeat, and a
 * drained node with no call left leaves the registry. */
static void cluster_tick(struct cn_node *n)
{
    uint64_t calls = active_calls(n);
    cl_store_set_load(n->store, calls > UINT32_MAX ? UINT32_MAX : (uint32_t)calls);
    if (n->draining && !n->left && !n->leaving && calls == 0 &&
        cl_store_leave(n->store, on_left, n) == CL_OK)
        n->leaving = true;
}

/* ---- the control thread: signals and admin HTTP ---- */
static void on_worker_msg(void *arg, unsigned worker, void *msg)
{
    struct cn_node *n = arg;
    ctl_central_on_msg(n->central, worker, msg);
}

static int central_post(void *io, unsigned w, void *msg)
{
    return dp_engine_post(io, w, msg);
}

/* ---- federation: the resolver's sockets in the control loop ---- */
static void dns_sock(void *arg, int fd, bool readable, bool writable)
{
    struct cn_node *n = arg;
    struct epoll_event ev = {.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u),
                             .data.fd = fd};
    if (!readable && !writable) {
        epoll_ctl(n->dns_ep, EPOLL_CTL_DEL, fd, NULL);
        return;
    }
    if (epoll_ctl(n->dns_ep, EPOLL_CTL_MOD, fd, &ev) != 0)
        epoll_ctl(n->dns_ep, EPOLL_CTL_ADD, fd, &ev);
}

/* Sockets that are ready, then timeouts; LOCATE answers go out from the callbacks. */
static void dns_run(struct cn_node *n)
{
    if (!n->dns)
        return;
    struct epoll_event evs[16];
    int k = epoll_wait(n->dns_ep, evs, 16, 0);
    for (int i = 0; i < k; i++)
        fed_dns_process(n->dns, (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? evs[i].data.fd
                                                                                  : FED_DNS_NO_FD,
                        (evs[i].events & EPOLLOUT) ? evs[i].data.fd : FED_DNS_NO_FD);
    fed_dns_process(n->dns, FED_DNS_NO_FD, FED_DNS_NO_FD);
}

/* The router, the search history and the resolver, attached to the workers' shared
 * state. Returns 0, or -1 with the reason in err. */
static int federation_start(struct cn_node *n, char *err, size_t errlen)
{
    const struct cn_config *cfg = n->cfg;
    const char *locals[1 + 1024];
    size_t nl = 0;
    if (cfg->ctl.domain[0])
        locals[nl++] = cfg->ctl.domain;
    for (size_t i = 0; i < cfg->ctl.n_vmrs && nl < sizeof locals / sizeof locals[0]; i++) {
        const char *at = strchr(cfg->ctl.vmrs[i].alias, '@');
        if (at && at[1])
            locals[nl++] = at + 1;
    }
    const char *source = cfg->cluster.sip_fqdn[0] ? cfg->cluster.sip_fqdn : cfg->node.name;
    struct fed_router_env env = {.local_domains = locals,
                                 .n_local_domains = nl,
                                 .diag_source = source,
                                 .n_workers = cfg->dp.workers};
    if (!(n->router = fed_router_new(&cfg->fed.route, &env, err, errlen)))
        return -1;
    if (!(n->history = fed_history_new(cfg->fed.history_size, cfg->dp.workers))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((n->dns_ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -1;
    }
    struct fed_dns_conf dc = {.server = cfg->fed.dns_server[0] ? cfg->fed.dns_server : NULL,
                              .sock_cb = dns_sock,
                              .sock_arg = n};
    char derr[256];
    if (!(n->dns = fed_dns_new(&dc, derr, sizeof derr))) {
        snprintf(err, errlen, "federation.dns_server: %s", derr);
        return -1;
    }
    ctl_central_set_dns(n->central, n->dns);
    const char *trusted[CN_CLUSTER_MAX_NODES];
    size_t nt = 0;
    for (size_t i = 0; i < cfg->cluster.n_nodes && nt < CN_CLUSTER_MAX_NODES; i++)
        trusted[nt++] = cfg->cluster.nodes[i].address;
    /* a node that federates with nobody (the default: an empty allow list, no rules,
     * no zones) has no federated peer to check: callers reach its rooms directly */
    const struct fed_route_conf *rc = &cfg->fed.route;
    bool federates = rc->n_rules || rc->n_allow || rc->privacy != FED_PRIVACY_ALLOW_LIST ||
                     rc->n_static_routes || rc->n_neighbours;
    char sipdom[FED_NAME_BUF + 4];
    snprintf(sipdom, sizeof sipdom, "sip.%s", cfg->ctl.domain);
    const char *names[3 + CN_CLUSTER_MAX_NODES];
    size_t nn = 0;
    names[nn++] = sipdom;
    names[nn++] = cfg->cluster.srv_target;
    names[nn++] = cfg->cluster.sip_fqdn;
    for (size_t i = 0; i < cfg->cluster.n_nodes && nn < sizeof names / sizeof names[0]; i++)
        names[nn++] = cfg->cluster.nodes[i].fqdn;
    struct fed_wire_conf wc = {.router = n->router,
                               .history = n->history,
                               .inbound_check = cfg->fed.inbound_check != 0 && federates,
                               .diag_source = source,
                               .trusted_addrs = trusted,
                               .n_trusted = nt,
                               .trusted_names = names,
                               .n_trusted_names = nn};
    if (fed_wire_attach(n->sh, &wc) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static int control_loop(struct cn_node *n, int sfd)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 1};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    if (n->admin) {
        ev.data.u32 = 2;
        epoll_ctl(ep, EPOLL_CTL_ADD, cn_admin_fd(n->admin), &ev);
    }
    ev.data.u32 = 3;
    epoll_ctl(ep, EPOLL_CTL_ADD, cl_store_fd(n->store), &ev);
    ev.data.u32 = 4;
    epoll_ctl(ep, EPOLL_CTL_ADD, dp_engine_control_fd(n->dp), &ev);
    if (n->dns_ep >= 0) {
        ev.data.u32 = 5;
        epoll_ctl(ep, EPOLL_CTL_ADD, n->dns_ep, &ev);
    }
    int signo = 0;
    while (!signo) {
        int timeout = n->admin ? cn_admin_timeout_ms(n->admin) : -1;
        int st = cl_store_timeout_ms(n->store);
        if (timeout < 0 || timeout > st)
            timeout = st;
        if (n->dns) {
            int dt = fed_dns_timeout_ms(n->dns, 1000);
            if (dt >= 0 && (timeout < 0 || timeout > dt))
                timeout = dt;
        }
        if (timeout < 0 || timeout > 1000)
            timeout = 1000;
        struct epoll_event evs[5];
        int k = epoll_wait(ep, evs, 5, timeout);
        for (int i = 0; i < k; i++) {
            if (evs[i].data.u32 == 1) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) != (ssize_t)sizeof si)
                    continue;
                if (si.ssi_signo == SIGUSR2)
                    drain(n, "SIGUSR2", NULL);
                else if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
                    signo = (int)si.ssi_signo;
            }
        }
        dp_engine_control_drain(n->dp, on_worker_msg, n);
        dns_run(n);
        cluster_tick(n);
        cl_store_run(n->store);
        if (n->admin)
            cn_admin_run(n->admin);
    }
    close(ep);
    cn_log(CN_LOG_INFO, "stopping", "signal=%s", signo == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
}

int cn_node_run(const struct cn_config *cfg)
{
    struct cn_node n = {.cfg = cfg, .started_ms = cn_now_ms(), .dns_ep = -1};
    char err[1024];
    int rc = 1, sfd = -1;
    unsigned nw = cfg->dp.workers;

    /* signals go to the signalfd only: block them before any thread exists */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR2); /* drain */
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    sigdelset(&set, SIGPIPE);
    sfd = signalfd(-1, &set, SFD_CLOEXEC);

    struct ctl_listen ls = {.udp_port = cfg->dp.udp_port,
                            .tcp_port = cfg->dp.tcp_port,
                            .tls_port = cfg->dp.tls_port};
    snprintf(ls.host, sizeof ls.host, "%s", cfg->dp.listen);
    snprintf(ls.fqdn, sizeof ls.fqdn, "%s", cfg->cluster.sip_fqdn);
    n.ctl_stats = aligned_alloc(64, sizeof *n.ctl_stats * nw);
    if (!n.ctl_stats || sfd < 0) {
        cn_log(CN_LOG_ERROR, "start_failed", "reason=\"%s\"", strerror(errno));
        goto out;
    }
    memset(n.ctl_stats, 0, sizeof *n.ctl_stats * nw);
    if (!(n.sh = ctl_shared_create(&cfg->ctl, &ls, nw, err, sizeof err))) {
        cn_log(CN_LOG_ERROR, "start_failed", "reason=\"%s\"", err);
        goto out;
    }
    dp_handler_t h = {.start = h_start,
                      .message = h_message,
                      .bad_frame = h_bad_frame,
                      .tick = h_tick,
                      .post = h_post,
                      .post_free = ctl_msg_free,
                      .conn_event = h_conn_event,
                      .stop = h_stop,
                      .arg = &n};
    if (md_srtp_global_init() != MD_OK) { /* libsrtp2, once, before any worker */
        cn_log(CN_LOG_ERROR, "start_failed", "reason=\"libsrtp2 initialisation failed\"");
        goto out;
    }
    if (cfg->dp.backend == DP_BACKEND_DPDK &&
        (!(n.dpk_metrics = malloc(CN_DPK_METRICS_MAX)) ||
         !(n.dpk = dpk_engine_create(&cfg->dp, cfg->ctl.media_address, cfg->ctl.media_port_min,
                                     cfg->ctl.media_port_max, &h, err, sizeof err)))) {
        cn_log(CN_LOG_ERROR, "start_failed", "config=%s dataplane=dpdk reason=\"%s\"", cfg->path,
               n.dpk_metrics ? err : "out of memory");
        goto out;
    }
    if (!(n.dp = dp_engine_create(&cfg->dp, &h, err, sizeof err))) {
        cn_log(CN_LOG_ERROR, "start_failed", "config=%s reason=\"%s\"", cfg->path, err);
        goto out;
    }
    if (cfg->admin.port) {
        n.admin = cn_admin_start(&cfg->admin, snapshot, &n, err, sizeof err);
        if (!n.admin) {
            cn_log(CN_LOG_ERROR, "start_failed", "config=%s field=admin.port reason=\"%s\"",
                   cfg->path, err);
            goto out;
        }
    }
    struct cl_store_conf scf;
    cn_plan_store_conf(cfg, &scf);
    if (!(n.store = cl_store_create(&scf, err, sizeof err))) {
        cn_log(CN_LOG_ERROR, "start_failed", "config=%s field=cluster reason=\"%s\"", cfg->path,
               err);
        goto out;
    }
    cn_admin_on_drain(n.admin, on_admin_drain, &n);
    if (!(n.central = ctl_central_create(n.store, central_post, n.dp))) {
        cn_log(CN_LOG_ERROR, "start_failed", "reason=\"out of memory\"");
        goto out;
    }
    if (federation_start(&n, err, sizeof err) != 0) {
        cn_log(CN_LOG_ERROR, "start_failed", "config=%s field=federation reason=\"%s\"",
               cfg->path, err);
        goto out;
    }
    cn_admin_set_history(n.admin, n.history);
    if (dp_engine_start(n.dp, err, sizeof err) != 0) {
        cn_log(CN_LOG_ERROR, "start_failed", "reason=\"%s\"", err);
        goto out;
    }
    cn_log(CN_LOG_INFO, "started",
           "node=%s version=%s workers=%u sip=%s udp=%u tcp=%u tls=%u admin=%s:%u vmrs=%zu",
           cfg->node.name, CONFNODE_VERSION, nw, cfg->dp.listen, cfg->dp.udp_port,
           cfg->dp.tcp_port, cfg->dp.tls_port, cfg->admin.listen,
           n.admin ? (unsigned)cn_admin_port(n.admin) : 0u, cfg->ctl.n_vmrs);
    rc = control_loop(&n, sfd) == 0 ? 0 : 1;
out:
    /* reverse order: admin stops reading counters, workers finish and exit */
    cn_admin_stop(n.admin);
    fed_dns_free(n.dns); /* pending LOCATEs are answered (cancelled) to the workers */
    if (n.dns_ep >= 0)
        close(n.dns_ep);
    dp_engine_free(n.dp);
    dpk_engine_free(n.dpk); /* after the workers: none polls any more */
    free(n.dpk_metrics);
    ctl_central_free(n.central);
    cl_store_free(n.store);
    ctl_shared_free(n.sh);
    fed_router_free(n.router); /* after the workers: none decides any more */
    fed_history_free(n.history);
    free(n.ctl_stats);
    if (sfd >= 0)
        close(sfd);
    if (rc == 0)
        cn_log(CN_LOG_INFO, "stopped", "node=%s", cfg->node.name);
    return rc;
}
