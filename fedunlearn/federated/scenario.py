"""Scenario files: the typed, validated description of one federated run.

A scenario is YAML parsed once, at the edge, into frozen pydantic models.
Every error is one line, ``FILE: key.path: bad value X; allowed: ...``: it names
the file, the key path, the bad value and what is allowed (the valid names of
an enumeration, the range of a number, the valid keys of a section, the keys a
section requires). ``--set key.path=value`` overrides are applied before
validation.

Every field carries its description: :func:`reference_markdown` renders the
whole schema, defaults included, as ``configs/README.md``
(``python -m fedunlearn.federated.scenario > configs/README.md``; a test fails
when the file is out of date).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.fields import FieldInfo

from fedunlearn.data import DATASET_NAMES, FORGET_MODES, SIZES
from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.policy import POLICIES, POLICY_NAMES, expand_requests
from fedunlearn.federated.schedule import LR_SCHEDULES
from fedunlearn.metrics import MIA_VARIANTS
from fedunlearn.metrics.operating import FIXED_THRESHOLD, OPERATING_POINT_HELP, operating_point_name
from fedunlearn.models import MODEL_NAMES
from fedunlearn.unlearning import METHOD_NAMES, resolve_config

STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedyogi", "fedmedian")
PARTITIONS = ("iid", "dirichlet", "quantity", "explicit")
CRASH_PHASES = ("round", "train", "unlearn", "evaluate")
CONTROL = "none"  # deletion.method of the counterfactual control arm: requests recorded, nothing erased
DELETION_METHODS: tuple[str, ...] = (*METHOD_NAMES, CONTROL)
_SITE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # names a folder: no separator, no '..', <= 100 chars
_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,99}")  # prefix of the default run folder
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


class ScenarioError(FedunlearnError):
    """An invalid scenario; the message is one line: file, key path, value, what is allowed."""


class BadValue(ValueError):
    """Raised inside a validator: a key path relative to the model being validated, and the rest of the line."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}" if path else detail)
        self.path, self.detail = path, detail


