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
