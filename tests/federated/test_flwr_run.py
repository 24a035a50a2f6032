"""``flwr run .``: the real Flower CLI against a SuperLink this test starts and stops.

Flower 1.42 reads SuperLink connections from ``$FLWR_HOME/config.toml`` (not from
``pyproject.toml``) and takes simulation settings per run with ``--federation-config``.
The test isolates everything: its own ``FLWR_HOME``, ``RAY_TMPDIR`` and a free port;
it starts ``flower-superlink`` itself (so it knows the PID) and, whatever happens,
stops it and every process it spawned (SuperExec, ``flwr-simulation``, Ray) by PID.
A second ``flwr run`` with ``resume=true`` finishes a copy of the run left as if killed
after its last checkpoint.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SEARCH_PATH = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")])
FLWR = shutil.which("flwr", path=SEARCH_PATH)

SITES, ROUNDS = 3, 2
RUN_TIMEOUT_S = 240.0
STARTUP_TIMEOUT_S = 60.0

# The synthetic smoke scenario: 3 hospitals, 2 rounds, one deletion request at round 2.
SCENARIO_YAML = f"""\
name: flwr-smoke
seed: 0
data: {{dataset: synthetic, synthetic: {{n_train: 600, n_val: 150, n_test: 300}}}}
sites: {{count: {SITES}}}
training: {{rounds: {ROUNDS}, local_epochs: 1, batch_size: 64}}
deletion:
  method: salun-cra
  unlearn: {{epochs: 2}}
  requests:
    - {{round: 2, site: 1, fraction: 0.2}}
"""

pytestmark = pytest.mark.skipif(
    FLWR is None, reason=f"the `flwr` executable is not installed (looked in {VENV_BIN} and PATH)"
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_identity(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time) of a live process, from /proc; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] == "Z":  # a zombie is already dead
        return None
    return int(fields[1]), fields[19]


def _descendants(root: int) -> dict[int, str]:
    """Every live descendant of ``root`` (pid -> start time), whatever session it detached into."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit() and (ident := _proc_identity(int(entry.name))):
            children.setdefault(ident[0], []).append(int(entry.name))
            started[int(entry.name)] = ident[1]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = started[child]
                todo.append(child)
    return found


def _stop(pids: dict[int, str], sig: int) -> None:
    """Signal the processes that are still the ones recorded (same pid *and* start time)."""
    for pid, start in pids.items():
        ident = _proc_identity(pid)
        if ident and ident[1] == start:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def _alive(pids: dict[int, str]) -> dict[int, str]:
    return {
        pid: start
        for pid, start in pids.items()
        if (ident := _proc_identity(pid)) and ident[1] == start
    }


def _wait_gone(pids: dict[int, str], timeout: float) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while (left := _alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


class SuperLink:
    """A ``flower-superlink --simulation`` owned by the test, with the env ``flwr run`` needs."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "flwr-home"
        self.home.mkdir()
        # Ray's socket paths must stay short (AF_UNIX limit): a fresh directory directly in /tmp.
        self.ray_tmp = Path(tempfile.mkdtemp(prefix="fu-ray-"))
        self.port = _free_port()
        self.log = workdir / "superlink.out"
        self.env = {
            **os.environ,
            "PATH": SEARCH_PATH,  # flower-superexec and flwr-simulation are found on PATH
            "FLWR_HOME": str(self.home),
            "RAY_TMPDIR": str(self.ray_tmp),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # use this venv; no uv env (no internet)
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            # Never touch a developer's own ~/.flwr local SuperLink port, should anything fall back to it.
            "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(_free_port()),
            "FLWR_LOCAL_CONTROL_API_PORT": str(_free_port()),
        }
        (self.home / "config.toml").write_text(
            '[superlink]\ndefault = "fedunlearn-test"\n\n'
            f'[superlink.fedunlearn-test]\naddress = "127.0.0.1:{self.port}"\ninsecure = true\n',
            encoding="utf-8",
        )
        self.proc: subprocess.Popen | None = None
        self.known: dict[int, str] = {}

    def start(self) -> None:
        exe = shutil.which("flower-superlink", path=SEARCH_PATH)
        assert exe, f"flower-superlink not found beside {FLWR}"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    exe,
                    "--insecure",
                    "--simulation",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--disable-runtime-dependency-installation",
                    "--log-file",
                    str(self.home / "superlink.log"),
                ],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"flower-superlink exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/health", timeout=1
                ) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(
            f"flower-superlink not ready on port {self.port} within {STARTUP_TIMEOUT_S:.0f}s:\n{self.tail()}"
        )

    def remember_children(self) -> None:
        """Record the SuperLink's process tree (SuperExec, flwr-simulation, Ray) while it is alive."""
        if self.proc is not None:
            self.known.update(_descendants(self.proc.pid))

    def stop(self) -> None:
        if self.proc is None:
            return
        self.remember_children()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # SuperExec watches its parent and exits with it; anything recorded that is left gets stopped.
        if left := _wait_gone(self.known, 10):
            _stop(left, signal.SIGTERM)
            if left := _wait_gone(left, 10):
                _stop(left, signal.SIGKILL)
                _wait_gone(left, 5)
        shutil.rmtree(self.ray_tmp, ignore_errors=True)

    def tail(self, n: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-n:])