def show(value: Any) -> str:
    """A value as the user wrote it in YAML: strings quoted, ``true``/``false``/``null``, lists and mappings inline."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def bad(path: str, value: Any, allowed: str) -> BadValue:
    """A bad value at ``path`` (relative to the model raising it)."""
    return BadValue(path, f"bad value {show(value)}; allowed: {allowed}")


def _allowed(text: str, type_text: str | None = None) -> dict[str, Any]:
    """``json_schema_extra`` of a field whose allowed values (or type) need words (errors and the reference use it)."""
    return {"allowed": text} if type_text is None else {"allowed": text, "type": type_text}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ----------------------------------------------------------------------------- sections
class SyntheticData(_Model):
    """Sizes of the synthetic dataset (``data.dataset: synthetic``): tests and CPU smoke runs."""

    n_train: int = Field(2000, ge=10, description="images in the training split, shared out among the sites")
    n_val: int = Field(400, ge=2, description="images in the validation split (the sites' local test shards)")
    n_test: int = Field(800, ge=2, description="images in the server's test split")
    prevalence: float = Field(0.2, gt=0, lt=1, description="share of malignant images in every split")


class DataSection(_Model):
    """Which images: a MedMNIST dataset at one resolution, or synthetic images."""

    dataset: Literal[DATASET_NAMES] = Field(  # type: ignore[valid-type]
        "dermamnist", description="dataset; `synthetic` needs no download (for tests and smoke runs)")
    size: Literal[SIZES] = Field(28, description="image side in pixels (MedMNIST+ resolutions)")  # type: ignore[valid-type]
    root: str | None = Field(None, description="folder of the MedMNIST .npz files (null: $FEDUNLEARN_DATA_ROOT, "
                             "else ~/.medmnist)")
    synthetic: SyntheticData = Field(SyntheticData(), description="sizes of the synthetic dataset")


class SitesSection(_Model):
    """The hospitals and how the training split is shared among them."""

    count: int = Field(4, ge=1, le=1024, description="number of hospitals (one Flower ClientApp each)")
    partition: Literal[PARTITIONS] = Field(  # type: ignore[valid-type]
        "iid", description="how the training split is shared: iid, Dirichlet label skew (`alpha`), quantity skew "
        "(`sizes`), or explicit size and malignancy prevalence per site (`sizes`, `prevalence`)")
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration of `dirichlet` (smaller: more label skew)")
    sizes: tuple[float, ...] | None = Field(
        None, description="one entry per site: relative weights under `quantity`, fractions of the training split "
        "(summing to <= 1) under `explicit`", json_schema_extra=_allowed("a list of numbers > 0, one per site, or null"))
    prevalence: tuple[float, ...] | None = Field(
        None, description="one entry per site: share of malignant images in the site's shard (`explicit` only)",
        json_schema_extra=_allowed("a list of numbers in [0, 1], one per site, or null"))
    names: tuple[str, ...] | None = Field(
        None, description="one entry per site: names used in tables and site folders (null: site-0, site-1, ...)",
        json_schema_extra=_allowed("a list of distinct names of letters, digits, '.', '_', '-', one per site, or null"))

    @model_validator(mode="after")
    def _lengths(self) -> SitesSection:
        for key in ("sizes", "prevalence", "names"):
            value = getattr(self, key)
            if value is not None and len(value) != self.count:
                raise bad(key, list(value), f"a list of {self.count} entries, one per site (sites.count is {self.count})")
        for key in ("sizes", "prevalence"):
            if self.partition == "explicit" and getattr(self, key) is None:
                raise BadValue(key, "missing required key; sites.partition 'explicit' needs sites.sizes and "
                               "sites.prevalence, one entry per site")
        if self.partition == "quantity" and self.sizes is None:
            raise BadValue("sizes", "missing required key; sites.partition 'quantity' needs sites.sizes, "
                           "one relative weight per site")
        for i, p in enumerate(self.prevalence or ()):
            if not 0 <= p <= 1:
                raise bad(f"prevalence[{i}]", p, "a number in [0, 1]")
        for i, s in enumerate(self.sizes or ()):
            if not s > 0:
                raise bad(f"sizes[{i}]", s, "a number > 0")
        if self.partition == "explicit" and self.sizes is not None and sum(self.sizes) > 1 + 1e-9:
            raise bad("sizes", list(self.sizes), f"fractions of the training split summing to <= 1 under 'explicit' "
                      f"(these sum to {sum(self.sizes):g})")
        for i, name in enumerate(self.names or ()):
            if not _SITE_NAME.fullmatch(name):
                raise bad(f"names[{i}]", name, "a name of letters, digits, '.', '_', '-', starting with a letter or "
                          "digit, at most 100 characters (it names a folder)")
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
    server_lr: float = Field(0.01, gt=0, description="server learning rate eta (`fedadam`, `fedyogi` only)")
    local_epochs: int = Field(1, ge=1, description="local epochs per round at each site")
    lr: float = Field(0.05, gt=0, description="local SGD learning rate (the peak rate under a schedule)")
    lr_schedule: Literal[LR_SCHEDULES] = Field(  # type: ignore[valid-type]
        "constant", description="round-level learning-rate schedule: `constant`, `cosine` (annealed towards "
        "`lr * lr_min_factor` over the rounds) or `step` (times `step_gamma` every `step_every` rounds), "
        "after a linear warm-up of `warmup_rounds` rounds")
    warmup_rounds: int = Field(0, ge=0, description="rounds of linear warm-up before `cosine` or `step` "
                               "(lr * r / (warmup_rounds + 1) in round r)")
    lr_min_factor: float = Field(0.0, ge=0, le=1, description="`cosine`: the floor the rate anneals towards, as a share of `lr`")
    step_every: int = Field(1, ge=1, description="`step`: rounds between two decays")
    step_gamma: float = Field(0.5, gt=0, le=1, description="`step`: factor of each decay")
    momentum: float = Field(0.9, ge=0, lt=1, description="local SGD momentum")
    weight_decay: float = Field(5e-4, ge=0, description="local SGD weight decay")
    batch_size: int = Field(64, ge=1, description="local mini-batch size")
    augment: bool = Field(True, description="random flips and crops during local training")
    fraction_train: float = Field(1.0, gt=0, le=1, description="share of the sites sampled to train each round "
                                  "(seeded draw)")
    min_sites: int = Field(1, ge=1, description="at least this many sites train each round (<= sites.count)")


class ForgetRequest(_Model):
    """One right-to-erasure request: in ``round`` hospital ``site`` asks to forget a share of its patients."""

    round: int = Field(ge=1, description="round in which the request arrives (<= training.rounds)")
    site: int = Field(ge=0, description="index of the requesting site (0 .. sites.count - 1)")
    fraction: float = Field(gt=0, le=1, description="share of the site's current training pool to forget "
                            "(1.0: the whole hospital leaves)")
    mode: Literal[FORGET_MODES] = Field(  # type: ignore[valid-type]
        "random", description="which rows: uniformly at random, class-balanced, malignant only or benign only")
    seed: int = Field(0, description="seed of the row selection (mixed with the scenario seed and the site)")


class FractionRange(_Model):
    """A forget fraction drawn uniformly from ``[min, max]``."""

    min: float = Field(gt=0, le=1, description="smallest fraction")
    max: float = Field(gt=0, le=1, description="largest fraction")

    @model_validator(mode="after")
    def _order(self) -> FractionRange:
        if self.min > self.max:
            raise bad("", {"min": self.min, "max": self.max}, "min <= max, both in (0, 1]")
        return self


class StochasticRequests(_Model):
    """Requests as a seeded random process: each listed site, each round of the window, files one with probability ``rate``."""

    rate: float = Field(ge=0, le=1, description="probability that a site files a request in a round "
                        "(independently per site and round)")
    fraction: FractionRange = Field(
        description="forget fraction of each drawn request: a fixed number, or {min, max} drawn uniformly",
        json_schema_extra=_allowed("a number in (0, 1], or a mapping {min, max} with 0 < min <= max <= 1",
                                   "number or mapping"))
    mode: Literal[FORGET_MODES] = Field("random", description="which rows each drawn request forgets")  # type: ignore[valid-type]
    start_round: int = Field(1, ge=1, description="first round in which requests may arrive")
    end_round: int | None = Field(None, ge=1, description="last round in which requests may arrive "
                                  "(null: training.rounds)")
    sites: tuple[int, ...] | None = Field(None, description="site indices that may file requests (null: every site)",
                                          json_schema_extra=_allowed("a list of distinct site indices, or null"))
    seed: int = Field(0, description="mixed with the top-level seed: another value draws other requests over the "
                      "same data and partition")

    @field_validator("fraction", mode="before")
    @classmethod
    def _fixed_fraction(cls, v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"min": v, "max": v}
        return v


class UnlearnSettings(_Model):
    """Overrides of the unlearning method's own hyperparameters; a key left out keeps the method's default.

    Reads like a mapping of the keys that are set (``dict(settings)``), which is
    what :func:`fedunlearn.unlearning.resolve_config` takes.
    """

    epochs: int | None = Field(None, ge=1, description="unlearning epochs")
    lr: float | None = Field(None, gt=0, description="unlearning learning rate")
    momentum: float | None = Field(None, ge=0, lt=1, description="SGD momentum")
    weight_decay: float | None = Field(None, ge=0, description="SGD weight decay")
    batch_size: int | None = Field(None, ge=1, description="mini-batch size")
    augment: bool | None = Field(None, description="random flips and crops")
    lr_schedule: Literal["constant", "cosine"] | None = Field(None, description="learning-rate schedule")
    mask_ratio: float | None = Field(None, gt=0, le=1, description="share of weights SalUn's saliency mask keeps "
                                     "(`salun`, `salun-cra`)")
    amp: bool | None = Field(None, description="bf16 autocast on CUDA")
    preset: Literal["paper", "study-code"] | None = Field(
        None, description="ingredient values of the method as the paper describes it (`paper`, the defaults) or as the "
        "study's public code behaves on MedMNIST (`study-code`); ingredients set here win (METHOD.md section 4b)")
    schedule: Literal["sequential", "mixed"] | None = Field(
        None, description="`sequential`: each epoch a forget pass then a retain pass; `mixed`: one shuffled pass over "
        "both (`rl`, `salun`, `salun-cra`)")
    forget_labels: Literal["random", "true"] | None = Field(
        None, description="labels of the forget rows under cross-entropy: drawn at random, or their true labels")
    loss_weighting: Literal["class", "none"] | None = Field(
        None, description="class-balanced cross-entropy (counted on the retain set) or plain cross-entropy")
    cra_scope: Literal["malignant", "all"] | None = Field(
        None, description="forget rows that get SalUn-CRA's entropy term (`salun-cra`)")
    mask_freeze: Literal["restore", "gradient"] | None = Field(
        None, description="masked-out weights put back after every step, or only their gradients masked "
        "(`salun`, `salun-cra`)")

    @model_serializer(mode="wrap")
    def _only_set(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}

    def keys(self) -> list[str]:
        return [k for k in type(self).model_fields if getattr(self, k) is not None]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.keys())


class DeletionSection(_Model):
    """Deletion requests, how a site unlearns them, and the policy that decides when."""

    method: Literal[DELETION_METHODS] = Field(  # type: ignore[valid-type]
        "salun-cra", description="unlearning method of each site; `retrain` is Federated Retrain, the gold standard "
        "(every forget set removed from round 1; `policy` is then ignored); `none` is the counterfactual control "
        "arm: the requests are recorded and their forget sets tracked, but nothing is withdrawn or unlearned, so "
        "the run equals every method's run with the same seed up to the first request round")
    integration: Literal["adopt", "aggregate"] = Field(
        "adopt", description="`adopt`: the unlearned model becomes the global model (only the unlearning sites work "
        "that round); `aggregate`: it is averaged with the other sites' updates")
    policy: Literal[POLICY_NAMES] = Field(  # type: ignore[valid-type]
        "immediate", description="when accepted requests are honoured: `immediate` (unlearned in their round), "
        "`batched` (withdrawn at once, unlearned together every `batch_every` rounds), `retrain` (withdrawn at once; "
        "every `batch_every` rounds with new requests the global model is reset and training restarts)")
    batch_every: int = Field(1, ge=1, description="period in rounds of `batched` and `retrain` (acts in rounds "
                             "k, 2k, ...; ignored by `immediate`)")
    unlearn: UnlearnSettings = Field(UnlearnSettings(), description="overrides of the method's hyperparameters")
    requests: tuple[ForgetRequest, ...] = Field((), description="explicit requests; their ids are their positions, "
                                                "0, 1, ...")
    stochastic: StochasticRequests | None = Field(
        None, description="requests drawn by a seeded random process, appended after the explicit ones (null: none)")

    @model_validator(mode="after")
    def _unlearn_fits_method(self) -> DeletionSection:
        if self.method == CONTROL:
            return self
        try:
            resolve_config(self.method, self.unlearn)
        except (TypeError, ValueError) as err:
            raise bad("unlearn", self.unlearn.model_dump(), f"settings accepted by method {self.method} ({err})") from None
        return self


class EvaluationSection(_Model):
    """Clinical costs and the membership-inference attack used to score every round."""

    c_fp: float = Field(1.0, ge=0, description="Global Risk II cost of a false positive")
    c_fn: float = Field(20.0, ge=0, description="Global Risk II cost of a false negative (a missed cancer)")
    mia: Literal[MIA_VARIANTS] = Field("confidence", description="feature of the SVC membership-inference attack")  # type: ignore[valid-type]
    server_val: bool = Field(True, description="the server also evaluates on the whole validation split")
    operating_points: tuple[float | str, ...] = Field(
        (0.5, "sens@0.95", "cost-optimal"),
        description="decision thresholds at which the server's test metrics are recorded every round: `0.5` is the "
        "study's (phase `test`); each other point is chosen anew every round on the server's validation split, "
        "never on the test split (phase `test@<point>`, with the threshold used as metric `threshold`): a fixed "
        "threshold, `sens@T` (the highest threshold with validation sensitivity >= T) or `cost-optimal` (minimal "
        "Global Risk II on validation with `c_fp`, `c_fn`)",
        json_schema_extra=_allowed("a list of: " + OPERATING_POINT_HELP, "list of numbers or strings"))

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
        if not self.server_val and any(operating_point_name(p) != "0.5" for p in self.operating_points):
            raise bad("server_val", False, "true while operating_points other than 0.5 are chosen on the "
                      "validation split (or set evaluation.operating_points: [0.5])")
        return self


class RaySection(_Model):
    """Ray resources of Flower's simulation engine."""

    address: str | None = Field(None, description="address of a running Ray cluster (null: start a local one)")
    num_cpus_per_client: float = Field(1.0, gt=0, description="CPUs reserved for each hospital")
    num_gpus_per_client: float | Literal["auto"] = Field(
        "auto", description="GPU share of each hospital (auto: 1 / min(sites, 4) where CUDA is present, else 0)",
        json_schema_extra=_allowed("auto or a number in [0, 1]"))

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
        "round", description="which message fails: `round` (all of the site's messages that round), `train`, "
        "`unlearn` (the unlearning pass, after the rows are withdrawn: the request stays pending and is retried) "
        "or `evaluate`")


