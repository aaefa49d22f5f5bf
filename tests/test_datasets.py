"""Tests of sktelescope.datasets: data folders with a manifest, OpenML, bundled sets."""

import gzip
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sktelescope import datasets as ds

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "tabular"
needs_shared = pytest.mark.skipif(
    not (SHARED / "MANIFEST.json").is_file(),
    reason="the shared data folder ../shared/data/tabular is absent (it is not part of the repo)",
)


def _write_folder(tmp_path, frame, entry, file="toy.csv.gz"):
    with gzip.open(tmp_path / file, "wt") as fh:
        frame.to_csv(fh, index=False)
    manifest = {
        "datasets": [
            {
                "name": "clf/toy",
                "file": file,
                "task": "binary",
                "target": frame.columns[-1],
                **entry,
            }
        ]
    }
    (tmp_path / "MANIFEST.json").write_text(json.dumps(manifest))
    return tmp_path


@pytest.fixture
def toy_folder(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=40),
            "colour": rng.integers(0, 3, 40),
            "label": np.where(rng.random(40) > 0.5, "yes", "no"),
        }
    )
    return _write_folder(tmp_path, frame, {"categorical_columns": ["colour"]})


def test_folder_dataset_loads_with_categoricals_and_encoded_target(toy_folder):
    d = ds.load_folder_dataset(toy_folder, "toy")
    assert d.name == "clf/toy" and d.task == "binary"
    assert list(d.X.columns) == ["a", "colour"] and d.categorical_columns == ["colour"]
    assert d.classes == ["no", "yes"] and set(d.y.tolist()) <= {0, 1}
    assert [r.name for r in ds.resolve_datasets(data_dir=toy_folder)] == ["clf/toy"]


def test_missing_folder_and_manifest_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ds.load_manifest(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="No MANIFEST.json"):
        ds.load_manifest(tmp_path)


def test_manifest_that_does_not_match_its_files(toy_folder):
    manifest = json.loads((toy_folder / "MANIFEST.json").read_text())
    manifest["datasets"][0]["file"] = "missing.csv.gz"
    (toy_folder / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="not in"):
        ds.load_manifest(toy_folder)


def test_manifest_target_or_categoricals_mismatch(toy_folder):
    manifest = json.loads((toy_folder / "MANIFEST.json").read_text())
    manifest["datasets"][0]["categorical_columns"] = ["shade"]
    (toy_folder / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not match its file"):
        ds.load_folder_dataset(toy_folder, "clf/toy")
    manifest["datasets"][0].update(categorical_columns=[], target="a")
    (toy_folder / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="last column"):
        ds.load_folder_dataset(toy_folder, "clf/toy")


def test_unknown_names(toy_folder):
    with pytest.raises(ValueError, match="Unknown dataset 'nope'.*--list"):
        ds.resolve_datasets(["nope"], data_dir=toy_folder)
    with pytest.raises(ValueError, match="--data-dir"):
        ds.resolve_datasets(["cpu_act"])
    with pytest.raises(ValueError, match="scikit-learn datasets"):
        ds.resolve_datasets(["sklearn:mnist"])


@pytest.mark.parametrize("name", sorted(ds.SKLEARN_DATASETS))
def test_sklearn_datasets(name):
    d = ds.load_sklearn_dataset(name)
    assert d.task == ds.SKLEARN_DATASETS[name]
    assert len(d.X) == len(d.y) > 100 and not d.X.isna().any().any()


def test_embedded_default_needs_no_download():
    refs = ds.resolve_datasets()
    assert [r.name for r in refs] == list(ds.EMBEDDED_DEFAULT)
    assert {r.kind for r in refs} == {"sklearn"}
    assert ds.load_dataset("sklearn:digits_3v5").classes == [3, 5]


def test_openml_offline_fails_fast_with_advice(monkeypatch):
    from urllib.error import URLError

    import sklearn.datasets

    def offline(**kwargs):
        raise URLError("Name or service not known")

    monkeypatch.setattr(sklearn.datasets, "fetch_openml", offline)
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="--data-dir"):
        ds.load_dataset("openml:44120")
    assert time.perf_counter() - start < 5
    suite = ds.resolve_datasets(["suite:grinsztajn"])
    assert len(suite) > 20 and all(r.kind == "openml" for r in suite)


@needs_shared
def test_shared_folder_manifest_and_a_core_dataset():
    refs = ds.resolve_datasets(data_dir=SHARED)
    assert refs and all(r.kind == "folder" for r in refs)
    d = ds.load_dataset("reg_cat/Brazilian_houses", data_dir=SHARED)
    assert d.task == "regression" and d.categorical_columns == ["city", "animal", "furniture"]
    with pytest.raises(ValueError, match="ambiguous"):
        ds.resolve_datasets(["electricity"], data_dir=SHARED)
