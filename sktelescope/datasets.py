"""Real tabular data: a folder of CSVs with a manifest, OpenML ids, scikit-learn's bundled sets.

Every loader returns a :class:`Dataset`: features as a pandas DataFrame, the target as a numpy
array (class labels encoded as ``0..K-1`` for classification), the task, and the categorical
columns. Names are resolved by :func:`resolve_datasets`, which the benchmark uses:

- ``"clf_num/electricity"`` or ``"electricity"`` (when unique): a dataset of a data folder,
- ``"openml:44120"``: an OpenML dataset id, fetched through :func:`sklearn.datasets.fetch_openml`
  and its cache,
- ``"suite:grinsztajn"``: the Grinsztajn et al. (2022) benchmark ids (needs internet),
- ``"sklearn:diabetes"``: a scikit-learn bundled dataset, no download needed.

A data folder is checked before anything runs: every manifest entry is an object with the
right field types, its ``file`` stays inside the folder, the file is a readable gzip CSV whose
``sha256`` (when the manifest gives one, of the compressed file) matches, and the target fits
the task (no missing labels, no continuous target under a classification task, at most two
classes under ``binary``). Each problem is one :class:`ValueError` that names the file, says what
is wrong and how to fix it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

__all__ = [
    "Dataset",
    "DatasetRef",
    "EMBEDDED_DEFAULT",
    "GRINSZTAJN_SUITE",
    "SKLEARN_DATASETS",
    "add_folder_dataset",
    "load_dataset",
    "load_folder_dataset",
    "load_manifest",
    "load_openml_dataset",
    "load_sklearn_dataset",
    "resolve_datasets",
]

TASKS = ("regression", "binary", "multiclass")
TIERS = ("core", "extra", "all")
#: Errors of reading a damaged (gzip) CSV file.
_READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    UnicodeDecodeError,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
)

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
        Where the data came from: ``folder:FILE#sha256:HEX`` (the file relative to its data
        folder, and its hash), ``openml:ID`` or ``sklearn:NAME``; never an absolute path.

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
    sha256: str | None = None  # of a folder file, as the manifest gives it

    def load(self) -> Dataset:
        """Load the data; see :func:`load_dataset`."""
        return load_dataset(self)

    @property
    def source(self) -> str:
        """A string that identifies the data, stored with the results: for a folder dataset
        its file relative to the folder and the file's sha256 (no local path)."""
        if self.kind == "folder":
            digest = self.sha256 or _sha256(Path(self.data_dir or ".") / self.key)
            return _folder_source(self.key, digest)
        return f"{self.kind}:{self.key}"


def _folder_source(file: str, digest: str) -> str:
    return f"folder:{file}#sha256:{digest.lower()}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _encode_target(
    y: pd.Series | np.ndarray, task: str, where: str = "the target"
) -> tuple[np.ndarray, list | None]:
    """Check ``y`` against ``task`` and encode it: floats for regression, class indices
    ``0..K-1`` (and the class labels) for classification. ``where`` names it in errors."""
    values = pd.Series(np.asarray(y, dtype=object))
    missing = int(values.isna().sum())
    if missing:
        raise ValueError(
            f"{where} is missing on {missing} of {len(values)} rows; every row needs a "
            "target. Drop those rows or fill them in."
        )
    if task == "regression":
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.isna().any():
            example = values[numeric.isna()].iloc[0]
            raise ValueError(
                f"{where} is not numeric (e.g. {example!r}) but the task is 'regression'. "
                "Give the task as 'binary' or 'multiclass', or fix the target column."
            )
        return numeric.to_numpy(dtype=np.float64), None
    _check_class_labels(values, task, where)
    classes, codes = np.unique(values.to_numpy(), return_inverse=True)
    return codes.astype(np.int64), classes.tolist()


def _check_class_labels(values: pd.Series, task: str, where: str) -> None:
    numeric = pd.to_numeric(values, errors="coerce")
    if not numeric.isna().any() and not np.all(np.mod(numeric.to_numpy(float), 1) == 0):
        raise ValueError(
            f"{where} is continuous ({values.nunique()} distinct values, e.g. "
            f"{values.iloc[0]!r}) but the task is {task!r}, which needs class labels. Give "
            "the task as 'regression', or fix the target column."
        )
    classes = values.unique()
    if len(classes) < 2:
        raise ValueError(
            f"{where} has a single class ({classes[0]!r}): no classifier can be trained on it. "
            "Fix the target column, or leave the dataset out."
        )
    if task == "binary" and len(classes) > 2:
        shown = ", ".join(repr(c) for c in sorted(classes, key=str)[:5])
        raise ValueError(
            f"{where} has {len(classes)} classes ({shown}{', ...' if len(classes) > 5 else ''})"
            " but the task is 'binary'. Give the task as 'multiclass', or fix the target."
        )


