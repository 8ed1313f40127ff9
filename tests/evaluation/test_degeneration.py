"""The degeneration rule: real collapsed and fluent SmolLM2 outputs, and each rule's pattern.

tests/data/degeneration.jsonl holds real outputs of SmolLM2-135M-Instruct (greedy, paper-mode
steering along a direction built from built-in prompts; each row names how it was made), each
labelled by reading it: collapsed (repetition, punctuation or whitespace runs) or fluent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lirefs.errors import DataError
from lirefs.evaluation.outcomes import degeneration_reasons, is_degenerate

FIXTURES = Path(__file__).parents[1] / "data" / "degeneration.jsonl"


def _fixtures() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in FIXTURES.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if "text" in r]


@pytest.mark.parametrize("row", _fixtures(), ids=lambda r: r["name"])
def test_real_outputs_are_flagged_as_labelled(row: dict[str, Any]) -> None:
    assert is_degenerate(row["text"]) is row["degenerate"], degeneration_reasons(row["text"])


def test_fixtures_hold_both_kinds() -> None:
    labels = [r["degenerate"] for r in _fixtures()]
    assert labels.count(True) >= 4 and labels.count(False) >= 4


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("!!!!!!!!!!!!", "symbol_run"),
        ("The answer is\n\n\n\n\n\n\n\n\n\n\n\n", "symbol_run"),
        ("5555555555555555", "repetition"),
        ("S!S!S!S!S!S", "repetition"),
        ("Paris. Paris. Paris. Paris.", "repetition"),
        (" ".join(["the cat", "a cat", "the dog"] * 6), "low_diversity"),
    ],
)
def test_each_rule_fires_on_its_pattern(text: str, reason: str) -> None:
    assert reason in degeneration_reasons(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "42",
        "Paris.",
        "...",
        "1,000,000",
        "1000000000",
        "3 + 3 + 3 = 9",
        "The final answer is 1111.",
        "He pays 4 x 3 = 12 dollars, so his change is 20 - 12 = 8. The final answer is 8.",
    ],
)
def test_short_or_fluent_texts_are_not_flagged(text: str) -> None:
    assert degeneration_reasons(text) == []


def test_degeneration_rejects_non_strings() -> None:
    with pytest.raises(DataError, match="string"):
        is_degenerate(None)  # type: ignore[arg-type]
