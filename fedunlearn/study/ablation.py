"""``fedunlearn ablation``: what each ingredient of METHOD.md section 4b does to clinical risk.

For every seed the original model is trained once on the whole training split
and cached in ``OUT/originals/`` (a rerun reloads it); each forget ratio then
draws its forget set, and every unit of :mod:`fedunlearn.study.plan` starts
from that original. Every finished unit is one file in ``OUT/units/``, so an
interrupted ablation resumes where it stopped. At the end (and after every
unit, but for the figure) ``OUT/results.csv`` (long format),
``OUT/ablation.csv`` (paired effects with bootstrap CIs), ``OUT/methods.csv``,
``OUT/ablation.md`` and ``OUT/ablation.png`` are rewritten from the unit
files; ``report_only`` rewrites them without running anything.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fedunlearn.data import BinaryDataset, ForgetSpec, SyntheticSpec, select_forget
from fedunlearn.engine import TrainConfig, resolve_device
from fedunlearn.engine.device import prepare_model
from fedunlearn.errors import FedunlearnError
from fedunlearn.evaluation import EvalSet, predict_sets, unlearning_report
from fedunlearn.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    build_manifest,
    now_iso,
    write_manifest,
)
from fedunlearn.metrics import RiskCosts
from fedunlearn.models import build_model
from fedunlearn.progress import Progress
from fedunlearn.seeding import stream_seed
from fedunlearn.study.centralized import _train_original, study_data
from fedunlearn.study.effects import write_outputs
from fedunlearn.study.plan import Entry, plan_entries, unit_slug, work_order
from fedunlearn.study.trace import Tracer
from fedunlearn.study.units import load_units, save_unit
from fedunlearn.unlearning import PRESET_NAMES, UnlearnTask, get_method, resolve_config, unlearn

DEFAULT_METHODS: tuple[str, ...] = ("retrain", "ft", "rl", "salun", "salun-cra")
#: Settings a rerun into the same folder must share (seeds, ratios, methods, presets may grow).
_FIXED = (
    "dataset",
    "size",
    "model",
    "forget_mode",
    "train",
    "unlearn_epochs",
    "costs",
    "mia_variant",
    "trace",
    "holdout",
)


@dataclass(frozen=True)
class AblationConfig:
    """Everything an ablation depends on, parsed once at the edge."""

    dataset: str = "dermamnist"
    size: int = 28
    model: str = "small-cnn"
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    ratios: tuple[float, ...] = (0.2, 0.5)
    methods: tuple[str, ...] = DEFAULT_METHODS
    presets: tuple[str, ...] = PRESET_NAMES
    forget_mode: str = "random"
    data_root: str | None = None
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=15))
    unlearn_epochs: int | None = None
    costs: RiskCosts = field(default_factory=RiskCosts)
    mia_variant: str = "confidence"
    device: str = "auto"
    trace: bool = False
    synthetic: SyntheticSpec | None = None
    holdout: tuple[float, float] | None = None  # val, test fractions carved from a train-only file

    def __post_init__(self) -> None:
        for m in self.methods:
            get_method(m)
        if "retrain" not in self.methods:
            raise ValueError(
                "the ablation needs retrain among --methods (the reference of every gap)"
            )
        for p in self.presets:
            resolve_config("rl", {"preset": p})
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        if not self.ratios or len(set(self.ratios)) != len(self.ratios):
            raise ValueError(
                f"forget ratios must be distinct and at least one, got {list(self.ratios)}"
            )
        for r in self.ratios:
            ForgetSpec(r, self.forget_mode)  # validates
        if self.unlearn_epochs is not None and self.unlearn_epochs < 1:
            raise ValueError(f"unlearn epochs must be >= 1, got {self.unlearn_epochs}")

    def fixed(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in _FIXED}


def _fresh_model(model: str, seed: int, device: torch.device) -> torch.nn.Module:
    """The Retrain baseline's fresh network: its own init stream, apart from the original's."""
    return prepare_model(build_model(model, seed=stream_seed(seed, "retrain-init")), device)


def _check_same(out: Path, cfg: AblationConfig, md5: str | None) -> None:
    path = out / "ablation-config.json"
    want = json.loads(json.dumps({**cfg.fixed(), "data_md5": md5}, default=str))
    if path.is_file():
        have = json.loads(path.read_text())
        diff = sorted(k for k in want if have.get(k) != want[k])
        if diff:
            raise FedunlearnError(
                f"{out} holds an ablation with other settings ({', '.join(diff)} differ); "
                "use another --out or the same settings to resume"
            )
    else:
        atomic_write_json(path, want)


class _Originals:
    """The original model of each seed, trained once and cached on disk."""

    def __init__(
        self,
        data: BinaryDataset,
        cfg: AblationConfig,
        out: Path,
        device: torch.device,
        progress: Progress,
    ) -> None:
        self.data, self.cfg, self.dir, self.device, self.progress = (
            data,
            cfg,
            out / "originals",
            device,
            progress,
        )
        self._mem: dict[int, tuple[dict[str, torch.Tensor], float]] = {}

    def get(self, seed: int) -> tuple[torch.nn.Module, float]:
        if seed not in self._mem:
            path = self.dir / f"seed{seed}.pt"
            if path.is_file():
                blob = torch.load(path, map_location="cpu", weights_only=True)
                self._mem[seed] = (blob["state_dict"], float(blob["seconds"]))
            else:
                self.progress(
                    f"seed {seed}: training the original {self.cfg.model} ({self.cfg.train.epochs} epochs)"
                )
                model, stats = _train_original(self.data, self, seed, self.device)
                state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                buf = io.BytesIO()
                torch.save({"state_dict": state, "seconds": stats.seconds}, buf)
                atomic_write_bytes(path, buf.getvalue())
                self._mem[seed] = (state, stats.seconds)
        state, seconds = self._mem[seed]
        model = prepare_model(
            build_model(self.cfg.model, seed=stream_seed(seed, "model-init")), self.device
        )
        model.load_state_dict(state)
        return model, seconds

    # _train_original reads these attributes of a StudyConfig
    @property
    def model(self) -> str:
        return self.cfg.model

    @property
    def train(self) -> TrainConfig:
        return self.cfg.train

    @property
    def costs(self) -> RiskCosts:
        return self.cfg.costs


def _forget_retain(data: BinaryDataset, cfg: AblationConfig, ratio: float, seed: int):
    labels = data.train.labels
    forget = select_forget(
        labels, ForgetSpec(ratio, cfg.forget_mode, seed=stream_seed(seed, "forget"))
    )
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[forget] = False
    return forget, torch.nonzero(keep).flatten()


@dataclass
class _Context:
    """What every unit of one ablation shares: data, device, the cached originals, where units go."""

    cfg: AblationConfig
    out: Path
    data: BinaryDataset
    device: torch.device
    originals: _Originals
    progress: Progress

    @property
    def units(self) -> Path:
        return self.out / "units"

    def eval_sets(self, forget: torch.Tensor, retain: torch.Tensor) -> dict[str, EvalSet]:
        test, split = self.data.split("test"), self.data.train
        return {
            "test": EvalSet(test.images, test.labels),
            "forget": EvalSet(split.images, split.labels, forget),
            "retain": EvalSet(split.images, split.labels, retain),
        }

    def report(self, model: torch.nn.Module, sets: Mapping[str, EvalSet], seed: int) -> dict:
        return unlearning_report(
            predict_sets(model, sets, device=self.device),
            self.cfg.costs,
            self.cfg.mia_variant,
            mia_seed=stream_seed(seed, "mia"),
        )


def _original_unit(
    ctx: _Context, ratio: float, seed: int, sets: Mapping[str, EvalSet]
) -> tuple[torch.nn.Module, float]:
    """The seed's original model; its own unit file (once per ratio and seed) is written if missing."""
    original, original_seconds = ctx.originals.get(seed)
    path = ctx.units / f"{unit_slug(ratio, seed, 'original[fixed]')}.csv"
    if not path.is_file():
        report = ctx.report(original, sets, seed)
        save_unit(path, ratio, seed, "original", "original[fixed]", report, original_seconds)
    return original, original_seconds


