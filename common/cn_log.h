/* Structured logging: one line per event, `key=value` pairs, to stderr.
 *
 *   cn_log(CN_LOG_INFO, "listen", "transport=%s addr=%s:%u", "tls", ip, port);
 *   -> ts=2026-11-22T00:30:01.123Z level=info event=listen transport=tls addr=127.0.0.1:5061
 *
 * Thread-safe: each line is formatted into a local buffer and written with one
 * write(2), so lines from different threads never interleave. Not for the packet
 * path: per-packet problems are counted, not logged. */
#ifndef CN_LOG_H
#define CN_LOG_H

#include <stdarg.h>

typedef enum {
    CN_LOG_DEBUG = 0,
    CN_LOG_INFO = 1,
    CN_LOG_WARN = 2,
    CN_LOG_ERROR = 3,
} cn_log_level_t;

/* Lines below `level` are dropped. Default: CN_LOG_INFO. */
void cn_log_set_level(cn_log_level_t level);
cn_log_level_t cn_log_get_level(void);

/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int cn_log_level_parse(const char *name);
const char *cn_log_level_name(cn_log_level_t level);

/* `event` is a short token (no spaces); `fmt` formats the rest of the line,
 * which should itself be key=value pairs. */
void cn_log(cn_log_level_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void cn_vlog(cn_log_level_t level, const char *event, const char *fmt, va_list ap);

#endif
