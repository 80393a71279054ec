/* confbench command line (see cb_opts.h).
 *
 * A small table-driven parser instead of getopt_long: no global state, argv is
 * never permuted, and options may follow the target. Accepted forms: "--name
 * value", "--name=value", "-x value" for the short aliases, "--" ends options. */
#include "cb_opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum opt_id {
    O_SCENARIO,
    O_TRANSPORT,
    O_RATE,
    O_DURATION,
    O_COUNT,
    O_MAX_CALLS,
    O_HOLD,
    O_THREADS,
    O_CONNS,
    O_CONN_PER_CALL,
    O_BIND,
    O_DNS,
    O_SRV,
    O_USER,
    O_DOMAIN,
    O_FROM,
    O_CA,
    O_CERT,
    O_KEY,
    O_TLS_NAME,
    O_SNI,
    O_NO_VERIFY,
    O_MEDIA,
    O_SRTP,
    O_CONFERENCE,
    O_TONES,
    O_CODECS,
    O_TAMPER,
    O_EXPECT,
    O_TIMEOUT,
    O_T1,
    O_DRAIN,
    O_RAMP,
    O_STEP_TIME,
    O_MAX_STEPS,
    O_JSON,
    O_PLOT,
    O_BODY,
    O_VERBOSE,
    O_QUIET,
    O_HELP,
    O_VERSION,
};

struct opt_def {
    const char *name;
    char shortname;
    bool arg;
    enum opt_id id;
};

static const struct opt_def opt_table[] = {
    {"scenario", 's', true, O_SCENARIO},
    {"transport", 't', true, O_TRANSPORT},
    {"rate", 'r', true, O_RATE},
    {"duration", 'd', true, O_DURATION},
    {"count", 'n', true, O_COUNT},
    {"max-calls", 'm', true, O_MAX_CALLS},
    {"hold", 0, true, O_HOLD},
    {"threads", 'j', true, O_THREADS},
    {"conns", 'c', true, O_CONNS},
    {"conn-per-call", 0, false, O_CONN_PER_CALL},
    {"bind", 'b', true, O_BIND},
    {"dns", 0, true, O_DNS},
    {"srv", 0, true, O_SRV},
    {"user", 'u', true, O_USER},
    {"domain", 0, true, O_DOMAIN},
    {"from", 0, true, O_FROM},
    {"ca", 0, true, O_CA},
    {"cert", 0, true, O_CERT},
    {"key", 0, true, O_KEY},
    {"tls-name", 0, true, O_TLS_NAME},
    {"sni", 0, true, O_SNI},
    {"no-verify", 0, false, O_NO_VERIFY},
    {"media", 0, false, O_MEDIA},
    {"srtp", 0, false, O_SRTP},
    {"conference", 0, true, O_CONFERENCE},
    {"tones", 0, true, O_TONES},
    {"codec", 0, true, O_CODECS},
    {"codecs", 0, true, O_CODECS},
    {"tamper", 0, false, O_TAMPER},
    {"expect", 'e', true, O_EXPECT},
    {"timeout", 0, true, O_TIMEOUT},
    {"t1", 0, true, O_T1},
    {"drain", 0, true, O_DRAIN},
    {"ramp", 0, true, O_RAMP},
    {"step-time", 0, true, O_STEP_TIME},
    {"max-steps", 0, true, O_MAX_STEPS},
    {"json", 'o', true, O_JSON},
    {"plot", 'p', true, O_PLOT},
    {"body", 0, true, O_BODY},
    {"verbose", 'v', false, O_VERBOSE},
    {"quiet", 'q', false, O_QUIET},
    {"help", 'h', false, O_HELP},
    {"version", 'V', false, O_VERSION},
};

#define NOPTS (sizeof(opt_table) / sizeof(opt_table[0]))

