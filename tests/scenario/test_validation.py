"""Scenario validation: every error is one line, ``FILE: key.path: bad value X; allowed: ...``."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fedunlearn.cli import main
from fedunlearn.federated.scenario import (
    ScenarioError,
    apply_overrides,
    load_scenario,
    scenario_from_mapping,
    scenario_to_yaml,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml"))

TRAINING_KEYS = (
    "rounds, strategy, proximal_mu, server_lr, local_epochs, lr, lr_schedule, warmup_rounds, "
    "lr_min_factor, step_every, step_gamma, momentum, weight_decay, batch_size, augment, fraction_train, "
    "min_sites"
)
REQUEST = {"round": 1, "site": 0, "fraction": 0.1}

BAD = [
    (
        {"training": {"rounds": 0}},
        "training.rounds: bad value 0; allowed: an integer in [1, 10000]",
    ),
    (
        {"training": {"rounds": "ten"}},
        "training.rounds: bad value 'ten' (a string); allowed: an integer in [1, 10000]",
    ),
    (
        {"training": {"round": 5}},
        f"training.round: unknown key 'round'; allowed keys in training: {TRAINING_KEYS}; "
        "did you mean 'rounds'?",
    ),
    (
        {"trainig": {}},
        "trainig: unknown key 'trainig'; allowed keys at the top level: name, seed, model, device, data, "
        "sites, training, deletion, evaluation, ray, failures, deployment; did you mean 'training'?",
    ),
    (
        {"training": 5},
        f"training: bad value 5 (an integer); allowed: a mapping with keys {TRAINING_KEYS}",
    ),
    (
        {"training": {"strategy": "fedavgg"}},
        "training.strategy: bad value 'fedavgg'; allowed: one of fedavg, fedprox, fedadam, fedyogi, fedmedian",
    ),
    (
        {"deletion": {"method": "salun_cra"}},
        "deletion.method: bad value 'salun_cra'; allowed: one of retrain, ft, ga, rl, salun, salun-cra, none",
    ),
    (
        {"model": "resnet50"},
        "model: bad value 'resnet50'; allowed: one of resnet18, small-cnn, small-cnn-gn",
    ),
    (
        {"training": {"lr_schedule": "linear"}},
        "training.lr_schedule: bad value 'linear'; allowed: one of constant, cosine, step",
    ),
    (
        {"training": {"step_gamma": 2}},
        "training.step_gamma: bad value 2; allowed: a number in (0, 1]",
    ),
    (
        {"evaluation": {"operating_points": [0.5, "sens@1.5"]}},
        "evaluation.operating_points[1]: bad value 'sens@1.5'; allowed: a threshold in (0, 1) such as 0.5, sens@T with T "
        "in (0, 1] (e.g. sens@0.95), or cost-optimal",
    ),
    (
        {"evaluation": {"operating_points": ["cost-optimal"]}},
        "evaluation.operating_points: bad value ['cost-optimal']; allowed: a list that keeps the study's threshold 0.5",
    ),
    (
        {"evaluation": {"operating_points": [0.5, 0.5]}},
        "evaluation.operating_points: bad value [0.5, 0.5]; allowed: distinct operating points",
    ),
    (
        {"evaluation": {"server_val": False}},
        "evaluation.server_val: bad value false; allowed: true while operating_points other than 0.5 are chosen on the "
        "validation split (or set evaluation.operating_points: [0.5])",
    ),
    (
        {"sites": {"partition": "dirichlett"}},
        "sites.partition: bad value 'dirichlett'; allowed: one of iid, dirichlet, quantity, explicit",
    ),
    ({"data": {"size": 32}}, "data.size: bad value 32; allowed: one of 28, 64, 128, 224"),
    (
        {"sites": {"count": 2.5}},
        "sites.count: bad value 2.5 (a number); allowed: an integer in [1, 1024]",
    ),
    (
        {"training": {"augment": "maybe"}},
        "training.augment: bad value 'maybe' (a string); allowed: true or false",
    ),
    (
        {"deletion": {"requests": [{"round": 1, "site": 0}]}},
        "deletion.requests[0]: missing required key 'fraction'; required keys in deletion.requests[0]: round, site, fraction",
    ),
    (
        {"deletion": {"requests": [{"round": 1, "site": 9, "fraction": 0.1}]}},
        "deletion.requests[0].site: bad value 9; allowed: a site index in [0, 3] (sites.count is 4)",
    ),
    (
        {"deletion": {"requests": [REQUEST, {"round": 99, "site": 0, "fraction": 0.1}]}},
        "deletion.requests[1].round: bad value 99; allowed: a round in [1, 10] (training.rounds is 10)",
    ),
    (
        {"deletion": {"requests": [{"round": 1, "site": 0, "fraction": 1.5}]}},
        "deletion.requests[0].fraction: bad value 1.5; allowed: a number in (0, 1]",
    ),
    (
        {"deletion": {"requests": [{**REQUEST, "mode": "all"}]}},
        "deletion.requests[0].mode: bad value 'all'; allowed: one of random, balanced, malignant, benign",
    ),
    (
        {"deletion": {"requests": {"round": 1}}},
        "deletion.requests: bad value {round: 1} (a mapping); allowed: a list of mappings with keys round, site, fraction, "
        "mode, seed",
    ),
    (
        {"sites": {"count": 3, "sizes": [0.3, 0.3]}},
        "sites.sizes: bad value [0.3, 0.3]; allowed: a list of 3 entries, one per site (sites.count is 3)",
    ),
    (
        {"sites": {"count": 3, "partition": "explicit"}},
        "sites.sizes: missing required key; sites.partition 'explicit' needs sites.sizes and sites.prevalence, "
        "one entry per site",
    ),
    (
        {"sites": {"count": 2, "prevalence": [0.1, 1.2]}},
        "sites.prevalence[1]: bad value 1.2; allowed: a number in [0, 1]",
    ),
    (
        {
            "sites": {
                "count": 2,
                "partition": "explicit",
                "sizes": [0.7, 0.6],
                "prevalence": [0.1, 0.2],
            }
        },
        "sites.sizes: bad value [0.7, 0.6]; allowed: fractions of the training split summing to <= 1 under 'explicit' "
        "(these sum to 1.3)",
    ),
    (
        {"sites": {"count": 2, "names": ["a", "a"]}},
        "sites.names: bad value ['a', 'a']; allowed: distinct names, one per site",
    ),
    (
        {"sites": {"count": 2, "names": ["a", "b/c"]}},
        "sites.names[1]: bad value 'b/c'; allowed: a name of letters, digits, '.', '_', '-', starting with a letter or digit, at most 100 characters (it names a folder)",
    ),
    (
        {"training": {"min_sites": 9}},
        "training.min_sites: bad value 9; allowed: an integer in [1, 4] (sites.count is 4)",
    ),
    (
        {"ray": {"num_gpus_per_client": "lots"}},
        "ray.num_gpus_per_client: bad value 'lots' (a string); allowed: auto or a number in [0, 1]",
    ),
    ({"device": "gpu"}, "device: bad value 'gpu'; allowed: auto, cpu, mps, cuda or cuda:N"),
    (
        {"deletion": {"unlearn": {"epoch": 3}}},
        "deletion.unlearn.epoch: unknown key 'epoch'; allowed keys in deletion.unlearn: epochs, lr, momentum, "
        "weight_decay, batch_size, augment, lr_schedule, mask_ratio, amp, preset, schedule, forget_labels, "
        "loss_weighting, cra_scope, mask_freeze; did you mean 'epochs'?",
    ),
    (
        {"deletion": {"unlearn": {"epochs": 0}}},
        "deletion.unlearn.epochs: bad value 0; allowed: an integer >= 1 or null",
    ),
    (
        {"deletion": {"policy": "lazy"}},
        "deletion.policy: bad value 'lazy'; allowed: one of immediate, batched, retrain",
    ),
    (
        {"deletion": {"policy": "batched", "batch_every": 50}},
        "deletion.batch_every: bad value 50; allowed: an integer in [1, 10] (training.rounds is 10; a longer period "
        "never acts)",
    ),
    (
        {"deletion": {"stochastic": {"rate": 0.1}}},
        "deletion.stochastic: missing required key 'fraction'; required keys in deletion.stochastic: rate, fraction",
    ),
    (
        {"deletion": {"stochastic": {"rate": 1.5, "fraction": 0.2}}},
        "deletion.stochastic.rate: bad value 1.5; allowed: a number in [0, 1]",
    ),
    (
        {"deletion": {"stochastic": {"rate": 0.1, "fraction": {"min": 0.3, "max": 0.1}}}},
        "deletion.stochastic.fraction: bad value {min: 0.3, max: 0.1}; allowed: min <= max, both in (0, 1]",
    ),
    (
        {"deletion": {"stochastic": {"rate": 0.1, "fraction": "abc"}}},
        "deletion.stochastic.fraction: bad value 'abc' (a string); allowed: a number in (0, 1], or a mapping {min, max} "
        "with 0 < min <= max <= 1",
    ),
    (
        {"deletion": {"stochastic": {"rate": 0.1, "fraction": 0.2, "sites": [0, 7]}}},
        "deletion.stochastic.sites[1]: bad value 7; allowed: a site index in [0, 3] (sites.count is 4)",
    ),
    (
        {
            "deletion": {
                "stochastic": {"rate": 0.1, "fraction": 0.2, "start_round": 3, "end_round": 2}
            }
        },
        "deletion.stochastic.end_round: bad value 2; allowed: a round in [3, 10] (from start_round to training.rounds) "
        "or null",
    ),
]


@pytest.mark.parametrize(("raw", "expected"), BAD, ids=[e.split(":")[0] for _, e in BAD])
def test_bad_scenario_gives_one_exact_line(raw: dict, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_mapping(raw, "bad.yaml")
    assert str(info.value) == f"bad.yaml: {expected}"
    assert "\n" not in str(info.value)


def test_validate_command_prints_the_line_and_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {strategy: fedsgd}\n")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"fedunlearn: error: {bad}: training.strategy: bad value 'fedsgd'; "
        "allowed: one of fedavg, fedprox, fedadam, fedyogi, fedmedian"
    )


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text("deletion: {method: rl}\ntraining: {rounds: 3}\ndeletion: {method: ga}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(f)
    assert (
        str(info.value)
        == f"{f}: line 3: duplicate key 'deletion'; each key may appear once per section"
    )


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(
        ScenarioError, match=r"list.yaml: \(top level\): bad value \['a', 'b'\]; allowed: a mapping"
    ):
        load_scenario(f)


@pytest.mark.parametrize("config", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_config_validates_and_says_what_it_answers(config: Path, capsys) -> None:
    assert main(["validate", str(config)]) == 0
    assert "valid" in capsys.readouterr().out
    header = config.read_text().split("\nname:")[0]
    assert header.startswith("#") and "Question" in header, (
        f"{config.name}: header comment must state its question"
    )


def test_shipped_configs_cover_the_brief() -> None:
    names = {p.name for p in SHIPPED}
    assert {
        "quickstart.yaml",
        "heterogeneous-5-sites.yaml",
        "stochastic-erasure.yaml",
        "site-leaves.yaml",
        "batched-vs-immediate.yaml",
        "paper-dermamnist-20.yaml",
        "paper-dermamnist-50.yaml",
        "paper-pathmnist-20.yaml",
        "paper-pathmnist-50.yaml",
    } <= names


def test_paper_configs_are_the_study_scale() -> None:
    for name in ("dermamnist-20", "dermamnist-50", "pathmnist-20", "pathmnist-50"):
        s = load_scenario(CONFIGS / f"paper-{name}.yaml")
        assert (s.model, s.data.size, s.training.batch_size, s.training.lr) == (
            "resnet18",
            64,
            256,
            0.1,
        )
        assert s.data.dataset == name.split("-")[0]
        assert [r.fraction for r in s.deletion.requests] == [int(name.split("-")[1]) / 100]


def test_heterogeneous_config_is_feasible_on_dermamnist(derma_root: Path) -> None:
    from fedunlearn.federated import site as S

    s = load_scenario(CONFIGS / "heterogeneous-5-sites.yaml", [f"data.root={derma_root}"])
    labels = S.scenario_dataset(s, quiet=True).train.labels
    prevalence = [float(labels[S.site_shards(s, k).train_rows].float().mean()) for k in range(5)]
    assert prevalence == pytest.approx([0.05, 0.10, 0.20, 0.30, 0.40], abs=0.005)


# ----------------------------------------------------------------------------- overrides
def test_overrides_parse_yaml_values_and_create_sections() -> None:
    raw = {"training": {"rounds": 10}}
    out = apply_overrides(
        raw,
        [
            "training.rounds=3",
            "training.augment=false",
            "sites.names=[a, b]",
            "deletion.unlearn.lr=0.001",
            "name=x=y",
        ],
    )
    assert out == {
        "training": {"rounds": 3, "augment": False},
        "sites": {"names": ["a", "b"]},
        "deletion": {"unlearn": {"lr": 0.001}},
        "name": "x=y",
    }
    assert raw == {"training": {"rounds": 10}}  # the input is not modified


def test_overrides_index_lists_both_ways() -> None:
    raw = {"deletion": {"requests": [dict(REQUEST), {"round": 2, "site": 1, "fraction": 0.2}]}}
    out = apply_overrides(raw, ["deletion.requests[1].fraction=0.5", "deletion.requests.0.site=3"])
    assert out["deletion"]["requests"] == [
        {**REQUEST, "site": 3},
        {"round": 2, "site": 1, "fraction": 0.5},
    ]
    assert raw["deletion"]["requests"][1]["fraction"] == 0.2
    whole = apply_overrides(raw, ["deletion.requests=[{round: 4, site: 0, fraction: 1.0}]"])
    assert whole["deletion"]["requests"] == [{"round": 4, "site": 0, "fraction": 1.0}]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "training.rounds",
            "--set: bad value 'training.rounds'; allowed: key.path=value, e.g. training.rounds=5",
        ),
        (
            "deletion.requests[5].site=1",
            "--set: deletion.requests[5]: no such list entry; allowed: an index in [0, 0]",
        ),
        (
            "deletion.requests.site=1",
            "--set: deletion.requests.site: bad key path; deletion.requests is a list, index it, e.g. deletion.requests[0].site",
        ),
        (
            "training..rounds=1",
            "--set: bad key path 'training..rounds'; allowed: dotted keys with optional list indices, "
            "e.g. deletion.requests[0].fraction",
        ),
    ],
)
def test_bad_overrides_are_one_line(override: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        apply_overrides({"deletion": {"requests": [dict(REQUEST)]}}, [override])
    assert str(info.value) == message


def test_override_then_validation_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(CONFIGS / "quickstart.yaml", ["deletion.requests[0].site=7"])
    assert str(info.value) == (
        f"{CONFIGS / 'quickstart.yaml'}: deletion.requests[0].site: bad value 7; "
        "allowed: a site index in [0, 3] (sites.count is 4)"
    )


def test_quickstart_keeps_its_meaning() -> None:
    s = load_scenario(CONFIGS / "quickstart.yaml")
    assert (s.deletion.policy, s.deletion.stochastic, s.deletion.method) == (
        "immediate",
        None,
        "salun-cra",
    )
    assert [(r.round, r.site, r.fraction) for r in s.effective_requests] == [(5, 0, 0.2)]
    assert dict(s.deletion.unlearn) == {"epochs": 5}


def test_resolved_yaml_round_trips() -> None:
    s = load_scenario(CONFIGS / "stochastic-erasure.yaml")
    again = scenario_from_mapping(yaml.safe_load(scenario_to_yaml(s)), "resolved")
    assert again == s and again.effective_requests == s.effective_requests
    assert (
        "lr" not in yaml.safe_load(scenario_to_yaml(s))["deletion"]["unlearn"]
    )  # unset overrides stay unset
