/* Configuration sections node, sip, tls, media, timers, limits, admin, vmrs, dataplane
 * and dpdk: their key tables, the vmrs list (with its duplicate-alias check) and the
 * rules across their keys (pass 3); and cf_sections, the table of every top-level
 * name, which the walker in config.c reads. */
#include <arpa/inet.h>
#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cn_log.h"
#include "config_int.h"

static const struct cf_choice log_levels[] = {
    {"debug", CN_LOG_DEBUG},
    {"info", CN_LOG_INFO},
    {"warn", CN_LOG_WARN},
    {"error", CN_LOG_ERROR},
    {NULL, 0},
};

static const struct cf_choice tls_versions[] = {{"1.2", 12}, {"1.3", 13}, {NULL, 0}};

static const struct cf_choice verify_modes[] = {
    {"none", DP_TLS_VERIFY_NONE},
    {"request", DP_TLS_VERIFY_REQUEST},
    {"require", DP_TLS_VERIFY_REQUIRE},
    {NULL, 0},
};

static const struct cf_key node_keys[] = {
    CF_STRING("name", cf_set_token, node.name, 1),
    {.name = "workers",
     .set = cf_set_workers,
     CF_CFG(node.workers),
     .min = 1,
     .max = CF_MAX_WORKERS},
    CF_ENUM("log_level", node.log_level, log_levels),
    {.name = "pin_workers", .set = cf_set_bool, CF_CFG(dp.pin_workers)},
};

static const struct cf_key sip_keys[] = {
    CF_STRING("listen", cf_set_ip, dp.listen, 1),
    CF_STRING("domain", cf_set_domain, ctl.domain, 1),
    CF_UINT("udp_port", dp.udp_port, 0, 65535),
    CF_UINT("tcp_port", dp.tcp_port, 0, 65535),
    CF_UINT("tls_port", dp.tls_port, 0, 65535),
    CF_UINT("max_message_size", dp.max_message_size, 1024, 16777216),
    CF_SECONDS("idle_timeout", dp.tcp_idle_timeout_ms, 1, 86400),
    CF_UINT("max_connections", dp.max_connections, 1, 1000000),
    {.name = "accept_preloaded_routes", .set = cf_set_bool, CF_CFG(ctl.accept_preloaded_routes)},
};

static const struct cf_key tls_keys[] = {
    CF_STRING("certificate", cf_set_path, dp.tls.certificate, 0),
    CF_STRING("key", cf_set_path, dp.tls.key, 0),
    CF_STRING("ca", cf_set_path, dp.tls.ca, 0),
    CF_STRING("ciphers", cf_set_text, dp.tls.ciphers, 1),
    CF_STRING("ciphersuites", cf_set_text, dp.tls.ciphersuites, 1),
    CF_ENUM("min_version", dp.tls.min_version, tls_versions),
    CF_ENUM("verify_client", dp.tls.verify_client, verify_modes),
    CF_SECONDS("handshake_timeout", dp.tls.handshake_timeout_ms, 1, 300),
    CF_UINT("session_cache_size", dp.tls.session_cache_size, 0, 10000000),
};

static const struct cf_choice srtp_policies[] = {
    {"required", CTL_SRTP_REQUIRED},
    {"optional", CTL_SRTP_OPTIONAL},
    {"off", CTL_SRTP_OFF},
    {NULL, 0},
};

static const struct cf_key media_keys[] = {
    CF_STRING("address", cf_set_ip, ctl.media_address, 1),
    CF_UINT("port_min", ctl.media_port_min, 1024, 65535),
    CF_UINT("port_max", ctl.media_port_max, 1024, 65535),
    CF_ENUM("srtp", ctl.srtp, srtp_policies),
    CF_SECONDS("media_timeout", ctl.media_timeout_ms, 0, 3600),
    CF_UINT("mix_speakers", ctl.mix_speakers, 1, 8),
};

static const struct cf_key timer_keys[] = {
    CF_UINT("t1", ctl.t1_ms, 1, 60000),
    CF_UINT("t2", ctl.t2_ms, 1, 600000),
    CF_UINT("t4", ctl.t4_ms, 1, 600000),
};

static const struct cf_key limit_keys[] = {
    CF_UINT("max_transactions", ctl.max_transactions, 1, 16777216),
    CF_UINT("max_dialogs", ctl.max_dialogs, 1, 16777216),
};

