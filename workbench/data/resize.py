"""Fit a data set's images to a model's input size on the way in, scaling pixel-coordinate labels with them.

Public data sets ship images at their own size (MPIIFaceGaze's normalized faces are 448x448, EVE's webcam
frames 1920x1080); a model is trained at its recipe's size. Write-up 000 does exactly this step with
``Resize((112, 112))`` on the 448 px faces. The rule is one plain resize per image (area interpolation
when shrinking, bilinear when enlarging); x and y coordinates of the labels that live in that image's
pixels (landmarks, eye boxes, face box) are scaled by the same factors, so eye-mass and pointing figures
stay right. Labels in other units (radians, screen pixels, millimetres, [0, 1] track landmarks) are
untouched.

::

    data, info = fit_images(formats.read("mpiifacegaze", root), "face", 112)
    info  # {"image": {"from": [448, 448], "to": [112, 112]}}
"""

from __future__ import annotations

from typing import Any, Mapping

import cv2
import numpy as np

__all__ = ["IMAGE_KEYS", "PIXEL_KEYS", "target_hw", "fit_images"]

#: view -> keys holding images; the last two axes are (H, W), channels just before them.
IMAGE_KEYS: dict[str, tuple[str, ...]] = {
    "face": ("image",),
    "mc4": ("face", "l_eye", "r_eye"),
    "itracker": ("eyes",),
    "frame": ("image",),
    "track": ("frames",),
}

#: view -> label key -> the image key whose pixels it is measured in. Boxes are (..., 4) x0,y0,x1,y1;
#: points are (..., 2) x,y.
PIXEL_KEYS: dict[str, dict[str, str]] = {
    "face": {"landmarks": "image", "eye_boxes": "image"},
    "frame": {"face_box": "image", "eye_boxes": "image", "landmarks": "image"},
    "itracker": {"eye_boxes": "eyes"},
    "mc4": {"eye_boxes": "face"},
}


def target_hw(size: Any) -> tuple[int, int] | None:
    """A recipe's ``size`` (int S, or (W, H)) -> (H, W); None when the recipe fixes no size."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    w, h = size
    return int(h), int(w)


def _resize_stack(arr: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(..., C, H, W) uint8 -> (..., C, h, w), one image at a time (cv2 wants H, W, C)."""
    h, w = hw
    lead, (c, src_h, src_w) = arr.shape[:-3], arr.shape[-3:]
    flat = arr.reshape(-1, c, src_h, src_w)
    out = np.empty((len(flat), c, h, w), dtype=arr.dtype)
    interp = cv2.INTER_AREA if (h < src_h or w < src_w) else cv2.INTER_LINEAR
    for i, img in enumerate(flat):
        hwc = np.ascontiguousarray(img.transpose(1, 2, 0))
        r = cv2.resize(hwc, (w, h), interpolation=interp)
        out[i] = r[None] if r.ndim == 2 else r.transpose(2, 0, 1)
    return out.reshape(*lead, c, h, w)


def _scale_xy(arr: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Scale interleaved x,y coordinates (last axis 2 or 4) of pixel labels."""
    out = np.asarray(arr, dtype=np.float32).copy()
    out[..., 0::2] *= sx
    out[..., 1::2] *= sy
    return out


def fit_images(data: Mapping[str, np.ndarray], view: str, size: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Resize every image of a ``view`` dict to ``size`` (int S or (W, H)) -> (new dict, what was done).

    The second value maps each resized image key to ``{"from": [H, W], "to": [H, W]}``; it is empty when
    the images already have the size (or ``size`` is None), and then the input arrays are returned as they are.
    """
    hw = target_hw(size)
    out = dict(data)
    info: dict[str, Any] = {}
    if hw is None:
        return out, info
    for key in IMAGE_KEYS.get(view, ()):
        if key not in data:
            continue
        arr = np.asarray(data[key])
        src = tuple(int(s) for s in arr.shape[-2:])
        if src == hw or len(arr) == 0:
            continue
        out[key] = _resize_stack(arr, hw)
        info[key] = {"from": list(src), "to": list(hw)}
        sx, sy = hw[1] / src[1], hw[0] / src[0]
        for label, image_key in PIXEL_KEYS.get(view, {}).items():
            if image_key == key and label in data:
                out[label] = _scale_xy(data[label], sx, sy)
    return out, info
