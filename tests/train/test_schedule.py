"""Learning-rate schedules of a recipe: MultiStepLR per epoch, one-cycle per batch."""

import json

import pytest
import torch
from typer.testing import CliRunner

from workbench.cli import app
from workbench.errors import WorkbenchError
from workbench.train.engine import TrainRequest, fit, make_scheduler, steps_per_batch
from workbench.train.recipes import Recipe
from workbench.train.run_folder import load_checkpoint

TINY = {"n_train": 48, "n_val": 24, "batch_size": 16, "train_subjects": 3, "val_subjects": 1}
runner = CliRunner()


def _lrs(recipe: Recipe, steps_per_epoch: int) -> list[float]:
    """The lr each batch of a run with this recipe trains at, then the lr after the last one."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=recipe.lr, momentum=0.9)
    sched = make_scheduler(opt, recipe, steps_per_epoch)
    out = []
    for _ in range(recipe.epochs):
        for _ in range(steps_per_epoch):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if steps_per_batch(recipe):
                sched.step()
        if not steps_per_batch(recipe):
            sched.step()
    return out + [opt.param_groups[0]["lr"]]


def test_one_cycle_warms_up_over_its_fraction_then_anneals_to_almost_zero():
    *lrs, after = _lrs(Recipe(epochs=4, lr=0.1, schedule="onecycle", warmup=0.25), steps_per_epoch=10)
    assert len(lrs) == 40
    peak = max(range(40), key=lrs.__getitem__)
    assert peak == pytest.approx(0.25 * 40, abs=1)  # the top at the end of the warm-up
    assert lrs[peak] == pytest.approx(0.1, rel=2e-3)  # the top falls between two batches
    assert lrs[0] == pytest.approx(0.1 / 25)  # starts at lr / div_factor
    assert lrs[-1] < 0.01 * 0.1 and after < 1e-5  # anneals to lr / (25 * 1e4) at the end of the plan
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1:peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


def test_step_schedule_changes_lr_only_at_its_milestones():
    lrs = _lrs(Recipe(epochs=4, lr=0.1, milestones=(2, 3), gamma=0.5), steps_per_epoch=3)
    assert lrs == pytest.approx([0.1] * 6 + [0.05] * 3 + [0.025] * 3 + [0.025])


@pytest.mark.parametrize("change, word", [({"schedule": "cosine"}, "schedule"), ({"warmup": 1.0}, "warmup"),
                                          ({"warmup": 0}, "warmup"), ({"warmup": True}, "warmup")])
def test_bad_schedule_options_are_one_line(change, word):
    with pytest.raises(WorkbenchError, match=word):
        Recipe(**change)


def test_a_one_cycle_run_steps_every_batch_and_cannot_be_stretched_by_resume(tmp_path):
    run = tmp_path / "r"
    fit(TrainRequest(teacher="gazenet", recipe_overrides={**TINY, "epochs": 2, "lr": 0.05, "schedule": "onecycle"},
                     out=run, progress=False))
    ck = load_checkpoint(run / "checkpoints" / "last.pt")
    assert ck["scheduler"]["total_steps"] == 2 * 3 + 1 and ck["scheduler"]["last_epoch"] == 6  # 48 / 16 batches a epoch
    epochs = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    lrs = [e["lr"] for e in epochs if e["event"] == "epoch"]
    assert lrs[0] > 0.05 / 25 and lrs[-1] < 1e-6  # after epoch 1 mid-cycle; after the last step near zero
    res = runner.invoke(app, ["train", "gazenet", "--out", str(run), "--resume", "--epochs", "4"])
    assert res.exit_code == 2 and "one-cycle" in res.stderr and "--init-from" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 2  # untouched
