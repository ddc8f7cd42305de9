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
from workbench.compress.kd_losses import FeatureHints, image_inputs, response_kd, saliency_kd, saliency_maps
from workbench.compress.teacher_cache import TeacherCache
from workbench.tasks import get_task
from workbench.train.engine import TrainRequest, fit, load_run_model
from workbench.train.models import model_task
from workbench.train.run_folder import load_checkpoint
from compress._tiny import SMALL, one_thread_module  # noqa: F401 (autouse fixture)
from compress._tiny import TINY_RECIPE as TINY

runner = CliRunner()


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


def test_init_state_is_where_the_student_starts(teacher_run, tmp_path):
    """compress trains a student rung after rung: each distillation continues from the last one's weights."""
    from students import get_student
    from workbench.compress.distill import distill

    torch.manual_seed(123)
    start = get_student("tinyface", input_size=64).state_dict()
    frozen = {"lr": 0.0, "weight_decay": 0.0}  # nothing moves the weights: they must be the starting ones
    distill(teacher_run, tmp_path / "a", student="tinyface", epochs=1, recipe_overrides=frozen, init_state=start,
            progress=False)
    distill(teacher_run, tmp_path / "b", student="tinyface", epochs=1, recipe_overrides=frozen, progress=False)
    a = load_checkpoint(tmp_path / "a" / "student" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "student" / "checkpoints" / "last.pt")["model"]
    weights = [k for k in start if k.endswith("weight") and start[k].dim() > 1]
    assert all(torch.equal(a[k], start[k]) for k in weights)
    assert not any(torch.equal(b[k], start[k]) for k in weights)


