"""momentum="auto" against the best fixed momentum of the grid -0.9..0.9
(step 0.1), on the simulated engine (exponential schedule), with the
learning rate held fixed: updates to reach a target loss at M = 1, 4, 16,
32, 64, at a small and a large step (--steps: others).

    python bench/bench_auto_momentum.py [--quick] [--set design|check|extra|holdout|fresh|unseen|large|large-fresh|huge|huge-fresh|weighted|penalized|sparse-penalized|sparse-moderate|all|blind] [--seed S] [--steps 0.02,0.3] [--partial-fit] [--grid-cache DIR]

"design" holds the problems momentum="auto" was developed on; "check"
holds eight it was not, at first (its failures later led to the flat-margin
and kick-bound rules); "extra" holds six more, added after those rules (they
led to huber's secant curvature); "holdout" holds six more, measured
before the row-sample simulation replaced the quadratic surrogate (its
failures there led to it); "fresh" holds eight more, added with that change
and measured once, before any change was made for them (its failures led to
the held-out rows of dense samples); "unseen" holds eight more, added with
that change and measured once with and without it (its sparse regression
led to the sparse rows' whole own kicks); "large" holds four of 20,000 to
30,000 rows (an epoch far longer than the 5,000 simulated updates), added
with the epoch-long loss windows; "large-fresh" holds six more of 8,000 to
40,000 rows, made after the two-epoch horizon on such data was settled and
measured with and without it (its sparse problem then led to keeping
sparse samples at 5,000 updates); "huge" holds three of 60,000 to
100,000 rows (an epoch longer than the simulation's budget allows), added
with the budget-long horizon watched over its second half, and
"huge-fresh" four of 50,000 to 70,000 rows, made after that rule and
measured once with and without it; "weighted" holds three with class
weights (up to 1:20), added with the weighted steps of the simulation and
measured once with and without them; "penalized" holds eleven with strong
penalties (alpha 1e-3 to 3e-2), added with the simulation's L2 decay, and
"sparse-penalized" six sparse ones (alpha 3e-4 to 1e-2), added with the
roll-back of epochs that blow up, each measured with and without its change;
"sparse-moderate" holds eight more sparse ones (alpha 3e-4 to 5e-3, two of
them regressions), made after the held-out rows of samples whose rows
forget between visits were settled, and measured once with and without them.
"blind" holds eight more (least squares, classification with L1, three
classes, epsilon-insensitive, very sparse log loss, friedman2), made after
every rule was settled and measured once a seed with nothing changed for
them; it is not in "all", whose counts README quotes.

The target is a fixed fraction (FRACTION) of the way from the first epoch's loss to
the lowest loss any grid value reaches within the budget. Updates are
counted at epoch granularity (the epoch whose mean training loss reaches
the target); "auto" counts every update it makes. Where the best needs
more than 2/3 of the budget, an auto that has not reached the target by
then runs on, untimed, to 1.5x the best's epochs, so that a miss is one
(the budget alone cannot tell). --partial-fit drives
every fit's epochs through partial_fit, one call each, the grid's and
auto's alike. The last column is auto's CPU time over a fixed momentum's
(the mean of the grid's), its choices included. --grid-cache keeps the
grid's curves (they do not depend on auto) in a folder, so that a change
to auto is measured again at a third of the cost (clear it when the
engine changes: the key is the problem and the settings, not the code);
its CPU column then compares with the cached fits' times.
--oracle-seed S runs the grid at seed S too (other shuffles and staleness
draws), and its best momentum at --seed: "known best" is that momentum's
updates over this seed's best's, how close knowing the best momentum of
the problem, but not of the seed, comes (a bound on what any choice made
before the fit sees its draws can hold)."""
import argparse
import hashlib
import os
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits, load_iris,
                              load_wine, make_blobs, make_classification, make_friedman1,
                              make_friedman2, make_friedman3, make_gaussian_quantiles,
                              make_hastie_10_2, make_regression, make_sparse_uncorrelated)
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor
from pyasync.benchmark import numbers
from pyasync.datasets import make_rcv1_like
from pyasync.reproduce import regression_problem

FRACTION = 0.05
RATIO = 1.5  # the goal: auto within this many times the best fixed momentum's updates
GRID = np.round(np.arange(-0.9, 0.91, 0.1), 1)
STEPS = (0.02, 0.3)  # learning rates, times 1 / mean squared row norm


