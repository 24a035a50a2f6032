"""The sections of a scenario: data, sites, training, deletion, evaluation, Ray, failures, deployment.

Each section is a frozen pydantic model that forbids unknown keys; every field
carries the description and allowed values that ``configs/README.md`` shows.
A validator reports a bad value with :func:`~fedunlearn.federated.scenario.errors.bad`,
relative to its own section. The top level, and the checks that span
sections, are :class:`~fedunlearn.federated.scenario.schema.Scenario`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from fedunlearn.data import DATASET_NAMES, PARTITION_NAMES, SIZES
from fedunlearn.engine.loop import TrainConfig
from fedunlearn.federated.scenario.errors import BadValue, allowed_extra, bad
from fedunlearn.federated.schedule import LR_SCHEDULES
from fedunlearn.federated.strategies import STRATEGY_NAMES
from fedunlearn.metrics import MIA_VARIANTS
from fedunlearn.metrics.operating import FIXED_THRESHOLD, OPERATING_POINT_HELP, operating_point_name

STRATEGIES = STRATEGY_NAMES  # the registries' names (federated.strategies, data.partition)
PARTITIONS = PARTITION_NAMES
CRASH_PHASES = ("round", "train", "unlearn", "evaluate")
_SITE_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
)  # names a folder: no separator, no '..', <= 100 chars


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SyntheticData(_Model):
    """Sizes of the synthetic dataset (``data.dataset: synthetic``): tests and CPU smoke runs."""

    n_train: int = Field(
        2000, ge=10, description="images in the training split, shared out among the sites"
    )
    n_val: int = Field(
        400, ge=2, description="images in the validation split (the sites' local test shards)"
    )
    n_test: int = Field(800, ge=2, description="images in the server's test split")
    prevalence: float = Field(
        0.2, gt=0, lt=1, description="share of malignant images in every split"
    )


class DataSection(_Model):
    """Which images: a MedMNIST dataset at one resolution, or synthetic images."""

    dataset: Literal[DATASET_NAMES] = Field(  # type: ignore[valid-type]
        "dermamnist",
        description="dataset; `synthetic` needs no download (for tests and smoke runs)",
    )
    size: Literal[SIZES] = Field(28, description="image side in pixels (MedMNIST+ resolutions)")  # type: ignore[valid-type]
    root: str | None = Field(
        None,
        description="folder of the MedMNIST .npz files (null: $FEDUNLEARN_DATA_ROOT, "
        "else ~/.medmnist)",
    )
    synthetic: SyntheticData = Field(SyntheticData(), description="sizes of the synthetic dataset")


class SitesSection(_Model):
    """The hospitals and how the training split is shared among them."""

    count: int = Field(
        4, ge=1, le=1024, description="number of hospitals (one Flower ClientApp each)"
    )
    partition: Literal[PARTITIONS] = Field(  # type: ignore[valid-type]
        "iid",
        description="how the training split is shared: iid, Dirichlet label skew (`alpha`), quantity skew "
        "(`sizes`), or explicit size and malignancy prevalence per site (`sizes`, `prevalence`)",
    )
    alpha: float = Field(
        0.5, gt=0, description="Dirichlet concentration of `dirichlet` (smaller: more label skew)"
    )
    sizes: tuple[float, ...] | None = Field(
        None,
        description="one entry per site: relative weights under `quantity`, fractions of the training split "
        "(summing to <= 1) under `explicit`",
        json_schema_extra=allowed_extra("a list of numbers > 0, one per site, or null"),
    )
    prevalence: tuple[float, ...] | None = Field(
        None,
        description="one entry per site: share of malignant images in the site's shard (`explicit` only)",
        json_schema_extra=allowed_extra("a list of numbers in [0, 1], one per site, or null"),
    )
    names: tuple[str, ...] | None = Field(
        None,
        description="one entry per site: names used in tables and site folders (null: site-0, site-1, ...)",
        json_schema_extra=allowed_extra(
            "a list of distinct names of letters, digits, '.', '_', '-', one per site, or null"
        ),
    )

    @model_validator(mode="after")
    def _lengths(self) -> SitesSection:
        for key in ("sizes", "prevalence", "names"):
            value = getattr(self, key)
            if value is not None and len(value) != self.count:
                raise bad(
                    key,
                    list(value),
                    f"a list of {self.count} entries, one per site (sites.count is {self.count})",
                )
        for key in ("sizes", "prevalence"):
            if self.partition == "explicit" and getattr(self, key) is None:
                raise BadValue(
                    key,
                    "missing required key; sites.partition 'explicit' needs sites.sizes and "
                    "sites.prevalence, one entry per site",
                )
        if self.partition == "quantity" and self.sizes is None:
            raise BadValue(
                "sizes",
                "missing required key; sites.partition 'quantity' needs sites.sizes, "
                "one relative weight per site",
            )
        for i, p in enumerate(self.prevalence or ()):
            if not 0 <= p <= 1:
                raise bad(f"prevalence[{i}]", p, "a number in [0, 1]")
        for i, s in enumerate(self.sizes or ()):
            if not s > 0:
                raise bad(f"sizes[{i}]", s, "a number > 0")
        if self.partition == "explicit" and self.sizes is not None and sum(self.sizes) > 1 + 1e-9:
            raise bad(
                "sizes",
                list(self.sizes),
                f"fractions of the training split summing to <= 1 under 'explicit' "
                f"(these sum to {sum(self.sizes):g})",
            )
        for i, name in enumerate(self.names or ()):
            if not _SITE_NAME.fullmatch(name):
                raise bad(
                    f"names[{i}]",
                    name,
                    "a name of letters, digits, '.', '_', '-', starting with a letter or "
                    "digit, at most 100 characters (it names a folder)",
                )
        if self.names is not None and len(set(self.names)) != len(self.names):
            raise bad("names", list(self.names), "distinct names, one per site")
        return self

    def site_name(self, k: int) -> str:
        return self.names[k] if self.names else f"site-{k}"


class TrainingSection(_Model):
    """Federated training: rounds, server strategy and each site's local optimiser."""

    rounds: int = Field(10, ge=1, le=10_000, description="federated rounds")
    strategy: Literal[STRATEGIES] = Field("fedavg", description="Flower server strategy")  # type: ignore[valid-type]
    proximal_mu: float = Field(0.01, ge=0, description="FedProx proximal term (`fedprox` only)")
    server_lr: float = Field(
        0.01, gt=0, description="server learning rate eta (`fedadam`, `fedyogi` only)"
    )
    local_epochs: int = Field(1, ge=1, description="local epochs per round at each site")
    lr: float = Field(
        0.05, gt=0, description="local SGD learning rate (the peak rate under a schedule)"
    )
    lr_schedule: Literal[LR_SCHEDULES] = Field(  # type: ignore[valid-type]
        "constant",
        description="round-level learning-rate schedule: `constant`, `cosine` (annealed towards "
        "`lr * lr_min_factor` over the rounds) or `step` (times `step_gamma` every `step_every` rounds), "
        "after a linear warm-up of `warmup_rounds` rounds",
    )
    warmup_rounds: int = Field(
        0,
        ge=0,
        description="rounds of linear warm-up before `cosine` or `step` "
        "(lr * r / (warmup_rounds + 1) in round r)",
    )
    lr_min_factor: float = Field(
        0.0,
        ge=0,
        le=1,
        description="`cosine`: the floor the rate anneals towards, as a share of `lr`",
    )
    step_every: int = Field(1, ge=1, description="`step`: rounds between two decays")
    step_gamma: float = Field(0.5, gt=0, le=1, description="`step`: factor of each decay")
    momentum: float = Field(0.9, ge=0, lt=1, description="local SGD momentum")
    weight_decay: float = Field(5e-4, ge=0, description="local SGD weight decay")
    batch_size: int = Field(64, ge=1, description="local mini-batch size")
    augment: bool = Field(True, description="random flips and crops during local training")
    fraction_train: float = Field(
        1.0, gt=0, le=1, description="share of the sites sampled to train each round (seeded draw)"
    )
    min_sites: int = Field(
        1, ge=1, description="at least this many sites train each round (<= sites.count)"
    )

    def train_config(self, lr: float | None = None, prox_mu: float = 0.0) -> TrainConfig:
        """The engine settings of one site's local training: ``local_epochs`` at rate ``lr`` (None: the peak ``lr``).

        The round-level schedule is the caller's (:func:`fedunlearn.federated.schedule.round_lr`); within a
        round the rate is constant.
        """
        return TrainConfig(
            epochs=self.local_epochs,
            lr=self.lr if lr is None else lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            augment=self.augment,
            lr_schedule="constant",
            prox_mu=prox_mu,
        )


