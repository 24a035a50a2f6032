"""Key paths into the scenario schema: the one parser and the one walker that ``--set`` and ``--grid`` share.

A key path names a key of a scenario, ``deletion.requests[0].fraction`` (or
``deletion.requests.0.fraction``). :func:`parse_key_path` splits it into parts,
:func:`render_key_path` writes parts back, :class:`KeyTarget` walks parts (or a
pydantic error ``loc``) down the schema to the deepest field they name, and
:func:`key_path_problem` says why a key path is not in the schema. Nothing here
knows the :class:`~fedunlearn.federated.scenario.Scenario` model itself: the
walk starts at the root model it is given.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_CHUNK = re.compile(r"^(?P<key>[^\[\]]*)(?P<idx>(\[\d+\])*)$")
_LISTS = (tuple, list)


def parse_key_path(key: str) -> list[str | int]:
    """``deletion.requests[0].fraction`` or ``deletion.requests.0.fraction`` -> ['deletion', 'requests', 0, 'fraction'].

    Raises
    ------
    ValueError
        With the malformed chunk (an empty one, or brackets that are not ``[N]``).
    """
    parts: list[str | int] = []
    for chunk in key.strip().split("."):
        m = _CHUNK.match(chunk)
        if m is None or (not m["key"] and not m["idx"]):
            raise ValueError(chunk)
        if m["key"]:
            parts.append(int(m["key"]) if m["key"].isdigit() else m["key"])
        parts.extend(int(i) for i in re.findall(r"\[(\d+)\]", m["idx"]))
    return parts


def render_key_path(parts: Sequence[str | int]) -> str:
    """Parts as a key path: ``['deletion', 'requests', 0, 'fraction']`` -> ``deletion.requests[0].fraction``."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def join_key_path(prefix: str, suffix: str) -> str:
    """Two rendered key paths as one (``a.b`` + ``[0].c`` -> ``a.b[0].c``)."""
    if not suffix:
        return prefix
    if not prefix or suffix.startswith("["):
        return prefix + suffix
    return f"{prefix}.{suffix}"


def unwrap(ann: Any) -> tuple[Any, bool]:
    """(annotation without ``Annotated`` and ``None``, whether ``None`` is allowed)."""
    if get_origin(ann) is Annotated:
        ann = get_args(ann)[0]
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        nullable = len(args) < len(get_args(ann))
        return (args[0] if len(args) == 1 else Union[tuple(args)]), nullable  # noqa: UP007
    return ann, False


def is_model(ann: Any) -> bool:
    """Whether ``ann`` is a pydantic model class (a section of the schema)."""
    return isinstance(ann, type) and issubclass(ann, BaseModel)


class KeyTarget:
    """Where a key path (or a pydantic ``loc``) points in a schema: the deepest field it names.

    Attributes
    ----------
    parts : list
        The leading parts the schema has (``path`` renders them).
    rest : tuple
        The parts from the first one the schema does not have (empty when all are found).
    annotation, info
        Annotation and field of the deepest field found (``info`` is None for a list entry).
    parent : type of BaseModel
        The model holding that field.
    """

    def __init__(self, loc: Sequence[str | int], root: type[BaseModel]) -> None:
        ann: Any = root
        self.info: FieldInfo | None = None
        self.parent: type[BaseModel] = root
        self.parts: list[str | int] = []
        self.rest: tuple[str | int, ...] = ()
        for i, p in enumerate(loc):
            base, _ = unwrap(ann)
            if is_model(base) and isinstance(p, str) and p in base.model_fields:
                self.parent, self.info = base, base.model_fields[p]
                ann = self.info.annotation
            elif isinstance(p, int) and get_origin(base) in _LISTS:
                ann, self.info = get_args(base)[0], None
            else:
                self.rest = tuple(loc[i:])
                break
            self.parts.append(p)
        self.annotation = ann

    @property
    def path(self) -> str:
        return render_key_path(self.parts)

    def section(self) -> type[BaseModel] | None:
        """The model the target names, when it names a section rather than a value."""
        base, _ = unwrap(self.annotation)
        return base if is_model(base) else None


def key_path_problem(key: str, root: type[BaseModel]) -> str | None:
    """Why ``key`` is not a key path of the schema ``root``, or None when it is.

    List entries are indexed as in ``--set``: ``deletion.requests[0].fraction``.
    A key below a free-form mapping is left to the validation of the values.
    """
    try:
        parts = parse_key_path(key)
    except ValueError:
        return "malformed key path; write dotted keys with optional list indices, e.g. deletion.requests[0].fraction"
    target = KeyTarget(parts, root)
    if not target.rest:
        return None
    part, here = target.rest[0], target.path
    ann, _ = unwrap(target.annotation)
    if isinstance(part, int):
        return f"{here} is not a list; drop the index [{part}]"
    if is_model(ann):
        fields = ann.model_fields
        hint = difflib.get_close_matches(part, list(fields), n=1)
        where = f"section {here}" if target.parts else "the top level"
        return f"unknown key {part!r} in {where}; allowed keys there: {', '.join(fields)}" + (
            f"; did you mean {hint[0]!r}?" if hint else ""
        )
    if get_origin(ann) is dict:
        return None  # a free-form mapping: each point's validation checks it
    return f"{here} is a value, not a section or a list"
