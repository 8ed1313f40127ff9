"""MGSM (juletxara/mgsm): GSM8K translated into ten languages, 8-shot, numeric answer.

Local copies may be the Hub's files or MGSM's original headerless TSV files (``question`` and
``answer_number`` columns; the first row is an item, not a header).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .base import BadRow, Benchmark, Item, register
from .formats import NUMERIC
from .loading import cell_number, cell_text, load_standard

__all__ = ["MGSM_LANGUAGES", "parse_mgsm_row", "parse_mgsm_shot"]

#: MGSM languages (juletxara/mgsm configs).
MGSM_LANGUAGES = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")

_LABEL = re.compile(r"^[^\n:：]{1,30}[:：]\s*")


def parse_mgsm_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A row with ``question``, ``answer_number`` and optionally a worked ``answer``."""
    question = cell_text(row, "question")
    gold = cell_number(row.get("answer_number"), "answer_number")
    rationale = cell_text(row, "answer", required=False) or None
    ident = str(row["id"]) if row.get("id") not in (None, "") else f"{n - 1}"
    return Item(id=ident, question=question, answer=gold, rationale=rationale)


def parse_mgsm_shot(row: Mapping[str, Any], where: str, n: int) -> Item:
    """An exemplar row: needs a worked answer; its localised field labels are dropped."""
    item = parse_mgsm_row(row, where, n)
    if not item.rationale:
        raise BadRow("exemplar has no worked answer in column 'answer'")
    # The train split prefixes both fields with a localised label ("Question:", "问题：",
    # "Step-by-Step Answer:", "逐步解答："); drop it so exemplars match the Q:/A: framing.
    return Item(
        id=item.id,
        question=_LABEL.sub("", item.question, count=1),
        answer=item.answer,
        rationale=_LABEL.sub("", item.rationale or "", count=1),
    )


for _lang in MGSM_LANGUAGES:
    register(
        Benchmark(
            name=f"mgsm-{_lang}",
            kind="reasoning",
            description=f"MGSM ({_lang}) translated GSM8K, 8-shot chain of thought, numeric answer",
            source="juletxara/mgsm",
            config=(_lang,),
            eval_split="test",
            shot_split="train",
            n_shots=8,
            max_new_tokens=200,
            parse_eval=parse_mgsm_row,
            parse_shot=parse_mgsm_shot,
            loader=load_standard,
            columns=("question", "answer_number"),
            **NUMERIC.fields(),
        )
    )
