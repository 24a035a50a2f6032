"""A minimal Flower 1.42 Message-API app: the reference that (b)'s round overhead is compared with.

``FedAvg`` from :mod:`flwr.serverapp.strategy`, fedunlearn's small CNN, a
plain PyTorch loop on a seeded synthetic shard of the (b) scenario's size per
node (``shard`` training images, 8 test images, batch 32, SGD lr 0.05), run
by ``run_simulation`` on Ray with the same backend settings as a fedunlearn
run (so the same number of actors). Nothing of fedunlearn runs in it but the
model definition: no scenario, no ledger, no recorder, no checkpoint.

With ``noop`` the ClientApp replies at once (the arrays it got back, no
compute): the floor of Flower's simulation engine itself.

Timing uses the same definition as (b): the train phase runs from
``configure_train`` to the start of ``aggregate_train`` (weight averaging not
included), the evaluate phase from ``configure_evaluate`` to the end of
``aggregate_evaluate``; each reply carries ``seconds``, the client's own
compute (the training loop; the whole evaluate handler).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedunlearn.bench.fedruns import RunFigures
from fedunlearn.bench.overhead import round_overheads
from fedunlearn.bench.table import BenchTable, median
from fedunlearn.models import build_model

TEST_IMAGES = 8
RAY_START_TRIES = 3  # Ray gives its raylet 30 s to register, which a loaded machine can miss
BATCH = 32
LR = 0.05

client_app = ClientApp()


@functools.lru_cache(maxsize=4)
def _shard(partition: int, images: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + partition)
    return torch.rand(images, 3, 28, 28, generator=g), torch.randint(0, 2, (images,), generator=g)


def _model(arrays: ArrayRecord) -> torch.nn.Module:
    model = build_model("small-cnn")
    model.load_state_dict(arrays.to_torch_state_dict())
    return model


def _reply(msg: Message, arrays: ArrayRecord | None, n: int, seconds: float) -> Message:
    content = RecordDict({"metrics": MetricRecord({"num-examples": n, "seconds": seconds})})
    if arrays is not None:
        content["arrays"] = arrays
    return Message(content, reply_to=msg)


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    cfg = msg.content["config"]
    if int(cfg["noop"]):
        return _reply(msg, msg.content["arrays"], 1, 0.0)
    model = _model(msg.content["arrays"])
    x, y = _shard(int(context.node_config["partition-id"]), int(cfg["shard"]))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    model.train()
    t0 = time.perf_counter()
    for i in range(0, len(x), BATCH):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[i : i + BATCH]), y[i : i + BATCH]).backward()
        opt.step()
    seconds = time.perf_counter() - t0
    return _reply(msg, ArrayRecord(model.state_dict()), len(x), seconds)


@client_app.evaluate()
def _evaluate(msg: Message, context: Context) -> Message:
    t0 = time.perf_counter()
    if int(msg.content["config"]["noop"]):
        return _reply(msg, None, 1, 0.0)
    model = _model(msg.content["arrays"]).eval()
    x, y = _shard(10_000 + int(context.node_config["partition-id"]), TEST_IMAGES)
    with torch.no_grad():
        model(x).argmax(1).eq(y).sum()
    return _reply(msg, None, len(x), time.perf_counter() - t0)


@dataclass
class FlowerRound:
    """One round of the minimal app: phase walls and the clients' own seconds."""

    server_round: int
    train_wall: float = 0.0
    eval_wall: float = 0.0
    train: list[float] = field(default_factory=list)
    evaluate: list[float] = field(default_factory=list)


class TimedFedAvg(FedAvg):
    """FedAvg that notes each phase's wall time and the replies' ``seconds``; nothing else changes."""

    def __init__(self, nodes: int) -> None:
        super().__init__(min_train_nodes=nodes, min_evaluate_nodes=nodes, min_available_nodes=nodes)
        self.rounds: list[FlowerRound] = []
        self._t0 = 0.0

    def configure_train(self, server_round, arrays, config, grid):
        self.rounds.append(FlowerRound(server_round))
        self._t0 = time.perf_counter()
        return super().configure_train(server_round, arrays, config, grid)

    def aggregate_train(self, server_round, replies):
        replies = list(replies)
        r = self.rounds[-1]
        r.train = [float(m.content["metrics"]["seconds"]) for m in replies if not m.has_error()]
        r.train_wall = time.perf_counter() - self._t0
        return super().aggregate_train(server_round, replies)

    def configure_evaluate(self, server_round, arrays, config, grid):
        self._t0 = time.perf_counter()
        return super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(self, server_round, replies):
        replies = list(replies)
        out = super().aggregate_evaluate(server_round, replies)
        r = self.rounds[-1]
        r.evaluate = [float(m.content["metrics"]["seconds"]) for m in replies if not m.has_error()]
        r.eval_wall = time.perf_counter() - self._t0
        return out


