"""The MLPs' momentum="auto" (the stale dynamics' choice, no update
spent) and momentum="probe" against the best fixed momentum of the grid
-0.9..0.9 (step 0.1), on the simulated engine (exponential schedule), with
the learning rate held fixed: epochs to reach a target loss at M = 1, 4,
16, 32, 64, at a small and a large learning rate. "total 0.9" is
target_momentum=0.9 (explicit + measured implicit momentum held at 0.9,
MLPClassifier's default momentum), the rule the probe replaced.

    python bench/bench_mlp_momentum.py [--set design|...|later3|later4|all] [--seed S[,S...]] [--jobs N] [--quick] [--grid-cache DIR] [--auto-only]

"design" holds the problem the probe was developed on (digits, 32 hidden
units, minibatches of 32); "check" holds six more, made after it was
settled (other sizes, batch sizes, activations, regression); its
failures led to probing once, before the first epoch, not before epochs
1, 2, 4, 8, 16 too. "fresh" holds five more, made after that and measured
with two probe epochs; they and the others then led to three. "unseen"
holds five more, made after that and measured once. "later" holds five
more, made after momentum="auto" took the stale-dynamics model (and
before it was measured on them). The model's curvature share, 0.7, was
chosen on the design, check, fresh and unseen sets' cached grids
(seeds 0 and 1). "later2" holds five more, made to test a share that
grows past 16 workers (those grids: 257 -> 268 of 340); on "later2" and
"later" it gained nothing (123 and 95 of 150 before, 123 and 93 after),
so the share stayed constant. "defaults" holds seven more in
MLPClassifier's default configuration (100 hidden units, minibatches of
min(200, n)), made to look at epochs of fewer minibatches (3-40) than
workers: the model then took M workers' law at every update, which
overstated their staleness (120 of 210 within 1.5x, seeds 0-2). They led
the model to the engine's own epochs (`momentum.epoch_staleness`) and the
share to 0.5: 148 of 210 there; on the cached grids' real fits 267 -> 272
of 340, and on "later" and "later2" (seeds 0 and 1) 149 -> 152 of 199.
The seven sets (seeds 0-2, 1,019 cases) then led the share to follow the
output's loss, 0.2 for the cross-entropy and 0.7 for the squared error
(one share of 0.5: 774 within 1.5x and 122 targets missed; these 853
and 80; `pyasync.mlp_auto.CURVATURE_SHARE`), and a stall to lower the
cap by 0.1, not 0.2 (860 and 71), and then the squared error's
curvature to be measured again before epochs 1, 2, 4, 8, 16 and taken
whole (872 and 65). "later3" holds eight more, made before all three
(and measured once after each: 184 -> 191 -> 200 -> 205 of 240 within
1.5x, 24 -> 28 -> 20 -> 24 targets missed). Those counts ran auto for the
grid's 30 epochs; deciding the misses as below, the seven sets take 881
and 48, "later3" 207 and 14; and once one simulated worker shuffled as
scikit-learn does, 882 and 53, "later3" 207 and 16.
"later4" holds eight more, made after every rule of momentum="auto" was
settled, to measure it on problems no rule saw (one of them, circles
with logistic units, sat on a plateau under every momentum, so its
targets were noise: tanh units took its place before "auto" was
measured): seeds 0 and 1, 135 of 160 within 1.5x and 16 targets missed;
the other seed's best fixed momentum (--oracle-seed) 153 and 4.
"blind" (not in "all") holds eight more, made at a later stop and
measured once, seeds 0 and 1: 64 and 65 of 80 within 1.5x, 8 and 7
targets missed; the other seed's best fixed momentum 71 and 68, 3 and 5.
The target is
(as bench_auto_momentum's) FRACTION of the way from the first epoch's loss at momentum 0 to the
lowest loss any grid value reaches in the budget; where the best needs
more than 2/3 of it, a fit that has not reached the target by then runs on
to 1.5x the best's epochs, so that a miss is one (the budget alone cannot
tell). "m" marks a target auto never reached. "ratio" counts auto's epochs (all
its updates: it probes nothing); "auto mu" is its last momentum, "1st mu"
its first choice; "probe" is momentum="probe"'s ratio in
the fit's epochs, "probed" its probe's own updates (three epochs per
momentum tried, on copies of the weights) in epochs of the data, and
"+probed" its ratio with them counted; "time x" is auto's and probe's fit
times against a fixed momentum's (the mean of the grid's). --grid-cache
keeps the grid's curves in a folder (as bench_auto_momentum's does; clear
it when the engine changes), and --auto-only leaves out probe and
"total 0.9", so that a change to auto is measured again quickly.
--oracle-seed S runs the grid at seed S too, and its best momentum at
--seed ("known best", as in bench_auto_momentum: how close knowing the
problem's best momentum, but not the seed's, comes). Each summary line
is followed by its counts by workers."""
import argparse
import os
import time
import warnings
from multiprocessing import Pool

