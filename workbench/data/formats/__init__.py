"""Readers and writers of the write-ups' data layouts.

Each layout corresponds to one SynthGaze view and its reader returns the same keys, dtypes and shapes
as that view (sample-first numpy arrays), so a task builds a data set from the renderer or from disk
identically::

    from workbench.data import formats
    formats.write("mc4", data, "out/mc4")             # -> Path("out/mc4")
    data = formats.read(formats.detect_format("out/mc4"), "out/mc4")

=====================  ==========  ===================================================================
format                 view        layout
=====================  ==========  ===================================================================
``mpiifacegaze``       face        ``pNN.mat`` (MATLAB v7.3: ``Data/data`` BGR, ``Data/label`` (N,16))
``mpiifacegaze-pre``   face        ``<sid>/NNNN.png`` + pickled ``<sid>/labels.dict`` (write-up 000's script)
``mc4``                mc4         ``head/ l_eye/ r_eye/`` PNGs + ``{head,eye,gaze}_label.txt`` (test: PNGs only)
``evg``                frame       ``images/`` + ``annotations_<split>.json``
``eve``                frame       ``trainNN|valNN|testNN/stepNNN_<type>_<name>/webcam_c.{mp4,h5,timestamps.txt}``
``itracker``           itracker    ``{train,val,test}/<subject>/`` eye PNGs + ``labels.csv``
``gazecapture``        itracker    GazeCapture download: ``NNNNN/frames/*.jpg`` + ``apple*.json``, ``dotInfo.json``, ... (one camera)
``lam``                track       ``face_imgs/<clip>/<track>/face_%05d.jpg`` + Ego4D ``json/av_*.json``
``npz``                (any)       one ``.npz`` file with a ``view`` entry
=====================  ==========  ===================================================================

Every problem a user can cause raises :class:`~workbench.errors.DataError` with one line naming the
file; writers build their output beside the target and rename it into place, so a failed write
leaves nothing behind, and they refuse to replace existing output unless ``overwrite=True``.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from workbench.data.formats._common import VIEW_KEYS
from workbench.data.formats.eve import looks_like_eve, read_eve, write_eve
from workbench.data.formats.evg import read_evg, write_evg
from workbench.data.formats.gazecapture import is_gazecapture, read_gazecapture, write_gazecapture
from workbench.data.formats.itracker import read_itracker, write_itracker
from workbench.data.formats.lam import read_lam, write_lam
from workbench.data.formats.mc4 import read_mc4, read_mc4_predictions, write_mc4, write_mc4_predictions
from workbench.data.formats.mpiifacegaze import (
    mpiifacegaze_parts,
    mpiifacegaze_pre_parts,
    read_mpiifacegaze,
    read_mpiifacegaze_pre,
    write_mpiifacegaze,
    write_mpiifacegaze_pre,
)
from workbench.data.formats.npz import read_npz, write_npz
from workbench.errors import DataError, WorkbenchError

__all__ = [
    "FORMATS",
    "VIEW_OF_FORMAT",
    "VIEW_KEYS",
    "Format",
    "UnknownFormatError",
    "FormatOptionError",
    "read",
    "read_with_view",
    "write",
    "detect_format",
    "get_format",
    "read_mpiifacegaze",
    "write_mpiifacegaze",
    "read_mpiifacegaze_pre",
    "write_mpiifacegaze_pre",
    "read_mc4",
    "write_mc4",
    "read_mc4_predictions",
    "write_mc4_predictions",
    "read_evg",
    "write_evg",
    "read_eve",
    "write_eve",
    "read_itracker",
    "write_itracker",
    "read_gazecapture",
    "write_gazecapture",
    "read_lam",
    "write_lam",
    "read_npz",
    "write_npz",
]


class UnknownFormatError(WorkbenchError, ValueError):
    """An unknown format name (a ValueError for code, a one-line WorkbenchError for the CLI)."""


@dataclass(frozen=True)
class Format:
    """One layout: its reader ``(path, **kw) -> dict``, writer ``(data, path, **kw) -> Path`` and view."""

    name: str
    view: str | None  # None: any view (npz)
    reader: Callable[..., dict[str, np.ndarray]]
    writer: Callable[..., Path]
    looks_for: str  # what detect_format checks, for error messages
    splits: bool = False  # the layout names its own train/val splits (reader takes split="train"|"val")
    # Reader options that read the data set in parts (one subject each), so images can be shrunk part by
    # part instead of holding a whole data set at its native size; None: read at once.
    parts: Callable[[Path], list[dict[str, Any]]] | None = None


def _read_npz_data(path: str | os.PathLike) -> dict[str, np.ndarray]:
    return read_npz(path)[0]


FORMATS: dict[str, Format] = {
    f.name: f
    for f in [
        Format("mpiifacegaze", "face", read_mpiifacegaze, write_mpiifacegaze, "pNN.mat files",
               parts=mpiifacegaze_parts),
        Format("mpiifacegaze-pre", "face", read_mpiifacegaze_pre, write_mpiifacegaze_pre, "<sid>/labels.dict",
               parts=mpiifacegaze_pre_parts),
        Format("mc4", "mc4", read_mc4, write_mc4, "head/ with head_label.txt or l_eye/ r_eye/"),
        Format("evg", "frame", read_evg, write_evg, "images/ and annotations_<split>.json", splits=True),
        Format("eve", "frame", read_eve, write_eve, "trainNN|valNN|testNN/stepNNN_*/ with .h5 labels", splits=True),
        Format("itracker", "itracker", read_itracker, write_itracker, "{train,val,test}/<subject>/labels.csv", splits=True),
        Format("gazecapture", "itracker", read_gazecapture, write_gazecapture, "NNNNN/appleFace.json session folders", splits=True),
        Format("lam", "track", read_lam, write_lam, "face_imgs/ (or videos_challenge/)"),
        Format("npz", None, _read_npz_data, write_npz, "a .npz file"),
    ]
}

#: format name -> SynthGaze view its reader returns (``npz``: None, the view is stored in the file).
VIEW_OF_FORMAT: dict[str, str | None] = {name: f.view for name, f in FORMATS.items()}


class FormatOptionError(WorkbenchError, TypeError):
    """An option the format's reader or writer does not take."""


