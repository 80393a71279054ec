/* Control, one worker, driven message by message with a synthetic clock: what the
 * node's user agent answers and how its transactions and dialogs behave.
 * The dataplane is replaced by a recorder of what control sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_msg.h"
#include "ctl_worker.h"
#include "sdp_answer.h"

#define MAX_SENT 128

struct recorder {
    char sent[MAX_SENT][8192];
    size_t n;
    unsigned posts[8];
    void *last_post;
    int closes;
};

static struct recorder rec;

static int rec_send(void *io, const cn_peer_t *to, const char *buf, size_t len)
{
    (void)io;
    (void)to;
    assert_true(rec.n < MAX_SENT);
    assert_true(len < sizeof rec.sent[0]);
    memcpy(rec.sent[rec.n], buf, len);
    rec.sent[rec.n][len] = 0;
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

/* The media layer, recorded: the plans it was given and the legs still open. */
struct media_rec {
    unsigned opens, updates, closes;
    struct sdp_plan last;
};
static struct media_rec media;

static int rec_media_open(void *io, const struct ctl_media_req *req, struct sdp_plan *plan,
                          uint32_t *leg, char *why, size_t whylen)
{
    (void)io;
    (void)req;
    (void)why;
    (void)whylen;
    media.last = *plan;
    *leg = ++media.opens;
    return CTL_MEDIA_OK;
}

static int rec_media_update(void *io, uint32_t leg, const struct ctl_media_req *req,
                            struct sdp_plan *plan, char *why, size_t whylen)
{
    (void)io;
    (void)leg;
    (void)req;
    (void)why;
    (void)whylen;
    media.last = *plan;
    media.updates++;
    return CTL_MEDIA_OK;
}

static void rec_media_close(void *io, uint32_t leg)
{
    (void)io;
    (void)leg;
    media.closes++;
}

static void rec_close(void *io, const cn_peer_t *peer)
{
    (void)io;
    (void)peer;
    rec.closes++;
}

struct fixture {
    struct ctl_conf conf;
    struct ctl_vmr_conf vmrs[2];
    struct ctl_shared *sh;
    struct ctl_worker *cw;
    struct ctl_stats stats;
    cn_peer_t udp, tcp;
    uint64_t now;
};

static int setup_n(void **state, unsigned id, unsigned n_workers)
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
    f->conf.max_transactions = 100;
    f->conf.max_dialogs = 100;
    snprintf(f->vmrs[0].alias, sizeof f->vmrs[0].alias, "meet@example.test");
    snprintf(f->vmrs[1].alias, sizeof f->vmrs[1].alias, "ring@example.test");
    f->vmrs[1].answer_delay_ms = 2000;
    f->conf.vmrs = f->vmrs;
    f->conf.n_vmrs = 2;
    struct ctl_listen ls = {.host = "127.0.0.1", .udp_port = 5060, .tcp_port = 5060,
                            .tls_port = 5061};
    char err[256];
    f->sh = ctl_shared_create(&f->conf, &ls, n_workers, err, sizeof err);
    assert_non_null(f->sh);
    ctl_io_t io = {.send = rec_send, .post = rec_post, .close = rec_close, .io = NULL};
    f->cw = ctl_worker_create(f->sh, id, &io, &f->stats);
    assert_non_null(f->cw);
    f->udp.transport = CN_TRANSPORT_UDP;
    f->tcp.transport = CN_TRANSPORT_TCP;
    f->tcp.conn_id = 7;
    f->now = 1000000;
    memset(&rec, 0, sizeof rec);
    *state = f;
    return 0;
}

static int setup(void **state) { return setup_n(state, 0, 1); }

