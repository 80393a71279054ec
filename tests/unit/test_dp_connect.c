/* Outbound connections from a worker: two real engines in one process on loopback,
 * one listening with TLS, one connecting with mutual TLS and name checks.
 * Certificates come from deploy/mkcerts.sh (CN sip.example.test, SAN
 * sip.example.test, node1.example.test, localhost, 127.0.0.1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cn_time.h"
#include "dp_sock.h"
#include "dp_worker.h"

static char certdir[256];

/* ---- the listening side: answers every message with "ECHO <message>" ---- */
struct server_ctx {
    struct dp_worker *w;
};

static void *srv_start(struct dp_worker *w, void *arg)
{
    struct server_ctx *s = arg;
    s->w = w;
    return s;
}

static void srv_message(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                        uint64_t now)
{
    struct server_ctx *s = ctx;
    (void)now;
    char out[4096];
    int n = snprintf(out, sizeof out,
                     "SIP/2.0 200 OK\r\nX-Echo: %.*s\r\nContent-Length: 0\r\n\r\n",
                     (int)strcspn(buf, "\r"), buf);
    (void)len;
    dp_send(s->w, from, out, (size_t)n);
}

/* ---- the connecting side ---- */
struct client_ctx {
    struct dp_worker *w;
    _Atomic int phase;      /* 0 idle, 1 connect asked, 2 done */
    struct dp_target target;
    char tls_name[64];
    _Atomic int ups, fails, replies;
    char reason[400];
    char reply[4096];
    int connect_rc;
    char err[200];
};

static void *cli_start(struct dp_worker *w, void *arg)
{
    struct client_ctx *c = arg;
    c->w = w;
    return c;
}

static void cli_message(void *ctx, const char *buf, size_t len, const cn_peer_t *from,
                        uint64_t now)
{
    struct client_ctx *c = ctx;
    (void)from;
    (void)now;
    snprintf(c->reply, sizeof c->reply, "%.*s", (int)len, buf);
    c->replies++;
}

static void cli_conn_event(void *ctx, const cn_peer_t *peer, dp_conn_event_t ev,
                           const char *reason, uint64_t now)
{
    struct client_ctx *c = ctx;
    (void)peer;
    (void)now;
    if (ev == DP_CONN_UP)
        c->ups++;
    else if (ev == DP_CONN_FAILED) {
        snprintf(c->reason, sizeof c->reason, "%s", reason ? reason : "");
        c->fails++;
    }
}

/* Runs in the client's worker thread on every loop turn: starts the connection. */
static int64_t cli_tick(void *ctx, uint64_t now)
{
    struct client_ctx *c = ctx;
    (void)now;
    if (c->phase == 1) {
        cn_peer_t peer;
        c->target.tls_name = c->tls_name[0] ? c->tls_name : NULL;
        c->connect_rc = dp_connect(c->w, &c->target, &peer, c->err, sizeof c->err);
        if (c->connect_rc == 0) {
            const char msg[] = "OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n";
            dp_send(c->w, &peer, msg, sizeof msg - 1); /* queued until the connection is up */
        }
        c->phase = 2;
    }
    return 10;
}

static void fill_conf(struct dp_conf *c, uint16_t tls_port, const char *ca)
{
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1");
    c->tls_port = tls_port;
    c->max_message_size = 65536;
    c->tcp_idle_timeout_ms = 60000;
    c->max_connections = 64;
    c->workers = 1;
    snprintf(c->tls.certificate, sizeof c->tls.certificate, "%s/node.crt", certdir);
    snprintf(c->tls.key, sizeof c->tls.key, "%s/node.key", certdir);
    snprintf(c->tls.ca, sizeof c->tls.ca, "%s", ca);
    c->tls.min_version = 12;
    c->tls.verify_client = DP_TLS_VERIFY_REQUIRE;
    c->tls.handshake_timeout_ms = 3000;
}

static uint16_t free_port(void)
{
    char err[128];
    for (uint16_t p = (uint16_t)(30000 + getpid() % 20000);; p++)
        if (dp_sock_probe(SOCK_STREAM, "127.0.0.1", p, err, sizeof err) == 0)
            return p;
}

