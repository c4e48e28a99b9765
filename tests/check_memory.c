/* Memory estimates: every env and agent has one, a run's estimate follows what
 * it really allocates, and a run whose agent alone would not fit is refused
 * before anything is allocated. */
#include "../agents/agent.h"
#include "../envs/env.h"
#include "../sim/config.h"
#include "../sim/run.h"
#include "testutil.h"

#include <malloc.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Bytes allocated and not yet freed (glibc's mallinfo2). Sanitizers replace the
 * allocator and report 0 here: the comparison is then skipped. */
static double allocated_bytes(void)
{
    struct mallinfo2 m = mallinfo2();
    return (double)m.uordblks + (double)m.hblkhd;
}

typedef struct {
    double base, peak;
} sampler;

static void sample(void *ctx, long done, long total)
{
    (void)done;
    (void)total;
    sampler *s = ctx;
    s->peak = fmax(s->peak, allocated_bytes() - s->base);
}

static void load(const char *text, experiment *x)
{
    char err[ERR_LEN];
    int rc = experiment_load_buffer("memory.ini", text, strlen(text), NULL, 0, x, err);
    ck_assert_msg(rc == DS_OK, "%s", err);
}

START_TEST(every_type_has_an_estimate)
{
    for (int i = 0; i < env_registry_count; i++)
        ck_assert_msg(env_registry[i]->xMemoryEstimate, "env '%s'", env_registry[i]->name);
    for (int i = 0; i < agent_registry_count; i++)
        ck_assert_msg(agent_registry[i]->xMemoryEstimate, "agent '%s'",
                      agent_registry[i]->name);
}
END_TEST

/* For each agent, a run on a shop of normal size (4,000 items, 2,000 users,
 * 600 episodes) is measured: the peak of the bytes allocated over the run
 * (sampled after every episode) against run_memory_estimate. The estimate
 * errs both ways: it counts each learner's batch at up to 64 steps an episode
 * (shop sessions are shorter) and a factor row for every user for cf and mmr
 * (not every user is seen in 600 episodes), and it leaves out the allocator's
 * headers, the engine's small buffers and mf's interactions. Measured ratios
 * (measured / estimate) on glibc 2.36: 0.85 (ppo serving int8) to 0.97 (random,
 * a2c), 0.94 for ppo with the transformer; the bound is a factor of 1.5 either
 * way. */
START_TEST(estimates_follow_the_allocations)
{
    static const char *const kinds[] = {"random", "popularity", "cf",  "mmr", "oracle",
                                        "reinforce", "a2c", "ppo", "ppo", "ppo"};
    /* the last two: the transformer encoder, and int8 serving in the eval phase */
    static const char *const extra[] = {[8] = "[agent.ppo]\nencoder = transformer\n",
                                        [9] = "[agent.ppo]\nserve = int8\n"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "[experiment]\ntrain_episodes = 500\neval_episodes = 100\nhistory = 16\n"
                 "[env]\nkind = shop\nitems = 4000\nusers = 2000\n"
                 "[agent]\nkind = %s\n%s", kinds[i], extra[i] ? extra[i] : "");
        experiment x;
        load(text, &x);
        double estimate = run_memory_estimate(&x.runs[0]);
        sampler s = {.base = allocated_bytes(), .peak = 0};
        run_hooks hooks = {.on_episode = sample, .ctx = &s};
        run_result res;
        char err[ERR_LEN];
        ck_assert_msg(run_execute(&x.runs[0], &hooks, &res, err) == DS_OK, "%s", err);
        ck_assert_int_eq(res.status, RUN_DONE);
        run_result_free(&res);
        experiment_free(&x);
        if (s.base == 0 && s.peak == 0)
            continue; /* a sanitizer's allocator: nothing to compare */
        double ratio = s.peak / estimate;
        printf("memory: %-10s estimate %8.0f KiB, measured %8.0f KiB, ratio %.2f\n",
               kinds[i], estimate / 1024, s.peak / 1024, ratio);
        ck_assert_msg(ratio > 1 / 1.5 && ratio < 1.5, "%s: measured %.0f, estimate %.0f",
                      kinds[i], s.peak, estimate);
    }
}
END_TEST

/* The known answer for a huge model: reinforce over 10^7 items with embed_dim
 * 1024 holds E_in and E_out, 2 x 10^7 x 1024 weights, each with its gradient and
 * two Adam moments, and the update's single-precision copy of E_out: 4 x 8 x
 * 2.048e10 + 4 x 1.024e10 = 6.9632e11 bytes; the rest (the trunk, the workspace
 * of a few doubles per item, the batch) adds under 1%. */
