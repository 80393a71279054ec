/* The Redis cluster store against real redis-server processes that the test starts
 * on free loopback ports (and kills): atomic claims between racing nodes,
 * least-loaded placement, lease expiry, drain, counts, degraded mode with
 * reconciliation, conflict resolution, a replica refused as primary, and a Sentinel
 * failover (primary + replica + 3 sentinels) that the store follows.
 *
 * Needs redis-server (Debian redis-server); sentinels run as `redis-server FILE
 * --sentinel`, the same binary redis-sentinel links to. Every wait is bounded. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cl_store.h"
#include "cn_time.h"

static char tmpdir[] = "/tmp/test_cl_redis.XXXXXX";

/* ---- processes ------------------------------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts argv[0] with its output in tmpdir/<log>; it dies with the test. */
static pid_t spawn(char *const argv[], const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", tmpdir, log);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static void stop(pid_t *pid)
{
    if (*pid <= 0)
        return;
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = 0;
}

/* A blocking client for checks; NULL reply when the server does not answer. */
static redisReply *cmd(int port, const char *fmt, ...)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c || c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

static bool answers_ping(int port)
{
    redisReply *r = cmd(port, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
    freeReplyObject(r);
    return ok;
}

static void wait_ping(int port)
{
    for (int i = 0; i < 200 && !answers_ping(port); i++)
        usleep(25000);
    if (!answers_ping(port))
        fail_msg("redis on port %d did not start", port);
}

/* redis-server on port; replica_of > 0 makes it a replica of that port. */
static pid_t redis_start(int port, int replica_of)
{
    char p[16], rp[16], log[32];
    snprintf(p, sizeof p, "%d", port);
    snprintf(rp, sizeof rp, "%d", replica_of);
    snprintf(log, sizeof log, "redis-%d.log", port);
    /* no persistence; a replica syncs at once (not after the 5 s diskless delay) */
    char *argv[] = {"redis-server",
                    "--port",
                    p,
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    tmpdir,
                    "--daemonize",
                    "no",
                    "--repl-diskless-sync-delay",
                    "0",
                    replica_of > 0 ? "--replicaof" : NULL,
                    "127.0.0.1",
                    rp,
                    NULL};
    pid_t pid = spawn(argv, log);
    wait_ping(port);
    return pid;
}

static pid_t sentinel_start(int port, int master_port)
{
    char conf[PATH_MAX], log[32];
    snprintf(conf, sizeof conf, "%s/sentinel-%d.conf", tmpdir, port);
    snprintf(log, sizeof log, "sentinel-%d.log", port);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
            "sentinel monitor mymaster 127.0.0.1 %d 2\n"
            "sentinel down-after-milliseconds mymaster 1000\n"
            "sentinel failover-timeout mymaster 3000\n"
            "sentinel parallel-syncs mymaster 1\n",
            port, tmpdir, master_port);
    fclose(f);
    char *argv[] = {"redis-server", conf, "--sentinel", NULL};
    pid_t pid = spawn(argv, log);
    wait_ping(port);
    return pid;
}

/* ---- driving stores --------------------------------------------------------------- */

typedef bool pred_fn(void *arg);

/* Runs the stores until pred(arg) holds or timeout_ms passes; returns pred(arg). */
static bool pump(struct cl_store **s, size_t n, pred_fn *pred, void *arg, int timeout_ms)
{
    uint64_t end = cn_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        for (size_t i = 0; i < n; i++)
            cl_store_run(s[i]);
        if (pred && pred(arg))
            return true;
        uint64_t now = cn_now_ms();
        if (now >= end)
            return pred ? pred(arg) : true;
        struct pollfd p[8];
        int wait = 20;
        for (size_t i = 0; i < n; i++) {
            p[i] = (struct pollfd){.fd = cl_store_fd(s[i]), .events = POLLIN};
            int t = cl_store_timeout_ms(s[i]);
            if (t < wait)
                wait = t;
        }
        poll(p, (nfds_t)n, wait);
    }
}

