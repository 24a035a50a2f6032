"""Training throughput on one GPU: the engine vs a bare PyTorch loop, same model, same card.

``python -m fedunlearn.bench.gpu [--model resnet18] [--sizes 28 64] [--images 7007] [--reps 3] [--out DIR]``

Both variants train a freshly seeded model for one epoch over the same
random uint8 images (content does not change the speed), batch 256, SGD,
class-weighted cross-entropy, 4-pixel padded crop + flip, bf16 autocast and
channels_last:

- ``engine``: :func:`fedunlearn.engine.train` (the images, at most 64 px, are
  copied to the GPU once and batches gathered and augmented there);
- ``bare``: float NCHW images already on the GPU, the same augmentation with
  plain torch ops per batch (:mod:`fedunlearn.bench.bare`).

Variants alternate ``reps`` times after one untimed epoch each; the medians
and their ratio are printed and written to ``DIR/gpu_throughput.csv``.
Needs torch alone (run by ``simulations/gpu_check.sh`` on a bare GPU image).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from fedunlearn.bench.bare import bare_epoch, bench_config, images_per_second
from fedunlearn.engine import Phase, resolve_device, train
from fedunlearn.engine.device import prepare_model
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.models import build_model

BATCH = 256


def throughput(
    model_name: str, size: int, n_images: int, reps: int, device: torch.device
) -> dict[str, float]:
    """Median images/s of ``engine`` and ``bare`` at ``size`` px, and their ratio."""
    g = torch.Generator().manual_seed(size)
    images = torch.randint(0, 256, (n_images, size, size, 3), dtype=torch.uint8, generator=g)
    labels = (torch.rand(n_images, generator=g) < 0.2).long()
    x_dev = images.to(device).permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    y_dev = labels.to(device)
    phase = Phase(
        "train", images, labels, torch.arange(n_images), WeightedCE(class_weights(labels))
    )

    def engine() -> int:
        model = prepare_model(build_model(model_name, seed=0), device)
        return train(
            model,
            [phase],
            bench_config(BATCH),
            device=device,
            generator=torch.Generator().manual_seed(1),
        ).images

    def bare() -> int:
        model = prepare_model(build_model(model_name, seed=0), device)
        return bare_epoch(model, x_dev, y_dev, augment=True, seed=1, batch_size=BATCH)

    (
        engine(),
        bare(),
    )  # untimed: cuDNN autotuning, allocator, the engine's resident copy of the images
    found: dict[str, list[float]] = {"engine": [], "bare": []}
    for _ in range(reps):
        found["engine"].append(images_per_second(engine, device))
        found["bare"].append(images_per_second(bare, device))
    out = {k: statistics.median(v) for k, v in found.items()}
    out["ratio"] = out["engine"] / out["bare"]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m fedunlearn.bench.gpu", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--model", default="resnet18")
    p.add_argument("--sizes", type=int, nargs="+", default=[28, 64])
    p.add_argument(
        "--images",
        type=int,
        default=7007,
        help="images per epoch (default: DermaMNIST's train split)",
    )
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="folder for gpu_throughput.csv")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"{args.model}, {args.images} images/epoch, batch {BATCH}, bf16 autocast + channels_last on CUDA; "
        f"device {name}; torch {torch.__version__}",
        flush=True,
    )
    rows = []
    print(f"{'size':>5} {'engine img/s':>13} {'bare img/s':>11} {'engine/bare':>12}")
    for size in args.sizes:
        r = throughput(args.model, size, args.images, args.reps, device)
        print(f"{size:>5} {r['engine']:>13.0f} {r['bare']:>11.0f} {r['ratio']:>12.3f}", flush=True)
        rows += [
            (
                "gpu_throughput",
                f"{args.model} {size}px",
                "engine_images_per_s",
                r["engine"],
                "images/s (median)",
            ),
            (
                "gpu_throughput",
                f"{args.model} {size}px",
                "bare_images_per_s",
                r["bare"],
                "images/s (median)",
            ),
            (
                "gpu_throughput",
                f"{args.model} {size}px",
                "train_vs_bare_ratio",
                r["ratio"],
                "x (target >= 0.9)",
            ),
        ]
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        with open(Path(args.out) / "gpu_throughput.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["benchmark", "variant", "metric", "value", "unit"])
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
