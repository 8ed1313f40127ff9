"""Unbounded input is refused first, in one line: deep JSON in every reader, huge prompts.

JSON nested 100,000 levels deep used to be a ``RecursionError`` ("unexpected") in five readers;
each now checks the nesting (``lirefs.store.MAX_JSON_DEPTH``) before it parses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lirefs
from lirefs.errors import DataError, DirectionError
from lirefs.store import MAX_JSON_DEPTH, loads_json

DEEP = "[" * 100_000 + "]" * 100_000


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "nested" in text
    return text


def test_a_deep_data_file_line_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "x", "label": "reasoning"}) + "\n" + DEEP + "\n")
    with pytest.raises(DataError) as err:
        lirefs.data.load(str(path))
    _one_line(err.value)


def test_a_deep_evaluation_records_line_is_a_problem_not_a_crash() -> None:
    from lirefs.tables import jsonl_lines

    (line,) = list(jsonl_lines('{"a": ' * 100_000 + "1" + "}" * 100_000))
    assert line.record is None and "nested" in (line.problem or "")


def test_a_deep_direction_header_is_one_line(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    from lirefs.store import SAFETENSORS_META_KEY

    path = tmp_path / "d.safetensors"
    t = torch.zeros(3, 4, dtype=torch.float64)
    save_file(
        {"vectors": t, "mean_reasoning": t.clone(), "mean_memory": t.clone()},
        str(path),
        metadata={SAFETENSORS_META_KEY: DEEP},
    )
    with pytest.raises(DirectionError) as err:
        lirefs.Direction.load(path)
    _one_line(err.value)


def test_a_deep_eval_result_is_one_line(tmp_path: Path) -> None:
    from lirefs.analysis.html import load_evaluation

    (tmp_path / "result.json").write_text('{"metadata": ' + DEEP + "}")
    with pytest.raises(DataError) as err:
        load_evaluation(tmp_path)
    _one_line(err.value)


def test_a_deep_data_path_file_is_one_line(tmp_path: Path) -> None:
    from lirefs.evaluation.tasks.loading import read_table

    path = tmp_path / "rows.json"
    path.write_text(DEEP)
    with pytest.raises(DataError) as err:
        list(read_table(path))
    _one_line(err.value)


def test_strings_full_of_brackets_are_not_depth() -> None:
    text = json.dumps({"a": "[" * 10_000, "b": ["]" * 500, '{\\"[']})
    assert loads_json(text, what="x") == json.loads(text)
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads_json(ok, what="x") is not None
    with pytest.raises(ValueError, match="nested"):
        loads_json("[" + ok + "]", what="x")
