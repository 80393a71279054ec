/* The Redis backend of the cluster store: hiredis async on the store's epoll fd,
 * a primary found directly or through Sentinel, atomic placement in Lua.
 *
 * DESIGN.
 * Connections. Three kinds, each a struct cl_conn that owns one redisAsyncContext:
 * `data` (the primary: every operation), `query` (a short-lived connection asking
 * one sentinel SENTINEL get-master-addr-by-name) and `sub` (a sentinel connection
 * subscribed to +switch-master). The epoll adapter is ours: hiredis calls the
 * ev.addRead/delRead/addWrite/delWrite hooks, which modify the fd's registration in
 * the store's epoll set (data.ptr = the cl_conn); ev.cleanup, called once when the
 * context goes away however that happens, unregisters it and moves the cl_conn to a
 * graveyard that is emptied at the end of cl_store_run() (another event of the same
 * batch may still point at it). hiredis 0.14 has no timers: the store checks
 * connect and command deadlines itself and frees a context that misses one.
 *
 * Link states: IDLE (waiting for retry_at) -> DISCOVER (asking sentinels in turn) ->
 * CONNECTING (connected to the candidate, ROLE sent) -> READY (ROLE said master).
 * Plain mode skips DISCOVER. Any failure (connection lost, timeout, READONLY /
 * LOADING / MASTERDOWN, ROLE not master, no sentinel answering) goes back to IDLE
 * with an exponential backoff and puts the store in degraded mode. A +switch-master
 * message for our master name moves a READY link straight to the new primary
 * (CONNECTING), holding operations meanwhile instead of degrading.
 *
 * Operations while not READY: held when the store is not degraded (the first
 * connection, a switch), answered locally when it is. A reply that never comes
 * (the connection died) sends the operation through the same choice again.
 *
 * Keys (prefix P, default "confnode:"):
 *   P node:<name>   hash location fqdn addrs load drain; PEXPIRE = the lease
 *   P nodes         set of node names that heartbeat (dead ones swept by claims)
 *   P conf:<id>     hash owner count
 *   P owned:<name>  set of conference ids a node owns (to sweep a dead node's)
 * Scripts get every key name from ARGV/KEYS built here; Redis runs each one
 * atomically, which is what makes a claim race-free between nodes. */
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "cl_int.h"
#include "cn_log.h"

enum conn_kind { CONN_DATA, CONN_QUERY, CONN_SUB };

struct cl_conn {
    struct cl_conn *next_dead;
    struct cl_redis *r;
    enum conn_kind kind;
    redisAsyncContext *ac; /* NULL once hiredis let go of it */
    int fd;
    uint32_t events; /* registered */
    bool closing;    /* redisAsyncFree() called */
    bool subscribed; /* sub: the SUBSCRIBE was confirmed */
    unsigned pending;
    uint64_t started, last_progress;
    size_t sentinel; /* query/sub: index of the sentinel */
};

enum link_state { LINK_IDLE, LINK_DISCOVER, LINK_CONNECTING, LINK_READY };

struct cl_redis {
    struct cl_store *s;
    enum link_state state;
    struct cl_conn *data, *query, *sub, *dead;
    uint64_t retry_at, sub_retry_at, last_error_log;
    uint32_t backoff;
    size_t sentinel_next, tries; /* DISCOVER: the next sentinel, how many asked */
    size_t sub_next;
    char target[CL_HOSTPORT_MAX];  /* primary being connected to or in use */
    char primary[CL_HOSTPORT_MAX]; /* last primary that said ROLE master */
    struct cl_op *held_head, *held_tail;
    bool hb_outstanding, ever_ready;
    uint64_t reconnects, failovers;
};

/* ---- scripts -------------------------------------------------------------------- */

/* KEYS: node key, nodes set. ARGV: name ttl location fqdn addrs load drain */
static const char lua_heartbeat[] =
    "redis.call('HSET', KEYS[1], 'location', ARGV[3], 'fqdn', ARGV[4], 'addrs', ARGV[5],"
    " 'load', ARGV[6], 'drain', ARGV[7])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "return 1\n";

/* KEYS: conf key, nodes set. ARGV: prefix conf location.
 * Returns {owner, placed, count, owner pttl, fqdn, addrs}; owner '' = no node. */
static const char lua_claim[] =
    "local P, conf, loc = ARGV[1], ARGV[2], ARGV[3]\n"
    "local cur = redis.call('HMGET', KEYS[1], 'owner', 'count')\n"
    "if cur[1] then\n"
    "  local ttl = redis.call('PTTL', P .. 'node:' .. cur[1])\n"
    "  if ttl ~= -2 then\n"
    "    local f = redis.call('HMGET', P .. 'node:' .. cur[1], 'fqdn', 'addrs')\n"
    "    return {cur[1], 0, tonumber(cur[2] or '0'), ttl, f[1] or '', f[2] or ''}\n"
    "  end\n"
    "end\n"
    "local best, bl, bt, any, al, at\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
    "  local k = P .. 'node:' .. n\n"
    "  local ttl = redis.call('PTTL', k)\n"
    "  if ttl == -2 then\n"
    "    redis.call('SREM', KEYS[2], n)\n"
    "    for _, c in ipairs(redis.call('SMEMBERS', P .. 'owned:' .. n)) do\n"
    "      if redis.call('HGET', P .. 'conf:' .. c, 'owner') == n then\n"
    "        redis.call('DEL', P .. 'conf:' .. c)\n"
    "      end\n"
    "    end\n"
    "    redis.call('DEL', P .. 'owned:' .. n)\n"
    "  else\n"
    "    local f = redis.call('HMGET', k, 'location', 'load', 'drain')\n"
    "    if f[3] ~= '1' then\n"
    "      local l = tonumber(f[2] or '0') or 0\n"
    "      if any == nil or l < al or (l == al and n < any) then any, al, at = n, l, ttl end\n"
    "      if loc == '' or f[1] == loc then\n"
    "        if best == nil or l < bl or (l == bl and n < best) then best, bl, bt = n, l, ttl end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if best == nil then best, bt = any, at end\n"
    "if best == nil then return {'', 0, 0, 0, '', ''} end\n"
    "if cur[1] then redis.call('SREM', P .. 'owned:' .. cur[1], conf) end\n"
    "redis.call('HSET', KEYS[1], 'owner', best, 'count', 0)\n"
    "redis.call('SADD', P .. 'owned:' .. best, conf)\n"
    "redis.call('HINCRBY', P .. 'node:' .. best, 'load', 1)\n"
    "local f = redis.call('HMGET', P .. 'node:' .. best, 'fqdn', 'addrs')\n"
    "return {best, 1, 0, bt, f[1] or '', f[2] or ''}\n";

