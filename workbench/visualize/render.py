"""`workbench visualize`: ground truth and prediction of one or more runs, sample by sample, as PNGs or an MP4."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.tasks import Task, TaskData
from workbench.train.engine import load_run_model
from workbench.train.evaluate import _data_for, _predict
from workbench.train.models import count_params
from workbench.visualize import draw as D
from workbench.visualize.painters import Context, Painter, painter_for
from workbench.visualize.video import FrameWriter

MAX_ROW_WIDTH = 1700  # wider than this, runs are stacked top to bottom instead of side by side


@dataclass
class Column:
    """One run's side of the picture: its model's outputs on its data, and its title."""

    run: Path
    ctx: Context
    title: str
    subtitle: str
    desc: str


def head(ds: TaskData, n: int) -> TaskData:
    """The first ``n`` samples, with the per-sample meta arrays cut to match."""
    m = len(ds)
    if n >= m:
        return ds
    idx = torch.arange(n)
    meta = {k: (v[:n] if isinstance(v, (np.ndarray, list)) and len(v) == m else v) for k, v in ds.meta.items()}
    return TaskData({k: v[idx] for k, v in ds.tensors.items()}, meta)


def predict_all(model: torch.nn.Module, task: Task, ds: TaskData, painter: Painter,
                device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The model's outputs on every sample (computed on ``device``), plus the extras the task's painter needs
    (computed on the CPU)."""
    outputs = _predict(model.to(device), task, ds, device=device)
    model.to("cpu")
    for name, fn in painter.extras:
        outputs[name] = fn(model, task, ds)
    return outputs


def _metric_text(task: Task, outputs: dict[str, torch.Tensor], ds: TaskData) -> str:
    targets = {k: ds.tensors[k] for k in task.metric_keys if k in ds.tensors}
    model_outputs = {k: outputs[k] for k in task.output_names}
    try:
        value = task.metrics(model_outputs, targets)[task.primary_metric]
    except (WorkbenchError, ValueError, RuntimeError):
        return ""
    return f"{task.primary_metric} {value:.3g} ({len(ds)} samples)"


def load_columns(runs: Sequence[str | Path], *, data: str, fmt: str | None, n: int, which: str = "best",
                 device: str = "cpu") -> list[Column]:
    """Load each run, its data (shared between runs with the same data recipe) and its predictions."""
    from workbench.modelspec import resolve_device

    dev = resolve_device(device)
    if not runs:
        raise WorkbenchError("expected at least one run folder")
    if n < 1:
        raise WorkbenchError(f"expected --n >= 1, got {n}")
    loaded = [(Path(r), *load_run_model(r, which)) for r in runs]
    tasks = {task.name for *_, task in loaded}
    if len(tasks) > 1:
        got = ", ".join(f"{r} ({task.name})" for r, _, _, task in loaded)
        raise WorkbenchError(f"runs shown side by side must share a task, got {got}")
    painter = painter_for(loaded[0][3])
    cache: dict[str, tuple[TaskData, str]] = {}
    columns = []
    for run, model, config, task in loaded:
        key = json.dumps([config["recipe"], config["seed"], config["data"], config["task"]], sort_keys=True, default=str)
        if key not in cache:
            ds, desc = _data_for(task, config, data, fmt, n=n)
            cache[key] = (head(ds, n), desc)
        ds, desc = cache[key]
        if len(ds) == 0:
            raise WorkbenchError(f"{data}: no samples to show")
        with torch.no_grad():
            outputs = predict_all(model, task, ds, painter, device=dev)
        synthetic = data == "synth" or (data == "val" and config["data"]["source"] == "synth")
        label = config.get("teacher") or config["model"].get("teacher") or "model"
        title = f"{label} \u00b7 {count_params(model) / 1e6:.2f} M params \u00b7 {_metric_text(task, outputs, ds)}"
        subtitle = str(run)
        columns.append(Column(run, Context(task, ds, outputs, synthetic), title, subtitle, desc))
    return columns


def compose(columns: Sequence[Column], i: int, *, total: int | None = None) -> D.Panel:
    """Sample ``i`` of every run, side by side (or stacked when wide), with a header and a legend.
    Anchors are prefixed ``run<k>.``."""
    painter = painter_for(columns[0].ctx.task)
    panels = []
    for k, col in enumerate(columns):
        body = painter.paint(col.ctx, i)
        title = D.text_panel([(col.title, D.TEXT), (col.subtitle, D.DIM)], body.size[0], rows=3)
        panels.append(D.prefixed(D.stack([title, body], horizontal=False, gap=0), f"run{k}."))
    horizontal = sum(p.size[0] for p in panels) + 12 * (len(panels) - 1) <= MAX_ROW_WIDTH
    row = D.stack(panels, horizontal=horizontal, gap=12)
    width = max(row.size[0], 480)
    first = columns[0]
    subj = first.ctx.data.meta.get("subject")
    who = f" \u00b7 subject {int(np.asarray(subj)[i])}" if subj is not None and int(np.asarray(subj)[i]) >= 0 else ""
    header = D.text_panel([(f"sample {i + 1}/{total or len(first.ctx.data)} \u00b7 {first.desc}{who} \u00b7 "
                           f"task {first.ctx.task.name}")], width, rows=1)
    legend = D.text_panel([(painter.legend, D.DIM)], width, rows=3)
    return D.stack([header, row, legend], horizontal=False, gap=4)


def visualize(runs: Sequence[str | Path] | str | Path, out: str | Path, *, data: str = "val", fmt: str | None = None,
              n: int = 8, which: str = "best", fps: float = 2.0, force: bool = False,
              progress: Callable[[int], None] | None = None, device: str = "cpu") -> list[Path]:
    """Draw ground truth and prediction of ``runs`` (one task; several runs side by side) on ``n`` samples.

    ``data``: "synth" (fresh SynthGaze samples of the runs' held-out subjects), "val" (the run's validation
    split) or a data set path (``fmt``: its layout, detected when None). ``out``: a new folder of PNG
    frames, or a ``.mp4`` file (one sample per video frame at ``fps``). Returns the files written.
    """
    if isinstance(runs, (str, Path)):
        runs = [runs]
    writer = FrameWriter(out, fps=fps, force=force)  # refuses a bad or existing output before any work
    columns = load_columns(runs, data=data, fmt=fmt, n=n, which=which, device=device)
    count = min(len(c.ctx.data) for c in columns)
    with writer:
        for i in range(count):
            writer.write(compose(columns, i, total=count).image)
            if progress is not None:
                progress(1)
    return writer.paths()
