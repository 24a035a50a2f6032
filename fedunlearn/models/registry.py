"""Name -> model factory (:class:`fedunlearn.registry.Registry`), with an error that lists the valid names."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fedunlearn.models.resnet import resnet18
from fedunlearn.models.small_cnn import SmallCNN, small_cnn_gn
from fedunlearn.registry import Registry

ModelFactory = Callable[..., nn.Module]

MODEL_REGISTRY: Registry[ModelFactory] = Registry("model")
#: Decorator: ``@register_model("name")`` over a factory ``(num_classes=, in_channels=) -> nn.Module``.
register_model = MODEL_REGISTRY.register

MODEL_REGISTRY.add("resnet18", resnet18)
MODEL_REGISTRY.add("small-cnn", SmallCNN)
MODEL_REGISTRY.add("small-cnn-gn", small_cnn_gn)
MODEL_NAMES: tuple[str, ...] = MODEL_REGISTRY.names


def get_model_factory(name: str) -> ModelFactory:
    """Return the factory registered under ``name``.

    Raises
    ------
    ValueError
        If ``name`` is unknown; the message lists the valid names.
    """
    return MODEL_REGISTRY.get(name)


def build_model(
    name: str, *, num_classes: int = 2, in_channels: int = 3, seed: int | None = None
) -> nn.Module:
    """Build a freshly initialised model; ``seed`` makes the initial weights reproducible."""
    factory = get_model_factory(name)
    if seed is None:
        return factory(num_classes=num_classes, in_channels=in_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(num_classes=num_classes, in_channels=in_channels)
