"""`workbench compress`: the Pareto front, the successive-halving schedule, and the search end to end on a tiny run."""

from __future__ import annotations

import csv
import json
import math

import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.compress.search import epochs_in_rung, pareto_front, promote, rung_amount, successive_halving
from workbench.train.engine import TrainRequest, fit
from compress._tiny import SMALL, one_thread_module  # noqa: F401 (autouse fixture)
from compress._tiny import TINY_RECIPE as TINY

runner = CliRunner()


# ---- the Pareto front -------------------------------------------------------------------------------------

def test_pareto_front_keeps_exactly_the_undominated_points():
    points = {"a": (1.0, 5.0), "b": (2.0, 3.0), "c": (3.0, 4.0), "d": (4.0, 1.0), "e": (2.0, 3.5),
              "f": (5.0, 1.0), "g": (0.5, None)}
    # c is beaten by b (faster and better), e by b (as fast, better), f by d (as good, faster); g has no error.
    assert pareto_front(points) == {"a", "b", "d"}


def test_pareto_front_keeps_ties_and_single_points():
    assert pareto_front({"a": (1.0, 1.0), "b": (1.0, 1.0)}) == {"a", "b"}
    assert pareto_front({"only": (3.0, 7.0)}) == {"only"}
    assert pareto_front({}) == set()


# ---- successive halving -----------------------------------------------------------------------------------

def test_promote_keeps_the_best_ceil_n_over_eta_ties_by_name():
    errors = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 1.0, "e": 9.0}
    assert promote(errors, 2) == ["b", "d", "c"]
    assert promote(errors, 3) == ["b", "d"]
    assert promote({"x": 1.0}, 2) == ["x"]
    assert [epochs_in_rung(k, 3, 2) for k in range(3)] == [2, 6, 18]
    assert [epochs_in_rung(k, 2, 0.25) for k in range(4)] == [0.25, 0.5, 1, 2]


def test_a_rung_below_one_epoch_is_one_pass_over_that_share_of_the_samples():
    assert rung_amount(0.25, 1000, 32) == (1, 250)
    assert rung_amount(0.01, 1000, 32) == (1, 32)  # at least a batch
    assert rung_amount(1.0, 1000, 32) == (1, 1000) and rung_amount(4.0, 1000, 32) == (4, 1000)


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _fake_trainer(clock: _Clock, quality: dict[str, float], per_epoch: float = 1.0):
    calls = []

    def train(name: str, rung: int, epochs: int) -> float:
        calls.append((name, rung, epochs))
        clock.t += per_epoch * epochs
        return quality[name] / (1 + rung)  # every candidate improves with training; their order stays

    return train, calls


def test_halving_promotes_the_best_half_until_one_is_left():
    clock = _Clock()
    quality = {"a": 4.0, "b": 1.0, "c": 3.0, "d": 2.0, "e": 5.0}
    train, calls = _fake_trainer(clock, quality)
    res = successive_halving(list(quality), train, eta=2, clock=clock)
    assert [r["promoted"] for r in res.rungs] == [["b", "d", "c"], ["b", "d"], ["b"], []]
    assert [sorted(r["trained"]) for r in res.rungs] == [sorted(quality), ["b", "c", "d"], ["b", "d"], ["b"]]
    assert [r["epochs"] for r in res.rungs] == [1, 2, 4, 8]
    assert res.stopped == "one left" and res.reached == {"a": 0, "e": 0, "c": 1, "d": 2, "b": 3}
    assert res.seconds["b"] == 1 + 2 + 4 + 8 and res.used_s == clock.t == 5 + 6 + 8 + 8


def test_halving_stops_before_a_training_that_would_pass_the_budget():
    clock = _Clock()
    quality = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}
    train, calls = _fake_trainer(clock, quality, per_epoch=10.0)
    # rung 0: 4 x 10 s; rung 1: a and b, 20 s each (estimated from their own 10 s per epoch): 40 + 20 = 60 fits,
    # 60 + 20 = 80 does not fit a 70 s budget, so b is skipped in rung 1 and the search stops there.
    res = successive_halving(list(quality), train, eta=2, budget_s=70.0, clock=clock)
    assert calls == [("a", 0, 1), ("b", 0, 1), ("c", 0, 1), ("d", 0, 1), ("a", 1, 2)]
    assert res.stopped == "budget" and res.used_s == 60.0 <= 70.0
    assert res.reached == {"a": 1, "b": 0, "c": 0, "d": 0}


