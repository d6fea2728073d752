"""Per-epoch time of AsyncMLPClassifier against scikit-learn's
MLPClassifier(solver="sgd") with the same architecture and batch size, on
digits and on a synthetic 100,000 x 256, 10-class set, at n_jobs=1 and 2
(or the thread counts --threads names);
and the time to 95% test accuracy on digits.

scikit-learn's MLP runs its matrix products in OpenBLAS, which uses every
core by default: it is timed both with its BLAS held to one thread
(threadpoolctl, the like-for-like comparison with n_jobs=1) and with its
default threads. Medians over repeats (the machine may be shared and noisy).

    python bench/bench_mlp.py [--quick] [--repeats 5] [--threads 1,2,4,8,16] [--epoch-only]
"""
import argparse
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from pyasync import AsyncMLPClassifier
from pyasync.benchmark import counts, positive_int, settle_blas

warnings.simplefilter("ignore", ConvergenceWarning)


def n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def blas_threads():
    return max((p["num_threads"] for p in threadpool_info()
                if p["user_api"] == "blas"), default=1)


def contenders(common, threads):
    """(label, factory, BLAS thread limit or None)."""
    return [
        ("sklearn blas=1", lambda: MLPClassifier(solver="sgd", **common), 1),
        (f"sklearn blas={blas_threads()}", lambda: MLPClassifier(solver="sgd", **common), None),
    ] + [(f"pyasync n_jobs={t}", lambda t=t: AsyncMLPClassifier(n_jobs=t, **common), None)
         for t in threads]


def epoch_time(make, limit, X, y, epochs, repeats):
    settle_blas()  # the previous contender's BLAS threads may still spin
    times = []
    for r in range(repeats):
        est = make().set_params(max_iter=epochs, tol=0.0, n_iter_no_change=10**6,
                                random_state=r)
        with threadpool_limits(limit):
            t = time.perf_counter()
            est.fit(X, y)
            times.append((time.perf_counter() - t) / est.n_iter_)
    return float(np.median(times))


def time_to_accuracy(make, limit, X, y, X_test, y_test, target, max_epochs, repeats):
    """Fit time of the shortest fit (max_iter = 1, 2, ...) whose test
    accuracy reaches target; median over repeats (seeds)."""
    settle_blas()  # the previous contender's BLAS threads may still spin
    results = []
    for r in range(repeats):
        reached = (np.inf, max_epochs)
        for k in range(1, max_epochs + 1):
            est = make().set_params(max_iter=k, tol=0.0, n_iter_no_change=10**6,
                                    random_state=r)
            with threadpool_limits(limit):
                t = time.perf_counter()
                est.fit(X, y)
                spent = time.perf_counter() - t
            if est.score(X_test, y_test) >= target:
                reached = (spent, k)
                break
        results.append(reached)
    secs = float(np.median([s for s, _ in results]))
    epochs = int(np.median([e for _, e in results]))
    return secs, epochs


def report(title, rows, base_label):
    base = dict(rows)[base_label]
    print(f"\n{title}")
    for label, value in rows:
        print(f"  {label:20s} {value * 1e3:10.2f} ms   sklearn(blas=1)/this = "
              f"{base / value:5.2f}x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="20,000 synthetic rows")
    ap.add_argument("--repeats", type=positive_int, default=5)
    ap.add_argument("--threads", type=counts, default="1,2",
                    help="pyasync thread counts, e.g. 1,2,4,8,16")
    ap.add_argument("--epoch-only", action="store_true",
                    help="only digits' time per epoch (small data: threads against minibatches)")
    args = ap.parse_args()
    threads = args.threads
    print(f"cores available: {n_cores()} (os.cpu_count() = {os.cpu_count()}); "
          f"OpenBLAS threads by default: {blas_threads()}")

    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0,
                                              stratify=y)
    common = dict(hidden_layer_sizes=(64,), batch_size=200, learning_rate_init=0.01,
                  momentum=0.9)
    rows = [(label, epoch_time(make, limit, X_tr, y_tr, 20, args.repeats))
            for label, make, limit in contenders(common, threads)]
    report(f"digits {X_tr.shape}, hidden (64,), batch 200: time per epoch", rows,
           "sklearn blas=1")
    if args.epoch_only:
        return

    print("\ndigits: time to 95% test accuracy (the shortest fit that reaches it)")
    base = None
    for label, make, limit in contenders(common, threads):
        secs, epochs = time_to_accuracy(make, limit, X_tr, y_tr, X_te, y_te, 0.95, 60,
                                        args.repeats)
        base = secs if base is None else base
        print(f"  {label:20s} {secs * 1e3:10.2f} ms  ({epochs} epochs)   "
              f"sklearn(blas=1)/this = {base / secs:5.2f}x")

    n = 20000 if args.quick else 100000
    X, y = make_classification(n_samples=n, n_features=256, n_informative=64,
                               n_classes=10, random_state=0)
    X = StandardScaler().fit_transform(X)
    common = dict(hidden_layer_sizes=(128,), batch_size=200, learning_rate_init=0.01,
                  momentum=0.9)
    reps = max(1, min(args.repeats, 3))
    rows = [(label, epoch_time(make, limit, X, y, 2, reps))
            for label, make, limit in contenders(common, threads)]
    report(f"make_classification {X.shape} float64, 10 classes, hidden (128,), "
           "batch 200: time per epoch", rows, "sklearn blas=1")


if __name__ == "__main__":
    main()
