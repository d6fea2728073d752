"""The simulated engine (asynchrony="simulated": M virtual workers in one
thread, deterministic for a seed) and the momentum theory around it
(pyasync.momentum, pyasync.measure, momentum="auto").

The engine's contract, from csrc/engine_sim.c and pyasync/linear.py:
  - each epoch starts with every worker reading (the epoch's first M rows,
    at clock 0) and drains at the end; M is min(n_workers, rows);
  - "exponential": a uniformly random busy worker writes next, so staleness
    is geometric, P(s = l) = (1/M) (1 - 1/M)**l, mean M - 1;
  - "round_robin": workers in turn, staleness exactly M - 1 after the first
    M - 1 writes of the epoch (0, 1, ..., M - 2); "fixed" with delay k is
    round robin over k + 1 workers;
  - a histogram (counts, or a fit's staleness_) is replayed: each write draws
    its staleness from it;
  - every write's staleness is recorded (no sampling, unlike threads).
With one worker every schedule is the sequential update, bit for bit the
threads engine with n_jobs=1."""
import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor, _sgd
from pyasync.measure import measure_implicit_momentum
from pyasync.momentum import (MOMENTUM_GRID, RowSample, best_explicit_momentum,
                              epoch_staleness, estimate_momentum,
                              fit_geometric, growth_rates, heaviest_stable,
                              implicit_momentum, momentum_recursion, recurrence_rate,
                              staleness_pmf, total_momentum)
from pyasync.staleness import TAIL_BINS, StalenessStats, staleness_law


# ---------------------------------------------------------------- helpers

def make_data(kind="clf", n=300, m=10, sparse=False, seed=0, n_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)) * 0.5
    if sparse:
        X[rng.random((n, m)) < 0.6] = 0.0
    score = X @ rng.normal(size=m) + 0.1 * rng.normal(size=n)
    if kind == "reg":
        y = 2.0 * score + 0.3
    elif n_classes == 2:
        y = (score > 0).astype(np.int64)
    else:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return (sp.csr_matrix(X) if sparse else X), y


def estimator(kind="clf", **kw):
    params = dict(tol=None, max_iter=3, random_state=0, learning_rate="constant",
                  eta0=0.01, penalty="elasticnet", alpha=1e-3, l1_ratio=0.2)
    params.update(kw)
    return (AsyncSGDClassifier if kind == "clf" else AsyncSGDRegressor)(**params)