static bool connected(void *arg)
{
    struct cl_store_status st;
    cl_store_status(arg, &st);
    return st.connected && !st.degraded;
}

static bool degraded(void *arg)
{
    struct cl_store_status st;
    cl_store_status(arg, &st);
    return st.degraded;
}

struct counter {
    int calls, expected;
};

static bool all_called(void *arg)
{
    struct counter *c = arg;
    return c->calls >= c->expected;
}

struct lost {
    int calls;
    char conf[8][CL_CONF_MAX];
    char winner[8][CL_NAME_MAX];
};

static void on_lost(void *arg, const char *conf, const char *winner)
{
    struct lost *l = arg;
    if (l->calls < 8) {
        snprintf(l->conf[l->calls], sizeof l->conf[0], "%s", conf);
        snprintf(l->winner[l->calls], sizeof l->winner[0], "%s", winner);
    }
    l->calls++;
}

static struct cl_store *store_with(const char *name, const char *location, uint32_t load, int port,
                                   const int *sentinels, size_t n_sentinels, struct lost *lost)
{
    struct cl_store_conf conf;
    cl_store_conf_defaults(&conf);
    conf.mode = CL_MODE_REDIS;
    snprintf(conf.self.name, sizeof conf.self.name, "%s", name);
    snprintf(conf.self.location, sizeof conf.self.location, "%s", location);
    snprintf(conf.self.sip_fqdn, sizeof conf.self.sip_fqdn, "%s.example.com", name);
    snprintf(conf.self.addresses, sizeof conf.self.addresses, "127.0.0.%u", load + 1);
    conf.self.load = load;
    conf.lease_ttl_ms = 3000;
    conf.heartbeat_ms = 1000;
    conf.connect_timeout_ms = 500;
    conf.command_timeout_ms = 500;
    conf.retry_min_ms = 50;
    conf.retry_max_ms = 300;
    if (port)
        snprintf(conf.redis, sizeof conf.redis, "127.0.0.1:%d", port);
    for (size_t i = 0; i < n_sentinels; i++)
        snprintf(conf.sentinels[i], sizeof conf.sentinels[i], "127.0.0.1:%d", sentinels[i]);
    conf.n_sentinels = n_sentinels;
    conf.on_lost = on_lost;
    conf.on_lost_arg = lost;
    char err[256];
    struct cl_store *s = cl_store_create(&conf, err, sizeof err);
    if (!s)
        fail_msg("%s", err);
    return s;
}

static struct cl_store *store(const char *name, const char *location, uint32_t load, int port)
{
    return store_with(name, location, load, port, NULL, 0, NULL);
}

struct result {
    struct counter *done;
    cl_status_t st;
    struct cl_claim claim;
    int64_t count;
    size_t n_nodes;
};

static void on_claim(void *arg, cl_status_t st, const struct cl_claim *c)
{
    struct result *r = arg;
    r->st = st;
    if (c)
        r->claim = *c;
    if (r->done)
        r->done->calls++;
}

static void on_count(void *arg, cl_status_t st, int64_t count)
{
    struct result *r = arg;
    r->st = st;
    r->count = count;
    if (r->done)
        r->done->calls++;
}

static void on_done(void *arg, cl_status_t st)
{
    struct result *r = arg;
    r->st = st;
    if (r->done)
        r->done->calls++;
}

static void on_nodes(void *arg, cl_status_t st, const struct cl_node_info *n, size_t count)
{
    (void)n;
    struct result *r = arg;
    r->st = st;
    r->n_nodes = count;
    if (r->done)
        r->done->calls++;
}

static struct result claim(struct cl_store *s, const char *conf, const char *location)
{
    struct counter c = {0, 1};
    struct result r = {.done = &c};
    assert_int_equal(cl_store_claim(s, conf, location, on_claim, &r), CL_OK);
    assert_true(pump(&s, 1, all_called, &c, 3000));
    return r;
}

