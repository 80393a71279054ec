/* The control thread's side of control: requests from workers that wait on the
 * outside world (today: where a room's conference lives, from the cluster store).
 * Owner: the control thread. The store's callbacks answer the asking worker
 * through `post` (a ring), never by touching worker state. */
#ifndef CTL_CENTRAL_H
#define CTL_CENTRAL_H

#include "cl_store.h"
#include "fed_dns.h"

struct ctl_central;

/* post: hands msg to worker w (0, or -1 when its ring is full: central frees msg). */
struct ctl_central *ctl_central_create(struct cl_store *store,
                                       int (*post)(void *io, unsigned w, void *msg), void *io);
void ctl_central_free(struct ctl_central *c);

/* The resolver for federation LOCATE requests (owned by the caller, driven by the
 * control loop); NULL: LOCATE is answered 503. */
void ctl_central_set_dns(struct ctl_central *c, fed_dns_t *dns);

/* A message a worker sent to the control thread (takes it). */
void ctl_central_on_msg(struct ctl_central *c, unsigned worker, void *msg);

#endif
