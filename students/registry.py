"""The student registry: small models per task, registered by name, each with presets (like the teachers).

A student is a model class whose keyword-only constructor takes exactly the hyper-parameters of its
presets. It serves one task: it takes that task's inputs (``input_names``, in order) and returns a dict
holding the task's outputs, so every tool written for the task's teachers (training, analysis, pruning,
distillation, export) works on it unchanged. :func:`get_student` stores a JSON-native config on the model
(``{"student": name, "preset": ..., "task": ..., **hyper-parameters}``) that :func:`build_from_config`
turns back into the same architecture, so checkpoints never need pickled modules.

Students and teachers are two instances of :class:`workbench.registry.ModelRegistry`; a student's
inputs, outputs and config follow its task (``follows_task``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch
from torch import nn

from workbench.registry import ModelRegistry, RegisteredSpec, ShapeFn

__all__ = ["StudentSpec", "build_from_config", "default_preset", "example_inputs", "get_student", "list_students",
           "register_student", "student_spec"]

T = TypeVar("T", bound=type)

StudentSpec = RegisteredSpec  # what student_spec returns; its inputs and outputs are the task's


def _tiny_or_first(presets: Mapping[str, Any]) -> str:
    return "tiny" if "tiny" in presets else next(iter(presets))


_REGISTRY: dict[str, Any] = {}  # name -> entry; STUDENTS reads it at every call
STUDENTS = ModelRegistry("student", entries=lambda: _REGISTRY, default_preset=_tiny_or_first, follows_task=True)


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
    width_param: str | None = None,
    width_factor: int = 1,
) -> Callable[[T], T]:
    """Class decorator registering a student under ``name`` for ``task`` (arguments:
    :meth:`ModelRegistry.register`).

    ``description`` is one line: the family and what makes it small. The model takes the task's inputs and
    returns at least its outputs; ``hint_layer`` (required) names the module whose output is the default
    feature-distillation hint; ``gradcam_layers`` default to the last conv on each input's path.
    ``width_param`` names the hyper-parameter that sets the hint layer's output width (a preset key, or
    ``KEY[-1]`` for the last entry of a list), the width being ``width_factor`` x its value; auto-sizing
    (``distill --preset auto``) sets it and refuses a student that names none.
    Raises ValueError on a duplicate name or inconsistent presets.
    """
    return STUDENTS.register(name, description=description, task=task, presets=presets,
                             example_shapes=example_shapes, input_ranges=input_ranges,
                             gradcam_layers=gradcam_layers, hint_layer=hint_layer, width_param=width_param,
                             width_factor=width_factor)


def get_student(name: str, *, preset: str | None = None, **overrides: Any) -> nn.Module:
    """Build student ``name`` at ``preset`` (default ``tiny``) with hyper-parameter ``overrides`` (fresh
    weights): :meth:`ModelRegistry.get`. An empty preset is the default too."""
    return STUDENTS.get(name, preset=preset or None, **overrides)


def example_inputs(name: str, preset: str | None = None, batch: int = 2, *,
                   generator: torch.Generator | None = None, **overrides: Any) -> dict[str, torch.Tensor]:
    """Random inputs {name: (batch, *shape)} for student ``name`` at ``preset`` (default ``tiny``; an empty
    one too): :meth:`ModelRegistry.example_inputs`."""
    return STUDENTS.example_inputs(name, preset or None, batch, generator=generator, **overrides)


# The rest is the shared registry's, under the students' names.
list_students = STUDENTS.names
default_preset = STUDENTS.default_preset
build_from_config = STUDENTS.build_from_config
student_spec = STUDENTS.spec
