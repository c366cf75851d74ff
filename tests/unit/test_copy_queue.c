/* test_copy_queue.c — unit tests for the byte-bounded producer/consumer queue of a copy stream
 * (src/copy_queue.c): order, the byte budget holding a producer back, close and cancel. */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "copy_queue.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

Test(copy_queue, fifo_order_then_closed)
{
    copy_queue *q = copy_queue_new(1000);
    cr_assert(q);
    int v[5] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 5; i++)
        cr_assert(copy_queue_push(q, &v[i], 10));
    copy_queue_close(q);
    void *it;
    for (int i = 0; i < 5; i++) {
        cr_assert(copy_queue_pop(q, &it));
        cr_assert_eq(*(int *) it, i + 1);
    }
    cr_assert_not(copy_queue_pop(q, &it), "a closed, empty queue must say so");
    copy_queue_free(q);
}

typedef struct {
    copy_queue *q;
    int pushed;        /* items the producer got into the queue */
    bool last_result;
} producer;

static void *produce(void *arg)
{
    producer *p = arg;
    static int item = 7;
    for (int i = 0; i < 10; i++) {
        p->last_result = copy_queue_push(p->q, &item, 100);
        if (!p->last_result)
            break;
        __atomic_add_fetch(&p->pushed, 1, __ATOMIC_SEQ_CST);
    }
    copy_queue_close(p->q);
    return NULL;
}

Test(copy_queue, budget_holds_the_producer_back)
{
    producer p = {.q = copy_queue_new(300)};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, produce, &p), 0);
    sleep_ms(100);
    cr_assert_eq(__atomic_load_n(&p.pushed, __ATOMIC_SEQ_CST), 3, "300 bytes hold three 100-byte items, not %d",
                 __atomic_load_n(&p.pushed, __ATOMIC_SEQ_CST));
    void *it;
    int got = 0;
    while (copy_queue_pop(p.q, &it))
        got++;
    pthread_join(t, NULL);
    cr_assert_eq(got, 10);
    cr_assert(p.last_result);
    copy_queue_free(p.q);
}

Test(copy_queue, an_item_over_budget_passes_an_empty_queue)
{
    copy_queue *q = copy_queue_new(10);
    int x = 1;
    cr_assert(copy_queue_push(q, &x, 1000), "an oversized item must not block forever on an empty queue");
    void *it;
    cr_assert(copy_queue_pop(q, &it));
    cr_assert_eq(it, &x);
    copy_queue_free(q);
}

static int dropped;
static void drop(void *item)
{
    (void) item;
    dropped++;
}

Test(copy_queue, cancel_wakes_a_blocked_producer)
{
    producer p = {.q = copy_queue_new(200)};
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, produce, &p), 0);
    sleep_ms(100); /* two items in, the third push blocks */
    dropped = 0;
    copy_queue_cancel(p.q, drop);
    pthread_join(t, NULL);
    cr_assert_not(p.last_result, "the blocked push must return false after cancel");
    cr_assert_eq(p.pushed, 2);
    cr_assert_eq(dropped, 2, "the queued items go to drop()");
    cr_assert(copy_queue_cancelled(p.q));
    void *it;
    cr_assert_not(copy_queue_pop(p.q, &it));
    copy_queue_free(p.q);
}
