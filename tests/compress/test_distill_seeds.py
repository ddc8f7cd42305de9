"""The statistics of benchmarks/distill_seeds.py: KD vs control over seeds, paired."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "distill_seeds.py"
_spec = importlib.util.spec_from_file_location("distill_seeds", _PATH)
distill_seeds = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(distill_seeds)


def test_sign_test_counts_the_chance_of_winning_this_often_by_luck():
    assert distill_seeds.sign_test_p(5, 5) == pytest.approx(1 / 32)
    assert distill_seeds.sign_test_p(4, 5) == pytest.approx(6 / 32)
    assert distill_seeds.sign_test_p(0, 5) == 1.0


def test_summary_is_paired_and_follows_the_metric_direction():
    rows = [{"student": s, "control": c} for s, c in [(5.0, 6.0), (5.5, 5.0), (5.2, 6.2)]]
    err = distill_seeds.summarize(rows, higher_is_better=False)
    assert err["kd_wins"] == 2 and err["difference_mean"] == pytest.approx((-1.0 + 0.5 - 1.0) / 3)
    assert err["student_mean"] == pytest.approx(15.7 / 3) and err["control_mean"] == pytest.approx(17.2 / 3)
    assert err["paired_t_p"] < 0.5  # lower error with KD on average: the one-sided p is below one half
    ap = distill_seeds.summarize(rows, higher_is_better=True)  # the same numbers as AP: KD is worse
    assert ap["kd_wins"] == 1 and ap["paired_t_p"] == pytest.approx(1 - err["paired_t_p"])