def problems(which="design"):
    if which in ("design", "all"):
        yield from design_problems()
    if which in ("check", "all"):
        yield from check_problems()
    if which in ("extra", "all"):
        yield from extra_problems()
    if which in ("holdout", "all"):
        yield from holdout_problems()
    if which in ("fresh", "all"):
        yield from fresh_problems()
    if which in ("unseen", "all"):
        yield from unseen_problems()
    if which in ("large", "all"):
        yield from large_problems()
    if which in ("large-fresh", "all"):
        yield from large_fresh_problems()
    if which in ("huge", "all"):
        yield from huge_problems()
    if which in ("huge-fresh", "all"):
        yield from huge_fresh_problems()
    if which in ("weighted", "all"):
        yield from weighted_problems()
    if which in ("penalized", "all"):
        yield from penalized_problems()
    if which in ("sparse-penalized", "all"):
        yield from sparse_penalized_problems()
    if which in ("sparse-moderate", "all"):
        yield from sparse_moderate_problems()
    if which == "blind":
        yield from blind_problems()


def design_problems():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits 0-4 vs 5-9, log_loss", X, (y >= 5).astype(int), AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)
    X, y = regression_problem(n_samples=500, condition=100, seed=1)
    yield "least squares, condition 100", X, y, AsyncSGDRegressor, dict(penalty=None)
    X, y = make_regression(n_samples=1000, n_features=30, noise=10.0, random_state=2)
    X = StandardScaler().fit_transform(X)
    yield "noisy regression, huber", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="huber", epsilon=1.0, alpha=1e-4)
    X, y = make_rcv1_like(n_samples=2000, n_features=5000, nnz_per_row=30, random_state=3)
    yield "sparse text-like, hinge", X, y, AsyncSGDClassifier, dict(loss="hinge", alpha=1e-4)


def check_problems():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "breast cancer, hinge", X, y, AsyncSGDClassifier, dict(loss="hinge", alpha=1e-3)
    X, y = make_classification(1500, 40, n_informative=10, flip_y=0.05, random_state=5)
    X = StandardScaler().fit_transform(X)
    yield "classification 40d, modified_huber", X, y, AsyncSGDClassifier, \
        dict(loss="modified_huber", alpha=1e-4)
    X, y = make_regression(n_samples=800, n_features=50, effective_rank=10, noise=5.0,
                           random_state=7)
    X = StandardScaler().fit_transform(X)
    yield "low-rank regression, squared", X, y / y.std(), AsyncSGDRegressor, dict(alpha=1e-4)
    X, y = make_rcv1_like(n_samples=3000, n_features=8000, nnz_per_row=40, random_state=11)
    yield "sparse text-like, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-5)
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "diabetes, squared_error", X, (y - y.mean()) / y.std(), AsyncSGDRegressor, \
        dict(alpha=1e-4)
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "wine class 0 vs rest, log_loss", X, (y == 0).astype(int), AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-3)
    X, y = make_classification(3000, 100, n_informative=30, flip_y=0.02, class_sep=0.5,
                               random_state=21)
    X = StandardScaler().fit_transform(X)
    yield "classification 100d, hinge", X, y, AsyncSGDClassifier, dict(loss="hinge", alpha=1e-5)
    rng = np.random.RandomState(4)
    X = sp.random(4000, 3000, density=0.01, format="csr", random_state=rng)
    y = (X @ rng.standard_normal(3000) + 0.1 * rng.standard_normal(4000) > 0).astype(int)
    yield "uniform sparse, squared_hinge", X, y, AsyncSGDClassifier, \
        dict(loss="squared_hinge", alpha=1e-5)


def extra_problems():
    X, y = make_friedman1(1200, 10, noise=1.0, random_state=31)
    X = StandardScaler().fit_transform(X)
    yield "friedman1, squared", X, (y - y.mean()) / y.std(), AsyncSGDRegressor, \
        dict(alpha=1e-4)
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "iris versicolor, log_loss", X, (y == 1).astype(int), AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)
    X, y = make_classification(2000, 20, n_informative=5, flip_y=0.1, random_state=32)
    X = StandardScaler().fit_transform(X)
    yield "classification 20d noisy, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)
    X, y = make_regression(1500, 80, n_informative=20, noise=20.0, random_state=33)
    X = StandardScaler().fit_transform(X)
    yield "regression 80d, huber", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="huber", alpha=1e-5)
    X, y = make_rcv1_like(n_samples=2500, n_features=6000, nnz_per_row=25, random_state=34)
    yield "sparse text-like, modified_huber", X, y, AsyncSGDClassifier, \
        dict(loss="modified_huber", alpha=1e-5)
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits 3 vs rest, hinge", X, (y == 3).astype(int), AsyncSGDClassifier, \
        dict(loss="hinge", alpha=1e-4)