import numpy as np
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris,
                              load_wine, make_blobs, make_circles, make_classification,
                              make_friedman1, make_friedman2, make_friedman3,
                              make_gaussian_quantiles, make_moons, make_regression,
                              make_sparse_uncorrelated)
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from bench_auto_momentum import cached_grid, epochs_to, grid_reach
from pyasync import AsyncMLPClassifier, AsyncMLPRegressor

RATIO = 1.5  # the goal: auto within this many times the best fixed momentum's epochs
GRID = np.round(np.arange(-0.9, 0.91, 0.1), 1)


def standard(X):
    return StandardScaler().fit_transform(X)


def design_problems():
    X, y = load_digits(return_X_y=True)
    yield ("digits 32 hidden, batch 32", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32,), batch_size=32), (0.01, 0.1))


def check_problems():
    X, y = load_digits(return_X_y=True)
    yield ("digits 64 hidden, batch 200", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(64,)), (0.03, 0.3))
    X, y = make_classification(4000, 20, n_informative=10, n_classes=3, random_state=5)
    yield ("classification 3 classes, tanh", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32,), activation="tanh", batch_size=16), (0.003, 0.03))
    X, y = load_breast_cancer(return_X_y=True)
    yield ("breast cancer, batch 8", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16,), batch_size=8), (0.003, 0.03))
    X, y = make_moons(3000, noise=0.25, random_state=6)
    yield ("moons, two layers", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16, 16), batch_size=32), (0.01, 0.1))
    X, y = make_friedman1(3000, noise=0.5, random_state=7)
    yield ("friedman1 regression", standard(X), (y - y.mean()) / y.std(), AsyncMLPRegressor,
           dict(hidden_layer_sizes=(32,), batch_size=32), (0.003, 0.03))
    X, y = make_regression(2000, 20, n_informative=10, noise=10.0, random_state=8)
    yield ("linear regression, logistic units", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(16,), activation="logistic",
                                   batch_size=16), (0.003, 0.03))


def fresh_problems():
    X, y = load_iris(return_X_y=True)
    yield ("iris, batch 8", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(8,), batch_size=8), (0.003, 0.03))
    X, y = make_classification(6000, 40, n_informative=15, flip_y=0.05, random_state=11)
    yield ("binary 40d, 64 hidden, batch 64", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(64,), batch_size=64), (0.01, 0.1))
    X, y = load_wine(return_X_y=True)
    yield ("wine, tanh, batch 4", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(8,), activation="tanh", batch_size=4), (0.001, 0.01))
    X, y = load_diabetes(return_X_y=True)
    yield ("diabetes regression, batch 16", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(32,), batch_size=16), (0.003, 0.03))
    X, y = make_friedman2(4000, noise=10.0, random_state=12)
    yield ("friedman2 regression, two layers", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(32, 16), batch_size=32), (0.001, 0.01))


