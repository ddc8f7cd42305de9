"""MPIIFaceGaze as it ships (view ``face``): the normalized ``pNN.mat`` release and write-up 000's PNG form.

``mpiifacegaze``: the normalized release (``MPIIFaceGaze_normalized.zip``, extracted to a folder of
``p00.mat`` ... ``p14.mat``, 3000 samples each). Each file is MATLAB v7.3, i.e. HDF5 behind MATLAB's
512-byte header (116 bytes of text, 8 bytes subsystem offset, version 0x0200, ``IM``), holding a struct
``Data`` with two arrays:

- ``Data/data``: h5py sees (N, 3, 448, 448) with the channels in **BGR** order. The data set page says
  the images were saved in MATLAB for Caffe as ``new = img(:,:,[3 2 1]); new = flip(new, 2);
  new = imrotate(new, 90)`` (channels swapped, mirrored, rotated 90 deg counter-clockwise). A mirror
  followed by that rotation is a transpose, so MATLAB holds (W, H, 3, N) with ``new(x, y, c) =
  img(y, x, c)``; MATLAB writes column-major, so HDF5/h5py see the dimensions reversed: (N, 3, H, W)
  with ``[n, c, y, x]`` = pixel (y, x) of channel c in B, G, R order. The h5py array is therefore upright
  (no transpose), only the channels are reversed.
- ``Data/label``: (N, 16): gaze pitch, yaw (0-1), head pose pitch, yaw (2-3), then the six landmarks
  x, y in the 448 px image (4-15): the four eye corners and two mouth corners in the order of the
  6-point face model used for the annotation: right eye outer, right eye inner, left eye inner, left
  eye outer, mouth right, mouth left (the subject's sides; the right eye is the image-left one).

``mpiifacegaze-pre``: what write-up 000's own conversion script writes from those files:
``<dest>/<sid>/NNNN.png`` (``sid`` is the file name without the ``p``: ``00``, ``01``, ...; 4-digit
zero-padded sample numbers) written with ``cv2.imwrite(path, img.transpose(1, 2, 0))`` from the BGR
``Data/data`` array, so the PNG on disk holds the true colours, plus ``<dest>/<sid>/labels.dict``, a
pickle of ``{'subject_id': '00', 'images': [the PNG paths as joined on the converting machine],
'labels': [the 16-value Data/label rows, numpy arrays]}``. Image paths are resolved by file name inside
the subject's folder, since they name another machine's folders; the pickle is read with
:func:`workbench.data.safe_pickle.safe_load`.

Readers return ``image`` RGB (N,3,H,W) uint8, ``gaze_pitchyaw``/``head_pitchyaw`` (N,2), ``landmarks``
(N,6,2) (:data:`~workbench.data.formats._common.FACE_LANDMARKS` ``[6]``) and ``eye_boxes`` (N,2,4) built
from each eye's two corners (:func:`~workbench.data.formats._common.eye_boxes_from_corners`), samples
grouped by subject (ascending) in their stored order.

Sources: the data set page (perceptualui.org/research/datasets/MPIIFaceGaze/, the Caffe pre-processing
lines and "448*448 pixels"); hysts/pytorch_mpiigaze ``tools/preprocess_mpiifacegaze.py`` (h5py
``Data/data`` -> ``transpose(0, 2, 3, 1)``, gaze = label[:, :2], pose = label[:, 2:4], 3000 per file)
and ``gaze_estimation/transforms.py`` (BGR mean/std, ``COLOR_BGR2GRAY``: the pixels are BGR); a public
MPIIFaceGaze loader that takes label[:, 4:8] and [:, 8:12] as the two eyes' corner pairs; the raw
release's readme ("Dimension 4~15: ... six facial landmarks, which are four eye corners and two mouth
corners"); the 6-point face model as used in X-Shi/Data-Normalization-Gaze-Estimation
``MPIIFaceGaze_data_normalization/normalize_data.py`` (points 0-1 one eye, 2-3 the other, 4-5 mouth)
and in public normalizers that fill it from dlib points 36, 39, 42, 45, 48, 54; hdf5storage's storage
format notes for the v7.3 header bytes; write-up 000's conversion script for ``mpiifacegaze-pre``.
The element types of the arrays are not documented: the reader takes any integer or float type, the
writer uses MATLAB's ``uint8`` for pixels and ``double`` (MATLAB's default class) for labels.
"""

