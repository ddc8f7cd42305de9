"""Any view dict as one ``.npz`` file (``np.savez_compressed``) with a ``view`` entry naming the view.

Loading never unpickles (``allow_pickle=False``), so object arrays cannot be stored.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.data.formats._common import VIEW_KEYS, check_writable
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_npz", "write_npz", "infer_view"]


def infer_view(data: Mapping[str, Any]) -> str | None:
    """The view whose keys ``data`` holds (the one with most keys if several fit), or None."""
    fits = [v for v, keys in VIEW_KEYS.items() if all(k in data for k in keys)]
    return max(fits, key=lambda v: len(VIEW_KEYS[v])) if fits else None


def write_npz(
    data: Mapping[str, Any], path: str | os.PathLike, *, view: str | None = None, overwrite: bool = False
) -> Path:
    """Save every array of ``data`` (sample-first, one N) plus ``view`` to ``path`` (compressed npz).

    ``view`` defaults to ``data["view"]`` or the view whose keys ``data`` holds. Returns ``path``.
    """
    path = check_writable(path, overwrite)
    arrays = {k: v for k, v in data.items() if k != "view"}
    view = view if view is not None else (str(data["view"]) if "view" in data else infer_view(arrays))
    if view is None:
        keys = ", ".join(arrays)
        raise DataError(f"{path}: cannot write npz: cannot tell the view from the keys ({keys}); pass view=")
    if view not in VIEW_KEYS:
        raise DataError(f"{path}: cannot write npz: unknown view {view!r} (expected one of {', '.join(VIEW_KEYS)})")
    out: dict[str, np.ndarray] = {}
    n = None
    for k, v in arrays.items():
        arr = np.asarray(v)
        if arr.dtype.hasobject or arr.ndim == 0:
            raise DataError(
                f"{path}: cannot write npz: {k!r} is not a sample-first numeric array ({arr.dtype}, {arr.shape})"
            )
        if n is not None and len(arr) != n[1]:
            raise DataError(f"{path}: cannot write npz: {k!r} has {len(arr)} samples but {n[0]!r} has {n[1]}")
        n = n or (k, len(arr))
        out[k] = arr
    missing = [k for k in VIEW_KEYS[view] if k not in out]
    if missing:
        raise DataError(f"{path}: cannot write npz: a {view!r} view needs {', '.join(missing)}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a bare name
            np.savez_compressed(f, view=np.str_(view), **out)
    return path


def read_npz(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], str]:
    """Load a file written by :func:`write_npz` (or the one .npz inside a folder) -> (view dict, view name)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.npz"))
        if len(found) != 1:
            raise DataError(f"{path}: expected one .npz file in the folder, found {len(found)}")
        path = found[0]
    if not path.is_file():
        raise DataError(f"{path}: file does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        msg = " ".join(str(e).split()) or type(e).__name__
        if "pickled" in msg:  # numpy's message goes on to advise loading it unsafely: never here
            msg = "it holds pickled objects, which are not loaded"
        raise DataError(f"{path}: not a readable npz file ({msg})") from None
    if "view" not in data or data["view"].ndim != 0 or data["view"].dtype.kind != "U":
        raise DataError(f"{path}: has no 'view' entry naming the view (expected one of {', '.join(VIEW_KEYS)})")
    view = str(data.pop("view"))
    if view not in VIEW_KEYS:
        raise DataError(f"{path}: unknown view {view!r} (expected one of {', '.join(VIEW_KEYS)})")
    missing = [k for k in VIEW_KEYS[view] if k not in data]
    if missing:
        raise DataError(f"{path}: the {view!r} view lacks {', '.join(missing)}")
    n = {k: len(v) if v.ndim else -1 for k, v in data.items()}
    ref = next(iter(VIEW_KEYS[view]))
    for k, m in n.items():
        if m != n[ref]:
            raise DataError(f"{path}: {k!r} has {m} samples but {ref!r} has {n[ref]}")
    return data, view
