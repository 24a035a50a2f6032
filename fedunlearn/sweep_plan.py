"""A sweep's plan: the ``--grid`` arguments parsed, the reference arms added, every grid point validated.

:func:`plan_sweep` turns a base scenario, ``--set`` overrides and ``--grid
KEY=V1,V2,...`` arguments into a frozen :class:`SweepPlan` before anything
runs: each key path is checked against the scenario schema (the parser
``--set`` uses), values are parsed as YAML scalars, the control arm and
Federated Retrain join the ``deletion.method`` axis
(:func:`with_reference_arms`), and every point of the Cartesian product is
validated and named (:func:`slugify`). Running the plan is
:mod:`fedunlearn.sweeps`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fedunlearn.errors import FedunlearnError
from fedunlearn.federated.scenario import (
    DeletionSection,
    Scenario,
    ScenarioError,
    apply_overrides,
    key_path_problem,
    read_scenario_yaml,
    scenario_from_mapping,
)
from fedunlearn.io import now_iso
from fedunlearn.reports.tables import CONTROL, RETRAIN

SEED_KEY = "seed"
METHOD_KEY = "deletion.method"
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")  # YAML 1.1 reads 1e-3 as a string
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")
_SLUG_MAX = 180


class SweepError(FedunlearnError):
    """A bad grid or sweep directory; one line per problem."""


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid key=v1,v2``: a scenario key path and its values (parsed YAML scalars)."""

    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: its assignments, directory name and validated scenario."""

    assignments: tuple[tuple[str, Any], ...]
    slug: str
    scenario: Scenario = field(compare=False)

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={format_value(v)}" for k, v in self.assignments) or "(base scenario)"


@dataclass(frozen=True)
class SweepPlan:
    """Everything a sweep will do, decided before anything runs."""

    scenario_path: Path
    overrides: tuple[str, ...]
    axes: tuple[GridAxis, ...]
    points: tuple[SweepPoint, ...]
    out: Path
    added_arms: tuple[str, ...] = ()  # deletion.method values the sweep added (control, Retrain)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(a.key for a in self.axes)

    @property
    def group_keys(self) -> tuple[str, ...]:
        """The keys of a variant: the grid keys less the seed (summaries average over seeds)."""
        return tuple(k for k in self.keys if k != SEED_KEY)

    def run_dir(self, point: SweepPoint) -> Path:
        return self.out / "runs" / point.slug

    def scenario_file(self, point: SweepPoint) -> Path:
        return self.out / "scenarios" / f"{point.slug}.yaml"

    def log_file(self, point: SweepPoint) -> Path:
        return self.out / "logs" / f"{point.slug}.log"

    def describe(self) -> dict[str, Any]:
        """The content of ``sweep.json``."""
        return {
            "kind": "fedunlearn-sweep",
            "created": now_iso(),
            "scenario": str(self.scenario_path),
            "overrides": list(self.overrides),
            "grid": [{"key": a.key, "values": list(a.values)} for a in self.axes],
            "added_arms": list(self.added_arms),
            "points": [
                {
                    "slug": p.slug,
                    "assignments": dict(p.assignments),
                    "run_dir": f"runs/{p.slug}",
                    "scenario": f"scenarios/{p.slug}.yaml",
                }
                for p in self.points
            ],
        }


# ------------------------------------------------------------------ parsing
def format_value(value: Any) -> str:
    """A grid value as text: strings as they are, anything else as JSON (``0.5``, ``true``, ``[1, 2]``)."""
    return value if isinstance(value, str) else json.dumps(value)


def parse_value(text: str) -> Any:
    """A YAML scalar (``0.1`` -> float, ``rl`` -> str, ``true`` -> bool); ``1e-3`` is a float too."""
    text = text.strip()
    value = yaml.safe_load(text)
    if isinstance(value, str) and _NUMBER.match(text):
        return float(text)
    return value


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets and quotes: ``a,[1,2],'x,y'`` -> ``a``, ``[1,2]``, ``'x,y'``."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_grid(text: str) -> GridAxis:
    """Parse one ``--grid KEY=V1,V2,...`` argument.

    Raises
    ------
    SweepError
        One line naming the argument: no ``=``, empty key or value, duplicate
        values, or a key path that the scenario schema does not have.
    """
    where = f"--grid {text}"
    if "=" not in text:
        raise SweepError(
            f"{where}: expected KEY=V1,V2,... e.g. --grid deletion.method=salun-cra,retrain"
        )
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key or any(not p for p in key.split(".")):
        raise SweepError(f"{where}: empty key path; write e.g. --grid training.rounds=5,10")
    texts = split_values(raw)
    if any(not t.strip() for t in texts):
        raise SweepError(
            f"{where}: empty value; separate values with single commas, e.g. {key}=a,b"
        )
    try:
        values = tuple(parse_value(t) for t in texts)
    except yaml.YAMLError:
        raise SweepError(
            f"{where}: a value is not valid YAML; quote it, e.g. {key}='a: b'"
        ) from None
    shown = [format_value(v) for v in values]
    dupes = sorted({s for s in shown if shown.count(s) > 1})
    if dupes:
        raise SweepError(f"{where}: value(s) {', '.join(dupes)} given twice; list each value once")
    problem = key_path_problem(key, Scenario)
    if problem:
        raise SweepError(f"{where}: {problem}")
    return GridAxis(key, values)


def slugify(assignments: Sequence[tuple[str, Any]]) -> str:
    """Directory name of a grid point: ``deletion.method=rl,seed=0`` (unsafe characters -> ``-``)."""
    if not assignments:
        return "base"
    slug = ",".join(_SLUG_UNSAFE.sub("-", f"{k}={format_value(v)}") for k, v in assignments)
    if (
        len(slug) > _SLUG_MAX
    ):  # folder names are limited to 255 bytes: keep a readable head and a stable digest
        slug = f"{slug[:_SLUG_MAX]}-{hashlib.sha1(slug.encode()).hexdigest()[:10]}"
    return slug


def _erases(base: dict[str, Any]) -> bool:
    """Whether the base scenario sets a deletion method or asks for deletions (explicit or stochastic)."""
    deletion = base.get("deletion")
    return isinstance(deletion, dict) and any(
        deletion.get(k) for k in ("method", "requests", "stochastic")
    )


def with_reference_arms(
    axes: Sequence[GridAxis],
    base_method: str,
    erases: bool,
    *,
    control: bool = True,
    retrain: bool = True,
) -> tuple[tuple[GridAxis, ...], tuple[str, ...], bool]:
    """The grid with the control arm and Retrain on its ``deletion.method`` axis.

    Parameters
    ----------
    axes : sequence of GridAxis
        The parsed ``--grid`` arguments.
    base_method : str
        ``deletion.method`` of the base scenario.
    erases : bool
        Whether the base scenario sets a method or deletion requests; without
        a ``deletion.method`` axis, arms are added only then.
    control, retrain : bool
        Add the control arm (``none``) / Federated Retrain (``--no-control`` /
        ``--no-retrain`` turn them off).

    Returns
    -------
    tuple
        The axes (the method axis extended at its end, or a new one first,
        holding the base method then the arms), the values added, and whether
        the method axis is new.
    """
    wanted = [m for m, on in ((CONTROL, control), (RETRAIN, retrain)) if on]
    keys = [a.key for a in axes]
    if METHOD_KEY in keys:
        axis = axes[keys.index(METHOD_KEY)]
        added = tuple(m for m in wanted if m not in axis.values)
        new = GridAxis(METHOD_KEY, (*axis.values, *added))
        return tuple(new if a.key == METHOD_KEY else a for a in axes), added, False
    added = tuple(m for m in wanted if m != base_method)
    if not erases or not added:
        return tuple(axes), (), False
    return (GridAxis(METHOD_KEY, (base_method, *added)), *axes), added, True


def plan_sweep(
    scenario_path: str | Path,
    grids: Sequence[str],
    out: str | Path,
    overrides: Sequence[str] = (),
    *,
    control: bool = True,
    retrain: bool = True,
) -> SweepPlan:
    """Parse the grids and validate every point of their Cartesian product.

    Parameters
    ----------
    scenario_path : str or Path
        The base scenario YAML.
    grids : sequence of str
        ``KEY=V1,V2,...`` items; points are the product in the order given.
    out : str or Path
        The sweep directory.
    overrides : sequence of str
        ``--set key=value`` items applied to the base before the grid.
    control, retrain : bool
        Add the control arm (``deletion.method=none``) and Federated Retrain to
        the ``deletion.method`` axis where they are absent
        (:func:`with_reference_arms`). A method axis the sweep creates leaves
        the base method's points their old directory names, so a sweep made
        before the arms existed resumes.

    Raises
    ------
    SweepError
        With one line per problem: every bad ``--grid`` argument, else every
        grid point whose scenario is invalid (named by its assignments).
    """
    scenario_path = Path(scenario_path)
    problems, axes = [], []
    for text in grids:
        try:
            axes.append(parse_grid(text))
        except SweepError as err:
            problems.append(str(err))
    written = [t.split("=", 1)[0].strip() for t in grids if "=" in t]
    problems += [
        f"--grid {k}: key given in two --grid arguments; merge their values"
        for k in dict.fromkeys(written)
        if written.count(k) > 1
    ]
    keys = [a.key for a in axes]
    if problems:
        raise SweepError("\n".join(problems))
    base = apply_overrides(read_scenario_yaml(scenario_path), overrides)
    deletion = base.get("deletion") if isinstance(base.get("deletion"), dict) else {}
    base_method = deletion.get("method", DeletionSection.model_fields["method"].default)
    axes, added, new_axis = with_reference_arms(
        axes, base_method, _erases(base), control=control, retrain=retrain
    )
    keys = [a.key for a in axes]

    points, failures = [], []
    for combo in itertools.product(*(a.values for a in axes)):
        assignments = tuple(zip(keys, combo))
        named = tuple(
            (k, v)
            for k, v in assignments
            if not (new_axis and k == METHOD_KEY and v == base_method)
        )
        label = ", ".join(f"{k}={format_value(v)}" for k, v in assignments) or "(base scenario)"
        source = f"grid point {label}"
        try:
            raw = apply_overrides(base, [f"{k}={json.dumps(v)}" for k, v in assignments], source)
            points.append(
                SweepPoint(assignments, slugify(named), scenario_from_mapping(raw, source))
            )
        except ScenarioError as err:
            failures.append((source, str(err).removeprefix(source + ": ")))
    if failures:
        reasons = {reason for _, reason in failures}
        if len(failures) > 1 and len(failures) == len(points) + len(failures) and len(reasons) == 1:
            raise SweepError(f"{scenario_path} (every grid point): {reasons.pop()}")
        raise SweepError("\n".join(f"{source}: {reason}" for source, reason in failures))
    slugs = [p.slug for p in points]
    clashes = sorted({s for s in slugs if slugs.count(s) > 1})
    if clashes:
        raise SweepError(
            f"grid points share the directory name {clashes[0]!r} once unsafe characters are replaced; "
            "use values that differ in letters or digits"
        )
    return SweepPlan(scenario_path, tuple(overrides), tuple(axes), tuple(points), Path(out), added)
