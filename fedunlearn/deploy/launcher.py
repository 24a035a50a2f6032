"""``fedunlearn deploy``: one scenario on Flower's Deployment Engine, every process on this machine.

:class:`Deployment` starts a ``flower-superlink`` and one ``flower-supernode``
per hospital on 127.0.0.1 (free ports; TLS from a CA made here; SuperNode
authentication with keys registered through ``flwr supernode register``),
submits the run with ``flwr run``, follows it through the SuperLink's run
status (``flwr ls --format json``; ``flwr run``'s exit code says nothing about
the run) and stops every process it started, by PID, however it ends.

The work folder keeps what the deployment needs besides the run directory:
``flwr-home/`` (the Flower CLI's connection), ``certs/`` and ``keys/``,
``logs/`` (one log per process), ``commands.txt`` (every command it ran, as
a shell would take it: the recipe of a real network) and ``state/<site>/``, each hospital's
``state-dir`` (its private ledger and audit, never in the run directory).
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from fedunlearn.deploy.certs import TlsFiles, make_node_key, make_tls
from fedunlearn.deploy.processes import ProcessGroup
from fedunlearn.errors import FedunlearnError

SUPERLINK = "fedunlearn-deploy"  # the connection's name in $FLWR_HOME/config.toml
STARTUP_S = 120.0
POLL_S = 0.5  # how often the launcher looks at its processes and the run directory (cheap)
# How often it asks the SuperLink meanwhile: each `flwr ls` is a Python process of about 1.5 s of
# CPU, which a 2 s poll took from the hospitals' own processes nearly all the time ...
ASK_EVERY_S = 15.0
ASK_AT_END_S = 2.0  # ... and once the run directory says the run ended, until the SuperLink agrees
FINISHED = "finished"
COMPLETED = "finished:completed"


@dataclass(frozen=True)
class DeployOptions:
    """How the local deployment is secured and where the hospitals read their data."""

    sites: int
    tls: bool = False
    auth: bool = False
    data_root: str | None = None
    timeout_s: float = 0.0  # the whole run; 0: no limit


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _exe(name: str) -> str:
    found = shutil.which(name, path=_bin_path())
    if found is None:
        raise FedunlearnError(
            f"`{name}` is not installed beside {sys.executable}; install flwr (pip install 'flwr>=1.42')"
        )
    return found


def _toml(value: str) -> str:
    return json.dumps(value)  # a TOML basic string: quotes and escapes as JSON does


def _json_from(text: str) -> dict:
    try:
        return json.loads(text[text.index("{") : text.rindex("}") + 1])
    except ValueError:
        raise FedunlearnError(f"the Flower CLI gave no JSON: {text.strip()[-300:]}") from None


class CliTimeout(FedunlearnError):
    """A Flower CLI call did not answer in time (a loaded machine, a busy SuperLink)."""


class Deployment:
    """A SuperLink and its SuperNodes on 127.0.0.1, stopped by :meth:`stop` (or leaving a ``with``)."""

    def __init__(self, work: Path, options: DeployOptions, app_dir: Path) -> None:
        if options.auth and not options.tls:
            raise FedunlearnError("--auth needs --tls (node keys travel over TLS); add --tls")
        self.work, self.options, self.app_dir = work.resolve(), options, app_dir
        self.home = self.work / "flwr-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        env = {
            **os.environ,
            "PATH": _bin_path(),
            "FLWR_HOME": str(self.home),
            "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",  # this environment, no uv env
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(_free_port()),
            "FLWR_LOCAL_CONTROL_API_PORT": str(_free_port()),
        }
        self.group = ProcessGroup(env)
        self.tls: TlsFiles | None = make_tls(self.work / "certs") if options.tls else None
        self._write_connection()

    def _write_connection(self) -> None:
        lines = ["[superlink]", f'default = "{SUPERLINK}"', "", f"[superlink.{SUPERLINK}]"]
        lines.append(f'address = "127.0.0.1:{self.port}"')
        if self.tls is None:
            lines.append("insecure = true")
        else:
            lines.append(f"root-certificates = {_toml(str(self.tls.ca))}")
        (self.home / "config.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _record(self, command: list[str]) -> list[str]:
        with open(self.work / "commands.txt", "a", encoding="utf-8") as fh:
            fh.write(shlex.join([Path(command[0]).name, *command[1:]]) + "\n")
        return command

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ processes
    def superlink_command(self) -> list[str]:
        cmd = [_exe("flower-superlink"), "--host", "127.0.0.1", "--port", str(self.port)]
        if self.tls is None:
            cmd.append("--insecure")
        else:
            cmd += ["--ssl-ca-certfile", str(self.tls.ca), "--ssl-certfile", str(self.tls.cert)]
            cmd += ["--ssl-keyfile", str(self.tls.key)]
        if self.options.auth:
            cmd.append("--enable-supernode-auth")
        return [*cmd, "--disable-runtime-dependency-installation"]

    def start_superlink(self) -> None:
        command = self._record(self.superlink_command())
        self.group.start("superlink", command, self.work / "logs" / "superlink.log", self.work)
        context = ssl.create_default_context(cafile=str(self.tls.ca)) if self.tls else None
        scheme = "https" if self.tls else "http"
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if "superlink" in self.group.exited():
                raise FedunlearnError(
                    f"flower-superlink exited at start:\n{self.group.tail('superlink')}"
                )
            try:
                url = f"{scheme}://127.0.0.1:{self.port}/health"
                with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise FedunlearnError(f"flower-superlink not ready within {STARTUP_S:.0f}s; see its log")

    def node_config(self, site: int, name: str) -> str:
        """The node config a hospital's SuperNode is started with (its site, its state, its data)."""
        parts = {
            "site": name,
            "state-dir": str(self.work / "state" / name),
            "num-partitions": str(self.options.sites),
        }
        if self.options.data_root:
            parts["data-root"] = str(Path(self.options.data_root).expanduser().resolve())
        return " ".join(f"{k}={v if k == 'num-partitions' else _toml(v)}" for k, v in parts.items())

    def start_supernode(self, name: str, node_config: str) -> None:
        """A hospital's SuperNode (registered first under ``--auth``) with ``node_config``."""
        cmd = [_exe("flower-supernode"), "--superlink", f"127.0.0.1:{self.port}"]
        cmd += ["--port", str(_free_port()), "--node-config", node_config]
        if self.tls is None:
            cmd.append("--insecure")
        else:
            cmd += ["--root-certificates", str(self.tls.ca)]
        if self.options.auth:
            private, public = make_node_key(self.work / "keys", name)
            self.flwr("supernode", "register", str(public), SUPERLINK, "--name", name)
            cmd += ["--auth-supernode-private-key", str(private)]
        self.group.start(name, self._record(cmd), self.work / "logs" / f"{name}.log", self.work)

    def stop(self) -> None:
        left = self.group.stop()
        if left:
            raise FedunlearnError(f"processes {left} did not stop; stop them by PID")

    # ------------------------------------------------------------ the Flower CLI
    def flwr(self, *args: str, timeout: float = 180.0) -> str:
        """Run ``flwr ARGS --format json``; its output, or one line when it fails."""
        command = [_exe("flwr"), *args, "--format", "json"]
        try:
            proc = subprocess.run(
                self._record(command) if args[0] != "ls" else command,
                cwd=self.work,
                env=self.group.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise CliTimeout(f"`flwr {args[0]}` did not answer within {timeout:g}s") from None
        if proc.returncode != 0:
            raise FedunlearnError(
                f"`flwr {args[0]} {args[1] if len(args) > 1 else ''}` failed: "
                f"{(proc.stdout + proc.stderr).strip()[-400:]}"
            )
        return proc.stdout

    def submit(self, run_config: Mapping[str, str]) -> int:
        """``flwr run`` of the project with ``run_config``; returns the run id."""
        pairs = " ".join(f"{k}={_toml(v)}" for k, v in run_config.items())
        out = _json_from(self.flwr("run", str(self.app_dir), SUPERLINK, "--run-config", pairs))
        if not out.get("success") or out.get("run-id") is None:
            raise FedunlearnError(f"`flwr run` did not start the run: {out}")
        return int(out["run-id"])

    def status(self, run_id: int) -> dict:
        """The SuperLink's record of the run (``flwr ls --run-id``): status, details, times."""
        out = _json_from(self.flwr("ls", SUPERLINK, "--run-id", str(run_id), timeout=120))
        for row in out.get("runs", []):
            if str(row.get("run-id")) == str(run_id):
                return row
        raise FedunlearnError(f"the SuperLink does not know run {run_id}: {out}")

    def follow(
        self,
        run_id: int,
        on_poll: Callable[[], None] = lambda: None,
        ended: Callable[[], bool] = lambda: False,
    ) -> dict:
        """Wait until the SuperLink says the run finished; returns its last status row.

        The SuperLink's status is the answer, but asking for it costs a process: it is asked every
        ``ASK_EVERY_S`` (a ServerApp that dies without a word is caught so), and every
        ``ASK_AT_END_S`` once ``ended()`` (the run directory says the run completed or stopped).
        """
        deadline = time.monotonic() + self.options.timeout_s if self.options.timeout_s else None
        asked = -math.inf
        while True:
            self.group.remember()
            on_poll()
            if "superlink" in self.group.exited():
                raise FedunlearnError(
                    f"flower-superlink stopped during run {run_id}:\n{self.group.tail('superlink')}"
                )
            now = time.monotonic()
            if now - asked >= (ASK_AT_END_S if ended() else ASK_EVERY_S):
                asked = now
                try:
                    row = self.status(run_id)
                except CliTimeout:  # the next poll asks again; --timeout bounds the whole wait
                    row = {"status": "unknown (the Flower CLI did not answer)"}
                if str(row.get("status", "")).startswith(FINISHED):
                    return row
            if deadline is not None and now > deadline:
                raise FedunlearnError(
                    f"run {run_id} still {row.get('status')} after {self.options.timeout_s:g}s (--timeout)"
                )
            time.sleep(POLL_S)
