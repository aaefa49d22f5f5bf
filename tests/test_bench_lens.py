"""The benchmark's lens step on tiny data: the lens job (regression, binary), its kernel ratios
against the lens API, refits that reproduce the fit rows, stale rows after a budget increase,
the lens trees option, and the optional RealMLP peer."""

import numpy as np
import pandas as pd
import pytest

from sktelescope.bench import Protocol, run_benchmark
from sktelescope.bench._jobs import make_jobs, run_job
from sktelescope.bench._lens import (
    LENS_COLUMNS,
    MEASURES,
    PROPORTIONS,
    LensJob,
    extremity_ratios,
    p_tag,
    run_lens_job,
)
from sktelescope.bench._models import (
    available_models,
    build_model,
    default_models,
    get_config,
    get_model,
)
from sktelescope.bench._protocol import split_data
from sktelescope.bench._run import resolve_lens_trees
from sktelescope.datasets import load_sklearn_dataset

pytestmark = pytest.mark.skipif(
    "telescoping_mlp" not in available_models(), reason="the lens needs telescoping_mlp (torch)"
)
LENS_MODELS = ["telescoping_mlp", "sklearn_gbt"]


def _data(name: str):
    ds = load_sklearn_dataset(name)
    return ds, split_data(ds, 0, Protocol(n_splits=1))


@pytest.mark.parametrize("name", ["diabetes", "breast_cancer"])
def test_lens_job_measures_every_proportion(name):
    ds, data = _data(name)
    # A tuned network (config 1) and default trees: the default pair is measured apart.
    row = run_lens_job(LensJob(ds.name, 0, 0, data, "sklearn_gbt", 1, 0, quick=True))
    assert row["status"] == "ok", row.get("error")
    assert set(row) <= set(LENS_COLUMNS) and not row["note"]
    assert row["loss"] == ("mse" if ds.task == "regression" else "log_loss")
    assert row["set_size"] == row["n_irregular"] == round(0.1 * len(data.y_test))
    for prefix in ("", "default_"):
        for measure in ("net_ratio", "trees_ratio", "net_loss", "trees_loss"):
            values = [row[f"{prefix}{measure}_{p_tag(p)}"] for p in PROPORTIONS]
            assert np.all(np.isfinite(values)) and min(values) > 0, (prefix, measure, values)
        diff = [row[f"{prefix}loss_diff_{p_tag(p)}"] for p in PROPORTIONS]
        gap = [row[f"{prefix}gap_{p_tag(p)}"] for p in PROPORTIONS]
        if row[f"{prefix}gap_flag"]:
            assert diff[0] <= 0.01 * row[f"{prefix}trees_loss_p000"] and np.isnan(gap).all()
        else:
            assert gap[0] == 1.0 and np.allclose(gap, np.array(diff) / diff[0])
    assert row["net_ratio_p000"] != row["default_net_ratio_p000"]  # another network
    assert row["trees_loss_p050"] == row["default_trees_loss_p050"]  # the same trees


def test_ratios_are_the_lens_kernel_extremity_ratio():
    from sktelescope import TelescopingMLPRegressor
    from sktelescope.lens import kernel_extremity_ratio

    X = np.random.default_rng(0).normal(size=(80, 3))
    est = TelescopingMLPRegressor((8,), max_iter=3, random_state=0).fit(X[:60], X[:60, 0])
    rows, groups = X[60:] * 2, [np.arange(5), np.arange(3, 20)]
    ours = extremity_ratios(est, X[:60], rows, groups)
    for ratio, group in zip(ours, groups):
        expected = kernel_extremity_ratio(est, X[:60], X_test=rows[group], max_train_samples=None)
        assert ratio == pytest.approx(expected.ratio, rel=1e-6)


def test_refit_reproduces_the_fit_rows():
    ds, data = _data("diabetes")
    jobs = make_jobs([ds], LENS_MODELS, 2, Protocol(n_splits=1), quick=True)
    scores = {job.model: run_job(job)["test_r2"] for job in jobs if job.config == 1}
    row = run_lens_job(LensJob(ds.name, 0, 0, data, "sklearn_gbt", 1, 1, scores, quick=True))
    assert row["status"] == "ok", row.get("error")
    assert row["net_refit_diff"] == row["trees_refit_diff"] == 0.0 and not row["note"]
    assert row["net_test_score"] == scores["telescoping_mlp"]


def test_missing_best_fit_is_an_error_row():
    ds, data = _data("diabetes")
    row = run_lens_job(LensJob(ds.name, 0, 0, data, "sklearn_gbt", -1, 0, quick=True))
    assert row["status"] == "error" and "no successful fit" in row["error"]


