"""The training engine: loss drops for every teacher, run folders, resume after SIGKILL, torchrun, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from teachers import example_inputs, get_teacher, list_teachers
from workbench.cli import app
from workbench.data.synth import render
from workbench.tasks import get_task
from workbench.train.engine import TrainRequest, fit, load_run_model
from workbench.train.models import model_task
from workbench.train.recipes import get_recipe
from workbench.train.run_folder import load_checkpoint

runner = CliRunner()
TINY = {"n_train": 48, "n_val": 24, "batch_size": 16, "train_subjects": 3, "val_subjects": 1}


def _tiny_batch(name: str, n: int = 8):
    model = get_teacher(name, preset="cpu")
    task = get_task(model_task(model.config))
    recipe = get_recipe(name, "cpu")
    data = task.prepare(render(task.view, 64, seed=3, subjects=3, size=recipe.size))
    return model, task, data.batch(torch.arange(n))


@pytest.mark.parametrize("name", list_teachers())
def test_loss_drops_over_a_few_steps(name):
    torch.manual_seed(0)
    model, task, batch = _tiny_batch(name)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = task.inputs(batch)
    losses = []
    for _ in range(12):
        loss, _ = task.loss(model(*inputs), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def test_every_teacher_has_a_task_and_a_recipe_whose_size_fits_it():
    for name in list_teachers():
        model = get_teacher(name, preset="cpu")
        task = get_task(model_task(model.config))
        assert tuple(model.input_names) == task.input_names
        recipe = get_recipe(name, "cpu")
        data = task.prepare(render(task.view, 2, size=recipe.size))
        with torch.no_grad():
            out = task.check_outputs(model.eval()(*task.inputs(data.batch(slice(0, 2)))))
        ex = example_inputs(name, preset="cpu", batch=2)
        for got, (key, want) in zip(task.inputs(data.batch(slice(0, 2))), ex.items()):
            assert got.shape == want.shape, (name, key)
        assert set(task.output_names) <= set(out)


def test_fit_writes_a_consistent_run_folder(tmp_path):
    run = tmp_path / "run"
    summary = fit(TrainRequest(teacher="gazenet", recipe_overrides={**TINY, "epochs": 2}, out=run, progress=False))
    assert (run / "config.json").is_file() and (run / "metrics.json").is_file()
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log] == ["start", "epoch", "epoch", "done"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2 and metrics["constant"]["angular_error"] > 0
    assert metrics["best"] == pytest.approx(min(e["val"]["angular_error"] for e in log if e["event"] == "epoch"))
    ck = load_checkpoint(run / "checkpoints" / "last.pt")  # weights_only=True inside
    assert ck["epoch"] == 2 and ck["config"]["teacher"] == "gazenet"
    model, config, task = load_run_model(run)
    assert task.name == "face_angles" and config["teacher"] == "gazenet"
    assert summary["params"] == sum(p.numel() for p in model.parameters())


def test_early_stopping_respects_patience_and_delta(tmp_path):
    # delta larger than any possible improvement: every epoch after the first counts as "no improvement".
    summary = fit(TrainRequest(teacher="gazenet", recipe_overrides={**TINY, "epochs": 6, "patience": 2, "delta": 1e6},
                               out=tmp_path / "r", progress=False))
    assert summary["stopped_early"] and summary["epochs_run"] == 3


def _cli(*args, env_extra=None, **kw):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "workbench", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _sets(overrides):
    out = []
    for k, v in overrides.items():
        out += ["--set", f"{k}={v}"]
    return out


@pytest.mark.slow
def test_resume_after_sigkill_mid_epoch(tmp_path):
    run = tmp_path / "run"
    args = ["train", "gazenet", "--out", run, "--epochs", 3, *_sets({**TINY, "n_train": 1280, "batch_size": 32})]
    proc = _cli(*args)
    log = run / "log.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:
        if log.exists() and '"event": "epoch"' in log.read_text():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("first epoch never finished")
    time.sleep(0.5)  # into the second epoch
    assert proc.poll() is None, proc.stderr.read()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "metrics.json").exists()
    killed_at = load_checkpoint(run / "checkpoints" / "last.pt")["epoch"]
    assert killed_at in (1, 2)  # a completed epoch survived; the one in flight is redone
    res = _cli(*args, "--resume")
    out, err = res.communicate(timeout=600)
    assert res.returncode == 0, err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3
    events = [json.loads(x)["event"] for x in log.read_text().splitlines()]
    assert events.count("resume") == 1 and events[-1] == "done"


@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path):
    single, dist = tmp_path / "single", tmp_path / "dist"
    common = ["--epochs", 1, *_sets(TINY)]
    res = subprocess.run([sys.executable, "-m", "workbench", "train", "gazenet", "--out", single, "--json", *map(str, common)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "workbench", "train", "gazenet", "--out", str(dist), "--json", *map(str, common)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    a = json.loads((single / "metrics.json").read_text())
    b = json.loads((dist / "metrics.json").read_text())
    assert set(a) == set(b) and set(a["final"]) == set(b["final"])
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert sorted(p.name for p in (dist / "checkpoints").iterdir()) == ["best.pt", "last.pt"]


def test_cli_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["train", "nosuch"])
    assert res.exit_code == 2 and "unknown teacher" in res.stderr and "gazenet" in res.stderr
    res = runner.invoke(app, ["train", "gazenet", "--preset", "huge"])
    assert res.exit_code == 2 and "preset" in res.stderr
    run = tmp_path / "r"
    run.mkdir()
    (run / "something").write_text("x")
    res = runner.invoke(app, ["train", "gazenet", "--out", str(run)])
    assert res.exit_code == 2 and "--force" in res.stderr
    res = runner.invoke(app, ["train", "gazenet", "--set", "bogus_option=1", "--out", str(tmp_path / "q")])
    assert res.exit_code == 2 and "bogus_option" in res.stderr


def test_named_options_do_not_erase_set_options(tmp_path):
    res = runner.invoke(app, ["train", "gazenet", "--out", str(tmp_path / "r"), "--epochs", "1", "--json",
                              *_sets({**TINY, "n_train": 40})])
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["recipe"]["n_train"] == 40 and config["recipe"]["epochs"] == 1


def test_wrong_layout_for_task_is_rejected(tmp_path):
    data = tmp_path / "mc4data"
    assert runner.invoke(app, ["data", "synth", "--view", "mc4", "--format", "mc4", "--n", "8", "--size", "32",
                               "--out", str(data)]).exit_code == 0
    res = runner.invoke(app, ["train", "gazenet", "--data", str(data), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "needs 'face' data" in res.stderr


def test_corrupt_and_foreign_checkpoints(tmp_path):
    run = tmp_path / "run"
    fit(TrainRequest(teacher="gazenet", recipe_overrides={**TINY, "epochs": 1}, out=run, progress=False))
    best = run / "checkpoints" / "best.pt"
    data = best.read_bytes()
    best.write_bytes(data[: len(data) // 2])  # truncated
    res = runner.invoke(app, ["eval", str(run)])
    assert res.exit_code == 2 and "best.pt" in res.stderr and "Traceback" not in res.output
    # A checkpoint of another teacher in this run folder.
    other = tmp_path / "other"
    fit(TrainRequest(teacher="itracker", recipe_overrides={**TINY, "epochs": 1}, out=other, progress=False))
    best.write_bytes((other / "checkpoints" / "best.pt").read_bytes())
    res = runner.invoke(app, ["eval", str(run)])
    assert res.exit_code == 2 and "itracker" in res.stderr


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_folder_consistent(tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(app, ["train", "gazenet", "--out", str(run), "--epochs", "2", "--lr", "1e30",
                              *_sets({**TINY, "clip_grad": 0})])
    assert res.exit_code == 2, res.output
    assert "loss became" in res.stderr and str(run) in res.stderr
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert log[-1]["event"] == "error"
    assert not (run / "metrics.json").exists()


@pytest.mark.slow
def test_evg_heatmap_pipeline_can_fit_a_small_set():
    # Targets, losses and decoding must agree: the cpu evg fits 64 frames to a few mm of PoG error.
    # With the task options the cpu recipe trains with (face crop, spatial-softmax heatmap loss, PoG terms).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one thread: the same float sums, so the same 200 steps, under any pytest worker
    try:
        _fit_evg_on_64_frames()
    finally:
        torch.set_num_threads(threads)


def _fit_evg_on_64_frames():
    from workbench.train.engine import _fast_layout, evaluate

    torch.manual_seed(0)
    task = get_task("plane_pog", **get_recipe("evg", "cpu").task_options)
    model = get_teacher("evg", preset="cpu").to(memory_format=torch.channels_last)
    data = task.prepare(render("frame", 64, seed=0, subjects=5, size=(240, 135)))
    before = evaluate(model, task, data)["pog_error_mm"]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = data.batch(torch.randperm(64, generator=gen)[:32])
        model.train()
        loss, _ = task.loss(model(*_fast_layout(task.inputs(batch))), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = evaluate(model, task, data)["pog_error_mm"]
    print(f"evg on 64 frames: {before:.1f} -> {after:.1f} mm")
    assert after < 10.0 < before, (before, after)


def test_fit_accepts_a_given_config_initial_weights_and_a_loss_hook(tmp_path):
    """The hooks pruning and distillation train through: a resolved config, starting weights, an extra module
    trained alongside, and a replacement loss that sees outputs and inputs."""
    first = tmp_path / "a"
    fit(TrainRequest(teacher="gazenet", recipe_overrides={**TINY, "epochs": 1}, out=first, progress=False))
    model, config, _ = load_run_model(first)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    extra = torch.nn.Linear(2, 2)
    calls = []

    def prepare(m):
        calls.append(type(m).__name__)
        return extra

    def loss_fn(loss, parts, outputs, batch, inputs):
        assert set(outputs) == set(model.output_names) and len(inputs) == len(model.input_names)
        kd = extra(outputs["gaze"]).pow(2).mean()
        return loss + kd, {**parts, "kd": float(kd.detach())}

    before = extra.weight.detach().clone()
    cfg = {**config, "recipe": {**config["recipe"], "epochs": 1, "lr": 0.0}, "teacher": "relabelled"}
    summary = fit(TrainRequest(teacher="relabelled", config=cfg, init_state=start, prepare_model=prepare,
                               loss_fn=loss_fn, out=tmp_path / "b", progress=False))
    assert calls == [type(model).__name__] and summary["teacher"] == "relabelled"
    # lr 0: the model keeps the given weights (BatchNorm running statistics still move, they are buffers).
    again, _, _ = load_run_model(tmp_path / "b", which="last")
    for k, v in again.named_parameters():
        torch.testing.assert_close(v.detach(), start[k])
    # The extra module was in the optimizer (it got gradients through the loss) and lr 0 kept it.
    assert extra.weight.grad is not None and torch.equal(extra.weight.detach(), before)
    with pytest.raises(Exception, match="lacks"):
        fit(TrainRequest(teacher="x", config={"model": {}}, out=tmp_path / "c", progress=False))


def test_evaluation_and_prediction_keep_a_trailing_sample_of_one(tmp_path):
    """33 samples in batches of 32: training drops the lone sample (BatchNorm), evaluation must not."""
    from workbench.train.engine import _batches, evaluate

    order = torch.arange(33)
    assert sum(len(b) for b in _batches(33, 32, order)) == 32
    assert sum(len(b) for b in _batches(33, 32, order, train=False)) == 33
    task = get_task("face_angles")
    data = task.prepare(render("face", 33, seed=0, subjects=2, size=112))
    seen = []

    class Const(torch.nn.Module):
        def forward(self, face):
            seen.append(len(face))
            return {"gaze": torch.zeros(len(face), 2)}

    evaluate(Const(), task, data, batch_size=32)
    assert sum(seen) == 33
