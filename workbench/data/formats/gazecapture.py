"""GazeCapture as downloaded (view ``itracker``, one camera): the data iTracker was trained on.

Layout (from the data set's own README and loaders, CSAILVision/GazeCapture on GitHub: ``README.md``
"Data", ``pytorch/prepareDataset.py``, ``pytorch/ITrackerData.py``, ``code/loadSubject.m``,
``code/loadAllSubjectsVectors.m``, ``code/screen2cam.m``)::

    root/NNNNN/                    one recording session (one subject); five digits, not all numbers used
        frames/NNNNN.jpg           camera frames, named as listed in frames.json
        frames.json                ["00000.jpg", "00001.jpg", ...]: frame j of every per-frame array below
        appleFace.json             {"X": [...], "Y": [...], "W": [...], "H": [...], "IsValid": [0|1, ...]}
                                   face box in pixels of the full frame (Apple's on-device detector)
        appleLeftEye.json          the same keys; the subject's LEFT eye (the image-RIGHT one), its X, Y
        appleRightEye.json         relative to the top-left corner of the face box
        faceGrid.json              X, Y (1-indexed), W, H in a 25 x 25 grid, IsValid
        dotInfo.json               DotNum, XPts, YPts (points from the screen's top-left), XCam, YCam (cm
                                   from the camera centre: x right, y up, so the screen below the camera
                                   has YCam < 0 in portrait), Time
        info.json                  TotalFrames, NumFaceDetections, NumEyeDetections, Dataset
                                   ("train" | "val" | "test"), DeviceName
        screen.json                W, H (points), Orientation (1-4), per frame
        motion.json                60 Hz CMDeviceMotion records with DotNum and Time

What the reader does with each file:

* ``info.json``: ``Dataset`` selects the split (``split=``); the other fields are not needed.
* ``frames.json``: the frame file names, in the order of every per-frame array.
* ``appleFace.json``, ``appleLeftEye.json``, ``appleRightEye.json``, ``faceGrid.json``: a frame is used
  only when all four ``IsValid`` are 1, exactly as ``prepareDataset.py`` does (its ``allValid``); the
  other frames are skipped and counted. The eye crops are cut as ``prepareDataset.py`` cuts them:
  boxes truncated to integers, the face box grown by ``[-1, -1, +1, +1]`` and the eye boxes moved by
  ``[0, -1]`` ("for compatibility with matlab code"), the eye boxes made absolute by adding the grown
  face box's corner, and pixels outside the frame filled with black (its ``cropImage``). The face grid
  itself is not used: this model has no face-grid input.
* ``dotInfo.json``: ``XCam``, ``YCam`` are the labels (``pog_cm``), kept exactly (iTracker's own
  labels, ``labelDotXCam``/``labelDotYCam``); ``XPts``/``YPts`` depend on the device and its Display
  Zoom, ``DotNum`` and ``Time`` on the recording, so they are not read.
* ``frames/NNNNN.jpg``: decoded as RGB (like ``ITrackerData.py``'s ``convert('RGB')``) for each used frame.
* ``screen.json``, ``motion.json``: not read. The labels are already in the camera-centred cm space for
  every orientation (README: "assuming the camera remains in a fixed position in space across all
  device orientations"), and the model uses no motion data. Neither file is required.

Each eye crop is resized (bilinear, as ``ITrackerData.py``'s ``transforms.Scale``) to ``size`` x
``size`` pixels, default 64, the ``itracker`` teacher's ``paper`` input size (iTracker itself used
224); training, evaluation and analysis then fit them to the run's size like every data set's images
(``workbench.train.data.read_for_task``; 36 px at the ``cpu`` preset). Eye boxes inside the crops are not returned: each crop IS Apple's eye box, so an eye box in it
would be the whole image and the eye-mass figure trivially 1 (the faithfulness checks then say n/a).

The returned view dict: ``eyes`` (N,2,3,S,S) uint8 RGB, [image-left eye = the subject's right eye
(``appleRightEye``), image-right eye = the subject's left eye (``appleLeftEye``)], the same order as
camera 0 of SynthGaze's ``itracker`` view; ``pog_cm`` (N,2) float32 (XCam, YCam); ``subject`` (N,)
int64 (the session folder's number); ``frame`` (N,) int64 (the frame's number); and ``counts``, a dict
(not an array) of what was read and skipped, which ``workbench data inspect`` shows.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from PIL import Image

from workbench.data.formats._common import check_finite, check_writable, require_dir
from workbench.data.formats._images import read_image, write_jpeg
from workbench.data.formats.itracker import default_splits
from workbench.data.geometry import Screen
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_gazecapture", "write_gazecapture", "is_gazecapture", "screen_mm_to_camera_cm", "SPLITS", "DEFAULT_SIZE"]

SPLITS = ("train", "val", "test")
DEFAULT_SIZE = 64
_SESSION = re.compile(r"^\d{5}$")
_FRAME = re.compile(r"^(\d{5})\.jpg$")  # prepareDataset.py: re.match('(\d{5})\.jpg$', x)
_BOXES = ("appleFace", "appleLeftEye", "appleRightEye", "faceGrid")
_BOX_KEYS = ("X", "Y", "W", "H", "IsValid")


def is_gazecapture(path: str | os.PathLike) -> bool:
    """True when ``path`` holds at least one ``NNNNN/`` session folder with ``appleFace.json``."""
    path = Path(path)
    return path.is_dir() and any(
        p.is_dir() and _SESSION.match(p.name) and (p / "appleFace.json").is_file() for p in path.iterdir()
    )


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: missing (every GazeCapture session folder has it)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({' '.join(str(e).split())})") from None


def _numbers(path: Path, obj: Any, key: str, n: int) -> np.ndarray:
    """``obj[key]`` as a float64 array of length ``n`` (JSON null -> NaN)."""
    if not isinstance(obj, dict) or key not in obj:
        have = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
        raise DataError(f"{path}: expected a JSON object with key {key!r}, got {have}")
    values = obj[key]
    if not isinstance(values, list) or len(values) != n:
        got = f"{len(values)} values" if isinstance(values, list) else type(values).__name__
        raise DataError(f"{path}: {key!r} must list one value per frame of frames.json ({n}), got {got}")
    try:
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        bad = next(v for v in values if not isinstance(v, (int, float)) and v is not None)
        raise DataError(f"{path}: {key!r} holds {bad!r}, expected numbers") from None


def _crop(img: np.ndarray, box: np.ndarray) -> np.ndarray:
    """prepareDataset.py's cropImage on a (3,H,W) image: box (x, y, w, h) ints, outside pixels black."""
    x, y, w, h = (int(v) for v in box)
    out = np.zeros((img.shape[0], h, w), dtype=img.dtype)
    ax, ay = max(x, 0), max(y, 0)
    bx, by = min(x + w, img.shape[2]), min(y + h, img.shape[1])
    if bx > ax and by > ay:
        out[:, ay - y : by - y, ax - x : bx - x] = img[:, ay:by, ax:bx]
    return out


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """(3,h,w) uint8 -> (3,size,size) uint8, bilinear (PIL, as torchvision's Scale)."""
    if img.shape[1:] == (size, size):
        return img
    pil = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)), "RGB")
    return np.asarray(pil.resize((size, size), Image.BILINEAR), dtype=np.uint8).transpose(2, 0, 1)