def _classification_task(y) -> str:
    return "binary" if pd.Series(np.asarray(y, dtype=object)).nunique() <= 2 else "multiclass"


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
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ValueError(f"{path} is not valid JSON ({exc}). Fix the manifest.") from None
    entries = manifest.get("datasets") if isinstance(manifest, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError(f'{path} must hold a non-empty list under the key "datasets".')
    return [_check_entry(entry, i, folder, path) for i, entry in enumerate(entries, start=1)]


def _check_entry(entry, number: int, folder: Path, path: Path) -> dict:
    """One manifest entry, checked: an object with the right field types whose file is in
    the folder. ``number`` (from 1) names it when it has no usable name."""
    if not isinstance(entry, dict):
        raise ValueError(
            f'Manifest {path}: entry {number} of "datasets" is {entry!r} (a '
            f'{type(entry).__name__}); each entry must be an object with "name", "file", '
            '"task" and "target". Fix the manifest.'
        )
    missing = [k for k in ("name", "file", "task", "target") if k not in entry]
    if missing:
        raise ValueError(f"Manifest {path}: entry {entry.get('name', number)!r} lacks {missing}.")
    for key in ("name", "file", "target", "tier"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key]):
            raise ValueError(
                f"Manifest {path}: entry {number} has {key} {entry[key]!r}; expected a "
                "non-empty string. Fix the manifest."
            )
    name = entry["name"]
    if any(not ch.isprintable() for ch in name):
        raise ValueError(
            f"Manifest {path}: dataset name {name!r} holds a line break or another control "
            "character; give it a one-line name."
        )
    if entry["task"] not in TASKS:
        raise ValueError(
            f"Manifest {path}: dataset {name!r} has task {entry['task']!r}; "
            f"expected one of {list(TASKS)}."
        )
    _check_categorical_columns(entry.get("categorical_columns", []), name, path)
    _check_file(entry["file"], name, folder, path)
    return {"tier": "core", "categorical_columns": [], **entry}


def _check_categorical_columns(cats, name: str, path: Path) -> None:
    if not isinstance(cats, list) or not all(isinstance(c, str) for c in cats):
        raise ValueError(
            f"Manifest {path}: dataset {name!r} has categorical_columns {cats!r}; expected a "
            'list of column names, e.g. ["colour", "city"] (or [] for none). Fix the manifest.'
        )


def _check_file(file: str, name: str, folder: Path, path: Path) -> None:
    """The file is given relative to the folder and stays inside it (symlinks too)."""
    relative = PurePosixPath(file.replace("\\", "/"))
    escapes = (
        relative.is_absolute()
        or PureWindowsPath(file).is_absolute()
        or PureWindowsPath(file).drive
        or ".." in relative.parts
    )
    if not escapes:
        escapes = not (folder / file).resolve().is_relative_to(folder.resolve())
    if escapes:
        raise ValueError(
            f"Manifest {path}: dataset {name!r} has file {file!r}, which is outside the data "
            "folder. Give files relative to the folder that holds MANIFEST.json, without "
            "'..' or an absolute path (and without symlinks that lead out of it)."
        )
    if not (folder / file).is_file():
        raise ValueError(
            f"Manifest {path} lists file {file!r} for dataset {name!r}, but "
            f"that file is not in {str(folder)!r}. Fix the manifest or restore the file."
        )


