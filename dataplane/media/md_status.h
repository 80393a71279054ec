/* Status codes of the media library (dataplane/media, prefix md_).
 *
 * One enum for every md_ module: MD_OK is 0, errors are negative, so functions that
 * produce a length return it as a non-negative int and an md_status_t otherwise.
 * Each function's contract lists the codes it can return. */
#ifndef MD_STATUS_H
#define MD_STATUS_H

typedef enum md_status {
    MD_OK = 0,
    MD_ERR_TRUNCATED = -1,   /* the input ends before what its headers announce */
    MD_ERR_VERSION = -2,     /* RTP/RTCP version is not 2 */
    MD_ERR_MALFORMED = -3,   /* structurally invalid (bad length field, bad syntax) */
    MD_ERR_NOSPACE = -4,     /* the output buffer is too small */
    MD_ERR_PARAM = -5,       /* invalid argument (caller bug) */
    MD_ERR_UNSUPPORTED = -6, /* valid but not handled (unknown suite, session param) */
    MD_ERR_AUTH = -7,        /* SRTP/SRTCP authentication tag did not verify */
    MD_ERR_REPLAY = -8,      /* SRTP/SRTCP packet index already seen or too old */
    MD_ERR_CRYPTO = -9,      /* any other failure of the crypto library */
    MD_ERR_CODEC = -10,      /* the codec library refused the frame */
    MD_ERR_NOMEM = -11,      /* allocation failed (setup paths only) */
    MD_ERR_FULL = -12,       /* a fixed-size table has no free slot */
} md_status_t;

/* A short constant English name for a status ("truncated", "auth", ...). */
const char *md_status_str(int status);

#endif
