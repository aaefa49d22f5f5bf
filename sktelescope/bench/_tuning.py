"""The tuning section of ``summary.md``: which configuration won on each split, and which
models never beat their defaults.

A search whose default wins everywhere is no search: either the space's draws are worse than
the library default on these data (the spaces are checked for draws that are underfits by
construction, ``tests/test_search_spaces.py``) or the budget is too small to find better.
The section says which, as far as the rows can: it names such models.
"""

from __future__ import annotations

import pandas as pd

from sktelescope.bench._markdown import markdown_cell, markdown_table
from sktelescope.bench._scope import RunScope

__all__ = ["default_everywhere", "tuning_markdown", "winners"]


def winners(best: pd.DataFrame) -> pd.DataFrame:
    """Per dataset x model: the winning configuration of each split (in split order) and on
    how many splits the default (configuration 0) won.

    Examples
    --------
    >>> best = pd.DataFrame({"dataset": ["d", "d"], "split": [0, 1], "model": ["m", "m"],
    ...                      "config": [0, 3]})
    >>> winners(best).to_dict("records")
    [{'dataset': 'd', 'model': 'm', 'configs': '0, 3', 'default_wins': 1, 'splits': 2}]
    """
    if best.empty:
        return pd.DataFrame(columns=["dataset", "model", "configs", "default_wins", "splits"])
    ordered = best.sort_values(["dataset", "model", "split"])
    grouped = ordered.groupby(["dataset", "model"], sort=True)["config"]
    return pd.DataFrame(
        {
            "configs": grouped.agg(lambda c: ", ".join(str(int(v)) for v in c)),
            "default_wins": grouped.agg(lambda c: int((c == 0).sum())),
            "splits": grouped.size(),
        }
    ).reset_index()


def default_everywhere(best: pd.DataFrame) -> list[str]:
    """Models whose default configuration won on every split of every dataset.

    Examples
    --------
    >>> best = pd.DataFrame({"dataset": ["d", "e"], "split": [0, 0], "model": ["m", "m"],
    ...                      "config": [0, 0]})
    >>> default_everywhere(best)
    ['m']
    """
    if best.empty:
        return []
    won = best.groupby("model")["config"].agg(lambda c: bool((c == 0).all()))
    return sorted(won.index[won])


def _draws(n: int) -> str:
    return f"{n} configuration{'' if n == 1 else 's'}"


def tuning_markdown(best: pd.DataFrame, scope: RunScope) -> str:
    """The summary's tuning section (empty without results).

    Examples
    --------
    >>> tuning_markdown(pd.DataFrame(), None)
    ''
    """
    if best.empty:
        return ""
    table = winners(best)
    cells = zip(table["configs"], table["default_wins"], table["splits"])
    wide = table.assign(cell=[f"{c} (default {w}/{s})" for c, w, s in cells])
    wide = wide.pivot(index="dataset", columns="model", values="cell").reset_index()
    models = [m for m in scope.models if m in wide.columns]
    lines = [
        "\n## Tuning: the winning configuration of each split\n",
        f"Each split's random search draws its own {_draws(scope.budget - 1)} (seeded by "
        "dataset and split; configuration 0 is the default); the configuration with the "
        "best validation score wins, and its test score is the table's. Per model: the "
        "winning configuration of each split, in split order, and on how many splits the "
        "default won (the parameters are in best.csv).\n",
        markdown_table(wide[["dataset", *models]].fillna("–")),
    ]
    stuck = default_everywhere(best)
    if stuck and scope.budget > 1:
        lines.append(
            f"\n**The default won on every split of every dataset for: "
            f"{', '.join(markdown_cell(m) for m in stuck)}.** Their search found nothing "
            f"better in {_draws(scope.budget - 1)} per split; the spaces' draws are sane models "
            "(tests/test_search_spaces.py fits them), so on these data the default is hard to "
            "beat at this budget, and the table compares that model untuned.\n"
        )
    return "\n".join(lines)
