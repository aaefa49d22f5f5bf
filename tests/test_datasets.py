"""Tests of sktelescope.datasets: data folders with a manifest, OpenML, bundled sets."""

import gzip
import json
import os
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


def _edit_manifest(folder: Path, **changes) -> None:
    """Change (or, with value ``None``, remove) fields of the manifest's first entry."""
    path = folder / "MANIFEST.json"
    manifest = json.loads(path.read_text())
    entry = manifest["datasets"][0]
    entry.update(changes)
    manifest["datasets"][0] = {k: v for k, v in entry.items() if v is not None}
    path.write_text(json.dumps(manifest))


def _toy_frame(n: int = 40, label=None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(n) > 0.5, "yes", "no") if label is None else label
    return pd.DataFrame({"a": rng.normal(size=n), "colour": rng.integers(0, 3, n), "label": labels})


@pytest.fixture
def toy_folder(tmp_path):
    ds.add_folder_dataset(
        tmp_path, "clf/toy", _toy_frame(), "binary", categorical_columns=["colour"]
    )
    return tmp_path


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
    _edit_manifest(toy_folder, file="missing.csv.gz")
    with pytest.raises(ValueError, match="not in"):
        ds.load_manifest(toy_folder)


def test_manifest_target_or_categoricals_mismatch(toy_folder):
    _edit_manifest(toy_folder, categorical_columns=["shade"])
    with pytest.raises(ValueError, match="does not match its file"):
        ds.load_folder_dataset(toy_folder, "clf/toy")
    _edit_manifest(toy_folder, categorical_columns=[], target="a")
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


# --------------------------------------------------------------------------- targets vs task


@pytest.mark.parametrize(
    ("label", "task", "message"),
    [
        (["yes", "no", None, "no"] * 10, "binary", "missing on 10 of 40 rows"),
        (np.linspace(0, 1, 40), "binary", "is continuous .* 'binary'"),
        (np.linspace(0, 1, 40), "multiclass", "is continuous .* 'multiclass'"),
        (np.arange(40) % 5, "binary", "has 5 classes .* 'binary'"),
        (["yes"] * 40, "binary", "single class"),
        (["a", "b"] * 20, "regression", "not numeric .* 'regression'"),
        ([1.0, np.nan] * 20, "regression", "missing on 20 of 40 rows"),
    ],
)
def test_targets_that_do_not_fit_the_task_are_refused(tmp_path, label, task, message):
    ds.add_folder_dataset(tmp_path, "clf/toy", _toy_frame(label=label), task)
    with pytest.raises(ValueError, match=message) as info:
        ds.load_folder_dataset(tmp_path, "clf/toy")
    assert "'clf/toy'" in str(info.value) and "'label'" in str(info.value)


def test_integer_classes_and_a_two_class_multiclass_entry_still_load(tmp_path):
    ds.add_folder_dataset(tmp_path, "clf/toy", _toy_frame(label=np.arange(40) % 3), "multiclass")
    d = ds.load_folder_dataset(tmp_path, "clf/toy")
    assert d.task == "multiclass" and d.classes == [0, 1, 2]
    ds.add_folder_dataset(tmp_path, "clf/toy", _toy_frame(label=np.arange(40) % 2), "multiclass")
    assert ds.load_folder_dataset(tmp_path, "clf/toy").task == "binary"


# --------------------------------------------------------------------------- manifest entries


def test_manifest_entry_that_is_not_an_object(toy_folder):
    manifest = json.loads((toy_folder / "MANIFEST.json").read_text())
    manifest["datasets"].append("reg/other")
    (toy_folder / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="entry 2 of \"datasets\" is 'reg/other' \\(a str\\)"):
        ds.load_manifest(toy_folder)


@pytest.mark.parametrize("cats", ["colour", ["colour", 3], {"colour": 1}])
def test_categorical_columns_must_be_a_list_of_names(toy_folder, cats):
    _edit_manifest(toy_folder, categorical_columns=cats)
    with pytest.raises(ValueError, match="expected a list of column names"):
        ds.load_manifest(toy_folder)


