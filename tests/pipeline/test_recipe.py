"""Pipeline recipes: defaults, the shipped examples, per-teacher sub-tables, and one-line errors."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from teachers import list_teachers
from workbench.cli import app
from workbench.errors import WorkbenchError
from workbench.pipeline import load_recipe, parse_recipe, stage_configs

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_defaults_are_the_demo_recipe():
    """The built-in defaults and examples/demo.toml describe the same pipeline (one source of truth)."""
    default, demo = load_recipe(), load_recipe(EXAMPLES / "demo.toml")
    assert default.teachers == ("gazenet",)
    assert default.source is None and demo.source.endswith("demo.toml")
    assert {**default.to_dict(), "source": None} == {**demo.to_dict(), "source": None}


def test_all_teachers_example_runs_every_teacher_with_own_budgets():
    rec = load_recipe(EXAMPLES / "all_teachers.toml")
    assert list(rec.teachers) == list_teachers()
    budgets = {t: rec.for_teacher(t)["train"] for t in rec.teachers}
    assert len({str(sorted(b.items())) for b in budgets.values()}) > 1  # per-teacher sub-tables took effect


def test_every_example_field_is_commented():
    for path in EXAMPLES.glob("*.toml"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0].strip()
            if "=" in code:
                assert "#" in line, f"{path.name}:{i}: field without a comment: {line!r}"


def test_per_teacher_override_and_all():
    rec = parse_recipe({"teachers": "all", "train": {"epochs": 3, "evg": {"epochs": 1, "n_train": 100}},
                        "prune": {"target_macs": 0.4, "itracker": {"target_macs": 0.3}}})
    assert list(rec.teachers) == list_teachers()
    assert rec.for_teacher("evg")["train"] == {"epochs": 1, "n_train": 100}
    assert rec.for_teacher("gazenet")["train"] == {"epochs": 3}
    assert rec.for_teacher("itracker")["prune"]["target_macs"] == 0.3
    assert rec.for_teacher("mc4")["prune"]["target_macs"] == 0.4


@pytest.mark.parametrize("data, needle", [
    ({"teacher": ["gazenet"]}, "unknown key(s) ['teacher']"),
    ({"prune": {"target_mac": 0.5}}, "[prune] unknown key(s) ['target_mac']"),
    ({"train": {"epoch": 2}}, "[train] unknown key(s) ['epoch']"),
    ({"train": {"gazenett": {"epochs": 2}}}, "unknown sub-table [train.gazenett]"),
    ({"distill": {"evg": {"alpah": 0.1}}}, "[distill.evg] unknown key(s) ['alpah']"),
    ({"teachers": ["nope"]}, "unknown teacher(s) ['nope']"),
    ({"teachers": []}, "non-empty list"),
    ({"seed": "0"}, "seed expects an integer"),
    ({"analyze": {"n": 2.5}}, "n expects an integer"),
    ({"distill": {"kd": [1]}}, "kd expects a list of strings"),
    ({"prune": {"target_macs": 1.5}}, "target_macs is a fraction"),
    ({"quantize": {"model": "control"}}, "expects teacher, pruned or student"),
    ({"prune": {"scope": "everywhere"}}, "scope expects"),
    ({"prune": {"importance": "l2"}}, "importance expects one of"),
    ({"distill": {"kd": ["attention"]}}, "kd expects a non-empty list of"),
    ({"preset": "gpu"}, "preset expects"),
    ({"train": {"init_from": 3}}, "init_from expects a string"),
    ({"train": {"init_from": "runs/a", "init_map": ["features."]}}, "expected SRC_PREFIX=DST_PREFIX"),
    ({"train": {"init_from": "runs/a", "init_map": 3}}, "init_map expects a list"),
    ({"train": {"init_map": ["a.=b."]}}, "init_map applies to init_from"),
])
def test_bad_recipes_are_one_line_errors(data, needle):
    with pytest.raises(WorkbenchError) as e:
        parse_recipe(data, path="r.toml")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(WorkbenchError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("teachers = [gazenet\n")
    with pytest.raises(WorkbenchError, match="not valid TOML"):
        load_recipe(bad)


def test_cli_unknown_key_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_text('out = "x"\n[bench]\nthreds = 2\n')
    res = CliRunner().invoke(app, ["run", str(bad)])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "[bench] unknown key(s) ['threds']" in lines[0]


def test_cli_teachers_option_overrides_recipe():
    rec = load_recipe(EXAMPLES / "demo.toml", teachers=["itracker", "mc4"], out="elsewhere")
    assert rec.teachers == ("itracker", "mc4") and rec.out == "elsewhere"
    assert load_recipe(None, teachers=["all"]).teachers == tuple(list_teachers())


def test_stage_configs_change_only_where_the_recipe_changes():
    a = stage_configs(parse_recipe({}), "gazenet")
    b = stage_configs(parse_recipe({"prune": {"steps": 7}}), "gazenet")
    assert [k for k in a if a[k] != b[k]] == ["prune"]


def test_train_takes_init_from_and_init_map_per_teacher():
    rec = parse_recipe({"teachers": ["gazenet", "evg"],
                        "train": {"epochs": 1, "evg": {"init_from": "runs/g", "init_map": ["features.=backbone.features."]}}})
    assert rec.for_teacher("evg")["train"] == {"epochs": 1, "init_from": "runs/g",
                                                "init_map": {"features.": "backbone.features."}}
    assert "init_from" not in rec.for_teacher("gazenet")["train"]
    assert stage_configs(rec, "evg")["train"] != stage_configs(rec, "gazenet")["train"]
