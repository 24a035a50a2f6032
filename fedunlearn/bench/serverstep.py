"""(e) The server's per-round step against the run's history: does it stay flat over 50 rounds?

The step is what the server does each round besides waiting for the sites:
recording the sites' replies (the rows the strategy records per site: train,
local-test, evaluate seconds; the pooled row), its own evaluation of the
global model on the test split, the round's ``metrics.csv`` write and the
checkpoint (:class:`fedunlearn.federated.server_app.ServerEvaluator`, the real
one, bound to the real strategy of the scenario). No client runs: the replies'
figures are drawn from a seeded generator, so this measures the server alone,
at 50 rounds and 8 or 32 sites in seconds rather than the hour a real run
would take on two cores.

The 50 rounds are run ``REPEATS`` times, each into a new run directory, and
each round's figure is taken over the repeats first: its median wall time and
its least CPU time. ``server_step_s`` at round ``r`` is then the median over
rounds ``r-2 .. r+2`` (round 50: rounds 46-50) of those wall times;
``server_step_cpu_s`` is the least CPU time of this process over the same
rounds, the figure a loaded machine disturbs least (other processes, and this
process's idle torch threads, only ever add to a step's cost), and the one the
target ``round 50 <= 1.2 x round 5`` is read on. With one repeat, five rounds
a side, that figure swung from 0.77 to 1.29 between two runs of the same code
(a profile found the same calls in both windows); the repeats take the
interference out of each round before the windows are compared.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord

from fedunlearn.bench.overhead import overhead_scenario
from fedunlearn.bench.table import BenchTable, median
from fedunlearn.federated.scenario import scenario_from_mapping

ROUNDS = 50
AROUND = 2  # rounds either side of the reported one
REPEATS = 3  # whole 50-round runs per site count; each round's figure is taken over them


def _site_rows(strategy, rng: np.random.Generator, server_round: int) -> None:
    """What ``aggregate_train`` and ``aggregate_evaluate`` record for a round of every site."""
    from fedunlearn.metrics.clinical import Confusion, clinical_metrics, pool

    rec, costs, plan = strategy.recorder, strategy._costs(), strategy.plan
    confusions = []
    for site in sorted(plan.node_of):
        name = plan.name(site)
        loss, seconds = rng.random(2)
        rec.metrics(
            server_round,
            name,
            "train",
            {"num_examples": 64, "loss": loss, "seconds": seconds, "images": 64},
        )
        c = Confusion(*(int(v) for v in rng.integers(0, 40, size=4)))
        confusions.append(c)
        rec.metrics(server_round, name, "local-test", clinical_metrics(c, costs=costs))
        rec.metrics(server_round, name, "evaluate", {"seconds": float(rng.random())})
    rec.metrics(
        server_round, "pooled", "local-test", clinical_metrics(pool(confusions), costs=costs)
    )


def server_step_seconds(
    sites: int, run_dir: Path, rounds: int = ROUNDS
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of the server step of rounds ``1 .. rounds`` (index 0 is round 1)."""
    from fedunlearn.federated.ledger import SERVER_LEDGER, ServerLedger
    from fedunlearn.federated.plan import FederationPlan
    from fedunlearn.federated.recorder import RunRecorder
    from fedunlearn.federated.server_app import ServerEvaluator
    from fedunlearn.federated.strategy import make_strategy
    from fedunlearn.federated.transport import to_arrays
    from fedunlearn.models import build_model
    from fedunlearn.progress import Progress

    scenario = scenario_from_mapping(overhead_scenario(sites, rounds, 64), "server step")
    run_dir.mkdir(parents=True, exist_ok=True)
    recorder = RunRecorder(run_dir, scenario.deletion.method)
    plan = FederationPlan(
        scenario, {s: 1000 + s for s in range(sites)}, ServerLedger(run_dir / SERVER_LEDGER)
    )
    strategy = make_strategy(scenario, plan, recorder)
    quiet = Progress(quiet=True)
    evaluator = ServerEvaluator(scenario, recorder, strategy, quiet, run_dir)
    arrays: ArrayRecord = to_arrays(build_model(scenario.model, seed=0))
    for s in range(sites):
        recorder.metrics(0, plan.name(s), "setup", {"train_size": 64, "test_size": 8})
    evaluator(0, arrays)
    rng = np.random.default_rng(0)
    wall, cpu = [], []
    for r in range(1, rounds + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        _site_rows(strategy, rng, r)
        evaluator(r, arrays)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def repeated_step_seconds(
    sites: int, out: Path, rounds: int = ROUNDS, repeats: int = REPEATS
) -> tuple[list[float], list[float]]:
    """Per round, the median wall and the least CPU seconds over ``repeats`` runs of :func:`server_step_seconds`."""
    runs = [
        server_step_seconds(sites, out / f"server-step-{sites}-{k + 1}", rounds)
        for k in range(repeats)
    ]
    wall = [median(r[0][i] for r in runs) for i in range(rounds)]
    cpu = [min(r[1][i] for r in runs) for i in range(rounds)]
    return wall, cpu


def server_step_rows(
    table: BenchTable,
    out: Path,
    sites: tuple[int, ...] = (8, 32),
    rounds: int = ROUNDS,
    repeats: int = REPEATS,
) -> None:
    """``server_step_s`` at rounds 5 and ``rounds`` for each site count, and their ratio."""
    for n in sites:
        wall, cpu = repeated_step_seconds(n, out, rounds, repeats)
        for metric, seconds, stat, word in (
            ("server_step_s", wall, median, "median"),
            ("server_step_cpu_s", cpu, min, "least"),
        ):
            early = stat(seconds[5 - 1 - AROUND : 5 + AROUND])
            late = stat(seconds[rounds - 1 - 2 * AROUND :])
            add = partial(table.add, "server_step", n)
            add(
                f"{metric}_round5",
                early,
                f"s ({word} of rounds 3-7; each round over {repeats} repeats)",
            )
            add(
                f"{metric}_round{rounds}",
                late,
                f"s ({word} of rounds {rounds - 2 * AROUND}-{rounds})",
            )
            target = " (target <= 1.2)" if stat is min else ""
            add(f"{metric}_growth_ratio", late / early, f"round {rounds} / round 5{target}")
    table.note(
        "server_step: the server's per-round work with no client running (recording every site's replies, "
        "its own test-split evaluation, the metrics.csv write and the round's checkpoint), through the real "
        f"ServerEvaluator and strategy, over {rounds} rounds of the (b) scenario, {repeats} times; replies' "
        "figures are seeded draws; each round's wall is its median over the repeats, its CPU its least."
    )
