/* One update of a linear model from one row: the only place the update
 * math lives. Included once per (data type, write mode); the including file
 * defines REAL, SFX (name suffix) and MODE_PLAIN / MODE_ATOMIC.
 *
 * The update with momentum mu, decay d and step upd = -eta * dloss * sw:
 *     v <- mu v + upd x;   w <- d w + v        (mu = 0: scikit-learn's SGD)
 * then the L1 truncation of Tsuruoka et al. on the touched coordinates.
 * Sparse rows keep O(nnz): coordinates not in a row are caught up lazily
 * from the clock of their last update. */
#include "losses.h"
#include "atomics.h"
#include "linear_epoch.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SFX)

#if MODE_PLAIN
#define LD(p) (*(p))
#define ST(p, x) (*(p) = (x))
#define AXPB(p, a, bb) (*(p) = (a) * *(p) + (bb))
#define LDI(p) (*(p))
#define CLAIM(p, old, now) (*(p) = (now), 1)
#elif MODE_ATOMIC
#define LD(p) pa_load(p)
#define ST(p, x) pa_store((p), (x))
#define AXPB(p, a, bb) pa_cas_axpb((p), (a), (bb))
#define LDI(p) pa_load_i64(p)
#define CLAIM(p, old, now) pa_cas_i64((p), (old), (now))
#else /* racy */
#define LD(p) pa_load(p)
#define ST(p, x) pa_store((p), (x))
#define AXPB(p, a, bb) pa_racy_axpb((p), (a), (bb))
#define LDI(p) pa_load_i64(p)
#define CLAIM(p, old, now) (pa_store_i64((p), (now)), 1)
#endif

#define MAX_DLOSS 1e12

/* Bring coordinate j to the end of step kt as if untouched since last[j]
 * (lazy mode). */
static inline void FN(pa_catch_up)(const pa_epoch_ctx *c, pa_linear_model *m,
                                   int64_t j, int64_t kt)
{
    int64_t last = LDI(&m->last[j]);
    if (last >= kt || !CLAIM(&m->last[j], last, kt))
        return;
    double v = c->has_mom ? LD(&m->v[j]) : 0.0;
    pa_gap f = pa_gap_factors(c, last, kt, v != 0.0);
    if (c->avg_lazy && m->avg_acc)
        m->avg_acc[j] += pa_avg_gap(c, last, kt, f.D, LD(&m->w[j]), v);
    if (v != 0.0) {
        AXPB(&m->w[j], f.D, f.gain * v);
        AXPB(&m->v[j], f.mug, 0.0);
    } else if (f.D != 1.0) {
        AXPB(&m->w[j], f.D, 0.0);
    }
}

/* Scikit-learn's truncated-gradient L1 step on coordinate j; `scale` is
 * the factor from stored to true weights; `qa`, averaged SGD's weight of
 * its change (pa_linear_average_close): the iterates after it see it.
 * (Scikit-learn's lazy average counts it as if made before every iterate
 * since its last rescale, so its averaged weights differ under L1.) */
static inline void FN(pa_l1_step)(pa_linear_model *m, int64_t j, double u,
                                  double scale, double qa)
{
    /* q is shared like w: relaxed loads and the mode's add */
    double stored = LD(&m->w[j]), q = LD(&m->q[j]), z, w;
    for (;;) {
        z = stored * scale;
        w = z;
        if (z > 0.0) {
            w = z - (u + q);
            if (w < 0.0) w = 0.0;
        } else if (z < 0.0) {
            w = z + (u - q);
            if (w > 0.0) w = 0.0;
        }
#if MODE_ATOMIC
        /* truncate the weight as it is when written: a step another
         * worker lands meanwhile is kept, not overwritten */
        if (pa_cas(&m->w[j], &stored, w / scale)) break;
#else
        ST(&m->w[j], w / scale);
        break;
#endif
    }
    AXPB(&m->q[j], 1.0, w - z);
    if (qa != 0.0) m->avg_acc[j] -= qa * (w - z) / scale;
}

