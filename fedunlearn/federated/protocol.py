"""The messages between the hospital ClientApp and the server: their keys, and one encode/decode pair per kind.

Flower carries records of plain values; this module is the only place that
knows their keys. Each kind of message content is a small frozen dataclass
with ``to_record`` (what the sender puts in the message) and ``from_record``
(what the receiver gets back):

- :class:`SetupQuery` / :class:`SetupReply`: ``query.setup``, the scenario
  out, the site's partition id and sizes back;
- :class:`TrainConfig`: the ``config`` record of ``train`` and
  ``train.unlearn`` messages, with the request ids a site must withdraw
  (``withdraw-ids``) or unlearn (``request-ids``);
- :class:`TrainMetrics`, :class:`TrainInfo` and :class:`UnlearnInfo`: a reply
  to ``train`` / ``train.unlearn`` (weights, the ``metrics`` record that Flower
  aggregates by ``num-examples``, and an ``info`` record of what the site did,
  with the forget-set metrics before and after an unlearning pass);
- :class:`EvaluateReply`: confusion counts on the local test shard and the
  forget-set metrics of every request the site applied (``r{rid}.{metric}``);
- the risk guard's kinds (:mod:`fedunlearn.federated.guard`): a retried
  ``train.unlearn`` carries ``guard-retry`` (the index of the safer setting in
  ``deletion.guard.retry``); :class:`RecoverConfig` is the ``config`` of a
  ``train.recover`` message (a recovery round on retain data only, answered
  like ``train``); :class:`VerifyQuery` / :class:`VerifyReply` are
  ``query.verify``, the requesting site's forget-set check of a recovered model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedunlearn.metrics import Confusion

# message types
SETUP = "query.setup"
TRAIN = "train"
UNLEARN = "train.unlearn"
EVALUATE = "evaluate"
RECOVER = "train.recover"
VERIFY = "query.verify"

# records of a message's content
CONFIG = "config"
ARRAYS = "arrays"
METRICS = "metrics"
INFO = "info"
SITE_RECORD = "site"
FORGET = "forget"

# keys
SCENARIO = "scenario"
RUN_DIR = "run-dir"
SERVER_ROUND = "server-round"
PROXIMAL_MU = "proximal-mu"
WITHDRAW_IDS = "withdraw-ids"
REQUEST_IDS = "request-ids"
GUARD_RETRY = "guard-retry"
RECOVERY_STEP = "recovery-step"
NUM_EXAMPLES = "num-examples"
SECONDS = "seconds"
SITE = "site"
KIND = "kind"
BEFORE = "before."
AFTER = "after."


def _ints(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(int(v) for v in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float))


# ----------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class SetupQuery:
    """``query.setup``: the scenario as JSON text, the server's run directory, and whether the sites share the
    server's filesystem (the simulation engine: a site without ``state-dir`` keeps its files under the run
    directory; in a deployment every site must name its own ``state-dir``)."""

    scenario_json: str
    run_dir: str
    shared_fs: bool = True

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(
            {SCENARIO: self.scenario_json, RUN_DIR: self.run_dir, "shared-fs": self.shared_fs}
        )

    @classmethod
    def from_record(cls, record: ConfigRecord) -> SetupQuery:
        return cls(str(record[SCENARIO]), str(record[RUN_DIR]), bool(record.get("shared-fs", True)))


@dataclass(frozen=True)
class SetupReply:
    """A site's answer to ``query.setup``: who it is, its sizes, and the forget sets it removed before round 1.

    ``node_config`` is the node's config as given (for the server's messages); ``problem`` is why the node
    could not set up (``site`` is then -1); ``data_md5`` is the MD5 of the data file it read ("" for
    synthetic data).
    """

    site: int
    train_size: int
    pool_size: int
    test_size: int
    prevalence: float
    initial_ids: tuple[int, ...] = ()
    initial_counts: tuple[int, ...] = ()
    node_config: str = ""
    problem: str = ""
    data_md5: str = ""

    def to_record(self) -> ConfigRecord:
        return ConfigRecord(
            {
                SITE: self.site,
                "train-size": self.train_size,
                "pool-size": self.pool_size,
                "test-size": self.test_size,
                "prevalence": self.prevalence,
                "initial-ids": list(self.initial_ids),
                "initial-counts": list(self.initial_counts),
                "node-config": self.node_config,
                "problem": self.problem,
                "data-md5": self.data_md5,
            }
        )

    @classmethod
    def from_record(cls, record: ConfigRecord) -> SetupReply:
        return cls(
            int(record[SITE]),
            record["train-size"],
            record["pool-size"],
            record["test-size"],
            record["prevalence"],
            _ints(record["initial-ids"]),
            _ints(record["initial-counts"]),
            str(record.get("node-config", "")),
            str(record.get("problem", "")),
            str(record.get("data-md5", "")),
        )


# ----------------------------------------------------------------------------- train and unlearn
@dataclass(frozen=True)
class TrainConfig:
    """What a site reads from the ``config`` record of a ``train`` or ``train.unlearn`` message."""

    server_round: int
    proximal_mu: float = 0.0
    withdraw_ids: tuple[int, ...] = ()
    request_ids: tuple[int, ...] = ()
    retry: int | None = None  # index into deletion.guard.retry: a guard's retried pass

    @classmethod
    def from_record(cls, record: ConfigRecord) -> TrainConfig:
        return cls(
            int(record[SERVER_ROUND]),
            float(record.get(PROXIMAL_MU, 0.0)),
            _ints(record.get(WITHDRAW_IDS, [])),
            _ints(record.get(REQUEST_IDS, [])),
            int(record[GUARD_RETRY]) if GUARD_RETRY in record else None,
        )


def server_round_of(config: ConfigRecord) -> int:
    """The round a ``train``, ``train.unlearn`` or ``evaluate`` message belongs to (Flower's ``server-round``)."""
    return int(config[SERVER_ROUND])


def with_withdrawals(config: ConfigRecord, rids: Sequence[int]) -> ConfigRecord:
    """A copy of a train ``config`` telling the site to withdraw these requests' rows before training."""
    cfg = ConfigRecord(dict(config))
    cfg[WITHDRAW_IDS] = list(rids)
    return cfg


def with_requests(config: ConfigRecord, rids: Sequence[int]) -> ConfigRecord:
    """A copy of a train ``config`` telling the site to withdraw and unlearn these requests (``train.unlearn``)."""
    cfg = ConfigRecord(dict(config))
    cfg[REQUEST_IDS] = list(rids)
    return cfg


def with_retry(config: ConfigRecord, rids: Sequence[int], index: int) -> ConfigRecord:
    """A ``train.unlearn`` config asking the site to redo its pass with ``deletion.guard.retry[index]``."""
    cfg = with_requests(config, rids)
    cfg[GUARD_RETRY] = int(index)
    return cfg


@dataclass(frozen=True)
class RecoverConfig:
    """The ``config`` record of a ``train.recover`` message: recovery round ``step`` after ``server_round``'s
    erasure (the settings themselves are ``deletion.guard.recover``, which the site has)."""

    server_round: int
    step: int

    def to_record(self) -> ConfigRecord:
        return ConfigRecord({SERVER_ROUND: self.server_round, RECOVERY_STEP: self.step})

    @classmethod
    def from_record(cls, record: ConfigRecord) -> RecoverConfig:
        return cls(int(record[SERVER_ROUND]), int(record[RECOVERY_STEP]))


@dataclass(frozen=True)
class VerifyQuery:
    """``query.verify``: the requests whose forget sets the site measures the sent model on."""

    server_round: int
    request_ids: tuple[int, ...]

    def to_record(self) -> ConfigRecord:
        return ConfigRecord({SERVER_ROUND: self.server_round, REQUEST_IDS: list(self.request_ids)})

    @classmethod
    def from_record(cls, record: ConfigRecord) -> VerifyQuery:
        return cls(int(record[SERVER_ROUND]), _ints(record[REQUEST_IDS]))


@dataclass(frozen=True)
class VerifyReply:
    """A site's answer to ``query.verify``: forget-set metrics by request (aggregates only)."""

    site: int
    forget: Mapping[int, Mapping[str, float]] = field(default_factory=dict)

    def to_record(self) -> ConfigRecord:
        record = ConfigRecord({SITE: self.site})
        for rid, report in self.forget.items():
            for k, v in report.items():
                record[f"r{rid}.{k}"] = float(v)
        return record

    @classmethod
    def from_record(cls, record: ConfigRecord) -> VerifyReply:
        return cls(int(record[SITE]), _forget_by_request(record))


def _forget_by_request(record: ConfigRecord) -> dict[int, dict[str, float]]:
    """``r{rid}.{metric}`` keys of a record, by request id (the ``site`` key skipped)."""
    by_request: dict[int, dict[str, float]] = {}
    for key, value in record.items():
        if key == SITE:
            continue
        rid, metric = key.split(".", 1)
        by_request.setdefault(int(rid.removeprefix("r")), {})[metric] = float(value)
    return by_request


@dataclass(frozen=True)
class TrainMetrics:
    """The ``metrics`` record of a train or unlearn reply (Flower weights the aggregation by ``num-examples``)."""

    num_examples: int | float
    loss: float
    seconds: float
    images: int | float

    def to_record(self) -> MetricRecord:
        return MetricRecord(
            {
                NUM_EXAMPLES: self.num_examples,
                "train-loss": self.loss,
                SECONDS: self.seconds,
                "images": self.images,
            }
        )

    @classmethod
    def from_record(cls, record: MetricRecord) -> TrainMetrics:
        return cls(record[NUM_EXAMPLES], record["train-loss"], record[SECONDS], record["images"])


@dataclass(frozen=True)
class TrainInfo:
    """The ``info`` record of a reply to ``train``: the site, and the requests whose rows it withdrew first."""

    site: int
    withdrawn_ids: tuple[int, ...] = ()
    withdrawn_counts: tuple[int, ...] = ()

    def to_record(self) -> ConfigRecord:
        record = ConfigRecord({SITE: self.site, KIND: "train"})
        if self.withdrawn_ids:
            record["withdrawn-ids"] = list(self.withdrawn_ids)
            record["withdrawn-counts"] = list(self.withdrawn_counts)
        return record

    @classmethod
    def from_record(cls, record: ConfigRecord) -> TrainInfo:
        if "withdrawn-ids" not in record:
            return cls(int(record[SITE]))
        return cls(
            int(record[SITE]), _ints(record["withdrawn-ids"]), _ints(record["withdrawn-counts"])
        )


@dataclass(frozen=True)
class UnlearnInfo:
    """The ``info`` record of a reply to ``train.unlearn``: what the unlearning pass did.

    ``before`` and ``after`` hold the forget-set metrics of the model before
    and after the pass (sent as ``before.<metric>`` / ``after.<metric>``; empty
    when no pass ran, ``method`` is then ``"none"``). ``mask_fraction`` is the
    share of weights SalUn's mask kept, -1 for a method without a mask, None
    when no pass ran.
    """

    site: int
    method: str
    request_ids: tuple[int, ...]
    request_counts: tuple[int, ...]
    forget_count: int
    retain_count: int
    seconds: float
    images: int
    mask_fraction: float | None = None
    before: Mapping[str, float] = field(default_factory=dict)
    after: Mapping[str, float] = field(default_factory=dict)

    def to_record(self) -> ConfigRecord:
        values: dict[str, Any] = {
            SITE: self.site,
            KIND: "unlearn",
            "method": self.method,
            REQUEST_IDS: list(self.request_ids),
            "request-counts": list(self.request_counts),
            "forget-count": self.forget_count,
            "retain-count": self.retain_count,
            "unlearn-seconds": self.seconds,
            "unlearn-images": self.images,
        }
        if self.mask_fraction is not None:
            values["mask-fraction"] = self.mask_fraction
        values.update({f"{BEFORE}{k}": v for k, v in self.before.items()})
        values.update({f"{AFTER}{k}": v for k, v in self.after.items()})
        return ConfigRecord(values)

    @classmethod
    def from_record(cls, record: ConfigRecord) -> UnlearnInfo:
        numbers = {k: float(v) for k, v in record.items() if _is_number(v) and k != SITE}
        mask = numbers.get("mask-fraction")
        return cls(
            site=int(record[SITE]),
            method=str(record["method"]),
            request_ids=_ints(record[REQUEST_IDS]),
            request_counts=_ints(record["request-counts"]),
            forget_count=int(record["forget-count"]),
            retain_count=int(record["retain-count"]),
            seconds=numbers["unlearn-seconds"],
            images=int(record["unlearn-images"]),
            mask_fraction=mask,
            before={k.removeprefix(BEFORE): v for k, v in numbers.items() if k.startswith(BEFORE)},
            after={k.removeprefix(AFTER): v for k, v in numbers.items() if k.startswith(AFTER)},
        )


def is_unlearn_reply(info: ConfigRecord) -> bool:
    """Whether a train reply's ``info`` record reports an unlearning pass (else a training round)."""
    return info[KIND] == "unlearn"


# ----------------------------------------------------------------------------- evaluate
@dataclass(frozen=True)
class EvaluateReply:
    """A site's answer to ``evaluate``: local-test confusion counts, its compute, and forget-set metrics by request."""

    site: int
    confusion: Confusion
    seconds: float
    forget: Mapping[int, Mapping[str, float]] = field(default_factory=dict)

    def to_content(self) -> RecordDict:
        metrics = MetricRecord({NUM_EXAMPLES: self.confusion.n, **self.confusion.as_dict()})
        metrics[SECONDS] = self.seconds
        forget = ConfigRecord({SITE: self.site})
        for rid, report in self.forget.items():
            for k, v in report.items():
                forget[f"r{rid}.{k}"] = v
        return RecordDict({METRICS: metrics, FORGET: forget})

    @classmethod
    def from_content(cls, content: RecordDict) -> EvaluateReply:
        metrics, forget = content[METRICS], content[FORGET]
        return cls(
            int(forget[SITE]),
            Confusion.from_mapping(metrics),
            metrics[SECONDS],
            _forget_by_request(forget),
        )
