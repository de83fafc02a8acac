"""The ``ml-math-nn`` command line.

Exit codes: 0 success, 2 usage or input errors (one line on stderr), 1 a failure
during a run.  ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import TrainConfig, parse_hidden
from .experiment import run_training

DEFAULTS = TrainConfig()


def _positive_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _hidden(text: str) -> tuple[int, ...]:
    try:
        return parse_hidden(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-math-nn",
        description="A fully connected neural network from first principles in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a network and write a run directory")
    train.add_argument(
        "--hidden",
        type=_hidden,
        default=DEFAULTS.hidden,
        help="hidden layer widths, comma-separated (default: %(default)s)",
    )
    train.add_argument(
        "--epochs", type=int, default=DEFAULTS.epochs, help="passes over the training set (default: %(default)s)"
    )
    train.add_argument(
        "--batch-size", type=int, default=DEFAULTS.batch_size, help="samples per mini-batch (default: %(default)s)"
    )
    train.add_argument("--lr", type=_positive_float, default=DEFAULTS.lr, help="learning rate (default: %(default)s)")
    train.add_argument(
        "--seed", type=int, default=DEFAULTS.seed, help="the one seed of all randomness (default: %(default)s)"
    )
    train.add_argument(
        "--test-size",
        type=_positive_float,
        default=DEFAULTS.test_size,
        help="fraction of the data held out for testing (default: %(default)s)",
    )
    train.add_argument(
        "--dtype", choices=["float32", "float64"], default=DEFAULTS.dtype, help="floating type (default: %(default)s)"
    )
    train.add_argument("--out", metavar="DIR", help="run directory (default: a fresh runs/<timestamp>-<dataset>)")
    train.add_argument("--quiet", action="store_true", help="do not print per-epoch lines")
    train.set_defaults(handler=_train)
    report = sub.add_parser("report", help="one self-contained HTML page of a run, or comparing several runs")
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by train")
    report.add_argument(
        "--out", metavar="FILE", help="HTML file (default: RUN_DIR/report.html; comparison.html for several runs)"
    )
    report.set_defaults(handler=_report)
    return parser


def _train(args: argparse.Namespace) -> int:
    try:
        config = TrainConfig(
            hidden=args.hidden,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            test_size=args.test_size,
            dtype=args.dtype,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    result = run_training(config, args.out, (lambda _: None) if args.quiet else print)
    final = result.summary["final"]
    print(f"test accuracy {final.get('test_acc', float('nan')):.4f}; run written to {result.out_dir}")
    return 0


class UsageError(Exception):
    """Invalid options or input: reported in one line with exit code 2."""


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    runs = [Path(d) for d in args.run_dirs]
    default = runs[0] / "report.html" if len(runs) == 1 else Path("comparison.html")
    print(f"report written to {write_report(runs, Path(args.out) if args.out else default)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as e:
        if args.debug:
            raise
        print(f"ml-math-nn: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:
        if args.debug:
            raise
        print(f"ml-math-nn: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ml-math-nn: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a failure during a run: one line, not a traceback
        if args.debug:
            raise
        print(f"ml-math-nn: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
