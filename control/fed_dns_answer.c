/* Federation DNS answers: the reference-counted answer objects, walking raw DNS
 * messages for TTLs, and building answers (SRV, NAPTR, A/AAAA, statuses) from c-ares
 * replies. */
#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fed_dns_int.h"

/* ---- answers ----------------------------------------------------------------------- */

static struct answer_obj *obj_of(const struct fed_dns_answer *ans)
{
    return (struct answer_obj *)((char *)(uintptr_t)ans - offsetof(struct answer_obj, pub));
}

void fed_dns_answer_ref(const struct fed_dns_answer *ans)
{
    if (ans == NULL)
        return;
    struct answer_obj *o = obj_of(ans);
    if (!o->is_static)
        o->refs++;
}

void fed_dns_answer_unref(const struct fed_dns_answer *ans)
{
    if (ans == NULL)
        return;
    struct answer_obj *o = obj_of(ans);
    if (!o->is_static && --o->refs == 0)
        free(o);
}

static struct answer_obj *answer_new(const char *name, fed_dns_type_t type, size_t n,
                                     size_t recsize)
{
    struct answer_obj *o = calloc(1, sizeof *o + n * recsize);
    if (o == NULL)
        return NULL;
    o->refs = 1;
    snprintf(o->pub.name, sizeof o->pub.name, "%s", name);
    o->pub.type = type;
    o->pub.n = 0;
    if (n > 0) {
        void *recs = o + 1;
        if (type == FED_DNS_T_SRV)
            o->pub.srv = recs;
        else if (type == FED_DNS_T_NAPTR)
            o->pub.naptr = recs;
        else
            o->pub.addr = recs;
    }
    return o;
}

/* ---- DNS message walking ------------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Skips a (possibly compressed) name at *pos; -1 when malformed. */
static int skip_name(const uint8_t *msg, size_t len, size_t *pos)
{
    size_t p = *pos;
    for (unsigned labels = 0; labels < 128; labels++) {
        if (p >= len)
            return -1;
        uint8_t l = msg[p];
        if ((l & 0xC0) == 0xC0) {
            if (p + 2 > len)
                return -1;
            *pos = p + 2;
            return 0;
        }
        if ((l & 0xC0) != 0)
            return -1;
        if (l == 0) {
            *pos = p + 1;
            return 0;
        }
        p += 1u + l;
    }
    return -1;
}

int fed_dns_msg_ttl(const uint8_t *msg, size_t len, struct fed_dns_msg_ttl *out)
{
    memset(out, 0, sizeof *out);
    if (msg == NULL || len < 12)
        return -1;
    out->rcode = msg[3] & 0x0F;
    unsigned qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8);
    size_t pos = 12;
    for (unsigned i = 0; i < qd; i++) {
        if (skip_name(msg, len, &pos) != 0 || pos + 4 > len)
            return -1;
        pos += 4;
    }
    for (unsigned i = 0; i < an + ns; i++) {
        if (skip_name(msg, len, &pos) != 0 || pos + 10 > len)
            return -1;
        uint16_t type = rd16(msg + pos);
        uint32_t ttl = rd32(msg + pos + 4);
        uint16_t rdlen = rd16(msg + pos + 8);
        pos += 10;
        if (pos + rdlen > len)
            return -1;
        if (ttl > 0x7FFFFFFFu) /* RFC 2181 §8: treat as zero */
            ttl = 0;
        if (i < an) {
            if (!out->have_answer || ttl < out->answer_ttl)
                out->answer_ttl = ttl;
            out->have_answer = true;
        } else if (type == 6 /* SOA */ && rdlen >= 22 && !out->have_soa) {
            uint32_t minimum = rd32(msg + pos + rdlen - 4);
            if (minimum > 0x7FFFFFFFu)
                minimum = 0;
            out->neg_ttl = ttl < minimum ? ttl : minimum;
            out->have_soa = true;
        }
        pos += rdlen;
    }
    return 0;
}

/* ---- building answers ------------------------------------------------------------------ */

