/* Public interface of the compiled core; the only header the Cython
 * bridge includes. Plain C, no Python headers. */
#ifndef PYASYNC_CORE_H
#define PYASYNC_CORE_H
#include <stdint.h>

enum pa_dtype { PA_F64 = 0, PA_F32 = 1 };
/* PA1, PA2: passive-aggressive steps (Crammer et al. 2006), eta0 their C;
 * their L2 decay takes eta0 as its step, as scikit-learn's. */
enum pa_schedule { PA_CONSTANT = 0, PA_OPTIMAL, PA_INVSCALING, PA_ADAPTIVE, PA_PA1, PA_PA2 };
/* plain: one writer at a time (one thread, or under the lock). */
enum pa_update { PA_RACY = 0, PA_ATOMIC, PA_LOCKED, PA_PLAIN };
/* PA_AVG_LAZY: averaged SGD asked of sparse rows kept lazily whose gaps
 * have no tabulated closed form (an L2 decay whose product underflows, or
 * momentum not below the decay). */
enum pa_status { PA_OK = 0, PA_INTERRUPTED, PA_DIVERGED, PA_NOMEM, PA_AVG_LAZY };

typedef struct {
    int loss;
    double loss_param;      /* hinge threshold, huber c or epsilon */
    double alpha;           /* scales the "optimal" learning rate */
    double l2, l1;          /* penalty strengths: (1 - l1_ratio) * alpha, l1_ratio * alpha */
    int schedule;
    double eta0, power_t, optimal_init;
    double momentum;        /* explicit momentum over the global update sequence */
    int fit_intercept;
    double intercept_decay;
    int64_t average;        /* averaged SGD from global update number `average`; 0: off */
    int track_objective;    /* sum the penalty at every update's read (scikit-learn's
                               objective), where one writer keeps the norms */
} pa_linear_params;

/* Rows are dense C-contiguous (n_samples x n_features) or CSR. */
typedef struct {
    int dtype;
    int sparse;
    int64_t n_samples, n_features;
    const void *data;
    const int64_t *indptr;
    const int32_t *indices;
    const double *y;
    const double *sample_weight; /* includes class weight; NULL means ones */
} pa_dataset;

/* Shared model state, read and written by every worker. `v` and `vb` are
 * NULL-able (no momentum), `q` (L1) and `last` (lazy sparse clock) too. */
typedef struct {
    double *w, *v, *q;
    int64_t *last;
    double *b, *vb;
    double u; /* cumulative L1 penalty at the epoch start */
    /* The most frequent sparse columns: with several threads, each worker
     * shares its updates to them more often than the rest of its copy. */
    const int32_t *hot_features;
    int32_t n_hot;
    /* Averaged SGD: the caller's sum of the averaged iterates (n_features
     * + 1, the intercept last), added to; NULL: off. `avg_acc` is the
     * engines' own (set NULL): a worker's changes weighted by the
     * averaged iterates before them (see pa_linear_average_close), the
     * iterates ordered by `avg_clock`, the place of the worker's next
     * update among all workers' (set by the engines). */
    double *avg_sum, *avg_acc;
    int64_t avg_clock;
    /* scikit-learn's objective (pa_penalty_open): the stored weights'
     * squared and absolute sums, kept by the one writer, and the penalty
     * summed over the updates' reads */
    double pen_sq, pen_abs, pen_sum;
} pa_linear_model;

typedef struct {
    int n_threads;
    int update;
    int staleness_every;   /* measure one update in this many */
    const int64_t *order;  /* rows of this epoch, in order; split in chunks */
    int64_t n_order;
    /* Called about every 50 ms from the launching thread; non-zero stops. */
    int (*poll)(void *);
    void *poll_ctx;
} pa_engine_opts;

typedef struct {
    double sumloss;
    int64_t n_updates;
    int64_t clock_end;       /* local clock of the last update */
    int64_t *staleness_hist; /* caller's array, added to; last bin = overflow */
    int64_t hist_len;
    int64_t staleness_max, staleness_count;
    double staleness_sum;
    int64_t avg_count;       /* iterates added to the model's avg_sum */
    double penalty_sum;      /* the penalty at every update's read, summed */
    int penalty_tracked;     /* penalty_sum holds it (else 0) */
    int status;
} pa_epoch_stats;

/* One epoch of the threads engine over a linear model. `t0` counts the
 * updates done before (scikit-learn's t_ - 1); `eta` is the rate for the
 * constant and adaptive schedules. Returns a pa_status. */
int pa_linear_epoch(const pa_linear_params *params, const pa_dataset *data,
                    pa_linear_model *model, int64_t t0, double eta,
                    const pa_engine_opts *opts, pa_epoch_stats *stats);

