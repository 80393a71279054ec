/* The media port partition: every pair has exactly one owner, allocation stays
 * inside the worker's share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cn_ports.h"
#include "media_ports.h"

static void every_pair_is_owned_by_exactly_one_worker(void **state)
{
    (void)state;
    enum { N = 3, MIN = 40000, MAX = 40999 };
    static unsigned char seen[65536];
    memset(seen, 0, sizeof seen);
    unsigned total = 0;
    for (unsigned w = 0; w < N; w++) {
        struct media_ports mp;
        assert_int_equal(media_ports_init(&mp, MIN, MAX, w, N), 0);
        int p;
        while ((p = media_ports_alloc(&mp)) >= 0) {
            assert_true(p >= MIN && p < MAX && (p % 2) == 0);
            assert_int_equal(cn_port_owner((uint16_t)p, MIN, N), w);
            assert_int_equal(seen[p], 0);
            seen[p] = 1;
            total++;
        }
        media_ports_fini(&mp);
    }
    assert_int_equal(total, (MAX - MIN + 1) / 2);
}

static void released_ports_are_handed_out_again(void **state)
{
    (void)state;
    struct media_ports mp;
    assert_int_equal(media_ports_init(&mp, 50000, 50007, 0, 1), 0);
    int a = media_ports_alloc(&mp), b = media_ports_alloc(&mp);
    assert_int_equal(a, 50000);
    assert_int_equal(b, 50002);
    assert_int_equal(media_ports_alloc(&mp), 50004);
    assert_int_equal(media_ports_alloc(&mp), 50006);
    assert_int_equal(media_ports_alloc(&mp), -1);
    media_ports_release(&mp, (uint16_t)b);
    assert_int_equal(media_ports_alloc(&mp), b);
    media_ports_fini(&mp);
}

static void bad_ranges_are_refused(void **state)
{
    (void)state;
    struct media_ports mp;
    assert_int_equal(media_ports_init(&mp, 40001, 40999, 0, 2), -1); /* odd base */
    assert_int_equal(media_ports_init(&mp, 40000, 40000, 0, 2), -1);
    assert_int_equal(media_ports_init(&mp, 40000, 40999, 2, 2), -1); /* no such worker */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_pair_is_owned_by_exactly_one_worker),
        cmocka_unit_test(released_ports_are_handed_out_again),
        cmocka_unit_test(bad_ranges_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