def unseen_problems():
    X, y = make_classification(3000, 10, n_informative=6, n_classes=4,
                               n_clusters_per_class=2, random_state=21)
    yield ("4 classes, 2 clusters each", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32,), batch_size=32), (0.01, 0.1))
    X, y = make_circles(2000, noise=0.1, factor=0.5, random_state=22)
    yield ("circles, tanh, batch 16", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16,), activation="tanh", batch_size=16), (0.01, 0.1))
    X, y = make_friedman3(3000, noise=0.05, random_state=23)
    yield ("friedman3 regression", standard(X), (y - y.mean()) / y.std(), AsyncMLPRegressor,
           dict(hidden_layer_sizes=(32,), batch_size=32), (0.003, 0.03))
    X, y = load_digits(return_X_y=True)
    yield ("digits, logistic units, batch 100", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(64,), activation="logistic", batch_size=100), (0.03, 0.3))
    X, y = make_blobs(2000, n_features=8, centers=5, cluster_std=3.0, random_state=24)
    yield ("blobs, two layers, batch 8", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16, 16), batch_size=8), (0.003, 0.03))


def later_problems():
    X, y = make_classification(5000, 30, n_informative=12, n_classes=5, random_state=31)
    yield ("5 classes 30d, 64 hidden, batch 64", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(64,), batch_size=64), (0.01, 0.1))
    X, y = load_breast_cancer(return_X_y=True)
    yield ("breast cancer, tanh, batch 32", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32,), activation="tanh", batch_size=32), (0.01, 0.1))
    X, y = make_friedman1(3000, noise=1.0, random_state=32)
    yield ("friedman1, two layers, batch 16", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(32, 32), batch_size=16), (0.001, 0.01))
    X, y = make_moons(4000, noise=0.3, random_state=33)
    yield ("moons, logistic units", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32,), activation="logistic", batch_size=32), (0.03, 0.3))
    rng = np.random.RandomState(34)
    X = rng.standard_normal((3000, 50))
    y = np.tanh(X @ rng.standard_normal(50) / 5) + 0.1 * rng.standard_normal(3000)
    yield ("tanh of a projection, regression", X, (y - y.mean()) / y.std(), AsyncMLPRegressor,
           dict(hidden_layer_sizes=(64,), batch_size=64), (0.003, 0.03))


def later2_problems():
    X, y = make_classification(4000, 16, n_informative=8, n_classes=3, class_sep=0.8,
                               random_state=41)
    yield ("3 classes 16d, 48 hidden, batch 24", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(48,), batch_size=24), (0.01, 0.1))
    X, y = load_digits(return_X_y=True)
    yield ("digits, tanh, batch 64", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(64,), activation="tanh", batch_size=64), (0.01, 0.1))
    X, y = make_friedman2(3000, noise=5.0, random_state=42)
    yield ("friedman2, tanh, two layers", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(16, 16), activation="tanh",
                                   batch_size=32), (0.003, 0.03))
    X, y = make_gaussian_quantiles(n_samples=3000, n_features=6, n_classes=3, random_state=43)
    yield ("gaussian quantiles, two layers", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32, 32), batch_size=16), (0.003, 0.03))
    X, y = make_sparse_uncorrelated(3000, 10, random_state=44)
    yield ("sparse uncorrelated regression", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(32,), batch_size=8), (0.001, 0.01))


def defaults_problems():
    X, y = load_digits(return_X_y=True)
    yield "digits, defaults", standard(X), y, AsyncMLPClassifier, {}, (0.01, 0.1)
    X, y = make_classification(5000, 20, n_informative=10, random_state=51)
    yield "binary 20d, defaults", standard(X), y, AsyncMLPClassifier, {}, (0.01, 0.1)
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast cancer, defaults", standard(X), y, AsyncMLPClassifier, {}, (0.01, 0.1)
    X, y = make_regression(3000, 20, n_informative=10, noise=10, random_state=52)
    yield ("regression 20d, defaults", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, {}, (0.003, 0.03))
    X, y = make_moons(2000, noise=0.2, random_state=53)
    yield "moons, defaults", X, y, AsyncMLPClassifier, {}, (0.03, 0.3)
    X, y = load_diabetes(return_X_y=True)
    yield ("diabetes, defaults", standard(X), (y - y.mean()) / y.std(), AsyncMLPRegressor,
           {}, (0.01, 0.1))
    X, y = make_classification(8000, 30, n_informative=12, n_classes=4, random_state=54)
    yield "4 classes 30d, defaults", standard(X), y, AsyncMLPClassifier, {}, (0.01, 0.1)


