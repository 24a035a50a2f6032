"""A hospital's node config and the server's check of every node's claim: one line naming the node and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.nodes import (
    Claim,
    NodeConfigError,
    NodeSetup,
    check_claims,
    describe,
    resolve_node,
)
from tests.federated.conftest import small_scenario

SCENARIO = small_scenario(sites={"count": 3, "names": ["north", "south", "oncology"]})


@pytest.mark.parametrize(
    ("config", "site"),
    [
        ({"site": "oncology", "state-dir": "/h"}, 2),
        ({"site": 1, "state-dir": "/h"}, 1),
        ({"site": "0", "num-partitions": 3, "state-dir": "/h"}, 0),
        ({"partition-id": 2, "num-partitions": 3}, 2),  # what the simulation engine sets
    ],
)
def test_a_node_names_its_site_by_name_or_index(config: dict, site: int) -> None:
    shared = "state-dir" not in config
    assert resolve_node(config, SCENARIO, require_state_dir=not shared).site == site


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({}, "its node config names no site"),
        (
            {"site": "west", "state-dir": "/h"},
            "site=west is not a site of this scenario (sites: north, south, oncology, or an index 0..2)",
        ),
        (
            {"site": 3, "state-dir": "/h"},
            "site=3 is not a site of this scenario (sites: north, south, oncology, or an index 0..2)",
        ),
        (
            {"site": "north", "num-partitions": 4, "state-dir": "/h"},
            "num-partitions=4 but the scenario has 3 sites (sites.count); set num-partitions=3 or leave it out",
        ),
        (
            {"site": "north"},
            "its node config has no state-dir (the folder of its private ledger, on its own machine)",
        ),
    ],
)
def test_a_bad_node_config_is_one_line(config: dict, problem: str) -> None:
    with pytest.raises(NodeConfigError) as err:
        resolve_node(config, SCENARIO, require_state_dir=True)
    assert str(err.value) == problem


def test_the_site_state_lives_in_the_node_state_dir(tmp_path: Path) -> None:
    node = resolve_node(
        {"site": "south", "state-dir": str(tmp_path), "data-root": "/data"}, SCENARIO, True
    )
    assert node == NodeSetup(1, "/data", tmp_path)
    assert node.site_dir(SCENARIO, "/server/runs/r1") == tmp_path / "r1" / "south"
    # in simulation (no state-dir) the sites keep it under the server's run directory
    shared = resolve_node({"partition-id": 1}, SCENARIO, False)
    assert shared.site_dir(SCENARIO, "/server/runs/r1") == Path("/server/runs/r1/sites/south")
    assert describe({}) == "no --node-config"


def _claims(*sites: int) -> list[Claim]:
    return [Claim(100 + i, s, f"site={s}") for i, s in enumerate(sites)]


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        (
            [*_claims(0, 1), Claim(7, -1, "no --node-config", "its node config names no site")],
            "hospital node 7 (no --node-config): its node config names no site; start its SuperNode with "
            '--node-config "site=<name or index> state-dir=<folder>"',
        ),
        (
            _claims(0, 1, 1),
            "node 101 (site=1) and node 102 (site=1) all claim south; give each SuperNode its own "
            "site=... (one SuperNode per site)",
        ),
        (
            _claims(0, 2),
            "no hospital node claims south; start one SuperNode per site with --node-config "
            '"site=south state-dir=<folder>"',
        ),
        (
            [*_claims(0, 1), Claim(9, 2, "site=2", data_md5="ffff")],
            "hospital node 9 (oncology) reads another data file (MD5 ffff) than the server (MD5 abcd); "
            "give it a copy of the server's file with data-root=<folder>",
        ),
    ],
)
def test_the_server_refuses_bad_claims_in_one_line(claims: list[Claim], message: str) -> None:
    with pytest.raises(FedunlearnError) as err:
        check_claims(claims, SCENARIO, "abcd")
    assert str(err.value) == message and "\n" not in message


def test_good_claims_pass() -> None:
    check_claims(_claims(2, 0, 1), SCENARIO, "abcd")