class EvaluationSection(_Model):
    """Clinical costs and the membership-inference attack used to score every round."""

    c_fp: float = Field(1.0, ge=0, description="Global Risk II cost of a false positive")
    c_fn: float = Field(
        20.0, ge=0, description="Global Risk II cost of a false negative (a missed cancer)"
    )
    mia: Literal[MIA_VARIANTS] = Field(
        "confidence", description="feature of the SVC membership-inference attack"
    )  # type: ignore[valid-type]
    server_val: bool = Field(
        True, description="the server also evaluates on the whole validation split"
    )
    operating_points: tuple[float | str, ...] = Field(
        (0.5, "sens@0.95", "cost-optimal"),
        description="decision thresholds at which the server's test metrics are recorded every round: `0.5` is the "
        "study's (phase `test`); each other point is chosen anew every round on the server's validation split, "
        "never on the test split (phase `test@<point>`, with the threshold used as metric `threshold`): a fixed "
        "threshold, `sens@T` (the highest threshold with validation sensitivity >= T) or `cost-optimal` (minimal "
        "Global Risk II on validation with `c_fp`, `c_fn`)",
        json_schema_extra=allowed_extra(
            "a list of: " + OPERATING_POINT_HELP, "list of numbers or strings"
        ),
    )

    @field_validator("operating_points")
    @classmethod
    def _points(cls, v: tuple[float | str, ...]) -> tuple[float | str, ...]:
        names = []
        for i, point in enumerate(v):
            try:
                names.append(operating_point_name(point))
            except ValueError:
                raise bad(f"[{i}]", point, OPERATING_POINT_HELP) from None
        if len(set(names)) != len(names):
            raise bad("", list(v), "distinct operating points")
        if operating_point_name(FIXED_THRESHOLD) not in names:
            raise bad("", list(v), "a list that keeps the study's threshold 0.5")
        return v

    @model_validator(mode="after")
    def _val_for_points(self) -> EvaluationSection:
        if not self.server_val and any(
            operating_point_name(p) != "0.5" for p in self.operating_points
        ):
            raise bad(
                "server_val",
                False,
                "true while operating_points other than 0.5 are chosen on the "
                "validation split (or set evaluation.operating_points: [0.5])",
            )
        return self


