"""The ablation's unit files: one CSV per finished (forget ratio, seed, method setting) in ``OUT/units/``.

:mod:`fedunlearn.study.ablation` writes them as units finish and
:mod:`fedunlearn.study.effects` reads them all back to rebuild the tables, so
both depend on this module and not on each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from fedunlearn.io import atomic_write_csv

#: The columns of a unit file, in order.
UNIT_COLUMNS = ["ratio", "seed", "method", "unit", "split", "metric", "value"]


def unit_rows(report: Mapping[str, Mapping[str, float]], seconds: float) -> list[dict]:
    """One row per (split, metric) of an unlearning report, plus the unit's wall seconds."""
    rows = [
        {"split": s, "metric": m, "value": v} for s, ms in report.items() for m, v in ms.items()
    ]
    rows.append({"split": "all", "metric": "seconds", "value": seconds})
    return rows


def save_unit(
    path: Path,
    ratio: float,
    seed: int,
    method: str,
    key: str,
    report: Mapping[str, Mapping[str, float]],
    seconds: float,
) -> None:
    """Write one finished unit's rows (atomically, so a unit file is either whole or absent)."""
    frame = pd.DataFrame(unit_rows(report, seconds))
    frame.insert(0, "unit", key)
    frame.insert(0, "method", method)
    frame.insert(0, "seed", seed)
    frame.insert(0, "ratio", ratio)
    atomic_write_csv(path, frame)


def load_units(out: Path) -> pd.DataFrame:
    """Every finished unit's rows (ratio, seed, method, unit, split, metric, value)."""
    files = sorted((Path(out) / "units").glob("*.csv"))
    if not files:
        return pd.DataFrame(columns=UNIT_COLUMNS)
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
