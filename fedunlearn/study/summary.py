"""``summary.md``: one row per method, mean ± std over seeds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

#: (column title, split, metric) of the summary table.
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("TBAC", "test", "tbac"),
    ("FNR", "test", "fnr"),
    ("Risk I", "test", "risk_1"),
    ("Risk II", "test", "risk_2"),
    ("UBAC", "forget", "ubac"),
    ("RBAC", "retain", "rbac"),
    ("MIA", "forget", "mia_efficacy"),
    ("seconds", "all", "seconds"),
)


def mean_std(values: pd.Series) -> str:
    """``mean ± std`` (sample std; just the mean for one value), 3 significant decimals."""
    vals = values.dropna().astype(float)
    if vals.empty:
        return "n/a"
    m = vals.mean()
    if len(vals) == 1 or math.isnan(vals.std()):
        return f"{m:.3f}" if abs(m) < 100 else f"{m:.1f}"
    fmt = ".3f" if abs(m) < 100 else ".1f"
    return f"{m:{fmt}} ± {vals.std():{fmt}}"


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Method x summary column, each cell ``mean ± std`` over seeds, methods in run order."""
    methods = list(dict.fromkeys(table["method"]))
    out = []
    for method in methods:
        sub = table[table["method"] == method]
        row = {"method": method}
        for title, split, metric in SUMMARY_COLUMNS:
            row[title] = mean_std(sub[(sub["split"] == split) & (sub["metric"] == metric)]["value"])
        out.append(row)
    return pd.DataFrame(out)


def to_markdown(frame: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += [
        "| " + " | ".join(str(v) for v in row) + " |" for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def summary_markdown(table: pd.DataFrame, cfg: Any, provenance: Mapping[str, Any]) -> str:
    seeds = sorted(set(table["seed"]))
    official = (
        "official file"
        if provenance.get("official")
        else ("synthetic data" if provenance.get("synthetic") else "NOT the official file")
    )
    head = (
        f"# Single-site unlearning study: {cfg.dataset} {cfg.size}px, {cfg.model}, "
        f"forget {cfg.forget_ratio:.0%} ({cfg.forget_mode})\n\n"
        f"Seeds {seeds}; mean ± std over seeds. Data md5 `{provenance.get('md5')}` ({official}). "
        f"Risk II costs: C_FP = {cfg.costs.c_fp:g}, C_FN = {cfg.costs.c_fn:g}. "
        f"MIA efficacy ({cfg.mia_variant}) is best when close to Retrain's, not maximal.\n\n"
    )
    if provenance.get("note"):
        head += f"Data: {provenance['note']}.\n\n"
    return head + to_markdown(summary_table(table))
