"""The ablation's plan: which settings each method runs under, deduplicated, in priority order.

A *setting* is a preset, or a preset with one ingredient toggled to its other
value (``paper+schedule=mixed``). Each method runs a setting only where the
ingredient changes what it does; settings that come to the same effective
ingredient values (a toggle of one preset that lands on the other preset, a
toggle a method does not read) share one *unit* of work, run once per seed
and forget ratio.

References
----------
METHOD.md section 4b; :mod:`fedunlearn.unlearning.ingredients`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from fedunlearn.unlearning import INGREDIENT_NAMES, INGREDIENTS, RELEVANT, effective, resolve_config

#: Priority of each method's toggles: presets of every method run first, then RL's toggles
#: (no mask: the plainest view of an ingredient), SalUn-CRA's, SalUn's.
TOGGLE_ORDER: tuple[str, ...] = ("rl", "salun-cra", "salun", "ft", "ga")
#: Within a method, toggles of the ingredients on which its two presets differ come first, in this order:
#: the forget labels from the paper's form, the loss weighting from the code's form, then their mirrors,
#: then the schedule, then the SalUn-only ingredients.
TOGGLE_PRIORITY: tuple[tuple[str, str], ...] = (
    ("paper", "forget_labels"),
    ("study-code", "loss_weighting"),
    ("paper", "loss_weighting"),
    ("study-code", "forget_labels"),
    ("paper", "schedule"),
    ("study-code", "schedule"),
    ("paper", "cra_scope"),
    ("study-code", "cra_scope"),
    ("paper", "mask_freeze"),
    ("study-code", "mask_freeze"),
)


@dataclass(frozen=True)
class Setting:
    """A preset, optionally with one ingredient set to ``to``."""

    preset: str
    ingredient: str | None = None
    to: str | None = None

    @property
    def name(self) -> str:
        return (
            self.preset if self.ingredient is None else f"{self.preset}+{self.ingredient}={self.to}"
        )

    def overrides(self) -> dict[str, str]:
        out = {"preset": self.preset}
        if self.ingredient is not None:
            out[self.ingredient] = str(self.to)
        return out


def ingredients_of(method: str, setting: Setting) -> dict[str, str]:
    """All five ingredient values ``method`` runs with under ``setting``."""
    return resolve_config(method, setting.overrides()).ingredients()


def unit_key(method: str, setting: Setting) -> str:
    """Name of the unit of work ``method`` under ``setting`` is: equal for settings that run the same."""
    eff = effective(method, ingredients_of(method, setting))
    body = ",".join(f"{k}={v}" for k, v in eff) or "fixed"
    return f"{method}[{body}]"


def unit_slug(ratio: float, seed: int, key: str) -> str:
    """A file name for one unit at one ratio and seed (stable, filesystem-safe)."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    method = key.split("[", 1)[0]
    return f"r{round(ratio * 100):03d}-s{seed}-{method}-{digest}"


def toggles(method: str, preset: str) -> list[Setting]:
    """The one-ingredient toggles of ``preset`` that change what ``method`` does."""
    base = ingredients_of(method, Setting(preset))
    base_key = unit_key(method, Setting(preset))
    out = []
    for ingredient in INGREDIENT_NAMES:
        if ingredient not in RELEVANT.get(method, ()):
            continue
        other = next(v for v in INGREDIENTS[ingredient] if v != base[ingredient])
        setting = Setting(preset, ingredient, other)
        if unit_key(method, setting) != base_key:
            out.append(setting)
    return out


@dataclass(frozen=True)
class Entry:
    """``method`` under ``setting`` is the unit ``key``; ``tier`` orders the work (lower first)."""

    method: str
    setting: Setting
    key: str
    tier: int


def plan_entries(methods: Sequence[str], presets: Sequence[str]) -> list[Entry]:
    """Every (method, setting) the ablation reports, with its unit and tier.

    Tier 0: the reference (Retrain, which no ingredient changes); tier 1: every
    method under every preset; tiers 2+: the toggles, round robin across the
    methods (in :data:`TOGGLE_ORDER`), each method's in :data:`TOGGLE_PRIORITY`.
    """
    entries: list[Entry] = []
    for method in methods:
        for preset in presets:
            s = Setting(preset)
            tier = 0 if not RELEVANT.get(method) else 1
            entries.append(Entry(method, s, unit_key(method, s), tier))
    order = [m for m in TOGGLE_ORDER if m in methods] + [
        m for m in methods if m not in TOGGLE_ORDER
    ]

    for rank, method in enumerate(order):
        views = [dict(effective(method, ingredients_of(method, Setting(p)))) for p in presets]
        differ = {
            k
            for v in views
            for k in v
            if len({w.get(k) for w in views}) > 1 and all(k in w for w in views)
        }

        def priority(s: Setting, differ: set = differ) -> tuple[int, int]:
            pair = (s.preset, str(s.ingredient))
            rank_in = (
                TOGGLE_PRIORITY.index(pair) if pair in TOGGLE_PRIORITY else len(TOGGLE_PRIORITY)
            )
            return (0 if s.ingredient in differ else 1, rank_in)

        settings = [s for preset in presets for s in toggles(method, preset)]
        for position, s in enumerate(sorted(settings, key=priority)):
            # Round robin across methods: every method's first toggle, then every method's second, ...
            entries.append(Entry(method, s, unit_key(method, s), 2 + position * len(order) + rank))
    return entries


def work_order(
    entries: Sequence[Entry], ratios: Sequence[float], seeds: Sequence[int]
) -> list[tuple[float, int, str]]:
    """Units to run as (ratio, seed, key), each once: ratio by ratio, tier by tier, setting by setting, seed by seed.

    Within a tier a setting is run for every seed before the next setting starts, so an
    ablation stopped early holds complete paired comparisons rather than many partial ones.
    """
    seen: set[tuple[float, int, str]] = set()
    out = []
    tiers = sorted({e.tier for e in entries})
    for ratio in ratios:
        for tier in tiers:
            for e in entries:
                for seed in seeds:
                    item = (ratio, seed, e.key)
                    if e.tier == tier and item not in seen:
                        seen.add(item)
                        out.append(item)
    return out
