/* Fuzz target for fed_diag_parse() and fed_diag_build().
 *
 * The input is an ms-diagnostics header value as a peer could send it. It is parsed
 * from a buffer of exactly its length (ASan catches any read past the end), and
 * every view in the result must lie inside the input. When it parses, each parameter
 * is unescaped and the header is rebuilt with fed_diag_build() from the unescaped
 * values: the rebuilt header must parse again to the same code and the same values,
 * and it must never contain CR or LF whatever the input held. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fed_diag.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_view(fed_diag_str_t v, const char *base, size_t len)
{
    if (v.s == NULL) {
        CHECK(v.len == 0);
        return;
    }
    CHECK(v.s >= base && v.s + v.len <= base + len);
}

static char values[FED_DIAG_MAX_PARAMS][512];
static char names[FED_DIAG_MAX_PARAMS][512];
static char rebuilt[FED_DIAG_MAX_PARAMS * 1200 + 64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    if (in == NULL)
        return 0;
    memcpy(in, data, size);

    struct fed_diag_parsed p;
    fed_diag_status_t st = fed_diag_parse(in, size, &p);
    CHECK(st == FED_DIAG_OK || st == FED_DIAG_ERR_SYNTAX || st == FED_DIAG_ERR_TOO_MANY);
    CHECK(p.n_params <= FED_DIAG_MAX_PARAMS);
    check_view(p.reason, in, size);
    for (size_t i = 0; i < p.n_params; i++) {
        check_view(p.params[i].name, in, size);
        check_view(p.params[i].value, in, size);
        CHECK(p.params[i].name.len > 0);
    }
    if (st != FED_DIAG_OK)
        goto out;
    CHECK(p.code >= 0 && p.code <= 999999999);

    /* rebuild from unescaped values; bare names get an empty value */
    struct fed_diag_param params[FED_DIAG_MAX_PARAMS];
    size_t n = 0;
    for (size_t i = 0; i < p.n_params; i++) {
        fed_diag_str_t nm = p.params[i].name;
        if (nm.len >= sizeof names[0] || p.params[i].value.len >= sizeof values[0])
            goto out;
        memcpy(names[n], nm.s, nm.len);
        names[n][nm.len] = '\0';
        CHECK(fed_diag_unescape(p.params[i].value, values[n], sizeof values[n]) >= 0);
        if (strlen(values[n]) !=
            (size_t)fed_diag_unescape(p.params[i].value, values[n], sizeof values[n]))
            goto out; /* an escaped NUL: not representable as a C string */
        params[n].name = names[n];
        params[n].value = values[n];
        n++;
    }
    if (p.code == 0)
        goto out; /* the builder refuses code 0 */
    int len = fed_diag_build(rebuilt, sizeof rebuilt, p.code, "", params, n);
    CHECK(len > 0);
    CHECK(strchr(rebuilt, '\r') == NULL && strchr(rebuilt, '\n') == NULL);

    struct fed_diag_parsed q;
    CHECK(fed_diag_parse(rebuilt, (size_t)len, &q) != FED_DIAG_ERR_SYNTAX);
    CHECK(q.code == p.code);
    CHECK(q.n_params == (n + 1 < FED_DIAG_MAX_PARAMS ? n + 1 : FED_DIAG_MAX_PARAMS));
    for (size_t i = 0; i + 1 < q.n_params; i++) {
        static char v[1024];
        fed_diag_unescape(q.params[i + 1].value, v, sizeof v);
        /* control characters were blanked and invalid UTF-8 replaced by the builder */
        bool plain = true;
        for (const unsigned char *c = (const unsigned char *)values[i]; *c; c++) {
            if (*c < 0x20 || *c >= 0x7F)
                plain = false;
        }
        if (plain)
            CHECK(strcmp(v, values[i]) == 0);
        CHECK(q.params[i + 1].name.len == strlen(names[i]));
    }
out:
    free(in);
    return 0;
}
