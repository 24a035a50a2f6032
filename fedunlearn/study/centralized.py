"""Single-site study: train the original model, run every method on one forget set.

For each seed: select the forget set, train the original model on the whole
training split (keeping the epoch with the best validation balanced
accuracy), then run each unlearning method from it (Retrain from scratch) and
evaluate test, forget and retain sets. Writes ``metrics.csv`` (long format),
``summary.md`` and ``manifest.json`` into the output directory.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fedunlearn.data import (
    BinaryDataset,
    ForgetSpec,
    SyntheticSpec,
    carve_holdout,
    load_dataset,
    select_forget,
)
from fedunlearn.engine import Phase, TrainConfig, predict, resolve_device, train
from fedunlearn.engine.device import prepare_model
from fedunlearn.engine.losses import WeightedCE, class_weights
from fedunlearn.evaluation import EvalSet, predict_sets, split_metrics, unlearning_report
from fedunlearn.io import (
    atomic_write_csv,
    atomic_write_text,
    build_manifest,
    now_iso,
    write_manifest,
)
from fedunlearn.metrics import RiskCosts
from fedunlearn.models import build_model
from fedunlearn.progress import Progress
from fedunlearn.seeding import stream_seed, torch_generator
from fedunlearn.study.summary import summary_markdown
from fedunlearn.unlearning import METHOD_NAMES, UnlearnTask, get_method, resolve_config, unlearn


def study_data(
    dataset: str,
    size: int,
    root: str | None,
    synthetic: SyntheticSpec | None,
    holdout: tuple[float, float] | None,
) -> BinaryDataset:
    """The study's dataset; with ``holdout`` (val, test fractions), val and test carved from a file that has
    only a train split (:func:`~fedunlearn.data.carve_holdout`; its provenance note says so)."""
    data = load_dataset(dataset, size, root, synthetic=synthetic)
    return carve_holdout(data, *holdout) if holdout is not None else data


@dataclass(frozen=True)
class StudyConfig:
    """Everything one study run depends on, parsed once at the edge."""

    dataset: str = "dermamnist"
    size: int = 28
    model: str = "small-cnn"
    forget_ratio: float = 0.2
    forget_mode: str = "random"
    seeds: tuple[int, ...] = (0,)
    methods: tuple[str, ...] = METHOD_NAMES
    data_root: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    unlearn_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    costs: RiskCosts = field(default_factory=RiskCosts)
    mia_variant: str = "confidence"
    device: str = "auto"
    synthetic: SyntheticSpec | None = None
    holdout: tuple[float, float] | None = None  # val, test fractions carved from a train-only file

    def __post_init__(self) -> None:
        for m in self.methods:
            get_method(m)
        ForgetSpec(self.forget_ratio, self.forget_mode)  # validates
        if not self.seeds:
            raise ValueError("at least one seed is needed")


def _train_original(data: BinaryDataset, cfg: StudyConfig, seed: int, device: torch.device):
    train_split = data.train
    model = prepare_model(build_model(cfg.model, seed=stream_seed(seed, "model-init")), device)
    all_rows = torch.arange(len(train_split))
    phases = [
        Phase(
            "train",
            train_split.images,
            train_split.labels,
            all_rows,
            WeightedCE(class_weights(train_split.labels)),
        )
    ]
    select = None
    if data.val is not None:
        val = data.val

        def select(m: torch.nn.Module) -> float:
            return split_metrics(predict(m, val.images, val.labels, device=device), cfg.costs)[
                "bac"
            ]

    stats = train(
        model,
        phases,
        cfg.train,
        device=device,
        generator=torch_generator(seed, "original-train"),
        select=select,
    )
    return model, stats


def _rows(
    seed: int, method: str, report: Mapping[str, Mapping[str, float]], seconds: float
) -> list[dict]:
    rows = [
        {"seed": seed, "method": method, "split": split, "metric": metric, "value": value}
        for split, metrics in report.items()
        for metric, value in metrics.items()
    ]
    rows.append(
        {"seed": seed, "method": method, "split": "all", "metric": "seconds", "value": seconds}
    )
    return rows


def _forget_retain(
    cfg: StudyConfig, labels: torch.Tensor, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's forget rows of the training split and the rows kept (the retain set)."""
    forget = select_forget(
        labels, ForgetSpec(cfg.forget_ratio, cfg.forget_mode, seed=stream_seed(seed, "forget"))
    )
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[forget] = False
    return forget, torch.nonzero(keep).flatten()