class FailuresSection(_Model):
    """Simulated site failures, for tests and what-if studies; every draw is seeded."""

    dropout: float = Field(0.0, ge=0, lt=1, description="probability that a site fails all its messages of a round "
                           "(drawn per round and site from the seed)")
    crashes: tuple[SiteCrash, ...] = Field((), description="scheduled failures of given sites in given rounds")
    min_sites: int = Field(1, ge=1, description="the run stops, resumable, when fewer sites than this answer a "
                           "round's evaluation (<= sites.count)")


class Scenario(_Model):
    """One federated run: data, hospitals, training, deletions, evaluation, Ray."""

    name: str = Field("scenario", description="run name (prefix of the default run directory)",
                      json_schema_extra=_allowed("letters, digits, '.', '_', '+', '=', '-', starting with a letter or "
                                                 "digit, at most 100 characters"))
    seed: int = Field(0, description="seed of everything: data, partition, sampling, forget rows, drawn requests")
    model: Literal[MODEL_NAMES] = Field("small-cnn", description="network")  # type: ignore[valid-type]
    device: str = Field("auto", description="torch device of sites and server (auto: CUDA when present)",
                        json_schema_extra=_allowed("auto, cpu, mps, cuda or cuda:N"))
    data: DataSection = Field(DataSection(), description="which images")
    sites: SitesSection = Field(SitesSection(), description="the hospitals")
    training: TrainingSection = Field(TrainingSection(), description="federated training")
    deletion: DeletionSection = Field(DeletionSection(), description="deletion requests and policy")
    evaluation: EvaluationSection = Field(EvaluationSection(), description="clinical scoring")
    ray: RaySection = Field(RaySection(), description="Ray resources")
    failures: FailuresSection = Field(FailuresSection(), description="simulated site failures")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _RUN_NAME.fullmatch(v):
            raise bad("", v, "a name of letters, digits, '.', '_', '+', '=', '-', starting with a letter or digit, "
                      "at most 100 characters (it names the run folder)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not _DEVICE.match(v):
            raise bad("", v, "auto, cpu, mps, cuda or cuda:N")
        return v

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        n, rounds = self.sites.count, self.training.rounds
        site_range = f"a site index in [0, {n - 1}] (sites.count is {n})"
        round_range = f"a round in [1, {rounds}] (training.rounds is {rounds})"
        for i, req in enumerate(self.deletion.requests):
            if req.site >= n:
                raise bad(f"deletion.requests[{i}].site", req.site, site_range)
            if req.round > rounds:
                raise bad(f"deletion.requests[{i}].round", req.round, round_range)
        sto = self.deletion.stochastic
        if sto is not None:
            for i, site in enumerate(sto.sites or ()):
                if not 0 <= site < n:
                    raise bad(f"deletion.stochastic.sites[{i}]", site, site_range)
            if sto.sites is not None and len(set(sto.sites)) != len(sto.sites):
                raise bad("deletion.stochastic.sites", list(sto.sites), "distinct site indices")
            if sto.start_round > rounds:
                raise bad("deletion.stochastic.start_round", sto.start_round, round_range)
            if sto.end_round is not None and not sto.start_round <= sto.end_round <= rounds:
                raise bad("deletion.stochastic.end_round", sto.end_round,
                          f"a round in [{sto.start_round}, {rounds}] (from start_round to training.rounds) or null")
        if self.deletion.policy != "immediate" and self.deletion.batch_every > rounds:
            raise bad("deletion.batch_every", self.deletion.batch_every,
                      f"an integer in [1, {rounds}] (training.rounds is {rounds}; a longer period never acts)")
        for i, crash in enumerate(self.failures.crashes):
            if crash.site >= n:
                raise bad(f"failures.crashes[{i}].site", crash.site, site_range)
            if crash.round > rounds:
                raise bad(f"failures.crashes[{i}].round", crash.round, round_range)
        if self.failures.min_sites > n:
            raise bad("failures.min_sites", self.failures.min_sites, f"an integer in [1, {n}] (sites.count is {n})")
        if self.training.min_sites > n:
            raise bad("training.min_sites", self.training.min_sites, f"an integer in [1, {n}] (sites.count is {n})")
        return self

    @property
    def retrain(self) -> bool:
        """Federated Retrain: every forget set removed from round 1, no unlearning pass."""
        return self.deletion.method == "retrain"

    @property
    def control(self) -> bool:
        """The counterfactual control arm: requests recorded and forget sets tracked, nothing erased."""
        return self.deletion.method == CONTROL

    @property
    def effective_requests(self) -> tuple[ForgetRequest, ...]:
        """Explicit requests then the ones drawn by ``deletion.stochastic``; a request id is its index here."""
        return _effective_requests(self)


@functools.lru_cache(maxsize=32)
def _effective_requests(scenario: Scenario) -> tuple[ForgetRequest, ...]:
    """Cached by value (a frozen scenario hashes its fields), so a copy with other values expands anew."""
    return expand_requests(scenario)


# ----------------------------------------------------------------------------- schema walking
def _unwrap(ann: Any) -> tuple[Any, bool]:
    """(annotation without ``Annotated`` and ``None``, whether ``None`` is allowed)."""
    if get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        nullable = len(args) < len(get_args(ann))
        return (args[0] if len(args) == 1 else Union[tuple(args)]), nullable  # noqa: UP007
    return ann, False


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _bounds_text(kind: str, info: FieldInfo | None) -> str:
    lo = hi = None
    for m in info.metadata if info is not None else ():
        if isinstance(m, annotated_types.Ge):
            lo = ("[", m.ge)
        elif isinstance(m, annotated_types.Gt):
            lo = ("(", m.gt)
        elif isinstance(m, annotated_types.Le):
            hi = ("]", m.le)
        elif isinstance(m, annotated_types.Lt):
            hi = (")", m.lt)
    if lo and hi:
        return f"{kind} in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    if lo:
        return f"{kind} {'>=' if lo[0] == '[' else '>'} {lo[1]:g}"
    if hi:
        return f"{kind} {'<=' if hi[0] == ']' else '<'} {hi[1]:g}"
    return kind


def _plural(ann: Any) -> str:
    base, _ = _unwrap(ann)
    if _is_model(base):
        return "mappings with keys " + ", ".join(base.model_fields)
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(base, "values")


def _allowed_text(ann: Any, info: FieldInfo | None) -> str:
    """What a key accepts, in words: the same text in error messages and in the reference."""
    extra = info.json_schema_extra if info is not None else None
    if isinstance(extra, dict) and "allowed" in extra:
        return str(extra["allowed"])
    base, nullable = _unwrap(ann)
    text = _base_allowed(base, info)
    if nullable:
        return "true, false or null" if text == "true or false" else f"{text} or null"
    return text


def _base_allowed(base: Any, info: FieldInfo | None) -> str:
    origin = get_origin(base)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(base))
    if base is bool:
        return "true or false"
    if base is int:
        return _bounds_text("an integer", info)
    if base is float:
        return _bounds_text("a number", info)
    if base is str:
        return "a string"
    if origin is tuple:
        return "a list of " + _plural(get_args(base)[0])
    if _is_model(base):
        return "a mapping with keys " + ", ".join(base.model_fields)
    if origin is dict or base is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_base_allowed(a, None) for a in get_args(base))
    return "any value"


