"""Real tabular data: a folder of CSVs with a manifest, OpenML ids, scikit-learn's bundled sets.

Every loader returns a :class:`Dataset`: features as a pandas DataFrame, the target as a numpy
array (class labels encoded as ``0..K-1`` for classification), the task, and the categorical
columns. Names are resolved by :func:`resolve_datasets`, which the benchmark uses:

- ``"clf_num/electricity"`` or ``"electricity"`` (when unique): a dataset of a data folder,
- ``"openml:44120"``: an OpenML dataset id, fetched through :func:`sklearn.datasets.fetch_openml`
  and its cache,
- ``"suite:grinsztajn"``: the Grinsztajn et al. (2022) benchmark ids (needs internet),
- ``"sklearn:diabetes"``: a scikit-learn bundled dataset, no download needed.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "Dataset",
    "DatasetRef",
    "EMBEDDED_DEFAULT",
    "GRINSZTAJN_SUITE",
    "SKLEARN_DATASETS",
    "load_dataset",
    "load_folder_dataset",
    "load_manifest",
    "load_openml_dataset",
    "load_sklearn_dataset",
    "resolve_datasets",
]

TASKS = ("regression", "binary", "multiclass")

#: OpenML ids of the Grinsztajn et al. 2022 "medium" benchmark versions (suites 334-337),
#: the same ids the shared data manifest lists as ``openml_benchmark_dataset_id``.
GRINSZTAJN_SUITE: dict[str, int] = {
    "clf_num/credit": 44089,
    "clf_num/electricity": 44120,
    "clf_num/covertype": 44121,
    "clf_num/pol": 44122,
    "clf_num/house_16H": 44123,
    "clf_num/MagicTelescope": 44125,
    "clf_num/bank-marketing": 44126,
    "clf_num/MiniBooNE": 44128,
    "clf_num/Higgs": 44129,
    "clf_num/eye_movements": 44130,
    "clf_num/jannis": 44131,
    "clf_num/Diabetes130US": 45022,
    "clf_num/heloc": 45026,
    "clf_num/california": 45028,
    "reg_num/cpu_act": 44132,
    "reg_num/pol": 44133,
    "reg_num/elevators": 44134,
    "reg_num/wine_quality": 44136,
    "reg_num/Ailerons": 44137,
    "reg_num/houses": 44138,
    "reg_num/house_16H": 44139,
    "reg_num/diamonds": 44140,
    "reg_num/Brazilian_houses": 44141,
    "reg_num/Bike_Sharing_Demand": 44142,
    "reg_num/nyc-taxi-green-dec-2016": 44143,
    "reg_num/house_sales": 44144,
    "reg_num/sulfur": 44145,
    "reg_num/medical_charges": 44146,
    "reg_num/MiamiHousing2016": 44147,
    "reg_num/superconduct": 44148,
    "clf_cat/electricity": 44156,
    "clf_cat/eye_movements": 44157,
    "clf_cat/compas-two-years": 45039,
    "reg_cat/analcatdata_supreme": 44055,
    "reg_cat/visualizing_soil": 44056,
    "reg_cat/diamonds": 44059,
    "reg_cat/Mercedes_Benz_Greener_Manufacturing": 44061,
    "reg_cat/Brazilian_houses": 44062,
    "reg_cat/Bike_Sharing_Demand": 44063,
    "reg_cat/house_sales": 44066,
    "reg_cat/abalone": 45042,
    "reg_cat/seattlecrime6": 45043,
}

#: Bundled scikit-learn datasets usable without any download: name -> task.
SKLEARN_DATASETS: dict[str, str] = {
    "diabetes": "regression",
    "breast_cancer": "binary",
    "digits_3v5": "binary",
    "wine": "multiclass",
    "iris": "multiclass",
}

#: What ``sktelescope bench`` runs when given no data argument: no download, a few minutes.
EMBEDDED_DEFAULT: tuple[str, ...] = (
    "sklearn:diabetes",
    "sklearn:breast_cancer",
    "sklearn:digits_3v5",
)


@dataclass
class Dataset:
    """A loaded tabular dataset.

    Attributes
    ----------
    name : str
        Name used in results, e.g. ``"clf_num/electricity"`` or ``"sklearn:diabetes"``.
    task : {"regression", "binary", "multiclass"}
    X : pandas.DataFrame
        Features; categorical columns are integer coded.
    y : numpy.ndarray
        Target: floats for regression, class indices ``0..K-1`` for classification.
    categorical_columns : list of str
        Columns of ``X`` to treat as categorical.
    classes : list or None
        Original class labels, in the order of the encoded indices.
    source : str
        Where the data came from (file path, OpenML id, scikit-learn loader).

    Examples
    --------
    >>> from sktelescope.datasets import load_sklearn_dataset
    >>> ds = load_sklearn_dataset("diabetes")
    >>> ds.task, ds.X.shape
    ('regression', (442, 10))
    """

    name: str
    task: str
    X: pd.DataFrame
    y: np.ndarray
    categorical_columns: list[str] = field(default_factory=list)
    classes: list | None = None
    source: str = ""

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.X)


@dataclass(frozen=True)
class DatasetRef:
    """A named, not yet loaded dataset: cheap to list, loaded on demand by :meth:`load`.

    Examples
    --------
    >>> from sktelescope.datasets import resolve_datasets
    >>> [ref.name for ref in resolve_datasets(["sklearn:diabetes"])]
    ['sklearn:diabetes']
    """

    name: str
    kind: str  # "folder", "openml" or "sklearn"
    key: str  # file name, OpenML id or sklearn name
    task: str | None = None
    data_dir: str | None = None
    description: str = ""

    def load(self) -> Dataset:
        """Load the data; see :func:`load_dataset`."""
        return load_dataset(self)

    @property
    def source(self) -> str:
        """A string that identifies the data, stored with the results."""
        if self.kind == "folder":
            return f"folder:{Path(self.data_dir or '.').resolve() / self.key}"
        return f"{self.kind}:{self.key}"


def _encode_target(y: pd.Series | np.ndarray, task: str) -> tuple[np.ndarray, list | None]:
    if task == "regression":
        return np.asarray(y, dtype=np.float64), None
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    return codes.astype(np.int64), classes.tolist()


def _classification_task(y: np.ndarray) -> str:
    return "binary" if len(np.unique(y)) <= 2 else "multiclass"


# --------------------------------------------------------------------------- data folder


def load_manifest(data_dir: str | os.PathLike) -> list[dict]:
    """Read and check the ``MANIFEST.json`` of a data folder.

    Parameters
    ----------
    data_dir : path-like
        Folder holding ``MANIFEST.json`` and the gzip CSV files it lists.

    Returns
    -------
    entries : list of dict
        One dict per dataset with at least ``name``, ``file``, ``task``, ``target`` and
        ``categorical_columns``; ``tier`` defaults to ``"core"``.

    Raises
    ------
    FileNotFoundError
        If the folder or its manifest is missing.
    ValueError
        If the manifest is malformed or lists a file that is not in the folder.

    Examples
    --------
    >>> entries = load_manifest("../shared/data/tabular")  # doctest: +SKIP
    >>> entries[0]["name"]  # doctest: +SKIP
    'clf_num/electricity'
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Data folder {str(folder)!r} does not exist. Pass --data-dir with a folder that "
            "holds a MANIFEST.json and its gzip CSV files, or leave it out to run the embedded "
            "default datasets."
        )
    path = folder / "MANIFEST.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"No MANIFEST.json in data folder {str(folder)!r}. The folder needs a MANIFEST.json "
            'of the form {"datasets": [{"name", "file", "task", "target", '
            '"categorical_columns"}, ...]}.'
        )
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    entries = manifest.get("datasets") if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{path} must hold a non-empty list under the key "datasets".')
    return [_check_entry(entry, folder, path) for entry in entries]


