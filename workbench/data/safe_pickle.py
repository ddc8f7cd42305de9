"""Read pickles from data sets without letting them run code.

A pickle can call any importable function while it loads (``os.system``, ``builtins.exec``, ...). The
write-ups' label files (``labels.dict``) are pickled dicts of numpy arrays, so :func:`safe_load` allows
exactly what those need and refuses everything else with a :class:`~workbench.errors.DataError`.

Numpy needs extra care: an object-dtype array holds raw ``PyObject`` pointers, and numpy's own
``dtype.__setstate__`` trusts the flags and field table a pickle gives it, so a crafted dtype turns raw
bytes into "objects" (a crash at best). Dtypes and arrays are therefore inert placeholders while the
pickle loads; a dtype is rebuilt from its type string and byte order only once its state is final, only
plain dtypes (bool, int, float, complex, bytes, str) are accepted, and the array data is copied in from
checked byte buffers. Structured, datetime and object dtypes are refused.
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
from typing import IO, Any, Callable

import numpy as np

from workbench.errors import DataError

__all__ = ["safe_load", "safe_loads", "SafeUnpickler"]

_ALLOWED_MSG = "only plain containers, numbers, strings and numpy arrays are allowed"


class _Refused(Exception):
    """Raised inside the unpickler; turned into a DataError naming the file by :func:`safe_load`."""


class _PendingDtype:
    """A dtype whose pickled state may still arrive (BUILD); numpy sees it only via :meth:`final`.

    Only plain dtypes (bool, integers, floats, complex, bytes, str, raw void) are rebuilt, from their
    type string and byte order alone: numpy's own ``dtype.__setstate__`` trusts the pickled flags and
    field table (a crafted one crashes the interpreter), so it is never called.
    """

    def __init__(self, args: tuple) -> None:
        self._args = args
        self._state: Any = None
        self._dtype: np.dtype | None = None

    def __setstate__(self, state: Any) -> None:
        if self._dtype is not None or self._state is not None:
            raise _Refused("numpy dtype state given twice or after use")
        self._state = state

    def final(self) -> np.dtype:
        if self._dtype is None:
            self._dtype = _plain_dtype(self._args, self._state)
        return self._dtype


def _plain_dtype(args: tuple, state: Any) -> np.dtype:
    spec = args[0] if args else None
    if not isinstance(spec, str) or len(spec) > 16:
        raise _Refused("malformed numpy dtype")
    try:
        dt = np.dtype(spec)
    except Exception:  # noqa: BLE001 - any unknown type string
        raise _Refused(f"numpy dtype {spec!r}") from None
    if dt.hasobject:
        raise _Refused("numpy object-dtype data")
    if dt.kind not in "biufcSUV" or dt.names is not None or dt.subdtype is not None:
        raise _Refused(f"numpy dtype {spec!r} (only plain numeric, bytes and str dtypes)")
    if state is None:
        return dt
    if (
        not isinstance(state, tuple)
        or len(state) not in (8, 9)
        or state[1] not in ("<", ">", "|", "=")
        or any(v is not None for v in state[2:5])
        or state[5] not in (-1, dt.itemsize)
    ):
        raise _Refused(f"numpy dtype {spec!r} with a structured or malformed state")
    return dt.newbyteorder(state[1]) if state[1] in "<>" else dt


def _check_shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise _Refused("malformed numpy array shape")
    return shape


def _check_buffer(data: Any, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if not isinstance(data, (bytes, bytearray)) or len(data) != int(np.prod(shape)) * dtype.itemsize:
        raise _Refused("malformed numpy array data")


class _PendingArray:
    """What ``_reconstruct`` returns: becomes a real array when its state (BUILD) arrives."""

    def __init__(self, shape: Any) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None or not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused("malformed numpy array state")
        shape, dtype, fortran, data = state[-4:]
        shape = _check_shape(shape)
        if not isinstance(dtype, _PendingDtype) or not isinstance(fortran, bool):
            raise _Refused("malformed numpy array state")
        dt = dtype.final()
        _check_buffer(data, shape, dt)
        arr = np.frombuffer(bytes(data), dtype=dt).reshape(shape, order="F" if fortran else "C")
        self.array = arr.copy(order="K")


class _NdarrayType:
    """Stands in for ``numpy.ndarray`` as the subtype argument of ``_reconstruct``."""


def _make_dtype(*args: Any) -> _PendingDtype:
    if any(isinstance(a, (_PendingDtype, _PendingArray)) for a in args):
        raise _Refused("malformed numpy dtype")
    return _PendingDtype(args)


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _PendingArray:
    if subtype is not _NdarrayType:
        raise _Refused("numpy array of a subclass")
    return _PendingArray(shape)


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not isinstance(dtype, _PendingDtype) or order not in ("C", "F"):
        raise _Refused("malformed numpy array buffer")
    dt, shape = dtype.final(), _check_shape(shape)
    _check_buffer(buf, shape, dt)
    return np.frombuffer(bytes(buf), dtype=dt).reshape(shape, order=order).copy(order="K")


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, _PendingDtype):
        raise _Refused("malformed numpy scalar")
    dt = dtype.final()
    _check_buffer(data, (), dt)
    return np.frombuffer(bytes(data), dtype=dt)[0]


def _codecs_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    # Protocol 0-2 pickles store bytes as _codecs.encode(str, "latin1"); nothing else is needed.
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode with anything but a latin1 string")
    return obj.encode("latin1", errors="strict")


_NP = ("numpy.core.multiarray", "numpy._core.multiarray")
_ALLOWED: dict[tuple[str, str], Callable[..., Any] | type] = {
    ("numpy", "ndarray"): _NdarrayType,
    ("numpy", "dtype"): _make_dtype,
    **{(m, "_reconstruct"): _reconstruct for m in _NP},
    **{(m, "scalar"): _scalar for m in _NP},
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _codecs_encode,
    **{("builtins", c.__name__): c for c in (set, frozenset, complex, slice, bytes, bytearray)},
}


class SafeUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` whose ``find_class`` returns only the allow-listed numpy helpers.

    Everything else (``os.system``, ``builtins.exec``, any class) raises; so do persistent ids.
    """

    def find_class(self, module: str, name: str) -> Any:
        # Protocols 0-2 use Python 2 names; map them the way pickle.Unpickler(fix_imports=True) does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise _Refused("a persistent id")