def later3_problems():
    X, y = make_classification(3500, 24, n_informative=9, n_classes=6, n_clusters_per_class=1,
                               random_state=61)
    yield ("6 classes 24d, 40 hidden, batch 20", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(40,), batch_size=20), (0.01, 0.1))
    X, y = load_digits(return_X_y=True)
    yield ("digits, two layers 48-24, batch 48", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(48, 24), batch_size=48), (0.01, 0.1))
    rng = np.random.RandomState(62)
    X = rng.standard_normal((2500, 12))
    y = np.sin(X[:, 0] * 1.5) + X[:, 1] * X[:, 2] + 0.2 * rng.standard_normal(2500)
    yield ("sine and product regression, tanh", X, (y - y.mean()) / y.std(), AsyncMLPRegressor,
           dict(hidden_layer_sizes=(48,), activation="tanh", batch_size=24), (0.003, 0.03))
    X, y = make_moons(2500, noise=0.15, random_state=63)
    yield ("moons, three layers, batch 12", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16, 16, 16), batch_size=12), (0.003, 0.03))
    X, y = make_regression(1500, 40, n_informative=25, noise=5.0, random_state=64)
    yield ("regression 40d, batch 40, 128 hidden", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(128,), batch_size=40), (0.003, 0.03))
    X, y = load_wine(return_X_y=True)
    yield ("wine, relu, batch 2", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16,), batch_size=2), (0.001, 0.01))
    X, y = make_blobs(4000, n_features=20, centers=8, cluster_std=4.0, random_state=65)
    yield ("blobs 8 centers, logistic, batch 50", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32,), activation="logistic", batch_size=50), (0.03, 0.3))
    X, y = make_friedman1(5000, noise=2.0, random_state=66)
    yield ("friedman1, defaults", standard(X), (y - y.mean()) / y.std(), AsyncMLPRegressor,
           {}, (0.003, 0.03))


def later4_problems():
    X, y = make_classification(6000, 60, n_informative=20, flip_y=0.02, random_state=71)
    yield ("binary 60d, 96 hidden, batch 128", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(96,), batch_size=128), (0.01, 0.1))
    X, y = load_digits(return_X_y=True)
    yield ("digits, 128 hidden, batch 16", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(128,), batch_size=16), (0.003, 0.03))
    X, y = make_friedman1(4000, noise=1.0, n_features=8, random_state=72)
    yield ("friedman1 8d, tanh, batch 64", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(64,), activation="tanh",
                                   batch_size=64), (0.003, 0.03))
    X, y = make_circles(3000, noise=0.15, factor=0.4, random_state=73)
    yield ("circles, tanh, two layers", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(24, 24), activation="tanh", batch_size=24), (0.01, 0.1))
    rng = np.random.RandomState(74)
    X = rng.standard_normal((3000, 10))
    y = (X ** 2).sum(axis=1) + 0.5 * rng.standard_normal(3000)
    yield ("sum of squares regression", X, (y - y.mean()) / y.std(), AsyncMLPRegressor,
           dict(hidden_layer_sizes=(32,), batch_size=32), (0.001, 0.01))
    X, y = make_classification(5000, 20, n_informative=12, n_classes=8, random_state=75)
    yield ("8 classes 20d, tanh, batch 40", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(48,), activation="tanh", batch_size=40), (0.01, 0.1))
    X, y = load_breast_cancer(return_X_y=True)
    yield ("breast cancer, two layers 32-16", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32, 16), batch_size=16), (0.003, 0.03))
    X, y = load_diabetes(return_X_y=True)
    yield ("diabetes, tanh, two layers, batch 8", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(16, 16), activation="tanh",
                                   batch_size=8), (0.001, 0.01))


