"""Markdown for the benchmark's summary: escaped cells and plain tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["markdown_cell", "markdown_table"]


def markdown_cell(text: object) -> str:
    r"""``text`` as one markdown table cell: ``|`` escaped, line breaks as spaces.

    Examples
    --------
    >>> markdown_cell("a|b\nc")
    'a\\|b c'
    """
    return " ".join(str(text).splitlines()).replace("|", "\\|")


def markdown_table(frame: pd.DataFrame) -> str:
    """A plain markdown table (floats with 4 decimals, NaN as –), without optional dependencies."""
    cells = [
        [
            ("–" if np.isnan(v) else f"{v:.4f}") if isinstance(v, float) else markdown_cell(v)
            for v in row
        ]
        for row in frame.itertuples(index=False)
    ]
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"
