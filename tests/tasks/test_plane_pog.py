"""plane_pog's face-centre heat-map target (the write-up's optional face_hm head)."""

from __future__ import annotations

import pytest
import torch

from workbench.data.synth import render
from workbench.tasks import get_task


@pytest.fixture(scope="module")
def frames():
    task = get_task("plane_pog")
    return task, task.prepare(render("frame", 8, seed=0, subjects=3, size=(120, 68)))


def test_face_xy_is_the_face_box_centre_on_the_output_grid(frames):
    _, data = frames
    raw = render("frame", 8, seed=0, subjects=3, size=(120, 68))
    pad = torch.tensor(data.meta["pad_offset"], dtype=torch.float64)  # (4, 14) for 120x68 -> 128x96
    centre = torch.from_numpy(raw["face_box"]).double().view(8, 2, 2).mean(1)
    torch.testing.assert_close(data.tensors["face_xy"].double(), (centre + pad) / 4, atol=1e-4, rtol=0)


def _outputs(task, batch, grid, face_xy):
    hm, _, off = task.targets(batch["hm_xy"], grid)
    offset = off.view(-1, 2, 1, 1).expand(-1, 2, grid[1], grid[0])
    face, _, _ = task.targets(face_xy, grid, task.face_sigma)
    return {"hm": hm * 20 - 10, "offset": offset, "face_hm": face.eq(1).float() * 20 - 10}  # peak at the centre cell


def test_face_hm_loss_rewards_the_face_and_only_with_a_face_head(frames):
    task, data = frames
    batch = data.batch(slice(0, 8))
    grid = task.grid_size(120, 68)
    good = _outputs(task, batch, grid, batch["face_xy"])
    wrong = _outputs(task, batch, grid, batch["face_xy"].flip(0))  # other frames' faces
    l_good, parts_good = task.loss(good, batch)
    l_wrong, parts_wrong = task.loss(wrong, batch)
    assert parts_good["face_hm"] < 0.05 < parts_wrong["face_hm"]
    assert float(l_wrong - l_good) == pytest.approx(parts_wrong["face_hm"] - parts_good["face_hm"], rel=1e-4)
    no_face = {k: v for k, v in good.items() if k != "face_hm"}
    _, parts = task.loss(no_face, batch)
    assert "face_hm" not in parts


def test_face_hm_loss_skips_frames_without_a_face_box(frames):
    task, data = frames
    batch = data.batch(slice(0, 8))
    grid = task.grid_size(120, 68)
    out = _outputs(task, batch, grid, batch["face_xy"])
    batch["face_xy"] = batch["face_xy"].clone()
    batch["face_xy"][:3] = float("nan")
    loss, parts = task.loss(out, batch)
    assert torch.isfinite(loss) and parts["face_hm"] < 0.05
    batch["face_xy"][:] = float("nan")
    _, parts = task.loss(out, batch)
    assert "face_hm" not in parts


def test_data_without_face_boxes_still_prepares():
    task = get_task("plane_pog")
    raw = render("frame", 4, seed=1, subjects=2, size=(120, 68))
    del raw["face_box"]
    data = task.prepare(raw)
    assert torch.isnan(data.tensors["face_xy"]).all()


def test_face_crop_ratio_keeps_the_enlarged_face_box_and_sets_the_rest_to_the_mean_colour():
    raw = render("frame", 6, seed=1, subjects=3, size=(120, 68))
    plain = get_task("plane_pog")
    task = get_task("plane_pog", face_crop_ratio=1.5)
    data = task.prepare(raw)
    batch = data.batch(slice(0, 6))
    batch["face_box"] = batch["face_box"].clone()
    batch["face_box"][5] = float("nan")  # a frame without a face box keeps the whole frame
    (x,), (full,) = task.inputs(batch), plain.inputs(batch)
    left, top = data.meta["pad_offset"]
    for i in range(5):
        x0, y0, x1, y1 = raw["face_box"][i].tolist()
        cx, cy, hw, hh = (x0 + x1) / 2 + left, (y0 + y1) / 2 + top, 0.75 * (x1 - x0), 0.75 * (y1 - y0)
        # Pixel centres well inside the enlarged box are the frame's own, well outside they are 0 (the mean).
        ys, xs = torch.meshgrid(torch.arange(x.shape[-2]) + 0.5, torch.arange(x.shape[-1]) + 0.5, indexing="ij")
        inner = ((xs - cx).abs() < hw - 1) & ((ys - cy).abs() < hh - 1)
        outer = ((xs - cx).abs() > hw + 1) | ((ys - cy).abs() > hh + 1)
        assert inner.any() and outer.any()
        torch.testing.assert_close(x[i][:, inner], full[i][:, inner])
        assert x[i][:, outer].abs().max() == 0
        assert full[i][:, outer].abs().max() > 0.5  # the frame had content there
    torch.testing.assert_close(x[5], full[5])
    assert "face_box" not in plain.prepare(raw).tensors  # off by default: no extra tensor, the whole frame


