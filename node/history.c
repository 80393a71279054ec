/* `confnode history` (see history.h): a GET of /history from the admin API
 * (admin_client.h), then the document printed for a person or as JSON. */
#include "history.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin_client.h"
#include "cn_time.h"
#include "config.h"
#include "fed_route.h"

#define HIST_CMD "confnode history"

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

/* ---- printing ------------------------------------------------------------------------- */

static const char *str_of(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

static int64_t int_of(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    return json_object_get_int64(v);
}

static json_object *array_of(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
        return NULL;
    return v;
}

static const char *outcome_text(const char *token)
{
    static const struct {
        const char *token, *text;
    } map[] = {
        {"not_matched", "not matched"},
        {"skipped_source", "skipped (source zone)"},
        {"skipped_type", "skipped (request type)"},
        {"matched", "matched"},
        {"rewritten", "matched, alias rewritten"},
        {"not_local", "matched, not a local domain"},
        {"refused", "matched, refused by the privacy mode"},
        {"bad_domain", "matched, no usable domain"},
        {"too_long", "matched, replacement too long"},
        {"duplicate", "matched, same target as before"},
        {"targets_full", "matched, too many targets"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].token, token) == 0)
            return map[i].text;
    return token;
}

static const char *status_text(int64_t code)
{
    static const struct {
        int code;
        const char *text;
    } map[] = {
        {200, "OK"},
        {202, "Accepted"},
        {400, "Bad Request"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {408, "Request Timeout"},
        {414, "Request-URI Too Long"},
        {416, "Unsupported URI Scheme"},
        {480, "Temporarily Unavailable"},
        {481, "Call/Transaction Does Not Exist"},
        {486, "Busy Here"},
        {487, "Request Terminated"},
        {488, "Not Acceptable Here"},
        {500, "Server Internal Error"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Server Time-out"},
        {603, "Decline"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (map[i].code == code)
            return map[i].text;
    return "";
}

static void print_lines(FILE *f, const char *label, json_object *arr, bool truncated)
{
    size_t n = arr ? json_object_array_length(arr) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        fprintf(f, "  %-9s %s\n", i ? "" : label, json_object_get_string(e));
    }
    if (truncated)
        fprintf(f, "  %-9s (more not kept)\n", n ? "" : label);
}

static void print_record(FILE *f, json_object *e)
{
    json_object *src = NULL, *v = NULL;
    json_object_object_get_ex(e, "source", &src);
    fprintf(f, "%s  %s  %s -> %s\n", str_of(e, "time"), str_of(e, "method"), str_of(e, "from"),
            str_of(e, "to"));
    fprintf(f, "  %-9s %s\n", "call-id", str_of(e, "call_id"));
    fprintf(f, "  %-9s zone %s%s%s (worker %lld, #%lld)\n", "source",
            src ? str_of(src, "zone") : "", src && str_of(src, "address")[0] ? ", from " : "",
            src ? str_of(src, "address") : "", (long long)int_of(e, "worker"),
            (long long)int_of(e, "id"));
    json_object *rules = array_of(e, "rules");
    size_t nr = rules ? json_object_array_length(rules) : 0;
    int64_t tried = int_of(e, "rules_tried");
    if (nr == 0)
        fprintf(f, "  %-9s none tried\n", "rules");
    for (size_t i = 0; i < nr; i++) {
        json_object *r = json_object_array_get_idx(rules, i);
        fprintf(f, "  %-9s %s: %s\n", i ? "" : "rules", str_of(r, "name"),
                outcome_text(str_of(r, "result")));
    }
    if (tried > (int64_t)nr)
        fprintf(f, "  %-9s (%lld rules tried, %zu kept)\n", "", (long long)tried, nr);
    fprintf(f, "  %-9s %s", "decision", str_of(e, "decision"));
    if (str_of(e, "zone")[0])
        fprintf(f, ", zone %s", str_of(e, "zone"));
    if (str_of(e, "alias")[0])
        fprintf(f, ", alias %s", str_of(e, "alias"));
    fputc('\n', f);
    print_lines(f, "dns", array_of(e, "dns"),
                json_object_object_get_ex(e, "dns_truncated", &v) && json_object_get_boolean(v));
    print_lines(f, "cert", array_of(e, "certificates"),
                json_object_object_get_ex(e, "certificates_truncated", &v) &&
                    json_object_get_boolean(v));
    int64_t status = int_of(e, "status");
    if (status)
        fprintf(f, "  %-9s %lld %s", "result", (long long)status, status_text(status));
    else
        fprintf(f, "  %-9s pending", "result");
    json_object *diag = NULL;
    if (json_object_object_get_ex(e, "diagnostics", &diag) && diag &&
        json_object_is_type(diag, json_type_object))
        fprintf(f, "; ms-diagnostics %lld \"%s\"", (long long)int_of(diag, "code"),
                str_of(diag, "reason"));
    fputc('\n', f);
    if (str_of(e, "detail")[0])
        fprintf(f, "  %-9s %s\n", "detail", str_of(e, "detail"));
}

/* Parses a /history document; returns it with *entries, or NULL with err set. */
static json_object *parse_history(const char *json, json_object **entries, char *err, size_t errsz)
{
    json_object *doc = json ? json_tokener_parse(json) : NULL;
    *entries = doc && json_object_is_type(doc, json_type_object) ? array_of(doc, "entries") : NULL;
    if (!*entries) {
        json_object_put(doc);
        fail(err, errsz, "the answer is not a search history document");
        return NULL;
    }
    return doc;
}

int cn_history_print(FILE *f, const char *json, size_t last, char *err, size_t errsz)
{
    json_object *entries;
    json_object *doc = parse_history(json, &entries, err, errsz);
    if (!doc)
        return -1;
    size_t n = json_object_array_length(entries);
    size_t shown = last && last < n ? last : n;
    if (n == 0)
        fprintf(f, "no routed requests in the search history\n");
    for (size_t i = 0; i < shown; i++) {
        if (i)
            fputc('\n', f);
        print_record(f, json_object_array_get_idx(entries, i));
    }
    if (n)
        fprintf(f, "\n%zu of %lld records shown (capacity %lld, newest first)\n", shown,
                (long long)int_of(doc, "count"), (long long)int_of(doc, "capacity"));
    json_object_put(doc);
    return (int)shown;
}

/* Prints the document pretty, trimmed to `last` entries (0: all). */
static int print_json(FILE *f, const char *json, size_t last, char *err, size_t errsz)
{
    json_object *entries;
    json_object *doc = parse_history(json, &entries, err, errsz);
    if (!doc)
        return -1;
    size_t n = json_object_array_length(entries);
    if (last && last < n) {
        json_object_array_del_idx(entries, last, n - last);
        json_object_object_add(doc, "count", json_object_new_int64((int64_t)last));
    }
    fprintf(f, "%s\n",
            json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(doc);
    return 0;
}

/* ---- the command ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: " HIST_CMD " [-c FILE | --admin HOST:PORT] [--json] [--last N]\n"
               "                        [--timeout SECONDS]\n"
               "\n"
               "Prints the search history of a running node (GET /history from its admin\n"
               "API): per routed request the rules tried, the zone, DNS answers, certificate\n"
               "checks and the outcome with its ms-diagnostics code, newest first.\n"
               "\n"
               "  -c FILE            the node's configuration (admin.listen, admin.port)\n"
               "  --admin HOST:PORT  the admin API (IP literal or localhost; default\n"
               "                     127.0.0.1:8088)\n"
               "  --json             print the JSON document\n"
               "  --last N           the newest N records (default 20; 0: all)\n"
               "  --timeout SECONDS  for the whole request (default 5)\n");
}

static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *bad, FILE *errf)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        fprintf(errf, HIST_CMD ": %s needs a value\n", name);
        *bad = true;
        return NULL;
    }
    return argv[++*i];
}

struct hist_opts {
    const char *config;
    const char *admin;
    bool json;
    unsigned long last;
    int timeout_ms;
    char host[FED_NAME_BUF];
    uint16_t port;
};

/* The admin address from --admin. Returns 0 or -1 (reported). */
static int admin_from_arg(struct hist_opts *o, FILE *errf)
{
    struct fed_hostport hp;
    char why[160];
    int bad = fed_hostport_parse(o->admin, &hp, why, sizeof why);
    if (bad || hp.port == 0) {
        fprintf(errf, HIST_CMD ": --admin wants HOST:PORT, not '%s'%s%s\n", o->admin,
                bad ? ": " : "", bad ? why : "");
        return -1;
    }
    if (strcmp(hp.host, "localhost") == 0) {
        snprintf(hp.host, sizeof hp.host, "127.0.0.1");
        hp.is_ip = true;
    }
    if (!hp.is_ip) {
        fprintf(errf, HIST_CMD ": --admin wants an IP address (no name lookups), not '%s'\n",
                hp.host);
        return -1;
    }
    snprintf(o->host, sizeof o->host, "%s", hp.host);
    o->port = hp.port;
    return 0;
}

/* The admin address from the configuration file. Returns 0 or -1 (reported). */
static int admin_from_config(struct hist_opts *o, FILE *errf)
{
    struct cn_config *cfg = calloc(1, sizeof *cfg);
    static char err[8192];
    int rc = -1;
    if (!cfg) {
        fprintf(errf, HIST_CMD ": out of memory\n");
        return -1;
    }
    if (cn_config_load(o->config, cfg, err, sizeof err) != 0) {
        fprintf(errf, "%s\n", err);
        goto out;
    }
    if (cfg->admin.port == 0) {
        fprintf(errf, HIST_CMD ": %s: the admin API is off (admin.port = 0)\n", o->config);
        goto out;
    }
    const char *host = cfg->admin.listen;
    if (strcmp(host, "0.0.0.0") == 0)
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    snprintf(o->host, sizeof o->host, "%s", host);
    o->port = cfg->admin.port;
    rc = 0;
out:
    cn_config_free(cfg);
    free(cfg);
    return rc;
}

static int parse_args(int argc, char **argv, struct hist_opts *o, FILE *out, FILE *errf)
{
    bool bad = false;
    const char *last = NULL, *timeout = NULL;
    for (int i = 1; i < argc && !bad; i++) {
        const char *v;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(out);
            return 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            o->json = true;
        } else if ((v = opt_value(argc, argv, &i, "--config", &bad, errf)) != NULL ||
                   (v = opt_value(argc, argv, &i, "-c", &bad, errf)) != NULL) {
            o->config = v;
        } else if ((v = opt_value(argc, argv, &i, "--admin", &bad, errf)) != NULL) {
            o->admin = v;
        } else if ((v = opt_value(argc, argv, &i, "--last", &bad, errf)) != NULL) {
            last = v;
        } else if ((v = opt_value(argc, argv, &i, "--timeout", &bad, errf)) != NULL) {
            timeout = v;
        } else if (!bad) {
            fprintf(errf, HIST_CMD ": unknown argument '%s'\n", argv[i]);
            bad = true;
        }
    }
    if (!bad && o->config && o->admin) {
        fprintf(errf, HIST_CMD ": -c and --admin name the node twice; give one\n");
        bad = true;
    }
    if (!bad && last) {
        char *end;
        errno = 0;
        o->last = strtoul(last, &end, 10);
        if (errno || end == last || *end || last[0] == '-' || o->last > 1000000) {
            fprintf(errf, HIST_CMD ": --last wants a number 0..1000000, not '%s'\n", last);
            bad = true;
        }
    }
    if (!bad && timeout) {
        char *end;
        errno = 0;
        double s = strtod(timeout, &end);
        if (errno || end == timeout || *end || !(s > 0.0 && s <= 600.0)) {
            fprintf(errf, HIST_CMD ": --timeout wants seconds in (0, 600], not '%s'\n", timeout);
            bad = true;
        } else {
            o->timeout_ms = (int)(s * 1000.0 + 0.5);
            o->timeout_ms = o->timeout_ms < 1 ? 1 : o->timeout_ms;
        }
    }
    if (!bad && o->admin && admin_from_arg(o, errf) != 0)
        bad = true;
    if (bad) {
        usage(errf);
        return -1;
    }
    return 0;
}

int cn_history_run(int argc, char **argv, FILE *out, FILE *errf)
{
    struct hist_opts o = {.last = CN_HISTORY_DEFAULT_LAST, .timeout_ms = 5000};
    snprintf(o.host, sizeof o.host, "127.0.0.1");
    o.port = 8088;
    int pa = parse_args(argc, argv, &o, out, errf);
    if (pa != 0)
        return pa > 0 ? 0 : 2;
    if (o.config && admin_from_config(&o, errf) != 0)
        return 1;

    char path[64], err[512];
    snprintf(path, sizeof path, "/history?last=%lu", o.last);
    int status = 0;
    char *body = NULL;
    size_t len = 0;
    int rc = 1;
    bool six = strchr(o.host, ':') != NULL;
    if (cn_http_request(o.host, o.port, "GET", path, o.timeout_ms, &status, &body, &len, err, sizeof err) !=
        0) {
        fprintf(errf, HIST_CMD ": %s (is the node running with its admin API there?)\n", err);
        goto out;
    }
    if (status != 200) {
        fprintf(errf, HIST_CMD ": http://%s%s%s:%u%s answered HTTP %d\n", six ? "[" : "", o.host,
                six ? "]" : "", o.port, path, status);
        goto out;
    }
    int printed = o.json ? print_json(out, body, o.last, err, sizeof err)
                         : cn_history_print(out, body, o.last, err, sizeof err);
    if (printed < 0) {
        fprintf(errf, HIST_CMD ": %s\n", err);
        goto out;
    }
    rc = 0;
out:
    free(body);
    return rc;
}

int cn_cmd_history(int argc, char **argv)
{
    return cn_history_run(argc, argv, stdout, stderr);
}