static const struct cf_key admin_keys[] = {
    CF_STRING("listen", cf_set_ip, admin.listen, 1),
    CF_UINT("port", admin.port, 0, 65535),
};

static const struct cf_choice backends[] = {
    {"sockets", DP_BACKEND_SOCKETS},
    {"dpdk", DP_BACKEND_DPDK},
    {NULL, 0},
};

static const struct cf_choice dpdk_huge_modes[] = {
    {"auto", DPK_HUGE_AUTO},
    {"on", DPK_HUGE_ON},
    {"off", DPK_HUGE_OFF},
    {NULL, 0},
};

static const struct cf_choice dpdk_exceptions[] = {
    {"auto", DPK_EXC_AUTO},
    {"tap", DPK_EXC_TAP},
    {"virtio-user", DPK_EXC_VIRTIO_USER},
    {NULL, 0},
};

static const struct cf_choice dpdk_polls[] = {
    {"adaptive", DPK_POLL_ADAPTIVE},
    {"busy", DPK_POLL_BUSY},
    {NULL, 0},
};

/* The `dpdk` section: read when dataplane = "dpdk" (docs/dpdk.md). */
static const struct cf_key dpdk_keys[] = {
    CF_STRING("device", cf_set_text, dp.dpdk.device, 1),
    CF_STRING("lcores", cf_set_text, dp.dpdk.lcores, 1),
    CF_UINT("memory_mb", dp.dpdk.memory_mb, 64, 1048576),
    CF_ENUM("hugepages", dp.dpdk.hugepages, dpdk_huge_modes),
    CF_STRING("file_prefix", cf_set_token, dp.dpdk.file_prefix, 1),
    CF_ENUM("exception", dp.dpdk.exception, dpdk_exceptions),
    CF_STRING("kernel_iface", cf_set_token, dp.dpdk.kernel_iface, 1),
    CF_UINT("prefix_len", dp.dpdk.prefix_len, 1, 32),
    CF_STRING("gateway", cf_set_ip, dp.dpdk.gateway, 1),
    CF_UINT("mbufs", dp.dpdk.mbufs, 1023, 4194303),
    CF_UINT("rx_desc", dp.dpdk.rx_desc, 64, 16384),
    CF_UINT("tx_desc", dp.dpdk.tx_desc, 64, 16384),
    CF_UINT("burst", dp.dpdk.burst, 1, 64),
    CF_ENUM("poll", dp.dpdk.poll, dpdk_polls),
    CF_STRING("eal_args", cf_set_text, dp.dpdk.eal_args, 0),
};

/* dataplane = "sockets" | "dpdk": a top-level value, not a group. */
static const struct cf_key dataplane_key = CF_ENUM("dataplane", dp.backend, backends);

/* Keys of one vmrs entry; offsets into struct ctl_vmr_conf. */
static const struct cf_key vmr_keys[] = {
    {.name = "alias", .set = cf_set_alias, CF_AT(struct ctl_vmr_conf, alias), .min = 1},
    {.name = "name", .set = cf_set_text, CF_AT(struct ctl_vmr_conf, name), .min = 0},
    {.name = "answer_delay",
     .set = cf_set_uint,
     CF_AT(struct ctl_vmr_conf, answer_delay_ms),
     .min = 0,
     .max = 60000,
     .scale = 1},
    {.name = "srtp", .set = cf_set_enum, CF_AT(struct ctl_vmr_conf, srtp), .choices = srtp_policies},
    {.name = "mix_speakers",
     .set = cf_set_uint,
     CF_AT(struct ctl_vmr_conf, mix_speakers),
     .min = 1,
     .max = 8,
     .scale = 1},
};

static cf_section_parser cf_parse_vmrs;

