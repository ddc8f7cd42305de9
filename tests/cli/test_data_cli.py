"""`workbench data synth|inspect` through typer's CliRunner: outputs, JSON, and one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("fmt,view,size", [("npz", "face", "32"), ("mpiifacegaze", "face", "32"), ("mc4", "mc4", "32"),
                                           ("evg", "frame", "96x64"), ("itracker", "itracker", "24"), ("lam", "track", "24")])
def test_synth_then_inspect_every_layout(tmp_path, fmt, view, size):
    out = tmp_path / "data"
    res = run("data", "synth", "--view", view, "--format", fmt, "--n", 12, "--subjects", 3, "--size", size,
              "--out", out, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["samples"] == 12
    grid = tmp_path / "grid.png"
    res = run("data", "inspect", out, "--out", grid, "--json", "--n", 4)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["format"] == fmt and summary["view"] == view
    # Layouts with splits (held-out subjects) show their train split.
    # lam: each written 7-frame sample is a 7-frame track, and every frame of a track is a sample.
    assert summary["samples"] == (12 * 7 if fmt == "lam" else 12) or (fmt in ("itracker", "evg") and 0 < summary["samples"] < 12)
    assert 1 <= summary["subjects"]["count"] <= 3
    img = np.asarray(Image.open(grid))
    assert img.ndim == 3 and img.std() > 10  # a real picture, not a blank canvas


def test_inspect_table_names_the_grid(tmp_path):
    out = tmp_path / "d"
    assert run("data", "synth", "--n", 8, "--size", 32, "--out", out).exit_code == 0
    res = run("data", "inspect", out / "data.npz" if (out / "data.npz").exists() else out, "--out", tmp_path / "g.png")
    assert res.exit_code == 0, res.output
    assert "gaze_pitchyaw" in res.stdout and "g.png" in res.stdout


def test_grid_draws_gaze_arrows(tmp_path):
    # The grid must differ from the raw images: arrows are drawn in a saturated yellow.
    out = tmp_path / "d"
    assert run("data", "synth", "--n", 4, "--size", 64, "--out", out).exit_code == 0
    res = run("data", "inspect", out, "--out", tmp_path / "g.png", "--n", 4)
    assert res.exit_code == 0
    img = np.asarray(Image.open(tmp_path / "g.png")).astype(int)
    yellow = (img[..., 0] > 230) & (img[..., 1] > 200) & (img[..., 2] < 40)
    assert yellow.sum() > 20


@pytest.mark.parametrize("args,needle", [
    (("data", "synth", "--format", "bogus", "--out", "{tmp}/x"), "unknown format"),
    (("data", "synth", "--view", "mc4", "--format", "mpiifacegaze", "--out", "{tmp}/x"), "holds the 'face' view"),
    (("data", "synth", "--n", "0", "--out", "{tmp}/x"), "--n must be at least 1"),
    (("data", "synth", "--view", "frame", "--size", "64", "--out", "{tmp}/x"), "WxH"),
    (("data", "inspect", "{tmp}/missing"), "no such file"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, args, needle):
    res = run(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.output
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "d"
    assert run("data", "synth", "--n", 4, "--size", 32, "--out", out).exit_code == 0
    res = run("data", "synth", "--n", 4, "--size", 32, "--out", out)
    assert res.exit_code == 2 and "--force" in res.stderr
    assert run("data", "synth", "--n", 4, "--size", 32, "--out", out, "--force").exit_code == 0


def test_corrupt_image_is_a_clear_error(tmp_path):
    out = tmp_path / "mc4"
    assert run("data", "synth", "--view", "mc4", "--format", "mc4", "--n", 4, "--size", 32, "--out", out).exit_code == 0
    victim = sorted((out / "head").iterdir())[0]
    victim.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    res = run("data", "inspect", out, "--out", tmp_path / "g.png")
    assert res.exit_code == 2
    assert victim.name in res.stderr
    assert not (tmp_path / "g.png").exists()
