"""Who a hospital node is, and the server's check of every node's claim at setup.

A hospital configures itself on its own machine with Flower's node config
(``flower-supernode --node-config "..."``):

- ``site``: its site, by name (``site-0``, or a name of ``sites.names``) or by
  index; without it, Flower's ``partition-id`` (the simulation engine sets it);
- ``num-partitions`` (optional): must equal the scenario's ``sites.count``;
- ``data-root``: the folder holding its copy of the dataset file, from which it
  takes its own shard (default: the scenario's ``data.root``);
- ``state-dir``: the folder its private ledger and audit live in
  (``<state-dir>/<run folder name>/<site>/``). Required outside the simulation
  engine; in simulation the sites share the server's filesystem and keep them
  under ``<run dir>/sites/<site>/``.

:func:`resolve_node` runs on the hospital and turns a bad node config into one
line; :func:`check_claims` runs on the server over all the answers (unknown
site, duplicates, missing sites, another data file) and raises one line naming
the node and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.scenario import Scenario

SITE = "site"
PARTITION_ID = "partition-id"
NUM_PARTITIONS = "num-partitions"
DATA_ROOT = "data-root"
STATE_DIR = "state-dir"

FIX = 'start its SuperNode with --node-config "site=<name or index> state-dir=<folder>"'


class NodeConfigError(FedunlearnError):
    """A hospital's node config names no site of the scenario, or lacks what the deployment needs."""


@dataclass(frozen=True)
class NodeSetup:
    """What a node's config resolves to: its site index, data folder and state folder."""

    site: int
    data_root: str | None
    state_dir: Path | None

    def site_dir(self, scenario: Scenario, run_dir: str) -> Path:
        """The folder of the site's ledger and audit for the run in ``run_dir`` (the server's path)."""
        name = scenario.sites.site_name(self.site)
        if self.state_dir is None:
            return Path(run_dir) / "sites" / name
        return self.state_dir / Path(run_dir).name / name


def describe(node_config: Mapping[str, object]) -> str:
    """The node config as the SuperNode was given it, for error messages."""
    if not node_config:
        return "no --node-config"
    return " ".join(f"{k}={v}" for k, v in sorted(node_config.items()))


def _site_index(value: object, scenario: Scenario) -> int:
    s = scenario.sites
    names = [s.site_name(k) for k in range(s.count)]
    text = str(value).strip()
    if text in names:
        return names.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < s.count:
        return int(text)
    raise NodeConfigError(
        f"site={text} is not a site of this scenario (sites: {', '.join(names)}, "
        f"or an index 0..{s.count - 1})"
    )


def resolve_node(
    node_config: Mapping[str, object], scenario: Scenario, require_state_dir: bool
) -> NodeSetup:
    """The node's site and folders, or :class:`NodeConfigError` saying what is wrong with its config."""
    if SITE in node_config:
        site = _site_index(node_config[SITE], scenario)
    elif PARTITION_ID in node_config:
        site = _site_index(node_config[PARTITION_ID], scenario)
    else:
        raise NodeConfigError("its node config names no site")
    count = scenario.sites.count
    if NUM_PARTITIONS in node_config and str(node_config[NUM_PARTITIONS]).strip() != str(count):
        raise NodeConfigError(
            f"num-partitions={node_config[NUM_PARTITIONS]} but the scenario has {count} sites "
            f"(sites.count); set num-partitions={count} or leave it out"
        )
    state_dir = str(node_config.get(STATE_DIR, "")).strip()
    if require_state_dir and not state_dir:
        raise NodeConfigError(
            "its node config has no state-dir (the folder of its private ledger, on its own machine)"
        )
    data_root = str(node_config.get(DATA_ROOT, "")).strip() or None
    return NodeSetup(site, data_root, Path(state_dir).expanduser() if state_dir else None)


@dataclass(frozen=True)
class Claim:
    """One node's answer to the setup query, as the server checks it."""

    node_id: int
    site: int  # -1: the node could not resolve its config (``problem`` says why)
    node_config: str
    problem: str = ""
    data_md5: str = ""


def check_claims(claims: Sequence[Claim], scenario: Scenario, data_md5: str) -> None:
    """Raise one line when a node's claim is bad, two nodes claim one site, or a site has no node."""
    names = scenario.sites.site_name
    for c in claims:
        if c.problem:
            raise FedunlearnError(
                f"hospital node {c.node_id} ({c.node_config}): {c.problem}; {FIX}"
            )
    by_site: dict[int, list[Claim]] = {}
    for c in claims:
        by_site.setdefault(c.site, []).append(c)
    for site, same in sorted(by_site.items()):
        if len(same) > 1:
            nodes = " and ".join(f"node {c.node_id} ({c.node_config})" for c in same)
            raise FedunlearnError(
                f"{nodes} all claim {names(site)}; give each SuperNode its own site=... "
                "(one SuperNode per site)"
            )
    missing = [names(k) for k in range(scenario.sites.count) if k not in by_site]
    if missing:
        raise FedunlearnError(
            f"no hospital node claims {', '.join(missing)}; start one SuperNode per site with "
            f'--node-config "site={missing[0]} state-dir=<folder>"'
        )
    for c in claims:
        if data_md5 and c.data_md5 and c.data_md5 != data_md5:
            raise FedunlearnError(
                f"hospital node {c.node_id} ({names(c.site)}) reads another data file "
                f"(MD5 {c.data_md5}) than the server (MD5 {data_md5}); give it a copy of the "
                "server's file with data-root=<folder>"
            )
