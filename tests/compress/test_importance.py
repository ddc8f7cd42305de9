"""Pruning criteria are registered importance objects: a new one is one class plus one registration."""

from __future__ import annotations

import pytest
import torch
from compress._tiny import one_thread, tiny, tiny_inputs  # noqa: F401 (autouse fixture)

from workbench.compress import importance as I
from workbench.compress.prune import prune_model
from workbench.errors import WorkbenchError


def test_the_registered_criteria_and_a_bad_name():
    assert I.IMPORTANCES == ("magnitude", "taylor", "lamp")
    assert isinstance(I.get_importance("taylor"), I.TaylorImportance) and I.get_importance("taylor").needs_grads
    with pytest.raises(WorkbenchError, match="unknown importance 'entropy'; expected magnitude, taylor, lamp or fc:FILE"):
        I.get_importance("entropy")


def test_a_new_criterion_is_one_class_and_decides_what_goes():
    @I.register_importance
    class KeepLast(I.Importance):
        """Higher channel index = more important: the first channels go."""

        name = "test-keep-last"

        def __call__(self, graph, ch):
            return torch.arange(ch.width, dtype=torch.float32) + 1.0

    try:
        model = tiny("gazelstm")
        x = tiny_inputs("gazelstm")
        before = model.last_layer.weight.detach().clone()
        prune_model(model, tuple(t[:1] for t in x), target=0, fixed={"lstm": 4},
                    scorer=I.get_importance("test-keep-last"))
        assert model.lstm.hidden_size == 4
        # the kept hidden units are the last four of each direction (inputs of the head: [fwd | bwd])
        half = before.shape[1] // 2
        kept = torch.cat([before[:, half - 4:half], before[:, -4:]], dim=1)
        torch.testing.assert_close(model.last_layer.weight, kept)
        with pytest.raises(ValueError, match="already registered"):
            I.register_importance(KeepLast)
    finally:
        I._REGISTRY.pop("test-keep-last", None)
