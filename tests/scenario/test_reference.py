"""configs/README.md is generated from the schema and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from fedunlearn.federated.scenario import Scenario, UnlearnSettings, reference_markdown
from fedunlearn.unlearning import SETTING_NAMES, UnlearnConfig

README = Path(__file__).resolve().parents[2] / "configs" / "README.md"


def test_configs_readme_is_up_to_date() -> None:
    assert README.read_text(encoding="utf-8") == reference_markdown(), (
        "configs/README.md is out of date; regenerate it: "
        ".venv/bin/python -m fedunlearn.federated.scenario > configs/README.md"
    )


def _fields(model: type[BaseModel], prefix: str = ""):
    for name, info in model.model_fields.items():
        yield f"{prefix}{name}", info
        for arg in [info.annotation, *getattr(info.annotation, "__args__", ())]:
            for inner in [arg, *getattr(arg, "__args__", ())]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from _fields(inner, f"{prefix}{name}.")


def test_every_field_is_described_and_in_the_reference() -> None:
    text = reference_markdown()
    for path, info in _fields(Scenario):
        assert info.description, f"{path} has no description"
    for key in (
        "`deletion.requests[].fraction`",
        "`deletion.stochastic.fraction.min`",
        "`deletion.policy`",
        "`deletion.unlearn.mask_ratio`",
        "`ray.num_gpus_per_client`",
        "`data.synthetic.n_train`",
    ):
        assert key in text


def test_unlearn_settings_mirror_the_method_config() -> None:
    assert (
        set(UnlearnSettings.model_fields) == set(SETTING_NAMES) == set(UnlearnConfig().settings())
    )
