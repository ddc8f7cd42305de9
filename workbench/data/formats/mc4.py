"""Momenta Challenge 4 layout (view ``mc4``).

::

    root/head/<name>.png    grey face crops
    root/l_eye/<name>.png   grey left-eye crops
    root/r_eye/<name>.png   grey right-eye crops
    root/head_label.txt     3-line records: <name>, longitude, latitude (degrees, %0.3f)
    root/eye_label.txt      the same for the eye-in-head angles
    root/gaze_label.txt     the same for the gaze

The layout has no subject field: the writer names samples ``s{subject:03d}_{index:06d}`` and the reader
parses the id back from such names (else -1). The write-up's prediction file uses the same 3-line
records (:func:`write_mc4_predictions`, :func:`read_mc4_predictions`). Samples keep the order of
``head_label.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from workbench.data.formats._common import (
    check_finite,
    check_view,
    check_writable,
    parse_float,
    parse_subject,
    require_dir,
    require_file,
    subject_name,
)
from workbench.data.formats._images import read_images, write_png
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_mc4", "write_mc4", "read_mc4_predictions", "write_mc4_predictions"]

_IMAGES = (("head", "face"), ("l_eye", "l_eye"), ("r_eye", "r_eye"))  # folder, key
_LABELS = (("head_label.txt", "head_lola"), ("eye_label.txt", "eye_lola"), ("gaze_label.txt", "gaze_lola"))


def _sample_name(subject: int, index: int) -> str:
    return f"{subject_name(subject)}_{index:06d}" if subject >= 0 else f"{index:06d}"


def _records_text(names: Sequence[str], lola: np.ndarray) -> str:
    return "".join(f"{n}\n{lo:0.3f}\n{la:0.3f}\n" for n, (lo, la) in zip(names, lola.tolist()))


def _read_records(path: Path) -> tuple[list[str], np.ndarray]:
    """Parse 3-line records (name, longitude, latitude) -> names, (N,2) float32 degrees."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if len(lines) % 3:
        raise DataError(
            f"{path}: {len(lines)} non-empty lines is not a whole number of 3-line records (name, longitude, latitude)"
        )
    names, values, rows, seen = [], [], [], {}
    for k in range(0, len(lines), 3):
        (ln, name), (l1, lo), (l2, la) = lines[k : k + 3]
        if name in seen:
            raise DataError(f"{path}: name {name!r} appears twice (lines {seen[name]} and {ln})")
        seen[name] = ln
        names.append(name)
        values.append((parse_float(lo, str(path), l1), parse_float(la, str(path), l2)))
        rows.append(f"{name!r} (line {ln})")
    arr = np.asarray(values, dtype=np.float32).reshape(-1, 2)
    check_finite(arr, path, "record", row_names=rows)
    return names, arr


def _check_names(names: Sequence[str], where: Path) -> list[str]:
    names = [str(n) for n in names]
    for n in names:
        if not n.strip() or n != n.strip() or "\n" in n or "\r" in n:
            raise DataError(f"{where}: cannot write the name {n!r}: names must be one line without surrounding spaces")
    if len(set(names)) != len(names):
        raise DataError(f"{where}: cannot write duplicate sample names")
    return names


def write_mc4(data: Mapping[str, Any], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write an ``mc4`` view: ``face``/``l_eye``/``r_eye`` (N,1,H,W) uint8 as grey PNGs, and the
    ``head_lola``/``eye_lola``/``gaze_lola`` (N,2) degrees as 3-line label files (``%0.3f``).

    ``subject`` (N,) is encoded in the sample names. Other keys are ignored. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    keys = [k for _, k in _IMAGES] + [k for _, k in _LABELS] + ["subject"]
    d = check_view(data, "mc4", keys, path, "mc4")
    for _, key in _LABELS:
        check_finite(d[key], path, f"cannot write mc4: {key!r}")
    names = [_sample_name(int(s), i) for i, s in enumerate(d["subject"])]
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for folder, key in _IMAGES:
            (tmp / folder).mkdir()
            for name, img in zip(names, d[key]):
                write_png(tmp / folder / f"{name}.png", img)
        for file, key in _LABELS:
            (tmp / file).write_text(_records_text(names, d[key]), encoding="utf-8")
    return path


def read_mc4(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an MC4 folder into an ``mc4`` view dict.

    Returns ``face``, ``l_eye``, ``r_eye`` (N,1,H,W) uint8; ``head_lola``, ``eye_lola``, ``gaze_lola``
    (N,2) float32 degrees (lo, la); ``subject`` (N,) int64 (-1 where the name carries no id).
    """
    root = require_dir(root, "mc4")
    labels: dict[str, np.ndarray] = {}
    names: list[str] = []
    for file, key in _LABELS:
        path = require_file(root / file, "MC4 3-line label records")
        these, values = _read_records(path)
        if not names:
            names = these
        elif these != names:
            index = {n: i for i, n in enumerate(these)}
            missing = [n for n in names if n not in index] or [n for n in these if n not in set(names)]
            if missing or len(these) != len(names):
                raise DataError(
                    f"{path}: names differ from {_LABELS[0][0]} ({len(these)} vs {len(names)} records; "
                    f"first difference: {missing[0]!r})"
                )
            values = values[[index[n] for n in names]]
        labels[key] = values
    if not names:
        raise DataError(f"{root / _LABELS[0][0]}: no records")
    out: dict[str, np.ndarray] = {}
    for folder, key in _IMAGES:
        fdir = root / folder
        if not fdir.is_dir():
            raise DataError(f"{fdir}: folder is missing (MC4 keeps {key} images there)")
        n_png = sum(1 for _ in fdir.glob("*.png"))
        if n_png != len(names):
            raise DataError(f"{fdir}: has {n_png} PNG images but {_LABELS[0][0]} has {len(names)} records")
        out[key] = read_images([fdir / f"{n}.png" for n in names], channels=1)
    out.update(labels)
    out["subject"] = np.asarray([parse_subject(n) for n in names], dtype=np.int64)
    return out


def write_mc4_predictions(
    path: str | os.PathLike, names: Sequence[str], gaze_lola: Any, *, overwrite: bool = False
) -> Path:
    """Write the write-up's prediction file: per sample ``name``, longitude, latitude (``%0.3f`` degrees).

    ``gaze_lola`` is (N,2) degrees. The file is written atomically. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    names = _check_names(names, path)
    lola = np.asarray(gaze_lola, dtype=np.float64)
    if lola.shape != (len(names), 2):
        raise DataError(f"{path}: cannot write predictions: gaze_lola is {lola.shape}, expected ({len(names)},2)")
    check_finite(lola, path, "cannot write predictions: gaze_lola", row_names=[repr(n) for n in names])
    with atomic_path(path) as tmp:
        tmp.write_text(_records_text(names, lola), encoding="utf-8")
    return path


def read_mc4_predictions(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """Read a prediction file -> (names, (N,2) float32 gaze lo/la in degrees)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prediction file does not exist")
    return _read_records(path)
