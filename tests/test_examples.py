"""Every example runs end to end in its fast mode (what CI can afford); the paper-figure
examples also write their PNG and a JSON with the headline numbers they document."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).parents[1] / "examples"
EXAMPLES = sorted(p for p in EXAMPLES_DIR.glob("*.py") if not p.name.startswith("_"))

# example -> keys its JSON must hold (beyond "figure", "setup", "reproduces", "reason")
FIGURES = {
    "effective_parameters": {"widths", "p_train", "p_test", "mse_train", "mse_test",
                             "interpolation_width", "p_test_peak_width"},
    "grokking": {"runs"},
    "mode_connectivity": {"spawn_steps", "barrier", "accuracy_gap",
                          "gradient_change_at_spawns", "lmc_step", "stable_steps"},
}  # fmt: skip
RUN_KEYS = {"fit_step", "generalisation_step", "divergence_step", "final_test_accuracy"}


def run_fast(script: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), "--fast", *extra],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_in_fast_mode(script, tmp_path):
    extra = ("--out", str(tmp_path)) if script.stem in FIGURES else ()
    result = run_fast(script, tmp_path, *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip(), "an example should print what it measured"
    if script.stem not in FIGURES:
        return
    assert (tmp_path / f"{script.stem}.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / f"{script.stem}.json").read_text())
    expected = FIGURES[script.stem] | {"figure", "setup", "reproduces", "reason"}
    assert expected <= summary.keys(), expected - summary.keys()
    assert isinstance(summary["reproduces"], bool) and summary["reason"]
    assert summary["mode"] == "fast"
    for run in summary.get("runs", {}).values():
        assert RUN_KEYS <= run.keys()