def ray_start_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is Ray's node failing to start within its 30 s."""
    while exc is not None:
        if "timed out during startup" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def run_minimal_flower(
    sites: int, rounds: int, shard: int, noop: bool, backend: dict
) -> list[FlowerRound]:
    """Run the minimal app (``sites`` SuperNodes, ``rounds`` rounds) and return every round's timings.

    ``backend``: the ``backend_config`` a fedunlearn run of the same size would use. A run whose
    engine did not start (Ray's node startup timed out, before any round) is started again.
    """
    for attempt in range(1, RAY_START_TRIES + 1):
        try:
            return _run_once(sites, rounds, shard, noop, backend)
        except RuntimeError as exc:
            if attempt == RAY_START_TRIES or not ray_start_timed_out(exc):
                raise
        init = dict(backend["init_args"])
        if "_temp_dir" in init:  # the failed try's folder is removed: a fresh one
            init["_temp_dir"] = tempfile.mkdtemp(
                prefix="fu-ray-", dir=Path(init["_temp_dir"]).parent
            )
        backend = {**backend, "init_args": init}
    raise AssertionError("unreachable")


def _run_once(sites: int, rounds: int, shard: int, noop: bool, backend: dict) -> list[FlowerRound]:
    import ray
    from flwr.simulation import run_simulation

    strategy = TimedFedAvg(sites)
    server_app = ServerApp()
    config = ConfigRecord({"shard": shard, "noop": int(noop)})

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(build_model("small-cnn", seed=0).state_dict()),
            num_rounds=rounds,
            train_config=config,
            evaluate_config=config,
        )

    logging.getLogger("flwr").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # as a fedunlearn run
    ray_tmp = backend["init_args"].get("_temp_dir")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=sites,
                backend_name="ray",
                backend_config=backend,
            )
        finally:
            if ray.is_initialized():
                ray.shutdown()
            if ray_tmp:
                shutil.rmtree(ray_tmp, ignore_errors=True)
    return strategy.rounds


def flower_backend(scenario) -> dict:
    """The backend config of a fedunlearn run of ``scenario``, with a fresh Ray temp folder."""
    from fedunlearn.federated.simulation import backend_config

    root = os.environ.get("FEDUNLEARN_RAY_TMP", "/tmp")
    return backend_config(scenario, tempfile.mkdtemp(prefix="fu-ray-", dir=root))


def flower_overheads(rounds: list[FlowerRound], actors: int = 0) -> list[float]:
    """(b)'s ``round_overhead_s`` for the minimal app, per round from round 2; with ``actors``,
    ``round_overhead_net_s`` instead (the sites' compute packed on that many actors)."""
    a = max(actors, 1)

    def busy(seconds: list[float]) -> float:
        return max(max(seconds, default=0.0), sum(seconds) / a if actors else 0.0)

    return [
        (r.train_wall - busy(r.train)) + (r.eval_wall - busy(r.evaluate))
        for r in rounds
        if r.server_round >= 2
    ]


def flower_rows(
    table: BenchTable,
    fedunlearn_runs: list[RunFigures],
    minimal: dict[int, list[list[FlowerRound]]],
    noop: dict[int, list[list[FlowerRound]]],
) -> None:
    """Per site count: the minimal app's overhead, the no-op floor, and fedunlearn / minimal Flower
    (raw, and net of the sites' queueing on the actors)."""
    ours: dict[int, list] = {}
    for run in fedunlearn_runs:
        ours.setdefault(run.sites, []).extend(round_overheads(run))
    for sites in sorted(minimal):
        add = partial(table.add, "flower_reference", sites)
        flower = median(o for rounds in minimal[sites] for o in flower_overheads(rounds))
        floor = median(
            r.train_wall + r.eval_wall for rounds in noop.get(sites, []) for r in rounds[1:]
        )
        add("flower_round_overhead_s", flower, "s per round (median, minimal Flower app)")
        add("noop_round_s", floor, "s per round (median, no-op ClientApp: the engine's floor)")
        if sites not in ours:
            continue
        actors = ours[sites][0].actors
        net = median(o for rounds in minimal[sites] for o in flower_overheads(rounds, actors))
        add("flower_round_overhead_net_s", net, "s per round (median, actors packed)")
        target = " (target <= 1.0 at 8 sites)" if sites == 8 else ""
        ratio = median(r.overhead for r in ours[sites]) / flower
        add("round_overhead_vs_flower_ratio", ratio, f"fedunlearn / minimal Flower{target}")
        net_ratio = median(r.net for r in ours[sites]) / net
        add("round_overhead_net_vs_flower_ratio", net_ratio, "the same, net of queueing")
    table.note(
        "flower_reference: a minimal Flower 1.42 Message-API app (FedAvg from flwr.serverapp.strategy, the "
        "same small CNN, the (b) shard sizes, a plain PyTorch loop, run_simulation on Ray with the same actors), "
        "run alternately with fedunlearn's (b) runs; flower_round_overhead_s has (b)'s definition; "
        "noop_round_s is a round whose ClientApp replies at once (rounds from 2). "
        "round_overhead_vs_flower_ratio = fedunlearn's round_overhead_s / flower_round_overhead_s; the net "
        "ratio divides the round_overhead_net_s figures (with more sites than actors the raw overhead holds "
        "other sites' compute, which differs between the two apps' training loops)."
    )
