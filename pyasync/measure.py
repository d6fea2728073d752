"""Measuring the momentum asynchrony adds, on the simulated engine."""
import numpy as np

from . import _core, _sgd
from .momentum import estimate_momentum


def simulated_trajectory(X, y, *, n_workers, schedule="exponential", step=0.01,
                         momentum=0.0, seed=0, w0=None, replay_cdf=None):
    """Weights after each update of one epoch of squared-error SGD (no
    intercept) on the simulated engine: an (n_samples, n_features) array."""
    n, d = X.shape
    params = {"loss": "squared_error", "loss_param": 0.0, "alpha": 0.0,
              "l2": 0.0, "l1": 0.0, "learning_rate": "constant", "eta0": step,
              "power_t": 0.0, "optimal_init": 0.0, "momentum": momentum,
              "fit_intercept": False, "intercept_decay": 1.0}
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=np.float64)
    state = _sgd.new_state(d, w, 0.0, np.zeros(d), 0.0, momentum, 0.0, False)
    order = np.arange(n, dtype=np.int64)
    _core.shuffle_order(order, seed)
    trace = np.empty((n, d))
    engine = {"kind": "simulated", "n_workers": n_workers, "schedule": schedule,
              "replay_cdf": replay_cdf, "seed": seed, "trace": trace}
    hist = np.zeros(_sgd.HIST_LEN, dtype=np.int64)
    _core.linear_epoch(params, X, np.asarray(y, dtype=np.float64), None, state, 0,
                       step, order, engine, hist)
    return trace, hist


def measure_implicit_momentum(n_workers, *, schedule="exponential", n_seeds=200,
                              n_updates=300, step=0.01, replay_cdf=None,
                              random_state=0):
    """Implicit momentum of M simulated workers, fitted from the expected
    trajectory on a one-dimensional quadratic 0.5 (w - 1)^2 whose rows are
    all alike, so the only randomness is the scheduler's (averaged over
    `n_seeds` runs). The first 5 M updates, before the staleness law is
    stationary, are left out. Returns the fitted momentum (no explicit
    momentum is used, so it is all implicit)."""
    X = np.ones((n_updates, 1))
    y = np.ones(n_updates)
    mean = np.zeros((n_updates, 1))
    for s in range(n_seeds):
        trace, _ = simulated_trajectory(X, y, n_workers=n_workers, schedule=schedule,
                                        step=step, replay_cdf=replay_cdf,
                                        seed=random_state * 100_003 + s)
        mean += trace
    mean /= n_seeds
    skip = min(5 * n_workers, n_updates // 2)
    mu, _ = estimate_momentum(mean[skip:], mean[skip:] - 1.0, step=step)
    return mu
