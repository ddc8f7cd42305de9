"""The optional [compress] stage of `workbench run`: off by default, on with one budget, checked when parsed."""

from __future__ import annotations

import json

import pytest

from workbench.errors import WorkbenchError
from workbench.pipeline import STAGES, Stage, parse_recipe, run_pipeline, stage_configs
from workbench.train.engine import TrainRequest, fit
from compress._tiny import SMALL, one_thread_module  # noqa: F401 (autouse fixture)
from compress._tiny import TINY_RECIPE as TINY

COMPRESS = next(s for s in STAGES if s.name == "compress")


def _tiny_train(ctx):
    """The train stage on a tiny gazenet (the real one trains the cpu preset at the demo budget)."""
    return {k: v for k, v in fit(TrainRequest(teacher="gazenet", model_overrides=SMALL, recipe_overrides=TINY,
                                              out=ctx.dir, progress=False)).items() if k in ("best", "params")}


def test_compress_is_the_last_stage_and_off_by_default(tmp_path):
    assert STAGES[-1].name == "compress"
    rec = parse_recipe({"out": str(tmp_path / "run")})
    assert stage_configs(rec, "gazenet")["compress"]["macs"] is None
    summary = run_pipeline(rec, stages=[Stage("train", _tiny_train), COMPRESS], report=False, progress=False)
    assert list(summary["teachers"]["gazenet"]) == ["train"]
    assert not (tmp_path / "run" / "gazenet" / "compress").exists()
    # A speedup alone turns it on, and reaches the search as its keyword.
    on = parse_recipe({"out": str(tmp_path / "run"), "compress": {"speedup": 2}})
    assert on.compress.enabled() and stage_configs(on, "gazenet")["compress"]["speedup"] == 2


def test_a_budget_turns_the_stage_on_and_it_writes_the_search(tmp_path):
    rec = parse_recipe({"out": str(tmp_path / "run"), "compress": {
        "params": 60000, "budget_minutes": 3, "candidates": ["prune"], "max_candidates": 2}})
    summary = run_pipeline(rec, stages=[Stage("train", _tiny_train), COMPRESS], report=False, progress=False)
    assert summary["teachers"]["gazenet"]["compress"]["status"] == "ran"
    sdir = tmp_path / "run" / "gazenet" / "compress"
    s = json.loads((sdir / "summary.json").read_text())
    marker = json.loads((sdir / "stage.json").read_text())
    assert marker["summary"]["best"]["name"] == s["best"]["name"]
    assert s["budget"] == {"kind": "params", "value": 60000.0, "unit": "parameters"}
    assert s["best"]["params"] <= 60000 and s["best"]["under_budget"] and (sdir / "front.png").is_file()
    assert "workbench.compress.search.compress(" in marker["calls"][0] and "params=60000.0" in marker["calls"][0]


@pytest.mark.parametrize("table,needle", [
    ({"macs": 1e6, "latency_ms": 2.0}, "give one of latency_ms, speedup, macs or params"),
    ({"speedup": 2, "params": 1e5}, "give one of latency_ms, speedup, macs or params"),
    ({"speedup": 0}, "must be > 0"),
    ({"macs": -1}, "must be > 0"),
    ({"macs": 1e6, "budget_x": 2, "budget_minutes": 1}, "at most one of budget_x and budget_minutes"),
    ({"macs": 1e6, "eta": 1}, "eta must be >= 2"),
    ({"macs": 1e6, "rung_epochs": 0}, "rung_epochs > 0"),
    ({"macs": 1e6, "candidates": ["int8"]}, "candidates expects"),
    ({"macs": 1e6, "candidates": ["fp16"]}, "candidates expects"),
    ({"macs": "big"}, "macs expects a number"),
    ({"budget": 3}, "unknown key"),
])
def test_bad_compress_sections_are_one_line_errors(table, needle):
    with pytest.raises(WorkbenchError, match=needle):
        parse_recipe({"compress": table})
