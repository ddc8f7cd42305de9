"""`workbench train --init-from RUN [--init-map SRC=DST]`: what loads, what is skipped, what is recorded."""

import json

import pytest
import torch
from typer.testing import CliRunner

from teachers import get_teacher
from workbench.cli import app
from workbench.errors import WorkbenchError
from workbench.train.engine import TrainRequest, fit
from workbench.train.init_from import apply_init, match_state, parse_init_map
from workbench.train.run_folder import load_checkpoint

runner = CliRunner()
TINY = {"n_train": 32, "n_val": 16, "batch_size": 16, "train_subjects": 2, "val_subjects": 1, "epochs": 1}
TINY_ARGS = ["--n-train", "32", "--n-val", "16", "--batch-size", "16", "--epochs", "1",
             "--set", "train_subjects=2", "--set", "val_subjects=1"]
GAZENET_TO_EVG = {"features.": "backbone.features."}


@pytest.fixture(scope="module")
def gazenet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gazenet"
    torch.manual_seed(0)
    fit(TrainRequest(teacher="gazenet", recipe_overrides=TINY, out=out, progress=False))
    return out


def _source_state(run):
    return load_checkpoint(run / "checkpoints" / "best.pt")["model"]


def _fit_capturing(tmp_path, teacher, **kw):
    """fit() a tiny run, keeping a copy of the model's weights as training is about to start."""
    seen = {}

    def capture(model):
        seen.update({k: v.detach().clone() for k, v in model.state_dict().items()})
        return None

    out = tmp_path / teacher
    summary = fit(TrainRequest(teacher=teacher, recipe_overrides=TINY, out=out, progress=False,
                               prepare_model=capture, **kw))
    return summary, seen, out


def test_same_architecture_loads_every_tensor_and_records_it(gazenet_run, tmp_path):
    src = _source_state(gazenet_run)
    fresh = get_teacher("gazenet", preset="cpu").state_dict()
    # The check below means something: a fresh model differs from the trained source.
    assert not torch.equal(fresh["features.0.0.weight"], src["features.0.0.weight"])
    summary, start, out = _fit_capturing(tmp_path, "gazenet", init_from=gazenet_run)
    assert set(start) == set(src)
    for k, v in src.items():
        torch.testing.assert_close(start[k], v, rtol=0, atol=0, msg=k)
    rec = summary["init_from"]
    assert rec["loaded"] == rec["total"] == len(src)
    assert rec["skipped"] == {"missing_in_source": 0, "shape_mismatch": 0, "extra_in_source": 0}
    assert rec["run"] == str(gazenet_run.resolve()) and rec["checkpoint"].endswith("best.pt") and rec["map"] is None
    assert json.loads((out / "config.json").read_text())["init_from"] == rec
    assert json.loads((out / "metrics.json").read_text())["init_from"] == rec
    start_event = [e for e in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if e["event"] == "start"]
    assert start_event[0]["init_from"]["loaded"] == len(src)


def test_a_different_head_width_loads_the_rest_and_names_the_mismatches(gazenet_run):
    src = _source_state(gazenet_run)
    torch.manual_seed(1)
    model = get_teacher("gazenet", preset="cpu", fc_hidden=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rec = apply_init(model, src)
    # fc.0 (in -> 64), fc.3 (64 -> 64) and fc.6's weight (64 -> 2) changed shape; fc.6.bias (2) did not.
    bad = {"fc.0.weight", "fc.0.bias", "fc.3.weight", "fc.3.bias", "fc.6.weight"}
    assert rec["skipped"] == {"missing_in_source": 0, "shape_mismatch": len(bad), "extra_in_source": 0}
    assert rec["loaded"] == len(src) - len(bad) == rec["total"] - len(bad)
    assert {m.split(":")[0] for m in rec["shape_mismatches"]} == bad
    assert "fc.3.weight: source (256, 256), model (64, 64)" in rec["shape_mismatches"]
    now = model.state_dict()
    for k in src:
        if k in bad:
            assert torch.equal(now[k], before[k]), k  # keeps its fresh init
        else:
            assert torch.equal(now[k], src[k]), k


def test_gazenet_trunk_initializes_the_evg_mobilenet_encoder(gazenet_run, tmp_path):
    src = _source_state(gazenet_run)
    trunk = [k for k in src if k.startswith("features.") and not k.startswith("features.18.")]
    summary, start, out = _fit_capturing(tmp_path, "evg", model_overrides={"backbone": "mobv2"},
                                         init_from=gazenet_run, init_map=GAZENET_TO_EVG)
    rec = summary["init_from"]
    assert rec["loaded"] == len(trunk) > 0
    for k in trunk:
        torch.testing.assert_close(start["backbone." + k], src[k], rtol=0, atol=0, msg=k)
    # gazenet's features.18 (its replaced last block), spatial weights and FC have no place in EVG;
    # EVG's decoder and heads are not in gazenet.
    assert rec["skipped"]["extra_in_source"] == len(src) - len(trunk)
    assert rec["skipped"]["missing_in_source"] == rec["total"] - len(trunk)
    assert rec["map"] == GAZENET_TO_EVG
    assert json.loads((out / "config.json").read_text())["init_from"]["loaded"] == len(trunk)


def test_a_map_takes_only_the_tensors_under_its_prefixes(gazenet_run):
    src = _source_state(gazenet_run)
    model = get_teacher("gazenet", preset="cpu")
    rec = apply_init(model, src, {"fc.": "fc."})
    assert rec["loaded"] == sum(k.startswith("fc.") for k in src)
    assert rec["skipped"]["extra_in_source"] == len(src) - rec["loaded"]


def test_a_checkpoint_file_is_a_source_too(gazenet_run, tmp_path):
    res = runner.invoke(app, ["train", "gazenet", *TINY_ARGS, "--out", str(tmp_path / "r"), "--json",
                              "--init-from", str(gazenet_run / "checkpoints" / "last.pt")])
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)["init_from"]
    assert rec["loaded"] == rec["total"] and rec["checkpoint"].endswith("last.pt")


