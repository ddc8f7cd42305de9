"""`workbench analyze saliency RUN --images DIR|FILE|VIDEO`: attribution maps of a run's model on the
faces of ordinary photos, drawn back on the original photographs.

Each frame goes through :class:`workbench.faces.images.FacePipeline` (detect, normalize to the training
crops, or letterbox a whole frame); the attributions are computed on exactly what the model sees (the same
:func:`workbench.analyze.saliency.compute_attributions` as on a data set), the detected eye boxes are
mapped into the model's input to give the eye-mass and pointing-game figures, and each map is warped
back through the inverse of the normalization onto the photograph.

Output folder::

    summary.json        method, targets, frames / faces found / not found, notes, per target and input:
                        eye-mass share, area share, ratio, pointing game (frames with both eyes detected),
                        and per frame: face box, eye boxes, its own share and pointing hit
    attributions.npz    ``<input>__<target>`` maps in the model's input pixels, ``M`` (N, 2, 3) original ->
                        input affines, ``boxes__<input>`` eye boxes in input pixels (NaN: eyes not detected)
    <frame>.png         the original photograph, one panel per target: the map over the face region, the
                        face box (cyan) and the detected eye boxes (magenta), the figures in the caption
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from workbench.analyze._regions import box_masks, eye_mass, pointing
from workbench.analyze.attribution import Settings, canonical_method
from workbench.analyze.saliency import compute_attributions
from workbench.analyze.samples import Samples
from workbench.analyze.subject import load_subject, parse_target
from workbench.errors import WorkbenchError
from workbench.progress import ProgressArg
from workbench.utils.io import check_out, write_folder
from workbench.utils.jsonio import json_ready
from workbench.faces.draw import mark_faces
from workbench.faces.images import FacePipeline, Seen, frames
from workbench.faces.normalize import warp_back
from workbench.tasks import TaskData
from workbench.visualize import draw as D


def _image_key(task) -> str:
    return task.face_crop.key if task.face_crop is not None else task.full_frame


def _unpad(heat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map over the model's input (a task may pad it, centred, as plane_pog pads to a stride of 32) ->
    the (h, w) = ``shape`` image that was fed; a track's frames (all the same still crop) are averaged."""
    if heat.ndim == 3:
        heat = heat.mean(0)
    h, w = shape
    top, left = (heat.shape[0] - h) // 2, (heat.shape[1] - w) // 2
    return heat[top:top + h, left:left + w]


def overlay(seen: Seen, heat: np.ndarray, caption: list[Any]) -> Image.Image:
    """The original frame with ``heat`` (in the fed image's pixels) warped back and blended over the face
    region, the face marks drawn on top and ``caption`` below."""
    import matplotlib

    rgb = seen.frame.rgb.astype(np.float32) / 255.0
    back = warp_back(heat, seen.M, rgb.shape[:2])
    inside = warp_back(np.ones_like(heat), seen.M, rgb.shape[:2]) > 0.5
    top = np.percentile(heat, 99.5)
    v = np.clip(back / top, 0, 1) if top > 0 else np.zeros_like(back)
    colour = matplotlib.colormaps["jet"](v)[..., :3]
    alpha = (0.15 + 0.7 * v) * inside  # faint where the attribution is low; the photo stays visible
    out = rgb * (1 - alpha[..., None]) + colour * alpha[..., None]
    img = Image.fromarray((out * 255).round().astype(np.uint8))
    mark_faces(img, seen)
    return D.stack([D.Panel(img), D.Panel(D.caption(img.width, caption, rows=len(caption) + 1))],
                   horizontal=False, gap=2).image


def _file_name(name: str, k: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem if "#" not in name else name.replace("#", "_"))
    return f"{k:05d}_{stem}.png"