void cb_opts_defaults(cb_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->scenario = CB_SCEN_CALL;
    o->transport = CB_TP_UDP;
    o->rate = 10;
    o->duration = 10;
    o->max_calls = 1000;
    o->threads = 1;
    o->conns = 1;
    snprintf(o->user, sizeof(o->user), "meet");
    snprintf(o->from_user, sizeof(o->from_user), "confbench");
    o->t1_ms = 500;
    o->t2_ms = 4000;
    o->timeout_ms = 64 * 500;
    o->drain_s = 0; /* 0: timeout + 1 s */
    o->ramp.step_seconds = 5;
    o->ramp.max_steps = 20;
    snprintf(o->message_body, sizeof(o->message_body), "confbench message");
}

static int opt_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int opt_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
    uint64_t v;
    if (parse_u64(s, lo, hi, &v))
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

/* Seconds with an optional unit: "5", "5s", "500ms", "2m". Result in ms. */
static int parse_duration_ms(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char num[32];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, s, n);
    num[n] = 0;
    uint64_t v;
    if (parse_u64(num, 0, UINT32_MAX, &v))
        return -1;
    const char *unit = s + n;
    if (!*unit || !strcmp(unit, "s"))
        v *= 1000;
    else if (!strcmp(unit, "m"))
        v *= 60000;
    else if (strcmp(unit, "ms"))
        return -1;
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static bool valid_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 127 || strchr("<>\"@:;,?", c))
            return false;
    }
    return true;
}

int cb_target_parse(const char *s, cb_target_spec_t *t)
{
    memset(t, 0, sizeof(*t));
    if (!s || !*s)
        return -1;
    if (!strncmp(s, "sip:", 4))
        s += 4;
    else if (!strncmp(s, "sips:", 5))
        s += 5;
    const char *host = s, *hend, *port = NULL;
    if (*s == '[') {
        host = s + 1;
        hend = strchr(host, ']');
        if (!hend || hend == host)
            return -1;
        if (hend[1] == ':')
            port = hend + 2;
        else if (hend[1])
            return -1;
    } else {
        hend = strchr(s, ':');
        if (hend) {
            if (strchr(hend + 1, ':'))
                return -1; /* a bare IPv6 address needs brackets */
            port = hend + 1;
        } else {
            hend = s + strlen(s);
        }
    }
    size_t hl = (size_t)(hend - host);
    if (hl == 0 || hl >= sizeof(t->host))
        return -1;
    memcpy(t->host, host, hl);
    t->host[hl] = 0;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)t->host[i];
        if (c <= ' ' || c >= 127 || strchr("/@;?<>\"[]", c))
            return -1;
    }
    if (port) {
        unsigned p;
        if (parse_uint(port, 1, 65535, &p))
            return -1;
        t->port = (uint16_t)p;
    } else if (strchr(t->host, ':')) {
        return -1; /* an IPv6 literal without a port is no SIP domain */
    }
    return 0;
}

int cb_binds_parse(const char *s, cb_opts_t *o)
{
    o->nbinds = 0;
    const char *p = s;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof(o->binds[0]) || o->nbinds >= CB_MAX_BINDS)
            return -1;
        char addr[64];
        memcpy(addr, p, n);
        addr[n] = 0;
        unsigned char buf[16];
        if (inet_pton(AF_INET, addr, buf) != 1 && inet_pton(AF_INET6, addr, buf) != 1)
            return -1;
        memcpy(o->binds[o->nbinds++], addr, n + 1);
        p += n;
        if (*p == ',')
            p++;
        if (*p == 0 && p[-1] == ',')
            return -1;
    }
    return o->nbinds ? 0 : -1;
}

static int parse_ramp(const char *s, cb_ramp_t *r)
{
    char a[32], b[32], c[32];
    const char *p1 = strchr(s, ','), *p2 = p1 ? strchr(p1 + 1, ',') : NULL;
    if (!p1 || !p2 || strchr(p2 + 1, ','))
        return -1;
    size_t la = (size_t)(p1 - s), lb = (size_t)(p2 - p1 - 1), lc = strlen(p2 + 1);
    if (la >= sizeof(a) || lb >= sizeof(b) || lc >= sizeof(c))
        return -1;
    memcpy(a, s, la);
    a[la] = 0;
    memcpy(b, p1 + 1, lb);
    b[lb] = 0;
    memcpy(c, p2 + 1, lc + 1);
    if (parse_double(a, 0.1, 1e6, &r->start) || parse_double(b, 0.1, 1e6, &r->step) ||
        parse_double(c, 0.1, 1e6, &r->max) || r->max < r->start)
        return -1;
    r->on = true;
    return 0;
}

