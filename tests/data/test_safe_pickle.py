"""The restricted unpickler: plain data loads, anything that could run code or forge objects is refused."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.data.safe_pickle import SafeUnpickler, safe_load, safe_loads
from workbench.errors import DataError

REFUSED = r"refused to unpickle {}: only plain containers, numbers, strings and numpy arrays are allowed"


def _labels() -> dict:
    rng = np.random.default_rng(0)
    return {
        f"{i:05d}.png": {
            "gaze": rng.normal(size=2).astype(np.float32),
            "head": rng.normal(size=2).astype(np.float32),
            "landmarks": rng.uniform(0, 224, (5, 2)),
        }
        for i in range(3)
    }


def _assert_same(a, b) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert type(a) is type(b) and a == b


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_roundtrips_every_protocol(tmp_path: Path, protocol: int) -> None:
    data = {
        "labels": _labels(),
        "scalars": [np.float32(1.5), np.int64(-7), np.bool_(True), np.str_("abc"), 3, 2.5, True, None, "s", b"b"],
        "arrays": [
            np.arange(12, dtype=">i4").reshape(3, 4),
            np.asfortranarray(np.arange(6.0).reshape(2, 3)),
            np.arange(10)[::3],
            np.array(["ab", "c"]),
            np.array([b"x"]),
            np.zeros((0, 5), np.float32),
            np.array([True, False]),
            np.array([1 + 2j], np.complex64),
        ],
        "containers": ({1, 2}, frozenset({"a"}), (1, (2, 3)), complex(1, -1), slice(1, 9, 2), bytearray(b"xy")),
    }
    path = tmp_path / "labels.dict"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = safe_load(path)
    _assert_same(data["labels"], out["labels"])
    _assert_same(data["arrays"], out["arrays"])
    for a, b in zip(data["scalars"], out["scalars"]):
        assert type(a) is type(b) and a == b
    assert out["containers"] == data["containers"]
    assert out["arrays"][1].flags.f_contiguous and out["arrays"][0].dtype == np.dtype(">i4")
    out["arrays"][0][0, 0] = 5  # arrays are writable copies
    with open(path, "rb") as f:  # a file object works too
        _assert_same(safe_load(f)["labels"], data["labels"])


def test_shared_and_recursive_containers_survive() -> None:
    shared = np.arange(3)
    loop: list = [1]
    loop.append(loop)
    out = safe_loads(pickle.dumps({"a": [shared, shared], "loop": loop}))
    assert out["a"][0] is out["a"][1]
    assert out["loop"][1] is out["loop"]


@given(
    st.dictionaries(
        st.text(max_size=8),
        st.lists(st.floats(allow_nan=True, width=32), max_size=6).map(lambda v: np.asarray(v, dtype=np.float32)),
        max_size=4,
    ),
    st.integers(0, pickle.HIGHEST_PROTOCOL),
)
@settings(max_examples=30, deadline=None)
def test_random_dicts_of_arrays_roundtrip(data: dict, protocol: int) -> None:
    out = safe_loads(pickle.dumps(data, protocol=protocol))
    assert list(out) == list(data)
    for k in data:
        np.testing.assert_array_equal(out[k], data[k])
        assert out[k].dtype == np.float32


class _System:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


class _Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (builtins.exec, (self.code,))


class _Popen:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.path)],))


class Plain:
    """An ordinary class: harmless, but not plain data, so refused too."""

    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize("protocol", [0, 2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("kind", ["system", "exec", "popen", "class"])
def test_hostile_pickles_are_refused_and_do_not_run(tmp_path: Path, protocol: int, kind: str) -> None:
    marker = tmp_path / "pwned"
    payload, name = {
        "system": (_System(f"touch {marker}"), r"(posix|nt|os)\.system"),
        "exec": (_Exec(f"open({str(marker)!r}, 'w').close()"), r"builtins\.exec"),
        "popen": (_Popen(marker), r"subprocess\.Popen"),
        "class": (Plain(), r"([\w.]*test_safe_pickle\.Plain|copyreg\._reconstructor)"),
    }[kind]
    path = tmp_path / "labels.dict"
    # The payload hides inside an otherwise plausible labels dict.
    path.write_bytes(pickle.dumps({"00000.png": {"gaze": np.zeros(2, np.float32), "head": payload}}, protocol=protocol))
    with pytest.raises(DataError, match=rf"labels\.dict: {REFUSED.format(name)}$") as e:
        safe_load(path)
    assert "\n" not in str(e.value)
    assert not marker.exists()
    # The sanity check of the test itself: an ordinary pickle.load does run it.
    if kind in ("system", "exec"):
        pickle.loads(path.read_bytes())
        assert marker.exists()


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize(
    "arr",
    [
        np.array([1, "x", None], dtype=object),
        np.zeros(2, dtype=[("a", "f4"), ("o", "O")]),
        np.zeros(2, dtype=[("a", "f4"), ("b", "i2")]),
        np.array(["2020-01-01"], dtype="M8[D]"),
    ],
    ids=["object", "structured-object", "structured", "datetime"],
)
def test_object_structured_and_exotic_dtypes_are_refused(protocol: int, arr: np.ndarray) -> None:
    refused = r"x\.dict: refused to unpickle numpy (object-dtype data|dtype '\w+'.*): only plain"
    with pytest.raises(DataError, match=refused):
        safe_loads(pickle.dumps({"a": arr}, protocol=protocol), name="x.dict")


class _ForgedDtype:
    """Pickles as numpy.dtype('V8') with the flags of an object dtype (what numpy's setstate would trust)."""

    def __reduce__(self):
        return (np.dtype, ("V8", False, True), (3, "|", None, None, None, 8, 1, 0x3F))


class _ForgedArray:
    """Pickles as an ndarray whose raw bytes would be read as PyObject pointers under the forged dtype."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (2,), _ForgedDtype(), False, b"\x41" * 16))


class _ForgedFields:
    """A dtype whose field table holds something that is not a dtype (crashes numpy's own setstate)."""

    def __reduce__(self):
        return (np.dtype, ("V8", False, True), (3, "|", None, ("a",), {"a": ("O", 0)}, 8, 1, 0))


def test_forged_dtype_states_never_reach_numpy() -> None:
    # Flags are ignored (the dtype is rebuilt from its type string), so the bytes stay plain bytes.
    out = safe_loads(pickle.dumps({"a": _ForgedArray()}))
    assert not out["a"].dtype.hasobject and out["a"].dtype == np.dtype("V8")
    assert out["a"].tobytes() == b"\x41" * 16
    with pytest.raises(DataError, match=r"refused to unpickle numpy dtype 'V8' with a structured or malformed state"):
        safe_loads(pickle.dumps(_ForgedFields()))


class _ShortBuffer:
    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (100,), np.dtype("f8"), False, b"\x00" * 8))


