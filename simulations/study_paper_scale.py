"""The ingredient ablation at the study's scale, on the Python API.

CIFAR-style ResNet-18 at 64 px on DermaMNIST, every method (retrain ft ga rl
salun salun-cra), forget 20 % and 50 %, seeds 0-4, presets ``paper`` and
``study-code`` plus every one-ingredient toggle of each preset (README, "Does
the study's claim reproduce?"). For a GPU: CPUs cannot run it at this scale.
Resumable: rerun the same command after an interruption.

    python simulations/study_paper_scale.py DATA_ROOT [OUT]            # DATA_ROOT/dermamnist_64.npz
    python simulations/study_paper_scale.py --dry-run DATA_ROOT [OUT]  # print the plan, run nothing

Writes ``OUT/ablation.csv``, ``methods.csv``, ``ablation.md`` and
``ablation.png`` (see ``fedunlearn ablation --help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import fedunlearn as fu

REPO = Path(__file__).resolve().parent.parent
METHODS = ("retrain", "ft", "ga", "rl", "salun", "salun-cra")
PRESETS = ("paper", "study-code")
# Rates for a CIFAR-style ResNet-18 at 64 px, bf16, channels-last, on one H100/H200-class GPU:
# about 8000 training images/s; evaluation and the SVC attack about 2 s per unit, the tables
# rewritten after every unit about 3 s. An A100 is about 1.5x slower, a V100 about 3x.
IMAGES_PER_S = 8000.0
N_TRAIN, N_VAL = 7007, 1003  # DermaMNIST's training and validation splits


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and the settings, run nothing"
    )
    p.add_argument("data_root", metavar="DATA_ROOT", help="folder holding dermamnist_64.npz")
    p.add_argument(
        "out",
        metavar="OUT",
        nargs="?",
        type=Path,
        default=REPO / "runs/paper-scale/ablation",
        help="ablation folder (default: runs/paper-scale/ablation of the repository)",
    )
    p.add_argument("--epochs", type=int, default=15, help="original model and Retrain (default 15)")
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:i, cpu or auto")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    return p.parse_args(argv)


def ablation_config(args: argparse.Namespace) -> fu.AblationConfig:
    """The settings of ``fedunlearn ablation --size 64 --model resnet18`` with every method and both presets."""
    return fu.AblationConfig(
        dataset="dermamnist",
        size=64,
        model="resnet18",
        seeds=tuple(args.seeds),
        ratios=(0.2, 0.5),
        methods=METHODS,
        presets=PRESETS,
        data_root=str(Path(args.data_root).resolve()),
        device=args.device,
        train=fu.TrainConfig(epochs=args.epochs, lr=0.1, batch_size=256),
    )


def expected_hours(units: int, seeds: int, epochs: int) -> float:
    """Wall time on one H100/H200-class GPU: the originals, then each unit at its slower kind."""
    unlearn = (
        10 * N_TRAIN / IMAGES_PER_S + 5.0
    )  # 10 epochs (retain + forget rows) + evaluation + tables
    retrain = (
        epochs * 0.65 * N_TRAIN / IMAGES_PER_S + 5.0
    )  # Retrain on the retain set (80 % or 50 %)
    original = epochs * N_TRAIN / IMAGES_PER_S + epochs * N_VAL / (3 * IMAGES_PER_S)
    return (seeds * original + units * max(unlearn, retrain)) / 3600


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = ablation_config(args)
    units = len(fu.ablation_plan(cfg))
    hours = expected_hours(units, len(cfg.seeds), args.epochs)
    print(
        f"{units} units (+ {len(cfg.seeds)} original models); expected wall time on one H100/H200-class GPU: "
        f"about {hours:.1f} h (A100 about {1.5 * hours:.1f} h, V100 about {3 * hours:.1f} h)"
    )
    print(
        f"the same as: fedunlearn ablation --dataset dermamnist --size 64 --model resnet18 --device {args.device} "
        f"--methods {' '.join(METHODS)} --presets {' '.join(PRESETS)} "
        f"--seeds {' '.join(map(str, cfg.seeds))} --ratios 0.2 0.5 --epochs {args.epochs} "
        f"--data-root {cfg.data_root} --out {args.out}"
    )
    if args.dry_run:
        return 0
    data = Path(cfg.data_root) / "dermamnist_64.npz"
    if not data.is_file():
        raise fu.FedunlearnError(
            f"{data} not found; fetch it with: fedunlearn data fetch --dataset dermamnist --size 64 "
            f"--data-root {cfg.data_root}"
        )
    fu.ablation(cfg, args.out, quiet=False)
    print((args.out / "ablation.md").read_text())
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (fu.FedunlearnError, ValueError) as exc:
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
