"""One-line scenario errors: ``FILE: key.path: bad value X; allowed: ...``.

Validators raise :func:`bad` / :class:`BadValue` with a key path relative to
their model; :func:`format_error` turns the first error of a pydantic
``ValidationError`` into one line, walking the schema from its root model to
name what the key allows (the valid names of an enumeration, the range of a
number, the valid keys of a section, the keys a section requires). The same
words describe every key in ``configs/README.md`` (:func:`allowed_text`).
"""

from __future__ import annotations

import difflib
import math
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.scenario.keypaths import (
    KeyTarget,
    is_model,
    join_key_path,
    render_key_path,
    unwrap,
)


class ScenarioError(FedunlearnError):
    """An invalid scenario; the message is one line: file, key path, value, what is allowed."""


class BadValue(ValueError):
    """Raised inside a validator: a key path relative to the model being validated, and the rest of the line."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}" if path else detail)
        self.path, self.detail = path, detail


def show(value: Any) -> str:
    """A value as the user wrote it in YAML: strings quoted, ``true``/``false``/``null``, lists and mappings inline."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def bad(path: str, value: Any, allowed: str) -> BadValue:
    """A bad value at ``path`` (relative to the model raising it)."""
    return BadValue(path, f"bad value {show(value)}; allowed: {allowed}")


def allowed_extra(text: str, type_text: str | None = None) -> dict[str, Any]:
    """``json_schema_extra`` of a field whose allowed values (or type) need words (errors and the reference use it)."""
    return {"allowed": text} if type_text is None else {"allowed": text, "type": type_text}


# ----------------------------------------------------------------------------- what a key allows, in words
def _bounds_text(kind: str, info: FieldInfo | None) -> str:
    lo = hi = None
    for m in info.metadata if info is not None else ():
        if isinstance(m, annotated_types.Ge):
            lo = ("[", m.ge)
        elif isinstance(m, annotated_types.Gt):
            lo = ("(", m.gt)
        elif isinstance(m, annotated_types.Le):
            hi = ("]", m.le)
        elif isinstance(m, annotated_types.Lt):
            hi = (")", m.lt)
    if lo and hi:
        return f"{kind} in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    if lo:
        return f"{kind} {'>=' if lo[0] == '[' else '>'} {lo[1]:g}"
    if hi:
        return f"{kind} {'<=' if hi[0] == ']' else '<'} {hi[1]:g}"
    return kind


def _plural(ann: Any) -> str:
    base, _ = unwrap(ann)
    if is_model(base):
        return "mappings with keys " + ", ".join(base.model_fields)
    return {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(base, "values")


def allowed_text(ann: Any, info: FieldInfo | None) -> str:
    """What a key accepts, in words: the same text in error messages and in the reference."""
    extra = info.json_schema_extra if info is not None else None
    if isinstance(extra, dict) and "allowed" in extra:
        return str(extra["allowed"])
    base, nullable = unwrap(ann)
    text = _base_allowed(base, info)
    if nullable:
        return "true, false or null" if text == "true or false" else f"{text} or null"
    return text


def _base_allowed(base: Any, info: FieldInfo | None) -> str:
    origin = get_origin(base)
    if origin is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(base))
    if base is bool:
        return "true or false"
    if base is int:
        return _bounds_text("an integer", info)
    if base is float:
        return _bounds_text("a number", info)
    if base is str:
        return "a string"
    if origin is tuple:
        return "a list of " + _plural(get_args(base)[0])
    if is_model(base):
        return "a mapping with keys " + ", ".join(base.model_fields)
    if origin is dict or base is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(_base_allowed(a, None) for a in get_args(base))
    return "any value"


def _value_type(value: Any) -> str:
    if value is None:
        return "null"
    for t, name in (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (Mapping, "a mapping"),
        ((list, tuple), "a list"),
    ):
        if isinstance(value, t):
            return name
    return type(value).__name__


# ----------------------------------------------------------------------------- the one line
def _in(path: str) -> str:
    return f"in {path}" if path else "at the top level"


def format_error(source: str, err: ValidationError, root: type[BaseModel]) -> str:
    """The first error of ``err`` (validating ``root``) as one line: ``SOURCE: key.path: bad value X; allowed: ...``."""
    first = err.errors(include_url=False)[0]
    loc, kind = tuple(first["loc"]), first["type"]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, BadValue):
        return f"{source}: {join_key_path(render_key_path(loc), cause.path) or '(top level)'}: {cause.detail}"
    if kind == "extra_forbidden":
        where = KeyTarget(loc[:-1], root)
        section = where.section() or where.parent
        key, valid = str(loc[-1]), list(section.model_fields)
        hint = difflib.get_close_matches(key, valid, n=1)
        return (
            f"{source}: {render_key_path(loc)}: unknown key {key!r}; allowed keys {_in(where.path)}: "
            f"{', '.join(valid)}" + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    if kind == "missing":
        where = KeyTarget(loc[:-1], root)
        section = where.section() or where.parent
        required = [k for k, f in section.model_fields.items() if f.is_required()]
        return (
            f"{source}: {where.path or '(top level)'}: missing required key {str(loc[-1])!r}; "
            f"required keys {_in(where.path)}: {', '.join(required)}"
        )
    target = KeyTarget(loc, root)
    value = first.get("input")
    allowed = allowed_text(target.annotation, target.info)
    wrong_type = kind.endswith(("_type", "_parsing")) or kind == "int_from_float"
    typed = f" ({_value_type(value)})" if wrong_type else ""
    return f"{source}: {target.path or '(top level)'}: bad value {show(value)}{typed}; allowed: {allowed}"
