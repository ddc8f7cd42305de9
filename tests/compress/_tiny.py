"""Tiny teachers and run folders for the pruning tests (seconds on two CPU cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from teachers import example_inputs, get_teacher
from workbench.train.models import model_task
from workbench.train.recipes import get_recipe
from workbench.train.run_folder import RunFolder, save_checkpoint
from workbench.utils.jsonio import write_json
from _threads import one_thread_module  # noqa: F401 (re-exported: the modules importing it from here)

TINY = {
    "gazenet": {"width_mult": 0.25, "feature_channels": 16, "fc_hidden": 16, "input_size": 64},
    "evg": {"widths": [8, 8, 16, 16], "stem_width": 8, "deconv_channels": [16, 8, 8], "head_channels": 8,
            "frame_hw": [64, 96]},
    "gazelstm": {"widths": [8, 8, 16, 16], "stem_width": 8, "feature_dim": 16, "hidden_size": 8, "input_size": 32},
    "gazepose": {"widths": [8, 8, 16, 16], "stem_width": 8, "feature_dim": 16, "hidden_size": 8, "input_size": 32,
                 "prior_dim": 4},
    "itracker": {"branch_channels": [8, 8, 8, 8], "proj_channels": 8, "fc1": 16, "fc2": 8},
    "mc4": {"widths": [32, 32, 64, 64], "groups": 4, "stem_width": 8, "input_size": 64},
}
# A small gazenet (face 64 px) and a training recipe sized for tests: what the distillation, auto-size and
# compress-search tests train their tiny teachers with.
SMALL = TINY["gazenet"]
TINY_RECIPE = {"n_train": 48, "n_val": 24, "batch_size": 16, "train_subjects": 3, "val_subjects": 1, "size": 64,
               "epochs": 1}

# SynthGaze image size of the tiny runs' recipes (the model's input size where it has one).
_SIZE = {"gazenet": 64, "gazelstm": 32, "gazepose": 32, "itracker": 36, "mc4": 64}


def tiny(name: str, **extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return get_teacher(name, preset="cpu", **{**TINY[name], **extra}).eval()


def tiny_inputs(name: str, batch: int = 2, **extra) -> tuple[torch.Tensor, ...]:
    overrides = {k: v for k, v in {**TINY[name], **extra}.items() if k in ("input_size", "frame_hw")}
    return tuple(example_inputs(name, batch=batch, generator=torch.Generator().manual_seed(1), **overrides).values())


def tiny_run(path: Path, name: str = "gazenet", *, n_train: int = 48, n_val: int = 24) -> Path:
    """A run folder holding an (untrained) tiny teacher, with a recipe sized for tests."""
    model = tiny(name)
    recipe = get_recipe(name, "cpu").update(n_train=n_train, n_val=n_val, batch_size=16, epochs=1,
                                            size=_SIZE.get(name), train_subjects=4, val_subjects=2)
    run = RunFolder.create(path)
    config = {"teacher": name, "preset": "cpu", "task": model_task(model.config), "model": model.config,
              "recipe": recipe.to_dict(), "data": {"source": "synth", "format": None}, "seed": 0}
    write_json(run.config_path, config)
    save_checkpoint(run.best, model_state=model.state_dict(), model_config=model.config)
    return path


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores shared by many processes: one intra-op thread avoids oversubscription stalls."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
