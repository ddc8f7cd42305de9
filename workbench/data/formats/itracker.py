"""iTracker-style layout of the explainability write-up (view ``itracker``).

::

    root/{train,val,test}/<subject>/NNNNN_v0_left.png   view 0, image-left eye (RGB)
                                    NNNNN_v0_right.png  view 0, image-right eye
                                    NNNNN_v1_left.png   view 1, image-left eye
                                    NNNNN_v1_right.png  view 1, image-right eye
                                    labels.csv          sample,pog_x,pog_y (screen pixels)

Subject folders are the zero-padded id (``00007``). Samples come back grouped by subject (ascending),
in the order of each ``labels.csv``.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.data.formats._common import (
    check_finite,
    check_view,
    check_writable,
    float_text,
    parse_float,
    require_dir,
)
from workbench.data.formats._images import read_images, write_png
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_itracker", "write_itracker", "default_splits", "SPLITS"]

SPLITS = ("train", "val", "test")
_EYES = ("v0_left", "v0_right", "v1_left", "v1_right")  # order of the `eyes` axis


def default_splits(subjects: Any) -> dict[int, str]:
    """Deterministic subject -> split: about 10% of the subjects (at least one each, from three subjects
    on) go to ``test`` (highest ids), as many to ``val`` (next highest), the rest to ``train``."""
    ids = sorted({int(s) for s in np.asarray(subjects).ravel()})
    n = len(ids)
    n_held = 0 if n < 2 else max(1, round(0.1 * n))
    n_test = n_held if n >= 3 else 0
    n_val = n_held
    out = {s: "train" for s in ids[: n - n_val - n_test]}
    out.update({s: "val" for s in ids[n - n_val - n_test : n - n_test]})
    out.update({s: "test" for s in ids[n - n_test :]})
    return out


def write_itracker(
    data: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    splits: Mapping[int, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an ``itracker`` view: ``eyes`` (N,4,3,S,S) uint8 as four PNGs per sample, ``pog_px`` (N,2) in
    a ``labels.csv`` per subject folder, ``subject`` (N,) as the folder name.

    ``splits`` maps subject -> "train" | "val" | "test" (default :func:`default_splits`). Returns ``path``.
    """
    path = check_writable(path, overwrite)
    d = check_view(data, "itracker", ["eyes", "pog_px", "subject"], path, "itracker")
    check_finite(d["pog_px"], path, "cannot write itracker: 'pog_px'")
    if (d["subject"] < 0).any():
        raise DataError(f"{path}: cannot write itracker: subject ids must be >= 0 (they name the folders)")
    splits = default_splits(d["subject"]) if splits is None else {int(k): v for k, v in splits.items()}
    for s in np.unique(d["subject"]):
        if splits.get(int(s)) not in SPLITS:
            raise DataError(
                f"{path}: cannot write itracker: subject {int(s)} has split {splits.get(int(s))!r}, "
                f"expected one of {', '.join(SPLITS)}"
            )
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for split in SPLITS:
            (tmp / split).mkdir()
        for s in np.unique(d["subject"]):
            folder = tmp / splits[int(s)] / f"{int(s):05d}"
            folder.mkdir()
            rows = ["sample,pog_x,pog_y\n"]
            for j, i in enumerate(np.flatnonzero(d["subject"] == s)):
                for k, eye in enumerate(_EYES):
                    write_png(folder / f"{j:05d}_{eye}.png", d["eyes"][i, k])
                x, y = d["pog_px"][i]
                rows.append(f"{j:05d},{float_text(x)},{float_text(y)}\n")
            (folder / "labels.csv").write_text("".join(rows), encoding="utf-8")
    return path


def _read_labels(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: missing (each subject folder needs sample,pog_x,pog_y labels)") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != ["sample", "pog_x", "pog_y"]:
        raise DataError(f"{path}: expected the header sample,pog_x,pog_y, got {','.join(header or [])!r}")
    samples, values = [], []
    for row in reader:
        line = reader.line_num
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            raise DataError(f"{path}: line {line}: expected 3 columns (sample,pog_x,pog_y), got {len(row)}")
        samples.append(row[0].strip())
        values.append((parse_float(row[1], str(path), line), parse_float(row[2], str(path), line)))
    pog = np.asarray(values, dtype=np.float32).reshape(-1, 2)
    check_finite(pog, path, "pog of sample", row_names=[repr(s) for s in samples])
    return samples, pog


def _subject_id(name: str) -> int:
    try:
        return int(name)
    except ValueError:
        return -1


def read_itracker(root: str | os.PathLike, split: str = "train") -> dict[str, np.ndarray]:
    """Read one split (``train``, ``val`` or ``test``) into an ``itracker`` view dict.

    Returns ``eyes`` (N,4,3,S,S) uint8 in the order [v0 left, v0 right, v1 left, v1 right], ``pog_px``
    (N,2) float32 screen pixels and ``subject`` (N,) int64 (the folder name; -1 if not a number).
    """
    root = require_dir(root, "itracker")
    sdir = root / str(split)
    if split not in SPLITS or not sdir.is_dir():
        have = [s for s in SPLITS if (root / s).is_dir()]
        raise DataError(f"{sdir}: missing split folder (splits in {root}: {', '.join(have) if have else 'none'})")
    folders = sorted((p for p in sdir.iterdir() if p.is_dir()), key=lambda p: (_subject_id(p.name), p.name))
    eyes, pogs, subjects = [], [], []
    size: tuple[int, int] | None = None
    for folder in folders:
        labels = folder / "labels.csv"
        samples, pog = _read_labels(labels)
        n_img = sum(1 for _ in folder.glob(f"*_{_EYES[0]}.png"))
        if n_img != len(samples):
            raise DataError(f"{labels}: has {len(samples)} rows but {folder.name}/ has {n_img} samples of eye images")
        if not samples:
            continue
        paths = [folder / f"{s}_{eye}.png" for s in samples for eye in _EYES]
        imgs = read_images(paths, 3, size)
        size = imgs.shape[2:]
        eyes.append(imgs.reshape(len(samples), 4, *imgs.shape[1:]))
        pogs.append(pog)
        subjects.append(np.full(len(samples), _subject_id(folder.name), dtype=np.int64))
    if not eyes:
        raise DataError(f"{sdir}: no samples (no subject folder with labels.csv rows)")
    return {"eyes": np.concatenate(eyes), "pog_px": np.concatenate(pogs), "subject": np.concatenate(subjects)}
