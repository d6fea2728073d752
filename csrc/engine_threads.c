/* The threads engine: T OS threads update one shared linear model with no
 * lock (racy or compare-and-swap writes) or under one mutex (the serialised
 * baseline). Each thread takes a contiguous chunk of the epoch's order.
 * Lock-free threads on dense rows update private copies and flush them into
 * the shared model every few updates; on sparse rows they buffer only the
 * hot columns.
 *
 * Staleness of an update = updates of the other threads it could not see:
 * those not yet flushed at its read, and those made between its read
 * (prediction) and its write. Each thread counts its own updates on its own
 * cache line; a measured update sums the others' counters before and after,
 * so nothing shared is written on the hot path. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "linear.h"
#include "atomics.h"
#include "rng.h"

#define PA_LINE 64
#define PA_STOP_CHECK 256      /* updates between looks at the stop flag */
/* Updates between flushes of the hot buffers. Rarer flushes move fewer
 * lines between cores and lose fewer racy writes to the hottest weights:
 * on RCV1-like data, 256 against 16 made 2 threads 1.3x faster and as
 * accurate as 1 (16 lost 2.7 points). */
#define PA_HOT_FLUSH 256
#define PA_INLINE_WORK 2000000 /* below this many row entries, no thread */
/* Updates between flushes of a worker's private copy of a dense model:
 * every dense update writes every line of the model, so shared writes
 * would move all of them between cores on each update. An atomic flush is
 * a compare-and-swap a coordinate, each a full barrier: every 16 updates
 * it cost 2 threads 2.8x the racy epoch, every 64 about the same as racy
 * (200,000 x 100). */
#define PA_DENSE_FLUSH_RACY 16
#define PA_DENSE_FLUSH_ATOMIC 64

/* A worker's updates made, and (private copies only) those the others
 * can see: its updates up to its last flush. */
typedef struct {
    _Alignas(PA_LINE) int64_t done;
    int64_t seen;
    char pad[PA_LINE - 2 * sizeof(int64_t)];
} pa_commit_counter;

typedef struct pa_shared pa_shared;

typedef struct {
    _Alignas(PA_LINE) pa_shared *sh;
    pa_linear_model model;  /* shared arrays (or the private copy); private
                               hot-coordinate buffer */
    double *copy;           /* private dense copy: w, b | v, vb | their
                               values at the last flush; NULL if shared */
    pthread_t thread;
    int tid;
    int64_t start, end;
    double sumloss;
    int64_t n_updates, last_clock;
    int64_t *hist;
    int64_t smax, scount;
    double ssum;
    int status;
} pa_worker;

struct pa_shared {
    const pa_epoch_ctx *ctx;
    pa_linear_kernel kernel;
    pa_linear_model *model;
    const pa_dataset *data;
    const pa_engine_opts *opts;
    int64_t hist_len;
    pa_commit_counter *commits;
    int copies;             /* the workers update private dense copies */
    int stop;
    pthread_mutex_t lock;   /* the update lock of the "locked" mode */
    pthread_mutex_t exit_lock;
    pthread_cond_t exit_cond;
    int n_exited;
};

static int64_t others_count(const pa_shared *sh, int tid, int seen)
{
    int64_t s = 0;
    for (int o = 0; o < sh->opts->n_threads; o++)
        if (o != tid)
            s += seen && sh->copies ? __atomic_load_n(&sh->commits[o].seen, __ATOMIC_RELAXED)
                      : __atomic_load_n(&sh->commits[o].done, __ATOMIC_RELAXED);
    return s;
}

/* Adds what a worker's private copy moved since its last flush to the
 * shared model (with the mode's add: compare-and-swap loses nothing), and
 * takes a fresh copy, the other workers' flushes included. */
static void flush_copy(pa_worker *wk)
{
    const pa_linear_model *shared = wk->sh->model;
    const int64_t n = wk->sh->data->n_features, len = n + 1;
    const int atomic = wk->sh->opts->update == PA_ATOMIC;
    const int n_arrays = shared->v ? 2 : 1;
    for (int a = 0; a < n_arrays; a++) {
        double *local = wk->copy + (size_t)a * len;
        double *base = wk->copy + (size_t)(n_arrays + a) * len;
        double *w = a ? shared->v : shared->w, *b = a ? shared->vb : shared->b;
        for (int64_t j = 0; j < len; j++) {
            double *dst = j < n ? &w[j] : b;
            double moved = local[j] - base[j];
            if (moved != 0.0) {
                if (atomic) pa_cas_axpb(dst, 1.0, moved);
                else pa_racy_axpb(dst, 1.0, moved);
            }
            local[j] = base[j] = pa_load(dst);
        }
    }
}

static void record_staleness(pa_worker *wk, int64_t s)
{
    int64_t len = wk->sh->hist_len;
    wk->hist[s < len - 1 ? s : len - 1]++;
    if (s > wk->smax) wk->smax = s;
    wk->ssum += (double)s;
    wk->scount++;
}