static struct result count(struct cl_store *s, const char *conf, int delta)
{
    struct counter c = {0, 1};
    struct result r = {.done = &c};
    assert_int_equal(cl_store_count(s, conf, delta, on_count, &r), CL_OK);
    assert_true(pump(&s, 1, all_called, &c, 3000));
    return r;
}

static struct result release(struct cl_store *s, const char *conf)
{
    struct counter c = {0, 1};
    struct result r = {.done = &c};
    assert_int_equal(cl_store_release(s, conf, on_done, &r), CL_OK);
    assert_true(pump(&s, 1, all_called, &c, 3000));
    return r;
}

static size_t live_nodes(struct cl_store *s)
{
    struct counter c = {0, 1};
    struct result r = {.done = &c};
    assert_int_equal(cl_store_list_nodes(s, on_nodes, &r), CL_OK);
    assert_true(pump(&s, 1, all_called, &c, 3000));
    assert_int_equal(r.st, CL_OK);
    return r.n_nodes;
}

struct nodes_wait {
    struct cl_store *s;
    size_t n;
};

static bool sees_nodes(void *arg)
{
    struct nodes_wait *w = arg;
    return live_nodes(w->s) == w->n;
}

/* The conference's owner as Redis on port has it ("" when none). */
static void owner_in_redis(int port, const char *conf, char *owner, size_t len, long long *count)
{
    redisReply *r = cmd(port, "HMGET confnode:conf:%s owner count", conf);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    snprintf(owner, len, "%s", r->element[0]->type == REDIS_REPLY_STRING ? r->element[0]->str : "");
    if (count)
        *count = r->element[1]->type == REDIS_REPLY_STRING ? atoll(r->element[1]->str) : -1;
    freeReplyObject(r);
}

/* ---- fixtures ----------------------------------------------------------------------- */

struct one_redis {
    int port;
    pid_t pid;
};

static int setup_redis(void **state)
{
    struct one_redis *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->port = free_port();
    r->pid = redis_start(r->port, 0);
    *state = r;
    return 0;
}

static int teardown_redis(void **state)
{
    struct one_redis *r = *state;
    stop(&r->pid);
    free(r);
    return 0;
}