def _type_text(ann: Any) -> str:
    base, nullable = _unwrap(ann)
    origin = get_origin(base)
    if origin is Literal:
        text = "integer" if isinstance(get_args(base)[0], int) else "string"
    elif origin is tuple:
        text = "list of " + _type_text(get_args(base)[0]).replace("integer", "integers").replace(
            "number", "numbers").replace("string", "strings").replace("mapping", "mappings")
    elif _is_model(base) or origin is dict:
        text = "mapping"
    elif origin in (Union, types.UnionType):
        text = " or ".join(_type_text(a) for a in get_args(base))
    else:
        text = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(base, "any")
    return f"{text} or null" if nullable else text


def _value_type(value: Any) -> str:
    if value is None:
        return "null"
    for t, name in ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
                    (Mapping, "a mapping"), ((list, tuple), "a list")):
        if isinstance(value, t):
            return name
    return type(value).__name__


def _render(parts: Sequence[str | int]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _join(prefix: str, suffix: str) -> str:
    if not suffix:
        return prefix
    if not prefix or suffix.startswith("["):
        return prefix + suffix
    return f"{prefix}.{suffix}"


class _Target:
    """Where a pydantic ``loc`` points in the schema: the deepest field it names."""

    def __init__(self, loc: Sequence[str | int]) -> None:
        ann: Any = Scenario
        self.info: FieldInfo | None = None
        self.parent: type[BaseModel] = Scenario
        self.parts: list[str | int] = []
        self.rest: tuple[str | int, ...] = ()
        for i, p in enumerate(loc):
            base, _ = _unwrap(ann)
            if _is_model(base) and isinstance(p, str) and p in base.model_fields:
                self.parent, self.info = base, base.model_fields[p]
                ann = self.info.annotation
            elif isinstance(p, int) and get_origin(base) is tuple:
                ann, self.info = get_args(base)[0], None
            else:
                self.rest = tuple(loc[i:])
                break
            self.parts.append(p)
        self.annotation = ann

    @property
    def path(self) -> str:
        return _render(self.parts)

    def section(self) -> type[BaseModel] | None:
        base, _ = _unwrap(self.annotation)
        return base if _is_model(base) else None




def _in(path: str) -> str:
    return f"in {path}" if path else "at the top level"


def _format_error(source: str, err: ValidationError) -> str:
    """The first error of ``err`` as one line: ``SOURCE: key.path: bad value X; allowed: ...``."""
    first = err.errors(include_url=False)[0]
    loc, kind = tuple(first["loc"]), first["type"]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, BadValue):
        return f"{source}: {_join(_render(loc), cause.path) or '(top level)'}: {cause.detail}"
    if kind == "extra_forbidden":
        where = _Target(loc[:-1])
        section = where.section() or where.parent
        key, valid = str(loc[-1]), list(section.model_fields)
        hint = difflib.get_close_matches(key, valid, n=1)
        return (f"{source}: {_render(loc)}: unknown key {key!r}; allowed keys {_in(where.path)}: "
                f"{', '.join(valid)}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    if kind == "missing":
        where = _Target(loc[:-1])
        section = where.section() or where.parent
        required = [k for k, f in section.model_fields.items() if f.is_required()]
        return (f"{source}: {where.path or '(top level)'}: missing required key {str(loc[-1])!r}; "
                f"required keys {_in(where.path)}: {', '.join(required)}")
    target = _Target(loc)
    value = first.get("input")
    allowed = _allowed_text(target.annotation, target.info)
    wrong_type = kind.endswith(("_type", "_parsing")) or kind == "int_from_float"
    typed = f" ({_value_type(value)})" if wrong_type else ""
    return f"{source}: {target.path or '(top level)'}: bad value {show(value)}{typed}; allowed: {allowed}"


# ----------------------------------------------------------------------------- loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML would silently keep the last)."""


def _no_duplicates(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; each key may appear once per section", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


_INDEX = re.compile(r"^(?P<key>[^\[\]]*)(?P<idx>(\[\d+\])*)$")


def _override_path(key: str) -> list[str | int]:
    """``deletion.requests[0].fraction`` or ``deletion.requests.0.fraction`` -> ['deletion', 'requests', 0, 'fraction']."""
    parts: list[str | int] = []
    for chunk in key.strip().split("."):
        m = _INDEX.match(chunk)
        if m is None or (not m["key"] and not m["idx"]):
            raise ValueError(chunk)
        if m["key"]:
            parts.append(int(m["key"]) if m["key"].isdigit() else m["key"])
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m["idx"]))
    return parts


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str], source: str = "--set") -> dict[str, Any]:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw scenario mapping.

    A path may index a list (``deletion.requests[0].fraction=0.3``, or
    ``deletion.requests.0.fraction``); missing mappings along the path are
    created. ``raw`` itself is left unchanged.
    """
    out = _copy(raw)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(f"{source}: bad value {item!r}; allowed: key.path=value, e.g. training.rounds=5")
        key, value = item.split("=", 1)
        try:
            parts = _override_path(key)
        except ValueError:
            raise ScenarioError(f"{source}: bad key path {key.strip()!r}; allowed: dotted keys with optional list "
                                "indices, e.g. deletion.requests[0].fraction") from None
        node: Any = out
        for depth, part in enumerate(parts):
            here, above = _render(parts[:depth + 1]), _render(parts[:depth])
            if isinstance(part, int):
                if not isinstance(node, list):
                    raise ScenarioError(f"{source}: {here}: bad key path; {above or 'the top level'} is not a list")
                if part >= len(node):
                    allowed = f"an index in [0, {len(node) - 1}]" if node else "none, the list is empty"
                    raise ScenarioError(f"{source}: {here}: no such list entry; allowed: {allowed}")
            elif not isinstance(node, dict):
                raise ScenarioError(f"{source}: {here}: bad key path; {above} is a list, index it, "
                                    f"e.g. {above}[0].{part}")
            if depth == len(parts) - 1:
                try:
                    node[part] = _parse_value(value)
                except yaml.YAMLError:
                    raise ScenarioError(f"{source}: {here}: value {value.strip()!r} is not valid YAML; quote it, "
                                        f"e.g. {here}='...'") from None
                break
            child = node[part] if isinstance(part, int) else node.get(part)
            if not isinstance(child, (dict, list)):
                child = {}
                node[part] = child
            node = child
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def scenario_from_mapping(raw: Mapping[str, Any], source: str = "<scenario>") -> Scenario:
    try:
        return Scenario.model_validate(dict(raw))
    except ValidationError as err:
        raise ScenarioError(_format_error(source, err)) from None


def read_scenario_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"{path}: no such scenario file; pass the path of a YAML file such as configs/quickstart.yaml")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None)
        if problem and problem.startswith("duplicate key"):
            raise ScenarioError(f"{path}: line {mark.line + 1}: {problem}") from None
        raise ScenarioError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if raw is None:
        raise ScenarioError(f"{path}: the file is empty; write the sections to change (copy configs/quickstart.yaml "
                            "and edit it)")
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{path}: (top level): bad value {show(raw)}; allowed: a mapping with keys "
                            + ", ".join(Scenario.model_fields))
    return dict(raw)


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file."""
    raw = apply_overrides(read_scenario_yaml(path), overrides)
    return scenario_from_mapping(raw, str(path))


