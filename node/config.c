/* Configuration loading: one libconfig file -> struct cn_config. This file owns the
 * machinery: problem collection and formatting, the setters, the key-table walker and
 * unknown-key hints, pass 1 (wrapped integers), reading the file and the public API.
 * The section tables and their rules live in config_sections.c, config_cluster.c and
 * config_fed.c (config_int.h).
 *
 * DESIGN. The schema is data. Each section is a table of keys (name, setter, where
 * the value goes, range); the setters convert and check one value and write it only
 * when it is valid. Loading is three passes over one libconfig tree:
 *   1. scan the raw text for integer literals that libconfig 1.5 silently wraps to
 *      32 bits (udp_port = 4294972356 would otherwise load as 5060);
 *   2. walk every setting and match it against the tables: unknown keys and wrong
 *      types are errors, never ignored;
 *   3. rules no single key can check (TLS material when TLS listens, media port
 *      pairs, timer order, port clashes).
 * Problems are collected (not just the first), sorted by position, and the first
 * CF_MAX_REPORTED are written as "FILE:LINE: field: problem" lines.
 *
 * @include directives are resolved in the config file's directory. Pass 1 only
 * reads the main file: an included file gets libconfig's own integer handling. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cn_log.h"
#include "config_int.h"
#include "fed_history.h"

__attribute__((format(printf, 5, 0))) static void cf_vreport(struct cf_ctx *c, const char *file,
                                                             unsigned line, const char *field,
                                                             const char *fmt, va_list ap)
{
    c->n_total++;
    if (c->n_kept >= CF_MAX_KEPT)
        return;
    struct cf_problem *p = &c->problems[c->n_kept];
    p->file = file ? file : c->path;
    p->included = strcmp(p->file, c->path) != 0;
    p->in_dir = p->included && c->dir && p->file[0] != '/';
    p->line = line;
    p->seq = c->n_kept++;
    int n = field ? snprintf(p->text, sizeof p->text, "%s: ", field) : 0;
    if (n < 0 || (size_t)n >= sizeof p->text)
        return;
    vsnprintf(p->text + n, sizeof p->text - (size_t)n, fmt, ap);
}

/* A problem at a position in a file (line 0: the file as a whole). */
__attribute__((format(printf, 5, 6))) static void cf_report(struct cf_ctx *c, const char *file,
                                                            unsigned line, const char *field,
                                                            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf_vreport(c, file, line, field, fmt, ap);
    va_end(ap);
}

/* A problem with setting s (NULL: no setting to point at, the file as a whole). */
__attribute__((format(printf, 4, 5))) void cf_error(struct cf_ctx *c, const config_setting_t *s,
                                                    const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cf_vreport(c, s ? config_setting_source_file(s) : NULL, s ? config_setting_source_line(s) : 0,
               field, fmt, ap);
    va_end(ap);
}

static int cf_problem_cmp(const void *a, const void *b)
{
    const struct cf_problem *x = a, *y = b;
    if (x->included != y->included)
        return x->included ? 1 : -1;
    int r = strcmp(x->file, y->file);
    if (r != 0)
        return r;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

__attribute__((format(printf, 4, 5))) static void cf_append(char *buf, size_t cap, size_t *len,
                                                            const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = (size_t)n >= cap - *len ? cap - 1 : *len + (size_t)n;
}

/* Writes the first CF_MAX_REPORTED problems into err: the main file's first, each
 * file's in line order. */
static void cf_format(struct cf_ctx *c, char *err, size_t errlen)
{
    if (!err || errlen == 0)
        return;
    size_t len = 0;
    err[0] = '\0';
    qsort(c->problems, c->n_kept, sizeof *c->problems, cf_problem_cmp);
    unsigned shown = c->n_kept < CF_MAX_REPORTED ? c->n_kept : CF_MAX_REPORTED;
    for (unsigned i = 0; i < shown; i++) {
        const struct cf_problem *p = &c->problems[i];
        cf_append(err, errlen, &len, "%s%s%s%s", i ? "\n" : "", p->in_dir ? c->dir : "",
                  p->in_dir ? "/" : "", p->file);
        if (p->line)
            cf_append(err, errlen, &len, ":%u", p->line);
        cf_append(err, errlen, &len, ": %s", p->text);
    }
    if (c->n_total > shown)
        cf_append(err, errlen, &len, "\n%s: %u more problems not shown", c->path,
                  c->n_total - shown);
}

/* Copies user text into out for a message: at most CF_QUOTE_MAX characters, control
 * characters as '?', so one problem stays on one line. */
const char *cf_quote(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 4 < outlen && i < CF_QUOTE_MAX; i++)
        out[i] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
    if (s[i] && i + 4 <= outlen) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
    return out;
}

