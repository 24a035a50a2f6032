"""Per-round checkpoints: exact round trip, atomic writes, one-line errors, no pickles; RunRecorder.restore.

Plain unit tests: no Ray, no Flower simulation (strategies are built, never run).
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flwr.app import Array, ArrayRecord

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated import checkpoint as checkpoint_module
from fedunlearn.federated.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    restore_strategy,
    save_checkpoint,
    strategy_state,
)
from fedunlearn.federated.ledger import ServerLedger
from fedunlearn.federated.plan import FederationPlan
from fedunlearn.federated.recorder import COLUMNS, RunRecorder
from fedunlearn.federated.strategy import make_strategy
from tests.federated.conftest import small_scenario

NODES = {0: 100, 1: 101, 2: 102}
# Not in alphabetical order, so that a round trip which sorted the keys would show.
MODEL_KEYS = ["fc.weight", "conv.weight", "bn.running_mean", "bn.step_ids", "fc.bias"]


# ------------------------------------------------------------------------------------------------ helpers
def _strategy(tmp: Path, name: str = "fedadam"):
    scenario = small_scenario(training={"strategy": name})
    ledger = ServerLedger(tmp / "ledger.sqlite")
    plan = FederationPlan(scenario, dict(NODES), ledger)
    recorder = RunRecorder(tmp, "salun-cra")
    return make_strategy(scenario, plan, recorder), plan, recorder, ledger


def _model(rng: np.random.Generator) -> ArrayRecord:
    """Arrays as a round leaves them: float64 (aggregated), float32, int64 (counters), in a fixed key order."""
    arrays = {
        "fc.weight": rng.standard_normal((4, 6)),  # float64, as aggregation produces
        "conv.weight": rng.standard_normal((6, 3, 3, 3)).astype(np.float32),
        "bn.running_mean": rng.standard_normal(6).astype(np.float32),
        "bn.step_ids": np.array(
            [0, 7, 2**40, -3], dtype=np.int64
        ),  # int64, beyond float32 precision
        "fc.bias": rng.standard_normal(4),
    }
    assert list(arrays) == MODEL_KEYS
    return ArrayRecord({k: Array(v) for k, v in arrays.items()})


def _moments(rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    shapes = {
        "fc.weight": (4, 6),
        "conv.weight": (6, 3, 3, 3),
        "bn.running_mean": (6,),
        "fc.bias": (4,),
    }
    return {
        attr: {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
        for attr in ("m_t", "v_t")
    }


def _rows(recorder: RunRecorder, server_round: int) -> pd.DataFrame:
    recorder.metrics(
        server_round, "site-0", "train", {"loss": 0.1 + server_round / 3, "num_examples": 120}
    )
    recorder.metrics(
        server_round,
        "site-1",
        "forget",
        {"ubac": 1 / 3, "mia_efficacy": 0.6180339887},
        request="r0",
    )
    recorder.metrics(
        server_round,
        "pooled",
        "local-test",
        {"global_risk_ii": math.pi * 1e-7, "nan_metric": math.nan},
    )
    table = recorder.table()
    assert list(table.columns) == list(COLUMNS)
    assert set(table["request"]) == {"", "r0"}
    return table


def _plan_state(plan: FederationPlan) -> dict:
    plan.accepted = {0, 1, 2}
    plan.pending = {1: [0, 2], 2: []}
    plan.withdrawing = {2: [1], 0: [2]}
    return plan.state()


def _assert_same_arrays(got: ArrayRecord, want: ArrayRecord) -> None:
    assert list(got.keys()) == list(want.keys())
    for key in want:
        g, w = got[key].numpy(), want[key].numpy()
        assert g.dtype == w.dtype, key
        assert g.shape == w.shape, key
        assert g.tobytes() == w.tobytes(), key


def _assert_same_state(
    got: dict[str, dict[str, np.ndarray]], want: dict[str, dict[str, np.ndarray]]
) -> None:
    assert set(got) == set(want)
    for attr in want:
        assert set(got[attr]) == set(want[attr]), attr
        for key, w in want[attr].items():
            g = np.asarray(got[attr][key])
            assert g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes(), (
                attr,
                key,
            )


def _one_line_checkpoint_error(run_dir: Path, folder: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        latest_checkpoint(run_dir)
    message = str(info.value)
    assert isinstance(info.value, FedunlearnError)
    assert "\n" not in message
    assert str(folder) in message
    assert "delete that folder" in message
    return message


@pytest.fixture
def saved(tmp_path: Path):
    """A FedAdam run directory with checkpoints written after rounds 1, 2 and 3."""
    rng = np.random.default_rng(0)
    strategy, plan, recorder, ledger = _strategy(tmp_path)
    expected = {}
    for server_round in (1, 2, 3):
        arrays = _model(rng)
        strategy.m_t, strategy.v_t = (m := _moments(rng))["m_t"], m["v_t"]
        rows = _rows(recorder, server_round)
        ledger.request(server_round, f"site-{server_round % 3}", server_round, 0.25, "random")
        plan_state = _plan_state(plan)
        event_lines = 10 * server_round + 1
        path = save_checkpoint(
            tmp_path, server_round, arrays, strategy, rows, plan_state, ledger.path, event_lines
        )
        assert path == tmp_path / "checkpoints" / f"round-{server_round:04d}"
        expected[server_round] = dict(
            arrays=arrays,
            state=m,
            rows=rows,
            plan=plan_state,
            events=event_lines,
            ledger=ledger.rows(),
        )
    return tmp_path, expected


# ------------------------------------------------------------------------------------------- round trip
def test_only_the_two_newest_checkpoints_are_kept(saved) -> None:
    run_dir, _ = saved
    assert checkpoint_module.KEEP == 2
    root = run_dir / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == [
        "round-0002",
        "round-0003",
    ]  # no .tmp folder either
    assert not list(run_dir.rglob("*.tmp"))


def test_latest_checkpoint_round_trips_everything(saved, tmp_path_factory) -> None:
    run_dir, expected = saved
    want = expected[3]
    cp = latest_checkpoint(run_dir)
    assert cp is not None
    assert cp.path == run_dir / "checkpoints" / "round-0003" and cp.server_round == 3
    _assert_same_arrays(cp.arrays, want["arrays"])
    _assert_same_state(cp.strategy_state, want["state"])
    assert cp.event_lines == want["events"]

    # rows: the same values, "" requests stay "" (not NaN), NaN values stay NaN
    pd.testing.assert_frame_equal(
        cp.rows.astype(object), want["rows"].astype(object), check_dtype=False
    )
    assert list(cp.rows.columns) == list(COLUMNS)
    assert (cp.rows["request"] == "").sum() == (want["rows"]["request"] == "").sum() > 0
    assert set(cp.rows["request"]) == {"", "r0"}
    assert cp.rows["value"].astype(float).tolist() == pytest.approx(
        want["rows"]["value"].tolist(), nan_ok=True, abs=0
    )

    # plan: JSON-able, and what a fresh plan restores to
    assert cp.plan == want["plan"]
    assert cp.plan == {
        "accepted": [0, 1, 2],
        "pending": {"1": [0, 2]},
        "withdrawing": {"0": [2], "2": [1]},
    }
    _, fresh_plan, _, _ = _strategy(tmp_path_factory.mktemp("fresh-plan"))
    fresh_plan.restore(cp.plan)
    assert fresh_plan.accepted == {0, 1, 2}
    assert fresh_plan.pending == {1: [0, 2]} and fresh_plan.withdrawing == {0: [2], 2: [1]}
    assert fresh_plan.state() == cp.plan

    # ledger: a consistent copy as it was when round 3 was saved
    assert cp.ledger == cp.path / "ledger.sqlite" and cp.ledger.is_file()
    scratch = ServerLedger(tmp_path_factory.mktemp("ledger-copy") / "ledger.sqlite")
    scratch.restore(cp.ledger)
    assert scratch.rows() == want["ledger"]
    assert [r["id"] for r in scratch.rows()] == [1, 2, 3]


def test_strategy_state_restores_bit_exactly_into_a_fresh_strategy(saved, tmp_path_factory) -> None:
    run_dir, expected = saved
    cp = latest_checkpoint(run_dir)
    fresh, _, _, _ = _strategy(tmp_path_factory.mktemp("fresh"))
    assert fresh.m_t is None and fresh.v_t is None
    restore_strategy(fresh, cp.strategy_state)
    _assert_same_state({"m_t": fresh.m_t, "v_t": fresh.v_t}, expected[3]["state"])
    _assert_same_state(strategy_state(fresh), expected[3]["state"])
    # the strategy holds its own dicts, not the checkpoint's
    fresh.m_t["fc.bias"] = np.zeros(4, dtype=np.float32)
    assert not np.array_equal(cp.strategy_state["m_t"]["fc.bias"], fresh.m_t["fc.bias"])


def test_a_checkpoint_folder_holds_only_the_documented_files(saved) -> None:
    run_dir, _ = saved
    for folder in (run_dir / "checkpoints").iterdir():
        assert sorted(p.name for p in folder.iterdir()) == [
            "ledger.sqlite",
            "metrics.csv",
            "model.safetensors",
            "state.json",
            "strategy-m_t.safetensors",
            "strategy-v_t.safetensors",
        ]


@pytest.mark.parametrize("name", ["fedavg", "fedprox", "fedmedian", "fedadam"])
def test_stateless_strategies_save_no_strategy_files(tmp_path: Path, name: str) -> None:
    """FedAvg, FedProx and FedMedian keep nothing across rounds; nor does FedAdam before its first
    aggregation (or after a retrain reset, which sets its moments to None)."""
    strategy, plan, recorder, ledger = _strategy(tmp_path, name)
    assert strategy_state(strategy) == {}
    arrays = _model(np.random.default_rng(1))
    path = save_checkpoint(
        tmp_path, 1, arrays, strategy, _rows(recorder, 1), plan.state(), ledger.path, 0
    )
    assert not list(path.glob("strategy-*"))
    cp = latest_checkpoint(tmp_path)
    assert cp.strategy_state == {}
    _assert_same_arrays(cp.arrays, arrays)
    fresh, _, _, _ = _strategy(tmp_path / "fresh", name)
    restore_strategy(fresh, cp.strategy_state)
    assert strategy_state(fresh) == {}


def test_no_checkpoint_yet_is_none(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    assert latest_checkpoint(tmp_path) is None


def test_zero_dim_arrays_keep_their_shape(tmp_path: Path) -> None:
    """A real model's BatchNorm ``num_batches_tracked`` is a 0-d int64 tensor."""
    strategy, plan, recorder, ledger = _strategy(tmp_path)
    arrays = ArrayRecord(
        {
            "bn.weight": Array(np.ones(3, dtype=np.float32)),
            "bn.num_batches_tracked": Array(np.array(12, dtype=np.int64)),
            "scale": Array(np.array(0.5)),
        }
    )
    strategy.m_t = {"scale": np.array(0.25, dtype=np.float32)}
    strategy.v_t = {"scale": np.array(0.125, dtype=np.float32)}
    save_checkpoint(tmp_path, 1, arrays, strategy, _rows(recorder, 1), plan.state(), ledger.path, 0)
    cp = latest_checkpoint(tmp_path)
    _assert_same_arrays(cp.arrays, arrays)
    _assert_same_state(cp.strategy_state, strategy_state(strategy))


