"""fedunlearn.registry: one pattern for every name -> entry lookup, and the names that feed the schema."""

from __future__ import annotations

import pytest

from fedunlearn.data import PARTITION_NAMES
from fedunlearn.federated.policy import POLICY_NAMES
from fedunlearn.federated.scenario import DELETION_METHODS, PARTITIONS, STRATEGIES, Scenario
from fedunlearn.federated.strategies import STRATEGY_NAMES, get_strategy
from fedunlearn.models import MODEL_NAMES
from fedunlearn.registry import Registry
from fedunlearn.unlearning import METHOD_NAMES


def test_register_get_and_the_error_listing_the_names() -> None:
    reg: Registry[int] = Registry("widget")

    @reg.register("a")
    def a() -> int:
        return 1

    reg.add("b", 2)
    assert (
        reg.get("a") is a
        and reg.get("b") == 2
        and reg.names == ("a", "b")
        and "a" in reg
        and len(reg) == 2
    )
    with pytest.raises(ValueError) as err:
        reg.get("c")
    assert str(err.value) == "unknown widget 'c'; choose one of: a, b"
    with pytest.raises(ValueError, match="already registered"):
        reg.add("a", 3)
    reg.add("a", 3, force=True)
    assert reg.get("a") == 3 and dict(reg.entries) == {"a": 3, "b": 2}


def test_the_schema_allows_exactly_the_registered_names() -> None:
    assert STRATEGIES == STRATEGY_NAMES and PARTITIONS == PARTITION_NAMES
    assert DELETION_METHODS[:-1] == METHOD_NAMES
    props = Scenario.model_json_schema()["$defs"]
    assert tuple(props["TrainingSection"]["properties"]["strategy"]["enum"]) == STRATEGY_NAMES
    assert tuple(props["SitesSection"]["properties"]["partition"]["enum"]) == PARTITION_NAMES
    assert tuple(props["DeletionSection"]["properties"]["policy"]["enum"]) == POLICY_NAMES
    assert tuple(Scenario.model_json_schema()["properties"]["model"]["enum"]) == MODEL_NAMES


def test_strategy_options_come_from_the_training_section() -> None:
    t = Scenario().training
    assert get_strategy("fedprox").options(t) == {"proximal_mu": t.proximal_mu}
    assert get_strategy("fedadam").options(t) == {"eta": t.server_lr, "eta_l": t.lr}
    assert get_strategy("fedavg").options(t) == {}
    with pytest.raises(ValueError, match="choose one of: fedavg, fedprox"):
        get_strategy("scaffold")
