"""A run's scope: the suite and paper protocols, their defaults and their refusals (nothing is
fitted here), and the one object the report code receives."""

from pathlib import Path

import pytest

from sktelescope.bench import PAPER_CLOSEST, PAPER_DATASETS, Protocol, RunScope
from sktelescope.bench._scope import LensSettings, paper_defaults, resolve_scope
from sktelescope.cli import main

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tabular"
needs_shared = pytest.mark.skipif(
    not (SHARED / "MANIFEST.json").is_file(),
    reason="the shared data folder ../shared/data/tabular is absent (it is not part of the repo)",
)


def _request(**changes) -> dict:
    request = dict(datasets=None, models=None, data_dir=None, tier="core", budget=None,
                   n_splits=None, kfold=False, max_train=10_000, seed=0, lens=True,
                   lens_trees=None, lens_kernel=None)  # fmt: skip
    return request | changes


def test_suite_defaults_and_lens():
    scope, refs = resolve_scope("suite", **_request(models=["telescoping_mlp", "sklearn_gbt"]))
    assert [r.name for r in refs] == list(scope.datasets) and len(refs) == 3  # embedded
    assert (scope.budget, scope.n_splits, scope.name) == (5, 3, "suite")
    assert scope.lens == LensSettings("telescoping_mlp", "sklearn_gbt", "step")
    with pytest.warns(UserWarning, match="no telescoping_mlp: skipped"):
        scope, _ = resolve_scope("suite", **_request(models=["hgb"], lens_kernel="stage"))
    assert scope.lens is None  # no network to look at (a warning says so elsewhere)


def test_paper_protocol_needs_its_data_and_regression():
    with pytest.raises(ValueError, match="--data-dir"):
        resolve_scope("paper", **_request())
    with pytest.raises(ValueError, match="regression"):
        resolve_scope("paper", **_request(datasets=["sklearn:breast_cancer"]))
    with pytest.raises(ValueError, match="at least 5 disjoint test folds"):
        resolve_scope("paper", **_request(datasets=["sklearn:diabetes"], n_splits=3))
    with pytest.raises(ValueError, match="protocol"):
        resolve_scope("papers", **_request())


def test_paper_protocol_on_named_regression_data():
    scope, _ = resolve_scope("paper", **_request(datasets=["sklearn:diabetes"], max_train=500))
    proto = scope.protocol
    assert (proto.name, proto.kfold, proto.n_splits, proto.max_test, proto.max_train) == (
        "paper", True, 5, 4000, 500)  # fmt: skip
    assert scope.models == ("paper_mlp", "sklearn_gbt") and scope.budget == 25
    assert scope.lens.network == "paper_mlp" and scope.lens.network_seeds == 2
    assert scope.lens.kernel == "step"
    assert "Protocol **paper**" in scope.describe()


@needs_shared
def test_paper_protocol_finds_the_papers_datasets():
    scope, refs = resolve_scope("paper", **_request(data_dir=SHARED))
    assert list(scope.datasets) == list(PAPER_DATASETS + PAPER_CLOSEST)
    assert all(r.task == "regression" for r in refs) and not scope.notes


def test_cli_paper_protocol_refuses_without_data(tmp_path, capsys):
    assert main(["bench", "--protocol", "paper", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert not (tmp_path / "results.csv").exists()


def test_settings_and_scope_objects():
    with pytest.raises(ValueError, match="lens kernel"):
        LensSettings(kernel="ntk")
    with pytest.raises(ValueError, match="network_seeds"):
        LensSettings(network_seeds=0)
    with pytest.raises(ValueError, match="protocol"):
        Protocol(name="other")
    scope = RunScope(("a",), ("hgb",), 3, Protocol(n_splits=2))
    assert scope.to_dict()["protocol"]["name"] == "suite" and scope.n_splits == 2
    assert paper_defaults()["lens"].step_stride == 20
