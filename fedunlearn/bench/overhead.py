"""(b) Per-round overhead of the federation: the wall time of a round that no client computes.

For round ``r`` (from 2 on: round 1 pays the actors' first-call costs; rounds
with an unlearning pass left out), from the strategy's timing rows and the
sites' replies in ``metrics.csv``:

``round_overhead_s = (train wall - max_i train_i) + (evaluate wall - max_i evaluate_i)``

where *train wall* runs from ``configure_train`` to the end of recording the
replies in ``aggregate_train`` (before the weights are averaged), *evaluate
wall* from ``configure_evaluate`` to the end of ``aggregate_evaluate``,
``train_i`` is the engine's loop time reported by site ``i`` and
``evaluate_i`` the time of the site's whole evaluate handler (the ``seconds``
of its evaluate reply, recorded as phase ``evaluate`` once the strategy
records it; until then 0, so the figure is an upper bound). The server's own
evaluation (``server_eval_seconds``) is reported apart.

With more sites than actors the sites queue on the actors, so the longest
client is not the critical path; ``round_overhead_net_s`` subtracts
``max(max_i c_i, sum_i c_i / actors)`` per phase instead: what remains even if
the actors were perfectly packed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

from fedunlearn.bench.fedruns import RunFigures
from fedunlearn.bench.table import BenchTable, median


def overhead_scenario(sites: int, rounds: int, shard: int) -> dict[str, Any]:
    """Tiny synthetic shards (``shard`` training images per site, batch 32): compute is small."""
    return {
        "name": f"bench-overhead-{sites}",
        "seed": 0,
        "model": "small-cnn",
        "data": {
            "dataset": "synthetic",
            "synthetic": {"n_train": shard * sites, "n_val": 8 * sites, "n_test": 64},
        },
        "sites": {"count": sites, "partition": "iid"},
        "training": {"rounds": rounds, "local_epochs": 1, "batch_size": 32, "lr": 0.05},
        "evaluation": {"server_val": False, "operating_points": [0.5]},
    }


@dataclass(frozen=True)
class RoundOverhead:
    sites: int
    server_round: int
    train_wall: float
    eval_wall: float
    server_eval: float
    train_max: float
    train_sum: float
    eval_max: float
    eval_sum: float
    actors: int
    eval_recorded: bool

    @property
    def overhead(self) -> float:
        return (self.train_wall - self.train_max) + (self.eval_wall - self.eval_max)

    @property
    def net(self) -> float:
        a = max(self.actors, 1)
        return (self.train_wall - max(self.train_max, self.train_sum / a)) + (
            self.eval_wall - max(self.eval_max, self.eval_sum / a)
        )


def round_overheads(run: RunFigures) -> list[RoundOverhead]:
    """Every steady training round of ``run`` (round >= 2, no unlearning pass in it)."""
    skip = set(run.unlearn_rounds())
    out = []
    for r in range(2, run.rounds + 1):
        if r in skip:
            continue
        train = run.site_values(r, "train", "seconds")
        evals = run.site_values(r, "evaluate", "seconds")
        if not train or math.isnan(run.timing(r, "train")):
            continue
        out.append(
            RoundOverhead(
                sites=run.sites,
                server_round=r,
                train_wall=run.timing(r, "train"),
                eval_wall=run.timing(r, "evaluate"),
                server_eval=run.timing(r, "server_eval"),
                train_max=max(train),
                train_sum=sum(train),
                eval_max=max(evals, default=0.0),
                eval_sum=sum(evals),
                actors=run.n_actors,
                eval_recorded=bool(evals),
            )
        )
    return out


def overhead_rows(table: BenchTable, runs: list[RunFigures]) -> None:
    """Medians per site count over every steady round of every run; and how the overhead grows."""
    by_sites: dict[int, list[RoundOverhead]] = {}
    for run in runs:
        for ro in round_overheads(run):
            by_sites.setdefault(ro.sites, []).append(ro)
    medians: dict[int, float] = {}
    recorded = True
    for sites in sorted(by_sites):
        rs = by_sites[sites]
        recorded &= all(r.eval_recorded for r in rs)
        medians[sites] = median(r.overhead for r in rs)
        add = partial(table.add, "round_overhead", sites)
        add("round_overhead_s", medians[sites], "s per round (median; target < 0.5 at 8 sites)")
        add(
            "round_overhead_net_s", median(r.net for r in rs), "s per round (median, actors packed)"
        )
        add("train_wall_s", median(r.train_wall for r in rs), "s per round (median)")
        add("evaluate_wall_s", median(r.eval_wall for r in rs), "s per round (median)")
        add("client_train_max_s", median(r.train_max for r in rs), "s (median of the longest site)")
        add(
            "client_evaluate_max_s",
            median(r.eval_max for r in rs),
            "s (median of the longest site)",
        )
        add(
            "server_eval_s",
            median(r.server_eval for r in rs),
            "s per round (median, apart from the overhead)",
        )
        add("actors", rs[0].actors, "client actor processes")
        add("rounds_measured", len(rs), "rounds (>= 2, no unlearning) over every run")
    table.add("round_overhead", "", "client_evaluate_seconds_recorded", int(recorded), "bool")
    if len(medians) >= 2:
        lo, hi = min(medians), max(medians)
        if medians[lo] > 0 and medians[hi] > 0:
            exponent = math.log(medians[hi] / medians[lo]) / math.log(hi / lo)
            table.add(
                "round_overhead",
                f"{lo}-{hi}",
                "overhead_growth_exponent",
                exponent,
                "d log(overhead) / d log(sites) (1 = linear; target <= 1)",
            )
    table.note(
        "round_overhead_s = (train-phase wall - longest site's train seconds) + (evaluate-phase wall - longest "
        "site's evaluate seconds), per round from round 2, rounds with an unlearning pass left out, median; "
        "train-phase wall = configure_train -> replies recorded in aggregate_train (weight averaging not included), "
        "evaluate-phase wall = configure_evaluate -> end of aggregate_evaluate; the server's own evaluation is "
        "server_eval_s, apart. round_overhead_net_s subtracts max(longest site, sum of sites / actors) instead "
        "(sites queue on the actors when there are more sites than actors)."
    )
    if not recorded:
        table.note(
            "client evaluate seconds were not in metrics.csv (the strategy does not record the evaluate reply's "
            "'seconds' yet): the evaluate phase counts whole, so round_overhead_s is an upper bound."
        )
