"""The epoch loop of a linear model's SGD: schedules, stopping rules and
divergence checks around the compiled engine, one epoch at a time."""
import copy
import functools
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import ThreadpoolController

from . import _core
from .benchmark import usable_cores
from .momentum import (MOMENTUM_GRID, choose_momentum, fit_geometric, row_sample,
                       sample_loss, stable_grid, staleness_pmf)
from .staleness import HIST_LEN, StalenessStats, staleness_law

MAX_INT = np.iinfo(np.int32).max
MAX_UPDATES = np.iinfo(np.int64).max  # the core counts updates in int64 (average=n)
PASSIVE_AGGRESSIVE = ("pa1", "pa2")  # steps that zero the loss, capped by eta0
# One update in this many measures its staleness: reading the other threads'
# counters costs cache misses, so measuring every update would not be free.
STALENESS_SAMPLE_EVERY = 16


class DivergenceError(ValueError):
    """The fit produced non-finite weights or predictions."""


# A fit whose last epoch's loss is this many times its first's has climbed
# away (a step too large for its asynchrony), though it stayed finite.
CLIMBED = 10.0


def in_input_precision(values, dtype):
    """The fitted `values` (computed in float64) in the input's precision,
    as scikit-learn keeps a model; a DivergenceError where they exceed its
    range, as a fit in that precision would have overflowed."""
    with np.errstate(over="ignore"):
        cast = np.asarray(values).astype(dtype)
    if not np.all(np.isfinite(cast)):
        raise DivergenceError(
            f"The fitted model (largest |value| {np.max(np.abs(values)):.3g}) exceeds "
            f"{np.dtype(dtype).name}'s range. Scaling input data with StandardScaler "
            "or MinMaxScaler, a smaller learning rate, or float64 input might help.")
    return cast


def warn_if_climbed(loss_curve, step_name, predicting_zero=None):
    """A ConvergenceWarning where a fit ended with its loss CLIMBED times its
    first epoch's or more: finite, so nothing raised, but diverging; or,
    given `predicting_zero` (a regressor's loss at predictions 0), CLIMBED
    times that: a fit that blew up within its first epoch, whose later
    epochs may even fall, is worse than no model."""
    finite = [loss for loss in loss_curve if np.isfinite(loss)]
    advice = (f"Lower {step_name} or the momentum (asynchrony adds about 1 - 1/M for M "
              "workers; negative momentum is allowed), or use momentum='auto'.")
    if len(finite) >= 2 and finite[0] > 0 and finite[-1] >= CLIMBED * finite[0]:
        warnings.warn(
            f"The loss climbed from {finite[0]:.4g} (first epoch) to {finite[-1]:.4g} "
            f"(last): the fit is diverging. {advice}", ConvergenceWarning)
    elif finite and predicting_zero and finite[-1] >= CLIMBED * predicting_zero:
        warnings.warn(
            f"The loss ended at {finite[-1]:.4g}, over {CLIMBED:g} times that of predicting "
            f"0 ({predicting_zero:.4g}): the fit blew up. Scale the input "
            f"(StandardScaler) or {advice[0].lower()}{advice[1:]}", ConvergenceWarning)


