"""Issue 19: mistakes a user can make end in one line on stderr and exit code 2, with nothing left behind.

Each case was a traceback (exit 1) or left a run folder before it was fixed.
"""

from __future__ import annotations

import json
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
    (["--epochs", "0"], ("--epochs", "at least 1, got 0")),
    (["--epochs", "-1"], ("--epochs", "at least 1, got -1")),
    (["--set", "epochs=0"], ("epochs=0", ">= 1")),
    (["--batch-size", "0"], ("--batch-size", "at least 1")),
    (["--set", "batch_size=0"], ("batch_size=0", ">= 1")),
    (["--lr", "-0.1"], ("lr=-0.1", ">= 0")),
    (["--set", "gamma=0"], ("gamma=0", "> 0")),
    (["--n-val", "0"], ("--n-val",)),
    (["--seed", "-1"], ("--seed", "0 or more")),
    (["--seed", "99999999999999999999"], ("--seed", "too large")),
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


TINY_SETS = ["--set", "train_subjects=3", "--set", "val_subjects=1", "--n-train", "48", "--n-val", "24",
             "--batch-size", "16"]


def _tiny_run(out: Path, epochs: int = 1) -> dict:
    res = runner.invoke(app, ["train", "gazenet", *TINY_SETS, "--epochs", str(epochs), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "config.json").read_text())


def test_resume_refuses_options_it_would_ignore_and_takes_more_epochs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    before = _tiny_run(out)
    for argv, needle in ((["--lr", "0.5"], "lr"), (["--set", "optimizer=adam"], "optimizer"),
                         (["--model", "dropout=0.5"], "--model dropout"), (["--data", str(tmp_path)], "--data"),
                         (["--seed", "3"], "--seed")):
        _fails(["train", "gazenet", "--resume", "--out", str(out), *argv], needle)
        assert json.loads((out / "config.json").read_text()) == before  # nothing was changed by a refusal
    # The same values again are not a change (the pipeline resumes by passing its whole recipe); a finished
    # run resumed reports its final metrics again.
    res = runner.invoke(app, ["train", "gazenet", "--resume", "--out", str(out), "--lr", str(before["recipe"]["lr"]),
                              "--seed", "0", "--json"])
    assert res.exit_code == 0, res.output
    again = json.loads(res.stdout)
    assert again["epochs_run"] == 1 and again["final"]["angular_error"] > 0
    res = runner.invoke(app, ["train", "gazenet", "--resume", "--out", str(out), "--epochs", "2", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["epochs_run"] == 2
    assert json.loads((out / "config.json").read_text())["recipe"]["epochs"] == 2
    _fails(["train", "gazenet", "--resume", "--out", str(out), "--epochs", "1"], "already trained 2 epoch")


def test_the_data_path_is_stored_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`eval RUN` from another working directory finds the data the run was trained on."""
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["data", "synth", "--format", "npz", "--out", "ds", "--n", "64"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["train", "gazenet", "--data", "ds", "--epochs", "1", "--batch-size", "16",
                              "--out", "run", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "run/config.json").read_text())["data"]["source"] == str(tmp_path / "ds")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = runner.invoke(app, ["eval", "../run", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["source"] == str(tmp_path / "ds")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "run"
    _tiny_run(out)
    return out


def test_a_truncated_checkpoint_is_one_whole_clause_and_the_report_warns(tiny_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:2000])
    line = _fails(["eval", str(run)], "best.pt", "truncated or corrupt")
    assert line.endswith(")") and "likelihood" not in line and "weights_only` set to `False" not in line
    res = runner.invoke(app, ["report", str(run), "--out", str(tmp_path / "rep")])
    assert res.exit_code == 0, res.output
    assert "warning: " in res.stderr and "best.pt" in res.stderr
    assert "model not reusable" in (tmp_path / "rep" / "report.md").read_text()
    # A file that holds pickled objects is named as such, without advice to load it unsafely.
    import torch

    torch.save({"x": type}, best)
    line = _fails(["eval", str(run)], "not a file of tensors and plain values")
    assert "arbitrary code" not in line


def test_predict_json_and_visualize_checks_before_its_progress_bar(tiny_run: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["predict", str(tiny_run), "--data", "val", "--out", str(tmp_path / "p.csv"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["samples"] == 24 and summary["out"] == str(tmp_path / "p.csv") and summary["data"]["split"] == "val"
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 25
    for argv, needle in ((["--n", "0"], "--n"), (["--fps", "0"], "--fps")):
        res = runner.invoke(app, ["visualize", str(tiny_run), "--out", str(tmp_path / "v"), *argv])
        assert res.exit_code == 2 and needle in res.stderr and "drawing" not in res.output, res.output
    res = runner.invoke(app, ["visualize", str(tmp_path / "nope"), "--out", str(tmp_path / "v")])
    assert res.exit_code == 2 and "drawing" not in res.output, res.output
    assert not (tmp_path / "v").exists()


def test_randomization_on_fewer_samples_than_the_grid_shows(tiny_run: Path, tmp_path: Path) -> None:
    """--randomization-n 2 was an IndexError in the cascade figure (it drew three rows)."""
    res = runner.invoke(app, ["analyze", "check", str(tiny_run), "--n", "4", "--randomization-n", "2", "--steps", "4",
                              "--cascade-steps", "2", "--random-orders", "1", "--fractions", "3",
                              "--out", str(tmp_path / "chk"), "--json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "chk" / "randomization_maps.png").is_file()
    _fails(["analyze", "check", str(tiny_run), "--randomization-n", "0", "--out", str(tmp_path / "c0")],
           "--randomization-n")
    assert not (tmp_path / "c0").exists()


def test_sample_counts_with_a_data_set_are_refused(tmp_path: Path) -> None:
    res = runner.invoke(app, ["data", "synth", "--format", "npz", "--out", str(tmp_path / "ds"), "--n", "32"])
    assert res.exit_code == 0, res.output
    _fails(["train", "gazenet", "--data", str(tmp_path / "ds"), "--n-train", "10", "--out", str(tmp_path / "r")],
           "--n-train", "used whole")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("where", "code", "needle"), [
    ("workbench.utils.io.os.replace", "ENOSPC", "the disk is full"),
    ("workbench.utils.io.tempfile.mkdtemp", "EROFS", "choose an --out that can be written"),
])
def test_a_full_disk_or_read_only_out_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str,
                                                  code: str, needle: str) -> None:
    import errno
    import os

    def refuse(*args, **kwargs):
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(tmp_path / "ds"))

    monkeypatch.setattr(where, refuse)
    _fails(["data", "synth", "--format", "npz", "--n", "8", "--out", str(tmp_path / "ds")], needle, "ds")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no folder, no temporary left beside it
