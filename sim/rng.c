#include "rng.h"

#include <string.h>

/* ---- MT19937 a block at a time ----
 * Matsumoto and Nishimura's generator as GSL has it (seeding included), but
 * where GSL regenerates the state and tempers one word per draw, this does
 * both for all 624 words at once, eight lanes at a time. Word k of a
 * regeneration is formed from words k, k + 1 and k + 397 (mod 624); for
 * k >= 227 the last is word k - 227, already regenerated, so no word depends
 * on one of the seven before it. */
enum { MT_N = 624, MT_M = 397 };
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu
#define MT_MATRIX 0x9908b0dfu

typedef struct {
    uint32_t word[MT_N];   /* the state */
    uint32_t output[MT_N]; /* the state's words, tempered: the next outputs */
    int next;              /* the next output to hand out; MT_N when used up */
} mt_state;

#pragma GCC diagnostic ignored "-Wpsabi" /* the vectors never cross a call */
typedef uint32_t v8u __attribute__((vector_size(32)));
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(DIVSIM_NO_AVX2)
#define MT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MT_CLONES
#endif

/* One word's regeneration from itself, the next word and the one M on, for a
 * scalar or a vector of eight. */
#define MT_TWIST(here, after, far, zero)                                                 \
    ((far) ^ ((((here) & MT_UPPER) | ((after) & MT_LOWER)) >> 1) ^                     \
     (((zero) - ((after) & 1u)) & MT_MATRIX))

static inline v8u mt_load(const uint32_t *from)
{
    v8u v;
    memcpy(&v, from, sizeof v);
    return v;
}

/* word[k] from word[k], word[k + 1] and word[k + far] for k in [from, to). */
static inline void mt_twist_run(uint32_t *word, int from, int to, int far)
{
    const v8u zero = {0};
    int k = from;
    for (; k + 8 <= to; k += 8) {
        v8u next = MT_TWIST(mt_load(word + k), mt_load(word + k + 1), mt_load(word + k + far),
                            zero);
        memcpy(word + k, &next, sizeof next);
    }
    for (; k < to; k++)
        word[k] = MT_TWIST(word[k], word[k + 1], word[k + far], 0u);
}

static MT_CLONES void mt_refill(mt_state *s)
{
    uint32_t *w = s->word;
    mt_twist_run(w, 0, MT_N - MT_M, MT_M);
    mt_twist_run(w, MT_N - MT_M, MT_N - 1, MT_M - MT_N);
    w[MT_N - 1] = MT_TWIST(w[MT_N - 1], w[0], w[MT_M - 1], 0u);
    for (int k = 0; k < MT_N; k += 8) { /* tempering */
        v8u y = mt_load(w + k);
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680u;
        y ^= (y << 15) & 0xefc60000u;
        y ^= y >> 18;
        memcpy(s->output + k, &y, sizeof y);
    }
    s->next = 0;
}

_Static_assert(MT_N % 8 == 0, "mt_refill tempers eight words at a time");

static void mt_set(void *state, unsigned long seed)
{
    mt_state *s = state;
    if (seed == 0)
        seed = 4357; /* GSL's default seed */
    s->word[0] = (uint32_t)(seed & 0xffffffffUL);
    for (int k = 1; k < MT_N; k++)
        s->word[k] = 1812433253u * (s->word[k - 1] ^ (s->word[k - 1] >> 30)) + (uint32_t)k;
    s->next = MT_N;
}

static unsigned long mt_get(void *state)
{
    mt_state *s = state;
    if (s->next == MT_N)
        mt_refill(s);
    return s->output[s->next++];
}

static double mt_get_double(void *state) { return (double)mt_get(state) / 4294967296.0; }

static const gsl_rng_type mt_type = {"mt19937", 0xffffffffUL, 0, sizeof(mt_state),
                                     &mt_set, &mt_get, &mt_get_double};
const gsl_rng_type *const rng_mt19937 = &mt_type;

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
    gsl_rng *r = gsl_rng_alloc(rng_mt19937);
    if (r)
        gsl_rng_set(r, rng_stream_seed(run_seed, stream));
    return r;
}
