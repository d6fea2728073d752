"""AsyncMLPClassifier / AsyncMLPRegressor and the compiled MLP core: the
scikit-learn contract, gradients against finite differences, one epoch
against a plain-numpy reference, scikit-learn's MLP*(solver="sgd") matched
to rounding with one worker, accuracy on digits with two threads, the
simulated engine's determinism and schedules, bad input, Ctrl-C."""
import inspect
import os
import pickle
import signal
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit, xlogy
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits, make_classification, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from pyasync import AsyncMLPClassifier, AsyncMLPRegressor, _mlp
from pyasync.mlp import HIST_LEN
from pyasync.momentum import epoch_staleness, heaviest_stable, replayed_epoch_staleness

from child import interrupt_mid_epoch

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


# -- scikit-learn's estimator checks ---------------------------------------
# scikit-learn runs its checks on MLPClassifier / MLPRegressor with
# max_iter=100 (INIT_PARAMS in sklearn/utils/_test_common/instance_generator.py)
# and lists no expected failure for them in PER_ESTIMATOR_XFAIL_CHECKS. Its
# sample-weight equivalence checks pass here too: their data fit in one
# minibatch, whose gradient is the rows' weighted mean. So none is expected.
MLP_EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(
    [AsyncMLPClassifier(max_iter=100), AsyncMLPRegressor(max_iter=100),
     AsyncMLPClassifier(max_iter=100, momentum="auto"),
     AsyncMLPRegressor(max_iter=100, momentum="auto")],
    expected_failed_checks=lambda est: MLP_EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# -- a plain numpy reference -------------------------------------------------
def unpack(w, units):
    Ws, bs, off = [], [], 0
    for a, b in zip(units[:-1], units[1:]):
        Ws.append(w[off:off + a * b].reshape(a, b))
        off += a * b
        bs.append(w[off:off + b])
        off += b
    return Ws, bs


def ref_loss_grad(w, units, act, out, alpha, X, Y, sw=None):
    """scikit-learn's _backprop, written out in numpy (rows weighted by sw)."""
    f = {"identity": lambda z: z, "relu": lambda z: np.maximum(z, 0),
         "tanh": np.tanh, "logistic": expit}[act]
    Ws, bs = unpack(w, units)
    sw = np.ones(X.shape[0]) if sw is None else sw
    n = sw.sum()
    A = [X]
    for layer, (W, b) in enumerate(zip(Ws, bs)):
        Z = A[-1] @ W + b
        A.append(f(Z) if layer + 1 < len(Ws) else Z)
    Z = A[-1]
    eps = np.finfo(np.float64).eps
    if out == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        P = E / E.sum(axis=1, keepdims=True)
        loss = -np.sum(sw[:, None] * Y * np.log(np.clip(P, eps, 1 - eps))) / n
    elif out == "logistic":
        P = expit(Z)
        Pc = np.clip(P, eps, 1 - eps)
        loss = -np.sum(sw[:, None] * (Y * np.log(Pc) + (1 - Y) * np.log(1 - Pc))) / n
    elif out == "exp":  # half the Poisson deviance
        P = np.exp(Z)
        loss = np.sum(sw[:, None] * (xlogy(Y, Y / P) - Y + P)) / n
    else:
        P = Z
        loss = 0.5 * np.sum(sw[:, None] * (Y - P) ** 2) / n / Y.shape[1]
    loss += 0.5 * alpha * sum(np.sum(W * W) for W in Ws) / n
    D = (P - Y) * sw[:, None]
    grads = [None] * len(Ws)
    for layer in range(len(Ws) - 1, -1, -1):
        grads[layer] = np.concatenate([((A[layer].T @ D + alpha * Ws[layer]) / n).ravel(),
                                       D.sum(axis=0) / n])
        if layer > 0:
            D = D @ Ws[layer].T
            a = A[layer]
            if act == "relu":
                D[a == 0] = 0
            elif act == "tanh":
                D *= 1 - a ** 2
            elif act == "logistic":
                D *= a * (1 - a)
    return loss, np.concatenate(grads)


def problem(out, n=23, d=7, hidden=(9, 18), K=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    if out == "softmax":
        Y = np.eye(K)[rng.randint(K, size=n)]
    elif out == "logistic":
        K = 1
        Y = (rng.rand(n, 1) > 0.5).astype(float)
    elif out == "exp":
        Y = rng.poisson(1.5, size=(n, K)).astype(float)
    else:
        Y = rng.randn(n, K)
    units = [d, *hidden, K]
    return X, Y, units


def params(units, act, out, **kw):
    p = dict(units=units, activation=act, output=out, alpha=0.05, lr=0.05,
             momentum=0.9, nesterov=True, batch_size=8)
    p.update(kw)
    return p


@pytest.mark.parametrize("out", ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_gradient_matches_finite_differences(act, out):
    # regression with one output: scikit-learn's squared loss is averaged
    # over outputs while its delta (a - y) is not, so only one output makes
    # the gradient the loss's exact derivative
    X, Y, units = problem(out, K=1 if out == "identity" else 3)
    prm = params(units, act, out)
    rng = np.random.RandomState(1)
    w = rng.randn(_mlp.n_params(prm)) * 0.4
    rows = np.arange(X.shape[0], dtype=np.int64)
    loss, grad = _mlp.loss_grad(prm, X, Y, w, rows)
    ref_loss, ref_grad = ref_loss_grad(w, units, act, out, prm["alpha"], X, Y)
    assert loss == pytest.approx(ref_loss, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)
    h = 1e-6
    for i in rng.choice(w.size, 60, replace=False):
        e = np.zeros_like(w)
        e[i] = h
        fd = (_mlp.loss_grad(prm, X, Y, w + e, rows)[0]
              - _mlp.loss_grad(prm, X, Y, w - e, rows)[0]) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-8), i


@pytest.mark.parametrize("hidden", [(), (5,), (6, 20), (17, 3, 33), (4, 9, 3, 7, 5, 8, 3, 6, 5, 4)])
def test_zero_to_ten_hidden_layers(hidden):
    X, Y, units = problem("softmax", hidden=hidden)
    prm = params(units, "tanh", "softmax")
    w = np.random.RandomState(2).randn(_mlp.n_params(prm)) * 0.3
    rows = np.arange(X.shape[0], dtype=np.int64)
    _, grad = _mlp.loss_grad(prm, X, Y, w, rows)
    np.testing.assert_allclose(grad, ref_loss_grad(w, units, "tanh", "softmax", 0.05, X, Y)[1],
                               rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("out", ["softmax", "logistic", "identity", "exp"])
def test_weighted_gradient_matches_reference(out):
    """Sample weights scale each row's delta and the batch is normalised by
    their sum, as scikit-learn's _backprop; integer weights are repeated
    rows."""
    X, Y, units = problem(out, K=1 if out == "logistic" else 2)
    prm = params(units, "tanh", out)
    w = np.random.RandomState(4).randn(_mlp.n_params(prm)) * 0.3
    sw = np.random.RandomState(5).uniform(0.0, 3.0, X.shape[0])
    rows = np.arange(X.shape[0], dtype=np.int64)
    loss, grad = _mlp.loss_grad(prm, X, Y, w, rows, sw)
    ref_loss, ref_grad = ref_loss_grad(w, units, "tanh", out, prm["alpha"], X, Y, sw)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-13)
    counts = np.random.RandomState(6).randint(0, 4, X.shape[0])
    repeated = np.repeat(rows, counts)
    rep_loss, rep_grad = _mlp.loss_grad(prm, X, Y, w, repeated)
    loss, grad = _mlp.loss_grad(prm, X, Y, w, rows, counts.astype(np.float64))
    assert loss == pytest.approx(rep_loss, rel=1e-12)
    np.testing.assert_allclose(grad, rep_grad, rtol=1e-10, atol=1e-13)


def test_batch_of_no_weight_makes_no_update():
    """A minibatch whose rows all weigh 0 carries nothing: zero loss and
    gradient (not 0 / 0), so the epoch moves the weights by momentum only."""
    X, Y, units = problem("softmax")
    prm = params(units, "relu", "softmax", momentum=0.0, batch_size=X.shape[0])
    w = np.random.RandomState(7).randn(_mlp.n_params(prm)) * 0.3
    rows = np.arange(X.shape[0], dtype=np.int64)
    loss, grad = _mlp.loss_grad(prm, X, Y, w, rows, np.zeros(X.shape[0]))
    assert loss == 0.0 and not grad.any()
    w1 = w.copy()
    res = _mlp.mlp_epoch(prm, X, Y, w1, np.zeros_like(w), rows, {
        "kind": "simulated", "n_workers": 4, "schedule": "exponential", "seed": 0},
        np.zeros(HIST_LEN, dtype=np.int64), np.zeros(X.shape[0]))
    assert not res["diverged"] and np.array_equal(w1, w)
    with pytest.raises(ValueError, match="one weight a row"):
        _mlp.loss_grad(prm, X, Y, w, rows, np.ones(3))


def ref_epoch(w, v, units, act, out, alpha, lr, mu, nesterov, B, X, Y, order):
    """scikit-learn's SGDOptimizer over the batches of `order`."""
    w, v = w.copy(), v.copy()
    total = 0.0
    for start in range(0, order.size, B):
        rows = order[start:start + B]
        loss, g = ref_loss_grad(w, units, act, out, alpha, X[rows], Y[rows])
        total += loss * rows.size
        v = mu * v - lr * g
        w += mu * v - lr * g if nesterov else v
    return w, v, total


@pytest.mark.parametrize("act,out,mu,nesterov", [
    ("relu", "softmax", 0.9, True), ("tanh", "logistic", -0.5, False),
    ("logistic", "identity", 0.0, True), ("identity", "softmax", 0.5, False)])
def test_one_epoch_matches_numpy_reference(act, out, mu, nesterov):
    X, Y, units = problem(out, n=103, d=11, hidden=(13, 21))
    prm = params(units, act, out, momentum=mu, nesterov=nesterov, batch_size=10)
    rng = np.random.RandomState(3)
    w0 = rng.randn(_mlp.n_params(prm)) * 0.3
    v0 = rng.randn(w0.size) * 0.01 if mu != 0 else np.zeros(w0.size)
    order = rng.permutation(X.shape[0]).astype(np.int64)
    ref_w, ref_v, ref_loss = ref_epoch(w0, v0, units, act, out, prm["alpha"], prm["lr"],
                                       mu, nesterov, 10, X, Y, order)
    results = []
    for engine in ({"kind": "threads", "n_threads": 1, "update": "racy",
                    "staleness_every": 1},
                   {"kind": "simulated", "n_workers": 1, "schedule": "exponential",
                    "seed": 5}):
        w, v = w0.copy(), v0.copy()
        hist = np.zeros(HIST_LEN, dtype=np.int64)
        res = _mlp.mlp_epoch(prm, X, Y, w, v, order, engine, hist)
        np.testing.assert_allclose(w, ref_w, rtol=0, atol=1e-10)
        if mu != 0:
            np.testing.assert_allclose(v, ref_v, rtol=0, atol=1e-10)
        assert res["sumloss"] == pytest.approx(ref_loss, rel=1e-10)
        assert res["n_updates"] == 11 and hist[0] == 11
        results.append(w)
    # one simulated worker is the one-thread engine, bit for bit
    assert np.array_equal(results[0], results[1])


# -- the estimators against scikit-learn ------------------------------------
@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.mark.parametrize("kw", [
    dict(), dict(momentum=0.0), dict(nesterovs_momentum=False, activation="tanh", alpha=0.1),
    dict(learning_rate="invscaling", learning_rate_init=0.2, activation="logistic"),
    dict(early_stopping=True, learning_rate="adaptive", n_iter_no_change=1, max_iter=12),
    dict(shuffle=False, batch_size=64, hidden_layer_sizes=(20, 10))])
def test_one_worker_equals_sklearn_mlp_classifier(digits, kw):
    X, _, y, _ = digits
    kw = {"hidden_layer_sizes": (32,), "learning_rate_init": 0.01, "max_iter": 4,
          "random_state": 0, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = AsyncMLPClassifier(**kw).fit(X, y)
        ref = MLPClassifier(solver="sgd", **kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    assert ours.out_activation_ == ref.out_activation_ == "softmax"
    assert ours.n_layers_ == ref.n_layers_ and ours.n_outputs_ == ref.n_outputs_


@pytest.mark.parametrize("hidden", [(), (6, 5, 7, 4)])
def test_no_hidden_layer_and_deep_equal_sklearn(digits, hidden):
    """hidden_layer_sizes=() is a linear model, as scikit-learn's; depth past
    three hidden layers too."""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=hidden, max_iter=3, random_state=0, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = AsyncMLPClassifier(**kw).fit(X, y)
        ref = MLPClassifier(solver="sgd", **kw).fit(X, y)
    assert ours.n_layers_ == ref.n_layers_ == len(hidden) + 2
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)


def test_binary_uses_one_logistic_unit_as_sklearn(digits):
    X, _, y, _ = digits
    X, y = X[y < 2], np.where(y[y < 2] == 1, "one", "zero")
    kw = dict(hidden_layer_sizes=(8, 8), max_iter=3, random_state=0,
              learning_rate_init=0.01, activation="logistic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = AsyncMLPClassifier(**kw).fit(X, y)
        ref = MLPClassifier(solver="sgd", **kw).fit(X, y)
    assert ours.n_outputs_ == 1 and ours.out_activation_ == "logistic"
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    assert np.array_equal(ours.predict(X), ref.predict(X))


def test_one_worker_equals_sklearn_mlp_regressor():
    X, y = make_regression(300, 10, n_targets=2, noise=1.0, random_state=0)
    y /= 100
    kw = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = AsyncMLPRegressor(**kw).fit(X, y)
        ref = MLPRegressor(solver="sgd", **kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-12)
    assert ours.out_activation_ == "identity"


@pytest.mark.parametrize("Ours,Ref", [(AsyncMLPClassifier, MLPClassifier),
                                      (AsyncMLPRegressor, MLPRegressor)])
def test_one_simulated_worker_equals_sklearn(Ours, Ref):
    """The simulated engine's seed leaves the shuffles' stream alone: one
    simulated worker shuffles and fits as scikit-learn does, also through
    partial_fit (2,000 rows: each epoch's shuffle draws from the stream)."""
    X, y = make_classification(2000, 20, random_state=0)
    if Ours is AsyncMLPRegressor:
        y = X[:, :3].sum(axis=1)
    kw = dict(hidden_layer_sizes=(16,), learning_rate_init=0.05, max_iter=5,
              random_state=0, batch_size=32)
    extra = {"classes": [0, 1]} if Ours is AsyncMLPClassifier else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = Ours(asynchrony="simulated", n_workers=1, **kw).fit(X, y)
        ref = Ref(solver="sgd", **kw).fit(X, y)
        ours_partial = Ours(asynchrony="simulated", n_workers=1, **kw)
        ref_partial = Ref(solver="sgd", **kw)
        for _ in range(3):
            ours_partial.partial_fit(X, y, **extra)
            ref_partial.partial_fit(X, y, **extra)
    for a, b in zip(ours.coefs_ + ours_partial.coefs_, ref.coefs_ + ref_partial.coefs_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


SKLEARN_MLP_WEIGHTS = "sample_weight" in inspect.signature(MLPClassifier.fit).parameters
needs_sklearn_weights = pytest.mark.skipif(
    not SKLEARN_MLP_WEIGHTS, reason="scikit-learn's MLPs take sample_weight from 1.7")


@needs_sklearn_weights
@pytest.mark.parametrize("kw", [
    dict(), dict(early_stopping=True, n_iter_no_change=1, max_iter=6),
    dict(nesterovs_momentum=False, batch_size=50, activation="logistic")])
def test_one_worker_weighted_classifier_equals_sklearn(digits, kw):
    X, _, y, _ = digits
    sw = np.random.RandomState(0).uniform(0.0, 4.0, y.shape[0])
    kw = {"hidden_layer_sizes": (24,), "learning_rate_init": 0.01, "max_iter": 4,
          "random_state": 0, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = AsyncMLPClassifier(**kw).fit(X, y, sample_weight=sw)
        ref = MLPClassifier(solver="sgd", **kw).fit(X, y, sample_weight=sw)
        plain = AsyncMLPClassifier(**kw).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    if kw.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
    assert np.abs(ours.coefs_[0] - plain.coefs_[0]).max() > 1e-3  # the weights count


@needs_sklearn_weights
def test_one_worker_weighted_partial_fit_equals_sklearn(digits):
    X, _, y, _ = digits
    sw = np.random.RandomState(1).uniform(0.5, 2.0, y.shape[0])
    kw = dict(hidden_layer_sizes=(16,), learning_rate_init=0.02, random_state=0)
    ours, ref = AsyncMLPClassifier(**kw), MLPClassifier(solver="sgd", **kw)
    for half in (slice(0, 600), slice(600, None)):
        ours.partial_fit(X[half], y[half], sample_weight=sw[half], classes=np.unique(y))
        ref.partial_fit(X[half], y[half], sample_weight=sw[half], classes=np.unique(y))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_worker_regressor_losses_equal_sklearn(loss, weighted):
    if weighted and not SKLEARN_MLP_WEIGHTS:
        pytest.skip("scikit-learn's MLPs take sample_weight from 1.7")
    if "loss" not in inspect.signature(MLPRegressor).parameters:
        pytest.skip("scikit-learn's MLPRegressor takes loss from 1.7")
    rng = np.random.RandomState(2)
    X = rng.randn(400, 6)
    rate = np.exp(0.5 * X[:, 0] - 0.3 * X[:, 1])
    y = rng.poisson(rate).astype(float) if loss == "poisson" else np.log1p(rate)
    sw = rng.uniform(0.2, 3.0, y.shape[0]) if weighted else None
    kw = dict(loss=loss, hidden_layer_sizes=(12,), max_iter=6, random_state=0,
              learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = AsyncMLPRegressor(**kw).fit(X, y, sample_weight=sw)
        ref = MLPRegressor(solver="sgd", **kw).fit(X, y, sample_weight=sw)
    assert ours.out_activation_ == ref.out_activation_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-12, atol=1e-12)
    assert ours.score(X, y, sample_weight=sw) == pytest.approx(
        ref.score(X, y, sample_weight=sw), rel=1e-10)


@pytest.mark.parametrize("engine", [dict(n_workers=16), dict(staleness="fixed", delay=3)])
def test_constant_weights_are_no_weights_on_the_simulator(digits, engine):
    """The batch gradient is the rows' weighted mean: weighing every row 2.5
    changes nothing but rounding, under staleness too. (Not with an L2
    penalty: scikit-learn divides alpha by the summed weight.)"""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), learning_rate_init=0.02, max_iter=3, alpha=0.0,
              random_state=0, asynchrony="simulated", **engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        plain = AsyncMLPClassifier(**kw).fit(X, y)
        weighted = AsyncMLPClassifier(**kw).fit(X, y, sample_weight=np.full(y.shape[0], 2.5))
    np.testing.assert_allclose(weighted.loss_curve_, plain.loss_curve_, rtol=1e-10)
    np.testing.assert_allclose(weighted.coefs_[0], plain.coefs_[0], atol=1e-10)


@pytest.mark.parametrize("engine", [dict(n_jobs=2), dict(asynchrony="simulated", n_workers=8)])
def test_rows_of_no_weight_teach_nothing(engine):
    """A fit that weighs one class 0 never predicts it, on threads and on
    the simulator."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    sw = np.where(y == 3, 0.0, 1.0)
    clf = AsyncMLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.05, max_iter=10,
                             random_state=0, **engine)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y, sample_weight=sw)
    pred = clf.predict(X)
    assert not np.any(pred == 3)
    assert np.mean(pred[y != 3] == y[y != 3]) > 0.9


def test_poisson_regressor_bad_targets_and_positive_predictions():
    rng = np.random.RandomState(3)
    X = rng.randn(1000, 4)
    y = rng.poisson(np.exp(0.8 * X[:, 0])).astype(float)
    with pytest.raises(ValueError, match="non-negative targets"):
        AsyncMLPRegressor(loss="poisson").fit(X, y - 1.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        AsyncMLPRegressor(loss="absolute_error").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = AsyncMLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=30,
                                learning_rate_init=0.01, asynchrony="simulated",
                                n_workers=4, random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert reg.out_activation_ == "exp" and np.all(pred > 0)
    # the fit learns the rate's trend in x0 (scikit-learn at one worker: 0.97)
    assert np.corrcoef(np.log(pred), X[:, 0])[0, 1] > 0.9


def test_multilabel_partial_fit_equals_sklearn():
    """partial_fit on multi-label targets binarizes their columns, as
    scikit-learn does (not the `classes` given)."""
    from sklearn.datasets import make_multilabel_classification
    X, Y = make_multilabel_classification(120, 6, n_classes=3, random_state=0)
    ours = AsyncMLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    ref = MLPClassifier(solver="sgd", hidden_layer_sizes=(8,), random_state=0)
    for est in (ours, ref):
        est.partial_fit(X, Y, classes=[0, 1, 2]).partial_fit(X, Y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)
    assert np.array_equal(ours.predict(X), ref.predict(X))


def test_sparse_input_is_not_written_and_may_be_read_only():
    """A CSR with duplicate entries is summed on a copy: the caller's
    matrix keeps its entries; read-only, unsorted CSR fits as well."""
    X = sp.random(60, 8, density=0.3, format="csr", random_state=0)
    rows = [X.getrow(i) for i in range(60)]  # each entry twice: X + X
    data = np.concatenate([np.r_[r.data, r.data] for r in rows])
    indices = np.concatenate([np.r_[r.indices, r.indices] for r in rows]).astype(np.int32)
    indptr = np.r_[0, np.cumsum([2 * r.nnz for r in rows])]
    dup = sp.csr_matrix((data, indices, indptr), shape=X.shape)
    before = dup.data.copy()
    y = np.arange(60) % 2
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AsyncMLPClassifier(**kw).fit(dup, y)
        b = AsyncMLPClassifier(**kw).fit((2 * X).tocsr(), y)
        assert np.array_equal(dup.data, before) and dup.nnz == before.size
        np.testing.assert_allclose(a.coefs_[0], b.coefs_[0], atol=1e-12)
        shuffled = X[:, np.random.RandomState(1).permutation(8)]
        for part in (shuffled.data, shuffled.indices, shuffled.indptr):
            part.setflags(write=False)
        AsyncMLPClassifier(**kw).fit(shuffled, y)


def test_one_class_is_learned_as_sklearn():
    """A target of one class fits (as MLPClassifier: one logistic unit
    that learns to say no) and predicts that class, fit or partial_fit."""
    X = np.random.RandomState(0).randn(40, 3)
    y = np.array(["only"] * 40)
    kw = dict(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours, ref = AsyncMLPClassifier(**kw).fit(X, y), MLPClassifier(solver="sgd", **kw).fit(X, y)
        assert list(ours.classes_) == ["only"] and np.all(ours.predict(X) == "only")
        np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-12)
        part = AsyncMLPClassifier(**kw).partial_fit(X, y, classes=["only"])
    assert np.all(part.predict(X) == "only")


def test_sklearn_parameters_all_accepted():
    """Every MLPClassifier / MLPRegressor parameter can be set (adam's and
    lbfgs's are accepted and unused), so set_params from a scikit-learn
    model's get_params works."""
    for ours, theirs in ((AsyncMLPClassifier, MLPClassifier), (AsyncMLPRegressor, MLPRegressor)):
        params = theirs(solver="sgd", beta_1=0.8, max_fun=100).get_params()
        est = ours().set_params(**params)
        assert est.get_params()["beta_1"] == 0.8 and est.get_params()["max_fun"] == 100


def test_digits_two_threads_reach_95_percent(digits):
    X_train, X_test, y_train, y_test = digits
    clf = AsyncMLPClassifier(hidden_layer_sizes=(64,), momentum=0.9,
                             learning_rate_init=0.01, max_iter=100, n_jobs=2,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) >= 0.95
    st = clf.staleness_
    assert st.n_measured == clf.n_iter_ * int(np.ceil(X_train.shape[0] / 200))
    assert np.all(np.isfinite([c.sum() for c in clf.coefs_]))


@pytest.mark.parametrize("update", ["racy", "atomic", "locked"])
def test_update_modes_learn(digits, update):
    X_train, X_test, y_train, y_test = digits
    clf = AsyncMLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.02,
                             batch_size=32, max_iter=15, n_jobs=2, update=update,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.9
    assert clf.staleness_.n_measured == 15 * int(np.ceil(X_train.shape[0] / 32))


@pytest.mark.parametrize("n_jobs", [3, 16])
def test_more_threads_than_minibatches(n_jobs):
    """Threads beyond an epoch's minibatches are not started: 3 minibatches
    an epoch learn under 16 threads as under 1, and no update can be
    staler than the other 2 of its epoch."""
    X, y = make_classification(300, 10, n_informative=5, random_state=0)
    kw = dict(hidden_layer_sizes=(16,), batch_size=100, learning_rate_init=0.05,
              max_iter=60, tol=0.0, n_iter_no_change=10**6, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one = AsyncMLPClassifier(n_jobs=1, **kw).fit(X, y)
        many = AsyncMLPClassifier(n_jobs=n_jobs, **kw).fit(X, y)
    assert many.score(X, y) > one.score(X, y) - 0.05
    assert many.staleness_.max <= 2
    assert many.staleness_.n_measured > 0


def test_regressor_learns():
    X, y = make_regression(600, 8, noise=1.0, random_state=0)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    reg = AsyncMLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01,
                            max_iter=200, n_jobs=2, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.95


def test_one_worker_is_deterministic(digits):
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=7, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AsyncMLPClassifier(n_jobs=1, **kw).fit(X, y)
        b = AsyncMLPClassifier(n_jobs=1, **kw).fit(X, y)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert np.array_equal(p, q)


def test_float32_and_sparse_input_give_the_same_fit(digits):
    X, _, y, _ = digits
    X32 = X.astype(np.float32)
    kw = dict(hidden_layer_sizes=(16,), max_iter=2, random_state=0, learning_rate_init=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AsyncMLPClassifier(**kw).fit(X32, y)
        b = AsyncMLPClassifier(**kw).fit(X32.astype(np.float64), y)
        Xs = X.copy()
        Xs[np.abs(Xs) < 0.5] = 0
        c = AsyncMLPClassifier(**kw).fit(sp.csr_matrix(Xs), y)
        d = AsyncMLPClassifier(**kw).fit(Xs, y)
    # computed alike, kept in the input's precision (as MLPClassifier's)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert p.dtype == np.float32 and q.dtype == np.float64
        assert np.array_equal(p, q.astype(np.float32))
    assert a.predict_proba(X32).dtype == np.float32
    for p, q in zip(c.coefs_, d.coefs_):
        assert np.array_equal(p, q)


# -- the simulated engine ------------------------------------------------------
def test_simulated_is_deterministic(digits):
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=3, learning_rate_init=0.01,
              asynchrony="simulated", n_workers=4, batch_size=50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AsyncMLPClassifier(random_state=3, **kw).fit(X, y)
        b = AsyncMLPClassifier(random_state=3, **kw).fit(X, y)
        c = AsyncMLPClassifier(random_state=4, **kw).fit(X, y)
    for p, q in zip(a.coefs_, b.coefs_):
        assert np.array_equal(p, q)
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    assert a.staleness_.mean > 1.5  # exponential schedule: geometric, mean ~ M - 1


@pytest.mark.parametrize("M", [1, 3, 8])
def test_round_robin_staleness_is_m_minus_one(M):
    X, Y, units = problem("softmax", n=200)
    prm = params(units, "relu", "softmax", batch_size=10)
    w = np.random.RandomState(0).randn(_mlp.n_params(prm)) * 0.1
    v = np.zeros_like(w)
    hist = np.zeros(HIST_LEN, dtype=np.int64)
    order = np.arange(200, dtype=np.int64)
    engine = {"kind": "simulated", "n_workers": M, "schedule": "round_robin", "seed": 0}
    res = _mlp.mlp_epoch(prm, X, Y, w, v, order, engine, hist)
    expected = np.zeros(HIST_LEN, dtype=np.int64)
    expected[:M - 1] = 1  # the first M - 1 writes of the epoch: 0, 1, ..., M - 2
    expected[M - 1] = 20 - (M - 1)
    assert np.array_equal(hist, expected)
    assert res["staleness_max"] == M - 1 and res["n_updates"] == 20


@pytest.mark.parametrize("schedule", ["exponential", "round_robin", "replay"])
def test_kept_scratch_changes_nothing(schedule):
    """Pending gradients in memory kept from epoch to epoch (a fit's) give
    the epochs of memory allocated for each, bit for bit; the memory is
    made once, at the size the engine asks, and reused after."""
    X, Y, units = problem("softmax", n=200)
    prm = params(units, "relu", "softmax", momentum=0.5, batch_size=10)
    w0 = np.random.RandomState(0).randn(_mlp.n_params(prm)) * 0.1
    engine = {"kind": "simulated", "n_workers": 6, "schedule": schedule, "seed": 3}
    if schedule == "replay":
        engine["replay_cdf"] = np.cumsum([0.2, 0.3, 0.1, 0.4])
    order = np.random.RandomState(1).permutation(200).astype(np.int64)
    runs = []
    for kept in (None, []):
        w, v = w0.copy(), np.zeros_like(w0)
        arrays = []
        for epoch in range(3):
            hist = np.zeros(HIST_LEN, dtype=np.int64)
            eng = dict(engine, seed=epoch) if kept is None else dict(engine, seed=epoch,
                                                                      scratch=kept)
            _mlp.mlp_epoch(prm, X, Y, w, v, order, eng, hist)
            if kept is not None:
                arrays.append(kept[0])
        runs.append((w, v, hist))
    assert all(np.array_equal(a, b) for a, b in zip(*runs))
    slots = 5 if schedule == "replay" else 6  # replay: one a possible staleness, + 1
    assert arrays[0].shape == (slots * w0.size,)
    assert arrays[1] is arrays[0] and arrays[2] is arrays[0]


def test_fixed_delay_is_round_robin_over_delay_plus_one(digits):
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0, learning_rate_init=0.01,
              asynchrony="simulated", batch_size=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = AsyncMLPClassifier(staleness="fixed", delay=2, **kw).fit(X, y)
        b = AsyncMLPClassifier(staleness="round_robin", n_workers=3, **kw).fit(X, y)
    assert np.array_equal(a.coefs_[0], b.coefs_[0])
    n_batches = int(np.ceil(X.shape[0] / 100))
    assert list(a.staleness_.histogram) == [2, 2, 2 * (n_batches - 2)]


@pytest.mark.parametrize("momentum", (0.5, "auto"))
@pytest.mark.parametrize("delay", (0, 1, 4))
def test_replayed_point_mass_is_the_fixed_delay(digits, delay, momentum):
    """Replaying "always staleness k" takes each gradient on the model k
    writes old (the first k writes of an epoch on its start): the fixed
    delay's round robin over k + 1 workers, bit for bit; momentum="auto"
    models the same delays and so chooses the same momenta."""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0, learning_rate_init=0.01,
              asynchrony="simulated", batch_size=50, momentum=momentum)
    point_mass = np.zeros(delay + 1)
    point_mass[delay] = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fixed = AsyncMLPClassifier(staleness="fixed", delay=delay, **kw).fit(X, y)
        replayed = AsyncMLPClassifier(staleness=point_mass, **kw).fit(X, y)
    for a, b in zip(fixed.coefs_ + fixed.intercepts_, replayed.coefs_ + replayed.intercepts_):
        assert np.array_equal(a, b)
    assert np.array_equal(fixed.staleness_.histogram, replayed.staleness_.histogram)
    assert fixed.momentum_ == replayed.momentum_


def test_replay_a_fit_staleness_mlp(digits):
    """staleness=<a fit's staleness_> replays its law: a regressor's
    simulated fit at 6 workers, replayed, measures the same histogram (to
    sampling noise), deterministically, whatever n_workers says."""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(4,), max_iter=30, tol=0.0, n_iter_no_change=31,
              batch_size=4, learning_rate_init=1e-3, random_state=0, asynchrony="simulated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = AsyncMLPRegressor(n_workers=6, **kw).fit(X, y)
        law = first.staleness_
        again = AsyncMLPRegressor(staleness=law, **kw).fit(X, y)
        twice = AsyncMLPRegressor(staleness=list(law.histogram), n_workers=50, **kw).fit(X, y)
    size = law.histogram.size
    freq = [np.bincount(np.repeat(np.arange(h.size), h), minlength=size)[:size] / h.sum()
            for h in (law.histogram, again.staleness_.histogram)]
    assert np.max(np.abs(freq[0] - freq[1])) < 0.02
    assert again.staleness_.mean == pytest.approx(law.mean, rel=0.05)
    assert again.staleness_.max <= law.max
    for a, b in zip(again.coefs_, twice.coefs_):
        assert np.array_equal(a, b)


def test_replayed_epoch_staleness():
    """The delays momentum="auto" models under a replayed law: each drawn
    from it, and capped by the updates its epoch has made."""
    pmf = np.array([0.5, 0.0, 0.25, 0.25])
    draws = replayed_epoch_staleness(pmf, n_batches=5, n_updates=4000, replicas=4)
    position = np.arange(4000) % 5
    assert np.all(draws <= position[:, None]) and draws.max() == 3
    late = draws[position >= 3].ravel()
    np.testing.assert_allclose(np.bincount(late, minlength=4) / late.size, pmf, atol=0.03)
    with pytest.raises(ValueError, match="pmf"):
        replayed_epoch_staleness([], n_batches=5)


# -- the estimator contract ------------------------------------------------------
def test_partial_fit_pickle_clone(digits):
    X, X_test, y, _ = digits
    clf = AsyncMLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01,
                             random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:500], y[:500], classes=np.arange(10))
    assert clf.n_iter_ == 1 and clf.t_ == 500
    clf.partial_fit(X[500:], y[500:])
    assert clf.t_ == X.shape[0] and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:10], y[:10] + 100)
    again = pickle.loads(pickle.dumps(clf))
    assert np.array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))
    fresh = clone(clf)
    assert not hasattr(fresh, "coefs_") and fresh.get_params() == clf.get_params()


def test_warm_start_continues(digits):
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AsyncMLPClassifier(warm_start=True, **kw).fit(X, y)
        first = clf.coefs_[0].copy()
        clf.fit(X, y)
    assert len(clf.loss_curve_) == 4 and not np.array_equal(first, clf.coefs_[0])


def test_early_stopping_switched_between_fits(digits):
    """A fit with early stopping, then partial_fit without (and the other
    way round with warm_start): the records the new setting watches start
    there (scikit-learn's MLPs fail on a None best_loss_)."""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), learning_rate_init=0.01, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AsyncMLPClassifier(early_stopping=True, **kw).fit(X, y)
        clf.set_params(early_stopping=False).partial_fit(X, y)
        assert len(clf.loss_curve_) == 4 and clf.best_loss_ == clf.loss_curve_[-1]
        assert clf.validation_scores_ is None and clf.best_validation_score_ is None
        clf = AsyncMLPClassifier(warm_start=True, **kw).fit(X, y)
        clf.set_params(early_stopping=True).fit(X, y)
        assert len(clf.validation_scores_) == 3 and clf.best_loss_ is None
        assert clf.best_validation_score_ == max(clf.validation_scores_)
        # on, off, on: the third fit is judged by its own records, not the
        # first's (whose better model it would have gone back to)
        clf = AsyncMLPClassifier(warm_start=True, early_stopping=True, **kw).fit(X, y)
        first = clf.coefs_[0].copy()
        clf.set_params(early_stopping=False).fit(X, y)
        clf.set_params(early_stopping=True, max_iter=1, learning_rate_init=5.0).fit(X, y)
    assert len(clf.validation_scores_) == 1
    assert not np.array_equal(clf.coefs_[0], first)


