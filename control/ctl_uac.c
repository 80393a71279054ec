/* Our own requests inside a dialog: BYE with a non-INVITE client transaction
 * (RFC 3261 §17.1.2). See ctl_uac.h. */
#include "ctl_uac.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "ctl_internal.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

#define BRANCH_PREFIX "z9hG4bKcn"
#define UAC_FIELD_MAX 1024

/* A client transaction. Owner: the worker that sent the request. */
struct ctl_uac {
    struct ctl_uac *next;
    char branch[48];
    cn_peer_t peer;
    char *msg;
    size_t len;
    uint32_t retx_ms;
    struct ctl_timer t_e; /* retransmission (UDP only) */
    struct ctl_timer t_f; /* give up */
};

/* The URI of a Contact (or From) value: between < and >, or up to the first ';'. */
static sip_str_t uri_of(sip_str_t v)
{
    sip_str_t u = {NULL, 0};
    if (!v.s)
        return u;
    const char *lt = memchr(v.s, '<', v.len);
    if (lt) {
        const char *gt = memchr(lt, '>', v.len - (size_t)(lt - v.s));
        if (!gt)
            return u;
        u.s = lt + 1;
        u.len = (size_t)(gt - lt - 1);
        return u;
    }
    size_t n = 0;
    while (n < v.len && v.s[n] != ';' && v.s[n] != ',' && v.s[n] != ' ')
        n++;
    u.s = v.s;
    u.len = n;
    return u;
}

static bool clean_field(sip_str_t v)
{
    if (!v.s || v.len == 0 || v.len >= UAC_FIELD_MAX)
        return false;
    for (size_t i = 0; i < v.len; i++)
        if (v.s[i] == '\r' || v.s[i] == '\n' || v.s[i] == '\0')
            return false;
    return true;
}

int ctl_uac_dialog_init(struct ctl_worker *cw, struct ctl_dialog *d, const sip_msg_t *invite,
                        const cn_peer_t *from)
{
    (void)cw;
    sip_str_t contact = sip_msg_header(invite, "Contact");
    sip_str_t rfrom = sip_msg_header(invite, "From");
    sip_str_t rto = sip_msg_header(invite, "To");
    sip_str_t target = uri_of(contact.s ? contact : rfrom);
    d->peer = *from;
    d->local_cseq = 1;
    if (!clean_field(target) || !clean_field(rfrom) || !clean_field(rto))
        return -1;
    size_t need = target.len + rfrom.len + rto.len + TAG_LEN + 16;
    char *b = malloc(need);
    if (!b)
        return -1;
    /* "target\0remote-from\0our-from\0" */
    int n = snprintf(b, need, "%.*s%c%.*s%c%.*s;tag=%s", (int)target.len, target.s, 0,
                     (int)rfrom.len, rfrom.s, 0, (int)rto.len, rto.s, d->tag);
    if (n < 0 || (size_t)n >= need) {
        free(b);
        return -1;
    }
    free(d->uac);
    d->uac = b;
    return 0;
}

static void uac_destroy(struct ctl_worker *cw, struct ctl_uac *u)
{
    for (struct ctl_uac **pp = &cw->uacs; *pp; pp = &(*pp)->next)
        if (*pp == u) {
            *pp = u->next;
            break;
        }
    ctl_timer_cancel(&cw->timers, &u->t_e);
    ctl_timer_cancel(&cw->timers, &u->t_f);
    free(u->msg);
    free(u);
}

static void on_timer_e(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_uac *u = container_of(tm, struct ctl_uac, t_e);
    cw->io.send(cw->io.io, &u->peer, u->msg, u->len);
    cstat_add(&cw->stats->retransmissions_sent, 1);
    u->retx_ms = u->retx_ms * 2 > cw->conf->t2_ms ? cw->conf->t2_ms : u->retx_ms * 2;
    ctl_timer_arm(&cw->timers, &u->t_e, now + u->retx_ms, on_timer_e);
}

