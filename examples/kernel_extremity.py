"""Does the kernel-extremity ratio explain why the network loses to boosted trees? (Fig 5/14)
==========================================================================================

The paper's Case 2 protocol, through the benchmark (``sktelescope bench --protocol paper``):
regression with MSE on the paper's datasets available offline (``reg_num/houses``, which is
also its Fig 14 ``california``, and ``reg_cat/house_sales``) and the closest others of the
shared data folder (``house_16H``, ``diamonds``, ``seattlecrime6``: regression datasets of the
Grinsztajn et al. benchmark with more than 20,000 rows); the paper's 3 x 64 ReLU network
(``paper_mlp``) against scikit-learn's gradient boosting (``sklearn_gbt``), each tuned by a
random search of its own per fold; 5 disjoint test folds, 2 network seeds per fold. For the
best-validation models of each fold, test sets of 500 points with a share ``p`` of irregular
inputs (far from the training data in PCA space, :ref:`math-irregularity`) and, per ``p``:

- the kernel-extremity ratio ``R(p)`` of the network, from the per-step kernel of the very
  run that is scored (batch mask, step size, Adam's preconditioner; :ref:`math-extremity`),
  and of the trees;
- the scale-free gap ``(L_NN(p) - L_GBT(p)) / L_GBT(0)``.

The paper's finding: the gap grows with ``p``, the network's ``R`` rises while the trees' stays
bounded (by construction, see the summary), and ``R`` tracks the gap. The verdict tests each of
those per dataset (bootstrap intervals over folds and test points) and across datasets (a
random-effects meta-analysis); it can say *supports*, *contradicts* or *inconclusive*, and says
how much power it had. ``reproduces`` below is ``True`` only when it says *supports*.

What it shows is what the run shows: the committed run (``benchmarks/output/paper/``, see its
``summary.md``) is the one the README quotes; ``--results benchmarks/output/paper`` draws it
without fitting anything. Without the shared data folder the example runs the same protocol on
scikit-learn's diabetes data, which shows the mechanics only (its test folds are far too small
for the verdict's 500-point test sets, and the verdict says so).

Run::

    python examples/kernel_extremity.py --fast   # one dataset, 2 draws, short fits (CI)
    python examples/kernel_extremity.py --results benchmarks/output/paper   # the committed run
    python examples/kernel_extremity.py          # the paper protocol, 5,000 training rows (hours)
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _figures import DEFAULT_OUT, band, pyplot, rounded, shown, start, write_outputs

from sktelescope.bench import load_verdict, run_benchmark

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data" / "tabular"
DATA_DIR = Path(os.environ.get("SKTELESCOPE_DATA_DIR", SHARED))
P_TAGS = ("p000", "p025", "p050", "p075", "p100")
PROPORTIONS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="small run for CI (mechanics)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the outputs")
    parser.add_argument("--results", type=Path, help="a finished run's folder to draw instead")
    return parser.parse_args(argv)


def run(fast: bool, out: Path) -> tuple[Path, str]:
    """Run the paper protocol (resumable) and return its folder and the data it used."""
    folder = out / ("kernel_extremity_bench_fast" if fast else "kernel_extremity_bench")
    have_data = (DATA_DIR / "MANIFEST.json").exists()
    if not have_data:
        print(f"No data folder at {shown(DATA_DIR)}: running the protocol on scikit-learn's "
              "diabetes data instead (mechanics only, not the paper's finding).")  # fmt: skip
    datasets = None if have_data else ["sklearn:diabetes"]
    if fast and have_data:
        datasets = ["reg_num/houses"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_benchmark(
            datasets, data_dir=str(DATA_DIR) if have_data else None, protocol="paper",
            budget=2 if fast else None, max_train=1000 if fast else 5000, quick=fast,
            out=folder, n_jobs=1 if fast else 2, progress=False,
        )  # fmt: skip
    return folder, "shared folder" if have_data else "diabetes (fallback)"


def draw(rows: pd.DataFrame, verdict):
    plt = pyplot()
    table = verdict.table.sort_values("dataset").reset_index(drop=True)
    fig, axes = plt.subplots(2, len(table), figsize=(max(3.6 * len(table), 6), 6.4),
                             squeeze=False)  # fmt: skip
    for col, row in table.iterrows():
        split_rows = rows[rows["dataset"] == row["dataset"]]
        top, bottom = axes[0, col], axes[1, col]
        for measure, label, colour in (("net_ratio", "network", "C0"),
                                       ("trees_ratio", "trees", "C1")):  # fmt: skip
            curves = split_rows[[f"{measure}_{t}" for t in P_TAGS]].to_numpy(float)
            band(top, PROPORTIONS, curves, label, color=colour)
        gaps = split_rows[[f"gap_{t}" for t in P_TAGS]].to_numpy(float)
        band(bottom, PROPORTIONS, gaps, "scale-free gap", color="C2")
        top.set_title(f"{row['dataset']}\n{row['outcome']}", fontsize=8)
        top.axhline(1.0, color="grey", lw=0.8, ls="--")
        bottom.axhline(0.0, color="grey", lw=0.8, ls="--")
        bottom.set_xlabel("share p of irregular test inputs")
        top.legend(fontsize=7)
    axes[0, 0].set_ylabel("kernel-extremity ratio R(p)")
    axes[1, 0].set_ylabel("(L_NN(p) - L_GBT(p)) / L_GBT(0)")
    fig.suptitle(f"Paper protocol, verdict: {verdict.outcome}\n(lines: means over folds; bands: "
                 "the range over folds)", fontsize=9)  # fmt: skip
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def summarise(verdict, data: str) -> dict:
    datasets = {}
    for r in verdict.table.to_dict("records"):
        datasets[r["dataset"]] = {
            effect: rounded([r[f"{effect}_estimate"], r[f"{effect}_low"], r[f"{effect}_high"]])
            for effect in ("gap", "contrast", "correlation")
        } | {"outcome": r["outcome"], "reason": r["reason"], "set_size": int(r["set_size"])}
    pooled = {r["effect"]: rounded([r["estimate"], r["low"], r["high"], r["p_up"], r["power"]])
              for r in verdict.pooled.to_dict("records")}  # fmt: skip
    return {
        "figure": "Fig 5/14",
        "setup": f"sktelescope bench --protocol paper ({data})",
        "datasets": datasets,
        "pooled [estimate, low, high, p_up, power]": pooled,
        "outcome": verdict.outcome,
        "reproduces": verdict.outcome == "supports",
        "reason": verdict.sentence,
    }


def main(argv=None) -> None:
    args = parse_args(argv)
    started = start()
    folder, data = (args.results, "a finished run") if args.results else run(args.fast, args.out)
    rows, verdict = load_verdict(folder)
    summary = summarise(verdict, data)
    summary["mode"] = "fast" if args.fast else "full"
    write_outputs(draw(rows, verdict), summary, args.out, "kernel_extremity", started)


if __name__ == "__main__":
    main()