/* The step of the update, -eta * dloss * sample weight; adds the loss.
 * Passive-aggressive steps go against dloss by the step that zeroes the
 * loss, loss / |x|^2, capped at C (PA-I) or damped to loss / (|x|^2 +
 * 1 / 2C) (PA-II); `sqnorm` = |x|^2 is read only there. */
static inline double FN(pa_step)(const pa_epoch_ctx *c, int64_t k, double p,
                                 double y, double sw, double sqnorm, double *loss)
{
    const pa_linear_params *prm = c->p;
    double dloss = pa_loss_dloss(prm->loss, prm->loss_param, y, p);
    double value = pa_loss_value(prm->loss, prm->loss_param, y, p);
    *loss += value;
    if (prm->schedule == PA_PA1 || prm->schedule == PA_PA2) {
        const double C = c->eta_const;
        double tau = prm->schedule == PA_PA2 ? value / (sqnorm + 0.5 / C)
                     : sqnorm > 0.0 ? fmin(C, value / sqnorm) : 0.0;
        return (dloss < 0.0 ? tau : dloss > 0.0 ? -tau : 0.0) * sw;
    }
    if (dloss < -MAX_DLOSS) dloss = -MAX_DLOSS;
    else if (dloss > MAX_DLOSS) dloss = MAX_DLOSS;
    return -pa_ctx_eta(c, k) * dloss * sw;
}

static inline void FN(pa_intercept_step)(const pa_epoch_ctx *c, pa_linear_model *m,
                                         double upd, int64_t n_features)
{
    if (!c->p->fit_intercept)
        return;
    double delta = upd * c->p->intercept_decay;
    if (c->has_mom)
        delta = AXPB(m->vb, c->mu, delta);
    AXPB(m->b, 1.0, delta);
    if (m->avg_acc) m->avg_acc[n_features] -= pa_avg_count(c, m->avg_clock - 1) * delta;
}

/* scikit-learn's objective adds the penalty at each update's read from
 * the norms its weight vector keeps (pa_penalty_open: one writer). Its
 * add() sets them to those of the weights on the row's coordinates just
 * after adding the row (all of them on dense rows; each sparse entry just
 * after its own add, a duplicate twice), before the L1 truncation; an
 * update of 0 adds nothing and its decay scales them; the truncations
 * never reach them. Kept here as it keeps them, in stored units. */
static inline void FN(pa_penalty_read)(const pa_epoch_ctx *c, pa_linear_model *m, int64_t k)
{
    const double s = c->scaled ? c->decay_prefix[k - 1] : 1.0;
    m->pen_sum += c->l2 * 0.5 * s * s * m->pen_sq + c->l1 * s * m->pen_abs;
}

/* ---- dense rows: every coordinate is touched by every update ---- */

/* Every cache line of [begin, end): a row rarely starts on a line, and
 * stepping 64 bytes from its start would miss the last line. */
#ifndef PA_PREFETCH_HELPERS
#define PA_PREFETCH_HELPERS
static inline void pa_prefetch_span(const void *begin, const void *end)
{
    for (uintptr_t a = (uintptr_t)begin & ~(uintptr_t)63; a < (uintptr_t)end; a += 64)
        __builtin_prefetch((const void *)a);
}

/* A shuffled row's target and weight miss cache as surely as its data. */
static inline void pa_prefetch_target(const pa_dataset *ds, int64_t i)
{
    __builtin_prefetch(&ds->y[i]);
    if (ds->sample_weight) __builtin_prefetch(&ds->sample_weight[i]);
}
#endif

static void FN(pa_prefetch_dense)(const pa_dataset *ds, int64_t i)
{
    const REAL *row = (const REAL *)ds->data + i * ds->n_features;
    pa_prefetch_span(row, row + ds->n_features);
    pa_prefetch_target(ds, i);
}

