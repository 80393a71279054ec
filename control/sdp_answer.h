/* SDP offer/answer for the node's own endpoints (sofia-sip's SDP parser).
 *
 * Given a caller's offer, builds our answer: the first audio m-line is accepted
 * with the first of the offered codecs we support (PCMU/0, PCMA/8) plus
 * telephone-event when offered; every other m-line is answered with port 0
 * (rejected) as RFC 3264 §6 requires. The answer's c= line and m= port are ours. */
#ifndef SDP_ANSWER_H
#define SDP_ANSWER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct sdp_answer_params {
    const char *address;     /* our media IP address (IPv4 or IPv6 literal) */
    uint16_t audio_port;     /* our RTP port (even); RTCP is port + 1 */
    uint64_t session_id;     /* o= session id and version */
    const char *username;    /* o= username, e.g. "confnode" */
};

/* Returns the answer's length written to out[0..outlen), or -1 with a reason in
 * `why` ("No common audio codec (offered: 18 97)", "SDP parse error: ...",
 * "No audio stream in offer") that becomes the Warning of a 488. */
ssize_t sdp_answer_build(const char *offer, size_t offer_len,
                         const struct sdp_answer_params *p, char *out, size_t outlen,
                         char *why, size_t whylen);

#endif
