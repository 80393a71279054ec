/* Bounded single-producer/single-consumer ring of fixed-size slots, for messages
 * between cores (worker to worker, worker to control thread and back).
 *
 * Ownership: exactly one producer thread calls dp_ring_enqueue*() and exactly one
 * consumer thread calls dp_ring_dequeue*() for the lifetime of the ring; the two may
 * be the same thread. Any thread may call dp_ring_count() and dp_ring_capacity().
 * Creation and dp_ring_free() happen while neither side is using the ring.
 *
 * Slots are copied in and out by value (memcpy of slot_size bytes): a slot is
 * typically a small struct or a pointer. A message is visible to the consumer only
 * once fully copied in, and its slot is reused by the producer only once fully
 * copied out. Nothing blocks, nothing locks, nothing allocates after creation: a full
 * ring is reported to the producer, who drops, counts or retries. */
#ifndef DP_RING_H
#define DP_RING_H

#include <stddef.h>

typedef struct dp_ring dp_ring_t;

/* Creates a ring of `capacity` slots of `slot_size` bytes each. capacity must be a
 * power of two (1, 2, 4, ...); every slot is usable. Returns NULL with errno set to
 * EINVAL when capacity is not a power of two, slot_size is 0 or the total size
 * overflows, and to ENOMEM when memory is short. */
dp_ring_t *dp_ring_create(size_t capacity, size_t slot_size);

/* Frees the ring. Accepts NULL. */
void dp_ring_free(dp_ring_t *r);

/* Producer: copies one slot in. Returns 0, or -1 when the ring is full. */
int dp_ring_enqueue(dp_ring_t *r, const void *slot);

/* Consumer: copies the oldest slot out to slot_out. Returns 0, or -1 when empty. */
int dp_ring_dequeue(dp_ring_t *r, void *slot_out);

/* Producer: copies in up to n slots from the array `slots` (n * slot_size bytes) and
 * returns how many were accepted: the first ones, in order. The caller still owns
 * slots[returned..n) and frees, counts or retries them. */
size_t dp_ring_enqueue_burst(dp_ring_t *r, const void *slots, size_t n);

/* Consumer: copies out up to max of the oldest slots to the array `slots` (room for
 * max * slot_size bytes) and returns how many were copied. */
size_t dp_ring_dequeue_burst(dp_ring_t *r, void *slots, size_t max);

/* Slots in use. Exact when called by the producer or consumer while the other side
 * is idle; otherwise a snapshot that may be stale by the time it is read. */
size_t dp_ring_count(const dp_ring_t *r);

/* Number of slots, as given to dp_ring_create(). */
size_t dp_ring_capacity(const dp_ring_t *r);

#endif
