/* `confnode history`: the search history of a running node, read from its admin API.
 *
 *   confnode history [-c FILE | --admin HOST:PORT] [--json] [--last N] [--timeout SECONDS]
 *
 * Sends `GET /history?last=N` to the admin API (from -c FILE:
 * admin.listen and admin.port, a wildcard listen address meaning loopback; from
 * --admin an IP literal or "localhost" with a port; default 127.0.0.1:8088) and
 * prints the newest N records (default 20; 0: all), newest first: one block per
 * request with what was searched, the rules tried and their results, the zone, the
 * DNS answers and certificate checks, and the outcome with its ms-diagnostics code.
 * --json prints the document instead (pretty-printed, trimmed to N records).
 *
 * Exit status: 0 when the history was printed, 1 when it could not be fetched or
 * read, 2 on usage errors. */
#ifndef CN_HISTORY_H
#define CN_HISTORY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CN_HISTORY_DEFAULT_LAST 20

/* Prints the /history document `json` to f, human-readable, at most `last` records
 * (0: all). Returns the number printed, or -1 with the reason in err[errsz] when
 * json is not a history document. */
int cn_history_print(FILE *f, const char *json, size_t last, char *err, size_t errsz);

/* The command with its output streams: argv[0] is "history". Returns the exit
 * status. */
int cn_history_run(int argc, char **argv, FILE *out, FILE *errf);

/* The command on stdout and stderr. */
int cn_cmd_history(int argc, char **argv);

#endif
