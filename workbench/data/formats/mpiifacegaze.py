"""MPIIFaceGaze layouts of the full-face write-up (view ``face``).

``mpiifacegaze`` (the normalized release): one HDF5 ``pNN.mat`` per subject with ``Data/data``
(N,3,H,W) uint8 and ``Data/label`` (N,16) float32 = gaze pitch/yaw (0-1), head pitch/yaw (2-3),
5 landmarks x,y (4-13), zeros (14-15).

``mpiifacegaze-pre`` (the write-up's preprocessed form): ``pNN/NNNNN.png`` (RGB) plus ``pNN/labels.dict``,
a pickled dict ``{"00000.png": {"gaze": (2,), "head": (2,), "landmarks": (5,2)}, ...}`` read with
:func:`workbench.data.safe_pickle.safe_load`.

Neither layout stores eye boxes: readers return ``eye_boxes`` as NaN. Samples come back grouped by
subject (ascending), in their written order within a subject.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from workbench.data.formats._common import check_finite, check_view, check_writable, require_dir, require_file
from workbench.data.formats._images import read_images, write_png
from workbench.data.safe_pickle import safe_load
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_mpiifacegaze", "write_mpiifacegaze", "read_mpiifacegaze_pre", "write_mpiifacegaze_pre"]

_KEYS = ["image", "gaze_pitchyaw", "head_pitchyaw", "landmarks", "subject"]


def _checked(data: Mapping[str, Any], path: Path, fmt: str) -> dict[str, np.ndarray]:
    d = check_view(data, "face", _KEYS, path, fmt)
    for key in ("gaze_pitchyaw", "head_pitchyaw", "landmarks"):
        check_finite(d[key], path, f"cannot write {fmt}: {key!r}")
    if (d["subject"] < 0).any():
        raise DataError(f"{path}: cannot write {fmt}: subject ids must be >= 0 (they name the pNN files)")
    return d


def _select(found: dict[int, Path], subjects: Iterable[int] | None, root: Path, pattern: str) -> list[tuple[int, Path]]:
    if subjects is None:
        return sorted(found.items())
    out = []
    for s in subjects:
        if int(s) not in found:
            raise DataError(f"{root / pattern.format(int(s))}: missing (subject {int(s)} was selected)")
        out.append((int(s), found[int(s)]))
    return out


def _result(images: list, gaze: list, head: list, lms: list, subj: list) -> dict[str, np.ndarray]:
    n = sum(len(g) for g in gaze)
    return {
        "image": np.concatenate(images),
        "gaze_pitchyaw": np.concatenate(gaze).astype(np.float32),
        "head_pitchyaw": np.concatenate(head).astype(np.float32),
        "landmarks": np.concatenate(lms).astype(np.float32),
        "eye_boxes": np.full((n, 2, 4), np.nan, dtype=np.float32),
        "subject": np.concatenate(subj).astype(np.int64),
    }


# ----------------------------------------------------------------------------------------------------
# mpiifacegaze: pNN.mat (HDF5)
# ----------------------------------------------------------------------------------------------------


def write_mpiifacegaze(data: Mapping[str, Any], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a ``face`` view as ``path/pNN.mat`` files, one per subject.

    Uses ``image`` (N,3,H,W) uint8, ``gaze_pitchyaw`` and ``head_pitchyaw`` (N,2), ``landmarks`` (N,5,2)
    and ``subject`` (N,); other keys are ignored. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    d = _checked(data, path, "mpiifacegaze")
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for s in np.unique(d["subject"]):
            idx = np.flatnonzero(d["subject"] == s)
            label = np.zeros((len(idx), 16), dtype=np.float32)
            label[:, 0:2] = d["gaze_pitchyaw"][idx]
            label[:, 2:4] = d["head_pitchyaw"][idx]
            label[:, 4:14] = d["landmarks"][idx].reshape(len(idx), 10)
            with h5py.File(tmp / f"p{int(s):02d}.mat", "w") as f:
                f.create_dataset("Data/data", data=d["image"][idx])
                f.create_dataset("Data/label", data=label)
    return path


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            if "Data/data" not in f or "Data/label" not in f:
                raise DataError(f"{path}: has no Data/data and Data/label datasets (not an MPIIFaceGaze file)")
            data, label = f["Data/data"], f["Data/label"]
            if data.ndim != 4 or data.shape[1] != 3 or data.dtype != np.uint8:
                raise DataError(f"{path}: Data/data is {data.shape} {data.dtype}, expected (N,3,H,W) uint8 images")
            if label.ndim != 2 or label.shape[1] < 14:
                raise DataError(f"{path}: Data/label is {label.shape}, expected (N,16)")
            if label.shape[0] != data.shape[0]:
                raise DataError(
                    f"{path}: Data/label has {label.shape[0]} rows but Data/data has {data.shape[0]} images"
                )
            return data[()], np.asarray(label[()], dtype=np.float32)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises OSError/KeyError/... on damaged files
        msg = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read HDF5 .mat file ({msg})") from None


def read_mpiifacegaze(root: str | os.PathLike, *, subjects: Iterable[int] | None = None) -> dict[str, np.ndarray]:
    """Read ``root/pNN.mat`` files (all, or the selected ``subjects``) into a ``face`` view dict.

    Returns ``image`` (N,3,H,W) uint8, ``gaze_pitchyaw``/``head_pitchyaw`` (N,2) float32 radians,
    ``landmarks`` (N,5,2) float32 pixels, ``eye_boxes`` (N,2,4) NaN, ``subject`` (N,) int64.
    """
    root = require_dir(root, "mpiifacegaze")
    found = {int(m.group(1)): p for p in root.iterdir() if (m := re.fullmatch(r"p(\d+)\.mat", p.name)) and p.is_file()}
    if not found:
        raise DataError(f"{root}: no pNN.mat files (the MPIIFaceGaze layout has p00.mat, p01.mat, ...)")
    images, gaze, head, lms, subj = [], [], [], [], []
    first: tuple[Path, tuple[int, ...]] | None = None
    for s, path in _select(found, subjects, root, "p{:02d}.mat"):
        img, label = _read_mat(path)
        if first is None:
            first = (path, img.shape[2:])
        elif img.shape[2:] != first[1]:
            raise DataError(
                f"{path}: images are {img.shape[3]}x{img.shape[2]} but {first[0].name} has "
                f"{first[1][1]}x{first[1][0]} (all images of a data set must have one size)"
            )
        check_finite(label[:, :14], path, "Data/label")
        images.append(img)
        gaze.append(label[:, 0:2])
        head.append(label[:, 2:4])
        lms.append(label[:, 4:14].reshape(-1, 5, 2))
        subj.append(np.full(len(label), s))
    return _result(images, gaze, head, lms, subj)


# ----------------------------------------------------------------------------------------------------
# mpiifacegaze-pre: pNN/NNNNN.png + pNN/labels.dict
# ----------------------------------------------------------------------------------------------------


def write_mpiifacegaze_pre(data: Mapping[str, Any], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a ``face`` view as ``path/pNN/NNNNN.png`` plus a pickled ``path/pNN/labels.dict`` per subject.

    Uses the same keys as :func:`write_mpiifacegaze`; labels are stored as float32 arrays. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    d = _checked(data, path, "mpiifacegaze-pre")
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for s in np.unique(d["subject"]):
            folder = tmp / f"p{int(s):02d}"
            folder.mkdir()
            labels = {}
            for j, i in enumerate(np.flatnonzero(d["subject"] == s)):
                name = f"{j:05d}.png"
                write_png(folder / name, d["image"][i])
                labels[name] = {
                    "gaze": d["gaze_pitchyaw"][i].copy(),
                    "head": d["head_pitchyaw"][i].copy(),
                    "landmarks": d["landmarks"][i].copy(),
                }
            with open(folder / "labels.dict", "wb") as f:
                pickle.dump(labels, f)
    return path


def _entry_array(labels_path: Path, name: str, entry: Any, key: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(entry, dict) or key not in entry:
        raise DataError(f"{labels_path}: entry {name!r} has no {key!r} (expected keys gaze, head, landmarks)")
    try:
        arr = np.asarray(entry[key], dtype=np.float32)
    except (TypeError, ValueError):
        raise DataError(f"{labels_path}: entry {name!r}: {key!r} is not numeric") from None
    if arr.shape != shape:
        raise DataError(f"{labels_path}: entry {name!r}: {key!r} has shape {arr.shape}, expected {shape}")
    return arr


def read_mpiifacegaze_pre(root: str | os.PathLike, *, subjects: Iterable[int] | None = None) -> dict[str, np.ndarray]:
    """Read ``root/pNN/`` folders (PNGs + ``labels.dict``) into a ``face`` view dict (see :func:`read_mpiifacegaze`).

    The pickles are loaded with a restricted unpickler: anything but plain data is refused.
    """
    root = require_dir(root, "mpiifacegaze-pre")
    found = {int(m.group(1)): p for p in root.iterdir() if (m := re.fullmatch(r"p(\d+)", p.name)) and p.is_dir()}
    if not found:
        raise DataError(f"{root}: no pNN/ subject folders (the preprocessed layout has p00/labels.dict, ...)")
    images, gaze, head, lms, subj = [], [], [], [], []
    size: tuple[int, int] | None = None
    for s, folder in _select(found, subjects, root, "p{:02d}"):
        labels_path = require_file(folder / "labels.dict", "the subject's pickled labels")
        labels = safe_load(labels_path)
        if not isinstance(labels, dict) or not all(isinstance(k, str) for k in labels):
            raise DataError(f"{labels_path}: expected a dict of PNG file name -> labels, got {type(labels).__name__}")
        names = sorted(labels)
        n_png = sum(1 for _ in folder.glob("*.png"))
        if len(names) != n_png:
            raise DataError(f"{labels_path}: has {len(names)} entries but {folder.name}/ has {n_png} PNG images")
        if not names:
            continue
        g = np.stack([_entry_array(labels_path, n, labels[n], "gaze", (2,)) for n in names])
        h = np.stack([_entry_array(labels_path, n, labels[n], "head", (2,)) for n in names])
        lm = np.stack([_entry_array(labels_path, n, labels[n], "landmarks", (5, 2)) for n in names])
        for what, arr in (("gaze", g), ("head", h), ("landmarks", lm)):
            check_finite(arr, labels_path, f"{what} of entry", row_names=[repr(n) for n in names])
        img = read_images([folder / n for n in names], 3, size)
        size = img.shape[2:]
        images.append(img)
        gaze.append(g)
        head.append(h)
        lms.append(lm)
        subj.append(np.full(len(names), s))
    if not images:
        raise DataError(f"{root}: no samples (every labels.dict is empty)")
    return _result(images, gaze, head, lms, subj)
