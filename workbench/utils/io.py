"""Writing files and folders so that a crash or an error never leaves half-written output behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator


_RECORDS = (".json", ".jsonl")  # files whose recorded paths follow a folder's rename
_RECORD_MAX = 64 << 20


def _repoint(folder: Path, old: Path, new: Path) -> None:
    """In every JSON record under ``folder``, replace the path ``old`` (and what lies under it) by ``new``: runs
    made inside a folder before its atomic rename recorded where they were written, not where they end up."""
    import json

    pairs = [(json.dumps(str(old))[1:-1], json.dumps(str(new))[1:-1])]  # as JSON escapes them
    if pairs[0][0] != str(old):
        pairs.append((str(old), str(new)))
    for f in folder.rglob("*"):
        if f.suffix not in _RECORDS or not f.is_file() or f.is_symlink() or f.stat().st_size > _RECORD_MAX:
            continue
        try:
            text = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        fixed = text
        for a, b in pairs:
            fixed = fixed.replace(a, b)
        if fixed != text:
            f.write_text(fixed, encoding="utf-8")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    Works for a file or a folder written at the yielded path. In a folder, the JSON records (.json, .jsonl)
    that name the temporary path (a run trained inside it records its own folder) are made to name ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if target.is_dir() and not target.is_symlink():
            _repoint(target, target, path)
            _repoint(target, target.resolve(), path.resolve())
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_new_dir(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Check that ``path`` can be written as a new folder: refuse a non-empty one unless ``force``."""
    from workbench.errors import WorkbenchError

    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise WorkbenchError(f"{path}: exists and is not a folder")
        if any(path.iterdir()) and not force:
            raise WorkbenchError(f"{path}: folder exists and is not empty (use --force to replace it)")
    return path


def check_out(out: str | Path | None, force: bool) -> None:
    """Refuse a non-empty output folder (without ``force``) before any work is done."""
    if out is not None:
        ensure_new_dir(out, force=force)


def write_folder(out: str | Path, write: Callable[[Path], None], *, force: bool = False) -> list[str]:
    """Write an output folder atomically: ``write(tmp)`` fills a temporary folder that then replaces
    ``out`` (a non-empty ``out`` needs ``force``). Returns the paths written."""
    out = ensure_new_dir(out, force=force)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write(tmp)
        names = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    return [str(Path(out) / name) for name in names]
