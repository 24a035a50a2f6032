"""Model weights <-> Flower records."""

from __future__ import annotations

from flwr.app import ArrayRecord
from torch import nn


def to_arrays(model: nn.Module) -> ArrayRecord:
    """Every tensor of the state dict (weights and BatchNorm statistics), on CPU."""
    return ArrayRecord({k: v.detach().cpu() for k, v in model.state_dict().items()})


def load_arrays(model: nn.Module, arrays: ArrayRecord) -> nn.Module:
    """Load ``arrays`` into ``model`` in place; dtypes follow the model (aggregation may make them float64)."""
    state = arrays.to_torch_state_dict()
    own = model.state_dict()
    model.load_state_dict({k: v.to(own[k].dtype) if k in own else v for k, v in state.items()})
    return model
