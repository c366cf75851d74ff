/* copy_queue.h — a bounded FIFO between one producer thread and one consumer thread, counted
 * in bytes: the reader of a copy stream (SQLite, validation, binary COPY encoding) runs ahead
 * of the connection that sends, by at most the queue's byte budget. */
#ifndef PGMEMCTL_COPY_QUEUE_H
#define PGMEMCTL_COPY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct copy_queue copy_queue;

/* A queue that holds items totalling up to max_bytes (an item larger than that is still
 * accepted when the queue is empty, so nothing can block forever). Returns NULL when out of
 * memory. Free with copy_queue_free once both threads are done with it. */
copy_queue *copy_queue_new(size_t max_bytes);
void copy_queue_free(copy_queue *q);

/* Producer: appends item (opaque, not owned by the queue) accounted as bytes. Blocks while the
 * queue is over its budget. Returns false, without queueing, once the consumer cancelled: the
 * producer still owns item and must free it and stop. */
bool copy_queue_push(copy_queue *q, void *item, size_t bytes);

/* Producer: no more items will come. */
void copy_queue_close(copy_queue *q);

/* Consumer: removes the oldest item into *item (ownership passes to the caller). Blocks while
 * the queue is empty and open. Returns false when it is empty and closed (or cancelled). */
bool copy_queue_pop(copy_queue *q, void **item);

/* Consumer: stop the producer. Wakes a blocked push (which then returns false); items still
 * queued are handed to drop(item) (may be NULL) and discarded. */
void copy_queue_cancel(copy_queue *q, void (*drop)(void *item));

/* True once copy_queue_cancel ran: a producer checks it between rows to stop early. */
bool copy_queue_cancelled(copy_queue *q);

#endif
