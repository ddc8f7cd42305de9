"""Writing files and folders so that a crash or an error never leaves half-written output behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, on error removed.

    Works for a file or a folder written at the yielded path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
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
