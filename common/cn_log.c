#include "cn_log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int log_level = CN_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cn_log_set_level(cn_log_level_t level) { atomic_store(&log_level, (int)level); }

cn_log_level_t cn_log_get_level(void) { return (cn_log_level_t)atomic_load(&log_level); }

int cn_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

const char *cn_log_level_name(cn_log_level_t level)
{
    return (unsigned)level < 4 ? level_names[level] : "unknown";
}

void cn_vlog(cn_log_level_t level, const char *event, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, cn_log_level_name(level), event);
    if (n < 0)
        return;
    if ((size_t)n < sizeof line) {
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void cn_log(cn_log_level_t level, const char *event, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cn_vlog(level, event, fmt, ap);
    va_end(ap);
}
