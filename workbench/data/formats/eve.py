"""EVE as downloaded (view ``frame``): per-step webcam videos plus HDF5 labels, read for `plane_pog`.

The layout, from the data set's own documentation and loader (swook/EVE: ``DATASET.md``, ``README.md``,
``src/datasources/eve_sequences.py``, ``src/datasources/common.py``, ``src/core/config_default.py``,
``src/models/common.py``)::

    root/trainNN | valNN | testNN/            one folder per participant (39 train, 5 val, 10 test)
        stepNNN_<type>_<name>/                <type>: image | video | wikipedia (eye_tracker_calibration
                                              folders are skipped, as EVESequencesBase does)
            {camera}.mp4                      camera in basler (60 fps), webcam_l, webcam_c, webcam_r
                                              (30 fps); undistorted full frames
            {camera}.timestamps.txt           one integer timestamp per video frame
            {camera}.h5                       labels, one row per video frame:
                camera_matrix (3,3), camera_transformation (4,4) screen -> camera coordinates,
                inv_camera_transformation (4,4), millimeters_per_pixel (2,), pixels_per_millimeter (2,)
                groups with ``data`` and ``validity`` (N,): face_PoG_tobii (N,2) screen px,
                face_o (N,3) gaze origin in camera mm, facial_landmarks (N,68,2) full-frame px (FAN, iBUG
                68-point order), face_g_tobii, face_h, face_R, face_W, left_*/right_*, head_rvec, ...
            {camera}_eyes.mp4, {camera}_face.mp4   normalized patches     (not read: EVG takes the frame)
            screen.mp4, screen.128x72.mp4, screen.timestamps.txt, screen.mouse.txt   (not read)

The screen is a 25-inch 1920x1080 display (``config_default.actual_screen_size = [1920, 1080]``,
"DO NOT CHANGE"); its size in mm is ``1920x1080 * millimeters_per_pixel``. The PoG in screen mm is
``face_PoG_tobii * millimeters_per_pixel`` (``eve.py: calculate_additional_labels``) in a screen frame
with its origin at the top-left pixel corner and z = 0 on the screen; ``camera_transformation`` takes
such a point into the camera's coordinates (``models/common.py: calculate_combined_gaze_direction``).
The test split's gaze labels are withheld (README, "Where are the test set labels?": Codalab), so
reading it is refused with that reason. The EVG write-up's own converter (owen1994-tw/CenterNet_gaze,
``data_processing/EVE/data2voc_EVE/data2voc_EVE_face_ld.py``) reads ``webcam_c`` of train/val, takes
``face_PoG_tobii``, builds the face box from the 68 landmarks (extent grown 1.2x about its centre) and
drops frames whose PoG, landmarks, face_o or face_R validity is 0; this reader does the same for the
first three (it does not use face_R).

Geometry (how EVE maps to the frame view, whose task computes ``pog_cam = pog_px * screen_mm /
screen_px + offset_mm`` in the camera plane z = 0, x towards the image's right, y down): with
``T = camera_transformation``, the PoG in camera mm is ``P = T @ (pog_mm, 0, 1)``; the gaze ray from
``face_o`` through ``P`` meets the camera plane at ``c = o + s (P - o)``, ``s = -o_z / (P_z - o_z)``. A
real screen's pixel x runs towards the camera's -x (``T[0,0] < 0``: the user's right is the image's
left), while SynthGaze's screen runs along +x, so such an axis is mirrored: ``pog_px[0] -> 1920 -
pog_px[0]`` (the same mirror as EVE's ``inference.py`` draws). ``offset_mm = c - pog_px * mm_per_px``
then makes the task's ``pog_cam`` equal ``c`` exactly; for a screen lying in the camera plane it is
the same for every frame (the screen corner at the image's top-left), for EVE's tilted screens it
moves by the parallax along each gaze ray. ``eye_center = face_o`` and ``gaze = (P - o) / |P - o|``,
so the angular error is defined too.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import cv2
import h5py
import numpy as np

from workbench.data.formats._common import check_finite, check_view, check_writable, require_dir
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_eve", "write_eve", "looks_like_eve", "eve_plane_geometry", "eve_participants", "EVE_SCREEN_PX", "CAMERAS"]

logger = logging.getLogger("workbench.data")

CAMERAS = ("basler", "webcam_l", "webcam_c", "webcam_r")
EVE_SCREEN_PX = (1920.0, 1080.0)
#: subject id = participant number + this base, so train01 (1), val01 (101), test01 (201) stay distinct.
SPLIT_BASE = {"train": 0, "val": 100, "test": 200}
_PARTICIPANT = re.compile(r"^(train|val|test)(\d+)$")
_STEP = re.compile(r"^step(\d+)_(image|video|wikipedia)_")
# 68-point iBUG indices of the eyes (image-left eye first) in FAN's landmarks.
_EYES = (slice(36, 42), slice(42, 48))
_FPS = {"basler": 60.0}


def eve_participants(root: str | os.PathLike, split: str | None = None) -> list[tuple[Path, str, int]]:
    """(folder, split, number) of each participant folder of ``split`` (None: train and val) in ``root``.

    ``root`` may also be one participant folder (``train07``).
    """
    root = Path(root)
    m = _PARTICIPANT.match(root.name)
    cands = [root] if m and root.is_dir() else sorted(p for p in root.iterdir() if p.is_dir())
    out = []
    for p in cands:
        m = _PARTICIPANT.match(p.name)
        if m and (m.group(1) == split or (split is None and m.group(1) != "test")):
            out.append((p, m.group(1), int(m.group(2))))
    return out


def looks_like_eve(root: str | os.PathLike) -> bool:
    """Whether ``root`` (or the participant folder it is) holds a ``stepNNN_*/`` folder with an ``.h5`` file."""
    return any(s.is_dir() and any(s.glob("*.h5"))
               for split in ("train", "val", "test") for p, _, _ in eve_participants(root, split) for s in p.glob("step*"))


def _h5(path: Path) -> h5py.File:
    if not path.is_file():
        raise DataError(f"{path}: missing (each EVE step folder has {path.stem}.mp4, .h5 and .timestamps.txt)")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file ({' '.join(str(e).split())[:80]})") from None


def _dataset(f: h5py.File, path: Path, key: str, shape: tuple[int, ...]) -> np.ndarray:
    if key not in f or not isinstance(f[key], h5py.Dataset):
        raise DataError(f"{path}: no dataset {key!r} (an EVE label file has {key} {shape})")
    arr = np.asarray(f[key][()], dtype=np.float64)
    if arr.shape != shape:
        raise DataError(f"{path}: {key!r} is {arr.shape}, expected {shape}")
    return arr


def _group(f: h5py.File, path: Path, key: str, n: int | None, shape: tuple[int, ...],
           why: str = "") -> tuple[np.ndarray, np.ndarray]:
    """(data (N, *shape) float64, validity (N,) bool) of one label group."""
    if key not in f:
        raise DataError(f"{path}: no label {key!r}{why} (expected a group with 'data' {('N', *shape)} and 'validity')")
    g = f[key]
    if not isinstance(g, h5py.Group) or "data" not in g or "validity" not in g:
        raise DataError(f"{path}: {key!r} is not a group with 'data' and 'validity' datasets")
    try:
        data, valid = np.asarray(g["data"][()]), np.asarray(g["validity"][()])
    except OSError as e:  # a truncated file can open and still fail on a chunk
        raise DataError(f"{path}: cannot read {key!r} ({' '.join(str(e).split())[:80]})") from None
    if data.ndim != 1 + len(shape) or data.shape[1:] != shape or valid.shape != data.shape[:1]:
        raise DataError(f"{path}: {key}/data is {data.shape} with validity {valid.shape}, "
                        f"expected {('N', *shape)} and (N,)")
    if n is not None and len(data) != n:
        raise DataError(f"{path}: {key} has {len(data)} rows but face_PoG_tobii has {n}")
    if data.dtype.kind not in "fiu" or valid.dtype.kind not in "biu":
        raise DataError(f"{path}: {key} is {data.dtype} with validity {valid.dtype}, expected numbers and flags")
    return data.astype(np.float64), valid.astype(bool)


def eve_plane_geometry(pog_px: np.ndarray, face_o: np.ndarray, transform: np.ndarray, mm_per_px: np.ndarray,
                       screen_px: tuple[float, float] = EVE_SCREEN_PX) -> dict[str, np.ndarray]:
    """EVE's PoG (N,2) screen px, gaze origin (N,3) camera mm, 4x4 screen->camera transform -> frame geometry.

    Returns ``pog_px`` (N,2) (an axis running against the camera's mirrored), ``offset_mm`` (N,2) with
    ``pog_px * mm_per_px + offset_mm`` = where the ray origin -> PoG meets the camera plane z = 0,
    ``gaze`` (N,3) unit vectors, ``target`` (N,3) the PoG in camera mm, and ``ok`` (N,) False where the
    ray does not reach the plane. See the module docstring for the derivation.
    """
    R, t = transform[:3, :3], transform[:3, 3]
    mm = pog_px * mm_per_px
    target = mm[:, :1] * R[:, 0] + mm[:, 1:2] * R[:, 1] + t
    d = target - face_o
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -face_o[:, 2] / d[:, 2]
        gaze = d / np.linalg.norm(d, axis=1, keepdims=True)
    ok = np.isfinite(s) & (s > 0) & np.isfinite(gaze).all(1)
    plane = face_o[:, :2] + np.where(ok, s, np.nan)[:, None] * d[:, :2]
    flip = np.diag(R)[:2] < 0
    px = np.where(flip, np.asarray(screen_px) - pog_px, pog_px)
    return {"pog_px": px, "offset_mm": plane - px * mm_per_px, "gaze": gaze, "target": target, "ok": ok}


def _boxes(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """68 landmarks (N,68,2) -> face box (N,4) and eye boxes (N,2,4), x0,y0,x1,y1 in frame px.

    The face box is the EVG converter's: the landmarks' extent grown 1.2x about its centre. An eye box is
    the six eye points' extent padded by 0.2 (x) and 0.25 (y) of the corner-to-corner width, as
    SynthGaze pads its eye boxes.
    """
    lo, hi = lm.min(1), lm.max(1)
    c, half = (lo + hi) / 2, (hi - lo) * 0.6
    face = np.concatenate([c - half, c + half], 1)
    eyes = []
    for sl in _EYES:
        elo, ehi = lm[:, sl].min(1), lm[:, sl].max(1)
        w = (ehi[:, 0] - elo[:, 0])[:, None]
        pad = np.concatenate([0.2 * w, 0.25 * w], 1)
        eyes.append(np.concatenate([elo - pad, ehi + pad], 1))
    return face, np.stack(eyes, 1)


@dataclass
class _Step:
    """One step folder's labels for the frames kept, before its video is decoded."""

    video: Path
    subject: int
    step: int
    frames: np.ndarray  # (K,) kept video frame indices
    n_labels: int
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    size: tuple[int, int] = (0, 0)  # (W, H) of the video


def _read_step(folder: Path, camera: str, stride: int, subject: int, skipped: dict[str, int]) -> _Step:
    h5p = folder / f"{camera}.h5"
    with _h5(h5p) as f:
        why = " (EVE withholds the test split's gaze labels: its evaluation runs on Codalab)" \
            if folder.parent.name.startswith("test") else ""
        pog, v_pog = _group(f, h5p, "face_PoG_tobii", None, (2,), why)
        n = len(pog)
        origin, v_o = _group(f, h5p, "face_o", n, (3,))
        lm, v_lm = _group(f, h5p, "facial_landmarks", n, (68, 2))
        T = _dataset(f, h5p, "camera_transformation", (4, 4))
        mmpp = _dataset(f, h5p, "millimeters_per_pixel", (2,))
    if not np.isfinite(T).all() or abs(T[0, 0]) < np.sqrt(0.5) or not (np.isfinite(mmpp).all() and (mmpp > 0).all()):
        raise DataError(f"{h5p}: camera_transformation {np.round(T[:3], 3).tolist()} / millimeters_per_pixel "
                        f"{mmpp.tolist()}: expected a screen facing the camera and positive sizes")
    ts = folder / f"{camera}.timestamps.txt"
    if not ts.is_file():
        raise DataError(f"{ts}: missing (one timestamp per frame of {camera}.mp4)")
    try:
        n_ts = len(np.atleast_1d(np.loadtxt(ts, dtype=np.int64, ndmin=1)))
    except ValueError as e:
        raise DataError(f"{ts}: not a list of integer timestamps ({' '.join(str(e).split())[:60]})") from None
    if n_ts != n:
        raise DataError(f"{ts}: {n_ts} timestamps, but {h5p.name} labels {n} frames")
    idx = np.arange(0, n, stride)
    reasons = (("face_PoG_tobii validity 0", v_pog), ("face_o validity 0", v_o), ("facial_landmarks validity 0", v_lm))
    keep = np.ones(len(idx), bool)
    for name, v in reasons:
        bad = keep & ~v[idx]
        skipped[name] = skipped.get(name, 0) + int(bad.sum())
        keep &= ~bad
    idx = idx[keep]
    rows = [f"frame {i}" for i in idx]
    check_finite(pog[idx], h5p, "face_PoG_tobii of", rows)
    check_finite(origin[idx], h5p, "face_o of", rows)
    check_finite(lm[idx].reshape(len(idx), -1), h5p, "facial_landmarks of", rows)
    geo = eve_plane_geometry(pog[idx], origin[idx], T, mmpp)
    bad = ~geo["ok"]
    skipped["gaze ray misses the camera plane"] = skipped.get("gaze ray misses the camera plane", 0) + int(bad.sum())
    k = geo["ok"]
    face, eyes = _boxes(lm[idx][k])
    m = _STEP.match(folder.name)
    screen_mm = np.asarray(EVE_SCREEN_PX) * mmpp
    labels = {
        "pog_px": geo["pog_px"][k], "offset_mm": geo["offset_mm"][k], "gaze": geo["gaze"][k],
        "eye_center": origin[idx][k], "face_box": face, "eye_boxes": eyes,
        "screen_mm": np.tile(screen_mm, (int(k.sum()), 1)), "screen_px": np.tile(EVE_SCREEN_PX, (int(k.sum()), 1)),
    }
    return _Step(folder / f"{camera}.mp4", subject, int(m.group(1)) if m else -1, idx[k], n, labels)


def _open_video(path: Path) -> cv2.VideoCapture:
    if not path.is_file():
        raise DataError(f"{path}: missing (the step's video)")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise DataError(f"{path}: cannot open the video (truncated or not an MP4?)")
    return cap


def _decode(step: _Step, out: np.ndarray, at: int) -> None:
    """Decode the kept frames of one step into ``out[at:]`` (RGB, channel-first), every label frame read."""
    cap = _open_video(step.video)
    try:
        wanted = iter(step.frames.tolist())
        nxt, j = next(wanted, None), at
        h, w = out.shape[2:]
        for i in range(step.n_labels):
            # grab() for every frame keeps the position exact; retrieve() only the kept ones.
            if not cap.grab():
                raise DataError(f"{step.video}: the video ends after {i} frames, but its labels have "
                                f"{step.n_labels} (truncated, or shorter than {step.video.stem}.h5)")
            if i != nxt:
                continue
            ok, bgr = cap.retrieve()
            if not ok or bgr is None or bgr.ndim != 3:
                raise DataError(f"{step.video}: frame {i} cannot be decoded")
            if (bgr.shape[1], bgr.shape[0]) != step.size:
                raise DataError(f"{step.video}: frame {i} is {bgr.shape[1]}x{bgr.shape[0]}, the video says "
                                f"{step.size[0]}x{step.size[1]}")
            if (w, h) != step.size:
                bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
            out[j] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)
            j += 1
            nxt = next(wanted, None)
    finally:
        cap.release()


