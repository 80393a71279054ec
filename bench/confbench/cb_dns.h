/* confbench target resolution, the way a federated edge finds a SIP domain.
 *
 * HOST:PORT  -> HOST's A/AAAA records (or the literal address), PORT.
 * DOMAIN     -> SRV <prefix>.DOMAIN (prefix per transport, cb_srv_prefix()); the
 *               records of the lowest priority, highest weight first; then every
 *               A/AAAA address of every such target, each with the SRV port.
 * All addresses are kept so the load can be spread round-robin over them (a
 * round-robin A name holding every node of a cluster).
 *
 * Runs once at start-up, before the load threads exist; blocking is fine here. The
 * look-ups go to --dns HOST:PORT when given, else to the system's resolvers.
 */
#ifndef CB_DNS_H
#define CB_DNS_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cb_opts.h"

typedef struct cb_addr {
    struct sockaddr_storage sa;
    socklen_t len;
    char text[80];  /* "127.0.0.1:5061", "[::1]:5061" */
    char host[256]; /* the name it came from (SRV target or HOST), "" for a literal */
} cb_addr_t;

/* Resolves o->target into *out (malloc'ed array, *n entries, at least one on
 * success). Returns 0, or -1 with a message that names the record and the server
 * in err. Time is bounded by timeout_ms. */
int cb_resolve(const cb_opts_t *o, unsigned timeout_ms, cb_addr_t **out, unsigned *n, char *err,
               size_t errlen);

/* Formats an address as "IP:PORT" / "[IPv6]:PORT". */
void cb_addr_format(const struct sockaddr *sa, char *out, size_t cap);

#endif