/* One worker with a (recorded) media layer; room "secure" requires SRTP. */
static int setup_media(void **state)
{
    setup_n(state, 0, 1);
    struct fixture *f = *state;
    ctl_worker_free(f->cw);
    ctl_shared_free(f->sh);
    snprintf(f->vmrs[1].alias, sizeof f->vmrs[1].alias, "secure@example.test");
    f->vmrs[1].answer_delay_ms = 0;
    f->vmrs[1].srtp = CTL_SRTP_REQUIRED;
    struct ctl_listen ls = {.host = "127.0.0.1", .udp_port = 5060, .tcp_port = 5060,
                            .tls_port = 5061};
    char err[256];
    f->sh = ctl_shared_create(&f->conf, &ls, 1, err, sizeof err);
    assert_non_null(f->sh);
    ctl_io_t io = {.send = rec_send,
                   .post = rec_post,
                   .close = rec_close,
                   .media_open = rec_media_open,
                   .media_update = rec_media_update,
                   .media_close = rec_media_close};
    f->cw = ctl_worker_create(f->sh, 0, &io, &f->stats);
    assert_non_null(f->cw);
    memset(&media, 0, sizeof media);
    return 0;
}
static int setup_w0_of_2(void **state) { return setup_n(state, 0, 2); }

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

static const char SDP_PCMU[] = "v=0\r\n"
                               "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
                               "s=-\r\n"
                               "c=IN IP4 127.0.0.1\r\n"
                               "t=0 0\r\n"
                               "m=audio 6000 RTP/AVP 0\r\n"
                               "a=rtpmap:0 PCMU/8000\r\n";

/* A request as sipp's uac scenario sends it. */
static size_t req(char *out, size_t cap, const char *method, const char *user,
                  const char *branch, const char *call_id, unsigned cseq, const char *to_tag,
                  const char *extra, const char *body)
{
    int n = snprintf(out, cap,
                     "%s sip:%s@127.0.0.1:5060 SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=%s\r\n"
                     "From: sipp <sip:sipp@127.0.0.1:5061>;tag=abc123\r\n"
                     "To: <sip:%s@127.0.0.1:5060>%s%s\r\n"
                     "Call-ID: %s\r\n"
                     "CSeq: %u %s\r\n"
                     "Contact: sip:sipp@127.0.0.1:5061\r\n"
                     "Max-Forwards: 70\r\n"
                     "%s"
                     "%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, user, branch, user, to_tag ? ";tag=" : "", to_tag ? to_tag : "",
                     call_id, cseq, strcmp(method, "ACK") == 0 ? "ACK" : method,
                     extra ? extra : "", body ? "Content-Type: application/sdp\r\n" : "",
                     body ? strlen(body) : 0, body ? body : "");
    return (size_t)n;
}

static void deliver(struct fixture *f, const char *msg, size_t len, const cn_peer_t *p)
{
    ctl_on_message(f->cw, msg, len, p, f->now);
}

static int status_of(const char *resp)
{
    int code = 0;
    sscanf(resp, "SIP/2.0 %d", &code);
    return code;
}

/* The To-tag in a response, copied into out. */
static void to_tag_of(const char *resp, char *out, size_t cap)
{
    const char *to = strstr(resp, "\r\nTo:");
    assert_non_null(to);
    const char *tag = strstr(to, ";tag=");
    const char *eol = strstr(to + 2, "\r\n");
    assert_non_null(tag);
    assert_true(tag < eol);
    tag += 5;
    size_t n = strcspn(tag, ";\r\n");
    assert_true(n < cap);
    memcpy(out, tag, n);
    out[n] = 0;
}

static uint64_t stat(const _Atomic uint64_t *c) { return atomic_load(c); }

static void options_gets_200_with_allow_and_a_to_tag(void **state)
{
    struct fixture *f = *state;
    char m[2048], tag[64];
    size_t n = req(m, sizeof m, "OPTIONS", "meet", "z9hG4bK-o1", "opt-1", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0]), 200);
    assert_non_null(strstr(rec.sent[0], "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS"));
    assert_non_null(strstr(rec.sent[0], "Accept: application/sdp"));
    to_tag_of(rec.sent[0], tag, sizeof tag);
    assert_int_equal(ctl_tag_owner(tag, strlen(tag)), 0);
}

