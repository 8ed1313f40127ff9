"""The prompt-length confound: length alone as a classifier, and length-matched subsets.

Reasoning prompts tend to be longer than recall prompts, so a direction could encode length. These
baselines say how far length alone gets (``length_auroc``, in its better orientation) and pick a
subset of held-out prompts whose lengths match one to one, on which the direction must still
separate the classes to be more than a length detector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..errors import DataError
from .stats import auroc, class_labels

__all__ = ["LengthBaseline", "Lengths", "check_lengths", "length_baseline", "length_matched_pairs"]

#: Prompt lengths: a list or 1-D array of numbers, one per prompt.
Lengths = Sequence[float] | np.ndarray


class LengthBaseline(NamedTuple):
    """Prompt length as the classifier, on all held-out prompts and on the length-matched subset.

    Attributes:
        auroc: AUROC of length alone in its better orientation, ``max(auc, 1 - auc)``.
        auroc_oriented: the same with "longer = reasoning".
        pairs: number of one-to-one length-matched (reasoning, memory) pairs.
        matched: indices into the concatenated ``[reasoning..., memory...]`` prompts of the matched
            subset (reasoning halves first), or ``None`` with fewer than 2 pairs.
        matched_length_auroc: length-alone AUROC (better orientation) on the matched subset, or
            ``None`` without one; near 0.5 means the matching removed the length difference.
    """

    auroc: float
    auroc_oriented: float
    pairs: int
    matched: np.ndarray | None
    matched_length_auroc: float | None


def check_lengths(
    len_r: Lengths | None,
    len_m: Lengths | None,
    n_r: int,
    n_m: int,
    names: tuple[str, str] = ("test_reasoning_lengths", "test_memory_lengths"),
) -> tuple[np.ndarray, np.ndarray] | None:
    """Both classes' lengths as ``[n_r]`` / ``[n_m]`` float64 arrays, or ``None`` when neither.

    Raises:
        DataError: only one list given, a list of the wrong size, or values that are not finite
            non-negative numbers.
    """
    if len_r is None and len_m is None:
        return None
    if len_r is None or len_m is None:
        raise DataError(f"give both {names[0]} and {names[1]}, or neither; got only one")
    out = []
    for name, values, n in ((names[0], len_r, n_r), (names[1], len_m, n_m)):
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{name} must be numbers (one length per prompt), got {values!r:.80}"
            ) from None
        if arr.shape != (n,):
            raise DataError(
                f"{name} has shape {arr.shape}, expected ({n},): one length per held-out prompt"
            )
        if not np.isfinite(arr).all() or (arr < 0).any():
            raise DataError(f"{name} must be finite non-negative numbers")
        out.append(arr)
    return out[0], out[1]


def length_matched_pairs(
    reasoning_lengths: Lengths, memory_lengths: Lengths, *, caliper: float = 0.1
) -> list[tuple[int, int]]:
    """Pair reasoning and memory prompts of similar length, one to one.

    Two prompts match when ``|a - b| <= caliper * max(a, b)``. Both lists are walked in length
    order and each prompt is paired with the nearest unused partner inside the caliper; in one
    dimension this greedy walk finds the largest possible set of matched pairs.

    Args:
        reasoning_lengths: ``[n_r]`` lengths.
        memory_lengths: ``[n_m]`` lengths (same unit).
        caliper: allowed relative length difference.

    Returns:
        ``(i, j)`` pairs: reasoning index ``i`` matched with memory index ``j``.
    """
    r = np.asarray(reasoning_lengths, dtype=np.float64)
    m = np.asarray(memory_lengths, dtype=np.float64)
    r_order, m_order = np.argsort(r, kind="stable"), np.argsort(m, kind="stable")
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < len(r_order) and j < len(m_order):
        a, b = r[r_order[i]], m[m_order[j]]
        if abs(a - b) <= caliper * max(abs(a), abs(b)):
            pairs.append((int(r_order[i]), int(m_order[j])))
            i += 1
            j += 1
        elif a < b:
            i += 1
        else:
            j += 1
    return pairs


def length_baseline(len_r: np.ndarray, len_m: np.ndarray, *, caliper: float) -> LengthBaseline:
    """Length alone as the classifier, and the length-matched subset (see ``LengthBaseline``).

    Args:
        len_r: ``[n_r]`` reasoning prompt lengths (from ``check_lengths``).
        len_m: ``[n_m]`` memory prompt lengths, same unit.
        caliper: relative length difference allowed within a matched pair.
    """
    n_r = len(len_r)
    labels = class_labels(n_r, len(len_m))
    all_len = np.concatenate([len_r, len_m])
    oriented = auroc(labels, all_len)
    pairs = length_matched_pairs(len_r, len_m, caliper=caliper)
    matched: np.ndarray | None = None
    matched_auroc: float | None = None
    if len(pairs) >= 2:
        matched = np.array([i for i, _ in pairs] + [n_r + j for _, j in pairs])
        m_auc = auroc(labels[matched], all_len[matched])
        matched_auroc = max(m_auc, 1.0 - m_auc)
    return LengthBaseline(
        auroc=max(oriented, 1.0 - oriented),
        auroc_oriented=oriented,
        pairs=len(pairs),
        matched=matched,
        matched_length_auroc=matched_auroc,
    )
