/* Federation wired into the worker: fed_wire.c with a recording ctl_io. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl_internal.h"
#include "ctl_msg.h"
#include "fed_history.h"
#include "fed_route.h"
#include "fed_wire.h"

struct recorder {
    size_t n;
    char sent[8][4096];
    void *to_control;
};
static struct recorder rec;

static int rec_send(void *io, const cn_peer_t *to, const char *buf, size_t len)
{
    (void)io;
    (void)to;
    if (rec.n < 8) {
        size_t k = len < 4095 ? len : 4095;
        memcpy(rec.sent[rec.n], buf, k);
        rec.sent[rec.n][k] = 0;
        rec.n++;
    }
    return 0;
}
static int rec_post(void *io, unsigned to, void *msg)
{
    (void)io;
    (void)to;
    (void)msg;
    return -1;
}
static void rec_close(void *io, const cn_peer_t *peer)
{
    (void)io;
    (void)peer;
}
static int rec_to_control(void *io, void *msg)
{
    (void)io;
    free(rec.to_control);
    rec.to_control = msg;
    return 0;
}

struct fixture {
    struct ctl_conf conf;
    struct ctl_vmr_conf vmrs[1];
    struct ctl_shared *sh;
    struct ctl_worker *cw;
    struct ctl_stats stats;
    struct fed_router *router;
    struct fed_history *history;
    cn_peer_t up;
};

static int setup(void **state)
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
    f->conf.vmrs = f->vmrs;
    f->conf.n_vmrs = 1;
    struct ctl_listen ls = {.host = "127.0.0.1", .udp_port = 5060, .tcp_port = 5060,
                            .tls_port = 5061};
    char err[256];
    f->sh = ctl_shared_create(&f->conf, &ls, 1, err, sizeof err);
    assert_non_null(f->sh);

    struct fed_route_conf rc;
    fed_route_conf_defaults(&rc);
    struct fed_rule_conf rule;
    fed_rule_conf_defaults(&rule);
    snprintf(rule.name, sizeof rule.name, "federated");
    rule.mode = FED_MODE_ANY_ALIAS;
    snprintf(rule.target, sizeof rule.target, "dns");
    rc.rules = &rule;
    rc.n_rules = 1;
    char allow[1][FED_NAME_BUF] = {"partner.test"};
    rc.allow = allow;
    rc.n_allow = 1;
    const char *locals[] = {"example.test"};
    struct fed_router_env env = {.local_domains = locals, .n_local_domains = 1,
                                 .diag_source = "sip.example.test", .n_workers = 1};
    f->router = fed_router_new(&rc, &env, err, sizeof err);
    assert_non_null(f->router);
    f->history = fed_history_new(16, 1);
    assert_non_null(f->history);
    struct fed_wire_conf wc = {.router = f->router, .history = f->history,
                               .diag_source = "sip.example.test"};
    assert_int_equal(fed_wire_attach(f->sh, &wc), 0);

    ctl_io_t io = {.send = rec_send, .post = rec_post, .close = rec_close,
                   .to_control = rec_to_control};
    f->cw = ctl_worker_create(f->sh, 0, &io, &f->stats);
    assert_non_null(f->cw);
    f->up.transport = CN_TRANSPORT_UDP;
    struct sockaddr_in *a = (struct sockaddr_in *)&f->up.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons(5090);
    inet_pton(AF_INET, "127.0.0.1", &a->sin_addr);
    f->up.addrlen = sizeof *a;
    memset(&rec, 0, sizeof rec);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ctl_worker_free(f->cw);
    ctl_shared_free(f->sh);
    fed_router_free(f->router);
    fed_history_free(f->history);
    free(rec.to_control);
    rec.to_control = NULL;
    free(f);
    return 0;
}

static void deliver(struct fixture *f, const char *method, const char *target)
{
    char m[2048];
    int n = snprintf(m, sizeof m,
                     "%s sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK%s1\r\n"
                     "Max-Forwards: 70\r\nFrom: <sip:alice@example.test>;tag=a1\r\n"
                     "To: <sip:%s>\r\nCall-ID: c-%s-it\r\nCSeq: 1 %s\r\n"
                     "Content-Length: 0\r\n\r\n",
                     method, target, method, target, method, method);
    ctl_on_message(f->cw, m, (size_t)n, &f->up, 1000);
}

static int status_of(const char *resp)
{
    int st = 0;
    sscanf(resp, "SIP/2.0 %d", &st);
    return st;
}

static struct fed_history_record *newest(struct fixture *f, size_t *n)
{
    struct fed_history_record *recs = NULL;
    *n = fed_history_snapshot(f->history, 1, &recs);
    return recs;
}

static void a_domain_outside_the_allow_list_is_refused_403_with_1027_and_recorded(void **state)
{
    struct fixture *f = *state;
    deliver(f, "MESSAGE", "bob@stranger.test");
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0]), 403);
    assert_non_null(strstr(rec.sent[0], "ms-diagnostics: 1027;"));
    assert_non_null(strstr(rec.sent[0], "Warning: 399 node1"));
    assert_null(rec.to_control);
    size_t n;
    struct fed_history_record *r = newest(f, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].status, 403);
    assert_int_equal(r[0].diag_code, 1027);
    free(r);
}

static void a_dns_target_is_parked_and_a_failed_locate_answers_504_with_1009(void **state)
{
    struct fixture *f = *state;
    deliver(f, "INVITE", "bob@partner.test");
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0]), 100);
    struct ctl_msg_locate *q = rec.to_control;
    assert_non_null(q);
    rec.to_control = NULL;
    assert_int_equal(q->hdr.kind, CTL_MSG_LOCATE);
    assert_int_equal(q->inbound, 0);
    assert_int_equal(q->n_targets, 1);
    assert_string_equal(q->targets[0].domain, "partner.test");
    /* the control thread's answer: strict naming refused the only SRV target */
    q->hdr.kind = CTL_MSG_LOCATED;
    q->status = 504;
    q->diag_code = 1009;
    snprintf(q->diag, sizeof q->diag,
             "1009;reason=\"No match for domain in DNS SRV results\";domain=\"partner.test\"");
    snprintf(q->detail, sizeof q->detail, "partner.test: strict naming refused sip.x.partner.test");
    q->n_lines = 1;
    snprintf(q->lines[0], sizeof q->lines[0], "_sipfederationtls._tcp.partner.test SRV 1 100 "
                                              "5061 sip.x.partner.test");
    ctl_on_post(f->cw, q, 1001);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1]), 504);
    assert_non_null(strstr(rec.sent[1], "ms-diagnostics: 1009;"));
    size_t n;
    struct fed_history_record *r = newest(f, &n);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].status, 504);
    assert_int_equal(r[0].diag_code, 1009);
    assert_int_equal(r[0].n_dns, 1);
    assert_string_equal(r[0].zone, "dns");
    free(r);
}

