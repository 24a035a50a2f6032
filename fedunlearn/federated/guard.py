"""The server's clinical-risk guard on every erasure (``deletion.guard``).

After an erasure round's model is formed (the adopted unlearned model, or the
aggregate under ``integration: aggregate``), :meth:`RiskGuard.review` judges
it against the *reference*, the global model that entered the round, on the
server's validation split (or the confusion counts pooled over the sites'
local test shards, themselves drawn from the validation split); the test split
is never read. Within tolerance, the guard passes and nothing changes: the run
is the unguarded run bit for bit. When it trips, the actions of
``deletion.guard.actions`` are tried in order, each from the best model so far:

- ``retry``: the requesting sites redo their pass from the reference with each
  ``deletion.guard.retry`` setting (``train.unlearn`` with ``guard-retry``);
- ``recover``: up to ``max_rounds`` recovery rounds, every site training on its
  retain pool only (``train.recover``), averaged by examples, until the metric
  is back within tolerance; then the requesting sites verify their forget sets
  on the recovered model (``query.verify``): a forget-set MIA efficacy fallen
  by more than ``relearn_margin`` below its value after the pass means the
  recovery re-learnt the forget set, and the recovered model is dropped;
- ``escalate``: the global model is reset (the ``retrain`` policy for that
  request) and training continues from scratch on the retain data.

The erasure is never undone: the withdrawn rows stay out of every pool. All of
it happens inside the erasure round, before its checkpoint, so a run killed
mid-recovery resumes from the previous round's checkpoint and redoes the round
with the same seeds. Each decision goes to the server ledger (``guard_*``
columns), ``events.jsonl`` (``guard-tripped``, ``guard-retry``,
``guard-recovery-round``, ``guard-decision``), the metrics table (phase
``guard``, site ``global``; per-site work under ``guard-retry`` and
``recover``; forget-set checks under ``guard-verify``) and the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from fedunlearn.engine import resolve_device
from fedunlearn.engine.device import prepare_model
from fedunlearn.evaluation import EvalSet, predict_sets, split_metrics
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.policy import fresh_global_arrays
from fedunlearn.federated.protocol import (
    ARRAYS,
    CONFIG,
    EVALUATE,
    INFO,
    METRICS,
    NUM_EXAMPLES,
    RECOVER,
    SERVER_ROUND,
    SITE_RECORD,
    UNLEARN,
    VERIFY,
    EvaluateReply,
    RecoverConfig,
    TrainMetrics,
    UnlearnInfo,
    VerifyQuery,
    VerifyReply,
    with_retry,
)
from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.site import scenario_dataset
from fedunlearn.federated.transport import load_arrays
from fedunlearn.metrics import RiskCosts, clinical_metrics, pool
from fedunlearn.models import build_model

STATUS_OF_ACTION = {"retry": "retried", "recover": "recovered", "escalate": "escalated"}


@dataclass
class _Attempt:
    """The guard's best model so far in one erasure round, and what it has spent."""

    arrays: ArrayRecord
    value: float
    mia: dict[int, float]  # request id -> forget-set MIA efficacy right after the adopted pass
    images: int = 0
    rounds: int = 0
    after_recovery: float | None = None
    notes: list[str] = field(default_factory=list)


