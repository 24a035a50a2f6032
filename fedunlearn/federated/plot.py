"""``risk.png``: global Risk II and FNR over rounds, deletion rounds and the risk guard's decisions marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from fedunlearn.io import atomic_write_bytes

GUARD_COLOURS = {
    "passed": "tab:green",
    "retried": "tab:blue",
    "recovered": "tab:orange",
    "escalated": "tab:purple",
    "failed": "black",
}


def risk_figure(
    table: pd.DataFrame,
    deletion_rounds: Sequence[int],
    title: str,
    out: Path,
    guard: Mapping[int, str] | None = None,
) -> None:
    """Plot every method in ``table`` (rows of metrics.csv) on two panels and save a PNG.

    ``guard``: round -> the risk guard's decision in it (``deletion.guard``); each is marked on the axis."""
    g = table[(table["site"] == "global") & (table["phase"] == "test")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, metric, label in (
        (axes[0], "risk_2", "Global Risk II (C_FN = 20 C_FP)"),
        (axes[1], "fnr", "FNR (missed cancers)"),
    ):
        for method, sub in g[g["metric"] == metric].groupby("method", sort=False):
            sub = sub.sort_values("round")
            ax.plot(sub["round"], sub["value"], marker="o", ms=3, label=str(method))
        for i, r in enumerate(sorted(set(deletion_rounds))):
            ax.axvline(
                r, color="crimson", ls="--", lw=1, label="deletion request" if i == 0 else None
            )
        for status, colour in GUARD_COLOURS.items():
            marked = sorted(r for r, s in (guard or {}).items() if s == status)
            if marked:
                ax.scatter(
                    marked,
                    [0.0] * len(marked),
                    marker="^",
                    s=60,
                    color=colour,
                    transform=ax.get_xaxis_transform(),
                    clip_on=False,
                    zorder=5,
                    label=f"guard: {status}",
                )
        ax.set_xlabel("round")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())