def test_larger_budget_recomputes_stale_lens_rows(tmp_path):
    from sktelescope.bench._report import lens_rows
    from sktelescope.bench._store import ResultStore

    tiny = dict(models=LENS_MODELS, n_splits=1, quick=True, progress=False, out=tmp_path)
    res = run_benchmark(["sklearn:diabetes"], budget=1, **tiny)
    assert res.n_lens_run == 1
    res = run_benchmark(["sklearn:diabetes"], budget=2, **tiny)
    best = pd.read_csv(tmp_path / "best.csv").set_index("model")["config"].to_dict()
    assert best["telescoping_mlp"] == 1, "the tuned network must win for this test to bite"
    assert res.n_lens_run == 1  # the configurations changed: the lens looks again
    lens = pd.read_csv(tmp_path / "lens.csv")
    assert lens[["net_config", "trees_config"]].values.tolist() == [[0, 0], [1, 0]]
    store = ResultStore(tmp_path, "lens.csv", LENS_COLUMNS, ("dataset", "split", "trees_model",
                        "net_config", "trees_config"))  # fmt: skip
    current = lens_rows(store, keys={("sklearn:diabetes", 0, "sklearn_gbt", 1, 0)})
    assert current["net_config"].tolist() == [1]
    assert "| sklearn:diabetes | mse | 1 |" in (tmp_path / "summary.md").read_text()
    assert run_benchmark(["sklearn:diabetes"], budget=2, **tiny).n_lens_run == 0


def test_lens_trees_must_be_a_trees_model_of_the_run():
    with pytest.raises(ValueError, match="among the run's models"):
        resolve_lens_trees(True, ["telescoping_mlp", "hgb"], "sklearn_gbt")
    with pytest.raises(ValueError, match="trees model"):
        resolve_lens_trees(True, ["telescoping_mlp", "hgb"], "telescoping_mlp")
    assert resolve_lens_trees(True, ["telescoping_mlp", "sklearn_gbt", "hgb"], "hgb") == "hgb"
    assert resolve_lens_trees(False, ["hgb"], None) is None
    with pytest.warns(UserWarning, match="no telescoping_mlp: skipped"):
        assert resolve_lens_trees(True, ["hgb", "sklearn_gbt"], None) is None
    assert "sklearn_gbt" in default_models()  # in the default model list
    assert "realmlp" not in default_models()  # minutes per fit: only when named


def test_cli_refuses_lens_trees_outside_models(tmp_path, capsys):
    from sktelescope.cli import main

    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", "telescoping_mlp,hgb",
            "--lens-trees", "sklearn_gbt", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    assert "--lens-trees" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


def test_sklearn_gbt_draws_the_grinsztajn_space():
    draws = [get_config("sklearn_gbt", c) for c in range(1, 301)]
    assert all(set(d) == {"learning_rate", "n_estimators", "max_depth"} for d in draws)
    assert all(11 <= d["n_estimators"] <= 1000 and d["learning_rate"] > 0 for d in draws)
    depths = pd.Series([d["max_depth"] for d in draws]).value_counts(normalize=True, dropna=False)
    assert 0.5 < depths[3] < 0.7 and 0.04 < depths[np.nan] < 0.17
    assert np.median([np.log10(d["learning_rate"]) for d in draws]) == pytest.approx(-2, abs=0.3)
    # hgb shares the draw: its configurations are those it had before sklearn_gbt existed.
    assert get_config("hgb", 1) == {"learning_rate": 0.0017102091820188404, "max_iter": 527,
                                    "max_depth": 3, "min_samples_leaf": 3}  # fmt: skip


@pytest.mark.skipif(
    not get_model("realmlp").is_available(), reason="realmlp needs pytabkit (pip install pytabkit)"
)
@pytest.mark.parametrize("name", ["diabetes", "breast_cancer"])
def test_realmlp_runs_like_the_other_models_and_is_deterministic(name):
    ds, data = _data(name)
    (job,) = [j for j in make_jobs([ds], ["realmlp"], 2, Protocol(n_splits=1), quick=True)
              if j.config == 1]  # fmt: skip
    first, second = run_job(job), run_job(job)
    assert first["status"] == "ok", first.get("error")
    metric = "test_r2" if ds.task == "regression" else "test_log_loss"
    assert first[metric] == second[metric] and np.isfinite(first[metric])
    pipe = build_model("realmlp", ds.task, job.params, [], job.seed, n_threads=1)
    assert pipe[-1].n_threads == 1 and pipe[-1].device == "cpu"


def test_measures_are_per_proportion_columns():
    assert MEASURES[0] == "net_ratio_p000" and MEASURES[-1] == "gap_flag"
    assert len(MEASURES) == 6 * len(PROPORTIONS) + 1