const struct cf_section cf_sections[] = {
    {"node", node_keys, CF_COUNT(node_keys), cf_parse_group},
    {"sip", sip_keys, CF_COUNT(sip_keys), cf_parse_group},
    {"tls", tls_keys, CF_COUNT(tls_keys), cf_parse_group},
    {"media", media_keys, CF_COUNT(media_keys), cf_parse_group},
    {"timers", timer_keys, CF_COUNT(timer_keys), cf_parse_group},
    {"limits", limit_keys, CF_COUNT(limit_keys), cf_parse_group},
    {"admin", admin_keys, CF_COUNT(admin_keys), cf_parse_group},
    {"vmrs", vmr_keys, CF_COUNT(vmr_keys), cf_parse_vmrs},
    {"cluster", cf_cluster_keys, CF_N_CLUSTER_KEYS, cf_parse_group},
    {"zones", cf_zone_keys, CF_N_ZONE_KEYS, cf_parse_group},
    {"search_rules", cf_rule_keys, CF_N_RULE_KEYS, cf_parse_rules},
    {"federation", cf_federation_keys, CF_N_FEDERATION_KEYS, cf_parse_group},
    {"dataplane", &dataplane_key, 1, cf_parse_dataplane},
    {"dpdk", dpdk_keys, CF_COUNT(dpdk_keys), cf_parse_group},
};
const size_t cf_n_sections = CF_COUNT(cf_sections);

struct cf_alias_ref {
    const char *alias;
    size_t index;
};

/* Orders aliases so that equal ones are adjacent: the user part compares exactly,
 * the domain without regard to case (as SIP compares URIs). Both are valid aliases. */
static int cf_alias_cmp(const void *a, const void *b)
{
    const struct cf_alias_ref *x = a, *y = b;
    const char *xa = strchr(x->alias, '@'), *ya = strchr(y->alias, '@');
    size_t xl = (size_t)(xa - x->alias), yl = (size_t)(ya - y->alias);
    int r = memcmp(x->alias, y->alias, xl < yl ? xl : yl);
    if (r == 0 && xl != yl)
        r = xl < yl ? -1 : 1;
    if (r == 0)
        r = strcasecmp(xa + 1, ya + 1);
    if (r == 0)
        r = x->index < y->index ? -1 : x->index > y->index;
    return r;
}

static void cf_check_duplicate_aliases(struct cf_ctx *c, const config_setting_t *list)
{
    const struct ctl_conf *ctl = &c->cfg->ctl;
    struct cf_alias_ref *refs = calloc(ctl->n_vmrs ? ctl->n_vmrs : 1, sizeof *refs);
    if (!refs) {
        cf_error(c, list, "vmrs", "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < ctl->n_vmrs; i++)
        if (ctl->vmrs[i].alias[0])
            refs[n++] = (struct cf_alias_ref){ctl->vmrs[i].alias, i};
    qsort(refs, n, sizeof *refs, cf_alias_cmp);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        struct cf_alias_ref a = refs[first], b = refs[i];
        a.index = b.index = 0;
        if (cf_alias_cmp(&a, &b) != 0) {
            first = i;
            continue;
        }
        const config_setting_t *orig = config_setting_get_member(
            config_setting_get_elem(list, (unsigned)refs[first].index), "alias");
        const config_setting_t *dup = config_setting_get_member(
            config_setting_get_elem(list, (unsigned)refs[i].index), "alias");
        char field[CF_FIELD_MAX];
        snprintf(field, sizeof field, "vmrs[%zu].alias", refs[i].index);
        cf_error(c, dup, field, "duplicate of vmrs[%zu] (line %u)", refs[first].index,
                 orig ? config_setting_source_line(orig) : 0);
    }
    free(refs);
}

static void cf_parse_vmrs(struct cf_ctx *c, const struct cf_section *sec, const config_setting_t *s)
{
    if (!config_setting_is_list(s)) {
        cf_error(c, s, sec->name, "expected a list ( { alias = \"...\"; }, ... ), got %s",
                 cf_type_name(s));
        return;
    }
    int n = config_setting_length(s);
    if (n <= 0)
        return;
    struct ctl_conf *ctl = &c->cfg->ctl;
    ctl->vmrs = calloc((size_t)n, sizeof *ctl->vmrs);
    if (!ctl->vmrs) {
        cf_error(c, s, sec->name, "out of memory for %d entries", n);
        return;
    }
    ctl->n_vmrs = (size_t)n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char field[CF_FIELD_MAX];
        snprintf(field, sizeof field, "vmrs[%d]", i);
        if (!config_setting_is_group(e)) {
            cf_error(c, e, field, "expected a group { alias = \"...\"; }, got %s", cf_type_name(e));
            continue;
        }
        cf_parse_members(c, sec->keys, sec->n_keys, e, &ctl->vmrs[i], field, sec->name, false);
        if (!config_setting_get_member(e, "alias")) {
            snprintf(field, sizeof field, "vmrs[%d].alias", i);
            cf_error(c, e, field, "required (user@domain a caller dials)");
        }
    }
    cf_check_duplicate_aliases(c, s);
}

