"""What `workbench profile | bench` point at: a teacher name, a run folder, or ``package.module:factory``.

Each resolves to a :class:`Target`: the model (eval mode), a batch of named inputs, and what is known
about it (its task, whether it takes the full camera frame). The spec is read as everywhere else
(``workbench.modelspec``): run folders are fed a real batch of their own validation split (drawn across
subjects, at the size their data has); teacher and student names get random inputs of their preset's
shapes; a ``module:factory`` with ``--task`` a SynthGaze batch of that task, without one random inputs of
the ``--input name=CxHxW`` shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.profile.counting import count_total, profile_model
from workbench.profile.inputs import (
    parse_input_specs,
    random_inputs,
    repeat_batch,
    run_model,
)
from workbench.profile.padding import frame_input, network_size, padding_macs, with_size

__all__ = ["Target", "profile_run", "profile_target", "resolve_target", "run_batch", "run_data_batch", "synth_batch"]


@dataclass
class Target:
    """A model to profile, with its inputs ({name: (B, ...)}) and what kind of thing it came from."""

    label: str
    kind: str  # teacher | student | run | import
    model: nn.Module
    inputs: dict[str, torch.Tensor]
    task: Any = None  # workbench.tasks.Task, when known
    config: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    default_image: tuple[int, int] | None = None  # the raw frame (w, h) a full-frame model is trained on
    data: dict[str, Any] | None = None  # where the inputs come from (a run's data spec and split), or None

    @property
    def full_frame(self) -> bool:
        """True for models fed the whole camera frame (padded to the stride); False for crop models."""
        if self.task is not None:
            return self.task.view == "frame"
        return self.kind == "import"  # a user who passes --image says the model takes the frame

    def batch(self, n: int) -> dict[str, torch.Tensor]:
        """The inputs with ``n`` rows (cycling through the rows there are)."""
        return repeat_batch(self.inputs, n)


# ---- SynthGaze batches ------------------------------------------------------------------------------


def synth_batch(task: Any, size: Any, n: int, *, seed: int = 12345, subjects: Sequence[int] | int = (0, 1, 2),
                names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """A real batch of ``n`` SynthGaze samples for ``task`` at render ``size``: {input name: tensor}."""
    from workbench.data.synth import render

    data = task.prepare(render(task.view, n, seed=seed, subjects=list(subjects) if not isinstance(subjects, int) else subjects,
                               size=size))
    tensors = task.inputs(data.batch(slice(0, n)))
    return dict(zip(names or task.input_names, tensors))


def run_data_batch(config: Mapping[str, Any], task: Any, n: int, names: Sequence[str] | None = None,
                   ) -> tuple[dict[str, torch.Tensor], dict[str, Any], tuple[int, int] | None]:
    """A real batch for a run from its own validation split (``n`` samples drawn across subjects, at the
    size the run's data has): ({input name: tensor}, the data's description, the raw (w, h) of the
    first image input as the data holds it, before any padding the task adds)."""
    from workbench.train.data import draw, load_split, resolve_data

    spec = resolve_data("val", dict(config))
    data, desc = load_split(task, dict(config), spec, limit=max(64, 8 * n))
    picked = draw(data, n, "example", int(config.get("seed", 0)))
    batch = data.batch(torch.as_tensor(picked))
    raw = batch.get(task.input_names[0])
    image = (int(raw.shape[-1]), int(raw.shape[-2])) if raw is not None and raw.dim() >= 4 else None
    tensors = task.inputs(batch)
    return dict(zip(names or task.input_names, tensors)), {**desc, "n": len(picked), "drawn_from": desc["n"]}, image


def run_batch(config: Mapping[str, Any], task: Any, n: int, names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """:func:`run_data_batch`'s inputs only."""
    return run_data_batch(config, task, n, names)[0]


def teacher_batch(name: str, preset: str, n: int, **overrides: Any) -> dict[str, torch.Tensor]:
    """A SynthGaze batch for teacher ``name`` at ``preset`` (its recipe's image size)."""
    from teachers import teacher_spec
    from workbench.tasks import get_task
    from workbench.train.recipes import get_recipe

    recipe = get_recipe(name, preset)
    task = get_task(teacher_spec(name).task, **recipe.task_options)
    return synth_batch(task, recipe.size, n)


# ---- resolving TARGET ---------------------------------------------------------------------------------


def load_factory(spec: str) -> nn.Module:
    """``"package.module:factory"`` -> ``factory()`` (see :func:`workbench.modelspec.load_factory`)."""
    from workbench.modelspec import load_factory as _load

    return _load(spec)


