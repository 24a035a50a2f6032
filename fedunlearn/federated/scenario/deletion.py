"""The deletion section of a scenario: requests, the stochastic request process, unlearning settings.

Split from :mod:`~fedunlearn.federated.scenario.sections` (the other sections)
because it is the one that grows with every deletion feature.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from fedunlearn.data import FORGET_MODES
from fedunlearn.federated.policy import POLICY_NAMES
from fedunlearn.federated.scenario.errors import allowed_extra, bad
from fedunlearn.federated.scenario.guard import GuardSection
from fedunlearn.federated.scenario.sections import _Model
from fedunlearn.federated.scenario.unlearn import UnlearnSettings
from fedunlearn.unlearning import METHOD_NAMES

CONTROL = (
    "none"  # deletion.method of the counterfactual control arm: requests recorded, nothing erased
)
DELETION_METHODS: tuple[str, ...] = (*METHOD_NAMES, CONTROL)


class ForgetRequest(_Model):
    """One right-to-erasure request: in ``round`` hospital ``site`` asks to forget a share of its patients."""

    round: int = Field(ge=1, description="round in which the request arrives (<= training.rounds)")
    site: int = Field(ge=0, description="index of the requesting site (0 .. sites.count - 1)")
    fraction: float = Field(
        gt=0,
        le=1,
        description="share of the site's current training pool to forget "
        "(1.0: the whole hospital leaves)",
    )
    mode: Literal[FORGET_MODES] = Field(  # type: ignore[valid-type]
        "random",
        description="which rows: uniformly at random, class-balanced, malignant only or benign only",
    )
    seed: int = Field(
        0, description="seed of the row selection (mixed with the scenario seed and the site)"
    )


class FractionRange(_Model):
    """A forget fraction drawn uniformly from ``[min, max]``."""

    min: float = Field(gt=0, le=1, description="smallest fraction")
    max: float = Field(gt=0, le=1, description="largest fraction")

    @model_validator(mode="after")
    def _order(self) -> FractionRange:
        if self.min > self.max:
            raise bad("", {"min": self.min, "max": self.max}, "min <= max, both in (0, 1]")
        return self


class StochasticRequests(_Model):
    """Requests as a seeded random process.

    Each listed site, each round of the window, files one with probability ``rate``.
    """

    rate: float = Field(
        ge=0,
        le=1,
        description="probability that a site files a request in a round "
        "(independently per site and round)",
    )
    fraction: FractionRange = Field(
        description="forget fraction of each drawn request: a fixed number, or {min, max} drawn uniformly",
        json_schema_extra=allowed_extra(
            "a number in (0, 1], or a mapping {min, max} with 0 < min <= max <= 1",
            "number or mapping",
        ),
    )
    mode: Literal[FORGET_MODES] = Field(
        "random", description="which rows each drawn request forgets"
    )  # type: ignore[valid-type]
    start_round: int = Field(1, ge=1, description="first round in which requests may arrive")
    end_round: int | None = Field(
        None, ge=1, description="last round in which requests may arrive (null: training.rounds)"
    )
    sites: tuple[int, ...] | None = Field(
        None,
        description="site indices that may file requests (null: every site)",
        json_schema_extra=allowed_extra("a list of distinct site indices, or null"),
    )
    seed: int = Field(
        0,
        description="mixed with the top-level seed: another value draws other requests over the "
        "same data and partition",
    )

    @field_validator("fraction", mode="before")
    @classmethod
    def _fixed_fraction(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"min": v, "max": v}
        return v


class DeletionSection(_Model):
    """Deletion requests, how a site unlearns them, and the policy that decides when."""

    method: Literal[DELETION_METHODS] = Field(  # type: ignore[valid-type]
        "salun-cra",
        description="unlearning method of each site; `retrain` is Federated Retrain, the gold standard "
        "(every forget set removed from round 1; `policy` is then ignored); `none` is the counterfactual control "
        "arm: the requests are recorded and their forget sets tracked, but nothing is withdrawn or unlearned, so "
        "the run equals every method's run with the same seed up to the first request round",
    )
    integration: Literal["adopt", "aggregate"] = Field(
        "adopt",
        description="`adopt`: the unlearned model becomes the global model (only the unlearning sites work "
        "that round); `aggregate`: it is averaged with the other sites' updates",
    )
    policy: Literal[POLICY_NAMES] = Field(  # type: ignore[valid-type]
        "immediate",
        description="when accepted requests are honoured: `immediate` (unlearned in their round), "
        "`batched` (withdrawn at once, unlearned together every `batch_every` rounds), `retrain` (withdrawn at once; "
        "every `batch_every` rounds with new requests the global model is reset and training restarts)",
    )
    batch_every: int = Field(
        1,
        ge=1,
        description="period in rounds of `batched` and `retrain` (acts in rounds "
        "k, 2k, ...; ignored by `immediate`)",
    )
    unlearn: UnlearnSettings = Field(
        UnlearnSettings(), description="overrides of the method's hyperparameters"
    )
    requests: tuple[ForgetRequest, ...] = Field(
        (), description="explicit requests; their ids are their positions, 0, 1, ..."
    )
    stochastic: StochasticRequests | None = Field(
        None,
        description="requests drawn by a seeded random process, appended after the explicit ones (null: none)",
    )
    guard: GuardSection = Field(
        GuardSection(),
        description="the clinical-risk guard on every erasure (off by default; inert under `retrain` and `none`)",
    )

    @model_validator(mode="after")
    def _guard_fits(self) -> DeletionSection:
        g = self.guard
        if g.enabled and "retry" in g.actions and self.integration != "adopt":
            raise bad(
                "guard.actions",
                list(g.actions),
                "retry only under deletion.integration 'adopt' (the retried pass replaces the adopted one)",
            )
        return self

    @model_validator(mode="after")
    def _unlearn_fits_method(self) -> DeletionSection:
        if self.method == CONTROL:
            return self
        try:
            self.unlearn.unlearn_config(self.method)
        except (TypeError, ValueError) as err:
            raise bad(
                "unlearn",
                self.unlearn.model_dump(),
                f"settings accepted by method {self.method} ({err})",
            ) from None
        return self
