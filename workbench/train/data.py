"""Training and validation data for a task: SynthGaze with held-out subjects, or a user's data set in
one of the write-ups' layouts (read through the same reader as `workbench data inspect`).

Also the one *data spec* every command that reads samples for a run resolves (:func:`resolve_data`,
:func:`load_split`): ``val`` / ``train`` (the run's own splits, rebuilt from its config: for SynthGaze the
same subjects and seed, for a path the same held-out subjects), ``synth`` (fresh SynthGaze samples of the
run's held-out subjects) or a path (+ format: every sample of that data set). The default is ``val``.
Samples a command draws from a split are drawn across subjects by :func:`draw`, which takes the
purpose by name, so a reader sees which samples each command uses.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import DataError, WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.tasks.base import Task, TaskData
from workbench.train.recipes import Recipe


# SynthGaze seeds of a run with seed s: training split s, validation split s + 1, fresh held-out
# samples (``--data synth`` on a run) s + 2. Nothing else renders SynthGaze for a run.
SYNTH_SEED_OFFSET = {"train": 0, "val": 1, "fresh": 2}


def synth_subjects(recipe: Recipe) -> tuple[list[int], list[int]]:
    """Train subject ids 0..K-1 and held-out validation ids K..K+V-1."""
    k, v = recipe.train_subjects, recipe.val_subjects
    if k <= 0 or v <= 0:
        raise WorkbenchError(f"need at least one train and one validation subject, got {k} and {v}")
    return list(range(k)), list(range(k, k + v))


def load_data(task: Task, recipe: Recipe, *, data: str = "synth", fmt: str | None = None, seed: int = 0,
              progress: ProgressArg | None = None,
              ) -> tuple[TaskData, TaskData, dict[str, Any]]:
    """(train, val, description) for ``task``. ``data`` is "synth" or a path to a data set.

    ``progress``: see :mod:`workbench.progress` (a bool, or a factory of progress bars).
    """
    if data == "synth":
        from workbench.data.synth import render

        train_ids, val_ids = synth_subjects(recipe)
        parts = []
        for split, n, ids, s in (("train", recipe.n_train, train_ids, seed + SYNTH_SEED_OFFSET["train"]),
                                 ("val", recipe.n_val, val_ids, seed + SYNTH_SEED_OFFSET["val"])):
            with as_progress(progress)(f"rendering {split}", n) as advance:
                parts.append(task.prepare(render(task.view, n, seed=s, subjects=ids, size=recipe.size, progress=advance)))
        desc = {"source": "synth", "view": task.view, "train_subjects": train_ids, "val_subjects": val_ids,
                "n_train": recipe.n_train, "n_val": recipe.n_val, "size": recipe.size, "seed": seed}
        return parts[0], parts[1], desc
    return _load_path(task, Path(data), fmt, seed, size=recipe.size)


def check_sample_counts(source: str, given: dict[str, Any], names: dict[str, str] | None = None) -> None:
    """``n_train`` / ``n_val`` size SynthGaze; a data set on disk is used whole (its own split). Asking for a
    count with a data set is one line, not an option silently ignored. ``names``: how the caller's user
    spells each key (e.g. {"n_train": "--finetune-samples"})."""
    if source == "synth":
        return
    asked = [k for k in ("n_train", "n_val") if given.get(k) is not None]
    if asked:
        spelled = ", ".join((names or {}).get(k, "--" + k.replace("_", "-")) for k in asked)
        raise DataError(f"{spelled}: sample counts apply to SynthGaze; the data set {source} is used whole "
                        "(training split and held-out validation split)")


def check_layout(task: Task, path: Path, fmt: str | None) -> str:
    """The layout of the data set at ``path`` (detected unless given); it must hold the task's view."""
    from workbench.data import formats

    if not path.exists():
        raise DataError(f"{path}: no such data folder")
    fmt = fmt or formats.detect_format(path)
    formats.get_format(fmt)  # an unknown --format is one line naming the known ones
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
    parts = formats.FORMATS[fmt].parts if fmt in formats.FORMATS else None
    if size is None or parts is None or kw:
        data, resized = fit_images(formats.read(fmt, path, **kw), task.view, size)
        return data, fmt, resized
    # One part (subject) at a time, each shrunk before the next is read: peak memory is one subject at
    # the native size plus the fitted whole, not the whole at its native size.
    pieces, resized = [], {}
    for opts in parts(path):
        piece, info = fit_images(formats.read(fmt, path, **opts), task.view, size)
        pieces.append(piece)
        resized = resized or info
    keys = [k for k, v in pieces[0].items() if isinstance(v, np.ndarray) and v.ndim > 0]
    data = {**pieces[0], **{k: np.concatenate([p[k] for p in pieces]) for k in keys}}
    return data, fmt, resized


