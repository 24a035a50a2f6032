"""The ClientApp <-> server protocol: every message kind survives its encode/decode pair, on the keys of the wire.

Pure: records are built and read back, no Ray and no Flower run.
"""

from __future__ import annotations

import math

import pytest
from flwr.app import ConfigRecord, MetricRecord, RecordDict

from fedunlearn.federated import protocol as P
from fedunlearn.metrics import Confusion


def test_setup_query_and_reply_round_trip() -> None:
    query = P.SetupQuery('{"name": "x"}', "/runs/x", shared_fs=False)
    assert dict(query.to_record()) == {
        "scenario": '{"name": "x"}',
        "run-dir": "/runs/x",
        "shared-fs": False,
    }
    assert P.SetupQuery.from_record(query.to_record()) == query
    reply = P.SetupReply(
        site=2,
        train_size=100,
        pool_size=90,
        test_size=20,
        prevalence=0.25,
        initial_ids=(0, 3),
        initial_counts=(5, 7),
        node_config='site="site-2" state-dir="/h/state"',
        data_md5="abc",
    )
    record = reply.to_record()
    assert list(record) == [
        "site",
        "train-size",
        "pool-size",
        "test-size",
        "prevalence",
        "initial-ids",
        "initial-counts",
        "node-config",
        "problem",
        "data-md5",
    ]
    assert P.SetupReply.from_record(record) == reply
    assert P.SetupReply.from_record(P.SetupReply(0, 1, 1, 1, 0.0).to_record()).initial_ids == ()


def test_train_config_reads_withdrawals_and_requests() -> None:
    base = ConfigRecord({"server-round": 4, "lr": 0.1})
    assert P.TrainConfig.from_record(base) == P.TrainConfig(4) and P.server_round_of(base) == 4
    withdraw = P.with_withdrawals(base, [1, 2])
    assert "withdraw-ids" not in base  # a copy: the shared config record is left alone
    assert P.TrainConfig.from_record(withdraw) == P.TrainConfig(4, withdraw_ids=(1, 2))
    unlearn = P.with_requests(ConfigRecord({"server-round": 5, "proximal-mu": 0.01}), [3])
    assert dict(unlearn)["request-ids"] == [3]
    assert P.TrainConfig.from_record(unlearn) == P.TrainConfig(
        5, proximal_mu=0.01, request_ids=(3,)
    )


def test_train_reply_round_trips() -> None:
    metrics = P.TrainMetrics(num_examples=40, loss=0.5, seconds=1.25, images=80)
    assert dict(metrics.to_record()) == {
        "num-examples": 40,
        "train-loss": 0.5,
        "seconds": 1.25,
        "images": 80,
    }
    assert P.TrainMetrics.from_record(metrics.to_record()) == metrics
    plain = P.TrainInfo(site=1)
    assert dict(plain.to_record()) == {"site": 1, "kind": "train"}
    assert P.TrainInfo.from_record(plain.to_record()) == plain
    withdrew = P.TrainInfo(site=1, withdrawn_ids=(0, 4), withdrawn_counts=(6, 9))
    assert dict(withdrew.to_record())["withdrawn-ids"] == [0, 4]
    assert P.TrainInfo.from_record(withdrew.to_record()) == withdrew
    assert not P.is_unlearn_reply(withdrew.to_record())


def test_unlearn_info_round_trips_with_before_and_after_metrics() -> None:
    info = P.UnlearnInfo(
        site=0,
        method="salun-cra",
        request_ids=(2, 5),
        request_counts=(10, 3),
        forget_count=13,
        retain_count=200,
        seconds=2.5,
        images=640,
        mask_fraction=0.5,
        before={"ubac": 0.9, "mia_efficacy": 0.7, "forget_count": 13.0},
        after={"ubac": 0.6, "mia_efficacy": 0.4, "forget_count": 13.0},
    )
    record = info.to_record()
    assert P.is_unlearn_reply(record)
    assert list(record)[:10] == [
        "site",
        "kind",
        "method",
        "request-ids",
        "request-counts",
        "forget-count",
        "retain-count",
        "unlearn-seconds",
        "unlearn-images",
        "mask-fraction",
    ]
    assert record["before.ubac"] == 0.9 and record["after.mia_efficacy"] == 0.4
    back = P.UnlearnInfo.from_record(record)
    assert back == info
    assert list(back.after) == [
        "ubac",
        "mia_efficacy",
        "forget_count",
    ]  # the order the site wrote them


def test_unlearn_info_without_a_pass_has_no_mask_and_no_metrics() -> None:
    info = P.UnlearnInfo(
        site=3,
        method="none",
        request_ids=(1,),
        request_counts=(0,),
        forget_count=0,
        retain_count=50,
        seconds=0.0,
        images=0,
    )
    record = info.to_record()
    assert "mask-fraction" not in record and not any(
        k.startswith(("before.", "after.")) for k in record
    )
    assert P.UnlearnInfo.from_record(record) == info


def test_unlearn_info_reads_the_records_sites_wrote_before() -> None:
    """A record written with the literal keys (as the ClientApp wrote it before this module) decodes the same."""
    record = ConfigRecord(
        {
            "site": 1,
            "kind": "unlearn",
            "method": "rl",
            "request-ids": [0],
            "request-counts": [5],
            "forget-count": 5,
            "retain-count": 7,
            "unlearn-seconds": 0.5,
            "unlearn-images": 12,
            "mask-fraction": -1.0,
            "before.ubac": 1.0,
            "after.ubac": 0.25,
        }
    )
    info = P.UnlearnInfo.from_record(record)
    assert (info.site, info.method, info.request_ids, info.request_counts) == (1, "rl", (0,), (5,))
    assert (info.forget_count, info.retain_count, info.seconds, info.images) == (5, 7, 0.5, 12)
    assert (
        info.mask_fraction == -1.0 and info.before == {"ubac": 1.0} and info.after == {"ubac": 0.25}
    )


def test_evaluate_reply_round_trips_forget_metrics_by_request() -> None:
    reply = P.EvaluateReply(
        site=2,
        confusion=Confusion(tp=3, fp=1, tn=10, fn=2),
        seconds=0.75,
        forget={0: {"ubac": 0.5, "mia_efficacy": 0.6}, 12: {"ubac": 0.1}},
    )
    content = reply.to_content()
    assert dict(content["forget"]) == {
        "site": 2,
        "r0.ubac": 0.5,
        "r0.mia_efficacy": 0.6,
        "r12.ubac": 0.1,
    }
    metrics = content["metrics"]
    assert metrics["num-examples"] == 16 and metrics["seconds"] == 0.75
    assert P.EvaluateReply.from_content(content) == reply


def test_evaluate_reply_without_forget_sets() -> None:
    content = RecordDict(
        {
            "metrics": MetricRecord(
                {"num-examples": 4, "tp": 1, "fp": 1, "tn": 1, "fn": 1, "seconds": 0.1}
            ),
            "forget": ConfigRecord({"site": 0}),
        }
    )
    reply = P.EvaluateReply.from_content(content)
    assert reply.forget == {} and reply.confusion == Confusion(1, 1, 1, 1) and reply.site == 0


@pytest.mark.parametrize("loss", [float("nan"), 0.0])
def test_train_metrics_keep_nan_loss(loss: float) -> None:
    back = P.TrainMetrics.from_record(P.TrainMetrics(0, loss, 0.0, 0).to_record())
    assert (math.isnan(back.loss) and math.isnan(loss)) or back.loss == loss
