"""Flower's Deployment Engine through the real processes: ``flower-superlink``, one ``flower-supernode`` per site.

One run with TLS and SuperNode authentication (2 sites, 2 rounds, one erasure)
ends with a complete run directory, the request ``verified``, each site's
ledger in its own ``state-dir`` and none of a site's rows anywhere in the run
directory, and the same metrics as the scenario in simulation (all but
timings). A misconfigured SuperNode stops the run at setup with one line
naming the node and the fix. Every process started is stopped by PID however
a test ends; each test checks that none is left (any process whose
environment carries the deployment's ``FLWR_HOME``).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from fedunlearn.deploy import Deployment, DeployOptions, deploy
from fedunlearn.deploy.run import RunEnded, project_dir
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.scenario import scenario_from_mapping, scenario_to_yaml
from fedunlearn.progress import Progress
from tests.federated.leaks import scan_run_dir

RUN_TIMEOUT_S = 900.0
SCENARIO = scenario_from_mapping(
    {
        "name": "deploy-smoke",
        "seed": 1,
        "data": {"dataset": "synthetic", "synthetic": {"n_train": 240, "n_val": 60, "n_test": 80}},
        "sites": {"count": 2},
        "training": {"rounds": 2, "local_epochs": 1, "batch_size": 32},
        "deletion": {
            "method": "salun-cra",
            "unlearn": {"epochs": 1, "batch_size": 32},
            "requests": [{"round": 2, "site": 1, "fraction": 0.25}],
        },
        "deployment": {"node_wait_s": 120, "setup_timeout_s": 300, "round_timeout_s": 600},
    },
    "deploy test",
)

pytestmark = pytest.mark.skipif(
    shutil.which("flower-superlink", path=str(Path(sys.executable).parent)) is None,
    reason="flower-superlink is not installed beside this Python",
)


def _left_over(work: Path) -> list[int]:
    """Live processes whose environment names this deployment's FLWR_HOME (all it started, and their children)."""
    marker = f"FLWR_HOME={work.resolve() / 'flwr-home'}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _comparable(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = metrics[~metrics["metric"].str.contains("seconds")]
    keys = [c for c in rows.columns if c != "value"]
    return rows.sort_values(keys).reset_index(drop=True)


def test_tls_and_node_auth_run_keeps_site_state_at_the_sites(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    opts = DeployOptions(sites=2, tls=True, auth=True, timeout_s=RUN_TIMEOUT_S)
    try:
        deploy(SCENARIO, opts, run_dir, work=work, progress=Progress(quiet=True))
    finally:
        assert _left_over(work) == []

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["requests"] == {"pending": 0, "applied": 0, "verified": 1, "not-erased": 0}
    for name in ("scenario.yaml", "metrics.csv", "events.jsonl", "model.safetensors", "risk.png"):
        assert (run_dir / name).is_file(), name
    assert (work / "certs" / "ca.pem").is_file() and (work / "keys" / "site-0.pub").is_file()
    # each site's ledger and audit in its own state-dir; nothing of a site under the run directory
    assert not (run_dir / "sites").exists()
    ledgers = []
    for name in ("site-0", "site-1"):
        site_dir = work / "state" / name / run_dir.name / name
        assert (site_dir / "ledger.sqlite").is_file() and (site_dir / "audit.jsonl").is_file()
        ledgers.append(site_dir / "ledger.sqlite")
    assert scan_run_dir(run_dir, SCENARIO, ledgers=ledgers) == []

    # the same scenario in simulation: the same metrics, all but timings
    from fedunlearn.federated.simulation import run_scenario

    sim = run_scenario(SCENARIO, tmp_path / "sim", quiet=True)
    deployed = _comparable(pd.read_csv(run_dir / "metrics.csv"))
    simulated = _comparable(pd.read_csv(sim / "metrics.csv"))
    pd.testing.assert_frame_equal(deployed, simulated)


def test_a_misconfigured_supernode_stops_the_run_in_one_line(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    work.mkdir()
    scenario_file = work / "scenario.yaml"
    scenario_file.write_text(scenario_to_yaml(SCENARIO), encoding="utf-8")
    bad = f'site="site-7" state-dir="{work / "state" / "bad"}"'
    dep = Deployment(work, DeployOptions(sites=2, timeout_s=RUN_TIMEOUT_S), project_dir())
    try:
        with dep:
            dep.start_superlink()
            dep.start_supernode("site-0", dep.node_config(0, "site-0"))
            dep.start_supernode("bad", bad)
            ended = RunEnded(run_dir)
            run_id = dep.submit(
                {"scenario": str(scenario_file), "run-dir": str(run_dir), "resume": "false"}
            )
            row = dep.follow(run_id, ended=ended)
    finally:
        assert dep.group.alive() == [] and _left_over(work) == []
    assert row["status"] == "finished:failed"
    stopped = json.loads((run_dir / "manifest.json").read_text())["stopped"]
    assert re.fullmatch(
        r"hospital node \d+ \(site=site-7 state-dir=\S+\): site=site-7 is not a site of this scenario "
        r"\(sites: site-0, site-1, or an index 0\.\.1\); start its SuperNode with "
        r'--node-config "site=<name or index> state-dir=<folder>"',
        stopped,
    ), stopped


def test_deploy_refuses_bad_options_before_starting_anything(tmp_path: Path) -> None:
    with pytest.raises(FedunlearnError, match=r"^--sites 3 but the scenario has 2 sites"):
        deploy(SCENARIO, DeployOptions(sites=3), tmp_path / "a", work=tmp_path / "w")
    with pytest.raises(FedunlearnError, match=r"^--auth needs --tls"):
        deploy(SCENARIO, DeployOptions(sites=2, auth=True), tmp_path / "b", work=tmp_path / "w")
    assert not (tmp_path / "w").exists()  # nothing written, nothing started
