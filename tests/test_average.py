"""Averaged SGD (`average=True` or an update number): coef_ and intercept_
are the mean of the iterates from update `average` on, against the eager
reference's mean on every path of the core (dense and CSR rows, the L2
decay scale, L1, momentum: on CSR rows the lazy gaps' sums), against scikit-learn's
averaged SGD, through partial_fit, and on every engine."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification
from sklearn.linear_model import SGDClassifier, SGDRegressor

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor, _sgd

from test_reference import (EPOCHS, EST_LOSSES, N, TOL, binary_target,
                            estimator, grid_orders, hyper, make_data, model_err,
                            reference_for, shuffled_orders, sklearn_shuffle_seeds)

AVERAGES = (True, 1, 37, 150)  # from the start, mid-epoch, in the last epoch


def reference_average(est, X, y, sw, orders, **kw):
    ref = reference_for(est, X, binary_target(est, y), sw, orders,
                        average=int(est.average), **kw)
    if ref["n_avg"] == 0:  # averaging has not begun: the last iterate
        return ref, ref["coef"], ref["intercept"]
    mean = ref["avg_sum"] / ref["n_avg"]
    return ref, mean[:-1], mean[-1]


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("schedule", ("constant", "optimal", "invscaling"))
@pytest.mark.parametrize("penalty", ("l2", "l1", "elasticnet", None))
@pytest.mark.parametrize("kind,loss", [EST_LOSSES[1], EST_LOSSES[0], EST_LOSSES[-4]],
                         ids=lambda v: str(v))
def test_average_matches_reference(kind, loss, penalty, schedule, sparse, average):
    """Every penalty and schedule, dense and CSR, float64 and float32, with
    and without sample weights, with and without momentum."""
    failures = []
    for momentum in (0.0, 0.5):
        for dtype in (np.float64, np.float32):
            X, y, sw_all = make_data(sparse, dtype, kind)
            for sw in (None, sw_all):
                est = estimator(kind, loss, penalty, schedule, momentum, True, average=average)
                est.fit(X, y, sample_weight=sw)
                ref, coef, intercept = reference_average(est, X, y, sw, grid_orders())
                err = model_err(est.coef_.ravel(), est.intercept_[0], coef, intercept)
                if err > TOL:
                    failures.append((momentum, np.dtype(dtype).name, sw is not None, err))
                # the last iterates, kept to go on from, are the reference's too
                assert model_err(est._standard_coef.ravel(), est._standard_intercept[0],
                                 ref["coef"], ref["intercept"]) <= TOL
    assert not failures, failures


@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("schedule", ("constant", "optimal", "invscaling"))
@pytest.mark.parametrize("penalty", ("l2", None))
@pytest.mark.parametrize("kind,loss", [("clf", "log_loss"), ("clf", "hinge"),
                                       ("reg", "squared_error"), ("reg", "huber")])
def test_average_matches_sklearn(kind, loss, penalty, schedule, sparse, average):
    """scikit-learn's averaged SGD, shuffle=False, without an L1 part: its
    lazy average counts an L1 truncation as if made before every iterate
    since its last rescale, where pyasync averages the iterates."""
    X, y, sw = make_data(sparse, np.float64, kind)
    est = estimator(kind, loss, penalty, schedule, 0.0, True, average=average)
    est.fit(X, y, sample_weight=sw)
    sk_cls = SGDClassifier if kind == "clf" else SGDRegressor
    sk = sk_cls(loss=loss, penalty=penalty, learning_rate=schedule, tol=None,
                shuffle=False, max_iter=EPOCHS, average=average, **hyper(schedule, loss))
    sk.fit(X, y, sample_weight=sw)
    assert model_err(est.coef_.ravel(), est.intercept_[0], sk.coef_.ravel(),
                     sk.intercept_[0]) <= TOL
    assert est.t_ == sk.t_


def test_average_not_begun_is_last_iterate():
    """average past the fit's updates: coef_ is the last iterate, as
    scikit-learn's, and a later call that passes it averages from there."""
    X, y, sw = make_data(False, np.float64, "reg")
    est = estimator("reg", "squared_error", "l2", "constant", 0.0, True,
                    average=N * EPOCHS + 10)
    plain = estimator("reg", "squared_error", "l2", "constant", 0.0, True)
    est.fit(X, y)
    plain.fit(X, y)
    np.testing.assert_array_equal(est.coef_, plain.coef_)
    sk = SGDRegressor(penalty="l2", learning_rate="constant", tol=None, shuffle=False,
                      max_iter=EPOCHS, average=N * EPOCHS + 10, **hyper("constant", "x"))
    sk.fit(X, y)
    for _ in range(2):
        est.partial_fit(X, y)
        sk.partial_fit(X, y)
    assert model_err(est.coef_, est.intercept_[0], sk.coef_, sk.intercept_[0]) <= TOL
    assert not np.allclose(est.coef_, est._standard_coef.ravel())


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("kind,loss", [("clf", "modified_huber"), ("reg", "squared_error")])
def test_average_partial_fit_continues(kind, loss, sparse):
    """partial_fit calls continue the last iterate and the average: three
    calls are one reference run of three epochs (without L1, whose
    accumulators restart each call)."""
    X, y, sw = make_data(sparse, np.float64, kind, seed=3)
    est = estimator(kind, loss, "l2", "invscaling", 0.0, True, average=20)
    for _ in range(3):
        if kind == "clf":
            est.partial_fit(X, y, classes=np.unique(y), sample_weight=sw)
        else:
            est.partial_fit(X, y, sample_weight=sw)
    ref, coef, intercept = reference_average(est, X, y, sw, grid_orders(3))
    assert model_err(est.coef_.ravel(), est.intercept_[0], coef, intercept) <= TOL
    assert est.t_ == ref["t"]


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_average_multiclass_shuffled(sparse):
    """One-vs-rest, shuffled: each class's mean against the reference's
    with that class's seed and orders."""
    X, y, sw = make_data(sparse, np.float64, "clf", seed=2, n_classes=3)
    est = estimator("clf", "hinge", "l2", "optimal", 0.0, True, shuffle=True,
                    random_state=7, average=True)
    est.fit(X, y, sample_weight=sw)
    for k, (cls, seed) in enumerate(zip(est.classes_, sklearn_shuffle_seeds(7, 3))):
        ref = reference_for(est, X, np.where(y == cls, 1.0, -1.0), sw,
                            shuffled_orders(N, seed, EPOCHS), average=1)
        mean = ref["avg_sum"] / ref["n_avg"]
        assert model_err(est.coef_[k], est.intercept_[k], mean[:-1], mean[-1]) <= TOL


