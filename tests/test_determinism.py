"""Determinism where it is promised: one thread (n_jobs=1) and the
simulated engine give bit-identical fits run after run, after pickling and
unpickling, on refitting an unpickled estimator, when continuing with
partial_fit, and in a fresh interpreter (another process, another hash
seed). (Two fits in one process are compared in test_estimator_api.py and
test_simulated.py; this adds the regressor, partial_fit after unpickling
and other processes.) Several threads promise none of this."""
import hashlib
import json
import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone

from pyasync import AsyncSGDClassifier, AsyncSGDRegressor

from child import CHILD_CWD

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

ENGINES = {
    "one-thread": dict(n_jobs=1),
    "simulated": dict(asynchrony="simulated", n_workers=4),
    "simulated-replay": dict(asynchrony="simulated", staleness=[2, 0, 3, 1]),
}


def data(kind, fmt, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((150, 8))
    X[rng.rand(150, 8) < 0.5] = 0.0
    score = X @ rng.standard_normal(8)
    y = score if kind == "reg" else np.digitize(score, [-0.5, 0.5])
    return (sp.csr_matrix(X) if fmt == "csr" else X), y


def make(kind, engine, **kw):
    params = dict(max_iter=4, tol=None, random_state=3, momentum=0.4,
                  learning_rate="constant", eta0=0.01, penalty="elasticnet",
                  **ENGINES[engine])
    params.update(kw)
    return (AsyncSGDRegressor if kind == "reg" else AsyncSGDClassifier)(**params)


def assert_same(a, b):
    assert np.array_equal(a.coef_, b.coef_)
    assert np.array_equal(a.intercept_, b.intercept_)
    assert a.t_ == b.t_


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_bit_identical_through_pickle_refit_and_partial_fit(kind, engine, fmt):
    X, y = data(kind, fmt)
    a = make(kind, engine).fit(X, y)
    assert_same(make(kind, engine).fit(X, y), a)
    blob = pickle.dumps(a)
    back = pickle.loads(blob)
    assert_same(back, a)
    assert np.array_equal(back.predict(X), a.predict(X))
    assert_same(clone(back).fit(X, y), a)
    # continuing: the same epoch on the original and on an unpickled copy
    X2, y2 = data(kind, fmt, seed=1)
    twin = pickle.loads(blob)
    a.partial_fit(X2, y2)
    twin.partial_fit(X2, y2)
    assert_same(twin, a)
    # refitting the unpickled estimator itself starts over: the first fit
    assert_same(pickle.loads(blob).fit(X, y), pickle.loads(blob))


@pytest.mark.parametrize("fmt", ["dense", "csr"])
@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("kind", ["clf", "reg"])
def test_averaged_bit_identical_through_pickle_and_partial_fit(kind, engine, fmt):
    """Averaged SGD too: the mean, the last iterate and the sums a
    partial_fit goes on from survive pickling bit for bit."""
    X, y = data(kind, fmt)
    kw = dict(average=50, momentum=0.4)
    a = make(kind, engine, **kw).fit(X, y)
    assert_same(make(kind, engine, **kw).fit(X, y), a)
    twin = pickle.loads(pickle.dumps(a))
    assert_same(twin, a)
    X2, y2 = data(kind, fmt, seed=1)
    a.partial_fit(X2, y2)
    twin.partial_fit(X2, y2)
    assert_same(twin, a)
    assert np.array_equal(twin._standard_coef, a._standard_coef)


CHILD = r"""
import hashlib, json, sys, warnings
sys.path.insert(0, sys.argv[1])
import test_determinism as t
warnings.simplefilter("ignore")
out = {}
for kind in ("clf", "reg"):
    for engine in sorted(t.ENGINES):
        for fmt in ("dense", "csr"):
            X, y = t.data(kind, fmt)
            est = t.make(kind, engine).fit(X, y)
            h = hashlib.sha256(est.coef_.tobytes() + est.intercept_.tobytes())
            out[f"{kind}/{engine}/{fmt}"] = h.hexdigest()
print(json.dumps(out))
"""


def test_bit_identical_across_processes():
    here = os.path.dirname(os.path.abspath(__file__))
    runs = []
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", CHILD, here], env=env, cwd=CHILD_CWD,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert runs[0] == runs[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, digest in runs[0].items():
            kind, engine, fmt = key.split("/")
            est = make(kind, engine).fit(*data(kind, fmt))
            h = hashlib.sha256(est.coef_.tobytes() + est.intercept_.tobytes())
            assert h.hexdigest() == digest, key
