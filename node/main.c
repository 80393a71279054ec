/* confnode: the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cn_log.h"
#include "config.h"
#include "doctor.h"
#include "drain.h"
#include "history.h"
#include "node.h"
#include "plan.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: confnode <command> [options]\n"
            "\n"
            "commands:\n"
            "  run -c FILE            run the node in the foreground (Ctrl-C / SIGTERM stops it)\n"
            "  check-config -c FILE   validate a configuration file; exit 0 when valid\n"
            "  plan -c FILE [--cert CERT.pem]\n"
            "                         DNS records and certificate SANs the cluster needs;\n"
            "                         checks CERT (default tls.certificate): 0 = nothing missing\n"
            "  csr -c FILE --key KEY --out CSR [--key-type ec|rsa]\n"
            "                         write the cluster's certificate request (new KEY if absent)\n"
            "  doctor DOMAIN [--dns HOST:PORT] [--ca FILE] [--json] [--timeout SECONDS]\n"
            "                         federation readiness of DOMAIN as a federated edge sees it\n"
            "  history [-c FILE | --admin HOST:PORT] [--json] [--last N]\n"
            "                         search history of a running node, from its admin API\n"
            "  drain [-c FILE | --admin HOST:PORT] [--wait SECONDS]\n"
            "                         maintenance: no new conferences, calls stay until they\n"
            "                         end, then the node leaves the cluster (also SIGUSR2)\n"
            "  version                print the version\n"
            "  help                   this text\n");
}

static const char *config_arg(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc)
            return argv[i + 1];
        if (strncmp(argv[i], "--config=", 9) == 0)
            return argv[i] + 9;
    }
    return NULL;
}

static int load(const char *path, struct cn_config *cfg, int check_files)
{
    static char err[8192];
    if (cn_config_load(path, cfg, err, sizeof err) != 0 ||
        (check_files && cn_config_check_files(cfg, err, sizeof err) != 0)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    snprintf(cfg->ctl.node_name, sizeof cfg->ctl.node_name, "%s", cfg->node.name);
    cfg->ctl.clustered = cfg->cluster.mode == CN_CLUSTER_REDIS;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("confnode %s\n", CONFNODE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "plan") == 0)
        return cn_plan_main(argc, argv);
    if (strcmp(cmd, "csr") == 0)
        return cn_csr_main(argc, argv);
    if (strcmp(cmd, "doctor") == 0)
        return cn_cmd_doctor(argc - 1, argv + 1);
    if (strcmp(cmd, "history") == 0)
        return cn_cmd_history(argc - 1, argv + 1);
    if (strcmp(cmd, "drain") == 0)
        return cn_cmd_drain(argc - 1, argv + 1);
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "check-config") != 0) {
        fprintf(stderr, "confnode: unknown command '%s'\n\n", cmd);
        usage(stderr);
        return 2;
    }
    const char *path = config_arg(argc, argv);
    if (!path) {
        fprintf(stderr, "confnode %s: -c FILE is required\n", cmd);
        return 2;
    }
    struct cn_config cfg;
    int rc;
    if (strcmp(cmd, "check-config") == 0) {
        rc = load(path, &cfg, 1) == 0 ? 0 : 1;
        if (rc == 0)
            printf("%s: ok (%u workers, %zu VMRs)\n", path, cfg.dp.workers, cfg.ctl.n_vmrs);
        cn_config_free(&cfg);
        return rc;
    }
    if (load(path, &cfg, 1) != 0) {
        cn_config_free(&cfg);
        return 1;
    }
    cn_log_set_level((cn_log_level_t)cfg.node.log_level);
    rc = cn_node_run(&cfg);
    cn_config_free(&cfg);
    return rc;
}