static void a_call_to_a_vmr_is_answered_confirmed_and_ended(void **state)
{
    struct fixture *f = *state;
    char m[4096], tag[64];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-i1", "call-1", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[0]), 100);
    assert_int_equal(status_of(rec.sent[1]), 200);
    assert_non_null(strstr(rec.sent[1], "m=audio 40000 RTP/AVP 0"));
    assert_non_null(strstr(rec.sent[1], "Contact: <sip:meet@127.0.0.1:5060;transport=udp>"));
    to_tag_of(rec.sent[1], tag, sizeof tag);
    assert_int_equal(stat(&f->stats.dialogs), 1);
    assert_int_equal(stat(&f->stats.calls), 0);

    n = req(m, sizeof m, "ACK", "meet", "z9hG4bK-a1", "call-1", 1, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 2); /* ACK gets no answer */
    assert_int_equal(stat(&f->stats.calls), 1);
    assert_int_equal(stat(&f->stats.calls_total), 1);

    /* 2xx retransmission stops after the ACK */
    f->now += 10000;
    ctl_tick(f->cw, f->now);
    assert_int_equal(rec.n, 2);

    n = req(m, sizeof m, "BYE", "meet", "z9hG4bK-b1", "call-1", 2, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2]), 200);
    assert_int_equal(stat(&f->stats.calls), 0);
    assert_int_equal(stat(&f->stats.dialogs), 0);

    /* the port came back: the next call gets it again */
    n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-i2", "call-2", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_non_null(strstr(rec.sent[4], "m=audio 40000 RTP/AVP 0"));
}

static void a_retransmitted_invite_is_absorbed_and_answered_again(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-r1", "call-r", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2]), 200);
    assert_string_equal(rec.sent[1], rec.sent[2]);
    assert_int_equal(stat(&f->stats.dialogs), 1);
    assert_int_equal(stat(&f->stats.retransmissions_absorbed), 1);
}

static void without_ack_the_200_is_resent_then_the_dialog_ends(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-n1", "call-n", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 2);
    /* T1, 2T1, 4T1, then capped at T2 */
    uint64_t start = f->now;
    for (uint64_t t = start; t <= start + 64 * 500 + 10; t += 50)
        ctl_tick(f->cw, t);
    size_t resent = rec.n - 2;
    /* 0.5+1+2+4+4*7 = 35.5 s > 32 s: 4 + 7 = 11 retransmissions before 32 s */
    assert_in_range(resent, 9, 11);
    for (size_t i = 2; i < rec.n; i++)
        assert_int_equal(status_of(rec.sent[i]), 200);
    assert_int_equal(stat(&f->stats.dialogs), 0);
    assert_int_equal(stat(&f->stats.no_ack_timeouts), 1);
    assert_int_equal(stat(&f->stats.transactions), 0);
}

static void reliable_transports_get_no_retransmissions(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-t1", "call-t", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->tcp);
    assert_int_equal(rec.n, 2);
    for (uint64_t t = f->now; t <= f->now + 40000; t += 100)
        ctl_tick(f->cw, t);
    assert_int_equal(rec.n, 2);
    n = req(m, sizeof m, "OPTIONS", "meet", "z9hG4bK-t2", "opt-t", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->tcp);
    /* Timer J is 0 on TCP: the OPTIONS transaction is gone at once */
    assert_int_equal(stat(&f->stats.transactions), 0);
}

