"""`workbench analyze saliency`: attribution maps of a model's prediction, per input and per target.

Output folder::

    summary.json            method, targets, inputs (attributed / skipped and why), per target and input:
                            mean |attribution| per sample, eye-mass and pointing game where eye boxes exist
    attributions.npz        ``<input>__<target>``: raw attributions (N, *input shape; GradCam: 1 channel),
                            ``boxes__<input>`` eye boxes, ``subject``
    <input>.png             overlay grid: one row per sample, the image then one overlay per target
                            (tracks: one row per sample and target, one column per frame)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.analyze._regions import box_masks, eye_mass, pointing
from workbench.analyze.attribution import (
    Settings,
    attribute,
    canonical_method,
    gradcam_layers,
    heat,
    split_inputs,
)
from workbench.analyze.samples import Samples, load_samples
from workbench.analyze.subject import Subject, load_subject, parse_target
from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg, as_progress
from workbench.utils.io import check_out, write_folder
from workbench.utils.jsonio import json_ready


@dataclass
class Attributions:
    """Attributions over a sample set: ``maps[target][input_name]`` (N, *shape) float32 arrays."""

    method: str
    targets: list[str]
    maps: dict[str, dict[str, np.ndarray]]
    skipped: dict[str, str] = field(default_factory=dict)
    layers: dict[str, str] = field(default_factory=dict)

    def heat(self, target: str, name: str) -> np.ndarray:
        """(N, [T,] H, W) |attribution| summed over channels."""
        return heat(torch.from_numpy(self.maps[target][name])).numpy()


def _skip_reason(subject: Subject, name: str, x: torch.Tensor) -> str:
    why = f"not an image (per-sample shape {tuple(x.shape[1:])}): held fixed, not attributed"
    note = getattr(subject.task, "input_notes", {}).get(name) if subject.task is not None else None
    return f"{why}; {note}" if note else why


def compute_attributions(subject: Subject, samples: Samples, targets: Sequence[int], method: str, *,
                         settings: Settings | None = None, batch_size: int = 8, layer: str | None = None,
                         progress: ProgressArg = False) -> Attributions:
    """Attribute every target column for all samples, ``batch_size`` samples at a time."""
    if batch_size < 1:
        raise WorkbenchError(f"expected --batch-size >= 1, got {batch_size}")
    method = canonical_method(method)
    settings = settings or Settings()
    names = subject.input_names
    first = samples.inputs(slice(0, min(batch_size, len(samples))))
    if len(first) != len(names):
        raise WorkbenchError(f"model {subject.name!r} takes {len(names)} inputs {list(names)}, the data gives {len(first)}")
    attributed = split_inputs(first)[0]
    if not attributed:
        raise WorkbenchError(f"model {subject.name!r} has no floating-point input to attribute")
    layers = None
    if method == "gradcam":
        layers = gradcam_layers(subject, first, attributed, layer)
        attributed = [i for i in attributed if i in layers]
    elif layer is not None:
        raise WorkbenchError(f"--layer applies to gradcam only, not to {method!r}")
    col_names = [subject.explain_names[t] for t in targets]
    parts: dict[str, dict[str, list[np.ndarray]]] = {c: {names[i]: [] for i in attributed} for c in col_names}
    slices = list(samples.slices(batch_size))
    with as_progress(progress)(f"{method} on {len(samples)} samples", len(slices) * len(targets)) as advance:
        for sl in slices:
            inputs = samples.inputs(sl)
            for t, c in zip(targets, col_names):
                got = attribute(subject, inputs, t, method, settings=settings, layers=layers)
                for i, a in got.items():
                    parts[c][names[i]].append(a.float().numpy())
                advance(1)
    maps = {c: {k: np.concatenate(v) for k, v in d.items()} for c, d in parts.items()}
    skipped = {names[i]: _skip_reason(subject, names[i], first[i]) for i in range(len(names)) if i not in attributed}
    if method == "gradcam":
        for i in set(split_inputs(first)[0]) - set(attributed):
            skipped[names[i]] = f"not on the path of GradCam layer {layer!r}"
    used = {names[i]: layers[i][0] for i in attributed} if layers else {}
    return Attributions(method, col_names, maps, skipped, used)


def region_scores(attrs: Attributions, samples: Samples) -> dict[str, dict[str, dict[str, float]]]:
    """Per target and attributed input with eye boxes: eye-mass share, area share, ratio, pointing game."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for target in attrs.targets:
        for name in attrs.maps[target]:
            if name not in samples.boxes:
                continue
            m = attrs.heat(target, name)
            masks = box_masks(samples.boxes[name], *m.shape[-2:])
            out.setdefault(target, {})[name] = {**eye_mass(m, masks), "pointing": pointing(m, masks)}
    return out


