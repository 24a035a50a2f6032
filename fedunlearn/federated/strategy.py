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
  records per-site and pooled metrics and the sites' forget-set metrics; the
  first forget-set report after a request is applied verifies it in the ledger;
  the run stops (resumable) when fewer than ``failures.min_sites`` sites answer;
- with ``deletion.guard`` on, an erasure round's model goes through the risk
  guard (:class:`~fedunlearn.federated.guard.RiskGuard`) before it is adopted.

A site that sends no reply before ``deployment.round_timeout_s`` (its node
died mid-round) is handled like a failed one: a ``site-failure`` event, its
requests left pending.

Every request goes through the server's :class:`~fedunlearn.federated.ledger.ServerLedger`
(``pending -> applied -> verified``). A failed unlearning pass leaves it pending:
the policy sends it again in the next round it acts, until the site answers.

``round_offset`` shifts Flower's round numbers (1, 2, ...) when a run resumes
from a checkpoint, so every hook, and Flower's own ``server-round`` config,
sees the run's true round.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords, aggregate_metricrecords

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.guard import RiskGuard
from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.policy import fresh_global_arrays
from fedunlearn.federated.protocol import (
    ARRAYS,
    EVALUATE,
    INFO,
    METRICS,
    NUM_EXAMPLES,
    TRAIN,
    UNLEARN,
    EvaluateReply,
    TrainInfo,
    TrainMetrics,
    UnlearnInfo,
    is_unlearn_reply,
    with_requests,
    with_withdrawals,
)
from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.scenario import Scenario
from fedunlearn.federated.strategies import get_strategy
from fedunlearn.metrics import Confusion, RiskCosts, clinical_metrics, pool


class FederationStopped(FedunlearnError):
    """Too few sites answered a round (``failures.min_sites``): the run stops, incomplete and resumable."""


