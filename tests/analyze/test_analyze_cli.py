"""`workbench analyze ...` end to end on a tiny trained run, a user's factory model, and bad input."""

import json
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.formats.npz import write_npz
from workbench.train.engine import TrainRequest, fit

runner = CliRunner()
TINY = {"n_train": 32, "n_val": 16, "batch_size": 16, "train_subjects": 2, "val_subjects": 3, "epochs": 1}
NARROW = {"width_mult": 0.25, "feature_channels": 16, "fc_hidden": 32}


def run(*args):
    return runner.invoke(app, ["analyze", *[str(a) for a in args]])


@pytest.fixture(scope="module")
def gazenet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gazenet"
    fit(TrainRequest(teacher="gazenet", model_overrides=NARROW, recipe_overrides=TINY, out=out, progress=False))
    return out


@pytest.fixture()
def factory(tmp_path, monkeypatch):
    (tmp_path / "user_models.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn

        def mlp():
            torch.manual_seed(0)
            return nn.Sequential(nn.Flatten(), nn.Linear(256, 8), nn.ReLU(), nn.Linear(8, 2))
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "user_models:mlp"


def test_every_command_on_a_run(gazenet_run, tmp_path):
    res = run("saliency", gazenet_run, "--n", 2, "--steps", 2, "--target", "yaw", "--out", tmp_path / "s", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["targets"] == ["yaw"] and (tmp_path / "s" / "face.png").exists()
    assert (tmp_path / "s" / "summary.json").exists() and (tmp_path / "s" / "attributions.npz").exists()
    res = run("saliency", gazenet_run, "--out", tmp_path / "s")  # refused before any work
    assert res.exit_code == 2 and "--force" in res.stderr and json.loads((tmp_path / "s" / "summary.json").read_text())

    res = run("check", gazenet_run, "--n", 2, "--steps", 2, "--cascade-steps", 2, "--random-orders", 1,
              "--fractions", 3, "--out", tmp_path / "c")
    assert res.exit_code == 0, res.output
    assert "eye-mass ratio" in res.stdout and "cascading randomization" in res.stdout
    for name in ("summary.json", "deletion.png", "randomization.png", "randomization_maps.png", "face.png"):
        assert (tmp_path / "c" / name).stat().st_size > 0, name

    res = run("embeddings", gazenet_run, "--list-layers", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["default"] == "fc.6:input"
    res = run("embeddings", gazenet_run, "--n", 12, "--layer", "fc.3", "--out", tmp_path / "e")
    assert res.exit_code == 0, res.output
    npz = np.load(tmp_path / "e" / "embeddings.npz")
    assert npz["embeddings"].shape == (12, 32) and list(npz["label_names"]) == ["pitch_deg", "yaw_deg"]
    assert (tmp_path / "e" / "pca.png").exists()

    res = run("fc-importance", gazenet_run, "--n", 4, "--max-ablate", 2, "--conductance-samples", 2,
              "--conductance-steps", 2, "--out", tmp_path / "f")
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "f" / "fc_importance.json").read_text())
    assert doc["model"]["teacher"] == "gazenet" and doc["layers"]["fc.6"]["is_head"]
    assert len(doc["layers"]["fc.0"]["scores"]["taylor"]) == doc["layers"]["fc.0"]["out_features"]


def test_a_users_factory_model(factory, tmp_path):
    res = run("saliency", factory, "--input", "x=1,16,16", "--method", "saliency", "--n", 3, "--out", tmp_path / "u",
              "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["targets"] == ["out0", "out1"] and s["inputs"] == {"x": [1, 16, 16]}
    assert (tmp_path / "u" / "x.png").exists()


def _empty_face_npz(tmp_path):
    path = tmp_path / "empty.npz"
    write_npz({"image": np.zeros((0, 3, 112, 112), np.uint8), "gaze_pitchyaw": np.zeros((0, 2), np.float32),
               "head_pitchyaw": np.zeros((0, 2), np.float32), "landmarks": np.zeros((0, 5, 2), np.float32),
               "eye_boxes": np.zeros((0, 2, 4), np.float32), "subject": np.zeros(0, np.int64)}, path, view="face")
    return path


@pytest.mark.parametrize("args, needle", [
    (["embeddings", "{run}", "--layer", "nope"], "unknown layer 'nope'; valid layers: features, features.0"),
    (["fc-importance", "{run}", "--layer", "features.0"], "valid Linear layers (Linear): fc.0, fc.3, fc.6"),
    (["saliency", "{run}", "--method", "lime"], "unknown attribution method 'lime'"),
    (["saliency", "{run}", "--target", "roll"], "unknown target 'roll'; expected one of pitch, yaw"),
    (["saliency", "{run}", "--method", "gradcam", "--layer", "fc.0"], "LayerGradCam needs a conv layer"),
    (["saliency", "{factory}", "--input", "x=1,16,16", "--method", "gradcam"], "LayerGradCam needs a conv layer"),
    (["saliency", "{factory}"], "names no task"),
    (["saliency", "{run}", "--data", "{empty}", "--n", 2], "empty"),
    (["saliency", "{tmp}/no-such-run"], "not a run folder"),
])
def test_user_errors_are_one_line_exit_2(gazenet_run, factory, tmp_path, args, needle):
    empty = _empty_face_npz(tmp_path) if "{empty}" in args else ""
    subst = {"{run}": str(gazenet_run), "{factory}": factory, "{empty}": str(empty), "{tmp}": str(tmp_path)}
    argv = [a if not isinstance(a, str) else _sub(a, subst) for a in args]
    res = run(*argv, "--out", tmp_path / "o")
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0], res.stderr  # (a progress bar may precede it)
    assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def _sub(arg, subst):
    for k, v in subst.items():
        arg = arg.replace(k, v)
    return arg
