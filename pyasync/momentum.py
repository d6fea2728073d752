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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Real
from typing import NamedTuple

import numpy as np

from .staleness import StalenessStats, staleness_counts


def _real(name, value, low=-np.inf, high=np.inf, ends="[]", many=False, finite=True):
    """`value`, a real number (where `many`, or a non-empty array of them),
    as float64; a ValueError naming `name` where it is not one (a bool, a
    string, None), is not finite (unless not `finite`) or lies outside
    low..high (`ends`: "[]", "(]", "[)" or "()", closed or open)."""
    what = "a real number or a non-empty array of them" if many else "a real number"
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        if isinstance(value, Real):
            values = np.float64(value)
        else:
            values = np.asarray(value)
            if values.dtype.kind not in "iuf" or not values.size or values.ndim and not many:
                raise TypeError
            values = values.astype(np.float64)
    except OverflowError:  # an int past float64's range
        values = np.float64(np.inf if value > 0 else -np.inf)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {what}, got {value!r}") from None
    if not finite:
        return values[()]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (values < low if ends[0] == "[" else values <= low) \
            | (values > high if ends[1] == "]" else values >= high)
    if np.any(bad):
        span = (f" and in {ends[0]}{low:g}, {high:g}{ends[1]}" if np.isfinite(low + high)
                else f" and >{'=' * (ends[0] == '[')} {low:g}" if np.isfinite(low)
                else f" and <{'=' * (ends[1] == ']')} {high:g}" if np.isfinite(high) else "")
        got = repr(value) if values.ndim == 0 else f"{values[bad][0]:g} among its values"
        raise ValueError(f"{name} must be finite{span}, got {got}")
    return values[()]


def _grid(grid):
    """A grid of momenta, each in (-1, 1), as a 1-d float64 array."""
    grid = np.atleast_1d(_real("grid", grid, -1, 1, "()", many=True))
    if grid.ndim != 1:
        raise ValueError(f"grid must be a 1-d array of momenta, got shape {grid.shape}")
    return grid


def implicit_momentum(n_workers):
    """``1 - 1/M``: the momentum M asynchronous workers add (M a number, or
    an array of them)."""
    return 1.0 - 1.0 / _real("n_workers", n_workers, 1, many=True)


MAX_PMF_LENGTH = 2 ** 26  # a law's staleness values (512 MB of float64)


def staleness_pmf(n_workers, max_staleness=None):
    """Geometric staleness distribution of M workers, ``P(tau = l)`` for
    ``l = 0..max_staleness`` (default: where the tail falls below 1e-12)."""
    if np.ndim(n_workers) != 0:
        raise ValueError(f"n_workers must be one number (a law of one M), got {n_workers!r}")
    _real("n_workers", n_workers, 1)
    q = 1.0 - 1.0 / n_workers
    if max_staleness is None:
        # past 2**53 workers q rounds to 1: a tail that never falls
        length = 0.0 if q == 0 else np.inf if q == 1 else np.ceil(np.log(1e-12) / np.log(q))
        if length > MAX_PMF_LENGTH:
            raise ValueError(f"the law of {float(n_workers):g} workers reaches past "
                             f"{MAX_PMF_LENGTH} updates: pass max_staleness")
        max_staleness = int(length)
    elif (isinstance(max_staleness, bool) or not isinstance(max_staleness, (int, np.integer))
            or not 0 <= max_staleness <= MAX_PMF_LENGTH):
        raise ValueError(f"max_staleness must be an integer in [0, {MAX_PMF_LENGTH}], "
                         f"got {max_staleness!r}")
    return (1.0 / n_workers) * q ** np.arange(max_staleness + 1)


@dataclass(frozen=True)
class GeometricFit:
    """A measured staleness histogram seen as M workers' geometric law."""

    n_workers: float          # the effective M
    implicit_momentum: float  # 1 - 1/M
    mean_staleness: float


def fit_geometric(histogram):
    """Maximum-likelihood geometric fit of a staleness histogram (counts by
    staleness, or a fit's ``staleness_``, whose exact mean counts the
    staleness its last bin pools): M = 1 + mean staleness."""
    counts = staleness_counts(histogram)
    mean = (float(_real("histogram.mean", histogram.mean, 0))
            if isinstance(histogram, StalenessStats)
            else float(np.arange(counts.size) @ counts / counts.sum()))
    m = 1.0 + mean
    return GeometricFit(m, 1.0 - 1.0 / m, mean)