def blind_problems():
    """Eight problems made after every rule of momentum="auto" was settled
    (at stop 38), measured once: none was looked at before."""
    X, y = make_blobs(3000, 12, centers=6, cluster_std=4.0, random_state=80)
    yield ("blobs 6 classes 12d, 48 hidden, batch 16", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(48,), batch_size=16), (0.003, 0.03))
    X, y = make_moons(4000, noise=0.25, random_state=81)
    yield ("moons, two layers 32-32", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(32, 32), batch_size=32), (0.01, 0.1))
    X, y = make_regression(3000, 30, n_informative=10, noise=10.0, random_state=82)
    yield ("linear regression 30d, 64 hidden", standard(X), (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(64,), batch_size=32), (0.001, 0.01))
    rng = np.random.RandomState(83)
    X = rng.uniform(-1, 1, (3000, 4))
    y = ((X[:, 0] * X[:, 1] > 0) ^ (rng.uniform(size=3000) < 0.05)).astype(int)
    yield ("xor 4d, tanh, batch 50", X, y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(64,), activation="tanh", batch_size=50), (0.01, 0.1))
    X, y = make_classification(8000, 40, n_informative=15, n_classes=5, random_state=84)
    yield ("5 classes 40d, 128 hidden, batch 256", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(128,), batch_size=256), (0.01, 0.1))
    rng = np.random.RandomState(85)
    X = rng.standard_normal((3000, 8))
    y = rng.poisson(np.exp(0.4 * X[:, 0] - 0.3 * X[:, 1] * X[:, 2] + 0.5))
    yield ("poisson counts 8d, 32 hidden", X, y.astype(float), AsyncMLPRegressor,
           dict(hidden_layer_sizes=(32,), batch_size=32, loss="poisson"), (0.003, 0.03))
    X, y = make_sparse_uncorrelated(3000, 10, random_state=86)
    yield ("sparse uncorrelated, two layers 32-16", X, (y - y.mean()) / y.std(),
           AsyncMLPRegressor, dict(hidden_layer_sizes=(32, 16), batch_size=16),
           (0.001, 0.01))
    X, y = load_iris(return_X_y=True)
    yield ("iris, 16 hidden, batch 4", standard(X), y, AsyncMLPClassifier,
           dict(hidden_layer_sizes=(16,), batch_size=4), (0.003, 0.03))


def problems(which):
    if which in ("design", "all"):
        yield from design_problems()
    if which in ("check", "all"):
        yield from check_problems()
    if which in ("fresh", "all"):
        yield from fresh_problems()
    if which in ("unseen", "all"):
        yield from unseen_problems()
    if which in ("later", "all"):
        yield from later_problems()
    if which in ("later2", "all"):
        yield from later2_problems()
    if which in ("defaults", "all"):
        yield from defaults_problems()
    if which in ("later3", "all"):
        yield from later3_problems()
    if which in ("later4", "all"):
        yield from later4_problems()
    if which == "blind":
        yield from blind_problems()


