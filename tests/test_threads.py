"""The threads engine under real concurrency: oversubscription (more worker
threads than cores), every write mode, and the staleness it measures."""
import os

import numpy as np
import pytest
import scipy.sparse as sp

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor
from pyasync import _sgd

# the engine's staleness histogram length and sampling period
HIST_LEN = getattr(_sgd, "HIST_LEN", 257)
STALENESS_SAMPLE_EVERY = getattr(_sgd, "STALENESS_SAMPLE_EVERY", 16)

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

UPDATES = ["racy", "atomic", "locked"]
N_THREADS = 8  # well above the cores of the 2-core CI machine
MAX_ITER = 5


@pytest.fixture(scope="module")
def dense():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((20000, 50))
    w = rng.standard_normal(50)
    y = (X @ w + 0.3 * rng.standard_normal(20000) > 0).astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def sparse():
    # 60000 rows: a worker's chunk of 20000 short sparse rows can finish
    # before the next worker thread has even started
    rng = np.random.RandomState(1)
    X = sp.random(60000, 2000, density=0.01, format="csr", random_state=rng,
                  data_rvs=rng.standard_normal)
    w = rng.standard_normal(2000)
    y = (X @ w > 0).astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def dense_long():
    """Long enough epochs (60000 rows) that the eight workers really overlap
    even when other processes share the two cores."""
    rng = np.random.RandomState(4)
    X = rng.standard_normal((60000, 50))
    y = (X @ rng.standard_normal(50) > 0).astype(np.int64)
    return X, y


@pytest.fixture(scope="module")
def multiclass():
    rng = np.random.RandomState(2)
    X = rng.standard_normal((6000, 30))
    y = np.argmax(X @ rng.standard_normal((30, 4)), axis=1)
    return X, y


def _data(request, name):
    return request.getfixturevalue(name)


def _fit(X, y, **kw):
    params = dict(random_state=0, max_iter=MAX_ITER, tol=None)
    params.update(kw)
    return AsyncSGDClassifier(**params).fit(X, y)


def _wide_sparse(rng, n_rows, n_cols, per_row):
    """CSR rows of `per_row` random columns (scipy's sp.random draws its
    positions from all n_rows x n_cols cells: minutes at this size)."""
    cols = rng.randint(0, n_cols, size=(n_rows, per_row))
    rows = np.repeat(np.arange(n_rows), per_row)
    return sp.csr_matrix((rng.standard_normal(n_rows * per_row), (rows, cols.ravel())),
                         shape=(n_rows, n_cols))


def _check_stats_consistent(stats, n_updates, n_threads, n_models=1):
    hist = np.asarray(stats.histogram)
    assert hist.sum() == stats.n_measured
    assert 0 <= stats.mean <= stats.max
    assert hist.size <= HIST_LEN
    # the last non-empty bin is the largest staleness (or the overflow bin)
    assert hist.size - 1 == min(stats.max, HIST_LEN - 1)
    if n_threads == 1:
        assert stats.n_measured == n_updates
    else:
        # shared writes: one update in STALENESS_SAMPLE_EVERY of each
        # worker's chunk; private copies: the updates of one flush interval
        # in 8, the first of each chunk included
        assert n_updates // (2 * STALENESS_SAMPLE_EVERY) <= stats.n_measured <= n_updates


# ------------------------------------------------ oversubscribed fits ----

@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("data", ["dense", "sparse"])
def test_oversubscribed_fit_is_accurate(request, update, data):
    X, y = _data(request, data)
    ref = _fit(X, y, n_jobs=1).score(X, y)
    clf = _fit(X, y, n_jobs=N_THREADS, update=update)
    assert np.all(np.isfinite(clf.coef_))
    assert clf.n_iter_ == MAX_ITER
    assert clf.t_ == MAX_ITER * X.shape[0] + 1  # no update lost or repeated
    acc = clf.score(X, y)
    assert acc > 0.9
    assert acc >= ref - 0.02, (acc, ref)
    _check_stats_consistent(clf.staleness_, MAX_ITER * X.shape[0], N_THREADS)


