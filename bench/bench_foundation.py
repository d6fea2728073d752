"""Per-epoch time of scikit-learn's SGDClassifier against AsyncSGDClassifier
at 1 thread and more (racy, atomic, locked; 2 by default), on dense and RCV1-like sparse
data, with the memory floor (time to stream X once) and the cost of
staleness measurement, all measured side by side in one run.

    python bench/bench_foundation.py [--rows 200000] [--repeats 5] [--threads 1,2]
                                     [--json out.json]

Per-epoch time = (fit of 1 + E epochs - fit of 1 epoch) / E, so validation
and setup costs cancel for both libraries; medians of --repeats runs."""

import numpy as np
from sklearn.linear_model import SGDClassifier

from pyasync import AsyncSGDClassifier, _sgd
from pyasync.benchmark import (counts, machine_info, memory_floor_seconds, per_epoch_seconds,
                               save_json, settle_blas, timing_parser)
from pyasync.datasets import make_dense_classification, make_rcv1_like


def run(rows, repeats, epochs, threads=(1, 2)):
    machine = machine_info()
    print(f"cores: {machine['cores']} ({machine['cpu']}); "
          f"median of {repeats} runs; per-epoch = difference of fits of 1 and "
          f"{1 + epochs} epochs")
    sets = {
        "dense float64": make_dense_classification(rows, 100, np.float64),
        "dense float32": make_dense_classification(rows, 100, np.float32),
        "sparse rcv1-like": make_rcv1_like(rows, 50_000),
    }
    common = dict(tol=None, random_state=0)
    results = []
    for name, (X, y) in sets.items():
        nnz = X.nnz / X.shape[0] if hasattr(X, "indptr") else X.shape[1]
        print(f"\n== {name}: {X.shape[0]} x {X.shape[1]}, {nnz:.1f} non-zeros a row, "
              f"{X.dtype}")
        floor = memory_floor_seconds(X, repeats)
        base, base_sd, _ = per_epoch_seconds(lambda n: SGDClassifier(max_iter=n, **common),
                                  X, y, epochs, repeats)
        settle_blas()
        print(f"{'configuration':<34} {'s/epoch':>9} {'sd':>8} {'vs sklearn':>10} "
              f"{'Mrows/s':>8}")
        print(f"{'memory floor (read X once)':<34} {floor:>9.4f} {'':>8} "
              f"{floor / base:>10.3f}")
        print(f"{'sklearn SGDClassifier':<34} {base:>9.4f} {base_sd:>8.4f} "
              f"{1.0:>10.3f} {X.shape[0] / base / 1e6:>8.2f}")
        row = {"data": name, "floor": floor, "sklearn": base, "async": {}}
        many = [t for t in threads if t > 1]
        configs = [(1, "racy", 16)] + [(t, u, 16) for t in many
                                       for u in ("racy", "atomic", "locked")]
        configs += [(many[0], "racy", 0)] if many else []
        for n_jobs, update, every in configs:
            _sgd.STALENESS_SAMPLE_EVERY = every
            secs, sd, _ = per_epoch_seconds(lambda n: AsyncSGDClassifier(
                max_iter=n, n_jobs=n_jobs, update=update, **common), X, y, epochs, repeats)
            label = f"async n_jobs={n_jobs} {update}" + (
                " (no staleness)" if every == 0 else "")
            print(f"{label:<34} {secs:>9.4f} {sd:>8.4f} {secs / base:>10.3f} "
                  f"{X.shape[0] / secs / 1e6:>8.2f}")
            row["async"][label] = secs
        _sgd.STALENESS_SAMPLE_EVERY = 16
        one = row["async"]["async n_jobs=1 racy"]
        for t in many:
            print(f"{t} threads / 1 thread throughput (racy): "
                  f"{one / row['async'][f'async n_jobs={t} racy']:.2f}x")
        if many:
            measured = row["async"][f"async n_jobs={many[0]} racy"]
            off = row["async"][f"async n_jobs={many[0]} racy (no staleness)"]
            print(f"staleness measurement cost at {many[0]} threads: "
                  f"{100 * (measured / off - 1):+.1f}%")
        results.append(row)
    return results


def main():
    parser = timing_parser(__doc__)
    parser.add_argument("--threads", type=counts, default="1,2",
                        help="thread counts, e.g. 1,2,4,8,16 (1 is always measured)")
    args = parser.parse_args()
    threads = sorted({1} | set(args.threads))
    save_json(args.json, run(args.rows, args.repeats, args.epochs, threads))


if __name__ == "__main__":
    main()
