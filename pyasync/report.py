"""`pyasync report`, the project's main job, on built-in data:

- hardware efficiency: seconds per epoch against thread count (1, 2, 4, ...
  up to the cores, and oversubscribed) for racy, atomic and locked updates,
  dense and sparse, float32 and float64, with the memory floor and
  scikit-learn's SGDClassifier (and MLPClassifier) measured in the same run;
- statistical efficiency: epochs to a target loss against the level of
  asynchrony (simulated workers M) for fixed momenta and momentum="auto";
- time to target = seconds per epoch x epochs to target for each thread
  count and momentum on this machine, and the configuration that reaches the
  target soonest.

Writes DIR/report.md, DIR/results.json and PNG plots; prints the headline
table; a progress bar on stderr shows what runs."""
import json
import os
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from .benchmark import (data_bytes, machine_info, memory_floor_seconds,
                        per_epoch_seconds, settle_blas, stream_bandwidth,
                        thread_counts)
from .datasets import make_dense_classification, make_rcv1_like
from .linear import AsyncSGDClassifier
from .mlp import AsyncMLPClassifier
from .plotting import save_plot
from .progress import Progress

UPDATES = ("racy", "atomic", "locked")

# A target is this fraction of the way from the first epoch's loss down to
# the lowest loss any configuration reaches within the epoch budget.
TARGET_FRACTION = 0.05

SETTINGS = {
    "quick": dict(rows=20_000, repeats=3, epochs=2, mlp_rows=5_000,
                  se_rows=5_000, se_epochs=15, se_repeats=1,
                  workers=(1, 4, 16, 64), momenta=(0.9, 0.5, 0.0, -0.5)),
    "full": dict(rows=200_000, repeats=5, epochs=3, mlp_rows=50_000,
                 se_rows=50_000, se_epochs=30, se_repeats=3,
                 workers=(1, 2, 4, 8, 16, 32, 64),
                 momenta=(0.9, 0.6, 0.3, 0.0, -0.3, -0.6)),
}


def _quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _finite(x):
    """JSON has no infinity: an unreached target is null."""
    return float(x) if np.isfinite(x) else None


# ---- hardware efficiency ----

def linear_sets(rows):
    yield "dense float64", make_dense_classification(rows, 100, np.float64)
    yield "dense float32", make_dense_classification(rows, 100, np.float32)
    X, y = make_rcv1_like(rows, 50_000)
    yield "sparse float64", (X, y)
    yield "sparse float32", (X.astype(np.float32), y)


def mlp_sets(rows):
    X, y = load_digits(return_X_y=True)
    yield "digits", (StandardScaler().fit_transform(X), y)
    X, y = make_classification(rows, 256, n_informative=64, n_classes=10,
                               random_state=0)
    yield f"synthetic {rows}x256", (StandardScaler().fit_transform(X), y)


