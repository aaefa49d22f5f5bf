"""The cross-validated tabular benchmark behind ``sktelescope bench``.

Examples
--------
>>> from sktelescope.bench import run_benchmark
>>> result = run_benchmark(["sklearn:diabetes"], ["hgb"], budget=2, n_splits=1,
...                        out="bench-out", quick=True)  # doctest: +SKIP
>>> print(result.summary)  # doctest: +SKIP
"""

from sktelescope.bench._backends import BACKENDS
from sktelescope.bench._jobs import Job, run_job
from sktelescope.bench._models import MODELS, available_models, build_model, get_config
from sktelescope.bench._protocol import Protocol, make_split, score_model
from sktelescope.bench._report import budget_curves, select_best, summary_table, write_report
from sktelescope.bench._run import BenchmarkInterrupted, BenchResult, run_benchmark
from sktelescope.bench._store import COLUMNS, ResultStore

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "MODELS",
    "BenchResult",
    "BenchmarkInterrupted",
    "Job",
    "Protocol",
    "ResultStore",
    "available_models",
    "budget_curves",
    "build_model",
    "get_config",
    "make_split",
    "run_benchmark",
    "run_job",
    "score_model",
    "select_best",
    "summary_table",
    "write_report",
]