def _run_unit(ctx: _Context, entry: Entry, ratio: float, seed: int) -> tuple[dict, float]:
    """Unlearn one (ratio, seed, setting) from the seed's original and write its unit file."""
    cfg, split = ctx.cfg, ctx.data.train
    forget, retain = _forget_retain(ctx.data, cfg, ratio, seed)
    sets = ctx.eval_sets(forget, retain)
    original, _ = _original_unit(ctx, ratio, seed, sets)
    overrides: dict[str, Any] = entry.setting.overrides()
    if cfg.unlearn_epochs is not None and entry.method != "retrain":
        overrides["epochs"] = cfg.unlearn_epochs
    tracer = Tracer(ctx.data.split("test"), split, forget, ctx.device) if cfg.trace else None
    if tracer is not None:
        tracer.record(-1, "start", original if entry.method != "retrain" else None)
    result = unlearn(
        entry.method,
        copy.deepcopy(original),
        UnlearnTask(split.images, split.labels, forget, retain),
        device=ctx.device,
        seed=stream_seed(seed, "unlearn"),
        config=resolve_config(entry.method, overrides),
        fresh_model=partial(_fresh_model, cfg.model, seed, ctx.device),
        retrain_config=cfg.train,
        after_phase=tracer.record if tracer is not None else None,
    )
    report = ctx.report(result.model, sets, seed)
    slug = unit_slug(ratio, seed, entry.key)
    if tracer is not None:
        atomic_write_csv(
            ctx.out / "traces" / f"{slug}.csv",
            tracer.frame().assign(ratio=ratio, seed=seed, method=entry.method, unit=entry.key),
        )
    save_unit(
        ctx.units / f"{slug}.csv", ratio, seed, entry.method, entry.key, report, result.seconds
    )
    return report, result.seconds


