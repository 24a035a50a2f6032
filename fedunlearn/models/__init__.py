"""Model registry: every model takes float NCHW images in [0, 1] and returns 2 logits."""

from fedunlearn.models.registry import (
    MODEL_NAMES,
    MODEL_REGISTRY,
    build_model,
    get_model_factory,
    register_model,
)

__all__ = ["MODEL_NAMES", "MODEL_REGISTRY", "build_model", "get_model_factory", "register_model"]
