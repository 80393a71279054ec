/* In-process cluster store: claims stick to live owners and move off dead ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cl_store.h"

static void first_claim_wins_while_its_lease_lives(void **state)
{
    (void)state;
    struct cl_store *s = cl_local_create();
    assert_non_null(s);
    struct cl_node_info a = {.name = "a", .lease_until = 1000};
    struct cl_node_info b = {.name = "b", .lease_until = 5000};
    assert_int_equal(s->ops->heartbeat(s, &a), CL_OK);
    assert_int_equal(s->ops->heartbeat(s, &b), CL_OK);
    char owner[64];
    assert_int_equal(s->ops->claim(s, "meet@example.test", "a", 100, owner), CL_OK);
    assert_string_equal(owner, "a");
    assert_int_equal(s->ops->claim(s, "meet@example.test", "b", 200, owner), CL_OK);
    assert_string_equal(owner, "a");
    /* a's lease ran out: the next join places the conference on b */
    assert_int_equal(s->ops->claim(s, "meet@example.test", "b", 2000, owner), CL_OK);
    assert_string_equal(owner, "b");
    cl_store_free(s);
}

static void release_forgets_only_the_owners_claim(void **state)
{
    (void)state;
    struct cl_store *s = cl_local_create();
    struct cl_node_info a = {.name = "a", .lease_until = 1000};
    s->ops->heartbeat(s, &a);
    char owner[64];
    s->ops->claim(s, "room", "a", 1, owner);
    assert_int_equal(s->ops->release(s, "room", "b"), CL_ERR_NOT_FOUND);
    assert_int_equal(s->ops->release(s, "room", "a"), CL_OK);
    assert_int_equal(s->ops->release(s, "room", "a"), CL_ERR_NOT_FOUND);
    cl_store_free(s);
    cl_store_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_claim_wins_while_its_lease_lives),
        cmocka_unit_test(release_forgets_only_the_owners_claim),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
