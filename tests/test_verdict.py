"""The verdict's statistics on simulated data with a known truth (no fitting).

The calibration tests feed the verdict code 1,000 simulated suites at a time: with no effect it
must say *supports* in at most 5% of them (in fact almost never: claiming all three effects is
an intersection-union test), also when only one of the effects the claim needs is real; with an
effect of the paper's size it must say *supports* in most. The noise is the size measured on the
core suite's houses splits (per-split SD of the gap slope ~0.3, of the R contrast ~0.1-0.3)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sktelescope.bench._lens import LENS_COLUMNS, PROPORTIONS, p_tag, slope
from sktelescope.bench._verdict import (
    EFFECTS,
    PAPER_EFFECT,
    FoldData,
    dataset_estimates,
    dataset_outcomes,
    decide,
    holm,
    meta_analysis,
    power,
    simulated_verdicts,
    source_of,
)

P = np.asarray(PROPORTIONS)
N_SUITES = 1_000


def simulate(n, k, folds=5, gap=0.0, contrast=0.0, tau_gap=0.0, tau_contrast=0.0, seed=0,
             point_sd=0.2, fold_sd=0.1, r_sd=0.1, r_fold_sd=0.2, n_boot=50):  # fmt: skip
    """``n`` suites of ``k`` datasets x ``folds`` splits: gap(p) and the network's R(p) are
    lines whose per-dataset slopes are ``gap`` and ``contrast`` (plus a between-dataset spread
    ``tau_*``), the trees' R is flat; every split adds its own slope noise and per-p noise;
    the gap's point-bootstrap replicates scatter by the per-p noise's effect on the slope."""
    rng = np.random.default_rng(seed)
    gap_d = gap + tau_gap * rng.normal(size=(n, k, 1, 1))
    con_d = contrast + tau_contrast * rng.normal(size=(n, k, 1, 1))
    gap_f = gap_d + fold_sd * rng.normal(size=(n, k, folds, 1))
    gap_curve = 0.15 + gap_f * P + point_sd * rng.normal(size=(n, k, folds, len(P)))
    con_f = con_d + r_fold_sd * rng.normal(size=(n, k, folds, 1))
    net = 1.0 + con_f * P + r_sd * rng.normal(size=(n, k, folds, len(P)))
    trees = 0.7 + r_sd * rng.normal(size=(n, k, folds, len(P)))
    gap_slope = slope(gap_curve)
    point_se = point_sd / np.sqrt(((P - P.mean()) ** 2).sum())
    boot = gap_slope[..., None] + point_se * rng.normal(size=(n, k, folds, n_boot))
    return FoldData(net, trees, gap_curve, gap_slope, boot)


def _rates(data: FoldData) -> dict:
    out = simulated_verdicts(data, np.ones(data.gap_slope.shape[:2], bool))
    return {o: float(np.mean(out == o)) for o in ("supports", "contradicts", "inconclusive")}


@pytest.mark.parametrize("k", [3, 5, 10])
def test_no_effect_rarely_supports_and_rarely_contradicts(k):
    for tau in (0.0, 0.3):  # no effect anywhere, or effects that cancel on average
        rates = _rates(simulate(N_SUITES, k, tau_gap=tau, tau_contrast=tau, seed=k))
        assert rates["supports"] <= 0.05, (k, tau, rates)
        assert rates["contradicts"] <= 0.06, (k, tau, rates)  # 5% nominal, +1% Monte Carlo


@pytest.mark.parametrize("real", ["gap", "contrast"])
def test_half_an_effect_is_not_support(real):
    """The least favourable null: one of the effects the claim needs is real, the other not."""
    rates = _rates(simulate(N_SUITES, 5, **{real: PAPER_EFFECT[real]}, seed=1))
    assert rates["supports"] <= 0.05, rates


def test_an_effect_of_the_papers_size_is_found_in_most_suites():
    data = simulate(N_SUITES, 5, gap=PAPER_EFFECT["gap"], contrast=PAPER_EFFECT["contrast"],
                    tau_gap=0.1, tau_contrast=0.3, seed=2)  # fmt: skip
    rates = _rates(data)
    assert rates["supports"] >= 0.8 and rates["contradicts"] == 0.0, rates


def test_a_negative_effect_contradicts():
    rates = _rates(simulate(N_SUITES, 5, gap=-0.3, contrast=1.0, seed=3))
    assert rates["contradicts"] >= 0.8 and rates["supports"] == 0.0, rates


def test_per_dataset_outcomes_are_calibrated_with_holm():
    """Under no effect, a suite of 10 datasets with one falsely supporting (or contradicting)
    dataset is rare; with the paper's effect on every dataset most datasets support it."""
    null = simulate(N_SUITES, 10, seed=4)
    est = dataset_estimates(null)
    outcome = dataset_outcomes(est, np.ones((N_SUITES, 10), bool))
    assert np.mean((outcome == "supports").any(axis=1)) <= 0.05
    assert np.mean((outcome == "contradicts").any(axis=1)) <= 0.06
    real = simulate(200, 10, gap=0.6, contrast=1.0, seed=5)
    outcome = dataset_outcomes(dataset_estimates(real), np.ones((200, 10), bool))
    assert np.mean(outcome == "supports") > 0.5