@pytest.mark.parametrize("update", UPDATES)
def test_wide_sparse_model_is_accurate(update):
    """A model far wider than a worker's rows (each worker writes the
    shared model: a private copy would cost more than the work) fits as
    well as one thread."""
    rng = np.random.RandomState(5)
    X = sp.hstack([sp.csr_matrix(rng.standard_normal((20000, 5))),
                   _wide_sparse(rng, 20000, 100000, 20)], format="csr")
    y = (X @ rng.standard_normal(X.shape[1]) > 0).astype(np.int64)
    ref = _fit(X, y, n_jobs=1).score(X, y)
    clf = _fit(X, y, n_jobs=N_THREADS, update=update)
    assert clf.t_ == MAX_ITER * X.shape[0] + 1
    assert clf.score(X, y) >= ref - 0.02, (clf.score(X, y), ref)


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("momentum", [0.5, -0.3])
def test_oversubscribed_fit_with_momentum(dense, update, momentum):
    X, y = dense
    clf = _fit(X, y, n_jobs=N_THREADS, update=update, momentum=momentum,
               learning_rate="constant", eta0=0.001)
    assert np.all(np.isfinite(clf.coef_))
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_oversubscribed_sparse_with_l1(sparse, update, penalty):
    X, y = sparse
    clf = _fit(X, y, n_jobs=N_THREADS, update=update, penalty=penalty,
               alpha=1e-5, momentum=0.3)
    assert np.all(np.isfinite(clf.coef_))
    assert clf.score(X, y) > 0.85


@pytest.mark.parametrize("update", UPDATES)
def test_oversubscribed_multiclass(multiclass, update):
    X, y = multiclass
    # a small constant rate: "optimal" is noisy (+-2 points) on this set
    params = dict(learning_rate="constant", eta0=0.001)
    ref = _fit(X, y, n_jobs=1, **params).score(X, y)
    clf = _fit(X, y, n_jobs=N_THREADS, update=update, **params)
    assert clf.score(X, y) >= ref - 0.02
    _check_stats_consistent(clf.staleness_, 4 * MAX_ITER * X.shape[0],
                            N_THREADS, n_models=4)


@pytest.mark.parametrize("update", UPDATES)
def test_oversubscribed_regressor(dense, update):
    X, _ = dense
    rng = np.random.RandomState(3)
    y = X @ rng.standard_normal(X.shape[1]) + 0.1 * rng.standard_normal(X.shape[0])
    reg = AsyncSGDRegressor(n_jobs=N_THREADS, update=update, random_state=0,
                            max_iter=MAX_ITER, tol=None).fit(X, y)
    assert reg.score(X, y) > 0.99
    assert reg.t_ == MAX_ITER * X.shape[0] + 1


@pytest.mark.parametrize("update", UPDATES)
def test_more_threads_than_rows(update):
    rng = np.random.RandomState(0)
    X = rng.standard_normal((5, 3))
    y = np.array([0, 1, 0, 1, 1])
    clf = AsyncSGDClassifier(n_jobs=16, update=update, random_state=0,
                             max_iter=3, tol=None).fit(X, y)
    assert clf.t_ == 3 * 5 + 1
    assert np.all(np.isfinite(clf.coef_))
    reg = AsyncSGDRegressor(n_jobs=16, update=update, random_state=0,
                            max_iter=3, tol=None).fit(X, y.astype(float))
    assert np.all(np.isfinite(reg.coef_))


@pytest.mark.parametrize("update", UPDATES)
def test_partial_fit_with_threads(dense, update):
    X, y = dense
    clf = AsyncSGDClassifier(n_jobs=N_THREADS, update=update, random_state=0)
    for rows in np.array_split(np.arange(X.shape[0]), 5):
        clf.partial_fit(X[rows], y[rows], classes=[0, 1])
    assert clf.t_ == X.shape[0] + 1
    assert clf.score(X, y) > 0.9


