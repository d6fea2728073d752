"""pytest-benchmark suite: one epoch of each engine and update mode against
scikit-learn's SGDClassifier on the same data, dense and sparse, float32 and
float64. Run (results saved as JSON, comparable across commits):

    pytest bench/ --benchmark-only --benchmark-autosave
    pytest bench/ --benchmark-only --benchmark-compare

Each benchmark is a fit of one epoch (tol=None), so fixed costs are in; for
per-epoch times without them use bench/bench_foundation.py."""
import os
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier

from pyasync import AsyncSGDClassifier
from pyasync.datasets import make_dense_classification, make_rcv1_like

ROWS = int(os.environ.get("PYASYNC_BENCH_ROWS", 50_000))


@pytest.fixture(scope="session", params=["dense64", "dense32", "sparse64", "sparse32"])
def data(request):
    kind = request.param
    dtype = np.float32 if kind.endswith("32") else np.float64
    if kind.startswith("dense"):
        return kind, make_dense_classification(ROWS, 100, dtype=dtype)
    return kind, make_rcv1_like(ROWS, 50_000, dtype=dtype)


def _one_epoch(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)


def test_sklearn_sgd(benchmark, data):
    kind, (X, y) = data
    benchmark.group = f"epoch {kind} ({os.cpu_count()} cores)"
    benchmark(_one_epoch, SGDClassifier(max_iter=1, tol=None, random_state=0), X, y)


@pytest.mark.parametrize("n_jobs,update", [(1, "racy"), (2, "racy"), (2, "atomic"),
                                           (2, "locked"), (4, "racy")])
def test_threads_engine(benchmark, data, n_jobs, update):
    kind, (X, y) = data
    benchmark.group = f"epoch {kind} ({os.cpu_count()} cores)"
    est = AsyncSGDClassifier(max_iter=1, tol=None, random_state=0, n_jobs=n_jobs,
                             update=update)
    benchmark(_one_epoch, est, X, y)


@pytest.mark.parametrize("n_workers", [1, 16])
def test_simulated_engine(benchmark, data, n_workers):
    kind, (X, y) = data
    benchmark.group = f"epoch {kind} ({os.cpu_count()} cores)"
    est = AsyncSGDClassifier(max_iter=1, tol=None, random_state=0,
                             asynchrony="simulated", n_workers=n_workers)
    benchmark(_one_epoch, est, X, y)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_kernel_ns_per_update(benchmark, data, momentum):
    """One thread, one epoch: divide by the rows for ns per update."""
    kind, (X, y) = data
    benchmark.group = f"kernel {kind}: ns/update = time / {X.shape[0]} rows"
    est = AsyncSGDClassifier(max_iter=1, tol=None, random_state=0, momentum=momentum,
                             learning_rate="constant", eta0=0.01)
    benchmark(_one_epoch, est, X, y)
    # saved in the JSON next to the timings (fixed costs of a fit included)
    benchmark.extra_info["ns_per_update"] = benchmark.stats.stats.median / X.shape[0] * 1e9
