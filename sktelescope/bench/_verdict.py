"""The verdict: do the lens's measurements support the paper's explanation, and could they fail to?

The paper (its Case 2; :ref:`math-extremity`) explains why networks lose to boosted trees on
tabular data: on test sets with a growing share ``p`` of irregular inputs, the network's loss
relative to the trees' grows, the network's kernel-extremity ratio ``R(p)`` rises (while the
trees' stays bounded) and ``R`` tracks the gap. From the lens rows
(:mod:`sktelescope.bench._lens`, one per dataset x split, a split being a disjoint test fold
under K-fold) this module measures three effects, each per split:

- ``gap``: the scale-free gap slope, the least-squares slope over ``p`` of
  ``(L_NN(p) - L_GBT(p)) / L_GBT(0)``;
- ``contrast``: the network's R slope minus the trees' R slope (the trees' R is bounded by
  construction, see :data:`TREES_IDENTITY`, so "the network's R rises" is tested against it);
- ``correlation``: the Fisher z of the correlation over ``p`` of the network's ``R(p)`` with
  ``gap(p)`` on the same split (within the dataset, on matched folds).

Per dataset (the estimate is the mean over splits):

- a bootstrap over splits (with replacement) and, for the gap, over the test points within
  each split (the lens row's :data:`~sktelescope.bench._lens.BOOTSTRAP_REPLICATES` Poisson
  replicates) gives the standard error, computed exactly (the limit of infinitely many
  replicates, no Monte Carlo error); the interval is estimate ± ``t(n_splits - 1)`` x that
  error, the one-sided p-values ``P(T > estimate / error)`` and ``P(T < ...)``;
- the dataset is tested only when its mixed test sets have the run's set size, it has at
  least 2 splits, the trees win at ``p = 0`` (mean ``gap(0) > 0``: the paper's claim is about
  such datasets) and it is the first of its data source (:func:`source_of`: the same data
  counts once);
- outcome, with Holm's correction over the tested datasets: **supports** when every effect
  is significantly positive (each at ``alpha``, Holm over datasets: claiming all three is an
  intersection-union test, level ``alpha``); **contradicts** when some effect is
  significantly negative (Holm over datasets x effects); else **inconclusive**.

Across the tested datasets (the primary test): a random-effects meta-analysis of each effect
(DerSimonian-Laird between-dataset variance, the Hartung-Knapp-Sidik-Jonkman interval with
``t(k - 1)``, its variance never below the DerSimonian-Laird one), and, reported beside it, a
one-sided Wilcoxon signed-rank test of the per-dataset estimates. The suite **supports** the
explanation when all three pooled effects are significantly positive, **contradicts** it when
one is significantly negative (Bonferroni over the three), and is **inconclusive** otherwise
(with fewer than 2 tested datasets always). The report adds the share of datasets that
support it (with a Wilson interval) and the power of the primary test against an effect of
the paper's size (:data:`PAPER_EFFECT`).

``tests/test_verdict.py`` feeds this code simulated suites with a known truth: with no effect
it says *supports* in at most 5% of them, with an effect of the paper's size in most.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from sktelescope.bench._lens import PROPORTIONS, p_tag, slope

__all__ = [
    "ALPHA",
    "EFFECTS",
    "PAPER_EFFECT",
    "TREES_IDENTITY",
    "Estimates",
    "FoldData",
    "SuiteVerdict",
    "dataset_estimates",
    "decide",
    "fold_data",
    "holm",
    "meta_analysis",
    "source_of",
    "suite_outcomes",
]

ALPHA = 0.05
#: The three effects, in the order of every array's effect axis.
EFFECTS = ("gap", "contrast", "correlation")
#: An effect of the size the paper's Fig 5 (houses) suggests, read off the figure (the paper
#: reports no numbers): the relative MSE gap rising from 1 to about 3 with the network ~15%
#: worse at p = 0 (a scale-free slope of ~0.3), the network's R rising by ~1 while the
#: trees' stays flat, and R moving with the gap (r ~ 0.9, Fisher z 1.47).
PAPER_EFFECT = {"gap": 0.3, "contrast": 1.0, "correlation": 1.47}
#: Why the trees' R is not counted as evidence.
TREES_IDENTITY = (
    "The trees' R stays bounded by construction, not by finding: a tree stage's kernel row "
    "for an input is 1/n_leaf on the training points of the input's leaf, so its norm is "
    "1/sqrt(n_leaf), and every test input lands in a leaf that holds training points: at each "
    "stage the test maximum is at most the training maximum, R <= 1 (up to the denominator's "
    "2,000-row training subset, which can miss the smallest leaf). It is stated, not tested; "
    "the network's R is tested against it (the contrast)."
)
#: Datasets of one source under two names (besides the same name in two groups).
_ALIASES = {"california": "houses"}


def source_of(dataset: str) -> str:
    """The data source of a dataset name: its name without the group, aliases resolved.

    ``clf_num/house_16H`` and ``reg_num/house_16H`` are one source; so are
    ``clf_num/california`` and ``reg_num/houses`` (California housing, binarised at its median
    for the classification version).

    Examples
    --------
    >>> source_of("clf_num/california") == source_of("reg_num/houses")
    True
    >>> source_of("sklearn:diabetes")
    'diabetes'
    """
    name = dataset.rsplit("/", 1)[-1].split(":")[-1]
    return _ALIASES.get(name, name)


# --------------------------------------------------------------------------- per-split data


@dataclass
class FoldData:
    """Per dataset x split measures, arrays padded with NaN to the largest split count.

    Shapes: ``(n, k, F)`` for ``gap_slope``, ``(n, k, F, B)`` for ``gap_boot`` (point
    bootstrap replicates), ``(n, k, F, P)`` for the per-``p`` curves; ``n`` simulated suites
    (1 for a real run), ``k`` datasets, ``F`` splits, ``P`` proportions.

    Examples
    --------
    >>> curves = np.zeros((1, 2, 3, 5))
    >>> data = FoldData(curves, curves, curves, np.zeros((1, 2, 3)), np.zeros((1, 2, 3, 4)))
    >>> data.n_folds.tolist(), data.per_fold_effects().shape
    ([[3, 3]], (1, 2, 3, 3))
    """

    net_ratio: np.ndarray
    trees_ratio: np.ndarray
    gap: np.ndarray
    gap_slope: np.ndarray
    gap_boot: np.ndarray

    @property
    def n_folds(self) -> np.ndarray:
        """Splits with a gap per dataset, ``(n, k)``."""
        return np.isfinite(self.gap_slope).sum(axis=-1)

    def per_fold_effects(self) -> np.ndarray:
        """The three effects of every split, ``(n, k, F, 3)`` (:data:`EFFECTS` order)."""
        contrast = slope(self.net_ratio) - slope(self.trees_ratio)
        return np.stack([self.gap_slope, contrast, _fisher_z(self.net_ratio, self.gap)], -1)


def _fisher_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Fisher z of the correlation of ``x`` with ``y`` over the last axis (0 where one of
    them is constant: no co-movement to see)."""
    xc, yc = x - x.mean(axis=-1, keepdims=True), y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / np.sqrt((xc**2).sum(-1) * (yc**2).sum(-1))
    finite = np.isfinite(x).all(-1) & np.isfinite(y).all(-1)
    r = np.where(finite & ~np.isfinite(r), 0.0, r)
    return np.arctanh(np.clip(r, -0.999, 0.999))


