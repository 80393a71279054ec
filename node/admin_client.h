/* The client side of the admin API, for the commands that talk to a running node
 * (`confnode history`, `confnode drain`): one HTTP request to host:port, the whole
 * answer read into memory. libcurl does the HTTP (connect, send, chunked decoding,
 * timeouts); this wrapper fixes the few choices the commands share. */
#ifndef CN_ADMIN_CLIENT_H
#define CN_ADMIN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#define CN_HTTP_MAX_BODY (64u << 20) /* a larger answer is refused */

/* Sends `method path` (GET, or POST with an empty body) to host:port (an IPv4 or
 * IPv6 literal, or "localhost") and waits at most timeout_ms (<= 0: 5000) for the
 * whole answer. No proxy, no redirects. On success *status is the HTTP status,
 * *body the malloc'd, NUL-terminated body (free() it) and *len (when len is not
 * NULL) its length. Returns 0, or -1 with the reason in err[errsz], e.g.
 * "connect 127.0.0.1:8088: Connection refused" or "127.0.0.1:8088: timed out". */
int cn_http_request(const char *host, uint16_t port, const char *method, const char *path,
                    int timeout_ms, int *status, char **body, size_t *len, char *err,
                    size_t errsz);

#endif
