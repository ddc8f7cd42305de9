"""Training and validation data for a task: SynthGaze with held-out subjects, or a user's data set in
one of the write-ups' layouts (read through the same reader as `workbench data inspect`)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, ContextManager

import numpy as np

from workbench.errors import DataError, WorkbenchError
from workbench.tasks.base import Task, TaskData
from workbench.train.recipes import Recipe


def synth_subjects(recipe: Recipe) -> tuple[list[int], list[int]]:
    """Train subject ids 0..K-1 and held-out validation ids K..K+V-1."""
    k, v = recipe.train_subjects, recipe.val_subjects
    if k <= 0 or v <= 0:
        raise WorkbenchError(f"need at least one train and one validation subject, got {k} and {v}")
    return list(range(k)), list(range(k, k + v))


def load_data(task: Task, recipe: Recipe, *, data: str = "synth", fmt: str | None = None, seed: int = 0,
              progress: Callable[[str, int], ContextManager[Callable[[int], None]]] | None = None,
              ) -> tuple[TaskData, TaskData, dict[str, Any]]:
    """(train, val, description) for ``task``. ``data`` is "synth" or a path to a data set.

    ``progress(description, total)`` returns a context manager yielding ``advance(k)`` (a progress bar).
    """
    if data == "synth":
        from workbench.data.synth import render

        train_ids, val_ids = synth_subjects(recipe)
        parts = []
        for split, n, ids, s in (("train", recipe.n_train, train_ids, seed), ("val", recipe.n_val, val_ids, seed + 1)):
            bar = progress(f"rendering {split}", n) if progress else contextlib.nullcontext(None)
            with bar as advance:
                parts.append(task.prepare(render(task.view, n, seed=s, subjects=ids, size=recipe.size, progress=advance)))
        desc = {"source": "synth", "view": task.view, "train_subjects": train_ids, "val_subjects": val_ids,
                "n_train": recipe.n_train, "n_val": recipe.n_val, "size": recipe.size, "seed": seed}
        return parts[0], parts[1], desc
    return _load_path(task, Path(data), fmt, seed, size=recipe.size)


def check_layout(task: Task, path: Path, fmt: str | None) -> str:
    """The layout of the data set at ``path`` (detected unless given); it must hold the task's view."""
    from workbench.data import formats

    if not path.exists():
        raise DataError(f"{path}: no such data folder")
    fmt = fmt or formats.detect_format(path)
    view = formats.VIEW_OF_FORMAT.get(fmt)
    if view is not None and view != task.view:
        raise DataError(f"{path}: layout {fmt!r} holds {view!r} data, but task {task.name!r} needs {task.view!r} data")
    return fmt


def read_for_task(task: Task, path: Path, fmt: str | None, size: Any = None,
                  **kw: Any) -> tuple[dict[str, np.ndarray], str, dict[str, Any]]:
    """Read the data set at ``path`` for ``task`` -> (view dict, format, resize info).

    Images are resized to ``size`` (a recipe's size: int or (W, H); None keeps them) on the way in, with
    their pixel-coordinate labels (see :mod:`workbench.data.resize`); ``kw`` goes to the reader.
    """
    from workbench.data import formats
    from workbench.data.resize import fit_images

    fmt = check_layout(task, path, fmt)
    data, resized = fit_images(formats.read(fmt, path, **kw), task.view, size)
    return data, fmt, resized


def _load_path(task: Task, path: Path, fmt: str | None, seed: int,
               size: Any = None) -> tuple[TaskData, TaskData, dict[str, Any]]:
    fmt = check_layout(task, path, fmt)
    desc: dict[str, Any] = {"source": str(path), "format": fmt, "view": task.view, "seed": seed}
    if fmt in ("evg", "itracker"):
        train_raw, _, resized = read_for_task(task, path, fmt, size, split="train")
        val_raw, _, _ = read_for_task(task, path, fmt, size, split="val")
        train, val = task.prepare(train_raw), task.prepare(val_raw)
        desc["split"] = "layout splits train/val"
        if resized:
            desc["resized"] = resized
        return train, val, desc
    raw, _, resized = read_for_task(task, path, fmt, size)
    if resized:
        desc["resized"] = resized
    everything = task.prepare(raw)
    subjects = np.asarray(everything.meta.get("subject", np.full(len(everything), -1)))
    ids = np.unique(subjects[subjects >= 0])
    if len(ids) >= 2:
        # Hold out the last fifth of the subjects (at least one), as a subject-independent evaluation.
        held = ids[-max(1, len(ids) // 5):]
        is_val = np.isin(subjects, held)
        desc["split"] = f"held-out subjects {held.tolist()}"
    else:
        rng = np.random.default_rng(seed)
        is_val = rng.random(len(everything)) < 0.1
        desc["split"] = "random 10% (the data has no subject ids)"
    if is_val.all() or not is_val.any():
        raise DataError(f"{path}: cannot split {len(everything)} samples into train and validation")
    train = everything.subset(np.flatnonzero(~is_val))
    val = everything.subset(np.flatnonzero(is_val))
    for part, mask in ((train, ~is_val), (val, is_val)):
        part.meta = {k: (v[mask] if isinstance(v, np.ndarray) and len(v) == len(is_val) else v) for k, v in everything.meta.items()}
    return train, val, desc
