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
    c->avg_from = INT64_MAX;
    if (p->average > 0) {
        c->avg_from = p->average - t0 > 1 ? p->average - t0 : 1;
        c->avg_lazy = c->lazy && c->has_mom;
        if (c->avg_lazy) {
            const double *R = c->gain_table;
            double *E = c->avg_decay = prefix_alloc(max_clock);
            if (!E) goto nomem;
            E[max_clock] = 0.0;
            for (int64_t k = max_clock - 1; k >= 0; k--) {
                double d = c->has_l2 ? pa_decay(c->l2, pa_ctx_eta(c, k + 1)) : 1.0;
                E[k] = d * ((k + 1 >= c->avg_from ? 1.0 : 0.0) + E[k + 1]);
            }
            if (R) {
                double *H = c->avg_gain = prefix_alloc(max_clock + 1);
                if (!H) goto nomem;
                H[max_clock + 1] = 0.0;
                for (int64_t k = max_clock; k >= 0; k--)
                    H[k] = (k >= c->avg_from ? R[k] : 0.0) + c->mu * H[k + 1];
            }
        }
        if (c->scaled) {
            double *Q = c->avg_weight = prefix_alloc(max_clock);
            if (!Q) goto nomem;
            Q[0] = 0.0;
            for (int64_t k = 1; k <= max_clock; k++)
                Q[k] = Q[k - 1] + (k >= c->avg_from ? c->decay_prefix[k] : 0.0);
        }
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
    free(c->avg_weight);
    free(c->avg_decay);
    free(c->avg_gain);
    c->avg_weight = c->avg_decay = c->avg_gain = NULL;
    c->decay_prefix = c->logd_prefix = c->mu_pow = c->gain_table = c->u_prefix = NULL;
    c->inv_decay = NULL;
}

void pa_penalty_open(pa_epoch_ctx *c, pa_linear_model *m, int64_t n_features, int single)
{
    c->track_penalty = single && c->p->track_objective && !c->lazy &&
                       !c->passive_aggressive && (c->has_l2 || c->has_l1);
    m->pen_sum = 0.0;
    if (!c->track_penalty || m->pen_sq >= 0.0) /* carried from the epoch before */
        return;
    m->pen_sq = m->pen_abs = 0.0; /* a new weight vector's: the whole norms */
    for (int64_t j = 0; j < n_features; j++) {
        m->pen_sq += m->w[j] * m->w[j];
        m->pen_abs += fabs(m->w[j]);
    }
}

void pa_penalty_close(const pa_epoch_ctx *c, pa_linear_model *out, const pa_linear_model *m,
                      int64_t k_end, pa_epoch_stats *st)
{
    st->penalty_tracked = c->track_penalty;
    st->penalty_sum = c->track_penalty ? m->pen_sum : 0.0;
    /* carried on in true units (the epoch's scale is folded in) */
    const double s = c->scaled ? c->decay_prefix[k_end] : 1.0;
    out->pen_sq = c->track_penalty ? m->pen_sq * s * s : -1.0;
    out->pen_abs = c->track_penalty ? m->pen_abs * s : -1.0;
}

/* All workers' accumulators together stay under this (as their private
 * copies do): beyond, a MemoryError, not the kernel's out-of-memory killer. */
#define PA_AVG_BUDGET ((size_t)1 << 31)

int pa_linear_average_open(const pa_epoch_ctx *c, const pa_linear_model *m,
                           int64_t n_features, int n_workers, double ***accs)
{
    *accs = NULL;
    if (!m->avg_sum)
        return PA_OK;
    if (c->lazy && !c->avg_lazy)
        return PA_AVG_LAZY;
    /* whole lines: no two workers' accumulators share one */
    size_t bytes = ((size_t)n_features + 1) * sizeof(double), line = (bytes + 63) / 64 * 64;
    if ((size_t)n_workers > PA_AVG_BUDGET / line)
        return PA_NOMEM;
    double **a = calloc((size_t)n_workers, sizeof(double *));
    if (!a) return PA_NOMEM;
    *accs = a;
    for (int t = 0; t < n_workers; t++) {
        a[t] = aligned_alloc(64, line);
        if (!a[t]) return PA_NOMEM;
        memset(a[t], 0, bytes);
    }
    return PA_OK;
}

/* With W(k) the stored weights after clock k (W(0) at the epoch start) and
 * Q(k) = pa_avg_weight(c, k), the iterates' sum
 *     sum_k P[k] W(k) = Q(k_end) W(k_end) - sum_k Q(k - 1) (W(k) - W(k - 1)),
 * so a worker adds -Q(k - 1) times each change it makes at clock k to its
 * accumulator (-Q(k) for the L1 truncation, which the iterate of clock k
 * does not see): O(its changes), however the weights are kept, and with
 * no shared write. Averaged lazy rows move every coordinate at every
 * clock; there the workers add the sums themselves (pa_avg_gap over each
 * gap they catch up, the value after each step they make). */
int64_t pa_linear_average_close(const pa_epoch_ctx *c, pa_linear_model *m,
                                double **accs, int n_workers, int64_t n_features,
                                int64_t k_end)
{
    if (!accs) return 0;
    /* averaged lazy rows: every coordinate's sum, caught up to the end */
    if (c->avg_lazy) {
        double *acc = m->avg_acc;
        m->avg_acc = accs[0];
        for (int64_t j = 0; j < n_features; j++)
            pa_catch_up_f64_plain(c, m, j, k_end);
        m->avg_acc = acc;
    }
    const double qw = c->avg_lazy ? 0.0 : pa_avg_weight(c, k_end);
    const double qb = pa_avg_count(c, k_end);
    for (int64_t j = 0; j <= n_features; j++) {
        double s = j < n_features ? qw * m->w[j] : qb * m->b[0];
        for (int t = 0; t < n_workers; t++) s += accs[t][j];
        m->avg_sum[j] += s;
    }
    return (int64_t)qb;
}

void pa_linear_average_free(double **accs, int n_workers)
{
    if (!accs) return;
    for (int t = 0; t < n_workers; t++) free(accs[t]);
    free(accs);
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
