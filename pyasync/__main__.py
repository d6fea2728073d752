"""pyasync command line.

    pyasync demo [--quick]              fit on built-in data, against scikit-learn
    pyasync reproduce [--out DIR] [--quick]
                                        the paper's results: tables and plots
"""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pyasync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="fit on built-in data, compare with scikit-learn")
    demo.add_argument("--quick", action="store_true", help="smaller sparse set")
    rep = sub.add_parser("reproduce", help="asynchrony begets momentum: tables and plots")
    rep.add_argument("--out", default="reproduce", help="output folder")
    rep.add_argument("--quick", action="store_true", help="fewer workers and seeds")
    args = parser.parse_args(argv)
    if args.command == "reproduce":
        from . import reproduce
        reproduce.run(out=args.out, quick=args.quick)
    else:
        from . import demo as demo_module
        demo_module.run(quick=getattr(args, "quick", False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
