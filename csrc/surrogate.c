/* momentum="auto"'s inner loop: asynchronous SGD on a row sample, one run
 * per candidate momentum, all fed the same rows and staleness draws (see
 * pyasync/momentum.py, simulate_momentum_grid). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyasync_core.h"
#include "losses.h"

#define PA_SIM_MAX_DLOSS 1e12  /* as the kernels clip it */

/* Asynchronous SGD on the real loss, in the row space of a row sample: the
 * weights stay w0 + (rows' span), so the predictions on the sample are all
 * the simulation needs. With K the sample's Gram matrix (m x m) and the
 * velocity's image q = X_s v, an update of row i at stale prediction p~_i is
 *     q <- mu q - step loss'(y_i, p~_i) K[:, i];   p <- p + q
 * O(m) an update. The penalty is left out (see choose_momentum). */
int pa_row_sample_grid(const double *K, const double *p0, const double *y, int64_t m,
                       int loss, double loss_param, double step,
                       const double *grid, int64_t c, const int64_t *rows,
                       const int64_t *stale, int64_t n_updates, int64_t every,
                       double *losses)
{
    int64_t cm = c * m, n = n_updates;
    /* Update t reads row rows[t]'s prediction as of update u = t - stale[t]:
     * the draws are known in advance, so each read is stashed when the
     * simulation passes u (reads grouped by u, counting sort), and nothing
     * of the past is kept: O(c m) memory whatever the staleness. */
    int64_t *first = calloc(n + 2, sizeof(int64_t));
    int64_t *fill = calloc(n + 1, sizeof(int64_t));
    int64_t *by_time = malloc(sizeof(int64_t) * (n ? n : 1));
    double *p = malloc(sizeof(double) * cm);
    double *q = calloc(cm, sizeof(double));
    double *stash = malloc(sizeof(double) * c * (n ? n : 1));
    char *dead = calloc(c, 1);
    if (!first || !fill || !by_time || !p || !q || !stash || !dead) {
        free(first); free(fill); free(by_time); free(p); free(q); free(stash); free(dead);
        return -1;
    }
    for (int64_t t = 0; t < n; t++)
        first[(t >= stale[t] ? t - stale[t] : 0) + 1]++;
    for (int64_t u = 0; u <= n; u++) first[u + 1] += first[u];
    for (int64_t t = 0; t < n; t++) {
        int64_t u = t >= stale[t] ? t - stale[t] : 0;
        by_time[first[u] + fill[u]++] = t;
    }
    free(fill);
    for (int64_t k = 0; k < c; k++) memcpy(p + k * m, p0, sizeof(double) * m);

    for (int64_t t = 0; t < n; t++) {
        for (int64_t r = first[t]; r < first[t + 1]; r++) {  /* reads of time t */
            int64_t later = by_time[r], i = rows[later];
            for (int64_t k = 0; k < c; k++) stash[k * n + later] = p[k * m + i];
        }
        int64_t i = rows[t];
        const double *restrict Ki = K + i * m;  /* K is symmetric: row i is column i */
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) continue;
            double *restrict pk = p + k * m, *restrict qk = q + k * m, mu = grid[k];
            double g = pa_loss_dloss(loss, loss_param, y[i], stash[k * n + t]);
            if (g < -PA_SIM_MAX_DLOSS) g = -PA_SIM_MAX_DLOSS;
            else if (g > PA_SIM_MAX_DLOSS) g = PA_SIM_MAX_DLOSS;
            double sg = step * g;
            for (int64_t r = 0; r < m; r++) {
                qk[r] = mu * qk[r] - sg * Ki[r];
                pk[r] += qk[r];
            }
        }
        if ((t + 1) % every) continue;
        double *out = losses + (t / every) * c;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) { out[k] = INFINITY; continue; }
            const double *pk = p + k * m;
            double sum = 0.0;
            for (int64_t r = 0; r < m; r++) sum += pa_loss_value(loss, loss_param, y[r], pk[r]);
            out[k] = sum / (double)m;
            if (!isfinite(out[k])) {  /* diverged: out of the race for good */
                out[k] = INFINITY;
                dead[k] = 1;
            }
        }
    }
    free(first); free(by_time); free(p); free(q); free(stash); free(dead);
    return 0;
}
