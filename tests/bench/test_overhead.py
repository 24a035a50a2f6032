"""Round overhead and erasure cost computed from a hand-written metrics table (no Ray)."""

from __future__ import annotations

import pandas as pd
import pytest

from fedunlearn.bench.erasure import ErasureSettings, erasure_scenario, retrain_cost, unlearn_cost
from fedunlearn.bench.fedruns import RunFigures, scenario_of
from fedunlearn.bench.overhead import overhead_scenario, round_overheads


def _run(rows: list[tuple], raw: dict, actors: int = 2) -> RunFigures:
    from fedunlearn.bench.procmem import ActorPeak

    metrics = pd.DataFrame(
        rows, columns=["round", "site", "phase", "method", "metric", "value", "request"]
    )
    return RunFigures(
        "t",
        scenario_of(raw, "t"),
        metrics,
        1.0,
        0.0,
        0.0,
        True,
        {i: ActorPeak(1.0, 1.0, 1.0) for i in range(actors)},
    )


def _round(
    r: int,
    train_wall: float,
    eval_wall: float,
    train: list[float],
    evals: list[float],
    phase="train",
):
    rows = [
        (r, "global", "timing", "m", "train_seconds", train_wall, ""),
        (r, "global", "timing", "m", "evaluate_seconds", eval_wall, ""),
        (r, "global", "timing", "m", "server_eval_seconds", 0.5, ""),
    ]
    rows += [(r, f"site-{i}", phase, "m", "seconds", s, "") for i, s in enumerate(train)]
    rows += [(r, f"site-{i}", phase, "m", "images", 100.0, "") for i, _ in enumerate(train)]
    rows += [(r, f"site-{i}", "evaluate", "m", "seconds", s, "") for i, s in enumerate(evals)]
    return rows


def test_overhead_is_wall_minus_the_longest_site_per_phase_from_round_two() -> None:
    rows = _round(1, 9.0, 9.0, [1, 1, 1, 1], [1, 1, 1, 1]) + _round(
        2, 2.0, 1.0, [0.2, 0.6, 0.3, 0.1], [0.1, 0.2, 0.1, 0.1]
    )
    (ro,) = round_overheads(_run(rows, overhead_scenario(4, 2, 8)))
    assert ro.server_round == 2
    assert ro.overhead == pytest.approx((2.0 - 0.6) + (1.0 - 0.2))
    # With 4 sites on 2 actors the packed bound is sum/2 where it exceeds the longest site.
    assert ro.net == pytest.approx((2.0 - 0.6) + (1.0 - 0.25))
    assert ro.server_eval == 0.5


def test_erasure_costs_sum_every_retrain_round_and_take_the_deletion_round() -> None:
    s = ErasureSettings(sites=2, rounds=2, local_epochs=1, unlearn_epochs=1)
    retrain = _run(
        _round(1, 3.0, 1.0, [1.0, 2.0], [0.1, 0.1]) + _round(2, 5.0, 1.0, [2.0, 2.0], [0.1, 0.1]),
        erasure_scenario("retrain", {"dataset": "synthetic"}, s),
    )
    cost = retrain_cost(retrain)
    assert (cost.wall_s, cost.compute_s, cost.images) == (8.0, 7.0, 400.0)
    unlearn_rows = [
        (2, "site-0", "unlearn", "m", k, v, "r0")
        for k, v in (("seconds", 0.4), ("images", 30.0), ("forget_count", 5.0))
    ]
    salun = _run(
        _round(1, 3.0, 1.0, [1.0, 2.0], [0.1, 0.1])
        + _round(2, 0.5, 1.0, [0.45], [0.1, 0.1])
        + unlearn_rows,
        erasure_scenario("salun-cra", {"dataset": "synthetic"}, s),
    )
    u, forget = unlearn_cost(salun)
    assert (u.wall_s, u.compute_s, u.images, forget) == (0.5, 0.4, 30.0, 5.0)
    assert round_overheads(salun)[0:] == []  # the deletion round is not a steady round


