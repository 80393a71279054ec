/* The stateful proxy, one worker, driven message by message with a synthetic clock.
 * The dataplane is replaced by a recorder: every message control sends is kept with
 * the peer it went to, and outbound connections are made up (or refused) here. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_msg.h"
#include "ctl_proxy.h"
#include "ctl_worker.h"

#define MAX_SENT 64
#define MAX_EVENTS 32

struct sent {
    char text[8192];
    cn_peer_t to;
};

struct recorder {
    struct sent sent[MAX_SENT];
    size_t n;
    unsigned posts[4];
    void *last_post;
    unsigned connects;
    uint16_t refuse_port; /* connect() fails at once for this port */
    char refuse_why[128];
    /* hook events */
    struct {
        ctl_proxy_ev_t kind;
        size_t target;
        int status;
        char reason[256];
        char diag[640];
    } ev[MAX_EVENTS];
    size_t n_ev;
};

static struct recorder rec;

static uint16_t port_of(const struct sockaddr_storage *a)
{
    return ntohs(((const struct sockaddr_in *)a)->sin_port);
}

static int rec_send(void *io, const cn_peer_t *to, const char *buf, size_t len)
{
    (void)io;
    assert_true(rec.n < MAX_SENT);
    assert_true(len < sizeof rec.sent[0].text);
    memcpy(rec.sent[rec.n].text, buf, len);
    rec.sent[rec.n].text[len] = 0;
    rec.sent[rec.n].to = *to;
    rec.n++;
    return 0;
}

static int rec_post(void *io, unsigned to, void *msg)
{
    (void)io;
    rec.posts[to]++;
    ctl_msg_free(rec.last_post);
    rec.last_post = msg;
    return 0;
}

static void rec_close(void *io, const cn_peer_t *peer)
{
    (void)io;
    (void)peer;
}

/* A connection per target, named by its port (conn_id = port). */
static int rec_connect(void *io, const struct ctl_target *t, cn_peer_t *out, char *err,
                       size_t errlen)
{
    (void)io;
    rec.connects++;
    if (rec.refuse_port && port_of(&t->addr) == rec.refuse_port) {
        snprintf(err, errlen, "%s", rec.refuse_why);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->transport = t->transport;
    out->worker = 0;
    out->conn_id = t->transport == CN_TRANSPORT_UDP ? 0 : port_of(&t->addr);
    out->addrlen = t->addrlen;
    memcpy(&out->addr, &t->addr, t->addrlen);
    return 0;
}

static void rec_report(void *arg, const struct ctl_proxy_event *ev)
{
    (void)arg;
    assert_true(rec.n_ev < MAX_EVENTS);
    rec.ev[rec.n_ev].kind = ev->kind;
    rec.ev[rec.n_ev].target = ev->target;
    rec.ev[rec.n_ev].status = ev->status;
    snprintf(rec.ev[rec.n_ev].reason, sizeof rec.ev[0].reason, "%s", ev->reason ? ev->reason : "");
    snprintf(rec.ev[rec.n_ev].diag, sizeof rec.ev[0].diag, "%s", ev->diag ? ev->diag : "");
    rec.n_ev++;
}

struct fixture {
    struct ctl_conf conf;
    struct ctl_vmr_conf vmrs[1];
    struct ctl_shared *sh;
    struct ctl_worker *cw;
    struct ctl_stats stats;
    cn_peer_t up; /* the upstream client, over UDP */
    uint64_t now;
};

static int setup_n(void **state, unsigned n_workers, uint32_t max_txn)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->conf.domain, sizeof f->conf.domain, "example.test");
    snprintf(f->conf.node_name, sizeof f->conf.node_name, "node1");
    snprintf(f->conf.media_address, sizeof f->conf.media_address, "127.0.0.1");
    f->conf.media_port_min = 40000;
    f->conf.media_port_max = 40099;
    f->conf.t1_ms = 500;
    f->conf.t2_ms = 4000;
    f->conf.t4_ms = 5000;
    f->conf.max_transactions = max_txn;
    f->conf.max_dialogs = 100;
    /* the proxy's mechanics are driven by preloaded routes from a plain UDP client;
     * the refusal of such routes by default has its own tests below */
    f->conf.accept_preloaded_routes = 1;
    snprintf(f->vmrs[0].alias, sizeof f->vmrs[0].alias, "meet@example.test");
    f->conf.vmrs = f->vmrs;
    f->conf.n_vmrs = 1;
    struct ctl_listen ls = {
        .host = "127.0.0.1", .udp_port = 5060, .tcp_port = 5060, .tls_port = 5061};
    char err[256];
    f->sh = ctl_shared_create(&f->conf, &ls, n_workers, err, sizeof err);
    assert_non_null(f->sh);
    ctl_io_t io = {
        .send = rec_send, .post = rec_post, .close = rec_close, .connect = rec_connect, .io = NULL};
    f->cw = ctl_worker_create(f->sh, 0, &io, &f->stats);
    assert_non_null(f->cw);
    f->up.transport = CN_TRANSPORT_UDP;
    struct sockaddr_in *a = (struct sockaddr_in *)&f->up.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(5090);
    inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    f->up.addrlen = sizeof *a;
    f->now = 1000000;
    ctl_tick(f->cw, f->now); /* the worker's clock, for calls made without a message */
    memset(&rec, 0, sizeof rec);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_n(state, 1, 100);
}
static int setup_2_workers(void **state)
{
    return setup_n(state, 2, 100);
}
static int setup_tiny(void **state)
{
    return setup_n(state, 1, 1);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ctl_worker_free(f->cw);
    ctl_shared_free(f->sh);
    ctl_msg_free(rec.last_post);
    rec.last_post = NULL;
    free(f);
    return 0;
}

static struct ctl_target target(cn_transport_t tr, uint16_t port, const char *tls_name)
{
    struct ctl_target t = {.transport = tr, .tls_name = tls_name};
    struct sockaddr_in *a = (struct sockaddr_in *)&t.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    t.addrlen = sizeof *a;
    return t;
}

