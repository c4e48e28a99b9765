/* The event queue: a binary min-heap ordered by (time, insertion sequence), so
 * simultaneous events run in the order they were scheduled. Schedule and cancel
 * are O(log n); an event is named by the handle schedule returns, which stays
 * valid (cancel fails cleanly) after the event has run or its slot been reused. */
#ifndef DIVSIM_EVENTS_H
#define DIVSIM_EVENTS_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    EV_SESSION_START,
    EV_STEP,
    EV_PURCHASE,      /* a delayed purchase is revealed */
    EV_AGENT_UPDATE,
    EV_ENV_EVENT      /* catalogue launch or retirement */
} event_type;

typedef struct {
    double time;      /* simulated hours */
    uint64_t seq;     /* insertion order: ties break first-in first-out */
    event_type type;
    int user;
    int item;
    long episode;
    int step;
    double value;
} event;

typedef struct {
    event *events;    /* [cap] slots; a slot's index is its handle */
    size_t *heap;     /* [cap] heap of slot indices */
    size_t *where;    /* [cap] heap position of each slot, or SIZE_MAX when free */
    size_t *free_slots; /* [cap] stack of free slots */
    size_t n, n_free, cap;
    uint64_t next_seq;
} event_queue;

typedef struct {
    size_t slot;
    uint64_t seq;
} event_handle;

int events_init(event_queue *q, size_t capacity_hint);
void events_free(event_queue *q);
/* Schedules a copy of ev (its seq is assigned); handle may be NULL. */
int events_schedule(event_queue *q, const event *ev, event_handle *handle);
/* Removes a scheduled event; returns -1 if it is no longer scheduled. */
int events_cancel(event_queue *q, event_handle handle);
/* Pops the earliest event into out; returns 0, or -1 when empty. */
int events_pop(event_queue *q, event *out);
const event *events_peek(const event_queue *q);
static inline size_t events_count(const event_queue *q) { return q->n; }

#endif