def loss_predicting_zero(loss, loss_param, y, rows, max_rows=1000):
    """The mean loss of predictions 0 over `rows` of y (evenly spaced, at
    most `max_rows` of them): a regressor's reference for a fit that blew up."""
    rows = np.asarray(rows)[::max(1, -(-len(rows) // max_rows))]
    return float(np.mean([_core.loss_value(loss, loss_param, float(y[i]), 0.0)
                          for i in rows])) if rows.size else 0.0


def unchanged_on_failure(fit_method):
    """A fit method that fails (bad input, divergence, Ctrl-C) leaves its
    estimator exactly as it was: validation sets n_features_in_ first."""
    @functools.wraps(fit_method)
    def fit(self, *args, **kwargs):
        saved = dict(self.__dict__)
        try:
            return fit_method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise
    return fit


def optimal_init(loss, loss_param, alpha):
    """scikit-learn's start of the "optimal" schedule: t such that the first
    rate is a typical-weight heuristic."""
    typw = np.sqrt(1.0 / np.sqrt(alpha))
    initial_eta0 = typw / max(1.0, _core.loss_dloss(loss, loss_param, 1.0, -typw))
    return 1.0 / (initial_eta0 * alpha)


def penalty_strengths(penalty, alpha, l1_ratio):
    """(l2, l1) coefficients of the penalty, as scikit-learn splits alpha."""
    if penalty == "l2":
        return alpha, 0.0
    if penalty == "l1":
        return 0.0, alpha
    if penalty == "elasticnet":
        return (1.0 - l1_ratio) * alpha, l1_ratio * alpha
    return 0.0, 0.0


def check_sparse_structure(X):
    """A ValueError for a sparse X whose index arrays point outside it (the
    kernels, and scipy's own products, would read out of bounds and crash);
    X as given otherwise. O(non-zeros)."""
    if sp.issparse(X) and X.format == "coo":
        if not X.row.size == X.col.size == X.data.size:
            raise ValueError("X.row, X.col and X.data differ in length: the sparse matrix "
                             "is malformed")
        for name, index, bound in (("row", X.row, X.shape[0]), ("col", X.col, X.shape[1])):
            if index.size and (index.min() < 0 or index.max() >= bound):
                raise ValueError(f"X.{name} holds an index outside [0, {bound}): the sparse "
                                 "matrix is malformed")
        return X
    if not sp.issparse(X) or X.format not in ("csr", "csc"):
        return X
    if X.data.size != X.indices.size:
        raise ValueError(f"X.data holds {X.data.size} values for {X.indices.size} indices: "
                         "the sparse matrix is malformed")
    n_inner = X.shape[1] if X.format == "csr" else X.shape[0]
    if X.indices.size and (X.indices.min() < 0 or X.indices.max() >= n_inner):
        raise ValueError(f"X.indices holds an index outside [0, {n_inner}): the sparse "
                         "matrix is malformed")
    ptr = X.indptr
    if ptr.size == 0 or ptr[0] != 0 or ptr[-1] != X.indices.size or np.any(np.diff(ptr) < 0):
        raise ValueError("X.indptr is not a valid CSR / CSC pointer array for X.indices")
    return X


class EngineCSR:
    """A CSR matrix as the engine reads it: int32 indices, int64 indptr."""

    def __init__(self, X):
        self.data = np.ascontiguousarray(X.data)
        self.indices = np.ascontiguousarray(X.indices, dtype=np.int32)
        self.indptr = np.ascontiguousarray(X.indptr, dtype=np.int64)
        self.shape = X.shape
        self.dtype = X.dtype


def engine_input(X):
    """X as the engine reads it (dense arrays pass through)."""
    return EngineCSR(X) if hasattr(X, "indptr") else X


# Sparse columns in more than this fraction of rows are "hot": with several
# threads, each worker shares its updates to them more often (see
# engine_threads.c).
HOT_FREQUENCY = 0.02
MAX_HOT = 256
# Column frequencies are estimated from an even sample of this many entries:
# counting all of a large X cost more than an epoch.
HOT_SAMPLE = 1 << 20


def hot_columns(X):
    """The most frequent columns of a CSR input, most frequent first."""
    step = max(1, X.indices.size // HOT_SAMPLE)
    sample = X.indices[::step]
    counts = np.bincount(sample, minlength=X.shape[1])
    hot = np.flatnonzero(counts * (X.indices.size / max(sample.size, 1))
                         > HOT_FREQUENCY * X.shape[0])
    return hot[np.argsort(-counts[hot], kind="stable")][:MAX_HOT].astype(np.int32)


def new_state(n_features, coef, intercept, velocity, intercept_velocity,
              momentum, l1, lazy):
    """The shared model arrays the engine updates in place."""
    return {
        "w": np.array(coef, dtype=np.float64, order="C"),
        "b": np.array([intercept], dtype=np.float64),
        "v": (np.array(velocity, dtype=np.float64, order="C")
              if momentum != 0.0 else None),
        "vb": np.array([intercept_velocity if momentum != 0.0 else 0.0],
                       dtype=np.float64),
        "q": np.zeros(n_features) if l1 > 0.0 else None,
        "last": (np.zeros(n_features, dtype=np.int64)
                 if lazy else None),
        "u": 0.0,
    }


def prior_staleness_pmf(engine, epoch_rows=None, measured=None):
    """The staleness law expected before the fit measures any; an epoch of
    `epoch_rows` updates has no more workers than that in flight. Threads
    and Ray workers measure theirs from the first epoch on; a fit that
    goes on (partial_fit) starts from what the calls before it `measured`."""
    if engine["kind"] != "simulated":
        if measured is not None and measured.n_measured:
            return staleness_law(measured)
        return np.ones(1)
    if engine["schedule"] == "replay":
        return np.diff(np.concatenate([[0.0], engine["replay_cdf"]]))
    m = engine["n_workers"] if not epoch_rows else max(1, min(engine["n_workers"], epoch_rows))
    if engine["schedule"] == "round_robin":
        pmf = np.zeros(m)
        pmf[m - 1] = 1.0
        return pmf
    return staleness_pmf(m, max_staleness=int(np.ceil(7 * m)))


def row_memory(params, eta_const, t, n, points=129):
    """How much of a row's own update at update t is left when the row comes
    back n updates later, relative to the step it then takes: the L2
    decay over those updates times step(t) / step(t + n). A constant step
    forgets, (1 - l2 step)^n; the "optimal" schedule's steps shrink as the
    decay does, so every update keeps the same weight (1). The decay's
    log is integrated over `points` geometrically spaced updates (the
    schedules change fastest early)."""
    if params["l2"] == 0.0 or n == 0:
        return 1.0
    offsets = np.geomspace(0.5, n + 0.5, points)   # the sum over t+1..t+n as an integral

    def log_decay(offset):
        step = _core.eta(params, eta_const, t + max(1, int(round(offset))))
        return np.log1p(-min(params["l2"] * step, 1.0 - 1e-12))
    f = np.array([log_decay(o) for o in offsets])
    total = float(np.sum(0.5 * (f[1:] + f[:-1]) * np.diff(offsets)))
    first, last = _core.eta(params, eta_const, t + 1), _core.eta(params, eta_const, t + n)
    return float(np.exp(total) * first / last)


# The stored weights of a sparse model with an L2 decay are divided by the
# decay's product over the epoch's updates so far (the core's "scaled"
# rows), and averaged SGD sums their changes weighted by the sum of those
# products: both terms of its sum grow as the product falls, and cancel to
# the mean, so the product's fall bounds its relative rounding (1e-16 x
# 1 / product). An averaged epoch is run in pieces whose products stay
# above e^-MAX_LOG_DECAY (1e-6: the mean to 1e-10), as scikit-learn folds
# its average into its weights where its scale falls below 1e-9.
MAX_LOG_DECAY = np.log(1e6)


def decay_pieces(params, eta_const, t, n):
    """Where an averaged sparse epoch of n updates, after t, is cut (a
    list of row positions; empty: none) so that each piece's product of
    L2 decays stays above e^-MAX_LOG_DECAY; a step that zeroes the weights
    is left whole (the core names it)."""
    if params.get("average", 0) <= 0 or params["l2"] == 0.0 or params["momentum"] != 0.0:
        return []  # momentum's lazy rows are not scaled (their sums: pa_avg_gap)
    decay = 1.0 - params["l2"] * _core.etas(params, eta_const, t + 1, n)
    if n == 0 or np.any(decay <= 0.0) or -np.log(decay).sum() <= MAX_LOG_DECAY:
        return []
    cuts, start, total = [], 0, np.cumsum(-np.log(decay))
    while total[-1] - (total[start - 1] if start else 0.0) > MAX_LOG_DECAY:
        base = total[start - 1] if start else 0.0
        # a piece holds one update at least, however strong its decay
        start = max(start + 1, int(np.searchsorted(total, base + MAX_LOG_DECAY, side="right")))
        if start >= n:
            break
        cuts.append(start)
    return cuts


def engine_epoch(params, X, y, sample_weight, state, t, eta_const, order, engine, hist):
    """_core.linear_epoch over `order`, in pieces where averaged SGD needs
    them (`decay_pieces`; each starts its workers afresh, as an epoch does,
    and simulated ones with their own draws); the pieces' statistics
    summed."""
    cuts = decay_pieces(params, eta_const, t, order.shape[0]) if hasattr(X, "indptr") else []
    if not cuts:
        return _core.linear_epoch(params, X, y, sample_weight, state, t, eta_const, order,
                                  engine, hist)
    total = None
    for number, piece in enumerate(np.split(order, cuts)):
        if engine["kind"] == "simulated":
            engine = dict(engine, seed=(engine["seed"] + number * 0x9E3779B97F4A7C15) % 2**64)
        res = _core.linear_epoch(params, X, y, sample_weight, state, t, eta_const,
                                 np.ascontiguousarray(piece), engine, hist)
        t += res["n_updates"]
        if total is None:
            total = res
        else:
            for key in ("sumloss", "n_updates", "staleness_count", "staleness_sum",
                        "avg_count"):
                total[key] += res[key]
            if total["penalty_sum"] is not None and res["penalty_sum"] is not None:
                total["penalty_sum"] += res["penalty_sum"]
            total["staleness_max"] = max(total["staleness_max"], res["staleness_max"])
            total["diverged"] = total["diverged"] or res["diverged"]
        if res["diverged"]:
            break
    return total


class AutoMomentum:
    """momentum="auto" inside the epoch loop: before epochs 0, 1, 2, 4, 8, ...
    it re-chooses the explicit momentum by running asynchronous SGD, under
    the staleness law measured so far and the fit's step, with each momentum
    of the grid on a row sample of the problem from the current weights
    (`momentum.row_sample`, `momentum.choose_momentum`): the momentum that
    gets there soonest. A simulation of a sample is still not the data, so
    the loop is closed on measured progress too: PATIENCE epochs that
    fail to lower the best loss (a two-epoch mean: a heavy momentum's epoch
    losses are noisy) cap the momentum below the one they ran with
    (a lower floor); a drop that the next PATIENCE epochs do not pay for
    with a new best is undone, and no more drops follow (at a noise floor a
    heavy negative momentum has its own, higher floor). An epoch that blows
    up (its mean loss BLOW_UP times the start's and the best so far, or not
    finite) is rolled back (`recover`): the model goes back to the best
    epoch's, at rest, and the cap to BLOW_UP_STEP below the momentum that
    blew up (at -0.9 nothing safer is left: the epoch is kept; a climb the
    simulation showed under every momentum goes back once, keeping the
    cap, and is kept after). With
    `target`, it instead holds explicit + measured implicit momentum at
    that total."""

    STALL = 1e-3      # relative improvement on the best (two-epoch mean) loss that counts
    PATIENCE = 2      # epochs without it before the cap drops
    CAP_STEP = 0.2
    BLOW_UP = 10.0
    BLOW_UP_STEP = 0.4

    def __init__(self, X, y, params, engine, target, seed, epoch_rows=None,
                 sample_weight=None, measured=None, rows=None):
        self.X, self.y, self.params = X, y, params
        self.rows = rows   # the rows the fit learns on (None: all)
        # the fit's threads (idle while it chooses) run the simulations, no
        # more than the cores: threads beyond them do not run at once
        self.n_threads = min(engine.get("n_threads", engine.get("n_jobs", 1)), usable_cores())
        self.sample_weight = sample_weight
        self.epoch_rows = epoch_rows   # updates an epoch makes (its mean loss is watched)
        self.target = target
        self.rng = np.random.RandomState(seed)
        self.pmf = prior_staleness_pmf(engine, epoch_rows, measured)
        self.choice = self.current = 0.0
        self.target_unreachable = False   # warned that the clip keeps the target out of reach
        self.cap = 0.9
        self.best_loss = np.inf
        self.stalled = 0
        self.undo = None       # the cap before a drop that has not paid yet
        self.settled = False   # a drop did not pay: no more drops
        self.start_loss = np.inf   # the sample's loss at the starting weights
        # the least any momentum's simulated loss climbed to, from the last
        # choice's weights: a climb the step makes, whatever the momentum
        self.expected_climb = 0.0
        self.step_climb_undone = False
        self.safe = None           # the model after the best epoch (or at the start)
        self.rolled_back = set()   # epochs undone: their losses say nothing of the model
        self.floor = -0.9          # the lightest momentum left to choose (`recover`)

    def keep_safe(self, state):
        """Copies the model (weights, intercept, L1 accumulators, averaged
        SGD's sums) to go back to."""
        self.safe = {key: (value.copy() if isinstance(value, np.ndarray) else value)
                     for key, value in state.items()
                     if key in ("w", "b", "q", "u", "avg_sum", "avg_count")}

    def recover(self, epoch, state, mean_loss):
        """After epoch `epoch` (mean loss `mean_loss`, inf where it diverged):
        True where it blew up, the model then put back to the safe one
        with no velocity and the momentum capped lower; else False, the
        model kept as the safe one where its loss beats the best two-epoch
        mean yet (the stall rule's; against the best single epoch instead,
        bench_mlp_momentum took 4 fewer of 1,500 cases within 1.5x)."""
        if self.target is not None or self.safe is None:
            return False
        best = self.best_loss if np.isfinite(self.best_loss) else 0.0
        # a loss that is 0 at the start (the perceptron's at w = 0) has no scale
        # to judge by: only a diverged epoch is undone there
        # a climb the simulation showed under every momentum is the step's
        # (heavy class weights: a thousandfold), not the momentum's: the
        # model goes back once (a decaying step has shrunk since), the cap
        # staying; a climb that comes back is the data's scale, and kept
        steps_climb = np.isfinite(mean_loss) and mean_loss <= self.BLOW_UP * self.expected_climb
        if np.isfinite(mean_loss) and not self.collapsed(mean_loss) and (
                self.step_climb_undone and steps_climb or not (
                    self.start_loss > 0.0
                    and mean_loss > self.BLOW_UP * max(self.start_loss, best))):
            if mean_loss < self.best_loss:
                self.keep_safe(state)
            return False
        lift = False
        if self.current <= self.floor:
            # at the lowest momentum there is nothing lighter to try: going
            # back would rerun the same epoch for good (a finite climb there
            # is a transient the fit rides out). A divergence goes back once
            # with the floor lifted: under long delays a heavy negative
            # momentum oscillates itself apart where a lighter one converges
            # (64 workers: -0.9 diverges, -0.7 converges); a second raises.
            if np.isfinite(mean_loss) or self.floor > -0.9:
                return False
            lift = True
        for key, value in self.safe.items():
            if isinstance(value, np.ndarray):
                state[key][...] = value
            else:
                state[key] = value
        for key in ("v", "vb"):
            if state.get(key) is not None:
                state[key].fill(0.0)
        if lift:
            self.floor = -0.9 + self.BLOW_UP_STEP
        elif steps_climb:
            self.step_climb_undone = True
        else:
            self.cap = max(-0.9, min(self.cap, self.current) - self.BLOW_UP_STEP)
        self.undo, self.stalled = None, 0
        self.rolled_back.add(epoch)
        return True

    # what a fit that goes on (partial_fit, warm_start) takes over from the
    # last call: caps, the best loss and the model to roll back to
    LOOP_STATE = ("choice", "cap", "floor", "best_loss", "stalled", "undo", "settled",
                  "start_loss", "safe", "rolled_back")

    def loop_state(self):
        """The closed loop's state (a copy) for a fit that goes on."""
        return copy.deepcopy({key: getattr(self, key) for key in self.LOOP_STATE})

    def resume(self, state):
        """Takes the closed loop on from `loop_state()`'s copy."""
        for key, value in copy.deepcopy(state).items():
            setattr(self, key, value)

    def going_on(self):
        """The momentum the next epoch starts from: the last one's, or lower
        where that epoch was rolled back."""
        return float(round(max(self.floor, min(self.current, self.cap)), 10))

    def collapsed(self, mean_loss):
        """Whether an epoch of mean loss `mean_loss` undid what the fit had
        learnt, however small its climb (no such test here: see the MLPs')."""
        return False

    @staticmethod
    def resamples(epoch):
        """Whether the momentum is re-chosen on a new sample before `epoch`."""
        return (epoch & (epoch - 1)) == 0

    def choose(self, epoch, w, b, staleness, eta, loss_curve, memory=1.0):
        """The momentum of the next epoch; `staleness` is what the fit has
        measured so far (a StalenessStats, or counts by staleness)."""
        measured = np.sum(getattr(staleness, "histogram", staleness)) > 0
        if measured:
            self.pmf = staleness_law(staleness)
        if self.target is not None:
            # the measured mean is exact; a law's tail stops at TAIL_BINS
            implicit = fit_geometric(staleness if measured else self.pmf).implicit_momentum
            explicit = float(np.clip(self.target - implicit, -0.9, 0.9))
            if explicit != self.target - implicit and not self.target_unreachable:
                self.target_unreachable = True
                warnings.warn(
                    f"target_momentum={self.target:g} needs explicit momentum "
                    f"{self.target - implicit:.3g} under the measured implicit momentum "
                    f"{implicit:.3g}; explicit momentum stays within [-0.9, 0.9], so the "
                    f"total is {explicit + implicit:.3g}", UserWarning, stacklevel=2)
            self.current = explicit
            return explicit
        if loss_curve and len(loss_curve) - 1 not in self.rolled_back:
            kept = [loss for i, loss in enumerate(loss_curve) if i not in self.rolled_back]
            latest = float(np.mean(kept[-2:]))
            if latest > self.best_loss * (1.0 - self.STALL):
                self.stalled += 1
            else:
                self.stalled = 0
                self.undo = None  # the last drop paid
            if self.stalled >= self.PATIENCE:
                self.stalled = 0
                if self.undo is not None:  # the drop brought no new best: back, and stay
                    self.cap, self.undo, self.settled = self.undo, None, True
                elif not self.settled and self.current > self.floor:
                    # (at the floor there is nothing lower to try: a cap
                    # there would hold every later choice to it)
                    self.undo = min(self.cap, self.current)
                    self.cap = max(-0.9, self.undo - self.CAP_STEP)
            self.best_loss = min(self.best_loss, latest)
        if self.resamples(epoch):
            choice = self.propose(epoch, w, b, eta, memory)
            if choice is not None:
                self.choice = choice
        self.current = float(round(max(self.floor, min(self.choice, self.cap)), 10))
        return self.current

    def propose(self, epoch, w, b, eta, memory):
        """The momentum a simulation on a new row sample from (w, b) chooses
        (None: no evidence); at epoch 0 it also sets `start_loss`."""
        prm = self.params
        sample = row_sample(self.X, self.y, w, b, prm["loss"], prm["loss_param"],
                            prm["fit_intercept"], prm["intercept_decay"], self.rng,
                            sample_weight=self.sample_weight, memory=memory,
                            candidates=self.rows)
        if epoch == 0:  # the reference a blow-up is judged by
            self.start_loss = sample_loss(sample, prm["loss"], prm["loss_param"])
        peaks = []
        choice = choose_momentum(
            sample, prm["loss"], prm["loss_param"], eta, np.trim_zeros(self.pmf, "b"),
            self.rng, grid=stable_grid(MOMENTUM_GRID, eta, sample.kick),
            epoch_updates=self.epoch_rows, l2=prm["l2"], n_threads=self.n_threads,
            peaks=peaks)
        finite = [peak for peak in peaks if np.isfinite(peak)]
        self.expected_climb = min(finite) if finite else 0.0
        return choice


def ray_backend(X, y, sample_weight, rows, state, params, engine, seed):
    """(the Ray backend over this problem, the server starting from state;
    whether the caller closes it). With engine["pool"] (a dict the
    one-vs-rest loop owns and closes) the actors of the previous class are
    reused."""
    from .distributed.ray_backend import LinearChunks, RayBackend
    theta = np.append(state["w"], state["b"][0])
    velocity = (np.append(state["v"], state["vb"][0]) if state["v"] is not None
                else np.zeros_like(theta))
    pool = engine.get("pool")
    if pool is not None and pool.get("backend") is not None:
        pool["backend"].restart(theta, velocity, y, sample_weight, seed)
        return pool["backend"], False
    backend = RayBackend(LinearChunks(params), X, y, sample_weight, rows, theta,
                         velocity, n_workers=engine["n_workers"],
                         local_steps=engine["local_steps"], address=engine["address"],
                         hist_len=HIST_LEN, seed=seed)
    if pool is None:
        return backend, True
    pool["backend"] = backend
    return backend, False


def ray_epoch(backend, params, state, t, eta, epoch, shuffle, hist):
    """One epoch on the Ray server; mirrors its model into state."""
    res, theta, velocity = backend.epoch(t, eta, params["momentum"], epoch, shuffle,
                                         params.get("average", 0))
    if "avg_sum" in state:
        state["avg_sum"] += res.pop("avg_sum")
    state["w"][:] = theta[:-1]
    state["b"][0] = theta[-1]
    if state["v"] is not None:
        state["v"][:] = velocity[:-1]
        state["vb"][0] = velocity[-1]
    hist += res.pop("hist")
    return res


_threadpools = []


def one_blas_thread():
    """A context holding BLAS to one thread: after a BLAS call (a norm, a
    validation score) its idle threads spin for a while and would take the
    cores from the workers. The controller is built once (it is slow)."""
    if not _threadpools:
        _threadpools.append(ThreadpoolController())
    return _threadpools[0].limit(limits=1, user_api="blas")


def fit_linear(*args, **kwargs):
    """fit_epochs with BLAS held to one thread."""
    with one_blas_thread():
        return fit_epochs(*args, **kwargs)


def fit_epochs(X, y, sample_weight, *, params, coef, intercept, velocity,
               intercept_velocity, train_idx, t0, max_iter, tol,
               n_iter_no_change, eta0, seed, shuffle, engine,
               score_fn=None, verbose=0, target_momentum=None, measured_staleness=None,
               average=None):
    """Runs up to `max_iter` epochs; returns the fitted state and curves.

    With params["average"] > 0 (averaged SGD), `average` is the (sum,
    count) of the iterates averaged before, that the fit adds to (None:
    none yet); the result's "avg_sum" and "avg_count" hold them after.
    `engine` describes the engine (see `_core.linear_epoch`);
    `measured_staleness`, the staleness a fit this one goes on from
    measured (momentum="auto" starts from it).
    `score_fn(w, b)`, when given, is the validation score that early
    stopping watches; otherwise the training objective is watched."""
    n_features = X.shape[1]
    sparse = hasattr(X, "indptr")
    auto = None
    if params["momentum"] == "auto":
        auto = AutoMomentum(X, y, params, engine, target_momentum, seed,
                            epoch_rows=len(train_idx), sample_weight=sample_weight,
                            measured=measured_staleness,
                            rows=train_idx if len(train_idx) < X.shape[0] else None)
        params = dict(params, momentum=0.0)
    X_engine = engine_input(X)
    # unit weights would cost a cache miss a row for nothing
    sw_engine = (None if sample_weight is not None and np.all(sample_weight == 1.0)
                 else sample_weight)
    with_velocity = auto is not None or params["momentum"] != 0.0
    lazy = sparse and (params["l2"] > 0.0 or with_velocity)
    state = new_state(n_features, coef, intercept, velocity, intercept_velocity,
                      1.0 if with_velocity else 0.0, params["l1"], lazy)
    if sparse and engine["kind"] == "threads" and engine["n_threads"] > 1:
        state["hot_features"] = hot_columns(X_engine)
    if params.get("average", 0) > 0:
        state["avg_sum"] = (np.zeros(n_features + 1) if average is None
                            else np.array(average[0], dtype=np.float64))
        state["avg_count"] = 0 if average is None else int(average[1])
    if auto is not None and engine["kind"] != "ray":  # the Ray server holds its own model
        auto.keep_safe(state)
    order = np.array(train_idx, dtype=np.int64)
    n_train = order.shape[0]
    # the stopping rule's objective, where the loss (not a score) is watched
    params["track_objective"] = tol is not None and score_fn is None
    hist = np.zeros(HIST_LEN, dtype=np.int64)
    stale_sum, stale_max = 0.0, 0
    eta = eta0
    t = t0
    loss_curve = []
    momentum_curve = []  # the explicit momentum each epoch ran with
    best, no_improvement = np.inf, 0
    epoch = 0
    backend, owned = (ray_backend(X, y, sample_weight, order, state, params, engine, seed)
                      if engine["kind"] == "ray" else (None, False))
    # scikit-learn shuffles every row and skips those it does not learn on
    # (validation rows, PA-I's zero rows): the same here, on all of X's rows
    every_row = np.arange(X.shape[0], dtype=np.int64) if n_train < X.shape[0] else None
    if every_row is not None:
        learnt = np.zeros(X.shape[0], dtype=bool)
        learnt[order] = True
    try:
        for epoch in range(max_iter):
            if shuffle and every_row is None:
                _core.shuffle_order(order, seed)
            elif shuffle:
                _core.shuffle_order(every_row, seed)
                order = np.ascontiguousarray(every_row[learnt[every_row]])
            if engine["kind"] == "simulated":
                engine = dict(engine, seed=(seed * 0x9E3779B9 + epoch) % 2**64)
            if auto is not None:
                step = _core.eta(params, eta, t + 1)
                memory = row_memory(params, eta, t, n_train) if auto.resamples(epoch) else 1.0
                measured = StalenessStats.from_counts(hist, stale_sum, stale_max)
                params["momentum"] = auto.choose(epoch, state["w"], state["b"][0], measured, step,
                                                 loss_curve, memory)
            if backend is not None:
                res = ray_epoch(backend, params, state, t, eta, epoch, shuffle, hist)
            else:
                res = engine_epoch(params, X_engine, y, sw_engine, state, t, eta, order,
                                   engine, hist)
            t += res["n_updates"]
            if "avg_sum" in state:
                state["avg_count"] += res["avg_count"]
            stale_sum += res["staleness_sum"]
            stale_max = max(stale_max, res["staleness_max"])
            diverged = (res["diverged"] or not np.isfinite(state["b"][0])
                        or not np.all(np.isfinite(state["w"])) or not np.isfinite(res["sumloss"]))
            mean_loss = np.inf if diverged else res["sumloss"] / max(n_train, 1)
            if auto is not None and auto.recover(epoch, state, mean_loss):
                diverged = False  # rolled back to the best epoch's model
            w, b = state["w"], state["b"][0]
            if diverged:
                raise DivergenceError(
                    f"Floating-point under-/overflow occurred at epoch #{epoch + 1}. "
                    "Scaling input data with StandardScaler or MinMaxScaler, a "
                    "smaller eta0 or a smaller momentum might help.")
            loss_curve.append(mean_loss)
            momentum_curve.append(float(params["momentum"]))
            if score_fn is not None:
                # watch the negated score so that lower is better, as the loss
                current = -score_fn(w, b)
            elif res.get("penalty_sum") is not None:
                # scikit-learn's objective: the penalty at every update's weights
                current = (res["sumloss"] + res["penalty_sum"]) / max(n_train, 1)
            else:
                # several writers (or lazy rows) keep no norms: the epoch's
                # last weights' penalty
                current = mean_loss
                # passive-aggressive steps watch the loss alone, as scikit-learn's
                penalized = params["learning_rate"] not in PASSIVE_AGGRESSIVE
                if penalized and params["l2"] > 0.0:
                    current += params["l2"] * 0.5 * float(w @ w)
                if penalized and params["l1"] > 0.0:
                    current += params["l1"] * float(np.abs(w).sum())
            if verbose:
                print(f"-- Epoch {epoch + 1}\nNorm: {np.linalg.norm(w):.2f}, "
                      f"Bias: {b:.6f}, T: {t - t0}, Avg. loss: {mean_loss:.6f}")
            if tol is not None and current > best - tol:
                no_improvement += 1
            else:
                no_improvement = 0
            best = min(best, current)
            if no_improvement >= n_iter_no_change:
                if params["learning_rate"] == "adaptive" and eta > 1e-6:
                    eta /= 5.0
                    no_improvement = 0
                else:
                    if verbose:
                        print(f"Convergence after {epoch + 1} epochs")
                    break
    finally:
        if owned:
            backend.close()
    staleness = StalenessStats.from_counts(hist, stale_sum, stale_max)
    return {
        "coef": state["w"], "intercept": state["b"][0],
        "momentum": params["momentum"],
        "velocity": state["v"], "intercept_velocity": state["vb"][0],
        "n_iter": epoch + 1, "t": t, "loss_curve": loss_curve,
        "momentum_curve": momentum_curve,
        "staleness": staleness,
        "avg_sum": state.get("avg_sum"), "avg_count": state.get("avg_count", 0),
    }
