"""The teacher registry and the five write-ups' architectures.

Parameter figures at the `paper` preset are the write-ups' (gazenet 4,387,331; mc4 22,977,730 per net;
itracker FC1 1,089,536 vs conv branches 342,240); the other figures pin the architectures so that an
accidental change of wiring fails here first.
"""

from __future__ import annotations

import functools
import importlib
import json

import pytest
import torch
from torch import nn

import teachers
from teachers import (
    build_from_config,
    example_inputs,
    gaussian_drop_probs,
    gaussian_keep_mask,
    get_teacher,
    list_teachers,
    register_teacher,
    teacher_spec,
)
from workbench.data.geometry import compose_lola, normalize_angle01
from workbench.nn import DeformConv3x3Pack
from _threads import one_thread_module  # noqa: F401 (autouse fixture: one torch thread)

TEACHERS = ["evg", "gazelstm", "gazenet", "gazepose", "itracker", "mc4"]
PRESETS = ["paper", "cpu"]

# Total parameters of every teacher at both presets.
PARAMS = {
    ("gazenet", "paper"): 4_387_331,
    ("gazenet", "cpu"): 1_125_059,
    ("evg", "paper"): 14_003_971,
    ("evg", "cpu"): 884_503,
    ("gazelstm", "paper"): 13_937_985,
    ("gazelstm", "cpu"): 876_369,
    ("gazepose", "paper"): 14_131_169,
    ("gazepose", "cpu"): 892_409,
    ("itracker", "paper"): 1_440_162,
    ("itracker", "cpu"): 676_098,
    ("mc4", "paper"): 45_955_460,
    ("mc4", "cpu"): 1_973_028,
}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@functools.lru_cache(maxsize=None)
def paper_model(name: str) -> nn.Module:
    """Paper presets are built once per session (mc4's is 46M parameters); only used in eval mode."""
    torch.manual_seed(0)
    return get_teacher(name, preset="paper").eval()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def expected_shapes(name: str, inputs: dict[str, torch.Tensor], model: nn.Module) -> dict[str, tuple[int, ...]]:
    """The documented output shapes of each task contract."""
    b = next(iter(inputs.values())).shape[0]
    if name == "gazenet":
        return {"gaze": (b, 2)}
    if name == "evg":
        h, w = inputs["frame"].shape[-2:]
        shapes = {"hm": (b, 1, h // 4, w // 4), "offset": (b, 2, h // 4, w // 4)}
        if model.config["face_hm"]:
            shapes["face_hm"] = (b, 1, h // 4, w // 4)
        if model.config["context_pog"]:
            shapes["context_pog"] = (b, 2)
        return shapes
    if name in ("gazelstm", "gazepose"):
        return {"logit": (b,)}
    if name == "itracker":
        return {"pog": (b, 2)}
    if name == "mc4":
        return {"head": (b, 2), "eye": (b, 2), "gaze": (b, 2)}
    raise AssertionError(f"no expected shapes for {name}")


def weighted_sum(out: dict[str, torch.Tensor]) -> torch.Tensor:
    # Random weights: a plain sum of BN-normalized outputs can have zero gradient by construction.
    g = torch.Generator().manual_seed(1)
    return sum((v * torch.randn(v.shape, generator=g)).sum() for v in out.values())


# ---------------------------------------------------------------- registry


def test_registry_lists_the_six_teachers_of_the_five_write_ups() -> None:  # gazelstm + gazepose: one
    assert list_teachers() == TEACHERS


@pytest.mark.parametrize("name", TEACHERS)
@pytest.mark.parametrize("preset", PRESETS)
def test_builds_with_config_and_names(name: str, preset: str) -> None:
    model = paper_model(name) if preset == "paper" else get_teacher(name, preset=preset)
    spec = teacher_spec(name)
    cfg = model.config
    assert cfg["teacher"] == name and cfg["preset"] == preset
    assert json.loads(json.dumps(cfg)) == cfg  # JSON-native: survives a checkpoint's round trip
    assert model.input_names == spec.inputs
    assert isinstance(model.output_names, tuple) and model.output_names
    assert set(spec.presets) == set(PRESETS)
    assert n_params(model) == PARAMS[(name, preset)]


@pytest.mark.parametrize("name", TEACHERS)
def test_spec_matches_task_contract_and_examples(name: str) -> None:
    spec = teacher_spec(name)
    for preset in PRESETS:
        ex = example_inputs(name, preset, batch=3)
        assert list(ex) == list(spec.inputs)
        assert {k: tuple(v.shape) for k, v in ex.items()} == {k: (3, *s) for k, s in spec.example_shapes[preset].items()}
    module = importlib.import_module(f"workbench.tasks.{spec.task}")
    tasks = [v for v in vars(module).values() if isinstance(v, type) and getattr(v, "name", None) == spec.task]
    assert tasks, f"no task class named {spec.task!r} in {module.__name__}"
    assert tuple(tasks[0].input_names) == spec.inputs
    assert set(tasks[0].output_names) <= set(get_teacher(name).output_names)


def test_example_inputs_value_ranges() -> None:
    ex = example_inputs("gazepose", "cpu", batch=4)
    assert ex["head_pose"].abs().max() <= 90 and ex["head_pose"].abs().max() > 1
    assert ex["landmarks"].min() >= 0 and ex["landmarks"].max() <= 1
    assert ex["frames"].dtype == torch.float32
    with pytest.raises(ValueError, match="batch"):
        example_inputs("gazenet", batch=0)


def test_unknown_name_lists_valid_teachers() -> None:
    for call in (lambda: get_teacher("nope"), lambda: teacher_spec("nope"), lambda: example_inputs("nope")):
        with pytest.raises(ValueError, match="nope") as err:
            call()
        assert all(t in str(err.value) for t in TEACHERS)


def test_unknown_preset_lists_valid_presets() -> None:
    with pytest.raises(ValueError, match="'gpu'") as err:
        get_teacher("gazenet", preset="gpu")
    assert "paper" in str(err.value) and "cpu" in str(err.value)


def test_unknown_override_is_named() -> None:
    with pytest.raises(ValueError, match="widht_mult") as err:
        get_teacher("gazenet", widht_mult=0.5)
    assert "width_mult" in str(err.value)
    with pytest.raises(ValueError, match="teacher"):
        get_teacher("gazenet", teacher="mc4")  # reserved keys are not hyper-parameters


def test_duplicate_registration_raises() -> None:
    class Dummy(nn.Module):
        input_names = ("face",)

    with pytest.raises(ValueError, match="gazenet"):
        register_teacher("gazenet", source="x", task="face_angles", inputs=("face",),
                         presets={"cpu": {}}, example_shapes=lambda cfg: {"face": (3, 8, 8)})(Dummy)
    assert list_teachers() == TEACHERS


def test_build_from_config_rejects_bad_configs() -> None:
    with pytest.raises(ValueError, match="teacher"):
        build_from_config({"preset": "cpu"})
    with pytest.raises(ValueError, match="bogus"):
        build_from_config({**get_teacher("itracker").config, "bogus": 1})


def test_overrides_are_resolved_into_config() -> None:
    model = get_teacher("evg", backbone="mobv2", widths=(8, 16, 32, 64))
    assert model.config["backbone"] == "mobv2" and model.config["widths"] == [8, 16, 32, 64]
    assert model.config["head_channels"] == 16  # the rest comes from the cpu preset
    assert teachers.gazenet(preset="paper", dropout=0.3).config["dropout"] == 0.3


# ---------------------------------------------------------------- forward / backward at cpu


@pytest.mark.parametrize("name", TEACHERS)
def test_cpu_forward_backward_reaches_every_parameter(name: str) -> None:
    model = get_teacher(name, preset="cpu").train()
    inputs = example_inputs(name, "cpu", batch=2)
    out = model(*inputs.values())
    assert isinstance(out, dict) and tuple(out) == model.output_names
    assert {k: tuple(v.shape) for k, v in out.items()} == expected_shapes(name, inputs, model)
    assert all(torch.isfinite(v).all() for v in out.values())
    weighted_sum(out).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reached {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    if name == "gazepose":
        names = [n for n, _ in model.named_parameters()]
        assert sum(n.startswith("head_embed.") for n in names) == 3
        assert sum(n.startswith("landmark_embed.") for n in names) == 10


@pytest.mark.parametrize(
    "name, overrides",
    [(n, {}) for n in TEACHERS]
    + [("evg", {"backbone": "resdcn18", "face_hm": True}), ("evg", {"backbone": "mobv2"}),
       ("gazepose", {"prior_head": False, "gaussian_drop": False})],
)
def test_build_from_config_rebuilds_the_same_architecture(name: str, overrides: dict) -> None:
    model = get_teacher(name, preset="cpu", **overrides).eval()
    config = json.loads(json.dumps(model.config))
    torch.manual_seed(123)  # different fresh weights, so equal outputs prove the load
    clone = build_from_config(config).eval()
    assert clone.config == model.config
    assert type(clone) is type(model)
    sd, sd2 = model.state_dict(), clone.state_dict()
    assert list(sd) == list(sd2)
    assert all(sd[k].shape == sd2[k].shape for k in sd)
    clone.load_state_dict(sd)
    inputs = example_inputs(name, "cpu", batch=1)
    with torch.no_grad():
        a, b = model(*inputs.values()), clone(*inputs.values())
    assert list(a) == list(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k])


# ---------------------------------------------------------------- paper presets: the write-ups' figures


def test_gazenet_paper_parameter_count_and_wiring() -> None:
    model = paper_model("gazenet")
    assert n_params(model) == 4_387_331
    last = model.features[18]
    assert (last[0].in_channels, last[0].out_channels, last[0].kernel_size) == (320, 256, (1, 1))
    assert model.fc[0].in_features == 4096 and model.fc[0].out_features == 512
    assert [m.p for m in model.fc if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    convs = [m for m in model.spatial_weights.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(256, 256), (256, 256), (256, 1)]
    assert [float(c.bias.detach().mean()) for c in convs] == pytest.approx([0.1, 0.1, 1.0])
    stds = [float(c.weight.detach().std()) for c in convs]
    assert stds[0] == pytest.approx(0.01, rel=0.05) and stds[1] == pytest.approx(0.01, rel=0.05)
    assert stds[2] == pytest.approx(0.001, rel=0.3)  # 256 samples only


def test_gazenet_paper_forward_and_input_check() -> None:
    model = paper_model("gazenet")
    with torch.no_grad():
        out = model(torch.randn(1, 3, 112, 112))
    assert out["gaze"].shape == (1, 2)
    with pytest.raises(ValueError, match=r"expected face of shape \(B, 3, 112, 112\), got \(1, 3, 96, 96\)"):
        model(torch.randn(1, 3, 96, 96))


def test_mc4_paper_parameter_counts() -> None:
    model = paper_model("mc4")
    assert n_params(model.face_net) == 22_977_730
    assert n_params(model.eye_net) == 22_977_730
    assert n_params(model) == 45_955_460
    assert model.face_net.conv1.in_channels == 1 and model.face_net.fc.out_features == 2


@pytest.mark.parametrize(
    "preset, conv, fc1",
    [("paper", 342_240, 1_089_536), ("cpu", 143_424, 524_288)],
)
def test_itracker_fc1_dominates_conv_branches(preset: str, conv: int, fc1: int) -> None:
    model = paper_model("itracker") if preset == "paper" else get_teacher("itracker", preset=preset)
    assert model.conv_parameters() == conv
    assert n_params(model.fc1) == fc1
    assert n_params(model.fc1) > 3 * model.conv_parameters()
    assert len(model.branches) == 4
    ids = {id(p) for b in model.branches.values() for p in b.parameters()}
    assert len(ids) == sum(1 for b in model.branches.values() for _ in b.parameters())  # no weight sharing


def test_itracker_paper_forward_and_input_check() -> None:
    model = paper_model("itracker")
    inputs = example_inputs("itracker", "paper", batch=1)
    with torch.no_grad():
        assert model(*inputs.values())["pog"].shape == (1, 2)
    bad = dict(inputs, v1_left=torch.randn(1, 3, 36, 36))
    with pytest.raises(ValueError, match="v1_left"):
        model(*bad.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["evg", "gazelstm", "gazepose", "mc4"])
def test_heavy_paper_forward(name: str) -> None:
    model = paper_model(name)
    inputs = example_inputs(name, "paper", batch=1)
    with torch.no_grad():
        out = model(*inputs.values())
    assert {k: tuple(v.shape) for k, v in out.items()} == expected_shapes(name, inputs, model)
    assert all(torch.isfinite(v).all() for v in out.values())


# ---------------------------------------------------------------- evg


def test_evg_rejects_frames_not_multiple_of_32() -> None:
    model = get_teacher("evg").eval()
    with pytest.raises(ValueError, match="expected frame height and width to be multiples of 32, got 100x256"):
        model(torch.randn(1, 3, 100, 256))
    with pytest.raises(ValueError, match="got 64x90"):
        model(torch.randn(1, 3, 64, 90))


def test_evg_backbones_share_output_shapes() -> None:
    frame = torch.randn(1, 3, 64, 96)
    shapes = {}
    for backbone in ("res18", "resdcn18", "mobv2"):
        model = get_teacher("evg", backbone=backbone, face_hm=True).eval()
        n_dcn = sum(isinstance(m, DeformConv3x3Pack) for m in model.modules())
        assert n_dcn == (3 if backbone == "resdcn18" else 0)
        with torch.no_grad():
            shapes[backbone] = {k: tuple(v.shape) for k, v in model(frame).items()}
        for key in ("hm", "face_hm"):
            assert torch.allclose(model.heads[key][-1].bias, torch.tensor(-2.19))
    expected = {"hm": (1, 1, 16, 24), "offset": (1, 2, 16, 24), "face_hm": (1, 1, 16, 24), "context_pog": (1, 2)}
    assert shapes == {b: expected for b in ("res18", "resdcn18", "mobv2")}
    with pytest.raises(ValueError, match="res18, resdcn18, mobv2"):
        get_teacher("evg", backbone="vgg")


def test_evg_resdcn_stage_order() -> None:
    layers = list(get_teacher("evg", backbone="resdcn18").deconv_layers)
    kinds = [type(m).__name__ for m in layers]
    stage = ["DeformConv3x3Pack", "BatchNorm2d", "ReLU", "ConvTranspose2d", "BatchNorm2d", "ReLU"]
    assert kinds == stage * 3
    ups = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
    assert all((u.kernel_size, u.stride, u.padding, u.output_padding, u.bias) == ((4, 4), (2, 2), (1, 1), (0, 0), None)
               for u in ups)
    assert [u.out_channels for u in ups] == [64, 32, 16]


# ---------------------------------------------------------------- gazelstm / gazepose


def test_gazepose_with_switches_off_is_the_baseline_wiring() -> None:
    for preset in PRESETS:
        base = paper_model("gazelstm") if preset == "paper" else get_teacher("gazelstm", preset=preset)
        off = get_teacher("gazepose", preset=preset, prior_head=False, prior_landmark=False, gaussian_drop=False)
        assert n_params(off) == n_params(base)
        assert {k: v.shape for k, v in off.state_dict().items()} == {k: v.shape for k, v in base.state_dict().items()}
    full = get_teacher("gazepose")
    assert n_params(full) > n_params(get_teacher("gazelstm"))


def test_gazelstm_ignores_priors_and_gazepose_uses_them() -> None:
    inputs = example_inputs("gazepose", "cpu", batch=2)
    moved = dict(inputs, head_pose=inputs["head_pose"] + 30.0, landmarks=1.0 - inputs["landmarks"])
    lstm = get_teacher("gazelstm").eval()
    pose = get_teacher("gazepose").eval()
    with torch.no_grad():
        torch.testing.assert_close(lstm(*inputs.values())["logit"], lstm(*moved.values())["logit"])
        assert not torch.allclose(pose(*inputs.values())["logit"], pose(*moved.values())["logit"])


def test_gaussian_drop_is_off_in_eval_and_live_in_training() -> None:
    inputs = example_inputs("gazepose", "cpu", batch=4)
    model = get_teacher("gazepose").eval()
    no_drop = get_teacher("gazepose", gaussian_drop=False).eval()
    no_drop.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.manual_seed(1)
        a = model(*inputs.values())["logit"]
        torch.manual_seed(2)
        b = model(*inputs.values())["logit"]
        torch.testing.assert_close(a, b)
        torch.testing.assert_close(a, no_drop(*inputs.values())["logit"])
        model.train(), no_drop.train()
        outs = []
        for seed in range(4):
            torch.manual_seed(seed)
            outs.append(model(*inputs.values())["logit"])
        assert any(not torch.allclose(outs[0], o) for o in outs[1:])
        torch.testing.assert_close(no_drop(*inputs.values())["logit"], no_drop(*inputs.values())["logit"])


def test_gaussian_drop_mask_never_drops_the_centre_frame() -> None:
    probs = gaussian_drop_probs(7, p_max=0.5, sigma=2.0)
    assert probs[3] == 0
    torch.testing.assert_close(probs, probs.flip(0))
    assert all(probs[3 + d] > probs[3 + d - 1] for d in (1, 2, 3))
    assert float(probs[0]) == pytest.approx(0.5 * (1 - torch.exp(torch.tensor(-9 / 8)).item()))
    keep = gaussian_keep_mask(20000, 7, p_max=0.5, sigma=2.0, generator=torch.Generator().manual_seed(0))
    assert keep.shape == (20000, 7) and set(keep.unique().tolist()) <= {0.0, 1.0}
    assert keep[:, 3].all()
    torch.testing.assert_close(1 - keep.mean(0), probs, atol=0.015, rtol=0)
    keep_all = gaussian_keep_mask(100, 7, p_max=1.0, sigma=1e-3)
    assert keep_all[:, 3].all() and not keep_all[:, [0, 1, 2, 4, 5, 6]].any()
    with pytest.raises(ValueError):
        gaussian_drop_probs(7, p_max=1.5, sigma=2.0)


def test_gazepose_prior_bins() -> None:
    from teachers.gazelstm import GazePose

    head = torch.tensor([[-90.0, 0.0, 90.0], [-120.0, 0.4, 200.0]])
    assert GazePose.head_bins(head).tolist() == [[0, 90, 180], [0, 90, 180]]
    lms = torch.tensor([[[0.0, 1.0], [0.34, 0.36], [-0.2, 1.3], [0.5, 0.5], [0.06, 0.94]]])
    assert GazePose.landmark_bins(lms).tolist() == [[0, 10, 3, 4, 0, 10, 5, 5, 1, 9]]


# ---------------------------------------------------------------- mc4


def test_mc4_composes_gaze_geometrically_and_normalizes() -> None:
    model = get_teacher("mc4").eval()
    inputs = example_inputs("mc4", "cpu", batch=2)
    with torch.no_grad():
        deg = model.forward_degrees(*inputs.values())
        out = model(*inputs.values())
    torch.testing.assert_close(deg["gaze"], compose_lola(deg["head"], deg["eye"]))
    for k in ("head", "eye", "gaze"):
        torch.testing.assert_close(out[k], normalize_angle01(deg[k]))
    with pytest.raises(ValueError, match="eye"):
        model(inputs["face"], torch.randn(2, 3, 112, 112))
