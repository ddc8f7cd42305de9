"""Images are fitted to the model's input size on the way in, with their pixel-coordinate labels."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data import formats
from workbench.data.resize import fit_images, target_hw
from workbench.data.synth import render

runner = CliRunner()


def _quadrants(h: int, w: int) -> np.ndarray:
    """(3,H,W): red top-left, green top-right, blue bottom-left, white bottom-right."""
    img = np.zeros((3, h, w), np.uint8)
    img[0, : h // 2, : w // 2] = 255
    img[1, : h // 2, w // 2:] = 255
    img[2, h // 2:, : w // 2] = 255
    img[:, h // 2:, w // 2:] = 255
    return img


def test_target_hw_reads_recipe_sizes():
    assert target_hw(112) == (112, 112)
    assert target_hw((240, 135)) == (135, 240)  # recipes give (W, H)
    assert target_hw(None) is None


def test_face_images_shrink_and_keep_colour_and_orientation():
    img = _quadrants(448, 448)
    data = {"image": np.stack([img, img[:, ::-1, :]]),
            "landmarks": np.array([[[100.0, 200.0]] * 6] * 2, np.float32),
            "eye_boxes": np.array([[[40.0, 80.0, 120.0, 160.0]] * 2] * 2, np.float32),
            "gaze_pitchyaw": np.zeros((2, 2), np.float32)}
    out, info = fit_images(data, "face", 112)
    assert out["image"].shape == (2, 3, 112, 112)
    assert info == {"image": {"from": [448, 448], "to": [112, 112]}}
    first = out["image"][0]
    assert tuple(first[:, 10, 10]) == (255, 0, 0) and tuple(first[:, 10, 100]) == (0, 255, 0)
    assert tuple(first[:, 100, 10]) == (0, 0, 255) and tuple(first[:, 100, 100]) == (255, 255, 255)
    assert tuple(out["image"][1][:, 10, 10]) == (0, 0, 255)  # the flipped sample stays flipped
    np.testing.assert_allclose(out["landmarks"][0, 0], [25.0, 50.0])
    np.testing.assert_allclose(out["eye_boxes"][0, 1], [10.0, 20.0, 30.0, 40.0])
    assert out["gaze_pitchyaw"] is data["gaze_pitchyaw"]  # radians are not pixels


def test_frames_scale_x_and_y_separately_and_same_size_is_a_no_op():
    frame = {"image": np.zeros((1, 3, 270, 480), np.uint8), "face_box": np.array([[48.0, 27.0, 96.0, 54.0]], np.float32),
             "pog_px": np.array([[960.0, 540.0]], np.float32)}
    out, info = fit_images(frame, "frame", (240, 90))
    assert out["image"].shape == (1, 3, 90, 240)
    np.testing.assert_allclose(out["face_box"][0], [24.0, 9.0, 48.0, 18.0])
    np.testing.assert_allclose(out["pog_px"], frame["pog_px"])  # screen pixels stay
    same, info = fit_images(frame, "frame", (480, 270))
    assert info == {} and same["image"] is frame["image"]


def test_train_on_faces_larger_than_the_model_input(tmp_path):
    """224 px faces (the real MPIIFaceGaze has 448) train a 112 px model with no extra option."""
    data = render("face", 48, seed=0, subjects=3, size=224)
    root = formats.write("mpiifacegaze", data, tmp_path / "mpii")
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "gazenet", "--data", str(root), "--epochs", "1", "--batch-size", "16",
                              "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    cfg_data = json.loads(res.stdout)["data"]
    assert cfg_data["resized"] == {"image": {"from": [224, 224], "to": [112, 112]}}
    res = runner.invoke(app, ["eval", str(out), "--data", str(root), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["samples"] == 48


def test_mpiifacegaze_is_read_and_shrunk_one_subject_at_a_time(tmp_path, monkeypatch):
    """The real release is 27 GB at 448 px: each subject is fitted before the next one is read."""
    from workbench.tasks import get_task
    from workbench.train.data import read_for_task

    data = render("face", 30, seed=1, subjects=3, size=224)
    root = formats.write("mpiifacegaze", data, tmp_path / "mpii")
    task = get_task("face_angles")
    whole, _, info_whole = read_for_task(task, root, None, None)
    calls = []
    real_read = formats.read
    monkeypatch.setattr(formats, "read", lambda fmt, path, **kw: calls.append(kw) or real_read(fmt, path, **kw))
    parts, fmt, info = read_for_task(task, root, None, 112)
    assert fmt == "mpiifacegaze" and calls == [{"subjects": [s]} for s in sorted(set(data["subject"].tolist()))]
    assert info == {"image": {"from": [224, 224], "to": [112, 112]}} and info_whole == {}
    fitted, _ = fit_images(whole, "face", 112)
    for key in ("image", "gaze_pitchyaw", "landmarks", "eye_boxes", "subject"):
        np.testing.assert_array_equal(parts[key], fitted[key], err_msg=key)