def hardware_tasks(cfg, threads, results):
    """Tasks timing every configuration; each appends to results."""
    common = dict(tol=None, random_state=0)
    for name, (X, y) in linear_sets(cfg["rows"]):
        entry = {"data": name, "rows": X.shape[0], "features": X.shape[1],
                 "nnz_per_row": (X.nnz / X.shape[0] if hasattr(X, "indptr")
                                 else X.shape[1]),
                 "bytes": data_bytes(X), "configs": []}
        results["linear"].append(entry)

        def baseline(X=X, y=y, entry=entry):
            entry["floor_s"] = memory_floor_seconds(X, cfg["repeats"])
            t = per_epoch_seconds(lambda n: SGDClassifier(max_iter=n, **common),
                                  X, y, cfg["epochs"], cfg["repeats"])
            entry["sklearn_s"], entry["sklearn_spread"] = t.seconds, t.spread
            settle_blas()
        yield f"{name}: memory floor and scikit-learn", baseline
        for n_jobs in threads:
            for update in UPDATES:
                def timed(X=X, y=y, entry=entry, n_jobs=n_jobs, update=update):
                    t = per_epoch_seconds(lambda n: AsyncSGDClassifier(
                        max_iter=n, n_jobs=n_jobs, update=update, **common),
                        X, y, cfg["epochs"], cfg["repeats"])
                    st = t.estimator.staleness_
                    entry["configs"].append({
                        "threads": n_jobs, "update": update, "s_per_epoch": t.seconds,
                        "spread": t.spread, "vs_sklearn": t.seconds / entry["sklearn_s"],
                        "vs_floor": t.seconds / entry["floor_s"],
                        "updates_per_s": X.shape[0] / t.seconds,
                        "gb_per_s": entry["bytes"] / t.seconds / 1e9,
                        "staleness_mean": st.mean if st is not None else 0.0})
                yield f"{name}: {n_jobs} threads, {update}", timed

    mlp_common = dict(hidden_layer_sizes=(100,), batch_size=200, learning_rate_init=0.01,
                      momentum=0.9, tol=0.0, n_iter_no_change=10**6, random_state=0)
    for name, (X, y) in mlp_sets(cfg["mlp_rows"]):
        entry = {"data": name, "rows": X.shape[0], "features": X.shape[1],
                 "hidden": [100], "batch_size": 200, "configs": []}
        results["mlp"].append(entry)

        def mlp_baseline(X=X, y=y, entry=entry):
            t = per_epoch_seconds(lambda n: MLPClassifier(solver="sgd", max_iter=n,
                                                          **mlp_common),
                                  X, y, cfg["epochs"], cfg["repeats"])
            entry["sklearn_s"], entry["sklearn_spread"] = t.seconds, t.spread
            settle_blas()
        yield f"MLP {name}: scikit-learn", mlp_baseline
        for n_jobs in threads:
            def mlp_timed(X=X, y=y, entry=entry, n_jobs=n_jobs):
                t = per_epoch_seconds(lambda n: AsyncMLPClassifier(
                    max_iter=n, n_jobs=n_jobs, **mlp_common),
                    X, y, cfg["epochs"], cfg["repeats"])
                entry["configs"].append({
                    "threads": n_jobs, "update": "racy", "s_per_epoch": t.seconds,
                    "spread": t.spread, "vs_sklearn": t.seconds / entry["sklearn_s"]})
            yield f"MLP {name}: {n_jobs} threads", mlp_timed


# ---- statistical efficiency and time to target ----

def se_problems(rows):
    X, y = make_dense_classification(rows, 100, np.float64, random_state=1)
    yield "dense log_loss", X, y, dict(loss="log_loss", alpha=1e-4)
    X, y = make_rcv1_like(rows, 20_000, random_state=1)
    yield "sparse hinge", X, y, dict(loss="hinge", alpha=1e-5)
    X, y = load_breast_cancer(return_X_y=True)
    yield "breast cancer log_loss", StandardScaler().fit_transform(X), y, \
        dict(loss="log_loss", alpha=1e-3)


def mean_row_norm2(X):
    sq = X.multiply(X).sum(axis=1) if hasattr(X, "multiply") else (X * X).sum(axis=1)
    return float(np.mean(sq))


def loss_curve(est_kwargs, X, y, epochs):
    """(loss per epoch, inf where diverged, seconds per epoch, estimator)."""
    est = AsyncSGDClassifier(max_iter=epochs, tol=None, random_state=0, **est_kwargs)
    start = time.perf_counter()
    try:
        _quiet_fit(est, X, y)
    except ValueError:  # diverged
        return np.full(epochs, np.inf), np.nan, None
    secs = (time.perf_counter() - start) / epochs
    c = np.asarray(est.loss_curve_, dtype=np.float64)
    c = np.concatenate([c, np.full(epochs - c.size, c[-1] if c.size else np.inf)])
    return np.where(np.isfinite(c), c, np.inf), secs, est


def statistical_tasks(cfg, threads, results):
    momenta = list(cfg["momenta"]) + ["auto"]
    epochs = cfg["se_epochs"]
    for name, X, y, kw in se_problems(cfg["se_rows"]):
        # A large constant step: where asynchrony (and momentum) matters.
        kw = dict(kw, learning_rate="constant", eta0=0.3 / mean_row_norm2(X))
        entry = {"problem": name, "rows": X.shape[0], "features": X.shape[1],
                 "eta0": kw["eta0"], "epochs_budget": epochs,
                 "simulated": [], "threads": []}
        results["statistical"].append(entry)
        for M in cfg["workers"]:
            def sim(X=X, y=y, kw=kw, M=M, entry=entry):
                for mu in momenta:
                    c, _, est = loss_curve(dict(kw, asynchrony="simulated", n_workers=M,
                                                momentum=mu), X, y, epochs)
                    entry["simulated"].append({
                        "workers": M, "momentum": mu, "curve": c,
                        "chosen_momentum": est.momentum_ if est is not None else None})
            yield f"SE {name}: {M} simulated workers", sim
        for n_jobs in threads:
            def thr(X=X, y=y, kw=kw, n_jobs=n_jobs, entry=entry):
                for mu in momenta:
                    runs = [loss_curve(dict(kw, n_jobs=n_jobs, momentum=mu), X, y, epochs)
                            for _ in range(cfg["se_repeats"])]
                    entry["threads"].append({
                        "threads": n_jobs, "momentum": mu,
                        "curves": [r[0] for r in runs],
                        "s_per_epoch": float(np.nanmedian([r[1] for r in runs]))
                        if any(np.isfinite(r[1]) for r in runs) else np.nan,
                        "staleness_mean": _finite(np.median(
                            [r[2].staleness_.mean for r in runs if r[2] is not None]
                            or [np.nan]))})
            yield f"SE {name}: {n_jobs} threads", thr