def test_halving_uses_the_estimate_for_an_untrained_candidate_and_counts_time_already_used():
    clock = _Clock()
    train, calls = _fake_trainer(clock, {"big": 1.0, "small": 2.0}, per_epoch=5.0)
    guesses = {"big": 100.0, "small": 5.0}
    res = successive_halving(["big", "small"], train, budget_s=20.0, used_s=10.0, clock=clock,
                             estimate=lambda name, epochs: guesses[name] * epochs)
    # big's 100 s would pass the 20 s left after the 10 s used: skipped; small's 5 s still fits, and the rung is
    # the last one (the budget is spent), whatever the order.
    assert calls == [("small", 0, 1)] and res.stopped == "budget" and res.reached == {"small": 0}
    assert res.used_s == 15.0 and res.rungs == [{"rung": 0, "epochs": 1, "trained": {"small": 2.0}, "promoted": []}]
    clock.t = 0.0
    res = successive_halving(["small", "big"], train, budget_s=20.0, used_s=10.0, clock=clock,
                             estimate=lambda name, epochs: guesses[name] * epochs)
    assert calls[1:] == [("small", 0, 1)] and res.reached == {"small": 0} and res.used_s == 15.0


def test_the_survivor_spends_the_budget_left_in_one_final_rung():
    clock = _Clock()
    quality = {"a": 4.0, "b": 1.0, "c": 3.0, "d": 2.0, "e": 5.0}
    train, calls = _fake_trainer(clock, quality)
    finished = []

    def finish(name, rung, epochs):
        finished.append((name, rung, epochs))
        clock.t += 1.0 * epochs
        return 0.01

    res = successive_halving(list(quality), train, eta=2, budget_s=100.0, clock=clock, finish=finish, margin=0.9)
    # The halving used 5 + 6 + 8 + 8 = 27 s; b (1 s per epoch) gets floor(0.9 x 73) = 65 more epochs.
    assert finished == [("b", 4, 65)] and res.stopped == "budget spent on the survivor"
    assert res.rungs[-1] == {"rung": 4, "epochs": 65, "trained": {"b": 0.01}, "promoted": [], "final": True}
    assert res.reached["b"] == 4 and res.errors["b"] == 0.01 and res.seconds["b"] == 15 + 65
    assert res.used_s == 92.0 <= 100.0
    # No budget to bound it, a budget already spent, or a search stopped by the budget: no final rung.
    for budget in (math.inf, 27.5):
        clock.t, finished[:] = 0.0, []
        res = successive_halving(list(quality), train, eta=2, budget_s=budget, clock=clock, finish=finish)
        assert finished == [] and res.stopped == "one left"
    clock.t = 0.0
    res = successive_halving(list(quality), train, eta=2, budget_s=20.0, clock=clock, finish=finish)
    assert finished == [] and res.stopped == "budget"


# ---- the command ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("compress") / "teacher"
    fit(TrainRequest(teacher="gazenet", model_overrides=SMALL, recipe_overrides=TINY, out=run, progress=False))
    return run


def _teacher_macs(run) -> int:
    from workbench.compress.distill import sample_inputs
    from workbench.profile.quick import count_macs
    from workbench.train.engine import load_run_model

    model, config, task = load_run_model(run)
    return count_macs(model, tuple(t[:1] for t in sample_inputs(task, config)))


def _one_line_error(res, needle: str) -> None:
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], res.stderr
    assert "Traceback" not in res.output


