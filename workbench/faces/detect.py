"""Face and eye detection behind one small interface, with OpenCV's Haar cascades as the default.

A detector is anything with ``detect(rgb) -> list[Face]`` (largest face first); another one plugs in by
import path, ``package.module:Class`` (built with no arguments). The default, :class:`CascadeDetector`,
uses the cascades that ship inside the ``opencv-python-headless`` 4.x wheel (``cv2/data/``), so it works
offline: ``haarcascade_frontalface_default.xml`` for faces and ``haarcascade_eye.xml`` for eyes, searched
in the upper part of each face box. Where the eye cascade does not find both eyes, the eye centres are
estimated from the face box (``eyes_detected`` says which): normalization can still go on, but eye-mass
figures need detected eyes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from workbench.errors import WorkbenchError

# Where OpenCV's frontal-face cascade puts the eyes inside its face box (fractions of the box side),
# measured on skimage's astronaut photo and in line with the cascade's training crops; used only when
# the eye cascade misses.
EYES_IN_BOX = np.array([[0.30, 0.38], [0.70, 0.38]])
EYE_BOX_SIDE = 0.25  # an estimated eye box's side, as a fraction of the face box's width
# Exact colours detections are drawn in (workbench.faces.draw, live), so tests find them by pixel value.
FACE_BOX = (0, 255, 255)
EYE_BOX = (255, 0, 255)


@dataclass
class Face:
    """One detected face, in the pixels of the image it was found in.

    ``box`` (4,) x0, y0, x1, y1; ``eye_boxes`` (2, 4) [image-left eye, image-right eye]; ``eyes`` (2, 2)
    the eye centres (x, y) inside them; ``eyes_detected`` True when both eyes were found by the detector (else they are
    estimated from the face box).
    """

    box: np.ndarray
    eye_boxes: np.ndarray
    eyes: np.ndarray
    eyes_detected: bool

    @property
    def area(self) -> float:
        return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


@runtime_checkable
class Detector(Protocol):
    """The detector interface: one verb."""

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """(H, W, 3) uint8 RGB -> faces found, largest first (an empty list when none)."""
        ...


def estimated_eyes(box: np.ndarray) -> np.ndarray:
    """(4,) face box -> (2, 4) eye boxes where a frontal face's eyes usually are."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    half = EYE_BOX_SIDE * w / 2
    c = np.array([x0, y0]) + EYES_IN_BOX * np.array([w, h])
    return np.concatenate([c - half, c + half], -1)


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """(..., 4) boxes -> (..., 2) centres."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2], -1)


class CascadeDetector:
    """OpenCV Haar cascades (frontal face + eyes), shipped in the opencv-python-headless 4.x wheel.

    ``scale``/``neighbours``: detectMultiScale's scaleFactor/minNeighbors for faces; ``min_face``: the
    smallest face side in pixels.
    """

    def __init__(self, *, scale: float = 1.1, neighbours: int = 5, min_face: int = 24) -> None:
        cv2 = _cv2()
        root = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "")
        self._cv2 = cv2
        self.face = self._load(root / "haarcascade_frontalface_default.xml")
        self.eye = self._load(root / "haarcascade_eye.xml")
        self.scale, self.neighbours, self.min_face = scale, neighbours, min_face

    def _load(self, path: Path):
        clf = self._cv2.CascadeClassifier(str(path)) if path.is_file() else None
        if clf is None or clf.empty():
            raise WorkbenchError(f"{path}: OpenCV's Haar cascade is missing; the opencv-python-headless 4.x wheels "
                                 "ship it in cv2/data/ (5.x wheels do not): pip install 'opencv-python-headless>=4.8,<5'")
        return clf

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """(H, W, 3) uint8 RGB -> faces, largest first (those with both eyes found ahead of the others)."""
        cv2 = self._cv2
        grey = cv2.equalizeHist(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY))
        found = self.face.detectMultiScale(grey, scaleFactor=self.scale, minNeighbors=self.neighbours,
                                           minSize=(self.min_face, self.min_face))
        faces = [self._eyes(grey, np.array([x, y, x + w, y + h], dtype=np.float64)) for x, y, w, h in found]
        # Largest first, but faces with both eyes found before those without: the face cascade's false
        # positives (a fold of cloth, a patch of sky) rarely hold two eyes.
        return sorted(faces, key=lambda f: (not f.eyes_detected, -f.area))

    def _eyes(self, grey: np.ndarray, box: np.ndarray) -> Face:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        w = x1 - x0
        # Eyes sit in the upper part of a frontal face box; searching only there avoids nostrils and mouth.
        roi = grey[y0:y0 + int(0.62 * (y1 - y0)), x0:x1]
        side = max(6, w // 10)
        eyes = self.eye.detectMultiScale(roi, scaleFactor=1.1, minNeighbors=5, minSize=(side, side),
                                         maxSize=(w // 2, w // 2)) if roi.size else ()
        boxes = np.array([[x0 + ex, y0 + ey, x0 + ex + ew, y0 + ey + eh] for ex, ey, ew, eh in eyes], dtype=np.float64)
        pair = _pick_pair(boxes, x0 + w / 2) if len(boxes) >= 2 else None
        if pair is None:
            eb = estimated_eyes(box)
            return Face(box, eb, box_centres(eb), False)
        return Face(box, pair, np.stack([dark_centre(grey, b) for b in pair]), True)


def dark_centre(grey: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(2,) the eye centre inside an eye box: the centroid of the darkest pixels (iris and pupil) of the box's
    central part.

    The eye cascade's boxes come in coarse steps and sit loosely around the eye, so their centres tilt the
    eye line by a few degrees from one detection to the next; the dark centroid does not (on the tilted
    astronaut photo: within 0.3 degrees of the tilt, against up to 2.5 for box centres).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    ax0, ax1 = int(x0 + 0.2 * w), int(np.ceil(x1 - 0.2 * w))
    ay0, ay1 = int(y0 + 0.3 * h), int(np.ceil(y1 - 0.2 * h))
    roi = grey[max(ay0, 0):ay1, max(ax0, 0):ax1].astype(np.float64)
    if roi.size < 4:
        return box_centres(np.asarray(box)[None])[0]
    weight = np.clip(np.percentile(roi, 12) - roi, 0, None) + 1e-9
    ys, xs = np.mgrid[max(ay0, 0):max(ay0, 0) + roi.shape[0], max(ax0, 0):max(ax0, 0) + roi.shape[1]]
    return np.array([(weight * xs).sum() / weight.sum() + 0.5, (weight * ys).sum() / weight.sum() + 0.5])


def _pick_pair(boxes: np.ndarray, mid_x: float) -> np.ndarray | None:
    """The largest eye box on each side of the face's vertical midline, image-left first (None if a side has none)."""
    c = box_centres(boxes)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    left, right = np.flatnonzero(c[:, 0] < mid_x), np.flatnonzero(c[:, 0] >= mid_x)
    if not len(left) or not len(right):
        return None
    return np.stack([boxes[left[np.argmax(area[left])]], boxes[right[np.argmax(area[right])]]])


def _cv2():
    try:
        import cv2
    except ImportError:
        raise WorkbenchError("face detection needs OpenCV: pip install 'opencv-python-headless>=4.8,<5'") from None
    return cv2


def load_detector(spec: str | Detector | None = None) -> Detector:
    """The default cascade detector (``None``), a detector instance, or ``package.module:Class`` built with no
    arguments; anything without a ``detect`` method is a WorkbenchError."""
    if spec is None or spec == "cascade":
        return CascadeDetector()
    if not isinstance(spec, str):
        det = spec
    else:
        module, sep, name = spec.partition(":")
        if not sep or not module or not name:
            raise WorkbenchError(f"expected a detector as package.module:Class, got {spec!r}")
        try:
            det = getattr(importlib.import_module(module), name)()
        except (ImportError, AttributeError) as exc:
            raise WorkbenchError(f"cannot load detector {spec!r}: {exc}") from None
    if not callable(getattr(det, "detect", None)):
        raise WorkbenchError(f"detector {spec!r} has no detect(rgb) method")
    return det
