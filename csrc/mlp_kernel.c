/* The MLP kernels: forward and backward passes of one minibatch on a
 * worker's private, padded snapshot of the weights, and the momentum
 * update written into the shared weights.
 *
 * What vectorises (gcc -O3 -march=native, -fopenmp-simd):
 *  - gemm_block: the three matrix products of a pass (forward A W + b,
 *    weight gradient A^T D, backward D W^T through a transposed copy) all
 *    run one register-blocked micro-kernel: 4 rows x PA_MLP_JB output
 *    columns of accumulators; its inner `omp simd` loop over the JB
 *    columns becomes broadcast-FMAs on full vector registers, with no
 *    tail (widths are padded to JB, padding weights are zero);
 *  - relu, its derivative, the tanh/logistic derivatives, the output
 *    delta, the column sums of the intercept gradient, the gradient
 *    packing and the plain (one writer) update loop;
 *  - exp/tanh themselves go through scalar libm calls (the activations are
 *    O(batch x units), the products O(batch x units^2)).
 * The racy and compare-and-swap updates are scalar relaxed atomics on
 * purpose: one load and one store (or CAS) per parameter and batch. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "atomics.h"
#include "mlp_kernel.h"

#define RB 4
#define JB PA_MLP_JB

static int64_t pad(int64_t n) { return (n + JB - 1) / JB * JB; }

int64_t pa_mlp_n_params(const pa_mlp_params *p)
{
    int64_t n = 0;
    for (int l = 0; l < p->n_layers; l++)
        n += p->units[l] * p->units[l + 1] + p->units[l + 1];
    return n;
}

int pa_mlp_work_init(pa_mlp_work *wk, const pa_mlp_params *p)
{
    memset(wk, 0, sizeof *wk);
    const int L = p->n_layers;
    wk->p = p;
    wk->L = L;
    wk->n_params = pa_mlp_n_params(p);
    wk->bmax = p->batch_size > 0 ? p->batch_size : 1;
    wk->up[0] = p->units[0];
    for (int l = 1; l <= L; l++) wk->up[l] = pad(p->units[l]);
    /* sizes in doubles, each rounded to a cache line */
#define LINE(n) (((n) + 7) / 8 * 8)
    int64_t total = LINE(wk->n_params);
    for (int l = 0; l < L; l++) {
        total += 2 * LINE(wk->up[l] * wk->up[l + 1]) + LINE(wk->up[l + 1]);
        if (l > 0) total += LINE(wk->up[l + 1] * wk->up[l]);
    }
    for (int l = 0; l <= L; l++) total += 2 * LINE(wk->bmax * wk->up[l]);
    wk->mem = aligned_alloc(64, sizeof(double) * (size_t)total);
    if (!wk->mem) return PA_NOMEM;
    memset(wk->mem, 0, sizeof(double) * (size_t)total);
    double *q = wk->mem;
#define TAKE(dst, n) do { dst = q; q += LINE(n); } while (0)
    TAKE(wk->grad, wk->n_params);
    for (int l = 0; l < L; l++) {
        TAKE(wk->W[l], wk->up[l] * wk->up[l + 1]);
        TAKE(wk->gW[l], wk->up[l] * wk->up[l + 1]);
        TAKE(wk->b[l], wk->up[l + 1]);
        if (l > 0) TAKE(wk->WT[l], wk->up[l + 1] * wk->up[l]);
    }
    for (int l = 0; l <= L; l++) {
        TAKE(wk->act[l], wk->bmax * wk->up[l]);
        TAKE(wk->delta[l], wk->bmax * wk->up[l]);
    }
#undef TAKE
#undef LINE
    return PA_OK;
}

void pa_mlp_work_free(pa_mlp_work *wk)
{
    free(wk->mem);
    wk->mem = NULL;
}

