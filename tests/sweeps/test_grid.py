"""Grid parsing and up-front validation: one line per problem, naming the --grid argument or the grid point."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedunlearn.cli import main
from fedunlearn.federated.scenario import (
    ScenarioError,
    apply_overrides,
    read_scenario_yaml,
    scenario_from_mapping,
)
from fedunlearn.sweeps import SweepError, parse_grid, parse_value, plan_sweep, slugify, split_values
from tests.sweeps.tiny import write_tiny


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_tiny(tmp_path)


def _reason(tiny: Path, *overrides: str) -> str:
    """What the scenario validator itself says about these overrides (the part after the source)."""
    with pytest.raises(ScenarioError) as err:
        scenario_from_mapping(apply_overrides(read_scenario_yaml(tiny), overrides), "SRC")
    return str(err.value).removeprefix("SRC: ")


def test_values_are_yaml_scalars() -> None:
    assert parse_grid("deletion.method=salun-cra,rl,retrain").values == (
        "salun-cra",
        "rl",
        "retrain",
    )
    assert parse_grid("seed=0,1").values == (0, 1)
    assert parse_grid("training.lr=0.1,1e-3,2.5E+1").values == (0.1, 0.001, 25.0)
    assert parse_grid("training.augment=true,false").values == (True, False)
    assert parse_grid("sites.sizes=[0.5,0.5],[0.7,0.3]").values == ([0.5, 0.5], [0.7, 0.3])
    assert parse_value(" 'x,y' ") == "x,y"
    assert split_values("a,[1,2],{k: 3},'x,y'") == ["a", "[1,2]", "{k: 3}", "'x,y'"]


def test_key_paths_follow_the_schema_with_list_indices() -> None:
    assert (
        parse_grid("deletion.requests[0].fraction=0.1,0.2").key == "deletion.requests[0].fraction"
    )
    assert parse_grid("deletion.unlearn.epochs=1,2").values == (1, 2)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        (
            "deltion.method=rl,ga",
            "--grid deltion.method=rl,ga: unknown key 'deltion' in the top level; allowed keys there: name, seed, model, "
            "device, data, sites, training, deletion, evaluation, ray, failures, deployment; did you mean 'deletion'?",
        ),
        (
            "training.rounds.x=1",
            "--grid training.rounds.x=1: training.rounds is a value, not a section or a list",
        ),
        ("training[0]=1", "--grid training[0]=1: training is not a list; drop the index [0]"),
        (
            "deletion.method",
            "--grid deletion.method: expected KEY=V1,V2,... e.g. --grid deletion.method=salun-cra,retrain",
        ),
        (
            "seed=0,,1",
            "--grid seed=0,,1: empty value; separate values with single commas, e.g. seed=a,b",
        ),
        ("seed=0,1,0", "--grid seed=0,1,0: value(s) 0 given twice; list each value once"),
        ("=1,2", "--grid =1,2: empty key path; write e.g. --grid training.rounds=5,10"),
    ],
)
def test_bad_grid_arguments(grid: str, message: str) -> None:
    with pytest.raises(SweepError) as err:
        parse_grid(grid)
    assert str(err.value) == message


def test_a_bad_value_names_its_grid_point_on_one_line(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(SweepError) as err:
        plan_sweep(tiny, ["deletion.method=rl,foo", "training.rounds=2"], out)
    expected = "grid point deletion.method=foo, training.rounds=2: " + _reason(
        tiny, "deletion.method=foo"
    )
    assert str(err.value) == expected
    assert "bad value 'foo'" in expected and "\n" not in expected
    assert not out.exists()


def test_every_bad_point_is_listed_before_anything_runs(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(SweepError) as err:
        plan_sweep(
            tiny,
            ["training.rounds=2,0", "seed=0,1"],
            tmp_path / "out",
            control=False,
            retrain=False,
        )
    lines = str(err.value).splitlines()
    reason = _reason(tiny, "training.rounds=0")
    assert lines == [
        f"grid point training.rounds=0, seed=0: {reason}",
        f"grid point training.rounds=0, seed=1: {reason}",
    ]


def test_every_bad_grid_argument_is_listed(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(SweepError) as err:
        plan_sweep(tiny, ["deltion.method=rl", "seed=1,1", "seed=2"], tmp_path / "out")
    lines = str(err.value).splitlines()
    assert [ln.split(":")[0] for ln in lines] == [
        "--grid deltion.method=rl",
        "--grid seed=1,1",
        "--grid seed",
    ]


def test_plan_is_the_product_in_grid_order(tiny: Path, tmp_path: Path) -> None:
    plan = plan_sweep(
        tiny,
        ["deletion.method=salun-cra,retrain", "seed=0,1"],
        tmp_path / "out",
        overrides=["training.rounds=1", "deletion.requests[0].round=1"],
        control=False,
    )
    assert [p.slug for p in plan.points] == [
        "deletion.method=salun-cra,seed=0",
        "deletion.method=salun-cra,seed=1",
        "deletion.method=retrain,seed=0",
        "deletion.method=retrain,seed=1",
    ]
    p = plan.points[3]
    assert (p.scenario.deletion.method, p.scenario.seed, p.scenario.training.rounds) == (
        "retrain",
        1,
        1,
    )
    assert plan.group_keys == ("deletion.method",)
    assert plan.run_dir(p) == tmp_path / "out" / "runs" / "deletion.method=retrain,seed=1"
    assert not (tmp_path / "out").exists()  # planning writes nothing


def test_slugs() -> None:
    assert slugify(()) == "base"
    assert (
        slugify((("deletion.requests[0].fraction", 0.25), ("sites.sizes", [0.5, 0.5])))
        == "deletion.requests-0-.fraction=0.25,sites.sizes=-0.5-0.5-"
    )


def test_cli_refuses_a_bad_grid_with_one_line_and_writes_nothing(
    tiny: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    code = main(
        ["sweep", str(tiny), "--grid", "deletion.method=rl,foo", "--out", str(out), "--quiet"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith(
        "fedunlearn: error: grid point deletion.method=foo: deletion.method: bad value 'foo'"
    )
    assert not out.exists()
