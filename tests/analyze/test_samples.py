"""Analysis samples: eye boxes per model input, in the pixels the model sees."""

import numpy as np

from teachers import get_teacher
from workbench.analyze.faithfulness import input_similarity
from workbench.analyze.saliency import compute_attributions
from workbench.analyze.samples import load_samples
from workbench.analyze.subject import load_subject
from workbench.data.synth import render


def test_mc4_renderer_returns_its_eye_crops_boxes():
    raw = render("mc4", 70, seed=3, subjects=[1, 2], size=48)  # two chunks
    l_eye_boxes = raw["l_eye_boxes"]
    assert l_eye_boxes.shape == (70, 2, 4) and raw["r_eye_boxes"].shape == (70, 2, 4)
    # The left-eye crop looks at the subject's left eye (image-right, index 1): its box holds the centre.
    b = l_eye_boxes[:, 1]
    assert ((b[:, 0] < 24) & (b[:, 2] > 24) & (b[:, 1] < 24) & (b[:, 3] > 24)).all()


def test_boxes_per_input_for_the_views_that_need_work():
    s = load_samples(load_subject(get_teacher("mc4")), n=2)
    assert sorted(s.boxes) == ["eye", "face"] and s.boxes["eye"].shape == (2, 2, 4)
    s = load_samples(load_subject(get_teacher("itracker")), n=3)
    assert sorted(s.boxes) == ["v0_left", "v0_right", "v1_left", "v1_right"]
    assert s.boxes["v1_right"].shape == (3, 2, 4)
    evg = load_subject(get_teacher("evg"))
    s = load_samples(evg, n=2)
    frame = s.inputs(slice(0, 2))[0]
    assert frame.shape[-2:] == (288, 512)  # 480x270 padded to stride 32, boxes shifted with it
    # A registered model without a run: the validation split of its recipe (seed 0 + 1, held-out subjects).
    raw = render("frame", 64, seed=1, subjects=list(range(40, 50)), size=(480, 270))
    np.testing.assert_allclose(s.boxes["frame"], raw["eye_boxes"][s.indices] + np.array([16, 9, 16, 9]))


def test_input_similarity_of_input_times_gradient_is_high():
    subject = load_subject(get_teacher("itracker"))
    samples = load_samples(subject, n=2)
    attrs = compute_attributions(subject, samples, [0], "ig", batch_size=2)
    sim = input_similarity(attrs, samples, subject, "zero")["x"]
    assert 0.2 < sim <= 1.0
