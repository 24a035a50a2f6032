"""A generated, learnable stand-in for a dermoscopy dataset, for fast CPU runs and tests.

Each image is a skin-coloured background with one lesion at a random position,
scale and orientation, plus pixel noise. Benign lesions are smooth regular
ellipses of a light brown; malignant ones have an irregular border, a darker,
blue-grey shifted colour and a high-frequency texture. The class-conditional
feature ranges overlap and a few cases are atypical (drawn with the other
class's appearance), so a small CNN learns it quickly but cannot reach 100 %.
Same uint8 NHWC RGB format as the MedMNIST archives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .specs import SIZES, DataError
from .splits import BinaryDataset, DataProvenance, ImageSplit

__all__ = ["SyntheticSpec", "make_synthetic"]

ATYPICAL_SHARE = 0.06
"""Share of images drawn with the other class's appearance (caps attainable accuracy)."""

_PIXELS_PER_CHUNK = (
    1 << 21
)  # pixels rendered together: bounds the float32 scratch planes (8 MiB each)
_SKIN = np.array([0.86, 0.69, 0.58], dtype=np.float32)
_BENIGN_COLOUR = np.array([0.62, 0.44, 0.32], dtype=np.float32)
_MALIGNANT_COLOUR = np.array([0.30, 0.24, 0.30], dtype=np.float32)


@dataclass(frozen=True)
class SyntheticSpec:
    """Settings of the synthetic dataset.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Images per split (each >= 1).
    size : int
        Image side in pixels, one of 28, 64, 128, 224.
    prevalence : float
        Share of malignant images in every split, in (0, 1); each split holds
        exactly ``round(prevalence * n)`` malignant images.
    seed : int
        Seed of the generator; the same spec always gives the same images.
    """

    n_train: int = 2000
    n_val: int = 400
    n_test: int = 800
    size: int = 28
    prevalence: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise DataError(f"synthetic {name} must be an integer >= 1, got {value!r}")
        if self.size not in SIZES:
            raise DataError(
                f"synthetic size must be one of {', '.join(map(str, SIZES))}, got {self.size!r}"
            )
        if not 0.0 < float(self.prevalence) < 1.0:
            raise DataError(f"synthetic prevalence must be in (0, 1), got {self.prevalence!r}")

    def describe(self) -> str:
        """One-line description for provenance notes."""
        return (
            f"synthetic lesions: train/val/test {self.n_train}/{self.n_val}/{self.n_test}, "
            f"{self.size}px, prevalence {self.prevalence}, seed {self.seed}, atypical share {ATYPICAL_SHARE}"
        )


class _Draws:
    """Per-image parameters of a chunk of ``b`` images, as (B, 1, 1) float32 arrays drawn from ``rng``."""

    def __init__(self, looks_malignant: np.ndarray, rng: np.random.Generator) -> None:
        self.b = looks_malignant.shape[0]
        self.m = looks_malignant.astype(np.float32)[:, None, None]  # (B, 1, 1)
        self.rng = rng

    def uniform(self, lo: float, hi: float) -> np.ndarray:
        return self.rng.uniform(lo, hi, (self.b, 1, 1)).astype(np.float32)

    def between(
        self, lo_benign: float, hi_benign: float, lo_mal: float, hi_mal: float
    ) -> np.ndarray:
        """Class-conditional uniform draw; the two ranges overlap."""
        lo = lo_benign + (lo_mal - lo_benign) * self.m
        hi = hi_benign + (hi_mal - hi_benign) * self.m
        return lo + (hi - lo) * self.rng.random((self.b, 1, 1), dtype=np.float32)