def add_folder_dataset(
    data_dir: str | os.PathLike,
    name: str,
    frame: pd.DataFrame,
    task: str,
    *,
    categorical_columns: Sequence[str] = (),
    tier: str = "core",
) -> Path:
    """Write ``frame`` as a gzip CSV into a data folder and list it in its ``MANIFEST.json``.

    The target is ``frame``'s last column. The folder and its manifest are created when
    missing; an entry of the same name is replaced. The entry records the file's sha256, so a
    damaged file is caught when it is loaded.

    Parameters
    ----------
    data_dir : path-like
        The data folder.
    name : str
        The dataset's name, e.g. ``"clf/churn"``.
    frame : pandas.DataFrame
        Feature columns, then the target column.
    task : {"regression", "binary", "multiclass"}
    categorical_columns : sequence of str, default=()
    tier : str, default="core"

    Returns
    -------
    pathlib.Path
        The CSV file written.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> frame = pd.DataFrame({"x": range(20), "y": [0.5 * i for i in range(20)]})
    >>> add_folder_dataset(folder, "reg/line", frame, "regression").name
    'reg__line.csv.gz'
    >>> load_folder_dataset(folder, "line").task
    'regression'
    """
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / (re.sub(r"[^\w.-]", "_", name.replace("/", "__")) + ".csv.gz")
    with gzip.GzipFile(file, "wb", mtime=0) as fh:
        fh.write(frame.to_csv(index=False).encode())
    entry = {
        "name": name,
        "file": file.name,
        "task": task,
        "target": str(frame.columns[-1]),
        "tier": tier,
        "categorical_columns": list(categorical_columns),
        "n_rows": len(frame),
        "n_features": frame.shape[1] - 1,
        "sha256": _sha256(file),
    }
    path = folder / "MANIFEST.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {"datasets": []}
    manifest["datasets"] = [e for e in manifest["datasets"] if e.get("name") != name] + [entry]
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return file


def _read_header(file: Path) -> list[str]:
    opener = gzip.open if file.suffix == ".gz" else open
    with opener(file, "rt") as fh:
        return pd.read_csv(fh, nrows=0).columns.tolist()


def _unreadable(file: str, name: str, exc: BaseException) -> ValueError:
    """The one-line error of a data file that cannot be read."""
    if isinstance(exc, EOFError):
        problem = "it is truncated (the compressed data ends early)"
    elif isinstance(exc, gzip.BadGzipFile) and "Not a gzipped file" in str(exc):
        problem = "it is not gzip-compressed, although its name ends in .gz"
    elif isinstance(exc, gzip.BadGzipFile | zlib.error):
        problem = "it is corrupt (the gzip data fails its checks)"
    else:
        problem = "it is not a readable CSV file"
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
    return ValueError(
        f"Data file {file!r} of dataset {name!r} cannot be read: {problem} ({detail}). "
        "Restore the file (a gzip CSV with a header row, as the manifest describes it), or "
        "remove the dataset from the manifest."
    )


def _read_folder_frame(folder: Path, entry: dict) -> pd.DataFrame:
    """The entry's file as a frame, after checking its sha256 and its columns."""
    file, name = folder / entry["file"], entry["name"]
    expected = entry.get("sha256")
    if isinstance(expected, str) and expected and _sha256(file) != expected.lower():
        raise ValueError(
            f"Data file {entry['file']!r} of dataset {name!r} does not match the sha256 "
            f"in the manifest ({expected}): the file is damaged or was changed. Restore it, "
            "or update its sha256 in the manifest."
        )
    try:
        header = _read_header(file)
        _check_columns(header, entry, file)
        return pd.read_csv(file)
    except _READ_ERRORS as exc:
        raise _unreadable(entry["file"], name, exc) from None


