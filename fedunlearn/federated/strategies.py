"""Flower's server strategies by name, and the options each takes from the scenario's ``training`` section.

:func:`fedunlearn.federated.strategy.make_strategy` makes the registered base
class deletion-aware; the names are the scenario's ``training.strategy`` values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flwr.serverapp.strategy import FedAdam, FedAvg, FedMedian, FedProx, FedYogi, Strategy

from fedunlearn.registry import Registry

#: ``options(training) -> keyword arguments`` of the base class beyond the sampling ones.
Options = Callable[[Any], dict[str, Any]]


@dataclass(frozen=True)
class StrategySpec:
    """A Flower base strategy and the keyword arguments it takes from ``training``."""

    name: str
    base: type[Strategy]
    options: Options


STRATEGY_REGISTRY: Registry[StrategySpec] = Registry("strategy")


def register_strategy(
    name: str, base: type[Strategy], *, force: bool = False
) -> Callable[[Options], Options]:
    """Decorator over ``options(training) -> kwargs``: registers ``base`` as strategy ``name``."""

    def wrap(options: Options) -> Options:
        STRATEGY_REGISTRY.add(name, StrategySpec(name, base, options), force=force)
        return options

    return wrap


def get_strategy(name: str) -> StrategySpec:
    """The strategy registered as ``name``; the error lists the valid names."""
    return STRATEGY_REGISTRY.get(name)


def _none(training: Any) -> dict[str, Any]:
    return {}


register_strategy("fedavg", FedAvg)(_none)


@register_strategy("fedprox", FedProx)
def _fedprox(training: Any) -> dict[str, Any]:
    return {"proximal_mu": training.proximal_mu}


def _adaptive(training: Any) -> dict[str, Any]:
    """FedOpt's server rate ``eta`` and the sites' rate ``eta_l``."""
    return {"eta": training.server_lr, "eta_l": training.lr}


register_strategy("fedadam", FedAdam)(_adaptive)
register_strategy("fedyogi", FedYogi)(_adaptive)
register_strategy("fedmedian", FedMedian)(_none)
STRATEGY_NAMES: tuple[str, ...] = STRATEGY_REGISTRY.names
