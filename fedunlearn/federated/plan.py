"""The server's plan of a federation: sites and node ids, site sampling, and the deletion schedule.

:class:`FederationPlan` is the bookkeeping the strategy consults every round:
which node is which site, which sites train, which requests are accepted,
waiting to be withdrawn, or pending until the deletion policy honours them. It
holds no Flower state, so a checkpoint stores it as plain JSON (:meth:`state`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.policy import PolicySpec, get_policy
from fedunlearn.federated.scenario import Scenario
from fedunlearn.seeding import numpy_rng


@dataclass
class FederationPlan:
    """Who is who, and what happens when: sites <-> node ids, sampling, and the deletion policy's schedule.

    A request is *accepted* in its round. From then on its site must not train on
    its rows: the id waits in ``withdrawing`` until the site confirms it dropped
    them (a ``withdraw-ids`` train message, or an unlearning message). It waits in
    ``pending`` until the policy honours it: an unlearning pass reported applied
    (``immediate``, ``batched``), or a reset of the global model (``retrain``).
    """

    scenario: Scenario
    node_of: dict[int, int]
    ledger: ServerLedger
    pending: dict[int, list[int]] = field(
        default_factory=dict
    )  # site -> request ids not yet honoured
    withdrawing: dict[int, list[int]] = field(
        default_factory=dict
    )  # site -> accepted ids not yet confirmed dropped
    accepted: set[int] = field(default_factory=set)

    def site_of(self, node_id: int) -> int:
        for site, node in self.node_of.items():
            if node == node_id:
                return site
        raise KeyError(node_id)

    def name(self, site: int) -> str:
        return self.scenario.sites.site_name(site)

    @property
    def policy(self) -> PolicySpec:
        return get_policy(self.scenario.deletion.policy)

    def sample(self, server_round: int) -> list[int]:
        """Sites training this round: a seeded draw, independent of random node ids."""
        t, n = self.scenario.training, self.scenario.sites.count
        k = min(n, max(int(n * t.fraction_train), t.min_sites))
        rng = numpy_rng(self.scenario.seed, "client-sampling", server_round)
        return sorted(int(s) for s in rng.choice(n, size=k, replace=False))

    def accept(self, server_round: int) -> None:
        """Accept every request arrived by ``server_round`` (idempotent); none under Federated Retrain,
        whose forget sets are removed before round 1. The control arm records each request as
        ``not-erased`` and never sends it to its site."""
        if self.scenario.retrain:
            return
        for rid, req in enumerate(self.scenario.effective_requests):
            if req.round <= server_round and rid not in self.accepted:
                self.accepted.add(rid)
                self.ledger.request(rid, self.name(req.site), req.round, req.fraction, req.mode)
                if (
                    self.scenario.control
                ):  # recorded, never withdrawn nor unlearned: its site only tracks the rows
                    self.ledger.not_erased(rid, server_round)
                    continue
                self.pending.setdefault(req.site, []).append(rid)
                self.withdrawing.setdefault(req.site, []).append(rid)

    def _acts(self, server_round: int) -> bool:
        return self.policy.acts_at(server_round, self.scenario.deletion.batch_every)

    def deletions_at(self, server_round: int) -> dict[int, list[int]]:
        """Unlearning passes due this round, by site: every pending request, in the policy's rounds
        (every round under ``immediate``, every ``batch_every`` rounds under ``batched``, never under ``retrain``)."""
        self.accept(server_round)
        if not (self.policy.unlearns and self._acts(server_round)):
            return {}
        return {site: list(rids) for site, rids in self.pending.items() if rids}

    def withdrawals_at(self, server_round: int) -> dict[int, list[int]]:
        """Accepted requests whose sites have not yet confirmed dropping the rows, by site."""
        self.accept(server_round)
        return {site: list(rids) for site, rids in self.withdrawing.items() if rids}

    def withdrawn(self, site: int, rids: Iterable[int]) -> None:
        """The site confirmed it dropped these requests' rows from its pool."""
        for rid in rids:
            if rid in self.withdrawing.get(site, []):
                self.withdrawing[site].remove(rid)

    def unlearned(self, site: int, rids: Iterable[int]) -> None:
        """The site reported its unlearning pass for these requests applied (so their rows are gone too)."""
        rids = list(rids)
        for rid in rids:
            if rid in self.pending.get(site, []):
                self.pending[site].remove(rid)
        self.withdrawn(site, rids)

    def resets_at(self, server_round: int) -> list[int]:
        """Under the ``retrain`` policy, in its rounds, the pending requests a reset of the global model
        honours now (they are no longer pending); ``[]`` when no reset is due."""
        self.accept(server_round)
        if not (self.policy.resets and self._acts(server_round)):
            return []
        covered = sorted(rid for rids in self.pending.values() for rid in rids)
        self.pending = {}
        return covered

    def state(self) -> dict[str, Any]:
        """The plan's progress, as JSON-able data (for checkpoints)."""

        def by_site(d: dict[int, list[int]]) -> dict[str, list[int]]:
            return {str(k): list(v) for k, v in sorted(d.items()) if v}

        return {
            "accepted": sorted(self.accepted),
            "pending": by_site(self.pending),
            "withdrawing": by_site(self.withdrawing),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Put back a :meth:`state`."""
        self.accepted = {int(r) for r in state["accepted"]}
        self.pending = {int(k): [int(r) for r in v] for k, v in state["pending"].items()}
        self.withdrawing = {int(k): [int(r) for r in v] for k, v in state["withdrawing"].items()}
