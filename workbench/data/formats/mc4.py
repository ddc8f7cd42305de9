"""Momenta Challenge 4 layout (view ``mc4``).

::

    root/head/<name>.png    grey face crops (the head image; the write-up centre-crops 224x224 from it)
    root/l_eye/<name>.png   grey left-eye crops
    root/r_eye/<name>.png   grey right-eye crops
    root/head_label.txt     3-line records: <name> (no ``.png``), longitude, latitude (degrees)
    root/eye_label.txt      the same for the eye-in-head angles
    root/gaze_label.txt     the same for the gaze
  the test split (``MC4/test``) has the three image folders and no label files.

Where this comes from: the write-up's own training script (a public MC4 script found through the code
index; its repository name was not recorded there): ``GazeDataset(data_dir, mode)`` lists
``os.listdir(join(data_dir, "head"))``, reads ``head/``, ``l_eye/``, ``r_eye/`` with
``cv2.IMREAD_GRAYSCALE``, and only in ``mode == "train"`` reads the three label files with ``load_gt``
(a name line + ``".png"``, then a float longitude line and a float latitude line); ``get_test_loader`` builds
``GazeDataset("/data/mc_data/MC4/test", "test")`` with no labels; ``output_predict`` writes ``pred.txt`` as
``name`` (extension stripped), ``"%0.3f"`` longitude, ``"%0.3f"`` latitude per image.

Subjects: no public source says how MC4 names encode the person (the write-up itself validates on a
random 10% of the samples, ``get_train_valid_loader(valid_size=0.1)``), so this is an assumption: a name
``<prefix>_<rest>`` whose prefix is letters followed by digits (``s012_000042``, ``p03_17``, ``7_0001``)
belongs to subject int(digits); any other name reads as subject -1 (then training splits at random, as
the write-up does). The writer names samples ``s{subject:03d}_{index:06d}``.

Labelled folders keep the order of ``head_label.txt``; the test split keeps the sorted names of ``head/``.
Without label files a folder is refused unless ``unlabelled=True`` (what ``workbench predict`` passes); its
labels are then NaN. Every sample's ``name`` is returned too, for the prediction file
(:func:`write_mc4_predictions`, :func:`read_mc4_predictions`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from workbench.data.formats._common import (
    check_finite,
    check_view,
    check_writable,
    parse_float,
    require_dir,
    require_file,
    subject_name,
)
from workbench.data.formats._images import read_images, write_png
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_mc4", "write_mc4", "read_mc4_predictions", "write_mc4_predictions", "name_subject"]

_IMAGES = (("head", "face"), ("l_eye", "l_eye"), ("r_eye", "r_eye"))  # folder, key
_LABELS = (("head_label.txt", "head_lola"), ("eye_label.txt", "eye_lola"), ("gaze_label.txt", "gaze_lola"))


_SUBJECT_RE = re.compile(r"^[A-Za-z]*(\d+)_.")


def name_subject(name: str) -> int:
    """Subject id of an MC4 sample name under the documented assumption (``s012_000042`` -> 12), else -1."""
    m = _SUBJECT_RE.match(name)
    return int(m.group(1)) if m else -1


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


def _image_names(root: Path) -> list[str]:
    """Sorted names of the test split: the stems of ``head/*.png``, which both eye folders must match."""
    names = sorted(p.stem for p in (root / "head").glob("*.png"))
    if not names:
        raise DataError(f"{root / 'head'}: no PNG images")
    for folder in ("l_eye", "r_eye"):
        fdir = root / folder
        if not fdir.is_dir():
            raise DataError(f"{fdir}: folder is missing (MC4 keeps {folder} images there)")
        have = {p.stem for p in fdir.glob("*.png")}
        extra, missing = sorted(have - set(names)), [n for n in names if n not in have]
        if missing:
            raise DataError(f"{fdir / (missing[0] + '.png')}: missing (head/ has {missing[0]}.png)")
        if extra:
            raise DataError(f"{fdir / (extra[0] + '.png')}: has no head/{extra[0]}.png")
    return names


def read_mc4(root: str | os.PathLike, *, unlabelled: bool = False) -> dict[str, np.ndarray]:
    """Read an MC4 folder into an ``mc4`` view dict.

    Returns ``face``, ``l_eye``, ``r_eye`` (N,1,H,W) uint8; ``head_lola``, ``eye_lola``, ``gaze_lola``
    (N,2) float32 degrees (lo, la; NaN for the unlabelled test split); ``subject`` (N,) int64 (see the
    module docstring; -1 where the name carries none); ``name`` (N,) str. A folder without label files is
    refused unless ``unlabelled=True``.
    """
    root = require_dir(root, "mc4")
    present = [file for file, _ in _LABELS if (root / file).exists()]
    if not present:
        if not unlabelled:
            raise DataError(
                f"{root}: MC4 test split without labels (no {', '.join(f for f, _ in _LABELS)}): "
                "`workbench predict` can read it, training and evaluation need the labels"
            )
        if not (root / "head").is_dir():
            raise DataError(f"{root / 'head'}: folder is missing (MC4 keeps face images there)")
        names = _image_names(root)
        nan = np.full((len(names), 2), np.nan, dtype=np.float32)
        labels = {key: nan.copy() for _, key in _LABELS}
    else:
        labels, names = _read_labels(root)
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
    out["subject"] = np.asarray([name_subject(n) for n in names], dtype=np.int64)
    out["name"] = np.asarray(names, dtype=str)
    return out


def _read_labels(root: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The three label files, aligned to the order of ``head_label.txt`` -> ({key: (N,2)}, names)."""
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
    return labels, names


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
