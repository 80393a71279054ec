/* Fuzz target for md_sdes_parse (SDP a=crypto values).
 *
 * The input is the attribute text, in a buffer of exactly its size. A line that
 * parses is formatted again and the result must parse to the same keys, suite,
 * tag, lifetime, MKI and window hint (the format/parse round trip). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "md_sdes.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    struct md_crypto a;
    md_status_t st = md_sdes_parse(s, size, &a);
    CHECK(st == MD_OK || st == MD_ERR_MALFORMED || st == MD_ERR_UNSUPPORTED);
    CHECK(memcmp(s, data, size) == 0);
    if (st == MD_OK) {
        CHECK(a.key_len == md_suite_key_len(a.suite) + md_suite_salt_len(a.suite));
        char line[MD_SDES_MAX_LINE];
        int n = md_sdes_format(line, sizeof line, &a);
        CHECK(n > 0 && (size_t)n == strlen(line));
        struct md_crypto b;
        CHECK(md_sdes_parse(line, (size_t)n, &b) == MD_OK);
        CHECK(b.tag == a.tag && b.suite == a.suite && b.key_len == a.key_len);
        CHECK(memcmp(b.key, a.key, a.key_len) == 0);
        CHECK(b.lifetime == a.lifetime && b.mki_len == a.mki_len && b.wsh == a.wsh);
        CHECK(a.mki_len == 0 || b.mki == a.mki);
    }
    free(s);
    return 0;
}
