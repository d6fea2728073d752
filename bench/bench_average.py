"""Averaged SGD (average=True) against scikit-learn's, side by side in one
run: per-epoch time of SGDClassifier(average=True) and AsyncSGDClassifier
(average=True) at 1 thread and more, with the cost of averaging against the
same fit without it, on dense and RCV1-like sparse rows, without momentum
and with each of --momentum (scikit-learn has none: there its plain
averaged SGD is the peer; on sparse rows momentum's lazy catch-ups add
their gaps' sums); and the test log-loss and accuracy each reaches after
a few epochs, averaging from the first update (average=True) and from the
second epoch (average=n + 1).

    python bench/bench_average.py [--rows 200000] [--repeats 5] [--threads 1,2]
                                  [--momentum 0.5] [--epochs 3] [--json out.json]

Per-epoch time = (fit of 1 + E epochs - fit of 1 epoch) / E, medians of
--repeats; quality from the fits of 1 + E epochs on a held-out fifth."""

from sklearn.linear_model import SGDClassifier
from sklearn.metrics import log_loss

from pyasync import AsyncSGDClassifier
from pyasync.benchmark import (counts, machine_info, numbers, per_epoch_seconds, save_json,
                               settle_blas, timing_parser)
from pyasync.datasets import make_dense_classification, make_rcv1_like


def quality(est, X_test, y_test):
    return log_loss(y_test, est.predict_proba(X_test)), est.score(X_test, y_test)


def async_label(t, momentum, average):
    return f"async n_jobs={t}{f' mom={momentum:g}' if momentum else ''} average={average}"


def run(rows, repeats, epochs, threads, momenta=()):
    machine = machine_info()
    print(f"cores: {machine['cores']} ({machine['cpu']}); median of {repeats} runs; "
          f"per-epoch = difference of fits of 1 and {1 + epochs} epochs; log_loss, "
          f"default rate ('optimal'), alpha 1e-4")
    sets = {"dense float64, 100 columns": make_dense_classification(rows, 100),
            "sparse rcv1-like": make_rcv1_like(rows, 50_000)}
    results = []
    for name, (X, y) in sets.items():
        cut = X.shape[0] * 4 // 5
        X_train, y_train, X_test, y_test = X[:cut], y[:cut], X[cut:], y[cut:]
        print(f"\n== {name}: {X_train.shape[0]} training rows, {X_test.shape[0]} test rows")
        common = dict(loss="log_loss", tol=None, random_state=0)
        makers = {"sklearn average=True":
                  lambda n: SGDClassifier(max_iter=n, average=True, **common),
                  "sklearn average=False":
                  lambda n: SGDClassifier(max_iter=n, **common)}
        second_epoch = X_train.shape[0] + 1  # averaging from the second epoch on
        makers[f"sklearn average={second_epoch}"] = (
            lambda n: SGDClassifier(max_iter=n, average=second_epoch, **common))
        for t in threads:
            for momentum in (0.0, *momenta):
                for average in (True, second_epoch, False):
                    makers[async_label(t, momentum, average)] = (
                        lambda t, average, momentum: lambda n: AsyncSGDClassifier(
                            max_iter=n, n_jobs=t, average=average, momentum=momentum,
                            **common))(t, average, momentum)
        print(f"{'configuration':<38} {'s/epoch':>9} {'vs sklearn avg':>15} "
              f"{'test log-loss':>14} {'accuracy':>9}")
        row = {"data": name}
        for label, make in makers.items():
            settle_blas()
            timing = per_epoch_seconds(make, X_train, y_train, epochs, repeats)
            loss, acc = quality(timing.estimator, X_test, y_test)
            row[label] = {"seconds": timing.seconds, "log_loss": loss, "accuracy": acc}
            base = row["sklearn average=True"]["seconds"]
            print(f"{label:<38} {timing.seconds:>9.4f} {timing.seconds / base:>15.3f} "
                  f"{loss:>14.4f} {acc:>9.4f}")
        for t in threads:
            for momentum in (0.0, *momenta):
                on = row[async_label(t, momentum, True)]["seconds"]
                off = row[async_label(t, momentum, False)]["seconds"]
                print(f"averaging's cost at {t} thread(s), momentum {momentum:g}: "
                      f"{100 * (on / off - 1):+.1f}% (sklearn's, momentum 0: "
                      f"{100 * (base / row['sklearn average=False']['seconds'] - 1):+.1f}%)")
        results.append(row)
    return results


def main():
    parser = timing_parser(__doc__)
    parser.add_argument("--threads", type=counts, default="1,2")
    parser.add_argument("--momentum", type=numbers, default="0.5",
                        help="momenta besides 0, comma-separated ('' for none)")
    args = parser.parse_args()
    save_json(args.json, run(args.rows, args.repeats, args.epochs, args.threads,
                             args.momentum))


if __name__ == "__main__":
    main()
