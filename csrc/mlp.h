/* Public interface of the multi-layer perceptron core: a small MLP (0 to 10
 * hidden layers) trained by minibatch SGD with momentum, on the threads
 * engine (lock-free shared weights) or the simulated engine (M virtual
 * workers, deterministic). Plain C, no Python headers.
 *
 * Conventions follow scikit-learn's MLPClassifier / MLPRegressor
 * (sklearn/neural_network/_multilayer_perceptron.py, _stochastic_optimizers.py):
 *  - parameters are laid out flat, layer after layer: W_l (units[l] x
 *    units[l+1], row-major, as coefs_[l]) then b_l (units[l+1], intercepts_[l]);
 *  - delta at the output = sw * (activation - y) (softmax + cross-entropy,
 *    logistic + binary cross-entropy, identity + squared error, exp + half
 *    Poisson deviance), sw the row's sample weight (1 without weights);
 *  - gradient of W_l = (A_l^T delta_{l+1} + alpha * W_l) / S,
 *    gradient of b_l = sum(delta_{l+1}) / S, S the batch's summed weight;
 *  - the batch loss = data loss (weighted mean over the batch) +
 *    0.5 * alpha * sum ||W_l||^2 / S;
 *  - SGD with momentum: v <- mu v - lr g; w += v (or, Nesterov,
 *    w += mu v - lr g with the new v). mu may be negative. */
#ifndef PA_MLP_H
#define PA_MLP_H
#include <stdint.h>
#include "pyasync_core.h"

#define PA_MLP_MAX_LAYERS 11  /* weight layers: 0 to 10 hidden + the output */

enum pa_activation { PA_ACT_IDENTITY = 0, PA_ACT_LOGISTIC, PA_ACT_TANH, PA_ACT_RELU,
                     PA_ACT_SOFTMAX, PA_ACT_EXP /* the outputs' only */ };

typedef struct {
    int n_layers;                          /* weight layers L (1..11) */
    int64_t units[PA_MLP_MAX_LAYERS + 1];  /* units[0] = n_features, units[L] = n_outputs */
    int activation;                        /* hidden layers */
    int output;                            /* identity, logistic, softmax or exp */
    double alpha;                          /* L2 penalty */
    double lr;                             /* learning rate of this epoch */
    double momentum;
    int nesterov;
    int64_t batch_size;
} pa_mlp_params;

/* X as pa_dataset (dense rows or CSR; y unused; sample_weight NULL or one
 * weight a row) and the targets: Y is n_samples x n_outputs, C-contiguous
 * float64 (one-hot for softmax, 0/1 for logistic). */
typedef struct {
    pa_dataset x;
    const double *Y;
} pa_mlp_data;

/* Number of parameters (weights and intercepts) of the layout. */
int64_t pa_mlp_n_params(const pa_mlp_params *p);

/* One epoch: the batches are consecutive slices of opts->order of
 * batch_size rows (the last one shorter), taken by the threads in turn.
 * `w` and `v` (velocity, NULL-able when momentum == 0) are shared. */
int pa_mlp_epoch(const pa_mlp_params *p, const pa_mlp_data *d, double *w,
                 double *v, const pa_engine_opts *opts, pa_epoch_stats *stats);

/* One epoch of the simulated engine. Its pending gradients take
 * pa_mlp_sim_scratch_len doubles: opts->scratch where it has that many
 * (memory the caller keeps from epoch to epoch is not faulted in and
 * zeroed again: 125 pending gradients of 784-256-1 are 201 MB), else
 * memory of the epoch's own. */
int64_t pa_mlp_sim_scratch_len(const pa_mlp_params *p, const pa_sim_opts *opts);
int pa_mlp_epoch_sim(const pa_mlp_params *p, const pa_mlp_data *d, double *w,
                     double *v, const pa_sim_opts *opts, pa_epoch_stats *stats);

/* Loss and gradient of one batch (rows `rows[0..n)`) at weights w, as one
 * update computes them (for tests). Returns a pa_status. */
int pa_mlp_loss_grad(const pa_mlp_params *p, const pa_mlp_data *d, const double *w,
                     const int64_t *rows, int64_t n, double *loss, double *grad);

#endif
