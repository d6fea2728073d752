/* The threads engine: T OS threads update one shared linear model with no
 * lock (racy or compare-and-swap writes) or under one mutex (the serialised
 * baseline). Each thread takes a contiguous chunk of the epoch's order.
 *
 * Lock-free threads on dense rows, and on sparse rows whose updates are
 * additive (no momentum, no L1), update a private copy of the model with
 * the one-thread kernel and share it every few updates: a shared write
 * moves its cache line to the writer's core, and on sparse data the
 * frequent columns are written by nearly every update, so writing the
 * shared model directly made 2 threads no faster than 1.
 *
 * Staleness of an update = updates of the other threads it could not see.
 * Shared writes: those made between its read (prediction) and its write,
 * sampled; each thread counts its own updates on its own cache line, so
 * nothing shared is written on the hot path. Private copies: the updates
 * the others shared between the worker's last flush (its read) and its
 * next one (its write), counted for a sample of flush intervals. */
#define _POSIX_C_SOURCE 200809L /* pthread_condattr_setclock (exits.h) */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "linear.h"
#include "atomics.h"
#include "lines.h"
#include "exits.h"

#define PA_STOP_CHECK 256      /* updates between looks at the stop flag */
#define PA_INLINE_WORK 2000000 /* below this many row entries, no thread */
/* Updates between flushes of a worker's private copy of a dense model:
 * every dense update writes every line of the model, so shared writes
 * would move all of them between cores on each update. An atomic flush is
 * a compare-and-swap a coordinate, each a full barrier: every 16 updates
 * it cost 2 threads 2.8x the racy epoch, every 64 about the same as racy
 * (200,000 x 100). */
#define PA_DENSE_FLUSH_RACY 16
#define PA_DENSE_FLUSH_ATOMIC 64
/* Sparse copies: every PA_SPARSE_FLUSH updates a worker shares its hot
 * columns, the intercept, and the next slice of the rest of its copy, one
 * coordinate for every PA_SWEEP_ENTRIES row entries it processed: a
 * flushed coordinate costs about PA_FLUSH_COST row entries (its line is
 * usually on the other core), so the sweep stays a small share of the
 * work however wide the model. On RCV1-like data (50,000 columns, 71 a
 * row) the whole copy is shared every 44,000 updates, the hot columns
 * every 256. */
#define PA_SPARSE_FLUSH 256
#define PA_SWEEP_ENTRIES 64
#define PA_SWEEPS_A_CHUNK 2
/* ... but never more than one coordinate for every PA_SWEEP_MIN_ENTRIES
 * entries (about 37% more work): a model far wider than a chunk's rows
 * is swept less often than twice a chunk; its columns are rarer too. */
#define PA_SWEEP_MIN_ENTRIES 8
#define PA_FLUSH_COST 3
#define PA_COPY_SAMPLE 8 /* flush intervals a staleness measurement */
/* Averaged SGD orders the iterates by when updates happen, not by their
 * clocks: a thread that starts late or runs ahead would otherwise put its
 * changes among iterates they were not made in (2 locked threads, 160,000
 * dense rows, the "optimal" schedule: averaged test log loss 0.12-0.27
 * over runs, 0.10-0.12 so). A lock-free worker looks at the others' update
 * counts every PA_AVG_LOOK of its updates and takes its next ones as one
 * in T since; a locked one at every update, so its order is the lock's. */
#define PA_AVG_LOOK 16
/* All workers' copies together stay under this; beyond, shared writes. */
#define PA_COPY_BUDGET ((size_t)1 << 30)

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
    pa_linear_model model;  /* the shared arrays, or the private copy */
    double *copy;           /* private copy: w, b | v, vb | their values at
                               the last flush; NULL if shared */
    int64_t cursor;         /* sparse copies: where the next slice starts */
    int64_t others_seen;    /* the others' shared updates at the last flush */
    int64_t n_flushes;
    pthread_t thread;
    int tid;
    int64_t start, end;
    int64_t last_round;     /* the clock of its row past the common length, if any */
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
    int copy_arrays;        /* w, b; with momentum v, vb too */
    int64_t flush_every;    /* updates between flushes of a copy */
    int64_t round_len;      /* rows every worker has (chunks differ by one) */
    int64_t slice;          /* sparse copies: coordinates swept a flush */
    int stop;
    pthread_mutex_t lock;   /* the update lock of the "locked" mode */
    pa_exits exits;
};

static int64_t others_count(const pa_shared *sh, int tid, int seen)
{
    int64_t s = 0;
    for (int o = 0; o < sh->opts->n_threads; o++)
        if (o != tid)
            s += __atomic_load_n(seen ? &sh->commits[o].seen : &sh->commits[o].done,
                                 __ATOMIC_RELAXED);
    return s;
}

/* Adds what coordinate j (n_features: the intercept) of a worker's copy
 * moved since the last flush to the shared model (with the mode's add:
 * compare-and-swap loses nothing), and takes the shared value back, the
 * other workers' flushes included. */
static inline void share_coord(pa_worker *wk, int64_t j)
{
    const pa_linear_model *shared = wk->sh->model;
    const int64_t n = wk->sh->data->n_features, len = n + 1;
    const int atomic = wk->sh->opts->update == PA_ATOMIC;
    const int n_arrays = wk->sh->copy_arrays;
    for (int a = 0; a < n_arrays; a++) {
        double *local = wk->copy + (size_t)a * len;
        double *base = wk->copy + (size_t)(n_arrays + a) * len;
        double *w = a ? shared->v : shared->w, *b = a ? shared->vb : shared->b;
        double *dst = j < n ? &w[j] : b;
        double moved = local[j] - base[j];
        if (moved != 0.0) {
            if (atomic) pa_cas_axpb(dst, 1.0, moved);
            else pa_racy_axpb(dst, 1.0, moved);
        }
        local[j] = base[j] = pa_load(dst);
    }
}

static void flush_all(pa_worker *wk)
{
    for (int64_t j = 0; j <= wk->sh->data->n_features; j++) share_coord(wk, j);
}

/* A periodic flush: the whole dense copy; of a sparse one, the hot
 * columns, the intercept and the next slice. */
static void flush_copy(pa_worker *wk)
{
    const pa_shared *sh = wk->sh;
    const int64_t n = sh->data->n_features;
    if (!sh->data->sparse) {
        flush_all(wk);
        return;
    }
    for (int32_t h = 0; h < sh->model->n_hot; h++) share_coord(wk, sh->model->hot_features[h]);
    share_coord(wk, n);
    for (int64_t i = 0; i < sh->slice; i++) {
        share_coord(wk, wk->cursor);
        if (++wk->cursor == n) wk->cursor = 0;
    }
}

static void record_staleness(pa_worker *wk, int64_t s, int64_t count)
{
    int64_t len = wk->sh->hist_len;
    wk->hist[s < len - 1 ? s : len - 1] += count;
    if (s > wk->smax) wk->smax = s;
    wk->ssum += (double)s * (double)count;
    wk->scount += count;
}

/* After a flush of a private copy: publishes the worker's updates. The
 * `count` it made since its last flush are as stale as the updates the
 * others shared in between; measured for one interval in
 * PA_COPY_SAMPLE (reading the others' counters, lines they keep writing,
 * cost dense workers flushing every 16 updates 6-7%). */
static void commit_copy(pa_worker *wk, int64_t n_done, int64_t count, int measure)
{
    pa_shared *sh = wk->sh;
    __atomic_store_n(&sh->commits[wk->tid].seen, n_done, __ATOMIC_RELAXED);
    if (!measure) return;
    int64_t f = wk->n_flushes++; /* 0: the first copy */
    int closes = f > 0 && (f - 1) % PA_COPY_SAMPLE == 0, opens = f % PA_COPY_SAMPLE == 0;
    if (!closes && !opens) return;
    int64_t now = others_count(sh, wk->tid, 1);
    if (closes && count > 0) record_staleness(wk, now - wk->others_seen, count);
    wk->others_seen = now;
}

static void run_chunk(pa_worker *wk)
{
    pa_shared *sh = wk->sh;
    const pa_engine_opts *o = sh->opts;
    const int T = o->n_threads, locked = o->update == PA_LOCKED;
    const int every = T > 1 && o->staleness_every > 0 ? o->staleness_every : 0;
    int64_t *done = &sh->commits[wk->tid].done, n_done = 0, flushed = 0;
    const int averaging = wk->model.avg_acc != NULL;
    int64_t avg_base = 0, avg_since = 0; /* all workers' updates at the last look; mine since */
    if (wk->copy) { /* the first copy */
        flush_all(wk);
        commit_copy(wk, 0, 0, every);
    }
    for (int64_t r = wk->start; r < wk->end; r++) {
        if ((r - wk->start) % PA_STOP_CHECK == 0 &&
            __atomic_load_n(&sh->stop, __ATOMIC_RELAXED))
            break;
        int64_t i = o->order[r];
        pa_prefetch_ahead(&sh->kernel, sh->data, o->order, r, wk->end);
        /* the workers' clocks interleave; the rows past the common length
         * take the last clocks in turn, so an epoch's clocks are 1..n */
        int64_t k = r - wk->start < sh->round_len ? (r - wk->start) * T + wk->tid + 1
                                                  : wk->last_round;
        int measure = every && !wk->copy && n_done % every == 0;
        if (locked) pthread_mutex_lock(&sh->lock);
        int64_t before = measure ? others_count(sh, wk->tid, 0) : 0;
        double p = sh->kernel.predict(sh->ctx, &wk->model, sh->data, i, k);
        if (!isfinite(p)) {
            if (locked) pthread_mutex_unlock(&sh->lock);
            wk->status = PA_DIVERGED;
            __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
            break;
        }
        if (averaging) {
            if (T == 1) {
                wk->model.avg_clock = k;
            } else {
                if (locked || n_done % PA_AVG_LOOK == 0) {
                    avg_base = n_done + others_count(sh, wk->tid, 0);
                    avg_since = 0;
                }
                int64_t at = avg_base + 1 + avg_since++ * T;
                wk->model.avg_clock = at < o->n_order ? at : o->n_order;
            }
        }
        sh->kernel.apply(sh->ctx, &wk->model, sh->data, i, k, p, &wk->sumloss);
        n_done++;
        if (averaging && wk->copy) /* the others' looks count it */
            __atomic_store_n(done, n_done, __ATOMIC_RELAXED);
        if (wk->copy) {
            if (n_done % sh->flush_every == 0) {
                flush_copy(wk);
                commit_copy(wk, n_done, n_done - flushed, every);
                flushed = n_done;
            }
        } else {
            __atomic_store_n(done, n_done, __ATOMIC_RELAXED);
        }
        int64_t after = measure ? others_count(sh, wk->tid, 0) : 0;
        if (locked) pthread_mutex_unlock(&sh->lock);
        wk->last_clock = k;
        if (measure) record_staleness(wk, after - before, 1);
    }
    if (wk->copy) {
        flush_all(wk);
        commit_copy(wk, n_done, n_done - flushed, every);
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
    pa_exits_leave(&wk->sh->exits);
    return NULL;
}

static int64_t row_cost(const pa_dataset *ds)
{
    if (!ds->sparse) return ds->n_features;
    return ds->n_samples ? ds->indptr[ds->n_samples] / ds->n_samples + 1 : 1;
}

/* Coordinates a sparse copy sweeps a flush (*slice), for workers of
 * `chunk` rows; returns whether copies pay: a copy is taken and flushed
 * whole once an epoch, and swept, which must cost less than the chunk's
 * own work (a flushed coordinate about PA_FLUSH_COST row entries). */
static int sparse_sweep(const pa_dataset *ds, int64_t chunk, int64_t *slice)
{
    const int64_t entries = row_cost(ds), n = ds->n_features;
    int64_t s = (PA_SPARSE_FLUSH * entries + PA_SWEEP_ENTRIES - 1) / PA_SWEEP_ENTRIES;
    /* and the whole copy at least PA_SWEEPS_A_CHUNK times a chunk: many
     * short chunks (many threads) would otherwise each train the rarer
     * columns alone all epoch, and their sum overshoot */
    int64_t per_chunk = (n * PA_SPARSE_FLUSH * PA_SWEEPS_A_CHUNK + chunk - 1) / chunk;
    if (per_chunk > s) s = per_chunk;
    int64_t most = PA_SPARSE_FLUSH * entries / PA_SWEEP_MIN_ENTRIES;
    if (s > most) s = most;
    *slice = s < n ? s : n;
    int64_t flushed = 2 * (n + 1) + *slice * (chunk / PA_SPARSE_FLUSH);
    return PA_FLUSH_COST * flushed <= chunk * entries;
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
    pa_exits_wait(&sh->exits, started, sh->opts->poll, sh->opts->poll_ctx,
                  &sh->stop);
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
    double **accs = NULL; /* averaged SGD: one accumulator a worker */
    pa_epoch_ctx ctx;
    int status = pa_epoch_ctx_init(&ctx, params, data->sparse, t0, eta, n + T);
    if (status != PA_OK) return stats->status = status;

    pa_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.ctx = &ctx;
    /* lock-free workers on dense rows, or on sparse rows with additive
     * updates, each update a private copy with the one-thread kernel */
    const size_t copy_len = (size_t)data->n_features + 1;
    const int copy_arrays = ctx.has_mom ? 2 : 1; /* w, b (and v, vb) */
    /* per worker: the arrays and their flushed values, in whole lines */
    const size_t copy_stride = (2 * copy_arrays * copy_len + 7) / 8 * 8;
    int copies = T > 1 && (update == PA_RACY || update == PA_ATOMIC) && !ctx.has_l1 &&
                 (!data->sparse || !ctx.lazy) &&
                 copy_stride * sizeof(double) <= PA_COPY_BUDGET / (size_t)T;
    if (data->sparse) {
        sh.flush_every = PA_SPARSE_FLUSH;
        copies = copies && sparse_sweep(data, n / T + 1, &sh.slice);
    } else {
        sh.flush_every = update == PA_ATOMIC ? PA_DENSE_FLUSH_ATOMIC : PA_DENSE_FLUSH_RACY;
    }
    sh.kernel = pa_linear_kernel_for(data->dtype, data->sparse, copies ? PA_PLAIN : update);
    sh.copy_arrays = copy_arrays;
    sh.model = model;
    sh.data = data;
    sh.opts = opts;
    sh.hist_len = hist_len;
    pthread_mutex_init(&sh.lock, NULL);
    pa_exits_init(&sh.exits);
    sh.commits = aligned_alloc(PA_LINE, sizeof(pa_commit_counter) * T);
    pa_worker *wk = aligned_alloc(PA_LINE, sizeof(pa_worker) * T);
    size_t hist_stride;
    int64_t *hists = pa_line_rows_i64(T, hist_len, &hist_stride);
    double *copy_mem = copies ? aligned_alloc(PA_LINE, (size_t)T * copy_stride * sizeof(double))
                              : NULL;
    if (!sh.commits || !wk || !hists || (copies && !copy_mem)) {
        status = PA_NOMEM;
        goto out;
    }
    status = pa_linear_average_open(&ctx, model, data->n_features, T, &accs);
    if (status != PA_OK)
        goto out;
    pa_penalty_open(&ctx, model, data->n_features, T == 1);
    memset(sh.commits, 0, sizeof(pa_commit_counter) * T);
    memset(wk, 0, sizeof(pa_worker) * T);
    sh.round_len = n / T;
    int64_t past_round = sh.round_len * T;
    for (int t = 0; t < T; t++) {
        wk[t].model = *model;
        wk[t].sh = &sh;
        wk[t].tid = t;
        wk[t].start = n * t / T;
        wk[t].end = n * (t + 1) / T;
        if (wk[t].end - wk[t].start > sh.round_len)
            wk[t].last_round = ++past_round;
        wk[t].hist = hists + (size_t)t * hist_stride;
        wk[t].model.avg_acc = accs ? accs[t] : NULL;
        if (copies) {
            double *c = copy_mem + (size_t)t * copy_stride;
            memset(c, 0, copy_stride * sizeof(double));
            wk[t].copy = c;
            wk[t].model.w = c;
            wk[t].model.b = c + data->n_features;
            if (copy_arrays == 2) {
                wk[t].model.v = c + copy_len;
                wk[t].model.vb = c + copy_len + data->n_features;
            }
            /* the workers' sweeps start apart */
            wk[t].cursor = data->n_features * t / T;
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
    pa_penalty_close(&ctx, model, &wk[0].model, k_end, stats);
    stats->avg_count = pa_linear_average_close(&ctx, model, accs, T, data->n_features, k_end);
    pa_linear_finish(&ctx, model, data->n_features, k_end);
    if (status == PA_OK && sh.stop) status = PA_INTERRUPTED;
out:
    pa_linear_average_free(accs, T);
    free(copy_mem);
    free(hists);
    free(wk);
    free(sh.commits);
    pa_exits_destroy(&sh.exits);
    pthread_mutex_destroy(&sh.lock);
    pa_epoch_ctx_free(&ctx);
    return stats->status = status;
}

/* scikit-learn's shuffle (sklearn.utils._random.our_rand_r, its
 * SequentialDataset.shuffle): an xorshift on a 32-bit state, 0 taken as 1,
 * and a forward Fisher-Yates, partner i + draw % (n - i). The same seed
 * every epoch reshuffles the order the epoch before left, as scikit-learn
 * does, so one thread visits its rows in SGDClassifier's order. */
static inline uint32_t pa_sk_rand(uint32_t *state)
{
    if (*state == 0) *state = 1;
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state % ((uint32_t)INT32_MAX + 1u);
}

/* Each swap's partner is drawn PA_SHUFFLE_AHEAD swaps early and its line
 * prefetched: the order outgrows the core's cache, and one miss a swap cost
 * more than the draws. Orders that fit int32 are shuffled as int32 (half
 * the lines); the permutation is the same. */
#define PA_SHUFFLE_AHEAD 16
#define PA_SHUFFLE_BODY(order, TYPE)                                         \
    do {                                                                     \
        int64_t partner[PA_SHUFFLE_AHEAD]; /* of swap i, at i % AHEAD */     \
        int64_t next = 0;                  /* the next swap to draw for */   \
        for (; next < n - 1 && next < PA_SHUFFLE_AHEAD; next++) {            \
            int64_t j = next + (int64_t)(pa_sk_rand(&state) % (uint32_t)(n - next)); \
            partner[next % PA_SHUFFLE_AHEAD] = j;                            \
            __builtin_prefetch(&(order)[j], 1);                              \
        }                                                                    \
        for (int64_t i = 0; i < n - 1; i++) {                                \
            int64_t j = partner[i % PA_SHUFFLE_AHEAD];                       \
            if (next < n - 1) {                                              \
                int64_t later = next + (int64_t)(pa_sk_rand(&state) %        \
                                                 (uint32_t)(n - next));      \
                partner[next % PA_SHUFFLE_AHEAD] = later;                    \
                __builtin_prefetch(&(order)[later], 1);                      \
                next++;                                                      \
            }                                                                \
            TYPE tmp = (order)[i];                                           \
            (order)[i] = (order)[j];                                         \
            (order)[j] = tmp;                                                \
        }                                                                    \
    } while (0)

int pa_shuffle_order(int64_t *order, int64_t n, uint32_t seed)
{
    if (n > INT32_MAX) /* scikit-learn's draws are 31-bit */
        return PA_NOMEM;
    uint32_t state = seed;
    int32_t *narrow = n > 1 ? malloc((size_t)n * sizeof(int32_t)) : NULL;
    int fits = narrow != NULL;
    for (int64_t i = 0; fits && i < n; i++) {
        if (order[i] < INT32_MIN || order[i] > INT32_MAX) fits = 0;
        else narrow[i] = (int32_t)order[i];
    }
    if (fits) {
        PA_SHUFFLE_BODY(narrow, int32_t);
        for (int64_t i = 0; i < n; i++) order[i] = narrow[i];
    } else {
        PA_SHUFFLE_BODY(order, int64_t);
    }
    free(narrow);
    return PA_OK;
}
