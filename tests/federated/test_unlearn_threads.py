"""``ray.unlearn_threads``: the requesting site's unlearning pass runs on the threads the scenario gives it.

The site's handlers are called in-process (a ``query.setup`` message, then a
``train.unlearn`` message, as the server sends them), without Ray.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated import client_app as CA
from fedunlearn.federated import site as S
from fedunlearn.federated.protocol import (
    ARRAYS,
    CONFIG,
    INFO,
    REQUEST_IDS,
    SERVER_ROUND,
    SITE_RECORD,
    SetupQuery,
    SetupReply,
    UnlearnInfo,
)
from fedunlearn.federated.transport import to_arrays
from fedunlearn.models import build_model
from tests.federated.conftest import small_scenario

SITE, NODE = 1, 7


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """Messages are stamped with the run and node they come from; Flower's process sets them."""
    saved = TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, NODE, 1
    threads = torch.get_num_threads()  # the site's handlers set this process's thread count
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved
    torch.set_num_threads(threads)


def _set_up_site(scenario, run_dir: Path) -> Context:
    """Site 1's context after the server's ``query.setup`` message."""
    context = Context(
        run_id=1,
        node_id=NODE,
        node_config={"partition-id": SITE, "num-partitions": scenario.sites.count},
        state=RecordDict(),
        run_config={},
    )
    query = SetupQuery(json.dumps(scenario.model_dump(mode="json")), str(run_dir))
    setup = Message(RecordDict({CONFIG: query.to_record()}), NODE, "query.setup")
    assert SetupReply.from_record(CA.setup(setup, context).content[SITE_RECORD]).site == SITE
    return context


def _unlearn_on_site(
    scenario, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[int], UnlearnInfo]:
    """Set up site 1 and send it its deletion request; returns the thread counts seen inside the pass."""
    context = _set_up_site(scenario, run_dir)
    inside: list[int] = []
    real = S.local_unlearn
    monkeypatch.setattr(
        S,
        "local_unlearn",
        lambda *a, **kw: inside.append(torch.get_num_threads()) or real(*a, **kw),
    )
    content = RecordDict(
        {
            ARRAYS: to_arrays(build_model(scenario.model, seed=0)),
            CONFIG: ConfigRecord({SERVER_ROUND: 2, REQUEST_IDS: [0]}),
        }
    )
    reply = CA.unlearn(Message(content, NODE, "train.unlearn"), context)
    return inside, UnlearnInfo.from_record(reply.content[INFO])


@pytest.mark.parametrize("threads", [None, 3])
def test_the_pass_runs_on_unlearn_threads_and_the_site_gets_its_own_back(
    threads: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = small_scenario(ray={"unlearn_threads": threads})
    inside, info = _unlearn_on_site(scenario, tmp_path, monkeypatch)
    assert info.method == "salun-cra" and info.forget_count > 0  # the pass ran
    assert inside == [3 if threads else 1]  # null: num_cpus_per_client (1)
    assert torch.get_num_threads() == 1  # the site's own count (num_cpus_per_client) after the pass
    assert CA.unlearn_threads(scenario) == (threads or 1)


def test_unlearn_threads_must_be_a_positive_count() -> None:
    with pytest.raises(FedunlearnError, match="unlearn_threads"):
        small_scenario(ray={"unlearn_threads": 0})


@pytest.mark.parametrize("requests", [True, False])
def test_a_site_loads_the_attack_at_setup_only_where_the_scenario_has_requests(
    requests: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sklearn's import (about 1.6 s) is paid when the site is set up, not in the erasure round's report."""
    calls: list[str] = []
    monkeypatch.setattr(CA, "warm_attack", lambda: calls.append("warm"))
    scenario = small_scenario(**({} if requests else {"deletion": {"requests": []}}))
    _set_up_site(scenario, tmp_path)
    assert calls == (["warm"] if requests else [])


def test_warm_attack_imports_the_classifier_once() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from fedunlearn.metrics.mia import warm_attack; "
        "assert 'sklearn.svm' not in sys.modules; warm_attack(); warm_attack(); "
        "assert 'sklearn.svm' in sys.modules and warm_attack.cache_info().hits == 1"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