def saliency_images(run: str | Path, images: str | Path, *, method: str = "ig", target: int | str | None = None,
                    out: str | Path | None = None, batch_size: int = 8, steps: int = 32, baseline: str = "zero",
                    layer: str | None = None, detector: str | None = None, limit: int | None = None,
                    force: bool = False, progress: ProgressArg = False) -> dict[str, Any]:
    """Saliency of ``run``'s model on the faces in ``images`` (a photo, a folder of photos or a video),
    drawn back on the originals; returns the summary written to ``out`` (see the module docstring)."""
    check_out(out, force)
    canonical_method(method)
    subject = load_subject(str(run))
    task = subject.task
    if task is None or subject.run_config is None:
        raise WorkbenchError(f"{run}: --images needs a run folder (its task and training data fix the face crops)")
    pipe = FacePipeline(task, subject.run_config, detector=detector)
    key = _image_key(task)
    seen_all: list[Seen] = []
    kept: list[Seen] = []
    for frame in frames(images, limit):
        seen = pipe.see(frame)
        seen_all.append(seen)
        if seen.batch is not None:
            kept.append(seen)
    if not kept:
        raise WorkbenchError(f"{images}: no face found in {len(seen_all)} frame(s); nothing to explain")
    tensors = {k: torch.cat([s.batch[k] for s in kept]) for k in kept[0].batch}
    names = subject.input_names
    boxes: dict[str, np.ndarray] = {}
    for name in names:
        if any(name in s.boxes for s in kept):
            ref = next(s.boxes[name] for s in kept if name in s.boxes)
            boxes[name] = np.stack([s.boxes.get(name, np.full_like(ref, np.nan)) for s in kept]).astype(np.float32)
    samples = Samples(len(kept), TaskData(tensors), task, boxes=boxes, description=str(images))
    targets = parse_target(target, subject.explain_names)
    settings = Settings(steps=steps, internal_batch_size=8 * batch_size, baseline=baseline)
    attrs = compute_attributions(subject, samples, targets, method, settings=settings, batch_size=batch_size,
                                 layer=layer, progress=progress)
    t0 = attrs.targets[0]
    for name in boxes:  # boxes are in the fed image's pixels; a task that pads its input (centred) shifts them
        if name in attrs.maps[t0] and name in tensors:
            (mh, mw), (fh, fw) = attrs.heat(t0, name).shape[-2:], tensors[name].shape[-2:]
            boxes[name] = boxes[name] + np.array([(mw - fw) // 2, (mh - fh) // 2] * 2, dtype=np.float32)
    eyes_ok = np.array([s.face is not None and s.face.eyes_detected for s in kept])
    results: dict[str, dict[str, Any]] = {}
    per_frame: list[dict[str, Any]] = [{"name": s.frame.name, "face_box": s.face.box, "eyes_detected": s.face.eyes_detected,
                                        "eye_boxes": s.face.eye_boxes if s.face.eyes_detected else None, "results": {}}
                                       for s in kept]
    for t in attrs.targets:
        results[t] = {}
        for name in attrs.maps[t]:
            m = attrs.heat(t, name)
            row: dict[str, Any] = {"mean_abs_attribution": float(np.abs(attrs.maps[t][name]).reshape(len(m), -1).sum(1).mean())}
            if name in boxes and eyes_ok.any():
                masks = box_masks(boxes[name][eyes_ok], *m.shape[-2:])
                row.update({**eye_mass(m[eyes_ok], masks), "pointing": pointing(m[eyes_ok], masks),
                            "frames_with_eyes": int(eyes_ok.sum())})
                for j in np.flatnonzero(eyes_ok):
                    mj = box_masks(boxes[name][j:j + 1], *m.shape[-2:])
                    per_frame[j]["results"].setdefault(t, {})[name] = {
                        "share": eye_mass(m[j:j + 1], mj)["share"], "pointing": pointing(m[j:j + 1], mj)}
            else:
                row["eye_mass"] = "n/a (no eyes detected)"
            results[t][name] = row
    missing = [s.frame.name for s in seen_all if s.face is None]
    summary: dict[str, Any] = {
        "model": subject.name, "task": task.name, "method": attrs.method, "targets": attrs.targets,
        "images": str(images), "frames": len(seen_all), "faces_found": len(seen_all) - len(missing),
        "faces_not_found": len(missing), "frames_without_face": missing[:20], "explained": len(kept),
        "eyes_detected": int(eyes_ok.sum()), "notes": pipe.notes, "attributed_inputs": list(next(iter(attrs.maps.values()))),
        "skipped_inputs": attrs.skipped, "results": results, "per_frame": per_frame,
        "settings": {"batch_size": batch_size, "steps": steps, "baseline": baseline},
    }
    if task.full_frame is None and missing:
        summary["notes"] = [*pipe.notes, f"{len(missing)} frame(s) without a face were not explained (a face model "
                                         "needs a face): see frames_without_face"]
    summary = json_ready(summary)
    if out is not None:
        def write(folder: Path) -> None:
            arrays = {f"{name}__{t}": a for t, d in attrs.maps.items() for name, a in d.items()}
            arrays.update({f"boxes__{k}": v for k, v in boxes.items()})
            arrays["M"] = np.stack([s.M for s in kept])
            np.savez_compressed(folder / "attributions.npz", **arrays)
            for j, s in enumerate(kept):
                fed = s.batch[key].shape[-2:]
                panels = []
                for t in attrs.targets:
                    if key not in attrs.maps[t]:
                        continue
                    heat = _unpad(attrs.heat(t, key)[j], (int(fed[0]), int(fed[1])))
                    r = per_frame[j]["results"].get(t, {}).get(key)
                    fig = (f"eye-mass {r['share']:.2f} (area {float(box_masks(boxes[key][j:j + 1], *attrs.heat(t, key).shape[-2:]).mean()):.2f}), "
                           f"pointing {'hit' if r['pointing'] else 'miss'}") if r else "eye-mass n/a (eyes not detected)"
                    panels.append(D.Panel(overlay(s, heat, [f"{subject.name}: {attrs.method} on {key}, target {t}",
                                                            f"{s.frame.name}: {fig}"])))
                if panels:
                    D.stack(panels, horizontal=True, gap=8).image.save(folder / _file_name(s.frame.name, j))
            (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

        summary["files"] = write_folder(out, write, force=force)
    return summary
