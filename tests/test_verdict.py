"""The verdict rule on synthetic lens rows (no fitting): slopes, gap flags, sign tests, the
Spearman correlation and the three conclusions."""

import numpy as np
import pandas as pd
import pytest

from sktelescope.bench._lens import MEASURES, PROPORTIONS, p_tag, relative_gap
from sktelescope.bench._verdict import dataset_verdicts, decide, slope, spearman

P = np.asarray(PROPORTIONS)


def _row(dataset: str, split: int, net_slope: float, gap_slope: float, trees_slope: float = 0.0,
         net_worse: bool = True) -> dict:  # fmt: skip
    """A lens row whose per-p measures are lines with the given slopes over p."""
    trees_loss = np.full(len(P), 1.0)
    diff0 = 0.5 if net_worse else -0.1
    net_loss = trees_loss + diff0 + gap_slope * P
    gap, flag = relative_gap(net_loss, trees_loss)
    per_p = {
        "net_ratio": 1.0 + net_slope * P,
        "trees_ratio": 0.8 + trees_slope * P,
        "net_loss": net_loss,
        "trees_loss": trees_loss,
        "loss_diff": net_loss - trees_loss,
        "gap": gap,
    }
    row = {f"{m}_{p_tag(p)}": v[i] for m, v in per_p.items() for i, p in enumerate(PROPORTIONS)}
    assert set(row) | {"gap_flag"} == set(MEASURES)
    return row | {"dataset": dataset, "split": split, "gap_flag": flag}


def _rows(specs: dict, noise: float = 0.01) -> pd.DataFrame:
    """Two splits per dataset, slopes +- noise."""
    rows = [
        _row(name, s, net + (-1) ** s * noise, gap + (-1) ** s * noise, trees)
        for name, (net, gap, trees) in specs.items()
        for s in range(2)
    ]
    return pd.DataFrame(rows)


def test_slope_is_least_squares_over_the_proportions():
    y = 2.0 + 3.0 * P + np.array([0.1, -0.1, 0.0, 0.1, -0.1])
    assert slope(y[None])[0] == pytest.approx(np.polyfit(P, y, 1)[0])
    assert np.isnan(slope([[1.0, np.nan, 1.0, 1.0, 1.0]])[0])


def test_relative_gap_and_its_flags():
    gap, flag = relative_gap([1.5, 2.0, 2.5, 3.0, 3.5], [1.0] * 5)
    assert flag == "" and gap[0] == 1.0 and np.allclose(gap, [1, 2, 3, 4, 5])
    gap, flag = relative_gap([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)  # equal at p = 0
    assert flag == "network_not_worse" and np.isnan(gap).all()
    gap, flag = relative_gap([0.8, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)  # network better at p = 0
    assert flag == "network_not_worse" and np.isnan(gap).all()
    gap, flag = relative_gap([1.005, 2.0, 3.0, 4.0, 5.0], [1.0] * 5)  # worse by 0.5%
    assert flag == "denominator_tiny" and np.isnan(gap).all()


def test_flagged_split_keeps_its_raw_difference_in_the_verdict():
    rows = pd.DataFrame([_row("d", 0, 0.5, 0.4, net_worse=False), _row("d", 1, 0.5, 0.6)])
    (rec,) = dataset_verdicts(rows).to_dict("records")
    assert rec["gap_flags"] == "network_not_worse (1)"
    assert rec["gap_slope_splits"] == 1 and rec["loss_diff_slope_splits"] == 2
    assert rec["loss_diff_slope_mean"] == pytest.approx(0.5)
    assert rec["gap_rises"] and rec["net_ratio_rises"] and rec["explanation_holds"]


def test_spearman_is_exact_for_few_datasets():
    rho, p = spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])
    # |rho| >= 0.8 for 2 x 8 of the 120 orders (sum of squared rank differences <= 4)
    assert rho == pytest.approx(0.8) and p == pytest.approx(16 / 120)
    assert spearman([1, 2, 3], [1, 2, 3])[1] == pytest.approx(1 / 3)
    assert np.isnan(spearman([1, 2, 3], [1, 1, 1])).all()  # constant: undefined


def test_verdict_holds_when_every_across_dataset_test_is_significant():
    specs = {f"d{i}": (0.2 * (i + 1), 0.3 * (i + 1), -0.05) for i in range(6)}
    verdict = decide(dataset_verdicts(_rows(specs)))
    assert verdict.conclusion == "holds", verdict
    assert (verdict.net_rises.k, verdict.gap_rises.k, verdict.trees_bounded.k) == (6, 6, 6)
    assert verdict.rho == pytest.approx(1.0) and verdict.rho_pvalue < 0.05
    assert verdict.sentence == "The paper's explanation holds on these 6 datasets."


def test_verdict_holds_on_some_datasets_only():
    specs = {f"d{i}": (-0.2 - 0.1 * i, -0.3, 0.0) for i in range(4)}
    specs |= {"up1": (0.5, 0.4, 0.0), "up2": (0.4, 0.2, 0.3)}  # up2: trees R rises above 1
    table = dataset_verdicts(_rows(specs))
    assert table.set_index("dataset")["trees_ratio_bounded"].to_dict()["up2"] is False
    verdict = decide(table)
    assert verdict.conclusion == "holds on these datasets only"
    assert verdict.holding == ["up1"] and "up1 (1 of 6)" in verdict.sentence


def test_verdict_does_not_hold_when_no_dataset_satisfies_it():
    specs = {f"d{i}": (0.3, -0.2, 0.0) for i in range(4)}  # R rises, but the gap falls
    verdict = decide(dataset_verdicts(_rows(specs)))
    assert verdict.conclusion == "does not hold" and verdict.holding == []
    assert (verdict.net_rises.k, verdict.gap_rises.k) == (4, 0)
    assert verdict.sentence.startswith("The paper's explanation does not hold")
    assert decide(pd.DataFrame()).conclusion == "no data"


def test_multiclass_datasets_do_not_need_the_trees_part():
    rows = _rows({"mc": (0.3, 0.3, 0.0)})
    for p in PROPORTIONS:
        rows[f"trees_ratio_{p_tag(p)}"] = np.nan
    (rec,) = dataset_verdicts(rows).to_dict("records")
    assert np.isnan(rec["trees_ratio_bounded"]) and rec["explanation_holds"]
    assert decide(pd.DataFrame([rec])).trees_bounded.n == 0