static int setup_all(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_all(void **state)
{
    (void)state;
    char c[PATH_MAX + 16];
    snprintf(c, sizeof c, "rm -rf '%s'", tmpdir);
    return system(c) == 0 ? 0 : -1;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void two_nodes_racing_for_the_same_conferences_agree_on_one_owner_each(void **state)
{
    struct one_redis *rd = *state;
    struct cl_store *s[2] = {store("a", "", 0, rd->port), store("b", "", 0, rd->port)};
    assert_true(pump(&s[0], 1, connected, s[0], 3000));
    assert_true(pump(&s[1], 1, connected, s[1], 3000));
    struct nodes_wait w = {s[0], 2};
    assert_true(pump(s, 2, sees_nodes, &w, 3000));

    enum { N = 200 };
    static struct result ra[N], rb[N];
    struct counter c = {0, 2 * N};
    for (int i = 0; i < N; i++) {
        char conf[32];
        snprintf(conf, sizeof conf, "race-%d@example.com", i);
        ra[i] = (struct result){.done = &c};
        rb[i] = (struct result){.done = &c};
        /* interleaved: both connections carry a claim of the same room */
        assert_int_equal(cl_store_claim(s[i % 2], conf, "", on_claim, i % 2 ? &rb[i] : &ra[i]),
                         CL_OK);
        assert_int_equal(cl_store_claim(s[1 - i % 2], conf, "", on_claim, i % 2 ? &ra[i] : &rb[i]),
                         CL_OK);
    }
    assert_true(pump(s, 2, all_called, &c, 10000));
    int owned_by_a = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(ra[i].st, CL_OK);
        assert_int_equal(rb[i].st, CL_OK);
        assert_false(ra[i].claim.local);
        assert_string_equal(ra[i].claim.owner, rb[i].claim.owner);
        assert_int_equal(ra[i].claim.placed + rb[i].claim.placed, 1);
        assert_int_equal(ra[i].claim.mine, strcmp(ra[i].claim.owner, "a") == 0);
        assert_int_equal(rb[i].claim.mine, strcmp(rb[i].claim.owner, "b") == 0);
        owned_by_a += strcmp(ra[i].claim.owner, "a") == 0;
        char owner[CL_NAME_MAX];
        char conf[32];
        snprintf(conf, sizeof conf, "race-%d@example.com", i);
        owner_in_redis(rd->port, conf, owner, sizeof owner, NULL);
        assert_string_equal(owner, ra[i].claim.owner);
    }
    /* every placement adds load to its node: the two share the rooms (a heartbeat in
     * the middle of the run resets one node's load and skews the split a little) */
    assert_in_range(owned_by_a, N / 4, 3 * N / 4);
    cl_store_free(s[0]);
    cl_store_free(s[1]);
}

static void claim_goes_to_the_least_loaded_live_node_of_the_location(void **state)
{
    struct one_redis *rd = *state;
    struct cl_store *a = store("a", "east", 5, rd->port);
    assert_true(pump(&a, 1, connected, a, 3000));
    struct cl_node_info b = {.name = "b",
                             .location = "east",
                             .load = 1,
                             .sip_fqdn = "b.example.com",
                             .addresses = "192.0.2.11"};
    struct cl_node_info c = {.name = "c", .location = "west", .load = 0};
    struct counter n = {0, 2};
    struct result rb = {.done = &n}, rc = {.done = &n};
    assert_int_equal(cl_store_heartbeat(a, &b, 5000, on_done, &rb), CL_OK);
    assert_int_equal(cl_store_heartbeat(a, &c, 5000, on_done, &rc), CL_OK);
    assert_true(pump(&a, 1, all_called, &n, 3000));
    assert_int_equal(rb.st, CL_OK);

    struct result r = claim(a, "r1", "east");
    assert_int_equal(r.st, CL_OK);
    assert_string_equal(r.claim.owner, "b");
    assert_true(r.claim.placed);
    assert_false(r.claim.mine);
    assert_string_equal(r.claim.owner_fqdn, "b.example.com");
    assert_string_equal(r.claim.owner_addresses, "192.0.2.11");
    assert_string_equal(claim(a, "r2", "west").claim.owner, "c");
    assert_string_equal(claim(a, "r3", "north").claim.owner, "c"); /* c 1, b 2, a 5 */
    assert_string_equal(claim(a, "r4", NULL).claim.owner, "b");    /* a's location */
    r = claim(a, "r1", "west");
    assert_string_equal(r.claim.owner, "b");
    assert_false(r.claim.placed);
    assert_int_equal(live_nodes(a), 3);
    cl_store_free(a);
}

static void conferences_of_a_node_whose_lease_expired_are_placed_again(void **state)
{
    struct one_redis *rd = *state;
    struct cl_store *a = store("a", "", 10, rd->port);
    struct cl_store *b = store("b", "", 0, rd->port);
    struct cl_store *both[2] = {a, b};
    assert_true(pump(&a, 1, connected, a, 3000));
    assert_true(pump(&b, 1, connected, b, 3000));
    struct nodes_wait w = {a, 2};
    assert_true(pump(both, 2, sees_nodes, &w, 3000));
    struct result r = claim(a, "orphan", "");
    assert_string_equal(r.claim.owner, "b");
    assert_int_equal(count(b, "orphan", 2).count, 2);

    cl_store_free(b); /* b stops: its lease (3 s) runs out */
    uint64_t t0 = cn_now_ms();
    struct nodes_wait one = {a, 1};
    assert_true(pump(&a, 1, sees_nodes, &one, 6000));
    assert_true(cn_now_ms() - t0 >= 1500);
    r = claim(a, "orphan", "");
    assert_string_equal(r.claim.owner, "a");
    assert_true(r.claim.placed);
    assert_int_equal(r.claim.count, 0);
    /* the claim swept the dead node out of the node set */
    redisReply *x = cmd(rd->port, "SISMEMBER confnode:nodes b");
    assert_non_null(x);
    assert_int_equal(x->integer, 0);
    freeReplyObject(x);
    cl_store_free(a);
}

static void a_draining_node_gets_no_new_conferences(void **state)
{
    struct one_redis *rd = *state;
    struct cl_store *a = store("a", "", 50, rd->port);
    struct cl_store *b = store("b", "", 0, rd->port);
    struct cl_store *both[2] = {a, b};
    assert_true(pump(&a, 1, connected, a, 3000));
    assert_true(pump(&b, 1, connected, b, 3000));
    struct nodes_wait w = {a, 2};
    assert_true(pump(both, 2, sees_nodes, &w, 3000));
    assert_string_equal(claim(a, "before-drain", "").claim.owner, "b");

    cl_store_set_draining(b, true);
    pump(both, 2, NULL, NULL, 100); /* the drain heartbeat goes out at once */
    assert_string_equal(claim(a, "during-drain", "").claim.owner, "a");
    assert_string_equal(claim(a, "before-drain", "").claim.owner, "b");

    cl_store_set_draining(a, true);
    pump(both, 2, NULL, NULL, 100);
    assert_int_equal(claim(a, "nobody", "").st, CL_ERR_NO_NODE);
    cl_store_set_draining(b, false);
    pump(both, 2, NULL, NULL, 100);
    assert_string_equal(claim(a, "nobody", "").claim.owner, "b");
    cl_store_free(a);
    cl_store_free(b);
}

static void counts_lookups_and_release_follow_the_owner(void **state)
{
    struct one_redis *rd = *state;
    struct cl_store *a = store("a", "", 0, rd->port);
    struct cl_store *b = store("b", "", 100, rd->port);
    assert_true(pump(&a, 1, connected, a, 3000));
    assert_true(pump(&b, 1, connected, b, 3000));
    assert_int_equal(count(a, "room", 1).st, CL_ERR_NOT_FOUND);
    assert_true(claim(a, "room", "").claim.mine);
    assert_int_equal(count(a, "room", 1).count, 1);
    assert_int_equal(count(a, "room", 2).count, 3);
    assert_int_equal(count(a, "room", -7).count, 0);
    assert_int_equal(count(a, "room", 4).count, 4);

    struct counter c = {0, 1};
    struct result r = {.done = &c};
    assert_int_equal(cl_store_lookup(b, "room", on_claim, &r), CL_OK);
    assert_true(pump(&b, 1, all_called, &c, 3000));
    assert_int_equal(r.st, CL_OK);
    assert_string_equal(r.claim.owner, "a");
    assert_int_equal(r.claim.count, 4);
    assert_string_equal(r.claim.owner_fqdn, "a.example.com");

    assert_int_equal(release(b, "room").st, CL_ERR_NOT_OWNER);
    assert_int_equal(release(a, "room").st, CL_OK);
    assert_int_equal(release(a, "room").st, CL_ERR_NOT_FOUND);
    c.calls = 0;
    assert_int_equal(cl_store_lookup(b, "room", on_claim, &r), CL_OK);
    assert_true(pump(&b, 1, all_called, &c, 3000));
    assert_int_equal(r.st, CL_ERR_NOT_FOUND);
    cl_store_free(a);
    cl_store_free(b);
}

static unsigned count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    unsigned n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static void unreachable_redis_degrades_to_local_answers_then_reconciles(void **state)
{
    struct one_redis *rd = *state;
    char log[PATH_MAX];
    snprintf(log, sizeof log, "%s/degraded.log", tmpdir);
    int saved = dup(2);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0 && saved >= 0);
    dup2(fd, 2);
    close(fd);

    struct cl_store *a = store("a", "", 0, rd->port);
    assert_true(pump(&a, 1, connected, a, 3000));
    assert_true(claim(a, "kept", "").claim.mine);
    assert_int_equal(count(a, "kept", 2).count, 2);
    assert_true(claim(a, "gone", "").claim.mine);

    kill(rd->pid, SIGSTOP); /* Redis stops answering: commands time out */
    uint64_t t0 = cn_now_ms();
    struct result r = claim(a, "new", "");
    assert_true(cn_now_ms() - t0 < 2000);
    assert_int_equal(r.st, CL_OK);
    assert_true(r.claim.local);
    assert_true(r.claim.mine);
    struct cl_store_status st;
    cl_store_status(a, &st);
    assert_true(st.degraded);
    assert_false(st.connected);
    assert_true(st.degraded_since_ms > 0);
    assert_true(st.degraded_since_unix > 0);
    assert_int_equal(count(a, "new", 3).count, 3);
    assert_int_equal(count(a, "kept", 1).count, 3);
    assert_int_equal(release(a, "gone").st, CL_OK);
    pump(&a, 1, NULL, NULL, 1200); /* several reconnect attempts fail meanwhile */
    assert_true(degraded(a));

    kill(rd->pid, SIGCONT);
    assert_true(pump(&a, 1, connected, a, 5000));
    pump(&a, 1, NULL, NULL, 200);
    char owner[CL_NAME_MAX];
    long long n;
    owner_in_redis(rd->port, "new", owner, sizeof owner, &n);
    assert_string_equal(owner, "a");
    assert_int_equal(n, 3);
    owner_in_redis(rd->port, "kept", owner, sizeof owner, &n);
    assert_string_equal(owner, "a");
    assert_int_equal(n, 3);
    owner_in_redis(rd->port, "gone", owner, sizeof owner, NULL);
    assert_string_equal(owner, "");
    cl_store_status(a, &st);
    assert_false(st.degraded);
    assert_int_equal(st.degraded_since_ms, 0);
    assert_true(st.reconnects >= 1);
    cl_store_free(a);

    dup2(saved, 2);
    close(saved);
    assert_int_equal(count_in_file(log, "event=cluster_degraded"), 1);
    assert_int_equal(count_in_file(log, "event=cluster_restored"), 1);
}

