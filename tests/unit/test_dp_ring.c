/* dp_ring: bounded SPSC ring of fixed-size slots. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dp_ring.h"

/* A slot whose two halves must agree, so a torn or stale copy is detected. */
struct msg {
    uint64_t seq;
    uint64_t check;
    char pad[8];
};

static struct msg make(uint64_t seq)
{
    struct msg m = {seq, ~seq * 0x9e3779b97f4a7c15u, {0}};
    memcpy(m.pad, &seq, sizeof m.pad);
    return m;
}

static void assert_msg(const struct msg *m, uint64_t seq)
{
    assert_int_equal(m->seq, seq);
    assert_int_equal(m->check, ~seq * 0x9e3779b97f4a7c15u);
    assert_memory_equal(m->pad, &seq, sizeof m->pad);
}

static void ring_rejects_bad_sizes(void **state)
{
    (void)state;
    static const size_t bad_caps[] = {0, 3, 6, 100, 65535, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad_caps / sizeof bad_caps[0]; i++) {
        errno = 0;
        assert_null(dp_ring_create(bad_caps[i], 8));
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_null(dp_ring_create(64, 0));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(dp_ring_create((size_t)1 << (sizeof(size_t) * 8 - 4), 64));
    assert_int_equal(errno, EINVAL);
}

static void ring_free_accepts_null(void **state)
{
    (void)state;
    dp_ring_free(NULL);
    dp_ring_t *r = dp_ring_create(1, 1);
    assert_non_null(r);
    assert_int_equal(dp_ring_capacity(r), 1);
    dp_ring_free(r);
}

static void ring_reports_full_after_capacity_slots_and_empty_after_draining(void **state)
{
    (void)state;
    dp_ring_t *r = dp_ring_create(8, sizeof(struct msg));
    assert_non_null(r);
    assert_int_equal(dp_ring_capacity(r), 8);
    struct msg m;
    assert_int_equal(dp_ring_dequeue(r, &m), -1);
    assert_int_equal(dp_ring_count(r), 0);

    for (uint64_t i = 0; i < 8; i++) {
        m = make(i);
        assert_int_equal(dp_ring_enqueue(r, &m), 0);
        assert_int_equal(dp_ring_count(r), i + 1);
    }
    m = make(99);
    assert_int_equal(dp_ring_enqueue(r, &m), -1);
    assert_int_equal(dp_ring_count(r), 8);

    for (uint64_t i = 0; i < 8; i++) {
        assert_int_equal(dp_ring_dequeue(r, &m), 0);
        assert_msg(&m, i);
        assert_int_equal(dp_ring_count(r), 7 - i);
    }
    memset(&m, 0x55, sizeof m);
    assert_int_equal(dp_ring_dequeue(r, &m), -1);
    assert_int_equal(m.seq, 0x5555555555555555u); /* untouched when empty */
    dp_ring_free(r);
}

static void ring_copies_slots_by_value(void **state)
{
    (void)state;
    dp_ring_t *r = dp_ring_create(2, sizeof(struct msg));
    assert_non_null(r);
    struct msg m = make(7);
    assert_int_equal(dp_ring_enqueue(r, &m), 0);
    m = make(8); /* the caller's copy may change once enqueued */
    struct msg out;
    assert_int_equal(dp_ring_dequeue(r, &out), 0);
    assert_msg(&out, 7);
    dp_ring_free(r);
}

static void ring_keeps_fifo_order_across_many_wraparounds(void **state)
{
    (void)state;
    dp_ring_t *r = dp_ring_create(4, sizeof(struct msg));
    assert_non_null(r);
    uint64_t in = 0, out = 0;
    for (int round = 0; round < 1000; round++) {
        size_t puts = (size_t)(round % 5), gets = (size_t)((round * 7) % 5);
        for (size_t i = 0; i < puts; i++) {
            struct msg m = make(in);
            int rc = dp_ring_enqueue(r, &m);
            assert_int_equal(rc, in - out < 4 ? 0 : -1);
            if (rc == 0)
                in++;
        }
        for (size_t i = 0; i < gets; i++) {
            struct msg m;
            int rc = dp_ring_dequeue(r, &m);
            assert_int_equal(rc, out < in ? 0 : -1);
            if (rc == 0)
                assert_msg(&m, out++);
        }
        assert_int_equal(dp_ring_count(r), in - out);
    }
    assert_true(in > 1000); /* wrapped many times */
    dp_ring_free(r);
}

static void ring_burst_enqueue_accepts_only_what_fits_in_order(void **state)
{
    (void)state;
    dp_ring_t *r = dp_ring_create(8, sizeof(struct msg));
    assert_non_null(r);
    struct msg batch[10];
    for (uint64_t i = 0; i < 10; i++)
        batch[i] = make(i);

    assert_int_equal(dp_ring_enqueue_burst(r, batch, 5), 5);
    /* 3 of the next 10 fit: the caller still owns batch[3..10) */
    for (uint64_t i = 0; i < 10; i++)
        batch[i] = make(100 + i);
    assert_int_equal(dp_ring_enqueue_burst(r, batch, 10), 3);
    assert_int_equal(dp_ring_count(r), 8);
    assert_int_equal(dp_ring_enqueue_burst(r, batch + 3, 7), 0);
    assert_int_equal(dp_ring_enqueue_burst(r, batch, 0), 0);

    struct msg out[16];
    assert_int_equal(dp_ring_dequeue_burst(r, out, 16), 8);
    for (uint64_t i = 0; i < 5; i++)
        assert_msg(&out[i], i);
    for (uint64_t i = 0; i < 3; i++)
        assert_msg(&out[5 + i], 100 + i);
    assert_int_equal(dp_ring_dequeue_burst(r, out, 16), 0);
    dp_ring_free(r);
}

static void ring_bursts_straddle_the_end_of_the_slot_array(void **state)
{
    (void)state;
    /* odd slot size: no alignment is assumed */
    const size_t slot = 3;
    dp_ring_t *r = dp_ring_create(8, slot);
    assert_non_null(r);
    unsigned char in[8 * 3], out[8 * 3];
    unsigned char next_in = 0, next_out = 0;

    for (int round = 0; round < 200; round++) {
        size_t want = (size_t)(round % 9);
        for (size_t i = 0; i < sizeof in; i++)
            in[i] = (unsigned char)(next_in + i / slot);
        size_t room = 8 - dp_ring_count(r);
        size_t put = dp_ring_enqueue_burst(r, in, want);
        assert_int_equal(put, want < room ? want : room);
        next_in = (unsigned char)(next_in + put);

        size_t have = dp_ring_count(r), take = (size_t)((round * 5) % 9);
        size_t got = dp_ring_dequeue_burst(r, out, take);
        assert_int_equal(got, take < have ? take : have);
        for (size_t i = 0; i < got * slot; i++)
            assert_int_equal(out[i], (unsigned char)(next_out + i / slot));
        next_out = (unsigned char)(next_out + got);
    }
    assert_true(next_out > 0);
    dp_ring_free(r);
}

/* ---- two threads ---- */

#define SEQ_TOTAL 10000000u

struct pair {
    dp_ring_t *ring;
    uint64_t received;
    uint64_t errors;
};

static void *producer(void *arg)
{
    struct pair *p = arg;
    struct msg batch[8];
    uint64_t seq = 0;
    while (seq < SEQ_TOTAL) {
        if (seq % 3 == 0) {
            struct msg m = make(seq);
            if (dp_ring_enqueue(p->ring, &m) == 0)
                seq++;
            else
                sched_yield();
            continue;
        }
        size_t n = 1 + (size_t)(seq % 8);
        if (n > SEQ_TOTAL - seq)
            n = (size_t)(SEQ_TOTAL - seq);
        for (size_t i = 0; i < n; i++)
            batch[i] = make(seq + i);
        size_t put = dp_ring_enqueue_burst(p->ring, batch, n);
        seq += put; /* the rest is retried, starting with the first not taken */
        if (put == 0)
            sched_yield();
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *p = arg;
    struct msg out[16];
    uint64_t expect = 0;
    while (expect < SEQ_TOTAL) {
        size_t got;
        if (expect % 5 == 0)
            got = dp_ring_dequeue(p->ring, out) == 0 ? 1 : 0;
        else
            got = dp_ring_dequeue_burst(p->ring, out, 1 + (size_t)(expect % 16));
        if (got == 0) {
            sched_yield();
            continue;
        }
        for (size_t i = 0; i < got; i++, expect++) {
            const struct msg *m = &out[i];
            if (m->seq != expect || m->check != ~expect * 0x9e3779b97f4a7c15u)
                p->errors++;
        }
    }
    p->received = expect;
    return NULL;
}

static void ring_moves_ten_million_messages_between_two_threads_in_order(void **state)
{
    (void)state;
    struct pair p = {dp_ring_create(64, sizeof(struct msg)), 0, 0};
    assert_non_null(p.ring);
    pthread_t prod, cons;
    assert_int_equal(pthread_create(&cons, NULL, consumer, &p), 0);
    assert_int_equal(pthread_create(&prod, NULL, producer, &p), 0);
    assert_int_equal(pthread_join(prod, NULL), 0);
    assert_int_equal(pthread_join(cons, NULL), 0);
    assert_int_equal(p.errors, 0);
    assert_int_equal(p.received, SEQ_TOTAL);
    assert_int_equal(dp_ring_count(p.ring), 0);
    dp_ring_free(p.ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ring_rejects_bad_sizes),
        cmocka_unit_test(ring_free_accepts_null),
        cmocka_unit_test(ring_reports_full_after_capacity_slots_and_empty_after_draining),
        cmocka_unit_test(ring_copies_slots_by_value),
        cmocka_unit_test(ring_keeps_fifo_order_across_many_wraparounds),
        cmocka_unit_test(ring_burst_enqueue_accepts_only_what_fits_in_order),
        cmocka_unit_test(ring_bursts_straddle_the_end_of_the_slot_array),
        cmocka_unit_test(ring_moves_ten_million_messages_between_two_threads_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
