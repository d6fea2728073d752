"""pyasync command line.

    pyasync report [--quick] [--out DIR]      the benchmark report (the main job)
    pyasync profile DATA [--loss L] [--threads 1,2,4]
                                              throughput on your own data
    pyasync reproduce [--out DIR] [--quick]   the paper's results: tables and plots
    pyasync demo [--quick]                    one fit on built-in data, against
                                              scikit-learn
"""
import argparse
import json
import os
import sys
import tempfile

from .benchmark import counts, positive_int


def _out_folder(command, path):
    """Creates the output folder and writes a file in it first: a folder
    that cannot be made or written to fails before the work, not after it."""
    try:
        os.makedirs(path, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as exc:
        raise SystemExit(f"pyasync {command}: cannot write to {path!r}: {exc}")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pyasync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    rpt = sub.add_parser("report", help="hardware vs statistical efficiency, time to "
                         "target, on built-in data")
    rpt.add_argument("--out", default="report", help="output folder (default: report)")
    rpt.add_argument("--quick", action="store_true",
                     help="smaller data and fewer repeats (about a minute on 2 cores)")
    prof = sub.add_parser("profile", help="throughput on your own data")
    prof.add_argument("data", help="svmlight/libsvm file, .npy (target last column) "
                      "or .npz (X, y)")
    prof.add_argument("--loss", default="hinge",
                      help="hinge, log_loss, modified_huber, ... profile AsyncSGDClassifier; "
                      "squared_error, huber, epsilon_insensitive, "
                      "squared_epsilon_insensitive AsyncSGDRegressor (default: hinge)")
    prof.add_argument("--threads", type=counts, default=[1, 2, 4],
                      help="comma-separated thread counts (default 1,2,4)")
    prof.add_argument("--epochs", type=positive_int, default=3,
                      help="epochs a timed fit adds (default 3)")
    prof.add_argument("--repeats", type=positive_int, default=3,
                      help="timed repeats, their median reported (default 3)")
    prof.add_argument("--json", default=None, help="also write the results here")
    rep = sub.add_parser("reproduce", help="asynchrony begets momentum: tables and plots")
    rep.add_argument("--out", default="reproduce",
                     help="output folder (default: reproduce)")
    rep.add_argument("--quick", action="store_true", help="fewer workers and seeds")
    demo = sub.add_parser("demo", help="fit on built-in data, compare with scikit-learn")
    demo.add_argument("--quick", action="store_true", help="smaller sparse set")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _run(args)
    except KeyboardInterrupt:
        print(f"pyasync {args.command}: interrupted", file=sys.stderr)
        return 130


def _run(args):
    if args.command == "report":
        from . import report
        _out_folder("report", args.out)
        report.run(out=args.out, quick=args.quick)
    elif args.command == "profile":
        from . import profile
        # opened first: a path that cannot be written fails before the work
        try:
            json_file = open(args.json, "w") if args.json else None
        except OSError as exc:
            print(f"pyasync profile: cannot write --json {args.json!r}: {exc.strerror}",
                  file=sys.stderr)
            return 2
        res = None
        try:
            res = profile.run(args.data, loss=args.loss, threads=args.threads,
                              epochs=args.epochs, repeats=args.repeats)
        except ValueError as exc:
            print(f"pyasync profile: {exc}", file=sys.stderr)
            return 2
        finally:
            if json_file is not None:
                with json_file:
                    if res is not None:
                        json.dump(res, json_file, indent=1)
                if res is None:  # no results: no empty file left behind
                    os.remove(args.json)
    elif args.command == "reproduce":
        from . import reproduce
        _out_folder("reproduce", args.out)
        reproduce.run(out=args.out, quick=args.quick)
    elif args.command == "demo":
        from . import demo as demo_module
        demo_module.run(quick=args.quick)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
