"""The scikit-learn style API of AsyncSGDClassifier / AsyncSGDRegressor:
shapes, probabilities, partial_fit, warm_start, weights, pickling, cloning,
determinism with one thread, float32 input, early stopping and the fitted
attributes."""
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_digits, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

import pyasync._core as core
from pyasync import AsyncSGDClassifier, AsyncSGDRegressor, StalenessStats

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------- data ----

def _scale(X_train, *others):
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train),) + tuple(scaler.transform(o) for o in others)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0,
                                          stratify=y)
    Xtr, Xte = _scale(Xtr, Xte)
    return Xtr, Xte, ytr, yte


@pytest.fixture(scope="module")
def binary():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0,
                                          stratify=y)
    Xtr, Xte = _scale(Xtr, Xte)
    return Xtr, Xte, ytr, yte


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=1500, n_features=15, n_informative=8,
                           noise=5.0, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    Xtr, Xte = _scale(Xtr, Xte)
    return Xtr, Xte, ytr, yte


def _sparse_classification(n_samples=1500, n_features=300, density=0.03,
                           n_classes=2, seed=0):
    rng = np.random.RandomState(seed)
    X = sp.random(n_samples, n_features, density=density, format="csr",
                  random_state=rng, data_rvs=rng.standard_normal)
    W = rng.standard_normal((n_features, n_classes))
    y = np.asarray((X @ W).argmax(axis=1)).ravel()
    return X, y


# ---------------------------------------------------------- shapes ----

def test_binary_shapes(binary):
    Xtr, Xte, ytr, yte = binary
    clf = AsyncSGDClassifier(random_state=0).fit(Xtr, ytr)
    assert clf.coef_.shape == (1, Xtr.shape[1])
    assert clf.intercept_.shape == (1,)
    assert clf.decision_function(Xte).shape == (Xte.shape[0],)
    pred = clf.predict(Xte)
    assert pred.shape == (Xte.shape[0],)
    assert set(np.unique(pred)) <= set(clf.classes_)
    assert_array_equal(pred, clf.classes_[(clf.decision_function(Xte) > 0).astype(int)])


def test_multiclass_shapes(digits):
    Xtr, Xte, ytr, yte = digits
    clf = AsyncSGDClassifier(random_state=0).fit(Xtr, ytr)
    assert clf.coef_.shape == (10, Xtr.shape[1])
    assert clf.intercept_.shape == (10,)
    scores = clf.decision_function(Xte)
    assert scores.shape == (Xte.shape[0], 10)
    pred = clf.predict(Xte)
    assert pred.shape == (Xte.shape[0],)
    assert_array_equal(pred, clf.classes_[scores.argmax(axis=1)])
    assert clf.score(Xte, yte) > 0.9


def test_string_labels(binary):
    Xtr, Xte, ytr, yte = binary
    labels = np.array(["malignant", "benign"])
    clf = AsyncSGDClassifier(random_state=0).fit(Xtr, labels[ytr])
    assert_array_equal(clf.classes_, ["benign", "malignant"])
    assert clf.predict(Xte).dtype.kind in "UO"
    assert clf.score(Xte, labels[yte]) > 0.9


def test_regressor_shapes(regression):
    Xtr, Xte, ytr, yte = regression
    reg = AsyncSGDRegressor(random_state=0).fit(Xtr, ytr)
    assert reg.coef_.shape == (Xtr.shape[1],)
    assert reg.intercept_.shape == (1,)
    pred = reg.predict(Xte)
    assert pred.shape == (Xte.shape[0],)
    assert_allclose(pred, Xte @ reg.coef_ + reg.intercept_[0])
    assert reg.score(Xte, yte) > 0.9


def test_sparse_and_dense_predictions_agree(digits):
    Xtr, Xte, ytr, yte = digits
    clf = AsyncSGDClassifier(random_state=0, max_iter=5).fit(Xtr, ytr)
    assert_allclose(clf.decision_function(sp.csr_matrix(Xte)),
                    clf.decision_function(Xte))
    assert_array_equal(clf.predict(sp.csr_matrix(Xte)), clf.predict(Xte))


# --------------------------------------------------- probabilities ----

def _sklearn_twin(ours, X, y):
    """An SGDClassifier carrying our fitted weights, so that its
    predict_proba is scikit-learn's formula applied to our scores."""
    twin = SGDClassifier(loss=ours.loss, max_iter=1, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        twin.fit(X, y)
    twin.coef_ = ours.coef_.copy()
    twin.intercept_ = ours.intercept_.copy()
    return twin


@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
@pytest.mark.parametrize("problem", ["binary", "multiclass"])
def test_predict_proba_matches_sklearn_formula(loss, problem, binary, digits):
    Xtr, Xte, ytr, yte = binary if problem == "binary" else digits
    clf = AsyncSGDClassifier(loss=loss, random_state=0, max_iter=20).fit(Xtr, ytr)
    proba = clf.predict_proba(Xte)
    n_classes = clf.classes_.shape[0]
    assert proba.shape == (Xte.shape[0], n_classes)
    assert np.all(proba >= 0) and np.all(proba <= 1)
    assert_allclose(proba.sum(axis=1), 1.0)
    twin = _sklearn_twin(clf, Xtr, ytr)
    assert_allclose(proba, twin.predict_proba(Xte), rtol=1e-12, atol=1e-12)
    if problem == "binary":
        # the likelier class is the prediction (multiclass may tie: the
        # sigmoid saturates and modified_huber clips)
        assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(Xte))
    with np.errstate(divide="ignore"):
        assert_allclose(clf.predict_log_proba(Xte), np.log(proba))
    if problem == "binary" and loss == "log_loss":
        expected = 1.0 / (1.0 + np.exp(-clf.decision_function(Xte)))
        assert_allclose(proba[:, 1], expected)


def test_modified_huber_all_scores_below_minus_one_is_uniform(digits):
    """scikit-learn's modified_huber rule: where every one-vs-rest score is
    <= -1 the probabilities are uniform."""
    Xtr, Xte, ytr, yte = digits
    clf = AsyncSGDClassifier(loss="modified_huber", random_state=0,
                             max_iter=5).fit(Xtr, ytr)
    clf.intercept_ = clf.intercept_ - 1e6
    proba = clf.predict_proba(Xte[:20])
    assert_allclose(proba, np.full((20, 10), 0.1))
    twin = _sklearn_twin(clf, Xtr, ytr)
    assert_allclose(proba, twin.predict_proba(Xte[:20]))


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "perceptron",
                                  "squared_error", "huber",
                                  "epsilon_insensitive"])
