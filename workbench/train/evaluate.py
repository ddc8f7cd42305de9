"""Evaluate a run's checkpoint, and write predictions in the write-ups' formats."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import WorkbenchError
from workbench.tasks import Task, TaskData
from workbench.train.data import load_data, read_for_task, synth_subjects
from workbench.train.engine import _batches, evaluate, load_run_model
from workbench.train.recipes import Recipe
from workbench.utils.io import atomic_path


def _data_for(task: Task, config: dict[str, Any], data: str, fmt: str | None, n: int | None = None) -> tuple[TaskData, str]:
    recipe = Recipe.from_dict(config["recipe"])
    seed = int(config["seed"])
    if data == "val":
        _, val, _ = load_data(task, recipe, data=config["data"]["source"], fmt=config["data"]["format"], seed=seed)
        return val, "validation split"
    if data == "synth":
        from workbench.data.synth import render

        _, val_ids = synth_subjects(recipe)
        count = n or recipe.n_val
        # Fresh samples (another seed) of the held-out subjects.
        return task.prepare(render(task.view, count, seed=seed + 2, subjects=val_ids, size=recipe.size)), "SynthGaze (held-out subjects)"
    path = Path(data)
    raw, _, _ = read_for_task(task, path, fmt, recipe.size)
    prepared = task.prepare(raw)
    if "name" in raw:
        prepared.meta["name"] = list(raw["name"])
    return prepared, str(path)


def evaluate_run(run: str | Path, *, data: str = "val", fmt: str | None = None, which: str = "best") -> dict[str, Any]:
    """Metrics of a run's checkpoint on ``data`` ('val', 'synth' or a path)."""
    model, config, task = load_run_model(run, which)
    ds, desc = _data_for(task, config, data, fmt)
    return {"run": str(run), "teacher": config["teacher"], "checkpoint": which, "data": desc, "samples": len(ds),
            "metrics": evaluate(model, task, ds)}


@torch.no_grad()
def _predict(model, task: Task, ds: TaskData, batch_size: int = 128) -> dict[str, torch.Tensor]:
    outs: dict[str, list[torch.Tensor]] = {}
    for idx in _batches(len(ds), batch_size, torch.arange(len(ds))):
        o = model(*task.inputs(ds.batch(idx)))
        for k, v in o.items():
            outs.setdefault(k, []).append(v.float())
    return {k: torch.cat(v) for k, v in outs.items()}


def _names(ds: TaskData) -> list[str]:
    if "name" in ds.meta:
        return [str(x) for x in ds.meta["name"]]
    subj = np.asarray(ds.meta.get("subject", np.full(len(ds), -1)))
    return [f"s{int(s):03d}_{i:06d}" for i, s in enumerate(subj)]


def predict_run(run: str | Path, *, data: str, fmt: str | None, out: Path, which: str = "best", n: int = 256) -> tuple[Path, int]:
    """Write predictions: MC4's three-line file (name, longitude, latitude of the gaze), a Looking-At-Me
    CSV (uid, track, score, label) or, for the other tasks, a CSV of the named outputs."""
    from workbench.data.geometry import denormalize_angle01

    model, config, task = load_run_model(run, which)
    ds, _ = _data_for(task, config, data, fmt, n=n)
    if len(ds) == 0:
        raise WorkbenchError("no samples to predict")
    outputs = _predict(model, task, ds)
    names = _names(ds)
    out = Path(out)
    with atomic_path(out) as tmp:
        if task.name == "face_eye_lola":
            from workbench.data.formats.mc4 import write_mc4_predictions

            write_mc4_predictions(tmp, names, denormalize_angle01(outputs["gaze"]).numpy())
        elif task.name == "look_at_me":
            score = torch.sigmoid(outputs["logit"].flatten()).numpy()
            subj = np.asarray(ds.meta.get("subject", np.full(len(ds), -1)))
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["uid", "track", "score", "label"])
                for i, (s, p) in enumerate(zip(subj, score)):
                    w.writerow([f"s{int(s):03d}", i, f"{p:.6f}", int(p > 0.5)])
        else:
            if task.name == "plane_pog":
                cols = {"pog_x_mm": None, "pog_y_mm": None}
                pog = task.decode(outputs).numpy()
                values = pog
            else:
                key = task.output_names[0]
                values = outputs[key].reshape(len(ds), -1).numpy()
                cols = {f"{key}_{j}": None for j in range(values.shape[1])}
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["name", *cols])
                for name, row in zip(names, values):
                    w.writerow([name, *(f"{v:.6f}" for v in row)])
    return out, len(ds)
