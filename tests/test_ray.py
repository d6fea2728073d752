"""asynchrony="ray" on a local Ray with 2 workers: accuracy against the
threads engine, the measured staleness, momentum at the server, a worker
killed mid-fit, teardown, and the error without Ray."""
import builtins
import os
import sys
import threading
import time
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from pyasync import AsyncMLPClassifier, AsyncSGDClassifier, AsyncSGDRegressor
from pyasync.datasets import make_rcv1_like

from child import CHILD_CWD

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_missing_ray_error_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    for est in (AsyncSGDClassifier(asynchrony="ray"), AsyncMLPClassifier(asynchrony="ray")):
        with pytest.raises(ImportError, match=r'pip install .*\[ray\]'):
            est.fit(X, y)


@pytest.mark.parametrize("bad, message", [
    (dict(local_steps=0), "local_steps"), (dict(local_steps=1.5), "local_steps"),
    (dict(ray_address=3), "ray_address"), (dict(n_workers=0), "n_workers")])
def test_ray_parameters_checked(bad, message):
    pytest.importorskip("ray")
    X, y = np.random.default_rng(0).standard_normal((20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=message):
        AsyncSGDClassifier(asynchrony="ray", **bad).fit(X, y)


def test_unreachable_address_fails_at_once():
    """Ray retries an address nobody answers at for many minutes: the fit
    says so within seconds instead."""
    import socket
    from pyasync.distributed.ray_backend import check_reachable
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ConnectionError, match="no Ray head answers"):
            check_reachable(address, timeout=5.0)
    check_reachable("auto")  # Ray's to resolve


@pytest.mark.parametrize("answer", [None, b"HTTP/1.1 400 Bad Request\r\n\r\n"])
def test_an_open_port_that_is_not_a_ray_head_fails_at_once(answer):
    """A port that accepts connections but is not a Ray head's (a silent
    service, or an HTTP one such as the dashboard's) fails within the
    timeout, not after Ray's minutes of retries."""
    import socket
    import threading
    import time
    from pyasync.distributed.ray_backend import check_reachable
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def serve():
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            if answer is not None:
                conn.sendall(answer)
            time.sleep(3)
    threading.Thread(target=serve, daemon=True).start()
    with pytest.raises(ConnectionError, match="does not speak gRPC"):
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}", timeout=1.0)
    server.close()


# ---- the rest needs Ray ----

@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        # Ray puts the driver's working directory on its workers' sys.path:
        # start it outside the checkout, so they import the installed build
        here = os.getcwd()
        os.chdir(CHILD_CWD)
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        finally:
            os.chdir(here)
    yield ray
    if started:
        ray.shutdown()


def live_pyasync_actors(ray):
    """Names of the live actors fits create (named pyasync-<fit>-...)."""
    return [n for n in ray.util.list_named_actors() if n.startswith("pyasync-")]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0,
                                              stratify=y)
    sc = StandardScaler().fit(X_tr)
    return sc.transform(X_tr), sc.transform(X_te), y_tr, y_te


def test_a_ray_head_passes_the_reachability_check(ray):
    """The check lets a real Ray head's GCS address through."""
    from pyasync.distributed.ray_backend import check_reachable
    check_reachable(ray.get_runtime_context().gcs_address, timeout=5.0)


def test_accuracy_within_a_point_of_threads(ray, digits):
    """Mean test accuracy over two seeds (both engines are
    nondeterministic) on 10-class digits."""
    X_tr, X_te, y_tr, y_te = digits
    common = dict(loss="log_loss", alpha=1e-4, max_iter=15, tol=None)
    threads, on_ray = [], []
    for seed in range(2):
        threads.append(AsyncSGDClassifier(n_jobs=2, random_state=seed, **common)
                       .fit(X_tr, y_tr).score(X_te, y_te))
        est = AsyncSGDClassifier(asynchrony="ray", n_workers=2, local_steps=64,
                                 random_state=seed, **common).fit(X_tr, y_tr)
        on_ray.append(est.score(X_te, y_te))
        st = est.staleness_
        assert st.n_measured > 0 and st.histogram.size >= 2  # pushes overtook others
        assert st.mean > 0 and 0.0 < est.implicit_momentum_ < 1.0
    assert np.mean(on_ray) >= np.mean(threads) - 0.01, (on_ray, threads)
    assert live_pyasync_actors(ray) == []  # torn down