static void restarted_empty_redis_gets_the_lease_and_conferences_back(void **state)
{
    struct one_redis *rd = *state;
    struct cl_store *a = store("a", "", 0, rd->port);
    assert_true(pump(&a, 1, connected, a, 3000));
    assert_true(claim(a, "room", "").claim.mine);
    assert_int_equal(count(a, "room", 5).count, 5);

    stop(&rd->pid);
    struct result r = claim(a, "while-down", "");
    assert_true(r.claim.local);
    assert_true(degraded(a));
    assert_int_equal(count(a, "while-down", 1).count, 1);

    rd->pid = redis_start(rd->port, 0); /* no persistence: it comes back empty */
    assert_true(pump(&a, 1, connected, a, 5000));
    pump(&a, 1, NULL, NULL, 200);
    char owner[CL_NAME_MAX];
    long long n;
    owner_in_redis(rd->port, "room", owner, sizeof owner, &n);
    assert_string_equal(owner, "a");
    assert_int_equal(n, 5);
    owner_in_redis(rd->port, "while-down", owner, sizeof owner, &n);
    assert_string_equal(owner, "a");
    assert_int_equal(n, 1);
    redisReply *x = cmd(rd->port, "EXISTS confnode:node:a");
    assert_non_null(x);
    assert_int_equal(x->integer, 1);
    freeReplyObject(x);
    r = claim(a, "after", "");
    assert_false(r.claim.local);
    cl_store_free(a);
}

