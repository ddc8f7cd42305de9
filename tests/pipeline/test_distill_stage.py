"""The pipeline's distill stage: the recipe's preset (a name or "auto") reaches distill; none given, the student's default."""

from __future__ import annotations

import pytest

import students
from workbench.pipeline import stages
from workbench.pipeline.recipe import DistillOptions
from workbench.pipeline.stage_runner import StageContext, StageResult
from workbench.utils.jsonio import write_json


def _kwargs(tmp_path, monkeypatch, **options):
    import importlib

    distill_module = importlib.import_module("workbench.compress.distill")  # the package re-exports the function
    calls = []
    monkeypatch.setattr(distill_module, "distill", lambda run, out, **kw: calls.append(kw) or {})
    run = tmp_path / "train"
    write_json(run / "config.json", {"task": "face_angles"})
    config = {**DistillOptions().__dict__, "kd": ["response"], **options}
    ctx = StageContext("t", "distill", tmp_path / "distill", config,
                       {"train": StageResult("train", run, "k", {}, "ran", 0.0)}, progress=False)
    stages.distill(ctx)
    return calls[0]


@pytest.mark.parametrize(("options", "student", "preset"), [
    ({}, "mobileface", None),  # student = "auto", no preset: its default preset
    ({"preset": "small"}, "mobileface", "small"),  # a preset given wins
    ({"preset": "auto", "student": "tinyface"}, "tinyface", "auto"),
    ({"student": "tinyface"}, "tinyface", None),  # a named student keeps its default preset
])
def test_the_stage_passes_the_recipes_preset(tmp_path, monkeypatch, options, student, preset):
    kw = _kwargs(tmp_path, monkeypatch, **options)
    assert kw["student"] == student and kw.get("preset") == preset


def test_an_automatic_student_without_width_param_keeps_its_default_preset(tmp_path, monkeypatch):
    from students import registry

    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items()
                                                if v.task != "face_angles"})

    class Aaa(students.TinyFace):
        pass

    students.register_student("aaa", description="test", task="face_angles", presets=students.face.TINY_PRESETS,
                              example_shapes=lambda cfg: {"face": (3, 112, 112)}, hint_layer="trunk")(Aaa)
    kw = _kwargs(tmp_path, monkeypatch)
    assert kw["student"] == "aaa" and "preset" not in kw
