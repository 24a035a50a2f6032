"""The study subcommands of the command line: ``fedunlearn centralized`` and ``fedunlearn ablation``.

Their parsers and the thin functions that turn parsed options into
:mod:`fedunlearn.study` calls; :mod:`fedunlearn.cli` adds them to its parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_data_root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-root",
        default=None,
        help="MedMNIST root holding the .npz files (default: $FEDUNLEARN_DATA_ROOT, else ~/.medmnist)",
    )


_INGREDIENT_ARGS = (
    "preset",
    "schedule",
    "forget_labels",
    "loss_weighting",
    "cra_scope",
    "mask_freeze",
)


def _unlearn_overrides(args: argparse.Namespace) -> dict[str, dict[str, object]]:
    """Per-method unlearning overrides from --unlearn-epochs, --preset and the ingredient options."""
    shared: dict[str, object] = {
        k: getattr(args, k) for k in _INGREDIENT_ARGS if getattr(args, k) is not None
    }
    if args.unlearn_epochs:
        shared["epochs"] = args.unlearn_epochs
    return {m: dict(shared) for m in args.methods if m != "retrain"} if shared else {}


def _add_ingredients(p: argparse.ArgumentParser) -> None:
    from fedunlearn.unlearning import INGREDIENTS, PRESET_NAMES

    p.add_argument(
        "--preset",
        default=None,
        choices=PRESET_NAMES,
        help="ingredients as the paper describes the methods (paper, the default) or as the study's public "
        "code behaves on MedMNIST (study-code); the options below win over it (METHOD.md section 4b)",
    )
    for name, values in INGREDIENTS.items():
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            choices=values,
            help=f"{name} of every method that reads it (default: the preset's, else {values[0]})",
        )


def _cmd_ablation(args: argparse.Namespace) -> int:
    from fedunlearn.engine import TrainConfig
    from fedunlearn.metrics import RiskCosts
    from fedunlearn.progress import Progress
    from fedunlearn.study.ablation import AblationConfig, run_ablation

    cfg = AblationConfig(
        dataset=args.dataset,
        size=args.size,
        model=args.model,
        seeds=tuple(args.seeds),
        ratios=tuple(args.ratios),
        methods=tuple(dict.fromkeys(args.methods)),
        presets=tuple(dict.fromkeys(args.presets)),
        forget_mode=args.forget_mode,
        data_root=args.data_root,
        device=args.device,
        mia_variant=args.mia,
        train=TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size),
        unlearn_epochs=args.unlearn_epochs,
        costs=RiskCosts(c_fp=args.c_fp, c_fn=args.c_fn),
        trace=args.trace,
        holdout=tuple(args.holdout) if args.holdout else None,
    )
    try:
        run_ablation(cfg, Path(args.out), Progress(quiet=args.quiet), report_only=args.report_only)
    except KeyboardInterrupt:
        print(
            f"fedunlearn: interrupted; finished units are kept in {Path(args.out) / 'units'}: "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    print((Path(args.out) / "ablation.md").read_text())
    print(Path(args.out) / "ablation.csv")
    return 0


def _cmd_centralized(args: argparse.Namespace) -> int:
    from fedunlearn.engine import TrainConfig
    from fedunlearn.metrics import RiskCosts
    from fedunlearn.progress import Progress
    from fedunlearn.study import StudyConfig, run_study

    cfg = StudyConfig(
        dataset=args.dataset,
        size=args.size,
        model=args.model,
        forget_ratio=args.forget_ratio,
        forget_mode=args.forget_mode,
        seeds=tuple(args.seeds),
        methods=tuple(args.methods),
        data_root=args.data_root,
        device=args.device,
        mia_variant=args.mia,
        train=TrainConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size),
        unlearn_overrides=_unlearn_overrides(args),
        costs=RiskCosts(c_fp=args.c_fp, c_fn=args.c_fn),
        holdout=tuple(args.holdout) if args.holdout else None,
    )
    run_study(cfg, Path(args.out), Progress(quiet=args.quiet))
    print((Path(args.out) / "summary.md").read_text())
    return 0


def _add_training(p: argparse.ArgumentParser) -> None:
    """Training, cost and MIA options shared by both study commands."""
    from fedunlearn.metrics import MIA_VARIANTS

    p.add_argument(
        "--epochs", type=int, default=15, help="epochs of the original model and of Retrain"
    )
    p.add_argument(
        "--unlearn-epochs", type=int, default=None, help="override every method's epochs"
    )
    p.add_argument(
        "--lr", type=float, default=0.1, help="learning rate of the original model and of Retrain"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--c-fp", type=float, default=1.0, help="Global Risk II cost of a false positive"
    )
    p.add_argument(
        "--c-fn", type=float, default=20.0, help="Global Risk II cost of a false negative"
    )
    p.add_argument("--mia", default="confidence", choices=MIA_VARIANTS)
    p.add_argument(
        "--holdout",
        type=float,
        nargs=2,
        default=None,
        metavar=("VAL", "TEST"),
        help="carve val and test splits (these fractions of the rows, stratified by class, one fixed draw) from "
        "a file that has only a train split, such as the real PathMNIST subset; results say so",
    )


def add_study_commands(sub) -> None:  # type: ignore[no-untyped-def]
    """Add ``centralized`` and ``ablation`` to the subparsers ``sub`` of the main parser."""
    _add_centralized(sub)
    _add_ablation(sub)


def _add_centralized(sub) -> None:  # type: ignore[no-untyped-def]
    from fedunlearn.data import DATASET_NAMES, FORGET_MODES, SIZES
    from fedunlearn.models import MODEL_NAMES
    from fedunlearn.unlearning import METHOD_NAMES

    cen = sub.add_parser(
        "centralized", help="single-site study: original model, every method, one forget set"
    )
    cen.add_argument("--dataset", default="dermamnist", choices=DATASET_NAMES)
    cen.add_argument("--size", type=int, default=28, choices=SIZES)
    cen.add_argument("--model", default="small-cnn", choices=MODEL_NAMES)
    cen.add_argument("--forget-ratio", type=float, default=0.2)
    cen.add_argument("--forget-mode", default="random", choices=FORGET_MODES)
    cen.add_argument("--seeds", type=int, nargs="+", default=[0])
    cen.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), choices=METHOD_NAMES)
    _add_training(cen)
    cen.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    cen.add_argument("--out", required=True)
    cen.add_argument("--quiet", action="store_true")
    _add_ingredients(cen)
    add_data_root(cen)
    cen.set_defaults(func=_cmd_centralized)


def _add_ablation(sub) -> None:  # type: ignore[no-untyped-def]
    from fedunlearn.data import DATASET_NAMES, FORGET_MODES, SIZES
    from fedunlearn.models import MODEL_NAMES
    from fedunlearn.unlearning import METHOD_NAMES

    abl = sub.add_parser(
        "ablation",
        help="what each ingredient of the study's code does to clinical risk (resumable)",
        description="Train the original model once per seed (cached in OUT/originals/), then run each method under "
        "the presets paper and study-code and under each preset with one ingredient toggled (schedule, "
        "forget_labels, loss_weighting, cra_scope, mask_freeze), for every seed and forget ratio. Writes "
        "OUT/ablation.csv (paired effect of each ingredient on test FNR, Risk II, BAC, UBAC and MIA efficacy: mean "
        "and 95 %% bootstrap CI over seeds), OUT/methods.csv, OUT/ablation.md and OUT/ablation.png. Rerunning the "
        "same command resumes: finished (seed, ratio, setting, method) units are kept.",
    )
    abl.add_argument("--dataset", default="dermamnist", choices=DATASET_NAMES)
    abl.add_argument("--size", type=int, default=28, choices=SIZES)
    abl.add_argument("--model", default="small-cnn", choices=MODEL_NAMES)
    abl.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    abl.add_argument(
        "--ratios",
        type=float,
        nargs="+",
        default=[0.2, 0.5],
        help="forget ratios (run in this order)",
    )
    abl.add_argument("--forget-mode", default="random", choices=FORGET_MODES)
    abl.add_argument(
        "--methods",
        nargs="+",
        default=["retrain", "ft", "rl", "salun", "salun-cra"],
        choices=METHOD_NAMES,
        help="methods (retrain is required: the reference)",
    )
    abl.add_argument(
        "--presets", nargs="+", default=["paper", "study-code"], choices=["paper", "study-code"]
    )
    _add_training(abl)
    abl.add_argument(
        "--trace",
        action="store_true",
        help="record mean P(malignant) of test/forget malignant/benign rows after every phase of every "
        "epoch (OUT/trace.csv; costs two predictions per phase)",
    )
    abl.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    abl.add_argument("--out", required=True, help="output directory (created; reused to resume)")
    abl.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: rewrite the tables and the figure from the units finished so far",
    )
    abl.add_argument("--quiet", action="store_true")
    add_data_root(abl)
    abl.set_defaults(func=_cmd_ablation)
