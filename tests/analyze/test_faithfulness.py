"""Analytic models whose right attributions are known: eye-mass, pointing, randomization, deletion."""

import numpy as np
import pytest
import torch
from torch import nn

from workbench.analyze.attribution import Settings
from workbench.analyze.faithfulness import (
    cascade_cuts,
    deletion,
    pooled_regions,
    randomization,
    spearman_rows,
)
from workbench.analyze.saliency import Attributions, compute_attributions, region_scores
from workbench.analyze.samples import load_samples
from workbench.analyze.subject import load_subject
from workbench.errors import WorkbenchError

SIZE = 16
BOX = (4.0, 4.0, 8.0, 8.0)  # pixel centres 4.5..7.5: a 4x4 region, 1/16 of the image


class RegionModel(nn.Module):
    """y = sum(w * x) with w zero outside ``mask``: only that region can matter."""

    input_names = ("x",)

    def __init__(self, mask: torch.Tensor, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter((torch.rand(1, SIZE, SIZE, generator=gen) + 0.5) * mask)

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1, keepdim=True)


class BlobMLP(nn.Module):
    """Two Linear layers whose trained weights all point at one Gaussian blob of the image."""

    input_names = ("x",)

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(SIZE * SIZE, 8, bias=False)
        self.fc2 = nn.Linear(8, 1, bias=False)
        yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        blob = torch.exp(-((xx - 11.0) ** 2 + (yy - 5.0) ** 2) / 8.0).flatten()
        with torch.no_grad():
            self.fc1.weight.copy_(torch.linspace(0.5, 1.5, 8)[:, None] * blob[None])
            self.fc2.weight.fill_(1.0)

    def forward(self, x):
        return self.fc2(self.fc1(x.flatten(1)))


def _mask() -> torch.Tensor:
    m = torch.zeros(1, SIZE, SIZE)
    m[:, 4:8, 4:8] = 1.0
    return m


def _setup(model, n=6):
    subject = load_subject(model, input_shapes={"x": (1, SIZE, SIZE)})
    samples = load_samples(subject, n=n)
    samples.boxes = {"x": np.tile(np.array(BOX, dtype=np.float32), (n, 1, 1))}
    return subject, samples


@pytest.mark.parametrize("method", ["saliency", "ig", "gradshap", "smoothgrad"])
def test_model_reading_one_region_puts_all_eye_mass_there(method):
    torch.manual_seed(0)
    subject, samples = _setup(RegionModel(_mask()))
    attrs = compute_attributions(subject, samples, [0], method, settings=Settings(steps=8), batch_size=4)
    r = region_scores(attrs, samples)["out0"]["x"]
    assert r["area_share"] == pytest.approx(1 / 16)
    assert r["share"] == pytest.approx(1.0, abs=1e-6)
    assert r["ratio"] == pytest.approx(16.0, rel=1e-5)
    assert r["pointing"] == 1.0


def test_occlusion_mass_sits_on_the_region_and_a_global_model_has_no_preference():
    subject, samples = _setup(RegionModel(_mask()))
    attrs = compute_attributions(subject, samples, [0], "occlusion", batch_size=6)
    r = region_scores(attrs, samples)["out0"]["x"]
    assert r["share"] > 0.6 and r["pointing"] == 1.0  # windows straddling the border leak a little
    subject, samples = _setup(RegionModel(torch.ones(1, SIZE, SIZE)), n=24)
    attrs = compute_attributions(subject, samples, [0], "ig", settings=Settings(steps=8), batch_size=8)
    pooled = pooled_regions(attrs, samples)["out0"]
    assert 0.6 < pooled["ratio"] < 1.6
    assert pooled["pointing"] < 0.5


def test_gradcam_needs_a_conv_layer():
    subject, samples = _setup(RegionModel(_mask()))
    with pytest.raises(WorkbenchError, match="LayerGradCam needs a conv layer"):
        compute_attributions(subject, samples, [0], "gradcam")


def test_cascading_randomization_keeps_structure_for_the_head_then_drops_and_leaves_the_model_alone():
    model = BlobMLP()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    subject, samples = _setup(model, n=8)
    attrs = compute_attributions(subject, samples, [0], "saliency", batch_size=8)
    result = randomization(subject, samples, attrs, [0], steps=2, settings=Settings(), batch_size=8, layer=None)
    steps = result.rows["out0"]
    assert [r["down_to"] for r in steps] == ["fc2", "fc1"]  # head first
    assert steps[0]["spearman_abs"] > 0.95  # a random head re-weights the same blobs
    assert abs(steps[1]["spearman_abs"]) < 0.2  # a random first layer: no blob left
    assert abs(result.floor["out0"]["spearman_abs"]) < 0.2  # two random models: independent noise
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_spearman_rows_and_cascade_cuts():
    a = np.arange(20.0).reshape(2, 10)
    np.testing.assert_allclose(spearman_rows(a, a), [1.0, 1.0])
    np.testing.assert_allclose(spearman_rows(a, -a), [-1.0, -1.0])
    assert np.isnan(spearman_rows(a, np.zeros_like(a))).all()
    assert cascade_cuts(110, 6) == [1, 22, 44, 66, 88, 110]
    assert cascade_cuts(2, 6) == [1, 2]


def test_deleting_the_attributed_region_first_hurts_more_than_random_and_a_reversed_map_does_not():
    subject, samples = _setup(RegionModel(_mask()), n=8)
    attrs = compute_attributions(subject, samples, [0], "ig", settings=Settings(steps=8), batch_size=8)
    curves = deletion(subject, samples, attrs, fractions=11, fill="mean", random_orders=3)["out0"]
    assert curves["metric"] == "mean |target change|"
    assert curves["attribution"][0] == 0.0
    assert curves["worse_by"] > 0.5 and curves["clearly_worse"]
    reversed_maps = {"out0": {"x": (attrs.heat("out0", "x").max() - attrs.heat("out0", "x"))[:, None]}}
    flipped = Attributions("ig", ["out0"], reversed_maps)
    curves = deletion(subject, samples, flipped, fractions=11, fill="mean", random_orders=3)["out0"]
    assert curves["worse_by"] < 0 and not curves["clearly_worse"]


def test_region_ablation_tells_a_model_reading_only_the_boxes_from_one_reading_everything():
    from workbench.analyze.faithfulness import region_ablation

    subject, samples = _setup(RegionModel(_mask()), n=8)
    r = region_ablation(subject, samples, fill="mean")
    assert r["metric"] == "mean |target change|" and r["inputs"] == ["x"]
    assert r["nothing_removed"] == 0.0
    assert r["rest_removed"] == pytest.approx(0.0, abs=1e-6)  # it never reads outside the box
    assert r["eyes_removed"] > 0.05 and r["all_removed"] == pytest.approx(r["eyes_removed"], rel=1e-5)
    subject, samples = _setup(RegionModel(torch.ones(1, SIZE, SIZE)), n=8)
    r = region_ablation(subject, samples, fill="mean")
    assert r["rest_removed"] > r["eyes_removed"] > 0.0  # 15/16 of its weights lie outside the box
    samples.boxes = {}
    assert region_ablation(subject, samples) is None
