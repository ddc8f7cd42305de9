"""`--images` end to end: saliency on the astronaut photo, predictions per video frame, live and visualize
drawing the detected face box, and bad input (one line, exit code 2)."""

import csv
import json

import numpy as np
import pytest
from faces.conftest import CLIP_FRAMES, CLIP_SHIFT, clip_frames
from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app
from workbench.faces import CascadeDetector
from workbench.faces.draw import EYE_BOX, FACE_BOX
from workbench.visualize.video import read_frames, video_info

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def on_box_edge(img, box, colour, exact=True) -> float:
    """Fraction of points along ``box``'s four edges where ``colour`` is found within 1 px (``exact=False``,
    for MP4 frames whose chroma is subsampled: a pixel of cyan hue, green and blue 60 above red)."""
    a = np.asarray(img)[..., :3].astype(int)
    x0, y0, x1, y1 = box
    pts = [(x, y) for t in np.linspace(0.1, 0.9, 9) for x, y in
           ((x0 + t * (x1 - x0), y0), (x0 + t * (x1 - x0), y1), (x0, y0 + t * (y1 - y0)), (x1, y0 + t * (y1 - y0)))]
    hits = 0
    for x, y in pts:
        patch = a[max(0, round(y) - 1):round(y) + 2, max(0, round(x) - 1):round(x) + 2]
        if exact:
            hits += bool((patch == np.asarray(colour)).all(-1).any())
        else:
            hits += bool(((patch[..., 1] > patch[..., 0] + 60) & (patch[..., 2] > patch[..., 0] + 60)).any())
    return hits / len(pts)


def test_saliency_on_the_astronaut_draws_on_the_original_with_eye_figures(trained_gazenet, astronaut, tmp_path):
    path, rgb = astronaut
    out = tmp_path / "sal"
    res = invoke("analyze", "saliency", trained_gazenet, "--images", path, "--out", out, "--steps", 8)
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 1 and summary["faces_found"] == 1 and summary["faces_not_found"] == 0
    assert summary["eyes_detected"] == 1
    for target in ("pitch", "yaw"):
        r = summary["results"][target]["face"]
        assert 0 < r["share"] < 1 and 0 < r["area_share"] < 0.5 and r["pointing"] in (0.0, 1.0)
        assert r["ratio"] == pytest.approx(r["share"] / r["area_share"])
    # The overlay is the original photograph (512 px wide per target), the boxes where the detector put them.
    face = CascadeDetector().detect(rgb)[0]
    frame = summary["per_frame"][0]
    np.testing.assert_allclose(frame["face_box"], face.box)
    img = Image.open(out / "00000_astronaut.png")
    assert img.width == 2 * 512 + 8 and img.height > 512
    left = img.crop((0, 0, 512, 512))
    assert on_box_edge(left, face.box, FACE_BOX) > 0.9
    for eye in face.eye_boxes:
        assert on_box_edge(left, eye, EYE_BOX) > 0.9
    # Far from the face the photograph is untouched (no heat blended outside the normalized crop).
    np.testing.assert_array_equal(np.asarray(left)[450:, :100], rgb[450:, :100])
    assert "eye-mass" in res.output and "face found in 1" in res.output


def test_predict_writes_one_row_per_video_frame(runs, clip, tmp_path):
    out = tmp_path / "pred.csv"
    res = invoke("predict", runs("gazenet"), "--images", clip, "--out", out)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == CLIP_FRAMES == video_info(clip)["frames"]
    assert [r["frame"] for r in rows] == [str(k) for k in range(CLIP_FRAMES)]
    found = [r["face_found"] == "1" for r in rows]
    assert found == [True] * (CLIP_FRAMES - 1) + [False]  # the blank last frame is counted, not dropped
    assert rows[-1]["pitch"] == "" and rows[-1]["face_x0"] == ""
    for r in rows[:-1]:
        assert np.isfinite([float(r["pitch"]), float(r["yaw"])]).all()
        assert float(r["gaze_pitch_deg"]) == pytest.approx(np.degrees(float(r["pitch"])), abs=1e-4)
        assert float(r["gaze_yaw_deg"]) == pytest.approx(np.degrees(float(r["yaw"])), abs=1e-4)
    # The photo moves CLIP_SHIFT px right per frame; so does the detected face.
    x0 = np.array([float(r["face_x0"]) for r in rows[:-1]])
    assert np.abs(np.diff(x0) - CLIP_SHIFT).max() <= 4
    assert "not found in 1" in res.output and "clip.mp4#5" in res.output


def test_saliency_on_a_face_and_eye_model_has_figures_for_both_inputs(runs, astronaut, tmp_path):
    from workbench.faces.explain import saliency_images

    summary = saliency_images(runs("mc4"), astronaut[0], method="saliency", out=tmp_path / "mc4")
    for target in ("gaze_lo", "gaze_la"):
        for name in ("face", "eye"):  # the eye crop is cut around the detected image-right eye
            r = summary["results"][target][name]
            assert 0 <= r["share"] <= 1 and 0 < r["area_share"] < 1 and r["frames_with_eyes"] == 1
    assert (tmp_path / "mc4" / "00000_astronaut.png").is_file()