@pytest.mark.parametrize("bad", [0.5, "2", True, -1])
def test_face_crop_ratio_refuses_a_ratio_below_one_or_not_a_number(bad):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match="face_crop_ratio"):
        get_task("plane_pog", face_crop_ratio=bad)


def test_pog_lead_epochs_trains_only_the_decoded_pog_first_and_everything_after(frames):
    _, data = frames
    batch = data.batch(slice(0, 8))
    task = get_task("plane_pog", pog_lead_epochs=2)
    grid = task.grid_size(120, 68)
    wrong = {**batch, "hm_xy": batch["hm_xy"].flip(0)}  # peaks at other frames' PoG: every term is large
    out = {k: v for k, v in _outputs(task, wrong, grid, batch["face_xy"]).items() if k != "face_hm"}
    full, parts = get_task("plane_pog").loss(out, batch)  # no schedule: every term, every epoch
    for epoch, lead in ((0, True), (1, True), (2, False), (5, False)):
        task.set_epoch(epoch)
        loss, p = task.loss(out, batch)
        if lead:  # the heatmap's focal term and the offset carry no weight: only the decoded PoG
            assert float(loss) == pytest.approx(p["pog"], rel=1e-5) and p["hm"] > 0.5 and p["pog"] > 0.1
        else:
            assert float(loss) == pytest.approx(float(full), rel=1e-5)
            assert float(loss) > p["pog"] + 0.5
        assert p == pytest.approx(parts)


def test_the_engine_tells_the_task_each_epoch(tmp_path):
    from workbench.train.engine import TrainRequest, fit
    from workbench.tasks.plane_pog import PlanePoG

    seen = []
    original = PlanePoG.set_epoch

    def spy(self, epoch):
        seen.append(epoch)
        original(self, epoch)

    PlanePoG.set_epoch = spy
    try:
        fit(TrainRequest(teacher="evg", preset="cpu", out=tmp_path / "r", progress=False,
                         recipe_overrides={"epochs": 2, "n_train": 8, "n_val": 4, "batch_size": 8, "size": [96, 54],
                                           "task_options": {"pog_lead_epochs": 1}}))
    finally:
        PlanePoG.set_epoch = original
    assert seen == [0, 1]


def test_sigma_start_shrinks_the_pog_gaussian_over_sigma_epochs(frames):
    _, data = frames
    batch = data.batch(slice(0, 8))
    task = get_task("plane_pog", sigma=1.5, sigma_start=12.0, sigma_epochs=3)
    assert task.train_sigma() == 1.5  # outside training: the write-up's radius
    radii = []
    for epoch in range(5):
        task.set_epoch(epoch)
        radii.append(task.train_sigma())
    assert radii == pytest.approx([12.0, 6.0, 3.0, 1.5, 1.5])  # geometric: halves each epoch here
    # The focal term follows the radius: a peak 4 cells off the truth costs less while the Gaussian is wide.
    grid = task.grid_size(120, 68)
    near = {**batch, "hm_xy": batch["hm_xy"] + torch.tensor([4.0, 0.0])}
    out = {k: v for k, v in _outputs(task, near, grid, batch["face_xy"]).items() if k != "face_hm"}
    hm_loss = []
    for epoch in (0, 3):
        task.set_epoch(epoch)
        hm_loss.append(task.loss(out, batch)[1]["hm"])
    assert hm_loss[0] < 0.5 * hm_loss[1]
    assert get_task("plane_pog").train_sigma() == 1.5  # no schedule: constant


