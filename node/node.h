/* The running node: dataplane workers, per-worker control, the control thread
 * (signals, admin HTTP), in that order up and in reverse order down. */
#ifndef CN_NODE_H
#define CN_NODE_H

#include "config.h"

/* Runs the node in the foreground until SIGINT/SIGTERM. Returns the process exit
 * status: 0 after a clean stop, 1 when it could not start (the reason is logged). */
int cn_node_run(const struct cn_config *cfg);

#endif
