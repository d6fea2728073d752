"""Staleness statistics: what a fit measured about its asynchrony."""
from dataclasses import dataclass

import numpy as np


def staleness_counts(histogram, name="histogram"):
    """The counts of a staleness histogram (an array, or a fit's
    ``staleness_``) as float64; a ValueError naming `name` and what is
    wrong with them otherwise."""
    counts = getattr(histogram, "histogram", histogram)
    try:
        counts = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a histogram of counts by staleness, "
                         f"got {histogram!r}") from None
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-d histogram of counts, got "
                         f"shape {counts.shape}")
    if not np.all(np.isfinite(counts)):
        raise ValueError(f"{name} holds a count that is not finite")
    if np.any(counts < 0):
        raise ValueError(f"{name} holds a negative count")
    if counts.sum() <= 0:
        raise ValueError(f"{name} holds no counts (they sum to 0)")
    return counts


def replay_cdf(histogram, name="staleness"):
    """The cumulative distribution ``P(staleness <= s)`` the simulated
    engines replay from a histogram (counts, or a fit's ``staleness_``)."""
    counts = staleness_counts(histogram, name)
    cdf = np.cumsum(counts) / counts.sum()
    cdf[-1] = 1.0
    return cdf


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