def test_dataset_names_with_control_characters_are_refused(toy_folder):
    _edit_manifest(toy_folder, name="clf/toy\n| =1+1")
    with pytest.raises(ValueError, match="one-line name"):
        ds.load_manifest(toy_folder)


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_manifest_file_must_stay_inside_the_folder(tmp_path, kind):
    outside = tmp_path / "outside.csv.gz"
    folder = tmp_path / "data"
    ds.add_folder_dataset(folder, "clf/toy", _toy_frame(), "binary")
    outside.write_bytes((folder / "clf__toy.csv.gz").read_bytes())
    file = {"parent": "../outside.csv.gz", "absolute": str(outside), "symlink": "link.csv.gz"}
    if kind == "symlink":
        os.symlink(outside, folder / "link.csv.gz")
    _edit_manifest(folder, file=file[kind])
    with pytest.raises(ValueError, match="outside the data folder"):
        ds.load_manifest(folder)


def test_symlinks_inside_the_folder_are_fine(toy_folder):
    (toy_folder / "sub").mkdir()
    os.symlink(toy_folder / "clf__toy.csv.gz", toy_folder / "sub" / "toy.csv.gz")
    _edit_manifest(toy_folder, file="sub/toy.csv.gz")
    assert ds.load_folder_dataset(toy_folder, "toy").n_rows == 40


# --------------------------------------------------------------------------- damaged files


def _damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncated":
        file.write_bytes(data[: len(data) // 2])
    elif how == "not gzip":
        file.write_bytes(gzip.decompress(data))
    else:  # a flipped byte in the compressed stream (its checksum no longer matches)
        corrupt = bytearray(data)
        corrupt[len(corrupt) // 2] ^= 0xFF
        file.write_bytes(bytes(corrupt))


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("truncated", "it is truncated"),
        ("not gzip", "it is not gzip-compressed"),
        ("corrupt", "it is (corrupt|not a readable CSV)"),
    ],
)
def test_damaged_files_give_one_clear_line(toy_folder, how, problem):
    _damage(toy_folder / "clf__toy.csv.gz", how)
    with pytest.raises(ValueError, match="does not match the sha256"):
        ds.load_folder_dataset(toy_folder, "toy")
    _edit_manifest(toy_folder, sha256=None)  # without a checksum, reading it fails
    with pytest.raises(ValueError, match=f"'clf__toy.csv.gz' of dataset 'clf/toy' .*{problem}"):
        ds.load_folder_dataset(toy_folder, "toy")


def test_source_is_the_relative_file_and_its_hash(toy_folder):
    (ref,) = ds.resolve_datasets(["toy"], data_dir=toy_folder)
    sha = json.loads((toy_folder / "MANIFEST.json").read_text())["datasets"][0]["sha256"]
    assert ref.source == f"folder:clf__toy.csv.gz#sha256:{sha}" == ref.load().source
    assert str(toy_folder) not in ref.source


# --------------------------------------------------------------------------- tiers


def test_a_folder_without_the_default_tier_runs_all_of_it(tmp_path):
    ds.add_folder_dataset(tmp_path, "clf/toy", _toy_frame(), "binary", tier="extra")
    with pytest.warns(UserWarning, match="no 'core' datasets .* running all 1"):
        refs = ds.resolve_datasets(data_dir=tmp_path)
    assert [r.name for r in refs] == ["clf/toy"]
    with pytest.raises(ValueError, match="no 'core' datasets; its tiers are \\['extra'\\]"):
        ds.resolve_datasets(["core"], data_dir=tmp_path)
    with pytest.raises(ValueError, match="tier \\(--tier\\) must be one of"):
        ds.resolve_datasets(data_dir=tmp_path, tier="gold")


def test_a_bare_sklearn_name_means_the_bundled_dataset_unless_ambiguous(toy_folder):
    names = [r.name for r in ds.resolve_datasets(["diabetes", "sklearn:iris", "iris"])]
    assert names == ["sklearn:diabetes", "sklearn:iris"]  # one reference per dataset
    refs = ds.resolve_datasets(["diabetes", "toy"], data_dir=toy_folder)
    assert [r.name for r in refs] == ["sklearn:diabetes", "clf/toy"]
    ds.add_folder_dataset(toy_folder, "reg/diabetes", _toy_frame(label=np.arange(40.0)),
                          "regression")  # fmt: skip
    with pytest.raises(ValueError, match=r"'diabetes' is ambiguous.*'sklearn:diabetes'.*reg/d"):
        ds.resolve_datasets(["diabetes"], data_dir=toy_folder)
    assert [r.name for r in ds.resolve_datasets(["sklearn:diabetes"], data_dir=toy_folder)] == [
        "sklearn:diabetes"
    ]
    with pytest.raises(ValueError, match="also bare, e.g. 'diabetes'"):
        ds.resolve_datasets(["diabetez"])