def _check_entry(entry: dict, folder: Path, path: Path) -> dict:
    missing = [k for k in ("name", "file", "task", "target") if k not in entry]
    if missing:
        raise ValueError(f"Manifest {path}: entry {entry.get('name', entry)!r} lacks {missing}.")
    if entry["task"] not in TASKS:
        raise ValueError(
            f"Manifest {path}: dataset {entry['name']!r} has task {entry['task']!r}; "
            f"expected one of {list(TASKS)}."
        )
    if not (folder / entry["file"]).is_file():
        raise ValueError(
            f"Manifest {path} lists file {entry['file']!r} for dataset {entry['name']!r}, but "
            f"that file is not in {str(folder)!r}. Fix the manifest or restore the file."
        )
    return {"tier": "core", "categorical_columns": [], **entry}


def _read_header(file: Path) -> list[str]:
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt") as fh:
        return pd.read_csv(fh, nrows=0).columns.tolist()


def load_folder_dataset(data_dir: str | os.PathLike, name: str) -> Dataset:
    """Load one dataset of a data folder described by ``MANIFEST.json``.

    The target is the manifest's ``target`` column, which must be the file's last column.

    Parameters
    ----------
    data_dir : path-like
        The data folder.
    name : str
        The dataset's manifest name (e.g. ``"clf_num/electricity"``) or its unique short name.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load_folder_dataset("../shared/data/tabular", "reg_num/cpu_act")  # doctest: +SKIP
    >>> ds.task  # doctest: +SKIP
    'regression'
    """
    entry = _find_entry(load_manifest(data_dir), name, data_dir)
    file = Path(data_dir) / entry["file"]
    header = _read_header(file)
    target, cats = entry["target"], list(entry["categorical_columns"])
    if not header or header[-1] != target:
        raise ValueError(
            f"Manifest says the target of {entry['name']!r} is {target!r}, but the last column "
            f"of {str(file)!r} is {header[-1] if header else None!r}. The manifest does not "
            "match its file."
        )
    unknown = sorted(set(cats) - set(header[:-1]))
    if unknown:
        raise ValueError(
            f"Manifest lists categorical columns {unknown} for {entry['name']!r}, but "
            f"{str(file)!r} has no such feature columns. The manifest does not match its file."
        )
    frame = pd.read_csv(file)
    X, y_raw = frame.iloc[:, :-1], frame.iloc[:, -1]
    if entry["task"] != "regression":
        task = _classification_task(np.asarray(y_raw))
    else:
        task = "regression"
    y, classes = _encode_target(y_raw, task)
    return Dataset(entry["name"], task, X, y, cats, classes, f"folder:{file.resolve()}")


