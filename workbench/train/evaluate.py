"""Evaluate a run's checkpoint, and write predictions in the write-ups' formats."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.tasks import Task, TaskData
from workbench.train.data import draw, load_split, resolve_data
from workbench.train.engine import _batches, evaluate, load_run_model
from workbench.utils.io import atomic_path


def _data_for(task: Task, config: dict[str, Any], data: str | None, fmt: str | None, n: int | None = None,
              purpose: str = "evaluation",
              unlabelled: bool = False) -> tuple[TaskData, str]:
    """The samples the data spec ``data`` names for a run (see :func:`workbench.train.data.resolve_data`),
    and a one-line description; with ``n``, ``n`` of them drawn across subjects for ``purpose``."""
    spec = resolve_data(data, config, fmt)
    ds, desc = load_split(task, config, spec, limit=n if spec.split == "held-out" else None, unlabelled=unlabelled)
    if n is not None and n < len(ds):
        ds = ds.subset(draw(ds, n, purpose, int(config.get("seed", 0))))
    return ds, desc["label"]


def evaluate_run(run: str | Path, *, data: str = "val", fmt: str | None = None, which: str = "best",
                 device: str = "cpu") -> dict[str, Any]:
    """Metrics of a run's checkpoint on ``data`` ('val', 'synth' or a path), computed on ``device``."""
    from workbench.modelspec import resolve_device

    dev = resolve_device(device)
    model, config, task = load_run_model(run, which)
    spec = resolve_data(data, config, fmt)
    ds, desc = load_split(task, config, spec)
    return {"run": str(run), "teacher": config["teacher"], "checkpoint": which, "data": desc, "samples": len(ds),
            "device": str(dev), "metrics": evaluate(model.to(dev), task, ds, device=dev)}


@torch.no_grad()
def _predict(model, task: Task, ds: TaskData, batch_size: int = 128,
             device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    outs: dict[str, list[torch.Tensor]] = {}
    for idx in _batches(len(ds), batch_size, torch.arange(len(ds)), train=False):
        o = model(*(t.to(device) for t in task.inputs(ds.batch(idx))))
        for k, v in o.items():
            outs.setdefault(k, []).append(v.float().cpu())
    return {k: torch.cat(v) for k, v in outs.items()}


def _names(ds: TaskData) -> list[str]:
    if "name" in ds.meta:
        return [str(x) for x in ds.meta["name"]]
    subj = np.asarray(ds.meta.get("subject", np.full(len(ds), -1)))
    return [f"s{int(s):03d}_{i:06d}" for i, s in enumerate(subj)]


def predict_run(run: str | Path, *, data: str, fmt: str | None, out: Path, which: str = "best", n: int = 256,
                device: str = "cpu") -> dict[str, Any]:
    """Write predictions with the task's own writer (:meth:`Task.write_predictions`): e.g. MC4's three-line
    file, a Looking-At-Me CSV, or a CSV of the named outputs. A data set on disk is predicted whole; a
    SynthGaze source gives ``n`` fresh samples. Returns a summary (``out``, ``samples``, ``data``, ...)."""
    from workbench.modelspec import resolve_device

    dev = resolve_device(device)
    model, config, task = load_run_model(run, which)
    spec = resolve_data(data, config, fmt)
    ds, label = _data_for(task, config, data, fmt, n=n if spec.split == "held-out" else None, unlabelled=True)
    if len(ds) == 0:
        raise WorkbenchError("no samples to predict")
    outputs = _predict(model.to(dev), task, ds, device=dev)
    names = _names(ds)
    out = Path(out)
    with atomic_path(out) as tmp:
        task.write_predictions(tmp, outputs, ds, names)  # each task owns its writer
    return {"run": str(run), "teacher": config.get("teacher"), "task": task.name, "checkpoint": which,
            "data": {**spec.describe(), "label": label}, "samples": len(ds), "device": str(dev), "out": str(out)}