def _finish(obj: Any, memo: dict[int, Any]) -> Any:
    """Replace placeholders by real arrays/dtypes, keeping shared and recursive containers intact."""
    key = id(obj)
    if key in memo:
        return memo[key]
    if isinstance(obj, _PendingArray):
        if obj.array is None:
            raise _Refused("numpy array without data")
        out: Any = obj.array
    elif isinstance(obj, _PendingDtype):
        out = obj.final()
    elif isinstance(obj, np.ndarray):
        out = obj
    elif obj is _NdarrayType:
        raise _Refused("numpy.ndarray")
    elif isinstance(obj, list):
        out = memo[key] = []
        out.extend(_finish(v, memo) for v in obj)
    elif isinstance(obj, dict):
        out = memo[key] = {}
        for k, v in list(obj.items()):
            out[_finish(k, memo)] = _finish(v, memo)
    elif isinstance(obj, (tuple, set, frozenset)):
        out = type(obj)(_finish(v, memo) for v in obj)
    elif isinstance(obj, slice):
        out = slice(_finish(obj.start, memo), _finish(obj.stop, memo), _finish(obj.step, memo))
    else:
        out = obj
    if isinstance(out, np.ndarray) and out.dtype.hasobject:  # belt and braces: never returned
        raise _Refused("numpy object-dtype data")
    memo[key] = out
    return out


def _describe(file: Any) -> str:
    if isinstance(file, (str, os.PathLike)):
        return str(file)
    return str(getattr(file, "name", "<pickle stream>"))


def safe_load(path_or_file: str | os.PathLike | IO[bytes]) -> Any:
    """Unpickle plain data (dict/list/tuple/set, numbers, strings, bytes, numpy arrays) from a file.

    Raises :class:`DataError` naming the file when the pickle asks for anything else (the payload is
    never run), holds numpy object-dtype arrays, or is not a valid pickle.
    """
    where = _describe(path_or_file)
    try:
        if isinstance(path_or_file, (str, os.PathLike)):
            with open(path_or_file, "rb") as f:
                obj = SafeUnpickler(f).load()
        else:
            obj = SafeUnpickler(path_or_file).load()
        return _finish(obj, {})
    except _Refused as e:
        raise DataError(f"{where}: refused to unpickle {e}: {_ALLOWED_MSG}") from None
    except FileNotFoundError:
        raise DataError(f"{where}: file does not exist") from None
    except IsADirectoryError:
        raise DataError(f"{where}: is a folder, expected a pickle file") from None
    except RecursionError:
        raise DataError(f"{where}: not a valid pickle: nested too deeply") from None
    except Exception as e:  # noqa: BLE001 - truncated/garbled pickles raise many kinds of errors
        msg = " ".join(str(e).split()) or type(e).__name__
        raise DataError(f"{where}: not a valid pickle: {msg}") from None


def safe_loads(data: bytes, name: str = "<bytes>") -> Any:
    """:func:`safe_load` for an in-memory pickle; ``name`` is used in error messages."""
    f = io.BytesIO(data)
    f.name = name  # type: ignore[attr-defined]
    return safe_load(f)
