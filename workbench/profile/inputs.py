"""Named model inputs: `--input name=CxHxW` specs, the order a model takes them in, and batches.

Every profiler entry point takes inputs as ``{name: tensor}``. A workbench model declares its order
(``model.input_names``); a user's model is called with the names of its ``forward`` arguments, so
``--input x=3x224x224`` names forward's argument ``x``. Models are always called positionally in that
order (calflops, torch's counter, the ONNX exporter and onnxruntime all see the same call).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from workbench.errors import WorkbenchError

_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\d+(?:\s*[xX]\s*\d+)*)\s*$")


def parse_input_spec(spec: str) -> tuple[str, tuple[int, ...]]:
    """``"image=3x224x224"`` -> ("image", (3, 224, 224)); a temporal input is ``TxCxHxW``. No batch dim."""
    m = _SPEC.match(spec)
    if not m:
        raise WorkbenchError(f"bad --input {spec!r}: expected name=CxHxW (e.g. image=3x224x224, or frames=7x3x64x64)")
    dims = tuple(int(d) for d in re.split(r"\s*[xX]\s*", m.group(2)))
    if any(d <= 0 for d in dims):
        raise WorkbenchError(f"bad --input {spec!r}: every size must be positive, got {dims}")
    return m.group(1), dims


def parse_input_specs(specs: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Several ``--input`` specs -> {name: per-sample shape}; a repeated name is an error."""
    out: dict[str, tuple[int, ...]] = {}
    for spec in specs:
        name, dims = parse_input_spec(spec)
        if name in out:
            raise WorkbenchError(f"--input {name!r} is given twice")
        out[name] = dims
    return out


def random_inputs(shapes: Mapping[str, Sequence[int]], batch: int = 1, *, seed: int = 0) -> dict[str, torch.Tensor]:
    """{name: N(0, 1) float32 tensor of shape (batch, *shape)} (seeded)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn((batch, *s), generator=g) for k, s in shapes.items()}


def input_order(model: nn.Module, names: Sequence[str]) -> list[str]:
    """The order ``model`` takes inputs ``names`` in: ``model.input_names``, else forward's arguments.

    Raises WorkbenchError (one line) when a name is not an input of the model or a required one is missing.
    """
    names = list(names)
    declared = getattr(model, "input_names", None)
    if declared:
        declared = list(declared)
        missing = [n for n in declared if n not in names]
        extra = [n for n in names if n not in declared]
        if missing or extra:
            raise WorkbenchError(f"model takes inputs {declared}, got {names}"
                                 + (f" (unknown: {extra})" if extra else "") + (f" (missing: {missing})" if missing else ""))
        return declared
    try:
        params = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: keep the given order
        return names
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return names
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    known = [p.name for p in positional]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise WorkbenchError(f"{type(model).__name__}.forward has no argument {unknown[0]!r} "
                             f"(its arguments: {', '.join(known) or 'none'}); name --input after them")
    required = [p.name for p in positional if p.default is p.empty]
    missing = [n for n in required if n not in names]
    if missing:
        raise WorkbenchError(f"{type(model).__name__}.forward needs input(s) {missing}; give them with --input name=CxHxW")
    # Positional call: every argument up to the last given one must be given (no gaps).
    last = max(known.index(n) for n in names)
    gap = [n for n in known[:last] if n not in names]
    if gap:
        raise WorkbenchError(f"{type(model).__name__}.forward takes {gap} before {known[last]!r}; give them with --input too")
    return known[: last + 1]


def call_args(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    """(names in call order, positional tensors) for ``model(*tensors)``."""
    order = input_order(model, list(inputs))
    return order, tuple(inputs[n] for n in order)


def first_error_line(exc: BaseException) -> str:
    """``"ValueError: expected face of shape ..."``: the exception's type and first line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300]}" if text else type(exc).__name__


def run_model(model: nn.Module, inputs: Mapping[str, torch.Tensor]) -> object:
    """One forward pass under no_grad; a model that rejects the inputs is a WorkbenchError naming them."""
    _, args = call_args(model, inputs)
    try:
        with torch.no_grad():
            return model(*args)
    except Exception as exc:  # noqa: BLE001 - a user's model may raise anything on a shape it does not take
        raise WorkbenchError(f"model rejected inputs {describe_shapes(inputs)}: {first_error_line(exc)}") from None


def describe_shapes(inputs: Mapping[str, torch.Tensor]) -> str:
    """``"frame=1x3x288x512, eye=..."`` (with the batch dimension)."""
    return ", ".join(f"{k}={'x'.join(str(d) for d in v.shape)}" for k, v in inputs.items())


def repeat_batch(inputs: Mapping[str, torch.Tensor], batch: int) -> dict[str, torch.Tensor]:
    """Inputs with ``batch`` rows, cycling through the given rows (contiguous copies)."""
    out = {}
    for k, v in inputs.items():
        idx = torch.arange(batch) % v.shape[0]
        out[k] = v[idx].contiguous()
    return out


def output_dict(outputs: object, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """A model's outputs as {name: tensor}: a dict as is (in ``names`` order if given), a tensor as
    ``output``, a tuple/list as ``output_0, output_1, ...``."""
    if isinstance(outputs, Mapping):
        keys = list(names) if names else list(outputs)
        missing = [k for k in keys if k not in outputs]
        if missing:
            raise WorkbenchError(f"model outputs lack {missing}; got {sorted(outputs)}")
        return {k: outputs[k] for k in keys}
    if isinstance(outputs, torch.Tensor):
        return {(names[0] if names else "output"): outputs}
    if isinstance(outputs, (tuple, list)) and all(isinstance(o, torch.Tensor) for o in outputs):
        keys = list(names) if names else [f"output_{i}" for i in range(len(outputs))]
        return dict(zip(keys, outputs))
    raise WorkbenchError(f"model returned {type(outputs).__name__}; expected a tensor, a tuple of tensors or a dict")