static void unknown_alias_gets_404_and_its_ack_ends_the_transaction(void **state)
{
    struct fixture *f = *state;
    char m[4096], tag[64];
    size_t n = req(m, sizeof m, "INVITE", "nobody", "z9hG4bK-x1", "call-x", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0]), 404);
    to_tag_of(rec.sent[0], tag, sizeof tag);
    assert_int_equal(stat(&f->stats.transactions), 1);
    n = req(m, sizeof m, "ACK", "nobody", "z9hG4bK-x1", "call-x", 1, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    ctl_tick(f->cw, f->now + 5001); /* Timer I */
    assert_int_equal(stat(&f->stats.transactions), 0);
    assert_int_equal(rec.n, 1);
}

static void unsupported_methods_get_501_and_require_gets_420(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "FROB", "meet", "z9hG4bK-f1", "frob-1", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[0]), 501);
    assert_non_null(strstr(rec.sent[0], "Allow: "));
    n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-q1", "req-1", 1, NULL, "Require: 100rel\r\n",
            SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[1]), 420);
    assert_non_null(strstr(rec.sent[1], "Unsupported: 100rel"));
    assert_int_equal(stat(&f->stats.dialogs), 0);
}

static void cancel_while_ringing_gets_200_and_the_invite_487(void **state)
{
    struct fixture *f = *state;
    char m[4096], tag[64];
    size_t n = req(m, sizeof m, "INVITE", "ring", "z9hG4bK-c1", "call-c", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1]), 180);
    n = req(m, sizeof m, "CANCEL", "ring", "z9hG4bK-c1", "call-c", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 4);
    assert_int_equal(status_of(rec.sent[2]), 200);
    assert_non_null(strstr(rec.sent[2], "CSeq: 1 CANCEL"));
    assert_int_equal(status_of(rec.sent[3]), 487);
    assert_non_null(strstr(rec.sent[3], "CSeq: 1 INVITE"));
    to_tag_of(rec.sent[3], tag, sizeof tag);
    assert_int_equal(stat(&f->stats.dialogs), 0);
    /* the ringing timer must not answer the cancelled INVITE later */
    ctl_tick(f->cw, f->now + 3000);
    for (size_t i = 4; i < rec.n; i++)
        assert_int_equal(status_of(rec.sent[i]), 487); /* only Timer G resends */
    n = req(m, sizeof m, "ACK", "ring", "z9hG4bK-c1", "call-c", 1, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    ctl_tick(f->cw, f->now + 100000);
    assert_int_equal(stat(&f->stats.transactions), 0);
}

static void ringing_room_answers_after_its_delay(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "INVITE", "ring", "z9hG4bK-d1", "call-d", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    ctl_tick(f->cw, f->now + 1999);
    assert_int_equal(rec.n, 2);
    ctl_tick(f->cw, f->now + 2000);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2]), 200);
    assert_non_null(strstr(rec.sent[2], "application/sdp"));
}

static void cancel_without_invite_and_bye_without_dialog_get_481(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "CANCEL", "meet", "z9hG4bK-zz", "none", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[0]), 481);
    n = req(m, sizeof m, "BYE", "meet", "z9hG4bK-zy", "none", 2, "cn00deadbeefdeadbeef", NULL,
            NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[1]), 481);
}

