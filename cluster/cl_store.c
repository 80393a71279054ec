/* The cluster store's core: operations, the completion queue, this node's
 * heartbeat timer and the standalone backend (the local tables alone). The Redis
 * backend (cl_redis.c) plugs in through cl_redis_submit() and answers through
 * cl_complete() / cl_answer_local(). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cl_int.h"
#include "cn_log.h"
#include "cn_time.h"

const char *cl_status_str(cl_status_t st)
{
    switch (st) {
    case CL_OK:
        return "ok";
    case CL_ERR_NOMEM:
        return "out of memory";
    case CL_ERR_UNAVAILABLE:
        return "cluster store unavailable";
    case CL_ERR_NOT_FOUND:
        return "not found";
    case CL_ERR_NO_NODE:
        return "no live node can take it";
    case CL_ERR_INVAL:
        return "invalid argument";
    case CL_ERR_NOT_OWNER:
        return "owned by another node";
    }
    return "unknown status";
}

void cl_store_conf_defaults(struct cl_store_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    conf->mode = CL_MODE_STANDALONE;
    conf->lease_ttl_ms = 15000;
    conf->heartbeat_ms = 5000;
    snprintf(conf->master_name, sizeof conf->master_name, "mymaster");
    snprintf(conf->key_prefix, sizeof conf->key_prefix, "confnode:");
    conf->connect_timeout_ms = 1000;
    conf->command_timeout_ms = 2000;
    conf->retry_min_ms = 100;
    conf->retry_max_ms = 2000;
}

int cl_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned char buf[sizeof(struct in6_addr)];
    if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, buf) != 1)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static int check_conf(const struct cl_store_conf *c, char *err, size_t errlen)
{
    char host[64];
    int port;
    if (!c->self.name[0] || !memchr(c->self.name, '\0', sizeof c->self.name)) {
        snprintf(err, errlen, "cluster: this node needs a name");
        return -1;
    }
    if (c->lease_ttl_ms == 0 || c->heartbeat_ms == 0 || c->heartbeat_ms >= c->lease_ttl_ms) {
        snprintf(err, errlen, "cluster: heartbeat (%u ms) must be shorter than the lease (%u ms)",
                 c->heartbeat_ms, c->lease_ttl_ms);
        return -1;
    }
    if (c->mode != CL_MODE_REDIS)
        return 0;
    if (c->n_sentinels > CL_MAX_SENTINELS || (c->n_sentinels == 0 && !c->redis[0])) {
        snprintf(err, errlen, "cluster: redis mode needs a redis address or sentinels");
        return -1;
    }
    if (c->n_sentinels == 0 && cl_parse_hostport(c->redis, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "cluster: redis '%s': not IP:port", c->redis);
        return -1;
    }
    for (size_t i = 0; i < c->n_sentinels; i++) {
        if (cl_parse_hostport(c->sentinels[i], host, sizeof host, &port) != 0) {
            snprintf(err, errlen, "cluster: sentinel '%s': not IP:port", c->sentinels[i]);
            return -1;
        }
    }
    if (c->n_sentinels && !c->master_name[0]) {
        snprintf(err, errlen, "cluster: sentinels need a master name");
        return -1;
    }
    if (c->connect_timeout_ms == 0 || c->command_timeout_ms == 0 || c->retry_min_ms == 0 ||
        c->retry_max_ms < c->retry_min_ms) {
        snprintf(err, errlen, "cluster: timeouts must be > 0 and retry_max >= retry_min");
        return -1;
    }
    return 0;
}

struct cl_store *cl_store_create(const struct cl_store_conf *conf, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || errlen == 0) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    if (!conf) {
        snprintf(err, errlen, "cluster: no configuration");
        return NULL;
    }
    if (check_conf(conf, err, errlen) != 0)
        return NULL;
    struct cl_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "cluster: out of memory");
        return NULL;
    }
    s->conf = *conf;
    s->clock = conf->clock ? conf->clock : cn_now_ms;
    s->epfd = s->evfd = -1;
    if (cl_table_init(&s->t, &conf->self) != 0) {
        snprintf(err, errlen, "cluster: out of memory");
        goto fail;
    }
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (s->epfd < 0 || s->evfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) != 0) {
        snprintf(err, errlen, "cluster: %s", strerror(errno));
        goto fail;
    }
    s->next_heartbeat = s->clock() + s->conf.heartbeat_ms;
    if (conf->mode == CL_MODE_REDIS && !(s->redis = cl_redis_create(s, err, errlen)))
        goto fail;
    return s;
fail:
    cl_store_free(s);
    return NULL;
}

void cl_op_free(struct cl_op *op)
{
    if (!op)
        return;
    free(op->nodes);
    free(op);
}

void cl_store_free(struct cl_store *s)
{
    if (!s)
        return;
    s->freeing = true;
    cl_redis_free(s->redis);
    s->redis = NULL;
    while (s->done_head) {
        struct cl_op *op = s->done_head;
        s->done_head = op->next;
        cl_op_free(op);
    }
    cl_table_free(&s->t);
    if (s->evfd >= 0)
        close(s->evfd);
    if (s->epfd >= 0)
        close(s->epfd);
    free(s);
}

int cl_store_fd(const struct cl_store *s)
{
    return s ? s->epfd : -1;
}

void cl_complete(struct cl_store *s, struct cl_op *op)
{
    if (s->freeing) {
        cl_op_free(op);
        return;
    }
    op->next = NULL;
    bool was_empty = !s->done_head;
    if (s->done_tail)
        s->done_tail->next = op;
    else
        s->done_head = op;
    s->done_tail = op;
    if (was_empty) {
        uint64_t one = 1;
        ssize_t n = write(s->evfd, &one, sizeof one);
        (void)n; /* a full counter is still readable: nothing lost */
    }
}

