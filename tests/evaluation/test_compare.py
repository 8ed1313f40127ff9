"""Paired comparisons of per-item outcomes, against direct computations (scipy where it has one)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lirefs.errors import DataError
from lirefs.evaluation.compare import (
    compare_to_control,
    mean_ci,
    paired_binary_diff,
    paired_mean_diff,
    sign_flip_p,
    summarise_outcomes,
)
from lirefs.evaluation.stats import mcnemar_exact


def test_mean_ci_brackets_the_mean_and_is_seeded() -> None:
    values = np.random.default_rng(0).normal(-5.0, 2.0, size=40)
    mean, ci = mean_ci(values, seed=1)
    assert mean == pytest.approx(values.mean())
    assert ci[0] < mean < ci[1]
    assert mean_ci(values, seed=1) == (mean, ci)
    # the 95% interval of a mean is about +-1.96 standard errors
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert ci[1] - ci[0] == pytest.approx(2 * 1.96 * se, rel=0.2)


def test_sign_flip_exact_matches_enumeration() -> None:
    d = np.array([0.5, -0.2, 1.3, 0.7, 0.1, -0.4, 0.9])
    obs = abs(d.mean())
    flips = [abs(np.dot(s, d) / d.size) for s in itertools.product((1, -1), repeat=d.size)]
    want = np.mean([f >= obs - 1e-12 for f in flips])
    assert sign_flip_p(d) == pytest.approx(want)


def test_sign_flip_detects_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(2)
    assert sign_flip_p(rng.normal(1.0, 1.0, size=60)) < 0.001
    assert sign_flip_p(np.zeros(30)) == 1.0


def test_mcnemar_matches_scipy_binomtest() -> None:
    stats = pytest.importorskip("scipy.stats")
    for lost, gained in [(0, 5), (3, 9), (10, 10), (1, 0)]:
        want = stats.binomtest(min(lost, gained), lost + gained, 0.5).pvalue
        assert mcnemar_exact(lost, gained) == pytest.approx(want)


def test_paired_mean_diff_sign_and_interval() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(-10, 3, size=50)
    steered = base - 1.0 + rng.normal(0, 0.2, size=50)
    got = paired_mean_diff(steered, base)
    assert got.diff == pytest.approx(float(steered.mean() - base.mean()))
    assert got.ci[0] < got.diff < got.ci[1] < 0
    assert got.p_value < 0.001 and got.test == "sign-flip" and got.n == 50


def test_paired_binary_diff_counts_discordant_pairs() -> None:
    a = [1, 1, 0, 0, 1, 0]
    b = [0, 0, 0, 0, 1, 1]
    got = paired_binary_diff(a, b)
    assert got.diff == pytest.approx(1 / 6)
    assert got.p_value == pytest.approx(mcnemar_exact(1, 2))
    same = paired_binary_diff(a, a)
    assert same.diff == 0.0 and same.p_value == 1.0
    assert same.ci == pytest.approx((-(1 - 0.025 ** (1 / 6)), 1 - 0.025 ** (1 / 6)))


def test_bad_outcomes_are_a_clear_error() -> None:
    with pytest.raises(DataError, match="one length"):
        paired_mean_diff([1.0, 2.0], [1.0])
    with pytest.raises(DataError, match="NaN"):
        mean_ci([1.0, float("nan")])
    with pytest.raises(DataError, match="0/1"):
        paired_binary_diff([0.5], [1.0])


def _records(alpha: float, gold: list[float], deg: list[bool], correct: list[bool]) -> list[dict]:
    return [
        {"alpha": alpha, "index": i, "gold_logprob": g, "degenerate": d, "correct": c}
        for i, (g, d, c) in enumerate(zip(gold, deg, correct, strict=True))
    ]


def test_summarise_outcomes_per_alpha_and_paired_against_zero() -> None:
    base = _records(0.0, [-3.0, -4.0, -5.0, -6.0], [False] * 4, [True, False, True, False])
    steered = _records(0.1, [-4.0, -6.0, -5.5, -7.0], [True, True, False, False], [False] * 4)
    got = summarise_outcomes([0.0, 0.1], list(reversed(base + steered)), n_boot=200, seed=0)
    assert got.gold_logprob == {0.0: -4.5, 0.1: -5.625}
    assert got.degenerate == {0.0: 0.0, 0.1: 0.5}
    assert got.gold_logprob_paired[0.1].diff == pytest.approx(-1.125)
    assert got.degenerate_paired[0.1].p_value == pytest.approx(mcnemar_exact(0, 2))
    assert 0.0 not in got.gold_logprob_paired


def test_compare_to_control_is_real_minus_control() -> None:
    real = _records(0.1, [-4.0, -6.0, -5.0], [True, False, False], [False, True, True])
    ctrl = _records(0.1, [-3.0, -5.0, -5.0], [False, False, False], [True, True, True])
    got = compare_to_control([0.0, 0.1], real, ctrl, n_boot=200, seed=0)
    assert list(got) == [0.1]
    assert got[0.1]["gold_logprob"].diff == pytest.approx(-2 / 3)
    assert got[0.1]["accuracy"].diff == pytest.approx(-1 / 3)
    assert got[0.1]["degenerate"].diff == pytest.approx(1 / 3)