START_TEST(a_huge_model_is_estimated)
{
    const agent_type *t = agent_find("reinforce");
    ck_assert_ptr_nonnull(t);
    experiment x;
    load("[env]\nkind = shop\n[agent]\nkind = reinforce\n", &x);
    env_spec spec = {.n_items = 10000000, .n_users = 100, .slate = 3, .n_topics = 10,
                     .max_steps = 20};
    void *config = x.runs[0].agent_config;
    *(int *)config = 1024; /* embed_dim: the first field of learner_config */
    double bytes = t->xMemoryEstimate(config, &spec);
    ck_assert_msg(bytes >= 6.9632e11 && bytes < 6.9632e11 * 1.01, "%g", bytes);
    experiment_free(&x);
}
END_TEST

/* The same model in an experiment file: refused at load, naming the agent's
 * section (line 5) and the estimate; the env (a 10^7-item shop, 1.6 GiB) and the
 * engine (0.7 GiB) alone would fit under the 16 GiB cap. */
START_TEST(a_run_whose_agent_does_not_fit_is_refused)
{
    const char *text = "[env]\nkind = shop\nitems = 10000000\nusers = 100\n"
                       "[agent.reinforce]\nembed_dim = 1024\n[agent]\nkind = reinforce\n";
    experiment x;
    char err[ERR_LEN];
    int rc = experiment_load_buffer("big.ini", text, strlen(text), NULL, 0, &x, err);
    ck_assert_int_eq(rc, DS_EINPUT);
    ck_assert_ptr_null(x.runs);
    const char *head = "big.ini:5: a run would need about ";
    ck_assert_msg(strncmp(err, head, strlen(head)) == 0, "%s", err);
    ck_assert_msg(strstr(err, " GiB for agent 'reinforce', ") &&
                      strstr(err, "for env 'shop' (10000000 items, 100 users)") &&
                      strstr(err, "the limit is "),
                  "%s", err);
    double gib = strtod(strstr(err, "about ") + 6, NULL);
    ck_assert_msg(gib > 645 && gib < 655, "%s", err); /* 6.9632e11 bytes and the env */
    /* embed_dim 16 (the default) over 10^6 items fits: about 1 GiB of agent. */
    const char *small = "[env]\nkind = shop\nitems = 1000000\nusers = 100\n"
                        "[agent]\nkind = reinforce\n";
    rc = experiment_load_buffer("small.ini", small, strlen(small), NULL, 0, &x, err);
    ck_assert_msg(rc == DS_OK, "%s", err);
    experiment_free(&x);
}
END_TEST

/* alloc_random_access: zeroed even where the allocator hands back a block just
 * filled with garbage and freed (small sizes come from malloc's free lists);
 * on a cache line, and from 2 MiB on a huge page's boundary. */
START_TEST(random_access_tables_are_zeroed_and_aligned)
{
    const size_t two_mib = (size_t)2 << 20;
    const size_t sizes[] = {1, 100, 4096, two_mib - 1, two_mib, 3 * two_mib + 5};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *garbage = alloc_cache_aligned(n);
        ck_assert_ptr_nonnull(garbage);
        memset(garbage, 0xa5, n);
        free(garbage);
        unsigned char *p = alloc_random_access(n);
        ck_assert_ptr_nonnull(p);
        size_t align = n >= two_mib ? two_mib : 64;
        ck_assert_msg((uintptr_t)p % align == 0, "%zu bytes at %p", n, (void *)p);
        size_t nonzero = 0;
        for (size_t i = 0; i < n; i++)
            nonzero += p[i] != 0;
        ck_assert_msg(nonzero == 0, "%zu of %zu bytes not zero", nonzero, n);
        free(p);
    }
}
END_TEST

static Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *c = tcase_create("estimates");
    tcase_set_timeout(c, 120);
    tcase_add_test(c, every_type_has_an_estimate);
    tcase_add_test(c, estimates_follow_the_allocations);
    tcase_add_test(c, a_huge_model_is_estimated);
    tcase_add_test(c, a_run_whose_agent_does_not_fit_is_refused);
    tcase_add_test(c, random_access_tables_are_zeroed_and_aligned);
    suite_add_tcase(s, c);
    return s;
}

CHECK_MAIN(memory_suite)