@pytest.fixture
def superlink(tmp_path: Path) -> Iterator[SuperLink]:
    link = SuperLink(tmp_path)
    try:
        link.start()
        yield link
    finally:
        link.stop()


def _manifest(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}


def _flwr_run(superlink: SuperLink, run_config: str, run_dir: Path, cli_log: Path) -> None:
    """``flwr run .`` with ``run_config``; returns once ``run_dir``'s manifest says complete (or fails)."""
    command = [
        FLWR,
        "run",
        str(REPO),
        "--stream",
        "--federation-config",
        f"num-supernodes={SITES} client-resources-num-cpus=1 client-resources-num-gpus=0",
        "--run-config",
        run_config,
    ]
    with open(cli_log, "wb") as out:
        cli = subprocess.Popen(
            command, cwd=cli_log.parent, env=superlink.env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not _manifest(run_dir).get("complete"):
            superlink.remember_children()
            if cli.poll() is not None and not _manifest(run_dir).get("complete"):
                time.sleep(2)  # the stream may end just before the last file lands
                if not _manifest(run_dir).get("complete"):
                    pytest.fail(
                        f"`flwr run` exited with {cli.returncode} before the run completed:\n"
                        f"{cli_log.read_text(errors='replace')[-6000:]}\n--- superlink ---\n{superlink.tail()}"
                    )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no complete manifest in {run_dir} after {RUN_TIMEOUT_S:.0f}s:\n"
                    f"{cli_log.read_text(errors='replace')[-6000:]}\n--- superlink ---\n{superlink.tail()}"
                )
            time.sleep(1)
        try:
            cli.wait(timeout=30)  # --stream ends once the run is finished
        except subprocess.TimeoutExpired:
            pass
    finally:
        if cli.poll() is None:
            cli.terminate()
            try:
                cli.wait(timeout=10)
            except subprocess.TimeoutExpired:
                cli.kill()
                cli.wait()


def test_flwr_run_dot_runs_a_scenario_to_a_complete_run_dir(
    superlink: SuperLink, tmp_path: Path
) -> None:
    scenario = tmp_path / "smoke.yaml"
    scenario.write_text(SCENARIO_YAML, encoding="utf-8")
    run_dir = tmp_path / "run"
    # TOML basic strings: json.dumps quotes and escapes a path the same way.
    _flwr_run(
        superlink,
        f"scenario={json.dumps(str(scenario))} run-dir={json.dumps(str(run_dir))}",
        run_dir,
        tmp_path / "flwr-run.out",
    )

    manifest = _manifest(run_dir)
    assert manifest["complete"] is True
    assert manifest["kind"] == "federated-run" and manifest["scenario"] == "flwr-smoke"
    assert manifest["sites"].keys() == {f"site-{k}" for k in range(SITES)}
    for name in (
        "scenario.yaml",
        "manifest.json",
        "metrics.csv",
        "events.jsonl",
        "model.safetensors",
        "risk.png",
    ):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "risk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = [
        json.loads(line)["event"] for line in (run_dir / "events.jsonl").read_text().splitlines()
    ]
    assert events[0] == "run-start" and events[-1] == "run-complete"
    assert "deletion-applied" in events

    with open(run_dir / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    seen = {(int(r["round"]), r["site"], r["phase"]) for r in rows}
    sites = [f"site-{k}" for k in range(SITES)]
    for site in sites:
        assert (0, site, "setup") in seen, site
    for rnd in range(0, ROUNDS + 1):
        assert (rnd, "global", "test") in seen, rnd
    for rnd in range(1, ROUNDS + 1):
        for site in sites:
            assert (rnd, site, "local-test") in seen, (rnd, site)
    assert (2, "site-1", "unlearn") in seen
    # Every hospital trained in round 1 (site-1 unlearns instead of training in round 2).
    assert all((1, site, "train") in seen for site in sites)

    # resume=true: a copy of the run, as if killed after its last checkpoint, is finished by `flwr run`
    copy = tmp_path / "resumed"
    shutil.copytree(run_dir, copy)
    (copy / "manifest.json").write_text(json.dumps({"complete": False}))
    (copy / "model.safetensors").unlink()
    _flwr_run(
        superlink,
        f"run-dir={json.dumps(str(copy))} resume=true",
        copy,
        tmp_path / "flwr-resume.out",
    )
    assert _manifest(copy)["resumed"] is True
    with open(copy / "metrics.csv", newline="") as fh:
        resumed_rows = list(csv.DictReader(fh))
    assert [
        (r["round"], r["site"], r["phase"], r["metric"], r["value"])
        for r in resumed_rows
        if "seconds" not in r["metric"]
    ] == [
        (r["round"], r["site"], r["phase"], r["metric"], r["value"])
        for r in rows
        if "seconds" not in r["metric"]
    ]