def holdout_problems():
    X, y = make_classification(1000, 15, n_informative=8, flip_y=0.0, class_sep=2.0,
                               random_state=41)
    X = StandardScaler().fit_transform(X)
    yield "separable 15d, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)
    X, y = make_regression(1000, 20, noise=0.5, random_state=42)
    X = MinMaxScaler().fit_transform(X)
    yield "min-max regression, eps_insensitive", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="epsilon_insensitive", epsilon=0.05, alpha=1e-5)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "breast cancer, modified_huber", X, y, AsyncSGDClassifier, \
        dict(loss="modified_huber", alpha=1e-4)
    X, y = make_sparse_uncorrelated(1500, 10, random_state=43)
    X = StandardScaler().fit_transform(X)
    yield "sparse_uncorrelated, sq_eps_insens", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="squared_epsilon_insensitive", epsilon=0.1, alpha=1e-4)
    rng = np.random.RandomState(44)
    X = sp.random(3000, 1000, density=0.02, format="csr", random_state=rng)
    t = X @ rng.standard_normal(1000) + 0.05 * rng.standard_normal(3000)
    yield "sparse regression, squared", X, t / t.std(), AsyncSGDRegressor, dict(alpha=1e-5)
    X, y = make_classification(2500, 50, n_informative=25, flip_y=0.05, random_state=45)
    X = StandardScaler().fit_transform(X)
    yield "50d, perceptron", X, y, AsyncSGDClassifier, dict(loss="perceptron", penalty=None)


def fresh_problems():
    X, y = make_hastie_10_2(2000, random_state=51)
    X = StandardScaler().fit_transform(X)
    yield "hastie 10d, hinge", X, y, AsyncSGDClassifier, dict(loss="hinge", alpha=1e-4)
    X, y = make_friedman3(1500, noise=0.1, random_state=52)
    X = StandardScaler().fit_transform(X)
    yield "friedman3, squared", X, (y - y.mean()) / y.std(), AsyncSGDRegressor, \
        dict(alpha=1e-4)
    X, y = make_blobs(2000, 30, centers=2, cluster_std=3.0, random_state=53)
    X = StandardScaler().fit_transform(X)
    yield "blobs 30d, log_loss", X, y, AsyncSGDClassifier, dict(loss="log_loss", alpha=1e-5)
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits 8 vs rest, squared_hinge", X, (y == 8).astype(int), AsyncSGDClassifier, \
        dict(loss="squared_hinge", alpha=1e-4)
    X, y = make_classification(4000, 200, n_informative=20, flip_y=0.03, random_state=55)
    X = StandardScaler().fit_transform(X)
    yield "classification 200d, modified_huber", X, y, AsyncSGDClassifier, \
        dict(loss="modified_huber", alpha=1e-5)
    X, y = make_rcv1_like(n_samples=3000, n_features=10000, nnz_per_row=50, random_state=56)
    yield "sparse text-like, log_loss 1e-6", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-6)
    X, y = make_classification(1500, 1500, n_informative=50, random_state=57)
    X = StandardScaler().fit_transform(X)
    yield "wide dense 1500d, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)
    rng = np.random.RandomState(58)
    X, y = make_regression(1200, 40, noise=5.0, random_state=58)
    y[rng.rand(y.size) < 0.05] *= 10.0
    X = StandardScaler().fit_transform(X)
    yield "regression with outliers, huber", X, y / np.median(np.abs(y)), \
        AsyncSGDRegressor, dict(loss="huber", epsilon=1.35, alpha=1e-4)