from __future__ import annotations

import os
import pickle
import re
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

import h5py
import numpy as np

from workbench.data.formats._common import (
    EYE_BOX_MARGIN,
    check_finite,
    check_view,
    check_writable,
    eye_boxes_from_corners,
    require_dir,
)
from workbench.data.formats._images import read_images, write_png
from workbench.data.safe_pickle import safe_load
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = [
    "read_mpiifacegaze",
    "write_mpiifacegaze",
    "read_mpiifacegaze_pre",
    "write_mpiifacegaze_pre",
    "mpii_landmarks",
    "mat73_header",
]

_KEYS = ["image", "gaze_pitchyaw", "head_pitchyaw", "landmarks", "subject"]
LABEL_COLUMNS = 16
_READ_BLOCK = 256  # images per h5py read: keeps a second copy of a 448 px subject out of memory


# ----------------------------------------------------------------------------------------------------
# Shared: labels <-> view dict
# ----------------------------------------------------------------------------------------------------


def mpii_landmarks(landmarks: np.ndarray, eye_boxes: np.ndarray | None = None) -> np.ndarray:
    """The six MPIIFaceGaze landmarks (N,6,2) px from a face view's landmarks (N,6,2) or SynthGaze's (N,5,2).

    Six points pass through. From SynthGaze's five (eye centres, nose tip, mouth corners) the mouth
    corners are copied and each eye's corners are rebuilt from its centre and its eye box (N,2,4):
    SynthGaze's head model puts all four corners on one 3-D line (``workbench/data/_head.py``), so in the
    image they lie on the line through both eye centres (the landmarks are the corner midpoints), and
    it draws an eye box ``|dx| + 2 * 0.2 * w`` wide for corners ``w`` apart, so ``w = box width /
    (|u_x| + 0.4)`` with ``u`` the unit eye-to-eye direction: the renderer's corners, to float precision.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim == 3 and lm.shape[1:] == (6, 2):
        return lm
    if lm.ndim != 3 or lm.shape[1:] != (5, 2):
        raise ValueError(f"expected landmarks (N,6,2) or SynthGaze's (N,5,2), got {lm.shape}")
    if eye_boxes is None:
        raise ValueError("SynthGaze's 5 landmarks need the eye boxes to place the eye corners")
    boxes = np.asarray(eye_boxes, dtype=np.float64)
    d = lm[:, 1] - lm[:, 0]
    norm = np.linalg.norm(d, axis=-1, keepdims=True)
    u = np.where(norm > 1e-9, d / np.maximum(norm, 1e-9), np.array([1.0, 0.0]))
    # Box k belongs to the eye whose centre is nearer to it (SynthGaze: image-left eye first, as lm 0).
    centres = np.stack([(boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2], -1)
    dist = lambda c: np.linalg.norm(c - lm[:, :2], axis=-1).sum(1)  # noqa: E731
    same = dist(centres) <= dist(centres[:, ::-1])
    boxes = np.where(same[:, None, None], boxes, boxes[:, ::-1])
    half = (boxes[..., 2] - boxes[..., 0]) / (np.abs(u[:, None, 0]) + 2 * EYE_BOX_MARGIN) / 2  # (N, 2)
    out = np.empty((len(lm), 6, 2))
    out[:, 0] = lm[:, 0] - half[:, 0:1] * u  # right eye (image-left): outer corner on the image-left side
    out[:, 1] = lm[:, 0] + half[:, 0:1] * u
    out[:, 2] = lm[:, 1] - half[:, 1:2] * u
    out[:, 3] = lm[:, 1] + half[:, 1:2] * u
    out[:, 4:6] = lm[:, 3:5]
    return out


def _label_matrix(d: dict[str, np.ndarray], idx: np.ndarray, path: Path, fmt: str) -> np.ndarray:
    """(n, 16) float64 Data/label rows for samples ``idx``."""
    try:
        six = mpii_landmarks(d["landmarks"][idx], d["eye_boxes"][idx] if "eye_boxes" in d else None)
    except ValueError as e:
        raise DataError(f"{path}: cannot write {fmt}: {e}") from None
    check_finite(six.reshape(len(idx), 12), path, f"cannot write {fmt}: the eye/mouth corners of",
                 row_names=[f"sample {int(i)}" for i in idx])
    label = np.zeros((len(idx), LABEL_COLUMNS), dtype=np.float64)
    label[:, 0:2] = d["gaze_pitchyaw"][idx]
    label[:, 2:4] = d["head_pitchyaw"][idx]
    label[:, 4:16] = six.reshape(len(idx), 12)
    return label


def _checked(data: Mapping[str, Any], path: Path, fmt: str) -> dict[str, np.ndarray]:
    d = check_view(data, "face", _KEYS, path, fmt)
    if "eye_boxes" in data:
        d["eye_boxes"] = check_view(data, "face", ["subject", "eye_boxes"], path, fmt)["eye_boxes"]
    for key in ("gaze_pitchyaw", "head_pitchyaw", "landmarks"):
        check_finite(d[key], path, f"cannot write {fmt}: {key!r}")
    if (d["subject"] < 0).any():
        raise DataError(f"{path}: cannot write {fmt}: subject ids must be >= 0 (they name the pNN files)")
    return d


def _view(images: list, labels: list, subj: list) -> dict[str, np.ndarray]:
    label = np.concatenate(labels).astype(np.float64)
    lm = label[:, 4:16].reshape(-1, 6, 2)
    return {
        "image": np.concatenate(images),
        "gaze_pitchyaw": label[:, 0:2].astype(np.float32),
        "head_pitchyaw": label[:, 2:4].astype(np.float32),
        "landmarks": lm.astype(np.float32),
        "eye_boxes": eye_boxes_from_corners(lm[:, 0:4].reshape(-1, 2, 2, 2)),
        "subject": np.concatenate(subj).astype(np.int64),
    }


def _select(found: dict[int, Path], subjects: Iterable[int] | None, root: Path, pattern: str) -> list[tuple[int, Path]]:
    if subjects is None:
        return sorted(found.items())
    out = []
    for s in subjects:
        if int(s) not in found:
            raise DataError(f"{root / pattern.format(int(s))}: missing (subject {int(s)} was selected)")
        out.append((int(s), found[int(s)]))
    return out


def _check_size(path: Path, img: np.ndarray, first: tuple[Path, tuple[int, ...]] | None) -> tuple[Path, tuple[int, ...]]:
    if first is not None and img.shape[2:] != first[1]:
        raise DataError(
            f"{path}: images are {img.shape[3]}x{img.shape[2]} but {first[0].name} has "
            f"{first[1][1]}x{first[1][0]} (all images of a data set must have one size)"
        )
    return first or (path, img.shape[2:])


# ----------------------------------------------------------------------------------------------------
# mpiifacegaze: pNN.mat (MATLAB v7.3)
# ----------------------------------------------------------------------------------------------------


def mat73_header(platform: str = "gaze-workbench", when: time.struct_time | None = None) -> bytes:
    """The 128 bytes MATLAB puts at the start of a v7.3 MAT-file (the rest of the 512-byte userblock is 0)."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", when or time.gmtime())
    text = f"MATLAB 7.3 MAT-file, Platform: {platform}, Created on: {stamp} HDF5 schema 1.00 .".encode("ascii")
    return text[:116].ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"


