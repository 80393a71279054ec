/* SDP offer/answer for the node's own endpoints (sofia-sip's SDP parser).
 *
 * Given a caller's offer, builds our answer: the first audio m-line is accepted
 * with the first of the offered codecs we support (PCMU/0, PCMA/8) plus
 * telephone-event when offered; every other m-line is answered with port 0
 * (rejected) as RFC 3264 §6 requires. The answer's c= line and m= port are ours.
 *
 * In detail:
 * - The accepted line is the first audio m-line with a non-zero port, the profile
 *   RTP/AVP and PCMU or PCMA on its static payload type (an a=rtpmap for 0 or 8
 *   must name that codec at 8000 Hz). The codec is the first of the two in the
 *   offer's order; the answer names only that one, plus the offer's
 *   telephone-event/8000 payload type (a=fmtp 0-15) when there is one, then
 *   a=ptime:20 and the direction mirrored: sendonly -> recvonly, recvonly ->
 *   sendonly, inactive -> inactive, otherwise sendrecv (c=0.0.0.0 counts as the
 *   offerer receiving nothing).
 * - Secure RTP is not supported: RTP/SAVP (and SAVPF) lines are rejected, and an
 *   offer whose only audio is secure fails with "Secure RTP (RTP/SAVP) not offered
 *   in a form we accept".
 * - Rejected lines repeat the offer's media, proto and formats with port 0.
 * - The answer is v=, o=, s=, c=, t=0 0 and the m= sections, CRLF line ends; its
 *   o= and c= use IP4 or IP6 after the form of `address`.
 * - Offers over 64 KiB or with a NUL byte are refused. */
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

/* Returns the answer's length written to out[0..outlen) and NUL-terminated (so
 * outlen must leave room for the NUL), or
 * -1 with a reason in `why` ("No common audio codec (offered: 18 97)", "SDP parse
 * error: ...", "No audio stream in offer") that becomes the Warning of a 488; the
 * reason holds no quote, backslash or control character. Thread-safe. */
ssize_t sdp_answer_build(const char *offer, size_t offer_len,
                         const struct sdp_answer_params *p, char *out, size_t outlen,
                         char *why, size_t whylen);

#endif
