#include "rng.h"

uint64_t rng_splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

unsigned long rng_stream_seed(uint64_t run_seed, rng_stream stream)
{
    uint64_t z = rng_splitmix64(rng_splitmix64(run_seed) ^ (uint64_t)stream);
    /* MT19937 uses the low 32 bits; gsl maps seed 0 to its default, so avoid it. */
    unsigned long seed = (unsigned long)(z & 0xffffffffUL);
    return seed ? seed : 1;
}

gsl_rng *rng_stream_new(uint64_t run_seed, rng_stream stream)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (r)
        gsl_rng_set(r, rng_stream_seed(run_seed, stream));
    return r;
}
