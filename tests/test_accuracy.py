"""Accuracy parity with scikit-learn: AsyncSGD* with two worker threads
reaches (within one point) the test score of SGDClassifier / SGDRegressor
trained with the same hyperparameters and random_state.

Scores are averaged over three seeds to keep the noise of a single shuffle
(and of the thread interleaving) below the tolerance."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor

SEEDS = (0, 1, 2)
# breast cancer is tiny (285 test rows) and SGD's "optimal" schedule gives it a
# per-seed accuracy spread of about one point for both implementations, so
# three seeds cannot resolve one point there; its fits take milliseconds.
SEEDS_PER_DATASET = {"breast_cancer": tuple(range(30))}
TOL = 0.01           # one point of accuracy / R^2
MOMENTUM_TOL = 0.02  # "a couple of points"


def _scaled_split(X, y, test_size, stratify=True):
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_size, random_state=0,
        stratify=y if stratify else None)
    scaler = StandardScaler().fit(Xtr)
    return scaler.transform(Xtr), scaler.transform(Xte), ytr, yte


def _sparse_planted(n_samples=5000, n_features=2000, density=0.01, seed=0):
    """Random CSR rows labelled by a planted linear separator (5% flipped)."""
    rng = np.random.RandomState(seed)
    X = sp.random(n_samples, n_features, density=density, format="csr",
                  random_state=rng, data_rvs=rng.standard_normal)
    w = rng.standard_normal(n_features)
    score = X @ w
    y = (score > np.median(score)).astype(np.int64)
    flip = rng.rand(n_samples) < 0.05
    y[flip] = 1 - y[flip]
    return train_test_split(X, y, test_size=0.25, random_state=seed, stratify=y)


_CACHE = {}


def _dataset(name):
    if name not in _CACHE:
        if name == "digits":
            _CACHE[name] = _scaled_split(*load_digits(return_X_y=True), 0.25)
        elif name == "breast_cancer":
            # half for testing: 285 test rows, so one row is 0.35 points
            _CACHE[name] = _scaled_split(*load_breast_cancer(return_X_y=True), 0.5)
        elif name == "sparse":
            _CACHE[name] = _sparse_planted()
        else:  # pragma: no cover
            raise KeyError(name)
    return _CACHE[name]


def _mean_scores(make_async, make_ref, data, seeds=SEEDS):
    Xtr, Xte, ytr, yte = data
    ours, ref = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for seed in seeds:
            ours.append(make_async(seed).fit(Xtr, ytr).score(Xte, yte))
            ref.append(make_ref(seed).fit(Xtr, ytr).score(Xte, yte))
    return float(np.mean(ours)), float(np.mean(ref))


CLASSIFIER_PARAMS = [
    pytest.param({}, id="hinge-optimal"),
    pytest.param({"loss": "log_loss"}, id="log_loss-optimal"),
    pytest.param({"loss": "modified_huber", "learning_rate": "invscaling",
                  "eta0": 0.05}, id="modified_huber-invscaling"),
    pytest.param({"learning_rate": "constant", "eta0": 0.01}, id="hinge-constant"),
    pytest.param({"average": True}, id="hinge-optimal-averaged"),
    pytest.param({"loss": "log_loss", "learning_rate": "constant", "eta0": 0.05,
                  "average": 100}, id="log_loss-constant-averaged"),
]


@pytest.mark.parametrize("params", CLASSIFIER_PARAMS)
@pytest.mark.parametrize("dataset", ["digits", "breast_cancer", "sparse"])
def test_classifier_accuracy_matches_sklearn(dataset, params):
    data = _dataset(dataset)
    ours, ref = _mean_scores(
        lambda s: AsyncSGDClassifier(n_jobs=2, random_state=s, **params),
        lambda s: SGDClassifier(random_state=s, **params), data,
        SEEDS_PER_DATASET.get(dataset, SEEDS))
    assert ours >= ref - TOL, (
        f"{dataset} {params}: AsyncSGDClassifier mean accuracy {ours:.4f} vs "
        f"SGDClassifier {ref:.4f}")
    # and it learnt something (chance is 0.1 on digits, ~0.5 otherwise)
    assert ours > 0.7


@pytest.mark.parametrize("momentum", [0.5, -0.3])
@pytest.mark.parametrize("dataset", ["digits", "breast_cancer", "sparse"])
def test_classifier_accuracy_with_momentum(dataset, momentum):
    data = _dataset(dataset)
    params = {"learning_rate": "constant", "eta0": 0.01}
    ours, ref = _mean_scores(
        lambda s: AsyncSGDClassifier(n_jobs=2, random_state=s,
                                     momentum=momentum, **params),
        lambda s: SGDClassifier(random_state=s, **params), data,
        SEEDS_PER_DATASET.get(dataset, SEEDS))
    assert abs(ours - ref) <= MOMENTUM_TOL, (
        f"{dataset} momentum={momentum}: AsyncSGDClassifier mean accuracy "
        f"{ours:.4f} vs SGDClassifier (no momentum) {ref:.4f}")


def _regression_data(noise):
    X, y = make_regression(n_samples=3000, n_features=20, n_informative=10,
                           noise=noise, random_state=0)
    return _scaled_split(X, y, 0.25, stratify=False)


@pytest.mark.parametrize("params", [
    pytest.param({}, id="squared_error-invscaling"),
    pytest.param({"loss": "huber", "epsilon": 1.0, "eta0": 0.05}, id="huber"),
    pytest.param({"learning_rate": "constant", "eta0": 0.001}, id="constant"),
    pytest.param({"learning_rate": "constant", "eta0": 0.01, "average": True},
                 id="constant-averaged"),
])
@pytest.mark.parametrize("noise", [10.0, 80.0])
def test_regressor_r2_matches_sklearn(noise, params):
    data = _regression_data(noise)
    ours, ref = _mean_scores(
        lambda s: AsyncSGDRegressor(n_jobs=2, random_state=s, **params),
        lambda s: SGDRegressor(random_state=s, **params), data)
    assert ours >= ref - TOL, (
        f"noise={noise} {params}: AsyncSGDRegressor mean R^2 {ours:.4f} vs "
        f"SGDRegressor {ref:.4f}")
    assert ours > 0.5


@pytest.mark.parametrize("momentum", [0.5, -0.3])
def test_regressor_r2_with_momentum(momentum):
    data = _regression_data(10.0)
    params = {"learning_rate": "constant", "eta0": 0.001}
    ours, ref = _mean_scores(
        lambda s: AsyncSGDRegressor(n_jobs=2, random_state=s,
                                    momentum=momentum, **params),
        lambda s: SGDRegressor(random_state=s, **params), data)
    assert abs(ours - ref) <= MOMENTUM_TOL, (ours, ref)


# ---- one thread, no shuffling: the very same update sequence as sklearn ----

def _sparse_small(n_classes, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(1500, 300, density=0.03, format="csr", random_state=rng,
                  data_rvs=rng.standard_normal)
    W = rng.standard_normal((300, n_classes))
    return X, np.asarray((X @ W).argmax(axis=1)).ravel()


EXACT_CLASSIFIER_PARAMS = [
    pytest.param({}, id="hinge-optimal"),
    pytest.param({"loss": "modified_huber", "learning_rate": "invscaling",
                  "eta0": 0.1}, id="modified_huber-invscaling"),
    pytest.param({"penalty": "l1"}, id="l1"),
    pytest.param({"penalty": "elasticnet", "l1_ratio": 0.5}, id="elasticnet"),
    pytest.param({"loss": "perceptron", "learning_rate": "constant",
                  "eta0": 0.01, "penalty": None}, id="perceptron-constant"),
    pytest.param({"learning_rate": "adaptive", "eta0": 0.01}, id="adaptive"),
    pytest.param({"fit_intercept": False, "alpha": 1e-3}, id="no-intercept"),
]


@pytest.mark.parametrize("params", EXACT_CLASSIFIER_PARAMS)
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_one_thread_unshuffled_matches_sklearn(params, fmt, n_classes):
    """With one worker and shuffle=False the engine runs scikit-learn's
    update sequence (including its smaller sparse intercept step), so the
    weights agree to rounding."""
    X, y = _sparse_small(n_classes)
    if fmt == "dense":
        X = X.toarray()
    common = dict(shuffle=False, tol=None, max_iter=3, **params)
    ours = AsyncSGDClassifier(n_jobs=1, **common).fit(X, y)
    ref = SGDClassifier(**common).fit(X, y)
    scale = np.abs(ref.coef_).max()
    assert_close = np.testing.assert_allclose
    assert_close(ours.coef_, ref.coef_, rtol=1e-9, atol=1e-9 * scale)
    assert_close(ours.intercept_, ref.intercept_, rtol=1e-9, atol=1e-9 * scale)
    assert ours.t_ == ref.t_
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("params", [
    pytest.param({}, id="squared_error"),
    pytest.param({"loss": "huber"}, id="huber"),
    pytest.param({"loss": "epsilon_insensitive", "penalty": "l1"}, id="eps-l1"),
    pytest.param({"loss": "squared_epsilon_insensitive",
                  "penalty": "elasticnet"}, id="sq-eps-elasticnet"),
    pytest.param({"learning_rate": "constant", "eta0": 0.001}, id="constant"),
    pytest.param({"learning_rate": "constant", "eta0": 0.01, "average": True},
                 id="constant-averaged"),
])
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_one_thread_unshuffled_regressor_matches_sklearn(params, fmt):
    X, _ = _sparse_small(2)
    y = X @ np.random.RandomState(1).standard_normal(X.shape[1])
    if fmt == "dense":
        X = X.toarray()
    common = dict(shuffle=False, tol=None, max_iter=3, **params)
    ours = AsyncSGDRegressor(n_jobs=1, **common).fit(X, y)
    ref = SGDRegressor(**common).fit(X, y)
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-9,
                               atol=1e-9 * scale)
    assert ours.t_ == ref.t_


@pytest.mark.parametrize("momentum", [-0.5, 0.5, 0.9])
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_momentum_scales_the_weight_decay_penalty(momentum, fmt):
    """The L2 penalty is a weight decay on w, outside the velocity (README):
    at momentum mu a long constant-step fit settles at ridge regression's
    solution for alpha (1 - mu), not alpha's."""
    from sklearn.linear_model import Ridge
    X, y = make_regression(500, 5, noise=5.0, random_state=0)
    X = X / np.sqrt(np.mean(np.sum(X * X, axis=1)))
    y = y / y.std()
    alpha, n = 0.05, X.shape[0]
    est = AsyncSGDRegressor(alpha=alpha, learning_rate="constant", eta0=0.002,
                            momentum=momentum, max_iter=400, tol=None, random_state=0,
                            fit_intercept=False)
    est.fit(sp.csr_matrix(X) if fmt == "sparse" else X, y)

    def ridge(strength):  # Ridge's objective is n times SGD's mean
        return Ridge(alpha=n * strength, fit_intercept=False).fit(X, y).coef_
    assert np.linalg.norm(est.coef_ - ridge(alpha * (1 - momentum))) < 0.01
    assert np.linalg.norm(est.coef_ - ridge(alpha)) > 0.1
