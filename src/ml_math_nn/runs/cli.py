"""The ``ml-math-nn`` command line.

Exit codes: 0 success; 2 usage or input errors (bad options, bad files), reported in one
line on stderr; 1 a failure during a run (a diverging loss, a run file that cannot be
written).  ``--debug`` shows the traceback instead of the one line.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .. import __version__

if TYPE_CHECKING:
    from .options import TrainConfig


class UsageError(ValueError):
    """Invalid options or input: reported in one line with exit code 2."""


class Parser(argparse.ArgumentParser):
    """Usage errors in one line on stderr with exit code 2, like every other input error
    (argparse would print the whole usage first); subcommand parsers inherit this."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _text_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse ``type`` from an option's parser (its ``ValueError`` becomes a usage error)."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return convert


def train_options(config_cls: type[TrainConfig] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(flag, option name, argparse keyword arguments) of every option of ``config_cls``.

    Derived from the options' declarations (:data:`ml_math_nn.runs.options.OPTIONS`): the
    flag is the name with dashes; a switch (``bool``) is ``--x/--no-x``; numbers are typed;
    names from a fixed set or a registry are argparse choices (read now, so a newly
    registered optimiser or schedule is a choice without edits), except where a value
    may list several (``--activation``) or be unset (``--init``), which the config checks.
    The help is the option's, with its default.  Built when a command that takes training
    options runs, so that ``--help`` and ``--version`` load none of the library.
    """
    from .options import config_options

    out = []
    for opt in config_options(*([config_cls] if config_cls is not None else [])).values():
        kwargs: dict[str, Any] = {"help": opt.help_text()}
        if opt.metavar is not None:
            kwargs["metavar"] = opt.metavar
        if opt.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif opt.parse is not None:
            kwargs["type"] = _text_type(opt.parse)
        elif opt.kind in (int, float):
            kwargs["type"] = opt.kind
        elif opt.choices is not None and not opt.listed and not opt.optional:
            kwargs["choices"] = list(opt.choices())
        out.append((opt.flag, opt.name, kwargs))
    return out


TRAINING_ONLY = (
    "augment",
    "optimizer",
    "clip_norm",
    "schedule",
    "epochs",
    "batch_size",
    "early_stopping",
    "patience",
    "monitor",
    "checkpoint_every",
)
"""Options that change how a network is trained but not the network or its data, besides
those that fill an optimiser's or a schedule's parameters (:attr:`Option.goes_to`):
``gradcheck``, which checks one forward/backward pass, takes none of them."""


def _training_only(name: str) -> bool:
    from .options import config_options

    targets = config_options()[name].goes_to if name in config_options() else ()
    return name in TRAINING_ONLY or any(t.startswith(("optimizer.", "schedule.", "warmup.")) for t in targets)


def add_train_options(
    parser: argparse.ArgumentParser, config_cls: type[TrainConfig] | None = None, training: bool = True
) -> None:
    """The options of a training run (every :class:`TrainConfig` field) plus ``--config``;
    without ``training``, only those that shape the network and its data (not
    :data:`TRAINING_ONLY`, nor an optimiser's or schedule's; a ``--config`` file may still
    hold them).

    Flags default to "not given", so a config file's values survive unless overridden;
    use :func:`config_from_args` to resolve them.
    """
    from .options import TrainConfig

    defaults = (config_cls or TrainConfig)()
    parser.add_argument("--config", metavar="FILE", help="TOML file of training options; flags override it")
    title = "training options" if training else "network and data options"
    group = parser.add_argument_group(f"{title} (also settable in the --config file)")
    for flag, name, kwargs in train_options(config_cls):
        if not training and _training_only(name):
            continue
        default = getattr(defaults, name)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = kwargs.get("help", "")
        if "(default:" not in help_text:  # some say their default better than the field's None
            help_text += f" (default: {shown})"
        help_text = help_text.replace("%", "%%")
        group.add_argument(flag, dest=name, default=argparse.SUPPRESS, **{**kwargs, "help": help_text})


def config_from_args(args: argparse.Namespace, config_cls: type[TrainConfig] | None = None) -> TrainConfig:
    """Defaults, then the ``--config`` file, then the flags given on the command line."""
    from .options import TrainConfig, config_options, read_toml

    cls = config_cls or TrainConfig
    given = {name: getattr(args, name) for name in config_options(cls) if hasattr(args, name)}
    try:
        base = cls.from_mapping(read_toml(args.config), args.config) if getattr(args, "config", None) else cls()
        return base.merged(given)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _train_arguments(train: argparse.ArgumentParser) -> None:
    add_train_options(train)
    train.add_argument("--out", metavar="DIR", help="run directory (default: a fresh runs/<timestamp>-<dataset>)")
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its checkpoint (its config.toml, then any flags)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="let --out name a directory that holds a run: its files are removed first (without it, an error)",
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar, no per-epoch lines")
    train.add_argument("--verbose", action="store_true", help="also show debug messages")
    train.add_argument("--report", action="store_true", help="also write RUN_DIR/report.html at the end")
    train.set_defaults(handler=_train)


def _evaluate_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory holding model.npz/json")
    evaluate.add_argument(
        "--dataset",
        metavar="NAME",
        help="evaluate on all of this labelled data (csv:PATH, npz:PATH, ...) instead of the model's own test split",
    )
    evaluate.add_argument("--data-dir", metavar="DIR", help="folder holding the dataset's files")
    evaluate.add_argument("--label-column", metavar="COL", help="CSV label column, by name or index")
    evaluate.set_defaults(handler=_evaluate)


def _predict_arguments(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory holding model.npz/json")
    predict.add_argument("--input", required=True, metavar="FILE", help="CSV or NPZ (array X) of feature rows")
    predict.add_argument("--output", metavar="FILE", help="CSV to write (default: standard output)")
    predict.set_defaults(handler=_predict)


def _export_arguments(export: argparse.ArgumentParser) -> None:
    export.add_argument("--model", required=True, metavar="RUN_DIR", help="run directory holding model.npz/json")
    export.add_argument("--format", default="onnx", choices=["onnx"], help="file format (default: %(default)s)")
    export.add_argument("--output", required=True, metavar="FILE", help="file to write, e.g. model.onnx")
    export.set_defaults(handler=_export)


def _report_arguments(report: argparse.ArgumentParser) -> None:
    report.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by train")
    report.add_argument(
        "--out", metavar="FILE", help="HTML file (default: RUN_DIR/report.html; comparison.html for several runs)"
    )
    report.set_defaults(handler=_report)


def _gradcheck_arguments(gradcheck: argparse.ArgumentParser) -> None:
    from ..gradcheck import DEFAULT_TOL

    add_train_options(gradcheck, training=False)
    group = gradcheck.add_argument_group("gradient check")
    group.add_argument(
        "--samples", type=int, default=8, help="training rows in the checked batch (default: %(default)s)"
    )
    group.add_argument("--step", type=float, default=1e-6, help="finite-difference step h (default: %(default)s)")
    group.add_argument(
        "--tol", type=float, default=DEFAULT_TOL, help="largest relative error accepted (default: %(default)s)"
    )
    gradcheck.set_defaults(handler=_gradcheck)


def _sweep_arguments(sweep: argparse.ArgumentParser) -> None:
    sweep.add_argument("sweep_file", metavar="SWEEP.toml", help="the sweep: base options, what to vary, seeds, metric")
    sweep.add_argument(
        "--out", metavar="DIR", help="sweep directory, one run directory per trial (default: sweeps/<SWEEP>)"
    )
    sweep.add_argument(
        "--workers", type=int, metavar="N", help="worker processes of the embedded Dask cluster (default: one per CPU)"
    )
    sweep.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on this Dask scheduler, tcp://HOST:PORT (default: an embedded cluster)",
    )
    sweep.set_defaults(handler=_sweep)


def _bench_arguments(bench: argparse.ArgumentParser) -> None:
    # Everything after "bench" goes to the harness, whose own parser reads it (--help
    # included): main() hands it the arguments this parser does not know.
    bench.set_defaults(handler=_bench, forwards_unknown=True)


def _serve_arguments(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="folder of run directories (default: runs)"
    )
    serve.add_argument("--model", metavar="RUN_DIR", help="run whose model the explorer opens first")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 picks a free one)")
    serve.set_defaults(handler=_serve)


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], bool]] = {
    "train": ("train a network and write a run directory", _train_arguments, True),
    "evaluate": ("loss and accuracy (a regressor's R2, MSE, MAE) of a saved model", _evaluate_arguments, True),
    "predict": ("classes and class probabilities (or values, or labels) of feature rows", _predict_arguments, True),
    "export": ("write a model as an ONNX file that runs without this library", _export_arguments, True),
    "report": ("one self-contained HTML page of a run, or comparing several runs", _report_arguments, True),
    "gradcheck": (
        "check backprop against finite differences on the network train would build",
        _gradcheck_arguments,
        True,
    ),
    "serve": ("a live web dashboard of the runs and an explorer of their networks", _serve_arguments, True),
    "sweep": ("many training runs (grid or random search, seeds) on a Dask cluster", _sweep_arguments, True),
    "bench": (
        "speed against scikit-learn and PyTorch, side by side (BENCHMARKS.md; from a source checkout)",
        _bench_arguments,
        False,
    ),
}
"""Each command: its one-line help, the function that adds its arguments, and whether
argparse gives it a ``--help`` (the benchmark's harness answers its own)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``ml-math-nn``; only ``command``'s arguments are added (all when None,
    none when ``""``).

    Adding a command's arguments may load parts of the library (the training options list
    the registered optimisers, for instance), so ``ml-math-nn --help`` and ``--version``
    add none of them and load nothing beyond argparse.
    """
    parser = Parser(
        prog="ml-math-nn",
        description="Neural networks from first principles in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_arguments, own_help) in COMMANDS.items():
        subparser = sub.add_parser(name, help=help_text, description=help_text, add_help=own_help)
        if command is None or command == name:
            add_arguments(subparser)
    return parser


def _command(argv: Sequence[str]) -> str:
    """The command named in ``argv`` (the first argument that is not an option), or ``""``."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def _train(args: argparse.Namespace) -> int:
    import shlex

    from tqdm import tqdm

    from .progress import EpochProgress, end_summary, progress_enabled, setup_logging
    from .training import run_training

    if args.resume:
        if args.out or getattr(args, "config", None):
            raise UsageError("--resume continues RUN_DIR with its own config.toml: drop --out and --config")
        if args.overwrite:
            raise UsageError("--resume continues the run in RUN_DIR, --overwrite replaces a run: give one of them")
        args.config, args.out = str(Path(args.resume) / "config.toml"), args.resume
    config = config_from_args(args)
    setup_logging(args.verbose, args.quiet)
    bar = progress_enabled(args.quiet)
    # With a live bar the epoch lines go above it (tqdm.write); without, plain lines for logs.
    line: Callable[[str], None] = (lambda _: None) if args.quiet else tqdm.write if bar else print
    with EpochProgress(config.epochs, bar) as progress:
        result = run_training(
            config,
            args.out,
            line,
            callbacks=[progress],
            resume=bool(args.resume),
            on_batch=progress.on_batch if bar else None,
            html_report=args.report,
            overwrite=args.overwrite,
            command=shlex.join(["ml-math-nn", *args.argv]),
        )
    report = result.out_dir / "report.html" if args.report else None
    print("\n".join(end_summary(result.summary, result.out_dir, report)))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..data.datasets import load_dataset
    from ..train import evaluate
    from .builders import prepare_data, scale_targets, task_of
    from .options import TrainConfig
    from .persistence import load_model
    from .training import task_metrics

    model = load_model(args.model)
    task = task_of(model.network)
    if args.dataset:
        # A multi-label or regression model's data has its label columns where training had them.
        label_column = args.label_column or (
            model.meta.get("config", {}).get("label_column") if task != "classification" else None
        )
        ds = load_dataset(args.dataset, data_dir=args.data_dir, label_column=label_column, test_size=None, task=task)
        X, y, names = model.transform(ds.X_test, args.dataset), ds.y_test, ds.class_names
        where = args.dataset
    else:
        if "config" not in model.meta:  # e.g. saved by MLPClassifier.save: no run, so no split of its own
            saved_by = model.meta.get("estimator", "something other than ml-math-nn train")
            raise UsageError(
                f"--model {args.model}: saved by {saved_by}, not by a training run, so it has no test split "
                "of its own; give --dataset (e.g. --dataset csv:FILE) to evaluate it on labelled data"
            )
        config = TrainConfig.from_mapping(model.meta["config"], f"{args.model}/model.json")
        prepared = prepare_data(config)
        X, y, names, where = (
            prepared.X_test,
            prepared.y_test,
            prepared.dataset.class_names,
            f"{config.dataset} test split",
        )
    if task == "regression" and len(names) != len(model.class_names):
        raise UsageError(f"{where}: {len(names)} target columns, the model predicts {len(model.class_names)}")
    if task != "regression" and names != model.class_names:
        kinds = "classes" if task == "classification" else "labels"
        raise UsageError(f"{where}: {kinds} {names} do not match the model's {model.class_names}")
    if task == "classification":
        loss, acc = evaluate(model.network, X, y)
        print(f"{where}: {len(y)} samples  loss {loss:.4f}  accuracy {acc:.4f}")
        return 0
    if not args.dataset:  # the test targets as the dataset gives them (in their units), not standardised
        y = prepared.dataset.y_test
    scaled = scale_targets(model.target_scaler, y) if model.target_scaler is not None else y
    loss = evaluate(model.network, X, scaled)[0]
    m = task_metrics(model, task, X, y)
    if task == "regression":
        print(f"{where}: {len(y)} samples  loss {loss:.4f}  R2 {m['r2']:.4f}  MSE {m['mse']:.6g}  MAE {m['mae']:.6g}")
    else:
        print(
            f"{where}: {len(y)} samples  loss {loss:.4f}  subset accuracy {m['subset_accuracy']:.4f}  "
            f"macro F1 {m['f1_macro']:.4f}"
        )
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ..data.datasets import load_features
    from .persistence import load_model

    model = load_model(args.model)
    # A labelled CSV file (the training format) has its label column dropped; the config names it.
    label_column = model.meta.get("config", {}).get("label_column")
    X = load_features(args.input, n_features=model.network.n_in, label_column=label_column)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if model.network.loss.name != "softmax_cross_entropy":  # regression values, or 0/1 labels
        _predict_outputs(model, model.transform(X, args.input), writer)
        return _write_predictions(args, buf)
    probs = model.network.predict_proba(model.transform(X, args.input))
    writer.writerow(["row", "class", *(f"p_{name}" for name in model.class_names)])
    for i, (k, p) in enumerate(zip(probs.argmax(axis=1), probs, strict=True)):
        writer.writerow([i, model.class_names[k], *(f"{v:.6g}" for v in p)])
    return _write_predictions(args, buf)


def _predict_outputs(model: Any, X: Any, writer: Any) -> None:
    """A regression model's values (one column per output, in the targets' units), or a
    multi-label model's 0/1 labels and each label's probability ``p_<label>``."""
    names = model.class_names
    values = model.values(X)
    if model.network.loss.probabilistic:
        probs = model.network.predict_proba(X)
        writer.writerow(["row", *names, *(f"p_{name}" for name in names)])
        for i, (labels, p) in enumerate(zip(values, probs, strict=True)):
            writer.writerow([i, *(int(v) for v in labels), *(f"{v:.6g}" for v in p)])
    else:
        writer.writerow(["row", *names])
        for i, row in enumerate(values):
            writer.writerow([i, *(f"{v:.6g}" for v in row)])


def _write_predictions(args: argparse.Namespace, buf: io.StringIO) -> int:
    from .persistence import atomic_write

    if args.output:
        atomic_write(Path(args.output), lambda f: f.write(buf.getvalue().encode()))
    else:
        sys.stdout.write(buf.getvalue())
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..integrations.onnx_export import save_onnx
    from .persistence import load_model

    model = load_model(args.model)
    try:
        path = save_onnx(model, args.output)
    except ImportError as e:  # the onnx package, an optional dependency
        raise UsageError(str(e)) from None
    print(f"{args.format} model written to {path}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from ..results.report import write_report

    runs = [Path(d) for d in args.run_dirs]
    default = runs[0] / "report.html" if len(runs) == 1 else Path("comparison.html")
    out = write_report(runs, Path(args.out) if args.out else default)
    where = "" if out.is_absolute() else f" (in {Path.cwd()})"
    kind = "report" if len(runs) == 1 else f"comparison of {len(runs)} runs"
    print(f"{kind} written to {out}{where}")
    return 0


def _gradcheck(args: argparse.Namespace) -> int:
    from ..gradcheck import format_report
    from .builders import check_config

    config = config_from_args(args)
    table, ok = format_report(check_config(config, args.samples, args.step), args.tol)
    print(f"finite differences, h = {args.step:g}, on {args.samples} {config.dataset} training samples in float64")
    print(table)
    return 0 if ok else 1


def _serve(args: argparse.Namespace) -> int:
    from ..results.server import make_server

    server = make_server(args.runs_dir, args.host, args.port, args.model)
    if server.allowed_hosts is None:
        print(f"note: listening on {args.host}, reachable from other machines; the page has no login", file=sys.stderr)
    print(f"serving {args.runs_dir} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import default_out_dir, load_sweep, print_summary, run_sweep
    from .training import Interrupted

    if args.workers is not None and (args.workers < 1 or args.scheduler):
        raise UsageError("--workers N (>= 1) sizes the embedded cluster; with --scheduler the cluster has its own")
    sweep = load_sweep(args.sweep_file)
    out = args.out or default_out_dir(args.sweep_file)
    result = run_sweep(sweep, out, scheduler=args.scheduler, workers=args.workers)
    print_summary(result, sweep)
    if result.interrupted:
        raise Interrupted(
            f"sweep interrupted: {len(result.rows)} trials recorded in {result.out_dir}; "
            f"run the same command again to do the rest"
        )
    return 0


def _bench(args: argparse.Namespace) -> int:
    """Run the benchmark harness of the source checkout (benchmarks/harness.py) with ``args.args``.

    The harness is not part of the installed library: it imports scikit-learn's and
    PyTorch's networks, which the library never needs.
    """
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "benchmarks" / "harness.py"
    spec = importlib.util.spec_from_file_location("ml_math_nn_benchmark_harness", path)
    if not path.is_file() or spec is None or spec.loader is None:
        raise UsageError(
            "bench: the benchmark harness lives in the source checkout (benchmarks/harness.py), "
            "and this installation has none; run `make bench` in a clone of the repository"
        )
    harness = sys.modules.get(spec.name)
    if harness is None:
        harness = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(harness)
    return int(harness.main(args.args, prog="ml-math-nn bench"))


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args, unknown = parser.parse_known_args(argv)
    args.argv = argv
    if getattr(args, "forwards_unknown", False):
        args.args = unknown
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("ml-math-nn: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from ..train import TrainingDiverged
        from .rundir import RunFailed
        from .training import Interrupted

        if isinstance(e, Interrupted):
            print(f"ml-math-nn: {e}", file=sys.stderr)
            return 130
        if args.debug:
            raise

        if isinstance(e, TrainingDiverged):
            print(f"ml-math-nn: training diverged: {e}", file=sys.stderr)
            return 1
        if isinstance(e, RunFailed):
            print(f"ml-math-nn: failed: {e}", file=sys.stderr)
            return 1
        if isinstance(e, (ValueError, OSError)):
            print(f"ml-math-nn: error: {e}", file=sys.stderr)
            return 2
        print(f"ml-math-nn: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
