"""Forward hooks that are always removed: for reading (or replacing) module outputs during a pass."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import nn

# hook(name, module, args, output) -> None, or a value that replaces the module's output
NamedHook = Callable[[str, nn.Module, tuple, Any], Any]


@contextlib.contextmanager
def forward_hooks(modules: Iterable[tuple[str, nn.Module]], hook: NamedHook) -> Iterator[None]:
    """Call ``hook(name, module, args, output)`` after each of ``modules`` (``(name, module)`` pairs, e.g.
    ``model.named_modules()``) runs, while the context is open; the hooks are removed on exit, error or not."""
    handles = [m.register_forward_hook(functools.partial(hook, name)) for name, m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def capture_outputs(modules: Iterable[tuple[str, nn.Module]]) -> Iterator[dict[str, Any]]:
    """Yield a dict that holds, by name, the latest output of each of ``modules`` while the context is open."""
    outputs: dict[str, Any] = {}
    with forward_hooks(modules, lambda name, _m, _a, out: outputs.__setitem__(name, out)):
        yield outputs