def total_momentum(explicit, implicit):
    """First-order total momentum: explicit (in (-1, 1)) + implicit (in
    [0, 1))."""
    return (_real("explicit", explicit, -1, 1, "()", many=True)
            + _real("implicit", implicit, 0, 1, "[)", many=True))


def momentum_recursion(explicit, implicit):
    """Coefficients (c1, c2, g) of ``E V[t+1] = c1 E V[t] - c2 E V[t-1]
    - a g E grad f(w[t])``; explicit in (-1, 1), implicit in [0, 1)."""
    _real("explicit", explicit, many=True)
    _real("implicit", implicit, many=True)
    if not (np.all(np.abs(explicit) < 1) and np.all((0 <= implicit) & (implicit < 1))):
        raise ValueError(f"momentum_recursion needs explicit momentum in (-1, 1) and "
                         f"implicit in [0, 1), got {explicit!r} and {implicit!r}")
    return explicit + implicit, explicit * implicit, 1.0 - implicit


def recurrence_rate(explicit, implicit, step, curvature):
    """Spectral radius of the expected dynamics on a quadratic direction of
    curvature h: the largest root modulus of
    ``z^3 - (1 + c1 - a g h) z^2 + (c1 + c2) z - c2``
    (from ``x[t+1] - x[t] = c1 (x[t] - x[t-1]) - c2 (x[t-1] - x[t-2])
    - a g h x[t]``). Below 1 converges; smaller is faster."""
    _real("explicit", explicit)
    _real("implicit", implicit)
    _real("step", step, 0)
    _real("curvature", curvature)
    c1, c2, g = momentum_recursion(explicit, implicit)
    roots = np.roots([1.0, -(1.0 + c1 - step * g * curvature), c1 + c2, -c2])
    return float(np.max(np.abs(roots)))


def best_explicit_momentum(implicit, step, curvatures, grid=None):
    """The explicit momentum that makes the slowest curvature direction
    fastest under the expected dynamics (negative values included)."""
    grid = np.linspace(-0.9, 0.9, 181) if grid is None else np.asarray(grid)
    if np.size(curvatures) == 0 or grid.size == 0:
        raise ValueError("best_explicit_momentum needs at least one curvature and "
                         "one momentum")
    grid = _grid(grid)
    curvatures = np.atleast_1d(_real("curvatures", curvatures, many=True))
    _real("implicit", implicit, 0, 1, "[)")
    _real("step", step, 0)
    worst = [max(recurrence_rate(mu, implicit, step, h) for h in curvatures)
             for mu in grid]
    return float(grid[int(np.argmin(worst))])


