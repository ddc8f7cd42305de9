"""Issue 15's "done when" for the model side: a user's own `mymodel.py` (a small face CNN factory) and a data
set in the MPIIFaceGaze layout go through every command at the CLI, with tiny budgets.

The data set is written by `workbench data synth --format mpiifacegaze` (pNN.mat files, MATLAB v7.3, as the
data set ships; its reader is tested against independently written files in tests/data). What is asserted
here is the model path: every command accepts the factory spec or the run folder made from it, each stage
succeeds, and every summary that records a data source records the user's folder.
"""

import json
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app

runner = CliRunner()

MYMODEL = '''
import torch
from torch import nn


class FaceCNN(nn.Module):
    """A small full-face gaze CNN: face (B, 3, H, W) -> {"gaze": (B, 2)} (pitch, yaw in radians)."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc1 = nn.Linear(2 * width, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, face):
        return {"gaze": self.fc2(torch.relu(self.fc1(self.features(face))))}


def make(width: int = 8) -> nn.Module:
    return FaceCNN(width)
'''


def _ok(argv: list[str]) -> dict | None:
    res = runner.invoke(app, argv)
    assert res.exit_code == 0, f"{' '.join(argv)}\n{res.output}"
    return json.loads(res.stdout) if "--json" in argv else None


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """tmp/mymodel.py, tmp/data (MPIIFaceGaze layout, 4 subjects) and a run trained on them."""
    import os

    tmp = tmp_path_factory.mktemp("yours")
    (tmp / "mymodel.py").write_text(textwrap.dedent(MYMODEL))
    old = os.getcwd()
    os.chdir(tmp)
    sys.modules.pop("mymodel", None)
    try:
        _ok(["data", "synth", "--view", "face", "--format", "mpiifacegaze", "--n", "96", "--subjects", "4",
             "--size", "112", "--out", "data", "--json"])
        assert sorted(p.name for p in (tmp / "data").iterdir()) == ["p00.mat", "p01.mat", "p02.mat", "p03.mat"]
        summary = _ok(["train", "mymodel:make", "--task", "face_angles", "--data", "data", "--epochs", "1",
                       "--batch-size", "16", "--device", "cpu", "--out", "runs/mine", "--json"])
        yield tmp, summary
    finally:
        os.chdir(old)
        sys.modules.pop("mymodel", None)


def _state_dict_file(tmp: Path) -> None:
    """weights.pt: the run's weights as a plain state dict (what a user's own training script saves)."""
    import torch

    state = torch.load(tmp / "runs/mine/checkpoints/best.pt", weights_only=True)["model"]
    torch.save(state, tmp / "weights.pt")


def test_train_records_the_factory_and_the_users_data(workspace):
    tmp, summary = workspace
    assert summary["data"]["source"] == str(tmp.resolve() / "data") and summary["data"]["format"] == "mpiifacegaze"
    assert summary["task"] == "face_angles" and summary["params"] > 0
    config = json.loads((tmp / "runs/mine/config.json").read_text())
    assert config["model"]["factory"] == "mymodel:make" and config["model"]["task"] == "face_angles"
    assert config["model"]["search_path"] == str(tmp.resolve())
    assert config["data"]["source"] == str(tmp.resolve() / "data")


def test_eval_predict_on_the_run_and_on_the_bare_factory(workspace):
    tmp, _ = workspace
    r = _ok(["eval", "runs/mine", "--device", "cpu", "--json"])
    assert r["data"]["source"] == str(tmp.resolve() / "data") and r["data"]["split"] == "val" and r["samples"] > 0
    assert r["data"]["how"].startswith("held-out subjects")
    r = _ok(["eval", "runs/mine", "--data", "data", "--json"])
    assert r["data"]["source"] == "data" and r["data"]["split"] == "all" and r["samples"] == 96
    _ok(["predict", "runs/mine", "--data", "data", "--out", "pred.csv", "--device", "cpu"])
    lines = (tmp / "pred.csv").read_text().splitlines()
    assert lines[0] == "name,gaze_0,gaze_1" and len(lines) >= 96
    # The factory itself, with the run's weights as a state dict file.
    _state_dict_file(tmp)
    r2 = _ok(["eval", "mymodel:make", "--task", "face_angles", "--weights", "weights.pt", "--data", "data", "--json"])
    assert r2["metrics"] == pytest.approx(r["metrics"])