static fed_dns_status_t map_ares(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return FED_DNS_OK;
    case ARES_ENODATA:
        return FED_DNS_NODATA;
    case ARES_ENOTFOUND:
        return FED_DNS_NXDOMAIN;
    case ARES_ETIMEOUT:
        return FED_DNS_ERR_TIMEOUT;
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ENOTIMP:
        return FED_DNS_ERR_SERVFAIL;
    case ARES_ECONNREFUSED:
        return FED_DNS_ERR_CONNREFUSED;
    case ARES_EFORMERR:
    case ARES_EBADRESP:
        return FED_DNS_ERR_FORMAT;
    case ARES_EBADNAME:
        return FED_DNS_ERR_BADNAME;
    case ARES_ENOMEM:
        return FED_DNS_ERR_NOMEM;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return FED_DNS_ERR_CANCELLED;
    default:
        return FED_DNS_ERR_OTHER;
    }
}

static void copy_name(char *dst, const char *src)
{
    /* canonical form; a name that does not normalise is kept lowercased as is */
    if (src == NULL || fed_name_normalize(src, FED_NAME_NUL, NAME_FLAGS, dst, FED_NAME_BUF) < 0) {
        size_t k = 0;
        for (; src != NULL && src[k] && k + 1 < FED_NAME_BUF; k++)
            dst[k] = (src[k] >= 'A' && src[k] <= 'Z') ? (char)(src[k] + 32) : src[k];
        if (k > 0 && dst[k - 1] == '.')
            k--;
        dst[k] = '\0';
    }
}