# ------------------------------------------------------------ staleness ----

def _nontrivial(stats):
    hist = np.asarray(stats.histogram)
    return (stats.max > 0 and np.count_nonzero(hist) > 1
            and stats.n_measured > 0 and stats.mean > 0)


@pytest.mark.parametrize("update", ["racy", "atomic"])
@pytest.mark.parametrize("data", ["dense_long", "sparse"])
def test_lock_free_staleness_is_nontrivial(request, update, data):
    """Eight lock-free workers on two cores overtake each other: some
    measured updates see other workers' commits between read and write.
    (Up to five fits, so that a scheduler that happens to serialise one
    short fit does not fail the test.)"""
    X, y = _data(request, data)
    for attempt in range(5):
        stats = _fit(X, y, n_jobs=N_THREADS, update=update,
                     random_state=attempt).staleness_
        if _nontrivial(stats):
            break
    assert _nontrivial(stats), stats
    hist = np.asarray(stats.histogram)
    assert stats.mean == pytest.approx(
        np.dot(np.arange(hist.size), hist) / stats.n_measured,
        rel=1e-9) or hist.size == HIST_LEN


@pytest.mark.parametrize("data", ["dense_long", "sparse"])
@pytest.mark.parametrize("n_jobs", [2, N_THREADS])
def test_locked_updates_are_never_stale(request, data, n_jobs):
    """Under the lock a worker's read and write are one critical section:
    no other worker can commit in between, so every measured staleness is 0."""
    X, y = _data(request, data)
    stats = _fit(X, y, n_jobs=n_jobs, update="locked").staleness_
    assert stats.n_measured > 0
    assert stats.max == 0, stats
    assert stats.mean == 0
    assert np.count_nonzero(stats.histogram[1:]) == 0


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("data", ["dense", "sparse"])
def test_one_thread_staleness_is_all_zero(request, update, data):
    X, y = _data(request, data)
    stats = _fit(X, y, n_jobs=1, update=update).staleness_
    assert stats.max == 0 and stats.mean == 0
    assert stats.histogram.shape == (1,)
    assert stats.histogram[0] == stats.n_measured == MAX_ITER * X.shape[0]


