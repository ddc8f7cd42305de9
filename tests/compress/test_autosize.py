"""Auto-sizing a student: a teacher whose hint is planted to rank r gets a student width r rounds to, and
`distill --preset auto` sizes, trains and records it end to end."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import students
from workbench.analyze.samples import load_samples
from workbench.analyze.subject import load_subject
from workbench.cli import app
from workbench.compress.autosize import auto_size, choose_width, hint_width, measure, student_override
from workbench.compress.distill import distill
from workbench.errors import WorkbenchError
from workbench.train.engine import TrainRequest, fit, load_run_model
from compress._tiny import SMALL, one_thread_module  # noqa: F401 (autouse fixture)
from compress._tiny import TINY_RECIPE as TINY

runner = CliRunner()


def _orthonormal(rows: int, cols: int, g: torch.Generator) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(rows, cols, generator=g))[0]  # (rows, cols), orthonormal columns


class PlantedVector(nn.Module):
    """x (B, 64) -> hint (B, 48) = U V^T x + b with V (64, r), U (48, r) orthonormal: on N(0, I) inputs the
    hint varies equally along exactly r directions (participation ratio r)."""

    def __init__(self, rank: int, d_in: int = 64, width: int = 48) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(rank)
        self.hint = nn.Linear(d_in, width)
        with torch.no_grad():
            self.hint.weight.copy_(_orthonormal(width, rank, g) @ _orthonormal(d_in, rank, g).T)
        self.head = nn.Linear(width, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.hint(x)))


class PlantedMap(nn.Module):
    """x (B, 32, 4, 4) -> hint (B, 64, 4, 4): a 1x1 conv of rank r, so every position's 64 channels span r
    directions."""

    def __init__(self, rank: int, c_in: int = 32, width: int = 64) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(100 + rank)
        self.hint = nn.Conv2d(c_in, width, 1)
        with torch.no_grad():
            w = _orthonormal(width, rank, g) @ _orthonormal(c_in, rank, g).T
            self.hint.weight.copy_(w[:, :, None, None])
        self.head = nn.Linear(width * 16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.hint(x), 1))


def _measure(model: nn.Module, shape: tuple[int, ...], n: int = 1024) -> dict:
    subject = load_subject(model, input_shapes={"x": shape})
    return measure(subject, load_samples(subject, n=n), "hint")


@pytest.mark.parametrize(("rank", "width"), [(12, 16), (28, 32), (5, 8)])
def test_a_planted_rank_gives_the_width_it_rounds_to(rank, width):
    rec = _measure(PlantedVector(rank), (64,))
    assert rank - 1.5 < rec["participation_ratio"] <= rank + 1e-6
    assert rec["effective_rank"] <= rank + 1e-6 and rec["teacher_width"] == 48
    assert choose_width(rec["participation_ratio"], rec["teacher_width"]) == width


@pytest.mark.parametrize(("rank", "width"), [(10, 16), (20, 24)])
def test_a_feature_map_is_sized_by_its_channels_at_each_position(rank, width):
    rec = _measure(PlantedMap(rank), (32, 4, 4), n=256)
    assert rec["teacher_width"] == 64 and rec["vectors"] == 256 * 16  # one vector per sample and position
    assert rank - 1.0 < rec["participation_ratio"] <= rank + 1e-6
    assert choose_width(rec["participation_ratio"], rec["teacher_width"]) == width


def test_choose_width_rounds_up_to_a_multiple_of_8_within_8_and_the_teacher_width():
    assert [choose_width(p, 256) for p in (0.0, 1.0, 8.0, 8.01, 11.2, 16.0, 100.5)] == [8, 8, 8, 16, 16, 16, 104]
    assert choose_width(300.0, 256) == 256 and choose_width(30.0, 20) == 20
    assert hint_width((64, 4, 4)) == 64 and hint_width((7, 96)) == 96 and hint_width((48,)) == 48


def test_unsupported_hints_and_students_are_one_line_errors(monkeypatch):
    class Deep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hint = nn.Conv3d(2, 4, 1)

        def forward(self, x):
            return self.hint(x)

    subject = load_subject(Deep(), input_shapes={"x": (2, 3, 4, 4)})
    with pytest.raises(WorkbenchError, match=r"per-sample shape \(4, 3, 4, 4\); auto-sizing reads a vector"):
        measure(subject, load_samples(subject, n=4), "hint")
    with pytest.raises(WorkbenchError, match="unknown layer 'nope'"):
        measure(subject, load_samples(subject, n=4), "nope")
    with pytest.raises(WorkbenchError, match="is not registered, so it names no width_param"):
        student_override("mypkg.models:make", 16)

    from students import registry

    class NoWidth(nn.Module):
        input_names = ("face",)
        output_names = ("gaze",)

        def __init__(self, *, size: int) -> None:
            super().__init__()
            self.fc = nn.Linear(size, 2)

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    students.register_student("nowidth", description="test", task="face_angles", presets={"tiny": {"size": 3}},
                              example_shapes=lambda cfg: {"face": (3,)}, hint_layer="fc")(NoWidth)
    with pytest.raises(WorkbenchError, match="'nowidth' registers no width_param") as info:
        student_override("nowidth", 16)
    assert "\n" not in str(info.value)


def test_every_student_override_reaches_the_chosen_width():
    for name in students.list_students():
        spec = students.student_spec(name)
        param, override = student_override(name, 24)
        assert param == spec.width_param
        key = param.partition("[")[0]
        value = override[key][-1] if param.endswith("[-1]") else override[key]
        assert value * spec.width_factor == 24


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    """A gazenet run (narrow, 64 px, one epoch on 48 samples)."""
    run = tmp_path_factory.mktemp("autosize") / "teacher"
    fit(TrainRequest(teacher="gazenet", model_overrides=SMALL, recipe_overrides=TINY, out=run, progress=False))
    return run


def test_auto_size_reads_the_teachers_hint_on_training_samples(teacher_run):
    teacher, config, task = load_run_model(teacher_run)
    preset, override, rec = auto_size(teacher, task, config, "tinyface")
    assert preset == "tiny" and rec["layer"] == "features" and rec["teacher_width"] == 16
    assert rec["n"] == 48  # every training sample of the tiny run (fewer than the 256 asked for)
    assert rec["chosen"] == choose_width(rec["participation_ratio"], 16) and rec["width_param"] == "widths[-1]"
    assert override == {"widths": [*students.get_student("tinyface").config["widths"][:-1], rec["chosen"]]}


def test_distill_preset_auto_end_to_end_records_auto_size(teacher_run, tmp_path):
    events = []
    summary = distill(teacher_run, tmp_path / "kd", student="tinyface", preset="auto", epochs=1, progress=False,
                      on_event=lambda kind, rec: events.append((kind, rec)))
    auto = summary["auto_size"]
    assert set(auto) >= {"layer", "participation_ratio", "effective_rank", "teacher_width", "width_param", "chosen"}
    assert events[0] == ("auto_size", auto)
    assert summary["student"]["config"]["widths"][-1] == auto["chosen"]
    assert summary["student"]["preset"] == "tiny"
    written = json.loads((tmp_path / "kd" / "summary.json").read_text())
    assert written["auto_size"] == auto
    # The student run folder rebuilds the auto-sized architecture.
    student, _, _ = load_run_model(tmp_path / "kd" / "student")
    assert student.config["widths"][-1] == auto["chosen"]


def test_cli_preset_auto_prints_one_line_and_refuses_what_it_cannot_size(teacher_run, tmp_path):
    res = runner.invoke(app, ["distill", str(teacher_run), "--student", "mobileface", "--preset", "auto",
                              "--epochs", "1", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("auto-size:")]
    assert len(lines) == 1 and "feature_channels=" in lines[0] and "participation ratio" in lines[0]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["auto_size"]["width_param"] == "feature_channels"
    assert summary["student"]["config"]["feature_channels"] == summary["auto_size"]["chosen"]

    res = runner.invoke(app, ["distill", str(teacher_run), "--student", "mobileface", "--preset", "auto",
                              "--model", "feature_channels=32", "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "drop the override feature_channels=32" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "b").exists()
    res = runner.invoke(app, ["distill", str(teacher_run), "--student", "tinylstm", "--preset", "auto",
                              "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "serves task 'look_at_me'" in res.output and not (tmp_path / "c").exists()
