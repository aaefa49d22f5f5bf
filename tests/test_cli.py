"""The ``sktelescope`` command line: version, light imports, and one-line errors (exit 2)."""

import argparse
import errno
import gzip
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import run_python

from sktelescope import __version__
from sktelescope._cores import available_cores
from sktelescope.bench import ResultStore
from sktelescope.cli import main
from sktelescope.datasets import add_folder_dataset

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tabular"
FAST = ["--models", "hgb", "--budget", "1", "--splits", "1", "--quick", "--no-lens"]
FAST += ["--no-progress", "--n-jobs", "1"]


def _one_error_line(capsys) -> str:
    """The run's stderr, checked to be a single error line without a traceback."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("sktelescope bench: error: "), err
    return err


def _toy_folder(folder, **entry_changes):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "y": rng.normal(size=60)})
    file = add_folder_dataset(folder, "reg/toy", frame, "regression")
    if entry_changes:
        manifest = json.loads((folder / "MANIFEST.json").read_text())
        manifest["datasets"][0].update(entry_changes)
        (folder / "MANIFEST.json").write_text(json.dumps(manifest))
    return file


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"sktelescope {__version__}\n"


@pytest.mark.parametrize("argv", [["--help"], ["bench", "--help"], ["--version"]])
def test_help_and_version_do_not_import_the_benchmark(argv):
    code = (
        "import sys\nfrom sktelescope.cli import main\ntry:\n"
        f"    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('sktelescope.bench')))"
    )
    done = run_python("-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_bench_help_shows_the_flags_that_refit(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--refit-bad-rows refit the jobs of bad rows instead of stopping" in text
    assert "--retry-errors refit the jobs whose rows are errors" in text


def test_importing_the_cli_imports_no_torch_and_no_estimator():
    done = run_python(
        "-c",
        "import sys, sktelescope.cli\n"
        "print([m for m in ('torch', 'sktelescope._mlp') if m in sys.modules])",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-train", "-5", "argument --max-train: expected an integer of at least 1, got '-5'"),
        ("--max-train", "0", "argument --max-train: expected an integer of at least 1"),
        ("--budget", "0", "argument --budget: expected an integer of at least 1"),
        ("--splits", "two", "argument --splits: expected an integer of at least 1, got 'two'"),
        ("--n-jobs", "0", "argument --n-jobs: expected a positive number of parallel jobs or -1"),
        ("--models", ",", "argument --models: expected comma-separated names, got ','"),
        ("--datasets", " , ", "argument --datasets: expected comma-separated names"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as info:
        main(["bench", option, value, "--out", str(tmp_path / "out")])
    assert info.value.code == 2
    assert _one_error_line(capsys).startswith(f"sktelescope bench: error: {message}")
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_or_inside_one(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["bench", *FAST, "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in _one_error_line(capsys)
    assert main(["bench", *FAST, "--out", str(tmp_path / "file" / "out")]) == 2
    assert "Cannot create the results folder" in _one_error_line(capsys)


def test_out_that_cannot_be_written(tmp_path, capsys, monkeypatch):
    out = tmp_path / "read-only"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK):  # root writes anywhere: make the lock file's creation fail
        import sktelescope.bench._lock as lock_module

        real_open = os.open

        def refuse(path, *args, **kwargs):
            if str(path).endswith(".lock"):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(lock_module.os, "open", refuse)
    try:
        assert main(["bench", *FAST, "--out", str(out)]) == 2
    finally:
        out.chmod(0o755)
    err = _one_error_line(capsys)
    assert "Cannot write to the results folder" in err and "Permission denied" in err


def _truncate(file) -> None:
    file.write_bytes(file.read_bytes()[:100])


def _gunzip(file) -> None:
    file.write_bytes(gzip.decompress(file.read_bytes()))


@pytest.mark.parametrize(
    ("damage", "entry", "message"),
    [
        (_truncate, {}, "does not match the sha256 in the manifest"),
        (_truncate, {"sha256": None}, "cannot be read: it is truncated"),
        (_gunzip, {"sha256": None}, "cannot be read: it is not gzip-compressed"),
        (None, {"file": "../toy.csv.gz"}, "outside the data folder"),
        (None, {"categorical_columns": "a"}, "expected a list of column names"),
        (None, {"task": "binary"}, "is continuous .* but the task is 'binary'"),
    ],
)
def test_data_problems_are_one_line_and_exit_2(tmp_path, capsys, damage, entry, message):
    file = _toy_folder(tmp_path / "data", **entry)
    if damage is not None:
        damage(file)
    argv = ["bench", *FAST, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert re.search(message, _one_error_line(capsys))
    assert not (tmp_path / "o" / "results.csv").exists()


def test_manifest_entry_that_is_not_an_object(tmp_path, capsys):
    _toy_folder(tmp_path)
    manifest = json.loads((tmp_path / "MANIFEST.json").read_text())
    manifest["datasets"].insert(0, ["reg/toy", "toy.csv.gz"])
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    assert main(["bench", "--list", "--data-dir", str(tmp_path)]) == 2
    assert "entry 1 of \"datasets\" is ['reg/toy', 'toy.csv.gz'] (a list)" in _one_error_line(
        capsys
    )


def test_a_folder_with_only_extra_datasets_runs_them_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=60), "y": rng.normal(size=60)})
    add_folder_dataset(tmp_path / "data", "reg/toy", frame, "regression", tier="extra")
    assert main(["bench", *FAST, "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "1 fit run" in out and "| reg/toy | r2 |" in out
    assert err.startswith("sktelescope: note: Data folder") and "running all 1" in err


def test_list_and_clear_errors(tmp_path, capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert "hgb" in out and "sklearn:diabetes" in out
    assert main(["bench", "--models", "nope", "--out", str(tmp_path)]) == 2
    assert "Unknown model 'nope'" in _one_error_line(capsys)
    assert main(["bench", "--data-dir", str(tmp_path / "missing")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert main(["bench", "--datasets", "sklearn:nope", "--out", str(tmp_path)]) == 2
    assert "Unknown dataset" in _one_error_line(capsys)


def test_runs_the_embedded_default(tmp_path, capsys):
    assert main(["bench", *FAST, "--out", str(tmp_path)]) == 0
    assert "sklearn:digits_3v5" in capsys.readouterr().out
    assert len(ResultStore(tmp_path).read_rows()) == 3
    assert not (tmp_path / "lens.csv").exists()


@pytest.mark.skipif(
    not (SHARED / "MANIFEST.json").is_file(),
    reason="the shared data folder ../shared/data/tabular is absent",
)
def test_on_the_shared_folder(tmp_path):
    argv = ["bench", *FAST, "--data-dir", str(SHARED), "--datasets", "compas-two-years,cpu_act"]
    assert main([*argv, "--max-train", "1000", "--out", str(tmp_path)]) == 0
    rows = ResultStore(tmp_path).read_rows()
    assert {r["dataset"] for r in rows} == {"clf_cat/compas-two-years", "reg_num/cpu_act"}
    assert all(r["status"] == "ok" and int(r["n_train"]) <= 1000 for r in rows)
    sources = json.loads((tmp_path / "run.json").read_text())["datasets"]
    assert sources["reg_num/cpu_act"].startswith("folder:reg_num__cpu_act.csv.gz#sha256:")


def test_ray_backend_without_ray_says_how_to_install(tmp_path, capsys):
    try:
        import ray  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("Ray is installed: the missing-Ray message cannot be shown")
    assert main(["bench", *FAST, "--backend", "ray", "--out", str(tmp_path)]) == 2
    assert "needs Ray" in _one_error_line(capsys)


def _bench_options():
    from sktelescope.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [a for a in sub.choices["bench"]._actions if a.option_strings and a.dest != "help"]


def test_help_shows_every_default():
    options = _bench_options()
    valued = [a for a in options if not isinstance(a, argparse._StoreTrueAction)]
    assert len(valued) >= 12
    missing = [a.option_strings[0] for a in valued if "default" not in (a.help or "")]
    assert not missing, f"--help says nothing of these options' defaults: {missing}"
    (n_jobs,) = [a for a in options if a.dest == "n_jobs"]
    assert n_jobs.default == available_cores() and f"default: {available_cores()}" in n_jobs.help


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["bench", "--njobs", "2"], "sktelescope bench --help"),  # (--n-job would abbreviate)
        (["bench", "--budget", "2", "extra"], "sktelescope bench --help"),
        (["--nope"], "sktelescope --help"),
    ],
)
def test_an_unknown_option_points_at_its_commands_help(tmp_path, monkeypatch, capsys, argv, hint):
    monkeypatch.chdir(tmp_path)  # were the arguments accepted, the run would write here
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert "unrecognized arguments" in err and err.endswith(f"(see `{hint}`)\n")
    assert not list(tmp_path.iterdir())


def test_a_bare_sklearn_dataset_name_runs(tmp_path, capsys):
    assert main(["bench", *FAST, "--datasets", "diabetes", "--out", str(tmp_path)]) == 0
    assert "sklearn:diabetes" in (tmp_path / "results.csv").read_text()
