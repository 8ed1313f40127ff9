"""GSM8K (openai/gsm8k): grade-school math, 8-shot chain of thought, numeric answer.

The worked answers of the train split end with ``#### <number>``; calculator annotations
(``<<48/2=24>>``) are removed and each exemplar ends with the paper's answer sentence
``The final answer is N.``, which the strict reading looks for (docs/method.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .base import BadRow, Benchmark, Item, register
from .formats import NUMERIC, numeric_correct, numeric_prompt
from .loading import cell_number, cell_text, load_standard

__all__ = ["GSM8K", "parse_gsm8k_row"]

# re-exported for older imports; they live in .formats
__all__ += ["numeric_correct", "numeric_prompt"]

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
        parse_eval=parse_gsm8k_row,
        parse_shot=parse_gsm8k_row,
        loader=load_standard,
        **NUMERIC.fields(),
    )
)
