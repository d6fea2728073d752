"""Ctrl-C during a fit: SIGINT sent to a fit in progress (n_jobs=4 threads,
or the simulated engine) must raise KeyboardInterrupt from inside the
compiled epoch (its workers poll for signals, so Ctrl-C does not wait for
the epoch's end), with every worker thread joined, the estimator left as
it was (unfitted, or with its previous weights) and able to fit again.

Each case runs in a subprocess, so that a crash or a hang cannot take
pytest down with it."""
import os
import signal

import pytest

import child

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task") or not hasattr(signal, "SIGINT"),
    reason="needs Linux /proc and POSIX signals")

# The fit would run for minutes (max_iter is huge, tol=None); atomic
# updates with momentum and an L1 penalty (which keeps dense workers on the
# shared model, not private copies) make each threads epoch long (~0.5 s),
# so the signal lands inside the compiled epoch, not between epochs.
CHILD = r"""
import json, os, signal, sys, threading, time, traceback, warnings
import numpy as np
from pyasync import AsyncSGDClassifier

# a child of a shell's background job starts with SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)

warnings.simplefilter("ignore")
engine, prefit = sys.argv[1], sys.argv[2] == "1"
rng = np.random.default_rng(0)
X = rng.standard_normal((40000, 500), dtype=np.float32)
y = (X[:, :5].sum(axis=1) > 0).astype(np.int64)
small = (X[:2000], y[:2000])
if engine == "threads":
    kw = dict(n_jobs=4, update="atomic", penalty="l1")
else:
    X = X.astype(np.float64)
    kw = dict(asynchrony="simulated", n_workers=4)


def make(max_iter):
    return AsyncSGDClassifier(max_iter=max_iter, tol=None, momentum=0.5,
                              learning_rate="constant", eta0=1e-5,
                              random_state=0, **kw)


def tasks():
    return len(os.listdir("/proc/self/task"))


make(1).fit(*small)  # warm-up: imports, first threads started and joined
baseline = tasks()
est = make(2)
before = None
if prefit:
    est.fit(*small)
    before = (est.coef_.copy(), est.intercept_.copy())
est.set_params(max_iter=10**6)
out = {"baseline_tasks": baseline}
print("READY", flush=True)
try:
    est.fit(X, y)
    out["error"] = "the fit finished: it was never interrupted"
except KeyboardInterrupt as exc:
    out["frames"] = [f.name for f in traceback.extract_tb(exc.__traceback__)]
    deadline = time.monotonic() + 10.0
    while tasks() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)  # a joined thread's task may linger a moment
    out["tasks"] = tasks()
    out["python_threads"] = threading.active_count()
    if prefit:
        out["kept_previous"] = bool(
            np.array_equal(est.coef_, before[0])
            and np.array_equal(est.intercept_, before[1]))
    else:
        out["unfitted"] = not hasattr(est, "coef_")
    est.set_params(max_iter=3)
    est.fit(*small)
    out["refit_finite"] = bool(np.all(np.isfinite(est.coef_)))
    out["refit_score"] = float(est.score(*small))
    out["tasks_after_refit"] = tasks()
print("RESULT " + json.dumps(out), flush=True)
"""


def interrupt_mid_epoch(engine, prefit):
    res = child.interrupt_mid_epoch(CHILD, "linear_epoch", (engine, str(int(prefit))))
    assert "error" not in res, res["error"]
    return res


@pytest.mark.parametrize("prefit", [False, True], ids=["unfitted", "prefitted"])
@pytest.mark.parametrize("engine", ["threads", "simulated"])
def test_sigint_stops_fit_cleanly(engine, prefit):
    res = interrupt_mid_epoch(engine, prefit)
    assert res["python_threads"] == 1
    assert res["tasks"] == res["baseline_tasks"], "worker threads left running"
    if prefit:
        assert res["kept_previous"], "an interrupted refit changed the weights"
    else:
        assert res["unfitted"], "an interrupted first fit left a fitted estimator"
    assert res["refit_finite"]
    assert res["refit_score"] > 0.8
    assert res["tasks_after_refit"] == res["baseline_tasks"]