def unseen_problems():
    X, y = make_classification(3000, 60, n_informative=15, n_redundant=10, flip_y=0.01,
                               random_state=61)
    X = StandardScaler().fit_transform(X)
    yield "classification 60d, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-5)
    X, y = make_friedman2(2000, noise=0.0, random_state=62)
    X = StandardScaler().fit_transform(X)
    yield "friedman2, squared", X, (y - y.mean()) / y.std(), AsyncSGDRegressor, \
        dict(alpha=1e-5)
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits even vs odd, hinge", X, y % 2, AsyncSGDClassifier, \
        dict(loss="hinge", alpha=1e-5)
    X, y = make_rcv1_like(n_samples=4000, n_features=20000, nnz_per_row=20, random_state=64)
    yield "sparse text-like, hinge 1e-6", X, y, AsyncSGDClassifier, \
        dict(loss="hinge", alpha=1e-6)
    X, y = make_gaussian_quantiles(n_samples=2000, n_features=8, n_classes=2,
                                   random_state=65)
    yield "gaussian quantiles, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)
    X, y = make_regression(2000, 100, effective_rank=20, tail_strength=0.3, noise=1.0,
                           random_state=66)
    X = StandardScaler().fit_transform(X)
    yield "low-rank 100d regression, huber", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="huber", epsilon=0.5, alpha=1e-5)
    rng = np.random.RandomState(67)
    X = sp.random(5000, 2000, density=0.005, format="csr", random_state=rng)
    t = X @ rng.standard_normal(2000) + 0.1 * rng.standard_normal(5000)
    yield "sparse regression, eps_insensitive", X, t / t.std(), AsyncSGDRegressor, \
        dict(loss="epsilon_insensitive", epsilon=0.01, alpha=1e-6)
    X, y = make_classification(6000, 30, n_informative=30, n_redundant=0, class_sep=0.8,
                               weights=[0.8, 0.2], random_state=68)
    X = StandardScaler().fit_transform(X)
    yield "imbalanced 30d, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)


def large_problems():
    X, y = make_classification(30000, 50, n_informative=20, flip_y=0.02, random_state=71)
    X = StandardScaler().fit_transform(X)
    yield "large classification 50d, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-5)
    X, y = make_regression(20000, 100, n_informative=40, noise=5.0, random_state=72)
    X = StandardScaler().fit_transform(X)
    yield "large regression 100d, squared", X, y / y.std(), AsyncSGDRegressor, \
        dict(alpha=1e-5)
    X, y = make_rcv1_like(n_samples=30000, n_features=20000, nnz_per_row=30, random_state=73)
    yield "large sparse text-like, hinge", X, y, AsyncSGDClassifier, \
        dict(loss="hinge", alpha=1e-5)
    X, y = make_hastie_10_2(20000, random_state=74)
    yield "large hastie, modified_huber", X, y, AsyncSGDClassifier, \
        dict(loss="modified_huber", alpha=1e-4)


def large_fresh_problems():
    X, y = make_classification(12000, 30, n_informative=10, flip_y=0.05, class_sep=0.8,
                               random_state=201)
    yield "big classification 30d, hinge", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="hinge", alpha=1e-4)
    X, y = make_regression(15000, 60, n_informative=25, noise=10.0, random_state=202)
    yield "big regression 60d, squared", StandardScaler().fit_transform(X), y / y.std(), \
        AsyncSGDRegressor, dict(alpha=1e-4)
    X, y = make_classification(25000, 54, n_informative=30, n_clusters_per_class=4,
                               flip_y=0.01, random_state=203)
    yield "big clusters 54d, log_loss", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="log_loss", alpha=1e-5)
    X, y = make_rcv1_like(n_samples=40000, n_features=10000, nnz_per_row=40, random_state=204)
    yield "big sparse text-like, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-5)
    X, y = make_friedman1(10000, n_features=10, noise=1.0, random_state=205)
    yield "big friedman1, huber", StandardScaler().fit_transform(X), (y - y.mean()) / y.std(), \
        AsyncSGDRegressor, dict(loss="huber", epsilon=0.5, alpha=1e-4)
    X, y = make_classification(8000, 100, n_informative=50, flip_y=0.03, random_state=206)
    yield "big classification 100d, modified_huber", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="modified_huber", alpha=1e-4)


def huge_problems():
    X, y = make_classification(60000, 50, n_informative=20, flip_y=0.05, random_state=31)
    yield "huge log_loss 60k x 50", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="log_loss", alpha=1e-4)
    X, y = make_friedman1(80000, n_features=20, noise=1.0, random_state=32)
    yield "huge friedman1 squared 80k", StandardScaler().fit_transform(X), \
        (y - y.mean()) / y.std(), AsyncSGDRegressor, dict(loss="squared_error", alpha=1e-4)
    X, y = make_classification(100000, 30, n_informative=10, n_clusters_per_class=3,
                               flip_y=0.02, random_state=33)
    yield "huge hinge 100k x 30", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="hinge", alpha=1e-4)


