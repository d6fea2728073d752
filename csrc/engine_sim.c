/* The simulated engine: M virtual workers in one thread, deterministic for a
 * seed. A worker reads (computes its prediction on the model as it is then)
 * and writes later; the scheduler decides who writes next:
 *  - exponential: a uniformly random busy worker (memoryless compute times:
 *    the queueing model behind "asynchrony begets momentum"; staleness is
 *    geometric with mean M - 1);
 *  - round_robin: workers in turn (staleness exactly M - 1; a fixed delay k
 *    is round robin over k + 1 workers);
 *  - replay: each write draws its staleness s from a given distribution and
 *    uses the model as it was s writes earlier (predictions are computed
 *    ahead, at the state they must see, so no model copies are kept).
 * Each epoch starts with every worker reading the epoch's first rows. */
#include <stdlib.h>
#include <string.h>
#include "linear.h"
#include "rng.h"

typedef struct {
    int64_t row, read_clock;
    double p;
} pa_inflight;

static void record(pa_epoch_stats *st, int64_t s)
{
    int64_t len = st->hist_len;
    st->staleness_hist[s < len - 1 ? s : len - 1]++;
    if (s > st->staleness_max) st->staleness_max = s;
    st->staleness_sum += (double)s;
    st->staleness_count++;
}

/* Writes the update of `f` as write number k (1-based) of the epoch. */
static int write_update(const pa_linear_kernel *kr, const pa_epoch_ctx *c,
                        pa_linear_model *m, const pa_dataset *ds,
                        const pa_inflight *f, int64_t k, pa_epoch_stats *st,
                        double *trace)
{
    if (!isfinite(f->p))
        return PA_DIVERGED;
    m->avg_clock = k;  /* one writer: its writes are in clock order */
    kr->apply(c, m, ds, f->row, k, f->p, &st->sumloss);
    record(st, k - 1 - f->read_clock);
    st->n_updates++;
    if (trace) memcpy(trace + (k - 1) * ds->n_features, m->w,
                      sizeof(double) * (size_t)ds->n_features);
    return PA_OK;
}

static void read_row(const pa_linear_kernel *kr, const pa_epoch_ctx *c,
                     pa_linear_model *m, const pa_dataset *ds, pa_inflight *f,
                     int64_t row, int64_t clock)
{
    f->row = row;
    f->read_clock = clock;
    f->p = kr->predict(c, m, ds, row, clock + 1);
}

static int run_workers(const pa_linear_kernel *kr, const pa_epoch_ctx *c,
                       pa_linear_model *m, const pa_dataset *ds,
                       const pa_sim_opts *o, pa_rng *rng, pa_epoch_stats *st)
{
    const int64_t n = o->n_order;
    int64_t M = o->n_workers < n ? o->n_workers : n, next = 0, busy = M;
    pa_inflight *w = malloc(sizeof(pa_inflight) * (size_t)(M > 0 ? M : 1));
    if (!w) return PA_NOMEM;
    for (int64_t j = 0; j < M; j++) read_row(kr, c, m, ds, &w[j], o->order[next++], 0);
    int status = PA_OK;
    int64_t turn = 0;
    for (int64_t k = 1; k <= n && status == PA_OK; k++) {
        int64_t j = o->schedule == PA_SIM_ROUND_ROBIN
                        ? turn++ % busy
                        : (int64_t)pa_rng_below(rng, (uint64_t)busy);
        status = write_update(kr, c, m, ds, &w[j], k, st, o->trace);
        if (next < n) {
            pa_prefetch_ahead(kr, ds, o->order, next, n);
            read_row(kr, c, m, ds, &w[j], o->order[next++], k);
        } else { /* draining: the worker leaves, keep the others in turn */
            for (int64_t q = j; q + 1 < busy; q++) w[q] = w[q + 1];
            busy--;
            if (o->schedule == PA_SIM_ROUND_ROBIN && busy > 0) turn = j % busy;
        }
        if ((k & 4095) == 0 && o->poll && o->poll(o->poll_ctx)) status = PA_INTERRUPTED;
    }
    free(w);
    return status;
}