def test_garbage_and_truncated_pickles() -> None:
    good = pickle.dumps(_labels())
    with pytest.raises(DataError, match=r"^t\.dict: not a valid pickle: "):
        safe_loads(good[: len(good) // 2], name="t.dict")
    with pytest.raises(DataError, match=r"^g\.dict: not a valid pickle: "):
        safe_loads(b"\x00\x01garbage", name="g.dict")
    with pytest.raises(DataError, match=r"s\.dict: refused to unpickle malformed numpy array data"):
        safe_loads(pickle.dumps(_ShortBuffer()), name="s.dict")
    with pytest.raises(DataError, match=r"missing\.dict: file does not exist"):
        safe_load("missing.dict")


def test_persistent_ids_and_other_globals_are_refused() -> None:
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return "ext" if isinstance(obj, Plain) else None

    buf = io.BytesIO()
    P(buf).dump([Plain()])
    with pytest.raises(DataError, match=REFUSED.format("a persistent id")):
        safe_loads(buf.getvalue())
    for obj, name in [(np.load, r"numpy[\w.]*\.load"), (getattr, r"builtins\.getattr"), (eval, r"builtins\.eval")]:
        with pytest.raises(DataError, match=REFUSED.format(name)):
            safe_loads(pickle.dumps(obj))


def test_is_a_pickle_unpickler() -> None:
    assert issubclass(SafeUnpickler, pickle.Unpickler)
    assert SafeUnpickler(io.BytesIO(pickle.dumps({"a": 1}))).load() == {"a": 1}