static int scenario_parse(const char *s, cb_scenario_t *out)
{
    static const char *const names[] = {"call", "options", "message", "handshake"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!strcmp(s, names[i])) {
            *out = (cb_scenario_t)i;
            return 0;
        }
    }
    return -1;
}

static int transport_parse(const char *s, cb_transport_t *out)
{
    if (!strcasecmp(s, "udp"))
        *out = CB_TP_UDP;
    else if (!strcasecmp(s, "tcp"))
        *out = CB_TP_TCP;
    else if (!strcasecmp(s, "tls"))
        *out = CB_TP_TLS;
    else
        return -1;
    return 0;
}

static const struct opt_def *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opt_table[i].name) == len && !strncmp(opt_table[i].name, name, len))
            return &opt_table[i];
    return NULL;
}

static const struct opt_def *find_short(char c)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (opt_table[i].shortname == c)
            return &opt_table[i];
    return NULL;
}

static int apply(cb_opts_t *o, const struct opt_def *d, const char *v, bool *transport_set,
                 char *err, size_t errlen)
{
    uint64_t u64;
    switch (d->id) {
    case O_SCENARIO:
        if (scenario_parse(v, &o->scenario))
            return opt_error(err, errlen,
                             "--scenario: expected call, options, message or "
                             "handshake, got \"%s\"",
                             v);
        return 0;
    case O_TRANSPORT:
        if (transport_parse(v, &o->transport))
            return opt_error(err, errlen, "--transport: expected udp, tcp or tls, got \"%s\"", v);
        *transport_set = true;
        return 0;
    case O_RATE:
        if (parse_double(v, 0.01, 1e7, &o->rate))
            return opt_error(err, errlen,
                             "--rate: expected a number of calls per second "
                             "(0.01 to 10000000), got \"%s\"",
                             v);
        return 0;
    case O_DURATION:
        if (parse_duration_ms(v, 1000, 86400000ull, &u64))
            return opt_error(err, errlen, "--duration: expected seconds (1 to 86400), got \"%s\"",
                             v);
        o->duration = (unsigned)(u64 / 1000);
        return 0;
    case O_COUNT:
        if (parse_u64(v, 1, UINT64_MAX / 2, &o->count))
            return opt_error(err, errlen, "--count: expected a positive number, got \"%s\"", v);
        return 0;
    case O_MAX_CALLS:
        if (parse_uint(v, 1, 10000000, &o->max_calls))
            return opt_error(err, errlen, "--max-calls: expected 1 to 10000000, got \"%s\"", v);
        return 0;
    case O_HOLD:
        if (parse_duration_ms(v, 0, 86400000ull, &u64))
            return opt_error(err, errlen, "--hold: expected a time (\"2s\", \"500ms\"), got \"%s\"",
                             v);
        o->hold_ms = (unsigned)u64;
        return 0;
    case O_THREADS:
        if (parse_uint(v, 1, 256, &o->threads))
            return opt_error(err, errlen, "--threads: expected 1 to 256, got \"%s\"", v);
        return 0;
    case O_CONNS:
        if (parse_uint(v, 1, 100000, &o->conns))
            return opt_error(err, errlen, "--conns: expected 1 to 100000, got \"%s\"", v);
        return 0;
    case O_CONN_PER_CALL:
        o->conn_per_call = true;
        return 0;
    case O_BIND:
        if (cb_binds_parse(v, o))
            return opt_error(err, errlen,
                             "--bind: expected IP addresses separated by commas "
                             "(at most %d), got \"%s\"",
                             CB_MAX_BINDS, v);
        return 0;
    case O_DNS: {
        cb_target_spec_t t;
        if (cb_target_parse(v, &t) || t.port == 0 || copy_str(o->dns, sizeof(o->dns), v))
            return opt_error(err, errlen, "--dns: expected HOST:PORT of a DNS server, got \"%s\"",
                             v);
        return 0;
    }
    case O_SRV:
        if (v[0] != '_' || copy_str(o->srv, sizeof(o->srv), v))
            return opt_error(err, errlen, "--srv: expected a prefix such as _sips._tcp, got \"%s\"",
                             v);
        return 0;
    case O_USER:
        if (!valid_token(v) || copy_str(o->user, sizeof(o->user), v))
            return opt_error(err, errlen, "--user: expected a SIP user name, got \"%s\"", v);
        return 0;
    case O_DOMAIN:
        if (!valid_token(v) || copy_str(o->domain, sizeof(o->domain), v))
            return opt_error(err, errlen, "--domain: expected a host name, got \"%s\"", v);
        return 0;
    case O_FROM: {
        const char *at = strchr(v, '@');
        char u[64];
        if (!at || (size_t)(at - v) >= sizeof(u) || at == v)
            return opt_error(err, errlen, "--from: expected USER@DOMAIN, got \"%s\"", v);
        memcpy(u, v, (size_t)(at - v));
        u[at - v] = 0;
        if (!valid_token(u) || !valid_token(at + 1) ||
            copy_str(o->from_user, sizeof(o->from_user), u) ||
            copy_str(o->from_domain, sizeof(o->from_domain), at + 1))
            return opt_error(err, errlen, "--from: expected USER@DOMAIN, got \"%s\"", v);
        return 0;
    }
    case O_CA:
        return copy_str(o->ca, sizeof(o->ca), v) ? opt_error(err, errlen, "--ca: path too long")
                                                 : 0;
    case O_CERT:
        return copy_str(o->cert, sizeof(o->cert), v)
                   ? opt_error(err, errlen, "--cert: path too long")
                   : 0;
    case O_KEY:
        return copy_str(o->key, sizeof(o->key), v) ? opt_error(err, errlen, "--key: path too long")
                                                   : 0;
    case O_TLS_NAME:
        if (!valid_token(v) || copy_str(o->tls_name, sizeof(o->tls_name), v))
            return opt_error(err, errlen, "--tls-name: expected a host name, got \"%s\"", v);
        return 0;
    case O_SNI:
        if (!valid_token(v) || copy_str(o->sni, sizeof(o->sni), v))
            return opt_error(err, errlen, "--sni: expected a host name, got \"%s\"", v);
        return 0;
    case O_NO_VERIFY:
        o->no_verify = true;
        return 0;
    case O_MEDIA:
        o->media = true;
        return 0;
    case O_SRTP:
        o->srtp = true;
        return 0;
    case O_CONFERENCE:
        if (parse_uint(v, 2, 16, &o->conference))
            return opt_error(err, errlen, "--conference: expected 2 to 16 participants, got \"%s\"",
                             v);
        return 0;
    case O_TONES:
        return copy_str(o->tones, sizeof(o->tones), v) ? opt_error(err, errlen, "--tones: too long")
                                                       : 0;
    case O_CODECS:
        return copy_str(o->codecs, sizeof(o->codecs), v)
                   ? opt_error(err, errlen, "--codecs: too long")
                   : 0;
    case O_TAMPER:
        o->tamper = true;
        return 0;
    case O_EXPECT: {
        unsigned c;
        if (parse_uint(v, 200, 699, &c))
            return opt_error(err, errlen,
                             "--expect: expected a final response code (200 to 699), "
                             "got \"%s\"",
                             v);
        o->expect = (int)c;
        return 0;
    }
    case O_TIMEOUT:
        if (parse_duration_ms(v, 100, 3600000, &u64))
            return opt_error(err, errlen,
                             "--timeout: expected a time from 100ms to 3600s, "
                             "got \"%s\"",
                             v);
        o->timeout_ms = (unsigned)u64;
        return 0;
    case O_T1:
        if (parse_duration_ms(v, 10, 60000, &u64))
            return opt_error(err, errlen, "--t1: expected a time from 10ms to 60s, got \"%s\"", v);
        o->t1_ms = (unsigned)u64;
        return 0;
    case O_DRAIN:
        if (parse_duration_ms(v, 0, 3600000, &u64))
            return opt_error(err, errlen, "--drain: expected seconds (0 to 3600), got \"%s\"", v);
        o->drain_s = (unsigned)((u64 + 999) / 1000);
        return 0;
    case O_RAMP:
        if (parse_ramp(v, &o->ramp))
            return opt_error(err, errlen,
                             "--ramp: expected START,STEP,MAX calls per second "
                             "(MAX >= START), got \"%s\"",
                             v);
        return 0;
    case O_STEP_TIME:
        if (parse_duration_ms(v, 1000, 3600000, &u64))
            return opt_error(err, errlen, "--step-time: expected seconds (1 to 3600), got \"%s\"",
                             v);
        o->ramp.step_seconds = (unsigned)(u64 / 1000);
        return 0;
    case O_MAX_STEPS:
        if (parse_uint(v, 1, 1000, &o->ramp.max_steps))
            return opt_error(err, errlen, "--max-steps: expected 1 to 1000, got \"%s\"", v);
        return 0;
    case O_JSON:
        return copy_str(o->json, sizeof(o->json), v)
                   ? opt_error(err, errlen, "--json: path too long")
                   : 0;
    case O_PLOT:
        return copy_str(o->plot, sizeof(o->plot), v)
                   ? opt_error(err, errlen, "--plot: path too long")
                   : 0;
    case O_BODY:
        return copy_str(o->message_body, sizeof(o->message_body), v)
                   ? opt_error(err, errlen, "--body: at most %zu bytes",
                               sizeof(o->message_body) - 1)
                   : 0;
    case O_VERBOSE:
        o->verbose++;
        return 0;
    case O_QUIET:
        o->verbose--;
        return 0;
    case O_HELP:
        o->help = true;
        return 0;
    case O_VERSION:
        o->version = true;
        return 0;
    }
    return opt_error(err, errlen, "internal: unhandled option");
}

