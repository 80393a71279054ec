/* Jitter buffer. See md_jbuf.h for the playout rules. */
#include "md_jbuf.h"

#include <string.h>

#include "md_rtp.h"

#define MASK (MD_JB_SLOTS - 1)

_Static_assert((MD_JB_SLOTS & MASK) == 0, "MD_JB_SLOTS must be a power of two");

void md_jbuf_init(struct md_jbuf *jb, unsigned depth)
{
    memset(jb, 0, sizeof *jb);
    jb->depth = depth == 0 || depth >= MD_JB_SLOTS ? MD_JB_DEFAULT_DEPTH : depth;
}

void md_jbuf_reset(struct md_jbuf *jb)
{
    for (unsigned i = 0; i < MD_JB_SLOTS; i++)
        jb->slot[i].used = false;
    jb->anchored = false;
    jb->playing = false;
    jb->buffered = 0;
    jb->fill_ticks = 0;
    jb->underrun_run = 0;
}

static void store(struct md_jbuf *jb, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len)
{
    struct md_jb_slot *s = &jb->slot[seq & MASK];
    s->used = true;
    s->seq = seq;
    s->ts = ts;
    s->len = (uint16_t)len;
    if (len > 0)
        memcpy(s->data, payload, len);
    jb->buffered++;
    jb->st.received++;
    if (md_seq_diff(seq, jb->highest) > 0)
        jb->highest = seq;
    if (!jb->playing && (unsigned)md_seq_diff(jb->highest, jb->next_seq) + 1 >= jb->depth)
        jb->playing = true;
}

md_jb_push_t md_jbuf_push(struct md_jbuf *jb, uint16_t seq, uint32_t ts, const uint8_t *payload,
                          size_t len)
{
    if (len > MD_JB_MAX_PAYLOAD) {
        jb->st.too_big++;
        return MD_JB_TOO_BIG;
    }
    if (!jb->anchored) {
        jb->anchored = true;
        jb->next_seq = seq;
        jb->highest = seq;
        jb->fill_ticks = 0;
        store(jb, seq, ts, payload, len);
        return MD_JB_QUEUED;
    }
    int d = md_seq_diff(seq, jb->next_seq);
    if (d >= MD_JB_SLOTS || d < -MD_JB_BACK_JUMP) {
        /* far ahead, or so far behind that the sender restarted its numbering */
        jb->st.resync++;
        md_jbuf_reset(jb);
        jb->anchored = true;
        jb->next_seq = seq;
        jb->highest = seq;
        store(jb, seq, ts, payload, len);
        return MD_JB_RESYNC;
    }
    if (d < 0) {
        /* while filling, an earlier packet moves the start back if it still fits */
        if (!jb->playing && md_seq_diff(jb->highest, seq) < MD_JB_SLOTS) {
            jb->next_seq = seq;
            store(jb, seq, ts, payload, len);
            return MD_JB_QUEUED;
        }
        jb->st.late++;
        return MD_JB_LATE;
    }
    struct md_jb_slot *s = &jb->slot[seq & MASK];
    if (s->used) {
        jb->st.duplicate++;
        return MD_JB_DUPLICATE;
    }
    store(jb, seq, ts, payload, len);
    return MD_JB_QUEUED;
}

md_jb_pop_t md_jbuf_pop(struct md_jbuf *jb, const uint8_t **payload, size_t *len, uint32_t *ts)
{
    if (!jb->playing) {
        if (jb->buffered == 0 || ++jb->fill_ticks < jb->depth)
            return MD_JB_EMPTY;
        jb->playing = true; /* waited long enough: play what we have */
    }
    if (jb->buffered == 0) {
        jb->st.underrun++;
        if (++jb->underrun_run >= MD_JB_SLOTS) {
            md_jbuf_reset(jb);
            return MD_JB_EMPTY;
        }
        return MD_JB_LOST;
    }
    jb->underrun_run = 0;
    uint16_t seq = jb->next_seq++;
    struct md_jb_slot *s = &jb->slot[seq & MASK];
    if (!s->used || s->seq != seq) {
        jb->st.lost++;
        return MD_JB_LOST;
    }
    s->used = false;
    jb->buffered--;
    jb->st.played++;
    *payload = s->data;
    *len = s->len;
    *ts = s->ts;
    return MD_JB_FRAME;
}
