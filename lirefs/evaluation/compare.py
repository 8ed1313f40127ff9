"""Paired comparisons of per-item outcomes: steered vs alpha 0, and real direction vs a control.

Every comparison is paired by item (the same items, the same resampled item indices for both
sides), so item difficulty cancels:

* ``mean_ci(values)``: the mean of a continuous per-item outcome (the gold log-probability) with a
  95% interval over items (``stats.mean_interval``: BCa, Student t below ``stats.SMALL_N``);
* ``paired_mean_diff(a, b)``: ``mean(a) - mean(b)`` with its paired bootstrap interval and a
  two-sided sign-flip permutation p-value (exact over all ``2^n`` flips for ``n <= 16``, else
  ``n_perm`` seeded random flips with the ``(k + 1) / (n_perm + 1)`` estimate);
* ``paired_binary_diff(a, b)``: for 0/1 outcomes (correct, degenerate): the difference of shares,
  its exact interval given the changed items (``stats.paired_ci``) and McNemar's
  exact p-value from the discordant pairs.

``summarise_outcomes`` and ``compare_to_control`` apply these to evaluation records (one dict per
alpha and item).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DataError
from .stats import PairedTest, bootstrap_means, mcnemar_exact, mean_interval, paired_ci

__all__ = [
    "OutcomeSummary",
    "PairedDiff",
    "PairedTest",
    "compare_to_control",
    "mean_ci",
    "paired_binary_diff",
    "paired_mean_diff",
    "sign_flip_p",
    "summarise_outcomes",
]

#: Largest n for which the sign-flip test enumerates every flip.
EXACT_FLIPS = 16


#: The paired test's old name here; one type for every paired test (:class:`.stats.PairedTest`).
PairedDiff = PairedTest


def _as_rows(*values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = [np.asarray(v, dtype=np.float64) for v in values]
    n = arr[0].shape
    if any(a.ndim != 1 or a.shape != n for a in arr) or arr[0].size == 0:
        raise DataError(
            f"paired outcomes must be non-empty 1-D sequences of one length, got shapes "
            f"{[a.shape for a in arr]}"
        )
    if not all(np.isfinite(a).all() for a in arr):
        raise DataError("outcomes contain NaN or inf; every item needs a finite value")
    return np.stack(arr)


def mean_ci(
    values: Sequence[float] | np.ndarray, *, n_boot: int = 2000, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """``(mean, (low, high))``: the mean of ``values`` ``[n]`` and its 95% interval
    (``stats.mean_interval``: BCa over seeded item resamples, Student t below ``SMALL_N``)."""
    rows = _as_rows(values)
    samples = bootstrap_means(rows, n_boot, seed)[:, 0]
    return float(rows[0].mean()), mean_interval(rows[0], samples, 0.95)


def sign_flip_p(
    diffs: Sequence[float] | np.ndarray, *, n_perm: int = 10000, seed: int = 0
) -> float:
    """Two-sided sign-flip permutation p-value of ``mean(diffs) = 0`` (paired differences ``[n]``).

    Under the null each item's difference is as likely negative as positive:
    ``scipy.stats.permutation_test`` with ``permutation_type="samples"`` on the one sample (sign
    flips), two-sided (twice the smaller tail, at most 1), exact over all ``2^n`` patterns for
    ``n <= EXACT_FLIPS``, else ``n_perm`` seeded random patterns with scipy's ``(k + 1) /
    (n_perm + 1)`` tails. 1.0 when every difference is 0.
    """
    from scipy.stats import permutation_test

    d = _as_rows(diffs)[0]
    if np.all(d == 0):
        return 1.0
    n = d.size
    # one sample with permutation_type="samples" flips signs; exact when 2^n <= n_resamples
    res = permutation_test(
        (d,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=2**n if n <= EXACT_FLIPS else n_perm,
        alternative="two-sided",
        random_state=np.random.default_rng(seed),
    )
    return float(min(1.0, res.pvalue))


def paired_mean_diff(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedTest:
    """``mean(a) - mean(b)`` of a continuous outcome, paired interval (``stats.mean_interval``
    of the per-item differences), sign-flip p-value."""
    rows = _as_rows(a, b)
    means = bootstrap_means(rows, n_boot, seed)
    return PairedTest(
        diff=float(rows[0].mean() - rows[1].mean()),
        ci=mean_interval(rows[0] - rows[1], means[:, 0] - means[:, 1], 0.95),
        p_value=sign_flip_p(rows[0] - rows[1], seed=seed),
        test="sign-flip",
        n=int(rows.shape[1]),
    )


def paired_binary_diff(
    a: Sequence[bool] | np.ndarray,
    b: Sequence[bool] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> PairedTest:
    """Share of ``a`` minus share of ``b`` (0/1 outcomes), exact conditional CI, McNemar p."""
    rows = _as_rows(a, b)
    if not np.isin(rows, (0.0, 1.0)).all():
        raise DataError("paired_binary_diff needs 0/1 (or bool) outcomes")
    means = bootstrap_means(rows, n_boot, seed)
    gained = int(((rows[0] == 1) & (rows[1] == 0)).sum())
    lost = int(((rows[0] == 0) & (rows[1] == 1)).sum())
    diff = float(rows[0].mean() - rows[1].mean())
    ci = paired_ci(means[:, 0] - means[:, 1], rows[0], rows[1])
    return PairedTest(
        diff=diff,
        ci=ci,
        p_value=mcnemar_exact(lost, gained),
        test="mcnemar",
        n=int(rows.shape[1]),
        n_gained=gained,
        n_lost=lost,
    )


# ---------------------------------------------------------------------------------------------
# per-alpha summaries of evaluation records


def _column(records: Sequence[dict[str, Any]], alpha: float, key: str) -> np.ndarray:
    """``key`` of the records at ``alpha``, in item order (``index``)."""
    rows = sorted((r for r in records if r["alpha"] == alpha), key=lambda r: int(r["index"]))
    if any(r.get(key) is None for r in rows):
        raise DataError(f"records at alpha {alpha:+g} lack {key!r}; rerun without resuming")
    return np.array([float(r[key]) for r in rows], dtype=np.float64)


@dataclass(frozen=True)
class OutcomeSummary:
    """Gold log-probability and degeneration per alpha, from one direction's records.

    Attributes:
        gold_logprob: ``{alpha: mean over items of the gold text's summed log-probability}``.
        gold_logprob_ci: ``{alpha: (low, high)}`` 95% bootstrap interval of that mean.
        gold_logprob_paired: ``{alpha: PairedTest}`` against alpha 0 (every alpha != 0, when 0 is
            among the alphas): paired bootstrap interval and sign-flip p-value.
        degenerate: ``{alpha: share of outputs flagged degenerate}``.
        degenerate_paired: ``{alpha: PairedTest}`` against alpha 0 (McNemar).
    """

    gold_logprob: dict[float, float]
    gold_logprob_ci: dict[float, tuple[float, float]]
    gold_logprob_paired: dict[float, PairedTest]
    degenerate: dict[float, float]
    degenerate_paired: dict[float, PairedTest]


def summarise_outcomes(
    alphas: Sequence[float],
    records: Sequence[dict[str, Any]],
    *,
    n_boot: int,
    seed: int,
    gold: bool = True,
) -> OutcomeSummary:
    """``OutcomeSummary`` of ``records`` (dicts with ``alpha``, ``index``, ``gold_logprob``,
    ``degenerate``; the same items at every alpha). ``gold=False``: the gold log-probability
    fields stay empty (a run that did not score it)."""
    gold_mean: dict[float, float] = {}
    gold_ci: dict[float, tuple[float, float]] = {}
    deg: dict[float, float] = {}
    gold_paired: dict[float, PairedTest] = {}
    deg_paired: dict[float, PairedTest] = {}
    for alpha in alphas:
        if gold:
            gold_mean[alpha], gold_ci[alpha] = mean_ci(
                _column(records, alpha, "gold_logprob"), n_boot=n_boot, seed=seed
            )
        deg[alpha] = float(_column(records, alpha, "degenerate").mean())
    if 0.0 in alphas:
        base_deg = _column(records, 0.0, "degenerate")
        for alpha in alphas:
            if alpha == 0.0:
                continue
            if gold:
                gold_paired[alpha] = paired_mean_diff(
                    _column(records, alpha, "gold_logprob"),
                    _column(records, 0.0, "gold_logprob"),
                    n_boot=n_boot,
                    seed=seed,
                )
            deg_paired[alpha] = paired_binary_diff(
                _column(records, alpha, "degenerate"), base_deg, n_boot=n_boot, seed=seed
            )
    return OutcomeSummary(gold_mean, gold_ci, gold_paired, deg, deg_paired)


def compare_to_control(
    alphas: Sequence[float],
    real: Sequence[dict[str, Any]],
    control: Sequence[dict[str, Any]],
    *,
    n_boot: int,
    seed: int,
    gold: bool = True,
) -> dict[float, dict[str, PairedTest]]:
    """Real direction minus one control, per steered alpha, paired by item.

    Returns:
        ``{alpha: {"accuracy": ..., "gold_logprob": ..., "degenerate": ...}}`` for every alpha
        != 0 (alpha 0 is the same unsteered run for both); ``gold_logprob`` only with ``gold``.
    """
    out: dict[float, dict[str, PairedTest]] = {}
    for alpha in alphas:
        if alpha == 0.0:
            continue
        row = {
            "accuracy": paired_binary_diff(
                _column(real, alpha, "correct"),
                _column(control, alpha, "correct"),
                n_boot=n_boot,
                seed=seed,
            ),
            "degenerate": paired_binary_diff(
                _column(real, alpha, "degenerate"),
                _column(control, alpha, "degenerate"),
                n_boot=n_boot,
                seed=seed,
            ),
        }
        if gold:
            row["gold_logprob"] = paired_mean_diff(
                _column(real, alpha, "gold_logprob"),
                _column(control, alpha, "gold_logprob"),
                n_boot=n_boot,
                seed=seed,
            )
        out[alpha] = row
    return out
