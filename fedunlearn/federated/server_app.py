"""The ServerApp: maps sites to nodes, runs the deletion-aware strategy, tracks risk.

It only coordinates: evaluation, recording and plotting are plain functions.
Every round ends with a checkpoint (:mod:`fedunlearn.federated.checkpoint`);
``run_federation(..., resume=True)`` continues from the newest one.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid, ServerApp
from flwr.superlink.grid import InMemoryGrid
from safetensors.torch import save_file

from fedunlearn.engine import resolve_device
from fedunlearn.engine.device import prepare_model
from fedunlearn.errors import FedunlearnError
from fedunlearn.evaluation import EvalSet, operating_point_metrics, predict_sets, split_metrics
from fedunlearn.federated.checkpoint import (
    Checkpoint,
    latest_checkpoint,
    restore_strategy,
    save_checkpoint,
)
from fedunlearn.federated.grid import WatchedGrid
from fedunlearn.federated.ledger import (
    GUARD_STATUSES,
    SERVER_LEDGER,
    STATUSES,
    ServerLedger,
    remove_ledger_files,
)
from fedunlearn.federated.nodes import Claim, check_claims
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.plot import risk_figure
from fedunlearn.federated.protocol import CONFIG, SETUP, SITE_RECORD, SetupQuery, SetupReply
from fedunlearn.federated.recorder import RunRecorder
from fedunlearn.federated.rundir import (
    carried_fields,
    check_resumable,
    mark_complete,
    mark_paused,
    mark_stopped,
    start_run_dir,
)
from fedunlearn.federated.scenario import Scenario, load_scenario
from fedunlearn.federated.site import scenario_dataset
from fedunlearn.federated.strategy import FederationStopped, make_strategy
from fedunlearn.federated.transport import load_arrays, to_arrays
from fedunlearn.io import now_iso
from fedunlearn.metrics import RiskCosts
from fedunlearn.metrics.operating import operating_point_name
from fedunlearn.models import build_model
from fedunlearn.progress import Progress
from fedunlearn.seeding import stream_seed


def wait_for_nodes(
    grid: Grid, n: int, timeout: float, abort: threading.Event | None = None
) -> list[int]:
    """Nodes register asynchronously: wait until ``n`` are connected (or ``abort`` is set: the engine died)."""
    deadline = time.monotonic() + timeout
    while len(nodes := list(grid.get_node_ids())) < n:
        if abort is not None and abort.is_set():
            raise FedunlearnError("the simulation engine stopped before the hospitals connected")
        if time.monotonic() > deadline:
            raise FedunlearnError(
                f"only {len(nodes)} of {n} hospital nodes connected within {timeout:g}s "
                "(deployment.node_wait_s); check that the federation starts one SuperNode per site"
            )
        time.sleep(0.2)
    return nodes


def shares_filesystem(grid: Grid) -> bool:
    """Whether the sites run beside the server (the simulation engine's in-memory grid)."""
    return isinstance(getattr(grid, "inner", grid), InMemoryGrid)


def _setup_replies(
    grid: Grid, scenario: Scenario, run_dir: Path, abort: threading.Event | None
) -> dict[int, SetupReply]:
    """Node id -> its answer to the setup query; one line for a node that failed or did not answer."""
    d = scenario.deployment
    nodes = wait_for_nodes(grid, scenario.sites.count, d.node_wait_s, abort=abort)
    query = SetupQuery(
        json.dumps(scenario.model_dump(mode="json")), str(run_dir), shares_filesystem(grid)
    )
    messages = [Message(RecordDict({CONFIG: query.to_record()}), n, SETUP) for n in nodes]
    answers: dict[int, SetupReply] = {}
    for reply in grid.send_and_receive(messages, timeout=d.setup_timeout_s):
        node = reply.metadata.src_node_id
        if reply.has_error():
            raise FedunlearnError(
                f"hospital node {node} failed its setup: {reply.error.reason.strip()[-300:]}"
            )
        answers[node] = SetupReply.from_record(reply.content[SITE_RECORD])
    if silent := sorted(set(nodes) - set(answers)):
        raise FedunlearnError(
            f"hospital node(s) {', '.join(map(str, silent))} gave no setup answer within "
            f"{d.setup_timeout_s:g}s (deployment.setup_timeout_s); check their SuperNodes' logs "
            "or raise the timeout"
        )
    claims = [
        Claim(node, a.site, a.node_config, a.problem, a.data_md5) for node, a in answers.items()
    ]
    check_claims(claims, scenario, scenario_dataset(scenario).provenance.md5 or "")
    return answers


def setup_sites(
    grid: Grid,
    scenario: Scenario,
    run_dir: Path,
    recorder: RunRecorder,
    ledger: ServerLedger,
    record: bool = True,
    abort: threading.Event | None = None,
) -> dict[int, int]:
    """Send the scenario to every node; each answers with the site its node config claims. Returns site ->
    node id, once every claim is checked (:func:`fedunlearn.federated.nodes.check_claims`).

    ``record``: log the sites' sizes (round 0); a resumed run has them already.
    Under Federated Retrain the ledger gets the forget sets the sites removed
    before round 1 (applied in round 0).
    """
    node_of: dict[int, int] = {}
    try:
        answers = _setup_replies(grid, scenario, run_dir, abort)
    except FedunlearnError as exc:  # the run directory says why, for whoever follows the run
        recorder.flush()
        mark_stopped(run_dir, scenario, str(exc))
        raise
    for node, info in sorted(answers.items(), key=lambda kv: kv[1].site):
        node_of[info.site] = node
        name = scenario.sites.site_name(info.site)
        if record:
            recorder.metrics(
                0,
                name,
                "setup",
                {
                    "train_size": info.train_size,
                    "test_size": info.test_size,
                    "prevalence": info.prevalence,
                    "pool_size": info.pool_size,
                },
            )
        for rid, count in zip(info.initial_ids, info.initial_counts):
            req = scenario.effective_requests[rid]
            ledger.request(rid, name, req.round, req.fraction, req.mode)
            ledger.applied(rid, 0, "retrain", {}, sample_count=count)
    return node_of


class ServerEvaluator:
    """``evaluate_fn`` of the strategy: global metrics on the server's test (and val) split, progress, and
    the round's checkpoint (written last, once everything of the round is recorded)."""

    def __init__(
        self, scenario: Scenario, recorder: RunRecorder, strategy, progress: Progress, run_dir: Path
    ) -> None:
        self.scenario, self.recorder, self.strategy, self.progress = (
            scenario,
            recorder,
            strategy,
            progress,
        )
        self.run_dir = run_dir
        self.device = resolve_device(scenario.device)
        self.model = prepare_model(build_model(scenario.model), self.device)
        data = scenario_dataset(scenario)
        self.sets = {"test": EvalSet(data.split("test").images, data.split("test").labels)}
        if scenario.evaluation.server_val:
            self.sets["val"] = EvalSet(data.split("val").images, data.split("val").labels)
        self.costs = RiskCosts(scenario.evaluation.c_fp, scenario.evaluation.c_fn)
        self.points = [
            p for p in scenario.evaluation.operating_points if operating_point_name(p) != "0.5"
        ]
        self.last_arrays: ArrayRecord | None = None

    def __call__(self, flower_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        t0 = time.perf_counter()
        self.last_arrays = arrays
        offset = self.strategy.round_offset
        if flower_round == 0 and offset > 0:  # resumed: the checkpoint's round is recorded already
            return None
        server_round = flower_round + offset
        load_arrays(self.model, arrays)
        preds = predict_sets(self.model, self.sets, device=self.device)
        for phase, p in preds.items():
            self.recorder.metrics(server_round, "global", phase, split_metrics(p, self.costs))
        for name, values in operating_point_metrics(self.points, preds, self.costs).items():
            self.recorder.metrics(server_round, "global", f"test@{name}", values)
        seconds = dict(getattr(self.strategy, "round_seconds", {}))
        seconds["server_eval"] = time.perf_counter() - t0
        if server_round > 0:
            self.recorder.metrics(
                server_round, "global", "timing", {f"{k}_seconds": v for k, v in seconds.items()}
            )
            self.strategy.round_seconds = {}
        self.recorder.flush()
        if server_round > 0:
            save_checkpoint(
                self.run_dir,
                server_round,
                arrays,
                self.strategy,
                self.recorder.mark,
                self.strategy.plan.state(),
                self.strategy.ledger.path,
                self.recorder.event_lines,
            )
        self._report(server_round)
        test = split_metrics(preds["test"], self.costs)
        return MetricRecord({k: v for k, v in test.items() if v == v})  # drop NaN

    def _report(self, server_round: int) -> None:
        rec, total = self.recorder, self.scenario.training.rounds
        line = (
            f"round {server_round:>3}/{total}  global Risk II {rec.value(server_round, 'global', 'test', 'risk_2'):.3f}"
            f"  FNR {rec.value(server_round, 'global', 'test', 'fnr'):.3f}"
            f"  BAC {rec.value(server_round, 'global', 'test', 'bac'):.3f}"
        )
        deleted = [r for r in self.scenario.effective_requests if r.round == server_round]
        if deleted and not self.scenario.retrain:
            line += "  deletion: " + ", ".join(
                f"{self.scenario.sites.site_name(r.site)} {r.fraction:.0%}" for r in deleted
            )
            line += (
                " (control arm: not erased)"
                if self.scenario.control
                else f" ({self.scenario.deletion.method}, {self.scenario.deletion.integration})"
            )
        self.progress(line)


def _begin(
    run_dir: Path, scenario: Scenario, recorder: RunRecorder, resume: bool
) -> Checkpoint | None:
    """Put the run's records where it (re)starts; returns the checkpoint it resumes from, if any.

    A resumed run gets back the metric rows, events and server ledger of its
    newest checkpoint; one that stopped before its first checkpoint starts over
    (the sites' own ledgers are never rolled back: withdrawn rows stay withdrawn).
    """
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        recorder.restore(checkpoint.rows, checkpoint.event_lines, checkpoint.metrics)
        ServerLedger(run_dir / SERVER_LEDGER).restore(checkpoint.ledger)
    else:
        if resume:
            recorder.restore(recorder.table().iloc[0:0], 0)
            remove_ledger_files(run_dir / SERVER_LEDGER)
        recorder.event(
            "run-start",
            0,
            scenario=scenario.name,
            sites=scenario.sites.count,
            rounds=scenario.training.rounds,
        )
    if resume:
        recorder.event(
            "run-resumed",
            checkpoint.server_round if checkpoint is not None else 0,
            checkpoint=str(checkpoint.path.relative_to(run_dir))
            if checkpoint is not None
            else None,
        )
    return checkpoint


def run_federation(
    grid: Grid,
    scenario: Scenario,
    run_dir: Path,
    progress: Progress,
    resume: bool = False,
    abort: threading.Event | None = None,
    until_round: int | None = None,
) -> None:
    """The whole run, from setup to the files of the run directory.

    With ``resume``, continue from the newest checkpoint of ``run_dir`` (or from
    the start when the run stopped before its first round ended): metric rows,
    events, the server ledger, the plan and the strategy's state are put back
    as they were at that round, and the rounds after it are run again. With
    ``until_round`` below ``training.rounds``, stop after that round's
    checkpoint: the run is marked paused (incomplete, resumable).
    """
    started = now_iso()
    t0 = time.perf_counter()
    if abort is not None:
        grid = WatchedGrid(grid, abort)
    run_dir.mkdir(parents=True, exist_ok=True)
    carried = carried_fields(run_dir) if resume else {}
    recorder = RunRecorder(run_dir, scenario.deletion.method, progress)
    checkpoint = _begin(run_dir, scenario, recorder, resume)
    start_round = checkpoint.server_round if checkpoint is not None else 0
    last = min(scenario.training.rounds, until_round or scenario.training.rounds)
    ledger = ServerLedger(run_dir / SERVER_LEDGER)
    node_of = setup_sites(
        grid, scenario, run_dir, recorder, ledger, record=checkpoint is None, abort=abort
    )
    plan = FederationPlan(scenario, node_of, ledger)
    strategy = make_strategy(scenario, plan, recorder)
    evaluator = ServerEvaluator(scenario, recorder, strategy, progress, run_dir)
    if checkpoint is not None:
        plan.restore(checkpoint.plan)
        restore_strategy(strategy, checkpoint.strategy_state)
        strategy.round_offset = start_round
        initial_arrays = checkpoint.arrays
    else:
        initial_arrays = to_arrays(
            prepare_model(
                build_model(scenario.model, seed=stream_seed(scenario.seed, "model-init")),
                torch.device("cpu"),
            )
        )
    progress(
        f"{scenario.name}: {scenario.sites.count} hospitals, {scenario.training.rounds} rounds, "
        f"{scenario.training.strategy}, deletions by {scenario.deletion.method}"
        + (f"; resumed after round {start_round}" if resume else "")
        + (f"; pausing after round {last}" if last < scenario.training.rounds else "")
    )
    try:
        result = strategy.start(
            grid=grid,
            initial_arrays=initial_arrays,
            num_rounds=last - start_round,
            train_config=ConfigRecord({"lr": scenario.training.lr}),
            evaluate_fn=evaluator,
            timeout=scenario.deployment.round_timeout_s,
        )
    except FederationStopped as stop:
        recorder.flush()
        mark_stopped(run_dir, scenario, str(stop))
        raise
    if last < scenario.training.rounds:
        recorder.flush()
        recorder.event("run-paused", last)
        mark_paused(run_dir, scenario, last)
        return
    # Flower leaves an empty ArrayRecord when no round ran (a resume after the last checkpoint)
    final = (
        result.arrays if result.arrays is not None and len(result.arrays) else evaluator.last_arrays
    )
    _save_model(run_dir, scenario, final)
    _finish(run_dir, scenario, recorder, plan, started, t0, resumed=resume, **carried)


def _finish(
    run_dir: Path,
    scenario: Scenario,
    recorder: RunRecorder,
    plan: FederationPlan,
    started: str,
    t0: float,
    **manifest: object,
) -> None:
    """The run's last records: requests still pending, the risk figure, ``run-complete``, the manifest."""
    for site, rids in plan.pending.items():
        if rids:
            recorder.event(
                "deletion-pending-at-end",
                scenario.training.rounds,
                site=plan.name(site),
                requests=rids,
            )
    ledger_rows = plan.ledger.rows()
    recorder.flush()
    deletion_rounds = [r.round for r in scenario.effective_requests] if not scenario.retrain else []
    risk_figure(
        recorder.table(),
        deletion_rounds,
        f"{scenario.name}: {scenario.deletion.method}",
        run_dir / "risk.png",
        guard={
            int(r["applied_round"]): str(r["guard_status"])
            for r in ledger_rows
            if r.get("guard_status") and r.get("applied_round") is not None
        },
    )
    recorder.event("run-complete", scenario.training.rounds, seconds=time.perf_counter() - t0)
    data = scenario_dataset(scenario)
    device = resolve_device(scenario.device)
    mark_complete(
        run_dir,
        started=started,
        finished=now_iso(),
        seconds=time.perf_counter() - t0,
        scenario=scenario.name,
        seed=scenario.seed,
        method=scenario.deletion.method,
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        data=data.provenance.to_dict(),
        sites={plan.name(s): n for s, n in sorted(plan.node_of.items())},
        requests={status: sum(r["status"] == status for r in ledger_rows) for status in STATUSES},
        **manifest,
        **_guard_counts(scenario, ledger_rows),
    )


def _guard_counts(scenario: Scenario, ledger_rows: list[dict]) -> dict[str, dict[str, int]]:
    """The manifest's ``guard`` entry (decisions by status), only for a run with ``deletion.guard`` on."""
    if not scenario.deletion.guard.enabled:
        return {}
    return {
        "guard": {s: sum(r.get("guard_status") == s for r in ledger_rows) for s in GUARD_STATUSES}
    }


def _save_model(run_dir: Path, scenario: Scenario, arrays: ArrayRecord) -> None:
    """The final global model as ``model.safetensors`` (written aside, then renamed into place)."""
    state = load_arrays(build_model(scenario.model), arrays).state_dict()
    tmp = run_dir / ".model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp))
    tmp.replace(run_dir / "model.safetensors")


app = ServerApp()


def _scenario_path(value: str) -> Path:
    """Relative paths: from the current directory, else from the Flower App directory
    (under `flwr run` that is the installed FAB, which carries configs/)."""
    path = Path(value).expanduser()
    if path.is_absolute() or path.is_file():
        return path
    bundled = Path(__file__).resolve().parents[2] / path
    return bundled if bundled.is_file() else path


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for ``flwr run .``: run config keys ``scenario``, ``run-dir``, ``overrides``, ``resume``
    (``resume=true`` continues the unfinished run in ``run-dir`` with the scenario saved there)."""
    cfg = context.run_config
    overrides = [o for o in str(cfg.get("overrides", "")).split(";") if o.strip()]
    resume = str(cfg.get("resume", "")).lower() in ("1", "true", "yes")
    if resume:
        if not cfg.get("run-dir"):
            raise FedunlearnError("resume=true needs run-dir, the folder of the run to continue")
        run_dir = Path(str(cfg["run-dir"])).resolve()
        check_resumable(run_dir)
        scenario = load_scenario(run_dir / "scenario.yaml", overrides)
    else:
        scenario = load_scenario(
            _scenario_path(str(cfg.get("scenario") or "configs/quickstart.yaml")), overrides
        )
        run_dir = Path(
            str(cfg.get("run-dir") or f"runs/{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        ).resolve()
        start_run_dir(run_dir, scenario)
    progress = Progress()
    progress(f"run directory: {run_dir}")
    run_federation(grid, scenario, run_dir, progress, resume=resume)