const char *cf_type_name(const config_setting_t *s)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_GROUP:
        return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        return "an integer";
    case CONFIG_TYPE_FLOAT:
        return "a float";
    case CONFIG_TYPE_STRING:
        return "a string";
    case CONFIG_TYPE_BOOL:
        return "a boolean";
    case CONFIG_TYPE_ARRAY:
        return "an array";
    case CONFIG_TYPE_LIST:
        return "a list";
    default:
        return "nothing";
    }
}

/* Marks an integer setting whose literal libconfig wrapped (already reported). */
static char cf_wrapped_mark;

static bool cf_is_wrapped(const config_setting_t *s)
{
    return config_setting_get_hook(s) == &cf_wrapped_mark;
}

static void cf_store_uint(void *dst, size_t size, unsigned long long v)
{
    switch (size) {
    case sizeof(uint16_t): {
        uint16_t x = (uint16_t)v;
        memcpy(dst, &x, sizeof x);
        break;
    }
    case sizeof(uint32_t): {
        uint32_t x = (uint32_t)v;
        memcpy(dst, &x, sizeof x);
        break;
    }
    case sizeof(uint64_t): {
        uint64_t x = (uint64_t)v;
        memcpy(dst, &x, sizeof x);
        break;
    }
    default:
        break;
    }
}

static void cf_store_int(void *dst, int v)
{
    memcpy(dst, &v, sizeof v);
}

void cf_store_string(void *dst, size_t size, const char *v)
{
    snprintf(dst, size, "%s", v);
}

/* Returns the string value of s when it is a string of k->min..k->size-1 characters
 * without control characters; else reports and returns NULL. */
const char *cf_get_string(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                          const char *field)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cf_error(c, s, field, "expected a string, got %s", cf_type_name(s));
        return NULL;
    }
    const char *v = config_setting_get_string(s);
    size_t len = strlen(v);
    if (len < (size_t)k->min) {
        cf_error(c, s, field, "must not be empty");
        return NULL;
    }
    if (len >= k->size) {
        cf_error(c, s, field, "longer than %zu characters", k->size - 1);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (iscntrl((unsigned char)v[i])) {
            cf_error(c, s, field, "contains a control character");
            return NULL;
        }
    }
    return v;
}

void cf_set_text(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                 const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (v)
        cf_store_string(dst, k->size, v);
}

