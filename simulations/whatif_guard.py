"""What-if 4: the risk guard on an aggressive erasure, 5 seeds, with the control arm and Retrain.

    python simulations/whatif_guard.py --data-root /tmp/derma --out runs/readme/whatif-guard

The heterogeneous network of ``configs/guarded-erasure.yaml``: the oncology
centre erases half of its patients at round 6 with ``rl`` and with
``salun-cra`` (both at the config's aggressive ``deletion.unlearn``: 5 epochs
at lr 0.1), guard off and on, seeds 0-4; the sweep adds the control arm
(``deletion.method=none``) and Federated Retrain, which the guard leaves
untouched (it is inert there). 40 runs of a few minutes each on 2 cores.

It prints three tables, all from the public API (``import fedunlearn as fu``)
and the sweep's own files: the paired effects at the erasure round and at the
end (final FNR and Risk II against the control and Retrain, forget-set UBAC
and MIA efficacy: ``summary.csv``, the 95 % bootstrap intervals over seeds
that every sweep writes), every guard decision (status, validation FNR of the
reference, after the pass and as adopted, recovery rounds, extra images) from
the runs' ledgers, and the images each variant spent in all. A report with
the guard section goes to ``OUT/report.html``. Guard settings are chosen on
the validation split only; the tables read the test split after the fact.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import fedunlearn as fu

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "guarded-erasure.yaml"
METRICS = ("fnr", "risk_2", "ubac", "mia_efficacy")
GUARD_COLUMNS = [
    "guard_status",
    "guard_reference",
    "guard_after_pass",
    "guard_final",
    "guard_rounds",
    "guard_images",
]


def run_study(data_root: str, out: Path, seeds: str, jobs: int) -> None:
    """The sweep (resumable: a finished point is skipped when the command is run again)."""
    outcome = fu.sweep(
        CONFIG,
        ["deletion.method=rl,salun-cra", "deletion.guard.enabled=false,true", f"seed={seeds}"],
        out,
        overrides=[f"data.root={data_root}"],
        jobs=jobs,
        quiet=False,
    )
    if outcome.failed:
        raise SystemExit(f"{len(outcome.failed)} run(s) failed: {sorted(outcome.failed)}")


def paired_effects(out: Path) -> pd.DataFrame:
    """The sweep's paired summary: each method minus the control arm and minus Retrain, by guard setting."""
    summary = pd.read_csv(out / "summary.csv")
    rows = summary[summary["metric"].isin(METRICS) & summary["at"].isin(["erasure", "final"])]
    return rows.reset_index(drop=True)


def guard_decisions(out: Path) -> pd.DataFrame:
    """One row per guarded run: the ledger's guard columns (the erasure request's decision)."""
    rows = []
    for run_dir in sorted((out / "runs").iterdir()):
        if not (run_dir / "manifest.json").is_file():
            continue
        result = fu.RunResult(run_dir)
        if not result.manifest.get("complete") or "guard" not in result.manifest:
            continue
        for _, row in result.ledger.iterrows():
            rows.append(
                {
                    "run": run_dir.name,
                    "seed": result.manifest["seed"],
                    **{k: row[k] for k in GUARD_COLUMNS},
                }
            )
    return pd.DataFrame(rows)


def images_spent(out: Path) -> pd.DataFrame:
    """Images processed by each run in all (training, unlearning passes, retried passes, recovery rounds)."""
    rows = []
    for run_dir in sorted((out / "runs").iterdir()):
        if not (run_dir / "metrics.csv").is_file():
            continue
        m = fu.RunResult(run_dir).metrics
        work = m[
            (m["metric"] == "images")
            & m["phase"].isin(["train", "unlearn", "guard-retry", "recover"])
        ]
        rows.append({"run": run_dir.name, **work.groupby("phase")["value"].sum().to_dict()})
    return pd.DataFrame(rows).fillna(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="folder holding dermamnist.npz")
    parser.add_argument("--out", type=Path, default=Path("runs/readme/whatif-guard"))
    parser.add_argument(
        "--seeds", default="0,1,2,3,4", help="comma-separated seeds (>= 5 for the README)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    args = parser.parse_args()
    run_study(args.data_root, args.out, args.seeds, args.jobs)
    with pd.option_context(
        "display.width", 250, "display.max_columns", 30, "display.max_rows", 500
    ):
        print("\n# paired effects (summary.csv)\n", paired_effects(args.out).to_string(index=False))
        print("\n# guard decisions\n", guard_decisions(args.out).to_string(index=False))
        print("\n# images spent\n", images_spent(args.out).to_string(index=False))
    print("\nreport:", fu.report([args.out], args.out / "report.html"))


if __name__ == "__main__":
    main()
