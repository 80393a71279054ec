/* Admin API client (see admin_client.h), on libcurl's easy interface. */
#include "admin_client.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct answer {
    char *buf;
    size_t used, cap;
    bool too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
    struct answer *a = arg;
    size_t add = size * n;
    if (a->used + add + 1 > CN_HTTP_MAX_BODY) {
        a->too_big = true;
        return 0; /* curl stops with CURLE_WRITE_ERROR */
    }
    if (a->used + add + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 16384;
        while (cap < a->used + add + 1)
            cap *= 2;
        char *bigger = realloc(a->buf, cap);
        if (!bigger)
            return 0;
        a->buf = bigger;
        a->cap = cap;
    }
    memcpy(a->buf + a->used, data, add);
    a->used += add;
    a->buf[a->used] = '\0';
    return add;
}

__attribute__((format(printf, 3, 4))) static void fail(char *err, size_t errsz, const char *fmt,
                                                       ...)
{
    if (!err || !errsz)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

int cn_http_request(const char *host, uint16_t port, const char *method, const char *path,
                    int timeout_ms, int *status, char **body, size_t *len, char *err,
                    size_t errsz)
{
    struct answer a = {0};
    CURL *c = NULL;
    bool global = false;
    int rc = -1;
    if (body)
        *body = NULL;
    if (!host || !method || !path || path[0] != '/' || !status || !body) {
        fail(err, errsz, "bad arguments");
        goto out;
    }
    bool v6 = strchr(host, ':') != NULL;
    char url[512], where[128];
    int n = snprintf(url, sizeof url, "http://%s%s%s:%u%s", v6 ? "[" : "", host, v6 ? "]" : "",
                     port, path);
    snprintf(where, sizeof where, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "", port);
    if (n < 0 || (size_t)n >= sizeof url) {
        fail(err, errsz, "request too long");
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fail(err, errsz, "libcurl could not start");
        goto out;
    }
    global = true;
    if (!(c = curl_easy_init())) {
        fail(err, errsz, "out of memory");
        goto out;
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http");
    curl_easy_setopt(c, CURLOPT_PROXY, ""); /* the admin API is never behind a proxy */
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 5000));
    curl_easy_setopt(c, CURLOPT_USERAGENT, "confnode");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
        if (a.too_big)
            fail(err, errsz, "%s: answer larger than %u bytes", where, CN_HTTP_MAX_BODY);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            fail(err, errsz, "%s: timed out", where);
        else if (cc == CURLE_COULDNT_CONNECT && oserr)
            fail(err, errsz, "connect %s: %s", where, strerror((int)oserr));
        else
            fail(err, errsz, "%s: %s", where, cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code < 100 || code > 999) {
        fail(err, errsz, "%s: not an HTTP answer", where);
        goto out;
    }
    if (!a.buf && !(a.buf = calloc(1, 1))) {
        fail(err, errsz, "out of memory");
        goto out;
    }
    *status = (int)code;
    *body = a.buf;
    if (len)
        *len = a.used;
    a.buf = NULL;
    rc = 0;
out:
    curl_easy_cleanup(c);
    if (global)
        curl_global_cleanup();
    free(a.buf);
    return rc;
}
