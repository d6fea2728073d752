"""Bad input and bad hyperparameters: clear ValueErrors, correct
conversions of unusual but valid arrays, and divergence that fails loudly
without corrupting the model."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from pyasync import AsyncMLPClassifier, AsyncMLPRegressor, AsyncSGDClassifier, AsyncSGDRegressor
from pyasync.momentum import (best_explicit_momentum, epoch_staleness, estimate_momentum,
                              fit_geometric, growth_rates, heaviest_stable, implicit_momentum,
                              momentum_recursion, recurrence_rate, staleness_pmf,
                              total_momentum)
from pyasync.staleness import StalenessStats

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [AsyncSGDClassifier, AsyncSGDRegressor]


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((120, 6))
    y_clf = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    y_reg = X @ np.arange(1.0, 7.0) + 0.1 * rng.standard_normal(120)
    return X, y_clf, y_reg


def _y(Est, data):
    return data[1] if Est is AsyncSGDClassifier else data[2]


# ------------------------------------------------------- non-finite X ----

@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_non_finite_X_raises(Est, bad, fmt, data):
    X, y = data[0].copy(), _y(Est, data)
    X[7, 2] = bad
    if fmt == "sparse":
        X = sp.csr_matrix(X)
    with pytest.raises(ValueError, match="NaN|infinity"):
        Est().fit(X, y)
    est = Est(random_state=0, max_iter=5).fit(data[0], y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        est.predict(X)
    with pytest.raises(ValueError, match="NaN|infinity"):
        est.partial_fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_non_finite_y_raises(Est, data):
    X, y = data[0], _y(Est, data).astype(float)
    y[3] = np.nan
    with pytest.raises(ValueError):
        Est().fit(X, y)


def test_non_finite_sample_weight_raises(data):
    X, y = data[0], data[1]
    sw = np.ones(X.shape[0])
    sw[0] = np.nan
    with pytest.raises(ValueError):
        AsyncSGDClassifier().fit(X, y, sample_weight=sw)


# ------------------------------------------------------------- shapes ----

@pytest.mark.parametrize("Est", ESTIMATORS)
def test_one_dimensional_X_raises(Est, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="2D"):
        Est().fit(X[:, 0], y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_three_dimensional_X_raises(Est, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError):
        Est().fit(X[:, :, None], y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_y_length_mismatch_raises(Est, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        Est().fit(X, y[:-1])
    with pytest.raises(ValueError):
        Est().partial_fit(X, y[:-1], **({"classes": [0, 1]}
                                         if Est is AsyncSGDClassifier else {}))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_sample_weight_length_mismatch_raises(Est, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError):
        Est().fit(X, y, sample_weight=np.ones(X.shape[0] - 1))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_fit_without_y_raises(Est, data):
    # scikit-learn's check_requires_y_none wants one of its messages
    with pytest.raises(ValueError, match="requires y to be passed|y should be a 1d"):
        Est().fit(data[0], None)


def test_single_class_raises(data):
    X = data[0]
    with pytest.raises(ValueError, match="class"):
        AsyncSGDClassifier().fit(X, np.zeros(X.shape[0]))
    with pytest.raises(ValueError, match="class"):
        AsyncSGDClassifier().fit(X, np.full(X.shape[0], "only"))
    with pytest.raises(ValueError, match="class"):
        AsyncSGDClassifier().partial_fit(X, np.zeros(X.shape[0]), classes=[0])


def test_continuous_target_for_classifier_raises(data):
    X, _, y_reg = data
    with pytest.raises(ValueError, match="Unknown label type|continuous"):
        AsyncSGDClassifier().fit(X, y_reg)


# --------------------------------------------------- hyperparameters ----

@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("name, value", [
    ("loss", "no_such_loss"),
    ("penalty", "l3"),
    ("learning_rate", "fastest"),
    ("update", "magic"),
    ("asynchrony", "mpi"),
])
def test_unknown_choice_raises_naming_the_parameter(Est, name, value, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match=name):
        Est(**{name: value}).fit(X, y)


def test_classification_loss_for_regressor_raises(data):
    X, _, y = data
    with pytest.raises(ValueError, match="loss"):
        AsyncSGDRegressor(loss="hinge").fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("momentum", [1.0, -1.0, 2, np.nan, np.inf, -1.5, "0.5"])
def test_momentum_outside_open_unit_interval_raises(Est, momentum, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="momentum"):
        Est(momentum=momentum).fit(X, y)
    kw = {"classes": [0, 1]} if Est is AsyncSGDClassifier else {}
    with pytest.raises(ValueError, match="momentum"):
        Est(momentum=momentum).partial_fit(X, y, **kw)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("momentum", [0.999, -0.999, 0, np.float32(0.5)])
def test_momentum_inside_interval_accepted(Est, momentum, data):
    X, y = data[0], _y(Est, data)
    est = Est(momentum=momentum, learning_rate="constant", eta0=1e-4,
              max_iter=3, random_state=0).fit(X, y)
    assert np.all(np.isfinite(est.coef_))


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("n_jobs", [0, 1.5, "2", True])
def test_bad_n_jobs_raises_naming_n_jobs(Est, n_jobs, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="n_jobs"):
        Est(n_jobs=n_jobs).fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("name, value", [
    ("alpha", -1.0), ("l1_ratio", 1.5), ("eta0", -0.1), ("max_iter", 0),
    ("max_iter", 2.5), ("validation_fraction", 1.0), ("n_iter_no_change", 0),
    ("epsilon", -1.0), ("tol", np.nan), ("tol", -1.0), ("eta0", 0.0),
])
def test_bad_numeric_hyperparameter_raises_naming_it(Est, name, value, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match=name):
        Est(**{name: value}).fit(X, y)


def test_eta0_zero_with_constant_rate_raises(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="eta0"):
        AsyncSGDClassifier(learning_rate="constant", eta0=0.0).fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_n_workers_checked_on_the_threads_engine_too(Est, data):
    """As scikit-learn checks every parameter, used or not: n_workers=0 is
    refused though the threads engine takes n_jobs."""
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="n_workers"):
        Est(n_workers=0).fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS + [AsyncMLPClassifier])
def test_target_momentum_without_a_chosen_momentum_is_refused(Est, data):
    """target_momentum steers a chosen momentum: with a fixed one it would
    be ignored, so it is refused."""
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="target_momentum is only used with"):
        Est(momentum=0.5, target_momentum=0.9).fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_verbose_takes_a_bool_and_warm_start_must_be_one(Est, data, capsys):
    """As scikit-learn's SGD estimators: verbose=True prints epochs;
    warm_start=1 is refused."""
    X, y = data[0], _y(Est, data)
    Est(verbose=True, max_iter=2, tol=None).fit(X, y)
    assert "Epoch 2" in capsys.readouterr().out
    with pytest.raises(ValueError, match="warm_start must be a bool"):
        Est(warm_start=1).fit(X, y)
    with pytest.raises(ValueError, match="'auto', got 'probe'"):
        Est(momentum="probe").fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS + [AsyncMLPClassifier])
def test_malformed_sparse_input_is_refused_not_read(Est, data):
    """Indices or row pointers outside the matrix would be read out of
    bounds (by the kernels, and by scipy's products at predict): refused."""
    X, y = data[0], (data[2] if Est is AsyncSGDRegressor else data[1])
    S = sp.csr_matrix(X)
    bad_index = sp.csr_matrix((S.data, S.indices + 100, S.indptr), shape=S.shape)
    bad_ptr = sp.csr_matrix((S.data, S.indices, S.indptr), shape=S.shape)
    bad_ptr.indptr = bad_ptr.indptr.copy()
    bad_ptr.indptr[-1] += 7
    for bad, message in ((bad_index, "X.indices"), (bad_ptr, "X.indptr")):
        with pytest.raises(ValueError, match=message):
            Est(max_iter=2).fit(bad, y)
    fitted = Est(max_iter=2).fit(S, y)
    with pytest.raises(ValueError, match="X.indices"):
        fitted.predict(bad_index)


@pytest.mark.parametrize("Est", ESTIMATORS + [AsyncMLPClassifier])
def test_malformed_coo_and_short_data_are_refused_not_read(Est, data):
    """A COO matrix's coordinates outside it, or a CSR with fewer values
    than indices, would be read (or written, converting) out of bounds."""
    X, y = data[0], (data[2] if Est is AsyncSGDRegressor else data[1])
    bad_col, bad_row = sp.coo_matrix(X), sp.coo_matrix(X)
    bad_col.col[0], bad_row.row[0] = 10**6, -1
    short = sp.csr_matrix(X)
    short.data = short.data[:10].copy()
    for bad, message in ((bad_col, "X.col"), (bad_row, "X.row"), (short, "X.data")):
        with pytest.raises(ValueError, match=message):
            Est(max_iter=2).fit(bad, y)
        with pytest.raises(ValueError, match=message):
            Est(max_iter=2).fit(X, y).predict(bad)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_64_bit_sparse_indices_fit_as_32_bit(Est, data):
    """load_svmlight_file gives int64 indices: the same fit as int32's."""
    X, y = data[0], _y(Est, data)
    S = sp.csr_matrix(X)
    wide = S.copy()  # assigned, not constructed: scipy's constructor narrows them back
    wide.indices, wide.indptr = S.indices.astype(np.int64), S.indptr.astype(np.int64)
    assert wide.indices.dtype == np.int64
    kw = dict(n_jobs=1, random_state=0, max_iter=3, tol=None)
    np.testing.assert_array_equal(Est(**kw).fit(wide, y).coef_, Est(**kw).fit(S, y).coef_)


def test_l1_ratio_none_only_without_elasticnet(data):
    """As SGDClassifier: l1_ratio=None is fine where no elastic net uses it."""
    X, y, _ = data
    AsyncSGDClassifier(penalty="l2", l1_ratio=None, max_iter=2, tol=None).fit(X, y)
    with pytest.raises(ValueError, match="l1_ratio must be set"):
        AsyncSGDClassifier(penalty="elasticnet", l1_ratio=None).fit(X, y)


def test_balanced_class_weight_refused_by_partial_fit(data):
    """One batch's class frequencies are not the data's: scikit-learn
    refuses, and says how to compute the weights once."""
    X, y, _ = data
    with pytest.raises(ValueError, match="compute_class_weight"):
        AsyncSGDClassifier(class_weight="balanced").partial_fit(X, y, classes=np.unique(y))


def test_optimal_rate_needs_positive_alpha(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="alpha"):
        AsyncSGDClassifier(learning_rate="optimal", alpha=0.0).fit(X, y)


def test_bad_average_is_named(data):
    X, y, _ = data
    for bad in (-2, 0.5, "true", None, 2**63):
        with pytest.raises(ValueError, match="average"):
            AsyncSGDClassifier(average=bad).fit(X, y)


# ------------------------------------------- conversions of valid input ----

def _variants(X):
    """The same values as unusual but valid arrays."""
    big = np.zeros((X.shape[0] * 2, X.shape[1] * 3))
    big[::2, ::3] = X
    return {
        "fortran": np.asfortranarray(X),
        "row-strided": np.repeat(X, 2, axis=0)[::2],
        "col-strided": big[::2, ::3],
        "transposed-view": np.ascontiguousarray(X.T).T,
        "list": X.tolist(),
    }


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("variant", ["fortran", "row-strided", "col-strided",
                                     "transposed-view", "list"])
def test_non_contiguous_input_matches_c_contiguous(Est, variant, data):
    X, y = data[0], _y(Est, data)
    Xv = _variants(X)[variant]
    if not isinstance(Xv, list):
        assert_array_equal(Xv, X)
    params = dict(n_jobs=1, random_state=0, max_iter=5, tol=None)
    ref = Est(**params).fit(np.ascontiguousarray(X, dtype=np.float64), y)
    est = Est(**params).fit(Xv, y)
    assert_array_equal(est.coef_, ref.coef_)
    assert_array_equal(est.intercept_, ref.intercept_)
    assert_array_equal(est.predict(Xv), ref.predict(X))


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, bool, np.float16])
def test_int_and_other_dtypes_are_converted(Est, dtype, data):
    y = _y(Est, data)
    rng = np.random.RandomState(1)
    Xi = rng.randint(0, 4, size=(data[0].shape[0], 6)).astype(dtype)
    params = dict(n_jobs=1, random_state=0, max_iter=5, tol=None)
    ref = Est(**params).fit(Xi.astype(np.float64), y)
    est = Est(**params).fit(Xi, y)
    assert_array_equal(est.coef_, ref.coef_)
    assert_array_equal(est.intercept_, ref.intercept_)
    assert_array_equal(est.predict(Xi), ref.predict(Xi.astype(np.float64)))


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("fmt", ["csc", "coo", "lil", "csr_int64_index"])
def test_other_sparse_formats_match_csr(Est, fmt, data):
    X, y = data[0], _y(Est, data)
    X = np.where(np.abs(X) > 0.8, X, 0.0)
    csr = sp.csr_matrix(X)
    if fmt == "csr_int64_index":
        other = csr.copy()
        other.indices = other.indices.astype(np.int64)
        other.indptr = other.indptr.astype(np.int64)
    else:
        other = csr.asformat(fmt)
    params = dict(n_jobs=1, random_state=0, max_iter=5, tol=None)
    ref = Est(**params).fit(csr, y)
    try:
        est = Est(**params).fit(other, y)
    except ValueError as exc:
        # scikit-learn's SGD refuses 64-bit sparse indices too
        assert fmt == "csr_int64_index" and "indices" in str(exc)
        return
    assert_array_equal(est.coef_, ref.coef_)


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_non_canonical_csr_is_summed(Est, data):
    """Duplicate and unsorted column indices mean the summed matrix."""
    X, y = data[0], _y(Est, data)
    X = np.where(np.abs(X) > 0.8, X, 0.0)
    coo = sp.coo_matrix(X)
    # split every entry in two halves, in reverse order within the rows
    rows = np.r_[coo.row, coo.row][::-1]
    cols = np.r_[coo.col, coo.col][::-1]
    vals = np.r_[coo.data / 2, coo.data / 2][::-1]
    order = np.argsort(rows, kind="stable")
    messy = sp.csr_matrix((vals[order], cols[order],
                           np.r_[0, np.cumsum(np.bincount(rows, minlength=X.shape[0]))]),
                          shape=X.shape)
    assert not messy.has_canonical_format
    params = dict(n_jobs=1, random_state=0, max_iter=5, tol=None)
    ref = Est(**params).fit(sp.csr_matrix(X), y)
    est = Est(**params).fit(messy, y)
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-12, atol=1e-12)
    # the caller's matrix is left as it was
    assert not messy.has_canonical_format


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_input_not_modified(Est, data):
    X, y = data[0].copy(), _y(Est, data).copy()
    Xf = np.asfortranarray(X)
    sw = np.linspace(0.5, 1.5, X.shape[0])
    X0, Xf0, y0, sw0 = X.copy(), Xf.copy(), y.copy(), sw.copy()
    Est(random_state=0, max_iter=5, n_jobs=2).fit(X, y, sample_weight=sw)
    Est(random_state=0, max_iter=5, n_jobs=2).fit(Xf, y)
    assert_array_equal(X, X0)
    assert_array_equal(Xf, Xf0)
    assert_array_equal(y, y0)
    assert_array_equal(sw, sw0)


