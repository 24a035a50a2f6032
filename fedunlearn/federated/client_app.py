"""The hospital ClientApp: translates messages into calls of :mod:`fedunlearn.federated.site`.

Message types:

- ``query.setup``: receive the scenario, report the site's partition id and sizes;
- ``train``: one round of local training on the site's pool (first dropping the
  rows of the requests in ``withdraw-ids``, accepted but unlearned later or never);
- ``train.unlearn``: apply deletion requests (drop the rows for good, then run
  the unlearning method on the current global model);
- ``evaluate``: confusion counts on the local test shard, plus forget-set
  metrics of every request this site has applied;
- ``train.recover`` (the risk guard): a recovery round on the site's retain
  pool (withdrawn rows stay out), answered like ``train``;
- ``query.verify`` (the risk guard): forget-set metrics of the sent model for
  the listed requests, after a recovery.

Which site a node is, where its data and its private state live, come from
its node config (:mod:`fedunlearn.federated.nodes`); a node whose config is bad
answers the setup query with the problem, and the server stops in one line.

The rows a request withdraws are committed to the site's own ledger
(``<state-dir>/<run>/<site>/ledger.sqlite``; ``sites/<site>/`` of the run
directory in simulation) before the site does anything else with the
message, so from then on they are out of every training pool, whether the
unlearning pass finishes, fails, or the whole process is killed. Forget rows
never leave the site: replies hold weights, counts and aggregates.

Failures scheduled by the scenario (``failures``) are raised here, after the
message's withdrawals are committed; Flower turns them into error replies.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp

from fedunlearn.engine import resolve_device
from fedunlearn.engine.device import prepare_model
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated import site as S
from fedunlearn.federated.ledger import SiteLedger
from fedunlearn.federated.nodes import NodeSetup, describe, resolve_node
from fedunlearn.federated.protocol import (
    ARRAYS,
    CONFIG,
    INFO,
    METRICS,
    SITE_RECORD,
    EvaluateReply,
    RecoverConfig,
    SetupQuery,
    SetupReply,
    TrainConfig,
    TrainInfo,
    TrainMetrics,
    UnlearnInfo,
    VerifyQuery,
    VerifyReply,
    server_round_of,
)
from fedunlearn.federated.scenario import Scenario, scenario_from_mapping
from fedunlearn.federated.transport import load_arrays, to_arrays
from fedunlearn.metrics.mia import warm_attack
from fedunlearn.models import build_model
from fedunlearn.seeding import stream_seed

app = ClientApp()

_STATE = "fedunlearn"


@functools.lru_cache(maxsize=8)
def _scenario(text: str, data_root: str | None = None) -> Scenario:
    """The server's scenario, reading the data from this node's own ``data-root`` when it has one."""
    scenario = scenario_from_mapping(json.loads(text), "scenario sent by the server")
    if data_root is None:
        return scenario
    return scenario.model_copy(
        update={"data": scenario.data.model_copy(update={"root": data_root})}
    )


@functools.lru_cache(maxsize=4)
def _model(name: str, device: str) -> torch.nn.Module:
    """One model object per process, reused across rounds (weights are loaded per message)."""
    return prepare_model(build_model(name), torch.device(device))


class _Site:
    """The site's view of its persistent state (``context.state``)."""

    def __init__(self, context: Context) -> None:
        cfg = context.state[_STATE]
        self.context = context
        self.scenario = _scenario(str(cfg["scenario"]), str(cfg.get("data-root", "")) or None)
        self.site = int(cfg["site"])
        self.dir = Path(str(cfg["site-dir"]))
        self.ledger = SiteLedger(self.dir / "ledger.sqlite")
        torch.set_num_threads(max(1, int(self.scenario.ray.num_cpus_per_client)))
        self.device = resolve_device(self.scenario.device)
        if self.scenario.effective_requests:  # any site of this process may run a forget-set report
            warm_attack()

    def forgotten(self) -> dict[int, torch.Tensor]:
        """Request id -> the rows it withdrew (from the site's ledger)."""
        return self.ledger.withdrawn()

    def fail_if_scheduled(self, server_round: int, phase: str) -> None:
        S.fail_if_scheduled(self.scenario, self.site, server_round, phase)

    def pool(self) -> torch.Tensor:
        return S.pool_after(self.scenario, self.site, list(self.forgotten().values()))

    def model_from(self, msg: Message) -> torch.nn.Module:
        return load_arrays(_model(self.scenario.model, str(self.device)), msg.content[ARRAYS])

    def fresh_model(self) -> torch.nn.Module:
        return prepare_model(
            build_model(
                self.scenario.model, seed=stream_seed(self.scenario.seed, "fresh-model", self.site)
            ),
            self.device,
        )

    def audit(self, server_round: int, phase: str, rows: torch.Tensor) -> None:
        """Site-private record of the rows trained on (read by tests; never sent to the server)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"round": server_round, "phase": phase, "rows": S.as_int_list(rows)})
        with open(self.dir / "audit.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


@app.query("setup")
def setup(msg: Message, context: Context) -> Message:
    query = SetupQuery.from_record(msg.content[CONFIG])
    given = describe(context.node_config)
    try:
        node = resolve_node(
            context.node_config, _scenario(query.scenario_json), not query.shared_fs
        )
        reply = _set_up(context, query, node, given)
    except FedunlearnError as exc:  # a bad node config or missing data: the server reports it
        reply = SetupReply(-1, 0, 0, 0, 0.0, node_config=given, problem=str(exc))
    return Message(RecordDict({SITE_RECORD: reply.to_record()}), reply_to=msg)


def _set_up(context: Context, query: SetupQuery, node: NodeSetup, given: str) -> SetupReply:
    """Remember the site in ``context.state``, open its ledger, and report its sizes."""
    scenario = _scenario(query.scenario_json, node.data_root)
    site = node.site
    context.state[_STATE] = ConfigRecord(
        {
            "scenario": query.scenario_json,
            "site": site,
            "site-dir": str(node.site_dir(scenario, query.run_dir)),
            "data-root": node.data_root or "",
        }
    )
    s = _Site(context)
    _, removed = S.initial_pool(scenario, site)  # Federated Retrain: forget sets gone from round 1
    initial = {rid: s.ledger.withdraw(rid, rows, 0) for rid, rows in removed.items()}
    shards = S.site_shards(scenario, site)
    data = S.scenario_dataset(scenario, quiet=True)
    labels = data.train.labels[shards.train_rows]
    return SetupReply(
        site=site,
        train_size=len(shards.train_rows),
        pool_size=len(s.pool()),
        test_size=len(shards.test_rows),
        prevalence=float(labels.float().mean()) if len(labels) else 0.0,
        initial_ids=tuple(initial),
        initial_counts=tuple(len(rows) for rows in initial.values()),
        node_config=given,
        data_md5=data.provenance.md5 or "",
    )


def _train_reply(
    msg: Message, model: torch.nn.Module, metrics: TrainMetrics, info: TrainInfo | UnlearnInfo
) -> Message:
    content = {ARRAYS: to_arrays(model), METRICS: metrics.to_record(), INFO: info.to_record()}
    return Message(RecordDict(content), reply_to=msg)


@app.train()
def train(msg: Message, context: Context) -> Message:
    s = _Site(context)
    cfg = TrainConfig.from_record(msg.content[CONFIG])
    server_round = cfg.server_round
    # accepted requests leave the pool before anything else, whenever they are unlearned
    counts = tuple(len(rows) for rows in _withdraw(s, cfg.withdraw_ids, server_round))
    s.fail_if_scheduled(server_round, "train")
    model = s.model_from(msg)
    pool = s.pool()
    stats = S.local_train(
        model, s.scenario, s.site, pool, server_round, device=s.device, prox_mu=cfg.proximal_mu
    )
    s.audit(
        server_round, "train", stats.trained_rows.get("train", torch.zeros(0, dtype=torch.long))
    )
    loss = stats.epoch_losses[-1] if stats.epoch_losses else float("nan")
    info = TrainInfo(s.site, cfg.withdraw_ids, counts)
    return _train_reply(
        msg, model, TrainMetrics(len(pool), loss, stats.seconds, stats.images), info
    )


def _withdraw(s: _Site, rids: Sequence[int], server_round: int) -> list[torch.Tensor]:
    """Drop these requests' rows from the site's pool for good; returns each request's rows.

    The rows are chosen on site from the current pool; a request withdrawn
    before (or retried, or replayed after a resume) keeps the rows chosen the
    first time, and a request that finds the pool empty withdraws nothing.
    Each request is committed to the site ledger before the next is chosen.
    """
    if not rids:  # the usual train message: nothing to read or write
        return []
    requests = s.scenario.effective_requests
    done = s.forgotten()
    pool = s.pool()
    chosen = []
    for rid in rids:
        if rid in done:
            chosen.append(done[rid])
            continue
        rows = S.select_request_rows(s.scenario, s.site, requests[rid], pool)
        s.ledger.withdraw(
            rid, rows, server_round
        )  # from now on out of the training pool, whatever happens next
        pool = S.remove(pool, rows)
        chosen.append(rows)
    return chosen


def unlearn_threads(scenario: Scenario) -> int:
    """Torch threads of a site's unlearning pass: ``ray.unlearn_threads``, else its CPUs per client."""
    threads = scenario.ray.unlearn_threads
    return threads if threads is not None else max(1, int(scenario.ray.num_cpus_per_client))


