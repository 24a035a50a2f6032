"""Paired contrasts of runs: each method against the control arm and against Federated Retrain, seed by seed.

Arms are paired by seed and every other key that tells variants apart (grid
keys of a sweep, the differing scenario keys of a report): the control arm
(``deletion.method: none``) records the requests but erases nothing, so
``metric(method) - metric(control)`` with the same seed is the erasure's own
effect, and ``metric(method) - metric(retrain)`` how far the method stands
from the gold standard. Figures are read at two moments of each run:
``final`` (its last round) and ``erasure`` (the first global evaluation at or
after the round of the scenario's first deletion request). Pure functions on
long tables; the statistics are in :mod:`fedunlearn.reports.paired`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fedunlearn.reports.paired import (
    METRIC_WORDS,
    N_RESAMPLES,
    REFERENCE,
    PairedDifference,
    format_difference,
    paired_ci,
    verdict,
)
from fedunlearn.reports.tables import (
    CONTROL,
    RETRAIN,
    figures_at,
    final_round,
    run_costs,
    variant_groups,
)

FINAL, ERASURE = "final", "erasure"
#: Metrics of the paired summary: global test, then pooled forget sets; costs (``final`` only) after.
OUTCOMES: tuple[str, ...] = ("fnr", "risk_2", "bac", "auc", "ubac", "mia_efficacy")
COSTS: tuple[str, ...] = ("seconds", "images", "erasure_seconds", "erasure_images")
#: The columns of the paired summary after the keys (``summary.csv`` of a sweep).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "method",
    "metric",
    "at",
    "round",
    "mean",
    "std",
    "delta_vs_control",
    "ci_low",
    "ci_high",
    "delta_vs_retrain",
    "ci_low_retrain",
    "ci_high_retrain",
    "n_seeds",
    "verdict_vs_control",
    "verdict_vs_retrain",
)
NO_CONTROL = "no control arm"
NO_RETRAIN = "no Retrain arm"


def erasure_round(metrics: pd.DataFrame, first_request: int | None) -> int | None:
    """The first round at or after ``first_request`` with global test rows; None without a request or such a round."""
    if first_request is None:
        return None
    g = metrics.loc[(metrics["site"] == "global") & (metrics["phase"] == "test"), "round"].astype(
        int
    )
    later = g[g >= first_request]
    return int(later.min()) if len(later) else None


def run_figures(
    long: pd.DataFrame, keys: Sequence[str], first_requests: Mapping[str, int | None]
) -> pd.DataFrame:
    """One row per (run, moment, metric): the figures each paired comparison reads.

    Parameters
    ----------
    long : pandas.DataFrame
        Stacked ``metrics.csv`` rows with ``run``, ``seed``, ``method`` and ``keys``.
    keys : sequence of str
        Pairing keys besides the seed (constant within a run; not the method).
    first_requests : mapping
        Run -> round of its scenario's first deletion request (None: no request).

    Returns
    -------
    pandas.DataFrame
        Columns ``run, *keys, seed, method, at, round, metric, value``: the
        :data:`OUTCOMES` at ``final`` and at ``erasure`` (when the run has a
        request), the :data:`COSTS` at ``final`` (whole-run totals).
    """
    rows = []
    for run, sub in long.groupby("run", sort=False):
        first = sub.iloc[0]
        head = {
            "run": run,
            **{k: first[k] for k in keys},
            "seed": first["seed"],
            "method": first["method"],
        }
        last = final_round(sub)
        moments = [(FINAL, last)]
        if (erased := erasure_round(sub, first_requests.get(run))) is not None:
            moments.append((ERASURE, erased))
        for at, rnd in moments:
            figures = figures_at(sub, rnd)
            if at == FINAL:
                figures.update(run_costs(sub))
            rows += [
                {**head, "at": at, "round": rnd, "metric": m, "value": figures[m]}
                for m in (*OUTCOMES, *(COSTS if at == FINAL else ()))
            ]
    return pd.DataFrame(
        rows, columns=["run", *keys, "seed", "method", "at", "round", "metric", "value"]
    )


def _by_seed(rows: pd.DataFrame) -> pd.Series:
    """Value per seed (the mean where a seed was run twice), NaN values dropped."""
    return rows.groupby("seed")["value"].mean().dropna()


def _contrast(
    values: pd.Series, ref: pd.Series | None, n_resamples: int
) -> PairedDifference | None:
    if ref is None:
        return None
    seeds = values.index.intersection(ref.index)
    return paired_ci((values[seeds] - ref[seeds]).to_numpy(), n_resamples=n_resamples)


def _columns(diff: PairedDifference | None, reference: str) -> dict[str, float]:
    """``delta_vs_control, ci_low, ci_high`` or ``delta_vs_retrain, ci_low_retrain, ci_high_retrain``."""
    d = diff or PairedDifference(float("nan"), float("nan"), float("nan"), 0)
    tail = "" if reference == CONTROL else "_retrain"
    return {
        f"delta_vs_{'control' if reference == CONTROL else 'retrain'}": d.mean,
        f"ci_low{tail}": d.low,
        f"ci_high{tail}": d.high,
    }


def _verdict(metric: str, method: str, diff: PairedDifference | None, reference: str) -> str:
    if method == reference:
        return REFERENCE
    if diff is None:
        return NO_CONTROL if reference == CONTROL else NO_RETRAIN
    return verdict(metric, diff, "control" if reference == CONTROL else "retrain")


def _method_order(methods: Sequence[str]) -> list[str]:
    """Control first, Retrain last, the others in first-seen order."""
    seen = list(dict.fromkeys(methods))
    return (
        ([CONTROL] if CONTROL in seen else [])
        + [m for m in seen if m not in (CONTROL, RETRAIN)]
        + ([RETRAIN] if RETRAIN in seen else [])
    )


def paired_summary(
    figures: pd.DataFrame, keys: Sequence[str], *, n_resamples: int = N_RESAMPLES
) -> pd.DataFrame:
    """Mean ± std over seeds and paired differences to the control arm and to Retrain.

    Parameters
    ----------
    figures : pandas.DataFrame
        From :func:`run_figures`.
    keys : sequence of str
        Pairing keys besides the seed and the method.
    n_resamples : int
        Bootstrap resamples of each interval.

    Returns
    -------
    pandas.DataFrame
        One row per (``keys``, method, metric, at), columns ``keys`` then
        :data:`SUMMARY_COLUMNS`. ``round``: the round read (the earliest over
        seeds where randomly drawn requests make it differ). ``mean``, ``std``:
        over the method's seeds (sample std, NaN for one seed); ``n_seeds``:
        seeds with a value. ``delta_vs_*``: mean over the seeds present in
        both arms of (method minus reference) with its 95 % bootstrap interval
        (:func:`~fedunlearn.reports.paired.paired_ci`); NaN without that arm.
        Verdicts: :func:`~fedunlearn.reports.paired.verdict`, ``(reference)``
        on the reference's own rows.
    """
    out = []
    for values, group in variant_groups(figures, keys):
        methods = _method_order(group["method"].tolist())
        for (at, metric), cell in group.groupby(["at", "metric"], sort=False):
            arms = {m: _by_seed(cell[cell["method"] == m]) for m in methods}
            control, retrain = arms.get(CONTROL), arms.get(RETRAIN)
            for method in methods:
                rows = cell[cell["method"] == method]
                if rows.empty:
                    continue
                vals = arms[method]
                vs_control = _contrast(vals, control, n_resamples)
                vs_retrain = _contrast(vals, retrain, n_resamples)
                out.append(
                    {
                        **dict(zip(keys, values)),
                        "method": method,
                        "metric": metric,
                        "at": at,
                        "round": int(rows["round"].min()),
                        "mean": float(vals.mean()) if len(vals) else float("nan"),
                        "std": float(vals.std(ddof=1)) if len(vals) > 1 else float("nan"),
                        **_columns(vs_control, CONTROL),
                        **_columns(vs_retrain, RETRAIN),
                        "n_seeds": len(vals),
                        "verdict_vs_control": _verdict(metric, method, vs_control, CONTROL),
                        "verdict_vs_retrain": _verdict(metric, method, vs_retrain, RETRAIN),
                    }
                )
    frame = pd.DataFrame(out, columns=[*keys, *SUMMARY_COLUMNS])
    order = {
        (a, m): i
        for i, (a, m) in enumerate((a, m) for a in (FINAL, ERASURE) for m in (*OUTCOMES, *COSTS))
    }
    frame["_order"] = [order.get((a, m), len(order)) for a, m in zip(frame["at"], frame["metric"])]
    frame["_group"] = frame.groupby(list(keys), sort=False, dropna=False).ngroup() if keys else 0
    return (
        frame.sort_values(["_group", "_order"], kind="stable")
        .drop(columns=["_order", "_group"])
        .reset_index(drop=True)
    )


def _number(x: float, digits: int) -> str:
    return "n/a" if np.isnan(x) else f"{x:.{digits}f}"


def _cells(row: pd.Series) -> dict[str, str]:
    digits = 1 if row["metric"] in COSTS else 3
    mean = _number(row["mean"], digits) + (
        "" if np.isnan(row["std"]) else f" ± {row['std']:.{digits}f}"
    )
    control = PairedDifference(row["delta_vs_control"], row["ci_low"], row["ci_high"], 0)
    retrain = PairedDifference(
        row["delta_vs_retrain"], row["ci_low_retrain"], row["ci_high_retrain"], 0
    )

    def delta(diff: PairedDifference, words: str) -> str:
        return "—" if words == REFERENCE else format_difference(diff, digits)

    return {
        "mean ± std": mean,
        "Δ vs control [95% CI]": delta(control, row["verdict_vs_control"]),
        "verdict vs control": row["verdict_vs_control"],
        "Δ vs Retrain [95% CI]": delta(retrain, row["verdict_vs_retrain"]),
        "verdict vs Retrain": row["verdict_vs_retrain"],
    }


def paired_markdown(summary: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The human table of :func:`paired_summary`: mean ± std, Δ [95 % CI] to control and to Retrain, verdicts."""
    rows = [
        {
            **{k: r[k] for k in keys},
            "at": f"{r['at']} (round {r['round']})",
            "metric": METRIC_WORDS.get(r["metric"], (r["metric"],))[0],
            "method": r["method"],
            "seeds": int(r["n_seeds"]),
            **_cells(r),
        }
        for _, r in summary.iterrows()
    ]
    return pd.DataFrame(rows)