static int setup(void **state)
{
    (void)state;
    snprintf(certdir, sizeof certdir, "/tmp/cn-test-connect-%d", (int)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash %s/deploy/mkcerts.sh %s >/dev/null 2>&1", CN_SOURCE_DIR,
             certdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", certdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Connects the client engine to the server engine and waits (bounded) for an
 * answer or a failure. */
static void run_case(struct client_ctx *cc, const char *ca_for_server, uint16_t server_port,
                     uint16_t target_port)
{
    char err[512], ca[300];
    struct dp_conf sconf, cconf;
    struct server_ctx sc = {0};
    snprintf(ca, sizeof ca, "%s/ca.crt", certdir);
    fill_conf(&sconf, server_port, ca_for_server ? ca_for_server : ca);
    fill_conf(&cconf, 0, ca);
    dp_handler_t sh = {.start = srv_start, .message = srv_message, .arg = &sc};
    dp_handler_t ch = {.start = cli_start,
                       .message = cli_message,
                       .conn_event = cli_conn_event,
                       .tick = cli_tick,
                       .arg = cc};
    struct dp_engine *se = dp_engine_create(&sconf, &sh, err, sizeof err);
    assert_non_null(se);
    struct dp_engine *ce = dp_engine_create(&cconf, &ch, err, sizeof err);
    assert_non_null(ce);
    assert_int_equal(dp_engine_start(se, err, sizeof err), 0);
    assert_int_equal(dp_engine_start(ce, err, sizeof err), 0);
    dp_sock_addr("127.0.0.1", target_port, &cc->target.addr, &cc->target.addrlen);
    cc->target.transport = CN_TRANSPORT_TLS;
    cc->phase = 1;
    uint64_t until = cn_now_ms() + 5000;
    while (cn_now_ms() < until && cc->replies == 0 && cc->fails == 0 &&
           !(cc->phase == 2 && cc->connect_rc != 0))
        usleep(5000);
    dp_engine_free(ce);
    dp_engine_free(se);
}

static void a_verified_mutual_tls_connection_carries_messages_both_ways(void **state)
{
    (void)state;
    struct client_ctx cc = {0};
    snprintf(cc.tls_name, sizeof cc.tls_name, "sip.example.test");
    uint16_t port = free_port();
    run_case(&cc, NULL, port, port);
    assert_int_equal(cc.connect_rc, 0);
    assert_int_equal(cc.fails, 0);
    assert_int_equal(cc.ups, 1);
    assert_int_equal(cc.replies, 1);
    assert_non_null(strstr(cc.reply, "X-Echo: OPTIONS sip:x SIP/2.0"));
}

static void a_name_missing_from_the_certificate_fails_with_the_reason(void **state)
{
    (void)state;
    struct client_ctx cc = {0};
    snprintf(cc.tls_name, sizeof cc.tls_name, "sip.other.test");
    uint16_t port = free_port();
    run_case(&cc, NULL, port, port);
    assert_int_equal(cc.replies, 0);
    assert_int_equal(cc.fails, 1);
    assert_non_null(strstr(cc.reason, "hostname mismatch"));
}

static void a_refused_port_fails_naming_the_address(void **state)
{
    (void)state;
    struct client_ctx cc = {0};
    snprintf(cc.tls_name, sizeof cc.tls_name, "sip.example.test");
    uint16_t port = free_port();
    uint16_t closed = free_port() + 1;
    while (closed == port)
        closed++;
    run_case(&cc, NULL, port, closed);
    assert_int_equal(cc.replies, 0);
    assert_int_equal(cc.fails, 1);
    char expect[64];
    snprintf(expect, sizeof expect, "127.0.0.1:%u", closed);
    assert_non_null(strstr(cc.reason, expect));
    assert_non_null(strstr(cc.reason, "refused"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_verified_mutual_tls_connection_carries_messages_both_ways),
        cmocka_unit_test(a_name_missing_from_the_certificate_fails_with_the_reason),
        cmocka_unit_test(a_refused_port_fails_naming_the_address),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
