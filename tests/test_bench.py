"""Tests of ``sktelescope bench``: configs, splits, streaming CSV, resume, Dask, Ray, report,
the lens step (the command line is in test_cli.py, integrity in test_bench_integrity.py)."""

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from sktelescope.bench import (
    COLUMNS,
    Protocol,
    ResultStore,
    get_config,
    make_split,
    run_benchmark,
)
from sktelescope.bench._lens import LENS_COLUMNS, LENS_KEY, MEASURES
from sktelescope.bench._models import available_models

TIMING = {"fit_seconds", "predict_seconds", "lens_seconds"}
HAS_LENS = "telescoping_mlp" in available_models()
#: Per-dataset lens columns that must be finite for regression and binary datasets.
LENS_FINITE = ("net_ratio_slope_mean", "trees_ratio_slope_mean", "loss_diff_slope_mean",
               "net_ratio_p100", "trees_ratio_p100", "irregularity_mean")  # fmt: skip
# Fast models: both families (sklearn_gbt: the lens's trees); the project's network when it is
# importable.
MODELS = [m for m in ("telescoping_mlp", "sklearn_gbt", "xgboost") if m in available_models()]
TINY = dict(models=MODELS, budget=2, n_splits=1, quick=True, progress=False)


def _rows(out, name: str = "results.csv") -> dict:
    """CSV rows keyed by (dataset, split[, model, config]), timing columns dropped."""
    path = Path(out) / name
    if not path.exists():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    key = LENS_KEY if name == "lens.csv" else ("dataset", "split", "model", "config")
    return {tuple(r[k] for k in key): {k: v for k, v in r.items() if k not in TIMING} for r in rows}


def test_config_zero_is_default_and_draws_are_deterministic():
    for model in available_models():
        assert get_config(model, 0) == {}
        assert get_config(model, 3, seed=1) == get_config(model, 3, seed=1)
        assert get_config(model, 1) != get_config(model, 2)
    assert get_config("hgb", 1, quick=True)["max_iter"] <= 20


def test_splits_are_disjoint_capped_and_kfold_covers_every_row():
    protocol = Protocol(n_splits=3, max_train=500)
    train, val, test = make_split(5000, "d", 1, protocol)
    assert len(train) == 500 and len(val) == 1000 and len(test) == 1000
    assert not set(train) & set(val) and not set(val) & set(test)
    again = make_split(5000, "d", 1, protocol)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again))
    kfold = Protocol(n_splits=4, kfold=True)
    tests = np.concatenate([make_split(103, "d", k, kfold)[2] for k in range(4)])
    assert sorted(tests.tolist()) == list(range(103))


def test_run_writes_csv_summary_and_plots(tmp_path):
    res = run_benchmark(["sklearn:diabetes", "sklearn:breast_cancer"], out=tmp_path, **TINY)
    rows = _rows(tmp_path)
    assert res.n_run == len(rows) == 2 * len(MODELS) * 2
    assert all(r["status"] == "ok" for r in rows.values()), rows
    clf = next(r for k, r in rows.items() if k[0] == "sklearn:breast_cancer")
    assert all(clf[f"test_{m}"] for m in ("accuracy", "log_loss", "roc_auc"))
    summary = (tmp_path / "summary.md").read_text()
    assert "sklearn:diabetes" in summary and "**" in summary
    if {"network", "trees"} <= {r["family"] for r in rows.values()}:
        assert "network_minus_trees" in (tmp_path / "datasets.csv").read_text()
    if HAS_LENS:
        _check_lens(tmp_path, res, 2)
    pytest.importorskip("matplotlib")
    assert (tmp_path / "normalised_scores.png").stat().st_size > 0
    assert (tmp_path / "score_vs_budget.png").stat().st_size > 0
    if HAS_LENS:
        assert (tmp_path / "lens_verdict.png").stat().st_size > 0
        assert (tmp_path / "lens_scatter.png").stat().st_size > 0


