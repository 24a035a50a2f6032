"""Unlearning methods (registry), their ingredient settings and presets, and SalUn's saliency mask."""

from fedunlearn.unlearning.ingredients import (
    INGREDIENT_NAMES,
    INGREDIENTS,
    PRESET_NAMES,
    PRESETS,
    RELEVANT,
    effective,
    preset_values,
)
from fedunlearn.unlearning.methods import (
    METHOD_NAMES,
    METHOD_REGISTRY,
    SETTING_NAMES,
    TRAIN_SETTINGS,
    MethodSpec,
    UnlearnConfig,
    UnlearnResult,
    UnlearnTask,
    get_method,
    register_method,
    resolve_config,
    unlearn,
)
from fedunlearn.unlearning.saliency import mask_fraction, saliency_mask

__all__ = [
    "INGREDIENTS",
    "INGREDIENT_NAMES",
    "METHOD_NAMES",
    "METHOD_REGISTRY",
    "PRESETS",
    "PRESET_NAMES",
    "RELEVANT",
    "SETTING_NAMES",
    "TRAIN_SETTINGS",
    "MethodSpec",
    "UnlearnConfig",
    "UnlearnResult",
    "UnlearnTask",
    "effective",
    "get_method",
    "mask_fraction",
    "preset_values",
    "register_method",
    "resolve_config",
    "saliency_mask",
    "unlearn",
]