def read_eve(root: str | os.PathLike, *, split: str | None = None, camera: str = "webcam_c", stride: int = 30,
             width: int | None = None, participants: Iterable[str] | None = None,
             max_gib: float = 8.0) -> dict[str, np.ndarray]:
    """Read EVE participant folders into a ``frame`` view dict (see the module docstring for the layout).

    ``split``: train, val or test (None: train and val; test labels are withheld, so test is refused);
    ``camera``: one of :data:`CAMERAS`; ``stride``: every ``stride``-th video frame (default 30, one
    frame a second of the 30 fps webcams: neighbouring frames are near duplicates, and EVE's own loader
    already thins to 10 Hz); ``width``: resize frames to this width on decode (aspect kept; face and eye
    boxes scaled with them), so long videos fit in memory; ``participants``: folder names to read
    (e.g. ``["train01"]``); ``max_gib``: refuse to decode more than this many GiB of frames.

    Frames whose PoG, gaze-origin or landmark validity is 0 are skipped; the counts per reason are
    logged (logger ``workbench.data``). Returns ``image`` (N,3,H,W) uint8 RGB; ``pog_px``, ``pog_mm``,
    ``screen_mm``, ``screen_px``, ``offset_mm`` (N,2), ``face_box`` (N,4), ``eye_boxes`` (N,2,4),
    ``gaze``, ``eye_center`` (N,3) float32; ``subject`` (N,) int64 (trainNN -> NN, valNN -> 100+NN,
    testNN -> 200+NN); ``step`` (N,) the stepNNN number and ``frame_index`` (N,) the video frame, int64.
    """
    root = require_dir(root, "eve")
    if camera not in CAMERAS:
        raise DataError(f"{root}: unknown EVE camera {camera!r} (expected one of {', '.join(CAMERAS)})")
    if split is not None and split not in SPLIT_BASE:
        raise DataError(f"{root}: unknown EVE split {split!r} (expected train, val or test)")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise DataError(f"{root}: stride must be a positive integer, got {stride!r}")
    if width is not None and (isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 8):
        raise DataError(f"{root}: width must be an integer of at least 8 pixels, got {width!r}")
    folders = eve_participants(root, split)
    if participants is not None:
        names = set(participants)
        missing = names - {p.name for p, _, _ in folders}
        if missing:
            raise DataError(f"{root}: no participant folder {sorted(missing)[0]!r} in split {split or 'train+val'}")
        folders = [f for f in folders if f[0].name in names]
    if not folders:
        raise DataError(f"{root}: no EVE participant folders of split {split or 'train/val'} "
                        f"(expected trainNN/, valNN/ or testNN/ holding stepNNN_<type>_<name>/ folders)")
    skipped: dict[str, int] = {}
    steps: list[_Step] = []
    for folder, sp, num in folders:
        subs = sorted(p for p in folder.iterdir() if p.is_dir() and _STEP.match(p.name))
        for sub in subs:
            steps.append(_read_step(sub, camera, stride, SPLIT_BASE[sp] + num, skipped))
    if not steps:
        raise DataError(f"{folders[0][0]}: no stepNNN_<image|video|wikipedia>_<name>/ folders")
    for st in steps:
        if len(st.frames):
            cap = _open_video(st.video)
            st.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            cap.release()
            if min(st.size) <= 0:
                raise DataError(f"{st.video}: the video reports a frame size of {st.size[0]}x{st.size[1]}")
    steps = [st for st in steps if len(st.frames)]
    total = sum(len(s.frames) for s in steps)
    detail = ", ".join(f"{k}: {v}" for k, v in skipped.items() if v)
    if detail:
        logger.warning("%s: skipped %d of %d sampled %s frames (%s)", root, sum(skipped.values()),
                       total + sum(skipped.values()), camera, detail)
    if total == 0:
        raise DataError(f"{root}: no {camera} frame left to read (skipped: {detail or 'none sampled'})")
    sizes = {s.size for s in steps}
    if width is None and len(sizes) > 1:
        raise DataError(f"{root}: {camera} videos differ in size ({sorted(sizes)}); pass width= to resize on decode")
    w0, h0 = steps[0].size
    w, h = (w0, h0) if width is None else (int(width), max(1, int(round(h0 * width / w0))))
    gib = total * 3 * w * h / 2**30
    if gib > max_gib:
        raise DataError(f"{root}: {total} frames of {w}x{h} need {gib:.1f} GiB (limit {max_gib:g}); "
                        f"read fewer (participants=, a larger stride=) or smaller (width=) frames")
    image = np.empty((total, 3, h, w), np.uint8)
    at = 0
    for st in steps:
        _decode(st, image, at)
        sx, sy = w / st.size[0], h / st.size[1]
        st.labels["face_box"] = st.labels["face_box"] * np.array([sx, sy, sx, sy])
        st.labels["eye_boxes"] = st.labels["eye_boxes"] * np.array([sx, sy, sx, sy])
        at += len(st.frames)
    out: dict[str, np.ndarray] = {"image": image}
    for key in ("pog_px", "screen_mm", "screen_px", "offset_mm", "face_box", "eye_boxes", "gaze", "eye_center"):
        out[key] = np.concatenate([s.labels[key] for s in steps]).astype(np.float32)
    out["pog_mm"] = (out["pog_px"] * (out["screen_mm"] / out["screen_px"])).astype(np.float32)
    out["subject"] = np.concatenate([np.full(len(s.frames), s.subject, np.int64) for s in steps])
    out["step"] = np.concatenate([np.full(len(s.frames), s.step, np.int64) for s in steps])
    out["frame_index"] = np.concatenate([s.frames.astype(np.int64) for s in steps])
    return out


