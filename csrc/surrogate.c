/* momentum="auto"'s inner loop: asynchronous SGD on a small least-squares
 * surrogate, one run per candidate momentum, all fed the same rows and
 * staleness draws (see pyasync/momentum.py, simulate_momentum_grid). Row
 * r's residual is Z[r] . e + noise[r]: noise (NULL: none) is the part of
 * the rows' gradients no weight change removes, the SGD noise floor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyasync_core.h"

/* Four partial sums: independent chains the CPU can overlap (a single sum
 * is bound by the add latency; strict FP forbids the compiler to split it). */
static double dot(const double *a, const double *b, int64_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t j = 0;
    for (; j + 4 <= n; j += 4) {
        s0 += a[j] * b[j];
        s1 += a[j + 1] * b[j + 1];
        s2 += a[j + 2] * b[j + 2];
        s3 += a[j + 3] * b[j + 3];
    }
    for (; j < n; j++) s0 += a[j] * b[j];
    return (s0 + s1) + (s2 + s3);
}

int pa_surrogate_grid(const double *Z, const double *noise, int64_t m, int64_t d,
                      double step, double l2, const double *grid, int64_t c,
                      const int64_t *rows,
                      const int64_t *stale, int64_t n_updates, int64_t depth,
                      int64_t every, double *losses)
{
    int64_t cd = c * d;
    double *e = malloc(sizeof(double) * cd);
    double *v = calloc(cd, sizeof(double));
    double *past = malloc(sizeof(double) * cd * depth);  /* ring of earlier errors */
    char *dead = calloc(c, 1);
    if (!e || !v || !past || !dead) {
        free(e); free(v); free(past); free(dead);
        return -1;
    }
    double e0 = 1.0 / sqrt((double)d);  /* unit error along every direction */
    for (int64_t i = 0; i < cd; i++) e[i] = e0;
    for (int64_t s = 0; s < depth; s++) memcpy(past + s * cd, e, sizeof(double) * cd);

    for (int64_t t = 0; t < n_updates; t++) {
        int64_t s = stale[t];
        const double *read = past + (t >= s ? (t - s) % depth : 0) * cd;
        const double *x = Z + rows[t] * d;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) continue;
            const double *rk = read + k * d;
            double *ek = e + k * d, *vk = v + k * d, mu = grid[k];
            double p = dot(rk, x, d) + (noise ? noise[rows[t]] : 0.0);
            for (int64_t j = 0; j < d; j++) {
                vk[j] = mu * vk[j] - step * (p * x[j] + l2 * rk[j]);
                ek[j] += vk[j];
            }
        }
        memcpy(past + ((t + 1) % depth) * cd, e, sizeof(double) * cd);
        if ((t + 1) % every) continue;
        double *out = losses + (t / every) * c;
        for (int64_t k = 0; k < c; k++) {
            if (dead[k]) { out[k] = INFINITY; continue; }
            const double *ek = e + k * d;
            double sum = 0.0;
            for (int64_t r = 0; r < m; r++) {
                double res = dot(ek, Z + r * d, d) + (noise ? noise[r] : 0.0);
                sum += res * res;
            }
            out[k] = 0.5 * sum / (double)m;
            if (!isfinite(out[k])) {  /* diverged: out of the race for good */
                out[k] = INFINITY;
                dead[k] = 1;
            }
        }
    }
    free(e); free(v); free(past); free(dead);
    return 0;
}
