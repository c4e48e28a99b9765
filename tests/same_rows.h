/* Field-by-field equality of the rows of two run results, for the tests that
 * check that the same seed gives the same results (struct padding is not part
 * of a result, so no memcmp). */
#ifndef DIVSIM_TESTS_SAME_ROWS_H
#define DIVSIM_TESTS_SAME_ROWS_H

#include "../sim/run.h"

static inline int same_episode(const episode_row *a, const episode_row *b)
{
    return a->episode == b->episode && a->phase == b->phase && a->user == b->user &&
           a->start_time == b->start_time && a->end_time == b->end_time &&
           a->length == b->length && a->reward == b->reward &&
           a->shaped_reward == b->shaped_reward && a->clicks == b->clicks &&
           a->purchases == b->purchases && a->revenue == b->revenue && a->ild == b->ild &&
           a->topic_ild == b->topic_ild && a->topic_entropy == b->topic_entropy &&
           a->novelty == b->novelty && a->repeat_rate == b->repeat_rate &&
           a->churned == b->churned;
}

static inline int same_episodes(const run_result *a, const run_result *b)
{
    if (a->n_episodes != b->n_episodes)
        return 0;
    for (size_t i = 0; i < a->n_episodes; i++)
        if (!same_episode(&a->episodes[i], &b->episodes[i]))
            return 0;
    return 1;
}

#endif
