"""The student registry and families: every student serves its task with the teachers' inputs and outputs."""

from __future__ import annotations

import json

import pytest
import torch

import students
from students import (
    build_from_config,
    example_inputs,
    get_student,
    list_students,
    register_student,
    student_spec,
)
from teachers import example_inputs as teacher_inputs
from teachers import get_teacher, list_teachers, teacher_spec
from workbench.data.synth import render
from workbench.profile.quick import count_macs
from workbench.tasks import get_task, list_tasks
from workbench.train.models import build_model, model_task
from workbench.train.recipes import get_recipe
from _threads import one_thread_module  # noqa: F401 (autouse fixture: one torch thread)


CASES = [(name, preset) for name in list_students() for preset in student_spec(name).presets]
# One cpu-preset teacher per task, whose outputs a student must reproduce in names and shapes.
TEACHER_OF = {teacher_spec(t).task: t for t in sorted(list_teachers(), reverse=True)}


def test_every_task_has_a_student_family():
    assert set(list_tasks()) <= {student_spec(n).task for n in list_students()}


@pytest.mark.parametrize(("name", "preset"), CASES)
def test_student_takes_the_task_inputs_and_returns_the_teachers_outputs(name, preset):
    torch.manual_seed(0)
    spec = student_spec(name)
    task = get_task(spec.task)
    teacher_name = TEACHER_OF[spec.task]
    model = get_student(name, preset=preset).eval()
    assert tuple(model.input_names) == tuple(task.input_names) == tuple(teacher_spec(teacher_name).inputs)
    inputs = teacher_inputs(teacher_name, preset="cpu", batch=2)
    for key, x in inputs.items():
        assert tuple(x.shape[1:]) == spec.example_shapes[preset][key], key
    with torch.no_grad():
        out = task.check_outputs(model(*inputs.values()))
        ref = get_teacher(teacher_name, preset="cpu").eval()(*inputs.values())
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: tuple(ref[k].shape) for k in out}
    assert all(torch.isfinite(v).all() for v in out.values())


@pytest.mark.parametrize("name", list_students())
def test_config_round_trip_rebuilds_the_same_model(name):
    torch.manual_seed(0)
    model = get_student(name, preset="small").eval()
    config = json.loads(json.dumps(model.config))
    assert config["student"] == name and config["task"] == student_spec(name).task
    assert model_task(config) == student_spec(name).task
    again = build_model(config).eval()
    assert again.config == model.config
    again.load_state_dict(model.state_dict())
    x = example_inputs(name, "small", batch=2)
    with torch.no_grad():
        a, b = model(*x.values()), again(*x.values())
    for k in a:
        torch.testing.assert_close(a[k], b[k])


