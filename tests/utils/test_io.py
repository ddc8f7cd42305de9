"""workbench.utils.io.atomic_path: all or nothing, and records written inside name where the folder ends up."""

from __future__ import annotations

import json

import pytest

from workbench.utils.io import atomic_path


def test_a_folder_lands_whole_and_its_records_name_the_final_path(tmp_path, monkeypatch):
    out = tmp_path / "search"
    with atomic_path(out) as tmp:
        (tmp / "candidates" / "a" / "rung1").mkdir(parents=True)
        run = tmp / "candidates" / "a" / "rung1"
        (run / "metrics.json").write_text(json.dumps({"run": str(run), "other": "/elsewhere/x", "n": 1}))
        (run / "log.jsonl").write_text(json.dumps({"event": "start", "out": str(run)}) + "\n")
        (run / "weights.bin").write_bytes(str(run).encode())  # not a record: left as written
        assert not out.exists()
    final = out / "candidates" / "a" / "rung1"
    assert json.loads((final / "metrics.json").read_text()) == {"run": str(final), "other": "/elsewhere/x", "n": 1}
    assert json.loads((final / "log.jsonl").read_text()) == {"event": "start", "out": str(final)}
    assert (final / "weights.bin").read_bytes() != str(final).encode()
    assert [p.name for p in tmp_path.iterdir()] == ["search"]  # no temporary folder left

    # A relative --out: records written with the relative or the absolute temporary path both follow.
    monkeypatch.chdir(tmp_path)
    with atomic_path("rel/out") as tmp:
        tmp.mkdir(parents=True)
        (tmp / "a.json").write_text(json.dumps({"rel": str(tmp / "x"), "abs": str(tmp.resolve() / "x")}))
    assert json.loads((tmp_path / "rel" / "out" / "a.json").read_text()) == {
        "rel": "rel/out/x", "abs": str(tmp_path / "rel" / "out" / "x")}


def test_an_error_inside_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "out") as tmp:
            tmp.mkdir()
            (tmp / "a.json").write_text("{}")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
