"""`visualize` end to end on run folders of every task: PNG frames, MP4s, runs side by side, data paths, errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner
from visualize._pixels import count, near

from workbench.cli import app
from workbench.data import formats
from workbench.data import geometry as G
from workbench.data.synth import render
from workbench.errors import WorkbenchError
from workbench.train.engine import load_run_model
from workbench.visualize import draw as D
from workbench.visualize import visualize
from workbench.visualize.render import compose, load_columns
from workbench.visualize.video import read_frames, video_info

TEACHERS = ["gazenet", "mc4", "itracker", "evg", "gazelstm"]  # one per task


@pytest.fixture(scope="module")
def columns(runs):
    """teacher -> load_columns of its run on 2 SynthGaze samples (loaded once per module)."""
    cache = {}

    def get(teacher):
        if teacher not in cache:
            cache[teacher] = load_columns([runs(teacher)], data="synth", fmt=None, n=2)
        return cache[teacher]

    return get


@pytest.mark.parametrize("teacher", TEACHERS)
def test_every_task_draws_truth_and_this_models_prediction(runs, columns, teacher):
    cols = columns(teacher)
    for i in range(2):
        img = compose(cols, i, total=2).image
        assert count(img, D.GT) > 30 and count(img, D.PRED) > 30
    # The marks show this model's prediction of this sample (not another run's or sample's).
    model, _config, task = load_run_model(runs(teacher))
    ds = cols[0].ctx.data
    with torch.no_grad():
        out = model(*task.inputs(ds.batch(slice(0, 2))))
    frame = compose(cols, 1, total=2)
    a = frame.anchors
    if teacher == "itracker":
        x0, y0, x1, y1 = a["run0.screen"]
        pog = out["pog"][1].numpy()
        want = np.clip([x0 + pog[0] * (x1 - x0), y0 + pog[1] * (y1 - y0)], [x0 - 8, y0 - 8], [x1 + 8, y1 + 8])
        np.testing.assert_allclose(a["run0.pred"], want, atol=1e-3)
        assert near(frame.image, want, D.PRED, r=0)
    elif teacher == "evg":
        x0, _, x1, _ = a["run0.plane"]
        xy = task.decode(out)[1].numpy()
        want = x0 + (xy[0] - task.plane.origin_mm[0]) / task.plane.width_mm * (x1 - x0)
        assert abs(a["run0.pred"][0] - np.clip(want, x0 - 8, x1 + 8)) < 1e-3
        assert near(frame.image, a["run0.pred"], D.PRED, r=0)
    elif teacher in ("gazenet", "mc4"):
        key, tip = ("gaze", "run0.pred_tip_0") if teacher == "gazenet" else ("gaze", "run0.pred_gaze_tip_0")
        origin = a["run0.origin_0"] if teacher == "gazenet" else a["run0.gaze_origin_0"]
        py = out[key][1].double()
        if teacher == "mc4":
            py = G.lola_to_pitchyaw(G.denormalize_angle01(py))
        v = G.pitchyaw_to_vector(py).numpy()[:2]
        d = np.subtract(a[tip], origin)
        np.testing.assert_allclose(d / np.linalg.norm(d), v / np.linalg.norm(v), atol=1e-5)
        assert near(frame.image, np.add(origin, 0.6 * d), D.PRED)
    else:
        scores = cols[0].ctx.outputs["frame_scores"][1]
        torch.testing.assert_close(scores[3], torch.sigmoid(out["logit"].reshape(-1)[1]).float(), atol=1e-5, rtol=0)


def test_png_frames_are_the_composed_pictures(runs, columns, tmp_path):
    paths = visualize([runs("gazenet")], tmp_path / "out", n=2, data="synth")  # the same samples as the columns fixture
    assert [p.name for p in paths] == ["frame_00000.png", "frame_00001.png"]
    for i, path in enumerate(paths):
        frame = compose(columns("gazenet"), i, total=2)
        img = Image.open(path)
        assert img.size[0] % 2 == 0 and img.size[1] % 2 == 0
        np.testing.assert_array_equal(np.asarray(img)[: frame.size[1], : frame.size[0]], np.asarray(frame.image))


def test_mp4_decodes_back_to_every_frame(runs, columns, tmp_path):
    out = tmp_path / "vis.mp4"
    assert visualize([runs("itracker")], out, n=2, fps=4, data="synth") == [out]
    assert video_info(out)["frames"] == 2
    frames = list(read_frames(out))
    assert len(frames) == 2
    want = np.asarray(compose(columns("itracker"), 1, total=2).image).astype(float)
    got = frames[1][: want.shape[0], : want.shape[1]].astype(float)
    assert got.shape == want.shape and np.abs(got - want).mean() < 8  # lossy, but the same picture
    with pytest.raises(WorkbenchError, match="exists"):
        visualize([runs("itracker")], out, n=1)


def test_runs_side_by_side_share_the_samples(runs, tmp_path):
    teacher, student = runs("gazenet", 0), runs("gazenet", 1)
    columns = load_columns([teacher, student], data="synth", fmt=None, n=1)
    a = compose(columns, 0).anchors
    dx = a["run1.origin_0"][0] - a["run0.origin_0"][0]
    assert dx > 256 and a["run1.origin_0"][1] == a["run0.origin_0"][1]
    np.testing.assert_allclose(np.subtract(a["run1.gt_tip_0"], a["run0.gt_tip_0"]), [dx, 0])  # same truth
    assert np.abs(np.subtract(a["run1.pred_tip_0"], a["run0.pred_tip_0"]) - [dx, 0]).max() > 0.5  # own predictions


def test_a_data_set_path_is_read_and_cut_to_n(runs, tmp_path):
    data = tmp_path / "faces"
    formats.write("mpiifacegaze", render("face", 12, seed=4, subjects=3, size=112), data)
    columns = load_columns([runs("gazenet")], data=str(data), fmt=None, n=3)
    ds = columns[0].ctx.data
    # The description names the path, its layout and the split (all samples of a path given directly).
    assert len(ds) == 3 and len(ds.meta["subject"]) == 3
    assert columns[0].desc == f"{data} (mpiifacegaze), all samples"
    assert sorted(ds.meta["subject"].tolist()) == [0, 1, 2]  # drawn across the three subjects, not the first 3
    assert not columns[0].ctx.synthetic
    frame = compose(columns, 2)
    assert count(frame.image, D.GT) > 30 and count(frame.image, D.PRED) > 30


def test_user_errors_are_one_line(runs, tmp_path):
    with pytest.raises(WorkbenchError, match="share a task"):
        visualize([runs("gazenet"), runs("mc4")], tmp_path / "a", n=1)
    with pytest.raises(WorkbenchError, match="folder .* or a .mp4"):
        visualize([runs("gazenet")], tmp_path / "a.gif", n=1)
    with pytest.raises(WorkbenchError, match="--n >= 1"):
        visualize([runs("gazenet")], tmp_path / "b", n=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    res = CliRunner().invoke(app, ["visualize", str(runs("gazenet")), "--out", str(tmp_path / "x.avi")])
    assert res.exit_code == 2 and res.output.count("\n") == 1 and res.output.startswith("error:")


def test_cli_writes_frames_and_prints_json(runs, tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["visualize", str(runs("itracker")), "--out", str(out), "--n", "2", "--json"])
    assert res.exit_code == 0, res.output
    files = json.loads(res.stdout)["files"]
    assert len(files) == 2 and all(Image.open(f).size == Image.open(files[0]).size for f in files)