def test_a_fit_that_goes_on_keeps_the_models_precision(digits):
    """As MLPClassifier's: warm_start and partial_fit keep the dtype of the
    first fit's model, whatever the later calls' X."""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = AsyncMLPClassifier(warm_start=True, **kw).fit(X.astype(np.float32), y)
        clf.fit(X, y)
        assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
        clf.partial_fit(X, y)
        assert all(c.dtype == np.float32 for c in clf.coefs_ + clf.intercepts_)
        clf.set_params(warm_start=False).fit(X, y)  # a new model: the input's
        assert all(c.dtype == np.float64 for c in clf.coefs_ + clf.intercepts_)


def test_convergence_warning_at_max_iter(digits):
    X, _, y, _ = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        AsyncMLPClassifier(hidden_layer_sizes=(8,), max_iter=2).fit(X, y)


def test_divergence_names_the_epoch_and_keeps_the_model(digits):
    X, _, y, _ = digits
    clf = AsyncMLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01,
                             max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    before = [c.copy() for c in clf.coefs_]
    clf.set_params(learning_rate_init=1e6, momentum=0.99, max_iter=50)
    with pytest.raises(ValueError, match=r"diverged at epoch #\d+"):
        clf.fit(X * 1e3, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.coefs_))
    assert len(clf.loss_curve_) == 2