# Label keys that an unlabelled split (a challenge's test images) leaves unknown (NaN / -1), per view.
_UNKNOWN_LABELS = {"mc4": ("head_lola", "eye_lola", "gaze_lola"), "track": ("label", "frame_labels")}


def _read_unlabelled(task: Task, path: Path, fmt: str | None,
                     size: Any) -> tuple[dict[str, np.ndarray], str, dict[str, Any]]:
    """:func:`read_for_task` for predictions only: a layout that has an unlabelled form (MC4's and LAM's test
    splits) is asked for it, and its unknown labels get placeholders the task accepts (never looked at)."""
    import inspect

    from workbench.data import formats

    fmt = check_layout(task, path, fmt)
    takes = "unlabelled" in inspect.signature(formats.FORMATS[fmt].reader).parameters
    raw, fmt, resized = read_for_task(task, path, fmt, size, **({"unlabelled": True} if takes else {}))
    for key in _UNKNOWN_LABELS.get(task.view, ()):
        if key in raw:
            arr = np.asarray(raw[key])
            raw[key] = np.nan_to_num(arr, nan=0.0) if arr.dtype.kind == "f" else np.maximum(arr, 0)
    return raw, fmt, resized


def _load_path(task: Task, path: Path, fmt: str | None, seed: int,
               size: Any = None) -> tuple[TaskData, TaskData, dict[str, Any]]:
    fmt = check_layout(task, path, fmt)
    desc: dict[str, Any] = {"source": str(path), "format": fmt, "view": task.view, "seed": seed}
    from workbench.data import formats

    if formats.FORMATS[fmt].splits:  # layouts with their own train/val splits
        train_raw, _, resized = read_for_task(task, path, fmt, size, split="train")
        val_raw, _, _ = read_for_task(task, path, fmt, size, split="val")
        train, val = task.prepare(train_raw), task.prepare(val_raw)
        desc["split"] = "layout splits train/val"
        for name, raw in (("train", train_raw), ("val", val_raw)):
            if isinstance(raw.get("counts"), dict):  # what the reader read and skipped (GazeCapture: invalid frames)
                desc[f"{name}_read"] = raw["counts"]
        if resized:
            desc["resized"] = resized
        return train, val, {**desc, "n_train": len(train), "n_val": len(val)}
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
    return train, val, {**desc, "n_train": len(train), "n_val": len(val)}


# ---- the data spec ---------------------------------------------------------------------------------------
SPLITS = ("val", "train")


@dataclass(frozen=True)
class DataSpec:
    """Which samples a command reads: ``source`` ("synth" or a path), its ``format`` (None: detected or
    SynthGaze) and ``split``: "val"/"train" (a run's own split), "held-out" (fresh SynthGaze samples of a
    run's held-out subjects) or "all" (every sample of a data set on disk)."""

    source: str
    format: str | None
    split: str

    def describe(self) -> dict[str, Any]:
        """What every summary JSON records about its data: {"source", "format", "split"}."""
        return {"source": self.source, "format": self.format, "split": self.split}

    def label(self) -> str:
        """One line for tables and reports, e.g. "data/mpii (mpiifacegaze), validation split"."""
        where = "SynthGaze" if self.source == "synth" else f"{self.source} ({self.format or 'detected'})"
        what = {"val": "validation split", "train": "training split", "held-out": "fresh samples of held-out subjects",
                "all": "all samples"}.get(self.split, self.split)
        return f"{where}, {what}"


def run_data(config: dict[str, Any]) -> tuple[str, str | None]:
    """(source, format) a run was trained on, from its config."""
    data = config.get("data") or {}
    return str(data.get("source", "synth")), data.get("format")


def resolve_data(data: str | None, config: dict[str, Any] | None = None, fmt: str | None = None) -> DataSpec:
    """A data spec string -> :class:`DataSpec`. ``None``/"val"/"train" are the run's own splits (a model
    without a run: SynthGaze's validation split at the default recipe); "synth" is fresh SynthGaze samples
    of the run's held-out subjects; anything else is a path (``fmt`` its layout; every sample)."""
    data = "val" if data in (None, "") else str(data)
    if data in SPLITS:
        if config is None:
            return DataSpec("synth", None, data)
        source, run_fmt = run_data(config)
        return DataSpec(source, run_fmt if source != "synth" else None, data)
    if data == "synth":
        return DataSpec("synth", None, "held-out" if config is not None else "val")
    if fmt is None and config is not None and run_data(config)[0] == data:
        fmt = run_data(config)[1]  # the run's own data set, named by its path: its recorded layout
    return DataSpec(data, fmt, "all")