static void conflicting_local_claims_go_to_the_bigger_conference_then_the_smaller_name(void **state)
{
    struct one_redis *rd = *state;
    struct lost la = {0}, lb = {0};
    struct cl_store *a = store_with("a", "", 0, rd->port, NULL, 0, &la);
    struct cl_store *b = store_with("b", "", 0, rd->port, NULL, 0, &lb);
    struct cl_store *both[2] = {a, b};
    assert_true(pump(&a, 1, connected, a, 3000));
    assert_true(pump(&b, 1, connected, b, 3000));

    stop(&rd->pid);
    /* both nodes place the same rooms locally while Redis is away */
    assert_true(claim(a, "x", "").claim.local);
    assert_true(claim(b, "x", "").claim.local);
    count(a, "x", 2);
    count(b, "x", 1); /* a hosts more: a keeps x */
    claim(a, "y", "");
    claim(b, "y", "");
    count(a, "y", 1);
    count(b, "y", 1); /* tie: "a" sorts first */
    claim(a, "z", "");
    claim(b, "z", "");
    count(a, "z", 1);
    count(b, "z", 3); /* b hosts more: b takes z */

    rd->pid = redis_start(rd->port, 0);
    assert_true(pump(both, 2, connected, a, 5000));
    assert_true(pump(both, 2, connected, b, 5000));
    pump(both, 2, NULL, NULL, 300);
    char owner[CL_NAME_MAX];
    long long n;
    owner_in_redis(rd->port, "x", owner, sizeof owner, &n);
    assert_string_equal(owner, "a");
    assert_int_equal(n, 2);
    owner_in_redis(rd->port, "y", owner, sizeof owner, &n);
    assert_string_equal(owner, "a");
    owner_in_redis(rd->port, "z", owner, sizeof owner, &n);
    assert_string_equal(owner, "b");
    assert_int_equal(n, 3);
    /* a node that re-asserted first and was overtaken learns it on its next count */
    count(a, "z", 0);
    count(b, "x", 0);
    count(b, "y", 0);
    pump(both, 2, NULL, NULL, 100);
    assert_int_equal(la.calls, 1);
    assert_string_equal(la.conf[0], "z");
    assert_string_equal(la.winner[0], "b");
    assert_int_equal(lb.calls, 2);
    for (int i = 0; i < 2; i++)
        assert_string_equal(lb.winner[i], "a");
    assert_int_not_equal(strcmp(lb.conf[0], lb.conf[1]), 0);
    struct cl_store_status st;
    cl_store_status(b, &st);
    assert_int_equal(st.conferences_local, 1);
    cl_store_free(a);
    cl_store_free(b);
}

