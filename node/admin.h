/* Admin HTTP API on loopback (libmicrohttpd, JSON by json-c).
 *
 *   GET /status   JSON: version, node, uptime, per-worker gauges and counters, totals
 *   GET /metrics  Prometheus text exposition (confnode_* metrics, label worker="N")
 *   anything else 404
 *
 * Runs inside the control thread: no thread of its own. The control loop waits on
 * cn_admin_fd() (an epoll fd that becomes readable when there is work) and calls
 * cn_admin_run() then; requests are answered from a cn_snapshot taken per request. */
#ifndef CN_ADMIN_H
#define CN_ADMIN_H

#include <stddef.h>

#include "config.h"
#include "snapshot.h"

struct cn_admin;

/* Starts listening. Returns NULL with a reason in err ("admin.port 8088: Address
 * already in use") on failure. */
struct cn_admin *cn_admin_start(const struct admin_conf *conf, cn_snapshot_fn fn, void *arg,
                                char *err, size_t errlen);
int cn_admin_fd(const struct cn_admin *a);
void cn_admin_run(struct cn_admin *a);
/* Accepts NULL. */
void cn_admin_stop(struct cn_admin *a);

/* Renderers, exposed for tests: write into a malloc'd string the caller frees. */
char *cn_admin_render_status(const struct cn_snapshot *s);
char *cn_admin_render_metrics(const struct cn_snapshot *s);

#endif
