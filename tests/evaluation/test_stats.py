"""Intervals and tests at small and moderate N, against scipy and the textbook formulas."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps

from lirefs.evaluation.compare import mean_ci, paired_binary_diff, paired_mean_diff, sign_flip_p
from lirefs.evaluation.stats import (
    SMALL_N,
    bootstrap_means,
    clopper_pearson,
    mean_interval,
    paired_ci,
    small_n,
)


def _hand_bca(x: np.ndarray, samples: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Efron's BCa written out: bias from the share of resamples below the estimate,
    acceleration from the jackknife, percentiles of the resamples at the adjusted levels."""
    theta = x.mean()
    z0 = sps.norm.ppf(np.mean(samples < theta))
    jack = np.array([np.delete(x, i).mean() for i in range(x.size)])
    dev = jack.mean() - jack
    a = np.sum(dev**3) / (6.0 * np.sum(dev**2) ** 1.5)
    out = []
    for q in ((1 - level) / 2, 1 - (1 - level) / 2):
        z = sps.norm.ppf(q)
        adjusted = sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
        out.append(float(np.percentile(samples, 100 * adjusted)))
    return out[0], out[1]


def test_two_items_do_not_give_a_confident_interval() -> None:
    # gold log-probs of two items at alpha and at 0: a -21.2 mean difference
    steered, base = np.array([-40.0, -20.0]), np.array([-6.4, -11.2])
    got = paired_mean_diff(steered, base)
    d = steered - base
    want = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert got.diff == pytest.approx(-21.2)
    assert got.ci == pytest.approx((want.low, want.high), rel=1e-12)
    assert got.ci[0] < 0 < got.ci[1]  # agrees with the sign-flip test
    assert got.p_value == 0.5 and got.to_dict()["small_n"] is True


def test_t_interval_below_small_n_matches_scipy() -> None:
    x = np.array([-3.1, -5.0, -2.2, -4.8, -6.1])
    mean, ci = mean_ci(x)
    want = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert mean == pytest.approx(x.mean())
    assert ci == pytest.approx(want, rel=1e-12)
    assert small_n(5) and not small_n(SMALL_N)


def test_bca_from_small_n_on_matches_the_formula_and_scipys_own_bootstrap() -> None:
    x = np.random.default_rng(4).gamma(2.0, 3.0, size=40) * -1.0  # skewed, like log-probs
    samples = bootstrap_means(x[None, :], 4000, 7)[:, 0]
    got = mean_interval(x, samples)
    assert got == pytest.approx(_hand_bca(x, samples), rel=1e-9)
    # scipy drawing its own resamples gives the same interval up to Monte-Carlo error
    own = sps.bootstrap((x,), np.mean, n_resamples=20000, method="BCa", random_state=1)
    width = own.confidence_interval.high - own.confidence_interval.low
    assert got[0] == pytest.approx(own.confidence_interval.low, abs=0.06 * width)
    assert got[1] == pytest.approx(own.confidence_interval.high, abs=0.06 * width)
    # mean_ci uses exactly these resamples (seed 7, 4000 of them)
    assert mean_ci(x, n_boot=4000, seed=7)[1] == got


def test_edge_cases_of_mean_interval() -> None:
    assert mean_interval(np.array([2.0, 2.0, 2.0]), np.full(10, 2.0)) == (2.0, 2.0)
    low, high = mean_interval(np.array([3.0]), np.full(10, 3.0))
    assert np.isnan(low) and np.isnan(high)
    assert mean_interval(np.array([1.0]), np.ones(10), bounds=(-1.0, 1.0)) == (-1.0, 1.0)


def test_paired_ci_of_shares_is_bounded_and_exact_without_changes() -> None:
    correct, baseline = np.array([1.0, 0.0]), np.array([0.0, 0.0])
    samples = bootstrap_means(np.stack([correct, baseline]), 2000, 0)
    ci = paired_ci(samples[:, 0] - samples[:, 1], correct, baseline)
    # one of 2 items changed, for the better: (1/2)(2 [CP of 1/1] - 1)
    cp = sps.binomtest(1, 1).proportion_ci(confidence_level=0.95, method="exact")
    assert ci == pytest.approx((0.5 * (2 * cp.low - 1), 0.5 * (2 * cp.high - 1)), abs=1e-12)
    same = paired_binary_diff([1, 0, 1, 1], [1, 0, 1, 1])
    u = sps.binomtest(0, 4).proportion_ci(confidence_level=0.95, method="exact").high
    assert same.ci == pytest.approx((-u, u), abs=1e-12)


def test_sign_flip_matches_scipy_and_enumeration() -> None:
    d = np.array([0.5, -0.2, 1.3, 0.7, 0.1, -0.4, 0.9, 0.3])
    flips = [abs(np.dot(s, d) / d.size) for s in itertools.product((1, -1), repeat=d.size)]
    by_hand = np.mean([f >= abs(d.mean()) - 1e-12 for f in flips])
    assert sign_flip_p(d) == pytest.approx(by_hand)
    assert sign_flip_p(np.array([-33.6, -8.8])) == 0.5


@pytest.mark.parametrize("level", [0.9, 0.95, 0.99])
def test_clopper_pearson_matches_the_beta_quantiles(level: float) -> None:
    # the definition, written out with beta quantiles (the interval's own scipy call is binomtest)
    tail = (1.0 - level) / 2.0
    for n in range(1, 61):
        for k in range(n + 1):
            low = 0.0 if k == 0 else sps.beta.ppf(tail, k, n - k + 1)
            high = 1.0 if k == n else sps.beta.ppf(1.0 - tail, k + 1, n - k)
            assert clopper_pearson(k, n, level) == pytest.approx((low, high), rel=0, abs=1e-12)


@pytest.mark.parametrize(("better", "worse", "same"), [(0, 2, 38), (3, 0, 0), (7, 2, 31), (12, 3, 5)])
def test_paired_accuracy_interval_agrees_with_mcnemar(better: int, worse: int, same: int) -> None:
    """The accuracy difference's interval is the exact conditional one, and it excludes 0 exactly
    when McNemar's exact p (scipy's two-sided binomial test on the changed items) is < 0.05."""
    correct = np.array([1.0] * better + [0.0] * worse + [1.0] * same)
    baseline = np.array([0.0] * better + [1.0] * worse + [1.0] * same)
    n, d = correct.size, better + worse
    samples = bootstrap_means(np.stack([correct, baseline]), 200, 0)
    low, high = paired_ci(samples[:, 0] - samples[:, 1], correct, baseline)
    cp = sps.binomtest(better, d).proportion_ci(confidence_level=0.95, method="exact")
    assert (low, high) == pytest.approx((d / n * (2 * cp.low - 1), d / n * (2 * cp.high - 1)))
    assert low <= (better - worse) / n <= high
    p = sps.binomtest(better, d, 0.5).pvalue
    assert (low > 0 or high < 0) == (p < 0.05)
