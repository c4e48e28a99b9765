/* Named random streams. Everything random in a run draws from one of these,
 * each an independent gsl_rng (MT19937) seeded from (run seed, stream id) by
 * splitmix64, so adding draws to one consumer never shifts another's. */
#ifndef DIVSIM_RNG_H
#define DIVSIM_RNG_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

typedef enum {
    RNG_CATALOGUE = 1, /* item topics, latents, prices, appeal */
    RNG_USERS,         /* user tastes, price sensitivity, visit rates */
    RNG_ARRIVALS,      /* gaps between a user's visits */
    RNG_DRIFT,         /* Ornstein-Uhlenbeck noise on preferences */
    RNG_CHOICES,       /* clicks, dwell times, session ends */
    RNG_PURCHASES,     /* purchase draws and their delays */
    RNG_ITEM_CHURN,    /* item launches and retirements */
    RNG_AGENT_INIT,    /* agent parameter initialisation */
    RNG_AGENT_SAMPLING,/* exploration and policy sampling */
    RNG_MINIBATCH,     /* minibatch shuffling in learning agents */
    RNG_STREAM_END
} rng_stream;

/* GSL's MT19937 (gsl_rng_mt19937), output for output and seed for seed, its
 * 624 words regenerated and tempered a block at a time (sim/rng.c): each draw
 * is then a load from the block. */
extern const gsl_rng_type *const rng_mt19937;

/* The 64-bit splitmix64 finaliser of x + golden gamma. */
uint64_t rng_splitmix64(uint64_t x);

/* The seed handed to gsl_rng_set for a stream: never 0. */
unsigned long rng_stream_seed(uint64_t run_seed, rng_stream stream);

/* A new rng_mt19937 generator for the stream, or NULL when out of memory. */
gsl_rng *rng_stream_new(uint64_t run_seed, rng_stream stream);

#endif