def huge_fresh_problems():
    X, y = make_regression(50000, 100, n_informative=30, effective_rank=10, noise=5.0,
                           random_state=41)
    yield "hf low-rank regression 50k", StandardScaler().fit_transform(X), \
        (y - y.mean()) / y.std(), AsyncSGDRegressor, dict(loss="squared_error", alpha=1e-4)
    X, y = make_classification(70000, 80, n_informative=30, class_sep=0.5, random_state=42)
    yield "hf modified_huber 70k x 80", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="modified_huber", alpha=1e-4)
    X, y = make_classification(50000, 20, n_informative=8, weights=[0.9, 0.1], random_state=43)
    yield "hf imbalanced log_loss 50k", StandardScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="log_loss", alpha=1e-4)
    X, y = make_classification(60000, 40, n_informative=15, random_state=44)
    yield "hf minmax squared_hinge 60k", MinMaxScaler().fit_transform(X), y, \
        AsyncSGDClassifier, dict(loss="squared_hinge", alpha=1e-4)


def weighted_problems():
    X, y = make_classification(4000, 30, weights=[0.92, 0.08], n_informative=10,
                               random_state=81)
    X = StandardScaler().fit_transform(X)
    yield "imbalanced 30d, hinge, balanced", X, y, AsyncSGDClassifier, \
        dict(loss="hinge", alpha=1e-5, class_weight="balanced")
    X, y = make_classification(3000, 20, weights=[0.95, 0.05], flip_y=0.01, random_state=82)
    X = StandardScaler().fit_transform(X)
    yield "imbalanced 20d, log_loss, 1:20", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4, class_weight={0: 1.0, 1: 20.0})
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits 0 vs rest, modified_huber, balanced", X, (y == 0).astype(int), \
        AsyncSGDClassifier, dict(loss="modified_huber", alpha=1e-5, class_weight="balanced")


def penalized_problems():
    X, y = make_classification(3000, 30, n_informative=10, flip_y=0.02, random_state=91)
    X = StandardScaler().fit_transform(X)
    yield "classification 30d, log_loss 1e-2", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-2)
    X, y = make_regression(2000, 40, noise=10.0, random_state=92)
    X = StandardScaler().fit_transform(X)
    yield "regression 40d, squared 1e-2", X, y / y.std(), AsyncSGDRegressor, dict(alpha=1e-2)
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "breast cancer, hinge 1e-2", X, y, AsyncSGDClassifier, dict(loss="hinge", alpha=1e-2)
    X, y = make_classification(2500, 20, n_informative=8, flip_y=0.03, random_state=101)
    X = StandardScaler().fit_transform(X)
    yield "classification 20d, modified_huber 3e-3", X, y, AsyncSGDClassifier, \
        dict(loss="modified_huber", alpha=3e-3)
    X, y = make_regression(1500, 30, noise=8.0, random_state=102)
    X = StandardScaler().fit_transform(X)
    yield "regression 30d, huber 1e-2", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="huber", epsilon=0.5, alpha=1e-2)
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "digits 0-4 vs 5-9, squared_hinge 1e-3", X, (y >= 5).astype(int), \
        AsyncSGDClassifier, dict(loss="squared_hinge", alpha=1e-3)
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "diabetes, squared 3e-2", X, (y - y.mean()) / y.std(), AsyncSGDRegressor, \
        dict(alpha=3e-2)
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    yield "wine 0 vs rest, log_loss 3e-2", X, (y == 0).astype(int), AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=3e-2)
    X, y = make_rcv1_like(n_samples=2000, n_features=5000, nnz_per_row=30, random_state=103)
    yield "sparse text-like, log_loss 1e-3", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-3)
    X, y = make_regression(1500, 20, n_informative=10, noise=5.0, random_state=104)
    X = StandardScaler().fit_transform(X)
    yield "regression 20d, elasticnet 1e-2", X, y / y.std(), AsyncSGDRegressor, \
        dict(penalty="elasticnet", alpha=1e-2, l1_ratio=0.5)
    X, y = make_classification(3000, 40, n_informative=15, flip_y=0.01, class_sep=0.7,
                               random_state=105)
    X = StandardScaler().fit_transform(X)
    yield "classification 40d, hinge 1e-3", X, y, AsyncSGDClassifier, \
        dict(loss="hinge", alpha=1e-3)


