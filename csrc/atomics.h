/* Shared model memory is read and written with relaxed atomics: plain
 * loads and stores on x86, but defined behaviour and ThreadSanitizer-clean. */
#ifndef PA_ATOMICS_H
#define PA_ATOMICS_H
#include <stdint.h>

static inline double pa_load(const double *p)
{
    double v;
    __atomic_load(p, &v, __ATOMIC_RELAXED);
    return v;
}

static inline void pa_store(double *p, double v)
{
    __atomic_store(p, &v, __ATOMIC_RELAXED);
}

static inline int64_t pa_load_i64(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void pa_store_i64(int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* *p = a * *p + b, racy: a concurrent write in between may be lost. */
static inline double pa_racy_axpb(double *p, double a, double b)
{
    double new_ = a * pa_load(p) + b;
    pa_store(p, new_);
    return new_;
}

/* *p = a * *p + b with compare-and-swap: no update is lost. */
static inline double pa_cas_axpb(double *p, double a, double b)
{
    double old, new_;
    __atomic_load(p, &old, __ATOMIC_RELAXED);
    do {
        new_ = a * old + b;
    } while (!__atomic_compare_exchange(p, &old, &new_, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED));
    return new_;
}

/* *p = new_ if it still holds *expected; else *expected = what it holds. */
static inline int pa_cas(double *p, double *expected, double new_)
{
    return __atomic_compare_exchange(p, expected, &new_, 1, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED);
}

/* Advance a coordinate's lazy clock from `old` to `now`; only the caller
 * that wins owns the catch-up of that interval. */
static inline int pa_cas_i64(int64_t *p, int64_t old, int64_t now)
{
    return __atomic_compare_exchange_n(p, &old, now, 0, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED);
}
#endif