/* KEYS: conf key. ARGV: prefix. Returns nil or {owner, count, pttl, fqdn, addrs}. */
static const char lua_lookup[] =
    "local cur = redis.call('HMGET', KEYS[1], 'owner', 'count')\n"
    "if not cur[1] then return false end\n"
    "local k = ARGV[1] .. 'node:' .. cur[1]\n"
    "local ttl = redis.call('PTTL', k)\n"
    "if ttl == -2 then return false end\n"
    "local f = redis.call('HMGET', k, 'fqdn', 'addrs')\n"
    "return {cur[1], tonumber(cur[2] or '0'), ttl, f[1] or '', f[2] or ''}\n";

/* KEYS: conf key. ARGV: delta. Returns nil or {count, owner}. */
static const char lua_count[] = "if redis.call('EXISTS', KEYS[1]) == 0 then return false end\n"
                                "local n = redis.call('HINCRBY', KEYS[1], 'count', ARGV[1])\n"
                                "if n < 0 then redis.call('HSET', KEYS[1], 'count', 0) n = 0 end\n"
                                "return {n, redis.call('HGET', KEYS[1], 'owner')}\n";

/* KEYS: conf key. ARGV: prefix self conf. Returns 1 released, 0 not owner, -1 none. */
static const char lua_release[] = "local o = redis.call('HGET', KEYS[1], 'owner')\n"
                                  "if not o then return -1 end\n"
                                  "if o ~= ARGV[2] then return 0 end\n"
                                  "redis.call('DEL', KEYS[1])\n"
                                  "redis.call('SREM', ARGV[1] .. 'owned:' .. ARGV[2], ARGV[3])\n"
                                  "return 1\n";

/* KEYS: conf key. ARGV: prefix self conf count. The conference goes to the live
 * claimant hosting more participants, ties to the smaller name.
 * Returns {owner, count}. */
static const char lua_reassert[] =
    "local P, me, conf, mine = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])\n"
    "local cur = redis.call('HMGET', KEYS[1], 'owner', 'count')\n"
    "if cur[1] and cur[1] ~= me then\n"
    "  local theirs = tonumber(cur[2] or '0') or 0\n"
    "  if redis.call('PTTL', P .. 'node:' .. cur[1]) ~= -2 and\n"
    "     (theirs > mine or (theirs == mine and cur[1] < me)) then\n"
    "    return {cur[1], theirs}\n"
    "  end\n"
    "  redis.call('SREM', P .. 'owned:' .. cur[1], conf)\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'owner', me, 'count', mine)\n"
    "redis.call('SADD', P .. 'owned:' .. me, conf)\n"
    "return {me, mine}\n";

/* KEYS: node key, nodes set. ARGV: prefix name. This node leaves: its lease, its
 * place in the node set and the conferences it still owns go. Returns 1. */
static const char lua_leave[] =
    "local P, me = ARGV[1], ARGV[2]\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[2], me)\n"
    "for _, c in ipairs(redis.call('SMEMBERS', P .. 'owned:' .. me)) do\n"
    "  if redis.call('HGET', P .. 'conf:' .. c, 'owner') == me then\n"
    "    redis.call('DEL', P .. 'conf:' .. c)\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', P .. 'owned:' .. me)\n"
    "return 1\n";

/* KEYS: nodes set. ARGV: prefix. Returns {{name, location, fqdn, addrs, load,
 * drain, pttl}, ...} for the live nodes. */
static const char lua_nodes[] =
    "local out = {}\n"
    "for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local k = ARGV[1] .. 'node:' .. n\n"
    "  local ttl = redis.call('PTTL', k)\n"
    "  if ttl ~= -2 then\n"
    "    local f = redis.call('HMGET', k, 'location', 'fqdn', 'addrs', 'load', 'drain')\n"
    "    out[#out + 1] = {n, f[1] or '', f[2] or '', f[3] or '', tonumber(f[4] or '0') or 0,\n"
    "                     f[5] == '1' and 1 or 0, ttl}\n"
    "  end\n"
    "end\n"
    "return out\n";

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t now_ms(const struct cl_redis *r)
{
    return r->s->clock();
}

static bool is_str(const redisReply *x)
{
    return x && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS);
}

static long long int_of(const redisReply *x)
{
    if (!x)
        return 0;
    if (x->type == REDIS_REPLY_INTEGER)
        return x->integer;
    if (is_str(x))
        return strtoll(x->str, NULL, 10);
    return 0;
}

