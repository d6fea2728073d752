"""The C core, driven sequentially (n_jobs=1) through the estimators, against
the numba reference of tests/reference.py, and both against scikit-learn.

Agreement is asserted to 1e-10 (TOL) everywhere: max abs difference on
coef and intercept, relative to max(1, the largest reference value). The
reference is eager (every coordinate updated on every row), so this also
holds the core's O(nnz) handling of CSR rows (the L2 decay scale, the lazy
momentum catch-up of untouched coordinates) to the eager update.

Hyper-parameters are chosen so that no fit diverges: a diverging fit
amplifies rounding differences (e.g. the order of a SIMD dot product), and
then no agreement to 1e-10 is due."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.utils import check_random_state

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor, _core, _sgd

from reference import LOSS_IDS, SCHEDULE_IDS, ref_dloss, ref_eta, reference_sgd

CLF_LOSSES = ("hinge", "log_loss", "modified_huber", "squared_hinge",
              "perceptron")
REG_LOSSES = ("squared_error", "huber", "epsilon_insensitive",
              "squared_epsilon_insensitive")
ALL_LOSSES = CLF_LOSSES + REG_LOSSES
PENALTIES = ("l2", "l1", "elasticnet", None)
SCHEDULES = ("constant", "optimal", "invscaling", "adaptive")
MOMENTA = (0.0, 0.5, -0.5)
# (estimator kind, loss): every loss on the classifier (targets -1/+1), the
# regression losses on the regressor too (real targets)
EST_LOSSES = ([("clf", loss) for loss in ALL_LOSSES]
              + [("reg", loss) for loss in REG_LOSSES])

TOL = 1e-10

N, M, EPOCHS = 60, 12, 3
X_SCALE = 0.3
EPSILON = 0.1
OPTIMAL_ALPHA_CURVED = 0.2
L1_RATIO = 0.3


# ---------------------------------------------------------------- helpers

def loss_param(loss, epsilon=EPSILON):
    return {"hinge": 1.0, "squared_hinge": 1.0, "perceptron": 0.0,
            "modified_huber": 0.0, "log_loss": epsilon}.get(loss, epsilon)


def strengths(penalty, alpha, l1_ratio=L1_RATIO):
    """(l2, l1) as scikit-learn splits alpha."""
    return {"l2": (alpha, 0.0), "l1": (0.0, alpha),
            "elasticnet": ((1 - l1_ratio) * alpha, l1_ratio * alpha),
            None: (0.0, 0.0)}[penalty]


def optimal_init(loss, alpha):
    typw = np.sqrt(1.0 / np.sqrt(alpha))
    eta0 = typw / max(1.0, ref_dloss(LOSS_IDS[loss], loss_param(loss), 1.0, -typw))
    return 1.0 / (eta0 * alpha)


# losses whose gradient grows with the prediction: with the "optimal" rate
# (about 1/sqrt(sqrt(alpha)) at first) the intercept's step must stay stable
CURVED = ("squared_hinge", "squared_error", "squared_epsilon_insensitive",
          "modified_huber", "huber")


def hyper(schedule, loss):
    """Hyper-parameters, such that no fit diverges (a diverging fit amplifies
    rounding: no agreement to 1e-10 is due) nor has all its weights cut to 0
    by L1 (a weak test)."""
    h = {"epsilon": 1.0 if loss == "huber" else EPSILON}
    if schedule == "optimal":
        h.update(alpha=OPTIMAL_ALPHA_CURVED if loss in CURVED else 0.01,
                 eta0=0.01, power_t=0.5)
    elif schedule == "invscaling":
        h.update(alpha=0.001, eta0=0.5, power_t=0.4)
    else:
        h.update(alpha=0.001, eta0=0.2, power_t=0.5)
    return h


def make_data(sparse, dtype, kind, seed=0, n=N, m=M, n_classes=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, m)) * X_SCALE
    if sparse:
        X[rng.random((n, m)) < 0.6] = 0.0
        X[3] = 0.0  # an empty row
        X[7, 2] = 0.0
    w_true = rng.normal(size=m)
    score = X @ w_true + 0.05 * rng.normal(size=n)
    if kind == "reg":
        y = 2.0 * score / X_SCALE + 0.3
    elif n_classes == 2:
        y = (score > 0).astype(np.int64)
    else:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    X = X.astype(dtype)
    if sparse:
        X = sp.csr_matrix(X)
        # an explicitly stored zero: stays a touched coordinate for L1
        X.data[1] = 0.0
    sw = rng.uniform(0.3, 2.0, size=n)
    return X, y, sw


def estimator(kind, loss, penalty, schedule, momentum, fit_intercept, **kw):
    h = hyper(schedule, loss)
    cls = AsyncSGDClassifier if kind == "clf" else AsyncSGDRegressor
    params = dict(loss=loss, penalty=penalty, l1_ratio=L1_RATIO,
                  learning_rate=schedule, momentum=momentum,
                  fit_intercept=fit_intercept, tol=None,
                  shuffle=False, max_iter=EPOCHS, n_jobs=1, **h)
    params.update(kw)
    return cls(**params)


def reference_for(est, X, y_target, sw, orders, **kw):
    """The reference run with the estimator's hyper-parameters, computed
    independently of pyasync's own parameter mapping."""
    l2, l1 = strengths(est.penalty, est.alpha, est.l1_ratio)
    return reference_sgd(
        X, y_target, orders=orders, loss=est.loss, loss_param=loss_param(est.loss, est.epsilon),
        l2=l2, l1=l1, learning_rate=est.learning_rate, eta0=est.eta0,
        alpha=est.alpha,
        optimal_init=(optimal_init(est.loss, est.alpha)
                      if est.learning_rate == "optimal" else 0.0),
        power_t=est.power_t, momentum=est.momentum,
        fit_intercept=est.fit_intercept, sample_weight=sw, **kw)


