"""The single-site study of the README, on the Python API.

DermaMNIST 28 px, the small CNN, every method from one original model per
seed, forget 20 % and 50 %, seeds 0 1 2; the two forget ratios run at once,
one thread each (about 45 minutes on 2 cores):

    python simulations/study_single_site.py /tmp/derma runs/readme

Writes ``OUT/centralized-20/`` and ``OUT/centralized-50/`` (``metrics.csv``,
``summary.md``, ``manifest.json``) and prints both summaries.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import fedunlearn as fu

REPO = Path(__file__).resolve().parent.parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data_root", metavar="DATA_ROOT", help="folder holding dermamnist.npz")
    p.add_argument(
        "out",
        metavar="OUT",
        nargs="?",
        type=Path,
        default=REPO / "runs/readme",
        help="parent of the centralized-RR folders (default: runs/readme of the repository)",
    )
    p.add_argument("--ratios", type=float, nargs="+", default=[0.2, 0.5], help="forget ratios")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dataset", default="dermamnist", help="dermamnist, pathmnist or synthetic")
    p.add_argument("--methods", nargs="+", default=None, help="default: every method")
    p.add_argument("--epochs", type=int, default=15, help="original model and Retrain")
    p.add_argument("--unlearn-epochs", type=int, default=None, help="every other method's epochs")
    p.add_argument("--jobs", type=int, default=2, help="forget ratios run at once (processes)")
    return p.parse_args(argv)


def study_config(args: argparse.Namespace, ratio: float) -> fu.StudyConfig:
    """The settings of ``fedunlearn centralized --size 28 --model small-cnn`` at one forget ratio."""
    extra = {}
    if args.methods:
        extra["methods"] = tuple(args.methods)
    if args.unlearn_epochs:
        methods = extra.get("methods") or fu.StudyConfig().methods
        extra["unlearn_overrides"] = {
            m: {"epochs": args.unlearn_epochs} for m in methods if m != "retrain"
        }
    return fu.StudyConfig(
        dataset=args.dataset,
        size=28,
        model="small-cnn",
        forget_ratio=ratio,
        seeds=tuple(args.seeds),
        data_root=str(Path(args.data_root).resolve()),
        train=fu.TrainConfig(epochs=args.epochs, lr=0.1, batch_size=256),
        **extra,
    )


def run_ratio(args: argparse.Namespace, ratio: float) -> Path:
    """One forget ratio's study into ``OUT/centralized-RR``; its folder."""
    out = args.out / f"centralized-{round(ratio * 100)}"
    fu.centralized(study_config(args, ratio), out)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = "1"  # one thread per study; set before torch loads
    if args.jobs > 1:
        # a fresh interpreter per ratio ("spawn"): each gets its own torch with one thread
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            outs = list(pool.map(run_ratio, [args] * len(args.ratios), args.ratios))
    else:
        outs = [run_ratio(args, r) for r in args.ratios]
    for out in outs:
        print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (fu.FedunlearnError, ValueError) as exc:  # settings are checked with ValueError
        print(f"{Path(__file__).name}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
