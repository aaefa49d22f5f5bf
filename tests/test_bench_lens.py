"""The benchmark's lens step on tiny data: the lens job (regression, binary), its per-step R
against the lens's own replay, refits that reproduce the fit rows, network seeds, the point
bootstrap, fixed set sizes, stale rows after a budget increase, the lens trees option, and the
optional RealMLP peer."""

import json

import numpy as np
import pandas as pd
import pytest

from sktelescope.bench import Protocol, run_benchmark
from sktelescope.bench._jobs import make_jobs, run_job
from sktelescope.bench._lens import (
    BOOTSTRAP_REPLICATES,
    LENS_COLUMNS,
    MEASURES,
    PROPORTIONS,
    LensJob,
    bootstrap_gap_slopes,
    extremity_ratios,
    p_tag,
    run_lens_job,
    set_size,
    slope,
)
from sktelescope.bench._models import available_models, build_model, default_models, get_model
from sktelescope.bench._protocol import split_data
from sktelescope.bench._run import resolve_lens_trees
from sktelescope.bench._scope import LensSettings
from sktelescope.datasets import load_sklearn_dataset

pytestmark = pytest.mark.skipif(
    "telescoping_mlp" not in available_models(), reason="the lens needs telescoping_mlp (torch)"
)
LENS_MODELS = ["telescoping_mlp", "sklearn_gbt"]


def _data(name: str):
    ds = load_sklearn_dataset(name)
    return ds, split_data(ds, 0, Protocol(n_splits=1))


def _per_p(row: dict, measure: str) -> np.ndarray:
    return np.array([row[f"{measure}_{p_tag(p)}"] for p in PROPORTIONS])


@pytest.mark.parametrize("name", ["diabetes", "breast_cancer"])
def test_lens_job_measures_every_proportion(name):
    ds, data = _data(name)
    row = run_lens_job(LensJob(ds.name, 0, 0, data, LensSettings(), 1, 0, quick=True))
    assert row["status"] == "ok", row.get("error")
    assert set(row) <= set(LENS_COLUMNS) and not row["note"]
    assert row["loss"] == ("mse" if ds.task == "regression" else "log_loss")
    # The tiny test split cannot hold 500 + 500 points: sets of its 10% pool, marked as such.
    assert row["set_size"] == row["irregular_pool"] == round(0.1 * len(data.y_test))
    assert row["set_size_target"] == 500 and row["kernel"] == "step"
    for measure in ("net_ratio", "trees_ratio", "net_loss", "trees_loss"):
        values = _per_p(row, measure)
        assert np.all(np.isfinite(values)) and min(values) > 0, (measure, values)
    gap = (_per_p(row, "net_loss") - _per_p(row, "trees_loss")) / row["trees_loss_p000"]
    assert np.allclose(_per_p(row, "gap"), gap)
    assert row["gap_slope"] == pytest.approx(slope(gap))
    boot = json.loads(row["gap_slope_boot"])
    # A 9-point set can draw no point in a replicate (NaN); with 500 points it never does.
    assert len(boot) == BOOTSTRAP_REPLICATES and np.isfinite(boot).mean() > 0.9


def test_per_step_ratio_is_the_lens_replay_of_the_same_run():
    """The monitor attached to the refit measures what the lens's own per-step replay
    measures (every step up to the model kept, all training rows)."""
    from sktelescope.bench._lens import _mixed_sets, _network_run, _pipeline
    from sktelescope.lens import kernel_extremity_ratio

    ds, data = _data("diabetes")
    settings = LensSettings(step_stride=1, max_train=10_000)
    job = LensJob(ds.name, 0, 0, data, settings, 0, 0, quick=True)
    trees = _pipeline("sklearn_gbt", 0, job).fit(data.X_train, data.y_train)
    sets = _mixed_sets(job, trees)
    run = _network_run(job, 0, sets)
    est, prep = run.pipeline[-1], run.pipeline[:-1]
    assert run.kernel_steps == est.best_step_ <= est.n_steps_
    X_train = prep.transform(data.X_train)
    X_rows = prep.transform(data.X_test.iloc[sets.rows])
    replay = kernel_extremity_ratio(est, X_train, X_rows[sets.groups[-1]], method="step",
                                    y_train=data.y_train, max_train_samples=None,
                                    preconditioned=True)  # fmt: skip
    assert run.ratios[-1] == pytest.approx(replay.ratio, rel=1e-5)  # the p = 1 set


