/* `confnode drain` (see drain.h): POST /drain to the admin API, then print what the
 * node answered; with --wait, poll GET /status until the node has left the cluster
 * registry. HTTP through admin_client.h. */
#include "drain.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "admin_client.h"
#include "cn_time.h"
#include "config.h"

#define DRAIN_CMD "confnode drain"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- answers ------------------------------------------------------------------------ */

static bool get_bool(json_object *o, const char *key, bool *v)
{
    json_object *x;
    if (!json_object_object_get_ex(o, key, &x) || !json_object_is_type(x, json_type_boolean))
        return false;
    *v = json_object_get_boolean(x);
    return true;
}

int cn_drain_parse(const char *json, struct cn_drain_answer *a, char *err, size_t errsz)
{
    if (!json || !a)
        return fail(err, errsz, "no answer");
    memset(a, 0, sizeof *a);
    json_object *root = json_tokener_parse(json);
    json_object *calls;
    bool draining = false;
    int rc = -1;
    if (!root || !json_object_is_type(root, json_type_object)) {
        fail(err, errsz, "the answer is not a JSON object");
        goto out;
    }
    if (!get_bool(root, "draining", &draining) || !draining ||
        !get_bool(root, "already", &a->already) || !get_bool(root, "left", &a->left) ||
        !json_object_object_get_ex(root, "calls", &calls) ||
        !json_object_is_type(calls, json_type_int) || json_object_get_int64(calls) < 0) {
        fail(err, errsz, "the answer lacks draining/already/calls/left");
        goto out;
    }
    a->calls = (uint64_t)json_object_get_int64(calls);
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

/* From a /status document: cluster.left (false when absent), and the node name. */
static int status_left(const char *json, bool *left, char *node, size_t nodelen)
{
    json_object *root = json_tokener_parse(json), *cl, *name;
    int rc = -1;
    *left = false;
    if (!root || !json_object_is_type(root, json_type_object))
        goto out;
    if (node && nodelen && json_object_object_get_ex(root, "node", &name) &&
        json_object_is_type(name, json_type_string))
        snprintf(node, nodelen, "%s", json_object_get_string(name));
    if (json_object_object_get_ex(root, "cluster", &cl))
        get_bool(cl, "left", left);
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

int cn_drain_parse_admin(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    if (!s || !host || hostlen == 0 || !port)
        return -1;
    const char *colon, *h = s;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return -1;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p < 1 || p > 65535)
        return -1;
    if (hl == 9 && strncmp(h, "localhost", 9) == 0 && s[0] != '[') {
        snprintf(host, hostlen, "127.0.0.1");
    } else {
        unsigned char a[sizeof(struct in6_addr)];
        memcpy(host, h, hl);
        host[hl] = '\0';
        if (inet_pton(s[0] == '[' ? AF_INET6 : AF_INET, host, a) != 1)
            return -1;
    }
    *port = (uint16_t)p;
    return 0;
}

/* ---- the command -------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: " DRAIN_CMD " [-c FILE | --admin HOST:PORT] [--wait SECONDS]"
               " [--timeout SECONDS]\n"
               "  drains a running node: no new conferences; its calls stay until they end,\n"
               "  then it leaves the cluster registry. --wait: until it has left.\n");
}

/* Reads a whole number of seconds 0..86400 from s into *ms. */
static int parse_seconds(const char *s, int *ms)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : -1;
    if (!s || errno || end == s || *end || v < 0 || v > 86400)
        return -1;
    *ms = (int)v * 1000;
    return 0;
}

/* The admin address of the config file at path (wildcards mean loopback). */
static int admin_from_config(const char *path, char *host, size_t hostlen, uint16_t *port,
                             FILE *errf)
{
    static struct cn_config cfg; /* large: keep it off the stack */
    static char err[4096];
    if (cn_config_load(path, &cfg, err, sizeof err) != 0) {
        fprintf(errf, "%s\n", err);
        cn_config_free(&cfg);
        return -1;
    }
    int rc = 0;
    if (cfg.admin.port == 0) {
        fprintf(errf, DRAIN_CMD ": %s: admin.port is 0: the node has no admin API\n", path);
        rc = -1;
    } else if (strcmp(cfg.admin.listen, "0.0.0.0") == 0) {
        snprintf(host, hostlen, "127.0.0.1");
    } else if (strcmp(cfg.admin.listen, "::") == 0) {
        snprintf(host, hostlen, "::1");
    } else {
        snprintf(host, hostlen, "%s", cfg.admin.listen);
    }
    *port = cfg.admin.port;
    cn_config_free(&cfg);
    return rc;
}