def _session(folder: Path, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One session -> (eyes (n,2,3,S,S), pog_cm (n,2), frame numbers (n,), invalid frame count)."""
    frames_path = folder / "frames.json"
    frames = _load_json(frames_path)
    if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
        raise DataError(f"{frames_path}: expected a list of frame file names such as \"00000.jpg\"")
    numbers = []
    for name in frames:
        m = _FRAME.match(name)
        if m is None:
            raise DataError(f"{frames_path}: frame name {name!r} is not five digits + .jpg (e.g. \"00000.jpg\")")
        numbers.append(int(m.group(1)))
    n = len(frames)
    boxes: dict[str, dict[str, np.ndarray]] = {}
    for stem in _BOXES:
        path = folder / f"{stem}.json"
        obj = _load_json(path)
        boxes[stem] = {k: _numbers(path, obj, k, n) for k in _BOX_KEYS}
    dot_path = folder / "dotInfo.json"
    dot = _load_json(dot_path)
    pog = np.stack([_numbers(dot_path, dot, "XCam", n), _numbers(dot_path, dot, "YCam", n)], 1)
    valid = np.ones(n, dtype=bool)
    for stem in _BOXES:
        valid &= boxes[stem]["IsValid"] == 1
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return np.empty((0, 2, 3, size, size), np.uint8), np.empty((0, 2), np.float32), np.empty(0, np.int64), n
    check_finite(pog[idx], dot_path, "XCam/YCam of frame", row_names=[frames[i] for i in idx])

    def box(stem: str) -> np.ndarray:
        b = boxes[stem]
        arr = np.stack([b["X"], b["Y"], b["W"], b["H"]], 1)[idx]
        check_finite(arr, folder / f"{stem}.json", "X/Y/W/H of valid frame", row_names=[frames[i] for i in idx])
        return arr.astype(np.int64)  # numpy's astype(int), as prepareDataset.py: truncation

    face = box("appleFace") + np.array([-1, -1, 1, 1])
    eye_boxes = []
    # Image-left eye first: the subject's right eye (README: "Left eye" appears on the image right).
    for stem in ("appleRightEye", "appleLeftEye"):
        b = box(stem) + np.array([0, -1, 0, 0])
        b[:, :2] += face[:, :2]  # relative to the (grown) face box
        bad = np.flatnonzero((b[:, 2] < 1) | (b[:, 3] < 1))
        if len(bad):
            j = idx[bad[0]]
            raise DataError(f"{folder / (stem + '.json')}: frame {frames[j]} is valid but its eye box is "
                            f"{int(b[bad[0], 2])}x{int(b[bad[0], 3])} pixels")
        eye_boxes.append(b)
    eyes = np.empty((len(idx), 2, 3, size, size), dtype=np.uint8)
    for k, j in enumerate(idx):
        img = read_image(folder / "frames" / frames[j], 3)
        for e in range(2):
            eyes[k, e] = _resize(_crop(img, eye_boxes[e][k]), size)
    return eyes, pog[idx].astype(np.float32), np.asarray(numbers, dtype=np.int64)[idx], int(n - len(idx))


def read_gazecapture(root: str | os.PathLike, *, split: str | None = None, size: int = DEFAULT_SIZE) -> dict[str, Any]:
    """Read the GazeCapture sessions under ``root`` (all splits, or ``split``) into an ``itracker`` view.

    Returns ``eyes`` (N,2,3,size,size) uint8, ``pog_cm`` (N,2) float32, ``subject`` (N,) int64,
    ``frame`` (N,) int64 and ``counts`` (dict: sessions, frames listed, invalid frames skipped, samples,
    per split). Frames whose face/eye/face-grid ``IsValid`` is 0 are skipped and counted; a session
    without a single valid frame is skipped (as prepareDataset.py does); no valid frame at all, a
    missing or malformed JSON file or a missing frame image raise :class:`DataError` naming the file.
    """
    root = require_dir(root, "gazecapture")
    if split is not None and split not in SPLITS:
        raise DataError(f"{root}: unknown split {split!r} (GazeCapture's info.json 'Dataset' is train, val or test)")
    if not isinstance(size, int) or size < 1:
        raise DataError(f"{root}: eye crop size must be a positive integer, got {size!r}")
    sessions = sorted(p for p in root.iterdir() if p.is_dir() and _SESSION.match(p.name))
    if not sessions:
        raise DataError(f"{root}: no GazeCapture session folders (five-digit names such as 00002/)")
    eyes, pogs, subjects, frames = [], [], [], []
    per_split = {s: 0 for s in SPLITS}
    listed = invalid = used_sessions = empty_sessions = 0
    for folder in sessions:
        info_path = folder / "info.json"
        info = _load_json(info_path)
        dataset = info.get("Dataset") if isinstance(info, dict) else None
        if dataset not in SPLITS:
            raise DataError(f"{info_path}: 'Dataset' is {dataset!r}, expected one of train, val, test")
        if split is not None and dataset != split:
            continue
        e, p, f, bad = _session(folder, size)
        used_sessions += 1
        listed += len(f) + bad
        invalid += bad
        if len(f) == 0:
            empty_sessions += 1
            continue
        per_split[dataset] += len(f)
        eyes.append(e)
        pogs.append(p)
        frames.append(f)
        subjects.append(np.full(len(f), int(folder.name), dtype=np.int64))
    where = f"split {split!r}" if split else "any split"
    if used_sessions == 0:
        raise DataError(f"{root}: no session of {where} (info.json 'Dataset' of {len(sessions)} sessions)")
    if not eyes:
        first = next(p for p in sessions if split is None or _load_json(p / "info.json").get("Dataset") == split)
        raise DataError(f"{first / 'appleFace.json'}: no usable frame in {where}: all {listed} frames of "
                        f"{used_sessions} session(s) have IsValid 0 in appleFace/appleLeftEye/appleRightEye/faceGrid.json")
    counts = {"sessions": used_sessions, "sessions_without_valid_frames": empty_sessions, "frames_listed": listed,
              "frames_invalid_skipped": invalid, "samples": listed - invalid,
              "split": split or "all", "samples_per_split": per_split, "eye_size": size}
    return {"eyes": np.concatenate(eyes), "pog_cm": np.concatenate(pogs), "subject": np.concatenate(subjects),
            "frame": np.concatenate(frames), "counts": counts}


# ---- writer ----------------------------------------------------------------------------------------

def screen_mm_to_camera_cm(mm: np.ndarray, screen: Screen | None = None) -> np.ndarray:
    """(..., 2) mm from a SynthGaze screen's top-left corner -> GazeCapture's (XCam, YCam) in cm.

    SynthGaze's camera plane has x right, y down and the screen's top-left corner at ``offset_mm``;
    GazeCapture's prediction space has y up (screen2cam.m, portrait: ``yCam = -dY - yScreen``).
    """
    xy = np.asarray((screen or Screen()).mm_to_camera(np.asarray(mm, dtype=np.float64)))
    return np.stack([xy[..., 0] / 10, -xy[..., 1] / 10], -1)


def _labels_cm(data: Mapping[str, Any], n: int, where: Path) -> tuple[np.ndarray, np.ndarray]:
    """(XCam/YCam (n,2) cm, XPts/YPts (n,2) points) from pog_cm, else SynthGaze's pog_mm or pog_px
    (:func:`screen_mm_to_camera_cm`). The screen is written as 1920 x 1080 points, one per SynthGaze pixel.
    """
    screen = Screen()
    if "pog_cm" in data:
        cam = np.asarray(data["pog_cm"], dtype=np.float64).reshape(n, 2)
        mm = screen.camera_to_mm(np.stack([cam[:, 0] * 10, -cam[:, 1] * 10], 1))
    elif "pog_mm" in data:
        mm = np.asarray(data["pog_mm"], dtype=np.float64).reshape(n, 2)
        cam = screen_mm_to_camera_cm(mm, screen)
    elif "pog_px" in data:
        mm = screen.px_to_mm(np.asarray(data["pog_px"], dtype=np.float64).reshape(n, 2))
        cam = screen_mm_to_camera_cm(mm, screen)
    else:
        raise DataError(f"{where}: cannot write gazecapture: the data has no 'pog_cm', 'pog_mm' or 'pog_px'")
    check_finite(cam, where, "cannot write gazecapture: PoG")
    return cam.astype(np.float32), screen.mm_to_px(mm)


def _dump(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, separators=(",", ":")), encoding="utf-8")


def write_gazecapture(
    data: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    splits: Mapping[int, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an ``itracker`` view in GazeCapture's layout: one ``NNNNN/`` session per subject.

    ``eyes`` (N,V,3,S,S) uint8 (V = 4 SynthGaze or 2): camera 0's two eye crops are pasted into a camera
    frame (5S x 4S, JPEG quality 95), with the face and eye boxes written so that prepareDataset.py's
    cropping cuts exactly those crops back out. Labels: ``pog_cm``, else SynthGaze's ``pog_mm``/``pog_px``
    (see :func:`_labels_cm`). ``subject`` (N,) names the session folders; ``splits`` maps subject ->
    "train" | "val" | "test" (default: :func:`~workbench.data.formats.itracker.default_splits`). Every
    frame is valid (IsValid 1). Returns ``path``.
    """
    path = check_writable(path, overwrite)
    if "eyes" not in data or "subject" not in data:
        raise DataError(f"{path}: cannot write gazecapture: the data needs 'eyes' and 'subject' (an 'itracker' view)")
    eyes = np.asarray(data["eyes"])
    if eyes.dtype != np.uint8 or eyes.ndim != 5 or eyes.shape[1] not in (2, 4) or eyes.shape[2] != 3 \
            or eyes.shape[3] != eyes.shape[4]:
        raise DataError(f"{path}: cannot write gazecapture: 'eyes' is {tuple(eyes.shape)} {eyes.dtype}, "
                        "expected (N,4|2,3,S,S) uint8")
    n, s = len(eyes), int(eyes.shape[3])
    if n == 0:
        raise DataError(f"{path}: cannot write gazecapture: the data has no samples")
    subject = np.asarray(data["subject"]).astype(np.int64).reshape(-1)
    if len(subject) != n or (subject < 0).any() or (subject > 99999).any():
        raise DataError(f"{path}: cannot write gazecapture: 'subject' must hold {n} ids in 0..99999 (five-digit folders)")
    cam, pts = _labels_cm(data, n, path)
    splits = default_splits(subject) if splits is None else {int(k): v for k, v in splits.items()}
    for sid in np.unique(subject):
        if splits.get(int(sid)) not in SPLITS:
            raise DataError(f"{path}: cannot write gazecapture: subject {int(sid)} has split "
                            f"{splits.get(int(sid))!r}, expected one of {', '.join(SPLITS)}")
    # Frame geometry (pixels): face box and the two eye crops' top-left corners inside a 5S x 4S frame.
    fw, fh = 5 * s, 4 * s
    face = (s, s, 3 * s, 2 * s)  # X, Y, W, H as Apple logs it; prepareDataset grows it by one pixel
    corners = [(s + s // 4, s + s // 2), (s + s // 4 + s + s // 2, s + s // 2)]  # image-left, image-right eye
    grid = [int(face[0] * 25 // fw) + 1, int(face[1] * 25 // fh) + 1, int(np.ceil(face[2] * 25 / fw)),
            int(np.ceil(face[3] * 25 / fh))]
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for sid in np.unique(subject):
            rows = np.flatnonzero(subject == sid)
            m = len(rows)
            folder = tmp / f"{int(sid):05d}"
            (folder / "frames").mkdir(parents=True)
            names = [f"{j:05d}.jpg" for j in range(m)]
            for j, i in enumerate(rows):
                crop = eyes[i]
                fill = np.median(crop[:2].reshape(2, 3, -1).transpose(1, 0, 2).reshape(3, -1), axis=1)
                frame = np.empty((3, fh, fw), dtype=np.uint8)
                frame[:] = fill.astype(np.uint8)[:, None, None]
                for e, (x, y) in enumerate(corners):
                    frame[:, y : y + s, x : x + s] = crop[e]
                write_jpeg(folder / "frames" / names[j], frame, quality=95)
            ones = [1] * m
            _dump(folder / "frames.json", names)
            _dump(folder / "appleFace.json", {"H": [float(face[3])] * m, "W": [float(face[2])] * m,
                                              "X": [float(face[0])] * m, "Y": [float(face[1])] * m, "IsValid": ones})
            # Inverse of prepareDataset.py: crop x = faceX - 1 + eyeX, crop y = faceY - 1 + eyeY - 1.
            for stem, (x, y) in (("appleRightEye", corners[0]), ("appleLeftEye", corners[1])):
                _dump(folder / f"{stem}.json", {"H": [float(s)] * m, "W": [float(s)] * m,
                                                "X": [float(x - face[0] + 1)] * m, "Y": [float(y - face[1] + 2)] * m,
                                                "IsValid": ones})
            _dump(folder / "faceGrid.json", {"X": [grid[0]] * m, "Y": [grid[1]] * m, "W": [grid[2]] * m,
                                             "H": [grid[3]] * m, "IsValid": ones})
            _dump(folder / "dotInfo.json", {
                "DotNum": list(range(m)), "XPts": [float(v) for v in pts[rows, 0]], "YPts": [float(v) for v in pts[rows, 1]],
                "XCam": [float(v) for v in cam[rows, 0]], "YCam": [float(v) for v in cam[rows, 1]], "Time": [0.0] * m})
            _dump(folder / "info.json", {"TotalFrames": m, "NumFaceDetections": m, "NumEyeDetections": m,
                                         "Dataset": splits[int(sid)], "DeviceName": "SynthGaze"})
            _dump(folder / "screen.json", {"H": [1080] * m, "W": [1920] * m, "Orientation": [1] * m})
            # Only the two fields the README names; the CMDeviceMotion values are not simulated.
            _dump(folder / "motion.json", [{"DotNum": j, "Time": 0.0} for j in range(m)])
    return path
