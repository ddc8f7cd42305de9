"""The task contract: one per task, shared by every model of that task (teacher, pruned, student).

A task owns the batch format (named tensors), the loss, the metrics and ``explain_target``; also what
generic code would otherwise look up by task name: the per-input eye boxes of a batch's data
(:meth:`Task.eye_boxes`), the response-distillation loss for its outputs (:meth:`Task.kd_loss`), the
labels an embedding is probed for (:meth:`Task.label_columns`) and its prediction writer
(:meth:`Task.write_predictions`). Data flows
one way: a view dict of numpy arrays (from SynthGaze or a format reader, the same keys either way) ->
:meth:`Task.prepare` -> an in-memory :class:`TaskData` -> batches of named tensors -> model -> a dict of
named outputs -> :meth:`Task.loss` / :class:`MetricAccumulator`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
import csv
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from workbench.errors import DataError, WorkbenchError

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])


def to_float_image(x: torch.Tensor, *, imagenet: bool = True) -> torch.Tensor:
    """uint8 images (..., C, H, W) -> float32; ImageNet mean/std for 3 channels, [-1, 1]-ish for grey."""
    x = x.float().div_(255.0)
    if x.shape[-3] == 3 and imagenet:
        shape = (3, 1, 1)
        return (x - IMAGENET_MEAN.view(shape)) / IMAGENET_STD.view(shape)
    return (x - 0.5) / 0.25


@dataclass
class TaskData:
    """A task's data set in memory: named tensors sharing the first dimension.

    Images stay uint8 (4x less memory); :meth:`Task.inputs` converts a batch to the model's inputs.
    ``meta`` holds per-sample values that are neither inputs nor targets (subject ids, eye boxes).
    """

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, idx: torch.Tensor | Sequence[int] | slice) -> dict[str, torch.Tensor]:
        """The rows ``idx`` of every tensor, as a batch dict."""
        return {k: v[idx] for k, v in self.tensors.items()}

    def subset(self, idx: torch.Tensor | np.ndarray | Sequence[int]) -> "TaskData":
        """The rows ``idx``: every tensor, and every per-sample meta array (length N); other meta is kept."""
        n = len(self)
        idx = torch.as_tensor(idx, dtype=torch.long)
        rows = idx.numpy()
        meta = {k: (v[rows] if isinstance(v, np.ndarray) and v.ndim and len(v) == n else
                    [v[i] for i in rows] if isinstance(v, list) and len(v) == n else v)
                for k, v in self.meta.items()}
        return TaskData({k: v[idx] for k, v in self.tensors.items()}, meta)


class MetricAccumulator:
    """Collects (outputs, batch) over an epoch and computes the task's metrics once at the end."""

    def __init__(self, task: "Task") -> None:
        self.task = task
        self.outputs: dict[str, list[torch.Tensor]] = {}
        self.targets: dict[str, list[torch.Tensor]] = {}

    def update(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> None:
        for k, v in outputs.items():
            self.outputs.setdefault(k, []).append(v.detach().float().cpu())
        for k in self.task.metric_keys:
            if k in batch:
                self.targets.setdefault(k, []).append(batch[k].detach().cpu())

    def compute(self) -> dict[str, float]:
        if not self.outputs:
            raise WorkbenchError("no batches to compute metrics on (empty data set?)")
        out = {k: torch.cat(v) for k, v in self.outputs.items()}
        tgt = {k: torch.cat(v) for k, v in self.targets.items()}
        return self.task.metrics(out, tgt)


@dataclass(frozen=True)
class FaceCrop:
    """How a task's image input is a normalized face crop, so a photo or video frame can be turned into
    it (``workbench.faces``: detect, rotate the eyes level, scale, crop).

    ``key``: the batch key of the face crop; ``view_key``: the same image in the task's view dict (its
    eye boxes give the crop geometry); ``grey``: one channel; ``frames``: > 0 for a track of that many
    crops (N, T, C, S, S); ``eyes``: batch keys of eye crops cut around the (image-left, image-right) eye,
    each ``eye_span`` face-crop widths wide, and ``eye_input`` (model input, batch key): which of them the
    model reads at evaluation; ``zeros``: other inputs fed as zeros (per-sample shapes, e.g.
    priors a photo does not have); ``gaze``: how the output named ``gaze`` reads as a direction in the
    image ("pitchyaw": radians; "lola01": MC4 lo/la normalized by (a + 90) / 180), or None.
    """

    key: str
    view_key: str
    grey: bool = False
    frames: int = 0
    eyes: tuple[str, str] | None = None
    eye_span: float = 0.0
    eye_input: tuple[str, str] | None = None
    zeros: tuple[tuple[str, tuple[int, ...]], ...] = ()
    gaze: str | None = None


class Task(ABC):
    """A task contract. Subclasses set the class attributes and implement the abstract methods."""

    name: str
    view: str  # the SynthGaze view (and format readers' view) this task reads
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    target_names: tuple[str, ...]
    metric_keys: tuple[str, ...]  # batch keys the metrics need (targets and geometry)
    primary_metric: str  # the metric that selects the best checkpoint and early stopping
    higher_is_better: bool = False
    explain_names: tuple[str, ...]  # names of the explain_target columns
    # Model input -> the TaskData.meta key holding that input's eye boxes (N, [T,] K, 4), in the pixels of
    # what the model sees. prepare() puts the data's boxes there (padding shifts included).
    eye_box_keys: dict[str, str] = {}
    # Input -> a note for reports on why attribution leaves that input out (beyond "not an image").
    input_notes: dict[str, str] = {}
    # Real photos and videos (workbench.faces): a face-crop input and how to make it, or the batch key of
    # a whole camera frame (letterboxed to the training size); neither: the task cannot take photos.
    face_crop: FaceCrop | None = None
    full_frame: str | None = None

    def __init__(self, **options: Any) -> None:
        self.options = options

    # ---- data ------------------------------------------------------------------------------------
    @abstractmethod
    def prepare(self, data: dict[str, np.ndarray]) -> TaskData:
        """A view dict of numpy arrays -> TaskData (validates shapes and finiteness of labels)."""

    def adapt(self, data: TaskData, model_config: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """What the data fixes beyond this task's options and the model's config (e.g. one camera view
        instead of two): (task option changes, model hyper-parameter changes), both empty when the data
        is in the form the task and ``model_config`` already have (the default).

        The training engine calls it on the prepared training data before building the model, records
        the changes in the run's config (``recipe.task_options``, ``model``) and rebuilds the task, so
        every later command on the run rebuilds the same task and model.
        """
        return {}, {}

    @abstractmethod
    def inputs(self, batch: dict[str, torch.Tensor], *, train: bool = False) -> tuple[torch.Tensor, ...]:
        """The model's inputs, in ``input_names`` order, from a batch (float, normalized)."""

    # ---- objective and evaluation ----------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Called by the training engine before each training epoch (0-based, also after a resume), so a
        task whose loss follows a schedule (plane_pog's ``pog_lead_epochs``) knows where it is."""
        self.epoch = int(epoch)

    @abstractmethod
    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """(total loss, its named components as floats)."""

    @abstractmethod
    def metrics(self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, float]:
        """Metrics over a whole split from concatenated outputs and targets."""

    @abstractmethod
    def explain_target(self, outputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, K) scalars that attribution explains and distillation matches; columns named ``explain_names``."""

    @abstractmethod
    def constant_predictor(self, train: TaskData) -> dict[str, torch.Tensor]:
        """Outputs of the constant predictor (the training mean), shaped for one sample: the baseline metric."""

    # ---- facts generic code asks the task for ------------------------------------------------------
    def eye_boxes(self, data: TaskData) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """({input: (N, [T,] K, 4) float32 boxes}, {input: why there are none}) from the data itself.

        Boxes are (x0, y0, x1, y1) in the pixels of that model input. An input whose data has no boxes,
        or only non-finite ones (a layout that stores none reads them as NaN), is in the second dict,
        so figures that need boxes say "n/a" with the reason instead of 0.
        """
        boxes: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        for name, key in self.eye_box_keys.items():
            b = data.meta.get(key)
            if b is None:
                missing[name] = f"the data has no eye boxes for input {name!r}"
                continue
            b = np.asarray(b, dtype=np.float32)
            if len(b) != len(data) or b.shape[-1] != 4:
                missing[name] = f"eye boxes of shape {b.shape} do not fit {len(data)} samples of input {name!r}"
            elif not np.isfinite(b).all(-1).any():
                missing[name] = f"the data's eye boxes for input {name!r} are all missing (NaN: its layout stores none)"
            else:
                boxes[name] = b
        return boxes, missing

    def kd_loss(self, student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor], *,
                temperature: float = 4.0, mse: bool = False) -> dict[str, torch.Tensor]:
        """Response-distillation terms {output: scalar} of ``student`` outputs against a frozen teacher's
        (same keys, shapes (B, ...)); each is zero when the outputs are equal. ``mse`` makes every term a
        mean squared error. The default matches every output with the mean squared error."""
        return {k: F.mse_loss(student[k].float(), teacher[k].float()) for k in self.output_names}

    def label_columns(self, data: TaskData) -> tuple[np.ndarray | None, tuple[str, ...]]:
        """(N, L) float32 labels an embedding is probed for, and their names; the default: the first
        target flattened. Gaze tasks give the gaze pitch/yaw in degrees where the data has it."""
        for name in self.target_names:
            t = data.tensors.get(name)
            if t is not None and t.dim() <= 2 and t.is_floating_point():
                t = t.reshape(len(t), -1)
                return t.numpy().astype(np.float32), tuple(f"{name}_{j}" for j in range(t.shape[1]))
        return None, ()

    def write_predictions(self, path: Path, outputs: dict[str, torch.Tensor], data: TaskData,
                          names: Sequence[str]) -> None:
        """Write one row per sample to ``path``: the default is a CSV ``name, <output>_<j>...`` of the
        first output. ``outputs`` are (N, ...) tensors, ``names`` N sample names."""
        key = self.output_names[0]
        values = outputs[key].reshape(len(names), -1).numpy()
        write_csv(path, ["name", *(f"{key}_{j}" for j in range(values.shape[1]))],
                  ([name, *(f"{v:.6f}" for v in row)] for name, row in zip(names, values)))

    # ---- helpers shared by tasks -----------------------------------------------------------------
    def accumulator(self) -> MetricAccumulator:
        return MetricAccumulator(self)

    def constant_metrics(self, train: TaskData, val: TaskData) -> dict[str, float]:
        """Metrics of the constant predictor on ``val``."""
        const = self.constant_predictor(train)
        n = len(val)
        outputs = {k: v.unsqueeze(0).expand(n, *v.shape).clone() for k, v in const.items()}
        targets = {k: val.tensors[k] for k in self.metric_keys if k in val.tensors}
        return self.metrics(outputs, targets)

    def check_outputs(self, outputs: Any, *, label: str = "model") -> dict[str, torch.Tensor]:
        """Validate a model's output dict against the task's output names: a WorkbenchError starting with
        ``label`` (who returned them) if it is not a dict or lacks one."""
        if not isinstance(outputs, dict):
            raise WorkbenchError(f"{label}: task {self.name!r} expects a dict of outputs {list(self.output_names)}, "
                                 f"the model returned {type(outputs).__name__}")
        missing = [k for k in self.output_names if k not in outputs]
        if missing:
            raise WorkbenchError(f"{label}: outputs lack {missing} that task {self.name!r} needs; got {sorted(outputs)}")
        return outputs


def require(data: dict[str, np.ndarray], keys: Sequence[str], task: str) -> None:
    """Raise a DataError naming the missing keys and the task when a view dict lacks something."""
    missing = [k for k in keys if k not in data]
    if missing:
        raise DataError(f"task {task!r} needs {missing} in the data, got {sorted(data)}")


def finite_labels(name: str, arr: np.ndarray) -> torch.Tensor:
    """Labels as float32 tensors; NaN/inf is a DataError naming the first bad row."""
    arr = np.asarray(arr, dtype=np.float32)
    bad = ~np.isfinite(arr.reshape(len(arr), int(np.prod(arr.shape[1:])))).all(axis=1)
    if bad.any():
        raise DataError(f"label {name!r} is not finite at row {int(np.argmax(bad))} ({int(bad.sum())} bad rows)")
    return torch.from_numpy(np.ascontiguousarray(arr))


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A CSV file with ``header`` and ``rows`` (the caller writes to a temporary path, then renames)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(header))
        w.writerows(rows)


def gaze_pitchyaw_degrees(pitchyaw_rad: np.ndarray | torch.Tensor) -> tuple[np.ndarray, tuple[str, ...]]:
    """(N, 2) gaze pitch/yaw in radians -> (N, 2) float32 degrees and their column names."""
    g = np.asarray(pitchyaw_rad, dtype=np.float64).reshape(-1, 2)
    return np.rad2deg(g).astype(np.float32), ("pitch_deg", "yaw_deg")
