/* The MLP engines.
 *
 * threads: T OS threads share the flat weights w and one velocity v. Each
 * thread takes the next minibatch of the epoch's order (a shared counter),
 * reads a private snapshot of w (relaxed atomic loads), computes the loss
 * and gradient on it with its own scratch, and writes its update into w
 * with no lock ("racy": relaxed loads and stores, a concurrent write may
 * be lost; "atomic": compare-and-swap, none is lost) or under one mutex
 * ("locked": the snapshot and the write each under the lock, so reads are
 * consistent models and no update is lost; the gradient is still stale).
 * Staleness of an update = updates other threads committed between its
 * read and its write, from per-thread commit counters on their own cache
 * lines, summed before the read and after the write. One update is a whole
 * minibatch, so reading T counters costs nothing next to it: every
 * `staleness_every`-th update is measured (1 by default from Python).
 *
 * simulated: M virtual workers in one thread, deterministic for a seed.
 * A worker reads (computes its gradient on the model as it is then, kept
 * in its own slot: M x n_params doubles) and writes later; the scheduler
 * picks who writes next: a uniformly random busy worker (exponential) or
 * workers in turn (round robin: staleness M - 1); or, replaying a
 * staleness distribution, write k's gradient is taken on the model as it
 * was s_k writes earlier (s_k drawn from it), computed ahead when the
 * model is in that state: at most one gradient a possible staleness is
 * kept. */
#define _POSIX_C_SOURCE 200809L /* pthread_condattr_setclock (exits.h) */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "mlp_kernel.h"
#include "rng.h"
#include "lines.h"
#include "exits.h"

typedef struct {
    _Alignas(PA_LINE) int64_t done;
    char pad[PA_LINE - sizeof(int64_t)];
} pa_counter;

typedef struct mlp_shared mlp_shared;

typedef struct {
    _Alignas(PA_LINE) mlp_shared *sh;
    pa_mlp_work work;
    pthread_t thread;
    int tid;
    double sumloss;
    int64_t n_updates;
    int64_t *hist;
    int64_t smax, scount;
    double ssum;
    int status;
} mlp_worker;