static void reinvite_is_answered_on_the_same_port(void **state)
{
    struct fixture *f = *state;
    char m[4096], tag[64];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-ri1", "call-ri", 1, NULL, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    to_tag_of(rec.sent[1], tag, sizeof tag);
    n = req(m, sizeof m, "ACK", "meet", "z9hG4bK-ra1", "call-ri", 1, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-ri2", "call-ri", 2, tag, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 3);
    assert_int_equal(status_of(rec.sent[2]), 200);
    assert_non_null(strstr(rec.sent[2], "m=audio 40000 RTP/AVP 0"));
    assert_int_equal(stat(&f->stats.dialogs), 1);
    /* over UDP its 2xx is sent again until the ACK comes (RFC 3261 §13.3.1.4) */
    f->now += 600;
    ctl_tick(f->cw, f->now);
    assert_int_equal(rec.n, 4);
    assert_int_equal(status_of(rec.sent[3]), 200);
    n = req(m, sizeof m, "ACK", "meet", "z9hG4bK-ra2", "call-ri", 2, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    f->now += 10000;
    ctl_tick(f->cw, f->now);
    assert_int_equal(rec.n, 4);
    assert_int_equal(stat(&f->stats.dialogs), 1);
    /* an older CSeq is refused */
    n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-ri3", "call-ri", 1, tag, NULL, SDP_PCMU);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[4]), 500);
}

static void invite_without_sdp_gets_our_offer(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-e1", "call-e", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[1]), 200);
    assert_non_null(strstr(rec.sent[1], "m=audio 40000 RTP/AVP 0 8 101"));
}

/* The request line of the n-th thing sent, e.g. "BYE sip:..." */
static bool sent_starts(size_t i, const char *prefix)
{
    return i < rec.n && strncmp(rec.sent[i], prefix, strlen(prefix)) == 0;
}

static void the_answer_in_the_ack_opens_the_media_of_a_call_without_an_offer(void **state)
{
    struct fixture *f = *state;
    char m[4096], tag[64];
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-d1", "call-d", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[1]), 200);
    assert_non_null(strstr(rec.sent[1], "m=audio 40000 RTP/AVP 0 8 101"));
    assert_int_equal(media.opens, 0); /* nothing to send to yet */
    to_tag_of(rec.sent[1], tag, sizeof tag);

    const char *answer = "v=0\r\no=- 7 7 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\n"
                         "t=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";
    n = req(m, sizeof m, "ACK", "meet", "z9hG4bK-d2", "call-d", 1, tag, NULL, answer);
    deliver(f, m, n, &f->udp);
    assert_int_equal(media.opens, 1);
    assert_string_equal(media.last.audio.remote_addr, "127.0.0.9");
    assert_int_equal(media.last.audio.remote_port, 7000);
    assert_int_equal(media.last.audio.codec, SDP_CODEC_PCMA);
    assert_int_equal(media.last.audio.local_port, 40000);
    assert_false(media.last.audio.secure);
    assert_int_equal(stat(&f->stats.calls), 1);
    assert_int_equal(rec.n, 2); /* no BYE */

    /* a retransmitted ACK changes nothing */
    deliver(f, m, n, &f->udp);
    assert_int_equal(media.opens, 1);
    assert_int_equal(media.updates, 0);
}

static void an_ack_without_a_usable_answer_ends_the_call_with_a_bye(void **state)
{
    struct fixture *f = *state;
    char m[4096], tag[64];
    /* no answer at all */
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-n1", "call-n", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    to_tag_of(rec.sent[1], tag, sizeof tag);
    n = req(m, sizeof m, "ACK", "meet", "z9hG4bK-n2", "call-n", 1, tag, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 3);
    assert_true(sent_starts(2, "BYE sip:"));
    assert_non_null(strstr(rec.sent[2], "no SDP answer in the ACK"));
    assert_int_equal(media.opens, 0);
    assert_int_equal(stat(&f->stats.calls), 0);
    assert_int_equal(stat(&f->stats.dialogs), 0);

    /* an answer with a codec we did not offer */
    n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-n3", "call-n2", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[4]), 200);
    to_tag_of(rec.sent[4], tag, sizeof tag);
    const char *g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                       "t=0 0\r\nm=audio 6000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    n = req(m, sizeof m, "ACK", "meet", "z9hG4bK-n4", "call-n2", 1, tag, NULL, g729);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 6);
    assert_true(sent_starts(5, "BYE sip:"));
    assert_int_equal(media.opens, 0);
    assert_int_equal(stat(&f->stats.dialogs), 0);
}

static void a_room_that_requires_srtp_refuses_an_invite_without_an_offer(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "INVITE", "secure", "z9hG4bK-s1", "call-s", 1, NULL, NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[1]), 488);
    assert_non_null(strstr(rec.sent[1], "requires SRTP"));
    assert_int_equal(stat(&f->stats.dialogs), 0);
}