def _find_entry(entries: list[dict], name: str, data_dir) -> dict:
    exact = [e for e in entries if e["name"] == name]
    if exact:
        return exact[0]
    short = [e for e in entries if e["name"].split("/")[-1] == name]
    if len(short) == 1:
        return short[0]
    if len(short) > 1:
        full = [e["name"] for e in short]
        raise ValueError(f"Dataset name {name!r} is ambiguous in {data_dir}: use one of {full}.")
    raise ValueError(
        f"Unknown dataset {name!r} in data folder {str(data_dir)!r}. Run "
        f"`sktelescope bench --data-dir {data_dir} --list` to see the available names."
    )


# --------------------------------------------------------------------------- OpenML


def load_openml_dataset(data_id: int, data_home: str | os.PathLike | None = None) -> Dataset:
    """Fetch an OpenML dataset by id through scikit-learn's :func:`~sklearn.datasets.fetch_openml`.

    Downloads go to scikit-learn's cache (``data_home``), so a second call works offline.
    Nominal features become integer-coded categorical columns.

    Parameters
    ----------
    data_id : int
        The OpenML dataset id, e.g. 44120 (electricity, Grinsztajn benchmark version).
    data_home : path-like, default=None
        scikit-learn's dataset cache folder.

    Returns
    -------
    Dataset

    Raises
    ------
    ConnectionError
        Quickly, when OpenML cannot be reached and the dataset is not cached.

    Examples
    --------
    >>> ds = load_openml_dataset(44120)  # doctest: +SKIP
    >>> ds.name  # doctest: +SKIP
    'openml:44120'
    """
    from sklearn.datasets import fetch_openml

    try:
        bunch = fetch_openml(
            data_id=int(data_id), data_home=data_home, as_frame=True, n_retries=1, delay=0.1
        )
    except (OSError, TimeoutError) as exc:  # URLError and HTTPError are OSErrors
        raise ConnectionError(
            f"Could not fetch OpenML dataset {data_id} ({type(exc).__name__}: {exc}). OpenML "
            "needs internet access unless the dataset is already in scikit-learn's cache. "
            "Offline, pass a data folder instead: `sktelescope bench --data-dir DIR`, where "
            "DIR holds a MANIFEST.json and gzip CSVs (e.g. ../shared/data/tabular)."
        ) from exc
    X = bunch.data.copy()
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    for col in cats:
        X[col] = X[col].cat.codes.astype(np.int64)
    y_raw = bunch.target
    is_clf = isinstance(y_raw.dtype, pd.CategoricalDtype) or y_raw.dtype == object
    task = _classification_task(np.asarray(y_raw)) if is_clf else "regression"
    y, classes = _encode_target(y_raw, task)
    return Dataset(f"openml:{data_id}", task, X, y, cats, classes, f"openml:{data_id}")


# --------------------------------------------------------------------------- scikit-learn


def load_sklearn_dataset(name: str) -> Dataset:
    """Load one of scikit-learn's bundled datasets (no download).

    Parameters
    ----------
    name : {"diabetes", "breast_cancer", "digits_3v5", "wine", "iris"}
        ``digits_3v5`` is the 8x8 digits restricted to 3 versus 5, as in the paper's MNIST task.

    Returns
    -------
    Dataset

    Examples
    --------
    >>> ds = load_sklearn_dataset("breast_cancer")
    >>> ds.task, sorted(set(ds.y.tolist()))
    ('binary', [0, 1])
    """
    from sklearn import datasets as skd

    if name not in SKLEARN_DATASETS:
        raise ValueError(
            f"Unknown scikit-learn dataset {name!r}; expected one of {sorted(SKLEARN_DATASETS)}."
        )
    if name == "digits_3v5":
        X, y = skd.load_digits(return_X_y=True, as_frame=True)
        keep = np.isin(y, [3, 5])
        X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True)
    else:
        X, y = getattr(skd, f"load_{name}")(return_X_y=True, as_frame=True)
    task = SKLEARN_DATASETS[name]
    y_enc, classes = _encode_target(y, task)
    return Dataset(f"sklearn:{name}", task, X, y_enc, [], classes, f"sklearn:{name}")


