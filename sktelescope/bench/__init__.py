"""The cross-validated tabular benchmark behind ``sktelescope bench``.

The model registry (:data:`MODELS`, :func:`get_model`, :func:`build_model`,
:func:`get_config`), the networks' preprocessing (:func:`network_preprocessor`), the protocols
(:class:`Protocol`, :class:`RunScope`, ``protocol="paper"``) and the run itself
(:func:`run_benchmark`) are public here; the modules behind them are private.

Examples
--------
>>> from sktelescope.bench import run_benchmark
>>> result = run_benchmark(["sklearn:diabetes"], ["hgb"], budget=2, n_splits=1,
...                        out="bench-out", quick=True)  # doctest: +SKIP
>>> print(result.summary)  # doctest: +SKIP
"""

from sktelescope.bench._backends import BACKENDS
from sktelescope.bench._jobs import Job, run_job
from sktelescope.bench._models import (
    DEFAULT_NETWORK_SCALING,
    MODELS,
    NETWORK_SCALERS,
    PAPER_NETWORK,
    ModelSpec,
    available_models,
    build_model,
    default_models,
    derive_seed,
    get_config,
    get_model,
    network_preprocessor,
)
from sktelescope.bench._protocol import PRIMARY, Protocol, make_split, score_model, split_data
from sktelescope.bench._report import (
    budget_curves,
    load_verdict,
    select_best,
    summary_table,
    write_report,
)
from sktelescope.bench._run import BenchmarkInterrupted, BenchResult, run_benchmark
from sktelescope.bench._scope import (
    PAPER_CLOSEST,
    PAPER_DATASETS,
    PROTOCOLS,
    LensSettings,
    RunScope,
)
from sktelescope.bench._store import COLUMNS, ResultStore

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "DEFAULT_NETWORK_SCALING",
    "MODELS",
    "NETWORK_SCALERS",
    "PAPER_CLOSEST",
    "PAPER_DATASETS",
    "PAPER_NETWORK",
    "PRIMARY",
    "PROTOCOLS",
    "BenchResult",
    "BenchmarkInterrupted",
    "Job",
    "LensSettings",
    "ModelSpec",
    "Protocol",
    "ResultStore",
    "RunScope",
    "available_models",
    "budget_curves",
    "build_model",
    "default_models",
    "derive_seed",
    "get_config",
    "get_model",
    "load_verdict",
    "make_split",
    "network_preprocessor",
    "run_benchmark",
    "run_job",
    "score_model",
    "split_data",
    "select_best",
    "summary_table",
    "write_report",
]
