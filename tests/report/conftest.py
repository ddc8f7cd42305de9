"""A real, tiny pipeline run (gazenet, every stage, minutes-scale budgets cut to seconds) shared by the
report tests. Built once per test session through `workbench run`; pytest-xdist workers share it
through a lock file, so the suite pays for it once."""

import fcntl
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

TINY_RECIPE = """
teachers = ["gazenet"]
out = "{out}"
seed = 0
threads = 1  # on a shared machine two spinning OpenMP threads per process cost more than they give

[train]
n_train = 96
n_val = 48
epochs = 2
batch_size = 32
train_subjects = 4
val_subjects = 3

[analyze]
method = "saliency"
n = 4
check_n = 2
embeddings_n = 48
fc_n = 16

[prune]
target_macs = 0.6
steps = 1
finetune_epochs = 1

[distill]
epochs = 1

[quantize]
n_calib = 8

[bench]
threads = 1
repeats = 2
batch_sizes = [1, 4]

[compress]
params = 1e9  # everything fits: the search trains the candidates and the report shows its front
candidates = ["prune"]
max_candidates = 2
rung_epochs = 0.5
budget_minutes = 2

[report]
out = "{report}"
"""


def build_tiny_run(root: Path) -> dict:
    """Run the whole pipeline on a tiny budget into ``root``; returns the CLI's JSON summary."""
    from workbench.cli import app

    recipe = root / "tiny.toml"
    recipe.write_text(TINY_RECIPE.format(out=root / "run", report=root / "report"))
    res = CliRunner().invoke(app, ["run", str(recipe), "--json"])
    if res.exit_code != 0:
        raise RuntimeError(f"workbench run failed ({res.exit_code}): {res.stderr[-3000:]}")
    return json.loads(res.stdout)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """(pipeline run folder, its report folder, the `workbench run --json` summary)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the folder every xdist worker of this session shares
    root = shared / "tiny-pipeline"
    root.mkdir(exist_ok=True)
    done = root / "summary.json"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                done.write_text(json.dumps(build_tiny_run(root)))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return root / "run", root / "report", json.loads(done.read_text())
