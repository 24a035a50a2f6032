"""Scenario files: the typed, validated description of one federated run.

A scenario is YAML parsed once, at the edge, into frozen pydantic models;
every error names the file, the key path, the bad value and what is allowed,
on one line. ``--set key.path=value`` overrides are applied before validation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedunlearn.data import DATASET_NAMES, FORGET_MODES, SIZES
from fedunlearn.errors import FedunlearnError
from fedunlearn.metrics import MIA_VARIANTS
from fedunlearn.models import MODEL_NAMES
from fedunlearn.unlearning import METHOD_NAMES, UnlearnConfig

STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedyogi", "fedmedian")
PARTITIONS = ("iid", "dirichlet", "quantity", "explicit")


class ScenarioError(FedunlearnError):
    """An invalid scenario; the message is one line: file, key path, value, what is allowed."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticData(_Model):
    n_train: int = Field(2000, ge=10)
    n_val: int = Field(400, ge=2)
    n_test: int = Field(800, ge=2)
    prevalence: float = Field(0.2, gt=0, lt=1)


class DataSection(_Model):
    dataset: Literal[DATASET_NAMES] = "dermamnist"  # type: ignore[valid-type]
    size: Literal[SIZES] = 28  # type: ignore[valid-type]
    root: str | None = None
    synthetic: SyntheticData = SyntheticData()


class SitesSection(_Model):
    count: int = Field(4, ge=1, le=1024)
    partition: Literal[PARTITIONS] = "iid"  # type: ignore[valid-type]
    alpha: float = Field(0.5, gt=0)
    sizes: tuple[float, ...] | None = None
    prevalence: tuple[float, ...] | None = None
    names: tuple[str, ...] | None = None

    @model_validator(mode="after")
    def _lengths(self) -> "SitesSection":
        for key in ("sizes", "prevalence", "names"):
            value = getattr(self, key)
            if value is not None and len(value) != self.count:
                raise ValueError(f"{key} has {len(value)} entries but sites.count is {self.count}; give one per site")
        if self.partition == "explicit" and (self.sizes is None or self.prevalence is None):
            raise ValueError("partition 'explicit' needs sites.sizes and sites.prevalence (one per site)")
        if self.partition == "quantity" and self.sizes is None:
            raise ValueError("partition 'quantity' needs sites.sizes (one relative weight per site)")
        if self.prevalence is not None and any(not 0 <= p <= 1 for p in self.prevalence):
            raise ValueError(f"prevalence values must be in [0, 1], got {list(self.prevalence)}")
        if self.sizes is not None and any(s <= 0 for s in self.sizes):
            raise ValueError(f"sizes must be positive, got {list(self.sizes)}")
        if self.partition == "explicit" and self.sizes is not None and sum(self.sizes) > 1 + 1e-9:
            raise ValueError(f"explicit sizes are fractions of the training split and must sum to <= 1, got {sum(self.sizes):g}")
        return self

    def site_name(self, k: int) -> str:
        return self.names[k] if self.names else f"site-{k}"


class TrainingSection(_Model):
    rounds: int = Field(10, ge=1, le=10_000)
    strategy: Literal[STRATEGIES] = "fedavg"  # type: ignore[valid-type]
    proximal_mu: float = Field(0.01, ge=0)
    server_lr: float = Field(0.01, gt=0)
    local_epochs: int = Field(1, ge=1)
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    batch_size: int = Field(64, ge=1)
    augment: bool = True
    fraction_train: float = Field(1.0, gt=0, le=1)
    min_sites: int = Field(1, ge=1)


