"""The deletion section of a scenario: requests, the stochastic request process, unlearning settings.

Split from :mod:`~fedunlearn.federated.scenario.sections` (the other sections)
because it is the one that grows with every deletion feature.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from fedunlearn.data import FORGET_MODES
from fedunlearn.engine.loop import LR_SCHEDULES as EPOCH_LR_SCHEDULES
from fedunlearn.federated.policy import POLICY_NAMES
from fedunlearn.federated.scenario.errors import allowed_extra, bad
from fedunlearn.federated.scenario.sections import _Model
from fedunlearn.unlearning import (
    INGREDIENTS,
    METHOD_NAMES,
    PRESET_NAMES,
    UnlearnConfig,
    resolve_config,
)

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


class UnlearnSettings(_Model):
    """Overrides of the unlearning method's own hyperparameters; a key left out keeps the method's default.

    Reads like a mapping of the keys that are set (``dict(settings)``), which is
    what :func:`fedunlearn.unlearning.resolve_config` takes.
    """

    epochs: int | None = Field(None, ge=1, description="unlearning epochs")
    lr: float | None = Field(None, gt=0, description="unlearning learning rate")
    momentum: float | None = Field(None, ge=0, lt=1, description="SGD momentum")
    weight_decay: float | None = Field(None, ge=0, description="SGD weight decay")
    batch_size: int | None = Field(None, ge=1, description="mini-batch size")
    augment: bool | None = Field(None, description="random flips and crops")
    lr_schedule: Literal[EPOCH_LR_SCHEDULES] | None = Field(
        None, description="learning-rate schedule"
    )  # type: ignore[valid-type]
    mask_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="share of weights SalUn's saliency mask keeps (`salun`, `salun-cra`)",
    )
    amp: bool | None = Field(None, description="bf16 autocast on CUDA")
    preset: Literal[PRESET_NAMES] | None = Field(  # type: ignore[valid-type]
        None,
        description="ingredient values of the method as the paper describes it (`paper`, the defaults) or as the "
        "study's public code behaves on MedMNIST (`study-code`); ingredients set here win (METHOD.md section 4b)",
    )
    schedule: Literal[INGREDIENTS["schedule"]] | None = Field(  # type: ignore[valid-type]
        None,
        description="`sequential`: each epoch a forget pass then a retain pass; `mixed`: one shuffled pass over "
        "both (`rl`, `salun`, `salun-cra`)",
    )
    forget_labels: Literal[INGREDIENTS["forget_labels"]] | None = Field(  # type: ignore[valid-type]
        None,
        description="labels of the forget rows under cross-entropy: drawn at random, or their true labels",
    )
    loss_weighting: Literal[INGREDIENTS["loss_weighting"]] | None = Field(  # type: ignore[valid-type]
        None,
        description="class-balanced cross-entropy (counted on the retain set) or plain cross-entropy",
    )
    cra_scope: Literal[INGREDIENTS["cra_scope"]] | None = Field(  # type: ignore[valid-type]
        None, description="forget rows that get SalUn-CRA's entropy term (`salun-cra`)"
    )
    mask_freeze: Literal[INGREDIENTS["mask_freeze"]] | None = Field(  # type: ignore[valid-type]
        None,
        description="masked-out weights put back after every step, or only their gradients masked "
        "(`salun`, `salun-cra`)",
    )

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def keys(self) -> list[str]:
        return [k for k in type(self).model_fields if getattr(self, k) is not None]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.keys())

    def unlearn_config(self, method: str) -> UnlearnConfig:
        """The engine config of ``method`` with these overrides (:func:`fedunlearn.unlearning.resolve_config`)."""
        return resolve_config(method, self)


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
