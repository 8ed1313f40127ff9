"""``builtin-ladder``: arithmetic of graded difficulty, offline, for small models.

Seven rungs (the item's ``group``): word problems of 1, 2, 3 and 4 addition/subtraction steps
(``"steps-1"`` .. ``"steps-4"``) and bare sums of a 1-digit and a 1-digit, a 2-digit and a
1-digit, and two 2-digit numbers (``"sum-1+1"``, ``"sum-2+1"``, ``"sum-2+2"``), 200 items each.
Each rung has 8 exemplars of its own with worked solutions ending ``"The final answer is N."``
(GSM8K's answer form, read the same two ways). Items and exemplars are frozen JSONL in
``lirefs/builtin/`` made by ``scripts/make_builtin_data.py``: the exemplars are a disjoint split
of the same generator, and no text or template is shared with the direction sets of
``lirefs.data.load("builtin")`` (docs/data.md).
"""

from __future__ import annotations

from pathlib import Path

from ...data import builtin_questions, builtin_text
from ...errors import DataError
from ...tables import jsonl_lines
from .base import Benchmark, BenchmarkData, Item, parse_builtin_row, register
from .formats import NUMERIC

__all__ = ["LADDER", "LADDER_RUNGS", "load_ladder"]

#: The rungs in order of difficulty within each kind (word problems, then bare sums).
LADDER_RUNGS = ("steps-1", "steps-2", "steps-3", "steps-4", "sum-1+1", "sum-2+1", "sum-2+2")

ITEMS_FILE = "eval_ladder.jsonl"
SHOTS_FILE = "fewshot_ladder.jsonl"


def _exemplars() -> dict[str | None, list[Item]]:
    """The exemplars of ``fewshot_ladder.jsonl`` by rung, in file order."""
    where = f"built-in file lirefs/builtin/{SHOTS_FILE}"
    shots: dict[str | None, list[Item]] = {}
    for line in jsonl_lines(builtin_text(SHOTS_FILE)):
        record = line.record
        if record is None:
            raise DataError(f"{where}, line {line.line_no}: {line.problem}; reinstall lirefs")
        try:
            shot = Item(
                id=record["id"],
                question=record["question"],
                answer=record["answer"],
                rationale=record["solution"],
                group=record["group"],
            )
        except KeyError as exc:
            raise DataError(f"{where}, line {line.line_no}: no {exc.args[0]!r} field") from exc
        shots.setdefault(shot.group, []).append(shot)
    return shots


def load_ladder(bench: Benchmark, path: Path | None, skip_bad_rows: bool) -> BenchmarkData:
    """The ladder's items (in file order: rung by rung) and its exemplars by rung; no data path."""
    if path is not None:
        raise DataError(
            f"{bench.name} is a built-in set shipped with lirefs; it takes no data_path "
            f"(got {str(path)!r})"
        )
    items = [
        Item(id=q.id, question=q.text, answer=q.answer, aliases=q.aliases, group=q.group)
        for q in builtin_questions(ITEMS_FILE)
    ]
    return BenchmarkData(bench, items, _exemplars(), "lirefs builtin 'ladder'", [])


LADDER = register(
    Benchmark(
        name="builtin-ladder",
        kind="reasoning",
        description="lirefs built-in arithmetic ladder (offline): 1-4 step word problems and "
        "bare sums, 8-shot per rung, numeric answer",
        source="lirefs builtin",
        config=("ladder",),
        eval_split="eval",
        shot_split="shots",
        n_shots=8,
        max_new_tokens=64,
        parse_eval=parse_builtin_row,
        parse_shot=None,
        loader=load_ladder,
        grouped=True,
        **NUMERIC.fields(),
    )
)
