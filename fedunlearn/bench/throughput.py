"""(a) Local training throughput: the engine vs a bare PyTorch loop vs the usual MedMNIST pipeline.

The three variants train the same freshly seeded small CNN for one epoch over
the same images, batch 256, SGD (lr 0.1, momentum 0.9, weight decay 5e-4,
constant rate), class-weighted cross-entropy, with the same augmentation
(4-pixel zero-padded random crop + horizontal flip):

- ``engine``: :func:`fedunlearn.engine.train` with one :class:`Phase` over the
  uint8 NHWC split (batches gathered by index, vectorised augmentation);
- ``bare``: a plain loop over float NCHW tensors already in memory, the same
  augmentation written with plain torch ops (pad, index gather, flip) per batch;
- ``bare-noaug``: the same loop without augmentation (the compute ceiling);
- ``medmnist``: ``medmnist.DermaMNIST`` (a PIL image per item), a per-item
  PIL/numpy crop + flip + to-tensor transform, and
  ``DataLoader(batch_size=256, shuffle=True, num_workers=0)``. Where the
  DermaMNIST file is absent the same pipeline runs over a PIL-per-item
  Dataset built here from the synthetic arrays (the variant name says which).

torchvision is never imported (it fails beside the CPU torch build here).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedunlearn.bench.bare import PAD, bare_epoch, bench_config
from fedunlearn.bench.table import BenchTable, interleaved, median
from fedunlearn.data import SyntheticSpec, get_dataset_spec, load_dataset
from fedunlearn.engine import Phase, iterate_batches, train
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.models import build_model

BATCH = 256
DERMA_TRAIN = 7007
"""Images in DermaMNIST's official train split (the synthetic stand-in has as many)."""


@dataclass(frozen=True)
class ThroughputData:
    """The train split as uint8 NHWC + labels, and how the MedMNIST-style Dataset is built."""

    images: torch.Tensor
    labels: torch.Tensor
    medmnist_root: Path | None  # a root holding dermamnist.npz, or None for the built-here Dataset
    source: str


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    c = bench_config(BATCH)
    return torch.optim.SGD(
        model.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay
    )


def load_throughput_data(data_root: Path | None, n_images: int | None) -> ThroughputData:
    """Real DermaMNIST 28 px when ``data_root`` holds it, else synthetic data of its size."""
    if data_root is not None and (Path(data_root) / "dermamnist.npz").is_file():
        import warnings

        from fedunlearn.data import UnofficialDataWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnofficialDataWarning)
            split = load_dataset("dermamnist", 28, data_root).train
        root: Path | None = Path(data_root)
        source = "dermamnist-28"
    else:
        split = load_dataset(
            "synthetic", synthetic=SyntheticSpec(n_train=n_images or DERMA_TRAIN, n_val=2, n_test=2)
        ).train
        root, source = None, "synthetic-28"
    n = min(len(split), n_images or len(split))
    return ThroughputData(split.images[:n], split.labels[:n], root, source)


def _step(
    model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor
) -> None:
    loss = F.cross_entropy(model(x), y, weight=w)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# --------------------------------------------------------------------------- the MedMNIST pipeline
class PilCropFlipToTensor:
    """Per item: zero-pad 4 px, random crop, random horizontal flip (PIL), then to a float CHW tensor.

    What ``torchvision.transforms.Compose([RandomCrop(size, padding=4),
    RandomHorizontalFlip(), ToTensor()])`` does, written with PIL and numpy.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, img):  # PIL.Image -> Tensor
        from PIL import Image, ImageOps

        w, h = img.size
        padded = ImageOps.expand(img, border=PAD, fill=0)
        dx, dy = (int(v) for v in self.rng.integers(0, 2 * PAD + 1, 2))
        img = padded.crop((dx, dy, dx + w, dy + h))
        if self.rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        arr = np.asarray(img, dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


class PilPerItemDataset(torch.utils.data.Dataset):
    """MedMNIST's Dataset contract (a PIL image per item, then ``transform``) over arrays in memory."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform, target_transform) -> None:
        self.images, self.labels = images, labels
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), self.target_transform(
            self.labels[index]
        )


