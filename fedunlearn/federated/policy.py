"""Deletion policies: when erasure requests arrive and when they are honoured.

Two pure pieces, shared by the server and every hospital (each side expands the
same scenario with the same functions, so request ids agree without sending
them around):

- :func:`draw_requests`: the requests drawn by the seeded random process
  ``deletion.stochastic``; the scenario's effective request list
  (:func:`fedunlearn.federated.scenario.expand_requests`, behind
  ``scenario.effective_requests``) is the explicit ``deletion.requests``
  followed by these, and a request's id is its index in that list;
- :data:`POLICIES`: ``immediate``, ``batched`` and ``retrain``, what a
  federation does with a request once it is accepted (see :class:`PolicySpec`).

Whatever the policy, from the round a request is accepted the requesting site
never trains on its rows again (they are withdrawn at once, METHOD.md section 6);
the policies differ in when the model is made to forget them and at what cost.
:func:`policy_cost` sums that cost from a run's metrics table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from flwr.app import ArrayRecord

from fedunlearn.engine.device import prepare_model
from fedunlearn.federated.transport import to_arrays
from fedunlearn.models import build_model
from fedunlearn.registry import Registry
from fedunlearn.seeding import numpy_rng, stream_seed

if TYPE_CHECKING:  # annotations only: the scenario package imports this module for the policy names
    import pandas as pd  # (and a site's process need not load pandas)

    from fedunlearn.federated.scenario import Scenario, StochasticRequests


@dataclass(frozen=True)
class PolicySpec:
    """What a federation does with an accepted deletion request.

    Attributes
    ----------
    name, description
        Registry name and one line for the reference.
    unlearns
        The requesting site runs the scenario's unlearning method (``deletion.method``).
    resets
        The server resets the global model to a fresh (seeded) initialisation and
        federated training restarts on retain data only.
    batched
        The policy acts every ``deletion.batch_every`` rounds (on everything pending)
        instead of in the round of each request.
    """

    name: str
    description: str
    unlearns: bool
    resets: bool
    batched: bool

    def acts_at(self, server_round: int, batch_every: int) -> bool:
        """Whether pending requests are honoured (unlearned or reset) in ``server_round``."""
        return not self.batched or server_round % batch_every == 0


POLICY_REGISTRY: Registry[PolicySpec] = Registry("deletion policy")


def register_policy(spec: PolicySpec, *, force: bool = False) -> PolicySpec:
    """Register ``spec`` under its name."""
    return POLICY_REGISTRY.add(spec.name, spec, force=force)


for _spec in (
    PolicySpec(
        "immediate",
        "the site unlearns each request in the round it arrives",
        unlearns=True,
        resets=False,
        batched=False,
    ),
    PolicySpec(
        "batched",
        "rows are withdrawn on arrival; sites unlearn everything pending every batch_every rounds",
        unlearns=True,
        resets=False,
        batched=True,
    ),
    PolicySpec(
        "retrain",
        "rows are withdrawn on arrival; every batch_every rounds with new requests the global model "
        "is reset to a fresh initialisation and federated training restarts on retain data",
        unlearns=False,
        resets=True,
        batched=True,
    ),
):
    register_policy(_spec)
POLICIES: Mapping[str, PolicySpec] = POLICY_REGISTRY.entries
POLICY_NAMES: tuple[str, ...] = POLICY_REGISTRY.names


def get_policy(name: str) -> PolicySpec:
    """The policy registered as ``name``; the error lists the valid names."""
    return POLICY_REGISTRY.get(name)


def draw_requests(
    process: StochasticRequests, *, seed: int, rounds: int, n_sites: int
) -> list[dict[str, Any]]:
    """Concrete requests drawn by a seeded Bernoulli process, in (round, site) order.

    Every (round, site) pair in the window gets its own random stream, seeded by
    ``seed``, ``process.seed``, the round and the site, and always draws the same
    three numbers (accept?, fraction, forget seed). Hence the draw is a pure
    function of the scenario, and it is *coupled* across what-if variants: a
    higher ``rate`` only adds requests, and a wider window keeps the requests of
    the rounds it shares.

    Returns
    -------
    list of dict
        Keyword arguments of :class:`~fedunlearn.federated.scenario.ForgetRequest`.
    """
    end = process.end_round if process.end_round is not None else rounds
    sites = process.sites if process.sites is not None else tuple(range(n_sites))
    lo, hi = process.fraction.min, process.fraction.max
    out: list[dict[str, Any]] = []
    for server_round in range(process.start_round, end + 1):
        for site in sorted(sites):
            rng = numpy_rng(seed, "requests", process.seed, server_round, site)
            accept, u, forget_seed = rng.random(), rng.random(), int(rng.integers(2**31 - 1))
            if accept < process.rate:
                fraction = min(hi, max(lo, round(lo + (hi - lo) * u, 4)))
                out.append(
                    {
                        "round": server_round,
                        "site": site,
                        "fraction": fraction,
                        "mode": process.mode,
                        "seed": forget_seed,
                    }
                )
    return out


def reset_seed(scenario: Scenario, server_round: int) -> int:
    """Seed of the fresh global model of a ``retrain`` reset in ``server_round``."""
    return stream_seed(scenario.seed, "reset-model", server_round)


def fresh_global_arrays(scenario: Scenario, server_round: int) -> ArrayRecord:
    """A freshly initialised global model (the ``retrain`` policy's reset), seeded by scenario and round."""
    model = build_model(scenario.model, seed=reset_seed(scenario, server_round))
    return to_arrays(prepare_model(model, torch.device("cpu")))


def policy_cost(table: pd.DataFrame, phases: Iterable[str] = ("train", "unlearn")) -> pd.DataFrame:
    """Compute spent by a run: seconds and images processed, by kind of work.

    ``train`` counts the local training rounds only: should a reply to an
    unlearning message also be logged under phase ``train``, its (round, site)
    pair is counted once, under ``unlearn``. The retrain policy's cost is the
    training it restarts, so it shows under ``train``.

    Parameters
    ----------
    table
        A run's long metrics table (``metrics.csv``).

    Returns
    -------
    pandas.DataFrame
        Columns ``work, seconds, images``, one row per entry of ``phases``.
    """
    wanted = table[table["metric"].isin(["seconds", "images"])]
    unlearn_keys = set(
        zip(
            wanted.loc[wanted["phase"] == "unlearn", "round"],
            wanted.loc[wanted["phase"] == "unlearn", "site"],
        )
    )
    rows = []
    for phase in phases:
        sub = wanted[wanted["phase"] == phase]
        if phase == "train" and unlearn_keys:
            sub = sub[[(r, s) not in unlearn_keys for r, s in zip(sub["round"], sub["site"])]]
        totals = sub.groupby("metric")["value"].sum()
        rows.append(
            {
                "work": phase,
                "seconds": float(totals.get("seconds", 0.0)),
                "images": float(totals.get("images", 0.0)),
            }
        )
    import pandas as pd

    return pd.DataFrame(rows, columns=["work", "seconds", "images"])
