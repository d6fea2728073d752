"""The paper's results, reproduced on generated data: asynchrony begets
momentum, so the best explicit momentum falls (and turns negative) as the
number of asynchronous workers grows.

1. measured implicit momentum against M, beside 1 - 1/M;
2. the best explicit momentum (grid search) against M;
3. loss curves for momentum -0.5, 0, 0.5 at high asynchrony;
4. the best explicit momentum against M for a small MLP.

Each writes a text table and, where matplotlib is installed, a PNG."""
import os
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from .benchmark import usable_cores
from .linear import AsyncSGDRegressor
from .mlp import AsyncMLPClassifier
from .measure import measure_implicit_momentum
from .momentum import fit_geometric
from .plotting import save_plot

GRID = np.round(np.arange(-0.9, 0.91, 0.1), 1)


def regression_problem(n_samples=2000, n_features=20, condition=10.0, noise=0.0, seed=0):
    """Least squares with Hessian eigenvalues spread over [1/condition, 1]."""
    rng = np.random.RandomState(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n_features, n_features)))
    Z = rng.standard_normal((n_samples, n_features))
    X = (Z / Z.std(0)) * np.sqrt(np.geomspace(1.0, 1.0 / condition, n_features)) @ Q.T
    y = X @ rng.standard_normal(n_features) + noise * rng.standard_normal(n_samples)
    return np.ascontiguousarray(X), y


THREAD_FITS = 5


def implicit_momentum_table(workers=(1, 2, 4, 8, 16, 32), threads=(1, 2, 4, 8)):
    """Rows (engine, M, 1 - 1/M, measured implicit momentum)."""
    rows = []
    for schedule in ("exponential", "round_robin"):
        for m in workers:
            rows.append((f"simulated {schedule}", m, 1 - 1 / m,
                         measure_implicit_momentum(m, schedule=schedule)))
    # threads that start apart or get descheduled may never overlap in a
    # short fit (staleness 0): epochs long enough to overlap, and the median
    # of THREAD_FITS fits (20,000 rows and one fit read 0.85, 0.00, 0.71 at
    # 2, 4, 8 threads on 2 cores)
    X, y = regression_problem(n_samples=200_000)
    for t in threads:
        measured = []
        for seed in range(THREAD_FITS):
            est = AsyncSGDRegressor(n_jobs=t, max_iter=3, tol=None, random_state=seed,
                                    learning_rate="constant", eta0=0.01).fit(X, y)
            measured.append(fit_geometric(est.staleness_).implicit_momentum)
        rows.append((f"threads (cores: {usable_cores()})", t, 1 - 1 / t,
                     float(np.median(measured))))
    return rows


def _final_loss(n_workers, momentum, step, epochs, X, y, seeds):
    losses = []
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                est = AsyncSGDRegressor(
                    asynchrony="simulated", n_workers=n_workers, momentum=momentum,
                    learning_rate="constant", eta0=step, max_iter=epochs, tol=None,
                    penalty=None, random_state=seed).fit(X, y)
            except ValueError:  # diverged
                return np.inf
        losses.append(est.loss_curve_[-1])
    return float(np.mean(losses))


def best_momentum_table(workers=(1, 2, 4, 8, 16, 32, 64), step=0.04, epochs=1, seeds=3):
    """Rows (M, best explicit momentum, its loss, loss at momentum 0) after a
    fixed budget of updates; diverged runs count as infinite loss."""
    X, y = regression_problem()
    rows = []
    for m in workers:
        losses = {mu: _final_loss(m, mu, step, epochs, X, y, seeds) for mu in GRID}
        best = min(losses, key=losses.get)
        rows.append((m, float(best), losses[best], losses[0.0]))
    return rows


