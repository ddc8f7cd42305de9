"""What an analysis runs on: samples with eye boxes and gaze labels for a :class:`~workbench.analyze.subject.Subject`.

*Samples* come from the data spec (:mod:`workbench.train.data`): by default the run's own validation split,
drawn across subjects. Eye boxes come from the data through the task contract, per model input, in that
input's pixels. A model without a task gets random N(0, 1) inputs of its input shapes (and no eye boxes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from workbench.analyze.subject import Subject, random_inputs
from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.tasks import Task, TaskData


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
        inputs = random_inputs(subject.input_shapes, n)
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