def epoch_staleness(n_workers, n_batches, round_robin=False, n_updates=2000, replicas=32,
                    seed=0):
    """The staleness of `n_updates` updates (x `replicas` runs, an int
    array) of the MLP engines' epochs: min(n_workers, n_batches) workers
    read an epoch's first minibatches at its start; a uniformly random busy
    worker (`round_robin`: the next in turn) writes and reads the next
    minibatch; once none is left, workers leave as they write; the next
    epoch starts afresh. Where a few minibatches make an epoch, its
    staleness stays below them, however many workers there are."""
    _real("n_workers", n_workers)
    _real("n_batches", n_batches)
    if n_workers < 1 or n_batches < 1:
        raise ValueError(f"epoch_staleness needs n_workers >= 1 and n_batches >= 1, "
                         f"got {n_workers} and {n_batches}")
    workers, n_batches = min(int(n_workers), int(n_batches)), int(n_batches)
    if round_robin:  # no draws: every run is the same
        epoch, read, busy, turn = [], [0] * workers, list(range(workers)), 0
        for k in range(n_batches):
            q = turn % len(busy)
            turn += 1
            epoch.append(k - read[busy[q]])
            if workers + k < n_batches:
                read[busy[q]] = k + 1
            else:
                del busy[q]
                turn = q % len(busy) if busy else 0
        reps = -(-n_updates // n_batches)
        return np.tile(np.array(epoch * reps, dtype=np.int64)[:n_updates, None], (1, replicas))
    # the k-th update of an epoch has workers - max(0, k - (n_batches -
    # workers)) busy workers to pick from: the draws do not depend on the
    # picks, so they are drawn at once (the same stream as one at a time)
    k = np.arange(n_updates) % n_batches
    busy = workers - np.maximum(0, k - (n_batches - workers))
    picks = np.random.RandomState(seed).randint(0, busy[:, None], size=(n_updates, replicas))
    from . import _core
    return _core.epoch_staleness_runs(np.ascontiguousarray(picks, dtype=np.int64), workers,
                                      n_batches)


def replayed_epoch_staleness(pmf, n_batches, n_updates=2000, replicas=32, seed=0):
    """As `epoch_staleness` for an engine replaying the staleness law
    `pmf` (``P(tau = l)``): each update's staleness drawn from it, and no
    more than the updates its epoch has made (an epoch reads its first
    minibatch at its start)."""
    pmf = np.asarray(pmf, dtype=np.float64)
    if n_batches < 1 or pmf.ndim != 1 or pmf.size == 0 or not pmf.sum() > 0:
        raise ValueError(f"replayed_epoch_staleness needs n_batches >= 1 and a non-empty "
                         f"pmf, got {n_batches} and {pmf!r}")
    rng = np.random.RandomState(seed)
    stale = rng.choice(pmf.size, size=(n_updates, replicas), p=pmf / pmf.sum())
    position = (np.arange(n_updates) % int(n_batches))[:, None]
    return np.minimum(stale, position).astype(np.int64)


def growth_rates(grid, step_curvature, pmf=None, nesterov=False, n_updates=2000, replicas=32,
                 seed=0, draws=None):
    """How fast SGD with each momentum of `grid` grows (> 0) or shrinks on
    a quadratic direction where step x curvature is `step_curvature`, with
    each gradient taken at a stale point, its staleness drawn from `pmf`
    (`P(tau = l)`), or given (`draws`: n_updates x replicas, as
    `epoch_staleness` gives): the mean log growth per update of |x| + |v|
    over the runs (the Lyapunov exponent), all momenta fed the same
    staleness. The expected dynamics (`recurrence_rate`) miss what the
    draws' spread does: at many workers a few long delays undo momenta the
    mean allows. Updates as the kernels': v <- mu v - a g, w <- w + v
    (nesterov: w + mu v - a g)."""
    grid = np.ascontiguousarray(_grid(grid))
    _real("step_curvature", step_curvature)
    if (pmf is None) == (draws is None):
        raise ValueError("growth_rates needs a staleness pmf or draws, "
                         + ("got neither" if pmf is None else "not both"))
    if draws is None:
        staleness_counts(pmf, "pmf")
        pmf = np.asarray(pmf, dtype=np.float64)
        rng = np.random.RandomState(seed)
        stale = rng.choice(pmf.size, size=(n_updates, replicas), p=pmf / pmf.sum())
        longest = pmf.size - 1
    else:
        stale = np.asarray(draws, dtype=np.int64)
        if stale.ndim != 2 or stale.size == 0 or stale.min() < 0:
            raise ValueError(f"draws must be a non-empty 2-d array (updates x runs) of "
                             f"staleness >= 0, got shape {stale.shape}")
        n_updates, replicas = stale.shape
        longest = int(stale.max())
    span = 1 << (longest + 1).bit_length()  # a ring of past points, longer than any delay
    # an update grows |x| + |v| by at most 3 + 2 a h: rescale before 1e250
    every = int(np.clip(250.0 / np.log10(3.0 + 2.0 * abs(step_curvature)), 1, 50))
    from . import _core
    runs = _core.growth_runs(grid, float(step_curvature),
                             np.ascontiguousarray(stale, dtype=np.int64), span,
                             bool(nesterov), every)
    return runs.mean(axis=1) / n_updates


def heaviest_stable(grid, step_curvature, pmf=None, nesterov=False, draws=None):
    """The heaviest momentum of `grid` under which stale SGD shrinks on a
    quadratic direction of step x curvature `step_curvature` (`growth_rates`
    below 0, the staleness drawn from `pmf` or given as `draws`), and under
    every momentum between it and the lightest that does; the lowest of the
    grid where none does (or the curvature is not finite), the heaviest
    where it is not positive. An island of stability above an unstable
    momentum is not taken: its growth rate sits a hair below 0 (-0.002 for
    momentum 0.8 among positive rates from 0 to 0.6: heavy ball on digits
    at 64 workers, which momentum 0.8 throws to 5 times its start's loss)."""
    grid = np.sort(_grid(grid))
    if not np.isfinite(_real("step_curvature", step_curvature, finite=False)):
        return float(grid[0])
    if step_curvature <= 0.0:  # no direction curves up: none limits the momentum
        return float(grid[-1])
    stable = growth_rates(grid, step_curvature, pmf, nesterov, draws=draws) < 0.0
    if not stable.any():
        return float(grid[0])
    first = int(np.argmax(stable))
    unstable = np.flatnonzero(~stable[first:])
    last = first + unstable[0] - 1 if unstable.size else grid.size - 1
    return float(grid[last])


def estimate_momentum(trajectory, gradients, step=None):
    """The momentum a run had, from its trajectory (T x d) and the
    gradients at its points (T x d).

    With ``step`` (the learning rate a), the one-parameter fit of the
    momentum model ``w[t+1] - w[t] = mu (w[t] - w[t-1]) - a (1 - mu) g[t]``,
    i.e. ``V[t+1] + a g[t] = mu (V[t] + a g[t])`` (YellowFin's sensor, as a
    least-squares ratio): identifiable even where the trajectory follows one
    mode. Without it, the two-parameter least squares
    ``V[t+1] = mu V[t] - c g[t]``. Returns (mu, effective step)."""
    w = _real("trajectory", trajectory, many=True)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2 or w.shape[0] < 3:
        raise ValueError("a trajectory needs at least 3 points")
    g = _real("gradients", gradients, many=True)
    if g.size != w.size:
        raise ValueError(f"gradients must have the trajectory's shape {w.shape}, got "
                         f"shape {g.shape}")
    g = g.reshape(w.shape)
    if step is not None:
        _real("step", step, 0)
    delta = np.diff(w, axis=0)          # delta[t-1] = w[t] - w[t-1]
    if step is not None:
        num = (delta[1:] + step * g[1:-1]).ravel()
        den = (delta[:-1] + step * g[1:-1]).ravel()
        if not den @ den > 0.0:
            raise ValueError("the trajectory neither moves nor has a gradient: no "
                             "momentum to estimate")
        mu = float(num @ den / (den @ den))
        return mu, step * (1.0 - mu)
    A = np.column_stack([delta[:-1].ravel(), -g[1:-1].ravel()])
    if not np.any(A):
        raise ValueError("the trajectory neither moves nor has a gradient: no "
                         "momentum to estimate")
    coef, *_ = np.linalg.lstsq(A, delta[1:].ravel(), rcond=None)
    return float(coef[0]), float(coef[1])


# ---------------------------------------------------------------------------
# momentum="auto": explicit momentum chosen by running asynchronous SGD on a
# row sample of the problem, with each momentum of the grid (closed loop:
# re-chosen as the weights move and the staleness is measured).

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


# Losses that are flat past a margin: a row there has no gradient and no
# curvature, whatever the kink-scale value elsewhere.
FLAT_ZONES = ("hinge", "perceptron", "squared_hinge", "modified_huber",
              "epsilon_insensitive", "squared_epsilon_insensitive")
MOMENTUM_GRID = np.round(np.linspace(-0.9, 0.9, 19), 10)
# Sample sizes: sparse rows are few and rescaled (see `row_sample`); dense
# samples are as large as the Gram matrix's cost (m^2 d) allows, since a
# small sample fits its own noise (a sample of 256 rows in 30 dimensions of
# nearly separable data is separable, the full data is not).
SPARSE_ROWS = 256
SPARSE_DENSITY = 0.1
DENSE_ROWS = (256, 1024)
GRAM_FLOPS = 2 ** 30
SAMPLE_BYTES = 2 ** 28
HELD_FRACTION = 0.5  # held-out rows per sample row (dense, where rows are left)
# Row-updates a simulation may run per momentum (updates x the sample's
# rows and held-out rows, `simulation_horizon`).
HORIZON_BUDGET = 2 ** 26
# Below this share of a row's own update left by its next visit (the L2
# decay over an epoch, against the next step), rows are held out, not
# rescaled (`row_sample`).
MEMORY_KEPT = 0.8


class RowSample(NamedTuple):
    """What `row_sample` returns: the sample's Gram matrix (scaled by
    `scale` for how rarely its rows come back), its current predictions and
    targets, the curvature a rarely revisited row's update carries (0 where
    rows come back as often as in the sample), and held-out rows (samples
    of larger data that are not rescaled; None otherwise) whose loss is
    watched too."""

    gram: np.ndarray
    predictions: np.ndarray
    targets: np.ndarray
    kick: float
    held: np.ndarray = None              # held-out rows' products with the sample's
    held_predictions: np.ndarray = None
    held_targets: np.ndarray = None
    held_weight: float = 0.0             # their share of the loss watched
    scale: float = 1.0                   # m / n where the Gram matrix is scaled by it
    intercept: float = 0.0               # the current intercept (the penalty spares it)
    intercept_rows: np.ndarray = None    # each row's intercept share of its K row
    independent_rows: bool = False       # sparse rows, or as many features as rows
    # the same sample in the features' space (dense, not rescaled samples),
    # where its simulation is cheaper (`simulate_momentum_grid`): its rows,
    # the held-out rows, each row's weight, the weights it starts from and
    # the intercept's share of a row's step (0: no intercept)
    rows: np.ndarray = None
    held_rows: np.ndarray = None
    row_weights: np.ndarray = None
    start_weights: np.ndarray = None
    intercept_step: float = 0.0


def sparse_rows(X):
    """Whether X's rows are sparse: stored so, with at most SPARSE_DENSITY
    of the entries set, in as many features as a sparse sample has rows
    (two such rows share few features). Dense data stored sparse is
    sampled as dense data is, and gets the same momentum."""
    return (hasattr(X, "indptr") and X.shape[1] >= SPARSE_ROWS
            and X.nnz <= SPARSE_DENSITY * X.shape[0] * X.shape[1])


def sample_size(X):
    """How many rows `row_sample` takes from X (dense: also no more than
    SAMPLE_BYTES of rows, at least 32)."""
    if sparse_rows(X):
        return SPARSE_ROWS
    d = max(X.shape[1], 1)
    rows = int(np.clip(np.sqrt(GRAM_FLOPS / d), *DENSE_ROWS))
    return min(rows, max(32, SAMPLE_BYTES // (8 * d)))


def dense(product):
    """A product of rows (sparse or dense) as a C-contiguous float64 array."""
    product = product.toarray() if hasattr(product, "toarray") else product
    return np.ascontiguousarray(product, dtype=np.float64)


def row_sample(X, y, w, b, loss, loss_param, fit_intercept, intercept_decay, rng,
               max_rows=None, sample_weight=None, memory=1.0, candidates=None):
    """A row sample of the problem in its own row space: SGD from w never
    leaves w + span of the rows it visits, so simulating it needs only the
    sample's Gram matrix K and predictions, and keeps the real loss, whose
    curvature changes as the weights move (separable data, margins). The
    intercept is a column of sqrt(intercept_decay).

    Where the sample's rows are nearly independent (sparse rows, or as many
    features as rows), a row's directions come back about once in n updates
    in the real problem, not once in the sample's m: K is scaled by m / n to
    give them that curvature. Between such rare visits the velocity dies
    out, so each visit is a kick of step x curvature that momentum amplifies
    by 1 / (1 - mu): `kick` (the 90th percentile of the rows' curvature)
    lets `stable_grid` drop the momenta under which a visit overshoots so
    far that the error grows; the simulation gives each row its own kick
    whole, once in n / m visits (`own_kick_lumps`), so that the overshoot
    and the noise floor it sets are there. That holds while a row keeps
    what it learnt between visits: `memory`, the share of a row's own
    update the L2 penalty's decay leaves after an epoch, against the step
    its next update takes (`_sgd.row_memory`). Below MEMORY_KEPT the
    training loss is made of what the other rows' updates do to a row
    (their noise, at full strength), which m / n scales away: such samples
    hold rows out as below instead.

    Elsewhere (dense rows, fewer features than rows, or little memory) a
    sample of m < n rows fits its own noise, which the data do not:
    HELD_FRACTION x m more rows are held out, their predictions follow the
    sample's updates, and the loss watched gives them weight
    (1 - m / n) / 2: the data's training loss lies between the sample's
    own (too low by about as much as unseen rows' is too high) and, as n
    grows, their midpoint.

    A row's update is its sample weight times the step (the loss watched,
    like the fit's, is unweighted): row i of K and of the held-out
    products is scaled by it, the row the simulation's update reads.

    `candidates`: the rows the fit learns on (None: all of X's), the only
    ones sampled: early stopping's held-out rows are not the fit's."""
    n, d = X.shape
    if candidates is not None:
        candidates = np.sort(np.asarray(candidates, dtype=np.int64))
        n = candidates.size
    m = sample_size(X) if max_rows is None else max_rows
    independent = sparse_rows(X) or d >= m
    rescaled = n > m and independent and memory >= MEMORY_KEPT
    held = 0 if rescaled or n <= m else min(n - m, int(HELD_FRACTION * m))
    rows = rng.choice(n, m + held, replace=False) if n > m else np.arange(n)
    if candidates is not None:
        rows = candidates[rows]
    rows, held_rows = np.sort(rows[:m]), np.sort(rows[m:])
    Xs = X[rows]
    p = np.asarray(Xs @ w, dtype=np.float64).ravel() + b
    gram = dense(Xs @ Xs.T)
    if fit_intercept:
        gram += intercept_decay
    weights = None if sample_weight is None else np.asarray(sample_weight)[rows, None]
    if weights is not None:
        gram *= weights
    shares = None  # each row's intercept entry of K (the same in all its row)
    if fit_intercept:
        shares = float(intercept_decay) * (np.ones(rows.size) if weights is None
                                           else weights[:, 0])
    # the intercept the predictions hold, fitted or not (a fixed one neither
    # decays nor steps: no intercept_rows)
    intercept = dict(intercept=float(b), intercept_rows=shares, independent_rows=independent)
    targets = np.ascontiguousarray(y[rows], dtype=np.float64)
    rows_kept = not rescaled and not independent  # the features' space may pay: d < m
    if rows_kept:
        intercept.update(rows=dense(Xs), start_weights=np.array(w, dtype=np.float64).ravel(),
                         row_weights=None if weights is None else
                         np.ascontiguousarray(weights[:, 0], dtype=np.float64),
                         intercept_step=float(intercept_decay) if fit_intercept else 0.0)
    if held:
        Xh = X[held_rows]
        if rows_kept:
            intercept["held_rows"] = dense(Xh)
        cross = dense(Xs @ Xh.T)
        if fit_intercept:
            cross += intercept_decay
        if weights is not None:
            cross *= weights
        return RowSample(gram, p, targets, 0.0, cross,
                         np.asarray(Xh @ w, dtype=np.float64).ravel() + b,
                         np.ascontiguousarray(y[held_rows], dtype=np.float64),
                         0.5 * (1.0 - m / n), **intercept)
    if not rescaled:
        return RowSample(gram, p, targets, 0.0, **intercept)
    from . import _core  # the kernels' own loss derivative
    dloss = np.array([_core.loss_dloss(loss, loss_param, float(yi), float(pi))
                      for yi, pi in zip(targets, p)])
    curvature = loss_curvature(loss, loss_param, p, targets)
    if loss in FLAT_ZONES:  # a row past its margin takes no step at all
        curvature = np.where(dloss != 0.0, curvature, 0.0)
    kick = float(np.quantile(curvature * np.diag(gram), 0.9))
    scale = rows.size / n
    if shares is not None:
        intercept["intercept_rows"] = shares * scale
    return RowSample(gram * scale, p, targets, kick, scale=scale, **intercept)


def stable_grid(grid, step, kick):
    """The momenta of `grid` under which a kick of step x `kick`, amplified
    by 1 / (1 - mu), stays below 2: the error it leaves, (1 - amplified
    kick) times the one it found, shrinks. (Below 1, no overshoot at all,
    cost the separable problems their best momentum.) The lowest if none."""
    grid = np.asarray(grid)
    keep = step * kick < 2.0 * (1.0 - grid)
    return grid[keep] if keep.any() else grid[:1]


def own_kick_lumps(rows, m, scale, rng):
    """Factors on each update's own-row entry of a Gram matrix scaled by
    `scale` (= m / n): a row's own kick comes whole, once every 1 / scale of
    its visits (from a random phase), as once an epoch in the data, instead
    of a `scale`-th of it at every visit; the mean is unchanged."""
    by_row = np.argsort(rows, kind="stable")
    sorted_rows = rows[by_row]
    starts = np.searchsorted(sorted_rows, np.arange(m))
    visit = np.arange(rows.size) - starts[sorted_rows]   # visit number of its row
    phase = rng.random_sample(m)[sorted_rows]
    whole = (np.floor(phase + (visit + 1) * scale) - np.floor(phase + visit * scale))
    lumps = np.empty(rows.size)
    lumps[by_row] = whole / scale
    return lumps


def feature_space(sample, every):
    """Whether `simulate_momentum_grid` runs `sample` in the features'
    space: a dense sample, not rescaled, whose update there (its velocity,
    weights and a stale read: about 3 d) and share of a loss every `every`
    updates ((m + h) d / every) cost less than the rows' space's 2 (m + h)."""
    if sample.rows is None or sample.scale != 1.0:
        return False
    m, d = sample.rows.shape
    h = 0 if sample.held_rows is None else sample.held_rows.shape[0]
    return 3 * d + (m + h) * d / every < 2 * (m + h)


def simulate_momentum_grid(sample, loss, loss_param, step, pmf, grid, n_updates, rng,
                           every=10, l2=0.0, n_threads=1):
    """Asynchronous SGD with each explicit momentum of `grid` on a
    `RowSample`, all momenta fed the same rows and staleness draws (an
    update's gradient is taken at the predictions of `staleness` updates
    earlier, drawn from `pmf`): the mean loss watched (the sample's,
    blended with its held-out rows') every `every` updates
    (n_updates // every x len(grid)); a diverged momentum stays infinite.
    `l2` is the penalty's L2 strength: each update decays the weights by
    1 - l2 x step, as the fit's kernels do, the intercept spared. The loop
    runs in the compiled core, in the sample's row space or, where that is
    cheaper (`feature_space`), its features' space (the same losses to
    rounding), the momenta split over `n_threads` threads (each momentum's
    run is its own: the losses are the same bit for bit)."""
    from . import _core
    m = sample.gram.shape[0]
    grid = np.ascontiguousarray(grid, dtype=np.float64)
    pmf = np.asarray(pmf, dtype=np.float64)
    pmf = pmf / pmf.sum()
    rows = rng.randint(0, m, n_updates).astype(np.int64)
    stale = rng.choice(pmf.size, n_updates, p=pmf).astype(np.int64)
    lumps = None
    if sample.scale < 1.0:
        lumps = own_kick_lumps(rows, m, sample.scale, rng)
    gram = np.ascontiguousarray(sample.gram, dtype=np.float64)
    predictions = np.ascontiguousarray(sample.predictions, dtype=np.float64)
    decay = max(0.0, 1.0 - l2 * step)

    def in_features(momenta):
        return _core.feature_sample_grid(sample.rows, sample.targets, sample.start_weights,
                                         sample.intercept, loss, float(loss_param),
                                         float(step), np.ascontiguousarray(momenta), rows,
                                         stale, pmf.size, every,
                                         None if sample.held is None else sample.held_rows,
                                         sample.held_targets, sample.held_weight,
                                         sample.row_weights, sample.intercept_step, decay)

    def losses(momenta):
        if feature_space(sample, every):
            return in_features(momenta)
        return _core.row_sample_grid(gram, predictions, sample.targets, loss,
                                     float(loss_param), float(step),
                                     np.ascontiguousarray(momenta), rows, stale, pmf.size,
                                     every, sample.held, sample.held_predictions,
                                     sample.held_targets, sample.held_weight, lumps,
                                     decay, sample.intercept, sample.intercept_rows)
    parts = np.array_split(grid, max(1, min(int(n_threads), grid.size)))
    if len(parts) == 1:
        return losses(grid)
    with ThreadPoolExecutor(len(parts)) as pool:  # the core runs without the GIL
        return np.concatenate(list(pool.map(losses, parts)), axis=1)


def sample_loss(sample, loss, loss_param):
    """The loss the simulation watches, at the sample's current predictions
    (the sample's mean loss, blended with its held-out rows')."""
    from . import _core

    def mean_loss(targets, predictions):
        return np.mean([_core.loss_value(loss, loss_param, float(t), float(p))
                        for t, p in zip(targets, predictions)])
    own = mean_loss(sample.targets, sample.predictions)
    if sample.held is None:
        return own
    return own + sample.held_weight * (mean_loss(sample.held_targets,
                                                 sample.held_predictions) - own)


def simulation_horizon(n_updates, epoch_updates, sample):
    """How many updates `choose_momentum` simulates: `n_updates`, or two
    epochs of the data where an epoch is longer, as far as HORIZON_BUDGET
    allows. On large data the first epoch's mean loss is mostly the floor
    its descent reaches, and the second epoch shows that floor; a few
    thousand updates show only the descent, which the heavy momenta win.
    An epoch the budget cannot hold gets as many updates as the budget
    allows (at least `n_updates`; their second half stands in for the
    epoch, mostly its floor). Samples of independent rows (sparse, or as
    many features as rows) keep `n_updates`: two epochs would visit each
    of their rows hundreds of times, where the data visit each twice, and
    they would be learnt by heart."""
    if not epoch_updates or epoch_updates <= n_updates or sample.independent_rows:
        return n_updates
    rows = sample.gram.shape[0] + (0 if sample.held is None else sample.held.shape[1])
    return max(n_updates, min(2 * epoch_updates, HORIZON_BUDGET // rows))


def choose_momentum(sample, loss, loss_param, step, pmf, rng, grid=None,
                    n_updates=5000, fraction=0.05, epoch_updates=None, l2=0.0,
                    n_threads=1, peaks=None):
    """The explicit momentum whose simulated loss (the sample's, with its
    held-out rows'), averaged over windows of one epoch of the data
    (`epoch_updates`, at least one pass over the sample, as an epoch's
    mean loss is; where an epoch outlasts the horizon, half the horizon
    for dense samples, whose epoch is then mostly its floor, and one pass
    for samples of independent rows; `simulation_horizon`), first comes
    within `fraction` of the way from the start to the lowest any momentum
    reaches (ties: the lowest final loss); None where no momentum changes
    the sample's loss (every row past its margin). A grid of more than 7 is searched
    coarse to fine: every third momentum, then those within 0.2 of the
    best, all on the same rows and staleness draws. `l2`: the penalty's L2
    strength, a decay of the weights each update (see
    `simulate_momentum_grid`); an L1 part is left out, its truncation
    leaving the rows' span. `n_threads`: threads the simulations share.
    `peaks` (a list), where given, gets each simulated momentum's highest
    windowed loss (inf where it diverged)."""
    grid = np.asarray(MOMENTUM_GRID if grid is None else grid, dtype=np.float64)
    m = sample.gram.shape[0]
    every = max(8, m // 8)  # a loss costs about as much as m / 8 updates
    n_updates = simulation_horizon(n_updates, epoch_updates, sample)
    # an epoch's mean loss is what a fit watches; an epoch the horizon
    # cannot hold is mostly the floor its descent reaches: the horizon's
    # second half stands in (one pass where the sample's rows are
    # independent: its horizon is short)
    epoch = max(m, epoch_updates or m)
    if epoch <= n_updates:
        span = epoch
    elif sample.independent_rows:
        span = m
    else:
        span = n_updates // 2
    draws = rng.get_state()

    def smoothed(momenta):
        rng.set_state(draws)
        losses = simulate_momentum_grid(sample, loss, loss_param, step, pmf, momenta,
                                        n_updates, rng, every=every, l2=l2,
                                        n_threads=n_threads)
        window = max(1, min(span // every, losses.shape[0]))
        smooth = np.stack([np.convolve(col, np.ones(window) / window, mode="valid")
                           for col in losses.T], axis=1)
        smooth = np.where(np.isfinite(smooth), smooth, np.inf)
        if peaks is not None:
            peaks.extend(np.max(smooth, axis=0))
        return smooth

    return search_grid(grid, smoothed, sample_loss(sample, loss, loss_param), fraction)


def soonest_settled(momenta, losses, start, fraction):
    """The momentum whose loss curve (a column of `losses`, rows in time)
    first comes within `fraction` of the way from `start` to the lowest any
    momentum reaches; ties: the lowest final loss."""
    low = float(np.min(losses))
    reached = losses <= low + fraction * (start - low)
    first = np.where(reached.any(axis=0), reached.argmax(axis=0), losses.shape[0])
    return float(momenta[np.lexsort((losses[-1], first))[0]])


def search_grid(grid, curves, start, fraction=0.05):
    """`soonest_settled` over `grid`, where `curves(momenta)` gives the loss
    curves (time x momenta; not finite where diverged): a grid of more than
    7 is searched coarse to fine, every third momentum and then those
    within 0.2 of the best. None where no momentum changes the loss."""
    grid = np.asarray(grid, dtype=np.float64)
    coarse = grid[::-3][::-1] if grid.size > 7 else grid
    losses = curves(coarse)
    if np.ptp(losses) == 0.0:  # no evidence
        return None
    near = np.abs(grid - soonest_settled(coarse, losses, start, fraction)) <= 0.2 + 1e-9
    fine = grid[near & ~np.isin(grid, coarse)]
    if fine.size:
        losses = np.concatenate([losses, curves(fine)], axis=1)
    return soonest_settled(np.concatenate([coarse, fine]), losses, start, fraction)
