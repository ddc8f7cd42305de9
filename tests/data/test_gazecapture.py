"""GazeCapture as downloaded: a tiny data set written here the way the real one ships (not by our writer),
read back with hand-computed pixels and labels; the one-camera itracker trained on it from the CLI.

The layout follows CSAILVision/GazeCapture's README ("Data") and loaders: per-session folders ``NNNNN/``
with ``frames/NNNNN.jpg``, per-frame arrays in ``appleFace.json``/``appleLeftEye.json``/
``appleRightEye.json``/``faceGrid.json`` (X, Y, W, H, IsValid; eye boxes relative to the face box),
``dotInfo.json`` (DotNum, XPts, YPts, XCam, YCam, Time), ``frames.json``, ``info.json`` (Dataset),
``screen.json`` (W, H, Orientation per frame) and ``motion.json``. Crops follow pytorch/prepareDataset.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data import formats
from workbench.data.formats.gazecapture import read_gazecapture, write_gazecapture
from workbench.errors import DataError
from workbench.tasks import get_task

runner = CliRunner()

FH, FW = 120, 160  # camera frame (rows, columns)
# Apple's boxes are floats; prepareDataset.py truncates them (astype(int)) and grows the face box by
# [-1, -1, +1, +1] and moves eye boxes by [0, -1] before adding the face corner.
FACE = (30.6, 20.4, 100.2, 90.9)         # -> int (30, 20, 100, 90) -> grown (29, 19, 101, 91)
RIGHT_EYE = (11.7, 31.2, 40.9, 40.3)     # subject's right eye = image-left: (11, 30) + (29, 19) = (40, 49), 40x40
LEFT_EYE = (61.2, 31.9, 40.0, 40.0)      # subject's left eye = image-right: (61, 30) + (29, 19) = (90, 49), 40x40
CROP_L = (40, 49)  # hand-computed top-left corner (x, y) of the image-left eye crop in the frame
CROP_R = (90, 49)
# Quadrant colours (TL, TR, BL, BR) of each eye crop: distinct in every channel order and luminance, so a
# BGR swap, a mirror, a flip or a transpose each changes what is read. The image-right eye's BR quadrant
# is the frame's own grey level, to tell frames apart.
QUAD_L = [(220, 30, 30), (30, 200, 30), (30, 30, 220), (230, 220, 40)]
QUAD_R = [(40, 210, 220), (210, 40, 200), (250, 250, 250), None]
BACKGROUND = (120, 110, 100)


def frame_grey(j: int) -> int:
    return 20 + 40 * j


def make_frame(j: int, shift_x: int = 0) -> np.ndarray:
    """(FH, FW, 3) uint8: flat background, the two eye regions as 20x20 colour quadrants."""
    img = np.empty((FH, FW, 3), dtype=np.uint8)
    img[:] = BACKGROUND
    for (x, y), quads in ((CROP_L, QUAD_L), (CROP_R, QUAD_R)):
        x += shift_x
        for q, colour in enumerate(quads):
            colour = colour or (frame_grey(j),) * 3
            r0, c0 = y + 20 * (q // 2), x + 20 * (q % 2)
            img[r0 : r0 + 20, max(c0, 0) : max(c0 + 20, 0)] = colour
    return img


def box_json(box, valid, n, invalid_value=0.0):
    """An apple*.json object: per-frame lists X, Y, W, H, IsValid (invalid frames hold zeros)."""
    out = {k: [float(box[i]) if valid[j] else invalid_value for j in range(n)] for i, k in enumerate("XYWH")}
    out["IsValid"] = [int(v) for v in valid]
    return out


def write_session(root: Path, sid: int, dataset: str, *, face_ok, left_ok, right_ok, xcam, ycam,
                  shifts=None) -> Path:
    """One session folder exactly as the GazeCapture download has it; frames with IsValid 0 get no JPEG."""
    folder = root / f"{sid:05d}"
    (folder / "frames").mkdir(parents=True)
    n = len(face_ok)
    names = [f"{j:05d}.jpg" for j in range(n)]
    grid_ok = [a and b and c for a, b, c in zip(face_ok, left_ok, right_ok)]
    shifts = shifts or [0] * n
    for j in range(n):
        if grid_ok[j]:
            Image.fromarray(make_frame(j, shifts[j])).save(folder / "frames" / names[j], quality=95)
    faces = box_json(FACE, face_ok, n)
    faces["X"] = [x + s if ok else x for x, s, ok in zip(faces["X"], shifts, face_ok)]
    (folder / "frames.json").write_text(json.dumps(names))
    (folder / "appleFace.json").write_text(json.dumps(faces))
    (folder / "appleLeftEye.json").write_text(json.dumps(box_json(LEFT_EYE, left_ok, n)))
    (folder / "appleRightEye.json").write_text(json.dumps(box_json(RIGHT_EYE, right_ok, n)))
    (folder / "faceGrid.json").write_text(json.dumps(box_json((5, 4, 16, 19), grid_ok, n)))
    (folder / "dotInfo.json").write_text(json.dumps({
        "DotNum": [j // 2 for j in range(n)], "XPts": [100.5 + j for j in range(n)], "YPts": [300.25] * n,
        "XCam": list(xcam), "YCam": list(ycam), "Time": [0.1 * j for j in range(n)]}))
    (folder / "info.json").write_text(json.dumps({
        "TotalFrames": n, "NumFaceDetections": int(sum(face_ok)), "NumEyeDetections": int(sum(grid_ok)),
        "Dataset": dataset, "DeviceName": "iPhone 6"}))
    (folder / "screen.json").write_text(json.dumps({"H": [568] * n, "W": [320] * n, "Orientation": [1] * n}))
    (folder / "motion.json").write_text(json.dumps([{"DotNum": 0, "Time": 0.0, "GravityX": 0.01}]))
    return folder


XCAM = {2: [1.0642000436782837, -2.3316, 0.0, 3.14159265, 2.5], 5: [-0.5, 4.125], 7: [0.333333333, 1.0]}
YCAM = {2: [-5.270999908447266, -7.8, 0.0, -1.5, -3.0], 5: [-9.75, -2.0625], 7: [-4.444444444, 2.0]}


@pytest.fixture
def gc_root(tmp_path: Path) -> Path:
    root = tmp_path / "GazeCapture"
    # Session 2 (train): frame 2 lacks a face, frame 4 the left eye -> frames 0, 1, 3 are used.
    write_session(root, 2, "train", face_ok=[1, 1, 0, 1, 1], left_ok=[1, 1, 1, 1, 0], right_ok=[1] * 5,
                  xcam=XCAM[2], ycam=YCAM[2], shifts=[0, 0, 0, 45, 0])
    write_session(root, 5, "val", face_ok=[1, 1], left_ok=[1, 1], right_ok=[1, 1], xcam=XCAM[5], ycam=YCAM[5])
    write_session(root, 7, "test", face_ok=[1, 1], left_ok=[1, 1], right_ok=[1, 0], xcam=XCAM[7], ycam=YCAM[7])
    # Session 9 (train): no frame with both eyes: skipped as a whole (prepareDataset.py does the same).
    write_session(root, 9, "train", face_ok=[1, 0], left_ok=[0, 1], right_ok=[1, 1], xcam=[0, 0], ycam=[0, 0])
    (root / "metadata.mat").write_bytes(b"not ours")  # what prepareDataset.py leaves in the root: ignored
    return root


def quadrant_means(crop: np.ndarray, margin: int) -> list[np.ndarray]:
    """Mean colour of the interior of each 2x2 quadrant (TL, TR, BL, BR) of a (3,S,S) crop."""
    s = crop.shape[-1] // 2
    return [crop[:, r * s + margin : (r + 1) * s - margin, c * s + margin : (c + 1) * s - margin].reshape(3, -1).mean(1)
            for r in (0, 1) for c in (0, 1)]


def test_eye_crops_come_from_the_apple_boxes_in_rgb_and_upright(gc_root: Path) -> None:
    d = read_gazecapture(gc_root, size=40)  # the boxes' own size: no resampling
    assert d["eyes"].shape == (6, 2, 3, 40, 40) and d["eyes"].dtype == np.uint8
    for i, frame in enumerate(d["frame"]):
        for e, quads in enumerate((QUAD_L, QUAD_R)):
            crop = d["eyes"][i, e]
            if i == 2 and e == 1:
                continue  # frame 3 of session 2 reaches past the frame's right edge (below)
            for got, want in zip(quadrant_means(crop, 5), quads):
                want = (frame_grey(int(frame)),) * 3 if want is None else want
                np.testing.assert_allclose(got, want, atol=12)  # JPEG q95 on flat 20 px regions
            # The quadrant edges sit exactly 20 px into the crop: an off-by-one crop moves them.
            lum = np.tensordot([0.299, 0.587, 0.114], crop.astype(np.float64), 1)  # JPEG keeps luma sharp
            cols = lum[3:17].mean(0)  # top quadrants, per column
            rows = lum[:, 3:17].mean(1)  # left quadrants, per row
            mid_c, mid_r = (cols[10] + cols[30]) / 2, (rows[10] + rows[30]) / 2
            assert np.flatnonzero(np.sign(cols - mid_c) != np.sign(cols[0] - mid_c))[0] == 20
            assert np.flatnonzero(np.sign(rows - mid_r) != np.sign(rows[0] - mid_r))[0] == 20


def test_crops_past_the_frame_edge_are_black(gc_root: Path) -> None:
    d = read_gazecapture(gc_root, split="train", size=40)
    crop = d["eyes"][2, 1]  # session 2, frame 3: face moved 45 px right, image-right eye at x = 135..174, the frame ends at 160
    assert d["frame"][2] == 3
    assert (crop[:, :, 25:] == 0).all()  # columns 160.. of the frame: prepareDataset.py's zero fill
    np.testing.assert_allclose(crop[:, 24:36, 4:16].reshape(3, -1).mean(1), QUAD_R[2], atol=12)


def test_default_size_resizes_each_crop_bilinearly(gc_root: Path) -> None:
    d = read_gazecapture(gc_root, split="val")
    assert d["eyes"].shape == (2, 2, 3, 64, 64)
    for got, want in zip(quadrant_means(d["eyes"][0, 0], 8), QUAD_L):
        np.testing.assert_allclose(got, want, atol=12)


def test_labels_subjects_splits_and_skipped_frames(gc_root: Path) -> None:
    d = read_gazecapture(gc_root)
    used = {2: [0, 1, 3], 5: [0, 1], 7: [0]}
    want_pog = [[XCAM[s][j], YCAM[s][j]] for s in (2, 5, 7) for j in used[s]]
    np.testing.assert_array_equal(d["pog_cm"], np.asarray(want_pog, dtype=np.float32))  # exact
    assert d["pog_cm"].dtype == np.float32
    assert d["subject"].tolist() == [2, 2, 2, 5, 5, 7]
    assert d["frame"].tolist() == [0, 1, 3, 0, 1, 0]
    c = d["counts"]
    assert c["frames_listed"] == 5 + 2 + 2 + 2 and c["frames_invalid_skipped"] == 2 + 1 + 2
    assert c["samples"] == 6 and c["sessions"] == 4 and c["sessions_without_valid_frames"] == 1
    assert c["samples_per_split"] == {"train": 3, "val": 2, "test": 1}
    train = read_gazecapture(gc_root, split="train")
    assert train["subject"].tolist() == [2, 2, 2] and train["counts"]["frames_invalid_skipped"] == 4
    assert read_gazecapture(gc_root, split="test")["subject"].tolist() == [7]


def test_detected_and_inspected_with_counts(gc_root: Path, tmp_path: Path) -> None:
    assert formats.detect_format(gc_root) == "gazecapture"
    grid = tmp_path / "grid.png"
    res = runner.invoke(app, ["data", "inspect", str(gc_root), "--out", str(grid), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["format"] == "gazecapture" and s["view"] == "itracker" and s["samples"] == 6
    assert s["counts"]["frames_invalid_skipped"] == 5 and s["subjects"]["ids"] == [2, 5, 7]
    assert s["labels"]["pog_cm"]["min"][1] == pytest.approx(-9.75)
    assert np.asarray(Image.open(grid)).std() > 10
    res = runner.invoke(app, ["data", "inspect", str(gc_root), "--out", str(grid), "--split", "train", "--force"])
    assert res.exit_code == 0 and "frames_invalid_skipped 4" in " ".join(res.stdout.split())


def test_train_itracker_on_gazecapture_with_only_data(gc_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "itracker", "--data", str(gc_root), "--epochs", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["views"] == 1 and config["model"]["input_size"] == 36
    assert config["recipe"]["task_options"] == {"views": 1, "unit": "cm"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["resized"] == {"eyes": {"from": [64, 64], "to": [36, 36]}}  # to the cpu preset's size
    assert metrics["primary_metric"] == "pog_error_cm" and np.isfinite(metrics["final"]["pog_error_cm"])
    assert metrics["data"]["split"] == "layout splits train/val"
    assert metrics["data"]["train_read"]["frames_invalid_skipped"] == 4 and metrics["data"]["val_read"]["samples"] == 2
    res = runner.invoke(app, ["eval", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["metrics"]["pog_error_cm"] == pytest.approx(metrics["final"]["pog_error_cm"], rel=1e-4)
    # Commands that feed a run SynthGaze batches (camera 0, PoG converted to camera cm) work on it too.
    res = runner.invoke(app, ["export", str(out), "--onnx", str(tmp_path / "m.onnx"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["inputs"] == ["v0_left", "v0_right"]
    res = runner.invoke(app, ["visualize", str(out), "--data", str(gc_root), "--n", "1", "--out", str(tmp_path / "vis")])
    assert res.exit_code == 0, res.output


def test_one_camera_task_and_model() -> None:
    from teachers import get_teacher

    four = get_teacher("itracker", preset="paper")
    two = get_teacher("itracker", preset="paper", views=1)
    assert four.input_names == ("v0_left", "v0_right", "v1_left", "v1_right") and four.config["views"] == 2
    assert two.input_names == ("v0_left", "v0_right")
    assert two.conv_parameters() * 2 == four.conv_parameters() and two.fc1.in_features * 2 == four.fc1.in_features
    x = torch.zeros(3, 3, 64, 64)
    assert two(x, x)["pog"].shape == (3, 2)
    with pytest.raises(ValueError, match="expected 2 eye images"):
        two(x, x, x, x)
    task = get_task("eyes_pog")
    eyes = np.zeros((4, 2, 3, 64, 64), dtype=np.uint8)
    data = task.prepare({"eyes": eyes, "pog_cm": np.ones((4, 2), np.float32)})
    assert task.adapt(data, four.config) == ({"views": 1, "unit": "cm"}, {"views": 1})
    cpu = get_teacher("itracker", preset="cpu").config
    adapted = get_task("eyes_pog", views=1, unit="cm")
    assert [t.shape for t in adapted.inputs(data.batch(slice(0, 2)))] == [(2, 3, 64, 64)] * 2
    assert adapted.adapt(data, {**cpu, "views": 1}) == ({}, {})
    assert "pog_error_cm" in adapted.metrics({"pog": torch.zeros(2, 2)}, {"pog": torch.ones(2, 2)})
    # SynthGaze's two-camera data in screen pixels needs no change.
    synth = task.prepare({"eyes": np.zeros((2, 4, 3, 36, 36), np.uint8), "pog_px": np.ones((2, 2), np.float32)})
    assert task.adapt(synth, cpu) == ({}, {})
    # A one-camera cm run on SynthGaze (profile, export, analysis): camera 0, and the PoG in camera cm,
    # hand-computed from the default screen (top-left corner at (-172, 8) mm, y down -> y up).
    eyes4 = np.arange(2 * 4 * 3 * 36 * 36, dtype=np.int64).reshape(2, 4, 3, 36, 36).astype(np.uint8)
    sg = adapted.prepare({"eyes": eyes4, "pog_px": np.ones((2, 2), np.float32),
                          "pog_mm": np.float32([[172.0, 100.0], [0.0, 0.0]])})
    assert sorted(sg.tensors) == ["pog", "v0_left", "v0_right"]
    assert torch.equal(sg.tensors["v0_right"], torch.from_numpy(eyes4[:, 1]))
    torch.testing.assert_close(sg.tensors["pog"], torch.tensor([[0.0, -10.8], [-17.2, -0.8]]))
    with pytest.raises(DataError, match="this task takes 2"):
        get_task("eyes_pog", views=2).prepare({"eyes": eyes, "pog_cm": np.ones((4, 2), np.float32)})
    with pytest.raises(DataError, match="PoG is in cm"):
        get_task("eyes_pog", unit="px").prepare({"eyes": eyes, "pog_cm": np.ones((4, 2), np.float32)})


def test_writer_writes_the_genuine_files_from_synthgaze(tmp_path: Path) -> None:
    from workbench.data.geometry import Screen
    from workbench.data.synth import render

    data = render("itracker", 8, seed=3, subjects=2, size=32)
    root = write_gazecapture(data, tmp_path / "gc", splits={0: "train", 1: "val"})
    s0 = sorted(p.name for p in (root / "00000").iterdir())
    assert s0 == ["appleFace.json", "appleLeftEye.json", "appleRightEye.json", "dotInfo.json", "faceGrid.json",
                  "frames", "frames.json", "info.json", "motion.json", "screen.json"]
    n0 = int((data["subject"] == 0).sum())
    frames = json.loads((root / "00000" / "frames.json").read_text())
    assert frames == [f"{j:05d}.jpg" for j in range(n0)]
    assert sorted(p.name for p in (root / "00000" / "frames").iterdir()) == frames
    dot = json.loads((root / "00000" / "dotInfo.json").read_text())
    assert set(dot) == {"DotNum", "XPts", "YPts", "XCam", "YCam", "Time"}
    # Hand-computed: SynthGaze mm on the screen -> camera plane (x right, y down) -> cm, y up.
    off = Screen().offset_mm
    mm = data["pog_mm"][data["subject"] == 0].astype(np.float64)
    np.testing.assert_allclose(dot["XCam"], (mm[:, 0] + off[0]) / 10, rtol=1e-6)
    np.testing.assert_allclose(dot["YCam"], -(mm[:, 1] + off[1]) / 10, rtol=1e-6)
    assert json.loads((root / "00001" / "info.json").read_text())["Dataset"] == "val"
    for stem in ("appleFace", "appleLeftEye", "appleRightEye", "faceGrid"):
        assert set(json.loads((root / "00000" / f"{stem}.json").read_text())) == {"X", "Y", "W", "H", "IsValid"}
    back = read_gazecapture(root, size=32)
    sel = np.concatenate([np.flatnonzero(data["subject"] == s) for s in (0, 1)])
    np.testing.assert_array_equal(back["pog_cm"][:, 0], np.float32([*dot["XCam"], *json.loads(
        (root / "00001" / "dotInfo.json").read_text())["XCam"]]))
    diff = np.abs(back["eyes"].astype(np.int16) - data["eyes"][sel, :2].astype(np.int16))
    assert diff.mean() < 3 and back["counts"]["frames_invalid_skipped"] == 0


def test_synth_cli_writes_gazecapture(tmp_path: Path) -> None:
    out = tmp_path / "gc"
    res = runner.invoke(app, ["data", "synth", "--format", "gazecapture", "--n", "6", "--subjects", "3",
                              "--size", "24", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert formats.detect_format(out) == "gazecapture" and len(formats.read("gazecapture", out)["eyes"]) == 6


# ---- bad input: one line naming the file -------------------------------------------------------------

def one_line_error(root: Path, needle: str) -> None:
    with pytest.raises(DataError) as e:
        read_gazecapture(root)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    res = runner.invoke(app, ["data", "inspect", str(root), "--out", str(root.parent / "g.png")])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and needle in lines[0], res.output


def test_missing_json_file(gc_root: Path) -> None:
    (gc_root / "00005" / "dotInfo.json").unlink()
    one_line_error(gc_root, str(gc_root / "00005" / "dotInfo.json"))


def test_truncated_json_file(gc_root: Path) -> None:
    path = gc_root / "00002" / "appleLeftEye.json"
    path.write_text(path.read_text()[:40])
    one_line_error(gc_root, f"{path}: not valid JSON")


def test_array_of_the_wrong_length(gc_root: Path) -> None:
    path = gc_root / "00007" / "appleRightEye.json"
    obj = json.loads(path.read_text())
    obj["W"] = obj["W"][:1]
    path.write_text(json.dumps(obj))
    one_line_error(gc_root, f"{path}: 'W' must list one value per frame")


def test_valid_frame_listed_but_missing(gc_root: Path) -> None:
    victim = gc_root / "00005" / "frames" / "00001.jpg"
    victim.unlink()
    one_line_error(gc_root, str(victim))


def test_all_frames_invalid(tmp_path: Path) -> None:
    root = tmp_path / "GazeCapture"
    write_session(root, 3, "train", face_ok=[0, 0, 1], left_ok=[1, 1, 0], right_ok=[1, 1, 1], xcam=[0] * 3, ycam=[0] * 3)
    one_line_error(root, str(root / "00003" / "appleFace.json"))
    with pytest.raises(DataError, match="IsValid 0"):
        read_gazecapture(root)
