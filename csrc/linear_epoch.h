/* Per-epoch constants of a linear model's update, as functions of the local
 * clock k (1-based update number within the epoch): the learning rate, the
 * product of L2 decays, powers of the momentum and the cumulative L1
 * penalty. Computed once per epoch, shared read-only by the workers.
 *
 * Sparse rows stay O(nnz) in one of two ways:
 *  - scaled (L2, no momentum): w_j is stored divided by the decay product
 *    P[k], so the decay of untouched coordinates costs nothing, like
 *    scikit-learn's wscale but with the scale a function of the clock, not
 *    a shared variable;
 *  - lazy (momentum): each coordinate remembers the clock of its last
 *    update and is caught up in closed form when next touched. */
#ifndef PA_LINEAR_EPOCH_H
#define PA_LINEAR_EPOCH_H
#include <math.h>
#include <stdint.h>
#include "pyasync_core.h"

#define PA_TINY 1e-280
#define PA_SCALE_FLOOR 1e-100 /* below, scaled weights would overflow */

typedef struct {
    const pa_linear_params *p;
    int64_t t0;
    double eta_const;
    int varying;          /* learning rate changes with every update */
    int passive_aggressive; /* PA1 / PA2 steps */
    int has_l2, has_l1, has_mom;
    int scaled, lazy;     /* how sparse rows keep untouched coordinates */
    double l2, l1, mu;    /* penalty strengths, momentum */
    double u_step;        /* L1 penalty per update, when the rate is constant */
    double *decay_prefix; /* P[k]: product of decays over steps 1..k */
    double *logd_prefix;  /* log P[k], only when P underflows */
    double *mu_pow;       /* mu^g */
    double *gain_table;   /* R(a) of pa_velocity_gain, when stable */
    double *inv_decay;    /* 1 / P[k], with momentum where P does not underflow */
    int cheap_gaps;       /* a gap's factors are table loads: no division, no pow */
    double *u_prefix;     /* L1 penalty summed over steps 1..k, when varying */
    int64_t avg_from;     /* averaged SGD: iterates from this clock on (else past any) */
    double *avg_weight;   /* scaled: P[avg_from] + ... + P[k] (pa_avg_weight) */
    int track_penalty;    /* one writer sums the penalty at each read (pa_penalty_open) */
    int avg_lazy;         /* averaged lazy rows: the accumulators hold the sums
                             themselves (pa_avg_gap), not the changes' */
    double *avg_decay;    /* lazy: E[k] = sum of D(k, s) over averaged s > k */
    double *avg_gain;     /* lazy: H[k] = R(k) [k averaged] + mu H[k + 1] */
} pa_epoch_ctx;

/* The learning rate of update t (1-based, over the whole fit), inline:
 * the kernels ask for it on every update. */
static inline double pa_schedule_eta(const pa_linear_params *p, double eta_const,
                                     int64_t t)
{
    switch (p->schedule) {
    case PA_OPTIMAL:
        return 1.0 / (p->alpha * (p->optimal_init + (double)t - 1.0));
    case PA_INVSCALING:
        return p->eta0 / pow((double)t, p->power_t);
    default:
        return eta_const;
    }
}

static inline double pa_ctx_eta(const pa_epoch_ctx *c, int64_t k)
{
    return c->varying ? pa_schedule_eta(c->p, c->eta_const, c->t0 + k) : c->eta_const;
}

/* Averaged SGD, as scikit-learn's: the iterate of clock k (after its
 * step, before its L1 truncation) counts from clock avg_from on. The
 * iterates avg_from..k counted (the intercept's weight), and their weight
 * in stored units (the weights'): the same, or where the stored weights
 * are scaled, the sum of their scales P. */
static inline double pa_avg_count(const pa_epoch_ctx *c, int64_t k)
{
    return k < c->avg_from ? 0.0 : (double)(k - c->avg_from + 1);
}

static inline double pa_avg_weight(const pa_epoch_ctx *c, int64_t k)
{
    if (k < c->avg_from) return 0.0;
    return c->avg_weight ? c->avg_weight[k] : pa_avg_count(c, k);
}

/* Decay of one update: never negative, as scikit-learn. */
static inline double pa_decay(double l2, double eta)
{
    double d = 1.0 - l2 * eta;
    return d > 0.0 ? d : 0.0;
}

/* Product of decays over steps a+1..b. */
static inline double pa_ctx_D(const pa_epoch_ctx *c, int64_t a, int64_t b)
{
    if (!c->decay_prefix) return 1.0;
    double pb = c->decay_prefix[b];
    if (c->inv_decay) return pb * c->inv_decay[a];
    if (pb > PA_TINY) return pb / c->decay_prefix[a];
    return c->logd_prefix ? exp(c->logd_prefix[b] - c->logd_prefix[a]) : 0.0;
}

/* Cumulative L1 penalty applied up to and including step k. */
static inline double pa_ctx_u(const pa_epoch_ctx *c, double u0, int64_t k)
{
    return u0 + (c->u_prefix ? c->u_prefix[k] : (double)k * c->u_step);
}