def test_parse_init_map():
    assert parse_init_map(["features.=backbone.features.", "=x."]) == {"features.": "backbone.features.", "": "x."}
    assert parse_init_map({"a.": "b."}) == {"a.": "b."}
    for bad in (["features."], ["a=b=c"], ["="], ["a.=b.", "a.=c."]):
        with pytest.raises(WorkbenchError):
            parse_init_map(bad)


def test_two_sources_mapped_onto_one_name_are_refused():
    src = {"a.w": torch.zeros(2), "b.w": torch.zeros(2)}
    with pytest.raises(WorkbenchError, match="both map to"):
        match_state(src, {"x.w": torch.zeros(2)}, {"a.": "x.", "b.": "x."})


@pytest.mark.parametrize("args, message", [
    (["--init-from", "{tmp}/nope"], "not found"),
    (["--init-from", "{tmp}"], "not a run folder"),
    (["--init-from", "{run}", "--model", "backbone=mobv2"], "no tensor matches"),
    (["--init-from", "{run}", "--init-map", "features."], "expected SRC_PREFIX=DST_PREFIX"),
    (["--init-from", "{run}", "--init-map", "a=b=c"], "expected SRC_PREFIX=DST_PREFIX"),
    (["--init-from", "{run}", "--init-map", "="], "give a source prefix"),
    (["--init-from", "{run}", "--init-map", "feat.=backbone.features."], "no tensor of the source starts with"),
    (["--init-from", "{run}", "--init-map", "features.=encoder."], "no tensor of the model starts with"),
    (["--init-map", "features.=backbone.features."], "give --init-from too"),
    (["--init-from", "{run}", "--weights", "{run}/checkpoints/best.pt"], "cannot be combined with --weights"),
    (["--init-from", "{bad_pt}"], "not a readable state dict file: it is not a file of tensors"),
])
def test_user_mistakes_are_one_line_and_write_nothing(gazenet_run, tmp_path, args, message):
    bad_pt = tmp_path / "bad.pt"
    bad_pt.write_bytes(b"not a checkpoint")
    args = [a.format(tmp=tmp_path, run=gazenet_run, bad_pt=bad_pt) for a in args]
    out = tmp_path / "new"
    res = runner.invoke(app, ["train", "evg", *TINY_ARGS, "--out", str(out), "--json", *args])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.output
    assert not out.exists()


def test_resume_refuses_init_from(gazenet_run, tmp_path):
    res = runner.invoke(app, ["train", "gazenet", "--out", str(gazenet_run), "--resume", "--init-from", str(gazenet_run)])
    assert res.exit_code == 2 and "--resume" in res.stderr


def test_a_config_carried_from_another_run_does_not_claim_its_init(gazenet_run, tmp_path):
    """Pruning's fine-tune and distillation pass a run's config on: its init_from is not the new run's."""
    first = tmp_path / "first"
    fit(TrainRequest(teacher="gazenet", recipe_overrides=TINY, out=first, progress=False, init_from=gazenet_run))
    config = json.loads((first / "config.json").read_text())
    assert "init_from" in config
    summary = fit(TrainRequest(teacher="gazenet", config=config, out=tmp_path / "second", progress=False))
    assert "init_from" not in summary
    assert "init_from" not in json.loads((tmp_path / "second" / "config.json").read_text())


def test_the_pipeline_train_section_takes_init_from(gazenet_run, tmp_path):
    from workbench.pipeline import parse_recipe, stage_configs
    from workbench.pipeline.stage_runner import StageContext
    from workbench.pipeline.stages import train

    recipe = parse_recipe({"teachers": ["gazenet"], "train": {**TINY, "init_from": str(gazenet_run),
                                                              "init_map": ["features.=features."]}})
    config = stage_configs(recipe, "gazenet")["train"]
    ctx = StageContext(teacher="gazenet", name="train", dir=tmp_path / "train", config=config, inputs={},
                       progress=False)
    result = train(ctx)
    n_features = sum(k.startswith("features.") for k in _source_state(gazenet_run))
    assert result["init_from"]["loaded"] == n_features and result["init_from"]["map"] == {"features.": "features."}
    assert json.loads((tmp_path / "train" / "config.json").read_text())["init_from"]["loaded"] == n_features
    assert "init_from=" in ctx.calls[0]


def test_a_resumed_run_that_never_saved_restarts_from_the_recorded_source(gazenet_run, tmp_path):
    out = tmp_path / "run"
    fit(TrainRequest(teacher="gazenet", recipe_overrides=TINY, out=out, progress=False, init_from=gazenet_run))
    for ck in (out / "checkpoints").iterdir():  # as if killed before the first epoch ended
        ck.unlink()
    seen = {}
    fit(TrainRequest(teacher="gazenet", out=out, resume=True, progress=False,
                     prepare_model=lambda m: seen.update({k: v.clone() for k, v in m.state_dict().items()}) or None))
    src = _source_state(gazenet_run)
    assert all(torch.equal(seen[k], v) for k, v in src.items())
