"""C-Eval (ceval/ceval-exam), humanities subjects: letter A-D, 5-shot per subject, Chinese framing.

The Hub has one config per subject (``val`` items are scored: the test answers are not public;
``dev`` holds five exemplars with explanations). Local copies: the official ``ceval-exam.zip``
layout (``val/<subject>_val.csv``, ``dev/<subject>_dev.csv``), or one file of items with a
``subject`` column beside one of exemplars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...errors import DataError
from .base import BadRow, Benchmark, BenchmarkData, Item, PromptParts, register
from .extract import CEVAL_STOP, extract_ceval, flexible_letter_abcd
from .formats import MULTIPLE_CHOICE
from .loading import (
    TABLE_SUFFIXES,
    Rows,
    cell_text,
    collect_items,
    group_shots,
    hub_rows,
    local_files,
    read_table,
)

__all__ = ["CEVAL", "CEVAL_HUMANITIES", "load_ceval", "parse_ceval_row"]

#: C-Eval subjects of the "Humanities" category (ceval/ceval-exam configs) -> Chinese name.
CEVAL_HUMANITIES: dict[str, str] = {
    "modern_chinese_history": "近代史纲要",
    "ideological_and_moral_cultivation": "思想道德修养与法律基础",
    "logic": "逻辑学",
    "law": "法学",
    "chinese_language_and_literature": "中国语言文学",
    "art_studies": "艺术学",
    "professional_tour_guide": "导游资格",
    "legal_professional": "法律职业资格",
    "high_school_chinese": "高中语文",
    "high_school_history": "高中历史",
    "middle_school_history": "初中历史",
}


def parse_ceval_row(row: Mapping[str, Any], where: str, n: int) -> Item:
    """A row with ``question``, ``A``-``D``, ``answer`` and (optionally) ``subject``."""
    question = cell_text(row, "question")
    choices = tuple(cell_text(row, letter) for letter in "ABCD")
    answer = cell_text(row, "answer").upper()
    if answer not in ("A", "B", "C", "D"):
        raise BadRow(f"column 'answer' must be one of A, B, C, D, got {answer!r}")
    subject = cell_text(row, "subject", required=False) or None
    if subject is not None and subject not in CEVAL_HUMANITIES:
        raise BadRow(
            f"subject {subject!r} is not a C-Eval humanities subject "
            f"({', '.join(CEVAL_HUMANITIES)})"
        )
    ident = str(row["id"]).strip() if row.get("id") not in (None, "") else f"{n - 1}"
    if subject is not None:
        ident = f"{subject}-{ident}"
    explanation = cell_text(row, "explanation", required=False) or None
    return Item(
        id=ident,
        question=question,
        answer=answer,
        choices=choices,
        rationale=explanation,
        group=subject,
    )


def _prompt(item: Item, shots: Sequence[Item]) -> PromptParts:
    subject = CEVAL_HUMANITIES.get(item.group or "", item.group or "")
    preamble = f"以下是中国关于{subject}考试的单项选择题，请选出其中的正确答案。\n\n"

    def block(q: Item) -> str:
        opts = "\n".join(
            f"{letter}. {text}" for letter, text in zip("ABCD", q.choices, strict=True)
        )
        return f"问题：{q.question}\n{opts}\n答案：让我们一步一步思考，\n"

    turns = []
    for shot in shots:
        worked = f"{shot.rationale.strip()}\n" if shot.rationale else ""
        turns.append((block(shot), f"{worked}所以答案是{shot.answer}。"))
    return PromptParts(preamble, tuple(turns), block(item))


def _with_subject(rows: Rows, subject: str) -> Rows:
    for where, row in rows:
        yield where, {**row, "subject": row.get("subject") or subject}


def load_ceval(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    """Every humanities subject: from the Hub, the official folder layout, or a file pair."""
    skipped: list[str] = []
    items: list[Item] = []
    exemplars: list[Item] = []

    def add(rows_items: Rows, rows_shots: Rows, subject: str) -> None:
        items.extend(
            collect_items(
                bench, _with_subject(rows_items, subject), parse_ceval_row, skip_bad_rows, skipped
            )
        )
        exemplars.extend(
            collect_items(
                bench, _with_subject(rows_shots, subject), parse_ceval_row, skip_bad_rows, skipped
            )
        )

    if path is None:
        for subject in CEVAL_HUMANITIES:
            add(hub_rows(bench, subject, "val"), hub_rows(bench, subject, "dev"), subject)
        source = f"{bench.source} (humanities: val items, dev exemplars)"
        return BenchmarkData(bench, items, group_shots(bench, exemplars), source, skipped)

    if path.is_dir():
        # The official ceval-exam.zip layout: val/<subject>_val.csv and dev/<subject>_dev.csv.
        missing = []
        for subject in CEVAL_HUMANITIES:
            files = {}
            for split in ("val", "dev"):
                hits = [
                    p
                    for p in sorted(path.rglob(f"{subject}_{split}.*"))
                    if p.suffix.lower() in TABLE_SUFFIXES
                ]
                if len(hits) != 1:
                    missing.append(f"{subject}_{split}")
                    continue
                files[split] = hits[0]
            if len(files) != 2:
                continue
            add(read_table(files["val"]), read_table(files["dev"]), subject)
        if missing:
            raise DataError(
                f"{path} lacks (or has several of) {', '.join(missing)} (.csv/.jsonl/.tsv/"
                ".parquet); point --data-path at the unzipped ceval-exam folder, or at one file "
                "of items with a 'subject' column"
            )
        source = f"{path} (val items, dev exemplars)"
        return BenchmarkData(bench, items, group_shots(bench, exemplars), source, skipped)

    eval_file, shot_file = local_files(bench, path)
    if shot_file is None:  # C-Eval is 5-shot: local_files always finds the exemplar file or fails
        raise DataError(f"{bench.name} needs an exemplar file beside {eval_file}")
    for parsed, file in ((items, eval_file), (exemplars, shot_file)):
        rows = collect_items(bench, read_table(file), parse_ceval_row, skip_bad_rows, skipped)
        bad = [r.id for r in rows if r.group is None]
        if bad:
            raise DataError(
                f"{file} needs a 'subject' column (a C-Eval humanities subject) in every row; "
                f"rows {bad[:5]} have none"
            )
        parsed += rows
    return BenchmarkData(
        bench, items, group_shots(bench, exemplars), f"{eval_file} + {shot_file}", skipped
    )


def _gold(item: Item) -> str:
    # the exemplars' answer phrase after the worked explanation
    return f"所以答案是{item.answer}。"


CEVAL = register(
    Benchmark(
        name="ceval-humanities",
        kind="memory",
        description="C-Eval humanities subjects, 5-shot per subject, letter A-D",
        source="ceval/ceval-exam",
        config=tuple(CEVAL_HUMANITIES),
        eval_split="val",
        shot_split="dev",
        n_shots=5,
        max_new_tokens=200,
        parse_eval=parse_ceval_row,
        parse_shot=parse_ceval_row,
        loader=load_ceval,
        grouped=True,
        stop=CEVAL_STOP,
        **MULTIPLE_CHOICE.with_(
            prompt_parts=_prompt,
            extractor=extract_ceval,
            flexible_extractor=flexible_letter_abcd,
            gold_form=_gold,
        ).fields(),
    )
)