def test_no_predict_proba_without_probabilistic_loss(loss, binary):
    assert not hasattr(AsyncSGDClassifier(loss=loss), "predict_proba")
    assert not hasattr(AsyncSGDClassifier(loss=loss), "predict_log_proba")
    Xtr, Xte, ytr, yte = binary
    clf = AsyncSGDClassifier(loss=loss, random_state=0, max_iter=5).fit(Xtr, ytr)
    assert not hasattr(clf, "predict_proba")
    with pytest.raises(AttributeError):
        clf.predict_proba(Xte)


@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_predict_proba_available_for_probabilistic_loss(loss):
    assert hasattr(AsyncSGDClassifier(loss=loss), "predict_proba")
    assert hasattr(AsyncSGDClassifier(loss=loss), "predict_log_proba")


# ------------------------------------------------ passive-aggressive ----

@pytest.mark.parametrize("learning_rate", ["pa1", "pa2"])
@pytest.mark.parametrize("penalty", [None, "l2"])
@pytest.mark.parametrize("sparse", [False, True])
def test_passive_aggressive_rates_equal_sklearn(digits, regression, learning_rate,
                                                penalty, sparse):
    """learning_rate="pa1" / "pa2" (scikit-learn 1.8+): each step zeroes the
    row's hinge or epsilon-insensitive loss, capped (PA-I) or damped
    (PA-II) by C = eta0; equal to SGDClassifier / SGDRegressor."""
    if not any("pa1" in getattr(c, "options", ())
               for c in SGDClassifier._parameter_constraints["learning_rate"]):
        pytest.skip("scikit-learn's SGD takes pa1 / pa2 from 1.8")
    from sklearn.linear_model import SGDRegressor
    common = dict(learning_rate=learning_rate, eta0=0.3, penalty=penalty, shuffle=False,
                  max_iter=3, tol=None, random_state=0)
    conv = sp.csr_matrix if sparse else np.asarray
    Xc, _, yc, _ = digits
    ours = AsyncSGDClassifier(loss="hinge", n_jobs=1, **common).fit(conv(Xc), yc)
    ref = SGDClassifier(loss="hinge", **common).fit(conv(Xc), yc)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10, atol=1e-12)
    Xr, _, yr, _ = regression
    kw = dict(loss="epsilon_insensitive", epsilon=0.1, **common)
    ours = AsyncSGDRegressor(n_jobs=1, **kw).fit(conv(Xr), yr / yr.std())
    ref = SGDRegressor(**kw).fit(conv(Xr), yr / yr.std())
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_passive_aggressive_skips_empty_rows_and_watches_the_loss(digits, sparse):
    """As scikit-learn's: PA-I leaves rows of zero norm alone (no step, no
    decay), and with tol the stopping rule watches the loss without the
    penalty. (Not both at once: scikit-learn's epoch loss adds the skipped
    rows' losses over the count of the others, which ours does not.)"""
    if not any("pa1" in getattr(c, "options", ())
               for c in SGDClassifier._parameter_constraints["learning_rate"]):
        pytest.skip("scikit-learn's SGD takes pa1 / pa2 from 1.8")
    Xc, _, yc, _ = digits
    with_empty_rows = np.array(Xc)
    with_empty_rows[::3] = 0.0
    conv = sp.csr_matrix if sparse else np.asarray
    for X, learning_rate, tol, max_iter in ((with_empty_rows, "pa1", None, 4),
                                            (Xc, "pa1", 1e-4, 300), (Xc, "pa2", 1e-3, 300)):
        kw = dict(loss="hinge", learning_rate=learning_rate, eta0=0.1, penalty="l2",
                  alpha=1e-3, max_iter=max_iter, tol=tol, shuffle=False, random_state=0)
        ours = AsyncSGDClassifier(n_jobs=1, **kw).fit(conv(X), yc >= 5)
        ref = SGDClassifier(**kw).fit(conv(X), yc >= 5)
        assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
        assert tol is None or ours.n_iter_ < max_iter  # the stopping rule decided
        assert_allclose(ours.coef_, ref.coef_, rtol=1e-9, atol=1e-11)


def test_passive_aggressive_under_staleness(binary):
    """The simulated workers' stale reads leave passive-aggressive steps
    as accurate on held-out rows as one worker's."""
    Xtr, Xte, ytr, yte = binary
    kw = dict(loss="hinge", learning_rate="pa1", eta0=0.1, penalty=None, max_iter=10,
              random_state=0)
    one = AsyncSGDClassifier(n_jobs=1, **kw).fit(Xtr, ytr).score(Xte, yte)
    stale = AsyncSGDClassifier(asynchrony="simulated", n_workers=16, **kw).fit(Xtr, ytr)
    assert stale.staleness_.mean > 5
    assert stale.score(Xte, yte) > one - 0.03 and one > 0.93


def test_passive_aggressive_needs_its_loss_and_a_fixed_momentum(binary):
    Xtr, _, ytr, _ = binary
    with pytest.raises(ValueError, match="only works with loss 'hinge'"):
        AsyncSGDClassifier(loss="log_loss", learning_rate="pa1").fit(Xtr, ytr)
    with pytest.raises(ValueError, match="only works with loss 'epsilon_insensitive'"):
        AsyncSGDRegressor(learning_rate="pa2").fit(Xtr, ytr.astype(float))
    with pytest.raises(ValueError, match="fixed momentum"):
        AsyncSGDClassifier(loss="hinge", learning_rate="pa2", momentum="auto").fit(Xtr, ytr)


# ------------------------------------------------- scikit-learn's shuffle ----