def test_stage_kernel_is_the_lens_kernel_extremity_ratio():
    from sktelescope import TelescopingMLPRegressor
    from sktelescope.lens import kernel_extremity_ratio

    X = np.random.default_rng(0).normal(size=(80, 3))
    est = TelescopingMLPRegressor((8,), max_iter=3, random_state=0).fit(X[:60], X[:60, 0])
    rows, groups = X[60:] * 2, [np.arange(5), np.arange(3, 20)]
    ours = extremity_ratios(est, X[:60], rows, groups)
    for ratio, group in zip(ours, groups):
        expected = kernel_extremity_ratio(est, X[:60], X_test=rows[group], max_train_samples=None)
        assert ratio == pytest.approx(expected.ratio, rel=1e-6)
    ds, data = _data("diabetes")
    row = run_lens_job(LensJob(ds.name, 0, 0, data, LensSettings(kernel="stage"), 0, 0,
                               quick=True))  # fmt: skip
    assert row["status"] == "ok" and row["kernel"] == "stage", row.get("error")


def test_refit_reproduces_the_fit_rows_and_seeds_differ():
    ds, data = _data("diabetes")
    jobs = make_jobs([ds], LENS_MODELS, 2, Protocol(n_splits=1), quick=True)
    scores = {job.model: run_job(job)["test_r2"] for job in jobs if job.config == 1}
    settings = LensSettings(network_seeds=2)
    row = run_lens_job(LensJob(ds.name, 0, 0, data, settings, 1, 1, scores, quick=True))
    assert row["status"] == "ok", row.get("error")
    assert row["net_refit_diff"] == row["trees_refit_diff"] == 0.0 and not row["note"]
    assert row["net_test_score"] == scores["telescoping_mlp"]
    per_seed = json.loads(row["net_ratio_slope_per_seed"])
    assert len(per_seed) == 2 and per_seed[0] != per_seed[1]
    assert row["network_seeds"] == 2


def test_missing_best_fit_is_an_error_row():
    ds, data = _data("diabetes")
    row = run_lens_job(LensJob(ds.name, 0, 0, data, LensSettings(), -1, 0, quick=True))
    assert row["status"] == "error" and "no successful fit" in row["error"]


def test_set_size_is_fixed_where_the_split_allows():
    assert set_size(4000, 500) == (500, 500)  # the paper's folds: a 12.5% pool
    assert set_size(20_000, 500) == (500, 2000)  # the 10% pool
    assert set_size(1000, 500) == (500, 500)
    assert set_size(999, 500) == (100, 100)  # too small: the 10% pool, below the target


def test_point_bootstrap_matches_the_sampling_error():
    """Replicates centre on the split's slope and spread like the slope over fresh draws."""
    rng = np.random.default_rng(0)
    groups = [np.arange(i * 100, i * 100 + 400) for i in range(5)]  # nested-like overlaps
    fresh = []
    for _ in range(300):
        diff = rng.normal(0, 1, 800)
        fresh.append(slope(np.array([diff[g].mean() for g in groups])))
    diff = rng.normal(0, 1, 800)
    boot = bootstrap_gap_slopes(diff, np.ones(800), groups, seed=1, n=2000)
    est = slope(np.array([diff[g].mean() for g in groups]))
    assert boot.mean() == pytest.approx(est, abs=0.02)
    assert boot.std() == pytest.approx(np.std(fresh), rel=0.15)


