"""The stage runner with cheap fake stages: skip, resume, rerun on a changed config, failures."""

import json

import pytest

from workbench.errors import WorkbenchError
from workbench.pipeline.stage_runner import (
    ERROR_LOG,
    MARKER,
    Stage,
    StageCrashed,
    StageFailed,
    read_marker,
    run_stages,
)


class Recorder:
    """Fake stages that write a file derived from their config and inputs, and count their calls."""

    def __init__(self):
        self.calls = []
        self.fail = {}  # stage name -> exception to raise once

    def stage(self, name, needs=(), resumable=False):
        def fn(ctx):
            self.calls.append((name, ctx.resume))
            if name in self.fail:
                raise self.fail.pop(name)
            ctx.dir.mkdir(parents=True, exist_ok=True)
            upstream = {n: (r.dir / "out.txt").read_text() for n, r in ctx.inputs.items()}
            (ctx.dir / "out.txt").write_text(f"{name}:{ctx.config}:{sorted(upstream.items())}")
            return {"value": ctx.config.get("v"), "resumed": ctx.resume}
        return Stage(name, fn, needs, resumable=resumable)

    def ran(self):
        names = [c[0] for c in self.calls]
        self.calls.clear()
        return names


@pytest.fixture
def rec():
    return Recorder()


def _stages(rec):
    return [rec.stage("a", resumable=True), rec.stage("b", ("a",)), rec.stage("c", ("a",)), rec.stage("d", ("b", "c"))]


CONFIGS = {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}, "d": {}}


def test_second_run_skips_everything(tmp_path, rec):
    res = run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    assert rec.ran() == ["a", "b", "c", "d"] and all(r.status == "ran" for r in res.values())
    marker = read_marker(tmp_path / "b")
    assert marker["summary"] == {"value": 2, "resumed": False} and marker["files"] == ["out.txt"]
    assert marker["needs"] == {"a": res["a"].key}
    res2 = run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    assert rec.ran() == [] and all(r.status == "skipped" for r in res2.values())
    assert {n: r.key for n, r in res.items()} == {n: r.key for n, r in res2.items()}
    assert res2["b"].summary == {"value": 2, "resumed": False}


def test_changed_config_reruns_the_stage_and_its_readers_only(tmp_path, rec):
    run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    rec.ran()
    run_stages(tmp_path, "t", _stages(rec), {**CONFIGS, "c": {"v": 30}})
    assert rec.ran() == ["c", "d"]
    assert "30" in (tmp_path / "d" / "out.txt").read_text()  # d read the new c
    run_stages(tmp_path, "t", _stages(rec), {**CONFIGS, "a": {"v": 10}, "c": {"v": 30}})
    assert rec.ran() == ["a", "b", "c", "d"]


def test_missing_output_reruns(tmp_path, rec):
    run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    rec.ran()
    (tmp_path / "b" / "out.txt").unlink()
    run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    assert rec.ran() == ["b"]  # b's key is unchanged, so d (which read b's old output) stays


def test_interrupted_run_continues_where_it_stopped(tmp_path, rec):
    rec.fail["c"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    assert rec.ran() == ["a", "b", "c"]
    run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    assert rec.ran() == ["c", "d"]


def test_resumable_stage_continues_in_its_folder_only_with_the_same_key(tmp_path, rec):
    rec.fail["a"] = KeyboardInterrupt()
    stages = _stages(rec)
    with pytest.raises(KeyboardInterrupt):
        run_stages(tmp_path, "t", stages, CONFIGS)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "partial.pt").write_text("half")  # what a killed training leaves
    assert rec.ran() == ["a"]
    res = run_stages(tmp_path, "t", stages, CONFIGS)
    assert rec.calls[0] == ("a", True) and res["a"].summary["resumed"] is True
    assert (tmp_path / "a" / "partial.pt").exists()
    rec.ran()
    # Interrupted again, then restarted with another config: the old partial output is wiped.
    (tmp_path / "a" / MARKER).unlink()
    rec.fail["a"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        run_stages(tmp_path, "t", stages, {**CONFIGS, "a": {"v": 5}})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "partial.pt").write_text("half")
    run_stages(tmp_path, "t", stages, {**CONFIGS, "a": {"v": 6}})
    assert rec.calls[1] == ("a", False) and not (tmp_path / "a" / "partial.pt").exists()


def test_non_resumable_unfinished_stage_starts_over(tmp_path, rec):
    run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    (tmp_path / "b" / MARKER).unlink()
    (tmp_path / "b" / "stale.txt").write_text("x")
    rec.ran()
    run_stages(tmp_path, "t", _stages(rec), CONFIGS)
    assert rec.ran() == ["b"] and not (tmp_path / "b" / "stale.txt").exists()


def test_user_error_names_stage_and_folder(tmp_path, rec):
    rec.fail["b"] = WorkbenchError("target_macs too small for this model")
    with pytest.raises(StageFailed) as e:
        run_stages(tmp_path, "gazenet", _stages(rec), CONFIGS)
    msg = str(e.value)
    assert isinstance(e.value, WorkbenchError) and "\n" not in msg
    assert "stage 'b' failed for gazenet" in msg and str(tmp_path / "b") in msg and "target_macs too small" in msg
    assert "target_macs too small" in (tmp_path / "b" / ERROR_LOG).read_text()
    assert read_marker(tmp_path / "b") is None and read_marker(tmp_path / "a") is not None
    rec.ran()
    run_stages(tmp_path, "gazenet", _stages(rec), CONFIGS)  # fixed: continues from b
    assert rec.ran() == ["b", "c", "d"] and not (tmp_path / "b" / ERROR_LOG).exists()


def test_crash_writes_traceback_and_names_the_log(tmp_path, rec):
    rec.fail["d"] = ZeroDivisionError("division by zero")
    with pytest.raises(StageCrashed) as e:
        run_stages(tmp_path, "evg", _stages(rec), CONFIGS)
    log = tmp_path / "d" / ERROR_LOG
    assert str(e.value) == (f"stage 'd' crashed for evg: ZeroDivisionError: division by zero (traceback in {log})")
    assert e.value.log == log and "Traceback (most recent call last)" in log.read_text()


def test_log_lines_and_corrupt_marker(tmp_path, rec):
    lines = []
    run_stages(tmp_path, "t", _stages(rec), CONFIGS, log=lines.append)
    assert len(lines) == 8 and lines[0].startswith("t · a: running") and lines[1].startswith("t · a: done in")
    (tmp_path / "c" / MARKER).write_text("{not json")
    lines.clear()
    run_stages(tmp_path, "t", _stages(rec), CONFIGS, log=lines.append)
    assert "t · c: unfinished or failed earlier, starting it over" in lines[2]
    assert json.loads((tmp_path / "c" / MARKER).read_text())["stage"] == "c"


def test_stage_order_is_checked(tmp_path, rec):
    with pytest.raises(ValueError, match="needs"):
        run_stages(tmp_path, "t", [rec.stage("b", ("a",)), rec.stage("a")], CONFIGS)
