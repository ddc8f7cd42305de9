"""Embedding statistics, the ridge probe and FC importance on cases with known answers."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from workbench.analyze import fc_importance, load_fc_importance
from workbench.analyze.embeddings import ridge_probe, spectrum
from workbench.analyze.fc_importance import CRITERIA, cumulative
from workbench.errors import WorkbenchError


def test_participation_ratio_counts_the_used_dimensions():
    rng = np.random.default_rng(0)
    iso = rng.normal(size=(2000, 10))
    assert spectrum(iso)["participation_ratio"] == pytest.approx(10, rel=0.1)
    assert spectrum(iso)["effective_rank"] == pytest.approx(10, rel=0.1)
    rank1 = rng.normal(size=(500, 1)) @ rng.normal(size=(1, 10)) + 1e-6 * rng.normal(size=(500, 10))
    s = spectrum(rank1)
    assert s["participation_ratio"] == pytest.approx(1, abs=0.01) and s["pcs_for_90"] == 1


@pytest.mark.parametrize("dim", [8, 300])  # primal and dual closed forms
def test_ridge_probe_recovers_a_linear_code_on_held_out_subjects_and_not_noise(dim):
    rng = np.random.default_rng(1)
    n = 240
    groups = np.repeat(np.arange(6), n // 6)
    y = rng.normal(size=(n, 2))
    x = y @ rng.normal(size=(2, dim)) + 0.05 * rng.normal(size=(n, dim))
    res = ridge_probe(x, y, groups)
    assert res["folds"] == 5 and res["subjects"] == 6
    assert (res["r2"] > 0.95).all()
    noise = ridge_probe(rng.normal(size=(n, dim)), y, groups)
    assert (noise["r2"] < 0.1).all()
    with pytest.raises(WorkbenchError, match="at least 2 subjects"):
        ridge_probe(x, y, np.zeros(n))


def test_cumulative_share():
    curve, share = cumulative(np.array([9.0, 1.0, 0.0, 0.0]))
    assert share == 0.25 and curve[0] == 0.0 and curve[-1] == pytest.approx(1.0)
    assert cumulative(np.ones(10))[1] == pytest.approx(0.9)


class TinyGaze(nn.Module):
    """face -> 4x4 pooled -> fc1 (12 units, the first four dead: zero weights and bias) -> ReLU -> head."""

    input_names = ("face",)
    output_names = ("gaze",)

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc1 = nn.Linear(48, 12)
        self.fc2 = nn.Linear(12, 2)
        with torch.no_grad():
            self.fc1.weight[:4] = 0.0
            self.fc1.bias[:4] = 0.0

    def forward(self, face):
        return {"gaze": self.fc2(torch.relu(self.fc1(self.pool(face).flatten(1))))}


def test_dead_units_score_zero_everywhere_and_the_json_is_what_a_pruner_reads(tmp_path):
    s = fc_importance(TinyGaze(), task="face_angles", n=16, max_ablate=12, conductance_samples=16,
                      conductance_steps=4, out=tmp_path / "fc")
    assert s["layers"]["fc2"]["is_head"] and not s["layers"]["fc1"]["is_head"]
    doc = load_fc_importance(tmp_path / "fc" / "fc_importance.json")
    assert doc["task"] == "face_angles" and doc["criteria"] == list(CRITERIA)
    fc1 = doc["layers"]["fc1"]
    assert fc1["out_features"] == 12 and fc1["default"] == "taylor" and fc1["ablated"] == list(range(12))
    for crit in CRITERIA:
        scores = np.array(fc1["scores"][crit], dtype=float)
        assert np.allclose(scores[:4], 0.0, atol=1e-9), crit
        assert (np.abs(scores[4:]) > 1e-9).any(), crit
    for crit in ("mean_abs", "variance", "weight_norm", "taylor", "conductance"):
        assert (np.array(fc1["scores"][crit][4:]) > 0).all(), crit
    assert (tmp_path / "fc" / "fc_importance.png").stat().st_size > 0
    summary = json.loads((tmp_path / "fc" / "summary.json").read_text())
    assert len(summary["layers"]["fc1"]["agreement"]) == len(CRITERIA)


def test_ablation_is_capped_on_wide_layers_and_says_so():
    s = fc_importance(TinyGaze(), task="face_angles", layer="fc1", n=8, max_ablate=4, conductance_samples=4,
                      conductance_steps=2)
    assert list(s["layers"]) == ["fc1"]
    assert any("random sample of 4 of 12" in note for note in s["layers"]["fc1"]["notes"])
    with pytest.raises(WorkbenchError, match="unknown Linear layer 'pool'.*fc1, fc2"):
        fc_importance(TinyGaze(), task="face_angles", layer="pool", n=4)
