"""Unlearning methods (registry) and SalUn's saliency mask."""

from fedunlearn.unlearning.methods import (
    METHOD_NAMES,
    MethodSpec,
    UnlearnConfig,
    UnlearnResult,
    UnlearnTask,
    get_method,
    resolve_config,
    unlearn,
)
from fedunlearn.unlearning.saliency import mask_fraction, saliency_mask

__all__ = [
    "METHOD_NAMES",
    "MethodSpec",
    "UnlearnConfig",
    "UnlearnResult",
    "UnlearnTask",
    "get_method",
    "mask_fraction",
    "resolve_config",
    "saliency_mask",
    "unlearn",
]
