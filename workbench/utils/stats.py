"""Statistics shared by analysis and reports, and the thresholds a faithful saliency map meets."""

from __future__ import annotations

import numpy as np

# What a faithful map of a good gaze model reaches (workbench.analyze.faithfulness checks them, the report
# prints them): eye-box mass >= 3x the eye boxes' area share, the maximum in an eye box for >= 80% of the
# samples, Spearman with the trained map < 0.2 after randomization, deletion >= 10% worse than random.
FAITHFULNESS_TARGETS = {"eye_mass_ratio": 3.0, "pointing": 0.8, "randomization_spearman": 0.2, "deletion_worse_by": 0.1}


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` (N, ...) with the same row of ``b``; ties get their
    average rank (scipy's ``rankdata``). Returns (N,), NaN where a row is constant (it has no ranking)."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a.reshape(len(a), -1), axis=1), rankdata(b.reshape(len(b), -1), axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (ra * rb).sum(1) / np.where(den > 0, den, 1.0), np.nan)
