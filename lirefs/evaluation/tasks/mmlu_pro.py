"""MMLU-Pro (TIGER-Lab/MMLU-Pro): up to ten options, 5-shot chain of thought per category."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .base import BadRow, Benchmark, Item, PromptParts, register
from .extract import LETTERS
from .formats import MULTIPLE_CHOICE, choice_correct, options_block
from .loading import cell_list, cell_text, load_standard

__all__ = ["MMLU_PRO", "parse_mmlu_pro_row"]

# re-exported for older imports; they live in .formats
__all__ += ["choice_correct", "options_block"]


def parse_mmlu_pro_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A row with ``question``, ``options`` (2-10, ``"N/A"`` dropped), ``answer`` and ``category``."""
    question = cell_text(row, "question")
    options = [o.strip() for o in cell_list(row.get("options"), "options")]
    options = [o for o in options if o and o != "N/A"]
    if not 2 <= len(options) <= 10:
        raise BadRow(f"column 'options' must hold 2 to 10 options, got {len(options)}")
    answer = cell_text(row, "answer").upper()
    if len(answer) != 1 or answer not in LETTERS[: len(options)]:
        raise BadRow(
            f"column 'answer' must be a letter A-{LETTERS[len(options) - 1]}, got {answer!r}"
        )
    index = row.get("answer_index")
    if index not in (None, "") and str(index).strip() != str(LETTERS.index(answer)):
        raise BadRow(f"answer_index {index!r} disagrees with answer {answer!r}")
    ident = str(row["question_id"]) if row.get("question_id") not in (None, "") else f"{n - 1}"
    cot = cell_text(row, "cot_content", required=False) or None
    return Item(
        id=ident,
        question=question,
        answer=answer,
        choices=tuple(options),
        rationale=cot,
        group=cell_text(row, "category"),
    )


def _parse_shot(row: Mapping[str, Any], where: str, n: int) -> Item:
    item = parse_mmlu_pro_row(row, where, n)
    if not item.rationale:
        raise BadRow("exemplar has no chain of thought in column 'cot_content'")
    return item


def _prompt(item: Item, shots: Sequence[Item]) -> PromptParts:
    preamble = (
        f"The following are multiple choice questions (with answers) about {item.group}. "
        'Think step by step and then finish your answer with "the answer is (X)" where X is '
        "the correct letter choice.\n\n"
    )
    turns = []
    for shot in shots:
        cot = (shot.rationale or "").strip()
        if not cot.startswith("A:"):
            cot = f"A: {cot}"
        turns.append((f"Q: {shot.question}\nOptions:\n{options_block(shot.choices)}\n", cot))
    question = (
        f"Q: {item.question}\nOptions:\n{options_block(item.choices)}\nA: Let's think step by step."
    )
    return PromptParts(preamble, tuple(turns), question)


def _gold(item: Item) -> str:
    # the prompt ends "A: Let's think step by step."; the exemplars end "The answer is (X)."
    return f" The answer is ({item.answer})."


MMLU_PRO = register(
    Benchmark(
        name="mmlu-pro",
        kind="reasoning",
        description="MMLU-Pro, 5-shot chain of thought per category, letter A-J",
        source="TIGER-Lab/MMLU-Pro",
        config=(None,),
        eval_split="test",
        shot_split="validation",
        n_shots=5,
        max_new_tokens=200,
        parse_eval=parse_mmlu_pro_row,
        parse_shot=_parse_shot,
        loader=load_standard,
        grouped=True,
        **MULTIPLE_CHOICE.with_(prompt_parts=_prompt, gold_form=_gold).fields(),
    )
)