def curve(Est, X, y, M, momentum, lr, epochs, kw, seed, target_momentum=None):
    """(epoch losses, inf where diverged or stopped; the fit, None where it
    diverged; seconds)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est = Est(asynchrony="simulated", n_workers=M, momentum=momentum,
                      target_momentum=target_momentum, learning_rate_init=lr,
                      max_iter=epochs, tol=0.0, n_iter_no_change=epochs + 1,
                      random_state=seed, **kw).fit(X, y)
        except ValueError:  # diverged
            return np.full(epochs, np.inf), None, time.perf_counter() - start
    c = np.full(epochs, np.inf)
    c[:len(est.loss_curve_)] = est.loss_curve_
    return np.where(np.isfinite(c), c, np.inf), est, time.perf_counter() - start


def case(args):
    name, X, y, Est, kw, M, lr, epochs, seed, grid_cache, auto_only, oracle_seed = args

    def grid_curves(grid_seed):
        def compute():
            runs = {mu: curve(Est, X, y, M, mu, lr, epochs, kw, grid_seed) for mu in GRID}
            return ({mu: r[0] for mu, r in runs.items()},
                    float(np.mean([r[2] for r in runs.values()])))
        return cached_grid(grid_cache, (name, M, lr, epochs, grid_seed), compute)
    curves, fixed_s = grid_curves(seed)
    auto_curve, auto_fit, auto_s = curve(Est, X, y, M, "auto", lr, epochs, kw, seed)
    skipped = np.full(epochs, np.nan), None, np.nan
    probe_curve, probe_fit, probe_s = (
        skipped if auto_only else curve(Est, X, y, M, "probe", lr, epochs, kw, seed))
    held_curve = (skipped if auto_only else
                  curve(Est, X, y, M, "auto", lr, epochs, kw, seed, target_momentum=0.9))[0]
    reached = grid_reach(curves)
    if reached is None:
        return f"{name:<36} {M:>3} {lr:>6g}  no grid value converges", None, None
    target, reach = reached
    best = min(reach, key=reach.get)

    def decided(c, momentum, target_momentum=None):
        """Epochs to the target; where the best needs over 2/3 of the budget,
        a fit that has not reached it runs on to 1.5x the best's epochs,
        as the budget alone cannot tell a miss (nan: not run)."""
        if np.isnan(c).all():
            return np.nan
        decisive = int(np.ceil(RATIO * reach[best]))
        if epochs_to(c, target) < np.inf or decisive <= epochs:
            return epochs_to(c, target)
        longer = curve(Est, X, y, M, momentum, lr, decisive, kw, seed, target_momentum)[0]
        if not np.array_equal(longer[:epochs], c):
            raise RuntimeError(f"{name}: the longer {momentum} fit left its first epochs")
        return epochs_to(longer, target)
    auto, probed = decided(auto_curve, "auto"), decided(probe_curve, "probe")
    held = decided(held_curve, "auto", target_momentum=0.9)
    known = np.nan  # the best momentum of another seed's grid, run at this seed
    if oracle_seed is not None:
        other = grid_reach(grid_curves(oracle_seed)[0])
        if other is not None:
            known_mu = min(other[1], key=other[1].get)
            known = decided(curves[known_mu], known_mu)
    batch = kw.get("batch_size", min(200, X.shape[0]))
    probe = (np.nan if probe_fit is None or auto_only
             else probe_fit.probe_updates_ / np.ceil(X.shape[0] / batch))
    auto_mu, first_mu = ((np.nan, np.nan) if auto_fit is None
                         else (auto_fit.momentum_, auto_fit.momentum_curve_[0]))
    ratios = (auto / reach[best], probed / reach[best], (probed + probe) / reach[best],
              held / reach[best], known / reach[best])
    line = (f"{name:<36} {M:>3} {lr:>6g} {best:>7.1f} {reach[best]:>5.0f} {auto:>5.0f}"
            f"{'m' if auto == np.inf else ' '} {ratios[0]:>6.2f} {auto_mu:>7.2f}"
            f" {first_mu:>6.2f}"
            f" {ratios[1]:>6.2f} {probe:>6.1f} {ratios[2]:>7.2f} {ratios[3]:>9.2f}"
            f" {auto_s / fixed_s:>6.1f} {probe_s / fixed_s:>6.1f}"
            f"{'' if oracle_seed is None else f' {ratios[4]:>10.2f}'}")
    return line, ratios, (auto, reach)


def seed_medians(epochs_by_case, seeds):
    """Per case, the median over `seeds` of auto's epochs and of each grid
    momentum's (inf where a seed did not reach the target): auto against
    the best fixed momentum with the shuffles' and the staleness draws'
    noise averaged out, which a single seed's best (the least of 19
    noisy counts) is not."""
    within = missed = 0
    cases = [runs for runs in epochs_by_case.values() if len(runs) == len(seeds)]
    for runs in cases:
        auto = np.median([a for a, _ in runs])
        best = min(np.median([reach[mu] for _, reach in runs]) for mu in runs[0][1])
        within += auto <= RATIO * best
        missed += auto == np.inf
    print(f"seeds {','.join(map(str, seeds))}, the median of each case's epochs: auto within "
          f"{RATIO:g}x of the best fixed momentum in {within} of {len(cases)} cases; "
          f"target missed in {missed}")


def run(which="design", seed=0, jobs=1, quick=False, grid_cache=None, auto_only=False,
        oracle_seed=None):
    Ms = (1, 16, 64) if quick else (1, 4, 16, 32, 64)
    epochs = 15 if quick else 30
    cases = [(name, X, y, Est, kw, M, lr, epochs, seed, grid_cache, auto_only, oracle_seed)
             for name, X, y, Est, kw, lrs in problems(which) for lr in lrs for M in Ms]
    print(f"{os.cpu_count()} cores; seed {seed}; {epochs} epochs")
    print(f"{'problem':<36} {'M':>3} {'lr':>6} {'best mu':>7} {'best':>5} {'auto':>5}  "
          f"{'ratio':>6} {'auto mu':>7} {'1st mu':>6} {'probe':>6} {'probed':>6} {'+probed':>7} "
          f"{'total 0.9':>9} {'time x':>13}{' known best' if oracle_seed is not None else ''}")
    pool = Pool(jobs) if jobs > 1 else None
    ratios, workers, epochs_by_case = [], [], {}
    for args, (line, case_ratios, counts) in zip(
            cases, pool.imap(case, cases) if pool else map(case, cases)):
        print(line, flush=True)
        if case_ratios is not None:
            ratios.append(case_ratios)
            workers.append(args[5])
            epochs_by_case[args[0], args[5], args[6]] = counts
    if pool:
        pool.close()
    ratios = np.array(ratios).reshape(-1, 5)
    workers = np.array(workers)
    labels = ("auto (all its updates)", "probe, fit epochs", "probe, probed updates counted",
              "total 0.9", f"seed {oracle_seed}'s best fixed momentum")
    for label, r in zip(labels, ratios.T):
        if np.isnan(r).all():
            continue
        print(f"{label}: within {RATIO:g}x of the best fixed momentum in {np.sum(r <= RATIO)} of "
              f"{r.size} cases; median {np.nanmedian(r):.2f}; target missed in "
              f"{np.sum(np.isinf(r))}")
        by_workers = [f"M={M} {np.sum(r[workers == M] <= RATIO)}/{np.sum(workers == M)}"
                      for M in Ms]
        print(f"  by workers: {', '.join(by_workers)}")
    return epochs_by_case


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", default="design",
                        choices=("design", "check", "fresh", "unseen", "later", "later2",
                                 "defaults", "later3", "later4", "all", "blind"))
    parser.add_argument("--seed", default="0",
                        help="a seed, or several (0,1,2): each runs in turn, then every "
                             "case's median over them")
    parser.add_argument("--jobs", type=int, default=1, help="cases run in parallel")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--grid-cache", metavar="DIR",
                        help="keep the grid's curves here and reuse them")
    parser.add_argument("--auto-only", action="store_true",
                        help="leave out momentum='probe' and target_momentum=0.9")
    parser.add_argument("--oracle-seed", type=int, metavar="S",
                        help="also run the grid at seed S, and its best momentum at --seed")
    args = parser.parse_args()
    try:
        seeds = [int(seed) for seed in args.seed.split(",")]
    except ValueError:
        parser.error(f"--seed takes integers separated by commas, not {args.seed!r}")
    epochs_by_case = {}
    for seed in seeds:
        for key, counts in run(args.set, seed, args.jobs, args.quick, args.grid_cache,
                               args.auto_only, args.oracle_seed).items():
            epochs_by_case.setdefault(key, []).append(counts)
    if len(seeds) > 1:
        seed_medians(epochs_by_case, seeds)