def test_predict_images_json_and_a_full_frame_model(runs, clip, tmp_path):
    out = tmp_path / "evg.csv"
    res = invoke("predict", runs("evg"), "--images", clip, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["frames"] == CLIP_FRAMES and summary["faces_not_found"] == 1
    assert summary["columns"] == ["pog_x_mm", "pog_y_mm", "peak"]
    rows = list(csv.DictReader(out.open()))
    # A full-frame model predicts on every frame, the face-less one included; the face box is reported beside.
    assert all(r["pog_x_mm"] != "" for r in rows) and rows[-1]["face_found"] == "0"


def test_live_draws_the_detected_face_box(runs, clip, tmp_path):
    out = tmp_path / "annotated.mp4"
    res = invoke("live", runs("gazenet"), "--source", clip, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["frames"] == CLIP_FRAMES and summary["faces_found"] == CLIP_FRAMES - 1
    assert video_info(out)["frames"] == CLIP_FRAMES
    frames = list(read_frames(out))
    originals = clip_frames()
    det = CascadeDetector()
    k = 640 / originals[0].shape[1]  # live shows the frame 640 px wide
    boxes = summary["face_boxes"]
    assert boxes[-1] is None
    for rgb, src, box in zip(frames[:-1], originals[:-1], boxes[:-1]):
        # The box live found on the decoded frame is where the detector finds the face before encoding ...
        np.testing.assert_allclose(box, det.detect(src)[0].box, atol=4)
        # ... and it is drawn there, on the frame shown 640 px wide.
        assert on_box_edge(rgb, np.asarray(box) * k, FACE_BOX, exact=False) > 0.8
    # The blank frame: no cyan box anywhere, the centre-square fallback said on the frame (a PNG run below).
    last = frames[-1][..., :3].astype(int)
    assert not ((last[..., 1] > last[..., 0] + 60) & (last[..., 2] > last[..., 0] + 60)).any()
    folder = tmp_path / "png"
    summary = invoke("live", runs("gazenet"), "--source", clip, "--out", folder, "--json")
    last = np.asarray(Image.open(sorted(folder.glob("*.png"))[-1]))
    first = np.asarray(Image.open(sorted(folder.glob("*.png"))[0]))
    from workbench.visualize import draw as D

    # The fallback line is drawn in the reference colour only on the face-less frame.
    assert (last == D.REF).all(-1).sum() > 20 and (first == D.REF).all(-1).sum() == 0


def test_visualize_draws_gaze_back_on_the_original_frames(runs, clip, tmp_path):
    out = tmp_path / "vis"
    res = invoke("visualize", runs("mc4"), "--images", clip, "--out", out)
    assert res.exit_code == 0, res.output
    files = sorted(out.glob("frame_*.png"))
    assert len(files) == CLIP_FRAMES
    det = CascadeDetector()
    for f, src in zip(files[:-1], list(read_frames(clip))[:-1]):
        img = Image.open(f)
        assert on_box_edge(img, det.detect(src)[0].box, FACE_BOX) > 0.9
        # The original (decoded) frame is there, pixel for pixel, away from the marks (its bottom-left corner).
        h = src.shape[0]
        np.testing.assert_array_equal(np.asarray(img)[h - 40:h, :40], src[h - 40:, :40])
    assert "not found in 1" in res.output


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir() or p, "no images in this folder"),
    (lambda p: (p.with_suffix(".mp4").write_bytes(b"\x00garbage" * 64), p.with_suffix(".mp4"))[1], "video"),
    (lambda p: (p.with_suffix(".txt").write_text("hello"), p.with_suffix(".txt"))[1], "not an image or a video"),
    (lambda p: (p.with_suffix(".png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"), p.with_suffix(".png"))[1],
     "cannot read image"),
    (lambda p: p / "missing", "no such file or folder"),
])
def test_bad_input_is_one_line_and_exit_2(runs, tmp_path, make, message):
    src = make(tmp_path / "input")
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["predict", str(runs("gazenet")), "--images", str(src), "--out", str(out)])
    assert res.exit_code == 2, res.output
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in res.output
    assert not out.exists()
    res = runner.invoke(app, ["analyze", "saliency", str(runs("gazenet")), "--images", str(src), "--out",
                              str(tmp_path / "sal")])
    assert res.exit_code == 2 and not (tmp_path / "sal").exists()


def test_live_on_a_full_frame_model_draws_the_face_box_through_the_letterbox(runs, clip, tmp_path):
    """EVG sees the whole frame letterboxed to its training size (192x160: half the clip), padded by the task
    (to 224x192, 16 px each side); the detected box is drawn on the view (the padded frame, 640 px wide)."""
    from workbench.tasks import get_task
    from workbench.visualize import live

    summary = live(runs("evg", size=(192, 160)), source=str(clip), out=tmp_path / "evg")
    assert summary["faces_found"] == CLIP_FRAMES - 1
    files = sorted((tmp_path / "evg").glob("frame_*.png"))
    pw, ph = get_task("plane_pog").padded(192, 160)
    pad = np.array([(pw - 192) // 2, (ph - 160) // 2] * 2)
    k = 640 / pw
    for f, box in zip(files[:-1], summary["face_boxes"][:-1]):
        assert on_box_edge(Image.open(f), (np.asarray(box) * 0.5 + pad) * k, FACE_BOX) > 0.9