/* A request from the upstream client (UDP 127.0.0.1:5090). */
static size_t request(char *out, size_t cap, const char *method, const char *ruri,
                      const char *branch, unsigned cseq, const char *to_tag, const char *route,
                      const char *extra)
{
    int n = snprintf(out, cap,
                     "%s %s SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=%s\r\n"
                     "%s%s%s"
                     "From: <sip:alice@client.test>;tag=al1\r\n"
                     "To: <sip:meet@example.test>%s%s\r\n"
                     "Call-ID: px-call-1\r\n"
                     "CSeq: %u %s\r\n"
                     "Max-Forwards: 70\r\n"
                     "%s"
                     "Content-Length: 0\r\n\r\n",
                     method, ruri, branch, route ? "Route: " : "", route ? route : "",
                     route ? "\r\n" : "", to_tag ? ";tag=" : "", to_tag ? to_tag : "", cseq, method,
                     extra ? extra : "");
    return (size_t)n;
}

static void deliver(struct fixture *f, const char *msg, size_t len, const cn_peer_t *from)
{
    ctl_on_message(f->cw, msg, len, from, f->now);
}

static void deliver_str(struct fixture *f, const char *msg, const cn_peer_t *from)
{
    deliver(f, msg, strlen(msg), from);
}

static void tick(struct fixture *f, uint64_t at)
{
    f->now = at;
    ctl_tick(f->cw, at);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int status_of(const char *msg)
{
    int code = 0;
    sscanf(msg, "SIP/2.0 %d", &code);
    return code;
}

/* The value of the first header `name` ("Via") of msg into out; false when absent. */
static bool header(const char *msg, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(msg, "\r\n"); p && p[2] && !(p[2] == '\r');
         p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 2 + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = 0;
            return true;
        }
    }
    return false;
}

static unsigned count_headers(const char *msg, const char *name)
{
    unsigned n = 0;
    size_t nl = strlen(name);
    for (const char *p = strstr(msg, "\r\n"); p && p[2] && p[2] != '\r'; p = strstr(p + 2, "\r\n"))
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':')
            n++;
    return n;
}

/* The branch of the top Via of msg. */
static void top_branch(const char *msg, char *out, size_t cap)
{
    char via[512];
    assert_true(header(msg, "Via", via, sizeof via));
    const char *b = strstr(via, "branch=");
    assert_non_null(b);
    b += 7;
    size_t n = strcspn(b, ";, ");
    assert_true(n < cap);
    memcpy(out, b, n);
    out[n] = 0;
}

/* The downstream answer to a request we sent: its Via lines, From, To (a tag added
 * when it has none), Call-ID and CSeq, then `extra`. */
static size_t response_to(const char *req, int status, const char *phrase, const char *extra,
                          char *out, size_t cap)
{
    size_t off = (size_t)snprintf(out, cap, "SIP/2.0 %d %s\r\n", status, phrase);
    const char *names[] = {"Via", "From", "To", "Call-ID", "CSeq"};
    for (size_t i = 0; i < 5; i++) {
        size_t nl = strlen(names[i]);
        for (const char *p = strstr(req, "\r\n"); p && p[2] && p[2] != '\r';
             p = strstr(p + 2, "\r\n")) {
            if (strncasecmp(p + 2, names[i], nl) != 0 || p[2 + nl] != ':')
                continue;
            size_t n = strcspn(p + 2, "\r\n");
            off += (size_t)snprintf(
                out + off, cap - off, "%.*s%s\r\n", (int)n, p + 2,
                i == 2 && status > 100 && !memmem(p + 2, n, "tag=", 4) ? ";tag=dn1" : "");
        }
    }
    off +=
        (size_t)snprintf(out + off, cap - off, "%sContent-Length: 0\r\n\r\n", extra ? extra : "");
    return off;
}

static void answer_from(struct fixture *f, size_t sent_index, int status, const char *phrase,
                        const char *extra)
{
    char resp[8192];
    const struct sent *s = &rec.sent[sent_index];
    size_t n = response_to(s->text, status, phrase, extra, resp, sizeof resp);
    deliver(f, resp, n, &s->to);
}

#define ROUTE_VIA_US "<sip:127.0.0.1:5060;lr>, <sip:127.0.0.1:7001;transport=tls;lr>"

/* An INVITE preloaded with a Route through us to 127.0.0.1:7001 over TLS; returns the
 * index of the forwarded copy. */
static size_t invite_via_route(struct fixture *f, const char *branch)
{
    char m[4096];
    size_t n = request(m, sizeof m, "INVITE", "sip:meet@example.test", branch, 1, NULL,
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[0].text), 100);
    assert_int_equal(rec.sent[1].to.transport, CN_TRANSPORT_TLS);
    assert_int_equal(port_of(&rec.sent[1].to.addr), 7001);
    return 1;
}

/* ---- tests ---- */

static struct x509_st *no_cert(void *io, const cn_peer_t *peer)
{
    (void)io;
    (void)peer;
    return NULL;
}

static struct x509_st *some_cert(void *io, const cn_peer_t *peer)
{
    (void)io;
    (void)peer;
    static char stand_in; /* only its being non-NULL matters: a verified peer */
    return (struct x509_st *)(void *)&stand_in;
}

/* Out of the box the node is no open relay: a new request routed beyond us by a
 * peer that did not prove itself is refused, one from a verified TLS peer goes on. */
