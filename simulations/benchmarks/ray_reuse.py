"""Does a warm Ray make sweep points that cannot share a prefix cheaper? Cold vs warm Ray, measured.

``fedunlearn sweep`` runs each point as ``python -m fedunlearn run`` with its
own local Ray (cold). The alternative measured here keeps one Ray running
(``ray start --head``) and lets every point join it (``ray.address``; the
per-client CPU/GPU resources are Ray's, so they still hold), sequentially and
two at a time. Points are a tiny synthetic scenario (seeds 0..N-1, so no two
share a prefix), run alternately cold and warm; prints seconds per point:

    python simulations/benchmarks/ray_reuse.py --points 3 --out /tmp/ray-reuse

Run it under ``nice -n 19`` on a shared machine and say how loaded it was.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

TINY = """\
name: tiny
data: {dataset: synthetic, synthetic: {n_train: 360, n_val: 90, n_test: 150}}
sites: {count: 2}
training: {rounds: 3, local_epochs: 1, batch_size: 32}
deletion: {method: none, requests: [{round: 3, site: 1, fraction: 0.25}]}
"""


def _argv(scenario: Path, out: Path, seed: int, address: str | None) -> list[str]:
    extra = ["--set", f"ray.address={address}"] if address else []
    argv = [sys.executable, "-m", "fedunlearn", "run", str(scenario), "--out", str(out), "--quiet"]
    return [*argv, "--set", f"seed={seed}", *extra]


def _run(scenario: Path, out: Path, seed: int, address: str | None) -> float:
    t0 = time.perf_counter()
    subprocess.run(_argv(scenario, out, seed, address), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                time.sleep(2.0)  # the raylet registers after the GCS listens
                return
        time.sleep(0.5)
    raise SystemExit(f"the Ray head on port {port} did not start within {timeout:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    scenario = args.out / "tiny.yaml"
    scenario.write_text(TINY)
    ray = str(Path(sys.executable).with_name("ray"))
    port, temp = _free_port(), f"/tmp/rw{os.getpid()}"
    cpus = str(os.cpu_count() or 1)
    head = [ray, "start", "--head", "--block", f"--port={port}", f"--num-cpus={cpus}"]
    head += [f"--temp-dir={temp}", "--include-dashboard=false", "--disable-usage-stats"]
    # --block: the head lives in this process group of ours, and goes when we end the group (by its id);
    # never `ray stop`, which would end every Ray of this user on a shared machine
    cluster = subprocess.Popen(head, start_new_session=True, stdout=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    _wait_for(port)
    cold, warm = [], []
    try:
        for seed in range(args.points):  # alternately, so that a change of load hits both alike
            cold.append(_run(scenario, args.out / f"cold-{seed}", seed, None))
            warm.append(_run(scenario, args.out / f"warm-{seed}", seed, address))
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(
                _argv(scenario, args.out / f"pair-{s}", s, address), stdout=subprocess.DEVNULL
            )
            for s in (0, 1)
        ]
        assert all(p.wait() == 0 for p in procs)
        pair = (time.perf_counter() - t0) / 2
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        cluster.wait(timeout=60)
        shutil.rmtree(temp, ignore_errors=True)
    print(
        f"cold Ray (own local Ray per point, today's sweep): {statistics.mean(cold):.1f} s/point {cold}"
    )
    print(
        f"warm Ray (one `ray start`, points join it):       {statistics.mean(warm):.1f} s/point {warm}"
    )
    print(f"warm Ray, two points at once:                     {pair:.1f} s/point")
    print(f"warm / cold: {statistics.mean(warm) / statistics.mean(cold):.2f}")


if __name__ == "__main__":
    main()
