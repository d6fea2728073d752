"""The queueing model of asynchrony and the momentum it implies.

M workers with exponential (memoryless) compute times: the worker that
finishes next is uniformly random, so an update's staleness tau is geometric,
``P(tau = l) = (1/M) (1 - 1/M)**l`` with mean M - 1, and asynchrony adds
*implicit momentum* ``mu_S = 1 - 1/M`` with effective step ``a / M``
(Mitliagkas, Zhang, Hadjis, Re 2016). With explicit momentum ``mu_L`` on top,
``V[t] = w[t] - w[t-1]`` follows in expectation the second-order recursion

    E V[t+1] = (mu_L + mu_S) E V[t] - mu_L mu_S E V[t-1] - a (1 - mu_S) E grad f(w[t])

so to first order the total momentum is ``mu_L + mu_S``. On a quadratic
with curvature h this is a linear recurrence in ``x[t]`` whose roots set the
convergence rate (`recurrence_rate`)."""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


def implicit_momentum(n_workers):
    """``1 - 1/M``: the momentum M asynchronous workers add."""
    n_workers = np.asarray(n_workers, dtype=np.float64)
    if np.any(n_workers < 1):
        raise ValueError("n_workers must be >= 1")
    return 1.0 - 1.0 / n_workers


def staleness_pmf(n_workers, max_staleness=None):
    """Geometric staleness distribution of M workers, ``P(tau = l)`` for
    ``l = 0..max_staleness`` (default: where the tail falls below 1e-12)."""
    if n_workers < 1:
        raise ValueError("n_workers must be >= 1")
    q = 1.0 - 1.0 / n_workers
    if max_staleness is None:
        max_staleness = 0 if q == 0 else int(np.ceil(np.log(1e-12) / np.log(q)))
    return (1.0 / n_workers) * q ** np.arange(max_staleness + 1)


@dataclass(frozen=True)
class GeometricFit:
    """A measured staleness histogram seen as M workers' geometric law."""

    n_workers: float          # the effective M
    implicit_momentum: float  # 1 - 1/M
    mean_staleness: float


def fit_geometric(histogram):
    """Maximum-likelihood geometric fit of a staleness histogram (counts by
    staleness, or a fit's ``staleness_``): M = 1 + mean staleness."""
    counts = getattr(histogram, "histogram", histogram)
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0 or np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError("histogram must be non-negative counts with a positive total")
    mean = float(np.arange(counts.size) @ counts / counts.sum())
    m = 1.0 + mean
    return GeometricFit(m, 1.0 - 1.0 / m, mean)


def total_momentum(explicit, implicit):
    """First-order total momentum: explicit + implicit."""
    return explicit + implicit


def momentum_recursion(explicit, implicit):
    """Coefficients (c1, c2, g) of ``E V[t+1] = c1 E V[t] - c2 E V[t-1]
    - a g E grad f(w[t])``."""
    return explicit + implicit, explicit * implicit, 1.0 - implicit


def recurrence_rate(explicit, implicit, step, curvature):
    """Spectral radius of the expected dynamics on a quadratic direction of
    curvature h: the largest root modulus of
    ``z^3 - (1 + c1 - a g h) z^2 + (c1 + c2) z - c2``
    (from ``x[t+1] - x[t] = c1 (x[t] - x[t-1]) - c2 (x[t-1] - x[t-2])
    - a g h x[t]``). Below 1 converges; smaller is faster."""
    c1, c2, g = momentum_recursion(explicit, implicit)
    roots = np.roots([1.0, -(1.0 + c1 - step * g * curvature), c1 + c2, -c2])
    return float(np.max(np.abs(roots)))


def best_explicit_momentum(implicit, step, curvatures, grid=None):
    """The explicit momentum that makes the slowest curvature direction
    fastest under the expected dynamics (negative values included)."""
    grid = np.linspace(-0.9, 0.9, 181) if grid is None else np.asarray(grid)
    curvatures = np.atleast_1d(np.asarray(curvatures, dtype=np.float64))
    worst = [max(recurrence_rate(mu, implicit, step, h) for h in curvatures)
             for mu in grid]
    return float(grid[int(np.argmin(worst))])