void pa_mlp_snapshot(pa_mlp_work *wk, const double *w, int shared)
{
    const pa_mlp_params *p = wk->p;
    const double *src = w;
    double sq = 0.0;
    for (int l = 0; l < wk->L; l++) {
        const int64_t in = p->units[l], out = p->units[l + 1], ldo = wk->up[l + 1];
        double *W = wk->W[l];
        for (int64_t i = 0; i < in; i++) {
            double *row = W + i * ldo;
            if (shared)
                for (int64_t j = 0; j < out; j++) row[j] = pa_load(src + j);
            else
                memcpy(row, src, sizeof(double) * (size_t)out);
            for (int64_t j = 0; j < out; j++) sq += row[j] * row[j];
            src += out;
        }
        if (shared)
            for (int64_t j = 0; j < out; j++) wk->b[l][j] = pa_load(src + j);
        else
            memcpy(wk->b[l], src, sizeof(double) * (size_t)out);
        src += out;
        if (l > 0) { /* W^T for the backward product, padded with zeros */
            double *T = wk->WT[l];
            const int64_t ldt = wk->up[l];
            for (int64_t i = 0; i < in; i++)
                for (int64_t j = 0; j < out; j++) T[j * ldt + i] = W[i * ldo + j];
        }
    }
    wk->sq_norm = sq;
}

/* C[M x N] = init + sum_k A(m, k) B[k, :], A(m, k) = A[m * sm + k * sk];
 * N is a multiple of JB, B and C rows are JB-aligned in length. `init` is
 * a row added to every output row (the intercepts) or NULL. */
static void gemm_block(int64_t M, int64_t N, int64_t K, const double *A, int64_t sm,
                       int64_t sk, const double *B, int64_t ldb, const double *init,
                       double *C, int64_t ldc)
{
    for (int64_t j0 = 0; j0 < N; j0 += JB) {
        int64_t m = 0;
        for (; m + RB <= M; m += RB) {
            double acc[RB][JB];
            for (int r = 0; r < RB; r++)
#pragma omp simd
                for (int jj = 0; jj < JB; jj++) acc[r][jj] = init ? init[j0 + jj] : 0.0;
            const double *a = A + m * sm;
            for (int64_t k = 0; k < K; k++) {
                const double *b = B + k * ldb + j0;
                const double a0 = a[k * sk], a1 = a[sm + k * sk],
                             a2 = a[2 * sm + k * sk], a3 = a[3 * sm + k * sk];
#pragma omp simd
                for (int jj = 0; jj < JB; jj++) {
                    acc[0][jj] = __builtin_fma(a0, b[jj], acc[0][jj]);
                    acc[1][jj] = __builtin_fma(a1, b[jj], acc[1][jj]);
                    acc[2][jj] = __builtin_fma(a2, b[jj], acc[2][jj]);
                    acc[3][jj] = __builtin_fma(a3, b[jj], acc[3][jj]);
                }
            }
            for (int r = 0; r < RB; r++)
#pragma omp simd
                for (int jj = 0; jj < JB; jj++) C[(m + r) * ldc + j0 + jj] = acc[r][jj];
        }
        for (; m < M; m++) {
            double acc[JB];
#pragma omp simd
            for (int jj = 0; jj < JB; jj++) acc[jj] = init ? init[j0 + jj] : 0.0;
            const double *a = A + m * sm;
            for (int64_t k = 0; k < K; k++) {
                const double *b = B + k * ldb + j0;
                const double a0 = a[k * sk];
#pragma omp simd
                for (int jj = 0; jj < JB; jj++) acc[jj] = __builtin_fma(a0, b[jj], acc[jj]);
            }
#pragma omp simd
            for (int jj = 0; jj < JB; jj++) C[m * ldc + j0 + jj] = acc[jj];
        }
    }
}

/* The batch's rows as float64, dense, n x n_features. */
static void gather(const pa_dataset *x, const int64_t *rows, int64_t n, double *A)
{
    const int64_t d = x->n_features;
    for (int64_t r = 0; r < n; r++) {
        const int64_t i = rows[r];
        double *dst = A + r * d;
        if (x->sparse) {
            memset(dst, 0, sizeof(double) * (size_t)d);
            for (int64_t e = x->indptr[i]; e < x->indptr[i + 1]; e++)
                dst[x->indices[e]] += x->dtype == PA_F32 ? (double)((const float *)x->data)[e]
                                                         : ((const double *)x->data)[e];
        } else if (x->dtype == PA_F32) {
            const float *src = (const float *)x->data + i * d;
#pragma omp simd
            for (int64_t j = 0; j < d; j++) dst[j] = (double)src[j];
        } else {
            memcpy(dst, (const double *)x->data + i * d, sizeof(double) * (size_t)d);
        }
    }
}