def frequencies(counts, size):
    """counts normalized to a distribution, padded/truncated to `size`."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.zeros(size)
    k = min(size, counts.size)
    out[:k] = counts[:k]
    return out / counts.sum()


def round_robin_histogram(M, n_rows, epochs, n_models=1):
    """The exact staleness histogram of round robin over M workers."""
    hist = np.zeros(M, dtype=np.int64)
    hist[:M - 1] = epochs * n_models
    hist[M - 1] = epochs * n_models * (n_rows - (M - 1))
    return hist


def assert_same_fit(a, b):
    """Bit-identical coefficients and intercepts."""
    diff = max(float(np.max(np.abs(a.coef_ - b.coef_))),
               float(np.max(np.abs(a.intercept_ - b.intercept_))))
    assert np.array_equal(a.coef_, b.coef_), f"coef_ differ, max abs diff {diff:.3g}"
    assert np.array_equal(a.intercept_, b.intercept_), \
        f"intercept_ differ, max abs diff {diff:.3g}"


# ------------------------------------------- one worker = sequential SGD

ONE_WORKER_CASES = [
    pytest.param("clf", {}, id="clf"),
    pytest.param("clf", {"momentum": 0.5}, id="clf-momentum"),
    pytest.param("clf", {"momentum": -0.3, "learning_rate": "optimal"},
                 id="clf-neg-momentum-optimal"),
    pytest.param("reg", {"learning_rate": "invscaling", "eta0": 0.05}, id="reg"),
    pytest.param("reg", {"momentum": 0.6, "learning_rate": "invscaling",
                         "eta0": 0.02, "penalty": "l2"}, id="reg-momentum"),
]


@pytest.mark.parametrize("staleness", ("exponential", "round_robin"))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("kind,kw", ONE_WORKER_CASES)
def test_one_worker_is_threads_one_job(kind, kw, sparse, staleness):
    X, y = make_data(kind, sparse=sparse)
    sim = estimator(kind, asynchrony="simulated", n_workers=1, staleness=staleness,
                    **kw).fit(X, y)
    thr = estimator(kind, asynchrony="threads", n_jobs=1, **kw).fit(X, y)
    assert_same_fit(sim, thr)
    assert sim.t_ == thr.t_
    # every write measured, all fresh
    assert sim.staleness_.n_measured == 3 * X.shape[0]
    assert np.array_equal(sim.staleness_.histogram, [3 * X.shape[0]])
    assert sim.staleness_.mean == 0.0 and sim.staleness_.max == 0


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_one_worker_multiclass_and_fixed_zero_delay(sparse):
    """One-vs-rest, and staleness="fixed" with delay=0 (one worker)."""
    X, y = make_data("clf", sparse=sparse, n_classes=3)
    thr = estimator(momentum=0.4, n_jobs=1).fit(X, y)
    for kw in ({"n_workers": 1}, {"staleness": "fixed", "delay": 0, "n_workers": 5}):
        sim = estimator(momentum=0.4, asynchrony="simulated", **kw).fit(X, y)
        assert sim.coef_.shape == (3, X.shape[1])
        assert_same_fit(sim, thr)


def test_one_worker_partial_fit():
    X, y = make_data("reg")
    sim = estimator("reg", asynchrony="simulated", n_workers=1, momentum=0.5)
    thr = estimator("reg", n_jobs=1, momentum=0.5)
    for _ in range(3):
        sim.partial_fit(X, y)
        thr.partial_fit(X, y)
        assert_same_fit(sim, thr)
        assert sim.t_ == thr.t_


def test_several_workers_differ_from_one():
    """Staleness changes the fit: the equalities above are not vacuous."""
    X, y = make_data("reg")
    one = estimator("reg", asynchrony="simulated", n_workers=1).fit(X, y)
    many = estimator("reg", asynchrony="simulated", n_workers=8).fit(X, y)
    assert not np.array_equal(one.coef_, many.coef_)
    assert np.allclose(one.coef_, many.coef_, atol=0.2)


@pytest.mark.parametrize("staleness", ("exponential", "round_robin", [0, 3, 1, 2]))
@pytest.mark.parametrize("penalty", ("l2", None))
@pytest.mark.parametrize("momentum", (0.0, 0.6, -0.4))
@pytest.mark.parametrize("M", (4, 16))
def test_stale_csr_rows_are_dense_rows(M, momentum, penalty, staleness):
    """CSR rows keep untouched coordinates lazily, caught up when a worker
    reads a row and again when it writes it, after the others' writes in
    between; dense rows update every coordinate every time. Under the same
    staleness draws both are the same stale SGD, to rounding. (No L1: its
    truncation touches a dense row's zeros, a CSR row's stored entries; no
    intercept: CSR rows damp its step, as scikit-learn's.)"""
    X, y = make_data("reg", n=400, m=30, sparse=True, seed=5)
    X[::7] = X[::7].multiply(3.0).tocsr()  # rows of several scales
    kw = dict(asynchrony="simulated", n_workers=M, momentum=momentum, penalty=penalty,
              alpha=1e-2, eta0=0.02, staleness=staleness, max_iter=4,
              fit_intercept=False)
    csr = estimator("reg", **kw).fit(X, y)
    dense = estimator("reg", **kw).fit(X.toarray(), y)
    scale = max(1.0, float(np.max(np.abs(dense.coef_))))
    assert np.max(np.abs(csr.coef_ - dense.coef_)) <= 1e-10 * scale
    assert np.array_equal(csr.staleness_.histogram, dense.staleness_.histogram)
    assert csr.staleness_.mean > 0.5


# ---------------------------------------------------------- determinism

SCHEDULES = [
    pytest.param({"staleness": "exponential"}, id="exponential"),
    pytest.param({"staleness": "round_robin"}, id="round_robin"),
    pytest.param({"staleness": "fixed", "delay": 5}, id="fixed"),
    pytest.param({"staleness": [3, 0, 5, 1, 2, 0, 0, 4]}, id="replay"),
]


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("sched", SCHEDULES)
def test_deterministic(sched, sparse):
    X, y = make_data("clf", sparse=sparse, n_classes=3)
    kw = dict(asynchrony="simulated", n_workers=8, momentum=0.3, random_state=11,
              **sched)
    a = estimator(**kw).fit(X, y)
    b = estimator(**kw).fit(X, y)
    assert_same_fit(a, b)
    assert np.array_equal(a.staleness_.histogram, b.staleness_.histogram)
    assert (a.staleness_.mean, a.staleness_.max, a.staleness_.n_measured) == \
        (b.staleness_.mean, b.staleness_.max, b.staleness_.n_measured)
    # pickled, and a clone of the unpickled estimator refit: the same fit
    back = pickle.loads(pickle.dumps(a))
    assert_same_fit(back, a)
    again = clone(back).fit(X, y)
    assert_same_fit(again, a)
    assert np.array_equal(again.staleness_.histogram, a.staleness_.histogram)
    # refitting the unpickled estimator itself (warm_start=False) too
    assert_same_fit(back.fit(X, y), a)


def test_seed_matters():
    """A different random_state gives a different schedule (exponential)."""
    X, y = make_data("reg")
    kw = dict(asynchrony="simulated", n_workers=8, shuffle=False)
    a = estimator("reg", random_state=0, **kw).fit(X, y)
    b = estimator("reg", random_state=1, **kw).fit(X, y)
    assert not np.array_equal(a.staleness_.histogram, b.staleness_.histogram)
    assert not np.array_equal(a.coef_, b.coef_)


# ------------------------------------------------- staleness schedules

@pytest.mark.parametrize("M", (2, 3, 8, 17))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_round_robin_histogram_exact(M, sparse):
    X, y = make_data("reg", n=200, sparse=sparse)
    est = estimator("reg", asynchrony="simulated", n_workers=M,
                    staleness="round_robin", max_iter=4).fit(X, y)
    st = est.staleness_
    assert np.array_equal(st.histogram, round_robin_histogram(M, 200, 4))
    assert st.n_measured == 4 * 200
    assert st.max == M - 1
    assert st.mean == pytest.approx((M - 1) - (M - 1) * M / 2 / 200, rel=1e-12)


def test_round_robin_histogram_multiclass():
    """One-vs-rest: the histograms of the binary problems add up."""
    X, y = make_data("clf", n=150, n_classes=4)
    est = estimator(asynchrony="simulated", n_workers=6, staleness="round_robin",
                    max_iter=2).fit(X, y)
    assert np.array_equal(est.staleness_.histogram,
                          round_robin_histogram(6, 150, 2, n_models=4))


def test_round_robin_more_workers_than_rows():
    """M is capped by the rows of the epoch: with 5 rows and 8 workers each
    write sees the previous ones of its epoch."""
    X, y = make_data("reg", n=5)
    est = estimator("reg", asynchrony="simulated", n_workers=8,
                    staleness="round_robin", max_iter=3).fit(X, y)
    assert np.array_equal(est.staleness_.histogram, [3, 3, 3, 3, 3])


def test_n_workers_defaults_to_n_jobs():
    X, y = make_data("reg", n=100)
    est = estimator("reg", asynchrony="simulated", n_jobs=4,
                    staleness="round_robin", max_iter=2).fit(X, y)
    assert np.array_equal(est.staleness_.histogram, round_robin_histogram(4, 100, 2))


@pytest.mark.parametrize("delay", (1, 3, 7))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_fixed_delay_is_round_robin(delay, sparse):
    X, y = make_data("clf", n=200, sparse=sparse)
    fixed = estimator(asynchrony="simulated", staleness="fixed", delay=delay,
                      n_workers=50, momentum=0.3).fit(X, y)
    rr = estimator(asynchrony="simulated", staleness="round_robin",
                   n_workers=delay + 1, momentum=0.3).fit(X, y)
    assert np.array_equal(fixed.staleness_.histogram,
                          round_robin_histogram(delay + 1, 200, 3))
    assert np.array_equal(fixed.staleness_.histogram, rr.staleness_.histogram)
    assert_same_fit(fixed, rr)


@pytest.mark.parametrize("M", (4, 8, 16))
def test_exponential_staleness_is_geometric(M):
    """Mean M - 1 (slightly below: each epoch starts with every worker
    reading at once and drains at the end) and a geometric shape.

    The mean is in fact exact for any order of the writes: per epoch of n
    writes the staleness sum is sum(write clocks) - sum(read clocks)
    = n (n - 1) / 2 - (n - M) (n - M + 1) / 2 = n (M - 1) - M (M - 1) / 2
    (M reads at clock 0, then one after each write while rows remain). So
    the mean tells nothing of the schedule; the shape does."""
    n = 1000
    X, y = make_data("reg", n=n)
    est = estimator("reg", asynchrony="simulated", n_workers=M, max_iter=4).fit(X, y)
    st = est.staleness_
    assert st.n_measured == 4 * n
    assert 0.95 * (M - 1) <= st.mean <= M - 1
    assert st.mean == pytest.approx((M - 1) - M * (M - 1) / (2 * n), rel=1e-12)
    assert st.mean == pytest.approx(
        np.arange(st.histogram.size) @ st.histogram / st.n_measured, rel=1e-12)
    fit = fit_geometric(st)
    assert abs(fit.n_workers - M) <= 0.1 * M
    assert fit.n_workers == pytest.approx(1.0 + st.mean, rel=1e-12)
    assert fit.implicit_momentum == pytest.approx(1.0 - 1.0 / fit.n_workers)
    # the shape itself: frequencies against the geometric law
    size = max(st.histogram.size, 8 * M)
    diff = np.abs(frequencies(st.histogram, size) - staleness_pmf(M, size - 1))
    assert diff.max() < 0.02, diff.max()
    # and a heavier tail than round robin's: staleness well beyond M - 1
    assert st.max > 2 * (M - 1)


REPLAYED = [
    pytest.param([1.0], id="all-fresh"),
    pytest.param([0, 0, 0, 1], id="point-mass-3"),
    pytest.param([5, 1, 0, 3, 8, 2], id="irregular"),
    pytest.param(np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1], dtype=np.int64),
                 id="int-array"),
]


@pytest.mark.parametrize("counts", REPLAYED)
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_histogram_replay(counts, sparse):
    X, y = make_data("reg", n=2500, sparse=sparse)
    est = estimator("reg", asynchrony="simulated", staleness=counts,
                    max_iter=4).fit(X, y)
    st = est.staleness_
    assert st.n_measured == 10000
    assert st.max <= len(counts) - 1
    diff = np.abs(frequencies(st.histogram, len(counts)) - frequencies(counts, len(counts)))
    assert diff.max() < 0.02, diff.max()
    # a staleness the distribution does not hold never happens, except
    # clipped (read < 0) at the start of an epoch
    zero = np.flatnonzero(np.asarray(counts) == 0)
    zero = zero[zero < st.histogram.size]
    assert st.histogram[zero].sum() <= 4 * len(counts)


def test_replay_point_mass_is_fixed_delay():
    """Replaying "always staleness k" writes with the model k writes old:
    past the first k writes of each epoch it is the fixed delay."""
    X, y = make_data("reg", n=400)
    k = 3
    est = estimator("reg", asynchrony="simulated", staleness=[0] * k + [1],
                    max_iter=2).fit(X, y)
    hist = est.staleness_.histogram
    assert hist[k] >= 2 * (400 - k)
    assert hist.sum() == 800 and hist.size == k + 1


def test_replay_a_fit_staleness():
    """staleness=<a fit's staleness_> (a StalenessStats) replays its law."""
    X, y = make_data("reg", n=2500)
    first = estimator("reg", asynchrony="simulated", n_workers=6, max_iter=4).fit(X, y)
    assert isinstance(first.staleness_, StalenessStats)
    size = first.staleness_.histogram.size
    for staleness in (first.staleness_, first.staleness_.histogram,
                      list(first.staleness_.histogram)):
        again = estimator("reg", asynchrony="simulated", staleness=staleness,
                          max_iter=4, random_state=3).fit(X, y)
        diff = np.abs(frequencies(again.staleness_.histogram, size)
                      - frequencies(first.staleness_.histogram, size))
        assert diff.max() < 0.02, diff.max()
        assert again.staleness_.mean == pytest.approx(first.staleness_.mean, rel=0.05)
        assert abs(fit_geometric(again.staleness_).n_workers - 6) < 0.6