def test_one_thread_large_input_staleness_is_all_zero():
    """Above the inline threshold one worker thread runs the epoch: still
    nothing can overtake it."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((12000, 200))
    y = (X[:, 0] > 0).astype(int)
    stats = _fit(X, y, n_jobs=1, max_iter=2).staleness_
    assert stats.max == 0
    assert stats.histogram.shape == (1,)


# ------------------------------------------------------------- n_jobs ----

@pytest.mark.parametrize("n_jobs", [-1, -2, None])
def test_negative_and_default_n_jobs(dense, n_jobs):
    X, y = dense
    clf = _fit(X[:5000], y[:5000], n_jobs=n_jobs)
    assert clf.score(X[:5000], y[:5000]) > 0.9
    assert clf.t_ == MAX_ITER * 5000 + 1


def _n_threads_used(X, y, n_jobs):
    """1 when a fit ran on one thread: only then is every update measured
    (several workers under the lock measure one in STALENESS_SAMPLE_EVERY)."""
    stats = _fit(X, y, n_jobs=n_jobs, max_iter=1, update="locked").staleness_
    return 1 if stats.n_measured == X.shape[0] else "several"


def test_n_jobs_minus_one_uses_all_cores(dense):
    X, y = dense
    X, y = X[:4000], y[:4000]
    cores = os.cpu_count() or 1
    assert _n_threads_used(X, y, None) == 1
    assert _n_threads_used(X, y, 1) == 1
    assert _n_threads_used(X, y, -1) == (1 if cores == 1 else "several")
    assert _n_threads_used(X, y, -2) == (1 if cores <= 2 else "several")
    assert _n_threads_used(X, y, -cores) == 1
    assert _n_threads_used(X, y, -cores - 5) == 1  # never fewer than one


def test_repeated_threaded_fits_are_stable(dense):
    """Many short threaded fits in a row: no leaked threads, no crash, and
    the results stay close to one another."""
    X, y = dense
    X, y = X[:3000], y[:3000]
    scores = [AsyncSGDClassifier(n_jobs=N_THREADS, update=update,
                                 random_state=0, max_iter=2, tol=None)
              .fit(X, y).score(X, y)
              for _ in range(10) for update in UPDATES]
    assert min(scores) > 0.9
    assert max(scores) - min(scores) < 0.05


def test_hot_columns_are_the_most_frequent(monkeypatch):
    """Hot columns (shared most often by each thread) are those in more than
    HOT_FREQUENCY of rows, most frequent first, whether counted exactly or
    from a sample of a large input."""
    rng = np.random.RandomState(0)
    n_rows, n_cols = 4000, 200  # fewer than MAX_HOT: no cap
    freq = np.linspace(0.3, 0.0, n_cols)  # column j in freq[j] of rows
    X = sp.csr_matrix(rng.random_sample((n_rows, n_cols)) < freq)
    counts = np.bincount(X.indices, minlength=n_cols)
    expected = np.flatnonzero(counts > _sgd.HOT_FREQUENCY * n_rows)
    for sample in (X.nnz, X.nnz // 8):  # exact, then sampled
        monkeypatch.setattr(_sgd, "HOT_SAMPLE", sample)
        hot = _sgd.hot_columns(X)
        assert np.all(np.diff(counts[hot]) <= 0) or sample < X.nnz
        assert np.unique(hot).size == hot.size
        # a sample may misjudge only columns near the threshold
        near = np.abs(counts / n_rows - _sgd.HOT_FREQUENCY) < 0.01
        assert set(hot) ^ set(expected) <= set(np.flatnonzero(near))
        if sample == X.nnz:
            assert set(hot) == set(expected)


@pytest.mark.parametrize("layout, momentum, penalty", [
    ("dense", 0.0, None), ("dense", 0.5, None), ("sparse", 0.0, None),
    ("sparse", 0.5, None), ("sparse_wide", 0.0, None),  # momentum on sparse rows:
    ("dense", 0.0, "l1"), ("sparse", 0.0, "l1")])      # the "sparse" case's path
def test_atomic_updates_lose_nothing(layout, momentum, penalty):
    """Where every step is the same whatever the weights (huber far outside
    epsilon: a constant-size gradient), the model after an epoch is the sum
    of all steps in any order: 8 atomic workers must land where one worker
    does, whether they flush private copies by compare-and-swap (dense;
    sparse without momentum) or write the shared model (momentum on sparse
    rows; a model too wide for copies to pay; an L1 penalty, whose
    truncation, here too small to move a weight, must not overwrite a step
    another worker lands)."""
    rng = np.random.RandomState(0)
    if layout == "sparse_wide":
        X = _wide_sparse(rng, 6000, 50000, 20)
        X.data = np.abs(X.data)
    else:
        X = rng.random_sample((6000, 40)) * (rng.random_sample((6000, 40)) < 0.3)
        X = sp.csr_matrix(X) if layout == "sparse" else X
    y = np.full(6000, 1e6)  # residual stays positive: step = eta0 * epsilon
    common = dict(loss="huber", epsilon=1e-3, penalty=penalty, alpha=1e-300,
                  learning_rate="constant", eta0=1e-3, max_iter=1, tol=None,
                  momentum=momentum, fit_intercept=True, random_state=0)
    one = AsyncSGDRegressor(n_jobs=1, **common).fit(X, y)
    many = AsyncSGDRegressor(n_jobs=N_THREADS, update="atomic", **common).fit(X, y)
    if momentum == 0.0:
        np.testing.assert_allclose(many.coef_, one.coef_, rtol=1e-9)
        np.testing.assert_allclose(many.intercept_, one.intercept_, rtol=1e-9)
    else:  # momentum weights steps by their position in the sequence
        np.testing.assert_allclose(many.coef_, one.coef_, rtol=0.05)
