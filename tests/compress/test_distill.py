"""Knowledge distillation: the KD losses, the hooks and the teacher cache, and `workbench distill` end to end."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from teachers import example_inputs, get_teacher
from workbench.cli import app
from workbench.compress.kd_losses import FeatureHints, response_kd
from workbench.compress.teacher_cache import TeacherCache
from workbench.train.engine import TrainRequest, fit, load_run_model
from workbench.train.run_folder import load_checkpoint

runner = CliRunner()
SMALL = {"width_mult": 0.25, "feature_channels": 16, "fc_hidden": 16, "input_size": 64}
TINY = {"n_train": 48, "n_val": 24, "batch_size": 16, "train_subjects": 3, "val_subjects": 1, "size": 64, "epochs": 1}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A gazenet run (narrow, 64 px, one epoch on 48 samples): a real run folder in about a second."""
    run = tmp_path_factory.mktemp("distill") / "teacher"
    fit(TrainRequest(teacher="gazenet", model_overrides=SMALL, recipe_overrides=TINY, out=run, progress=False))
    return run


def _outputs(task: str, g: torch.Generator) -> dict[str, torch.Tensor]:
    shapes = {"face_angles": {"gaze": (4, 2)}, "eyes_pog": {"pog": (4, 2)}, "look_at_me": {"logit": (4,)},
              "face_eye_lola": {"head": (4, 2), "eye": (4, 2), "gaze": (4, 2)},
              "plane_pog": {"hm": (4, 1, 6, 10), "offset": (4, 2, 6, 10)}}[task]
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


TASKS = ["face_angles", "eyes_pog", "look_at_me", "face_eye_lola", "plane_pog"]


@pytest.mark.parametrize("loss", ["auto", "mse"])
@pytest.mark.parametrize("task", TASKS)
def test_response_kd_is_zero_for_identical_outputs_and_grows_with_the_gap(task, loss):
    g = torch.Generator().manual_seed(0)
    teacher = _outputs(task, g)
    direction = _outputs(task, g)
    same, parts = response_kd(task, {k: v.clone() for k, v in teacher.items()}, teacher, loss=loss)
    assert float(same) == 0.0 and all(v == 0.0 for v in parts.values())
    near = response_kd(task, {k: v + 0.1 * direction[k] for k, v in teacher.items()}, teacher, loss=loss)[0]
    far = response_kd(task, {k: v + 1.0 * direction[k] for k, v in teacher.items()}, teacher, loss=loss)[0]
    assert 0.0 < float(near) < float(far)


def test_logit_and_heatmap_kd_match_the_reference_divergences():
    g = torch.Generator().manual_seed(1)
    s, t, temp = torch.randn(6, generator=g), torch.randn(6, generator=g), 3.0
    ref = torch.distributions.kl_divergence(torch.distributions.Bernoulli(logits=t / temp),
                                            torch.distributions.Bernoulli(logits=s / temp)).mean() * temp ** 2
    got, _ = response_kd("look_at_me", {"logit": s}, {"logit": t}, temperature=temp)
    torch.testing.assert_close(got, ref)
    hs, ht = torch.randn(2, 1, 4, 5, generator=g), torch.randn(2, 1, 4, 5, generator=g)
    off = torch.zeros(2, 2, 4, 5)
    kl = F.kl_div(F.log_softmax(hs.flatten(1) / temp, -1), F.log_softmax(ht.flatten(1) / temp, -1),
                  log_target=True, reduction="batchmean") * temp ** 2
    _, parts = response_kd("plane_pog", {"hm": hs, "offset": off}, {"hm": ht, "offset": off}, temperature=temp)
    assert parts["kd_hm"] == pytest.approx(float(kl), rel=1e-5) and parts["kd_offset"] == 0.0


def test_feature_hints_hook_the_named_layers_and_train_the_student():
    torch.manual_seed(0)
    teacher = get_teacher("gazenet", preset="cpu", **SMALL).eval()
    student = copy.deepcopy(teacher).train()
    x = tuple(example_inputs("gazenet", batch=3, input_size=64).values())
    cache = TeacherCache(teacher, ["features"])
    hints = FeatureHints([("features", "features")], [(torch.Size([16, 2, 2]), torch.Size([16, 2, 2]))])
    with torch.no_grad():  # the identity adapter: a student equal to its teacher has nothing to learn
        hints.adapters[0].weight.copy_(torch.eye(16).view(16, 16, 1, 1))
        hints.adapters[0].bias.zero_()
    hints.attach(student.eval())
    student(*x)
    _, feats = cache(x)
    assert float(hints.loss(feats).detach()) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        hints.adapters[0].weight.mul_(0.5)
    student.train()
    student(*x)
    loss = hints.loss(feats)
    assert float(loss.detach()) > 0.1
    loss.backward()
    grads = [p.grad for p in student.features.parameters() if p.grad is not None]
    assert grads and any(float(gr.abs().sum()) > 0 for gr in grads)
    assert all(p.grad is None for p in teacher.parameters())
    hints.detach_hooks()


