"""`workbench profile | export | bench` through CliRunner, including a user's model by import path."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.profile.machine import machine, machine_text

runner = CliRunner()
HERE = Path(__file__).parent
TINY_MACS = 16 * 16 * 8 * 3 * 9 + 8 * 16 * 16 * 5  # tiny_factory.TinyNet at batch 1


@pytest.fixture
def in_here(monkeypatch):
    """Run from this folder, so `tiny_factory:build` imports as a user's own module would."""
    monkeypatch.chdir(HERE)


def _one_line_error(res, needle):
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr


def test_profile_user_model_by_import_path(in_here):
    res = runner.invoke(app, ["profile", "tiny_factory:build", "--input", "image=3x16x16", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["macs"] == r["macs_calflops"] == r["macs_torch"] == TINY_MACS
    assert r["params"] == 3 * 8 * 9 + 8 + 2048 * 5 + 5
    assert r["input_shapes"] == {"image": [1, 3, 16, 16]} and r["kind"] == "import"
    assert [row["name"] for row in r["layers"]] == ["conv", "head"]
    res = runner.invoke(app, ["profile", "tiny_factory:build", "--input", "image=3x16x16", "--top", "1"])
    assert res.exit_code == 0 and "conv" in res.stdout and "65,536" in res.stdout


@pytest.mark.parametrize("args,needle", [
    (["no_such_package.models:build", "--input", "image=3x16x16"], "cannot import 'no_such_package.models'"),
    (["tiny_factory:missing", "--input", "image=3x16x16"], "has no attribute 'missing'"),
    (["tiny_factory:not_a_module", "--input", "image=3x16x16"], "returned int, expected a torch.nn.Module"),
    (["tiny_factory:broken", "--input", "image=3x16x16"], "weights missing"),
    (["tiny_factory:build", "--input", "image=3x20x20"], "model rejected inputs image=1x3x20x20"),
    (["tiny_factory:build", "--input", "picture=3x16x16"], "has no argument 'picture'"),
    (["tiny_factory:build", "--input", "image=3by16"], "expected name=CxHxW"),
    (["tiny_factory:build"], "give the model's inputs with --input"),
    (["not_a_teacher"], "unknown teacher, student or model 'not_a_teacher'"),
    (["evg", "--input", "face=3x64x64"], "the model's inputs are ['frame']"),
    (["evg", "--input", "frame=3x100x100"], "multiples of 32"),
])
def test_bad_input_is_one_line_and_exit_2(in_here, args, needle):
    _one_line_error(runner.invoke(app, ["profile", *args]), needle)


def test_profile_teacher_with_image_table():
    res = runner.invoke(app, ["profile", "evg", "--image", "480x270", "--depth", "1"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())  # rich wraps lines at the terminal width
    assert "480x270 -> network input 512x288" in text and "MACs on padding" in text
    res = runner.invoke(app, ["profile", "gazelstm", "--depth", "1", "--json"])
    r = json.loads(res.stdout)
    assert r["macs_rnn"] > 0 and r["macs"] == r["macs_calflops"] + r["macs_rnn"]


def test_bench_user_model_json(in_here):
    res = runner.invoke(app, ["bench", "tiny_factory:build", "--input", "image=3x16x16", "--batch", "4",
                              "--threads", "1", "--warmup", "1", "--repeats", "3", "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert r["threads"] == 1 and r["batch_sizes"] == [1, 4]
    for backend in ("eager", "onnxruntime"):
        for b in ("batch_1", "batch_4"):
            cell = r[backend][b]
            assert cell["repeats"] == 3 and 0 < cell["median_ms"] <= cell["p90_ms"]
    assert r["onnx_max_abs_diff"] <= 1e-4
    assert r["machine"] == machine()  # the machine the figures come from is recorded beside them


def test_bench_table_names_runtime_threads_batch_and_machine(in_here):
    res = runner.invoke(app, ["bench", "tiny_factory:build", "--input", "image=3x16x16", "--batch", "4",
                              "--threads", "1", "--warmup", "1", "--repeats", "2", "--backend", "onnxruntime"])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("latency:"))
    assert line == f"latency: onnxruntime, 1 thread, batch 1 and 4, {machine_text(machine())}"


def test_export_run_and_refuse_overwrite(tmp_path):
    from workbench.train.engine import TrainRequest, fit

    run = tmp_path / "itracker"
    tiny = {"n_train": 32, "n_val": 16, "batch_size": 16, "train_subjects": 2, "val_subjects": 1, "epochs": 1}
    fit(TrainRequest(teacher="itracker", recipe_overrides=tiny, out=run, progress=False))
    onnx_path = tmp_path / "model.onnx"
    res = runner.invoke(app, ["export", str(run), "--onnx", str(onnx_path), "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout)
    assert onnx_path.is_file() and r["max_abs_diff"] <= 1e-4
    assert r["inputs"] == ["v0_left", "v0_right", "v1_left", "v1_right"] and r["outputs"] == {"pog": "pog"}
    _one_line_error(runner.invoke(app, ["export", str(run), "--onnx", str(onnx_path)]), "--force")
    _one_line_error(runner.invoke(app, ["export", str(tmp_path), "--onnx", str(tmp_path / "x.onnx")]), "not a run folder")
    # The exported file benchmarks in onnxruntime alone.
    res = runner.invoke(app, ["bench", str(onnx_path), "--input", "v0_left=3x36x36", "--input", "v0_right=3x36x36",
                              "--input", "v1_left=3x36x36", "--input", "v1_right=3x36x36", "--batch", "2",
                              "--threads", "1", "--warmup", "0", "--repeats", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert set(json.loads(res.stdout)) >= {"onnxruntime"} and "eager" not in json.loads(res.stdout)