def test_staleness_past_the_last_bin_keeps_its_mean():
    """At 256 workers about 37% of the staleness is 256 or more, which the
    histogram's last bin pools: the geometric fit takes the fit's exact
    mean, and the law replayed (and that momentum="auto" models) spreads
    the pooled bin into a tail with that mean."""
    X, y = make_data("reg", n=20000)
    first = estimator("reg", asynchrony="simulated", n_workers=256, max_iter=2).fit(X, y)
    stats = first.staleness_
    assert stats.histogram.size == _sgd.HIST_LEN and stats.max > 256
    assert stats.mean == pytest.approx(255, rel=0.05)
    assert fit_geometric(stats).n_workers == pytest.approx(1 + stats.mean, rel=1e-12)
    law = staleness_law(stats)
    assert law.sum() == pytest.approx(1.0)
    assert law.size == min(stats.max, 256 + TAIL_BINS) + 1
    assert np.arange(law.size) @ law == pytest.approx(stats.mean, rel=1e-6)
    np.testing.assert_allclose(law[:256], stats.histogram[:256] / stats.n_measured)
    again = estimator("reg", asynchrony="simulated", staleness=stats, max_iter=2,
                      random_state=3).fit(X, y)
    assert again.staleness_.mean == pytest.approx(stats.mean, rel=0.05)


def test_a_replay_short_of_the_measured_mean_warns():
    """A thread descheduled for a time slice leaves staleness in the
    thousands, which a replayed law (up to 1,024) cannot hold: its mean
    falls short of the fit's, and the replay says so; a law that holds it
    replays without a word."""
    X, y = make_data("reg", n=2000)
    counts = np.zeros(_sgd.HIST_LEN, dtype=np.int64)
    counts[0], counts[-1] = 9990, 10
    long_tail = StalenessStats(counts, 30.0, 40000, 10000)
    with pytest.warns(UserWarning, match="replayed law's mean staleness is 1.*measured 30"):
        estimator("reg", asynchrony="simulated", staleness=long_tail, max_iter=1).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        held = StalenessStats(counts, 0.3, 400, 10000)  # a tail mean of 300
        estimator("reg", asynchrony="simulated", staleness=held, max_iter=1).fit(X, y)
        # the threads engine does not replay it
        estimator("reg", staleness=long_tail, max_iter=1).fit(X, y)


def test_replay_ignores_n_workers():
    """The replayed law alone sets the staleness; n_workers plays no part."""
    X, y = make_data("reg")
    kw = dict(asynchrony="simulated", staleness=[2, 1, 1])
    a = estimator("reg", n_workers=2, **kw).fit(X, y)
    b = estimator("reg", n_workers=9, **kw).fit(X, y)
    assert_same_fit(a, b)


# ----------------------------------------------------- momentum theory

@pytest.mark.parametrize("M", (2, 4, 8, 16))
def test_measured_implicit_momentum(M):
    mu = measure_implicit_momentum(M)
    assert abs(mu - (1.0 - 1.0 / M)) < 0.05, mu
    assert mu == measure_implicit_momentum(M)  # deterministic


def test_measured_implicit_momentum_one_worker():
    assert abs(measure_implicit_momentum(1)) < 0.02


def test_measured_implicit_momentum_grows_with_workers():
    mus = [measure_implicit_momentum(M) for M in (1, 2, 4, 8, 16)]
    assert np.all(np.diff(mus) > 0), mus


def test_implicit_momentum():
    assert implicit_momentum(1) == 0.0
    assert implicit_momentum(4) == 0.75
    np.testing.assert_allclose(implicit_momentum([1, 2, 8]), [0.0, 0.5, 0.875])
    for bad in (0, 0.5, -3, [2, 0]):
        with pytest.raises(ValueError, match="n_workers"):
            implicit_momentum(bad)
    assert total_momentum(-0.25, 0.75) == 0.5


@pytest.mark.parametrize("M", (1, 2, 4, 8, 16, 64))
def test_staleness_pmf(M):
    pmf = staleness_pmf(M)
    assert np.all(pmf >= 0)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert np.arange(pmf.size) @ pmf == pytest.approx(M - 1, rel=1e-8, abs=1e-10)
    assert pmf[0] == pytest.approx(1.0 / M)
    if M > 1:
        np.testing.assert_allclose(pmf[1:] / pmf[:-1], 1.0 - 1.0 / M, rtol=1e-12)
    short = staleness_pmf(M, max_staleness=5)
    assert short.size == 6
    np.testing.assert_allclose(short, pmf[:6] if pmf.size >= 6 else
                               np.concatenate([pmf, np.zeros(6 - pmf.size)]))


def test_staleness_pmf_bad_input():
    for bad in (0, float("nan"), -np.inf):
        with pytest.raises(ValueError, match="n_workers"):
            staleness_pmf(bad)
        with pytest.raises(ValueError, match="n_workers"):
            implicit_momentum(bad)
    with pytest.raises(ValueError, match="n_workers must be one number"):
        staleness_pmf(np.array([2, 3]))
    with pytest.raises(ValueError, match="explicit momentum in"):
        recurrence_rate(1.5, 0.5, 0.1, 1.0)
    with pytest.raises(ValueError, match="implicit in"):
        momentum_recursion(0.5, 1.0)
    with pytest.raises(ValueError, match="pass max_staleness"):
        staleness_pmf(1e9)  # its default tail would be billions of values
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="max_staleness"):
            staleness_pmf(4, bad)
    assert staleness_pmf(1e9, 3).size == 4
    with pytest.raises(ValueError, match="at least one curvature"):
        best_explicit_momentum(0.75, 1.0, [])
    with pytest.raises(ValueError, match="explicit must be a real number"):
        total_momentum("a", "b")


def test_auto_with_more_workers_than_rows_is_cheap():
    """momentum="auto" expects no more workers in flight than an epoch has
    updates: a billion simulated workers on 200 rows cost no billion-entry
    staleness law (the simulator runs them as 200)."""
    X, y = make_data("clf", n=200)
    for staleness in ("exponential", "round_robin"):
        est = estimator("clf", asynchrony="simulated", n_workers=10**9, staleness=staleness,
                        momentum="auto", max_iter=2).fit(X, y)
        assert est.staleness_.max < 200