@pytest.mark.parametrize("param,value,match", [
    ("hidden_layer_sizes", (0,), "hidden_layer_sizes"),
    ("hidden_layer_sizes", (4,) * 11, "hidden_layer_sizes"),
    ("hidden_layer_sizes", "big", "hidden_layer_sizes"),
    ("activation", "softplus", "activation"),
    ("solver", "adam", "solver"),
    ("alpha", -1.0, "alpha"),
    ("batch_size", 0, "batch_size"),
    ("learning_rate", "optimal", "learning_rate"),
    ("learning_rate_init", 0.0, "learning_rate_init"),
    ("max_iter", 0, "max_iter"),
    ("tol", -1.0, "tol"),
    ("momentum", 1.0, "momentum"),
    ("momentum", -1.0, "momentum"),
    ("momentum", 1.5, "momentum"),
    ("momentum", "automatic", "momentum"),
    ("validation_fraction", 1.0, "validation_fraction"),
    ("n_iter_no_change", 0, "n_iter_no_change"),
    ("n_jobs", 0, "n_jobs"),
    ("update", "lockfree", "update"),
    ("asynchrony", "mpi", "asynchrony"),
    ("shuffle", "yes", "shuffle"),
    ("power_t", -1.0, "power_t"),
    ("beta_1", 2.0, "beta_1"),
    ("beta_2", -0.1, "beta_2"),
    ("epsilon", -1.0, "epsilon"),
    ("max_fun", 0, "max_fun"),
    ("verbose", -1, "verbose"),
    ("n_iter_no_change", -np.inf, "n_iter_no_change"),
    ("n_jobs", 5000, "n_jobs"),
])
def test_bad_hyperparameters(param, value, match):
    X, y = np.random.RandomState(0).randn(20, 3), np.arange(20) % 2
    for est in (AsyncMLPClassifier(max_iter=1), AsyncMLPRegressor(max_iter=1)):
        with pytest.raises(ValueError, match=match):
            est.set_params(**{param: value}).fit(X, y)
        assert not hasattr(est, "coefs_") and not hasattr(est, "n_features_in_")


