"""The six unlearning methods of METHOD.md section 4, as data schedules and losses.

Each method is a :class:`MethodSpec`: its default hyperparameters, which rows
each epoch trains on under which loss, whether it starts from scratch and
whether it restricts updates to SalUn's salient weights. :func:`unlearn` runs
any of them through the one engine loop.

References
----------
Fan et al., "SalUn", ICLR 2024 (FT, GA, RL, SalUn and their defaults);
the clinical-risk study, arXiv:2604.23854 (SalUn-CRA).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from fedunlearn.engine.loop import GradientMask, Phase, TrainConfig, TrainStats, train
from fedunlearn.engine.losses import ForgetLoss, GradientAscent, WeightedCE, class_weights
from fedunlearn.registry import Registry
from fedunlearn.unlearning.ingredients import INGREDIENT_NAMES, check_ingredient, preset_values
from fedunlearn.unlearning.saliency import mask_fraction, saliency_mask

#: The engine settings an unlearning pass reads: :class:`TrainConfig`'s, less FedProx's ``prox_mu``.
TRAIN_SETTINGS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(TrainConfig) if f.name != "prox_mu"
)
#: Every flat setting of an unlearning pass: what ``resolve_config`` overrides and ``deletion.unlearn`` sets.
SETTING_NAMES: tuple[str, ...] = (*TRAIN_SETTINGS, "mask_ratio", *INGREDIENT_NAMES, "preset")

#: SalUn's script defaults for the engine settings of an unlearning pass.
UNLEARN_TRAIN = TrainConfig(epochs=10, lr=0.01, lr_schedule="constant")


@dataclass(frozen=True)
class UnlearnConfig:
    """Hyperparameters of one unlearning pass (SalUn's script defaults unless noted).

    ``train`` holds the engine's settings (epochs, lr, momentum, ...), which
    read as attributes of the config too (``cfg.epochs`` is ``cfg.train.epochs``);
    the rest are SalUn's mask ratio and the method's ingredients.
    """

    train: TrainConfig = UNLEARN_TRAIN
    mask_ratio: float = 0.5
    # The ingredients of METHOD.md section 4b (fedunlearn.unlearning.ingredients); defaults: the paper's.
    schedule: str = "sequential"
    forget_labels: str = "random"
    loss_weighting: str = "class"
    cra_scope: str = "malignant"
    mask_freeze: str = "restore"
    preset: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.mask_ratio <= 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1], got {self.mask_ratio}")
        for name in INGREDIENT_NAMES:
            check_ingredient(name, getattr(self, name))

    def __getattr__(self, name: str) -> Any:
        if name in TRAIN_SETTINGS:  # only reached for names that are not fields
            return getattr(object.__getattribute__(self, "train"), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @classmethod
    def of(cls, **settings: Any) -> UnlearnConfig:
        """A config from flat settings (names of :data:`SETTING_NAMES`) over the unlearning defaults."""
        return cls().replace(**settings)

    def replace(self, **settings: Any) -> UnlearnConfig:
        """A copy with flat settings changed: engine ones go to ``train``, the others to the config itself."""
        engine = {k: settings.pop(k) for k in TRAIN_SETTINGS if k in settings}
        cfg = dataclasses.replace(
            self, **settings
        )  # checks mask_ratio and the ingredients first, as before
        return (
            dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **engine))
            if engine
            else cfg
        )

    def settings(self) -> dict[str, Any]:
        """Every flat setting and its value, in the order of :data:`SETTING_NAMES`."""
        return {name: getattr(self, name) for name in SETTING_NAMES}

    def ingredients(self) -> dict[str, str]:
        """The five ingredient values."""
        return {name: getattr(self, name) for name in INGREDIENT_NAMES}

    def train_config(self) -> TrainConfig:
        """The engine's settings of the pass (the field ``train``)."""
        return self.train


@dataclass(frozen=True)
class UnlearnTask:
    """The rows to forget and to retain, as indices into one training split."""

    images: torch.Tensor
    labels: torch.Tensor
    forget: torch.Tensor
    retain: torch.Tensor

    def __post_init__(self) -> None:
        if len(self.forget) == 0:
            raise ValueError("the forget set is empty: nothing to unlearn")
        overlap = torch.isin(self.forget, self.retain)
        if bool(overlap.any()):
            raise ValueError(f"{int(overlap.sum())} rows are in both the forget and the retain set")


Schedule = Callable[[UnlearnTask, UnlearnConfig, "torch.Tensor | None"], list[Phase]]


@dataclass(frozen=True)
class MethodSpec:
    """One method: its defaults, its epoch schedule and how it starts."""

    name: str
    summary: str
    defaults: UnlearnConfig
    schedule: Schedule
    salient: bool = False
    from_scratch: bool = False


@dataclass
class UnlearnResult:
    """The unlearned model and what producing it cost."""

    method: str
    model: nn.Module
    stats: TrainStats
    config: UnlearnConfig | TrainConfig
    mask_fraction: float | None = None
    mask_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.stats.seconds + self.mask_seconds


def _phase(name: str, task: UnlearnTask, rows: torch.Tensor, loss) -> Phase:
    return Phase(name=name, images=task.images, labels=task.labels, indices=rows, loss=loss)


def _retain_only(task: UnlearnTask, cfg: UnlearnConfig, w: torch.Tensor | None) -> list[Phase]:
    return [_phase("retain", task, task.retain, WeightedCE(w))]


def _gradient_ascent(task: UnlearnTask, cfg: UnlearnConfig, w: torch.Tensor | None) -> list[Phase]:
    return [_phase("forget", task, task.forget, GradientAscent())]


def _relabel(
    task: UnlearnTask, cfg: UnlearnConfig, w: torch.Tensor | None, entropy: str | None
) -> list[Phase]:
    """A forget pass then a retain pass (``sequential``), or one shuffled pass over both (``mixed``)."""
    randomise = cfg.forget_labels == "random"
    if cfg.schedule == "sequential":
        return [
            _phase("forget", task, task.forget, ForgetLoss(w, randomise, entropy)),
            _phase("retain", task, task.retain, WeightedCE(w)),
        ]
    is_forget = torch.zeros(len(task.labels), dtype=torch.bool)
    is_forget[task.forget] = True
    rows = torch.cat([task.forget, task.retain])
    loss = ForgetLoss(w, randomise, entropy, is_forget)
    return [Phase("mixed", task.images, task.labels, rows, loss, pass_rows=True)]


def _random_label(task: UnlearnTask, cfg: UnlearnConfig, w: torch.Tensor | None) -> list[Phase]:
    return _relabel(task, cfg, w, None)


def _risk_aware(task: UnlearnTask, cfg: UnlearnConfig, w: torch.Tensor | None) -> list[Phase]:
    return _relabel(task, cfg, w, cfg.cra_scope)


_RL_DEFAULTS = UnlearnConfig.of(epochs=10, lr=0.013)

METHOD_REGISTRY: Registry[MethodSpec] = Registry("unlearning method")


def register_method(spec: MethodSpec, *, force: bool = False) -> MethodSpec:
    """Register ``spec`` under its name (another package can add a method this way)."""
    return METHOD_REGISTRY.add(spec.name, spec, force=force)


for _spec in (
    MethodSpec(
        "retrain",
        "train from scratch on the retain set (gold standard)",
        UnlearnConfig(),
        _retain_only,
        from_scratch=True,
    ),
    MethodSpec(
        "ft", "fine-tune on the retain set", UnlearnConfig.of(epochs=10, lr=0.01), _retain_only
    ),
    # GA diverges at FT's learning rate; a smaller step and fewer epochs is our *choice*.
    MethodSpec(
        "ga",
        "gradient ascent on the forget set",
        UnlearnConfig.of(epochs=5, lr=1e-3),
        _gradient_ascent,
    ),
    MethodSpec(
        "rl", "random labels on the forget set, then the retain set", _RL_DEFAULTS, _random_label
    ),
    MethodSpec(
        "salun", "RL restricted to the salient weights", _RL_DEFAULTS, _random_label, salient=True
    ),
    MethodSpec(
        "salun-cra",
        "SalUn with entropy maximisation on malignant forget samples",
        _RL_DEFAULTS,
        _risk_aware,
        salient=True,
    ),
):
    register_method(_spec)
METHOD_NAMES: tuple[str, ...] = METHOD_REGISTRY.names


def get_method(name: str) -> MethodSpec:
    """The method registered as ``name``; the error lists the valid names."""
    return METHOD_REGISTRY.get(name)


def resolve_config(name: str, overrides: Mapping[str, Any] | None = None) -> UnlearnConfig:
    """The method's defaults with ``overrides`` applied (unknown keys are an error).

    A ``preset`` (``paper`` or ``study-code``) first sets the ingredients it
    gives this method; ingredients named explicitly in ``overrides`` win.
    """
    spec = get_method(name)
    overrides = dict(overrides or {})
    valid = set(SETTING_NAMES)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"unknown unlearning setting(s) {unknown}; valid: {', '.join(sorted(valid))}"
        )
    if overrides.get("preset") is not None:
        overrides = {**preset_values(overrides["preset"], name), **overrides}
    return spec.defaults.replace(**overrides)