def scenario_to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)


# ----------------------------------------------------------------------------- reference
_REFERENCE_INTRO = """\
# Scenario reference

A scenario is a YAML file with the sections below; every key is optional
unless its default says *required*. Run one with `fedunlearn run FILE` and check
one without running it with `fedunlearn validate FILE`; override any key with
`--set key.path=value` (lists by index: `--set deletion.requests[0].fraction=0.3`).
An invalid file gets one line: `FILE: key.path: bad value X; allowed: ...`.

This file is generated from the schema (`fedunlearn/federated/scenario.py`):
after changing a field, regenerate it with

    .venv/bin/python -m fedunlearn.federated.scenario > configs/README.md

(`tests/scenario/test_reference.py` fails while it is out of date).

## Shipped scenarios

| file | question it answers |
|---|---|
| `quickstart.yaml` | CPU minutes: does the shared model start missing cancers after one site's erasure? |
| `heterogeneous-5-sites.yaml` | CPU minutes: with malignancy prevalence from 5 % to 40 % across sites, whose risk moves when the high-prevalence site forgets? |
| `stochastic-erasure.yaml` | CPU minutes: what does a steady stream of random erasure requests do to risk and compute? |
| `batched-vs-immediate.yaml` | CPU minutes: does batching erasures every k rounds save compute, and at what privacy/risk cost meanwhile? |
| `site-leaves.yaml` | CPU minutes: a whole hospital leaves; does the federation keep working, and how fast is it forgotten? |
| `paper-dermamnist-20.yaml`, `paper-dermamnist-50.yaml` | GPU: the study's scale on DermaMNIST (ResNet-18, 64 px), one site forgets 20 % / 50 % |
| `paper-pathmnist-20.yaml`, `paper-pathmnist-50.yaml` | GPU: the same on PathMNIST |

## Deletion policies

Whatever the policy, from the round a request arrives its site never trains on
the forget rows again (they leave the training pool at once; the server only
sends request ids, the rows are chosen on site). The policies differ in when
the model is made to forget them, and the run's metrics table carries the
cost (`seconds`, `images` of phases `train` and `unlearn`;
`fedunlearn.federated.policy.policy_cost` sums them):

| policy | what happens |
|---|---|
"""