def test_sklearn_settings_that_disable_a_rule_are_taken():
    """As MLPClassifier: n_iter_no_change=inf never stops for want of
    progress, and validation_fraction=0 is fine without early stopping
    (with it, the error names the fraction)."""
    X, y = np.random.RandomState(0).randn(60, 3), np.arange(60) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AsyncMLPClassifier(max_iter=6, tol=10.0, n_iter_no_change=np.inf).fit(X, y)
        assert est.n_iter_ == 6  # tol=10 stops after 2 epochs at n_iter_no_change=1
        assert AsyncMLPClassifier(max_iter=6, tol=10.0, n_iter_no_change=1).fit(X, y).n_iter_ < 6
        AsyncMLPClassifier(max_iter=2, validation_fraction=0.0).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        AsyncMLPClassifier(max_iter=2, validation_fraction=0.0, early_stopping=True).fit(X, y)


def test_too_many_input_features_are_refused_naming_them():
    X = sp.random(20, 70_000, density=0.001, format="csr", random_state=0)
    with pytest.raises(ValueError, match="at most 65536 input features, got 70000"):
        AsyncMLPClassifier(max_iter=1).fit(X, np.arange(20) % 2)


def test_bad_simulated_settings():
    X, y = np.random.RandomState(0).randn(20, 3), np.arange(20) % 2
    bad = [(dict(n_workers=0), "n_workers"), (dict(staleness="fixed"), "delay"),
           (dict(staleness="lifo"), "staleness"),
           (dict(staleness="exponential", delay=2), "delay"),
           (dict(staleness=[1, 2], delay=2), "delay"),
           (dict(staleness=[0, 0]), "no counts"), (dict(staleness=[1, -1]), "negative"),
           (dict(staleness=[1, np.nan]), "not finite"), (dict(staleness=[]), "non-empty")]
    for kw, match in bad:
        with pytest.raises(ValueError, match=match):
            AsyncMLPClassifier(asynchrony="simulated", max_iter=1, **kw).fit(X, y)