void cf_validate_tls(struct cf_ctx *c)
{
    const struct dp_conf *dp = &c->cfg->dp;
    if (dp->tls_port == 0)
        return;
    static const char *const need[][2] = {{"tls.certificate", "certificate"}, {"tls.key", "key"}};
    for (size_t i = 0; i < CF_COUNT(need); i++) {
        const char *value = i == 0 ? dp->tls.certificate : dp->tls.key;
        if (value[0] || !cf_unset(c, need[i][0]))
            continue;
        cf_error(c, CF_WHERE(c, need[i][0], "tls", "sip.tls_port", "sip"), need[i][0],
                 "required when sip.tls_port is not 0 (TLS listener on port %u; set "
                 "sip.tls_port = 0 to run without TLS)",
                 dp->tls_port);
    }
    if (dp->tcp_port == dp->tls_port)
        cf_error(c, CF_WHERE(c, "sip.tls_port", "sip.tcp_port"), "sip.tls_port",
                 "same port as sip.tcp_port (%u)", dp->tcp_port);
}

void cf_validate_media(struct cf_ctx *c)
{
    const struct ctl_conf *ctl = &c->cfg->ctl;
    const struct dp_conf *dp = &c->cfg->dp;
    unsigned lo = ctl->media_port_min, hi = ctl->media_port_max;
    if (lo % 2 != 0)
        cf_error(c, CF_WHERE(c, "media.port_min", "media"), "media.port_min",
                 "must be even: RTP uses even ports, RTCP the next odd one (got %u)", lo);
    if (hi <= lo + 1) {
        cf_error(c, CF_WHERE(c, "media.port_max", "media.port_min", "media"), "media.port_max",
                 "must be greater than media.port_min + 1 (got %u, port_min %u)", hi, lo);
        return;
    }
    if (dp->udp_port >= lo && dp->udp_port <= hi && strcmp(ctl->media_address, dp->listen) == 0)
        cf_error(c, CF_WHERE(c, "media.port_min", "media.port_max", "sip.udp_port"),
                 "media.port_min", "range %u..%u includes sip.udp_port %u on the same address", lo,
                 hi, dp->udp_port);
}

void cf_validate_misc(struct cf_ctx *c)
{
    const struct cn_config *cfg = c->cfg;
    if (cfg->ctl.t2_ms < cfg->ctl.t1_ms)
        cf_error(c, CF_WHERE(c, "timers.t2", "timers.t1", "timers"), "timers.t2",
                 "must not be less than timers.t1 (%u < %u ms)", cfg->ctl.t2_ms, cfg->ctl.t1_ms);
    unsigned port = cfg->admin.port;
    if (port != 0 && strcmp(cfg->admin.listen, cfg->dp.listen) == 0) {
        const char *clash = port == cfg->dp.tcp_port   ? "sip.tcp_port"
                            : port == cfg->dp.tls_port ? "sip.tls_port"
                                                       : NULL;
        if (clash)
            cf_error(c, CF_WHERE(c, "admin.port", clash), "admin.port",
                     "same address and port as %s (%u)", clash, port);
    }
}

void cf_validate_dpdk(struct cf_ctx *c)
{
    const struct dp_conf *dp = &c->cfg->dp;
    if (dp->backend != DP_BACKEND_DPDK)
        return;
    if (!dp->dpdk.device[0] && cf_unset(c, "dpdk.device"))
        cf_error(c, CF_WHERE(c, "dpdk", "dataplane"), "dpdk.device",
                 "required when dataplane = \"dpdk\" (a PCI address such as \"0000:03:00.0\", "
                 "or a vdev such as \"net_af_packet0,iface=eth1\")");
    unsigned char a4[4];
    if (inet_pton(AF_INET, dp->listen, a4) != 1 || a4[0] == 127)
        cf_error(c, CF_WHERE(c, "sip.listen", "dataplane"), "sip.listen",
                 "with dataplane = \"dpdk\" must be the node's IPv4 address on the wire, which "
                 "goes on dpdk.kernel_iface (got %s)", dp->listen);
}
