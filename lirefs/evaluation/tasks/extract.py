"""Answer extraction: model output -> answer string, or ``None`` when there is no answer.

Extraction policy (strict): the output is first cut where the model starts a new exemplar of its own
(the benchmark's ``stop``: ``"\\nQ:"``, or ``"\\n问题："`` for C-Eval); within what remains the answer
pattern is searched with ``re.search``, so the FIRST match wins. An output with no match has no
answer and counts as wrong: there is never a random-guess fallback.

Numeric answers (GSM8K, MGSM, built-in arithmetic) extend the paper's regex
``The final answer is (\\d+\\.?\\d*)`` to an optional leading minus sign and thousands separators
(``1,234``), and compare numerically as exact decimals: ``12.0`` equals ``12``, ``1,234`` equals
``1234``, ``-5`` equals ``-5`` (the paper's regex cannot match a negative number at all).

Containment answers (PopQA, built-in facts) are case-insensitive and whole-word: an accepted answer
counts only where it is not part of a longer word (PopQA's alias ``"CA"`` is not found in
``"because"``).

Every extractor takes the benchmark's ``stop`` as a parameter; ``Benchmark.stop`` is the one place a
benchmark's stop is set (the defaults here are the constants the benchmarks use).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

__all__ = [
    "CEVAL_STOP",
    "LETTERS",
    "QA_STOP",
    "answer_region",
    "canonical_number",
    "contains_any",
    "extract_ceval",
    "extract_choice",
    "extract_first_line",
    "extract_number",
    "extract_region",
    "numbers_equal",
    "parse_number",
    "says_something",
]

#: Where a continuation starts a question of its own ("Q: ... A: ..." framing).
QA_STOP = "\nQ:"
#: The same for C-Eval, whose prompts are framed in Chinese.
CEVAL_STOP = "\n问题："
#: Option letters of multiple-choice benchmarks, in order (MMLU-Pro has up to ten options).
LETTERS = "ABCDEFGHIJ"

_NUMBER = r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_FINAL_ANSWER = re.compile(r"the final answer is[:\s]*\$?\s*(" + _NUMBER + r")", re.IGNORECASE)
_CHOICE = re.compile(r"(?i:answer is)\s*\(?([A-J])(?![A-Za-z0-9])")
_CEVAL = re.compile(r"所以答案是\s*[:：]?\s*([ABCD])(?![A-Za-z0-9])")


def answer_region(output: str, stop: str = QA_STOP) -> str:
    """``output`` up to where the model starts a new question of its own (``stop``)."""
    cut = output.find(stop)
    return output if cut < 0 else output[:cut]


def canonical_number(number: Decimal) -> str:
    """``Decimal("12.0")`` -> ``"12"``, ``Decimal("0.50")`` -> ``"0.5"``: one spelling per value."""
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def parse_number(text: str) -> Decimal | None:
    """``"1,234"`` -> 1234, ``"-5"`` -> -5, ``"12.0"`` -> 12.0; ``None`` if not a number."""
    cleaned = text.strip().replace(",", "")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", cleaned):
        return None
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        return None


def extract_number(output: str, stop: str = QA_STOP) -> str | None:
    """The number after the first ``The final answer is`` (case-insensitive), canonicalised.

    Accepts an optional colon and dollar sign after the marker, a leading minus, thousands
    separators and decimals: ``"The final answer is 1,234."`` -> ``"1234"``, ``"... is 12.0"`` ->
    ``"12"``, ``"... is -5"`` -> ``"-5"``. A sentence-ending full stop is not part of the number.
    Returns ``None`` when the marker (followed by a number) is absent before ``stop``.
    """
    match = _FINAL_ANSWER.search(answer_region(output, stop))
    if match is None:
        return None
    number = parse_number(match.group(1))
    return None if number is None else canonical_number(number)


def numbers_equal(extracted: str | None, gold: str) -> bool:
    """Exact numeric equality of two decimal strings (commas allowed); ``None`` is wrong."""
    if extracted is None:
        return False
    a, b = parse_number(extracted), parse_number(gold)
    return a is not None and b is not None and a == b


def extract_choice(output: str, stop: str = QA_STOP, *, letters: str = LETTERS) -> str | None:
    """The letter of the first ``answer is (X)`` / ``answer is X`` (MMLU-Pro regex).

    The paper's ``answer is \\(?([A-J])\\)?`` with two strict changes: ``answer is`` matches in
    any case (``"The answer is"``), and the letter must not be the start of a word
    (``"the answer is Correct"`` has no answer). Only letters in ``letters`` count.
    """
    match = _CHOICE.search(answer_region(output, stop))
    if match is None or match.group(1) not in letters:
        return None
    return match.group(1)


def extract_ceval(output: str, stop: str = CEVAL_STOP) -> str | None:
    """The letter of the first ``所以答案是X`` (spaces or a colon allowed before the letter)."""
    match = _CEVAL.search(answer_region(output, stop))
    return None if match is None else match.group(1)


def says_something(text: str) -> bool:
    """Whether ``text`` has a letter or digit (any script): ``"$$$$"`` or ``"..."`` answers nothing."""
    return any(ch.isalnum() for ch in text)


def extract_first_line(output: str, stop: str = QA_STOP) -> str | None:
    """The first non-empty line of the answer region, stripped.

    ``None`` (no answer) when there is no such line, or when it has no letter or digit: a
    collapsed output like ``"$$$$"`` is not an answer, so it counts in the no-answer rate.
    """
    for line in answer_region(output, stop).splitlines():
        if line.strip():
            return line.strip() if says_something(line) else None
    return None


def extract_region(output: str, stop: str = QA_STOP) -> str | None:
    """The whole answer region, stripped; ``None`` when it has no letter or digit (PopQA)."""
    region = answer_region(output, stop).strip()
    return region if says_something(region) else None


def _casefold(text: str) -> str:
    return " ".join(text.casefold().split())


def contains_any(text: str | None, accepted: Sequence[str], *, whole_words: bool) -> bool:
    """Case-insensitive containment of any accepted answer in ``text``.

    With ``whole_words`` the match must not sit inside a longer word (``"Tin"`` does not accept
    ``"Ti"``); whitespace runs compare as one space.
    """
    if text is None:
        return False
    hay = _casefold(text)
    for answer in accepted:
        needle = _casefold(answer)
        if not needle:
            continue
        if not whole_words:
            if needle in hay:
                return True
            continue
        pattern = r"(?<!\w)" + re.escape(needle) + r"(?!\w)"
        if re.search(pattern, hay):
            return True
    return False
