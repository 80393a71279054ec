/* `confnode drain`: puts a running node in maintenance, through its admin API.
 *
 *   confnode drain [-c FILE | --admin HOST:PORT] [--wait SECONDS] [--timeout SECONDS]
 *
 * Sends `POST /drain` over plain HTTP/1.0 to the admin API (from -c FILE: admin.listen
 * and admin.port, a wildcard listen address meaning loopback; from --admin an IP
 * literal or "localhost" with a port; default 127.0.0.1:8088). The node then takes no
 * new conferences, keeps its calls until they end, and leaves the cluster registry
 * when none is left (SIGUSR2 does the same). Prints what the node answered: whether
 * it was draining already, how many calls are still up, whether it has left.
 * --wait SECONDS then polls `GET /status` until the node has left the registry.
 *
 * Exit status: 0 when the node is draining (with --wait: has left), 1 when it could
 * not be reached, refused, or (--wait) had not left in time, 2 on usage errors. */
#ifndef CN_DRAIN_H
#define CN_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The node's answer to POST /drain. */
struct cn_drain_answer {
    bool already;   /* it was draining before */
    uint64_t calls; /* calls still up */
    bool left;      /* out of the cluster registry already */
};

/* Parses the JSON body of a POST /drain answer into a. Never modifies json. Returns
 * 0, or -1 with the reason in err[errsz] when json is not such an answer. */
int cn_drain_parse(const char *json, struct cn_drain_answer *a, char *err, size_t errsz);

/* Parses "IP:port", "[IPv6]:port" or "localhost:port" into host (an IP literal,
 * "localhost" becoming 127.0.0.1) and port. Never modifies s. Returns 0 or -1. */
int cn_drain_parse_admin(const char *s, char *host, size_t hostlen, uint16_t *port);

/* The command with its output streams: argv[0] is "drain". Returns the exit status. */
int cn_drain_run(int argc, char **argv, FILE *out, FILE *errf);

/* The command on stdout and stderr. */
int cn_cmd_drain(int argc, char **argv);

#endif
