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
    from workbench.compress.prune_data import calibration_sample

    metrics = evaluate(model, task, calibration_sample(task, config, 0, val=True))
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


@pytest.mark.parametrize("scope", ["local", "global"])
def test_rank_importance_end_to_end_meets_the_macs_target(gazenet_run, tmp_path, scope):
    out = tmp_path / "rank"
    res = _invoke(gazenet_run, "--out", out, "--target-macs", 0.6, "--steps", 2, "--finetune-epochs", 0,
                  "--importance", "rank", "--scope", scope, "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["importance"] == "rank" and s["scope"] == scope and s["erank"] is None
    assert s["macs"]["after"] <= 0.6 * s["macs"]["before"] and s["history"][0]["macs"] > s["macs"]["after"]
    load_run_model(out)  # rebuilds


def test_erank_scope_end_to_end_records_what_analysis_said_beside_what_pruning_did(gazenet_run, tmp_path):
    out = tmp_path / "erank"
    res = _invoke(gazenet_run, "--out", out, "--target-macs", 0.6, "--steps", 2, "--finetune-epochs", 0,
                  "--scope", "erank", "--importance", "rank", "--json")
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s["scope"] == "erank" and s["macs"]["after"] <= 0.6 * s["macs"]["before"]
    er = s["erank"]
    assert json.loads((out / "metrics.json").read_text())["erank"] == er
    assert {"fc.0", "fc.3", "features.18.0"} <= set(er) and "fc.6" not in er  # the head is never a group
    for root, e in er.items():
        assert set(e) == {"effective_rank", "width", "keep"}
        assert 0 <= e["effective_rank"] <= e["width"] and 1 <= e["keep"] <= e["width"], (root, e)
    assert sum(e["keep"] < e["width"] for e in er.values()) >= 3
    model, _, _ = load_run_model(out)
    assert er["fc.0"]["keep"] == model.fc[0].out_features and er["fc.0"]["width"] == 16
    conv = model.get_submodule("features.17.conv.1.0")
    assert er["features.17.conv.1.0"]["keep"] == conv.out_channels


def test_rank_and_erank_mistakes_are_one_line(gazenet_run, tmp_path):
    _one_line_error(_invoke(gazenet_run, "--out", tmp_path / "a", "--layers", "fc.0=0.5", "--scope", "erank"),
                    "--scope erank")
    _one_line_error(_invoke(gazenet_run, "--out", tmp_path / "b", "--target-macs", 0.5, "--scope", "everywhere"),
                    "expected local, global, erank")
    assert not any((tmp_path / n).exists() for n in "ab")


def test_erank_table_shows_the_hardest_cut_groups(gazenet_run, tmp_path):
    res = _invoke(gazenet_run, "--out", tmp_path / "t", "--target-macs", 0.6, "--steps", 1, "--finetune-epochs", 0,
                  "--scope", "erank")
    assert res.exit_code == 0, res.output
    assert "effective rank per layer group" in res.stdout and "more groups in metrics.json 'erank'" in res.stdout
    er = json.loads((tmp_path / "t" / "metrics.json").read_text())["erank"]
    hardest = min(er, key=lambda r: (er[r]["keep"] / er[r]["width"], r))
    assert hardest in res.stdout


def test_seed_replaces_the_runs_seed_for_calibration_and_fine_tuning(gazenet_run, tmp_path):
    """--seed K is a paired replicate (benchmarks/analysis_links.py): the fine-tuning run records seed K and
    draws other samples than the run's own seed, so the fine-tuned weights differ."""
    outs = {}
    for seed in (None, 7):
        out = tmp_path / f"seed{seed}"
        res = _invoke(gazenet_run, "--out", out, "--target-macs", 0.7, "--steps", 1, "--finetune-epochs", 1,
                      "--json", *(["--seed", seed] if seed is not None else []))
        assert res.exit_code == 0, res.output
        outs[seed] = out
    run_seed = json.loads((gazenet_run / "config.json").read_text())["seed"]
    assert run_seed != 7
    assert json.loads((outs[None] / "config.json").read_text())["seed"] == run_seed
    assert json.loads((outs[7] / "config.json").read_text())["seed"] == 7
    a, _, _ = load_run_model(outs[None])
    b, _, _ = load_run_model(outs[7])
    assert any(not torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
