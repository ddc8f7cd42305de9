"""What every layout shares: the views' key contract, checks of input dicts, and path handling."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from workbench.errors import DataError

# view -> key -> (dtype, per-sample shape); None in a shape is a free size (image height/width).
VIEW_KEYS: dict[str, dict[str, tuple[type, tuple[int | None, ...]]]] = {
    "face": {
        "image": (np.uint8, (3, None, None)),
        "gaze_pitchyaw": (np.float32, (2,)),
        "head_pitchyaw": (np.float32, (2,)),
        "landmarks": (np.float32, (None, 2)),  # a named set of FACE_LANDMARKS, told apart by its count
        "eye_boxes": (np.float32, (2, 4)),
        "subject": (np.int64, ()),
    },
    "mc4": {
        "face": (np.uint8, (1, None, None)),
        "l_eye": (np.uint8, (1, None, None)),
        "r_eye": (np.uint8, (1, None, None)),
        "head_lola": (np.float32, (2,)),
        "eye_lola": (np.float32, (2,)),
        "gaze_lola": (np.float32, (2,)),
        "subject": (np.int64, ()),
    },
    "itracker": {
        "eyes": (np.uint8, (4, 3, None, None)),
        "pog_px": (np.float32, (2,)),
        "subject": (np.int64, ()),
    },
    "frame": {
        "image": (np.uint8, (3, None, None)),
        "pog_px": (np.float32, (2,)),
        "screen_mm": (np.float32, (2,)),
        "screen_px": (np.float32, (2,)),
        "offset_mm": (np.float32, (2,)),
        "face_box": (np.float32, (4,)),
        "subject": (np.int64, ()),
    },
    "track": {
        "frames": (np.uint8, (7, 3, None, None)),
        "label": (np.int64, ()),
        "frame_labels": (np.int64, (7,)),
        "head_pose": (np.float32, (7, 3)),
        "landmarks": (np.float32, (7, 5, 2)),
        "subject": (np.int64, ()),
    },
}


#: The ``face`` view's landmark sets, named by their count. Sides are the subject's: with an unmirrored
#: camera the subject's right eye is the image-left one. 5: SynthGaze (eye centres, nose tip, mouth
#: corners). 6: MPIIFaceGaze (the 6-point face model of its annotation: four eye corners, two mouth
#: corners, in this order; see workbench/data/formats/mpiifacegaze.py for the sources).
FACE_LANDMARKS: dict[int, tuple[str, ...]] = {
    5: ("right_eye", "left_eye", "nose_tip", "mouth_right", "mouth_left"),
    6: ("right_eye_outer", "right_eye_inner", "left_eye_inner", "left_eye_outer", "mouth_right", "mouth_left"),
}

#: Eye boxes from two eye corners at distance w: ``EYE_BOX_MARGIN * w`` beyond each corner along x and
#: ``EYE_BOX_HALF_HEIGHT * w`` above and below the corners along y. That is about the box SynthGaze draws
#: around an open eye (0.2 w beyond the corners, lids ~0.19 w above and ~0.14 w below plus 0.25 w margin).
EYE_BOX_MARGIN = 0.2
EYE_BOX_HALF_HEIGHT = 0.4


def face_landmark_names(count: int) -> tuple[str, ...]:
    """The names of a ``face`` view's ``count`` landmarks (:data:`FACE_LANDMARKS`); ValueError for other counts."""
    try:
        return FACE_LANDMARKS[int(count)]
    except KeyError:
        raise ValueError(f"no named face landmark set has {count} points (known: {sorted(FACE_LANDMARKS)})") from None


def eye_boxes_from_corners(corners: np.ndarray) -> np.ndarray:
    """Eye boxes from eye corners: (N, 2, 2, 2) [eye, corner, (x, y)] px -> (N, 2, 4) (x0, y0, x1, y1) px.

    Each eye's box spans its two corners plus :data:`EYE_BOX_MARGIN` times the corner distance left and
    right and :data:`EYE_BOX_HALF_HEIGHT` times it above and below (the box height is 0.8 times the
    corner distance for level corners). The boxes come back image-left eye first (SynthGaze's order),
    whatever the order of the eyes in ``corners``; an eye with a non-finite corner, or with both corners
    on one point (no eye width to size a box by), gets a NaN box.
    """
    c = np.asarray(corners, dtype=np.float64)
    if c.ndim != 4 or c.shape[1:] != (2, 2, 2):
        raise ValueError(f"expected eye corners of shape (N,2,2,2), got {c.shape}")
    w = np.linalg.norm(c[:, :, 1] - c[:, :, 0], axis=-1)  # (N, 2)
    lo, hi = c.min(axis=2), c.max(axis=2)  # (N, 2, 2); NaN propagates
    boxes = np.stack([lo[..., 0] - EYE_BOX_MARGIN * w, lo[..., 1] - EYE_BOX_HALF_HEIGHT * w,
                      hi[..., 0] + EYE_BOX_MARGIN * w, hi[..., 1] + EYE_BOX_HALF_HEIGHT * w], -1)
    boxes[~(w > 0)] = np.nan
    cx = (boxes[..., 0] + boxes[..., 2]) / 2
    swap = cx[:, 1] < cx[:, 0]  # False when either is NaN: the order is then kept
    boxes[swap] = boxes[swap][:, ::-1]
    return boxes.astype(np.float32)