def _lesion_mask(draw: _Draws, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """The lesion's soft mask (B, H, W) in [0, 1]: an ellipse whose border is modulated by angular harmonics."""
    # Geometry: an ellipse at a random centre, radius, aspect and orientation (same ranges for both classes).
    cx, cy = draw.uniform(-0.3, 0.3), draw.uniform(-0.3, 0.3)
    radius, aspect, theta = (
        draw.uniform(0.30, 0.55),
        draw.uniform(0.7, 1.0),
        draw.uniform(0.0, np.pi),
    )
    cos_r, sin_r = np.cos(theta) / radius, np.sin(theta) / radius
    dx, dy = xx - cx, yy - cy  # (B, 1, W), (B, H, 1)
    u = dx * cos_r + dy * sin_r
    v = (dy * cos_r - dx * sin_r) / aspect
    phi = np.arctan2(v, u)
    u *= u
    v *= v
    u += v
    rho = np.sqrt(u, out=u)

    # Border: radius modulated by angular harmonics; malignant borders are irregular.
    irregular = draw.between(0.0, 0.08, 0.12, 0.32)
    border = np.ones_like(rho)
    for k in (3, 5):
        wave = phi * np.float32(k)
        wave += draw.uniform(0.0, 2 * np.pi)
        np.cos(wave, out=wave)
        wave *= irregular * draw.uniform(0.5, 1.0)
        border += wave
    # mask = sigmoid((border - rho) / softness), as 0.5 + 0.5 tanh(...)
    border -= rho
    border *= np.float32(0.5 / 0.08)
    mask = np.tanh(border, out=border)
    mask *= 0.5
    mask += 0.5
    return mask


def _lesion_weight(
    draw: _Draws, xx: np.ndarray, yy: np.ndarray, mask: np.ndarray, size: int
) -> np.ndarray:
    """Texture inside the lesion: a high-frequency grating plus speckle, stronger when malignant, times ``mask``."""
    strength = draw.between(0.0, 0.08, 0.15, 0.45)
    freq = draw.uniform(10.0, 16.0) * np.float32(np.pi * (size / 28.0) ** 0.5)
    alpha = draw.uniform(0.0, np.pi)
    texture = (xx * (freq * np.cos(alpha)) + draw.uniform(0.0, 2 * np.pi)) + yy * (
        freq * np.sin(alpha)
    )
    np.sin(texture, out=texture)
    texture *= 0.7 * strength
    speckle = draw.rng.random((draw.b, size, size), dtype=np.float32)
    speckle *= 1.7 * strength
    texture += speckle
    texture += 1.0 - 0.85 * strength  # (1 + texture), speckle centred
    texture *= mask  # lesion weight with texture
    return texture


def _paint(
    draw: _Draws, xx: np.ndarray, yy: np.ndarray, mask: np.ndarray, texture: np.ndarray
) -> np.ndarray:
    """Colour: benign light brown, malignant darker and shifted to blue-grey; skin with a soft shading; noise."""
    b, size = draw.b, mask.shape[-1]
    rng = draw.rng
    shift = draw.between(0.0, 0.5, 0.5, 1.0)[..., None]  # (B, 1, 1, 1)
    lesion = _BENIGN_COLOUR + (_MALIGNANT_COLOUR - _BENIGN_COLOUR) * shift
    lesion = (lesion + 0.04 * rng.standard_normal((b, 1, 1, 3), dtype=np.float32)) * np.float32(
        255.0
    )
    skin = (_SKIN + 0.05 * rng.standard_normal((b, 1, 1, 3), dtype=np.float32)) * np.float32(255.0)
    background = xx * draw.uniform(-0.08, 0.08) + (yy * draw.uniform(-0.08, 0.08) + 1.0)  # shading
    background *= 1.0 - mask
    noise = rng.random((b, size, size), dtype=np.float32)
    noise -= 0.5
    noise *= np.float32(0.12 * 255.0)  # uniform pixel noise, sd about 9 grey levels
    noise += 0.5  # rounds on the uint8 cast

    out = np.empty((b, size, size, 3), dtype=np.uint8)
    channel = np.empty((b, size, size), dtype=np.float32)
    for c in range(3):
        np.multiply(background, skin[..., c], out=channel)
        channel += texture * lesion[..., c]
        channel += noise
        np.clip(channel, 0.0, 255.0, out=channel)
        out[..., c] = channel
    return out


def _render(looks_malignant: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render ``len(looks_malignant)`` images, uint8 (B, size, size, 3).

    Per-image parameters are (B, 1, 1) arrays, folded into small broadcasts so
    that only about fifty passes touch the (B, size, size) planes. The draws
    from ``rng`` come in a fixed order: shape, texture, then colour.
    """
    draw = _Draws(looks_malignant, rng)
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    xx, yy = axis[None, None, :], axis[None, :, None]
    mask = _lesion_mask(draw, xx, yy)
    texture = _lesion_weight(draw, xx, yy, mask, size)
    return _paint(draw, xx, yy, mask, texture)


def _make_split(n: int, spec: SyntheticSpec, stream: int) -> ImageSplit:
    rng = np.random.default_rng([spec.seed, stream])
    n_malignant = round(spec.prevalence * n)
    labels = np.zeros(n, dtype=np.int64)
    labels[:n_malignant] = 1
    labels = rng.permutation(labels)
    looks_malignant = labels.astype(bool) ^ (rng.random(n) < ATYPICAL_SHARE)
    images = np.empty((n, spec.size, spec.size, 3), dtype=np.uint8)
    per_chunk = max(1, _PIXELS_PER_CHUNK // (spec.size * spec.size))
    for start in range(0, n, per_chunk):
        stop = min(n, start + per_chunk)
        images[start:stop] = _render(looks_malignant[start:stop], spec.size, rng)
    label_tensor = torch.from_numpy(labels)
    return ImageSplit(
        images=torch.from_numpy(images), labels=label_tensor, source_labels=label_tensor.clone()
    )


@lru_cache(maxsize=4)
def _cached(spec: SyntheticSpec) -> BinaryDataset:
    train = _make_split(spec.n_train, spec, 0)
    val = _make_split(spec.n_val, spec, 1)
    test = _make_split(spec.n_test, spec, 2)
    provenance = DataProvenance(
        dataset="synthetic",
        size=spec.size,
        path=None,
        md5=None,
        official_md5=None,
        official=False,
        synthetic=True,
        note=spec.describe(),
    )
    return BinaryDataset(
        name="synthetic", size=spec.size, train=train, val=val, test=test, provenance=provenance
    )


def make_synthetic(spec: SyntheticSpec) -> BinaryDataset:
    """Generate the synthetic binary lesion dataset.

    Parameters
    ----------
    spec : SyntheticSpec
        Split sizes, image size, prevalence and seed.

    Returns
    -------
    BinaryDataset
        Named ``"synthetic"``; ``source_labels`` equal ``labels``. The same
        spec returns the same (shared) tensors within a process.
    """
    if not isinstance(spec, SyntheticSpec):
        raise DataError(f"make_synthetic expects a SyntheticSpec, got {type(spec).__name__}")
    return _cached(spec)


def clear_synthetic_cache() -> None:
    """Forget the synthetic datasets generated in this process (:func:`fedunlearn.data.clear_cache` calls it)."""
    _cached.cache_clear()
