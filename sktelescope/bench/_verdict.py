"""The verdict: does the paper's explanation of the network's loss hold on these datasets?

The paper (its Case 2; :ref:`math-extremity`) explains why networks lose to boosted trees on
tabular data: on test sets with a growing share ``p`` of irregular inputs, the network's
kernel-extremity ratio ``R(p)`` rises, the trees' stays bounded, and the network's relative loss
gap rises with it. From the lens rows (:mod:`sktelescope.bench._lens`, one per dataset x split)
this module measures each of those statements and decides, by a rule fixed here, before any data
is seen.

Per split, the least-squares slope over ``p`` of: the network's ``R(p)``, the trees' ``R(p)``,
the raw loss difference ``loss_diff(p) = L_NN(p) - L_GBT(p)`` and, where its denominator is
clearly positive (no ``gap_flag``), the relative gap ``gap(p)``. Per dataset (mean ± std over
splits, and how many splits are positive):

- the network's R **rises**: mean slope > 0 and at least half of the splits' slopes > 0;
- the trees' R **stays bounded**: mean slope <= 0, or the mean ``R(p)`` stays <= 1 for every
  ``p`` (no test input gets more kernel weight than the training inputs did); not measured on
  multiclass data (TreeTelescope is binary-only), where this part is not required;
- the gap **rises**: the raw difference's slope, by the same rule as R. Where the relative gap
  is defined its slope has the same sign (it is the raw difference over a positive
  constant), and the raw difference is defined on every split, also where the network is not
  worse on regular inputs;
- the explanation **holds here** when the three hold.

Across datasets (``alpha = 0.05``): one-sided sign tests (``scipy.stats.binomtest``, ``p0 =
0.5``, alternative "greater") of how many datasets have a rising network R, a rising gap and
bounded trees R; and the Spearman correlation (``scipy.stats.spearmanr``, two-sided p-value)
between the network's R slope and the relative gap's slope (mean per dataset, datasets with
a defined gap, at least 3 of them; exact permutation p-value up to 8 datasets). The conclusion:

- **holds**: the network's R rises on significantly many datasets AND the gap rises on
  significantly many AND the trees' R is bounded on significantly many (when measured
  anywhere) AND the correlation is positive and significant;
- **holds on these datasets only**: not all of that, but the per-dataset criteria hold on
  some datasets (named);
- **does not hold**: the per-dataset criteria hold on no dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sktelescope.bench._lens import PROPORTIONS, p_tag

__all__ = [
    "ALPHA",
    "Verdict",
    "dataset_verdicts",
    "decide",
    "slope",
    "spearman",
    "split_slopes",
]

ALPHA = 0.05
#: The trees' R counts as bounded when its mean stays at or below this at every proportion.
TREES_R_BOUND = 1.0
#: Slopes per split: name -> the per-proportion measure of the lens rows.
SLOPES = {
    "net_ratio": "net_ratio",
    "trees_ratio": "trees_ratio",
    "loss_diff": "loss_diff",
    "gap": "gap",
}


def slope(values) -> np.ndarray:
    """Least-squares slope over :data:`~sktelescope.bench._lens.PROPORTIONS` of each row.

    Parameters
    ----------
    values : array-like of shape (n_rows, n_proportions)

    Returns
    -------
    slopes : ndarray of shape (n_rows,)
        NaN for a row with a NaN.

    Examples
    --------
    >>> slope([[0.0, 0.25, 0.5, 0.75, 1.0], [1.0, 1.0, 1.0, 1.0, np.nan]])
    array([ 1., nan])
    """
    y = np.atleast_2d(np.asarray(values, dtype=np.float64))
    p = np.asarray(PROPORTIONS) - np.mean(PROPORTIONS)
    return (y - y.mean(axis=1, keepdims=True)) @ p / (p @ p)


def _per_p(rows: pd.DataFrame, measure: str) -> np.ndarray:
    cols = [f"{measure}_{p_tag(p)}" for p in PROPORTIONS]
    return rows[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def split_slopes(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per lens row: ``dataset``, ``split`` and the slope of each measure over ``p``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sktelescope.bench._lens import MEASURES
    >>> row = dict.fromkeys(MEASURES, 1.0) | {"dataset": "d", "split": 0, "gap_flag": ""}
    >>> split_slopes(pd.DataFrame([row]))["net_ratio_slope"].tolist()
    [0.0]
    """
    out = rows[["dataset", "split"]].reset_index(drop=True).copy()
    for name, measure in SLOPES.items():
        out[f"{name}_slope"] = slope(_per_p(rows, measure)) if len(rows) else []
    out["gap_flag"] = rows["gap_flag"].fillna("").to_numpy() if len(rows) else []
    return out