def epochs_to(curve, target):
    hit = np.flatnonzero(np.asarray(curve) <= target)
    return float(hit[0] + 1) if hit.size else np.inf


def score_statistical(entry):
    """Sets the target, epochs to it, time to target and the
    recommendation; replaces the curves by JSON-ready lists."""
    curves = [r["curve"] for r in entry["simulated"]] + \
        [c for r in entry["threads"] for c in r["curves"]]
    low = min(float(np.min(c)) for c in curves)
    firsts = [c[0] for c in curves if np.isfinite(c[0])]
    start = max(firsts) if firsts else low
    entry["target_loss"] = target = low + TARGET_FRACTION * (start - low)
    for r in entry["simulated"]:
        r["epochs_to_target"] = epochs_to(r["curve"], target)
        r["curve"] = [_finite(v) for v in r["curve"]]
    for r in entry["threads"]:
        r["epochs_to_target"] = float(np.median([epochs_to(c, target) for c in r["curves"]]))
        r["time_to_target_s"] = r["epochs_to_target"] * r["s_per_epoch"]
        r["curves"] = [[_finite(v) for v in c] for c in r["curves"]]
    ok = [r for r in entry["threads"] if np.isfinite(r["time_to_target_s"])]
    base = next((r for r in entry["threads"] if r["threads"] == 1 and r["momentum"] == 0.0),
                None)
    if ok:
        best = min(ok, key=lambda r: r["time_to_target_s"])
        entry["recommended"] = {
            "threads": best["threads"], "momentum": best["momentum"],
            "time_to_target_s": best["time_to_target_s"],
            "speedup_vs_1_thread_momentum_0": (
                base["time_to_target_s"] / best["time_to_target_s"]
                if base and np.isfinite(base["time_to_target_s"]) else None)}
    else:
        entry["recommended"] = None
    for r in entry["simulated"] + entry["threads"]:
        for k in ("epochs_to_target", "time_to_target_s", "s_per_epoch"):
            if k in r:
                r[k] = _finite(r[k])


# ---- writing ----