static double FN(pa_predict_dense)(const pa_epoch_ctx *c, pa_linear_model *m,
                                   const pa_dataset *ds, int64_t i, int64_t k)
{
    (void)c; (void)k;
    const REAL *x = (const REAL *)ds->data + i * ds->n_features;
    const double *w = m->w;
    int64_t n = ds->n_features;
    double s = 0.0;
#if MODE_PLAIN
#pragma omp simd reduction(+:s)
    for (int64_t j = 0; j < n; j++) s += w[j] * (double)x[j];
#else
    for (int64_t j = 0; j < n; j++) s += LD(&w[j]) * (double)x[j];
#endif
    return s + LD(m->b);
}

static double FN(pa_apply_dense)(const pa_epoch_ctx *c, pa_linear_model *m,
                                 const pa_dataset *ds, int64_t i, int64_t k,
                                 double p, double *loss)
{
    const REAL *x = (const REAL *)ds->data + i * ds->n_features;
    int64_t n = ds->n_features;
    double sw = ds->sample_weight ? ds->sample_weight[i] : 1.0;
    double sqnorm = 0.0;
    if (c->passive_aggressive)
        for (int64_t j = 0; j < n; j++) sqnorm += (double)x[j] * (double)x[j];
    double upd = FN(pa_step)(c, k, p, ds->y[i], sw, sqnorm, loss);
    double d = c->has_l2 ? pa_decay(c->l2, pa_ctx_eta(c, k)) : 1.0;
    double *restrict w = m->w;
    if (c->track_penalty) FN(pa_penalty_read)(c, m, k);
    const double qa = m->avg_acc ? pa_avg_weight(c, m->avg_clock - 1) : 0.0;
    if (qa != 0.0) { /* averaged SGD: each change weighted too */
        double *restrict A = m->avg_acc, *restrict v = m->v, mu = c->mu;
        for (int64_t j = 0; j < n; j++) {
            /* this worker's change, (d - 1) w + step, from the w it read:
             * not another worker's write landing meanwhile */
            double old = LD(&w[j]), g = upd * (double)x[j];
            double step = c->has_mom ? AXPB(&v[j], mu, g) : g;
            AXPB(&w[j], d, step);
            A[j] -= qa * ((d - 1.0) * old + step);
        }
    } else if (c->has_mom) {
        double *restrict v = m->v, mu = c->mu;
#if MODE_PLAIN
#pragma omp simd
        for (int64_t j = 0; j < n; j++) {
            v[j] = mu * v[j] + upd * (double)x[j];
            w[j] = d * w[j] + v[j];
        }
#else
        for (int64_t j = 0; j < n; j++)
            AXPB(&w[j], d, AXPB(&v[j], mu, upd * (double)x[j]));
#endif
    } else if (d != 1.0 || upd != 0.0) {
#if MODE_PLAIN
#pragma omp simd
        for (int64_t j = 0; j < n; j++) w[j] = d * w[j] + upd * (double)x[j];
#else
        for (int64_t j = 0; j < n; j++) AXPB(&w[j], d, upd * (double)x[j]);
#endif
    }
    if (c->track_penalty && upd != 0.0) { /* the row is every coordinate */
        double sq = 0.0, ab = 0.0;
        for (int64_t j = 0; j < n; j++) {
            sq += w[j] * w[j];
            ab += fabs(w[j]);
        }
        m->pen_sq = sq;
        m->pen_abs = ab;
    } else if (c->track_penalty) {
        m->pen_sq *= d * d;
        m->pen_abs *= d;
    }
    FN(pa_intercept_step)(c, m, upd, n);
    if (c->has_l1) {
        double u = pa_ctx_u(c, m->u, k);
        double ql = m->avg_acc ? pa_avg_weight(c, m->avg_clock) : 0.0;
        for (int64_t j = 0; j < n; j++) FN(pa_l1_step)(m, j, u, 1.0, ql);
    }
    return upd;
}

/* ---- CSR rows: only the row's coordinates, caught up lazily ---- */