def _landmarks_from_boxes(face: np.ndarray, eyes: np.ndarray) -> np.ndarray:
    """(N,4) face and (N,2,4) eye boxes -> (N,68,2) points whose :func:`_boxes` are those boxes again.

    SynthGaze draws no 68-point face, so the writer stores outline points: the 56 non-eye points on the
    ellipse inside the face box shrunk by 1.2 (its four extremes on the edges), and each eye's six points
    on the rectangle inside its box less the padding (corners 36/39 and 42/45 at mid-height).
    """
    n = len(face)
    lm = np.zeros((n, 68, 2))
    c = (face[:, :2] + face[:, 2:]) / 2
    half = (face[:, 2:] - face[:, :2]) / 2.4
    ang = np.linspace(0, 2 * np.pi, 56, endpoint=False)  # 56 = 4 * 14: angles 0, 90, 180, 270 included
    ring = c[:, None] + half[:, None] * np.stack([np.cos(ang), np.sin(ang)], -1)[None]
    others = [i for i in range(68) if not 36 <= i < 48]
    lm[:, others] = ring
    for k, sl in enumerate(_EYES):
        box = eyes[:, k]
        w = (box[:, 2] - box[:, 0]) / 1.4
        x0, x1 = box[:, 0] + 0.2 * w, box[:, 2] - 0.2 * w
        y0, y1 = box[:, 1] + 0.25 * w, box[:, 3] - 0.25 * w
        cy = (y0 + y1) / 2
        xs = [x0, x0 + w / 3, x0 + 2 * w / 3, x1, x0 + 2 * w / 3, x0 + w / 3]
        ys = [cy, y0, y0, cy, y1, y1]
        lm[:, sl] = np.stack([np.stack(xs, -1), np.stack(ys, -1)], -1)
    return lm


