"""No memory leak across many fits: 1,100 small fits (dense and CSR rows;
the threads engine with n_jobs=2 and the simulated engine; with and without
momentum) in one subprocess keep its resident memory flat. RSS is read
from /proc/self/status after a warm-up of 100 fits and again after 1,000
more; the growth must stay within a few MB. (A leak of one engine buffer
per epoch, e.g. the 2 x 257 staleness counters, would add ~20 MB.)"""
import json
import os
import subprocess
import sys

import pytest

from child import CHILD_CWD

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="needs Linux /proc")

MAX_GROWTH_MB = 4.0

CHILD = r"""
import gc, json, sys, warnings
import numpy as np
import scipy.sparse as sp
from pyasync import AsyncSGDClassifier, AsyncSGDRegressor

warnings.simplefilter("ignore")
n_warm, n_fits = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.RandomState(0)
X = rng.standard_normal((200, 40))
y = (X[:, 0] > 0).astype(np.int64)
Xs = sp.random(200, 400, density=0.05, format="csr", random_state=rng)
ys = (Xs @ rng.standard_normal(400) > 0).astype(np.int64)
CASES = []
for data in [(X, y), (Xs, ys)]:
    for engine in [dict(n_jobs=2), dict(asynchrony="simulated", n_workers=4)]:
        for momentum in [0.0, 0.5]:
            CASES.append((data, engine, momentum))


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def fits(count, start):
    for i in range(start, start + count):
        (A, b), engine, momentum = CASES[i % len(CASES)]
        Est = AsyncSGDClassifier if i % 3 else AsyncSGDRegressor
        est = Est(max_iter=3, tol=None, momentum=momentum, random_state=i,
                  learning_rate="constant", eta0=0.01, **engine).fit(A, b)
        est.predict(A)
        if i % 7 == 0:  # some failing fits too: the error paths must not leak
            try:
                Est(max_iter=2, eta0=1e30, learning_rate="constant",
                    random_state=i, **engine).fit(A * 1e150, b)
            except ValueError:
                pass
    gc.collect()


fits(n_warm, 0)
before = rss_kb()
fits(n_fits, n_warm)
after = rss_kb()
print("RESULT " + json.dumps({"before_kb": before, "after_kb": after}))
"""


def test_rss_flat_over_many_fits():
    out = subprocess.run([sys.executable, "-c", CHILD, "100", "1000"],
                         capture_output=True, text=True, timeout=600,
                         cwd=CHILD_CWD)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    growth_mb = (res["after_kb"] - res["before_kb"]) / 1024
    assert growth_mb < MAX_GROWTH_MB, (
        f"RSS grew {growth_mb:.1f} MB over 1000 fits "
        f"({res['before_kb']} kB -> {res['after_kb']} kB)")
