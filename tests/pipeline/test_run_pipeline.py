"""run_pipeline with injected fake stages: pipeline.json records every invocation; the CLI's exit codes."""

import json

import pytest
from typer.testing import CliRunner

import workbench.pipeline as P
from workbench.cli import app
from workbench.errors import WorkbenchError
from workbench.pipeline import Stage, parse_recipe, run_pipeline
from workbench.pipeline.stage_runner import StageCrashed


def _stage(name, needs=(), fail=None):
    def fn(ctx):
        if fail is not None:
            raise fail
        ctx.dir.mkdir(parents=True)
        (ctx.dir / "x.txt").write_text(name)
        return {"n": 1}
    return Stage(name, fn, needs)


def test_pipeline_json_records_invocations_and_teachers(tmp_path):
    rec = parse_recipe({"teachers": ["gazenet", "itracker"], "out": str(tmp_path / "run")})
    lines = []
    s1 = run_pipeline(rec, stages=[_stage("a"), _stage("b", ("a",))], report=False, command="workbench run x.toml",
                      log=lines.append, progress=False)
    assert set(s1["teachers"]) == {"gazenet", "itracker"}
    assert (tmp_path / "run" / "itracker" / "b" / "x.txt").read_text() == "b"
    (tmp_path / "run" / "gazenet" / "b" / "stage.json").unlink()  # b must run again, and now fails
    with pytest.raises(WorkbenchError, match="stage 'b' failed for gazenet: nope"):
        run_pipeline(rec, stages=[_stage("a"), _stage("b", ("a",), fail=WorkbenchError("nope"))], report=False,
                     command="workbench run y.toml", progress=False)
    doc = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert [i["command"] for i in doc["invocations"]] == ["workbench run x.toml", "workbench run y.toml"]
    assert doc["invocations"][0]["status"] == "done"
    assert doc["invocations"][1]["status"].startswith("failed: StageFailed: stage 'b' failed for gazenet")
    v = doc["invocations"][0]["versions"]
    assert {"python", "torch", "captum", "torch-pruning", "onnxruntime"} <= set(v)
    assert "commit" in doc["invocations"][0]["git"]


def test_report_never_replaces_a_foreign_folder(tmp_path):
    keep = tmp_path / "mine"
    keep.mkdir()
    (keep / "thesis.tex").write_text("precious")
    rec = parse_recipe({"out": str(tmp_path / "run"), "report": {"out": str(keep)}})
    with pytest.raises(WorkbenchError, match="holds something other than a report"):
        run_pipeline(rec, stages=[_stage("a")], progress=False)
    assert (keep / "thesis.tex").read_text() == "precious"


def test_cli_crash_is_one_line_exit_1_and_user_error_exit_2(monkeypatch, tmp_path):
    log = tmp_path / "run" / "gazenet" / "train" / "error.log"

    def crash(*a, **k):
        raise StageCrashed(f"stage 'train' crashed for gazenet: ZeroDivisionError: x (traceback in {log})", log)

    monkeypatch.setattr(P, "run_pipeline", crash)
    res = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "run")])
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1] == (f"error: stage 'train' crashed for gazenet: ZeroDivisionError: x "
                                                   f"(traceback in {log})")
    assert "Traceback" not in res.stderr

    def fail(*a, **k):
        raise WorkbenchError("stage 'prune' failed for gazenet: bad (look in runs/x/gazenet/prune)")

    monkeypatch.setattr(P, "run_pipeline", fail)
    res = CliRunner().invoke(app, ["run", "--teachers", "gazenet"])
    assert res.exit_code == 2 and res.stderr.strip().splitlines()[-1].startswith("error: stage 'prune' failed")
    res = CliRunner().invoke(app, ["run", "--teachers", "gazenet,nobody"])
    assert res.exit_code == 2 and "unknown teacher(s) ['nobody']" in res.stderr


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    import fcntl

    rec = parse_recipe({"out": str(tmp_path / "run")})
    (tmp_path / "run").mkdir()
    with open(tmp_path / "run" / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running `workbench run` holds
        with pytest.raises(WorkbenchError, match="another `workbench run` is using this run folder"):
            run_pipeline(rec, stages=[_stage("a")], report=False, progress=False)
    assert not (tmp_path / "run" / "gazenet").exists()
    run_pipeline(rec, stages=[_stage("a")], report=False, progress=False)  # released: runs
    assert (tmp_path / "run" / "gazenet" / "a" / "x.txt").exists()
