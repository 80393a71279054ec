/* Internal to node/config*.c: the loader's context, the schema types and the
 * functions the section files share with the machinery in config.c. Not a public
 * header: the rest of the node includes config.h only.
 *
 *   config.c          problems, setters, the key-table walker, unknown keys, pass 1,
 *                     the file, the public API
 *   config_sections.c node, sip, tls, media, timers, limits, admin, vmrs, dataplane,
 *                     dpdk: their tables and rules; the table of sections
 *   config_cluster.c  cluster: its table, setters and rules
 *   config_fed.c      zones, search_rules, federation: their tables, setters and rules */
#ifndef CN_CONFIG_INT_H
#define CN_CONFIG_INT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum {
    CF_MAX_REPORTED = 10, /* problems written to err */
    CF_MAX_KEPT = 64,     /* problems kept for sorting; later ones are only counted */
    CF_TEXT_MAX = 320,    /* "field: problem" */
    CF_FIELD_MAX = 160,   /* "sip.udp_port", "vmrs[12].alias" */
    CF_QUOTE_MAX = 48,    /* user text echoed in a message */
    CF_MAX_WORKERS = 128,
    CF_MAX_FILE_SIZE = 1 << 20, /* a config file is small; refuse anything larger */
};

/* ---- problems ---------------------------------------------------------------- */

struct cf_problem {
    const char *file; /* the libconfig tree's file name or ctx->path; valid until out: */
    unsigned line;    /* 0 = the file as a whole */
    unsigned seq;     /* order found: keeps the sort stable */
    bool in_dir;      /* file is an @include name, relative to ctx->dir */
    bool included;    /* not the main file: sorts after it */
    char text[CF_TEXT_MAX];
};

struct cf_ctx {
    struct cn_config *cfg;
    const config_t *lc;          /* NULL until the file parsed */
    const char *path;            /* the config file as given */
    const char *dir;             /* its directory, NULL when path has no '/' */
    struct cf_problem *problems; /* CF_MAX_KEPT entries */
    unsigned n_kept;
    unsigned n_total;
};

/* ---- schema ------------------------------------------------------------------ */

struct cf_key;
/* Converts and checks setting s; writes dst only when the value is valid. */
typedef void cf_setter(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                       void *dst, const char *field);

struct cf_choice {
    const char *name;
    int value;
};

struct cf_key {
    const char *name; /* first member: cf_closest() reads tables through it */
    cf_setter *set;
    size_t offset;                   /* of the field in the table's base struct */
    size_t size;                     /* of the field: string capacity or integer width */
    long long min, max;              /* integers: range; strings: min = smallest length */
    uint32_t scale;                  /* integers: stored value = value * scale (seconds -> ms) */
    const struct cf_choice *choices; /* enums: NULL-terminated */
};

struct cf_section;
typedef void cf_section_parser(struct cf_ctx *c, const struct cf_section *sec,
                               const config_setting_t *s);

struct cf_section {
    const char *name; /* first member, as in struct cf_key */
    const struct cf_key *keys;
    size_t n_keys;
    cf_section_parser *parse;
};

#define CF_AT(type, m) .offset = offsetof(type, m), .size = sizeof(((type *)0)->m)
#define CF_CFG(m) CF_AT(struct cn_config, m)
#define CF_UINT(n, m, lo, hi)                                                                      \
    {                                                                                              \
        .name = n, .set = cf_set_uint, CF_CFG(m), .min = lo, .max = hi, .scale = 1                 \
    }
/* A value written in seconds and stored in milliseconds. */
#define CF_SECONDS(n, m, lo, hi)                                                                   \
    {                                                                                              \
        .name = n, .set = cf_set_uint, CF_CFG(m), .min = lo, .max = hi, .scale = 1000              \
    }
#define CF_STRING(n, setter, m, minlen)                                                            \
    {                                                                                              \
        .name = n, .set = setter, CF_CFG(m), .min = minlen                                         \
    }
#define CF_ENUM(n, m, list)                                                                        \
    {                                                                                              \
        .name = n, .set = cf_set_enum, CF_CFG(m), .choices = list                                  \
    }
#define CF_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- config.c: problems ---------------------------------------------------------- */

__attribute__((format(printf, 4, 5))) void cf_error(struct cf_ctx *c, const config_setting_t *s,
                                                    const char *field, const char *fmt, ...);
const char *cf_quote(char *out, size_t outlen, const char *s);
const char *cf_type_name(const config_setting_t *s);

/* ---- config.c: setters ----------------------------------------------------------- */

void cf_store_string(void *dst, size_t size, const char *v);
const char *cf_get_string(struct cf_ctx *c, const struct cf_key *k, const config_setting_t *s,
                          const char *field);
cf_setter cf_set_text, cf_set_ip, cf_set_domain, cf_set_token, cf_set_alias, cf_set_path,
    cf_set_uint, cf_set_bool, cf_set_enum, cf_set_workers;

/* ---- config.c: the walker and pass 3 helpers -------------------------------------- */

void cf_parse_members(struct cf_ctx *c, const struct cf_key *keys, size_t n_keys,
                      const config_setting_t *g, void *base, const char *prefix,
                      const char *section, bool cross_hints);
cf_section_parser cf_parse_group, cf_parse_dataplane;
const config_setting_t *cf_where(const struct cf_ctx *c, const char *const *paths);
#define CF_WHERE(c, ...) cf_where(c, (const char *const[]){__VA_ARGS__, NULL})
bool cf_unset(const struct cf_ctx *c, const char *path);

/* ---- the sections ---------------------------------------------------------------- */

/* Sizes of the tables cf_sections[] takes from other files (checked where defined). */
enum {
    CF_N_CLUSTER_KEYS = 11,
    CF_N_ZONE_KEYS = 3,
    CF_N_RULE_KEYS = 12,
    CF_N_FEDERATION_KEYS = 6,
};

/* config_sections.c: every top-level name the file may use. */
extern const struct cf_section cf_sections[];
extern const size_t cf_n_sections;
void cf_validate_tls(struct cf_ctx *c);
void cf_validate_media(struct cf_ctx *c);
void cf_validate_misc(struct cf_ctx *c);
void cf_validate_dpdk(struct cf_ctx *c);

/* config_cluster.c */
extern const struct cf_key cf_cluster_keys[];
void cf_validate_cluster(struct cf_ctx *c);

/* config_fed.c */
extern const struct cf_key cf_zone_keys[], cf_rule_keys[], cf_federation_keys[];
cf_section_parser cf_parse_rules;
void cf_validate_federation(struct cf_ctx *c);

#endif
