"""Ego4D Looking-At-Me layout (view ``track``).

::

    root/face_imgs/<uid>/<trackid>/face_<frame>.jpg   face crops (JPEG, quality 95)
    root/labels.csv                                   uid,track,frame,label  (one row per frame)
    root/priors.csv  (optional)                       uid,track,frame,yaw,pitch,roll,lm0x,lm0y,...,lm4x,lm4y

A sample is a 7-frame track; its ``label`` is the centre frame's. ``uid`` is ``s{subject:03d}`` so subject
ids round-trip (other uids read as subject -1). Without ``priors.csv`` the head pose and landmarks are
NaN. Tracks keep the order in which they first appear in ``labels.csv``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.data.formats._common import (
    check_finite,
    check_view,
    check_writable,
    float_text,
    parse_float,
    parse_subject,
    require_dir,
    require_file,
    subject_name,
)
from workbench.data.formats._images import read_images, write_jpeg
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_lam", "write_lam", "TRACK_LEN"]

TRACK_LEN = 7
_CENTRE = TRACK_LEN // 2
_PRIOR_COLS = ["yaw", "pitch", "roll"] + [f"lm{i}{c}" for i in range(5) for c in "xy"]
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


def write_lam(
    data: Mapping[str, Any], path: str | os.PathLike, *, quality: int = 95, overwrite: bool = False
) -> Path:
    """Write a ``track`` view: ``frames`` (N,7,3,S,S) uint8 as JPEGs, ``frame_labels`` (N,7) in
    ``labels.csv``, and ``head_pose`` (N,7,3) / ``landmarks`` (N,7,5,2) in ``priors.csv``.

    Priors are written when both keys are present and finite; all-NaN priors are left out (the reader
    then returns NaN again). Track ``i`` gets id ``NNNNNN`` and frames ``7*i .. 7*i+6``. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    d = check_view(data, "track", ["frames", "frame_labels", "subject"], path, "lam")
    if not np.isin(d["frame_labels"], (0, 1)).all():
        raise DataError(f"{path}: cannot write lam: frame_labels must be 0 or 1")
    if "label" in data:
        label = check_view(data, "track", ["label"], path, "lam")["label"]
        if (label != d["frame_labels"][:, _CENTRE]).any():
            i = int(np.flatnonzero(label != d["frame_labels"][:, _CENTRE])[0])
            raise DataError(f"{path}: cannot write lam: label of track {i} differs from its centre frame's label")
    priors = None
    if "head_pose" in data and "landmarks" in data:
        p = check_view(data, "track", ["head_pose", "landmarks"], path, "lam")
        flat = np.concatenate([p["head_pose"].reshape(-1, 3), p["landmarks"].reshape(-1, 10)], axis=1)
        if not np.isnan(flat).all():
            n = len(p["head_pose"])
            what = "cannot write lam: priors (head_pose, landmarks) of"
            check_finite(flat.reshape(n, -1), path, what, [f"track {i}" for i in range(n)])
            priors = flat.reshape(len(p["head_pose"]), TRACK_LEN, 13)
    if (d["subject"] < 0).any():
        raise DataError(f"{path}: cannot write lam: subject ids must be >= 0 (they name the uid folders)")

    with atomic_path(path) as tmp:
        (tmp / "face_imgs").mkdir(parents=True)
        labels = ["uid,track,frame,label\n"]
        prior_rows = ["uid,track,frame," + ",".join(_PRIOR_COLS) + "\n"]
        for i in range(len(d["frames"])):
            uid, track = subject_name(d["subject"][i]), f"{i:06d}"
            folder = tmp / "face_imgs" / uid / track
            folder.mkdir(parents=True)
            for k in range(TRACK_LEN):
                frame = TRACK_LEN * i + k
                write_jpeg(folder / f"face_{frame}.jpg", d["frames"][i, k], quality=quality)
                labels.append(f"{uid},{track},{frame},{int(d['frame_labels'][i, k])}\n")
                if priors is not None:
                    prior_rows.append(f"{uid},{track},{frame}," + ",".join(float_text(v) for v in priors[i, k]) + "\n")
        (tmp / "labels.csv").write_text("".join(labels), encoding="utf-8")
        if priors is not None:
            (tmp / "priors.csv").write_text("".join(prior_rows), encoding="utf-8")
    return path