def _check_lens(out: Path, res, n_datasets: int) -> None:
    """lens.csv has one ok row per dataset x split, on the best-validation configurations,
    whose refits reproduce results.csv; datasets.csv has the verdict columns, summary.md the
    verdict section."""
    import pandas as pd

    lens = _rows(out, "lens.csv")
    assert res.n_lens_run == res.n_lens_total == len(lens) == n_datasets
    assert all(r["status"] == "ok" for r in lens.values()), lens
    assert all(r["trees_model"] == "sklearn_gbt" for r in lens.values())
    assert all(float(r["net_refit_diff"]) == float(r["trees_refit_diff"]) == 0.0
               for r in lens.values())  # fmt: skip
    best = pd.read_csv(out / "best.csv")
    for dataset, split, trees, net_config, trees_config in lens:
        chosen = best[(best["dataset"] == dataset) & (best["split"] == int(split))]
        configs = dict(zip(chosen["model"], chosen["config"]))
        assert (configs["telescoping_mlp"], configs[trees]) == (int(net_config), int(trees_config))
    table = pd.read_csv(out / "datasets.csv")
    assert set(LENS_FINITE) | {"network_minus_trees", "explanation_holds"} <= set(table.columns)
    assert len(table) == n_datasets and np.isfinite(table[list(LENS_FINITE)].to_numpy()).all()
    summary = (out / "summary.md").read_text()
    assert "## Verdict" in summary and "**Verdict:** The paper's explanation" in summary


