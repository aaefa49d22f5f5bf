"""The two presets the estimators' ``"auto"`` settings come from: "tabular" and "paper".

``preset="tabular"`` (the default) is the network chosen by measurement on the 20 core
datasets (``benchmarks/defaults.py core``, issue 18: RealMLP-TD's mean rank at about a
tenth of its fit time); ``preset="paper"`` is the plain network of the paper, and the
package's default until 2026-12-07. Every parameter named in :data:`PRESETS` defaults to
``"auto"``, which takes the preset's value; a value set explicitly always wins.
:func:`resolve_params` is the one place that reads the table: training, the network's
architecture, the loss, the ``warm_start`` check and the lens's replay all see the
resolved settings.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

from sklearn.utils._param_validation import StrOptions

__all__ = [
    "AUTO",
    "AUTO_OPTION",
    "PRESETS",
    "PRESET_PARAMETERS",
    "early_stopping_min_samples",
    "preset_choices",
    "resolve_params",
]

#: The value that defers a setting to the preset, and its parameter constraint.
AUTO = "auto"
AUTO_OPTION = StrOptions({AUTO})

_PAPER_COMMON = {
    "hidden_layer_sizes": (256, 256),
    "activation": "relu",
    "numerical_embedding": None,
    "feature_scaling": False,
    "beta_2": 0.999,
    "lr_schedule": "constant",
    "dropout": 0.0,
    "max_iter": 200,
    "n_iter_no_change": 20,
}
_TABULAR_COMMON = {
    "hidden_layer_sizes": (256, 256),
    "activation": "relu",
    "numerical_embedding": "pbld",
    "feature_scaling": True,
    "beta_2": 0.95,
    "lr_schedule": "flat_cosine",
    "dropout": 0.15,
    # The whole flat-then-cosine schedule, the best validation epoch kept (no early stop:
    # at patience 20, early stopping cut the schedule before its cosine half).
    "max_iter": 64,
    "n_iter_no_change": None,
}

#: preset -> task -> the value of each ``"auto"`` setting. ``early_stopping_min_samples``
#: is where ``early_stopping="auto"`` starts holding out a validation split.
PRESETS: dict[str, dict[str, dict]] = {
    "tabular": {
        "regression": {**_TABULAR_COMMON, "early_stopping_min_samples": 20},
        "classification": {
            **_TABULAR_COMMON,
            "hidden_layer_sizes": (256, 256, 256),
            "activation": "selu",
            "label_smoothing": 0.1,
            "early_stopping_min_samples": 20,
        },
    },
    "paper": {
        "regression": {**_PAPER_COMMON, "early_stopping_min_samples": 20},
        "classification": {
            **_PAPER_COMMON,
            "label_smoothing": 0.0,
            "early_stopping_min_samples": 1_000,
        },
    },
}


#: The estimator parameters a preset fills (``"auto"`` by default).
PRESET_PARAMETERS = tuple(
    dict.fromkeys(
        name
        for by_task in PRESETS.values()
        for values in by_task.values()
        for name in values
        if name != "early_stopping_min_samples"
    )
)


def resolve_params(params: Mapping, task: str) -> dict:
    """``params`` (an estimator's ``get_params(deep=False)``) with every ``"auto"`` setting
    of :data:`PRESETS` replaced by the value of ``params["preset"]`` for ``task``.

    ``early_stopping`` stays ``"auto"`` (it depends on the number of rows; see
    :func:`early_stopping_min_samples`). Parameters without a ``preset`` (a fit recorded
    before presets existed) resolve with "paper", the settings those fits had.

    Examples
    --------
    >>> resolve_params({"preset": "paper", "max_iter": "auto", "dropout": 0.2}, "regression")
    {'preset': 'paper', 'max_iter': 200, 'dropout': 0.2}
    >>> resolve_params({"preset": "tabular", "activation": "auto"}, "classification")
    {'preset': 'tabular', 'activation': 'selu'}
    """
    values = PRESETS[params.get("preset", "paper")][task]
    return {
        name: values[name] if _is_auto(value) and name in values else value
        for name, value in params.items()
    }


def early_stopping_min_samples(params: Mapping, task: str) -> int:
    """Training rows from which ``early_stopping="auto"`` holds out a validation split.

    Examples
    --------
    >>> early_stopping_min_samples({"preset": "tabular"}, "classification")
    20
    >>> early_stopping_min_samples({"preset": "paper"}, "classification")
    1000
    """
    return PRESETS[params.get("preset", "paper")][task]["early_stopping_min_samples"]


def preset_choices(name: str) -> str:
    """The values ``"auto"`` takes for ``name`` under each preset, for its parameter doc
    (wrapped, continuation lines indented as in a numpydoc entry).

    Examples
    --------
    >>> preset_choices("dropout")
    '``"auto"``: 0.15 with ``preset="tabular"``, 0.0 with ``preset="paper"``.'
    >>> print(preset_choices("activation"))
    ``"auto"``: "relu" (regressor) / "selu" (classifier) with ``preset="tabular"``,
        "relu" with ``preset="paper"``.
    """
    parts = []
    for preset, by_task in PRESETS.items():
        tasks = [t for t in by_task if name in by_task[t]]
        values = [by_task[t][name] for t in tasks]
        if len(set(map(repr, values))) == 1:
            shown = repr(values[0]).replace("'", '"')
        else:
            shown = " / ".join(
                f"{v!r} ({_ESTIMATOR[t]})".replace("'", '"') for t, v in zip(tasks, values)
            )
        parts.append(f'{shown} with ``preset="{preset}"``')
    text = '``"auto"``: ' + ", ".join(parts) + "."
    return textwrap.fill(text, width=84, subsequent_indent="    ", break_on_hyphens=False)


_ESTIMATOR = {"regression": "regressor", "classification": "classifier"}


def _is_auto(value) -> bool:
    return isinstance(value, str) and value == AUTO