def text_like_problems(shapes, first_seed, prefix):
    """Text-like classification problems, one for each (loss, alpha, rows,
    features, non-zeros a row, other parameters) of `shapes`."""
    for k, (loss, alpha, n, d, nnz, extra) in enumerate(shapes):
        X, y = make_rcv1_like(n_samples=n, n_features=d, nnz_per_row=nnz,
                              random_state=first_seed + k)
        name = " ".join([prefix, loss, f"{alpha:g}", f"{n}x{d}"] + sorted(extra.values()))
        yield name, X, y, AsyncSGDClassifier, dict(loss=loss, alpha=alpha, **extra)


def sparse_penalized_problems():
    yield from text_like_problems(
        [("hinge", 1e-3, 3000, 5000, 30, {}), ("log_loss", 3e-3, 2000, 4000, 40, {}),
         ("modified_huber", 3e-4, 4000, 8000, 25, {}), ("squared_hinge", 1e-3, 2500, 5000, 30, {}),
         ("log_loss", 1e-2, 3000, 6000, 30, {}), ("hinge", 1e-2, 2000, 3000, 50, {})],
        110, "sparse")


def sparse_moderate_problems():
    yield from text_like_problems(
        [("hinge", 5e-4, 2500, 6000, 40, {}), ("log_loss", 2e-3, 3500, 5000, 25, {}),
         ("modified_huber", 5e-3, 2000, 4000, 35, {}), ("squared_hinge", 3e-3, 3000, 3000, 20, {}),
         ("log_loss", 3e-4, 4000, 6000, 30, {}),
         ("hinge", 2e-3, 2500, 5000, 30, dict(penalty="elasticnet"))],
        130, "mid")
    for seed, loss, alpha, n, d, density, noise in ((136, "squared_error", 1e-3, 3000, 1500, 0.01, 0.1),
                                                    (137, "huber", 3e-3, 4000, 2000, 0.005, 0.3)):
        rng = np.random.RandomState(seed)
        X = sp.random(n, d, density=density, format="csr", random_state=rng)
        t = X @ rng.standard_normal(d) + noise * rng.standard_normal(n)
        kw = dict(loss=loss, alpha=alpha, **(dict(epsilon=0.1) if loss == "huber" else {}))
        yield f"mid regression {loss} {alpha:g}", X, t / t.std(), AsyncSGDRegressor, kw


def blind_problems():
    X, y = regression_problem(n_samples=1500, n_features=40, condition=30, noise=0.1, seed=101)
    yield "blind least squares, cond 30", X, y, AsyncSGDRegressor, dict(penalty=None)
    X, y = regression_problem(n_samples=3000, n_features=10, condition=3, seed=102)
    yield "blind least squares, cond 3", X, y, AsyncSGDRegressor, dict(penalty=None)
    X, y = make_classification(2500, 60, n_informative=20, flip_y=0.1, random_state=103)
    X = StandardScaler().fit_transform(X)
    yield "blind 60d, log_loss", X, y, AsyncSGDClassifier, dict(loss="log_loss", alpha=1e-4)
    X, y = make_classification(2000, 20, n_informative=5, n_redundant=10, random_state=104)
    X = StandardScaler().fit_transform(X)
    yield "blind 20d, hinge, l1", X, y, AsyncSGDClassifier, \
        dict(loss="hinge", penalty="l1", alpha=1e-4)
    X, y = make_regression(2000, 80, n_informative=20, noise=20.0, random_state=105)
    X = StandardScaler().fit_transform(X)
    yield "blind 80d, epsilon_insensitive", X, y / y.std(), AsyncSGDRegressor, \
        dict(loss="epsilon_insensitive", epsilon=0.05, alpha=1e-5)
    rng = np.random.RandomState(106)
    X = sp.random(5000, 2000, density=0.005, format="csr", random_state=rng)
    y = (X @ rng.standard_normal(2000) > 0).astype(int)
    yield "blind very sparse, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-6)
    X, y = make_friedman2(1500, noise=0.0, random_state=107)
    X = StandardScaler().fit_transform(X)
    yield "blind friedman2, squared", X, (y - y.mean()) / y.std(), AsyncSGDRegressor, \
        dict(alpha=1e-3)
    X, y = make_classification(3000, 30, n_classes=3, n_informative=8, random_state=108)
    X = StandardScaler().fit_transform(X)
    yield "blind 3 classes, log_loss", X, y, AsyncSGDClassifier, \
        dict(loss="log_loss", alpha=1e-4)