static void an_offer_we_cannot_meet_gets_488_with_a_warning(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    const char *g729 = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                       "t=0 0\r\nm=audio 6000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n";
    size_t n = req(m, sizeof m, "INVITE", "meet", "z9hG4bK-g1", "call-g", 1, NULL, NULL, g729);
    deliver(f, m, n, &f->udp);
    assert_int_equal(status_of(rec.sent[1]), 488);
    assert_non_null(strstr(rec.sent[1], "Warning: 399 node1 \""));
    assert_int_equal(stat(&f->stats.dialogs), 0);
}

static void missing_call_id_gets_400_with_a_warning(void **state)
{
    struct fixture *f = *state;
    const char *m = "OPTIONS sip:meet@127.0.0.1 SIP/2.0\r\n"
                    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-m1\r\n"
                    "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:meet@127.0.0.1>\r\n"
                    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    deliver(f, m, strlen(m), &f->udp);
    /* a whole Via is enough to answer (RFC 4475 3.3.1): 400 saying what is missing */
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0]), 400);
    assert_non_null(strstr(rec.sent[0], "Call-ID"));
    assert_int_equal(stat(&f->stats.bad_messages), 1);
    const char *m2 = "OPTIONS sip:meet@127.0.0.1 SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-m2\r\n"
                     "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:meet@127.0.0.1>\r\n"
                     "Call-ID: m2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    deliver(f, m2, strlen(m2), &f->udp);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1]), 400);
    assert_non_null(strstr(rec.sent[1], "Warning: 399 node1 \""));
    assert_int_equal(stat(&f->stats.bad_messages), 2);
}

static void garbage_on_a_stream_closes_it(void **state)
{
    struct fixture *f = *state;
    const char junk[] = "\x01\x02\x03 not sip at all\r\n\r\n";
    deliver(f, junk, sizeof junk - 1, &f->tcp);
    assert_int_equal(rec.n, 0);
    assert_int_equal(rec.closes, 1);
}

static void in_dialog_requests_go_to_the_worker_named_in_the_tag(void **state)
{
    struct fixture *f = *state;
    char m[4096];
    size_t n = req(m, sizeof m, "BYE", "meet", "z9hG4bK-w1", "call-w", 2, "cn01aaaaaaaaaaaaaaaa",
                   NULL, NULL);
    deliver(f, m, n, &f->udp);
    assert_int_equal(rec.n, 0);
    assert_int_equal(rec.posts[1], 1);
    assert_int_equal(stat(&f->stats.forwarded), 1);
}

/* Each room's calls go to one worker; the two workers agree which without asking. */
static void a_new_call_goes_to_the_worker_hosting_the_room(void **state)
{
    struct fixture *f = *state;
    ctl_io_t io = {.send = rec_send, .post = rec_post, .close = rec_close, .io = NULL};
    struct ctl_stats st1;
    memset(&st1, 0, sizeof st1);
    struct ctl_worker *w1 = ctl_worker_create(f->sh, 1, &io, &st1);
    assert_non_null(w1);
    const char *rooms[] = {"meet", "ring"};
    for (int i = 0; i < 2; i++) {
        char m[4096], br[32], cid[32];
        snprintf(br, sizeof br, "z9hG4bK-h%d", i);
        snprintf(cid, sizeof cid, "host-%d", i);
        size_t n = req(m, sizeof m, "INVITE", rooms[i], br, cid, 1, NULL, NULL, SDP_PCMU);
        memset(&rec, 0, sizeof rec);
        ctl_on_message(f->cw, m, n, &f->udp, f->now);
        int on0 = rec.posts[1] == 0;
        assert_true(on0 ? rec.n >= 2 : rec.n == 0); /* answered here or handed over */
        ctl_msg_free(rec.last_post);
        memset(&rec, 0, sizeof rec);
        snprintf(br, sizeof br, "z9hG4bK-k%d", i);
        snprintf(cid, sizeof cid, "host1-%d", i);
        n = req(m, sizeof m, "INVITE", rooms[i], br, cid, 1, NULL, NULL, SDP_PCMU);
        ctl_on_message(w1, m, n, &f->udp, f->now);
        assert_int_equal(rec.posts[0], on0 ? 1 : 0);
        assert_true(on0 ? rec.n == 0 : rec.n >= 2);
        ctl_msg_free(rec.last_post);
        rec.last_post = NULL;
    }
    ctl_worker_free(w1);
}

