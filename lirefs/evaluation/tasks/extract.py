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
from fractions import Fraction

__all__ = [
    "CEVAL_STOP",
    "LETTERS",
    "QA_STOP",
    "THINK_CLOSE",
    "THINK_OPEN",
    "answer_region",
    "canonical_number",
    "contains_any",
    "extract_ceval",
    "extract_choice",
    "extract_first_line",
    "extract_number",
    "extract_region",
    "flexible_choice",
    "flexible_letter_abcd",
    "flexible_number",
    "flexible_region",
    "format_number",
    "numbers_equal",
    "parse_number",
    "read_number",
    "says_something",
    "split_thinking",
    "unboxed",
]

#: Where a continuation starts a question of its own ("Q: ... A: ..." framing).
QA_STOP = "\nQ:"
#: The same for C-Eval, whose prompts are framed in Chinese.
CEVAL_STOP = "\n问题："
#: Option letters of multiple-choice benchmarks, in order (MMLU-Pro has up to ten options).
LETTERS = "ABCDEFGHIJ"

#: What may sit between "The final answer is" and its number: colons, spaces, markdown emphasis,
#: a LaTeX/markdown math opener and \boxed{.
_MARKER = re.compile(
    r"the final answer is[\s:*_]*(?:\$|\\\(|\\\[)?\s*(?:\\boxed\{)?\s*", re.IGNORECASE
)
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
    """The number right after the first ``The final answer is`` (case-insensitive), read whole.

    Accepts a colon, markdown emphasis, ``$`` or ``\\boxed{`` after the marker, a sign, a
    currency symbol, thousands separators, decimals, fractions and a unit or ``%`` after the
    number: ``"The final answer is 1,234."`` -> ``"1234"``, ``"... is 12.0"`` -> ``"12"``,
    ``"... is -5"`` -> ``"-5"``, ``"... is 1/2."`` -> ``"0.5"``. What follows the marker must be
    one whole number: ``"... is 3:45"`` (a time) or ``"... is 3-5"`` (a range) is no answer, never
    ``"3"``. Returns ``None`` when the marker (followed by a number) is absent before ``stop``.
    """
    region = answer_region(output, stop)
    marker = _MARKER.search(region)
    if marker is None:
        return None
    token = _NUMBER_TOKEN.match(region, marker.end())
    if token is None or not _token_ends_cleanly(region, token.end()):
        return None
    value = read_number(token.group(0))
    return None if value is None else format_number(value)


def numbers_equal(extracted: str | None, gold: str) -> bool:
    """Exact numeric equality of two number strings (``"1,234"``, ``"0.5"``, ``"1/2"``);
    ``None`` is wrong."""
    if extracted is None:
        return False
    a, b = read_number(extracted), read_number(gold)
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


# ---------------------------------------------------------------------------------------------
# numbers read whole

#: A number as written: an optional sign and currency symbol, then a run of digits and the joiners
#: that may sit between digits (",", ".", "/", ":", "-", "–"), or a mixed number ("1 1/2").
#: What the run means is decided by :func:`read_number`: "3:45" or "3-5" is a run but no number.
_NUMBER_TOKEN = re.compile(
    r"(?:[+\-−]\s?)?(?:[$€£¥₹]\s?)?(?:[+\-−]\s?)?"
    r"(?:\d+ \d+/\d+(?![\d/])|\d[\d,./:\-–]*\d|\d|\.\d+)"
)
_SCIENTIFIC_TAIL = re.compile(r"[eE][+\-]?\d")
_PLAIN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+")
_FRACTION = re.compile(r"(\d+)/(\d+)")
_MIXED = re.compile(r"(\d+) (\d+)/(\d+)")


def _token_ends_cleanly(text: str, end: int) -> bool:
    """Whether the number token ending at ``end`` is not the start of ``1e5``-style notation."""
    return _SCIENTIFIC_TAIL.match(text, end) is None


def read_number(text: str) -> Fraction | None:
    """The exact value of one number written whole, or ``None`` when ``text`` is not one number.

    ``"1,234"`` -> 1234, ``"-5"`` and ``"−5"`` -> -5, ``"$1,234.50"`` -> 1234.5, ``"1/2"`` ->
    1/2, ``"1 1/2"`` -> 3/2, ``"25%"`` -> 25 (the percentage's number). Not numbers (``None``):
    ``"3:45"`` (a time), ``"3-5"`` (a range), ``"1.2.3"``, ``"1,23"`` (no thousands grouping),
    ``"1/0"``, ``""``.
    """
    t = text.strip().strip("*_`").strip()
    t = t.removesuffix("%").rstrip()
    sign = 1
    for _ in range(2):  # a sign and a currency symbol, in either order
        if t[:1] in ("-", "−", "+"):
            sign = -1 if t[0] != "+" else 1
            t = t[1:].lstrip()
        if t[:1] in ("$", "€", "£", "¥", "₹"):
            t = t[1:].lstrip()
    if (m := _MIXED.fullmatch(t)) is not None:
        whole, num, den = (int(g) for g in m.groups())
        if den == 0 or num >= den:
            return None
        return sign * (whole + Fraction(num, den))
    if (m := _FRACTION.fullmatch(t)) is not None:
        num, den = int(m.group(1)), int(m.group(2))
        return None if den == 0 else sign * Fraction(num, den)
    if _PLAIN.fullmatch(t) is None:
        return None
    return sign * Fraction(Decimal(t.replace(",", "")))