def _rises(slopes: pd.Series) -> bool:
    """Mean slope > 0 and at least half of the (finite) splits' slopes > 0."""
    s = slopes.dropna()
    return bool(len(s) and s.mean() > 0 and 2 * (s > 0).sum() >= len(s))


def _spread(prefix: str, slopes: pd.Series) -> dict:
    s = slopes.dropna()
    return {
        f"{prefix}_slope_mean": s.mean() if len(s) else np.nan,
        f"{prefix}_slope_std": s.std(ddof=1) if len(s) > 1 else np.nan,
        f"{prefix}_slope_positive": int((s > 0).sum()),
        f"{prefix}_slope_splits": int(len(s)),
    }


def dataset_verdicts(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: slopes (mean, std, positive splits, splits), the mean and std over splits
    of each measure per ``p``, and the criteria ``net_ratio_rises``, ``trees_ratio_bounded``
    (NaN when not measured), ``gap_rises`` and ``explanation_holds``.

    Parameters
    ----------
    rows : DataFrame
        Successful lens rows (:data:`~sktelescope.bench._lens.LENS_COLUMNS`).
    """
    slopes = split_slopes(rows)
    records = []
    for dataset, group in slopes.groupby("dataset", sort=True):
        data = rows[rows["dataset"] == dataset]
        rec = {"dataset": dataset, "lens_splits": len(group)}
        for name in SLOPES:
            rec.update(_spread(name, group[f"{name}_slope"]))
        for measure in ("net_ratio", "trees_ratio", "gap", "loss_diff"):
            rec.update(_per_p_spread(data, measure))
        flags = sorted({f for f in group["gap_flag"] if f})
        rec["gap_flags"] = ", ".join(f"{f} ({(group['gap_flag'] == f).sum()})" for f in flags)
        records.append(_criteria(rec, group))
    return pd.DataFrame(records)


def _per_p_spread(data: pd.DataFrame, measure: str) -> dict:
    """Mean and std over splits of ``measure`` at each proportion (``<measure>_p025``,
    ``<measure>_p025_std``; NaN where no split has it)."""
    values, out = _per_p(data, measure), {}
    for i, p in enumerate(PROPORTIONS):
        v = values[:, i][np.isfinite(values[:, i])]
        out[f"{measure}_{p_tag(p)}"] = v.mean() if len(v) else np.nan
        out[f"{measure}_{p_tag(p)}_std"] = v.std(ddof=1) if len(v) > 1 else np.nan
    return out


def _criteria(rec: dict, group: pd.DataFrame) -> dict:
    rec["net_ratio_rises"] = _rises(group["net_ratio_slope"])
    rec["gap_rises"] = _rises(group["loss_diff_slope"])
    trees = [rec[f"trees_ratio_{p_tag(p)}"] for p in PROPORTIONS]
    if np.isfinite(rec["trees_ratio_slope_mean"]):
        bounded = rec["trees_ratio_slope_mean"] <= 0 or max(trees) <= TREES_R_BOUND
        rec["trees_ratio_bounded"] = bool(bounded)
    else:
        rec["trees_ratio_bounded"] = np.nan  # not measured (multiclass)
    trees_ok = rec["trees_ratio_bounded"] is not False
    rec["explanation_holds"] = bool(rec["net_ratio_rises"] and rec["gap_rises"] and trees_ok)
    return rec


@dataclass
class SignTest:
    """``k`` of ``n`` datasets satisfy a criterion; one-sided binomial p-value (p0 = 0.5)."""

    k: int
    n: int
    pvalue: float

    @property
    def significant(self) -> bool:
        """Whether ``pvalue < ALPHA``."""
        return bool(self.n and self.pvalue < ALPHA)

    def text(self) -> str:
        """``k/n (p = ...)``."""
        return f"{self.k}/{self.n} (sign test p = {self.pvalue:.3g})" if self.n else "0/0"


def _sign_test(flags: pd.Series) -> SignTest:
    from scipy.stats import binomtest

    values = flags.dropna().astype(bool)
    k, n = int(values.sum()), int(len(values))
    return SignTest(k, n, binomtest(k, n, 0.5, alternative="greater").pvalue if n else np.nan)


@dataclass
class Verdict:
    """The across-dataset tests and the conclusion (see the module docstring for the rule).

    Attributes
    ----------
    net_rises, gap_rises, trees_bounded : SignTest
    rho, rho_pvalue : float
        Spearman correlation of the network's R slope with the relative gap's slope across
        datasets, and its two-sided p-value (NaN with fewer than 3 datasets).
    n_rho : int
        Datasets in the correlation.
    holding : list of str
        Datasets where the per-dataset criteria hold.
    conclusion : {"holds", "holds on these datasets only", "does not hold", "no data"}
    sentence : str
        The conclusion in one plain sentence.
    """

    net_rises: SignTest
    gap_rises: SignTest
    trees_bounded: SignTest
    rho: float
    rho_pvalue: float
    n_rho: int
    holding: list = field(default_factory=list)
    conclusion: str = "no data"
    sentence: str = ""

    @property
    def trees_ok(self) -> bool:
        """The trees' R is bounded on significantly many datasets (or measured on none)."""
        return self.trees_bounded.significant or self.trees_bounded.n == 0

    @property
    def correlated(self) -> bool:
        """The correlation is positive and significant."""
        return bool(self.rho > 0 and self.rho_pvalue < ALPHA)


def spearman(x, y) -> tuple[float, float]:
    """Spearman's rho of ``x`` and ``y`` and its two-sided p-value: exact (every permutation
    of ``y``) for up to 8 points, where the t approximation of :func:`scipy.stats.spearmanr`
    would call a perfect rank order of 3 points significant; ``spearmanr``'s beyond.

    Examples
    --------
    >>> rho, p = spearman([1, 2, 3], [1, 2, 3])
    >>> float(rho), round(float(p), 3)
    (1.0, 0.333)
    """
    from itertools import permutations

    from scipy.stats import rankdata, spearmanr

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan  # a constant has no rank order
    res = spearmanr(x, y)
    rho = float(res.statistic)
    if len(x) > 8 or not np.isfinite(rho):
        return rho, float(res.pvalue)
    rx, ry = rankdata(x) - (len(x) + 1) / 2, rankdata(y) - (len(y) + 1) / 2
    scale = np.sqrt((rx @ rx) * (ry @ ry))
    perms = np.array(list(permutations(ry)))
    null = perms @ rx / scale
    return rho, float(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def _spearman(table: pd.DataFrame) -> tuple[float, float, int]:
    both = table[["net_ratio_slope_mean", "gap_slope_mean"]].dropna()
    if len(both) < 3:
        return np.nan, np.nan, len(both)
    rho, pvalue = spearman(both["net_ratio_slope_mean"], both["gap_slope_mean"])
    return rho, pvalue, len(both)


def decide(table: pd.DataFrame) -> Verdict:
    """Apply the rule of the module docstring to :func:`dataset_verdicts`' table.

    Examples
    --------
    >>> import pandas as pd
    >>> decide(pd.DataFrame()).conclusion
    'no data'
    """
    if table.empty:
        empty = SignTest(0, 0, np.nan)
        sentence = "The paper's explanation cannot be judged: no lens results."
        return Verdict(empty, empty, empty, np.nan, np.nan, 0, sentence=sentence)
    rho, rho_p, n_rho = _spearman(table)
    v = Verdict(
        _sign_test(table["net_ratio_rises"]),
        _sign_test(table["gap_rises"]),
        _sign_test(table["trees_ratio_bounded"]),
        rho,
        rho_p,
        n_rho,
        table.loc[table["explanation_holds"], "dataset"].tolist(),
    )
    if v.net_rises.significant and v.gap_rises.significant and v.trees_ok and v.correlated:
        v.conclusion = "holds"
        v.sentence = f"The paper's explanation holds on these {len(table)} datasets."
    elif v.holding:
        v.conclusion = "holds on these datasets only"
        v.sentence = (
            f"The paper's explanation holds on these datasets only: {', '.join(v.holding)} "
            f"({len(v.holding)} of {len(table)}); the across-dataset tests are not all "
            "significant."
        )
    else:
        v.conclusion = "does not hold"
        v.sentence = (
            f"The paper's explanation does not hold: on none of the {len(table)} datasets do "
            "the network's R and the gap both rise with the share of irregular inputs while "
            "the trees' R stays bounded."
        )
    return v