static void a_request_for_our_room_stays_with_the_user_agent(void **state)
{
    struct fixture *f = *state;
    deliver(f, "OPTIONS", "meet@example.test");
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0]), 200);
    assert_null(rec.to_control);
    size_t n;
    struct fed_history_record *r = newest(f, &n);
    assert_int_equal(n, 0);
    free(r);
}

static void on_done(void *arg, struct ctl_msg_locate *q)
{
    *(struct ctl_msg_locate **)arg = q;
}

static void a_locate_without_a_resolver_is_answered_503(void **state)
{
    (void)state;
    struct ctl_msg_locate *q = calloc(1, sizeof *q);
    assert_non_null(q);
    q->hdr.kind = CTL_MSG_LOCATE;
    struct ctl_msg_locate *got = NULL;
    fed_wire_central_locate(NULL, q, on_done, &got);
    assert_ptr_equal(got, q);
    assert_int_equal(q->hdr.kind, CTL_MSG_LOCATED);
    assert_int_equal(q->status, 503);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_domain_outside_the_allow_list_is_refused_403_with_1027_and_recorded, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            a_dns_target_is_parked_and_a_failed_locate_answers_504_with_1009, setup, teardown),
        cmocka_unit_test_setup_teardown(a_request_for_our_room_stays_with_the_user_agent, setup,
                                        teardown),
        cmocka_unit_test(a_locate_without_a_resolver_is_answered_503),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