static void a_preloaded_route_is_refused_unless_the_peer_is_verified(void **state)
{
    struct fixture *f = *state;
    f->conf.accept_preloaded_routes = 0;
    char m[4096];
    size_t n = request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-or1", 1, NULL,
                       ROUTE_VIA_US, NULL);
    ctl_io_t io = {.send = rec_send, .post = rec_post, .close = rec_close,
                   .connect = rec_connect, .peer_cert = no_cert, .io = NULL};
    ctl_worker_free(f->cw);
    f->cw = ctl_worker_create(f->sh, 0, &io, &f->stats);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 403);
    assert_non_null(strstr(rec.sent[0].text, "preloaded Route refused"));

    memset(&rec, 0, sizeof rec);
    io.peer_cert = some_cert;
    ctl_worker_free(f->cw);
    f->cw = ctl_worker_create(f->sh, 0, &io, &f->stats);
    n = request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-or2", 1, NULL,
                ROUTE_VIA_US, NULL);
    cn_peer_t tls_peer = f->up; /* a certificate only ever comes with TLS */
    tls_peer.transport = CN_TRANSPORT_TLS;
    deliver(f, m, n, &tls_peer);
    assert_int_equal(rec.n, 2); /* 100 upstream, the INVITE on to the next hop */
    assert_int_equal(port_of(&rec.sent[1].to.addr), 7001);
}

static void
a_forwarded_invite_gets_our_via_a_lower_max_forwards_record_route_and_new_ruri(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[512];
    size_t n =
        request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-up1", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    struct ctl_target t = target(CN_TRANSPORT_TLS, 7001, "sip.peer.test");
    struct ctl_proxy_opts o = {.ruri = "sip:meet@peer.test", .record_route = true};
    assert_int_equal(ctl_proxy_forward(f->cw, NULL, msg, &f->up, &t, 1, &o), CTL_PROXY_FORWARDED);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[0].text), 100);
    assert_memory_equal(&rec.sent[0].to.addr, &f->up.addr, sizeof(struct sockaddr_in));
    const char *fw = rec.sent[1].text;
    assert_true(starts_with(fw, "INVITE sip:meet@peer.test SIP/2.0\r\n"));
    assert_true(header(fw, "Via", v, sizeof v));
    assert_true(starts_with(v, "SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKcn00p"));
    assert_int_equal(count_headers(fw, "Via"), 2);
    assert_non_null(strstr(fw, "\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-up1\r\n"));
    assert_true(header(fw, "Max-Forwards", v, sizeof v));
    assert_string_equal(v, "69");
    assert_true(header(fw, "Record-Route", v, sizeof v));
    assert_string_equal(v, "<sip:127.0.0.1:5061;transport=tls;lr>, "
                           "<sip:127.0.0.1:5060;transport=udp;lr>");
    assert_int_equal(ctl_proxy_count(f->cw), 1);
    assert_int_equal(ctl_ctxn_count(f->cw), 1);
}

static void a_preloaded_route_through_us_is_popped_and_followed(void **state)
{
    struct fixture *f = *state;
    char v[512];
    size_t i = invite_via_route(f, "z9hG4bK-up2");
    const char *fw = rec.sent[i].text;
    assert_true(starts_with(fw, "INVITE sip:meet@example.test SIP/2.0\r\n"));
    assert_true(header(fw, "Route", v, sizeof v));
    assert_string_equal(v, "<sip:127.0.0.1:7001;transport=tls;lr>");
    assert_int_equal(count_headers(fw, "Route"), 1);
    assert_true(header(fw, "Record-Route", v, sizeof v));
    assert_non_null(strstr(v, "transport=tls;lr>"));
}

static void a_100_is_absorbed_and_180_and_200_are_relayed_without_our_via(void **state)
{
    struct fixture *f = *state;
    char v[512];
    size_t i = invite_via_route(f, "z9hG4bK-up3");
    answer_from(f, i, 100, "Trying", NULL);
    assert_int_equal(rec.n, 2);
    answer_from(f, i, 180, "Ringing", NULL);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2].text), 180);
    assert_int_equal(count_headers(rec.sent[2].text, "Via"), 1);
    assert_true(header(rec.sent[2].text, "Via", v, sizeof v));
    assert_string_equal(v, "SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-up3");
    assert_int_equal(rec.sent[2].to.transport, CN_TRANSPORT_UDP);
    answer_from(f, i, 200, "OK", "Contact: <sip:meet@127.0.0.1:7001;transport=tls>\r\n");
    assert_int_equal(rec.n, 4);
    assert_int_equal(status_of(rec.sent[3].text), 200);
    assert_int_equal(count_headers(rec.sent[3].text, "Via"), 1);
    assert_non_null(strstr(rec.sent[3].text, "Contact: <sip:meet@127.0.0.1:7001;transport=tls>"));
    /* the UAS resends its 2xx: relayed again, though the server transaction moved on */
    answer_from(f, i, 200, "OK", NULL);
    assert_int_equal(rec.n, 5);
    assert_int_equal(status_of(rec.sent[4].text), 200);
    assert_memory_equal(&rec.sent[4].to.addr, &f->up.addr, sizeof(struct sockaddr_in));
    /* 64*T1 later the client transaction and the proxy context are gone */
    tick(f, f->now + 64 * 500);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
    assert_int_equal(ctl_ctxn_count(f->cw), 0);
}

static void the_ack_for_a_2xx_follows_the_route_set_statelessly(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[512];
    size_t n = request(m, sizeof m, "ACK", "sip:meet@127.0.0.1:7001;transport=tls", "z9hG4bK-ack1",
                       1, "dn1",
                       "<sip:127.0.0.1:5060;transport=udp;lr>, "
                       "<sip:127.0.0.1:5061;transport=tls;lr>",
                       NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    const struct sent *s = &rec.sent[0];
    assert_int_equal(s->to.transport, CN_TRANSPORT_TLS);
    assert_int_equal(port_of(&s->to.addr), 7001);
    assert_true(starts_with(s->text, "ACK sip:meet@127.0.0.1:7001;transport=tls SIP/2.0\r\n"));
    assert_int_equal(count_headers(s->text, "Route"), 0);
    assert_int_equal(count_headers(s->text, "Via"), 2);
    assert_true(header(s->text, "Max-Forwards", v, sizeof v));
    assert_string_equal(v, "69");
    assert_int_equal(ctl_ctxn_count(f->cw), 0);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
    /* the same ACK again carries the same branch */
    char b1[64], b2[64];
    top_branch(rec.sent[0].text, b1, sizeof b1);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 2);
    top_branch(rec.sent[1].text, b2, sizeof b2);
    assert_string_equal(b1, b2);
}