def _field_rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    nested: list[tuple[type[BaseModel], str]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        base, _ = _unwrap(info.annotation)
        item = get_args(base)[0] if get_origin(base) is tuple else None
        if _is_model(base):
            nested.append((base, path))
            if not info.is_required() and info.default is not None:
                continue  # a section: its keys follow
        if model is UnlearnSettings:
            default = "method's own"
        else:
            default = "*required*" if info.is_required() else f"`{_yaml_inline(info.default)}`"
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        rows.append((f"`{path}`", str(extra.get("type") or _type_text(info.annotation)), default, _allowed_text(info.annotation, info),
                     info.description or ""))
        if _is_model(item):
            nested.append((item, f"{path}[]"))
    for sub, path in nested:
        rows.extend(_field_rows(sub, path))
    return rows


def _yaml_inline(value: Any) -> str:
    """A default as one would write it in the YAML file (strings unquoted)."""
    return value if isinstance(value, str) else show(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def reference_markdown() -> str:
    """``configs/README.md``: every key of a scenario with its type, default, allowed values and description."""
    lines = [_REFERENCE_INTRO.rstrip("\n")]
    lines += [f"| `{p.name}` | {_cell(p.description)} |" for p in POLICIES.values()]
    lines += ["", "## Keys", "",
              "`deletion.requests[].round` is the key `round` of every entry of the list `deletion.requests`.", ""]
    header = ["| key path | type | default | allowed | description |", "|---|---|---|---|---|"]
    top = [r for r in _field_rows(Scenario, "") if "." not in r[0]]
    lines += ["### top level", "", *header, *(f"| {' | '.join(_cell(c) for c in r)} |" for r in top), ""]
    for name, info in Scenario.model_fields.items():
        base, _ = _unwrap(info.annotation)
        if not _is_model(base):
            continue
        lines += [f"### {name}", "", base.__doc__.strip().splitlines()[0] if base.__doc__ else "", "", *header]
        lines += [f"| {' | '.join(_cell(c) for c in r)} |" for r in _field_rows(base, name)]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference_markdown(), end="")