def test_sparse_regression_and_momentum(ray):
    X, y = make_rcv1_like(3000, 2000, nnz_per_row=20, random_state=0)
    target = X @ np.random.default_rng(0).standard_normal(2000)
    # a step well inside stability: at eta0=0.05 stale pushes with momentum
    # 0.5 sat near its edge and the workers' timing moved the score from
    # 0.72 to 0.91; at 0.02 six runs agree to 1e-3
    common = dict(max_iter=20, tol=None, random_state=0, learning_rate="constant",
                  eta0=0.02, alpha=1e-6)
    base = AsyncSGDRegressor(n_jobs=1, **common).fit(X, target).score(X, target)
    for momentum in (0.0, 0.5, -0.3):
        est = AsyncSGDRegressor(asynchrony="ray", n_workers=2, local_steps=32,
                                momentum=momentum, **common).fit(X, target)
        assert np.all(np.isfinite(est.coef_))
        assert est.score(X, target) >= base - 0.05
        assert est.momentum_ == momentum


@pytest.mark.parametrize("schedule", ["constant", "optimal", "invscaling"])
def test_l2_decay_stays_out_of_the_velocity_as_in_the_other_engines(ray, schedule):
    """With momentum and an L2 penalty, local_steps=1 and one worker, the
    server's fit is the sequential one: the decay acts on the weights
    (w <- d w + v), not through the velocity, where momentum would have
    weakened the penalty's hold (a classifier at the "optimal" step was
    11.5 off on coefficients of ~41)."""
    X, y = make_classification(300, 6, random_state=0)
    common = dict(max_iter=3, tol=None, shuffle=False, learning_rate=schedule, eta0=0.01,
                  penalty="l2", alpha=1e-3, momentum=0.5, random_state=0)
    seq = AsyncSGDClassifier(n_jobs=1, **common).fit(X, y)
    est = AsyncSGDClassifier(asynchrony="ray", n_workers=1, local_steps=1, **common).fit(X, y)
    assert est.staleness_.max == 0
    np.testing.assert_allclose(est.coef_, seq.coef_, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, seq.intercept_, rtol=1e-9, atol=1e-10)