static int validate(cb_opts_t *o, bool transport_set, bool have_target, char *err, size_t errlen)
{
    if (o->help || o->version)
        return 0;
    if (!have_target)
        return opt_error(err, errlen, "no target: give HOST:PORT or a SIP domain (--help)");
    if (o->scenario == CB_SCEN_HANDSHAKE) {
        if (transport_set && o->transport != CB_TP_TLS)
            return opt_error(err, errlen, "--scenario handshake needs --transport tls");
        o->transport = CB_TP_TLS;
        o->conn_per_call = true;
    }
    if ((o->cert[0] != 0) != (o->key[0] != 0))
        return opt_error(err, errlen, "--cert and --key go together");
    if (o->transport != CB_TP_TLS && (o->cert[0] || o->ca[0] || o->tls_name[0] || o->sni[0]))
        return opt_error(err, errlen,
                         "--ca, --cert, --key, --tls-name and --sni need "
                         "--transport tls");
    if (o->transport == CB_TP_UDP && o->conn_per_call)
        return opt_error(err, errlen, "--conn-per-call needs --transport tcp or tls");
    if (o->media && o->scenario != CB_SCEN_CALL)
        return opt_error(err, errlen, "--media needs --scenario call");
    if (o->hold_ms && o->scenario != CB_SCEN_CALL)
        return opt_error(err, errlen, "--hold needs --scenario call");
    if ((o->tones[0] || o->codecs[0] || o->tamper) && !o->conference)
        return opt_error(err, errlen, "--tones, --codecs and --tamper need --conference");
    if (o->conference && (o->transport != CB_TP_UDP || o->media || o->scenario != CB_SCEN_CALL))
        return opt_error(err, errlen,
                         "--conference places its calls over UDP with media of its own (no "
                         "--transport tcp/tls, --media or --scenario)");
    if (o->tamper && !o->srtp)
        return opt_error(err, errlen, "--tamper needs --srtp");
    if (o->t2_ms < o->t1_ms)
        o->t2_ms = o->t1_ms;
    if (o->timeout_ms < o->t1_ms)
        return opt_error(err, errlen, "--timeout (%u ms) is shorter than --t1 (%u ms)",
                         o->timeout_ms, o->t1_ms);
    if (o->ramp.on && o->count)
        return opt_error(err, errlen, "--ramp and --count exclude each other");
    if (o->ramp.on && o->ramp.step <= 0)
        return opt_error(err, errlen, "--ramp: STEP must be positive");
    if (o->threads > 1 && o->rate / o->threads < 0.01)
        return opt_error(err, errlen, "--rate %.2f is too low for %u threads", o->rate, o->threads);
    if (o->max_calls < o->threads)
        o->max_calls = o->threads;
    if (o->drain_s == 0)
        o->drain_s = o->timeout_ms / 1000 + 2;
    return 0;
}