def load_split(task: Task, config: dict[str, Any] | None, spec: DataSpec, *, limit: int | None = None,
               unlabelled: bool = False, progress: ProgressArg | None = None,
               ) -> tuple[TaskData, dict[str, Any]]:
    """The samples ``spec`` names for a run with ``config`` (None: a model without a run, the default
    recipe and seed 0): (TaskData, description). The description is ``spec.describe()`` plus ``n`` and
    what identifies the split (subjects, seed) and a one-line ``label``.

    ``limit`` bounds what SynthGaze renders of a split (its first ``limit`` samples, the same bytes as the
    split's first rows) when a command needs only a few; data on disk is read whole. ``unlabelled``: the
    samples are for predictions only, so a data set on disk may be a challenge's unlabelled test split.
    """
    recipe = Recipe.from_dict(config["recipe"]) if config is not None else Recipe()
    seed = int(config.get("seed", 0)) if config is not None else 0
    desc: dict[str, Any] = spec.describe()
    if spec.source == "synth":
        from workbench.data.synth import render

        train_ids, val_ids = synth_subjects(recipe)
        split = "train" if spec.split == "train" else "val"
        ids = train_ids if split == "train" else val_ids
        n = recipe.n_train if split == "train" else recipe.n_val
        offset = SYNTH_SEED_OFFSET["fresh" if spec.split == "held-out" else split]
        n = min(n, limit) if limit else n
        with as_progress(progress)(f"rendering {n} samples", n) as advance:
            data = task.prepare(render(task.view, n, seed=seed + offset, subjects=ids, size=recipe.size, progress=advance))
        desc.update({"n": n, "subjects": ids, "seed": seed + offset, "size": recipe.size, "label": spec.label()})
        return data, desc
    path = Path(spec.source)
    if spec.split in SPLITS:
        train, val, split_desc = _load_path(task, path, spec.format, seed, size=recipe.size)
        data = train if spec.split == "train" else val
        desc.update({"format": split_desc.get("format", spec.format), "how": split_desc.get("split")})
        if split_desc.get("resized"):
            desc["resized"] = split_desc["resized"]
    else:
        raw, fmt, resized = (_read_unlabelled if unlabelled else read_for_task)(task, path, spec.format, recipe.size)
        data = task.prepare(raw)
        if resized:
            desc["resized"] = resized
        if "name" in raw:
            data.meta["name"] = list(raw["name"])
        desc["format"] = fmt
    if len(data) == 0:
        raise DataError(f"{path}: no samples in the {spec.split} split")
    desc["n"] = len(data)
    subjects = np.asarray(data.meta.get("subject", np.full(len(data), -1)))
    desc["subjects"] = sorted(int(s) for s in np.unique(subjects))
    desc["label"] = DataSpec(spec.source, desc.get("format"), spec.split).label()
    return data, desc


# Purposes that draw samples from a split; the index is mixed into the seed, so two purposes draw
# different samples and every draw of one purpose is the same.
PURPOSES = ("saliency", "check", "embeddings", "fc-importance", "calibration", "finetune", "evaluation", "example",
            "visualize")


def draw(data: TaskData, n: int, purpose: str, seed: int = 0) -> np.ndarray:
    """Indices of ``min(n, len(data))`` samples of ``data`` for ``purpose``, drawn across subjects.

    Stratified by subject: each subject's rows are shuffled (seeded by ``seed`` and the purpose), then
    subjects take turns, so every subject appears once ``n`` reaches the number of subjects, and the
    subjects' shares differ by at most one sample. Returns int64 indices (N,) in drawing order, so
    any prefix (e.g. the first k samples a check re-attributes) is also spread across subjects.
    """
    if purpose not in PURPOSES:
        raise WorkbenchError(f"unknown sampling purpose {purpose!r}; expected one of {', '.join(PURPOSES)}")
    total = len(data)
    n = min(int(n), total)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(purpose.encode())])
    subjects = np.asarray(data.meta.get("subject", np.full(total, -1)))
    if len(subjects) != total:
        subjects = np.full(total, -1)
    groups = [rng.permutation(np.flatnonzero(subjects == s)) for s in rng.permutation(np.unique(subjects))]
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        picked.extend(int(g[depth]) for g in groups if depth < len(g))
        depth += 1
    return np.asarray(picked[:n], dtype=np.int64)
