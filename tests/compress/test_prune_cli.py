"""`workbench prune` end to end on tiny runs: a rebuildable run folder, importance files, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from compress._tiny import one_thread, tiny, tiny_run  # noqa: F401 (autouse fixture)
from typer.testing import CliRunner

from workbench.cli import app
from workbench.compress.prune import prune
from workbench.train.engine import evaluate, load_run_model
from workbench.train.run_folder import RunFolder

runner = CliRunner()


@pytest.fixture(scope="module")
def gazenet_run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("runs") / "gazenet", "gazenet")


def _invoke(*args):
    return runner.invoke(app, ["prune", *[str(a) for a in args], "--calib-samples", "32"])


def _one_line_error(res, needle: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.output


def test_prune_writes_a_run_folder_that_rebuilds_exactly(gazenet_run, tmp_path):
    out = tmp_path / "pruned"
    res = _invoke(gazenet_run, "--out", out, "--target-macs", 0.6, "--steps", 2, "--finetune-epochs", 0,
                  "--final-epochs", 1, "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["macs"]["after"] <= 0.6 * summary["macs"]["before"]
    assert summary["params"]["after"] < summary["params"]["before"]
    assert [h["step"] for h in summary["history"]] == [1, 2] and summary["finetune"]["epochs"] == [0, 1]
    assert "angular_error" in summary["history"][1] and "angular_error_pruned" in summary["history"][0]
    assert summary["history"][0]["macs"] > summary["history"][1]["macs"]
    assert summary["heads"] == ["fc.6"]
    assert json.loads((out / "metrics.json").read_text())["best"] == summary["best"]
    # Rebuilt from config.json {"pruned": ...} and weights_only checkpoint: the same model that was evaluated.
    model, config, task = load_run_model(out)
    assert set(config["model"]) == {"pruned"} and config["model"]["pruned"]["base"]["teacher"] == "gazenet"
    assert model.spatial_weights.weights[4].out_channels == 1
    val = RunFolder(out)  # the run folder's own validation split, as prune evaluated it
    assert val.best.exists() and (out / "steps" / "step2" / "config.json").exists()
    assert not (out / "steps" / "step1").exists()  # no fine-tuning after step 1
    from workbench.compress.prune import _sample

    metrics = evaluate(model, task, _sample(task, config, 0, val=True))
    assert metrics[summary["primary_metric"]] == pytest.approx(summary["best"], rel=1e-6)


def test_fc_importance_file_decides_which_fc_units_go(gazenet_run, tmp_path):
    teacher, config, _ = load_run_model(gazenet_run)
    scores = torch.linspace(0.0, 1.0, 16)[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    doc = {"format": "gaze-workbench/fc-importance/1", "model": config["model"], "layers": {
        "fc.0": {"out_features": 16, "scores": {"ablation": scores.tolist()}, "default": "ablation", "is_head": False},
        "fc.6": {"out_features": 2, "scores": {"ablation": [1.0, 1.0]}, "default": "ablation", "is_head": True}}}
    path = tmp_path / "fc_importance.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "pruned"
    # --round-to 1: fc.0's 16 units may shrink to any count (rounded, it could only keep 8 or 16).
    res = _invoke(gazenet_run, "--out", out, "--target-params", 0.5, "--steps", 1, "--finetune-epochs", 0,
                  "--importance", f"fc:{path}", "--round-to", 1, "--json")
    assert res.exit_code == 0, res.output
    model, _, _ = load_run_model(out)
    n = model.fc[0].out_features
    assert n < 16
    # fc.0's surviving units (found by their biases) are exactly the n best-scored ones.
    kept = [int((teacher.fc[0].bias == b).nonzero()) for b in model.fc[0].bias]
    assert sorted(kept) == sorted(torch.argsort(scores, descending=True)[:n].tolist())


def test_taylor_importance_prunes_lstm_hidden_by_half(tmp_path):
    run = tiny_run(tmp_path / "lstm", "gazelstm", n_train=16, n_val=16)
    result = prune(run, tmp_path / "pruned", layers={"lstm": 0.5}, importance="taylor", steps=1, finetune_epochs=0,
                   calib_samples=16, progress=False)
    model, _, _ = load_run_model(tmp_path / "pruned")
    assert tiny("gazelstm").lstm.hidden_size == 8 and model.lstm.hidden_size == 4
    assert result["widths"]["lstm"]["hidden_size"] == 4 and result["macs"]["after"] < result["macs"]["before"]
    assert model.last_layer.in_features == 8


@pytest.mark.parametrize("args,needle", [
    (["--target-macs", "0.001"], "smallest reachable"),
    (["--target-macs", "0.5", "--target-params", "0.5"], "exactly one"),
    (["--target-macs", "1.5"], "(0, 1]"),
    (["--target-macs", "0.5", "--importance", "entropy"], "unknown importance"),
    (["--layers", "nope=0.5"], "not prunable group roots"),
])
def test_bad_input_is_one_line_and_exit_2(gazenet_run, tmp_path, args, needle):
    out = tmp_path / "pruned"
    _one_line_error(_invoke(gazenet_run, "--out", out, *args, "--finetune-epochs", 0), needle)
    assert not out.exists()


def test_importance_file_for_another_model_is_rejected(gazenet_run, tmp_path):
    _, config, _ = load_run_model(gazenet_run)
    other = {**config["model"], "fc_hidden": 32}
    path = tmp_path / "fc_importance.json"
    path.write_text(json.dumps({"model": other, "layers": {"fc.0": {"out_features": 32, "scores": {"a": [0.0] * 32}}}}))
    _one_line_error(_invoke(gazenet_run, "--out", tmp_path / "p", "--target-macs", 0.5, "--importance", f"fc:{path}"),
                    "another model")


def test_existing_output_folder_is_refused(gazenet_run, tmp_path):
    out = tmp_path / "pruned"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _one_line_error(_invoke(gazenet_run, "--out", out, "--target-macs", 0.5), "--force")
    assert (out / "keep.txt").read_text() == "mine"


def test_target_latency_times_the_models_and_reports_the_measurement(gazenet_run, tmp_path):
    # What is asserted is the record, not a speed (timings belong to benchmarks/latency.py): the search timed
    # models in onnxruntime beside the original, and the summary says on what, with both times and the cut ratio.
    out = tmp_path / "lat"
    res = _invoke(gazenet_run, "--out", out, "--target-latency", 0.95, "--steps", 1, "--finetune-epochs", 0,
                  "--scope", "global", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    lat = s["latency"]
    assert s["target"]["kind"] == "latency" and s["target"]["ratio"] == 0.95
    assert (lat["runtime"], lat["threads"], lat["batch"]) == ("onnxruntime", 1, 1)
    assert lat["models_timed"] >= 2 and lat["teacher_ms"] > 0 and lat["pruned_ms"] > 0
    assert lat["speedup"] == pytest.approx(lat["teacher_ms"] / lat["pruned_ms"])
    assert s["macs"]["after"] < s["macs"]["before"] and lat["macs_ratio"] == pytest.approx(s["macs"]["ratio"])
    table = json.loads((out / lat["table"]).read_text())  # global scope: the per-group savings it ranked by
    assert table["runtime"] == "onnxruntime" and any(g["removed"] > 0 for g in table["groups"].values())


def test_target_latency_mistakes_are_one_line(gazenet_run, tmp_path):
    _one_line_error(_invoke(gazenet_run, "--out", tmp_path / "a", "--target-latency", 0.5, "--target-macs", 0.5),
                    "give exactly one of")
    _one_line_error(_invoke(gazenet_run, "--out", tmp_path / "b", "--target-latency", 0.01, "--steps", 1,
                            "--finetune-epochs", 0), "cannot be met")
    _one_line_error(_invoke(gazenet_run, "--out", tmp_path / "c", "--target-latency", 0.9, "--latency-batch", 0),
                    "--latency-batch")
    assert not any((tmp_path / n).exists() for n in "abc")
