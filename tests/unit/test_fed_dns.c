/* Federation DNS: SRV ordering (both modes, with a scripted random source), the cache
 * (TTL, negative answers per SOA, with a fake clock), coalescing, cancel, the event
 * loop API, down-marking isolation and fed_dns_locate() in both modes. Queries go to
 * a small DNS server on 127.0.0.1 run by the test in a thread, which serves a zone
 * table and counts the queries it sees. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "fed_dns.h"

/* ---- a scripted random source and a fake clock --------------------------------------- */

struct script {
    const uint32_t *v;
    size_t n, i;
};

static uint32_t scripted(void *arg)
{
    struct script *s = arg;
    uint32_t v = s->v[s->i % s->n];
    s->i++;
    return v;
}

static uint64_t g_now = 1000000;

static uint64_t fake_clock(void *arg)
{
    (void)arg;
    return g_now;
}

/* ---- the test DNS server ------------------------------------------------------------ */

struct zrec {
    const char *name;
    uint16_t type;
    uint32_t ttl;
    uint16_t a, b, c;            /* SRV priority, weight, port / NAPTR order, preference */
    const char *data;            /* SRV target, A/AAAA address, NAPTR replacement */
    const char *flags, *service; /* NAPTR */
};

#define LOG_MAX 512

struct fake_dns {
    int fd;
    uint16_t port;
    pthread_t th;
    atomic_bool stop;
    const struct zrec *zone;
    size_t nzone;
    bool soa;
    uint32_t soa_ttl, soa_min;
    const char *drop_suffix; /* names never answered */
    pthread_mutex_t mu;
    size_t nlog;
    struct {
        char name[256];
        uint16_t type;
    } log[LOG_MAX];
};

static size_t put_name(uint8_t *b, size_t pos, size_t max, const char *name)
{
    const char *p = name;
    while (*p && strcmp(p, ".") != 0) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (pos + 1 + l >= max)
            return max;
        b[pos++] = (uint8_t)l;
        memcpy(b + pos, p, l);
        pos += l;
        p += l + (dot ? 1 : 0);
    }
    if (pos >= max)
        return max;
    b[pos++] = 0;
    return pos;
}

static void put16(uint8_t *b, size_t pos, uint16_t v)
{
    b[pos] = (uint8_t)(v >> 8);
    b[pos + 1] = (uint8_t)v;
}

static void put32(uint8_t *b, size_t pos, uint32_t v)
{
    put16(b, pos, (uint16_t)(v >> 16));
    put16(b, pos + 2, (uint16_t)v);
}

static size_t put_charstr(uint8_t *b, size_t pos, const char *s)
{
    size_t l = strlen(s);
    b[pos++] = (uint8_t)l;
    memcpy(b + pos, s, l);
    return pos + l;
}

/* Parses the question of query q; returns the offset after it, 0 when malformed. */
static size_t read_question(const uint8_t *q, size_t qlen, char *name, uint16_t *type)
{
    size_t pos = 12, n = 0;
    if (qlen < 17)
        return 0;
    while (pos < qlen && q[pos] != 0) {
        size_t l = q[pos++];
        if (pos + l > qlen || n + l + 2 > 256)
            return 0;
        if (n > 0)
            name[n++] = '.';
        for (size_t i = 0; i < l; i++)
            name[n++] =
                (char)((q[pos + i] >= 'A' && q[pos + i] <= 'Z') ? q[pos + i] + 32 : q[pos + i]);
        pos += l;
    }
    name[n] = '\0';
    if (pos + 5 > qlen)
        return 0;
    *type = (uint16_t)((q[pos + 1] << 8) | q[pos + 2]);
    return pos + 5;
}

static size_t build_response(const struct fake_dns *f, const uint8_t *q, size_t qlen, uint8_t *out,
                             size_t max)
{
    char qname[256];
    uint16_t qtype;
    size_t qend = read_question(q, qlen, qname, &qtype);
    if (qend == 0 || qend > max)
        return 0;
    memcpy(out, q, qend);
    out[2] = (uint8_t)(0x84 | (q[2] & 0x01)); /* QR, AA, RD copied */
    out[3] = 0x80;                            /* RA */
    put16(out, 4, 1);
    put16(out, 8, 0);
    put16(out, 10, 0);
    size_t pos = qend;
    uint16_t an = 0;
    bool name_exists = false;
    for (size_t i = 0; i < f->nzone; i++) {
        const struct zrec *r = &f->zone[i];
        if (strcasecmp(r->name, qname) != 0)
            continue;
        name_exists = true;
        if (r->type != qtype)
            continue;
        if (pos + 300 > max)
            break;
        put16(out, pos, 0xC00C);
        put16(out, pos + 2, r->type);
        put16(out, pos + 4, 1);
        put32(out, pos + 6, r->ttl);
        size_t rd = pos + 12, end = rd;
        if (r->type == 1) {
            inet_pton(AF_INET, r->data, out + rd);
            end = rd + 4;
        } else if (r->type == 28) {
            inet_pton(AF_INET6, r->data, out + rd);
            end = rd + 16;
        } else if (r->type == 33) {
            put16(out, rd, r->a);
            put16(out, rd + 2, r->b);
            put16(out, rd + 4, r->c);
            end = put_name(out, rd + 6, max, r->data);
        } else if (r->type == 35) {
            put16(out, rd, r->a);
            put16(out, rd + 2, r->b);
            end = put_charstr(out, rd + 4, r->flags);
            end = put_charstr(out, end, r->service);
            end = put_charstr(out, end, "");
            end = put_name(out, end, max, r->data);
        }
        put16(out, pos + 10, (uint16_t)(end - rd));
        pos = end;
        an++;
    }
    put16(out, 6, an);
    if (an == 0) {
        if (!name_exists)
            out[3] |= 3; /* NXDOMAIN */
        if (f->soa) {
            pos = put_name(out, pos, max, "test");
            put16(out, pos, 6);
            put16(out, pos + 2, 1);
            put32(out, pos + 4, f->soa_ttl);
            size_t rd = pos + 10;
            size_t end = put_name(out, rd, max, "ns.test");
            end = put_name(out, end, max, "hostmaster.test");
            put32(out, end, 1);
            put32(out, end + 4, 3600);
            put32(out, end + 8, 600);
            put32(out, end + 12, 86400);
            put32(out, end + 16, f->soa_min);
            end += 20;
            put16(out, pos + 8, (uint16_t)(end - rd));
            pos = end;
            put16(out, 8, 1);
        }
    }
    return pos;
}