/* Rows come in shuffled order: ask for a coming row's lines ahead of time. */
static void FN(pa_prefetch_sparse)(const pa_dataset *ds, int64_t i)
{
    const REAL *x = (const REAL *)ds->data;
    const int32_t *ind = ds->indices;
    int64_t e0 = ds->indptr[i], e1 = ds->indptr[i + 1];
    pa_prefetch_span(x + e0, x + e1);
    pa_prefetch_span(ind + e0, ind + e1);
    pa_prefetch_target(ds, i);
}

/* s += sum of TERM(e) over the row in four running sums: one chain of
 * dependent adds would pay the add's latency on every entry. */
#ifndef PA_SPARSE_DOT
#define PA_SPARSE_DOT(s, TERM) do {                                        \
        double s0_ = 0.0, s1_ = 0.0, s2_ = 0.0, s3_ = 0.0;                 \
        int64_t e_ = e0;                                                   \
        for (; e_ + 4 <= e1; e_ += 4) {                                    \
            s0_ += TERM(e_); s1_ += TERM(e_ + 1);                          \
            s2_ += TERM(e_ + 2); s3_ += TERM(e_ + 3);                      \
        }                                                                  \
        for (; e_ < e1; e_++) s0_ += TERM(e_);                             \
        (s) += (s0_ + s1_) + (s2_ + s3_);                                  \
    } while (0)
#endif

#if MODE_PLAIN
/* Coordinate j's value at the end of step kt, as pa_catch_up computes it. */
static inline double FN(pa_peek_coord)(const pa_epoch_ctx *c, const double *W,
                                       const double *V, const int64_t *T, int64_t j,
                                       int64_t kt)
{
    const int64_t last = T[j];
    const double w = W[j];
    if (last >= kt) return w;
    const double v = c->has_mom ? V[j] : 0.0;
    pa_gap f = pa_gap_factors(c, last, kt, v != 0.0);
    if (v != 0.0) return f.D * w + f.gain * v;
    return f.D != 1.0 ? f.D * w : w;
}
#endif

#if MODE_PLAIN
/* One writer's pa_catch_up of the row's coordinates to step kt where the
 * gaps' factors are table loads (cheap_gaps), with the row's invariants in
 * registers and no branch on the velocity (the same values, up to the
 * sign of a zero): a third of a 1-thread momentum epoch on RCV1-like rows
 * went to the general one's branches. */
static inline void FN(pa_catch_up_row)(const pa_epoch_ctx *c, pa_linear_model *m,
                                       const int32_t *ind, int64_t e0, int64_t e1,
                                       int64_t kt)
{
    const double Pb = c->decay_prefix ? c->decay_prefix[kt] : 1.0, Rb = c->gain_table[kt];
    const double *restrict inv = c->inv_decay, *restrict R = c->gain_table,
                 *restrict mu_pow = c->mu_pow;
    double *restrict W = m->w, *restrict V = m->v;
    double *restrict acc = c->avg_lazy ? m->avg_acc : NULL;
    int64_t *restrict T = m->last;
    for (int64_t e = e0; e < e1; e++) {
        const int64_t j = ind[e], last = T[j];
        if (last >= kt) continue;
        const double w = W[j], v = V[j];
        const pa_gap f = pa_table_gap(inv, R, mu_pow, Pb, Rb, last, kt);
        if (acc) acc[j] += pa_avg_gap(c, last, kt, f.D, w, v);
        W[j] = f.D * w + f.gain * v;
        V[j] = f.mug * v;
        T[j] = kt;
    }
}
#endif

