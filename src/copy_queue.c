/* copy_queue.c — the byte-bounded producer/consumer FIFO of a copy stream (pthreads). */
#include "copy_queue.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct node {
    void *item;
    size_t bytes;
    struct node *next;
} node;

struct copy_queue {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    node *head, *tail;
    size_t bytes, max_bytes;
    bool closed, cancelled;
};

copy_queue *copy_queue_new(size_t max_bytes)
{
    copy_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    q->max_bytes = max_bytes;
    return q;
}

void copy_queue_free(copy_queue *q)
{
    if (!q)
        return;
    for (node *n = q->head, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    free(q);
}

bool copy_queue_push(copy_queue *q, void *item, size_t bytes)
{
    node *n = malloc(sizeof *n);
    if (!n)
        return false;
    n->item = item;
    n->bytes = bytes;
    n->next = NULL;
    pthread_mutex_lock(&q->mu);
    while (!q->cancelled && q->head && q->bytes + bytes > q->max_bytes)
        pthread_cond_wait(&q->not_full, &q->mu);
    if (q->cancelled) {
        pthread_mutex_unlock(&q->mu);
        free(n);
        return false;
    }
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    q->bytes += bytes;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return true;
}

void copy_queue_close(copy_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

bool copy_queue_pop(copy_queue *q, void **item)
{
    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->closed && !q->cancelled)
        pthread_cond_wait(&q->not_empty, &q->mu);
    node *n = q->cancelled ? NULL : q->head;
    if (n) {
        q->head = n->next;
        if (!q->head)
            q->tail = NULL;
        q->bytes -= n->bytes;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    if (!n)
        return false;
    *item = n->item;
    free(n);
    return true;
}

void copy_queue_cancel(copy_queue *q, void (*drop)(void *item))
{
    pthread_mutex_lock(&q->mu);
    q->cancelled = true;
    node *n = q->head;
    q->head = q->tail = NULL;
    q->bytes = 0;
    pthread_cond_broadcast(&q->not_full);
    pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    for (node *next; n; n = next) {
        next = n->next;
        if (drop)
            drop(n->item);
        free(n);
    }
}

bool copy_queue_cancelled(copy_queue *q)
{
    pthread_mutex_lock(&q->mu);
    bool c = q->cancelled;
    pthread_mutex_unlock(&q->mu);
    return c;
}
