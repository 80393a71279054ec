/* confbench SIP text: building requests and reading responses.
 *
 * The generator reads only what a UAC needs (status, Call-ID, CSeq, To-tag, top Via
 * branch, Contact, Content-Length, body), so it has its own small scanner rather
 * than a full parser: it must stay cheaper than the node it measures. The scanner
 * never allocates and never writes to its input; every string it returns is a
 * (pointer, length) view into the caller's buffer.
 */
#ifndef CB_SIP_H
#define CB_SIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct cb_str {
    const char *s; /* NULL when absent */
    size_t len;
} cb_str_t;

typedef struct cb_sip_msg {
    bool is_request;
    int status;      /* responses: 100..699 */
    cb_str_t method; /* requests: the method token */
    cb_str_t ruri;   /* requests */
    cb_str_t call_id;
    uint32_t cseq;
    cb_str_t cseq_method;
    cb_str_t to_tag;
    cb_str_t from_tag;
    cb_str_t branch; /* top Via's branch parameter */
    cb_str_t via;    /* the first Via header value, whole */
    cb_str_t from;   /* raw header values (for answering requests) */
    cb_str_t to;
    cb_str_t cseq_raw;
    cb_str_t contact_uri; /* the first Contact's URI, without <> */
    cb_str_t content_type;
    long content_length; /* -1 when absent */
    cb_str_t body;       /* Content-Length bytes after the blank line (or the rest) */
} cb_sip_msg_t;

typedef enum {
    CB_SIP_OK = 0,
    CB_SIP_ERR_START = -1,   /* start line is neither a status line nor a request line */
    CB_SIP_ERR_HEADERS = -2, /* no blank line ends the headers */
    CB_SIP_ERR_MISSING = -3, /* no Call-ID, CSeq or Via */
    CB_SIP_ERR_LENGTH = -4,  /* Content-Length malformed or larger than the data */
} cb_sip_status_t;

/* Scans one whole message buf[0..len) (a datagram, or one unit from dp_frame_next)
 * into *m. Returns CB_SIP_OK or a negative cb_sip_status_t; *m is undefined then. */
cb_sip_status_t cb_sip_parse(const char *buf, size_t len, cb_sip_msg_t *m);

/* The value of the first header `name` (or its compact form, 0 for none) among
 * the complete header lines of a possibly truncated message, e.g. the copy of a
 * request an ICMP error quotes. Continuation lines are not joined. */
cb_str_t cb_sip_find_header(const char *buf, size_t len, const char *name, char compact);

/* The route set of the dialog a 2xx creates at a UAC (RFC 3261 §12.1.2): every
 * Record-Route entry of the response buf[0..len) (all header lines, each split at the
 * commas between entries), in reverse order, written into out as one Route header
 * value ("<sip:b;lr>, <sip:a;lr>"). Folded lines become spaces. Returns the number of
 * entries (0: none, out is ""), or -1 when there are more than CB_ROUTE_MAX or out is
 * too small. */
#define CB_ROUTE_MAX 16
int cb_sip_route_set(const char *buf, size_t len, char *out, size_t cap);

/* True when the view equals the NUL-terminated string s (case-insensitive when
 * nocase). */
bool cb_str_eq(cb_str_t v, const char *s, bool nocase);

/* A request to send. Every string must be set unless marked optional. */
typedef struct cb_req {
    const char *method;    /* "INVITE" */
    const char *ruri;      /* "sip:meet@example.test" */
    const char *transport; /* Via token: "UDP", "TCP", "TLS" */
    const char *via_host;  /* sent-by host (IPv6 in brackets) */
    unsigned via_port;
    const char *branch;   /* including the z9hG4bK prefix */
    const char *from_uri; /* "sip:confbench@confbench.invalid" */
    const char *from_tag;
    const char *to_uri;
    const char *to_tag; /* optional */
    const char *call_id;
    uint32_t cseq;
    const char *cseq_method;  /* optional: defaults to method (ACK of a non-2xx uses INVITE's
                                 number with ACK) */
    const char *contact;      /* optional: full URI for Contact */
    const char *content_type; /* optional: with body */
    const char *body;         /* optional */
    size_t body_len;
} cb_req_t;

/* Writes the request into out[0..cap). Returns the length, or -1 if it did not fit. */
ssize_t cb_sip_build_request(char *out, size_t cap, const cb_req_t *r);

/* Writes a response to the request m (status line, its Via, From, To, Call-ID and
 * CSeq, Content-Length: 0). Used to answer requests the far end sends (a BYE or an
 * OPTIONS keep-alive). Returns the length or -1. */
ssize_t cb_sip_build_response(char *out, size_t cap, const cb_sip_msg_t *m, int status,
                              const char *phrase, const char *to_tag);

/* An SDP offer for one audio stream (PCMU, PCMA, telephone-event) at addr:port
 * (addr is IPv4 or IPv6 text). With srtp, the profile is RTP/SAVP and key_b64
 * (40 base64 chars: 16-byte key + 14-byte salt) goes into an
 * AES_CM_128_HMAC_SHA1_80 a=crypto line. Returns the length or -1. */
ssize_t cb_sdp_offer(char *out, size_t cap, const char *addr, unsigned port, uint64_t session_id,
                     bool srtp, const char *key_b64);

/* Reads the audio destination from an SDP answer: the connection address (media
 * level c= before session level), the port of the first m=audio line and its first
 * payload type. Returns 0, or -1 when there is no m=audio line with a port, or no
 * c= line. A port of 0 (stream refused) is returned as such. */
typedef struct cb_sdp_answer {
    char addr[64];
    unsigned port;
    int pt;
    bool savp;
} cb_sdp_answer_t;
int cb_sdp_parse(const char *body, size_t len, cb_sdp_answer_t *a);

/* Base64 (standard alphabet, with padding) of n bytes into out (NUL-terminated).
 * Returns the length or -1 if cap is too small. */
ssize_t cb_base64(const unsigned char *in, size_t n, char *out, size_t cap);

#endif
