"""``fedunlearn report``: runs (or sweeps of them) -> one HTML or Markdown report.

Everything shown is computed from the runs' tables (``metrics.csv``,
``events.jsonl``, ``manifest.json``, ``scenario.yaml``) with pandas.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from fedunlearn.io import now_iso
from fedunlearn.reports import figures as F
from fedunlearn.reports.contrasts import (
    FINAL,
    paired_markdown,
    paired_rounds,
    paired_summary,
    run_figures,
)
from fedunlearn.reports.guard import guard_table, guard_text
from fedunlearn.reports.load import RunData, load_runs, long_table
from fedunlearn.reports.paired import METRIC_WORDS
from fedunlearn.reports.render import Figure, Section, write_html, write_markdown
from fedunlearn.reports.tables import CONTROL, RETRAIN, pareto_front, summarize, summary_markdown

FORMATS = ("html", "md")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def deletion_rounds(long: pd.DataFrame, runs: Sequence[RunData]) -> list[int]:
    """Rounds in which a site ran an unlearning pass (``unlearn`` rows); for Retrain alone, the requested rounds."""
    applied = sorted({int(r) for r in long.loc[long["phase"] == "unlearn", "round"]})
    if applied:
        return applied
    return sorted(
        {
            int(r["round"])
            for run in runs
            for r in (run.scenario.get("deletion", {}).get("requests") or [])
        }
    )


def _official(data: dict) -> str:
    if data.get("synthetic"):
        return "synthetic"
    return "yes" if data.get("official") else "NO (not the official file)"


def provenance(runs: Sequence[RunData]) -> tuple[pd.DataFrame, str]:
    """One row per run from its manifest, and a sentence on whether versions agree."""
    rows = []
    for r in runs:
        m, data, v = r.manifest, r.manifest.get("data") or {}, r.manifest.get("versions") or {}
        rows.append(
            {
                "run": r.path.name,
                "method": r.method,
                "seed": r.seed,
                "dataset": data.get("dataset", "?"),
                "data md5": data.get("md5") or "-",
                "official data": _official(data),
                "fedunlearn": (m.get("fedunlearn_commit") or "-")[:10],
                "torch": v.get("torch", "?"),
                "flwr": v.get("flwr", "?"),
                "ray": v.get("ray", "?"),
                "device": m.get("device_name", m.get("device", "?")),
                "finished": m.get("finished", "?"),
                "seconds": f"{float(m.get('seconds', float('nan'))):.1f}",
            }
        )
    versions = {tuple(sorted((r.manifest.get("versions") or {}).items())) for r in runs}
    if len(versions) == 1:
        note = (
            "All runs share these versions: "
            + ", ".join(f"{k} {v}" for k, v in next(iter(versions)))
            + "."
        )
    else:
        note = "WARNING: the runs were made with different package versions; compare with care."
    return pd.DataFrame(rows), note


def _erasing(agg: pd.DataFrame) -> pd.DataFrame:
    """The variants that erase: the control arm (free, and erasing nothing) is no candidate of a Pareto front."""
    erasing = agg[agg["method"] != CONTROL]
    return agg if erasing.empty else erasing


def _at_a_glance(agg: pd.DataFrame) -> str:
    agg = _erasing(agg)
    front = agg[pareto_front(agg["erasure_seconds_mean"], agg["risk_2_mean"])]["variant"].tolist()
    text = f"Pareto front (erasure seconds vs final Risk II): {', '.join(front) or 'n/a'}."
    if "risk_2_gap" in agg.columns:
        others = agg[(agg["method"] != RETRAIN) & agg["risk_2_gap"].notna()]
        if not others.empty:
            best = others.loc[others["risk_2_gap"].abs().idxmin()]
            text += (
                f" Nearest to Federated Retrain on final Risk II: {best['variant']} "
                f"(gap {best['risk_2_gap']:+.3f})."
            )
    return text


def _effects(paired: pd.DataFrame, context: Sequence[str]) -> str:
    """One sentence: each method's verdicts on FNR and Risk II against the control arm at the final round."""
    rows = paired[
        (paired["at"] == FINAL)
        & paired["metric"].isin(["fnr", "risk_2"])
        & (paired["method"] != CONTROL)
    ]
    if not (paired["method"] == CONTROL).any() or rows.empty:
        return (
            "No control arm (deletion.method: none) among these runs: the effect of erasing cannot be told "
            "apart from training noise; add one (`fedunlearn sweep` does by default)."
        )
    parts = []
    for values, sub in rows.groupby([*context, "method"], sort=False, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        where = ", ".join(f"{k}={v}" for k, v in zip(context, values))
        label = f"{values[-1]}{f' ({where})' if where else ''}"
        named = [
            w if METRIC_WORDS[m][0] in w else f"{METRIC_WORDS[m][0]} {w}"
            for m, w in zip(sub["metric"], sub["verdict_vs_control"])
        ]
        parts.append(f"{label}: {', '.join(named)}")
    return "Against the control arm at the final round: " + "; ".join(parts) + "."


def _method_tables(long: pd.DataFrame, keys: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The final-metrics table (Markdown cells, one row per variant) and the aggregate it is made from."""
    per_run, agg = summarize(long, keys, "method")
    variant_of = long.groupby("run", sort=False)["variant"].first()
    per_run.insert(1, "variant", per_run["run"].map(variant_of))
    agg.insert(
        0,
        "variant",
        [
            per_run.loc[per_run[keys].eq(row[keys]).all(axis=1), "variant"].iloc[0]
            for _, row in agg.iterrows()
        ],
    )
    table = summary_markdown(per_run, agg, keys).drop(columns=keys)
    table.insert(0, "variant", list(agg["variant"]))
    return table, agg


def _cost_text(runs: Sequence[RunData]) -> str:
    """The misclassification costs of Risk II the runs use, e.g. ``C_FP = 1, C_FN = 20``."""
    costs = sorted(
        {
            (
                float(r.scenario.get("evaluation", {}).get("c_fp", 1.0)),
                float(r.scenario.get("evaluation", {}).get("c_fn", 20.0)),
            )
            for r in runs
        }
    )
    return "; ".join(f"C_FP = {fp:g}, C_FN = {fn:g}" for fp, fn in costs)


def _figure_sections(
    long: pd.DataFrame,
    agg: pd.DataFrame,
    variants: list[str],
    rounds: list[int],
    context: list[str],
) -> list[Section]:
    """The report's three figure sections: risk over rounds, per-site risk, cost against risk."""
    differences = {m: paired_rounds(long, context, m) for m, _, _ in F.ROUND_METRICS}
    rounds_caption = (
        "Top: global test Risk II and FNR per round (band: ± std over seeds). Bottom: method minus control "
        "arm with the same seed, per round (band: 95 % bootstrap interval over seeds). Dashed: deletion "
        "rounds (unlearning passes)"
    )
    sites_caption = "Risk II on each hospital's local test shard, site x round (pooled: summed confusion counts)"
    pareto_caption = (
        "Erasure cost vs final Risk II, colour = UBAC; ringed and dashed: the Pareto front "
        "(lower is better; the control arm, which erases nothing, is left out)"
    )
    rounds_fig = F.rounds_figure(long, variants, rounds, differences)
    return [
        Section("rounds", "Risk over rounds", (Figure("rounds", rounds_fig, rounds_caption),)),
        Section(
            "sites",
            "Per-site risk",
            (Figure("sites", F.heatmap_figure(long, variants), sites_caption),),
        ),
        Section(
            "pareto",
            "Cost, risk and forgetting",
            (Figure("pareto", F.pareto_figure(_erasing(agg)), pareto_caption),),
        ),
    ]


def build_sections(runs: Sequence[RunData]) -> tuple[str, str, list[Section]]:
    """Title, meta line and sections of the report on ``runs``."""
    long, keys = long_table(runs)
    context = keys[1:]
    paired = paired_summary(
        run_figures(long, context, {str(r.path): r.first_request_round for r in runs}), context
    )
    table, agg = _method_tables(long, keys)
    variants = list(agg["variant"])
    last = sorted({int(x) for x in long["round"]})[-1]
    prov, prov_note = provenance(runs)
    final_text = (
        f"Final round {last}. Global test Risk II ({_cost_text(runs)}), FNR and BAC of the final global "
        "model; UBAC and MIA efficacy of the deleting sites' forget sets (MIA: nearest to Retrain is best, not "
        "lowest); mean ± std over seeds. seconds / images: all site training and unlearning; erasure: the "
        "unlearning passes (for Retrain, the whole retraining). Δ = method minus Federated Retrain."
    )
    bars = Figure(
        "bars",
        F.bars_figure(agg),
        "Final metrics per method (error bars: std over seeds; Retrain hatched)",
    )
    paired_text = (
        "Each method minus the control arm (deletion.method none: requests recorded, nothing erased) and minus "
        "Federated Retrain, paired by seed and every other key: mean over seeds with its 95 % percentile "
        "bootstrap interval; a verdict names a rise or a fall only when the interval excludes 0. "
        "final: each run's last round; erasure: the first global evaluation at or after the first "
        "deletion request. UBAC and MIA of the forget sets pooled over sites and requests."
    )
    sections = [
        Section("final", "Final metrics per method", (final_text, table, _at_a_glance(agg), bars)),
        Section(
            "paired",
            "Paired effects: against the control arm and Retrain",
            (paired_text, _effects(paired, context), paired_markdown(paired, context)),
        ),
        *_figure_sections(long, agg, variants, deletion_rounds(long, runs), context),
        Section("provenance", "Provenance", (prov_note, prov)),
    ]
    guarded = guard_table(runs)
    if not guarded.empty:  # runs with deletion.guard on: mark every guarded round and what it cost
        sections.insert(3, Section("guard", "Risk guard", (guard_text(guarded), guarded)))
    names = sorted({str(r.scenario.get("name", "?")) for r in runs})
    title = f"fedunlearn report: {', '.join(names)}"
    meta = (
        f"{len(runs)} run(s), {len(variants)} variant(s), seeds "
        f"{sorted({r.seed for r in runs})}; generated {now_iso()}"
    )
    return title, meta, sections


def build_report(
    paths: Sequence[str | Path],
    out: str | Path,
    fmt: str | None = None,
    *,
    allow_incomplete: bool = False,
    warn: Callable[[str], None] = _stderr,
) -> Path:
    """Write the report on the runs named by ``paths`` (run or sweep directories) to ``out``.

    Parameters
    ----------
    paths : sequence of path
        Run directories and/or sweep directories (their ``runs/*``).
    out : path
        ``report.html`` (self-contained) or ``report.md`` (PNGs beside it).
    fmt : {"html", "md"}, optional
        Default: ``md`` when ``out`` ends in ``.md``, else ``html``.
    allow_incomplete : bool
        Leave unfinished runs out with a warning instead of refusing.
    """
    out = Path(out)
    fmt = fmt or ("md" if out.suffix.lower() == ".md" else "html")
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    runs = load_runs(paths, allow_incomplete=allow_incomplete, warn=warn)
    title, meta, sections = build_sections(runs)
    return (write_html if fmt == "html" else write_markdown)(out, title, meta, sections)


__all__ = ["FORMATS", "build_report", "build_sections", "deletion_rounds", "provenance"]