static void activate(int act, double *Z, int64_t n)
{
    switch (act) {
    case PA_ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) Z[i] = Z[i] > 0.0 ? Z[i] : 0.0;
        break;
    case PA_ACT_TANH:
        for (int64_t i = 0; i < n; i++) Z[i] = tanh(Z[i]);
        break;
    case PA_ACT_LOGISTIC:
        for (int64_t i = 0; i < n; i++) Z[i] = 1.0 / (1.0 + exp(-Z[i]));
        break;
    default:
        break;
    }
}

/* delta *= f'(z), written in terms of the activation a = f(z), as sklearn. */
static void derivative(int act, const double *A, double *D, int64_t n)
{
    switch (act) {
    case PA_ACT_RELU:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) D[i] = A[i] == 0.0 ? 0.0 : D[i];
        break;
    case PA_ACT_TANH:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) D[i] *= 1.0 - A[i] * A[i];
        break;
    case PA_ACT_LOGISTIC:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) D[i] *= A[i] * (1.0 - A[i]);
        break;
    default:
        break;
    }
}

static double clip_prob(double p)
{
    const double eps = DBL_EPSILON;
    return p < eps ? eps : (p > 1.0 - eps ? 1.0 - eps : p);
}

/* Output activation, data loss (weighted sum over the batch) and delta =
 * sw (a - y); `*weight` gets the batch's summed sample weight. */
static double output_layer(const pa_mlp_work *wk, const pa_mlp_data *d,
                           const int64_t *rows, int64_t n, double *weight)
{
    const pa_mlp_params *p = wk->p;
    const int L = wk->L;
    const int64_t K = p->units[L], ld = wk->up[L];
    const double *sw = d->x.sample_weight;
    double *A = wk->act[L], *D = wk->delta[L], loss = 0.0, total = 0.0;
    for (int64_t r = 0; r < n; r++) {
        double *a = A + r * ld, *dl = D + r * ld;
        const double *y = d->Y + rows[r] * K;
        double s = 0.0;
        if (p->output == PA_ACT_SOFTMAX) {
            double mx = a[0], sum = 0.0;
            for (int64_t k = 1; k < K; k++) mx = a[k] > mx ? a[k] : mx;
            for (int64_t k = 0; k < K; k++) { a[k] = exp(a[k] - mx); sum += a[k]; }
            for (int64_t k = 0; k < K; k++) {
                a[k] /= sum;
                if (y[k] != 0.0) s -= y[k] * log(clip_prob(a[k]));
            }
        } else if (p->output == PA_ACT_LOGISTIC) {
            for (int64_t k = 0; k < K; k++) {
                a[k] = 1.0 / (1.0 + exp(-a[k]));
                const double q = clip_prob(a[k]);
                if (y[k] != 0.0) s -= y[k] * log(q);
                if (y[k] != 1.0) s -= (1.0 - y[k]) * log(1.0 - q);
            }
        } else if (p->output == PA_ACT_EXP) { /* half Poisson deviance */
            for (int64_t k = 0; k < K; k++) {
                a[k] = exp(a[k]);
                if (y[k] != 0.0) s += y[k] * log(y[k] / a[k]);
                s += a[k] - y[k];
            }
        } else {
            for (int64_t k = 0; k < K; k++) s += (y[k] - a[k]) * (y[k] - a[k]);
            s *= 0.5 / (double)K;
        }
        const double wr = sw ? sw[rows[r]] : 1.0;
        loss += sw ? wr * s : s;
        total += wr;
#pragma omp simd
        for (int64_t k = 0; k < K; k++) dl[k] = a[k] - y[k];
        if (sw)
#pragma omp simd
            for (int64_t k = 0; k < K; k++) dl[k] *= wr;
        for (int64_t k = K; k < ld; k++) dl[k] = 0.0;
    }
    *weight = total;
    return loss;
}