@app.train("unlearn")
def unlearn(msg: Message, context: Context) -> Message:
    s = _Site(context)
    threads = torch.get_num_threads()
    torch.set_num_threads(unlearn_threads(s.scenario))
    try:
        return _unlearn(s, msg)
    finally:
        torch.set_num_threads(threads)


def _unlearn(s: _Site, msg: Message) -> Message:
    cfg = TrainConfig.from_record(msg.content[CONFIG])
    server_round, rids = cfg.server_round, cfg.request_ids
    chosen = _withdraw(s, rids, server_round)
    forget = torch.unique(torch.cat(chosen))
    retain = s.pool()
    model = s.model_from(msg)
    counts = tuple(len(rows) for rows in chosen)
    if len(forget) == 0 or len(retain) == 0:
        # No local pass when the pool was already empty (nothing to forget) or when the whole site left
        # (nothing to retain: the methods weight their losses by retain-set class counts, 0/0 there).
        # The weights go back unchanged and carry no weight; method "none" in the event says so.
        s.fail_if_scheduled(server_round, "unlearn")
        for rid in rids:
            s.ledger.unlearned(rid, server_round)
        info = UnlearnInfo(s.site, "none", rids, counts, len(forget), len(retain), 0.0, 0)
        return _train_reply(msg, model, TrainMetrics(0, float("nan"), 0.0, 0), info)
    t0 = time.perf_counter()
    before = S.forget_report(model, s.scenario, s.site, forget, retain, device=s.device)
    s.fail_if_scheduled(
        server_round, "unlearn"
    )  # a crash in the pass: the rows stay withdrawn, the request pending
    result = S.local_unlearn(
        model,
        s.scenario,
        s.site,
        forget,
        retain,
        server_round,
        device=s.device,
        fresh_model=s.fresh_model,
        retry=cfg.retry,
    )
    after = S.forget_report(result.model, s.scenario, s.site, forget, retain, device=s.device)
    for phase, rows in result.stats.trained_rows.items():
        s.audit(server_round, f"unlearn-{phase}", rows)
    for rid in rids:
        s.ledger.unlearned(rid, server_round)
    info = UnlearnInfo(
        s.site,
        result.method,
        rids,
        counts,
        forget_count=len(forget),
        retain_count=len(retain),
        seconds=result.seconds,
        images=result.stats.images,
        mask_fraction=result.mask_fraction if result.mask_fraction is not None else -1.0,
        before=before,
        after=after,
    )
    loss = result.stats.epoch_losses[-1] if result.stats.epoch_losses else float("nan")
    metrics = TrainMetrics(len(retain), loss, time.perf_counter() - t0, result.stats.images)
    return _train_reply(msg, result.model, metrics, info)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    t0 = time.perf_counter()
    s = _Site(context)
    server_round = server_round_of(msg.content[CONFIG])
    s.fail_if_scheduled(server_round, "evaluate")
    model = s.model_from(msg)
    conf = S.local_test_confusion(model, s.scenario, s.site, device=s.device)
    reports: dict[int, dict[str, float]] = {}
    # Under Federated Retrain the same forget sets are tracked, though they were never trained on; the
    # control arm tracks them too, though it keeps training on them.
    if withdrawn := (s.forgotten() or S.tracked_forget_sets(s.scenario, s.site, server_round)):
        retain = S.pool_after(s.scenario, s.site, list(withdrawn.values()))
        reports = S.forget_reports(model, s.scenario, s.site, withdrawn, retain, device=s.device)
    seconds = time.perf_counter() - t0  # the site's evaluate compute, for `fedunlearn bench`
    return Message(EvaluateReply(s.site, conf, seconds, reports).to_content(), reply_to=msg)


