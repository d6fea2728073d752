/* momentum="auto"'s inner loop: asynchronous SGD on a row sample, one run
 * per candidate momentum, all fed the same rows and staleness draws (see
 * pyasync/momentum.py, simulate_momentum_grid), in the sample's row space
 * or, for dense samples with few features, in the features' space. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyasync_core.h"
#include "losses.h"

#define PA_SIM_MAX_DLOSS 1e12  /* as the kernels clip it */

/* Update t reads its row's prediction as of update u = t - stale[t] (or
 * the start): the draws are known in advance, so each read is stashed
 * when the simulation passes u, and nothing of the past is kept. The
 * reads grouped by u (counting sort): update u's are by_time[first[u] ..
 * first[u + 1]). Returns by_time and sets *first (n + 2), or NULL. */
static int64_t *reads_by_time(const int64_t *stale, int64_t n, int64_t **first_out)
{
    int64_t *first = calloc(n + 2, sizeof(int64_t));
    int64_t *fill = calloc(n + 1, sizeof(int64_t));
    int64_t *by_time = malloc(sizeof(int64_t) * (n ? n : 1));
    if (!first || !fill || !by_time) {
        free(first); free(fill); free(by_time);
        return NULL;
    }
    for (int64_t t = 0; t < n; t++)
        first[(t >= stale[t] ? t - stale[t] : 0) + 1]++;
    for (int64_t u = 0; u <= n; u++) first[u + 1] += first[u];
    for (int64_t t = 0; t < n; t++) {
        int64_t u = t >= stale[t] ? t - stale[t] : 0;
        by_time[first[u] + fill[u]++] = t;
    }
    free(fill);
    *first_out = first;
    return by_time;
}

static inline double clipped_dloss(int loss, double loss_param, double y, double p)
{
    double g = pa_loss_dloss(loss, loss_param, y, p);
    return g < -PA_SIM_MAX_DLOSS ? -PA_SIM_MAX_DLOSS : g > PA_SIM_MAX_DLOSS ? PA_SIM_MAX_DLOSS : g;
}

static inline double row_dot(const double *restrict x, const double *restrict w, int64_t d)
{
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (int64_t j = 0; j < d; j++) s += x[j] * w[j];
    return s;
}

/* The loss watched: the sample's mean, blended with the held-out rows'
 * at held_weight where there are any; +inf once not finite. */
static inline double watched_loss(double sum, int64_t m, double held_sum, int64_t h,
                                  double held_weight)
{
    double out = h ? (1.0 - held_weight) * sum / (double)m + held_weight * held_sum / (double)h
                   : sum / (double)m;
    return isfinite(out) ? out : INFINITY;
}

/* Asynchronous SGD on the real loss, in the row space of a row sample: the
 * weights stay w0 + (rows' span), so the predictions on the sample are all
 * the simulation needs. With K the sample's Gram matrix (m x m) and the
 * velocity's image q = X_s v, an update of row i at stale prediction p~_i is
 *     q <- mu q - step loss'(y_i, p~_i) K[i, :];   p <- p + q
 * (K[i, :] = K[:, i] for a Gram matrix; a weighted row's row i comes
 * scaled by its weight, its step's factor): O(m) an update. The L2 penalty's
 * decay d (w <- d w + v, as the kernels) shrinks the predictions but not
 * the intercept b, which is tracked apart (kb[i]: row i's intercept share
 * of K[i, :]):  p <- d p + (1 - d) b + q;  with d = 1 none of it runs.
 * With h > 0 held-out rows (H: their products with the sample's rows, m x h,
 * and their predictions h0 and targets yh), their predictions follow the
 * same way and their mean loss has weight held_weight in the losses: a
 * sample fits its own noise, rows it never saw do not.
 * lumps (or NULL), for samples whose K is scaled down for how rarely rows
 * come back: the factor on update t's row's own entry K[i, i], 0 or the
 * inverse of the scale, so that the row's own kick comes at its real size
 * and rate (the overshoot that sets a noise floor), not smoothed. */