def test_column_vector_y_is_accepted(data):
    X, y, y_reg = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = AsyncSGDClassifier(random_state=0, max_iter=5).fit(X, y[:, None])
        reg = AsyncSGDRegressor(random_state=0, max_iter=5).fit(X, y_reg[:, None])
    assert clf.predict(X).shape == (X.shape[0],)
    assert reg.predict(X).shape == (X.shape[0],)


# ---------------------------------------------------------- empty data ----

@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_empty_data_raises(Est, fmt, data):
    X, y = data[0], _y(Est, data)
    conv = sp.csr_matrix if fmt == "sparse" else np.asarray
    with pytest.raises(ValueError, match="0 sample"):
        Est().fit(conv(X[:0]), y[:0])
    with pytest.raises(ValueError, match="0 feature"):
        Est().fit(conv(np.zeros((X.shape[0], 0))), y)
    est = Est(random_state=0, max_iter=5).fit(X, y)
    with pytest.raises(ValueError, match="0 sample"):
        est.partial_fit(conv(X[:0]), y[:0])
    with pytest.raises(ValueError, match="0 sample"):
        est.predict(conv(X[:0]))


# ---------------------------------------------------- feature mismatch ----

@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_wrong_number_of_features_raises(Est, fmt, data):
    X, y = data[0], _y(Est, data)
    conv = sp.csr_matrix if fmt == "sparse" else np.asarray
    est = Est(random_state=0, max_iter=5).fit(conv(X), y)
    for Xw in (X[:, :-1], np.hstack([X, X[:, :1]])):
        with pytest.raises(ValueError, match="features"):
            est.predict(conv(Xw))
        with pytest.raises(ValueError, match="features"):
            est.partial_fit(conv(Xw), y)
        with pytest.raises(ValueError, match="features"):
            est.score(conv(Xw), y)
    if Est is AsyncSGDClassifier:
        with pytest.raises(ValueError, match="features"):
            est.decision_function(conv(X[:, :-1]))


