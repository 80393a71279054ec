/* confbench target resolution with c-ares (see cb_dns.h). */
#include "cb_dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CB_DNS_MAX_ADDRS 256
#define CB_DNS_MAX_SRV 32

void cb_addr_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", ip, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", ip, port);
    } else {
        snprintf(out, cap, "?");
    }
}

struct srv_rec {
    char host[256];
    unsigned short prio, weight, port;
};

struct query {
    bool done;
    int status;
    /* SRV */
    struct srv_rec srv[CB_DNS_MAX_SRV];
    unsigned nsrv;
    /* A/AAAA */
    cb_addr_t *addrs;
    unsigned naddrs;
    uint16_t port;
    const char *host;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the channel until q->done or the deadline. Returns 0 or -1 on timeout. */
static int run(ares_channel ch, struct query *q, uint64_t deadline)
{
    while (!q->done) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -1;
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        /* c-ares' ARES_GETSOCK_* macros shift a signed 1 into the sign bit. */
        unsigned bits = (unsigned)ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        struct pollfd pfd[ARES_GETSOCK_MAXNUM];
        int n = 0;
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
            short ev = 0;
            if (bits & (1u << i))
                ev |= POLLIN;
            if (bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
                ev |= POLLOUT;
            if (!ev)
                continue;
            pfd[n].fd = socks[i];
            pfd[n].events = ev;
            pfd[n].revents = 0;
            n++;
        }
        struct timeval maxtv = {0, 100000}, tv;
        struct timeval *t = ares_timeout(ch, &maxtv, &tv);
        int ms = (int)(t->tv_sec * 1000 + t->tv_usec / 1000);
        if ((uint64_t)ms > deadline - now)
            ms = (int)(deadline - now);
        int rc = poll(pfd, (nfds_t)n, ms);
        if (rc <= 0) {
            ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
            continue;
        }
        for (int i = 0; i < n; i++) {
            ares_socket_t r =
                (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) ? pfd[i].fd : ARES_SOCKET_BAD;
            ares_socket_t w = (pfd[i].revents & POLLOUT) ? pfd[i].fd : ARES_SOCKET_BAD;
            if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
                ares_process_fd(ch, r, w);
        }
    }
    return 0;
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct query *q = arg;
    q->done = true;
    q->status = status;
    if (status != ARES_SUCCESS)
        return;
    struct ares_srv_reply *reply = NULL;
    q->status = ares_parse_srv_reply(abuf, alen, &reply);
    if (q->status != ARES_SUCCESS)
        return;
    for (struct ares_srv_reply *r = reply; r && q->nsrv < CB_DNS_MAX_SRV; r = r->next) {
        struct srv_rec *s = &q->srv[q->nsrv];
        snprintf(s->host, sizeof(s->host), "%s", r->host);
        size_t hl = strlen(s->host);
        if (hl && s->host[hl - 1] == '.')
            s->host[hl - 1] = 0;
        s->prio = r->priority;
        s->weight = r->weight;
        s->port = r->port;
        if (s->host[0] && strcmp(s->host, ".") != 0)
            q->nsrv++;
    }
    ares_free_data(reply);
    if (q->nsrv == 0)
        q->status = ARES_ENODATA;
}

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    struct query *q = arg;
    q->done = true;
    q->status = status;
    if (status != ARES_SUCCESS || !res)
        goto out;
    for (struct ares_addrinfo_node *n = res->nodes; n; n = n->ai_next) {
        if (q->naddrs >= CB_DNS_MAX_ADDRS)
            break;
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
            continue;
        cb_addr_t *a = &q->addrs[q->naddrs];
        memset(a, 0, sizeof(*a));
        if (n->ai_addrlen > sizeof(a->sa))
            continue;
        memcpy(&a->sa, n->ai_addr, n->ai_addrlen);
        a->len = n->ai_addrlen;
        if (n->ai_family == AF_INET)
            ((struct sockaddr_in *)&a->sa)->sin_port = htons(q->port);
        else
            ((struct sockaddr_in6 *)&a->sa)->sin6_port = htons(q->port);
        cb_addr_format((struct sockaddr *)&a->sa, a->text, sizeof(a->text));
        strncpy(a->host, q->host, sizeof(a->host) - 1);
        /* The same address twice (two SRV targets on one node) stays once. */
        bool dup = false;
        for (unsigned i = 0; i < q->naddrs; i++)
            if (!strcmp(q->addrs[i].text, a->text))
                dup = true;
        if (!dup)
            q->naddrs++;
    }
out:
    if (res)
        ares_freeaddrinfo(res);
}

