"""momentum="auto" against the best fixed momentum in the grid -0.9..0.9,
on the simulated engine (exponential schedule): updates to reach a target
loss at M = 1, 4, 16, 32, 64, at a small and a large learning rate.

    python bench/bench_auto_momentum.py [--quick]

Updates to target = epochs until the epoch's mean training loss falls to the
target, times the rows an epoch; "auto" counts every update it makes."""
import argparse
import warnings

import numpy as np
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor

GRID = np.round(np.arange(-0.9, 0.91, 0.1), 1)


def problems(seed=0):
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits 0-4 vs 5-9 (log_loss)", X, (y >= 5).astype(int), AsyncSGDClassifier, \
        dict(loss="log_loss", penalty="l2", alpha=1e-4)
    rng = np.random.RandomState(seed)
    X, y = make_regression(n_samples=1000, n_features=20, noise=5.0, random_state=seed)
    X = X @ np.diag(np.geomspace(1.0, 0.1, 20)) @ np.linalg.qr(rng.randn(20, 20))[0]
    X = StandardScaler().fit_transform(X) * np.geomspace(1, 0.1, 20)
    yield "least squares, condition 100 (squared_error)", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="squared_error", penalty=None)


def updates_to_target(make, X, y, target, max_epochs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est = make(max_epochs).fit(X, y)
        except ValueError:  # diverged
            return np.inf, None
    curve = np.asarray(est.loss_curve_)
    hit = np.flatnonzero(curve <= target)
    return (hit[0] + 1) * X.shape[0] if hit.size else np.inf, est


def run(quick):
    Ms = (1, 16, 64) if quick else (1, 4, 16, 32, 64)
    max_epochs = 60 if quick else 150
    print(f"{'problem':<46} {'M':>3} {'eta0':>6} {'best mu':>7} {'best upd':>9} "
          f"{'auto upd':>9} {'ratio':>6} {'auto mu':>7}")
    worst = 0.0
    for name, X, y, Est, kw in problems():
        h_max = np.linalg.eigvalsh(X.T @ X / X.shape[0])[-1]
        for eta in (0.02 / h_max, 0.5 / h_max):
            for M in Ms:
                def make(mu):
                    return lambda e: Est(asynchrony="simulated", n_workers=M, momentum=mu,
                                         learning_rate="constant", eta0=eta, tol=None,
                                         max_iter=e, random_state=0, **kw)
                # target: 10% above the lowest loss any grid value reaches
                curves = {}
                for mu in GRID:
                    _, est = updates_to_target(make(mu), X, y, -np.inf, max_epochs)
                    curves[mu] = min(est.loss_curve_) if est is not None else np.inf
                best_loss = min(curves.values())
                if not np.isfinite(best_loss):
                    print(f"{name:<46} {M:>3} {eta:>6.3f}  no grid value converges")
                    continue
                first = [updates_to_target(make(mu), X, y, np.inf, 1)[1] for mu in (0.0,)]
                start = first[0].loss_curve_[0] if first[0] is not None else best_loss * 10
                target = best_loss + 0.1 * (start - best_loss)
                grid_upd = {mu: updates_to_target(make(mu), X, y, target, max_epochs)[0]
                            for mu in GRID}
                best_mu = min(grid_upd, key=grid_upd.get)
                auto_upd, auto = updates_to_target(make("auto"), X, y, target, max_epochs)
                ratio = auto_upd / grid_upd[best_mu]
                worst = max(worst, ratio)
                print(f"{name:<46} {M:>3} {eta:>6.3f} {best_mu:>7.1f} "
                      f"{grid_upd[best_mu]:>9.0f} {auto_upd:>9.0f} {ratio:>6.2f} "
                      f"{auto.momentum_ if auto is not None else float('nan'):>7.2f}")
    print(f"worst auto / best-grid ratio: {worst:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)
