"""Issue 21: adding a sixth teacher on an existing task touches its own module and its registration only.

A throwaway teacher is registered here, from the test, the way teachers/gazenet.py registers itself (the
``register_teacher`` decorator; no recipe, so training takes the generic one). Without any other file
changing, every command that names teachers finds it: ``workbench teachers`` lists it, ``train`` trains it,
``eval`` reopens its run and ``profile`` measures it. The registration is removed afterwards, so tests that
list the registered teachers see the five write-ups only.
"""

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import teachers.registry as registry
from teachers import register_teacher
from workbench.cli import app

runner = CliRunner()
NAME = "sixth_teacher"


@pytest.fixture
def sixth_teacher():
    """Register a tiny face_angles teacher; forget it afterwards (the registry is a module-level dict)."""
    assert NAME not in registry._REGISTRY

    @register_teacher(NAME, source="a throwaway test teacher", task="face_angles", inputs=("face",),
                      presets={"cpu": {"width": 4, "input_size": 32}, "paper": {"width": 8, "input_size": 32}},
                      example_shapes=lambda cfg: {"face": (3, cfg["input_size"], cfg["input_size"])},
                      gradcam_layers={"face": "conv"}, hint_layer="conv")
    class SixthTeacher(nn.Module):
        input_names = ("face",)
        output_names = ("gaze",)

        def __init__(self, *, width: int, input_size: int):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3, 2, 1)
            self.fc = nn.Linear(width, 2)

        def forward(self, face: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"gaze": self.fc(torch.relu(self.conv(face)).mean((2, 3)))}

    yield SixthTeacher
    registry._REGISTRY.pop(NAME, None)


def _ok(argv: list[str]):
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, f"{' '.join(argv)}\n{res.output}"
    return json.loads(res.stdout) if "--json" in argv else res.stdout


def test_a_sixth_teacher_needs_its_module_and_its_registration_only(sixth_teacher, tmp_path):
    listed = {row["name"]: row for row in _ok(["teachers", "--json"])}
    assert NAME in listed and listed[NAME]["task"] == "face_angles" and listed[NAME]["inputs"] == ["face"]

    run = tmp_path / "run"
    summary = _ok(["train", NAME, "--epochs", "1", "--n-train", "32", "--n-val", "16", "--batch-size", "16",
                   "--set", "train_subjects=2", "--set", "val_subjects=1", "--device", "cpu",
                   "--out", str(run), "--json"])
    assert summary["teacher"] == NAME and summary["task"] == "face_angles" and summary["epochs_run"] == 1
    assert summary["data"]["train_subjects"] == [0, 1] and summary["data"]["val_subjects"] == [2]
    model_config = json.loads((run / "config.json").read_text())["model"]
    # Registered outside the built-in packages: the run records where, so it reopens in a fresh process.
    assert model_config["teacher"] == NAME and model_config["registered_in"]["module"] == __name__

    ev = _ok(["eval", str(run), "--json"])
    assert ev["teacher"] == NAME and ev["samples"] == 16
    assert ev["metrics"]["angular_error"] == pytest.approx(summary["final"]["angular_error"], rel=1e-5)
    prof = _ok(["profile", NAME, "--json"])
    assert prof["task"] == "face_angles" and prof["params"] == summary["params"] == 122


def test_the_throwaway_teacher_is_gone_afterwards():
    from teachers import list_teachers

    assert NAME not in list_teachers()