@pytest.mark.parametrize("M", (1, 2, 4, 8, 16, 64))
def test_fit_geometric_recovers_pmf(M):
    pmf = staleness_pmf(M)
    for counts in (pmf * 1e6, np.round(pmf * 1e7).astype(np.int64)):
        fit = fit_geometric(counts)
        assert fit.n_workers == pytest.approx(M, rel=1e-4)
        assert fit.implicit_momentum == pytest.approx(1.0 - 1.0 / M, abs=1e-4)
        assert fit.mean_staleness == pytest.approx(M - 1, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("bad", ([], [0, 0], [1, -1, 3], [[1, 2]], [1, np.nan, 2], [1, np.inf]))
def test_fit_geometric_bad_input(bad):
    with pytest.raises(ValueError, match="histogram"):
        fit_geometric(bad)


@pytest.mark.parametrize("a,h", [(0.1, 1.0), (0.5, 3.0), (1.0, 2.5), (0.01, 0.0)])
def test_recurrence_rate_plain_sgd(a, h):
    assert recurrence_rate(0.0, 0.0, a, h) == pytest.approx(abs(1 - a * h), rel=1e-12,
                                                            abs=1e-12)


@pytest.mark.parametrize("mu", (0.3, 0.5, 0.9))
@pytest.mark.parametrize("ah", (0.2, 1.0, 1.8))
def test_recurrence_rate_heavy_ball(mu, ah):
    """Heavy ball x[t+1] = x[t] + mu (x[t] - x[t-1]) - a h x[t]: complex roots
    of modulus sqrt(mu) where (1 + mu - a h)^2 < 4 mu."""
    a = 0.1
    h = ah / a
    if (1 + mu - ah) ** 2 < 4 * mu:
        assert recurrence_rate(mu, 0.0, a, h) == pytest.approx(np.sqrt(mu), rel=1e-9)
    else:  # real roots: the larger one
        disc = np.sqrt((1 + mu - ah) ** 2 - 4 * mu)
        expected = max(abs((1 + mu - ah + disc) / 2), abs((1 + mu - ah - disc) / 2))
        assert recurrence_rate(mu, 0.0, a, h) == pytest.approx(expected, rel=1e-9)
        assert recurrence_rate(mu, 0.0, a, h) >= np.sqrt(mu) - 1e-12


def test_recurrence_rate_heavy_ball_complex_regime_exists():
    """The parametrization above does meet the complex-root regime."""
    assert (1 + 0.5 - 1.0) ** 2 < 4 * 0.5
    assert recurrence_rate(0.5, 0.0, 0.1, 10.0) == pytest.approx(np.sqrt(0.5), rel=1e-9)


def test_recurrence_rate_implicit_only():
    """Implicit momentum mu_S with step a (1 - mu_S): small curvature
    converges (rate < 1), a far too large step does not."""
    assert recurrence_rate(0.0, 0.75, 0.1, 1.0) < 1.0
    assert recurrence_rate(0.0, 0.75, 100.0, 100.0) > 1.0


def delay_rate(mu, ah, delay):
    """Spectral radius of heavy ball with every gradient `delay` updates
    stale: the roots of z^(d+1) - (1 + mu) z^d + mu z^(d-1) + a h (d >= 1)."""
    if delay == 0:
        return max(abs(np.roots([1.0, -(1.0 + mu - ah), mu])))
    poly = np.zeros(delay + 2)
    poly[:3] = [1.0, -(1.0 + mu), mu]
    poly[-1] += ah
    return max(abs(np.roots(poly)))


@pytest.mark.parametrize("delay", (0, 1, 3, 7))
@pytest.mark.parametrize("ah", (0.05, 0.3))
def test_growth_rates_of_a_fixed_delay_are_the_roots(delay, ah):
    """With every staleness the same, stale SGD is a linear recursion: its
    growth per update is the log of its largest root."""
    grid = np.round(np.arange(-0.9, 0.91, 0.1), 1)
    rates = growth_rates(grid, ah, np.eye(delay + 1)[delay])
    expected = [np.log(delay_rate(mu, ah, delay)) for mu in grid]
    np.testing.assert_allclose(rates, expected, atol=3e-3)


def test_growth_rates_see_what_the_expected_dynamics_miss():
    """At 64 exponential workers and a step x curvature of 0.3, the
    expected dynamics converge with momentum 0.3 and more; the draws'
    long delays undo every momentum from 0 up. Fewer workers allow
    heavier momenta."""
    pmf = staleness_pmf(64, max_staleness=7 * 64)
    assert recurrence_rate(0.3, 1 - 1 / 64, 0.3, 1.0) < 1.0
    assert heaviest_stable(MOMENTUM_GRID, 0.3, pmf) < 0.0
    chosen = [heaviest_stable(MOMENTUM_GRID, 0.3, staleness_pmf(m, max_staleness=7 * m))
              for m in (1, 2, 4, 16, 64)]
    assert chosen == sorted(chosen, reverse=True) and chosen[0] == 0.9


def libm_log(a):
    """The natural logarithm of each element, by the C library's log."""
    return np.array([math.log(value) for value in a.ravel()]).reshape(a.shape)


def reference_growth_rates(grid, step_curvature, stale, nesterov):
    """growth_rates in NumPy: every momentum and replica a step at a time
    (logarithms from the C library, as the kernel's: NumPy's own, SIMD on
    AVX-512, may differ from it in the last bit)."""
    grid = np.asarray(grid, dtype=np.float64)[:, None]
    n_updates, replicas = stale.shape
    span = 1 << (int(stale.max()) + 1).bit_length()
    past = np.zeros((span, grid.size, replicas))
    past[0] = 1.0
    x, v = np.ones((grid.size, replicas)), np.zeros((grid.size, replicas))
    log_scale = np.zeros((grid.size, replicas))
    every = int(np.clip(250.0 / np.log10(3.0 + 2.0 * abs(step_curvature)), 1, 50))
    for t in range(n_updates):
        g = step_curvature * past[(t - np.minimum(stale[t], t)) % span,
                                  np.arange(grid.size)[:, None], np.arange(replicas)]
        v = grid * v - g
        x = x + (grid * v - g if nesterov else v)
        past[(t + 1) % span] = x
        if t % every == every - 1:
            scale = np.maximum(np.maximum(np.abs(past).max(axis=0), np.abs(v)), 1e-300)
            past /= scale
            x, v = x / scale, v / scale
            log_scale += libm_log(scale)
    return (log_scale + libm_log(np.abs(x) + np.abs(v) + 1e-300)).mean(axis=1) / n_updates


@pytest.mark.parametrize("workers,batches", [(1, 10), (16, 100), (64, 9), (256, 300)])
@pytest.mark.parametrize("nesterov", [False, True])
def test_growth_rates_equal_the_numpy_recursion(workers, batches, nesterov):
    """The compiled runs are the NumPy recursion's, bit for bit, from a
    step that barely moves to one that overflows without rescaling."""
    draws = epoch_staleness(workers, batches, n_updates=500, replicas=8)
    for step_curvature in (1e-4, 0.1, 1.0, 5.0, 1e3):
        np.testing.assert_array_equal(
            growth_rates(MOMENTUM_GRID, step_curvature, nesterov=nesterov, draws=draws),
            reference_growth_rates(MOMENTUM_GRID, step_curvature, draws, nesterov))


def reference_epoch_staleness(n_workers, n_batches, n_updates, replicas, seed):
    """epoch_staleness in NumPy: a uniformly random busy worker an update."""
    workers = min(n_workers, n_batches)
    rng = np.random.RandomState(seed)
    stale = np.zeros((n_updates, replicas), dtype=np.int64)
    runs = np.arange(replicas)
    t = 0
    while t < n_updates:
        read = np.zeros((replicas, workers), dtype=np.int64)
        busy = workers
        for k in range(min(n_batches, n_updates - t)):
            q = rng.randint(0, busy, size=replicas)
            stale[t] = k - read[runs, q]
            if workers + k < n_batches:
                read[runs, q] = k + 1
            else:
                read[runs, q] = read[runs, busy - 1]
                busy -= 1
            t += 1
    return stale


@pytest.mark.parametrize("workers,batches", [(1, 1), (1, 10), (16, 100), (64, 9), (64, 3),
                                             (300, 256), (5, 1000)])
def test_epoch_staleness_equals_the_numpy_draws(workers, batches):
    """The compiled epochs are the NumPy loop's, draw for draw, for whole
    and cut epochs and one worker a minibatch."""
    for n_updates, replicas, seed in ((2000, 32, 0), (17, 3, 5), (1, 1, 1)):
        np.testing.assert_array_equal(
            epoch_staleness(workers, batches, n_updates=n_updates, replicas=replicas, seed=seed),
            reference_epoch_staleness(workers, batches, n_updates, replicas, seed))


def test_growth_runs_names_bad_input():
    """The kernels refuse a delay the ring cannot hold, a ring that is not
    a power of two, a worker that is not there and more workers than
    minibatches."""
    from pyasync import _core
    stale = np.zeros((10, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="out of range"):
        _core.growth_runs(MOMENTUM_GRID, 0.1, stale + 4, 4, False, 5)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        _core.growth_runs(MOMENTUM_GRID, 0.1, stale, 6, False, 5)
    with pytest.raises(TypeError, match="int64"):
        _core.growth_runs(MOMENTUM_GRID, 0.1, stale.astype(np.int32), 4, False, 5)
    with pytest.raises(ValueError, match="worker out of range"):
        _core.epoch_staleness_runs(stale + 3, 3, 10)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        _core.epoch_staleness_runs(stale, 4, 3)


def test_epoch_staleness_and_growth_rates_name_bad_input():
    """No workers, no minibatches, or a staleness law given twice or not at
    all get an error that says so."""
    with pytest.raises(ValueError, match="n_workers >= 1 and n_batches >= 1"):
        epoch_staleness(0, 10)
    with pytest.raises(ValueError, match="n_workers >= 1 and n_batches >= 1"):
        epoch_staleness(4, 0)
    with pytest.raises(ValueError, match="a staleness pmf or draws"):
        growth_rates(MOMENTUM_GRID, 0.1)
    with pytest.raises(ValueError, match="a staleness pmf or draws"):
        growth_rates(MOMENTUM_GRID, 0.1, [1.0], draws=epoch_staleness(2, 4))


def test_epoch_staleness_of_a_synchronous_epoch():
    """As many workers as minibatches read the whole epoch at its start:
    its k-th write is k stale, every epoch, whatever the schedule. One
    worker is never stale: its growth is that of a staleness of 0."""
    for round_robin in (False, True):
        draws = epoch_staleness(64, 5, round_robin, n_updates=20, replicas=3)
        np.testing.assert_array_equal(draws, np.tile(np.arange(5), 4)[:, None].repeat(3, 1))
    one_worker = growth_rates(MOMENTUM_GRID, 0.3, draws=epoch_staleness(1, 5))
    np.testing.assert_allclose(one_worker, growth_rates(MOMENTUM_GRID, 0.3, [1.0]))


def test_heaviest_stable_skips_an_island_of_stability():
    """Heavy ball at 64 workers' epoch delays (113 minibatches an epoch):
    momenta 0 to 0.6 grow, 0.8 shrinks by a hair; the choice is the
    heaviest of the stable run that starts at the lightest momentum."""
    draws = epoch_staleness(64, 113)
    rates = growth_rates(MOMENTUM_GRID, 0.0247, nesterov=False, draws=draws)
    chosen = heaviest_stable(MOMENTUM_GRID, 0.0247, nesterov=False, draws=draws)
    k = int(np.flatnonzero(MOMENTUM_GRID == chosen)[0])
    assert np.all(rates[:k + 1] < 0.0) and rates[k + 1] >= 0.0
    assert np.any(rates[k + 1:] < 0.0), "no island above the choice: the case tests nothing"


@pytest.mark.filterwarnings("error")
def test_heaviest_stable_at_extreme_curvatures():
    """A step far past any stability overflows nothing (the lowest momentum
    is all there is); no curvature, or none that is finite, has a clear
    answer too."""
    pmf = staleness_pmf(8, max_staleness=56)
    for ah in (1e3, 1e12, 1e300):
        assert np.all(np.isfinite(growth_rates(MOMENTUM_GRID, ah, pmf)))
        assert heaviest_stable(MOMENTUM_GRID, ah, pmf) == -0.9
    assert heaviest_stable(MOMENTUM_GRID, np.nan, pmf) == -0.9
    assert heaviest_stable(MOMENTUM_GRID, 0.0, pmf) == 0.9
    assert heaviest_stable(MOMENTUM_GRID, -2.0, pmf) == 0.9
    assert heaviest_stable(MOMENTUM_GRID, 1e-4, pmf) == 0.9


def heavy_ball(mu, c, curvatures, T=60, w0=None):
    """A heavy-ball trajectory on the quadratic 0.5 sum h_i w_i^2:
    w[t+1] = w[t] + mu (w[t] - w[t-1]) - c grad(w[t]); (trajectory, grads)."""
    h = np.asarray(curvatures, dtype=np.float64)
    w = np.empty((T, h.size))
    w[0] = np.ones(h.size) if w0 is None else w0
    w[1] = w[0] - c * h * w[0]
    for t in range(1, T - 1):
        w[t + 1] = w[t] + mu * (w[t] - w[t - 1]) - c * h * w[t]
    return w, w * h


@pytest.mark.parametrize("mu", (-0.4, 0.0, 0.5, 0.9))
def test_estimate_momentum_heavy_ball(mu):
    a = 0.05
    # with the step: the model w[t+1] - w[t] = mu V[t] - a (1 - mu) g[t]
    w, g = heavy_ball(mu, a * (1 - mu), [1.0, 3.0, 7.0])
    got_mu, eff = estimate_momentum(w, g, step=a)
    assert got_mu == pytest.approx(mu, abs=1e-9)
    assert eff == pytest.approx(a * (1 - mu), abs=1e-9)
    # identifiable with the step even on one mode (one dimension)
    w1, g1 = heavy_ball(mu, a * (1 - mu), [2.0])
    assert estimate_momentum(w1[:, 0], g1[:, 0], step=a)[0] == pytest.approx(mu, abs=1e-9)
    # without it: the two-parameter fit V[t+1] = mu V[t] - c g[t]
    c = 0.03
    w, g = heavy_ball(mu, c, [1.0, 3.0, 7.0])
    got_mu, got_c = estimate_momentum(w, g)
    assert got_mu == pytest.approx(mu, abs=1e-8)
    assert got_c == pytest.approx(c, abs=1e-8)


def test_estimate_momentum_short_trajectory():
    with pytest.raises(ValueError, match="3 points"):
        estimate_momentum(np.zeros((2, 3)), np.zeros((2, 3)))


@pytest.mark.parametrize("step", [None, 0.1])
def test_estimate_momentum_of_a_run_that_never_moved(step):
    with pytest.raises(ValueError, match="neither moves nor has a gradient"):
        estimate_momentum(np.zeros((5, 2)), np.zeros((5, 2)), step=step)


# -------------------------------------- staleness-aware fits: theory on data

def test_fit_geometric_of_simulated_fit():
    """The geometric fit of a simulated fit's histogram recovers M, and the
    estimator reports it as implicit_momentum_."""
    X, y = make_data("reg", n=1500)
    for M in (3, 6, 12):
        est = estimator("reg", asynchrony="simulated", n_workers=M, max_iter=3).fit(X, y)
        fit = fit_geometric(est.staleness_)
        assert abs(fit.n_workers - M) <= 0.1 * M
        assert est.implicit_momentum_ == pytest.approx(fit.implicit_momentum, rel=1e-12)
        assert abs(est.implicit_momentum_ - (1 - 1 / M)) < 0.02
        assert est.momentum_ == 0.0
        assert est.total_momentum_ == pytest.approx(est.implicit_momentum_)


# ----------------------------------------------------------- momentum="auto"

@pytest.mark.parametrize("engine", [
    pytest.param({"asynchrony": "threads", "n_jobs": 1}, id="threads-1"),
    pytest.param({"asynchrony": "threads", "n_jobs": 3}, id="threads-3"),
    pytest.param({"asynchrony": "simulated", "n_workers": 4}, id="sim-exponential"),
    pytest.param({"asynchrony": "simulated", "n_workers": 4,
                  "staleness": "round_robin"}, id="sim-round_robin"),
    pytest.param({"asynchrony": "simulated", "staleness": [1, 2, 3]}, id="sim-replay"),
])
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("kind", ("clf", "reg"))
def test_auto_momentum_fits(kind, sparse, engine):
    X, y = make_data(kind, sparse=sparse, n=400)
    est = estimator(kind, momentum="auto", max_iter=5, **engine).fit(X, y)
    assert np.all(np.isfinite(est.coef_)) and np.all(np.isfinite(est.intercept_))
    assert -0.9 <= est.momentum_ <= 0.9
    assert np.isfinite(est.implicit_momentum_) and np.isfinite(est.total_momentum_)
    assert 0.0 <= est.implicit_momentum_ < 1.0
    assert est.total_momentum_ == pytest.approx(est.momentum_ + est.implicit_momentum_)
    assert est.momentum == "auto"  # the parameter is left as given
    # one choice an epoch, the last of them momentum_
    assert len(est.momentum_curve_) == len(est.loss_curve_) == est.n_iter_
    assert np.all(np.abs(est.momentum_curve_) <= 0.9)
    assert est.momentum_curve_[-1] == pytest.approx(est.momentum_, abs=1e-12)
    if kind == "clf":
        assert est.score(X, y) > 0.7
    else:
        assert est.score(X, y) > 0.5


@pytest.mark.parametrize("loss", ["epsilon_insensitive", "hinge"])
def test_auto_momentum_where_no_row_takes_a_step(loss):
    """A fit that reaches zero loss (every residual inside epsilon, every
    margin met) leaves the surrogate no row: auto keeps its momentum and
    the fit goes on (it raised from inside the surrogate)."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((300, 5))
    if loss == "hinge":
        y = (X[:, 0] > 0).astype(int)
        X[:, 0] += np.where(y == 1, 3.0, -3.0)  # separable with a wide margin
        est = AsyncSGDClassifier(loss=loss, penalty=None, momentum="auto",
                                 learning_rate="constant", eta0=0.1, max_iter=10,
                                 tol=None, asynchrony="simulated", n_workers=2,
                                 random_state=0).fit(X, y)
        assert est.score(X, y) == 1.0
    else:
        y = X @ np.array([0.1, -0.2, 0.0, 0.05, 0.1])
        est = AsyncSGDRegressor(loss=loss, epsilon=10.0, penalty=None, momentum="auto",
                                max_iter=3, tol=None, asynchrony="simulated",
                                n_workers=2, random_state=0).fit(X, y)
    assert est.loss_curve_[-1] == 0.0
    assert -0.9 <= est.momentum_ <= 0.9


def test_auto_momentum_simulated_deterministic():
    X, y = make_data("clf", sparse=True, n=400)
    kw = dict(momentum="auto", max_iter=5, asynchrony="simulated", n_workers=6)
    a = estimator(**kw).fit(X, y)
    b = estimator(**kw).fit(X, y)
    assert_same_fit(a, b)
    assert a.momentum_ == b.momentum_


@pytest.mark.parametrize("n_classes", (2, 3))
@pytest.mark.parametrize("kind", ("clf", "reg"))
def test_auto_momentum_partial_fit_chooses_on_the_fit_schedule(monkeypatch, kind, n_classes):
    """Each partial_fit call is an epoch: momentum="auto" chooses (runs its
    simulation) before calls 0, 1, 2, 4, 8 as fit before epochs 0, 1, 2, 4,
    8, once a one-vs-rest problem, and the calls between keep each
    problem's last choice; a partial_fit after fit counts on from its
    epochs."""
    if kind == "reg" and n_classes == 3:
        pytest.skip("one problem")
    chosen = []
    propose = _sgd.AutoMomentum.propose

    def counting(self, epoch, *args):
        chosen.append(epoch)
        return propose(self, epoch, *args)
    monkeypatch.setattr(_sgd.AutoMomentum, "propose", counting)
    X, y = make_data(kind, n=300, n_classes=n_classes)
    problems = n_classes if kind == "clf" and n_classes > 2 else 1
    est = estimator(kind, momentum="auto", asynchrony="simulated", n_workers=4)
    momenta = []
    for call in range(10):
        before = len(chosen)
        est.partial_fit(X, y, classes=np.unique(y)) if kind == "clf" else est.partial_fit(X, y)
        momenta.append(est.momentum_)
        assert len(chosen) - before == (problems if call in (0, 1, 2, 4, 8) else 0), call
    assert momenta[5] == momenta[6] == momenta[7] == momenta[4]
    # after a fit of 5 epochs the next calls are epochs 5, 6, 7 (kept) and 8 (chosen)
    est.set_params(max_iter=5).fit(X, y)
    chosen.clear()
    for _ in range(4):
        est.partial_fit(X, y)
    assert len(chosen) == problems


def test_auto_momentum_partial_fit_keeps_what_a_fixed_fit_would():
    """A call that keeps its momentum is the fixed-momentum epoch: the same
    model as a partial_fit at that momentum from the same state."""
    X, y = make_data("reg", n=300)
    est = estimator("reg", momentum="auto", asynchrony="simulated", n_workers=4)
    for _ in range(3):
        est.partial_fit(X, y)
    fixed = copy.deepcopy(est).set_params(momentum=est.momentum_)
    est.partial_fit(X, y)  # call 3: kept
    fixed.partial_fit(X, y)
    assert_same_fit(est, fixed)


@pytest.mark.parametrize("kind", ("clf", "reg"))
def test_auto_momentum_partial_fit_on_threads_starts_from_the_measured_staleness(
        monkeypatch, kind):
    """Threads measure their staleness as they run: a partial_fit call that
    goes on models the staleness the calls before it measured, not none."""
    from pyasync import _sgd
    priors = []
    real = _sgd.AutoMomentum.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        priors.append(self.pmf.copy())
    monkeypatch.setattr(_sgd.AutoMomentum, "__init__", spy)
    X, y = make_data(kind, n=2000)
    est = estimator(kind, momentum="auto", n_jobs=4)
    extra = {"classes": np.unique(y)} if kind == "clf" else {}
    est.partial_fit(X, y, **extra)
    first = copy.deepcopy(est.staleness_)
    est.partial_fit(X, y)
    assert np.array_equal(priors[0], [1.0])  # nothing measured yet: staleness 0
    assert first.n_measured > 0
    np.testing.assert_array_equal(priors[-1], staleness_law(first))


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_target_momentum(sparse):
    """target_momentum holds explicit + measured implicit at the target:
    0.5 with M = 4 (implicit about 0.75) asks for about -0.25."""
    X, y = make_data("reg", sparse=sparse, n=1000)
    est = estimator("reg", momentum="auto", target_momentum=0.5, max_iter=4,
                    asynchrony="simulated", n_workers=4).fit(X, y)
    assert abs(est.momentum_ - (0.5 - 0.75)) < 0.05, est.momentum_
    assert abs(est.total_momentum_ - 0.5) < 0.05, est.total_momentum_


def test_target_momentum_out_of_reach_warns_with_the_total_held():
    """At 16 workers (implicit about 0.94) a total of 0 needs explicit
    momentum -0.94, past the -0.9 the fit allows: it warns, runs at -0.9,
    and the total it reports is the one the warning gives."""
    X, y = make_data("reg", n=1000)
    with pytest.warns(UserWarning, match="target_momentum=0 needs explicit momentum") as got:
        est = estimator("reg", momentum="auto", target_momentum=0.0, max_iter=3,
                        asynchrony="simulated", n_workers=16).fit(X, y)
    assert est.momentum_ == -0.9
    assert f"the total is {est.total_momentum_:.3g}" in str(got[0].message)


def test_target_momentum_one_worker():
    """No asynchrony, no implicit momentum: the explicit one is the target."""
    X, y = make_data("reg", n=300)
    est = estimator("reg", momentum="auto", target_momentum=0.3, max_iter=3,
                    asynchrony="simulated", n_workers=1).fit(X, y)
    assert est.momentum_ == pytest.approx(0.3)
    assert est.implicit_momentum_ == 0.0


def stall_rule(monkeypatch, losses, simulated_choice=0.5):
    """The momenta AutoMomentum runs epoch by epoch for a given loss curve,
    its simulation replaced by a fixed choice."""
    from pyasync import _sgd
    monkeypatch.setattr(_sgd, "row_sample", 
                        lambda *a, **k: RowSample(None, None, None, 0.0))
    monkeypatch.setattr(_sgd, "choose_momentum", lambda *a, **k: simulated_choice)
    monkeypatch.setattr(_sgd, "sample_loss", lambda *a, **k: losses[0])
    params = dict(loss="squared_error", loss_param=0.0, fit_intercept=True,
                  intercept_decay=1.0, l2=0.0)
    engine = dict(kind="simulated", schedule="exponential", n_workers=2)
    auto = _sgd.AutoMomentum(None, None, params, engine, None, 0)
    hist = np.zeros(4, dtype=np.int64)
    return [auto.choose(epoch, None, 0.0, hist, 0.1, list(losses[:epoch]))
            for epoch in range(len(losses) + 1)]


def test_auto_momentum_stalls_cap_the_momentum_lower(monkeypatch):
    """Two epochs without a new best (two-epoch mean) loss cap the momentum
    0.2 lower; a drop that is followed by a new best paid, and the walk
    goes on."""
    momenta = stall_rule(monkeypatch, [1.0, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3])
    assert momenta == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3, 0.1])


def test_auto_momentum_stall_rule_sees_through_noisy_epochs(monkeypatch):
    """A loss that falls on average but sets no single-epoch record (a
    heavy momentum's noisy curve) is progress, not a stall."""
    momenta = stall_rule(monkeypatch, [1.0, 0.3, 0.6, 0.4, 0.31, 0.35, 0.3, 0.33, 0.29])
    assert momenta == pytest.approx([0.5] * 10)


def test_auto_momentum_undoes_a_drop_that_did_not_pay(monkeypatch):
    """At a noise floor a lower momentum need not help (a heavy negative
    momentum has its own, higher floor): a drop followed by two epochs
    without a new best is undone, and the momentum stays there."""
    momenta = stall_rule(monkeypatch, [1.0, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6])
    assert momenta == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.5, 0.5, 0.5])


def test_auto_momentum_improving_fit_keeps_its_choice(monkeypatch):
    momenta = stall_rule(monkeypatch, [1.0, 0.8, 0.6, 0.5, 0.45, 0.4], simulated_choice=0.7)
    assert momenta == pytest.approx([0.7] * 7)


def test_auto_momentum_rolls_back_an_epoch_that_blows_up(monkeypatch):
    """A simulation that gets the momentum wrong (here forced to 0.9, under
    which 32 workers at this step blow the weights up) costs epochs, not
    the fit: a blown-up epoch is undone and the momentum capped lower until
    the fit converges as a safe fixed momentum does."""
    from pyasync import _sgd
    from sklearn.datasets import make_regression
    X, y = make_regression(600, 10, noise=1.0, random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = y / y.std()
    step = 0.5 / np.mean(np.sum(X * X, axis=1))

    def fit(momentum):
        return AsyncSGDRegressor(asynchrony="simulated", n_workers=32, momentum=momentum,
                                 learning_rate="constant", eta0=step, max_iter=12, tol=None,
                                 random_state=0).fit(X, y)
    assert fit(0.9).loss_curve_[-1] > 1e6    # blown up, and stays so
    safe = fit(0.0).loss_curve_[-1]
    monkeypatch.setattr(_sgd, "choose_momentum", lambda *a, **k: 0.9)
    auto = fit("auto")
    assert auto.loss_curve_[0] > 1e6          # the wrong choice ran, and blew up
    assert auto.loss_curve_[-1] <= 2.0 * safe + 1e-3
    assert auto.momentum_ <= 0.5


def test_auto_momentum_on_a_strongly_penalized_sparse_problem():
    """Text-like rows under a strong L2 penalty forget between visits: the
    training loss is the other rows' noise, which momentum amplifies at 32
    workers. Auto stays as low as momentum 0 (a simulation that scaled that
    noise away chose 0.8 here, and its losses nearly doubled)."""
    from pyasync.datasets import make_rcv1_like
    X, y = make_rcv1_like(n_samples=2000, n_features=3000, nnz_per_row=50, random_state=7)
    step = 0.3 / np.mean(np.asarray(X.multiply(X).sum(axis=1)))

    def fit(momentum):
        return AsyncSGDClassifier(loss="hinge", alpha=0.01, asynchrony="simulated",
                                  n_workers=32, momentum=momentum, learning_rate="constant",
                                  eta0=step, max_iter=8, tol=None, random_state=0).fit(X, y)
    auto, zero = fit("auto"), fit(0.0)
    assert np.mean(auto.loss_curve_) <= 1.05 * np.mean(zero.loss_curve_)
    assert auto.momentum_ <= 0.3


@pytest.mark.parametrize("n_workers", [1, 16])
def test_auto_momentum_is_the_same_for_dense_data_stored_sparse(n_workers):
    """Dense rows in a CSR matrix are sampled as dense rows: not as
    independent sparse rows (whose rescaled simulation chose +0.9 here,
    where the dense data's chose -0.9, at a higher loss)."""
    rng = np.random.RandomState(0)
    X = rng.randn(5000, 20)
    y = X @ rng.randn(20) + 0.1 * rng.randn(5000)

    def fit(data):
        return AsyncSGDRegressor(momentum="auto", asynchrony="simulated", n_workers=n_workers,
                                 max_iter=4, tol=None, random_state=0).fit(data, y)
    dense, stored_sparse = fit(X), fit(sp.csr_matrix(X))
    assert stored_sparse.momentum_ == dense.momentum_
    assert stored_sparse.loss_curve_[-1] == pytest.approx(dense.loss_curve_[-1], rel=0.02)


@pytest.mark.parametrize("n_workers", [4, 32])
def test_auto_momentum_on_data_whose_epoch_outlasts_the_default_horizon(n_workers):
    """12,000 rows: an epoch is mostly the floor its descent reaches. Auto's
    second epoch is as low as the best fixed momentum's (a simulation of
    5,000 updates saw only the descent and chose a heavier momentum, whose
    second epoch was 12-14% of the way back to the start)."""
    from sklearn.datasets import make_classification
    X, y = make_classification(12000, 40, n_informative=15, flip_y=0.03, random_state=13)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    step = 0.3 / np.mean(np.sum(X * X, axis=1))

    def losses(momentum):
        return AsyncSGDClassifier(loss="log_loss", alpha=1e-5, asynchrony="simulated",
                                  n_workers=n_workers, momentum=momentum,
                                  learning_rate="constant", eta0=step, max_iter=2, tol=None,
                                  random_state=0).fit(X, y).loss_curve_
    grid = {mu: losses(mu) for mu in np.round(np.linspace(-0.9, 0.9, 19), 1)}
    best = min(curve[1] for curve in grid.values())
    start = grid[0.0][0]
    assert losses("auto")[1] <= best + 0.05 * (start - best)


def test_row_memory_is_what_the_decay_leaves_relative_to_the_next_step():
    """A constant step forgets (1 - l2 step)^n of a row's update by its next
    visit; under "optimal" the steps shrink as the decay does, so nothing
    is forgotten relative to the next update; no penalty, no forgetting.
    Against the product over every update of the epoch."""
    from pyasync import _core, _sgd

    def params(**kw):
        return AsyncSGDClassifier(**kw)._engine_params(sparse=False)

    def every_update(p, eta0, t, n):
        steps = np.array([_core.eta(p, eta0, k) for k in range(t + 1, t + n + 1)])
        return np.prod(1.0 - p["l2"] * steps) * steps[0] / steps[-1]
    constant = params(alpha=1e-3, learning_rate="constant", eta0=0.3)
    assert _sgd.row_memory(constant, 0.3, 0, 3000) == pytest.approx((1 - 3e-4) ** 3000)
    for p, eta0 in ((params(alpha=1e-2, loss="log_loss"), 0.0),
                    (params(alpha=1e-2, learning_rate="invscaling", eta0=0.5, power_t=0.25), 0.5)):
        for t in (0, 3000, 30000):
            assert _sgd.row_memory(p, eta0, t, 3000) == pytest.approx(
                every_update(p, eta0, t, 3000), rel=1e-2)
    assert _sgd.row_memory(params(alpha=1e-2, loss="log_loss"), 0.0, 0, 3000) > 0.95
    assert _sgd.row_memory(params(penalty=None, learning_rate="constant", eta0=0.3),
                           0.3, 0, 3000) == 1.0


def test_auto_momentum_recover_restores_the_best_model_at_rest():
    from pyasync import _sgd
    engine = dict(kind="simulated", schedule="exponential", n_workers=2)
    auto = _sgd.AutoMomentum(None, None, {}, engine, None, 0)
    state = {"w": np.ones(3), "b": np.array([0.5]), "v": np.full(3, 0.2),
             "vb": np.array([0.1]), "q": None, "u": 0.0}
    auto.keep_safe(state)
    auto.start_loss, auto.best_loss, auto.current, auto.cap = 1.0, 1.5, 0.7, 0.9
    state["w"][:] = 5.0
    assert not auto.recover(0, state, 14.0)   # worse, not ten times the start and the best
    assert state["w"] == pytest.approx([5.0] * 3)
    state["w"][:] = np.nan
    assert auto.recover(1, state, np.inf)     # diverged: back to the start, at rest
    assert state["w"] == pytest.approx([1.0] * 3) and state["b"][0] == 0.5
    assert not state["v"].any() and state["vb"][0] == 0.0
    assert auto.cap == pytest.approx(0.3)
    auto.current = 0.3
    state["w"][:] = 7.0
    assert auto.recover(2, state, 16.0)       # ten times the best: blown up
    assert state["w"] == pytest.approx([1.0] * 3) and auto.cap == pytest.approx(-0.1)
    auto.start_loss = 0.0                     # the perceptron at w = 0: no scale
    assert not auto.recover(3, state, 1e6)
    assert auto.recover(4, state, np.inf)
    assert auto.rolled_back == {1, 2, 4}
    auto.current = -0.9                       # nothing lower to try: a climb is kept
    auto.start_loss = 1.0
    state["w"][:] = 9.0
    assert not auto.recover(5, state, 1e6)    # (undoing it would loop)
    assert state["w"] == pytest.approx([9.0] * 3) and auto.rolled_back == {1, 2, 4}
    assert auto.recover(6, state, np.inf)     # a divergence goes back, the floor lifted
    assert state["w"] == pytest.approx([1.0] * 3) and auto.floor == pytest.approx(-0.5)
    auto.cap = -0.9
    assert auto.choose(7, None, None, np.zeros(3), 0.1, []) == pytest.approx(-0.5)
    assert not auto.recover(7, state, 1e6)    # the new floor keeps a climb
    assert not auto.recover(8, state, np.inf)  # and a second divergence stands
    assert auto.rolled_back == {1, 2, 4, 6}


def test_auto_momentum_samples_only_the_rows_it_learns_on():
    """Early stopping's held-out rows are not the fit's: the choice made
    before the first epoch is the one a fit on the training rows alone
    makes (the same rows drawn from them), whatever the held-out rows
    hold."""
    from sklearn.datasets import make_regression
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import ShuffleSplit
    X, y = make_regression(3000, 10, noise=1.0, random_state=0)
    y = y / y.std()
    kw = dict(momentum="auto", max_iter=1, tol=None, asynchrony="simulated", n_workers=16,
              eta0=0.05, learning_rate="constant", random_state=0)
    train, held = next(ShuffleSplit(test_size=0.3, random_state=0).split(X))
    train = np.sort(train)  # the sample keeps the data's row order
    y_far = y.copy()
    y_far[held] = 1e3 * np.sign(y[held])  # nothing like the rows learnt on
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        alone = AsyncSGDRegressor(**kw).fit(X[train], y[train]).momentum_curve_[0]
        early = [AsyncSGDRegressor(early_stopping=True, validation_fraction=0.3, **kw)
                 .fit(X, target).momentum_curve_[0] for target in (y, y_far)]
    assert early == [alone, alone]


def test_auto_momentum_undoes_a_climb_every_momentum_makes_once_and_keeps_the_cap():
    """A climb within ten times the least any simulated momentum climbed to
    is the step's: the first goes back (a decaying step has shrunk since)
    with the cap where it was; one that comes back is the data's scale and
    is kept (going back each time left a fit at its start for good)."""
    from pyasync import _sgd
    engine = dict(kind="simulated", schedule="exponential", n_workers=2)
    auto = _sgd.AutoMomentum(None, None, {}, engine, None, 0)
    state = {"w": np.zeros(3), "b": np.array([0.0]), "v": np.full(3, 0.2),
             "vb": np.array([0.1]), "q": None, "u": 0.0}
    auto.keep_safe(state)
    auto.start_loss, auto.current, auto.cap = 1.0, 0.3, 0.9
    auto.expected_climb = 1e5                 # the simulation: every momentum climbs
    state["w"][:] = 4.0
    assert auto.recover(0, state, 5e5)        # back to the start, at rest
    assert not state["w"].any() and not state["v"].any() and auto.cap == 0.9
    state["w"][:] = 6.0
    assert not auto.recover(1, state, 7e5)    # again: kept, the safe point from now on
    assert state["w"] == pytest.approx([6.0] * 3) and auto.rolled_back == {0}
    state["w"][:] = np.nan
    assert auto.recover(2, state, np.inf)     # a divergence is still the momentum's
    assert state["w"] == pytest.approx([6.0] * 3) and auto.cap == pytest.approx(-0.1)


# ------------------------------------------------------------- bad input

BAD = [
    pytest.param({"n_workers": 0}, "n_workers", id="n_workers=0"),
    pytest.param({"n_workers": -2}, "n_workers", id="n_workers<0"),
    pytest.param({"n_workers": 2.5}, "n_workers", id="n_workers-float"),
    pytest.param({"n_workers": True}, "n_workers", id="n_workers-bool"),
    pytest.param({"staleness": "bogus"}, "staleness", id="staleness-bogus"),
    pytest.param({"staleness": "fixed"}, "delay", id="fixed-without-delay"),
    pytest.param({"staleness": "fixed", "delay": -1}, "delay", id="fixed-negative-delay"),
    pytest.param({"staleness": "fixed", "delay": 1.5}, "delay", id="fixed-float-delay"),
    pytest.param({"staleness": [1, -1, 2]}, "staleness holds a negative count",
                 id="negative-counts"),
    pytest.param({"staleness": [0, 0]}, "staleness holds no counts", id="zero-counts"),
    pytest.param({"staleness": []}, "staleness must be a non-empty", id="empty-counts"),
    pytest.param({"staleness": [1.0, np.nan]}, "staleness holds a count that is not finite",
                 id="nan-counts"),
    pytest.param({"staleness": [1.0, np.inf]}, "not finite", id="inf-counts"),
    pytest.param({"staleness": [[1, 2], [3, 4]]}, "staleness must be a non-empty 1-d",
                 id="2d-counts"),
    pytest.param({"staleness": ["a", "b"]}, "staleness must be a histogram", id="str-counts"),
    pytest.param({"staleness": [1 + 1j, 2]}, "staleness must be a histogram of real",
                 id="complex-counts"),
    pytest.param({"n_workers": 2**63}, "n_workers must be <=", id="n_workers-huge"),
    pytest.param({"staleness": "fixed", "delay": 2**63 - 1}, "delay, an integer in",
                 id="delay-huge"),
    pytest.param({"staleness": "exponential", "delay": 2}, "delay", id="delay-exponential"),
    pytest.param({"staleness": "round_robin", "delay": 2}, "delay", id="delay-round_robin"),
    pytest.param({"staleness": [1, 2], "delay": 2}, "delay", id="delay-replay"),
]


@pytest.mark.parametrize("asynchrony", ("simulated", "threads"))
@pytest.mark.parametrize("kind", ("clf", "reg"))
@pytest.mark.parametrize("params,name", BAD)
def test_bad_simulated_params(params, name, kind, asynchrony):
    """Refused on the threads engine too, which does not use them, as
    scikit-learn checks every parameter."""
    X, y = make_data(kind, n=50)
    est = estimator(kind, asynchrony=asynchrony, **params)
    with pytest.raises(ValueError, match=name):
        est.fit(X, y)
    assert not hasattr(est, "coef_")
    with pytest.raises(ValueError, match=name):
        est.partial_fit(X, y, **({"classes": np.unique(y)} if kind == "clf" else {}))


def test_auto_momentum_sees_class_weights():
    """Balanced class weights on 5% positives make the positives' steps
    about ten times the negatives': a simulation of unweighted steps
    chooses momentum for a step ten times too small."""
    from sklearn.datasets import make_classification
    X, y = make_classification(4000, 30, weights=[0.95, 0.05], random_state=0)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    step = 0.1 / np.mean(np.sum(X * X, axis=1))

    def lowest(momentum):
        est = AsyncSGDClassifier(loss="hinge", alpha=1e-5, class_weight="balanced",
                                 asynchrony="simulated", n_workers=16, momentum=momentum,
                                 learning_rate="constant", eta0=step, max_iter=15, tol=None,
                                 random_state=0).fit(X, y)
        return min(est.loss_curve_)
    best_fixed = min(lowest(mu) for mu in (-0.9, -0.6, -0.3, 0.0, 0.3))
    assert lowest("auto") <= 1.02 * best_fixed


def test_auto_momentum_keeps_its_cap_through_a_climb_every_momentum_makes():
    """scikit-learn's class-weight check (weights 1000 : 1e-4 on noisy blobs,
    at a constant step): the first epochs climb the loss a thousandfold
    under any momentum. Judged the momentum's, each climb lowered the cap
    until -0.9 and the fit stopped early, 9 seeds in 16 at 0.58-0.82 of
    the heavy class (momentum 0: 2, at 0.84-0.86). The simulation shows
    the climb under every momentum: the cap stays."""
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import train_test_split
    X, y = make_blobs(centers=2, random_state=0, cluster_std=20)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5,
                                                        random_state=0)
    kept = [np.mean(AsyncSGDClassifier(
        class_weight={0: 1000, 1: 1e-4}, max_iter=1000, n_iter_no_change=20,
        momentum="auto", learning_rate="constant", eta0=0.01, n_jobs=1,
        random_state=seed).fit(X_train, y_train).predict(X_test) == 0) for seed in range(16)]
    assert sum(share <= 0.87 for share in kept) <= 4, np.round(kept, 2)


def test_auto_momentum_undoes_an_invscaling_first_climb():
    """"invscaling" starts at the user's eta0 on unscaled data: the first
    epoch climbs under any momentum, and going back to the start, the
    step shrunk since, brings the fit down within a few epochs."""
    from sklearn.datasets import make_regression
    X, y = make_regression(1000, 10, random_state=0)
    est = AsyncSGDRegressor(momentum="auto", max_iter=10, random_state=0,
                            n_jobs=1).fit(10 * X, y)
    assert est.score(10 * X, y) > 0.99