def _per_p(rows: pd.DataFrame, measure: str) -> np.ndarray:
    cols = [f"{measure}_{p_tag(p)}" for p in PROPORTIONS]
    return rows[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def _replicates(cells: pd.Series, n: int) -> np.ndarray:
    out = np.full((len(cells), n), np.nan)
    for i, cell in enumerate(cells):
        values = json.loads(cell) if isinstance(cell, str) and cell else []
        out[i, : min(n, len(values))] = values[:n]
    return out


def fold_data(rows: pd.DataFrame, datasets: list[str]) -> FoldData:
    """The :class:`FoldData` of lens rows (``n = 1``), datasets in the order given.

    Examples
    --------
    >>> fold_data(pd.DataFrame(columns=["dataset"]), []).gap_slope.shape
    (1, 0, 0)
    """
    groups = [rows[rows["dataset"] == d].sort_values("split") for d in datasets]
    n_folds = max((len(g) for g in groups), default=0)
    n_boot = max((len(json.loads(c)) for g in groups for c in g["gap_slope_boot"]
                  if isinstance(c, str) and c), default=1)  # fmt: skip
    shape = (1, len(datasets), n_folds)
    arrays = {m: np.full(shape + (len(PROPORTIONS),), np.nan)
              for m in ("net_ratio", "trees_ratio", "gap")}  # fmt: skip
    gap_slope, gap_boot = np.full(shape, np.nan), np.full(shape + (n_boot,), np.nan)
    for i, g in enumerate(groups):
        for m in arrays:
            arrays[m][0, i, : len(g)] = _per_p(g, m)
        gap_slope[0, i, : len(g)] = pd.to_numeric(g["gap_slope"], errors="coerce")
        gap_boot[0, i, : len(g)] = _replicates(g["gap_slope_boot"], n_boot)
    return FoldData(arrays["net_ratio"], arrays["trees_ratio"], arrays["gap"], gap_slope,
                    gap_boot)  # fmt: skip


# --------------------------------------------------------------------------- per dataset


@dataclass
class Estimates:
    """Per dataset and effect, arrays of shape ``(n, k, 3)``: ``estimate`` (mean over splits),
    ``se`` (bootstrap), ``low``/``high`` (95% interval), ``p_up``/``p_down`` (one-sided),
    and ``n_folds`` ``(n, k, 3)``; see :func:`dataset_estimates`.

    Examples
    --------
    >>> curves = np.zeros((1, 1, 2, 5))
    >>> est = dataset_estimates(FoldData(curves, curves, curves, np.zeros((1, 1, 2)),
    ...                                  np.zeros((1, 1, 2, 3))))
    >>> est.estimate.tolist(), est.n_folds.tolist()
    ([[[0.0, 0.0, 0.0]]], [[[2.0, 2.0, 2.0]]])
    """

    estimate: np.ndarray
    se: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_up: np.ndarray
    p_down: np.ndarray
    n_folds: np.ndarray


def _bootstrap_se(values: np.ndarray, point: np.ndarray | None = None) -> np.ndarray:
    """The standard error of the mean over splits under the bootstrap, exactly (its limit
    over infinitely many replicates), ``(n, k)``.

    A replicate draws the finite splits of ``values`` ``(n, k, F)`` with replacement; with
    ``point`` ``(n, k, F, B)``, each drawn split contributes one of its point-bootstrap
    replicates, drawn at random, instead of its value. A draw's variance is then the
    variance between the splits' replicate means plus the mean variance within them, and
    the mean of ``F`` draws has that over ``F``.
    """
    counts = np.isfinite(values).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN datasets give NaN
        if point is None:
            variance = np.nanvar(values, axis=-1)
        else:
            centres = np.where(np.isfinite(values), np.nanmean(point, axis=-1), np.nan)
            within = np.where(np.isfinite(values), np.nanvar(point, axis=-1), np.nan)
            variance = np.nanvar(centres, axis=-1) + np.nanmean(within, axis=-1)
        return np.sqrt(variance / counts)


def dataset_estimates(data: FoldData) -> Estimates:
    """Every effect's estimate, bootstrap error, interval and one-sided p-values per dataset.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = np.asarray(PROPORTIONS)
    >>> gap = 0.3 * p + rng.normal(0, 0.05, (1, 2, 5, 5))
    >>> data = FoldData(1 + p + 0 * gap, 0.5 + 0 * gap, gap, slope(gap),
    ...                 slope(gap)[..., None] + rng.normal(0, 0.05, (1, 2, 5, 50)))
    >>> est = dataset_estimates(data)
    >>> est.estimate.shape, bool((est.p_up[..., 0] < 0.05).all())
    ((1, 2, 3), True)
    """
    effects = data.per_fold_effects()
    out = {name: np.full(effects.shape[:2] + (3,), np.nan) for name in
           ("estimate", "se", "low", "high", "p_up", "p_down", "n_folds")}  # fmt: skip
    for e in range(3):
        values = effects[..., e]
        counts = np.isfinite(values).sum(axis=-1)
        point = None
        if e == 0:
            point = np.where(np.isfinite(data.gap_boot), data.gap_boot, values[..., None])
        with np.errstate(invalid="ignore", divide="ignore"):
            estimate = np.nansum(values, axis=-1) / counts
        _fill(out, e, estimate, _bootstrap_se(values, point), counts)
    return Estimates(**out)


def _fill(out: dict, e: int, estimate, se, counts) -> None:
    """Interval and p-values from the estimate, its error and ``t(counts - 1)``."""
    df = np.where(counts >= 2, counts - 1, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(se > 0, estimate / se, np.sign(estimate) * np.inf)
        crit = stats.t.ppf(1 - ALPHA / 2, df)
        out["p_up"][..., e] = stats.t.sf(t, df)
        out["p_down"][..., e] = stats.t.cdf(t, df)
    out["estimate"][..., e] = np.where(counts > 0, estimate, np.nan)
    out["se"][..., e] = np.where(counts >= 2, se, np.nan)
    out["low"][..., e] = estimate - crit * se
    out["high"][..., e] = estimate + crit * se
    out["n_folds"][..., e] = counts


def holm(pvalues: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values over the last axis (NaN entries are left out and stay NaN).

    Examples
    --------
    >>> holm(np.array([0.01, 0.04, 0.03, np.nan])).round(3).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = np.isfinite(p).sum(axis=-1, keepdims=True)
    order = np.argsort(np.where(np.isfinite(p), p, np.inf), axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    rank = np.arange(p.shape[-1])
    scaled = np.where(np.isfinite(sorted_p), (m - rank) * sorted_p, np.nan)
    adjusted = np.minimum(np.fmax.accumulate(np.nan_to_num(scaled, nan=-np.inf), axis=-1), 1)
    adjusted = np.where(np.isfinite(sorted_p), adjusted, np.nan)
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


# --------------------------------------------------------------------------- across datasets


@dataclass
class Meta:
    """Random-effects meta-analysis per suite and effect, arrays ``(n, 3)``; see
    :func:`meta_analysis`."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p_up: np.ndarray
    p_down: np.ndarray
    tau2: np.ndarray
    k: np.ndarray


def meta_analysis(estimate: np.ndarray, se: np.ndarray, tested: np.ndarray) -> Meta:
    """DerSimonian-Laird random effects with the (modified) Hartung-Knapp-Sidik-Jonkman
    interval, per suite and effect, over the ``tested`` datasets with a finite estimate.

    Parameters
    ----------
    estimate, se : ndarray of shape (n, k, 3)
    tested : ndarray of bool, shape (n, k)

    Examples
    --------
    >>> theta = np.array([[[0.3], [0.2], [0.4], [0.35]]]).repeat(3, axis=2)
    >>> meta = meta_analysis(theta, 0.1 + 0 * theta, np.ones((1, 4), bool))
    >>> bool(meta.p_up[0, 0] < 0.05), int(meta.k[0, 0])
    (True, 4)
    """
    use = tested[..., None] & np.isfinite(estimate) & np.isfinite(se)
    theta = np.where(use, estimate, 0.0)
    var = np.where(use, np.maximum(se, 1e-12) ** 2, np.inf)
    k = use.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(use, 1.0 / var, 0.0)
        fixed = (w * theta).sum(1) / w.sum(1)
        q = (w * (theta - fixed[:, None]) ** 2).sum(1)
        c = w.sum(1) - (w**2).sum(1) / w.sum(1)
        tau2 = np.maximum(0.0, (q - (k - 1)) / c)
        ws = np.where(use, 1.0 / (var + tau2[:, None]), 0.0)
        mu = (ws * theta).sum(1) / ws.sum(1)
        q_hk = (ws * (theta - mu[:, None]) ** 2).sum(1) / (k - 1)
        se_mu = np.sqrt(np.maximum(1.0, q_hk) / ws.sum(1))
        df = np.where(k >= 2, k - 1, np.nan)
        t = mu / se_mu
        crit = stats.t.ppf(1 - ALPHA / 2, df)
        return Meta(mu, mu - crit * se_mu, mu + crit * se_mu, stats.t.sf(t, df),
                    stats.t.cdf(t, df), tau2, k)  # fmt: skip


def suite_outcomes(meta: Meta) -> np.ndarray:
    """Per suite: ``"supports"`` when every pooled effect is significantly positive,
    ``"contradicts"`` when one is significantly negative (Bonferroni over the effects),
    else ``"inconclusive"``.

    Examples
    --------
    >>> meta = Meta(*(np.zeros((1, 3)),) * 3, np.full((1, 3), 0.01), np.full((1, 3), 0.99),
    ...             np.zeros((1, 3)), np.full((1, 3), 5))
    >>> suite_outcomes(meta).tolist()
    ['supports']
    """
    up = np.nan_to_num(meta.p_up, nan=1.0)
    down = np.nan_to_num(meta.p_down, nan=1.0)
    supports = (up < ALPHA).all(axis=1)
    contradicts = (down < ALPHA / meta.p_up.shape[1]).any(axis=1)
    return np.where(supports, "supports", np.where(contradicts, "contradicts", "inconclusive"))


def dataset_outcomes(est: Estimates, tested: np.ndarray) -> np.ndarray:
    """Per dataset ``(n, k)``: supports (every effect's Holm-adjusted one-sided p below
    ``alpha``, Holm over the tested datasets), contradicts (some effect's Holm-adjusted
    p-value for a negative effect below ``alpha``, Holm over datasets x effects),
    inconclusive, or ``"not tested"``."""
    up = np.where(tested[..., None], est.p_up, np.nan)
    down = np.where(tested[..., None], est.p_down, np.nan)
    up_adj = np.stack([holm(up[..., e]) for e in range(up.shape[-1])], axis=-1)
    n, k, m = down.shape
    down_adj = holm(down.reshape(n, k * m)).reshape(n, k, m)
    supports = (np.nan_to_num(up_adj, nan=1.0) < ALPHA).all(axis=-1)
    contradicts = (np.nan_to_num(down_adj, nan=1.0) < ALPHA).any(axis=-1)
    outcome = np.where(supports, "supports", np.where(contradicts, "contradicts",
                                                      "inconclusive"))  # fmt: skip
    return np.where(tested, outcome, "not tested")


def simulated_verdicts(data: FoldData, tested: np.ndarray) -> np.ndarray:
    """The suite outcome of every simulated suite of ``data``: the verdict code end to end,
    vectorised (the calibration tests call it).

    Examples
    --------
    >>> data = FoldData(*(np.zeros((2, 3, 4, 5)),) * 3, np.zeros((2, 3, 4)),
    ...                 np.zeros((2, 3, 4, 1)))
    >>> simulated_verdicts(data, np.ones((2, 3), bool)).tolist()
    ['inconclusive', 'inconclusive']
    """
    est = dataset_estimates(data)
    return suite_outcomes(meta_analysis(est.estimate, est.se, tested))


# --------------------------------------------------------------------------- the run's verdict


@dataclass
class SuiteVerdict:
    """The verdict of one run: per-dataset table, pooled effects, tests and the outcome.

    Attributes
    ----------
    table : DataFrame
        One row per dataset: for each effect its estimate, ``low``, ``high``, ``p_up``,
        ``p_down`` and ``n_folds``; ``gap_p000`` (mean scale-free gap at ``p = 0``),
        ``set_size``, ``tested``, ``reason`` (why not tested) and ``outcome``.
    pooled : DataFrame
        One row per effect: the random-effects estimate and interval, ``tau2``, one-sided
        p-values, the number of datasets, the Wilcoxon signed-rank p-value and the power
        against :data:`PAPER_EFFECT`.
    outcome : {"supports", "contradicts", "inconclusive"}
    reasons : list of str
        Why the outcome is what it is, in plain sentences.
    rate, rate_low, rate_high : float
        Share of tested datasets whose outcome is *supports*, with its Wilson interval.

    Examples
    --------
    >>> verdict = decide(pd.DataFrame())
    >>> verdict.outcome, verdict.n_tested, verdict.sentence
    ('inconclusive', 0, 'No lens results: nothing to judge.')
    """

    table: pd.DataFrame
    pooled: pd.DataFrame
    outcome: str
    reasons: list = field(default_factory=list)
    rate: float = np.nan
    rate_low: float = np.nan
    rate_high: float = np.nan

    @property
    def n_tested(self) -> int:
        """Datasets in the across-dataset test."""
        return int(self.table["tested"].sum()) if len(self.table) else 0

    @property
    def sentence(self) -> str:
        """The outcome in one plain paragraph."""
        if self.table.empty:
            return "No lens results: nothing to judge."
        return _sentence(self)


def _eligibility(rows: pd.DataFrame, datasets: list[str], data: FoldData,
                 est: Estimates) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """Which datasets are tested, and why each other one is not."""
    tested, reasons, seen = [], [], {}
    gap0 = np.nanmean(data.gap[0, :, :, 0], axis=1) if len(datasets) else np.zeros(0)
    for i, d in enumerate(datasets):
        group = rows[rows["dataset"] == d]
        target = pd.to_numeric(group["set_size_target"], errors="coerce").max()
        size = pd.to_numeric(group["set_size"], errors="coerce").min()
        reason = ""
        if not size >= target:
            reason = f"mixed test sets of {size:.0f} points, below the run's {target:.0f}"
        elif est.n_folds[0, i, 0] < 2:
            reason = "one split: no interval"
        elif not gap0[i] > 0:
            reason = f"the network wins at p = 0 (gap(0) = {gap0[i]:.3g}): outside the claim"
        elif source_of(d) in seen:
            reason = f"same source as {seen[source_of(d)]}: counted once"
        if not reason:
            seen[source_of(d)] = d
        tested.append(not reason)
        reasons.append(reason)
    return np.array(tested, dtype=bool), reasons


def _source_order(rows: pd.DataFrame) -> list[str]:
    """Datasets sorted so that, within a source, regression (the paper's MSE) comes first."""
    tasks = rows.groupby("dataset")["task"].first()
    return sorted(tasks.index, key=lambda d: (tasks[d] != "regression", d))


def _wilcoxon(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if len(values) < 1 or np.all(values == 0):
        return np.nan
    return float(stats.wilcoxon(values, alternative="greater").pvalue)


def power(effect: float, se2: float, tau2: float, k: int) -> float:
    """Power of the one-sided pooled test at ``alpha`` against a true mean ``effect``, with
    ``k`` datasets of sampling variance ``se2`` and between-dataset variance ``tau2``
    (non-central t with ``k - 1`` degrees of freedom).

    Examples
    --------
    >>> round(power(0.3, 0.04, 0.0, 5), 2), power(0.3, 0.04, 0.0, 1)
    (0.86, 0.0)
    """
    if k < 2 or not np.isfinite(se2):
        return 0.0
    ncp = effect / np.sqrt((se2 + tau2) / k)
    return float(stats.nct.sf(stats.t.ppf(1 - ALPHA, k - 1), k - 1, ncp))


def _pooled_table(meta: Meta, est: Estimates, tested: np.ndarray) -> pd.DataFrame:
    records = []
    for e, name in enumerate(EFFECTS):
        values = est.estimate[0, tested, e]
        se2 = float(np.nanmedian(est.se[0, tested, e] ** 2)) if tested.any() else np.nan
        k = int(meta.k[0, e])
        records.append({
            "effect": name, "estimate": meta.estimate[0, e], "low": meta.low[0, e],
            "high": meta.high[0, e], "tau2": meta.tau2[0, e], "p_up": meta.p_up[0, e],
            "p_down": meta.p_down[0, e], "k": k, "wilcoxon_p": _wilcoxon(values),
            "power": power(PAPER_EFFECT[name], se2, float(np.nan_to_num(meta.tau2[0, e])), k),
        })  # fmt: skip
    return pd.DataFrame(records)


def _wilson(successes: int, n: int) -> tuple[float, float, float]:
    if n == 0:
        return np.nan, np.nan, np.nan
    z, rate = stats.norm.ppf(1 - ALPHA / 2), successes / n
    centre = (rate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    return rate, max(0.0, centre - half), min(1.0, centre + half)


def decide(rows: pd.DataFrame) -> SuiteVerdict:
    """The verdict of a run's successful lens rows (the rule of the module docstring).

    Examples
    --------
    >>> decide(pd.DataFrame()).outcome
    'inconclusive'
    """
    if rows.empty:
        return SuiteVerdict(pd.DataFrame(), pd.DataFrame(), "inconclusive",
                            ["no lens results"])  # fmt: skip
    datasets = _source_order(rows)
    data = fold_data(rows, datasets)
    est = dataset_estimates(data)
    tested, why = _eligibility(rows, datasets, data, est)
    meta = meta_analysis(est.estimate, est.se, tested[None])
    table = _dataset_table(datasets, data, est, tested, why, rows)
    table["outcome"] = dataset_outcomes(est, tested[None])[0]
    pooled = _pooled_table(meta, est, tested)
    outcome = str(suite_outcomes(meta)[0])
    rate = _wilson(int((table["outcome"] == "supports").sum()), int(tested.sum()))
    return SuiteVerdict(table, pooled, outcome, _reasons(outcome, pooled, int(tested.sum())),
                        *rate)  # fmt: skip


def _dataset_table(datasets, data: FoldData, est: Estimates, tested, why, rows) -> pd.DataFrame:
    table = pd.DataFrame({"dataset": datasets})
    for e, name in enumerate(EFFECTS):
        for field_name in ("estimate", "low", "high", "p_up", "p_down", "n_folds"):
            table[f"{name}_{field_name}"] = getattr(est, field_name)[0, :, e]
    table["gap_p000"] = np.nanmean(data.gap[0, :, :, 0], axis=1) if len(datasets) else []
    for measure in ("net_ratio", "trees_ratio"):
        table[f"{measure}_slope"] = np.nanmean(slope(getattr(data, measure)[0]), axis=1)
    sizes = rows.groupby("dataset")["set_size"].min()
    table["set_size"] = [sizes[d] for d in datasets]
    table["tested"], table["reason"] = tested, why
    return table


def _reasons(outcome: str, pooled: pd.DataFrame, k: int) -> list[str]:
    """Plain sentences: why the suite-level outcome is what it is."""
    if k < 2:
        return [f"{k} dataset{'s' if k != 1 else ''} tested: the across-dataset test needs at "
                "least 2 (and has little power below 5)"]  # fmt: skip
    lines = []
    for r in pooled.itertuples():
        sign = "positive" if r.p_up < ALPHA else "negative" if r.p_down < ALPHA / 3 else None
        lines.append(f"{r.effect}: pooled {r.estimate:.3g} [{r.low:.3g}, {r.high:.3g}], "
                     + (f"significantly {sign}" if sign else "not significant")
                     + f" (one-sided p = {r.p_up:.3g}; power against the paper's size "
                     f"{r.power:.2f})")  # fmt: skip
    smallest = 0.5**k
    if smallest >= ALPHA:
        lines.append(f"with {k} datasets the one-sided Wilcoxon test cannot go below "
                     f"p = {smallest:.3g}")  # fmt: skip
    return lines


def _untested_counts(table: pd.DataFrame) -> str:
    """``"2 have sets below the run's size, 1 has one split"`` for the untested datasets."""
    kinds = {"below the run's": "have mixed test sets below the run's size",
             "one split": "have a single split", "network wins": "are won by the network at "
             "p = 0", "same source": "repeat a source"}  # fmt: skip
    reasons = table.loc[~table["tested"], "reason"]
    counts = {text: int(reasons.str.contains(key, regex=False).sum()) for key, text in
              kinds.items()}  # fmt: skip
    return ", ".join(f"{n} {text}" for text, n in counts.items() if n)


def _sentence(verdict: SuiteVerdict) -> str:
    """The outcome in plain words, with why when the suite is too small to conclude."""
    k, n = verdict.n_tested, len(verdict.table)
    if k < 2:
        why = _untested_counts(verdict.table)
        return (
            f"The suite is too small for a suite-level conclusion: {k} of its {n} datasets "
            f"can be tested{f' ({why})' if why else ''}, and the across-dataset test needs at "
            "least 2 (with 3 datasets the one-sided Wilcoxon test cannot go below p = 0.125, "
            "and the meta-analysis has little power below 5). The effect sizes above "
            "describe these data; they test nothing."
        )
    if verdict.outcome == "supports":
        return (
            f"On these {k} datasets the gap, the R contrast and the R-gap correlation "
            "are all significantly positive: the data support the paper's explanation."
        )
    if verdict.outcome == "contradicts":
        return (
            f"On these {k} datasets at least one effect the paper's explanation needs is "
            "significantly negative: the data contradict it."
        )
    return (
        f"On these {k} datasets not every effect the paper's explanation needs is "
        "significantly positive, and none is significantly negative: the data neither support "
        "nor contradict it (see the power above before reading this as absence)."
    )