/* Polls /status until cluster.left or the deadline. Returns 0 left, 1 not in time. */
static int wait_left(const char *host, uint16_t port, int wait_ms, int timeout_ms, FILE *out,
                     FILE *errf)
{
    uint64_t deadline = cn_now_ms() + (uint64_t)wait_ms;
    char err[256] = "", node[128] = "the node";
    for (;;) {
        int status = 0;
        char *body = NULL;
        bool left = false;
        if (cn_http_request(host, port, "GET", "/status", timeout_ms, &status, &body, NULL, err,
                         sizeof err) == 0 &&
            status == 200 && status_left(body, &left, node, sizeof node) == 0 && left) {
            free(body);
            fprintf(out, "%s has left the cluster registry: it can be stopped\n", node);
            return 0;
        }
        free(body);
        if (cn_now_ms() >= deadline)
            break;
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(errf, DRAIN_CMD ": %s has not left the cluster registry within %d s%s%s\n", node,
            wait_ms / 1000, err[0] ? ": " : "", err);
    return 1;
}

int cn_drain_run(int argc, char **argv, FILE *out, FILE *errf)
{
    const char *config = NULL, *admin = NULL;
    int timeout_ms = 5000, wait_ms = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && v) {
            config = v;
            i++;
        } else if (strcmp(a, "--admin") == 0 && v) {
            admin = v;
            i++;
        } else if (strcmp(a, "--wait") == 0 && parse_seconds(v, &wait_ms) == 0) {
            i++;
        } else if (strcmp(a, "--timeout") == 0 && parse_seconds(v, &timeout_ms) == 0 &&
                   timeout_ms > 0) {
            i++;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(out);
            return 0;
        } else {
            fprintf(errf, DRAIN_CMD ": bad argument '%s'\n", a);
            usage(errf);
            return 2;
        }
    }
    if (config && admin) {
        fprintf(errf, DRAIN_CMD ": -c and --admin exclude each other\n");
        return 2;
    }
    char host[64] = "127.0.0.1";
    uint16_t port = 8088;
    if (admin && cn_drain_parse_admin(admin, host, sizeof host, &port) != 0) {
        fprintf(errf,
                DRAIN_CMD ": --admin '%s': expected IP:PORT, [IPv6]:PORT or "
                          "localhost:PORT\n",
                admin);
        return 2;
    }
    if (config && admin_from_config(config, host, sizeof host, &port, errf) != 0)
        return 1;

    bool v6 = strchr(host, ':') != NULL;
    char where[96];
    snprintf(where, sizeof where, v6 ? "[%s]:%u" : "%s:%u", host, port);
    char err[256];
    int status = 0, rc = 1;
    char *body = NULL;
    struct cn_drain_answer ans;
    if (cn_http_request(host, port, "POST", "/drain", timeout_ms, &status, &body, NULL, err, sizeof err) !=
        0) {
        fprintf(errf, DRAIN_CMD ": admin API %s: %s\n", where, err);
        goto out;
    }
    if (status != 200) {
        fprintf(errf, DRAIN_CMD ": admin API %s answered %d: %.200s\n", where, status, body);
        goto out;
    }
    if (cn_drain_parse(body, &ans, err, sizeof err) != 0) {
        fprintf(errf, DRAIN_CMD ": admin API %s: %s\n", where, err);
        goto out;
    }
    fprintf(out, "node at %s: %s; %llu call%s up; %s\n", where,
            ans.already ? "was draining already" : "draining now (no new conferences)",
            (unsigned long long)ans.calls, ans.calls == 1 ? "" : "s",
            ans.left    ? "it has left the cluster registry"
            : ans.calls ? "it leaves the cluster registry when they have ended"
                        : "it leaves the cluster registry now");
    rc = wait_ms >= 0 ? wait_left(host, port, wait_ms, timeout_ms, out, errf) : 0;
out:
    free(body);
    return rc;
}

int cn_cmd_drain(int argc, char **argv)
{
    return cn_drain_run(argc, argv, stdout, stderr);
}
