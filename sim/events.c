#include "events.h"

#include "common.h"

#include <stdlib.h>

#define NOT_SCHEDULED SIZE_MAX

/* a before b: earlier time, or the same time and scheduled first. */
static int earlier(const event_queue *q, size_t a, size_t b)
{
    const event *x = &q->events[a], *y = &q->events[b];
    return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

static void place(event_queue *q, size_t pos, size_t slot)
{
    q->heap[pos] = slot;
    q->where[slot] = pos;
}

static void sift_up(event_queue *q, size_t pos)
{
    size_t slot = q->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (!earlier(q, slot, q->heap[parent]))
            break;
        place(q, pos, q->heap[parent]);
        pos = parent;
    }
    place(q, pos, slot);
}

static void sift_down(event_queue *q, size_t pos)
{
    size_t slot = q->heap[pos];
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= q->n)
            break;
        if (child + 1 < q->n && earlier(q, q->heap[child + 1], q->heap[child]))
            child++;
        if (!earlier(q, q->heap[child], slot))
            break;
        place(q, pos, q->heap[child]);
        pos = child;
    }
    place(q, pos, slot);
}

static int grow(event_queue *q)
{
    size_t cap = q->cap ? 2 * q->cap : 64;
    event *events = realloc(q->events, cap * sizeof *events);
    if (events)
        q->events = events;
    size_t *heap = realloc(q->heap, cap * sizeof *heap);
    if (heap)
        q->heap = heap;
    size_t *where = realloc(q->where, cap * sizeof *where);
    if (where)
        q->where = where;
    size_t *free_slots = realloc(q->free_slots, cap * sizeof *free_slots);
    if (free_slots)
        q->free_slots = free_slots;
    if (!events || !heap || !where || !free_slots)
        return DS_ENOMEM;
    /* New slots are free; push them so the lowest index is used first. */
    for (size_t s = cap; s-- > q->cap;) {
        q->where[s] = NOT_SCHEDULED;
        q->free_slots[q->n_free++] = s;
    }
    q->cap = cap;
    return DS_OK;
}

int events_init(event_queue *q, size_t capacity_hint)
{
    *q = (event_queue){0};
    while (q->cap < capacity_hint)
        if (grow(q) != DS_OK) {
            events_free(q);
            return DS_ENOMEM;
        }
    return DS_OK;
}

void events_free(event_queue *q)
{
    free(q->events);
    free(q->heap);
    free(q->where);
    free(q->free_slots);
    *q = (event_queue){0};
}

int events_schedule(event_queue *q, const event *ev, event_handle *handle)
{
    if (q->n_free == 0 && grow(q) != DS_OK)
        return DS_ENOMEM;
    size_t slot = q->free_slots[--q->n_free];
    q->events[slot] = *ev;
    q->events[slot].seq = q->next_seq++;
    q->heap[q->n] = slot;
    q->where[slot] = q->n;
    sift_up(q, q->n++);
    if (handle)
        *handle = (event_handle){slot, q->events[slot].seq};
    return DS_OK;
}

/* Removes the event at heap position pos. */
static void remove_at(event_queue *q, size_t pos)
{
    size_t slot = q->heap[pos];
    q->where[slot] = NOT_SCHEDULED;
    q->free_slots[q->n_free++] = slot;
    if (--q->n == pos)
        return;
    place(q, pos, q->heap[q->n]);
    /* The moved event may belong above or below its new position. */
    if (pos > 0 && earlier(q, q->heap[pos], q->heap[(pos - 1) / 2]))
        sift_up(q, pos);
    else
        sift_down(q, pos);
}

int events_cancel(event_queue *q, event_handle handle)
{
    size_t slot = handle.slot;
    if (slot >= q->cap || q->where[slot] == NOT_SCHEDULED || q->events[slot].seq != handle.seq)
        return -1;
    remove_at(q, q->where[slot]);
    return 0;
}

int events_pop(event_queue *q, event *out)
{
    if (q->n == 0)
        return -1;
    *out = q->events[q->heap[0]];
    remove_at(q, 0);
    return 0;
}

const event *events_peek(const event_queue *q)
{
    return q->n ? &q->events[q->heap[0]] : NULL;
}