# ---------------------------------------------------------- divergence ----
#
# scikit-learn clips the loss derivative at 1e12 and never lets the L2 decay
# go negative, so eta0=1e10 on values ~1e3 gives huge but finite weights
# (in scikit-learn too). A rate of 1e300 overflows on the very first update.

HUGE_ETA0 = 1e300


@pytest.fixture(scope="module")
def unscaled():
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1e3, size=(300, 5))
    y_reg = X @ rng.uniform(0, 1e3, size=5)
    y_clf = (y_reg > np.median(y_reg)).astype(np.int64)
    y_multi = np.digitize(y_reg, np.quantile(y_reg, [1 / 3, 2 / 3]))
    return X, y_clf, y_reg, y_multi


def _unscaled_y(Est, unscaled):
    return unscaled[2] if Est is AsyncSGDRegressor else unscaled[1]


def _divergent(Est, **kw):
    params = dict(learning_rate="constant", eta0=HUGE_ETA0, random_state=0)
    if Est is AsyncSGDClassifier:
        params["loss"] = "squared_error"
    params.update(kw)
    return Est(**params)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_divergence_raises_naming_the_epoch(Est, fmt, n_jobs, momentum, unscaled):
    X, y = unscaled[0], _unscaled_y(Est, unscaled)
    if fmt == "sparse":
        X = sp.csr_matrix(X)
    est = _divergent(Est, n_jobs=n_jobs, momentum=momentum)
    with pytest.raises(ValueError, match="epoch"):
        est.fit(X, y)
    coef = getattr(est, "coef_", None)
    assert coef is None or np.all(np.isfinite(coef))


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_divergence_in_partial_fit_leaves_model_unchanged(Est, n_jobs, unscaled):
    X, y = unscaled[0], _unscaled_y(Est, unscaled)
    est = _divergent(Est, eta0=1e-12, n_jobs=n_jobs, max_iter=3,
                     momentum=0.3).fit(X, y)
    before = {name: np.copy(getattr(est, name))
              for name in ("coef_", "intercept_", "t_", "n_iter_")}
    curve = list(est.loss_curve_)
    est.set_params(eta0=HUGE_ETA0)
    with pytest.raises(ValueError, match="epoch"):
        est.partial_fit(X, y)
    for name, value in before.items():
        assert_array_equal(getattr(est, name), value, err_msg=name)
    assert est.loss_curve_ == curve
    assert np.all(np.isfinite(est.coef_))
    # and it still predicts, and learns again once the rate is sane
    est.predict(X)
    est.set_params(eta0=1e-12)
    est.partial_fit(X, y)
    assert np.all(np.isfinite(est.coef_))


