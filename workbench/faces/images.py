"""Photos, folders of photos and videos as frames, and a run's model applied to the faces in them.

``--images DIR|FILE|VIDEO``: a folder's images (sorted by name; not recursive), one image, or every frame
of a video. Each frame goes through the detector; a face model (``task.face_crop``) sees the largest face
normalized to its training crops (:mod:`workbench.faces.normalize`); a full-frame model
(``task.full_frame``, EVG) sees the frame letterboxed to its training size, as `workbench live` does, and
the detected face box is reported beside its prediction. Frames without a face are kept, counted and
reported (a face model has no prediction for them), never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.errors import DataError, WorkbenchError
from workbench.faces.detect import Detector, Face, load_detector
from workbench.faces.normalize import CropGeometry, Normalized, crop_geometry, cut, letterbox_affine, map_boxes, normalize
from workbench.tasks import Task

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass
class Frame:
    """One image or video frame: ``name`` (file name, or ``video#frame``), ``index`` in the source, ``rgb`` (H, W, 3)."""

    name: str
    index: int
    rgb: np.ndarray


def frames(path: str | Path, limit: int | None = None) -> Iterator[Frame]:
    """The frames of ``path``: a folder of images, one image, or a video. Bad input is a one-line DataError."""
    from workbench.data.formats._images import read_image

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(f"{path}: no images in this folder (expected {', '.join(IMAGE_SUFFIXES)} files)")
        for k, f in enumerate(files[:limit]):
            yield Frame(f.name, k, np.ascontiguousarray(read_image(f, 3).transpose(1, 2, 0)))
        return
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        yield Frame(path.name, 0, np.ascontiguousarray(read_image(path, 3).transpose(1, 2, 0)))
        return
    if suffix not in VIDEO_SUFFIXES:
        raise DataError(f"{path}: not an image or a video (expected a folder, an image {', '.join(IMAGE_SUFFIXES)} "
                        f"or a video {', '.join(VIDEO_SUFFIXES)}; got a {suffix or 'suffix-less'} file)")
    from workbench.visualize.video import read_frames

    count = 0
    for k, rgb in enumerate(read_frames(str(path), limit)):
        count += 1
        yield Frame(f"{path.name}#{k}", k, rgb)
    if count == 0:
        raise DataError(f"{path}: no frames could be read from this video")


@dataclass
class Seen:
    """What the model saw of one frame: the inputs (a batch of one), the affine original -> input pixels,
    the detected faces, and the eye boxes per input in that input's pixels (None where not detected)."""

    frame: Frame
    faces: list[Face]
    batch: dict[str, torch.Tensor] | None = None
    M: np.ndarray | None = None
    boxes: dict[str, np.ndarray] = field(default_factory=dict)
    normalized: Normalized | None = None

    @property
    def face(self) -> Face | None:
        return self.faces[0] if self.faces else None


def _chw(img: np.ndarray, grey: bool) -> torch.Tensor:
    if grey:
        img = np.round(img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).clip(0, 255)
        img = img.astype(np.uint8)[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


class FacePipeline:
    """Detect, normalize and batch frames for one task's model; the same steps for predict, saliency,
    visualize and live."""

    def __init__(self, task: Task, config: dict[str, Any], *, detector: str | Detector | None = None) -> None:
        self.task = task
        self.detector = load_detector(detector)
        recipe = config.get("recipe", {}) or {}
        self.notes: list[str] = []
        self.geometry: CropGeometry | None = None
        if task.face_crop is not None:
            from workbench.data.synth import DEFAULT_SIZE

            size = recipe.get("size") or DEFAULT_SIZE[task.view]
            self.size: Any = int(size if np.isscalar(size) else size[0])
            self.geometry = crop_geometry(task, config)
            self.notes.append(f"faces normalized to {self.size}x{self.size} crops: eyes level, inter-ocular distance "
                              f"{self.geometry.iod * self.size:.1f} px as in the training crops ({self.geometry.source})")
            if task.face_crop.frames:
                self.notes.append(f"each photo or frame is a still {task.face_crop.frames}-frame track (its crop "
                                  "repeated); `workbench live` builds tracks from consecutive frames")
        elif task.full_frame is not None:
            size = recipe.get("size") or (480, 270)
            self.size = (int(size[0]), int(size[1]))
            self.notes.append(f"frames letterboxed to {self.size[0]}x{self.size[1]} (the training size); the detected "
                              "face box is reported beside the prediction")
        else:
            raise WorkbenchError(f"task {task.name!r} takes neither a face crop nor a camera frame, so it cannot run "
                                 "on photos or videos")

    def see(self, frame: Frame) -> Seen:
        """Detect the faces of ``frame`` and build the model's inputs (``batch`` None: a face model and no face)."""
        faces = self.detector.detect(frame.rgb)
        seen = Seen(frame, faces)
        spec = self.task.face_crop
        if spec is None:
            self._full_frame(seen)
        elif faces:
            self._face_crop(seen, faces[0])
        return seen

    def normalize(self, rgb: np.ndarray, face: Face) -> Normalized:
        """``face`` of ``rgb`` normalized to this model's crop (a face-crop task)."""
        return normalize(rgb, face, self.geometry, self.size)

    def _full_frame(self, seen: Seen) -> None:
        h, w = seen.frame.rgb.shape[:2]
        M = letterbox_affine(w, h, self.size)
        import cv2

        img = cv2.warpAffine(seen.frame.rgb, M, self.size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
        seen.batch = {self.task.full_frame: _chw(img, False).unsqueeze(0)}
        seen.M = M
        if seen.face is not None and seen.face.eyes_detected:
            seen.boxes[self.task.full_frame] = map_boxes(M, seen.face.eye_boxes)

    def _face_crop(self, seen: Seen, face: Face) -> None:
        spec = self.task.face_crop
        norm = self.normalize(seen.frame.rgb, face)
        img = _chw(norm.crop, spec.grey)
        batch = {spec.key: (img.unsqueeze(0).repeat(spec.frames, 1, 1, 1) if spec.frames else img).unsqueeze(0)}
        boxes = {spec.key: norm.eye_boxes if not spec.frames else np.repeat(norm.eye_boxes[None], spec.frames, 0)}
        if spec.eyes:
            width = spec.eye_span * self.size
            for key, centre, box in zip(spec.eyes, norm.eyes, face.eye_boxes):
                crop, full = cut(seen.frame.rgb, norm.M, centre, width, self.size)
                batch[key] = _chw(crop, spec.grey).unsqueeze(0)
                boxes[key] = map_boxes(full, box[None])
        if spec.eye_input is not None and spec.eye_input[1] in boxes:
            boxes[spec.eye_input[0]] = boxes[spec.eye_input[1]]  # eye boxes per model input, for eye-mass
        for key, shape in spec.zeros:
            batch[key] = torch.zeros(1, *shape)
        seen.batch, seen.M, seen.normalized = batch, norm.M, norm
        if face.eyes_detected:
            seen.boxes = {k: v for k, v in boxes.items()}

    @torch.no_grad()
    def predict(self, model: torch.nn.Module, seen: Seen) -> dict[str, torch.Tensor] | None:
        """The model's outputs on one frame (batch of one), or None when there is nothing to run on."""
        if seen.batch is None:
            return None
        return self.task.check_outputs(model(*self.task.inputs(seen.batch)))


def fill_face_boxes(images: np.ndarray, boxes: np.ndarray | None, *, detector: str | Detector | None = None,
                    ) -> np.ndarray:
    """(N, 4) face boxes for (N, 3, H, W) uint8 frames: the annotated ``boxes`` where they are finite, the
    detector's largest face where a frame has none (missing or NaN), NaN where it finds no face either."""
    n = len(images)
    out = np.full((n, 4), np.nan, dtype=np.float32) if boxes is None else np.array(boxes, dtype=np.float32).reshape(n, 4)
    todo = np.flatnonzero(~np.isfinite(out).all(1))
    if len(todo):
        det = load_detector(detector)
        for i in todo:
            faces = det.detect(np.ascontiguousarray(np.asarray(images[i]).transpose(1, 2, 0)))
            if faces:
                out[i] = faces[0].box
    return out


def gaze_degrees(kind: str, gaze: torch.Tensor) -> np.ndarray:
    """A face model's ``gaze`` output (2,) of ``task.face_crop.gaze`` kind -> (2,) pitch, yaw in degrees, in
    the normalized camera of the crop (the same convention as SynthGaze's ``gaze_pitchyaw``)."""
    from workbench.data.geometry import denormalize_angle01, lola_to_pitchyaw

    g = gaze.double().reshape(-1)
    if kind == "pitchyaw":
        return np.rad2deg(g.numpy())
    if kind == "lola01":
        return np.rad2deg(np.asarray(lola_to_pitchyaw(denormalize_angle01(g).numpy()), dtype=np.float64))
    raise WorkbenchError(f"unknown gaze kind {kind!r}; expected pitchyaw or lola01")


def face_columns(seen: Seen) -> dict[str, Any]:
    """CSV columns describing the detection of one frame (original image pixels; blank when no face)."""
    f = seen.face
    row: dict[str, Any] = {"faces": len(seen.faces), "face_found": int(f is not None)}
    keys = ["face_x0", "face_y0", "face_x1", "face_y1", "eyes_detected", "left_eye_x", "left_eye_y",
            "right_eye_x", "right_eye_y"]
    if f is None:
        row.update({k: "" for k in keys})
        return row
    values = [*f.box, int(f.eyes_detected), *f.eyes.reshape(-1)]
    row.update({k: (round(float(v), 2) if k != "eyes_detected" else v) for k, v in zip(keys, values)})
    return row


def run_frames(run: str | Path, images: str | Path, *, which: str = "best", detector: str | Detector | None = None,
               limit: int | None = None, on_frame: Callable[[Seen, dict[str, torch.Tensor] | None], None] | None = None,
               loaded: tuple[torch.nn.Module, dict[str, Any], Task] | None = None) -> dict[str, Any]:
    """Apply ``run``'s model (or ``loaded`` = (model, config, task)) to every frame of ``images``;
    ``on_frame(seen, outputs)`` sees each result.

    Returns a summary: frames, faces found / not found (with the names of the first frames without one),
    eyes detected, the pipeline's notes.
    """
    from workbench.train.engine import load_run_model

    model, config, task = loaded or load_run_model(run, which)
    model.eval()
    pipe = FacePipeline(task, config, detector=detector)
    n = found = eyes = 0
    missing: list[str] = []
    for frame in frames(images, limit):
        seen = pipe.see(frame)
        outputs = pipe.predict(model, seen)
        n += 1
        if seen.face is None:
            missing.append(frame.name)
        else:
            found += 1
            eyes += int(seen.face.eyes_detected)
        if on_frame is not None:
            on_frame(seen, outputs)
    return {"run": str(run), "task": task.name, "images": str(images), "frames": n, "faces_found": found,
            "faces_not_found": n - found, "frames_without_face": missing[:20], "eyes_detected": eyes,
            "notes": pipe.notes}


def predict_images(run: str | Path, images: str | Path, out: str | Path, *, which: str = "best",
                   detector: str | Detector | None = None) -> dict[str, Any]:
    """Write a CSV with one row per image or video frame: the detection (original image pixels) and the
    model's ``explain_target`` columns, named by the task's ``explain_names`` (blank for a face model on a
    frame without a face). Returns :func:`run_frames`'s summary plus ``out`` and ``columns``."""
    import csv

    from workbench.train.engine import load_run_model
    from workbench.utils.io import atomic_path

    out = Path(out)
    if out.is_dir():
        raise WorkbenchError(f"{out}: is a folder, expected a CSV file name")
    loaded = load_run_model(run, which)
    task = loaded[2]
    names = list(task.explain_names)
    rows: list[list[Any]] = []
    head: list[str] = []

    kind = task.face_crop.gaze if task.face_crop is not None else None
    if kind is not None:
        names += ["gaze_pitch_deg", "gaze_yaw_deg"]

    def keep(seen: Seen, outputs: dict[str, torch.Tensor] | None) -> None:
        cols = {"name": seen.frame.name, "frame": seen.frame.index, **face_columns(seen)}
        head[:] = list(cols)
        values = [] if outputs is None else task.explain_target(outputs)[0].double().tolist()
        if values and kind is not None:
            values += gaze_degrees(kind, outputs["gaze"][0]).tolist()
        rows.append([*cols.values(), *([f"{v:.6f}" for v in values] if values else [""] * len(names))])

    info = run_frames(run, images, which=which, detector=detector, on_frame=keep, loaded=loaded)
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*head, *names])
        w.writerows(rows)
    info.update({"out": str(out), "columns": names})
    return info


__all__ = ["Frame", "Seen", "FacePipeline", "frames", "run_frames", "predict_images", "face_columns"]
