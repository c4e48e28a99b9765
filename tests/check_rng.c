/* Random streams: known answers for the seed derivation, independence of streams. */
#include "../sim/rng.h"
#include "testutil.h"

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

static Suite *rng_suite(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("streams");
    tcase_add_test(tc, splitmix64_matches_reference_outputs);
    tcase_add_test(tc, stream_seeds_are_stable);
    tcase_add_test(tc, streams_differ_and_repeat);
    suite_add_tcase(s, tc);
    return s;
}

CHECK_MAIN(rng_suite)