class RaySection(_Model):
    """Ray resources of Flower's simulation engine."""

    address: str | None = Field(
        None, description="address of a running Ray cluster (null: start a local one)"
    )
    num_cpus_per_client: float = Field(1.0, gt=0, description="CPUs reserved for each hospital")
    unlearn_threads: int | None = Field(
        None,
        ge=1,
        description="torch threads of a hospital during its unlearning pass (null: num_cpus_per_client). In "
        "its deletion round under `adopt` the requesting site is the only one working, so it can use the CPUs the "
        "other hospitals leave idle (on one machine: its CPU count). A setting rather than the machine's count, so "
        "that a run stays a function of its scenario: a thread count can change floating-point sums (ResNet-18 "
        "differs between 1 and 2 threads on CPU; the small CNN does not, on torch 2.13)",
    )
    num_gpus_per_client: float | Literal["auto"] = Field(
        "auto",
        description="GPU share of each hospital (auto: 1 / min(sites, 4) where CUDA is present, else 0)",
        json_schema_extra=allowed_extra("auto or a number in [0, 1]"),
    )

    @field_validator("num_gpus_per_client")
    @classmethod
    def _gpus(cls, v: float | str) -> float | str:
        if v != "auto" and not 0 <= float(v) <= 1:
            raise bad("", v, "auto or a number in [0, 1]")
        return v


class SiteCrash(_Model):
    """A scheduled failure: in ``round`` hospital ``site`` raises instead of answering."""

    site: int = Field(ge=0, description="index of the failing site (0 .. sites.count - 1)")
    round: int = Field(ge=1, description="round of the failure (<= training.rounds)")
    phase: Literal[CRASH_PHASES] = Field(  # type: ignore[valid-type]
        "round",
        description="which message fails: `round` (all of the site's messages that round), `train`, "
        "`unlearn` (the unlearning pass, after the rows are withdrawn: the request stays pending and is retried) "
        "or `evaluate`",
    )


class FailuresSection(_Model):
    """Simulated site failures, for tests and what-if studies; every draw is seeded."""

    dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="probability that a site fails all its messages of a round "
        "(drawn per round and site from the seed)",
    )
    crashes: tuple[SiteCrash, ...] = Field(
        (), description="scheduled failures of given sites in given rounds"
    )
    min_sites: int = Field(
        1,
        ge=1,
        description="the run stops, resumable, when fewer sites than this answer a "
        "round's evaluation (<= sites.count)",
    )


class DeploymentSection(_Model):
    """How long the server waits for the hospitals (Flower's Deployment Engine, and the simulation alike).

    A site that has not answered a round's message when ``round_timeout_s`` runs
    out is handled like a dropout: it is logged as a failure, its requests stay
    pending, and ``failures.min_sites`` decides whether the run goes on.
    """

    node_wait_s: float = Field(
        300.0, gt=0, description="seconds to wait for every hospital's SuperNode to connect"
    )
    setup_timeout_s: float = Field(
        600.0, gt=0, description="seconds to wait for every hospital's answer to the setup query"
    )
    round_timeout_s: float = Field(
        3600.0,
        gt=0,
        description="seconds to wait for the replies of one round's train or evaluate messages; "
        "a site still silent then counts as dropped out of the round",
    )