@pytest.mark.parametrize("random_state", [0, 11])
@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("problem,params", [
    ("binary", {}),
    ("binary", {"loss": "log_loss", "penalty": "elasticnet"}),
    ("digits", {"loss": "hinge", "alpha": 1e-3}),
    ("digits", {"loss": "modified_huber", "learning_rate": "invscaling", "eta0": 0.01}),
    ("regression", {}),
    ("regression", {"loss": "huber", "penalty": "l1", "learning_rate": "constant"}),
])
def test_shuffled_fits_equal_sklearn(problem, params, fmt, random_state, request):
    """shuffle=True (the default): one thread visits the rows in the order
    SGDClassifier / SGDRegressor shuffle them to under the same int
    random_state (its seed draws, one-vs-rest each class's, and its
    shuffle), so the fits are the same to rounding (which the "optimal"
    schedule's huge first steps grow to 1e-9, within scikit-learn too)."""
    Xtr, _, ytr, _ = request.getfixturevalue(problem)
    X = sp.csr_matrix(Xtr) if fmt == "csr" else Xtr
    Ours, Theirs = ((AsyncSGDRegressor, SGDRegressor) if problem == "regression"
                    else (AsyncSGDClassifier, SGDClassifier))
    y = (ytr - ytr.mean()) / ytr.std() if problem == "regression" else ytr
    kw = dict(max_iter=4, tol=None, random_state=random_state, **params)
    ours, theirs = Ours(**kw).fit(X, y), Theirs(**kw).fit(X, y)
    scale = max(1.0, np.abs(theirs.coef_).max())
    assert np.abs(ours.coef_ - theirs.coef_).max() <= 1e-8 * scale
    assert_allclose(ours.intercept_, theirs.intercept_, rtol=1e-8, atol=1e-8 * scale)
    # another seed visits them in another order: the agreement is the order's
    other = Ours(**dict(kw, random_state=random_state + 1)).fit(X, y)
    assert np.abs(other.coef_ - theirs.coef_).max() > 1e-4 * scale


@pytest.mark.parametrize("problem", ["binary", "digits"])
def test_shuffled_partial_fit_equals_sklearn(problem, request):
    """partial_fit shuffles each call's rows as SGDClassifier's does (the
    same seeds every call from an int random_state)."""
    Xtr, _, ytr, _ = request.getfixturevalue(problem)
    classes = np.unique(ytr)
    ours, theirs = AsyncSGDClassifier(random_state=3), SGDClassifier(random_state=3)
    for call, rows in enumerate(np.array_split(np.arange(Xtr.shape[0]), 3) * 2):
        kw = {"classes": classes} if call == 0 else {}
        ours.partial_fit(Xtr[rows], ytr[rows], **kw)
        theirs.partial_fit(Xtr[rows], ytr[rows], **kw)
    assert ours.t_ == theirs.t_
    assert np.abs(ours.coef_ - theirs.coef_).max() <= 1e-8 * max(1.0, np.abs(theirs.coef_).max())


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("problem,params", [
    ("binary", {}),
    ("binary", {"penalty": "elasticnet", "alpha": 1e-3}),
    ("digits", {"penalty": "l1"}),
    ("regression", {}),
    ("regression", {"penalty": "elasticnet", "alpha": 1e-3}),
])
def test_stopping_rule_equals_sklearn(problem, params, fmt, request):
    """The default stopping rule (tol=1e-3 on the training objective, with
    its penalty at every update, from the norms scikit-learn's weight
    vector keeps): one thread stops at scikit-learn's epoch, every
    one-vs-rest problem too, with its coefficients."""
    Xtr, _, ytr, _ = request.getfixturevalue(problem)
    X = sp.csr_matrix(Xtr) if fmt == "csr" else Xtr
    Ours, Theirs = ((AsyncSGDRegressor, SGDRegressor) if problem == "regression"
                    else (AsyncSGDClassifier, SGDClassifier))
    y = (ytr - ytr.mean()) / ytr.std() if problem == "regression" else ytr
    ours, theirs = Ours(random_state=0, **params).fit(X, y), Theirs(random_state=0, **params).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 1000
    scale = max(1.0, np.abs(theirs.coef_).max())
    assert np.abs(ours.coef_ - theirs.coef_).max() <= 1e-8 * scale


# ----------------------------------------------------------- partial_fit ----

def test_partial_fit_batches_matches_sklearn(digits):
    Xtr, Xte, ytr, yte = digits
    classes = np.unique(ytr)
    batches = np.array_split(np.arange(Xtr.shape[0]), 4)
    ours, ref = [], []
    # ten seeds: two racing threads move a three-seed mean by +-0.005
    for seed in range(10):
        clf = AsyncSGDClassifier(random_state=seed, n_jobs=2)
        sk = SGDClassifier(random_state=seed)
        for epoch in range(5):
            for i, rows in enumerate(batches):
                kw = {"classes": classes} if epoch == 0 and i == 0 else {}
                clf.partial_fit(Xtr[rows], ytr[rows], **kw)
                sk.partial_fit(Xtr[rows], ytr[rows], **kw)
        assert clf.n_iter_ == 1
        assert_array_equal(clf.classes_, classes)
        assert clf.n_features_in_ == Xtr.shape[1]
        # t_ counts every update of the 20 calls (+1, as scikit-learn)
        assert clf.t_ == pytest.approx(sk.t_)
        ours.append(clf.score(Xte, yte))
        ref.append(sk.score(Xte, yte))
    assert np.mean(ours) >= np.mean(ref) - 0.01, (ours, ref)
    assert np.mean(ours) > 0.9


@pytest.mark.parametrize("params", [
    pytest.param({}, id="plain"),
    pytest.param({"momentum": 0.5, "learning_rate": "constant", "eta0": 0.01},
                 id="momentum-constant"),
    pytest.param({"momentum": 0.3, "learning_rate": "invscaling", "eta0": 0.05},
                 id="momentum-invscaling"),
    pytest.param({"momentum": -0.3}, id="negative-momentum-optimal"),
])
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_partial_fit_epochs_equal_fit_epochs(params, fmt, n_classes):
    """Without shuffling, three partial_fit calls over the whole data are
    three epochs of fit: the clock t_ and the momentum carry over."""
    X, y = _sparse_classification(n_classes=n_classes)
    if fmt == "dense":
        X = X.toarray()
    common = dict(n_jobs=1, shuffle=False, tol=None, **params)
    fitted = AsyncSGDClassifier(max_iter=3, **common).fit(X, y)
    online = AsyncSGDClassifier(**common)
    for _ in range(3):
        online.partial_fit(X, y, classes=np.unique(y))
    assert online.t_ == fitted.t_
    assert_array_equal(online.coef_, fitted.coef_)
    assert_array_equal(online.intercept_, fitted.intercept_)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_regressor_partial_fit_epochs_equal_fit_epochs(momentum):
    X, _ = _sparse_classification()
    y = X @ np.random.RandomState(1).standard_normal(X.shape[1])
    common = dict(n_jobs=1, shuffle=False, tol=None, momentum=momentum)
    fitted = AsyncSGDRegressor(max_iter=3, **common).fit(X, y)
    online = AsyncSGDRegressor(**common)
    for _ in range(3):
        online.partial_fit(X, y)
    assert online.t_ == fitted.t_
    assert_array_equal(online.coef_, fitted.coef_)
    assert_array_equal(online.intercept_, fitted.intercept_)