static void copy_str(char *dst, size_t cap, const redisReply *x)
{
    snprintf(dst, cap, "%s", is_str(x) ? x->str : "");
}

/* Errors that mean "this is not (or no longer) a usable primary". */
static bool is_link_error(const redisReply *x)
{
    static const char *const codes[] = {"READONLY", "LOADING", "MASTERDOWN", "NOREPLICAS"};
    if (!x || x->type != REDIS_REPLY_ERROR)
        return false;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strncmp(x->str, codes[i], strlen(codes[i])) == 0)
            return true;
    return false;
}

/* ---- the epoll adapter ---------------------------------------------------------------- */

static void ev_set(struct cl_conn *c, uint32_t events)
{
    if (c->fd < 0 || events == c->events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(c->r->s->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->events = events;
}

static void ev_add_read(void *p)
{
    struct cl_conn *c = p;
    ev_set(c, c->events | EPOLLIN);
}

static void ev_del_read(void *p)
{
    struct cl_conn *c = p;
    ev_set(c, c->events & ~(uint32_t)EPOLLIN);
}

static void ev_add_write(void *p)
{
    struct cl_conn *c = p;
    ev_set(c, c->events | EPOLLOUT);
}

static void ev_del_write(void *p)
{
    struct cl_conn *c = p;
    ev_set(c, c->events & ~(uint32_t)EPOLLOUT);
}

static void conn_gone(struct cl_conn *c);

/* hiredis is freeing the context (any reason): forget it, keep the cl_conn until
 * the end of this run. Never frees a context from here. */
static void ev_cleanup(void *p)
{
    struct cl_conn *c = p;
    if (c->fd >= 0)
        epoll_ctl(c->r->s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->fd = -1;
    c->ac = NULL;
    c->next_dead = c->r->dead;
    c->r->dead = c;
    conn_gone(c);
}

void cl_redis_event(void *conn, uint32_t events)
{
    struct cl_conn *c = conn;
    if (!c->ac)
        return;
    bool connected = c->ac->c.flags & REDIS_CONNECTED;
    bool trouble = events & (EPOLLERR | EPOLLHUP);
    if ((events & EPOLLIN) || (trouble && connected))
        redisAsyncHandleRead(c->ac);
    if (c->ac && ((events & EPOLLOUT) || (trouble && !connected)))
        redisAsyncHandleWrite(c->ac);
}

/* Starts a connection to "ip:port"; NULL when it failed at once. */
static struct cl_conn *conn_open(struct cl_redis *r, enum conn_kind kind, const char *hostport)
{
    char host[64];
    int port;
    if (cl_parse_hostport(hostport, host, sizeof host, &port) != 0)
        return NULL;
    struct cl_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->r = r;
    c->kind = kind;
    c->fd = -1;
    c->started = c->last_progress = now_ms(r);
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err) {
        cn_log(CN_LOG_DEBUG, "cluster_connect_failed", "addr=%s reason=\"%s\"", hostport,
               ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        free(c);
        return NULL;
    }
    struct epoll_event ev = {.events = 0, .data.ptr = c};
    if (epoll_ctl(r->s->epfd, EPOLL_CTL_ADD, ac->c.fd, &ev) != 0) {
        redisAsyncFree(ac);
        free(c);
        return NULL;
    }
    c->ac = ac;
    c->fd = ac->c.fd;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisEnableKeepAlive(&ac->c);
    return c;
}

/* Closes c's context (deferred by hiredis when inside one of its callbacks). The
 * caller has already detached c from r (r->data etc. no longer point at it). */
static void conn_close(struct cl_conn *c)
{
    if (!c || !c->ac || c->closing)
        return;
    c->closing = true;
    redisAsyncFree(c->ac);
}

void cl_redis_reap(struct cl_redis *r)
{
    while (r->dead) {
        struct cl_conn *c = r->dead;
        r->dead = c->next_dead;
        free(c);
    }
}

/* ---- sending --------------------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void link_failed(struct cl_redis *r, const char *reason);

struct argv {
    int n;
    const char *v[12];
    size_t len[12];
    char keys[3][CL_CONF_MAX + 48];
    char num[4][24];
};

static void arg(struct argv *a, const char *s)
{
    a->v[a->n] = s;
    a->len[a->n] = strlen(s);
    a->n++;
}

static const char *key(struct argv *a, int i, const struct cl_redis *r, const char *kind,
                       const char *name)
{
    snprintf(a->keys[i], sizeof a->keys[i], "%s%s%s", r->s->conf.key_prefix, kind, name);
    return a->keys[i];
}

static const char *num(struct argv *a, int i, long long v)
{
    snprintf(a->num[i], sizeof a->num[i], "%lld", v);
    return a->num[i];
}

static void eval_head(struct argv *a, const char *script, int nkeys)
{
    arg(a, "EVAL");
    arg(a, script);
    arg(a, nkeys == 1 ? "1" : "2");
}

static void heartbeat_args(struct argv *a, const struct cl_redis *r, const struct cl_node_info *n,
                           uint32_t ttl)
{
    eval_head(a, lua_heartbeat, 2);
    arg(a, key(a, 0, r, "node:", n->name));
    arg(a, key(a, 1, r, "nodes", ""));
    arg(a, n->name);
    arg(a, num(a, 0, ttl));
    arg(a, n->location);
    arg(a, n->sip_fqdn);
    arg(a, n->addresses);
    arg(a, num(a, 1, n->load));
    arg(a, n->draining ? "1" : "0");
}

static void build_args(struct argv *a, const struct cl_redis *r, const struct cl_op *op)
{
    const struct cl_store_conf *cf = &r->s->conf;
    memset(a, 0, sizeof *a);
    switch (op->kind) {
    case CL_OP_CLAIM:
        eval_head(a, lua_claim, 2);
        arg(a, key(a, 0, r, "conf:", op->conf));
        arg(a, key(a, 1, r, "nodes", ""));
        arg(a, cf->key_prefix);
        arg(a, op->conf);
        arg(a, op->location);
        break;
    case CL_OP_LOOKUP:
        eval_head(a, lua_lookup, 1);
        arg(a, key(a, 0, r, "conf:", op->conf));
        arg(a, cf->key_prefix);
        break;
    case CL_OP_COUNT:
        eval_head(a, lua_count, 1);
        arg(a, key(a, 0, r, "conf:", op->conf));
        arg(a, num(a, 0, op->delta));
        break;
    case CL_OP_RELEASE:
    case CL_OP_REPLAY_RELEASE:
        eval_head(a, lua_release, 1);
        arg(a, key(a, 0, r, "conf:", op->conf));
        arg(a, cf->key_prefix);
        arg(a, cf->self.name);
        arg(a, op->conf);
        break;
    case CL_OP_REASSERT:
        eval_head(a, lua_reassert, 1);
        arg(a, key(a, 0, r, "conf:", op->conf));
        arg(a, cf->key_prefix);
        arg(a, cf->self.name);
        arg(a, op->conf);
        arg(a, num(a, 0, op->count));
        break;
    case CL_OP_HEARTBEAT:
    case CL_OP_SELF_HEARTBEAT:
        heartbeat_args(a, r, &op->node, op->ttl_ms);
        break;
    case CL_OP_NODES:
        eval_head(a, lua_nodes, 1);
        arg(a, key(a, 0, r, "nodes", ""));
        arg(a, cf->key_prefix);
        break;
    case CL_OP_LEAVE:
        eval_head(a, lua_leave, 2);
        arg(a, key(a, 0, r, "node:", cf->self.name));
        arg(a, key(a, 1, r, "nodes", ""));
        arg(a, cf->key_prefix);
        arg(a, cf->self.name);
        break;
    case CL_OP_ROLE:
        arg(a, "ROLE");
        break;
    case CL_OP_SENTINEL_QUERY:
        arg(a, "SENTINEL");
        arg(a, "get-master-addr-by-name");
        arg(a, cf->master_name);
        break;
    default:
        break;
    }
}

/* Sends op on c. On failure the op goes back through requeue (link failure). */
static bool conn_send(struct cl_conn *c, struct cl_op *op)
{
    struct argv a;
    build_args(&a, c->r, op);
    if (!c->ac || c->closing ||
        redisAsyncCommandArgv(c->ac, on_reply, op, a.n, a.v, a.len) != REDIS_OK)
        return false;
    if (c->pending++ == 0)
        c->last_progress = now_ms(c->r);
    return true;
}

static bool is_user_op(const struct cl_op *op)
{
    return op->kind <= CL_OP_LEAVE;
}

static void hold(struct cl_redis *r, struct cl_op *op)
{
    op->next = NULL;
    if (r->held_tail)
        r->held_tail->next = op;
    else
        r->held_head = op;
    r->held_tail = op;
}

/* Where an operation goes when it cannot be (or was not) answered by Redis:
 * the READY link, the held list (not degraded), or a local answer. */
static void requeue(struct cl_redis *r, struct cl_op *op)
{
    if (!is_user_op(op)) {
        if (op->kind == CL_OP_SELF_HEARTBEAT)
            r->hb_outstanding = false;
        cl_op_free(op);
        return;
    }
    if (r->state == LINK_READY && r->data && conn_send(r->data, op))
        return;
    if (r->state != LINK_IDLE && !r->s->degraded) {
        hold(r, op);
        return;
    }
    cl_answer_local(r->s, op);
}

bool cl_redis_submit(struct cl_redis *r, struct cl_op *op)
{
    if (r->state == LINK_READY && r->data) {
        if (conn_send(r->data, op))
            return true;
        link_failed(r, "cannot send a command");
        return false;
    }
    if (!r->s->degraded) {
        hold(r, op);
        return true;
    }
    return false;
}

/* ---- the link ------------------------------------------------------------------------------ */

static bool sentinel_mode(const struct cl_redis *r)
{
    return r->s->conf.n_sentinels > 0;
}

static void link_failed(struct cl_redis *r, const char *reason)
{
    if (r->state == LINK_IDLE || r->s->freeing)
        return;
    uint64_t now = now_ms(r);
    cn_log(CN_LOG_DEBUG, "cluster_link_down", "node=%s target=%s reason=\"%s\" retry_ms=%u",
           r->s->conf.self.name, r->target[0] ? r->target : "-", reason, r->backoff);
    r->state = LINK_IDLE;
    r->retry_at = now + r->backoff;
    r->backoff =
        r->backoff * 2 > r->s->conf.retry_max_ms ? r->s->conf.retry_max_ms : r->backoff * 2;
    cl_set_degraded(r->s, true, reason);
    struct cl_conn *d = r->data, *q = r->query;
    r->data = r->query = NULL;
    conn_close(d);
    conn_close(q);
    struct cl_op *op = r->held_head;
    r->held_head = r->held_tail = NULL;
    while (op) {
        struct cl_op *next = op->next;
        cl_answer_local(r->s, op);
        op = next;
    }
}

static struct cl_op *internal_op(struct cl_redis *r, enum cl_op_kind kind)
{
    struct cl_op *op = calloc(1, sizeof *op);
    if (op) {
        op->s = r->s;
        op->kind = kind;
    }
    return op;
}

/* Sends an internal operation on c; false when it could not be sent. */
static bool send_internal(struct cl_redis *r, struct cl_conn *c, struct cl_op *op)
{
    if (!op)
        return false;
    if (c && conn_send(c, op))
        return true;
    if (op->kind == CL_OP_SELF_HEARTBEAT)
        r->hb_outstanding = false;
    cl_op_free(op);
    return false;
}

static void connect_data(struct cl_redis *r, const char *hostport)
{
    snprintf(r->target, sizeof r->target, "%s", hostport);
    r->state = LINK_CONNECTING;
    r->data = conn_open(r, CONN_DATA, hostport);
    if (!r->data || !send_internal(r, r->data, internal_op(r, CL_OP_ROLE)))
        link_failed(r, "cannot connect to the primary");
}

static void discover_next(struct cl_redis *r)
{
    const struct cl_store_conf *cf = &r->s->conf;
    while (r->tries < cf->n_sentinels) {
        size_t i = (r->sentinel_next + r->tries) % cf->n_sentinels;
        r->tries++;
        struct cl_conn *q = conn_open(r, CONN_QUERY, cf->sentinels[i]);
        if (!q)
            continue;
        q->sentinel = i;
        r->query = q;
        if (send_internal(r, q, internal_op(r, CL_OP_SENTINEL_QUERY)))
            return;
        r->query = NULL;
        conn_close(q);
    }
    link_failed(r, "no sentinel named a primary");
}

static void link_start(struct cl_redis *r)
{
    if (sentinel_mode(r)) {
        r->state = LINK_DISCOVER;
        r->tries = 0;
        discover_next(r);
    } else {
        connect_data(r, r->s->conf.redis);
    }
}

void cl_redis_self_heartbeat(struct cl_redis *r)
{
    if (r->state != LINK_READY || r->hb_outstanding || r->s->left)
        return;
    struct cl_op *op = internal_op(r, CL_OP_SELF_HEARTBEAT);
    if (!op)
        return;
    op->node = r->s->conf.self;
    op->ttl_ms = r->s->conf.lease_ttl_ms;
    r->hb_outstanding = true;
    send_internal(r, r->data, op);
}

struct reconcile_ctx {
    struct cl_redis *r;
    const char *self;
};

static void reconcile_one(void *arg, struct cl_conf_ent *e)
{
    struct reconcile_ctx *x = arg;
    struct cl_redis *r = x->r;
    if (e->released) {
        struct cl_op *op = internal_op(r, CL_OP_REPLAY_RELEASE);
        if (op)
            snprintf(op->conf, sizeof op->conf, "%s", e->conf);
        send_internal(r, r->data, op);
        cl_table_conf_del(&r->s->t, e->conf);
        return;
    }
    if (strcmp(e->owner, x->self) != 0)
        return;
    struct cl_op *op = internal_op(r, CL_OP_REASSERT);
    if (op) {
        snprintf(op->conf, sizeof op->conf, "%s", e->conf);
        op->count = e->count;
    }
    send_internal(r, r->data, op);
}

/* ROLE said master: re-assert, then send what waited. */
static void link_ready(struct cl_redis *r)
{
    r->state = LINK_READY;
    r->backoff = r->s->conf.retry_min_ms;
    if (r->ever_ready) {
        r->reconnects++;
        if (strcmp(r->primary, r->target) != 0)
            r->failovers++;
    }
    r->ever_ready = true;
    if (strcmp(r->primary, r->target) != 0)
        cn_log(CN_LOG_INFO, "cluster_primary", "node=%s primary=%s", r->s->conf.self.name,
               r->target);
    snprintf(r->primary, sizeof r->primary, "%s", r->target);
    r->hb_outstanding = false;
    cl_redis_self_heartbeat(r);
    struct reconcile_ctx x = {r, r->s->conf.self.name};
    cl_table_conf_each(&r->s->t, reconcile_one, &x);
    cl_set_degraded(r->s, false, NULL);
    struct cl_op *op = r->held_head;
    r->held_head = r->held_tail = NULL;
    while (op) {
        struct cl_op *next = op->next;
        requeue(r, op);
        op = next;
    }
}

/* A sentinel announced a new primary for our master name. */
static void switch_primary(struct cl_redis *r, const char *hostport)
{
    if (strcmp(hostport, r->target) == 0 && r->state != LINK_IDLE)
        return;
    cn_log(CN_LOG_INFO, "cluster_switch_master", "node=%s from=%s to=%s", r->s->conf.self.name,
           r->target[0] ? r->target : "-", hostport);
    struct cl_conn *d = r->data, *q = r->query;
    r->data = r->query = NULL;
    r->state = LINK_CONNECTING; /* in-flight operations are held, not degraded */
    conn_close(d);
    conn_close(q);
    connect_data(r, hostport);
}

static void conn_gone(struct cl_conn *c)
{
    struct cl_redis *r = c->r;
    if (r->s->freeing)
        return;
    if (r->data == c) {
        r->data = NULL;
        link_failed(r, "connection to the primary lost");
    } else if (r->query == c) {
        r->query = NULL;
        if (r->state == LINK_DISCOVER)
            discover_next(r);
    } else if (r->sub == c) {
        r->sub = NULL;
        r->sub_next = (c->sentinel + 1) % r->s->conf.n_sentinels;
        r->sub_retry_at = now_ms(r) + r->s->conf.retry_max_ms;
    }
}

/* ---- replies -----------------------------------------------------------------------------------
 */

static void remember_owner(struct cl_redis *r, const char *conf, const char *owner, int64_t count,
                           long long pttl, const redisReply *fqdn, const redisReply *addrs)
{
    struct cl_table *t = &r->s->t;
    uint64_t now = now_ms(r);
    bool mine = strcmp(owner, r->s->conf.self.name) == 0;
    if (!mine) {
        struct cl_node_ent *n = cl_table_node(t, owner);
        struct cl_node_info info = {0};
        if (n)
            info = n->info;
        snprintf(info.name, sizeof info.name, "%s", owner);
        if (is_str(fqdn))
            copy_str(info.sip_fqdn, sizeof info.sip_fqdn, fqdn);
        if (is_str(addrs))
            copy_str(info.addresses, sizeof info.addresses, addrs);
        cl_table_node_put(t, &info, now + (uint64_t)(pttl > 0 ? pttl : 0));
    }
    struct cl_conf_ent *e = cl_table_conf_put(t, conf);
    if (!e)
        return;
    snprintf(e->owner, sizeof e->owner, "%s", owner);
    e->count = count;
    e->released = false;
}

static void fill_claim(struct cl_redis *r, struct cl_op *op, const char *owner, int64_t count,
                       bool placed, const redisReply *fqdn, const redisReply *addrs)
{
    struct cl_claim *c = &op->claim;
    memset(c, 0, sizeof *c);
    snprintf(c->owner, sizeof c->owner, "%s", owner);
    c->mine = strcmp(owner, r->s->conf.self.name) == 0;
    c->placed = placed;
    c->count = count;
    copy_str(c->owner_fqdn, sizeof c->owner_fqdn, fqdn);
    copy_str(c->owner_addresses, sizeof c->owner_addresses, addrs);
    op->count = count;
}

static bool array_of(const redisReply *x, size_t n)
{
    return x && x->type == REDIS_REPLY_ARRAY && x->elements >= n;
}

static int node_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cl_node_info *)a)->name, ((const struct cl_node_info *)b)->name);
}