def big_problem(sparse, seed=0):
    X, y = make_classification(4000, 30, n_informative=10, random_state=seed)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0.0))
    return X, y


@pytest.mark.parametrize("momentum", (0.0, 0.5))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_average_on_every_engine(sparse, momentum):
    """One simulated worker is one thread, bit for bit; lock-free threads
    and simulated workers average their iterates about as well as
    scikit-learn averages its own (training accuracy within 0.06: the
    threads' interleaving varies), and the average is not the last
    iterate. Racy threads on dense rows are only held to beating the
    majority class by 0.05: two threads that run at once overwrite each
    other's changes to the weights (and the one velocity), which the
    average still counts (600 fits on 2 idle cores: 0.653-0.778 without
    momentum, 0.606-0.778 with 0.5, against scikit-learn's 0.7745;
    atomic 0.758-0.781; README). (Locked threads average too; an unfair
    lock lets one thread run far ahead of the clock that orders the
    iterates, so their accuracy is not held to it.)"""
    X, y = big_problem(sparse)
    common = dict(loss="log_loss", average=True, max_iter=5, tol=None, random_state=0)
    sk = SGDClassifier(**common).fit(X, y)
    # with momentum, from the second epoch, as README advises for threads:
    # a thread that runs behind takes the schedule's large first steps late,
    # and momentum carries them on (from update 1: 0.71 at times, loaded)
    common.update(momentum=momentum, average=True if momentum == 0.0 else X.shape[0] + 1)
    one = AsyncSGDClassifier(n_jobs=1, **common).fit(X, y)
    sim1 = AsyncSGDClassifier(asynchrony="simulated", n_workers=1, **common).fit(X, y)
    np.testing.assert_array_equal(one.coef_, sim1.coef_)
    for est in (AsyncSGDClassifier(n_jobs=2, **common),
                AsyncSGDClassifier(n_jobs=2, update="atomic", **common),
                AsyncSGDClassifier(n_jobs=2, update="locked", **common),
                AsyncSGDClassifier(asynchrony="simulated", n_workers=8, **common)):
        est.fit(X, y)
        if est.asynchrony == "threads" and est.update == "racy" and not sparse:
            assert est.score(X, y) >= max(np.mean(y), 1.0 - np.mean(y)) + 0.05, est
        elif est.update != "locked":
            assert est.score(X, y) >= sk.score(X, y) - 0.06, est
        assert np.all(np.isfinite(est.coef_))
        assert not np.allclose(est.coef_, est._standard_coef)
    sim_a = AsyncSGDClassifier(asynchrony="simulated", n_workers=8, **common).fit(X, y)
    sim_b = AsyncSGDClassifier(asynchrony="simulated", n_workers=8, **common).fit(X, y)
    np.testing.assert_array_equal(sim_a.coef_, sim_b.coef_)