static void a_replica_is_not_taken_for_the_primary(void **state)
{
    struct one_redis *rd = *state;
    int port = free_port();
    pid_t replica = redis_start(port, rd->port);
    struct cl_store *a = store("a", "", 0, port);
    assert_true(pump(&a, 1, degraded, a, 3000));
    struct result r = claim(a, "room", "");
    assert_int_equal(r.st, CL_OK);
    assert_true(r.claim.local);
    struct cl_store_status st;
    cl_store_status(a, &st);
    assert_false(st.connected);
    assert_string_equal(st.primary, "");
    cl_store_free(a);
    stop(&replica);
}

/* ---- Sentinel ---------------------------------------------------------------------------- */

static long long array_len(int port, const char *what)
{
    redisReply *r = cmd(port, "SENTINEL %s mymaster", what);
    long long n = r && r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    freeReplyObject(r);
    return n;
}

static bool replica_in_sync(int port)
{
    redisReply *r = cmd(port, "INFO replication");
    bool ok = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up");
    freeReplyObject(r);
    return ok;
}

struct primary_wait {
    struct cl_store *s;
    char want[CL_HOSTPORT_MAX];
};

static bool uses_primary(void *arg)
{
    struct primary_wait *w = arg;
    struct cl_store_status st;
    cl_store_status(w->s, &st);
    return st.connected && strcmp(st.primary, w->want) == 0;
}

