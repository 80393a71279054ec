/* Dialogs the node's user agent is in (one per call leg to a VMR).
 *
 * Our To-tag names the owning worker ("cn" + two hex digits + 16 hex), so a
 * request inside the dialog that lands on another worker is handed over without
 * a shared table (ctl_tag_owner). Dialogs are found by that tag and checked
 * against the Call-ID. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "ctl_internal.h"
#include "ctl_msg.h"

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int ctl_tag_owner(const char *tag, size_t len)
{
    if (!tag || len != TAG_LEN || tag[0] != 'c' || tag[1] != 'n')
        return -1;
    int hi = hexval(tag[2]), lo = hexval(tag[3]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi * 16 + lo;
}

static void on_no_ack(struct ctl_timer *tm, void *ctx, uint64_t now)
{
    struct ctl_worker *cw = ctx;
    struct ctl_dialog *d = container_of(tm, struct ctl_dialog, t_ack);
    (void)now;
    if (d->state != DLG_EARLY)
        return;
    cstat_add(&cw->stats->no_ack_timeouts, 1);
    cn_log(CN_LOG_INFO, "dialog_no_ack", "worker=%u call_id=\"%.*s\"", cw->id,
           (int)d->call_id_len, d->call_id);
    ctl_dialog_end(cw, d);
}

struct ctl_dialog *ctl_dialog_new(struct ctl_worker *cw, const sip_msg_t *invite,
                                  const struct vmr *room)
{
    if (cw->n_dlg >= cw->conf->max_dialogs)
        return NULL;
    sip_str_t cid = sip_msg_call_id(invite);
    struct ctl_dialog *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->call_id = malloc(cid.len + 1);
    if (!d->call_id) {
        free(d);
        return NULL;
    }
    memcpy(d->call_id, cid.s, cid.len);
    d->call_id[cid.len] = 0;
    d->call_id_len = cid.len;
    snprintf(d->tag, sizeof d->tag, "cn%02x%016llx", cw->id & 0xff,
             (unsigned long long)mix64(++cw->tag_seq ^ cw->tag_key));
    d->hash = ctl_hash(d->tag, TAG_LEN, 0);
    d->state = DLG_EARLY;
    d->remote_cseq = sip_msg_cseq(invite);
    d->media_port = -1;
    d->room = room;
    uint32_t b = (uint32_t)(d->hash & cw->dlg_mask);
    d->hnext = cw->dlg_tab[b];
    cw->dlg_tab[b] = d;
    cw->n_dlg++;
    cstat_add(&cw->stats->dialogs, 1);
    /* no ACK within 64*T1 ends the dialog (RFC 3261 §13.3.1.4) */
    ctl_timer_arm(&cw->timers, &d->t_ack, cw->now + 64ull * cw->conf->t1_ms,
                  on_no_ack);
    return d;
}

struct ctl_dialog *ctl_dialog_find(struct ctl_worker *cw, sip_str_t tag, sip_str_t call_id)
{
    if (!tag.s || tag.len != TAG_LEN)
        return NULL;
    uint64_t h = ctl_hash(tag.s, tag.len, 0);
    for (struct ctl_dialog *d = cw->dlg_tab[h & cw->dlg_mask]; d; d = d->hnext)
        if (d->hash == h && memcmp(d->tag, tag.s, TAG_LEN) == 0)
            return (d->call_id_len == call_id.len &&
                    memcmp(d->call_id, call_id.s, call_id.len) == 0)
                       ? d
                       : NULL;
    return NULL;
}

/* Tells the cluster store a participant joined (+1) or left (-1) the room's
 * conference; fire and forget (a full ring only makes the count lag). */
static void count_participant(struct ctl_worker *cw, const struct ctl_dialog *d, int delta)
{
    if (!cw->conf->clustered || !cw->io.to_control || !d->room)
        return;
    struct ctl_msg_claim *q = calloc(1, sizeof *q);
    if (!q)
        return;
    q->hdr.kind = CTL_MSG_COUNT;
    q->delta = delta;
    snprintf(q->conf, sizeof q->conf, "%s", d->room->conf->alias);
    if (cw->io.to_control(cw->io.io, q) != 0)
        free(q);
}

void ctl_dialog_confirm(struct ctl_worker *cw, struct ctl_dialog *d)
{
    if (d->state == DLG_CONFIRMED)
        return;
    d->state = DLG_CONFIRMED;
    ctl_timer_cancel(&cw->timers, &d->t_ack);
    if (d->invite)
        ctl_txn_acked(cw, d->invite, cw->now); /* may end it: d->invite is cleared */
    cstat_add(&cw->stats->calls, 1);
    cstat_add(&cw->stats->calls_total, 1);
    count_participant(cw, d, +1);
}

void ctl_dialog_end(struct ctl_worker *cw, struct ctl_dialog *d)
{
    struct ctl_dialog **pp = &cw->dlg_tab[d->hash & cw->dlg_mask];
    while (*pp && *pp != d)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = d->hnext;
    ctl_timer_cancel(&cw->timers, &d->t_ack);
    if (d->invite) {
        ctl_timer_cancel(&cw->timers, &d->invite->t_retx);
        d->invite->dlg = NULL;
    }
    if (d->media_leg && cw->io.media_close)
        cw->io.media_close(cw->io.io, d->media_leg);
    if (d->media_port >= 0)
        media_ports_release(&cw->ports, (uint16_t)d->media_port);
    if (d->video_port)
        media_ports_release(&cw->ports, d->video_port);
    free(d->uac);
    if (d->state == DLG_CONFIRMED) {
        cstat_add(&cw->stats->calls, -1);
        count_participant(cw, d, -1);
    }
    cw->n_dlg--;
    cstat_add(&cw->stats->dialogs, -1);
    free(d->call_id);
    free(d);
}
