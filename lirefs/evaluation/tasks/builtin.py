"""The offline benchmarks shipped with lirefs: ``builtin-arithmetic`` and ``builtin-facts``.

Their items and exemplars are frozen JSONL in ``lirefs/builtin/`` (made by
``scripts/make_builtin_data.py``), disjoint from the direction sets of ``lirefs.data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...data import Question, builtin_questions, builtin_text
from ...errors import DataError
from ...tables import jsonl_lines
from .base import Benchmark, BenchmarkData, Item, answer_is_form, parse_builtin_row, register
from .extract import extract_first_line
from .formats import CONTAINMENT, NUMERIC

__all__ = ["EVAL_SETS", "Exemplar", "load_builtin", "load_eval", "parse_builtin_row"]

#: Names accepted by :func:`load_eval` -> (items file, exemplars file) in ``lirefs/builtin/``.
EVAL_SETS = {
    "arithmetic": ("eval_arithmetic.jsonl", "fewshot_arithmetic.jsonl"),
    "facts": ("eval_facts.jsonl", "fewshot_facts.jsonl"),
}


@dataclass(frozen=True)
class Exemplar:
    """A few-shot exemplar: a question with a worked solution.

    Arithmetic solutions end with ``"The final answer is N."`` (the GSM8K answer pattern,
    docs/method.md); fact solutions end with ``"The answer is X."``.
    """

    text: str
    solution: str
    answer: str
    id: str


def load_eval(name: str) -> tuple[list[Question], list[Exemplar]]:
    """The built-in evaluation items and their few-shot exemplars.

    ``"arithmetic"`` (benchmark ``builtin-arithmetic``): 168 word problems from the same 28
    templates as the direction set but with different numbers and texts, integer answers, and 8
    exemplars whose solutions end with ``"The final answer is N."``. ``"facts"`` (benchmark
    ``builtin-facts``): 165 recall questions (country capitals, element names from symbols, US
    state capitals) about facts that are not in the direction set, and 5 exemplars ending with
    ``"The answer is X."``. Exemplars appear in no set. Fact answers are names; check them
    against :attr:`Question.answers` as whole words, case-insensitively ("Tin" must not match
    "getting").

    The ``builtin-`` prefix is accepted too (``load_eval("builtin-facts")``).

    Raises:
        DataError: an unknown name, or a damaged installation.
    """
    key = name.removeprefix("builtin-") if isinstance(name, str) else name
    if key not in EVAL_SETS:
        raise DataError(
            f"evaluation set {name!r} is not built in; expected one of "
            f"{sorted(EVAL_SETS)} (or with the 'builtin-' prefix)"
        )
    items_file, exemplars_file = EVAL_SETS[key]
    items = builtin_questions(items_file)
    where = f"built-in file lirefs/builtin/{exemplars_file}"
    exemplars = []
    for line in jsonl_lines(builtin_text(exemplars_file)):
        record = line.record
        if record is None:
            raise DataError(f"{where}, line {line.line_no}: {line.problem}; reinstall lirefs")
        try:
            exemplars.append(
                Exemplar(
                    text=record["question"],
                    solution=record["solution"],
                    answer=record["answer"],
                    id=record["id"],
                )
            )
        except KeyError as exc:
            raise DataError(f"{where}, line {line.line_no}: no {exc.args[0]!r} field") from exc
    return items, exemplars


def load_builtin(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    """The items and exemplars of a built-in set (``bench.config[0]``); takes no data path."""
    if path is not None:
        raise DataError(
            f"{bench.name} is a built-in set shipped with lirefs; it takes no data_path "
            f"(got {str(path)!r})"
        )
    name = bench.config[0]
    if name is None:
        raise DataError(f"{bench.name} names no built-in set in its config")
    questions, exemplars = load_eval(name)
    items = [
        Item(id=q.id, question=q.text, answer=q.answer, aliases=tuple(q.aliases), group=q.group)
        for q in questions
    ]
    shots = [
        Item(id=e.id, question=e.text, answer=e.answer, rationale=e.solution) for e in exemplars
    ]
    return BenchmarkData(bench, items, {None: shots}, f"lirefs builtin {name!r}", [])


register(
    Benchmark(
        name="builtin-arithmetic",
        kind="reasoning",
        description="lirefs built-in arithmetic word problems (offline), few-shot, numeric answer",
        source="lirefs builtin",
        config=("arithmetic",),
        eval_split="eval",
        shot_split="shots",
        n_shots=8,
        max_new_tokens=128,
        parse_eval=parse_builtin_row,
        parse_shot=None,
        loader=load_builtin,
        **NUMERIC.fields(),
    )
)

register(
    Benchmark(
        name="builtin-facts",
        kind="memory",
        description="lirefs built-in factual recall (offline), few-shot, answer in the first line",
        source="lirefs builtin",
        config=("facts",),
        eval_split="eval",
        shot_split="shots",
        n_shots=5,
        max_new_tokens=24,
        parse_eval=parse_builtin_row,
        parse_shot=None,
        loader=load_builtin,
        **CONTAINMENT.with_(extractor=extract_first_line, gold_form=answer_is_form).fields(),
    )
)