def test_intervals_cover_the_true_effect():
    """The per-dataset 95% intervals cover the true slope in about 95% of datasets (they are
    conservative: the point-level noise is counted in the splits' spread and again)."""
    data = simulate(400, 5, gap=0.3, contrast=1.0, seed=6)
    est = dataset_estimates(data)
    cover = (est.low[..., 0] <= 0.3) & (0.3 <= est.high[..., 0])
    assert 0.93 <= cover.mean() <= 1.0
    cover = (est.low[..., 1] <= 1.0) & (1.0 <= est.high[..., 1])
    assert 0.92 <= cover.mean() <= 1.0


def test_bootstrap_error_is_the_exact_limit_of_resampling():
    """The error the verdict uses equals a brute-force two-level bootstrap's."""
    rng = np.random.default_rng(7)
    data = simulate(1, 1, folds=4, gap=0.3, n_boot=30, seed=8)
    values, boot = data.gap_slope[0, 0], data.gap_boot[0, 0]
    folds = rng.integers(0, 4, size=(200_000, 4))
    draws = boot[folds, rng.integers(0, 30, size=folds.shape)].mean(axis=1)
    exact = dataset_estimates(data).se[0, 0, 0]
    assert exact == pytest.approx(draws.std(), rel=0.01)
    assert dataset_estimates(data).estimate[0, 0, 0] == pytest.approx(values.mean())


def test_meta_analysis_matches_a_hand_computation():
    theta = np.array([0.1, 0.4, 0.25, -0.05, 0.3])
    se = np.array([0.1, 0.15, 0.08, 0.12, 0.2])
    w = 1 / se**2
    fixed = (w * theta).sum() / w.sum()
    q = (w * (theta - fixed) ** 2).sum()
    tau2 = max(0.0, (q - 4) / (w.sum() - (w**2).sum() / w.sum()))
    ws = 1 / (se**2 + tau2)
    mu = (ws * theta).sum() / ws.sum()
    scale = max(1.0, (ws * (theta - mu) ** 2).sum() / 4)
    expected_p = stats.t.sf(mu / np.sqrt(scale / ws.sum()), 4)
    cube = np.repeat(theta[None, :, None], 3, axis=2)
    meta = meta_analysis(cube, np.repeat(se[None, :, None], 3, axis=2), np.ones((1, 5), bool))
    assert meta.estimate[0, 0] == pytest.approx(mu) and meta.tau2[0, 0] == pytest.approx(tau2)
    assert meta.p_up[0, 0] == pytest.approx(expected_p)
    untested = meta_analysis(cube, cube * 0 + 0.1, np.array([[True, False, False, False, False]]))
    assert np.isnan(untested.p_up).all() and int(untested.k[0, 0]) == 1  # one dataset: no test


