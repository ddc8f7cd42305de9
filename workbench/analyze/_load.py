"""What an analysis runs on: a model with its task (when known), and samples with eye boxes and gaze labels.

A *subject* is a run folder, an ``nn.Module`` (a notebook), or a user's factory ``package.module:factory``
(with a task name, or with input shapes when the model has no task). *Samples* come from the data spec
(:mod:`workbench.train.data`): by default the run's own validation split, drawn across subjects. Eye
boxes come from the data through the task contract, per model input, in that input's pixels.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.tasks import Task, TaskData, get_task

@dataclass
class Subject:
    """A model to analyse. ``config`` rebuilds it (a run's model config) or names its factory."""

    model: nn.Module
    task: Task | None
    config: dict[str, Any]
    name: str
    run_config: dict[str, Any] | None = None
    input_shapes: dict[str, tuple[int, ...]] | None = None  # per-sample shapes, for a model without a task

    @property
    def input_names(self) -> tuple[str, ...]:
        names = getattr(self.model, "input_names", None)
        if names:
            return tuple(names)
        if self.task is not None:
            return tuple(self.task.input_names)
        return tuple(self.input_shapes or ())

    @property
    def explain_names(self) -> tuple[str, ...]:
        if self.task is not None:
            return tuple(self.task.explain_names)
        return self._free_names

    _free_names: tuple[str, ...] = ()

    def explain(self, outputs: Any) -> torch.Tensor:
        """Model outputs -> (B, K) scalars to explain: the task's ``explain_target``, or, for a model
        without a task, its output (a tensor, or a dict's tensors) flattened per sample."""
        if self.task is not None:
            return self.task.explain_target(self.task.check_outputs(outputs))
        if isinstance(outputs, dict):
            outputs = torch.cat([v.reshape(len(v), -1) for v in outputs.values()], 1)
        if isinstance(outputs, (tuple, list)):
            outputs = outputs[0]
        return outputs.reshape(len(outputs), -1)


def _config_task(config: dict[str, Any]) -> str | None:
    from workbench.train.models import model_task

    try:
        return model_task(config)
    except (WorkbenchError, ValueError, KeyError):
        return None


def load_subject(source: Any, *, task: str | Task | None = None,
                 input_shapes: dict[str, Sequence[int]] | None = None) -> Subject:
    """A run folder, an ``nn.Module`` or ``"package.module:factory"`` -> :class:`Subject` (eval mode).

    ``task`` (a name) says which task contract a user's model serves; without one, ``input_shapes``
    (``{name: per-sample shape}``) say what to feed it (random N(0, 1) inputs, no eye boxes).
    """
    run_config = None
    if isinstance(source, nn.Module):
        model = source
        config = dict(getattr(model, "config", {}) or {"model": type(model).__name__})
        name = str(config.get("teacher", type(model).__name__))
    elif isinstance(source, (str, Path)) and Path(source).is_dir():
        from workbench.train.engine import load_run_model

        model, run_config, run_task = load_run_model(source)
        config = run_config["model"]
        path = Path(source).resolve()
        name = f"{run_config.get('teacher', 'model')} ({path.parent.name}/{path.name})"
        task = task or run_task
    elif isinstance(source, str) and ":" in source and not Path(source).exists():
        from workbench.modelspec import load_factory

        model = load_factory(source)  # a factory that fails, or returns something else, is one line
        config = dict(getattr(model, "config", {}) or {"factory": source})
        name = source
    else:
        raise WorkbenchError(f"{source}: not a run folder (no such folder) nor a package.module:factory model")
    task_name = task if isinstance(task, (str, Task)) else None
    if task_name is None:
        task_name = _config_task(config) if config else None
    try:
        task_obj = get_task(task_name) if isinstance(task_name, str) else task_name
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    model.eval()
    subject = Subject(model, task_obj, config, name, run_config)
    if task_obj is None:
        if not input_shapes:
            raise WorkbenchError(f"model {name!r} names no task: give its task (a registered task name) or its input "
                                 "shapes (name=C,H,W)")
        subject.input_shapes = {k: tuple(int(d) for d in v) for k, v in input_shapes.items()}
        try:
            with torch.no_grad():
                out = subject.explain(model(*_random_inputs(subject.input_shapes, 2)))
        except (ValueError, RuntimeError, TypeError) as exc:
            shapes = ", ".join(f"{k}={tuple(v)}" for k, v in subject.input_shapes.items())
            raise WorkbenchError(f"model {name!r} fails on inputs {shapes}: {str(exc).splitlines()[0][:200]}") from None
        subject._free_names = tuple(f"out{j}" for j in range(out.shape[1]))
    return subject


def _random_inputs(shapes: dict[str, tuple[int, ...]], n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn((n, *s), generator=gen) for s in shapes.values())


# ---- samples -------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """``n`` samples for a subject: model inputs on demand, eye boxes per input, gaze labels, subjects.

    ``boxes[input_name]`` is (N, [T,] K, 4) (x0, y0, x1, y1) in that input's pixels (K boxes per image).
    """

    n: int
    data: TaskData | None
    task: Task | None
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None  # (N, L) gaze labels for embeddings
    label_names: tuple[str, ...] = ()
    subjects: np.ndarray | None = None
    description: str = ""
    _random: tuple[torch.Tensor, ...] | None = None
    source: dict[str, Any] = field(default_factory=dict)  # the data spec and split: what summaries record
    boxes_missing: dict[str, str] = field(default_factory=dict)  # input -> why it has no eye boxes
    indices: np.ndarray | None = None  # the rows of the split these samples are (drawing order)

    def __len__(self) -> int:
        return self.n

    def batch(self, idx: slice | torch.Tensor) -> dict[str, torch.Tensor]:
        if self.data is None:
            return {}
        return self.data.batch(idx)

    def inputs(self, idx: slice | torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The model's inputs for samples ``idx`` (float, normalized as the task does)."""
        if self.data is None:
            return tuple(x[idx] for x in self._random)
        return tuple(self.task.inputs(self.data.batch(idx)))

    def head(self, k: int) -> Samples:
        """The first ``k`` samples (drawn across subjects, so still spread over them)."""
        if k >= self.n:
            return self
        data = None if self.data is None else self.data.subset(torch.arange(k))
        return Samples(k, data, self.task, {name: b[:k] for name, b in self.boxes.items()},
                       None if self.labels is None else self.labels[:k], self.label_names,
                       None if self.subjects is None else self.subjects[:k], self.description,
                       None if self._random is None else tuple(x[:k] for x in self._random),
                       {**self.source, "n": k}, dict(self.boxes_missing),
                       None if self.indices is None else self.indices[:k])

    def slices(self, batch_size: int) -> Iterator[slice]:
        for start in range(0, self.n, batch_size):
            yield slice(start, min(start + batch_size, self.n))


def _data_config(subject: Subject) -> dict[str, Any] | None:
    """The run config the data spec resolves against: the run's own, or, for a registered model without
    a run, its registered recipe at seed 0 (so SynthGaze renders at the size it was built for)."""
    if subject.run_config is not None:
        return subject.run_config
    name = subject.config.get("teacher")
    if name is None:
        return None
    from workbench.train.recipes import get_recipe

    try:
        recipe = get_recipe(str(name), subject.config.get("preset", "cpu"))
    except WorkbenchError:
        return None
    return {"recipe": recipe.to_dict(), "seed": 0, "data": {"source": "synth", "format": None}}


def load_samples(subject: Subject, *, n: int, data: str | None = None, fmt: str | None = None,
                 purpose: str = "saliency", progress: ProgressArg = False) -> Samples:
    """``n`` samples to analyse ``subject`` on, drawn across subjects for ``purpose``
    (:func:`workbench.train.data.draw`) from the data spec ``data`` (default: the run's own validation
    split; see :func:`workbench.train.data.resolve_data`). Eye boxes come from the data through the
    task (:meth:`Task.eye_boxes`); inputs whose data has none are listed in ``boxes_missing``."""
    from workbench.train.data import draw, load_split, resolve_data

    if n <= 0:
        raise WorkbenchError(f"expected a positive number of samples, got {n}")
    task = subject.task
    if task is None:
        inputs = _random_inputs(subject.input_shapes, n)
        return Samples(n, None, None, description=f"{n} random N(0, 1) inputs", _random=inputs,
                       source={"source": "random N(0, 1) inputs", "format": None, "split": None, "n": n})
    config = _data_config(subject)
    spec = resolve_data(data, config, fmt)
    with as_progress(progress)(f"loading {spec.label()}", 1) as advance:
        # SynthGaze renders only the split's first rows (enough to span its subjects); disk data is read whole.
        pool, desc = load_split(task, config, spec, limit=max(64, 8 * n))
        advance(1)
    if len(pool) == 0:
        raise WorkbenchError(f"{spec.source}: the data set is empty (no samples to analyse)")
    seed = int((config or {}).get("seed", 0))
    picked = draw(pool, n, purpose, seed)
    prepared = pool.subset(picked)
    boxes, missing = task.eye_boxes(prepared)
    labels, names = task.label_columns(prepared)
    subjects = np.asarray(prepared.meta.get("subject", np.full(len(prepared), -1)))
    shown = sorted(int(x) for x in np.unique(subjects))
    source = {**desc, "n": len(prepared), "drawn_from": desc.get("n"), "subjects": shown, "purpose": purpose}
    description = f"{desc['label']}: {len(prepared)} of {desc.get('n')} samples across subjects {shown}"
    return Samples(len(prepared), prepared, task, boxes=boxes, labels=labels, label_names=names, subjects=subjects,
                   description=description, source=source, boxes_missing=missing, indices=picked)


def is_image(x: torch.Tensor) -> bool:
    """A model input is an image (B, C, H, W) or an image sequence (B, T, C, H, W) with C in 1..4."""
    return x.is_floating_point() and x.dim() in (4, 5) and x.shape[-3] in (1, 2, 3, 4) and min(x.shape[-2:]) >= 8


def parse_target(target: int | str | None, names: Sequence[str]) -> list[int]:
    """Column indices of ``explain_target`` for ``target`` (None: all; an index; or a column name)."""
    if target is None:
        return list(range(len(names)))
    if isinstance(target, str) and target.strip().lstrip("-").isdigit():
        target = int(target)
    if isinstance(target, int):
        if not 0 <= target < len(names):
            raise WorkbenchError(f"target index {target} out of range; expected 0..{len(names) - 1} ({', '.join(names)})")
        return [target]
    if target not in names:
        raise WorkbenchError(f"unknown target {target!r}; expected one of {', '.join(names)} (or their index)")
    return [list(names).index(target)]


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


def check_out(out: str | Path | None, force: bool) -> None:
    """Refuse a non-empty output folder (without ``force``) before any work is done."""
    if out is not None:
        from workbench.utils.io import ensure_new_dir

        ensure_new_dir(out, force=force)


def write_folder(out: str | Path, write: Callable[[Path], None], *, force: bool = False) -> list[str]:
    """Write an output folder atomically: ``write(tmp)`` fills a temporary folder that then replaces
    ``out`` (a non-empty ``out`` needs ``force``). Returns the paths written."""
    from workbench.utils.io import atomic_path, ensure_new_dir

    out = ensure_new_dir(out, force=force)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write(tmp)
        names = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    return [str(Path(out) / name) for name in names]


