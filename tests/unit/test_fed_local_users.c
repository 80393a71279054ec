/* Users of our own domain that are not rooms, wired through fed_wire.c: the search
 * rules may send them to a neighbour zone (the call control holding the domain's
 * users), never to DNS; rooms, IP literals and refused requests stay with the
 * node's user agent. One worker with a recording ctl_io. */
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

#define USERS_PORT 5070

struct sent {
    char text[4096];
    cn_peer_t to;
};

struct recorder {
    size_t n;
    struct sent sent[8];
    void *to_control;
};
static struct recorder rec;

static int rec_send(void *io, const cn_peer_t *to, const char *buf, size_t len)
{
    (void)io;
    if (rec.n < 8) {
        size_t k = len < 4095 ? len : 4095;
        memcpy(rec.sent[rec.n].text, buf, k);
        rec.sent[rec.n].text[k] = 0;
        rec.sent[rec.n].to = *to;
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

static int rec_connect(void *io, const struct ctl_target *t, cn_peer_t *out, char *err,
                       size_t errlen)
{
    (void)io;
    (void)err;
    (void)errlen;
    memset(out, 0, sizeof *out);
    out->transport = t->transport;
    out->addrlen = t->addrlen;
    memcpy(&out->addr, &t->addr, t->addrlen);
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

static void add_rule(struct fed_rule_conf *r, const char *name, uint32_t prio, const char *target)
{
    fed_rule_conf_defaults(r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->priority = prio;
    r->mode = FED_MODE_ANY_ALIAS;
    snprintf(r->target, sizeof r->target, "%s", target);
}

/* The node of example.test with room meet@example.test and the rules
 *   rooms      any alias -> local, continue
 *   users      .*@example\.test -> neighbour "users" (UDP, 127.0.0.2:5070)  [with_users]
 *   federated  any alias -> dns */
static int setup_with(void **state, bool with_users)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
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
    struct fed_neighbour_conf users;
    fed_neighbour_conf_defaults(&users);
    snprintf(users.name, sizeof users.name, "users");
    assert_int_equal(fed_hostport_parse("127.0.0.2:5070", &users.peers[0], err, sizeof err), 0);
    users.n_peers = 1;
    users.security = FED_SEC_NO_TLS;
    users.transport = FED_TP_UDP;
    users.client_certificates = 0;
    struct fed_rule_conf rules[3];
    size_t n = 0;
    add_rule(&rules[n], "rooms", 10, "local");
    rules[n++].on_match = FED_ON_MATCH_CONTINUE;
    if (with_users) {
        add_rule(&rules[n], "users", 20, "users");
        rules[n].mode = FED_MODE_PATTERN;
        rules[n].pattern_type = FED_PATTERN_REGEX;
        snprintf(rules[n].pattern, sizeof rules[n].pattern, ".*@example\\.test");
        n++;
        rc.neighbours = &users;
        rc.n_neighbours = 1;
    }
    add_rule(&rules[n++], "federated", 100, "dns");
    rc.rules = rules;
    rc.n_rules = n;
    char allow[1][FED_NAME_BUF] = {"partner.test"};
    rc.allow = allow;
    rc.n_allow = 1;
    const char *locals[] = {"example.test"};
    struct fed_router_env env = {.local_domains = locals, .n_local_domains = 1,
                                 .diag_source = "sip.example.test", .n_workers = 1};
    f->router = fed_router_new(&rc, &env, err, sizeof err);
    if (!f->router)
        fail_msg("fed_router_new: %s", err);
    f->history = fed_history_new(16, 1);
    assert_non_null(f->history);
    struct fed_wire_conf wc = {.router = f->router, .history = f->history,
                               .diag_source = "sip.example.test"};
    assert_int_equal(fed_wire_attach(f->sh, &wc), 0);

    ctl_io_t io = {.send = rec_send, .post = rec_post, .close = rec_close,
                   .connect = rec_connect, .to_control = rec_to_control};
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

static int setup_users(void **state)
{
    return setup_with(state, true);
}

static int setup_dns_only(void **state)
{
    return setup_with(state, false);
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

static void deliver_from(struct fixture *f, const char *method, const char *target,
                         const char *from, uint64_t now)
{
    char m[2048];
    int n = snprintf(m, sizeof m,
                     "%s sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5090;branch=z9hG4bK%s1\r\n"
                     "Max-Forwards: 70\r\nFrom: <sip:%s>;tag=a1\r\n"
                     "To: <sip:%s>\r\nCall-ID: c-%s-users\r\nCSeq: 1 %s\r\n"
                     "Content-Length: 0\r\n\r\n",
                     method, target, method, from, target, method, method);
    ctl_on_message(f->cw, m, (size_t)n, &f->up, now);
}

static void deliver(struct fixture *f, const char *method, const char *target)
{
    deliver_from(f, method, target, "alice@example.test", 1000);
}

static int status_of(const char *resp)
{
    int st = 0;
    sscanf(resp, "SIP/2.0 %d", &st);
    return st;
}

static uint16_t port_of(const cn_peer_t *p)
{
    return ntohs(((const struct sockaddr_in *)&p->addr)->sin_port);
}

static size_t history(struct fixture *f, struct fed_history_record **recs)
{
    *recs = NULL;
    return fed_history_snapshot(f->history, 4, recs);
}

/* The 200 a user agent answers to request `req` (its Via lines, From, To with a tag,
 * Call-ID and CSeq). */
static int answer_200(const char *req, char *out, size_t cap)
{
    size_t k = (size_t)snprintf(out, cap, "SIP/2.0 200 OK\r\n");
    for (const char *line = strstr(req, "\r\n"); line && line[2] && line[2] != '\r';
         line = strstr(line + 2, "\r\n")) {
        const char *s = line + 2, *e = strstr(s, "\r\n");
        int len = (int)(e - s);
        if (!strncmp(s, "Via:", 4) || !strncmp(s, "From:", 5) || !strncmp(s, "Call-ID:", 8) ||
            !strncmp(s, "CSeq:", 5))
            k += (size_t)snprintf(out + k, cap - k, "%.*s\r\n", len, s);
        else if (!strncmp(s, "To:", 3))
            k += (size_t)snprintf(out + k, cap - k, "%.*s;tag=ua1\r\n", len, s);
    }
    k += (size_t)snprintf(out + k, cap - k, "Content-Length: 0\r\n\r\n");
    return (int)k;
}

static void a_user_of_our_domain_goes_to_the_neighbour_zone_of_its_rule(void **state)
{
    struct fixture *f = *state;
    deliver(f, "MESSAGE", "bob@example.test");
    assert_int_equal(rec.n, 1);
    assert_non_null(strstr(rec.sent[0].text, "MESSAGE sip:bob@example.test SIP/2.0\r\n"));
    assert_int_equal(rec.sent[0].to.transport, CN_TRANSPORT_UDP);
    assert_int_equal(port_of(&rec.sent[0].to), USERS_PORT);
    assert_null(rec.to_control); /* never located in DNS */

    /* the user agent's 200 goes back upstream, and the history shows the zone */
    char resp[4096];
    int n = answer_200(rec.sent[0].text, resp, sizeof resp);
    cn_peer_t ua = rec.sent[0].to;
    ctl_on_message(f->cw, resp, (size_t)n, &ua, 1001);
    assert_int_equal(rec.n, 2);
    assert_int_equal(status_of(rec.sent[1].text), 200);
    assert_int_equal(port_of(&rec.sent[1].to), 5090);
    struct fed_history_record *r;
    assert_int_equal(history(f, &r), 1);
    assert_string_equal(r[0].zone, "users");
    assert_int_equal(r[0].status, 200);
    free(r);
}

static void a_request_for_our_room_stays_with_the_user_agent_despite_the_users_rule(void **state)
{
    struct fixture *f = *state;
    deliver(f, "OPTIONS", "meet@example.test");
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 200);
    assert_int_equal(port_of(&rec.sent[0].to), 5090);
    struct fed_history_record *r;
    assert_int_equal(history(f, &r), 0);
    free(r);
}

static void a_user_at_an_ip_literal_stays_with_the_user_agent(void **state)
{
    struct fixture *f = *state;
    deliver(f, "MESSAGE", "bob@127.0.0.1");
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 501);
    struct fed_history_record *r;
    assert_int_equal(history(f, &r), 0);
    free(r);
}

static void a_user_of_our_domain_is_never_located_in_dns(void **state)
{
    struct fixture *f = *state;
    deliver(f, "INVITE", "bob@example.test");
    assert_null(rec.to_control);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 404);
    struct fed_history_record *r;
    assert_int_equal(history(f, &r), 0);
    free(r);
}

static void a_refused_federated_caller_does_not_reach_a_user(void **state)
{
    struct fixture *f = *state;
    /* from the DNS zone over UDP: the zone requires TLS, so the rules refuse it and
     * the user agent answers as it always did */
    deliver_from(f, "MESSAGE", "bob@example.test", "mallory@partner.test", 1000);
    assert_int_equal(rec.n, 1);
    assert_int_equal(status_of(rec.sent[0].text), 501);
    assert_int_equal(port_of(&rec.sent[0].to), 5090);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_user_of_our_domain_goes_to_the_neighbour_zone_of_its_rule, setup_users, teardown),
        cmocka_unit_test_setup_teardown(
            a_request_for_our_room_stays_with_the_user_agent_despite_the_users_rule, setup_users,
            teardown),
        cmocka_unit_test_setup_teardown(a_user_at_an_ip_literal_stays_with_the_user_agent,
                                        setup_users, teardown),
        cmocka_unit_test_setup_teardown(a_user_of_our_domain_is_never_located_in_dns,
                                        setup_dns_only, teardown),
        cmocka_unit_test_setup_teardown(a_refused_federated_caller_does_not_reach_a_user,
                                        setup_users, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
