"""asynchrony="ray" against the threads engine on this machine: updates per
second (per-epoch time with set-up cancelled) and time to a target loss,
by model size and local_steps, 2 workers / 2 threads. Ray's s/epoch is
the median epoch of the fit (actor start-up excluded, in 'fit s').

    python bench/bench_ray.py [--rows 20000] [--repeats 3]

Ray pays a message per push (the whole model travels both ways) and starts
its actors per fit; the threads engine pays neither. Where a push's work
(local_steps rows x features) outgrows the message, Ray closes the gap."""
import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from pyasync import AsyncSGDClassifier
from pyasync.benchmark import machine_info, per_epoch_seconds, positive_int
from pyasync.datasets import make_dense_classification
from pyasync.distributed.ray_backend import RayBackend

warnings.simplefilter("ignore", ConvergenceWarning)


def timed_ray_epochs():
    """Records the wall time of every Ray epoch (actor start-up excluded)."""
    times = []
    inner = RayBackend.epoch

    def epoch(self, *args, **kwargs):
        start = time.perf_counter()
        out = inner(self, *args, **kwargs)
        times.append(time.perf_counter() - start)
        return out
    RayBackend.epoch = epoch
    return times


def epochs_to(curve, target):
    hit = np.flatnonzero(np.asarray(curve) <= target)
    return hit[0] + 1 if hit.size else np.inf


def run(rows, repeats, epochs=8):
    import ray
    ray.init(include_dashboard=False, log_to_driver=False)
    m = machine_info()
    print(f"{m['cores']} cores ({m['cpu']}), Ray {ray.__version__}; medians of {repeats}")
    print(f"{'features':>8} {'engine':<22} {'s/epoch':>8} {'Mupd/s':>8} {'vs threads':>10} "
          f"{'epochs':>6} {'to target s':>11} {'fit s':>6}")
    common = dict(loss="log_loss", learning_rate="constant", eta0=0.001, alpha=1e-5,
                  tol=None, random_state=0)
    ray_times = timed_ray_epochs()
    for n_features in (100, 10_000):
        X, y = make_dense_classification(rows, n_features)
        eta = 0.1 / n_features
        configs = [("threads 2", dict(n_jobs=2))] + [
            (f"ray 2, local_steps={ls}", dict(asynchrony="ray", n_workers=2, local_steps=ls))
            for ls in (16, 256, 4096)]
        results = {}
        for name, kw in configs:
            kw = dict(common, eta0=eta, **kw)
            start = time.perf_counter()
            est = AsyncSGDClassifier(max_iter=epochs, **kw).fit(X, y)
            fit_s = time.perf_counter() - start
            if kw.get("asynchrony") == "ray":
                secs = float(np.median(ray_times[-epochs:]))
            else:
                secs = per_epoch_seconds(lambda n: AsyncSGDClassifier(max_iter=n, **kw),
                                         X, y, epochs=2, repeats=repeats).seconds
            results[name] = (secs, est.loss_curve_, fit_s)
        # 5% of the way from the highest first-epoch loss to the lowest loss
        low = min(min(c) for _, c, _ in results.values())
        start_loss = max(c[0] for _, c, _ in results.values())
        target = low + 0.05 * (start_loss - low)
        base = results["threads 2"][0]
        for name, (secs, curve, fit_s) in results.items():
            e = epochs_to(curve, target)
            print(f"{n_features:>8} {name:<22} {secs:>8.4f} {rows / secs / 1e6:>8.3f} "
                  f"{secs / base:>9.1f}x {e:>6} {e * secs:>11.3f} {fit_s:>6.2f}")
    ray.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=positive_int, default=20_000)
    parser.add_argument("--repeats", type=positive_int, default=3)
    args = parser.parse_args()
    run(args.rows, args.repeats)