# --------------------------------------------------------------------------- names


def load_dataset(ref: DatasetRef | str, data_dir: str | os.PathLike | None = None) -> Dataset:
    """Load a dataset from a :class:`DatasetRef` or a name understood by :func:`resolve_datasets`.

    Examples
    --------
    >>> load_dataset("sklearn:diabetes").n_rows
    442
    """
    if isinstance(ref, str):
        (ref,) = resolve_datasets([ref], data_dir=data_dir)
    loaders: dict[str, Callable[[], Dataset]] = {
        "folder": lambda: load_folder_dataset(ref.data_dir, ref.name),
        "openml": lambda: load_openml_dataset(int(ref.key)),
        "sklearn": lambda: load_sklearn_dataset(ref.key),
    }
    dataset = loaders[ref.kind]()
    dataset.name = ref.name
    return dataset


def resolve_datasets(
    names: Sequence[str] | None = None,
    data_dir: str | os.PathLike | None = None,
    tier: str = "core",
) -> list[DatasetRef]:
    """Turn dataset names into references, checking that each exists (nothing is loaded).

    Parameters
    ----------
    names : list of str or None
        Folder names (``"clf_num/electricity"`` or a unique short name such as ``"cpu_act"``),
        ``"openml:ID"``, ``"suite:grinsztajn"``, ``"sklearn:NAME"``, or ``"all"`` / ``"core"`` /
        ``"extra"`` for those tiers of the folder. ``None``: the folder's ``tier`` datasets,
        or :data:`EMBEDDED_DEFAULT` when no folder is given.
    data_dir : path-like, default=None
        A data folder with a ``MANIFEST.json``.
    tier : {"core", "extra", "all"}, default="core"
        Which folder datasets ``names=None`` selects.

    Returns
    -------
    list of DatasetRef

    Examples
    --------
    >>> [r.name for r in resolve_datasets()]
    ['sklearn:diabetes', 'sklearn:breast_cancer', 'sklearn:digits_3v5']
    """
    entries = load_manifest(data_dir) if data_dir is not None else None
    if not names:
        names = [tier] if entries is not None else list(EMBEDDED_DEFAULT)
    refs: list[DatasetRef] = []
    for name in names:
        for ref in _resolve_one(name.strip(), entries, data_dir):
            if ref.name not in {r.name for r in refs}:
                refs.append(ref)
    return refs


def _resolve_one(name: str, entries: list[dict] | None, data_dir) -> list[DatasetRef]:
    if name.startswith("sklearn:"):
        key = name.split(":", 1)[1]
        if key not in SKLEARN_DATASETS:
            raise ValueError(
                f"Unknown dataset {name!r}; scikit-learn datasets are "
                f"{['sklearn:' + k for k in SKLEARN_DATASETS]}."
            )
        return [DatasetRef(name, "sklearn", key, SKLEARN_DATASETS[key], None, "bundled")]
    if name.startswith("openml:"):
        key = name.split(":", 1)[1]
        if not key.isdigit():
            raise ValueError(f"OpenML datasets are given by id, e.g. 'openml:44120'; got {name!r}.")
        return [DatasetRef(name, "openml", key, None, None, "OpenML id")]
    if name == "suite:grinsztajn":
        return [
            DatasetRef(n, "openml", str(i), None, None, "Grinsztajn 2022 suite")
            for n, i in GRINSZTAJN_SUITE.items()
        ]
    if entries is None:
        raise ValueError(
            f"Unknown dataset {name!r}. Without --data-dir the names are "
            f"{['sklearn:' + k for k in SKLEARN_DATASETS]}, 'openml:ID' or 'suite:grinsztajn'; "
            "for folder datasets pass --data-dir DIR."
        )
    if name in ("core", "extra", "all"):
        chosen = [e for e in entries if name == "all" or e["tier"] == name]
    else:
        chosen = [_find_entry(entries, name, data_dir)]
    return [_folder_ref(e, data_dir) for e in chosen]


def _folder_ref(entry: dict, data_dir) -> DatasetRef:
    desc = f"{entry['tier']}, {entry.get('n_rows', '?')} rows x {entry.get('n_features', '?')}"
    return DatasetRef(entry["name"], "folder", entry["file"], entry["task"], str(data_dir), desc)