def paired_rounds(
    long: pd.DataFrame,
    keys: Sequence[str],
    metric: str,
    *,
    label: str = "variant",
    n_resamples: int = 1999,
) -> pd.DataFrame:
    """Per round, the paired difference (method minus control, same seed and keys) of a global test metric.

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``round``, ``mean``, ``low``, ``high``, ``n``: the
        mean over seeds of the difference and its bootstrap interval, one row
        per non-control variant and round; empty without a control arm.
    """
    g = long[(long["site"] == "global") & (long["phase"] == "test") & (long["metric"] == metric)]
    cols = [label, "round", "mean", "low", "high", "n"]
    series = (
        g.groupby([*keys, "seed", "method", label, "round"], sort=False, dropna=False)["value"]
        .mean()
        .reset_index()
    )
    control = series[series["method"] == CONTROL].drop(columns=["method", label])
    if control.empty:
        return pd.DataFrame(columns=cols)
    paired = series[series["method"] != CONTROL].merge(
        control, on=[*keys, "seed", "round"], suffixes=("", "_ref")
    )
    paired["diff"] = paired["value"] - paired["value_ref"]
    rows = []
    for (name, rnd), sub in paired.groupby([label, "round"], sort=False):
        d = paired_ci(sub["diff"].to_numpy(), n_resamples=n_resamples)
        rows.append(
            {label: name, "round": int(rnd), "mean": d.mean, "low": d.low, "high": d.high, "n": d.n}
        )
    return pd.DataFrame(rows, columns=cols)


__all__ = [
    "COSTS",
    "ERASURE",
    "FINAL",
    "NO_CONTROL",
    "NO_RETRAIN",
    "OUTCOMES",
    "SUMMARY_COLUMNS",
    "erasure_round",
    "paired_markdown",
    "paired_rounds",
    "paired_summary",
    "run_figures",
]