static void a_bye_pops_our_routes_and_its_200_is_relayed(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = request(m, sizeof m, "BYE", "sip:meet@127.0.0.1:7001;transport=tls", "z9hG4bK-bye1",
                       2, "dn1",
                       "<sip:127.0.0.1:5060;transport=udp;lr>, "
                       "<sip:127.0.0.1:5061;transport=tls;lr>",
                       NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    assert_true(starts_with(rec.sent[0].text, "BYE sip:meet@127.0.0.1:7001;transport=tls SIP/2.0"));
    assert_int_equal(count_headers(rec.sent[0].text, "Route"), 0);
    assert_null(strstr(rec.sent[0].text, "Record-Route"));
    answer_from(f, 0, 200, "OK", NULL);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1].text), 200);
    assert_int_equal(count_headers(rec.sent[1].text, "Via"), 1);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
    /* the BYE retransmitted by the client is absorbed and answered from the transaction */
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2].text), 200);
}

static void a_non_2xx_is_relayed_and_acknowledged_downstream_hop_by_hop(void **state)
{
    struct fixture *f = *state;
    char v[512], b_inv[64], b_ack[64];
    size_t i = invite_via_route(f, "z9hG4bK-up4");
    top_branch(rec.sent[i].text, b_inv, sizeof b_inv);
    answer_from(f, i, 486, "Busy Here", NULL);
    assert_int_equal(rec.n, 4);
    /* our ACK downstream, and the 486 upstream (in either order) */
    const struct sent *ack = starts_with(rec.sent[2].text, "ACK ") ? &rec.sent[2] : &rec.sent[3];
    const struct sent *up = ack == &rec.sent[2] ? &rec.sent[3] : &rec.sent[2];
    assert_int_equal(status_of(up->text), 486);
    assert_int_equal(count_headers(up->text, "Via"), 1);
    assert_true(starts_with(ack->text, "ACK sip:meet@example.test SIP/2.0\r\n"));
    top_branch(ack->text, b_ack, sizeof b_ack);
    assert_string_equal(b_ack, b_inv);
    assert_true(header(ack->text, "To", v, sizeof v));
    assert_non_null(strstr(v, "tag=dn1"));
    assert_true(header(ack->text, "CSeq", v, sizeof v));
    assert_string_equal(v, "1 ACK");
    assert_int_equal(port_of(&ack->to.addr), 7001);
    /* the 486 again: acknowledged again, not relayed again */
    answer_from(f, i, 486, "Busy Here", NULL);
    assert_int_equal(rec.n, 5);
    assert_true(starts_with(rec.sent[4].text, "ACK "));
    /* the client's ACK for the 486 ends our server transaction; it is not forwarded */
    char m[4096];
    size_t n = request(m, sizeof m, "ACK", "sip:meet@example.test", "z9hG4bK-up4", 1, "dn1",
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 5);
}

static void a_cancel_gets_200_and_goes_downstream_once_a_provisional_came(void **state)
{
    struct fixture *f = *state;
    char m[4096], b_inv[64], b_can[64];
    size_t i = invite_via_route(f, "z9hG4bK-up5");
    top_branch(rec.sent[i].text, b_inv, sizeof b_inv);
    size_t n = request(m, sizeof m, "CANCEL", "sip:meet@example.test", "z9hG4bK-up5", 1, NULL,
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2].text), 200);
    assert_non_null(strstr(rec.sent[2].text, "CSeq: 1 CANCEL"));
    /* nothing heard from downstream yet: the CANCEL waits (RFC 3261 §9.1) */
    answer_from(f, i, 180, "Ringing", NULL);
    assert_int_equal(rec.n, 5);
    const struct sent *can = starts_with(rec.sent[3].text, "CANCEL ") ? &rec.sent[3] : &rec.sent[4];
    assert_true(starts_with(can->text, "CANCEL sip:meet@example.test SIP/2.0\r\n"));
    top_branch(can->text, b_can, sizeof b_can);
    assert_string_equal(b_can, b_inv);
    assert_non_null(strstr(can->text, "CSeq: 1 CANCEL"));
    assert_non_null(strstr(can->text, "Route: <sip:127.0.0.1:7001;transport=tls;lr>"));
    answer_from(f, (size_t)(can - rec.sent), 200, "OK", NULL); /* absorbed */
    assert_int_equal(rec.n, 5);
    answer_from(f, i, 487, "Request Terminated", NULL);
    assert_int_equal(rec.n, 7);
    assert_true(status_of(rec.sent[5].text) == 487 || status_of(rec.sent[6].text) == 487);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
}

static void max_forwards_zero_is_answered_483_and_nothing_is_sent_on(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-mf0", 1, NULL,
                       ROUTE_VIA_US, NULL);
    char *mf = strstr(m, "Max-Forwards: 70");
    memcpy(mf, "Max-Forwards: 00", 16);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 483);
    assert_int_equal(rec.connects, 0);
}