@pytest.mark.parametrize("name", list_students())
def test_student_fits_a_small_batch_of_its_task(name):
    """Wiring check: the task loss on 8 real SynthGaze samples falls under Adam (a dead head would not)."""
    torch.manual_seed(0)
    spec = student_spec(name)
    task = get_task(spec.task)
    size = get_recipe(TEACHER_OF[spec.task], "cpu").size
    batch = task.prepare(render(task.view, 8, seed=3, subjects=3, size=size)).batch(torch.arange(8))
    model = get_student(name, preset="tiny").train()
    # The eyes_pog head regresses screen fractions near 0.5 and overshoots at 1e-2.
    opt = torch.optim.Adam(model.parameters(), lr=3e-3 if spec.task == "eyes_pog" else 1e-2)
    inputs = task.inputs(batch)
    losses = []
    for _ in range(12):
        loss, _ = task.loss(model(*inputs), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert min(losses[-3:]) < 0.8 * losses[0], losses


def test_tinyface_tiny_costs_at_most_a_tenth_of_the_gazenet_teacher():
    teacher = get_teacher("gazenet", preset="cpu").eval()
    student = get_student("tinyface", preset="tiny").eval()
    x = teacher_inputs("gazenet", preset="cpu", batch=1)
    ratio = count_macs(student, tuple(x.values())) / count_macs(teacher, tuple(x.values()))
    assert 0.01 < ratio <= 0.10, ratio


def test_registry_errors_name_the_valid_choices():
    with pytest.raises(ValueError, match="valid students: .*tinyface"):
        get_student("nope")
    with pytest.raises(ValueError, match="valid presets: small, tiny"):
        get_student("tinyface", preset="paper")
    with pytest.raises(ValueError, match="valid keys: .*fc_hidden"):
        get_student("tinyface", width=3)
    with pytest.raises(ValueError, match="registered for 'face_angles'"):
        build_from_config({**get_student("tinyface").config, "task": "look_at_me"})
    with pytest.raises(ValueError, match="already registered"):
        register_student("tinyface", description="", task="face_angles", presets={"tiny": {}},
                         example_shapes=lambda cfg: {}, hint_layer="x")(students.TinyFace)


def test_a_student_whose_inputs_differ_from_its_task_is_refused(monkeypatch):
    from students import registry

    class WrongInputs(torch.nn.Module):
        input_names = ("image",)
        output_names = ("gaze",)

        def __init__(self, *, width: int) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(width, 2)

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_student("wrong_inputs", description="test", task="face_angles", presets={"tiny": {"width": 3}},
                     example_shapes=lambda cfg: {"face": (3,)}, hint_layer="fc")(WrongInputs)
    with pytest.raises(ValueError, match="do not match task 'face_angles'"):
        get_student("wrong_inputs")
    assert "wrong_inputs" in list_students("face_angles") and "wrong_inputs" not in list_students("look_at_me")


def test_students_cli_lists_params_and_macs_per_preset():
    from typer.testing import CliRunner

    from workbench.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["students", "--task", "look_at_me", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == list_students("look_at_me")
    tiny = rows[0]["presets"]["tiny"]
    model = get_student(rows[0]["name"], preset="tiny")
    assert tiny["params"] == sum(p.numel() for p in model.parameters()) and tiny["macs"] > 0
    assert tiny["input_shapes"]["frames"] == [7, 3, 64, 64]
    # The hint width's hyper-parameter and its value per preset, as `distill --preset auto` sets it.
    spec = student_spec(rows[0]["name"])
    assert rows[0]["width_param"] == spec.width_param and rows[0]["width_factor"] == spec.width_factor
    key = spec.width_param.removesuffix("[-1]")
    value = model.config[key]
    assert tiny["width"] == (value[-1] if spec.width_param.endswith("[-1]") else value) and tiny["width"] > 0
    res = runner.invoke(app, ["students", "--task", "nope"])
    assert res.exit_code == 2 and "unknown task 'nope'" in res.stderr


@pytest.mark.parametrize("name", list_students())
@pytest.mark.parametrize("value", [8, 20])
def test_width_param_sets_the_hint_layers_output_width(name, value):
    """The registration's width_param is the knob auto-sizing turns: setting it to v makes the hint layer
    width_factor * v wide (a map's channels, a sequence's or vector's features), and nothing else."""
    from workbench.compress.autosize import hint_width
    from workbench.compress.kd_losses import HintCapture
    from workbench.registry import width_override

    spec = student_spec(name)
    assert spec.width_param is not None and spec.hint_layer is not None
    preset = students.default_preset(name)
    base = get_student(name, preset=preset).config
    override = width_override("student", name, base, spec.width_param, value)
    torch.manual_seed(0)
    model = get_student(name, preset=preset, **override).eval()
    cap = HintCapture(model, spec.hint_layer, "student", detach=True)
    with torch.no_grad():
        model(*example_inputs(name, preset, batch=2).values())
    shape = cap.take().shape
    assert shape[0] == 2
    assert hint_width(shape[1:]) == spec.width_factor * value
    changed = {k for k in base if model.config[k] != base[k]}
    assert changed <= set(override)


def test_a_width_param_no_preset_can_set_is_refused(monkeypatch):
    from students import registry

    class Net(torch.nn.Module):
        input_names = ("face",)
        output_names = ("gaze",)

        def __init__(self, *, width: int, sizes: list[int]) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(width, 2)

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    reg = dict(description="test", task="face_angles", presets={"tiny": {"width": 3, "sizes": []}},
               example_shapes=lambda cfg: {"face": (3,)}, hint_layer="fc")
    with pytest.raises(ValueError, match="width_param 'depth' expects an integer preset key"):
        register_student("w1", width_param="depth", **reg)(Net)
    with pytest.raises(ValueError, match="expects a non-empty list of integers under 'sizes'"):
        register_student("w2", width_param="sizes[-1]", **reg)(Net)
    with pytest.raises(ValueError, match="width_factor must be a positive integer"):
        register_student("w3", width_param="width", width_factor=0, **reg)(Net)
    register_student("w4", width_param="width", **reg)(Net)
    assert student_spec("w4").width_param == "width" and student_spec("w4").width_factor == 1