@app.train("recover")
def recover(msg: Message, context: Context) -> Message:
    """A recovery round of the risk guard: class-weighted training on the retain pool only."""
    s = _Site(context)
    cfg = RecoverConfig.from_record(msg.content[CONFIG])
    s.fail_if_scheduled(cfg.server_round, "train")
    model = s.model_from(msg)
    pool = s.pool()
    if len(pool) == 0:  # the whole site left: nothing to train on, no weight in the average
        return _train_reply(msg, model, TrainMetrics(0, float("nan"), 0.0, 0), TrainInfo(s.site))
    stats = S.local_recover(
        model, s.scenario, s.site, pool, cfg.server_round, cfg.step, device=s.device
    )
    s.audit(
        cfg.server_round,
        f"recover-{cfg.step}",
        stats.trained_rows.get("train", torch.zeros(0, dtype=torch.long)),
    )
    loss = stats.epoch_losses[-1] if stats.epoch_losses else float("nan")
    metrics = TrainMetrics(len(pool), loss, stats.seconds, stats.images)
    return _train_reply(msg, model, metrics, TrainInfo(s.site))


@app.query("verify")
def verify(msg: Message, context: Context) -> Message:
    """The forget sets of the listed requests, measured again on the sent (recovered) model."""
    s = _Site(context)
    query = VerifyQuery.from_record(msg.content[CONFIG])
    withdrawn = s.forgotten()
    forgets = {
        rid: withdrawn[rid] for rid in query.request_ids if rid in withdrawn and len(withdrawn[rid])
    }
    reports = {}
    if forgets:
        retain = S.pool_after(s.scenario, s.site, list(withdrawn.values()))
        reports = S.forget_reports(
            s.model_from(msg), s.scenario, s.site, forgets, retain, device=s.device
        )
    return Message(
        RecordDict({SITE_RECORD: VerifyReply(s.site, reports).to_record()}), reply_to=msg
    )