def mlp_best_momentum_table(workers=(1, 2, 4, 8, 16, 32, 64), epochs=5, seeds=3):
    """The same for a small MLP (digits, 64-32-10, minibatches of 16, step
    0.05, heavy-ball momentum): rows (M, best momentum, its loss, loss at
    momentum 0, momentum="auto"'s mean choice, its loss), the final training
    loss averaged over seeds."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)

    def fit(m, mu, seed):
        """(final loss, inf where diverged; the fitted momentum)."""
        est = AsyncMLPClassifier(
            hidden_layer_sizes=(32,), batch_size=16, learning_rate_init=0.05,
            momentum=mu, nesterovs_momentum=False, asynchrony="simulated", n_workers=m,
            max_iter=epochs, tol=0.0, n_iter_no_change=10**6, random_state=seed)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y)
        except ValueError:  # diverged
            return np.inf, np.nan
        return est.loss_curve_[-1], est.momentum_
    rows = []
    for m in workers:
        losses = {mu: float(np.mean([fit(m, float(mu), seed)[0] for seed in range(seeds)]))
                  for mu in GRID}
        best = min(losses, key=losses.get)
        auto = np.array([fit(m, "auto", seed) for seed in range(seeds)])
        rows.append((m, float(best), losses[best], losses[0.0], float(np.mean(auto[:, 1])),
                     float(np.mean(auto[:, 0]))))
    return rows


def loss_curves(n_workers=64, momenta=(-0.5, 0.0, 0.5), step=0.04, epochs=20):
    """Mean training loss per epoch for each momentum at M workers."""
    X, y = regression_problem()
    curves = {}
    for mu in momenta:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                est = AsyncSGDRegressor(
                    asynchrony="simulated", n_workers=n_workers, momentum=mu,
                    learning_rate="constant", eta0=step, max_iter=epochs, tol=None,
                    penalty=None, random_state=0).fit(X, y)
                curves[mu] = list(est.loss_curve_)
            except ValueError as exc:  # diverged: say so in the table
                curves[mu] = [float("inf")] * epochs
                print(f"momentum {mu}: {exc}")
    return curves


def figure(out, name, draw, caption):
    """The PNG `name` (see save_plot) and its markdown line; no line where
    matplotlib is missing."""
    return ["", f"![{caption}]({name})"] if save_plot(out, name, draw) else []


def run(out="reproduce", quick=False, echo=print):
    """Runs the three experiments, writes tables (reproduce.md) and PNGs."""
    os.makedirs(out, exist_ok=True)
    lines = ["# Asynchrony begets momentum: reproduction", ""]

    rows = implicit_momentum_table(workers=(1, 2, 4, 8, 16) if quick else (1, 2, 4, 8, 16, 32))
    lines += ["## 1. Implicit momentum against the number of workers", "",
              "Simulated: fitted from the expected trajectory on a quadratic "
              "(momentum sensor). Threads: geometric fit of the measured staleness. "
              "Dense threads update private copies of the model and share them every "
              "16 updates, so an update misses about 16 updates of each other thread "
              "running beside it: their implicit momentum sits above 1 - 1/M by design "
              "(README, \"Threads and the memory system\"; 16 threads on 16 cores: "
              "0.995).", "",
              "| engine | M | 1 - 1/M | measured |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {e} | {m} | {th:.3f} | {me:.3f} |" for e, m, th, me in rows]

    def draw_implicit(ax):
        for engine in dict.fromkeys(r[0] for r in rows):
            pts = [(m, me) for e, m, _, me in rows if e == engine]
            ax.plot(*zip(*pts), "o-", label=engine)
        ms = np.array(sorted({r[1] for r in rows}))
        ax.plot(ms, 1 - 1 / ms, "k--", label="1 - 1/M")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers M")
        ax.set_ylabel("implicit momentum")
        ax.legend()
    lines += figure(out, "implicit_momentum.png", draw_implicit,
                    "implicit momentum against M")

    workers = (1, 4, 16, 64) if quick else (1, 2, 4, 8, 16, 32, 64)
    best = best_momentum_table(workers=workers, seeds=1 if quick else 3)
    lines += ["", "## 2. Best explicit momentum against the number of workers", "",
              "Noiseless least squares (Hessian condition 10), constant step 0.04, "
              "loss after one epoch (2000 updates); grid -0.9..0.9.", "",
              "| M | best momentum | its loss | loss at momentum 0 |",
              "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {m} | {mu:+.1f} | {lb:.4g} | {l0:.4g} |" for m, mu, lb, l0 in best]

    def draw_best(ax):
        ax.plot([r[0] for r in best], [r[1] for r in best], "o-")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers M")
        ax.set_ylabel("best explicit momentum")
    lines += figure(out, "best_momentum.png", draw_best, "best explicit momentum against M")

    m_high = 64
    curves = loss_curves(n_workers=m_high, epochs=10 if quick else 20)
    lines += ["", f"## 3. Negative momentum at M = {m_high}", "",
              "| epoch | " + " | ".join(f"momentum {mu:+.1f}" for mu in curves) + " |",
              "| ---: |" + " ---: |" * len(curves)]
    for i in range(len(next(iter(curves.values())))):
        lines.append(f"| {i + 1} | " + " | ".join(f"{c[i]:.4g}" for c in curves.values()) + " |")

    def draw_curves(ax):
        for mu, c in curves.items():
            ax.plot(range(1, len(c) + 1), c, label=f"momentum {mu:+.1f}")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title(f"M = {m_high} simulated workers")
        ax.legend()
    lines += figure(out, "negative_momentum.png", draw_curves,
                    f"loss curves at M = {m_high}")

    mlp = mlp_best_momentum_table(workers=workers, seeds=1 if quick else 3)
    lines += ["", "## 4. The same for a small MLP", "",
              "Digits, 64-32-10 relu MLP, minibatches of 16, constant step 0.05, "
              "heavy-ball momentum, simulated workers (exponential schedule); "
              "training loss after 5 epochs; grid -0.9..0.9; momentum=\"auto\" "
              "(chosen from the stale dynamics before the first epoch, then "
              "lowered where the loss stalls or climbs) with its final momentum "
              "(mean of the seeds).", "",
              "| M | best momentum | its loss | loss at momentum 0 | auto's momentum "
              "| auto's loss |",
              "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {m} | {mu:+.1f} | {lb:.4g} | {l0:.4g} | {ma:+.2f} | {la:.4g} |"
              for m, mu, lb, l0, ma, la in mlp]

    def draw_mlp(ax):
        ax.plot([r[0] for r in best], [r[1] for r in best], "o-", label="linear (least squares)")
        ax.plot([r[0] for r in mlp], [r[1] for r in mlp], "s-", label="MLP (digits)")
        ax.plot([r[0] for r in mlp], [r[4] for r in mlp], "x--", label='MLP, momentum="auto"')
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers M")
        ax.set_ylabel("best explicit momentum")
        ax.legend()
    lines += figure(out, "best_momentum_mlp.png", draw_mlp,
                    "best explicit momentum of the MLP against M")

    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "reproduce.md"), "w") as f:
        f.write(text)
    echo(text)
    return {"implicit": rows, "best": best, "curves": curves, "mlp_best": mlp}
