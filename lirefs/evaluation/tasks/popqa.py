"""PopQA (akariasai/PopQA): long-tail entity facts, zero-shot; right when any possible answer
appears (case-insensitive, whole words) in the answer region."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .base import BadRow, Benchmark, Item, PromptParts, register
from .extract import contains_any, extract_region, flexible_region
from .loading import cell_list, cell_text, load_standard

__all__ = ["POPQA", "contains_correct", "parse_popqa_row", "qa_prompt"]


def parse_popqa_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A row with ``question`` and ``possible_answers`` (a list, or JSON text of one)."""
    question = cell_text(row, "question")
    answers = [a.strip() for a in cell_list(row.get("possible_answers"), "possible_answers")]
    answers = [a for a in answers if a]
    if not answers:
        raise BadRow("column 'possible_answers' holds no answer")
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=answers[0], aliases=tuple(answers[1:]))


def qa_prompt(item: Item, shots: Sequence[Item]) -> PromptParts:
    """``Q: ...\\nA: ...`` exemplars (worked solution or answer), then ``Q: item\\nA: ``."""
    turns = tuple((f"Q: {shot.question}\nA: ", shot.rationale or shot.answer) for shot in shots)
    return PromptParts("", turns, f"Q: {item.question}\nA: ")


def contains_correct(extracted: str | None, item: Item) -> bool:
    """Any accepted answer appears as whole words in the extracted text."""
    return contains_any(extracted, item.accepted, whole_words=True)


POPQA = register(
    Benchmark(
        name="popqa",
        kind="memory",
        description="PopQA long-tail entity facts, zero-shot, any possible answer in the output",
        source="akariasai/PopQA",
        config=(None,),
        eval_split="test",
        shot_split=None,
        n_shots=0,
        max_new_tokens=200,
        answer_type="contains",
        parse_eval=parse_popqa_row,
        parse_shot=None,
        prompt_parts=qa_prompt,
        extractor=extract_region,
        is_correct=contains_correct,
        flexible_extractor=flexible_region,
        loader=load_standard,
    )
)