def rel_err(got_w, got_b, ref_w, ref_b):
    scale = max(1.0, float(np.max(np.abs(ref_w))), abs(float(ref_b)))
    err = max(float(np.max(np.abs(np.asarray(got_w) - ref_w))),
              abs(float(got_b) - float(ref_b)))
    return err / scale


def model_err(got_w, got_b, ref_w, ref_b):
    """rel_err of a fitted model against a float64 one; a float32 model (fit
    on float32 X) is the float64 fit rounded, so it passes (0) within one
    float32 step of the reference's values, each, and fails (inf) beyond."""
    if np.asarray(got_w).dtype != np.float32:
        return rel_err(got_w, got_b, ref_w, ref_b)
    ref = np.append(np.asarray(ref_w, dtype=np.float32), np.float32(ref_b))
    gaps = np.abs(np.append(got_w, got_b).astype(np.float64) - ref.astype(np.float64))
    return 0.0 if np.all(gaps <= np.spacing(np.abs(ref))) else np.inf


def check_core(got_w, got_b, est, X, y_target, sw, orders, **kw):
    """Failures (list of strings) of the core's (got_w, got_b) against the
    eager reference, to TOL; and the reference's result."""
    ref = reference_for(est, X, y_target, sw, orders, **kw)
    assert np.all(np.isfinite(ref["coef"])) and np.isfinite(ref["intercept"])
    err = model_err(got_w, got_b, ref["coef"], ref["intercept"])
    out = [] if err <= TOL else [f"eager reference: rel err {err:.3g} > {TOL}"]
    return out, ref


def binary_target(est, y):
    if isinstance(est, AsyncSGDRegressor):
        return np.asarray(y, dtype=np.float64)
    return np.where(y == est.classes_[1], 1.0, -1.0)


def shuffled_orders(n, seed, epochs):
    """Each epoch's order: the same seed reshuffles the last, as
    scikit-learn's SGD does."""
    order = np.arange(n, dtype=np.int64)
    out = []
    for _ in range(epochs):
        _core.shuffle_order(order, seed)
        out.append(order.copy())
    return np.array(out)


def sklearn_shuffle_seeds(random_state, n_problems, regressor=False):
    """The shuffle seed of each binary problem as SGDClassifier draws it
    from an int random_state: after make_dataset's draw, or one-vs-rest
    from each class's own seed; SGDRegressor's, its first draw."""
    big = np.iinfo(np.int32).max
    rs = check_random_state(random_state)
    if regressor:
        return [rs.randint(0, big)]
    if n_problems == 1:
        rs.randint(1, big)
        return [rs.randint(big)]
    seeds = []
    for class_seed in rs.randint(big, size=n_problems):
        per_class = np.random.RandomState(class_seed)
        per_class.randint(1, big)
        seeds.append(per_class.randint(big))
    return seeds


# ---------------------------------------------------- the pieces of the math

