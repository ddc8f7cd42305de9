"""The one JSON module: reading with and without a default, atomic writing, JSON-native copies."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.errors import WorkbenchError
from workbench.utils.jsonio import json_native, json_ready, read_json, read_jsonl, write_json


def test_read_json_raises_one_line_or_returns_the_default(tmp_path):
    missing, broken = tmp_path / "missing.json", tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(WorkbenchError, match="missing"):
        read_json(missing)
    with pytest.raises(WorkbenchError, match="not valid JSON"):
        read_json(broken)
    assert read_json(missing, default=None) is None
    assert read_json(broken, default={}) == {}
    assert read_json(tmp_path / "a-file.json" / "below", default=None) is None  # NotADirectoryError


def test_write_json_is_atomic_sorted_and_converts_numpy_tensors_and_paths(tmp_path):
    path = tmp_path / "sub" / "x.json"
    write_json(path, {"b": np.float32(0.5), "a": (1, 2), "t": torch.tensor([1, 2]), "p": Path("/x")})
    text = path.read_text()
    assert text.index('"a"') < text.index('"b"') and text.endswith("\n")
    assert json.loads(text) == {"a": [1, 2], "b": 0.5, "t": [1, 2], "p": "/x"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]  # no temp file left


def test_write_json_leaves_no_file_when_the_value_cannot_be_written(tmp_path):
    path = tmp_path / "x.json"
    with pytest.raises(ValueError):
        write_json(path, {"bad": [1, {"x": _Unwritable()}]})
    assert not path.exists() and list(tmp_path.iterdir()) == []


class _Unwritable:
    def __str__(self):  # json_default falls back to str(): make it fail
        raise ValueError("cannot be written")


def test_json_native_and_json_ready():
    value = {"a": (1, np.int64(2)), "b": np.array([0.1234567891, np.nan]), 3: np.bool_(True)}
    assert json_native(value)["a"] == [1, 2] and json_native(value)["3"] is True
    assert math.isnan(json_native(value)["b"][1])
    assert json_ready(value)["b"] == [0.123457, None]


def test_read_jsonl_skips_a_cut_line(tmp_path):
    path = tmp_path / "log.jsonl"
    assert read_jsonl(path) == []
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