int pa_row_sample_grid(const double *K, const double *p0, const double *y, int64_t m,
                       const double *H, const double *h0, const double *yh, int64_t h,
                       double held_weight, int loss, double loss_param, double step,
                       const double *grid, int64_t c, const int64_t *rows,
                       const int64_t *stale, const double *lumps, int64_t n_updates,
                       int64_t every, double decay, double b0, const double *kb,
                       double *losses)
{
    int64_t cm = c * m, ch = c * h, n = n_updates;
    int64_t *first = NULL, *by_time = reads_by_time(stale, n, &first);  /* O(c m) memory */
    double *p = malloc(sizeof(double) * cm);
    double *q = calloc(cm, sizeof(double));
    double *stash = malloc(sizeof(double) * c * (n ? n : 1));
    double *ph = malloc(sizeof(double) * (ch ? ch : 1));
    double *qh = calloc(ch ? ch : 1, sizeof(double));
    char *dead = calloc(c, 1);
    double *b = malloc(sizeof(double) * c), *vb = calloc(c, sizeof(double));
    if (!by_time || !p || !q || !stash || !ph || !qh || !dead || !b || !vb) {
        free(first); free(by_time); free(p); free(q); free(stash);
        free(ph); free(qh); free(dead); free(b); free(vb);
        return -1;
    }
    int decays = decay != 1.0;
    for (int64_t k = 0; k < c; k++) {
        memcpy(p + k * m, p0, sizeof(double) * m);
        if (h) memcpy(ph + k * h, h0, sizeof(double) * h);
        b[k] = b0;
    }

    for (int64_t t = 0; t < n; t++) {
        for (int64_t r = first[t]; r < first[t + 1]; r++) {  /* reads of time t */
            int64_t later = by_time[r], i = rows[later];
            for (int64_t k = 0; k < c; k++) stash[k * n + later] = p[k * m + i];
        }
        int64_t i = rows[t];
        const double *restrict Ki = K + i * m;  /* row i: the update's direction */
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) continue;
            double *restrict pk = p + k * m, *restrict qk = q + k * m, mu = grid[k];
            double g = clipped_dloss(loss, loss_param, y[i], stash[k * n + t]);
            double sg = step * g, shift = (1.0 - decay) * b[k];
            if (decays) {
                for (int64_t r = 0; r < m; r++) {
                    qk[r] = mu * qk[r] - sg * Ki[r];
                    pk[r] = decay * pk[r] + shift + qk[r];
                }
                vb[k] = mu * vb[k] - sg * kb[i];
                b[k] += vb[k];
            } else {
                for (int64_t r = 0; r < m; r++) {
                    qk[r] = mu * qk[r] - sg * Ki[r];
                    pk[r] += qk[r];
                }
            }
            if (lumps) {  /* the row's own share comes in lumps: lumps[t] x its mean */
                double extra = sg * Ki[i] * (lumps[t] - 1.0);
                qk[i] -= extra;
                pk[i] -= extra;
            }
            if (!h) continue;
            const double *restrict Hi = H + i * h;
            double *restrict phk = ph + k * h, *restrict qhk = qh + k * h;
            for (int64_t r = 0; r < h; r++) {
                qhk[r] = mu * qhk[r] - sg * Hi[r];
                phk[r] = decays ? decay * phk[r] + shift + qhk[r] : phk[r] + qhk[r];
            }
        }
        if ((t + 1) % every) continue;
        double *out = losses + (t / every) * c;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) { out[k] = INFINITY; continue; }
            const double *pk = p + k * m, *phk = ph + k * h;
            double sum = 0.0, held_sum = 0.0;
            for (int64_t r = 0; r < m; r++) sum += pa_loss_value(loss, loss_param, y[r], pk[r]);
            for (int64_t r = 0; r < h; r++)
                held_sum += pa_loss_value(loss, loss_param, yh[r], phk[r]);
            out[k] = watched_loss(sum, m, held_sum, h, held_weight);
            dead[k] = out[k] == INFINITY;  /* diverged: out of the race for good */
        }
    }
    free(first); free(by_time); free(p); free(q); free(stash); free(ph); free(qh); free(dead);
    free(b); free(vb);
    return 0;
}

