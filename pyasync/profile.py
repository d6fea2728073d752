"""`pyasync profile DATA`: CPU throughput of asynchronous SGD on the user's
own data. For each thread count and update mode: seconds per epoch,
updates per second and GB/s read, against the machine's measured memory
bandwidth; the staleness histogram; and the momentum the tool recommends
for each thread count (what momentum="auto" settles on).

DATA is an svmlight/libsvm file (read by scikit-learn's loader), a .npy
array whose last column is the target, or a .npz holding arrays X and y
(X dense, or sparse as saved by scipy.sparse.save_npz with y added)."""
import os
import warnings
import zipfile

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_svmlight_file
from sklearn.exceptions import ConvergenceWarning

from .benchmark import (data_bytes, machine_info, per_epoch_seconds,
                        stream_bandwidth)
from .linear import REGRESSION_LOSSES, AsyncSGDClassifier, AsyncSGDRegressor
from .progress import Progress

UPDATES = ("racy", "atomic", "locked")


def load_data(path):
    """(X, y) from an svmlight file, a .npy or a .npz; clear errors
    otherwise."""
    if not os.path.exists(path):
        raise ValueError(f"no such data file: {path!r}")
    ext = os.path.splitext(path)[1].lower()
    if ext in (".npy", ".npz"):
        try:
            return _load_numpy(path, ext)
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{path}: not a readable {ext} file ({exc})") from exc
    try:
        X, y = load_svmlight_file(path)
    except Exception as exc:  # the loader's own messages are terse
        raise ValueError(f"{path}: not a readable svmlight/libsvm file ({exc}); "
                         f"use .npy or .npz for dense arrays") from exc
    return X.tocsr(), y


def _load_numpy(path, ext):
    if ext == ".npy":
        a = np.load(path, allow_pickle=False)
        if a.ndim != 2 or a.shape[1] < 2:
            raise ValueError(f"{path}: a .npy must be 2-D with the target as its last "
                             f"column; got shape {a.shape}")
        return np.ascontiguousarray(a[:, :-1]), a[:, -1]
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
        if "y" not in keys:
            raise ValueError(f"{path}: a .npz must hold the target as 'y'; "
                             f"it holds {sorted(keys)}")
        if "X" in keys:
            X = z["X"]
        elif {"data", "indices", "indptr", "shape"} <= keys:
            fmt = z["format"].item() if "format" in keys else "csr"
            fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)  # save_npz: bytes
            if fmt != "csr":
                raise ValueError(f"{path}: sparse X must be CSR, got {fmt}")
            X = sp.csr_matrix((z["data"], z["indices"], z["indptr"]),
                              shape=tuple(z["shape"]))
        else:
            raise ValueError(f"{path}: a .npz must hold 'X' (or a CSR matrix's "
                             f"data, indices, indptr, shape) and 'y'")
        return X, z["y"]


def check_fit(Est, common, X, y):
    """One epoch on the data, so that a bad loss or bad data fails at once;
    continuous targets under a classification loss get a hint."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            Est(max_iter=1, **common).fit(X, y)
    except ValueError as exc:
        if "Unknown label type" in str(exc):
            raise ValueError(f"the targets are not class labels, and loss "
                             f"{common['loss']!r} classifies; for regression use "
                             f"--loss squared_error (or {', '.join(REGRESSION_LOSSES[1:])})"
                             ) from exc
        raise


def run(path, loss="hinge", threads=(1, 2, 4), epochs=3, repeats=3, echo=print):
    """Profiles the data; returns a dict of the measurements. A regression
    loss (squared_error, huber, ...) profiles AsyncSGDRegressor, a
    classification loss AsyncSGDClassifier."""
    X, y = load_data(path)
    regression = loss in REGRESSION_LOSSES
    Est = AsyncSGDRegressor if regression else AsyncSGDClassifier
    common = dict(loss=loss, tol=None, random_state=0)
    check_fit(Est, common, X, y)  # bad data or loss: say so before measuring
    machine = machine_info()
    tasks = len(threads) * (len(UPDATES) + 1) + 1
    progress = Progress(tasks)
    progress.step("memory bandwidth")
    bandwidth = stream_bandwidth()
    nbytes = data_bytes(X)
    rows, recommended = [], {}
    for n_jobs in threads:
        for update in UPDATES:
            progress.step(f"{n_jobs} threads, {update}")
            t = per_epoch_seconds(lambda n: Est(max_iter=n, n_jobs=n_jobs, update=update,
                                                **common), X, y, epochs, repeats)
            st = t.estimator.staleness_
            rows.append({"threads": n_jobs, "update": update, "s_per_epoch": t.seconds,
                         "spread": t.spread, "updates_per_s": X.shape[0] / t.seconds,
                         "gb_per_s": nbytes / t.seconds / 1e9,
                         "of_bandwidth": nbytes / t.seconds / 1e9 / bandwidth,
                         "staleness_mean": st.mean if st is not None else 0.0,
                         "staleness_max": st.max if st is not None else 0,
                         "staleness_histogram": (st.histogram.tolist()
                                                 if st is not None else [])})
        progress.step(f"{n_jobs} threads, momentum='auto'")
        auto = Est(max_iter=epochs, n_jobs=n_jobs, momentum="auto", **common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            auto.fit(X, y)
        recommended[n_jobs] = {"momentum": auto.momentum_,
                               "implicit_momentum": auto.implicit_momentum_,
                               "total_momentum": auto.total_momentum_}
    progress.close()

    kind = "sparse" if sp.issparse(X) else "dense"
    echo(f"pyasync profile: {path}: {X.shape[0]} x {X.shape[1]} {kind} {X.dtype}, "
         f"{nbytes / 1e6:.1f} MB, loss {loss}")
    echo(f"machine: {machine['cores']} cores ({machine['cpu']}), memory read bandwidth "
         f"{bandwidth:.1f} GB/s (one thread); medians of {repeats} runs")
    echo(f"{'threads':>7} {'update':<7} {'s/epoch':>9} {'Mupd/s':>8} {'GB/s':>6} "
         f"{'of bw':>6} {'staleness mean/max':>19}")
    for r in rows:
        echo(f"{r['threads']:>7} {r['update']:<7} {r['s_per_epoch']:>9.4f} "
             f"{r['updates_per_s'] / 1e6:>8.2f} {r['gb_per_s']:>6.2f} "
             f"{r['of_bandwidth']:>6.0%} "
             f"{r['staleness_mean']:>12.2f}/{r['staleness_max']:<6}")
    echo("staleness histograms (racy; count of updates overtaken by s others, s = 0, 1, ...):")
    for r in rows:
        if r["update"] == "racy":
            echo(f"  {r['threads']} threads: {r['staleness_histogram'][:12]}"
                 f"{' ...' if len(r['staleness_histogram']) > 12 else ''}")
    echo("recommended explicit momentum (momentum='auto'), by thread count:")
    for n_jobs, rec in recommended.items():
        echo(f"  {n_jobs} threads: {rec['momentum']:+.2f} (implicit "
             f"{rec['implicit_momentum']:.2f}, total {rec['total_momentum']:.2f})")
    return {"machine": dict(machine, stream_bandwidth_gb_s=bandwidth),
            "data": {"path": path, "rows": X.shape[0], "features": X.shape[1],
                     "sparse": sp.issparse(X), "dtype": str(X.dtype), "bytes": nbytes},
            "loss": loss, "results": rows, "recommended_momentum": recommended}