int cb_opts_parse(int argc, char *const argv[], cb_opts_t *o, char *err, size_t errlen)
{
    cb_opts_defaults(o);
    bool transport_set = false, have_target = false, only_args = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == 0) {
            if (have_target)
                return opt_error(err, errlen, "unexpected argument \"%s\" (one target only)", a);
            if (cb_target_parse(a, &o->target))
                return opt_error(err, errlen,
                                 "target \"%s\": expected HOST:PORT, [IPv6]:PORT "
                                 "or a SIP domain",
                                 a);
            have_target = true;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_args = true;
            continue;
        }
        const struct opt_def *d;
        const char *val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            d = find_long(name, len);
            if (!d)
                return opt_error(err, errlen, "unknown option \"%.*s\" (--help lists them)",
                                 (int)(len + 2), a);
            if (eq) {
                if (!d->arg)
                    return opt_error(err, errlen, "option --%s takes no value", d->name);
                val = eq + 1;
            }
        } else {
            if (a[2] != 0)
                return opt_error(err, errlen, "unknown option \"%s\" (--help lists them)", a);
            d = find_short(a[1]);
            if (!d)
                return opt_error(err, errlen, "unknown option \"%s\" (--help lists them)", a);
        }
        if (d->arg && !val) {
            if (i + 1 >= argc)
                return opt_error(err, errlen, "option --%s needs a value", d->name);
            val = argv[++i];
        }
        if (apply(o, d, val, &transport_set, err, errlen))
            return -1;
    }
    return validate(o, transport_set, have_target, err, errlen);
}

