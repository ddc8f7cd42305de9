"""workbench.registry.ModelRegistry: the one registry class behind teachers and students (issue 21, item 5).

Each test builds its own instance over a private dict, so nothing it registers reaches the real registries.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import students
import teachers
from workbench.registry import ModelRegistry, RegisteredSpec
from workbench.tasks import get_task


class _Face(nn.Module):
    input_names = ("face",)
    output_names = ("gaze",)

    def __init__(self, *, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, 2, 1)
        self.fc = nn.Linear(width, 2)

    def forward(self, face: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"gaze": self.fc(torch.relu(self.conv(face)).mean((2, 3)))}


PRESETS = {"big": {"width": 8}, "small": {"width": 4}}


def _registry(kind: str, follows_task: bool) -> tuple[ModelRegistry, dict]:
    store: dict = {}
    return ModelRegistry(kind, entries=lambda: store, default_preset=lambda p: "small" if "small" in p else "big",
                         follows_task=follows_task), store


def test_teachers_and_students_are_two_instances_of_one_class():
    assert isinstance(teachers.registry.TEACHERS, ModelRegistry) and isinstance(students.registry.STUDENTS, ModelRegistry)
    assert teachers.TeacherSpec is students.StudentSpec is RegisteredSpec
    t, s = teachers.teacher_spec("gazenet"), students.student_spec("tinyface")
    assert t.source == t.description and t.outputs == () and t.recipes  # a teacher's description is its write-up
    task = get_task(s.task)
    assert s.inputs == tuple(task.input_names) and s.outputs == tuple(task.output_names) and s.hint_layer


def test_a_kind_that_lists_its_own_inputs_builds_round_trips_and_checks():
    reg, store = _registry("teacher", follows_task=False)
    reg.register("face_net", description="a test write-up", task="face_angles", inputs=("face", "pose"),
                 presets=PRESETS, example_shapes=lambda cfg: {"face": (3, 16, 16)}, hint_layer="conv")(_Face)
    assert reg.names() == ["face_net"] and reg.names("look_at_me") == [] and "face_net" in store
    model = reg.get("face_net")  # the default preset; a prefix of the registered inputs is fine
    where = model.config.pop("registered_in")  # registered outside teachers/ and students/: where, to reopen
    assert model.config == {"teacher": "face_net", "preset": "small", "width": 4} and where["module"] == __name__
    rebuilt = reg.build_from_config(json.loads(json.dumps({**model.config, "width": 6})))
    assert rebuilt.conv.out_channels == 6 and rebuilt.config["preset"] == "small"
    assert list(reg.example_inputs("face_net", batch=3)) == ["face"]  # only the inputs the config shapes
    spec = reg.spec("face_net")
    assert spec.inputs == ("face", "pose") and spec.example_shapes == {"big": {"face": (3, 16, 16)},
                                                                       "small": {"face": (3, 16, 16)}}
    with pytest.raises(ValueError, match=r"^unknown teacher 'nope'; valid teachers: face_net$"):
        reg.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("face_net", description="", task="face_angles", inputs=("face",), presets=PRESETS,
                     example_shapes=lambda cfg: {})(_Face)
    with pytest.raises(ValueError, match=r"preset keys \['teacher'\] are reserved"):
        reg.register("other", description="", task="face_angles", inputs=("face",), presets={"a": {"teacher": 1}},
                     example_shapes=lambda cfg: {})(_Face)
    with pytest.raises(TypeError, match="inputs are required"):
        reg.register("other", description="", task="face_angles", presets=PRESETS, example_shapes=lambda cfg: {})


def test_a_kind_that_follows_its_task_takes_the_tasks_inputs_and_records_the_task():
    reg, _ = _registry("student", follows_task=True)
    reg.register("face_kid", description="a test student", task="face_angles", presets=PRESETS,
                 example_shapes=lambda cfg: {"face": (3, 16, 16)}, hint_layer="conv")(_Face)
    model = reg.get("face_kid", preset="big")
    model.config.pop("registered_in")
    assert model.config == {"student": "face_kid", "preset": "big", "task": "face_angles", "width": 8}
    assert reg.build_from_config(model.config).config["width"] == 8
    with pytest.raises(ValueError, match="config says student 'face_kid' serves task 'look_at_me'"):
        reg.build_from_config({**model.config, "task": "look_at_me"})
    with pytest.raises(TypeError, match="inputs are the task's"):
        reg.register("other", description="", task="face_angles", inputs=("face",), presets=PRESETS,
                     example_shapes=lambda cfg: {})


def test_an_empty_preset_keeps_each_kinds_old_meaning():
    """Students always took an empty preset for the default one; for a teacher it is an unknown preset."""
    assert students.get_student("tinyface", preset="").config["preset"] == "tiny"
    with pytest.raises(ValueError, match="unknown preset '' for teacher 'gazenet'"):
        teachers.get_teacher("gazenet", preset="")
