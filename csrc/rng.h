/* Per-worker random generator: splitmix64 seeding a xoshiro256**. */
#ifndef PA_RNG_H
#define PA_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } pa_rng;

static inline uint64_t pa_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline void pa_rng_seed(pa_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = pa_splitmix64(&seed);
}

static inline uint64_t pa_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t pa_rng_next(pa_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = pa_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = pa_rotl(s[3], 45);
    return out;
}

/* Uniform integer in [0, n), Lemire's multiply-shift (bias < n / 2^64). */
static inline uint64_t pa_rng_below(pa_rng *r, uint64_t n)
{
    return (uint64_t)(((__uint128_t)pa_rng_next(r) * n) >> 64);
}

static inline double pa_rng_uniform(pa_rng *r)
{
    return (pa_rng_next(r) >> 11) * 0x1.0p-53;
}

/* A draw from the distribution whose cumulative is cdf[0..len-1] (cdf[len-1]
 * = 1): the first s with cdf[s] > u. */
static inline int64_t pa_rng_from_cdf(pa_rng *r, const double *cdf, int64_t len)
{
    double u = pa_rng_uniform(r);
    int64_t lo = 0, hi = len - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (cdf[mid] > u) hi = mid; else lo = mid + 1;
    }
    return lo;
}
#endif