def _label(mu):
    return "auto" if mu == "auto" else f"{mu:+.1f}"


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def headline(results):
    lines = ["| workload | scikit-learn s/epoch | pyasync 1 thread | best pyasync | "
             "best vs scikit-learn | memory floor |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    for e in results["linear"] + results["mlp"]:
        one = min((c for c in e["configs"] if c["threads"] == 1),
                  key=lambda c: c["s_per_epoch"])
        best = min(e["configs"], key=lambda c: c["s_per_epoch"])
        floor = f"{e['floor_s'] / e['sklearn_s']:.3f}x" if "floor_s" in e else "-"
        kind = "MLP " if e in results["mlp"] else "linear "
        lines.append(
            f"| {kind}{e['data']} | {e['sklearn_s']:.4f} | {one['vs_sklearn']:.2f}x | "
            f"{_threads(best['threads'])} {best['update']} | {best['vs_sklearn']:.2f}x | "
            f"{floor} |")
    lines += ["", "| problem | recommended | time to target | vs 1 thread, momentum 0 |",
              "| --- | --- | ---: | ---: |"]
    for e in results["statistical"]:
        r = e["recommended"]
        if r is None:
            lines.append(f"| {e['problem']} | none reached the target | - | - |")
            continue
        sp = r["speedup_vs_1_thread_momentum_0"]
        lines.append(f"| {e['problem']} | {_threads(r['threads'])}, momentum "
                     f"{_label(r['momentum'])} | {r['time_to_target_s']:.3f} s | "
                     f"{_fmt(sp, '.2f')}{'x' if sp else ''} |")
    return lines


def _threads(count):
    return f"{count} thread{'s' * (count != 1)}"


def _slug(name):
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")


def embed_plot(lines, out, name, title, draw):
    """Saves the plot and links it from the report (when matplotlib is there)."""
    png = save_plot(out, name, draw)
    if png:
        lines += [f"![{title}]({os.path.basename(png)})", ""]


def write_hardware(results, out, lines):
    lines += ["## Hardware efficiency: seconds per epoch", "",
              "Per-epoch time = (fit of 1 + E epochs - fit of 1 epoch) / E, so set-up "
              "cancels; median of the repeats, spread = max - min. Ratios are to "
              "scikit-learn measured in the same run (below 1 is faster).", ""]
    for e in results["linear"]:
        lines += [f"### {e['data']}: {e['rows']} x {e['features']}, "
                  f"{e['nnz_per_row']:.1f} values a row, {e['bytes'] / 1e6:.0f} MB", "",
                  f"scikit-learn SGDClassifier: {e['sklearn_s']:.4f} s/epoch "
                  f"(spread {e['sklearn_spread']:.4f}); memory floor (read X once): "
                  f"{e['floor_s']:.4f} s", "",
                  "| threads | update | s/epoch | spread | vs scikit-learn | vs floor | "
                  "Mupdates/s | GB/s | mean staleness |",
                  "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for c in e["configs"]:
            lines.append(f"| {c['threads']} | {c['update']} | {c['s_per_epoch']:.4f} | "
                         f"{c['spread']:.4f} | {c['vs_sklearn']:.2f}x | "
                         f"{c['vs_floor']:.1f}x | {c['updates_per_s'] / 1e6:.2f} | "
                         f"{c['gb_per_s']:.2f} | {c['staleness_mean']:.2f} |")
        lines.append("")

        def draw(ax, e=e):
            for update in UPDATES:
                pts = [(c["threads"], c["s_per_epoch"]) for c in e["configs"]
                       if c["update"] == update]
                ax.plot(*zip(*pts), "o-", label=f"pyasync {update}")
            ax.axhline(e["sklearn_s"], color="k", ls="--", label="scikit-learn")
            ax.axhline(e["floor_s"], color="gray", ls=":", label="memory floor")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("threads")
            ax.set_ylabel("seconds per epoch")
            ax.set_title(e["data"])
            ax.legend(fontsize=8)
        embed_plot(lines, out, f"he_{_slug(e['data'])}.png", e["data"], draw)
    for e in results["mlp"]:
        lines += [f"### MLP {e['data']}: {e['rows']} x {e['features']}, hidden "
                  f"{tuple(e['hidden'])}, batch {e['batch_size']}", "",
                  f"scikit-learn MLPClassifier(solver='sgd'), its BLAS on every core: "
                  f"{e['sklearn_s']:.4f} s/epoch (spread {e['sklearn_spread']:.4f})", "",
                  "| threads | s/epoch | spread | vs scikit-learn |",
                  "| ---: | ---: | ---: | ---: |"]
        lines += [f"| {c['threads']} | {c['s_per_epoch']:.4f} | {c['spread']:.4f} | "
                  f"{c['vs_sklearn']:.2f}x |" for c in e["configs"]]
        lines.append("")


def write_statistical(results, out, lines):
    lines += ["## Statistical efficiency and time to target", "",
              "Constant step 0.3 / mean squared row norm (large enough for asynchrony "
              "to matter). Target loss: "
              f"{TARGET_FRACTION:.0%} of the way from the highest first-epoch loss to "
              "the lowest loss any configuration reaches in the epoch budget. "
              "Epochs to target (mean training loss of the epoch); '-' = not reached "
              "(or diverged).", ""]
    for e in results["statistical"]:
        momenta = list(dict.fromkeys(r["momentum"] for r in e["simulated"]))
        workers = list(dict.fromkeys(r["workers"] for r in e["simulated"]))
        lines += [f"### {e['problem']}: {e['rows']} x {e['features']}, eta0 "
                  f"{e['eta0']:.4g}, target loss {e['target_loss']:.4g}", "",
                  "Epochs to target against simulated workers M (exponential schedule):", "",
                  "| M | " + " | ".join(f"momentum {_label(m)}" for m in momenta) + " |",
                  "| ---: |" + " ---: |" * len(momenta)]
        for M in workers:
            row = [r for r in e["simulated"] if r["workers"] == M]
            cells = []
            for r in row:
                cell = _fmt(r["epochs_to_target"], ".0f")
                if r["momentum"] == "auto" and r["chosen_momentum"] is not None:
                    cell += f" (chose {r['chosen_momentum']:+.2f})"
                cells.append(cell)
            lines.append(f"| {M} | " + " | ".join(cells) + " |")
        lines += ["", "Time to target on this machine (threads engine, seconds per "
                  "epoch x epochs to target, medians):", "",
                  "| threads | momentum | s/epoch | epochs to target | time to target | "
                  "mean staleness |", "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in e["threads"]:
            lines.append(f"| {r['threads']} | {_label(r['momentum'])} | "
                         f"{_fmt(r['s_per_epoch'], '.4f')} | "
                         f"{_fmt(r['epochs_to_target'], '.0f')} | "
                         f"{_fmt(r['time_to_target_s'], '.3f')} | "
                         f"{_fmt(r['staleness_mean'], '.2f')} |")
        rec = e["recommended"]
        lines += ["", ("Recommended: " + (f"{rec['threads']} threads, momentum "
                                          f"{_label(rec['momentum'])}" if rec else
                                          "none reached the target")), ""]

        def draw(ax, e=e, momenta=momenta, workers=workers):
            for mu in momenta:
                pts = [(r["workers"], r["epochs_to_target"]) for r in e["simulated"]
                       if r["momentum"] == mu and r["epochs_to_target"] is not None]
                if pts:
                    ax.plot(*zip(*pts), "o-", label=f"momentum {_label(mu)}")
            ax.set_xscale("log", base=2)
            ax.set_xlabel("simulated workers M")
            ax.set_ylabel("epochs to target")
            ax.set_title(e["problem"])
            ax.legend(fontsize=8)
        embed_plot(lines, out, f"se_{_slug(e['problem'])}.png", e["problem"], draw)


def run(out="report", quick=False, echo=print, settings=None, with_reproduce=True):
    """Runs the suite, writes report.md, results.json and plots under out;
    returns the results dict. `settings` overrides SETTINGS entries."""
    cfg = dict(SETTINGS["quick" if quick else "full"], **(settings or {}))
    os.makedirs(out, exist_ok=True)
    threads = cfg.get("threads") or thread_counts()
    machine = machine_info()
    results = {"machine": machine, "settings": dict(cfg, threads=threads, quick=quick),
               "linear": [], "mlp": [], "statistical": []}
    started = time.perf_counter()
    tasks = [("machine: memory bandwidth", lambda: machine.update(
        stream_bandwidth_gb_s=stream_bandwidth()))]
    tasks += list(hardware_tasks(cfg, threads, results))
    tasks += list(statistical_tasks(cfg, threads, results))
    if with_reproduce:
        def reproduction():
            from . import reproduce
            reproduce.run(out=os.path.join(out, "reproduce"), quick=quick,
                          echo=lambda *_: None)
            results["reproduce"] = "reproduce/reproduce.md"
        tasks.append(("reproduction of the paper's results", reproduction))
    progress = Progress(len(tasks))
    for label, task in tasks:
        progress.step(label)
        task()
    progress.close()
    for e in results["statistical"]:
        score_statistical(e)
    results["seconds"] = time.perf_counter() - started

    lines = ["# pyasync report", "",
             f"Machine: {machine['cores']} cores ({machine['cpu']}), memory read "
             f"bandwidth {machine['stream_bandwidth_gb_s']:.1f} GB/s (one thread); "
             f"Python {machine['python']}, numpy {machine['numpy']}, scikit-learn "
             f"{machine['scikit-learn']}, pyasync {machine['pyasync']}.",
             f"Threads measured: {threads} (more than {machine['cores']} is "
             f"oversubscribed). Repeats: {cfg['repeats']} (medians); "
             f"{'quick' if quick else 'full'} run, {results['seconds']:.0f} s.", "",
             "## Headline", ""]
    lines += headline(results) + [""]
    write_hardware(results, out, lines)
    write_statistical(results, out, lines)
    if with_reproduce:
        lines += ["## The paper's results", "",
                  "See [reproduce/reproduce.md](reproduce/reproduce.md).", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=_json_default)
    echo("\n".join([f"pyasync report: {os.path.join(out, 'report.md')} (measured on "
                    f"{machine['cores']} cores)", ""] + headline(results)))
    return results


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
