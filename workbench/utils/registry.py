"""Classes registered by name: the one pattern behind tasks, attribution methods and pruning criteria."""

from __future__ import annotations

from typing import Any, TypeVar

C = TypeVar("C", bound=type)


class ClassRegistry(dict[str, Any]):
    """``{name: class}`` filled by the :meth:`register` class decorator, keyed by the class's ``name``;
    registering a name twice is an error (adding an implementation is one class and one decorator)."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def register(self, cls: C) -> C:
        name = cls.name
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = cls
        return cls