struct mlp_shared {
    const pa_mlp_params *p;
    const pa_mlp_data *d;
    double *w, *v;
    const pa_engine_opts *opts;
    int update, n_threads;
    int64_t n_batches, hist_len;
    _Alignas(PA_LINE) int64_t next_batch;
    _Alignas(PA_LINE) int stop;
    pa_counter *commits;
    pthread_mutex_t lock;
    pa_exits exits;
    int inline_poll;          /* one thread, run by the launching thread */
    int64_t last_poll_ns;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t others(const mlp_shared *sh, int tid)
{
    int64_t s = 0;
    for (int o = 0; o < sh->n_threads; o++)
        if (o != tid) s += __atomic_load_n(&sh->commits[o].done, __ATOMIC_RELAXED);
    return s;
}

static void record(int64_t *hist, int64_t len, int64_t s, int64_t *smax, int64_t *scount,
                   double *ssum)
{
    hist[s < len - 1 ? s : len - 1]++;
    if (s > *smax) *smax = s;
    *ssum += (double)s;
    (*scount)++;
}

static void run_worker(mlp_worker *wk)
{
    mlp_shared *sh = wk->sh;
    const pa_engine_opts *o = sh->opts;
    const pa_mlp_params *p = sh->p;
    const int T = sh->n_threads, locked = sh->update == PA_LOCKED;
    const int shared = T > 1 && !locked;
    const int every = T > 1 && o->staleness_every > 0 ? o->staleness_every : 0;
    const int64_t B = p->batch_size;
    int64_t *done = &sh->commits[wk->tid].done, n_done = 0;
    for (;;) {
        if (__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) break;
        if (sh->inline_poll && o->poll) {
            int64_t t = now_ns();
            if (t - sh->last_poll_ns >= PA_POLL_NS) {
                sh->last_poll_ns = t;
                if (o->poll(o->poll_ctx)) { sh->stop = 1; break; }
            }
        }
        const int64_t b = __atomic_fetch_add(&sh->next_batch, 1, __ATOMIC_RELAXED);
        if (b >= sh->n_batches) break;
        const int64_t start = b * B;
        const int64_t n = o->n_order - start < B ? o->n_order - start : B;
        const int measure = every && n_done % every == 0;
        int64_t before = 0;
        if (locked) pthread_mutex_lock(&sh->lock);
        if (measure) before = others(sh, wk->tid);
        pa_mlp_snapshot(&wk->work, sh->w, shared);
        if (locked) pthread_mutex_unlock(&sh->lock);
        double loss;
        if (pa_mlp_compute(&wk->work, sh->d, o->order + start, n, &loss, wk->work.grad)
            != PA_OK) {
            wk->status = PA_DIVERGED;
            __atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
            break;
        }
        if (locked) pthread_mutex_lock(&sh->lock);
        pa_mlp_apply(p, wk->work.n_params, sh->w, sh->v, wk->work.grad,
                     T == 1 || locked ? PA_PLAIN : sh->update);
        __atomic_store_n(done, ++n_done, __ATOMIC_RELAXED);
        int64_t after = measure ? others(sh, wk->tid) : 0;
        if (locked) pthread_mutex_unlock(&sh->lock);
        if (measure) record(wk->hist, sh->hist_len, after - before, &wk->smax, &wk->scount,
                            &wk->ssum);
        wk->sumloss += loss * (double)n;
    }
    wk->n_updates = n_done;
    if (!every) { /* one thread: every update saw the model it read */
        wk->hist[0] += n_done;
        wk->scount += n_done;
    }
}

static void *worker_main(void *arg)
{
    mlp_worker *wk = arg;
    run_worker(wk);
    pa_exits_leave(&wk->sh->exits);
    return NULL;
}

static int64_t n_batches_of(int64_t n, int64_t B) { return B > 0 ? (n + B - 1) / B : 0; }

int pa_mlp_epoch(const pa_mlp_params *p, const pa_mlp_data *d, double *w, double *v,
                 const pa_engine_opts *opts, pa_epoch_stats *stats)
{
    const int64_t n_batches = n_batches_of(opts->n_order, p->batch_size);
    /* no thread without a minibatch: on small data, idle threads only cost
     * their start (digits, 7 minibatches: 16 threads took 3x 1 thread's time) */
    int T = opts->n_threads > 0 ? opts->n_threads : 1;
    if (T > n_batches) T = n_batches > 1 ? (int)n_batches : 1;
    const int64_t hist_len = stats->hist_len;
    if (p->batch_size < 1 || p->n_layers < 1 || p->n_layers > PA_MLP_MAX_LAYERS)
        return stats->status = PA_NOMEM;
    mlp_shared sh;
    memset(&sh, 0, sizeof sh);
    sh.p = p;
    sh.d = d;
    sh.w = w;
    sh.v = p->momentum != 0.0 ? v : NULL;
    sh.opts = opts;
    sh.update = opts->update;
    sh.n_threads = T;
    sh.n_batches = n_batches;
    sh.hist_len = hist_len;
    sh.inline_poll = T == 1;
    sh.last_poll_ns = now_ns();
    pthread_mutex_init(&sh.lock, NULL);
    pa_exits_init(&sh.exits);
    int status = PA_OK, n_init = 0;
    sh.commits = aligned_alloc(PA_LINE, sizeof(pa_counter) * T);
    mlp_worker *wk = aligned_alloc(PA_LINE, sizeof(mlp_worker) * T);
    size_t hist_stride;
    int64_t *hists = pa_line_rows_i64(T, hist_len, &hist_stride);
    if (!sh.commits || !wk || !hists) { status = PA_NOMEM; goto out; }
    memset(sh.commits, 0, sizeof(pa_counter) * T);
    memset(wk, 0, sizeof(mlp_worker) * T);
    for (; n_init < T; n_init++) {
        mlp_worker *x = &wk[n_init];
        x->sh = &sh;
        x->tid = n_init;
        x->hist = hists + (size_t)n_init * hist_stride;
        if (pa_mlp_work_init(&x->work, p) != PA_OK) { status = PA_NOMEM; goto out; }
    }
    if (T == 1) {
        run_worker(&wk[0]);
    } else {
        int started = 0;
        for (; started < T; started++)
            if (pthread_create(&wk[started].thread, NULL, worker_main, &wk[started]))
                break;
        if (started < T) __atomic_store_n(&sh.stop, 1, __ATOMIC_RELAXED);
        pa_exits_wait(&sh.exits, started, sh.opts->poll, sh.opts->poll_ctx,
                      &sh.stop);
        for (int t = 0; t < started; t++) pthread_join(wk[t].thread, NULL);
        if (started < T) status = PA_NOMEM;
    }
    for (int t = 0; t < T; t++) {
        stats->sumloss += wk[t].sumloss;
        stats->n_updates += wk[t].n_updates;
        stats->staleness_sum += wk[t].ssum;
        stats->staleness_count += wk[t].scount;
        if (wk[t].smax > stats->staleness_max) stats->staleness_max = wk[t].smax;
        for (int64_t b = 0; b < hist_len; b++) stats->staleness_hist[b] += wk[t].hist[b];
        if (wk[t].status != PA_OK && status == PA_OK) status = wk[t].status;
    }
    stats->clock_end = stats->n_updates;
    if (status == PA_OK && sh.stop) status = PA_INTERRUPTED;
out:
    if (wk)
        for (int t = 0; t < n_init; t++) pa_mlp_work_free(&wk[t].work);
    free(hists);
    free(wk);
    free(sh.commits);
    pa_exits_destroy(&sh.exits);
    pthread_mutex_destroy(&sh.lock);
    return stats->status = status;
}

static int poll_due(const pa_sim_opts *o, int64_t *last_poll)
{
    if (!o->poll) return 0;
    int64_t t = now_ns();
    if (t - *last_poll < PA_POLL_NS) return 0;
    *last_poll = t;
    return o->poll(o->poll_ctx);
}

static int64_t sim_slots(const pa_mlp_params *p, const pa_sim_opts *o)
{
    const int64_t nb = n_batches_of(o->n_order, p->batch_size);
    if (o->schedule == PA_SIM_REPLAY)
        return (o->replay_len < nb ? o->replay_len : nb) + 1;
    const int64_t M = o->n_workers < nb ? o->n_workers : nb;
    return M < 1 ? 1 : M;
}

int64_t pa_mlp_sim_scratch_len(const pa_mlp_params *p, const pa_sim_opts *o)
{
    return sim_slots(p, o) * pa_mlp_n_params(p);
}

/* The caller's scratch where it holds n doubles, else memory of our own
 * (freed by whoever sees it is not o->scratch). */
static double *scratch_or_own(const pa_sim_opts *o, int64_t n)
{
    if (o->scratch && o->scratch_len >= n) return o->scratch;
    return malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
}

/* The replay schedule (see the top of the file), as the linear engine's:
 * write k (1-based) reads at state max(0, k - 1 - s_k), s_k < S; reads wait
 * in buckets by state, a ring of S + 1 linked lists. Pending gradients are
 * those of writes state + 1 .. drawn, at most min(S, batches) + 1 of them,
 * each in slot k mod that. */
static int mlp_replay(const pa_mlp_params *p, const pa_mlp_data *d, double *w, double *vel,
                      const pa_sim_opts *o, pa_epoch_stats *st, pa_mlp_work *work,
                      int64_t nb)
{
    const int64_t B = p->batch_size, S = o->replay_len, P = work->n_params;
    const int64_t G = sim_slots(p, o); /* min(S, nb) + 1 */
    double *grads = scratch_or_own(o, G * P);
    double *loss = malloc(sizeof(double) * (size_t)G);
    int64_t *read_clock = malloc(sizeof(int64_t) * (size_t)(nb > 0 ? nb : 1));
    int64_t *next = malloc(sizeof(int64_t) * (size_t)(nb > 0 ? nb : 1));
    int64_t *head = malloc(sizeof(int64_t) * (size_t)(S + 1));
    int status = PA_OK;
    if (!grads || !loss || !read_clock || !next || !head) { status = PA_NOMEM; goto out; }
    for (int64_t b = 0; b <= S; b++) head[b] = -1;
    pa_rng rng;
    pa_rng_seed(&rng, o->seed);
    int64_t drawn = 0, last_poll = now_ns(); /* writes 1..drawn have their read scheduled */
    for (int64_t state = 0; state < nb && status == PA_OK; state++) {
        for (; drawn < nb && drawn + 1 - S <= state; drawn++) {
            /* write drawn + 1's read */
            int64_t read = drawn - pa_rng_from_cdf(&rng, o->replay_cdf, o->replay_len);
            if (read < 0) read = 0;
            read_clock[drawn] = read;
            next[drawn] = head[read % (S + 1)];
            head[read % (S + 1)] = drawn;
        }
        for (int64_t e = head[state % (S + 1)]; e >= 0 && status == PA_OK; e = next[e]) {
            const int64_t start = e * B, n = o->n_order - start < B ? o->n_order - start : B;
            pa_mlp_snapshot(work, w, 0);
            if (pa_mlp_compute(work, d, o->order + start, n, &loss[e % G],
                               grads + (e % G) * P) != PA_OK)
                status = PA_DIVERGED;
        }
        head[state % (S + 1)] = -1;
        if (status != PA_OK) break;
        const int64_t start = state * B, n = o->n_order - start < B ? o->n_order - start : B;
        pa_mlp_apply(p, P, w, vel, grads + (state % G) * P, PA_PLAIN);
        record(st->staleness_hist, st->hist_len, state - read_clock[state], &st->staleness_max,
               &st->staleness_count, &st->staleness_sum);
        st->sumloss += loss[state % G] * (double)n;
        st->n_updates++;
        if (poll_due(o, &last_poll)) status = PA_INTERRUPTED;
    }
out:
    if (grads != o->scratch) free(grads);
    free(loss);
    free(read_clock);
    free(next);
    free(head);
    return status;
}

int pa_mlp_epoch_sim(const pa_mlp_params *p, const pa_mlp_data *d, double *w, double *v,
                     const pa_sim_opts *o, pa_epoch_stats *st)
{
    const int64_t B = p->batch_size, nb = n_batches_of(o->n_order, B);
    if (B < 1 || p->n_layers < 1 || p->n_layers > PA_MLP_MAX_LAYERS)
        return st->status = PA_NOMEM;
    const int64_t M = sim_slots(p, o);
    pa_mlp_work work;
    if (pa_mlp_work_init(&work, p) != PA_OK) return st->status = PA_NOMEM;
    if (o->schedule == PA_SIM_REPLAY) {
        int status = o->replay_len > 0
                         ? mlp_replay(p, d, w, p->momentum != 0.0 ? v : NULL, o, st, &work, nb)
                         : PA_NOMEM;
        st->clock_end = st->n_updates;
        pa_mlp_work_free(&work);
        return st->status = status;
    }
    const int64_t P = work.n_params;
    double *grads = scratch_or_own(o, M * P);
    double *loss = malloc(sizeof(double) * (size_t)M);
    int64_t *nrows = malloc(sizeof(int64_t) * (size_t)M);
    int64_t *read_clock = malloc(sizeof(int64_t) * (size_t)M);
    int64_t *busy_slot = malloc(sizeof(int64_t) * (size_t)M);
    int status = PA_OK;
    if (!grads || !loss || !nrows || !read_clock || !busy_slot) { status = PA_NOMEM; goto out; }
    double *vel = p->momentum != 0.0 ? v : NULL;
    pa_rng rng;
    pa_rng_seed(&rng, o->seed);
    int64_t next = 0, busy = 0, last_poll = now_ns();
    /* worker `slot` reads batch `next` at clock `clock` */
#define READ(slot, clock) do {                                                   \
        const int64_t s_ = (slot), start_ = next * B;                            \
        const int64_t n_ = o->n_order - start_ < B ? o->n_order - start_ : B;    \
        pa_mlp_snapshot(&work, w, 0);                                            \
        if (pa_mlp_compute(&work, d, o->order + start_, n_, &loss[s_],          \
                           grads + s_ * P) != PA_OK)                             \
            status = PA_DIVERGED;                                                \
        nrows[s_] = n_;                                                          \
        read_clock[s_] = (clock);                                                \
        next++;                                                                  \
    } while (0)
    for (int64_t j = 0; j < M && status == PA_OK; j++) {
        READ(j, 0);
        busy_slot[busy++] = j;
    }
    int64_t turn = 0;
    for (int64_t k = 1; k <= nb && status == PA_OK; k++) {
        const int64_t q = o->schedule == PA_SIM_ROUND_ROBIN
                              ? turn++ % busy
                              : (int64_t)pa_rng_below(&rng, (uint64_t)busy);
        const int64_t s = busy_slot[q];
        pa_mlp_apply(p, P, w, vel, grads + s * P, PA_PLAIN);
        record(st->staleness_hist, st->hist_len, k - 1 - read_clock[s], &st->staleness_max,
               &st->staleness_count, &st->staleness_sum);
        st->sumloss += loss[s] * (double)nrows[s];
        st->n_updates++;
        if (next < nb) {
            READ(s, k);
        } else { /* draining: the worker leaves, the others keep their turn */
            for (int64_t r = q; r + 1 < busy; r++) busy_slot[r] = busy_slot[r + 1];
            busy--;
            if (o->schedule == PA_SIM_ROUND_ROBIN && busy > 0) turn = q % busy;
        }
        if (poll_due(o, &last_poll)) status = PA_INTERRUPTED;
    }
#undef READ
    st->clock_end = st->n_updates;
out:
    pa_mlp_work_free(&work);
    if (grads != o->scratch) free(grads);
    free(loss);
    free(nrows);
    free(read_clock);
    free(busy_slot);
    return st->status = status;
}
