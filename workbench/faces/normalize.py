"""Normalization of detected faces, in the spirit of MPIIFaceGaze's data normalization.

MPIIFaceGaze normalizes a face by a virtual camera that looks at the face centre with the head's x axis
level and sits at a fixed distance, so every crop shows the face at one scale with level eyes. From one
photo (no 3D head pose) the same effect in the image plane is a similarity transform: rotate so the two
eye centres are level, scale so their distance equals the inter-ocular distance of the model's training
crops, and translate them to where those crops have their eyes. The training-crop geometry comes from
the data the run was trained on (:func:`crop_geometry`): SynthGaze's renderer for a SynthGaze run, or a
data set's own eye boxes. The 2x3 matrix is kept, so predictions and saliency maps are drawn back on the
original image (:func:`warp_back`, :func:`to_original`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.faces.detect import Face, box_centres


@dataclass(frozen=True)
class CropGeometry:
    """Where a model's training crops have the eyes: ``eyes`` (2, 2) [image-left, image-right] centres as
    fractions of the crop side, and ``source`` (what they were measured on)."""

    eyes: np.ndarray
    source: str

    @property
    def iod(self) -> float:
        """Inter-ocular distance as a fraction of the crop side."""
        return float(np.linalg.norm(self.eyes[1] - self.eyes[0]))


def geometry_from_eye_boxes(eye_boxes: np.ndarray, side: int, source: str) -> CropGeometry:
    """Mean eye-box centres of (N, [T,] 2, 4) boxes in crops of ``side`` pixels -> a CropGeometry."""
    b = np.asarray(eye_boxes, dtype=np.float64).reshape(-1, 2, 4)
    b = b[np.isfinite(b).all((1, 2))]
    if not len(b):
        raise WorkbenchError(f"{source}: no finite eye boxes to measure the face-crop geometry on")
    eyes = box_centres(b).mean(0) / float(side)
    # Normalized crops have the head's roll removed, so the eyes are level in them; what is left in the
    # mean boxes is the lids' asymmetry (each eye's box follows its own gaze), not a tilt to reproduce.
    eyes[:, 1] = eyes[:, 1].mean()
    if not eyes[1, 0] > eyes[0, 0]:
        raise WorkbenchError(f"{source}: eye boxes are not (image-left, image-right) ordered")
    return CropGeometry(eyes, source)


@lru_cache(maxsize=8)
def synth_geometry(view: str, view_key: str) -> CropGeometry:
    """SynthGaze's normalized face geometry for ``view``: mean eye-box centres of 128 renders.

    The crop is a similarity of the scene (the crop camera covers ``face_span`` mm), so fractions of the
    crop side do not depend on the rendered size; 112 px keeps this quick.
    """
    from workbench.data.synth import render

    data = render(view, 128, seed=0, subjects=range(15), size=112)
    side = int(np.asarray(data[view_key]).shape[-1])
    return geometry_from_eye_boxes(data["eye_boxes"], side, f"SynthGaze {view} crops (renderer)")


def crop_geometry(task: Any, config: dict[str, Any]) -> CropGeometry:
    """The eye geometry of the crops a run was trained on (``task.face_crop`` says which input).

    SynthGaze runs: the renderer's. Runs trained on a data set: that data's eye boxes (from its landmarks
    where the reader has them); a data set without eye boxes falls back to SynthGaze's, and says so.
    """
    spec = task.face_crop
    if spec is None:
        raise WorkbenchError(f"task {task.name!r} does not take face crops")
    data = config.get("data", {}) or {}
    source = data.get("source", "synth")
    if source == "synth":
        return synth_geometry(task.view, spec.view_key)
    from workbench.data import formats

    path = Path(source)
    try:
        raw = formats.read(data.get("format") or formats.detect_format(path), path)
    except (WorkbenchError, OSError):
        raw = {}
    if "eye_boxes" in raw and spec.view_key in raw:
        try:
            return geometry_from_eye_boxes(raw["eye_boxes"], int(np.asarray(raw[spec.view_key]).shape[-1]), str(path))
        except WorkbenchError:
            pass  # only NaN boxes: the data has none really
    fallback = synth_geometry(task.view, spec.view_key)
    return CropGeometry(fallback.eyes, f"{fallback.source}; {path} has no eye boxes (or is not readable here)")


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 similarity (rotation, uniform scale, translation) taking points ``src`` (2, 2) to ``dst`` (2, 2)."""
    s, d = np.asarray(src, dtype=np.float64), np.asarray(dst, dtype=np.float64)
    vs, vd = s[1] - s[0], d[1] - d[0]
    n = float(vs @ vs)
    if n < 1e-9:
        raise WorkbenchError("the two eye centres coincide: cannot normalize the face")
    # As complex numbers: z -> a z + t with a = vd / vs.
    a = complex(vd[0], vd[1]) / complex(vs[0], vs[1])
    R = np.array([[a.real, -a.imag], [a.imag, a.real]])
    t = d[0] - R @ s[0]
    return np.concatenate([R, t[:, None]], 1)


def apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (..., 2) through a 2x3 affine."""
    p = np.asarray(pts, dtype=np.float64)
    return p @ M[:, :2].T + M[:, 2]


def invert(M: np.ndarray) -> np.ndarray:
    """The inverse of a 2x3 affine."""
    A = np.linalg.inv(M[:, :2])
    return np.concatenate([A, -(A @ M[:, 2])[:, None]], 1)


def map_boxes(M: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(..., 4) boxes through an affine -> the axis-aligned boxes around their transformed corners."""
    b = np.asarray(boxes, dtype=np.float64)
    corners = np.stack([b[..., [0, 1]], b[..., [2, 1]], b[..., [2, 3]], b[..., [0, 3]]], -2)
    c = apply(M, corners)
    return np.concatenate([c.min(-2), c.max(-2)], -1)


def eye_angle_deg(eyes: np.ndarray) -> float:
    """Angle of the line from the image-left to the image-right eye centre, degrees (0 = level)."""
    v = np.asarray(eyes, dtype=np.float64)[1] - np.asarray(eyes, dtype=np.float64)[0]
    return float(np.degrees(np.arctan2(v[1], v[0])))


@dataclass
class Normalized:
    """A face brought to the model's crop: ``crop`` (S, S, 3) uint8 RGB, ``M`` (2x3) original -> crop pixels,
    ``eye_boxes`` (2, 4) and ``eyes`` (2, 2) in crop pixels, ``face`` the detection it came from."""

    crop: np.ndarray
    M: np.ndarray
    eye_boxes: np.ndarray
    eyes: np.ndarray
    face: Face

    def quad(self) -> np.ndarray:
        """(4, 2) corners of the crop in the original image (top-left, top-right, bottom-right, bottom-left)."""
        s = self.crop.shape[1]
        return apply(invert(self.M), np.array([[0, 0], [s, 0], [s, s], [0, s]], dtype=np.float64))


def normalize(rgb: np.ndarray, face: Face, geometry: CropGeometry, size: int) -> Normalized:
    """Rotate ``face``'s eyes level, scale them to the training crops' inter-ocular distance and crop
    ``size`` x ``size`` pixels around them (black outside the image)."""
    import cv2

    M = similarity(face.eyes, geometry.eyes * size)
    crop = cv2.warpAffine(np.ascontiguousarray(rgb), M, (size, size), flags=cv2.INTER_AREA
                          if M[0, 0] ** 2 + M[0, 1] ** 2 < 1 else cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return Normalized(crop, M, map_boxes(M, face.eye_boxes), apply(M, face.eyes), face)


def cut(rgb: np.ndarray, M: np.ndarray, centre: np.ndarray, width: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``size`` x ``size`` crop of the original image around ``centre`` (crop-``M`` pixels) that is
    ``width`` crop-``M`` pixels wide (an eye crop cut from a normalized face at full resolution).
    Returns (image, the 2x3 original -> this crop)."""
    import cv2

    k = size / float(width)
    inner = np.array([[k, 0, size / 2 - k * centre[0]], [0, k, size / 2 - k * centre[1]]])
    full = inner @ np.vstack([M, [0, 0, 1]])
    return cv2.warpAffine(np.ascontiguousarray(rgb), full, (size, size), flags=cv2.INTER_LINEAR), full


def warp_back(values: np.ndarray, M: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A map in crop pixels (h, w) -> the original image's pixels (H, W) = ``shape`` (zero outside the crop)."""
    import cv2

    return cv2.warpAffine(np.ascontiguousarray(values, dtype=np.float32), M, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)


def to_original(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points (..., 2) in crop pixels -> original image pixels."""
    return apply(invert(M), pts)


def letterbox_affine(width: int, height: int, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine of a letterbox: scale (W, H) to fit ``size`` (w, h), centred (as live's letterbox)."""
    w, h = size
    s = min(w / width, h / height)
    nw, nh = max(1, round(width * s)), max(1, round(height * s))
    return np.array([[nw / width, 0, (w - nw) // 2], [0, nh / height, (h - nh) // 2]], dtype=np.float64)
