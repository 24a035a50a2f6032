"""Paired effects of the ablation, with bootstrap confidence intervals over seeds.

Every comparison is paired by seed and forget set: the same original model
and the same forget rows under two settings. The CI is a percentile bootstrap
of the mean of the per-seed differences (10 000 resamples, a numpy generator
with a fixed seed, so a table is reproducible).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedunlearn.io import atomic_write_csv, atomic_write_text
from fedunlearn.study.figure import effects_figure
from fedunlearn.study.plan import Entry, Setting, ingredients_of, unit_key
from fedunlearn.study.units import load_units

#: (column, split, metric) of the effects.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("fnr", "test", "fnr"),
    ("risk_2", "test", "risk_2"),
    ("bac", "test", "bac"),
    ("ubac", "forget", "ubac"),
    ("mia_efficacy", "forget", "mia_efficacy"),
)
EFFECT_COLUMNS = [
    "preset",
    "ratio",
    "ingredient",
    "from",
    "to",
    "method",
    "metric",
    "delta",
    "ci_low",
    "ci_high",
    "n_seeds",
]
N_BOOT = 10_000
BOOT_SEED = 20_260_423


def bootstrap_mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``values`` and its percentile-bootstrap CI (nan CI below two values)."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if len(x) < 2:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(BOOT_SEED)
    means = x[rng.integers(0, len(x), size=(N_BOOT, len(x)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(lo), float(hi)


def wide(units: pd.DataFrame) -> pd.DataFrame:
    """One row per (ratio, seed, unit), one column per metric of :data:`METRICS`."""
    parts = []
    for col, split, metric in METRICS:
        sub = units[(units["split"] == split) & (units["metric"] == metric)]
        parts.append(sub.set_index(["ratio", "seed", "unit"])["value"].rename(col))
    if not parts or units.empty:
        return pd.DataFrame(columns=[c for c, _, _ in METRICS])
    return pd.concat(parts, axis=1)


def _paired(w: pd.DataFrame, ratio: float, a: str, b: str, col: str) -> list[float]:
    """Per-seed ``b - a`` of ``col`` at ``ratio``, seeds where both ran."""
    try:
        xa = w.xs((ratio, a), level=("ratio", "unit"))[col]
        xb = w.xs((ratio, b), level=("ratio", "unit"))[col]
    except KeyError:
        return []
    both = xa.index.intersection(xb.index)
    return list((xb.loc[both] - xa.loc[both]).astype(float))


def effect_table(
    units: pd.DataFrame, entries: Sequence[Entry], ratios: Sequence[float], presets: Sequence[str]
) -> pd.DataFrame:
    """Paired effect of each toggled ingredient (and of the preset as a whole) per method and metric."""
    w = wide(units)
    rows: list[dict[str, Any]] = []
    if w.empty:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    comparisons: list[tuple[str, str, str, str, str, str, str]] = []
    for e in entries:
        if e.setting.ingredient is None:
            continue
        base = Setting(e.setting.preset)
        frm = ingredients_of(e.method, base)[e.setting.ingredient]
        comparisons.append(
            (
                e.setting.preset,
                e.setting.ingredient,
                frm,
                str(e.setting.to),
                e.method,
                unit_key(e.method, base),
                e.key,
            )
        )
    if len(presets) >= 2:
        first, second = presets[0], presets[1]
        for method in dict.fromkeys(e.method for e in entries):
            a, b = unit_key(method, Setting(first)), unit_key(method, Setting(second))
            if a != b:
                comparisons.append((first, "preset", first, second, method, a, b))
    for ratio in ratios:
        for preset, ingredient, frm, to, method, a, b in comparisons:
            for col, _, _ in METRICS:
                diffs = _paired(w, ratio, a, b, col)
                if not diffs:
                    continue
                mean, lo, hi = bootstrap_mean_ci(diffs)
                rows.append(
                    {
                        "preset": preset,
                        "ratio": ratio,
                        "ingredient": ingredient,
                        "from": frm,
                        "to": to,
                        "method": method,
                        "metric": col,
                        "delta": mean,
                        "ci_low": lo,
                        "ci_high": hi,
                        "n_seeds": len(diffs),
                    }
                )
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def method_table(
    units: pd.DataFrame, methods: Sequence[str], ratios: Sequence[float], presets: Sequence[str]
) -> pd.DataFrame:
    """Each method under each preset: mean and CI of every metric, and its paired gap to Retrain."""
    w = wide(units)
    rows: list[dict[str, Any]] = []
    if w.empty:
        return pd.DataFrame()
    retrain = unit_key("retrain", Setting(presets[0]))
    for ratio in ratios:
        for preset in presets:
            for method in ("original", *methods):
                key = (
                    "original[fixed]" if method == "original" else unit_key(method, Setting(preset))
                )
                try:
                    sub = w.xs((ratio, key), level=("ratio", "unit"))
                except KeyError:
                    continue
                for col, _, _ in METRICS:
                    mean, lo, hi = bootstrap_mean_ci(list(sub[col].astype(float)))
                    gap, glo, ghi = bootstrap_mean_ci(_paired(w, ratio, retrain, key, col))
                    rows.append(
                        {
                            "preset": preset,
                            "ratio": ratio,
                            "method": method,
                            "metric": col,
                            "mean": mean,
                            "ci_low": lo,
                            "ci_high": hi,
                            "n_seeds": int(sub[col].notna().sum()),
                            "gap_to_retrain": gap,
                            "gap_ci_low": glo,
                            "gap_ci_high": ghi,
                        }
                    )
    return pd.DataFrame(rows)


def _fmt(mean: float, lo: float, hi: float) -> str:
    if math.isnan(mean):
        return "n/a"
    digits = 1 if abs(mean) >= 10 or (not math.isnan(hi) and abs(hi) >= 10) else 3
    if math.isnan(lo):
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


_TITLES = {"fnr": "FNR", "risk_2": "Risk II", "bac": "BAC", "ubac": "UBAC", "mia_efficacy": "MIA"}


def _methods_block(methods: pd.DataFrame, ratio: float, cols: Sequence[str]) -> list[str]:
    """The Markdown table of each method under each preset at one forget ratio."""
    lines = [
        f"### Forget {ratio:.0%}: each method under each preset (gap to Retrain, paired)",
        "",
        "| preset | method | n | "
        + " | ".join(_TITLES[c] for c in cols)
        + " | Risk II - Retrain |",
        "|---|---|---|" + "---|" * (len(cols) + 1),
    ]
    sub = methods[methods["ratio"] == ratio]
    for (preset, method), g in sub.groupby(["preset", "method"], sort=False):
        g = g.set_index("metric")
        cells = [_fmt(g.loc[c, "mean"], float("nan"), float("nan")).lstrip("+") for c in cols]
        gap = _fmt(
            g.loc["risk_2", "gap_to_retrain"],
            g.loc["risk_2", "gap_ci_low"],
            g.loc["risk_2", "gap_ci_high"],
        )
        lines.append(
            f"| {preset} | {method} | {int(g['n_seeds'].max())} | "
            + " | ".join(cells)
            + f" | {gap} |"
        )
    lines.append("")
    return lines


def _effects_block(eff: pd.DataFrame, ratio: float, cols: Sequence[str]) -> list[str]:
    """The Markdown table of each one-ingredient effect at one forget ratio (``eff``: that ratio's rows)."""
    lines = [
        f"### Forget {ratio:.0%}: paired effect of one ingredient (setting minus preset)",
        "",
        "| preset | ingredient: from -> to | method | n | "
        + " | ".join(_TITLES[c] for c in cols)
        + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for (preset, ing, frm, to, method), g in eff.groupby(
        ["preset", "ingredient", "from", "to", "method"], sort=False
    ):
        g = g.set_index("metric")
        cells = [
            _fmt(g.loc[c, "delta"], g.loc[c, "ci_low"], g.loc[c, "ci_high"])
            if c in g.index
            else "n/a"
            for c in cols
        ]
        lines.append(
            f"| {preset} | {ing}: {frm} -> {to} | {method} | {int(g['n_seeds'].max())} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    return lines


def effects_markdown(
    effects: pd.DataFrame, methods: pd.DataFrame, provenance: Mapping[str, Any]
) -> str:
    """Both tables as Markdown, one block per forget ratio."""
    official = (
        "official file"
        if provenance.get("official")
        else ("synthetic data" if provenance.get("synthetic") else "NOT the official file")
    )
    lines = [
        f"Data md5 `{provenance.get('md5')}` ({official}). Mean over seeds [95 % percentile-bootstrap CI]; "
        "effects are paired by seed and forget set.",
        "",
    ]
    if provenance.get("note"):
        lines += [f"Data: {provenance['note']}.", ""]
    cols = [c for c, _, _ in METRICS]
    for ratio in sorted(set(methods.get("ratio", []))):
        lines += _methods_block(methods, ratio, cols)
        eff = effects[effects["ratio"] == ratio]
        if not eff.empty:
            lines += _effects_block(eff, ratio, cols)
    return "\n".join(lines) + "\n"


def write_outputs(
    out: Path,
    entries: Sequence[Entry],
    cfg: Any,
    provenance: Mapping[str, Any],
    figure: bool = True,
) -> pd.DataFrame:
    """Rewrite results.csv, ablation.csv, methods.csv, ablation.md, ablation.png (and trace.csv) from the units.

    ``figure=False`` skips the PNG (seconds of matplotlib), for the partial tables written while running.
    """
    out = Path(out)
    units = load_units(out)
    atomic_write_csv(out / "results.csv", units)
    effects = effect_table(units, entries, cfg.ratios, cfg.presets)
    methods = method_table(units, cfg.methods, cfg.ratios, cfg.presets)
    atomic_write_csv(out / "ablation.csv", effects)
    atomic_write_csv(out / "methods.csv", methods)
    atomic_write_text(out / "ablation.md", effects_markdown(effects, methods, provenance))
    if figure:
        effects_figure(effects, out / "ablation.png")
    traces = sorted((out / "traces").glob("*.csv"))
    if traces:
        atomic_write_csv(
            out / "trace.csv", pd.concat([pd.read_csv(f) for f in traces], ignore_index=True)
        )
    return effects