@pytest.mark.parametrize("loss", ALL_LOSSES)
def test_dloss_matches_core(loss):
    param = loss_param(loss)
    ps = np.concatenate([np.linspace(-30, 30, 241), [-1.1, -1, -0.9, 0.0, 0.9, 1, 1.1,
                                                      18.0, -18.0, 0.1, -0.1]])
    for y in (-1.0, 1.0, 0.3, -2.5):
        for p in ps:
            got = _core.loss_dloss(loss, param, y, p)
            ref = ref_dloss(LOSS_IDS[loss], param, y, p)
            assert got == pytest.approx(ref, rel=1e-14, abs=1e-300), (loss, y, p)


@pytest.mark.parametrize("loss", ALL_LOSSES)
@pytest.mark.parametrize("alpha", (1e-4, 1e-2, 0.3))
def test_optimal_init_matches(loss, alpha):
    assert _sgd.optimal_init(loss, loss_param(loss), alpha) == \
        pytest.approx(optimal_init(loss, alpha), rel=1e-14)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_eta_matches_core(schedule):
    h = hyper(schedule, "hinge")
    oi = optimal_init("hinge", h["alpha"])
    params = {"loss": "hinge", "loss_param": 1.0, "alpha": h["alpha"], "l2": 0.0,
              "l1": 0.0, "learning_rate": schedule, "eta0": h["eta0"],
              "power_t": h["power_t"], "optimal_init": oi, "momentum": 0.0,
              "fit_intercept": True, "intercept_decay": 1.0}
    for t in (1, 2, 3, 10, 61, 1000, 123457):
        got = _core.eta(params, h["eta0"], t)
        ref = ref_eta(SCHEDULE_IDS[schedule], h["eta0"], h["alpha"], oi, h["power_t"], t)
        assert got == pytest.approx(ref, rel=1e-15), (schedule, t)


@pytest.mark.parametrize("penalty", PENALTIES)
def test_penalty_strengths_match(penalty):
    assert _sgd.penalty_strengths(penalty, 0.01, L1_RATIO) == \
        pytest.approx(strengths(penalty, 0.01))


def test_reference_hand_computed():
    """Two updates of the reference worked out by hand (hinge, l2, momentum)."""
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([1.0, -1.0])
    mu, eta, l2 = 0.5, 0.1, 0.2
    r = reference_sgd(X, y, orders=[[0, 1]], loss="hinge", loss_param=1.0, l2=l2,
                      learning_rate="constant", eta0=eta, momentum=mu)
    d = 1 - l2 * eta
    # update 1: p = 0 -> dloss = -1, upd = 0.1
    v = np.array([0.1, 0.0]); w = v.copy(); vb = 0.1; b = 0.1
    # update 2: p = w.x + b = 0 + 0.1 -> y p = -0.1 <= 1 -> dloss = +1, upd = -0.1
    upd = -0.1
    v = mu * v + upd * X[1]; w = d * w + v
    vb = mu * vb + upd; b += vb
    np.testing.assert_allclose(r["coef"], w, rtol=0, atol=1e-15)
    assert r["intercept"] == pytest.approx(b, abs=1e-15)
    assert r["t"] == 3


# ------------------------------------------------------ C core vs reference

def grid_orders(epochs=EPOCHS, n=N):
    return np.tile(np.arange(n), (epochs, 1))


@pytest.mark.parametrize("fit_intercept", (True, False))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("kind,loss", EST_LOSSES, ids=[f"{k}-{l}" for k, l in EST_LOSSES])
def test_core_matches_reference(kind, loss, penalty, schedule, momentum, sparse,
                                fit_intercept):
    """The grid: every loss, penalty, schedule, momentum, dense/CSR, with and
    without intercept; inside, float64/float32 X, with and without sample
    weights. shuffle=False: the rows in order 0..n-1 each epoch."""
    failures = []
    for dtype in (np.float64, np.float32):
        X, y, sw_all = make_data(sparse, dtype, kind)
        for sw in (None, sw_all):
            est = estimator(kind, loss, penalty, schedule, momentum, fit_intercept)
            est.fit(X, y, sample_weight=sw)
            fails, ref = check_core(est.coef_.ravel(), est.intercept_[0], est, X,
                                    binary_target(est, y), sw, grid_orders())
            failures += [(np.dtype(dtype).name, sw is not None, f) for f in fails]
            assert est.t_ == ref["t"]
            if not fit_intercept:
                assert est.intercept_[0] == 0.0
    assert not failures, failures


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("schedule", ("constant", "optimal", "invscaling"))
@pytest.mark.parametrize("kind,loss,penalty", [
    ("clf", "hinge", "elasticnet"), ("clf", "log_loss", "l2"),
    ("clf", "modified_huber", "l1"), ("reg", "squared_error", "elasticnet"),
    ("reg", "huber", None)])
