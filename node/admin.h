/* Admin HTTP API on loopback (libmicrohttpd, JSON by json-c).
 *
 *   GET /status   JSON: version, node, uptime, per-worker gauges and counters, totals
 *   GET /metrics  Prometheus text exposition (confnode_* metrics, label worker="N")
 *   GET /history  JSON: the search history (fed_history_render_json), newest first;
 *                 ?last=N keeps the newest N records (0 or absent: all)
 *   POST /drain   drain the node (cn_admin_on_drain): JSON {"draining": true,
 *                 "already": b, "calls": n, "left": b}; 503 when no callback is set
 *   anything else 404
 *
 * Runs inside the control thread: no thread of its own. The control loop waits on
 * cn_admin_fd() (an epoll fd that becomes readable when there is work) and calls
 * cn_admin_run() then; requests are answered from a cn_snapshot taken per request.
 * The wait must not be longer than cn_admin_timeout_ms(): libmicrohttpd sometimes has
 * work pending that the fd does not show (idle connections to time out, requests
 * left half-processed), and only a cn_admin_run() call gets it done.
 *
 *     epoll_ctl(ep, EPOLL_CTL_ADD, cn_admin_fd(a), &(struct epoll_event){.events = EPOLLIN});
 *     for (;;) {
 *         epoll_wait(ep, evs, n, cn_admin_timeout_ms(a));
 *         cn_admin_run(a);   // cheap when there is nothing to do
 *     }
 *
 * Every function is called from that one thread, except the renderers (pure). */
#ifndef CN_ADMIN_H
#define CN_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "snapshot.h"

struct cn_admin;

/* Starts listening on conf->listen (an IPv4 or IPv6 literal) and conf->port; port 0
 * binds a free port that cn_admin_port() reports (the caller does not start the
 * server at all when the configuration turns admin HTTP off). fn(arg, snap) is called
 * on the control thread for every /status and /metrics request with a zeroed
 * snapshot to fill. Returns NULL with a reason in err ("admin 127.0.0.1:8088: Address
 * already in use", "admin [::1]:8088: ...") on failure. */
struct cn_admin *cn_admin_start(const struct admin_conf *conf, cn_snapshot_fn fn, void *arg,
                                char *err, size_t errlen);
/* The epoll fd to wait on (readable when there is work); -1 for NULL. */
int cn_admin_fd(const struct cn_admin *a);
/* The port actually bound (useful after port 0); -1 for NULL. */
int cn_admin_port(const struct cn_admin *a);
/* The longest the caller may wait before calling cn_admin_run(): milliseconds
 * (0 = call it now), or -1 when no timer is pending (wait for the fd alone).
 * Suitable as the epoll_wait() timeout as is. -1 for NULL. */
int cn_admin_timeout_ms(struct cn_admin *a);
/* Accepts connections and serves requests that are ready; never blocks (other than
 * in the snapshot callback). Accepts NULL. */
void cn_admin_run(struct cn_admin *a);
/* Accepts NULL. */
void cn_admin_stop(struct cn_admin *a);

/* What a drain request did, for the answer to POST /drain. */
struct cn_drain_result {
    bool already;   /* the node was draining before this request */
    uint64_t calls; /* calls still up: the node leaves the registry when none is left */
    bool left;      /* it has left the cluster registry already */
};
/* Drains the node (called on the control thread for each POST /drain). */
typedef void (*cn_drain_fn)(void *arg, struct cn_drain_result *out);
/* Registers the drain callback (NULL: POST /drain answers 503). Accepts a NULL a. */
void cn_admin_on_drain(struct cn_admin *a, cn_drain_fn fn, void *arg);

struct fed_history;
/* The search history GET /history serves (NULL: an empty one); it must outlive a.
 * Accepts a NULL a. */
void cn_admin_set_history(struct cn_admin *a, const struct fed_history *h);

/* Renderers, exposed for tests: write into a malloc'd string the caller frees; NULL
 * when out of memory or s is NULL. n_workers beyond CN_MAX_WORKERS is taken as
 * CN_MAX_WORKERS. */
char *cn_admin_render_status(const struct cn_snapshot *s);
char *cn_admin_render_metrics(const struct cn_snapshot *s);

#endif