def _run_seed(
    cfg: StudyConfig, data: BinaryDataset, seed: int, device: torch.device, progress: Progress
) -> list[dict]:
    """One seed: its forget set, the original model, then every method from it; the long rows."""
    test, train_split = data.split("test"), data.train
    forget, retain = _forget_retain(cfg, train_split.labels, seed)
    sets = {
        "test": EvalSet(test.images, test.labels),
        "forget": EvalSet(train_split.images, train_split.labels, forget),
        "retain": EvalSet(train_split.images, train_split.labels, retain),
    }
    progress(
        f"seed {seed}: training the original {cfg.model} on {len(train_split)} images "
        f"({cfg.train.epochs} epochs); forget set {len(forget)} ({cfg.forget_mode})"
    )
    original, stats = _train_original(data, cfg, seed, device)
    report = unlearning_report(
        predict_sets(original, sets, device=device),
        cfg.costs,
        cfg.mia_variant,
        mia_seed=stream_seed(seed, "mia"),
    )
    rows = _rows(seed, "original", report, stats.seconds)
    progress(
        f"seed {seed}: original  TBAC {report['test']['tbac']:.3f}  FNR {report['test']['fnr']:.3f}  "
        f"{stats.seconds:.0f}s"
    )
    task = UnlearnTask(train_split.images, train_split.labels, forget, retain)
    for method in cfg.methods:
        result = unlearn(
            method,
            copy.deepcopy(original),
            task,
            device=device,
            seed=stream_seed(seed, "unlearn"),
            config=resolve_config(method, cfg.unlearn_overrides.get(method)),
            fresh_model=lambda seed=seed: prepare_model(
                build_model(cfg.model, seed=stream_seed(seed, "retrain-init")), device
            ),
            retrain_config=cfg.train,
        )
        report = unlearning_report(
            predict_sets(result.model, sets, device=device),
            cfg.costs,
            cfg.mia_variant,
            mia_seed=stream_seed(seed, "mia"),
        )
        rows += _rows(seed, method, report, result.seconds)
        progress(
            f"seed {seed}: {method:<9} TBAC {report['test']['tbac']:.3f}  FNR {report['test']['fnr']:.3f}  "
            f"UBAC {report['forget']['ubac']:.3f}  MIA {report['forget']['mia_efficacy']:.1f}  "
            f"{result.seconds:.0f}s"
        )
    return rows


def run_study(cfg: StudyConfig, out: Path, progress: Progress | None = None) -> pd.DataFrame:
    """Run the study and write its three files into ``out``; returns the long table."""
    progress = progress or Progress()
    started = now_iso()
    device = resolve_device(cfg.device)
    data = study_data(cfg.dataset, cfg.size, cfg.data_root, cfg.synthetic, cfg.holdout)
    rows: list[dict] = []
    for seed in cfg.seeds:
        rows += _run_seed(cfg, data, seed, device, progress)
    table = pd.DataFrame(rows, columns=["seed", "method", "split", "metric", "value"])
    table.insert(0, "dataset", data.name)
    out = Path(out)
    atomic_write_csv(out / "metrics.csv", table)
    atomic_write_text(out / "summary.md", summary_markdown(table, cfg, data.provenance.to_dict()))
    write_manifest(
        out,
        build_manifest(
            kind="centralized-study",
            complete=True,
            started=started,
            finished=now_iso(),
            seeds=list(cfg.seeds),
            device=str(device),
            device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            config=_jsonable(cfg),
            data=data.provenance.to_dict(),
        ),
    )
    return table


def _jsonable(cfg: StudyConfig) -> dict[str, Any]:
    out = asdict(cfg)
    out["seeds"] = list(cfg.seeds)
    out["methods"] = list(cfg.methods)
    return out
