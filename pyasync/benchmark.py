"""Timing helpers shared by the report, the profiler and the benchmark
scripts: per-epoch time with fixed costs cancelled, the memory floor, and
the machine it ran on."""
import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning


class Timing(NamedTuple):
    seconds: float  # median seconds per epoch
    spread: float   # max - min over the repeats
    estimator: object  # the last estimator fitted (1 + epochs epochs)


def fit_seconds(est, X, y, clock=time.perf_counter):
    """Seconds `est.fit(X, y)` takes by `clock`, convergence warnings off."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = clock()
        est.fit(X, y)
        return clock() - start


RETRIES = 4


def per_epoch_seconds(make, X, y, epochs=3, repeats=3):
    """Seconds per epoch of `make(n_epochs).fit(X, y)`:
    (fit of 1 + epochs - fit of 1) / epochs, so validation and set-up
    cancel; median and spread over `repeats`. A repeat where noise made
    the longer fit the faster is measured again (up to RETRIES times), and
    then counts the longer fit's time per epoch, set-up included: an upper
    bound, where a clamped difference gave ratios of 1e7."""
    samples, est = [], None
    for _ in range(repeats):
        for _ in range(RETRIES):
            t = []
            for n in (1, 1 + epochs):
                est = make(n)
                t.append(fit_seconds(est, X, y))
            if t[1] > t[0]:
                samples.append((t[1] - t[0]) / epochs)
                break
        else:
            samples.append(t[1] / (1 + epochs))
    samples = np.asarray(samples)
    return Timing(float(np.median(samples)), float(samples.max() - samples.min()), est)


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_counts(cores=None):
    """1, 2, 4, ... up to the cores, the core count itself, and twice it
    (oversubscribed)."""
    cores = usable_cores() if cores is None else cores
    counts, t = [], 1
    while t <= cores:
        counts.append(t)
        t *= 2
    return sorted(set(counts) | {cores, 2 * cores})


def settle_blas(seconds=0.5):
    """Waits for BLAS's idle threads to stop spinning after a library that
    uses them (scikit-learn's MLP, its scoring): left spinning, they take
    cores from whatever is timed next."""
    time.sleep(seconds)


def data_bytes(X):
    """Bytes an epoch must read: the rows' values and indices."""
    if hasattr(X, "indptr"):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def memory_floor_seconds(X, repeats=5):
    """Seconds to stream every byte of X once (a reduction over it)."""
    parts = [X.data, X.indices, X.indptr] if hasattr(X, "indptr") else [X]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for a in parts:
            np.add.reduce(a.ravel())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def stream_bandwidth(megabytes=256, repeats=5):
    """The machine's read bandwidth in GB/s, as one thread streams a large
    array (the same reduction as the memory floor)."""
    a = np.ones(megabytes * (1 << 20) // 8)
    return a.nbytes / memory_floor_seconds(a, repeats) / 1e9


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info():
    import scipy
    import sklearn

    from . import __version__
    return {"cores": usable_cores(), "cpu": cpu_model(),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "pyasync": __version__, "platform": platform.platform()}


def positive_int(text):
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def counts(text):
    """argparse type: comma-separated integers >= 1 (thread or worker
    counts, "1,2,4"), sorted and each once."""
    try:
        values = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        values = []
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"expected counts >= 1 like 1,2,4, got {text!r}")
    return values


def numbers(text):
    """argparse type: comma-separated real numbers ("0.5,0.9"; "" for none)."""
    try:
        values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,0.9, got {text!r}")
    if not all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def writable_file(text):
    """argparse type: a file path whose folder takes a new file, so that a
    bad path fails before the work, not after it."""
    folder = os.path.dirname(os.path.abspath(text))
    try:
        if os.path.isdir(text):
            raise IsADirectoryError(f"{text!r} is a folder")
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {exc}")
    return text


def timing_parser(doc, rows=200_000, repeats=5, epochs=3):
    """The bench scripts' command line: their docstring as --help, and
    --rows, --repeats (the fastest or median of these), --epochs and --json,
    checked before any work; each script adds its own options."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=positive_int, default=rows)
    parser.add_argument("--repeats", type=positive_int, default=repeats)
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--json", type=writable_file, default=None)
    return parser


def save_json(path, results):
    """Writes a benchmark's results with the machine they ran on (nothing
    where `path` is None)."""
    if path:
        with open(path, "w") as f:
            json.dump({"machine": machine_info(), "results": results}, f, indent=1)
