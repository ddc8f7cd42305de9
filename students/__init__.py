"""Small models per task ("students"), registered by name, each with `tiny` and `small` presets.

    >>> from students import get_student, example_inputs
    >>> model = get_student("tinyface", preset="tiny")
    >>> out = model(*example_inputs("tinyface").values())   # {"gaze": (2, 2)}

A student takes its task's named inputs positionally (``model.input_names``, the same as the task's
teachers), returns the task's dict of named outputs and carries a JSON-native ``model.config``
(``{"student": ..., "preset": ..., "task": ..., ...}``) that :func:`build_from_config` (and
``workbench.train.models.build_model``) turns back into the same architecture.
"""

# Importing the family modules registers them.
from students.eyes import TinyTracker, tinytracker
from students.face import MobileFace, TinyFace, mobileface, tinyface
from students.lola import TinyLola, tinylola
from students.plane import TinyEVG, tinyevg
from students.registry import (
    StudentSpec,
    build_from_config,
    default_preset,
    example_inputs,
    get_student,
    list_students,
    register_student,
    student_spec,
)
from students.track import TinyLSTM, tinylstm

__all__ = [
    "MobileFace",
    "StudentSpec",
    "TinyEVG",
    "TinyFace",
    "TinyLSTM",
    "TinyLola",
    "TinyTracker",
    "build_from_config",
    "default_preset",
    "example_inputs",
    "get_student",
    "list_students",
    "mobileface",
    "register_student",
    "student_spec",
    "tinyevg",
    "tinyface",
    "tinylola",
    "tinylstm",
    "tinytracker",
]
