"""The student registry: small models per task, registered by name, each with presets (like the teachers).

A student is a model class whose keyword-only constructor takes exactly the hyper-parameters of its
presets. It serves one task: it takes that task's inputs (``input_names``, in order) and returns a dict
holding the task's outputs, so every tool written for the task's teachers (training, analysis, pruning,
distillation, export) works on it unchanged. :func:`get_student` stores a JSON-native config on the model
(``{"student": name, "preset": ..., "task": ..., **hyper-parameters}``) that :func:`build_from_config`
turns back into the same architecture, so checkpoints never need pickled modules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    "StudentSpec",
    "build_from_config",
    "example_inputs",
    "get_student",
    "list_students",
    "register_student",
    "student_spec",
]

T = TypeVar("T", bound=type)

# Config keys the registry owns; a student's hyper-parameters may not use them.
_RESERVED = ("student", "preset", "task", "registered_in")


@dataclass(frozen=True)
class StudentSpec:
    """What a student is, without building it.

    ``example_shapes[preset][input]`` is the shape of one sample (no batch dimension) at that preset;
    ``hint_layer`` names the module whose output is the default FitNets hint (feature distillation).
    """

    name: str
    description: str
    task: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    presets: tuple[str, ...]
    example_shapes: dict[str, dict[str, tuple[int, ...]]]
    hint_layer: str
    gradcam_layers: dict[str, str] = field(default_factory=dict)  # empty: the last conv on each input's path


@dataclass(frozen=True)
class _Entry:
    name: str
    description: str
    task: str
    presets: dict[str, dict[str, Any]]
    builder: Callable[..., nn.Module]
    shapes: ShapeFn
    ranges: dict[str, tuple[float, float]]
    hint_layer: str
    gradcam_layers: dict[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}


def _task(name: str):
    from workbench.tasks import get_task

    return get_task(name)


def register_student(
    name: str,
    *,
    description: str,
    task: str,
    presets: Mapping[str, Mapping[str, Any]],
    example_shapes: ShapeFn,
    hint_layer: str,
    input_ranges: Mapping[str, tuple[float, float]] | None = None,
    gradcam_layers: Mapping[str, str] | None = None,
) -> Callable[[T], T]:
    """Class decorator registering a student under ``name`` for ``task``.

    Args:
        description: one line: the family and what makes it small.
        task: the task contract (``workbench.tasks``) whose inputs and outputs the model shares.
        presets: preset name -> every constructor hyper-parameter (keyword-only arguments).
        example_shapes: resolved config -> {input name: per-sample shape}; drives :func:`example_inputs`.
        hint_layer: module name whose output is the default feature-distillation hint.
        input_ranges: inputs drawn uniformly from (low, high) by :func:`example_inputs` (others: N(0, 1)).
        gradcam_layers: image input -> the conv layer GradCam reads (default: the last conv on its path).

    Raises ValueError on a duplicate name or inconsistent presets.
    """

    def decorator(cls: T) -> T:
        if name in _REGISTRY:
            raise ValueError(f"student {name!r} is already registered (by {_REGISTRY[name].builder.__qualname__})")
        checked = check_presets("student", name, presets, _RESERVED)
        _REGISTRY[name] = _Entry(
            name=name, description=description, task=task,
            presets=checked,
            builder=cls, shapes=example_shapes, ranges=dict(input_ranges or {}), hint_layer=hint_layer,
            gradcam_layers=dict(gradcam_layers or {}),
        )
        return cls

    return decorator


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        discover("student", _REGISTRY.__contains__, name)  # a student of another package, by entry point
    if name not in _REGISTRY:
        raise ValueError(f"unknown student {name!r}; valid students: {', '.join(list_students())}")
    return _REGISTRY[name]


def _resolve(entry: _Entry, preset: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    return resolve_preset("student", entry.name, entry.presets, preset, overrides)


def list_students(task: str | None = None) -> list[str]:
    """Registered student names (entry points of other packages included), sorted; only those serving
    ``task`` when given."""
    discover("student", _REGISTRY.__contains__)
    return sorted(n for n, e in _REGISTRY.items() if task is None or e.task == task)


def default_preset(name: str) -> str:
    """The preset :func:`get_student` uses when none is given: ``tiny`` where it exists."""
    presets = _entry(name).presets
    return "tiny" if "tiny" in presets else next(iter(presets))


def get_student(name: str, *, preset: str | None = None, **overrides: Any) -> nn.Module:
    """Build student ``name`` at ``preset`` (default ``tiny``) with hyper-parameter ``overrides`` (fresh weights).

    The model carries ``config`` (JSON-native: student, preset, task and every resolved hyper-parameter),
    ``input_names`` (the task's, in order) and ``output_names`` (at least the task's). Unknown name,
    preset or override key -> ValueError naming the valid ones.
    """
    entry = _entry(name)
    preset = preset or default_preset(name)
    cfg = _resolve(entry, preset, overrides)
    model = entry.builder(**copy.deepcopy(cfg))
    task = _task(entry.task)
    if tuple(getattr(model, "input_names", ())) != tuple(task.input_names):
        raise ValueError(f"student {name!r}: model input_names {getattr(model, 'input_names', None)} "
                         f"do not match task {entry.task!r}'s inputs {tuple(task.input_names)}")
    missing = [k for k in task.output_names if k not in tuple(getattr(model, "output_names", ()))]
    if missing:
        raise ValueError(f"student {name!r}: model output_names {getattr(model, 'output_names', None)} "
                         f"lack task {entry.task!r}'s outputs {missing}")
    model.config = {"student": name, "preset": preset, "task": entry.task, **cfg}
    where = registered_in(entry.builder)
    if where is not None:  # registered outside this repository: record where, so its run folders reopen
        model.config["registered_in"] = where
    return model


def build_from_config(config: Mapping[str, Any]) -> nn.Module:
    """Rebuild a student (architecture, fresh weights) from ``model.config`` or its JSON round trip."""
    if not isinstance(config, Mapping) or "student" not in config:
        raise ValueError(f"a student config needs a 'student' key, got {type(config).__name__} "
                         f"with keys {sorted(config) if isinstance(config, Mapping) else None}")
    rest = dict(config)
    name = rest.pop("student")
    preset = rest.pop("preset", None)
    task = rest.pop("task", None)
    where = rest.pop("registered_in", None)
    if name not in _REGISTRY and where:
        import_registering_module(where)
    entry = _entry(name)
    if task is not None and task != entry.task:
        raise ValueError(f"config says student {name!r} serves task {task!r}, but it is registered for {entry.task!r}")
    return get_student(name, preset=preset, **rest)


def student_spec(name: str) -> StudentSpec:
    """The registered description of ``name``, with per-preset example input shapes (no batch dim)."""
    entry = _entry(name)
    task = _task(entry.task)
    return StudentSpec(entry.name, entry.description, entry.task, tuple(task.input_names),
                       tuple(task.output_names), tuple(entry.presets), preset_shapes(entry.shapes, entry.presets),
                       entry.hint_layer, dict(entry.gradcam_layers))


def example_inputs(
    name: str,
    preset: str | None = None,
    batch: int = 2,
    *,
    generator: torch.Generator | None = None,
    **overrides: Any,
) -> dict[str, torch.Tensor]:
    """Random inputs {name: (batch, *shape)} for student ``name`` at ``preset`` (float32), as the
    teachers' ``example_inputs``: images N(0, 1), inputs with a registered range uniform in it."""
    entry = _entry(name)
    cfg = _resolve(entry, preset or default_preset(name), overrides)
    return random_inputs(_task(entry.task).input_names, entry.shapes(cfg), entry.ranges, batch, generator)