def test_divergence_of_a_later_class_leaves_no_trace():
    """One-vs-rest classes are fit one after another. When a later class
    diverges, the failed partial_fit must not have committed anything of the
    earlier classes (their momentum included): the model continues exactly
    as if the failed call had never happened."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 6))
    y = np.argmax(X[:, :3], axis=1)
    params = dict(momentum=0.5, learning_rate="constant", eta0=0.01,
                  n_jobs=1, random_state=0, max_iter=5, tol=None)
    ref = AsyncSGDClassifier(**params).fit(X, y)
    est = AsyncSGDClassifier(**params).fit(X, y)
    # a row that class 0's model already classifies with margin (hinge: no
    # gradient, so class 0's epoch succeeds) but class 1's model does not:
    # scaled by 1e200 its update overflows
    scores = ref.decision_function(X)
    i = np.flatnonzero((y == 0) & (scores[:, 0] > 1) & (scores[:, 1] > -1))[0]
    coef = est.coef_.copy()
    est.set_params(eta0=HUGE_ETA0)
    with pytest.raises(ValueError, match="epoch"):
        est.partial_fit(X[i:i + 1] * 1e200, y[i:i + 1])
    assert_array_equal(est.coef_, coef)
    est.set_params(eta0=0.01)
    ref.partial_fit(X, y)
    est.partial_fit(X, y)
    assert_array_equal(est.coef_, ref.coef_)
    assert_array_equal(est.intercept_, ref.intercept_)


def test_retry_after_failed_first_partial_fit(unscaled):
    """A first partial_fit that diverges must not leave a half-initialised
    model: retrying with a sane rate (and classes again) works."""
    X, y = unscaled[0], unscaled[1]
    est = _divergent(AsyncSGDClassifier)
    with pytest.raises(ValueError, match="epoch"):
        est.partial_fit(X, y, classes=[0, 1])
    est.set_params(eta0=1e-12)
    est.partial_fit(X, y, classes=[0, 1])
    assert np.all(np.isfinite(est.coef_))
    assert est.t_ == X.shape[0] + 1


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_failed_first_fit_leaves_estimator_unfitted(Est, unscaled):
    X, y = unscaled[0], _unscaled_y(Est, unscaled)
    est = _divergent(Est)
    with pytest.raises(ValueError, match="epoch"):
        est.fit(X, y)
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_divergence_on_refit_keeps_previous_model(unscaled):
    X, y = unscaled[0], unscaled[2]
    est = AsyncSGDRegressor(learning_rate="constant", eta0=1e-12,
                            random_state=0, max_iter=3).fit(X, y)
    coef = est.coef_.copy()
    est.set_params(eta0=HUGE_ETA0)
    with pytest.raises(ValueError, match="epoch"):
        est.fit(X, y)
    assert np.all(np.isfinite(est.coef_))
    assert_array_equal(est.coef_, coef)


@pytest.mark.parametrize("Est", ESTIMATORS + [AsyncMLPClassifier])
def test_a_refit_refused_after_validation_keeps_the_fitted_model(Est, data):
    """Validation sets n_features_in_ before a later check refuses the fit
    (sample weights of the wrong length): the fitted model still predicts."""
    X, y = data[0], (data[2] if Est is AsyncSGDRegressor else data[1])
    est = Est(max_iter=2, random_state=0).fit(X, y)
    before = est.predict(X)
    with pytest.raises(ValueError):
        est.fit(X[:, :3], y, sample_weight=np.ones(7))
    assert est.n_features_in_ == X.shape[1]
    assert_array_equal(est.predict(X), before)
    with pytest.raises(ValueError):
        est.partial_fit(X[:, :3], y)
    assert_array_equal(est.predict(X), before)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("momentum", [0.0, "auto"])
def test_a_non_finite_starting_point_is_refused(Est, momentum, data):
    """NaN in coef_init would be rolled back to by momentum="auto" (the
    start is its first safe point): refused, naming it."""
    X, y = data[0], (data[2] if Est is AsyncSGDRegressor else data[1])
    est = Est(momentum=momentum, max_iter=2)
    with pytest.raises(ValueError, match="coef_init contains NaN"):
        est.fit(X, y, coef_init=np.full(X.shape[1], np.nan))
    with pytest.raises(ValueError, match="intercept_init contains NaN"):
        est.fit(X, y, intercept_init=[np.inf])
    assert not hasattr(est, "coef_")


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_a_float32_model_past_float32s_range_is_refused(Est, data):
    """The model is kept in the input's precision: float32 X whose fit
    ends with weights past float32's range (computed in float64, finite)
    raises instead of storing inf; float64 X keeps them."""
    X, y = data[0], (data[2] if Est is AsyncSGDRegressor else data[1])
    huge = dict(coef_init=np.full(X.shape[1], 1e39))
    kw = dict(max_iter=1, tol=None, alpha=0.0, learning_rate="constant", eta0=1e-300)
    est = Est(**kw).fit(X, y, **huge)
    assert est.coef_.dtype == np.float64 and np.all(np.isfinite(est.coef_))
    est32 = Est(**kw)
    with pytest.raises(ValueError, match="exceeds float32's range"):
        est32.fit(X.astype(np.float32), y, **huge)
    assert not hasattr(est32, "coef_")


@pytest.mark.parametrize("Est", [AsyncSGDRegressor, AsyncMLPRegressor])
def test_a_fit_that_climbs_away_says_so(Est):
    """64 simulated workers at a step one worker takes: the loss climbs
    by orders of magnitude, finite, so nothing raises; the fit warns."""
    from sklearn.datasets import make_regression
    X, y = make_regression(200, 5, random_state=0)
    y = y / y.std() if Est is AsyncMLPRegressor else y
    step = (dict(activation="tanh", learning_rate_init=0.05, batch_size=8, momentum=0.0)
            if Est is AsyncMLPRegressor else dict(learning_rate="constant", eta0=0.1))
    with pytest.warns(ConvergenceWarning, match="climbed .* the fit is diverging"):
        try:
            Est(asynchrony="simulated", n_workers=64, random_state=0, max_iter=20,
                **step).fit(X, y)
        except ValueError:  # went past the floating-point range instead
            pytest.fail("diverged to non-finite instead of climbing")


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_a_regressor_that_blew_up_in_its_first_epoch_says_so(scale):
    """Unscaled rows (x 50) at the default step: the first epoch blows the
    loss up to ~1e26 and the decaying step brings it down from there, so
    it never climbs past the first epoch's, yet the model is far worse
    than predicting 0 (R^2 ~ -1e21): the fit warns. The same rows scaled
    fit well and do not."""
    rng = np.random.RandomState(0)
    X = rng.randn(300, 5)
    y = X @ np.arange(1.0, 6.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        est = AsyncSGDRegressor(max_iter=8, tol=None, random_state=0).fit(scale * X, y)
    blew_up = [w for w in caught if "times that of predicting 0" in str(w.message)]
    assert len(blew_up) == (scale > 1) and (est.score(scale * X, y) < 0) == (scale > 1)
    assert all(w.category is ConvergenceWarning for w in blew_up)


def test_huge_but_finite_rate_gives_finite_weights(unscaled):
    """eta0=1e10 on values ~1e3: like scikit-learn (whose loss derivative is
    clipped at 1e12), the weights are huge but finite, never NaN."""
    X, y = unscaled[0], unscaled[2]
    est = AsyncSGDRegressor(learning_rate="constant", eta0=1e10,
                            random_state=0, max_iter=5)
    try:
        est.fit(X, y)
    except ValueError as exc:
        assert "epoch" in str(exc)
    else:
        assert np.all(np.isfinite(est.coef_))
        assert np.all(np.isfinite(est.intercept_))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_early_stopping_with_all_zero_validation_weights_raises(Est, data):
    """As scikit-learn: refused before any epoch, not a ZeroDivisionError."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
    X, y = data[0], _y(Est, data)
    split = (StratifiedShuffleSplit if Est is AsyncSGDClassifier else ShuffleSplit)(
        test_size=0.1, random_state=0)
    _, val = next(split.split(X, y))
    weights = np.ones(len(y))
    weights[val] = 0.0
    with pytest.raises(ValueError, match="validation set are all zero"):
        Est(early_stopping=True, random_state=0).fit(X, y, sample_weight=weights)