void cf_set_ip(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
               const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1) {
        char q[64];
        cf_error(c, s, field, "not an IPv4 or IPv6 address (got \"%s\")", cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* Dot-separated labels of letters, digits, '-' (and '_' when allow_underscore). */
static bool cf_is_dns_name(const char *v, size_t len, bool allow_underscore)
{
    if (len == 0 || v[0] == '.' || v[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '.' && v[i + 1] == '.')
            return false;
        if (!isalnum(ch) && ch != '-' && ch != '.' && !(allow_underscore && ch == '_'))
            return false;
    }
    return true;
}

void cf_set_domain(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                   const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (!cf_is_dns_name(v, strlen(v), false)) {
        char q[64];
        cf_error(c, s, field, "not a domain name: letters, digits, '-' and '.' (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

void cf_set_token(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                  const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (!cf_is_dns_name(v, strlen(v), true)) {
        char q[64];
        cf_error(c, s, field, "must be letters, digits, '-', '_' and '.' (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* A VMR alias: user@domain, one '@', no spaces, a domain name after the '@'. */
void cf_set_alias(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                  const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    const char *at = strchr(v, '@');
    bool ok =
        at && at != v && !strchr(at + 1, '@') && cf_is_dns_name(at + 1, strlen(at + 1), false);
    for (const char *p = v; ok && p < at; p++)
        ok = !isspace((unsigned char)*p) && !strchr("<>\"", *p);
    if (!ok) {
        char q[64];
        cf_error(c, s, field, "must be user@domain with no spaces (got \"%s\")",
                 cf_quote(q, sizeof q, v));
        return;
    }
    cf_store_string(dst, k->size, v);
}

/* A file name; a relative one is joined to the config file's directory (also when
 * written in an @include file, as @include names are). "" stays "" (not set). */
void cf_set_path(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                 const char *field)
{
    const char *v = cf_get_string(c, k, s, field);
    if (!v)
        return;
    if (v[0] == '\0' || v[0] == '/' || !c->dir) {
        cf_store_string(dst, k->size, v);
        return;
    }
    char joined[PATH_MAX];
    int n = snprintf(joined, sizeof joined, "%s%s%s", c->dir, strcmp(c->dir, "/") ? "/" : "", v);
    if (n < 0 || (size_t)n >= k->size || (size_t)n >= sizeof joined) {
        cf_error(c, s, field, "longer than %zu characters once joined to the config directory",
                 k->size - 1);
        return;
    }
    cf_store_string(dst, k->size, joined);
}

/* Returns true with *out = the value when s is an integer in k->min..k->max. */
static bool cf_get_int(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                       const char *field, long long *out)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        cf_error(c, s, field, "expected an integer, got %s", cf_type_name(s));
        return false;
    }
    if (cf_is_wrapped(s))
        return false;
    long long v = config_setting_get_int64(s);
    if (v < k->min || v > k->max) {
        cf_error(c, s, field, "must be %lld..%lld (got %lld)", k->min, k->max, v);
        return false;
    }
    *out = v;
    return true;
}

void cf_set_uint(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                 const char *field)
{
    long long v;
    if (cf_get_int(c, k, s, field, &v))
        cf_store_uint(dst, k->size, (unsigned long long)v * (k->scale ? k->scale : 1));
}

void cf_set_bool(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                 const char *field)
{
    (void)k;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        cf_error(c, s, field, "expected a boolean (true or false), got %s", cf_type_name(s));
        return;
    }
    cf_store_int(dst, config_setting_get_bool(s) ? 1 : 0);
}

static void cf_choice_list(const struct cf_key *k, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (const struct cf_choice *ch = k->choices; ch->name; ch++)
        cf_append(out, outlen, &len, "%s\"%s\"", ch == k->choices ? "" : ", ", ch->name);
}

void cf_set_enum(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                 const char *field)
{
    char list[128];
    cf_choice_list(k, list, sizeof list);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        cf_error(c, s, field, "expected a string (one of %s), got %s", list, cf_type_name(s));
        return;
    }
    const char *v = config_setting_get_string(s);
    for (const struct cf_choice *ch = k->choices; ch->name; ch++) {
        if (strcmp(v, ch->name) == 0) {
            cf_store_int(dst, ch->value);
            return;
        }
    }
    char q[64];
    cf_error(c, s, field, "must be one of %s (got \"%s\")", list, cf_quote(q, sizeof q, v));
}

/* node.workers: "auto" (stored as 0) or an integer in k->min..k->max. */
void cf_set_workers(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s, void *dst,
                    const char *field)
{
    int t = config_setting_type(s);
    char q[64];
    if (t == CONFIG_TYPE_STRING) {
        const char *v = config_setting_get_string(s);
        if (strcmp(v, "auto") == 0)
            cf_store_uint(dst, k->size, 0);
        else
            cf_error(c, s, field, "must be \"auto\" or an integer %lld..%lld (got \"%s\")", k->min,
                     k->max, cf_quote(q, sizeof q, v));
        return;
    }
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        long long v = config_setting_get_int64(s);
        if (cf_is_wrapped(s))
            return;
        if (v >= k->min && v <= k->max)
            cf_store_uint(dst, k->size, (unsigned long long)v);
        else
            cf_error(c, s, field, "must be \"auto\" or an integer %lld..%lld (got %lld)", k->min,
                     k->max, v);
        return;
    }
    cf_error(c, s, field, "expected \"auto\" or an integer, got %s", cf_type_name(s));
}

/* ---- unknown keys -------------------------------------------------------------- */

/* Edit distance between a and b, or a large number when either is long. */
static unsigned cf_distance(const char *a, const char *b)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXLEN || lb >= MAXLEN)
        return UINT_MAX;
    unsigned row[MAXLEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The name in table (n entries of `stride` bytes, each starting with a const char *
 * name) closest to `name` within two edits, or NULL. */
static const char *cf_closest(const char *name, const void *table, size_t stride, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < n; i++) {
        const char *cand = *(const char *const *)(const void *)((const char *)table + i * stride);
        unsigned d = cf_distance(name, cand);
        if (d < best_d && d < strlen(cand)) {
            best = cand;
            best_d = d;
        }
    }
    return best;
}

/* Reports s as an unknown key of the given table, with a hint when one fits: a
 * near miss in the same place, or (cross_hints) another section's key of that name. */
static void cf_unknown(struct cf_ctx *c, const config_setting_t *s, const char *field,
                       const void *table, size_t stride, size_t n, const char *section,
                       bool cross_hints)
{
    const char *name = config_setting_name(s);
    const char *near = name ? cf_closest(name, table, stride, n) : NULL;
    if (near) {
        cf_error(c, s, field, "unknown key; did you mean '%s'?", near);
        return;
    }
    for (size_t i = 0; i < cf_n_sections && name && cross_hints; i++) {
        const struct cf_section *sec = &cf_sections[i];
        if (section && strcmp(section, sec->name) == 0)
            continue;
        for (size_t j = 0; j < sec->n_keys; j++) {
            if (strcmp(name, sec->keys[j].name) == 0) {
                cf_error(c, s, field, "unknown key; did you mean '%s.%s'?", sec->name, name);
                return;
            }
        }
    }
    cf_error(c, s, field, "unknown key");
}

/* ---- pass 2: the tree against the tables ---------------------------------------- */

/* Applies every member of group g to base through keys; prefix names the group. */
void cf_parse_members(struct cf_ctx *c, const struct cf_key *keys, size_t n_keys,
                      const config_setting_t *g, void *base, const char *prefix,
                      const char *section, bool cross_hints)
{
    int count = config_setting_length(g);
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *name = config_setting_name(s);
        char field[CF_FIELD_MAX];
        snprintf(field, sizeof field, "%s.%s", prefix, name ? name : "?");
        const struct cf_key *k = NULL;
        for (size_t j = 0; j < n_keys && name; j++)
            if (strcmp(name, keys[j].name) == 0)
                k = &keys[j];
        if (k)
            k->set(c, k, s, (char *)base + k->offset, field);
        else
            cf_unknown(c, s, field, keys, sizeof *keys, n_keys, section, cross_hints);
    }
}

void cf_parse_group(struct cf_ctx *c, const struct cf_section *sec, const config_setting_t *s)
{
    if (!config_setting_is_group(s)) {
        cf_error(c, s, sec->name, "expected a group { ... }, got %s", cf_type_name(s));
        return;
    }
    cf_parse_members(c, sec->keys, sec->n_keys, s, c->cfg, sec->name, sec->name, true);
}

void cf_parse_dataplane(struct cf_ctx *c, const struct cf_section *sec, const config_setting_t *s)
{
    sec->keys[0].set(c, &sec->keys[0], s, (char *)c->cfg + sec->keys[0].offset, sec->name);
}

static void cf_parse_root(struct cf_ctx *c, const config_setting_t *root)
{
    int count = config_setting_length(root);
    for (int i = 0; i < count; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct cf_section *sec = NULL;
        for (size_t j = 0; j < cf_n_sections && name; j++)
            if (strcmp(name, cf_sections[j].name) == 0)
                sec = &cf_sections[j];
        if (sec)
            sec->parse(c, sec, s);
        else
            cf_unknown(c, s, name ? name : "?", cf_sections, sizeof *cf_sections,
                       cf_n_sections, NULL, true);
    }
}

/* ---- pass 3: rules across keys -------------------------------------------------- */

/* The first of the given paths that is set in the file (NULL-terminated list), to
 * point a problem at; NULL when none is. */
const config_setting_t *cf_where(const struct cf_ctx *c, const char *const *paths)
{
    for (; *paths; paths++) {
        const config_setting_t *s = config_lookup(c->lc, *paths);
        if (s)
            return s;
    }
    return NULL;
}

/* True when `path` is absent or is the empty string: a missing value, as opposed to
 * a wrong one that has been reported already. */
bool cf_unset(const struct cf_ctx *c, const char *path)
{
    const config_setting_t *s = config_lookup(c->lc, path);
    return !s || (config_setting_type(s) == CONFIG_TYPE_STRING &&
                  config_setting_get_string(s)[0] == '\0');
}

/* ---- pass 1: integer literals libconfig 1.5 would wrap -------------------------- */

/* Finds the first not yet marked 32-bit integer setting from `file` at `line` under
 * s, in file order, and writes its dotted name into field. */
static config_setting_t *cf_int_at(config_setting_t *s, const char *file, unsigned line,
                                   char *field, size_t fieldlen)
{
    if (config_setting_type(s) == CONFIG_TYPE_INT && !cf_is_wrapped(s) &&
        config_setting_source_line(s) == line && config_setting_source_file(s) &&
        strcmp(config_setting_source_file(s), file) == 0) {
        snprintf(field, fieldlen, "%s", config_setting_name(s) ? config_setting_name(s) : "");
        return s;
    }
    if (!config_setting_is_aggregate(s))
        return NULL;
    int count = config_setting_length(s);
    for (int i = 0; i < count; i++) {
        config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char sub[CF_FIELD_MAX];
        config_setting_t *hit = cf_int_at(e, file, line, sub, sizeof sub);
        if (!hit)
            continue;
        const char *name = config_setting_name(s);
        size_t len = 0;
        field[0] = '\0';
        if (!name)
            cf_append(field, fieldlen, &len, "%s", sub);
        else if (config_setting_name(e))
            cf_append(field, fieldlen, &len, "%s.%s", name, sub);
        else
            cf_append(field, fieldlen, &len, "%s[%d]%s%s", name, i, sub[0] ? "." : "", sub);
        return hit;
    }
    return NULL;
}

static void cf_flag_wrapped(struct cf_ctx *c, unsigned line, const char *tok, size_t len)
{
    char field[CF_FIELD_MAX];
    config_setting_t *s = cf_int_at(config_root_setting(c->lc), c->path, line, field, sizeof field);
    if (!s)
        return;
    config_setting_set_hook(s, &cf_wrapped_mark);
    cf_error(c, s, field, "integer %.*s does not fit in 32 bits", (int)(len > 24 ? 24 : len), tok);
}

static bool cf_in(const char *set, char ch)
{
    return ch != '\0' && strchr(set, ch);
}

/* Scans one number token at text[i] (digit, or sign then digit); returns the index
 * after it. Follows libconfig's scanner: [-+]?[0-9]+, 0x[0-9a-f]+, an L or LL suffix
 * for 64 bits, and '.', 'e' for floats. */
static size_t cf_scan_number(struct cf_ctx *c, const char *text, size_t len, size_t i,
                             unsigned line)
{
    size_t start = i;
    bool neg = false, big = false;
    unsigned long long v = 0;
    if (text[i] == '-' || text[i] == '+')
        neg = text[i++] == '-';
    if (text[i] == '0' && i + 1 < len && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
        for (i += 2; i < len && isxdigit((unsigned char)text[i]); i++) {
            if (v > 0xffffffffull)
                big = true;
            else
                v = v * 16 + (unsigned)(isdigit((unsigned char)text[i])
                                            ? text[i] - '0'
                                            : (tolower((unsigned char)text[i]) - 'a' + 10));
        }
        big = big || v > 0xffffffffull;
    } else {
        for (; i < len && isdigit((unsigned char)text[i]); i++) {
            if (v > 2147483648ull)
                big = true;
            else
                v = v * 10 + (unsigned)(text[i] - '0');
        }
        if (i < len && (text[i] == '.' || text[i] == 'e' || text[i] == 'E')) {
            while (i < len && (isdigit((unsigned char)text[i]) || cf_in(".eE+-", text[i])))
                i++;
            return i;
        }
        big = big || v > 2147483648ull || (v == 2147483648ull && !neg);
    }
    if (i < len && text[i] == 'L') {
        i += (i + 1 < len && text[i + 1] == 'L') ? 2 : 1;
        return i;
    }
    if (big)
        cf_flag_wrapped(c, line, text + start, i - start);
    return i;
}

static void cf_scan_ints(struct cf_ctx *c, const char *text, size_t len)
{
    unsigned line = 1;
    size_t i = 0;
    while (i < len) {
        char ch = text[i];
        char next = i + 1 < len ? text[i + 1] : '\0';
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == '#' || (ch == '/' && next == '/')) {
            while (i < len && text[i] != '\n')
                i++;
        } else if (ch == '/' && next == '*') {
            for (i += 2; i < len && !(text[i] == '*' && i + 1 < len && text[i + 1] == '/'); i++)
                line += text[i] == '\n';
            i = i + 2 < len ? i + 2 : len;
        } else if (ch == '"') {
            for (i++; i < len && text[i] != '"'; i++) {
                if (text[i] == '\\' && i + 1 < len)
                    i++;
                line += text[i] == '\n';
            }
            i++;
        } else if (isalpha((unsigned char)ch) || ch == '*' || ch == '@') {
            for (i++; i < len && (isalnum((unsigned char)text[i]) || cf_in("-_*", text[i])); i++)
                ;
        } else if (ch == '.') {
            while (i < len && (isdigit((unsigned char)text[i]) || cf_in(".eE+-", text[i])))
                i++;
        } else if (isdigit((unsigned char)ch) ||
                   ((ch == '-' || ch == '+') && isdigit((unsigned char)next))) {
            i = cf_scan_number(c, text, len, i, line);
        } else {
            i++;
        }
    }
}