int pa_mlp_compute(pa_mlp_work *wk, const pa_mlp_data *d, const int64_t *rows,
                   int64_t n, double *loss_out, double *grad)
{
    const pa_mlp_params *p = wk->p;
    const int L = wk->L;
    const int64_t *up = wk->up;
    gather(&d->x, rows, n, wk->act[0]);
    /* forward */
    for (int l = 0; l < L; l++) {
        gemm_block(n, up[l + 1], p->units[l], wk->act[l], up[l], 1, wk->W[l], up[l + 1],
                   wk->b[l], wk->act[l + 1], up[l + 1]);
        if (l + 1 < L) activate(p->activation, wk->act[l + 1], n * up[l + 1]);
    }
    double weight;
    double loss = output_layer(wk, d, rows, n, &weight);
    /* a batch of no weight carries nothing: no loss, no gradient */
    const double inv_n = weight != 0.0 ? 1.0 / weight : 0.0;
    loss = weight != 0.0 ? loss / weight + 0.5 * p->alpha * wk->sq_norm / weight : 0.0;
    *loss_out = loss;
    if (!isfinite(loss)) return PA_DIVERGED;
    /* backward */
    double *g = grad;
    int64_t off = 0;
    int64_t offs[PA_MLP_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        offs[l] = off;
        off += p->units[l] * p->units[l + 1] + p->units[l + 1];
    }
    for (int l = L - 1; l >= 0; l--) {
        const int64_t in = p->units[l], out = p->units[l + 1], ldo = up[l + 1];
        const double *D = wk->delta[l + 1];
        /* gW = A_l^T D: rows are the inputs, the sum runs over the batch */
        gemm_block(in, ldo, n, wk->act[l], 1, up[l], D, ldo, NULL, wk->gW[l], ldo);
        double *gw = g + offs[l];
        const double *W = wk->W[l], *GW = wk->gW[l];
        const double alpha = p->alpha;
        for (int64_t i = 0; i < in; i++) {
#pragma omp simd
            for (int64_t j = 0; j < out; j++)
                gw[i * out + j] = (GW[i * ldo + j] + alpha * W[i * ldo + j]) * inv_n;
        }
        double *gb = gw + in * out;
        for (int64_t j = 0; j < out; j++) gb[j] = 0.0;
        for (int64_t r = 0; r < n; r++) {
#pragma omp simd
            for (int64_t j = 0; j < out; j++) gb[j] += D[r * ldo + j];
        }
#pragma omp simd
        for (int64_t j = 0; j < out; j++) gb[j] *= inv_n;
        if (l > 0) { /* delta_l = (D W_l^T) * f'(a_l) */
            gemm_block(n, up[l], out, D, ldo, 1, wk->WT[l], up[l], NULL, wk->delta[l], up[l]);
            derivative(p->activation, wk->act[l], wk->delta[l], n * up[l]);
        }
    }
    return PA_OK;
}

/* sklearn's SGDOptimizer: upd = mu v - lr g; v = upd; nesterov:
 * upd = mu v - lr g (with the new v); w += upd. */
void pa_mlp_apply(const pa_mlp_params *p, int64_t P, double *w, double *v,
                  const double *g, int update)
{
    const double mu = p->momentum, lr = p->lr;
    const int nest = p->nesterov;
    if (update == PA_PLAIN) {
        if (v) {
#pragma omp simd
            for (int64_t i = 0; i < P; i++) {
                const double vi = mu * v[i] - lr * g[i];
                v[i] = vi;
                w[i] += nest ? mu * vi - lr * g[i] : vi;
            }
        } else {
#pragma omp simd
            for (int64_t i = 0; i < P; i++) w[i] += -(lr * g[i]);
        }
    } else if (update == PA_ATOMIC) {
        for (int64_t i = 0; i < P; i++) {
            double upd = -(lr * g[i]);
            if (v) {
                const double vi = pa_cas_axpb(v + i, mu, -(lr * g[i]));
                upd = nest ? mu * vi - lr * g[i] : vi;
            }
            pa_cas_axpb(w + i, 1.0, upd);
        }
    } else { /* racy: a concurrent write in between may be lost */
        for (int64_t i = 0; i < P; i++) {
            double upd = -(lr * g[i]);
            if (v) {
                const double vi = mu * pa_load(v + i) - lr * g[i];
                pa_store(v + i, vi);
                upd = nest ? mu * vi - lr * g[i] : vi;
            }
            pa_store(w + i, pa_load(w + i) + upd);
        }
    }
}

int pa_mlp_loss_grad(const pa_mlp_params *p, const pa_mlp_data *d, const double *w,
                     const int64_t *rows, int64_t n, double *loss, double *grad)
{
    pa_mlp_params q = *p;
    q.batch_size = n;
    pa_mlp_work wk;
    if (pa_mlp_work_init(&wk, &q) != PA_OK) return PA_NOMEM;
    pa_mlp_snapshot(&wk, w, 0);
    int status = pa_mlp_compute(&wk, d, rows, n, loss, grad);
    pa_mlp_work_free(&wk);
    return status;
}