def _todo(
    entries: Sequence[Entry], cfg: AblationConfig, units: Path
) -> list[tuple[float, int, str]]:
    """The (ratio, seed, unit key) triples in work order whose unit file is not there yet."""
    return [
        (r, s, k)
        for r, s, k in work_order(entries, cfg.ratios, cfg.seeds)
        if not (units / f"{unit_slug(r, s, k)}.csv").is_file()
    ]


def run_ablation(
    cfg: AblationConfig, out: Path, progress: Progress | None = None, report_only: bool = False
) -> pd.DataFrame:
    """Run (or resume) the ablation into ``out``; returns the paired-effect table.

    ``report_only`` runs nothing: the tables and the figure are rewritten from the finished units.
    """
    progress = progress or Progress()
    out = Path(out)
    started = now_iso()
    device = resolve_device(cfg.device)
    data = study_data(cfg.dataset, cfg.size, cfg.data_root, cfg.synthetic, cfg.holdout)
    out.mkdir(parents=True, exist_ok=True)
    _check_same(out, cfg, data.provenance.md5)
    entries = plan_entries(cfg.methods, cfg.presets)
    by_key: dict[str, Entry] = {}
    for e in entries:
        by_key.setdefault(e.key, e)
    ctx = _Context(cfg, out, data, device, _Originals(data, cfg, out, device, progress), progress)
    todo = _todo(entries, cfg, ctx.units)
    if report_only:
        progress(f"--report-only: {len(todo)} unit(s) not run yet are left out of the tables")
        return write_outputs(out, entries, cfg, data.provenance.to_dict())
    progress(
        f"{len(entries)} (method, setting) pairs, {len(todo)} unit(s) to run "
        f"({len(cfg.seeds)} seed(s) x {len(cfg.ratios)} ratio(s)); finished units are kept"
    )
    for n, (ratio, seed, key) in enumerate(todo, 1):
        report, seconds = _run_unit(ctx, by_key[key], ratio, seed)
        t = report["test"]
        progress(
            f"[{n}/{len(todo)}] forget {ratio:.0%} seed {seed} {key}: FNR {t['fnr']:.3f} Risk II "
            f"{t['risk_2']:.3f} BAC {t['bac']:.3f} UBAC {report['forget']['ubac']:.3f} {seconds:.0f}s"
        )
        # partial tables while it runs
        write_outputs(out, entries, cfg, data.provenance.to_dict(), figure=False)
    effects = write_outputs(out, entries, cfg, data.provenance.to_dict())
    write_manifest(
        out,
        build_manifest(
            kind="ablation",
            complete=True,
            started=started,
            finished=now_iso(),
            seeds=list(cfg.seeds),
            device=str(device),
            config=_jsonable(cfg),
            data=data.provenance.to_dict(),
        ),
    )
    return effects


def _jsonable(cfg: AblationConfig) -> dict[str, Any]:
    d = asdict(replace(cfg))
    for k in ("seeds", "ratios", "methods", "presets"):
        d[k] = list(d[k])
    return d


__all__: Sequence[str] = ("DEFAULT_METHODS", "AblationConfig", "load_units", "run_ablation")
