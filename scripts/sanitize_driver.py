"""Workload for scripts/sanitize.sh: multi-threaded and simulated fits over
every write mode, dense and CSR rows, with and without momentum, L2 and
L1 penalties, averaged SGD, linear models and MLPs. Run against a sanitizer build of pyasync (PYTHONPATH); any
sanitizer report fails the run. `--quick` uses smaller data and fewer
combinations (the CI subset)."""
import argparse
import itertools
import os
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp

import pyasync._core
from pyasync import (AsyncMLPClassifier, AsyncMLPRegressor, AsyncSGDClassifier,
                     AsyncSGDRegressor)


def data(n, d, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((n, d))
    y = (X @ rng.standard_normal(d) > 0).astype(np.int64)
    # sparse: a few columns in most rows (the "hot" columns, shared most often) and
    # many rare ones; unsorted indices and a duplicate are summed by scipy
    Xs = sp.random(n, 10 * d, density=0.02, format="csr", random_state=rng,
                   data_rvs=rng.standard_normal)
    hot = sp.csr_matrix(rng.standard_normal((n, 3)) * (rng.rand(n, 3) < 0.5))
    Xs = sp.hstack([hot, Xs], format="csr")
    ys = (Xs @ rng.standard_normal(Xs.shape[1]) > 0).astype(np.int64)
    return (X, y), (Xs, ys)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    # the sanitizer build, not an installed one
    expect = os.environ.get("PYASYNC_EXPECT_BUILD")
    if expect and not os.path.realpath(pyasync._core.__file__).startswith(
            os.path.realpath(expect)):
        sys.exit(f"sanitize driver: imported {pyasync._core.__file__}, not the "
                 f"build under {expect}")
    n, d = (600, 20) if args.quick else (3000, 40)
    (X, y), (Xs, ys) = data(n, d)
    t0 = time.time()
    cases = 0
    updates = ["racy", "atomic", "locked"]
    momenta = [0.0, 0.5]
    penalties = ["l2", "elasticnet"] if not args.quick else ["l2"]
    for update, mom, pen, (XX, yy) in itertools.product(
            updates, momenta, penalties, [(X, y), (Xs, ys)]):
        clf = AsyncSGDClassifier(n_jobs=4, update=update, momentum=mom,
                                 penalty=pen, learning_rate="constant",
                                 eta0=0.01, max_iter=2, tol=None,
                                 random_state=0).fit(XX, yy)
        assert np.all(np.isfinite(clf.coef_)), (update, mom, pen)
        cases += 1
    if args.quick:
        # the L1 path (truncated gradient) once per input kind
        for XX, yy in [(X, y), (Xs, ys)]:
            AsyncSGDClassifier(n_jobs=4, penalty="l1", max_iter=2, tol=None,
                               random_state=0).fit(XX, yy)
            cases += 1
    # multi-class (one-vs-rest, threads per class), float32, a regressor
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    AsyncSGDClassifier(n_jobs=3, max_iter=2, tol=None, random_state=0).fit(
        X.astype(np.float32), y3)
    AsyncSGDRegressor(n_jobs=4, momentum=0.3, max_iter=2, tol=None,
                      random_state=0).fit(Xs, X[:, 0])
    cases += 2
    # the simulated engine: exponential, round robin and a replayed histogram
    for sched in ["exponential", "round_robin", [3, 1, 0, 2]]:
        for XX, yy in [(X, y), (Xs, ys)]:
            AsyncSGDClassifier(asynchrony="simulated", n_workers=4, momentum=0.3,
                               staleness=sched, max_iter=2, tol=None,
                               random_state=0).fit(XX, yy)
            cases += 1
    # averaged SGD: each worker's accumulator, every write mode, dense rows
    # with momentum and L1, CSR rows (the scaled path, in pieces under a
    # strong decay; the lazy gaps' sums with momentum), and the simulated engine
    for update in updates:
        for XX, yy, kw in [(X, y, dict(momentum=0.5, penalty="elasticnet")),
                           (Xs, ys, dict(penalty="l2")),
                           (Xs, ys, dict(momentum=0.5, penalty="elasticnet")),
                           (Xs, ys, dict(alpha=0.3, learning_rate="constant", eta0=0.3))]:
            clf = AsyncSGDClassifier(n_jobs=4, update=update, average=5, max_iter=2, tol=None,
                                     random_state=0, **kw).fit(XX, yy)
            assert np.all(np.isfinite(clf.coef_)), (update, kw)
            cases += 1
    for XX, yy in [(X, y), (Xs, ys)]:
        AsyncSGDClassifier(asynchrony="simulated", n_workers=4, average=True, max_iter=2,
                           tol=None, random_state=0).fit(XX, yy)
        cases += 1
    # momentum="auto": the row-sample simulation, on threads and simulated workers
    # (dense rows past the sample's 1024 give it held-out rows; sparse ones, lumps)
    tall = (np.tile(X, (-(-1500 // n), 1)), np.tile(y, -(-1500 // n)))
    for XX, yy in [tall, (Xs, ys)]:
        AsyncSGDClassifier(n_jobs=2, momentum="auto", max_iter=2, tol=None,
                           random_state=0).fit(XX, yy)
        AsyncSGDClassifier(asynchrony="simulated", n_workers=8, momentum="auto",
                           max_iter=2, tol=None, random_state=0).fit(XX, yy)
        cases += 2
    # the MLP engines: threads in every write mode, the simulated schedules
    # (a replayed histogram too), dense and CSR rows, a regressor
    for update, (XX, yy) in itertools.product(updates, [(X, y), (Xs, ys)]):
        AsyncMLPClassifier(hidden_layer_sizes=(8,), n_jobs=4, update=update, momentum=0.5,
                           batch_size=16, max_iter=2, random_state=0).fit(XX, yy)
        cases += 1
    for sched in ["exponential", "round_robin", [3, 1, 0, 2]]:
        AsyncMLPClassifier(hidden_layer_sizes=(8,), asynchrony="simulated", n_workers=4,
                           staleness=sched, batch_size=16, max_iter=2,
                           random_state=0).fit(X, y3)
        cases += 1
    AsyncMLPRegressor(hidden_layer_sizes=(8, 4), asynchrony="simulated", staleness=[1, 2],
                      momentum="auto", batch_size=16, max_iter=2,
                      random_state=0).fit(Xs, X[:, 0])
    cases += 1
    print(f"sanitize driver: {cases} fits in {time.time() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
