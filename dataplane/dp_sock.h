/* Listening sockets. Every worker binds its own SO_REUSEPORT socket to the same
 * address, so the kernel spreads datagrams (by 4-tuple, so a peer's retransmissions
 * reach the same worker) and new connections across workers. */
#ifndef DP_SOCK_H
#define DP_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Parses an IPv4/IPv6 literal and port into ss. Returns 0 or -1. */
int dp_sock_addr(const char *ip, uint16_t port, struct sockaddr_storage *ss, socklen_t *len);

/* Checks that nothing else holds ip:port for this socket type (SOCK_DGRAM or
 * SOCK_STREAM), by binding once without SO_REUSEPORT: another process's
 * SO_REUSEPORT socket would otherwise silently share our traffic.
 * Returns 0, or -1 with "udp 127.0.0.1:5060: Address already in use" in err. */
int dp_sock_probe(int type, const char *ip, uint16_t port, char *err, size_t errlen);

/* A non-blocking SO_REUSEPORT socket bound to ip:port (listening, for streams).
 * Returns the fd, or -1 with a reason in err. */
int dp_sock_listen(int type, const char *ip, uint16_t port, char *err, size_t errlen);

/* "127.0.0.1:5060" / "[::1]:5060" */
const char *dp_sock_ntop(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif
