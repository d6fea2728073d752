"""Staleness statistics: what a fit measured about its asynchrony."""
from dataclasses import dataclass

import numpy as np


def staleness_counts(histogram, name="histogram"):
    """The counts of a staleness histogram (an array, or a fit's
    ``staleness_``) as float64, relative to the largest; a ValueError
    naming `name` and what is wrong with them otherwise."""
    counts = getattr(histogram, "histogram", histogram)
    try:
        counts = np.asarray(counts)
        if np.iscomplexobj(counts):
            raise TypeError
        counts = counts.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a histogram of real counts by staleness, "
                         f"got {histogram!r}") from None
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d histogram of counts, got "
                         f"shape {counts.shape}")
    if not np.all(np.isfinite(counts)):
        raise ValueError(f"{name} holds a count that is not finite")
    if np.any(counts < 0):
        raise ValueError(f"{name} holds a negative count")
    if not np.any(counts > 0):
        raise ValueError(f"{name} holds no counts (they sum to 0)")
    return counts / counts.max()  # relative: huge counts must not overflow their sum


def replay_cdf(histogram, name="staleness"):
    """The cumulative distribution ``P(staleness <= s)`` the simulated
    engines replay from a histogram (counts, or a fit's ``staleness_``)."""
    counts = staleness_counts(histogram, name)
    cdf = np.cumsum(counts) / counts.sum()
    cdf[-1] = 1.0
    return cdf


SCHEDULES = ("exponential", "round_robin", "fixed")


def simulated_schedule(staleness, delay, max_delay):
    """The simulated engine's schedule for an estimator's `staleness` and
    `delay` (checked whatever the engine, as every parameter is):
    {"schedule", "replay_cdf", "n_workers"}, the last set only where the
    schedule fixes the workers ("fixed": delay + 1 in turn)."""
    if not isinstance(staleness, str):  # a histogram (counts, or a fit's staleness_)
        if delay is not None:
            raise ValueError("delay is only used with staleness='fixed'")
        return {"schedule": "replay", "replay_cdf": replay_cdf(staleness, "staleness"),
                "n_workers": None}
    if staleness not in SCHEDULES:
        raise ValueError(f"staleness must be one of {list(SCHEDULES)} or a histogram of "
                         f"counts, got {staleness!r}")
    if staleness != "fixed":
        if delay is not None:
            raise ValueError("delay is only used with staleness='fixed'")
        return {"schedule": staleness, "replay_cdf": None, "n_workers": None}
    if (isinstance(delay, (bool, np.bool_)) or not isinstance(delay, (int, np.integer))
            or not 0 <= delay <= max_delay):
        raise ValueError(f"staleness='fixed' needs delay, an integer in [0, {max_delay}], "
                         f"got {delay!r}")
    return {"schedule": "round_robin", "replay_cdf": None, "n_workers": int(delay) + 1}


@dataclass(frozen=True)
class StalenessStats:
    """Histogram of update staleness: ``histogram[s]`` counts the measured
    updates that `s` other updates overtook between their read and their
    write (the last bin also counts everything larger)."""

    histogram: np.ndarray
    mean: float
    max: int
    n_measured: int

    @classmethod
    def from_counts(cls, counts, total, maximum):
        counts = np.asarray(counts, dtype=np.int64)
        nonzero = np.flatnonzero(counts)
        hist = counts[: nonzero[-1] + 1] if nonzero.size else counts[:1]
        n = int(counts.sum())
        return cls(hist.copy(), float(total) / n if n else 0.0, int(maximum), n)

    @classmethod
    def merge(cls, stats):
        stats = [s for s in stats if s is not None]
        if not stats:
            return None
        size = max(s.histogram.size for s in stats)
        counts = np.zeros(size, dtype=np.int64)
        for s in stats:
            counts[: s.histogram.size] += s.histogram
        total = sum(s.mean * s.n_measured for s in stats)
        return cls.from_counts(counts, total, max(s.max for s in stats))