/* Weight of v in w after the untouched steps a+1..b (v <- mu v;
 * w <- d w + v): S = sum_{i=1..g} mu^i D(a+i, b), g = b - a. With
 * R(a) = sum_{i>=1} mu^i / D(a, a+i), tabulated backwards per epoch
 * (R(a) = mu / d_{a+1} (1 + R(a+1))), S = D(a, b) R(a) - mu^g R(b) exactly.
 * Where the table would grow (|mu| near the decay) the decay is taken
 * constant over the gap instead. `D` = D(a, b), `mug` = mu^g. */
static inline double pa_velocity_gain(const pa_epoch_ctx *c, int64_t a,
                                      int64_t b, double D, double mug)
{
    if (c->gain_table)
        return D * c->gain_table[a] - mug * c->gain_table[b];
    double mu = c->mu, g = (double)(b - a);
    double d = pa_decay(c->l2, pa_ctx_eta(c, a + 1));
    if (fabs(d - mu) > 1e-3)
        return mu * (pow(d, g) - mug) / (d - mu);
    return g * mug; /* the limit d == mu */
}

/* What steps a+1..b leave of a coordinate untouched in them:
 * w <- D w + gain v, v <- mug v (gain and mug only `with_velocity`). */
typedef struct { double D, gain, mug; } pa_gap;

static inline pa_gap pa_gap_factors(const pa_epoch_ctx *c, int64_t a, int64_t b,
                                    int with_velocity)
{
    pa_gap f = {pa_ctx_D(c, a, b), 0.0, 0.0};
    if (with_velocity) {
        f.mug = c->mu_pow[b - a];
        f.gain = pa_velocity_gain(c, a, b, f.D, f.mug);
    }
    return f;
}

/* pa_gap_factors where they are table loads (cheap_gaps), the end step's
 * entries Pb = P[b] (1 without decay) and Rb = R(b) given: a row's gaps
 * share them. */
static inline pa_gap pa_table_gap(const double *inv, const double *R, const double *mu_pow,
                                  double Pb, double Rb, int64_t a, int64_t b)
{
    pa_gap f;
    f.D = inv ? Pb * inv[a] : 1.0;
    f.mug = mu_pow[b - a];
    f.gain = f.D * R[a] - f.mug * Rb;
    return f;
}

/* Averaged lazy rows: the sum over the averaged clocks s in a+1..b of
 * the values a coordinate left at (w, v) after step a takes,
 *     w D(a, s) + v gain(a, s),  gain(a, s) = D(a, s) R(a) - mu^(s-a) R(s):
 * with E(a) = sum_{s>a, averaged} D(a, s), tabulated backwards per epoch
 * like R (no quotient of decay products, so no cancellation where they
 * are tiny), sum_s D(a, s) = E(a) - D(a, b) E(b), and with H (avg_gain)
 * sum_s mu^(s-a) R(s) = mu (H[a+1] - mu^(b-a) H[b+1]). Without R's table,
 * the gains pa_velocity_gain takes then (the decay d constant over the
 * gap) summed in closed form. `D` = D(a, b). */
static inline double pa_geometric_sum(double x, int64_t i0, int64_t i1)
{   /* x^i0 + ... + x^i1 */
    if (i1 < i0) return 0.0;
    if (x == 1.0) return (double)(i1 - i0 + 1);
    return (pow(x, (double)i0) - pow(x, (double)(i1 + 1))) / (1.0 - x);
}

static inline double pa_weighted_geometric_sum(double x, int64_t i0, int64_t i1)
{   /* i0 x^i0 + ... + i1 x^i1, |x| < 1 */
    if (i1 < i0) return 0.0;
    double r = 1.0 - x, n0 = (double)i0, n1 = (double)i1 + 1.0;
    return (n0 * pow(x, n0) - n1 * pow(x, n1)) / r + x * (pow(x, n0) - pow(x, n1)) / (r * r);
}

static inline double pa_avg_gap(const pa_epoch_ctx *c, int64_t a, int64_t b,
                                double D, double w, double v)
{
    if (b <= a || b < c->avg_from) return 0.0;
    const double S = c->avg_decay[a] - D * c->avg_decay[b];
    double sum = S * w;
    if (v == 0.0) return sum;
    if (c->gain_table)
        return sum + (c->gain_table[a] * S - c->mu * (c->avg_gain[a + 1] -
                                                      c->mu_pow[b - a] * c->avg_gain[b + 1])) * v;
    const double mu = c->mu, d = pa_decay(c->l2, pa_ctx_eta(c, a + 1));
    const int64_t i0 = c->avg_from > a + 1 ? c->avg_from - a : 1, i1 = b - a;
    double gains;
    if (fabs(d - mu) > 1e-3)
        gains = mu * (pa_geometric_sum(d, i0, i1) - pa_geometric_sum(mu, i0, i1)) / (d - mu);
    else
        gains = pa_weighted_geometric_sum(mu, i0, i1);
    return sum + gains * v;
}
#endif