static void *serve(void *arg)
{
    struct fake_dns *f = arg;
    uint8_t q[512], r[4096];
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        if (poll(&p, 1, 20) <= 0)
            continue;
        struct sockaddr_storage from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(f->fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
        if (n <= 0)
            continue;
        char name[256];
        uint16_t type;
        if (read_question(q, (size_t)n, name, &type) == 0)
            continue;
        pthread_mutex_lock(&f->mu);
        if (f->nlog < LOG_MAX) {
            snprintf(f->log[f->nlog].name, sizeof f->log[f->nlog].name, "%s", name);
            f->log[f->nlog].type = type;
            f->nlog++;
        }
        size_t len = build_response(f, q, (size_t)n, r, sizeof r);
        const char *drop = f->drop_suffix;
        pthread_mutex_unlock(&f->mu);
        size_t nl = strlen(name), dl = drop ? strlen(drop) : 0;
        if (drop != NULL && nl >= dl && strcmp(name + nl - dl, drop) == 0)
            continue;
        if (len > 0)
            sendto(f->fd, r, len, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static void fake_start(struct fake_dns *f, const struct zrec *zone, size_t n)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->zone = zone;
    f->nzone = n;
    f->fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    getsockname(f->fd, (struct sockaddr *)&a, &alen);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, serve, f), 0);
}

static void fake_stop(struct fake_dns *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->fd);
    pthread_mutex_destroy(&f->mu);
}

static void fake_set_soa(struct fake_dns *f, bool on, uint32_t ttl, uint32_t min)
{
    pthread_mutex_lock(&f->mu);
    f->soa = on;
    f->soa_ttl = ttl;
    f->soa_min = min;
    pthread_mutex_unlock(&f->mu);
}

static void fake_set_drop(struct fake_dns *f, const char *suffix)
{
    pthread_mutex_lock(&f->mu);
    f->drop_suffix = suffix;
    pthread_mutex_unlock(&f->mu);
}

static size_t fake_total(struct fake_dns *f)
{
    pthread_mutex_lock(&f->mu);
    size_t n = f->nlog;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static size_t fake_count(struct fake_dns *f, const char *name, uint16_t type)
{
    size_t n = 0;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->nlog; i++) {
        if (strcmp(f->log[i].name, name) == 0 && f->log[i].type == type)
            n++;
    }
    pthread_mutex_unlock(&f->mu);
    return n;
}

static fed_dns_t *resolver(struct fake_dns *f, struct fed_dns_conf *c)
{
    char server[64], err[256];
    struct fed_dns_conf def = {0};
    if (c == NULL)
        c = &def;
    snprintf(server, sizeof server, "127.0.0.1:%u", f->port);
    c->server = server;
    if (c->timeout_ms == 0)
        c->timeout_ms = 1000;
    if (c->tries == 0)
        c->tries = 1;
    if (c->clock == NULL)
        c->clock = fake_clock;
    fed_dns_t *dns = fed_dns_new(c, err, sizeof err);
    if (dns == NULL)
        fail_msg("fed_dns_new: %s", err);
    return dns;
}

static const struct fed_dns_answer *query(fed_dns_t *dns, const char *name, fed_dns_type_t t)
{
    const struct fed_dns_answer *a = NULL;
    fed_dns_query_sync(dns, name, t, 5000, &a);
    assert_non_null(a);
    return a;
}

/* ---- SRV ordering ------------------------------------------------------------------ */

static const struct fed_dns_srv SRVS[] = {
    {.priority = 20, .weight = 0, .port = 5061, .target = "backup.example.com"},
    {.priority = 10, .weight = 10, .port = 5061, .target = "a.example.com"},
    {.priority = 10, .weight = 90, .port = 5061, .target = "b.example.com"},
    {.priority = 10, .weight = 0, .port = 5061, .target = "z.example.com"},
};

static void rfc2782_lists_every_record_lowest_priority_first(void **state)
{
    (void)state;
    const uint32_t v[] = {0};
    struct script s = {v, 1, 0};
    size_t order[8];
    size_t n = fed_srv_order(SRVS, 4, FED_SRV_RFC2782, scripted, &s, order, 8);
    assert_int_equal(n, 4);
    assert_int_equal(SRVS[order[0]].priority, 10);
    assert_int_equal(SRVS[order[1]].priority, 10);
    assert_int_equal(SRVS[order[2]].priority, 10);
    assert_int_equal(order[3], 0);
    /* bounded by max */
    assert_int_equal(fed_srv_order(SRVS, 4, FED_SRV_RFC2782, scripted, &s, order, 2), 2);
}

static void rfc2782_picks_by_running_weight_sum(void **state)
{
    (void)state;
    size_t order[4];
    /* priority 10: zero weight first (z:0, a:10, b:90), sum 100.
     * r = 5 -> running sums 0, 10 -> a; then (z:0, b:90) sum 90: r = 50 -> b; then z */
    const uint32_t v1[] = {5, 50, 0, 0};
    struct script s1 = {v1, 4, 0};
    assert_int_equal(fed_srv_order(SRVS, 4, FED_SRV_RFC2782, scripted, &s1, order, 4), 4);
    assert_string_equal(SRVS[order[0]].target, "a.example.com");
    assert_string_equal(SRVS[order[1]].target, "b.example.com");
    assert_string_equal(SRVS[order[2]].target, "z.example.com");
    /* r = 11 -> b first; r = 0 -> z (zero weight, running sum 0 >= 0) before a */
    const uint32_t v2[] = {11, 0, 0, 0};
    struct script s2 = {v2, 4, 0};
    fed_srv_order(SRVS, 4, FED_SRV_RFC2782, scripted, &s2, order, 4);
    assert_string_equal(SRVS[order[0]].target, "b.example.com");
    assert_string_equal(SRVS[order[1]].target, "z.example.com");
    assert_string_equal(SRVS[order[2]].target, "a.example.com");
}

static void rfc2782_weights_shape_the_first_choice_over_many_draws(void **state)
{
    (void)state;
    /* every r in 0..100 once: a (weight 10) wins for r in 1..10, b for 11..100 */
    uint32_t v[101];
    for (uint32_t i = 0; i <= 100; i++)
        v[i] = i;
    size_t first_a = 0, first_b = 0;
    for (size_t i = 0; i <= 100; i++) {
        struct script s = {&v[i], 1, 0};
        size_t order[4];
        fed_srv_order(SRVS, 4, FED_SRV_RFC2782, scripted, &s, order, 1);
        first_a += strcmp(SRVS[order[0]].target, "a.example.com") == 0;
        first_b += strcmp(SRVS[order[0]].target, "b.example.com") == 0;
    }
    assert_int_equal(first_a, 10);
    assert_int_equal(first_b, 90);
}

