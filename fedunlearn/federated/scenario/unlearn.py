"""The ``deletion.unlearn`` settings: overrides of an unlearning method's hyperparameters.

Its own module so that the deletion section and the guard's retry settings
(:mod:`~fedunlearn.federated.scenario.guard`) share it without an import cycle.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_serializer

from fedunlearn.engine.loop import LR_SCHEDULES as EPOCH_LR_SCHEDULES
from fedunlearn.federated.scenario.sections import _Model
from fedunlearn.unlearning import INGREDIENTS, PRESET_NAMES, UnlearnConfig, resolve_config


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
