"""Eye boxes come from the data (through the task), GradCam/hint layers from the registration or the graph."""

import numpy as np
import pytest
import torch
from torch import nn

from workbench.analyze import check, saliency
from workbench.analyze.attribution import gradcam_layers, split_inputs
from workbench.analyze.subject import load_subject
from workbench.data.formats.npz import write_npz
from workbench.data.synth import render
from workbench.facts import default_hint_layer, registered_gradcam_layers, registered_hint_layer
from workbench.tasks import get_task, list_tasks

CORNER = (10, 80, 30, 100)  # x0, y0, x1, y1: far below and left of where SynthGaze draws the eyes


class CornerModel(nn.Module):
    """A face model that reads only the CORNER patch: its gradient is non-zero there and nowhere else."""

    input_names = ("face",)
    output_names = ("gaze",)

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0]))

    def forward(self, face):
        x0, y0, x1, y1 = CORNER
        v = face[:, :, y0:y1, x0:x1].mean((1, 2, 3))
        return {"gaze": v[:, None] * self.w}


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """The same 112 px faces three ways: SynthGaze's eye boxes, boxes moved to CORNER, and no boxes."""
    root = tmp_path_factory.mktemp("boxes")
    raw = render("face", 12, seed=2, subjects=3, size=112)
    write_npz(raw, root / "synth_boxes.npz")
    moved = dict(raw, eye_boxes=np.tile(np.asarray(CORNER, dtype=np.float32), (12, 2, 1)))
    write_npz(moved, root / "corner_boxes.npz")
    # A data set whose eye boxes are unknown (NaN), as a reader returns them when a layout has no eye corners.
    write_npz(dict(raw, eye_boxes=np.full((12, 2, 4), np.nan, np.float32)), root / "no_boxes.npz")
    return root


def test_the_eye_mass_follows_the_datas_boxes(faces):
    def share(name):
        s = saliency(CornerModel(), task="face_angles", method="saliency", n=6, data=str(faces / name))
        return s["results"]["pitch"]["face"]

    at_synth, at_corner = share("synth_boxes.npz"), share("corner_boxes.npz")
    assert at_corner["share"] == pytest.approx(1.0) and at_corner["pointing"] == 1.0
    assert at_synth["share"] == pytest.approx(0.0, abs=1e-6) and at_synth["pointing"] == 0.0
    # The area share is the data's own boxes' area: 20x20 px of 112x112 for the corner.
    assert at_corner["area_share"] == pytest.approx(400 / 112 ** 2, rel=1e-5)  # summaries keep 6 digits


def test_no_eye_boxes_in_the_data_is_na_with_the_reason_never_zero(faces):
    s = saliency(CornerModel(), task="face_angles", method="saliency", n=4, data=str(faces / "no_boxes.npz"))
    row = s["results"]["pitch"]["face"]
    assert row["eye_mass"].startswith("n/a: ") and "NaN" in row["eye_mass"]
    assert "share" not in row and "pointing" not in row and "face" in s["eye_boxes_missing"]
    c = check(CornerModel(), task="face_angles", method="saliency", n=4, data=str(faces / "no_boxes.npz"), cascade_steps=1,
              randomization_n=2, random_orders=1, fractions=3)
    assert c["criteria"]["eye_mass_ratio >= 3"] is None and c["criteria"]["pointing >= 0.8"] is None
    assert c["headline"]["eye_mass_share"] is None and c["region_ablation"] is None
    assert c["eye_mass_note"].startswith("n/a")


def test_mc4_eye_input_boxes_are_the_eye_crops_own():
    raw = render("mc4", 4, seed=0, subjects=2, size=32)
    task = get_task("face_eye_lola")
    boxes, missing = task.eye_boxes(task.prepare(raw))
    assert not missing
    np.testing.assert_array_equal(boxes["eye"], raw["l_eye_boxes"])
    np.testing.assert_array_equal(boxes["face"], raw["eye_boxes"])


@pytest.mark.parametrize("name", list_tasks())
def test_each_tasks_kd_loss_is_zero_for_identical_outputs(name):
    from teachers import example_inputs, get_teacher, list_teachers, teacher_spec

    teacher = next(t for t in list_teachers() if teacher_spec(t).task == name)
    torch.manual_seed(0)
    model = get_teacher(teacher).eval()
    with torch.no_grad():
        out = model(*example_inputs(teacher, batch=2).values())
    task = get_task(name)
    for mse in (False, True):
        terms = task.kd_loss({k: v.clone() for k, v in out.items()}, out, mse=mse)
        assert set(terms) <= set(task.output_names) and terms
        assert all(float(v) == pytest.approx(0.0, abs=1e-6) for v in terms.values()), terms
        moved = task.kd_loss({k: v + 0.5 for k, v in out.items()}, out, mse=mse)
        assert sum(float(v) for v in moved.values()) > 0


class PlainNet(nn.Module):
    """A user's model with no registration: two convs, a hidden FC, a head."""

    input_names = ("face",)

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def forward(self, face):
        return {"gaze": self.net(face)}


def test_default_gradcam_and_hint_layers_come_from_the_module_graph():
    model = PlainNet()
    x = (torch.randn(2, 3, 32, 32),)
    assert registered_gradcam_layers({"factory": "mymodel:net"}) == {} and registered_hint_layer({}) is None
    subject = load_subject(model, task="face_angles")
    layers = gradcam_layers(subject, x, split_inputs(x)[0])
    assert layers[0][0] == "net.2"  # the last conv on the face's path
    assert default_hint_layer(model, x) == "net.6"  # the layer before the head


def test_registered_facts_are_the_registrations():
    assert registered_gradcam_layers({"teacher": "mc4"}) == {"face": "face_net.layer4", "eye": "eye_net.layer4"}
    assert registered_hint_layer({"teacher": "gazenet"}) == "features"
    pruned = {"pruned": {"base": {"teacher": "evg"}}}
    assert registered_hint_layer(pruned) == "deconv_layers"
    assert registered_hint_layer({"student": "nonexistent"}) is None


def test_a_model_without_a_recipe_says_so(caplog):
    from workbench.train.recipes import Recipe, get_recipe

    with caplog.at_level("WARNING"):
        assert get_recipe("not-registered", "cpu") == Recipe()
    assert "no training recipe registered for 'not-registered'" in caplog.text
    assert get_recipe("gazenet", "cpu").size == 112
