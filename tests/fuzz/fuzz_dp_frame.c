/* Fuzz target for dp_frame_next().
 *
 * The input is a byte stream as a connection would receive it. It is framed unit
 * by unit (consuming each MESSAGE, PING and PONG) several ways, and all must agree:
 *   - whole: everything available at once;
 *   - split: the first k bytes arrive, then the rest, with the scan state kept
 *     across the two reads (every k for short inputs, a sample for long ones);
 *   - byte by byte, for short inputs.
 * Each read is presented in a buffer of exactly its length, so ASan catches any read
 * past buf[avail-1]. Every result is checked against what the bytes must look like
 * (a ping is "\r\n\r\n", a message holds the end of its headers, ...), and lengths
 * must stay within what was available. The walk always terminates because every
 * consumed unit is at least 2 bytes long. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_frame.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_UNITS 4096
#define MAX_SPLITS 256

struct unit {
    dp_frame_result_t res;
    size_t len;
};

struct walk {
    struct unit u[MAX_UNITS];
    size_t n; /* units recorded, the last being PARTIAL or an error */
};

/* Checks a unit found at the start of b[0..avail) against the bytes themselves. */
static void check_unit(const uint8_t *b, size_t avail, size_t max, dp_frame_result_t r, size_t len)
{
    const uint8_t *end;
    switch (r) {
    case DP_FRAME_PING:
        CHECK(len == 4 && avail >= 4 && memcmp(b, "\r\n\r\n", 4) == 0);
        break;
    case DP_FRAME_PONG:
        CHECK(len == 2 && avail >= 3 && memcmp(b, "\r\n", 2) == 0);
        CHECK(memcmp(b + 2, "\r\n", avail > 3 ? 2 : 1) != 0);
        break;
    case DP_FRAME_MESSAGE:
    case DP_FRAME_NO_LENGTH:
    case DP_FRAME_BAD_LENGTH:
        CHECK(len >= 4 && len <= avail && len <= max);
        CHECK(memcmp(b, "\r\n", 2) != 0);
        end = memmem(b, len, "\r\n\r\n", 4);
        CHECK(end != NULL);
        if (r != DP_FRAME_MESSAGE)
            CHECK((size_t)(end - b) + 4 == len);
        break;
    case DP_FRAME_TOO_BIG:
        CHECK(len <= avail);
        if (len > 0) {
            /* headers complete: they end at len */
            end = memmem(b, len, "\r\n\r\n", 4);
            CHECK(end != NULL && (size_t)(end - b) + 4 == len && len <= max);
        } else {
            /* headers do not end within max */
            end = memmem(b, avail < max ? avail : max, "\r\n\r\n", 4);
            CHECK(end == NULL || (size_t)(end - b) + 4 > max);
        }
        break;
    default:
        CHECK(0);
    }
}

/* Frames data[0..size) delivered as reads ending at the offsets cuts[0..ncuts), the
 * last being size. Each read is copied to a buffer of exactly its length. */
static void walk(const uint8_t *data, size_t size, size_t max, const size_t *cuts, size_t ncuts,
                 struct walk *w)
{
    dp_frame_state_t st = {0};
    size_t off = 0, c = 0;
    uint8_t *buf = NULL;

    CHECK(ncuts > 0 && cuts[ncuts - 1] == size);
    w->n = 0;
    buf = malloc(cuts[0] ? cuts[0] : 1);
    CHECK(buf != NULL);
    memcpy(buf, data, cuts[0]);
    for (;;) {
        size_t avail = cuts[c];
        size_t len = SIZE_MAX;
        dp_frame_result_t r = dp_frame_next((const char *)buf + off, avail - off, max, &st, &len);
        if (r == DP_FRAME_PARTIAL) {
            CHECK(len == SIZE_MAX);
            if (c + 1 == ncuts) {
                CHECK(w->n < MAX_UNITS);
                w->u[w->n++] = (struct unit){r, 0};
                break;
            }
            c++;
            free(buf);
            buf = malloc(cuts[c] ? cuts[c] : 1);
            CHECK(buf != NULL);
            memcpy(buf, data, cuts[c]);
            continue;
        }
        check_unit(buf + off, avail - off, max, r, len);
        CHECK(w->n < MAX_UNITS);
        w->u[w->n++] = (struct unit){r, len};
        st = (dp_frame_state_t){0};
        if (r < 0)
            break;
        off += len;
    }
    free(buf);
}

static void same(const struct walk *a, const struct walk *b)
{
    CHECK(a->n == b->n);
    for (size_t i = 0; i < a->n; i++) {
        CHECK(a->u[i].res == b->u[i].res);
        CHECK(a->u[i].len == b->u[i].len);
    }
}

static struct walk whole, other;
static size_t cuts[4096 + 1];

static void run(const uint8_t *data, size_t size, size_t max)
{
    size_t all = size;
    walk(data, size, max, &all, 1, &whole);

    /* two reads, split at k */
    size_t step = size / MAX_SPLITS + 1;
    for (size_t k = 0; k < size; k += step) {
        size_t two[2] = {k, size};
        walk(data, size, max, two, 2, &other);
        same(&whole, &other);
    }
    /* around every unit boundary, where the interesting splits are */
    size_t at = 0;
    for (size_t i = 0; i < whole.n && whole.u[i].res > 0; i++) {
        at += whole.u[i].len;
        for (size_t d = 0; d < 6; d++) {
            size_t two[2] = {at + d >= 3 ? at + d - 3 : 0, size};
            if (two[0] >= size)
                break;
            walk(data, size, max, two, 2, &other);
            same(&whole, &other);
        }
    }

    /* one byte per read */
    if (size <= 256) {
        for (size_t i = 0; i < size; i++)
            cuts[i] = i + 1;
        walk(data, size, max, cuts, size, &other);
        same(&whole, &other);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0 || size > 4096)
        return 0;
    run(data, size, 65536);
    run(data, size, size); /* the whole input is the largest allowed */
    run(data, size, size / 2 + 3);
    return 0;
}
