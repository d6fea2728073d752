/* Internal interface of the linear model's kernels, used by the engines. */
#ifndef PA_LINEAR_H
#define PA_LINEAR_H
#include "pyasync_core.h"
#include "linear_epoch.h"

/* Prediction of row i at local clock k (catches its coordinates up first). */
typedef double (*pa_predict_fn)(const pa_epoch_ctx *, pa_linear_model *,
                                const pa_dataset *, int64_t i, int64_t k);
/* Applies row i's update at clock k from prediction p (possibly computed on
 * an older model); adds the loss at p; returns the step. */
typedef double (*pa_apply_fn)(const pa_epoch_ctx *, pa_linear_model *,
                              const pa_dataset *, int64_t i, int64_t k,
                              double p, double *loss);

/* Hints the caches about row i, which comes a few updates later. (The
 * weights stay unhinted: the model sits in L2, where out-of-order loads
 * overlap anyway, and hinting them cost a fifth of an epoch.) */
typedef void (*pa_prefetch_fn)(const pa_dataset *, int64_t i);

typedef struct {
    pa_predict_fn predict;
    pa_apply_fn apply;
    pa_prefetch_fn prefetch;
    /* predict's values without its stores (one writer: the simulated
     * engine); NULL where predict stores nothing */
    pa_predict_fn peek;
} pa_linear_kernel;

pa_linear_kernel pa_linear_kernel_for(int dtype, int sparse, int update);

/* Rows ahead whose lines are prefetched: a shuffled CSR row also needs its
 * offsets fetched, twice as far ahead. */
#define PA_PREFETCH_AHEAD 8

/* Hints the caches about the rows that come PA_PREFETCH_AHEAD (and, for
 * CSR offsets, twice that) after position r of `order` (which ends at end). */
static inline void pa_prefetch_ahead(const pa_linear_kernel *kr, const pa_dataset *ds,
                                     const int64_t *order, int64_t r, int64_t end)
{
    if (ds->sparse && r + 2 * PA_PREFETCH_AHEAD < end)
        __builtin_prefetch(&ds->indptr[order[r + 2 * PA_PREFETCH_AHEAD]]);
    if (r + PA_PREFETCH_AHEAD < end)
        kr->prefetch(ds, order[r + PA_PREFETCH_AHEAD]);
}

int pa_epoch_ctx_init(pa_epoch_ctx *c, const pa_linear_params *p, int sparse,
                      int64_t t0, double eta, int64_t max_clock);
void pa_epoch_ctx_free(pa_epoch_ctx *c);

/* Averaged SGD (model->avg_sum set): `n_workers` zeroed accumulators, one
 * a worker (*accs NULL where averaging is off); PA_AVG_LAZY where the
 * sparse rows are kept lazily; free them with pa_linear_average_free. */
/* scikit-learn's stopping objective: where one writer runs (`single`),
 * params->track_objective asks for it and the rows are not lazy, sets
 * c->track_penalty and the model's norms (those it carries, or where
 * m->pen_sq < 0 the whole weights'); pa_penalty_close reports the penalty
 * summed over the updates' reads (from `m`, the writer's) and leaves the
 * norms to carry on in `out` (-1 where not kept). */
void pa_penalty_open(pa_epoch_ctx *c, pa_linear_model *m, int64_t n_features, int single);
void pa_penalty_close(const pa_epoch_ctx *c, pa_linear_model *out, const pa_linear_model *m,
                      int64_t k_end, pa_epoch_stats *st);

int pa_linear_average_open(const pa_epoch_ctx *c, const pa_linear_model *m,
                           int64_t n_features, int n_workers, double ***accs);
/* Adds the epoch's averaged iterates to model->avg_sum, before
 * pa_linear_finish rescales the stored weights; returns their count. */
int64_t pa_linear_average_close(const pa_epoch_ctx *c, pa_linear_model *m,
                                double **accs, int n_workers, int64_t n_features,
                                int64_t k_end);
void pa_linear_average_free(double **accs, int n_workers);

/* Catches every coordinate up to clock k_end and closes the L1 total;
 * run by one thread once the workers have stopped. */
void pa_linear_finish(const pa_epoch_ctx *c, pa_linear_model *m,
                      int64_t n_features, int64_t k_end);
#endif
