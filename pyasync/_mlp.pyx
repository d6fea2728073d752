# cython: language_level=3, boundscheck=False, wraparound=False
"""The bridge of the MLP core: checks buffers, releases the GIL, runs an
engine over one epoch, returns statistics."""
import mmap
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, int32_t, uint64_t

cnp.import_array()

cdef extern from "Python.h":
    int _check_signals "PyErr_CheckSignals" ()
    void *_err_occurred "PyErr_Occurred" ()

cdef extern from "mlp.h":
    ctypedef struct pa_dataset:
        int dtype, sparse
        int64_t n_samples, n_features
        const void *data
        const int64_t *indptr
        const int32_t *indices
        const double *y
        const double *sample_weight
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
    ctypedef struct pa_mlp_params:
        int n_layers
        int64_t units[12]
        int activation, output
        double alpha, lr, momentum
        int nesterov
        int64_t batch_size
    ctypedef struct pa_mlp_data:
        pa_dataset x
        const double *Y
    int PA_MLP_MAX_LAYERS
    int64_t pa_mlp_n_params(const pa_mlp_params *) nogil
    int pa_mlp_epoch(const pa_mlp_params *, const pa_mlp_data *, double *, double *,
                     const pa_engine_opts *, pa_epoch_stats *) nogil
    int64_t pa_mlp_sim_scratch_len(const pa_mlp_params *, const pa_sim_opts *) nogil
    int pa_mlp_epoch_sim(const pa_mlp_params *, const pa_mlp_data *, double *, double *,
                         const pa_sim_opts *, pa_epoch_stats *) nogil
    int pa_mlp_loss_grad(const pa_mlp_params *, const pa_mlp_data *, const double *,
                         const int64_t *, int64_t, double *, double *) nogil
    int PA_OK, PA_INTERRUPTED, PA_DIVERGED, PA_NOMEM

ACTIVATIONS = {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3, "softmax": 4, "exp": 5}
UPDATES = {"racy": 0, "atomic": 1, "locked": 2}
SIM_SCHEDULES = {"exponential": 0, "round_robin": 1, "replay": 2}
MAX_UNITS = 1 << 16


cdef int _poll_signals(void *ctx) noexcept nogil:
    with gil:
        return 1 if _check_signals() != 0 else 0


cdef int _reraise() except -1:
    # The interrupt left its exception set: let it propagate.
    return -1


include "_arrays.pxi"


cdef void _set_params(pa_mlp_params *p, dict prm) except *:
    units = list(prm["units"])
    if not 2 <= len(units) <= PA_MLP_MAX_LAYERS + 1:
        raise ValueError(f"an MLP has 0 to {PA_MLP_MAX_LAYERS - 1} hidden layers")
    for u in units:
        if not 1 <= u <= MAX_UNITS:
            raise ValueError(f"layer widths must be in [1, {MAX_UNITS}], got {units}")
    p.n_layers = len(units) - 1
    for i in range(PA_MLP_MAX_LAYERS + 1):
        p.units[i] = units[i] if i < len(units) else 0
    p.activation = ACTIVATIONS[prm["activation"]]
    p.output = ACTIVATIONS[prm["output"]]
    if p.activation in (4, 5) or p.output not in (0, 1, 4, 5):
        raise ValueError("bad activation or output")
    p.alpha = prm["alpha"]
    p.lr = prm["lr"]
    p.momentum = prm["momentum"]
    p.nesterov = 1 if prm["nesterov"] else 0
    p.batch_size = prm["batch_size"]
    if p.batch_size < 1:
        raise ValueError("batch_size must be >= 1")


def n_params(dict params):
    cdef pa_mlp_params p
    _set_params(&p, params)
    return pa_mlp_n_params(&p)


cdef void _set_data(pa_mlp_data *d, X, cnp.ndarray Y, pa_mlp_params *p,
                    cnp.ndarray sample_weight) except *:
    dtype = X.dtype
    if dtype != np.float32 and dtype != np.float64:
        raise TypeError("X must be float32 or float64")
    d.x.dtype = 1 if dtype == np.float32 else 0
    d.x.n_samples = X.shape[0]
    d.x.n_features = X.shape[1]
    d.x.y = NULL
    d.x.sample_weight = NULL
    if sample_weight is not None:
        if sample_weight.ndim != 1 or sample_weight.shape[0] != d.x.n_samples:
            raise ValueError("sample_weight must hold one weight a row")
        d.x.sample_weight = <const double *>_data(sample_weight, np.float64,
                                                  "sample_weight")
    if d.x.n_features != p.units[0]:
        raise ValueError("X does not match the number of input units")
    if hasattr(X, "indptr"):
        d.x.sparse = 1
        d.x.data = _data(X.data, dtype, "X.data")
        d.x.indices = <const int32_t *>_data(X.indices, np.int32, "X.indices")
        d.x.indptr = <const int64_t *>_data(X.indptr, np.int64, "X.indptr")
        if X.indptr.shape[0] != d.x.n_samples + 1:
            raise ValueError("X.indptr does not match the number of rows")
        if X.indices.shape[0] and (X.indices.min() < 0 or X.indices.max() >= d.x.n_features):
            raise ValueError("X.indices holds a column out of range")
    else:
        d.x.sparse = 0
        d.x.data = _data(X, dtype, "X")
        d.x.indices = NULL
        d.x.indptr = NULL
    if Y.ndim != 2 or Y.shape[0] != d.x.n_samples or Y.shape[1] != p.units[p.n_layers]:
        raise ValueError("Y must be (n_samples, n_outputs)")
    d.Y = <const double *>_data(Y, np.float64, "Y")