/* ---- the file ---------------------------------------------------------------- */

/* Reads the whole file into *out (NUL-terminated); reports and returns -1 when it
 * cannot be read or is larger than CF_MAX_FILE_SIZE. */
static int cf_read_text(struct cf_ctx *c, char **out, size_t *outlen)
{
    int rc = -1;
    size_t len = 0, cap = 4096;
    char *buf = NULL;
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cf_report(c, c->path, 0, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    buf = malloc(cap);
    if (!buf) {
        cf_report(c, c->path, 0, NULL, "out of memory");
        goto out;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > CF_MAX_FILE_SIZE) {
                cf_report(c, c->path, 0, NULL, "larger than %d bytes", CF_MAX_FILE_SIZE);
                goto out;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                cf_report(c, c->path, 0, NULL, "out of memory");
                goto out;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cf_report(c, c->path, 0, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- public ------------------------------------------------------------------ */

void cn_config_defaults(struct cn_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);

    struct node_conf *node = &cfg->node;
    if (gethostname(node->name, sizeof node->name) != 0 || node->name[0] == '\0')
        cf_store_string(node->name, sizeof node->name, "confnode");
    node->name[sizeof node->name - 1] = '\0';
    node->workers = 0;
    node->log_level = CN_LOG_INFO;

    struct dp_conf *dp = &cfg->dp;
    cf_store_string(dp->listen, sizeof dp->listen, "127.0.0.1");
    dp->udp_port = 5060;
    dp->tcp_port = 5060;
    dp->tls_port = 5061;
    dp->max_message_size = 65536;
    dp->tcp_idle_timeout_ms = 600 * 1000;
    dp->max_connections = 10000;
    dp->pin_workers = 1;

    dp->backend = DP_BACKEND_SOCKETS;
    struct dpk_conf *dk = &dp->dpdk;
    cf_store_string(dk->lcores, sizeof dk->lcores, "0");
    dk->memory_mb = 512;
    dk->hugepages = DPK_HUGE_AUTO;
    dk->exception = DPK_EXC_AUTO;
    cf_store_string(dk->kernel_iface, sizeof dk->kernel_iface, "cn0");
    dk->prefix_len = 24;
    dk->mbufs = 8191;
    dk->rx_desc = 1024;
    dk->tx_desc = 1024;
    dk->burst = 32;
    dk->poll = DPK_POLL_ADAPTIVE;

    struct dp_tls_conf *tls = &dp->tls;
    cf_store_string(tls->ciphers, sizeof tls->ciphers,
                    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS");
    cf_store_string(tls->ciphersuites, sizeof tls->ciphersuites,
                    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    tls->min_version = 12;
    tls->verify_client = DP_TLS_VERIFY_REQUEST;
    tls->handshake_timeout_ms = 10 * 1000;
    tls->session_cache_size = 20000;

    struct ctl_conf *ctl = &cfg->ctl;
    cf_store_string(ctl->domain, sizeof ctl->domain, "example.test");
    cf_store_string(ctl->media_address, sizeof ctl->media_address, dp->listen);
    ctl->media_port_min = 40000;
    ctl->media_port_max = 49999;
    ctl->srtp = CTL_SRTP_OPTIONAL;
    ctl->media_timeout_ms = 60 * 1000;
    ctl->mix_speakers = 3;
    ctl->t1_ms = 500;
    ctl->t2_ms = 4000;
    ctl->t4_ms = 5000;
    ctl->max_transactions = 262144;
    ctl->max_dialogs = 65536;

    cf_store_string(cfg->admin.listen, sizeof cfg->admin.listen, "127.0.0.1");
    cfg->admin.port = 8088;

    struct cluster_conf *cl = &cfg->cluster;
    cl->mode = CN_CLUSTER_STANDALONE;
    cf_store_string(cl->master_name, sizeof cl->master_name, "mymaster");
    cl->lease_ttl_ms = 15 * 1000;
    cl->heartbeat_ms = 5 * 1000;

    fed_route_conf_defaults(&cfg->fed.route);
    cfg->fed.history_size = FED_HISTORY_DEFAULT_CAPACITY;
    cfg->fed.inbound_check = 1;

    dp->workers = (unsigned)cn_config_resolve_workers(cfg);
}

int cn_config_resolve_workers(const struct cn_config *cfg)
{
    long n = cfg->node.workers;
    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > CF_MAX_WORKERS ? CF_MAX_WORKERS : (int)n;
}

int cn_config_load(const char *path, struct cn_config *cfg, char *err, size_t errlen)
{
    int rc = -1;
    config_t lc;
    bool lc_ready = false;
    char *text = NULL;
    size_t text_len = 0;
    char dir[sizeof cfg->path];
    struct cf_ctx ctx = {.cfg = cfg, .path = path ? path : "(null)"};

    if (err && errlen)
        err[0] = '\0';
    if (!cfg) {
        if (err && errlen)
            snprintf(err, errlen, "%s: no config to load into", ctx.path);
        return -1;
    }
    cn_config_defaults(cfg);
    ctx.problems = calloc(CF_MAX_KEPT, sizeof *ctx.problems);
    if (!ctx.problems) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", ctx.path);
        return -1;
    }
    if (!path || strlen(path) >= sizeof cfg->path) {
        cf_report(&ctx, NULL, 0, NULL, "file name missing or too long");
        goto out;
    }
    cf_store_string(cfg->path, sizeof cfg->path, path);
    if (cf_read_text(&ctx, &text, &text_len) != 0)
        goto out;

    config_init(&lc);
    lc_ready = true;
    const char *slash = strrchr(path, '/');
    if (slash) {
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
        config_set_include_dir(&lc, dir);
        ctx.dir = dir;
    }
    if (config_read_file(&lc, path) != CONFIG_TRUE) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            cf_report(&ctx, path, 0, NULL, "cannot open: %s", config_error_text(&lc));
        else
            cf_report(&ctx, config_error_file(&lc), (unsigned)config_error_line(&lc), NULL, "%s",
                      config_error_text(&lc) ? config_error_text(&lc) : "syntax error");
        goto out;
    }
    ctx.lc = &lc;

    cf_scan_ints(&ctx, text, text_len);
    cf_parse_root(&ctx, config_root_setting(&lc));
    if (!config_lookup(&lc, "media.address"))
        cf_store_string(cfg->ctl.media_address, sizeof cfg->ctl.media_address, cfg->dp.listen);
    cf_validate_tls(&ctx);
    cf_validate_media(&ctx);
    cf_validate_misc(&ctx);
    cf_validate_cluster(&ctx);
    cf_validate_federation(&ctx);
    cf_validate_dpdk(&ctx);
    cfg->dp.workers = (unsigned)cn_config_resolve_workers(cfg);
    if (ctx.n_total == 0)
        rc = 0;
out:
    if (rc != 0) {
        cf_format(&ctx, err, errlen);
        cn_config_free(cfg);
    }
    if (lc_ready)
        config_destroy(&lc);
    free(ctx.problems);
    free(text);
    return rc;
}

int cn_config_check_files(const struct cn_config *cfg, char *err, size_t errlen)
{
    const struct {
        const char *field;
        const char *path;
    } files[] = {
        {"tls.certificate", cfg->dp.tls.certificate},
        {"tls.key", cfg->dp.tls.key},
        {"tls.ca", cfg->dp.tls.ca},
    };
    size_t len = 0;
    int rc = 0;
    if (err && errlen)
        err[0] = '\0';
    for (size_t i = 0; i < CF_COUNT(files); i++) {
        if (!files[i].path[0])
            continue;
        const char *problem = NULL;
        struct stat st;
        int fd = open(files[i].path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            problem = strerror(errno);
        else if (fstat(fd, &st) != 0)
            problem = strerror(errno);
        else if (!S_ISREG(st.st_mode))
            problem = "not a regular file";
        if (fd >= 0)
            close(fd);
        if (!problem)
            continue;
        rc = -1;
        if (err && errlen)
            cf_append(err, errlen, &len, "%s%s: %s: '%s': %s", len ? "\n" : "",
                      cfg->path[0] ? cfg->path : "config", files[i].field, files[i].path, problem);
    }
    return rc;
}

void cn_config_free(struct cn_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->ctl.vmrs);
    cfg->ctl.vmrs = NULL;
    cfg->ctl.n_vmrs = 0;
    free(cfg->cluster.nodes);
    cfg->cluster.nodes = NULL;
    cfg->cluster.n_nodes = 0;
    fed_route_conf_free(&cfg->fed.route);
}
