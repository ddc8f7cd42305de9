"""Model surgery that is always undone: forward hooks for reading (or replacing) module outputs during a
pass, in-place activations switched off, parameters frozen; and finding a submodule by name."""

from __future__ import annotations

import contextlib
import difflib
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch import nn

from workbench.errors import WorkbenchError

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


def find_module(model: nn.Module, name: str, *, kinds: tuple[type, ...] | None = None, what: str = "layer",
                more: str = "see --list-layers") -> nn.Module:
    """``model``'s submodule ``name``; an unknown name (or one of the wrong kind) lists the valid ones (the
    first 40, then ``more`` says where the rest are) and the closest names."""
    modules = dict(model.named_modules())
    valid = [k for k, m in modules.items() if k and (kinds is None or isinstance(m, kinds))]
    if name not in modules or not name or (kinds is not None and not isinstance(modules[name], kinds)):
        rest = f"{len(valid) - 40} more" + (f"; {more}" if more else "")
        shown = ", ".join(valid[:40]) + (f", ... ({rest})" if len(valid) > 40 else "")
        kind = f" ({'/'.join(k.__name__ for k in kinds)})" if kinds else ""
        got = "" if name not in modules or not name else f" is a {type(modules[name]).__name__}"
        close = difflib.get_close_matches(name, valid, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise WorkbenchError(f"unknown {what} {name!r}{got}; valid {what}s{kind}: {shown or 'none'}{hint}")
    return modules[name]


@contextlib.contextmanager
def no_inplace(model: nn.Module) -> Iterator[None]:
    """Switch in-place activations off while hooks read layer outputs (an in-place ReLU after a hooked
    layer would overwrite the tensor the hook kept, or break Captum's backward hooks)."""
    flipped = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in flipped:
        m.inplace = False
    try:
        yield
    finally:
        for m in flipped:
            m.inplace = True


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[None]:
    """No gradients for parameters (attribution needs input gradients only; this halves backward work)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
