"""Model registry: every model takes float NCHW images in [0, 1] and returns 2 logits.

Owns the networks (``resnet.py``, ``small_cnn.py``), the input normalisation
they carry inside (``normalize.py``) and the name -> factory registry whose
names are the scenario's ``model`` values (``registry.py``).
"""

from fedunlearn.models.registry import (
    MODEL_NAMES,
    MODEL_REGISTRY,
    build_model,
    get_model_factory,
    register_model,
)

__all__ = ["MODEL_NAMES", "MODEL_REGISTRY", "build_model", "get_model_factory", "register_model"]
