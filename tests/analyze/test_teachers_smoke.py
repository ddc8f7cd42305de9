"""Every command's Python API on every teacher (narrow cpu configs, untrained: wiring, not figures).

Teachers whose models take any input size read small SynthGaze renders from an npz data set (the data
set on disk path); gazenet and itracker (fixed input sizes) render at their recipe's size.
"""

import numpy as np
import pytest
import torch

from teachers import get_teacher, list_teachers
from workbench.analyze import check, embeddings, fc_importance, saliency
from workbench.data.formats.npz import write_npz
from workbench.data.synth import render
from workbench.errors import WorkbenchError

NARROW = {
    "gazenet": {"width_mult": 0.25, "feature_channels": 16, "fc_hidden": 16},
    "mc4": {"groups": 4, "width_per_group": 16, "widths": [16, 16, 32, 32], "stem_width": 8},
    "itracker": {"branch_channels": [4, 4, 8, 8], "proj_channels": 8, "fc1": 16, "fc2": 8},
    "gazelstm": {"widths": [8, 8, 16, 16], "stem_width": 8, "feature_dim": 16, "hidden_size": 8},
    "gazepose": {"widths": [8, 8, 16, 16], "stem_width": 8, "feature_dim": 16, "hidden_size": 8, "prior_dim": 4},
    "evg": {"widths": [8, 8, 16, 16], "stem_width": 8, "deconv_channels": [8, 8, 8], "head_channels": 8},
}
SMALL_DATA = {"evg": ("frame", (64, 48)), "gazelstm": ("track", 32), "gazepose": ("track", 32), "mc4": ("mc4", 48)}
# Read from disk, the mc4 view has no eye-crop boxes (the renderer's are tested in test_samples.py).
BOXED = {"mc4": ["face"]}
INPUTS = {"gazenet": ["face"], "mc4": ["face", "eye"], "itracker": ["v0_left", "v0_right", "v1_left", "v1_right"],
          "gazelstm": ["frames"], "gazepose": ["frames"], "evg": ["frame"]}


@pytest.fixture(scope="module", params=list_teachers())
def teacher(request, tmp_path_factory):
    name = request.param
    torch.manual_seed(0)
    data = "synth"
    if name in SMALL_DATA:
        view, size = SMALL_DATA[name]
        data = str(tmp_path_factory.mktemp("data") / f"{name}.npz")
        write_npz(render(view, 20, seed=5, subjects=[0, 1, 2], size=size), data, view=view)
    return name, get_teacher(name, preset="cpu", **NARROW.get(name, {})), data  # a new teacher: its cpu preset


def _inputs(name, model):
    """The inputs saliency attributes: listed above for the five write-ups (gazepose skips its vectors);
    a teacher added later, its registered image inputs."""
    return INPUTS.get(name, list(model.input_names))


def test_saliency_and_check_on_every_input_with_eye_boxes(teacher, tmp_path):
    name, model, data = teacher
    s = saliency(model, method="saliency", n=2, batch_size=2, data=data, out=tmp_path / "sal")
    assert s["attributed_inputs"] == _inputs(name, model)
    for target in s["targets"]:
        for inp in BOXED.get(name, _inputs(name, model)):
            row = s["results"][target][inp]
            assert row["area_share"] is not None and 0 < row["area_share"] < 1, (target, inp)
    if name == "gazepose":
        assert set(s["skipped_inputs"]) == {"head_pose", "landmarks"}
        assert "zero" in s["skipped_inputs"]["head_pose"]
    npz = np.load(tmp_path / "sal" / "attributions.npz")
    for inp in _inputs(name, model):
        assert (tmp_path / "sal" / f"{inp}.png").stat().st_size > 0
        key = f"{inp}__{s['targets'][0]}"
        assert npz[key].shape[0] == 2 and np.isfinite(npz[key]).all()
    c = check(model, n=2, target=0, steps=2, batch_size=2, cascade_steps=2, fractions=3, random_orders=1, data=data)
    assert set(c["headline"]) >= {"eye_mass_ratio", "pointing", "randomization_spearman", "deletion_area"}
    rows = c["randomization"][c["targets"][0]]
    assert rows[0]["layers_reinitialized"] == 1 and rows[-1]["layers_reinitialized"] == rows[-1]["of"]
    assert len(c["deletion"][c["targets"][0]]["attribution"]) == 3


def test_embeddings_and_fc_importance(teacher):
    name, model, data = teacher
    e = embeddings(model, n=20, batch_size=10, data=data)
    assert e["n"] == 20 and e["dim"] > 0 and e["labels"]
    assert set(e["probe"]["r2"]) == set(e["labels"])
    if name == "evg":  # the cpu preset's Linear layers are the context branch: its vector is the embedding
        assert e["layer"] == "context_pog:input"
        from teachers import get_teacher

        plain = get_teacher("evg", preset="cpu", global_context=False, context_pog=False).eval()  # the write-up's
        with pytest.raises(WorkbenchError, match="no Linear"):
            fc_importance(plain, n=2, data=data)
        assert embeddings(plain, n=4, batch_size=4, data=data)["layer"] == "backbone.layer4"  # the deepest map
    assert e["layer"].endswith(":input")
    f = fc_importance(model, n=4, batch_size=4, max_ablate=2, conductance_samples=2, conductance_steps=2, data=data)
    heads = {k for k, v in f["layers"].items() if v["is_head"]}
    assert heads == {"gazenet": {"fc.6"}, "mc4": {"face_net.fc", "eye_net.fc"}, "itracker": {"fc_out"},
                     "gazelstm": {"last_layer"}, "gazepose": {"last_layer"}, "evg": {"context_pog"}}[name]