def _csv_rows(path: Path, columns: list[str]) -> list[tuple[int, list[str]]]:
    """(line number, cells) of a CSV whose header starts with ``columns``."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip() for h in next(reader, [])]
    if header[: len(columns)] != columns:
        raise DataError(f"{path}: expected the header {','.join(columns)}, got {','.join(header)!r}")
    rows = []
    for row in reader:
        if not row or not "".join(row).strip():
            continue
        if len(row) < len(columns):
            raise DataError(f"{path}: line {reader.line_num}: expected {len(columns)} columns, got {len(row)}")
        rows.append((reader.line_num, [c.strip() for c in row]))
    return rows


def _frame_number(path: Path, line: int, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DataError(f"{path}: line {line}: frame {text!r} is not an integer") from None


def read_lam(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a Looking-At-Me folder into a ``track`` view dict.

    Returns ``frames`` (N,7,3,S,S) uint8, ``label`` (N,) int64 (centre frame), ``frame_labels`` (N,7)
    int64, ``head_pose`` (N,7,3) float32 degrees (yaw, pitch, roll), ``landmarks`` (N,7,5,2) float32
    in [0,1] of the crop (both NaN without ``priors.csv``), ``subject`` (N,) int64.
    """
    root = require_dir(root, "lam")
    labels_path = require_file(root / "labels.csv", "per-frame looking-at-me labels")
    tracks: dict[tuple[str, str], dict[int, int]] = {}
    for line, row in _csv_rows(labels_path, ["uid", "track", "frame", "label"]):
        uid, track, frame, label = row[:4]
        if not _NAME_RE.match(uid) or not _NAME_RE.match(track):
            raise DataError(f"{labels_path}: line {line}: bad uid/track {uid!r}/{track!r}")
        if label not in ("0", "1"):
            raise DataError(f"{labels_path}: line {line}: label {label!r} is not 0 or 1")
        frames = tracks.setdefault((uid, track), {})
        f = _frame_number(labels_path, line, frame)
        if f in frames:
            raise DataError(f"{labels_path}: line {line}: frame {f} of track {uid}/{track} appears twice")
        frames[f] = int(label)
    if not tracks:
        raise DataError(f"{labels_path}: no rows")
    for (uid, track), frames in tracks.items():
        if len(frames) != TRACK_LEN:
            raise DataError(f"{labels_path}: track {uid}/{track} has {len(frames)} frames, expected {TRACK_LEN}")
        folder = root / "face_imgs" / uid / track
        n_img = sum(1 for _ in folder.glob("face_*.jpg")) if folder.is_dir() else 0
        if n_img != TRACK_LEN:
            raise DataError(
                f"{folder}: has {n_img} face_*.jpg images but {labels_path.name} has {TRACK_LEN} rows for it"
            )

    keys = list(tracks)
    order = [sorted(tracks[k]) for k in keys]
    paths = [root / "face_imgs" / uid / track / f"face_{f}.jpg" for (uid, track), fs in zip(keys, order) for f in fs]
    imgs = read_images(paths, 3)
    n = len(keys)
    frame_labels = np.asarray([[tracks[k][f] for f in fs] for k, fs in zip(keys, order)], dtype=np.int64)
    out = {
        "frames": imgs.reshape(n, TRACK_LEN, *imgs.shape[1:]),
        "label": frame_labels[:, _CENTRE].copy(),
        "frame_labels": frame_labels,
        "head_pose": np.full((n, TRACK_LEN, 3), np.nan, dtype=np.float32),
        "landmarks": np.full((n, TRACK_LEN, 5, 2), np.nan, dtype=np.float32),
        "subject": np.asarray([parse_subject(uid) for uid, _ in keys], dtype=np.int64),
    }
    priors_path = root / "priors.csv"
    if priors_path.is_file():
        _read_priors(priors_path, keys, order, out)
    return out


def _read_priors(path: Path, keys: list[tuple[str, str]], order: list[list[int]], out: dict[str, np.ndarray]) -> None:
    index = {(k, f): (i, j) for i, (k, fs) in enumerate(zip(keys, order)) for j, f in enumerate(fs)}
    values = np.full((len(keys), TRACK_LEN, 13), np.nan, dtype=np.float32)
    seen = np.zeros((len(keys), TRACK_LEN), dtype=bool)
    for line, row in _csv_rows(path, ["uid", "track", "frame", *_PRIOR_COLS]):
        f = _frame_number(path, line, row[2])
        pos = index.get(((row[0], row[1]), f))
        if pos is None:
            continue  # priors of frames without labels are not part of any sample
        vals = [parse_float(c, str(path), line) for c in row[3:16]]
        if not np.isfinite(vals).all():
            raise DataError(f"{path}: line {line}: priors of {row[0]}/{row[1]} frame {f} are not finite")
        values[pos] = vals
        seen[pos] = True
    if not seen.all():
        i, j = map(int, np.argwhere(~seen)[0])
        (uid, track), f = keys[i], order[i][j]
        raise DataError(f"{path}: no row for {uid}/{track} frame {f} (priors must cover every labelled frame)")
    out["head_pose"] = values[..., :3].copy()
    out["landmarks"] = values[..., 3:].reshape(len(keys), TRACK_LEN, 5, 2).copy()