@pytest.mark.parametrize(("args", "message"), [
    (["--student", "tinylstm"], "serves task 'look_at_me'"),
    (["--student", "nope"], "unknown student 'nope'"),
    (["--student", "tinyface", "--kd", "response,feature", "--hint", "nope:trunk"], "valid teacher layers"),
    (["--student", "tinyface", "--kd", "feature", "--hint", "features:trunk.nope"], "unknown student layer"),
    (["--student", "tinyface", "--hint", "features:trunk"], "add 'feature' to the KD kinds"),
    (["--student", "tinyface", "--kd", "logits"], "unknown KD kind"),
    (["--student", "tinyface", "--alpha", "1.5"], "alpha must be in [0, 1]"),
    (["--student", "tinyface", "--kd", "saliency", "--saliency-weight", "-1"], "saliency weight must be"),
    (["--student", "tinyface", "--kd", "saliency", "--saliency-grid", "-2"], "saliency grid must be >= 0"),
    (["--student", "tinyface", "--kd", "saliency", "--saliency-target", "roll"], "unknown target 'roll'"),
    (["--student", "tinyface", "--saliency-target", "yaw"], "add 'saliency' to the KD kinds"),
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


# ---- saliency KD -----------------------------------------------------------------------------------
def _maps(model, task, inputs, which, *, create_graph, grid=16):
    xs = [x.detach().clone().requires_grad_(i in which) for i, x in enumerate(inputs)]
    return saliency_maps(task.explain_target(model(*xs)), xs, which, create_graph=create_graph, grid=grid)


@pytest.mark.parametrize("name", ["gazenet", "itracker", "mc4", "gazepose", "evg"])
def test_saliency_kd_is_zero_for_the_same_model_and_positive_for_another(name):
    from compress._tiny import tiny, tiny_inputs

    teacher = tiny(name)
    task = get_task(model_task(teacher.config))
    x = tiny_inputs(name, batch=3)
    which = image_inputs(x)
    # Multi-input tasks match every image (itracker's four eyes, mc4's face and eye); GazePose's head-pose
    # and landmark priors are vectors, left out.
    assert which == {"itracker": [0, 1, 2, 3], "mc4": [0, 1]}.get(name, [0])
    t_maps = _maps(teacher, task, x, which, create_graph=False)
    k = task.explain_target(teacher(*x)).reshape(3, -1).shape[1]
    assert all(m.shape[:2] == (3, k) and max(m.shape[-2:]) <= 16 for m in t_maps)
    same = saliency_kd(_maps(copy.deepcopy(teacher), task, x, which, create_graph=True), t_maps)
    assert float(same.detach()) == pytest.approx(0.0, abs=1e-6)
    other = tiny(name)
    with torch.no_grad():  # the same architecture with other weights looks elsewhere
        g = torch.Generator().manual_seed(5)
        for p in other.parameters():
            p.add_(0.1 * p.pow(2).mean().sqrt().clamp(min=0.01) * torch.randn(p.shape, generator=g))
    diff = saliency_kd(_maps(other, task, x, which, create_graph=True), t_maps)
    assert 0.01 < float(diff.detach()) <= 1.0
    diff.backward()  # the student's maps train it (double backward through the model)
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in other.parameters())


def test_teacher_cache_keeps_the_teachers_saliency_maps():
    torch.manual_seed(0)
    teacher = get_teacher("gazenet", preset="cpu", **SMALL).eval()
    task = get_task("face_angles")
    x = tuple(example_inputs("gazenet", batch=4, input_size=64).values())
    cache = TeacherCache(teacher, [], explain=task.explain_target, saliency_inputs=[0], saliency_grid=8)
    out, _, maps = cache.with_saliency(x)
    direct = _maps(teacher, task, x, [0], create_graph=False, grid=8)
    torch.testing.assert_close(maps[0], direct[0])
    assert maps[0].shape == (4, 2, 8, 8) and not x[0].requires_grad
    perm = torch.tensor([3, 1, 0, 2])
    _, _, maps2 = cache.with_saliency(tuple(v[perm] for v in x))
    assert (cache.misses, cache.hits) == (4, 4)
    torch.testing.assert_close(maps2[0], direct[0][perm])
    assert all(p.grad is None for p in teacher.parameters())


def test_training_on_the_saliency_loss_alone_lowers_it():
    import students

    task = get_task("face_angles")
    torch.manual_seed(1)
    teacher = students.get_student("tinyface", input_size=64).eval()
    torch.manual_seed(0)
    student = students.get_student("tinyface", input_size=64).eval()  # eval: no dropout noise in the maps
    x = tuple(example_inputs("gazenet", batch=8, input_size=64, generator=torch.Generator().manual_seed(3)).values())
    t_maps = _maps(teacher, task, x, [0], create_graph=False)
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = saliency_kd(_maps(student, task, x, [0], create_graph=True), t_maps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    final = float(saliency_kd(_maps(student, task, x, [0], create_graph=False), t_maps))
    assert final < 0.7 * losses[0], losses


def test_distill_with_saliency_kd_end_to_end(teacher_run, tmp_path):
    out = tmp_path / "kd"
    res = runner.invoke(app, ["distill", str(teacher_run), "--student", "tinyface", "--kd", "response,saliency",
                              "--saliency-weight", "2", "--epochs", "1", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    kd = summary["kd"]
    assert kd["kd"] == ["response", "saliency"] and kd["saliency_weight"] == 2.0 and kd["saliency_grid"] == 16
    assert kd["saliency_target"] == ["pitch", "yaw"]
    config = json.loads((out / "student" / "config.json").read_text())
    assert config["distill"]["kd"] == ["response", "saliency"]
    assert summary["teacher_cache"]["misses"] == 48 and summary["teacher_cache"]["megabytes"] > 0
    assert (out / "student" / "checkpoints" / "best.pt").is_file()


def test_saliency_kd_refuses_models_without_images_or_second_derivatives():
    from workbench.compress.distill import _saliency_inputs
    from workbench.errors import WorkbenchError

    task = get_task("face_angles")

    class Vectors(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(6, 2)

        def forward(self, face):
            return {"gaze": self.fc(face)}

    with pytest.raises(WorkbenchError, match=r"needs an image input; task 'face_angles' takes none \(face \(6,\)\)"):
        _saliency_inputs(task, Vectors(), "vec", (torch.randn(2, 6),))

    class SquareGrad(torch.autograd.Function):  # a backward without a derivative of its own
        @staticmethod
        def forward(ctx, x, g):
            return 2 * x * g

        @staticmethod
        def backward(ctx, _):
            raise RuntimeError("derivative for square_backward is not implemented")

    class Square(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return SquareGrad.apply(x, g)

    class NoSecondDerivative(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)

        def forward(self, face):
            return {"gaze": Square.apply(self.conv(face)).mean((2, 3))}

    with pytest.raises(WorkbenchError, match="student 'od' cannot train on saliency KD: .* differentiate twice"):
        _saliency_inputs(task, NoSecondDerivative(), "od", (torch.randn(2, 3, 16, 16),))
    frozen = NoSecondDerivative()
    frozen.forward = lambda face: {"gaze": face.detach().mean((1, 2, 3)).unsqueeze(1).expand(-1, 2)}
    with pytest.raises(WorkbenchError, match="saliency maps do not depend on its weights"):
        _saliency_inputs(task, frozen, "frozen", (torch.randn(2, 3, 16, 16),))


def test_saliency_kd_on_a_multi_input_task_and_one_target_column(tmp_path, monkeypatch):
    """itracker's four eye images, through the task contract alone (no teacher named in the KD code)."""
    import importlib

    from compress._tiny import tiny_run

    wd = importlib.import_module("workbench.compress.distill")  # the module (the package exports the function)

    seen = []

    def spy(student, teacher):
        seen.append(([tuple(m.shape) for m in student], [tuple(m.shape) for m in teacher], student[0].requires_grad))
        return saliency_kd(student, teacher)

    monkeypatch.setattr(wd, "saliency_kd", spy)
    run = tiny_run(tmp_path / "teacher", "itracker", n_train=32, n_val=16)
    summary = wd.distill(run, tmp_path / "kd", student="tinytracker", kd=("saliency",), saliency_target="y",
                         saliency_grid=8, epochs=1, progress=False)
    assert summary["kd"]["kd"] == ["saliency"] and summary["kd"]["saliency_target"] == ["y"]
    assert summary["teacher_cache"]["misses"] == 32
    # Two training steps of 16; four eye images each, one column, pooled from 36 px to 8 x 8 cells.
    assert seen == [([(16, 1, 8, 8)] * 4, [(16, 1, 8, 8)] * 4, True)] * 2
    assert (tmp_path / "kd" / "student" / "checkpoints" / "best.pt").is_file()


def test_rnn_layers_leave_cudnn_only_inside_and_compute_the_same():
    """cuDNN's RNN has no second derivative and no eval-mode backward (a CUDA-only failure): the RNN layers of a
    saliency-KD model run with cuDNN off, everything else as before."""
    from compress._tiny import tiny, tiny_inputs
    from workbench.compress.kd_losses import native_rnn_kernels

    model = tiny("gazelstm")
    x = tiny_inputs("gazelstm", batch=2)
    seen = []
    probe = model.lstm.register_forward_hook(lambda *_: seen.append(torch.backends.cudnn.enabled))
    with torch.no_grad():
        before = model(*x)["logit"]
        with native_rnn_kernels(model):
            inside = model(*x)["logit"]
            assert torch.backends.cudnn.enabled  # restored after the layer
        after = model(*x)["logit"]
    probe.remove()
    assert seen == [True, False, True]
    torch.testing.assert_close(inside, before)
    torch.testing.assert_close(after, before)
