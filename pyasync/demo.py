"""The main job for now: fit the asynchronous classifier on built-in data and
compare it with scikit-learn's SGDClassifier side by side."""
import os
import time

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from .datasets import make_rcv1_like
from .linear import AsyncSGDClassifier

EPOCHS = 5
REPEATS = 3


def _datasets(quick):
    for name, loader in (("digits", load_digits), ("breast_cancer", load_breast_cancer)):
        X, y = loader(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25,
                                                  random_state=0, stratify=y)
        scaler = StandardScaler().fit(X_tr)
        yield name, scaler.transform(X_tr), scaler.transform(X_te), y_tr, y_te
    n = 20_000 if quick else 100_000
    X, y = make_rcv1_like(n_samples=n, n_features=50_000, random_state=0)
    split = int(0.8 * n)
    yield f"rcv1-like sparse {n}x50000", X[:split], X[split:], y[:split], y[split:]


def _time_per_epoch(make, X, y):
    """Median seconds per epoch over a few fits of a fixed number of epochs."""
    times, est = [], None
    for _ in range(REPEATS):
        est = make()
        start = time.perf_counter()
        est.fit(X, y)
        times.append((time.perf_counter() - start) / est.n_iter_)
    return float(np.median(times)), est


def run(quick=False, out=print):
    cores = os.cpu_count()
    out(f"pyasync demo: {EPOCHS} epochs a fit, median of {REPEATS} fits, "
        f"on {cores} cores")
    header = (f"{'data':<32} {'model':<26} {'test acc':>8} {'s/epoch':>9} "
              f"{'vs sklearn':>10} {'staleness mean/max':>19}")
    out(header)
    out("-" * len(header))
    common = dict(max_iter=EPOCHS, tol=None, random_state=0)
    for name, X_tr, X_te, y_tr, y_te in _datasets(quick):
        base, ref = _time_per_epoch(lambda: SGDClassifier(**common), X_tr, y_tr)
        out(f"{name:<32} {'sklearn SGDClassifier':<26} {ref.score(X_te, y_te):>8.4f} "
            f"{base:>9.5f} {1.0:>10.2f} {'-':>19}")
        for n_jobs in (1, 2):
            secs, est = _time_per_epoch(
                lambda: AsyncSGDClassifier(n_jobs=n_jobs, **common), X_tr, y_tr)
            st = est.staleness_
            out(f"{'':<32} {f'AsyncSGDClassifier n_jobs={n_jobs}':<26} "
                f"{est.score(X_te, y_te):>8.4f} {secs:>9.5f} {secs / base:>10.2f} "
                f"{f'{st.mean:.3f}/{st.max}':>19}")
