"""JSON files and JSON-native values: the one reader, writer and normalizer of the workbench.

- :func:`read_json`: a file's content; a missing or broken file is one clear error, or ``default``.
  :func:`read_jsonl`: the records of a log, skipping a line cut by a kill.
- :func:`write_json`: atomically (temp file, then rename), indented, keys sorted; numpy values, tensors
  and paths are converted on the way.
- :func:`json_native`: a JSON-native copy of a value (what reading it back would give); with ``digits``,
  the compact form summaries are written in (:func:`json_ready`).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.utils.io import atomic_path

_RAISE = object()


def read_json(path: str | os.PathLike, *, default: Any = _RAISE) -> Any:
    """The JSON content of ``path``. A missing or unreadable file raises a one-line WorkbenchError, or
    returns ``default`` when one is given (``read_json(p, default=None)``: optional files)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        if default is not _RAISE:
            return default
        raise WorkbenchError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        if default is not _RAISE:
            return default
        raise WorkbenchError(f"{path}: not valid JSON ({exc})") from None


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """The records of a JSON-lines file (a log), or [] when it is missing; a line cut by a kill is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically (temp file, then rename): a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, sort_keys=True, default=json_default) + "\n")


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)``: numpy scalars and arrays, tensors (``tolist``), else ``str`` (paths)."""
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def json_native(obj: Any, *, digits: int | None = None) -> Any:
    """A JSON-native copy of ``obj`` (tuples become lists, numpy values Python ones, paths strings), so a
    value read back from a file compares equal to the one written. With ``digits``, floats are rounded to
    that many significant digits and NaN/inf become None: compact, strictly valid JSON."""
    native = json.loads(json.dumps(obj, default=json_default))
    return native if digits is None else _rounded(native, digits)


def json_ready(obj: Any) -> Any:
    """The compact form analysis summaries are written in: :func:`json_native` with 6 significant digits."""
    return json_native(obj, digits=6)


def _rounded(obj: Any, digits: int) -> Any:
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v, digits) for v in obj]
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}") if math.isfinite(obj) else None
    return obj