class DeletionAware:
    """Mixin: put it before a Flower strategy class (see :func:`make_strategy`)."""

    plan: FederationPlan
    recorder: RunRecorder
    round_offset: int

    def bind(self, plan: FederationPlan, recorder: RunRecorder) -> None:
        self.plan, self.recorder = plan, recorder
        self.round_seconds: dict[str, float] = {}
        self.round_offset = 0
        self._t0 = 0.0
        self._unlearning: dict[
            int, list[int]
        ] = {}  # site -> request ids sent for unlearning this round
        scenario = plan.scenario
        self.guard = (
            RiskGuard(plan, recorder, self._reset_optimiser)
            if scenario.deletion.guard.enabled and not (scenario.control or scenario.retrain)
            else None
        )
        self._grid: Grid | None = None
        self._reference: ArrayRecord | None = None

    @property
    def ledger(self) -> ServerLedger:
        return self.plan.ledger

    # ------------------------------------------------------------------ train
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        self._t0 = time.perf_counter()
        self._unlearning = {}
        arrays = self._reset_if_due(server_round, arrays)
        # the risk guard's reference: the model entering the round
        self._grid, self._reference = grid, arrays
        base = list(super().configure_train(server_round, arrays, config, grid))  # type: ignore[misc]
        if not base:
            return []
        content = base[0].content
        deleting = self.plan.deletions_at(server_round)
        withdrawing = self.plan.withdrawals_at(server_round)
        integration = self.plan.scenario.deletion.integration
        trainers = (
            []
            if (deleting and integration == "adopt")
            else [s for s in self.plan.sample(server_round) if s not in deleting]
        )
        cfg_key = getattr(self, "configrecord_key", "config")
        arr_key = getattr(self, "arrayrecord_key", "arrays")
        messages = []
        for s in trainers:
            if withdrawing.get(
                s
            ):  # drop these requests' rows before training (their unlearning may come later)
                cfg = with_withdrawals(content[cfg_key], withdrawing[s])
                messages.append(
                    Message(
                        RecordDict({arr_key: content[arr_key], cfg_key: cfg}),
                        self.plan.node_of[s],
                        TRAIN,
                    )
                )
            else:
                messages.append(Message(content, self.plan.node_of[s], TRAIN))
        self._unlearning = deleting
        self._sent = {self.plan.node_of[s] for s in [*trainers, *deleting]}
        for site, rids in deleting.items():
            cfg = with_requests(content[cfg_key], rids)
            messages.append(
                Message(
                    RecordDict({arr_key: arrays, cfg_key: cfg}), self.plan.node_of[site], UNLEARN
                )
            )
            for rid in rids:
                self.ledger.attempted(rid)
            self.recorder.event(
                "deletion-sent",
                server_round,
                site=self.plan.name(site),
                requests=rids,
                method=self.plan.scenario.deletion.method,
                integration=integration,
            )
        return messages

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        server_round += self.round_offset
        # Replies arrive in whatever order the actors finish; floating-point sums are not associative,
        # so aggregate in site order to make a run reproducible bit for bit.
        replies = self._in_site_order(replies)
        for site in self._silent(replies):
            self._train_failure(server_round, site, self._no_reply())
        unlearned: list[Message] = []
        passes: list[UnlearnInfo] = []
        for msg in replies:
            if msg.has_error():
                self._train_failure(server_round, self._site_of(msg), _gist(msg.error.reason))
                continue
            if is_unlearn_reply(msg.content[INFO]):  # recorded once, under phase "unlearn"
                unlearned.append(msg)
                passes.append(UnlearnInfo.from_record(msg.content[INFO]))
                self._record_unlearn(server_round, passes[-1])
                continue
            info = TrainInfo.from_record(msg.content[INFO])
            site_name = self.plan.name(info.site)
            m = TrainMetrics.from_record(msg.content[METRICS])
            self.recorder.metrics(
                server_round,
                site_name,
                "train",
                {
                    "num_examples": m.num_examples,
                    "loss": m.loss,
                    "seconds": m.seconds,
                    "images": m.images,
                },
            )
            if info.withdrawn_ids:
                withdrawn = list(info.withdrawn_ids)
                self.plan.withdrawn(info.site, withdrawn)
                for rid, count in zip(withdrawn, info.withdrawn_counts):
                    self.ledger.counted(rid, count)
                self.recorder.event(
                    "withdrawal-applied", server_round, site=site_name, requests=withdrawn
                )
        self.round_seconds["train"] = time.perf_counter() - self._t0
        arrays, metrics = self._aggregate(server_round, replies, unlearned)
        passes = [p for p in passes if p.method != "none"]  # "none": no pass ran (nothing to judge)
        if self.guard is not None and arrays is not None and passes and self._grid is not None:
            t0 = time.perf_counter()
            arrays = self.guard.review(
                server_round, self._grid, self._reference or arrays, arrays, passes
            )
            self.round_seconds["guard"] = time.perf_counter() - t0
        return arrays, metrics

    def _aggregate(
        self, server_round: int, replies: list[Message], unlearned: list[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """The round's model: the unlearned model(s) under ``adopt``, else the strategy's aggregate."""
        if unlearned and self.plan.scenario.deletion.integration == "adopt":
            contents = [m.content for m in unlearned]
            if (
                sum(float(c[METRICS][NUM_EXAMPLES]) for c in contents) == 0
            ):  # only sites with nothing left
                contents = [_reweighted(c, 1) for c in contents]
            return aggregate_arrayrecords(contents, NUM_EXAMPLES), aggregate_metricrecords(
                contents, NUM_EXAMPLES
            )
        # A site with an empty pool (it withdrew all its rows) sends its weights back unchanged with
        # num-examples 0: it carries no weight, and a round of such replies only keeps the global model.
        replies = [
            m for m in replies if m.has_error() or float(m.content[METRICS][NUM_EXAMPLES]) > 0
        ]
        if not replies:
            return None, None
        return super().aggregate_train(server_round, replies)  # type: ignore[misc]

    def _reset_if_due(self, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        """The ``retrain`` policy, in its rounds: restart from a fresh global model (else ``arrays``)."""
        reset = self.plan.resets_at(server_round)
        if not reset:
            return arrays
        self._reset_optimiser()
        self.recorder.event("retrain-reset", server_round, requests=reset)
        for rid in reset:
            self.ledger.applied(rid, server_round, "retrain-reset", {})
        return fresh_global_arrays(self.plan.scenario, server_round)

    def _reset_optimiser(self) -> None:
        """FedAdam/FedYogi: the server optimiser's moments restart with a reset global model."""
        if hasattr(self, "m_t"):
            self.m_t = self.v_t = None

    def _train_failure(self, server_round: int, site: int | None, reason: str) -> None:
        """A site failed its train or unlearn message: log it; its requests stay pending, to be retried."""
        name = self.plan.name(site) if site is not None else "unknown node"
        rids = self._unlearning.get(site, []) if site is not None else []
        self.recorder.event(
            "site-failure",
            server_round,
            site=name,
            phase="unlearn" if rids else "train",
            reason=reason,
        )
        if rids:
            for rid in rids:
                self.ledger.failed(rid, reason)
            self.recorder.event(
                "deletion-failed",
                server_round,
                site=name,
                requests=rids,
                retry="the requests stay pending and are sent again in the next round the policy "
                "acts; the site keeps their rows out of training",
            )

    def _site_of(self, msg: Message) -> int | None:
        try:
            return self.plan.site_of(msg.metadata.src_node_id)
        except KeyError:
            return None

    def _silent(self, replies: Iterable[Message]) -> list[int]:
        """The sites sent a message this round that did not reply at all (timed out), in site order."""
        answered = {m.metadata.src_node_id for m in replies}
        nodes = getattr(self, "_sent", set()) - answered
        return sorted(self.plan.site_of(n) for n in nodes)

    def _evaluate_failure(self, server_round: int, site: str, reason: str) -> None:
        self.recorder.event(
            "site-failure", server_round, site=site, phase="evaluate", reason=reason
        )

    def _no_reply(self) -> str:
        return (
            f"no reply within {self.plan.scenario.deployment.round_timeout_s:g}s "
            "(deployment.round_timeout_s): the node is gone or too slow"
        )

    def _record_unlearn(self, server_round: int, info: UnlearnInfo) -> None:
        rids = list(info.request_ids)
        self.plan.unlearned(info.site, rids)
        name = self.plan.name(info.site)
        req = ",".join(f"r{r}" for r in rids)
        after = {k.replace("-", "_"): v for k, v in info.after.items()}
        before = {
            f"before.{k}".replace(".", "_").replace("-", "_"): v
            for k, v in info.before.items()
            if k != "forget_count"
        }
        self.recorder.metrics(
            server_round,
            name,
            "unlearn",
            {
                "forget_count": float(info.forget_count),
                "retain_count": float(info.retain_count),
                "seconds": info.seconds,
                "images": float(info.images),
                **{k: v for k, v in after.items() if k != "forget_count"},
                **before,
            },
            request=req,
        )
        for rid, count in zip(rids, info.request_counts):
            self.ledger.applied(rid, server_round, info.method, after, sample_count=count)
        self.recorder.event(
            "deletion-applied",
            server_round,
            site=name,
            requests=rids,
            method=info.method,
            forget_count=info.forget_count,
            ubac=info.after.get("ubac"),
            mia_efficacy=info.after.get("mia_efficacy"),
            seconds=info.seconds,
        )

    # --------------------------------------------------------------- evaluate
    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        server_round += self.round_offset
        self._t_eval = time.perf_counter()
        base = list(super().configure_evaluate(server_round, arrays, config, grid))  # type: ignore[misc]
        if not base:
            return []
        # Every site evaluates every round, so per-site risk exists for all of them.
        self._sent = set(self.plan.node_of.values())
        return [Message(base[0].content, node, EVALUATE) for node in self.plan.node_of.values()]

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        server_round += self.round_offset
        costs = self._costs()
        confusions: list[Confusion] = []
        replies = self._in_site_order(replies)
        for site in self._silent(replies):
            self._evaluate_failure(server_round, self.plan.name(site), self._no_reply())
        for msg in replies:
            if msg.has_error():
                self._evaluate_failure(server_round, self._site_name(msg), _gist(msg.error.reason))
                continue
            reply = EvaluateReply.from_content(msg.content)
            confusions.append(reply.confusion)
            site_name = self.plan.name(reply.site)
            self.recorder.metrics(
                server_round,
                site_name,
                "local-test",
                clinical_metrics(reply.confusion, costs=costs),
            )
            self.recorder.metrics(server_round, site_name, "evaluate", {"seconds": reply.seconds})
            for request_id, values in reply.forget.items():
                values = dict(values)
                self.recorder.metrics(
                    server_round, site_name, "forget", values, request=f"r{request_id}"
                )
                if self.ledger.verified(request_id, server_round, values):
                    self.recorder.event(
                        "deletion-verified",
                        server_round,
                        site=site_name,
                        requests=[request_id],
                        ubac=values.get("ubac"),
                        mia_efficacy=values.get("mia_efficacy"),
                    )
        self.round_seconds["evaluate"] = time.perf_counter() - self._t_eval
        needed = self.plan.scenario.failures.min_sites
        if len(confusions) < needed:
            reason = (
                f"only {len(confusions)} of {self.plan.scenario.sites.count} sites answered round {server_round}, "
                f"fewer than failures.min_sites = {needed}"
            )
            self.recorder.event("run-stopped", server_round, reason=reason)
            raise FederationStopped(reason)
        if not confusions:
            return None
        pooled = pool(confusions)
        self.recorder.metrics(
            server_round, "pooled", "local-test", clinical_metrics(pooled, costs=costs)
        )
        return MetricRecord({NUM_EXAMPLES: pooled.n, **pooled.as_dict()})

    # ---------------------------------------------------------------- helpers
    def _costs(self) -> RiskCosts:
        e = self.plan.scenario.evaluation
        return RiskCosts(e.c_fp, e.c_fn)

    def _in_site_order(self, replies: Iterable[Message]) -> list[Message]:
        def key(msg: Message) -> int:
            try:
                return self.plan.site_of(msg.metadata.src_node_id)
            except KeyError:
                return len(self.plan.node_of)

        return sorted(replies, key=key)

    def _site_name(self, msg: Message) -> str:
        try:
            return self.plan.name(self.plan.site_of(msg.metadata.src_node_id))
        except KeyError:
            return f"node-{msg.metadata.src_node_id}"


def _gist(text: str) -> str:
    """The gist of a failure reason: Flower wraps the site's exception in
    ``Exception ClientAppException occurred. Message: <text>'>``, or sends a traceback."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    if "Message: " in last:
        last = last.split("Message: ", 1)[1].removesuffix("'>")
    return last[:500]


def _reweighted(content: RecordDict, weight: float) -> RecordDict:
    """A copy of a reply's content whose ``num-examples`` is ``weight``."""
    metrics = MetricRecord(dict(content[METRICS]))
    metrics[NUM_EXAMPLES] = weight
    return RecordDict({ARRAYS: content[ARRAYS], METRICS: metrics})


def make_strategy(scenario: Scenario, plan: FederationPlan, recorder: RunRecorder):
    """The scenario's strategy class, made deletion-aware, bound to ``plan`` and ``recorder``."""
    t = scenario.training
    spec = get_strategy(t.strategy)
    cls = type(f"DeletionAware{spec.base.__name__}", (DeletionAware, spec.base), {})
    n = scenario.sites.count
    kwargs = dict(
        fraction_train=1.0,
        fraction_evaluate=1.0,
        min_train_nodes=1,
        min_evaluate_nodes=1,
        min_available_nodes=n,
    )
    strategy = cls(**kwargs, **spec.options(t))
    strategy.bind(plan, recorder)
    return strategy