static double FN(pa_predict_sparse)(const pa_epoch_ctx *c, pa_linear_model *m,
                                    const pa_dataset *ds, int64_t i, int64_t k)
{
    const REAL *x = (const REAL *)ds->data;
    const int32_t *ind = ds->indices;
    const int64_t e0 = ds->indptr[i], e1 = ds->indptr[i + 1];
    double s = 0.0, b = LD(m->b);
#if MODE_PLAIN
    if (c->cheap_gaps)
        FN(pa_catch_up_row)(c, m, ind, e0, e1, k - 1);
    else
#endif
    if (c->lazy)
        for (int64_t e = e0; e < e1; e++) FN(pa_catch_up)(c, m, ind[e], k - 1);
#define PA_TERM(e) (LD(&m->w[ind[e]]) * (double)x[e])
    PA_SPARSE_DOT(s, PA_TERM);
#undef PA_TERM
    if (c->scaled) s *= c->decay_prefix[k - 1];
    return s + b;
}

#if MODE_PLAIN
static inline double FN(pa_peek_cheap)(const double *W, const double *V, const int64_t *T,
                                       const double *inv, const double *R,
                                       const double *mu_pow, double Pb, double Rb,
                                       int64_t j, int64_t kt)
{
    const int64_t last = T[j];
    if (last >= kt) return W[j];
    const pa_gap f = pa_table_gap(inv, R, mu_pow, Pb, Rb, last, kt);
    return f.D * W[j] + f.gain * V[j];
}

/* pa_predict_sparse without its catch-up's stores: each coordinate's value
 * at the end of step k - 1 computed as pa_catch_up would store it (bit for
 * bit), the model left as it is. For the simulated engine, whose write
 * comes about M updates after the read and catches up from each
 * coordinate's own clock then: a read that stored its catch-up dirtied
 * the lines twice and left the write a second gap to compute (RCV1-like
 * rows, momentum 0.5: epochs at M = 64 and 256 1.42-1.47x and 1.49-1.57x
 * a 1-thread epoch with it, 1.27x and 1.33x without). */
static double FN(pa_peek_sparse)(const pa_epoch_ctx *c, pa_linear_model *m,
                                 const pa_dataset *ds, int64_t i, int64_t k)
{
    if (!c->lazy) return FN(pa_predict_sparse)(c, m, ds, i, k);
    const REAL *x = (const REAL *)ds->data;
    const int32_t *ind = ds->indices;
    const int64_t e0 = ds->indptr[i], e1 = ds->indptr[i + 1], kt = k - 1;
    const double *W = m->w, *V = m->v;
    const int64_t *T = m->last;
    double s = 0.0;
    if (c->cheap_gaps) { /* pa_catch_up_row's values, not stored */
        const double Pb = c->decay_prefix ? c->decay_prefix[kt] : 1.0, Rb = c->gain_table[kt];
        const double *inv = c->inv_decay, *R = c->gain_table, *mu_pow = c->mu_pow;
#define PA_TERM(e) (FN(pa_peek_cheap)(W, V, T, inv, R, mu_pow, Pb, Rb, ind[e], kt) * \
                    (double)x[e])
        PA_SPARSE_DOT(s, PA_TERM);
#undef PA_TERM
        return s + *m->b;
    }
#define PA_TERM(e) (FN(pa_peek_coord)(c, W, V, T, ind[e], kt) * (double)x[e])
    PA_SPARSE_DOT(s, PA_TERM);
#undef PA_TERM
    return s + *m->b;
}

/* Step k's update of coordinate j, caught up to step k - 1 first, in
 * registers and without a branch on the velocity (as pa_catch_up computes
 * it, up to the sign of a zero): one writer at a time, so no claim.
 * Consecutive coordinates last written by the same update share one gap's
 * factors (the memo). Where the factors are table loads (cheap_gaps),
 * pa_apply_sparse's own loop runs instead, without the memo (paired fits
 * on RCV1-like rows: 13-14% off the simulated engine's momentum epochs at
 * M = 16-64, 3-5% more with the row's invariants in registers). */