const char *cb_scenario_name(cb_scenario_t s)
{
    switch (s) {
    case CB_SCEN_CALL:
        return "call";
    case CB_SCEN_OPTIONS:
        return "options";
    case CB_SCEN_MESSAGE:
        return "message";
    case CB_SCEN_HANDSHAKE:
        return "handshake";
    }
    return "unknown";
}

const char *cb_transport_name(cb_transport_t t)
{
    switch (t) {
    case CB_TP_UDP:
        return "udp";
    case CB_TP_TCP:
        return "tcp";
    case CB_TP_TLS:
        return "tls";
    }
    return "unknown";
}

const char *cb_transport_via(cb_transport_t t)
{
    switch (t) {
    case CB_TP_UDP:
        return "UDP";
    case CB_TP_TCP:
        return "TCP";
    case CB_TP_TLS:
        return "TLS";
    }
    return "UDP";
}

const char *cb_srv_prefix(const cb_opts_t *o)
{
    if (o->srv[0])
        return o->srv;
    switch (o->transport) {
    case CB_TP_UDP:
        return "_sip._udp";
    case CB_TP_TCP:
        return "_sip._tcp";
    case CB_TP_TLS:
        return "_sipfederationtls._tcp";
    }
    return "_sip._udp";
}

int cb_expected_code(const cb_opts_t *o)
{
    return o->expect ? o->expect : 200;
}

