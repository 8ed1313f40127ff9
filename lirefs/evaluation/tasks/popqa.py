"""PopQA (akariasai/PopQA): long-tail entity facts, zero-shot; right when any possible answer
appears (case-insensitive, whole words) in the answer region."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import BadRow, Benchmark, Item, register
from .formats import CONTAINMENT, contains_correct, qa_prompt
from .loading import cell_list, cell_text, load_standard

__all__ = ["POPQA", "parse_popqa_row"]

# re-exported for older imports; they live in .formats
__all__ += ["contains_correct", "qa_prompt"]


def parse_popqa_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A row with ``question`` and ``possible_answers`` (a list, or JSON text of one)."""
    question = cell_text(row, "question")
    answers = [a.strip() for a in cell_list(row.get("possible_answers"), "possible_answers")]
    answers = [a for a in answers if a]
    if not answers:
        raise BadRow("column 'possible_answers' holds no answer")
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=answers[0], aliases=tuple(answers[1:]))


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
        parse_eval=parse_popqa_row,
        parse_shot=None,
        loader=load_standard,
        **CONTAINMENT.fields(),
    )
)
