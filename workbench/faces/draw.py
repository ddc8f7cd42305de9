"""Drawing detections and predictions back on the original photo or video frame.

Marks use exact colours (no anti-aliasing), as everywhere in `workbench.visualize`, so tests and
scripts find them by pixel value: the face box ``FACE_BOX`` (cyan), detected eye boxes ``EYE_BOX``
(magenta), the normalized crop's outline in the original image ``D.DIM``, predictions ``D.PRED``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from workbench.errors import WorkbenchError
from workbench.faces.detect import EYE_BOX, FACE_BOX
from workbench.faces.images import FacePipeline, Seen
from workbench.faces.normalize import invert
from workbench.tasks import Task
from workbench.visualize import draw as D



def mark_faces(img: Image.Image, seen: Seen, *, quad: bool = True) -> None:
    """Draw the largest face's box, its eye boxes (detected ones only) and the crop outline on ``img``
    (the original frame, same pixels as ``seen.frame``)."""
    f = seen.face
    if f is None:
        return
    d = ImageDraw.Draw(img)
    if quad and seen.normalized is not None:
        q = seen.normalized.quad()
        d.line([*map(tuple, q), tuple(q[0])], fill=D.DIM, width=1)
    d.rectangle([float(v) for v in f.box], outline=FACE_BOX, width=2)
    if f.eyes_detected:
        for b in f.eye_boxes:
            d.rectangle([float(v) for v in b], outline=EYE_BOX, width=2)


def image_direction(task: Task, outputs: dict[str, torch.Tensor]) -> np.ndarray | None:
    """The predicted gaze as a 2D direction in the model's crop (x right, y down; length <= 1), or None
    when the task's outputs are no gaze direction (``task.face_crop.gaze``)."""
    from workbench.data.geometry import denormalize_angle01
    from workbench.visualize.painters import gaze_dir, lola_dir

    kind = task.face_crop.gaze if task.face_crop is not None else None
    if kind is None or "gaze" not in outputs:
        return None
    g = outputs["gaze"][0].double()
    if kind == "pitchyaw":
        return gaze_dir(g.numpy())
    if kind == "lola01":
        return lola_dir(denormalize_angle01(g).numpy())
    raise WorkbenchError(f"unknown gaze kind {kind!r} in task {task.name!r}'s face_crop")


def draw_prediction(img: Image.Image, seen: Seen, task: Task, outputs: dict[str, torch.Tensor] | None) -> list[Any]:
    """Gaze arrows from the eyes, mapped back from the crop to the original frame; returns caption lines."""
    lines: list[Any] = []
    if outputs is None:
        return [("no face found: no prediction for this frame", D.DIM)]
    values = task.explain_target(outputs)[0].double().tolist()
    lines.append(("prediction: " + "  ".join(f"{n} {v:+.3f}" for n, v in zip(task.explain_names, values)), D.PRED))
    direction = image_direction(task, outputs)
    if direction is not None and seen.M is not None and seen.face is not None:
        A = invert(seen.M)[:, :2]  # crop -> original: rotation back and the inverse scale
        side = seen.normalized.crop.shape[1] if seen.normalized is not None else 112
        d = ImageDraw.Draw(img)
        width = max(2, round(np.linalg.norm(A[:, 0]) * side / 60))
        for eye in seen.face.eyes:
            D.arrow(d, eye, eye + A @ (0.45 * side * direction), D.PRED, width=width, head=4 * width)
    return lines


def annotate(seen: Seen, task: Task, outputs: dict[str, torch.Tensor] | None, title: str = "") -> Image.Image:
    """The original frame with the face marks, the prediction and a caption (one panel)."""
    img = Image.fromarray(seen.frame.rgb).convert("RGB")
    mark_faces(img, seen)
    lines = draw_prediction(img, seen, task, outputs)
    f = seen.face
    if f is None and task.face_crop is None:
        lines.append(("no face found (the model sees the whole frame)", D.DIM))
    elif f is not None and not f.eyes_detected:
        lines.append(("eyes not found: estimated from the face box", D.DIM))
    caption = [*( [title] if title else []), f"{seen.frame.name}: {len(seen.faces)} face(s)", *lines]
    return D.stack([D.Panel(img), D.Panel(D.caption(img.width, caption, rows=len(caption) + 1))],
                   horizontal=False, gap=2).image


def visualize_images(runs: Sequence[str | Path], images: str | Path, out: str | Path, *, which: str = "best",
                     fps: float = 2.0, force: bool = False, detector: str | None = None, limit: int | None = None,
                     progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Every frame of ``images`` with each run's prediction drawn back on it (runs side by side), written as
    PNG frames or an MP4 (``out``). Returns the counts of :func:`run_frames` for the first run and the files."""
    from workbench.faces.images import frames
    from workbench.train.engine import load_run_model
    from workbench.visualize.video import FrameWriter

    if not runs:
        raise WorkbenchError("expected at least one run folder")
    loaded = [load_run_model(r, which) for r in runs]
    pipes = [FacePipeline(task, config, detector=detector) for _, config, task in loaded]
    counts = {"frames": 0, "faces_found": 0, "faces_not_found": 0, "frames_without_face": []}
    with FrameWriter(out, fps=fps, force=force) as writer:
        for frame in frames(images, limit):
            panels, seen_by = [], []
            for run, (model, _, task), pipe in zip(runs, loaded, pipes):
                seen = pipe.see(frame)
                seen_by.append(seen)
                panels.append(D.Panel(annotate(seen, task, pipe.predict(model.eval(), seen), title=Path(run).name)))
            found = seen_by[0].face is not None  # every run uses the same detector
            counts["frames"] += 1
            counts["faces_found" if found else "faces_not_found"] += 1
            if not found and len(counts["frames_without_face"]) < 20:
                counts["frames_without_face"].append(frame.name)
            writer.write(D.stack(panels, horizontal=True, gap=8).image)
            if progress is not None:
                progress(1)
    return {**counts, "notes": pipes[0].notes, "files": [str(p) for p in writer.paths()]}