def test_bad_data():
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 4), np.arange(30) % 3
    clf = AsyncMLPClassifier(hidden_layer_sizes=(5,), max_iter=1)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(Xn, y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        AsyncMLPRegressor(max_iter=1).fit(X, np.where(y == 1, np.nan, 1.0))
    with pytest.raises(ValueError, match="2D array"):
        clf.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.fit(X, y[:-1])
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, rng.randn(30))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="architecture|layer sizes"):
        clf.set_params(warm_start=True, hidden_layer_sizes=(6,)).fit(X, y)


# -- Ctrl-C ----------------------------------------------------------------------
CHILD = r"""
import json, signal, traceback, warnings
import numpy as np
from pyasync import AsyncMLPClassifier
# a child of a shell's background job starts with SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
X = rng.standard_normal((20000, 256))
y = (X[:, :4].sum(axis=1) > 0).astype(int)
est = AsyncMLPClassifier(hidden_layer_sizes=(512, 256), max_iter=10**6, tol=0.0,
                         n_iter_no_change=10**6, learning_rate_init=1e-4, n_jobs=2,
                         random_state=0)
print("READY", flush=True)
out = {}
try:
    est.fit(X, y)
except KeyboardInterrupt as exc:
    out["frames"] = [f.name for f in traceback.extract_tb(exc.__traceback__)]
    out["unfitted"] = not hasattr(est, "coefs_")
print("RESULT " + json.dumps(out), flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32",
                    reason="needs POSIX signals")
def test_sigint_stops_the_fit():
    res = interrupt_mid_epoch(CHILD, "mlp_epoch", delay=1.0)
    assert res["unfitted"]


@pytest.mark.parametrize("n_workers", [1, 4, 16])
def test_target_momentum_holds_the_total(n_workers):
    """momentum="auto" with target_momentum: explicit = 0.9 - the implicit
    momentum of the simulated schedule (1 - 1/M before and after
    measuring, within the sampling noise of the measured histogram)."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    est = AsyncMLPClassifier(hidden_layer_sizes=(16,), momentum="auto", max_iter=3,
                             batch_size=16, target_momentum=0.9,
                             asynchrony="simulated", n_workers=n_workers,
                             learning_rate_init=0.05, random_state=0).fit(X, y)
    # momentum_ was chosen before the last epoch, implicit_momentum_ after it
    assert est.momentum_ == pytest.approx(0.9 - est.implicit_momentum_, abs=0.05)
    assert est.implicit_momentum_ == pytest.approx(1 - 1 / n_workers, abs=0.1)
    assert est.total_momentum_ == pytest.approx(0.9, abs=0.05)
    if n_workers == 1:  # no asynchrony: the fit of momentum 0.9 itself
        fixed = clone(est).set_params(momentum=0.9, target_momentum=None).fit(X, y)
        for a, b in zip(est.coefs_, fixed.coefs_):
            np.testing.assert_array_equal(a, b)


def auto_on_digits(**params):
    """Digits scaled to [0, 1] and an unfitted momentum="auto" MLP on 8
    simulated workers (`params` override)."""
    X, y = load_digits(return_X_y=True)
    params = dict(dict(hidden_layer_sizes=(16,), momentum="auto", batch_size=32,
                       asynchrony="simulated", n_workers=8, learning_rate_init=0.1,
                       random_state=0), **params)
    return X / 16.0, y, AsyncMLPClassifier(**params)


def assert_same_weights(a, b):
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("momentum", ["auto", "probe"])
def test_auto_momentum_chooses_on_copies(momentum):
    """Choosing leaves the weights alone (the probe runs on copies): one
    epoch of momentum="auto" or "probe" is bit for bit the epoch of the
    momentum it chose."""
    X, y, est = auto_on_digits(max_iter=1, momentum=momentum)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        fixed = clone(est).set_params(momentum=est.momentum_).fit(X, y)
    assert_same_weights(est, fixed)


@pytest.mark.parametrize("momentum", ["auto", "probe"])
def test_auto_momentum_partial_fit_chooses_once(momentum):
    """partial_fit of a classifier with momentum="auto" or "probe" chooses
    on its first call and keeps that momentum after: its second call is
    the fixed momentum's."""
    X, y, est = auto_on_digits(momentum=momentum)
    est.partial_fit(X, y, classes=np.unique(y))
    fixed = clone(est).set_params(momentum=est.momentum_).partial_fit(X, y, classes=np.unique(y))
    est.partial_fit(X, y)
    fixed.partial_fit(X, y)
    assert est.momentum_ == fixed.momentum_
    assert_same_weights(est, fixed)
    # the calls' epochs, one momentum each, as loss_curve_ keeps their losses
    assert est.momentum_curve_ == fixed.momentum_curve_ == [est.momentum_] * 2