/* pa_row_sample_grid in the features' space, for dense samples with fewer
 * features than rows: the same updates, rows, staleness and losses (equal
 * up to rounding), at O(d) an update and O((m + h) d) a loss instead of
 * O(m + h) an update. Xs (m x d) and Xh (h x d) are the sample's and the
 * held-out rows, w0 and b0 the weights and intercept they start from;
 * a row's step is scaled by its weight (row_weights, or NULL), its
 * intercept step by intercept_step (0: no intercept). */
int pa_feature_sample_grid(const double *Xs, const double *y, int64_t m, int64_t d,
                           const double *Xh, const double *yh, int64_t h,
                           double held_weight, const double *row_weights,
                           double intercept_step, const double *w0, double b0,
                           int loss, double loss_param, double step,
                           const double *grid, int64_t c, const int64_t *rows,
                           const int64_t *stale, int64_t n_updates, int64_t every,
                           double decay, double *losses)
{
    int64_t n = n_updates, cd = c * d;
    int64_t *first = NULL, *by_time = reads_by_time(stale, n, &first);
    double *w = malloc(sizeof(double) * (cd ? cd : 1));
    double *v = calloc(cd ? cd : 1, sizeof(double));
    double *stash = malloc(sizeof(double) * c * (n ? n : 1));
    char *dead = calloc(c, 1);
    double *b = malloc(sizeof(double) * c), *vb = calloc(c, sizeof(double));
    if (!by_time || !w || !v || !stash || !dead || !b || !vb) {
        free(first); free(by_time); free(w); free(v); free(stash);
        free(dead); free(b); free(vb);
        return -1;
    }
    for (int64_t k = 0; k < c; k++) {
        memcpy(w + k * d, w0, sizeof(double) * d);
        b[k] = b0;
    }
    for (int64_t t = 0; t < n; t++) {
        for (int64_t r = first[t]; r < first[t + 1]; r++) {  /* reads of time t */
            int64_t later = by_time[r];
            const double *x = Xs + rows[later] * d;
            for (int64_t k = 0; k < c; k++)
                stash[k * n + later] = row_dot(x, w + k * d, d) + b[k];
        }
        int64_t i = rows[t];
        const double *restrict x = Xs + i * d;
        const double weight = row_weights ? row_weights[i] : 1.0;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) continue;
            double *restrict wk = w + k * d, *restrict vk = v + k * d, mu = grid[k];
            double sg = step * clipped_dloss(loss, loss_param, y[i], stash[k * n + t]) * weight;
            for (int64_t j = 0; j < d; j++) {
                vk[j] = mu * vk[j] - sg * x[j];
                wk[j] = decay * wk[j] + vk[j];
            }
            vb[k] = mu * vb[k] - sg * intercept_step;
            b[k] += vb[k];
        }
        if ((t + 1) % every) continue;
        double *out = losses + (t / every) * c;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) { out[k] = INFINITY; continue; }
            const double *wk = w + k * d;
            double sum = 0.0, held_sum = 0.0;
            for (int64_t r = 0; r < m; r++)
                sum += pa_loss_value(loss, loss_param, y[r], row_dot(Xs + r * d, wk, d) + b[k]);
            for (int64_t r = 0; r < h; r++)
                held_sum += pa_loss_value(loss, loss_param, yh[r],
                                          row_dot(Xh + r * d, wk, d) + b[k]);
            out[k] = watched_loss(sum, m, held_sum, h, held_weight);
            dead[k] = out[k] == INFINITY;
        }
    }
    free(first); free(by_time); free(w); free(v); free(stash); free(dead); free(b); free(vb);
    return 0;
}
