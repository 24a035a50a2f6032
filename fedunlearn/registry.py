"""One registry pattern for methods, policies, partitioners, models and strategies.

A :class:`Registry` is a name -> entry dict with a ``register`` decorator and a
``get`` whose error lists the valid names (opacus ``accountants/registry.py``).
Each package keeps its own registry and exports ``register_*`` and ``get_*``
over it; the names, in registration order, feed the scenario schema's allowed
values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Entries of one ``kind`` by name.

    Parameters
    ----------
    kind
        What an entry is, as the error names it (``"unlearning method"``).
    choose
        The words before the list of valid names in the error.
    """

    def __init__(self, kind: str, *, choose: str = "choose one of") -> None:
        self.kind = kind
        self.choose = choose
        self._entries: dict[str, T] = {}

    def register(self, name: str, *, force: bool = False) -> Callable[[T], T]:
        """Decorator that registers its argument as ``name``; a taken name is an error unless ``force``."""

        def wrap(entry: T) -> T:
            if name in self._entries and not force:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = entry
            return entry

        return wrap

    def add(self, name: str, entry: T, *, force: bool = False) -> T:
        """Register ``entry`` as ``name`` (the call form of :meth:`register`)."""
        return self.register(name, force=force)(entry)

    def get(self, name: str) -> T:
        """The entry registered as ``name``; a one-line ValueError listing the valid names otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} {name!r}; {self.choose}: {', '.join(self._entries)}"
            ) from None

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    @property
    def entries(self) -> Mapping[str, T]:
        """A read-only live view of name -> entry."""
        return MappingProxyType(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