def test_auto_momentum_warm_start_keeps_the_choice():
    """A warm-started fit goes on from a fitted model: it keeps momentum_
    and probes nothing."""
    X, y, est = auto_on_digits(max_iter=2, batch_size=64, momentum="probe")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        chosen, probed = est.momentum_, est.probe_updates_
        est.set_params(warm_start=True).fit(X, y)
    assert probed > 0
    assert est.probe_updates_ == 0
    assert est.momentum_ <= chosen  # the closed loop may only cap it


def test_auto_momentum_after_a_fixed_momentum_chooses(monkeypatch):
    """A fit that goes on (warm_start, partial_fit) from a model fitted at
    a fixed momentum has no choice to keep: switched to "auto", it
    chooses, as a fresh fit does."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto.MLPAutoMomentum, "propose", lambda self, *a: -0.3)
    X, y, est = auto_on_digits(max_iter=2, momentum=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
        est.set_params(momentum="auto", warm_start=True).fit(X, y)
    assert est.momentum_ == -0.3
    streamed = clone(est).set_params(momentum=0.5, warm_start=False)
    streamed.partial_fit(X, y, classes=np.unique(y))
    streamed.set_params(momentum="auto").partial_fit(X, y)
    assert streamed.momentum_ == -0.3


def test_auto_momentum_probes_threads_as_exponential_workers(monkeypatch):
    """Threads have measured no staleness before the first epoch: the
    probe simulates n_jobs exponential workers, no more than the cores."""
    from pyasync import mlp_auto
    seen = []
    real = mlp_auto._mlp.mlp_epoch

    def spy(params, X, Y, w, v, order, engine, hist, sample_weight=None):
        seen.append(engine)
        return real(params, X, Y, w, v, order, engine, hist, sample_weight)
    monkeypatch.setattr(mlp_auto._mlp, "mlp_epoch", spy)
    X, y = load_digits(return_X_y=True)
    AsyncMLPClassifier(hidden_layer_sizes=(8,), momentum="probe", max_iter=1, n_jobs=2,
                       random_state=0).fit(X[:300] / 16.0, y[:300])
    probes = [e for e in seen if e["kind"] == "simulated"]
    assert [e["kind"] for e in seen if e not in probes] == ["threads"]  # the fit's epoch
    workers = min(2, os.cpu_count())
    assert probes and all(e["n_workers"] == workers and e["schedule"] == "exponential"
                          for e in probes)


@pytest.mark.parametrize("n_workers, batch_size, schedule",
                         [(4, 16, "exponential"), (64, 16, "exponential"),
                          (64, 100, "exponential"), (8, 16, "round_robin"),
                          (64, 100, "round_robin")])
def test_epoch_staleness_is_the_simulated_engines(n_workers, batch_size, schedule):
    """The staleness momentum="auto" models is the one the simulated engine
    produces: epochs whose workers, at most one per minibatch, start and
    end together (round robin exactly; exponential to sampling noise)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16.0, y[:400]
    epochs = 40
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AsyncMLPClassifier(hidden_layer_sizes=(4,), max_iter=epochs,
                                 batch_size=batch_size, tol=0.0,
                                 n_iter_no_change=epochs + 1, asynchrony="simulated",
                                 n_workers=n_workers, staleness=schedule,
                                 random_state=0).fit(X, y)
    measured = est.staleness_.histogram
    n_batches = -(-400 // batch_size)
    model = np.bincount(epoch_staleness(n_workers, n_batches, schedule == "round_robin",
                                        n_updates=n_batches * epochs, replicas=1).ravel(),
                        minlength=measured.size)
    assert measured.sum() == model.sum() == n_batches * epochs
    if schedule == "round_robin":
        np.testing.assert_array_equal(measured, model)
    else:
        assert np.max(np.abs(np.cumsum(measured) - np.cumsum(model))) < 0.05 * model.sum()
        assert est.staleness_.max < n_batches


def test_auto_momentum_sees_no_more_workers_than_minibatches():
    """Digits in minibatches of 200 make epochs of 9: the engine runs at
    most 9 of 64 workers at once, and momentum="auto" models those 9, so
    64 workers choose and fit as 9 do (M's law at every update chose 0.2
    at 64 and 0.7 at 9)."""
    X, y = load_digits(return_X_y=True)
    fits = [AsyncMLPClassifier(hidden_layer_sizes=(16,), momentum="auto", max_iter=3,
                               learning_rate_init=0.05, asynchrony="simulated",
                               n_workers=workers, random_state=0)
            for workers in (9, 64)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for est in fits:
            est.fit(X / 16.0, y)
    nine, many = fits
    assert many.momentum_ == nine.momentum_
    assert many.loss_curve_ == nine.loss_curve_
    for a, b in zip(many.coefs_, nine.coefs_):
        np.testing.assert_array_equal(a, b)


def dense_hessian_top(params, X, Y, w, rows):
    """The largest eigenvalue of the loss's Hessian at w, column by column
    from central differences of the gradient."""
    eps = 1e-4 * max(1.0, np.linalg.norm(w))
    columns = []
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        columns.append((_mlp.loss_grad(params, X, Y, w + e, rows)[1]
                        - _mlp.loss_grad(params, X, Y, w - e, rows)[1]) / (2 * eps))
    hessian = np.array(columns)
    return np.linalg.eigvalsh((hessian + hessian.T) / 2)[-1]


@pytest.mark.parametrize("n_workers, schedule", [(1, "exponential"), (8, "exponential"),
                                                 (64, "exponential"), (8, "round_robin")])
def test_auto_momentum_is_the_stale_dynamics_rule(monkeypatch, n_workers, schedule):
    """momentum="auto" chooses, with no update spent, the heaviest momentum
    of the grid under which stale SGD on a quadratic direction shrinks,
    its staleness that of the engine's epochs, at the output's share
    (CURVATURE_SHARE) of the top curvature of the loss at the starting
    weights, here checked against the dense Hessian's on all rows."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto, "CURVATURE_ROWS", 10 ** 6)  # every row
    seen = {}
    real = mlp_auto.MLPAutoMomentum.model_choice

    def spy(self, w, eta):
        seen.update(w=w.copy(), params=dict(self.params, lr=eta), X=self.X, Y=self.Y)
        return real(self, w, eta)
    monkeypatch.setattr(mlp_auto.MLPAutoMomentum, "model_choice", spy)
    X, y = load_digits(return_X_y=True)
    X, y = X[:400] / 16.0, y[:400]
    # tanh: a smooth loss, whose Hessian central differences give exactly
    est = AsyncMLPClassifier(hidden_layer_sizes=(6,), activation="tanh", momentum="auto",
                             max_iter=1, batch_size=16, learning_rate_init=0.5,
                             asynchrony="simulated", n_workers=n_workers, staleness=schedule,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    rows = np.arange(X.shape[0], dtype=np.int64)
    top = dense_hessian_top(seen["params"], seen["X"], seen["Y"], seen["w"], rows)
    lanczos = mlp_auto.top_curvature(
        lambda p: _mlp.loss_grad(seen["params"], seen["X"], seen["Y"], p, rows)[1],
        seen["w"], mlp_auto.LANCZOS_STEPS, np.random.RandomState(1))
    assert lanczos == pytest.approx(top, rel=1e-3)
    # 400 rows in minibatches of 16: epochs of 25, shared by at most 25 workers
    staleness = epoch_staleness(n_workers, 25, schedule == "round_robin")
    grid = np.round(np.arange(-0.9, 0.91, 0.1), 1)
    share = mlp_auto.CURVATURE_SHARE["softmax"]
    expected = heaviest_stable(grid, 0.5 * share * top, nesterov=True,
                               draws=staleness)
    assert est.momentum_ == pytest.approx(expected)
    assert est.probe_updates_ == 0


def test_auto_momentum_takes_the_share_of_the_outputs_loss(monkeypatch):
    """The share of the top curvature the model takes is the output's: a
    share that no momentum survives, given to the squared error alone,
    sends the regressor to the lowest momentum and leaves the classifier's
    choice as it was."""
    from pyasync import mlp_auto
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    kw = dict(hidden_layer_sizes=(8,), momentum="auto", max_iter=1, batch_size=16,
              learning_rate_init=0.01, asynchrony="simulated", n_workers=4, random_state=0)

    def chosen():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return (AsyncMLPClassifier(**kw).fit(X, y).momentum_,
                    AsyncMLPRegressor(**kw).fit(X, y / 9.0).momentum_)
    classifier, regressor = chosen()
    assert regressor > -0.9
    monkeypatch.setitem(mlp_auto.CURVATURE_SHARE, "identity", 1e12)
    assert chosen() == (classifier, -0.9)


def test_auto_momentum_measures_a_regressors_curvature_again(monkeypatch):
    """The squared error's curvature does not fall as the fit goes on, so
    the regressor's model is made again before epochs 1, 2 and 4, from the
    weights then; the cross-entropy's share counts its fall, so the
    classifier chooses once."""
    from pyasync import mlp_auto
    starts = []
    real = mlp_auto.MLPAutoMomentum.model_choice

    def spy(self, w, eta):
        starts.append(w.copy())
        return real(self, w, eta)
    monkeypatch.setattr(mlp_auto.MLPAutoMomentum, "model_choice", spy)
    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16.0, y[:300]
    kw = dict(hidden_layer_sizes=(8,), momentum="auto", max_iter=5, batch_size=16,
              learning_rate_init=0.01, asynchrony="simulated", n_workers=4, random_state=0,
              tol=0.0, n_iter_no_change=100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        AsyncMLPClassifier(**kw).fit(X, y)
        assert len(starts) == 1
        starts.clear()
        AsyncMLPRegressor(**kw).fit(X, y / 9.0)
    assert len(starts) == 4  # before epochs 0, 1, 2 and 4
    assert not np.array_equal(starts[0], starts[1])
    # a fit that goes on counts on from the epochs run: partial_fit calls
    # are epochs 0, 1, 2, ...; a warm start after 5 epochs runs 5, 6, 7, 8
    starts.clear()
    est = AsyncMLPRegressor(**kw)
    chosen = []
    for call in range(6):
        before = len(starts)
        est.partial_fit(X, y / 9.0)
        chosen.append(len(starts) - before)
    assert chosen == [1, 1, 1, 0, 1, 0]
    starts.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AsyncMLPRegressor(**kw).fit(X, y / 9.0)
        starts.clear()
        est.set_params(warm_start=True, max_iter=4).fit(X, y / 9.0)
    assert len(starts) == 1  # before epoch 8


def test_auto_momentum_stalls_cap_the_mlp_momentum_one_step_lower(monkeypatch):
    """Two epochs without a new best (two-epoch mean) loss cap an MLP's
    momentum one step of the grid (0.1) lower, where its choice is most
    often off when it is off; the linear models' cap drops by 0.2."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto.MLPAutoMomentum, "model_choice", lambda self, w, eta: 0.5)
    params = {"batch_size": 10, "output": "softmax"}
    engine = {"kind": "simulated", "schedule": "exponential", "n_workers": 4}
    auto = mlp_auto.MLPAutoMomentum(None, None, params, engine, None, 0, n_rows=100)
    losses = [1.0, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3, 0.3]
    w = np.zeros(3)
    momenta = [auto.choose(epoch, w, None, np.zeros(4, dtype=np.int64), 0.1, losses[:epoch])
               for epoch in range(len(losses) + 1)]
    assert momenta == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4, 0.3])


