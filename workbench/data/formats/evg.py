"""EVG layout (view ``frame``): camera frames plus one annotation JSON per split.

::

    root/images/<file>.png
    root/annotations_<split>.json   {"images": [{"file": "images/xxx.png", "screen_mm": [w, h],
                                      "screen_px": [w, h], "gaze_px": [x, y], "face_box": [x0, y0, x1, y1],
                                      "camera_screen_offset_mm": [x, y], "subject": id}, ...]}

Several splits share one folder: writing split ``val`` into an EVG folder that holds ``train`` keeps
``train`` (the folder is rebuilt beside the old one and swapped in, so a failure changes nothing).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from workbench.data.formats._common import check_finite, check_view, require_dir
from workbench.data.formats._images import read_images, write_png
from workbench.errors import DataError
from workbench.utils.io import atomic_path

__all__ = ["read_evg", "write_evg", "evg_splits"]

# JSON field -> (view key, length)
_FIELDS = {
    "screen_mm": ("screen_mm", 2),
    "screen_px": ("screen_px", 2),
    "gaze_px": ("pog_px", 2),
    "face_box": ("face_box", 4),
    "camera_screen_offset_mm": ("offset_mm", 2),
}
_KEYS = ["image", "pog_px", "screen_mm", "screen_px", "offset_mm", "face_box", "subject"]


def _annotation(root: Path, split: str) -> Path:
    if not isinstance(split, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", split):
        raise DataError(f"{root}: bad split name {split!r} (letters, digits, '_', '-', '.')")
    return root / f"annotations_{split}.json"


def evg_splits(root: str | os.PathLike) -> list[str]:
    """The split names with an ``annotations_<split>.json`` in ``root``."""
    return sorted(p.name[len("annotations_") : -len(".json")] for p in Path(root).glob("annotations_*.json"))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({' '.join(str(e).split())})") from None


def _files_of(path: Path) -> set[str]:
    """The image files an existing annotation file lists (empty when it cannot be parsed)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {str(e["file"]) for e in doc["images"] if isinstance(e, dict) and "file" in e}
    except Exception:  # noqa: BLE001 - a broken old annotation file is simply replaced
        return set()


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_evg(
    data: Mapping[str, Any], path: str | os.PathLike, *, split: str = "train", overwrite: bool = False
) -> Path:
    """Write a ``frame`` view as ``path/images/<split>_NNNNNN.png`` plus ``path/annotations_<split>.json``.

    Uses ``image`` (N,3,H,W) uint8, ``pog_px``, ``screen_mm``, ``screen_px``, ``offset_mm`` (N,2),
    ``face_box`` (N,4) and ``subject`` (N,); other keys are ignored. Other splits already in ``path``
    are kept; replacing the same split, or a folder that is not an EVG one, needs ``overwrite=True``.
    """
    path = Path(path)
    ann = _annotation(path, split)
    keep_old = False
    if path.exists():
        if path.is_file():
            if not overwrite:
                raise DataError(f"{path}: already exists (pass overwrite=True to replace it)")
        elif any(path.iterdir()):
            keep_old = bool(evg_splits(path)) and (path / "images").is_dir()
            if not keep_old and not overwrite:
                raise DataError(f"{path}: already exists and is not an EVG folder (pass overwrite=True to replace it)")
            if ann.exists() and not overwrite:
                raise DataError(f"{ann}: split {split!r} already exists (pass overwrite=True to replace it)")
    d = check_view(data, "frame", _KEYS, path, "evg")
    for key in _KEYS[1:-1]:
        check_finite(d[key], path, f"cannot write evg: {key!r}")
    if (d["screen_px"] <= 0).any() or (d["screen_mm"] <= 0).any():
        raise DataError(f"{path}: cannot write evg: screen sizes must be positive")

    with atomic_path(path) as tmp:
        if keep_old:
            # Files of the replaced split are dropped; new names never reuse a hard-linked file.
            drop = _files_of(ann) - set().union(*(_files_of(p) for p in path.glob("annotations_*.json") if p != ann))
            drop_names = {Path(f).name for f in drop}

            def ignore(folder: str, names: list[str]) -> list[str]:
                if Path(folder) == path:
                    return [n for n in names if n == ann.name or n.startswith(".")]
                if Path(folder) == path / "images":
                    return [n for n in names if n in drop_names or n.startswith(f"{split}_")]
                return []

            shutil.copytree(path, tmp, ignore=ignore, copy_function=_link_or_copy)
        else:
            tmp.mkdir()
        (tmp / "images").mkdir(exist_ok=True)
        entries = []
        for i in range(len(d["image"])):
            file = f"images/{split}_{i:06d}.png"
            write_png(tmp / file, d["image"][i])
            entry: dict[str, Any] = {"file": file}
            for field, (key, _) in _FIELDS.items():
                entry[field] = [float(v) for v in d[key][i]]
            entry["subject"] = int(d["subject"][i])
            entries.append(entry)
        (tmp / ann.name).write_text(json.dumps({"images": entries}, indent=1), encoding="utf-8")
    return path