static void on_timer_f(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_uac *u = container_of(tm, struct ctl_uac, t_f);
    (void)now;
    cn_log(CN_LOG_INFO, "bye_timeout", "worker=%u branch=%s reason=\"no response (timer F)\"",
           cw->id, u->branch);
    uac_destroy(cw, u);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int ctl_uac_bye(struct ctl_worker *cw, struct ctl_dialog *d, const char *why)
{
    if (!d->uac) {
        cn_log(CN_LOG_WARN, "bye_not_sent", "worker=%u reason=\"dialog lacks Contact/From/To\"",
               cw->id);
        return -1;
    }
    const char *target = d->uac;
    const char *to = target + strlen(target) + 1;
    const char *from = to + strlen(to) + 1;
    struct ctl_uac *u = calloc(1, sizeof *u);
    char *msg = malloc(4096);
    if (!u || !msg) {
        free(u);
        free(msg);
        return -1;
    }
    snprintf(u->branch, sizeof u->branch, BRANCH_PREFIX "%02x%016llx", cw->id & 0xff,
             (unsigned long long)mix64(++cw->uac_seq ^ cw->tag_key));
    const struct ctl_listen *l = &cw->sh->listen;
    cn_transport_t tr = d->peer.transport;
    unsigned port = tr == CN_TRANSPORT_TLS   ? l->tls_port
                    : tr == CN_TRANSPORT_TCP ? l->tcp_port
                                             : l->udp_port;
    bool v6 = strchr(l->host, ':') != NULL;
    char reason[160];
    size_t j = 0;
    for (const char *p = why ? why : "bye"; *p && j < sizeof reason - 1; p++)
        reason[j++] = (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) ? ' ' : *p;
    reason[j] = 0;
    int n = snprintf(msg, 4096,
                     "BYE %s SIP/2.0\r\n"
                     "Via: SIP/2.0/%s %s%s%s:%u;branch=%s;rport\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: %s\r\n"
                     "To: %s\r\n"
                     "Call-ID: %s\r\n"
                     "CSeq: %u BYE\r\n"
                     "Reason: SIP;cause=408;text=\"%s\"\r\n"
                     "User-Agent: confnode/" CONFNODE_VERSION "\r\n"
                     "Content-Length: 0\r\n\r\n",
                     target, cn_transport_name(tr), v6 ? "[" : "", l->host, v6 ? "]" : "", port,
                     u->branch, from, to, d->call_id, ++d->local_cseq, reason);
    if (n < 0 || n >= 4096) {
        free(u);
        free(msg);
        return -1;
    }
    u->msg = msg;
    u->len = (size_t)n;
    u->peer = d->peer;
    u->next = cw->uacs;
    cw->uacs = u;
    if (cw->io.send(cw->io.io, &u->peer, u->msg, u->len) != 0)
        cn_log(CN_LOG_INFO, "bye_send_failed", "worker=%u call_id=\"%s\"", cw->id, d->call_id);
    if (!cn_transport_reliable(tr)) {
        u->retx_ms = cw->conf->t1_ms;
        ctl_timer_arm(&cw->timers, &u->t_e, cw->now + u->retx_ms, on_timer_e); /* Timer E */
    }
    ctl_timer_arm(&cw->timers, &u->t_f, cw->now + 64ull * cw->conf->t1_ms, on_timer_f); /* F */
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int ctl_uac_owner(const sip_msg_t *resp)
{
    sip_str_t b = sip_msg_via_branch(resp);
    size_t pl = sizeof BRANCH_PREFIX - 1;
    if (!b.s || b.len < pl + 2 || strncmp(b.s, BRANCH_PREFIX, pl) != 0)
        return -1;
    int hi = hexval(b.s[pl]), lo = hexval(b.s[pl + 1]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void ctl_uac_response(struct ctl_worker *cw, sip_msg_t *resp)
{
    sip_str_t b = sip_msg_via_branch(resp);
    int status = sip_msg_status(resp);
    for (struct ctl_uac *u = cw->uacs; u && b.s; u = u->next) {
        if (strlen(u->branch) != b.len || memcmp(u->branch, b.s, b.len) != 0)
            continue;
        if (status >= 200) {
            uac_destroy(cw, u);
        } else if (status >= 100 && ctl_timer_armed(&u->t_e)) {
            /* Proceeding: retransmit at T2 (§17.1.2.2) */
            u->retx_ms = cw->conf->t2_ms;
            ctl_timer_arm(&cw->timers, &u->t_e, cw->now + u->retx_ms, on_timer_e);
        }
        break;
    }
    sip_msg_free(resp);
}

void ctl_uac_free_all(struct ctl_worker *cw)
{
    while (cw->uacs)
        uac_destroy(cw, cw->uacs);
}

unsigned ctl_uac_count(const struct ctl_worker *cw)
{
    unsigned n = 0;
    for (const struct ctl_uac *u = cw->uacs; u; u = u->next)
        n++;
    return n;
}