def test_average_counts_each_update_once():
    """Threads whose chunks differ by a row take an epoch's clocks 1..n
    between them: as many iterates averaged as updates made, on every
    thread count."""
    X, y, _ = make_data(False, np.float64, "reg", n=7)
    for n_jobs in (1, 2, 3, 4, 7):
        est = AsyncSGDRegressor(average=True, n_jobs=n_jobs, max_iter=1, tol=None)
        for calls in (1, 2, 3):
            est.partial_fit(X, y)
            assert est._average_count[0] == est.t_ - 1 == 7 * calls, n_jobs


def test_average_settles_noise():
    """The point of averaging: at a constant step too large to settle,
    the mean iterate's loss is below the last iterate's."""
    X, y = big_problem(False, seed=1)
    est = AsyncSGDRegressor(learning_rate="constant", eta0=0.05, average=2000, max_iter=5,
                            tol=None, random_state=0)
    est.fit(X, y.astype(float))
    mse_avg = np.mean((est.predict(X) - y) ** 2)
    mse_last = np.mean((X @ est._standard_coef.ravel() + est._standard_intercept[0] - y) ** 2)
    assert mse_avg < 0.9 * mse_last


def test_average_warm_start_restarts_average():
    """warm_start: the next fit starts from coef_ (the mean) and averages
    afresh, as SGDClassifier's (which resets t_). (SGDRegressor's goes on
    from its last iterate and keeps a share of the old mean in the new;
    pyasync's regressor does as its classifier.)"""
    X, y, _ = make_data(False, np.float64, "clf")
    kw = dict(penalty="l2", learning_rate="constant", tol=None, shuffle=False, max_iter=2,
              average=True, warm_start=True, **hyper("constant", "log_loss"))
    est, sk = AsyncSGDClassifier(loss="log_loss", **kw), SGDClassifier(loss="log_loss", **kw)
    for _ in range(2):
        est.fit(X, y)
        sk.fit(X, y)
    assert model_err(est.coef_, est.intercept_[0], sk.coef_, sk.intercept_[0]) <= TOL
    reg = AsyncSGDRegressor(**kw)
    Xr, yr, _ = make_data(False, np.float64, "reg")
    first = reg.fit(Xr, yr).coef_.copy()
    again = estimator("reg", "squared_error", "l2", "constant", 0.0, True, max_iter=2,
                      average=True).fit(Xr, yr, coef_init=first,
                                        intercept_init=reg.intercept_.copy())
    reg.fit(Xr, yr)
    np.testing.assert_allclose(reg.coef_, again.coef_, rtol=0, atol=1e-12)


