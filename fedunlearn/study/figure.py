"""``ablation.png``: the paired effect of each ingredient on each metric, with its 95 % CI."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from fedunlearn.io import atomic_write_bytes

_TITLES = {
    "fnr": "test FNR",
    "risk_2": "test Risk II",
    "bac": "test BAC",
    "ubac": "UBAC (forget)",
    "mia_efficacy": "MIA efficacy",
}


def _label(r: pd.Series) -> str:
    return f"{r.preset}: {r.ingredient} {r['from']}->{r.to} | {r.method}"


def _panel(
    ax, effects: pd.DataFrame, metric: str, ratios: list, ypos: dict[str, int], colours: list
) -> None:
    """One metric's panel: each effect's mean and CI as a point with error bars, a colour per ratio."""
    ax.axvline(0.0, color="grey", lw=0.8)
    for k, ratio in enumerate(ratios):
        sub = effects[(effects["metric"] == metric) & (effects["ratio"] == ratio)]
        offset = (k - (len(ratios) - 1) / 2) * 0.25
        ys = [ypos[_label(r)] + offset for _, r in sub.iterrows()]
        err = [
            (sub["delta"] - sub["ci_low"]).fillna(0).clip(lower=0),
            (sub["ci_high"] - sub["delta"]).fillna(0).clip(lower=0),
        ]
        ax.errorbar(
            sub["delta"],
            ys,
            xerr=err,
            fmt="o",
            ms=3,
            lw=1,
            color=colours[k % len(colours)],
            label=f"forget {ratio:.0%}",
        )
    ax.set_title(_TITLES[metric], fontsize=9)
    ax.tick_params(labelsize=7)


def effects_figure(effects: pd.DataFrame, path: Path) -> None:
    """One panel per metric; one line per (preset, ingredient, method); one colour per forget ratio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in _TITLES if m in set(effects.get("metric", []))] or list(_TITLES)
    labels = (
        list(dict.fromkeys(_label(r) for _, r in effects.iterrows()))
        if not effects.empty
        else ["(no finished comparison yet)"]
    )
    ratios = sorted(set(effects["ratio"])) if not effects.empty else []
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.2 * len(metrics) + 3.5, 0.28 * len(labels) + 1.6),
        sharey=True,
        squeeze=False,
    )
    ypos = {label: i for i, label in enumerate(labels)}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, metric in zip(axes[0], metrics):
        _panel(ax, effects, metric, ratios, ypos, colours)
    axes[0][0].set_yticks(range(len(labels)))
    axes[0][0].set_yticklabels(labels, fontsize=7)
    axes[0][0].invert_yaxis()
    if ratios:
        axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Paired effect of one ingredient (setting minus preset), mean over seeds with 95 % bootstrap CI",
        fontsize=9,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