# --------------------------------------------------------------------------------------- atomic writes
def test_a_half_written_tmp_folder_is_ignored(saved) -> None:
    """A kill while round 4 is written leaves ``.round-0004.tmp``: the newest complete checkpoint is used."""
    run_dir, expected = saved
    root = run_dir / "checkpoints"
    tmp = root / ".round-0004.tmp"
    tmp.mkdir()
    model = (root / "round-0003" / "model.safetensors").read_bytes()
    (tmp / "model.safetensors").write_bytes(model[: len(model) // 3])
    (tmp / "state.json").write_text('{"round": 4, "array_or')
    cp = latest_checkpoint(run_dir)
    assert cp.server_round == 3 and cp.path == root / "round-0003"
    _assert_same_arrays(cp.arrays, expected[3]["arrays"])
    # the next save of round 4 replaces the leftover, and prunes round 2
    strategy, plan, _recorder, ledger = _strategy(run_dir)
    save_checkpoint(
        run_dir,
        4,
        expected[3]["arrays"],
        strategy,
        expected[3]["rows"],
        plan.state(),
        ledger.path,
        1,
    )
    assert sorted(p.name for p in root.iterdir()) == ["round-0003", "round-0004"]
    assert latest_checkpoint(run_dir).server_round == 4


# ------------------------------------------------------------------------------------------- unreadable
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_a_key(path: Path) -> None:
    state = json.loads(path.read_text())
    state["array_order"] = state["array_order"][:-1]
    path.write_text(json.dumps(state))


def _add_a_key(path: Path) -> None:
    state = json.loads(path.read_text())
    state["array_order"] = [*state["array_order"], "extra.weight"]
    path.write_text(json.dumps(state))


DAMAGE = {
    "truncated-model": ("model.safetensors", _truncate),
    "empty-model": ("model.safetensors", lambda p: p.write_bytes(b"")),
    "garbage-model": ("model.safetensors", lambda p: p.write_bytes(b"\xff" * 64)),
    "garbage-state-json": ("state.json", lambda p: p.write_text("{not json")),
    "state-json-not-a-mapping": ("state.json", lambda p: p.write_text("[1, 2, 3]")),
    "state-json-without-plan": (
        "state.json",
        lambda p: p.write_text(
            json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "plan"})
        ),
    ),
    "missing-state-json": ("state.json", lambda p: p.unlink()),
    "missing-ledger": ("ledger.sqlite", lambda p: p.unlink()),
    "missing-metrics": ("metrics.csv", lambda p: p.unlink()),
    "array-order-missing-a-key": ("state.json", _drop_a_key),
    "array-order-with-an-extra-key": ("state.json", _add_a_key),
    "truncated-strategy": ("strategy-m_t.safetensors", _truncate),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_unreadable_checkpoint_is_a_one_line_error(saved, damage: str) -> None:
    run_dir, _ = saved
    folder = run_dir / "checkpoints" / "round-0003"
    name, spoil = DAMAGE[damage]
    spoil(folder / name)
    message = _one_line_checkpoint_error(run_dir, folder)
    assert message.startswith(f"checkpoint {folder} is unreadable")
    assert "round-0002" not in message  # it names the newest, the one to delete


def test_after_deleting_the_unreadable_folder_the_one_before_is_used(saved) -> None:
    run_dir, expected = saved
    folder = run_dir / "checkpoints" / "round-0003"
    _truncate(folder / "model.safetensors")
    _one_line_checkpoint_error(run_dir, folder)
    shutil.rmtree(folder)  # what the message tells the user to do
    cp = latest_checkpoint(run_dir)
    assert cp.server_round == 2
    _assert_same_arrays(cp.arrays, expected[2]["arrays"])


def test_array_order_may_differ_from_the_file_order(saved) -> None:
    """The arrays come back in ``state.json``'s order, whatever order the safetensors file keeps them in."""
    run_dir, _expected = saved
    state_json = run_dir / "checkpoints" / "round-0003" / "state.json"
    state = json.loads(state_json.read_text())
    assert state["array_order"] == MODEL_KEYS
    cp = latest_checkpoint(run_dir)
    assert list(cp.arrays.keys()) == MODEL_KEYS


# ---------------------------------------------------------------------------------------------- formats
def _file_format(path: Path) -> str:
    data = path.read_bytes()
    if data.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if len(data) >= 8:
        (n,) = struct.unpack("<Q", data[:8])
        if 8 + n <= len(data):
            try:
                header = json.loads(data[8 : 8 + n])
            except ValueError:
                header = None
            if isinstance(header, dict):
                return "safetensors"
    text = data.decode("utf-8")  # anything else must be text
    try:
        json.loads(text)
        return "json"
    except ValueError:
        pass
    assert text.splitlines()[0] == ",".join(COLUMNS), path
    return "csv"


def test_no_file_in_a_checkpoint_is_a_pickle(saved) -> None:
    run_dir, _ = saved
    files = [p for p in (run_dir / "checkpoints").rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        kind = _file_format(path)
        expected = {
            ".safetensors": "safetensors",
            ".json": "json",
            ".csv": "csv",
            ".sqlite": "sqlite",
        }[path.suffix]
        assert kind == expected, path
        # pickle protocols 2-5 start with PROTO (0x80) then the protocol number; torch.save writes a zip (PK)
        if (
            kind != "safetensors"
        ):  # a safetensors header length may start with byte 0x80; its JSON header was parsed
            assert not (
                data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
            ), path
        assert not data.startswith(b"PK\x03\x04"), path


def test_loading_never_unpickles(saved, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    run_dir, _ = saved
    assert latest_checkpoint(run_dir).server_round == 3


def test_checkpoint_ledger_is_a_plain_sqlite_copy(saved) -> None:
    run_dir, expected = saved
    path = run_dir / "checkpoints" / "round-0002" / "ledger.sqlite"
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        ids = [r[0] for r in con.execute("SELECT id FROM requests ORDER BY id")]
    finally:
        con.close()
    assert ids == [r["id"] for r in expected[2]["ledger"]] == [1, 2]


# --------------------------------------------------------------------------------------- recorder.restore
def _events(run_dir: Path, n: int) -> list[str]:
    lines = [json.dumps({"event": "e", "round": i}) + "\n" for i in range(n)]
    (run_dir / "events.jsonl").write_text("".join(lines))
    return lines


def test_recorder_restore_truncates_events_to_the_checkpoint(tmp_path: Path) -> None:
    lines = _events(tmp_path, 5)
    source = RunRecorder(tmp_path / "elsewhere", "rl")
    source.metrics(1, "site-0", "train", {"loss": 0.5})
    source.metrics(2, "site-1", "forget", {"ubac": 0.25}, request="r3")
    rows = source.table()

    recorder = RunRecorder(tmp_path, "rl")
    recorder.restore(rows, 3)
    assert (tmp_path / "events.jsonl").read_text() == "".join(lines[:3])
    assert recorder.event_lines == 3
    pd.testing.assert_frame_equal(recorder.table(), rows)

    recorder.event("run-resumed", 3)  # logging goes on after the kept lines
    assert recorder.event_lines == 4
    kept = (tmp_path / "events.jsonl").read_text().splitlines()
    assert (
        kept[:3] == [line.rstrip("\n") for line in lines[:3]]
        and json.loads(kept[3])["event"] == "run-resumed"
    )


def test_recorder_restore_with_all_or_no_events(tmp_path: Path) -> None:
    lines = _events(tmp_path, 2)
    empty = pd.DataFrame(columns=list(COLUMNS))
    recorder = RunRecorder(tmp_path, "rl")
    recorder.restore(empty, 2)
    assert (tmp_path / "events.jsonl").read_text() == "".join(lines)
    recorder.restore(empty, 0)
    assert (tmp_path / "events.jsonl").read_text() == ""
    assert recorder.event_lines == 0 and recorder.table().empty


def test_recorder_restore_refuses_fewer_events_than_the_checkpoint(tmp_path: Path) -> None:
    lines = _events(tmp_path, 2)
    recorder = RunRecorder(tmp_path, "rl")
    with pytest.raises(FedunlearnError) as info:
        recorder.restore(pd.DataFrame(columns=list(COLUMNS)), 3)
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "events.jsonl") in message
    assert (tmp_path / "events.jsonl").read_text() == "".join(lines)  # left as it was


def test_recorder_restore_without_an_events_file(tmp_path: Path) -> None:
    recorder = RunRecorder(tmp_path, "rl")
    with pytest.raises(FedunlearnError):
        recorder.restore(pd.DataFrame(columns=list(COLUMNS)), 1)
    assert not (tmp_path / "events.jsonl").exists()