def _write_group(f: h5py.File, key: str, data: np.ndarray) -> None:
    g = f.create_group(key)
    g.create_dataset("data", data=data.astype(np.float32))
    g.create_dataset("validity", data=np.ones(len(data), dtype=bool))


def write_eve(data: Mapping[str, Any], path: str | os.PathLike, *, split: str = "train", camera: str = "webcam_c",
              overwrite: bool = False) -> Path:
    """Write a ``frame`` view in EVE's layout: ``path/<split>NN/step001_video_synthgaze/<camera>.{mp4,h5,timestamps.txt}``.

    One participant folder per subject id ``NN`` (0..99, read back as NN for train, 100+NN for val). Uses
    ``image`` (N,3,H,W) uint8 RGB (written as an mp4v MP4, so pixels come back with MPEG loss),
    ``pog_px``, ``screen_mm``, ``screen_px`` (must be EVE's 1920x1080), ``offset_mm`` (N,2), ``face_box``
    (N,4), ``eye_boxes`` (N,2,4), ``eye_center`` (N,3) and ``subject`` (N,). The screen lies in the camera
    plane along the camera's axes, so ``camera_transformation`` is the translation to ``offset_mm``
    (constant per subject) and ``face_o`` is ``eye_center``; labels are float32 with validity 1;
    ``camera_matrix`` is SynthGaze's default camera; timestamps are ns at the camera's frame rate.
    """
    from workbench.data.synth import SynthConfig

    path = check_writable(path, overwrite)
    if split not in SPLIT_BASE:
        raise DataError(f"{path}: cannot write eve: split must be train, val or test, got {split!r}")
    if camera not in CAMERAS:
        raise DataError(f"{path}: cannot write eve: unknown camera {camera!r} (expected one of {', '.join(CAMERAS)})")
    keys = ["image", "pog_px", "screen_mm", "screen_px", "offset_mm", "face_box", "subject"]
    d = check_view(data, "frame", keys, path, "eve")
    n = len(d["image"])
    # EVE's label files also need what the frame view leaves optional: the gaze origin and eye boxes.
    for key, shape in (("eye_center", (n, 3)), ("eye_boxes", (n, 2, 4))):
        if key not in data:
            raise DataError(f"{path}: cannot write eve: the data has no {key!r} (EVE stores face_o and landmarks)")
        if np.shape(data[key]) != shape:
            raise DataError(f"{path}: cannot write eve: {key!r} is {np.shape(data[key])}, expected {shape}")
    origin = np.asarray(data["eye_center"], dtype=np.float64)
    d["eye_boxes"] = np.asarray(data["eye_boxes"], dtype=np.float64)
    for key in ("pog_px", "screen_mm", "offset_mm", "face_box", "eye_boxes"):
        check_finite(d[key], path, f"cannot write eve: {key!r}")
    check_finite(origin, path, "cannot write eve: 'eye_center'")
    if not np.allclose(d["screen_px"], EVE_SCREEN_PX):
        raise DataError(f"{path}: cannot write eve: screen_px is {d['screen_px'][0].tolist()}, EVE's screen is 1920x1080")
    subjects = d["subject"]
    if subjects.min() < 0 or subjects.max() > 99:
        raise DataError(f"{path}: cannot write eve: subject ids must be 0..99 (participant folders NN), "
                        f"got {int(subjects.min())}..{int(subjects.max())}")
    _, _, h, w = d["image"].shape
    cfg = SynthConfig()
    fps = _FPS.get(camera, 30.0)
    K = np.array([[cfg.focal_ratio * w, 0, w / 2], [0, cfg.focal_ratio * w, h / 2], [0, 0, 1]])
    with atomic_path(path) as tmp:
        for s in np.unique(subjects):
            rows = np.flatnonzero(subjects == s)
            mmpp = d["screen_mm"][rows].astype(np.float64) / EVE_SCREEN_PX
            off = d["offset_mm"][rows].astype(np.float64)
            if np.ptp(mmpp, 0).max() > 1e-6 or np.ptp(off, 0).max() > 1e-3:
                raise DataError(f"{path}: cannot write eve: subject {int(s)} has more than one screen size or "
                                "offset (EVE has one camera_transformation per step)")
            T = np.eye(4)
            T[:2, 3] = off[0]
            step = tmp / f"{split}{int(s):02d}" / "step001_video_synthgaze"
            step.mkdir(parents=True)
            writer = cv2.VideoWriter(str(step / f"{camera}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            if not writer.isOpened():
                raise DataError(f"{step / f'{camera}.mp4'}: OpenCV cannot write an mp4v video here")
            try:
                for i in rows:
                    writer.write(np.ascontiguousarray(cv2.cvtColor(d["image"][i].transpose(1, 2, 0), cv2.COLOR_RGB2BGR)))
            finally:
                writer.release()
            with h5py.File(step / f"{camera}.h5", "w") as f:
                f.create_dataset("camera_matrix", data=K)
                f.create_dataset("camera_transformation", data=T)
                f.create_dataset("inv_camera_transformation", data=np.linalg.inv(T))
                f.create_dataset("millimeters_per_pixel", data=mmpp[0])
                f.create_dataset("pixels_per_millimeter", data=1.0 / mmpp[0])
                _write_group(f, "face_PoG_tobii", d["pog_px"][rows])
                _write_group(f, "face_o", origin[rows])
                _write_group(f, "facial_landmarks", _landmarks_from_boxes(d["face_box"][rows].astype(np.float64),
                                                                          d["eye_boxes"][rows].astype(np.float64)))
            ts = (np.arange(len(rows)) * (1e9 / fps)).astype(np.int64)
            np.savetxt(step / f"{camera}.timestamps.txt", ts, fmt="%d")
    return path
