"""Staleness statistics: what a fit measured about its asynchrony."""
import warnings
from dataclasses import dataclass

import numpy as np

SCHEDULES = ("exponential", "round_robin", "fixed")
# A fit's histogram holds staleness 0 .. OVERFLOW_BIN, the last bin every
# larger one too (its mean and max are exact); a law spreads that bin over
# at most TAIL_BINS more: an MLP replaying it keeps a gradient a possible
# staleness (4 x the histogram's), and at 256 exponential workers the tail
# past 1024 holds 5% of the pooled bin.
OVERFLOW_BIN = 256
HIST_LEN = OVERFLOW_BIN + 1
TAIL_BINS = 3 * OVERFLOW_BIN


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


def staleness_law(histogram, name="histogram"):
    """``P(staleness = s)`` for s = 0, 1, ...: a histogram's counts (or a
    fit's ``staleness_``) normalised. A fit's last bin, OVERFLOW_BIN, also
    counts every larger staleness (2 threads on 1 core: descheduled for a
    time slice, thousands); its mass is spread over OVERFLOW_BIN .. the
    largest measured (at most TAIL_BINS further) as a truncated geometric
    tail with the mean the fit measured (the exponential schedule's own
    tail), so that the law's mean is the fit's."""
    counts = staleness_counts(histogram, name)
    law = counts / counts.sum()
    if (not isinstance(histogram, StalenessStats) or counts.size != OVERFLOW_BIN + 1
            or histogram.max <= OVERFLOW_BIN):
        return law
    head = np.arange(OVERFLOW_BIN) @ law[:OVERFLOW_BIN]
    longest = min(histogram.max - OVERFLOW_BIN, TAIL_BINS)
    tail_mean = np.clip((histogram.mean - head) / law[-1] - OVERFLOW_BIN, 0.0, longest)
    offsets = np.arange(longest + 1)

    def tail(log_ratio):
        z = log_ratio * offsets
        weights = np.exp(z - z.max())
        return weights / weights.sum()
    low, high = -60.0, 60.0  # tail means ~0 and ~longest: bisect between
    for _ in range(100):
        middle = 0.5 * (low + high)
        if offsets @ tail(middle) < tail_mean:
            low = middle
        else:
            high = middle
    return np.concatenate([law[:OVERFLOW_BIN], law[-1] * tail(0.5 * (low + high))])


def replayed_mean_falls_short(histogram, law):
    """Warns where a fit's staleness ran past what its `law` holds
    (OVERFLOW_BIN + TAIL_BINS): the replayed mean is then below the one
    the fit measured."""
    if not isinstance(histogram, StalenessStats) or histogram.n_measured == 0:
        return
    replayed = float(np.arange(law.size) @ law)
    if replayed < 0.99 * histogram.mean:
        warnings.warn(
            f"staleness: the replayed law's mean staleness is {replayed:.3g}, the fit "
            f"measured {histogram.mean:.3g}: a staleness past {OVERFLOW_BIN + TAIL_BINS} "
            f"(the fit's longest was {histogram.max}) is replayed as at most that",
            UserWarning, stacklevel=3)


def replay_cdf(law):
    """The cumulative distribution ``P(staleness <= s)`` the simulated
    engines replay from a law (`staleness_law` of counts, or of a fit's
    ``staleness_``)."""
    cdf = np.cumsum(law)
    cdf[-1] = 1.0
    return cdf


def simulated_schedule(staleness, delay, max_delay, simulated=True):
    """The simulated engine's schedule for an estimator's `staleness` and
    `delay` (checked whatever the engine, as every parameter is):
    {"schedule", "replay_cdf", "n_workers"}, the last set only where the
    schedule fixes the workers ("fixed": delay + 1 in turn). `simulated`:
    whether the engine replays it (a replay short of the measured mean
    then warns)."""
    if not isinstance(staleness, str):  # a histogram (counts, or a fit's staleness_)
        if delay is not None:
            raise ValueError("delay is only used with staleness='fixed'")
        law = staleness_law(staleness, "staleness")
        if simulated:
            replayed_mean_falls_short(staleness, law)
        return {"schedule": "replay", "replay_cdf": replay_cdf(law), "n_workers": None}
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