def _numbers(ann: Path, i: int, entry: dict, field: str, n: int) -> list[float]:
    if field not in entry:
        raise DataError(f"{ann}: images[{i}] has no {field!r}")
    v = entry[field]
    if (
        not isinstance(v, list)
        or len(v) != n
        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    ):
        raise DataError(f"{ann}: images[{i}].{field} is {json.dumps(v)[:40]}, expected {n} numbers")
    return v


def read_evg(root: str | os.PathLike, split: str = "train") -> dict[str, np.ndarray]:
    """Read one split of an EVG folder into a ``frame`` view dict.

    Returns ``image`` (N,3,H,W) uint8; ``pog_px``, ``screen_mm``, ``screen_px``, ``offset_mm`` (N,2) and
    ``face_box`` (N,4) float32; ``subject`` (N,) int64 (-1 where the JSON has none); and ``pog_mm`` (N,2)
    float32, the gaze point in mm from the screen's top-left corner (``pog_px * screen_mm / screen_px``).
    """
    root = require_dir(root, "evg")
    ann = _annotation(root, split)
    if not ann.is_file():
        have = evg_splits(root)
        raise DataError(f"{ann}: missing (splits in {root}: {', '.join(have) if have else 'none'})")
    doc = _load_json(ann)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise DataError(f'{ann}: expected an object {{"images": [...]}}')
    entries = doc["images"]
    if not entries:
        raise DataError(f"{ann}: no samples (images is empty)")
    files: list[Path] = []
    cols: dict[str, list] = {key: [] for key, _ in _FIELDS.values()}
    subjects = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise DataError(f"{ann}: images[{i}] is not an object")
        if not isinstance(e.get("file"), str):
            raise DataError(f"{ann}: images[{i}] has no 'file' name")
        files.append(root / e["file"])
        for field, (key, n) in _FIELDS.items():
            cols[key].append(_numbers(ann, i, e, field, n))
        s = e.get("subject", -1)
        if isinstance(s, bool) or not isinstance(s, (int, str)) or not str(s).lstrip("-").isdigit():
            raise DataError(f"{ann}: images[{i}].subject is {json.dumps(s)[:40]}, expected an integer id")
        subjects.append(int(s))
    out: dict[str, np.ndarray] = {}
    rows = [f"images[{i}]" for i in range(len(entries))]
    for field, (key, _) in _FIELDS.items():
        out[key] = np.asarray(cols[key], dtype=np.float32)
        check_finite(out[key], ann, f"{field} of", row_names=rows)
    for key in ("screen_mm", "screen_px"):
        bad = np.flatnonzero((out[key] <= 0).any(axis=1))
        if len(bad):
            raise DataError(f"{ann}: images[{bad[0]}].{key} is {out[key][bad[0]].tolist()}, expected positive sizes")
    out["image"] = read_images(files, 3)
    out["subject"] = np.asarray(subjects, dtype=np.int64)
    out["pog_mm"] = (out["pog_px"] * (out["screen_mm"] / out["screen_px"])).astype(np.float32)
    return {k: out[k] for k in ["image", *_KEYS[1:], "pog_mm"]}
