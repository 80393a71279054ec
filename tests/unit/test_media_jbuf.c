/* Jitter buffer: reordering, late and duplicate packets, loss and underrun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "md_jbuf.h"

static md_jb_push_t push(struct md_jbuf *jb, uint16_t seq)
{
    uint8_t b[4] = {(uint8_t)(seq >> 8), (uint8_t)seq, 0xaa, 0x55};
    return md_jbuf_push(jb, seq, seq * 160u, b, sizeof b);
}

/* Pops one tick; returns the sequence number carried by the frame, -1 for LOST,
 * -2 for EMPTY. */
static int pop(struct md_jbuf *jb)
{
    const uint8_t *p;
    size_t len;
    uint32_t ts;
    md_jb_pop_t r = md_jbuf_pop(jb, &p, &len, &ts);
    if (r == MD_JB_LOST)
        return -1;
    if (r == MD_JB_EMPTY)
        return -2;
    assert_int_equal(len, 4);
    int seq = (p[0] << 8) | p[1];
    assert_int_equal(ts, (uint32_t)(seq * 160u));
    return seq;
}

static void jbuf_waits_for_its_depth_then_plays_in_order(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 3);
    assert_int_equal(pop(&jb), -2);
    assert_int_equal(push(&jb, 100), MD_JB_QUEUED);
    assert_int_equal(push(&jb, 101), MD_JB_QUEUED);
    assert_int_equal(pop(&jb), -2); /* still filling */
    assert_int_equal(push(&jb, 102), MD_JB_QUEUED);
    assert_int_equal(pop(&jb), 100);
    assert_int_equal(pop(&jb), 101);
    assert_int_equal(pop(&jb), 102);
    assert_int_equal(jb.st.played, 3);
}

static void jbuf_reorders_packets_by_sequence_number_across_the_wrap(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 3);
    uint16_t order[] = {65534, 0, 65535, 2, 1, 3};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(push(&jb, order[i]), MD_JB_QUEUED);
    int expect[] = {65534, 65535, 0, 1, 2, 3};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(pop(&jb), expect[i]);
    assert_int_equal(jb.st.lost, 0);
}

static void jbuf_accepts_an_earlier_packet_while_filling(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 3);
    assert_int_equal(push(&jb, 11), MD_JB_QUEUED);
    assert_int_equal(push(&jb, 10), MD_JB_QUEUED);
    assert_int_equal(push(&jb, 12), MD_JB_QUEUED);
    assert_int_equal(pop(&jb), 10);
    assert_int_equal(pop(&jb), 11);
}

static void jbuf_drops_late_and_duplicate_packets(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 2);
    push(&jb, 1);
    push(&jb, 2);
    assert_int_equal(push(&jb, 2), MD_JB_DUPLICATE);
    assert_int_equal(pop(&jb), 1);
    assert_int_equal(push(&jb, 1), MD_JB_LATE); /* already played */
    assert_int_equal(push(&jb, 0), MD_JB_LATE);
    assert_int_equal(pop(&jb), 2);
    assert_int_equal(jb.st.late, 2);
    assert_int_equal(jb.st.duplicate, 1);
    uint8_t big[MD_JB_MAX_PAYLOAD + 1] = {0};
    assert_int_equal(md_jbuf_push(&jb, 3, 0, big, sizeof big), MD_JB_TOO_BIG);
    assert_int_equal(jb.st.too_big, 1);
}

static void jbuf_reports_a_missing_frame_as_lost_and_moves_on(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 2);
    push(&jb, 1);
    push(&jb, 2);
    push(&jb, 4);
    assert_int_equal(pop(&jb), 1);
    assert_int_equal(pop(&jb), 2);
    assert_int_equal(pop(&jb), -1); /* 3 never came */
    assert_int_equal(pop(&jb), 4);
    assert_int_equal(jb.st.lost, 1);
    /* 3 arriving now is late */
    assert_int_equal(push(&jb, 3), MD_JB_LATE);
}

static void jbuf_underrun_conceals_without_skipping_then_stops(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 1);
    push(&jb, 50);
    assert_int_equal(pop(&jb), 50);
    /* the sender pauses: concealment, but 51 is still expected */
    assert_int_equal(pop(&jb), -1);
    assert_int_equal(pop(&jb), -1);
    assert_int_equal(push(&jb, 51), MD_JB_QUEUED);
    assert_int_equal(pop(&jb), 51);
    assert_int_equal(jb.st.underrun, 2);
    /* a long pause stops playout; the next packet re-anchors whatever its number */
    for (int i = 0; i < MD_JB_SLOTS - 1; i++)
        assert_int_equal(pop(&jb), -1);
    assert_int_equal(pop(&jb), -2);
    assert_int_equal(push(&jb, 9000), MD_JB_QUEUED);
    assert_int_equal(pop(&jb), 9000);
}

static void jbuf_resyncs_on_a_jump_far_ahead(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 2);
    push(&jb, 10);
    push(&jb, 11);
    assert_int_equal(pop(&jb), 10);
    assert_int_equal(push(&jb, 10 + 1000), MD_JB_RESYNC);
    assert_int_equal(jb.st.resync, 1);
    push(&jb, 1011);
    assert_int_equal(pop(&jb), 1010);
    assert_int_equal(pop(&jb), 1011);
}

static void jbuf_starts_after_depth_ticks_with_a_single_packet(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 3);
    push(&jb, 7);
    assert_int_equal(pop(&jb), -2);
    assert_int_equal(pop(&jb), -2);
    assert_int_equal(pop(&jb), 7);
}

static void jbuf_resyncs_when_the_sender_restarts_its_numbering_far_behind(void **state)
{
    (void)state;
    struct md_jbuf jb;
    md_jbuf_init(&jb, 1);
    push(&jb, 5000);
    assert_int_equal(pop(&jb), 5000);
    /* a few frames behind is late; hundreds behind is a new numbering */
    assert_int_equal(push(&jb, 4990), MD_JB_LATE);
    assert_int_equal(push(&jb, 5000 - MD_JB_BACK_JUMP - 1), MD_JB_RESYNC);
    assert_int_equal(pop(&jb), 5000 - MD_JB_BACK_JUMP - 1);
    assert_int_equal(push(&jb, 5000 - MD_JB_BACK_JUMP), MD_JB_QUEUED);
    assert_int_equal(pop(&jb), 5000 - MD_JB_BACK_JUMP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jbuf_waits_for_its_depth_then_plays_in_order),
        cmocka_unit_test(jbuf_reorders_packets_by_sequence_number_across_the_wrap),
        cmocka_unit_test(jbuf_accepts_an_earlier_packet_while_filling),
        cmocka_unit_test(jbuf_drops_late_and_duplicate_packets),
        cmocka_unit_test(jbuf_reports_a_missing_frame_as_lost_and_moves_on),
        cmocka_unit_test(jbuf_underrun_conceals_without_skipping_then_stops),
        cmocka_unit_test(jbuf_resyncs_on_a_jump_far_ahead),
        cmocka_unit_test(jbuf_starts_after_depth_ticks_with_a_single_packet),
        cmocka_unit_test(jbuf_resyncs_when_the_sender_restarts_its_numbering_far_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
