"""Deletion-aware strategies: any Flower strategy plus deletion rounds and per-site risk.

:class:`DeletionAware` is a mixin over a ``flwr.serverapp.strategy`` class. It
customises the hooks, never the loop:

- ``configure_train``: seeded site sampling, and the requesting sites get a
  ``train.unlearn`` message carrying their request ids (under ``adopt`` they
  are the only sites that round);
- ``aggregate_train``: records per-site training and unlearning reports; under
  ``adopt`` the unlearned model(s) become the global model, under
  ``aggregate`` they are averaged with the other updates by the strategy;
- ``aggregate_evaluate``: pools the sites' confusion counts by summing them and
  records per-site and pooled metrics and the sites' forget-set metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAdam, FedAvg, FedMedian, FedProx, FedYogi
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords, aggregate_metricrecords

from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.scenario import Scenario
from fedunlearn.federated.site import mix_seed
from fedunlearn.metrics import Confusion, RiskCosts, clinical_metrics, pool

_BASES = {"fedavg": FedAvg, "fedprox": FedProx, "fedadam": FedAdam, "fedyogi": FedYogi, "fedmedian": FedMedian}


@dataclass
class FederationPlan:
    """Who is who, and what happens when: sites <-> node ids, sampling, pending deletions."""

    scenario: Scenario
    node_of: dict[int, int]
    pending: dict[int, list[int]] = field(default_factory=dict)  # site -> request ids not yet applied

    def site_of(self, node_id: int) -> int:
        for site, node in self.node_of.items():
            if node == node_id:
                return site
        raise KeyError(node_id)

    def name(self, site: int) -> str:
        return self.scenario.sites.site_name(site)

    def sample(self, server_round: int) -> list[int]:
        """Sites training this round: a seeded draw, independent of random node ids."""
        t, n = self.scenario.training, self.scenario.sites.count
        k = min(n, max(int(n * t.fraction_train), t.min_sites))
        rng = np.random.default_rng(mix_seed(self.scenario.seed, server_round, 17))
        return sorted(int(s) for s in rng.choice(n, size=k, replace=False))

    def deletions_at(self, server_round: int) -> dict[int, list[int]]:
        """Requests due this round (and earlier ones still pending), by site; none under Retrain."""
        if self.scenario.retrain:
            return {}
        for rid, req in enumerate(self.scenario.deletion.requests):
            if req.round == server_round:
                self.pending.setdefault(req.site, []).append(rid)
        return {site: list(rids) for site, rids in self.pending.items() if rids}


class DeletionAware:
    """Mixin: put it before a Flower strategy class (see :func:`make_strategy`)."""

    plan: FederationPlan
    recorder: RunRecorder

    def bind(self, plan: FederationPlan, recorder: RunRecorder) -> None:
        self.plan, self.recorder = plan, recorder
        self.round_seconds: dict[str, float] = {}
        self._t0 = 0.0

    # ------------------------------------------------------------------ train
    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._t0 = time.perf_counter()
        base = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        if not base:
            return []
        content = base[0].content
        deleting = self.plan.deletions_at(server_round)
        integration = self.plan.scenario.deletion.integration
        trainers = [] if (deleting and integration == "adopt") else [s for s in self.plan.sample(server_round) if s not in deleting]
        messages = [Message(content, self.plan.node_of[s], "train") for s in trainers]
        cfg_key = getattr(self, "configrecord_key", "config")
        arr_key = getattr(self, "arrayrecord_key", "arrays")
        for site, rids in deleting.items():
            cfg = ConfigRecord(dict(content[cfg_key]))
            cfg["request-ids"] = rids
            messages.append(Message(RecordDict({arr_key: arrays, cfg_key: cfg}), self.plan.node_of[site], "train.unlearn"))
            self.recorder.event("deletion-sent", server_round, site=self.plan.name(site), requests=rids,
                                method=self.plan.scenario.deletion.method, integration=integration)
        return messages

    def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> tuple[ArrayRecord | None, MetricRecord | None]:
        replies = list(replies)
        unlearned: list[Message] = []
        for msg in replies:
            if msg.has_error():
                site = self._site_name(msg)
                self.recorder.event("site-failure", server_round, site=site, phase="train", reason=msg.error.reason)
                continue
            info = msg.content["info"]
            site_name = self.plan.name(int(info["site"]))
            m = msg.content["metrics"]
            self.recorder.metrics(server_round, site_name, "train",
                                  {"num_examples": m["num-examples"], "loss": m["train-loss"], "seconds": m["seconds"],
                                   "images": m["images"]})
            if info["kind"] == "unlearn":
                unlearned.append(msg)
                self._record_unlearn(server_round, int(info["site"]), info)
        self.round_seconds["train"] = time.perf_counter() - self._t0
        if unlearned and self.plan.scenario.deletion.integration == "adopt":
            contents = [m.content for m in unlearned]
            return aggregate_arrayrecords(contents, "num-examples"), aggregate_metricrecords(contents, "num-examples")
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]

    def _record_unlearn(self, server_round: int, site: int, info: ConfigRecord) -> None:
        rids = [int(r) for r in info["request-ids"]]
        for rid in rids:
            if rid in self.plan.pending.get(site, []):
                self.plan.pending[site].remove(rid)
        name = self.plan.name(site)
        req = ",".join(f"r{r}" for r in rids)
        values = {k: float(v) for k, v in info.items() if isinstance(v, (int, float)) and k not in ("site",)}
        self.recorder.metrics(server_round, name, "unlearn", {
            "forget_count": values["forget-count"], "retain_count": values["retain-count"],
            "seconds": values["unlearn-seconds"], "images": values["unlearn-images"],
            **{k.replace("after.", "").replace("-", "_"): v for k, v in values.items() if k.startswith("after.") and k != "after.forget_count"},
            **{k.replace(".", "_").replace("-", "_"): v for k, v in values.items() if k.startswith("before.") and k != "before.forget_count"},
        }, request=req)
        self.recorder.event("deletion-applied", server_round, site=name, requests=rids, method=str(info["method"]),
                            forget_count=int(values["forget-count"]), ubac=values.get("after.ubac"),
                            mia_efficacy=values.get("after.mia_efficacy"), seconds=values["unlearn-seconds"])

    # --------------------------------------------------------------- evaluate
    def configure_evaluate(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        self._t_eval = time.perf_counter()
        base = list(super().configure_evaluate(server_round, arrays, config, grid))  # type: ignore[misc]
        if not base:
            return []
        # Every site evaluates every round, so per-site risk exists for all of them.
        return [Message(base[0].content, node, "evaluate") for node in self.plan.node_of.values()]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> MetricRecord | None:
        costs = self._costs()
        confusions: list[Confusion] = []
        for msg in replies:
            if msg.has_error():
                self.recorder.event("site-failure", server_round, site=self._site_name(msg), phase="evaluate",
                                    reason=msg.error.reason)
                continue
            m = msg.content["metrics"]
            conf = Confusion.from_mapping(m)
            confusions.append(conf)
            forget = msg.content["forget"]
            site_name = self.plan.name(int(forget["site"]))
            self.recorder.metrics(server_round, site_name, "local-test", clinical_metrics(conf, costs=costs))
            by_request: dict[str, dict[str, float]] = {}
            for key, value in forget.items():
                if key == "site":
                    continue
                rid, metric = key.split(".", 1)
                by_request.setdefault(rid, {})[metric] = float(value)
            for rid, values in by_request.items():
                self.recorder.metrics(server_round, site_name, "forget", values, request=rid)
        self.round_seconds["evaluate"] = time.perf_counter() - self._t_eval
        if not confusions:
            return None
        pooled = pool(confusions)
        self.recorder.metrics(server_round, "pooled", "local-test", clinical_metrics(pooled, costs=costs))
        return MetricRecord({"num-examples": pooled.n, **pooled.as_dict()})

    # ---------------------------------------------------------------- helpers
    def _costs(self) -> RiskCosts:
        e = self.plan.scenario.evaluation
        return RiskCosts(e.c_fp, e.c_fn)

    def _site_name(self, msg: Message) -> str:
        try:
            return self.plan.name(self.plan.site_of(msg.metadata.src_node_id))
        except KeyError:
            return f"node-{msg.metadata.src_node_id}"


def make_strategy(scenario: Scenario, plan: FederationPlan, recorder: RunRecorder):
    """The scenario's strategy class, made deletion-aware, bound to ``plan`` and ``recorder``."""
    t = scenario.training
    base = _BASES[t.strategy]
    cls = type(f"DeletionAware{base.__name__}", (DeletionAware, base), {})
    n = scenario.sites.count
    kwargs = dict(fraction_train=1.0, fraction_evaluate=1.0, min_train_nodes=1, min_evaluate_nodes=1, min_available_nodes=n)
    if t.strategy == "fedprox":
        kwargs["proximal_mu"] = t.proximal_mu
    if t.strategy in ("fedadam", "fedyogi"):
        kwargs["eta"] = t.server_lr
        kwargs["eta_l"] = t.lr
    strategy = cls(**kwargs)
    strategy.bind(plan, recorder)
    return strategy

