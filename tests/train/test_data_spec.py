"""The one data spec: a run trained on a data path is analysed, visualized, exported, profiled and
benched on its own validation split without being told; samples are drawn across subjects."""

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.formats.npz import write_npz
from workbench.data.synth import render
from workbench.errors import WorkbenchError
from workbench.tasks import TaskData
from workbench.train.data import draw, load_split, resolve_data
from workbench.train.engine import TrainRequest, fit

runner = CliRunner()
NARROW = {"width_mult": 0.25, "feature_channels": 16, "fc_hidden": 32}
TINY = {"batch_size": 16, "epochs": 1}


@pytest.fixture(scope="module")
def path_run(tmp_path_factory):
    """gazenet trained for one epoch on a 112 px npz face data set of 10 subjects (the last two held out)."""
    root = tmp_path_factory.mktemp("spec")
    data = root / "faces.npz"
    write_npz(render("face", 80, seed=7, subjects=10, size=112), data)
    out = root / "run"
    fit(TrainRequest(teacher="gazenet", model_overrides=NARROW, recipe_overrides=TINY, data=str(data), fmt="npz",
                     out=out, progress=False))
    return out, data


def _is_the_run_val(d: dict, data) -> None:
    assert d["source"] == str(data) and d["format"] == "npz" and d["split"] == "val", d
    assert set(d["subjects"]) <= {8, 9}, d  # held-out subjects of 0..9, never a training subject


