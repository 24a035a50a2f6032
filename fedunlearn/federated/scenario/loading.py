"""Reading a scenario: YAML in, ``--set`` overrides applied, a validated :class:`Scenario` out.

:func:`load_scenario` is the whole way from a file to a scenario:
:func:`read_scenario_yaml` (a YAML mapping; a key written twice in a mapping is
an error), :func:`apply_overrides` (``key.path=value`` strings, the key path
parsed by :func:`~fedunlearn.federated.scenario.keypaths.parse_key_path`) and
:func:`scenario_from_mapping` (validation, every error one line).
:func:`scenario_to_yaml` writes a scenario back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fedunlearn.federated.scenario.errors import ScenarioError, format_error, show
from fedunlearn.federated.scenario.keypaths import parse_key_path, render_key_path
from fedunlearn.federated.scenario.schema import Scenario


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping (YAML would silently keep the last)."""


def _no_duplicates(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r}; each key may appear once per section",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(
    raw: dict[str, Any], overrides: Sequence[str], source: str = "--set"
) -> dict[str, Any]:
    """Apply ``key.path=value`` strings (values parsed as YAML) to a raw scenario mapping.

    A path may index a list (``deletion.requests[0].fraction=0.3``, or
    ``deletion.requests.0.fraction``); missing mappings along the path are
    created. ``raw`` itself is left unchanged.
    """
    out = _copy(raw)
    for item in overrides:
        if "=" not in item:
            raise ScenarioError(
                f"{source}: bad value {item!r}; allowed: key.path=value, e.g. training.rounds=5"
            )
        key, value = item.split("=", 1)
        try:
            parts = parse_key_path(key)
        except ValueError:
            raise ScenarioError(
                f"{source}: bad key path {key.strip()!r}; allowed: dotted keys with optional list "
                "indices, e.g. deletion.requests[0].fraction"
            ) from None
        node: Any = out
        for depth, part in enumerate(parts):
            here, above = render_key_path(parts[: depth + 1]), render_key_path(parts[:depth])
            if isinstance(part, int):
                if not isinstance(node, list):
                    raise ScenarioError(
                        f"{source}: {here}: bad key path; {above or 'the top level'} is not a list"
                    )
                if part >= len(node):
                    allowed = (
                        f"an index in [0, {len(node) - 1}]" if node else "none, the list is empty"
                    )
                    raise ScenarioError(f"{source}: {here}: no such list entry; allowed: {allowed}")
            elif not isinstance(node, dict):
                raise ScenarioError(
                    f"{source}: {here}: bad key path; {above} is a list, index it, "
                    f"e.g. {above}[0].{part}"
                )
            if depth == len(parts) - 1:
                try:
                    node[part] = _parse_value(value)
                except yaml.YAMLError:
                    raise ScenarioError(
                        f"{source}: {here}: value {value.strip()!r} is not valid YAML; quote it, "
                        f"e.g. {here}='...'"
                    ) from None
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
        raise ScenarioError(format_error(source, err, Scenario)) from None


def read_scenario_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(
            f"{path}: no such scenario file; pass the path of a YAML file such as configs/quickstart.yaml"
        )
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None)
        if problem and problem.startswith("duplicate key"):
            raise ScenarioError(f"{path}: line {mark.line + 1}: {problem}") from None
        raise ScenarioError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if raw is None:
        raise ScenarioError(
            f"{path}: the file is empty; write the sections to change (copy configs/quickstart.yaml "
            "and edit it)"
        )
    if not isinstance(raw, Mapping):
        raise ScenarioError(
            f"{path}: (top level): bad value {show(raw)}; allowed: a mapping with keys "
            + ", ".join(Scenario.model_fields)
        )
    return dict(raw)


def load_scenario(path: str | Path, overrides: Sequence[str] = ()) -> Scenario:
    """Read, override and validate a scenario file."""
    raw = apply_overrides(read_scenario_yaml(path), overrides)
    return scenario_from_mapping(raw, str(path))


def scenario_to_yaml(scenario: Scenario) -> str:
    return yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False)
