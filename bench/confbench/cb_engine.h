/* confbench load engine: worker threads, transports, SIP user-agent client.
 *
 * DESIGN
 * One event loop per thread (epoll, non-blocking sockets). A thread owns its
 * sockets, connections, calls and timers; threads share only the read-only setup
 * (options, target addresses, SSL_CTX), a few control atomics written by the main
 * thread (rate, stop, quit), and their cb_counters_t, which the main thread reads.
 *
 * Calls live in a fixed pool per thread (--max-calls / threads slots). A call's
 * Call-ID carries its thread, slot and generation ("cb<T>.<slot>.<gen>.<random>"),
 * so a response finds its call without a table, and a late response to a finished
 * call (older generation) is counted as stray, never misapplied.
 *
 * Timers are a binary heap per thread with lazy cancellation: every entry carries
 * the sequence number its object had when it was armed; re-arming or freeing the
 * object bumps the number, and stale entries are dropped when they come up.
 *
 * UDP: one socket per source address per thread, unconnected, with IP_RECVERR: an
 * ICMP port-unreachable comes back with the request that caused it, whose Call-ID
 * names the call to fail. Requests are retransmitted per RFC 3261 (Timer A/E from
 * T1 doubling, non-INVITE capped at T2, Timer B/F = --timeout).
 * TCP/TLS: --conns connections per thread (calls spread round-robin), or one per call
 * (--conn-per-call); each connection has its own source address from --bind in
 * turn and a target address in turn. Streams are framed with dp_frame_next().
 */
#ifndef CB_ENGINE_H
#define CB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>

#include "cb_dns.h"
#include "cb_opts.h"
#include "cb_stats.h"

typedef struct cb_engine cb_engine_t;

/* Prepares everything that can fail before the load starts: TLS context (CA,
 * client certificate), source addresses, UDP sockets, epoll instances, pools.
 * Takes a copy of the addresses. Returns NULL with a reason in err. */
cb_engine_t *cb_engine_new(const cb_opts_t *o, const cb_addr_t *targets, unsigned ntargets,
                           char *err, size_t errlen);

/* Starts the worker threads with launching paused (rate 0). Returns 0 or -1. */
int cb_engine_start(cb_engine_t *e, char *err, size_t errlen);

/* Sets the launch rate (all threads together, per second); 0 pauses launching.
 * Each thread restarts its pacing from now. */
void cb_engine_set_rate(cb_engine_t *e, double rate);

/* True when every thread has acted on the last cb_engine_set_rate() (threads are
 * woken through an eventfd): after a rate of 0 is applied, no new call starts. */
bool cb_engine_rate_applied(const cb_engine_t *e);

/* True when every thread has launched its share of --count. */
bool cb_engine_count_reached(const cb_engine_t *e);

/* Adds every thread's counters into *total (zero it first). */
void cb_engine_snapshot(const cb_engine_t *e, cb_counters_t *total);

/* Stops the threads: calls still in progress are abandoned (counted as active).
 * Then joins them. */
void cb_engine_stop(cb_engine_t *e);

/* The first message recorded for a failure reason ("" when none). Read after
 * cb_engine_stop(). */
const char *cb_engine_message(const cb_engine_t *e, cb_fail_t reason);

/* Accepts NULL. Stops the threads first if needed. */
void cb_engine_free(cb_engine_t *e);

#endif
