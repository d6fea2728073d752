"""Property-based fuzzing of both estimators on both engines (hypothesis).

Random shapes, dtypes (ints, bool, float16/32/64, object arrays of numbers),
layouts (C, Fortran, strided), sparse formats (CSR, CSC, COO; empty rows,
explicit zeros, unsorted indices, duplicate entries), NaN/inf, huge and
tiny values, a single sample or feature, and random hyperparameters,
out-of-range ones included, on the threads engine (n_jobs 1-3) and the
simulated engine (n_workers 1-8).

The contract: every case either fits and then predicts finite values (with
finite coefficients), or raises a clear ValueError / TypeError. Nothing
crashes, hangs or returns NaN coefficients.

Runs are derandomized (the same examples every run, as CI wants); set
PYASYNC_FUZZ_RANDOM=1 for fresh random examples and PYASYNC_FUZZ_EXAMPLES=n
for more of them."""
import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor  # noqa: E402

N_EXAMPLES = int(os.environ.get("PYASYNC_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=N_EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("PYASYNC_FUZZ_RANDOM", "") != "1",
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SCALES = [1.0, 1e-300, 1e-30, 1e-8, 1e8, 1e30, 1e150, 1e300]
DTYPES = ["float64", "float32", "float16", "int64", "int32", "int8", "uint8",
          "bool", "object"]
LAYOUTS = ["C", "F", "strided", "list"]
SPARSE = ["csr", "csc", "coo", "csr_empty_rows", "csr_explicit_zeros",
          "csr_unsorted", "csr_duplicates"]


# ----------------------------------------------------------------- data ----

@st.composite
def dense_values(draw, n, d):
    """An (n, d) float64 array of random magnitude, maybe with NaN/inf."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.RandomState(seed)
    kind = draw(st.sampled_from(["normal", "ints", "constant", "zeros", "mixed"]))
    if kind == "normal":
        X = rng.standard_normal((n, d))
    elif kind == "ints":
        X = rng.randint(-3, 4, size=(n, d)).astype(np.float64)
    elif kind == "constant":
        X = np.full((n, d), draw(st.sampled_from([1.0, -2.5, 7.0])))
    elif kind == "zeros":
        X = np.zeros((n, d))
    else:
        X = rng.standard_normal((n, d)) * 10.0 ** rng.randint(-20, 20, size=(n, d))
    with np.errstate(all="ignore"):
        X = X * draw(st.sampled_from(SCALES))
    bad = draw(st.sampled_from([None] * 9 + [np.nan, np.inf, -np.inf]))
    if bad is not None:
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))] = bad
    return X


def as_dtype(X, dtype):
    """X converted the way a user might hand it over (may overflow to inf
    for float16/32, or wrap for small ints: the data is random anyway)."""
    with np.errstate(all="ignore"):
        if dtype == "object":
            return X.astype(object)
        if dtype == "bool":
            return X != 0
        if np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            return np.nan_to_num(np.clip(X, info.min, info.max)).astype(dtype)
        return X.astype(dtype)


def as_layout(X, layout):
    if layout == "F":
        return np.asfortranarray(X)
    if layout == "strided":
        Z = np.empty((X.shape[0], 2 * X.shape[1]), dtype=X.dtype)
        Z[:, ::2] = X
        return Z[:, ::2]
    if layout == "list":
        return X.tolist()
    return X


def as_sparse(X, fmt, rng):
    X = X.copy()
    X[rng.rand(*X.shape) < 0.5] = 0  # sparse-looking
    if fmt == "csr_empty_rows":
        X[::2] = 0
    M = sp.csr_matrix(X)
    if fmt == "csc":
        return M.tocsc()
    if fmt == "coo":
        return M.tocoo()
    if fmt == "csr_explicit_zeros":
        D = np.ones_like(X)  # every entry stored, the zeros explicitly
        M = sp.csr_matrix(D)
        M.data[:] = X.ravel()
        return M
    if fmt == "csr_unsorted":
        M = M.copy()
        for i in range(M.shape[0]):
            a, b = M.indptr[i], M.indptr[i + 1]
            M.indices[a:b] = M.indices[a:b][::-1].copy()
            M.data[a:b] = M.data[a:b][::-1].copy()
        M.has_sorted_indices = False
        return M
    if fmt == "csr_duplicates":
        # every stored entry split into two halves: the same matrix, summed
        rows = np.repeat(np.arange(M.shape[0]), np.diff(M.indptr))
        r = np.concatenate([rows, rows])
        c = np.concatenate([M.indices, M.indices])
        v = np.concatenate([M.data / 2, M.data / 2])
        order = np.argsort(r, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=M.shape[0]))])
        return sp.csr_matrix((v[order], c[order], indptr), shape=M.shape)
    return M


@st.composite
def inputs(draw):
    n = draw(st.sampled_from([1, 2, 3, 5, 8, 13, 20, 30]))
    d = draw(st.sampled_from([1, 2, 3, 7]))
    X = draw(dense_values(n, d))
    rng = np.random.RandomState(draw(st.integers(0, 2**16)))
    if draw(st.booleans()):
        fmt = draw(st.sampled_from(SPARSE))
        # (scipy.sparse has no float16)
        dtype = draw(st.sampled_from(["float64", "float32", "int32", "int64",
                                      "bool"]))
        with np.errstate(all="ignore"):
            M = as_sparse(X, fmt, rng)
            M = M.astype(bool) if dtype == "bool" else M.astype(dtype)
        return M, f"{fmt}/{dtype}"
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    return as_layout(as_dtype(X, dtype), layout), f"dense/{dtype}/{layout}"


# ----------------------------------------------------- hyperparameters ----

CLASSIFIER_LOSSES = ["hinge", "log_loss", "modified_huber", "squared_hinge",
                     "perceptron", "squared_error", "huber"]
REGRESSOR_LOSSES = ["squared_error", "huber", "epsilon_insensitive",
                    "squared_epsilon_insensitive"]

# name: (valid values, out-of-range or ill-typed values)
PARAMS = {
    "penalty": (["l2", "l1", "elasticnet", None], ["l3"]),
    "alpha": ([1e-4, 0.0, 0.1, 10.0], [-1.0, np.nan, np.inf, 1e300, "x"]),
    "l1_ratio": ([0.0, 0.15, 1.0], [-0.1, 1.5, np.nan]),
    "learning_rate": (["constant", "optimal", "invscaling", "adaptive"], ["fast"]),
    "eta0": ([1e-3, 0.01, 0.5, 10.0, 1e6], [0.0, -0.1, np.inf, np.nan]),
    "power_t": ([0.25, 0.5, 0.0, 2.0, -0.5], [np.nan, -50.0, 1e300]),
    "momentum": ([0.0, 0.0, 0.5, -0.5, 0.95, -0.95, "auto"],
                 [1.0, -1.0, 1.5, np.nan, "fast"]),
    "epsilon": ([0.1, 0.0, 5.0], [-1.0, np.nan]),
    "fit_intercept": ([True, False], [1, "yes"]),
    "shuffle": ([True, False], [None]),
    "max_iter": ([1, 2, 5], [0, -1, 2.5]),
    "tol": ([None, 1e-3, 0.0, -1.0], [np.nan]),
    "n_iter_no_change": ([1, 5], [0]),
    "update": (["racy", "atomic", "locked"], ["fast"]),
    "early_stopping": ([False, False, False, True], ["no"]),
    "validation_fraction": ([0.1, 0.5], [0.0, 1.0, 2.0]),
    "average": ([False, False, True, 3], [-1, 1.5]),
}
THREADS = {"n_jobs": ([1, 2, 3], [0, 1.5])}
SIMULATED = {
    "n_workers": ([1, 2, 3, 5, 8], [0, -2]),
    "staleness": (["exponential", "round_robin", "fixed", [1, 2, 3], [0, 0, 5]],
                  [[-1, 2], [], [0, 0], "lifo"]),
}


@st.composite
def hyperparameters(draw, regressor):
    """Valid values everywhere, then (in about half the examples) one or
    two parameters set out of range: most examples really fit."""
    losses = REGRESSOR_LOSSES if regressor else CLASSIFIER_LOSSES
    table = dict(PARAMS, loss=(losses, ["nope", None]))
    if not regressor:
        table["class_weight"] = ([None, None, "balanced"], ["heavy"])
    threads = draw(st.booleans())
    table.update(THREADS if threads else SIMULATED)
    prm = {name: draw(st.sampled_from(good)) for name, (good, _) in table.items()}
    prm["asynchrony"] = "threads" if threads else "simulated"
    prm["random_state"] = draw(st.integers(0, 2**31 - 1))
    if not threads and prm["staleness"] == "fixed":
        prm["delay"] = draw(st.sampled_from([0, 1, 4]))
    n_bad = draw(st.sampled_from([0, 0, 0, 0, 1, 1, 2]))
    for name in draw(st.lists(st.sampled_from(sorted(table)), min_size=n_bad,
                              max_size=n_bad, unique=True)):
        prm[name] = draw(st.sampled_from(table[name][1]))
    if not threads and draw(st.integers(0, 19)) == 0:
        prm["delay"] = draw(st.sampled_from([-1, 2.5, 3]))  # misused delay
    return prm


# -------------------------------------------------------------- checks ----

def fit_or_clear_error(est, X, y):
    """Fits; returns True, or False when a clear ValueError/TypeError is
    raised (anything else propagates and fails the test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
        except (ValueError, TypeError) as exc:
            assert str(exc), f"{type(exc).__name__} without a message"
            assert not hasattr(est, "coef_"), "a failed first fit left coef_"
            hypothesis.event(f"{type(exc).__name__}: {str(exc)[:50]}")
            return False
    hypothesis.event("fitted")
    return True


def check_fitted(est, X, what):
    assert np.all(np.isfinite(est.coef_)), f"non-finite coef_ ({what})"
    assert np.all(np.isfinite(est.intercept_)), f"non-finite intercept_ ({what})"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = est.predict(X)
    assert len(pred) == (X.shape[0] if hasattr(X, "shape") else len(X))
    return pred


@FUZZ
@given(data=inputs(), prm=hyperparameters(regressor=False),
       labels=st.sampled_from(["binary", "binary", "multiclass", "single",
                               "strings", "float"]),
       seed=st.integers(0, 2**16))
def test_fuzz_classifier(data, prm, labels, seed):
    X, what = data
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    rng = np.random.RandomState(seed)
    y = {"binary": lambda: rng.randint(0, 2, n),
         "multiclass": lambda: rng.randint(0, 4, n),
         "single": lambda: np.zeros(n, dtype=int),
         "strings": lambda: np.array(["a", "b", "c"])[rng.randint(0, 3, n)],
         "float": lambda: rng.randint(0, 2, n).astype(np.float64) * 2 - 1}[labels]()
    est = AsyncSGDClassifier(**prm)
    if not fit_or_clear_error(est, X, y):
        return
    pred = check_fitted(est, X, what)
    assert set(np.asarray(pred).tolist()) <= set(est.classes_.tolist())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = est.decision_function(X)
    assert np.all(np.isfinite(scores)), f"non-finite decision_function ({what})"


@FUZZ
@given(data=inputs(), prm=hyperparameters(regressor=True),
       target=st.sampled_from(["linear", "noise", "huge", "tiny", "constant", "nan"]),
       seed=st.integers(0, 2**16))
def test_fuzz_regressor(data, prm, target, seed):
    X, what = data
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    rng = np.random.RandomState(seed)
    y = rng.standard_normal(n)
    if target == "huge":
        y = y * 1e200
    elif target == "tiny":
        y = y * 1e-200
    elif target == "constant":
        y = np.full(n, 3.0)
    elif target == "nan":
        y[rng.randint(n)] = np.nan
    est = AsyncSGDRegressor(**prm)
    if not fit_or_clear_error(est, X, y):
        return
    pred = check_fitted(est, X, what)
    assert np.all(np.isfinite(pred)), f"non-finite predictions ({what})"


@FUZZ
@given(data=inputs(), prm=hyperparameters(regressor=False),
       seed=st.integers(0, 2**16))
def test_fuzz_failed_refit_keeps_model(data, prm, seed):
    """A fitted classifier refit on fuzzed input and hyperparameters: either
    the refit works, or it raises a clear error and leaves the previous
    model (coef_, intercept_) as it was."""
    rng = np.random.RandomState(seed)
    X0 = rng.standard_normal((20, 3))
    y0 = (X0[:, 0] > 0).astype(int)
    est = AsyncSGDClassifier(max_iter=3, tol=None, random_state=0).fit(X0, y0)
    coef, intercept = est.coef_.copy(), est.intercept_.copy()
    X, what = data
    n = X.shape[0] if hasattr(X, "shape") else len(X)
    y = rng.randint(0, 2, n)
    est.set_params(**prm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            est.fit(X, y)
        except (ValueError, TypeError):
            np.testing.assert_array_equal(est.coef_, coef)
            np.testing.assert_array_equal(est.intercept_, intercept)
            return
    check_fitted(est, X, what)