def test_multiclass_coef_init_must_have_a_row_a_class():
    """A transposed or flat coef_init is refused, not reshaped into rows."""
    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((60, 4)), np.arange(60) % 3
    for bad in (np.ones((4, 3)), np.ones(12), np.ones((2, 4))):
        with pytest.raises(ValueError, match="coef_init does not match"):
            AsyncSGDClassifier(max_iter=1, tol=None).fit(X, y, coef_init=bad)
    binary = (y == 0).astype(int)
    for shape in ((4,), (1, 4)):  # binary: n_features values, as scikit-learn takes them
        AsyncSGDClassifier(max_iter=1, tol=None).fit(X, binary, coef_init=np.ones(shape))


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_more_threads_than_the_engine_starts_raise(Est, data):
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match="n_jobs must be at most 4096"):
        Est(n_jobs=5000).fit(X, y)
    Est(n_jobs=5000, asynchrony="simulated", max_iter=1, tol=None).fit(X, y)


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize("name, value", [("local_steps", 0), ("ray_address", 3),
                                         ("class_weight", "foo")])
def test_parameters_of_other_settings_are_checked_too(Est, name, value, data):
    if name == "class_weight" and Est is AsyncSGDRegressor:
        pytest.skip("the regressor has no class_weight")
    X, y = data[0], _y(Est, data)
    with pytest.raises(ValueError, match=name):
        Est(**{name: value}).fit(X, y)