def test_killed_run_resumes_without_refitting(tmp_path):
    run_benchmark(["sklearn:diabetes"], out=tmp_path, **TINY)
    before, lens_before = _rows(tmp_path), _rows(tmp_path, "lens.csv")
    assert len(lens_before) == int(HAS_LENS)
    lines = (tmp_path / "results.csv").read_text().splitlines(keepends=True)
    # Simulate a kill: the last two rows never arrived, the one before was half written.
    kept = "".join(lines[:-3]) + lines[-3][: len(lines[-3]) // 2]
    (tmp_path / "results.csv").write_text(kept)
    if HAS_LENS:  # the lens row was half written too
        lens_lines = (tmp_path / "lens.csv").read_text().splitlines(keepends=True)
        (tmp_path / "lens.csv").write_text(lens_lines[0] + lens_lines[1][:40])
    with pytest.warns(UserWarning, match="without its newline"):
        res = run_benchmark(["sklearn:diabetes"], out=tmp_path, **TINY)
    assert (res.n_run, res.n_skipped) == (3, len(before) - 3)
    assert res.n_lens_run == int(HAS_LENS)
    assert _rows(tmp_path) == before
    assert _rows(tmp_path, "lens.csv") == lens_before
    res = run_benchmark(["sklearn:diabetes"], out=tmp_path, **TINY)
    assert res.n_run == res.n_lens_run == 0
    # More configurations extend the same CSV; only the new ones are fitted.
    res = run_benchmark(["sklearn:diabetes"], out=tmp_path, **{**TINY, "budget": 3})
    assert res.n_run == len(MODELS)


def test_refuses_to_mix_settings(tmp_path):
    tiny = {**TINY, "models": ["hgb"], "lens": False}
    run_benchmark(["sklearn:diabetes"], out=tmp_path, **tiny)
    with pytest.raises(ValueError, match="other settings.*--out"):
        run_benchmark(["sklearn:diabetes"], out=tmp_path, seed=1, **tiny)
    settings = json.loads((tmp_path / "run.json").read_text())
    assert settings["quick"] is True and settings["protocol"]["seed"] == 0


@pytest.mark.slow
def test_dask_local_cluster_gives_the_same_rows_as_loky(tmp_path):
    distributed = pytest.importorskip("distributed")
    run_benchmark(None, out=tmp_path / "loky", n_jobs=2, backend="loky", **TINY)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        res = run_benchmark(
            None, out=tmp_path / "dask", backend="dask", address=cluster.scheduler_address, **TINY
        )
    loky, dask = _rows(tmp_path / "loky"), _rows(tmp_path / "dask")
    assert res.n_run == len(loky) == 3 * len(MODELS) * 2
    assert dask == loky
    assert _rows(tmp_path / "dask", "lens.csv") == _rows(tmp_path / "loky", "lens.csv")


@pytest.mark.slow
def test_ray_local_gives_the_same_rows_as_loky(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'ray[default]')")
    tiny = {**TINY, "models": [m for m in MODELS if m != "xgboost"]}
    run_benchmark(None, out=tmp_path / "loky", n_jobs=2, backend="loky", **tiny)
    res = run_benchmark(None, out=tmp_path / "ray", n_jobs=2, backend="ray", **tiny)
    loky, ray = _rows(tmp_path / "loky"), _rows(tmp_path / "ray")
    assert res.n_run == len(loky) == 3 * len(tiny["models"]) * 2
    assert ray == loky
    assert _rows(tmp_path / "ray", "lens.csv") == _rows(tmp_path / "loky", "lens.csv")
    assert len(_rows(tmp_path / "ray", "lens.csv")) == 3 * int(HAS_LENS)


@pytest.mark.skipif(not HAS_LENS, reason="the lens needs telescoping_mlp (torch)")
def test_lens_on_multiclass_records_why_trees_are_skipped():
    from sktelescope.bench._lens import LensJob, run_lens_job
    from sktelescope.bench._protocol import split_data as _split_data
    from sktelescope.datasets import load_sklearn_dataset

    ds = load_sklearn_dataset("iris")
    data = _split_data(ds, 0, Protocol(n_splits=1))
    job = LensJob(ds.name, 0, 0, data, "sklearn_gbt", 0, 0, quick=True, max_train=50)
    row = run_lens_job(job)
    assert row["status"] == "ok", row.get("error")
    assert set(row) <= set(LENS_COLUMNS) and row["loss"] == "log_loss"
    nan = {k for k in MEASURES if isinstance(row[k], float) and np.isnan(row[k])}
    assert nan == {k for k in MEASURES if k.startswith("trees_ratio")}
    assert np.isfinite(row["net_ratio_p100"]) and "binary-only" in row["note"]


def test_store_rejects_foreign_csv(tmp_path):
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        ResultStore(tmp_path).finished_keys()
    assert COLUMNS[:4] == ("dataset", "split", "model", "config")


def test_summary_table_mean_std_and_bold_best():
    import pandas as pd

    from sktelescope.bench import summary_table

    best = pd.DataFrame(
        {
            "dataset": ["d"] * 4,
            "split": [0, 1, 0, 1],
            "metric": ["r2"] * 4,
            "model": ["a", "a", "b", "b"],
            "test_score": [0.5, 0.7, 0.9, 0.7],
        }
    )
    table = summary_table(best, ["a", "b"])
    assert "| d | r2 | 0.6000 ± 0.1414 | **0.8000 ± 0.1414** |" in table


def test_a_resumed_run_counts_its_progress_from_the_rows_already_there(tmp_path, capsys):
    tiny = {**TINY, "models": ["hgb"], "lens": False}
    run_benchmark(["sklearn:diabetes"], out=tmp_path, **{**tiny, "budget": 1})
    capsys.readouterr()
    res = run_benchmark(["sklearn:diabetes"], out=tmp_path, **{**tiny, "budget": 3,
                                                               "progress": True})  # fmt: skip
    assert (res.n_run, res.n_skipped) == (2, 1)
    bar = capsys.readouterr().err.replace("\r", "\n")
    first = next(line for line in bar.splitlines() if "sktelescope bench (fit)" in line)
    assert " 1/3 " in first, bar  # starts at the row already there, not at 0/2
    assert " 3/3 " in bar


def test_notes_come_after_the_checks_so_an_error_stands_alone(tmp_path):
    # hgb alone leaves the lens nothing to look at (a note), and "nope" is no dataset (an
    # error): only the error shows.
    settings = {k: v for k, v in TINY.items() if k != "models"}
    with warnings.catch_warnings(record=True) as notes, pytest.raises(ValueError) as error:
        warnings.simplefilter("always")
        run_benchmark(["nope"], ["hgb"], out=tmp_path, **settings)
    assert "Unknown dataset 'nope'" in str(error.value)
    assert not [str(n.message) for n in notes]
    with pytest.warns(UserWarning, match="lens step .* skipped"):
        run_benchmark(["sklearn:diabetes"], ["hgb"], out=tmp_path, **{**settings, "budget": 1})
