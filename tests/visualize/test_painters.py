"""Each task's painter draws ground truth (green) and prediction (red) where the geometry says, with
controlled predictions; and panels keep their anchors when composed side by side."""

from pathlib import Path

import numpy as np
import torch
from visualize._pixels import along, count, near, unit

from workbench.data import geometry as G
from workbench.data.synth import render
from workbench.tasks import get_task
from workbench.visualize import draw as D
from workbench.visualize.painters import (
    BAR_H,
    FACE,
    Context,
    paint_eyes_pog,
    paint_face_angles,
    paint_face_eye_lola,
    paint_look_at_me,
    paint_plane_pog,
)
from workbench.visualize.render import Column, compose


def _data(task_name: str, n: int = 2, size=None):
    task = get_task(task_name)
    return task, task.prepare(render(task.view, n, seed=1, subjects=[3], size=size))


def _eye_box_centres(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=float)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], -1)


def test_face_angles_arrows_start_at_the_eyes_and_point_the_right_way():
    task, data = _data("face_angles", size=112)
    data.tensors["gaze"][0] = torch.tensor([0.0, -0.5])  # yaw -0.5 rad: the gaze vector has +x (image right)
    outputs = {"gaze": torch.tensor([[0.5, 0.0], [0.0, 0.0]])}  # pitch +0.5 rad: -y (image up)
    panel = paint_face_angles(Context(task, data, outputs), 0)
    eyes = _eye_box_centres(data.meta["eye_boxes"][0]) * FACE / 112
    for j, eye in enumerate(eyes):
        origin = np.array(panel.anchors[f"origin_{j}"])
        np.testing.assert_allclose(origin, eye, atol=1e-6)
        gt_tip, pred_tip = np.array(panel.anchors[f"gt_tip_{j}"]), np.array(panel.anchors[f"pred_tip_{j}"])
        np.testing.assert_allclose(unit(gt_tip - origin), [1.0, 0.0], atol=1e-6)
        np.testing.assert_allclose(unit(pred_tip - origin), [0.0, -1.0], atol=1e-6)
        assert near(panel.image, along(origin, gt_tip, 0.6), D.GT)
        assert near(panel.image, along(origin, pred_tip, 0.6), D.PRED)
        assert not near(panel.image, along(origin, 2 * origin - gt_tip, 0.6), D.GT)  # not mirrored


def test_face_eye_lola_draws_head_gaze_and_eye_arrows():
    task, data = _data("face_eye_lola", size=112)
    lola = {"head": ([30.0, 0.0], [0.0, 30.0]), "gaze": ([-30.0, 0.0], [0.0, -30.0]), "eye": ([20.0, 0.0], [0.0, 20.0])}
    outputs = {}
    for k, (gt, pred) in lola.items():
        data.tensors[k][0] = G.normalize_angle01(torch.tensor(gt))
        outputs[k] = G.normalize_angle01(torch.tensor([pred, pred]))
    panel = paint_face_eye_lola(Context(task, data, outputs), 0)
    img = panel.image
    # lo +30 (yaw +30 deg) points image-left, la +30 (pitch +30 deg) up, la -30 down.
    head = np.array(panel.anchors["head_origin"])
    np.testing.assert_allclose(head, [FACE / 2, FACE / 2])
    for name, colour, direction in (("gt", D.GT, [-1, 0]), ("pred", D.PRED, [0, -1])):
        tip = np.array(panel.anchors[f"{name}_head_tip"])
        np.testing.assert_allclose(unit(tip - head), direction, atol=1e-6)
        # The head arrow is dashed: most, not all, points along its shaft are coloured.
        hits = sum(near(img, along(head, tip, t), colour, r=1) for t in np.linspace(0.1, 0.7, 9))
        assert hits >= 4, (name, hits)
    eyes = _eye_box_centres(data.meta["eye_boxes"][0]) * FACE / 112
    for j, eye in enumerate(eyes):
        origin = np.array(panel.anchors[f"gaze_origin_{j}"])
        np.testing.assert_allclose(origin, eye, atol=1e-6)
        for name, colour, direction in (("gt", D.GT, [1, 0]), ("pred", D.PRED, [0, 1])):
            tip = np.array(panel.anchors[f"{name}_gaze_tip_{j}"])
            np.testing.assert_allclose(unit(tip - origin), direction, atol=1e-6)
            assert near(img, along(origin, tip, 0.6), colour)
    eye_origin = np.array(panel.anchors["eye_origin"])
    x0, y0, x1, y1 = panel.anchors["eye"]
    np.testing.assert_allclose(eye_origin, [(x0 + x1) / 2, (y0 + y1) / 2])
    for name, colour, direction in (("gt", D.GT, [-1, 0]), ("pred", D.PRED, [0, -1])):
        tip = np.array(panel.anchors[f"{name}_eye_tip"])
        np.testing.assert_allclose(unit(tip - eye_origin), direction, atol=1e-6)
        assert near(img, along(eye_origin, tip, 0.6), colour)