static void store_follows_a_sentinel_failover_to_the_new_primary(void **state)
{
    (void)state;
    int p1 = free_port(), p2 = free_port();
    pid_t primary = redis_start(p1, 0);
    pid_t replica = redis_start(p2, p1);
    for (int i = 0; i < 400 && !replica_in_sync(p2); i++)
        usleep(25000);
    assert_true(replica_in_sync(p2));
    int sp[3];
    pid_t sentinel[3];
    for (int i = 0; i < 3; i++) {
        sp[i] = free_port();
        sentinel[i] = sentinel_start(sp[i], p1);
    }
    /* each sentinel must know the replica and the two other sentinels */
    uint64_t t0 = cn_now_ms();
    for (int i = 0; i < 3; i++)
        while ((array_len(sp[i], "replicas") < 1 || array_len(sp[i], "sentinels") < 2) &&
               cn_now_ms() - t0 < 15000)
            usleep(100000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(array_len(sp[i], "replicas"), 1);
        assert_int_equal(array_len(sp[i], "sentinels"), 2);
    }

    struct cl_store *a = store_with("a", "", 0, 0, sp, 3, NULL);
    struct primary_wait w = {a, ""};
    snprintf(w.want, sizeof w.want, "127.0.0.1:%d", p1);
    assert_true(pump(&a, 1, uses_primary, &w, 5000));
    assert_false(claim(a, "before-failover", "").claim.local);

    uint64_t killed = cn_now_ms();
    stop(&primary);
    snprintf(w.want, sizeof w.want, "127.0.0.1:%d", p2);
    if (!pump(&a, 1, uses_primary, &w, 20000)) {
        struct cl_store_status st;
        cl_store_status(a, &st);
        fail_msg("still on '%s' (connected %d) 20 s after the primary died", st.primary,
                 st.connected);
    }
    uint64_t took = cn_now_ms() - killed;
    struct result r = claim(a, "after-failover", "");
    assert_false(r.claim.local);
    assert_true(r.claim.mine);
    char owner[CL_NAME_MAX];
    owner_in_redis(p2, "after-failover", owner, sizeof owner, NULL);
    assert_string_equal(owner, "a");
    struct cl_store_status st;
    cl_store_status(a, &st);
    assert_true(st.failovers >= 1);
    assert_false(st.degraded);
    print_message("failover followed in %llu ms\n", (unsigned long long)took);
    cl_store_free(a);
    for (int i = 0; i < 3; i++)
        stop(&sentinel[i]);
    stop(&replica);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            two_nodes_racing_for_the_same_conferences_agree_on_one_owner_each, setup_redis,
            teardown_redis),
        cmocka_unit_test_setup_teardown(claim_goes_to_the_least_loaded_live_node_of_the_location,
                                        setup_redis, teardown_redis),
        cmocka_unit_test_setup_teardown(conferences_of_a_node_whose_lease_expired_are_placed_again,
                                        setup_redis, teardown_redis),
        cmocka_unit_test_setup_teardown(a_draining_node_gets_no_new_conferences, setup_redis,
                                        teardown_redis),
        cmocka_unit_test_setup_teardown(counts_lookups_and_release_follow_the_owner, setup_redis,
                                        teardown_redis),
        cmocka_unit_test_setup_teardown(unreachable_redis_degrades_to_local_answers_then_reconciles,
                                        setup_redis, teardown_redis),
        cmocka_unit_test_setup_teardown(restarted_empty_redis_gets_the_lease_and_conferences_back,
                                        setup_redis, teardown_redis),
        cmocka_unit_test_setup_teardown(
            conflicting_local_claims_go_to_the_bigger_conference_then_the_smaller_name, setup_redis,
            teardown_redis),
        cmocka_unit_test_setup_teardown(a_replica_is_not_taken_for_the_primary, setup_redis,
                                        teardown_redis),
        cmocka_unit_test(store_follows_a_sentinel_failover_to_the_new_primary),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
