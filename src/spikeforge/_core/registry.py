"""A name -> class table that refuses duplicate and unknown names with messages that name the fix; the
registries of neuron models and surrogate gradients are instances (read access is that of a mapping)."""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from typing import Generic
from typing import TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Registered items by name. ``kind`` names what is registered in error messages (e.g. ``"neuron"``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; a name already taken raises."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.kind} name must be a non-empty str, got {name!r}")
        if name in self._items:
            held = getattr(self._items[name], "__name__", repr(self._items[name]))
            raise ValueError(f"a {self.kind} named {name!r} is already registered ({held}); pick another name")
        self._items[name] = item
        return item

    def lookup(self, name: str) -> T:
        """The item registered under ``name``; an unknown name raises a ValueError listing the known ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __getitem__(self, name: str) -> T:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
