"""The teacher registry: one entry per source write-up, each with a `paper` and a `cpu` preset.

A teacher is a model class whose keyword-only constructor takes exactly the hyper-parameters of its
presets. :func:`get_teacher` resolves ``preset`` plus ``overrides`` into one flat, JSON-native config,
builds the model and stores that config on it (``model.config``), so :func:`build_from_config` can
rebuild the identical architecture from a checkpoint's JSON without unpickling anything.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, TypeVar

import torch
from torch import nn

from workbench.registry import (
    ShapeFn,
    check_presets,
    discover,
    import_registering_module,
    preset_shapes,
    random_inputs,
    registered_in,
    resolve_preset,
)

__all__ = [
    "TeacherSpec",
    "build_from_config",
    "example_inputs",
    "get_teacher",
    "list_teachers",
    "register_teacher",
    "teacher_spec",
]

T = TypeVar("T", bound=type)

# Config keys the registry owns; a teacher's hyper-parameters may not use them.
_RESERVED = ("teacher", "preset", "registered_in")


@dataclass(frozen=True)
class TeacherSpec:
    """What a teacher is, without building it.

    ``example_shapes[preset][input]`` is the shape of one sample (no batch dimension) at that preset.
    The model's own facts: ``gradcam_layers`` ({image input: conv layer GradCam reads}), ``hint_layer``
    (the layer whose output is the default FitNets hint) and ``recipes`` ({preset: training Recipe});
    empty where the registration gives none (then analysis and distillation find defaults from the
    module graph, and training uses the generic recipe, saying so).
    """

    name: str
    source: str
    task: str
    inputs: tuple[str, ...]
    presets: tuple[str, ...]
    example_shapes: dict[str, dict[str, tuple[int, ...]]]
    gradcam_layers: dict[str, str] = field(default_factory=dict)
    hint_layer: str | None = None
    recipes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    name: str
    source: str
    task: str
    inputs: tuple[str, ...]
    presets: dict[str, dict[str, Any]]
    builder: Callable[..., nn.Module]
    shapes: ShapeFn
    ranges: dict[str, tuple[float, float]]
    gradcam_layers: dict[str, str] = field(default_factory=dict)
    hint_layer: str | None = None
    recipes: dict[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}


def register_teacher(
    name: str,
    *,
    source: str,
    task: str,
    inputs: tuple[str, ...],
    presets: Mapping[str, Mapping[str, Any]],
    example_shapes: ShapeFn,
    input_ranges: Optional[Mapping[str, tuple[float, float]]] = None,
    gradcam_layers: Optional[Mapping[str, str]] = None,
    hint_layer: Optional[str] = None,
    recipes: Optional[Mapping[str, Any]] = None,
) -> Callable[[T], T]:
    """Class decorator registering a teacher under ``name``.

    Args:
        source: the write-up the architecture comes from.
        task: the task contract name (``workbench.tasks``) the model serves.
        inputs: forward's positional input names, in order (a config may take a prefix of them).
        presets: preset name -> every constructor hyper-parameter (keyword-only arguments).
        example_shapes: resolved config -> {input name: per-sample shape}; drives :func:`example_inputs`.
        input_ranges: inputs drawn uniformly from (low, high) by :func:`example_inputs` (others: N(0, 1)).
        gradcam_layers: image input -> the conv layer (module name) GradCam reads for it.
        hint_layer: the module whose output is the default feature-distillation hint.
        recipes: preset -> training :class:`workbench.train.recipes.Recipe` (the write-up's optimizer,
            schedule and data sizes); every preset needs one when given.

    Raises ValueError on a duplicate name or inconsistent presets.
    """

    def decorator(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"teacher {name!r} is already registered (by {_REGISTRY[name].builder.__qualname__})")
        checked = check_presets("teacher", name, presets, _RESERVED)
        if recipes is not None and set(recipes) != set(checked):
            raise ValueError(f"teacher {name!r}: recipes for presets {sorted(recipes)}, but presets are {sorted(checked)}")
        _REGISTRY[name] = _Entry(
            name=name, source=source, task=task, inputs=tuple(inputs),
            presets=checked,
            builder=cls, shapes=example_shapes, ranges=dict(input_ranges or {}),
            gradcam_layers=dict(gradcam_layers or {}), hint_layer=hint_layer, recipes=dict(recipes or {}),
        )
        return cls

    return decorator


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        discover("teacher", _REGISTRY.__contains__, name)  # a teacher of another package, by entry point
    if name not in _REGISTRY:
        raise ValueError(f"unknown teacher {name!r}; valid teachers: {', '.join(list_teachers())}")
    return _REGISTRY[name]


def _resolve(entry: _Entry, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    return resolve_preset("teacher", entry.name, entry.presets, preset, overrides)


def list_teachers() -> list[str]:
    """Registered teacher names (entry points of other packages included), sorted."""
    discover("teacher", _REGISTRY.__contains__)
    return sorted(_REGISTRY)


def get_teacher(name: str, *, preset: str = "cpu", **overrides: Any) -> nn.Module:
    """Build teacher ``name`` at ``preset`` with hyper-parameter ``overrides`` (fresh weights).

    The model carries ``config`` (JSON-native: teacher, preset and every resolved hyper-parameter),
    ``input_names`` and ``output_names``. Unknown name, preset or override key -> ValueError naming
    the valid ones.
    """
    entry = _entry(name)
    cfg = _resolve(entry, preset, overrides)
    model = entry.builder(**copy.deepcopy(cfg))
    names = tuple(getattr(model, "input_names", ()))
    # A config may build a form that takes fewer inputs (itracker with one camera view): a prefix.
    if not names or names != entry.inputs[: len(names)]:
        raise ValueError(f"teacher {name!r}: model input_names {getattr(model, 'input_names', None)} "
                         f"do not match the registered inputs {entry.inputs}")
    model.config = {"teacher": name, "preset": preset, **cfg}
    where = registered_in(entry.builder)
    if where is not None:  # registered outside this repository: record where, so its run folders reopen
        model.config["registered_in"] = where
    return model


def build_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Rebuild a teacher (architecture, fresh weights) from ``model.config`` or its JSON round trip."""
    if not isinstance(config, Mapping) or "teacher" not in config:
        raise ValueError(f"a teacher config needs a 'teacher' key, got {type(config).__name__} "
                         f"with keys {sorted(config) if isinstance(config, Mapping) else None}")
    rest = dict(config)
    name = rest.pop("teacher")
    preset = rest.pop("preset", "cpu")
    where = rest.pop("registered_in", None)
    if name not in _REGISTRY and where:
        import_registering_module(where)
    return get_teacher(name, preset=preset, **rest)


def teacher_spec(name: str) -> TeacherSpec:
    """The registered description of ``name``, with per-preset example input shapes (no batch dim)."""
    entry = _entry(name)
    return TeacherSpec(entry.name, entry.source, entry.task, entry.inputs, tuple(entry.presets),
                       preset_shapes(entry.shapes, entry.presets), dict(entry.gradcam_layers), entry.hint_layer,
                       dict(entry.recipes))


def example_inputs(
    name: str,
    preset: str = "cpu",
    batch: int = 2,
    *,
    generator: Optional[torch.Generator] = None,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Random inputs {name: (batch, *shape)} for teacher ``name`` at ``preset`` (float32).

    Images are N(0, 1) (roughly ImageNet-normalized); inputs with a registered range (head pose in
    degrees, landmarks in [0, 1]) are uniform in it. ``overrides`` change the shapes where the config
    sets them (e.g. ``input_size``).
    """
    entry = _entry(name)
    cfg = _resolve(entry, preset, overrides)
    shapes = entry.shapes(cfg)
    return random_inputs([k for k in entry.inputs if k in shapes], shapes, entry.ranges, batch, generator)