def resolve_target(target: str, *, preset: str = "cpu", input_specs: Sequence[str] = (), batch: int = 1,
                   overrides: Mapping[str, Any] | None = None, task: str | None = None,
                   weights: str | Path | None = None, device: str = "cpu") -> Target:
    """Any model spec (``workbench.modelspec``) -> :class:`Target` with ``batch`` rows on ``device``.

    A teacher or student name, a run folder, or ``package.module:factory``: with ``task`` the factory is
    checked against the task and fed a SynthGaze batch of it; without, its inputs come from ``input_specs``.
    ``input_specs`` (``name=CxHxW``, per sample) also override a model's input shapes by name.
    ``overrides`` are a name's hyper-parameters (e.g. backbone=mobv2) or a factory's keyword arguments;
    ``weights`` a state dict file for a name or a factory.
    """
    from students import list_students
    from teachers import example_inputs, get_teacher, list_teachers, teacher_spec
    from workbench.modelspec import building, load_weights, parse_model_spec, resolve_device, resolve_model
    from workbench.tasks import get_task

    dev = resolve_device(device)
    if batch < 1:
        raise WorkbenchError(f"expected a batch size >= 1, got {batch}")
    shapes = parse_input_specs(input_specs)
    path = Path(target)
    overrides = dict(overrides or {})
    if path.is_dir() and ((path / "config.json").exists() or target not in list_teachers()):
        parse_model_spec(target, task=task, weights=weights, overrides=overrides)  # options that do not apply
        t = _resolve_run(path, batch)
    elif target in list_teachers():
        with building(target, overrides):
            model = get_teacher(target, preset=preset, **overrides)
            example = example_inputs(target, preset, batch=batch, **overrides)
        from workbench.train.recipes import get_recipe

        size = get_recipe(target, preset).size
        label = f"{target} ({preset}" + "".join(f", {k}={v}" for k, v in overrides.items()) + ")"
        t = Target(label, "teacher", model.eval(), example,
                   task=get_task(teacher_spec(target).task), config=dict(model.config),
                   default_image=tuple(size) if isinstance(size, (tuple, list)) else None)
    elif target in list_students():
        import students

        spreset = None if preset == "cpu" else preset  # "cpu" is the teachers' default preset
        with building(target, overrides):
            model = students.get_student(target, preset=spreset, **overrides)
            example = students.example_inputs(target, spreset, batch=batch, **overrides)
        t = Target(f"{target} ({model.config['preset']})", "student", model.eval(), example,
                   task=get_task(model.config["task"]), config=dict(model.config))
    elif ":" in target and task is not None:
        r = resolve_model(parse_model_spec(target, task=task, weights=weights, overrides=overrides))
        task_obj = get_task(r.task)
        names = list(getattr(r.model, "input_names", None) or task_obj.input_names)
        t = Target(target, "import", r.model.eval(), synth_batch(task_obj, None, batch, names=names),
                   task=task_obj, config=r.config)
        weights = None
    elif ":" in target:
        from workbench.modelspec import load_factory as _load

        model = _load(target, overrides)
        overrides = {}
        if not shapes:
            raise WorkbenchError(f"{target}: give the model's inputs with --input name=CxHxW (per sample, no batch), "
                                 "or its --task")
        t = Target(target, "import", model.eval(), random_inputs(shapes, batch))
        shapes = {}
    elif path.exists():
        raise WorkbenchError(f"{target}: not a run folder (expected a folder with config.json and checkpoints/)")
    else:
        raise WorkbenchError(f"unknown teacher, student or model {target!r}: expected a teacher ({', '.join(list_teachers())}), a student "
                             f"({', '.join(list_students())}), a run folder, or package.module:factory")
    if overrides and t.kind not in ("teacher", "student", "import"):
        raise WorkbenchError(f"--model key=value applies to model names and factories, not to {t.kind} {target!r}")
    if weights is not None:
        if t.kind == "run":
            raise WorkbenchError(f"{target}: a run folder holds its own weights; --weights applies to a name or factory")
        load_weights(t.model, weights)
    if shapes:
        unknown = [k for k in shapes if k not in t.inputs]
        if unknown:
            raise WorkbenchError(f"--input {unknown[0]!r}: the model's inputs are {list(t.inputs)}")
        t.inputs.update(random_inputs(shapes, batch))
        t.default_image = None  # the user set the size the network sees
    if "frame_hw" in overrides:
        t.default_image = None
    t.model.to(dev)
    t.inputs = {k: v.to(dev) for k, v in t.inputs.items()}
    run_model(t.model, t.inputs)  # a model that rejects its inputs fails here, in one line
    return t