static void a_refused_connection_fails_over_and_a_name_mismatch_ends_in_504_with_1010(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[1024];
    size_t n =
        request(m, sizeof m, "INVITE", "sip:bob@peer.test", "z9hG4bK-fo1", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    struct ctl_target t[2] = {target(CN_TRANSPORT_TLS, 7001, "sip.peer.test"),
                              target(CN_TRANSPORT_TLS, 7002, "sip.peer.test")};
    struct ctl_proxy_opts o = {.report = rec_report};
    assert_int_equal(ctl_proxy_forward(f->cw, NULL, msg, &f->up, t, 2, &o), CTL_PROXY_FORWARDED);
    assert_int_equal(rec.n, 2);
    /* the connection to the first fails later: the second is tried at once */
    cn_peer_t c1 = rec.sent[1].to;
    ctl_on_conn_event(f->cw, &c1, CTL_CONN_FAILED, "connect 127.0.0.1:7001: Connection refused",
                      f->now);
    assert_int_equal(rec.n, 2); /* not inside the event */
    tick(f, f->now);
    assert_int_equal(rec.n, 3);
    assert_int_equal(port_of(&rec.sent[2].to.addr), 7002);
    char b1[64], b2[64];
    top_branch(rec.sent[1].text, b1, sizeof b1);
    top_branch(rec.sent[2].text, b2, sizeof b2);
    assert_string_not_equal(b1, b2);
    /* the second's certificate lacks the name */
    cn_peer_t c2 = rec.sent[2].to;
    ctl_on_conn_event(f->cw, &c2, CTL_CONN_FAILED,
                      "TLS 127.0.0.1:7002: error:0A000086:SSL routines::certificate verify "
                      "failed: hostname mismatch",
                      f->now);
    tick(f, f->now);
    assert_int_equal(rec.n, 4);
    const char *r = rec.sent[3].text;
    assert_int_equal(status_of(r), 504);
    assert_true(header(r, "ms-diagnostics", v, sizeof v));
    assert_true(starts_with(v, "1010;reason=\"Certificate trust with another server could not be "
                               "established\""));
    assert_non_null(
        strstr(v, "ErrorType=\"The peer certificate does not contain a matching FQDN\""));
    assert_non_null(strstr(v, "tls-target=\"sip.peer.test\""));
    assert_non_null(strstr(v, "source=\"node1\""));
    assert_true(header(r, "Warning", v, sizeof v));
    assert_non_null(strstr(v, "hostname mismatch"));
    /* what the hook saw */
    assert_int_equal(rec.n_ev, 5);
    assert_int_equal(rec.ev[0].kind, CTL_PROXY_EV_TRY);
    assert_int_equal(rec.ev[1].kind, CTL_PROXY_EV_FAILED);
    assert_int_equal(rec.ev[1].target, 0);
    assert_non_null(strstr(rec.ev[1].diag, "1046;"));
    assert_non_null(strstr(rec.ev[1].diag, "fqdn=\"sip.peer.test:7001\""));
    assert_int_equal(rec.ev[2].kind, CTL_PROXY_EV_TRY);
    assert_int_equal(rec.ev[3].kind, CTL_PROXY_EV_FAILED);
    assert_int_equal(rec.ev[3].target, 1);
    assert_int_equal(rec.ev[4].kind, CTL_PROXY_EV_DONE);
    assert_int_equal(rec.ev[4].status, 504);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
    assert_int_equal(ctl_ctxn_count(f->cw), 0);
}

static void a_failed_tls_handshake_ends_in_504_with_1047(void **state)
{
    struct fixture *f = *state;
    char v[1024];
    invite_via_route(f, "z9hG4bK-tls1");
    cn_peer_t c = rec.sent[1].to;
    ctl_on_conn_event(f->cw, &c, CTL_CONN_FAILED,
                      "TLS 127.0.0.1:7001: error:0A00010B:SSL routines::wrong version number",
                      f->now);
    tick(f, f->now);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2].text), 504);
    assert_true(header(rec.sent[2].text, "ms-diagnostics", v, sizeof v));
    assert_true(starts_with(v, "1047;reason=\"Failed to complete TLS negotiation with a federated "
                               "peer server\""));
    assert_non_null(strstr(v, "tls-target=\"127.0.0.1\""));
}

static void a_refused_port_at_connect_time_ends_in_504_naming_host_and_port(void **state)
{
    struct fixture *f = *state;
    char v[1024];
    rec.refuse_port = 7001;
    snprintf(rec.refuse_why, sizeof rec.refuse_why, "connect 127.0.0.1:7001: Connection refused");
    char m[4096];
    size_t n = request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-rf1", 1, NULL,
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[0].text), 100);
    assert_int_equal(status_of(rec.sent[1].text), 504);
    assert_true(header(rec.sent[1].text, "ms-diagnostics", v, sizeof v));
    assert_true(starts_with(v, "1046;reason=\"Failed to connect to a federated peer server\""));
    assert_non_null(strstr(v, "fqdn=\"127.0.0.1:7001\""));
    assert_non_null(strstr(v, "Connection refused"));
    assert_true(header(rec.sent[1].text, "To", v, sizeof v));
    assert_non_null(strstr(v, ";tag=cn00"));
    /* its ACK is absorbed here */
    n = request(m, sizeof m, "ACK", "sip:meet@example.test", "z9hG4bK-rf1", 1, "x", ROUTE_VIA_US,
                NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 2);
}

static void no_answer_before_timer_b_ends_in_504_after_retransmissions_over_udp(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[1024];
    size_t n = request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-tb1", 1, NULL,
                       "<sip:127.0.0.1:5060;lr>, <sip:127.0.0.1:7003;lr>", NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 2);
    assert_int_equal(rec.sent[1].to.transport, CN_TRANSPORT_UDP);
    uint64_t t0 = f->now;
    tick(f, t0 + 500); /* Timer A: T1 */
    assert_int_equal(rec.n, 3);
    assert_string_equal(rec.sent[2].text, rec.sent[1].text);
    tick(f, t0 + 1500); /* 2*T1 later */
    assert_int_equal(rec.n, 4);
    tick(f, t0 + 64 * 500 - 1);
    size_t before = rec.n;
    assert_int_equal(status_of(rec.sent[before - 1].text), 0);
    tick(f, t0 + 64 * 500); /* Timer B */
    assert_int_equal(rec.n, before + 1);
    const char *r = rec.sent[before].text;
    assert_int_equal(status_of(r), 504);
    assert_true(header(r, "Warning", v, sizeof v));
    assert_non_null(strstr(v, "no response from 127.0.0.1:7003 (UDP) within 32000 ms"));
    assert_true(header(r, "ms-diagnostics", v, sizeof v));
    assert_non_null(strstr(v, "1046;"));
}

