"""int8 post-training quantization with onnxruntime: a working int8 model close to fp32, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from typer.testing import CliRunner

from students import get_student
from workbench.cli import app
from workbench.compress.distill import validation_data
from workbench.compress.quantize import quantize
from workbench.data.synth import render
from workbench.profile.export import onnx_session
from workbench.profile.machine import machine, machine_text
from workbench.tasks import get_task
from workbench.train.engine import load_run_model
from workbench.train.recipes import get_recipe
from workbench.train.run_folder import RunFolder, save_checkpoint
from workbench.utils.jsonio import write_json
from _threads import one_thread_module  # noqa: F401 (autouse fixture: one torch thread)

runner = CliRunner()
TINY = {"n_train": 64, "n_val": 32, "batch_size": 16, "train_subjects": 3, "val_subjects": 1, "size": 64}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tinyface run folder with exact BatchNorm statistics of its data and otherwise initial weights.

    Its outputs vary with the face (a briefly trained model predicts nearly the mean for every face), so
    int8-vs-fp32 closeness below is a real test; calibration sees other samples than the statistics. Two
    blocks only: with random features int8 error compounds layer after layer (the full tiny preset drifts
    by a third of the output spread; trained models do not, gazenet loses under 1%).
    """
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("quantize") / "student"
    model = get_student("tinyface", input_size=64, widths=[16, 32], strides=[2, 2])
    task = get_task("face_angles")
    data = task.prepare(render("face", 64, seed=9, subjects=3, size=64))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the pass below
    with torch.no_grad():
        model.train()(*task.inputs(data.batch(torch.arange(len(data)))))
    config = {"teacher": "tinyface", "preset": "tiny", "task": "face_angles", "model": model.config,
              "recipe": get_recipe("gazenet", "cpu").update(**TINY).to_dict(),
              "data": {"source": "synth", "format": None}, "seed": 0}
    folder = RunFolder.create(path)
    write_json(folder.config_path, config)
    save_checkpoint(folder.best, model_state=model.state_dict(), model_config=model.config)
    return path


@pytest.fixture(scope="module")
def quantized(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("q") / "int8"
    return out, quantize(run, out, n_calib=64, fmt="auto", repeats=10, warmup=2, progress=False)


def test_quantize_writes_fp32_and_int8_models_and_a_summary(quantized):
    out, summary = quantized
    assert sorted(p.name for p in out.iterdir()) == ["model.int8.onnx", "model.onnx", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(summary))
    ops = {n.op_type for n in onnx.load(str(out / "model.int8.onnx")).graph.node}
    assert ops & {"QLinearConv", "QuantizeLinear"}, ops  # really an integer graph
    cands = summary["candidates"]
    assert set(cands) == {"qdq", "qoperator", "qdq+fp32-stem", "qoperator+fp32-stem"}
    chosen = summary["int8"]["candidate"]
    # The fastest by CPU time per call (one thread: wall time would count what other processes take).
    assert all(cands[chosen]["latency_b1"]["cpu_median_ms"] <= c["latency_b1"]["cpu_median_ms"] for c in cands.values())
    assert cands["qoperator+fp32-stem"]["ops"]["Conv"] == 1 and "Conv" not in cands["qoperator"]["ops"]
    assert len(summary["int8"]["stem_fp32"]) == (1 if chosen.endswith("fp32-stem") else 0)  # the RGB stem only
    assert summary["int8"]["bytes"] < summary["fp32"]["bytes"]
    assert summary["evaluation"]["samples"] == 32 and summary["calibration"]["samples"] == 64
    assert summary["latency"]["threads"] == 1 and summary["speedup_b1"] > 0 and summary["speedup_b1_cpu_time"] > 0
    assert all(c["latency_b1"]["cpu_median_ms"] > 0 for c in cands.values())
    assert summary["latency"]["runtime"] == f"onnxruntime {onnxruntime.__version__}"
    assert summary["latency"]["machine"] == machine()


def test_int8_outputs_are_close_to_fp32_and_fp32_matches_pytorch(run, quantized):
    out, summary = quantized
    model, config, task = load_run_model(run)
    val = validation_data(task, config)
    (x,) = task.inputs(val.batch(torch.arange(len(val))))
    with torch.no_grad():
        ref = model(x)["gaze"].numpy()
    fp32 = onnx_session(out / "model.onnx").run(["gaze"], {"face": x.numpy()})[0]
    int8 = onnx_session(out / "model.int8.onnx").run(["gaze"], {"face": x.numpy()})[0]
    np.testing.assert_allclose(fp32, ref, atol=1e-4)
    spread = float(np.abs(ref - ref.mean(0)).mean())
    assert spread > 1e-3  # the trained outputs vary, so closeness below means something
    assert float(np.abs(int8 - fp32).mean()) < 0.15 * spread
    assert summary["fp32"]["angular_error"] == pytest.approx(task.metrics({"gaze": torch.from_numpy(fp32)},
                                                                          {"gaze": val.tensors["gaze"]})["angular_error"])
    assert abs(summary["metric_change"]) < 0.05


def test_quantize_cli_prints_the_comparison(run, tmp_path):
    res = runner.invoke(app, ["quantize", str(run), "--out", str(tmp_path / "q"), "--n-calib", "16", "--n-eval", "16",
                              "--format", "qoperator", "--repeats", "5"])
    assert res.exit_code == 0, res.output
    assert "speedup" in res.stdout and "int8" in res.stdout
    assert f"latency: onnxruntime, 1 thread, batch 1, {machine_text(machine())}" in res.stdout
    summary = json.loads((tmp_path / "q" / "summary.json").read_text())
    assert summary["int8"]["format"] == "qoperator" and summary["evaluation"]["samples"] == 16


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "int4"], "unknown quantization format"),
    (["--n-calib", "0"], "--n-calib must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(run, tmp_path, args, message):
    res = runner.invoke(app, ["quantize", str(run), "--out", str(tmp_path / "q"), *args])
    assert res.exit_code == 2 and message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not (tmp_path / "q").exists()


def test_not_a_run_folder_and_existing_output_exit_2(run, tmp_path):
    res = runner.invoke(app, ["quantize", str(tmp_path), "--out", str(tmp_path / "q")])
    assert res.exit_code == 2 and "not a run folder" in res.stderr
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / "x").write_text("keep")
    res = runner.invoke(app, ["quantize", str(run), "--out", str(tmp_path / "q")])
    assert res.exit_code == 2 and "not empty" in res.stderr and (tmp_path / "q" / "x").read_text() == "keep"