def test_flower_reference_has_the_same_overhead_definition_and_the_ratio() -> None:
    from fedunlearn.bench.flowerapp import FlowerRound, flower_overheads, flower_rows
    from fedunlearn.bench.table import BenchTable

    minimal = [
        FlowerRound(1, 9.0, 9.0, [1.0, 1.0], [1.0, 1.0]),  # round 1 is left out, as for fedunlearn
        FlowerRound(2, 2.0, 1.0, [0.5, 0.6], [0.1, 0.2]),
    ]
    assert flower_overheads(minimal) == [pytest.approx((2.0 - 0.6) + (1.0 - 0.2))]
    noop = [FlowerRound(1, 5.0, 5.0), FlowerRound(2, 0.2, 0.1), FlowerRound(3, 0.4, 0.1)]
    ours = _run(
        _round(1, 9.0, 9.0, [1, 1], [1, 1]) + _round(2, 2.0, 1.0, [0.2, 0.6], [0.1, 0.2]),
        overhead_scenario(2, 2, 8),
    )
    table = BenchTable()
    flower_rows(table, [ours], {2: [minimal]}, {2: [noop]})
    got = {m: v for _, _, m, v, _ in table.rows}
    assert got["flower_round_overhead_s"] == pytest.approx(2.2)
    assert got["noop_round_s"] == pytest.approx(0.4)  # median of 0.3 and 0.5, round 1 left out
    assert got["round_overhead_vs_flower_ratio"] == pytest.approx(((2.0 - 0.6) + (1.0 - 0.2)) / 2.2)
    # 2 sites on 2 actors: packing changes nothing, so net = raw for both apps
    assert got["flower_round_overhead_net_s"] == pytest.approx(2.2)
    assert got["round_overhead_net_vs_flower_ratio"] == pytest.approx(2.2 / 2.2)
    # 4 sites on 2 actors: the packed bound sum/2 replaces the longest site where it is larger
    four = [FlowerRound(2, 2.0, 1.0, [0.5, 0.6, 0.5, 0.5], [0.1, 0.1, 0.1, 0.1])]
    assert flower_overheads(four, actors=2) == [pytest.approx((2.0 - 1.05) + (1.0 - 0.2))]


@pytest.mark.parametrize(
    ("mode", "has_flag", "why"),
    [
        ("off", True, "pass --sweep"),
        ("small", False, "this build has no --no-share-prefix"),
        ("full", True, "the quickstart needs --data-root"),
    ],
)
def test_sweep_row_says_why_it_was_not_measured(
    mode: str, has_flag: bool, why: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import math

    from fedunlearn.bench import sweepwall
    from fedunlearn.bench.table import BenchTable
    from fedunlearn.progress import Progress

    monkeypatch.setattr(sweepwall, "has_no_share_prefix", lambda: has_flag)
    table = BenchTable()
    sweepwall.sweep_rows(table, mode, tmp_path, tmp_path, Progress(quiet=True))
    ((bench, _, metric, value, unit),) = table.rows
    assert (bench, metric) == ("sweep", "sweep_wall_ratio") and math.isnan(value)
    assert unit.startswith("not measured (") and why in unit
    assert not any(tmp_path.iterdir())  # no sweep was started


def test_this_build_is_asked_whether_sweep_takes_no_share_prefix() -> None:
    import subprocess
    import sys

    from fedunlearn.bench.sweepwall import FLAG, has_no_share_prefix

    help_text = subprocess.run(
        [sys.executable, "-m", "fedunlearn", "sweep", "--help"], capture_output=True, text=True
    ).stdout
    assert "--grid" in help_text
    assert has_no_share_prefix() == (FLAG in help_text and "--engine" in help_text)


def test_only_a_ray_startup_timeout_is_retried() -> None:
    from fedunlearn.bench.flowerapp import ray_start_timed_out

    try:
        try:
            raise Exception("The current node timed out during startup. This could happen ...")
        except Exception as inner:
            raise RuntimeError("Simulation Runtime crashed.") from inner
    except RuntimeError as outer:
        assert ray_start_timed_out(outer)
    assert not ray_start_timed_out(RuntimeError("An error was encountered. Ending simulation."))
