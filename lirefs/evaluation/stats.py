"""Intervals and tests for benchmark accuracy (docs/method.md, "Evaluation").

* One accuracy: the exact Clopper-Pearson interval (:func:`clopper_pearson`). The percentile
  bootstrap is too narrow at small N (at 0/N and N/N it is a single point).
* A mean difference (steered against alpha = 0 on the same items), and the mean of a continuous
  outcome: :func:`mean_interval` over the paired item resamples that :func:`bootstrap_means`
  draws (every alpha uses the SAME resamples): the BCa interval (``scipy.stats.bootstrap``,
  ``method="BCa"``) from ``SMALL_N`` items on, the Student t interval below, where a bootstrap
  over a handful of items is far too narrow. Intervals of fewer than ``SMALL_N`` items are
  flagged (:func:`small_n`).
* A paired difference of accuracies: :func:`paired_ci`, exact and conditional on the items that
  changed their outcome (the interval of McNemar's exact test), never a bootstrap.
* McNemar's exact test on the discordant items (:func:`mcnemar_exact`, scipy's ``binomtest``).
* Every paired test is one :class:`PairedTest`; :func:`holm` adjusts a family of p-values for
  multiplicity (Holm's step-down method).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = [
    "SMALL_N",
    "PairedTest",
    "accuracy_ci",
    "bootstrap_ci",
    "bootstrap_means",
    "clopper_pearson",
    "holm",
    "mcnemar_exact",
    "mean_interval",
    "paired_bootstrap_ci",
    "paired_ci",
    "percentile_ci",
    "sample_stderr",
    "small_n",
]

#: Intervals over fewer items than this are flagged (``small_n``): they use the Student t
#: interval, which assumes roughly normal per-item values, instead of BCa.
SMALL_N = 10


@dataclass(frozen=True)
class PairedTest:
    """``mean(a) - mean(b)`` over the same items: steered against alpha 0, or real against control.

    Attributes:
        diff: the observed difference (accuracy, share degenerate, or mean gold log-prob).
        ci: 95% paired percentile bootstrap interval (exact when no 0/1 outcome differs).
        p_value: two-sided raw p-value: exact McNemar (0/1 outcomes) or sign-flip permutation.
        test: ``"mcnemar"`` or ``"sign-flip"``.
        n: items.
        n_gained: 0/1 outcomes: items 0 in ``b`` and 1 in ``a`` (``None`` for continuous ones).
        n_lost: 0/1 outcomes: items 1 in ``b`` and 0 in ``a``.
        p_holm: the Holm-adjusted p-value within its family of tests (``None`` until adjusted;
            see ``EvalResult`` for the families).
    """

    diff: float
    ci: tuple[float, float]
    p_value: float
    test: str = "mcnemar"
    n: int | None = None
    n_gained: int | None = None
    n_lost: int | None = None
    p_holm: float | None = None

    def with_holm(self, p_holm: float) -> PairedTest:
        """This test with its Holm-adjusted p-value."""
        return replace(self, p_holm=float(p_holm))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``n_gained``/``n_lost`` only for 0/1 outcomes)."""
        out: dict[str, Any] = {
            "diff": self.diff,
            "ci": list(self.ci),
            "p_value": self.p_value,
            "p_holm": self.p_holm,
            "test": self.test,
            "n": self.n,
            "small_n": None if self.n is None else small_n(self.n),
        }
        if self.n_gained is not None:
            out["n_gained"], out["n_lost"] = self.n_gained, self.n_lost
        return out

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PairedTest:
        """The inverse of :meth:`to_dict` (a ``result.json`` row)."""
        low, high = obj["ci"]
        return cls(
            diff=float(obj["diff"]),
            ci=(float(low), float(high)),
            p_value=float(obj["p_value"]),
            test=str(obj.get("test", "mcnemar")),
            n=obj.get("n"),
            n_gained=obj.get("n_gained"),
            n_lost=obj.get("n_lost"),
            p_holm=obj.get("p_holm"),
        )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of a family of ``m`` p-values, in the order given.

    Sorted ascending as ``p_(1) <= ... <= p_(m)``, the adjusted ``p_(i)`` is
    ``max_{j <= i} min(1, (m - j + 1) p_(j))``; a test survives at level ``a`` when its adjusted
    p-value is ``<= a``. This controls the family-wise error rate under any dependence.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def bootstrap_means(
    correct: np.ndarray, n_boot: int, seed: int, chunk_cells: int = 4_000_000
) -> np.ndarray:
    """Bootstrap means of each row of ``correct`` ``[k, n]`` over the SAME item resamples.

    Returns ``[n_boot, k]``: row ``b`` is the mean of each row of ``correct`` over resample ``b``
    (``n`` items drawn with replacement; drawn as multinomial counts, in chunks to bound memory).
    """
    k, n = correct.shape
    if n < 1 or n_boot < 1:
        raise DataError(f"bootstrap needs at least one item and one resample, got {n} and {n_boot}")
    rng = np.random.default_rng(seed)
    values = correct.astype(np.float64).T  # [n, k]
    out = np.empty((n_boot, k), dtype=np.float64)
    step = max(1, chunk_cells // n)
    pvals = np.full(n, 1.0 / n)
    for lo in range(0, n_boot, step):
        hi = min(n_boot, lo + step)
        counts = rng.multinomial(n, pvals, size=hi - lo)  # [m, n]
        out[lo:hi] = counts @ values / n
    return out


def percentile_ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of ``samples`` ``[n_boot]``."""
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def accuracy_ci(samples: np.ndarray, correct: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval of bootstrap ``samples``; exact at 0/n and n/n, where they are one point.

    With every outcome equal each resample has the same mean, so the percentile interval is
    ``[0, 0]`` or ``[1, 1]``. The Clopper-Pearson interval has a closed form there: 0/n gives
    ``[0, 1 - (tail)^(1/n)]`` and n/n gives ``[(tail)^(1/n), 1]`` with ``tail = (1 - level) / 2``.
    """
    n, k = correct.size, float(correct.sum())
    tail = (1.0 - level) / 2.0
    if k == 0:
        return 0.0, float(1.0 - tail ** (1.0 / n))
    if k == n:
        return float(tail ** (1.0 / n)), 1.0
    return percentile_ci(samples, level)


def bootstrap_ci(
    correct: Sequence[bool] | np.ndarray, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (resampling items).

    At 0/n and n/n, where every resample has the same mean, the exact Clopper-Pearson interval.

    Args:
        correct: one 0/1 outcome per item, ``[n]``.
        n_boot: bootstrap resamples.
        seed: seed of the resampling (same seed, same interval).
        level: coverage, 0.95 for a 95% interval.
    """
    arr = np.asarray(correct, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise DataError(f"bootstrap_ci needs a non-empty 1-D sequence, got shape {arr.shape}")
    return accuracy_ci(bootstrap_means(arr[None, :], n_boot, seed)[:, 0], arr, level)


def paired_bootstrap_ci(
    correct: Sequence[bool] | np.ndarray,
    baseline: Sequence[bool] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Interval of ``mean(correct) - mean(baseline)`` (:func:`paired_ci`: for 0/1 outcomes the
    exact interval conditional on the changed items, else the paired bootstrap of item pairs:
    BCa from ``SMALL_N`` items, Student t below). The name is kept for compatibility."""
    a = np.asarray(correct, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise DataError(
            f"paired_bootstrap_ci needs two non-empty 1-D sequences of one length, got shapes "
            f"{a.shape} and {b.shape}"
        )
    means = bootstrap_means(np.stack([a, b]), n_boot, seed)
    return paired_ci(means[:, 0] - means[:, 1], a, b, level)


def clopper_pearson(n_correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial share ``n_correct / n``.

    ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``: ``low = Beta(tail; k,
    n - k + 1)``, ``high = Beta(1 - tail; k + 1, n - k)`` with ``tail = (1 - level) / 2``; 0/n gives
    ``[0, 1 - tail^(1/n)]`` and n/n gives ``[tail^(1/n), 1]``. Coverage is at least ``level`` for
    every true share.
    """
    if n < 1 or not 0 <= n_correct <= n:
        raise DataError(
            f"clopper_pearson needs 0 <= n_correct <= n and n >= 1, got {n_correct}/{n}"
        )
    from scipy.stats import binomtest

    ci = binomtest(n_correct, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def paired_ci(
    samples: np.ndarray, correct: np.ndarray, baseline: np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """Interval of ``mean(correct) - mean(baseline)`` over ``n`` paired items.

    For 0/1 outcomes (accuracy) the interval is exact and conditional on the discordant items,
    the interval that goes with McNemar's exact test: with ``d`` items that changed their
    outcome, ``c`` of them for the better, the difference is ``(d / n) (2 pi - 1)`` with ``pi``
    the share of improvements among changes, and the interval is ``(d / n) (2 [lo, hi] - 1)``
    for ``[lo, hi]`` the Clopper-Pearson interval of ``c / d``. It excludes 0 exactly when the
    exact McNemar p is below ``1 - level`` (both come from the same binomial tails). A bootstrap
    of a handful of discordant items does not hold its level: with 2 of 40 items changed, both
    for the worse, BCa gave [-20.3, -2.5] beside a McNemar p of 0.5. With no discordant item the
    difference is bounded by the share of items that could have changed, whose exact upper
    limit at 0/n is ``u = 1 - tail^(1/n)``: the interval is ``[-u, u]``.

    Other outcomes: :func:`mean_interval` of the per-item differences over the paired bootstrap
    ``samples`` ``[n_boot]`` of that difference, within ``[-1, 1]``.
    """
    a = np.asarray(correct, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    n = a.size
    tail = (1.0 - level) / 2.0
    if not np.any(a != b):
        u = float(1.0 - tail ** (1.0 / n))
        return -u, u
    if np.all(np.isin(a, (0.0, 1.0))) and np.all(np.isin(b, (0.0, 1.0))):
        better = int(np.sum((a == 1.0) & (b == 0.0)))
        changed = int(np.sum(a != b))
        lo, hi = clopper_pearson(better, changed, level)
        share = changed / n
        return share * (2.0 * lo - 1.0), share * (2.0 * hi - 1.0)
    return mean_interval(a - b, samples, level, bounds=(-1.0, 1.0))


def sample_stderr(correct: np.ndarray) -> float:
    """Standard error of a mean of 0/1 outcomes as lm-eval reports it: sample sd (n - 1) / sqrt(n)."""
    n = correct.size
    if n < 2:
        return float("nan")
    return float(np.std(correct, ddof=1) / np.sqrt(n))


def mcnemar_exact(n_lost: int, n_gained: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pairs.

    ``n_lost``: items right at baseline and wrong when steered; ``n_gained``: the reverse. Under
    the null both are Binomial(n_lost + n_gained, 1/2):
    ``p = min(1, 2 * P[X <= min(n_lost, n_gained)])``; 1.0 when there are no discordant pairs
    (``scipy.stats.binomtest``, two-sided).
    """
    if n_lost < 0 or n_gained < 0:
        raise DataError(f"discordant counts must be >= 0, got {n_lost} and {n_gained}")
    n = n_lost + n_gained
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(min(1.0, binomtest(min(n_lost, n_gained), n, 0.5).pvalue))


def small_n(n: int) -> bool:
    """Whether an interval over ``n`` items is flagged: fewer than ``SMALL_N`` items."""
    return n < SMALL_N


def mean_interval(
    values: np.ndarray,
    samples: np.ndarray,
    level: float = 0.95,
    *,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Interval of ``mean(values)`` (``[n]`` per-item values) from bootstrap ``samples``
    ``[n_boot]`` of that mean over item resamples (:func:`bootstrap_means`).

    * ``n >= SMALL_N``: the bias-corrected and accelerated (BCa) interval of those very resamples
      (``scipy.stats.bootstrap(..., method="BCa")`` given them as its bootstrap distribution; the
      acceleration comes from the jackknife of ``values``). Where BCa is undefined (every
      resample on one side of the mean), the Student t interval.
    * ``2 <= n < SMALL_N``: the Student t interval ``mean +- t(1 - tail; n - 1) s / sqrt(n)``;
      a percentile bootstrap over a handful of items is far too narrow (at n = 2 it can exclude 0
      where the exact sign-flip p-value is 0.5).
    * ``n == 1``: no interval: ``bounds``, else ``(nan, nan)``.
    * all values equal: the point ``(mean, mean)``.

    ``bounds`` (e.g. ``(-1, 1)`` for a difference of shares) clips the interval.
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    mean = float(x.mean())
    if n == 1:
        return bounds if bounds is not None else (float("nan"), float("nan"))
    if np.all(x == x[0]):
        return mean, mean
    low, high = float("nan"), float("nan")
    if not small_n(n):
        low, high = _bca(x, np.asarray(samples, dtype=np.float64), level)
    if not (np.isfinite(low) and np.isfinite(high)):
        from scipy.stats import t

        half = float(t.ppf(1.0 - (1.0 - level) / 2.0, n - 1)) * float(x.std(ddof=1)) / np.sqrt(n)
        low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return float(low), float(high)


def _bca(x: np.ndarray, samples: np.ndarray, level: float) -> tuple[float, float]:
    """scipy's BCa interval of ``mean(x)`` with ``samples`` as the bootstrap distribution."""
    import warnings
    from types import SimpleNamespace

    from scipy.stats import bootstrap

    given = SimpleNamespace(bootstrap_distribution=samples)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # a degenerate case comes back as NaN, handled above
        res = bootstrap(
            (x,),
            np.mean,
            n_resamples=0,
            bootstrap_result=given,
            confidence_level=level,
            method="BCa",
            vectorized=True,
        )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)