def test_top_curvature_of_a_quadratic_and_of_a_broken_gradient():
    """Lanczos finds the top eigenvalue of a known Hessian; a gradient that
    is not finite gives nan (and the lowest momentum), not an error."""
    from pyasync import mlp_auto
    hessian = np.diag([0.5, 1.0, 7.0, 2.0]) + 0.1
    top = np.linalg.eigvalsh(hessian)[-1]
    got = mlp_auto.top_curvature(lambda p: hessian @ p, np.ones(4), 10,
                                 np.random.RandomState(0))
    assert got == pytest.approx(top, rel=1e-9)
    broken = mlp_auto.top_curvature(lambda p: np.full(p.size, np.nan), np.ones(4), 10,
                                    np.random.RandomState(0))
    assert np.isnan(broken)
    assert heaviest_stable(np.round(np.arange(-0.9, 0.91, 0.1), 1), broken, [1.0]) == -0.9


def test_auto_momentum_falls_with_asynchrony():
    """At a large step the momentum "auto" chooses falls as workers are
    added, to below zero at 64."""
    X, y, est = auto_on_digits(max_iter=1, learning_rate_init=0.1)
    chosen = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for m in (1, 4, 16, 64):
            chosen.append(clone(est).set_params(n_workers=m).fit(X, y).momentum_)
    assert chosen == sorted(chosen, reverse=True)
    assert chosen[0] == 0.9 and chosen[-1] < 0