def _check_columns(header: list[str], entry: dict, file: Path) -> None:
    target, cats = entry["target"], list(entry["categorical_columns"])
    if not header or header[-1] != target:
        raise ValueError(
            f"Manifest says the target of {entry['name']!r} is {target!r}, but the last column "
            f"of {entry['file']!r} is {header[-1] if header else None!r}. The manifest does not "
            "match its file."
        )
    unknown = sorted(set(cats) - set(header[:-1]))
    if unknown:
        raise ValueError(
            f"Manifest lists categorical columns {unknown} for {entry['name']!r}, but "
            f"{entry['file']!r} has no such feature columns. The manifest does not match its "
            "file."
        )


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
    folder = Path(data_dir)
    entry = _find_entry(load_manifest(folder), name, data_dir)
    frame = _read_folder_frame(folder, entry)
    X, y_raw = frame.iloc[:, :-1], frame.iloc[:, -1]
    where = f"The target {entry['target']!r} of dataset {entry['name']!r} ({entry['file']})"
    y, classes = _encode_target(y_raw, entry["task"], where)
    task = "regression" if entry["task"] == "regression" else _classification_task(y)
    source = _folder_source(entry["file"], entry.get("sha256") or _sha256(folder / entry["file"]))
    return Dataset(entry["name"], task, X, y, list(entry["categorical_columns"]), classes, source)


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
    task = _classification_task(y_raw) if is_clf else "regression"
    y, classes = _encode_target(y_raw, task, f"The target of OpenML dataset {data_id}")
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
        ``"openml:ID"``, ``"suite:grinsztajn"``, ``"sklearn:NAME"`` (or a bare ``NAME`` such
        as ``"diabetes"`` when the data folder has no dataset of that name), or ``"all"`` /
        ``"core"`` / ``"extra"`` for those tiers of the folder. ``None``: the folder's
        ``tier`` datasets, or :data:`EMBEDDED_DEFAULT` when no folder is given.
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
    if tier not in TIERS:
        raise ValueError(f"tier (--tier) must be one of {list(TIERS)}; got {tier!r}.")
    if names is not None and (isinstance(names, str) or not names):
        raise ValueError(
            f"datasets must be a non-empty list of names; got {names!r}. Pass e.g. "
            "['sklearn:diabetes'] (--datasets sklearn:diabetes), or None for the default."
        )
    entries = load_manifest(data_dir) if data_dir is not None else None
    if names is None:
        names = [_default_tier(entries, tier, data_dir)] if entries else list(EMBEDDED_DEFAULT)
    refs: list[DatasetRef] = []
    for name in names:
        for ref in _resolve_one(name.strip(), entries, data_dir):
            if ref.name not in {r.name for r in refs}:
                refs.append(ref)
    return refs


def _default_tier(entries: list[dict], tier: str, data_dir) -> str:
    """``tier``, or ``"all"`` (with a warning) when the folder has no dataset of that tier."""
    if tier == "all" or any(e["tier"] == tier for e in entries):
        return tier
    tiers = sorted({e["tier"] for e in entries})
    warnings.warn(
        f"Data folder {str(data_dir)!r} has no {tier!r} datasets (its tiers: {tiers}): "
        f"running all {len(entries)} of its datasets. Pass --tier or --datasets to choose.",
        stacklevel=3,
    )
    return "all"


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
    if name in SKLEARN_DATASETS:  # a bare "diabetes": sklearn:diabetes, unless ambiguous
        _check_not_in_folder(name, entries, data_dir)
        return _resolve_one(f"sklearn:{name}", None, data_dir)
    if entries is None:
        raise ValueError(
            f"Unknown dataset {name!r}. Without --data-dir the names are "
            f"{['sklearn:' + k for k in SKLEARN_DATASETS]} (also bare, e.g. 'diabetes'), "
            "'openml:ID' or 'suite:grinsztajn'; for folder datasets pass --data-dir DIR."
        )
    if name in TIERS:
        chosen = [e for e in entries if name == "all" or e["tier"] == name]
        if not chosen:
            tiers = sorted({e["tier"] for e in entries})
            raise ValueError(
                f"Data folder {str(data_dir)!r} has no {name!r} datasets; its tiers are "
                f"{tiers}. Pass one of those, 'all', or dataset names to --datasets."
            )
    else:
        chosen = [_find_entry(entries, name, data_dir)]
    return [_folder_ref(e, data_dir) for e in chosen]


def _check_not_in_folder(name: str, entries: list[dict] | None, data_dir) -> None:
    """Refuse a bare scikit-learn dataset name (``diabetes``) that the data folder also has:
    it is ambiguous, and the error names both."""
    same = [e["name"] for e in entries or [] if name in (e["name"], e["name"].split("/")[-1])]
    if same:
        raise ValueError(
            f"Dataset name {name!r} is ambiguous: scikit-learn's 'sklearn:{name}' or the data "
            f"folder {str(data_dir)!r}'s {same}. Pass one of those names to --datasets."
        )


def _folder_ref(entry: dict, data_dir) -> DatasetRef:
    desc = f"{entry['tier']}, {entry.get('n_rows', '?')} rows x {entry.get('n_features', '?')}"
    sha = entry.get("sha256") if isinstance(entry.get("sha256"), str) else None
    return DatasetRef(
        entry["name"], "folder", entry["file"], entry["task"], str(data_dir), desc, sha
    )