void cb_opts_usage(FILE *f)
{
    fputs("usage: confbench [options] TARGET\n"
          "\n"
          "TARGET is HOST:PORT ([IPv6]:PORT), or a SIP domain resolved like a federated\n"
          "edge: SRV _sipfederationtls._tcp.DOMAIN (tls), _sip._tcp (tcp), _sip._udp (udp),\n"
          "then A/AAAA of every SRV target; load is spread round-robin over all addresses.\n"
          "\n"
          "Load:\n"
          "  -s, --scenario NAME   call (INVITE/ACK/BYE, default), options, message,\n"
          "                        handshake (new TLS connection + OPTIONS per request)\n"
          "  -r, --rate N          calls or requests per second, all threads (default 10)\n"
          "  -d, --duration SECS   seconds of load (default 10)\n"
          "  -n, --count N         stop after N calls (default: rate x duration)\n"
          "  -m, --max-calls N     concurrent calls at most (default 1000)\n"
          "      --hold TIME       time between ACK and BYE (\"2s\", \"500ms\"; default 0)\n"
          "      --media           RTP audio per call (PCMU, 50 packets/s) to the SDP answer\n"
          "      --srtp            offer RTP/SAVP with a=crypto (SDP only; SRTP media\n"
          "                        with --conference)\n"
          "Conference check:\n"
          "      --conference N    N calls to the room (UDP), each sending a tone for --hold\n"
          "                        (default 3s); exit 0 when each hears every other tone\n"
          "                        and not its own (Goertzel). Participant i calls the\n"
          "                        (i mod K)-th of TARGET's K addresses: a name with an A\n"
          "                        record per node puts them on different cluster nodes\n"
          "      --tones A,B,...   the participants' tones in Hz (default 400,700,1100,...)\n"
          "      --codec(s) C,...  pcmu, pcma or opus: one for all or one per participant\n"
          "      --tamper          (with --srtp) one SRTP packet of participant 0 with a bad\n"
          "                        authentication tag; the count sent is reported\n"
          "      --body TEXT       MESSAGE body\n"
          "  -e, --expect CODE     final response code that counts as success (default 200)\n"
          "      --ramp A,S,M      raise the rate from A by S up to M calls/s, one step per\n"
          "                        --step-time (default 5 s), at most --max-steps (20);\n"
          "                        reports the highest rate with no failure\n"
          "Transport:\n"
          "  -t, --transport T     udp (default), tcp or tls\n"
          "  -j, --threads N       event-loop threads (default 1)\n"
          "  -c, --conns N         TCP/TLS connections per thread (default 1)\n"
          "      --conn-per-call   a new TCP/TLS connection for each call or request\n"
          "  -b, --bind A,B,...    local source addresses, used in turn\n"
          "      --dns HOST:PORT   DNS server for the SRV/A/AAAA look-ups\n"
          "      --srv PREFIX      SRV prefix instead of the transport's default\n"
          "      --ca FILE         CA certificates to verify the server against\n"
          "      --cert F --key F  client certificate and key\n"
          "      --tls-name NAME   name the server certificate must carry (default: the\n"
          "                        SRV target, or the host of HOST:PORT)\n"
          "      --sni NAME        SNI to send (default: --tls-name)\n"
          "      --no-verify       do not verify the server certificate\n"
          "SIP:\n"
          "  -u, --user USER       Request-URI user (default meet)\n"
          "      --domain HOST     Request-URI host (default: the target)\n"
          "      --from USER@DOM   From identity (default confbench@confbench.invalid)\n"
          "      --timeout TIME    transaction timeout (default 32s = 64*T1)\n"
          "      --t1 TIME         RFC 3261 T1 for UDP retransmissions (default 500ms)\n"
          "      --drain TIME      wait at most this long for calls after the load\n"
          "Output:\n"
          "  -o, --json FILE       write results as JSON\n"
          "  -p, --plot DIR        write gnuplot scripts and data (and PNGs if gnuplot is\n"
          "                        installed)\n"
          "  -v, --verbose / -q, --quiet\n"
          "  -h, --help / -V, --version\n"
          "\n"
          "Exit status: 0 no failure, 1 some calls or requests failed, 2 usage or setup error.\n",
          f);
}