def _shape_str(shape: Iterable[int | None]) -> str:
    return "(" + ",".join("N" if i == 0 else ("*" if s is None else str(s)) for i, s in enumerate(shape)) + ")"


def check_view(
    data: Mapping[str, Any], view: str, keys: Iterable[str], where: str | os.PathLike, fmt: str
) -> dict[str, np.ndarray]:
    """Check and convert the ``keys`` of a view dict a writer needs: dtype, per-sample shape, one N.

    Returns new arrays (float32 labels, int64 ids, uint8 images). Problems raise :class:`DataError`
    naming ``where`` (the output path), e.g. ``"out: cannot write mc4: 'face' is (6,3,32,32), expected (N,1,*,*)"``.
    """
    spec = VIEW_KEYS[view]
    out: dict[str, np.ndarray] = {}
    n_ref: tuple[str, int] | None = None
    for key in keys:
        dtype, shape = spec[key]
        if key not in data:
            raise DataError(
                f"{where}: cannot write {fmt}: the data has no {key!r} (a '{view}' view has {', '.join(spec)})"
            )
        arr = np.asarray(data[key])
        bad = arr.ndim != len(shape) + 1 or any(s is not None and s != a for s, a in zip(shape, arr.shape[1:]))
        if bad:
            raise DataError(
                f"{where}: cannot write {fmt}: {key!r} is {tuple(arr.shape)}, expected {_shape_str((0, *shape))}"
            )
        if dtype is np.uint8 and arr.dtype != np.uint8:
            raise DataError(f"{where}: cannot write {fmt}: {key!r} is {arr.dtype}, expected uint8 images")
        if dtype is np.int64:
            if not np.issubdtype(arr.dtype, np.integer):
                raise DataError(f"{where}: cannot write {fmt}: {key!r} is {arr.dtype}, expected integers")
        elif dtype is np.float32 and arr.dtype.kind not in "fiu":
            raise DataError(f"{where}: cannot write {fmt}: {key!r} is {arr.dtype}, expected numbers")
        if n_ref is None:
            n_ref = (key, len(arr))
        elif len(arr) != n_ref[1]:
            raise DataError(
                f"{where}: cannot write {fmt}: {key!r} has {len(arr)} samples but {n_ref[0]!r} has {n_ref[1]}"
            )
        out[key] = arr.astype(dtype, copy=True)
    if n_ref is not None and n_ref[1] == 0:
        raise DataError(f"{where}: cannot write {fmt}: the data has no samples")
    return out


def first_bad_row(arr: np.ndarray) -> int | None:
    """Index of the first sample (row) with a NaN or infinite value, or None."""
    bad = ~np.isfinite(np.asarray(arr, dtype=np.float64).reshape(len(arr), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def check_finite(arr: np.ndarray, where: str | os.PathLike, what: str, row_names: list[str] | None = None) -> None:
    """Raise :class:`DataError` naming the file and the first row of ``arr`` that is NaN or infinite."""
    i = first_bad_row(arr)
    if i is not None:
        row = row_names[i] if row_names is not None else f"row {i}"
        values = np.asarray(arr[i], dtype=np.float64).ravel()
        if values.size <= 6:
            detail = f": {values.tolist()}"
        else:
            j = int(np.flatnonzero(~np.isfinite(values))[0])
            detail = f" (value {j} of {values.size} is {values[j]})"
        raise DataError(f"{where}: {what} {row} is not finite{detail}")


def check_writable(path: str | os.PathLike, overwrite: bool) -> Path:
    """The output path of a writer: refuse an existing non-empty folder or a file unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
        raise DataError(f"{path}: already exists (pass overwrite=True to replace it)")
    return path


def require_dir(path: str | os.PathLike, fmt: str) -> Path:
    """The root folder of a reader: it must exist and be a folder."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: folder does not exist (expected a data set in the {fmt} layout)")
    if not path.is_dir():
        raise DataError(f"{path}: is a file, expected a folder in the {fmt} layout")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: missing ({what})")
    return path


_SUBJECT_RE = re.compile(r"^s(\d+)(?:_\d+)?$")


def subject_name(subject: int) -> str:
    """``s{subject:03d}``: how layouts without a subject field carry the id in a name."""
    return f"s{int(subject):03d}"


def parse_subject(name: str) -> int:
    """Inverse of :func:`subject_name` (also accepts ``s001_000042``); -1 when the name does not match."""
    m = _SUBJECT_RE.match(name)
    return int(m.group(1)) if m else -1


def float_text(x: float) -> str:
    """Shortest text that reads back to the same float32 value."""
    return repr(float(np.float32(x)))


def parse_float(text: str, where: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{where}: line {line}: {text.strip()[:40]!r} is not a number") from None