cdef _check_order(cnp.ndarray order, int64_t n):
    if order.ndim != 1:
        raise ValueError("order must be 1-d")
    if order.shape[0] > 0 and (order.min() < 0 or order.max() >= n):
        raise ValueError("order holds a row index out of range")


def loss_grad(dict params, X, cnp.ndarray Y, cnp.ndarray w, cnp.ndarray rows,
              cnp.ndarray sample_weight=None):
    """(loss, flat gradient) of the batch `rows` at flat weights w, as one
    update computes them (rows weighted by `sample_weight`, if given)."""
    cdef pa_mlp_params p
    cdef pa_mlp_data d
    cdef int status
    cdef double loss = 0.0
    params = dict(params, batch_size=max(1, rows.shape[0]))
    _set_params(&p, params)
    _set_data(&d, X, Y, &p, sample_weight)
    if w.shape[0] != pa_mlp_n_params(&p):
        raise ValueError("w does not match the layout")
    _check_order(rows, d.x.n_samples)
    if rows.shape[0] < 1:
        raise ValueError("rows is empty")
    cdef cnp.ndarray grad = np.zeros(w.shape[0])
    cdef const double *wp = <const double *>_data(w, np.float64, "w")
    cdef const int64_t *rp = <const int64_t *>_data(rows, np.int64, "rows")
    cdef double *gp = <double *>_data(grad, np.float64, "grad")
    cdef int64_t n = rows.shape[0]
    with nogil:
        status = pa_mlp_loss_grad(&p, &d, wp, rp, n, &loss, gp)
    if status == PA_NOMEM:
        raise MemoryError
    return loss, grad


def mlp_epoch(dict params, X, cnp.ndarray Y, cnp.ndarray w, cnp.ndarray v,
              cnp.ndarray order, dict engine, cnp.ndarray hist,
              cnp.ndarray sample_weight=None):
    """One epoch of minibatch SGD over the flat weights `w` (velocity `v`),
    updated in place, on the engine `engine` describes:
    {"kind": "threads", "n_threads", "update", "staleness_every"} or
    {"kind": "simulated", "n_workers", "schedule", "replay_cdf", "seed"},
    the last with an optional "scratch": a list, kept from epoch to epoch,
    that holds the memory of its pending gradients.
    Staleness counts are added to `hist`; rows are weighted by
    `sample_weight`, if given. Returns epoch statistics."""
    cdef pa_mlp_params p
    cdef pa_mlp_data d
    cdef pa_engine_opts o
    cdef pa_sim_opts so
    cdef pa_epoch_stats st
    cdef int status
    cdef double *wp
    cdef double *vp
    _set_params(&p, params)
    _set_data(&d, X, Y, &p, sample_weight)
    cdef int64_t P = pa_mlp_n_params(&p)
    if w.shape[0] != P or v.shape[0] != P:
        raise ValueError("w and v must hold the layout's parameters")
    wp = <double *>_data(w, np.float64, "w")
    vp = <double *>_data(v, np.float64, "v")
    _check_order(order, d.x.n_samples)
    if hist.shape[0] < 1:
        raise ValueError("hist must have at least one bin")
    st.sumloss = 0.0
    st.n_updates = 0
    st.clock_end = 0
    st.staleness_hist = <int64_t *>_data(hist, np.int64, "hist")
    st.hist_len = hist.shape[0]
    st.staleness_max = 0
    st.staleness_count = 0
    st.staleness_sum = 0.0
    if engine["kind"] == "simulated":
        so.n_workers = engine["n_workers"]
        so.schedule = SIM_SCHEDULES[engine["schedule"]]
        so.seed = engine["seed"]
        so.order = <const int64_t *>_data(order, np.int64, "order")
        so.n_order = order.shape[0]
        so.replay_cdf = NULL
        so.replay_len = 0
        so.trace = NULL
        so.poll = _poll_signals
        so.poll_ctx = NULL
        if so.n_workers < 1:
            raise ValueError("n_workers must be >= 1")
        if so.schedule == 2:
            _set_replay(&so, engine)
        so.scratch = NULL
        so.scratch_len = 0
        kept = engine.get("scratch")
        if kept is not None:  # a list that keeps the memory from epoch to epoch
            need = pa_mlp_sim_scratch_len(&p, &so)
            if not kept or kept[0].shape[0] < need:
                # small pages, as malloc's: numpy asks large arrays for huge
                # ones, whose first allocation in a process compacted memory
                # for 0.6-1 s (201 MB) where faulting small pages takes 0.14 s
                kept[:] = [np.frombuffer(mmap.mmap(-1, need * 8), dtype=np.float64)]
            so.scratch = <double *>_data(kept[0], np.float64, "scratch")
            so.scratch_len = kept[0].shape[0]
        with nogil:
            status = pa_mlp_epoch_sim(&p, &d, wp, vp, &so, &st)
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
            status = pa_mlp_epoch(&p, &d, wp, vp, &o, &st)
    else:
        raise ValueError(f"unknown engine {engine['kind']!r}")
    if status == PA_INTERRUPTED:
        if _err_occurred() == NULL:
            raise KeyboardInterrupt
        _reraise()
    if status == PA_NOMEM:
        raise MemoryError("the engine could not allocate its state or threads")
    return {"diverged": status == PA_DIVERGED, "sumloss": st.sumloss,
            "n_updates": st.n_updates, "staleness_max": st.staleness_max,
            "staleness_count": st.staleness_count,
            "staleness_sum": st.staleness_sum}
