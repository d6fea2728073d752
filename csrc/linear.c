/* The linear model's kernels, instantiated per data type and write mode,
 * and the per-epoch constants they read. */
#include <stdlib.h>
#include <string.h>
#include "linear.h"

#define REAL double
#define SFX _f64_plain
#define MODE_PLAIN 1
#define MODE_ATOMIC 0
#include "linear_kernel.h"
#undef SFX
#undef MODE_PLAIN
#define SFX _f64_racy
#define MODE_PLAIN 0
#include "linear_kernel.h"
#undef SFX
#undef MODE_ATOMIC
#define SFX _f64_atomic
#define MODE_ATOMIC 1
#include "linear_kernel.h"
#undef SFX
#undef MODE_ATOMIC
#undef MODE_PLAIN
#undef REAL

#define REAL float
#define SFX _f32_plain
#define MODE_PLAIN 1
#define MODE_ATOMIC 0
#include "linear_kernel.h"
#undef SFX
#undef MODE_PLAIN
#define SFX _f32_racy
#define MODE_PLAIN 0
#include "linear_kernel.h"
#undef SFX
#undef MODE_ATOMIC
#define SFX _f32_atomic
#define MODE_ATOMIC 1
#include "linear_kernel.h"
#undef SFX
#undef MODE_ATOMIC
#undef MODE_PLAIN
#undef REAL

#define KERNELS(sfx, peek) \
    { { pa_predict_dense##sfx, pa_apply_dense##sfx, pa_prefetch_dense##sfx, NULL }, \
      { pa_predict_sparse##sfx, pa_apply_sparse##sfx, pa_prefetch_sparse##sfx, peek } }

/* [dtype][mode: plain, racy, atomic][sparse] */
static const pa_linear_kernel kernels[2][3][2] = {
    { KERNELS(_f64_plain, pa_peek_sparse_f64_plain), KERNELS(_f64_racy, NULL),
      KERNELS(_f64_atomic, NULL) },
    { KERNELS(_f32_plain, pa_peek_sparse_f32_plain), KERNELS(_f32_racy, NULL),
      KERNELS(_f32_atomic, NULL) },
};

pa_linear_kernel pa_linear_kernel_for(int dtype, int sparse, int update)
{
    int mode = update == PA_ATOMIC ? 2 : update == PA_RACY ? 1 : 0;
    return kernels[dtype == PA_F32][mode][sparse != 0];
}

double pa_eta(const pa_linear_params *p, double eta_const, int64_t t)
{
    return pa_schedule_eta(p, eta_const, t);
}

static double *prefix_alloc(int64_t max_clock)
{
    return malloc((size_t)(max_clock + 1) * sizeof(double));
}

int pa_epoch_ctx_init(pa_epoch_ctx *c, const pa_linear_params *p, int sparse,
                      int64_t t0, double eta, int64_t max_clock)
{
    memset(c, 0, sizeof *c);
    c->p = p;
    c->t0 = t0;
    c->eta_const = eta;
    c->varying = p->schedule == PA_OPTIMAL || p->schedule == PA_INVSCALING;
    c->passive_aggressive = p->schedule == PA_PA1 || p->schedule == PA_PA2;
    c->l2 = p->l2;
    c->l1 = p->l1;
    c->has_l2 = c->l2 > 0.0;
    c->has_l1 = c->l1 > 0.0;
    c->mu = p->momentum;
    c->has_mom = p->momentum != 0.0;
    c->u_step = c->l1 * eta;
    if (sparse && c->has_l2) {
        double *P = c->decay_prefix = prefix_alloc(max_clock);
        if (!P) goto nomem;
        P[0] = 1.0;
        for (int64_t k = 1; k <= max_clock; k++)
            P[k] = P[k - 1] * pa_decay(c->l2, pa_ctx_eta(c, k));
        if (P[max_clock] <= PA_TINY) {
            double *L = c->logd_prefix = prefix_alloc(max_clock);
            if (!L) goto nomem;
            L[0] = 0.0;
            for (int64_t k = 1; k <= max_clock; k++) {
                double d = pa_decay(c->l2, pa_ctx_eta(c, k));
                L[k] = L[k - 1] + log(d > PA_TINY ? d : PA_TINY);
            }
        }
    }
    c->scaled = sparse && c->has_l2 && !c->has_mom &&
                c->decay_prefix[max_clock] > PA_SCALE_FLOOR;
    c->lazy = sparse && !c->scaled && (c->has_l2 || c->has_mom);
    if (c->lazy && c->has_mom) {
        double *M = c->mu_pow = prefix_alloc(max_clock);
        if (!M) goto nomem;
        M[0] = 1.0;
        for (int64_t g = 1; g <= max_clock; g++) M[g] = M[g - 1] * c->mu;
        double *R = c->gain_table = prefix_alloc(max_clock);
        if (!R) goto nomem;
        R[max_clock] = 0.0;
        for (int64_t k = max_clock - 1; k >= 0; k--) {
            double d = c->has_l2 ? pa_decay(c->l2, pa_ctx_eta(c, k + 1)) : 1.0;
            if (fabs(c->mu) >= 0.999 * d) { /* would grow: no table */
                free(R);
                c->gain_table = NULL;
                break;
            }
            R[k] = c->mu / d * (1.0 + R[k + 1]);
        }
        if (c->decay_prefix && !c->logd_prefix) {
            double *I = c->inv_decay = prefix_alloc(max_clock);
            if (!I) goto nomem;
            for (int64_t k = 0; k <= max_clock; k++) I[k] = 1.0 / c->decay_prefix[k];
        }
        c->cheap_gaps = c->gain_table && (c->inv_decay || !c->decay_prefix);
    }
    if (c->has_l1 && c->varying) {
        double *U = c->u_prefix = prefix_alloc(max_clock);
        if (!U) goto nomem;
        U[0] = 0.0;
        for (int64_t k = 1; k <= max_clock; k++)
            U[k] = U[k - 1] + c->l1 * pa_ctx_eta(c, k);
    }
    return PA_OK;
nomem:
    pa_epoch_ctx_free(c);
    return PA_NOMEM;
}

void pa_epoch_ctx_free(pa_epoch_ctx *c)
{
    free(c->decay_prefix);
    free(c->logd_prefix);
    free(c->mu_pow);
    free(c->gain_table);
    free(c->inv_decay);
    free(c->u_prefix);
    c->decay_prefix = c->logd_prefix = c->mu_pow = c->gain_table = c->u_prefix = NULL;
    c->inv_decay = NULL;
}

void pa_linear_finish(const pa_epoch_ctx *c, pa_linear_model *m,
                      int64_t n_features, int64_t k_end)
{
    if (c->lazy)
        for (int64_t j = 0; j < n_features; j++)
            pa_catch_up_f64_plain(c, m, j, k_end);
    if (c->scaled) {
        double scale = c->decay_prefix[k_end];
        for (int64_t j = 0; j < n_features; j++) m->w[j] *= scale;
    }
    m->u = pa_ctx_u(c, m->u, k_end);
}