def test_compress_finds_the_best_candidate_under_a_macs_budget_and_writes_the_front(teacher_run, tmp_path):
    budget = int(0.8 * _teacher_macs(teacher_run))  # the teacher itself is over it
    out = tmp_path / "search"
    res = runner.invoke(app, ["compress", str(teacher_run), "--out", str(out), "--macs", str(budget),
                              "--budget-minutes", "5", "--max-candidates", "3", "--repeats", "5", "--rung-epochs", "0.5",
                              "--no-final", "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    assert s == json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "front.json").read_text())["candidates"]
    by = {r["name"]: r for r in rows}
    with open(out / "front.csv") as fh:
        assert [r["name"] for r in csv.DictReader(fh)] == [r["name"] for r in rows]
    assert (out / "front.png").stat().st_size > 1000
    assert by["teacher"]["macs"] > budget and not by["teacher"]["under_budget"]
    # The exact-budget pruned teacher, a student and the next ratio (alternating), each with its int8 version.
    assert {r["kind"] for r in rows} == {"teacher", "prune", "student", "int8"} and len(rows) == 8
    for r in rows:
        assert r["under_budget"] == (r["macs"] <= budget) and r["latency_ms"] > 0
        if r["kind"] != "int8" and r["kind"] != "teacher" and not r["under_budget"]:
            assert r["rung"] is None and "not trained" in r["note"]  # measured over the budget: never trained
    assert any(r["rung"] == 1 for r in rows)  # two trained in rung 0, the better one went on
    # Rung 0 was one pass over half the 48 training samples, rung 1 one epoch of all of them.
    assert [r["epochs"] for r in s["halving"]["rungs"]] == [0.5, 1]
    went_on = out / next(r["run"] for r in rows if r["rung"] == 1 and r["kind"] == "prune")
    first = json.loads((went_on.parent / "rung0" / "config.json").read_text())["recipe"]
    assert (first["epochs"], first["n_train"]) == (1, 24)
    second = json.loads((went_on / "config.json").read_text())["recipe"]
    assert (second["epochs"], second["n_train"]) == (1, 48)
    # The winner: the lowest error among the candidates under the budget, and on the front.
    best = s["best"]
    fitting = [r for r in rows if r["under_budget"] and r["error"] is not None]
    assert best["name"] == min(fitting, key=lambda r: (r["error"], r["latency_ms"]))["name"]
    assert best["macs"] <= budget and best["on_front"] and best["value_vs_budget"] <= 1
    # on_front is the Pareto front of (latency, error) over all the candidates with an error.
    assert {r["name"] for r in rows if r["on_front"]} == pareto_front(
        {r["name"]: (r["latency_ms"], r["error"]) for r in rows})
    assert (out / "best" / "config.json").is_file() or (out / "best" / "model.int8.onnx").is_file()
    comp = s["compute"]
    assert comp["budget_s"] == 300 and 0 < comp["used_s"] <= comp["budget_s"]
    assert (s["latency"]["runtime"], s["latency"]["threads"], s["latency"]["batch"]) == ("onnxruntime", 1, 1)
    assert best["error_vs_teacher"] == pytest.approx(best["error"] / s["teacher"]["error"])


def test_a_budget_nothing_fits_is_one_line_naming_the_smallest_latency(teacher_run, tmp_path):
    out = tmp_path / "none"
    res = runner.invoke(app, ["compress", str(teacher_run), "--out", str(out), "--latency-ms", "0.00001",
                              "--budget-minutes", "1", "--candidates", "prune", "--max-candidates", "1",
                              "--repeats", "3"])
    _one_line_error(res, "no candidate fits --latency-ms")
    assert "smallest measured is" in res.stderr and " ms (" in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".none*"))


@pytest.mark.parametrize("args,needle", [
    (["--macs", "1000", "--budget-minutes", "0"], "--budget-minutes must be a number > 0"),
    (["--macs", "1000", "--budget-x", "-1"], "--budget-x must be a number > 0"),
    (["--macs", "1000", "--latency-ms", "2"], "exactly one of"),
    (["--latency-ms", "0"], "--latency-ms must be a number > 0"),
    (["--speedup", "-2"], "--speedup must be a number > 0"),
    (["--speedup", "2", "--latency-ms", "2"], "exactly one of --latency-ms, --speedup"),
    (["--macs", "1000", "--eta", "1"], "--eta"),
    (["--macs", "1000", "--candidates", "prune,fp16"], "--candidates"),
    (["--macs", "1000", "--ratios", "0.5,1.5"], "--ratios"),
    (["--macs", "1000", "--rung-epochs", "0"], "--rung-epochs must be a number > 0"),
])
def test_bad_input_is_one_line_and_exit_2(teacher_run, tmp_path, args, needle):
    out = tmp_path / "bad"
    _one_line_error(runner.invoke(app, ["compress", str(teacher_run), "--out", str(out), *args]), needle)
    assert not out.exists()


