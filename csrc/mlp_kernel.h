/* Internal: the per-worker workspace of the MLP kernels and the steps one
 * update is made of (read a snapshot, compute loss and gradient on it,
 * write the update into the shared weights). */
#ifndef PA_MLP_KERNEL_H
#define PA_MLP_KERNEL_H
#include "mlp.h"

/* Output columns are computed in blocks of PA_MLP_JB doubles (two AVX-512
 * or four AVX2 registers); hidden and output widths are padded to it. */
#define PA_MLP_JB 16

typedef struct {
    const pa_mlp_params *p;
    int L;
    int64_t n_params;             /* flat, unpadded */
    int64_t up[PA_MLP_MAX_LAYERS + 1];  /* padded widths; up[0] = n_features */
    int64_t bmax;                 /* rows of a batch */
    double *mem;                  /* one allocation holds everything below */
    double *W[PA_MLP_MAX_LAYERS]; /* private snapshot, padded: up[l] x up[l+1] */
    double *b[PA_MLP_MAX_LAYERS]; /* up[l+1] */
    double *WT[PA_MLP_MAX_LAYERS];/* l >= 1: transposed, up[l+1] x up[l] */
    double *act[PA_MLP_MAX_LAYERS + 1];   /* bmax x up[l] */
    double *delta[PA_MLP_MAX_LAYERS + 1]; /* bmax x up[l], l >= 1 */
    double *gW[PA_MLP_MAX_LAYERS];        /* padded gradient of W_l */
    double *grad;                 /* flat gradient, n_params */
    double sq_norm;               /* sum ||W_l||^2 of the snapshot */
} pa_mlp_work;

int pa_mlp_work_init(pa_mlp_work *wk, const pa_mlp_params *p);
void pa_mlp_work_free(pa_mlp_work *wk);

/* Copies the shared flat weights into the private padded snapshot;
 * `shared` non-zero reads them with relaxed atomic loads. */
void pa_mlp_snapshot(pa_mlp_work *wk, const double *w, int shared);

/* Loss (batch mean + penalty) and flat gradient (into `grad`, n_params:
 * wk->grad, or a pending gradient's own slot) of the rows rows[0..n) at
 * the snapshot. Returns PA_DIVERGED on a non-finite loss. */
int pa_mlp_compute(pa_mlp_work *wk, const pa_mlp_data *d, const int64_t *rows,
                   int64_t n, double *loss, double *grad);

/* Writes one update with gradient g into the shared w (and velocity v). */
void pa_mlp_apply(const pa_mlp_params *p, int64_t n_params, double *w, double *v,
                  const double *g, int update);
#endif