def estimate_momentum(trajectory, gradients, step=None):
    """The momentum a run had, from its trajectory (T x d) and the
    gradients at its points (T x d).

    With ``step`` (the learning rate a), the one-parameter fit of the
    momentum model ``w[t+1] - w[t] = mu (w[t] - w[t-1]) - a (1 - mu) g[t]``,
    i.e. ``V[t+1] + a g[t] = mu (V[t] + a g[t])`` (YellowFin's sensor, as a
    least-squares ratio): identifiable even where the trajectory follows one
    mode. Without it, the two-parameter least squares
    ``V[t+1] = mu V[t] - c g[t]``. Returns (mu, effective step)."""
    w = np.asarray(trajectory, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    if w.shape[0] < 3:
        raise ValueError("a trajectory needs at least 3 points")
    g = np.asarray(gradients, dtype=np.float64).reshape(w.shape)
    delta = np.diff(w, axis=0)          # delta[t-1] = w[t] - w[t-1]
    if step is not None:
        num = (delta[1:] + step * g[1:-1]).ravel()
        den = (delta[:-1] + step * g[1:-1]).ravel()
        mu = float(num @ den / (den @ den))
        return mu, step * (1.0 - mu)
    A = np.column_stack([delta[:-1].ravel(), -g[1:-1].ravel()])
    coef, *_ = np.linalg.lstsq(A, delta[1:].ravel(), rcond=None)
    return float(coef[0]), float(coef[1])


# ---------------------------------------------------------------------------
# momentum="auto": explicit momentum chosen by simulating the asynchronous
# dynamics on a small surrogate of the problem (closed loop: re-chosen as the
# weights move and the staleness is measured).

def loss_curvature(loss, loss_param, p, y):
    """Second derivative of the loss at predictions p (a Gauss-Newton value
    where the loss is piecewise linear: 1 at the kinks' scale)."""
    if loss == "log_loss":
        s = 1.0 / (1.0 + np.exp(-np.clip(p * y, -30, 30)))
        return s * (1.0 - s)
    if loss in ("squared_hinge", "squared_epsilon_insensitive"):
        return np.full(p.shape, 2.0)
    if loss == "modified_huber":
        return np.full(p.shape, 2.0)
    if loss == "huber":  # linear past epsilon: the secant's, as in IRLS
        return np.minimum(1.0, loss_param / np.maximum(np.abs(p - y), 1e-300))
    return np.ones(p.shape)


# The noise is scaled against a unit initial error; where the weights sit at
# the optimum (no signal), it is capped at this many times that error.
MAX_NOISE_RATIO = 1e3
# Losses that are flat past a margin: a row there has no gradient and no
# curvature, whatever the kink-scale value elsewhere.
FLAT_ZONES = ("hinge", "perceptron", "squared_hinge", "modified_huber",
              "epsilon_insensitive", "squared_epsilon_insensitive")
MOMENTUM_GRID = np.round(np.linspace(-0.9, 0.9, 19), 10)


class Surrogate(NamedTuple):
    """What `surrogate_rows` returns: the rows Z, their noise offsets, and
    (sparse data) the curvature a rarely revisited row's update carries, 0
    for dense data."""

    rows: np.ndarray
    noise: np.ndarray
    kick: float


def surrogate_rows(X, y, w, b, loss, loss_param, fit_intercept, intercept_decay,
                   rng, max_rows=256):
    """A small dense problem whose SGD dynamics stand for the real one's: a
    row sample, each row scaled by the square root of the loss curvature at
    the current weights (Gauss-Newton), expressed in the sample's own row
    space (SGD never leaves it), so its size is at most max_rows squared.

    Returns a `Surrogate`. In the same units, row i's gradient is s_i z_i with
    s_i = loss'(p_i) / sqrt(curvature_i). The part of s that the rows'
    span explains is the error SGD can remove; the rest (`noise`, one value
    a row) it cannot: it sets the noise floor, which high momentum and a
    large step raise. The noise is scaled by the ratio of its size to the
    removable part's, since the simulation starts from a unit error.

    Sparse rows share few coordinates with the rest of the data, so in the
    real problem a sampled row's directions come back about once in n
    updates, not once in the sample's m: the rows are scaled by
    sqrt(m / n) to give them that curvature. Between such rare visits the
    velocity dies out, so each visit is a kick of step x curvature that
    momentum amplifies by 1 / (1 - mu): `kick` (the 90th percentile of the
    rows' curvature) lets `stable_grid` drop the momenta under which a
    visit overshoots so far that the error grows.
    Dense rows overlap, and the sample's curvature is the population's."""
    n = X.shape[0]
    rows = rng.choice(n, min(n, max_rows), replace=False) if n > max_rows else np.arange(n)
    Xs = X[rows]
    Xs = Xs.toarray() if hasattr(Xs, "toarray") else np.asarray(Xs, dtype=np.float64)
    p = Xs @ w + b
    from . import _core  # the kernels' own loss derivative
    dloss = np.array([_core.loss_dloss(loss, loss_param, float(yi), float(pi))
                      for yi, pi in zip(y[rows], p)])
    curvature = loss_curvature(loss, loss_param, p, y[rows])
    if loss in FLAT_ZONES:  # a row past its margin takes no step at all
        curvature = np.where(dloss != 0.0, curvature, 0.0)
    root = np.sqrt(np.maximum(curvature, 1e-12))
    if fit_intercept:
        Xs = np.column_stack([Xs, np.full(Xs.shape[0], np.sqrt(intercept_decay))])
    Xs = Xs * np.sqrt(curvature)[:, None]
    u, sv, _ = np.linalg.svd(Xs, full_matrices=False)
    keep = sv > sv[0] * 1e-8 if sv.size and sv[0] > 0 else sv > 0
    Z = u[:, keep] * sv[keep]
    s = dloss / root
    removable = u[:, keep].T @ s
    noise = s - u[:, keep] @ removable
    unit_error = np.linalg.norm(Z.sum(axis=1)) / np.sqrt(max(Z.shape[1], 1))
    size = np.linalg.norm(removable)
    ratio = MAX_NOISE_RATIO if size * MAX_NOISE_RATIO <= unit_error else unit_error / size
    noise = noise * ratio
    if not hasattr(X, "indptr") or n <= Z.shape[0]:
        return Surrogate(Z, noise, 0.0)
    kick = float(np.quantile(np.einsum("ij,ij->i", Z, Z), 0.9))
    revisit = np.sqrt(Z.shape[0] / n)
    return Surrogate(Z * revisit, noise * revisit, kick)


def stable_grid(grid, step, kick):
    """The momenta of `grid` under which a kick of step x `kick`, amplified
    by 1 / (1 - mu), stays below 2: the error it leaves, (1 - amplified
    kick) times the one it found, shrinks. (Below 1, no overshoot at all,
    cost the separable problems their best momentum.) The lowest if none."""
    grid = np.asarray(grid)
    keep = step * kick < 2.0 * (1.0 - grid)
    return grid[keep] if keep.any() else grid[:1]


def simulate_momentum_grid(Z, step, pmf, grid, n_updates, rng, l2=0.0, noise=None):
    """Asynchronous SGD with each explicit momentum of `grid` on the
    least-squares surrogate with rows Z (and row offsets `noise`, the part
    no weight change removes; None: realizable), all momenta fed the same
    rows and staleness draws: the training loss every 10th update
    (n_updates // 10 x len(grid)); a diverged momentum stays infinite.
    The gradient of an update is taken at the weights (error e = w - w*,
    starting as a unit vector along every direction) as they were
    `staleness` updates earlier. The loop runs in the compiled core."""
    from . import _core
    Z = np.ascontiguousarray(Z, dtype=np.float64)
    grid = np.ascontiguousarray(grid, dtype=np.float64)
    pmf = np.asarray(pmf, dtype=np.float64)
    pmf = pmf / pmf.sum()
    rows = rng.randint(0, Z.shape[0], n_updates).astype(np.int64)
    stale = rng.choice(pmf.size, n_updates, p=pmf).astype(np.int64)
    if noise is not None:
        noise = np.ascontiguousarray(noise, dtype=np.float64)
    return _core.surrogate_grid(Z, float(step), float(l2), grid, rows, stale,
                                pmf.size, 10, noise)


def choose_momentum(Z, step, pmf, rng, grid=None, n_updates=3000, reduction=1e-2,
                    noise=None):
    """The explicit momentum that first brings the surrogate's loss within
    `reduction` of the way from its start to its floor (else the lowest
    final loss)."""
    grid = MOMENTUM_GRID if grid is None else np.asarray(grid)
    losses = simulate_momentum_grid(Z, step, pmf, grid, n_updates, rng, noise=noise)
    offset = np.zeros(Z.shape[0]) if noise is None else np.asarray(noise)
    floor = 0.5 * np.mean(offset ** 2)
    l0 = 0.5 * np.mean((np.sum(Z, axis=1) / np.sqrt(Z.shape[1]) + offset) ** 2)
    reached = losses <= floor + reduction * (l0 - floor)
    first = np.where(reached.any(axis=0), reached.argmax(axis=0), losses.shape[0])
    final = np.where(np.isfinite(losses[-1]), losses[-1], np.inf)
    order = np.lexsort((final, first))
    return float(grid[order[0]])
