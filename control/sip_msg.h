/* The SIP message wrapper: sofia-sip behind a small API of our own.
 *
 * Parsing never touches the caller's buffer (sofia-sip parses a private copy) and
 * every string handed back is a (pointer, length) view into the parsed message,
 * valid until sip_msg_free(). The wrapper is the one place that knows sofia-sip's
 * msg_t/sip_t, so it can be fuzzed on its own and swapped later.
 *
 * Responses are printed from the raw text of the request's own Via, From, To,
 * Call-ID and CSeq values, so they match the request byte for byte where RFC 3261
 * §8.2.6.2 wants them copied (names are printed in full form, folded values on
 * one line). */
#ifndef SIP_MSG_H
#define SIP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sip_str {
    const char *s;   /* NULL when absent */
    size_t len;
} sip_str_t;

typedef enum {
    SIP_METHOD_UNKNOWN = 0,
    SIP_METHOD_INVITE,
    SIP_METHOD_ACK,
    SIP_METHOD_CANCEL,
    SIP_METHOD_BYE,
    SIP_METHOD_OPTIONS,
    SIP_METHOD_REGISTER,
    SIP_METHOD_INFO,
    SIP_METHOD_PRACK,
    SIP_METHOD_UPDATE,
    SIP_METHOD_MESSAGE,
    SIP_METHOD_SUBSCRIBE,
    SIP_METHOD_NOTIFY,
    SIP_METHOD_REFER,
    SIP_METHOD_PUBLISH,
} sip_method_t;

typedef enum {
    SIP_MSG_OK = 0,
    SIP_MSG_ERR_SYNTAX = -1,   /* start line or a header could not be parsed */
    SIP_MSG_ERR_MISSING = -2,  /* a mandatory header is missing (Via, From, To,
                                  Call-ID, CSeq; Max-Forwards is optional) */
    SIP_MSG_ERR_INVALID = -3,  /* parsed, but inconsistent: CSeq method differs from
                                  the request method, Content-Length larger than the
                                  body, unsupported SIP version */
    SIP_MSG_ERR_NOMEM = -4,
} sip_msg_status_t;

typedef struct sip_msg sip_msg_t;

/* Parses one whole message (a datagram, or a unit framed by dp_frame_next()).
 * On SIP_MSG_OK *out is the message. On an error, `why` gets a short reason for a
 * Warning header ("Missing Call-ID header", "Bad CSeq header", ...) and *out is
 * still set when enough was parsed to answer (sip_msg_can_respond()); the caller
 * frees it. `why` may be NULL.
 * Refused unparsed (SIP_MSG_ERR_SYNTAX, *out NULL): more than 256 header lines, or
 * more than 128 commas on one header line (bounds on the parser's cost). */
sip_msg_status_t sip_msg_parse(const char *buf, size_t len, sip_msg_t **out, char *why,
                               size_t whylen);

/* Accepts NULL. */
void sip_msg_free(sip_msg_t *m);

/* Records the address the message came from (an IP literal without brackets, and
 * the port). The top Via of every response and forward built from it then gets
 * what RFC 3261 §18.2.1 and RFC 3581 ask of the receiving transport:
 * ";received=<ip>" when the sent-by host is not that address (or the Via has an
 * empty rport), and an empty ";rport" filled with the port. A Via that already has
 * a received parameter is left alone. An ip that is NULL, empty or too long
 * records nothing. */
void sip_msg_set_source(sip_msg_t *m, const char *ip, uint16_t port);

bool sip_msg_is_request(const sip_msg_t *m);
/* True when the message is a request other than ACK (which gets no response) and
 * every Via header parsed, so a response can be built even for a request that
 * failed validation (a 400 for a missing Call-ID, RFC 4475 §3.3.1). Any of
 * From, To, Call-ID and CSeq that is missing or broken is left out of it. */
bool sip_msg_can_respond(const sip_msg_t *m);

/* Requests */
sip_method_t sip_msg_method(const sip_msg_t *m);
sip_str_t sip_msg_method_name(const sip_msg_t *m);
sip_str_t sip_msg_ruri_user(const sip_msg_t *m);   /* user part of the Request-URI */
sip_str_t sip_msg_ruri_host(const sip_msg_t *m);
/* Responses */
int sip_msg_status(const sip_msg_t *m);

/* Headers */
sip_str_t sip_msg_call_id(const sip_msg_t *m);
sip_str_t sip_msg_from_tag(const sip_msg_t *m);
sip_str_t sip_msg_to_tag(const sip_msg_t *m);
sip_str_t sip_msg_from_user(const sip_msg_t *m);
sip_str_t sip_msg_from_host(const sip_msg_t *m);
sip_str_t sip_msg_via_branch(const sip_msg_t *m);   /* top Via's branch */
sip_str_t sip_msg_via_host(const sip_msg_t *m);     /* top Via's sent-by host */
sip_str_t sip_msg_via_port(const sip_msg_t *m);     /* top Via's sent-by port, may be absent */
uint32_t sip_msg_cseq(const sip_msg_t *m);
sip_method_t sip_msg_cseq_method(const sip_msg_t *m);
int sip_msg_max_forwards(const sip_msg_t *m);       /* -1 when absent */
sip_str_t sip_msg_content_type(const sip_msg_t *m); /* "application/sdp", ... */
sip_str_t sip_msg_body(const sip_msg_t *m);
/* Raw value of the first header with this name (full or compact), for anything
 * without an accessor: "Contact", "Supported", "ms-diagnostics", ... The value is
 * the text after the colon, trimmed; a folded value keeps its inner line breaks. */
