/* SIP stream framing (RFC 3261 §18.3, RFC 5626 §3.5.1 keep-alives).
 *
 * On TCP and TLS a SIP message ends Content-Length bytes after the blank line that
 * closes its headers. dp_frame_next() looks at the bytes a connection has buffered
 * and says what the next unit is, without allocating, copying or writing to `buf`.
 * It understands the full and compact header names ("Content-Length", "l"), any
 * letter case, whitespace around the colon, and header lines folded onto
 * continuation lines.
 *
 * Leading CRLFs are keep-alive traffic: "\r\n\r\n" is a ping the caller answers with
 * a single "\r\n" (the pong), a lone "\r\n" is a pong (or stray bytes) and is
 * dropped. */
#ifndef DP_FRAME_H
#define DP_FRAME_H

#include <stddef.h>

typedef enum {
    DP_FRAME_PARTIAL = 0,     /* not enough bytes yet; call again with more */
    DP_FRAME_MESSAGE = 1,     /* one whole message of *len bytes starts at buf */
    DP_FRAME_PING = 2,        /* "\r\n\r\n": consume *len (4) bytes, answer "\r\n" */
    DP_FRAME_PONG = 3,        /* lone "\r\n": consume *len (2) bytes, answer nothing */
    DP_FRAME_TOO_BIG = -1,    /* headers+body exceed max_size: close the connection
                                 (*len is the header length if they were complete,
                                 so a 513 can be built from them, else 0) */
    DP_FRAME_NO_LENGTH = -2,  /* headers complete (*len bytes) but no Content-Length:
                                 answer 400, then close (cannot find the next message) */
    DP_FRAME_BAD_LENGTH = -3, /* Content-Length not a decimal number, repeated with
                                 different values, or overflowing: as above, *len is
                                 the header length */
} dp_frame_result_t;

/* Resumable scan state: zero it for each new message (after a MESSAGE, PING or
 * PONG was consumed) and pass the same one on each call for that message, so
 * bytes already scanned are not scanned again (slowloris defence). */
typedef struct dp_frame_state {
    size_t scanned;  /* scan progress, opaque to callers: bytes known not to hold
                        the end of the headers or, once they ended, the length of
                        the message whose body is still arriving */
} dp_frame_state_t;

/* Classifies the bytes at the start of buf[0..avail).
 * max_size: the largest message accepted (headers + body).
 * Returns a dp_frame_result_t; *len is set for every result other than PARTIAL. */
dp_frame_result_t dp_frame_next(const char *buf, size_t avail, size_t max_size,
                                dp_frame_state_t *st, size_t *len);

#endif
