/* Single-producer/single-consumer ring. See dp_ring.h for the contract.
 *
 * DESIGN
 *
 * `head` counts slots ever enqueued and `tail` slots ever dequeued; both run freely
 * and wrap around SIZE_MAX, so head - tail (unsigned) is the fill level and
 * index & mask the slot. Only the producer writes head and only the consumer writes
 * tail. The producer copies a slot in, then publishes it with a release store of
 * head; the consumer's acquire load of head therefore sees the copied bytes. The
 * consumer copies a slot out, then frees it with a release store of tail; the
 * producer's acquire load of tail orders its next write to that slot after the copy.
 *
 * Each side keeps a private copy of the other side's index (tail_cache, head_cache)
 * and re-reads the shared one only when the copy says full or empty, so in steady
 * state each side touches the other's cache line once per lap, not once per slot.
 * The read-only fields, the producer's fields and the consumer's fields sit on
 * separate 128-byte blocks (two cache lines, since adjacent-line prefetch pairs
 * them) so the two cores never write to the same line. */
#include "dp_ring.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DP_RING_ALIGN 128

struct dp_ring {
    /* RO after creation */
    alignas(DP_RING_ALIGN) size_t capacity;
    size_t mask;
    size_t slot_size;
    unsigned char *slots;

    /* owner: producer */
    alignas(DP_RING_ALIGN) atomic_size_t head;
    size_t tail_cache;

    /* owner: consumer */
    alignas(DP_RING_ALIGN) atomic_size_t tail;
    size_t head_cache;
};

dp_ring_t *dp_ring_create(size_t capacity, size_t slot_size)
{
    dp_ring_t *r = NULL;
    size_t bytes;

    if (capacity == 0 || (capacity & (capacity - 1)) != 0 || slot_size == 0 ||
        capacity > SIZE_MAX / slot_size) {
        errno = EINVAL;
        goto out;
    }
    bytes = capacity * slot_size;
    if (bytes > SIZE_MAX - sizeof *r - DP_RING_ALIGN) {
        errno = EINVAL;
        goto out;
    }
    /* aligned_alloc wants a multiple of the alignment */
    bytes = (sizeof *r + bytes + DP_RING_ALIGN - 1) & ~(size_t)(DP_RING_ALIGN - 1);
    r = aligned_alloc(DP_RING_ALIGN, bytes);
    if (r == NULL) {
        errno = ENOMEM;
        goto out;
    }
    memset(r, 0, sizeof *r);
    r->capacity = capacity;
    r->mask = capacity - 1;
    r->slot_size = slot_size;
    r->slots = (unsigned char *)(r + 1);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
out:
    return r;
}

void dp_ring_free(dp_ring_t *r)
{
    free(r);
}

size_t dp_ring_enqueue_burst(dp_ring_t *r, const void *slots, size_t n)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    size_t room = r->capacity - (head - r->tail_cache);

    if (room < n) {
        r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
        room = r->capacity - (head - r->tail_cache);
        if (n > room)
            n = room;
    }
    if (n == 0)
        return 0;

    size_t idx = head & r->mask;
    size_t first = r->capacity - idx < n ? r->capacity - idx : n;
    const unsigned char *src = slots;
    memcpy(r->slots + idx * r->slot_size, src, first * r->slot_size);
    if (first < n)
        memcpy(r->slots, src + first * r->slot_size, (n - first) * r->slot_size);

    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

size_t dp_ring_dequeue_burst(dp_ring_t *r, void *slots, size_t max)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t avail = r->head_cache - tail;

    if (avail < max) {
        r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
        avail = r->head_cache - tail;
        if (max > avail)
            max = avail;
    }
    if (max == 0)
        return 0;

    size_t idx = tail & r->mask;
    size_t first = r->capacity - idx < max ? r->capacity - idx : max;
    unsigned char *dst = slots;
    memcpy(dst, r->slots + idx * r->slot_size, first * r->slot_size);
    if (first < max)
        memcpy(dst + first * r->slot_size, r->slots, (max - first) * r->slot_size);

    atomic_store_explicit(&r->tail, tail + max, memory_order_release);
    return max;
}

int dp_ring_enqueue(dp_ring_t *r, const void *slot)
{
    return dp_ring_enqueue_burst(r, slot, 1) == 1 ? 0 : -1;
}

int dp_ring_dequeue(dp_ring_t *r, void *slot_out)
{
    return dp_ring_dequeue_burst(r, slot_out, 1) == 1 ? 0 : -1;
}

size_t dp_ring_count(const dp_ring_t *r)
{
    /* tail first: head read later is never behind it */
    size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    size_t used = head - tail;

    return used > r->capacity ? r->capacity : used;
}

size_t dp_ring_capacity(const dp_ring_t *r)
{
    return r->capacity;
}
