"""One scenario through a local deployment, start to end: what ``fedunlearn deploy`` calls.

The scenario is validated and its data checked before any process starts; the
resolved scenario goes to the work folder and the ServerApp gets its path, the
run directory and ``resume``. Success is the SuperLink's ``finished:completed``
*and* a complete run directory; anything else is one line with the reason the
run directory or the SuperLink gives.
"""

from __future__ import annotations

import json
from pathlib import Path

from fedunlearn.deploy.launcher import COMPLETED, Deployment, DeployOptions
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.rundir import check_new_run_dir, check_resumable
from fedunlearn.federated.scenario import Scenario, scenario_to_yaml
from fedunlearn.io import read_manifest
from fedunlearn.progress import Progress


def project_dir() -> Path:
    """The Flower App folder ``flwr run`` ships: the project holding ``[tool.flwr.app]``."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or "[tool.flwr.app]" not in pyproject.read_text(encoding="utf-8"):
        raise FedunlearnError(
            f"fedunlearn deploy ships the project folder as a Flower App, but {root} has no "
            "pyproject.toml with [tool.flwr.app]; run it from a clone (pip install -e .)"
        )
    return root


def default_work_dir(run_dir: Path) -> Path:
    """``<run dir>.deploy`` beside the run directory (the same for a resume, so the sites find their state)."""
    return run_dir.parent / f"{run_dir.name}.deploy"


class _EventTail:
    """Prints the run's new events (events.jsonl) as they land, one line each (not those of an earlier
    attempt: a resumed run starts from the lines already there, or from fewer once it rolls them back)."""

    def __init__(self, run_dir: Path, progress: Progress) -> None:
        self.path, self.progress = run_dir / "events.jsonl", progress
        self.seen = len(self._lines())

    def _lines(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []

    def __call__(self) -> None:
        lines = self._lines()
        self.seen = min(self.seen, len(lines))
        for line in lines[self.seen :]:
            try:
                ev = json.loads(line)
            except ValueError:
                return  # a line still being written: read it next time
            where = f" {ev['site']}" if "site" in ev else ""
            self.progress(f"round {ev.get('round', '?')}: {ev.get('event')}{where}")
            self.seen += 1


class RunEnded:
    """Whether the run directory says this attempt completed or stopped (the SuperLink still has the
    last word): its manifest, rewritten since the run was submitted (a resumed run's old manifest may
    still name the earlier stop)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "manifest.json"
        self.before = self._stamp()

    def _stamp(self) -> int | None:
        return self.path.stat().st_mtime_ns if self.path.is_file() else None

    def __call__(self) -> bool:
        if self._stamp() == self.before:
            return False
        try:
            manifest = read_manifest(self.path.parent) or {}
        except ValueError:  # being written: look again next time
            return False
        return manifest.get("complete") is True or bool(manifest.get("stopped"))


def deploy(
    scenario: Scenario,
    options: DeployOptions,
    run_dir: Path,
    *,
    work: Path | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Run ``scenario`` on a local Deployment Engine; returns ``run_dir`` once the run is complete."""
    from fedunlearn.federated.simulation import check_inputs

    progress = progress or Progress()
    run_dir = Path(run_dir).resolve()
    if options.sites != scenario.sites.count:
        raise FedunlearnError(
            f"--sites {options.sites} but the scenario has {scenario.sites.count} sites (sites.count); "
            f"pass --sites {scenario.sites.count} or --set sites.count={options.sites}"
        )
    if options.auth and not options.tls:
        raise FedunlearnError("--auth needs --tls (node keys travel over TLS); add --tls")
    if resume:
        check_resumable(run_dir)
    else:
        check_new_run_dir(run_dir)
    check_inputs(scenario)
    app = project_dir()
    work = Path(work or default_work_dir(run_dir)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    scenario_file = work / "scenario.yaml"
    scenario_file.write_text(scenario_to_yaml(scenario), encoding="utf-8")
    run_config = {"run-dir": str(run_dir), "resume": "true" if resume else "false"}
    if not resume:
        run_config["scenario"] = str(scenario_file)
    with Deployment(work, options, app) as dep:
        dep.start_superlink()
        for k in range(scenario.sites.count):
            name = scenario.sites.site_name(k)
            dep.start_supernode(name, dep.node_config(k, name))
        mode = "TLS" if options.tls else "insecure"
        progress(
            f"SuperLink 127.0.0.1:{dep.port} ({mode}{', node auth' if options.auth else ''}), "
            f"{scenario.sites.count} SuperNodes; logs in {work / 'logs'}"
        )
        tail, ended = _EventTail(run_dir, progress), RunEnded(run_dir)
        run_id = dep.submit(run_config)
        progress(f"run {run_id} submitted; run directory {run_dir}")
        row = dep.follow(run_id, on_poll=tail, ended=ended)
        tail()
    manifest = read_manifest(run_dir) or {}
    status = str(row.get("status"))
    if status == COMPLETED and manifest.get("complete") is True:
        progress(f"run {run_id} {status}; requests {manifest.get('requests')}")
        return run_dir
    why = (
        manifest.get("stopped") or str(row.get("status-details") or "").strip() or "no reason given"
    )
    raise FedunlearnError(
        f"run {run_id} ended {status}: {why}; logs in {work / 'logs'}"
        + (
            ""
            if manifest.get("complete")
            else f"; `fedunlearn deploy --resume {run_dir}` continues it"
        )
    )