static inline void FN(pa_lazy_step)(const pa_epoch_ctx *c, pa_linear_model *m,
                                    int64_t j, int64_t k, double d, double g,
                                    int64_t *memo_last, pa_gap *memo)
{
    int64_t last = m->last[j];
    double w = m->w[j];
    /* averaged lazy rows: the sums themselves (pa_linear_average_close) */
    double *acc = c->avg_lazy ? m->avg_acc : NULL;
    const double ak = k >= c->avg_from ? 1.0 : 0.0;
    if (last == k) { /* a duplicate index in this row (see pa_apply_sparse) */
        if (c->has_mom) m->v[j] += g;
        m->w[j] = w + g;
        if (acc) acc[j] += ak * g;
        return;
    }
    double v = c->has_mom ? m->v[j] : 0.0;
    if (last < k - 1) {
        if (*memo_last != last) {
            *memo_last = last;
            *memo = pa_gap_factors(c, last, k - 1, c->has_mom);
        }
        if (acc) acc[j] += pa_avg_gap(c, last, k - 1, memo->D, w, v);
        w = memo->D * w + memo->gain * v;
        v = memo->mug * v;
    }
    if (last < k) /* the locked mode's threads write out of clock order */
        m->last[j] = k;
    if (c->has_mom) {
        v = c->mu * v + g;
        m->v[j] = v;
        w = d * w + v;
    } else {
        w = d * w + g;
    }
    m->w[j] = w;
    if (acc) acc[j] += ak * w;
}
#endif

