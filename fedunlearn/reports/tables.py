"""Pure functions from long metric tables to per-run and per-variant figures.

The input is always the long table of ``metrics.csv`` (``round, site, phase,
method, metric, value, request``), for several runs stacked with a ``run``
column, a ``seed`` column and one column per key that tells variants apart
(grid keys of a sweep, or the scenario keys that differ between runs). Nothing
here reads files or keeps state: ``fedunlearn sweep`` and ``fedunlearn report``
both build their tables with these functions.

Cost accounting. A site's reply to a deletion request is recorded twice: once
as its ``train`` row of that round and once as its ``unlearn`` row (same round,
same site). It is counted once, from the ``unlearn`` row. The *erasure cost*
is what the deletion itself cost: the unlearning passes for an unlearning
method, and the whole federated training for Federated Retrain (it retrains
from scratch to erase); the control arm (``none``) erases nothing.

Forget-set metrics over several requests and sites are pooled: confusion
counts summed, then the rate computed (:func:`pooled_forget`), the rule of
:class:`fedunlearn.metrics.Confusion`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fedunlearn.metrics import Confusion, accuracy, balanced_accuracy, fnr
from fedunlearn.study.summary import mean_std

RETRAIN = "retrain"
CONTROL = "none"
#: Per-request forget-set confusion counts in ``metrics.csv`` (phase ``forget``).
FORGET_COUNTS: tuple[str, ...] = ("forget_tp", "forget_fp", "forget_tn", "forget_fn")
#: Global test metrics and pooled forget-set metrics read at a round.
TEST_METRICS: tuple[str, ...] = ("risk_2", "fnr", "bac", "auc")
FORGET_METRICS: tuple[str, ...] = ("ubac", "ua", "forget_fnr", "mia_efficacy")

#: (column, title) of the per-run figures, in table order.
RUN_FIGURES: tuple[tuple[str, str], ...] = (
    ("risk_2", "Risk II"),
    ("fnr", "FNR"),
    ("bac", "BAC"),
    ("auc", "AUC"),
    ("ubac", "UBAC"),
    ("mia_efficacy", "MIA"),
    ("seconds", "seconds"),
    ("images", "images"),
    ("erasure_seconds", "erasure s"),
    ("erasure_images", "erasure images"),
)
#: Figures whose gap to Federated Retrain is reported (method minus Retrain).
GAP_FIGURES: tuple[tuple[str, str], ...] = (
    ("risk_2", "ΔRisk II"),
    ("fnr", "ΔFNR"),
    ("mia_efficacy", "ΔMIA"),
)


def final_round(metrics: pd.DataFrame) -> int:
    """The last round with global test metrics (the run's final model)."""
    g = metrics[(metrics["site"] == "global") & (metrics["phase"] == "test")]
    if g.empty:
        raise ValueError("the table has no global test rows (site 'global', phase 'test')")
    return int(g["round"].max())


def _mean(rows: pd.DataFrame, metric: str) -> float:
    vals = rows.loc[rows["metric"] == metric, "value"].astype(float)
    return float(vals.mean()) if len(vals) else float("nan")


def pooled_forget(forget: pd.DataFrame) -> dict[str, float]:
    """Forget-set metrics of several requests and sites at one round, from pooled counts.

    Parameters
    ----------
    forget : pandas.DataFrame
        The ``forget`` rows of one run at one round (one set of metrics per
        site and request).

    Returns
    -------
    dict
        ``ubac`` = 1 - BAC, ``ua`` = 1 - accuracy and ``forget_fnr`` of the
        summed ``forget_tp/fp/tn/fn`` (the union of the forget sets), and
        ``mia_efficacy`` weighted by ``forget_count``. Runs written before
        sites reported these counts (old run directories) fall back to the
        plain mean of the per-request values, which weighs a small forget set
        as much as a large one. NaN without forget rows.

    References
    ----------
    METHOD.md section 5 (pooling rule); :func:`fedunlearn.metrics.unlearning_metrics`.
    """
    out = {m: _mean(forget, m) for m in FORGET_METRICS}
    if forget.empty:
        return out
    keys = [c for c in ("site", "request") if c in forget.columns]
    rows = forget.assign(**{c: forget[c].fillna("").astype(str) for c in keys})
    rows = rows.drop_duplicates(
        [*keys, "metric"], keep="last"
    )  # one set of metrics per (site, request)
    wide = rows.set_index([*keys, "metric"])["value"].astype(float).unstack("metric")
    if not set(FORGET_COUNTS) <= set(wide.columns) or wide[list(FORGET_COUNTS)].isna().any().any():
        return out
    sums = wide[list(FORGET_COUNTS)].astype(float).sum()
    pooled = Confusion.from_mapping({k.removeprefix("forget_"): sums[k] for k in FORGET_COUNTS})
    out.update(
        ubac=1.0 - balanced_accuracy(pooled), ua=1.0 - accuracy(pooled), forget_fnr=fnr(pooled)
    )
    if (
        "mia_efficacy" in wide
        and "forget_count" in wide
        and wide[["mia_efficacy", "forget_count"]].notna().all().all()
    ):
        weights = wide["forget_count"].astype(float)
        if weights.sum() > 0:
            out["mia_efficacy"] = float(
                (wide["mia_efficacy"].astype(float) * weights).sum() / weights.sum()
            )
    return out


def figures_at(metrics: pd.DataFrame, rnd: int) -> dict[str, float]:
    """Global test metrics (:data:`TEST_METRICS`) and pooled forget metrics (:func:`pooled_forget`) at ``rnd``."""
    at = metrics[metrics["round"] == rnd]
    g = at[(at["site"] == "global") & (at["phase"] == "test")]
    return {**{m: _mean(g, m) for m in TEST_METRICS}, **pooled_forget(at[at["phase"] == "forget"])}


def run_costs(metrics: pd.DataFrame) -> dict[str, float]:
    """Seconds and images of one run: training, unlearning, total, erasure (see the module notes).

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long table of one run.

    Returns
    -------
    dict
        ``seconds``, ``images`` (all site computation, each deletion reply counted
        once), ``erasure_seconds``, ``erasure_images``.
    """
    unlearn = metrics[metrics["phase"] == "unlearn"]
    deletion_replies = set(zip(unlearn["round"], unlearn["site"]))
    train = metrics[metrics["phase"] == "train"]
    train = train[
        np.array(
            [(r, s) not in deletion_replies for r, s in zip(train["round"], train["site"])],
            dtype=bool,
        )
    ]

    def total(rows: pd.DataFrame, metric: str) -> float:
        return float(rows.loc[rows["metric"] == metric, "value"].astype(float).sum())

    out = {
        "seconds": total(train, "seconds") + total(unlearn, "seconds"),
        "images": total(train, "images") + total(unlearn, "images"),
    }
    retrain = set(metrics["method"]) == {RETRAIN}
    erasure = train if retrain else unlearn
    out["erasure_seconds"] = total(erasure, "seconds")
    out["erasure_images"] = total(erasure, "images")
    return out


def run_summary(metrics: pd.DataFrame) -> dict[str, float]:
    """The final figures of one run.

    Parameters
    ----------
    metrics : pandas.DataFrame
        The long table of one run (rows of its ``metrics.csv``).

    Returns
    -------
    dict
        ``risk_2``, ``fnr``, ``bac``, ``auc`` of the global test split at the final
        round; ``ubac`` and ``mia_efficacy`` of the deleting sites' forget sets at
        the final round (pooled over sites and requests, :func:`pooled_forget`;
        NaN without deletions); and the costs of :func:`run_costs`.
    """
    figures = figures_at(metrics, final_round(metrics))
    out = {m: figures[m] for m in ("risk_2", "fnr", "bac", "auc", "ubac", "mia_efficacy")}
    out.update(run_costs(metrics))
    return out


def per_run(long: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """One row per ``run`` of a stacked long table: its keys, seed, method and final figures.

    Parameters
    ----------
    long : pandas.DataFrame
        Long rows of several runs with columns ``run``, ``seed`` and ``keys``.
    keys : sequence of str
        Columns that identify a variant (constant within a run).
    """
    rows = []
    for run, sub in long.groupby("run", sort=False):
        first = sub.iloc[0]
        rows.append(
            {
                "run": run,
                "seed": first["seed"],
                "method": first["method"],
                **{k: first[k] for k in keys},
                **run_summary(sub),
            }
        )
    columns = list(dict.fromkeys(["run", *keys, "seed", "method", *(c for c, _ in RUN_FIGURES)]))
    return pd.DataFrame(rows, columns=columns)


def variant_groups(runs: pd.DataFrame, keys: Sequence[str]):
    """``(key values, rows)`` of each variant of ``runs`` (one group of all rows without keys), first seen first."""
    if not keys:
        yield (), runs
        return
    for values, sub in runs.groupby(list(keys), sort=False, dropna=False):
        yield (values if isinstance(values, tuple) else (values,)), sub


def aggregate(runs: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Mean and sample std over the runs (seeds) of each variant, variants in first-seen order.

    Returns columns ``keys``, ``runs``, ``seeds`` and ``<figure>_mean``, ``<figure>_std``
    (std NaN for a single run).
    """
    out = []
    for values, sub in variant_groups(runs, keys):
        row = dict(zip(keys, values))
        row["runs"] = len(sub)
        row["seeds"] = " ".join(str(s) for s in sorted(set(sub["seed"])))
        for col, _ in RUN_FIGURES:
            vals = sub[col].astype(float)
            row[f"{col}_mean"] = float(vals.mean()) if vals.notna().any() else float("nan")
            row[f"{col}_std"] = float(vals.std(ddof=1)) if vals.notna().sum() > 1 else float("nan")
        out.append(row)
    return pd.DataFrame(out)


def gaps_to_retrain(agg: pd.DataFrame, keys: Sequence[str], method_key: str) -> pd.DataFrame:
    """Add ``<figure>_gap`` = variant mean minus Retrain's mean with the same other keys.

    Parameters
    ----------
    agg : pandas.DataFrame
        Output of :func:`aggregate`.
    keys : sequence of str
        The variant keys of ``agg``; ``method_key`` among them.
    method_key : str
        The key that holds the unlearning method (``deletion.method`` in a sweep).

    Returns
    -------
    pandas.DataFrame
        ``agg`` unchanged when no variant is Retrain; else with gap columns
        (NaN where no Retrain shares the other keys; 0 for Retrain itself).
    """
    if method_key not in keys or not (agg[method_key] == RETRAIN).any():
        return agg
    others = [k for k in keys if k != method_key]
    ref = agg[agg[method_key] == RETRAIN]
    out = agg.copy()
    for col, _ in GAP_FIGURES:
        gaps = []
        for _, row in agg.iterrows():
            match = ref
            for k in others:
                match = match[match[k] == row[k]]
            gaps.append(
                float(row[f"{col}_mean"] - match[f"{col}_mean"].iloc[0])
                if len(match)
                else float("nan")
            )
        out[f"{col}_gap"] = gaps
    return out


def summarize(
    long: pd.DataFrame, keys: Sequence[str], method_key: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-run figures and their per-variant aggregate (with gaps to Retrain where it is there)."""
    runs = per_run(long, keys)
    agg = aggregate(runs, keys)
    if method_key is not None:
        agg = gaps_to_retrain(agg, keys, method_key)
    return runs, agg


def summary_markdown(runs: pd.DataFrame, agg: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The human table: keys, runs, ``mean ± std`` per figure, signed gaps to Retrain."""
    rows = []
    for _, a in agg.iterrows():
        sub = runs
        for k in keys:
            sub = sub[sub[k] == a[k]]
        row = {k: a[k] for k in keys}
        row["runs"] = f"{a['runs']} (seeds {a['seeds']})"
        row.update({title: mean_std(sub[col]) for col, title in RUN_FIGURES})
        for col, title in GAP_FIGURES:
            if f"{col}_gap" in agg.columns:
                row[title] = "n/a" if np.isnan(a[f"{col}_gap"]) else f"{a[f'{col}_gap']:+.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_front(cost: Sequence[float], risk: Sequence[float]) -> np.ndarray:
    """Mask of the points no other point beats on both cost and risk (lower is better).

    A point is dominated when another is no worse on both and better on one;
    NaN points are never on the front.
    """
    c, r = np.asarray(cost, dtype=float), np.asarray(risk, dtype=float)
    ok = ~(np.isnan(c) | np.isnan(r))
    front = np.zeros(len(c), dtype=bool)
    for i in np.flatnonzero(ok):
        others = ok & (np.arange(len(c)) != i)
        dominated = others & (c <= c[i]) & (r <= r[i]) & ((c < c[i]) | (r < r[i]))
        front[i] = not dominated.any()
    return front
