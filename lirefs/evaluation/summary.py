"""From scored records to an :class:`EvalResult`: accuracy, intervals, paired tests, groups, Holm.

* :func:`summarise`: per alpha the strict and flexible accuracy with exact intervals, the
  no-answer rate, the paired test against alpha 0 (exact interval conditional on the items that changed, over the SAME item
  resamples for every alpha, exact McNemar p), the gold log-probability and degeneration
  (:func:`.compare.summarise_outcomes`) and, when the items have groups, the same per group
  (:func:`group_results`).
* :func:`adjust_holm`: Holm-adjusted p-values for each family of tests of one result (see
  ``EvalResult`` for the families); the raw p-values stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from .baselines import BaselineResult
from .compare import mean_ci, paired_binary_diff, paired_mean_diff, summarise_outcomes
from .groups import GroupResult
from .result import EvalResult
from .stats import PairedTest, bootstrap_means, clopper_pearson, holm, mcnemar_exact, paired_ci

__all__ = [
    "AnswerOutcome",
    "adjust_holm",
    "answer_outcome",
    "group_results",
    "summarise",
    "summarise_baseline",
]

#: Where a prompt baseline sits inside its own two-row summary (never seen outside it).
_AT = 1.0
#: Marks a prompt baseline's test among the (alpha, control) entries of a Holm family.
_BASELINE = object()


def summarise(records: list[dict[str, Any]], metadata: dict[str, Any], n_items: int) -> EvalResult:
    """The ``EvalResult`` of ``records`` (``len(alphas) * n_items`` dicts, alpha-major, the same
    item order at every alpha); alphas, seed, bootstrap size and layer come from ``metadata``."""
    settings = metadata["settings"]
    alphas: list[float] = list(settings["alphas"])
    n_boot, seed = int(settings["n_boot"]), int(settings["seed"])
    shape = (len(alphas), n_items)

    def table(key: str) -> np.ndarray:
        return np.array([bool(r[key]) for r in records], dtype=np.float64).reshape(shape)

    correct = table("correct")
    flexible = table("correct_flexible")
    no_answer = np.array([r["extracted"] is None for r in records], dtype=np.float64).reshape(shape)
    accuracy, ci, rate, flex_acc, flex_ci = {}, {}, {}, {}, {}
    for a, alpha in enumerate(alphas):
        accuracy[alpha] = float(correct[a].mean())
        ci[alpha] = clopper_pearson(int(correct[a].sum()), n_items)
        flex_acc[alpha] = float(flexible[a].mean())
        flex_ci[alpha] = clopper_pearson(int(flexible[a].sum()), n_items)
        rate[alpha] = float(no_answer[a].mean())
    has_gold = all(r.get("gold_logprob") is not None for r in records)
    outcomes = summarise_outcomes(alphas, records, n_boot=n_boot, seed=seed, gold=has_gold)
    answer = answer_outcome(alphas, records, n_boot=n_boot, seed=seed)
    return EvalResult(
        benchmark=metadata["data"]["benchmark"],
        alphas=alphas,
        n_items=n_items,
        accuracy=accuracy,
        ci=ci,
        no_answer_rate=rate,
        paired=_paired(alphas, correct, n_boot, seed),
        flexible_accuracy=flex_acc,
        flexible_ci=flex_ci,
        records=records,
        metadata=metadata,
        layer=settings.get("layer"),
        layer_source=settings.get("layer_source"),
        gold_logprob=outcomes.gold_logprob,
        gold_logprob_ci=outcomes.gold_logprob_ci,
        gold_logprob_paired=outcomes.gold_logprob_paired,
        answer_logprob=answer.mean,
        answer_logprob_ci=answer.ci,
        answer_logprob_paired=answer.paired,
        answer_logprob_n=answer.n,
        answer_logprob_missing=answer.missing,
        degenerate=outcomes.degenerate,
        degenerate_paired=outcomes.degenerate_paired,
        by_group=group_results(alphas, records, n_boot=n_boot, seed=seed),
    )


def summarise_baseline(
    text: str,
    records: list[dict[str, Any]],
    base: list[dict[str, Any]],
    metadata: dict[str, Any],
    n_items: int,
) -> BaselineResult:
    """The ``BaselineResult`` of a prompt baseline's ``records`` (unsteered, one per item, in the
    run's item order) against ``base``, the run's alpha-0 records of the same items (empty when
    0 is not among the alphas: no paired tests). The same rules as a steered alpha: exact
    intervals, McNemar for accuracy and degeneration, paired interval and sign-flip p for the
    log-probabilities, per-group tests."""
    alphas = [0.0, _AT] if base else [_AT]
    at = [{**r, "alpha": _AT} for r in records]
    meta = {**metadata, "settings": {**metadata["settings"], "alphas": alphas}}
    sub = summarise(list(base) + at, meta, n_items)
    row = next(r for r in sub.rows() if r["alpha"] == _AT)
    paired = ("paired", "gold_logprob_paired", "answer_logprob_paired", "degenerate_paired")
    row = {k: v for k, v in row.items() if k not in (*paired, "controls")}
    row["alpha"] = 0.0  # unsteered
    tables = {
        "accuracy": sub.paired,
        "gold_logprob": sub.gold_logprob_paired,
        "answer_logprob": sub.answer_logprob_paired,
        "degenerate": sub.degenerate_paired,
    }
    tests = {key: table[_AT] for key, table in tables.items() if _AT in table}
    return BaselineResult(text, row, tests, dict(sub.by_group.get(_AT, {})), list(records))


@dataclass(frozen=True)
class AnswerOutcome:
    """The answer log-probability per alpha (benchmarks with an answer marker).

    Attributes:
        mean: ``{alpha: mean answer_logprob}`` over the items whose output reached the marker
            at that alpha; ``ci`` its 95% interval (``compare.mean_ci``).
        n: ``{alpha: items with a value}``; ``missing``: ``{alpha: items without one}``.
        paired: ``{alpha: PairedTest}`` against alpha 0 over the items with a value at BOTH
            alphas (paired interval, sign-flip p; ``n`` says how many); absent when fewer than
            two items have both.
    """

    mean: dict[float, float]
    ci: dict[float, tuple[float, float]]
    n: dict[float, int]
    missing: dict[float, int]
    paired: dict[float, PairedTest]


def answer_outcome(
    alphas: Sequence[float], records: Sequence[dict[str, Any]], *, n_boot: int, seed: int
) -> AnswerOutcome:
    """``AnswerOutcome`` of ``records``; empty where no record holds an ``answer_text`` (a
    short-answer benchmark, or a run without the gold outcome)."""
    out = AnswerOutcome({}, {}, {}, {}, {})
    if not all(r.get("answer_text") is not None for r in records) or not records:
        return out
    values: dict[float, dict[int, float | None]] = {}
    for alpha in alphas:
        rows = [r for r in records if r["alpha"] == alpha]
        values[alpha] = {int(r["index"]): r.get("answer_logprob") for r in rows}
        have = [float(v) for v in values[alpha].values() if v is not None]
        out.n[alpha], out.missing[alpha] = len(have), len(rows) - len(have)
        if len(have) >= 2:
            out.mean[alpha], out.ci[alpha] = mean_ci(have, n_boot=n_boot, seed=seed)
        elif have:
            out.mean[alpha] = have[0]  # one item: no interval
    if 0.0 not in alphas:
        return out
    base = values[0.0]
    for alpha in alphas:
        if alpha == 0.0:
            continue
        both = sorted(
            i for i, v in values[alpha].items() if v is not None and base.get(i) is not None
        )
        if len(both) >= 2:
            out.paired[alpha] = paired_mean_diff(
                [float(cast(float, values[alpha][i])) for i in both],
                [float(cast(float, base[i])) for i in both],
                n_boot=n_boot,
                seed=seed,
            )
    return out


def _paired(
    alphas: list[float], correct: np.ndarray, n_boot: int, seed: int
) -> dict[float, PairedTest]:
    """Each alpha != 0 against alpha 0 (strict accuracy): exact conditional CI over the same item
    resamples for every alpha, exact McNemar p."""
    if 0.0 not in alphas:
        return {}
    means = bootstrap_means(correct, n_boot, seed)  # same resamples for every alpha
    base = alphas.index(0.0)
    paired: dict[float, PairedTest] = {}
    for a, alpha in enumerate(alphas):
        if a == base:
            continue
        gained = int(((correct[a] == 1) & (correct[base] == 0)).sum())
        lost = int(((correct[a] == 0) & (correct[base] == 1)).sum())
        paired[alpha] = PairedTest(
            diff=float(correct[a].mean()) - float(correct[base].mean()),
            ci=paired_ci(means[:, a] - means[:, base], correct[a], correct[base]),
            p_value=mcnemar_exact(lost, gained),
            test="mcnemar",
            n=int(correct.shape[1]),
            n_gained=gained,
            n_lost=lost,
        )
    return paired


def group_results(
    alphas: Sequence[float], records: Sequence[dict[str, Any]], *, n_boot: int, seed: int
) -> dict[float, dict[str, GroupResult]]:
    """``{alpha: {group: GroupResult}}``: strict accuracy per group with its exact interval and,
    for alpha != 0, the paired test against alpha 0 on that group's items (exact conditional CI,
    exact McNemar p). Empty when no record has a group."""
    if not any(r.get("group") is not None for r in records):
        return {}
    names = sorted({str(r.get("group")) for r in records})
    column: dict[tuple[float, str], np.ndarray] = {}
    for alpha in alphas:
        rows = sorted((r for r in records if r["alpha"] == alpha), key=lambda r: int(r["index"]))
        for name in names:
            column[(alpha, name)] = np.array(
                [bool(r["correct"]) for r in rows if str(r.get("group")) == name], dtype=np.float64
            )
    out: dict[float, dict[str, GroupResult]] = {}
    for alpha in alphas:
        out[alpha] = {}
        for name in names:
            values = column[(alpha, name)]
            paired = None
            if alpha != 0.0 and 0.0 in alphas:
                paired = paired_binary_diff(values, column[(0.0, name)], n_boot=n_boot, seed=seed)
            out[alpha][name] = GroupResult(
                accuracy=float(values.mean()),
                ci=clopper_pearson(int(values.sum()), values.size),
                n=int(values.size),
                n_correct=int(values.sum()),
                paired=paired,
            )
    return out


def _adjust(tests: list[tuple[Any, Any, PairedTest]]) -> list[tuple[Any, Any, PairedTest]]:
    adjusted = holm([t.p_value for _, _, t in tests])
    return [(a, b, t.with_holm(p)) for (a, b, t), p in zip(tests, adjusted, strict=True)]


def adjust_holm(result: EvalResult) -> EvalResult:
    """Fill ``p_holm`` of every paired test of ``result`` (and of its controls), in place.

    Families (one Holm adjustment each): per outcome (accuracy, gold log-prob, answer log-prob,
    degeneration),
    every test against alpha 0 together with every real-minus-control test at every alpha; the
    per-group accuracy tests across groups and alphas. The prompt baselines' tests against alpha 0
    join the family of their outcome (and their per-group tests the per-group family). Returns
    ``result``.
    """
    families = {
        "accuracy": result.paired,
        "gold_logprob": result.gold_logprob_paired,
        "answer_logprob": result.answer_logprob_paired,
        "degenerate": result.degenerate_paired,
    }
    for outcome, versus_zero in families.items():
        tests: list[tuple[Any, Any, PairedTest]] = [(a, None, t) for a, t in versus_zero.items()]
        tests += [
            (alpha, name, row[outcome])
            for alpha, by_name in result.vs_controls.items()
            for name, row in by_name.items()
            if outcome in row
        ]
        tests += [
            (text, _BASELINE, b.tests[outcome])
            for text, b in result.prompt_baselines.items()
            if outcome in b.tests
        ]
        for alpha, name, test in _adjust(tests):
            if name is None:
                versus_zero[alpha] = test
            elif name is _BASELINE:
                result.prompt_baselines[alpha].tests[outcome] = test
            else:
                result.vs_controls[alpha][name][outcome] = test
    grouped: list[tuple[Any, str, PairedTest]] = [
        (alpha, name, g.paired)
        for alpha, groups in result.by_group.items()
        for name, g in groups.items()
        if g.paired is not None
    ]
    grouped += [
        ((_BASELINE, text), name, g.paired)
        for text, b in result.prompt_baselines.items()
        for name, g in b.by_group.items()
        if g.paired is not None
    ]
    for alpha, name, test in _adjust(grouped):
        if isinstance(alpha, tuple):  # a prompt baseline's group
            groups = result.prompt_baselines[alpha[1]].by_group
        else:
            groups = result.by_group[alpha]
        groups[name] = groups[name].with_paired(test)
    for control in result.controls.values():
        adjust_holm(control)
    return result