def test_every_command_uses_the_runs_own_validation_split(path_run, tmp_path):
    run, data = path_run
    res = runner.invoke(app, ["analyze", "saliency", str(run), "--n", "2", "--steps", "2", "--out",
                              str(tmp_path / "s"), "--json"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)
    _is_the_run_val(json.loads((tmp_path / "s" / "summary.json").read_text())["data"], data)
    res = runner.invoke(app, ["analyze", "check", str(run), "--n", "2", "--steps", "2", "--cascade-steps", "2",
                              "--random-orders", "1", "--fractions", "3", "--out", str(tmp_path / "c"), "--json"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)
    res = runner.invoke(app, ["analyze", "embeddings", str(run), "--n", "8", "--out", str(tmp_path / "e"), "--json"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)
    res = runner.invoke(app, ["analyze", "fc-importance", str(run), "--n", "8", "--max-ablate", "2",
                              "--conductance-samples", "2", "--conductance-steps", "2", "--out", str(tmp_path / "f"),
                              "--json"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)

    res = runner.invoke(app, ["export", str(run), "--onnx", str(tmp_path / "m.onnx"), "--json"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)
    res = runner.invoke(app, ["profile", str(run), "--json"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)
    res = runner.invoke(app, ["bench", str(run), "--json", "--batch", "2", "--warmup", "0", "--repeats", "1",
                              "--backend", "eager"])
    assert res.exit_code == 0, res.output
    _is_the_run_val(json.loads(res.stdout)["data"], data)

    from workbench.visualize.render import load_columns

    cols = load_columns([run], data="val", fmt=None, n=2)
    assert cols[0].desc == f"{data} (npz), validation split"
    res = runner.invoke(app, ["visualize", str(run), "--out", str(tmp_path / "v"), "--n", "2", "--json"])
    assert res.exit_code == 0, res.output


def test_the_spec_resolves_against_the_run():
    config = {"data": {"source": "d/mpii", "format": "mpiifacegaze"}, "recipe": {}, "seed": 3}
    assert resolve_data(None, config).describe() == {"source": "d/mpii", "format": "mpiifacegaze", "split": "val"}
    assert resolve_data("train", config).split == "train"
    assert resolve_data("synth", config).describe() == {"source": "synth", "format": None, "split": "held-out"}
    assert resolve_data("d/mpii", config).format == "mpiifacegaze"  # the run's own data named by path
    assert resolve_data("other", config, "npz").describe() == {"source": "other", "format": "npz", "split": "all"}
    assert resolve_data(None, None).describe() == {"source": "synth", "format": None, "split": "val"}


def test_synth_splits_are_the_runs_subjects_and_seeds():
    from workbench.tasks import get_task

    task = get_task("face_angles")
    config = {"data": {"source": "synth", "format": None}, "seed": 5,
              "recipe": {"n_train": 8, "n_val": 6, "train_subjects": 2, "val_subjects": 3, "size": 32}}
    val, desc = load_split(task, config, resolve_data("val", config))
    assert desc["seed"] == 6 and desc["subjects"] == [2, 3, 4] and len(val) == 6
    assert set(val.meta["subject"].tolist()) <= {2, 3, 4}
    same = render("face", 6, seed=6, subjects=[2, 3, 4], size=32)
    assert torch.equal(val.tensors["face"], torch.from_numpy(same["image"]))
    fresh, desc = load_split(task, config, resolve_data("synth", config), limit=4)
    assert desc["seed"] == 7 and len(fresh) == 4 and not torch.equal(fresh.tensors["face"], val.tensors["face"][:4])
    train, desc = load_split(task, config, resolve_data("train", config))
    assert desc["seed"] == 5 and set(train.meta["subject"].tolist()) <= {0, 1}


def _grouped(subjects: list[int]) -> TaskData:
    s = np.asarray(subjects)
    return TaskData({"x": torch.arange(len(s))}, {"subject": s})


def test_draw_takes_every_subject_in_turn_and_names_its_purpose():
    data = _grouped([0] * 10 + [1] * 10 + [2] * 10)  # grouped by subject, as readers return them
    idx = draw(data, 6, "saliency", seed=0)
    subj = data.meta["subject"][idx]
    assert sorted(subj.tolist()) == [0, 0, 1, 1, 2, 2]
    assert sorted(subj[:3].tolist()) == [0, 1, 2]  # any prefix is spread across subjects too
    assert len(set(idx.tolist())) == 6
    np.testing.assert_array_equal(idx, draw(data, 6, "saliency", seed=0))  # deterministic
    assert not np.array_equal(idx, draw(data, 6, "calibration", seed=0))  # purposes draw different samples
    uneven = _grouped([0] * 2 + [1] * 20 + [2] * 1)
    assert sorted(uneven.meta["subject"][draw(uneven, 7, "example")].tolist()) == [0, 0, 1, 1, 1, 1, 2]
    assert len(draw(data, 100, "example")) == 30
    with pytest.raises(WorkbenchError, match="unknown sampling purpose"):
        draw(data, 2, "whatever")


def test_analysis_samples_of_a_three_subject_data_set_span_all_three(tmp_path):
    from teachers import get_teacher
    from workbench.analyze.samples import load_samples
    from workbench.analyze.subject import load_subject

    path = tmp_path / "three.npz"
    write_npz(render("face", 30, seed=1, subjects=3, size=112), path)
    s = load_samples(load_subject(get_teacher("gazenet", **NARROW)), n=3, data=str(path))
    assert sorted(s.subjects.tolist()) == [0, 1, 2]
    assert s.source["source"] == str(path) and s.source["split"] == "all" and s.source["drawn_from"] == 30


def test_export_profile_and_bench_take_the_size_from_the_runs_data(tmp_path):
    """A model trained at a non-preset size (96 px, the preset is 112) on a data path: every command feeds
    it inputs of its own data's size, so none fails on a shape mismatch."""
    data = tmp_path / "faces96.npz"
    write_npz(render("face", 40, seed=3, subjects=5, size=96), data)
    out = tmp_path / "run96"
    fit(TrainRequest(teacher="gazenet", model_overrides={**NARROW, "input_size": 96},
                     recipe_overrides={**TINY, "size": 96}, data=str(data), fmt="npz", out=out, progress=False))
    res = runner.invoke(app, ["export", str(out), "--onnx", str(tmp_path / "m.onnx"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["source"] == str(data)
    res = runner.invoke(app, ["profile", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["input_shapes"]["face"][-2:] == [96, 96]
    res = runner.invoke(app, ["bench", str(out), "--json", "--batch", "2", "--warmup", "0", "--repeats", "1",
                              "--backend", "eager"])
    assert res.exit_code == 0, res.output