void cl_answer_local(struct cl_store *s, struct cl_op *op)
{
    uint64_t now = s->clock();
    bool degraded = s->conf.mode == CL_MODE_REDIS;
    const char *loc = op->location;
    switch (op->kind) {
    case CL_OP_CLAIM:
        op->st = cl_table_claim(&s->t, op->conf, loc, degraded, now, &op->claim);
        op->count = op->claim.count;
        break;
    case CL_OP_LOOKUP:
        op->st = cl_table_lookup(&s->t, op->conf, now, &op->claim);
        break;
    case CL_OP_COUNT:
        op->st = cl_table_count(&s->t, op->conf, op->delta, &op->count);
        break;
    case CL_OP_RELEASE:
        op->st = cl_table_release(&s->t, op->conf, degraded);
        break;
    case CL_OP_HEARTBEAT:
        op->st = cl_table_node_put(&s->t, &op->node, now + op->ttl_ms) ? CL_OK : CL_ERR_NOMEM;
        break;
    case CL_OP_NODES:
        op->st = cl_table_nodes(&s->t, now, &op->nodes, &op->n_nodes);
        break;
    case CL_OP_LEAVE: /* nothing shared to remove: the lease runs out by itself */
        op->st = CL_OK;
        break;
    default: /* internal operations are never answered locally */
        cl_op_free(op);
        return;
    }
    cl_complete(s, op);
}

static void run_callback(struct cl_op *op)
{
    switch (op->kind) {
    case CL_OP_CLAIM:
    case CL_OP_LOOKUP:
        if (op->cb.claim)
            op->cb.claim(op->arg, op->st, op->st == CL_OK ? &op->claim : NULL);
        break;
    case CL_OP_COUNT:
        if (op->cb.count)
            op->cb.count(op->arg, op->st, op->st == CL_OK ? op->count : 0);
        break;
    case CL_OP_RELEASE:
    case CL_OP_HEARTBEAT:
    case CL_OP_LEAVE:
        if (op->cb.done)
            op->cb.done(op->arg, op->st);
        break;
    case CL_OP_NODES:
        if (op->cb.nodes)
            op->cb.nodes(op->arg, op->st, op->nodes, op->n_nodes);
        break;
    case CL_OP_LOST:
        if (op->s->conf.on_lost)
            op->s->conf.on_lost(op->s->conf.on_lost_arg, op->conf, op->node.name);
        break;
    default:
        break;
    }
}

