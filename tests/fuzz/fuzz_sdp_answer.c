/* Fuzz target for sdp_answer_build().
 *
 * The input is an offer, in a buffer of exactly its size so ASan catches any read
 * past the end; its size picks our side (IPv4 or IPv6 address, port). Checked:
 *   - a refusal comes with a reason fit for a Warning header (printable ASCII, no
 *     quote or backslash);
 *   - an answer is NUL-terminated within the buffer, has CRLF line ends only,
 *     starts with v=0 and o=, parses with sofia-sip's strict parser, answers each
 *     offered m= line in order with the same media type, accepts exactly one (an
 *     audio line on our port) and rejects the others with port 0;
 *   - the same answer fails cleanly in a buffer one byte short of its NUL. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include "sdp_answer.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_answer(const char *offer, size_t offer_len, const struct sdp_answer_params *p,
                         const char *out, size_t n)
{
    CHECK(n >= 2 && out[n] == '\0' && memcmp(out, "v=0\r\no=", 7) == 0);
    CHECK(out[n - 2] == '\r' && out[n - 1] == '\n');
    for (size_t i = 0; i < n; i++) {
        if (out[i] == '\r')
            CHECK(out[i + 1] == '\n');
        if (out[i] == '\n')
            CHECK(i > 0 && out[i - 1] == '\r');
    }

    su_home_t home[1];
    su_home_init(home);
    sdp_parser_t *ap = sdp_parse(home, out, (issize_t)n, sdp_f_strict);
    sdp_parser_t *op = sdp_parse(home, offer, (issize_t)offer_len, 0);
    const sdp_session_t *a = sdp_session(ap), *o = sdp_session(op);
    if (!a)
        fprintf(stderr, "answer does not parse: %s\n%s", sdp_parsing_error(ap), out);
    CHECK(a != NULL && o != NULL);
    unsigned accepted = 0;
    const sdp_media_t *am = a->sdp_media, *om = o->sdp_media;
    for (; am && om; am = am->m_next, om = om->m_next) {
        CHECK(am->m_type == om->m_type);
        if (am->m_port != 0) {
            accepted++;
            CHECK(am->m_type == sdp_media_audio && am->m_port == p->audio_port);
            CHECK(om->m_port != 0);
        }
    }
    CHECK(am == NULL && om == NULL);
    CHECK(accepted == 1);
    sdp_parser_free(op);
    sdp_parser_free(ap);
    su_home_deinit(home);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct sdp_answer_params sides[] = {
        {.address = "192.0.2.10", .audio_port = 40000, .session_id = 1, .username = "confnode"},
        {.address = "2001:db8::10",
         .audio_port = 2,
         .session_id = UINT64_MAX,
         .username = "confnode"},
    };
    const struct sdp_answer_params *p = &sides[size % 2];
    char *offer = malloc(size ? size : 1);
    if (!offer)
        return 0;
    if (size)
        memcpy(offer, data, size);

    char out[8192], why[128];
    memset(why, 'x', sizeof why);
    ssize_t n = sdp_answer_build(offer, size, p, out, sizeof out, why, sizeof why);
    CHECK(memchr(why, '\0', sizeof why) != NULL);
    if (n < 0) {
        CHECK(n == -1 && why[0] != '\0');
        for (const char *c = why; *c; c++)
            CHECK(*c >= 0x20 && *c < 0x7f && *c != '"' && *c != '\\');
    } else {
        CHECK(why[0] == '\0' && (size_t)n < sizeof out);
        check_answer(offer, size, p, out, (size_t)n);
        char *tight = malloc((size_t)n + 1);
        CHECK(tight != NULL);
        CHECK(sdp_answer_build(offer, size, p, tight, (size_t)n, NULL, 0) == -1);
        CHECK(sdp_answer_build(offer, size, p, tight, (size_t)n + 1, NULL, 0) == n);
        CHECK(memcmp(tight, out, (size_t)n + 1) == 0);
        free(tight);
    }
    free(offer);
    return 0;
}
