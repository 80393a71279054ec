/* Per-participant jitter buffer: a fixed ring of preallocated slots, reordering by
 * RTP sequence number, one 20 ms frame per packet.
 *
 * Playout starts once `depth` frames' worth of sequence space has arrived (or after
 * `depth` ticks with something buffered); then every tick pops the next sequence
 * number. A frame missing while later ones are buffered is LOST (the caller conceals
 * it) and skipped; when nothing at all is buffered the tick is an underrun: it is
 * concealed too, but the playout point does not move, so a sender that paused (DTX,
 * hold) resumes without its packets counting as late. After MD_JB_SLOTS underruns in
 * a row the buffer stops and re-anchors on the next packet.
 *
 * No allocation: the struct holds every slot. Owner: the worker of the leg. */
#ifndef MD_JBUF_H
#define MD_JBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MD_JB_SLOTS 8         /* ring size (a power of two): 160 ms of audio */
#define MD_JB_MAX_PAYLOAD 320 /* G.711 is 160; Opus 20 ms at up to 128 kbit/s */
#define MD_JB_DEFAULT_DEPTH 3 /* 60 ms of buffering before playout */
#define MD_JB_BACK_JUMP 100   /* a packet this many frames behind restarts the buffer */

typedef enum md_jb_push {
    MD_JB_QUEUED = 0,
    MD_JB_LATE,      /* its playout time has passed: dropped */
    MD_JB_DUPLICATE, /* already buffered: dropped */
    MD_JB_TOO_BIG,   /* payload larger than MD_JB_MAX_PAYLOAD: dropped */
    MD_JB_RESYNC,    /* too far ahead, or more than MD_JB_BACK_JUMP behind (the sender
                        restarted its numbering): flushed and re-anchored on it */
} md_jb_push_t;

typedef enum md_jb_pop {
    MD_JB_FRAME = 0, /* a frame to decode */
    MD_JB_LOST,      /* conceal this tick (missing frame or underrun) */
    MD_JB_EMPTY,     /* not playing: nothing to conceal, the participant is silent */
} md_jb_pop_t;

struct md_jb_stats {
    uint64_t received; /* queued packets */
    uint64_t played;
    uint64_t late;
    uint64_t duplicate;
    uint64_t too_big;
    uint64_t lost;     /* skipped sequence numbers */
    uint64_t underrun; /* ticks with nothing buffered while playing */
    uint64_t resync;
};

struct md_jb_slot {
    bool used;
    uint16_t seq;
    uint16_t len;
    uint32_t ts;
    uint8_t data[MD_JB_MAX_PAYLOAD];
};

struct md_jbuf {
    struct md_jb_slot slot[MD_JB_SLOTS];
    unsigned depth;
    bool anchored; /* next_seq is meaningful */
    bool playing;
    uint16_t next_seq; /* next sequence number to play */
    uint16_t highest;  /* highest sequence number buffered or played */
    unsigned buffered;
    unsigned fill_ticks;
    unsigned underrun_run;
    struct md_jb_stats st;
};

/* depth: frames buffered before playout, 1..MD_JB_SLOTS-1 (0 = default). */
void md_jbuf_init(struct md_jbuf *jb, unsigned depth);
/* Forgets every frame and the anchor; keeps the depth and the counters. */
void md_jbuf_reset(struct md_jbuf *jb);

/* Queues a copy of one packet's payload. */
md_jb_push_t md_jbuf_push(struct md_jbuf *jb, uint16_t seq, uint32_t ts, const uint8_t *payload,
                          size_t len);

/* One tick. On MD_JB_FRAME, *payload, *len and *ts describe the frame; the view stays
 * valid until the next push or pop. */
md_jb_pop_t md_jbuf_pop(struct md_jbuf *jb, const uint8_t **payload, size_t *len, uint32_t *ts);

#endif
