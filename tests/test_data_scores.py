"""Questions labelled by the paper's score column (MMLU-Pro files with ``memory_reason_score``),
checked against the files read with the standard library's json and csv readers."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import lirefs
from lirefs.errors import DataError

# rows in the layout of the paper's labelled MMLU-Pro files
ROWS = [
    {
        "question_id": 70,
        "question": "Typical advertising regulatory bodies suggest that adverts must not:",
        "options": ["Safe practices", "Unsafe practices"],
        "answer": "I",
        "answer_index": 8,
        "category": "business",
        "src": "ori_mmlu-business_ethics",
        "memory_reason_score": 0.2,
    },
    {
        "question_id": 71,
        "question": "A store buys 12 boxes of 30 pens and sells them at $2 each. Revenue?",
        "options": ["$720", "$360"],
        "answer": "A",
        "answer_index": 0,
        "category": "math",
        "src": "stemez-Business",
        "memory_reason_score": 0.9,
    },
    {
        "question_id": 72,
        "question": "Which hormone regulates blood sugar?",
        "options": ["Insulin", "Gastrin"],
        "answer": "A",
        "answer_index": 0,
        "category": "biology",
        "src": "ori_mmlu-biology",
        "memory_reason_score": 0.5,  # not above the threshold: memory
    },
    {
        "question_id": 73,
        "question": "If 3x + 5 = 20, what is x?",
        "options": ["5", "3"],
        "answer": "A",
        "answer_index": 0,
        "category": "math",
        "src": "theoremqa",
        "memory_reason_score": 0.75,
    },
]


def _want(path: Path, threshold: float) -> dict[str, list[str]]:
    """The split by the paper's rule, from the file read with json/csv."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(path.open(newline="")))
    return {
        "reasoning": [r["question"] for r in rows if float(r["memory_reason_score"]) > threshold],
        "memory": [r["question"] for r in rows if float(r["memory_reason_score"]) <= threshold],
    }


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    jsonl = tmp_path / "mmlu_pro_labelled.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    table = tmp_path / "mmlu_pro_labelled.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        writer.writeheader()
        writer.writerows({**r, "options": "|".join(r["options"])} for r in ROWS)
    return [jsonl, table]


@pytest.mark.parametrize("threshold", [0.5, 0.8])
def test_score_column_splits_as_the_paper(files: list[Path], threshold: float) -> None:
    for path in files:
        sets = lirefs.data.load(path, score_column="memory_reason_score", threshold=threshold)
        want = _want(path, threshold)
        assert [q.text for q in sets.reasoning] == want["reasoning"]
        assert [q.text for q in sets.memory] == want["memory"]
        assert sets.reasoning[0].answer == "A"


def test_score_column_errors_are_clear(files: list[Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no 'score' (field|column)"):
        lirefs.data.load(files[0], score_column="score")
    with pytest.raises(DataError, match="no 'score' column"):
        lirefs.data.load(files[1], score_column="score")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**ROWS[0], "memory_reason_score": "high"}) + "\n")
    with pytest.raises(DataError, match="line 1: 'memory_reason_score' is 'high'"):
        lirefs.data.load(bad, score_column="memory_reason_score")
    with pytest.raises(DataError, match="files only"):
        lirefs.data.load("builtin", score_column="memory_reason_score")
