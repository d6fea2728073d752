"""Command line: `pyasync demo [--quick]`."""
import argparse


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pyasync", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="fit on built-in data, compare with scikit-learn")
    demo.add_argument("--quick", action="store_true", help="smaller sparse set")
    args = parser.parse_args(argv)
    if args.command in (None, "demo"):
        from . import demo as demo_module
        demo_module.run(quick=getattr(args, "quick", False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
