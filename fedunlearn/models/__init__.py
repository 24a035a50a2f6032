"""Model registry: every model takes float NCHW images in [0, 1] and returns 2 logits."""

from fedunlearn.models.registry import MODEL_NAMES, build_model, get_model_factory

__all__ = ["MODEL_NAMES", "build_model", "get_model_factory"]
