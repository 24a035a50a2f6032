"""What the sweep scripts beside this file share: their common arguments, and sweep-then-summary.

Not a script itself: ``study_federated.py``, ``whatif_prevalence.py`` and
``whatif_batched.py`` import it (their folder is on ``sys.path`` when run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import fedunlearn as fu

REPO = Path(__file__).resolve().parent.parent


def common_arguments(doc: str, default_out: str) -> argparse.ArgumentParser:
    """A parser with DATA_ROOT, OUT (default ``REPO/default_out``), ``--seeds`` and ``--set``."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("data_root", metavar="DATA_ROOT", help="folder holding dermamnist.npz")
    p.add_argument(
        "out",
        metavar="OUT",
        nargs="?",
        type=Path,
        default=REPO / default_out,
        help=f"sweep folder (default: {default_out} of the repository)",
    )
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (default 0,1,2,3,4)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key of every run, e.g. --set training.rounds=6 (repeatable)",
    )
    return p


def run_overrides(args: argparse.Namespace) -> list[str]:
    """The ``--set`` items plus the data root, as every run of the sweep gets them."""
    return [*args.overrides, f"data.root={Path(args.data_root).resolve()}"]


def sweep_and_summarise(scenario: Path, grid: list[str], out: Path, overrides: list[str]) -> None:
    """Run (or resume) the sweep; print its paired summary; one line naming the logs if runs failed."""
    outcome = fu.sweep(scenario, grid, out, overrides=overrides)
    if outcome.failed:
        raise fu.FedunlearnError(
            f"{len(outcome.failed)} run(s) failed: {'; '.join(outcome.failed)}; "
            f"logs in {out / 'logs'}; rerun to retry only those"
        )
    if outcome.summary is not None:
        print((out / "summary.md").read_text())
