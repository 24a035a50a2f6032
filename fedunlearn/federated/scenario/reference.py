"""The scenario reference, ``configs/README.md``, generated from the schema.

Every key with its type, default, allowed values (the words of the error
messages, :func:`~fedunlearn.federated.scenario.errors.allowed_text`) and
description; regenerate it with
``python -m fedunlearn.federated.scenario > configs/README.md`` (a test fails
while it is out of date).
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from fedunlearn.federated.policy import POLICIES
from fedunlearn.federated.scenario.deletion import UnlearnSettings
from fedunlearn.federated.scenario.errors import allowed_text, show
from fedunlearn.federated.scenario.keypaths import is_model, unwrap
from fedunlearn.federated.scenario.schema import Scenario

_REFERENCE_INTRO = """\
# Scenario reference

A scenario is a YAML file with the sections below; every key is optional
unless its default says *required*. Run one with `fedunlearn run FILE` and check
one without running it with `fedunlearn validate FILE`; override any key with
`--set key.path=value` (lists by index: `--set deletion.requests[0].fraction=0.3`).
An invalid file gets one line: `FILE: key.path: bad value X; allowed: ...`.

This file is generated from the schema (`fedunlearn/federated/scenario/`):
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


def _type_text(ann: Any) -> str:
    base, nullable = unwrap(ann)
    origin = get_origin(base)
    if origin is Literal:
        text = "integer" if isinstance(get_args(base)[0], int) else "string"
    elif origin is tuple:
        text = "list of " + _type_text(get_args(base)[0]).replace("integer", "integers").replace(
            "number", "numbers"
        ).replace("string", "strings").replace("mapping", "mappings")
    elif is_model(base) or origin is dict:
        text = "mapping"
    elif origin in (Union, types.UnionType):
        text = " or ".join(_type_text(a) for a in get_args(base))
    else:
        text = {bool: "boolean", int: "integer", float: "number", str: "string"}.get(base, "any")
    return f"{text} or null" if nullable else text


def _field_rows(model: type[BaseModel], prefix: str) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    nested: list[tuple[type[BaseModel], str]] = []
    for name, info in model.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        base, _ = unwrap(info.annotation)
        item = get_args(base)[0] if get_origin(base) is tuple else None
        if is_model(base):
            nested.append((base, path))
            if not info.is_required() and info.default is not None:
                continue  # a section: its keys follow
        if model is UnlearnSettings:
            default = "method's own"
        else:
            default = "*required*" if info.is_required() else f"`{_yaml_inline(info.default)}`"
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        rows.append(
            (
                f"`{path}`",
                str(extra.get("type") or _type_text(info.annotation)),
                default,
                allowed_text(info.annotation, info),
                info.description or "",
            )
        )
        if is_model(item):
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
    lines += [
        "",
        "## Keys",
        "",
        "`deletion.requests[].round` is the key `round` of every entry of the list `deletion.requests`.",
        "",
    ]
    header = ["| key path | type | default | allowed | description |", "|---|---|---|---|---|"]
    top = [r for r in _field_rows(Scenario, "") if "." not in r[0]]
    lines += [
        "### top level",
        "",
        *header,
        *(f"| {' | '.join(_cell(c) for c in r)} |" for r in top),
        "",
    ]
    for name, info in Scenario.model_fields.items():
        base, _ = unwrap(info.annotation)
        if not is_model(base):
            continue
        lines += [
            f"### {name}",
            "",
            base.__doc__.strip().splitlines()[0] if base.__doc__ else "",
            "",
            *header,
        ]
        lines += [f"| {' | '.join(_cell(c) for c in r)} |" for r in _field_rows(base, name)]
        lines.append("")
    return "\n".join(lines)