def test_core_matches_reference_shuffled(kind, loss, penalty, schedule, momentum,
                                         sparse):
    """shuffle=True: the order of each epoch is reproduced from the seed the
    estimator draws, and fed to the reference."""
    X, y, sw = make_data(sparse, np.float64, kind, seed=1)
    est = estimator(kind, loss, penalty, schedule, momentum, True, shuffle=True,
                    random_state=42, max_iter=4)
    est.fit(X, y, sample_weight=sw)
    seed, = sklearn_shuffle_seeds(42, 1, regressor=kind == "reg")
    orders = shuffled_orders(N, seed, 4)
    assert not np.array_equal(orders[0], orders[1])
    coef, b = est.coef_.ravel(), est.intercept_[0]
    fails, _ = check_core(coef, b, est, X, binary_target(est, y), sw, orders)
    assert not fails, fails
    # the same fit with the rows in their original order differs: the order
    # matters, so the agreement above is not an accident
    ref0 = reference_for(est, X, binary_target(est, y), sw, grid_orders(4))
    assert rel_err(coef, b, ref0["coef"], ref0["intercept"]) > 1e-6


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("momentum", (0.0, 0.5))
def test_core_matches_reference_multiclass_shuffled(sparse, momentum):
    """One-vs-rest: one seed drawn per binary problem, in class order."""
    X, y, sw = make_data(sparse, np.float64, "clf", seed=2, n_classes=3)
    est = estimator("clf", "hinge", "elasticnet", "optimal", momentum, True,
                    shuffle=True, random_state=7)
    est.fit(X, y, sample_weight=sw)
    assert est.coef_.shape == (3, M)
    for k, (cls, seed) in enumerate(zip(est.classes_, sklearn_shuffle_seeds(7, 3))):
        fails, _ = check_core(est.coef_[k], est.intercept_[k], est, X,
                              np.where(y == cls, 1.0, -1.0), sw,
                              shuffled_orders(N, seed, EPOCHS))
        assert not fails, (k, fails)


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("kind,loss", [("clf", "squared_hinge"), ("reg", "squared_error")])
def test_partial_fit_continues_reference(kind, loss, sparse, momentum):
    """partial_fit calls continue t, the weights and the velocity; the L1
    accumulators (u, q) restart with each call, as scikit-learn's."""
    X, y, sw = make_data(sparse, np.float64, kind, seed=3)
    est = estimator(kind, loss, "elasticnet", "invscaling", momentum, True)
    state = {"coef": None, "intercept": 0.0, "velocity": None,
             "intercept_velocity": 0.0, "t_start": 1}
    for call in range(3):
        if kind == "clf":
            est.partial_fit(X, y, classes=np.unique(y), sample_weight=sw)
        else:
            est.partial_fit(X, y, sample_weight=sw)
        # continue from the core's own state: each call is checked on its own
        fails, ref = check_core(est.coef_.ravel(), est.intercept_[0], est, X,
                                binary_target(est, y), sw, [np.arange(N)], **state)
        assert not fails, (call, fails)
        assert est.t_ == ref["t"]
        vel = est._velocity
        state = {"coef": est.coef_.ravel().copy(), "intercept": est.intercept_[0],
                 "velocity": None if momentum == 0 else np.ravel(vel[0]).copy(),
                 "intercept_velocity": 0.0 if momentum == 0 else float(np.ravel(vel[1])[0]),
                 "t_start": ref["t"]}


@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
def test_coef_init_matches_reference(sparse):
    X, y, sw = make_data(sparse, np.float32, "reg", seed=4)
    rng = np.random.default_rng(5)
    coef0, b0 = rng.normal(size=M), 0.7
    est = estimator("reg", "huber", "l1", "optimal", 0.5, True)
    est.fit(X, y, coef_init=coef0, intercept_init=b0, sample_weight=sw)
    fails, _ = check_core(est.coef_, est.intercept_[0], est, X, y, sw, grid_orders(),
                          coef=coef0, intercept=b0)
    assert not fails, fails


