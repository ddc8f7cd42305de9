"""What an analysis runs on: a model with its task (when known), and samples with eye boxes and gaze labels.

A *subject* is a run folder, an ``nn.Module`` (a notebook), or a user's factory ``package.module:factory``
(with a task name, or with input shapes when the model has no task). *Samples* are SynthGaze renders of
the run's held-out subjects (fresh seed), or a data set on disk read through the task's layout reader.
Eye boxes come from the renderer, per model input, in that input's pixel coordinates.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.tasks import Task, TaskData, get_task

Progress = Callable[[str, int], contextlib.AbstractContextManager[Callable[..., None]]]


def no_progress(description: str, total: int) -> contextlib.AbstractContextManager[Callable[..., None]]:
    return contextlib.nullcontext(lambda k=1, status="": None)


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


def _import_factory(spec: str) -> Callable[[], nn.Module]:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise WorkbenchError(f"expected a model as package.module:factory, got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkbenchError(f"cannot import {module_name!r} for model {spec!r}: {exc}") from None
    fn = getattr(module, attr, None)
    if fn is None:
        raise WorkbenchError(f"module {module_name!r} has no {attr!r} (model {spec!r})")
    return fn


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
        model = _import_factory(source)()
        if not isinstance(model, nn.Module):
            raise WorkbenchError(f"{source} returned {type(model).__name__}, expected a torch.nn.Module")
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
            raise WorkbenchError(f"model {name!r} names no task: give its task (e.g. face_angles) or its input "
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
        """The first ``k`` samples."""
        if k >= self.n:
            return self
        data = None
        if self.data is not None:
            data = self.data.subset(torch.arange(k))
            data.meta = {m: (v[:k] if isinstance(v, np.ndarray) and len(v) == self.n else v)
                         for m, v in self.data.meta.items()}
        return Samples(k, data, self.task, {name: b[:k] for name, b in self.boxes.items()},
                       None if self.labels is None else self.labels[:k], self.label_names,
                       None if self.subjects is None else self.subjects[:k], self.description,
                       None if self._random is None else tuple(x[:k] for x in self._random))

    def slices(self, batch_size: int) -> Iterator[slice]:
        for start in range(0, self.n, batch_size):
            yield slice(start, min(start + batch_size, self.n))


def _recipe(subject: Subject):
    from workbench.train.recipes import Recipe, get_recipe

    if subject.run_config is not None:
        return Recipe.from_dict(subject.run_config["recipe"])
    teacher = subject.config.get("teacher")
    if teacher is not None:
        try:
            return get_recipe(teacher, subject.config.get("preset", "cpu"))
        except WorkbenchError:
            pass
    return Recipe()


@contextlib.contextmanager
def _capture_crops() -> Iterator[list]:
    """Record every crop SynthGaze draws during a render (the mc4 view drops its eye crops' boxes).

    The renderer's private ``_crop`` is wrapped, not changed: the same random draws happen in the same
    order, so the images are byte-identical to an ordinary render.
    """
    from workbench.data import synth

    original = getattr(synth, "_crop", None)
    seen: list = []
    if original is None:
        yield seen
        return

    def recording(*args, **kwargs):
        img, out = original(*args, **kwargs)
        seen.append(out.eye_boxes)
        return img, out

    synth._crop = recording
    try:
        yield seen
    finally:
        synth._crop = original


def _render(view: str, n: int, *, seed: int, subjects: Sequence[int], size: Any) -> tuple[dict, np.ndarray | None]:
    """SynthGaze arrays, plus the mc4 view's left-eye-crop boxes (N, 2, 4) when ``view == 'mc4'``."""
    from workbench.data.synth import CHUNK, render

    if view != "mc4":
        return render(view, n, seed=seed, subjects=subjects, size=size), None
    with _capture_crops() as seen:
        raw = render(view, n, seed=seed, subjects=subjects, size=size)
    # Per chunk, _view_mc4 draws the face, then the left-eye crop, then the right-eye crop.
    chunks = -(-n // CHUNK)
    if len(seen) != 3 * chunks:
        return raw, None
    l_eye = np.concatenate([seen[3 * c + 1] for c in range(chunks)])[:n]
    return raw, l_eye


def _eye_boxes(task: Task, raw: dict[str, np.ndarray], data: TaskData, extra: np.ndarray | None) -> dict[str, np.ndarray]:
    """Eye boxes per model input, in the coordinates of what the model sees (padding included)."""
    meta_boxes = data.meta.get("eye_boxes")
    if task.name == "face_angles" and meta_boxes is not None:
        return {"face": meta_boxes}
    if task.name == "plane_pog" and meta_boxes is not None:
        return {"frame": meta_boxes}  # shifted by the stride-32 padding in prepare()
    if task.name == "look_at_me" and meta_boxes is not None:
        return {"frames": meta_boxes}
    if task.name == "face_eye_lola":
        out = {"face": meta_boxes} if meta_boxes is not None else {}
        if extra is not None:
            out["eye"] = extra  # the evaluation input is the left-eye crop
        return out
    if task.name == "eyes_pog" and "eye_boxes" in raw:
        return {name: raw["eye_boxes"][:, k] for k, name in enumerate(task.input_names)}
    if meta_boxes is not None and task.input_names:
        return {task.input_names[0]: meta_boxes}
    return {}


def _gaze_labels(task: Task, raw: dict[str, np.ndarray], data: TaskData) -> tuple[np.ndarray | None, tuple[str, ...]]:
    """(N, L) labels an embedding should carry: gaze pitch/yaw in degrees where the view has them,
    else the point of gaze; for a data set on disk, the task's first target."""
    from workbench.data.geometry import vector_to_pitchyaw

    if "gaze_pitchyaw" in raw:
        g = np.asarray(raw["gaze_pitchyaw"], dtype=np.float64)
        if g.ndim == 3:  # tracks: the labelled centre frame
            g = g[:, g.shape[1] // 2]
        return np.rad2deg(g).astype(np.float32), ("pitch_deg", "yaw_deg")
    if "gaze_lola" in raw:  # lo = yaw, la = pitch (degrees)
        g = np.asarray(raw["gaze_lola"], dtype=np.float32)
        return np.stack([g[:, 1], g[:, 0]], -1), ("pitch_deg", "yaw_deg")
    if "gaze" in raw and np.asarray(raw["gaze"]).shape[-1] == 3:
        return np.rad2deg(vector_to_pitchyaw(np.asarray(raw["gaze"], dtype=np.float64))).astype(np.float32), \
            ("pitch_deg", "yaw_deg")
    if "pog_mm" in raw:
        return np.asarray(raw["pog_mm"], dtype=np.float32), ("pog_x_mm", "pog_y_mm")
    for name in task.target_names:
        t = data.tensors.get(name)
        if t is not None and t.dim() <= 2 and t.is_floating_point():
            t = t.reshape(len(t), -1)
            return t.numpy().astype(np.float32), tuple(f"{name}_{j}" for j in range(t.shape[1]))
    return None, ()


def load_samples(subject: Subject, *, n: int, data: str = "synth", fmt: str | None = None,
                 progress: Progress = no_progress) -> Samples:
    """``n`` samples to analyse ``subject`` on: fresh SynthGaze renders of the run's held-out subjects
    (seed + 2, as `workbench eval --data synth`), or the first ``n`` of a data set on disk."""
    if n <= 0:
        raise WorkbenchError(f"expected a positive number of samples, got {n}")
    task = subject.task
    if task is None:
        inputs = _random_inputs(subject.input_shapes, n)
        return Samples(n, None, None, description=f"{n} random N(0, 1) inputs", _random=inputs)
    if data == "synth":
        from workbench.train.data import synth_subjects

        recipe = _recipe(subject)
        _, val_ids = synth_subjects(recipe)
        seed = int((subject.run_config or {}).get("seed", 0)) + 2
        with progress(f"rendering {n} samples", 1) as advance:
            raw, extra = _render(task.view, n, seed=seed, subjects=val_ids, size=recipe.size)
            advance(1)
        prepared = task.prepare(raw)
        desc = f"SynthGaze {task.view}, {n} samples of held-out subjects {val_ids[0]}..{val_ids[-1]} (seed {seed})"
    else:
        from workbench.train.data import read_for_task

        path = Path(data)
        raw, _, _ = read_for_task(task, path, fmt, _recipe(subject).size)
        if not any(isinstance(v, np.ndarray) and v.ndim and len(v) for v in raw.values()):
            raise WorkbenchError(f"{path}: the data set is empty (no samples to analyse)")
        prepared = task.prepare(raw)
        extra = None
        desc = str(path)
        if len(prepared) == 0:
            raise WorkbenchError(f"{path}: the data set is empty (no samples to analyse)")
        n = min(n, len(prepared))
        raw = {k: v[:n] for k, v in raw.items() if isinstance(v, np.ndarray) and len(v) == len(prepared)}
        keep = torch.arange(n)
        meta = {k: (v[:n] if isinstance(v, np.ndarray) and len(v) == len(prepared) else v)
                for k, v in prepared.meta.items()}
        prepared = prepared.subset(keep)
        prepared.meta = meta
    if len(prepared) == 0:
        raise WorkbenchError("the data set is empty (no samples to analyse)")
    boxes = _eye_boxes(task, raw, prepared, extra)
    labels, names = _gaze_labels(task, raw, prepared)
    subjects = np.asarray(prepared.meta.get("subject", np.full(len(prepared), -1)))
    return Samples(len(prepared), prepared, task, boxes={k: np.asarray(v, dtype=np.float32) for k, v in boxes.items()},
                   labels=labels, label_names=names, subjects=subjects, description=desc)


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


def find_module(model: nn.Module, name: str, *, kinds: tuple[type, ...] | None = None, what: str = "layer") -> nn.Module:
    """``model``'s submodule ``name``; an unknown name (or one of the wrong kind) lists the valid ones."""
    modules = dict(model.named_modules())
    valid = [k for k, m in modules.items() if k and (kinds is None or isinstance(m, kinds))]
    if name not in modules or (kinds is not None and not isinstance(modules[name], kinds)):
        shown = ", ".join(valid[:40]) + (f", ... ({len(valid) - 40} more; see --list-layers)" if len(valid) > 40 else "")
        kind = f" ({'/'.join(k.__name__ for k in kinds)})" if kinds else ""
        got = "" if name not in modules else f" is a {type(modules[name]).__name__}"
        raise WorkbenchError(f"unknown {what} {name!r}{got}; valid {what}s{kind}: {shown or 'none'}")
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


def json_ready(obj: Any) -> Any:
    """Floats rounded to 6 significant digits, NaN -> None, numpy -> Python: compact, valid JSON."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return None if not np.isfinite(v) else float(f"{v:.6g}")
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj
