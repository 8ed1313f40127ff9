"""What the model does on builtin-ladder items, per run: operation switches, equation errors and
skipped working, read from an evaluation's records.jsonl.

Usage:
    python scripts/ladder_behaviour.py L/records.jsonl [--json]

Each record's output is read up to its answer phrase ("The final answer is N."), and every
equation in it ("8 - 2 + 7 = 13") is parsed. Per run (alpha, direction or control, prompting
baseline) and rung it counts:

- ``working``: the output writes at least one equation before its answer;
- ``skipped``: the output states an answer with no equation before it;
- ``no answer``: the output never reaches the answer phrase;
- ``eq error``: an equation whose right side is not what its left side computes;
- ``switch``: the item's operations are known (exactly one choice of + and - between the
  question's numbers, in order, gives the gold answer), the output writes equations, and an
  operator of the output differs from the gold one at the same step (a subtraction done as an
  addition, say). Items with several consistent choices are counted as ``ambiguous``.

Rates are over the items of the run and rung; ``switch`` is over the items with known operations
and working.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ANSWER = re.compile(r"The final answer is\s*(-?\d+)")
EQUATION = re.compile(r"((?:-?\d+\s*[-+*/×x]\s*)+-?\d+)\s*=\s*(-?\d+)")
COUNTS = ("working", "skipped", "no_answer", "eq_error", "switch", "known", "ambiguous")


def gold_signs(question: str, gold: int) -> list[str] | None:
    """The one sequence of + and - between the question's numbers (in order) that gives
    ``gold``, or ``None`` when none or several do."""
    numbers = [int(n) for n in re.findall(r"\d+", question)]
    if len(numbers) < 2:
        return None
    found = []
    for signs in itertools.product("+-", repeat=len(numbers) - 1):
        total = numbers[0]
        for sign, n in zip(signs, numbers[1:], strict=True):
            total = total + n if sign == "+" else total - n
        if total == gold:
            found.append(list(signs))
    return found[0] if len(found) == 1 else None


def _evaluate(lhs: str) -> tuple[list[str], float | None]:
    """The operators of ``lhs`` and its value, left to right (``None`` on division by 0)."""
    tokens = re.sub(r"(?<=\d)\s*([-+*/×x])\s*", r" \1 ", lhs).split()
    value: float | None = float(tokens[0])
    ops = ["*" if t in "×x" else t for t in tokens[1::2]]
    for op, number in zip(ops, tokens[2::2], strict=True):
        n = float(number)
        if value is None:
            break
        if op == "+":
            value += n
        elif op == "-":
            value -= n
        elif op == "*":
            value *= n
        else:
            value = value / n if n else None
    return ops, value


def behaviour(record: dict[str, Any]) -> dict[str, int]:
    """The counts (0/1) of one record (see the module docstring)."""
    out = {key: 0 for key in COUNTS}
    text = record.get("output") or ""
    answer = ANSWER.search(text)
    if answer is None:
        out["no_answer"] = 1
    body = text[: answer.start()] if answer else text
    equations = EQUATION.findall(body)
    if answer is not None:
        out["working" if equations else "skipped"] = 1
    ops: list[str] = []
    for lhs, rhs in equations:
        eq_ops, value = _evaluate(lhs)
        ops += eq_ops
        if value is None or value != float(rhs):
            out["eq_error"] = 1
    try:
        signs = gold_signs(record["prompt"].rsplit("Q:", 1)[-1], int(record["gold"]))
    except (KeyError, ValueError):
        signs = None
    if signs is None:
        out["ambiguous"] = 1
    elif ops:
        out["known"] = 1
        out["switch"] = int(any(a != b for a, b in zip(ops, signs, strict=False)))
    return out


def run_name(record: dict[str, Any]) -> str:
    """The run a record belongs to: prompting baseline, control or direction, and alpha."""
    if record.get("baseline"):
        return f"prompt: {record['baseline']}"
    who = record.get("control") or "direction"
    return f"{who} {record['alpha']:+g}"


def _group(record: dict[str, Any]) -> str:
    match = re.match(r"ladder-(.+)-\d+$", str(record.get("id", "")))
    return match.group(1) if match else "?"


def tally(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """run -> rung (and ``all``) -> summed counts, with ``n`` and ``correct``."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: dict.fromkeys(("n", "correct", *COUNTS), 0))
    )
    for record in records:
        if "output" not in record:
            continue
        counts = behaviour(record)
        for rung in (_group(record), "all"):
            cell = table[run_name(record)][rung]
            cell["n"] += 1
            cell["correct"] += int(bool(record.get("correct")))
            for key, value in counts.items():
                cell[key] += value
    return table


def _pct(a: int, b: int) -> str:
    return f"{100 * a / b:5.1f}" if b else "    -"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--json", action="store_true", help="print the counts as JSON")
    args = parser.parse_args()
    with args.records.open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    table = tally(r for r in records if "format" not in r)
    if args.json:
        print(json.dumps(table, indent=1, sort_keys=True))
        return
    print(
        f"{'run':<34} {'rung':<8} {'n':>4} {'acc':>5} {'work':>5} {'skip':>5} {'no ans':>6} "
        f"{'eq err':>6} {'switch':>6} (of n)"
    )
    for run in sorted(table):
        for rung in sorted(table[run]):
            c = table[run][rung]
            print(
                f"{run:<34} {rung:<8} {c['n']:>4} {_pct(c['correct'], c['n'])} "
                f"{_pct(c['working'], c['n'])} {_pct(c['skipped'], c['n'])} "
                f"{_pct(c['no_answer'], c['n']):>6} {_pct(c['eq_error'], c['n']):>6} "
                f"{_pct(c['switch'], c['known']):>6} ({c['known']})"
            )


if __name__ == "__main__":
    main()
