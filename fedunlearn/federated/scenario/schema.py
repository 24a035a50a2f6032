"""The scenario: one federated run, its sections, the checks that span them, its effective requests.

:class:`Scenario` is the top level of a scenario file. Its validator checks
what one section cannot check alone (a request's site against ``sites.count``,
its round against ``training.rounds``, ...), and
:attr:`Scenario.effective_requests` is the request list every party expands
the same way: the explicit ``deletion.requests``, then the ones the seeded
process ``deletion.stochastic`` draws (:func:`expand_requests`).
"""

from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from fedunlearn.federated.policy import draw_requests
from fedunlearn.federated.scenario.deletion import CONTROL, DeletionSection, ForgetRequest
from fedunlearn.federated.scenario.errors import allowed_extra, bad
from fedunlearn.federated.scenario.sections import (
    DataSection,
    DeploymentSection,
    EvaluationSection,
    FailuresSection,
    RaySection,
    SitesSection,
    TrainingSection,
    _Model,
)
from fedunlearn.models import MODEL_NAMES

_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,99}")  # prefix of the default run folder
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class Scenario(_Model):
    """One federated run: data, hospitals, training, deletions, evaluation, Ray."""

    name: str = Field(
        "scenario",
        description="run name (prefix of the default run directory)",
        json_schema_extra=allowed_extra(
            "letters, digits, '.', '_', '+', '=', '-', starting with a letter or "
            "digit, at most 100 characters"
        ),
    )
    seed: int = Field(
        0, description="seed of everything: data, partition, sampling, forget rows, drawn requests"
    )
    model: Literal[MODEL_NAMES] = Field("small-cnn", description="network")  # type: ignore[valid-type]
    device: str = Field(
        "auto",
        description="torch device of sites and server (auto: CUDA when present)",
        json_schema_extra=allowed_extra("auto, cpu, mps, cuda or cuda:N"),
    )
    data: DataSection = Field(DataSection(), description="which images")
    sites: SitesSection = Field(SitesSection(), description="the hospitals")
    training: TrainingSection = Field(TrainingSection(), description="federated training")
    deletion: DeletionSection = Field(DeletionSection(), description="deletion requests and policy")
    evaluation: EvaluationSection = Field(EvaluationSection(), description="clinical scoring")
    ray: RaySection = Field(RaySection(), description="Ray resources")
    failures: FailuresSection = Field(FailuresSection(), description="simulated site failures")
    deployment: DeploymentSection = Field(
        DeploymentSection(), description="how long the server waits for the hospitals"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _RUN_NAME.fullmatch(v):
            raise bad(
                "",
                v,
                "a name of letters, digits, '.', '_', '+', '=', '-', starting with a letter or digit, "
                "at most 100 characters (it names the run folder)",
            )
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE.match(v):
            raise bad("", v, "auto, cpu, mps, cuda or cuda:N")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        n, rounds = self.sites.count, self.training.rounds
        site_range = f"a site index in [0, {n - 1}] (sites.count is {n})"
        round_range = f"a round in [1, {rounds}] (training.rounds is {rounds})"
        for i, req in enumerate(self.deletion.requests):
            if req.site >= n:
                raise bad(f"deletion.requests[{i}].site", req.site, site_range)
            if req.round > rounds:
                raise bad(f"deletion.requests[{i}].round", req.round, round_range)
        sto = self.deletion.stochastic
        if sto is not None:
            for i, site in enumerate(sto.sites or ()):
                if not 0 <= site < n:
                    raise bad(f"deletion.stochastic.sites[{i}]", site, site_range)
            if sto.sites is not None and len(set(sto.sites)) != len(sto.sites):
                raise bad("deletion.stochastic.sites", list(sto.sites), "distinct site indices")
            if sto.start_round > rounds:
                raise bad("deletion.stochastic.start_round", sto.start_round, round_range)
            if sto.end_round is not None and not sto.start_round <= sto.end_round <= rounds:
                raise bad(
                    "deletion.stochastic.end_round",
                    sto.end_round,
                    f"a round in [{sto.start_round}, {rounds}] (from start_round to training.rounds) or null",
                )
        if self.deletion.policy != "immediate" and self.deletion.batch_every > rounds:
            raise bad(
                "deletion.batch_every",
                self.deletion.batch_every,
                f"an integer in [1, {rounds}] (training.rounds is {rounds}; a longer period never acts)",
            )
        for i, crash in enumerate(self.failures.crashes):
            if crash.site >= n:
                raise bad(f"failures.crashes[{i}].site", crash.site, site_range)
            if crash.round > rounds:
                raise bad(f"failures.crashes[{i}].round", crash.round, round_range)
        if self.failures.min_sites > n:
            raise bad(
                "failures.min_sites",
                self.failures.min_sites,
                f"an integer in [1, {n}] (sites.count is {n})",
            )
        if self.training.min_sites > n:
            raise bad(
                "training.min_sites",
                self.training.min_sites,
                f"an integer in [1, {n}] (sites.count is {n})",
            )
        return self

    @property
    def retrain(self) -> bool:
        """Federated Retrain: every forget set removed from round 1, no unlearning pass."""
        return self.deletion.method == "retrain"

    @property
    def control(self) -> bool:
        """The counterfactual control arm: requests recorded and forget sets tracked, nothing erased."""
        return self.deletion.method == CONTROL

    @property
    def effective_requests(self) -> tuple[ForgetRequest, ...]:
        """Explicit requests then the ones drawn by ``deletion.stochastic``; a request id is its index here."""
        return _effective_requests(self)


@functools.lru_cache(maxsize=32)
def _effective_requests(scenario: Scenario) -> tuple[ForgetRequest, ...]:
    """Cached by value (a frozen scenario hashes its fields), so a copy with other values expands anew."""
    return expand_requests(scenario)


def expand_requests(scenario: Scenario) -> tuple[ForgetRequest, ...]:
    """The effective request list: explicit ``deletion.requests``, then the drawn ones.

    A request's id is its index here, on the server and on every site alike.
    Use ``scenario.effective_requests`` (cached) rather than calling this in loops.
    """
    d = scenario.deletion
    if d.stochastic is None:
        return tuple(d.requests)
    drawn = draw_requests(
        d.stochastic,
        seed=scenario.seed,
        rounds=scenario.training.rounds,
        n_sites=scenario.sites.count,
    )
    return tuple(d.requests) + tuple(ForgetRequest(**r) for r in drawn)
