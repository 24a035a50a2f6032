"""The report's risk-guard section: every decision of ``deletion.guard`` in the runs, from ``events.jsonl``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from fedunlearn.reports.load import RunData

COLUMNS = (
    "run",
    "method",
    "seed",
    "round",
    "requests",
    "status",
    "metric",
    "reference",
    "after pass",
    "after recovery",
    "adopted",
    "recovery rounds",
    "extra images",
)


def guard_table(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per guarded erasure round (``guard-decision`` events): status, the guarded validation metric of
    the reference, after the pass, after recovery and as adopted, and the rounds and images the guard spent."""
    rows = []
    for run in runs:
        for e in run.events:
            if e.get("event") != "guard-decision":
                continue
            rows.append(
                (
                    run.path.name,
                    run.method,
                    run.seed,
                    int(e["round"]),
                    ", ".join(f"r{r}" for r in e.get("requests", [])),
                    e["status"],
                    e["metric"],
                    e["reference"],
                    e["after_pass"],
                    e.get("after_recovery"),
                    e["final"],
                    int(e["rounds"]),
                    int(e["images"]),
                )
            )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("reference", "after pass", "after recovery", "adopted"):
        table[col] = [("" if v is None else f"{float(v):.3f}") for v in table[col]]
    return table


def guard_text(table: pd.DataFrame) -> str:
    """A sentence on how often the guard tripped and what it did."""
    counts = table["status"].value_counts()
    parts = ", ".join(f"{n} {status}" for status, n in counts.items())
    return (
        f"The risk guard judged {len(table)} erasure round(s) on validation data (the server's validation "
        "split, or the sites' local test shards drawn from it; never the test split): "
        f"{parts}. Metric values are of the global model at threshold 0.5; reference: the global model entering "
        "the erasure round. Status: passed (within tolerance), retried (a safer pass was), recovered (recovery "
        "rounds on retain data brought it back), escalated (reset and retrain), failed (nothing did)."
    )