def test_single_push_per_update_is_the_papers_model(ray):
    """local_steps=1, one worker: no staleness, the sequential fit."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0])
    common = dict(max_iter=3, tol=None, shuffle=False, learning_rate="constant",
                  eta0=0.01, penalty=None, random_state=0)
    seq = AsyncSGDRegressor(n_jobs=1, momentum=0.5, **common).fit(X, y)
    est = AsyncSGDRegressor(asynchrony="ray", n_workers=1, local_steps=1, momentum=0.5,
                            **common).fit(X, y)
    assert est.staleness_.max == 0
    np.testing.assert_allclose(est.coef_, seq.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.intercept_, seq.intercept_, rtol=1e-10, atol=1e-12)
    # averaged SGD at the server: each push's model, from update `average` on
    for average in (True, 250):
        seq = AsyncSGDRegressor(n_jobs=1, momentum=0.5, average=average, **common).fit(X, y)
        est = AsyncSGDRegressor(asynchrony="ray", n_workers=1, local_steps=1, momentum=0.5,
                                average=average, **common).fit(X, y)
        np.testing.assert_allclose(est.coef_, seq.coef_, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(est.intercept_, seq.intercept_, rtol=1e-10, atol=1e-12)
        assert not np.allclose(est.coef_, est._standard_coef)
    # sparse rows with momentum too: the server averages its whole model, a
    # thread its lazy rows' gaps in closed form
    Xs = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0.0))
    seq = AsyncSGDRegressor(n_jobs=1, momentum=0.5, average=True, **common).fit(Xs, y)
    est = AsyncSGDRegressor(asynchrony="ray", n_workers=1, local_steps=1, momentum=0.5,
                            average=True, **common).fit(Xs, y)
    np.testing.assert_allclose(est.coef_, seq.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(est.intercept_, seq.intercept_, rtol=1e-10, atol=1e-12)


def test_mlp_on_ray(ray, digits):
    X_tr, X_te, y_tr, y_te = digits
    est = AsyncMLPClassifier(hidden_layer_sizes=(64,), learning_rate_init=0.05,
                             max_iter=20, asynchrony="ray", n_workers=2, random_state=0)
    est.fit(X_tr, y_tr)
    assert est.score(X_te, y_te) >= 0.9
    assert est.staleness_.n_measured > 0
    assert live_pyasync_actors(ray) == []


def test_mlp_sample_weight_reaches_the_ray_workers(ray, digits):
    """The shards carry their rows' weights: a class weighed 0 is never
    predicted."""
    X_tr, X_te, y_tr, y_te = digits
    est = AsyncMLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.05,
                             max_iter=10, asynchrony="ray", n_workers=2, random_state=0)
    est.fit(X_tr, y_tr, sample_weight=np.where(y_tr == 3, 0.0, 1.0))
    pred = est.predict(X_te)
    assert not np.any(pred == 3)
    assert np.mean(pred[y_te != 3] == y_te[y_te != 3]) >= 0.9


def test_mlp_auto_momentum_on_ray(ray, digits):
    """momentum="auto" on Ray chooses as the simulated engine does for as
    many exponential workers (nothing is measured before the first epoch),
    and the fit with it learns."""
    X_tr, X_te, y_tr, y_te = digits
    common = dict(hidden_layer_sizes=(32,), learning_rate_init=0.05, momentum="auto",
                  n_workers=2, random_state=0)
    est = AsyncMLPClassifier(asynchrony="ray", max_iter=10, **common).fit(X_tr, y_tr)
    simulated = AsyncMLPClassifier(asynchrony="simulated", max_iter=1, **common)
    assert est.momentum_ == simulated.fit(X_tr, y_tr).momentum_
    assert est.probe_updates_ == 0
    assert est.score(X_te, y_te) >= 0.9
    assert live_pyasync_actors(ray) == []


def test_killed_worker_the_fit_goes_on(ray, digits):
    X_tr, X_te, y_tr, y_te = digits
    X_big = np.tile(X_tr, (8, 1))
    y_big = np.tile(y_tr >= 5, 8)
    est = AsyncSGDClassifier(loss="log_loss", asynchrony="ray", n_workers=2,
                             local_steps=32, max_iter=20, tol=None, random_state=0)
    outcome = {}

    def fit():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                est.fit(X_big, y_big)
            except BaseException as exc:  # reported below
                outcome["error"] = exc
        outcome["warnings"] = [str(w.message) for w in caught
                               if not issubclass(w.category, ConvergenceWarning)]

    runner = threading.Thread(target=fit)
    runner.start()
    victim, deadline = None, time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and runner.is_alive():
        workers = sorted(n for n in live_pyasync_actors(ray) if "-worker-" in n)
        if len(workers) == 2:
            victim = workers[0]
        else:
            time.sleep(0.05)
    assert victim is not None, "the fit never started its workers"
    time.sleep(0.3)
    ray.kill(ray.get_actor(victim), no_restart=True)
    runner.join(timeout=300)
    assert not runner.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert any("died" in w for w in outcome["warnings"]), outcome["warnings"]
    assert np.all(np.isfinite(est.coef_))
    assert est.score(X_te, y_te >= 5) > 0.85
    assert live_pyasync_actors(ray) == []


def test_estimator_pickles_and_clones_after_a_ray_fit(ray, digits):
    import pickle
    X_tr, X_te, y_tr, _ = digits
    est = AsyncSGDClassifier(asynchrony="ray", n_workers=2, max_iter=3, tol=None,
                             random_state=0).fit(X_tr, y_tr >= 5)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X_te), est.predict(X_te))
    assert clone(est).get_params()["asynchrony"] == "ray"


def test_multiclass_fit_starts_the_actors_once(ray, digits, monkeypatch):
    from pyasync.distributed import ray_backend
    X_tr, X_te, y_tr, y_te = digits
    started = []
    init = ray_backend.RayBackend.__init__

    def counting(self, *args, **kwargs):
        started.append(1)
        init(self, *args, **kwargs)
    monkeypatch.setattr(ray_backend.RayBackend, "__init__", counting)
    keep = y_tr < 3
    est = AsyncSGDClassifier(asynchrony="ray", n_workers=2, max_iter=5, tol=None,
                             random_state=0).fit(X_tr[keep], y_tr[keep])
    assert len(started) == 1 and est.coef_.shape[0] == 3
    assert est.score(X_te[y_te < 3], y_te[y_te < 3]) > 0.9
    assert live_pyasync_actors(ray) == []


def test_multiclass_class_weights_reach_every_problem(ray):
    """One-vs-rest problem k weighs its own positives: the reused actors get
    each problem's row weights with its targets. One Ray worker, rows in
    order: the simulated engine's single worker, coefficient for
    coefficient."""
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 600)
    X = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])[y] + rng.randn(600, 2)
    common = dict(n_workers=1, class_weight={0: 50.0, 1: 1.0, 2: 2.0}, max_iter=3, tol=None,
                  shuffle=False, learning_rate="constant", eta0=0.01, random_state=0)
    on_ray = AsyncSGDClassifier(asynchrony="ray", **common).fit(X, y)
    simulated = AsyncSGDClassifier(asynchrony="simulated", **common).fit(X, y)
    np.testing.assert_allclose(on_ray.coef_, simulated.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(on_ray.intercept_, simulated.intercept_, rtol=1e-10, atol=1e-12)