static void microsoft_mode_takes_lowest_priority_highest_weight_only(void **state)
{
    (void)state;
    const uint32_t v[] = {7};
    struct script s = {v, 1, 0};
    size_t order[4];
    assert_int_equal(fed_srv_order(SRVS, 4, FED_SRV_MICROSOFT, scripted, &s, order, 4), 1);
    assert_string_equal(SRVS[order[0]].target, "b.example.com");
}

static void microsoft_mode_breaks_ties_with_the_random_source(void **state)
{
    (void)state;
    const struct fed_dns_srv tie[] = {
        {.priority = 1, .weight = 50, .port = 5061, .target = "n1.example.com"},
        {.priority = 1, .weight = 50, .port = 5061, .target = "n2.example.com"},
        {.priority = 1, .weight = 10, .port = 5061, .target = "n3.example.com"},
    };
    size_t order[2];
    const uint32_t v0[] = {0}, v1[] = {1};
    struct script s0 = {v0, 1, 0}, s1 = {v1, 1, 0};
    fed_srv_order(tie, 3, FED_SRV_MICROSOFT, scripted, &s0, order, 2);
    assert_string_equal(tie[order[0]].target, "n1.example.com");
    fed_srv_order(tie, 3, FED_SRV_MICROSOFT, scripted, &s1, order, 2);
    assert_string_equal(tie[order[0]].target, "n2.example.com");
}

static void records_without_a_target_are_never_listed(void **state)
{
    (void)state;
    const struct fed_dns_srv none[] = {{.priority = 0, .weight = 0, .port = 0, .target = ""}};
    size_t order[2];
    assert_int_equal(fed_srv_order(none, 1, FED_SRV_RFC2782, NULL, NULL, order, 2), 0);
    assert_int_equal(fed_srv_order(none, 1, FED_SRV_MICROSOFT, NULL, NULL, order, 2), 0);
}

/* ---- queries and the cache ------------------------------------------------------------ */

static const struct zrec ZONE[] = {
    {"_sipfederationtls._tcp.example.test", 33, 300, 1, 100, 5061, "sip.example.test", 0, 0},
    {"sip.example.test", 1, 60, 0, 0, 0, "127.0.0.2", 0, 0},
    {"sip.example.test", 1, 120, 0, 0, 0, "127.0.0.3", 0, 0},
    {"v6.example.test", 28, 60, 0, 0, 0, "::1", 0, 0},
    {"zero.example.test", 1, 0, 0, 0, 0, "127.0.0.9", 0, 0},
    {"slow.drop.test", 1, 60, 0, 0, 0, "127.0.0.9", 0, 0},
};

static void answers_come_from_the_cache_until_the_ttl_expires(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fed_dns_t *dns = resolver(&f, NULL);

    const struct fed_dns_answer *a = query(dns, "SIP.example.test.", FED_DNS_T_A);
    assert_int_equal(a->status, FED_DNS_OK);
    assert_int_equal(a->n, 2);
    assert_string_equal(a->name, "sip.example.test");
    assert_string_equal(a->addr[0].text, "127.0.0.2");
    assert_int_equal(a->ttl, 60); /* the smallest record TTL */
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "sip.example.test", 1), 1);

    g_now += 59 * 1000;
    a = query(dns, "sip.example.test", FED_DNS_T_A);
    assert_int_equal(a->n, 2);
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "sip.example.test", 1), 1);

    g_now += 2 * 1000;
    a = query(dns, "sip.example.test", FED_DNS_T_A);
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "sip.example.test", 1), 2);

    /* a TTL of 0 is delivered but never cached */
    a = query(dns, "zero.example.test", FED_DNS_T_A);
    assert_int_equal(a->status, FED_DNS_OK);
    fed_dns_answer_unref(a);
    a = query(dns, "zero.example.test", FED_DNS_T_A);
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "zero.example.test", 1), 2);

    /* AAAA is cached apart from A */
    a = query(dns, "v6.example.test", FED_DNS_T_AAAA);
    assert_int_equal(a->n, 1);
    assert_string_equal(a->addr[0].text, "::1");
    fed_dns_answer_unref(a);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void positive_ttls_are_capped(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    struct fed_dns_conf c = {.ttl_max = 10};
    fed_dns_t *dns = resolver(&f, &c);
    const struct fed_dns_answer *a =
        query(dns, "_sipfederationtls._tcp.example.test", FED_DNS_T_SRV);
    assert_int_equal(a->ttl, 10);
    assert_int_equal(a->n, 1);
    assert_string_equal(a->srv[0].target, "sip.example.test");
    assert_int_equal(a->srv[0].port, 5061);
    fed_dns_answer_unref(a);
    g_now += 11 * 1000;
    assert_null(fed_dns_cache_get(dns, "_sipfederationtls._tcp.example.test", FED_DNS_T_SRV));
    fed_dns_free(dns);
    fake_stop(&f);
}