static double FN(pa_apply_sparse)(const pa_epoch_ctx *c, pa_linear_model *m,
                                  const pa_dataset *ds, int64_t i, int64_t k,
                                  double p, double *loss)
{
    const REAL *x = (const REAL *)ds->data;
    const int32_t *ind = ds->indices;
    const int64_t e0 = ds->indptr[i], e1 = ds->indptr[i + 1];
    double sw = ds->sample_weight ? ds->sample_weight[i] : 1.0;
    double sqnorm = 0.0;
    if (c->passive_aggressive)
        for (int64_t e = e0; e < e1; e++) sqnorm += (double)x[e] * (double)x[e];
    double upd = FN(pa_step)(c, k, p, ds->y[i], sw, sqnorm, loss);
    double scale = c->scaled ? c->decay_prefix[k] : 1.0;
    if (c->track_penalty) FN(pa_penalty_read)(c, m, k);
    /* averaged SGD (never lazy): the weight of this step's changes */
    const double qa = m->avg_acc && !c->avg_lazy ? pa_avg_weight(c, m->avg_clock - 1) : 0.0;
    double *restrict lazy_acc = c->avg_lazy ? m->avg_acc : NULL; /* the sums themselves */
    const double ak = lazy_acc && k >= c->avg_from ? 1.0 : 0.0; /* clock k averaged */
    if (c->scaled) { /* the decay is in the scale: add to stored weights */
        double g = upd / scale, ga = qa * g;
        if (g != 0.0 && c->track_penalty) { /* one writer */
            double sq = 0.0, ab = 0.0;
            for (int64_t e = e0; e < e1; e++) {
                const int64_t j = ind[e];
                const double now = m->w[j] + g * (double)x[e];
                m->w[j] = now;
                sq += now * now;
                ab += fabs(now);
                if (ga != 0.0) m->avg_acc[j] -= ga * (double)x[e];
            }
            m->pen_sq = sq;
            m->pen_abs = ab;
        } else if (g != 0.0 && ga != 0.0) {
            double *restrict A = m->avg_acc;
            for (int64_t e = e0; e < e1; e++) {
                AXPB(&m->w[ind[e]], 1.0, g * (double)x[e]);
                A[ind[e]] -= ga * (double)x[e];
            }
        } else if (g != 0.0) {
            for (int64_t e = e0; e < e1; e++) AXPB(&m->w[ind[e]], 1.0, g * (double)x[e]);
        }
    }
#if MODE_PLAIN
    else if (c->cheap_gaps) { /* pa_lazy_step with each gap's factors from the
                                 tables and the row's invariants in registers */
        const double d = c->has_l2 ? pa_decay(c->l2, pa_ctx_eta(c, k)) : 1.0, mu = c->mu;
        const double Pb = c->decay_prefix ? c->decay_prefix[k - 1] : 1.0;
        const double Rb = c->gain_table[k - 1];
        const double *restrict inv = c->inv_decay, *restrict R = c->gain_table,
                     *restrict mu_pow = c->mu_pow;
        double *restrict W = m->w, *restrict V = m->v;
        int64_t *restrict T = m->last;
        for (int64_t e = e0; e < e1; e++) {
            const int64_t j = ind[e], last = T[j];
            const double g = upd * (double)x[e];
            double w = W[j], v = V[j];
            if (last == k) { /* a duplicate index in this row */
                V[j] = v + g;
                W[j] = w + g;
                if (lazy_acc) lazy_acc[j] += ak * g;
                continue;
            }
            if (last < k - 1) {
                const pa_gap f = pa_table_gap(inv, R, mu_pow, Pb, Rb, last, k - 1);
                if (lazy_acc) lazy_acc[j] += pa_avg_gap(c, last, k - 1, f.D, w, v);
                w = f.D * w + f.gain * v;
                v = f.mug * v;
            }
            if (last < k) T[j] = k;
            v = mu * v + g;
            V[j] = v;
            W[j] = d * w + v;
            if (lazy_acc) lazy_acc[j] += ak * W[j];
        }
    }
    else if (c->lazy) {
        double d = c->has_l2 ? pa_decay(c->l2, pa_ctx_eta(c, k)) : 1.0;
        int64_t memo_last = -1;
        pa_gap memo = {1.0, 0.0, 0.0};
        for (int64_t e = e0; e < e1; e++)
            FN(pa_lazy_step)(c, m, ind[e], k, d, upd * (double)x[e], &memo_last, &memo);
    }
#endif
    else {
        double d = c->has_l2 ? pa_decay(c->l2, pa_ctx_eta(c, k)) : 1.0;
        double row_sq = 0.0, row_abs = 0.0; /* pa_penalty_read */
        for (int64_t e = e0; e < e1; e++) {
            int64_t j = ind[e];
            double g = upd * (double)x[e];
            if (c->lazy) {
                FN(pa_catch_up)(c, m, j, k - 1);
                int64_t last = LDI(&m->last[j]);
                if (last == k) { /* a duplicate index in this row: this step's
                                    decay and momentum are already applied */
                    if (c->has_mom) AXPB(&m->v[j], 1.0, g);
                    AXPB(&m->w[j], 1.0, g);
                    if (lazy_acc) lazy_acc[j] += ak * g;
                    continue;
                }
                if (last < k) /* never move another worker's clock back */
                    (void)CLAIM(&m->last[j], last, k);
            }
            double w_new;
            if (c->has_mom)
                w_new = AXPB(&m->w[j], d, AXPB(&m->v[j], c->mu, g));
            else
                w_new = AXPB(&m->w[j], d, g);
            if (c->track_penalty) {
                row_sq += w_new * w_new;
                row_abs += fabs(w_new);
            }
            if (lazy_acc) lazy_acc[j] += ak * w_new;
            if (qa != 0.0) /* not lazy: no decay, no momentum */
                m->avg_acc[j] -= qa * g;
        }
        if (c->track_penalty && upd != 0.0) { /* (no decay here) */
            m->pen_sq = row_sq;
            m->pen_abs = row_abs;
        }
    }
    FN(pa_intercept_step)(c, m, upd, ds->n_features);
    if (c->has_l1) {
        double u = pa_ctx_u(c, m->u, k);
        /* the lazy sums see a truncation in the values after it */
        double ql = m->avg_acc && !c->avg_lazy ? pa_avg_weight(c, m->avg_clock) : 0.0;
        for (int64_t e = e0; e < e1; e++) FN(pa_l1_step)(m, ind[e], u, scale, ql);
    }
    return upd;
}

#undef LD
#undef ST
#undef AXPB
#undef LDI
#undef CLAIM
#undef FN