def test_larger_budget_recomputes_stale_lens_rows(tmp_path):
    from sktelescope.bench._lens import LENS_KEY
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
    now = [best["telescoping_mlp"], best["sklearn_gbt"]]
    assert lens[["net_config", "trees_config"]].values.tolist() == [[0, 0], now]
    store = ResultStore(tmp_path, "lens.csv", LENS_COLUMNS, LENS_KEY)
    key = ("sklearn:diabetes", 0, "sklearn_gbt", *now, LensSettings().key)
    assert lens_rows(store, keys={key})["net_config"].tolist() == [1]
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
    assert "paper_mlp" not in default_models()  # the paper protocol's network, or when named


def test_cli_refuses_lens_trees_outside_models(tmp_path, capsys):
    from sktelescope.cli import main

    argv = ["bench", "--datasets", "sklearn:diabetes", "--models", "telescoping_mlp,hgb",
            "--lens-trees", "sklearn_gbt", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    assert "--lens-trees" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


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
    assert MEASURES[0] == "net_ratio_p000" and MEASURES[-1] == "gap_p100"
    assert len(MEASURES) == 5 * len(PROPORTIONS)


def test_plain_and_embedded_networks_side_by_side_through_one_lens(tmp_path):
    from sktelescope.bench._lens import LENS_KEY
    from sktelescope.bench._report import lens_rows
    from sktelescope.bench._store import ResultStore
    from sktelescope.bench._verdict import decide

    networks = ["plain_mlp", "embedded_mlp"]
    res = run_benchmark(["sklearn:diabetes"], ["sklearn_gbt", *networks], budget=1, n_splits=2,
                        quick=True, progress=False, lens_kernel="stage", lens_networks=networks,
                        out=tmp_path)  # fmt: skip
    assert (res.n_lens_total, res.n_lens_failed) == (4, 0)  # 2 splits x 2 networks
    rows = lens_rows(ResultStore(tmp_path, "lens.csv", LENS_COLUMNS, LENS_KEY))
    assert sorted(set(rows["network"])) == sorted(networks)
    # each refit is the network the results row scored (the embedded one has its embeddings)
    assert rows["net_refit_diff"].abs().max() < 1e-9
    plain = rows[rows["network"] == "plain_mlp"]
    embedded = rows[rows["network"] == "embedded_mlp"]
    assert not np.allclose(plain["net_ratio_p100"], embedded["net_ratio_p100"])
    summary = (tmp_path / "summary.md").read_text()
    verdict, comparison = summary.split("## The same lens on other networks")
    # the run's verdict is the plain network's alone; the embedded one's stands beside it
    own = decide(embedded).table.iloc[0]
    contrast = f"{own['contrast_estimate']:.3g} [{own['contrast_low']:.3g}, "
    assert contrast in comparison and contrast not in verdict
    mixed = decide(rows).table.iloc[0]
    assert f"{mixed['contrast_estimate']:.3g} [" not in summary


def test_lens_networks_are_telescoping_models_of_the_run():
    from sktelescope.bench._scope import resolve_lens_networks

    models = ["telescoping_mlp", "embedded_mlp", "sklearn_mlp", "hgb"]
    assert resolve_lens_networks(None, models, "telescoping_mlp") == ["telescoping_mlp"]
    assert resolve_lens_networks(["embedded_mlp", "embedded_mlp"], models, "x") == ["embedded_mlp"]
    for bad in (["sklearn_mlp"], ["hgb"], ["paper_mlp"]):
        with pytest.raises(ValueError, match="not a TelescopingMLP model among the run's"):
            resolve_lens_networks(bad, models, "telescoping_mlp")
    for bad in ([], "telescoping_mlp"):
        with pytest.raises(ValueError, match="non-empty list of model names"):
            resolve_lens_networks(bad, models, "telescoping_mlp")
    assert get_model("plain_mlp").fixed == {"preset": "paper"}
    assert get_model("embedded_mlp").fixed == {"preset": "paper", "numerical_embedding": "pbld",
                                               "feature_scaling": True}  # fmt: skip
    assert "embedded_mlp" not in default_models() and "plain_mlp" not in default_models()
