"""Issue 19: mistakes a user can make end in one line on stderr and exit code 2, with nothing left behind.

Each case was a traceback (exit 1) or left a run folder before it was fixed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app

runner = CliRunner()


def _fails(argv: list[str], *needles: str) -> str:
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    line = res.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), res.stderr
    for needle in needles:
        assert needle in line, line
    return line


@pytest.mark.parametrize(("override", "needles"), [
    ("foo=1", ("unknown override", "width_mult")),
    ("width_mult=abc", ("width_mult", "expected a number")),
    ("dropout=true", ("dropout", "expected a number")),
    ("feature_channels=1.5", ("feature_channels", "expected an integer")),
])
def test_model_overrides_of_the_wrong_key_or_type(tmp_path: Path, override: str, needles: tuple[str, ...]) -> None:
    out = tmp_path / "run"
    _fails(["train", "gazenet", "--model", override, "--epochs", "1", "--out", str(out)], *needles)
    assert not out.exists()


def test_an_integer_is_a_number() -> None:
    from teachers import get_teacher

    assert get_teacher("gazenet", width_mult=1).config["width_mult"] == 1


@pytest.mark.parametrize(("argv", "needles"), [
    (["--epochs", "0"], ("epochs=0", ">= 1")),
    (["--epochs", "-1"], ("epochs=-1", ">= 1")),
    (["--batch-size", "0"], ("batch_size=0",)),
    (["--lr", "-0.1"], ("lr=-0.1", ">= 0")),
    (["--set", "gamma=0"], ("gamma=0", "> 0")),
    (["--n-val", "0"], ("n_val=0",)),
    (["--set", "optimizer=foo"], ("optimizer", "sgd")),
    (["--set", "size=abc"], ("size",)),
    (["--set", "milestones=[0]"], ("milestones",)),
    (["--set", "lr=nan"], ("lr",)),
])
def test_training_options_out_of_range(tmp_path: Path, argv: list[str], needles: tuple[str, ...]) -> None:
    out = tmp_path / "run"
    _fails(["train", "gazenet", *argv, "--out", str(out)], *needles)
    assert not out.exists()


def test_every_registered_recipe_is_valid() -> None:
    """The checks must not reject what the project itself ships."""
    from students.registry import list_students
    from teachers.registry import list_teachers
    from workbench.train.recipes import Recipe, registered_recipes

    names = list_teachers() + list_students()
    assert names
    for name in names:
        for preset, recipe in registered_recipes(name).items():
            assert Recipe.from_dict(recipe.to_dict()) == recipe, (name, preset)
