"""The ``deletion.guard`` section: the server's clinical-risk guard on every erasure (off by default).

After an unlearning pass is adopted, the server judges the new global model
against the global model of the round before the erasure (the *reference*) on
the server's **validation** split, never the test split. When the guarded
metric is worse than the reference by more than ``tolerance`` the guard trips
and the server tries ``actions`` in order (``retry``, ``recover``,
``escalate``); the model logic is :mod:`fedunlearn.federated.guard`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fedunlearn.federated.scenario.errors import allowed_extra, bad
from fedunlearn.federated.scenario.sections import _Model
from fedunlearn.federated.scenario.unlearn import UnlearnSettings
from fedunlearn.unlearning import METHOD_NAMES

GUARD_METRICS = ("fnr", "risk_2", "bac")
GUARD_ACTIONS = ("retry", "recover", "escalate")
HIGHER_IS_WORSE = {"fnr": True, "risk_2": True, "bac": False}


class GuardRetry(_Model):
    """One safer setting the requesting site redoes its pass with, from the pre-erasure global model."""

    method: Literal[METHOD_NAMES] | None = Field(  # type: ignore[valid-type]
        None, description="unlearning method of the retried pass (null: `deletion.method`)"
    )
    unlearn: UnlearnSettings = Field(
        UnlearnSettings(),
        description="overrides of that method's hyperparameters (e.g. a smaller `lr`, fewer `epochs`); "
        "nothing is inherited from `deletion.unlearn`",
    )

    @model_validator(mode="after")
    def _fits(self) -> GuardRetry:
        if self.method is not None:
            try:
                self.unlearn.unlearn_config(self.method)
            except (TypeError, ValueError) as err:
                raise bad(
                    "unlearn",
                    self.unlearn.model_dump(),
                    f"settings accepted by method {self.method} ({err})",
                ) from None
        return self


class GuardRecover(_Model):
    """Recovery rounds: federated training of every site on its retain data only, class-weighted."""

    max_rounds: int = Field(
        3, ge=1, le=100, description="most recovery rounds before the guard gives up on `recover`"
    )
    malignant_weight: float = Field(
        1.0,
        gt=0,
        le=100,
        description="extra factor on the malignant class's weight in the class-balanced loss (1: balanced only)",
    )
    lr: float | None = Field(
        None, gt=0, description="local learning rate (null: the round's training rate)"
    )
    local_epochs: int | None = Field(
        None, ge=1, description="local epochs of a recovery round (null: `training.local_epochs`)"
    )


class GuardSection(_Model):
    """The risk guard on every erasure: when the adopted model is clinically worse than before, act."""

    enabled: bool = Field(False, description="guard every erasure round (off by default)")
    metric: Literal[GUARD_METRICS] = Field(  # type: ignore[valid-type]
        "fnr",
        description="guarded metric of the global model at threshold 0.5: `fnr` and `risk_2` may not rise, "
        "`bac` may not fall, by more than `tolerance`",
    )
    tolerance: float = Field(
        0.02,
        ge=0,
        le=1000,
        description="how much worse than the reference (the global model of the round before the erasure) the "
        "metric may get, in its own units",
    )
    data: Literal["server-val", "site-test"] = Field(
        "server-val",
        description="data the guard judges on: the server's validation split, or the confusion counts pooled over "
        "the sites' local test shards (drawn from the validation split); never the test split",
    )
    actions: tuple[Literal[GUARD_ACTIONS], ...] = Field(  # type: ignore[valid-type]
        ("recover",),
        description="what the server does when the guard trips, tried in order until the metric is back within "
        "tolerance: `retry` (the site redoes its pass with each `retry` setting), `recover` (recovery rounds), "
        "`escalate` (reset the global model and retrain, the `retrain` policy for that request; last if listed)",
        json_schema_extra=allowed_extra(
            "a list of distinct actions out of retry, recover, escalate; escalate last"
        ),
    )
    retry: tuple[GuardRetry, ...] = Field(
        (), description="settings `retry` tries, in order (needed when `retry` is an action)"
    )
    recover: GuardRecover = Field(GuardRecover(), description="settings of `recover`")
    relearn_margin: float = Field(
        5.0,
        ge=0,
        le=100,
        description="after recovery the site verifies its forget set again: a forget-set MIA efficacy (in %) that "
        "falls by more than this many points below its value right after the pass (towards the original model's) "
        "means the recovery re-learnt the forget set, itself a guard failure (the next action, e.g. `escalate`, "
        "follows)",
    )

    @model_validator(mode="after")
    def _actions_can_end(self) -> GuardSection:
        acts = list(self.actions)
        if not acts and self.enabled:
            raise bad(
                "actions",
                acts,
                "at least one of retry, recover, escalate while the guard is enabled",
            )
        if len(set(acts)) != len(acts):
            raise bad("actions", acts, "distinct actions (each is tried once)")
        if "escalate" in acts and acts[-1] != "escalate":
            raise bad(
                "actions",
                acts,
                "escalate last (a reset ends the request; an action after it could never run)",
            )
        if "retry" in acts and not self.retry:
            raise bad(
                "retry",
                [],
                "at least one setting while `retry` is an action (e.g. [{method: salun-cra}])",
            )
        return self

    def worsening(self, reference: float, value: float) -> float:
        """How much worse ``value`` is than ``reference`` (positive: worse)."""
        return value - reference if HIGHER_IS_WORSE[self.metric] else reference - value

    def within(self, reference: float, value: float) -> bool:
        """Whether ``value`` is within tolerance of ``reference`` (an undefined metric never trips)."""
        return not self.worsening(reference, value) > self.tolerance