class _Kinds(torch.nn.Module):
    """One layer of each kind the census tells apart, with MACs known in closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.narrow = torch.nn.Conv2d(3, 64, 3, padding=1)          # 8x8 out: 64*64*27
        self.wide = torch.nn.Conv2d(64, 64, 1)                      # 64*64*64
        self.dw = torch.nn.Conv2d(64, 64, 3, padding=1, groups=64)  # 64*64*9
        self.grouped = torch.nn.Conv2d(64, 64, 3, padding=1, groups=16)  # 64*64*4*9
        self.up = torch.nn.ConvTranspose2d(64, 8, 2, stride=2)      # 64 in pixels * 64 * 8*2*2
        self.fc = torch.nn.Linear(8 * 16 * 16, 10)                   # 2048*10
        self.rnn = torch.nn.LSTM(10, 6, batch_first=True)            # per step 4*(10*6+6*6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(self.grouped(self.dw(self.wide(self.narrow(x)))))
        z = self.fc(y.flatten(1))
        out, _ = self.rnn(torch.stack([z] * 5, 1))
        return out[:, -1]


def test_layer_census_splits_the_macs_by_kind(tmp_path):
    from workbench.compress.quantize import layer_census
    from workbench.profile.export import export_onnx

    path = tmp_path / "kinds.onnx"
    export_onnx(_Kinds().eval(), {"x": torch.rand(2, 3, 8, 8)}, path)
    census = layer_census(path)
    want = {"dense conv, < 64 channels in or out": 64 * 64 * 27, "dense conv, >= 64 channels in and out": 64 * 64 * 64,
            "depthwise conv": 64 * 64 * 9, "grouped conv": 64 * 64 * 36, "conv-transpose": 64 * 64 * 32,
            "fully connected": 2048 * 10, "recurrent": 5 * 4 * (10 * 6 + 6 * 6)}
    total = sum(want.values())
    assert census["macs"] == total
    assert census["share"] == pytest.approx({k: v / total for k, v in want.items()})
    assert set(census["int8_on_this_kind"]) == set(want)


def test_grouped_convs_can_stay_fp32_while_the_rest_is_int8(tmp_path):
    from workbench.compress.quantize import grouped_convs, quantize_onnx, stem_convs
    from workbench.profile.export import export_onnx

    torch.manual_seed(0)
    x = torch.rand(4, 3, 8, 8)
    path = tmp_path / "kinds.onnx"
    export_onnx(_Kinds().eval(), {"x": x}, path)
    weights = {w.name: list(w.dims) for w in onnx.load(str(path)).graph.initializer}
    convs = {n.name: weights[n.input[1]] for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"}
    # ResNeXt-style groups (64 channels in 16 groups: weight (64, 4, 3, 3)), not the depthwise (64, 1, 3, 3)
    assert [convs[n] for n in grouped_convs(path)] == [[64, 4, 3, 3]]
    assert [convs[n] for n in stem_convs(path)] == [[64, 3, 3, 3]]
    calib = [{"x": x.numpy()}]
    done = quantize_onnx(path, tmp_path / "g.onnx", calib, fmt="qoperator", grouped_fp32=True)
    assert len(done["grouped_fp32"]) == 1 and done["stem_fp32"] == []
    assert done["ops"]["Conv"] == 1 and done["ops"]["QLinearConv"] == 3  # narrow, wide, depthwise in int8
    plain = quantize_onnx(path, tmp_path / "p.onnx", calib, fmt="qoperator")
    assert "Conv" not in plain["ops"] and plain["ops"]["QLinearConv"] == 4