static cl_status_t parse_nodes(struct cl_redis *r, struct cl_op *op, const redisReply *x)
{
    if (!x || x->type != REDIS_REPLY_ARRAY)
        return CL_ERR_UNAVAILABLE;
    if (x->elements == 0)
        return CL_OK;
    op->nodes = calloc(x->elements, sizeof *op->nodes);
    if (!op->nodes)
        return CL_ERR_NOMEM;
    uint64_t now = now_ms(r);
    for (size_t i = 0; i < x->elements; i++) {
        const redisReply *e = x->element[i];
        if (!array_of(e, 7) || !is_str(e->element[0]))
            continue;
        struct cl_node_info *n = &op->nodes[op->n_nodes++];
        copy_str(n->name, sizeof n->name, e->element[0]);
        copy_str(n->location, sizeof n->location, e->element[1]);
        copy_str(n->sip_fqdn, sizeof n->sip_fqdn, e->element[2]);
        copy_str(n->addresses, sizeof n->addresses, e->element[3]);
        long long load = int_of(e->element[4]), pttl = int_of(e->element[6]);
        n->load = load < 0 ? 0 : load > UINT32_MAX ? UINT32_MAX : (uint32_t)load;
        n->draining = int_of(e->element[5]) != 0;
        n->lease_ms = pttl > 0 ? (uint64_t)pttl : 0;
        if (strcmp(n->name, r->s->conf.self.name) != 0)
            cl_table_node_put(&r->s->t, n, now + n->lease_ms);
    }
    qsort(op->nodes, op->n_nodes, sizeof *op->nodes, node_cmp);
    return CL_OK;
}

