/* Fuzz target: cn_config_load() on arbitrary file contents.
 *
 * Each input is written to in.conf inside a fresh private directory (so an @include
 * in the input can only name files in that directory, never stdin or a device),
 * loaded, freed and removed with its directory. Beyond the sanitizers it checks the
 * loader's contract: 0 means no message; -1 means a message whose every line starts
 * with the directory, i.e. names the file it is about. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* libconfig 1.5 leaks a string token's buffer when the grammar rejects it
 * (`a "x";`, `"x" = 1;`): the parser has no destructor for string tokens. It is
 * 64 bytes per rejected file and libconfig's own, so LeakSanitizer is told to skip
 * leaks allocated under libconfig; any leak from our code still fails. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

static int write_all(const char *file, const uint8_t *data, size_t size)
{
    FILE *f = fopen(file, "wb");
    if (!f)
        return -1;
    size_t n = size ? fwrite(data, 1, size, f) : 0;
    return fclose(f) == 0 && n == size ? 0 : -1;
}

/* The loader's contract for one result (see the top of this file). */
static bool contract_holds(const char *dir, int rc, const struct cn_config *cfg, const char *err)
{
    if (rc == 0)
        return err[0] == '\0' && cfg->dp.workers >= 1 && cfg->dp.workers <= 128 &&
               (cfg->ctl.n_vmrs == 0 || cfg->ctl.vmrs != NULL);
    if (rc != -1 || err[0] == '\0')
        return false;
    for (const char *line = err; line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (strncmp(line, dir, strlen(dir)) != 0)
            return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/tmp/fuzz_config.XXXXXX";
    char path[sizeof dir + 16];
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof path, "%s/in.conf", dir);
    if (write_all(path, data, size) != 0)
        abort();

    struct cn_config cfg;
    char err[8192];
    int rc = cn_config_load(path, &cfg, err, sizeof err);
    bool ok = contract_holds(dir, rc, &cfg, err);
    cn_config_free(&cfg);
    unlink(path);
    rmdir(dir);
    if (!ok) {
        fprintf(stderr, "contract broken: rc=%d err='%s'\n", rc, err);
        abort();
    }
    return 0;
}
