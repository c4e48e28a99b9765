/* The event queue: ordering by time then insertion, cancel, growth. */
#include "../sim/events.h"
#include "testutil.h"

#include <gsl/gsl_rng.h>

static event at(double t, int user)
{
    return (event){.time = t, .user = user};
}

START_TEST(pops_in_time_order_and_fifo_on_ties)
{
    event_queue q;
    ck_assert_int_eq(events_init(&q, 4), 0);
    double times[] = {5.0, 1.0, 3.0, 1.0, 2.0, 3.0, 0.5};
    for (int i = 0; i < 7; i++) {
        event e = at(times[i], i);
        ck_assert_int_eq(events_schedule(&q, &e, NULL), 0);
    }
    /* Expected: by time; equal times in scheduling order (users 1 before 3, 2 before 5). */
    int expected[] = {6, 1, 3, 4, 2, 5, 0};
    event e;
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(events_pop(&q, &e), 0);
        ck_assert_int_eq(e.user, expected[i]);
    }
    ck_assert_int_eq(events_pop(&q, &e), -1);
    events_free(&q);
}
END_TEST

START_TEST(cancel_removes_exactly_one_event)
{
    event_queue q;
    ck_assert_int_eq(events_init(&q, 0), 0);
    event_handle handle[10];
    for (int i = 0; i < 10; i++) {
        event e = at(10.0 - i, i);
        ck_assert_int_eq(events_schedule(&q, &e, &handle[i]), 0);
    }
    ck_assert_int_eq(events_cancel(&q, handle[9]), 0); /* the earliest */
    ck_assert_int_eq(events_cancel(&q, handle[4]), 0); /* one in the middle */
    ck_assert_int_eq(events_cancel(&q, handle[4]), -1); /* not twice */
    ck_assert_uint_eq(events_count(&q), 8);
    event e;
    int expected[] = {8, 7, 6, 5, 3, 2, 1, 0};
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(events_pop(&q, &e), 0);
        ck_assert_int_eq(e.user, expected[i]);
    }
    events_free(&q);
}
END_TEST

/* Random schedules, cancels and pops against a brute-force reference. */
START_TEST(matches_a_reference_under_random_operations)
{
    enum { N = 3000 };
    static event ref[N];
    static int live[N];
    static event_handle handle[N];
    event_queue q;
    ck_assert_int_eq(events_init(&q, 0), 0);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 7);
    int n = 0;
    for (int op = 0; op < 20000; op++) {
        double u = gsl_rng_uniform(r);
        if (u < 0.5 && n < N) {
            ref[n] = at((double)gsl_rng_uniform_int(r, 50), n);
            ck_assert_int_eq(events_schedule(&q, &ref[n], &handle[n]), 0);
            live[n++] = 1;
        } else if (u < 0.65 && n > 0) {
            int i = (int)gsl_rng_uniform_int(r, (unsigned long)n);
            ck_assert_int_eq(events_cancel(&q, handle[i]), live[i] ? 0 : -1);
            live[i] = 0;
        } else {
            int best = -1; /* earliest live, first scheduled on ties */
            for (int i = 0; i < n; i++)
                if (live[i] && (best < 0 || ref[i].time < ref[best].time))
                    best = i;
            event e;
            if (best < 0) {
                ck_assert_int_eq(events_pop(&q, &e), -1);
                continue;
            }
            ck_assert_int_eq(events_pop(&q, &e), 0);
            ck_assert_int_eq(e.user, best);
            live[best] = 0;
        }
    }
    gsl_rng_free(r);
    events_free(&q);
}
END_TEST

static Suite *events_suite(void)
{
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("queue");
    tcase_add_test(tc, pops_in_time_order_and_fifo_on_ties);
    tcase_add_test(tc, cancel_removes_exactly_one_event);
    tcase_add_test(tc, matches_a_reference_under_random_operations);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(events_suite)