enum pa_sim_schedule { PA_SIM_EXPONENTIAL = 0, PA_SIM_ROUND_ROBIN, PA_SIM_REPLAY };

typedef struct {
    int n_workers;            /* M, for exponential and round_robin */
    int schedule;
    const double *replay_cdf; /* replay: P(staleness <= s), s < replay_len */
    int64_t replay_len;
    uint64_t seed;
    const int64_t *order;
    int64_t n_order;
    double *trace;            /* dense rows only: w after each write, or NULL */
    int (*poll)(void *);
    void *poll_ctx;
    double *scratch;          /* MLPs: room for the pending gradients, kept */
    int64_t scratch_len;      /* from epoch to epoch (or NULL, 0: allocated) */
} pa_sim_opts;

/* One epoch of the simulated engine (one thread, deterministic). */
int pa_linear_epoch_sim(const pa_linear_params *params, const pa_dataset *data,
                        pa_linear_model *model, int64_t t0, double eta,
                        const pa_sim_opts *opts, pa_epoch_stats *stats);

/* The learning rate of update number t (1-based), as scikit-learn. */
double pa_eta(const pa_linear_params *params, double eta_const, int64_t t);

/* momentum="auto": asynchronous SGD on the real loss over a row sample, in
 * its row space: K the sample's Gram matrix (m x m), p0 and y its starting
 * predictions and targets, for each of the c momenta of grid; update t uses
 * row rows[t] and the predictions of stale[t] updates earlier (of the
 * start where that is before it).
 * losses (n_updates / every x c) gets the sample's mean loss every `every`
 * updates, blended with h held-out rows' (H: m x h products with the
 * sample's rows; h0, yh) at weight held_weight where h > 0; +inf once
 * diverged. lumps (or NULL): a factor an update on its row's own K[i, i].
 * Returns 0, or -1 when out of memory. */
int pa_row_sample_grid(const double *K, const double *p0, const double *y, int64_t m,
                       const double *H, const double *h0, const double *yh, int64_t h,
                       double held_weight, int loss, double loss_param, double step,
                       const double *grid, int64_t c, const int64_t *rows,
                       const int64_t *stale, const double *lumps, int64_t n_updates,
                       int64_t every, double decay, double b0, const double *kb,
                       double *losses);

/* pa_row_sample_grid's losses in the features' space (dense samples with
 * fewer features than rows): Xs (m x d) and Xh (h x d) the sample's and
 * the held-out rows from weights w0 and intercept b0; row_weights (or
 * NULL) scale a row's step, intercept_step is the intercept's share of it
 * (0: no intercept). Returns 0, or -1 when out of memory. */
int pa_feature_sample_grid(const double *Xs, const double *y, int64_t m, int64_t d,
                           const double *Xh, const double *yh, int64_t h,
                           double held_weight, const double *row_weights,
                           double intercept_step, const double *w0, double b0,
                           int loss, double loss_param, double step,
                           const double *grid, int64_t c, const int64_t *rows,
                           const int64_t *stale, int64_t n_updates, int64_t every,
                           double decay, double *losses);

/* Stale SGD with momentum on a quadratic direction of step x curvature
 * step_curvature, from x = 1 at rest: for each of the c momenta of grid
 * and each of the replicas runs, update t takes its gradient stale[t x
 * replicas + r] updates back (of the start where that is before it; below
 * span, a power of two), rescaled every `every` updates. out (c x
 * replicas) gets each run's log(|x| + |v|) at the end. Returns 0, or -1
 * when out of memory. */
int pa_growth_runs(const double *grid, int64_t c, double step_curvature,
                   const int64_t *stale, int64_t n_updates, int64_t replicas,
                   int64_t span, int nesterov, int64_t every, double *out);

/* The staleness of n_updates x replicas updates of the MLP engines'
 * epochs of n_batches minibatches, `workers` (at most n_batches) reading
 * the first at the epoch's start: update t (the k-th of its epoch) is
 * written by busy worker picks[t x replicas + r] (below the workers still
 * busy), which reads the next minibatch or, with none left, leaves.
 * Returns 0, or -1 when out of memory. */
int pa_epoch_staleness(const int64_t *picks, int64_t n_updates, int64_t replicas,
                       int64_t workers, int64_t n_batches, int64_t *out);

/* Shuffles order in place as scikit-learn's SGD shuffles its rows with
 * `seed`; PA_NOMEM past 2^31 - 1 rows (its draws' range). */
int pa_shuffle_order(int64_t *order, int64_t n, uint32_t seed);

#endif