static void run_chunk(pa_worker *wk)
{
    pa_shared *sh = wk->sh;
    const pa_engine_opts *o = sh->opts;
    const int T = o->n_threads, locked = o->update == PA_LOCKED;
    const int every = T > 1 && o->staleness_every > 0 ? o->staleness_every : 0;
    int64_t *done = &sh->commits[wk->tid].done, n_done = 0;
    int64_t *seen = &sh->commits[wk->tid].seen;
    const int64_t flush_every = o->update == PA_ATOMIC ? PA_DENSE_FLUSH_ATOMIC
                                                     : PA_DENSE_FLUSH_RACY;
    if (wk->copy) flush_copy(wk); /* the first copy */
    for (int64_t r = wk->start; r < wk->end; r++) {
        if ((r - wk->start) % PA_STOP_CHECK == 0 &&
            __atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
            break;
        int64_t i = o->order[r];
        pa_prefetch_ahead(&sh->kernel, sh->data, o->order, r, wk->end);
        int64_t k = (r - wk->start) * T + wk->tid + 1;
        int measure = every && n_done % every == 0;
        if (locked) pthread_mutex_lock(&sh->lock);
        /* updates the read cannot see: the others' not yet flushed, and
         * (below) those they make before the write */
        int64_t before = measure ? others_count(sh, wk->tid, 1) : 0;
        double p = sh->kernel.predict(sh->ctx, &wk->model, sh->data, i, k);
        if (!isfinite(p)) {
            if (locked) pthread_mutex_unlock(&sh->lock);
            wk->status = PA_DIVERGED;
            __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
            break;
        }
        sh->kernel.apply(sh->ctx, &wk->model, sh->data, i, k, p, &wk->sumloss);
        if (wk->model.hot_buf && n_done % PA_HOT_FLUSH == PA_HOT_FLUSH - 1)
            sh->kernel.flush_hot(&wk->model);
        __atomic_store_n(done, ++n_done, __ATOMIC_RELAXED);
        if (wk->copy && n_done % flush_every == 0) {
            flush_copy(wk);
            __atomic_store_n(seen, n_done, __ATOMIC_RELAXED);
        }
        int64_t after = measure ? others_count(sh, wk->tid, 0) : 0;
        if (locked) pthread_mutex_unlock(&sh->lock);
        wk->last_clock = k;
        if (measure) record_staleness(wk, after - before);
    }
    if (wk->model.hot_buf) sh->kernel.flush_hot(&wk->model);
    if (wk->copy) {
        flush_copy(wk);
        __atomic_store_n(seen, n_done, __ATOMIC_RELAXED);
    }
    wk->n_updates = n_done;
    if (!every) { /* one thread: every update saw the model it read */
        wk->hist[0] += n_done;
        wk->scount += n_done;
    }
}

static void *worker_main(void *arg)
{
    pa_worker *wk = arg;
    run_chunk(wk);
    pthread_mutex_lock(&wk->sh->exit_lock);
    wk->sh->n_exited++;
    pthread_cond_signal(&wk->sh->exit_cond);
    pthread_mutex_unlock(&wk->sh->exit_lock);
    return NULL;
}

/* Waits for the workers, polling the caller (signals) every 50 ms. */
static void wait_workers(pa_shared *sh, int n_started)
{
    pthread_mutex_lock(&sh->exit_lock);
    while (sh->n_exited < n_started) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        int rc = pthread_cond_timedwait(&sh->exit_cond, &sh->exit_lock, &ts);
        if (rc == ETIMEDOUT && sh->opts->poll) {
            pthread_mutex_unlock(&sh->exit_lock);
            if (sh->opts->poll(sh->opts->poll_ctx))
                __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
            pthread_mutex_lock(&sh->exit_lock);
        }
    }
    pthread_mutex_unlock(&sh->exit_lock);
}

static int64_t row_cost(const pa_dataset *ds)
{
    if (!ds->sparse) return ds->n_features;
    return ds->n_samples ? ds->indptr[ds->n_samples] / ds->n_samples + 1 : 1;
}

static int run_workers(pa_shared *sh, pa_worker *wk, int T)
{
    int inline_run = T == 1 && (!sh->opts->poll ||
        sh->opts->n_order * row_cost(sh->data) < PA_INLINE_WORK);
    if (inline_run) {
        run_chunk(&wk[0]);
        return PA_OK;
    }
    int started = 0;
    for (; started < T; started++)
        if (pthread_create(&wk[started].thread, NULL, worker_main, &wk[started]))
            break;
    if (started < T) /* could not start them all: stop the others */
        __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
    wait_workers(sh, started);
    for (int t = 0; t < started; t++) pthread_join(wk[t].thread, NULL);
    return started < T ? PA_NOMEM : PA_OK;
}

