"""Model registry and the architectures of METHOD.md section 2."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedunlearn.models import MODEL_NAMES, build_model, get_model_factory
from fedunlearn.models.normalize import Normalize

# The CIFAR-style ResNet-18 has 11,173,962 parameters with a 10-way head (a
# well-known count); a 2-way head drops 8 rows of 512 weights + 1 bias.
RESNET18_2WAY_PARAMS = 11_173_962 - 8 * (512 + 1)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_both_models() -> None:
    assert {"resnet18", "small-cnn"} <= set(MODEL_NAMES)
    for name in ("resnet18", "small-cnn"):
        assert callable(get_model_factory(name))


@pytest.mark.parametrize("call", [get_model_factory, build_model])
def test_unknown_model_error_lists_valid_names(call) -> None:
    with pytest.raises(ValueError) as err:
        call("resnet50")
    message = str(err.value)
    assert "resnet50" in message
    for name in MODEL_NAMES:
        assert name in message


@pytest.mark.parametrize("name", ["resnet18", "small-cnn"])
@pytest.mark.parametrize("size", [28, 64])
def test_forward_maps_images_to_two_logits(name: str, size: int) -> None:
    model = build_model(name, seed=0).eval()
    x = torch.rand(3, 3, size, size)
    with torch.no_grad():
        out = model(x)
    assert out.shape == (3, 2)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_num_classes_and_in_channels_are_honoured() -> None:
    model = build_model("small-cnn", num_classes=3, in_channels=1, seed=0).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 3)


def test_resnet18_is_cifar_style() -> None:
    model = build_model("resnet18", seed=0)
    assert model.conv1.kernel_size == (3, 3)
    assert model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert n_params(model) == RESNET18_2WAY_PARAMS
    # Four stages of two basic blocks, 64/128/256/512 channels.
    for stage, planes in zip(
        (model.layer1, model.layer2, model.layer3, model.layer4), (64, 128, 256, 512)
    ):
        assert len(stage) == 2
        assert stage[-1].conv2.out_channels == planes
    assert model.fc.in_features == 512 and model.fc.out_features == 2


@pytest.mark.parametrize(("size", "final"), [(64, 8), (28, 4)])
def test_resnet18_downsamples_only_three_times(size: int, final: int) -> None:
    # A 3x3 stride-1 stem and no max-pool: only the stride-2 blocks of stages 2-4 halve the map.
    model = build_model("resnet18", seed=0).eval()
    shapes: dict[str, tuple[int, ...]] = {}
    for name in ("bn1", "layer4"):
        getattr(model, name).register_forward_hook(
            lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape))
        )
    with torch.no_grad():
        model(torch.rand(1, 3, size, size))
    assert shapes["bn1"] == (1, 64, size, size)
    assert shapes["layer4"] == (1, 512, final, final)


@pytest.mark.parametrize("name", ["resnet18", "small-cnn"])
def test_normalisation_lives_inside_the_model(name: str) -> None:
    model = build_model(name, seed=0)
    assert any(isinstance(m, Normalize) for m in model.modules())
    state = model.state_dict()
    assert "normalize.mean" in state and "normalize.std" in state


@pytest.mark.parametrize("name", ["resnet18", "small-cnn"])
def test_build_model_seed_is_reproducible(name: str) -> None:
    a, b, c = build_model(name, seed=3), build_model(name, seed=3), build_model(name, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_seeded_build_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    build_model("small-cnn", seed=7)
    assert torch.equal(torch.rand(4), expected)
