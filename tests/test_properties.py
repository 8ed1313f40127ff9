"""Property-based tests (hypothesis) of the readers of user input.

- ``lirefs.data.load`` on any bytes, and on JSONL/CSV rows of any shape: a ``QuestionSets`` or a
  ``DataError``, never another exception.
- Every benchmark's answer extraction (strict and flexible) on any text: a string or ``None``,
  never an exception; and a number is always read whole, never as a prefix of a longer number.

The direction-file reader has its own properties in tests/test_direction_files.py.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lirefs import data
from lirefs.errors import DataError
from lirefs.evaluation import get_benchmark
from lirefs.evaluation.tasks.base import benchmarks

#: Examples per property; the numbers in docs/reliability.md count these.
DATA_EXAMPLES = 200
EXTRACT_EXAMPLES = 100  # per benchmark
NUMBER_EXAMPLES = 100  # per numeric benchmark


def _settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def _load_or_data_error(path: Path) -> None:
    try:
        sets = data.load(path)
    except DataError as exc:
        assert str(exc)  # a message for the one CLI line
        return
    assert isinstance(sets, data.QuestionSets)
    assert sets.reasoning and sets.memory


# -- data readers -------------------------------------------------------------------------------


@_settings(DATA_EXAMPLES)
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".jsonl", ".csv", ".tsv"]))
def test_any_bytes_load_or_raise_data_error(raw: bytes, suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"questions{suffix}"
    path.write_bytes(raw)
    _load_or_data_error(path)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_labels = st.sampled_from(["reasoning", "memory", "Reasoning ", "1", "0", "true", "x", ""])
_keys = st.sampled_from(["question", "label", "answer", "id", "group", "aliases", "source"])
_row = st.dictionaries(_keys, _values | _labels, max_size=6)


@_settings(DATA_EXAMPLES)
@given(rows=st.lists(_row | _values, max_size=8), blank=st.booleans())
def test_any_jsonl_rows_load_or_raise_data_error(
    rows: list[object], blank: bool, tmp_path: Path
) -> None:
    lines = [json.dumps(row) for row in rows]
    path = tmp_path / "questions.jsonl"
    path.write_text(("\n\n" if blank else "\n").join(lines), encoding="utf-8")
    _load_or_data_error(path)


_cell = st.text(max_size=10) | _labels | st.sampled_from(['"', ",", "\t", "|", "\r"])


@_settings(DATA_EXAMPLES)
@given(
    header=st.lists(_keys | st.text(max_size=6), min_size=1, max_size=5),
    rows=st.lists(st.lists(_cell, max_size=6), max_size=8),
    delimiter=st.sampled_from([",", "\t"]),
)
def test_any_csv_rows_load_or_raise_data_error(
    header: list[str], rows: list[list[str]], delimiter: str, tmp_path: Path
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    path = tmp_path / ("questions.csv" if delimiter == "," else "questions.tsv")
    path.write_text(buffer.getvalue(), encoding="utf-8")
    _load_or_data_error(path)


def test_the_row_strategy_reaches_valid_files(tmp_path: Path) -> None:
    """The generated rows can make a loadable file, so the properties test the parser's depth."""
    rows = [{"question": f"q{i}", "label": ["reasoning", "memory"][i % 2]} for i in range(4)]
    path = tmp_path / "ok.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    assert len(data.load(path).reasoning) == 2


# -- answer extraction --------------------------------------------------------------------------

BENCHMARKS = benchmarks()
NUMERIC = [
    name for name in BENCHMARKS if get_benchmark(name).extract("The final answer is 7.") == "7"
]

_answer_words = st.sampled_from(
    ["The final answer is", "the answer is", "answer is (", "所以答案是", "\\boxed{", "}", "$",
     "<think>", "</think>", "\nQ:", "\n问题：", "A", "B", "J", ",", ".", "-", "/", "%", "1,000"]
)  # fmt: skip
_texts = st.lists(st.text(max_size=8) | _answer_words | st.integers().map(str), max_size=12).map(
    "".join
)


@pytest.mark.parametrize("name", BENCHMARKS)
@_settings(EXTRACT_EXAMPLES)
@given(text=_texts)
def test_extraction_of_any_text_is_a_string_or_none(name: str, text: str) -> None:
    benchmark = get_benchmark(name)
    for reading in (benchmark.extract, benchmark.extract_flexible):
        value = reading(text)
        assert value is None or isinstance(value, str)


def test_some_benchmarks_read_numbers() -> None:
    assert NUMERIC, BENCHMARKS


_digits = st.text(alphabet="0123456789", min_size=1, max_size=6)


@pytest.mark.parametrize("name", NUMERIC)
@_settings(NUMBER_EXAMPLES)
@given(
    head=st.integers(min_value=1, max_value=999),
    tail=_digits,
    joint=st.sampled_from(["", ".", ","]),
    before=st.text(max_size=10).filter(lambda t: "\nQ:" not in t and "<think>" not in t),
    after=st.sampled_from(["", ".", " dollars.", "\n", " %"]),
)
def test_a_number_is_never_read_as_a_prefix_of_a_longer_one(
    name: str, head: int, tail: str, joint: str, before: str, after: str
) -> None:
    if joint == ",":
        tail = (tail + "000")[:3]  # a thousands group is three digits
    number = f"{head}{joint}{tail}"
    whole = Decimal(number.replace(",", ""))
    benchmark = get_benchmark(name)
    for reading in (benchmark.extract, benchmark.extract_flexible):
        text = f"{before} The final answer is {number}{after}"
        value = reading(text)
        if value is None:
            continue
        assert Decimal(value.replace(",", "")) == whole, (text, value)