static void negative_answers_are_cached_for_the_soa_minimum(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fake_set_soa(&f, true, 3600, 45);
    fed_dns_t *dns = resolver(&f, NULL);

    const struct fed_dns_answer *a = query(dns, "nope.example.test", FED_DNS_T_SRV);
    assert_int_equal(a->status, FED_DNS_NXDOMAIN);
    assert_int_equal(a->ttl, 45);
    fed_dns_answer_unref(a);
    a = query(dns, "sip.example.test", FED_DNS_T_AAAA);
    assert_int_equal(a->status, FED_DNS_NODATA);
    assert_int_equal(a->ttl, 45);
    fed_dns_answer_unref(a);

    g_now += 44 * 1000;
    a = query(dns, "nope.example.test", FED_DNS_T_SRV);
    assert_int_equal(a->status, FED_DNS_NXDOMAIN);
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "nope.example.test", 33), 1);
    g_now += 2 * 1000;
    a = query(dns, "nope.example.test", FED_DNS_T_SRV);
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "nope.example.test", 33), 2);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void negative_ttls_are_bounded_and_default_without_soa(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fake_set_soa(&f, true, 86400, 86400);
    struct fed_dns_conf c = {.neg_ttl_max = 120, .neg_ttl_default = 7};
    fed_dns_t *dns = resolver(&f, &c);
    const struct fed_dns_answer *a = query(dns, "nope.example.test", FED_DNS_T_A);
    assert_int_equal(a->status, FED_DNS_NXDOMAIN);
    assert_int_equal(a->ttl, 120);
    fed_dns_answer_unref(a);

    fake_set_soa(&f, false, 0, 0);
    a = query(dns, "other.example.test", FED_DNS_T_A);
    assert_int_equal(a->status, FED_DNS_NXDOMAIN);
    assert_int_equal(a->ttl, 7);
    fed_dns_answer_unref(a);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void timeouts_are_reported_and_never_cached(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fake_set_drop(&f, ".drop.test");
    struct fed_dns_conf c = {.timeout_ms = 150, .tries = 1};
    fed_dns_t *dns = resolver(&f, &c);
    const struct fed_dns_answer *a = query(dns, "slow.drop.test", FED_DNS_T_A);
    assert_int_equal(a->status, FED_DNS_ERR_TIMEOUT);
    fed_dns_answer_unref(a);
    assert_int_equal(fed_dns_cache_count(dns), 0);
    a = query(dns, "slow.drop.test", FED_DNS_T_A);
    assert_int_equal(a->status, FED_DNS_ERR_TIMEOUT);
    fed_dns_answer_unref(a);
    assert_int_equal(fake_count(&f, "slow.drop.test", 1), 2);
    fed_dns_free(dns);
    fake_stop(&f);
}

struct calls {
    int n;
    fed_dns_status_t last;
    bool cached;
    size_t nrec;
};

static void count_cb(void *arg, const struct fed_dns_answer *ans, bool cached)
{
    struct calls *c = arg;
    c->n++;
    c->last = ans->status;
    c->cached = cached;
    c->nrec = ans->n;
}

static void identical_queries_in_flight_share_one_network_query(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    struct calls c1 = {0}, c2 = {0}, c3 = {0};
    uint64_t id1 = fed_dns_query(dns, "sip.example.test", FED_DNS_T_A, count_cb, &c1);
    uint64_t id2 = fed_dns_query(dns, "sip.example.test.", FED_DNS_T_A, count_cb, &c2);
    assert_true(id1 != 0 && id2 != 0 && id1 != id2);
    assert_int_equal(fed_dns_pending(dns), 1);
    assert_int_equal(fed_dns_run(dns, 5000), FED_DNS_OK);
    assert_int_equal(c1.n, 1);
    assert_int_equal(c2.n, 1);
    assert_int_equal(c2.nrec, 2);
    assert_int_equal(fake_count(&f, "sip.example.test", 1), 1);
    /* now cached: answered before fed_dns_query returns, id 0 */
    assert_int_equal(fed_dns_query(dns, "sip.example.test", FED_DNS_T_A, count_cb, &c3), 0);
    assert_int_equal(c3.n, 1);
    assert_true(c3.cached);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void a_cancelled_query_never_calls_back(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    struct calls c1 = {0}, c2 = {0};
    uint64_t id1 = fed_dns_query(dns, "sip.example.test", FED_DNS_T_A, count_cb, &c1);
    fed_dns_query(dns, "sip.example.test", FED_DNS_T_A, count_cb, &c2);
    fed_dns_cancel(dns, id1);
    fed_dns_cancel(dns, 987654); /* unknown: ignored */
    assert_int_equal(fed_dns_run(dns, 5000), FED_DNS_OK);
    assert_int_equal(c1.n, 0);
    assert_int_equal(c2.n, 1);
    /* the answer still reached the cache */
    const struct fed_dns_answer *a = fed_dns_cache_get(dns, "sip.example.test", FED_DNS_T_A);
    assert_non_null(a);
    fed_dns_answer_unref(a);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void freeing_the_resolver_completes_pending_queries_as_cancelled(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fake_set_drop(&f, ".drop.test");
    fed_dns_t *dns = resolver(&f, NULL);
    struct calls c = {0};
    assert_true(fed_dns_query(dns, "slow.drop.test", FED_DNS_T_A, count_cb, &c) != 0);
    fed_dns_free(dns);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last, FED_DNS_ERR_CANCELLED);
    fake_stop(&f);
}

static void invalid_names_fail_before_the_query_returns(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    struct calls c = {0};
    assert_int_equal(fed_dns_query(dns, "bad..name.test", FED_DNS_T_A, count_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.last, FED_DNS_ERR_BADNAME);
    assert_int_equal(fed_dns_query(dns, "x.test", (fed_dns_type_t)99, count_cb, &c), 0);
    assert_int_equal(c.last, FED_DNS_ERR_ARG);
    fed_dns_free(dns);
    fake_stop(&f);
}

/* The loop a caller writes: sockets announced by sock_cb, polled by the caller. */
struct watch {
    struct pollfd fds[8];
    size_t n;
    int announced;
};

static void on_sock(void *arg, int fd, bool r, bool w)
{
    struct watch *wt = arg;
    wt->announced++;
    for (size_t i = 0; i < wt->n; i++) {
        if (wt->fds[i].fd == fd) {
            if (!r && !w) {
                wt->fds[i] = wt->fds[--wt->n];
                return;
            }
            wt->fds[i].events = (short)((r ? POLLIN : 0) | (w ? POLLOUT : 0));
            return;
        }
    }
    if ((r || w) && wt->n < 8) {
        wt->fds[wt->n].fd = fd;
        wt->fds[wt->n].events = (short)((r ? POLLIN : 0) | (w ? POLLOUT : 0));
        wt->n++;
    }
}

static void an_external_loop_drives_queries_through_the_socket_callback(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    struct watch wt = {.n = 0};
    struct fed_dns_conf c = {.sock_cb = on_sock, .sock_arg = &wt};
    fed_dns_t *dns = resolver(&f, &c);
    struct calls r = {0};
    fed_dns_query(dns, "_sipfederationtls._tcp.example.test", FED_DNS_T_SRV, count_cb, &r);
    assert_int_equal(wt.n, 1);
    assert_int_equal(fed_dns_timeout_ms(dns, 10000) > 0, 1);
    for (int round = 0; round < 100 && r.n == 0; round++) {
        for (size_t i = 0; i < wt.n; i++)
            wt.fds[i].revents = 0;
        int ready = poll(wt.fds, (nfds_t)wt.n, fed_dns_timeout_ms(dns, 100));
        if (ready <= 0) {
            fed_dns_process(dns, FED_DNS_NO_FD, FED_DNS_NO_FD);
            continue;
        }
        for (size_t i = 0; i < wt.n; i++) {
            if (wt.fds[i].revents & POLLIN)
                fed_dns_process(dns, wt.fds[i].fd, FED_DNS_NO_FD);
        }
    }
    assert_int_equal(r.n, 1);
    assert_int_equal(r.last, FED_DNS_OK);
    assert_int_equal(fed_dns_pending(dns), 0);
    assert_int_equal(fed_dns_timeout_ms(dns, -1), -1);
    fed_dns_free(dns);
    assert_true(wt.announced >= 1);
    fake_stop(&f);
}

/* ---- down marking --------------------------------------------------------------------- */

static void marking_one_target_down_leaves_every_other_key_alone(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    fed_dns_mark_down(dns, "Edge1.Example.test.", 5061, FED_TP_TLS, 30);
    assert_true(fed_dns_is_down(dns, "edge1.example.test", 5061, FED_TP_TLS));
    assert_false(fed_dns_is_down(dns, "edge2.example.test", 5061, FED_TP_TLS));
    assert_false(fed_dns_is_down(dns, "edge1.example.test", 5062, FED_TP_TLS));
    assert_false(fed_dns_is_down(dns, "edge1.example.test", 5061, FED_TP_TCP));
    assert_false(fed_dns_is_down(dns, "example.test", 5061, FED_TP_TLS));
    fed_dns_mark_down(dns, "127.0.0.2", 5061, FED_TP_TLS, 30);
    assert_true(fed_dns_is_down(dns, "127.0.0.2", 5061, FED_TP_TLS));
    assert_false(fed_dns_is_down(dns, "127.0.0.3", 5061, FED_TP_TLS));
    fed_dns_mark_up(dns, "edge1.example.test", 5061, FED_TP_TLS);
    assert_false(fed_dns_is_down(dns, "edge1.example.test", 5061, FED_TP_TLS));
    assert_true(fed_dns_is_down(dns, "127.0.0.2", 5061, FED_TP_TLS));
    assert_int_equal(fed_dns_cache_count(dns), 0);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void a_down_mark_expires_and_its_period_is_bounded(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    fed_dns_mark_down(dns, "edge1.example.test", 5061, FED_TP_TLS, 30);
    fed_dns_mark_down(dns, "edge2.example.test", 5061, FED_TP_TLS, 1000000);
    g_now += 29 * 1000;
    assert_true(fed_dns_is_down(dns, "edge1.example.test", 5061, FED_TP_TLS));
    g_now += 2 * 1000;
    assert_false(fed_dns_is_down(dns, "edge1.example.test", 5061, FED_TP_TLS));
    g_now += (FED_DNS_DOWN_MAX_S - 32) * 1000ull;
    assert_true(fed_dns_is_down(dns, "edge2.example.test", 5061, FED_TP_TLS));
    g_now += 2 * 1000;
    assert_false(fed_dns_is_down(dns, "edge2.example.test", 5061, FED_TP_TLS));
    fed_dns_free(dns);
    fake_stop(&f);
}

static void a_full_down_table_replaces_the_mark_closest_to_expiry(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, ZONE, sizeof ZONE / sizeof ZONE[0]);
    struct fed_dns_conf c = {.down_max = 2};
    fed_dns_t *dns = resolver(&f, &c);
    fed_dns_mark_down(dns, "a.example.test", 5061, FED_TP_TLS, 100);
    fed_dns_mark_down(dns, "b.example.test", 5061, FED_TP_TLS, 10);
    fed_dns_mark_down(dns, "c.example.test", 5061, FED_TP_TLS, 50);
    assert_true(fed_dns_is_down(dns, "a.example.test", 5061, FED_TP_TLS));
    assert_false(fed_dns_is_down(dns, "b.example.test", 5061, FED_TP_TLS));
    assert_true(fed_dns_is_down(dns, "c.example.test", 5061, FED_TP_TLS));
    fed_dns_free(dns);
    fake_stop(&f);
}

/* The Kamailio #4911 shape: two domains share one NAPTR/SRV target set. */
static const struct zrec SHARED[] = {
    {"_sipfederationtls._tcp.hub.test", 33, 300, 1, 25, 5061, "edge-1.hub.test", 0, 0},
    {"_sipfederationtls._tcp.hub.test", 33, 300, 1, 25, 5061, "edge-2.hub.test", 0, 0},
    {"hub.test", 35, 300, 20, 100, 0, "_sips._tcp.hub.test", "S", "SIPS+D2T"},
    {"cluster5.test", 35, 300, 20, 100, 0, "_sips._tcp.hub.test", "S", "SIPS+D2T"},
    {"_sips._tcp.hub.test", 33, 300, 1, 25, 5061, "edge-1.hub.test", 0, 0},
    {"_sips._tcp.hub.test", 33, 300, 1, 25, 5061, "edge-2.hub.test", 0, 0},
    {"edge-1.hub.test", 1, 300, 0, 0, 0, "127.0.0.11", 0, 0},
    {"edge-2.hub.test", 1, 300, 0, 0, 0, "127.0.0.12", 0, 0},
};

static void locate_sync(fed_dns_t *dns, const char *domain, const struct fed_locate_opts *o,
                        struct fed_location *loc)
{
    assert_int_equal(fed_dns_locate_sync(dns, domain, o, 5000, loc), FED_DNS_OK);
}

static bool has_dest(const struct fed_location *loc, const char *addr)
{
    for (size_t i = 0; i < loc->n_dests; i++) {
        if (strcmp(loc->dests[i].addr.text, addr) == 0)
            return true;
    }
    return false;
}

static void one_failed_target_leaves_the_others_reachable_for_every_domain(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, SHARED, sizeof SHARED / sizeof SHARED[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    static struct fed_location loc;
    struct fed_locate_opts rfc = {.kind = FED_LOCATE_RFC3263, .tls_only = true};

    locate_sync(dns, "hub.test", &rfc, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_int_equal(loc.n_dests, 2);
    size_t cached = fed_dns_cache_count(dns);

    /* a call to edge-1 fails: mark that target (and its address) down */
    fed_dns_mark_down(dns, "edge-1.hub.test", 5061, FED_TP_TLS, 60);
    fed_dns_mark_down(dns, "127.0.0.11", 5061, FED_TP_TLS, 60);

    for (int i = 0; i < 3; i++) {
        locate_sync(dns, i % 2 ? "cluster5.test" : "hub.test", &rfc, &loc);
        assert_int_equal(loc.status, FED_LOC_OK);
        assert_int_equal(loc.n_dests, 1);
        assert_string_equal(loc.dests[0].host, "edge-2.hub.test");
        assert_int_equal(loc.n_down_skipped, 1);
        assert_int_equal(loc.n_srv, 2); /* the cached records are untouched */
    }
    struct fed_locate_opts fedo = {.kind = FED_LOCATE_FEDERATION, .strict_naming = true};
    locate_sync(dns, "hub.test", &fedo, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_true(has_dest(&loc, "127.0.0.12"));
    assert_false(has_dest(&loc, "127.0.0.11"));

    /* cached SRV answer still lists both targets */
    const struct fed_dns_answer *a = fed_dns_cache_get(dns, "_sips._tcp.hub.test", FED_DNS_T_SRV);
    assert_non_null(a);
    assert_int_equal(a->n, 2);
    fed_dns_answer_unref(a);

    /* the mark expires on its own; both come back */
    g_now += 61 * 1000;
    locate_sync(dns, "cluster5.test", &rfc, &loc);
    assert_int_equal(loc.n_dests, 2);
    assert_true(fed_dns_cache_count(dns) >= cached);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void srv_select_skips_only_the_targets_marked_down(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, SHARED, sizeof SHARED / sizeof SHARED[0]);
    fed_dns_t *dns = resolver(&f, NULL);
    const struct fed_dns_answer *a = query(dns, "_sips._tcp.hub.test", FED_DNS_T_SRV);
    size_t order[4];
    assert_int_equal(fed_dns_srv_select(dns, a, FED_TP_TLS, FED_SRV_RFC2782, order, 4), 2);
    fed_dns_mark_down(dns, "edge-2.hub.test", 5061, FED_TP_TLS, 60);
    assert_int_equal(fed_dns_srv_select(dns, a, FED_TP_TLS, FED_SRV_RFC2782, order, 4), 1);
    assert_string_equal(a->srv[order[0]].target, "edge-1.hub.test");
    assert_int_equal(fed_dns_srv_select(dns, a, FED_TP_TLS, FED_SRV_MICROSOFT, order, 4), 1);
    assert_string_equal(a->srv[order[0]].target, "edge-1.hub.test");
    /* another transport is not affected */
    assert_int_equal(fed_dns_srv_select(dns, a, FED_TP_TCP, FED_SRV_RFC2782, order, 4), 2);
    fed_dns_answer_unref(a);
    fed_dns_free(dns);
    fake_stop(&f);
}

/* ---- locate ------------------------------------------------------------------------ */

static const struct zrec FEDZONE[] = {
    /* good.test: two nodes behind one name, plus a lower-priority backup */
    {"_sipfederationtls._tcp.good.test", 33, 300, 1, 100, 5061, "sip.good.test", 0, 0},
    {"_sipfederationtls._tcp.good.test", 33, 300, 2, 100, 5061, "backup.good.test", 0, 0},
    {"sip.good.test", 1, 300, 0, 0, 0, "127.0.1.1", 0, 0},
    {"sip.good.test", 1, 300, 0, 0, 0, "127.0.1.2", 0, 0},
    {"sip.good.test", 28, 300, 0, 0, 0, "::1", 0, 0},
    {"backup.good.test", 1, 300, 0, 0, 0, "127.0.1.3", 0, 0},
    /* sub.test: target in a subdomain; other.test: target elsewhere */
    {"_sipfederationtls._tcp.sub.test", 33, 300, 1, 100, 5061, "sip.x.sub.test", 0, 0},
    {"sip.x.sub.test", 1, 300, 0, 0, 0, "127.0.2.1", 0, 0},
    {"sip.sub.test", 1, 300, 0, 0, 0, "127.0.2.2", 0, 0},
    {"_sipfederationtls._tcp.other.test", 33, 300, 1, 100, 5061, "sip.else.test", 0, 0},
    {"sip.else.test", 1, 300, 0, 0, 0, "127.0.3.1", 0, 0},
    /* nosrv.test: only the host record */
    {"sip.nosrv.test", 1, 300, 0, 0, 0, "127.0.4.1", 0, 0},
    /* rfc.test: NAPTR for TCP (order 10) and TLS (order 20), TLS preferred */
    {"rfc.test", 35, 300, 10, 10, 0, "_sip._tcp.rfc.test", "s", "SIP+D2T"},
    {"rfc.test", 35, 300, 20, 10, 0, "_sips._tcp.rfc.test", "s", "SIPS+D2T"},
    {"rfc.test", 35, 300, 5, 10, 0, "x.rfc.test", "u", "E2U+sip"},
    {"_sips._tcp.rfc.test", 33, 300, 0, 0, 5063, "tls.rfc.test", 0, 0},
    {"_sip._tcp.rfc.test", 33, 300, 0, 0, 5060, "tcp.rfc.test", 0, 0},
    {"tls.rfc.test", 1, 300, 0, 0, 0, "127.0.5.1", 0, 0},
    {"tcp.rfc.test", 1, 300, 0, 0, 0, "127.0.5.2", 0, 0},
    /* plain.test: no NAPTR, only _sip._tcp */
    {"_sip._tcp.plain.test", 33, 300, 0, 0, 5070, "tcp.plain.test", 0, 0},
    {"tcp.plain.test", 1, 300, 0, 0, 0, "127.0.6.1", 0, 0},
    /* bare.test: nothing but an address */
    {"bare.test", 1, 300, 0, 0, 0, "127.0.7.1", 0, 0},
};

#define FEDZONE_N (sizeof FEDZONE / sizeof FEDZONE[0])

static void federation_locate_lists_addresses_of_targets_in_srv_order(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, FEDZONE, FEDZONE_N);
    fed_dns_t *dns = resolver(&f, NULL);
    static struct fed_location loc;
    struct fed_locate_opts o = {.kind = FED_LOCATE_FEDERATION, .strict_naming = true};
    locate_sync(dns, "Good.Test.", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.domain, "good.test");
    assert_string_equal(loc.srv_name, "_sipfederationtls._tcp.good.test");
    assert_int_equal(loc.n_srv, 2);
    assert_int_equal(loc.n_dests, 4);
    assert_string_equal(loc.dests[0].host, "sip.good.test");
    assert_string_equal(loc.dests[0].addr.text, "127.0.1.1");
    assert_string_equal(loc.dests[1].addr.text, "127.0.1.2");
    assert_string_equal(loc.dests[2].addr.text, "::1");
    assert_string_equal(loc.dests[3].host, "backup.good.test");
    assert_int_equal(loc.dests[0].port, 5061);
    assert_int_equal(loc.dests[0].transport, FED_TP_TLS);
    assert_int_equal(loc.srv_ttl, 300); /* the SRV records' TTL, just fetched */

    /* from the cache, the SRV answer's lifetime is what is left of its TTL */
    g_now += 100 * 1000;
    locate_sync(dns, "good.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_int_equal(loc.srv_ttl, 200);

    o.srv_mode = FED_SRV_MICROSOFT;
    locate_sync(dns, "good.test", &o, &loc);
    assert_int_equal(loc.n_dests, 3);
    for (size_t i = 0; i < loc.n_dests; i++)
        assert_string_equal(loc.dests[i].host, "sip.good.test");

    /* one node of the round-robin name is down: the other addresses remain */
    fed_dns_mark_down(dns, "127.0.1.1", 5061, FED_TP_TLS, 60);
    locate_sync(dns, "good.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_int_equal(loc.n_dests, 2);
    assert_int_equal(loc.n_down_skipped, 1);
    assert_false(has_dest(&loc, "127.0.1.1"));
    assert_true(has_dest(&loc, "127.0.1.2"));
    fed_dns_mark_down(dns, "127.0.1.2", 5061, FED_TP_TLS, 60);
    fed_dns_mark_down(dns, "::1", 5061, FED_TP_TLS, 60);
    locate_sync(dns, "good.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_ALL_DOWN);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void federation_locate_refuses_targets_outside_the_domain(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, FEDZONE, FEDZONE_N);
    fed_dns_t *dns = resolver(&f, NULL);
    static struct fed_location loc;
    struct fed_locate_opts o = {.kind = FED_LOCATE_FEDERATION, .strict_naming = true};
    locate_sync(dns, "sub.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_STRICT_REFUSED);
    assert_int_equal(loc.n_refused, 1);
    assert_string_equal(loc.refused[0].target, "sip.x.sub.test");
    assert_int_equal(loc.refused[0].port, 5061);
    assert_int_equal(loc.refused[0].why, FED_STRICT_SUBDOMAIN);
    assert_int_equal(loc.n_dests, 0);
    assert_int_equal(fake_count(&f, "sip.x.sub.test", 1), 0);

    locate_sync(dns, "other.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_STRICT_REFUSED);
    assert_int_equal(loc.refused[0].why, FED_STRICT_OTHER);

    /* without strict naming the same target is used */
    o.strict_naming = false;
    locate_sync(dns, "sub.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.dests[0].addr.text, "127.0.2.1");
    fed_dns_free(dns);
    fake_stop(&f);
}

static void federation_locate_falls_back_to_the_sip_host_when_asked(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, FEDZONE, FEDZONE_N);
    fed_dns_t *dns = resolver(&f, NULL);
    static struct fed_location loc;
    struct fed_locate_opts o = {
        .kind = FED_LOCATE_FEDERATION, .strict_naming = true, .fallback = FED_FALLBACK_SIP};
    locate_sync(dns, "sub.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_true(loc.used_fallback);
    assert_int_equal(loc.n_refused, 1);
    assert_int_equal(loc.n_dests, 1);
    assert_string_equal(loc.dests[0].host, "sip.sub.test");
    assert_true(loc.dests[0].fallback);
    assert_int_equal(loc.dests[0].port, 5061);

    locate_sync(dns, "nosrv.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.dests[0].addr.text, "127.0.4.1");

    o.fallback = 0;
    locate_sync(dns, "nosrv.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_NO_SRV);
    o.fallback = FED_FALLBACK_SIP | FED_FALLBACK_INTERNAL_EXTERNAL;
    locate_sync(dns, "missing.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_NO_SRV);
    assert_int_equal(fake_count(&f, "sipexternal.missing.test", 1), 1);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void rfc3263_locate_prefers_tls_naptr_then_srv_then_addresses(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, FEDZONE, FEDZONE_N);
    fed_dns_t *dns = resolver(&f, NULL);
    static struct fed_location loc;
    struct fed_locate_opts o = {.kind = FED_LOCATE_RFC3263};
    locate_sync(dns, "rfc.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.srv_name, "_sips._tcp.rfc.test");
    assert_int_equal(loc.n_dests, 1);
    assert_string_equal(loc.dests[0].addr.text, "127.0.5.1");
    assert_int_equal(loc.dests[0].port, 5063);
    assert_int_equal(loc.dests[0].transport, FED_TP_TLS);

    locate_sync(dns, "plain.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.srv_name, "_sip._tcp.plain.test");
    assert_int_equal(loc.dests[0].transport, FED_TP_TCP);
    assert_int_equal(loc.dests[0].port, 5070);
    assert_int_equal(fake_count(&f, "_sips._tcp.plain.test", 33), 1);

    /* TLS only: _sips._tcp is absent, and plain.test itself has no address */
    o.tls_only = true;
    locate_sync(dns, "plain.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_NO_ADDRESS);
    assert_int_equal(loc.n_dests, 0);
    assert_int_equal(fake_count(&f, "plain.test", 1), 1);

    o.tls_only = false;
    locate_sync(dns, "bare.test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.dests[0].host, "bare.test");
    assert_int_equal(loc.dests[0].port, 5061);

    o.port = 5099;
    locate_sync(dns, "bare.test", &o, &loc);
    assert_int_equal(loc.dests[0].port, 5099);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void locate_needs_no_dns_for_an_address_and_refuses_bad_domains(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, FEDZONE, FEDZONE_N);
    fed_dns_t *dns = resolver(&f, NULL);
    static struct fed_location loc;
    struct fed_locate_opts o = {.kind = FED_LOCATE_FEDERATION};
    assert_int_equal(fed_dns_locate_sync(dns, "[::1]", &o, 1000, &loc), FED_DNS_OK);
    assert_int_equal(loc.status, FED_LOC_OK);
    assert_string_equal(loc.dests[0].addr.text, "::1");
    assert_int_equal(loc.dests[0].port, 5061);
    locate_sync(dns, "bad..test", &o, &loc);
    assert_int_equal(loc.status, FED_LOC_BAD_DOMAIN);
    assert_int_equal(fake_total(&f), 0);
    fed_dns_free(dns);
    fake_stop(&f);
}

static void on_loc(void *arg, const struct fed_location *loc)
{
    int *st = arg;
    *st = (int)loc->status;
}

static void cancelled_and_freed_locates_behave(void **state)
{
    (void)state;
    struct fake_dns f;
    fake_start(&f, FEDZONE, FEDZONE_N);
    fake_set_drop(&f, "slow.test");
    fed_dns_t *dns = resolver(&f, NULL);
    struct fed_locate_opts o = {.kind = FED_LOCATE_FEDERATION};
    int st1 = -1, st2 = -1;
    uint64_t id = fed_dns_locate(dns, "good.test", &o, on_loc, &st1);
    assert_true(id != 0);
    fed_dns_cancel(dns, id);
    assert_int_equal(fed_dns_run(dns, 5000), FED_DNS_OK);
    assert_int_equal(st1, -1);
    assert_true(fed_dns_locate(dns, "slow.test", &o, on_loc, &st2) != 0);
    fed_dns_free(dns);
    assert_int_equal(st2, FED_LOC_CANCELLED);
    fake_stop(&f);
}

/* ---- the message walker -------------------------------------------------------------- */

static size_t make_query(uint8_t *q, const char *name, uint16_t type)
{
    memset(q, 0, 12);
    q[0] = 0x12;
    q[1] = 0x34;
    q[2] = 0x01;
    put16(q, 4, 1);
    size_t pos = put_name(q, 12, 512, name);
    put16(q, pos, type);
    put16(q, pos + 2, 1);
    return pos + 4;
}

static void message_walker_reads_answer_and_soa_ttls(void **state)
{
    (void)state;
    struct fake_dns f = {.zone = ZONE, .nzone = sizeof ZONE / sizeof ZONE[0]};
    uint8_t q[512], r[4096];
    struct fed_dns_msg_ttl t;
    size_t n = build_response(&f, q, make_query(q, "sip.example.test", 1), r, sizeof r);
    assert_int_equal(fed_dns_msg_ttl(r, n, &t), 0);
    assert_true(t.have_answer);
    assert_int_equal(t.answer_ttl, 60);
    assert_false(t.have_soa);

    f.soa = true;
    f.soa_ttl = 20;
    f.soa_min = 900;
    n = build_response(&f, q, make_query(q, "none.example.test", 33), r, sizeof r);
    assert_int_equal(fed_dns_msg_ttl(r, n, &t), 0);
    assert_int_equal(t.rcode, 3);
    assert_false(t.have_answer);
    assert_true(t.have_soa);
    assert_int_equal(t.neg_ttl, 20); /* min(SOA TTL, MINIMUM) */
}

static void message_walker_refuses_truncations_and_pointer_loops(void **state)
{
    (void)state;
    struct fake_dns f = {.zone = ZONE, .nzone = sizeof ZONE / sizeof ZONE[0], .soa = true};
    uint8_t q[512], r[4096];
    struct fed_dns_msg_ttl t;
    size_t n = build_response(&f, q, make_query(q, "sip.example.test", 1), r, sizeof r);
    for (size_t k = 0; k < n; k++) {
        uint8_t *copy = malloc(k ? k : 1);
        memcpy(copy, r, k);
        if (fed_dns_msg_ttl(copy, k, &t) != -1)
            fail_msg("accepted a message truncated to %zu of %zu bytes", k, n);
        free(copy);
    }
    /* a question name made of an endless label chain */
    uint8_t bad[12 + 200];
    memset(bad, 0, sizeof bad);
    put16(bad, 4, 1);
    for (size_t i = 12; i + 2 < sizeof bad; i += 2) {
        bad[i] = 1;
        bad[i + 1] = 'a';
    }
    assert_int_equal(fed_dns_msg_ttl(bad, sizeof bad, &t), -1);
    /* a reserved label type */
    uint8_t resv[] = {0, 0, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1};
    assert_int_equal(fed_dns_msg_ttl(resv, sizeof resv, &t), -1);
}

static int reset_clock(void **state)
{
    (void)state;
    g_now = 1000000;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc2782_lists_every_record_lowest_priority_first),
        cmocka_unit_test(rfc2782_picks_by_running_weight_sum),
        cmocka_unit_test(rfc2782_weights_shape_the_first_choice_over_many_draws),
        cmocka_unit_test(microsoft_mode_takes_lowest_priority_highest_weight_only),
        cmocka_unit_test(microsoft_mode_breaks_ties_with_the_random_source),
        cmocka_unit_test(records_without_a_target_are_never_listed),
        cmocka_unit_test_setup(answers_come_from_the_cache_until_the_ttl_expires, reset_clock),
        cmocka_unit_test_setup(positive_ttls_are_capped, reset_clock),
        cmocka_unit_test_setup(negative_answers_are_cached_for_the_soa_minimum, reset_clock),
        cmocka_unit_test_setup(negative_ttls_are_bounded_and_default_without_soa, reset_clock),
        cmocka_unit_test_setup(timeouts_are_reported_and_never_cached, reset_clock),
        cmocka_unit_test_setup(identical_queries_in_flight_share_one_network_query, reset_clock),
        cmocka_unit_test_setup(a_cancelled_query_never_calls_back, reset_clock),
        cmocka_unit_test_setup(freeing_the_resolver_completes_pending_queries_as_cancelled,
                               reset_clock),
        cmocka_unit_test_setup(invalid_names_fail_before_the_query_returns, reset_clock),
        cmocka_unit_test_setup(an_external_loop_drives_queries_through_the_socket_callback,
                               reset_clock),
        cmocka_unit_test_setup(marking_one_target_down_leaves_every_other_key_alone, reset_clock),
        cmocka_unit_test_setup(a_down_mark_expires_and_its_period_is_bounded, reset_clock),
        cmocka_unit_test_setup(a_full_down_table_replaces_the_mark_closest_to_expiry, reset_clock),
        cmocka_unit_test_setup(one_failed_target_leaves_the_others_reachable_for_every_domain,
                               reset_clock),
        cmocka_unit_test_setup(srv_select_skips_only_the_targets_marked_down, reset_clock),
        cmocka_unit_test_setup(federation_locate_lists_addresses_of_targets_in_srv_order,
                               reset_clock),
        cmocka_unit_test_setup(federation_locate_refuses_targets_outside_the_domain, reset_clock),
        cmocka_unit_test_setup(federation_locate_falls_back_to_the_sip_host_when_asked,
                               reset_clock),
        cmocka_unit_test_setup(rfc3263_locate_prefers_tls_naptr_then_srv_then_addresses,
                               reset_clock),
        cmocka_unit_test_setup(locate_needs_no_dns_for_an_address_and_refuses_bad_domains,
                               reset_clock),
        cmocka_unit_test_setup(cancelled_and_freed_locates_behave, reset_clock),
        cmocka_unit_test(message_walker_reads_answer_and_soa_ttls),
        cmocka_unit_test(message_walker_refuses_truncations_and_pointer_loops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
