"""The report's figures, each a PNG (bytes) drawn from the long and aggregate tables.

Matplotlib's Agg backend only: nothing opens a window, nothing needs a display.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from fedunlearn.reports.tables import pareto_front

DPI = 100


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def colours(variants: Sequence[str]) -> dict[str, tuple]:
    """One stable colour per variant (tab10, then tab20)."""
    cmap = plt.get_cmap("tab10" if len(variants) <= 10 else "tab20")
    return {v: cmap(i % cmap.N) for i, v in enumerate(variants)}


#: (metric, raw axis label, paired-difference axis label) of the risk-over-rounds figure.
ROUND_METRICS: tuple[tuple[str, str, str], ...] = (
    ("risk_2", "Global Risk II", "Δ Risk II vs control"),
    ("fnr", "FNR (missed cancers)", "Δ FNR vs control"),
)


def _deletion_lines(ax, deletion_rounds: Sequence[int]) -> None:
    for i, r in enumerate(sorted(set(deletion_rounds))):
        ax.axvline(r, color="crimson", ls="--", lw=1, label="deletion round" if i == 0 else None)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _difference_panel(
    ax,
    d: pd.DataFrame,
    variants: Sequence[str],
    col: dict[str, tuple],
    label: str,
    deletion_rounds: Sequence[int],
) -> None:
    """One metric's paired difference to the control arm per round (``d``: a frame of ``paired_rounds``)."""
    if d.empty:
        ax.text(
            0.5,
            0.5,
            "no control arm (deletion.method: none)\namong these runs",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()
        return
    ax.axhline(0.0, color="black", lw=0.8)
    for v in variants:
        s = d[d["variant"] == v].sort_values("round")
        if s.empty:
            continue
        ax.plot(s["round"], s["mean"], marker="o", ms=3, color=col[v], label=v)
        ax.fill_between(
            s["round"],
            s["low"].fillna(s["mean"]),
            s["high"].fillna(s["mean"]),
            color=col[v],
            alpha=0.2,
            lw=0,
        )
    _deletion_lines(ax, deletion_rounds)
    ax.set_ylabel(label)
    ax.legend(fontsize=7)


def rounds_figure(
    long: pd.DataFrame,
    variants: Sequence[str],
    deletion_rounds: Sequence[int],
    differences: dict[str, pd.DataFrame] | None = None,
) -> bytes:
    """Global test Risk II and FNR per round, and their paired difference to the control arm.

    Top row: one line per variant (mean, band = ± std over seeds). Bottom row
    (when ``differences`` is given): method minus control with the same seed
    and keys, per round, mean over seeds with its 95 % bootstrap band
    (:func:`fedunlearn.reports.contrasts.paired_rounds`, one frame per metric).
    """
    g = long[(long["site"] == "global") & (long["phase"] == "test")]
    col = colours(variants)
    rows = 1 if differences is None else 2
    fig, axes = plt.subplots(
        rows, 2, figsize=(11, 4 * rows), squeeze=False, constrained_layout=True
    )
    for j, (metric, label, diff_label) in enumerate(ROUND_METRICS):
        ax = axes[0, j]
        for v in variants:
            s = (
                g[(g["variant"] == v) & (g["metric"] == metric)]
                .groupby("round")["value"]
                .agg(["mean", "std"])
            )
            if s.empty:
                continue
            ax.plot(s.index, s["mean"], marker="o", ms=3, color=col[v], label=v)
            ax.fill_between(
                s.index,
                s["mean"] - s["std"].fillna(0),
                s["mean"] + s["std"].fillna(0),
                color=col[v],
                alpha=0.15,
                lw=0,
            )
        _deletion_lines(ax, deletion_rounds)
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
        if differences is not None:
            d = differences.get(metric, pd.DataFrame())
            _difference_panel(axes[1, j], d, variants, col, diff_label, deletion_rounds)
    return _png(fig)


#: (aggregate column, axis title) of the bar charts.
BARS: tuple[tuple[str, str], ...] = (
    ("risk_2", "Risk II"),
    ("fnr", "FNR"),
    ("bac", "BAC"),
    ("ubac", "UBAC (forgetting)"),
    ("mia_efficacy", "MIA efficacy"),
)


def bars_figure(agg: pd.DataFrame) -> bytes:
    """Final figures per variant, error bars = std over seeds; the Retrain bar is hatched."""
    variants = list(agg["variant"])
    col = colours(variants)
    fig, axes = plt.subplots(1, len(BARS), figsize=(3.0 * len(BARS), 3.6), constrained_layout=True)
    x = np.arange(len(variants))
    for ax, (metric, title) in zip(axes, BARS):
        bars = ax.bar(
            x,
            agg[f"{metric}_mean"].fillna(0),
            yerr=agg[f"{metric}_std"].fillna(0),
            capsize=3,
            color=[col[v] for v in variants],
        )
        for bar, method in zip(bars, agg["method"]):
            if method == "retrain":
                bar.set_hatch("//")
        ax.set_xticks(x, [_short(v) for v in variants], rotation=35, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _site_order(site: str) -> tuple:
    """site-2 before site-10; ``pooled`` last."""
    return (site == "pooled", [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", site)])


def heatmap_figure(long: pd.DataFrame, variants: Sequence[str]) -> bytes:
    """Per-site Risk II on each site's local test shard (site x round), one panel per variant, one colour scale."""
    loc = long[(long["phase"] == "local-test") & (long["metric"] == "risk_2")]
    grids = {
        v: loc[loc["variant"] == v].pivot_table(
            index="site", columns="round", values="value", aggfunc="mean"
        )
        for v in variants
    }
    grids = {v: g.loc[sorted(g.index, key=_site_order)] for v, g in grids.items() if not g.empty}
    if not grids:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, "no per-site local-test rows in these runs", ha="center", va="center")
        ax.axis("off")
        return _png(fig)
    vmax = max(float(np.nanmax(g.to_numpy())) for g in grids.values()) or 1.0
    n = len(grids)
    cols = min(n, 3)
    rows = -(-n // cols)
    first = next(iter(grids.values()))
    w = max(3.5, 0.45 * first.shape[1] + 1.8)
    h = max(1.8, 0.35 * first.shape[0] + 1.2)
    fig, axes = plt.subplots(
        rows, cols, figsize=(w * cols + 1, h * rows), squeeze=False, constrained_layout=True
    )
    for ax, (v, g) in zip(axes.flat, grids.items()):
        im = ax.imshow(g.to_numpy(), aspect="auto", cmap="Reds", vmin=0, vmax=vmax)
        ax.set_xticks(range(g.shape[1]), [str(c) for c in g.columns], fontsize=7)
        ax.set_yticks(range(g.shape[0]), list(g.index), fontsize=7)
        ax.set_xlabel("round", fontsize=8)
        ax.set_title(_short(v, 40), fontsize=9)
        if g.size <= 120:
            for (i, j), val in np.ndenumerate(g.to_numpy()):
                if not np.isnan(val):
                    ax.text(
                        j,
                        i,
                        f"{val:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if val > 0.6 * vmax else "black",
                    )
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.colorbar(im, ax=axes, shrink=0.8, label="local-test Risk II")
    return _png(fig)


def pareto_figure(agg: pd.DataFrame) -> bytes:
    """Erasure cost (seconds, images) vs final Risk II, colour = UBAC; the Pareto front is drawn and ringed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ubac = agg["ubac_mean"].to_numpy(dtype=float)
    finite = ubac[~np.isnan(ubac)]
    norm = plt.Normalize(
        float(finite.min()) if finite.size else 0.0, float(finite.max()) if finite.size else 1.0
    )
    if norm.vmin == norm.vmax:
        norm = plt.Normalize(norm.vmin - 0.05, norm.vmax + 0.05)
    sc = None
    for ax, cost, label in (
        (axes[0], "erasure_seconds", "erasure cost (seconds at the sites)"),
        (axes[1], "erasure_images", "erasure cost (images processed)"),
    ):
        x = agg[f"{cost}_mean"].to_numpy(dtype=float)
        y = agg["risk_2_mean"].to_numpy(dtype=float)
        front = pareto_front(x, y)
        nan_c = np.isnan(ubac)
        if nan_c.any():
            ax.scatter(
                x[nan_c], y[nan_c], s=60, c="lightgrey", edgecolors="k", label="no forget set"
            )
        sc = ax.scatter(
            x[~nan_c], y[~nan_c], s=60, c=ubac[~nan_c], cmap="viridis", norm=norm, edgecolors="k"
        )
        if front.any():
            order = np.argsort(x[front])
            ax.step(
                x[front][order],
                y[front][order],
                where="post",
                color="crimson",
                ls="--",
                lw=1,
                label="Pareto front",
            )
            ax.scatter(x[front], y[front], s=180, facecolors="none", edgecolors="crimson", lw=1.5)
        for xi, yi, v in zip(x, y, agg["variant"]):
            if not (np.isnan(xi) or np.isnan(yi)):
                ax.annotate(
                    _short(v), (xi, yi), textcoords="offset points", xytext=(6, 4), fontsize=7
                )
        pos = x[~np.isnan(x) & (x > 0)]
        if pos.size >= 2 and pos.max() / pos.min() > 100:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("final global Risk II")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if sc is not None:
        fig.colorbar(sc, ax=axes, shrink=0.85, label="UBAC of the forget sets (forgetting)")
    return _png(fig)