static int literal(const char *host, uint16_t port, cb_addr_t *a)
{
    memset(a, 0, sizeof(*a));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a->sa;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->sa;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        a->len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        a->len = sizeof(*s6);
    } else {
        return -1;
    }
    cb_addr_format((struct sockaddr *)&a->sa, a->text, sizeof(a->text));
    return 0;
}

static int cmp_srv(const void *a, const void *b)
{
    const struct srv_rec *x = a, *y = b;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return strcmp(x->host, y->host);
}

static const char *server_text(const cb_opts_t *o)
{
    return o->dns[0] ? o->dns : "the system resolver";
}

int cb_resolve(const cb_opts_t *o, unsigned timeout_ms, cb_addr_t **out, unsigned *n, char *err,
               size_t errlen)
{
    int ret = -1;
    ares_channel ch = NULL;
    bool lib = false;
    struct query *q = NULL;
    cb_addr_t *addrs = calloc(CB_DNS_MAX_ADDRS, sizeof(*addrs));
    *out = NULL;
    *n = 0;
    if (!addrs) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    const cb_target_spec_t *t = &o->target;
    if (t->port && literal(t->host, t->port, &addrs[0]) == 0) {
        *out = addrs;
        *n = 1;
        return 0;
    }
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: c-ares initialisation failed");
        goto out;
    }
    lib = true;
    struct ares_options ao;
    memset(&ao, 0, sizeof(ao));
    ao.timeout = 1000;
    ao.tries = 2;
    ao.lookups = o->dns[0] ? (char *)"b" : (char *)"fb";
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
    if (ares_init_options(&ch, &ao, mask) != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: cannot initialise the resolver (no /etc/resolv.conf?)");
        ch = NULL;
        goto out;
    }
    if (o->dns[0] && ares_set_servers_ports_csv(ch, o->dns) != ARES_SUCCESS) {
        snprintf(err, errlen, "DNS: bad server address %s", o->dns);
        goto out;
    }
    q = calloc(1, sizeof(*q));
    if (!q) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    uint64_t deadline = mono_ms() + timeout_ms;
    struct srv_rec single;
    struct srv_rec *srv = &single;
    unsigned nsrv = 1;
    char srvname[512] = "";
    if (t->port) {
        snprintf(single.host, sizeof(single.host), "%s", t->host);
        single.port = t->port;
    } else {
        snprintf(srvname, sizeof(srvname), "%s.%s", cb_srv_prefix(o), t->host);
        ares_query(ch, srvname, ns_c_in, ns_t_srv, srv_cb, q);
        if (run(ch, q, deadline)) {
            snprintf(err, errlen, "DNS: SRV %s: no answer from %s within %u ms", srvname,
                     server_text(o), timeout_ms);
            goto out;
        }
        if (q->status != ARES_SUCCESS) {
            snprintf(err, errlen, "DNS: SRV %s: %s (server %s)", srvname, ares_strerror(q->status),
                     server_text(o));
            goto out;
        }
        qsort(q->srv, q->nsrv, sizeof(q->srv[0]), cmp_srv);
        /* Federated edges use the lowest priority only. */
        nsrv = 1;
        while (nsrv < q->nsrv && q->srv[nsrv].prio == q->srv[0].prio)
            nsrv++;
        srv = q->srv;
    }
    unsigned total = 0;
    for (unsigned i = 0; i < nsrv; i++) {
        if (literal(srv[i].host, srv[i].port, &addrs[total]) == 0) {
            memcpy(addrs[total].host, srv[i].host, sizeof(addrs[total].host));
            total++;
            continue;
        }
        q->done = false;
        q->status = 0;
        q->addrs = addrs;
        q->naddrs = total;
        q->port = srv[i].port;
        q->host = srv[i].host;
        struct ares_addrinfo_hints hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_flags = ARES_AI_NOSORT;
        ares_getaddrinfo(ch, srv[i].host, NULL, &hints, addr_cb, q);
        int rc = run(ch, q, deadline);
        if (rc || q->status != ARES_SUCCESS) {
            char from[600] = "";
            if (srvname[0])
                snprintf(from, sizeof(from), " (target of SRV %s)", srvname);
            snprintf(err, errlen, "DNS: A/AAAA %s%s: %s (server %s)", srv[i].host, from,
                     rc ? "no answer in time" : ares_strerror(q->status), server_text(o));
            goto out;
        }
        total = q->naddrs;
    }
    if (total == 0) {
        snprintf(err, errlen, "DNS: %s%s has no address (server %s)", srvname[0] ? "SRV " : "",
                 srvname[0] ? srvname : t->host, server_text(o));
        goto out;
    }
    *out = addrs;
    *n = total;
    addrs = NULL;
    ret = 0;
out:
    free(q);
    free(addrs);
    if (ch)
        ares_destroy(ch);
    if (lib)
        ares_library_cleanup();
    return ret;
}
