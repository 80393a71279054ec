#include "ctl_central.h"

#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "ctl_msg.h"
#include "fed_wire.h"
#include "sip_msg.h"

struct ctl_central {
    struct cl_store *store;
    int (*post)(void *io, unsigned w, void *msg);
    void *io;
    fed_dns_t *dns;
};

/* A claim in flight: which worker asked, and its message to answer in. */
struct pending {
    struct ctl_central *c;
    unsigned worker;
    struct ctl_msg_claim *msg;
};

void ctl_msg_free(void *msg)
{
    struct ctl_msg *h = msg;
    if (h && h->kind == CTL_MSG_FORWARD) {
        sip_msg_free(((struct ctl_forward *)msg)->m);
        X509_free(((struct ctl_forward *)msg)->cert);
    }
    free(msg);
}

struct ctl_central *ctl_central_create(struct cl_store *store,
                                       int (*post)(void *io, unsigned w, void *msg), void *io)
{
    struct ctl_central *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->store = store;
    c->post = post;
    c->io = io;
    return c;
}

void ctl_central_free(struct ctl_central *c) { free(c); }

void ctl_central_set_dns(struct ctl_central *c, fed_dns_t *dns)
{
    if (c)
        c->dns = dns;
}

/* A LOCATE in flight: which worker asked. */
struct locating {
    struct ctl_central *c;
    unsigned worker;
};

static void on_located(void *arg, struct ctl_msg_locate *q)
{
    struct locating *l = arg;
    if (l->c->post(l->c->io, l->worker, q) != 0) {
        cn_log(CN_LOG_WARN, "ring_full", "to=worker%u msg=located", l->worker);
        free(q);
    }
    free(l);
}

static void answer(struct ctl_central *c, unsigned worker, struct ctl_msg_claim *m)
{
    m->hdr.kind = CTL_MSG_CLAIM_DONE;
    if (c->post(c->io, worker, m) != 0) {
        cn_log(CN_LOG_WARN, "ring_full", "to=worker%u msg=claim_done conf=%s", worker, m->conf);
        free(m);
    }
}

static void on_claim(void *arg, cl_status_t st, const struct cl_claim *cl)
{
    struct pending *p = arg;
    struct ctl_msg_claim *m = p->msg;
    m->status = st;
    if (st == CL_OK && cl) {
        m->mine = cl->mine;
        m->local = cl->local;
        snprintf(m->owner, sizeof m->owner, "%s", cl->owner);
        snprintf(m->owner_fqdn, sizeof m->owner_fqdn, "%s", cl->owner_fqdn);
        snprintf(m->owner_addresses, sizeof m->owner_addresses, "%s", cl->owner_addresses);
    }
    answer(p->c, p->worker, m);
    free(p);
}

static void on_count(void *arg, cl_status_t st, int64_t count)
{
    struct pending *p = arg;
    /* the last participant left: the conference may be placed anew next time */
    if (st == CL_OK && count == 0)
        cl_store_release(p->c->store, p->msg->conf, NULL, NULL);
    free(p->msg);
    free(p);
}

void ctl_central_on_msg(struct ctl_central *c, unsigned worker, void *msg)
{
    struct ctl_msg *h = msg;
    if (h->kind == CTL_MSG_CLAIM) {
        struct ctl_msg_claim *m = msg;
        struct pending *p = malloc(sizeof *p);
        if (!p) {
            m->status = CL_ERR_NOMEM;
            answer(c, worker, m);
            return;
        }
        *p = (struct pending){.c = c, .worker = worker, .msg = m};
        cl_status_t st = cl_store_claim(c->store, m->conf, NULL, on_claim, p);
        if (st != CL_OK) { /* not started: answer now */
            free(p);
            m->status = st;
            answer(c, worker, m);
        }
        return;
    }
    if (h->kind == CTL_MSG_COUNT) {
        struct ctl_msg_claim *m = msg;
        struct pending *p = malloc(sizeof *p);
        if (!p) {
            free(m);
            return;
        }
        *p = (struct pending){.c = c, .worker = worker, .msg = m};
        if (cl_store_count(c->store, m->conf, m->delta, on_count, p) != CL_OK) {
            free(m);
            free(p);
        }
        return;
    }
    if (h->kind == CTL_MSG_LOCATE) {
        struct locating *l = malloc(sizeof *l);
        if (!l) {
            free(msg);
            return;
        }
        *l = (struct locating){.c = c, .worker = worker};
        fed_wire_central_locate(c->dns, msg, on_located, l);
        return;
    }
    ctl_msg_free(msg);
}