def test_compress_commands_take_the_users_run(workspace):
    tmp, _ = workspace
    p = _ok(["prune", "runs/mine", "--out", "pruned", "--target-macs", "0.6", "--steps", "1", "--finetune-epochs", "1",
             "--calib-samples", "16", "--device", "cpu", "--json"])
    assert p["macs"]["ratio"] <= 0.6 + 1e-9
    # What the fine-tune and the student trained on: the data set's training split, not a SynthGaze count.
    trained_on = json.loads((tmp / "runs/mine/metrics.json").read_text())["data"]["n_train"]
    held_out = _ok(["eval", "runs/mine", "--json"])["samples"]  # the last of the 4 subjects
    assert trained_on + held_out == 96 and held_out > 0
    assert p["finetune"]["n_train"] == trained_on
    assert json.loads((tmp / "pruned/config.json").read_text())["data"]["source"] == str(tmp.resolve() / "data")
    # The user's model as teacher, a registered student; then a user factory as the student.
    d = _ok(["distill", "runs/mine", "--student", "tinyface", "--out", "kd", "--epochs", "1", "--device", "cpu",
             "--json"])
    assert d["student"]["name"] == "tinyface"
    assert d["budget"]["n_train"] == trained_on
    assert json.loads((tmp / "kd/student/metrics.json").read_text())["data"]["source"] == str(tmp.resolve() / "data")
    d = _ok(["distill", "runs/mine", "--student", "mymodel:make", "--model", "width=4", "--out", "kd2", "--epochs", "1",
             "--device", "cpu", "--json"])
    assert d["student"]["config"]["factory"] == "mymodel:make" and d["student"]["config"]["kwargs"] == {"width": 4}
    assert json.loads((tmp / "kd2/student/metrics.json").read_text())["data"]["source"] == str(tmp.resolve() / "data")
    # The distilled factory student reopens from its run folder.
    assert _ok(["eval", "kd2/student", "--json"])["samples"] > 0
    q = _ok(["quantize", "runs/mine", "--out", "q", "--n-calib", "16", "--repeats", "3", "--device", "cpu", "--json"])
    assert q["int8"]["metrics"] and q["calibration"]["data"]["split"] == "train"
    assert q["calibration"]["data"]["source"] == str(tmp.resolve() / "data") and q["calibration"]["data"]["n"] == 16


def test_export_bench_profile_visualize_report(workspace):
    tmp, _ = workspace
    e = _ok(["export", "runs/mine", "--onnx", "mine.onnx", "--device", "cpu", "--json"])
    assert e["max_abs_diff"] <= 1e-4 and e["providers"] == ["CPUExecutionProvider"]
    b = _ok(["bench", "runs/mine", "--batch", "4", "--repeats", "2", "--warmup", "1", "--device", "cpu", "--json"])
    assert b["device"] == "cpu" and b["eager"]["batch_1"]["median_ms"] > 0 and "onnxruntime" in b
    _state_dict_file(tmp)
    pr = _ok(["profile", "mymodel:make", "--task", "face_angles", "--weights", "weights.pt", "--json"])
    assert pr["params"] > 0 and pr["task"] == "face_angles"
    assert _ok(["profile", "runs/mine", "--json"])["params"] == pr["params"]
    v = _ok(["visualize", "runs/mine", "--data", "data", "--n", "2", "--out", "frames", "--json"])
    assert len(v["files"]) == 2
    _ok(["report", "runs/mine", "--out", "report"])
    assert (tmp / "report" / "index.html").is_file()


def test_analyze_with_explicit_data(workspace):
    """Analyze on the user's run with an explicit --data (the run's own data by default is the data helper's)."""
    tmp, _ = workspace
    _ok(["analyze", "embeddings", "runs/mine", "--data", "data", "--n", "32", "--out", "emb", "--json"])
    _ok(["analyze", "fc-importance", "runs/mine", "--data", "data", "--n", "16", "--max-ablate", "4",
         "--conductance-samples", "4", "--conductance-steps", "2", "--out", "fci", "--json"])
    _ok(["analyze", "saliency", "runs/mine", "--data", "data", "--n", "2", "--method", "saliency", "--out", "sal",
         "--json"])


@pytest.mark.slow
def test_workbench_run_on_the_users_model_and_data(workspace):
    tmp, _ = workspace
    (tmp / "recipe.toml").write_text(textwrap.dedent('''
        model = "mymodel:make"
        task = "face_angles"
        data = "data"
        device = "cpu"
        out = "pipe"
        [train]
        epochs = 1
        batch_size = 16
        [analyze]
        n = 2
        checks = false
        embeddings = false
        fc_importance = false
        [prune]
        steps = 1
        finetune_epochs = 0
        [distill]
        epochs = 1
        control = false
        [quantize]
        n_calib = 8
        [bench]
        repeats = 2
        batch_sizes = [1, 4]
    '''))
    s = _ok(["run", "recipe.toml", "--json"])
    stages = s["teachers"]["mymodel.make"]
    assert all(stages[k]["status"] == "ran" for k in ("train", "analyze", "prune", "distill", "quantize", "profile",
                                                         "export"))
    cfg = json.loads((tmp / "pipe/mymodel.make/train/config.json").read_text())
    assert cfg["model"]["factory"] == "mymodel:make" and cfg["data"]["source"] == str(tmp.resolve() / "data")
    assert json.loads((tmp / "pipe/mymodel.make/train/metrics.json").read_text())["data"]["source"] == str(tmp.resolve() / "data")
    assert (Path(s["report"])).exists()