def partial_fit_curve(Est, X, y, M, mu, eta, epochs, kw, seed=0):
    """As `curve`, the epochs driven one partial_fit call each."""
    est = Est(asynchrony="simulated", n_workers=M, momentum=mu, learning_rate="constant",
              eta0=eta, max_iter=1, tol=None, random_state=seed, **kw)
    extra = {"classes": np.unique(y)} if Est is AsyncSGDClassifier else {}
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(epochs):
            try:
                est.partial_fit(X, y, **extra)
            except ValueError:  # diverged
                return np.full(epochs, np.inf), None
            losses.append(est.loss_curve_[-1])
    c = np.asarray(losses, dtype=np.float64)
    return np.where(np.isfinite(c), c, np.inf), est


def curve(Est, X, y, M, mu, eta, epochs, kw, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est = Est(asynchrony="simulated", n_workers=M, momentum=mu,
                      learning_rate="constant", eta0=eta, max_iter=epochs, tol=None,
                      random_state=seed, **kw).fit(X, y)
        except ValueError:  # diverged
            return np.full(epochs, np.inf), None
    c = np.asarray(est.loss_curve_, dtype=np.float64)
    return np.where(np.isfinite(c), c, np.inf), est


def cached_grid(cache, key, compute):
    """The grid's curves and mean seconds a fit, from `cache` (a folder, or
    None) where `key` was computed before, else computed and stored."""
    if cache is None:
        return compute()
    path = os.path.join(cache, hashlib.sha1(repr(key).encode()).hexdigest() + ".npz")
    if os.path.exists(path):
        with np.load(path) as stored:
            return dict(zip(GRID, stored["curves"])), float(stored["seconds"])
    curves, seconds = compute()
    os.makedirs(cache, exist_ok=True)
    np.savez(path, curves=np.stack([curves[mu] for mu in GRID]), seconds=seconds)
    return curves, seconds


def epochs_to(curve, target):
    """Epochs a loss curve takes to reach `target` (inf: it never does)."""
    hit = np.flatnonzero(np.asarray(curve) <= target)
    return hit[0] + 1 if hit.size else np.inf


def grid_reach(curves):
    """(the target: FRACTION of the way from the first epoch's loss, momentum
    0's where it is finite, to the lowest loss any grid value reaches;
    each momentum's epochs to it), or None where no grid value converges."""
    low = min(c.min() for c in curves.values())
    if not np.isfinite(low):
        return None
    start = curves[0.0][0] if np.isfinite(curves[0.0][0]) else max(
        c[0] for c in curves.values() if np.isfinite(c[0]))
    target = low + FRACTION * (start - low)
    return target, {mu: epochs_to(c, target) for mu, c in curves.items()}


def per_sample_curvature(X):
    sq = X.multiply(X).sum(axis=1) if hasattr(X, "multiply") else (X * X).sum(axis=1)
    return float(np.mean(sq))


def run(quick, which="design", seed=0, steps=STEPS, partial_fit=False, grid_cache=None,
        oracle_seed=None):
    Ms = (1, 16, 64) if quick else (1, 4, 16, 32, 64)
    epochs = 15 if quick else 30
    fit_curve = partial_fit_curve if partial_fit else curve
    print(f"{'problem':<30} {'M':>3} {'eta0':>7} {'best mu':>7} {'best upd':>9} "
          f"{'auto upd':>9} {'ratio':>6} {'auto mu':>7} {'auto s / fixed s':>16}"
          f"{' known best' if oracle_seed is not None else ''}")
    ratios, oracles, misses, seconds = [], [], 0, {"auto": 0.0, "fixed": 0.0}
    for name, X, y, Est, kw in problems(which):
        r2 = per_sample_curvature(X)
        for eta in (step / r2 for step in steps):
            for M in Ms:
                def grid_curves(grid_seed):
                    def compute():
                        start_time = time.process_time()
                        curves = {mu: fit_curve(Est, X, y, M, mu, eta, epochs, kw, grid_seed)[0]
                                  for mu in GRID}
                        return curves, (time.process_time() - start_time) / len(GRID)
                    return cached_grid(grid_cache, (name, M, eta, epochs, grid_seed, partial_fit),
                                       compute)
                curves, fixed_seconds = grid_curves(seed)
                start_time = time.process_time()
                auto_curve, auto = fit_curve(Est, X, y, M, "auto", eta, epochs, kw, seed)
                auto_seconds = time.process_time() - start_time
                seconds["auto"] += auto_seconds
                seconds["fixed"] += fixed_seconds
                reached = grid_reach(curves)
                if reached is None:
                    print(f"{name:<30} {M:>3} {eta:>7.4f}  no grid value converges; "
                          f"auto {'converges' if np.isfinite(auto_curve).all() else 'diverges'}")
                    continue
                target, grid_epochs = reached
                grid_upd = {mu: e * X.shape[0] for mu, e in grid_epochs.items()}
                best = min(grid_upd, key=grid_upd.get)
                auto_upd = epochs_to(auto_curve, target) * X.shape[0]
                # a best that needs over 2/3 of the budget leaves a miss
                # undecided: auto runs on (untimed) to 1.5x the best's epochs
                decisive = int(np.ceil(RATIO * grid_upd[best] / X.shape[0]))
                if not np.isfinite(auto_upd) and decisive > epochs:
                    longer = fit_curve(Est, X, y, M, "auto", eta, decisive, kw, seed)[0]
                    if not np.array_equal(longer[:epochs], auto_curve):
                        raise RuntimeError(f"{name}: auto's longer fit left its first epochs")
                    auto_upd = epochs_to(longer, target) * X.shape[0]
                ratio = auto_upd / grid_upd[best]
                ratios.append(ratio)
                oracle = np.nan
                if oracle_seed is not None:
                    other = grid_reach(grid_curves(oracle_seed)[0])
                    if other is not None:
                        known = min(other[1], key=other[1].get)
                        oracle = grid_upd[known] / grid_upd[best]
                        if not np.isfinite(oracle) and decisive > epochs:
                            longer = fit_curve(Est, X, y, M, known, eta, decisive, kw, seed)[0]
                            oracle = epochs_to(longer, target) * X.shape[0] / grid_upd[best]
                        oracles.append(oracle)
                misses += not np.isfinite(auto_upd)
                print(f"{name:<30} {M:>3} {eta:>7.4f} {best:>7.1f} {grid_upd[best]:>9.0f} "
                      f"{auto_upd:>9.0f} {ratio:>6.2f} "
                      f"{auto.momentum_ if auto is not None else float('nan'):>7.2f} "
                      f"{auto_seconds / fixed_seconds:>16.1f}"
                      f"{'' if oracle_seed is None else f' {oracle:>10.2f}'}")
    if oracles:
        print(f"seed {oracle_seed}'s best fixed momentum, run at seed {seed}: within {RATIO:g}x "
              f"of this seed's best in {np.sum(np.array(oracles) <= RATIO)} of {len(oracles)} "
              f"cases; target missed in {np.sum(np.isinf(oracles))}")
    print(f"auto / best-grid updates: median {np.median(ratios):.2f}, worst "
          f"{max(ratios):.2f}; within {RATIO:g}x in {np.mean(np.array(ratios) <= RATIO):.0%} "
          f"of {len(ratios)} cases; auto missed the target in {misses}; "
          f"{'partial_fit' if partial_fit else 'fit'} CPU time of auto / a fixed momentum "
          f"(mean of the grid's): {seconds['auto'] / max(seconds['fixed'], 1e-12):.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--set", default="design",
                        choices=("design", "check", "extra", "holdout", "fresh", "unseen",
                                 "large", "large-fresh", "huge", "huge-fresh", "weighted",
                                 "penalized", "sparse-penalized", "sparse-moderate", "all",
                                 "blind"))
    parser.add_argument("--seed", type=int, default=0,
                        help="random_state of every fit (shuffles, staleness draws, samples)")
    parser.add_argument("--steps", type=numbers, default=",".join(map(str, STEPS)),
                        help="comma-separated learning rates, times 1 / mean squared row norm")
    parser.add_argument("--partial-fit", action="store_true",
                        help="drive every fit's epochs through partial_fit, one call each")
    parser.add_argument("--grid-cache", metavar="DIR",
                        help="keep the grid's curves here and reuse them (auto alone reruns)")
    parser.add_argument("--oracle-seed", type=int, metavar="S",
                        help="also run the grid at seed S, and its best momentum at --seed")
    args = parser.parse_args()
    run(args.quick, args.set, args.seed, tuple(args.steps),
        args.partial_fit, args.grid_cache, args.oracle_seed)
