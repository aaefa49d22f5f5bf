"""Shared plumbing of the paper-figure examples: command line, data, output files, bands.

Not a gallery example (the leading underscore): the figure scripts import it from their
own folder. Each script writes ``<name>.png`` and ``<name>.json`` to ``examples/output/``
(or ``--out DIR``) and prints the JSON's headline numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

DEFAULT_OUT = Path(__file__).resolve().parent / "output"
REPO = Path(__file__).resolve().parent.parent


def shown(path: str | os.PathLike) -> str:
    """``path`` as the examples print it: relative to the repository root when it lies in the
    repository or beside it (``../shared/data/tabular``), so that a printed line (and the
    gallery page that shows it) names no folder of the machine that ran it."""
    relative = os.path.relpath(Path(path).resolve(), REPO)
    return relative if not relative.startswith(os.path.join("..", "..")) else str(path)


def parse_args(doc: str, argv: list[str] | None = None) -> argparse.Namespace:
    """``--fast`` (the CI mode) and ``--out DIR``; the description is the docstring's title."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small run for CI (about a minute)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for the PNG and the JSON"
    )
    return parser.parse_args(argv)


def start() -> float:
    """Use one torch thread (the machine is shared); returns the start time."""
    torch.set_num_threads(1)
    return time.perf_counter()


def digits(
    classes: tuple[int, ...], train_size: int | float, seed: int, *,
    label_noise: float = 0.0, n_components: int | None = None,
):  # fmt: skip
    """scikit-learn's 8x8 digits of ``classes``, split in train and test (stratified).

    ``label_noise`` replaces that share of the training labels by another class of
    ``classes`` (the test labels stay clean); ``n_components`` projects the images on the
    leading principal components of the training images (fitted on them only).
    Returns ``X_train, X_test, y_train, y_test``.
    """
    X, y = load_digits(return_X_y=True)
    keep = np.isin(y, classes)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X[keep], y[keep], train_size=train_size, random_state=seed, stratify=y[keep]
    )
    if label_noise:
        rng = np.random.default_rng(seed)
        flip = rng.random(len(y_tr)) < label_noise
        shift = rng.integers(1, len(classes), size=len(y_tr))
        index = np.searchsorted(np.array(classes), y_tr)
        y_tr = np.where(flip, np.array(classes)[(index + shift) % len(classes)], y_tr)
    if n_components:
        pca = PCA(n_components, random_state=seed).fit(X_tr)
        X_tr, X_te = pca.transform(X_tr), pca.transform(X_te)
    return X_tr, X_te, y_tr, y_te


def first_step_from(steps, holds) -> int | None:
    """First step from which ``holds`` stays true to the end (``None`` if it never does)."""
    holds = np.asarray(holds, dtype=bool)
    if not holds[-1]:
        return None
    failing = np.flatnonzero(~holds)
    first = 0 if len(failing) == 0 else failing[-1] + 1
    return int(np.asarray(steps)[first])


def pyplot():
    """matplotlib's pyplot, on the Agg backend when there is no display."""
    import matplotlib

    if "MPLBACKEND" not in os.environ and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def math_label(key: str) -> str:
    """``"p_train"`` -> ``$p^{\\mathrm{train}}$``, for legends."""
    name, where = key.split("_")
    return rf"${name}^{{\mathrm{{{where}}}}}$"


def band(ax, x, curves, label: str, **style) -> None:
    """Mean over seeds (line) and the range over seeds (shaded) of ``curves`` (seeds, x)."""
    curves = np.asarray(curves, dtype=float)
    line = ax.plot(x, np.nanmean(curves, axis=0), label=label, **style)[0]
    if len(curves) > 1:
        low, high = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)


def verdict(checks: dict[str, bool]) -> tuple[bool, str]:
    """All checks must hold; the reason names the ones that failed."""
    failed = [name for name, ok in checks.items() if not ok]
    if not failed:
        return True, "all checks hold: " + "; ".join(checks)
    return False, "failed: " + "; ".join(failed)


def write_outputs(fig, summary: dict, out: Path, name: str, started: float) -> None:
    """Save ``<name>.png`` and ``<name>.json`` (with the wall time) and print the summary."""
    summary["wall_time_s"] = round(time.perf_counter() - started, 1)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=120)
    with open(out / f"{name}.json", "w") as fh:
        json.dump(summary, fh, indent=1, ensure_ascii=False, default=_to_builtin)
    for key, value in summary.items():
        print(f"{key}: {json.dumps(value, ensure_ascii=False, default=_to_builtin)}")
    print(f"wrote {shown(out / name)}.png and .json in {summary['wall_time_s']} s")


def rounded(values, digits: int = 4) -> list:
    """A list of floats rounded for the JSON (``None`` for NaN)."""
    return [None if not np.isfinite(v) else round(float(v), digits) for v in np.ravel(values)]


def _to_builtin(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
