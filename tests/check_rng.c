/* Random streams: known answers for the seed derivation, independence of
 * streams, and the block generator against GSL's MT19937. */
#include "../sim/rng.h"
#include "testutil.h"

#include <gsl/gsl_randist.h>

/* The reference splitmix64 generator started from state 0 outputs
 * 0xe220a8397b1dcdaf then 0x6e789e6aa1b965f4 (Steele, Lea & Flood 2014; the
 * published reference values). rng_splitmix64(x) is one output from state x. */
START_TEST(splitmix64_matches_reference_outputs)
{
    ck_assert_uint_eq(rng_splitmix64(0), 0xe220a8397b1dcdafULL);
    ck_assert_uint_eq(rng_splitmix64(0x9e3779b97f4a7c15ULL), 0x6e789e6aa1b965f4ULL);
}
END_TEST

/* Golden values of the stream seeds, computed independently (a few lines of
 * Python implementing splitmix64(splitmix64(seed) ^ stream) & 0xffffffff).
 * Changing the derivation would silently change every stored result. */
START_TEST(stream_seeds_are_stable)
{
    ck_assert_uint_eq(rng_stream_seed(1, RNG_CATALOGUE), 3596284446UL);
    ck_assert_uint_eq(rng_stream_seed(1, RNG_USERS), 2524120683UL);
    ck_assert_uint_eq(rng_stream_seed(1, RNG_AGENT_INIT), 2273838041UL);
    ck_assert_uint_eq(rng_stream_seed(2, RNG_CATALOGUE), 848024197UL);
    ck_assert_uint_eq(rng_stream_seed(42, RNG_AGENT_INIT), 180582827UL);
}
END_TEST

START_TEST(streams_differ_and_repeat)
{
    for (uint64_t seed = 0; seed < 50; seed++) {
        for (int a = 1; a < RNG_STREAM_END; a++) {
            ck_assert_uint_ne(rng_stream_seed(seed, (rng_stream)a), 0);
            for (int b = a + 1; b < RNG_STREAM_END; b++)
                ck_assert_uint_ne(rng_stream_seed(seed, (rng_stream)a),
                                  rng_stream_seed(seed, (rng_stream)b));
        }
    }
    gsl_rng *x = rng_stream_new(7, RNG_CHOICES), *y = rng_stream_new(7, RNG_CHOICES);
    gsl_rng *z = rng_stream_new(8, RNG_CHOICES);
    int same_as_other_seed = 0;
    for (int i = 0; i < 1000; i++) {
        unsigned long a = gsl_rng_get(x), b = gsl_rng_get(y), c = gsl_rng_get(z);
        ck_assert_uint_eq(a, b);
        same_as_other_seed += a == c;
    }
    ck_assert_int_lt(same_as_other_seed, 3);
    gsl_rng_free(x);
    gsl_rng_free(y);
    gsl_rng_free(z);
}
END_TEST

/* The published check of MT19937: seeded with 5489, its 10,000th output is
 * 4123659995 (as required of std::mt19937 by the C++ standard). */
START_TEST(block_generator_gives_the_reference_output)
{
    gsl_rng *r = gsl_rng_alloc(rng_mt19937);
    gsl_rng_set(r, 5489);
    unsigned long x = 0;
    for (int i = 0; i < 10000; i++)
        x = gsl_rng_get(r);
    ck_assert_uint_eq(x, 4123659995UL);
    gsl_rng_free(r);
}
END_TEST

/* Output for output what gsl_rng_mt19937 gives, through every way the project
 * draws (words, uniforms, bounded integers, Gaussians), across several
 * regenerations, for seeds that GSL treats specially (0, bits above 32), and
 * after a re-seeding in the middle of a block and a copy of the state. */
START_TEST(block_generator_matches_gsl_mt19937)
{
    const unsigned long seeds[] = {0, 1, 4357, 5489, 0xffffffffUL, 1UL << 32, (1UL << 32) + 5,
                                   rng_stream_seed(3, RNG_CHOICES)};
    gsl_rng *mine = gsl_rng_alloc(rng_mt19937), *ref = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(mine);
    ck_assert_ptr_nonnull(ref);
    ck_assert_uint_eq(gsl_rng_max(mine), gsl_rng_max(ref));
    ck_assert_uint_eq(gsl_rng_min(mine), gsl_rng_min(ref));
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        gsl_rng_set(mine, seeds[s]);
        gsl_rng_set(ref, seeds[s]);
        for (int i = 0; i < 5 * 624 + 7; i++) {
            switch (i % 5) {
            case 0: ck_assert_uint_eq(gsl_rng_get(mine), gsl_rng_get(ref)); break;
            case 1: ck_assert(gsl_rng_uniform(mine) == gsl_rng_uniform(ref)); break;
            case 2: ck_assert(gsl_rng_uniform_pos(mine) == gsl_rng_uniform_pos(ref)); break;
            case 3:
                ck_assert_uint_eq(gsl_rng_uniform_int(mine, 1000 + (unsigned long)i),
                                  gsl_rng_uniform_int(ref, 1000 + (unsigned long)i));
                break;
            default:
                ck_assert(gsl_ran_gaussian_ziggurat(mine, 1.0) ==
                          gsl_ran_gaussian_ziggurat(ref, 1.0));
            }
        }
    }
    gsl_rng_set(mine, 99);
    gsl_rng_set(ref, 99);
    for (int i = 0; i < 700; i++) {
        gsl_rng_get(mine);
        gsl_rng_get(ref);
    }
    gsl_rng *copy = gsl_rng_clone(mine);
    for (int i = 0; i < 2000; i++)
        ck_assert_uint_eq(gsl_rng_get(copy), gsl_rng_get(ref));
    gsl_rng_free(copy);
    gsl_rng_free(mine);
    gsl_rng_free(ref);
}
END_TEST

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("streams");
    tcase_add_test(tc, splitmix64_matches_reference_outputs);
    tcase_add_test(tc, stream_seeds_are_stable);
    tcase_add_test(tc, streams_differ_and_repeat);
    tcase_add_test(tc, block_generator_gives_the_reference_output);
    tcase_add_test(tc, block_generator_matches_gsl_mt19937);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(rng_suite)