static void a_503_fails_over_and_the_next_peers_ms_diagnostics_are_relayed_untouched(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[1024];
    size_t n =
        request(m, sizeof m, "MESSAGE", "sip:bob@peer.test", "z9hG4bK-ms1", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    struct ctl_target t[2] = {target(CN_TRANSPORT_TCP, 7001, NULL),
                              target(CN_TRANSPORT_TCP, 7002, NULL)};
    struct ctl_proxy_opts o = {.report = rec_report};
    ctl_proxy_forward(f->cw, NULL, msg, &f->up, t, 2, &o);
    assert_int_equal(rec.n, 1);
    answer_from(f, 0, 503, "Service Unavailable",
                "ms-diagnostics: 1008;reason=\"Unable to resolve DNS SRV record\"\r\n");
    assert_int_equal(rec.n, 2);
    assert_int_equal(port_of(&rec.sent[1].to.addr), 7002);
    const char *peer_diag = "1047;reason=\"Failed to complete TLS negotiation with a federated "
                            "peer server\";tls-target=\"x.other.test\";source=\"edge.other.test\"";
    char extra[512];
    snprintf(extra, sizeof extra, "ms-diagnostics: %s\r\n", peer_diag);
    answer_from(f, 1, 504, "Server Time-out", extra);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2].text), 504);
    assert_true(header(rec.sent[2].text, "ms-diagnostics", v, sizeof v));
    assert_string_equal(v, peer_diag);
    assert_int_equal(count_headers(rec.sent[2].text, "ms-diagnostics"), 1);
    /* the hook saw both peers' diagnostics */
    bool saw_1008 = false, saw_1047 = false;
    for (size_t i = 0; i < rec.n_ev; i++) {
        saw_1008 |= rec.ev[i].kind == CTL_PROXY_EV_FAILED && strstr(rec.ev[i].diag, "1008;");
        saw_1047 |=
            rec.ev[i].kind == CTL_PROXY_EV_RESPONSE && strcmp(rec.ev[i].diag, peer_diag) == 0;
    }
    assert_true(saw_1008);
    assert_true(saw_1047);
}

static void when_every_target_answers_503_the_answer_is_480_with_the_peers_diagnostics(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[1024];
    size_t n =
        request(m, sizeof m, "MESSAGE", "sip:bob@peer.test", "z9hG4bK-ms2", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    struct ctl_target t = target(CN_TRANSPORT_TCP, 7001, NULL);
    ctl_proxy_forward(f->cw, NULL, msg, &f->up, &t, 1, NULL);
    answer_from(f, 0, 503, "Service Unavailable", "ms-diagnostics: 1034;reason=\"x\"\r\n");
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1].text), 480);
    assert_true(header(rec.sent[1].text, "ms-diagnostics", v, sizeof v));
    assert_string_equal(v, "1034;reason=\"x\"");
    assert_true(header(rec.sent[1].text, "Warning", v, sizeof v));
    assert_non_null(strstr(v, "answered 503"));
}

static void a_response_for_another_workers_branch_is_handed_to_it(void **state)
{
    struct fixture *f = *state;
    const char *resp = "SIP/2.0 180 Ringing\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKcn01p0123456789abcdef\r\n"
                       "Via: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK-x\r\n"
                       "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: o1\r\n"
                       "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    deliver_str(f, resp, &f->up);
    assert_int_equal(rec.posts[1], 1);
    assert_int_equal(rec.n, 0);
}

static void a_host_name_next_hop_is_answered_503_until_dns_is_available(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[512];
    size_t n = request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-dns1", 1, NULL,
                       "<sip:127.0.0.1:5060;lr>, <sip:edge.peer.test;transport=tls;lr>", NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 503);
    assert_true(header(rec.sent[0].text, "Warning", v, sizeof v));
    assert_non_null(strstr(v, "name resolution for in-dialog targets not yet available"));
    assert_int_equal(rec.connects, 0);
}

static void an_ip_maddr_reaches_a_named_host_with_its_name_checked(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    struct ctl_target seen;
    size_t n = request(m, sizeof m, "OPTIONS", "sip:meet@example.test", "z9hG4bK-ma1", 1, NULL,
                       "<sip:127.0.0.1:5060;lr>, "
                       "<sip:edge.peer.test:7005;transport=tls;lr;maddr=127.0.0.1>",
                       NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    assert_int_equal(rec.sent[0].to.transport, CN_TRANSPORT_TLS);
    assert_int_equal(port_of(&rec.sent[0].to.addr), 7005);
    (void)seen;
    /* a TLS failure names the host we asked for */
    cn_peer_t c = rec.sent[0].to;
    ctl_on_conn_event(f->cw, &c, CTL_CONN_FAILED, "TLS 127.0.0.1:7005: x: hostname mismatch",
                      f->now);
    tick(f, f->now);
    assert_int_equal(rec.n, 2);
    assert_non_null(strstr(rec.sent[1].text, "tls-target=\"edge.peer.test\""));
}

static void a_route_to_us_with_our_own_request_uri_goes_to_the_user_agent(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = request(m, sizeof m, "OPTIONS", "sip:meet@example.test", "z9hG4bK-ua1", 1, NULL,
                       "<sip:127.0.0.1:5060;lr>", NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 200);
    assert_non_null(strstr(rec.sent[0].text, "Allow: "));
    assert_int_equal(rec.connects, 0);
}

static void a_closed_connection_fails_a_waiting_request_over_at_once(void **state)
{
    struct fixture *f = *state;
    char m[4096], v[512];
    size_t n =
        request(m, sizeof m, "MESSAGE", "sip:bob@peer.test", "z9hG4bK-cl1", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    struct ctl_target t = target(CN_TRANSPORT_TCP, 7001, NULL);
    ctl_proxy_forward(f->cw, NULL, msg, &f->up, &t, 1, NULL);
    cn_peer_t other = rec.sent[0].to;
    other.conn_id = 9999; /* another connection: nothing happens */
    ctl_on_conn_event(f->cw, &other, CTL_CONN_CLOSED, NULL, f->now);
    tick(f, f->now);
    assert_int_equal(rec.n, 1);
    ctl_on_conn_event(f->cw, &rec.sent[0].to, CTL_CONN_CLOSED, NULL, f->now);
    tick(f, f->now);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1].text), 504);
    assert_true(header(rec.sent[1].text, "Warning", v, sizeof v));
    assert_non_null(strstr(v, "connection closed"));
}

