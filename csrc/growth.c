/* momentum="auto" for the MLPs: the staleness of the engine's epochs, and
 * stale SGD with momentum on one quadratic direction, a run per momentum
 * and staleness replica (see pyasync/momentum.py, epoch_staleness and
 * growth_rates); each run keeps its own ring of past points. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyasync_core.h"

/* numpy.maximum's: NaN wins */
static inline double max_nan(double a, double b)
{
    if (isnan(a)) return a;
    if (isnan(b)) return b;
    return a > b ? a : b;
}

int pa_growth_runs(const double *grid, int64_t c, double step_curvature,
                   const int64_t *stale, int64_t n_updates, int64_t replicas,
                   int64_t span, int nesterov, int64_t every, double *out)
{
    /* the replicas side by side: independent chains an update apart */
    double *past = malloc(sizeof(double) * (size_t)(span * replicas));
    double *x = malloc(sizeof(double) * (size_t)replicas);
    double *v = malloc(sizeof(double) * (size_t)replicas);
    double *log_scale = malloc(sizeof(double) * (size_t)replicas);
    if (!past || !x || !v || !log_scale) {
        free(past); free(x); free(v); free(log_scale);
        return -1;
    }
    const int64_t wrap = span - 1;  /* span is a power of two */
    for (int64_t m = 0; m < c; m++) {
        const double mu = grid[m];
        for (int64_t i = 0; i < span * replicas; i++) past[i] = 0.0;
        for (int64_t r = 0; r < replicas; r++) {
            past[r * span] = 1.0;
            x[r] = 1.0;
            v[r] = 0.0;
            log_scale[r] = 0.0;
        }
        int64_t until_rescale = every;
        for (int64_t t = 0; t < n_updates; t++) {
            const int64_t *delays = stale + t * replicas;
            const int64_t next = (t + 1) & wrap;
            for (int64_t r = 0; r < replicas; r++) {
                const int64_t delay = delays[r] < t ? delays[r] : t;
                const double g = step_curvature * past[r * span + ((t - delay) & wrap)];
                v[r] = mu * v[r] - g;
                x[r] = x[r] + (nesterov ? mu * v[r] - g : v[r]);
                past[r * span + next] = x[r];
            }
            if (--until_rescale == 0) {
                /* rescaled before |x| + |v| can overflow */
                until_rescale = every;
                for (int64_t r = 0; r < replicas; r++) {
                    double *ring = past + r * span;
                    double scale = 0.0;
                    for (int64_t s = 0; s < span; s++) scale = max_nan(scale, fabs(ring[s]));
                    scale = max_nan(max_nan(scale, fabs(v[r])), 1e-300);
                    for (int64_t s = 0; s < span; s++) ring[s] /= scale;
                    x[r] /= scale;
                    v[r] /= scale;
                    log_scale[r] += log(scale);
                }
            }
        }
        for (int64_t r = 0; r < replicas; r++)
            out[m * replicas + r] = log_scale[r] + log(fabs(x[r]) + fabs(v[r]) + 1e-300);
    }
    free(past); free(x); free(v); free(log_scale);
    return 0;
}

int pa_epoch_staleness(const int64_t *picks, int64_t n_updates, int64_t replicas,
                       int64_t workers, int64_t n_batches, int64_t *out)
{
    /* the minibatch each busy worker read, a row of workers a replica */
    int64_t *read = malloc(sizeof(int64_t) * (size_t)(workers * replicas));
    if (!read) return -1;
    int64_t t = 0;
    while (t < n_updates) {  /* an epoch */
        memset(read, 0, sizeof(int64_t) * (size_t)(workers * replicas));
        int64_t busy = workers;
        const int64_t last = n_batches < n_updates - t ? n_batches : n_updates - t;
        for (int64_t k = 0; k < last; k++, t++) {
            const int64_t *pick = picks + t * replicas;
            int64_t *stale = out + t * replicas;
            const int leaves = workers + k >= n_batches;  /* no minibatch left to read */
            for (int64_t r = 0; r < replicas; r++) {
                int64_t *row = read + r * workers;
                stale[r] = k - row[pick[r]];
                /* a leaving worker's place goes to the last busy one */
                row[pick[r]] = leaves ? row[busy - 1] : k + 1;
            }
            busy -= leaves;
        }
    }
    free(read);
    return 0;
}
