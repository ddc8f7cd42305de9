"""The teacher registry: one entry per source write-up, each with a `paper` and a `cpu` preset.

A teacher is a model class whose keyword-only constructor takes exactly the hyper-parameters of its
presets. :func:`get_teacher` resolves ``preset`` plus ``overrides`` into one flat, JSON-native config,
builds the model and stores that config on it (``model.config``), so :func:`build_from_config` can
rebuild the identical architecture from a checkpoint's JSON without unpickling anything.

The rules are :class:`workbench.registry.ModelRegistry`'s, shared with the students; this module is the
teachers' instance and their public names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from workbench.registry import ModelRegistry, RegisteredSpec, ShapeFn

__all__ = ["TeacherSpec", "build_from_config", "example_inputs", "get_teacher", "list_teachers", "register_teacher",
           "teacher_spec"]

T = TypeVar("T", bound=type)

TeacherSpec = RegisteredSpec  # what teacher_spec returns; ``spec.source`` is its ``description``

_REGISTRY: dict[str, Any] = {}  # name -> entry; TEACHERS reads it at every call
TEACHERS = ModelRegistry("teacher", entries=lambda: _REGISTRY, default_preset=lambda presets: "cpu",
                         follows_task=False)


def register_teacher(
    name: str,
    *,
    source: str,
    task: str,
    inputs: tuple[str, ...],
    presets: Mapping[str, Mapping[str, Any]],
    example_shapes: ShapeFn,
    input_ranges: Mapping[str, tuple[float, float]] | None = None,
    gradcam_layers: Mapping[str, str] | None = None,
    hint_layer: str | None = None,
    recipes: Mapping[str, Any] | None = None,
) -> Callable[[T], T]:
    """Class decorator registering a teacher under ``name`` (arguments: :meth:`ModelRegistry.register`).

    ``source`` is the write-up the architecture comes from; ``inputs`` forward's positional input names, in
    order (a config may take a prefix of them); ``recipes`` the write-up's training recipe per preset
    (optimizer, schedule and data sizes). Raises ValueError on a duplicate name or inconsistent presets.
    """
    return TEACHERS.register(name, description=source, task=task, inputs=inputs, presets=presets,
                             example_shapes=example_shapes, input_ranges=input_ranges,
                             gradcam_layers=gradcam_layers, hint_layer=hint_layer, recipes=recipes)


# The rest is the shared registry's, under the teachers' names (preset None: "cpu").
list_teachers = TEACHERS.names
get_teacher = TEACHERS.get
build_from_config = TEACHERS.build_from_config
teacher_spec = TEACHERS.spec
example_inputs = TEACHERS.example_inputs