void cl_set_degraded(struct cl_store *s, bool on, const char *reason)
{
    if (s->degraded == on)
        return;
    s->degraded = on;
    if (on) {
        s->degraded_since = s->clock();
        s->degraded_since_unix = (int64_t)time(NULL);
        cn_log(CN_LOG_WARN, "cluster_degraded",
               "node=%s reason=\"%s\" action=\"answering from local state, retrying\"",
               s->conf.self.name, reason);
    } else {
        cn_log(CN_LOG_INFO, "cluster_restored", "node=%s degraded_ms=%llu conferences=%zu",
               s->conf.self.name, (unsigned long long)(s->clock() - s->degraded_since),
               cl_table_own_confs(&s->t));
        s->degraded_since = 0;
        s->degraded_since_unix = 0;
    }
}

/* ---- the event source ---------------------------------------------------------------- */

int cl_store_timeout_ms(const struct cl_store *s)
{
    if (!s)
        return -1;
    if (s->done_head)
        return 0;
    uint64_t now = s->clock();
    uint64_t next = s->next_heartbeat;
    if (s->redis) {
        uint64_t r = cl_redis_next(s->redis);
        if (r < next)
            next = r;
    }
    if (next <= now)
        return 0;
    uint64_t d = next - now;
    return d > 60000 ? 60000 : (int)d;
}

static void heartbeat_tick(struct cl_store *s, uint64_t now)
{
    if (now < s->next_heartbeat)
        return;
    s->next_heartbeat = now + s->conf.heartbeat_ms;
    cl_table_prune(&s->t, now);
    if (s->redis)
        cl_redis_self_heartbeat(s->redis);
}

void cl_store_run(struct cl_store *s)
{
    if (!s)
        return;
    struct epoll_event evs[8];
    int n = epoll_wait(s->epfd, evs, 8, 0);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            uint64_t v;
            ssize_t r = read(s->evfd, &v, sizeof v);
            (void)r;
        } else {
            cl_redis_event(evs[i].data.ptr, evs[i].events);
        }
    }
    uint64_t now = s->clock();
    if (s->redis)
        cl_redis_timers(s->redis, now);
    heartbeat_tick(s, now);
    if (s->redis)
        cl_redis_reap(s->redis);
    /* callbacks last; those queued by these callbacks wait for the next run */
    struct cl_op *op = s->done_head;
    s->done_head = s->done_tail = NULL;
    while (op) {
        struct cl_op *next = op->next;
        run_callback(op);
        cl_op_free(op);
        op = next;
    }
}

/* ---- operations ----------------------------------------------------------------------- */

/* conf NULL: an operation without a conference (heartbeat, node list). */
static struct cl_op *op_new(struct cl_store *s, enum cl_op_kind kind, const char *conf,
                            cl_status_t *st)
{
    *st = CL_ERR_INVAL;
    bool needs_conf = kind != CL_OP_HEARTBEAT && kind != CL_OP_NODES && kind != CL_OP_LEAVE;
    if (!s || (needs_conf && (!conf || !conf[0] || strlen(conf) >= CL_CONF_MAX)))
        return NULL;
    struct cl_op *op = calloc(1, sizeof *op);
    if (!op) {
        *st = CL_ERR_NOMEM;
        return NULL;
    }
    op->s = s;
    op->kind = kind;
    if (conf)
        snprintf(op->conf, sizeof op->conf, "%s", conf);
    *st = CL_OK;
    return op;
}

static cl_status_t submit(struct cl_store *s, struct cl_op *op)
{
    if (!s->redis || !cl_redis_submit(s->redis, op))
        cl_answer_local(s, op);
    return CL_OK;
}

cl_status_t cl_store_claim(struct cl_store *s, const char *conf, const char *location,
                           cl_claim_cb *cb, void *arg)
{
    cl_status_t st;
    if (location && strlen(location) >= CL_NAME_MAX)
        return CL_ERR_INVAL;
    struct cl_op *op = op_new(s, CL_OP_CLAIM, conf, &st);
    if (!op)
        return st;
    snprintf(op->location, sizeof op->location, "%s", location ? location : s->conf.self.location);
    op->cb.claim = cb;
    op->arg = arg;
    return submit(s, op);
}

