"""What the teacher and student registries share: preset checking and resolution, JSON-native configs,
per-preset example shapes and random example inputs.

``kind`` ("teacher", "student") only words the error messages. Both registries keep their own entries
and public functions (``get_teacher``/``get_student``, ...); these helpers hold the rules, so the two
cannot drift apart.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

__all__ = ["check_presets", "json_native", "preset_shapes", "random_inputs", "resolve_preset"]

ShapeFn = Callable[[Mapping[str, Any]], Mapping[str, tuple[int, ...]]]


def json_native(cfg: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A deep copy of ``cfg`` as JSON gives it back (tuples become lists), so a config read from a
    checkpoint compares equal to the one the model was built with."""
    try:
        return json.loads(json.dumps(dict(cfg)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serializable: {exc}") from None


def check_presets(kind: str, name: str, presets: Mapping[str, Mapping[str, Any]],
                  reserved: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``presets`` as JSON-native dicts, after checking there is one, all set the same keys and none is
    ``reserved`` (keys the registry writes into ``model.config`` itself); ValueError otherwise."""
    if not presets:
        raise ValueError(f"{kind} {name!r}: at least one preset is required")
    keys = {p: set(cfg) for p, cfg in presets.items()}
    first = next(iter(keys.values()))
    if any(k != first for k in keys.values()):
        detail = {p: sorted(k) for p, k in keys.items()}
        raise ValueError(f"{kind} {name!r}: presets must set the same keys, got {detail}")
    clash = sorted(first.intersection(reserved))
    if clash:
        raise ValueError(f"{kind} {name!r}: preset keys {clash} are reserved")
    return {p: json_native(cfg, f"preset {p!r} of {name!r}") for p, cfg in presets.items()}


def resolve_preset(kind: str, name: str, presets: Mapping[str, Mapping[str, Any]], preset: str,
                   overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Preset ``preset`` with ``overrides`` applied (JSON-native); an unknown preset or key -> ValueError
    naming the valid ones."""
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} for {kind} {name!r}; "
                         f"valid presets: {', '.join(sorted(presets))}")
    base = presets[preset]
    unknown = sorted(set(overrides) - set(base))
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for {kind} {name!r}; "
                         f"valid keys: {', '.join(sorted(base))}")
    return json_native({**copy.deepcopy(base), **overrides}, f"overrides of {name!r}")


def preset_shapes(shapes: ShapeFn, presets: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, tuple[int, ...]]]:
    """{preset: {input: per-sample shape}} from a registry entry's shape function."""
    return {p: {k: tuple(int(d) for d in s) for k, s in shapes(cfg).items()} for p, cfg in presets.items()}


def random_inputs(names: Iterable[str], shapes: Mapping[str, tuple[int, ...]],
                  ranges: Mapping[str, tuple[float, float]], batch: int,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Random float32 inputs {name: (batch, *shape)}: uniform in ``ranges[name]`` where given (head pose
    in degrees, landmarks in [0, 1]), N(0, 1) otherwise (roughly ImageNet-normalized images)."""
    if batch < 1:
        raise ValueError(f"expected batch >= 1, got {batch}")
    out: dict[str, torch.Tensor] = {}
    for key in names:
        shape = (batch, *shapes[key])
        if key in ranges:
            lo, hi = ranges[key]
            out[key] = lo + (hi - lo) * torch.rand(shape, generator=generator)
        else:
            out[key] = torch.randn(shape, generator=generator)
    return out