static void a_full_transaction_table_is_answered_503_with_retry_after(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = request(m, sizeof m, "MESSAGE", "sip:bob@peer.test", "z9hG4bK-full1", 1, NULL,
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1); /* forwarded: one server and one client transaction */
    n = request(m, sizeof m, "MESSAGE", "sip:bob@peer.test", "z9hG4bK-full2", 2, NULL, ROUTE_VIA_US,
                NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1].text), 503);
    assert_non_null(strstr(rec.sent[1].text, "Retry-After: 1"));
}

static void forwarding_rewrites_only_what_it_must(void **state)
{
    (void)state;
    const char *in =
        "INVITE sip:a@b SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2\r\n"
        "Route: <sip:127.0.0.1:5060;lr>, <sip:192.0.2.9;lr>\r\n"
        "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: fw1\r\nCSeq: 7 INVITE\r\n"
        "X-Folded: one\r\n two\r\n"
        "Content-Length: 3\r\n\r\nabc";
    sip_msg_t *m = NULL;
    assert_int_equal(sip_msg_parse(in, strlen(in), &m, NULL, 0), SIP_MSG_OK);
    char out[2048];
    struct sip_msg_fwd fw = {
        .via = "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKme", .pop_routes = 1, .max_forwards = 70};
    ssize_t n = sip_msg_build_forward(m, &fw, out, sizeof out);
    assert_true(n > 0);
    out[n] = 0;
    assert_non_null(strstr(
        out, "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKme\r\n"));
    assert_non_null(strstr(out, "\r\nMax-Forwards: 70\r\n"));
    assert_non_null(strstr(out, "\r\nRoute: <sip:192.0.2.9;lr>\r\n"));
    assert_null(strstr(out, "127.0.0.1:5060;lr"));
    assert_non_null(strstr(
        out,
        "Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2\r\n"));
    assert_non_null(strstr(out, "X-Folded: one\r\n two\r\n"));
    assert_non_null(strstr(out, "Content-Length: 3\r\n\r\nabc"));
    assert_true(out[n - 1] == 'c');
    /* a response loses only its top Via value, even from a shared line */
    const char *resp =
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKme, SIP/2.0/TCP "
        "192.0.2.1;branch=z9hG4bK1\r\n"
        "From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: fw1\r\nCSeq: 7 INVITE\r\n\r\n";
    sip_msg_t *r = NULL;
    assert_int_equal(sip_msg_parse(resp, strlen(resp), &r, NULL, 0), SIP_MSG_OK);
    struct sip_msg_fwd rv = {.max_forwards = -1, .pop_via = true};
    n = sip_msg_build_forward(r, &rv, out, sizeof out);
    assert_true(n > 0);
    out[n] = 0;
    assert_null(strstr(out, "z9hG4bKme"));
    assert_non_null(strstr(out, "\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"));
    assert_int_equal(sip_msg_build_forward(r, &rv, out, 20), -1);
    struct sip_msg_fwd bad = {.ruri = "sip:a\r\nX: y", .max_forwards = -1};
    assert_int_equal(sip_msg_build_forward(m, &bad, out, sizeof out), -1);
    /* the request came from another address than its sent-by: the Via of the hop it
     * came from says where (RFC 3261 §18.2.1), the Vias below stay as they were */
    sip_msg_set_source(m, "198.51.100.4", 5070);
    n = sip_msg_build_forward(m, &fw, out, sizeof out);
    assert_true(n > 0);
    out[n] = 0;
    assert_non_null(strstr(out, "\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1"
                                ";received=198.51.100.4, SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2\r\n"));
    assert_non_null(strstr(out, "\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKme\r\n"));
    sip_msg_free(m);
    sip_msg_free(r);
}

static void a_cancel_after_a_provisional_goes_downstream_at_once(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t i = invite_via_route(f, "z9hG4bK-up6");
    answer_from(f, i, 183, "Session Progress", NULL);
    assert_int_equal(rec.n, 3);
    size_t n = request(m, sizeof m, "CANCEL", "sip:meet@example.test", "z9hG4bK-up6", 1, NULL,
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 5);
    bool up200 = false, down_cancel = false;
    for (size_t k = 3; k < 5; k++) {
        up200 |= status_of(rec.sent[k].text) == 200 && rec.sent[k].to.transport == CN_TRANSPORT_UDP;
        down_cancel |= starts_with(rec.sent[k].text, "CANCEL ") &&
                       rec.sent[k].to.transport == CN_TRANSPORT_TLS;
    }
    assert_true(up200);
    assert_true(down_cancel);
    /* the CANCEL retransmitted by the client: answered again, not sent on again */
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 6);
    assert_int_equal(status_of(rec.sent[5].text), 200);
}

static void a_cancelled_invite_without_any_answer_ends_in_487(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    invite_via_route(f, "z9hG4bK-up7");
    size_t n = request(m, sizeof m, "CANCEL", "sip:meet@example.test", "z9hG4bK-up7", 1, NULL,
                       ROUTE_VIA_US, NULL);
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 3);
    tick(f, f->now + 64 * 500); /* Timer B: no other target is tried once cancelled */
    assert_int_equal(rec.n, 4);
    assert_int_equal(status_of(rec.sent[3].text), 487);
    assert_int_equal(rec.connects, 1);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
}

static void timer_c_cancels_an_invite_that_rings_too_long(void **state)
{
    struct fixture *f = *state;
    size_t i = invite_via_route(f, "z9hG4bK-tc1");
    answer_from(f, i, 180, "Ringing", NULL);
    assert_int_equal(rec.n, 3);
    tick(f, f->now + CTL_PROXY_TIMER_C_MS - 1);
    assert_int_equal(rec.n, 3);
    tick(f, f->now + 1);
    assert_int_equal(rec.n, 4);
    assert_true(starts_with(rec.sent[3].text, "CANCEL sip:meet@example.test SIP/2.0"));
    answer_from(f, i, 487, "Request Terminated", NULL);
    bool relayed = false;
    for (size_t k = 4; k < rec.n; k++)
        relayed |= status_of(rec.sent[k].text) == 487;
    assert_true(relayed);
}