def test_teacher_cache_is_exact_and_hits_on_reshuffled_batches():
    torch.manual_seed(0)
    teacher = get_teacher("gazenet", preset="cpu", **SMALL).eval()
    x = tuple(example_inputs("gazenet", batch=6, input_size=64).values())
    cache = TeacherCache(teacher, ["features"])
    out, feats = cache(x)
    with torch.no_grad():
        direct = teacher(*x)["gaze"]
    torch.testing.assert_close(out["gaze"], direct)
    perm = torch.tensor([5, 3, 1, 0, 2, 4])
    out2, feats2 = cache(tuple(v[perm] for v in x))
    assert (cache.misses, cache.hits) == (6, 6)
    torch.testing.assert_close(out2["gaze"], direct[perm])
    torch.testing.assert_close(feats2[0], feats[0][perm])
    part = torch.cat([x[0][:2], torch.randn(1, *x[0].shape[1:])])  # two cached samples and a new one
    out3, _ = cache((part,))
    with torch.no_grad():
        torch.testing.assert_close(out3["gaze"], teacher(part)["gaze"])
    assert (cache.misses, cache.hits) == (7, 8)


def test_distill_trains_student_and_control_into_run_folders(teacher_run, tmp_path):
    out = tmp_path / "kd"
    res = runner.invoke(app, ["distill", str(teacher_run), "--student", "tinyface", "--kd", "response,feature",
                              "--control", "--epochs", "1", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary == {**json.loads((out / "summary.json").read_text()), "out": str(out)}
    for name in ("student", "control"):
        for f in ("config.json", "metrics.json", "log.jsonl", "checkpoints/best.pt", "checkpoints/last.pt"):
            assert (out / name / f).is_file(), (name, f)
    model, config, task = load_run_model(out / "student")
    assert config["model"]["student"] == "tinyface" and config["model"]["input_size"] == 64  # the teacher's size
    assert task.name == "face_angles" and type(model).__name__ == "TinyFace"
    control = json.loads((out / "control" / "config.json").read_text())
    assert config["distill"]["kd"] == ["response", "feature"] and config["distill"]["hints"] == ["features:trunk"]
    assert control["distill"]["kd"] == [] and control["distill"]["control"] is True
    same = ("model", "recipe", "data", "seed", "task")
    assert {k: config[k] for k in same} == {k: control[k] for k in same}
    teacher_cfg = json.loads((teacher_run / "config.json").read_text())
    assert config["data"] == teacher_cfg["data"] and config["seed"] == teacher_cfg["seed"]
    # Same data, seed and initial weights: only the loss differs, so the trained weights must differ.
    w_kd = load_checkpoint(out / "student" / "checkpoints" / "last.pt")["model"]
    w_ctl = load_checkpoint(out / "control" / "checkpoints" / "last.pt")["model"]
    assert any(not torch.equal(w_kd[k], w_ctl[k]) for k in w_kd if w_kd[k].is_floating_point())
    assert summary["kd_vs_control"]["control"] == summary["control"]["best"]
    assert summary["student"]["macs"] < summary["teacher"]["macs"]
    assert summary["teacher_cache"]["misses"] == 48


@pytest.mark.parametrize(("args", "message"), [
    (["--student", "tinylstm"], "serves task 'look_at_me'"),
    (["--student", "nope"], "unknown student 'nope'"),
    (["--student", "tinyface", "--kd", "response,feature", "--hint", "nope:trunk"], "valid teacher layers"),
    (["--student", "tinyface", "--kd", "feature", "--hint", "features:trunk.nope"], "unknown student layer"),
    (["--student", "tinyface", "--hint", "features:trunk"], "add 'feature' to the KD kinds"),
    (["--student", "tinyface", "--kd", "logits"], "unknown KD kind"),
    (["--student", "tinyface", "--alpha", "1.5"], "alpha must be in [0, 1]"),
    (["--student", "tinyface", "--model", "input_size=48"], "does not run on"),
])
def test_bad_input_is_one_line_and_exit_2(teacher_run, tmp_path, args, message):
    out = tmp_path / "kd"
    res = runner.invoke(app, ["distill", str(teacher_run), *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert not out.exists()


def test_a_non_empty_out_folder_is_refused(teacher_run, tmp_path):
    (tmp_path / "kd").mkdir()
    (tmp_path / "kd" / "keep.txt").write_text("x")
    res = runner.invoke(app, ["distill", str(teacher_run), "--student", "tinyface", "--out", str(tmp_path / "kd")])
    assert res.exit_code == 2 and "not empty" in res.stderr
    assert (tmp_path / "kd" / "keep.txt").read_text() == "x"
