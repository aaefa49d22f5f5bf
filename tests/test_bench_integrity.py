"""Integrity of ``sktelescope bench``: Ctrl-C, damaged or foreign results folders, concurrent
runs, failed fits, spreadsheet-safe and path-free outputs, and the thread policy."""

import csv
import errno
import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sktelescope.bench import BenchmarkInterrupted, ResultStore, run_benchmark
from sktelescope.bench._backends import job_environment, threads_per_job
from sktelescope.bench._lock import ResultsLock
from sktelescope.bench._models import available_models
from sktelescope.cli import main
from sktelescope.datasets import add_folder_dataset

FAST = dict(budget=1, n_splits=1, quick=True, progress=False, lens=False, report=False)
DIABETES = ["sklearn:diabetes"]
needs_torch = pytest.mark.skipif(
    "telescoping_mlp" not in available_models(), reason="telescoping_mlp needs torch"
)


def _data_lines(out: Path, name: str = "results.csv") -> list[dict]:
    """Every data row of the CSV as written (no de-duplication, no unescaping)."""
    with open(out / name, newline="") as fh:
        return list(csv.DictReader(fh))


def _nan_folder(folder: Path, name: str = "clf/nan") -> Path:
    """A binary dataset with NaN in one feature: HistGradientBoosting fits it, networks fail."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    X[::7, 0] = np.nan
    frame = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": X[:, 1] > 0})
    add_folder_dataset(folder, name, frame, "binary")
    return folder


# --------------------------------------------------------------------------- Ctrl-C


def _interrupt_at_step_3(monkeypatch, model: str) -> None:
    """Make the network's training loop see Ctrl-C at its third optimizer step."""
    if model == "telescoping_mlp":
        from sktelescope._core.training import Trainer

        target, original = Trainer, Trainer._train_step
        name = "_train_step"
    elif model == "sklearn_mlp":  # scikit-learn catches it and only warns
        from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron

        target, original = BaseMultilayerPerceptron, BaseMultilayerPerceptron._backprop
        name = "_backprop"
    else:
        skorch = pytest.importorskip("skorch")
        target, original = skorch.NeuralNet, skorch.NeuralNet.train_step
        name = "train_step"
    calls = []

    def step(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(target, name, step)


@pytest.mark.parametrize(
    "network",
    ["telescoping_mlp", "sklearn_mlp", pytest.param("skorch_mlp", marks=pytest.mark.slow)],
)
def test_ctrl_c_in_a_network_fit_stops_the_run_and_writes_no_ok_row(
    tmp_path, monkeypatch, capsys, network
):
    if network not in available_models():
        pytest.skip(f"{network} is not installed")
    _interrupt_at_step_3(monkeypatch, network)
    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", f"hgb,{network}"]
    argv += ["--budget", "1", "--splits", "1", "--quick", "--no-lens", "--no-progress"]
    argv += ["--n-jobs", "1"]  # in this process, where the monkeypatch interrupts the fit
    assert main([*argv, "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == (
        f"sktelescope bench: Interrupted: this run wrote 1 row to {tmp_path}, kept there; "
        "rerun the same command to resume."
    )
    assert [r["model"] for r in _data_lines(tmp_path)] == ["hgb"]  # no half-trained row
    assert not (tmp_path / ".lock").exists()
    monkeypatch.undo()
    res = run_benchmark(DIABETES, ["hgb", network], out=tmp_path, **FAST)
    assert (res.n_run, res.n_skipped, res.n_failed) == (1, 1, 0)
    assert {r["model"]: r["status"] for r in _data_lines(tmp_path)} == {"hgb": "ok", network: "ok"}


@pytest.mark.parametrize(
    "stop",
    [
        pytest.param(lambda: warnings.warn("Training interrupted by user.", UserWarning),
                     id="scikit-learn's warning"),
        pytest.param(lambda: sys.exit(1), id="sys.exit, as PyTorch Lightning on Ctrl-C"),
        pytest.param(lambda: sys.exit(), id="sys.exit(), as Lightning on SIGTERM"),
    ],
)  # fmt: skip
def test_a_fit_that_ends_itself_on_ctrl_c_is_an_interruption(stop):
    with pytest.raises(KeyboardInterrupt), job_environment(1):
        stop()


def test_other_library_warnings_stay_silent_in_a_job():
    with job_environment(1):
        warnings.warn("some library's note", UserWarning)


@needs_torch
def test_the_python_api_raises_benchmark_interrupted(tmp_path, monkeypatch):
    _interrupt_at_step_3(monkeypatch, "telescoping_mlp")
    with pytest.raises(BenchmarkInterrupted) as info:
        run_benchmark(DIABETES, ["telescoping_mlp"], out=tmp_path, **FAST)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.n_written == 0
    assert _data_lines(tmp_path) == []


# --------------------------------------------------------------------------- the results file


def test_a_last_row_without_newline_is_refit_not_lost(tmp_path):
    run_benchmark(DIABETES, ["hgb"], out=tmp_path, **FAST)
    csv_path = tmp_path / "results.csv"
    csv_path.write_text(csv_path.read_text().rstrip("\n"))  # a hand edit dropped the newline
    with pytest.warns(UserWarning, match="without its newline .* its job runs again"):
        res = run_benchmark(DIABETES, ["hgb"], out=tmp_path, **{**FAST, "budget": 2})
    assert (res.n_run, res.n_skipped) == (2, 0)
    rows = _data_lines(tmp_path)
    assert sorted(r["config"] for r in rows) == ["0", "1"]
    assert all(r["status"] == "ok" for r in rows) and csv_path.read_text().endswith("\n")
    assert "sklearn:diabetes,0,hgb,0" in (tmp_path / "results.csv.partial").read_text()


def test_a_results_folder_without_run_json_is_refused(tmp_path):
    run_benchmark(DIABETES, ["hgb"], out=tmp_path, **FAST)
    before = (tmp_path / "results.csv").read_text()
    (tmp_path / "run.json").unlink()
    with pytest.raises(ValueError, match="holds results.csv but no run.json.*another --out"):
        run_benchmark(DIABETES, ["hgb"], out=tmp_path, seed=1, **FAST)
    assert (tmp_path / "results.csv").read_text() == before
    assert not (tmp_path / "run.json").exists()


def test_a_second_run_into_a_busy_folder_is_refused_and_a_stale_lock_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    lock = {"pid": holder.pid, "host": socket.gethostname(), "started": 0}
    (tmp_path / ".lock").write_text(json.dumps(lock))
    try:
        with pytest.raises(ValueError, match=f"Another sktelescope bench run .*{holder.pid}"):
            run_benchmark(DIABETES, ["hgb"], out=tmp_path, **FAST)
        assert not (tmp_path / "results.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    with pytest.warns(UserWarning, match=f"stale lock .* process {holder.pid}"):
        res = run_benchmark(DIABETES, ["hgb"], out=tmp_path, **FAST)
    assert res.n_run == 1 and not (tmp_path / ".lock").exists()


def test_a_lock_held_on_another_host_is_never_taken_over(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere"}))
    with pytest.raises(ValueError, match="host 'elsewhere'.*delete"):
        ResultsLock(tmp_path).acquire()
    assert (tmp_path / ".lock").exists()


def test_a_lock_that_cannot_be_written_is_not_left_behind(tmp_path, monkeypatch):
    import sktelescope.bench._lock as lock_module

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock_module.json, "dump", full)
    with pytest.raises(OSError, match="Cannot write to the results folder .*No space left"):
        ResultsLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()  # an empty lock would block the next run


def test_disk_full_while_writing_a_row_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    import sktelescope.bench._store as store_module

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full)
    argv = ["bench", "--models", "hgb", "--budget", "1", "--splits", "1", "--quick"]
    assert main([*argv, "--no-lens", "--no-progress", "--n-jobs", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("sktelescope bench: error: Cannot write to ")
    assert "No space left on device" in err and "rerun the same command to resume" in err
    assert not (tmp_path / ".lock").exists()


def test_disk_full_while_drawing_the_plots_is_one_line_and_leaves_no_partial_png(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    def full(self, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    argv = ["bench", "--models", "hgb", "--budget", "1", "--splits", "1", "--quick"]
    assert main([*argv, "--no-lens", "--no-progress", "--n-jobs", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"sktelescope bench: error: Cannot write the report into '{tmp_path}'")
    assert "No space left on device" in err and "rerun the same command" in err
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / ".lock").exists()


# --------------------------------------------------------------------------- failures


@needs_torch
def test_failed_fits_are_counted_kept_in_the_table_and_exit_1(tmp_path, capsys):
    data = _nan_folder(tmp_path / "data")
    argv = ["bench", "--data-dir", str(data), "--models", "hgb,telescoping_mlp", "--quick"]
    argv += ["--budget", "1", "--splits", "1", "--no-lens", "--no-progress", "--n-jobs", "1"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    out, err = capsys.readouterr()
    assert "1 fits run" not in out and "2 fits run, 0 already" in out and "1 failed." in out
    assert "telescoping_mlp on clf/nan: 1 failed; ValueError: Input X contains NaN" in err
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| dataset | metric | hgb | telescoping_mlp |" in summary
    assert "| clf/nan | accuracy | **" in summary and "| ✗ 1 failed |" in summary
    assert "## Failures" in summary and "| fit | telescoping_mlp | clf/nan | 1 |" in summary
    # A rerun does not pretend the failure went away.
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1


def test_retry_errors_refits_error_rows_and_the_new_row_replaces_the_old(tmp_path, monkeypatch):
    import sktelescope.bench._jobs as jobs_module

    def broken(*args, **kwargs):
        raise RuntimeError("the cluster lost this worker")

    monkeypatch.setattr(jobs_module, "build_model", broken)
    res = run_benchmark(DIABETES, ["hgb"], out=tmp_path, **FAST)
    assert (res.n_run, res.n_failed) == (1, 1)
    assert "the cluster lost this worker" in res.failures["first_error"].iloc[0]
    monkeypatch.undo()
    res = run_benchmark(DIABETES, ["hgb"], out=tmp_path, **FAST)
    assert (res.n_run, res.n_failed) == (0, 1)  # error rows are not silently done...
    res = run_benchmark(
        DIABETES, ["hgb"], out=tmp_path, retry_errors=True, **{**FAST, "report": True}
    )
    assert (res.n_run, res.n_failed) == (1, 0) and res.failures.empty  # ...but retried on request
    assert [r["status"] for r in _data_lines(tmp_path)] == ["error", "ok"]
    assert [r["status"] for r in ResultStore(tmp_path).read_rows()] == ["ok"]
    assert "Failures" not in (tmp_path / "summary.md").read_text()
    assert len(pd.read_csv(tmp_path / "best.csv")) == 1


def test_a_job_lost_with_its_worker_is_a_counted_failure_and_the_run_goes_on(
    tmp_path, monkeypatch, capsys, one_openmp_thread
):
    """How the run records what the backend reports lost (the real Ray and Dask clusters
    losing a worker are in test_bench_faults.py): one failed row, the others written, the
    summary's failures, exit 1; --retry-errors refits it."""
    import contextlib

    import sktelescope.bench._run as run_module

    @contextlib.contextmanager
    def losing_the_first(func, todo, backend, n_jobs, address=None, on_lost=None):
        yield iter([on_lost(todo[0], RuntimeError("worker died")), *map(func, todo[1:])])

    monkeypatch.setattr(run_module, "parallel_results", losing_the_first)
    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", "hgb", "--quick", "--budget",
            "1", "--splits", "2", "--no-lens", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "2 fits run, 0 already" in out and "1 failed." in out
    assert "hgb on sklearn:diabetes: 1 failed; WorkerLost: the worker process running" in err
    assert "| fit | hgb | sklearn:diabetes | 1 |" in (tmp_path / "summary.md").read_text()
    assert [r["status"] for r in _data_lines(tmp_path)] == ["error", "ok"]
    monkeypatch.undo()
    assert main([*argv, "--retry-errors"]) == 0


# --------------------------------------------------------------------------- safe outputs


@needs_torch
def test_names_are_escaped_and_no_local_path_is_written(tmp_path):
    name = "=HYPERLINK(1)|@b"
    data = _nan_folder(tmp_path / "data", name)
    out = tmp_path / "out"
    kwargs = {**FAST, "report": True, "data_dir": data, "out": out}
    res = run_benchmark(None, ["hgb", "telescoping_mlp"], **kwargs)
    assert (res.n_run, res.n_failed) == (2, 1)
    assert {r["dataset"] for r in _data_lines(out)} == {"'" + name}  # text, not a formula
    assert pd.read_csv(out / "best.csv")["dataset"].tolist() == ["'" + name]
    assert "| =HYPERLINK(1)\\|@b | accuracy |" in (out / "summary.md").read_text()
    assert run_benchmark(None, ["hgb", "telescoping_mlp"], **kwargs).n_run == 0  # resumes
    error = next(r["error"] for r in _data_lines(out) if r["status"] == "error")
    assert "Input X contains NaN" in error and ".py:" in error
    for file in ("results.csv", "run.json", "summary.md", "best.csv"):
        text = (out / file).read_text()
        assert str(tmp_path) not in text and "site-packages" not in text, file
        assert str(Path(__file__).parents[1]) not in text, file
    source = json.loads((out / "run.json").read_text())["datasets"][name]
    assert source.startswith("folder:_HYPERLINK_1___b.csv.gz#sha256:")


# --------------------------------------------------------------------------- arguments, threads


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_train": 0}, r"max_train \(--max-train\) must be an integer of at least 1"),
        ({"budget": 0}, r"budget \(--budget\) must be"),
        ({"n_splits": -1}, r"n_splits \(--splits\) must be"),
        ({"n_jobs": 0}, r"n_jobs \(--n-jobs\) must be a non-zero integer"),
        ({"models": []}, "models must be a non-empty list"),
        ({"datasets": []}, "datasets must be a non-empty list"),
    ],
)
def test_run_benchmark_checks_its_arguments(tmp_path, kwargs, message):
    args = {"datasets": DIABETES, "models": ["hgb"], **FAST, **kwargs}
    with pytest.raises(ValueError, match=message):
        run_benchmark(args.pop("datasets"), args.pop("models"), out=tmp_path, **args)
    assert not (tmp_path / "results.csv").exists()


def test_jobs_never_oversubscribe():
    from threadpoolctl import threadpool_info

    assert threads_per_job("loky", 1, cores=2) == 2  # alone: every core, never "unlimited"
    assert threads_per_job("loky", 2, cores=2) == threads_per_job("loky", -1, cores=2) == 1
    assert threads_per_job("dask", 1, "tcp://h:8786") == threads_per_job("ray", 4, cores=2) == 1
    torch = pytest.importorskip("torch")
    with job_environment(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info())
