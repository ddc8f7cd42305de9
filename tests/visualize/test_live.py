"""`live` on a short SynthGaze video: annotated frames, the model's own predictions, reference-point errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner
from visualize._pixels import count, near

from workbench.cli import app
from workbench.data.geometry import Screen
from workbench.data.synth import render
from workbench.errors import WorkbenchError
from workbench.train.engine import load_run_model
from workbench.visualize import draw as D
from workbench.visualize import live
from workbench.visualize.live import grid_point, screen_panel
from workbench.visualize.video import FrameWriter, read_frames, video_info

N = 6
SIZE = (240, 136)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A 6-frame SynthGaze video (240x136: even, as video encoders want), written by the workbench's writer."""
    data = render("frame", N, seed=5, subjects=[7], size=SIZE)
    path = tmp_path_factory.mktemp("video") / "synth.mp4"
    with FrameWriter(path, fps=5) as w:
        for img in data["image"]:
            w.write(Image.fromarray(img.transpose(1, 2, 0)))
    return path


def test_the_video_holds_every_frame(video):
    assert video_info(video) == {"frames": N, "fps": 5.0}
    frames = list(read_frames(video))
    assert len(frames) == N and frames[0].shape == (136, 240, 3)


def test_live_writes_annotated_frames_with_the_models_predictions(runs, video, tmp_path):
    run = runs("evg", size=SIZE)  # trained (here: built) at the video's frame size, so no letterbox
    notes = []
    summary = live(run, source=str(video), out=tmp_path / "live", cycle=2, on_note=notes.append)
    assert summary["frames"] == N and summary["task"] == "plane_pog"
    assert any("SynthGaze only" in n for n in notes) and notes == summary["notes"]
    files = sorted((tmp_path / "live").glob("frame_*.png"))
    assert len(files) == N
    for f in files:
        img = Image.open(f)
        assert count(img, D.PRED) > 20 and count(img, D.REF) > 20
    # Predictions are the model's on the decoded frame, padded by the task.
    model, _, task = load_run_model(run)
    frames = list(read_frames(video))
    screen = Screen()
    want = []
    with torch.no_grad():
        for rgb in frames:
            frame = torch.from_numpy(rgb.transpose(2, 0, 1).copy()).unsqueeze(0)
            xy = task.decode(model(*task.inputs({"frame": frame})))[0].double().numpy()
            want.append(screen.mm_to_px(screen.camera_to_mm(xy)))
    got = np.array(summary["predictions"])
    np.testing.assert_allclose(got, np.array(want), atol=1e-6)
    # cycle=2: frames 0-1 use reference point 1, 2-3 point 2, 4-5 point 3.
    errs = summary["reference_errors_px"]
    assert sorted(errs) == ["1", "2", "3"] and all(e["frames"] == 2 for e in errs.values())
    for key in (1, 2, 3):
        d = got[2 * (key - 1):2 * key] - grid_point(key, 1920, 1080)
        assert errs[str(key)]["dx_px"] == pytest.approx(d[:, 0].mean(), abs=0.06)
        assert errs[str(key)]["error_px"] == pytest.approx(np.hypot(d[:, 0], d[:, 1]).mean(), abs=0.06)


def test_screen_panel_marks_the_reference_and_the_prediction():
    screen = Screen()
    panel, err = screen_panel(screen, np.array([1500.0, 200.0]), 7)
    x0, y0, x1, y1 = panel.anchors["screen"]
    ref = (x0 + (1 / 6) * (x1 - x0), y0 + (5 / 6) * (y1 - y0))  # key 7: bottom left
    np.testing.assert_allclose(panel.anchors["ref"], ref)
    np.testing.assert_allclose(panel.anchors["pred"], (x0 + 1500 / 1920 * (x1 - x0), y0 + 200 / 1080 * (y1 - y0)))
    assert near(panel.image, panel.anchors["pred"], D.PRED, r=0)
    assert near(panel.image, (ref[0] + 10, ref[1]), D.REF, r=1)
    assert err == {"ref": 7, "dx_px": 1500 - 320.0, "dy_px": 200 - 900.0, "error_px": pytest.approx(np.hypot(1180, 700))}
    _, none = screen_panel(screen, np.array([1.0, 2.0]), None)
    assert none is None


def test_live_on_a_track_model_collects_seven_frames(runs, video, tmp_path):
    summary = live(runs("gazelstm"), source=str(video), out=tmp_path / "t.mp4")
    assert summary["frames"] == N and video_info(tmp_path / "t.mp4")["frames"] == N
    assert summary["predictions"] == [[]] * N  # fewer frames than a 7-frame track: no score yet
    assert any("centre square" in n for n in summary["notes"])


def test_live_refuses_what_it_cannot_do(runs, video, tmp_path, monkeypatch):
    with pytest.raises(WorkbenchError, match="four eye images"):
        live(runs("itracker"), source=str(video), out=tmp_path / "a")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(WorkbenchError, match="--out"):
        live(runs("evg", size=SIZE), source=str(video))
    with pytest.raises(WorkbenchError, match="no such video"):
        live(runs("evg"), source=str(tmp_path / "missing.mp4"), out=tmp_path / "b")
    with pytest.raises(WorkbenchError, match="1 and 9"):
        live(runs("evg", size=SIZE), source=str(video), out=tmp_path / "c", ref=10)
    assert not any((tmp_path / x).exists() for x in "abc")


def test_live_cli_json(runs, video, tmp_path):
    res = CliRunner().invoke(app, ["live", str(runs("evg", size=SIZE)), "--source", str(video), "--out", str(tmp_path / "o"),
                                   "--ref", "5", "--frames", "3", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["frames"] == 3 and list(summary["reference_errors_px"]) == ["5"]
    assert len(list((tmp_path / "o").glob("*.png"))) == 3


@pytest.mark.parametrize("fps", [float("inf"), float("nan"), 0.0, -1.0])
def test_a_frame_rate_that_is_not_positive_and_finite_is_refused_before_any_frame(fps, tmp_path):
    # OpenCV's MP4 writer never returns from its first frame at fps=inf (found by the 2000-example CLI fuzz:
    # `visualize RUN --fps inf --out x.mp4` ran until killed); the writer and both commands refuse it first.
    with pytest.raises(WorkbenchError, match="positive, finite"):
        FrameWriter(tmp_path / "x.mp4", fps=fps)
    res = CliRunner().invoke(app, ["visualize", "nosuchrun", "--fps", str(fps), "--out", str(tmp_path / "y.mp4")])
    assert res.exit_code == 2 and "--fps must be a positive, finite number" in res.stderr, res.output
    assert not list(tmp_path.iterdir())