def _binary_target(label: np.ndarray) -> int:
    return int(get_dataset_spec("dermamnist").binarise(label)[0])


def medmnist_loader(data: ThroughputData, seed: int) -> tuple[torch.utils.data.DataLoader, str]:
    """The usual MedMNIST pipeline over ``data``'s rows; returns it and the variant's name."""
    transform = PilCropFlipToTensor(seed)
    ds: torch.utils.data.Dataset | None = None
    name = "pil-per-item Dataset (built here)+DataLoader"
    if data.medmnist_root is not None:
        import medmnist  # imports torch.utils.data and PIL only (no torchvision)

        ds = medmnist.DermaMNIST(
            split="train",
            root=str(data.medmnist_root),
            size=28,
            transform=transform,
            target_transform=_binary_target,
        )
        try:
            n_file = len(ds)  # medmnist asserts the official count here
        except AssertionError:
            ds, name = (
                None,
                "pil-per-item Dataset (built here; medmnist.DermaMNIST refused the file)+DataLoader",
            )
        else:
            name = "medmnist.DermaMNIST+DataLoader"
            if len(data.labels) < n_file:
                ds = torch.utils.data.Subset(ds, range(len(data.labels)))
    if ds is None:
        ds = PilPerItemDataset(data.images.numpy(), data.labels.numpy(), transform, int)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        ds, batch_size=BATCH, shuffle=True, num_workers=0, generator=g
    ), name


def medmnist_epoch(model: nn.Module, data: ThroughputData, seed: int) -> int:
    loader, _ = medmnist_loader(data, seed)
    opt, w = _sgd(model), class_weights(data.labels)
    model.train()
    n = 0
    for x, y in loader:
        _step(model, opt, x, y.long(), w)
        n += len(y)
    return n


# --------------------------------------------------------------------------- the benchmark
def engine_epoch(model: nn.Module, data: ThroughputData, seed: int) -> int:
    phase = Phase(
        "train",
        data.images,
        data.labels,
        torch.arange(len(data.labels)),
        WeightedCE(class_weights(data.labels)),
    )
    stats = train(
        model,
        [phase],
        bench_config(BATCH),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(seed),
    )
    return stats.images


def _data_only(fn: Callable[[], int]) -> Callable[[], float]:
    """A measurement: images/s of one pass over the batches alone (no model)."""

    def run() -> float:
        t0 = time.perf_counter()
        n = fn()
        return n / (time.perf_counter() - t0)

    return run


def _engine_batches(data: ThroughputData, seed: int) -> int:
    g = torch.Generator().manual_seed(seed)
    idx = torch.arange(len(data.labels))
    return sum(
        len(y)
        for _, y, _ in iterate_batches(
            data.images,
            data.labels,
            idx,
            BATCH,
            device=torch.device("cpu"),
            generator=g,
            shuffle=True,
            augment=True,
        )
    )


def _loader_batches(data: ThroughputData, seed: int) -> int:
    loader, _ = medmnist_loader(data, seed)
    return sum(len(y) for _, y in loader)


def _timed(fn: Callable[[nn.Module], int]) -> Callable[[], float]:
    """A measurement: images/s of one epoch of ``fn`` on a freshly seeded small CNN."""

    def run() -> float:
        model = build_model("small-cnn", seed=0)
        t0 = time.perf_counter()
        n = fn(model)
        return n / (time.perf_counter() - t0)

    return run