@pytest.mark.parametrize("bad", [{"sigma_start": 0}, {"sigma_start": "wide"}, {"sigma_epochs": -1},
                                 {"sigma_epochs": 1.5}])
def test_bad_sigma_schedule_options_are_one_line(bad):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match=next(iter(bad))):
        get_task("plane_pog", **bad)


def test_softmax_heatmap_loss_is_lowest_at_the_truth_and_has_a_gradient_everywhere(frames):
    _, data = frames
    batch = data.batch(slice(0, 8))
    task = get_task("plane_pog", hm_loss="softmax")
    grid = task.grid_size(120, 68)
    right = {k: v for k, v in _outputs(task, batch, grid, batch["face_xy"]).items() if k != "face_hm"}
    wrong = {k: v for k, v in _outputs(task, {**batch, "hm_xy": batch["hm_xy"].flip(0)}, grid,
                                       batch["face_xy"]).items() if k != "face_hm"}
    assert task.loss(right, batch)[1]["hm"] + 5 < task.loss(wrong, batch)[1]["hm"]
    flat = torch.zeros(8, 1, grid[1], grid[0], requires_grad=True)
    only_hm = get_task("plane_pog", hm_loss="softmax", loss_weights={"pog": 0.0})
    loss, _ = only_hm.loss({"hm": flat, "offset": right["offset"]}, batch)
    loss.backward()
    # p - t: the truth's cell is pushed up, the cell farthest from it down by the uniform p = 1 / cells.
    g = flat.grad[0, 0]
    cell = batch["hm_xy"][0].long()
    far = (0 if cell[0] > grid[0] // 2 else grid[0] - 1, 0 if cell[1] > grid[1] // 2 else grid[1] - 1)
    assert float(g[cell[1], cell[0]]) < 0
    assert float(g[far[1], far[0]]) == pytest.approx(1 / (grid[0] * grid[1]) / 8, rel=1e-3)  # mean over 8 frames


def test_hm_loss_focal_is_the_write_ups_default_and_a_wrong_name_is_one_line(frames):
    from workbench.errors import WorkbenchError
    from workbench.tasks.plane_pog import focal_loss

    _, data = frames
    batch = data.batch(slice(0, 8))
    task = get_task("plane_pog")
    grid = task.grid_size(120, 68)
    out = {k: v for k, v in _outputs(task, batch, grid, batch["face_xy"]).items() if k != "face_hm"}
    hm_t, _, _ = task.targets(batch["hm_xy"], grid)
    assert task.loss(out, batch)[1]["hm"] == pytest.approx(float(focal_loss(out["hm"], hm_t)), rel=1e-6)
    with pytest.raises(WorkbenchError, match="hm_loss"):
        get_task("plane_pog", hm_loss="mse")


def test_a_context_pog_output_is_supervised_with_the_pog_in_mm_over_100(frames):
    _, data = frames
    batch = data.batch(slice(0, 8))
    task = get_task("plane_pog", loss_weights={"context_pog": 2.0})
    grid = task.grid_size(120, 68)
    out = {k: v for k, v in _outputs(task, batch, grid, batch["face_xy"]).items() if k != "face_hm"}
    base, parts = task.loss(out, batch)
    assert "context_pog" not in parts
    truth = task.grid_to_camera(batch["hm_xy"].double(), grid).float() / 100  # the clamped true PoG
    exact, parts = task.loss({**out, "context_pog": truth}, batch)
    assert parts["context_pog"] == pytest.approx(0.0, abs=1e-5) and float(exact) == pytest.approx(float(base), rel=1e-5)
    off, parts = task.loss({**out, "context_pog": truth + torch.tensor([0.3, -0.4])}, batch)  # 30 and 40 mm off
    assert parts["context_pog"] == pytest.approx(0.35, rel=1e-4)  # mean absolute error, mm / 100
    assert float(off - base) == pytest.approx(2.0 * 0.35, rel=1e-4)