class ForgetRequest(_Model):
    round: int = Field(ge=1)
    site: int = Field(ge=0)
    fraction: float
    mode: Literal[FORGET_MODES] = "random"  # type: ignore[valid-type]
    seed: int = 0

    @field_validator("fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not (0 < v <= 1) or math.isnan(v):
            raise ValueError(f"forget fraction must be in (0, 1], got {v}")
        return v


class DeletionSection(_Model):
    method: Literal[METHOD_NAMES] = "salun-cra"  # type: ignore[valid-type]
    integration: Literal["adopt", "aggregate"] = "adopt"
    unlearn: dict[str, Any] = Field(default_factory=dict)
    requests: tuple[ForgetRequest, ...] = ()

    @field_validator("unlearn")
    @classmethod
    def _unlearn_keys(cls, v: dict[str, Any]) -> dict[str, Any]:
        UnlearnConfig(**v)  # unknown keys / bad values raise TypeError or ValueError
        return v


class EvaluationSection(_Model):
    c_fp: float = Field(1.0, ge=0)
    c_fn: float = Field(20.0, ge=0)
    mia: Literal[MIA_VARIANTS] = "confidence"  # type: ignore[valid-type]
    server_val: bool = True


class RaySection(_Model):
    address: str | None = None
    num_cpus_per_client: float = Field(1.0, gt=0)
    num_gpus_per_client: float | Literal["auto"] = "auto"

    @field_validator("num_gpus_per_client")
    @classmethod
    def _gpus(cls, v: float | str) -> float | str:
        if v != "auto" and not 0 <= float(v) <= 1:
            raise ValueError(f"num_gpus_per_client must be 'auto' or in [0, 1], got {v}")
        return v


class Scenario(_Model):
    """One federated run: data, hospitals, training, deletions, evaluation, Ray."""

    name: str = "scenario"
    seed: int = 0
    model: Literal[MODEL_NAMES] = "small-cnn"  # type: ignore[valid-type]
    device: str = "auto"
    data: DataSection = DataSection()
    sites: SitesSection = SitesSection()
    training: TrainingSection = TrainingSection()
    deletion: DeletionSection = DeletionSection()
    evaluation: EvaluationSection = EvaluationSection()
    ray: RaySection = RaySection()

    @model_validator(mode="after")
    def _requests_fit(self) -> "Scenario":
        for i, req in enumerate(self.deletion.requests):
            if req.site >= self.sites.count:
                raise ValueError(
                    f"deletion.requests[{i}].site is {req.site} but there are {self.sites.count} sites (0..{self.sites.count - 1})"
                )
            if req.round > self.training.rounds:
                raise ValueError(
                    f"deletion.requests[{i}].round is {req.round}, past the last round {self.training.rounds}"
                )
        if self.training.min_sites > self.sites.count:
            raise ValueError(f"training.min_sites {self.training.min_sites} exceeds sites.count {self.sites.count}")
        return self

    @property
    def retrain(self) -> bool:
        """Federated Retrain: every forget set removed from round 1, no unlearning pass."""
        return self.deletion.method == "retrain"


def _format_error(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        return f"{source}: {loc}: unknown key; check its spelling against the reference in configs/README.md"
    if "input" in first and first["type"] not in ("missing",) and not isinstance(first["input"], Mapping):
        return f"{source}: {loc}: bad value {first['input']!r}: {msg}"
    return f"{source}: {loc}: {msg}"


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw scenario mapping."""
    out = dict(raw)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"{source}: {item!r} is not key=value; write e.g. training.rounds=5")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, Mapping) else {}
            node[part] = child
            node = child
        node[parts[-1]] = _parse_value(value)
    return out


def scenario_from_mapping(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(dict(raw))
    except ValidationError as err:
        raise ScenarioError(_format_error(source, err)) from None
    except (TypeError, ValueError) as err:  # from nested constructors such as UnlearnConfig
        raise ScenarioError(f"{source}: {err}") from None


def read_scenario_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file; pass the path of a YAML file such as configs/quickstart.yaml")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ScenarioError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{path}: the top level must be a mapping of sections (data, sites, training, ...)")
    return dict(raw)


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file."""
    raw = apply_overrides(read_scenario_yaml(path), overrides)
    return scenario_from_mapping(raw, str(path))


def scenario_to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
