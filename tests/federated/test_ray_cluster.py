"""A real two-node Ray cluster on this machine (``ray.cluster_utils.Cluster``: a head and a second raylet),
a scenario run with ``ray.address`` set, and Flower's client actors found on both nodes.

Each node offers one CPU and each hospital asks for one, so the actor pool has
two actors and Ray must put one on each node; the test reads where they ran
from the cluster's own actor table (GCS), after the run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.federated.conftest import small_scenario

pytestmark = pytest.mark.slow  # make test-all; CI runs make test

ray = pytest.importorskip("ray")


def _cluster():  # type: ignore[no-untyped-def]
    """A head node with one CPU; Ray gives a raylet 30 s to register, which a loaded 2-core machine can miss:
    one more try (the failed attempt's processes are Ray's own to reap, at the latest when pytest exits)."""
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 1, "num_gpus": 0, "include_dashboard": False}
    for attempt in range(2):
        cluster = Cluster(initialize_head=False, connect=False)
        try:
            cluster.add_node(**head)
            return cluster
        except Exception:
            cluster.shutdown()
            if attempt:
                raise
    raise AssertionError("unreachable")


def test_a_scenario_runs_on_a_two_node_ray_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedunlearn.federated.simulation import run_scenario

    ray_tmp = tempfile.mkdtemp(prefix="fu-rc-", dir="/tmp")  # short: Ray's socket paths
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    cluster = _cluster()
    try:
        second = cluster.add_node(num_cpus=1, num_gpus=0)
        cluster.wait_for_nodes()
        nodes = {cluster.head_node.node_id, second.node_id}
        scenario = small_scenario(
            sites={"count": 2},
            training={"rounds": 1},
            deletion={"requests": [{"round": 1, "site": 1, "fraction": 0.25}]},
            ray={"address": cluster.address, "num_cpus_per_client": 1, "num_gpus_per_client": 0},
        )
        run_dir = run_scenario(scenario, tmp_path / "run", quiet=True)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["complete"] is True and manifest["requests"]["verified"] == 1

        ray.init(address=cluster.address, log_to_driver=False)
        actors = ray._private.state.actors().values()
        placed = {a["Address"]["NodeID"] for a in actors if a["ActorClassName"] == "ClientAppActor"}
        assert placed == nodes, (placed, nodes)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
        os.environ.pop("RAY_ADDRESS", None)
        shutil.rmtree(ray_tmp, ignore_errors=True)
