"""evg's options beyond the write-up: coordinate channels, the global context branch and its PoG read-out."""

from __future__ import annotations

import pytest
import torch

from teachers import get_teacher
from teachers.evg import _GlobalContext
from workbench.train.models import count_params

# The write-up's wiring at the cpu preset's widths: no additions, no face_hm head.
WIRE = {"coord_channels": False, "global_context": False, "context_pog": False, "face_hm": False}
WIRE_PARAMS = 879_043


def test_options_are_off_at_the_paper_preset():
    cfg = get_teacher("evg", preset="paper").config
    assert cfg["coord_channels"] is False and cfg["global_context"] is False


def test_option_parameter_counts():
    base = count_params(get_teacher("evg", preset="cpu", **WIRE))
    assert base == WIRE_PARAMS
    heads, mid, enc, dec = 2, 16, 128, 16  # hm + offset heads, head_channels, encoder and decoder widths
    coord = count_params(get_teacher("evg", preset="cpu", **{**WIRE, "coord_channels": True}))
    assert coord - base == heads * 2 * 9 * mid  # two more input channels of each head's 3x3 conv
    ctx = count_params(get_teacher("evg", preset="cpu", **{**WIRE, "global_context": True}))
    assert ctx - base == (enc + 1) + (enc + 2) * dec + dec  # attention 1x1 conv + linear over [feats, x, y]
    read = count_params(get_teacher("evg", preset="cpu", **{**WIRE, "global_context": True, "context_pog": True}))
    assert read - ctx == dec * 2 + 2  # the linear read-out of the context vector to (x, y)
    # The cpu preset is that wiring with face_hm and all three additions on.
    assert count_params(get_teacher("evg", preset="cpu")) == base + (coord - base) + (read - base) + (
        count_params(get_teacher("evg", preset="cpu", **{**WIRE, "face_hm": True})) - base) + 2 * 9 * mid


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_coord_channels_reach_the_heads_at_their_scale(scale):
    torch.manual_seed(0)
    model = get_teacher("evg", preset="cpu", **{**WIRE, "coord_channels": True, "coord_scale": scale}).eval()
    seen = {}
    model.heads["hm"].register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    model(torch.zeros(2, 3, 64, 96))
    x = seen["x"]
    assert x.shape == (2, 16 + 2, 16, 24)
    torch.testing.assert_close(x[:, -2, 0, :], torch.linspace(-scale, scale, 24).expand(2, 24))
    torch.testing.assert_close(x[:, -1, :, 5], torch.linspace(-scale, scale, 16).expand(2, 16))


def test_old_run_configs_rebuild_as_they_were_trained():
    from teachers import build_from_config

    # A cpu run's config.json from before coord_scale and context_pog existed: the builder's defaults apply
    # to the keys it lacks (coordinates at +-1, no read-out), not the preset's current values.
    old = {k: v for k, v in get_teacher("evg", preset="cpu").config.items() if k not in ("coord_scale", "context_pog")}
    model = build_from_config(old)
    assert model.config["coord_scale"] == 1.0 and model.config["context_pog"] is False
    assert "context_pog" not in model.output_names
    # A config with every key rebuilds exactly.
    assert build_from_config(get_teacher("evg", preset="cpu").config).config == get_teacher("evg", preset="cpu").config


def test_global_context_pools_where_the_attention_points():
    torch.manual_seed(0)
    ctx = _GlobalContext(4, 6)
    with torch.no_grad():
        ctx.attn.weight.zero_()
        ctx.attn.weight[0, 0] = 50.0  # attend to channel 0
        ctx.attn.bias.zero_()
    captured = {}
    ctx.proj.register_forward_hook(lambda m, i, o: captured.update(x=i[0]))
    feats = torch.zeros(2, 4, 5, 8)
    feats[0, 0, 1, 6] = 1.0  # frame 0: the "face" at cell (x=6, y=1)
    feats[1, 0, 4, 0] = 1.0  # frame 1: at cell (x=0, y=4)
    out = ctx(feats)
    assert out.shape == (2, 6)
    xy = captured["x"][:, -2:]
    torch.testing.assert_close(xy, torch.tensor([[-1 + 2 * 6 / 7, -1 + 2 * 1 / 4], [-1.0, 1.0]]), atol=1e-3, rtol=0)


def test_global_context_adds_one_vector_per_frame():
    torch.manual_seed(0)
    model = get_teacher("evg", preset="cpu", **{**WIRE, "global_context": True}).eval()
    frame = torch.randn(1, 3, 64, 96)
    out = model(frame)
    assert set(out) == {"hm", "offset"} and out["hm"].shape == (1, 1, 16, 24)
    # The heads see the decoder output plus the same context vector at every cell.
    feats = model.backbone.forward_features(frame)
    with torch.no_grad():
        base = model.deconv_layers(feats)
        expected = base + model.context(feats).view(1, -1, 1, 1)
        got = {}
        h = model.heads["hm"].register_forward_hook(lambda m, i, o: got.update(x=i[0]))
        model(frame)
        h.remove()
    torch.testing.assert_close(got["x"], expected)


def test_context_pog_reads_the_context_vector_and_needs_it():
    torch.manual_seed(0)
    model = get_teacher("evg", preset="cpu", global_context=True, context_pog=True).eval()
    frame = torch.randn(2, 3, 64, 96)
    out = model(frame)
    assert out["context_pog"].shape == (2, 2) and "context_pog" in model.output_names
    with torch.no_grad():
        g = model.context(model.backbone.forward_features(frame))
    torch.testing.assert_close(out["context_pog"], model.context_pog(g))
    with pytest.raises(ValueError, match="global_context"):
        get_teacher("evg", preset="cpu", **{**WIRE, "context_pog": True})