cl_status_t cl_store_lookup(struct cl_store *s, const char *conf, cl_claim_cb *cb, void *arg)
{
    cl_status_t st;
    struct cl_op *op = op_new(s, CL_OP_LOOKUP, conf, &st);
    if (!op)
        return st;
    op->cb.claim = cb;
    op->arg = arg;
    return submit(s, op);
}

cl_status_t cl_store_count(struct cl_store *s, const char *conf, int delta, cl_count_cb *cb,
                           void *arg)
{
    cl_status_t st;
    struct cl_op *op = op_new(s, CL_OP_COUNT, conf, &st);
    if (!op)
        return st;
    op->delta = delta;
    op->cb.count = cb;
    op->arg = arg;
    return submit(s, op);
}

cl_status_t cl_store_release(struct cl_store *s, const char *conf, cl_done_cb *cb, void *arg)
{
    cl_status_t st;
    struct cl_op *op = op_new(s, CL_OP_RELEASE, conf, &st);
    if (!op)
        return st;
    op->cb.done = cb;
    op->arg = arg;
    return submit(s, op);
}

cl_status_t cl_store_heartbeat(struct cl_store *s, const struct cl_node_info *n, uint32_t ttl_ms,
                               cl_done_cb *cb, void *arg)
{
    if (!n || !n->name[0] || !memchr(n->name, '\0', sizeof n->name) || ttl_ms == 0)
        return CL_ERR_INVAL;
    if (s && strcmp(n->name, s->conf.self.name) == 0)
        return CL_ERR_INVAL; /* this node's lease belongs to the store's own timer */
    cl_status_t st;
    struct cl_op *op = op_new(s, CL_OP_HEARTBEAT, NULL, &st);
    if (!op)
        return st;
    op->node = *n;
    op->ttl_ms = ttl_ms;
    op->cb.done = cb;
    op->arg = arg;
    return submit(s, op);
}

cl_status_t cl_store_list_nodes(struct cl_store *s, cl_nodes_cb *cb, void *arg)
{
    cl_status_t st;
    struct cl_op *op = op_new(s, CL_OP_NODES, NULL, &st);
    if (!op)
        return st;
    op->cb.nodes = cb;
    op->arg = arg;
    return submit(s, op);
}

void cl_store_set_load(struct cl_store *s, uint32_t load)
{
    if (!s)
        return;
    s->conf.self.load = load;
    cl_table_self(&s->t)->info.load = load;
}

void cl_store_set_draining(struct cl_store *s, bool on)
{
    if (!s)
        return;
    s->conf.self.draining = on;
    cl_table_self(&s->t)->info.draining = on;
    if (!on)
        s->left = false;            /* back in the registry with the next heartbeat */
    s->next_heartbeat = s->clock(); /* tell the cluster now */
}

static void forget_own(void *arg, struct cl_conf_ent *e)
{
    struct cl_store *s = arg;
    if (!e->released && strcmp(e->owner, s->conf.self.name) == 0)
        cl_table_conf_del(&s->t, e->conf);
}

cl_status_t cl_store_leave(struct cl_store *s, cl_done_cb *cb, void *arg)
{
    cl_status_t st;
    struct cl_op *op = op_new(s, CL_OP_LEAVE, NULL, &st);
    if (!op)
        return st;
    op->cb.done = cb;
    op->arg = arg;
    s->left = true; /* no heartbeat renews the lease from now on */
    cl_table_conf_each(&s->t, forget_own, s);
    cn_log(CN_LOG_INFO, "cluster_leave", "node=%s mode=%s", s->conf.self.name,
           s->redis && !s->degraded ? "redis" : "local");
    return submit(s, op);
}

void cl_store_status(const struct cl_store *s, struct cl_store_status *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!s)
        return;
    st->mode = s->conf.mode;
    st->degraded = s->degraded;
    st->degraded_since_ms = s->degraded_since;
    st->degraded_since_unix = s->degraded_since_unix;
    st->conferences_local = cl_table_own_confs((struct cl_table *)&s->t);
    st->draining = s->conf.self.draining;
    st->left = s->left;
    if (s->redis)
        cl_redis_status(s->redis, st);
}