/* Conference e, which this node owned, belongs to `winner` now: note it and tell
 * the owner of the store (on_lost, from cl_store_run). */
static void lost(struct cl_redis *r, struct cl_conf_ent *e, const char *winner, long long count)
{
    cn_log(CN_LOG_WARN, "cluster_conference_lost",
           "node=%s conf=\"%s\" winner=%s their_count=%lld our_count=%lld", r->s->conf.self.name,
           e->conf, winner, count, (long long)e->count);
    struct cl_op *op = calloc(1, sizeof *op);
    if (op) {
        op->s = r->s;
        op->kind = CL_OP_LOST;
        snprintf(op->conf, sizeof op->conf, "%s", e->conf);
        snprintf(op->node.name, sizeof op->node.name, "%s", winner);
        cl_complete(r->s, op);
    }
    snprintf(e->owner, sizeof e->owner, "%s", winner);
    e->count = count;
}

/* A user operation's reply: fills op's result and queues its callback. */
static void user_reply(struct cl_redis *r, struct cl_op *op, const redisReply *x)
{
    struct cl_table *t = &r->s->t;
    const char *self = r->s->conf.self.name;
    op->st = CL_OK;
    switch (op->kind) {
    case CL_OP_CLAIM:
        if (!array_of(x, 6) || !is_str(x->element[0])) {
            op->st = CL_ERR_UNAVAILABLE;
        } else if (x->element[0]->str[0] == '\0') {
            op->st = CL_ERR_NO_NODE;
        } else {
            const char *owner = x->element[0]->str;
            fill_claim(r, op, owner, int_of(x->element[2]), int_of(x->element[1]) != 0,
                       x->element[4], x->element[5]);
            remember_owner(r, op->conf, owner, op->count, int_of(x->element[3]), x->element[4],
                           x->element[5]);
        }
        break;
    case CL_OP_LOOKUP:
        if (array_of(x, 5) && is_str(x->element[0])) {
            const char *owner = x->element[0]->str;
            fill_claim(r, op, owner, int_of(x->element[1]), false, x->element[3], x->element[4]);
            remember_owner(r, op->conf, owner, op->count, int_of(x->element[2]), x->element[3],
                           x->element[4]);
        } else {
            op->st = CL_ERR_NOT_FOUND;
            struct cl_conf_ent *e = cl_table_conf(t, op->conf);
            if (e && !e->released && strcmp(e->owner, self) != 0)
                cl_table_conf_del(t, op->conf);
        }
        break;
    case CL_OP_COUNT:
        if (array_of(x, 2)) {
            op->count = int_of(x->element[0]);
            struct cl_conf_ent *e = cl_table_conf(t, op->conf);
            if (e && !e->released && is_str(x->element[1]) && strcmp(e->owner, self) == 0) {
                if (strcmp(x->element[1]->str, self) == 0)
                    e->count = op->count;
                else /* another node's re-assertion overtook ours */
                    lost(r, e, x->element[1]->str, op->count);
            }
        } else {
            op->st = CL_ERR_NOT_FOUND;
        }
        break;
    case CL_OP_RELEASE: {
        long long v = int_of(x);
        op->st = v == 1 ? CL_OK : v == 0 ? CL_ERR_NOT_OWNER : CL_ERR_NOT_FOUND;
        struct cl_conf_ent *e = cl_table_conf(t, op->conf);
        if (e && (v != 0 || strcmp(e->owner, self) == 0))
            cl_table_conf_del(t, op->conf);
        break;
    }
    case CL_OP_HEARTBEAT:
        if (!cl_table_node_put(t, &op->node, now_ms(r) + op->ttl_ms))
            op->st = CL_ERR_NOMEM;
        break;
    case CL_OP_NODES:
        op->st = parse_nodes(r, op, x);
        break;
    default:
        break;
    }
    cl_complete(r->s, op);
}