def test_average_bad_input():
    X, y = big_problem(True)
    for bad in (-1, 1.5, "yes"):
        with pytest.raises(ValueError, match="average"):
            AsyncSGDClassifier(average=bad).fit(X, y)
    # a step that zeroes the weights (alpha x step >= 1) leaves no scale to
    # keep sparse rows by: averaging them is refused, naming the way out
    with pytest.raises(ValueError, match="average.*alpha"):
        AsyncSGDClassifier(average=True, learning_rate="constant", eta0=0.5, alpha=2.0,
                           max_iter=1, tol=None).fit(X, y)
    # a decay that leaves next to nothing (alpha x step just under 1) is
    # averaged in pieces of one update, not looped over
    est = AsyncSGDRegressor(average=True, learning_rate="constant", eta0=1.0,
                            alpha=0.9999995, max_iter=2, tol=None).fit(
        sp.csr_matrix(np.eye(5)), np.arange(5.0))
    assert np.all(np.isfinite(est.coef_))
    # the same on dense rows is averaged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = AsyncSGDClassifier(average=True, learning_rate="constant", eta0=0.5, alpha=2.0,
                                 max_iter=1, tol=None).fit(X.toarray(), y)
    assert np.all(np.isfinite(est.coef_))


@pytest.mark.parametrize("momentum,strength", [(0.0, 0.3), (0.5, 0.3), (-0.5, 0.6)])
@pytest.mark.parametrize("engine", [dict(n_jobs=1), dict(asynchrony="simulated", n_workers=1)])
def test_average_strong_decay_on_sparse_rows(engine, momentum, strength):
    """An L2 decay whose product over an epoch would underflow the scale
    sparse rows are stored by: the epoch runs in pieces, and averages as
    the reference does. With momentum the rows are not scaled: the epoch
    runs whole (at strength 0.6 its decays' product underflows: the gaps'
    decays come from their logarithms)."""
    n = 2000
    X, y, sw = make_data(True, np.float64, "reg", n=n, seed=6)
    est = estimator("reg", "squared_error", "l2", "constant", momentum, True, alpha=strength,
                    eta0=strength, average=True, **engine)
    # cut into pieces without momentum
    assert bool(_sgd.decay_pieces(est._engine_params(True), strength, 0, n)) == (momentum == 0.0)
    est.fit(X, y, sample_weight=sw)
    ref, coef, intercept = reference_average(est, X, y, sw, grid_orders(n=n))
    assert model_err(est.coef_, est.intercept_[0], coef, intercept) <= TOL
    assert model_err(est._standard_coef.ravel(), est._standard_intercept[0], ref["coef"],
                     ref["intercept"]) <= TOL
    assert np.max(np.abs(coef)) > 0.1  # the decay leaves a model to compare


@pytest.mark.parametrize("average", (True, 37))
@pytest.mark.parametrize("momentum", (0.9, 0.8995, -0.9))
def test_average_lazy_rows_at_momentum_past_the_decay(momentum, average):
    """CSR rows with |momentum| at or past the L2 decay (1 - alpha x step),
    where the gaps' factors have no table: at a constant step the decay is
    constant, so the closed form the gaps take there is exact (past the
    limit d == mu, to its 1e-3 band) and the mean is the reference's."""
    X, y, _ = make_data(True, np.float64, "reg")
    for eta0, alpha in ((0.3, 0.4), (0.05, 2.0)):
        est = estimator("reg", "squared_error", "l2", "constant", momentum, True,
                        average=average, eta0=eta0, alpha=alpha).fit(X, y)
        ref, coef, intercept = reference_average(est, X, y, None, grid_orders())
        # within the band (not at d == mu itself) weights and mean take the limit
        in_band = 0.0 < abs(1.0 - alpha * eta0 - momentum) <= 1e-3
        assert model_err(est.coef_.ravel(), est.intercept_[0], coef,
                         intercept) <= (1e-3 if in_band else TOL)