def test_eyes_pog_marks_the_points_on_the_screen():
    task, data = _data("eyes_pog", size=24)
    data.tensors["pog"][0] = torch.tensor([0.25, 0.5])
    outputs = {"pog": torch.tensor([[0.75, 0.2], [0.5, 0.5]])}
    panel = paint_eyes_pog(Context(task, data, outputs), 0)
    x0, y0, x1, y1 = panel.anchors["screen"]
    assert (x1 - x0) / (y1 - y0) == np.float64(1920 / 1080)
    for name, frac, colour in (("gt", (0.25, 0.5), D.GT), ("pred", (0.75, 0.2), D.PRED)):
        want = (x0 + frac[0] * (x1 - x0), y0 + frac[1] * (y1 - y0))
        np.testing.assert_allclose(panel.anchors[name], want, atol=1e-6)
        assert near(panel.image, want, colour, r=0)
    assert not near(panel.image, (x0 + 0.75 * (x1 - x0), y0 + 0.8 * (y1 - y0)), D.PRED, r=6)


def _plane_outputs(task, xy_mm, grid):
    """Heatmap logits and offsets that decode to the camera-plane point ``xy_mm``."""
    hm_xy = task.camera_to_grid(torch.tensor(np.array([xy_mm], dtype=np.float64)), grid)
    hm, _, off = task.targets(hm_xy, grid)
    logits = torch.logit(hm.clamp(1e-4, 1 - 1e-4)).float()
    offset = off.float().view(1, 2, 1, 1).expand(1, 2, grid[1], grid[0]).clone()
    return {"hm": logits, "offset": offset}


def test_plane_pog_draws_the_plane_the_padded_frame_and_the_rays():
    task, data = _data("plane_pog", n=1, size=(240, 135))
    gt = data.tensors["pog_cam"][0].double().numpy()
    pred = np.array([-120.0, 150.0]) if gt[0] > 0 else np.array([120.0, 150.0])  # far from the truth
    grid = task.grid_size(240, 135)
    outputs = _plane_outputs(task, pred, grid)
    np.testing.assert_allclose(task.decode(outputs)[0].numpy(), pred, atol=1e-3)
    panel = paint_plane_pog(Context(task, data, outputs, synthetic=True), 0)
    img = panel.image
    x0, y0, x1, y1 = panel.anchors["plane"]
    plane = task.plane

    def at(xy):
        return (x0 + (xy[0] - plane.origin_mm[0]) / plane.width_mm * (x1 - x0),
                y0 + (xy[1] - plane.origin_mm[1]) / plane.height_mm * (y1 - y0))

    np.testing.assert_allclose(panel.anchors["gt"], at(gt), atol=1e-6)
    np.testing.assert_allclose(panel.anchors["pred"], at(pred), atol=1e-3)
    np.testing.assert_allclose(panel.anchors["camera"], at((0.0, 0.0)), atol=1e-6)
    assert near(img, at(gt), D.GT, r=0) and near(img, at(pred), D.PRED, r=0)
    # The predicted heatmap (orange) is bright next to its peak and dark far from it.
    a = np.asarray(img).astype(int)
    px, py = (round(v) for v in at(pred))
    far = (round(x0) + 3, round(y1) - 3) if pred[0] > 0 else (round(x1) - 3, round(y1) - 3)
    assert a[py + 10, px, 0] > a[far[1], far[0], 0] + 60
    # The screen sits where SynthGaze puts it: its top-left corner at the camera-screen offset.
    s = G.Screen()
    np.testing.assert_allclose(panel.anchors["screen"][:2], at(s.offset_mm), atol=1e-6)
    # The frame is shown padded with black as the model sees it; the gaze rays start between the eyes.
    fx0, fy0, fx1, fy1 = panel.anchors["frame"]
    assert (fx1 - fx0) / (fy1 - fy0) == np.float64(256 / 160)
    assert tuple(a[int(fy0) + 2, int(fx0) + 2]) == (0, 0, 0) and a[int((fy0 + fy1) / 2), int((fx0 + fx1) / 2)].sum() > 0
    k = (fx1 - fx0) / 256
    eyes = _eye_box_centres(data.meta["eye_boxes"][0]) * k  # meta boxes are in padded-frame pixels
    np.testing.assert_allclose(panel.anchors["eye"], eyes.mean(0), atol=4 * k)
    for name, colour in (("gt", D.GT), ("pred", D.PRED)):
        assert near(img, along(panel.anchors["eye"], panel.anchors[f"{name}_ray_tip"], 0.6), colour)


