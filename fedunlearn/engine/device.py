"""Device choice and mixed precision, in one place (no hard-coded ``.cuda()``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def resolve_device(preference: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA when present, else CPU; ``"cpu"``/``"cuda[:i]"`` are taken as given.

    Raises
    ------
    ValueError
        If CUDA is asked for but absent.
    """
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {preference!r} asked for but CUDA is not available; use --device cpu or auto"
        )
    return device


@contextlib.contextmanager
def autocast(device: torch.device, enabled: bool) -> Iterator[None]:
    """bf16 autocast on CUDA when ``enabled``; a no-op on CPU (fp32 there)."""
    if enabled and device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def prepare_model(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move ``model`` to ``device``; channels_last on CUDA, where convolutions prefer it."""
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model
