/* Internal to control/fed_route*.c: helpers the configuration checks
 * (fed_route_conf.c) share with the router (fed_route.c). Not a public header: users
 * include fed_route.h. */
#ifndef FED_ROUTE_INT_H
#define FED_ROUTE_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "fed_route.h"

/* Writes the message into err (when err is not NULL and errsz not 0); returns -1. */
__attribute__((format(printf, 3, 4))) int fr_fail(char *err, size_t errsz, const char *fmt, ...);
/* True when name is a valid domain name under the fed_name_check() flags. */
bool fr_name_ok(const char *name, unsigned flags);
/* Compiles "^(" pattern ")$" into *re. Returns 0 or a regcomp() error. */
int fr_compile_anchored(regex_t *re, const char *pattern, int flags);

#endif