def write_overlays(folder: Path, attrs: Attributions, samples: Samples, subject: Subject, rows: int = 8) -> None:
    from workbench.analyze._plots import overlay_grid, track_grid

    names = subject.input_names
    shown = samples.inputs(slice(0, min(rows, len(samples))))
    for name in next(iter(attrs.maps.values()), {}):
        x = shown[names.index(name)].numpy()
        maps = {t: attrs.heat(t, name)[: len(x)] for t in attrs.targets}
        boxes = samples.boxes.get(name)
        boxes = None if boxes is None else boxes[: len(x)]
        title = f"{subject.name}: {attrs.method} on {name}"
        if x.ndim == 5:
            track_grid(folder / f"{name}.png", x, maps, boxes, title, rows=min(rows, 4))
        else:
            overlay_grid(folder / f"{name}.png", x, maps, boxes, title, rows=rows)


def saliency(run_or_model: Any, *, method: str = "ig", n: int = 16, out: str | Path | None = None,
             target: int | str | None = None, batch_size: int = 8, steps: int = 32, layer: str | None = None,
             baseline: str = "zero", data: str | None = None, fmt: str | None = None, task: str | None = None,
             input_shapes: dict[str, Sequence[int]] | None = None, force: bool = False,
             progress: ProgressArg = False) -> dict[str, Any]:
    """Attribution maps of ``run_or_model`` (a run folder, an nn.Module or ``package.module:factory``).

    ``target``: a column of the task's ``explain_target`` (index or name; None: every column).
    ``batch_size`` samples are attributed at a time (IG's internal batch is ``8 * batch_size`` rows).
    With ``out``, writes the folder described in the module docstring. Returns the summary dict.
    """
    t0 = time.time()
    check_out(out, force)
    canonical_method(method)
    subject = load_subject(run_or_model, task=task, input_shapes=input_shapes)
    targets = parse_target(target, subject.explain_names)
    samples = load_samples(subject, n=n, data=data, fmt=fmt, purpose="saliency", progress=progress)
    settings = Settings(steps=steps, internal_batch_size=8 * batch_size, baseline=baseline)
    attrs = compute_attributions(subject, samples, targets, method, settings=settings, batch_size=batch_size,
                                 layer=layer, progress=progress)
    first = samples.inputs(slice(0, 1))
    summary: dict[str, Any] = {
        "model": subject.name, "task": subject.task.name if subject.task else None, "method": attrs.method,
        "targets": attrs.targets, "n": len(samples), "data": samples.source,
        "eye_boxes_missing": samples.boxes_missing,
        "inputs": {k: list(x.shape[1:]) for k, x in zip(subject.input_names, first)},
        "attributed_inputs": list(next(iter(attrs.maps.values()))), "skipped_inputs": attrs.skipped,
        "settings": {"batch_size": batch_size, "steps": steps, "baseline": baseline,
                     "internal_batch_size": settings.internal_batch_size},
        "results": {}, "seconds": None,
    }
    if attrs.layers:
        summary["gradcam_layers"] = attrs.layers
    scores = region_scores(attrs, samples)
    for t in attrs.targets:
        summary["results"][t] = {}
        for name, a in attrs.maps[t].items():
            row = {"mean_abs_attribution": float(np.abs(a).reshape(len(a), -1).sum(1).mean())}
            row.update(scores.get(t, {}).get(name, {}))
            if name in samples.boxes_missing:  # figures that need eye boxes: n/a with the reason, never 0
                row["eye_mass"] = f"n/a: {samples.boxes_missing[name]}"
            summary["results"][t][name] = row
    summary["seconds"] = round(time.time() - t0, 2)
    summary = json_ready(summary)
    if out is not None:
        def write(folder: Path) -> None:
            arrays = {f"{name}__{t}": a for t, d in attrs.maps.items() for name, a in d.items()}
            arrays.update({f"boxes__{k}": v for k, v in samples.boxes.items()})
            if samples.subjects is not None:
                arrays["subject"] = samples.subjects
            np.savez_compressed(folder / "attributions.npz", **arrays)
            write_overlays(folder, attrs, samples, subject)
            (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

        summary["files"] = write_folder(out, write, force=force)
    return summary
