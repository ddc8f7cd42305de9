"""`workbench teachers | eval | predict` through CliRunner."""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.formats.mc4 import read_mc4_predictions
from workbench.train.engine import TrainRequest, fit

runner = CliRunner()
TINY = {"n_train": 32, "n_val": 16, "batch_size": 16, "train_subjects": 2, "val_subjects": 1, "epochs": 1}


def test_teachers_table_lists_all_with_paper_figures():
    res = runner.invoke(app, ["teachers", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert sorted(rows) == ["evg", "gazelstm", "gazenet", "gazepose", "itracker", "mc4"]
    assert rows["gazenet"]["presets"]["paper"]["params"] == 4_387_331
    assert rows["mc4"]["presets"]["paper"]["params"] == 2 * 22_977_730
    assert rows["gazenet"]["task"] == "face_angles" and rows["evg"]["inputs"] == ["frame"]
    for r in rows.values():
        assert 0 < r["presets"]["cpu"]["macs"] < r["presets"]["paper"]["macs"]
    # LSTM MACs are counted (torch's counter alone reports 0 for them).
    lstm = rows["gazelstm"]["presets"]["paper"]["macs"] - rows["gazelstm"]["presets"]["cpu"]["macs"]
    assert lstm > 0
    res = runner.invoke(app, ["teachers"])
    assert res.exit_code == 0 and "gazenet" in res.stdout


@pytest.fixture(scope="module")
def mc4_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mc4"
    fit(TrainRequest(teacher="mc4", recipe_overrides=TINY, out=out, progress=False))
    return out


def test_predict_mc4_writes_the_three_line_file(mc4_run, tmp_path):
    out = tmp_path / "pred.txt"
    res = runner.invoke(app, ["predict", str(mc4_run), "--data", "synth", "--n", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert len(lines) == 30
    names, lola = read_mc4_predictions(out)
    assert len(names) == 10 and np.asarray(lola).shape == (10, 2)
    assert np.all(np.abs(np.asarray(lola)) <= 90.0)


def test_eval_reports_the_task_metrics(mc4_run):
    res = runner.invoke(app, ["eval", str(mc4_run), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["samples"] == 16 and set(result["metrics"]) == {"gaze_error", "head_error", "eye_error"}


def test_predict_lam_writes_a_csv(tmp_path):
    run = tmp_path / "lam"
    fit(TrainRequest(teacher="gazelstm", recipe_overrides=TINY, out=run, progress=False))
    out = tmp_path / "lam.csv"
    res = runner.invoke(app, ["predict", str(run), "--data", "synth", "--n", "6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 and set(rows[0]) == {"uid", "track", "score", "label"}
    assert all(0.0 <= float(r["score"]) <= 1.0 and r["label"] in ("0", "1") for r in rows)


def test_eval_of_a_missing_run_is_one_line(tmp_path):
    res = runner.invoke(app, ["eval", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a run folder" in res.stderr