static int run_replay(const pa_linear_kernel *kr, const pa_epoch_ctx *c,
                      pa_linear_model *m, const pa_dataset *ds,
                      const pa_sim_opts *o, pa_rng *rng, pa_epoch_stats *st)
{
    const int64_t n = o->n_order, S = o->replay_len; /* staleness < S */
    /* write k reads at state max(0, k - 1 - s_k); reads wait in buckets by
     * state, a ring of S + 1; each bucket is a linked list of writes. */
    pa_inflight *f = malloc(sizeof(pa_inflight) * (size_t)(n > 0 ? n : 1));
    int64_t *head = malloc(sizeof(int64_t) * (size_t)(S + 1));
    int64_t *next = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    int status = PA_OK;
    if (!f || !head || !next) { status = PA_NOMEM; goto out; }
    for (int64_t b = 0; b <= S; b++) head[b] = -1;
    int64_t drawn = 0; /* writes 1..drawn have their read scheduled */
    for (int64_t state = 0; state < n && status == PA_OK; state++) {
        /* schedule every write whose earliest possible read is now */
        for (; drawn < n && drawn + 1 - 1 - (S - 1) <= state; drawn++) {
            int64_t k = drawn + 1;
            int64_t read = k - 1 - pa_rng_from_cdf(rng, o->replay_cdf, o->replay_len);
            if (read < 0) read = 0;
            int64_t b = read % (S + 1);
            f[k - 1].read_clock = read;
            next[k - 1] = head[b];
            head[b] = k - 1;
        }
        int64_t b = state % (S + 1);
        pa_prefetch_ahead(kr, ds, o->order, state, n);
        for (int64_t e = head[b]; e >= 0; e = next[e])
            read_row(kr, c, m, ds, &f[e], o->order[e], state);
        head[b] = -1;
        status = write_update(kr, c, m, ds, &f[state], state + 1, st, o->trace);
        if (((state + 1) & 4095) == 0 && o->poll && o->poll(o->poll_ctx))
            status = PA_INTERRUPTED;
    }
out:
    free(f);
    free(head);
    free(next);
    return status;
}

int pa_linear_epoch_sim(const pa_linear_params *params, const pa_dataset *data,
                        pa_linear_model *model, int64_t t0, double eta,
                        const pa_sim_opts *opts, pa_epoch_stats *stats)
{
    pa_epoch_ctx ctx;
    /* the same table length as one thread of the threads engine (n + 1),
     * so one simulated worker rounds exactly as one thread */
    int status = pa_epoch_ctx_init(&ctx, params, data->sparse, t0, eta, opts->n_order + 1);
    if (status != PA_OK) return stats->status = status;
    pa_linear_kernel kr = pa_linear_kernel_for(data->dtype, data->sparse, PA_PLAIN);
    /* With other workers' writes between a read and its write, the read
     * stores no catch-up: the write catches up from the clocks it finds.
     * One worker writes right after its read, which has done that work. */
    if (kr.peek && (opts->schedule == PA_SIM_REPLAY || opts->n_workers > 1))
        kr.predict = kr.peek;
    double **accs;
    status = pa_linear_average_open(&ctx, model, data->n_features, 1, &accs);
    if (status != PA_OK) {
        pa_linear_average_free(accs, 1);
        pa_epoch_ctx_free(&ctx);
        return stats->status = status;
    }
    pa_penalty_open(&ctx, model, data->n_features,
                    opts->n_workers == 1 && opts->schedule != PA_SIM_REPLAY);
    pa_linear_model m = *model;
    m.avg_acc = accs ? accs[0] : NULL;
    pa_rng rng;
    pa_rng_seed(&rng, opts->seed);
    if (opts->schedule == PA_SIM_REPLAY)
        status = run_replay(&kr, &ctx, &m, data, opts, &rng, stats);
    else
        status = run_workers(&kr, &ctx, &m, data, opts, &rng, stats);
    stats->clock_end = stats->n_updates;
    pa_penalty_close(&ctx, model, &m, stats->n_updates, stats);
    stats->avg_count = pa_linear_average_close(&ctx, model, accs, 1, data->n_features,
                                               stats->n_updates);
    pa_linear_finish(&ctx, model, data->n_features, stats->n_updates);
    pa_linear_average_free(accs, 1);
    pa_epoch_ctx_free(&ctx);
    return stats->status = status;
}
