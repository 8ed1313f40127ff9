"""Strict and flexible answer readings per benchmark family, on realistic and adversarial outputs.

Expected values are written by hand from what a reader of the output would take as the answer;
"numbers whole or not at all": a fraction is its value, a time or a range is no answer, never a
prefix of it.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

import lirefs
from lirefs.evaluation.tasks import Item
from lirefs.evaluation.tasks.extract import read_number, split_thinking

GSM = lirefs.get_benchmark("gsm8k")
MMLU = lirefs.get_benchmark("mmlu-pro")
CEVAL = lirefs.get_benchmark("ceval-humanities")
POPQA = lirefs.get_benchmark("popqa")
FACTS = lirefs.get_benchmark("builtin-facts")


@pytest.mark.parametrize(
    ("output", "strict", "flexible"),
    [
        ("The final answer is 1/2.", "0.5", "0.5"),
        ("The final answer is 2/3", "2/3", "2/3"),
        ("The final answer is 3:45.", None, None),  # a time is not the number 3
        ("The final answer is 3-5 apples.", None, None),  # a range
        ("The final answer is 2023-01-05.", None, None),  # a date
        ("The final answer is 1.2.3", None, None),
        ("The answer is 18.", None, "18"),
        ("\\boxed{18}", None, "18"),
        ("So she pays **18** dollars.", None, "18"),
        ("The final answer is **18**.", "18", "18"),
        ("The final answer is $\\boxed{72}$.", "72", "72"),
        ("She earns $1,234.50 in total. The final answer is $1,234.50.", "1234.5", "1234.5"),
        ("The final answer is −5.", "-5", "-5"),  # unicode minus
        ("The final answer is +7", "7", "7"),
        ("The final answer is 25%.", "25", "25"),
        ("The final answer is 18kg.", "18", "18"),
        ("The final answer is 1 1/2 cups.", "1.5", "1.5"),
        ("The final answer is 12,5", None, None),  # no thousands grouping: not a number
        ("The final answer is 1e5", None, None),
        ("The final answer is eighteen.", None, None),
        ("I used 3 boxes, each 1/4 full, so 3/4 in all.", None, "0.75"),
        ("It takes 2 hours, arriving at 3:45.", None, None),  # the last number is a time
        ("COVID-19 cases rose.", None, None),  # a number inside a word is none
        ("Step 1: 4 + 5 = 9. \\boxed{\\frac{9}{2}}", None, "4.5"),
        ("\\boxed{18 \\text{ dollars}}", None, "18"),
        ("\\boxed{3:45}", None, None),  # the box decides: no fallback to earlier numbers
        ("\\boxed{2, 3}", None, None),  # two numbers in the box
        ("First 5, then 7.\nQ: What is 2+2?\nA: 4", None, "7"),  # the model's own exemplar cut
        ("The final answer is 3. The final answer is 4.", "3", "4"),  # strict: first; flex: last
        ("<think>maybe 12? no, 14</think>The final answer is 13.", "13", "13"),
        ("<think>The final answer is 12 ... still thinking", None, None),  # unclosed think
    ],
)
def test_numeric_readings(output: str, strict: str | None, flexible: str | None) -> None:
    assert GSM.extract(output) == strict
    assert GSM.extract_flexible(output) == flexible


@pytest.mark.parametrize(
    ("output", "strict", "flexible"),
    [
        ("Let's think. The answer is (C).", "C", "C"),
        ("Options B and D are wrong, so it must be (A).", None, "A"),
        ("Thus \\boxed{D}", None, "D"),
        ("\\boxed{(B)}", None, "B"),
        ("\\boxed{\\text{E}}", None, "E"),
        ("I think B. A cat would not do that.", None, "B"),  # "A cat": an article, not a letter
        ("I believe the correct option is **F**", None, "F"),
        ("the answer is Correct", None, None),
        ("The answer is (A). Wait, the answer is (B).", "A", "B"),
        ("None of these fit.", None, None),
        ("The answer is (K)", None, None),  # no such option letter
    ],
)
def test_choice_readings(output: str, strict: str | None, flexible: str | None) -> None:
    assert MMLU.extract(output) == strict
    assert MMLU.extract_flexible(output) == flexible


@pytest.mark.parametrize(
    ("output", "strict", "flexible"),
    [
        ("公孙龙提出白马非马。\n所以答案是A。", "A", "A"),
        ("综上，选B。", None, "B"),
        ("答案：\\boxed{C}", None, "C"),
        ("所以答案是E", None, None),  # C-Eval has A-D only
        ("选项E不存在，所以选D", None, "D"),
        ("不确定。\n问题：下一题\n所以答案是A", None, None),  # cut at the model's own next question
    ],
)
def test_ceval_readings(output: str, strict: str | None, flexible: str | None) -> None:
    assert CEVAL.extract(output) == strict
    assert CEVAL.extract_flexible(output) == flexible


def test_containment_readings() -> None:
    item = Item(id="1", question="q", answer="Paris", aliases=("Paree",))
    assert FACTS.score("The answer is Lyon.\nParis", item) == ("The answer is Lyon.", False)
    # the flexible reading takes the whole answer region, so the second line counts
    assert FACTS.score_flexible("The answer is Lyon.\nParis", item)[1] is True
    assert POPQA.score_flexible("It is \\boxed{\\text{Paris}}.", item)[1] is True
    assert POPQA.score_flexible("\\boxed{Lyon}, not Paris", item)[1] is False  # the box decides
    assert POPQA.score_flexible("$$$$", item) == (None, False)


def test_numeric_scoring_compares_values() -> None:
    item = Item(id="0", question="q", answer="0.5")
    assert GSM.score("The final answer is 1/2.", item) == ("0.5", True)
    assert GSM.score_flexible("so \\boxed{\\frac{1}{2}}", item) == ("0.5", True)
    assert GSM.score("The final answer is 1.", item) == ("1", False)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1,234", Fraction(1234)),
        ("-$5", Fraction(-5)),
        ("$-5", Fraction(-5)),
        ("0.125", Fraction(1, 8)),
        ("3/4", Fraction(3, 4)),
        ("1/0", None),
        ("1,23", None),
        ("3:45", None),
        ("", None),
        ("12.", None),
    ],
)
def test_read_number(text: str, value: Fraction | None) -> None:
    assert read_number(text) == value


def test_split_thinking() -> None:
    assert split_thinking("<think>a</think> b") == ("a", " b")
    assert split_thinking("a</think>b") == ("a", "b")  # the template opened the block
    assert split_thinking("<think>never closed") == ("never closed", None)
    assert split_thinking("no think block") == (None, "no think block")