# ---------------------------------------------------- theory functions ----

NAN_RUN = np.full((5, 2), np.nan)
STILL_RUN = np.zeros((5, 2))


def _stats(mean):
    return StalenessStats(np.array([1, 2]), mean, 1, 3)


def _bad(call, match, id):
    return pytest.param(call, match, id=id)


@pytest.mark.parametrize("call, match", [
    # past 2**53 workers q = 1 - 1/M rounds to 1: a tail that never falls
    _bad(lambda: staleness_pmf(1e17), "reaches past .* pass max_staleness", "pmf-1e17"),
    _bad(lambda: staleness_pmf(2 ** 60), "reaches past .* pass max_staleness", "pmf-2**60"),
    _bad(lambda: staleness_pmf("3"), "n_workers must be a real number", "pmf-str"),
    _bad(lambda: staleness_pmf(None), "n_workers must be a real number", "pmf-None"),
    _bad(lambda: staleness_pmf(True), "n_workers must be a real number", "pmf-bool"),
    _bad(lambda: implicit_momentum("3"), "n_workers must be a real number", "implicit-str"),
    _bad(lambda: implicit_momentum(True), "n_workers must be a real number", "implicit-bool"),
    _bad(lambda: implicit_momentum([]), "n_workers must be .* non-empty", "implicit-empty"),
    _bad(lambda: implicit_momentum([2, np.nan]), "n_workers must be finite", "implicit-nan"),
    _bad(lambda: total_momentum(None, 0.5), "explicit must be a real number", "total-None"),
    _bad(lambda: total_momentum(np.nan, 0.5), r"explicit must be finite and in \(-1, 1\)",
         "total-nan"),
    _bad(lambda: total_momentum(5.0, 0.5), r"explicit must be finite and in \(-1, 1\)",
         "total-5"),
    _bad(lambda: total_momentum(0.5, np.nan), r"implicit must be finite and in \[0, 1\)",
         "total-implicit-nan"),
    _bad(lambda: total_momentum(0.5, 1.0), r"implicit must be finite and in \[0, 1\)",
         "total-implicit-1"),
    _bad(lambda: total_momentum(0.5, -0.1), r"implicit must be finite and in \[0, 1\)",
         "total-implicit-negative"),
    _bad(lambda: fit_geometric(_stats(np.nan)), "histogram.mean must be finite and >= 0",
         "fit-mean-nan"),
    _bad(lambda: fit_geometric(_stats(-5.0)), "histogram.mean must be finite and >= 0",
         "fit-mean-negative"),
    _bad(lambda: momentum_recursion("x", 0.1), "explicit must be a real number",
         "recursion-str"),
    _bad(lambda: momentum_recursion(0.1, None), "implicit must be a real number",
         "recursion-None"),
    _bad(lambda: recurrence_rate(0.5, 0.5, np.nan, 1.0), "step must be finite", "rate-step"),
    _bad(lambda: recurrence_rate(0.5, 0.5, 0.1, np.inf), "curvature must be finite",
         "rate-curvature"),
    _bad(lambda: best_explicit_momentum(0.5, np.nan, [1.0]), "step must be finite",
         "best-step"),
    _bad(lambda: best_explicit_momentum(0.5, 0.1, [1.0, np.inf]), "curvatures must be finite",
         "best-curvatures"),
    _bad(lambda: best_explicit_momentum(0.5, 0.1, [1.0], grid=[0.5, 1.5]),
         "grid must be finite", "best-grid"),
    _bad(lambda: heaviest_stable([], 0.1, [1.0]), "grid must be .* non-empty",
         "heaviest-empty-grid"),
    _bad(lambda: heaviest_stable([0.5], "x", [1.0]), "step_curvature must be a real number",
         "heaviest-str"),
    _bad(lambda: growth_rates([0.0, 1.5], 0.1, [1.0]), r"grid must be finite and in \(-1, 1\)",
         "growth-momentum-1.5"),
    _bad(lambda: growth_rates([0.5], np.inf, [1.0]), "step_curvature must be finite",
         "growth-inf"),
    _bad(lambda: growth_rates([0.5], 0.1), "pmf or draws, got neither", "growth-neither"),
    _bad(lambda: growth_rates([0.5], 0.1, [1.0, np.nan]),
         "pmf holds a count that is not finite", "growth-pmf-nan"),
    _bad(lambda: growth_rates([0.5], 0.1, draws=[1, 2]), "draws must be a non-empty 2-d array",
         "growth-draws-1d"),
    _bad(lambda: epoch_staleness(np.nan, 5), "n_workers must be finite", "epoch-nan"),
    _bad(lambda: epoch_staleness(4, np.inf), "n_batches must be finite", "epoch-inf"),
    _bad(lambda: estimate_momentum(NAN_RUN, STILL_RUN), "trajectory must be finite",
         "estimate-nan"),
    _bad(lambda: estimate_momentum(NAN_RUN, STILL_RUN, step=0.1), "trajectory must be finite",
         "estimate-nan-step"),
    _bad(lambda: estimate_momentum(STILL_RUN, NAN_RUN), "gradients must be finite",
         "estimate-nan-gradients"),
    _bad(lambda: estimate_momentum(STILL_RUN, STILL_RUN, step=np.nan), "step must be finite",
         "estimate-step-nan"),
])
def test_theory_functions_name_bad_input(call, match):
    """The public theory functions refuse bad input with a ValueError naming
    the argument and what is wrong: no OverflowError, numpy ufunc error,
    IndexError or LinAlgError, and no NaN or out-of-range answer."""
    with pytest.raises(ValueError, match=match):
        call()


def test_theory_functions_still_take_valid_input():
    assert staleness_pmf(2 ** 60, max_staleness=3).size == 4
    assert staleness_pmf(np.float32(4)).size > 1
    np.testing.assert_allclose(implicit_momentum(np.array([1, 4])), [0.0, 0.75])
    assert total_momentum(-0.25, np.float32(0.75)) == 0.5
    np.testing.assert_allclose(momentum_recursion(np.array([0.5, -0.5]), 0.5)[0], [1.0, 0.0])
    assert heaviest_stable([0.5, -0.5], np.nan, [1.0]) == -0.5  # documented: the lowest
