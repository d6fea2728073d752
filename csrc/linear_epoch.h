/* Per-epoch constants of a linear model's update: the learning rate, the
 * L2 decay and the cumulative L1 penalty as functions of the local clock k
 * (1-based update number within the epoch). Shared read-only by workers. */
#ifndef PA_LINEAR_EPOCH_H
#define PA_LINEAR_EPOCH_H
#include <math.h>
#include <stdint.h>
#include "pyasync_core.h"

typedef struct {
    const pa_linear_params *p;
    int64_t t0;
    double eta_const;
    int varying;          /* learning rate changes with every update */
    int has_l2, has_l1, has_mom;
    double l2, l1, mu;    /* penalty strengths, momentum */
    double logd_step, u_step; /* per update, when the rate is constant */
    double *logd_prefix;  /* sum of log decay over steps 1..k, when varying */
    double *u_prefix;     /* sum of L1 penalty over steps 1..k, when varying */
} pa_epoch_ctx;

static inline double pa_ctx_eta(const pa_epoch_ctx *c, int64_t k)
{
    return c->varying ? pa_eta(c->p, c->eta_const, c->t0 + k) : c->eta_const;
}

/* Decay of one update: never negative, as scikit-learn. */
static inline double pa_decay(double l2, double eta)
{
    double d = 1.0 - l2 * eta;
    return d > 0.0 ? d : 0.0;
}

static inline double pa_log_decay(double d) { return log(d > 1e-300 ? d : 1e-300); }

/* Log of the product of decays over steps a+1..b. */
static inline double pa_ctx_logD(const pa_epoch_ctx *c, int64_t a, int64_t b)
{
    return c->logd_prefix ? c->logd_prefix[b] - c->logd_prefix[a]
                          : (double)(b - a) * c->logd_step;
}

/* Cumulative L1 penalty applied up to and including step k. */
static inline double pa_ctx_u(const pa_epoch_ctx *c, double u0, int64_t k)
{
    return u0 + (c->u_prefix ? c->u_prefix[k] : (double)k * c->u_step);
}

/* Weight of v in w after g untouched steps (v <- mu v; w <- d w + v):
 * sum_{i=1..g} d^(g-i) mu^i, with d the mean decay over the gap (exact for
 * a constant rate). `D` = d^g, `mug` = mu^g. */
static inline double pa_velocity_gain(double mu, double D, double mug, int64_t g)
{
    double d = g == 1 ? D : exp(log(D > 1e-300 ? D : 1e-300) / (double)g);
    if (fabs(d - mu) > 1e-3)
        return mu * (D - mug) / (d - mu);
    if (g > 4096)
        return (double)g * mug; /* the limit d == mu */
    double s = 0.0, m = 1.0;
    for (int64_t i = 0; i < g; i++) { m *= mu; s = s * d + m; }
    return s; /* Horner: S_i = d S_{i-1} + mu^i */
}
#endif
