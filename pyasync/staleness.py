"""Staleness statistics: what a fit measured about its asynchrony."""
from dataclasses import dataclass

import numpy as np


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