def unlearn(
    name: str,
    model: nn.Module,
    task: UnlearnTask,
    *,
    device: torch.device,
    seed: int = 0,
    config: UnlearnConfig | None = None,
    fresh_model: Callable[[], nn.Module] | None = None,
    retrain_config: TrainConfig | None = None,
    track_rows: bool = False,
    after_phase: Callable[[int, str, nn.Module], None] | None = None,
) -> UnlearnResult:
    """Unlearn ``task.forget`` from ``model`` with method ``name``.

    ``model`` is changed in place (except for ``retrain``, which trains
    ``fresh_model()`` with ``retrain_config``, the original training settings).
    The class weights of every loss are counted on the retain set (none with
    ``loss_weighting: none``; Retrain always trains as the original did).
    ``after_phase`` is passed to :func:`fedunlearn.engine.train` (traces).
    """
    spec = get_method(name)
    generator = torch.Generator().manual_seed(seed)
    cfg = config or spec.defaults
    weights = class_weights(task.labels[task.retain])
    if spec.from_scratch:
        if fresh_model is None or retrain_config is None:
            raise ValueError(
                "retrain needs fresh_model and retrain_config (the original training settings)"
            )
        model = fresh_model().to(device)
        stats = train(
            model,
            spec.schedule(task, spec.defaults, weights),
            retrain_config,
            device=device,
            generator=generator,
            track_rows=track_rows,
            after_phase=after_phase,
        )
        return UnlearnResult(name, model, stats, retrain_config)
    phases = spec.schedule(task, cfg, weights if cfg.loss_weighting == "class" else None)
    mask, fraction, mask_seconds = None, None, 0.0
    if spec.salient:
        t0 = time.perf_counter()
        masks = saliency_mask(
            model,
            task.images,
            task.labels,
            task.forget,
            cfg.mask_ratio,
            device=device,
            batch_size=cfg.train.batch_size,
            amp=cfg.train.amp,
        )
        mask, fraction = (
            GradientMask(model, masks, restore=cfg.mask_freeze == "restore"),
            mask_fraction(masks),
        )
        mask_seconds = time.perf_counter() - t0
    stats = train(
        model,
        phases,
        cfg.train,
        device=device,
        generator=generator,
        mask=mask,
        track_rows=track_rows,
        after_phase=after_phase,
    )
    return UnlearnResult(name, model, stats, cfg, fraction, mask_seconds)