def _matlab_class(obj: h5py.HLObject, name: str) -> None:
    obj.attrs.create("MATLAB_class", np.bytes_(name))


def write_mpiifacegaze(data: Mapping[str, Any], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a ``face`` view as ``path/pNN.mat`` files (one per subject) as MATLAB v7.3 writes them.

    Uses ``image`` (N,3,H,W) RGB uint8, ``gaze_pitchyaw``/``head_pitchyaw`` (N,2), ``landmarks`` (N,6,2),
    or SynthGaze's (N,5,2) with ``eye_boxes`` (N,2,4) (see :func:`mpii_landmarks`), and ``subject`` (N,).
    Each file: MATLAB's header in a 512-byte userblock, struct ``Data`` with ``data`` (h5py (n,3,H,W),
    BGR, uint8, gzip 3 like MATLAB's default compression) and ``label`` (n,16) double, ``MATLAB_class``
    attributes on each. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    d = _checked(data, path, "mpiifacegaze")
    labels = {int(s): _label_matrix(d, np.flatnonzero(d["subject"] == s), path, "mpiifacegaze")
              for s in np.unique(d["subject"])}
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for s, label in labels.items():
            idx = np.flatnonzero(d["subject"] == s)
            # MATLAB's (W,H,3,n) column-major array is h5py's (n,3,H,W) row-major one: no transpose here.
            bgr = np.ascontiguousarray(d["image"][idx][:, ::-1])
            target = tmp / f"p{s:02d}.mat"
            with h5py.File(target, "w", userblock_size=512) as f:
                grp = f.create_group("Data")
                _matlab_class(grp, "struct")
                grp.attrs.create("MATLAB_fields", [np.frombuffer(n.encode(), dtype="S1") for n in ("data", "label")],
                                 dtype=h5py.vlen_dtype(np.dtype("S1")))
                ds = grp.create_dataset("data", data=bgr, chunks=(1, *bgr.shape[1:]), compression="gzip",
                                        compression_opts=3)
                _matlab_class(ds, "uint8")
                _matlab_class(grp.create_dataset("label", data=label), "double")
            with open(target, "r+b") as f:
                f.write(mat73_header())
    return path


def _as_pixels(block: np.ndarray, path: Path) -> np.ndarray:
    if block.dtype == np.uint8:
        return block
    if block.dtype.kind == "f" and (not np.isfinite(block).all() or block.min() < 0 or block.max() > 255):
        raise DataError(f"{path}: Data/data holds values outside 0..255 ({block.dtype}), expected 8-bit pixels")
    if block.dtype.kind in "iu" and (block.min() < 0 or block.max() > 255):
        raise DataError(f"{path}: Data/data holds values outside 0..255 ({block.dtype}), expected 8-bit pixels")
    return np.rint(block).astype(np.uint8)


def _header_problem(path: Path) -> str | None:
    """A reason the file cannot be a v7.3 MAT-file, from its first bytes (None: looks fine or plain HDF5)."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "is a MATLAB v5/v7 MAT-file; the MPIIFaceGaze release is v7.3 (HDF5): re-save it with save(..., '-v7.3')"
    if len(head) < 128:
        return f"is {len(head)} bytes long, too short for a MAT-file (truncated?)"
    return None


def _read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(n,3,H,W) RGB uint8 images and (n,16) float64 labels of one ``pNN.mat``."""
    problem = _header_problem(path)
    if problem:
        raise DataError(f"{path}: {problem}")
    try:
        with h5py.File(path, "r") as f:
            for key in ("Data/data", "Data/label"):
                if key not in f:
                    raise DataError(f"{path}: has no {key} (an MPIIFaceGaze .mat holds a struct Data: data, label)")
            data, label = f["Data/data"], f["Data/label"]
            if data.ndim != 4 or data.shape[1] != 3 or data.dtype.kind not in "uif":
                raise DataError(f"{path}: Data/data is {data.shape} {data.dtype}, expected (N,3,H,W) BGR images")
            if label.ndim != 2 or label.shape[1] != LABEL_COLUMNS or label.dtype.kind not in "uif":
                raise DataError(
                    f"{path}: Data/label is {label.shape} {label.dtype}, expected (N,16) numbers "
                    "(gaze 2, head pose 2, six landmarks x,y)"
                )
            if label.shape[0] != data.shape[0]:
                raise DataError(f"{path}: Data/label has {label.shape[0]} rows but Data/data has {data.shape[0]} images")
            n = data.shape[0]
            out = np.empty(data.shape, dtype=np.uint8)
            for i in range(0, n, _READ_BLOCK):
                out[i:i + _READ_BLOCK] = _as_pixels(data[i:i + _READ_BLOCK], path)[:, ::-1]  # BGR -> RGB
            return out, np.asarray(label[()], dtype=np.float64)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - h5py raises OSError/KeyError/... on damaged files
        msg = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{path}: cannot read MATLAB v7.3 (HDF5) file ({msg})") from None


def _mat_files(root: Path) -> dict[int, Path]:
    found = {int(m.group(1)): p for p in root.iterdir() if (m := re.fullmatch(r"p(\d+)\.mat", p.name)) and p.is_file()}
    if not found:
        raise DataError(f"{root}: no pNN.mat files (the MPIIFaceGaze layout has p00.mat, p01.mat, ...)")
    return found


def mpiifacegaze_parts(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Reader options that read the data set one subject at a time (``[{"subjects": [0]}, ...]``), so a
    caller can shrink each subject's 448 px faces before the next is read: the whole release at its
    native size is 45,000 x 448 x 448 x 3 bytes, about 27 GB."""
    return [{"subjects": [s]} for s in sorted(_mat_files(require_dir(root, "mpiifacegaze")))]


def mpiifacegaze_pre_parts(root: str | os.PathLike) -> list[dict[str, Any]]:
    """:func:`mpiifacegaze_parts` for write-up 000's PNG folders."""
    return [{"subjects": [s]} for s in sorted(_subject_folders(require_dir(root, "mpiifacegaze-pre")))]


def read_mpiifacegaze(root: str | os.PathLike, *, subjects: Iterable[int] | None = None) -> dict[str, np.ndarray]:
    """Read ``root/pNN.mat`` files (all, or the selected ``subjects``) into a ``face`` view dict.

    Returns ``image`` (N,3,H,W) RGB uint8, ``gaze_pitchyaw``/``head_pitchyaw`` (N,2) float32 radians,
    ``landmarks`` (N,6,2) float32 px, ``eye_boxes`` (N,2,4) float32 px from the eye corners,
    ``subject`` (N,) int64. Other files in ``root`` are ignored.
    """
    root = require_dir(root, "mpiifacegaze")
    found = _mat_files(root)
    images, labels, subj = [], [], []
    first: tuple[Path, tuple[int, ...]] | None = None
    for s, path in _select(found, subjects, root, "p{:02d}.mat"):
        img, label = _read_mat(path)
        first = _check_size(path, img, first)
        check_finite(label, path, "Data/label")
        images.append(img)
        labels.append(label)
        subj.append(np.full(len(label), s))
    return _view(images, labels, subj)


# ----------------------------------------------------------------------------------------------------
# mpiifacegaze-pre: <sid>/NNNN.png + <sid>/labels.dict (write-up 000's conversion script)
# ----------------------------------------------------------------------------------------------------


def write_mpiifacegaze_pre(data: Mapping[str, Any], path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a ``face`` view as write-up 000's script does: ``path/<sid>/NNNN.png`` + ``path/<sid>/labels.dict``.

    ``sid`` is the two-digit subject id; the PNGs hold the true colours (the script's ``cv2.imwrite`` of
    the BGR array); ``labels.dict`` pickles ``{'subject_id': sid, 'images': [str(path/sid/NNNN.png)],
    'labels': [(16,) float64 rows as in Data/label]}``. Same keys as :func:`write_mpiifacegaze`.
    """
    path = check_writable(path, overwrite)
    d = _checked(data, path, "mpiifacegaze-pre")
    subjects = [int(s) for s in np.unique(d["subject"])]
    labels = {s: _label_matrix(d, np.flatnonzero(d["subject"] == s), path, "mpiifacegaze-pre") for s in subjects}
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for s in subjects:
            sid = f"{s:02d}"
            (tmp / sid).mkdir()
            names = []
            for j, i in enumerate(np.flatnonzero(d["subject"] == s)):
                write_png(tmp / sid / f"{j:04d}.png", d["image"][i])
                names.append(str(path / sid / f"{j:04d}.png"))  # as joined where it was converted
            obj = {"subject_id": sid, "images": names, "labels": list(labels[s])}
            with open(tmp / sid / "labels.dict", "wb") as f:
                pickle.dump(obj, f)
    return path


def _subject_folders(root: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for p in sorted(root.iterdir()):
        if not (p.is_dir() and re.fullmatch(r"[0-9]+", p.name)):
            continue
        if not (p / "labels.dict").is_file():
            if any(p.glob("*.png")):
                raise DataError(f"{p / 'labels.dict'}: missing (the folder has PNG images but no labels)")
            continue  # an unrelated numbered folder
        if int(p.name) in found:
            raise DataError(f"{p}: subject {int(p.name)} appears twice ({found[int(p.name)].name}/ and {p.name}/)")
        found[int(p.name)] = p
    return found


def _image_name(entry: Any, labels_path: Path, i: int) -> str:
    if isinstance(entry, bytes):
        entry = entry.decode("utf-8", "replace")
    if not isinstance(entry, str):
        raise DataError(f"{labels_path}: images[{i}] is {type(entry).__name__}, expected a path string")
    name = re.split(r"[\\/]", entry)[-1]  # written on another machine: POSIX or Windows separators
    if name in ("", ".", ".."):
        raise DataError(f"{labels_path}: images[{i}] is {entry!r}, which names no file")
    return name


def _read_subject(folder: Path, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    labels_path = folder / "labels.dict"
    obj = safe_load(labels_path)
    want = "a dict with 'subject_id', 'images' and 'labels' (write-up 000's conversion script)"
    if not isinstance(obj, dict) or not {"subject_id", "images", "labels"} <= set(obj):
        got = sorted(map(str, obj))[:5] if isinstance(obj, dict) else type(obj).__name__
        raise DataError(f"{labels_path}: expected {want}, got {got}")
    sid, paths, rows = obj["subject_id"], obj["images"], obj["labels"]
    if str(sid) != folder.name:
        raise DataError(f"{labels_path}: subject_id is {sid!r} but the folder is {folder.name!r}")
    if not isinstance(paths, (list, tuple)) or not isinstance(rows, (list, tuple, np.ndarray)):
        got = f"{type(paths).__name__} and {type(rows).__name__}"
        raise DataError(f"{labels_path}: 'images' and 'labels' must be lists, got {got}")
    if len(paths) != len(rows):
        raise DataError(f"{labels_path}: lists {len(paths)} images but {len(rows)} label rows")
    if not len(rows):
        return np.zeros((0, 3, 0, 0), np.uint8), np.zeros((0, LABEL_COLUMNS))
    try:
        label = np.asarray([np.asarray(r, dtype=np.float64).ravel() for r in rows], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{labels_path}: 'labels' rows are not all numeric with one length") from None
    if label.ndim != 2 or label.shape[1] != LABEL_COLUMNS:
        raise DataError(f"{labels_path}: label rows have {label.shape[-1]} values, expected 16 (the Data/label row)")
    names = [_image_name(p, labels_path, i) for i, p in enumerate(paths)]
    for name, original in zip(names, paths):
        if not (folder / name).is_file():
            raise DataError(f"{labels_path}: lists {original!r}, but {folder / name} is missing")
    check_finite(label, labels_path, "label of", row_names=[f"image {n!r}" for n in names])
    return read_images([folder / n for n in names], 3, size), label


def read_mpiifacegaze_pre(root: str | os.PathLike, *, subjects: Iterable[int] | None = None) -> dict[str, np.ndarray]:
    """Read write-up 000's ``root/<sid>/`` folders (PNGs + ``labels.dict``) into a ``face`` view dict.

    Same arrays as :func:`read_mpiifacegaze`. Images are found by file name inside their subject folder;
    PNGs not listed in ``labels.dict`` and other files are ignored. The pickles are loaded with a
    restricted unpickler: anything but plain data (dicts, lists, strings, numpy arrays) is refused.
    """
    root = require_dir(root, "mpiifacegaze-pre")
    found = _subject_folders(root)
    if not found:
        raise DataError(f"{root}: no <sid>/labels.dict subject folders (write-up 000's layout has 00/labels.dict, ...)")
    images, labels, subj = [], [], []
    first: tuple[Path, tuple[int, ...]] | None = None
    for s, folder in _select(found, subjects, root, "{:02d}"):
        img, label = _read_subject(folder, first[1] if first else None)
        if not len(label):
            continue
        first = _check_size(folder, img, first)
        images.append(img)
        labels.append(label)
        subj.append(np.full(len(label), s))
    if not images:
        raise DataError(f"{root}: no samples (every labels.dict is empty)")
    return _view(images, labels, subj)