static int parse_srv(struct answer_obj **po, const char *name, const unsigned char *abuf, int alen)
{
    struct ares_srv_reply *list = NULL;
    int rc = ares_parse_srv_reply(abuf, alen, &list);
    if (rc != ARES_SUCCESS)
        return rc;
    size_t n = 0;
    for (struct ares_srv_reply *r = list; r != NULL && n < MAX_SRV_RECS; r = r->next)
        n++;
    struct answer_obj *o = answer_new(name, FED_DNS_T_SRV, n, sizeof(struct fed_dns_srv));
    if (o == NULL) {
        ares_free_data(list);
        return ARES_ENOMEM;
    }
    struct fed_dns_srv *recs = (struct fed_dns_srv *)(uintptr_t)o->pub.srv;
    size_t i = 0;
    for (struct ares_srv_reply *r = list; r != NULL && i < n; r = r->next, i++) {
        recs[i].priority = r->priority;
        recs[i].weight = r->weight;
        recs[i].port = r->port;
        copy_name(recs[i].target, r->host);
    }
    o->pub.n = n;
    ares_free_data(list);
    *po = o;
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

static int parse_naptr(struct answer_obj **po, const char *name, const unsigned char *abuf,
                       int alen)
{
    struct ares_naptr_reply *list = NULL;
    int rc = ares_parse_naptr_reply(abuf, alen, &list);
    if (rc != ARES_SUCCESS)
        return rc;
    size_t n = 0;
    for (struct ares_naptr_reply *r = list; r != NULL && n < MAX_SRV_RECS; r = r->next)
        n++;
    struct answer_obj *o = answer_new(name, FED_DNS_T_NAPTR, n, sizeof(struct fed_dns_naptr));
    if (o == NULL) {
        ares_free_data(list);
        return ARES_ENOMEM;
    }
    struct fed_dns_naptr *recs = (struct fed_dns_naptr *)(uintptr_t)o->pub.naptr;
    size_t i = 0;
    for (struct ares_naptr_reply *r = list; r != NULL && i < n; r = r->next, i++) {
        recs[i].order = r->order;
        recs[i].preference = r->preference;
        snprintf(recs[i].flags, sizeof recs[i].flags, "%s", (const char *)r->flags);
        snprintf(recs[i].service, sizeof recs[i].service, "%s", (const char *)r->service);
        snprintf(recs[i].regexp, sizeof recs[i].regexp, "%s", (const char *)r->regexp);
        copy_name(recs[i].replacement, r->replacement);
    }
    o->pub.n = n;
    ares_free_data(list);
    *po = o;
    return n > 0 ? ARES_SUCCESS : ARES_ENODATA;
}

static int parse_addr(struct answer_obj **po, const char *name, fed_dns_type_t type,
                      const unsigned char *abuf, int alen)
{
    struct hostent *host = NULL;
    int rc, n = MAX_ADDRS;
    struct ares_addrttl *t4 = NULL;
    struct ares_addr6ttl *t6 = NULL;

    if (type == FED_DNS_T_A) {
        t4 = calloc(MAX_ADDRS, sizeof *t4);
        if (t4 == NULL)
            return ARES_ENOMEM;
        rc = ares_parse_a_reply(abuf, alen, &host, t4, &n);
    } else {
        t6 = calloc(MAX_ADDRS, sizeof *t6);
        if (t6 == NULL)
            return ARES_ENOMEM;
        rc = ares_parse_aaaa_reply(abuf, alen, &host, t6, &n);
    }
    if (host != NULL)
        ares_free_hostent(host);
    if (rc != ARES_SUCCESS)
        goto out;
    if (n <= 0) {
        rc = ARES_ENODATA;
        goto out;
    }
    struct answer_obj *o = answer_new(name, type, (size_t)n, sizeof(struct fed_dns_addr));
    if (o == NULL) {
        rc = ARES_ENOMEM;
        goto out;
    }
    struct fed_dns_addr *recs = (struct fed_dns_addr *)(uintptr_t)o->pub.addr;
    for (int i = 0; i < n; i++) {
        if (t4 != NULL) {
            recs[i].family = AF_INET;
            recs[i].u.v4 = t4[i].ipaddr;
            inet_ntop(AF_INET, &recs[i].u.v4, recs[i].text, sizeof recs[i].text);
        } else {
            recs[i].family = AF_INET6;
            memcpy(&recs[i].u.v6, &t6[i].ip6addr, sizeof recs[i].u.v6);
            inet_ntop(AF_INET6, &recs[i].u.v6, recs[i].text, sizeof recs[i].text);
        }
    }
    o->pub.n = (size_t)n;
    *po = o;
out:
    free(t4);
    free(t6);
    return rc;
}

struct answer_obj fdns_nomem_answer = {
    .refs = 1,
    .is_static = true,
    .pub = {.status = FED_DNS_ERR_NOMEM},
};

/* An error or negative answer without records. */
struct answer_obj *fdns_answer_status(const char *name, fed_dns_type_t type, fed_dns_status_t st)
{
    struct answer_obj *o = answer_new(name, type, 0, 0);
    if (o == NULL)
        return &fdns_nomem_answer;
    o->pub.status = st;
    return o;
}

struct answer_obj *fdns_answer_from_dns(fed_dns_t *dns, const char *name, fed_dns_type_t type,
                                        int status, const unsigned char *abuf, int alen)
{
    struct answer_obj *o = NULL;
    struct fed_dns_msg_ttl mt;
    bool have_ttl = abuf != NULL && alen > 0 && fed_dns_msg_ttl(abuf, (size_t)alen, &mt) == 0;

    if (status == ARES_SUCCESS) {
        if (type == FED_DNS_T_SRV)
            status = parse_srv(&o, name, abuf, alen);
        else if (type == FED_DNS_T_NAPTR)
            status = parse_naptr(&o, name, abuf, alen);
        else
            status = parse_addr(&o, name, type, abuf, alen);
        if (status != ARES_SUCCESS && o != NULL) {
            fed_dns_answer_unref(&o->pub);
            o = NULL;
        }
    }
    fed_dns_status_t st = map_ares(status);
    if (o == NULL)
        o = fdns_answer_status(name, type, st);
    if (o->is_static)
        return o;
    o->pub.status = st;
    uint32_t ttl = 0;
    if (st == FED_DNS_OK) {
        ttl = have_ttl && mt.have_answer ? mt.answer_ttl : 0;
        if (ttl > dns->ttl_max)
            ttl = dns->ttl_max;
    } else if (st == FED_DNS_NXDOMAIN || st == FED_DNS_NODATA) {
        ttl = have_ttl && mt.have_soa ? mt.neg_ttl : dns->neg_ttl_default;
        if (ttl > dns->neg_ttl_max)
            ttl = dns->neg_ttl_max;
    }
    o->pub.ttl = ttl;
    o->pub.expires_ms = fdns_now_ms(dns) + (uint64_t)ttl * 1000u;
    return o;
}
