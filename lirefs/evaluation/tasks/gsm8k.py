"""GSM8K (openai/gsm8k): grade-school math, 8-shot chain of thought, numeric answer.

The worked answers of the train split end with ``#### <number>``; calculator annotations
(``<<48/2=24>>``) are removed and each exemplar ends with the paper's answer sentence
``The final answer is N.``, which the strict reading looks for (docs/method.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .base import BadRow, Benchmark, Item, PromptParts, final_answer_form, register
from .extract import extract_number, flexible_number, numbers_equal
from .loading import cell_number, cell_text, load_standard

__all__ = ["GSM8K", "numeric_correct", "numeric_prompt", "parse_gsm8k_row"]

_CALC = re.compile(r"<<[^<>]*>>")


def parse_gsm8k_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A GSM8K row (``question``, ``answer`` ending in ``#### N``) as an item with its rationale."""
    question = cell_text(row, "question")
    answer = cell_text(row, "answer")
    if "####" not in answer:
        raise BadRow("column 'answer' has no '#### <number>' final line")
    rationale, final = answer.rsplit("####", 1)
    gold = cell_number(final.strip(), "answer (after ####)")
    rationale = _CALC.sub("", rationale).strip()
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=gold, rationale=rationale)


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


GSM8K = register(
    Benchmark(
        name="gsm8k",
        kind="reasoning",
        description="GSM8K grade-school math, 8-shot chain of thought, numeric answer",
        source="openai/gsm8k",
        config=("main",),
        eval_split="test",
        shot_split="train",
        n_shots=8,
        max_new_tokens=200,
        answer_type="numeric",
        parse_eval=parse_gsm8k_row,
        parse_shot=parse_gsm8k_row,
        prompt_parts=numeric_prompt,
        extractor=extract_number,
        is_correct=numeric_correct,
        flexible_extractor=flexible_number,
        loader=load_standard,
        gold_form=final_answer_form,
    )
)