class RiskGuard:
    """Judges every erasure round's model and acts when it is clinically worse than the reference."""

    def __init__(
        self, plan: FederationPlan, recorder: RunRecorder, reset_optimiser: Callable[[], None]
    ) -> None:
        self.plan, self.recorder, self.reset_optimiser = plan, recorder, reset_optimiser
        self.scenario = plan.scenario
        self.g = self.scenario.deletion.guard
        e = self.scenario.evaluation
        self.costs = RiskCosts(e.c_fp, e.c_fn)
        self.device = resolve_device(self.scenario.device)
        self.model = prepare_model(build_model(self.scenario.model, seed=0), self.device)
        val = scenario_dataset(self.scenario).split("val")
        self.val = EvalSet(val.images, val.labels)

    # ------------------------------------------------------------------ measuring
    def measure(self, arrays: ArrayRecord, grid: Grid, server_round: int) -> float:
        """The guarded metric of ``arrays`` on the guard's data (validation, never test)."""
        if self.g.data == "server-val":
            load_arrays(self.model, arrays)
            preds = predict_sets(self.model, {"val": self.val}, device=self.device)["val"]
            return float(split_metrics(preds, self.costs)[self.g.metric])
        config = ConfigRecord({SERVER_ROUND: server_round})
        messages = [
            Message(RecordDict({ARRAYS: arrays, CONFIG: config}), node, EVALUATE)
            for node in self.plan.node_of.values()
        ]
        replies = [r for r in grid.send_and_receive(messages) if not r.has_error()]
        if not replies:
            return float("nan")
        pooled = pool([EvaluateReply.from_content(r.content).confusion for r in replies])
        return float(clinical_metrics(pooled, costs=self.costs)[self.g.metric])

    # ------------------------------------------------------------------ the review
    def review(
        self,
        server_round: int,
        grid: Grid,
        reference: ArrayRecord,
        arrays: ArrayRecord,
        passes: Sequence[UnlearnInfo],
    ) -> ArrayRecord:
        """The model the erasure round ends with: ``arrays`` when within tolerance, else the actions' result."""
        g = self.g
        rids = sorted(r for info in passes for r in info.request_ids)
        ref = self.measure(reference, grid, server_round)
        value = self.measure(arrays, grid, server_round)
        attempt = _Attempt(arrays, value, _mia_after(passes))
        status = "passed"
        if not g.within(ref, value):
            self.recorder.event(
                "guard-tripped",
                server_round,
                requests=rids,
                metric=g.metric,
                reference=ref,
                after_pass=value,
                tolerance=g.tolerance,
                actions=list(g.actions),
            )
            self.recorder.progress(
                f"round {server_round}: guard tripped: {g.metric} {ref:.3f} -> {value:.3f} "
                f"(tolerance {g.tolerance:g}); trying {', '.join(g.actions)}"
            )
            status = self._act(server_round, grid, reference, ref, attempt, passes)
        self._decide(server_round, rids, status, ref, value, attempt)
        return attempt.arrays

    def _act(
        self,
        server_round: int,
        grid: Grid,
        reference: ArrayRecord,
        ref: float,
        attempt: _Attempt,
        passes: Sequence[UnlearnInfo],
    ) -> str:
        """Try the actions in order; the status of the first that brings the metric back, else ``failed``."""
        for action in self.g.actions:
            if action == "retry":
                ok = self._retry(server_round, grid, reference, ref, attempt, passes)
            elif action == "recover":
                ok = self._recover(server_round, grid, ref, attempt, passes)
            else:
                ok = self._escalate(server_round, grid, attempt)
            if ok:
                return STATUS_OF_ACTION[action]
        return "failed"

    # ------------------------------------------------------------------ actions
    def _retry(
        self,
        server_round: int,
        grid: Grid,
        reference: ArrayRecord,
        ref: float,
        attempt: _Attempt,
        passes: Sequence[UnlearnInfo],
    ) -> bool:
        """Each safer setting in turn: the requesting sites redo their pass from the reference; a retried
        model better than the best so far replaces it."""
        for index, setting in enumerate(self.g.retry):
            retried = self._retry_once(server_round, grid, reference, index, passes)
            if retried is None:
                attempt.notes.append(f"retry {index}: a site failed its retried pass")
                continue
            arrays, infos = retried
            value = self.measure(arrays, grid, server_round)
            attempt.images += sum(info.images for info in infos)
            self.recorder.event(
                "guard-retry",
                server_round,
                retry=index,
                method=setting.method or self.scenario.deletion.method,
                value=value,
            )
            if self.g.worsening(attempt.value, value) < 0:
                attempt.arrays, attempt.value = arrays, value
                attempt.mia = _mia_after(infos)
            if self.g.within(ref, value):
                return True
        return False

    def _retry_once(
        self,
        server_round: int,
        grid: Grid,
        reference: ArrayRecord,
        index: int,
        passes: Sequence[UnlearnInfo],
    ) -> tuple[ArrayRecord, list[UnlearnInfo]] | None:
        """One retried pass of every requesting site; their models averaged (as ``adopt`` does), or None."""
        config = ConfigRecord({SERVER_ROUND: server_round})
        messages = [
            Message(
                RecordDict(
                    {ARRAYS: reference, CONFIG: with_retry(config, info.request_ids, index)}
                ),
                self.plan.node_of[info.site],
                UNLEARN,
            )
            for info in passes
        ]
        replies = _in_order(self.plan, grid.send_and_receive(messages))
        for r in replies:
            if r.has_error():
                self.recorder.event(
                    "site-failure",
                    server_round,
                    site=self.plan.name(self.plan.site_of(r.metadata.src_node_id)),
                    phase="guard-retry",
                    reason=str(r.error.reason).strip().splitlines()[-1][:500],
                )
        if any(r.has_error() for r in replies) or len(replies) < len(passes):
            return None
        infos = [UnlearnInfo.from_record(r.content[INFO]) for r in replies]
        for info in infos:
            self.recorder.metrics(
                server_round,
                self.plan.name(info.site),
                "guard-retry",
                {"retry": float(index), "images": float(info.images), "seconds": info.seconds}
                | {k.replace("-", "_"): v for k, v in info.after.items()},
                request=",".join(f"r{r}" for r in info.request_ids),
            )
        contents = [r.content for r in replies]
        if sum(float(c[METRICS][NUM_EXAMPLES]) for c in contents) == 0:
            return None
        return aggregate_arrayrecords(contents, NUM_EXAMPLES), infos

    def _recover(
        self,
        server_round: int,
        grid: Grid,
        ref: float,
        attempt: _Attempt,
        passes: Sequence[UnlearnInfo],
    ) -> bool:
        """Recovery rounds on retain data until the metric is back; then the forget sets are verified."""
        arrays, value, work = attempt.arrays, attempt.value, {}
        for step in range(1, self.g.recover.max_rounds + 1):
            messages = [
                Message(
                    RecordDict(
                        {ARRAYS: arrays, CONFIG: RecoverConfig(server_round, step).to_record()}
                    ),
                    node,
                    RECOVER,
                )
                for node in self.plan.node_of.values()
            ]
            replies = _in_order(self.plan, grid.send_and_receive(messages))
            good = [
                r
                for r in replies
                if not r.has_error() and float(r.content[METRICS][NUM_EXAMPLES]) > 0
            ]
            if not good:
                attempt.notes.append(f"no site answered recovery round {step}")
                break
            arrays = aggregate_arrayrecords([r.content for r in good], NUM_EXAMPLES)
            value = self.measure(arrays, grid, server_round)
            attempt.rounds = step
            for r in good:
                m = TrainMetrics.from_record(r.content[METRICS])
                name = self.plan.name(self.plan.site_of(r.metadata.src_node_id))
                tot = work.setdefault(name, {"images": 0.0, "seconds": 0.0, "rounds": 0.0})
                tot["images"] += m.images
                tot["seconds"] += m.seconds
                tot["rounds"] += 1
                attempt.images += int(m.images)
            self.recorder.metrics(
                server_round, "global", "guard", {f"recovery_{step}_{self.g.metric}": value}
            )
            self.recorder.event(
                "guard-recovery-round", server_round, step=step, sites=len(good), value=value
            )
            if self.g.within(ref, value):
                break
        for name, tot in work.items():
            self.recorder.metrics(server_round, name, "recover", tot)
        attempt.after_recovery = value
        if attempt.rounds == 0 or self._relearned(server_round, grid, arrays, attempt, passes):
            return False
        attempt.arrays, attempt.value = arrays, value
        return self.g.within(ref, value)

    def _relearned(
        self,
        server_round: int,
        grid: Grid,
        arrays: ArrayRecord,
        attempt: _Attempt,
        passes: Sequence[UnlearnInfo],
    ) -> bool:
        """The requesting sites measure their forget sets on the recovered model: did it re-learn them?"""
        messages = [
            Message(
                RecordDict(
                    {
                        ARRAYS: arrays,
                        CONFIG: VerifyQuery(server_round, info.request_ids).to_record(),
                    }
                ),
                self.plan.node_of[info.site],
                VERIFY,
            )
            for info in passes
        ]
        relearned = False
        for reply in _in_order(self.plan, grid.send_and_receive(messages)):
            if reply.has_error():
                attempt.notes.append("a site could not verify its forget set after recovery")
                relearned = True
                continue
            answer = VerifyReply.from_record(reply.content[SITE_RECORD])
            for rid, values in answer.forget.items():
                self.recorder.metrics(
                    server_round,
                    self.plan.name(answer.site),
                    "guard-verify",
                    dict(values),
                    request=f"r{rid}",
                )
                before = attempt.mia.get(rid)
                if before is not None and before - values["mia_efficacy"] > self.g.relearn_margin:
                    attempt.notes.append(
                        f"r{rid}: MIA efficacy {before:.3f} -> {values['mia_efficacy']:.3f} after recovery "
                        f"(more than relearn_margin {self.g.relearn_margin:g} lower: the forget set was re-learnt)"
                    )
                    relearned = True
        return relearned

    def _escalate(self, server_round: int, grid: Grid, attempt: _Attempt) -> bool:
        """Reset the global model (the ``retrain`` policy for the request); training restarts from it."""
        attempt.arrays = fresh_global_arrays(self.scenario, server_round)
        attempt.value = self.measure(attempt.arrays, grid, server_round)
        self.reset_optimiser()
        return True

    # ------------------------------------------------------------------ accounting
    def _decide(
        self,
        server_round: int,
        rids: Sequence[int],
        status: str,
        ref: float,
        after_pass: float,
        attempt: _Attempt,
    ) -> None:
        g = self.g
        decision = {
            "status": status,
            "metric": g.metric,
            "reference": ref,
            "after_pass": after_pass,
            "after_recovery": attempt.after_recovery,
            "final": attempt.value,
            "rounds": attempt.rounds,
            "images": attempt.images,
        }
        for rid in rids:
            self.plan.ledger.guarded(rid, decision)
        numbers = {
            "reference": ref,
            "after_pass": after_pass,
            "final": attempt.value,
            "tripped": float(status != "passed"),
            "recovery_rounds": float(attempt.rounds),
            "images": float(attempt.images),
        }
        if attempt.after_recovery is not None:
            numbers["after_recovery"] = attempt.after_recovery
        self.recorder.metrics(
            server_round, "global", "guard", numbers, request=",".join(f"r{r}" for r in rids)
        )
        self.recorder.event(
            "guard-decision",
            server_round,
            requests=list(rids),
            notes=attempt.notes,
            **decision,
        )
        self.recorder.progress(
            f"round {server_round}: guard {status}: {g.metric} reference {ref:.3f}, after the pass "
            f"{after_pass:.3f}, adopted {attempt.value:.3f}"
            + (f"; {attempt.rounds} recovery round(s)" if attempt.rounds else "")
            + (f", {attempt.images} extra images" if attempt.images else "")
        )


def _mia_after(passes: Sequence[UnlearnInfo]) -> dict[int, float]:
    """Request id -> forget-set MIA efficacy right after its pass (the baseline of the re-learning check)."""
    return {
        r: float(info.after["mia_efficacy"])
        for info in passes
        for r in info.request_ids
        if "mia_efficacy" in info.after
    }


def _in_order(plan: FederationPlan, replies) -> list[Message]:
    """Replies in site order (floating-point sums are not associative: a run must be reproducible)."""

    def key(msg: Message) -> int:
        try:
            return plan.site_of(msg.metadata.src_node_id)
        except KeyError:
            return len(plan.node_of)

    return sorted(replies, key=key)