def test_plane_pog_without_the_scene_draws_no_rays():
    task, data = _data("plane_pog", n=1, size=(240, 135))
    outputs = _plane_outputs(task, (0.0, 100.0), task.grid_size(240, 135))
    panel = paint_plane_pog(Context(task, data, outputs, synthetic=False), 0)
    assert "eye" not in panel.anchors and "screen" not in panel.anchors and "pred" in panel.anchors


def test_look_at_me_bars_follow_the_scores_and_strips_the_labels():
    task, data = _data("look_at_me", size=32)
    data.tensors["label"][0] = 1
    scores = torch.tensor([[0.0, 0.25, 0.5, 0.75, 1.0, 0.1, 0.9], [0.5] * 7])
    outputs = {"logit": torch.logit(scores[:, 3]), "frame_scores": scores}
    data.meta["frame_labels"] = np.array([[1, 0, 1, 1, 1, 0, 0], [0] * 7])
    panel = paint_look_at_me(Context(task, data, outputs), 0)
    a = np.asarray(panel.image)
    for k in range(7):
        x0, y0, x1, y1 = panel.anchors[f"score_{k}"]
        column = a[int(y0):int(y1) + 1, int((x0 + x1) / 2)]
        red = int((column == D.PRED).all(-1).sum())
        assert red == round(float(scores[0, k]) * BAR_H), (k, red)
        sx0, sy0, sx1, sy1 = panel.anchors[f"gt_{k}"]
        inside = tuple(a[int((sy0 + sy1) / 2), int((sx0 + sx1) / 2)])
        assert (inside == D.GT) == bool(data.meta["frame_labels"][0, k]), k
    # Without per-frame labels only the labelled centre frame gets a strip.
    del data.meta["frame_labels"]
    a = np.asarray(paint_look_at_me(Context(task, data, outputs), 0).image)
    strips = [count(a[int(y0):int(y1) + 1, int(x0):int(x1) + 1], D.GT)
              for x0, y0, x1, y1 in (panel.anchors[f"gt_{k}"] for k in range(7))]
    assert strips[3] > 100 and sum(strips) == strips[3]


def test_compose_puts_runs_side_by_side_and_keeps_anchors():
    task, data = _data("eyes_pog", size=24)
    cols = [Column(Path(f"r{k}"), Context(task, data, {"pog": torch.tensor([[0.1 + 0.6 * k, 0.3]] * 2)}), f"run {k}", "",
                   "test data") for k in range(2)]
    frame = compose(cols, 0)
    single = paint_eyes_pog(cols[0].ctx, 0)
    dx = frame.anchors["run1.screen"][0] - frame.anchors["run0.screen"][0]
    assert dx >= single.size[0]  # run 1 sits to the right of run 0
    assert frame.anchors["run1.screen"][1] == frame.anchors["run0.screen"][1]
    for k, colour in ((0, D.PRED), (1, D.PRED)):
        assert near(frame.image, frame.anchors[f"run{k}.pred"], colour, r=0)
        assert near(frame.image, frame.anchors[f"run{k}.gt"], D.GT, r=2)
    np.testing.assert_allclose(np.subtract(frame.anchors["run1.gt"], frame.anchors["run0.gt"]), [dx, 0])
    assert frame.anchors["run1.pred"][0] - frame.anchors["run1.screen"][0] > \
        frame.anchors["run0.pred"][0] - frame.anchors["run0.screen"][0] + 100
