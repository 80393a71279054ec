/* TLS termination with OpenSSL 3: one server context shared by all workers.
 *
 * SSL_CTX is built once at boot from struct dp_tls_conf and is read-only after
 * that (OpenSSL's session cache and ticket keys are internally synchronised), so
 * every worker creates its SSL objects from it without locks of ours. Each SSL
 * object belongs to the worker that accepted its connection. */
#ifndef DP_TLS_H
#define DP_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "dp_conf.h"

/* Builds the server context. Returns NULL with a message naming the config field
 * and the OpenSSL reason in err ("tls.certificate /x/node.crt: No such file or
 * directory", "tls.key does not match tls.certificate", ...). */
SSL_CTX *dp_tls_server_ctx(const struct dp_tls_conf *conf, char *err, size_t errlen);

/* Builds the client context for outbound connections: the same certificate and key
 * (federation is mutual TLS), peer chains verified against tls.ca, host names
 * checked without wildcards. Returns NULL with a reason in err. */
SSL_CTX *dp_tls_client_ctx(const struct dp_tls_conf *conf, char *err, size_t errlen);

/* Describes the last OpenSSL error of this thread (and clears the queue). */
const char *dp_tls_last_error(char *buf, size_t len);

#endif