def test_holm_and_power():
    assert holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert np.isnan(holm(np.array([np.nan, 0.2]))[0])
    assert power(0.3, 0.04, 0.0, 2) < power(0.3, 0.04, 0.0, 5) < power(0.3, 0.04, 0.0, 20)
    assert power(0.3, 0.04, 0.0, 1) == 0.0


def test_sources_are_counted_once():
    assert source_of("clf_num/house_16H") == source_of("reg_num/house_16H")
    assert source_of("clf_num/california") == source_of("reg_num/houses") == "houses"
    assert source_of("reg_num/pol") != source_of("reg_num/houses")


# --------------------------------------------------------------------------- lens rows


def _lens_row(dataset: str, split: int, gap_slope: float, contrast: float, rng, task="regression",
              gap0: float = 0.1, set_size: int = 500) -> dict:  # fmt: skip
    """A lens row whose curves are lines with the given slopes, plus a little noise."""
    gap = gap0 + gap_slope * P + rng.normal(0, 0.02, len(P))
    per_p = {"net_ratio": 1.0 + contrast * P + rng.normal(0, 0.02, len(P)),
             "trees_ratio": 0.7 + rng.normal(0, 0.02, len(P)), "gap": gap,
             "trees_loss": np.ones(len(P)), "net_loss": 1 + gap}  # fmt: skip
    row = {f"{m}_{p_tag(p)}": v[i] for m, v in per_p.items() for i, p in enumerate(PROPORTIONS)}
    boot = slope(gap) + rng.normal(0, 0.02, 40)
    row |= {"dataset": dataset, "split": split, "task": task, "set_size": set_size,
            "set_size_target": 500, "gap_slope": slope(gap), "gap_slope_boot": json.dumps(
                boot.tolist())}  # fmt: skip
    assert set(row) <= set(LENS_COLUMNS)
    return row


def _rows(specs: dict, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [_lens_row(name, s, *spec[:2], rng, **spec[2] if len(spec) > 2 else {})
            for name, spec in specs.items() for s in range(folds)]  # fmt: skip
    return pd.DataFrame(rows)


def test_decide_supports_when_every_effect_rises_on_many_datasets():
    specs = {f"reg_num/d{i}": (0.3 + 0.05 * i, 1.0) for i in range(6)}
    verdict = decide(_rows(specs))
    assert verdict.outcome == "supports", verdict.reasons
    assert (verdict.table["outcome"] == "supports").all() and verdict.n_tested == 6
    assert verdict.rate == 1.0 and verdict.rate_low > 0.5
    assert set(verdict.pooled["effect"]) == set(EFFECTS)


def test_decide_contradicts_a_falling_gap_and_names_untested_datasets():
    specs = {f"reg_num/d{i}": (-0.3, 1.0) for i in range(5)}
    specs["clf_num/d0"] = (0.3, 1.0, {"task": "binary"})  # the same source as reg_num/d0
    specs["reg_num/small"] = (0.3, 1.0, {"set_size": 40})
    specs["reg_num/netwins"] = (0.3, 1.0, {"gap0": -0.2})
    verdict = decide(_rows(specs))
    assert verdict.outcome == "contradicts"
    reasons = verdict.table.set_index("dataset")["reason"]
    assert "same source as reg_num/d0" in reasons["clf_num/d0"]
    assert "below the run's 500" in reasons["reg_num/small"]
    assert "network wins at p = 0" in reasons["reg_num/netwins"]
    assert verdict.n_tested == 5


def test_decide_is_inconclusive_and_says_why_on_a_tiny_suite():
    verdict = decide(_rows({"sklearn:a": (0.3, 1.0), "sklearn:b": (0.3, 1.0)}, folds=1))
    assert verdict.outcome == "inconclusive" and verdict.n_tested == 0
    assert verdict.table["reason"].str.contains("one split").all()
    assert "needs at least 2" in verdict.reasons[0]
    assert decide(pd.DataFrame()).outcome == "inconclusive"
