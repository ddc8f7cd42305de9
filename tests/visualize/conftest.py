"""Run folders of untrained cpu-preset teachers with tiny recipes: enough to draw, fast to build."""

import pytest
import torch

from workbench.train.engine import TrainRequest, resolve_config
from workbench.train.models import build_model
from workbench.train.run_folder import RunFolder, save_checkpoint
from workbench.utils.jsonio import write_json

TINY = {"n_train": 16, "n_val": 4, "train_subjects": 2, "val_subjects": 1}


def make_run(path, teacher: str, seed: int = 0, **recipe):
    """A run folder (config.json + checkpoints/best.pt) holding a seeded, untrained model."""
    config = resolve_config(TrainRequest(teacher=teacher, recipe_overrides={**TINY, **recipe}))
    torch.manual_seed(seed)
    model = build_model(config["model"])
    run = RunFolder.create(path)
    write_json(run.config_path, config)
    save_checkpoint(run.best, model_state=model.state_dict(), model_config=config["model"])
    return path


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """teacher name -> run folder (built on first use, shared by the session)."""
    root = tmp_path_factory.mktemp("runs")
    cache = {}

    def get(teacher: str, seed: int = 0, **recipe):
        key = (teacher, seed, *sorted(recipe.items()))
        if key not in cache:
            cache[key] = make_run(root / f"{teacher}-{seed}-{len(cache)}", teacher, seed, **recipe)
        return cache[key]

    return get
