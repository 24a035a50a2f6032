"""The README's quickstart comparison: final and post-deletion risk of several runs of one scenario.

Usage::

    python simulations/quickstart_table.py runs/readme/quickstart-salun-cra runs/readme/quickstart-rl \
        runs/readme/quickstart-retrain --png simulations/results/quickstart-risk.png

Prints a markdown table computed from each run's ``metrics.csv`` and writes one
``risk.png``-style figure with every run on it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from fedunlearn.federated.plot import risk_figure
from fedunlearn.study.summary import to_markdown


def _global(m: pd.DataFrame, rnd: int, metric: str) -> float:
    sel = m[(m["round"] == rnd) & (m["site"] == "global") & (m["phase"] == "test") & (m["metric"] == metric)]
    return float(sel["value"].iloc[0])


def _site(m: pd.DataFrame, rnd: int, phase: str, metric: str) -> float:
    sel = m[(m["round"] == rnd) & (m["phase"] == phase) & (m["metric"] == metric) & m["site"].str.startswith("site-")]
    return float(sel["value"].sum()) if metric in ("images", "seconds") else (float(sel["value"].iloc[0]) if len(sel) else float("nan"))


def row(run: Path) -> tuple[dict, pd.DataFrame]:
    scenario = json.loads(json.dumps(__import__("yaml").safe_load((run / "scenario.yaml").read_text())))
    m = pd.read_csv(run / "metrics.csv", keep_default_na=False, na_values=[""])
    rounds = scenario["training"]["rounds"]
    r_del = scenario["deletion"]["requests"][0]["round"]
    method = scenario["deletion"]["method"]
    last_forget = m[(m["phase"] == "forget") & (m["round"] == rounds)].set_index("metric")["value"]
    manifest = json.loads((run / "manifest.json").read_text())
    erasure_images = _site(m, r_del, "unlearn", "images") if method != "retrain" else float(
        m[(m["phase"] == "train") & (m["metric"] == "images")]["value"].sum())
    return {
        "method": method,
        f"Risk II r{r_del - 1}": f"{_global(m, r_del - 1, 'risk_2'):.3f}",
        f"Risk II r{r_del}": f"{_global(m, r_del, 'risk_2'):.3f}",
        f"FNR r{r_del}": f"{_global(m, r_del, 'fnr'):.3f}",
        f"Risk II r{rounds}": f"{_global(m, rounds, 'risk_2'):.3f}",
        f"FNR r{rounds}": f"{_global(m, rounds, 'fnr'):.3f}",
        f"BAC r{rounds}": f"{_global(m, rounds, 'bac'):.3f}",
        f"forget UBAC r{rounds}": f"{last_forget.get('ubac', float('nan')):.3f}",
        f"forget MIA r{rounds}": f"{last_forget.get('mia_efficacy', float('nan')):.1f}",
        "erasure images": f"{erasure_images:.0f}",
        "run seconds": f"{manifest['seconds']:.0f}",
    }, m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--png", type=Path, default=None)
    args = parser.parse_args()
    rows, tables = zip(*(row(r) for r in args.runs))
    print(to_markdown(pd.DataFrame(rows)))
    if args.png:
        scenario = __import__("yaml").safe_load((args.runs[0] / "scenario.yaml").read_text())
        deletion_rounds = [r["round"] for r in scenario["deletion"]["requests"]]
        risk_figure(pd.concat(tables), deletion_rounds, f"{scenario['name']}: deletion at round {deletion_rounds[0]}", args.png)


if __name__ == "__main__":
    main()
