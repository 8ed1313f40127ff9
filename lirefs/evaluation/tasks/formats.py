"""Answer formats: how a benchmark's prompt ends, how its answer is read and judged.

Every benchmark reads its answers one of three ways, each a named :class:`AnswerFormat` bundling
the five callables a :class:`~.base.Benchmark` needs (prompt builder, strict and flexible
extractors, verdict, gold continuation):

* :data:`NUMERIC` (GSM8K, MGSM, built-in arithmetic): ``Q: ...\\nA: `` worked exemplars ending in
  ``The final answer is N.``; the answer is that number, compared exactly as numbers;
* :data:`MULTIPLE_CHOICE` (MMLU-Pro, C-Eval): an option letter, compared with the gold letter;
  each benchmark brings its own prompt and answer phrase (:meth:`AnswerFormat.with_`);
* :data:`CONTAINMENT` (PopQA, built-in facts): right when any accepted answer appears as whole
  words (case-insensitively) in the answer region.

A task module takes its format and overrides what differs::

    register(Benchmark(name=..., ..., **MULTIPLE_CHOICE.with_(prompt_parts=_prompt).fields()))

Task modules import this module and :mod:`.base` only, never one another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .base import FINAL_ANSWER, Item, PromptParts, final_answer_form
from .extract import (
    LETTERS,
    contains_any,
    extract_choice,
    extract_number,
    extract_region,
    flexible_choice,
    flexible_number,
    flexible_region,
    numbers_equal,
)

__all__ = [
    "CONTAINMENT",
    "FORMATS",
    "MULTIPLE_CHOICE",
    "NUMERIC",
    "AnswerFormat",
    "choice_correct",
    "contains_correct",
    "numeric_correct",
    "numeric_prompt",
    "options_block",
    "qa_prompt",
]


def numeric_prompt(item: Item, shots: Sequence[Item]) -> PromptParts:
    """``Q: ...\\nA: <worked answer> The final answer is N.`` exemplars, then ``Q: item\\nA: ``."""
    turns = []
    for shot in shots:
        worked = (shot.rationale or "").strip()
        if extract_number(worked) is None:  # the exemplar states its answer in the paper's words
            worked = f"{worked} The final answer is {shot.answer}.".strip()
        turns.append((f"Q: {shot.question}\nA: ", worked))
    return PromptParts("", tuple(turns), f"Q: {item.question}\nA: ")


def numeric_correct(extracted: str | None, item: Item) -> bool:
    """Exact numeric equality with the gold answer."""
    return numbers_equal(extracted, item.answer)


def qa_prompt(item: Item, shots: Sequence[Item]) -> PromptParts:
    """``Q: ...\\nA: ...`` exemplars (worked solution or answer), then ``Q: item\\nA: ``."""
    turns = tuple((f"Q: {shot.question}\nA: ", shot.rationale or shot.answer) for shot in shots)
    return PromptParts("", turns, f"Q: {item.question}\nA: ")


def contains_correct(extracted: str | None, item: Item) -> bool:
    """Any accepted answer appears as whole words in the extracted text."""
    return contains_any(extracted, item.accepted, whole_words=True)


def options_block(choices: Sequence[str]) -> str:
    """``(A) first\\n(B) second ...``."""
    return "\n".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def choice_correct(extracted: str | None, item: Item) -> bool:
    """The extracted letter is the gold letter."""
    return extracted is not None and extracted == item.answer


@dataclass(frozen=True)
class AnswerFormat:
    """One way of prompting for, reading and judging an answer.

    Attributes:
        name: the benchmark's ``answer_type``: ``"numeric"``, ``"choice"`` or ``"contains"``.
        prompt_parts: ``(item, exemplars) -> PromptParts``.
        extractor: ``(output, stop) -> answer or None``, the strict reading.
        is_correct: ``(extracted answer, item) -> bool``.
        flexible_extractor: ``(output, stop) -> answer or None``, the flexible reading.
        gold_form: ``item -> gold continuation`` (``None``: the gold answer itself).
        answer_marker: the phrase the exemplars' worked answers end with before the answer
            (``"The final answer is"``), ``None`` for short-answer formats.
    """

    name: str
    prompt_parts: Callable[[Item, Sequence[Item]], PromptParts]
    extractor: Callable[[str, str], str | None]
    is_correct: Callable[[str | None, Item], bool]
    flexible_extractor: Callable[[str, str], str | None]
    gold_form: Callable[[Item], str] | None = None
    answer_marker: str | None = None

    def with_(self, **changes: Any) -> AnswerFormat:
        """This format with some callables replaced (a benchmark's own prompt or phrase)."""
        return replace(self, **changes)

    def fields(self) -> dict[str, Any]:
        """The :class:`~.base.Benchmark` keywords this format sets (``answer_type`` and the five
        callables)."""
        return {
            "answer_type": self.name,
            "prompt_parts": self.prompt_parts,
            "extractor": self.extractor,
            "is_correct": self.is_correct,
            "flexible_extractor": self.flexible_extractor,
            "gold_form": self.gold_form,
            "answer_marker": self.answer_marker,
        }


#: A number after ``The final answer is``, compared exactly as a number.
NUMERIC = AnswerFormat(
    name="numeric",
    prompt_parts=numeric_prompt,
    extractor=extract_number,
    is_correct=numeric_correct,
    flexible_extractor=flexible_number,
    gold_form=final_answer_form,
    answer_marker=FINAL_ANSWER,
)

#: An option letter after ``the answer is``; benchmarks set their own prompt and gold phrase.
MULTIPLE_CHOICE = AnswerFormat(
    name="choice",
    prompt_parts=qa_prompt,
    extractor=extract_choice,
    is_correct=choice_correct,
    flexible_extractor=flexible_choice,
)

#: Any accepted answer as whole words in the answer region.
CONTAINMENT = AnswerFormat(
    name="contains",
    prompt_parts=qa_prompt,
    extractor=extract_region,
    is_correct=contains_correct,
    flexible_extractor=flexible_region,
)

#: The formats by name.
FORMATS: dict[str, AnswerFormat] = {f.name: f for f in (NUMERIC, MULTIPLE_CHOICE, CONTAINMENT)}