def test_auto_momentum_rolls_back_an_epoch_that_diverges(monkeypatch):
    """Where the momentum chosen diverges, the epoch is undone (the model
    back to the best one, at rest; inf in loss_curve_) and the momentum
    capped 0.4 lower, until one that converges: the fit does not raise."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto.MLPAutoMomentum, "propose", lambda self, *a: 0.9)
    X, y = make_regression(500, 10, noise=1.0, random_state=0)
    X, y = StandardScaler().fit_transform(X), y / y.std()
    kw = dict(hidden_layer_sizes=(8,), activation="identity", max_iter=4, batch_size=8,
              learning_rate_init=0.3, asynchrony="simulated", n_workers=1, random_state=0)
    for mu in (0.9, 0.5):  # each diverges on its own here
        with pytest.raises(ValueError, match="diverged"):
            AsyncMLPRegressor(momentum=mu, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AsyncMLPRegressor(momentum="auto", **kw).fit(X, y)
    undone = int(np.sum(np.isinf(est.loss_curve_)))
    assert undone >= 1 and est.loss_curve_[:undone] == [np.inf] * undone
    assert est.momentum_ == pytest.approx(0.9 - 0.4 * undone)
    assert np.all(np.isfinite(est.loss_curve_[undone:]))
    assert est.score(X, y) > 0.99


@pytest.mark.parametrize("goes_on", ["partial_fit", "warm_start"])
def test_auto_momentum_goes_on_undoing_blow_ups(goes_on):
    """A fit that goes on (partial_fit calls, warm_start) keeps the closed
    loop's caps, references and model to go back to: an epoch that blows
    up is undone and the momentum capped lower there too, as in one fit
    (here 64 workers throw momentum 0.7 to 3.5 times the first epoch's
    loss), instead of riding the climb on."""
    X, y = make_classification(600, 8, n_classes=3, n_informative=4, random_state=0)
    kw = dict(asynchrony="simulated", n_workers=64, momentum="auto", random_state=0,
              shuffle=False, hidden_layer_sizes=(6,), batch_size=8, learning_rate_init=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = AsyncMLPClassifier(max_iter=9, **kw).fit(X, y)
        if goes_on == "partial_fit":
            est = AsyncMLPClassifier(**kw)
            for _ in range(9):
                est.partial_fit(X, y, classes=[0, 1, 2])
        else:
            est = AsyncMLPClassifier(max_iter=1, warm_start=True, **kw).fit(X, y)
            est.set_params(max_iter=8).fit(X, y)
    for fit in (whole, est):
        assert fit.loss_curve_[1] > 3 * fit.loss_curve_[0]        # the blow-up
        assert fit.momentum_curve_[2] == pytest.approx(fit.momentum_curve_[1] - 0.4)
        assert fit.loss_curve_[-1] < 0.5 * fit.loss_curve_[0]


def test_auto_momentum_warm_start_counts_undone_epochs_where_they_stand(monkeypatch):
    """A warm-started fit's undone epoch sits after the earlier fit's in
    loss_curve_, and is left out of the stall rule there: the momentum
    capped by the rollback holds until real epochs stop improving."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto.MLPAutoMomentum, "propose", lambda self, *a: 0.9)
    X, y = make_regression(500, 10, noise=1.0, random_state=0)
    X, y = StandardScaler().fit_transform(X), y / y.std()
    kw = dict(hidden_layer_sizes=(8,), activation="identity", max_iter=2, batch_size=8,
              learning_rate_init=0.3, asynchrony="simulated", n_workers=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AsyncMLPRegressor(momentum=0.0, **kw).fit(X, y)
        est.set_params(momentum="auto", warm_start=True, max_iter=3).fit(X, y)
    assert est.loss_curve_[2] == np.inf                       # 0.9 diverged, undone
    assert est.momentum_curve_[2:] == pytest.approx([0.9, 0.5, 0.5])


def test_auto_momentum_keeps_a_climb_at_the_lowest_momentum(monkeypatch):
    """At -0.9 nothing safer is left to roll back to: an epoch that climbs
    past the blow-up bound is kept (rerunning it would loop), so the fit
    is the fixed momentum's, which rides the climb out."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto, "heaviest_stable", lambda *args, **kwargs: -0.9)
    rng = np.random.RandomState(34)
    X = rng.standard_normal((3000, 50))
    y = np.tanh(X @ rng.standard_normal(50) / 5) + 0.1 * rng.standard_normal(3000)
    kw = dict(hidden_layer_sizes=(64,), batch_size=64, learning_rate_init=0.03, max_iter=8,
              tol=0, n_iter_no_change=100, asynchrony="simulated", n_workers=64,
              random_state=0)
    y = (y - y.mean()) / y.std()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fixed = AsyncMLPRegressor(momentum=-0.9, **kw).fit(X, y)
        auto = AsyncMLPRegressor(momentum="auto", **kw).fit(X, y)
    assert max(fixed.loss_curve_) > 10 * fixed.loss_curve_[0]  # the climb
    assert auto.loss_curve_ == fixed.loss_curve_
    assert_same_weights(auto, fixed)


def test_auto_momentum_lifts_the_floor_where_the_lowest_momentum_diverges(monkeypatch):
    """At 64 workers heavy negative momentum can oscillate itself apart: a
    fit held at -0.9 diverges (and raises), where momentum="auto" goes back
    to the best epoch's start with the floor lifted to -0.5, and ends
    finite."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto, "heaviest_stable", lambda *args, **kwargs: -0.9)
    X, y = make_regression(1500, 40, n_informative=25, noise=5.0, random_state=64)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    kw = dict(hidden_layer_sizes=(128,), batch_size=40, learning_rate_init=0.03, max_iter=30,
              tol=0, n_iter_no_change=100, asynchrony="simulated", n_workers=64,
              random_state=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with pytest.raises(ValueError, match="diverged"):
            AsyncMLPRegressor(momentum=-0.9, **kw).fit(X, y)
        auto = AsyncMLPRegressor(momentum="auto", **kw).fit(X, y)
    lifted = auto.momentum_curve_.index(-0.5)
    assert set(auto.momentum_curve_[:lifted]) == {-0.9}
    assert not np.isfinite(auto.loss_curve_[lifted - 1])  # the divergence, undone
    assert set(auto.momentum_curve_[lifted:]) == {-0.5}
    assert all(np.all(np.isfinite(c)) for c in auto.coefs_)
    assert auto.loss_curve_[-1] < auto.loss_curve_[0]


def test_auto_momentum_rolls_back_to_where_the_best_epoch_started(monkeypatch):
    """At 32 workers an epoch of 28 batches is read wholly at its start:
    its loss is the loss where it began, and where it ended may already
    have blown up. A rollback goes back to weights a loss vouches for (the
    start here: the next epoch's loss is the first's again), and the fit
    converges where rolling back to an epoch's end kept every later epoch
    blown up until the fit diverged."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto, "heaviest_stable", lambda *args, **kwargs: 0.6)
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    kw = dict(hidden_layer_sizes=(32,), batch_size=16, learning_rate_init=0.03,
              max_iter=20, tol=0, n_iter_no_change=100, asynchrony="simulated",
              n_workers=32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = AsyncMLPRegressor(momentum="auto", **kw).fit(X, y)
        fixed = AsyncMLPRegressor(momentum=0.6, **kw).set_params(max_iter=2).fit(X, y)
    first, blown = est.loss_curve_[:2]
    assert fixed.loss_curve_ == [first, blown] and blown > 10 * first
    assert est.loss_curve_[2] == pytest.approx(first, rel=1e-12)
    assert est.momentum_ < 0.6
    assert est.loss_curve_[-1] < 0.5 * first


def test_auto_momentum_undoes_a_network_climb_at_five_times_the_start(monkeypatch):
    """A network's loss that climbs past 5 times the start (and the best)
    is undone, where the linear models wait for 10: at 64 workers and
    momentum 0.5 digits' loss climbs past 5x in 3 epochs (past 10x in 5,
    in each of seeds 0-3); "auto" (choosing 0.5 here) goes back to where
    its best epoch started, lower, and ends below the start."""
    from pyasync import mlp_auto
    monkeypatch.setattr(mlp_auto, "heaviest_stable", lambda *args, **kwargs: 0.5)
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(32,), batch_size=16, learning_rate_init=0.07,
              nesterovs_momentum=False, max_iter=5, tol=0, n_iter_no_change=100,
              asynchrony="simulated", n_workers=64, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fixed = AsyncMLPClassifier(momentum=0.5, **kw).fit(X, y)
        auto = AsyncMLPClassifier(momentum="auto", **kw).fit(X, y)
    start = fixed.loss_curve_[0]
    assert fixed.loss_curve_[-1] > 5 * start   # the climb, not undone at a fixed momentum
    climb = int(np.argmax(auto.loss_curve_))
    # undone at 5x, or sooner where it is back above a constant prediction's loss
    shares = np.bincount(y) / y.size
    assert auto.loss_curve_[climb] > min(5 * start, -shares @ np.log(shares))
    assert auto.momentum_ < 0.5 and auto.loss_curve_[-1] < start


@pytest.mark.parametrize("seed", [1, 3])
def test_auto_momentum_undoes_a_network_thrown_back_to_a_constant_prediction(seed):
    """At 16 workers and minibatches of 16, the momentum the model allows
    (0.8) throws digits' network back to the classes' shares (loss log 10,
    accuracy 0.10) within a few epochs, short of 5x the start: an epoch
    at a constant prediction's loss, after better ones, is undone as a
    blow-up is, and the fit ends as momentum 0's does."""
    X, y = load_digits(return_X_y=True)
    kw = dict(hidden_layer_sizes=(32,), learning_rate_init=0.05, batch_size=16,
              max_iter=20, asynchrony="simulated", n_workers=16, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        auto = AsyncMLPClassifier(momentum="auto", **kw).fit(X / 16, y)
        zero = AsyncMLPClassifier(momentum=0.0, **kw).fit(X / 16, y)
    assert auto.momentum_ <= 0.4
    assert auto.score(X / 16, y) > zero.score(X / 16, y) - 0.05


def test_auto_momentum_undoes_an_epoch_far_worse_than_a_constant_prediction():
    """Heavy ball at 8 workers (the reproduce report's MLP): the model
    allows 0.9, whose first epochs never get below the classes' shares'
    loss (log 10) and then climb past 3 times it, short of 5x the start.
    Such an epoch is undone too: the fit goes back to the start, lower,
    and ends far below where momentum 0.9 stays."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(32,), batch_size=16, learning_rate_init=0.05,
              nesterovs_momentum=False, max_iter=5, tol=0.0, n_iter_no_change=100,
              asynchrony="simulated", n_workers=8, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fixed = AsyncMLPClassifier(momentum=0.9, **kw).fit(X, y)
        auto = AsyncMLPClassifier(momentum="auto", **kw).fit(X, y)
    null = np.log(10)
    assert min(fixed.loss_curve_[:2]) > 0.9 * null     # the earlier rule never fires
    assert fixed.loss_curve_[1] > 3 * null and fixed.loss_curve_[-1] > 2 * null
    assert auto.momentum_curve_[:2] == [0.9, 0.9]       # the model's choice: 0.9
    assert auto.loss_curve_[:2] == fixed.loss_curve_[:2]
    assert auto.momentum_curve_[2] < 0.9
    assert auto.loss_curve_[-1] < 0.1 * fixed.loss_curve_[-1]


def epochs_to(curve, target):
    hit = np.flatnonzero(np.asarray(curve) <= target)
    return hit[0] + 1 if hit.size else np.inf


@pytest.mark.parametrize("momentum, n_workers, lr", [
    ("probe", 1, 0.01), ("probe", 64, 0.1), ("auto", 1, 0.01)])
def test_auto_momentum_keeps_up_with_the_best_fixed_one(momentum, n_workers, lr):
    """Where asynchrony barely matters (1 worker, small step: heavy momentum
    is best) and where it dominates (64 workers, large step: negative
    momentum is best), momentum="probe" reaches the loss the best of
    -0.9, -0.6, ..., 0.9 reaches within 5% in at most 1.5x its epochs
    (where holding the total at 0.9, target_momentum, never does at 64);
    so does "auto", its updates all the fit's, at 1 worker (at 4-64
    workers and this step its choice is off in about half the seeds:
    README)."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    base = AsyncMLPClassifier(hidden_layer_sizes=(32,), batch_size=32, max_iter=20,
                              learning_rate_init=lr, asynchrony="simulated",
                              n_workers=n_workers, tol=0, n_iter_no_change=100,
                              random_state=0)

    def curve(**kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                return clone(base).set_params(**kw).fit(X, y).loss_curve_
            except ValueError:  # diverged
                return [np.inf]
    fixed = {mu: curve(momentum=mu) for mu in np.round(np.arange(-0.9, 0.91, 0.3), 1)}
    start = fixed[0.0][0]
    low = min(min(c) for c in fixed.values())
    target = low + 0.05 * (start - low)
    best = min(epochs_to(c, target) for c in fixed.values())
    assert epochs_to(curve(momentum=momentum), target) <= 1.5 * best
    if n_workers == 64:
        assert epochs_to(curve(momentum="auto", target_momentum=0.9), target) == np.inf


def test_auto_momentum_keeps_up_where_asynchrony_wants_negative_momentum():
    """At 16 workers on diabetes (a regressor, minibatches of 16, step 0.03),
    where the best of -0.9, -0.6, ..., 0.9 is mostly -0.9 to -0.6, "auto"
    reaches the loss it reaches within 5% in every one of five seeds, in at
    most 1.5x its epochs in four and 2x in all (its choice, 86% within
    1.5x over the bench's problems, is a model's: README)."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X), (y - y.mean()) / y.std()
    ratios = []
    for seed in range(5):
        base = AsyncMLPRegressor(hidden_layer_sizes=(32,), batch_size=16, max_iter=20,
                                 learning_rate_init=0.03, asynchrony="simulated",
                                 n_workers=16, tol=0, n_iter_no_change=100,
                                 random_state=seed)

        def curve(momentum):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                try:
                    return clone(base).set_params(momentum=momentum).fit(X, y).loss_curve_
                except ValueError:  # diverged
                    return [np.inf]
        fixed = [curve(mu) for mu in np.round(np.arange(-0.9, 0.91, 0.3), 1)]
        start = fixed[3][0]  # momentum 0
        low = min(min(c) for c in fixed)
        target = low + 0.05 * (start - low)
        ratios.append(epochs_to(curve("auto"), target) / min(epochs_to(c, target) for c in fixed))
    assert max(ratios) <= 2.0 and sum(r <= 1.5 for r in ratios) >= 4, ratios

