"""Auto-sizing a student from its teacher: the student's hint width covers the teacher's effective rank.

The teacher's hint layer (its registered hint, else its penultimate layer: the feature-KD default) is
read on the run's training samples (:func:`workbench.analyze.embeddings.collect`), one vector per sample
and, for a feature map, per position (the vectors a 1x1 hint adapter maps: channels at each position; for a
sequence, features at each step). Their participation ratio ``(sum l)^2 / sum l^2`` of the PCA variances
(:func:`workbench.analyze.embeddings.spectrum`) says how many directions the teacher really uses; the
student's width there is the smallest multiple of 8 at or above it, clamped to [8, the teacher's width].

Models are known only through their registration: the student's ``width_param`` (the hyper-parameter that
sets its hint layer's width) and ``width_factor``; no teacher or student is named here.

    >>> preset, overrides, record = auto_size(teacher, task, run_config, "tinyface")
    >>> describe(record)   # one line: which width, and why
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.tasks import Task

__all__ = ["MULTIPLE", "SAMPLES", "auto_size", "choose_width", "describe", "hint_width", "measure", "student_override"]

MULTIPLE = 8  # widths are multiples of 8: runtimes pack channels in blocks of 8 (see the latency benchmark)
SAMPLES = 256  # training samples the teacher's hint layer is read on
_MAX_ROWS = 16_384  # vectors the spectrum is computed from (a feature map gives one per position)


def _width_axis(shape: Sequence[int], layer: str) -> int:
    """The axis of a per-sample hint shape that a student's width sets: channels of a (C, H, W) map, the
    features of a (T, F) sequence or of an (F,) vector."""
    if len(shape) == 3:
        return 0
    if len(shape) in (1, 2):
        return len(shape) - 1
    raise WorkbenchError(f"hint layer {layer!r} gives per-sample shape {tuple(shape)}; auto-sizing reads a vector (F), "
                         "a sequence (T, F) or a feature map (C, H, W)")


def hint_width(shape: Sequence[int], layer: str = "hint") -> int:
    """The width of a hint layer from its per-sample output shape (no batch): C of (C, H, W), F of (T, F) or (F,)."""
    return int(shape[_width_axis(shape, layer)])


def _vectors(x: np.ndarray, shape: Sequence[int], layer: str, seed: int = 0) -> np.ndarray:
    """(N, prod(shape)) flattened hints -> (rows, width) vectors: one per sample, position or step
    (at most ``_MAX_ROWS`` of them, a seeded draw)."""
    axis = _width_axis(shape, layer)
    v = x.reshape(len(x), *shape)
    v = np.moveaxis(v, 1 + axis, -1).reshape(-1, int(shape[axis]))
    if len(v) > _MAX_ROWS:
        v = v[np.sort(np.random.default_rng(seed).choice(len(v), _MAX_ROWS, replace=False))]
    return v


def measure(subject: Any, samples: Any, layer: str) -> dict[str, Any]:
    """Effective dimensionality of ``layer``'s output of ``subject`` (an analysis Subject) over ``samples``.

    Returns {"layer", "participation_ratio", "effective_rank", "teacher_width", "n" (samples),
    "vectors" (rows the spectrum is of)}. A layer that does not run, or whose output is not a vector,
    sequence or map with the batch first, is a WorkbenchError.
    """
    from workbench.analyze.embeddings import collect, spectrum, trace_layers

    if len(samples) < 2:
        raise WorkbenchError(f"auto-sizing needs at least 2 samples, got {len(samples)}")
    rows = {r["name"]: r for r in trace_layers(subject, samples)}
    x = collect(subject, samples, layer)  # checks the layer runs; (N, D)
    out = rows[layer]["output_shape"]
    probe = min(2, len(samples))
    if not out or out[0] != probe:
        raise WorkbenchError(f"hint layer {layer!r} output {out} does not keep the batch ({probe}) first; "
                             "auto-sizing needs one output per sample")
    shape = tuple(out[1:])
    vectors = _vectors(x, shape, layer)
    spec = spectrum(vectors)
    return {"layer": layer, "participation_ratio": round(spec["participation_ratio"], 3),
            "effective_rank": round(spec["effective_rank"], 3), "teacher_width": hint_width(shape, layer),
            "n": len(x), "vectors": len(vectors)}


def choose_width(participation_ratio: float, teacher_width: int, multiple: int = MULTIPLE) -> int:
    """The smallest multiple of ``multiple`` >= ceil(participation_ratio), clamped to [multiple, teacher_width]
    (a teacher narrower than ``multiple``: its width)."""
    need = max(1, math.ceil(participation_ratio - 1e-9))
    rounded = multiple * math.ceil(need / multiple)
    return int(min(max(rounded, multiple), teacher_width))


def student_override(student: str, width: int, preset: str | None = None) -> tuple[str, dict[str, Any]]:
    """(width_param, {key: value}): the hyper-parameter override that makes registered ``student``'s hint
    layer ``width`` wide at ``preset`` (None: its default). A student registering no ``width_param`` (or
    not registered: a user's factory) is a WorkbenchError."""
    import students
    from workbench.registry import width_override

    if student not in students.list_students():
        raise WorkbenchError(f"student {student!r} is not registered, so it names no width_param: "
                             "--preset auto sizes registered students only; give its size with --model")
    spec = students.student_spec(student)
    if spec.width_param is None:
        raise WorkbenchError(f"student {student!r} registers no width_param (the hyper-parameter that sets its hint "
                             "width), so it cannot be auto-sized: give a preset")
    preset = preset or students.default_preset(student)
    cfg = students.get_student(student, preset=preset).config
    value = math.ceil(width / spec.width_factor)
    try:
        return spec.width_param, width_override("student", student, cfg, spec.width_param, value)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None


def auto_size(teacher: nn.Module, task: Task, run_config: Mapping[str, Any], student: str, *,
              layer: str | None = None, n: int = SAMPLES) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Size registered ``student`` for the teacher of run config ``run_config``: (preset, overrides, record).

    ``layer`` is the teacher's hint layer (None: its registered hint, else its penultimate layer). The
    record is {"layer", "participation_ratio", "effective_rank", "teacher_width", "width_param", "chosen"
    (the student's hint width), "override" ({key: value}), "preset", "n", "vectors", "rule"}.
    """
    import students
    from workbench.analyze.samples import load_samples
    from workbench.analyze.subject import Subject
    from workbench.facts import base_config, default_hint_layer, registered_hint_layer

    student_override(student, MULTIPLE)  # refuse a student that cannot be sized before reading any data
    if students.student_spec(student).task != task.name:
        fits = students.list_students(task.name)
        raise WorkbenchError(f"student {student!r} serves task {students.student_spec(student).task!r}, but the teacher "
                             f"serves {task.name!r}; students for {task.name!r}: {', '.join(fits) or 'none'}")
    teacher_cfg = dict(base_config(run_config["model"]))
    subject = Subject(teacher.eval(), task, teacher_cfg, str(run_config.get("teacher", "teacher")),
                      run_config=dict(run_config))
    samples = load_samples(subject, n=n, data="train", purpose="embeddings")
    if layer is None:
        layer = registered_hint_layer(teacher_cfg) or default_hint_layer(teacher, samples.inputs(slice(0, 2)))
    with torch.no_grad():
        record = measure(subject, samples, layer)
    chosen = choose_width(record["participation_ratio"], record["teacher_width"])
    preset = students.default_preset(student)
    param, override = student_override(student, chosen, preset)
    record.update(width_param=param, chosen=chosen, override=override, preset=preset,
                  rule=f"smallest multiple of {MULTIPLE} >= ceil(participation ratio), "
                       f"clamped to [{MULTIPLE}, teacher width]")
    return preset, override, record


def describe(record: Mapping[str, Any], student: str = "student") -> str:
    """One line: the width auto-sizing chose and why."""
    setting = ", ".join(f"{k}={v}" for k, v in record["override"].items())
    return (f"auto-size: {student} ({record['preset']}) with {setting}: hint width {record['chosen']} covers the "
            f"teacher's {record['layer']} (participation ratio {record['participation_ratio']:.1f}, effective rank "
            f"{record['effective_rank']:.1f} of {record['teacher_width']}, on {record['n']} training samples)")