def test_partial_fit_first_call_needs_classes(binary):
    Xtr, _, ytr, _ = binary
    with pytest.raises(ValueError, match="classes"):
        AsyncSGDClassifier().partial_fit(Xtr, ytr)


def test_partial_fit_rejects_unknown_label(binary):
    Xtr, _, ytr, _ = binary
    clf = AsyncSGDClassifier(random_state=0).partial_fit(Xtr, ytr, classes=[0, 1])
    with pytest.raises(ValueError):
        clf.partial_fit(Xtr[:10], np.full(10, 7))


def test_partial_fit_continues_after_fit(binary):
    Xtr, Xte, ytr, yte = binary
    clf = AsyncSGDClassifier(random_state=0, max_iter=5).fit(Xtr, ytr)
    t = clf.t_
    coef = clf.coef_.copy()
    clf.partial_fit(Xtr, ytr)
    assert clf.t_ == t + Xtr.shape[0]
    assert not np.array_equal(coef, clf.coef_)


def test_regressor_partial_fit(regression):
    Xtr, Xte, ytr, yte = regression
    reg = AsyncSGDRegressor(random_state=0, n_jobs=2)
    for _ in range(10):
        for rows in np.array_split(np.arange(Xtr.shape[0]), 3):
            reg.partial_fit(Xtr[rows], ytr[rows])
    assert reg.n_iter_ == 1
    assert reg.t_ == 10 * Xtr.shape[0] + 1
    assert reg.score(Xte, yte) > 0.9


# ----------------------------------------------------------- warm start ----

def test_classifier_warm_start_continues_from_previous_coef(digits):
    Xtr, _, ytr, _ = digits
    params = dict(n_jobs=1, random_state=0, max_iter=3, tol=None)
    warm = AsyncSGDClassifier(warm_start=True, **params).fit(Xtr, ytr)
    first = warm.coef_.copy(), warm.intercept_.copy()
    warm.fit(Xtr, ytr)
    cold = AsyncSGDClassifier(**params).fit(Xtr, ytr, coef_init=first[0],
                                             intercept_init=first[1])
    assert_array_equal(warm.coef_, cold.coef_)
    assert_array_equal(warm.intercept_, cold.intercept_)
    # and not a restart from zero
    fresh = AsyncSGDClassifier(**params).fit(Xtr, ytr)
    assert not np.array_equal(warm.coef_, fresh.coef_)


def test_explicit_init_wins_over_warm_start(binary):
    """As SGDClassifier: fit(coef_init=...) on a warm-started model starts
    from the init given, not from the fitted coef_."""
    Xtr, _, ytr, _ = binary
    kw = dict(shuffle=False, learning_rate="constant", eta0=0.01, max_iter=2, tol=None,
              random_state=0)
    init = np.full((1, Xtr.shape[1]), 0.3)
    warm = AsyncSGDClassifier(warm_start=True, n_jobs=1, **kw).fit(Xtr, ytr)
    warm.fit(Xtr, ytr, coef_init=init, intercept_init=[0.5])
    fresh = AsyncSGDClassifier(n_jobs=1, **kw).fit(Xtr, ytr, coef_init=init,
                                                   intercept_init=[0.5])
    ref = SGDClassifier(warm_start=True, **kw).fit(Xtr, ytr).fit(
        Xtr, ytr, coef_init=init, intercept_init=[0.5])
    assert_array_equal(warm.coef_, fresh.coef_)
    assert_allclose(warm.coef_, ref.coef_, rtol=1e-10, atol=1e-12)


def test_classifier_warm_start_needs_same_classes(digits):
    Xtr, _, ytr, _ = digits
    clf = AsyncSGDClassifier(warm_start=True, random_state=0, max_iter=2).fit(Xtr, ytr)
    keep = ytr < 5
    with pytest.raises(ValueError):
        clf.fit(Xtr[keep], ytr[keep])


def test_regressor_warm_start_continues_from_previous_coef(regression):
    Xtr, _, ytr, _ = regression
    params = dict(n_jobs=1, random_state=0, max_iter=3, tol=None)
    warm = AsyncSGDRegressor(warm_start=True, **params).fit(Xtr, ytr)
    first = warm.coef_.copy(), warm.intercept_.copy()
    warm.fit(Xtr, ytr)
    cold = AsyncSGDRegressor(**params).fit(Xtr, ytr, coef_init=first[0],
                                            intercept_init=first[1])
    assert_array_equal(warm.coef_, cold.coef_)
    assert_array_equal(warm.intercept_, cold.intercept_)


def test_coef_init_shape_mismatch_raises(binary):
    Xtr, _, ytr, _ = binary
    with pytest.raises(ValueError):
        AsyncSGDClassifier().fit(Xtr, ytr, coef_init=np.zeros(Xtr.shape[1] + 1))
    with pytest.raises(ValueError):
        AsyncSGDClassifier().fit(Xtr, ytr, intercept_init=np.zeros(2))


# -------------------------------------------------- class & sample weight ----

@pytest.fixture(scope="module")
def imbalanced():
    rng = np.random.RandomState(0)
    n0, n1 = 1800, 200
    X = np.vstack([rng.normal(0.0, 1.0, (n0, 5)), rng.normal(0.8, 1.0, (n1, 5))])
    y = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    return X, y


