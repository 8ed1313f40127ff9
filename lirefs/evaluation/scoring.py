"""Scoring one output: the answer it gives, both readings' verdicts and whether it degenerated.

The same rule scores a fresh generation (:func:`score_output`) and a record kept on disk
(:func:`rescore`): a resumed record's verdicts are always re-derived from its kept ``output`` with
the current extraction rule, never read from the file.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .outcomes import degeneration_reasons
from .tasks.extract import THINK_CLOSE

if TYPE_CHECKING:  # records imports this module when it resumes
    from .records import Record
    from .tasks import Benchmark, Item

__all__ = ["read_answer", "rescore", "score_output", "verdicts", "working_prefix"]


def read_answer(text: str, thinking: bool) -> tuple[dict[str, Any], str | None]:
    """``(fields, answer)`` of a generated ``text``.

    Without thinking the answer is the whole text (``fields = {"output": text}``). With thinking
    it is what follows ``</think>`` (``None`` when the think block never closes): ``fields`` holds
    ``thinking`` (the block), ``think_closed`` and ``output`` (the answer part, ``""`` if none).
    """
    if not thinking:
        return {"output": text}, text
    close = text.find(THINK_CLOSE)
    answer = None if close < 0 else text[close + len(THINK_CLOSE) :]
    fields = {
        "thinking": text if close < 0 else text[:close],
        "think_closed": close >= 0,
        "output": answer or "",
    }
    return fields, answer


def verdicts(bench: Benchmark, item: Item, answer: str | None) -> dict[str, Any]:
    """Both readings of ``answer`` and their verdicts (no answer: ``None`` and wrong)."""
    extracted, correct = bench.score(answer, item) if answer is not None else (None, False)
    flexible, correct_flexible = (
        bench.score_flexible(answer, item) if answer is not None else (None, False)
    )
    return {
        "extracted": extracted,
        "extracted_flexible": flexible,
        "correct": correct,
        "correct_flexible": correct_flexible,
    }


def score_output(
    bench: Benchmark, item: Item, text: str, thinking: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(answer fields, verdict fields)`` of one generated ``text`` (see :func:`read_answer`,
    :func:`verdicts`); the verdict fields also hold ``degenerate`` and ``degenerate_reasons``
    (read from the whole text)."""
    fields, answer = read_answer(text, thinking)
    scored = verdicts(bench, item, answer)
    reasons = degeneration_reasons(text)
    scored["degenerate"], scored["degenerate_reasons"] = bool(reasons), reasons
    return fields, scored


def working_prefix(text: str, marker: str, stop: str | None, thinking: bool) -> str | None:
    """The generated ``text`` up to and including the first ``marker`` of its answer region, or
    ``None`` when the output never reaches it.

    The answer region is the text before the first ``stop`` (where the model starts a question
    of its own; ``None``: no stop string) and, with thinking, after ``</think>`` (an unclosed
    think block has none); the prefix keeps everything before the marker, think block included,
    since that is what the model conditioned on.
    """
    start = 0
    if thinking:
        close = text.find(THINK_CLOSE)
        if close < 0:
            return None
        start = close + len(THINK_CLOSE)
    end = len(text)
    if stop:
        cut = text.find(stop, start)
        end = cut if cut >= 0 else end
    at = text.find(marker, start, end)
    if at < 0:
        return None
    return text[: at + len(marker)]


def rescore(record: Record, bench: Benchmark, item: Item) -> Record:
    """``record`` with its verdicts, item fields and degeneration re-derived from its ``output``.

    A records file is data, not a verdict: ``extracted``, ``correct`` and their flexible twins
    are read again from the kept output with the current rule (an unclosed think block is no
    answer), the gold, accepted answers and group come from the current item, and degeneration
    is the current rule's verdict on the output.
    """
    answer = None if record.think_closed is False else record.output
    scored = verdicts(bench, item, answer)
    reasons = degeneration_reasons(record.output)
    return replace(
        record,
        id=item.id,
        gold=item.answer,
        accepted=list(item.accepted) if item.aliases else None,
        group=item.group,
        degenerate=bool(reasons),
        degenerate_reasons=reasons,
        **scored,
    )