static void a_non_invite_over_udp_is_resent_on_timer_e_and_fails_over_on_timer_f(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n =
        request(m, sizeof m, "MESSAGE", "sip:bob@peer.test", "z9hG4bK-te1", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    struct ctl_target t[2] = {target(CN_TRANSPORT_UDP, 7001, NULL),
                              target(CN_TRANSPORT_UDP, 7002, NULL)};
    ctl_proxy_forward(f->cw, NULL, msg, &f->up, t, 2, NULL);
    assert_int_equal(rec.n, 1);
    uint64_t t0 = f->now;
    unsigned resent = 0;
    for (uint64_t at = t0 + 100; at < t0 + 64 * 500; at += 100) {
        size_t before = rec.n;
        tick(f, at);
        resent += (unsigned)(rec.n - before);
    }
    /* T1, 2T1, 4T1, then every T2 up to 64*T1: 500, 1500, 3500, 7500, ... 31500 */
    assert_int_equal(resent, 10);
    for (size_t k = 1; k < rec.n; k++)
        assert_int_equal(port_of(&rec.sent[k].to.addr), 7001);
    size_t before = rec.n;
    tick(f, t0 + 64 * 500); /* Timer F: the second target */
    assert_int_equal(rec.n, before + 1);
    assert_int_equal(port_of(&rec.sent[before].to.addr), 7002);
    answer_from(f, before, 200, "OK", NULL);
    assert_int_equal(status_of(rec.sent[rec.n - 1].text), 200);
    assert_int_equal(ctl_proxy_count(f->cw), 0);
}

static void a_callers_own_server_transaction_is_proxied_and_answered_through(void **state)
{
    struct fixture *f = *state;
    char m[4096], key[TXN_KEY_MAX];
    size_t n =
        request(m, sizeof m, "INVITE", "sip:meet@example.test", "z9hG4bK-st1", 1, NULL, NULL, NULL);
    sip_msg_t *msg = NULL;
    assert_int_equal(sip_msg_parse(m, n, &msg, NULL, 0), SIP_MSG_OK);
    int klen = ctl_txn_key(msg, key, sizeof key, false);
    assert_true(klen > 0);
    struct ctl_txn *st = ctl_txn_new(f->cw, key, (size_t)klen, &f->up, true);
    assert_non_null(st);
    struct ctl_target t = target(CN_TRANSPORT_TLS, 7001, "node2.example.test");
    struct ctl_proxy_opts o = {.record_route = true, .report = rec_report};
    assert_int_equal(ctl_proxy_forward(f->cw, st, msg, NULL, &t, 1, &o), CTL_PROXY_FORWARDED);
    assert_true(st->proxied);
    assert_int_equal(rec.n, 1); /* the INVITE on; no 100 of ours in the caller's transaction */
    assert_true(starts_with(rec.sent[0].text, "INVITE "));
    /* a retransmission from the caller is absorbed by that transaction */
    deliver(f, m, n, &f->up);
    assert_int_equal(rec.n, 1);
    answer_from(f, 0, 180, "Ringing", NULL);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1].text), 180);
    deliver(f, m, n, &f->up); /* now the 180 is what a retransmission gets */
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2].text), 180);
    answer_from(f, 0, 200, "OK", NULL);
    assert_int_equal(status_of(rec.sent[rec.n - 1].text), 200);
    assert_int_equal(rec.ev[rec.n_ev - 1].kind, CTL_PROXY_EV_DONE);
    assert_int_equal(rec.ev[rec.n_ev - 1].status, 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_forwarded_invite_gets_our_via_a_lower_max_forwards_record_route_and_new_ruri, setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_preloaded_route_through_us_is_popped_and_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_preloaded_route_is_refused_unless_the_peer_is_verified,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_100_is_absorbed_and_180_and_200_are_relayed_without_our_via, setup, teardown),
        cmocka_unit_test_setup_teardown(the_ack_for_a_2xx_follows_the_route_set_statelessly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_bye_pops_our_routes_and_its_200_is_relayed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_non_2xx_is_relayed_and_acknowledged_downstream_hop_by_hop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_cancel_gets_200_and_goes_downstream_once_a_provisional_came, setup, teardown),
        cmocka_unit_test_setup_teardown(max_forwards_zero_is_answered_483_and_nothing_is_sent_on,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_refused_connection_fails_over_and_a_name_mismatch_ends_in_504_with_1010, setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_failed_tls_handshake_ends_in_504_with_1047, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_refused_port_at_connect_time_ends_in_504_naming_host_and_port, setup, teardown),
        cmocka_unit_test_setup_teardown(
            no_answer_before_timer_b_ends_in_504_after_retransmissions_over_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_503_fails_over_and_the_next_peers_ms_diagnostics_are_relayed_untouched, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            when_every_target_answers_503_the_answer_is_480_with_the_peers_diagnostics, setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_response_for_another_workers_branch_is_handed_to_it,
                                        setup_2_workers, teardown),
        cmocka_unit_test_setup_teardown(a_host_name_next_hop_is_answered_503_until_dns_is_available,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(an_ip_maddr_reaches_a_named_host_with_its_name_checked,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_route_to_us_with_our_own_request_uri_goes_to_the_user_agent, setup, teardown),
        cmocka_unit_test_setup_teardown(a_closed_connection_fails_a_waiting_request_over_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_full_transaction_table_is_answered_503_with_retry_after,
                                        setup_tiny, teardown),
        cmocka_unit_test_setup_teardown(a_cancel_after_a_provisional_goes_downstream_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_cancelled_invite_without_any_answer_ends_in_487, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(timer_c_cancels_an_invite_that_rings_too_long, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_non_invite_over_udp_is_resent_on_timer_e_and_fails_over_on_timer_f, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_callers_own_server_transaction_is_proxied_and_answered_through, setup, teardown),
        cmocka_unit_test(forwarding_rewrites_only_what_it_must),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
