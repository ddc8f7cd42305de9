"""Statistics shared by analysis and reports, and the thresholds a faithful saliency map meets."""

from __future__ import annotations

from typing import Any

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


def sign_test_p(wins: int, n: int) -> float:
    """One-sided sign test: P(at least ``wins`` of ``n`` fair coin flips), the chance of one arm winning this
    often over paired replicates if it were no better than the other."""
    import math

    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def paired_comparison(a: list[float], b: list[float], *, higher_is_better: bool) -> dict[str, float | int | None]:
    """Arm ``a`` against arm ``b`` over paired replicates (seed k of each): means, sample standard deviations,
    the paired difference a - b, how often ``a`` wins, the one-sided sign-test p and the one-sided paired
    t-test p, both in the direction "``a`` better" (lower error, or higher score)."""
    import math
    import statistics

    if len(a) != len(b) or not a:
        raise ValueError(f"paired arms need the same non-zero number of replicates, got {len(a)} and {len(b)}")

    def mean_std(v: list[float]) -> tuple[float, float]:
        return statistics.mean(v), statistics.stdev(v) if len(v) > 1 else 0.0

    diff = [x - y for x, y in zip(a, b)]
    wins = sum((d > 0) if higher_is_better else (d < 0) for d in diff)
    (ma, sa), (mb, sb), (md, sd) = mean_std(a), mean_std(b), mean_std(diff)
    n = len(a)
    t_p = None
    if n > 1 and sd > 0:
        from scipy.stats import t as student_t

        t_stat = md / (sd / math.sqrt(n)) * (1 if higher_is_better else -1)
        t_p = float(student_t.sf(t_stat, n - 1))
    return {"n": n, "a_mean": ma, "a_std": sa, "b_mean": mb, "b_std": sb, "difference_mean": md,
            "difference_std": sd, "difference_stderr": sd / math.sqrt(n) if n > 1 else None,
            "a_wins": wins, "sign_test_p": sign_test_p(wins, n), "paired_t_p": t_p}


def pareto_front(points: dict[Any, tuple[float | None, float | None]]) -> set[Any]:
    """Keys of the points (cost, error), both lower-is-better, that no other point dominates (lower-or-equal
    in both, lower in one); ties are all kept; a point missing either value is never on the front and
    dominates nothing."""
    known = {k: (c, e) for k, (c, e) in points.items() if e is not None and c is not None}
    return {k for k, (c, e) in known.items()
            if not any(c2 <= c and e2 <= e and (c2 < c or e2 < e) for k2, (c2, e2) in known.items() if k2 != k)}