static void reassert_reply(struct cl_redis *r, struct cl_op *op, const redisReply *x)
{
    const char *self = r->s->conf.self.name;
    struct cl_conf_ent *e = cl_table_conf(&r->s->t, op->conf);
    if (array_of(x, 2) && is_str(x->element[0]) && strcmp(x->element[0]->str, self) != 0 && e &&
        !e->released && strcmp(e->owner, self) == 0)
        lost(r, e, x->element[0]->str, int_of(x->element[1]));
    cl_op_free(op);
}

static void sentinel_reply(struct cl_redis *r, redisAsyncContext *ac, struct cl_op *op,
                           const redisReply *x)
{
    bool current = r->query && r->query->ac == ac;
    size_t idx = current ? r->query->sentinel : 0;
    cl_op_free(op);
    if (!current || r->state != LINK_DISCOVER)
        return;
    struct cl_conn *q = r->query;
    r->query = NULL;
    conn_close(q);
    char hostport[CL_HOSTPORT_MAX];
    if (array_of(x, 2) && is_str(x->element[0]) && is_str(x->element[1])) {
        bool v6 = strchr(x->element[0]->str, ':') != NULL;
        snprintf(hostport, sizeof hostport, v6 ? "[%s]:%s" : "%s:%s", x->element[0]->str,
                 x->element[1]->str);
        char host[64];
        int port;
        if (cl_parse_hostport(hostport, host, sizeof host, &port) == 0) {
            r->sentinel_next = idx; /* ask this one first next time */
            connect_data(r, hostport);
            return;
        }
    }
    discover_next(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cl_op *op = privdata;
    struct cl_store *s = op->s;
    if (s->freeing) {
        cl_op_free(op);
        return;
    }
    struct cl_redis *r = s->redis;
    struct cl_conn *c = ac->ev.data;
    if (c && c->pending > 0) {
        c->pending--;
        c->last_progress = now_ms(r);
    }
    const redisReply *x = reply;
    if (op->kind == CL_OP_SENTINEL_QUERY) {
        sentinel_reply(r, ac, op, x);
        return;
    }
    bool current = r->data && r->data->ac == ac;
    if (!x || is_link_error(x)) {
        if (current)
            link_failed(r, x ? x->str : "connection to the primary lost");
        requeue(r, op);
        return;
    }
    if (x->type == REDIS_REPLY_ERROR) {
        uint64_t now = now_ms(r);
        if (now - r->last_error_log >= 10000 || r->last_error_log == 0) {
            r->last_error_log = now;
            cn_log(CN_LOG_WARN, "cluster_redis_error", "node=%s primary=%s error=\"%.200s\"",
                   s->conf.self.name, r->target, x->str);
        }
        if (op->kind == CL_OP_ROLE && current)
            link_failed(r, "ROLE refused");
        if (is_user_op(op))
            cl_answer_local(s, op);
        else
            requeue(r, op);
        return;
    }
    switch (op->kind) {
    case CL_OP_ROLE: {
        bool master =
            array_of(x, 1) && is_str(x->element[0]) && strcmp(x->element[0]->str, "master") == 0;
        cl_op_free(op);
        if (!current || r->state != LINK_CONNECTING)
            return;
        if (master)
            link_ready(r);
        else
            link_failed(r, "not a primary (ROLE is not master)");
        return;
    }
    case CL_OP_SELF_HEARTBEAT:
        r->hb_outstanding = false;
        cl_op_free(op);
        return;
    case CL_OP_REASSERT:
        reassert_reply(r, op, x);
        return;
    case CL_OP_REPLAY_RELEASE:
        cl_op_free(op);
        return;
    default:
        user_reply(r, op, x);
        return;
    }
}

/* ---- the Sentinel subscription -----------------------------------------------------------------
 */

static void on_sub(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct cl_conn *c = privdata;
    struct cl_redis *r = c->r;
    const redisReply *x = reply;
    if (!x || r->s->freeing || r->sub != c || !c->ac || c->ac != ac)
        return;
    if (!array_of(x, 3) || !is_str(x->element[0]))
        return;
    if (strcmp(x->element[0]->str, "subscribe") == 0) {
        c->subscribed = true;
        return;
    }
    if (strcmp(x->element[0]->str, "message") != 0 || !is_str(x->element[2]))
        return;
    /* "<master name> <old ip> <old port> <new ip> <new port>" */
    char name[CL_NAME_MAX], oip[64], nip[64];
    unsigned oport, nport;
    if (sscanf(x->element[2]->str, "%63s %63s %u %63s %u", name, oip, &oport, nip, &nport) != 5 ||
        strcmp(name, r->s->conf.master_name) != 0 || nport == 0 || nport > 65535)
        return;
    char hostport[CL_HOSTPORT_MAX];
    snprintf(hostport, sizeof hostport, strchr(nip, ':') ? "[%s]:%u" : "%s:%u", nip, nport);
    char host[64];
    int port;
    if (cl_parse_hostport(hostport, host, sizeof host, &port) == 0)
        switch_primary(r, hostport);
}

static void sub_start(struct cl_redis *r)
{
    const struct cl_store_conf *cf = &r->s->conf;
    size_t i = r->sub_next % cf->n_sentinels;
    struct cl_conn *c = conn_open(r, CONN_SUB, cf->sentinels[i]);
    if (!c) {
        r->sub_next = (i + 1) % cf->n_sentinels;
        r->sub_retry_at = now_ms(r) + cf->retry_max_ms;
        return;
    }
    c->sentinel = i;
    r->sub = c;
    if (redisAsyncCommand(c->ac, on_sub, c, "SUBSCRIBE +switch-master") != REDIS_OK) {
        r->sub = NULL;
        conn_close(c);
        r->sub_retry_at = now_ms(r) + cf->retry_max_ms;
    }
}

/* ---- timers ------------------------------------------------------------------------------------
 */

static uint64_t conn_deadline(const struct cl_redis *r, const struct cl_conn *c)
{
    if (!c || !c->ac || c->closing)
        return UINT64_MAX;
    const struct cl_store_conf *cf = &r->s->conf;
    if (c->kind == CONN_SUB)
        return c->subscribed ? UINT64_MAX : c->started + cf->connect_timeout_ms;
    if (c->pending == 0)
        return UINT64_MAX;
    bool connected = c->ac->c.flags & REDIS_CONNECTED;
    return c->last_progress + (connected ? cf->command_timeout_ms : cf->connect_timeout_ms);
}

uint64_t cl_redis_next(const struct cl_redis *r)
{
    uint64_t next = UINT64_MAX;
    if (r->state == LINK_IDLE)
        next = r->retry_at;
    uint64_t d = conn_deadline(r, r->data);
    next = d < next ? d : next;
    d = conn_deadline(r, r->query);
    next = d < next ? d : next;
    d = conn_deadline(r, r->sub);
    next = d < next ? d : next;
    if (sentinel_mode(r) && !r->sub && r->sub_retry_at < next)
        next = r->sub_retry_at;
    return next;
}

void cl_redis_timers(struct cl_redis *r, uint64_t now)
{
    if (r->data && now >= conn_deadline(r, r->data))
        link_failed(r, "no reply from the primary in time");
    if (r->query && now >= conn_deadline(r, r->query)) {
        struct cl_conn *q = r->query;
        r->query = NULL;
        conn_close(q);
        if (r->state == LINK_DISCOVER)
            discover_next(r);
    }
    if (r->sub && now >= conn_deadline(r, r->sub)) {
        struct cl_conn *c = r->sub;
        r->sub = NULL;
        r->sub_next = (c->sentinel + 1) % r->s->conf.n_sentinels;
        r->sub_retry_at = now + r->s->conf.retry_max_ms;
        conn_close(c);
    }
    if (r->state == LINK_IDLE && now >= r->retry_at)
        link_start(r);
    if (sentinel_mode(r) && !r->sub && now >= r->sub_retry_at)
        sub_start(r);
}

/* ---- lifetime
 * ------------------------------------------------------------------------------------ */

struct cl_redis *cl_redis_create(struct cl_store *s, char *err, size_t errlen)
{
    struct cl_redis *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "cluster: out of memory");
        return NULL;
    }
    r->s = s;
    r->backoff = s->conf.retry_min_ms;
    r->state = LINK_IDLE;
    r->retry_at = 0; /* connect on the first run */
    s->redis = r;
    link_start(r); /* never waits: the connection completes in cl_store_run() */
    if (sentinel_mode(r))
        sub_start(r);
    return r;
}

void cl_redis_free(struct cl_redis *r)
{
    if (!r)
        return;
    struct cl_conn *c[3] = {r->data, r->query, r->sub};
    r->data = r->query = r->sub = NULL;
    for (size_t i = 0; i < 3; i++)
        conn_close(c[i]);
    cl_redis_reap(r);
    while (r->held_head) {
        struct cl_op *op = r->held_head;
        r->held_head = op->next;
        cl_op_free(op);
    }
    free(r);
}

void cl_redis_status(const struct cl_redis *r, struct cl_store_status *st)
{
    st->connected = r->state == LINK_READY;
    snprintf(st->primary, sizeof st->primary, "%s", r->primary);
    st->reconnects = r->reconnects;
    st->failovers = r->failovers;
}