def test_budget_x_needs_a_recorded_training_time(tmp_path):
    from compress._tiny import tiny_run

    run = tiny_run(tmp_path / "untrained", "gazenet", n_train=16, n_val=16)  # no metrics.json
    _one_line_error(runner.invoke(app, ["compress", str(run), "--out", str(tmp_path / "o"), "--macs", "1e6"]),
                    "--budget-minutes")


def test_the_teacher_wins_when_it_fits_and_unbuildable_candidates_stay_on_record(teacher_run, tmp_path):
    out = tmp_path / "roomy"
    res = runner.invoke(app, ["compress", str(teacher_run), "--out", str(out), "--macs", str(2 * _teacher_macs(teacher_run)),
                              "--budget-minutes", "1", "--candidates", "prune", "--ratios", "0.001", "--repeats", "3",
                              "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    rows = {r["name"]: r for r in json.loads((out / "front.json").read_text())["candidates"]}
    assert set(rows) == {"teacher", "prune-0.001"}
    assert rows["prune-0.001"]["note"].startswith("not built") and rows["prune-0.001"]["latency_ms"] is None
    assert s["best"]["name"] == "teacher" and s["halving"]["rungs"] == [] and s["compute"]["stopped"] == "no candidate"
    assert json.loads((out / "best" / "config.json").read_text()) == json.loads((teacher_run / "config.json").read_text())


def test_a_speedup_budget_is_the_teachers_time_measured_in_the_same_loop(teacher_run, tmp_path):
    out = tmp_path / "speedup"
    res = runner.invoke(app, ["compress", str(teacher_run), "--out", str(out), "--speedup", "0.5",
                              "--budget-minutes", "1", "--candidates", "prune", "--ratios", "0.001", "--repeats", "3",
                              "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    rows = {r["name"]: r for r in json.loads((out / "front.json").read_text())["candidates"]}
    budget = s["budget"]
    # Half as fast as the teacher is allowed: the budget is twice the teacher's time from the same timing loop.
    assert (budget["kind"], budget["speedup"]) == ("latency_ms", 0.5)
    assert budget["teacher_ms"] == rows["teacher"]["latency_ms"] > 0
    assert budget["value"] == pytest.approx(2 * rows["teacher"]["latency_ms"])
    assert rows["teacher"]["under_budget"] and s["best"]["name"] == "teacher"
    assert s["best"]["value_vs_budget"] == pytest.approx(0.5)


def test_the_last_candidate_left_trains_on_with_the_budget_left_and_a_decaying_rate(teacher_run, tmp_path):
    out = tmp_path / "final"
    res = runner.invoke(app, ["compress", str(teacher_run), "--out", str(out), "--speedup", "0.01",
                              "--budget-minutes", "1", "--candidates", "prune", "--ratios", "0.5",
                              "--repeats", "3", "--rung-epochs", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)
    rungs = s["halving"]["rungs"]
    # One candidate: rung 0 alone (half an epoch), then the time left in one final rung of whole epochs.
    assert [r["epochs"] for r in rungs][0] == 0.5 and rungs[-1].get("final") and rungs[-1]["epochs"] >= 1
    assert s["compute"]["stopped"] == "budget spent on the survivor" and s["compute"]["used_s"] <= s["compute"]["budget_s"]
    final = out / "candidates" / "prune-0.5" / f"rung{rungs[-1]['rung']}"
    recipe = json.loads((final / "config.json").read_text())["recipe"]
    n = rungs[-1]["epochs"]
    assert recipe["epochs"] == n and recipe["milestones"] == sorted({m for m in (round(0.6 * n), round(0.85 * n))
                                                                      if 1 <= m < n})
    # It went on from rung 0's weights, and its best is what the front records for the candidate.
    row = next(r for r in json.loads((out / "front.json").read_text())["candidates"] if r["name"] == "prune-0.5")
    assert row["rung"] == rungs[-1]["rung"] and row["error"] == pytest.approx(rungs[-1]["trained"]["prune-0.5"])
    assert row["run"] == final.relative_to(out).as_posix()
