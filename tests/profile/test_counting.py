"""MACs against closed forms, calflops against torch's counter, and the per-layer table."""

import pytest
import torch
from torch import nn

from teachers import example_inputs, get_teacher
from workbench.profile import count_macs, profile_model, recurrent_macs


def _x(*shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_macs_equal_closed_form_where_both_counters_report_zero(batch_first):
    lstm = nn.LSTM(256, 256, num_layers=2, bidirectional=True, batch_first=batch_first)
    x = _x(1, 7, 256) if batch_first else _x(7, 1, 256)
    r = profile_model(lstm, {"input": x})
    # 4*(in*h + h*h) per step and direction; layer 2 reads 2h = 512 features.
    per_step = 4 * (256 * 256 + 256 * 256) * 2 + 4 * (512 * 256 + 256 * 256) * 2
    assert per_step * 7 == 18_350_080
    assert r["macs"] == r["macs_rnn"] == 18_350_080
    assert r["macs_calflops"] == 0 and r["macs_torch"] == 0  # the gap the workbench fills
    assert count_macs(lstm, (x,)) == 18_350_080


def test_gru_macs_equal_closed_form():
    gru = nn.GRU(32, 16, batch_first=True)
    r = profile_model(gru, {"input": _x(2, 5, 32)})
    assert r["macs"] == 3 * (32 * 16 + 16 * 16) * 5 * 2


def test_lstm_with_projection_closed_form():
    lstm = nn.LSTM(10, 8, proj_size=4, num_layers=2)
    # layer 1: 4*(10*8 + 4*8) + 8*4 ; layer 2 reads the projected 4 features: 4*(4*8 + 4*8) + 8*4
    assert recurrent_macs(lstm, 3, 2) == ((4 * (10 * 8 + 4 * 8) + 32) + (4 * (4 * 8 + 4 * 8) + 32)) * 3 * 2


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_macs_equal_closed_form(groups):
    # Every input pixel meets k*k taps for each of Cout/groups output channels.
    up = nn.ConvTranspose2d(8, 12, kernel_size=4, stride=2, padding=1, groups=groups)
    x = _x(2, 8, 5, 7)
    r = profile_model(up, {"input": x})
    closed = 2 * 5 * 7 * 8 * (12 // groups) * 4 * 4
    assert r["macs"] == closed == r["macs_torch"]
    # calflops 0.3.2 divides by the groups twice (its out_channels is weight.shape[1], already per group):
    # a grouped transposed conv is under-counted by the factor `groups`, and the workbench notices.
    assert r["macs_calflops"] == closed // groups
    assert bool(r["counter_diff"]["modules"]) == (groups > 1)
    # The same count from the output side: Hout*Wout*Cout*(Cin/groups)*k*k / stride^2 (thop omits / stride^2).
    out = up(x)
    assert closed == out.shape[0] * out.shape[2] * out.shape[3] * 12 * (8 // groups) * 16 // 4


@pytest.mark.parametrize("groups,cin,cout", [(4, 8, 12), (8, 8, 8), (1, 3, 5)])
def test_grouped_conv_macs_equal_closed_form(groups, cin, cout):
    conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1, groups=groups, bias=True)
    r = profile_model(conv, {"input": _x(1, cin, 9, 11)})
    ho, wo = (9 + 2 - 3) // 2 + 1, (11 + 2 - 3) // 2 + 1
    assert r["macs"] == ho * wo * cout * (cin // groups) * 9
    # FLOPs: 2 per MAC plus one add per output element for the bias (calflops counts it, torch does not).
    assert r["flops"] == 2 * r["macs"] + ho * wo * cout
    assert r["flops_torch"] == 2 * r["macs"]


class _ConvLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, padding=1, groups=4), nn.ReLU(),
                                      nn.ConvTranspose2d(32, 8, 2, stride=2), nn.AdaptiveAvgPool2d(4))
        self.fc = nn.Sequential(nn.Linear(8 * 16, 32), nn.ReLU(), nn.Linear(32, 3))

    def forward(self, x):
        return self.fc(self.features(x).flatten(1))


@pytest.mark.parametrize("which", ["conv_linear", "itracker", "gazenet"])
def test_calflops_and_torch_agree_within_one_percent_on_conv_linear_models(which):
    if which == "conv_linear":
        model, inputs = _ConvLinear(), {"x": _x(1, 3, 32, 40)}
    else:
        model, inputs = get_teacher(which, preset="cpu"), example_inputs(which, batch=1)
    r = profile_model(model, inputs)
    assert r["macs_torch"] > 0
    assert abs(r["macs_calflops"] - r["macs_torch"]) <= 0.01 * r["macs_torch"]
    assert abs(r["counter_diff"]["macs_calflops_vs_torch"]) <= 0.01
    # calflops' extra FLOPs are the elementwise ops torch's counter does not count, nothing else.
    assert r["flops_calflops"] - r["flops_torch"] == r["counter_diff"]["flops_elementwise"]
    assert r["counter_diff"]["flops_elementwise"] > 0 and any("elementwise" in n for n in r["notes"])


def test_pipeline_totals_equal_calculate_flops():
    from calflops import calculate_flops

    model = _ConvLinear().eval()
    x = _x(2, 3, 32, 40)
    flops, macs, params = calculate_flops(model, args=[x], print_results=False, output_as_string=False)
    r = profile_model(model, {"x": x})
    assert (r["flops_calflops"], r["macs_calflops"], r["params"]) == (flops, macs, params)


def test_gazelstm_counts_its_lstm():
    r = profile_model(get_teacher("gazelstm", preset="cpu"), example_inputs("gazelstm", batch=1))
    f = h = 64
    assert r["macs_rnn"] == (4 * (f * h + h * h) * 2 + 4 * (2 * h * h + h * h) * 2) * 7
    assert r["macs"] == r["macs_calflops"] + r["macs_rnn"]
    lstm_row = next(row for row in r["layers"] if row["name"] == "lstm")
    assert lstm_row["macs"] == r["macs_rnn"] and lstm_row["macs_calflops"] == lstm_row["macs_torch"] == 0


def test_deformable_conv_gap_is_filled_from_torch_counter():
    model = get_teacher("evg", preset="cpu", backbone="resdcn18")
    r = profile_model(model, {"frame": _x(1, 3, 64, 96)})
    # calflops counts the DCN's einsum as 0 MACs; torch sees it as bmm.
    assert r["macs_calflops"] < r["macs_torch"] == r["macs"]
    assert {g["type"] for g in r["counter_diff"]["modules"]} == {"DeformConv3x3Pack"}
    assert r["flops"] < r["flops_calflops"] + 2 * (r["macs"] - r["macs_calflops"])  # the einsum is not counted twice


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
def test_layer_rows_partition_the_model(depth):
    model = get_teacher("evg", preset="cpu", backbone="mobv2")  # forward_features + ModuleDict heads
    r = profile_model(model, {"frame": _x(1, 3, 64, 96)}, depth=depth)
    assert sum(row["macs"] for row in r["layers"]) == r["macs"]
    assert sum(row["flops"] for row in r["layers"]) == r["flops"]
    assert sum(row["params"] for row in r["layers"]) == r["params"]
    assert [row["macs"] for row in r["layers"]] == sorted((row["macs"] for row in r["layers"]), reverse=True)
    if depth == 0:
        assert [row["name"] for row in r["layers"]] == ["(model)"]


def test_top_keeps_the_largest_rows():
    model = get_teacher("itracker", preset="cpu")
    full = profile_model(model, example_inputs("itracker", batch=1), depth=3)
    top = profile_model(model, example_inputs("itracker", batch=1), depth=3, top=3)
    assert top["layers"] == full["layers"][:3]
    assert top["layers_omitted"]["count"] == len(full["layers"]) - 3
    assert top["layers_omitted"]["macs"] + sum(r["macs"] for r in top["layers"]) == full["macs"]


def test_training_mode_is_restored():
    model = _ConvLinear().train()
    profile_model(model, {"x": _x(1, 3, 16, 16)})
    assert model.training