static void transaction_limit_answers_503_with_retry_after(void **state)
{
    struct fixture *f = *state;
    char m[4096], br[32], cid[32];
    for (int i = 0; i < 101; i++) {
        snprintf(br, sizeof br, "z9hG4bK-l%d", i);
        snprintf(cid, sizeof cid, "lim-%d", i);
        size_t n = req(m, sizeof m, "OPTIONS", "meet", br, cid, 1, NULL, NULL, NULL);
        deliver(f, m, n, &f->udp); /* UDP: each waits for Timer J */
    }
    assert_int_equal(status_of(rec.sent[99]), 200);
    assert_int_equal(status_of(rec.sent[100]), 503);
    assert_non_null(strstr(rec.sent[100], "Retry-After: 1"));
    ctl_tick(f->cw, f->now + 64 * 500);
    assert_int_equal(stat(&f->stats.transactions), 0);
}

static void tags_name_their_worker(void **state)
{
    (void)state;
    assert_int_equal(ctl_tag_owner("cn0a0123456789abcdef", 20), 10);
    assert_int_equal(ctl_tag_owner("cnzz0123456789abcdef", 20), -1);
    assert_int_equal(ctl_tag_owner("abc123", 6), -1);
    assert_int_equal(ctl_tag_owner(NULL, 0), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(options_gets_200_with_allow_and_a_to_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(a_call_to_a_vmr_is_answered_confirmed_and_ended, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(a_retransmitted_invite_is_absorbed_and_answered_again,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(without_ack_the_200_is_resent_then_the_dialog_ends, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(reliable_transports_get_no_retransmissions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(unknown_alias_gets_404_and_its_ack_ends_the_transaction,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_methods_get_501_and_require_gets_420, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(cancel_while_ringing_gets_200_and_the_invite_487, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(ringing_room_answers_after_its_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(cancel_without_invite_and_bye_without_dialog_get_481,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(reinvite_is_answered_on_the_same_port, setup, teardown),
        cmocka_unit_test_setup_teardown(invite_without_sdp_gets_our_offer, setup, teardown),
        cmocka_unit_test_setup_teardown(
            the_answer_in_the_ack_opens_the_media_of_a_call_without_an_offer, setup_media,
            teardown),
        cmocka_unit_test_setup_teardown(an_ack_without_a_usable_answer_ends_the_call_with_a_bye,
                                        setup_media, teardown),
        cmocka_unit_test_setup_teardown(
            a_room_that_requires_srtp_refuses_an_invite_without_an_offer, setup_media, teardown),
        cmocka_unit_test_setup_teardown(an_offer_we_cannot_meet_gets_488_with_a_warning, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missing_call_id_gets_400_with_a_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_on_a_stream_closes_it, setup, teardown),
        cmocka_unit_test_setup_teardown(in_dialog_requests_go_to_the_worker_named_in_the_tag,
                                        setup_w0_of_2, teardown),
        cmocka_unit_test_setup_teardown(a_new_call_goes_to_the_worker_hosting_the_room,
                                        setup_w0_of_2, teardown),
        cmocka_unit_test_setup_teardown(transaction_limit_answers_503_with_retry_after, setup,
                                        teardown),
        cmocka_unit_test(tags_name_their_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