int pa_linear_epoch(const pa_linear_params *params, const pa_dataset *data,
                    pa_linear_model *model, int64_t t0, double eta,
                    const pa_engine_opts *opts, pa_epoch_stats *stats)
{
    const int T = opts->n_threads > 0 ? opts->n_threads : 1;
    const int64_t n = opts->n_order, hist_len = stats->hist_len;
    int update = opts->update;
    if (T == 1 || update == PA_LOCKED) update = PA_PLAIN;
    pa_epoch_ctx ctx;
    int status = pa_epoch_ctx_init(&ctx, params, data->sparse, t0, eta, n + T);
    if (status != PA_OK) return stats->status = status;

    pa_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.ctx = &ctx;
    /* dense rows with several lock-free workers: each updates a private
     * copy, flushed every few updates (its own updates in
     * plain arithmetic; the flush does the shared writes) */
    int copy_dense = T > 1 && !data->sparse && !ctx.has_l1 &&
                     (update == PA_RACY || update == PA_ATOMIC);
    sh.kernel = pa_linear_kernel_for(data->dtype, data->sparse,
                                     copy_dense ? PA_PLAIN : update);
    sh.copies = copy_dense;
    sh.model = model;
    sh.data = data;
    sh.opts = opts;
    sh.hist_len = hist_len;
    pthread_mutex_init(&sh.lock, NULL);
    pthread_mutex_init(&sh.exit_lock, NULL);
    pthread_cond_init(&sh.exit_cond, NULL);
    sh.commits = aligned_alloc(PA_LINE, sizeof(pa_commit_counter) * T);
    pa_worker *wk = aligned_alloc(PA_LINE, sizeof(pa_worker) * T);
    int64_t *hists = calloc((size_t)T * hist_len, sizeof(int64_t));
    double *hot = NULL, *copies = NULL;
    const size_t copy_len = (size_t)data->n_features + 1;
    /* per worker: w and b (with momentum, v and vb) and their flushed values,
     * rounded up to whole lines */
    const size_t copy_stride = ((model->v ? 4 : 2) * copy_len + 7) / 8 * 8;
    if (copy_dense)
        copies = aligned_alloc(PA_LINE, (size_t)T * copy_stride * sizeof(double));
    if (!sh.commits || !wk || !hists || (copy_dense && !copies)) {
        status = PA_NOMEM;
        goto out;
    }
    memset(sh.commits, 0, sizeof(pa_commit_counter) * T);
    memset(wk, 0, sizeof(pa_worker) * T);
    /* buffering needs additive sparse updates shared by several threads */
    int buffer_hot = T > 1 && data->sparse && model->hot_slot && model->n_hot > 0 &&
                     (update == PA_RACY || update == PA_ATOMIC) && !ctx.lazy && !ctx.has_l1;
    /* per worker: a zero guard (slot -1), n_hot slots, the intercept, and
     * a line of padding */
    const size_t hot_stride = (size_t)model->n_hot + 2 + 8;
    if (buffer_hot) {
        hot = calloc((size_t)T * hot_stride, sizeof(double));
        if (!hot) { status = PA_NOMEM; goto out; }
    }
    for (int t = 0; t < T; t++) {
        wk[t].model = *model;
        wk[t].model.hot_buf = buffer_hot ? hot + (size_t)t * hot_stride + 1 : NULL;
        wk[t].sh = &sh;
        wk[t].tid = t;
        wk[t].start = n * t / T;
        wk[t].end = n * (t + 1) / T;
        wk[t].hist = hists + (size_t)t * hist_len;
        if (copy_dense) {
            double *c = copies + (size_t)t * copy_stride;
            memset(c, 0, copy_stride * sizeof(double));
            wk[t].copy = c;
            wk[t].model.w = c;
            wk[t].model.b = c + data->n_features;
            if (model->v) {
                wk[t].model.v = c + copy_len;
                wk[t].model.vb = c + copy_len + data->n_features;
            }
        }
    }
    status = run_workers(&sh, wk, T);

    int64_t k_end = 0;
    for (int t = 0; t < T; t++) {
        stats->sumloss += wk[t].sumloss;
        stats->n_updates += wk[t].n_updates;
        stats->staleness_sum += wk[t].ssum;
        stats->staleness_count += wk[t].scount;
        if (wk[t].smax > stats->staleness_max) stats->staleness_max = wk[t].smax;
        for (int64_t b = 0; b < hist_len; b++) stats->staleness_hist[b] += wk[t].hist[b];
        if (wk[t].last_clock > k_end) k_end = wk[t].last_clock;
        if (wk[t].status != PA_OK && status == PA_OK) status = wk[t].status;
    }
    stats->clock_end = k_end;
    pa_linear_finish(&ctx, model, data->n_features, k_end);
    if (status == PA_OK && sh.stop) status = PA_INTERRUPTED;
out:
    free(copies);
    free(hot);
    free(hists);
    free(wk);
    free(sh.commits);
    pthread_cond_destroy(&sh.exit_cond);
    pthread_mutex_destroy(&sh.exit_lock);
    pthread_mutex_destroy(&sh.lock);
    pa_epoch_ctx_free(&ctx);
    return stats->status = status;
}

void pa_shuffle_order(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch)
{
    pa_rng rng;
    uint64_t s = seed;
    pa_rng_seed(&rng, pa_splitmix64(&s) ^ (epoch * 0xd1b54a32d192ed03ULL));
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)pa_rng_below(&rng, (uint64_t)i + 1);
        int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}
