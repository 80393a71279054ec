/* SRTP/SRTCP per direction on libsrtp2 (RFC 3711, RFC 7714 for the AEAD suites).
 *
 * One md_srtp per participant and direction: the inbound context unprotects what the
 * participant sends us (keys from its a=crypto line), the outbound one protects what
 * we send it (keys from our answer). A context accepts any SSRC (libsrtp2 templates
 * ssrc_any_inbound / ssrc_any_outbound), so the audio, the video and the switched
 * video streams of one leg share it. Replay protection is on (window of 128 packets,
 * or the peer's WSH when larger).
 *
 * Ownership: a context belongs to the worker that owns the leg; it is not shared
 * between threads. md_srtp_global_init() runs once at boot, before any worker starts.
 *
 * Buffers: protect works in place and appends the authentication tag (and MKI), so
 * the buffer must have MD_SRTP_MAX_TRAILER bytes of room after the packet. */
#ifndef MD_SRTP_H
#define MD_SRTP_H

#include <stddef.h>
#include <stdint.h>

#include "md_sdes.h"
#include "md_status.h"

/* Tag (16) + SRTCP index (4) + MKI (4): enough for every supported suite. */
#define MD_SRTP_MAX_TRAILER 24

typedef enum md_srtp_dir { MD_SRTP_INBOUND = 0, MD_SRTP_OUTBOUND = 1 } md_srtp_dir_t;

struct md_srtp;

/* Initialises libsrtp2 at boot, before the workers start (a second call does
 * nothing). Returns MD_OK or MD_ERR_CRYPTO. */
md_status_t md_srtp_global_init(void);
void md_srtp_global_shutdown(void);

/* Whether the linked libsrtp2 can create a context for the suite (the AEAD suites
 * depend on the crypto backend libsrtp2 was built with). */
int md_srtp_suite_supported(md_srtp_suite_t suite);

/* Creates a context for one direction from the keys of an a=crypto line.
 * Returns MD_OK, MD_ERR_PARAM (bad key length, bad direction), MD_ERR_UNSUPPORTED
 * (suite not available in this libsrtp2), MD_ERR_NOMEM or MD_ERR_CRYPTO. */
md_status_t md_srtp_create(struct md_srtp **out, const struct md_crypto *keys, md_srtp_dir_t dir);

/* Frees the context (NULL is accepted) and wipes its keys. */
void md_srtp_free(struct md_srtp *ctx);

/* Protects the RTP packet pkt[0..*len) in place (outbound context). cap is the size
 * of the buffer; on MD_OK *len is the SRTP length. Returns MD_OK, MD_ERR_NOSPACE
 * (cap < *len + MD_SRTP_MAX_TRAILER), MD_ERR_TRUNCATED (shorter than an RTP header),
 * MD_ERR_REPLAY (this index was already protected) or MD_ERR_CRYPTO. */
md_status_t md_srtp_protect(struct md_srtp *ctx, uint8_t *pkt, size_t *len, size_t cap);

/* Unprotects the SRTP packet pkt[0..*len) in place (inbound context); on MD_OK *len
 * is the RTP length. Returns MD_OK, MD_ERR_AUTH (tag mismatch: count it, drop the
 * packet), MD_ERR_REPLAY (duplicate or older than the window), MD_ERR_TRUNCATED or
 * MD_ERR_CRYPTO. The packet is unspecified after an error. */
md_status_t md_srtp_unprotect(struct md_srtp *ctx, uint8_t *pkt, size_t *len);

/* The same for compound RTCP packets (SRTCP). */
md_status_t md_srtp_protect_rtcp(struct md_srtp *ctx, uint8_t *pkt, size_t *len, size_t cap);
md_status_t md_srtp_unprotect_rtcp(struct md_srtp *ctx, uint8_t *pkt, size_t *len);

#endif