def run_throughput(table: BenchTable, data: ThroughputData, reps: int) -> None:
    """Interleaved epochs of every variant; medians of images/s and the two ratios."""
    x_float = (
        data.images.permute(0, 3, 1, 2).float().div(255.0).contiguous()
    )  # the bare loop's input, made once
    _, medmnist_name = medmnist_loader(data, 0)
    variants = [
        ("engine", _timed(lambda m: engine_epoch(m, data, 1))),
        ("bare", _timed(lambda m: bare_epoch(m, x_float, data.labels, augment=True, seed=1))),
        (
            "bare-noaug",
            _timed(lambda m: bare_epoch(m, x_float, data.labels, augment=False, seed=1)),
        ),
        (medmnist_name, _timed(lambda m: medmnist_epoch(m, data, 1))),
    ]
    warm = ThroughputData(data.images[:BATCH], data.labels[:BATCH], None, data.source)
    engine_epoch(
        build_model("small-cnn", seed=0), warm, 0
    )  # first-call costs (allocator, kernels) off the clock
    bare_epoch(
        build_model("small-cnn", seed=0), x_float[:BATCH], data.labels[:BATCH], augment=True, seed=0
    )
    variant = f"{data.source}, {len(data.labels)} images"
    found = interleaved(variants, reps)
    _training_rows(table, found, variant, medmnist_name, reps, len(data.labels))
    _data_rows(table, data, variant, medmnist_name, reps)
    table.note(
        f"train_throughput: {data.source} = "
        + (
            "the DermaMNIST 28 px train split under --data-root"
            if data.medmnist_root is not None
            else "synthetic lesions of DermaMNIST's train size (no dermamnist.npz "
            "under --data-root), so the MedMNIST pipeline runs over a PIL-per-item Dataset built here"
        )
        + ". "
        "One epoch per measurement, variants interleaved (engine, bare, bare-noaug, MedMNIST) "
        f"{reps}x, median images/s; fresh small-cnn (seed 0) each time, batch {BATCH}, SGD, weighted CE, CPU. "
        "bare = plain torch loop over float NCHW tensors made once before timing, augmentation (4 px padded crop + "
        "flip) with plain torch ops per batch; bare-noaug skips it. MedMNIST = "
        f"{medmnist_name}, per-item PIL crop/flip + to-tensor, DataLoader(batch_size={BATCH}, shuffle=True, "
        "num_workers=0). data_pipeline: the same batches (shuffle + augmentation) produced and dropped, no model: "
        "what the loader costs on its own, which bounds the end-to-end ratio wherever the model is slow (CPU)."
    )


def _training_rows(
    table: BenchTable,
    found: dict[str, list[float]],
    variant: str,
    medmnist_name: str,
    reps: int,
    n_images: int,
) -> None:
    """images/s and seconds per epoch of every variant, and the engine's ratios to the others."""
    rate = {name: median(v) for name, v in found.items()}
    for name, _values in found.items():
        table.add("train_throughput", name, "images_per_s", rate[name], "images/s (median)")
        table.add(
            "train_throughput",
            name,
            "seconds_per_epoch",
            n_images / rate[name],
            "s (median)",
        )
    table.add(
        "train_throughput",
        variant,
        "train_vs_bare_ratio",
        rate["engine"] / rate["bare"],
        "x (engine / bare, same augmentation; target >= 0.9)",
    )
    table.add(
        "train_throughput",
        variant,
        "train_vs_bare_noaug_ratio",
        rate["engine"] / rate["bare-noaug"],
        "x (engine with augmentation / bare without)",
    )
    table.add(
        "train_throughput",
        variant,
        "train_vs_medmnist_loader_ratio",
        rate["engine"] / rate[medmnist_name],
        "x (engine / MedMNIST pipeline; target >= 3)",
    )
    table.add("train_throughput", variant, "repetitions", reps, "epochs per variant, interleaved")


def _data_rows(
    table: BenchTable, data: ThroughputData, variant: str, medmnist_name: str, reps: int
) -> None:
    """The data path alone (batches with augmentation, no model): engine vs the MedMNIST loader."""
    data_rates = {
        name: median(v)
        for name, v in interleaved(
            [
                ("engine iterate_batches", _data_only(lambda: _engine_batches(data, 2))),
                (medmnist_name, _data_only(lambda: _loader_batches(data, 2))),
            ],
            reps,
        ).items()
    }
    for name, r in data_rates.items():
        table.add(
            "data_pipeline", name, "images_per_s", r, "images/s (median, batches only, no model)"
        )
    table.add(
        "data_pipeline",
        variant,
        "data_vs_medmnist_loader_ratio",
        data_rates["engine iterate_batches"] / data_rates[medmnist_name],
        "x (batches with augmentation, no model)",
    )
