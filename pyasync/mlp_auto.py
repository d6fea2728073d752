"""momentum="auto" for the asynchronous MLPs: the explicit momentum chosen by
probing, from the starting weights, momenta of the grid with three epochs
of the simulated engine under the fit's staleness."""
import os

import numpy as np

from . import _mlp
from ._sgd import AutoMomentum
from .momentum import MOMENTUM_GRID, search_grid

# Epochs each momentum is probed for (bench_mlp_momentum, three seeds: 2
# reached the targets within 1.5x in 292 of 360 cases, 3 in 314; 4 added
# little), and the rows an epoch of the probe holds at most (a window of
# the data on larger sets).
PROBE_EPOCHS = 3
PROBE_ROWS = 4096


class MLPAutoMomentum(AutoMomentum):
    """`AutoMomentum`'s closed loop (the stall cap, the blow-up rollback)
    with the choice made once, before a fit's first epoch, by the real
    network: from the starting weights, at rest, each momentum runs
    PROBE_EPOCHS epochs of the simulated engine on the same rows and
    staleness draws (`probe_engine`), and the one whose epoch losses first
    come within 5% of the way from the start to the lowest any reaches
    wins (`momentum.search_grid`). A network's loss is not the quadratic
    the expected dynamics assume, so it is measured, not modelled. Later
    probes would start from weights a
    calmer trajectory reached, where a heavy momentum shows its noise
    within a few epochs and its progress only after: re-choosing before
    epochs 1, 2, 4, 8, 16 chose lower momenta than the best and did worse
    (bench/bench_mlp_momentum.py). `initial`: a momentum already chosen
    (a fit that goes on from a fitted model: partial_fit after the first
    call, warm_start), kept without probing."""

    def __init__(self, X, Y, params, engine, target, seed, n_rows, initial=None):
        super().__init__(None, None, params, engine, target, seed)
        self.X, self.Y = X, Y
        self.n_rows = n_rows
        self.engine = engine
        self.initial = initial
        self.probe_updates = 0  # minibatch updates the probes ran
        if initial is not None:
            self.choice = initial

    def resamples(self, epoch):
        return epoch == 0 and self.initial is None

    def probe_engine(self, seed):
        """The fit's simulated engine; for threads and Ray workers, which
        have measured nothing before the first epoch, the exponential law
        of as many simulated workers (threads: no more than the cores,
        as threads beyond them do not run at once; 2, 4 and 8 threads on 2
        cores measured a mean staleness of 0.5, 1.0 and 0.9)."""
        if self.engine["kind"] == "simulated":
            return dict(self.engine, seed=seed)
        if self.engine["kind"] == "threads":
            workers = min(self.engine["n_threads"], os.cpu_count() or 1)
        else:
            workers = self.engine["n_workers"]
        return {"kind": "simulated", "n_workers": workers, "schedule": "exponential",
                "seed": seed}

    def batch_losses(self, w, rows):
        """The epoch loss an engine would report at w without moving:
        the batches' losses summed over their rows, per row."""
        params, size = self.params, self.params["batch_size"]
        total = 0.0
        for start in range(0, rows.size, size):
            batch = rows[start:start + size]
            total += _mlp.loss_grad(params, self.X, self.Y, w, batch)[0] * batch.size
        return total / rows.size

    def propose(self, epoch, w, b, eta, memory):
        rows = self.rng.permutation(self.n_rows)[:PROBE_ROWS].astype(np.int64)
        orders = [np.ascontiguousarray(self.rng.permutation(rows)) for _ in range(PROBE_EPOCHS)]
        seeds = self.rng.randint(0, 2**62, PROBE_EPOCHS)
        start = self.batch_losses(w, rows)
        if epoch == 0:  # the reference a blow-up is judged by
            self.start_loss = start
        scratch = np.zeros(1, dtype=np.int64)

        def curves(momenta):
            losses = np.full((PROBE_EPOCHS, len(momenta)), np.inf)
            for j, mu in enumerate(momenta):
                params = dict(self.params, momentum=float(mu), lr=eta)
                wp, vp = w.copy(), np.zeros_like(w)
                for e in range(PROBE_EPOCHS):
                    res = _mlp.mlp_epoch(params, self.X, self.Y, wp, vp, orders[e],
                                         self.probe_engine(int(seeds[e])), scratch)
                    self.probe_updates += res["n_updates"]
                    loss = res["sumloss"] / rows.size
                    if res["diverged"] or not np.isfinite(loss) or not np.all(np.isfinite(wp)):
                        break
                    losses[e, j] = loss
            return losses
        return search_grid(MOMENTUM_GRID, curves, start)
