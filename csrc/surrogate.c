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
                       const int64_t *stale, int64_t n_updates, int64_t depth,
                       int64_t every, double *losses)
{
    /* The predictions after update t live in slot t % slots of a ring deep
     * enough that the slot written never is one a stale read may need. */
    int64_t cm = c * m, slots = depth + 1;
    double *q = calloc(cm, sizeof(double));
    double *ring = malloc(sizeof(double) * cm * slots);
    char *dead = calloc(c, 1);
    if (!q || !ring || !dead) {
        free(q); free(ring); free(dead);
        return -1;
    }
    for (int64_t k = 0; k < c; k++) memcpy(ring + k * m, p0, sizeof(double) * m);

    for (int64_t t = 0; t < n_updates; t++) {
        int64_t s = stale[t], i = rows[t];
        const double *now = ring + (t % slots) * cm;
        const double *read = ring + (t >= s ? (t - s) % slots : 0) * cm;
        double *next = ring + ((t + 1) % slots) * cm;
        const double *restrict Ki = K + i * m;  /* K is symmetric: row i is column i */
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) continue;
            const double *restrict pk = now + k * m;
            double *restrict qk = q + k * m, *restrict nk = next + k * m, mu = grid[k];
            double g = pa_loss_dloss(loss, loss_param, y[i], read[k * m + i]);
            if (g < -PA_SIM_MAX_DLOSS) g = -PA_SIM_MAX_DLOSS;
            else if (g > PA_SIM_MAX_DLOSS) g = PA_SIM_MAX_DLOSS;
            double sg = step * g;
            for (int64_t r = 0; r < m; r++) {
                qk[r] = mu * qk[r] - sg * Ki[r];
                nk[r] = pk[r] + qk[r];
            }
        }
        if ((t + 1) % every) continue;
        double *out = losses + (t / every) * c;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) { out[k] = INFINITY; continue; }
            const double *pk = next + k * m;
            double sum = 0.0;
            for (int64_t r = 0; r < m; r++) sum += pa_loss_value(loss, loss_param, y[r], pk[r]);
            out[k] = sum / (double)m;
            if (!isfinite(out[k])) {  /* diverged: out of the race for good */
                out[k] = INFINITY;
                dead[k] = 1;
            }
        }
    }
    free(q); free(ring); free(dead);
    return 0;
}
