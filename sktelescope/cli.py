"""The ``sktelescope`` command line (also ``python -m sktelescope``).

Examples
--------
``sktelescope bench`` runs the embedded default (scikit-learn's bundled datasets)::

    sktelescope bench --budget 3 --splits 2
    sktelescope bench --data-dir ../shared/data/tabular --datasets cpu_act,pol --n-jobs 2
    sktelescope bench --list --data-dir ../shared/data/tabular

Exit status: 0 when every fit succeeded, 1 when some failed (they are listed, and in
``summary.md``; a job whose worker died on every try is such a failure), 2 for a usage, data,
results-folder problem (a bad row of ``results.csv`` included: ``--refit-bad-rows`` refits it) or
a cluster that does not start (one line on stderr), 130 when interrupted (Ctrl-C; the rows
written so far are kept and a rerun resumes).

This module imports nothing heavy: ``--help`` and ``--version`` load neither torch, the
estimators nor the benchmark; ``bench`` imports them when it runs.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from sktelescope import __version__
from sktelescope._cores import available_cores

__all__ = ["build_parser", "main"]

EXIT_FAILED_FITS, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130

#: The kinds of file a benchmark run writes into its results folder (the lock file aside).
_OUTPUTS = (".csv", ".md", ".png")


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), exit status 2.

    An option no parser knows is reported by the command's own parser, so that the message
    points at that command's help (``sktelescope bench --help``), where its options are.
    """

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._command_parser(parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _command_parser(self, parsed) -> argparse.ArgumentParser:
        """The subcommand's parser that ``parsed`` went through, else this one."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return action.choices.get(getattr(parsed, action.dest, None), self)
        return self


def _csv_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated names, got {text!r}; leave the option out for the default"
        )
    return names


def _count(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected an integer of at least {minimum}, got {text!r}"
            )
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a positive number of parallel jobs or -1 (all cores), got {text!r}"
        )
    return value


def _bench_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="cross-validated tabular benchmark: networks versus boosted trees",
        description="Random search for every model on every dataset and split; results stream "
        "to OUT/results.csv (a rerun resumes), then OUT/summary.md and PNG plots. Exit status: "
        "0 all fits succeeded, 1 some failed, 2 usage, data, results-folder or cluster error, "
        "130 interrupted.",
    )
    _data_options(p.add_argument_group("data"))
    _protocol_options(p.add_argument_group("protocol"))
    _output_options(p.add_argument_group("output and scale"))
    p.add_argument("--list", action="store_true", help="list datasets and models, then exit")
    return p


def _data_options(data) -> None:
    data.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder of gzip CSVs with a MANIFEST.json, e.g. ../shared/data/tabular (default: "
        "none: scikit-learn's bundled datasets)",
    )
    data.add_argument(
        "--datasets",
        type=_csv_list,
        metavar="NAMES",
        help="comma-separated: folder names (cpu_act, clf_num/electricity), "
        "core|extra|all, openml:ID, suite:grinsztajn, sklearn:NAME (or a bare NAME: diabetes) "
        "(default: the folder's core set, else the embedded sklearn sets)",
    )
    data.add_argument(
        "--tier",
        choices=("core", "extra", "all"),
        default="core",
        help="folder datasets used when --datasets is not given (default: core; all of them, "
        "with a note, when the folder has none of that tier)",
    )


def _protocol_options(run) -> None:
    run.add_argument(
        "--models",
        type=_csv_list,
        metavar="NAMES",
        help="comma-separated model names (default: every installed model but realmlp, "
        "which is slow: name it to include it)",
    )
    run.add_argument(
        "--protocol",
        choices=("suite", "paper"),
        default="suite",
        help="suite: the models, budget and splits given here; paper: the paper's Case 2 "
        "setup (its regression datasets in --data-dir, paper_mlp vs sklearn_gbt, 25 "
        "configurations, 5 disjoint test folds, 2 network seeds, per-step kernel) "
        "(default: suite)",
    )
    run.add_argument(
        "--budget",
        type=_count(1),
        default=None,
        metavar="N",
        help="random-search configurations per model; the first is the default "
        "(default: 5; 25 with --protocol paper)",
    )
    run.add_argument(
        "--splits",
        type=_count(1),
        default=None,
        metavar="N",
        help="repeated random splits, or K with --kfold (default: 3; 5 folds with "
        "--protocol paper)",
    )
    run.add_argument(
        "--kfold",
        action="store_true",
        help="use K-fold test sets, K = --splits (default: repeated random splits)",
    )
    run.add_argument(
        "--max-train",
        type=_count(1),
        default=10_000,
        metavar="N",
        help="training rows cap (default: 10000, the benchmark's 'medium')",
    )
    run.add_argument("--seed", type=int, default=0, help="base seed (default: 0)")
    run.add_argument(
        "--no-lens",
        action="store_true",
        help="skip the lens step (after the fits, per dataset x split: the best-validation "
        "telescoping_mlp and trees refitted, their kernel-extremity ratios and loss gap on test "
        "sets with a growing share of irregular inputs, in OUT/lens.csv; the verdict in "
        "OUT/summary.md, OUT/datasets.csv and OUT/lens_verdict.png)",
    )
    run.add_argument(
        "--lens-trees",
        metavar="NAME",
        help="the trees model the lens compares the network with; must be among --models "
        "(default: sklearn_gbt, the paper's, when run; else the first trees model of --models)",
    )
    run.add_argument(
        "--lens-network",
        metavar="NAMES",
        type=_csv_list,
        help="comma-separated telescoping networks the lens measures, each among --models: the "
        "verdict is the first one's, the others' effects are shown beside it (e.g. "
        "plain_mlp,embedded_mlp; default: telescoping_mlp, paper_mlp under --protocol "
        "paper)",
    )
    run.add_argument(
        "--lens-kernel",
        choices=("step", "stage"),
        default=None,
        help="the lens's network kernel: step, the paper's per-step kernel (batch mask, step "
        "size, the optimizer's preconditioner); stage, the plain kernel at each recorded "
        "stage, cheaper (default: step)",
    )
    run.add_argument(
        "--quick", action="store_true", help="cap epochs and trees: a smoke test, not a benchmark"
    )
    run.add_argument(
        "--retry-errors",
        action="store_true",
        help="refit the jobs whose rows are errors (the new row replaces the old one)",
    )
    run.add_argument(
        "--refit-bad-rows",
        action="store_true",
        help="refit the jobs of bad rows instead of stopping: a row of OUT/results.csv or "
        "OUT/lens.csv that is not its job's (another run's seed or params, a damaged score, a "
        "key re-typed as 0.0) moves to OUT/results.csv.refused (OUT/lens.csv.refused) and its "
        "job runs again (default: stop with exit status 2, naming the row)",
    )


def _output_options(scale) -> None:
    scale.add_argument(
        "--out",
        default="sktelescope-results",
        metavar="DIR",
        help="results folder (default: ./sktelescope-results)",
    )
    cores = available_cores()
    scale.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=cores,
        metavar="N",
        help="jobs at once (joblib n_jobs; -1: all cores); each gets cores // N threads for "
        f"every library, at least 1 (default: {cores}, the cores this process may use: its CPU "
        "affinity, capped by a cgroup quota)",
    )
    scale.add_argument(
        "--backend",
        choices=("loky", "dask", "ray"),
        default="loky",
        help="joblib backend (default: loky, this machine)",
    )
    scale.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://host:8786 (default: a local "
        "cluster with --n-jobs workers)",
    )
    scale.add_argument(
        "--ray-address", metavar="ADDRESS", help="Ray cluster address (default: start Ray locally)"
    )
    scale.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sktelescope`` command.

    Examples
    --------
    >>> build_parser().parse_args(["bench", "--budget", "2"]).budget
    2
    """
    parser = _OneLineParser(
        prog="sktelescope", description="sktelescope: MLPs seen as boosted ensembles."
    )
    parser.add_argument("--version", action="version", version=f"sktelescope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _bench_parser(sub)
    return parser


def _list(args) -> None:
    from sktelescope.bench import MODELS
    from sktelescope.datasets import SKLEARN_DATASETS, resolve_datasets

    print("Models (name, family, installed):")
    for spec in MODELS.values():
        mark = "yes" if spec.is_available() else "no "
        print(f"  {spec.name:<16} {spec.family:<8} {mark}  {spec.description}")
    print("\nEmbedded datasets (no download):")
    for name, task in SKLEARN_DATASETS.items():
        print(f"  sklearn:{name:<22} {task}")
    print("\nOpenML (needs internet or scikit-learn's cache): openml:ID, suite:grinsztajn")
    if args.data_dir:
        print(f"\nData folder {args.data_dir}:")
        for ref in resolve_datasets(["all"], data_dir=args.data_dir):
            print(f"  {ref.name:<44} {ref.task:<11} {ref.description}")


def _bench(args) -> int:
    from sktelescope.bench import run_benchmark

    address = args.scheduler if args.backend == "dask" else args.ray_address
    result = run_benchmark(
        args.datasets,
        args.models,
        data_dir=args.data_dir,
        tier=args.tier,
        budget=args.budget,
        n_splits=args.splits,
        kfold=args.kfold,
        out=args.out,
        n_jobs=args.n_jobs,
        backend=args.backend,
        address=address,
        seed=args.seed,
        quick=args.quick,
        max_train=args.max_train,
        progress=not args.no_progress,
        lens=not args.no_lens,
        lens_trees=args.lens_trees,
        retry_errors=args.retry_errors,
        refit_bad_rows=args.refit_bad_rows,
        protocol=args.protocol,
        lens_kernel=args.lens_kernel,
        lens_networks=args.lens_network,
    )
    print(
        f"\n{_plural(result.n_run, 'fit')} run, {result.n_skipped} already in {result.csv_path} "
        f"(of {result.n_jobs_total}); {result.n_failed} failed."
    )
    if result.lens_path is not None:
        done = result.n_lens_total - result.n_lens_run
        print(
            f"{_plural(result.n_lens_run, 'lens job')} run, {done} already in {result.lens_path}; "
            f"{result.n_lens_failed} failed."
        )
    print()
    print(result.summary)
    written = sorted(path.name for path in result.out.glob("*.*") if path.suffix in _OUTPUTS)
    print(f"Results: {result.out}/ ({', '.join(written)})")
    if result.n_failed or result.n_lens_failed:
        _print_failures(result)
        return EXIT_FAILED_FITS
    return 0


def _print_failures(result) -> None:
    err = sys.stderr
    lens = f" and {_plural(result.n_lens_failed, 'lens job')}" if result.n_lens_failed else ""
    print(
        f"\n{_plural(result.n_failed, 'fit')}{lens} failed (status=error in {result.out}; see "
        "the Failures section of summary.md). Rerun the same command with --retry-errors to "
        "refit them. First error per model x dataset:",
        file=err,
    )
    for row in result.failures.to_dict("records"):
        first = row["first_error"]
        first = first if len(first) <= 160 else first[:159] + "…"
        print(f"  {row['model']} on {row['dataset']}: {row['failed']} failed; {first}", file=err)


def _plural(n: int, noun: str) -> str:
    """``"1 fit"``, ``"2 fits"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"sktelescope: note: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``sktelescope`` command; returns the exit status.

    Examples
    --------
    >>> main(["bench", "--list"])  # doctest: +SKIP
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            if args.list:
                _list(args)
                return 0
            return _bench(args)
        except KeyboardInterrupt as exc:
            print(f"sktelescope bench: {_interrupted(exc, args.out)}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (ValueError, ImportError, OSError) as exc:
            print(f"sktelescope bench: error: {' '.join(str(exc).split())}", file=sys.stderr)
            return EXIT_USAGE


def _interrupted(exc: KeyboardInterrupt, out: str) -> str:
    if hasattr(exc, "n_written"):  # the benchmark's BenchmarkInterrupted, with its row count
        return str(exc)
    return (
        f"Interrupted: the rows written so far to {out} are kept; rerun the same command to resume."
    )
