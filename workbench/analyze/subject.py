"""The model an analysis runs on: a run folder, an ``nn.Module`` (a notebook), or a user's factory
``package.module:factory`` (with a task name, or with input shapes when the model has no task), with its
task when known and the names of the scalars it explains. The samples it runs on are built by
:mod:`workbench.analyze.samples`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.tasks import Task, get_task


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
                out = subject.explain(model(*random_inputs(subject.input_shapes, 2)))
        except (ValueError, RuntimeError, TypeError) as exc:
            shapes = ", ".join(f"{k}={tuple(v)}" for k, v in subject.input_shapes.items())
            raise WorkbenchError(f"model {name!r} fails on inputs {shapes}: {str(exc).splitlines()[0][:200]}") from None
        subject._free_names = tuple(f"out{j}" for j in range(out.shape[1]))
    return subject


def random_inputs(shapes: dict[str, tuple[int, ...]], n: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``n`` seeded N(0, 1) inputs per ``{name: per-sample shape}``: what a model without a task is fed."""
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn((n, *s), generator=gen) for s in shapes.values())


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
