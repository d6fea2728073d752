# cython: language_level=3, boundscheck=False, wraparound=False
"""The only place Python meets C: checks buffers, releases the GIL, runs an
engine, returns statistics."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int32_t, uint32_t, uint64_t

cnp.import_array()

cdef extern from "Python.h":
    # Raw: leaves the exception set and returns -1, for a nogil poll.
    int _check_signals "PyErr_CheckSignals" ()
    void *_err_occurred "PyErr_Occurred" ()

cdef extern from "pyasync_core.h":
    ctypedef struct pa_linear_params:
        int loss
        double loss_param, alpha, l2, l1
        int schedule
        double eta0, power_t, optimal_init, momentum
        int fit_intercept
        double intercept_decay
        int64_t average
        int track_objective
    ctypedef struct pa_dataset:
        int dtype, sparse
        int64_t n_samples, n_features
        const void *data
        const int64_t *indptr
        const int32_t *indices
        const double *y
        const double *sample_weight
    ctypedef struct pa_linear_model:
        double *w
        double *v
        double *q
        int64_t *last
        double *b
        double *vb
        double u
        const int32_t *hot_features
        int32_t n_hot
        double *avg_sum
        double *avg_acc
        double pen_sq, pen_abs
    ctypedef struct pa_engine_opts:
        int n_threads, update, staleness_every
        const int64_t *order
        int64_t n_order
        int (*poll)(void *) noexcept nogil
        void *poll_ctx
    ctypedef struct pa_epoch_stats:
        double sumloss
        int64_t n_updates, clock_end
        int64_t *staleness_hist
        int64_t hist_len, staleness_max, staleness_count
        double staleness_sum
        int64_t avg_count
        double penalty_sum
        int penalty_tracked
        int status
    ctypedef struct pa_sim_opts:
        int n_workers, schedule
        const double *replay_cdf
        int64_t replay_len
        uint64_t seed
        const int64_t *order
        int64_t n_order
        double *trace
        int (*poll)(void *) noexcept nogil
        void *poll_ctx
        double *scratch
        int64_t scratch_len
    int pa_linear_epoch_sim(const pa_linear_params *, const pa_dataset *,
                            pa_linear_model *, int64_t, double,
                            const pa_sim_opts *, pa_epoch_stats *) nogil
    int pa_linear_epoch(const pa_linear_params *, const pa_dataset *,
                        pa_linear_model *, int64_t, double,
                        const pa_engine_opts *, pa_epoch_stats *) nogil
    double pa_eta(const pa_linear_params *, double, int64_t) nogil
    int pa_shuffle_order(int64_t *, int64_t, uint32_t) nogil
    int pa_epoch_staleness(const int64_t *, int64_t, int64_t, int64_t, int64_t, int64_t *) nogil
    int pa_growth_runs(const double *, int64_t, double, const int64_t *, int64_t, int64_t,
                       int64_t, int, int64_t, double *) nogil
    int pa_row_sample_grid(const double *, const double *, const double *, int64_t,
                           const double *, const double *, const double *, int64_t, double,
                           int, double, double, const double *, int64_t,
                           const int64_t *, const int64_t *, const double *, int64_t,
                           int64_t, double, double, const double *, double *) nogil
    int pa_feature_sample_grid(const double *, const double *, int64_t, int64_t,
                               const double *, const double *, int64_t, double,
                               const double *, double, const double *, double, int, double,
                               double, const double *, int64_t, const int64_t *,
                               const int64_t *, int64_t, int64_t, double, double *) nogil
    int PA_OK, PA_INTERRUPTED, PA_DIVERGED, PA_NOMEM, PA_AVG_LAZY

LOSSES = {"hinge": 0, "log_loss": 1, "modified_huber": 2, "squared_hinge": 3,
          "perceptron": 4, "squared_error": 5, "huber": 6,
          "epsilon_insensitive": 7, "squared_epsilon_insensitive": 8}
SCHEDULES = {"constant": 0, "optimal": 1, "invscaling": 2, "adaptive": 3, "pa1": 4,
             "pa2": 5}
UPDATES = {"racy": 0, "atomic": 1, "locked": 2}
SIM_SCHEDULES = {"exponential": 0, "round_robin": 1, "replay": 2}


class Diverged(ArithmeticError):
    """Non-finite prediction or weights during an epoch."""


cdef int _poll_signals(void *ctx) noexcept nogil:
    with gil:
        return 1 if _check_signals() != 0 else 0


cdef int _reraise() except -1:
    # The interrupt left its exception set: let it propagate.
    return -1


include "_arrays.pxi"


cdef void _set_params(pa_linear_params *p, dict prm) except *:
    p.loss = LOSSES[prm["loss"]]
    p.loss_param = prm["loss_param"]
    p.alpha = prm["alpha"]
    p.l2 = prm["l2"]
    p.l1 = prm["l1"]
    p.schedule = SCHEDULES[prm["learning_rate"]]
    p.eta0 = prm["eta0"]
    p.power_t = prm["power_t"]
    p.optimal_init = prm["optimal_init"]
    p.momentum = prm["momentum"]
    p.fit_intercept = 1 if prm["fit_intercept"] else 0
    p.intercept_decay = prm["intercept_decay"]
    p.average = prm.get("average", 0)
    p.track_objective = prm.get("track_objective", False)


def eta(dict params, double eta_const, int64_t t):
    """The learning rate of update number t (1-based)."""
    cdef pa_linear_params p
    _set_params(&p, params)
    return pa_eta(&p, eta_const, t)


def etas(dict params, double eta_const, int64_t t_first, int64_t n):
    """The learning rates of updates t_first .. t_first + n - 1, as `eta`."""
    cdef pa_linear_params p
    _set_params(&p, params)
    cdef cnp.ndarray out = np.empty(max(n, 0), dtype=np.float64)
    cdef double *o = <double *>_data(out, np.float64, "out")
    cdef int64_t k
    with nogil:
        for k in range(n):
            o[k] = pa_eta(&p, eta_const, t_first + k)
    return out


def shuffle_order(cnp.ndarray order, uint64_t seed):
    """Shuffles int64 `order` in place as scikit-learn's SGD shuffles its
    rows each epoch with `seed` (taken mod 2^32, as its C code's unsigned
    int): the same seed again reshuffles the order it left."""
    cdef int64_t *ptr = <int64_t *>_data(order, np.int64, "order")
    cdef int64_t n = order.shape[0]
    cdef uint32_t sk_seed = <uint32_t>(seed & 0xFFFFFFFF)
    cdef int status
    with nogil:
        status = pa_shuffle_order(ptr, n, sk_seed)
    if status != PA_OK:
        raise ValueError(f"{n} rows to shuffle; at most 2147483647 are supported")


def epoch_staleness_runs(cnp.ndarray picks, int64_t workers, int64_t n_batches):
    """The staleness of the MLP engines' epochs (n_updates x replicas, as
    picks; see momentum.epoch_staleness): picks[t, r] the busy worker that
    writes update t of run r, below the workers still busy then."""
    if picks.ndim != 2 or workers < 1 or n_batches < workers:
        raise ValueError("epoch_staleness_runs: inconsistent sizes")
    cdef int64_t n = picks.shape[0], replicas = picks.shape[1]
    if n and (picks.min() < 0 or picks.max() >= workers):
        raise ValueError("epoch_staleness_runs: a worker out of range")
    cdef cnp.ndarray out = np.empty((n, replicas), dtype=np.int64)
    cdef const int64_t *p = <int64_t *>_data(picks, np.int64, "picks")
    cdef int64_t *o = <int64_t *>_data(out, np.int64, "out")
    cdef int rc
    with nogil:
        rc = pa_epoch_staleness(p, n, replicas, workers, n_batches, o)
    if rc != 0:
        raise MemoryError("epoch_staleness_runs: out of memory")
    return out


def growth_runs(cnp.ndarray grid, double step_curvature, cnp.ndarray stale, int64_t span,
                bint nesterov, int64_t every):
    """Each run's log(|x| + |v|) after stale SGD with momentum on a
    quadratic direction (len(grid) x replicas; see momentum.growth_rates):
    stale (n_updates x replicas, int64) the delays, each below span (a
    power of two), the runs rescaled every `every` updates."""
    if stale.ndim != 2 or grid.ndim != 1 or every < 1 or span < 1 or span & (span - 1):
        raise ValueError("growth_runs: inconsistent sizes")
    cdef int64_t n = stale.shape[0], replicas = stale.shape[1], c = grid.shape[0]
    if n and (stale.min() < 0 or stale.max() >= span):
        raise ValueError("growth_runs: a delay out of range")
    cdef cnp.ndarray out = np.empty((c, replicas), dtype=np.float64)
    cdef const double *g = <double *>_data(grid, np.float64, "grid")
    cdef const int64_t *st = <int64_t *>_data(stale, np.int64, "stale")
    cdef double *o = <double *>_data(out, np.float64, "out")
    cdef int rc
    with nogil:
        rc = pa_growth_runs(g, c, step_curvature, st, n, replicas, span, nesterov, every, o)
    if rc != 0:
        raise MemoryError("growth_runs: out of memory")
    return out


def row_sample_grid(cnp.ndarray K, cnp.ndarray p0, cnp.ndarray y, str loss,
                    double loss_param, double step, cnp.ndarray grid,
                    cnp.ndarray rows, cnp.ndarray stale, int64_t depth, int64_t every,
                    cnp.ndarray H=None, cnp.ndarray h0=None, cnp.ndarray yh=None,
                    double held_weight=1.0, cnp.ndarray lumps=None, double decay=1.0,
                    double intercept=0.0, cnp.ndarray intercept_rows=None):
    """Mean losses (n_updates // every x len(grid)) of asynchronous SGD on
    the real loss over a row sample with Gram matrix K, starting
    predictions p0 and targets y, for each momentum of grid; see
    momentum.simulate_momentum_grid. rows and stale are int64 draws, stale
    below depth (the staleness law's support). With held-out rows (H their
    products with the sample's rows, m x h; h0, yh their predictions and
    targets) their mean loss has weight held_weight in the losses. lumps
    (one an update, or None) multiply the updated row's own entry K[i, i]
    (see momentum.own_kick_lumps). decay (in [0, 1], the L2 penalty's
    1 - l2 x step) shrinks the weights each update but not the intercept,
    tracked from intercept with row i's share of K[i, :] intercept_rows[i]
    (None: no intercept)."""
    cdef int64_t m = K.shape[0], c = grid.shape[0], n = rows.shape[0], h = 0
    if K.ndim != 2 or K.shape[1] != m or p0.shape[0] != m or y.shape[0] != m \
            or stale.shape[0] != n or every < 1 or depth < 1 or m < 1:
        raise ValueError("row_sample_grid: inconsistent sizes")
    if H is None:
        H = h0 = yh = np.empty(0, dtype=np.float64)
    else:
        h = H.shape[1] if H.ndim == 2 else -1
        if H.ndim != 2 or H.shape[0] != m or h0.shape[0] != h or yh.shape[0] != h:
            raise ValueError("row_sample_grid: inconsistent held-out sizes")
    if n and (rows.min() < 0 or rows.max() >= m or stale.min() < 0 or stale.max() >= depth):
        raise ValueError("row_sample_grid: row or staleness draw out of range")
    cdef int code = LOSSES[loss]
    cdef cnp.ndarray out = np.empty((n // every, c), dtype=np.float64)
    cdef const double *k = <double *>_data(K, np.float64, "K")
    cdef const double *pp = <double *>_data(p0, np.float64, "p0")
    cdef const double *yy = <double *>_data(y, np.float64, "y")
    cdef const double *g = <double *>_data(grid, np.float64, "grid")
    cdef const int64_t *r = <int64_t *>_data(rows, np.int64, "rows")
    cdef const int64_t *st = <int64_t *>_data(stale, np.int64, "stale")
    cdef double *o = <double *>_data(out, np.float64, "out")
    cdef const double *hh = <double *>_data(H, np.float64, "H")
    cdef const double *hp = <double *>_data(h0, np.float64, "h0")
    cdef const double *hy = <double *>_data(yh, np.float64, "yh")
    cdef const double *lp = NULL
    if lumps is not None:
        if lumps.shape[0] != n:
            raise ValueError("row_sample_grid: one lump factor an update")
        lp = <double *>_data(lumps, np.float64, "lumps")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"row_sample_grid: decay must lie in [0, 1], got {decay}")
    if intercept_rows is None:
        intercept_rows = np.zeros(m, dtype=np.float64)
    elif intercept_rows.shape[0] != m:
        raise ValueError("row_sample_grid: one intercept share a sample row")
    cdef const double *kb = <double *>_data(intercept_rows, np.float64, "intercept_rows")
    cdef int rc
    with nogil:
        rc = pa_row_sample_grid(k, pp, yy, m, hh, hp, hy, h, held_weight, code, loss_param,
                                step, g, c, r, st, lp, n, every, decay, intercept, kb, o)
    if rc != 0:
        raise MemoryError("row_sample_grid: out of memory")
    return out


def feature_sample_grid(cnp.ndarray Xs, cnp.ndarray y, cnp.ndarray w0, double b0, str loss,
                        double loss_param, double step, cnp.ndarray grid,
                        cnp.ndarray rows, cnp.ndarray stale, int64_t depth, int64_t every,
                        cnp.ndarray Xh=None, cnp.ndarray yh=None, double held_weight=1.0,
                        cnp.ndarray row_weights=None, double intercept_step=0.0,
                        double decay=1.0):
    """row_sample_grid's losses computed in the features' space: Xs (m x d)
    the sample's dense rows from weights w0 and intercept b0, Xh (h x d)
    the held-out rows; row_weights scale a row's step (None: 1), and
    intercept_step is the intercept's share of it (0: no intercept)."""
    if Xs.ndim != 2:
        raise ValueError("feature_sample_grid: Xs must be a matrix")
    cdef int64_t m = Xs.shape[0], d = Xs.shape[1], c = grid.shape[0], n = rows.shape[0]
    cdef int64_t h = 0
    if y.shape[0] != m or w0.shape[0] != d or stale.shape[0] != n \
            or every < 1 or depth < 1 or m < 1:
        raise ValueError("feature_sample_grid: inconsistent sizes")
    if Xh is None:
        Xh = np.empty((0, d), dtype=np.float64)
        yh = np.empty(0, dtype=np.float64)
    elif yh is None or Xh.ndim != 2 or Xh.shape[1] != d or yh.shape[0] != Xh.shape[0]:
        raise ValueError("feature_sample_grid: inconsistent held-out sizes")
    h = Xh.shape[0]
    if n and (rows.min() < 0 or rows.max() >= m or stale.min() < 0 or stale.max() >= depth):
        raise ValueError("feature_sample_grid: row or staleness draw out of range")
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"feature_sample_grid: decay must lie in [0, 1], got {decay}")
    cdef const double *rw = NULL
    if row_weights is not None:
        if row_weights.shape[0] != m:
            raise ValueError("feature_sample_grid: one weight a sample row")
        rw = <double *>_data(row_weights, np.float64, "row_weights")
    cdef int code = LOSSES[loss]
    cdef cnp.ndarray out = np.empty((n // every, c), dtype=np.float64)
    cdef const double *xs = <double *>_data(Xs, np.float64, "Xs")
    cdef const double *yy = <double *>_data(y, np.float64, "y")
    cdef const double *xh = <double *>_data(Xh, np.float64, "Xh")
    cdef const double *hy = <double *>_data(yh, np.float64, "yh")
    cdef const double *ww = <double *>_data(w0, np.float64, "w0")
    cdef const double *g = <double *>_data(grid, np.float64, "grid")
    cdef const int64_t *r = <int64_t *>_data(rows, np.int64, "rows")
    cdef const int64_t *st = <int64_t *>_data(stale, np.int64, "stale")
    cdef double *o = <double *>_data(out, np.float64, "out")
    cdef int rc
    with nogil:
        rc = pa_feature_sample_grid(xs, yy, m, d, xh, hy, h, held_weight, rw, intercept_step,
                                    ww, b0, code, loss_param, step, g, c, r, st, n, every,
                                    decay, o)
    if rc != 0:
        raise MemoryError("feature_sample_grid: out of memory")
    return out


def linear_epoch(dict params, X, cnp.ndarray y, sample_weight, dict state,
                 int64_t t0, double eta_const, cnp.ndarray order, dict engine,
                 cnp.ndarray hist):
    """One epoch over a linear model, on the engine `engine` describes:
    {"kind": "threads", "n_threads", "update", "staleness_every"} or
    {"kind": "simulated", "n_workers", "schedule", "replay_cdf", "seed"}.

    `X` is a dense C-contiguous array or CSR parts (int32 indices, int64
    indptr). `state` holds the shared model arrays: w, v, q, last (None when
    unused), b and vb (1-element arrays) and u (float), updated in place;
    with params["average"] > 0 (averaged SGD from that update number on),
    avg_sum (n_features + 1, the intercept last), to which the averaged
    iterates are added ("avg_count" in the statistics counts them).
    staleness counts are added to `hist`. Returns epoch statistics."""
    cdef pa_linear_params p
    cdef pa_dataset ds
    cdef pa_linear_model m
    cdef pa_engine_opts o
    cdef pa_sim_opts so
    cdef pa_epoch_stats st
    cdef int status
    cdef bint simulated
    _set_params(&p, params)
    dtype = X.dtype
    ds.dtype = 1 if dtype == np.float32 else 0
    if dtype != np.float32 and dtype != np.float64:
        raise TypeError("X must be float32 or float64")
    ds.n_samples = X.shape[0]
    ds.n_features = X.shape[1]
    if hasattr(X, "indptr"):
        ds.sparse = 1
        ds.data = _data(X.data, dtype, "X.data")
        ds.indices = <const int32_t *>_data(X.indices, np.int32, "X.indices")
        ds.indptr = <const int64_t *>_data(X.indptr, np.int64, "X.indptr")
        if X.indptr.shape[0] != ds.n_samples + 1:
            raise ValueError("X.indptr does not match the number of rows")
    else:
        ds.sparse = 0
        ds.data = _data(X, dtype, "X")
        ds.indices = NULL
        ds.indptr = NULL
    if y.shape[0] != ds.n_samples:
        raise ValueError("y and X have different numbers of rows")
    ds.y = <const double *>_data(y, np.float64, "y")
    ds.sample_weight = NULL
    if sample_weight is not None:
        if sample_weight.shape[0] != ds.n_samples:
            raise ValueError("sample_weight and X have different numbers of rows")
        ds.sample_weight = <const double *>_data(sample_weight, np.float64, "sample_weight")

    cdef cnp.ndarray w = state["w"]
    if w.shape[0] != ds.n_features:
        raise ValueError("w does not match the number of features")
    m.w = <double *>_data(w, np.float64, "w")
    m.v = NULL if state["v"] is None else <double *>_data(state["v"], np.float64, "v")
    m.q = NULL if state["q"] is None else <double *>_data(state["q"], np.float64, "q")
    m.last = NULL if state["last"] is None else <int64_t *>_data(state["last"], np.int64, "last")
    for name in ("v", "q", "last"):
        if state[name] is not None and state[name].shape[0] != ds.n_features:
            raise ValueError(f"{name} does not match the number of features")
    if p.momentum != 0.0 and state["v"] is None:
        raise ValueError("momentum needs the velocity 'v'")
    if ds.sparse and (p.momentum != 0.0 or p.l2 > 0.0) and state["last"] is None:
        raise ValueError("sparse rows with momentum or L2 need the lazy clock 'last'")
    if p.l1 > 0.0 and state["q"] is None:
        raise ValueError("the L1 penalty needs 'q'")
    m.b = <double *>_data(state["b"], np.float64, "b")
    m.vb = <double *>_data(state["vb"], np.float64, "vb")
    m.u = state["u"]
    m.avg_acc = NULL
    m.avg_sum = NULL
    # scikit-learn's weight-vector norms, carried from epoch to epoch of a fit
    m.pen_sq, m.pen_abs = state.get("pen_norms", (-1.0, -1.0))
    if p.average > 0:
        avg_sum = state.get("avg_sum")
        if avg_sum is None or avg_sum.shape[0] != ds.n_features + 1:
            raise ValueError("averaging needs 'avg_sum' of n_features + 1")
        m.avg_sum = <double *>_data(avg_sum, np.float64, "avg_sum")
    m.hot_features = NULL
    m.n_hot = 0
    hot = state.get("hot_features")
    if hot is not None and hot.shape[0] > 0:
        if hot.max() >= ds.n_features or hot.min() < 0:
            raise ValueError("hot_features holds a feature out of range")
        m.hot_features = <const int32_t *>_data(hot, np.int32, "hot_features")
        m.n_hot = hot.shape[0]
    if state["last"] is not None:
        state["last"].fill(0)
    if order.shape[0] > 0 and (order.min() < 0 or order.max() >= ds.n_samples):
        raise ValueError("order holds a row index out of range")

    st.sumloss = 0.0
    st.n_updates = 0
    st.clock_end = 0
    st.staleness_hist = <int64_t *>_data(hist, np.int64, "hist")
    st.hist_len = hist.shape[0]
    st.staleness_max = 0
    st.staleness_count = 0
    st.staleness_sum = 0.0
    st.avg_count = 0
    st.penalty_sum = 0.0
    st.penalty_tracked = 0
    if st.hist_len < 1:
        raise ValueError("hist must have at least one bin")

    simulated = engine["kind"] == "simulated"
    cdef cnp.ndarray cdf
    if simulated:
        so.n_workers = engine["n_workers"]
        so.schedule = SIM_SCHEDULES[engine["schedule"]]
        so.seed = engine["seed"]
        so.order = <const int64_t *>_data(order, np.int64, "order")
        so.n_order = order.shape[0]
        so.poll = _poll_signals
        so.poll_ctx = NULL
        so.replay_cdf = NULL
        so.replay_len = 0
        so.trace = NULL
        so.scratch = NULL
        so.scratch_len = 0
        trace = engine.get("trace")
        if trace is not None:
            if ds.sparse:
                raise ValueError("a trajectory trace needs dense rows")
            if trace.shape[0] < so.n_order or trace.shape[1] != ds.n_features:
                raise ValueError("trace must be (updates, n_features)")
            so.trace = <double *>_data(trace, np.float64, "trace")
        if so.n_workers < 1:
            raise ValueError("n_workers must be >= 1")
        if so.schedule == 2:
            _set_replay(&so, engine)
        with nogil:
            status = pa_linear_epoch_sim(&p, &ds, &m, t0, eta_const, &so, &st)
    elif engine["kind"] == "threads":
        o.n_threads = engine["n_threads"]
        o.update = UPDATES[engine["update"]]
        o.staleness_every = engine["staleness_every"]
        o.order = <const int64_t *>_data(order, np.int64, "order")
        o.n_order = order.shape[0]
        o.poll = _poll_signals
        o.poll_ctx = NULL
        if o.n_threads < 1:
            raise ValueError("n_threads must be >= 1")
        with nogil:
            status = pa_linear_epoch(&p, &ds, &m, t0, eta_const, &o, &st)
    else:
        raise ValueError(f"unknown engine {engine['kind']!r}")
    state["u"] = m.u
    state["pen_norms"] = (m.pen_sq, m.pen_abs)
    if status == PA_INTERRUPTED:
        if _err_occurred() == NULL:
            raise KeyboardInterrupt
        _reraise()
    if status == PA_NOMEM:
        raise MemoryError("the engine could not allocate its state or threads")
    if status == PA_AVG_LAZY:
        raise ValueError(
            "average (averaged SGD) on sparse X needs an L2 decay that leaves "
            "something of the weights (alpha x step < 1) and, with momentum, "
            "|momentum| below that decay (1 - alpha x step); use dense X, a smaller "
            "alpha or step, or a smaller momentum")
    return {"diverged": status == PA_DIVERGED, "sumloss": st.sumloss,
            "avg_count": st.avg_count,
            # scikit-learn's objective's penalty, summed over the reads (None:
            # not kept, as by several workers or lazy rows)
            "penalty_sum": st.penalty_sum if st.penalty_tracked else None,
            "n_updates": st.n_updates, "staleness_max": st.staleness_max,
            "staleness_count": st.staleness_count,
            "staleness_sum": st.staleness_sum}


cdef extern from "losses.h":
    double pa_loss_value(int, double, double, double) nogil
    double pa_loss_dloss(int, double, double, double) nogil


def loss_value(str loss, double param, double y, double p):
    """The loss at prediction p for target y (scikit-learn's definitions)."""
    return pa_loss_value(LOSSES[loss], param, y, p)


def loss_dloss(str loss, double param, double y, double p):
    """The loss's derivative with respect to the prediction p."""
    return pa_loss_dloss(LOSSES[loss], param, y, p)