def with_duplicates(X, seed=0):
    """The same matrix as a non-canonical CSR: some entries split in two
    stored entries with the same index, and each row's indices reversed."""
    rng = np.random.default_rng(seed)
    X = sp.csr_matrix(X)
    data, indices, indptr = [], [], [0]
    for i in range(X.shape[0]):
        lo, hi = X.indptr[i], X.indptr[i + 1]
        row_d, row_i = [], []
        for k in range(lo, hi):
            x = X.data[k]
            if rng.random() < 0.5:
                a = X.dtype.type(x * 0.25)
                row_d += [a, x - a]
                row_i += [X.indices[k]] * 2
            else:
                row_d.append(x)
                row_i.append(X.indices[k])
        data += row_d[::-1]
        indices += row_i[::-1]
        indptr.append(len(data))
    Xd = sp.csr_matrix((np.array(data, dtype=X.dtype), np.array(indices, dtype=np.int32),
                        np.array(indptr)), shape=X.shape)
    assert not Xd.has_canonical_format
    return Xd


@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("schedule", ("constant", "invscaling"))
@pytest.mark.parametrize("penalty", PENALTIES)
def test_duplicate_indices_csr(penalty, schedule, momentum, dtype):
    """A CSR row may store one index several times (scipy allows it; the
    estimators take it as is): the row's value there is the sum, so the fit
    is that of the canonical matrix, as the eager reference computes it."""
    X, y, sw = make_data(True, dtype, "reg", seed=8)
    Xd = with_duplicates(X)
    est = estimator("reg", "squared_error", penalty, schedule, momentum, True)
    est.fit(Xd, y, sample_weight=sw)
    fails, _ = check_core(est.coef_.ravel(), est.intercept_[0], est, Xd, y, sw,
                          grid_orders())
    assert not fails, fails


@pytest.mark.parametrize("update", ("racy", "atomic", "locked"))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("momentum", MOMENTA)
def test_update_modes_one_worker(update, sparse, momentum):
    """With one worker every write mode is the sequential update."""
    X, y, sw = make_data(sparse, np.float32, "clf", seed=9)
    est = estimator("clf", "modified_huber", "elasticnet", "constant", momentum, True,
                    update=update)
    est.fit(X, y, sample_weight=sw)
    fails, _ = check_core(est.coef_.ravel(), est.intercept_[0], est, X,
                          binary_target(est, y), sw, grid_orders())
    assert not fails, fails


# ---------------------------------------------------------- vs scikit-learn

@pytest.mark.parametrize("fit_intercept", (True, False))
@pytest.mark.parametrize("sparse", (False, True), ids=("dense", "csr"))
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("kind,loss", EST_LOSSES, ids=[f"{k}-{l}" for k, l in EST_LOSSES])
def test_matches_sklearn(kind, loss, penalty, schedule, sparse, fit_intercept):
    """momentum=0, shuffle=False, tol=None: pyasync's estimator, the reference
    and scikit-learn's SGD agree. scikit-learn is fit on float64 X (the same
    values as the float32 X pyasync reads, since float32 -> float64 is exact)."""
    failures = []
    for dtype in (np.float64, np.float32):
        X, y, sw_all = make_data(sparse, dtype, kind)
        X64 = X.astype(np.float64)
        for sw in (None, sw_all):
            est = estimator(kind, loss, penalty, schedule, 0.0, fit_intercept)
            est.fit(X, y, sample_weight=sw)
            sk_cls = SGDClassifier if kind == "clf" else SGDRegressor
            sk = sk_cls(loss=loss, penalty=penalty, l1_ratio=L1_RATIO,
                        learning_rate=schedule, fit_intercept=fit_intercept,
                        tol=None, shuffle=False, max_iter=EPOCHS,
                        **hyper(schedule, loss))
            sk.fit(X64, y, sample_weight=sw)
            ref = reference_for(est, X, binary_target(est, y), sw, grid_orders())
            e_core = model_err(est.coef_.ravel(), est.intercept_[0],
                               sk.coef_.ravel(), sk.intercept_[0])
            e_ref = rel_err(ref["coef"], ref["intercept"], sk.coef_.ravel(),
                            sk.intercept_[0])
            if not (e_core <= TOL and e_ref <= TOL):
                failures.append((np.dtype(dtype).name, sw is not None, e_core, e_ref))
            assert est.t_ == sk.t_
    assert not failures, f"(dtype, sample_weight, core err, ref err) over {TOL}: {failures}"
