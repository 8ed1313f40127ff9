"""Where a generated row ends: EOS ids, stop strings, and the warning for a stop never met.

Every generation engine (``generate``, the evaluation's shared-prefix path) cuts its rows with
``trim_row``, so they end at the same token whether or not HF stopped the row early.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from ..errors import DataError, StopStringWarning
from ..inputs import check_stop

__all__ = [
    "check_stop",
    "eos_ids",
    "trim_row",
    "unmatched_stops",
    "warn_unmatched_stops",
]


def eos_ids(model: Any) -> set[int]:
    """The ids HF ``generate`` stops a row on (generation config, else the tokenizer's EOS)."""
    config = getattr(model._module, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if eos is None:
        eos = model.tokenizer.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


def trim_row(
    row: torch.Tensor | Sequence[int], eos: set[int], stop: Sequence[str], tokenizer: Any
) -> tuple[list[int], bool]:
    """``(ids, stopped)``: a row's generated ids cut before the first EOS (``eos_ids``), then
    after the token that completes the first stop string; ``stopped`` says either happened.

    Every generation path (``generate``, evaluation's shared-prefix path) cuts its rows here, so
    they end at the same token.
    """
    return _cut_at_stop(*_trim(row, eos), stop, tokenizer)


def _trim(row: torch.Tensor | Sequence[int], eos: set[int]) -> tuple[list[int], bool]:
    ids = [int(t) for t in (row.tolist() if isinstance(row, torch.Tensor) else row)]
    for i, t in enumerate(ids):
        if t in eos:
            return ids[:i], True
    return ids, False


def _cut_at_stop(
    ids: list[int], stopped: bool, stop: Sequence[str], tokenizer: Any
) -> tuple[list[int], bool]:
    """``ids`` up to the first token whose decoded prefix contains a stop string.

    Containment only grows with the prefix, so the cut is found by bisection (about log2(len)
    decodes per row). Applied to local and remote outputs alike, so both end at the same token
    whether or not HF stopped the row early.
    """
    if not stop or not ids:
        return ids, stopped

    def hit(k: int) -> bool:
        text = tokenizer.decode(ids[:k], skip_special_tokens=True)
        return any(s in text for s in stop)

    if not hit(len(ids)):
        return ids, stopped
    lo, hi = 1, len(ids)  # hit(hi) is true; find the smallest such k
    while lo < hi:
        mid = (lo + hi) // 2
        if hit(mid):
            hi = mid
        else:
            lo = mid + 1
    return ids[:lo], True


def unmatched_stops(texts: Sequence[str], stop: Sequence[str] | None) -> list[str]:
    """The strings of ``stop`` that occur in none of ``texts`` (generated texts), in order."""
    return [s for s in stop or () if not any(s in text for text in texts)]


def warn_unmatched_stops(
    texts: Sequence[str],
    n_tokens: Sequence[int],
    stop: Sequence[str] | None,
    max_new_tokens: int,
    *,
    what: str = "outputs",
    stacklevel: int = 2,
    given: bool = True,
) -> list[str]:
    """Warn (``StopStringWarning``) when a stop string occurred in no text and rows ran long.

    Args:
        texts: the generated texts of a run (``GenerationOutput.texts``, all alphas).
        n_tokens: each text's number of generated tokens (same order).
        stop: the run's stop strings.
        max_new_tokens: the run's budget; a row of that many tokens ran to it.
        what: how the message names the texts (e.g. ``"gsm8k outputs"``).
        given: the user typed ``stop`` (the message then also suggests checking its quoting);
            ``False`` for a default stop such as a benchmark's own, where the cause can only be
            the token budget.

    Returns:
        The unmatched stop strings (empty when no warning was given).
    """
    if len(texts) != len(n_tokens):
        raise DataError(f"{len(texts)} texts but {len(n_tokens)} token counts")
    full = sum(n >= max_new_tokens for n in n_tokens)
    missing = unmatched_stops(texts, stop)
    if missing and full:
        names = ", ".join(repr(s) for s in missing)
        fix = (
            "check the string (in a shell, $'\\n' gives a newline, '\\n' two characters) or raise "
            "max_new_tokens"
            if given
            else "the stop string is the default one, so those outputs ran out of token budget "
            "before it: raise max_new_tokens (--max-new-tokens)"
        )
        warnings.warn(
            f"stop string {names} occurred in none of the {len(texts)} {what}, and {full} ran "
            f"to the budget of {max_new_tokens} new tokens: those texts are kept whole; {fix}",
            StopStringWarning,
            stacklevel=stacklevel,
        )
        return missing
    return []