def format_number(value: Fraction) -> str:
    """One spelling per value: ``12``, ``-5``, ``0.5``, ``1234.25``; ``2/3`` when no finite decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return format(exact.normalize(), "f")


def _number_tokens(text: str) -> list[re.Match[str]]:
    """Every whole-number candidate in running text (not inside words or other tokens)."""
    out = []
    pos = 0
    while (m := _NUMBER_TOKEN.search(text, pos)) is not None:
        pos = m.end()
        # a token must not continue a word or another token ("H2O", "COVID-19", "v1.2")
        if m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] in "_.,/:-–"):
            continue
        if not _token_ends_cleanly(text, m.end()):
            continue
        out.append(m)
    return out


# ---------------------------------------------------------------------------------------------
# flexible readings: \boxed{} first, else the last number / letter of the answer region

#: Think-block tags of reasoning models (DeepSeek-R1 distills, Qwen3, ...).
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def split_thinking(output: str) -> tuple[str | None, str | None]:
    """``(thinking, answer)`` of an output that may hold a think block.

    The answer is what follows the first ``</think>``; the thinking is what precedes it (its
    ``<think>`` tag dropped). Without ``</think>``: ``(None, output)`` when no think block was
    opened in the output, ``(thinking, None)`` when one was (an unclosed think block has no answer).
    """
    close = output.find(THINK_CLOSE)
    if close >= 0:
        thinking = output[:close]
        opened = thinking.find(THINK_OPEN)
        if opened >= 0:
            thinking = thinking[opened + len(THINK_OPEN) :]
        return thinking, output[close + len(THINK_CLOSE) :]
    if output.lstrip().startswith(THINK_OPEN):
        return output.lstrip()[len(THINK_OPEN) :], None
    return None, output


def unboxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces balanced."""
    starts = [m.end() for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text)]
    for start in reversed(starts):
        depth = 1
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i]
    return None


_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")


def _latex_plain(text: str) -> str:
    """LaTeX math as plain text: ``\\frac{1}{2}`` -> ``1/2``, ``1{,}234`` -> ``1,234``, no ``\\$``."""
    text = _LATEX_TEXT.sub(r" \1 ", text)
    text = _LATEX_FRAC.sub(lambda m: f"{m.group(1).strip()}/{m.group(2).strip()}", text)
    text = text.replace("{,}", ",").replace("\\$", "$").replace("\\%", "%")
    for macro in (
        "\\left",
        "\\right",
        "\\,",
        "\\!",
        "\\;",
        "\\ ",
        "^\\circ",
        "^{\\circ}",
        "\\circ",
    ):
        text = text.replace(macro, " ")
    return text.replace("{", "").replace("}", "").replace("$", " $").strip()


def flexible_number(output: str, stop: str = QA_STOP) -> str | None:
    """The flexible numeric reading: the number in the last ``\\boxed{}`` when there is one, else
    the last number of the answer region; read whole or not at all (``"3:45"`` is no answer)."""
    region = answer_region(output, stop)
    box = unboxed(region)
    if box is not None:
        tokens = _number_tokens(_latex_plain(box))
        if len(tokens) != 1:
            return None
        value = read_number(tokens[0].group(0))
        return None if value is None else format_number(value)
    tokens = _number_tokens(_latex_plain(region) if "\\" in region else region)
    if not tokens:
        return None
    value = read_number(tokens[-1].group(0))
    return None if value is None else format_number(value)


_LONE_LETTER = re.compile(r"(?<![A-Za-z0-9])\(?([A-J])\)?(?![A-Za-z0-9'’])")
_WORD_AFTER = re.compile(r"\s+[a-z]")


def flexible_choice(output: str, stop: str = QA_STOP, *, letters: str = LETTERS) -> str | None:
    """The flexible letter reading: ``\\boxed{X}`` when there is a box, else the last option
    letter standing alone in the answer region (``(C)``, ``C.``, ``**C**``, ``选C``). The words
    ``A`` and ``I`` followed by a lower-case word (``"A cat"``, ``"I think"``) are not letters."""
    region = answer_region(output, stop)
    box = unboxed(region)
    if box is not None:
        inner = _latex_plain(box).strip().strip("()*[] ").strip()
        return inner if len(inner) == 1 and inner in letters else None
    found = None
    for m in _LONE_LETTER.finditer(region):
        letter = m.group(1)
        if letter not in letters:
            continue
        if letter in "AI" and m.group(0) == letter and _WORD_AFTER.match(region, m.end()):
            continue
        found = letter
    return found


def flexible_letter_abcd(output: str, stop: str = CEVAL_STOP) -> str | None:
    """:func:`flexible_choice` over the letters A-D (C-Eval)."""
    return flexible_choice(output, stop, letters="ABCD")


def flexible_region(output: str, stop: str = QA_STOP) -> str | None:
    """The flexible containment reading: the last ``\\boxed{}`` content, else the whole region."""
    region = answer_region(output, stop)
    box = unboxed(region)
    if box is not None:
        text = _latex_plain(box)
        return text if says_something(text) else None
    return extract_region(output, stop)


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