def _resolve_run(path: Path, batch: int) -> Target:
    from workbench.train.engine import load_run_model

    if not (path / "config.json").exists():
        raise WorkbenchError(f"{path}: not a run folder (no config.json)")
    model, config, task = load_run_model(path)
    names = list(getattr(model, "input_names", None) or task.input_names)
    # Inputs and the frame size come from the run's own data, so a model trained at any size works.
    inputs, data, image = run_data_batch(config, task, batch, names)
    return Target(str(path), "run", model.eval(), inputs, task=task, config=dict(config.get("model", {})),
                  run_dir=path, default_image=image, data=data)


# ---- profiling a target -------------------------------------------------------------------------------


def profile_target(t: Target, *, image: tuple[int, int] | None = None, resize: int | None = None, stride: int = 32,
                   depth: int = 2, top: int | None = None) -> dict[str, Any]:
    """:func:`profile_model` of a target, at the size the network sees when ``image`` (w, h) is given.

    Full-frame models (EVG's task, or a user's model) count at the padded size and report the MACs spent
    on padding (:func:`workbench.profile.padding.padding_macs`); crop models resize any image to their
    fixed input, so padding is 0. Without ``image`` a full-frame teacher or run counts at the frame size
    it is trained on (its recipe's SynthGaze size).
    """
    inputs = t.inputs
    if image is None and t.full_frame and t.default_image is not None:
        image = t.default_image
    size_info: dict[str, Any] | None = None
    frame = None
    if image is not None:
        if t.full_frame:
            frame = frame_input(inputs, "frame" if "frame" in inputs else None)
            size_info = network_size(image, resize=resize, stride=stride)
            pw, ph = size_info["padded"]
            inputs = with_size(inputs, frame, pw, ph)
        else:
            crop = {k: list(v.shape[-2:]) for k, v in inputs.items() if v.dim() >= 4}
            size_info = {"raw": list(image), "resized": None, "padded": None, "stride": None, "mode": None,
                         "note": f"crop model: an image is cropped and resized to the model's inputs {crop} "
                                 "(height, width); no padding", "macs_padding": 0, "padding_fraction": 0.0}
    out = profile_model(t.model, inputs, depth=depth, top=top)
    out.update({"target": t.label, "kind": t.kind, "task": getattr(t.task, "name", None), "config": t.config,
                "data": t.data or {"source": "random inputs", "format": None, "split": None}})
    if size_info is not None and frame is not None:
        def count(w: int, h: int) -> int:
            return count_total(t.model, with_size(inputs, frame, w, h))

        pad = padding_macs(count, tuple(size_info["resized"]), tuple(size_info["padded"]), stride, out["macs"])
        size_info.update(pad)
        size_info["input"] = frame
        if pad["linear_check"]["rel_error"] > 1e-3:
            out["notes"].append(f"MACs are not linear in the frame area ({pad['linear_check']['rel_error']:.2%} off at "
                                f"{pad['linear_check']['size']}): the padding MACs are an estimate.")
        out["notes"].append(f"Frame {image[0]}x{image[1]}" + (f" resized to {size_info['resized'][0]}x{size_info['resized'][1]}"
                            if resize else "") + f" is padded to {size_info['padded'][0]}x{size_info['padded'][1]} "
                            f"(multiple of {stride}); {pad['padding_fraction']:.1%} of the MACs run on padding.")
    elif size_info is not None:
        out["notes"].append(size_info["note"])
    if size_info is not None:
        out["image"] = size_info
    return out


def profile_run(run_dir: str | Path, *, image: tuple[int, int] | None = None, resize: int | None = None,
                stride: int = 32, depth: int = 2, top: int | None = None) -> dict[str, Any]:
    """Profile a run folder's model on one sample of its own validation split (see :func:`profile_target`)."""
    path = Path(run_dir)
    if not path.is_dir():
        raise WorkbenchError(f"{path}: no such run folder")
    return profile_target(_resolve_run(path, 1), image=image, resize=resize, stride=stride, depth=depth, top=top)


def profile_teacher(name: str, preset: str = "cpu", *, image: tuple[int, int] | None = None, **kw: Any) -> dict[str, Any]:
    """Profile teacher ``name`` at ``preset`` (fresh weights) on one sample."""
    return profile_target(resolve_target(name, preset=preset), image=image, **kw)