def _check_options(fn: Callable[..., Any], name: str, kw: Mapping[str, Any], skip: int) -> None:
    params = list(inspect.signature(fn).parameters.values())[skip:]
    known = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kw:
        if key not in known:
            have = ", ".join(known) if known else "none"
            raise FormatOptionError(f"format {name!r} has no option {key!r} (its options: {have})")


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise UnknownFormatError(f"unknown data format {name!r}: expected one of {', '.join(FORMATS)}") from None


def read(format: str, path: str | os.PathLike, **kw: Any) -> dict[str, np.ndarray]:
    """Read the data set at ``path`` in layout ``format`` (``"auto"``: :func:`detect_format`) -> view dict.

    Keyword arguments go to the reader (``subjects=`` for mpiifacegaze*, ``split=`` for evg/itracker).
    """
    if format == "auto":
        format = detect_format(path)
    f = get_format(format)
    _check_options(f.reader, format, kw, skip=1)
    return f.reader(path, **kw)


def read_with_view(format: str, path: str | os.PathLike, **kw: Any) -> tuple[dict[str, np.ndarray], str]:
    """Like :func:`read`, also returning the view name (for ``npz`` the one stored in the file)."""
    if format == "auto":
        format = detect_format(path)
    if format == "npz":
        _check_options(read_npz, format, kw, skip=1)
        return read_npz(path, **kw)
    f = get_format(format)
    _check_options(f.reader, format, kw, skip=1)
    return f.reader(path, **kw), str(f.view)


def write(format: str, data: Mapping[str, Any], path: str | os.PathLike, **kw: Any) -> Path:
    """Write a view dict in layout ``format`` at ``path`` -> ``path``.

    Keyword arguments go to the writer (``overwrite=``; ``split=`` for evg, ``splits=`` for itracker,
    ``view=`` for npz). Keys the layout has no place for are ignored.
    """
    f = get_format(format)
    _check_options(f.writer, format, kw, skip=2)
    return f.writer(data, Path(path), **kw)


def detect_format(path: str | os.PathLike) -> str:
    """Name the layout at ``path`` from the files present; :class:`DataError` listing what was looked for."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: does not exist")
    if path.is_file():
        if path.suffix == ".npz":
            return "npz"
    elif path.is_dir():
        names = {p.name for p in path.iterdir()}
        if any(n.startswith("p") and n[1:-4].isdigit() and n.endswith(".mat") for n in names):
            return "mpiifacegaze"
        if any(n.isascii() and n.isdigit() and (path / n / "labels.dict").is_file() for n in names):
            return "mpiifacegaze-pre"
        if "head" in names and ("head_label.txt" in names or {"l_eye", "r_eye"} <= names):
            return "mc4"
        if "images" in names and any(n.startswith("annotations_") and n.endswith(".json") for n in names):
            return "evg"
        if looks_like_eve(path):
            return "eve"
        if "face_imgs" in names or "videos_challenge" in names:
            return "lam"
        if is_gazecapture(path):
            return "gazecapture"
        for split in ("train", "val", "test"):
            sdir = path / split
            if sdir.is_dir() and any((p / "labels.csv").is_file() for p in sdir.iterdir() if p.is_dir()):
                return "itracker"
        if len([n for n in names if n.endswith(".npz")]) == 1:
            return "npz"
    looked = "; ".join(f"{f.name}: {f.looks_for}" for f in FORMATS.values())
    raise DataError(f"{path}: unknown data layout (looked for {looked})")