sip_str_t sip_msg_header(const sip_msg_t *m, const char *name);

/* Builds a response to `req` into out[0..outlen): status line; the request's Via
 * (all of them, in order; the top one amended as sip_msg_set_source() says), From,
 * To (with ";tag=<to_tag>" added when the request's
 * To has no tag and to_tag is not NULL), Call-ID and CSeq, each as far as the
 * request has it (see sip_msg_can_respond()); for a 101..299 response to a request
 * without a To-tag (one that may create a dialog), the request's Record-Route lines
 * as received (RFC 3261 §12.1.1); then
 * `extra_headers` verbatim (each line ending in CRLF; may be NULL), a
 * "Server: confnode/<version>" header, Content-Type when body_type is not NULL,
 * Content-Length, the blank line and the body.
 * Returns the length written, or -1 if it did not fit or req cannot be answered. */
ssize_t sip_msg_build_response(const sip_msg_t *req, int status, const char *phrase,
                               const char *to_tag, const char *extra_headers,
                               const char *body_type, const char *body, size_t body_len,
                               char *out, size_t outlen);

/* The standard reason phrase for a status code ("OK", "Not Found", ...). */
const char *sip_msg_phrase(int status);

/* ---- proxying: URIs, Via values and forwarding builders ----
 * Every view points into the parsed message and is valid until sip_msg_free(). */

/* A sip: or sips: URI (the Request-URI, a Route value). */
typedef struct sip_uri {
    bool sips;
    sip_str_t user, host, port; /* host as written: an IPv6 reference keeps its [] */
    sip_str_t transport, maddr; /* uri-parameters, {NULL,0} when absent */
    bool lr;
} sip_uri_t;

/* The Request-URI of a request. Returns 0, or -1 when m is no request or its URI is
 * not sip/sips. */
int sip_msg_ruri(const sip_msg_t *m, sip_uri_t *out);
/* The Request-URI as written on the request line. */
sip_str_t sip_msg_ruri_text(const sip_msg_t *m);

/* Route values, counted one per URI even when a line holds several. */
size_t sip_msg_route_count(const sip_msg_t *m);
/* The i-th Route value (0 = topmost). Returns 0, or -1 when there is none or it is
 * not a sip/sips URI. */
int sip_msg_route(const sip_msg_t *m, size_t i, sip_uri_t *out);

/* A Via value. */
typedef struct sip_via_info {
    sip_str_t transport; /* "UDP", "TCP", "TLS", ... (the last part of sent-protocol) */
    sip_str_t host, port, branch, received, rport, maddr;
} sip_via_info_t;

/* The i-th Via value (0 = topmost). Returns 0, or -1 when there is none. */
int sip_msg_via(const sip_msg_t *m, size_t i, sip_via_info_t *out);

/* The size of the message as received (start line, headers, blank line, body). */
size_t sip_msg_wire_len(const sip_msg_t *m);

/* How sip_msg_build_forward() changes a message on its way through. Strings must
 * hold no CR or LF. */
struct sip_msg_fwd {
    const char *ruri;         /* request: the new Request-URI; NULL keeps it */
    const char *via;          /* request: a Via value put above all others; NULL: none */
    const char *record_route; /* request: a Record-Route value put above all others */
    size_t pop_routes;        /* request: Route values removed from the top */
    int max_forwards;         /* request: the Max-Forwards value written (the header is
                                 added when absent); -1 keeps it as received */
    bool pop_via;             /* response: the topmost Via value is removed */
};

/* Prints m changed by f into out[0..outlen): the start line (with f->ruri for a
 * request), our Via and Record-Route, then every header line as received, in order,
 * except the Route and Via values removed (a line that held other values too is
 * printed again with what is left), Max-Forwards (rewritten) and Content-Length
 * (written last, from the body's length); then the body. Other lines, folded ones
 * and headers we do not know included, are copied byte for byte (line ends made
 * CRLF). Returns the length, or -1 when it did not fit or f is not usable. */
ssize_t sip_msg_build_forward(const sip_msg_t *m, const struct sip_msg_fwd *f, char *out,
                              size_t outlen);

/* A CANCEL for the request `req` (RFC 3261 §9.1): req's Request-URI, its topmost Via,
 * Route lines, From, To, Call-ID, CSeq number with method CANCEL, Max-Forwards: 70,
 * no body. `req` is the request as we sent it. Returns the length or -1. */
ssize_t sip_msg_build_cancel(const sip_msg_t *req, char *out, size_t outlen);

/* The ACK for a non-2xx final response `resp` to the INVITE `req` (RFC 3261
 * §17.1.1.3): like the CANCEL, with method ACK and the To of the response. */
ssize_t sip_msg_build_ack(const sip_msg_t *req, const sip_msg_t *resp, char *out,
                          size_t outlen);

#endif
