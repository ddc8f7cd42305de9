"""Task contracts: metrics against hand-computed values, target/decoding round trips, bad input."""

import numpy as np
import pytest
import torch

from workbench.data.synth import render
from workbench.errors import DataError, WorkbenchError
from workbench.tasks import get_task, list_tasks
from workbench.tasks.metrics import average_precision, binary_accuracy
from workbench.tasks.plane_pog import focal_loss

SIZES = {"face": 32, "mc4": 32, "itracker": 24, "frame": (120, 68), "track": 24}


@pytest.fixture(scope="module")
def prepared():
    out = {}
    for name in list_tasks():
        task = get_task(name)
        out[name] = (task, task.prepare(render(task.view, 64, seed=1, subjects=4, size=SIZES[task.view])))
    return out


def test_registry_lists_five_tasks_and_rejects_unknown():
    assert list_tasks() == ["eyes_pog", "face_angles", "face_eye_lola", "look_at_me", "plane_pog"]
    with pytest.raises(ValueError, match="expected one of"):
        get_task("nope")


def test_average_precision_matches_hand_computation():
    # Ranking: 0.9(+) 0.8(-) 0.7(+) 0.1(-): precision at the positives 1/1 and 2/3 -> AP = (1 + 2/3) / 2.
    ap = average_precision(torch.tensor([0.9, 0.8, 0.7, 0.1]), torch.tensor([1, 0, 1, 0]))
    assert ap == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1, 1, 0])) == pytest.approx(1.0)
    # All scores tied: AP equals the positive rate.
    assert average_precision(torch.zeros(8), torch.tensor([1, 0, 0, 1, 0, 0, 0, 0])) == pytest.approx(0.25)
    assert np.isnan(average_precision(torch.rand(5), torch.zeros(5)))
    assert binary_accuracy(torch.tensor([1.0, -1.0, 2.0]), torch.tensor([1, 1, 1])) == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", ["eyes_pog", "face_angles", "face_eye_lola", "look_at_me", "plane_pog"])
def test_inputs_match_contract_and_constant_predictor_is_finite(prepared, name):
    task, data = prepared[name]
    batch = data.batch(slice(0, 4))
    inputs = task.inputs(batch, train=True)
    assert len(inputs) == len(task.input_names)
    assert all(x.dtype == torch.float32 and x.shape[0] == 4 for x in inputs)
    metrics = task.constant_metrics(data.subset(range(32)), data.subset(range(32, 64)))
    assert task.primary_metric in metrics and np.isfinite(metrics[task.primary_metric])


def test_face_angles_perfect_prediction_has_zero_error_and_loss(prepared):
    task, data = prepared["face_angles"]
    batch = data.batch(slice(0, 16))
    out = {"gaze": batch["gaze"].clone()}
    loss, _ = task.loss(out, batch)
    assert float(loss) == 0.0
    assert task.metrics(out, batch)["angular_error"] < 1e-3
    shifted = {"gaze": batch["gaze"] + torch.tensor([0.0, np.deg2rad(10.0)])}
    # A 10-degree yaw shift is at most 10 degrees of angular error (less away from the equator).
    err = task.metrics(shifted, batch)["angular_error"]
    assert 5.0 < err <= 10.0 + 1e-6


def test_face_eye_lola_gaze_error_uses_composed_angles(prepared):
    task, data = prepared["face_eye_lola"]
    batch = data.batch(slice(0, 16))
    perfect = {k: batch[k].clone() for k in ("head", "eye", "gaze")}
    assert task.metrics(perfect, batch)["gaze_error"] < 1e-3
    loss, parts = task.loss(perfect, batch)
    assert float(loss) == 0.0 and set(parts) == {"head", "eye", "gaze"}


def test_plane_pog_decodes_its_own_targets(prepared):
    task, data = prepared["plane_pog"]
    batch = data.batch(slice(0, 32))
    w, h = 120, 68
    grid = task.grid_size(w, h)
    hm, cell, off = task.targets(batch["hm_xy"], grid)
    assert hm.shape == (32, 1, grid[1], grid[0])
    assert torch.all(hm.flatten(1).max(-1).values == 1.0)
    offset = off.view(-1, 2, 1, 1).expand(-1, 2, grid[1], grid[0])
    out = {"hm": hm * 20 - 10, "offset": offset}
    m = task.metrics(out, batch)
    assert m["pog_error_mm"] < 1e-3 and m["angular_error"] < 1e-3
    soft = task.decode(out, soft=True)
    hard = task.decode(out)
    assert torch.allclose(soft.double(), hard.double(), atol=1.0)  # soft-argmax of a sharp peak


def test_plane_pog_padding_is_centernet_and_black(prepared):
    task, data = prepared["plane_pog"]
    assert task.padded(480, 270) == (512, 288) and task.padded(640, 360) == (672, 384)
    (x,) = task.inputs(data.batch(slice(0, 2)))
    assert x.shape[-2:] == (96, 128)
    black = (0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(x[0, :, 0, 0], black)  # the padded corner is normalized black


def test_focal_loss_prefers_the_right_peak():
    target = torch.zeros(1, 1, 8, 8)
    target[0, 0, 3, 4] = 1.0
    good = torch.full((1, 1, 8, 8), -6.0)
    good[0, 0, 3, 4] = 6.0
    bad = torch.full((1, 1, 8, 8), -6.0)
    bad[0, 0, 6, 1] = 6.0
    assert focal_loss(good, target) < 0.05 < focal_loss(bad, target)


def test_bad_input_is_one_clear_error():
    task = get_task("face_angles")
    data = render("face", 64, size=32)
    data["gaze_pitchyaw"][5, 1] = np.nan
    with pytest.raises(DataError, match="row 5"):
        task.prepare(data)
    with pytest.raises(DataError, match="needs"):
        get_task("eyes_pog").prepare({"image": data["image"]})
    with pytest.raises(WorkbenchError, match="lack"):
        task.check_outputs({"pog": torch.zeros(1)})