def test_class_weight_balanced_matches_sample_weight(imbalanced):
    X, y = imbalanced
    params = dict(n_jobs=1, random_state=0, max_iter=10)
    balanced = AsyncSGDClassifier(class_weight="balanced", **params).fit(X, y)
    weighted = AsyncSGDClassifier(**params).fit(
        X, y, sample_weight=compute_sample_weight("balanced", y))
    assert_allclose(balanced.coef_, weighted.coef_, rtol=1e-12, atol=1e-12)
    assert_allclose(balanced.intercept_, weighted.intercept_, rtol=1e-12, atol=1e-12)
    # the minority class is predicted more often than without weights
    plain = AsyncSGDClassifier(**params).fit(X, y)
    assert (balanced.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()
    recall = lambda m: np.mean(m.predict(X)[y == 1] == 1)
    assert recall(balanced) > recall(plain)


def test_class_weight_dict_matches_sample_weight(imbalanced):
    X, y = imbalanced
    params = dict(n_jobs=1, random_state=0, max_iter=10)
    cw = {0: 1.0, 1: 12.0}
    by_dict = AsyncSGDClassifier(class_weight=cw, **params).fit(X, y)
    weighted = AsyncSGDClassifier(**params).fit(
        X, y, sample_weight=np.where(y == 1, 12.0, 1.0))
    assert_allclose(by_dict.coef_, weighted.coef_, rtol=1e-12, atol=1e-12)
    plain = AsyncSGDClassifier(**params).fit(X, y)
    assert (by_dict.predict(X) == 1).sum() > (plain.predict(X) == 1).sum()


def test_class_weight_and_sample_weight_multiply(imbalanced):
    X, y = imbalanced
    params = dict(n_jobs=1, random_state=0, max_iter=5)
    sw = np.random.RandomState(1).uniform(0.5, 2.0, X.shape[0])
    both = AsyncSGDClassifier(class_weight={0: 1.0, 1: 3.0}, **params).fit(
        X, y, sample_weight=sw)
    product = AsyncSGDClassifier(**params).fit(
        X, y, sample_weight=sw * np.where(y == 1, 3.0, 1.0))
    assert_allclose(both.coef_, product.coef_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("class_weight", [{0: 3.0, 4: 0.5}, "balanced"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_multiclass_class_weight_equals_sklearn(digits, class_weight, early_stopping):
    """One-vs-rest as SGDClassifier: problem k weighs its positive rows by
    class k's weight and the others by 1 (not each row by its own class's),
    and early stopping scores by the sample weights alone."""
    Xtr, _, ytr, _ = digits
    keep = ytr < 5
    Xtr, ytr = Xtr[keep], ytr[keep]
    sw = np.random.RandomState(0).uniform(0.5, 2.0, ytr.shape[0])
    params = dict(shuffle=False, learning_rate="constant", eta0=0.01, max_iter=4, tol=None,
                  class_weight=class_weight, random_state=0, early_stopping=early_stopping)
    ours = AsyncSGDClassifier(n_jobs=1, **params).fit(Xtr, ytr, sample_weight=sw)
    ref = SGDClassifier(**params).fit(Xtr, ytr, sample_weight=sw)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10, atol=1e-12)


def test_zero_sample_weight_for_a_class_changes_predictions(digits):
    Xtr, Xte, ytr, yte = digits
    params = dict(n_jobs=2, random_state=0, max_iter=20)
    plain = AsyncSGDClassifier(**params).fit(Xtr, ytr)
    sw = np.where(ytr == 3, 0.0, 1.0)
    zeroed = AsyncSGDClassifier(**params).fit(Xtr, ytr, sample_weight=sw)
    pred_plain, pred_zeroed = plain.predict(Xte), zeroed.predict(Xte)
    assert not np.array_equal(pred_plain, pred_zeroed)
    # class 3's rows never pull its one-vs-rest model up: it (almost) is
    # never predicted, while the plain model recognises it
    assert np.mean(pred_plain[yte == 3] == 3) > 0.8
    assert np.mean(pred_zeroed == 3) < 0.02


def test_zero_sample_weight_binary(binary):
    Xtr, Xte, ytr, yte = binary
    sw = np.where(ytr == 1, 0.0, 1.0)
    # class 0 is 37% of the rows; a model that only ever sees class 0 with
    # weight predicts it nearly everywhere (scikit-learn: about 90%)
    share = [np.mean(AsyncSGDClassifier(random_state=seed, n_jobs=2)
                     .fit(Xtr, ytr, sample_weight=sw).predict(Xte) == 0)
             for seed in range(3)]
    assert np.mean(share) > 0.8, share
    plain = AsyncSGDClassifier(random_state=0, n_jobs=2).fit(Xtr, ytr)
    assert np.mean(plain.predict(Xte) == 0) < 0.5


# ------------------------------------------------------- pickle & clone ----

@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_pickle_round_trip(digits, momentum):
    Xtr, Xte, ytr, yte = digits
    clf = AsyncSGDClassifier(loss="log_loss", random_state=0, n_jobs=2,
                             momentum=momentum, learning_rate="constant",
                             eta0=0.01, max_iter=5).fit(Xtr, ytr)
    back = pickle.loads(pickle.dumps(clf))
    assert_array_equal(back.predict(Xte), clf.predict(Xte))
    assert_array_equal(back.decision_function(Xte), clf.decision_function(Xte))
    assert_array_equal(back.predict_proba(Xte), clf.predict_proba(Xte))
    assert_array_equal(back.coef_, clf.coef_)
    assert back.get_params() == clf.get_params()
    assert isinstance(back.staleness_, StalenessStats)
    assert_array_equal(back.staleness_.histogram, clf.staleness_.histogram)
    assert back.loss_curve_ == clf.loss_curve_
    # an unpickled model keeps learning
    back.partial_fit(Xtr, ytr)
    assert back.t_ == clf.t_ + Xtr.shape[0]


def test_pickle_round_trip_regressor(regression):
    Xtr, Xte, ytr, yte = regression
    reg = AsyncSGDRegressor(random_state=0, n_jobs=2).fit(Xtr, ytr)
    back = pickle.loads(pickle.dumps(reg))
    assert_array_equal(back.predict(Xte), reg.predict(Xte))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regressor"])
def test_sparsify_densify_round_trip(kind, binary, digits, regression):
    """sparsify stores coef_ as CSR (one row a model), predictions stay the
    same on dense and sparse input, densify restores the array, and a fit
    that goes on from a sparsified model (partial_fit, warm_start) starts
    from its coefficients, as from the dense ones."""
    Xtr, Xte, ytr, _ = {"binary": binary, "multiclass": digits,
                        "regressor": regression}[kind]
    Est = AsyncSGDRegressor if kind == "regressor" else AsyncSGDClassifier
    kw = dict(penalty="l1", alpha=0.01, random_state=0, n_jobs=1, max_iter=5)
    est = Est(**kw).fit(Xtr, ytr)
    dense_coef, predicted = est.coef_.copy(), est.predict(Xte)
    assert est.sparsify() is est and sp.issparse(est.coef_)
    assert (est.sparsify().coef_ != sp.csr_matrix(np.atleast_2d(dense_coef))).nnz == 0
    assert est.coef_.shape == np.atleast_2d(dense_coef).shape
    assert est.coef_.nnz == np.count_nonzero(dense_coef) < dense_coef.size
    for X in (Xte, sp.csr_matrix(Xte)):  # the same up to the sum's order
        assert_allclose(est.predict(X), predicted, rtol=1e-12, atol=1e-12)
    twin = pickle.loads(pickle.dumps(est))
    assert_array_equal(est.densify().coef_, dense_coef)
    dense_twin = Est(**kw).fit(Xtr, ytr)
    twin.partial_fit(Xtr, ytr)
    dense_twin.partial_fit(Xtr, ytr)
    assert isinstance(twin.coef_, np.ndarray)
    assert_array_equal(twin.coef_, dense_twin.coef_)
    warm = Est(warm_start=True, **kw).fit(Xtr, ytr).sparsify().fit(Xtr, ytr)
    dense_warm = Est(warm_start=True, **kw).fit(Xtr, ytr).fit(Xtr, ytr)
    assert_array_equal(warm.coef_, dense_warm.coef_)


def test_sparsify_before_fit_raises():
    from sklearn.exceptions import NotFittedError
    for Est in (AsyncSGDClassifier, AsyncSGDRegressor):
        with pytest.raises(NotFittedError):
            Est().sparsify()
        with pytest.raises(NotFittedError):
            Est().densify()


@pytest.mark.parametrize("Est", [AsyncSGDClassifier, AsyncSGDRegressor])
def test_clone(Est, binary):
    Xtr, _, ytr, _ = binary
    est = Est(momentum=0.3, update="atomic", n_jobs=2, random_state=3,
              learning_rate="constant", eta0=0.005, max_iter=7)
    est.fit(Xtr, ytr)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    for name in ("momentum", "update", "asynchrony", "n_jobs"):
        assert name in twin.get_params()
    assert not hasattr(twin, "coef_")
    twin.fit(Xtr, ytr)
    assert twin.coef_.shape == est.coef_.shape


def test_set_params_and_repr():
    clf = AsyncSGDClassifier().set_params(momentum=0.2, update="locked")
    assert clf.momentum == 0.2 and clf.update == "locked"
    assert "momentum=0.2" in repr(clf)


# ----------------------------------------------- one thread is deterministic ----

ONE_THREAD_PARAMS = [
    pytest.param({}, id="hinge-optimal"),
    pytest.param({"loss": "log_loss", "penalty": "elasticnet"}, id="log-elasticnet"),
    pytest.param({"penalty": "l1", "learning_rate": "invscaling", "eta0": 0.05},
                 id="l1-invscaling"),
    pytest.param({"momentum": 0.6, "learning_rate": "constant", "eta0": 0.005},
                 id="momentum"),
    pytest.param({"momentum": -0.4, "learning_rate": "invscaling", "eta0": 0.05},
                 id="negative-momentum"),
    pytest.param({"learning_rate": "adaptive", "eta0": 0.05, "class_weight": "balanced"},
                 id="adaptive"),
]


@pytest.mark.parametrize("params", ONE_THREAD_PARAMS)
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_one_thread_fits_are_bit_identical(params, fmt, n_classes):
    X, y = _sparse_classification(n_classes=n_classes)
    if fmt == "dense":
        X = X.toarray()
    fits = [AsyncSGDClassifier(n_jobs=1, random_state=7, max_iter=8, **params).fit(X, y)
            for _ in range(2)]
    assert np.array_equal(fits[0].coef_, fits[1].coef_)
    assert np.array_equal(fits[0].intercept_, fits[1].intercept_)
    assert fits[0].n_iter_ == fits[1].n_iter_
    assert fits[0].loss_curve_ == fits[1].loss_curve_
    # and a different random_state gives a different fit
    other = AsyncSGDClassifier(n_jobs=1, random_state=8, max_iter=8, **params).fit(X, y)
    assert not np.array_equal(fits[0].coef_, other.coef_)


@pytest.mark.parametrize("params", ONE_THREAD_PARAMS[:5])
@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_one_thread_regressor_fits_are_bit_identical(params, fmt):
    X, _ = _sparse_classification()
    w = np.random.RandomState(1).standard_normal(X.shape[1])
    y = X @ w
    if fmt == "dense":
        X = X.toarray()
    params = {k: v for k, v in params.items() if k != "loss"}
    fits = [AsyncSGDRegressor(n_jobs=1, random_state=7, max_iter=8, **params).fit(X, y)
            for _ in range(2)]
    assert np.array_equal(fits[0].coef_, fits[1].coef_)
    assert np.array_equal(fits[0].intercept_, fits[1].intercept_)


def test_one_thread_large_input_is_bit_identical():
    """Above the engine's inline threshold a single worker thread runs the
    epoch; it must stay deterministic too."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((12000, 200))
    y = (X[:, :10].sum(axis=1) > 0).astype(int)
    fits = [AsyncSGDClassifier(n_jobs=1, random_state=0, max_iter=2, tol=None,
                               momentum=0.3, learning_rate="constant",
                               eta0=0.001).fit(X, y) for _ in range(2)]
    assert np.array_equal(fits[0].coef_, fits[1].coef_)


# ------------------------------------------------------------- float32 ----

@pytest.fixture
def engine_dtypes(monkeypatch):
    """Records the dtype of X as the compiled engine receives it."""
    seen = []
    original = core.linear_epoch

    def spy(params, X, *args, **kwargs):
        seen.append(X.dtype)
        return original(params, X, *args, **kwargs)

    monkeypatch.setattr(core, "linear_epoch", spy)
    return seen


@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_float32_classifier_not_upcast(engine_dtypes, binary, fmt):
    Xtr, Xte, ytr, yte = binary
    conv = sp.csr_matrix if fmt == "sparse" else np.asarray
    params = dict(loss="log_loss", learning_rate="constant", eta0=0.01,
                  n_jobs=1, random_state=0, max_iter=20, tol=None)
    X32 = conv(Xtr.astype(np.float32))
    clf32 = AsyncSGDClassifier(**params).fit(X32, ytr)
    assert engine_dtypes and all(d == np.float32 for d in engine_dtypes)
    engine_dtypes.clear()
    clf64 = AsyncSGDClassifier(**params).fit(conv(Xtr), ytr)
    assert all(d == np.float64 for d in engine_dtypes)
    # the model keeps the input's precision, as SGDClassifier's does
    assert clf32.coef_.dtype == np.float32 and clf64.coef_.dtype == np.float64
    assert_allclose(clf32.coef_, clf64.coef_, rtol=1e-5, atol=1e-6)
    assert_allclose(clf32.intercept_, clf64.intercept_, rtol=1e-5, atol=1e-6)
    assert_array_equal(clf32.predict(Xte.astype(np.float32)), clf64.predict(Xte))


@pytest.mark.parametrize("fmt", ["dense", "sparse"])
def test_float32_regressor_not_upcast(engine_dtypes, regression, fmt):
    Xtr, Xte, ytr, yte = regression
    conv = sp.csr_matrix if fmt == "sparse" else np.asarray
    params = dict(n_jobs=1, random_state=0, max_iter=10, tol=None)
    reg32 = AsyncSGDRegressor(**params).fit(conv(Xtr.astype(np.float32)), ytr)
    assert engine_dtypes and all(d == np.float32 for d in engine_dtypes)
    reg64 = AsyncSGDRegressor(**params).fit(conv(Xtr), ytr)
    assert reg32.coef_.dtype == np.float32 and reg64.coef_.dtype == np.float64
    assert_allclose(reg32.coef_, reg64.coef_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n_classes", [2, 3, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fitted_dtypes_are_scikit_learns(n_classes, dtype):
    """coef_, intercept_ and the scores come in scikit-learn's dtypes
    (intercept_ float64 for a binary problem's one model and a regressor's)."""
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    rng = np.random.RandomState(0)
    X = rng.standard_normal((90, 4)).astype(dtype)
    y = rng.randint(0, n_classes, 90) if n_classes else X @ np.ones(4, dtype=dtype)
    ours, theirs = ((AsyncSGDClassifier, SGDClassifier) if n_classes
                    else (AsyncSGDRegressor, SGDRegressor))
    ours, theirs = ours(max_iter=3, tol=None).fit(X, y), theirs(max_iter=3, tol=None).fit(X, y)
    assert ours.coef_.dtype == theirs.coef_.dtype
    assert ours.intercept_.dtype == theirs.intercept_.dtype
    assert ours.predict(X).dtype == theirs.predict(X).dtype


@pytest.mark.parametrize("Est", [AsyncSGDClassifier, AsyncSGDRegressor])
def test_partial_fit_takes_each_call_in_its_own_precision(binary, regression, Est):
    Xtr, _, ytr, _ = binary if Est is AsyncSGDClassifier else regression
    extra = dict(classes=np.unique(ytr)) if Est is AsyncSGDClassifier else {}
    est = Est(n_jobs=1, random_state=0, eta0=0.01, learning_rate="constant")
    ref = Est(n_jobs=1, random_state=0, eta0=0.01, learning_rate="constant")
    est.partial_fit(Xtr.astype(np.float32), ytr, **extra)
    ref.partial_fit(Xtr.astype(np.float32).astype(np.float64), ytr, **extra)
    assert est.coef_.dtype == np.float32
    assert_array_equal(est.coef_, ref.coef_.astype(np.float32))
    est.partial_fit(Xtr, ytr)  # float64 after float32 goes on, in float64
    assert est.coef_.dtype == np.float64
    assert np.all(np.isfinite(est.coef_))


def test_float32_with_threads_and_momentum(binary):
    Xtr, Xte, ytr, yte = binary
    clf = AsyncSGDClassifier(n_jobs=2, momentum=0.5, learning_rate="constant",
                             eta0=0.01, random_state=0).fit(Xtr.astype(np.float32), ytr)
    assert np.all(np.isfinite(clf.coef_))
    assert clf.score(Xte.astype(np.float32), yte) > 0.9


# --------------------------------------------------------- early stopping ----

def test_classifier_early_stopping(digits):
    Xtr, Xte, ytr, yte = digits
    clf = AsyncSGDClassifier(early_stopping=True, validation_fraction=0.2,
                             n_iter_no_change=3, max_iter=1000, random_state=0,
                             n_jobs=2).fit(Xtr, ytr)
    assert clf.n_iter_ < 1000
    assert len(clf.loss_curve_) == clf.n_iter_
    assert clf.score(Xte, yte) > 0.9


def test_classifier_early_stopping_trains_on_the_train_split(binary):
    """The validation rows are held out of training, as SGDClassifier holds
    them (equal coefficients with shuffle=False); t_ counts every row, as
    its t_ does."""
    Xtr, _, ytr, _ = binary
    params = dict(early_stopping=True, validation_fraction=0.25, random_state=0, tol=None,
                  max_iter=3, shuffle=False, learning_rate="constant", eta0=0.01)
    clf = AsyncSGDClassifier(n_jobs=1, **params).fit(Xtr, ytr)
    ref = SGDClassifier(**params).fit(Xtr, ytr)
    assert_allclose(clf.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    assert clf.t_ == ref.t_ == clf.n_iter_ * Xtr.shape[0] + 1
    plain = AsyncSGDClassifier(n_jobs=1, **dict(params, early_stopping=False)).fit(Xtr, ytr)
    assert np.abs(plain.coef_ - clf.coef_).max() > 1e-3


def test_regressor_early_stopping(regression):
    Xtr, Xte, ytr, yte = regression
    reg = AsyncSGDRegressor(early_stopping=True, max_iter=1000, random_state=0,
                            n_jobs=2).fit(Xtr, ytr)
    assert reg.n_iter_ < 1000
    assert len(reg.loss_curve_) == reg.n_iter_
    assert reg.score(Xte, yte) > 0.9


def test_early_stopping_equals_sklearn_with_shuffle_off(regression):
    """With shuffle=False the training rows are visited in data order, the
    validation rows skipped, as SGDRegressor does; t_ counts them too."""
    from sklearn.linear_model import SGDRegressor
    Xtr, _, ytr, _ = regression
    params = dict(shuffle=False, early_stopping=True, random_state=0,
                  learning_rate="invscaling", eta0=0.01, max_iter=30, n_iter_no_change=3)
    ours = AsyncSGDRegressor(n_jobs=1, **params).fit(Xtr, ytr / ytr.std())
    ref = SGDRegressor(**params).fit(Xtr, ytr / ytr.std())
    assert ours.n_iter_ == ref.n_iter_ < 30 and ours.t_ == ref.t_
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)


def test_early_stopping_with_partial_fit_raises(binary):
    Xtr, _, ytr, _ = binary
    with pytest.raises(ValueError, match="early_stopping"):
        AsyncSGDClassifier(early_stopping=True).partial_fit(Xtr, ytr, classes=[0, 1])
    with pytest.raises(ValueError, match="early_stopping"):
        AsyncSGDRegressor(early_stopping=True).partial_fit(Xtr, ytr.astype(float))


def test_tol_stops_before_max_iter(digits):
    Xtr, _, ytr, _ = digits
    clf = AsyncSGDClassifier(random_state=0, max_iter=1000, tol=1e-3).fit(Xtr, ytr)
    assert clf.n_iter_ < 1000
    clf = AsyncSGDClassifier(random_state=0, max_iter=6, tol=None).fit(Xtr, ytr)
    assert clf.n_iter_ == 6


@pytest.mark.parametrize("Est,Ref", [(AsyncSGDClassifier, SGDClassifier),
                                     (AsyncSGDRegressor, SGDRegressor)])
@pytest.mark.parametrize("max_iter", [1, 2])
def test_convergence_warning(binary, Est, Ref, max_iter):
    """As scikit-learn's: a fit that used every epoch with tol set warns,
    one epoch included."""
    Xtr, _, ytr, _ = binary
    for cls in (Est, Ref):
        with pytest.warns(ConvergenceWarning):
            cls(random_state=0, max_iter=max_iter, tol=1e-30).fit(Xtr, ytr)


# ------------------------------------------------------- fitted attributes ----

def _check_staleness(stats, n_updates=None):
    assert isinstance(stats, StalenessStats)
    hist = np.asarray(stats.histogram)
    assert hist.ndim == 1 and hist.size >= 1
    assert np.all(hist >= 0)
    assert hist.sum() == stats.n_measured
    assert np.isfinite(stats.mean) and stats.mean >= 0
    assert isinstance(stats.max, (int, np.integer)) and stats.max >= 0
    assert stats.max >= hist.size - 1 or hist.size == 1
    if n_updates is not None:
        assert 0 < stats.n_measured <= n_updates


def _check_mostly_decreasing(curve):
    """SGD's per-epoch loss is noisy, but it falls overall: the last epoch
    is below the first, and the last third below the first third."""
    third = max(1, curve.size // 3)
    assert curve[-1] < curve[0], curve
    assert curve[-third:].mean() < curve[:third].mean(), curve
    assert curve.min() < 0.5 * curve[0], curve


@pytest.mark.parametrize("problem", ["binary", "multiclass", "sparse"])
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_classifier_fitted_attributes(problem, n_jobs, binary, digits):
    if problem == "sparse":
        X, y = _sparse_classification(n_classes=3)
    else:
        X, _, y, _ = binary if problem == "binary" else digits
    clf = AsyncSGDClassifier(n_jobs=n_jobs, random_state=0, max_iter=50).fit(X, y)
    classes = np.unique(y)
    assert_array_equal(clf.classes_, classes)
    n_models = 1 if classes.size == 2 else classes.size
    assert clf.coef_.shape == (n_models, X.shape[1])
    assert clf.intercept_.shape == (n_models,)
    assert clf.n_features_in_ == X.shape[1]
    assert isinstance(clf.n_iter_, (int, np.integer)) and 1 <= clf.n_iter_ <= 50
    # every row is one update per epoch (+1, scikit-learn's convention);
    # with several one-vs-rest models, the longest one counts
    assert clf.t_ <= clf.n_iter_ * X.shape[0] + 1
    if n_models == 1:
        assert clf.t_ == clf.n_iter_ * X.shape[0] + 1
    _check_staleness(clf.staleness_, n_models * clf.n_iter_ * X.shape[0])
    if n_jobs == 1:
        assert clf.staleness_.max == 0 and clf.staleness_.mean == 0
        assert_array_equal(clf.staleness_.histogram, [clf.staleness_.n_measured])
    curve = np.asarray(clf.loss_curve_)
    assert curve.shape == (clf.n_iter_,)
    assert np.all(np.isfinite(curve)) and np.all(curve >= 0)
    if clf.n_iter_ >= 3:
        _check_mostly_decreasing(curve)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_regressor_fitted_attributes(n_jobs, regression):
    Xtr, _, ytr, _ = regression
    reg = AsyncSGDRegressor(n_jobs=n_jobs, random_state=0, max_iter=50).fit(Xtr, ytr)
    assert reg.n_features_in_ == Xtr.shape[1]
    assert 1 <= reg.n_iter_ <= 50
    assert reg.t_ == reg.n_iter_ * Xtr.shape[0] + 1
    assert not hasattr(reg, "classes_")
    _check_staleness(reg.staleness_, reg.n_iter_ * Xtr.shape[0])
    curve = np.asarray(reg.loss_curve_)
    assert curve.shape == (reg.n_iter_,)
    assert np.all(np.isfinite(curve))
    _check_mostly_decreasing(curve)


def test_unfitted_raises():
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError):
        AsyncSGDClassifier().predict(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        AsyncSGDRegressor().predict(np.zeros((2, 3)))


@pytest.mark.parametrize("Est, Ref, loss", [
    (AsyncSGDClassifier, SGDClassifier, "hinge"),
    (AsyncSGDRegressor, SGDRegressor, "epsilon_insensitive")])
def test_pa1_clock_goes_on_across_partial_fit_calls(Est, Ref, loss):
    """PA-I counts every row (its zero rows too): t_ grows by n_samples a
    call, as scikit-learn's, so a later schedule goes on from there."""
    rng = np.random.RandomState(0)
    X = rng.standard_normal((50, 4))
    y = (X[:, 0] > 0).astype(int) if Est is AsyncSGDClassifier else X @ np.ones(4)
    ours = Est(learning_rate="pa1", loss=loss, random_state=0, shuffle=False)
    ref = Ref(learning_rate="pa1", loss=loss, random_state=0, shuffle=False)
    kw = {"classes": [0, 1]} if Est is AsyncSGDClassifier else {}
    for _ in range(3):
        ours.partial_fit(X, y, **kw)
        ref.partial_fit(X, y, **kw)
    assert ours.t_ == ref.t_ == 3 * 50 + 1
